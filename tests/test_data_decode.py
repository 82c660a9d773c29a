import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.data import decode


def _assert_close(actual, expected, tolerance):
    assert actual.dtype == np.uint8
    assert actual.shape == expected.shape
    error = np.abs(actual.astype(int) - expected.astype(int))
    assert error.max() <= tolerance, f"max error {error.max()} > {tolerance}"


@pytest.mark.parametrize(
    "name",
    ["rgb.png", "gray.png", "rgba.png", "rgb16.png", "rgb.bmp", "smooth.JPG", "animated.gif"],
)
def test_each_format_decodes_to_rgb_uint8_eagerly_and_in_tf_data(image_files, name):
    path, expected, tolerance = image_files[name]
    eager = decode.read_image_file(path)
    _assert_close(eager, expected, tolerance)

    dataset = tf.data.Dataset.from_tensor_slices([path]).map(
        lambda p: decode.decode_image(tf.io.read_file(p))
    )
    assert dataset.element_spec.shape.as_list() == [None, None, 3]
    (in_graph,) = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(in_graph, eager)


def test_16_bit_png_is_scaled_not_truncated():
    pixels = np.array([[[65535, 32768, 0]]], np.uint16)
    image = decode.decode_image(tf.io.encode_png(pixels)).numpy()
    np.testing.assert_array_equal(image[0, 0], [255, 128, 0])


def test_gif_keeps_only_the_first_frame(image_files):
    path, expected, _ = image_files["animated.gif"]
    image = decode.read_image_file(path)
    assert image.shape == (8, 8, 3)
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize(
    "contents", [b"", b"this is not an image", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"]
)
def test_read_image_file_raises_data_error_naming_the_file(tmp_path, contents):
    path = tmp_path / "broken.jpg"
    path.write_bytes(contents)
    with pytest.raises(decode.DataError, match="broken.jpg") as info:
        decode.read_image_file(str(path))
    assert "\n" not in str(info.value)
    assert "function_node" not in str(info.value)


def test_read_image_file_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        decode.read_image_file(str(tmp_path / "missing.png"))


def test_list_image_files_is_sorted_flat_and_case_insensitive(tmp_path):
    for name in ["b.PNG", "a.jpeg", "c.Jpg", "notes.txt", "d.gif", "e.bmp", "f.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub.png" / "g.png").write_bytes(b"x")
    names = [p.rsplit("/", 1)[1] for p in decode.list_image_files(str(tmp_path))]
    assert names == ["a.jpeg", "b.PNG", "c.Jpg", "d.gif", "e.bmp"]


def test_image_to_uint8_maps_unit_range_to_bytes():
    values = decode.image_to_uint8([-1.5, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(values, [0, 0, 128, 255, 255])
    assert values.dtype == np.uint8
