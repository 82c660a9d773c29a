"""Mixed precision and XLA: float32 islands, float32 exports, loss scaling, one-line errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf import export
from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.models.cyclegan import CycleGAN
from cyclegan_tf.training import distribute

TINY = {"ngf": 4, "ndf": 4, "n_res_blocks": 1, "image_size": 32, "pool_size": 2}


def _batch(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return tuple(rng.uniform(-1, 1, (2, size, size, 3)).astype("float32") for _ in range(2))


@pytest.fixture(scope="module")
def bf16_model():
    """A tiny CycleGAN built under ``mixed_bfloat16`` and trained for two steps with XLA."""
    with distribute.precision("bf16"):
        keras.utils.set_random_seed(0)
        model = CycleGAN(**TINY)
        model.compile(jit_compile=True)
    history = model.fit(
        tf.data.Dataset.from_tensors(_batch()).repeat(), epochs=1, steps_per_epoch=2, verbose=0
    )
    return model, history.history


def test_precision_block_restores_the_global_policy():
    with distribute.precision("bf16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_bf16_computes_in_bfloat16_with_float32_islands(bf16_model):
    model, history = bf16_model
    generator = model.generator_ab
    assert {w.dtype for w in model.weights} == {"float32", "int32"}  # no bfloat16 variables
    by_kind = {}
    for layer in generator.layers:
        by_kind.setdefault(type(layer).__name__, set()).add(layer.compute_dtype)
    assert by_kind["Conv2D"] == {"bfloat16"}
    assert by_kind["GroupNormalization"] == {"float32"}  # instance-norm statistics
    assert generator.get_layer("tanh").compute_dtype == "float32"
    assert model.discriminator_a.get_layer("float32_logits").compute_dtype == "float32"
    real_a, _ = _batch()
    assert generator(real_a).dtype == "float32"
    assert model.discriminator_a(real_a).dtype == "float32"
    assert model.pool_a.images.dtype == "float32"
    assert all(np.isfinite(values[-1]) for values in history.values())


def test_bf16_export_takes_and_returns_float32(bf16_model, tmp_path):
    model, _ = bf16_model
    version = export.export_generator(model.generator_ab, str(tmp_path), "apple2orange")
    serving = tf.saved_model.load(version).signatures["serving_default"]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.dtype == tf.float32
    assert serving.structured_outputs["images"].dtype == tf.float32
    pixels = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    translated = serving(images=tf.constant(pixels))["images"].numpy()
    assert translated.dtype == np.float32 and translated.shape == pixels.shape
    # The same weights computed in float32 give the same picture within bfloat16's precision.
    float32_generator = CycleGAN(**TINY).generator_ab
    float32_generator.set_weights(model.generator_ab.get_weights())
    reference = (float32_generator(pixels / 127.5 - 1.0).numpy() + 1.0) * 127.5
    assert np.abs(translated - np.clip(reference, 0, 255)).mean() < 2.0


def test_fp16_wraps_the_optimizer_in_a_loss_scale_optimizer():
    optimizer = distribute.wrap_optimizer(keras.optimizers.Adam(), "fp16")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    for precision in (None, "bf16"):
        plain = keras.optimizers.Adam()
        assert distribute.wrap_optimizer(plain, precision) is plain


def test_fp16_on_a_cpu_is_a_one_line_error(tmp_path, tiny_args, capsys):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: fp16 is allowed")
    with pytest.raises(SystemExit) as exit_:
        train_cli.main(
            [*tiny_args(str(tmp_path / "run"), str(tmp_path / "x")), "--mixed-precision", "fp16"]
        )
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "cyclegan-train: error: --mixed-precision: fp16 needs a GPU (float16 is emulated and slow "
        "on CPUs); use bf16 on CPU\n"
    )
    assert keras.config.dtype_policy().name == "float32"


CUT_TINY = {"ngf": 4, "ndf": 4, "n_res_blocks": 1, "image_size": 32, "num_patches": 16}
# Per objective: its tiny options, SGD's learning rate, and the scale of random initial weights (None:
# the objective's own). At CUT's initial scale (Xavier, gain 0.02) the normalised PatchNCE features
# are tiny and their gradients huge: round-off alone would differ.
XLA_CASES = {
    "cyclegan": ({**TINY, "pool_size": 0}, 0.5, None),
    "cut": (CUT_TINY, 0.05, 0.1),
    "fastcut": (CUT_TINY, 0.05, 0.1),
}


@pytest.mark.parametrize("objective", sorted(XLA_CASES))
def test_xla_step_matches_the_graph_step(objective):
    from cyclegan_tf.models import get_objective

    options, learning_rate, scale = XLA_CASES[objective]
    initial, weights = None, {}
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = get_objective(objective)(**options)
        if initial is None:
            initial = model.get_weights()
            if scale is not None:
                rng = np.random.default_rng(0)
                initial = [rng.normal(0, scale, w.shape).astype(w.dtype) for w in initial]
        model.set_weights(initial)
        model.compile(
            generator_optimizer=keras.optimizers.SGD(learning_rate),
            discriminator_optimizer=keras.optimizers.SGD(learning_rate),
            jit_compile=jit,
        )
        model.fit(tf.data.Dataset.from_tensors(_batch()), epochs=1, steps_per_epoch=1, verbose=0)
        weights[jit] = model.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(weights[False], initial)) > 1e-3
    for graph, xla in zip(weights[False], weights[True]):
        np.testing.assert_allclose(xla, graph, rtol=1e-4, atol=2e-5)


def test_cut_trains_in_bf16_with_float32_losses():
    from cyclegan_tf.models import CUT

    with distribute.precision("bf16"):
        keras.utils.set_random_seed(0)
        model = CUT(**CUT_TINY)
        model.compile()
    logs = model.train_on_batch(*_batch(), return_dict=True)
    assert all(np.isfinite(value) for value in logs.values()) and logs["nce"] > 0
    assert model.generator.get_layer("down_0_conv").compute_dtype == "bfloat16"
    assert model.projection.get_layer("mlp_0_dense_0").compute_dtype == "bfloat16"
    assert model.projection.get_layer("mlp_0_l2").compute_dtype == "float32"
    assert {w.dtype for w in model.weights} <= {"float32", "int32", "int64"}
