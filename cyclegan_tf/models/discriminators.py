"""The reference discriminators: the PatchGAN, the 1x1 PixelGAN, and a global (one score per image) variant."""

import keras

from cyclegan_tf.models import initializers
from cyclegan_tf.models import layers as blocks
from cyclegan_tf.models.generators import check_positive

_LEAKY_SLOPE = 0.2  # the reference's; Keras' LeakyReLU defaults to 0.3


class _Norms:
    """The discriminators' norm layers and biases: ``--norm`` and the reference's bias rule.

    A convolution followed by a norm has a bias with an instance norm only (the reference's
    ``use_bias``: a batch norm's shift replaces it, and ``none`` follows the same rule).
    """

    def __init__(self, norm, affine_norm, init_gain):
        blocks.norm_layer(norm)  # checks the name, builds nothing
        self.norm, self.affine, self.init_gain = norm, bool(affine_norm), float(init_gain)
        self.use_bias = norm == "instance"

    def __call__(self, x, name):
        layer = blocks.norm_layer(
            self.norm, self.affine, name, init_gain=self.init_gain, twice_differentiable=True
        )
        return x if layer is None else layer(x)


def _trunk(inputs, ndf, n_layers, antialias, init, norms):
    """C64 - C128 - C256 - C512: the reference's ``NLayerDiscriminator`` without its final conv.

    With ``antialias`` (CUT's default) each stride-2 convolution is a stride-1 one followed (after its
    norm and LeakyReLU) by a ``BlurPool2D``, as CUT's ``NLayerDiscriminator`` does.
    """

    def downsampling(x, filters, index, norm):
        x = blocks.conv(
            filters,
            4,
            strides=1 if antialias else 2,
            torch_padding=1,
            name=f"conv_{index}",
            kernel_initializer=init(),
            use_bias=norms.use_bias or not norm,
        )(x)
        if norm:
            x = norms(x, name=f"conv_{index}_norm")
        x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name=f"conv_{index}_lrelu")(x)
        return blocks.BlurPool2D(name=f"conv_{index}_blur")(x) if antialias else x

    x = downsampling(inputs, ndf, 0, norm=False)
    multiplier = 1
    for i in range(1, n_layers):
        multiplier = min(2**i, 8)
        x = downsampling(x, ndf * multiplier, i, norm=True)
    multiplier = min(2**n_layers, 8)
    x = blocks.conv(
        ndf * multiplier,
        4,
        strides=1,
        torch_padding=1,
        name=f"conv_{n_layers}",
        kernel_initializer=init(),
        use_bias=norms.use_bias,
    )(x)
    x = norms(x, name=f"conv_{n_layers}_norm")
    return keras.layers.LeakyReLU(_LEAKY_SLOPE, name=f"conv_{n_layers}_lrelu")(x)


def _initializers(init_type, init_gain):
    """A factory of fresh kernel initializers (an unseeded one drawn twice repeats its values)."""
    initializers.check_init_type(init_type)
    return lambda: initializers.initializer(init_type, init_gain)


def patch_discriminator(
    ndf=64,
    n_layers=3,
    channels=3,
    antialias=False,
    init_type="normal",
    init_gain=0.02,
    norm="instance",
    affine_norm=False,
    name="discriminator",
):
    """Builds the reference 70x70 PatchGAN discriminator (``--netD basic``, or ``n_layers``).

    Conv 4x4 s2 (ndf) + LeakyReLU(0.2); ``n_layers - 1`` Conv 4x4 s2 + norm + LeakyReLU; Conv 4x4 s1
    + norm + LeakyReLU; Conv 4x4 s1 to one channel. PyTorch padding 1 everywhere, no sigmoid: a 256-pixel
    input gives a 30x30 map of logits. At the defaults it has 2,764,737 parameters. With
    ``antialias`` (CUT's), the stride-2 convolutions are stride-1 ones followed by a ``BlurPool2D``.

    Args:
        ndf: int, filters of the first layer. Defaults to 64.
        n_layers: int, stride-2 convolutions. Defaults to 3.
        channels: int, image channels. Defaults to 3.
        antialias: bool, CUT's blurred downsampling. Defaults to False.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        norm: str, ``"instance"``, ``"batch"`` or ``"none"`` (``layers.NORMS``). Defaults to
            ``"instance"``.
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` to ``[batch, h, w, 1]`` logits.

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
        ``NLayerDiscriminator`` in the official PyTorch releases of CycleGAN and CUT.
    """
    check_positive(ndf=ndf, n_layers=n_layers, channels=channels)
    init = _initializers(init_type, init_gain)
    norms = _Norms(norm, affine_norm, init_gain)
    inputs = keras.Input((None, None, channels), name="images")
    x = _trunk(inputs, ndf, n_layers, antialias, init, norms)
    x = blocks.conv(1, 4, strides=1, torch_padding=1, name="logits", kernel_initializer=init())(x)
    outputs = keras.layers.Activation(
        "linear", dtype=blocks.float32_if_mixed(), name="float32_logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def global_discriminator(
    ndf=64,
    n_layers=3,
    channels=3,
    antialias=False,
    init_type="normal",
    init_gain=0.02,
    norm="instance",
    affine_norm=False,
    name="discriminator",
):
    """The same trunk, then global average pooling, FC1 + LeakyReLU(0.2) and FC2: one score per image.

    This is the seed design's discriminator (C64-C128-C256-C512, FC1, FC2) without its sigmoid: the
    losses take logits.

    Args:
        ndf: int, filters of the first layer. Defaults to 64.
        n_layers: int, stride-2 convolutions. Defaults to 3.
        channels: int, image channels. Defaults to 3.
        antialias: bool, CUT's blurred downsampling in the trunk. Defaults to False.
        init_type: str, the initialisation (``initializers.INIT_TYPES``). Defaults to ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        norm: str, the trunk's norm (``layers.NORMS``). Defaults to ``"instance"``.
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` to ``[batch, 1]`` logits.
    """
    check_positive(ndf=ndf, n_layers=n_layers, channels=channels)
    init = _initializers(init_type, init_gain)
    inputs = keras.Input((None, None, channels), name="images")
    x = _trunk(inputs, ndf, n_layers, antialias, init, _Norms(norm, affine_norm, init_gain))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(ndf * min(2**n_layers, 8), kernel_initializer=init(), name="fc1")(x)
    x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name="fc1_lrelu")(x)
    x = keras.layers.Dense(1, kernel_initializer=init(), name="fc2")(x)
    outputs = keras.layers.Activation(
        "linear", dtype=blocks.float32_if_mixed(), name="float32_logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def pixel_discriminator(
    ndf=64,
    n_layers=None,
    channels=3,
    antialias=False,
    init_type="normal",
    init_gain=0.02,
    norm="instance",
    affine_norm=False,
    name="discriminator",
):
    """Builds the reference 1x1 PixelGAN discriminator (``--netD pixel``): one logit per pixel.

    Conv 1x1 (ndf) + LeakyReLU(0.2); Conv 1x1 (2 ndf) + norm + LeakyReLU(0.2); Conv 1x1 to one
    channel. As in the reference, the last two convolutions have biases with an instance norm only.
    It has no downsampling: ``n_layers`` and ``antialias`` are not used (the official ``--netD
    pixel`` ignores ``--n_layers_D`` too).

    Args:
        ndf: int, filters of the first layer. Defaults to 64.
        n_layers: not used.
        channels: int, image channels. Defaults to 3.
        antialias: not used.
        init_type: str, the initialisation (``initializers.INIT_TYPES``). Defaults to ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        norm: str, ``layers.NORMS``. Defaults to ``"instance"``.
        affine_norm: bool, the instance norm's learned scale and shift. Defaults to False.
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` to ``[batch, H, W, 1]`` logits.

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
        ``PixelDiscriminator`` in the official PyTorch release.
    """
    del n_layers, antialias
    check_positive(ndf=ndf, channels=channels)
    init = _initializers(init_type, init_gain)
    norms = _Norms(norm, affine_norm, init_gain)
    inputs = keras.Input((None, None, channels), name="images")
    x = blocks.conv(ndf, 1, name="conv_0", kernel_initializer=init())(inputs)
    x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name="conv_0_lrelu")(x)
    x = blocks.conv(2 * ndf, 1, name="conv_1", kernel_initializer=init(), use_bias=norms.use_bias)(
        x
    )
    x = norms(x, name="conv_1_norm")
    x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name="conv_1_lrelu")(x)
    x = blocks.conv(1, 1, name="logits", kernel_initializer=init(), use_bias=norms.use_bias)(x)
    outputs = keras.layers.Activation(
        "linear", dtype=blocks.float32_if_mixed(), name="float32_logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


DISCRIMINATORS = {
    "patch": patch_discriminator,
    "global": global_discriminator,
    "pixel": pixel_discriminator,
}


def build_discriminator(kind="patch", **kwargs):
    """Builds a discriminator by name.

    Args:
        kind: str, one of ``DISCRIMINATORS`` (``"patch"``, ``"global"`` or ``"pixel"``). Defaults
            to ``"patch"``.
        **kwargs: Passed to the builder (``ndf``, ``n_layers``, ``channels``, ``antialias``,
            ``init_type``, ``init_gain``, ``norm``, ``affine_norm``, ``name``).

    Returns:
        A ``keras.Model``.
    """
    if kind not in DISCRIMINATORS:
        raise ValueError(
            f"Unknown discriminator {kind!r}; expected one of {sorted(DISCRIMINATORS)}. "
            f"Received: kind={kind!r}"
        )
    return DISCRIMINATORS[kind](**kwargs)
