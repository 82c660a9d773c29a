"""``CUT`` and ``FastCUT`` against an independent PyTorch implementation of the official step.

One training step from the same weights, images, patches and flip: every loss term and every updated
weight of the generator, the discriminator and the projection head within 1e-4. The PyTorch side is
``tests/models/torch_cut.py``.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf.errors import OptionError
from cyclegan_tf.models import CUT, FastCUT, patch_nce_loss

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")

from cyclegan_tf.tools import torch_import  # noqa: E402
from tests.models import torch_cut  # noqa: E402

SIZE = 32
# The official indices of input, down_0, down_1, res_0 and res_1 in a two-block generator.
LAYERS = [0, 4, 8, 12, 13]
PATCHES = 16
UNITS = 8
LEARNING_RATE = 0.05
TOLERANCE = 1e-4


def _randomize(module, seed):
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=rng) * 0.1)


def _models(objective, seed):
    """A Keras objective and the PyTorch modules with the same weights."""
    generator = torch_cut.Generator(ngf=4, n_blocks=2)
    discriminator = torch_cut.Discriminator(ndf=4, n_layers=3)
    keras.utils.set_random_seed(seed)
    model = objective(
        ngf=4,
        ndf=4,
        n_res_blocks=2,
        nce_layers=",".join(map(str, LAYERS)),
        num_patches=PATCHES,
        projection_units=UNITS,
        image_size=SIZE,
        seed=seed,
    )
    channels = model.projection.channels
    projection = torch_cut.Projection(channels, units=UNITS)
    for index, module in enumerate((generator, discriminator, projection)):
        _randomize(module, seed * 10 + index)
    state = {key: value.numpy() for key, value in generator.state_dict().items()}
    imported = torch_import.generator_from_state_dict(state, ngf=4, n_res_blocks=2)
    model.generator.set_weights(imported.get_weights())
    torch_cut.copy_discriminator(discriminator, model.discriminator)
    for dense, linear in _dense_pairs(model, projection):
        dense.kernel.assign(linear.weight.detach().numpy().T)
        dense.bias.assign(linear.bias.detach().numpy())
    model.compile(
        generator_optimizer=keras.optimizers.SGD(LEARNING_RATE),
        discriminator_optimizer=keras.optimizers.SGD(LEARNING_RATE),
    )
    return model, generator, discriminator, projection


def _dense_pairs(model, projection):
    """(our Dense, the PyTorch Linear) of each MLP layer of the projection head."""
    for index, mlp in enumerate(projection.mlps):
        linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
        for depth, linear in enumerate(linears):
            yield model.projection.get_layer(f"mlp_{index}_dense_{depth}"), linear


def _keras_generator_in_torch_layout(model):
    """Our generator's weights as a PyTorch state dict of the same layout."""
    reference = torch_cut.Generator(ngf=4, n_blocks=2)
    convs, _ = torch_import.torch_layout(model.generator)
    state = reference.state_dict()
    for prefix, stage in convs.items():
        state[f"{prefix}.weight"] = torch.from_numpy(
            np.transpose(stage.conv.kernel.numpy(), (3, 2, 0, 1))
        )
        state[f"{prefix}.bias"] = torch.from_numpy(stage.conv.bias.numpy())
    return state


def _one_step(objective, seed, flip_wanted=None):
    model, generator, discriminator, projection = _models(objective, seed)
    if flip_wanted is not None:
        assert bool(model.flip_at(0)) == flip_wanted, "choose a seed that flips as wanted"
    rng = np.random.default_rng(seed)
    real_a = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    real_b = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    maps = model._encoder.model(real_a)
    locations = [m.shape[1] * m.shape[2] for m in maps]
    patch_ids = [ids.numpy() for ids in model.patch_ids_at(0, 0, locations)]
    identity_ids = [ids.numpy() for ids in model.patch_ids_at(0, 1, locations)]
    assert [len(ids) for ids in patch_ids] == [PATCHES] * len(LAYERS)
    assert not all(np.array_equal(a, b) for a, b in zip(patch_ids, identity_ids))

    step = torch_cut.CutStep(
        generator,
        discriminator,
        projection,
        LAYERS,
        lambda_nce=model.lambda_nce,
        nce_idt=model.nce_idt,
        flip_equivariance=model.flip_equivariance,
        make_optimizer=lambda parameters: torch.optim.SGD(parameters, lr=LEARNING_RATE),
    )
    flipped = bool(model.flip_at(0))
    expected = step.step(
        torch_cut.nchw(real_a), torch_cut.nchw(real_b), patch_ids, identity_ids, flipped
    )
    logs = model.train_on_batch(real_a, real_b, return_dict=True)
    return model, (generator, discriminator, projection), expected, logs


def _assert_same_weights(model, modules):
    generator, discriminator, projection = modules
    ours = _keras_generator_in_torch_layout(model)
    for key, value in generator.state_dict().items():
        np.testing.assert_allclose(ours[key].numpy(), value.numpy(), atol=TOLERANCE, err_msg=key)
    convs = [m for m in discriminator.model if isinstance(m, torch.nn.Conv2d)]
    layers = [
        layer for layer in model.discriminator.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    for conv, layer in zip(convs, layers, strict=True):
        kernel = conv.weight.detach().permute(2, 3, 1, 0).numpy()
        np.testing.assert_allclose(layer.kernel.numpy(), kernel, atol=TOLERANCE)
        np.testing.assert_allclose(layer.bias.numpy(), conv.bias.detach().numpy(), atol=TOLERANCE)
    for dense, linear in _dense_pairs(model, projection):
        np.testing.assert_allclose(
            dense.kernel.numpy(), linear.weight.detach().numpy().T, atol=TOLERANCE
        )
        np.testing.assert_allclose(dense.bias.numpy(), linear.bias.detach().numpy(), atol=TOLERANCE)


def _assert_moved(model, modules, seed):
    """The step changed the weights (so the comparison above compared updates, not copies)."""
    before, *_ = _models(type(model), seed)
    moved = [
        float(np.abs(after - start).max())
        for after, start in zip(model.get_weights(), before.get_weights())
    ]
    assert sum(m > 10 * TOLERANCE for m in moved) > len(moved) // 2


def test_one_cut_step_equals_the_official_step():
    model, modules, expected, logs = _one_step(CUT, seed=1)
    assert set(expected) == {"d_loss", "d_real", "d_fake", "adv", "nce", "nce_y", "g_loss"}
    for name, value in expected.items():
        assert logs[name] == pytest.approx(value, abs=TOLERANCE), name
    assert logs["g_loss"] == pytest.approx(
        logs["adv"] + 0.5 * (logs["nce"] + logs["nce_y"]), abs=1e-5
    )
    _assert_same_weights(model, modules)
    _assert_moved(model, modules, seed=1)


def test_one_fastcut_step_with_a_flip_equals_the_official_step():
    seed = next(s for s in range(20) if bool(_flip(s)))
    model, modules, expected, logs = _one_step(FastCUT, seed=seed, flip_wanted=True)
    assert (model.lambda_nce, model.nce_idt, model.flip_equivariance) == (10.0, False, True)
    assert "nce_y" not in expected and logs["nce_y"] == 0.0
    for name, value in expected.items():
        assert logs[name] == pytest.approx(value, abs=TOLERANCE * max(1.0, abs(value))), name
    _assert_same_weights(model, modules)


def _flip(seed):
    model = FastCUT(ngf=2, ndf=2, n_res_blocks=1, nce_layers="0", image_size=SIZE, seed=seed)
    return model.flip_at(0)


def test_patch_nce_matches_the_official_loss_and_ignores_the_keys_gradient():
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(2, 5, 4)).astype("float32")
    keys = rng.normal(size=(2, 5, 4)).astype("float32")
    queries /= np.linalg.norm(queries, axis=-1, keepdims=True)
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    expected = torch_cut.patch_nce(
        torch.from_numpy(queries.reshape(10, 4)), torch.from_numpy(keys.reshape(10, 4)), 2
    ).numpy()
    ours = patch_nce_loss(queries, keys).numpy()
    np.testing.assert_allclose(ours.reshape(-1), expected, atol=1e-5)
    key_tensor = tf.constant(keys)
    with tf.GradientTape() as tape:
        tape.watch(key_tensor)
        loss = tf.reduce_mean(patch_nce_loss(tf.constant(queries), key_tensor))
    assert tape.gradient(loss, key_tensor) is None


def test_patches_and_flips_are_the_same_for_the_same_step_and_seed():
    model = CUT(ngf=2, ndf=2, n_res_blocks=1, nce_layers="res_0", image_size=SIZE, seed=3)
    first = [ids.numpy() for ids in model.patch_ids_at(5, 0, [64])]
    again = [ids.numpy() for ids in model.patch_ids_at(5, 0, [64])]
    later = [ids.numpy() for ids in model.patch_ids_at(6, 0, [64])]
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], later[0])
    assert sorted(first[0]) == sorted(set(first[0])) and len(first[0]) == 64  # a permutation
    flips = [bool(model.flip_at(step)) for step in range(40)]
    assert 10 < sum(flips) < 30


def test_a_cut_saves_and_loads_with_its_projection():
    model = CUT(ngf=2, ndf=2, n_res_blocks=1, nce_layers="input,res_0", image_size=SIZE)
    model.compile()
    config = model.get_config()
    assert config["nce_layers"] == ["input", "res_0"] and config["antialias"] is True
    rebuilt = CUT.from_config(config)
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]
    assert model.projection.channels == [3, 8]
    # The encoder shares the generator's weights: they are counted (and saved) once.
    assert model.count_params() == sum(n.count_params() for n in model.networks().values())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"nce_layers": "res_3"}, r"nce_layers: 'res_3' is not a map of this generator"),
        ({"nce_layers": "2"}, r"'2' is not a map.*input \(0\), stem \(1\), down_0 \(4\)"),
        ({"num_patches": 65}, r"num_patches: is larger than the 8x8 map res_0"),
        ({"nce_layers": "input,input"}, "distinct maps"),
    ],
)
def test_impossible_nce_options_are_refused_in_one_line(kwargs, match):
    with pytest.raises(OptionError, match=match) as error:
        CUT(ngf=2, ndf=2, n_res_blocks=1, image_size=SIZE, **kwargs)
    assert "\n" not in str(error.value)


def test_cut_trains_with_the_official_architecture_options():
    """Batch norms, the PixelGAN and WGAN-GP: CUT builds them as CycleGAN does and steps on them."""
    model = CUT(
        ngf=4,
        ndf=4,
        n_res_blocks=1,
        image_size=16,
        num_patches=8,
        projection_units=8,
        norm="batch",
        discriminator_kind="pixel",
        gan_mode="wgangp",
        dropout=True,
    )
    generator = model.generator.get_config()
    assert (generator["norm"], generator["dropout"], generator["use_bias"]) == (
        "batch",
        True,
        False,
    )
    model.compile(run_eagerly=True)
    rng = np.random.default_rng(0)
    real_a, real_b = rng.uniform(-1, 1, (2, 2, 16, 16, 3)).astype("float32")
    alpha = model.penalty_mixing(0, 0, 2).numpy()
    assert np.all((alpha >= 0) & (alpha < 1)) and alpha[0] != alpha[1]
    logs = model.train_on_batch(real_a, real_b, return_dict=True)
    assert all(np.isfinite(value) for value in logs.values())
    # wgangp: d_loss is 0.5 (D(fake) - D(real)) plus a penalty, which is positive.
    assert logs["d_loss"] > 0.5 * (logs["d_real"] + logs["d_fake"])
    assert CUT.from_config(model.get_config()).get_config() == model.get_config()
    with pytest.raises(OptionError, match="generator: PatchNCE reads its maps from a ResNet"):
        CUT(generator_kind="unet_256")
