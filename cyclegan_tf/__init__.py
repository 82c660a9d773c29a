"""cyclegan_tf: the reference CycleGAN as a Keras 3 model, trained with ``fit`` on tf.data.

The package's folders are its layers, bottom to top (``docs/architecture.md`` has the map):
``io``, ``pixels``, ``errors``, ``_keras_compat`` and ``model_store``; ``models/``; ``data/``;
``inference/``; ``export/``; ``evaluation/``; ``training/`` and ``serving/``; ``tools/``; ``cli/``.
A module imports only from layers below its own.

This module is the public API: the networks and the training model, and ``TrainConfig`` and
``train``. Every name loads on first use (PEP 562), so that the commands answer ``--help`` without
loading TensorFlow and the server, which never imports training code, can import the package. The
networks register with Keras when ``cyclegan_tf.models`` is imported, which the first use of any of
them does (``cyclegan_tf.CycleGAN``, ``inference.load_generator``...); to open a saved network with
``keras.models.load_model`` directly, ``import cyclegan_tf.models`` first.

Example:
    ```python
    import cyclegan_tf

    model = cyclegan_tf.CycleGAN(ngf=16, ndf=16, n_res_blocks=3, image_size=64)
    model.compile()
    config = cyclegan_tf.TrainConfig(dataset="synthetic", image_size=64, load_size=72)
    ```
"""

from cyclegan_tf import _deprecated
from cyclegan_tf.lazy import lazy_exports

__version__ = "0.1.0"

_MODELS = "cyclegan_tf.models"
# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "CycleGAN": _MODELS,
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
