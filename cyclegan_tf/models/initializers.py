"""The reference's weight initialisations (``init_weights`` of the official releases).

Light: Keras loads when an initializer is first built, so that the options that name these
initialisations (``INIT_TYPES``) are read without TensorFlow.
"""

from cyclegan_tf.lazy import LazyModule

keras = LazyModule("keras")

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def initializer(init_type="normal", gain=0.02):
    """The kernel initializer of the reference's ``init_weights(net, init_type, init_gain)``.

    ``normal``: N(0, gain) (CycleGAN's); ``xavier``: ``xavier_normal_`` with ``gain``, a normal of
    standard deviation ``gain * sqrt(2 / (fan_in + fan_out))`` (CUT's); ``kaiming``:
    ``kaiming_normal_(a=0, mode="fan_in")``, ``sqrt(2 / fan_in)`` whatever the gain; ``orthogonal``:
    ``orthogonal_`` with ``gain``. Biases start at zero in every case. Fans are counted as PyTorch does
    (kernel area times channels), for dense, convolution and transposed-convolution kernels alike.

    Args:
        init_type: str, one of ``INIT_TYPES``. Defaults to ``"normal"``.
        gain: float, the scale of ``normal``, ``xavier`` and ``orthogonal``. Defaults to 0.02.

    Returns:
        A ``keras.initializers.Initializer``.
    """
    check_init_type(init_type)
    gain = float(gain)
    if init_type == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=gain)
    if init_type == "xavier":
        return keras.initializers.VarianceScaling(gain**2, "fan_avg", "untruncated_normal")
    if init_type == "kaiming":
        return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    return keras.initializers.Orthogonal(gain)


def check_init_type(init_type):
    """Raises ``ValueError`` unless ``init_type`` is one of ``INIT_TYPES``.

    Checking builds no initializer: each one built draws a seed from Python's random state, and the
    networks' weights for a given ``keras.utils.set_random_seed`` depend on how many are built.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(
            f"init_type must be one of {list(INIT_TYPES)}. Received: init_type={init_type!r}"
        )


def reference_initializer():
    """Weights drawn from N(0, 0.02) as in the reference's ``init_weights(init_type="normal")``."""
    return initializer("normal", 0.02)
