"""A real interruption: a training subprocess killed with SIGKILL mid-epoch, then the same command.

The resumed run must continue the *same* training: after every step and epoch it records both
optimizers' iteration counts, the image pools' fill, the learning rates and a checksum of the weights,
and these equal what an uninterrupted run of the same command records. With ``--backup-every`` it
resumes exactly mid-epoch: the steps after the last backup, and no others, are trained again.
(An in-process resume with Adam, its iteration counts and full pools, is checked in
``tests/training/test_trainer.py``.)
"""

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

ROOT = str(REPO_ROOT)

# Runs scripts/train.py's main with a callback that appends the training state to STATE_LOG after
# every epoch (and, with RECORD_EVERY_STEP, every step); SGD=1 swaps Adam for plain SGD; KILL_AT_STEP=N
# sends the process SIGKILL once step N is recorded (after the backup callbacks of that step ran).
DRIVER = r"""
import json, os, signal, sys
import keras, numpy as np
from cyclegan_tf.training import trainer
from cyclegan_tf.cli import train as train_cli

class RecordState(keras.callbacks.Callback):
    def _record(self, where):
        model = self.model
        lr = model.generator_optimizer.learning_rate
        state = {
            "where": where,
            "g_iterations": int(model.generator_optimizer.iterations.numpy()),
            "d_iterations": int(model.discriminator_optimizer.iterations.numpy()),
            "pool_a": int(model.pool_a.count.numpy()) if model.pool_size else 0,
            "pool_b": int(model.pool_b.count.numpy()) if model.pool_size else 0,
            "g_lr": float(np.asarray(lr)),
            "d_lr": float(np.asarray(model.discriminator_optimizer.learning_rate)),
            "checksum": float(sum(np.abs(w).sum() for w in model.get_weights())),
        }
        with open(os.environ["STATE_LOG"], "a") as f:
            f.write(json.dumps(state) + "\n")

    def on_epoch_end(self, epoch, logs=None):
        self._record(f"epoch {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        if os.environ.get("RECORD_EVERY_STEP"):
            self._record("step")
        step = int(self.model.generator_optimizer.iterations.numpy())
        if step == int(os.environ.get("KILL_AT_STEP", "0")):
            os.kill(os.getpid(), signal.SIGKILL)

make_callbacks = trainer.default_callbacks
trainer.default_callbacks = lambda *a, **k: [*make_callbacks(*a, **k), RecordState()]
if os.environ.get("SGD"):
    trainer.default_optimizer = lambda schedule, beta_1: keras.optimizers.SGD(schedule)
sys.exit(train_cli.main(sys.argv[1:]))
"""


def _rows(path, key=None):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        if path.endswith(".csv"):
            return [int(row["epoch"]) for row in csv.DictReader(f)]
        return [json.loads(line) for line in f if line.strip()]


def _command(tmp_path, argv):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    return [sys.executable, str(driver), *argv]


def _env(state_log, **extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "STATE_LOG": str(state_log), **extra}


def _run(command, env, timeout=300):
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _same_state(resumed, uninterrupted):
    for key in ("where", "g_iterations", "d_iterations", "pool_a", "pool_b", "g_lr", "d_lr"):
        assert resumed[key] == uninterrupted[key], (key, resumed, uninterrupted)
    assert resumed["checksum"] == pytest.approx(uninterrupted["checksum"], rel=1e-5)


def test_backup_every_resumes_exactly_where_the_last_backup_was(tmp_path, tiny_args):
    # 2 epochs of 6 steps, backups every 2 steps: after steps 2, 4, 6 (and the end of epoch 0), 8 ...
    extra = [
        "--epochs",
        "2",
        "--steps-per-epoch",
        "6",
        "--backup-every",
        "2",
        "--decay-epochs",
        "1",
    ]
    sgd = {"SGD": "1", "RECORD_EVERY_STEP": "1"}
    reference_log = tmp_path / "uninterrupted.jsonl"
    argv = [*tiny_args(str(tmp_path / "ref"), str(tmp_path / "ref_exports")), *extra]
    _run(_command(tmp_path, argv), _env(reference_log, **sgd))
    reference = {(s["where"], s["g_iterations"]): s for s in _rows(str(reference_log))}

    run = str(tmp_path / "run")
    state_log = tmp_path / "state.jsonl"
    command = _command(tmp_path, [*tiny_args(run, str(tmp_path / "saved_models")), *extra])
    killed = subprocess.run(
        command, cwd=ROOT, env=_env(state_log, KILL_AT_STEP="9", **sgd), capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    before_kill = len(_rows(str(state_log)))
    assert _rows(str(state_log))[-1]["g_iterations"] == 9

    result = _run(command, _env(state_log, **sgd))
    assert f"Resuming {run} at epoch 2, after its step 2." in result.stderr
    resumed = _rows(str(state_log))[before_kill:]
    # The last backup was after step 8 (2 steps into epoch 1): steps 9 to 12 again, nothing else.
    assert [s["g_iterations"] for s in resumed if s["where"] == "step"] == [9, 10, 11, 12]
    for state in resumed:
        _same_state(state, reference[state["where"], state["g_iterations"]])
    assert _rows(os.path.join(run, "logs", "training.csv")) == [0, 1]
    assert "[Epoch 2/2] [Batch 6/6]" in open(os.path.join(run, "logs", "train.log")).read()
    assert not os.path.exists(os.path.join(run, "backup"))
    assert os.listdir(os.path.join(str(tmp_path / "saved_models"), "apple2orange")) == ["1"]
