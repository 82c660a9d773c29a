import numpy as np
import pytest

from cyclegan_tf.models import losses


def test_lsgan_against_hand_computed_values():
    logits = np.array([[0.5, 2.0], [-1.0, 1.0]], "float32")
    assert float(losses.lsgan_loss(logits, True)) == pytest.approx((0.25 + 1 + 4 + 0) / 4)
    assert float(losses.lsgan_loss(logits, False)) == pytest.approx((0.25 + 4 + 1 + 1) / 4)


def test_vanilla_against_hand_computed_values():
    logits = np.array([0.0, 2.0, -3.0], "float32")
    real = np.mean([np.log1p(np.exp(-v)) for v in logits])
    fake = np.mean([np.log1p(np.exp(v)) for v in logits])
    assert float(losses.vanilla_loss(logits, True)) == pytest.approx(real, rel=1e-5)
    assert float(losses.vanilla_loss(logits, False)) == pytest.approx(fake, rel=1e-5)


def test_l1_against_hand_computed_value():
    a = np.array([[1.0, -1.0], [0.5, 0.0]], "float32")
    b = np.array([[0.0, 1.0], [0.5, -0.25]], "float32")
    assert float(losses.l1_loss(a, b)) == pytest.approx((1 + 2 + 0 + 0.25) / 4)


def test_unknown_gan_mode_lists_choices():
    assert losses.get_gan_loss("lsgan") is losses.lsgan_loss
    with pytest.raises(ValueError, match=r"\['lsgan', 'vanilla'\].*wgan"):
        losses.get_gan_loss("wgan")
