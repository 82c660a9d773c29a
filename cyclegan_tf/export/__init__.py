"""Exporting generators for serving and deployment.

``EXPORT_DIR/<model_name>/<version>/`` is a SavedModel in TF Serving's layout (``saved_model``); the other
formats sit beside it: ``<version>.onnx`` (``onnx``), ``<version>.openvino/model.xml`` (``openvino``),
``<version>.tflite`` (``litert``), with ``.fp16``/``.int8`` and a fixed ``.HxW`` size marked before the
ending. Every format is one module with a ``write(generator, path, **options)`` and one record in
``FORMATS`` (an ``ExportFormat``: the on-disk layout of ``model_store.FORMATS`` and the writer),
which gives each format ``export(generator, export_dir, model_name, version=None, **options)`` and
``suffix(**options)`` (what follows the version number in the written name). A run's generators (a
CycleGAN's two, a CUT's one) are exported by ``export_generators`` under the names of
``model_store.names_by_direction``, with one shared version number.

Every format holds the graph of the SavedModel's ``serving_default`` (``pixel_graph``): float32
``[batch, height, width, 3]`` pixels in [0, 255] in, translated pixels in [0, 255] out. The ONNX,
OpenVINO and LiteRT converters are optional: ``pip install 'cyclegan_tf[onnx]'`` (``[openvino]``,
``[litert]``); without one, ``MissingDependencyError`` names the extra.

Example:
    ```python
    from cyclegan_tf import export

    export.export_generator(generator, "saved_models", "apple2orange", format="onnx")
    export.export_generator(
        generator, "saved_models", "apple2orange", format="openvino", quantize="int8",
        calibration_images="data/apple2orange/trainA",
    )
    ```
"""

from cyclegan_tf import io, model_store
from cyclegan_tf.errors import MissingDependencyError
from cyclegan_tf.export import litert, onnx, openvino, saved_model
from cyclegan_tf.export.formats import ExportFormat
from cyclegan_tf.model_store import (
    QUANTIZE_MODES,
    check_model_name,
    existing_versions,
    latest_version_dir,
    model_names,
    next_version,
)

FORMATS = {module.FORMAT.name: module.FORMAT for module in (saved_model, onnx, openvino, litert)}


def export_generator(
    generator, export_dir, model_name, version=None, format="saved_model", **options
):  # noqa: A002
    """Exports one generator in one format.

    Args:
        generator: a ``keras.Model`` mapping images in [-1, 1] to the same shape.
        export_dir: str, the base path.
        model_name: str, the served name.
        version: int or None, the version (default: ``model_store.default_version``: a new one for a
            SavedModel, the latest SavedModel's for the other formats when still free).
        format: str, one of ``FORMATS``. Defaults to ``"saved_model"``.
        **options: format options: ``quantize`` (``"none"``, ``"fp16"``, ``"int8"``), ``image_size``
            and ``calibration_images`` (see each format's ``write``).

    Returns:
        str, the path written.
    """
    return _format(format).export(generator, export_dir, model_name, version, **options)


def _format(name):
    return FORMATS[model_store.stored_format(name).name]


def export_generators(
    generators, export_dir, run_name, version=None, format="saved_model", **options
):  # noqa: A002
    """Exports a run's generators under their served names with one version number.

    Args:
        generators: ``{direction: generator}`` (``"A2B"``, ``"B2A"``), as a model's
            ``translation_generators()`` gives; each is exported as
            ``model_store.names_by_direction(run_name)[direction]``.
        export_dir: str, the base path.
        run_name: str, the run's name (see ``model_names``).
        version: int or None, the version of all of them (see ``export_generator``).
        format: str, one of ``FORMATS``.
        **options: format options; ``calibration_images`` may be a dict by direction (or a pair
            ``(a_images, b_images)``): each generator is calibrated on its own input domain.

    Returns:
        A dict ``{model_name: path}``.

    Raises:
        ValueError: if any path is taken; nothing is written then.
    """
    names = model_store.names_by_direction(run_name)
    names = {direction: names[direction] for direction in generators}
    suffix = _format(format).suffix(**options)
    if version is None:
        folders = [io.join(export_dir, name) for name in names.values()]
        version = model_store.default_version(folders, suffix)
    for name in names.values():
        # Checks every path before writing any, so a clash leaves no half-exported set.
        model_store.version_path(export_dir, name, version, suffix)
    calibration = options.pop("calibration_images", None)
    if isinstance(calibration, (tuple, list)):
        calibration = dict(zip(model_store.DIRECTIONS, calibration))
    elif not isinstance(calibration, dict):
        calibration = {direction: calibration for direction in generators}
    return {
        names[direction]: export_generator(
            generator,
            export_dir,
            names[direction],
            version,
            format,
            calibration_images=calibration.get(direction),
            **options,
        )
        for direction, generator in generators.items()
    }


def export_pair(
    generator_ab, generator_ba, export_dir, run_name, version=None, format="saved_model", **options
):  # noqa: A002
    """Exports both generators of a two-way run (``export_generators`` of ``A2B`` and ``B2A``).

    Args:
        generator_ab: the A→B generator, exported as ``model_names(run_name)[0]``.
        generator_ba: the B→A generator.
        export_dir: str, the base path.
        run_name: str, the run's name (see ``model_names``).
        version: int or None, the version of both (see ``export_generator``).
        format: str, one of ``FORMATS``.
        **options: format options; ``calibration_images`` may be a pair ``(a_images, b_images)``.

    Returns:
        A dict ``{model_name: path}``.
    """
    generators = {"A2B": generator_ab, "B2A": generator_ba}
    return export_generators(generators, export_dir, run_name, version, format, **options)


__all__ = [
    "FORMATS",
    "ExportFormat",
    "QUANTIZE_MODES",
    "MissingDependencyError",
    "check_model_name",
    "existing_versions",
    "export_generator",
    "export_generators",
    "export_pair",
    "latest_version_dir",
    "model_names",
    "next_version",
]
