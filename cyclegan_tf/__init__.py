"""cyclegan_tf: the reference CycleGAN as a Keras 3 model, trained with ``fit`` on tf.data."""

from cyclegan_tf.image_pool import ImagePool
from cyclegan_tf.layers import ReflectionPadding2D, instance_norm
from cyclegan_tf.model import CycleGAN, default_optimizer
from cyclegan_tf.models import build_discriminator, patch_discriminator, resnet_generator
from cyclegan_tf.schedules import LinearDecayAfter

__version__ = "0.1.0"

__all__ = [
    "CycleGAN",
    "ImagePool",
    "LinearDecayAfter",
    "ReflectionPadding2D",
    "build_discriminator",
    "default_optimizer",
    "instance_norm",
    "patch_discriminator",
    "resnet_generator",
]
