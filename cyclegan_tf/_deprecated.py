"""The module paths of 0.1 that moved in the regrouping, kept working for one release.

Importing an old path (``cyclegan_tf.callbacks``, ``cyclegan_tf.config``...) warns with a
``DeprecationWarning`` naming the new path and gives the module that now lives there, so old scripts
keep running. ``cyclegan_tf/__init__.py`` installs the finder; nothing else uses this module.

Bottom layer: imports nothing of this package until an old path is imported.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# Old module path -> where it lives now.
RENAMED_MODULES = {
    "cyclegan_tf.benchmark": "cyclegan_tf.tools.benchmark",
    "cyclegan_tf.callbacks": "cyclegan_tf.training.callbacks",
    "cyclegan_tf.config": "cyclegan_tf.training.config",
    "cyclegan_tf.distribute": "cyclegan_tf.training.distribute",
    "cyclegan_tf.export.dependencies": "cyclegan_tf.errors",
    "cyclegan_tf.export.versions": "cyclegan_tf.model_store",
    "cyclegan_tf.file_translation": "cyclegan_tf.inference.file_translation",
    "cyclegan_tf.image_pool": "cyclegan_tf.models.image_pool",
    "cyclegan_tf.layers": "cyclegan_tf.models.layers",
    "cyclegan_tf.losses": "cyclegan_tf.models.losses",
    "cyclegan_tf.model": "cyclegan_tf.models.cyclegan",
    "cyclegan_tf.report": "cyclegan_tf.training.report",
    "cyclegan_tf.run_folder": "cyclegan_tf.training.run_folder",
    "cyclegan_tf.runtime_benchmark": "cyclegan_tf.tools.runtime_benchmark",
    "cyclegan_tf.schedules": "cyclegan_tf.models.schedules",
    "cyclegan_tf.tiled_benchmark": "cyclegan_tf.tools.tiled_benchmark",
    "cyclegan_tf.torch_import": "cyclegan_tf.tools.torch_import",
}


def warn_renamed(old, new, stacklevel=3):
    """Warns that ``old`` is now ``new`` (a ``DeprecationWarning``, removed in the next release)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def format_function(module_name, export_format, name):
    """``<format module>.export``/``.suffix`` of 0.1: now ``export.FORMATS[name].export``/``.suffix``.

    For a format module's ``__getattr__``; any other name raises ``AttributeError``.
    """
    if name not in ("export", "suffix"):
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    warn_renamed(
        f"{module_name}.{name}",
        f"cyclegan_tf.export.FORMATS[{export_format.name!r}].{name}",
    )
    return getattr(export_format, name)


class RenamedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path of ``RENAMED_MODULES`` to the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in RENAMED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = RENAMED_MODULES[spec.name]
        warn_renamed(spec.name, new, stacklevel=6)
        return importlib.import_module(new)

    def exec_module(self, module):
        del module  # the module at the new path is already executed


def install():
    """Adds the finder to ``sys.meta_path`` once."""
    if not any(isinstance(finder, RenamedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(RenamedModuleFinder())
