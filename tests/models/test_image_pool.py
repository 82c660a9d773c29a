import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.models.image_pool import ImagePool


def _batch(values):
    return np.array(values, "float32").reshape(-1, 1, 1, 1) * np.ones((1, 2, 2, 1), "float32")


def test_pool_returns_inputs_while_filling_then_swaps_half_the_time():
    pool = ImagePool(4, (2, 2, 1), seed=3)
    query = tf.function(pool.__call__)
    np.testing.assert_array_equal(query(_batch([1, 2])), _batch([1, 2]))
    np.testing.assert_array_equal(query(_batch([3, 4])), _batch([3, 4]))
    assert int(pool.count.numpy()) == 4
    returned_history = 0
    history = {1.0, 2.0, 3.0, 4.0}
    for value in range(10, 410):
        stored_before = set(pool.images.numpy()[:, 0, 0, 0].tolist())
        out = float(query(_batch([value]))[0, 0, 0, 0])
        if out != value:
            # A swap returns an image that was stored and puts the new one in its place.
            assert out in stored_before
            assert value in pool.images.numpy()[:, 0, 0, 0]
            returned_history += 1
        history.add(float(value))
    assert 150 < returned_history < 250  # p = 0.5 over 400 queries
    assert set(pool.images.numpy()[:, 0, 0, 0].tolist()) <= history


def test_pool_size_zero_is_the_identity():
    pool = ImagePool(0, (2, 2, 1))
    x = _batch([5, 6, 7])
    assert pool(x) is x or np.array_equal(pool(x), x)
    assert pool.weights == []


def test_pool_state_is_saved_in_weights_and_config_round_trips():
    pool = ImagePool(3, (2, 2, 1), seed=1)
    pool(_batch([1, 2]))
    assert sorted(w.name for w in pool.weights) == ["count", "draws", "images"]
    clone = ImagePool.from_config(pool.get_config())
    assert clone.pool_size == 3 and clone.image_shape == (2, 2, 1)
    clone.set_weights(pool.get_weights())
    assert int(clone.count.numpy()) == 2


def test_negative_pool_size_is_rejected():
    with pytest.raises(ValueError, match="pool_size=-1"):
        ImagePool(-1)


def _sized(value, height, width):
    return np.full((1, height, width, 1), value, "float32")


def test_pool_of_any_size_follows_the_same_rule_and_keeps_each_images_size():
    fixed = tf.function(ImagePool(3, (2, 2, 1), seed=5).__call__)
    any_size = ImagePool(3, (None, None, 1), seed=5)
    query = tf.function(any_size.__call__)
    sizes = {}
    for value in range(1, 60):
        height, width = 4 * (1 + value % 3), 4 * (1 + value % 5)
        sizes[float(value)] = (height, width)
        expected = float(fixed(_batch([value]))[0, 0, 0, 0])
        out = query(_sized(value, height, width)).numpy()
        # The same draws as the fixed-size pool, and the image comes back at its own size.
        assert out.shape == (1, *sizes[expected], 1)
        np.testing.assert_array_equal(out, expected)
    assert int(any_size.count.numpy()) == 3


def test_pool_of_any_size_refuses_batches_of_several_images():
    pool = ImagePool(2, (None, None, 1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batches of one image"):
        pool(np.zeros((2, 4, 4, 1), "float32"))


def test_pool_of_any_size_is_saved_and_restored_with_the_model(tmp_path):
    def model_with_pool():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.pool = ImagePool(3, (None, None, 1), seed=2)
        return model

    model = model_with_pool()
    for value, (height, width) in enumerate([(4, 8), (12, 4), (8, 8), (4, 4), (16, 12)]):
        model.pool(_sized(value, height, width))
    path = str(tmp_path / "pool.weights.h5")
    model.save_weights(path)
    restored = model_with_pool()
    restored.load_weights(path)
    for name in ("count", "draws"):
        assert getattr(restored.pool, name).numpy() == getattr(model.pool, name).numpy()
    assert list(restored.pool.images.numpy()) == list(model.pool.images.numpy())
    # Both answer the next queries alike.
    for value in range(10, 20):
        np.testing.assert_array_equal(
            restored.pool(_sized(value, 4, 4)), model.pool(_sized(value, 4, 4))
        )
