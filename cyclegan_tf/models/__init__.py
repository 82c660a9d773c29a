"""The networks and the training model: ``CycleGAN`` and everything it is made of.

Layers, generators, discriminators, losses, the image pool, the learning-rate schedule and
``CycleGAN`` with its ``train_step``.

Layer: above the bottom layer (``io``, ``pixels``, ``errors``, ``_keras_compat``, ``model_store``),
which is all it may import. Everything that runs or trains a network imports it from here.
"""

from cyclegan_tf.models.cyclegan import CycleGAN, default_optimizer
from cyclegan_tf.models.discriminators import (
    DISCRIMINATORS,
    build_discriminator,
    global_discriminator,
    patch_discriminator,
)
from cyclegan_tf.models.generators import ResidualBlock, ResnetGenerator, resnet_generator
from cyclegan_tf.models.image_pool import ImagePool
from cyclegan_tf.models.layers import ReflectionPadding2D, instance_norm
from cyclegan_tf.models.schedules import LinearDecayAfter

__all__ = [
    "DISCRIMINATORS",
    "CycleGAN",
    "ImagePool",
    "LinearDecayAfter",
    "ReflectionPadding2D",
    "ResidualBlock",
    "ResnetGenerator",
    "build_discriminator",
    "default_optimizer",
    "global_discriminator",
    "instance_norm",
    "patch_discriminator",
    "resnet_generator",
]
