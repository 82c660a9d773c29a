"""TF SavedModels in TF Serving's layout: what ``tensorflow/serving`` runs without this package.

Each SavedModel has two signatures:

* ``serving_default``: ``images`` float32 ``[batch, height, width, 3]`` in [0, 255] → ``images``, same
  shape, in [0, 255]. Any height and width >= 1 (reflection-padded to the generator's multiple of 4, run,
  cropped back).
* ``translate_bytes``: ``image_bytes`` string ``[batch]`` (JPEG, PNG, BMP or GIF, each its own size) →
  ``image_bytes`` string ``[batch]`` of PNGs. TF Serving's REST API base64-encodes tensors whose name ends
  in ``_bytes`` (``{"b64": ...}``).
"""

import keras
import tensorflow as tf

from cyclegan_tf.errors import OptionError
from cyclegan_tf.export import versions
from cyclegan_tf.inference.generator import IMAGES_SPEC, translate_pixels


def _serving_fn(generator):
    def serving_default(images):
        return {"images": translate_pixels(generator, images)}

    return serving_default


def _bytes_fn(generator):
    def translate_one(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        translated = translate_pixels(generator, image[None])[0]
        return tf.io.encode_png(tf.cast(tf.round(translated), tf.uint8))

    def translate_bytes(image_bytes):
        encoded = tf.map_fn(translate_one, image_bytes, fn_output_signature=tf.string)
        return {"image_bytes": encoded}

    return translate_bytes


def build_archive(generator):
    """A ``keras.export.ExportArchive`` of one generator with both signatures."""
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", _serving_fn(generator), input_signature=[IMAGES_SPEC])
    archive.add_endpoint(
        "translate_bytes",
        _bytes_fn(generator),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    return archive


def suffix(quantize="none", image_size=None, **unused_options):
    """A SavedModel is the numeric version folder itself: no suffix.

    Raises:
        OptionError: for a ``quantize`` other than ``"none"`` or an ``image_size``: the SavedModel is
            float32 and takes any size (the other formats offer both).
    """
    if quantize != "none":
        raise OptionError(
            "quantize",
            f"the SavedModel is float32 only (try format='openvino'). Received: {quantize!r}",
        )
    if image_size is not None:
        raise OptionError("image_size", "the SavedModel takes any image size; only litert fixes it")
    return ""


def export(generator, export_dir, model_name, version=None, **unused_options):
    """Writes ``generator`` as ``export_dir/model_name/<version>/``.

    Args:
        generator: a ``keras.Model`` mapping ``[batch, H, W, 3]`` images in [-1, 1] to the same shape.
        export_dir: str, the base path (e.g. ``saved_models``; local, ``gs://`` or ``ram://``).
        model_name: str, the served model name.
        version: int or None, the version; default one above the highest present (1 for a new model).
        **unused_options: options of other formats; ``quantize`` must be ``"none"`` and
            ``image_size`` None (see ``suffix``), ``calibration_images`` is ignored.

    Returns:
        str, the version folder written.

    Raises:
        ValueError: if ``export_dir`` or the model folder is a file, or ``version`` already exists or is
            not a positive integer. Nothing is overwritten.
    """
    version, target = versions.version_path(
        export_dir, model_name, version, suffix(**unused_options)
    )

    def write(path):
        build_archive(generator).write_out(path, verbose=False)

    return versions.publish(write, target, last_file=versions.SAVED_MODEL_FILE)
