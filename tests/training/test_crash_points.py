"""The crash-point harness's fast subset: one tiny run stopped at the moments that matter, resumed each time.

Every stop is one of the crash harness's (``cyclegan_tf.tools.crash_sweep``, ``io.FAULT_ENV``), in this
process: ``raise`` ends the command at a crash point as a kill would (no code of the run runs after it,
but ``finally`` blocks do, so a killed write's temporary file is removed here; the real kills of
``tests/training/test_resume.py`` and ``scripts/crash_sweep.py`` leave it). The run must end exactly as
the uninterrupted one did. ``scripts/crash_sweep.py`` tries every crash point and random moments, each
in its own process.
"""

import glob
import logging
import os

import pytest

from cyclegan_tf import io
from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.tools import crash_sweep

pytestmark = pytest.mark.slow


def train_here(argv, monkeypatch, fault=None):
    """Runs the training command in this process: its exit code, or ``"crashed"``."""
    if fault:
        monkeypatch.setenv(io.FAULT_ENV, fault)
    else:
        monkeypatch.delenv(io.FAULT_ENV, raising=False)
    try:
        return train_cli.main(argv)
    except SystemExit as exit_info:
        return exit_info.code
    except io.SimulatedCrash:
        return "crashed"
    finally:
        monkeypatch.delenv(io.FAULT_ENV, raising=False)


def _last_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def test_a_run_stopped_at_every_kind_of_moment_ends_as_an_uninterrupted_one(
    tmp_path, synthetic_dir, crash_reference, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.INFO)
    argv = crash_sweep.tiny_argv(synthetic_dir, str(tmp_path))
    backup = tmp_path / "run" / "backup"

    # Killed right after its first mid-epoch backup is complete (the first is the initial one).
    assert train_here(argv, monkeypatch, "after:state-*.json:2:raise") == "crashed"
    # The newest backup's weights are damaged on the disk: the rerun says so and resumes from the
    # one before; it is killed right after epoch 1's CSV row, before that epoch's backup.
    newest = sorted(glob.glob(str(backup / "state-*.weights.h5")))[-1]
    with open(newest, "r+b") as f:  # one byte flipped in the middle of the file
        f.seek(os.path.getsize(newest) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert train_here(argv, monkeypatch, "after:training.csv:1:raise") == "crashed"
    assert f"{newest} is damaged (its checksum differs from the one written)" in caplog.text
    assert "Resuming from backup/state-000001.weights.h5 (the start of epoch 1)" in caplog.text
    # Killed between the two exports after epoch 1: the rerun completes the pair, same version.
    assert train_here(argv, monkeypatch, "after:1:1:raise") == "crashed"
    assert sorted(os.listdir(tmp_path / "exports")) == ["apple2orange"]
    # The disk is full when epoch 1's backup is written: one line, and the rerun resumes.
    assert train_here(argv, monkeypatch, "before:state-*.weights.h5:1:enospc") == 2
    assert _last_line(capsys) == (
        "cyclegan-train: error: [Errno 28] No space left on device (injected: "
        "before:state-*.weights.h5:1:enospc)"
    )
    # One Ctrl-C right after a backup: the step under way ends, is backed up, and the run stops.
    assert train_here(argv, monkeypatch, "after:state-*.json:2:sigint") == 130
    assert _last_line(capsys) == (
        "cyclegan-train: interrupted at epoch 2, step 1; run the same command to resume"
    )
    # Killed after the report, before finished.json: the rerun writes what is missing.
    assert train_here(argv, monkeypatch, "after:report.html:1:raise") == "crashed"
    assert train_here(argv, monkeypatch) == 0

    _, reference = crash_reference
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
    # Once finished, the same command says so and changes nothing.
    assert train_here(argv, monkeypatch) == 2
    assert "already holds a finished run (finished.json)" in _last_line(capsys)
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
