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
    with pytest.raises(ValueError, match=r"\['lsgan', 'vanilla', 'wgangp'\].*hinge"):
        losses.get_gan_loss("hinge")


def test_wgangp_loss_is_the_mean_logit_signed():
    logits = np.array([[0.5, 2.0], [-1.0, 1.5]], "float32")
    assert float(losses.wgangp_loss(logits, True)) == pytest.approx(-0.75)
    assert float(losses.wgangp_loss(logits, False)) == pytest.approx(0.75)


def test_gradient_penalty_of_a_linear_critic_against_its_closed_form():
    """D(x) = Σ w·x per pixel: the gradient is w at every pixel, |∇| = sqrt(H W |w|²)."""
    import keras

    weights = np.array([0.3, -0.2, 0.1], "float32")
    critic = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1)])
    critic.layers[0].kernel.assign(weights.reshape(1, 1, 3, 1))
    critic.layers[0].bias.assign([0.7])
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(-1, 1, (2, 2, 4, 5, 3)).astype("float32")
    norm = np.sqrt(4 * 5 * np.sum(weights**2))
    expected = 10.0 * (norm - 1.0) ** 2
    penalty = losses.gradient_penalty(critic, real, fake, np.array([0.2, 0.9], "float32"))
    assert float(penalty) == pytest.approx(expected, rel=1e-5)
