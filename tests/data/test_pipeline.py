import itertools
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.data import pipeline, sources


@pytest.fixture
def domain_of(tmp_path):
    """``domain_of(images)``: a folder ``DomainData`` of lossless PNGs of ``uint8`` images."""
    counter = itertools.count()

    def make(images):
        folder = tmp_path / f"domain_{next(counter)}"
        folder.mkdir()
        for index, image in enumerate(np.asarray(images, np.uint8)):
            (folder / f"{index:03d}.png").write_bytes(tf.io.encode_png(image).numpy())
        return sources.load_image_folder(str(folder), check_cache_dir="")

    return make


def _ramp(n, size=16):
    """``n`` distinct, left-right asymmetric images: image i has value i*10 + column in red."""
    columns = np.arange(size, dtype=np.uint8)
    images = np.zeros((n, size, size, 3), np.uint8)
    images[..., 0] = columns[None, None, :] + np.arange(n, dtype=np.uint8)[:, None, None] * 10
    images[..., 1] = 50
    return images


def test_preprocess_eval_is_the_same_eagerly_and_in_tf_data():
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    eager = pipeline.preprocess_eval(image, 16).numpy()
    dataset = tf.data.Dataset.from_tensors(image).map(lambda x: pipeline.preprocess_eval(x, 16))
    (in_graph,) = list(dataset.as_numpy_iterator())
    assert eager.shape == (16, 16, 3) and eager.dtype == np.float32
    np.testing.assert_allclose(in_graph, eager, atol=1e-6)
    assert eager.min() >= -1.0 and eager.max() <= 1.0


def test_preprocess_eval_at_the_same_size_only_rescales():
    image = _ramp(1)[0]
    np.testing.assert_allclose(pipeline.preprocess_eval(image, 16), image / 127.5 - 1.0, atol=1e-6)


def test_preprocess_train_is_the_same_eagerly_and_in_tf_data_for_a_seed():
    image = np.random.default_rng(1).integers(0, 256, (24, 24, 3)).astype(np.uint8)
    seeds = np.array([[3, 4], [5, 6], [7, 8]], np.int64)
    eager = [pipeline.preprocess_train(image, 16, 20, seed=s).numpy() for s in seeds]
    dataset = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda s: pipeline.preprocess_train(image, 16, 20, seed=s)
    )
    for a, b in zip(eager, dataset.as_numpy_iterator()):
        np.testing.assert_allclose(a, b, atol=1e-6)
        assert a.shape == (16, 16, 3) and a.min() >= -1.0 and a.max() <= 1.0


def test_preprocess_train_mirrors_sometimes_and_keeps_pixels_otherwise():
    image = _ramp(1)[0]
    expected = image / 127.5 - 1.0
    outputs = [pipeline.preprocess_train(image, 16, 16, seed=[0, i]).numpy() for i in range(16)]
    kept = sum(np.allclose(out, expected, atol=1e-6) for out in outputs)
    mirrored = sum(np.allclose(out, expected[:, ::-1], atol=1e-6) for out in outputs)
    assert kept + mirrored == 16
    assert kept >= 2 and mirrored >= 2


def test_preprocess_train_crops_at_varying_offsets():
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    outputs = {
        pipeline.preprocess_train(image, 8, 32, seed=[1, i]).numpy().tobytes() for i in range(12)
    }
    assert len(outputs) >= 8


@pytest.mark.parametrize(
    "image_size, load_size, message",
    [(30, 40, "image_size=30"), (32, 16, "image_size=32, load_size=16"), (0, 8, "image_size=0")],
)
def test_invalid_sizes_are_value_errors(domain_of, image_size, load_size, message):
    with pytest.raises(ValueError, match=message):
        pipeline.preprocess_train(np.zeros((8, 8, 3), np.uint8), image_size, load_size)
    domain = domain_of(_ramp(2))
    with pytest.raises(ValueError, match=message):
        pipeline.make_train_dataset(domain, domain, image_size, load_size)


@pytest.mark.parametrize("batch_size", [0, -2])
def test_invalid_batch_size_is_a_value_error(domain_of, batch_size):
    domain = domain_of(_ramp(2))
    with pytest.raises(ValueError, match=f"batch_size={batch_size}"):
        pipeline.make_train_dataset(domain, domain, 8, 8, batch_size)
    with pytest.raises(ValueError, match=f"batch_size={batch_size}"):
        pipeline.make_eval_dataset(domain, domain, 8, batch_size)


def test_train_dataset_needs_files_and_a_known_cache(domain_of):
    domain = domain_of(_ramp(2))
    in_memory = sources.DomainData(tf.data.Dataset.from_tensor_slices(_ramp(2)), 2)
    with pytest.raises(ValueError, match="domain B has no files.*files=None and 2 images"):
        pipeline.make_train_dataset(domain, in_memory, 8, 8)
    with pytest.raises(
        ValueError, match="cache must be one of auto, memory, disk, none. Received: cache='ssd'"
    ):
        pipeline.make_train_dataset(domain, domain, 8, 8, cache="ssd")
    with pytest.raises(ValueError, match="needs a cache_dir"):
        pipeline.make_train_dataset(domain, domain, 8, 8, cache="disk")
    with pytest.raises(ValueError, match="start_step=3, start_epoch=1"):
        pipeline.make_train_dataset(domain, domain, 8, 8, start_epoch=1, start_step=3)


def test_train_dataset_shapes_range_and_steps(synthetic_dir):
    domain_a, domain_b = sources.load_folder(synthetic_dir, "train")
    dataset, steps = pipeline.make_train_dataset(
        domain_a, domain_b, image_size=32, load_size=40, batch_size=3, seed=0
    )
    assert steps == 6  # ceil(16 / 3)
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    batches = list(dataset.take(2 * steps).as_numpy_iterator())
    assert len(batches) == 12
    for real_a, real_b in batches:
        assert real_a.shape == real_b.shape == (3, 32, 32, 3)
        assert real_a.dtype == np.float32
        assert real_a.min() >= -1.0 and real_a.max() <= 1.0
    every_value = np.concatenate([a.ravel() for a, _ in batches])
    assert every_value.min() < -0.5 and every_value.max() > 0.5


def test_train_dataset_steps_override_and_uneven_domains(domain_of):
    five, nine = domain_of(_ramp(5)), domain_of(_ramp(9))
    _, steps = pipeline.make_train_dataset(five, nine, 8, 8, 2)
    assert steps == 5
    _, steps = pipeline.make_train_dataset(five, nine, 8, 8, 2, 0, 3)
    assert steps == 3
    with pytest.raises(ValueError, match="steps_per_epoch.*Received: 0"):
        pipeline.make_train_dataset(five, nine, 8, 8, 2, 0, 0)


def _batches(domain_a, domain_b, count, **kwargs):
    kwargs = {"image_size": 8, "load_size": 12, "batch_size": 2, "seed": 4, **kwargs}
    dataset, _ = pipeline.make_train_dataset(domain_a, domain_b, **kwargs)
    return list(dataset.take(count).as_numpy_iterator())


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for (a1, b1), (a2, b2) in zip(first, second):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)


def test_same_seed_same_batches_other_seed_other_batches(domain_of):
    six, four = domain_of(_ramp(6)), domain_of(_ramp(4))
    first, again = _batches(six, four, 6, seed=0), _batches(six, four, 6, seed=0)
    _assert_same_batches(first, again)
    other = _batches(six, four, 6, seed=1)
    assert any(not np.array_equal(a1, a3) for (a1, _), (a3, _) in zip(first, other))


def test_resuming_at_an_epoch_or_any_step_gives_the_batches_the_full_run_gave(domain_of):
    five, three = domain_of(_ramp(5)), domain_of(_ramp(3))
    full = _batches(five, three, 3 * 3 + 4)  # 3 steps per epoch
    _assert_same_batches(_batches(five, three, 4, start_epoch=3), full[9:])
    _assert_same_batches(_batches(five, three, 6, start_step=7), full[7:])
    with pytest.raises(ValueError, match="start_epoch=-1"):
        _batches(five, three, 1, start_epoch=-1)


def test_starting_far_ahead_decodes_nothing_it_skips(domain_of):
    # Reaching step 10**12 by skipping would decode 2 * 10**12 images: it can only finish because
    # the stream starts at its position.
    real_a, _ = _batches(domain_of(_ramp(5)), domain_of(_ramp(3)), 1, start_step=10**12)[0]
    assert real_a.shape == (2, 8, 8, 3)


def _image_ids(batch):
    """Image i of ``_ramp`` has red values i*10 .. i*10+15 whether or not it is mirrored."""
    return [int(round((image[..., 0].min() + 1.0) * 127.5)) // 10 for image in batch]


def test_train_dataset_visits_every_image_each_epoch(domain_of):
    seen = []
    for real_a, _ in _batches(
        domain_of(_ramp(6)), domain_of(_ramp(2)), 6, image_size=16, load_size=16, seed=0
    ):
        seen.extend(_image_ids(real_a))
    assert sorted(seen[:6]) == sorted(seen[6:]) == list(range(6))
    assert seen[:6] != seen[6:]  # Reshuffled every pass.


def test_cache_modes_give_the_same_batches_and_the_disk_cache_is_reused(domain_of, tmp_path):
    domain_a, domain_b = domain_of(_ramp(5)), domain_of(_ramp(3))
    reference = _batches(domain_a, domain_b, 8, cache="none")
    cache_dir = tmp_path / "cache"
    for cache in ("memory", "disk"):
        _assert_same_batches(
            _batches(domain_a, domain_b, 8, cache=cache, cache_dir=str(cache_dir)), reference
        )
    folders = sorted(cache_dir.iterdir(), key=lambda folder: len(os.listdir(folder)))
    assert [len(os.listdir(folder)) for folder in folders] == [3, 5]  # one image per file
    # A cached image cut short (an interrupted write) counts as missing and is decoded again.
    stored = sorted(folders[1].iterdir())[0]
    stored.write_bytes(stored.read_bytes()[:100])
    _assert_same_batches(
        _batches(domain_a, domain_b, 8, cache="disk", cache_dir=str(cache_dir)), reference
    )


def test_images_and_disk_cache_on_ram_give_the_local_batches(domain_of):
    from cyclegan_tf import io

    domains = domain_of(_ramp(5)), domain_of(_ramp(3))
    on_ram = []
    for index, domain in enumerate(domains):
        folder = f"ram://pipeline-test/data/domain_{index}"
        for path in domain.files:
            io.copy(path, io.join(folder, io.basename(path)))
        on_ram.append(sources.load_image_folder(folder, check_cache_dir=""))
    reference = _batches(*domains, 8, cache="none")
    cache_dir = "ram://pipeline-test/run/cache"
    for _ in range(2):  # fills the cache, then reads from it
        _assert_same_batches(_batches(*on_ram, 8, cache="disk", cache_dir=cache_dir), reference)
    stores = io.listdir(cache_dir)
    assert sorted(len(io.list_files(io.join(cache_dir, store))) for store in stores) == [3, 5]


def test_a_file_that_fails_to_decode_is_replaced_the_same_way_every_run(
    domain_of, tmp_path, caplog
):
    domain_a, domain_b = domain_of(_ramp(6)), domain_of(_ramp(3))
    # A PNG that starts and ends like one, so it passes the check, but whose data is garbage.
    broken = domain_a.files[2]
    contents = bytearray(open(broken, "rb").read())
    contents[40:-20] = b"x" * (len(contents) - 60)
    with open(broken, "wb") as f:
        f.write(contents)
    with caplog.at_level(logging.WARNING, logger="cyclegan_tf.data.pipeline"):
        first = _batches(domain_a, domain_b, 9, image_size=16, load_size=16, batch_size=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and broken in warnings[0]  # Once per file, in every pass.
    ids = [i for real_a, _ in first for i in _image_ids(real_a)]
    assert 2 not in ids and len(ids) == 18
    again = _batches(domain_a, domain_b, 9, image_size=16, load_size=16, batch_size=2)
    _assert_same_batches(again, first)
    resumed = _batches(
        domain_a, domain_b, 3, image_size=16, load_size=16, batch_size=2, start_step=6
    )
    _assert_same_batches(resumed, first[6:])


def test_input_pipelines_take_disjoint_slices_of_each_global_batch(domain_of):
    domain_a, domain_b = domain_of(_ramp(8)), domain_of(_ramp(5))
    options = {"image_size": 16, "load_size": 16, "batch_size": 4, "seed": 3}
    full = _batches(domain_a, domain_b, 6, **options)
    shards = []
    for index in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2
        )
        shards.append(_batches(domain_a, domain_b, 6, input_context=context, **options))
    for step, (real_a, real_b) in enumerate(full):
        # Each input pipeline yields its replica's half of the global batch, exactly.
        for index, shard in enumerate(shards):
            np.testing.assert_array_equal(shard[step][0], real_a[2 * index : 2 * index + 2])
            np.testing.assert_array_equal(shard[step][1], real_b[2 * index : 2 * index + 2])
    # In the first pass over A (8 images: two steps) the workers see disjoint halves of it.
    seen = [{i for real_a, _ in shard[:2] for i in _image_ids(real_a)} for shard in shards]
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(8))


def test_eval_dataset_pairs_in_order_and_repeats_the_shorter_domain(domain_of):
    a, b = _ramp(5), _ramp(3)
    dataset = pipeline.make_eval_dataset(domain_of(a), domain_of(b), image_size=16, batch_size=2)
    batches = list(dataset.as_numpy_iterator())
    assert [x.shape[0] for x, _ in batches] == [2, 2, 1]
    real_a = np.concatenate([x for x, _ in batches])
    real_b = np.concatenate([y for _, y in batches])
    np.testing.assert_allclose(real_a, a / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(real_b, b[[0, 1, 2, 0, 1]] / 127.5 - 1.0, atol=1e-6)


def test_translate_dataset_keeps_order_and_count(synthetic_dir):
    domain_a, _ = sources.load_folder(synthetic_dir, "test")
    batches = list(pipeline.make_translate_dataset(domain_a, 32, batch_size=3).as_numpy_iterator())
    assert [batch.shape for batch in batches] == [(3, 32, 32, 3)] * 2 + [(2, 32, 32, 3)]
    first = pipeline.preprocess_eval(next(iter(domain_a.images)), 32).numpy()
    np.testing.assert_allclose(batches[0][0], first, atol=1e-6)


def test_each_domain_has_its_channels_in_training_evaluation_and_the_disk_cache(
    synthetic_dir, tmp_path
):
    """Grayscale A (PIL's "L") and RGBA B: in the train stream, its disk cache, in evaluation."""
    from PIL import Image

    domain_a, domain_b = sources.load_folder(synthetic_dir, "train")
    dataset, _ = pipeline.make_train_dataset(
        domain_a,
        domain_b,
        image_size=32,
        load_size=36,
        batch_size=2,
        cache="disk",
        cache_dir=str(tmp_path),
        channels=(1, 4),
    )
    real_a, real_b = next(iter(dataset))
    assert real_a.shape == (2, 32, 32, 1) and real_b.shape == (2, 32, 32, 4)
    assert np.all(real_b.numpy()[..., 3] == 1.0)  # JPEGs are opaque
    assert sorted(name.split("-")[-2] for name in os.listdir(tmp_path)) == ["c1", "c4"]
    real_a, real_b = next(iter(pipeline.make_eval_dataset(domain_a, domain_b, 32, 2, (1, 4))))
    with Image.open(domain_a.files[0]) as image:
        gray = np.asarray(image.convert("RGB").convert("L").resize((32, 32), Image.BICUBIC))
    assert np.abs((real_a[0, ..., 0].numpy() + 1) * 127.5 - gray).max() < 1.01
    assert real_b.shape == (2, 32, 32, 4)
