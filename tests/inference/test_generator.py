import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf import inference, pixels
from cyclegan_tf.models import resnet_generator


@pytest.mark.parametrize("height,width", [(5, 6), (8, 8), (37, 53), (1, 1), (2, 3)])
def test_pad_to_multiple_then_crop_is_identity(height, width):
    x = np.random.default_rng(0).normal(size=(2, height, width, 3)).astype("float32")
    padded, crop = inference.pad_to_multiple(tf.constant(x))
    assert padded.shape[1] % 4 == 0 and padded.shape[2] % 4 == 0
    assert padded.shape[1] >= 8 and padded.shape[2] >= 8
    np.testing.assert_array_equal(inference.crop_to(padded, crop), x)


def test_padding_reflects_like_numpy_where_possible():
    x = np.arange(5 * 6, dtype="float32").reshape(1, 5, 6, 1)
    padded, _ = inference.pad_to_multiple(tf.constant(x), min_size=1)
    expected = np.pad(x, ((0, 0), (1, 2), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(padded, expected)


def test_translate_keeps_any_size_and_range():
    generator = resnet_generator(ngf=4, n_res_blocks=1)
    for shape in [(1, 37, 53, 3), (1, 1, 1, 3), (2, 20, 9, 3)]:
        pixels = np.random.default_rng(1).integers(0, 256, shape).astype("float32")
        outputs = inference.translate_pixels(generator, pixels).numpy()
        assert outputs.shape == shape
        assert outputs.min() >= 0 and outputs.max() <= 255


def test_pixel_range_round_trip():
    values = np.array([0.0, 127.5, 255.0])
    np.testing.assert_allclose(pixels.to_model_range(values), [-1, 0, 1])
    np.testing.assert_allclose(pixels.to_pixel_range(pixels.to_model_range(values)), values)
