"""Image decoding shared by the training pipeline and the translate command.

One decoder, ``decode_image``, serves eager code and ``tf.data`` graphs alike, so a file that
validates at load time decodes the same way inside the pipeline.
"""

import os
import re

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class DataError(ValueError):
    """Bad data input (a missing folder, no readable image, a failed download).

    The message is one line meant for the user; the command-line tools print it as
    ``error: <message>`` and exit with status 2.
    """


def decode_image(contents):
    """Decodes JPEG, PNG, BMP or GIF bytes to an RGB ``uint8`` image.

    Grayscale images are repeated over three channels, alpha is dropped, 16-bit PNGs are scaled
    to 8 bits (65535 → 255) and only the first frame of an animated GIF is kept. Works eagerly
    and inside ``tf.data.Dataset.map``.

    Args:
        contents: scalar ``tf.string`` tensor (or ``bytes``), the encoded file.

    Returns:
        ``tf.uint8`` tensor of shape ``[H, W, 3]`` (static shape ``[None, None, 3]``).

    Raises:
        tf.errors.InvalidArgumentError: if the bytes are not a supported, complete image.
    """
    contents = tf.convert_to_tensor(contents, dtype=tf.string)
    # ``dtype=uint8`` makes 16-bit PNGs go through ``convert_image_dtype`` (a scale, not a cast).
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def read_image_file(path):
    """Reads and decodes one image file eagerly.

    Args:
        path: str, the file.

    Returns:
        ``np.ndarray`` of dtype ``uint8`` and shape ``[H, W, 3]``.

    Raises:
        OSError: if the file cannot be read.
        DataError: if it is not a supported, complete image.
    """
    with open(path, "rb") as f:
        contents = f.read()
    try:
        return decode_image(contents).numpy()
    except tf.errors.InvalidArgumentError as error:
        raise DataError(f"cannot decode image {path}: {_op_error_reason(error)}") from None


def _op_error_reason(error):
    """The human part of a TensorFlow op error ("Invalid PNG data, size 40")."""
    message = error.message.splitlines()[0] if error.message else ""
    message = re.sub(r"^\{\{[^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:.*$", "", message)
    return message or "not a supported image"


def is_image_file(name):
    """Whether a file name has one of ``IMAGE_EXTENSIONS`` (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_image_files(folder):
    """The image files directly inside a folder, sorted by name.

    Args:
        folder: str, the folder (not searched recursively).

    Returns:
        A sorted list of paths (``folder`` joined with each file name) whose extension is one of
        ``IMAGE_EXTENSIONS``, case-insensitive.
    """
    names = sorted(
        name
        for name in os.listdir(folder)
        if is_image_file(name) and os.path.isfile(os.path.join(folder, name))
    )
    return [os.path.join(folder, name) for name in names]


def image_to_uint8(image):
    """Converts an image in [-1, 1] (the networks' range) to ``uint8`` [0, 255].

    Args:
        image: array-like of floats in [-1, 1], any shape.

    Returns:
        ``np.ndarray`` of dtype ``uint8``, rounded and clipped.
    """
    image = (np.asarray(image, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
