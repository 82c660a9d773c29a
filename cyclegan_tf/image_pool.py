"""The reference's history buffer of generated images (Shrivastava et al. 2017)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ImagePool(keras.layers.Layer):
    """A buffer of previously generated images that the discriminators are trained on.

    The reference's rule, applied image by image: until the pool holds ``pool_size`` images, store each
    new image and return it; afterwards, with probability 0.5 return a random stored image and store the new
    one in its place, otherwise return the new image. ``pool_size=0`` returns its input unchanged.

    The state lives in non-trainable weights, so it works inside ``tf.function``, is saved with the model
    and restored on resume. Under ``tf.distribute`` each replica keeps its own pool (the variables are
    synchronised on read and never averaged across replicas).

    Args:
        pool_size: int, images kept. Defaults to 50 (the reference's).
        image_shape: tuple ``(height, width, channels)`` of the images pooled.
        seed: int, seed of the pool's random choices. Defaults to 0.
        **kwargs: Base layer keyword arguments.

    Reference:
        Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial
        Training", CVPR 2017; ``ImagePool`` in the official CycleGAN release.
    """

    def __init__(self, pool_size=50, image_shape=(256, 256, 3), seed=0, **kwargs):
        super().__init__(**kwargs)
        if int(pool_size) < 0:
            raise ValueError(f"pool_size must be >= 0. Received: pool_size={pool_size}")
        self.pool_size = int(pool_size)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.seed = int(seed)
        if self.pool_size:
            # add_weight() has no `synchronization` argument; variables assigned as attributes are
            # tracked as the layer's non-trainable weights all the same.
            self.images = self._local_variable(
                (self.pool_size, *self.image_shape), "float32", "images"
            )
            self.count = self._local_variable((), "int32", "count")
            self.draws = self._local_variable((), "int32", "draws")
        self.built = True

    def call(self, images):
        """Returns a batch of the same shape: each image either itself or one from the history."""
        if not self.pool_size:
            return images
        images = tf.convert_to_tensor(images)
        batch = tf.shape(images)[0]
        outputs = tf.TensorArray(images.dtype, size=batch, element_shape=images.shape[1:])
        # An explicit while_loop (not a Python loop) so the images are queried in order in graph mode.
        _, outputs = tf.while_loop(
            lambda i, _: i < batch,
            lambda i, out: (i + 1, out.write(i, self._query_one(images[i]))),
            (tf.constant(0), outputs),
        )
        result = outputs.stack()
        result.set_shape(images.shape)
        return result

    def _query_one(self, image):
        image = tf.cast(image, self.images.dtype)
        pool = self.images.value
        count = self.count.value
        draws = self.draws.value

        def store_while_filling():
            with tf.control_dependencies([_put(pool, count.read_value(), image)]):
                with tf.control_dependencies([count.assign_add(1)]):
                    return tf.identity(image)

        def swap_or_pass():
            seed = tf.stack(
                [tf.constant(self.seed, tf.int32), self._replica_id() * 1_000_003 + draws]
            )
            draws_next = draws.assign_add(1)
            with tf.control_dependencies([draws_next]):
                coin = tf.random.stateless_uniform((), seed=seed)
                index = tf.random.stateless_uniform(
                    (), seed=seed + 1, maxval=self.pool_size, dtype=tf.int32
                )

            def swap():
                stored = tf.identity(pool[index])
                with tf.control_dependencies([stored]):
                    with tf.control_dependencies([_put(pool, index, image)]):
                        return tf.identity(stored)

            return tf.cond(coin > 0.5, swap, lambda: tf.identity(image))

        return tf.cond(count.read_value() < self.pool_size, store_while_filling, swap_or_pass)

    def _local_variable(self, shape, dtype, name):
        """A per-replica variable: synchronised on read, never averaged across replicas."""
        return keras.Variable(
            initializer=keras.initializers.Zeros(),
            shape=shape,
            dtype=dtype,
            trainable=False,
            name=name,
            synchronization="on_read",
            aggregation="only_first_replica",
        )

    @staticmethod
    def _replica_id():
        replica = tf.distribute.get_replica_context()
        if replica is None:
            return tf.constant(0, tf.int32)
        return tf.cast(replica.replica_id_in_sync_group, tf.int32)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "image_shape": self.image_shape,
            "seed": self.seed,
        }


def _put(pool, index, image):
    """Writes ``image`` at ``pool[index]``.

    A whole-variable ``assign`` because per-replica (sync-on-read) variables do not support scatter
    updates inside a replica; the copy costs well under 1% of a training step.
    """
    return pool.assign(tf.tensor_scatter_nd_update(pool.read_value(), [[index]], [image]))
