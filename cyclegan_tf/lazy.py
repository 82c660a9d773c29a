"""Imports deferred to first use, so that every command parses its arguments before TensorFlow loads.

Importing TensorFlow takes about 5 s; a command's ``--help`` or a flag error should not wait for it.

* ``LazyModule("tensorflow")`` stands for a module that a module uses only inside its functions:
  ``tf = LazyModule("tensorflow")`` instead of ``import tensorflow as tf``, and the first ``tf.X``
  imports it.
* ``lazy_exports(__name__, {...})`` gives a package ``__init__`` the ``__getattr__`` and ``__dir__``
  of PEP 562: the names it exports are imported from their modules on first use, so importing one
  light module of the package (``cyclegan_tf.data.preprocess``) does not import the others.

Bottom layer: imports nothing of this package.
"""

import importlib
import types


class LazyModule(types.ModuleType):
    """A module imported on the first access to one of its attributes.

    Args:
        name: str, the module's full name (``"tensorflow"``).

    Example:
        >>> tf = LazyModule("tensorflow")  # nothing imported yet
        >>> tf.constant(1).numpy()  # doctest: +SKIP
        1
    """

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_exports(package, exports):
    """The ``__getattr__`` and ``__dir__`` (PEP 562) of a package whose names load on first use.

    Args:
        package: str, the package's ``__name__``.
        exports: dict, each exported name to the module that defines it.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's top level.

    Example:
        ```python
        __getattr__, __dir__ = lazy_exports(__name__, {"TrainConfig": "cyclegan_tf.training.config"})
        ```
    """

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
