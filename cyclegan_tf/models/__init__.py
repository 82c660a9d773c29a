"""Generator and discriminator networks."""

from cyclegan_tf.models.discriminators import (
    DISCRIMINATORS,
    build_discriminator,
    global_discriminator,
    patch_discriminator,
)
from cyclegan_tf.models.generators import ResidualBlock, resnet_generator

__all__ = [
    "DISCRIMINATORS",
    "ResidualBlock",
    "build_discriminator",
    "global_discriminator",
    "patch_discriminator",
    "resnet_generator",
]
