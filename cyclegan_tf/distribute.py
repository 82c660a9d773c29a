"""Choosing the ``tf.distribute`` strategy and the precision policy of a run.

* default: one device (``tf.distribute.get_strategy()``).
* ``--mirrored-strategy``: ``MirroredStrategy`` over all local GPUs; with ``--cpu-replicas N`` over N
  logical CPU devices, so the multi-replica path runs and is tested on machines without GPUs.
* ``--multi-worker``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG`` (the same command on
  every worker); the chief writes the run folder, the other workers write to temporary folders.

``--batch-size`` is always the global batch; it is split evenly over the replicas.
"""

import json
import logging
import os
import warnings

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)

PRECISION_POLICIES = {None: "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _gpus():
    return tf.config.list_physical_devices("GPU")


def split_cpu(replicas):
    """Splits the host CPU into ``replicas`` logical devices (before TensorFlow initialises them).

    Raises:
        ValueError: if ``replicas`` < 1 or the runtime was already initialised with another split.
    """
    if replicas < 1:
        raise ValueError(f"--cpu-replicas must be >= 1. Received: {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing and len(existing) == replicas:
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
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster or not isinstance(task, dict):
        raise ValueError(
            'TF_CONFIG needs "cluster" (a dict of job lists) and "task" ({"type", "index"})'
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
        if not (mirrored or multi_worker):
            raise ValueError("--cpu-replicas needs --mirrored-strategy or --multi-worker")
        if _gpus():
            raise ValueError(
                f"--cpu-replicas is for machines without GPUs; this one has {len(_gpus())} GPU(s): "
                "drop it to mirror over the GPUs"
            )
        split_cpu(cpu_replicas)
    if multi_worker:
        tf_config = parse_tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, tf_config
    if mirrored:
        if cpu_replicas:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(devices=devices[:cpu_replicas])
        else:
            if not _gpus():
                warnings.warn(
                    "--mirrored-strategy found no GPU: training on one CPU replica "
                    "(use --cpu-replicas N to split the CPU)",
                    stacklevel=2,
                )
            strategy = tf.distribute.MirroredStrategy()
        return strategy, None
    return tf.distribute.get_strategy(), None


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

    Raises:
        ValueError: for an unknown value, or fp16 on a machine without a GPU (slow and pointless there).
    """
    if mixed_precision not in PRECISION_POLICIES:
        raise ValueError(
            f"--mixed-precision must be one of bf16, fp16. Received: {mixed_precision!r}"
        )
    if mixed_precision == "fp16" and not _gpus():
        raise ValueError(
            "--mixed-precision fp16 needs a GPU (float16 is emulated and slow on CPUs); use bf16 on CPU"
        )
    keras.config.set_dtype_policy(PRECISION_POLICIES[mixed_precision])


def wrap_optimizer(optimizer, mixed_precision):
    """Adds dynamic loss scaling for float16 (bfloat16 has float32's range and needs none)."""
    if mixed_precision == "fp16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
