"""Pixel ranges and sizes: the networks see [-1, 1], files and servers [0, 255].

The generators downsample ``GENERATOR_DOWNSAMPLINGS`` times by 2, so their inputs must be multiples
of ``SIZE_MULTIPLE`` on each side.

Bottom layer: imports only ``errors`` and ``lazy``.
"""

import numpy as np

from cyclegan_tf.errors import OptionError
from cyclegan_tf.lazy import LazyModule

# Imported on first use: the commands read this module before TensorFlow loads (--help).
tf = LazyModule("tensorflow")

# The channels an image may have: grayscale, RGB, RGBA (PIL's "L", "RGB", "RGBA").
CHANNELS = (1, 3, 4)

# The reference ResNet generator's stride-2 convolutions (and as many transposed ones).
GENERATOR_DOWNSAMPLINGS = 2
SIZE_MULTIPLE = 2**GENERATOR_DOWNSAMPLINGS


def to_model_range(images):
    """Maps pixel values in [0, 255] (any numeric dtype) to float32 in [-1, 1].

    The reference's ``Normalize((0.5,) * 3, (0.5,) * 3)`` after ``ToTensor``; works on tensors, in graphs
    and in ``tf.data``.
    """
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_pixel_range(images):
    """Maps float images in [-1, 1] to float32 pixel values in [0, 255], clipped."""
    return tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5, 0.0, 255.0)


def to_uint8(images):
    """Converts images in [-1, 1] (arrays or tensors) to a ``uint8`` NumPy array, rounded and clipped."""
    pixels = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def to_rgb(image):
    """An image array ``[..., C]`` (C 1, 3 or 4) as RGB to show: gray repeated, alpha dropped."""
    image = np.asarray(image)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def check_size_multiple(name, value, minimum=SIZE_MULTIPLE):
    """Raises ``OptionError`` for ``name`` unless ``value`` is an int >= ``minimum``, a multiple of 4.

    The one check of an image side that the generators take (``image_size`` of training, of the
    benchmark, of the data pipeline and of ``CycleGAN``).

    Args:
        name: str, the argument's name, used in the message.
        value: the value to check.
        minimum: int, the smallest value accepted. Defaults to 4.

    Example:
        >>> check_size_multiple("image_size", 30)
        Traceback (most recent call last):
        ...
        cyclegan_tf.errors.OptionError: image_size: must be a multiple of 4 and at least 4 (the generators downsample twice). Received: image_size=30
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or value % SIZE_MULTIPLE
    ):
        raise OptionError(
            name,
            f"must be a multiple of {SIZE_MULTIPLE} and at least {minimum} (the generators "
            f"downsample twice). Received: {name}={value!r}",
        )
