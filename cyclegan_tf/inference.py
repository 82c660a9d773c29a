"""Translating images of any size with a generator that needs multiples of 4.

Pure TensorFlow, so the same functions run eagerly (``scripts/translate.py``) and inside the exported
SavedModel signatures.
"""

import tensorflow as tf

SIZE_MULTIPLE = 4  # two stride-2 downsamplings
# The bottleneck is reflection-padded by 1, which needs at least 2 pixels there: 8 at the input.
MIN_SIZE = 8


def to_model_range(images):
    """Maps pixel values in [0, 255] (any numeric dtype) to float32 in [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_pixel_range(images):
    """Maps float images in [-1, 1] to float32 pixel values in [0, 255], clipped."""
    return tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5, 0.0, 255.0)


def _padded_indices(size, before, after):
    """Source indices for reflection padding; edge replication where the image is too small to reflect.

    Reflection of index ``i`` about the borders is ``-i`` below 0 and ``2 * (size - 1) - i`` above
    ``size - 1``. An image narrower than the padding would reflect out of range again; those indices
    are clipped, which replicates the edge (and gives a constant image for a 1-pixel side).
    """
    index = tf.range(-before, size + after)
    index = tf.abs(index)
    index = tf.where(index > size - 1, 2 * (size - 1) - index, index)
    return tf.clip_by_value(index, 0, tf.maximum(size - 1, 0))


def pad_to_multiple(images, multiple=SIZE_MULTIPLE, min_size=MIN_SIZE):
    """Pads ``[batch, H, W, C]`` images by reflection to multiples of ``multiple``, at least ``min_size``.

    Args:
        images: tensor ``[batch, H, W, C]`` with ``H, W >= 1``.
        multiple: int, the size multiple. Defaults to 4.
        min_size: int, the smallest padded height and width. Defaults to 8.

    Returns:
        ``(padded, crop)`` where ``crop = (top, left, height, width)`` undoes the padding with
        ``crop_to(outputs, crop)``.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    pad_h = tf.maximum((multiple - height % multiple) % multiple, min_size - height)
    pad_w = tf.maximum((multiple - width % multiple) % multiple, min_size - width)
    top, left = pad_h // 2, pad_w // 2
    padded = tf.gather(images, _padded_indices(height, top, pad_h - top), axis=1)
    padded = tf.gather(padded, _padded_indices(width, left, pad_w - left), axis=2)
    return padded, (top, left, height, width)


def crop_to(images, crop):
    """Crops ``[batch, H, W, C]`` images back to the region given by ``pad_to_multiple``."""
    top, left, height, width = crop
    return images[:, top : top + height, left : left + width, :]


def translate(generator, images):
    """Runs a generator on images of any size, in [-1, 1], and returns outputs of the same size.

    Args:
        generator: a ``keras.Model`` (or callable) taking ``[batch, H, W, 3]`` with H and W multiples of 4.
        images: float tensor ``[batch, H, W, 3]`` in [-1, 1].

    Returns:
        A float32 tensor of the same shape, in [-1, 1].
    """
    padded, crop = pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
    outputs = generator(padded, training=False)
    return crop_to(tf.cast(outputs, tf.float32), crop)


def translate_pixels(generator, images):
    """Like ``translate`` but for pixel values in [0, 255]; returns float32 pixels in [0, 255]."""
    return to_pixel_range(translate(generator, to_model_range(images)))
