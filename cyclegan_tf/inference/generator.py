"""Running a generator on pixels: any size in, the same size out, as a compiled graph.

``translate`` and ``translate_pixels`` are plain TensorFlow functions (they run inside exported SavedModel
signatures too); ``CompiledGenerator`` wraps them in one shape-polymorphic ``tf.function`` so that a
Keras generator costs what the exported SavedModel costs, without retracing for each image size.
"""

import tensorflow as tf

from cyclegan_tf.inference.padding import crop_to, pad_to_multiple
from cyclegan_tf.pixels import to_model_range, to_pixel_range

IMAGES_SPEC = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")


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
        self._translate = tf.function(
            lambda images: translate_pixels(generator, images), input_signature=[IMAGES_SPEC]
        )

    def translate_pixels(self, images):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255]; returns float32 pixels in [0, 255]."""
        return self._translate(tf.cast(images, tf.float32))
