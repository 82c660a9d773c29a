"""Running a generator on pixels: any size in, the same size out, as a compiled graph.

``translate`` and ``translate_pixels`` are plain TensorFlow functions (they run inside exported SavedModel
signatures too); ``CompiledGenerator`` wraps them in one shape-polymorphic ``tf.function`` so that a
Keras generator costs what the exported SavedModel costs, without retracing for each image size.
"""

import tensorflow as tf

from cyclegan_tf.inference.padding import crop_to, pad_to_multiple
from cyclegan_tf.pixels import SIZE_MULTIPLE, to_model_range, to_pixel_range

IMAGES_SPEC = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")


def images_spec(channels=3):
    """The ``images`` input ``[batch, height, width, channels]`` float32 of any size."""
    return tf.TensorSpec([None, None, None, int(channels)], tf.float32, name="images")


def size_multiple(generator):
    """int, what a generator's input sides must be multiples of: 4, or a U-Net's ``2 ** num_downs``."""
    return int(getattr(generator, "size_multiple", SIZE_MULTIPLE))


def channels_of(generator):
    """``(channels in, channels out)`` of a generator: from its input and output shapes.

    A callable without shapes (not a Keras model) is taken to map RGB to RGB.
    """
    try:
        return int(generator.inputs[0].shape[-1]), int(generator.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        return 3, 3


def translate(generator, images, multiple=None):
    """Runs a generator on images of any size, in [-1, 1], and returns outputs of the same size.

    The images are padded by reflection to the generator's size multiple (``size_multiple``) and
    the outputs cropped back.

    Args:
        generator: a ``keras.Model`` (or callable) taking ``[batch, H, W, C]`` with H and W multiples
            of 4.
        images: float tensor ``[batch, H, W, C]`` in [-1, 1].
        multiple: int or None, the size multiple; None: ``size_multiple(generator)``.

    Returns:
        A float32 tensor ``[batch, H, W, C']`` in [-1, 1], ``C'`` the generator's output channels.
    """
    multiple = size_multiple(generator) if multiple is None else multiple
    padded, crop = pad_to_multiple(tf.convert_to_tensor(images, tf.float32), multiple)
    outputs = generator(padded, training=False)
    return crop_to(tf.cast(outputs, tf.float32), crop)


def translate_pixels(generator, images, multiple=None):
    """Like ``translate`` but for pixel values in [0, 255]; returns float32 pixels in [0, 255]."""
    return to_pixel_range(translate(generator, to_model_range(images), multiple))


class CompiledGenerator:
    """A Keras generator compiled once for every image size, on pixels in [0, 255].

    Args:
        generator: a ``keras.Model`` on images in [-1, 1] (e.g. ``RUN/models/netG_A2B.keras``).

    Example:
        >>> compiled = CompiledGenerator(resnet_generator(ngf=8, n_res_blocks=1))
        >>> compiled.translate_pixels(np.zeros((1, 30, 41, 3), np.float32)).shape
        TensorShape([1, 30, 41, 3])
    """

    def __init__(self, generator):
        self.generator = generator
        self.channels, self.output_channels = channels_of(generator)
        self._translate = tf.function(
            lambda images: translate_pixels(generator, images),
            input_signature=[images_spec(self.channels)],
        )

    def translate_pixels(self, images):
        """Translates ``[batch, H, W, C]`` pixels in [0, 255]; returns float32 pixels in [0, 255]."""
        return self._translate(tf.cast(images, tf.float32))
