"""``ResumableBackup``: numbered, durable backups of the whole training state, and graceful stops."""

import math
import signal

import numpy as np

from cyclegan_tf import _keras_compat
from cyclegan_tf.training import distribute
from cyclegan_tf.training.backup import BackupStore
from cyclegan_tf.training.interruption import TrainingInterrupted


class ResumableBackup(_keras_compat.BackupAndRestore):
    """Backs up the training state every ``save_freq`` steps and at every epoch end, durably.

    Each backup is a new, numbered one in ``backup_dir`` (``backup.BackupStore``): the model's state
    (networks, optimizers, image pools), then a manifest with where training was, the weights file's
    size and checksum and the loss trackers of the epoch so far. A backup counts only once all of it
    is on the disk, and the previous one stays until then, so a run killed at any instant resumes.

    ``batch`` in a manifest is the 0-based index of the last step of epoch ``epoch`` included, and -1
    for a backup at the start of ``epoch``: a resumed run trains exactly the remaining steps of an
    interrupted epoch (``trainer.TrainingSegment``), and its epoch's losses continue from the
    backed-up trackers.

    With ``stop`` (an ``interruption.StopSignals``), a Ctrl-C or SIGTERM stops training after the
    current step: this callback backs that step up and raises ``TrainingInterrupted``. In a
    multi-worker run, every worker stops after the same step.

    In a user's own ``fit``, the newest usable backup is loaded when training starts; ``fit`` then
    starts at its ``initial_epoch`` argument (``_keras_compat.BackupAndRestore``), which
    ``resume_position(backup_dir)`` gives.

    Args:
        backup_dir: str, the backup folder.
        save_freq: ``"epoch"`` or int, steps between backups within an epoch.
        first_batch: int, steps of the first epoch done before this ``fit`` (a run resumed mid-epoch).
            Defaults to 0.
        delete_checkpoint: bool, delete the backups when ``fit`` ends. The trainer keeps them (False)
            until the networks, exports and report are written. Defaults to True.
        restore: bool, load the newest usable backup when ``fit`` starts; False when the caller has
            loaded one (``resumed``). Defaults to True.
        resumed: ``backup.Backup`` or None, the backup the caller loaded into the model.
        stop: ``interruption.StopSignals`` or None, whose requests stop training after a step.
        record: dict or None, kept in every manifest (the trainer keeps the run's options there).
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        first_batch=0,
        delete_checkpoint=True,
        restore=True,
        resumed=None,
        stop=None,
        record=None,
    ):
        super().__init__(backup_dir, save_freq, delete_checkpoint=delete_checkpoint)
        self.store = BackupStore(backup_dir)
        self.first_batch = first_batch
        self.restore = restore
        self.resumed = resumed
        self.stop = stop
        self.record = dict(record or {})
        self.last_backup = None
        self._offset = first_batch
        self._saved_after = None
        self._first_epoch = None

    def _load_model(self):
        if self.restore:
            self.resumed = self.store.restore(self.model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last_batch_seen = self.first_batch - 1
        self._offset = self.first_batch
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self._first_epoch is None:
            self._first_epoch = epoch
        resumed = self.resumed
        if (
            resumed is not None
            and resumed.position == (epoch, self.first_batch)
            and resumed.batch >= 0
        ):
            # fit reset the trackers just before this epoch; the resumed epoch continues its means.
            _set_tracker_state(self.model, resumed.manifest.get("trackers", {}))
        first = self.first_batch if epoch == self._first_epoch else 0
        where = f"epoch {epoch + 1}, step {first}" if first else f"the start of epoch {epoch + 1}"
        self._stop_if_asked(where, backup=False)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= ((self.params or {}).get("steps") or math.inf):
            # An epoch's last step: its backup (and a stop) wait for the epoch's end, so that a
            # resumed run never skips what an epoch's end writes (CSV row, networks, exports).
            return
        super().on_train_batch_end(self._offset + batch, logs)
        where = f"epoch {self._current_epoch + 1}, step {self._offset + batch + 1}"
        self._stop_if_asked(where, backup=True)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = -1
        self._batches_seen_since_last_saving = 0
        self._offset = 0
        self._save_model()

    def _save_model(self):
        position = (self._current_epoch, self._last_batch_seen)
        if self._saved_after == position:
            return
        record = {
            **self.record,
            "step": int(self.model.optimizer.iterations.numpy()),
            "trackers": _tracker_state(self.model),
        }
        self.last_backup = self.store.write(
            self.model.save_weights, self._current_epoch, self._last_batch_seen, record
        )
        self._saved_after = position

    def _stop_if_asked(self, where, backup):
        if self.stop is None:
            return
        asked = self.stop.requested is not None
        if not distribute.any_worker(self.model.distribute_strategy, asked):
            return
        if backup:
            self._save_model()
        if not asked:
            where += " (another worker was asked to stop)"
        raise TrainingInterrupted(self.stop.requested or signal.SIGTERM, where)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            self.store.delete()

    @staticmethod
    def resume_position(backup_dir):
        """``(epoch, steps done)`` of the newest usable backup in ``backup_dir``; ``(0, 0)`` if none."""
        usable, _ = BackupStore(backup_dir).usable()
        return usable[0].position if usable else (0, 0)


def _tracker_state(model):
    """``{metric name: [variable values]}`` of a model's metrics (the epoch's running means)."""
    return {
        metric.name: [float(np.asarray(variable)) for variable in metric.variables]
        for metric in model.metrics
    }


def _set_tracker_state(model, state):
    for metric in model.metrics:
        values = state.get(metric.name)
        if values is not None and len(values) == len(metric.variables):
            for variable, value in zip(metric.variables, values):
                variable.assign(value)
