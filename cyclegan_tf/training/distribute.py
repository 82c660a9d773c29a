"""Choosing the ``tf.distribute`` strategy and the precision policy of a run.

* default: one device (``tf.distribute.get_strategy()``).
* ``mirrored_strategy``: ``MirroredStrategy`` over all local GPUs; with ``cpu_replicas=N`` over N
  logical CPU devices, so the multi-replica path runs and is tested on machines without GPUs.
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG`` (the same command on
  every worker); the chief writes the run folder, the other workers write to temporary folders.

Multi-worker start-up fails fast and says why: a worker checks that it can listen on its port, then
waits (``cluster_timeout`` seconds at most) until every other worker answers on its port, before
TensorFlow connects them. TensorFlow's own wait happens inside a call that holds the Python lock and
replaces the SIGTERM handler with a preemption notifier that only logs, so once it has started neither a
timeout nor SIGTERM can stop it; the wait before it can be stopped by both. After start-up the trainer
installs its own SIGTERM handler again (``interruption.StopSignals``): every worker stops after the same
step (``any_worker``), backs up and exits with 143. A worker that dies during training is reported by
TensorFlow's coordination service within about 10 s on the others (a heartbeat timeout). Restarted, the
workers resume from the newest backup they all have (``agree_on_position``), and none leaves before all
are done (``final_barrier``).

``batch_size`` is always the global batch; it is split evenly over the replicas.

Errors about an option are ``OptionError``s naming the Python argument (``cpu_replicas``); the
command-line tools print them under the flag's name (``--cpu-replicas``).
"""

import contextlib
import json
import logging
import os
import socket
import time

from cyclegan_tf.errors import OptionError
from cyclegan_tf.lazy import LazyModule

# Imported on first use: TrainConfig (whose fields are cyclegan-train's flags) reads this module
# before TensorFlow loads; so is _keras_compat, which subclasses Keras classes.
keras = LazyModule("keras")
tf = LazyModule("tensorflow")
_keras_compat = LazyModule("cyclegan_tf._keras_compat")

logger = logging.getLogger(__name__)

# ``mixed_precision`` of a run: its Keras policy (None: float32 throughout).
PRECISION_POLICIES = {None: "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
MIXED_PRECISIONS = tuple(key for key in PRECISION_POLICIES if key is not None)
_WORKER_JOBS = ("chief", "worker")
# How long a worker waits for the others to answer before it gives up (``cluster_timeout``).
DEFAULT_CLUSTER_TIMEOUT = 300.0


class ClusterError(ValueError):
    """A multi-worker cluster that cannot form; the message names the worker and the reason."""


class ClusterTimeoutError(ClusterError, OptionError):
    """The other workers did not all arrive within ``cluster_timeout`` seconds."""

    def __init__(self, message):
        OptionError.__init__(self, "cluster_timeout", message)


def _gpus():
    return tf.config.list_physical_devices("GPU")


def split_cpu(replicas):
    """Splits the host CPU into ``replicas`` logical devices (before TensorFlow initialises them).

    The logical devices share the host's cores and thread pools; they exist so that the multi-replica
    code path runs (and is tested) on machines without GPUs, not to make training faster.

    Args:
        replicas: int, the number of logical CPU devices.

    Raises:
        OptionError: if ``replicas`` < 1 or the runtime was already initialised with another split.
    """
    if not isinstance(replicas, int) or replicas < 1:
        raise OptionError(
            "cpu_replicas", f"must be a positive integer. Received: cpu_replicas={replicas!r}"
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if (existing and len(existing) == replicas) or (not existing and replicas == 1):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:
        raise OptionError(
            "cpu_replicas",
            f"cannot split the CPU into {replicas}: TensorFlow's devices were already initialised "
            "in this process; set it before anything else runs",
        ) from None


def parse_tf_config(environ=None):
    """Reads and checks ``TF_CONFIG`` for multi-worker training.

    Returns:
        dict, the parsed ``TF_CONFIG``.

    Raises:
        OptionError: (for ``multi_worker``) if it is missing.
        ValueError: if it is not JSON, or lacks ``cluster``/``task`` entries that match.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise OptionError(
            "multi_worker",
            "needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}',
        )
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error.msg} at char {error.pos})") from None
    if not isinstance(tf_config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object. Received: {raw[:80]}")
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise ValueError(
            'TF_CONFIG needs "cluster" (a dict of job lists) and "task" ({"type", "index"}). '
            f"Received: {raw[:80]}"
        )
    unsupported = sorted(set(cluster) - set(_WORKER_JOBS))
    if unsupported:
        raise ValueError(
            f"TF_CONFIG: MultiWorkerMirroredStrategy runs only {' and '.join(_WORKER_JOBS)} jobs. "
            f"Received cluster jobs: {sorted(cluster)}"
        )
    task_type, index = task.get("type"), task.get("index")
    if (
        task_type not in cluster
        or not isinstance(index, int)
        or not 0 <= index < len(cluster[task_type])
    ):
        raise ValueError(
            f"TF_CONFIG task {task} is not in its cluster {sorted(cluster)} "
            f"(sizes {[len(v) for v in cluster.values()]})"
        )
    return tf_config


def is_chief(tf_config):
    """Whether this worker writes the run folder: the ``chief``, or worker 0 when there is none."""
    if tf_config is None:
        return True
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def _task_name(task):
    return f"{task['type']} {task['index']}"


def _split_address(address):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"TF_CONFIG addresses must be host:port. Received: {address!r}")
    return host.strip("[]"), int(port)


def _own_address(tf_config):
    task = tf_config["task"]
    return tf_config["cluster"][task["type"]][task["index"]]


def _check_port(tf_config):
    """Raises a ``ClusterError`` saying why this worker cannot listen on its ``TF_CONFIG`` port.

    TensorFlow's gRPC server listens on all interfaces (``0.0.0.0:port``) whatever the host in
    ``TF_CONFIG``, with ``SO_REUSEADDR`` (so a closed connection's ``TIME_WAIT`` is no conflict).
    """
    address = _own_address(tf_config)
    _, port = _split_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
            probe.listen(1)
        except OSError as error:
            raise ClusterError(
                f"{_task_name(tf_config['task'])} cannot listen on port {port} (its TF_CONFIG "
                f"address {address}): {error.strerror or error}; another process holds the port"
            ) from None


def _leader(tf_config):
    """``(job, index)`` of the worker the others meet at: the chief, or worker 0."""
    return ("chief", 0) if "chief" in tf_config["cluster"] else ("worker", 0)


_HELLO, _GO = b"hello\n", b"go\n"


def _lead(tf_config, deadline, poll_interval):
    """The leader: accepts one hello from every other task, then tells them all to go."""
    expected = sum(len(addresses) for addresses in tf_config["cluster"].values()) - 1
    _, port = _split_address(_own_address(tf_config))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", port))
        listener.listen(expected + 4)
        listener.settimeout(poll_interval)
        greeted = []
        try:
            while len(greeted) < expected:
                if time.monotonic() > deadline:
                    raise ClusterTimeoutError(
                        f"{_task_name(tf_config['task'])}: only {len(greeted)} of the {expected} "
                        "other workers of TF_CONFIG arrived"
                    )
                with contextlib.suppress(TimeoutError):
                    connection, _ = listener.accept()
                    connection.settimeout(poll_interval * 4)
                    try:
                        hello = connection.recv(len(_HELLO))
                    except OSError:
                        hello = b""
                    if hello == _HELLO:
                        greeted.append(connection)
                    else:
                        connection.close()
            for connection in greeted:
                with contextlib.suppress(OSError):
                    connection.sendall(_GO)
        finally:
            for connection in greeted:
                connection.close()


def _follow(tf_config, deadline, poll_interval):
    """A non-leader: says hello to the leader (retrying) and waits for its go."""
    job, index = _leader(tf_config)
    leader = tf_config["cluster"][job][index]
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(_split_address(leader), timeout=poll_interval) as link:
                link.sendall(_HELLO)
                link.settimeout(max(deadline - time.monotonic(), poll_interval))
                if link.recv(len(_GO)) == _GO:
                    return
        except OSError:
            pass  # Not listening yet, or it went away: try again.
        time.sleep(poll_interval)
    raise ClusterTimeoutError(
        f"{_task_name(tf_config['task'])}: no go from {job} {index} ({leader}), where the workers "
        "of TF_CONFIG meet"
    )


def wait_for_workers(tf_config, timeout=DEFAULT_CLUSTER_TIMEOUT, poll_interval=0.5):
    """Meets every other worker of ``TF_CONFIG`` before TensorFlow connects them.

    Each worker first checks that it can listen on its own port (a port in use fails here, at once,
    with its reason). The workers then meet at the leader (the chief, or worker 0) on the leader's
    port: each sends a hello and waits; once all are there the leader answers go. Only then is
    ``MultiWorkerMirroredStrategy`` created, whose own wait cannot be interrupted. The wait here is
    plain Python: it ends after ``timeout`` seconds, and SIGTERM stops it.

    Args:
        tf_config: dict, a parsed ``TF_CONFIG`` (``parse_tf_config``).
        timeout: float, seconds to wait for the other workers.
        poll_interval: float, seconds between connection attempts.

    Raises:
        ClusterError: if this worker's port cannot be bound.
        ClusterTimeoutError: (a ``ClusterError`` and an ``OptionError`` for ``cluster_timeout``)
            if the workers have not all met within ``timeout`` seconds.
    """
    _check_port(tf_config)
    deadline = time.monotonic() + timeout
    task = tf_config["task"]
    try:
        if (task["type"], task["index"]) == _leader(tf_config):
            _lead(tf_config, deadline, poll_interval)
        else:
            _follow(tf_config, deadline, poll_interval)
    except ClusterTimeoutError as error:
        raise ClusterTimeoutError(
            f"{error.message} within {timeout:g} s: start the same command on every worker of "
            "TF_CONFIG (a worker that failed to start says why in its own log), or allow more time"
        ) from None


def task_names(tf_config):
    """Every task of ``TF_CONFIG`` as ``"worker/1"``, this worker's first."""
    own = f"{tf_config['task']['type']}/{tf_config['task']['index']}"
    others = [
        f"{job}/{index}"
        for job in _WORKER_JOBS
        for index in range(len(tf_config["cluster"].get(job, [])))
        if f"{job}/{index}" != own
    ]
    return [own, *others]


def any_worker(strategy, flag):
    """Whether ``flag`` is true on any worker of a multi-worker run (else ``flag`` itself).

    An all-reduce across the workers: every worker must call it at the same point.
    """
    if not _keras_compat.in_multi_worker_mode(strategy):
        return bool(flag)
    value = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)) > 0


def agree_on_position(tf_config, name, positions, timeout):
    """The newest position every worker of a multi-worker run can resume from.

    Each worker publishes the positions its usable backups hold; all pick the newest one they share,
    so that they train the same steps after a restart even when a kill stopped one of them before its
    newest backup was complete.

    Args:
        tf_config: dict, the parsed ``TF_CONFIG``.
        name: str, a name for the exchange, unique in this cluster's life.
        positions: list of ``(epoch, steps)``, this worker's.
        timeout: float, seconds to wait for the others.

    Returns:
        ``(epoch, steps)``, or None if no worker has a backup.

    Raises:
        ClusterError: if some workers have backups but they share no position.
    """
    tasks = task_names(tf_config)
    answers = _keras_compat.cluster_exchange(name, json.dumps(positions), tasks, timeout)
    held = {
        task: {tuple(position) for position in json.loads(answer)}
        for task, answer in answers.items()
    }
    shared = set.intersection(*held.values())
    if shared:
        return max(shared)
    if any(held.values()):
        listing = "; ".join(f"{task}: {sorted(found) or 'none'}" for task, found in held.items())
        raise ClusterError(
            "the workers have no backup position in common ((epoch, steps) per worker: "
            f"{listing}); restart all workers of the same run, with their backup folders"
        )
    return None


def final_barrier(tf_config, timeout):
    """Waits until every worker of a multi-worker run is done with its collectives.

    TensorFlow's collectives pull data from the peers: a worker that leaves right after its part of
    the last all-reduce can close its connection before a slower peer has fetched its share, and that
    peer fails with ``Collective ops is aborted by: Socket closed``. No worker leaves before all are here.
    """
    if tf_config is not None:
        _keras_compat.cluster_barrier("cyclegan_tf/train-end", timeout)


def _multi_worker_strategy(tf_config, cluster_timeout):
    wait_for_workers(tf_config, cluster_timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.UnknownError as error:  # e.g. "Could not start gRPC server"
        raise ClusterError(
            f"{_task_name(tf_config['task'])} could not start TensorFlow's server on "
            f"{_own_address(tf_config)}: {error.message.splitlines()[0]}"
        ) from None
    return strategy


def make_strategy(
    mirrored_strategy=False,
    cpu_replicas=None,
    multi_worker=False,
    cluster_timeout=DEFAULT_CLUSTER_TIMEOUT,
):
    """Creates the distribution strategy of a run.

    Args:
        mirrored_strategy: bool, ``MirroredStrategy`` over the local GPUs (or ``cpu_replicas``).
        cpu_replicas: int or None, logical CPU devices to mirror over (machines without GPUs).
        multi_worker: bool, ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``.
        cluster_timeout: float, seconds a worker waits for the others.

    Returns:
        ``(strategy, tf_config)``; ``tf_config`` is None unless multi-worker.

    Raises:
        OptionError: for combinations that cannot work (one line each, naming the argument).
        ClusterError: if a multi-worker cluster does not form (see ``wait_for_workers``).
    """
    if mirrored_strategy and multi_worker:
        raise OptionError(
            "multi_worker", "excludes mirrored_strategy (multi-worker training mirrors too)"
        )
    if cpu_replicas is not None:
        if multi_worker:
            raise OptionError(
                "cpu_replicas",
                "works with mirrored_strategy only: MultiWorkerMirroredStrategy uses one CPU "
                "device per worker",
            )
        if not mirrored_strategy:
            raise OptionError("cpu_replicas", "needs mirrored_strategy")
        gpus = _gpus()
        if gpus:
            raise OptionError(
                "cpu_replicas",
                f"is for machines without GPUs; this one has {len(gpus)} GPU(s): drop it to "
                "mirror over the GPUs",
            )
        split_cpu(cpu_replicas)
    if multi_worker:
        tf_config = parse_tf_config()
        return _multi_worker_strategy(tf_config, cluster_timeout), tf_config
    if mirrored_strategy:
        if cpu_replicas:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices=devices[:cpu_replicas]), None
        if not _gpus():
            logger.warning(
                "MirroredStrategy found no GPU: training on one CPU replica "
                "(cpu_replicas=N splits the CPU)"
            )
        return tf.distribute.MirroredStrategy(), None
    return tf.distribute.get_strategy(), None


def describe(strategy):
    """One line for the run log: how many replicas train, and on which local devices.

    Example:
        >>> describe(tf.distribute.get_strategy())
        '1 replica (default strategy)'
    """
    replicas = strategy.num_replicas_in_sync
    noun = "replica" if replicas == 1 else "replicas"
    mirrored = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if not isinstance(strategy, mirrored):
        return f"{replicas} {noun} (default strategy)"
    devices = ", ".join(name.split("device:")[-1] for name in strategy.extended.worker_devices)
    return f"{replicas} {noun} ({type(strategy).__name__}; this worker: {devices})"


def check_batch_size(batch_size, strategy):
    """The global batch must split evenly over the replicas.

    Raises:
        OptionError: for ``batch_size``, naming both numbers.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise OptionError(
            "batch_size",
            f"{batch_size} is not divisible by the {replicas} replicas (use a multiple of {replicas})",
        )


def set_precision(mixed_precision):
    """Sets Keras' global dtype policy for ``mixed_precision`` (None, ``"bf16"`` or ``"fp16"``).

    Under a mixed policy the variables stay float32 and most layers compute in the lower precision;
    ``layers.float32_if_mixed`` keeps normalisation statistics, the tanh output and the logits in float32,
    and the losses cast to float32.

    Args:
        mixed_precision: None, ``"bf16"`` or ``"fp16"``.

    Returns:
        The ``keras.DTypePolicy`` that was set before, to restore it with ``keras.config.set_dtype_policy``.

    Raises:
        OptionError: for an unknown value, or fp16 on a machine without a GPU (slow and pointless
            there).
    """
    if mixed_precision not in PRECISION_POLICIES:
        raise OptionError(
            "mixed_precision",
            f"must be one of bf16, fp16. Received: mixed_precision={mixed_precision!r}",
        )
    if mixed_precision == "fp16" and not _gpus():
        raise OptionError(
            "mixed_precision",
            "fp16 needs a GPU (float16 is emulated and slow on CPUs); use bf16 on CPU",
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[mixed_precision])
    return previous


@contextlib.contextmanager
def precision(mixed_precision):
    """Sets the policy of ``mixed_precision`` for a block and restores the previous one after it.

    Example:
        >>> with precision("bf16"):
        ...     model = CycleGAN(...)  # doctest: +SKIP
    """
    previous = set_precision(mixed_precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(optimizer, mixed_precision):
    """Adds dynamic loss scaling for float16 (bfloat16 has float32's range and needs none)."""
    if mixed_precision == "fp16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
