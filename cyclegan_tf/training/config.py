"""Typed training options: one dataclass that is also the command line and ``config.json``.

Every field becomes a flag of ``scripts/train.py`` (``image_size`` → ``--image-size``), and a run folder
keeps the resolved options as ``config.json`` so a run can be resumed, compared or reproduced.
"""

import dataclasses
import inspect
import json
import math

from cyclegan_tf import _deprecated, io, options, pixels
from cyclegan_tf.data.preprocess import PREPROCESS_MODES, VARIABLE_SIZE_MODES
from cyclegan_tf.errors import OptionError
from cyclegan_tf.models.initializers import INIT_TYPES
from cyclegan_tf.models.objectives import OBJECTIVES, get_objective
from cyclegan_tf.options import option
from cyclegan_tf.training import distribute

_DEFAULT_DATASET = "apple2orange"


def _option(default, help, choices=None, group="training", aliases=None):  # noqa: A002
    return option(default, help, choices=choices, group=group, aliases=aliases)


# The architectures' names, spelled here so that --help does not load Keras (a test checks them
# against ``models``): generators, discriminators, norms, adversarial losses, image channels.
GENERATOR_KINDS = ("resnet", "unet_256", "unet_128")
DISCRIMINATOR_KINDS = ("patch", "global", "pixel")
NORMS = ("instance", "batch", "none")
GAN_MODES = ("lsgan", "vanilla", "wgangp")
CHANNELS = (1, 3, 4)
# The official releases' --netG and --netD, in this package's options.
_NET_G = {
    "resnet_9blocks": {"generator": "resnet", "n_res_blocks": 9},
    "resnet_6blocks": {"generator": "resnet", "n_res_blocks": 6},
    "unet_256": {"generator": "unet_256"},
    "unet_128": {"generator": "unet_128"},
}
_NET_D = {
    "basic": {"discriminator": "patch", "n_disc_layers": 3},
    "n_layers": {"discriminator": "patch"},
    "pixel": {"discriminator": "pixel"},
}


@dataclasses.dataclass
class TrainConfig:
    """All options of a training run, with the reference's defaults.

    Attributes are documented by their ``help`` metadata, which is also the ``--help`` text.
    """

    # Data.
    dataset: str = _option(
        _DEFAULT_DATASET, "TFDS cycle_gan config (e.g. apple2orange) or 'synthetic'.", group="data"
    )
    data_dir: str | None = _option(
        None, "Folder with trainA/ trainB/ [testA/ testB/] (the published zips).", group="data"
    )
    image_size: int = _option(256, "Training crop size (a multiple of 4).", group="data")
    load_size: int = _option(
        286,
        "Images are resized to this before the random crop (the width in the scale_width modes).",
        group="data",
    )
    preprocess: str = _option(
        "resize_and_crop",
        "How training images are sized, as in the reference: resize_and_crop (resize to "
        "--load-size, random crop --image-size), scale_width_and_crop (width to --load-size, "
        "aspect kept, random crop), crop (random crop at the source resolution), scale_width "
        "(width to --load-size, no crop), none (source size rounded to multiples of 4). "
        "scale_width and none need --batch-size 1.",
        choices=PREPROCESS_MODES,
        group="data",
    )
    data_cache: str = _option(
        "auto",
        "Where training images are kept once resized to --load-size: auto (memory if both domains "
        "fit 1 GiB, else none), memory, disk (RUN/cache/), none (decode every time).",
        choices=("auto", "memory", "disk", "none"),
        group="data",
    )
    # Networks and objective.
    objective: str = _option(
        "cyclegan",
        "Training objective: cyclegan (two generators, cycle consistency), cut or fastcut "
        "(one generator, PatchNCE; see docs/objectives.md).",
        choices=tuple(OBJECTIVES),
        group="model",
    )
    generator: str = _option(
        "resnet",
        "Generator architecture: resnet (--n-res-blocks residual blocks), unet_256 or unet_128 "
        "(the official U-Nets: --image-size a multiple of 256 or 128; cyclegan only).",
        choices=GENERATOR_KINDS,
        group="model",
        aliases={"netG": _NET_G},
    )
    ngf: int = _option(64, "Generator filters in the first layer.", group="model")
    ndf: int = _option(64, "Discriminator filters in the first layer.", group="model")
    n_res_blocks: int = _option(9, "Residual blocks per generator.", group="model")
    n_disc_layers: int = _option(
        3,
        "Stride-2 layers per discriminator.",
        group="model",
        aliases={"n_layers_D": None},
    )
    discriminator: str = _option(
        "patch",
        "Discriminator kind: patch (the PatchGAN of --n-disc-layers layers), pixel (1x1, one logit "
        "per pixel) or global (one logit per image).",
        choices=DISCRIMINATOR_KINDS,
        group="model",
        aliases={"netD": _NET_D},
    )
    gan_mode: str = _option(
        "lsgan",
        "Adversarial loss: lsgan, vanilla (cross-entropy) or wgangp (Wasserstein, with the gradient "
        "penalty, weight 10).",
        choices=GAN_MODES,
        group="model",
    )
    norm: str = _option(
        "instance",
        "Normalisation in the generators and discriminators: instance, batch (synchronised across "
        "replicas; running statistics when translating) or none.",
        choices=NORMS,
        group="model",
    )
    affine_norm: bool = _option(
        False, "A learned scale and shift per channel in the instance norms.", group="model"
    )
    dropout: bool = _option(
        False, "Dropout (0.5) in the generators' residual blocks, while training.", group="model"
    )
    input_nc: int = _option(
        3,
        "Channels of domain A's images: 1 (grayscale), 3 (RGB) or 4 (RGBA).",
        choices=CHANNELS,
        group="model",
    )
    output_nc: int = _option(
        3, "Channels of domain B's images: 1, 3 or 4.", choices=CHANNELS, group="model"
    )
    antialias: bool | None = _option(
        None,
        "Blurred (anti-aliased) down- and upsampling in the generator and discriminator, as CUT "
        "does (default: on for cut and fastcut, off for cyclegan).",
        group="model",
    )
    antialias_up: bool | None = _option(
        None,
        "Blurred upsampling in the generator (default: as --antialias; the official CUT's "
        "--no_antialias alone is --no-antialias --antialias-up).",
        group="model",
    )
    init_type: str | None = _option(
        None,
        "Weight initialisation (default: normal for cyclegan, xavier for cut and fastcut).",
        choices=INIT_TYPES,
        group="model",
    )
    init_gain: float | None = _option(
        None, "Scale of the initialisation (default: 0.02).", group="model"
    )
    # CycleGAN's options (--objective cyclegan).
    lambda_cycle: float | None = _option(
        None, "Weight of each cycle-consistency term (default: 10).", group="cyclegan"
    )
    lambda_identity: float | None = _option(
        None,
        "Identity weight relative to --lambda-cycle, 0 skips it (default: 0.5).",
        group="cyclegan",
    )
    pool_size: int | None = _option(
        None, "Generated images remembered per domain, 0: no pool (default: 50).", group="cyclegan"
    )
    # CUT's and FastCUT's options (--objective cut or fastcut).
    lambda_gan: float | None = _option(
        None, "Weight of the adversarial term (default: 1).", group="cut"
    )
    lambda_nce: float | None = _option(
        None, "Weight of the PatchNCE terms (default: 1 for cut, 10 for fastcut).", group="cut"
    )
    nce_idt: bool | None = _option(
        None,
        "The identity PatchNCE term NCE(y, G(y)) (default: on for cut, off for fastcut).",
        group="cut",
    )
    nce_layers: str | None = _option(
        None,
        "Generator maps of the PatchNCE loss, by name (input, stem, down_0, down_1, res_0 ...) or "
        "by the official release's index (default: input,down_0,down_1,res_0,res_4, the official "
        "0,4,8,12,16).",
        group="cut",
    )
    num_patches: int | None = _option(
        None, "Patches sampled per map and image (default: 256).", group="cut"
    )
    projection_units: int | None = _option(
        None,
        "Units of the two-layer projection MLP of each map (default: 256, the official --netF_nc).",
        group="cut",
    )
    nce_temperature: float | None = _option(
        None,
        "Temperature of the PatchNCE logits (default: 0.07, the official --nce_T).",
        group="cut",
    )
    flip_equivariance: bool | None = _option(
        None,
        "Flip the batch left-right at random and the maps back (default: on for fastcut).",
        group="cut",
    )
    # Optimisation.
    batch_size: int = _option(1, "Global batch size.")
    epochs: int | None = _option(
        None, "Total epochs (default: the objective's: 200 for cyclegan and fastcut, 400 for cut)."
    )
    decay_epochs: int | None = _option(
        None,
        "Epochs of linear learning-rate decay at the end (default: the objective's, 100, 200 and "
        "50, with its default --epochs; else half of --epochs).",
    )
    steps_per_epoch: int | None = _option(
        None, "Steps per epoch (default: the larger domain's size / batch size)."
    )
    lr: float = _option(2e-4, "Adam learning rate.")
    beta1: float = _option(0.5, "Adam beta_1.")
    seed: int = _option(0, "Seed of the initial weights, data order and image pools.")
    # Outputs.
    name: str | None = _option(
        None, "Model name (default: the dataset's, e.g. apple2orange).", group="outputs"
    )
    output_dir: str | None = _option(None, "Run folder (default: runs/<name>).", group="outputs")
    export_dir: str = _option("saved_models", "Where SavedModels are exported.", group="outputs")
    sample_every: int = _option(
        100, "Write images/latest.png every N steps (0: only per epoch).", group="outputs"
    )
    backup_every: int | None = _option(
        None, "Back up for resume every N steps (default: every epoch).", group="outputs"
    )
    export_every: int | None = _option(
        None, "Also export SavedModels every N epochs (always at the end).", group="outputs"
    )
    init_from: str | None = _option(
        None,
        "Start from the networks of a run folder or its models/ (fine-tuning).",
        group="outputs",
    )
    # Evaluation.
    eval_every: int | None = _option(
        None, "Validate (cycle/identity L1 on the test split) every N epochs.", group="evaluation"
    )
    fid_every: int | None = _option(
        None, "Compute FID/KID of A->B on a fixed test subset every N epochs.", group="evaluation"
    )
    keep_best: bool = _option(
        False,
        "Keep the generator with the best FID as models/best_netG_A2B.keras (best_netG.keras for "
        "cut and fastcut).",
        group="evaluation",
    )
    inception_weights: str | None = _option(
        None, "Local InceptionV3 ImageNet weights (.h5) for FID/KID.", group="evaluation"
    )
    # Scale and speed.
    mirrored_strategy: bool = _option(
        False, "Train on all local GPUs (MirroredStrategy).", group="scale"
    )
    cpu_replicas: int | None = _option(
        None, "Split the CPU into N logical devices (with --mirrored-strategy).", group="scale"
    )
    multi_worker: bool = _option(
        False, "MultiWorkerMirroredStrategy configured from TF_CONFIG.", group="scale"
    )
    cluster_timeout: float = _option(
        300.0, "Seconds a worker waits for the others of TF_CONFIG (--multi-worker).", group="scale"
    )
    mixed_precision: str | None = _option(
        None, "Mixed precision policy.", choices=distribute.MIXED_PRECISIONS, group="scale"
    )
    jit_compile: bool = _option(False, "Compile the train step with XLA.", group="scale")

    def resolved(self):
        """Returns a copy with the derived defaults filled in.

        The name and output folder; the objective's defaults of its own options, of the sampling and
        initialisation (its constructor's defaults) and of the epochs (its ``EPOCHS``).

        Raises:
            OptionError: if an option is out of range or belongs to another objective; it names the
                option and its value.
        """
        config = dataclasses.replace(self)
        if config.objective not in OBJECTIVES:
            raise OptionError(
                "objective", f"must be one of {tuple(OBJECTIVES)}. Received: {config.objective!r}"
            )
        objective = config.objective_class()
        defaults = _constructor_defaults(objective)
        for key in (*_OBJECTIVE_DEFAULTED, *objective.OPTIONS):
            if getattr(config, key) is None:
                setattr(config, key, defaults[key])
        if config.antialias_up is None:
            config.antialias_up = config.antialias
        if config.name is None:
            config.name = (
                config.dataset if config.data_dir is None else _folder_name(config.data_dir)
            )
        if config.output_dir is None:
            config.output_dir = io.join("runs", config.name)
        epochs, decay_epochs = objective.EPOCHS
        if config.epochs is None:
            config.epochs = epochs
        elif config.decay_epochs is None:
            decay_epochs = config.epochs // 2
        if config.decay_epochs is None:
            config.decay_epochs = decay_epochs
        config.validate()
        return config

    def objective_class(self):
        """The ``GAN`` subclass of ``objective`` (``models.objectives.OBJECTIVES``)."""
        return get_objective(self.objective)

    def validate(self):
        """Checks ranges and combinations.

        Raises:
            OptionError: naming the first option (its Python name) out of range and its value.
        """
        self._check_objective_options()
        pixels.check_size_multiple("image_size", self.image_size)
        for key in ("load_size", "batch_size", "ngf", "ndf", "n_disc_layers"):
            _check_integer(key, getattr(self, key), minimum=1)
        for key in ("n_res_blocks", "sample_every", "seed"):
            _check_integer(key, getattr(self, key), minimum=0)
        optional_counts = ("epochs", "steps_per_epoch", "backup_every", "export_every")
        for key in (*optional_counts, "eval_every", "fid_every", "num_patches", "projection_units"):
            if getattr(self, key) is not None:
                _check_integer(key, getattr(self, key), minimum=1)
        if self.pool_size is not None:
            _check_integer("pool_size", self.pool_size, minimum=0)
        _check_number("lr", self.lr, "> 0", lambda value: value > 0)
        _check_number("beta1", self.beta1, "in [0, 1)", lambda value: 0 <= value < 1)
        for key in ("lambda_cycle", "lambda_identity", "lambda_gan", "lambda_nce", "init_gain"):
            if getattr(self, key) is not None:
                _check_number(key, getattr(self, key), ">= 0", lambda value: value >= 0)
        if self.nce_temperature is not None:
            _check_number("nce_temperature", self.nce_temperature, "> 0", lambda value: value > 0)
        _check_number("cluster_timeout", self.cluster_timeout, "> 0", lambda value: value > 0)
        if self.preprocess in VARIABLE_SIZE_MODES and self.batch_size != 1:
            raise OptionError(
                "batch_size",
                f"preprocess={self.preprocess!r} keeps each image's own size: it needs "
                f"batch_size=1. Received: batch_size={self.batch_size}",
            )
        if self.preprocess not in ("crop", "none") and self.load_size < self.image_size:
            raise OptionError(
                "load_size",
                f"must be >= image_size ({self.image_size}). Received: load_size={self.load_size}",
            )
        if self.decay_epochs is not None and self.epochs is not None:
            _check_integer("decay_epochs", self.decay_epochs, minimum=0)
            if self.decay_epochs > self.epochs:
                raise OptionError(
                    "decay_epochs",
                    f"must be between 0 and epochs ({self.epochs}). "
                    f"Received: decay_epochs={self.decay_epochs}",
                )
        if self.keep_best and not self.fid_every:
            raise OptionError(
                "keep_best", "needs fid_every=N (the best generator is chosen by FID)"
            )
        for key, field in self.fields().items():
            choices = field.metadata["choices"]
            value = getattr(self, key)
            if choices and value is not None and value not in choices:
                raise OptionError(key, f"must be one of {choices}. Received: {key}={value!r}")

    def _check_objective_options(self):
        """Refuses an option of another objective; lets the objective check its own."""
        for name in OBJECTIVES:
            other = get_objective(name)
            if name == self.objective:
                continue
            for key in other.OPTIONS:
                if key not in self.objective_class().OPTIONS and getattr(self, key) is not None:
                    raise OptionError(
                        key,
                        f"is an option of --objective {name}, not of this run's --objective "
                        f"{self.objective}. Received: {key}={getattr(self, key)!r}",
                    )
        self.objective_class().check_options(**self.model_options())

    def model_options(self):
        """The constructor arguments of this run's objective (``objective_class()``)."""
        options = {
            key: getattr(self, key) for key in (*_SHARED_MODEL_OPTIONS, *_OBJECTIVE_DEFAULTED)
        }
        options["antialias_up"] = self.antialias_up
        options.update({key: getattr(self, key) for key in self.objective_class().OPTIONS})
        if self.preprocess in VARIABLE_SIZE_MODES:
            options["image_size"] = None  # the image pools keep images of any size
        return {
            **options,
            "generator_kind": self.generator,
            "discriminator_kind": self.discriminator,
        }

    ARCHITECTURE_KEYS = (
        "objective",
        "generator",
        "norm",
        "affine_norm",
        "dropout",
        "input_nc",
        "output_nc",
        "ngf",
        "ndf",
        "n_res_blocks",
        "n_disc_layers",
        "discriminator",
        "antialias",
        "antialias_up",
        "image_size",
        "pool_size",
        "nce_layers",
        "projection_units",
        "preprocess",
    )

    def differences(self, other):
        """``{key: (self_value, other_value)}`` for every option that differs."""
        return {
            key: (getattr(self, key), getattr(other, key))
            for key in self.fields()
            if getattr(self, key) != getattr(other, key)
        }

    def to_json(self, path):
        """Writes the options to ``path`` as JSON (atomically and durably)."""
        io.write_text(
            path,
            json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n",
            durable=True,
        )

    @classmethod
    def from_json(cls, path):
        """Reads options written by ``to_json``; unknown keys are an error naming them."""
        values = json.loads(io.read_text(path))
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            raise ValueError(f"{path}: unknown options {unknown}.")
        return cls(**values)

    @classmethod
    def fields(cls):
        """The dataclass fields by name."""
        return {field.name: field for field in dataclasses.fields(cls)}

    @classmethod
    def add_arguments(cls, parser):
        """Deprecated: ``cyclegan_tf.options.add_arguments(parser, TrainConfig)``."""
        _deprecated.warn_renamed(
            "TrainConfig.add_arguments", "cyclegan_tf.options.add_arguments(parser, TrainConfig)"
        )
        options.add_arguments(parser, cls)

    @classmethod
    def from_args(cls, namespace):
        """Deprecated: ``cyclegan_tf.options.from_args(TrainConfig, namespace)``."""
        _deprecated.warn_renamed(
            "TrainConfig.from_args", "cyclegan_tf.options.from_args(TrainConfig, namespace)"
        )
        return options.from_args(cls, namespace)


# The constructor arguments every objective takes from the config as they are, and those whose
# default (None in the config) is the objective's own constructor default.
_SHARED_MODEL_OPTIONS = (
    "ngf",
    "ndf",
    "n_res_blocks",
    "n_disc_layers",
    "gan_mode",
    "image_size",
    "seed",
    "norm",
    "affine_norm",
    "dropout",
    "input_nc",
    "output_nc",
)
_OBJECTIVE_DEFAULTED = ("antialias", "init_type", "init_gain")


def _constructor_defaults(objective):
    """``{argument: default}`` of an objective's constructor: the one place its defaults live.

    A subclass that changes some defaults (``FastCUT``) overrides its parent's.
    """
    defaults = {}
    for cls in reversed(objective.__mro__):
        if "__init__" in vars(cls) and issubclass(cls, objective.__mro__[-1]):
            parameters = inspect.signature(vars(cls)["__init__"]).parameters
            defaults.update(
                {name: p.default for name, p in parameters.items() if p.default is not p.empty}
            )
    return defaults


def _check_integer(key, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(key, f"must be an integer. Received: {key}={value!r}")
    if value < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise OptionError(key, f"must be {bound}. Received: {key}={value}")


def _check_number(key, value, bound, within):
    """Raises ``OptionError`` unless ``value`` is a finite number for which ``within`` holds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(key, f"must be a number. Received: {key}={value!r}")
    if not math.isfinite(value) or not within(value):
        raise OptionError(key, f"must be a finite number {bound}. Received: {key}={value}")


def _folder_name(path):
    return io.basename(path) or "cyclegan"
