"""Every workaround for a Keras or TensorFlow limitation, in one place.

Each entry says where it was seen and has a test in ``tests/test_keras_compat.py`` that reproduces the
limitation: when an upgrade fixes it, that test fails, and the workaround can go.

Seen on Keras 3.15.1 with TensorFlow 2.21.0.
"""

import keras
import tensorflow as tf
from tensorflow.python.eager import context as tf_context


class PrebuiltModelMixin:
    """Skips Keras' symbolic build for a model whose networks and optimizers are built up front.

    Limitation: before the first step, Keras' TensorFlow trainer (``_maybe_symbolic_build`` in
    ``keras/src/backend/tensorflow/trainer.py``) pulls one batch and reduces it across replicas with
    ``strategy.reduce("MEAN", batch, axis=None)``. Under ``MultiWorkerMirroredStrategy`` with several
    workers that reduction fails for a batch that is an ``(a, b)`` tuple. A model whose variables all
    exist already has nothing to build, so the step is skipped when its optimizer is built.

    Seen: Keras 3.15.1, TensorFlow 2.21.0. Test: ``tests/training/test_multi_worker.py`` trains two workers through
    ``fit``; ``test_keras_compat.py`` checks that Keras still calls the reduction.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def spatial_moments(images):
    """Per-image, per-channel mean and variance over height and width, differentiable twice.

    Limitation: ``tf.nn.moments`` (behind Keras' ``ops.moments`` and so ``GroupNormalization``)
    measures the variance around ``stop_gradient(mean)``. Its first derivative is right (the
    variance's derivative with respect to the mean is zero at the mean); its second is not, so the
    gradient of a gradient through an instance norm, WGAN-GP's penalty, is wrong: through a tiny
    PatchGAN with instance norms, by 73 where the right value (PyTorch's) is 444. Here the variance is the mean squared
    deviation from the mean itself: the same values, and derivatives of any order.

    Seen: Keras 3.15.1, TensorFlow 2.21.0. Test: ``test_keras_compat.py`` checks that the penalty's
    gradient through ``GroupNormalization`` is still off (by 1 % of its largest value there).

    Args:
        images: float tensor ``[batch, height, width, channels]``.

    Returns:
        ``(mean, variance)``, each ``[batch, 1, 1, channels]``.
    """
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    variance = tf.reduce_mean(tf.math.squared_difference(images, mean), axis=[1, 2], keepdims=True)
    return mean, variance


def in_multi_worker_mode(strategy=None):
    """Whether a strategy is ``MultiWorkerMirroredStrategy`` over more than one worker.

    ``strategy`` defaults to the current one (a callback runs outside the model's scope: it passes
    ``model.distribute_strategy``). Uses the strategy's public ``cluster_resolver`` rather than the private
    ``extended._in_multi_worker_mode()``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    if resolver is None:
        return False
    cluster = resolver.cluster_spec().as_dict()
    return sum(len(tasks) for job, tasks in cluster.items() if job in ("chief", "worker")) > 1


def multi_worker_logs(results):
    """Reshapes scalar step results to ``[1]`` under multi-worker training.

    Limitation: Keras' ``reduce_per_replica`` reduces the logs of a multi-worker step with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for scalars (``keras/src/backend/tensorflow/
    trainer.py``). The metric trackers already hold global means, so a ``[1]`` vector reduces to them.

    Seen: Keras 3.15.1, TensorFlow 2.21.0. Test: ``test_keras_compat.py``.

    Args:
        results: dict of scalar tensors, what ``train_step`` returns.

    Returns:
        The same dict, with ``[1]``-shaped values in multi-worker mode.
    """
    if not in_multi_worker_mode():
        return results
    return {name: tf.reshape(value, [1]) for name, value in results.items()}


def per_replica_jit(compile_kwargs, strategy):
    """Moves ``jit_compile`` from the whole step to each replica's work when there are several replicas.

    Limitation: with ``jit_compile=True`` Keras compiles ``strategy.run`` as a whole, which XLA cannot
    place over several devices (``InvalidArgumentError`` under ``MirroredStrategy`` with two devices).
    The caller compiles each replica's forward and backward pass instead (``jit_replica_function``).

    Seen: Keras 3.15.1, TensorFlow 2.21.0. Test: ``test_keras_compat.py``.

    Args:
        compile_kwargs: dict, the keyword arguments of ``keras.Model.compile`` (changed in place).
        strategy: the ``tf.distribute`` strategy of the model.

    Returns:
        bool, whether each replica's work must be compiled with ``jit_replica_function``.
    """
    compile_kwargs.setdefault("jit_compile", False)
    per_replica = bool(compile_kwargs["jit_compile"]) and strategy.num_replicas_in_sync > 1
    if per_replica:
        compile_kwargs["jit_compile"] = False
    return per_replica


def jit_replica_function(function):
    """``function`` compiled with XLA, for the per-replica work of ``per_replica_jit``."""
    return tf.function(function, jit_compile=True)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` that records the right epoch and leaves the start to ``fit``.

    Limitation 1: the callback counts epochs only in ``on_epoch_end``, starting from 0, so after a
    resume at epoch ``e`` every backup written within that first epoch (``save_freq`` in steps)
    records epoch 0; a second interruption then restarts the run from the beginning. The epoch is
    taken from ``on_epoch_begin`` instead.

    Limitation 2: ``fit`` starts at ``self._initial_epoch or initial_epoch``
    (``keras/src/backend/tensorflow/trainer.py``), and the callback's restore sets
    ``model._initial_epoch`` to the epoch in its metadata. Whenever that epoch is not 0 it overrides
    the ``initial_epoch`` the caller passed: a backup taken after the last step of epoch ``e`` (before
    that epoch's end) records epoch ``e``, and ``fit`` trains epoch ``e`` again although the caller,
    who knows the epoch is complete, asked for ``e + 1``. (Epoch 0 escapes only because ``0 or x`` is
    ``x``.) Here the restore leaves ``model._initial_epoch`` unset: ``fit`` starts at its
    ``initial_epoch``, which the caller reads from the backup it restores.

    Seen: Keras 3.15.1. Test: ``test_keras_compat.py`` resumes Keras' own callback and checks the
    epoch it records, and the epochs that ``fit`` trains after a backup at an epoch's last step.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.model._initial_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch


def replace_layer_class(model, predicate, new_class):
    """Gives every layer of ``model`` for which ``predicate`` holds the class ``new_class``, in place.

    Limitation: Keras has no public way to give the layers nested inside a custom layer (the norms
    inside a ``ResidualBlock``) another implementation in a built model: the ``clone_function`` of
    ``keras.models.clone_model`` sees only the layers of the functional graph, not their sublayers.
    ``new_class`` must subclass the layer's class without adding state (same config, same weights),
    as ``export.pixel_graph.SpatialInstanceNormalization`` does.

    Seen: Keras 3.15.1. Test: ``test_keras_compat.py`` checks that ``clone_function`` does not reach
    a nested layer.

    Args:
        model: a built ``keras.Model`` (changed in place).
        predicate: callable taking a layer, True for the layers to change.
        new_class: the class they get.
    """
    for layer in model._flatten_layers(include_self=False):
        if predicate(layer):
            layer.__class__ = new_class


def _coordination_context():
    # tf.distribute has no public barrier or key-value store for the workers of a
    # MultiWorkerMirroredStrategy; its coordination service offers both through the eager context.
    return tf_context.context()


def cluster_barrier(name, timeout_seconds):
    """Blocks until every worker of the multi-worker cluster has reached the barrier ``name``.

    Limitation: TensorFlow has no public barrier for the workers of ``MultiWorkerMirroredStrategy``;
    its coordination service (``tensorflow.python.eager.context``) has one, ``wait_at_barrier``.

    Seen: TensorFlow 2.21.0. Test: ``test_keras_compat.py`` checks that the context still has it;
    ``tests/training/test_multi_worker.py`` uses it.

    Args:
        name: str, the barrier's name, the same on every worker and used once per cluster.
        timeout_seconds: float, how long to wait for the others.
    """
    _coordination_context().wait_at_barrier(name, int(timeout_seconds * 1000))


def cluster_exchange(key, value, tasks, timeout_seconds):
    """Publishes ``value`` under ``key/<this task>`` and returns every task's value.

    Limitation: as for ``cluster_barrier``: the coordination service's key-value store
    (``set_config_key_value``/``get_config_key_value``) has no public API.

    Args:
        key: str, the exchange's name, the same on every worker and used once per cluster.
        value: str, this worker's value.
        tasks: list of str, every task's name (``"worker/0"``...), this one's first.
        timeout_seconds: float, how long to wait for each other task's value.

    Returns:
        dict of task name to its value.
    """
    context = _coordination_context()
    context.set_config_key_value(f"{key}/{tasks[0]}", value)
    return {
        task: context.get_config_key_value(f"{key}/{task}", int(timeout_seconds * 1000))
        for task in tasks
    }


__all__ = [
    "BackupAndRestore",
    "PrebuiltModelMixin",
    "cluster_barrier",
    "cluster_exchange",
    "in_multi_worker_mode",
    "jit_replica_function",
    "multi_worker_logs",
    "per_replica_jit",
    "replace_layer_class",
]
