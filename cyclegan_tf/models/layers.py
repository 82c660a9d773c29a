"""Small building blocks shared by the generators and discriminators.

The padding layers exist so that the Keras networks reproduce PyTorch's padding arithmetic exactly:
Keras' ``padding="same"`` pads stride-2 convolutions asymmetrically, whereas the reference pads every side
by the same amount. Explicit padding followed by ``"valid"`` convolutions gives the reference's outputs, which
is what lets the official PyTorch weights import one to one.
"""

import keras
import numpy as np
from keras import ops

from cyclegan_tf import _keras_compat
from cyclegan_tf.models.initializers import reference_initializer


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ReflectionPadding2D(keras.layers.Layer):
    """Reflection padding of the two spatial axes of an NHWC tensor (PyTorch's ``nn.ReflectionPad2d``).

    Args:
        padding: int, pixels added on each side of height and width. Defaults to 1.
        **kwargs: Base layer keyword arguments.

    Example:
        >>> ReflectionPadding2D(3)(keras.ops.zeros((1, 8, 8, 3))).shape
        (1, 14, 14, 3)
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0. Received: padding={padding}")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class InstanceNormalization(keras.layers.GroupNormalization):
    """An instance norm (``GroupNormalization`` with one group per channel) differentiable twice.

    The same values as the parent; its statistics come from ``_keras_compat.spatial_moments``, whose
    second derivatives are right, so that a gradient penalty (WGAN-GP) through it is the reference's.
    The discriminators use it.

    Args:
        **kwargs: ``GroupNormalization`` keyword arguments (``groups`` is -1).
    """

    def call(self, inputs):
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32")
        mean, variance = _keras_compat.spatial_moments(x)
        inv = ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * ops.cast(self.gamma, x.dtype)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + ops.cast(self.beta, x.dtype)
        return ops.cast(x * inv + shift, dtype)


def instance_norm(name=None, policy=None, affine=False, twice_differentiable=False):
    """Instance normalization as in PyTorch's ``InstanceNorm2d`` defaults (eps 1e-5, no affine).

    ``GroupNormalization`` with one group per channel normalises each image and channel over its spatial
    axes, which is instance normalization; it is computed in float32 under mixed precision.

    Args:
        name: str or None, the layer name.
        policy: the dtype policy of the network it belongs to; None for the global policy.
        affine: bool, a learned scale (``gamma``, PyTorch's ``weight``, initially 1) and shift
            (``beta``, its ``bias``, initially 0) per channel: ``InstanceNorm2d(affine=True)``.
            Defaults to False.
        twice_differentiable: bool, an ``InstanceNormalization``, whose second derivatives are
            right (a discriminator's, for the gradient penalty). Defaults to False.

    Returns:
        A ``keras.layers.GroupNormalization`` layer.
    """
    layer_class = InstanceNormalization if twice_differentiable else keras.layers.GroupNormalization
    return layer_class(
        groups=-1,
        epsilon=1e-5,
        center=bool(affine),
        scale=bool(affine),
        dtype=float32_if_mixed(policy),
        name=name,
    )


# The official releases' ``--norm`` choices (``get_norm_layer`` in their ``networks.py``).
NORMS = ("instance", "batch", "none")


def norm_layer(
    norm="instance",
    affine=False,
    name=None,
    policy=None,
    init_gain=0.02,
    twice_differentiable=False,
):
    """The normalisation of the official ``--norm`` choices, or None for ``"none"``.

    ``"instance"``: ``InstanceNorm2d(affine=affine)`` (``instance_norm``; with ``affine``, a learned
    scale and shift per channel, as many re-implementations have). ``"batch"``:
    ``BatchNorm2d(affine=True, track_running_stats=True)``, PyTorch's momentum 0.1 (Keras' 0.9) and
    epsilon 1e-5, synchronised across the replicas of a distribution strategy (``synchronized``,
    the statistics of the global batch); inference uses the running statistics. ``"none"``: no
    layer (the official ``Identity``). A batch norm's scale starts at N(1, ``init_gain``), as the
    official ``init_weights`` draws it.

    Args:
        norm: str, one of ``NORMS``. Defaults to ``"instance"``.
        affine: bool, the instance norm's learned scale and shift (a batch norm always has them).
        name: str or None, the layer name.
        policy: the dtype policy of the network it belongs to; None for the global policy.
        init_gain: float, the spread of a batch norm's initial scale. Defaults to 0.02.
        twice_differentiable: bool, an instance norm whose second derivatives are right
            (``InstanceNormalization``; a batch norm's are, synchronised). Defaults to False.

    Returns:
        A Keras layer, or None for ``"none"``.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}. Received: norm={norm!r}")
    if norm == "instance":
        return instance_norm(name, policy, affine, twice_differentiable)
    if norm == "batch":
        return keras.layers.BatchNormalization(
            momentum=0.9,
            epsilon=1e-5,
            synchronized=True,
            gamma_initializer=keras.initializers.RandomNormal(1.0, float(init_gain)),
            dtype=float32_if_mixed(policy),
            name=name,
        )
    return None


def float32_if_mixed(policy=None):
    """The dtype for layers that must compute in float32 under a mixed-precision policy.

    Normalisation statistics, the generator's tanh output and the discriminator logits stay float32 so
    that losses and exported models see float32; without a mixed policy the network's policy applies.

    Args:
        policy: a ``keras.DTypePolicy``, its name, or None for the global policy.

    Returns:
        ``"float32"`` under a mixed policy, else ``policy`` (None: the global policy).
    """
    resolved = keras.config.dtype_policy() if policy is None else keras.dtype_policies.get(policy)
    return "float32" if resolved.compute_dtype != resolved.variable_dtype else policy


def conv2d(
    filters, kernel_size, strides=1, name=None, policy=None, kernel_initializer=None, use_bias=True
):
    """A ``"valid"`` ``Conv2D`` initialised as the reference's (N(0, 0.02) kernel, zero bias).

    ``kernel_initializer`` (an ``initializer``) replaces the N(0, 0.02) kernel; ``use_bias=False``
    leaves the bias out (the reference's convolutions before a batch norm).
    """
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        use_bias=use_bias,
        kernel_initializer=kernel_initializer or reference_initializer(),
        bias_initializer="zeros",
        dtype=policy,
        name=name,
    )


def conv(
    filters,
    kernel_size,
    strides=1,
    torch_padding=0,
    name=None,
    kernel_initializer=None,
    use_bias=True,
):
    """A convolution padded the way PyTorch's ``nn.Conv2d(padding=torch_padding)`` is.

    Args:
        filters: int, output channels.
        kernel_size: int, square kernel size.
        strides: int, the stride. Defaults to 1.
        torch_padding: int, zero padding added on every side before a ``"valid"`` convolution.
        name: str or None, the convolution's name; the padding layer gets ``name + "_pad"``.
        kernel_initializer: an ``initializer`` or None for N(0, 0.02).
        use_bias: bool, a bias (zeros at first). Defaults to True.

    Returns:
        A callable mapping a tensor to the convolved tensor.
    """
    layers = []
    if torch_padding:
        layers.append(
            keras.layers.ZeroPadding2D(torch_padding, name=None if name is None else f"{name}_pad")
        )
    layers.append(
        conv2d(
            filters,
            kernel_size,
            strides=strides,
            name=name,
            kernel_initializer=kernel_initializer,
            use_bias=use_bias,
        )
    )
    return _chain(layers)


def conv_transpose2d(
    filters, name=None, policy=None, kernel_initializer=None, use_bias=True, kernel_size=3
):
    """The ``Conv2DTranspose`` (stride 2, ``"valid"``) of PyTorch's upsampling, 3x3 by default.

    ``kernel_initializer`` (an ``initializer``) replaces the N(0, 0.02) kernel; ``use_bias=False``
    leaves the bias out. PyTorch's ``padding=p`` is a crop of ``p`` rows and columns of the full
    output (``torch_transpose_crop`` for the ResNet's 3x3 kernels, which also has ``output_padding``).
    """
    return keras.layers.Conv2DTranspose(
        filters,
        kernel_size,
        strides=2,
        padding="valid",
        use_bias=use_bias,
        kernel_initializer=kernel_initializer or reference_initializer(),
        bias_initializer="zeros",
        dtype=policy,
        name=name,
    )


def torch_transpose_crop(name=None, policy=None):
    """Drops the first row and column of a full transposed convolution, as PyTorch's padding does."""
    return keras.layers.Cropping2D(((1, 0), (1, 0)), dtype=policy, name=name)


# The fixed filters of CUT's anti-aliased sampling (``get_filter`` in its ``networks.py``): the
# binomial [1, 2, 1] of ``Downsample(filt_size=3)`` and [1, 3, 3, 1] of ``Upsample(filt_size=4)``.
_BLUR_DOWN_TAPS = (1.0, 2.0, 1.0)
# The upsampling filter, normalised and times stride**2, is [1, 3, 3, 1] / 4 per axis: each output row
# is a 1:3 blend of the two nearest input rows, as bilinear interpolation with half-pixel centres.
_BLUR_UP_NEAR, _BLUR_UP_FAR = 0.75, 0.25


def blur_down_kernel(channels, dtype="float32"):
    """The depthwise kernel ``[3, 3, channels, 1]`` of ``BlurPool2D``: ``[1, 2, 1]`` squared, over 16."""
    taps = np.asarray(_BLUR_DOWN_TAPS)
    square = np.outer(taps, taps) / np.sum(taps) ** 2
    return np.tile(square[:, :, None, None], (1, 1, int(channels), 1)).astype(dtype)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class BlurPool2D(keras.layers.Layer):
    """Anti-aliased downsampling by 2: reflection padding 1, a [1, 2, 1] x [1, 2, 1] / 16 blur, stride 2.

    CUT's ``Downsample(channels)`` (``pad_type="reflect"``, ``filt_size=3``, ``stride=2``), after
    Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019. The filter is fixed
    (PyTorch keeps it as a buffer, not a parameter): the layer has no weights. An input of ``H``
    rows gives ``ceil(H / 2)``.

    Args:
        **kwargs: Base layer keyword arguments.

    Example:
        >>> BlurPool2D()(keras.ops.ones((1, 7, 8, 2))).shape
        (1, 4, 4, 2)
    """

    def call(self, inputs):
        padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        kernel = ops.convert_to_tensor(blur_down_kernel(inputs.shape[-1]), dtype=inputs.dtype)
        return ops.depthwise_conv(padded, kernel, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (
            batch,
            None if height is None else (height + 1) // 2,
            None if width is None else (width + 1) // 2,
            channels,
        )


def blur_upsample_padded(inputs, axis):
    """Doubles ``axis`` of a tensor padded by one edge row on both sides of that axis.

    The polyphase form of CUT's ``Upsample``: output row ``2m`` is ``0.25 x[m - 1] + 0.75 x[m]`` and
    row ``2m + 1`` is ``0.75 x[m] + 0.25 x[m + 1]``, where ``x`` is the unpadded input. A tensor of
    ``n + 2`` rows along ``axis`` gives ``2 n``. ``BlurUpsample2D`` and the tiled engine's bands both
    use it, so that they compute the same values.

    Args:
        inputs: tensor ``[batch, H, W, C]``, already padded along ``axis`` (1 or 2).
        axis: int, 1 (rows) or 2 (columns).

    Returns:
        The upsampled tensor.
    """

    def part(start, stop):
        index = [slice(None)] * 4
        index[axis] = slice(start, stop)
        return inputs[tuple(index)]

    before, middle, after = part(None, -2), part(1, -1), part(2, None)
    even = _BLUR_UP_FAR * before + _BLUR_UP_NEAR * middle
    odd = _BLUR_UP_NEAR * middle + _BLUR_UP_FAR * after
    shape = ops.shape(middle)
    interleaved = ops.stack([even, odd], axis=axis + 1)
    new_shape = [shape[0], shape[1], shape[2], shape[3]]
    new_shape[axis] = 2 * shape[axis]
    return ops.reshape(interleaved, new_shape)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class BlurUpsample2D(keras.layers.Layer):
    """Anti-aliased upsampling by 2: CUT's ``Upsample(channels)`` (a fixed [1, 3, 3, 1] filter).

    PyTorch's ``Upsample`` pads by replication, runs a stride-2 transposed convolution with the
    filter ``[1, 3, 3, 1]`` squared (normalised, times 4) and crops one row and column on each
    side; that is a 1:3 blend of the two nearest input rows (see ``blur_upsample_padded``), then the
    same for columns. No weights; ``H`` rows give ``2 H``.

    Args:
        **kwargs: Base layer keyword arguments.

    Example:
        >>> BlurUpsample2D()(keras.ops.ones((1, 3, 5, 2))).shape
        (1, 6, 10, 2)
    """

    def call(self, inputs):
        # Replication padding by one is symmetric padding by one.
        padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")
        return blur_upsample_padded(blur_upsample_padded(padded, axis=1), axis=2)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (
            batch,
            None if height is None else 2 * height,
            None if width is None else 2 * width,
            channels,
        )


def _chain(layers):
    def apply(x):
        for layer in layers:
            x = layer(x)
        return x

    return apply


def check_positive(**values):
    """Raises ``ValueError`` naming the first argument that is not a positive integer."""
    for key, value in values.items():
        if isinstance(value, bool) or int(value) <= 0:
            raise ValueError(f"{key} must be a positive integer. Received: {key}={value}")
