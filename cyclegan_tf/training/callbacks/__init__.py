"""Keras callbacks of a training run, one module each; each works in a user's own ``model.fit``.

Every callback reads what it needs of the model from its objective's declarations (``models.gan``):
the networks and their files, the generators by direction, the summary losses, the sample columns.
"""

from cyclegan_tf import _deprecated, model_store
from cyclegan_tf.training.callbacks.epoch_csv_log import EpochCsvLog
from cyclegan_tf.training.callbacks.export_generators import ExportGenerators
from cyclegan_tf.training.callbacks.resumable_backup import ResumableBackup
from cyclegan_tf.training.callbacks.sample_grid import (
    GRID_CELL_INCHES,
    GRID_DPI,
    SampleGrid,
    grid_mosaic,
    render_grid,
)
from cyclegan_tf.training.callbacks.save_networks import SaveNetworks
from cyclegan_tf.training.callbacks.step_loss_scalars import StepLossScalars
from cyclegan_tf.training.callbacks.stop_on_non_finite_loss import (
    StopOnNonFiniteLoss,
    TrainingDiverged,
)
from cyclegan_tf.training.callbacks.training_log import TrainingLog

__all__ = [
    "GRID_CELL_INCHES",
    "GRID_DPI",
    "EpochCsvLog",
    "ExportGenerators",
    "ResumableBackup",
    "SampleGrid",
    "SaveNetworks",
    "StepLossScalars",
    "StopOnNonFiniteLoss",
    "TrainingDiverged",
    "TrainingLog",
    "grid_mosaic",
    "render_grid",
]


def __getattr__(name):
    # ``callbacks.save_atomically`` of 0.1 is ``model_store.save_model``.
    if name == "save_atomically":
        _deprecated.warn_renamed(f"{__name__}.{name}", "cyclegan_tf.model_store.save_model")
        return model_store.save_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
