"""``StepLossScalars``: each step's losses as TensorBoard scalars."""

import keras
import numpy as np


class StepLossScalars(keras.callbacks.Callback):
    """TensorBoard scalars of each step's losses, not the epoch's running mean (``logs/steps/``).

    Keras reports the mean of an epoch so far after each batch; a GAN's losses are watched step by step.
    The value of step ``k`` of an epoch is recovered exactly from the running means ``m_k`` and
    ``m_{k-1}``: ``k * m_k - (k - 1) * m_{k-1}``.

    Args:
        log_dir: str, the folder of the event files (``RUN/logs/steps``).
        keys: tuple of str or None, the logged losses. Defaults to the objective's summary losses
            (``SUMMARY_KEYS``).
        every: int, write every N steps. Defaults to 1.
    """

    def __init__(self, log_dir, keys=None, every=1):
        super().__init__()
        self.log_dir = log_dir
        self.keys = keys
        self.every = every
        self._writer = None
        self._previous = {}

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        values = {}
        for key in self.keys or self.model.SUMMARY_KEYS:
            if logs.get(key) is None:
                continue
            mean = float(np.mean(logs[key]))
            values[key] = (batch + 1) * mean - batch * self._previous.get(key, 0.0)
            self._previous[key] = mean
        if self.every and step % self.every == 0 and values:
            with self._writer.as_default():
                for key, value in values.items():
                    tf.summary.scalar(key, value, step=step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
