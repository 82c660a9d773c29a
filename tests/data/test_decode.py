import io
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from cyclegan_tf.data import decode, sources
from tests.conftest import jpeg_with_orientation, pil_decode, textured_jpeg


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


def test_read_image_file_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "missing.png")
    with pytest.raises(decode.DataError, match=f"^no such image file: {re.escape(missing)}$"):
        decode.read_image_file(missing)


def test_list_image_files_is_sorted_flat_and_case_insensitive(tmp_path):
    for name in ["b.PNG", "a.jpeg", "c.Jpg", "notes.txt", "d.gif", "e.bmp", "f.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub.png" / "g.png").write_bytes(b"x")
    names = [p.rsplit("/", 1)[1] for p in decode.list_image_files(str(tmp_path))]
    assert names == ["a.jpeg", "b.PNG", "c.Jpg", "d.gif", "e.bmp", "f.webp"]


def test_image_to_uint8_maps_unit_range_to_bytes():
    values = decode.image_to_uint8([-1.5, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(values, [0, 0, 128, 255, 255])
    assert values.dtype == np.uint8


def _photo(height, width, seed=0):
    """A smooth colour field with sharp-edged blocks: enough detail for resampling to show."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 40 + 1, width // 40 + 1, 3)).astype(np.float32)
    image = tf.image.resize(coarse[None], [height, width], "bilinear")[0].numpy()
    image[height // 3 : height // 2, width // 4 : width // 2] = [250, 20, 30]
    return np.clip(image, 0, 255).astype(np.uint8)


def _pil_resize(image, size):
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC)).astype(int)


def test_resize_like_pil_matches_pil_bicubic_when_shrinking_and_growing():
    photo = _photo(300, 400)
    for size in (48, 512):
        ours = decode.resize_like_pil(photo, size).numpy().astype(int)
        assert np.abs(ours - _pil_resize(photo, size)).mean() < 0.5


def test_decode_resized_downscales_large_jpegs_in_the_dct_and_stays_close_to_a_full_decode():
    photo = _photo(1200, 1600)
    contents = tf.io.encode_jpeg(photo, quality=95).numpy()
    full = _pil_resize(np.asarray(Image.open(io.BytesIO(contents)).convert("RGB")), 143)
    eager = decode.decode_resized(contents, 143).numpy()
    assert eager.shape == (143, 143, 3) and eager.dtype == np.uint8
    assert np.abs(eager.astype(int) - full).mean() < 1.0  # decoded at 1/4 scale: 300 >= 2 * 143
    dataset = tf.data.Dataset.from_tensors(contents).map(lambda c: decode.decode_resized(c, 143))
    np.testing.assert_array_equal(next(iter(dataset)).numpy(), eager)


def test_decode_resized_of_a_png_is_the_pil_resize_of_its_pixels():
    photo = _photo(90, 120)
    resized = decode.decode_resized(tf.io.encode_png(photo), 64).numpy()
    np.testing.assert_array_equal(resized, decode.resize_like_pil(photo, 64).numpy())


@pytest.mark.parametrize("name", ["rgb.png", "rgb.bmp", "smooth.JPG", "animated.gif"])
def test_header_problem_passes_complete_files(image_files, name):
    contents = open(image_files[name][0], "rb").read()
    head, tail = contents[: decode.HEADER_BYTES], contents[-decode.HEADER_BYTES :]
    assert decode.header_problem(head, tail, len(contents)) is None


def test_header_problem_flags_empty_foreign_and_truncated_files(image_files):
    contents = open(image_files["smooth.JPG"][0], "rb").read()
    cut = contents[: len(contents) // 2]
    assert decode.header_problem(b"", b"", 0) == "empty file"
    assert decode.header_problem(b"<html><body>", b"</html>", 500) == (
        "not a JPEG, PNG, BMP, GIF or WebP file"
    )
    assert decode.header_problem(cut[:16], cut[-16:], len(cut)) == decode.SUSPECT


# Chroma 4:4:4 and 4:2:0 (what cameras and PIL write by default), progressive, grayscale, CMYK;
# sides that are not multiples of the 8 or 16 pixel blocks.
JPEG_VARIANTS = {
    "444": dict(subsampling=0),
    "420": dict(subsampling=2),
    "420_progressive": dict(subsampling=2, progressive=True),
    "grayscale": dict(mode="L"),
    "cmyk": dict(mode="CMYK"),
}


@pytest.mark.parametrize("variant", JPEG_VARIANTS)
def test_jpeg_pixels_are_pils_everywhere_a_jpeg_is_decoded(tmp_path, variant):
    contents = textured_jpeg(357, 481, **JPEG_VARIANTS[variant])
    expected = pil_decode(contents)
    # TensorFlow's default decode (the fast DCT) is not PIL's on these bytes: the test can fail.
    fast = tf.io.decode_image(contents, channels=3, expand_animations=False).numpy()
    assert np.abs(fast.astype(int) - expected.astype(int)).max() >= 1

    np.testing.assert_array_equal(decode.decode_image(contents).numpy(), expected)
    mapped = tf.data.Dataset.from_tensors(contents).map(decode.decode_image)
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), expected)
    # The training pipeline's decode, at the image's own size (no DCT-domain downscale).
    unresized = tf.data.Dataset.from_tensors(contents).map(
        lambda c: decode.decode_to_shape(c, lambda shape: shape[:2])
    )
    np.testing.assert_array_equal(next(iter(unresized)).numpy(), expected)
    # A file is decoded by what it holds, not by its name.
    misnamed = tmp_path / "photo.png"
    misnamed.write_bytes(contents)
    np.testing.assert_array_equal(decode.read_image_file(str(misnamed)), expected)
    (folder_image,) = sources.load_image_folder(str(tmp_path), "").images.as_numpy_iterator()
    np.testing.assert_array_equal(folder_image, expected)


def _assert_same_photo(actual, expected):
    """Equal up to a JPEG decoded at 1/2 to 1/8 scale in the DCT domain, before the resize."""
    assert actual.shape == expected.shape
    error = np.abs(actual.astype(int) - expected.astype(int))
    assert error.max() <= 16 and error.mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied_as_viewers_show_it(tmp_path, orientation):
    y, x = np.mgrid[0:24, 0:40]
    pixels = np.stack([x * 6, y * 10, np.full_like(x, 90)], -1).astype(np.uint8)
    pixels[:6, :8] = 255  # a bright corner, so that every turn and mirror shows
    contents = jpeg_with_orientation(pixels, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(contents))).convert("RGB"))
    eager = decode.decode_image(contents).numpy()
    np.testing.assert_array_equal(eager, expected)
    in_graph = next(iter(tf.data.Dataset.from_tensors(contents).map(decode.decode_image)))
    np.testing.assert_array_equal(in_graph.numpy(), eager)
    path = tmp_path / "photo.jpg"
    path.write_bytes(contents)
    np.testing.assert_array_equal(decode.read_image_file(str(path)), eager)
    assert int(decode.exif_orientation(contents)) == orientation


def test_either_exif_byte_order_and_files_without_orientation():
    pixels = np.zeros((24, 40, 3), np.uint8)
    for orientation in (3, 6, 8):
        swapped = jpeg_with_orientation(pixels, orientation, swap_byte_order=True)
        assert int(decode.exif_orientation(swapped)) == orientation
    assert decode.decode_image(swapped).shape == (40, 24, 3)
    plain = tf.io.encode_jpeg(pixels).numpy()
    for contents in (plain, tf.io.encode_png(pixels).numpy(), b"\xff\xd8\xff\xe1\xff\xff", b""):
        assert int(decode.exif_orientation(contents)) == 1


def test_decode_resized_resizes_the_upright_photo():
    pixels = _photo(300, 400)
    contents = jpeg_with_orientation(pixels, 6)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(contents))).convert("RGB"))
    resized = decode.decode_to_shape(
        contents, lambda shape: tf.stack([shape[0] // 4, shape[1] // 4])
    )
    assert resized.shape == (100, 75, 3)
    _assert_same_photo(resized.numpy(), decode.resize_like_pil(upright, [100, 75]).numpy())


def test_grayscale_and_rgba_are_pils_conversions():
    """``channels=1`` is PIL's ``convert("RGB").convert("L")`` (the reference's ``Grayscale(1)``);
    ``channels=4`` PIL's ``convert("RGBA")``, a JPEG opaque. Resizing keeps the channels."""
    jpeg = textured_jpeg(40, 56)
    rgba = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    for contents in (jpeg, buffer.getvalue()):
        with Image.open(io.BytesIO(contents)) as image:
            gray = np.asarray(image.convert("RGB").convert("L"))[..., None]
            with_alpha = np.asarray(image.convert("RGBA"))
        np.testing.assert_array_equal(decode.decode_image(contents, channels=1), gray)
        np.testing.assert_array_equal(decode.decode_image(contents, channels=4), with_alpha)
        assert decode.decode_image(contents, channels=3).shape[-1] == 3
    resized = decode.decode_resized(jpeg, 24, channels=1).numpy()
    with Image.open(io.BytesIO(jpeg)) as image:
        expected = np.asarray(image.convert("RGB").convert("L").resize((24, 24), Image.BICUBIC))
    assert resized.shape == (24, 24, 1)
    assert np.abs(resized[..., 0].astype(int) - expected).max() <= 1
    with pytest.raises(
        ValueError, match=r"channels must be one of \[1, 3, 4\]. Received: channels=2"
    ):
        decode.decode_image(jpeg, channels=2)
