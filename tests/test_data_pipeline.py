import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.data import pipeline, sources
from cyclegan_tf.data.sources import DomainData


def _domain(images):
    images = np.asarray(images, np.uint8)
    return DomainData(tf.data.Dataset.from_tensor_slices(images), len(images), None)


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
def test_invalid_sizes_are_value_errors(image_size, load_size, message):
    with pytest.raises(ValueError, match=message):
        pipeline.preprocess_train(np.zeros((8, 8, 3), np.uint8), image_size, load_size)
    with pytest.raises(ValueError, match=message):
        pipeline.make_train_dataset(_domain(_ramp(2)), _domain(_ramp(2)), image_size, load_size)


@pytest.mark.parametrize("batch_size", [0, -2])
def test_invalid_batch_size_is_a_value_error(batch_size):
    with pytest.raises(ValueError, match=f"batch_size={batch_size}"):
        pipeline.make_train_dataset(_domain(_ramp(2)), _domain(_ramp(2)), 8, 8, batch_size)
    with pytest.raises(ValueError, match=f"batch_size={batch_size}"):
        pipeline.make_eval_dataset(_domain(_ramp(2)), _domain(_ramp(2)), 8, batch_size)


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


def test_train_dataset_steps_override_and_uneven_domains():
    _, steps = pipeline.make_train_dataset(_domain(_ramp(5)), _domain(_ramp(9)), 8, 8, 2)
    assert steps == 5
    _, steps = pipeline.make_train_dataset(_domain(_ramp(5)), _domain(_ramp(9)), 8, 8, 2, 0, 3)
    assert steps == 3
    with pytest.raises(ValueError, match="steps_per_epoch.*Received: 0"):
        pipeline.make_train_dataset(_domain(_ramp(5)), _domain(_ramp(9)), 8, 8, 2, 0, 0)


def _first_batches(seed, count=6):
    dataset, _ = pipeline.make_train_dataset(
        _domain(_ramp(6)), _domain(_ramp(4)), image_size=8, load_size=12, batch_size=2, seed=seed
    )
    return list(dataset.take(count).as_numpy_iterator())


def test_same_seed_same_batches_other_seed_other_batches():
    first, again, other = _first_batches(0), _first_batches(0), _first_batches(1)
    for (a1, b1), (a2, b2) in zip(first, again):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    assert any(not np.array_equal(a1, a3) for (a1, _), (a3, _) in zip(first, other))


def test_resuming_at_an_epoch_gives_the_batches_the_full_run_gave():
    def batches(start_epoch, count):
        dataset, steps = pipeline.make_train_dataset(
            _domain(_ramp(5)), _domain(_ramp(3)), 8, 12, 2, seed=4, start_epoch=start_epoch
        )
        assert steps == 3
        return list(dataset.take(count).as_numpy_iterator())

    full = batches(0, 3 * 3 + 4)
    resumed = batches(3, 4)
    for (a1, b1), (a2, b2) in zip(full[9:], resumed):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    with pytest.raises(ValueError, match="start_epoch=-1"):
        batches(-1, 1)


def test_train_dataset_visits_every_image_each_epoch():
    images = _ramp(6)
    dataset, steps = pipeline.make_train_dataset(
        _domain(images), _domain(_ramp(2)), image_size=16, load_size=16, batch_size=1, seed=0
    )
    assert steps == 6
    seen = []
    for real_a, _ in dataset.take(12).as_numpy_iterator():
        # Image i has red values i*10 .. i*10+15 whether or not it is mirrored.
        seen.append(int(round((real_a[0, ..., 0].min() + 1.0) * 127.5)) // 10)
    assert sorted(seen[:6]) == sorted(seen[6:]) == list(range(6))
    assert seen[:6] != seen[6:]  # Reshuffled every pass.


def test_eval_dataset_pairs_in_order_and_repeats_the_shorter_domain():
    a, b = _ramp(5), _ramp(3)
    dataset = pipeline.make_eval_dataset(_domain(a), _domain(b), image_size=16, batch_size=2)
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
