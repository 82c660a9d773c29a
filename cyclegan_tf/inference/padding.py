"""Images of any size for a generator that needs multiples of 4: reflection padding and cropping back.

Pure TensorFlow, so the same functions run eagerly, in ``tf.function`` and inside exported SavedModels.
"""

import tensorflow as tf

from cyclegan_tf.pixels import SIZE_MULTIPLE

# The bottleneck is reflection-padded by 1, which needs at least 2 pixels there: 8 at the input.
MIN_SIZE = 8


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


def padding_amounts(height, width, multiple=SIZE_MULTIPLE, min_size=MIN_SIZE):
    """``(top, bottom, left, right)`` padding that makes ``height`` x ``width`` fit the generator."""
    pad_h = tf.maximum((multiple - height % multiple) % multiple, min_size - height)
    pad_w = tf.maximum((multiple - width % multiple) % multiple, min_size - width)
    return pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2


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
    top, bottom, left, right = padding_amounts(height, width, multiple, min_size)
    padded = tf.gather(images, _padded_indices(height, top, bottom), axis=1)
    padded = tf.gather(padded, _padded_indices(width, left, right), axis=2)
    return padded, (top, left, height, width)


def crop_to(images, crop):
    """Crops ``[batch, H, W, C]`` images back to the region given by ``pad_to_multiple``."""
    top, left, height, width = crop
    return images[:, top : top + height, left : left + width, :]
