"""Importing the official PyTorch CycleGAN and CUT generators (``latest_net_G.pth``) into Keras.

The official releases store a ResNet generator as the state dict of ``ResnetGenerator.model``, an
``nn.Sequential`` whose weighted modules are named by their position. CycleGAN's (strided sampling):

* ``model.1`` → ``ResnetGenerator.stem`` (Conv2d 7x7);
* ``model.4``, ``model.7`` → ``downsamplings[0]``, ``downsamplings[1]`` (Conv2d 3x3, stride 2);
* ``model.{10+i}.conv_block.1`` and ``.5`` → ``res_blocks[i].stages`` (Conv2d 3x3);
* ``model.{10+n}``, ``model.{13+n}`` → ``upsamplings[0]``, ``upsamplings[1]`` (ConvTranspose2d 3x3,
  stride 2);
* ``model.{17+n}`` → ``head`` (Conv2d 7x7), for ``n`` residual blocks.

With the default nine blocks that is ``model.19``/``model.22`` for the transposed convolutions and
``model.26`` for the last convolution. CUT's anti-aliased layout puts a blur-pool after each
downsampling's ReLU and a blur-upsample before each upsampling's (stride-1) convolution; their fixed
filters are buffers (``model.7.filt``, ``model.11.filt``, ``model.21.filt``, ``model.25.filt`` with
nine blocks), which are checked, not imported: ``model.4``/``model.8`` are the downsamplings,
``model.12``… the blocks, ``model.22``/``model.26`` the upsamplings and ``model.30`` the head. The
layout of a file (strided or anti-aliased, downsampling and upsampling each) is read from those
buffers. InstanceNorm without affine parameters has no weights; old checkpoints carry
``running_mean``/``running_var``/``num_batches_tracked`` buffers on the norm layers, which the
reference ignores at load time and so does this importer.

Only ``load_torch_state_dict`` needs ``torch`` (the optional extra ``cyclegan_tf[torch]``); the mapping
itself works on NumPy arrays.

Reference:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
    ICCV 2017; Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV
    2020; ``ResnetGenerator``/``ResnetBlock`` (and CUT's ``Downsample``/``Upsample``) in the official
    PyTorch releases.
"""

import logging
from collections.abc import Mapping

import numpy as np

from cyclegan_tf import io, model_store
from cyclegan_tf.errors import OptionError, first_line
from cyclegan_tf.export import saved_model
from cyclegan_tf.models import layers
from cyclegan_tf.models.generators import ResnetGenerator

logger = logging.getLogger(__name__)

# PyTorch stores Conv2d weights as [out, in, kh, kw] and ConvTranspose2d weights as [in, out, kh, kw];
# Keras stores Conv2D kernels as [kh, kw, in, out] and Conv2DTranspose kernels as [kh, kw, out, in].
# Both are the same axis permutation. No spatial flip is needed: both frameworks define the
# transposed convolution as the adjoint of the same cross-correlation.
_TORCH_TO_KERAS_AXES = (2, 3, 1, 0)
_KERAS_TO_TORCH_AXES = (3, 2, 0, 1)

_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_MAX_LISTED = 8

_TORCH_MISSING = (
    "importing PyTorch weights needs torch; install the extra: pip install 'cyclegan_tf[torch]'"
)


def _reference_sequence(generator):
    """``ResnetGenerator.model`` of the reference, in module order: ``(kind, stage or block)``."""
    modules = [("pad", None), ("conv", generator.stem), ("norm", None), ("relu", None)]
    for stage in generator.downsamplings:
        modules += [("conv", stage), ("norm", None), ("relu", None)]
        modules += [("blur_down", stage)] if stage.downsample else []
    modules += [("block", block) for block in generator.res_blocks]
    for stage in generator.upsamplings:
        modules += [("blur_up", stage)] if stage.upsample else []
        modules += [("conv", stage), ("norm", None), ("relu", None)]
    modules += [("pad", None), ("conv", generator.head), ("tanh", None)]
    return modules


# ``ResnetBlock.conv_block`` without dropout (the CycleGAN default, ``--no_dropout``): the index of
# each module in it, by kind; the two convolutions are the block's two stages.
_BLOCK_CONVS = (1, 5)
_BLOCK_NORMS = (2, 6)


def torch_layout(generator):
    """Where each weighted PyTorch module of the reference generator goes in a ``ResnetGenerator``.

    Args:
        generator: a ``ResnetGenerator``.

    Returns:
        ``(convs, norms)``: ``convs`` maps a PyTorch module prefix (``"model.10.conv_block.1"``) to
        the ``ConvStage`` that takes its weights (here ``generator.res_blocks[0].stages[0]``);
        ``norms`` is the set of InstanceNorm module prefixes, whose running-statistics buffers are
        ignored.

    Example:
        >>> generator = ResnetGenerator(ngf=8, n_res_blocks=9)
        >>> convs, _ = torch_layout(generator)
        >>> convs["model.19"] is generator.upsamplings[0], convs["model.26"] is generator.head
        (True, True)
    """
    convs, norms = {}, set()
    for index, (kind, part) in enumerate(_reference_sequence(generator)):
        prefix = f"model.{index}"
        if kind == "conv":
            convs[prefix] = part
        elif kind == "norm":
            norms.add(prefix)
        elif kind == "block":
            for inner, stage in zip(_BLOCK_CONVS, part.stages):
                convs[f"{prefix}.conv_block.{inner}"] = stage
            norms.update(f"{prefix}.conv_block.{inner}" for inner in _BLOCK_NORMS)
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


def _sampling_of(state_dict):
    """``(antialias, antialias_up)`` of a state dict: which blur buffers (3x3 or 4x4) it holds."""
    sizes = {np.shape(value)[-1] for key, value in state_dict.items() if key.endswith(".filt")}
    return 3 in sizes, 4 in sizes


def _strip_data_parallel(state_dict):
    """Drops the ``module.`` prefix that ``nn.DataParallel`` adds, if every key has it."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module.") :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _guess_architecture(state_dict):
    """``(ngf, n_res_blocks)`` as the keys and shapes suggest, or None where they do not say."""
    stem = state_dict.get("model.1.weight")
    ngf = int(np.shape(stem)[0]) if stem is not None and np.ndim(stem) == 4 else None
    blocks = {key.split(".")[1] for key in state_dict if ".conv_block." in key}
    return ngf, len(blocks) or None


def _listed(items):
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" … and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def generator_from_state_dict(state_dict, ngf=64, n_res_blocks=9, name="generator"):
    """Builds the Keras ResNet generator holding the weights of a reference PyTorch state dict.

    The sampling (CycleGAN's strided convolutions or CUT's anti-aliased blurs, downsampling and
    upsampling each) is read from the file's ``filt`` buffers.

    Args:
        state_dict: mapping of PyTorch key (``"model.1.weight"``) to an array (NumPy, or anything
            ``np.asarray`` accepts), as ``load_torch_state_dict`` returns.
        ngf: int, filters of the first layer. Defaults to 64.
        n_res_blocks: int, residual blocks. Defaults to 9.
        name: str, the Keras model name.

    Returns:
        A ``ResnetGenerator(ngf, n_res_blocks, antialias=..., antialias_up=...)`` whose outputs equal
        the PyTorch generator's (images in [-1, 1], NHWC instead of NCHW).

    Raises:
        ValueError: if keys are missing or unexpected, or tensors have the wrong shape; the message lists
            them (and the architecture the file looks like, if it differs).
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"state_dict must be a mapping of names to tensors. Received: {type(state_dict).__name__}"
        )
    state_dict = _strip_data_parallel(state_dict)
    antialias, antialias_up = _sampling_of(state_dict)
    generator = ResnetGenerator(
        ngf=ngf,
        n_res_blocks=n_res_blocks,
        antialias=antialias,
        antialias_up=antialias_up,
        name=name,
    )
    convs, norms = torch_layout(generator)
    filters = torch_filters(generator)

    expected = {}
    for prefix, stage in convs.items():
        layer = stage.conv
        kernel_shape = tuple(layer.kernel.shape)
        expected[f"{prefix}.weight"] = tuple(kernel_shape[axis] for axis in _KERAS_TO_TORCH_AXES)
        expected[f"{prefix}.bias"] = tuple(layer.bias.shape)
    expected.update({key: value.shape for key, value in filters.items()})
    ignored = {f"{prefix}.{buffer}" for prefix in norms for buffer in _NORM_BUFFERS}

    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected) - ignored)
    misshaped = [
        f"{key} {list(np.shape(state_dict[key]))} (expected {list(expected[key])})"
        for key in sorted(set(expected) & set(state_dict))
        if tuple(np.shape(state_dict[key])) != expected[key]
    ]
    misshaped += [
        f"{key} (not the fixed blur filter of the official release)"
        for key in sorted(set(filters) & set(state_dict))
        if tuple(np.shape(state_dict[key])) == filters[key].shape
        and not np.allclose(np.asarray(state_dict[key], "float32"), filters[key], atol=1e-6)
    ]
    if missing or unexpected or misshaped:
        problems = []
        if missing:
            problems.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_listed(unexpected)}")
        if misshaped:
            problems.append(f"misshaped tensors: {_listed(misshaped)}")
        guess = _guess_architecture(state_dict)
        hint = ""
        if guess != (ngf, n_res_blocks) and all(value is not None for value in guess):
            hint = f"; the file looks like --ngf {guess[0]} --n-res-blocks {guess[1]}"
        layout = "an anti-aliased (CUT) " if antialias or antialias_up else "a "
        raise ValueError(
            f"the state dict is not {layout}reference ResNet generator with ngf={ngf}, "
            f"n_res_blocks={n_res_blocks}: {'; '.join(problems)}{hint}"
        )

    for prefix, stage in convs.items():
        kernel = np.asarray(state_dict[f"{prefix}.weight"], dtype="float32")
        bias = np.asarray(state_dict[f"{prefix}.bias"], dtype="float32")
        layer = stage.conv
        layer.kernel.assign(np.transpose(kernel, _TORCH_TO_KERAS_AXES))
        layer.bias.assign(bias)
    skipped = sorted(set(state_dict) & ignored)
    if skipped:
        logger.info("Ignored %d InstanceNorm running-statistics buffers", len(skipped))
    return generator


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError(_TORCH_MISSING) from error
    return torch


def load_torch_state_dict(path):
    """Reads a PyTorch ``.pth`` state dict (e.g. ``latest_net_G.pth``) as NumPy arrays.

    Loads with ``weights_only=True``, so a file can hold tensors but no code.

    Args:
        path: str, the ``.pth`` file.

    Returns:
        A dict of key to float32 ``np.ndarray`` (integer buffers keep their dtype).

    Raises:
        ImportError: if ``torch`` is not installed, saying which extra to install.
        ValueError: if the file is missing or is not a state dict of tensors.
    """
    if not io.isfile(path):
        raise OptionError("weights", f"no such weights file: {path}")
    torch = _import_torch()
    try:
        with io.local_copy(path) as local:
            loaded = torch.load(local, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        raise ValueError(f"{path} is not a PyTorch state dict file: {first_line(error)}") from None
    if not isinstance(loaded, Mapping):
        raise ValueError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)"
        )
    arrays = {}
    for key, value in loaded.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path} is not a plain state dict: {key!r} holds a {type(value).__name__}, not a tensor"
            )
        arrays[str(key)] = value.detach().cpu().numpy()
    return arrays


def import_weights(weights, name, export_dir="saved_models", version=None, ngf=64, n_res_blocks=9):
    """Imports an official PyTorch generator as a SavedModel version and a ``.keras`` file.

    Writes ``export_dir/<name>/<version>/`` (TF Serving's layout) and ``export_dir/<name>/<version>.keras``.

    Args:
        weights: str, the ``.pth`` state dict (``latest_net_G.pth``).
        name: str, the served model name (``apple2orange``).
        export_dir: str, the base path (local, ``gs://`` or ``ram://``). Defaults to ``saved_models``.
        version: int or None, the version; default one above the highest of any format.
        ngf: int, filters of the first layer. Defaults to 64.
        n_res_blocks: int, residual blocks. Defaults to 9.

    Returns:
        ``(saved_model_dir, keras_path)``.

    Raises:
        ValueError: on a bad name, an existing version, or weights that do not fit the generator.
        ImportError: if ``torch`` is not installed.
    """
    model_store.check_model_name(name, option="name")
    state_dict = load_torch_state_dict(weights)
    generator = generator_from_state_dict(state_dict, ngf=ngf, n_res_blocks=n_res_blocks)
    version, keras_path = model_store.version_path(export_dir, name, version, ".keras")
    model_store.version_path(export_dir, name, version, saved_model.FORMAT.suffix())
    saved_model_dir = saved_model.export(generator, export_dir, name, version)
    with io.atomic_output(keras_path) as tmp:
        generator.save(tmp)
    return saved_model_dir, keras_path
