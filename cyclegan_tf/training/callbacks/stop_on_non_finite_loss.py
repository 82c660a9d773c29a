"""``StopOnNonFiniteLoss``: a diverged training stops before anything is saved from it."""

import math

import keras


class TrainingDiverged(RuntimeError):
    """Raised by ``StopOnNonFiniteLoss`` when a loss becomes NaN or infinite.

    Attributes:
        message: str, one line: which loss, when, and (from the trainer) what was kept.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss, before anything is saved from that state.

    Unlike ``keras.callbacks.TerminateOnNaN`` it raises: with ``stop_training`` the epoch would still end
    normally and the networks and the backup would be written from the diverged weights. Put it first in
    the callback list so that no later callback sees the bad step.

    Args:
        keys: tuple of str, the logged losses to watch. Defaults to ``("d_loss", "g_loss")``, the
            discriminator's and the generator's whole objective, which every objective reports.
    """

    def __init__(self, keys=("d_loss", "g_loss")):
        super().__init__()
        self.keys = keys
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for key in self.keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                step = int(self.model.optimizer.iterations.numpy())
                raise TrainingDiverged(
                    f"{key} became {float(value)} at step {step} (epoch {self._epoch + 1}, batch "
                    f"{batch + 1}); training stopped before anything was saved from that step"
                )
