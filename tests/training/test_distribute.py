"""tf.distribute: strategy choice, global-batch loss scaling, per-replica pools, 2 CPU replicas.

The host CPU can be split into logical devices only before TensorFlow initialises them, and this
pytest process has long done that. The two-replica tests therefore run in one spawned worker process
that splits its CPU first (``two_replicas``); everything else here runs in this process.
"""

import concurrent.futures
import contextlib
import io
import json
import logging
import multiprocessing
import os
import socket
import time

import numpy as np
import pytest

from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.errors import OptionError
from cyclegan_tf.training import distribute
from tests.conftest import free_ports

REPLICAS = 2
TINY = {"ngf": 4, "ndf": 4, "n_res_blocks": 1, "image_size": 32}


def _split_cpu():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    distribute.split_cpu(REPLICAS)


@contextlib.contextmanager
def _two_replica_worker():
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, context, initializer=_split_cpu) as pool:
        yield lambda fn, *args: pool.submit(fn, *args).result(timeout=300)


@pytest.fixture(scope="module")
def two_replicas():
    """A worker process whose CPU is split into two logical devices: ``two_replicas(fn, *args)``."""
    with _two_replica_worker() as run:
        yield run


@pytest.fixture(scope="module")
def other_two_replicas():
    """Another such worker, for models of other shapes than ``two_replicas``' CycleGANs.

    TensorFlow numbers the collective operations of every ``MirroredStrategy`` of a process from the
    same start: after one strategy all-reduced a tensor of one shape under a number, a second
    strategy's all-reduce of another shape under that number fails ("Shape mismatch in the
    collective instance"). A training process makes one strategy; a test process that makes several
    keeps models of one architecture per process.
    """
    with _two_replica_worker() as run:
        yield run


# --- Run in the two-replica worker. -------------------------------------------------------------


# Each objective, tiny and without randomness across replicas: no image pool for CycleGAN.
OBJECTIVE_OPTIONS = {"cyclegan": {"pool_size": 0}, "cut": {"num_patches": 16}}
# SGD's learning rate, and the scale of random initial weights (None: the objective's own). At CUT's
# initial scale the normalised PatchNCE features are tiny and their gradients huge.
STEP_SETTINGS = {"cyclegan": (0.5, None), "cut": (0.05, 0.1)}


def _tiny_objective(objective):
    from cyclegan_tf.models import get_objective

    return get_objective(objective)(**OBJECTIVE_OPTIONS[objective], **TINY)


def _one_step_weights(strategy_name, jit_compile, initial, images_a, images_b, objective):
    """Weights after one ``fit`` step from ``initial`` on one global batch (SGD, no pool)."""
    import keras
    import tensorflow as tf

    if strategy_name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices[:REPLICAS])
    else:
        strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = _tiny_objective(objective)
        # SGD: an update proportional to the gradient (Adam's first step is nearly sign(gradient)
        # and would hide a gradient scaled by the replica count).
        learning_rate, _ = STEP_SETTINGS[objective]
        model.compile(
            generator_optimizer=keras.optimizers.SGD(learning_rate),
            discriminator_optimizer=keras.optimizers.SGD(learning_rate),
            jit_compile=jit_compile,
        )
    model.set_weights(initial)
    dataset = tf.data.Dataset.from_tensors((images_a, images_b))
    history = model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    losses = {key: float(values[-1]) for key, values in history.history.items()}
    return strategy.num_replicas_in_sync, model.get_weights(), losses


def _step_comparison(objective):
    import keras

    rng = np.random.default_rng(0)
    images = tuple(rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32") for _ in range(2))
    keras.utils.set_random_seed(0)
    initial = _tiny_objective(objective).get_weights()
    _, scale = STEP_SETTINGS[objective]
    if scale is not None:
        initial = [rng.normal(0, scale, w.shape).astype(w.dtype) for w in initial]
    return {
        "one_replica": _one_step_weights("default", False, initial, *images, objective),
        "two_replicas": _one_step_weights("mirrored", False, initial, *images, objective),
        "two_replicas_xla": _one_step_weights("mirrored", True, initial, *images, objective),
        "initial": initial,
    }


def _pool_histories():
    """Each replica queries its own values through one pool; returns outputs and stored images."""
    import tensorflow as tf

    from cyclegan_tf.models.image_pool import ImagePool

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices[:REPLICAS])
    with strategy.scope():
        pool = ImagePool(2, (1, 1, 1), seed=0)

    @tf.function
    def query(offset):
        def per_replica(context):
            replica = tf.cast(context.replica_id_in_sync_group, tf.float32)
            return tf.fill([1, 1, 1, 1], 1000.0 * replica + offset)

        values = strategy.experimental_distribute_values_from_function(per_replica)
        return strategy.run(pool, args=(values,))

    outputs = [[], []]
    for offset in range(1, 41):
        for replica, out in enumerate(strategy.experimental_local_results(query(float(offset)))):
            outputs[replica].append(float(out.numpy().ravel()[0]))
    stored = [
        sorted(v.numpy().ravel().tolist())
        for v in strategy.experimental_local_results(pool.images.value)
    ]
    counts = [int(v.numpy()) for v in strategy.experimental_local_results(pool.count.value)]
    return outputs, stored, counts


def _train_cli(argv):
    """``cyclegan-train`` in the worker: exit code, stderr and the run log's lines."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("cyclegan_tf").addHandler(handler)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            try:
                code = train_cli.main(argv)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        logging.getLogger("cyclegan_tf").removeHandler(handler)
    return code, stderr.getvalue(), records


# --- Tests. -------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["cyclegan", "cut"])
def test_two_replicas_of_two_images_update_like_one_replica_of_four(
    two_replicas, other_two_replicas, objective
):
    worker = two_replicas if objective == "cyclegan" else other_two_replicas
    results = worker(_step_comparison, objective)
    replicas, reference, reference_losses = results["one_replica"]
    assert replicas == 1
    moved = max(np.abs(a - b).max() for a, b in zip(reference, results["initial"]))
    assert moved > 1e-3  # the step changed the weights by far more than the tolerance below
    updates = [expected - initial for initial, expected in zip(results["initial"], reference)]
    # Round-off alone moves a tensor whose gradient is zero in exact arithmetic (a bias that an
    # instance norm cancels): a floor for those, far below the updates that are not round-off.
    floor = 1e-5 + 1e-4 * max(np.linalg.norm(update) for update in updates)
    for name in ("two_replicas", "two_replicas_xla"):
        replicas, weights, step_losses = results[name]
        assert replicas == REPLICAS
        # The update of every tensor matches to float32 round-off in a summation order that
        # differs; a loss scaled by the replica count would be off by 100%.
        for update, expected, actual in zip(updates, reference, weights):
            error = actual - expected
            assert np.linalg.norm(error) <= 1e-3 * np.linalg.norm(update) + floor, name
        for key, value in reference_losses.items():
            assert step_losses[key] == pytest.approx(value, rel=1e-4), (name, key)


def test_each_replica_keeps_its_own_image_pool(two_replicas):
    outputs, stored, counts = two_replicas(_pool_histories)
    assert counts == [2, 2]
    # Replica r only ever sees (and stores) its own values 1000 * r + offset: nothing is averaged
    # or copied across replicas.
    for replica in range(REPLICAS):
        own = {1000.0 * replica + offset for offset in range(1, 41)}
        assert set(outputs[replica]) <= own
        assert set(stored[replica]) <= own
    # Past the two filling queries, about half the answers come from the history.
    swapped = sum(o != 1000.0 * r + k + 1 for r in range(2) for k, o in enumerate(outputs[r]))
    assert 20 <= swapped <= 60


def test_train_cli_on_two_cpu_replicas(two_replicas, tmp_path, tiny_args):
    run, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    argv = [*tiny_args(run, export_dir), "--mirrored-strategy", "--cpu-replicas", "2"]
    code, stderr, log = two_replicas(_train_cli, argv)
    assert code == 0, stderr[-2000:]
    assert any(line.startswith("Training on 2 replicas (MirroredStrategy") for line in log), log
    assert sorted(os.listdir(os.path.join(run, "models"))) == [
        "netD_A.keras",
        "netD_B.keras",
        "netG_A2B.keras",
        "netG_B2A.keras",
    ]
    assert os.listdir(os.path.join(export_dir, "apple2orange")) == ["1"]
    with open(os.path.join(run, "config.json")) as f:
        assert json.load(f)["cpu_replicas"] == 2


def test_batch_not_divisible_by_replicas_is_one_line(two_replicas, tmp_path, tiny_args):
    argv = [
        *tiny_args(str(tmp_path / "run"), str(tmp_path / "saved")),
        "--mirrored-strategy",
        "--cpu-replicas",
        "2",
        "--batch-size",
        "3",
    ]
    code, stderr, _ = two_replicas(_train_cli, argv)
    assert code == 2
    assert stderr.strip() == (
        "cyclegan-train: error: --batch-size: 3 is not divisible by the 2 replicas "
        "(use a multiple of 2)"
    )


# --- Bad input, in this process (nothing here needs a second device). ---------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--multi-worker"], "--multi-worker: needs the TF_CONFIG environment variable"),
        (["--cpu-replicas", "2"], "--cpu-replicas: needs mirrored_strategy"),
        (
            ["--multi-worker", "--cpu-replicas", "2"],
            "--cpu-replicas: works with mirrored_strategy only",
        ),
        (["--mirrored-strategy", "--multi-worker"], "--multi-worker: excludes mirrored_strategy"),
    ],
)
def test_bad_strategy_options_fail_with_one_line(
    extra, message, tmp_path, tiny_args, capsys, monkeypatch
):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        train_cli.main([*tiny_args(str(tmp_path / "run"), str(tmp_path / "saved")), *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cyclegan-train: error: ") and message in err


def test_cpu_replicas_on_a_machine_with_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(distribute, "_gpus", lambda: ["GPU:0", "GPU:1"])
    with pytest.raises(ValueError, match=r"this one has 2 GPU\(s\): drop it"):
        distribute.make_strategy(mirrored_strategy=True, cpu_replicas=2)


def test_mirrored_strategy_without_gpus_warns_in_one_line(caplog):
    with caplog.at_level(logging.WARNING, logger="cyclegan_tf.training.distribute"):
        strategy, tf_config = distribute.make_strategy(mirrored_strategy=True)
    assert strategy.num_replicas_in_sync == 1 and tf_config is None
    assert [r.getMessage() for r in caplog.records] == [
        "MirroredStrategy found no GPU: training on one CPU replica (cpu_replicas=N splits the CPU)"
    ]
    assert distribute.describe(strategy).startswith("1 replica (MirroredStrategy; this worker: ")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("not json", "TF_CONFIG is not valid JSON"),
        ("[1, 2]", "TF_CONFIG must be a JSON object"),
        ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs "cluster"'),
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}',
            "runs only chief and worker jobs",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "is not in"),
    ],
)
def test_invalid_tf_config_is_named(raw, message):
    with pytest.raises(ValueError, match=message):
        distribute.parse_tf_config({"TF_CONFIG": raw})


def test_chief_is_the_chief_task_or_worker_zero():
    workers = {"worker": ["a:1", "b:1"]}
    assert distribute.is_chief(None)
    assert distribute.is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not distribute.is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}})
    with_chief = {**workers, "chief": ["c:1"]}
    assert distribute.is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not distribute.is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


def test_split_cpu_rejects_a_non_positive_count():
    with pytest.raises(OptionError, match="^cpu_replicas: .*Received: cpu_replicas=0$"):
        distribute.split_cpu(0)


def _tf_config(ports, index, job="worker"):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {"cluster": cluster, "task": {"type": job, "index": index}}


def test_a_worker_whose_port_is_taken_says_so_at_once():
    ports = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[1]))
        holder.listen(1)
        start = time.monotonic()
        with pytest.raises(distribute.ClusterError) as info:
            distribute.wait_for_workers(_tf_config(ports, 1), timeout=30)
    assert time.monotonic() - start < 5
    assert str(info.value) == (
        f"worker 1 cannot listen on port {ports[1]} (its TF_CONFIG address 127.0.0.1:{ports[1]}): "
        "Address already in use; another process holds the port"
    )


@pytest.mark.parametrize(
    "index, message",
    [
        (0, "worker 0: only 0 of the 2 other workers of TF_CONFIG arrived"),
        (
            1,
            "worker 1: no go from worker 0 (127.0.0.1:{port}), where the workers of TF_CONFIG meet",
        ),
    ],
)
def test_a_worker_waiting_for_missing_peers_gives_up_after_its_timeout(index, message):
    ports = free_ports(3)
    start = time.monotonic()
    with pytest.raises(distribute.ClusterTimeoutError) as info:
        distribute.wait_for_workers(_tf_config(ports, index), timeout=0.5, poll_interval=0.1)
    assert time.monotonic() - start < 5
    assert isinstance(info.value, distribute.ClusterError) and isinstance(info.value, OptionError)
    assert info.value.option == "cluster_timeout"
    assert info.value.message.startswith(message.format(port=ports[0]) + " within 0.5 s")
    assert info.value.message.endswith("or allow more time")


def test_workers_meet_at_the_leader_and_free_their_ports():
    ports = free_ports(3)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        waits = [
            pool.submit(distribute.wait_for_workers, _tf_config(ports, i), 30, 0.05)
            for i in range(3)
        ]
        assert [wait.result(timeout=30) for wait in waits] == [None, None, None]
    for port in ports:  # TensorFlow's servers can bind them next.
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", port))


def _batch_norm_across_replicas():
    """A batch-norm generator in training mode: 2 replicas of 2 images against 1 device of 4."""
    import keras
    import tensorflow as tf

    from cyclegan_tf.models.generators import ResnetGenerator

    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    single = ResnetGenerator(ngf=4, n_res_blocks=1, norm="batch")
    expected = single(images, training=True).numpy()
    halves = [single(images[:2], training=True), single(images[2:], training=True)]
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:REPLICAS]
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        generator = ResnetGenerator(ngf=4, n_res_blocks=1, norm="batch")
    generator.set_weights(single.get_weights())
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(images))
    outputs = tf.function(
        lambda batch: strategy.run(lambda b: generator(b, training=True), (batch,))
    )(next(iter(batches)))
    replicated = np.concatenate([o.numpy() for o in strategy.experimental_local_results(outputs)])
    return (
        float(np.abs(replicated - expected).max()),
        float(np.abs(np.concatenate(halves) - expected).max()),
    )


def test_batch_norm_is_synchronised_across_replicas():
    """``--norm batch`` normalises with the global batch's statistics, whatever the replicas."""
    with _two_replica_worker() as run:
        synchronised, per_replica = run(_batch_norm_across_replicas)
    assert synchronised < 1e-5
    assert per_replica > 0.01  # what unsynchronised replicas would compute
