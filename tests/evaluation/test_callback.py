"""Which epochs ``FidCallback`` scores: per ``fit``, or per training for a resumable run."""

import numpy as np

from cyclegan_tf.evaluation import FidCallback


def _callback(**kwargs):
    images = [np.zeros((8, 8, 3), np.uint8)] * 2
    callback = FidCallback(images, np.zeros((2, 4)), inception=None, every=2, **kwargs)
    callback.set_params({"epochs": 5})
    return callback


def test_a_resumed_training_scores_the_epochs_an_uninterrupted_one_does():
    # Epochs 0..4 of a training of 5: the first, every 2nd and the last, whichever fit trains them.
    training = _callback(epochs=5)
    assert [training._due(epoch) for epoch in range(5)] == [True, True, False, True, True]
    assert not _callback(epochs=5)._due(2)  # the first of a resumed fit, not of the training
    # Without the training's epochs, the first epoch of each fit is scored (Keras' CSVLogger
    # fixes its columns there).
    assert _callback()._due(2)
