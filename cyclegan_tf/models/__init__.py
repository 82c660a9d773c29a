"""The networks and the training objectives: ``CycleGAN``, ``CUT``, ``FastCUT`` and their parts.

Layers, generators, discriminators, losses, the image pool, the learning-rate schedule, the
PatchNCE projection and loss, the ``GAN`` base that every objective extends, and the objectives
themselves with their ``train_step``s (registered by name in ``objectives.OBJECTIVES``).

Layer: above the bottom layer (``io``, ``pixels``, ``errors``, ``_keras_compat``, ``model_store``),
which is all it may import. Everything that runs or trains a network imports it from here.
"""

from cyclegan_tf.models.cut import CUT, FastCUT
from cyclegan_tf.models.cyclegan import CycleGAN
from cyclegan_tf.models.discriminators import (
    DISCRIMINATORS,
    build_discriminator,
    global_discriminator,
    patch_discriminator,
)
from cyclegan_tf.models.gan import GAN, default_optimizer
from cyclegan_tf.models.generators import ResidualBlock, ResnetGenerator, resnet_generator
from cyclegan_tf.models.image_pool import ImagePool
from cyclegan_tf.models.layers import (
    BlurPool2D,
    BlurUpsample2D,
    ReflectionPadding2D,
    instance_norm,
)
from cyclegan_tf.models.objectives import OBJECTIVES, get_objective
from cyclegan_tf.models.patchnce import PatchProjection, patch_nce_loss
from cyclegan_tf.models.schedules import LinearDecayAfter

__all__ = [
    "CUT",
    "DISCRIMINATORS",
    "GAN",
    "OBJECTIVES",
    "BlurPool2D",
    "BlurUpsample2D",
    "CycleGAN",
    "FastCUT",
    "PatchProjection",
    "get_objective",
    "patch_nce_loss",
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
