"""The reference U-Net generator (pix2pix's ``unet_256`` and ``unet_128``).

``UnetGenerator`` is a functional ``keras.Model`` that carries its own architecture (``ngf``,
``num_downs``, the channels, the norm, the dropout, the initialisation) in its config, and its levels
(``levels``, outermost first) are the API the PyTorch import reads. Its receptive field is the whole
image: it cannot be tiled exactly, so the inference layer translates it whole, within a memory budget.
"""

import dataclasses

import keras

from cyclegan_tf.errors import OptionError
from cyclegan_tf.models import initializers
from cyclegan_tf.models import layers as blocks
from cyclegan_tf.models.layers import check_positive

_LEAKY_SLOPE = 0.2
# The official --netG names: levels of downsampling (each halves the image).
UNET_DOWNS = {"unet_256": 8, "unet_128": 7}
# The levels that are neither the outermost one nor one of the four that change the width.
_MIN_DOWNS = 5


@dataclasses.dataclass(frozen=True)
class UnetLevel:
    """One ``UnetSkipConnectionBlock``: its down- and up-convolutions and their norms.

    Attributes:
        down: the ``Conv2D`` (4x4, stride 2, after a zero padding of 1).
        down_norm: the norm after it, or None (the outermost and innermost levels, ``norm="none"``).
        up: the ``Conv2DTranspose`` (4x4, stride 2, cropped by 1 on every side).
        up_norm: the norm after it, or None (the outermost level, ``norm="none"``).
        dropout: bool, a ``Dropout(0.5)`` follows ``up_norm`` (the middle levels with ``dropout``).
    """

    down: keras.layers.Layer
    down_norm: keras.layers.Layer | None
    up: keras.layers.Layer
    up_norm: keras.layers.Layer | None
    dropout: bool = False


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class UnetGenerator(keras.Model):
    """The reference U-Net generator: ``num_downs`` halvings with skip connections, then back.

    From the outside in, level ``i`` is a 4x4 stride-2 convolution (widths ``ngf``, ``2 ngf``,
    ``4 ngf``, then ``8 ngf``), LeakyReLU 0.2 and norm on the way down, and on the way up ReLU, a 4x4
    stride-2 transposed convolution back to the level's input width and a norm, its output concatenated
    after the level's input (the outermost level ends with tanh instead). As in the official code,
    whose in-place LeakyReLU rewrites the tensor it also keeps for the skip connection, the skip
    connection carries the LeakyReLU of the level's input. With ``dropout`` the ``num_downs - 5``
    middle levels (width ``8 ngf``) end with ``Dropout(0.5)``. Image sides must be multiples of
    ``2 ** num_downs`` (``size_multiple``: 256 for ``unet_256``).

    Args:
        ngf: int, filters of the first level. Defaults to 64.
        num_downs: int, downsamplings, at least 5: 8 for ``unet_256``, 7 for ``unet_128``. Defaults
            to 8.
        channels: int, image channels in. Defaults to 3.
        output_channels: int or None, image channels out; None: ``channels``.
        norm: str, ``"batch"`` (the official default for pix2pix), ``"instance"`` or ``"none"``.
            Defaults to ``"instance"`` (CycleGAN's ``--norm``).
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        dropout: bool, the middle levels' dropout. Defaults to False.
        use_bias: bool or None, biases on every convolution but the last (which always has one);
            None: the official rule, with an instance norm only.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to
            ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        dtype: a dtype policy (or its name), or None for the global policy.
        name: str, the model name. Defaults to ``"generator"``.
        **kwargs: Base model keyword arguments (``trainable``).

    Example:
        >>> generator = UnetGenerator(ngf=4, num_downs=5)
        >>> generator.size_multiple, len(generator.levels)
        (32, 5)

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
        ``UnetGenerator`` and ``UnetSkipConnectionBlock`` in the official PyTorch release.
    """

    def __init__(
        self,
        ngf=64,
        num_downs=8,
        channels=3,
        output_channels=None,
        norm="instance",
        affine_norm=False,
        dropout=False,
        use_bias=None,
        init_type="normal",
        init_gain=0.02,
        dtype=None,
        name="generator",
        **kwargs,
    ):
        output_channels = channels if output_channels is None else output_channels
        check_positive(ngf=ngf, channels=channels, output_channels=output_channels)
        if isinstance(num_downs, bool) or int(num_downs) < _MIN_DOWNS:
            raise ValueError(f"num_downs must be >= {_MIN_DOWNS}. Received: num_downs={num_downs}")
        blocks.norm_layer(norm)  # checks the name, builds nothing
        initializers.check_init_type(init_type)
        ngf, num_downs = int(ngf), int(num_downs)
        channels, output_channels = int(channels), int(output_channels)
        use_bias = norm == "instance" if use_bias is None else bool(use_bias)
        affine_norm, dropout = bool(affine_norm), bool(dropout)
        policy = keras.dtype_policies.get(dtype) if dtype is not None else None
        island = blocks.float32_if_mixed(policy)
        widths = [min(ngf * 2**level, ngf * 8) for level in range(num_downs)]
        outers = [output_channels, *widths[:-1]]

        def init():
            return initializers.initializer(init_type, init_gain)

        def norm_layer(name):
            return blocks.norm_layer(norm, affine_norm, name, policy, init_gain)

        levels = []
        for index, (outer, inner) in enumerate(zip(outers, widths)):
            outermost, innermost = index == 0, index == num_downs - 1
            levels.append(
                UnetLevel(
                    down=blocks.conv2d(inner, 4, 2, f"down_{index}", policy, init(), use_bias),
                    down_norm=None if outermost or innermost else norm_layer(f"down_{index}_norm"),
                    up=blocks.conv_transpose2d(
                        outer, f"up_{index}", policy, init(), use_bias or outermost, kernel_size=4
                    ),
                    up_norm=None if outermost else norm_layer(f"up_{index}_norm"),
                    dropout=dropout and not outermost and not innermost and index >= 4,
                )
            )

        inputs = keras.Input((None, None, channels), name="images")
        x = inputs
        skips = []
        for index, level in enumerate(levels):
            if index:
                # The official in-place LeakyReLU: the skip connection keeps the activated tensor.
                x = keras.layers.LeakyReLU(_LEAKY_SLOPE, name=f"down_{index}_lrelu", dtype=policy)(
                    x
                )
                skips.append(x)
            x = keras.layers.ZeroPadding2D(1, name=f"down_{index}_pad", dtype=policy)(x)
            x = level.down(x)
            if level.down_norm is not None:
                x = level.down_norm(x)
        for index in reversed(range(num_downs)):
            level = levels[index]
            x = keras.layers.ReLU(name=f"up_{index}_relu", dtype=policy)(x)
            x = keras.layers.Cropping2D(1, name=f"up_{index}_crop", dtype=policy)(level.up(x))
            if level.up_norm is not None:
                x = level.up_norm(x)
            if level.dropout:
                x = keras.layers.Dropout(0.5, name=f"up_{index}_dropout", dtype=policy)(x)
            if index:
                x = keras.layers.Concatenate(name=f"skip_{index}", dtype=policy)(
                    [skips[index - 1], x]
                )
        outputs = keras.layers.Activation("tanh", dtype=island, name="tanh")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=policy, **kwargs)

        self.ngf = ngf
        self.num_downs = num_downs
        self.channels = channels
        self.output_channels = output_channels
        self.norm = norm
        self.affine_norm = affine_norm
        self.dropout = dropout
        self.use_bias = use_bias
        self.init_type = init_type
        self.init_gain = float(init_gain)
        self.levels = tuple(levels)

    @property
    def size_multiple(self):
        """int, what the image sides must be multiples of: ``2 ** num_downs``."""
        return 2**self.num_downs

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "ngf": self.ngf,
            "num_downs": self.num_downs,
            "channels": self.channels,
            "output_channels": self.output_channels,
            "norm": self.norm,
            "affine_norm": self.affine_norm,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "init_type": self.init_type,
            "init_gain": self.init_gain,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_unet_size(generator_kind, image_size):
    """Refuses training images a U-Net generator cannot take (see ``UnetGenerator.size_multiple``).

    Args:
        generator_kind: str, a ``generators.GENERATORS`` name; only ``unet_*`` are checked.
        image_size: int or None, the training crop; None for images of sizes of their own.

    Raises:
        OptionError: for ``image_size`` (or the preprocessing, when None) that a U-Net cannot take.
    """
    if generator_kind not in UNET_DOWNS:
        return
    multiple = 2 ** UNET_DOWNS[generator_kind]
    if image_size is None:
        raise OptionError(
            "preprocess",
            f"{generator_kind} takes images whose sides are multiples of {multiple}; the modes that "
            "keep each image's own size cannot promise that (use resize_and_crop or crop)",
        )
    if int(image_size) % multiple:
        raise OptionError(
            "image_size",
            f"{generator_kind} takes images whose sides are multiples of {multiple}. "
            f"Received: image_size={image_size}",
        )


def unet_builder(num_downs):
    """A ``build_generator`` entry: the U-Net of ``num_downs`` levels from the objectives' options.

    The ResNet's own options are refused where they would change it (``antialias``) and ignored
    where a U-Net has nothing of the kind (``n_res_blocks``).
    """

    def build(n_res_blocks=None, antialias=False, antialias_up=None, **options):
        del n_res_blocks
        if antialias or antialias_up:
            raise ValueError(
                "the U-Net generators have no anti-aliased sampling; turn it off "
                "(antialias=False, --no-antialias)"
            )
        return UnetGenerator(num_downs=num_downs, **options)

    return build
