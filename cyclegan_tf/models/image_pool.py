"""The reference's history buffer of generated images (Shrivastava et al. 2017)."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ImagePool(keras.layers.Layer):
    """A buffer of previously generated images that the discriminators are trained on.

    The reference's rule, applied image by image: until the pool holds ``pool_size`` images, store each
    new image and return it; afterwards, with probability 0.5 return a random stored image and store the new
    one in its place, otherwise return the new image. ``pool_size=0`` returns its input unchanged.

    The state lives in non-trainable weights, so it works inside ``tf.function``, is saved with the model
    and restored on resume. Images of sizes of their own (``image_shape=(None, None, 3)``, for the
    ``scale_width`` and ``none`` preprocessing) come one per batch and are kept serialized in a string
    variable, so a stored image comes back at its own size, as the reference's list of tensors does. The queries are ``keras.ops``; only the random draws (stateless, keyed by
    the seed, the replica and a draw counter, so that a resumed run draws what it would have) and the
    replica id use TensorFlow. Under ``tf.distribute`` each replica keeps its own pool (the variables are
    synchronised on read and never averaged across replicas).

    Args:
        pool_size: int, images kept. Defaults to 50 (the reference's).
        image_shape: tuple ``(height, width, channels)`` of the images pooled; ``None`` height and
            width for images of any size (batches of one image).
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
        self.image_shape = tuple(None if d is None else int(d) for d in image_shape)
        self.seed = int(seed)
        if self.pool_size:
            # add_weight() has no `synchronization` argument; variables assigned as attributes are
            # tracked as the layer's non-trainable weights all the same.
            if self.variable_size:
                self.images = self._local_variable((self.pool_size,), "string", "images")
            else:
                self.images = self._local_variable(
                    (self.pool_size, *self.image_shape), "float32", "images"
                )
            self.count = self._local_variable((), "int32", "count")
            self.draws = self._local_variable((), "int32", "draws")
        self.built = True

    @property
    def variable_size(self):
        """Whether the pool takes images of any size (one per batch)."""
        return None in self.image_shape[:2]

    def call(self, images):
        """Returns a batch of the same shape: each image either itself or one from the history.

        With ``variable_size``, a batch of one image whose size may differ from the input's.
        """
        if not self.pool_size:
            return images
        if self.variable_size:
            return self._query_any_size(images)
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

    def _query_any_size(self, images):
        """The reference's rule for a batch of one image of any size (serialized storage)."""
        one_image = tf.debugging.assert_equal(
            tf.shape(images)[0],
            1,
            message="an image pool of images of any size takes batches of one image",
        )
        with tf.control_dependencies([one_image]):
            image = tf.cast(images[0], tf.float32)
        pool, count, draws = self.images.value, self.count.value, self.draws.value
        filling = count < self.pool_size
        coin, slot = self._draw(draws)
        swap = tf.logical_and(tf.logical_not(filling), coin > 0.5)
        target = tf.where(filling, count, slot)
        stored = pool[target]
        updated = tf.tensor_scatter_nd_update(pool, [[target]], [tf.io.serialize_tensor(image)])
        self.images.assign(tf.where(tf.logical_or(filling, swap), updated, pool))
        self.count.assign(count + tf.cast(filling, tf.int32))
        self.draws.assign(draws + tf.cast(tf.logical_not(filling), tf.int32))
        output = tf.cond(swap, lambda: tf.io.parse_tensor(stored, tf.float32), lambda: image)
        return tf.ensure_shape(output, [None, None, self.image_shape[2]])[None]

    def save_own_variables(self, store):
        """Saves the state; serialized images go as their bytes and lengths (``uint8``, ``int64``)."""
        if not (self.pool_size and self.variable_size):
            return super().save_own_variables(store)
        entries = [bytes(entry) for entry in self.images.numpy()]
        store["image_lengths"] = np.array([len(entry) for entry in entries], np.int64)
        store["image_bytes"] = np.frombuffer(b"".join(entries), np.uint8)
        store["count"] = np.asarray(self.count.numpy())
        store["draws"] = np.asarray(self.draws.numpy())

    def load_own_variables(self, store):
        """Restores what ``save_own_variables`` saved."""
        if not (self.pool_size and self.variable_size):
            return super().load_own_variables(store)
        data = np.asarray(store["image_bytes"], np.uint8).tobytes()
        offsets = np.concatenate([[0], np.cumsum(np.asarray(store["image_lengths"]))])
        entries = [data[start:end] for start, end in zip(offsets[:-1], offsets[1:])]
        self.images.assign(tf.constant(entries, tf.string))
        self.count.assign(np.asarray(store["count"]))
        self.draws.assign(np.asarray(store["draws"]))

    def _draw(self, draws):
        """The coin in [0, 1) and the pool slot of the ``draws``-th decision of this replica."""
        seed = tf.stack([tf.constant(self.seed, tf.int32), self._replica_id() * 1_000_003 + draws])
        coin = tf.random.stateless_uniform((), seed=seed)
        slot = tf.random.stateless_uniform((), seed=seed + 1, maxval=self.pool_size, dtype=tf.int32)
        return coin, slot

    def _local_variable(self, shape, dtype, name):
        """A per-replica variable: synchronised on read, never averaged across replicas."""
        if dtype == "string":
            initializer = np.full(shape, b"", dtype=object)
        else:
            initializer = keras.initializers.Zeros()
        return keras.Variable(
            initializer=initializer,
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
