"""``TrainingLog``: progress lines in the seed repository's format."""

import datetime
import logging
import time

import keras

from cyclegan_tf import io

logger = logging.getLogger(__name__)


class TrainingLog(keras.callbacks.Callback):
    """Appends progress lines in the seed repository's format to a text file (and the Python log).

    ``[Epoch 50/50] [Batch 1019/1019] [D loss: 0.168199] [G loss: 1.151066, adv: 0.407010,
    cycle: 0.026193, identity: 0.096426] ETA: 0:03:12``

    The terms after the generator's loss are the objective's summary losses (``SUMMARY_KEYS`` after
    ``d_loss`` and ``g_loss``): ``adv, cycle, identity`` for CycleGAN, ``adv, nce, nce_y`` for CUT.

    Args:
        path: str, the log file (appended to, so a resumed run keeps its history).
        every: int, write a line every N batches and at each epoch end. Defaults to 100.
        first_batch: int, batches of the first epoch done before this ``fit`` (a run resumed
            mid-epoch), so that lines number batches within the whole epoch. Defaults to 0.
        epochs: int or None, the epochs of the whole training, when a ``fit`` covers only part of
            them (its ``epochs`` otherwise). Defaults to None.
    """

    def __init__(self, path, every=100, first_batch=0, epochs=None):
        super().__init__()
        self.path = path
        self.every = every
        self.first_batch = first_batch
        self.epochs = epochs
        self._offset = first_batch
        self._epoch = 0
        self._start = None
        self._done = 0

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._done = 0
        if io.dirname(self.path):
            io.makedirs(io.dirname(self.path))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if self.every and (self._offset + batch + 1) % self.every == 0:
            self._write(self._offset + batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        steps = self._steps()
        if not (self.every and steps % self.every == 0):  # else the last batch's line is there
            self._write(steps, logs)
        self._offset = 0

    def _steps(self):
        return (self.params.get("steps") or 0) + self._offset

    def _write(self, batch, logs):
        logs = logs or {}
        epochs = self.epochs or self.params.get("epochs") or 0
        steps = self._steps()
        terms = "".join(f", {key}: {_value(logs, key)}" for key in self.model.SUMMARY_KEYS[2:])
        line = (
            f"[Epoch {self._epoch + 1}/{epochs}] [Batch {batch}/{steps}] "
            f"[D loss: {_value(logs, 'd_loss')}] [G loss: {_value(logs, 'g_loss')}{terms}] "
            f"ETA: {self._eta(batch)}"
        )
        logger.info(line)
        with io.open_file(self.path, "a") as f:
            f.write(line + "\n")

    def _eta(self, batch):
        epochs = self.epochs or self.params.get("epochs") or 0
        steps = self.params.get("steps") or 0
        remaining = (epochs - self._epoch - 1) * steps + (steps - batch)
        if not self._done:
            return "unknown"
        seconds = (time.monotonic() - self._start) / self._done * max(remaining, 0)
        return str(datetime.timedelta(seconds=round(seconds)))


def _value(logs, key):
    value = logs.get(key)
    return "n/a" if value is None else f"{float(value):.6f}"
