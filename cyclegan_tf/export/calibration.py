"""Calibration images for int8 quantization: a few images of the generator's input domain.

Static int8 quantization needs the range of every quantized activation. Each format's tool runs the
float graph on these images, records the ranges (min/max) and fixes the int8 scales from them, so the
images should look like what the model will translate: a handful of training images is enough.
"""

import os

import numpy as np
import tensorflow as tf

from cyclegan_tf import io, model_store
from cyclegan_tf.data.decode import list_image_files, read_image_file
from cyclegan_tf.errors import OptionError


def calibration_batches(images, image_size=None, limit=16, channels=3):
    """Turns calibration images into float32 batches ``[1, height, width, channels]`` in [0, 255].

    Args:
        images: a folder of image files (str), an array ``[n, height, width, channels]`` or a
            sequence of ``[height, width, channels]`` arrays, in [0, 255].
        image_size: None to keep each image's size, or ``(height, width)`` to resize to (for an export
            with a fixed input size).
        limit: int, at most this many images are used (the first in name order for a folder).
        channels: int, the generator's input channels (a folder's files are converted as PIL
            converts them). Defaults to 3.

    Returns:
        A list of float32 numpy arrays ``[1, height, width, channels]``.

    Raises:
        ValueError: if there are no images or one is not ``[height, width, channels]``.
    """
    if images is None:
        raise OptionError(
            "calibration_images",
            "quantize='int8' needs a few images of the generator's input domain (a folder or an "
            "array [n, height, width, 3] in [0, 255])",
        )
    if image_size is not None:
        image_size = model_store.check_image_size(image_size)
    if isinstance(images, (str, os.PathLike)):
        images = _read_folder(os.fspath(images), limit, channels)
    batches = []
    for image in list(images)[:limit]:
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != channels:
            raise ValueError(
                f"calibration images must be [height, width, {channels}]. Received an image of "
                f"shape {image.shape}"
            )
        if image_size is not None and image.shape[:2] != tuple(image_size):
            image = tf.image.resize(image, image_size, antialias=True).numpy()
        batches.append(np.clip(image, 0.0, 255.0)[None])
    if not batches:
        raise OptionError("calibration_images", "holds no images")
    return batches


def _read_folder(folder, limit, channels):
    if not io.isdir(folder):
        raise OptionError("calibration_images", f"no such folder: {folder}")
    return [read_image_file(path, channels) for path in list_image_files(folder)[:limit]]
