"""The reference PatchGAN discriminator and a global (one score per image) variant."""

import keras

from cyclegan_tf.models import initializers
from cyclegan_tf.models import layers as blocks
from cyclegan_tf.models.generators import check_positive

_LEAKY_SLOPE = 0.2  # the reference's; Keras' LeakyReLU defaults to 0.3


def _trunk(inputs, ndf, n_layers, antialias, init):
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
        )(x)
        if norm:
            x = blocks.instance_norm(name=f"conv_{index}_norm")(x)
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
    )(x)
    x = blocks.instance_norm(name=f"conv_{n_layers}_norm")(x)
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
    name="discriminator",
):
    """Builds the reference 70x70 PatchGAN discriminator.

    Conv 4x4 s2 (ndf) + LeakyReLU(0.2); ``n_layers - 1`` Conv 4x4 s2 + IN + LeakyReLU; Conv 4x4 s1
    + IN + LeakyReLU; Conv 4x4 s1 to one channel. PyTorch padding 1 everywhere, no sigmoid: a 256-pixel
    input gives a 30x30 map of logits. At the defaults it has 2,764,737 parameters. With
    ``antialias`` (CUT's), the stride-2 convolutions are stride-1 ones followed by a ``BlurPool2D``.

    Args:
        ndf: int, filters of the first layer. Defaults to 64.
        n_layers: int, stride-2 convolutions. Defaults to 3.
        channels: int, image channels. Defaults to 3.
        antialias: bool, CUT's blurred downsampling. Defaults to False.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` to ``[batch, h, w, 1]`` logits.

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
        ``NLayerDiscriminator`` in the official PyTorch releases of CycleGAN and CUT.
    """
    check_positive(ndf=ndf, n_layers=n_layers, channels=channels)
    init = _initializers(init_type, init_gain)
    inputs = keras.Input((None, None, channels), name="images")
    x = _trunk(inputs, ndf, n_layers, antialias, init)
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
        name: str, the model name.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, channels]`` to ``[batch, 1]`` logits.
    """
    check_positive(ndf=ndf, n_layers=n_layers, channels=channels)
    init = _initializers(init_type, init_gain)
    inputs = keras.Input((None, None, channels), name="images")
    x = _trunk(inputs, ndf, n_layers, antialias, init)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(ndf * min(2**n_layers, 8), kernel_initializer=init(), name="fc1")(x)
    x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name="fc1_lrelu")(x)
    x = keras.layers.Dense(1, kernel_initializer=init(), name="fc2")(x)
    outputs = keras.layers.Activation(
        "linear", dtype=blocks.float32_if_mixed(), name="float32_logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


DISCRIMINATORS = {"patch": patch_discriminator, "global": global_discriminator}


def build_discriminator(kind="patch", **kwargs):
    """Builds a discriminator by name.

    Args:
        kind: str, one of ``DISCRIMINATORS`` (``"patch"`` or ``"global"``). Defaults to ``"patch"``.
        **kwargs: Passed to the builder (``ndf``, ``n_layers``, ``channels``, ``antialias``,
            ``init_type``, ``init_gain``, ``name``).

    Returns:
        A ``keras.Model``.
    """
    if kind not in DISCRIMINATORS:
        raise ValueError(
            f"Unknown discriminator {kind!r}; expected one of {sorted(DISCRIMINATORS)}. "
            f"Received: kind={kind!r}"
        )
    return DISCRIMINATORS[kind](**kwargs)
