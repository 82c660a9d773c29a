"""Training: options (``TrainConfig``), ``train()``, its callbacks, the run folder and distribution.

Layer: above ``models/``, ``data/``, ``inference/``, ``export/`` and ``evaluation/`` (a run exports
its generators and scores them), which it may import with the bottom layer; never ``serving/``,
``tools/`` or ``cli/``.

Example:
    ```python
    from cyclegan_tf.training import TrainConfig, train

    model, history = train(TrainConfig(dataset="synthetic", image_size=64, load_size=72, epochs=2))
    ```
"""

import importlib
import importlib.util

from cyclegan_tf import _deprecated
from cyclegan_tf.lazy import lazy_exports

# Each name and its module, imported on first use (PEP 562).
_EXPORTS = {
    "BackupStore": "cyclegan_tf.training.backup",
    "BackupUnusable": "cyclegan_tf.training.backup",
    "EpochCsvLog": "cyclegan_tf.training.callbacks",
    "ExportGenerators": "cyclegan_tf.training.callbacks",
    "ResumableBackup": "cyclegan_tf.training.callbacks",
    "SampleGrid": "cyclegan_tf.training.callbacks",
    "SaveNetworks": "cyclegan_tf.training.callbacks",
    "StepLossScalars": "cyclegan_tf.training.callbacks",
    "StopOnNonFiniteLoss": "cyclegan_tf.training.callbacks",
    "TrainingDiverged": "cyclegan_tf.training.callbacks",
    "TrainingLog": "cyclegan_tf.training.callbacks",
    "TrainConfig": "cyclegan_tf.training.config",
    "StopSignals": "cyclegan_tf.training.interruption",
    "TrainingInterrupted": "cyclegan_tf.training.interruption",
    "write_report": "cyclegan_tf.training.report",
    "RunFolder": "cyclegan_tf.training.run_folder",
    "train": "cyclegan_tf.training.trainer",
}
_exported, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BackupStore",
    "BackupUnusable",
    "EpochCsvLog",
    "ExportGenerators",
    "ResumableBackup",
    "RunFolder",
    "SampleGrid",
    "SaveNetworks",
    "StepLossScalars",
    "StopOnNonFiniteLoss",
    "StopSignals",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingLog",
    "train",
    "write_report",
]


def __getattr__(name):
    if name in _EXPORTS:
        return _exported(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # A module of this package not imported yet (``from cyclegan_tf.training import distribute``
        # asks here first): the import system loads it.
        raise AttributeError(name)
    # ``cyclegan_tf.training`` was one module before 0.2: its other names now live in ``trainer``.
    trainer = importlib.import_module("cyclegan_tf.training.trainer")
    if hasattr(trainer, name):
        _deprecated.warn_renamed(
            f"cyclegan_tf.training.{name}", f"cyclegan_tf.training.trainer.{name}"
        )
        return getattr(trainer, name)
    raise AttributeError(f"module 'cyclegan_tf.training' has no attribute {name!r}")
