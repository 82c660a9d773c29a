"""cyclegan_tf: the reference CycleGAN as a Keras 3 model, trained with ``fit`` on tf.data.

The package's folders are its layers, bottom to top (``docs/architecture.md`` has the map):
``io``, ``pixels``, ``errors``, ``_keras_compat`` and ``model_store``; ``models/``; ``data/``;
``inference/``; ``export/``; ``evaluation/``; ``training/`` and ``serving/``; ``tools/``; ``cli/``.
A module imports only from layers below its own.

This module is the public API: the networks and the training model (importing the package
registers them with Keras, so ``keras.models.load_model`` opens the saved networks), and
``TrainConfig`` and ``train``, which load on first use so that the server, which never imports
training code, can import the package.

Example:
    ```python
    import cyclegan_tf

    model = cyclegan_tf.CycleGAN(ngf=16, ndf=16, n_res_blocks=3, image_size=64)
    model.compile()
    config = cyclegan_tf.TrainConfig(dataset="synthetic", image_size=64, load_size=72)
    ```
"""

import importlib

from cyclegan_tf import _deprecated
from cyclegan_tf.models import (
    CycleGAN,
    ImagePool,
    LinearDecayAfter,
    ReflectionPadding2D,
    ResidualBlock,
    ResnetGenerator,
    build_discriminator,
    default_optimizer,
    global_discriminator,
    instance_norm,
    patch_discriminator,
    resnet_generator,
)

__version__ = "0.1.0"

# Loaded on first use: the server imports this package and never imports training code.
_TRAINING = {"TrainConfig": "cyclegan_tf.training.config", "train": "cyclegan_tf.training.trainer"}

_deprecated.install()


def __getattr__(name):
    if name in _TRAINING:
        return getattr(importlib.import_module(_TRAINING[name]), name)
    raise AttributeError(f"module 'cyclegan_tf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_TRAINING])


__all__ = [
    "CycleGAN",
    "ImagePool",
    "LinearDecayAfter",
    "ReflectionPadding2D",
    "ResidualBlock",
    "ResnetGenerator",
    "TrainConfig",
    "build_discriminator",
    "default_optimizer",
    "global_discriminator",
    "instance_norm",
    "patch_discriminator",
    "resnet_generator",
    "train",
]
