"""The crash-point harness's fast subset: one tiny run stopped at the moments that matter, resumed each time.

A kill after a backup, a damaged backup, two Ctrl-Cs while a backup's weights file is being written, a
kill right after an epoch's CSV row, a kill between the two exports of an epoch, a full disk, one
Ctrl-C as the training ends; a kill in the final export is tested in ``test_trainer.py``.

Every stop is one of the crash harness's (``cyclegan_tf.tools.crash_sweep``, ``io.FAULT_ENV``), in this
process: ``raise`` ends the command at a crash point as a kill would (no code of the run runs after it,
but ``finally`` blocks do, so a killed write's temporary file is removed here; the real kills of
``tests/training/test_resume.py`` and ``scripts/crash_sweep.py`` leave it). The run must end exactly as
the uninterrupted one did. ``scripts/crash_sweep.py`` tries every crash point and random moments, each
in its own process.
"""

import logging
import os
import signal

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


def _interrupt_the_third_backup_write(monkeypatch, signals):
    """Sends ``signals`` Ctrl-Cs to this process in the middle of the third backup's HDF5 file."""
    import h5py

    from cyclegan_tf.models.cyclegan import CycleGAN

    saves, written = [], []
    save_weights, create_dataset = CycleGAN.save_weights, h5py.Group.create_dataset

    def counting_save(self, *args, **kwargs):
        saves.append(1)
        return save_weights(self, *args, **kwargs)

    def interrupting_create(self, *args, **kwargs):
        if len(saves) == 3:
            written.append(1)
            if len(written) == 150:  # of about 350 datasets
                for _ in range(signals):
                    signal.raise_signal(signal.SIGINT)
        return create_dataset(self, *args, **kwargs)

    monkeypatch.setattr(CycleGAN, "save_weights", counting_save)
    monkeypatch.setattr(h5py.Group, "create_dataset", interrupting_create)
    return written


def test_a_run_stopped_at_every_kind_of_moment_ends_as_an_uninterrupted_one(
    tmp_path, synthetic_dir, crash_reference, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.INFO)
    argv = crash_sweep.tiny_argv(synthetic_dir, str(tmp_path))
    backup, exports = tmp_path / "run" / "backup", tmp_path / "exports"

    # Killed right after its first mid-epoch backup is complete (the first is the initial one).
    assert train_here(argv, monkeypatch, "after:state-*.json:2:raise") == "crashed"
    # That backup's weights are then damaged on the disk: the rerun says so and resumes from the
    # one before. Ctrl-C twice while its third backup's weights file is being written: it stops at
    # once, and the next rerun needs no manual step.
    newest = str(backup / "state-000002.weights.h5")
    with open(newest, "r+b") as f:  # one byte flipped in the middle of the file
        f.seek(os.path.getsize(newest) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with monkeypatch.context() as patch:
        written = _interrupt_the_third_backup_write(patch, signals=2)
        assert train_here(argv, monkeypatch) == 130 and len(written) == 150
    assert f"{newest} is damaged (its checksum differs from the one written)" in caplog.text
    assert "Resuming from backup/state-000001.weights.h5 (the start of epoch 1)" in caplog.text
    assert _last_line(capsys) == (
        "cyclegan-train: stopped at once; run the same command to resume from the last backup"
    )
    # Killed right after epoch 2's CSV row, before that epoch's backup.
    assert train_here(argv, monkeypatch, "after:training.csv:1:raise") == "crashed"
    # Killed between the two exports after epoch 2: the rerun completes the pair, same version.
    assert train_here(argv, monkeypatch, "after:2:1:raise") == "crashed"
    assert sorted(os.listdir(exports / "apple2orange")) == ["1", "2"]
    assert os.listdir(exports / "orange2apple") == ["1"]
    # The disk is full when epoch 2's backup is written: one line, and the rerun resumes.
    assert train_here(argv, monkeypatch, "before:state-*.weights.h5:1:enospc") == 2
    assert _last_line(capsys) == (
        "cyclegan-train: error: [Errno 28] No space left on device (injected: "
        "before:state-*.weights.h5:1:enospc)"
    )
    # One Ctrl-C right after the last epoch's backup: the run stops before its exports.
    assert train_here(argv, monkeypatch, "after:state-*.json:1:sigint") == 130
    assert _last_line(capsys) == (
        "cyclegan-train: interrupted at the end of training, before the exports; run the same "
        "command to resume"
    )
    assert train_here(argv, monkeypatch) == 0

    _, reference = crash_reference
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
    # Once finished, the same command says so and changes nothing.
    assert train_here(argv, monkeypatch) == 2
    assert "already holds a finished run (finished.json)" in _last_line(capsys)
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []
