"""Exporting generators for serving and deployment.

``EXPORT_DIR/<model_name>/<version>/`` is a SavedModel in TF Serving's layout (``saved_model``); every
format is one module listed in ``FORMATS`` with ``export(generator, export_dir, model_name, version=None,
**options)`` and ``suffix(**options)`` (what follows the version number in the written name). A run's two generators are exported under the names of
``versions.model_names`` with one shared version number.
"""

from cyclegan_tf import io
from cyclegan_tf.export import saved_model, versions
from cyclegan_tf.export.versions import (
    check_model_name,
    existing_versions,
    latest_version_dir,
    model_names,
    next_version,
)

FORMATS = {"saved_model": saved_model}


def export_generator(
    generator, export_dir, model_name, version=None, format="saved_model", **options
):  # noqa: A002
    """Exports one generator in one format.

    Args:
        generator: a ``keras.Model`` mapping images in [-1, 1] to the same shape.
        export_dir: str, the base path.
        model_name: str, the served name.
        version: int or None, the version (default: one above the highest of any format).
        format: str, one of ``FORMATS``. Defaults to ``"saved_model"``.
        **options: format options (see each format's module).

    Returns:
        str, the path written.
    """
    return _format(format).export(generator, export_dir, model_name, version, **options)


def _format(name):
    if name not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}. Received: format={name!r}")
    return FORMATS[name]


def export_pair(
    generator_ab, generator_ba, export_dir, run_name, version=None, format="saved_model", **options
):  # noqa: A002
    """Exports both generators of a run under their served names with one version number.

    Returns:
        A dict ``{model_name: path}``.

    Raises:
        ValueError: if either path is taken; nothing is written then.
    """
    names = model_names(run_name)
    if version is None:
        version = max(next_version(io.join(export_dir, name)) for name in names)
    suffix = _format(format).suffix(**options)
    for name in names:
        # Checks both before writing either, so a clash leaves no half-exported pair.
        versions.version_path(export_dir, name, version, suffix)
    return {
        name: export_generator(generator, export_dir, name, version, format, **options)
        for name, generator in zip(names, (generator_ab, generator_ba))
    }


__all__ = [
    "FORMATS",
    "check_model_name",
    "existing_versions",
    "export_generator",
    "export_pair",
    "latest_version_dir",
    "model_names",
    "next_version",
]
