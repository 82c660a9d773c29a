"""Exporting generators as TF SavedModels in TF Serving's layout.

``EXPORT_DIR/<model_name>/<version>/`` with integer versions that only grow, each written to a hidden
temporary sibling and renamed into place, so a server polling the base path never sees half a version.

Each SavedModel has two signatures and needs no code of this package to run:

* ``serving_default``: ``images`` float32 ``[batch, height, width, 3]`` in [0, 255] → ``images``, same
  shape, in [0, 255]. Any height and width >= 1 (reflection-padded to the generator's multiple of 4, run,
  cropped back).
* ``translate_bytes``: ``image_bytes`` string ``[batch]`` (JPEG, PNG, BMP or GIF, each its own size) →
  ``image_bytes`` string ``[batch]`` of PNGs. TF Serving's REST API base64-encodes tensors whose name ends
  in ``_bytes`` (``{"b64": ...}``).
"""

import logging
import os
import re
import shutil
import time

import keras
import tensorflow as tf

from cyclegan_tf import inference

logger = logging.getLogger(__name__)

_DIRECTION_NAME = re.compile(r"^([A-Za-z][A-Za-z_-]*)2([A-Za-z][A-Za-z_-]*)$")


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


def existing_versions(model_dir):
    """Sorted integer versions present in ``model_dir`` (empty if it does not exist)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def latest_version_dir(model_dir):
    """The highest version folder of a model base folder, or None."""
    versions = existing_versions(model_dir)
    return os.path.join(model_dir, str(versions[-1])) if versions else None


def _serving_fn(generator):
    def serving_default(images):
        return {"images": inference.translate_pixels(generator, images)}

    return serving_default


def _bytes_fn(generator):
    def translate_one(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        translated = inference.translate_pixels(generator, image[None])[0]
        return tf.io.encode_png(tf.cast(tf.round(translated), tf.uint8))

    def translate_bytes(image_bytes):
        encoded = tf.map_fn(translate_one, image_bytes, fn_output_signature=tf.string)
        return {"image_bytes": encoded}

    return translate_bytes


def build_archive(generator):
    """A ``keras.export.ExportArchive`` of one generator with both signatures."""
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint(
        "serving_default",
        _serving_fn(generator),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
    )
    archive.add_endpoint(
        "translate_bytes",
        _bytes_fn(generator),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    return archive


def export_generator(generator, export_dir, model_name, version=None):
    """Writes ``generator`` as ``export_dir/model_name/<version>/``.

    Args:
        generator: a ``keras.Model`` mapping ``[batch, H, W, 3]`` images in [-1, 1] to the same shape.
        export_dir: str, the base path (e.g. ``saved_models``).
        model_name: str, the served model name.
        version: int or None, the version; default one above the highest present (1 for a new model).

    Returns:
        str, the version folder written.

    Raises:
        ValueError: if ``export_dir`` or the model folder is a file, or ``version`` already exists or is
            not a positive integer. Nothing is overwritten.
    """
    model_dir = os.path.join(export_dir, model_name)
    for path in (export_dir, model_dir):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"export path {path} is a file, not a folder")
    versions = existing_versions(model_dir)
    if version is None:
        version = versions[-1] + 1 if versions else 1
    if not isinstance(version, int) or version <= 0:
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise ValueError(f"{target} already exists; versions are never overwritten (pass another)")
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        build_archive(generator).write_out(tmp, verbose=False)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Exported %s", target)
    return target


def export_pair(generator_ab, generator_ba, export_dir, run_name, version=None):
    """Exports both generators of a run under their served names (see ``model_names``).

    Returns:
        A dict ``{model_name: version_folder}``.
    """
    name_ab, name_ba = model_names(run_name)
    if version is not None:
        for name in (name_ab, name_ba):
            if os.path.exists(os.path.join(export_dir, name, str(version))):
                raise ValueError(
                    f"{os.path.join(export_dir, name, str(version))} already exists; versions are "
                    "never overwritten (pass another)"
                )
    return {
        name_ab: export_generator(generator_ab, export_dir, name_ab, version),
        name_ba: export_generator(generator_ba, export_dir, name_ba, version),
    }
