"""Learning-rate schedule of the reference: constant, then linear decay over the last epochs."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class LinearDecayAfter(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then a linear decay over the last ``decay_epochs`` epochs.

    The reference's ``lambda_rule`` with ``epoch_count=1``: during 0-based epoch ``e`` the rate is
    ``initial * (1 - max(0, e + 1 - constant_epochs) / (decay_epochs + 1))``, changing once per epoch. The
    epoch is derived from the optimizer's iteration count, so the rate is right after a resume.

    Args:
        initial_learning_rate: float, the rate of the constant phase.
        epochs: int, total epochs (constant + decay).
        decay_epochs: int, epochs of linear decay at the end; ``0 <= decay_epochs <= epochs``.
        steps_per_epoch: int, optimizer steps per epoch.

    Example:
        >>> schedule = LinearDecayAfter(2e-4, epochs=200, decay_epochs=100, steps_per_epoch=1019)
        >>> float(schedule(100 * 1019)) == 2e-4 * (1 - 1 / 101)
        True
    """

    def __init__(self, initial_learning_rate, epochs, decay_epochs, steps_per_epoch):
        if not 0 <= decay_epochs <= epochs:
            raise ValueError(
                "decay_epochs must be between 0 and epochs. "
                f"Received: decay_epochs={decay_epochs}, epochs={epochs}"
            )
        if steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be positive. Received: {steps_per_epoch}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.epochs = int(epochs)
        self.decay_epochs = int(decay_epochs)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = ops.floor(ops.cast(step, "float32") / self.steps_per_epoch)
        constant_epochs = self.epochs - self.decay_epochs
        progress = ops.maximum(0.0, epoch + 1.0 - constant_epochs) / (self.decay_epochs + 1.0)
        return self.initial_learning_rate * ops.maximum(0.0, 1.0 - progress)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "epochs": self.epochs,
            "decay_epochs": self.decay_epochs,
            "steps_per_epoch": self.steps_per_epoch,
        }
