"""Real interruptions of the training command, each followed by the same command in a new process.

``kill -9`` right after a backup, then SIGTERM and Ctrl-C sent from outside: each rerun continues
exactly, and the run ends bit for bit as the uninterrupted one (``conftest.crash_reference``):
networks, CSV rows, progress lines, exports, report.
"""

import glob
import os
import re
import signal
import subprocess
import time

import pytest

from cyclegan_tf.tools import crash_sweep

pytestmark = pytest.mark.slow

_STOPPED = re.compile(r"cyclegan-train: interrupted at .+; run the same command to resume")


def _manifests(backup):
    return set(glob.glob(os.path.join(backup, "state-*.json")))


def _signal_when(argv, ready, signum, log, timeout=300):
    """Starts the command, sends ``signum`` once ``ready(stderr so far)`` holds; its exit and stderr."""
    with open(log, "w") as err:
        process = crash_sweep.start(argv, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if ready(open(log).read()):
                process.send_signal(signum)
                break
            time.sleep(0.05)
        process.wait(timeout=timeout)
    return process.returncode, open(log).read()


def test_killed_then_terminated_then_interrupted_run_ends_as_an_uninterrupted_one(
    tmp_path, synthetic_dir, crash_reference
):
    argv = crash_sweep.tiny_argv(synthetic_dir, str(tmp_path))
    backup = str(tmp_path / "run" / "backup")
    # kill -9 right after its first mid-epoch backup (the first is the initial one).
    killed = crash_sweep.run_command(argv, fault="after:state-*.json:2:kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # SIGTERM once the rerun has completed a backup of its own (at the end of epoch 1): it stops
    # after the step under way, before the run ends, with a backup.
    before = _manifests(backup)
    returncode, stderr = _signal_when(
        argv, lambda _: _manifests(backup) - before, signal.SIGTERM, tmp_path / "term.log"
    )
    assert returncode == 143, stderr[-2000:]
    assert "Received SIGTERM: stopping after this step" in stderr
    assert _STOPPED.fullmatch(stderr.strip().splitlines()[-1]), stderr[-2000:]
    # Ctrl-C as the next rerun starts (its handlers are in place once it loads the images).
    returncode, stderr = _signal_when(
        argv, lambda text: "Training images:" in text, signal.SIGINT, tmp_path / "int.log"
    )
    assert returncode == 130, stderr[-2000:]
    assert "Resuming " in stderr
    assert _STOPPED.fullmatch(stderr.strip().splitlines()[-1]), stderr[-2000:]
    done = crash_sweep.run_command(argv)
    assert done.returncode == 0, done.stderr[-2000:]
    _, reference = crash_reference
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
