"""Choosing the ``tf.distribute`` strategy and the precision policy of a run.

* default: one device (``tf.distribute.get_strategy()``).
* ``--mirrored-strategy``: ``MirroredStrategy`` over all local GPUs; with ``--cpu-replicas N`` over N
  logical CPU devices, so the multi-replica path runs and is tested on machines without GPUs.
* ``--multi-worker``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG`` (the same command on
  every worker); the chief writes the run folder, the other workers write to temporary folders.

``--batch-size`` is always the global batch; it is split evenly over the replicas.
"""

import contextlib
import json
import logging
import os

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)

PRECISION_POLICIES = {None: "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
_WORKER_JOBS = ("chief", "worker")


def _gpus():
    return tf.config.list_physical_devices("GPU")


def split_cpu(replicas):
    """Splits the host CPU into ``replicas`` logical devices (before TensorFlow initialises them).

    The logical devices share the host's cores and thread pools; they exist so that the multi-replica
    code path runs (and is tested) on machines without GPUs, not to make training faster.

    Args:
        replicas: int, the number of logical CPU devices.

    Raises:
        ValueError: if ``replicas`` < 1 or the runtime was already initialised with another split.
    """
    if not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"--cpu-replicas must be a positive integer. Received: {replicas!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if (existing and len(existing) == replicas) or (not existing and replicas == 1):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:
        raise ValueError(
            f"--cpu-replicas {replicas}: TensorFlow's devices were already initialised in this "
            "process; set it before anything else runs"
        ) from None


def parse_tf_config(environ=None):
    """Reads and checks ``TF_CONFIG`` for multi-worker training.

    Returns:
        dict, the parsed ``TF_CONFIG``.

    Raises:
        ValueError: if it is missing, not JSON, or lacks ``cluster``/``task`` entries that match.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--multi-worker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
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


def make_strategy(mirrored=False, cpu_replicas=None, multi_worker=False):
    """Creates the distribution strategy of a run.

    Args:
        mirrored: bool, ``--mirrored-strategy``.
        cpu_replicas: int or None, ``--cpu-replicas``.
        multi_worker: bool, ``--multi-worker``.

    Returns:
        ``(strategy, tf_config)``; ``tf_config`` is None unless multi-worker.

    Raises:
        ValueError: for combinations that cannot work (one line each).
    """
    if mirrored and multi_worker:
        raise ValueError(
            "--mirrored-strategy and --multi-worker are exclusive (multi-worker mirrors too)"
        )
    if cpu_replicas is not None:
        if multi_worker:
            raise ValueError(
                "--cpu-replicas works with --mirrored-strategy only: MultiWorkerMirroredStrategy "
                "uses one CPU device per worker"
            )
        if not mirrored:
            raise ValueError("--cpu-replicas needs --mirrored-strategy")
        gpus = _gpus()
        if gpus:
            raise ValueError(
                f"--cpu-replicas is for machines without GPUs; this one has {len(gpus)} GPU(s): "
                "drop it to mirror over the GPUs"
            )
        split_cpu(cpu_replicas)
    if multi_worker:
        tf_config = parse_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy(), tf_config
    if mirrored:
        if cpu_replicas:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices=devices[:cpu_replicas]), None
        if not _gpus():
            logger.warning(
                "--mirrored-strategy found no GPU: training on one CPU replica "
                "(--cpu-replicas N splits the CPU)"
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
        ValueError: naming both numbers.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"--batch-size {batch_size} is not divisible by the {replicas} replicas "
            f"(use a multiple of {replicas})"
        )


def set_precision(mixed_precision):
    """Sets Keras' global dtype policy for ``--mixed-precision`` (None, ``"bf16"`` or ``"fp16"``).

    Under a mixed policy the variables stay float32 and most layers compute in the lower precision;
    ``layers.float32_if_mixed`` keeps normalisation statistics, the tanh output and the logits in float32,
    and the losses cast to float32.

    Args:
        mixed_precision: None, ``"bf16"`` or ``"fp16"``.

    Returns:
        The ``keras.DTypePolicy`` that was set before, to restore it with ``keras.config.set_dtype_policy``.

    Raises:
        ValueError: for an unknown value, or fp16 on a machine without a GPU (slow and pointless there).
    """
    if mixed_precision not in PRECISION_POLICIES:
        raise ValueError(
            f"--mixed-precision must be one of bf16, fp16. Received: {mixed_precision!r}"
        )
    if mixed_precision == "fp16" and not _gpus():
        raise ValueError(
            "--mixed-precision fp16 needs a GPU (float16 is emulated and slow on CPUs); "
            "use bf16 on CPU"
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[mixed_precision])
    return previous


@contextlib.contextmanager
def precision(mixed_precision):
    """Sets the policy of ``--mixed-precision`` for a block and restores the previous one after it.

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
