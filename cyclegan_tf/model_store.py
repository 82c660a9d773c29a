"""The on-disk layout of exported models: served names, version numbers, each format's files.

Bottom layer: imports only ``io`` and ``errors``. Export writes this layout; inference, serving and
the run report read it.

``EXPORT_DIR/<model_name>/<version>/`` is TF Serving's layout (a SavedModel per numeric folder); the other
formats sit next to it as ``<version><suffix>`` (``1.onnx``, ``1.int8.onnx``, ``1.256x256.tflite``,
``1.openvino/``), so one version number names the same generator in every format. Versions only grow and
are never overwritten.
"""

import dataclasses
import logging
import os
import re
import tempfile

from cyclegan_tf import io
from cyclegan_tf.errors import OptionError

logger = logging.getLogger(__name__)

_DIRECTION_NAME = re.compile(r"^([A-Za-z][A-Za-z_-]*)2([A-Za-z][A-Za-z_-]*)$")
# Served names end up in URLs (/v1/models/<name>:predict) and folder names.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SAVED_MODEL_FILE = "saved_model.pb"
# The graph in an OpenVINO version folder ``<version>.openvino/``; its weights are ``model.bin`` beside it.
OPENVINO_MODEL_FILE = "model.xml"


@dataclasses.dataclass(frozen=True)
class StoredFormat:
    """How one export format lies in a model folder.

    Attributes:
        name: str, the format's name (``"onnx"``).
        extension: str, what ends a version's name (``"3.onnx"``); ``""`` for the SavedModel, whose
            version is the numeric folder itself.
        folder_file: str or None, for a format stored as a folder: the file inside it that a reader
            opens, written last so that a reader waiting for it never sees half a version.
    """

    name: str
    extension: str
    folder_file: str | None = None

    def marker(self, path):
        """The file whose presence marks the version at ``path`` complete."""
        return io.join(path, self.folder_file) if self.folder_file else path


FORMATS = {
    "saved_model": StoredFormat("saved_model", "", SAVED_MODEL_FILE),
    "onnx": StoredFormat("onnx", ".onnx"),
    "openvino": StoredFormat("openvino", ".openvino", OPENVINO_MODEL_FILE),
    "litert": StoredFormat("litert", ".tflite"),
}
QUANTIZE_MODES = ("none", "fp16", "int8")


def stored_format(name):
    """The ``StoredFormat`` called ``name``; ``OptionError`` for ``format`` naming the choices."""
    if name not in FORMATS:
        raise OptionError("format", f"must be one of {sorted(FORMATS)}. Received: format={name!r}")
    return FORMATS[name]


def model_names(run_name):
    """The served names of a run's two generators, ``(a_to_b, b_to_a)``.

    A run named ``X2Y`` exports ``X2Y`` and ``Y2X`` (``apple2orange`` → ``orange2apple``); any other name
    exports ``<name>_a2b`` and ``<name>_b2a``.

    Example:
        >>> model_names("apple2orange")
        ('apple2orange', 'orange2apple')
        >>> model_names("fruit")
        ('fruit_a2b', 'fruit_b2a')
    """
    match = _DIRECTION_NAME.match(run_name)
    if match:
        source, target = match.groups()
        return run_name, f"{target}2{source}"
    return f"{run_name}_a2b", f"{run_name}_b2a"


DIRECTIONS = ("A2B", "B2A")


def names_by_direction(run_name):
    """``{"A2B": name, "B2A": name}``: ``model_names`` keyed by the direction each model translates.

    Example:
        >>> names_by_direction("apple2orange")
        {'A2B': 'apple2orange', 'B2A': 'orange2apple'}
    """
    return dict(zip(DIRECTIONS, model_names(run_name)))


def check_model_name(name, option="model_name"):
    """Raises ``OptionError`` unless ``name`` is usable as a folder name and in a URL.

    Args:
        name: the served model name to check.
        option: str, the argument that holds it, for the message.
    """
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise OptionError(
            option,
            "a model name must start with a letter or digit and hold only letters, digits, '_', "
            f"'.' and '-'. Received: {name!r}",
        )


def existing_versions(model_dir):
    """Sorted integer versions of the SavedModel folders in ``model_dir`` (empty if it does not exist)."""
    if not io.isdir(model_dir):
        return []
    return sorted(int(name) for name in io.listdir(model_dir) if name.isdigit())


def latest_version_dir(model_dir):
    """The highest SavedModel version folder of a model base folder, or None."""
    versions = existing_versions(model_dir)
    return io.join(model_dir, str(versions[-1])) if versions else None


def used_versions(model_dir):
    """Every version number taken in ``model_dir`` by any format (``3/``, ``3.onnx``, ``3.keras``…)."""
    if not io.isdir(model_dir):
        return []
    numbers = {name.split(".", 1)[0] for name in io.listdir(model_dir)}
    return sorted(int(number) for number in numbers if number.isdigit())


def next_version(model_dir):
    """One above the highest version of any format in ``model_dir`` (1 for a new model)."""
    used = used_versions(model_dir)
    return used[-1] + 1 if used else 1


def default_version(model_dirs, suffix=""):
    """The version an export takes when none is given.

    A SavedModel (``suffix`` empty) takes a new version, one above the highest of any format. Another
    format goes next to the highest version present when that version has no such file yet (so
    ``1.onnx`` joins ``1/``), else it takes a new version too.

    Args:
        model_dirs: str or list of str, the model base folders that share the version (a run's pair).
        suffix: str, what follows the version number in the written name.

    Returns:
        int, the version.
    """
    model_dirs = [model_dirs] if isinstance(model_dirs, str) else list(model_dirs)
    latest = max((max(used_versions(folder), default=0) for folder in model_dirs), default=0)
    if (
        suffix
        and latest
        and not any(io.exists(io.join(folder, f"{latest}{suffix}")) for folder in model_dirs)
    ):
        return latest
    return latest + 1


def check_quantize(quantize):
    """Raises ``OptionError`` unless ``quantize`` is one of ``QUANTIZE_MODES``."""
    if quantize not in QUANTIZE_MODES:
        raise OptionError(
            "quantize", f"must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}"
        )
    return quantize


def check_image_size(image_size):
    """``(height, width)`` of a fixed-size export from an int or a pair; ``OptionError`` otherwise."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size
    ):
        raise OptionError(
            "image_size",
            "must be a positive int or a (height, width) pair of them. "
            f"Received: image_size={image_size!r}",
        )
    return size


def variant_suffix(extension, quantize="none", image_size=None):
    """What follows the version number for an export variant: ``.int8.onnx``, ``.256x256.tflite``.

    Args:
        extension: str, the format's ending (``".onnx"``).
        quantize: str, ``"none"`` (no mark), ``"fp16"`` or ``"int8"``.
        image_size: None, an int or ``(height, width)`` of a fixed-size export.

    Raises:
        OptionError: for a ``quantize`` or ``image_size`` that no export takes.

    Example:
        >>> variant_suffix(".tflite", "int8", (256, 256))
        '.256x256.int8.tflite'
    """
    check_quantize(quantize)
    marks = []
    if image_size is not None:
        height, width = check_image_size(image_size)
        marks.append(f"{height}x{width}")
    marks += [quantize] if quantize != "none" else []
    return "".join(f".{mark}" for mark in marks) + extension


def version_path(export_dir, model_name, version, suffix=""):
    """``export_dir/model_name/<version><suffix>``, checked to be free.

    Args:
        export_dir: str, the base path (``saved_models``).
        model_name: str, the served name.
        version: int or None, the version; None takes ``next_version``.
        suffix: str, ``""`` for the SavedModel folder, else e.g. ``".onnx"``.

    Returns:
        ``(version, path)``.

    Raises:
        ValueError: if a path on the way is a file, ``version`` is not a positive integer, or the
            path exists (nothing is overwritten).
    """
    check_model_name(model_name)
    model_dir = io.join(export_dir, model_name)
    for path in (export_dir, model_dir):
        if io.exists(path) and not io.isdir(path):
            raise ValueError(f"export path {path} is a file, not a folder")
    if version is None:
        version = default_version(model_dir, suffix)
    if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    target = io.join(model_dir, f"{version}{suffix}")
    if io.exists(target):
        raise ValueError(f"{target} already exists; versions are never overwritten (pass another)")
    return version, target


def publish(write, target, last_file=None, local_writer=False):
    """Writes an export through ``write(tmp)`` and moves it to ``target`` only once it is complete.

    A server polling the base path never sees half a version: the export is written to a hidden
    temporary sibling and then moved into place with ``io.move`` (renamed, or on object stores copied
    with ``last_file`` last). The move is durable: once this returns, the version survives a power cut.

    Args:
        write: callable taking the temporary path to write, a file or a folder name that ends like
            ``target`` (``.onnx``, ...).
        target: str, from ``version_path``.
        last_file: str or None, for folders: the file that marks the folder complete
            (``saved_model.pb``).
        local_writer: bool, ``write`` can only write local files (the ONNX, OpenVINO and LiteRT
            converters): for another filesystem it writes into a local temporary folder first.

    Returns:
        str, ``target``.
    """
    io.makedirs(io.dirname(target))
    ending = os.path.splitext(io.basename(target))[1]
    if local_writer and not io.is_local(target):
        with tempfile.TemporaryDirectory() as folder:
            tmp = os.path.join(folder, f"export{ending}")
            write(tmp)
            io.move(tmp, target, last_file, durable=True)
    else:
        tmp = io.temporary_sibling(target) + ending
        try:
            write(tmp)
            io.move(tmp, target, last_file, durable=True)
        finally:
            io.rmtree(tmp) if io.isdir(tmp) else io.remove(tmp)
    logger.info("Exported %s", target)
    return target


def publish_variant(write, export_dir, model_name, version, suffix, last_file=None):
    """Publishes one exported variant as ``export_dir/model_name/<version><suffix>``.

    Args:
        write: callable taking a local path and writing the file or folder there.
        export_dir: str, the base path (local, ``gs://`` or ``ram://``).
        model_name: str, the served name.
        version: int or None, the version (see ``default_version``).
        suffix: str, what follows the version number (``variant_suffix``).
        last_file: str or None, for a folder: the file written last (see ``publish``).

    Returns:
        str, the file or folder written.
    """
    _, target = version_path(export_dir, model_name, version, suffix)
    return publish(write, target, last_file=last_file, local_writer=True)


def save_model(model, path):
    """Saves a Keras model as a ``.keras`` file so that ``path`` is always a complete file.

    A process killed mid-write leaves at most a stray hidden temporary file; ``path`` is either the
    previous complete file or the new complete file, and the new one is on the disk once this returns
    (see ``cyclegan_tf.io.atomic_output``).

    Args:
        model: a ``keras.Model``.
        path: str, the ``.keras`` file (local, ``gs://`` or ``ram://``).
    """
    with io.atomic_output(path, durable=True) as tmp:
        model.save(tmp)
