"""The GAN losses (LSGAN, vanilla, WGAN-GP and its gradient penalty) and the L1 terms.

Each function returns the mean over its inputs, like the reference's ``nn.MSELoss`` / ``nn.L1Loss`` /
``nn.BCEWithLogitsLoss`` with their default ``reduction="mean"``.
"""

import keras
import tensorflow as tf
from keras import ops


def lsgan_loss(logits, target_is_real):
    """Least-squares GAN loss: mean squared distance of the logits to 1 (real) or 0 (fake).

    Args:
        logits: tensor, discriminator outputs.
        target_is_real: bool, whether the target label is "real".

    Returns:
        A scalar tensor.

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.
    """
    target = 1.0 if target_is_real else 0.0
    return ops.mean(ops.square(ops.cast(logits, "float32") - target))


def vanilla_loss(logits, target_is_real):
    """The original GAN loss: binary cross-entropy of the logits against 1 (real) or 0 (fake).

    Args:
        logits: tensor, discriminator outputs (before any sigmoid).
        target_is_real: bool, whether the target label is "real".

    Returns:
        A scalar tensor.
    """
    logits = ops.cast(logits, "float32")
    target = ops.ones_like(logits) if target_is_real else ops.zeros_like(logits)
    return ops.mean(keras.losses.binary_crossentropy(target, logits, from_logits=True, axis=()))


def wgangp_loss(logits, target_is_real):
    """The Wasserstein critic's loss: minus the mean logit for "real", the mean logit for "fake".

    The reference's ``GANLoss`` with ``gan_mode="wgangp"``; the gradient penalty that makes it
    WGAN-GP is ``gradient_penalty``, added to the discriminator's loss.

    Args:
        logits: tensor, discriminator outputs.
        target_is_real: bool, whether the target label is "real".

    Returns:
        A scalar tensor.

    Reference:
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    """
    mean = ops.mean(ops.cast(logits, "float32"))
    return -mean if target_is_real else mean


GAN_LOSSES = {"lsgan": lsgan_loss, "vanilla": vanilla_loss, "wgangp": wgangp_loss}
# The reference's ``cal_gradient_penalty(type="mixed", constant=1.0, lambda_gp=10.0)``.
GRADIENT_PENALTY_WEIGHT = 10.0
_GRADIENT_EPSILON = 1e-16


def gradient_penalty(discriminator, real, fake, mixing, weight=GRADIENT_PENALTY_WEIGHT):
    """WGAN-GP's penalty: ``weight * mean((|∇ D(x̂)|₂ - 1)²)`` at ``x̂ = α real + (1 - α) fake``.

    The reference's ``networks.cal_gradient_penalty`` with ``type="mixed"``: one ``α`` per image,
    the gradient of the summed logits with respect to each mixed image flattened, ``1e-16`` added to
    it before its norm. It is differentiable with respect to the discriminator's weights (the
    gradient is taken inside the caller's tape).

    Args:
        discriminator: a ``keras.Model``, called in training mode.
        real: float tensor ``[batch, H, W, C]``.
        fake: float tensor of the same shape (not differentiated).
        mixing: float tensor ``[batch]`` in [0, 1), each image's ``α``.
        weight: float, ``λ_GP``. Defaults to 10.

    Returns:
        A scalar float32 tensor.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.stop_gradient(tf.cast(fake, tf.float32))
    alpha = tf.reshape(tf.cast(mixing, tf.float32), [-1, 1, 1, 1])
    mixed = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        logits = tf.cast(discriminator(mixed, training=True), tf.float32)
    gradients = tape.gradient(logits, mixed)
    flat = tf.reshape(gradients + _GRADIENT_EPSILON, [tf.shape(gradients)[0], -1])
    norms = tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))
    return weight * tf.reduce_mean(tf.square(norms - 1.0))


def get_gan_loss(gan_mode):
    """Looks up an adversarial loss by name.

    Args:
        gan_mode: str, one of ``GAN_LOSSES`` (``"lsgan"``, ``"vanilla"`` or ``"wgangp"``).

    Returns:
        A function ``(logits, target_is_real) -> scalar``.
    """
    if gan_mode not in GAN_LOSSES:
        raise ValueError(
            f"Unknown gan_mode {gan_mode!r}; expected one of {sorted(GAN_LOSSES)}. "
            f"Received: gan_mode={gan_mode!r}"
        )
    return GAN_LOSSES[gan_mode]


def l1_loss(predicted, target):
    """Mean absolute error, used for the cycle-consistency and identity terms.

    Args:
        predicted: tensor, reconstructed or mapped images.
        target: tensor of the same shape, the original images.

    Returns:
        A scalar tensor.
    """
    return ops.mean(ops.abs(ops.cast(predicted, "float32") - ops.cast(target, "float32")))
