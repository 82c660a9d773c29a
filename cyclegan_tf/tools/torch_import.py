"""Importing PyTorch CycleGAN-family generators (``latest_net_G.pth`` and the like) into Keras.

The layout of a file is read from its keys and shapes; nothing is asked of the user in the common
case. ``LAYOUTS`` are the layouts it knows:

* ``official``: the official CycleGAN/pix2pix ResNet generator, the state dict of
  ``ResnetGenerator.model``, an ``nn.Sequential`` whose weighted modules are named by position:
  ``model.1`` (stem), ``model.4``/``model.7`` (stride-2 downsamplings), ``model.{10+i}.conv_block.1``
  and ``.5`` (residual block ``i``; ``.6`` with dropout), ``model.{10+n}``/``model.{13+n}`` (transposed
  convolutions), ``model.{17+n}`` (head), for ``n`` blocks. ``--norm instance`` has no norm weights
  (old checkpoints carry ``running_mean``/``running_var`` buffers that the reference ignores, and so
  does this importer); ``--norm batch`` has ``weight``/``bias``/``running_*`` on every norm and no
  convolution biases; ``--norm none`` neither.
* ``reimplementation``: the same ``model.N`` sequence as many re-implementations write it: residual
  blocks as ``block`` or ``conv_block``, InstanceNorm with affine ``weight``/``bias``.
* ``cut``: CUT's anti-aliased generator, whose blur-pools and blur-upsamples keep their fixed filters
  as ``filt`` buffers (checked, not imported), shifting the indices after them.
* ``unet``: the official U-Net generators (``unet_256``, ``unet_128``; pix2pix's pretrained ones
  too): nested ``UnetSkipConnectionBlock``s, ``model.model.0`` the outermost down-convolution, each
  level's ``model.1`` the next.

From the shapes come ``ngf``, the number of blocks (or levels), the channels in and out, the norm and
whether it is affine, the biases, the dropout and the sampling; the generator built from them keeps all
of it in its config, so that tiling, export, serving and re-export need no flags. Wrappers are
unwrapped: ``module.`` prefixes (``DataParallel``/``DDP``) and checkpoint dicts holding several networks
(``state_dict``, ``G_A2B``/``G_B2A``, ``netG_A``/``netG_B``, ``model``), where ``key`` picks one. A file
that matches no layout is refused naming the closest layout and the first key that differs.

Only ``load_torch_checkpoint`` needs ``torch`` (the optional extra ``cyclegan_tf[torch]``), and it
loads with ``weights_only=True``: a file can hold tensors but no code. The mapping itself works on
NumPy arrays.

Reference:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
    ICCV 2017; Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR
    2017; Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020;
    ``ResnetGenerator``, ``ResnetBlock``, ``UnetGenerator`` (and CUT's ``Downsample``/``Upsample``) in
    the official PyTorch releases.
"""

import dataclasses
import logging
import re
from collections.abc import Mapping

import numpy as np

from cyclegan_tf import io, model_store
from cyclegan_tf.errors import OptionError, first_line
from cyclegan_tf.export import saved_model
from cyclegan_tf.models import layers
from cyclegan_tf.models.generators import ResnetGenerator
from cyclegan_tf.models.unet import UnetGenerator

logger = logging.getLogger(__name__)

# PyTorch stores Conv2d weights as [out, in, kh, kw] and ConvTranspose2d weights as [in, out, kh, kw];
# Keras stores Conv2D kernels as [kh, kw, in, out] and Conv2DTranspose kernels as [kh, kw, out, in].
# Both are the same axis permutation. No spatial flip is needed: both frameworks define the
# transposed convolution as the adjoint of the same cross-correlation.
_TORCH_TO_KERAS_AXES = (2, 3, 1, 0)
_KERAS_TO_TORCH_AXES = (3, 2, 0, 1)

_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_MAX_LISTED = 8
_BLOCK_NAMES = ("conv_block", "block")

_TORCH_MISSING = (
    "importing PyTorch weights needs torch; install the extra: pip install 'cyclegan_tf[torch]'"
)

LAYOUTS = {
    "official": "the official CycleGAN ResNet layout",
    "reimplementation": "a re-implementation's ResNet layout",
    "cut": "CUT's anti-aliased ResNet layout",
    "unet": "the official U-Net layout",
}


def _reference_sequence(generator):
    """``ResnetGenerator.model`` of the reference, in module order: ``(kind, stage or block)``.

    A ``"norm"`` entry holds the stage whose norm it is (``--norm none`` keeps an ``Identity`` there).
    """
    modules = [("pad", None), ("conv", generator.stem), ("norm", generator.stem), ("relu", None)]
    for stage in generator.downsamplings:
        modules += [("conv", stage), ("norm", stage), ("relu", None)]
        modules += [("blur_down", stage)] if stage.downsample else []
    modules += [("block", block) for block in generator.res_blocks]
    for stage in generator.upsamplings:
        modules += [("blur_up", stage)] if stage.upsample else []
        modules += [("conv", stage), ("norm", stage), ("relu", None)]
    modules += [("pad", None), ("conv", generator.head), ("tanh", None)]
    return modules


def _block_indices(block):
    """``ResnetBlock.conv_block``: the indices of its two convolutions and of their norms.

    ``[pad, conv, norm, relu, (dropout), pad, conv, norm]``: a dropout shifts the second half by one.
    """
    second = 6 if block.dropout else 5
    return (1, second), (2, second + 1)


def torch_layout(generator, block_name="conv_block"):
    """Where each weighted PyTorch module of the reference generator goes in a ``ResnetGenerator``.

    Args:
        generator: a ``ResnetGenerator``.
        block_name: str, the name of a residual block's ``nn.Sequential`` (``"conv_block"``, the
            official one, or ``"block"``).

    Returns:
        ``(convs, norms)``: ``convs`` maps a PyTorch module prefix (``"model.10.conv_block.1"``) to
        the ``ConvStage`` that takes its weights (here ``generator.res_blocks[0].stages[0]``);
        ``norms`` maps each norm module's prefix to the stage whose norm it is.

    Example:
        >>> generator = ResnetGenerator(ngf=8, n_res_blocks=9)
        >>> convs, _ = torch_layout(generator)
        >>> convs["model.19"] is generator.upsamplings[0], convs["model.26"] is generator.head
        (True, True)
    """
    convs, norms = {}, {}
    for index, (kind, part) in enumerate(_reference_sequence(generator)):
        prefix = f"model.{index}"
        if kind == "conv":
            convs[prefix] = part
        elif kind == "norm":
            norms[prefix] = part
        elif kind == "block":
            conv_indices, norm_indices = _block_indices(part)
            for inner, stage in zip(conv_indices, part.stages):
                convs[f"{prefix}.{block_name}.{inner}"] = stage
            for inner, stage in zip(norm_indices, part.stages):
                norms[f"{prefix}.{block_name}.{inner}"] = stage
    return convs, norms


def torch_filters(generator):
    """The fixed filters (``filt`` buffers) of CUT's blur layers a state dict of ``generator`` holds.

    Returns:
        dict of PyTorch key (``"model.7.filt"``) to the float32 array it must hold,
        ``[channels, 1, k, k]``: the blur-pool's normalised [1, 2, 1] squared (k = 3) or the
        blur-upsample's [1, 3, 3, 1] squared, normalised and times 4 (k = 4).
    """
    filters = {}
    for index, (kind, stage) in enumerate(_reference_sequence(generator)):
        if kind == "blur_down":
            kernel = layers.blur_down_kernel(stage.filters)  # [3, 3, C, 1]
            filters[f"model.{index}.filt"] = np.transpose(kernel, (2, 3, 0, 1))
        elif kind == "blur_up":
            channels = stage.conv.kernel.shape[2]
            taps = np.asarray([1.0, 3.0, 3.0, 1.0])
            square = np.outer(taps, taps) / np.sum(taps) ** 2 * 4
            filters[f"model.{index}.filt"] = np.tile(square, (channels, 1, 1, 1)).astype("float32")
    return filters


@dataclasses.dataclass
class TensorMap:
    """Where each tensor of a PyTorch state dict goes in a Keras generator.

    Attributes:
        variables: dict, PyTorch key to the Keras variable that takes it.
        fixed: dict, PyTorch key to the array a fixed buffer must hold (CUT's blur filters).
        ignored: set of PyTorch keys that may be present and are not used (old norm buffers).
    """

    variables: dict = dataclasses.field(default_factory=dict)
    fixed: dict = dataclasses.field(default_factory=dict)
    ignored: set = dataclasses.field(default_factory=set)

    def add_conv(self, prefix, conv):
        """A convolution's ``weight`` (and ``bias`` where it has one)."""
        self.variables[f"{prefix}.weight"] = conv.kernel
        if conv.bias is not None:
            self.variables[f"{prefix}.bias"] = conv.bias

    def add_norm(self, prefix, norm):
        """A norm's weights: affine ``weight``/``bias``, a batch norm's running statistics."""
        if norm is None:
            return
        if norm.gamma is not None:
            self.variables[f"{prefix}.weight"] = norm.gamma
        if norm.beta is not None:
            self.variables[f"{prefix}.bias"] = norm.beta
        buffers = _NORM_BUFFERS
        if hasattr(norm, "moving_mean"):  # a batch norm
            self.variables[f"{prefix}.running_mean"] = norm.moving_mean
            self.variables[f"{prefix}.running_var"] = norm.moving_variance
            buffers = ("num_batches_tracked",)
        self.ignored.update(f"{prefix}.{buffer}" for buffer in buffers)

    def expected_shapes(self):
        """``{key: PyTorch shape}`` of every tensor the file must hold."""
        shapes = {key: _torch_shape(variable) for key, variable in self.variables.items()}
        shapes.update({key: tuple(value.shape) for key, value in self.fixed.items()})
        return shapes


def _torch_shape(variable):
    shape = tuple(int(size) for size in variable.shape)
    return tuple(shape[axis] for axis in _KERAS_TO_TORCH_AXES) if len(shape) == 4 else shape


def resnet_tensor_map(generator, block_name="conv_block"):
    """The ``TensorMap`` of a ``ResnetGenerator`` in the reference's ``model.N`` layout."""
    tensors = TensorMap()
    convs, norms = torch_layout(generator, block_name)
    for prefix, stage in convs.items():
        tensors.add_conv(prefix, stage.conv)
    for prefix, stage in norms.items():
        tensors.add_norm(prefix, stage.norm)
    tensors.fixed.update(torch_filters(generator))
    return tensors


@dataclasses.dataclass
class Candidate:
    """A layout a state dict may have, with the architecture its shapes suggest.

    Attributes:
        layout: str, a key of ``LAYOUTS``.
        config: dict, the generator's constructor arguments.
        build: callable, ``config -> (generator, TensorMap)``.
    """

    layout: str
    config: dict
    build: object

    def describe(self):
        """A short description: the layout and the architecture (``ngf 64, 9 blocks, ...``)."""
        config = self.config
        parts = [f"ngf {config['ngf']}"]
        if "n_res_blocks" in config:
            parts.append(f"{config['n_res_blocks']} blocks")
        if "num_downs" in config:
            parts.append(f"{config['num_downs']} levels")
        norm = config.get("norm", "instance")
        parts.append(f"{'affine ' if config.get('affine_norm') else ''}{norm} norm")
        channels, out = config.get("channels", 3), config.get("output_channels")
        parts.append(f"{channels}→{channels if out is None else out} channels")
        if config.get("dropout"):
            parts.append("dropout")
        return f"{LAYOUTS[self.layout]} ({', '.join(parts)})"


def _resnet_candidate(state, overrides):
    """The ResNet layout's reading of a state dict, or None where it has no ``model.1`` kernel."""
    stem = state.get("model.1.weight")
    if stem is None or np.ndim(stem) != 4:
        return None
    block_name = next(
        (name for name in _BLOCK_NAMES if any(f".{name}." in key for key in state)),
        _BLOCK_NAMES[0],
    )
    pattern = re.compile(rf"^model\.(\d+)\.{block_name}\.(\d+)\.")
    found = [(pattern.match(key), key) for key in state]
    blocks = {match.group(1) for match, _ in found if match}
    # With dropout the second convolution of a block is its module 6 (a norm's weight without).
    dropout = any(
        match.group(2) == "6" and np.ndim(state[key]) == 4 for match, key in found if match
    )
    antialias, antialias_up = _sampling_of(state)
    has_bias = "model.1.bias" in state
    affine = "model.2.weight" in state
    if affine and "model.2.running_mean" in state and not has_bias:
        norm = "batch"
    elif affine or has_bias:
        norm = "instance"
    else:
        norm = "none"  # the official --norm none: no norm weights and no biases
    head = max(
        (int(key.split(".")[1]) for key in state if re.match(r"^model\.\d+\.weight$", key)),
        default=1,
    )
    config = {
        "ngf": int(np.shape(stem)[0]),
        "n_res_blocks": len(blocks),
        "channels": int(np.shape(stem)[1]),
        "output_channels": int(np.shape(state[f"model.{head}.weight"])[0]),
        "norm": norm,
        "affine_norm": affine and norm == "instance",
        "dropout": dropout,
        "use_bias": has_bias,
        "antialias": antialias,
        "antialias_up": antialias_up,
        **overrides,
    }
    if antialias or antialias_up:
        layout = "cut"
    elif block_name != "conv_block" or config["affine_norm"]:
        layout = "reimplementation"
    else:
        layout = "official"

    def build(config, name="generator"):
        generator = ResnetGenerator(**config, name=name)
        return generator, resnet_tensor_map(generator, block_name)

    return Candidate(layout, config, build)


def unet_prefixes(num_downs):
    """The module prefix of each level of the official ``UnetGenerator``, outermost first.

    ``model.model`` is the outermost block's ``nn.Sequential``; its submodule is its module 1, and
    every inner block's submodule its module 3.

    Example:
        >>> unet_prefixes(3)
        ['model.model', 'model.model.1.model', 'model.model.1.model.3.model']
    """
    prefixes = ["model.model"]
    for level in range(1, num_downs):
        prefixes.append(f"{prefixes[-1]}.{1 if level == 1 else 3}.model")
    return prefixes


def _unet_indices(level, num_downs):
    """``(down, down norm, up, up norm)``: where a level's modules sit in its ``nn.Sequential``.

    Outermost ``[down, sub, ReLU, up, tanh]``; innermost ``[LeakyReLU, down, ReLU, up, norm]``; the
    others ``[LeakyReLU, down, norm, sub, ReLU, up, norm (, dropout)]``.
    """
    if level == 0:
        return 0, None, 3, None
    if level == num_downs - 1:
        return 1, None, 3, 4
    return 1, 2, 5, 6


def unet_tensor_map(generator):
    """The ``TensorMap`` of a ``UnetGenerator`` in the official ``UnetGenerator``'s layout."""
    tensors = TensorMap()
    prefixes = unet_prefixes(generator.num_downs)
    for index, (prefix, level) in enumerate(zip(prefixes, generator.levels)):
        down, down_norm, up, up_norm = _unet_indices(index, generator.num_downs)
        tensors.add_conv(f"{prefix}.{down}", level.down)
        tensors.add_conv(f"{prefix}.{up}", level.up)
        if down_norm is not None:
            tensors.add_norm(f"{prefix}.{down_norm}", level.down_norm)
        if up_norm is not None:
            tensors.add_norm(f"{prefix}.{up_norm}", level.up_norm)
    return tensors


def _unet_candidate(state, overrides):
    """The U-Net layout's reading of a state dict, or None where it has no ``model.model.0`` kernel."""
    first = state.get("model.model.0.weight")
    if first is None or np.ndim(first) != 4:
        return None
    prefixes = unet_prefixes(64)
    num_downs = 1
    while f"{prefixes[num_downs]}.1.weight" in state:
        num_downs += 1
    norm_prefix = f"{prefixes[1]}.2"
    has_bias = "model.model.0.bias" in state
    affine = f"{norm_prefix}.weight" in state
    if affine and f"{norm_prefix}.running_mean" in state and not has_bias:
        norm = "batch"
    elif affine or has_bias:
        norm = "instance"
    else:
        norm = "none"
    last = state.get("model.model.3.weight")
    config = {
        "ngf": int(np.shape(first)[0]),
        "num_downs": num_downs,
        "channels": int(np.shape(first)[1]),
        "output_channels": int(np.shape(last)[1]) if np.ndim(last) == 4 else 3,
        "norm": norm,
        "affine_norm": affine and norm == "instance",
        "use_bias": has_bias,
        **{key: value for key, value in overrides.items() if key != "n_res_blocks"},
    }

    def build(config, name="generator"):
        generator = UnetGenerator(**config, name=name)
        return generator, unet_tensor_map(generator)

    return Candidate("unet", config, build)


_CANDIDATES = (_resnet_candidate, _unet_candidate)


def _sampling_of(state_dict):
    """``(antialias, antialias_up)`` of a state dict: which blur buffers (3x3 or 4x4) it holds."""
    sizes = {np.shape(value)[-1] for key, value in state_dict.items() if key.endswith(".filt")}
    return 3 in sizes, 4 in sizes


def _natural_key(key):
    """Sorts ``model.10`` after ``model.9``, and a module's ``weight`` before its other tensors."""
    module, _, tensor = key.rpartition(".")
    parts = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", module)]
    return parts, tensor != "weight", tensor


def _listed(items):
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" … and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


@dataclasses.dataclass
class _Comparison:
    """How a state dict differs from a candidate layout's tensors."""

    missing: list
    unexpected: list
    misshaped: list

    @property
    def count(self):
        return len(self.missing) + len(self.unexpected) + len(self.misshaped)

    def first(self):
        """The first key (in the file's natural order) that differs, and how."""
        notes = {key: "missing" for key in self.missing}
        notes.update({key: "not in that layout" for key in self.unexpected})
        notes.update(dict(self.misshaped))
        key = min(notes, key=_natural_key)
        return f"{key} ({notes[key]})"


def _compare(state, tensors):
    expected = tensors.expected_shapes()
    missing = sorted(set(expected) - set(state), key=_natural_key)
    unexpected = sorted(set(state) - set(expected) - tensors.ignored, key=_natural_key)
    misshaped = [
        (key, f"shape {list(np.shape(state[key]))}, expected {list(expected[key])}")
        for key in sorted(set(expected) & set(state), key=_natural_key)
        if tuple(np.shape(state[key])) != expected[key]
    ]
    misshaped += [
        (key, "not the fixed blur filter of the official release")
        for key in sorted(set(tensors.fixed) & set(state), key=_natural_key)
        if tuple(np.shape(state[key])) == tensors.fixed[key].shape
        and not np.allclose(np.asarray(state[key], "float32"), tensors.fixed[key], atol=1e-6)
    ]
    return _Comparison(missing, unexpected, misshaped)


def _strip_data_parallel(state_dict):
    """Drops the ``module.`` prefix that ``nn.DataParallel`` adds, if every key has it."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module.") :]: value for key, value in state_dict.items()}
    return dict(state_dict)


@dataclasses.dataclass
class Imported:
    """An imported generator and what was read from the file.

    Attributes:
        generator: the Keras generator (a ``ResnetGenerator`` or ``UnetGenerator``).
        layout: str, the layout (a key of ``LAYOUTS``).
        description: str, the layout and the architecture inferred, for messages.
        key: str or None, the network picked from a checkpoint that holds several.
        saved_model_dir: str or None, the SavedModel version written (``import_weights``).
        keras_path: str or None, the ``.keras`` file written (``import_weights``).
    """

    generator: object
    layout: str
    description: str
    key: str | None = None
    saved_model_dir: str | None = None
    keras_path: str | None = None


def detect_generator(state_dict, overrides=None, name="generator"):
    """Builds the Keras generator that holds a PyTorch generator's state dict, whatever its layout.

    Args:
        state_dict: mapping of PyTorch key (``"model.1.weight"``) to an array (NumPy, or anything
            ``np.asarray`` accepts); a ``module.`` prefix on every key is dropped.
        overrides: dict or None, constructor arguments that replace what the shapes suggest
            (``{"ngf": 64}``); a value that does not fit the file makes it match no layout.
        name: str, the Keras model name.

    Returns:
        An ``Imported`` whose generator's outputs equal the PyTorch generator's (images in [-1, 1],
        NHWC instead of NCHW; a batch norm with its running statistics, as in ``eval()``).

    Raises:
        ValueError: in one line, for a state dict of no known layout: the closest layout and the
            first key that differs from it.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"state_dict must be a mapping of names to tensors. Received: {type(state_dict).__name__}"
        )
    state = _strip_data_parallel(state_dict)
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    closest = None
    for make in _CANDIDATES:
        candidate = make(state, overrides)
        if candidate is None:
            continue
        try:
            generator, tensors = candidate.build(candidate.config, name=name)
        except ValueError as error:  # shapes that no generator has (e.g. ngf 0)
            closest = closest or (candidate, first_line(error))
            continue
        comparison = _compare(state, tensors)
        if comparison.count == 0:
            _assign(state, tensors)
            skipped = sorted(set(state) & tensors.ignored)
            if skipped:
                logger.info("Ignored %d norm buffers: %s", len(skipped), _listed(skipped))
            return Imported(generator, candidate.layout, candidate.describe())
        if closest is None or isinstance(closest[1], str) or comparison.count < closest[1].count:
            closest = (candidate, comparison)
    raise ValueError(_no_layout_message(state, closest))


def _no_layout_message(state, closest):
    known = ", ".join(LAYOUTS.values())
    if closest is None:
        first = next(iter(state), "(no keys)")
        return (
            f"the state dict is not a generator of a known layout ({known}): its first key "
            f"{first} is none of theirs (a generator's first weight is model.1.weight or "
            "model.model.0.weight)"
        )
    candidate, difference = closest
    detail = difference if isinstance(difference, str) else difference.first()
    return (
        f"the state dict is not a generator of a known layout; the closest is "
        f"{candidate.describe()}, and the first key that differs is {detail}"
    )


def _assign(state, tensors):
    for key, variable in tensors.variables.items():
        value = np.asarray(state[key], dtype="float32")
        if value.ndim == 4:
            value = np.transpose(value, _TORCH_TO_KERAS_AXES)
        variable.assign(value)


def generator_from_state_dict(state_dict, ngf=None, n_res_blocks=None, name="generator"):
    """Builds the Keras generator holding the weights of a PyTorch generator's state dict.

    The layout and the architecture are read from the keys and shapes (see ``detect_generator``).

    Args:
        state_dict: mapping of PyTorch key to an array, as ``load_torch_checkpoint`` returns.
        ngf: int or None, filters of the first layer; None reads it from the shapes.
        n_res_blocks: int or None, residual blocks; None counts them.
        name: str, the Keras model name.

    Returns:
        The generator (``ResnetGenerator`` or ``UnetGenerator``).

    Raises:
        ValueError: for a state dict of no known layout, naming the closest and the first key
            that differs.
    """
    overrides = {"ngf": ngf, "n_res_blocks": n_res_blocks}
    return detect_generator(state_dict, overrides, name).generator


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError(_TORCH_MISSING) from error
    return torch


def load_torch_checkpoint(path):
    """Reads a PyTorch ``.pth``/``.pt``/``.ckpt`` file: its tensors as NumPy arrays, nested as saved.

    Loads with ``weights_only=True``, so a file can hold tensors, numbers, strings and containers
    of them, but no code.

    Args:
        path: str, the file.

    Returns:
        A dict: a state dict (key to ``np.ndarray``), or a checkpoint dict whose values may be state
        dicts, numbers or other containers.

    Raises:
        ImportError: if ``torch`` is not installed, saying which extra to install.
        ValueError: if the file is missing, holds Python objects besides tensors, or is not a dict.
    """
    if not io.isfile(path):
        raise OptionError("weights", f"no such weights file: {path}")
    torch = _import_torch()
    try:
        with io.local_copy(path) as local:
            loaded = torch.load(local, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        if found:
            raise ValueError(
                f"{path} holds a Python object ({found.group(1)}) besides tensors, which is not "
                "loaded (torch.load weights_only=True: a file could run code); save the "
                "generator's state dict alone, e.g. torch.save(checkpoint['netG'], 'netG.pth')"
            ) from None
        raise ValueError(f"{path} is not a PyTorch state dict file: {first_line(error)}") from None
    if not isinstance(loaded, Mapping):
        raise ValueError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)"
        )
    return _to_numpy(loaded, torch)


def _to_numpy(value, torch):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {str(key): _to_numpy(item, torch) for key, item in value.items()}
    return value


def load_torch_state_dict(path):
    """Reads a ``.pth`` file that is one state dict, as NumPy arrays (see ``load_torch_checkpoint``).

    Raises:
        ValueError: if the file is not a plain state dict (a value is not a tensor).
    """
    loaded = load_torch_checkpoint(path)
    for key, value in loaded.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"{path} is not a plain state dict: {key!r} holds a {type(value).__name__}, not a tensor"
            )
    return loaded


def _is_state_dict(value):
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(item, np.ndarray) for item in value.values())
    )


def networks_in(checkpoint, prefix=""):
    """``{name: state dict}`` of every network a checkpoint holds.

    A state dict is a mapping of names to arrays. Checkpoint dicts are searched by key
    (``{"G_A2B": ..., "G_B2A": ..., "optimizer": ...}``, ``{"state_dict": ...}``: names joined by
    ``/``), and a state dict whose keys start with the names of several networks
    (``netG_A.model.1.weight``, ``netG_B.model.1.weight``: a Lightning module's) is split by them.
    A ``module.`` prefix is not a network's name.
    """
    if _is_state_dict(checkpoint):
        state = _strip_data_parallel(checkpoint)
        heads = {key.split(".", 1)[0] for key in state}
        if len(heads) > 1 and all("." in key for key in state) and "model" not in heads:
            return {
                f"{prefix}{head}": {
                    key[len(head) + 1 :]: value
                    for key, value in state.items()
                    if key.startswith(f"{head}.")
                }
                for head in sorted(heads)
            }
        return {prefix.rstrip("/") or None: state}
    found = {}
    if isinstance(checkpoint, Mapping):
        for key, value in checkpoint.items():
            if isinstance(value, Mapping):
                found.update(networks_in(value, f"{prefix}{key}/"))
    return found


def pick_network(checkpoint, key=None, path="the checkpoint"):
    """The state dict of one generator of a checkpoint, and its name (None for a plain state dict).

    Args:
        checkpoint: what ``load_torch_checkpoint`` returned.
        key: str or None, the network's name (``G_A2B``; ``/`` joins nested keys). None: the only
            network, or the only one that is a generator of a known layout.
        path: str, the file, for messages.

    Returns:
        ``(name, state_dict)``.

    Raises:
        OptionError: for ``key``, naming the networks found, when it names none of them or is
            needed to choose among several generators.
        ValueError: if the file holds no state dict at all.
    """
    networks = networks_in(checkpoint)
    names = [name for name in networks if name is not None]
    if key is not None:
        if key in networks:
            return key, networks[key]
        found = f"its networks are {_listed(names)}" if names else "it is one state dict"
        raise OptionError("key", f"{path} has no network {key!r}; {found}")
    if not networks:
        raise ValueError(f"{path} holds no state dict (no mapping of names to tensors)")
    if len(networks) == 1:
        return next(iter(networks.items()))
    generators = [name for name in names if _is_generator(networks[name])]
    if len(generators) == 1:
        logger.info("%s: importing %s, its only generator", path, generators[0])
        return generators[0], networks[generators[0]]
    listed = _listed(generators or names)
    kind = "generators" if generators else "networks"
    raise OptionError(
        "key",
        f"{path} holds several {kind}: {listed}; choose one, e.g. --key {(generators or names)[0]}",
    )


def _is_generator(state):
    try:
        detect_generator(state)
    except ValueError:
        return False
    return True


def import_weights(
    weights,
    name,
    export_dir="saved_models",
    version=None,
    ngf=None,
    n_res_blocks=None,
    key=None,
):
    """Imports a PyTorch generator as a SavedModel version and a ``.keras`` file.

    Writes ``export_dir/<name>/<version>/`` (TF Serving's layout) and ``export_dir/<name>/<version>.keras``.

    Args:
        weights: str, the PyTorch file (``latest_net_G.pth``, a checkpoint dict).
        name: str, the served model name (``apple2orange``).
        export_dir: str, the base path (local, ``gs://`` or ``ram://``). Defaults to ``saved_models``.
        version: int or None, the version; default one above the highest of any format.
        ngf: int or None, filters of the first layer; None reads it from the file.
        n_res_blocks: int or None, residual blocks; None counts them.
        key: str or None, the network to import from a checkpoint that holds several.

    Returns:
        An ``Imported`` (with ``saved_model_dir`` and ``keras_path``).

    Raises:
        ValueError: on a bad name, an existing version, or a file of no known layout.
        ImportError: if ``torch`` is not installed.
    """
    model_store.check_model_name(name, option="name")
    picked, state = pick_network(load_torch_checkpoint(weights), key, weights)
    try:
        imported = detect_generator(state, {"ngf": ngf, "n_res_blocks": n_res_blocks})
    except ValueError as error:
        where = weights if picked is None else f"{weights} ({picked})"
        raise ValueError(f"{where}: {error}") from None
    imported.key = picked
    version, keras_path = model_store.version_path(export_dir, name, version, ".keras")
    model_store.version_path(export_dir, name, version, saved_model.FORMAT.suffix())
    imported.saved_model_dir = saved_model.export(imported.generator, export_dir, name, version)
    with io.atomic_output(keras_path) as tmp:
        imported.generator.save(tmp)
    imported.keras_path = keras_path
    return imported
