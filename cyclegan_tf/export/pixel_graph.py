"""The graph every export format holds: pixels in [0, 255] in, translated pixels in [0, 255] out.

It is the contract of the SavedModel's ``serving_default``: float32 ``[batch, height, width, C]`` in
[0, 255] of any height and width >= 1, reflection-padded in the graph to the generator's multiple of 4,
scaled to [-1, 1], translated, cropped back and clipped to [0, 255]. The padding is plain gathers with
computed indices, which tf2onnx, OpenVINO's TensorFlow frontend and the LiteRT converter all convert.

The exported generator is a copy whose instance normalization is written as moments over height and
width (``SpatialInstanceNormalization``). Keras' ``GroupNormalization`` reshapes to
``[batch, height, width, groups, channels / groups]``; converters cannot move that 5-D reshape to the
runtimes' channels-first layout, so every normalization got layout transposes around it and LiteRT's
XNNPACK delegate left it to the reference kernels. The moments form converts to plain reductions and
elementwise ops, which made the OpenVINO bf16 graph about 10x faster at 256x256 (see docs/formats.md).
"""

import keras
import tensorflow as tf

from cyclegan_tf import _keras_compat, model_store
from cyclegan_tf.inference.generator import channels_of, size_multiple, translate_pixels
from cyclegan_tf.inference.padding import MIN_SIZE

INPUT_NAME = "images"


class SpatialInstanceNormalization(keras.layers.GroupNormalization):
    """``GroupNormalization`` with one group per channel, computed as moments over height and width.

    The same function as the parent for NHWC inputs with ``groups`` equal to the channels; only the
    graph differs (no 5-D reshape). Used for export only, by class substitution in ``export_generator``.
    """

    def call(self, inputs):
        # ``centered / sqrt(variance)`` rather than ``centered * rsqrt(variance)``: OpenVINO 2026.4's CPU
        # plugin computes an int8 convolution followed by the rsqrt form wrongly (mean error 29 of 255
        # against 1.5 for this form, f32 and bf16 hints), and the two are equally fast.
        centered = inputs - tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        variance = tf.reduce_mean(centered * centered, axis=[1, 2], keepdims=True)
        outputs = centered / tf.sqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * self.gamma
        if self.beta is not None:
            outputs = outputs + self.beta
        return outputs


def _is_instance_norm(layer):
    if type(layer) is not keras.layers.GroupNormalization or not layer.built:
        return False
    channels = layer.input_spec.axes[layer.axis]
    return layer.groups == channels and layer.axis in (-1, 3) and layer.input_spec.ndim == 4


def export_generator(generator):
    """A copy of ``generator`` with the same weights whose instance norms are ``SpatialInstanceNormalization``.

    Args:
        generator: a built ``keras.Model`` (e.g. from ``resnet_generator``).

    Returns:
        A new ``keras.Model`` computing the same function; ``generator`` is left unchanged.
    """
    twin = keras.models.clone_model(generator)
    twin.set_weights(generator.get_weights())
    _keras_compat.replace_layer_class(twin, _is_instance_norm, SpatialInstanceNormalization)
    return twin


class PixelTranslator(keras.Model):
    """Wraps a generator so that it maps pixels in [0, 255] to pixels in [0, 255], any size.

    Args:
        generator: a generator ``keras.Model`` (images in [-1, 1], sides multiples of ``multiple``).
        multiple: int, the generator's size multiple (``size_multiple``). Defaults to 4.
        **kwargs: Base model keyword arguments.
    """

    def __init__(self, generator, multiple=4, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.multiple = int(multiple)

    def call(self, images):
        return translate_pixels(self.generator, images, self.multiple)


def pixel_model(generator):
    """The model every format exports: ``PixelTranslator(export_generator(generator))``, built."""
    model = PixelTranslator(
        export_generator(generator), size_multiple(generator), name=f"{generator.name}_pixels"
    )
    model(tf.zeros([1, MIN_SIZE, MIN_SIZE, channels_of(generator)[0]]))
    return model


def input_channels(generator):
    """int, the channels of ``generator``'s input images (``channels_of``)."""
    return channels_of(generator)[0]


def generator_signature(generator, image_size=None):
    """``input_signature`` of ``generator``'s pixels: its input channels, any batch."""
    return input_signature(image_size, channels=input_channels(generator))


def input_signature(image_size=None, batch_size=None, channels=3):
    """The exported input: ``[batch, height, width, channels]`` float32, sizes None unless fixed.

    Args:
        image_size: None (any size) or ``(height, width)`` (an int for a square).
        batch_size: None (any batch) or an int.
        channels: int, the generator's input channels (``channels_of``). Defaults to 3.

    Returns:
        A one-element list of ``tf.TensorSpec`` named ``images``.
    """
    height, width = None, None
    if image_size is not None:
        height, width = model_store.check_image_size(image_size)
    shape = [batch_size, height, width, int(channels)]
    return [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
