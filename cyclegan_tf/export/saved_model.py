"""TF SavedModels in TF Serving's layout: what ``tensorflow/serving`` runs without this package.

Each SavedModel has two signatures:

* ``serving_default``: ``images`` float32 ``[batch, height, width, C]`` in [0, 255] → ``images``, the
  same size, in [0, 255]. Any height and width >= 1 (reflection-padded to the generator's multiple of
  4, run, cropped back). ``C`` is the generator's input channels (3 for RGB, 1 grayscale, 4 RGBA), the
  output has its output channels.
* ``translate_bytes``: ``image_bytes`` string ``[batch]`` (JPEG, PNG, BMP, GIF or WebP, each its own
  size; a JPEG turned as its EXIF orientation says; converted to the generator's channels as PIL
  converts) → ``image_bytes`` string ``[batch]`` of PNGs (grayscale, RGB or RGBA). TF Serving's REST
  API base64-encodes tensors whose name ends in ``_bytes`` (``{"b64": ...}``).

Both refuse images of more than ``max_pixels`` pixels (default ``MAX_PIXELS``, 4096 x 4096) with an
``InvalidArgument`` error that says how to translate them: a signature runs the generator on the whole
image, whose memory grows with the pixels (about 14 GB at the limit for the default generator). Larger
images go through ``cyclegan-translate`` or ``cyclegan-serve``, which translate them in tiles, in
bounded memory, from this same SavedModel.
"""

import json

import keras
import tensorflow as tf

from cyclegan_tf import _deprecated, model_store
from cyclegan_tf.data.decode import decode_image
from cyclegan_tf.export.formats import ExportFormat
from cyclegan_tf.inference.generator import channels_of, images_spec, translate_pixels
from cyclegan_tf.inference.saved_model_generator import CONFIG_COLLECTION
from cyclegan_tf.models.generators import as_resnet_generator
from cyclegan_tf.models.unet import UnetGenerator

MAX_PIXELS = 4096 * 4096


def _check_pixels(images, max_pixels):
    """``images`` once its height x width is at most ``max_pixels``; else an InvalidArgument error."""
    shape = tf.shape(images, out_type=tf.int64)
    height, width = shape[-3], shape[-2]
    check = tf.debugging.assert_less_equal(
        height * width,
        tf.constant(max_pixels, tf.int64),
        message=(
            f"image too large: this SavedModel translates images of at most {max_pixels} pixels "
            "whole (its memory grows with the pixels); translate larger ones in tiles, in bounded "
            "memory, with `cyclegan-translate --model <this SavedModel> --input ...` or "
            "`cyclegan-serve`. Received height x width"
        ),
        summarize=2,
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _serving_fn(generator, max_pixels):
    def serving_default(images):
        return {"images": translate_pixels(generator, _check_pixels(images, max_pixels))}

    return serving_default


def _bytes_fn(generator, max_pixels):
    channels = channels_of(generator)[0]

    def translate_one(image_bytes):
        image = _check_pixels(decode_image(image_bytes, channels), max_pixels)
        translated = translate_pixels(generator, image[None])[0]
        return tf.io.encode_png(tf.cast(tf.round(translated), tf.uint8))

    def translate_bytes(image_bytes):
        encoded = tf.map_fn(translate_one, image_bytes, fn_output_signature=tf.string)
        return {"image_bytes": encoded}

    return translate_bytes


def build_archive(generator, max_pixels=MAX_PIXELS):
    """A ``keras.export.ExportArchive`` of one generator with both signatures.

    A ResNet or U-Net generator's config is recorded as the variable collection
    ``generator_config`` (one string), so that ``inference`` can rebuild the generator: a ResNet
    translates large images tiled, a U-Net within the memory budget.

    Args:
        generator: a ``keras.Model`` on images in [-1, 1].
        max_pixels: int, the largest height x width the signatures accept.
    """
    archive = keras.export.ExportArchive()
    archive.track(generator)
    try:
        config = as_resnet_generator(generator).get_config()
    except ValueError:
        # A U-Net records its config too (its memory model); any other architecture's signatures
        # still serve it whole.
        config = generator.get_config() if isinstance(generator, UnetGenerator) else None
    if config is not None:
        recorded = tf.Variable(json.dumps(config), trainable=False, name=CONFIG_COLLECTION)
        archive.add_variable_collection(CONFIG_COLLECTION, [recorded])
    archive.add_endpoint(
        "serving_default",
        _serving_fn(generator, max_pixels),
        input_signature=[images_spec(channels_of(generator)[0])],
    )
    archive.add_endpoint(
        "translate_bytes",
        _bytes_fn(generator, max_pixels),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    return archive


def write(generator, path, max_pixels=MAX_PIXELS, **unused_options):
    """Writes ``generator`` as a SavedModel folder at ``path``, with both signatures.

    Args:
        generator: a ``keras.Model`` mapping ``[batch, H, W, C]`` images in [-1, 1] to the same size.
        path: str, the folder to write (local, ``gs://`` or ``ram://``).
        max_pixels: int, the largest height x width the signatures accept (``MAX_PIXELS``).
        **unused_options: options of other formats (``calibration_images`` is ignored).
    """
    build_archive(generator, max_pixels).write_out(path, verbose=False)


FORMAT = ExportFormat(
    model_store.FORMATS["saved_model"],
    write,
    variants=False,
    local_writer=False,
    title="SavedModel",
)


def export(generator, export_dir, model_name, version=None, max_pixels=MAX_PIXELS, **options):
    """Writes ``generator`` as ``export_dir/model_name/<version>/``.

    Args:
        generator: a ``keras.Model`` mapping ``[batch, H, W, C]`` images in [-1, 1] to the same size.
        export_dir: str, the base path (e.g. ``saved_models``; local, ``gs://`` or ``ram://``).
        model_name: str, the served model name.
        version: int or None, the version; default one above the highest present (1 for a new model).
        max_pixels: int, the largest height x width the signatures accept (``MAX_PIXELS``).
        **options: options of other formats; ``quantize`` must be ``"none"`` and ``image_size``
            None (the SavedModel is float32 and takes any size), ``calibration_images`` is ignored.

    Returns:
        str, the version folder written.

    Raises:
        ValueError: if ``export_dir`` or the model folder is a file, or ``version`` already exists or is
            not a positive integer. Nothing is overwritten.
    """
    return FORMAT.export(
        generator, export_dir, model_name, version, max_pixels=max_pixels, **options
    )


def __getattr__(name):
    return _deprecated.format_function(__name__, FORMAT, name)
