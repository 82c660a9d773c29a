"""Each workaround in ``cyclegan_tf._keras_compat`` reproduces the limitation it works around.

When an upgrade of Keras or TensorFlow fixes one, its test here fails: the workaround can then go.
The probes that need two logical CPU devices or a ``MultiWorkerMirroredStrategy`` run in a spawned
process, so they do not change this process's devices.
"""

import concurrent.futures
import inspect
import multiprocessing
import os

import pytest
from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

from cyclegan_tf import _keras_compat


def _probe_limitations():
    """In a fresh process: does XLA over two replicas fail, do scalar multi-worker logs fail?"""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras.src.backend.tensorflow import trainer

    results = {}
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    with tf.distribute.MirroredStrategy(devices).scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse", jit_compile=True)
    try:
        model.fit(np.ones((4, 4)), np.ones((4, 1)), epochs=1, verbose=0)
        results["xla_over_replicas"] = "works"
    except tf.errors.InvalidArgumentError:
        results["xla_over_replicas"] = "fails"

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    multi_worker = trainer._collective_all_reduce_multi_worker
    trainer._collective_all_reduce_multi_worker = lambda strategy: True  # as with two workers
    try:
        trainer.reduce_per_replica({"loss": tf.constant(1.0)}, strategy, "auto")
        results["scalar_logs"] = "works"
    except ValueError:
        results["scalar_logs"] = "fails"
    finally:
        trainer._collective_all_reduce_multi_worker = multi_worker
    with strategy.scope():
        reduced = trainer.reduce_per_replica({"loss": tf.constant([1.0])}, strategy, "auto")
        results["vector_logs"] = np.asarray(reduced["loss"]).ravel().tolist()
    return results


@pytest.fixture(scope="module")
def limitations():
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, context) as pool:
        return pool.submit(_probe_limitations).result(timeout=300)


def test_xla_over_several_replicas_still_fails(limitations):
    # Needed by per_replica_jit; when this fails, Keras can compile strategy.run as a whole.
    assert limitations["xla_over_replicas"] == "fails"


def test_scalar_logs_of_a_multi_worker_step_still_fail_to_reduce(limitations):
    # Needed by multi_worker_logs; the [1]-shaped logs it returns do reduce, to the same value.
    assert limitations["scalar_logs"] == "fails"
    assert limitations["vector_logs"] == [1.0]


def test_keras_still_reduces_a_batch_before_the_first_step():
    # Needed by PrebuiltModelMixin: the reduction of an (a, b) batch fails with several workers.
    source = inspect.getsource(TensorFlowTrainer._maybe_symbolic_build)
    assert "distribute_strategy.reduce(" in source


def test_per_replica_jit_moves_jit_compile_off_the_whole_step():
    class Strategy:
        def __init__(self, replicas):
            self.num_replicas_in_sync = replicas

    kwargs = {"jit_compile": True}
    assert _keras_compat.per_replica_jit(kwargs, Strategy(2)) is True
    assert kwargs["jit_compile"] is False
    kwargs = {"jit_compile": True}
    assert _keras_compat.per_replica_jit(kwargs, Strategy(1)) is False
    assert kwargs["jit_compile"] is True
    kwargs = {}
    assert _keras_compat.per_replica_jit(kwargs, Strategy(2)) is False
    assert kwargs == {"jit_compile": False}


def test_not_in_multi_worker_mode_by_default():
    assert _keras_compat.in_multi_worker_mode() is False
    results = {"loss": 1.0}
    assert _keras_compat.multi_worker_logs(results) is results


def _epoch_recorded_after_resume(callback_class, backup_dir):
    """Trains 1 epoch of 4 steps, then resumes for epoch 2 and stops after 2 steps of it."""
    import json

    import keras
    import numpy as np

    class StopAfter(keras.callbacks.Callback):
        def __init__(self, steps):
            super().__init__()
            self.steps = steps

        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() >= self.steps:
                raise KeyboardInterrupt  # an interruption that leaves the backup behind

    def fit(epochs, stop_after):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        callbacks = [callback_class(backup_dir, save_freq=1), StopAfter(stop_after)]
        metadata = os.path.join(backup_dir, "training_metadata.json")
        # The caller starts fit at the backup's epoch (the fixed class leaves that to it).
        initial_epoch = json.load(open(metadata))["epoch"] if os.path.exists(metadata) else 0
        try:
            model.fit(
                np.ones((4, 2)),
                np.ones((4, 1)),
                batch_size=1,
                initial_epoch=initial_epoch,
                epochs=epochs,
                verbose=0,
                callbacks=callbacks,
            )
        except KeyboardInterrupt:
            pass

    fit(epochs=2, stop_after=5)  # epoch 0 done, one step of epoch 1 backed up
    fit(epochs=2, stop_after=7)  # resumed at epoch 1: two more steps backed up
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        return json.load(f)["epoch"]


def test_keras_backup_records_epoch_0_within_the_first_resumed_epoch(tmp_path):
    import keras

    keras_epoch = _epoch_recorded_after_resume(
        keras.callbacks.BackupAndRestore, str(tmp_path / "k")
    )
    assert keras_epoch == 0  # the limitation: the run would restart from epoch 0
    fixed_epoch = _epoch_recorded_after_resume(_keras_compat.BackupAndRestore, str(tmp_path / "f"))
    assert fixed_epoch == 1


def _epochs_trained_after_a_backup_at_an_epochs_last_step(callback_class, backup_dir):
    """Backs up after the last step of epoch 1 (of 0..2), then resumes with ``initial_epoch=2``."""
    import json

    import keras
    import numpy as np

    os.makedirs(backup_dir)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.save_weights(os.path.join(backup_dir, "latest.weights.h5"))
    with open(os.path.join(backup_dir, "training_metadata.json"), "w") as f:
        json.dump({"epoch": 1, "batch": 3}, f)  # what Keras writes after that step: epoch 1 is done
    history = model.fit(
        np.ones((4, 2)),
        np.ones((4, 1)),
        batch_size=1,
        initial_epoch=2,
        epochs=3,
        verbose=0,
        callbacks=[callback_class(backup_dir, save_freq=1)],
    )
    return history.epoch


def test_keras_backup_overrides_the_initial_epoch_that_fit_is_given(tmp_path):
    import keras

    # The limitation: fit starts at the backup's epoch (1), not at initial_epoch=2, and trains
    # epoch 1 a second time.
    keras_epochs = _epochs_trained_after_a_backup_at_an_epochs_last_step(
        keras.callbacks.BackupAndRestore, str(tmp_path / "k")
    )
    assert keras_epochs == [1, 2]
    fixed_epochs = _epochs_trained_after_a_backup_at_an_epochs_last_step(
        _keras_compat.BackupAndRestore, str(tmp_path / "f")
    )
    assert fixed_epochs == [2]


def test_tensorflow_still_has_no_public_cluster_barrier():
    import tensorflow as tf

    # Needed by cluster_barrier and cluster_exchange: the coordination service's barrier and
    # key-value store are reachable only through the eager context.
    assert not hasattr(tf.distribute, "barrier") and not hasattr(
        tf.distribute.experimental, "barrier"
    )
    context = _keras_compat._coordination_context()
    for name in ("wait_at_barrier", "set_config_key_value", "get_config_key_value"):
        assert callable(getattr(context, name))


def test_clone_function_does_not_reach_nested_layers():
    """``replace_layer_class``: clone_model's clone_function sees a ResidualBlock, not its norms."""
    import keras

    from cyclegan_tf.models.generators import ResidualBlock, ResnetGenerator

    seen = []

    def clone(layer):
        seen.append(type(layer))
        return layer.__class__.from_config(layer.get_config())

    inputs = keras.Input((None, None, 4))
    keras.models.clone_model(keras.Model(inputs, ResidualBlock(4)(inputs)), clone_function=clone)
    assert ResidualBlock in seen and keras.layers.GroupNormalization not in seen

    class Marked(keras.layers.GroupNormalization):
        pass

    generator = ResnetGenerator(ngf=2, n_res_blocks=1)
    _keras_compat.replace_layer_class(
        generator, lambda layer: type(layer) is keras.layers.GroupNormalization, Marked
    )
    assert type(generator.res_blocks[0].norm_1) is Marked and type(generator.stem.norm) is Marked


def test_gradient_penalty_through_keras_instance_norm_is_wrong_and_spatial_moments_is_right():
    """WGAN-GP's penalty through Keras' ``GroupNormalization`` has the wrong weight gradient.

    A two-convolution critic with an instance norm between them: the gradient of the penalty
    ``|∂D/∂x|²`` with respect to the first kernel, with Keras' layer, with ``spatial_moments``, and
    in float64 with the norm written out.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 16, 16, 3))
    first = rng.normal(0, 0.3, (4, 4, 3, 4))
    second = rng.normal(0, 0.3, (3, 3, 4, 1))

    def penalty_gradient(normalize, dtype):
        x = tf.constant(images, dtype)
        kernel = tf.Variable(first, dtype=dtype)
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                h = normalize(tf.nn.conv2d(x, kernel, 2, "VALID"))
                logits = tf.nn.conv2d(
                    tf.nn.leaky_relu(h, 0.2), tf.constant(second, dtype), 1, "VALID"
                )
            gradients = inner.gradient(logits, x)
            penalty = tf.reduce_sum(tf.square(tf.sqrt(tf.reduce_sum(gradients**2, [1, 2, 3])) - 1))
        return outer.gradient(penalty, kernel).numpy()

    def written_out(h):
        mean = tf.reduce_mean(h, axis=[1, 2], keepdims=True)
        variance = tf.reduce_mean(tf.square(h - mean), axis=[1, 2], keepdims=True)
        return (h - mean) / tf.sqrt(variance + 1e-5)

    def with_spatial_moments(h):
        mean, variance = _keras_compat.spatial_moments(h)
        return (h - mean) / tf.sqrt(variance + 1e-5)

    keras_norm = keras.layers.GroupNormalization(-1, epsilon=1e-5, center=False, scale=False)
    truth = penalty_gradient(written_out, tf.float64)
    scale = np.abs(truth).max()
    assert np.abs(penalty_gradient(with_spatial_moments, tf.float32) - truth).max() < 1e-4 * scale
    assert np.abs(penalty_gradient(keras_norm, tf.float32) - truth).max() > 1e-3 * scale
