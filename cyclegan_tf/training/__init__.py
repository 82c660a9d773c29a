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

from cyclegan_tf import _deprecated
from cyclegan_tf.training.backup import BackupStore, BackupUnusable
from cyclegan_tf.training.callbacks import (
    EpochCsvLog,
    ExportGenerators,
    ResumableBackup,
    SampleGrid,
    SaveNetworks,
    StepLossScalars,
    StopOnNonFiniteLoss,
    TrainingDiverged,
    TrainingLog,
)
from cyclegan_tf.training.config import TrainConfig
from cyclegan_tf.training.interruption import StopSignals, TrainingInterrupted
from cyclegan_tf.training.report import write_report
from cyclegan_tf.training.run_folder import RunFolder
from cyclegan_tf.training.trainer import train

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
    # ``cyclegan_tf.training`` was one module before 0.2: its other names now live in ``trainer``.
    trainer = importlib.import_module("cyclegan_tf.training.trainer")
    if hasattr(trainer, name):
        _deprecated.warn_renamed(
            f"cyclegan_tf.training.{name}", f"cyclegan_tf.training.trainer.{name}"
        )
        return getattr(trainer, name)
    raise AttributeError(f"module 'cyclegan_tf.training' has no attribute {name!r}")
