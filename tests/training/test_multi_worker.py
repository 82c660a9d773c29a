"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1, configured through TF_CONFIG."""

import dataclasses
import json
import multiprocessing
import os
import time

import numpy as np
import pytest

from cyclegan_tf import io, options
from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.training import trainer
from cyclegan_tf.training.config import TrainConfig
from cyclegan_tf.training.interruption import TrainingInterrupted
from tests.conftest import free_ports

WORKERS = 2


def _worker(tf_config, argv, weights_path, fault=None):
    """One worker: the training command with ``--multi-worker``; saves its final weights.

    ``fault``: an ``io.FAULT_ENV`` value for this worker (a kill at a crash point).
    """
    os.environ["TF_CONFIG"] = json.dumps(tf_config)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if fault:
        os.environ[io.FAULT_ENV] = fault
    config = options.from_args(TrainConfig, train_cli.build_parser().parse_args(argv))
    try:
        model, _ = trainer.train(config)
    except TrainingInterrupted as stopped:
        raise SystemExit(stopped.exit_code) from None
    np.savez(weights_path, *model.translation_generators()["A2B"].get_weights())


def _start_workers(target, inputs, tmp_path, ports, faults=None):
    """Starts ``target(tf_config, inputs, weights_path[, fault])`` in one process per port."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=target,
            args=(
                {"cluster": cluster, "task": {"type": "worker", "index": index}},
                inputs,
                str(tmp_path / f"weights_{index}.npz"),
                *([faults[index]] if faults and index in faults else []),
            ),
        )
        for index in range(len(ports))
    ]
    for process in workers:
        process.start()
    return workers


def _join(workers, timeout=300):
    """Waits for the workers (killing those still running after ``timeout``); their exit codes."""
    deadline = time.monotonic() + timeout
    for process in workers:
        process.join(timeout=max(deadline - time.monotonic(), 0))
    for process in workers:
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in workers]


def _run_workers(target, inputs, tmp_path, timeout=300):
    """Runs ``target(tf_config, inputs, weights_path)`` in WORKERS processes; returns exit codes."""
    return _join(_start_workers(target, inputs, tmp_path, free_ports(WORKERS)), timeout)


def _csv_epochs(run):
    path = os.path.join(run, "logs", "training.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line.split(",")[0]) for line in f.read().splitlines()[1:] if line.strip()]


@pytest.mark.slow
def test_non_chief_writes_to_a_scratch_folder_it_removes(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "saved"))
    tf_config = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    with trainer.worker_outputs(config, tf_config) as (worker_config, backup_dir):
        scratch = worker_config.output_dir
        assert os.path.isdir(scratch) and not scratch.startswith(str(tmp_path))
        assert worker_config.export_dir == os.path.join(scratch, "saved_models")
        assert backup_dir == os.path.join(config.output_dir, ".backup-worker-1")
        assert dataclasses.replace(worker_config, output_dir=None, export_dir=None) == (
            dataclasses.replace(config, output_dir=None, export_dir=None)
        )
    assert not os.path.exists(scratch)
    chief = {**tf_config, "task": {"type": "worker", "index": 0}}
    with trainer.worker_outputs(config, chief) as (chief_config, backup_dir):
        assert chief_config == config and backup_dir is None


TINY = {"ngf": 4, "ndf": 4, "n_res_blocks": 1, "image_size": 32}
# Each objective, tiny and without randomness across workers; SGD's learning rate and the scale of
# random initial weights (None: the objective's own; at CUT's the PatchNCE gradients are huge).
OBJECTIVES = {
    "cyclegan": ({"pool_size": 0}, 0.5, None),
    "cut": ({"num_patches": 16}, 0.05, 0.1),
}


def _tiny(objective):
    from cyclegan_tf.models import get_objective

    options, _, _ = OBJECTIVES[objective]
    return get_objective(objective)(**TINY, **options)


def _images():
    rng = np.random.default_rng(0)
    return [rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32") for _ in range(2)]


def _initial_weights(objective):
    import keras

    keras.utils.set_random_seed(0)
    weights = _tiny(objective).get_weights()
    _, _, scale = OBJECTIVES[objective]
    if scale is None:
        return weights
    rng = np.random.default_rng(0)
    return [rng.normal(0, scale, w.shape).astype(w.dtype) for w in weights]


def _one_sgd_step(objective, initial, images_a, images_b, strategy):
    """Weights after one fit step with SGD from ``initial`` on one global batch of 4 pairs."""
    import keras
    import tensorflow as tf

    _, learning_rate, _ = OBJECTIVES[objective]
    with strategy.scope():
        model = _tiny(objective)
        model.compile(
            generator_optimizer=keras.optimizers.SGD(learning_rate),
            discriminator_optimizer=keras.optimizers.SGD(learning_rate),
        )
    model.set_weights(initial)
    dataset = tf.data.Dataset.from_tensors((images_a, images_b)).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.fit(dataset.with_options(options), epochs=1, steps_per_epoch=1, verbose=0)
    return model.get_weights()


def _sgd_worker(tf_config, inputs, weights_path):
    objective, initial, images = inputs
    os.environ["TF_CONFIG"] = json.dumps(tf_config)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    np.savez(weights_path, *_one_sgd_step(objective, initial, *images, strategy))


@pytest.mark.slow
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_two_workers_with_a_global_batch_of_4_update_like_one_process_on_the_4(objective, tmp_path):
    import tensorflow as tf

    initial, images = _initial_weights(objective), _images()
    assert _run_workers(_sgd_worker, (objective, initial, images), tmp_path) == [0, 0]

    expected = _one_sgd_step(objective, initial, *images, tf.distribute.get_strategy())
    changed = 0
    for index in range(WORKERS):
        saved = np.load(tmp_path / f"weights_{index}.npz")
        actual = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        for start, mine, theirs in zip(initial, actual, expected):
            np.testing.assert_allclose(mine, theirs, atol=2e-5)
            changed += not np.allclose(start, theirs)
    assert changed > len(initial)  # the step moved most weights on both workers


@pytest.mark.slow
def test_a_killed_worker_and_its_peer_restart_resume_exactly_and_both_exit_0(tmp_path, tiny_args):
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    argv = [
        *tiny_args(run, export_dir),
        *("--epochs", "2", "--steps-per-epoch", "2", "--backup-every", "1", "--sample-every", "0"),
        *("--multi-worker", "--cluster-timeout", "60"),
    ]
    ports = free_ports(WORKERS)
    # kill -9 of worker 1 as it is about to complete its backup at the end of epoch 1, which the
    # chief (worker 0) may have completed already: the workers' newest backups then differ.
    fault = {1: "before:state-*.json:3:kill"}
    codes = _join(_start_workers(_worker, argv, tmp_path, ports, fault), timeout=300)
    # The survivor fails once TensorFlow notices its peer is gone; a cluster would restart it too.
    assert codes[1] == -9 and codes[0] != 0, codes
    assert os.path.isdir(os.path.join(run, "backup"))
    assert os.path.isdir(os.path.join(run, ".backup-worker-1"))

    # The same command again; worker 1 receives SIGTERM (a preemption) right after its first
    # backup there: both workers stop after the same step, with a backup, and exit 143.
    fault = {1: "after:state-*.json:1:sigterm"}
    assert _join(_start_workers(_worker, argv, tmp_path, ports, fault)) == [143, 143]

    # And again: both finish and exit 0.
    assert _join(_start_workers(_worker, argv, tmp_path, ports)) == [0, 0]

    # Both workers end in sync; the chief (worker 0) wrote the run folder and the export.
    weights = [np.load(tmp_path / f"weights_{index}.npz") for index in range(WORKERS)]
    assert len(weights[0].files) > 0
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    import keras

    import cyclegan_tf  # noqa: F401 - registers the custom layers

    saved = keras.models.load_model(os.path.join(run, "models", "netG_A2B.keras"), compile=False)
    for expected, actual in zip(saved.get_weights(), (weights[1][n] for n in weights[1].files)):
        np.testing.assert_array_equal(actual, expected)
    assert _csv_epochs(run) == [0, 1]  # each epoch once: the workers resumed from the same step
    assert os.path.exists(os.path.join(run, "finished.json"))
    assert not os.path.exists(os.path.join(run, "backup"))
    assert not [name for name in os.listdir(run) if name.startswith(".backup")]
    assert os.listdir(os.path.join(export_dir, "apple2orange")) == ["1"]
    assert os.listdir(os.path.join(export_dir, "orange2apple")) == ["1"]
