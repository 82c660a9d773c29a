"""cyclegan_tf: the reference CycleGAN as a Keras 3 model, trained with ``fit`` on tf.data.

The package's folders are its layers, bottom to top (``docs/architecture.md`` has the map):
``io``, ``pixels``, ``errors``, ``_keras_compat`` and ``model_store``; ``models/``; ``data/``;
``inference/``; ``export/``; ``evaluation/``; ``training/`` and ``serving/``; ``tools/``; ``cli/``.
A module imports only from layers below its own.

This module is the public API: the networks and the training objectives, and ``TrainConfig`` and
``train``. Every name loads on first use (PEP 562), so that the commands answer ``--help`` without
loading TensorFlow and the server, which never imports training code, can import the package.
Importing the package registers the networks with Keras as soon as Keras is imported (at once if it
already is), so ``keras.models.load_model`` opens the saved networks after ``import cyclegan_tf``.

Example:
    ```python
    import cyclegan_tf

    model = cyclegan_tf.CycleGAN(ngf=16, ndf=16, n_res_blocks=3, image_size=64)
    model.compile()
    config = cyclegan_tf.TrainConfig(dataset="synthetic", image_size=64, load_size=72)
    ```
"""

import importlib
import sys

from cyclegan_tf import _deprecated
from cyclegan_tf.lazy import after_import, lazy_exports

__version__ = "0.1.0"

_MODELS = "cyclegan_tf.models"
# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "CUT": _MODELS,
    "CycleGAN": _MODELS,
    "FastCUT": _MODELS,
    "GAN": _MODELS,
    "ImagePool": _MODELS,
    "LinearDecayAfter": _MODELS,
    "ReflectionPadding2D": _MODELS,
    "ResidualBlock": _MODELS,
    "ResnetGenerator": _MODELS,
    "build_discriminator": _MODELS,
    "default_optimizer": _MODELS,
    "global_discriminator": _MODELS,
    "instance_norm": _MODELS,
    "patch_discriminator": _MODELS,
    "resnet_generator": _MODELS,
    "TrainConfig": "cyclegan_tf.training.config",
    "train": "cyclegan_tf.training.trainer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

_deprecated.install()


def _register_networks():
    """Imports ``cyclegan_tf.models``, whose classes register with Keras (``keras.saving``).

    Called once Keras is loaded. Skipped when Keras was loaded from inside a module of this package
    that is still being imported (the models may need it complete): that import goes on to load what it
    uses, and the first name taken from ``cyclegan_tf.models`` registers the rest.
    """
    initializing = [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("cyclegan_tf.")
        and getattr(getattr(module, "__spec__", None), "_initializing", False)
    ]
    if not initializing:
        importlib.import_module(_MODELS).register()


after_import("keras", _register_networks)

__all__ = [
    "CUT",
    "CycleGAN",
    "FastCUT",
    "GAN",
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
