"""The first Ctrl-C or SIGTERM asks for a stop after the current step; a second one stops at once."""

import os
import signal
import time

import pytest

from cyclegan_tf.training.interruption import StopSignals, TrainingInterrupted


def _wait_for(condition, seconds=5):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize(
    "signum, second", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_the_first_signal_asks_and_the_second_stops_at_once(signum, second):
    exits = []
    with StopSignals(grace=30, exit_process=exits.append) as stop:
        os.kill(os.getpid(), signum)
        time.sleep(0.1)  # the handler runs between two bytecodes, here
        assert stop.requested == signum
        with pytest.raises(second) as info:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # interrupted by the handler
        if second is SystemExit:
            assert info.value.code == 143
    assert exits == []  # closed in time: the watcher did nothing
    assert signal.getsignal(signum) is not stop._handle


@pytest.mark.parametrize(
    "signum, second", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_an_error_a_library_makes_of_the_second_signal_is_still_the_stop(signum, second):
    # TensorFlow turns a KeyboardInterrupt raised inside its tensor conversion into a ValueError
    # (seen when the second Ctrl-C lands while a SavedModel is traced): the command must still
    # stop as a second Ctrl-C does, not fail with that error.
    with pytest.raises(second):
        with StopSignals(grace=30, exit_process=lambda code: None):
            os.kill(os.getpid(), signum)
            time.sleep(0.1)
            try:
                os.kill(os.getpid(), signum)
                time.sleep(5)
            except BaseException as error:
                raise ValueError("Tried to convert 'shape' to a tensor and failed.") from error
    with pytest.raises(ValueError):  # without a second signal, an error is an error
        with StopSignals(grace=30, exit_process=lambda code: None):
            os.kill(os.getpid(), signum)
            time.sleep(0.1)
            raise ValueError("a real failure")


def test_the_watcher_ends_a_process_whose_main_thread_does_not_stop():
    exits = []
    stop = StopSignals(grace=0.2, exit_process=exits.append).install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(lambda: exits)
        assert exits == [143]  # as if the main thread were stuck in TensorFlow
    finally:
        stop.close()


def test_closing_before_the_grace_ends_stops_the_watcher():
    exits = []
    stop = StopSignals(grace=0.5, exit_process=exits.append).install()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.1)
    stop.close()
    time.sleep(1)
    assert exits == [] and stop.requested == signal.SIGINT


def test_training_interrupted_says_where_and_how_to_resume():
    stopped = TrainingInterrupted(signal.SIGTERM, "epoch 2, step 3")
    assert isinstance(stopped, KeyboardInterrupt) and stopped.exit_code == 143
    assert stopped.message == "interrupted at epoch 2, step 3; run the same command to resume"
