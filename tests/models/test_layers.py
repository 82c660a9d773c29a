import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.models import layers


def test_reflection_padding_matches_numpy():
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    padded = layers.ReflectionPadding2D(2)(x)
    expected = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(padded, expected)


def test_reflection_padding_config_round_trip():
    layer = layers.ReflectionPadding2D(3, name="pad")
    clone = layers.ReflectionPadding2D.from_config(layer.get_config())
    assert clone.padding == 3 and clone.name == "pad"
    with pytest.raises(ValueError, match="padding=-1"):
        layers.ReflectionPadding2D(-1)


def test_strided_conv_pads_like_pytorch():
    # A 3x3 stride-2 convolution with padding 1 on both sides: output pixel (0, 0) is centred on
    # input pixel (0, 0). Keras' "same" would centre it on (1, 1).
    x = np.zeros((1, 8, 8, 1), "float32")
    x[0, 0, 0, 0] = 1.0
    block = layers.conv(1, 3, strides=2, torch_padding=1)
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[1, 1] = 1.0  # picks the centre tap
    conv = [layer for layer in _layers_of(block, x) if isinstance(layer, keras.layers.Conv2D)][0]
    conv.set_weights([kernel, np.zeros(1, "float32")])
    y = block(x)
    assert y.shape == (1, 4, 4, 1)
    assert y[0, 0, 0, 0] == 1.0 and float(tf.reduce_sum(y)) == 1.0


def test_transposed_conv_matches_pytorch_arithmetic():
    # PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1): out[o] sums in[i] * w[k]
    # over o = 2 * i - 1 + k. Computed here directly in numpy for a 1-D signal along height.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 1, 1)).astype("float32")
    weights = rng.normal(size=(3,)).astype("float32")
    expected = np.zeros(8, "float32")
    for i in range(4):
        for k in range(3):
            o = 2 * i - 1 + k
            if 0 <= o < 8:
                expected[o] += x[0, i, 0, 0] * weights[k]
    inputs = keras.Input((4, 1, 1))
    model = keras.Model(inputs, layers.torch_transpose_crop()(layers.conv_transpose2d(1)(inputs)))
    transposed = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)
    ]
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[:, 1, 0, 0] = weights
    transposed[0].set_weights([kernel, np.zeros(1, "float32")])
    y = model(x).numpy()
    assert y.shape == (1, 8, 2, 1)
    np.testing.assert_allclose(y[0, :, 0, 0], expected, atol=1e-6)


def test_instance_norm_matches_manual_computation():
    x = np.random.default_rng(2).normal(3, 2, size=(2, 6, 5, 4)).astype("float32")
    y = layers.instance_norm()(x).numpy()
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-4)


def _layers_of(block, x):
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, block(inputs))
    return model.layers
