"""The networks and the training objectives: ``CycleGAN``, ``CUT``, ``FastCUT`` and their parts.

Layers, generators, discriminators, losses, the image pool, the learning-rate schedule, the
PatchNCE projection and loss, the ``GAN`` base that every objective extends, and the objectives
themselves with their ``train_step``s (registered by name in ``objectives.OBJECTIVES``).

Layer: above the bottom layer (``io``, ``pixels``, ``errors``, ``_keras_compat``, ``model_store``),
which is all it may import. Everything that runs or trains a network imports it from here. Names load
on first use (PEP 562), and the first one registers every class with Keras (``register``).
"""

import importlib

from cyclegan_tf.lazy import lazy_exports

# Each name and its module, imported on first use (PEP 562): ``objectives`` and ``initializers`` are
# read by the command-line options without TensorFlow.
_EXPORTS = {
    "CUT": "cyclegan_tf.models.cut",
    "FastCUT": "cyclegan_tf.models.cut",
    "CycleGAN": "cyclegan_tf.models.cyclegan",
    "DISCRIMINATORS": "cyclegan_tf.models.discriminators",
    "build_discriminator": "cyclegan_tf.models.discriminators",
    "global_discriminator": "cyclegan_tf.models.discriminators",
    "patch_discriminator": "cyclegan_tf.models.discriminators",
    "GAN": "cyclegan_tf.models.gan",
    "default_optimizer": "cyclegan_tf.models.gan",
    "ResidualBlock": "cyclegan_tf.models.generators",
    "ResnetGenerator": "cyclegan_tf.models.generators",
    "resnet_generator": "cyclegan_tf.models.generators",
    "ImagePool": "cyclegan_tf.models.image_pool",
    "BlurPool2D": "cyclegan_tf.models.layers",
    "BlurUpsample2D": "cyclegan_tf.models.layers",
    "ReflectionPadding2D": "cyclegan_tf.models.layers",
    "instance_norm": "cyclegan_tf.models.layers",
    "OBJECTIVES": "cyclegan_tf.models.objectives",
    "get_objective": "cyclegan_tf.models.objectives",
    "PatchProjection": "cyclegan_tf.models.patchnce",
    "patch_nce_loss": "cyclegan_tf.models.patchnce",
    "LinearDecayAfter": "cyclegan_tf.models.schedules",
    "UnetGenerator": "cyclegan_tf.models.unet",
}
_exported, __dir__ = lazy_exports(__name__, _EXPORTS)


def register():
    """Imports every module of the package, so that each of its classes is registered with Keras.

    ``keras.models.load_model`` can then open any network this package saved. Importing
    ``cyclegan_tf`` calls it once Keras is loaded; the first name taken from this package calls it too.
    """
    for module in sorted(set(_EXPORTS.values())):
        importlib.import_module(module)


def __getattr__(name):
    if name in _EXPORTS:
        register()
    return _exported(name)


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
    "UnetGenerator",
    "build_discriminator",
    "default_optimizer",
    "global_discriminator",
    "instance_norm",
    "patch_discriminator",
    "resnet_generator",
]
