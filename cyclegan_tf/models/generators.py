"""The reference ResNet generator (Johnson et al. 2016 as adapted by Zhu et al. 2017).

``ResnetGenerator`` is a functional ``keras.Model`` that carries its own architecture: its
``get_config`` holds ``ngf``, ``n_res_blocks``, ``channels``, ``padding_type``, ``norm``, the
sampling (``antialias``, ``antialias_up``: CycleGAN's strided convolutions or CUT's blurred ones)
and the initialisation, and its stages (``stem``, ``downsamplings``, ``res_blocks``, ``upsamplings``,
``head``) are the API that the tiled engine, the SavedModel rebuild, the PyTorch import and the
PatchNCE features (``feature_points``) read. Nothing outside this module relies on layer names.
"""

import dataclasses

import keras

from cyclegan_tf import pixels
from cyclegan_tf.models import initializers
from cyclegan_tf.models import layers as blocks
from cyclegan_tf.models.layers import check_positive
from cyclegan_tf.models.unet import UNET_DOWNS, unet_builder

# The reference's padding (``padding_type='reflect'``) and its ``--norm`` choices; the tiled engine
# computes every one exactly (instance norms with the whole map's statistics).
PADDING_TYPES = ("reflect",)
NORMS = blocks.NORMS


@dataclasses.dataclass(frozen=True)
class ConvStage:
    """One convolution of the generator, with the padding in front of it and the norm after it.

    CUT's anti-aliased sampling adds a fixed blur on one side of a stride-1 convolution:
    ``upsample`` (a ``BlurUpsample2D`` doubling the input before the padding) or ``downsample`` (a
    ``BlurPool2D`` halving the output after the norm and its ReLU).

    Attributes:
        conv: the ``Conv2D`` (``"valid"``) or ``Conv2DTranspose`` layer.
        pad: int, pixels padded on every side of the input before ``conv`` (0 for a transposed one,
            whose PyTorch padding is a crop of the output's first row and column).
        pad_mode: str, ``"reflect"`` or ``"zero"``.
        norm: the norm layer that follows (an instance or a batch norm), or None (the head,
            followed by tanh, or any convolution of a generator with ``norm="none"``).
        upsample: bool, a ``BlurUpsample2D`` comes before the padding.
        downsample: bool, a ``BlurPool2D`` comes after the norm and ReLU.
    """

    conv: keras.layers.Layer
    pad: int = 0
    pad_mode: str = "zero"
    norm: keras.layers.Layer | None = None
    upsample: bool = False
    downsample: bool = False

    @property
    def transpose(self):
        """bool, a transposed convolution (cropped as PyTorch's ``output_padding=1`` does)."""
        return isinstance(self.conv, keras.layers.Conv2DTranspose)

    @property
    def kernel_size(self):
        """int, the square kernel's side."""
        return int(self.conv.kernel_size[0])

    @property
    def stride(self):
        """int, the stride."""
        return int(self.conv.strides[0])

    @property
    def filters(self):
        """int, output channels."""
        return int(self.conv.filters)

    @property
    def epsilon(self):
        """Float or None, the epsilon of the norm after the convolution."""
        return None if self.norm is None else float(self.norm.epsilon)

    @property
    def batch_norm(self):
        """bool, the norm is a batch norm (per-channel running statistics in inference)."""
        return isinstance(self.norm, keras.layers.BatchNormalization)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ResidualBlock(keras.layers.Layer):
    """``x + [ReflectionPad 1, Conv 3x3, norm, ReLU, (Dropout 0.5), ReflectionPad 1, Conv 3x3, norm](x)``.

    The reference's ``ResnetBlock`` with reflection padding. ``stages`` is its two convolutions as
    ``ConvStage``s.

    Args:
        filters: int, channels in and out.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to
            ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        norm: str, ``"instance"``, ``"batch"`` or ``"none"`` (``layers.NORMS``). Defaults to
            ``"instance"``.
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        dropout: bool, a ``Dropout(0.5)`` between the two convolutions (the official
            ``use_dropout``), active in training only. Defaults to False.
        use_bias: bool, biases on the two convolutions. Defaults to True.
        **kwargs: Base layer keyword arguments (``dtype`` sets the policy of the sublayers too).
    """

    def __init__(
        self,
        filters,
        init_type="normal",
        init_gain=0.02,
        norm="instance",
        affine_norm=False,
        dropout=False,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        initializers.check_init_type(init_type)
        self.filters = filters
        self.init_type = init_type
        self.init_gain = float(init_gain)
        self.norm = norm
        self.affine_norm = bool(affine_norm)
        self.dropout = bool(dropout)
        self.use_bias = bool(use_bias)
        policy = self.dtype_policy

        def conv(name):
            # An initializer per kernel: an unseeded Keras initializer called twice repeats itself.
            initializer = initializers.initializer(init_type, init_gain)
            return blocks.conv2d(
                filters,
                3,
                policy=policy,
                kernel_initializer=initializer,
                use_bias=self.use_bias,
                name=name,
            )

        def norm_layer(name):
            return blocks.norm_layer(norm, self.affine_norm, name, policy, init_gain)

        self.pad_1 = blocks.ReflectionPadding2D(1, name="pad_1", dtype=policy)
        self.conv_1 = conv(name="conv_1")
        self.norm_1 = norm_layer("norm_1")
        self.drop = keras.layers.Dropout(0.5, name="dropout", dtype=policy) if dropout else None
        self.pad_2 = blocks.ReflectionPadding2D(1, name="pad_2", dtype=policy)
        self.conv_2 = conv(name="conv_2")
        self.norm_2 = norm_layer("norm_2")
        self.stages = (
            ConvStage(self.conv_1, self.pad_1.padding, "reflect", self.norm_1),
            ConvStage(self.conv_2, self.pad_2.padding, "reflect", self.norm_2),
        )

    def build(self, input_shape):
        padded = self.pad_1.compute_output_shape(input_shape)
        self.conv_1.build(padded)
        conv_shape = self.conv_1.compute_output_shape(padded)
        self.conv_2.build(padded)
        for norm in (self.norm_1, self.norm_2):
            if norm is not None:
                norm.build(conv_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = _normalized(self.norm_1, self.conv_1(self.pad_1(inputs)), training)
        x = keras.ops.relu(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        x = _normalized(self.norm_2, self.conv_2(self.pad_2(x)), training)
        return inputs + keras.ops.cast(x, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "init_type": self.init_type,
            "init_gain": self.init_gain,
            "norm": self.norm,
            "affine_norm": self.affine_norm,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
        }


def _normalized(norm, x, training):
    return x if norm is None else norm(x, training=training)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class ResnetGenerator(keras.Model):
    """The reference ResNet generator, a functional model that knows its own architecture.

    ReflectionPad 3, Conv 7x7 (ngf), IN, ReLU; two stride-2 Conv 3x3 (ngf*2, ngf*4) + IN + ReLU;
    ``n_res_blocks`` residual blocks; two stride-2 ConvTranspose 3x3 (ngf*2, ngf) + IN + ReLU;
    ReflectionPad 3, Conv 7x7 (channels), tanh. Any height and width that are multiples of 4 give an
    output of the same size. At the defaults it has 11,378,179 parameters.

    With ``antialias`` (CUT's default), each downsampling is a stride-1 Conv 3x3 + IN + ReLU followed by
    a ``BlurPool2D``; with ``antialias_up``, each upsampling is a ``BlurUpsample2D`` followed by a
    stride-1 Conv 3x3 + IN + ReLU (``ResnetGenerator`` of the official CUT release; the same number of
    parameters, as the blurs have none).

    Its stages are attributes: ``stem``, ``downsamplings`` and ``upsamplings`` (tuples), ``head``
    (``ConvStage``s), and ``res_blocks`` (a tuple of ``ResidualBlock``, each with two ``stages``);
    ``conv_stages()`` lists every convolution in order. ``feature_points()`` names the maps that a
    PatchNCE loss may read (``feature_extractor``).

    Args:
        ngf: int, filters of the first layer. Defaults to 64.
        n_res_blocks: int, residual blocks at the bottleneck. Defaults to 9.
        channels: int, image channels in and out. Defaults to 3.
        padding_type: str, the residual blocks' padding; ``"reflect"`` (the reference's).
        norm: str, the normalization: ``"instance"`` (the reference's for CycleGAN and CUT),
            ``"batch"`` (synchronised across replicas, running statistics in inference) or
            ``"none"`` (``layers.NORMS``). Defaults to ``"instance"``.
        affine_norm: bool, the instance norms' learned scale and shift (``InstanceNorm2d(affine=
            True)``, as many re-implementations have). Defaults to False.
        dropout: bool, ``Dropout(0.5)`` inside each residual block (the official ``--no_dropout``
            off). Defaults to False.
        use_bias: bool or None, biases on the convolutions followed by a norm; None: the official
            rule, only with ``norm="instance"`` (the head always has one).
        output_channels: int or None, image channels out; None: ``channels``.
        antialias: bool, CUT's blurred downsampling instead of stride-2 convolutions. Defaults to
            False.
        antialias_up: bool or None, CUT's blurred upsampling instead of transposed convolutions;
            None follows ``antialias``. Defaults to None.
        init_type: str, the kernels' initialisation (``initializers.INIT_TYPES``). Defaults to
            ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        dtype: a dtype policy (or its name) for the whole network, or None for the global policy.
            Under a mixed policy the norms and the tanh compute in float32.
        name: str, the model name. Defaults to ``"generator"``.
        **kwargs: Base model keyword arguments (``trainable``).

    Example:
        >>> generator = ResnetGenerator(ngf=8, n_res_blocks=2)
        >>> generator.get_config()["n_res_blocks"], len(generator.res_blocks)
        (2, 2)
        >>> generator.stem.kernel_size, generator.head.filters
        (7, 3)
        >>> ResnetGenerator(ngf=8, n_res_blocks=2, antialias=True).feature_points()
        ('input', 'stem', 'down_0', 'down_1', 'res_0', 'res_1')

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
        ICCV 2017; ``ResnetGenerator`` in the official PyTorch release. Park et al., "Contrastive
        Learning for Unpaired Image-to-Image Translation", ECCV 2020, and its official release.
    """

    def __init__(
        self,
        ngf=64,
        n_res_blocks=9,
        channels=3,
        padding_type="reflect",
        norm="instance",
        antialias=False,
        antialias_up=None,
        init_type="normal",
        init_gain=0.02,
        affine_norm=False,
        dropout=False,
        use_bias=None,
        output_channels=None,
        dtype=None,
        name="generator",
        **kwargs,
    ):
        output_channels = channels if output_channels is None else output_channels
        check_positive(ngf=ngf, channels=channels, output_channels=output_channels)
        if isinstance(n_res_blocks, bool) or int(n_res_blocks) < 0:
            raise ValueError(f"n_res_blocks must be >= 0. Received: n_res_blocks={n_res_blocks}")
        _check_choice("padding_type", padding_type, PADDING_TYPES)
        _check_choice("norm", norm, NORMS)
        ngf, n_res_blocks, channels = int(ngf), int(n_res_blocks), int(channels)
        output_channels = int(output_channels)
        use_bias = norm == "instance" if use_bias is None else bool(use_bias)
        affine_norm, dropout = bool(affine_norm), bool(dropout)
        antialias = bool(antialias)
        antialias_up = antialias if antialias_up is None else bool(antialias_up)
        initializers.check_init_type(init_type)
        policy = keras.dtype_policies.get(dtype) if dtype is not None else None
        island = blocks.float32_if_mixed(policy)

        def init():  # a new initializer per kernel (see ResidualBlock)
            return initializers.initializer(init_type, init_gain)

        def conv(filters, kernel_size, strides=1, name=None, bias=use_bias):
            return blocks.conv2d(filters, kernel_size, strides, name, policy, init(), bias)

        def norm_layer(name):
            return blocks.norm_layer(norm, affine_norm, name, policy, init_gain)

        stem = ConvStage(conv(ngf, 7, name="stem_conv"), 3, "reflect", norm_layer("stem_norm"))
        inputs = keras.Input((None, None, channels), name="images")
        stem_pad = blocks.ReflectionPadding2D(stem.pad, name="stem_pad", dtype=policy)
        x = stem_pad(inputs)
        x = _norm_relu(stem, stem.conv(x), "stem", policy)
        downsamplings = []
        for i in range(pixels.GENERATOR_DOWNSAMPLINGS):
            name_i = f"down_{i}"
            stage = ConvStage(
                conv(ngf * 2 ** (i + 1), 3, 1 if antialias else 2, name=f"{name_i}_conv"),
                1,
                "zero",
                norm_layer(f"{name_i}_norm"),
                downsample=antialias,
            )
            x = keras.layers.ZeroPadding2D(stage.pad, name=f"{name_i}_conv_pad", dtype=policy)(x)
            x = _norm_relu(stage, stage.conv(x), name_i, policy)
            if stage.downsample:
                x = blocks.BlurPool2D(name=f"{name_i}_blur", dtype=policy)(x)
            downsamplings.append(stage)
        bottleneck = ngf * 2**pixels.GENERATOR_DOWNSAMPLINGS
        res_blocks = []
        for i in range(n_res_blocks):
            block = ResidualBlock(
                bottleneck,
                init_type,
                init_gain,
                norm,
                affine_norm,
                dropout,
                use_bias,
                name=f"res_{i}",
                dtype=policy,
            )
            x = block(x)
            res_blocks.append(block)
        upsamplings = []
        for i in range(pixels.GENERATOR_DOWNSAMPLINGS):
            name_i = f"up_{i}"
            filters = ngf * 2 ** (pixels.GENERATOR_DOWNSAMPLINGS - i - 1)
            if antialias_up:
                stage = ConvStage(
                    conv(filters, 3, name=f"{name_i}_conv"),
                    1,
                    "zero",
                    norm_layer(f"{name_i}_norm"),
                    upsample=True,
                )
                x = blocks.BlurUpsample2D(name=f"{name_i}_blur", dtype=policy)(x)
                x = keras.layers.ZeroPadding2D(stage.pad, name=f"{name_i}_conv_pad", dtype=policy)(
                    x
                )
                x = stage.conv(x)
            else:
                stage = ConvStage(
                    blocks.conv_transpose2d(filters, f"{name_i}_conv", policy, init(), use_bias),
                    norm=norm_layer(f"{name_i}_norm"),
                )
                x = blocks.torch_transpose_crop(name=f"{name_i}_conv_crop", policy=policy)(
                    stage.conv(x)
                )
            x = _norm_relu(stage, x, name_i, policy)
            upsamplings.append(stage)
        head = ConvStage(conv(output_channels, 7, name="head_conv", bias=True), 3, "reflect")
        x = blocks.ReflectionPadding2D(head.pad, name="head_pad", dtype=policy)(x)
        outputs = keras.layers.Activation("tanh", dtype=island, name="tanh")(head.conv(x))
        super().__init__(inputs=inputs, outputs=outputs, name=name, dtype=policy, **kwargs)

        self.ngf = ngf
        self.n_res_blocks = n_res_blocks
        self.channels = channels
        self.padding_type = padding_type
        self.norm = norm
        self.affine_norm = affine_norm
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_channels = output_channels
        self.antialias = antialias
        self.antialias_up = antialias_up
        self.init_type = init_type
        self.init_gain = float(init_gain)
        self.stem_pad = stem_pad
        self.stem = stem
        self.downsamplings = tuple(downsamplings)
        self.res_blocks = tuple(res_blocks)
        self.upsamplings = tuple(upsamplings)
        self.head = head

    def conv_stages(self):
        """Every convolution in the order the image meets them, as ``ConvStage``s."""
        residual = [stage for block in self.res_blocks for stage in block.stages]
        return [self.stem, *self.downsamplings, *residual, *self.upsamplings, self.head]

    def feature_points(self):
        """The names of the maps ``feature_extractor`` can return (see ``feature_points``)."""
        return feature_points(self.n_res_blocks)

    def official_feature_index(self, point):
        """The index of ``point`` in the official release's list of modules (``official_feature_indices``)."""
        return official_feature_indices(self.n_res_blocks, self.antialias)[point]

    def feature_extractor(self, points, with_output=False):
        """A model that maps images to the named maps (see ``feature_points``), sharing the weights.

        Without ``with_output`` it runs the generator only as far as the deepest point, as the
        official ``encode_only`` forward does; with it, the whole generator, whose translation it
        returns first.

        Args:
            points: sequence of names from ``feature_points()``.
            with_output: bool, also return the translated images (first). Defaults to False.

        Returns:
            A ``keras.Model`` from ``[batch, H, W, channels]`` images to a list of maps
            ``[batch, h, w, c]``, one per point, in the order given (after the output images).

        Raises:
            ValueError: naming a point that this generator does not have.
        """
        tensors = {"input": self.stem_pad.output, "stem": self.stem.conv.output}
        tensors.update(
            {f"down_{i}": stage.conv.output for i, stage in enumerate(self.downsamplings)}
        )
        tensors.update({f"res_{i}": block.output for i, block in enumerate(self.res_blocks)})
        unknown = [point for point in points if point not in tensors]
        if unknown or not points:
            raise ValueError(
                f"feature points must be some of {list(self.feature_points())}. "
                f"Received: {list(points)}"
            )
        outputs = [tensors[point] for point in points]
        outputs = [self.output, *outputs] if with_output else outputs
        return keras.Model(self.input, outputs, name=f"{self.name}_features")

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "ngf": self.ngf,
            "n_res_blocks": self.n_res_blocks,
            "channels": self.channels,
            "padding_type": self.padding_type,
            "norm": self.norm,
            "antialias": self.antialias,
            "antialias_up": self.antialias_up,
            "init_type": self.init_type,
            "init_gain": self.init_gain,
            "affine_norm": self.affine_norm,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_channels": self.output_channels,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def feature_points(n_res_blocks):
    """The maps of a ``ResnetGenerator`` that a PatchNCE loss may read, in the order the image meets them.

    ``input`` (the reflection-padded image), ``stem`` (the first convolution's output, before its
    norm), ``down_0``, ``down_1`` (each downsampling convolution's output, before its norm) and
    ``res_0`` … (each residual block's output).

    Example:
        >>> feature_points(2)
        ('input', 'stem', 'down_0', 'down_1', 'res_0', 'res_1')
    """
    names = ["input", "stem"]
    names += [f"down_{i}" for i in range(pixels.GENERATOR_DOWNSAMPLINGS)]
    names += [f"res_{i}" for i in range(int(n_res_blocks))]
    return tuple(names)


def official_feature_indices(n_res_blocks, antialias):
    """``{point: index}``: where each feature point sits in the official ``ResnetGenerator.model``.

    The official CUT code names its PatchNCE layers by these indices (``--nce_layers
    0,4,8,12,16``): with anti-aliased downsampling (its default) those are ``input``, ``down_0``,
    ``down_1``, ``res_0`` and ``res_4``; with strided downsampling the same indices fall on other
    layers (8 is a norm's output), so the points are named here by what they are.

    Example:
        >>> indices = official_feature_indices(9, antialias=True)
        >>> [indices[p] for p in ("input", "down_0", "down_1", "res_0", "res_4")]
        [0, 4, 8, 12, 16]
    """
    down = 4 if antialias else 3  # conv, norm, ReLU (and the blur)
    indices = {"input": 0, "stem": 1}
    indices.update({f"down_{i}": 4 + down * i for i in range(pixels.GENERATOR_DOWNSAMPLINGS)})
    first_block = 4 + down * pixels.GENERATOR_DOWNSAMPLINGS
    indices.update({f"res_{i}": first_block + i for i in range(int(n_res_blocks))})
    return indices


def feature_map_side(point, side, antialias):
    """int, the height (or width) of the map ``point`` for an input of ``side`` pixels (a multiple of 4).

    Example:
        >>> [feature_map_side(p, 256, True) for p in ("input", "down_0", "down_1", "res_0")]
        [262, 256, 128, 64]
    """
    if point == "input":
        return side + 6
    if point.startswith("down_"):
        return side // 2 ** (int(point[len("down_") :]) + (0 if antialias else 1))
    if point.startswith("res_"):
        return side // 2**pixels.GENERATOR_DOWNSAMPLINGS
    return side


def resnet_generator(ngf=64, n_res_blocks=9, channels=3, name="generator"):
    """Builds the reference ResNet generator: a ``ResnetGenerator``.

    Args:
        ngf: int, filters of the first layer. Defaults to 64.
        n_res_blocks: int, residual blocks at the bottleneck. Defaults to 9.
        channels: int, image channels in and out. Defaults to 3.
        name: str, the model name.

    Returns:
        A ``ResnetGenerator`` mapping ``[batch, H, W, channels]`` images in [-1, 1] to the same shape.
    """
    return ResnetGenerator(ngf=ngf, n_res_blocks=n_res_blocks, channels=channels, name=name)


GENERATORS = {
    "resnet": ResnetGenerator,
    **{name: unet_builder(downs) for name, downs in UNET_DOWNS.items()},
}


def build_generator(kind="resnet", **kwargs):
    """Builds a generator by name (``GENERATORS``).

    Args:
        kind: str, one of ``GENERATORS``. Defaults to ``"resnet"``.
        **kwargs: the class's constructor arguments.

    Returns:
        A generator ``keras.Model`` that carries its own config.

    Raises:
        ValueError: naming the known generators, for another ``kind``.
    """
    if kind not in GENERATORS:
        raise ValueError(f"generator must be one of {list(GENERATORS)}. Received: {kind!r}")
    return GENERATORS[kind](**kwargs)


def as_resnet_generator(model):
    """``model`` as a ``ResnetGenerator``, rebuilding one with its weights where it is not one.

    Generators saved before 0.2 load as plain functional models. Their architecture is read from
    their structure, not their layer names: ``ngf`` and ``channels`` from the first convolution's
    kernel, ``n_res_blocks`` from the ``ResidualBlock`` layers; the rebuilt generator's weights are
    the model's, in the same order, and every shape must match.

    Args:
        model: a ``keras.Model`` mapping images to images.

    Returns:
        A ``ResnetGenerator`` (``model`` itself if it is one) with the same weights and dtype policy.

    Raises:
        ValueError: if ``model`` is not a ResNet generator of this package's layout.
    """
    if isinstance(model, ResnetGenerator):
        return model
    convs = [layer for layer in _flat_layers(model) if type(layer) is keras.layers.Conv2D]
    res_blocks = [layer for layer in _flat_layers(model) if isinstance(layer, ResidualBlock)]
    if not convs or len(convs[0].kernel.shape) != 4:
        raise ValueError(f"{model.name} is not a ResNet generator: it has no convolution")
    kernel = convs[0].kernel.shape
    try:
        generator = ResnetGenerator(
            ngf=int(kernel[3]),
            n_res_blocks=len(res_blocks),
            channels=int(kernel[2]),
            dtype=model.dtype_policy,
            name=model.name,
        )
    except ValueError as error:
        raise ValueError(f"{model.name} is not a ResNet generator: {error}") from None
    weights = model.get_weights()
    expected = [tuple(weight.shape) for weight in generator.weights]
    if [tuple(weight.shape) for weight in weights] != expected:
        raise ValueError(
            f"{model.name} is not a ResNet generator of this package's layout: its "
            f"{len(weights)} weights do not have the shapes of ResnetGenerator(ngf={kernel[3]}, "
            f"n_res_blocks={len(res_blocks)})"
        )
    generator.set_weights(weights)
    return generator


def _flat_layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _norm_relu(stage, x, prefix, policy):
    x = x if stage.norm is None else stage.norm(x)
    return keras.layers.ReLU(name=f"{prefix}_relu", dtype=policy)(x)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")
