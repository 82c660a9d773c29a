"""PatchNCE (Park et al. 2020): the projection head, the patch sampling and the contrastive loss.

A source image and its translation go through the generator's encoder; at each chosen map the same
randomly chosen locations (patches) are taken from both, projected by a small MLP and L2-normalised.
Each translated patch (a *query*) must pick out the source patch at its own location (its *positive*
key) among the source patches at the other locations of the same image (the *negatives*): a
cross-entropy over similarities divided by a temperature.
"""

import keras
import tensorflow as tf
from keras import ops

from cyclegan_tf.models import initializers

# The official ``Normalize``: x / (||x||_2 + 1e-7).
_NORM_EPSILON = 1e-7
# The official ``PatchNCELoss`` fills the diagonal of the negatives (a patch against itself) with -10
# before dividing by the temperature: exp(-10 / 0.07) is nothing next to the other logits.
_MASKED_LOGIT = -10.0


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class PatchNormalization(keras.layers.Layer):
    """Divides each vector (last axis) by its L2 norm plus 1e-7, in float32 (the official ``Normalize``).

    Args:
        **kwargs: Base layer keyword arguments.
    """

    def call(self, inputs):
        inputs = ops.cast(inputs, "float32")
        norm = ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True))
        return inputs / (norm + _NORM_EPSILON)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class PatchProjection(keras.Model):
    """The PatchNCE projection head: one two-layer MLP per feature map, L2-normalised outputs.

    For map ``i`` of ``channels[i]`` channels: Dense(``units``), ReLU, Dense(``units``), then each
    vector divided by its L2 norm (``PatchNormalization``); the official ``PatchSampleF`` with
    ``use_mlp=True``. It is built with its weights (the input widths are known from the generator), so
    the optimizer and any distribution strategy see its variables before the first step; the
    official code creates it at the first forward pass.

    Args:
        channels: sequence of int, the channels of each feature map.
        units: int, the MLP's width and output size (the official ``--netF_nc``). Defaults to 256.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to
            ``"xavier"`` (CUT's).
        init_gain: float, its scale. Defaults to 0.02.
        dtype: a dtype policy or None for the global one (the normalisation computes in float32).
        name: str. Defaults to ``"projection"``.
        **kwargs: Base model keyword arguments (``trainable``).

    Example:
        >>> projection = PatchProjection([3, 16], units=8)
        >>> outputs = projection([keras.ops.ones((2, 5, 3)), keras.ops.ones((2, 5, 16))])
        >>> [tuple(o.shape) for o in outputs]
        [(2, 5, 8), (2, 5, 8)]

    Reference:
        Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020.
    """

    def __init__(
        self,
        channels,
        units=256,
        init_type="xavier",
        init_gain=0.02,
        dtype=None,
        name="projection",
        **kwargs,
    ):
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1 or int(units) < 1:
            raise ValueError(
                "channels must be one or more positive widths and units positive. "
                f"Received: channels={channels}, units={units}"
            )
        initializers.check_init_type(init_type)
        policy = keras.dtype_policies.get(dtype) if dtype is not None else None
        inputs = [keras.Input((None, c), name=f"patches_{i}") for i, c in enumerate(channels)]
        outputs = []
        for i, x in enumerate(inputs):
            for j, activation in enumerate(("relu", None)):
                x = keras.layers.Dense(
                    units,
                    activation=activation,
                    kernel_initializer=initializers.initializer(init_type, init_gain),
                    bias_initializer="zeros",
                    dtype=policy,
                    name=f"mlp_{i}_dense_{j}",
                )(x)
            outputs.append(PatchNormalization(dtype="float32", name=f"mlp_{i}_l2")(x))
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=policy, **kwargs)
        self.channels = channels
        self.units = int(units)
        self.init_type = init_type
        self.init_gain = float(init_gain)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "channels": self.channels,
            "units": self.units,
            "init_type": self.init_type,
            "init_gain": self.init_gain,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _mix(x):
    """A bijective 32-bit integer hash (``lowbias32``): equal bits in eager, graph and XLA code.

    TensorFlow's stateless random ops give other numbers under XLA than without it; a training step
    must draw the same patches whether or not XLA compiles it, and when it is resumed.
    """
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def derive_seed(*words):
    """One ``uint32`` seed from integers (Python or tensors, up to 64 bits each), hashed in order."""
    seed = tf.constant(0x9E3779B9, tf.uint32)
    for word in words:
        word = tf.cast(word, tf.int64)
        for half in (tf.bitwise.bitwise_and(word, 0xFFFFFFFF), tf.bitwise.right_shift(word, 32)):
            seed = _mix(tf.bitwise.bitwise_xor(seed, tf.cast(half, tf.uint32)))
    return seed


def random_bit(seed):
    """A scalar bool, true for half of the seeds (``derive_seed``)."""
    return tf.bitwise.right_shift(_mix(seed), 31) > 0


def random_unit_floats(count, seed):
    """``count`` floats uniform in [0, 1) (24 bits each) from a ``derive_seed`` seed, as ``random_bit``.

    Args:
        count: int or scalar tensor.
        seed: scalar ``uint32`` tensor.

    Returns:
        float32 tensor ``[count]``.
    """
    index = tf.cast(tf.range(count), tf.uint32)
    bits = tf.bitwise.right_shift(_mix(tf.bitwise.bitwise_xor(_mix(index), seed)), 8)
    return tf.cast(bits, tf.float32) * (1.0 / 2**24)


def random_patch_ids(locations, num_patches, seed):
    """The first ``num_patches`` of a random permutation of ``range(locations)`` (all if fewer).

    The permutation sorts distinct hashed keys of the locations (``derive_seed``'s hash): the same
    ``seed`` gives the same patches, in eager, graph or XLA code, so a resumed run samples what it
    would have.

    Args:
        locations: int or scalar tensor, the map's height times width.
        num_patches: int, the patches wanted.
        seed: scalar ``uint32`` tensor (``derive_seed``).

    Returns:
        int32 tensor ``[min(num_patches, locations)]``.
    """
    index = tf.cast(tf.range(locations), tf.uint32)
    keys = _mix(tf.bitwise.bitwise_xor(_mix(index), seed))
    return tf.argsort(tf.cast(keys, tf.int64))[:num_patches]


def sample_patches(feature_map, patch_ids):
    """The vectors of ``feature_map`` ``[B, H, W, C]`` at the flat locations ``patch_ids``: ``[B, P, C]``.

    Every image of the batch is sampled at the same locations, as the official code does.
    """
    shape = ops.shape(feature_map)
    flat = ops.reshape(feature_map, (shape[0], shape[1] * shape[2], shape[3]))
    return ops.take(flat, patch_ids, axis=1)


def patch_nce_loss(queries, keys, temperature=0.07):
    """The PatchNCE loss of each query patch: ``[B, P]``, from projected queries and keys ``[B, P, U]``.

    The keys are not differentiated (``stop_gradient``). For query ``p`` of an image the logits are
    its similarity to key ``p`` (the positive) and to the other keys of the same image (the negatives;
    its own key among them is masked with -10), divided by ``temperature``; the loss is the
    cross-entropy towards the positive. The official ``PatchNCELoss`` with
    ``nce_includes_all_negatives_from_minibatch=False``.

    Args:
        queries: float tensor ``[B, P, U]``, the translated image's projected patches.
        keys: float tensor ``[B, P, U]``, the source image's, at the same locations.
        temperature: float, τ. Defaults to 0.07.

    Returns:
        float32 tensor ``[B, P]``.
    """
    queries = ops.cast(queries, "float32")
    keys = ops.stop_gradient(ops.cast(keys, "float32"))
    positive = ops.sum(queries * keys, axis=-1, keepdims=True)
    negative = ops.einsum("bpu,bqu->bpq", queries, keys)
    patches = ops.shape(negative)[-1]
    negative = ops.where(ops.eye(patches) > 0, _MASKED_LOGIT, negative)
    logits = ops.concatenate([positive, negative], axis=-1) / temperature
    return ops.logsumexp(logits, axis=-1) - logits[..., 0]
