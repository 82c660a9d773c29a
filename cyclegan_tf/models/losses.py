"""The CycleGAN objective: adversarial (LSGAN or vanilla), cycle-consistency and identity terms.

Each function returns the mean over its inputs, like the reference's ``nn.MSELoss`` / ``nn.L1Loss`` /
``nn.BCEWithLogitsLoss`` with their default ``reduction="mean"``.
"""

import keras
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


GAN_LOSSES = {"lsgan": lsgan_loss, "vanilla": vanilla_loss}


def get_gan_loss(gan_mode):
    """Looks up an adversarial loss by name.

    Args:
        gan_mode: str, one of ``GAN_LOSSES`` (``"lsgan"`` or ``"vanilla"``).

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
