"""The reference ResNet generator (Johnson et al. 2016 as adapted by Zhu et al. 2017)."""

import keras

from cyclegan_tf.models import layers as blocks

_DOWNSAMPLINGS = 2


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ResidualBlock(keras.layers.Layer):
    """``x + [ReflectionPad 1, Conv 3x3, IN, ReLU, ReflectionPad 1, Conv 3x3, IN](x)``.

    The reference's ``ResnetBlock`` with reflection padding, no dropout and biased convolutions.

    Args:
        filters: int, channels in and out.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.pad_1 = blocks.ReflectionPadding2D(1, name="pad_1")
        self.conv_1 = keras.layers.Conv2D(
            filters, 3, kernel_initializer=blocks.reference_initializer(), name="conv_1"
        )
        self.norm_1 = blocks.instance_norm(name="norm_1")
        self.pad_2 = blocks.ReflectionPadding2D(1, name="pad_2")
        self.conv_2 = keras.layers.Conv2D(
            filters, 3, kernel_initializer=blocks.reference_initializer(), name="conv_2"
        )
        self.norm_2 = blocks.instance_norm(name="norm_2")

    def build(self, input_shape):
        padded = self.pad_1.compute_output_shape(input_shape)
        self.conv_1.build(padded)
        conv_shape = self.conv_1.compute_output_shape(padded)
        self.norm_1.build(conv_shape)
        self.conv_2.build(padded)
        self.norm_2.build(conv_shape)
        self.built = True

    def call(self, inputs):
        x = self.norm_1(self.conv_1(self.pad_1(inputs)))
        x = keras.ops.relu(x)
        x = self.norm_2(self.conv_2(self.pad_2(x)))
        return inputs + keras.ops.cast(x, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def resnet_generator(ngf=64, n_res_blocks=9, channels=3, name="generator"):
    """Builds the reference ResNet generator as a functional ``keras.Model``.

    ReflectionPad 3, Conv 7x7 (ngf), IN, ReLU; two stride-2 Conv 3x3 (ngf*2, ngf*4) + IN + ReLU;
    ``n_res_blocks`` residual blocks; two stride-2 ConvTranspose 3x3 (ngf*2, ngf) + IN + ReLU;
    ReflectionPad 3, Conv 7x7 (channels), tanh. Any height and width that are multiples of 4 give an
    output of the same size. At the defaults it has 11,378,179 parameters.

    Args:
        ngf: int, filters of the first layer. Defaults to 64.
        n_res_blocks: int, residual blocks at the bottleneck. Defaults to 9.
        channels: int, image channels in and out. Defaults to 3.
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` images in [-1, 1] to the same shape.

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
        ICCV 2017; ``ResnetGenerator`` in the official PyTorch release.
    """
    _check_positive(ngf=ngf, channels=channels)
    if n_res_blocks < 0:
        raise ValueError(f"n_res_blocks must be >= 0. Received: n_res_blocks={n_res_blocks}")
    inputs = keras.Input((None, None, channels), name="images")
    x = blocks.ReflectionPadding2D(3, name="stem_pad")(inputs)
    x = blocks.conv(ngf, 7, name="stem_conv")(x)
    x = _norm_relu(x, "stem")
    for i in range(_DOWNSAMPLINGS):
        x = blocks.conv(ngf * 2 ** (i + 1), 3, strides=2, torch_padding=1, name=f"down_{i}_conv")(x)
        x = _norm_relu(x, f"down_{i}")
    for i in range(n_res_blocks):
        x = ResidualBlock(ngf * 2**_DOWNSAMPLINGS, name=f"res_{i}")(x)
    for i in range(_DOWNSAMPLINGS):
        x = blocks.conv_transpose(ngf * 2 ** (_DOWNSAMPLINGS - i - 1), name=f"up_{i}_conv")(x)
        x = _norm_relu(x, f"up_{i}")
    x = blocks.ReflectionPadding2D(3, name="head_pad")(x)
    x = blocks.conv(channels, 7, name="head_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype=blocks.float32_if_mixed(), name="tanh")(x)
    return keras.Model(inputs, outputs, name=name)


def _norm_relu(x, prefix):
    x = blocks.instance_norm(name=f"{prefix}_norm")(x)
    return keras.layers.ReLU(name=f"{prefix}_relu")(x)


def _check_positive(**values):
    for key, value in values.items():
        if int(value) <= 0:
            raise ValueError(f"{key} must be a positive integer. Received: {key}={value}")
