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
import importlib.abc
import importlib.util
import sys
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


def after_import(name, callback):
    """Calls ``callback()`` once the module ``name`` is imported: now if it is already, else after.

    The package registers its networks with Keras this way: at no cost to a command that never loads
    Keras, and before a user's ``keras.models.load_model`` needs them.

    Args:
        name: str, a top-level module's name (``"keras"``).
        callback: callable without arguments, called once.
    """
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _AfterImport(name, callback))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for one module, wraps the real loader to call back once it has run."""

    def __init__(self, name, callback):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once, and the real finders find the module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, callback = spec.loader.exec_module, self.callback

        def exec_then_call_back(module):
            exec_module(module)
            callback()

        spec.loader.exec_module = exec_then_call_back
        return spec
