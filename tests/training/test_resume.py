"""Real interruptions of the training command, each followed by the same command in a new process.

``kill -9`` right after a backup, then SIGTERM and Ctrl-C sent from outside while it trains: each
rerun continues exactly, and the run ends bit for bit as the uninterrupted one
(``conftest.crash_reference``): networks, CSV rows, progress lines, exports, report.
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


def _signal_after_a_new_backup(argv, backup, signum, timeout=300):
    """Starts the command and sends ``signum`` once it has completed a backup of its own."""
    before = _manifests(backup)
    process = subprocess.Popen(
        crash_sweep.command(argv),
        env=crash_sweep._environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if _manifests(backup) - before:
            process.send_signal(signum)
            break
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def test_killed_then_terminated_then_interrupted_run_ends_as_an_uninterrupted_one(
    tmp_path,
    synthetic_dir,
    crash_reference,  # noqa: F811 - the fixture
):
    argv = crash_sweep.tiny_argv(synthetic_dir, str(tmp_path))
    backup = str(tmp_path / "run" / "backup")
    killed = crash_sweep.run_command(argv, fault="after:state-*.json:3:kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        returncode, stderr = _signal_after_a_new_backup(argv, backup, signum)
        assert returncode == code, stderr[-2000:]
        assert "Resuming " in stderr
        assert _STOPPED.fullmatch(stderr.strip().splitlines()[-1]), stderr[-2000:]
    done = crash_sweep.run_command(argv)
    assert done.returncode == 0, done.stderr[-2000:]
    _, reference = crash_reference
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
