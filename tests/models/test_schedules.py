import pytest

from cyclegan_tf.models.schedules import LinearDecayAfter


def test_learning_rate_at_epoch_boundaries_follows_the_reference_rule():
    schedule = LinearDecayAfter(2e-4, epochs=10, decay_epochs=4, steps_per_epoch=3)

    def reference(epoch):  # the official lambda_rule with n_epochs=6, n_epochs_decay=4
        return 2e-4 * (1.0 - max(0, epoch + 1 - 6) / float(4 + 1))

    for epoch in range(10):
        for step_in_epoch in (0, 2):
            value = float(schedule(epoch * 3 + step_in_epoch))
            assert value == pytest.approx(reference(epoch), rel=1e-6), epoch
    assert float(schedule(5 * 3)) == pytest.approx(2e-4)
    assert float(schedule(9 * 3)) == pytest.approx(2e-4 / 5)


def test_no_decay_is_constant_and_config_round_trips():
    schedule = LinearDecayAfter(1e-3, epochs=5, decay_epochs=0, steps_per_epoch=2)
    assert [float(schedule(s)) for s in range(10)] == pytest.approx([1e-3] * 10)
    clone = LinearDecayAfter.from_config(schedule.get_config())
    assert clone.get_config() == schedule.get_config()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="decay_epochs=7, epochs=5"):
        LinearDecayAfter(1e-3, epochs=5, decay_epochs=7, steps_per_epoch=2)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        LinearDecayAfter(1e-3, epochs=5, decay_epochs=1, steps_per_epoch=0)
