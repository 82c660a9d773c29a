"""The reference's ``--preprocess`` modes: sizes, resizes, crops, streams of images of any size."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cyclegan_tf.data import DataError, decode, pipeline, sources
from cyclegan_tf.data.preprocess import PREPROCESS_MODES, Preprocess

SOURCE_SHAPES = [(300, 400), (400, 300), (301, 257), (1001, 757), (10, 10), (6, 2), (1, 1)]


def _reference_size(mode, height, width, load_size, crop_size):
    """``(height, width)`` after the official ``get_transform``'s resize, as PIL sizes it.

    ``__scale_width`` and ``__make_power_2`` of ``data/base_dataset.py``, in Python; ``scale_width``
    alone is then rounded to multiples of 4 (where the reference fails on the cycle loss).
    """

    def power_of_4(side):
        return max(4, int(round(side / 4) * 4))

    if mode == "resize_and_crop":
        return load_size, load_size
    if mode.startswith("scale_width"):
        scaled_height = int(max(load_size * height / width, crop_size))
        if mode == "scale_width":
            return power_of_4(scaled_height), power_of_4(load_size)
        return scaled_height, load_size
    if mode == "crop":
        return height, width
    return power_of_4(height), power_of_4(width)


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_stored_sizes_follow_the_reference(mode):
    geometry = Preprocess(mode, load_size=286, crop_size=256)
    for height, width in SOURCE_SHAPES:
        got = tuple(geometry.stored_shape(tf.constant([height, width, 3])).numpy())
        assert got == _reference_size(mode, height, width, 286, 256), (height, width)


def test_scale_width_resizes_as_pil_does():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(photo).resize((240, 180), Image.BICUBIC))  # smooth it
    geometry = Preprocess("scale_width_and_crop", load_size=100, crop_size=32)
    ours = decode.decode_to_shape(tf.io.encode_png(photo), geometry.stored_shape).numpy()
    theirs = np.asarray(Image.fromarray(photo).resize((100, 75), Image.BICUBIC))
    assert ours.shape == theirs.shape == (75, 100, 3)
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.mean() < 0.2 and difference.max() <= 4  # PIL rounds in fixed point


def test_large_jpegs_are_decoded_smaller_only_when_it_keeps_both_sides():
    photo = np.random.default_rng(1).integers(0, 256, (64, 512, 3), dtype=np.uint8)
    contents = tf.io.encode_jpeg(photo, quality=95)
    wide = Preprocess("scale_width", load_size=64, crop_size=8)
    # 1/4 would leave 16 rows for an 8-row target (2x oversampling); 1/8 would not.
    assert tuple(decode.decode_to_shape(contents, wide.stored_shape).shape) == (8, 64, 3)
    assert int(decode._dct_ratio_index(tf.constant([64, 512]), tf.constant([8, 64]))) == 2


def test_mode_and_sizes_are_checked_with_the_argument_names():
    with pytest.raises(ValueError, match="preprocess must be one of resize_and_crop, .*'zoom'"):
        Preprocess("zoom", 286, 256)
    with pytest.raises(ValueError, match="load_size must be an integer >= image_size"):
        Preprocess("scale_width_and_crop", 200, 256)
    with pytest.raises(ValueError, match="image_size: must be a multiple of 4"):
        Preprocess("crop", 286, 30)
    # The source-resolution modes never resize to load_size, so it is not checked.
    assert Preprocess("crop", 10, 256).crop_size == 256


@pytest.fixture
def mixed_sizes(tmp_path):
    """A folder ``DomainData`` of PNGs of different sizes and aspect ratios, and their sizes."""
    rng = np.random.default_rng(2)
    shapes = [(20, 36), (36, 20), (30, 30), (17, 43), (24, 24)]
    folder = tmp_path / "mixed"
    folder.mkdir()
    for index, shape in enumerate(shapes):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    return sources.load_image_folder(str(folder), check_cache_dir=""), shapes


def _shapes(dataset, steps):
    batches = list(dataset.take(steps).as_numpy_iterator())
    return batches, [tuple(a.shape) for a, _ in batches]


@pytest.mark.parametrize("mode", ["scale_width", "none"])
def test_variable_size_modes_keep_each_images_shape(mixed_sizes, mode):
    domain, shapes = mixed_sizes
    dataset, steps = pipeline.make_train_dataset(
        domain, domain, image_size=8, load_size=24, preprocess=mode
    )
    assert steps == len(shapes)
    batches, seen = _shapes(dataset, 2 * steps)
    expected = {(1, *_reference_size(mode, h, w, 24, 8), 3) for h, w in shapes}
    # Two passes see every image twice, each at its own preprocessed size.
    assert set(seen) == expected and len(seen) == 2 * len(shapes)
    for a, b in batches:
        assert a.min() >= -1.0 and a.max() <= 1.0 and b.shape[0] == 1


def test_variable_size_modes_need_batches_of_one_image(mixed_sizes):
    domain, _ = mixed_sizes
    with pytest.raises(ValueError, match="keeps each image's own size.*batch_size=2"):
        pipeline.make_train_dataset(domain, domain, 8, 24, batch_size=2, preprocess="none")


@pytest.mark.parametrize("mode", ["scale_width_and_crop", "crop"])
def test_crop_modes_give_fixed_crops(mixed_sizes, mode):
    domain, shapes = mixed_sizes
    dataset, _ = pipeline.make_train_dataset(
        domain, domain, image_size=16, load_size=24, batch_size=2, preprocess=mode
    )
    _, seen = _shapes(dataset, 3)
    assert set(seen) == {(2, 16, 16, 3)}


def test_crop_replaces_images_smaller_than_the_crop_with_a_warning(mixed_sizes, caplog):
    domain, shapes = mixed_sizes
    small = {f"{index}.png" for index, shape in enumerate(shapes) if min(shape) < 24}
    assert small == {"0.png", "1.png", "3.png"}
    dataset, steps = pipeline.make_train_dataset(
        domain, domain, image_size=24, load_size=24, preprocess="crop"
    )
    with caplog.at_level(logging.WARNING):
        _, seen = _shapes(dataset, 2 * steps)
    assert set(seen) == {(1, 24, 24, 3)}
    named = {
        record.getMessage().split()[3].rsplit("/", 1)[-1]
        for record in caplog.records
        if "smaller than image_size" in record.getMessage()
    }
    # Each small image is named once it comes up (two passes show every image), and no other.
    assert named == small


@pytest.mark.parametrize("mode", ["scale_width", "crop"])
def test_the_cache_gives_the_same_images_of_any_size(mixed_sizes, tmp_path, mode):
    domain, shapes = mixed_sizes
    streams = {}
    for cache in ("none", "memory", "disk"):
        dataset, steps = pipeline.make_train_dataset(
            domain,
            domain,
            image_size=16,
            load_size=24,
            preprocess=mode,
            cache=cache,
            cache_dir=str(tmp_path / "cache"),
        )
        streams[cache] = _shapes(dataset, 2 * steps)[0]  # the second pass reads the cache
    for cache in ("memory", "disk"):
        for (a, b), (ref_a, ref_b) in zip(streams[cache], streams["none"]):
            np.testing.assert_array_equal(a, ref_a)
            np.testing.assert_array_equal(b, ref_b)


def test_preprocess_train_is_the_same_eagerly_and_in_tf_data():
    image = np.random.default_rng(3).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    seed = tf.constant([4, 5], tf.int64)
    for mode in PREPROCESS_MODES:
        eager = pipeline.preprocess_train(image, 16, 24, seed=seed, preprocess=mode).numpy()
        (graph,) = tf.data.Dataset.from_tensors(image).map(
            lambda x, mode=mode: pipeline.preprocess_train(x, 16, 24, seed=seed, preprocess=mode)
        )
        np.testing.assert_array_equal(graph.numpy(), eager)
        size = (16, 16) if "crop" in mode else _reference_size(mode, 30, 50, 24, 16)
        assert eager.shape == (*size, 3)


def test_a_stream_with_no_usable_image_fails_in_one_line_naming_a_file(mixed_sizes):
    domain, _ = mixed_sizes
    dataset, _ = pipeline.make_train_dataset(
        domain, domain, image_size=64, load_size=64, preprocess="crop"
    )
    with pytest.raises(DataError) as raised, pipeline.explained_stream_errors():
        next(iter(dataset))
    message = str(raised.value)
    assert "\n" not in message and "smaller than image_size=64" in message
    assert message.endswith(".png") and "mixed" in message
