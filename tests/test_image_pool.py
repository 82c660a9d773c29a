import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.image_pool import ImagePool


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
