"""Small building blocks shared by the generators and discriminators.

The padding layers exist so that the Keras networks reproduce PyTorch's padding arithmetic exactly:
Keras' ``padding="same"`` pads stride-2 convolutions asymmetrically, whereas the reference pads every side
by the same amount. Explicit padding followed by ``"valid"`` convolutions gives the reference's outputs, which
is what lets the official PyTorch weights import one to one.
"""

import keras
from keras import ops


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


def instance_norm(name=None, policy=None):
    """Instance normalization as in PyTorch's ``InstanceNorm2d`` defaults (eps 1e-5, no affine).

    ``GroupNormalization`` with one group per channel normalises each image and channel over its spatial
    axes, which is instance normalization; it is computed in float32 under mixed precision.

    Args:
        name: str or None, the layer name.
        policy: the dtype policy of the network it belongs to; None for the global policy.

    Returns:
        A ``keras.layers.GroupNormalization`` layer.
    """
    return keras.layers.GroupNormalization(
        groups=-1,
        epsilon=1e-5,
        center=False,
        scale=False,
        dtype=float32_if_mixed(policy),
        name=name,
    )


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


def reference_initializer():
    """Weights drawn from N(0, 0.02) as in the reference's ``init_weights(init_type="normal")``."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def conv2d(filters, kernel_size, strides=1, name=None, policy=None):
    """A ``"valid"`` ``Conv2D`` initialised as the reference's (N(0, 0.02) kernel, zero bias)."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        kernel_initializer=reference_initializer(),
        bias_initializer="zeros",
        dtype=policy,
        name=name,
    )


def conv(filters, kernel_size, strides=1, torch_padding=0, name=None):
    """A convolution padded the way PyTorch's ``nn.Conv2d(padding=torch_padding)`` is.

    Args:
        filters: int, output channels.
        kernel_size: int, square kernel size.
        strides: int, the stride. Defaults to 1.
        torch_padding: int, zero padding added on every side before a ``"valid"`` convolution.
        name: str or None, the convolution's name; the padding layer gets ``name + "_pad"``.

    Returns:
        A callable mapping a tensor to the convolved tensor.
    """
    layers = []
    if torch_padding:
        layers.append(
            keras.layers.ZeroPadding2D(torch_padding, name=None if name is None else f"{name}_pad")
        )
    layers.append(conv2d(filters, kernel_size, strides=strides, name=name))
    return _chain(layers)


def conv_transpose2d(filters, name=None, policy=None):
    """The ``Conv2DTranspose`` (3x3, stride 2, ``"valid"``) of PyTorch's upsampling; see ``conv_transpose``."""
    return keras.layers.Conv2DTranspose(
        filters,
        3,
        strides=2,
        padding="valid",
        kernel_initializer=reference_initializer(),
        bias_initializer="zeros",
        dtype=policy,
        name=name,
    )


def torch_transpose_crop(name=None, policy=None):
    """Drops the first row and column of a full transposed convolution, as PyTorch's padding does."""
    return keras.layers.Cropping2D(((1, 0), (1, 0)), dtype=policy, name=name)


def _chain(layers):
    def apply(x):
        for layer in layers:
            x = layer(x)
        return x

    return apply
