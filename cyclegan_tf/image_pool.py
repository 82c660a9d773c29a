"""The reference's history buffer of generated images (Shrivastava et al. 2017)."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ImagePool(keras.layers.Layer):
    """A buffer of previously generated images that the discriminators are trained on.

    The reference's rule, applied image by image: until the pool holds ``pool_size`` images, store each
    new image and return it; afterwards, with probability 0.5 return a random stored image and store the new
    one in its place, otherwise return the new image. ``pool_size=0`` returns its input unchanged.

    The state lives in non-trainable weights, so it works inside ``tf.function``, is saved with the model
    and restored on resume. The queries are ``keras.ops``; only the random draws (stateless, keyed by
    the seed, the replica and a draw counter, so that a resumed run draws what it would have) and the
    replica id use TensorFlow. Under ``tf.distribute`` each replica keeps its own pool (the variables are
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
        images = ops.cast(images, self.images.dtype)

        def query(index, state):
            pool, count, draws, outputs = state
            image = images[index]
            filling = count < self.pool_size
            coin, slot = self._draw(draws)
            swap = ops.logical_and(ops.logical_not(filling), coin > 0.5)
            # Filling: store at `count`, return the image. Full: a coin decides between returning a
            # random stored image (and storing the new one in its place) and returning the image.
            target = ops.where(filling, count, slot)
            stored = pool[target]
            store = ops.logical_or(filling, swap)
            pool = ops.where(store, ops.slice_update(pool, [target, 0, 0, 0], image[None]), pool)
            output = ops.where(swap, stored, image)
            outputs = ops.slice_update(outputs, [index, 0, 0, 0], output[None])
            count = count + ops.cast(filling, "int32")
            draws = draws + ops.cast(ops.logical_not(filling), "int32")
            return pool, count, draws, outputs

        state = (self.images.value, self.count.value, self.draws.value, ops.zeros_like(images))
        # Images are queried one after another, in order, as in the reference.
        pool, count, draws, outputs = ops.fori_loop(0, ops.shape(images)[0], query, state)
        self.images.assign(pool)
        self.count.assign(count)
        self.draws.assign(draws)
        return outputs

    def _draw(self, draws):
        """The coin in [0, 1) and the pool slot of the ``draws``-th decision of this replica."""
        seed = tf.stack([tf.constant(self.seed, tf.int32), self._replica_id() * 1_000_003 + draws])
        coin = tf.random.stateless_uniform((), seed=seed)
        slot = tf.random.stateless_uniform((), seed=seed + 1, maxval=self.pool_size, dtype=tf.int32)
        return coin, slot

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
