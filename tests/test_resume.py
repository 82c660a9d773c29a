"""A real interruption: a training subprocess killed with SIGKILL, then the same command again."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _epochs_logged(run):
    path = os.path.join(run, "logs", "training.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_kill_9_then_same_command_finishes_every_epoch(tmp_path, tiny_args):
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    argv = [*tiny_args(run, export_dir), "--epochs", "8", "--steps-per-epoch", "4"]
    command = [sys.executable, "scripts/train.py", *argv]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while len(_epochs_logged(run)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = _epochs_logged(run)
    assert 3 <= len(killed_after) < 8, killed_after
    assert os.path.isdir(os.path.join(run, "backup"))

    started = time.monotonic()
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Resuming {run} at epoch" in result.stderr
    epochs = _epochs_logged(run)
    assert sorted(set(epochs)) == list(range(8))
    assert len(epochs) - len(set(epochs)) <= 1  # at most the interrupted epoch twice
    assert epochs[: len(killed_after)] == killed_after
    assert not os.path.exists(os.path.join(run, "backup"))
    assert os.listdir(os.path.join(export_dir, "apple2orange")) == ["1"]
    print(f"resumed run finished in {time.monotonic() - started:.1f} s")
