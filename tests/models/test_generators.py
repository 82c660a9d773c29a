"""``ResnetGenerator`` carries its architecture: config, stages, and every saved form round-trip.

Nothing here looks a layer up by name: what the engine, the SavedModel rebuild and the loaders see
is asserted from the generator's config and stages.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf import inference, pixels
from cyclegan_tf.export import saved_model
from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model, recorded_config
from cyclegan_tf.inference.tiled import TiledGenerator
from cyclegan_tf.models import CycleGAN
from cyclegan_tf.models.generators import ResnetGenerator, as_resnet_generator, resnet_generator
from tests.conftest import REPO_ROOT

LEGACY = REPO_ROOT / "tests" / "fixtures" / "legacy_0_1"
ARCHITECTURE_KEYS = ("ngf", "n_res_blocks", "channels", "padding_type", "norm")
OPTION_KEYS = ("norm", "affine_norm", "dropout", "use_bias", "channels", "output_channels")


def _architecture(generator):
    return {key: generator.get_config()[key] for key in ARCHITECTURE_KEYS}


def _randomized(generator, seed=0):
    """Non-zero biases and weights of a visible size, so that a lost or swapped weight shows."""
    rng = np.random.default_rng(seed)
    for weight in generator.weights:
        weight.assign(rng.normal(0, 0.05, weight.shape))
    return generator


@pytest.fixture(scope="module")
def generator():
    return _randomized(ResnetGenerator(ngf=4, n_res_blocks=2, name="netG_A2B"))


@pytest.mark.parametrize(
    "options",
    [
        {"norm": "batch"},
        {"norm": "none"},
        {"affine_norm": True, "dropout": True},
        {"channels": 1, "output_channels": 3},
    ],
    ids=str,
)
def test_architecture_options_round_trip_and_run_tiled(options, tmp_path):
    """Each option is in the config, the .keras file, the SavedModel, and the tiled engine reads it."""
    generator = ResnetGenerator(ngf=4, n_res_blocks=1, **options)
    _randomized(generator, seed=3)
    for weight in generator.weights:  # a batch norm's running variance must stay positive
        if "variance" in weight.path:
            weight.assign(np.abs(weight.numpy()) + 0.5)
    config = generator.get_config()
    assert {key: config[key] for key in options} == options
    assert config["use_bias"] is (config["norm"] == "instance")
    path = str(tmp_path / "g.keras")
    generator.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert {key: loaded.get_config()[key] for key in OPTION_KEYS} == {
        key: config[key] for key in OPTION_KEYS
    }
    channels = config["channels"]
    image = np.random.default_rng(2).uniform(-1, 1, (21, 30, channels)).astype("float32")
    whole = inference.translate(loaded, image[None])[0].numpy()
    assert whole.shape == (21, 30, config["output_channels"])
    np.testing.assert_array_equal(whole, inference.translate(generator, image[None])[0])
    tiled = TiledGenerator(loaded, band_rows=3).translate(image)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)


def test_dropout_drops_half_while_training_and_nothing_in_inference():
    from cyclegan_tf.models.generators import ResidualBlock

    plain = ResidualBlock(8)
    dropping = ResidualBlock(8, dropout=True)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 12, 12, 8)).astype("float32")
    plain(x)
    dropping(x)
    dropping.set_weights(plain.get_weights())
    np.testing.assert_array_equal(dropping(x, training=False), plain(x, training=False))
    first, second = dropping(x, training=True), dropping(x, training=True)
    assert not np.array_equal(first, second)
    # The dropout sits between the two convolutions: its mask shows in the first one's activations.
    inner = dropping.drop(np.ones((1, 64, 64, 8), "float32"), training=True).numpy()
    assert set(np.unique(inner)) == {0.0, 2.0} and abs(np.mean(inner == 0) - 0.5) < 0.02


def test_stages_follow_the_config():
    generator = ResnetGenerator(ngf=6, n_res_blocks=3)
    config = generator.get_config()
    assert _architecture(generator) == {
        "ngf": 6,
        "n_res_blocks": 3,
        "channels": 3,
        "padding_type": "reflect",
        "norm": "instance",
    }
    assert len(generator.downsamplings) == len(generator.upsamplings)
    assert len(generator.downsamplings) == pixels.GENERATOR_DOWNSAMPLINGS
    assert len(generator.res_blocks) == config["n_res_blocks"]
    stem, head = generator.stem, generator.head
    assert (stem.kernel_size, stem.filters, stem.pad, stem.pad_mode) == (7, 6, 3, "reflect")
    assert [s.filters for s in generator.downsamplings] == [12, 24]
    assert all(
        s.stride == 2 and s.pad == 1 and s.pad_mode == "zero" for s in generator.downsamplings
    )
    assert [s.filters for s in generator.upsamplings] == [12, 6]
    assert all(s.transpose and s.pad == 0 for s in generator.upsamplings)
    assert (head.kernel_size, head.filters, head.epsilon) == (7, 3, None)
    for block in generator.res_blocks:
        assert [(s.kernel_size, s.pad, s.pad_mode, s.filters) for s in block.stages] == [
            (3, 1, "reflect", 24)
        ] * 2
    # Every convolution of the network is a stage, in the order the image meets them.
    convs = [
        layer
        for layer in generator.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    outer = (stem, *generator.downsamplings, *generator.upsamplings, head)
    assert convs == [stage.conv for stage in outer]
    inner = [stage.conv for block in generator.res_blocks for stage in block.stages]
    assert [stage.conv for stage in generator.conv_stages()] == convs[:3] + inner + convs[3:]


def test_reference_size_and_bad_arguments():
    assert ResnetGenerator().count_params() == 11_378_179
    with pytest.raises(ValueError, match="n_res_blocks=-1"):
        ResnetGenerator(n_res_blocks=-1)
    with pytest.raises(ValueError, match="ngf=0"):
        ResnetGenerator(ngf=0)
    with pytest.raises(ValueError, match="padding_type must be one of \\['reflect'\\]"):
        ResnetGenerator(padding_type="zero")
    with pytest.raises(ValueError, match=r"norm must be one of \['instance', 'batch', 'none'\]"):
        ResnetGenerator(norm="group")
    with pytest.raises(ValueError, match="output_channels=0"):
        ResnetGenerator(output_channels=0)


def test_config_and_keras_file_round_trip(generator, tmp_path):
    clone = ResnetGenerator.from_config(generator.get_config())
    assert isinstance(clone, ResnetGenerator) and _architecture(clone) == _architecture(generator)
    path = str(tmp_path / "g.keras")
    generator.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert type(loaded) is ResnetGenerator
    assert _architecture(loaded) == _architecture(generator) and loaded.name == "netG_A2B"
    x = np.random.default_rng(1).uniform(-1, 1, (1, 20, 12, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), generator(x))


def test_saved_model_records_the_config_and_rebuilds_the_generator(generator, tmp_path):
    path = saved_model.export(generator, str(tmp_path), "m")
    loaded = tf.saved_model.load(path)
    assert {k: recorded_config(loaded)[k] for k in ARCHITECTURE_KEYS} == _architecture(generator)
    rebuilt = generator_from_saved_model(loaded)
    assert type(rebuilt) is ResnetGenerator and _architecture(rebuilt) == _architecture(generator)
    for mine, theirs in zip(rebuilt.weights, generator.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_tiled_engine_reads_the_stages(generator):
    engine = TiledGenerator(generator, band_rows=3)
    assert engine.architecture() == (generator.ngf, generator.n_res_blocks)
    image = np.random.default_rng(2).uniform(-1, 1, (21, 17, 3)).astype("float32")
    expected = inference.translate(generator, image[None])[0].numpy()
    np.testing.assert_allclose(engine.translate(image), expected, atol=2e-5)


def test_as_resnet_generator_refuses_other_models():
    other = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 3)])
    with pytest.raises(ValueError, match="is not a ResNet generator"):
        as_resnet_generator(other)
    same = resnet_generator(ngf=2, n_res_blocks=0)
    assert as_resnet_generator(same) is same


def test_files_of_version_0_1_load_and_compute_the_same():
    """A generator .keras file, a SavedModel and a CycleGAN backup written by cyclegan_tf 0.1."""
    inputs, outputs = np.load(LEGACY / "inputs.npy"), np.load(LEGACY / "outputs.npy")
    expected_architecture = {"ngf": 2, "n_res_blocks": 1, "channels": 3}

    loaded = inference.load_generator(str(LEGACY / "netG_A2B.keras"))
    assert type(loaded) is ResnetGenerator
    assert {k: loaded.get_config()[k] for k in expected_architecture} == expected_architecture
    np.testing.assert_allclose(loaded(inputs), outputs, atol=1e-6)
    tiled = TiledGenerator(loaded, band_rows=2).translate(inputs[0])
    np.testing.assert_allclose(tiled, outputs[0], atol=2e-5)

    rebuilt = generator_from_saved_model(tf.saved_model.load(str(LEGACY / "generator" / "1")))
    assert type(rebuilt) is ResnetGenerator
    assert {k: rebuilt.get_config()[k] for k in expected_architecture} == expected_architecture
    np.testing.assert_allclose(rebuilt(inputs), outputs, atol=1e-6)

    model = CycleGAN(ngf=2, ndf=2, n_res_blocks=1, image_size=32, pool_size=0)
    model.load_weights(str(LEGACY / "cyclegan.weights.h5"))
    np.testing.assert_allclose(model.generator_ab(inputs), outputs, atol=1e-6)


@pytest.mark.parametrize("height,width", [(32, 32), (36, 44), (64, 20), (8, 12)])
def test_generator_output_size_equals_input_size(height, width):
    generator = resnet_generator(ngf=8, n_res_blocks=1)
    outputs = generator(np.random.uniform(-1, 1, (2, height, width, 3)).astype("float32"))
    assert outputs.shape == (2, height, width, 3)
    assert np.all(np.abs(outputs) <= 1.0)


def test_instance_norm_is_per_image():
    generator = resnet_generator(ngf=8, n_res_blocks=1)
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    other = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32") * 5
    alone = generator(image).numpy()
    in_batch = generator(np.concatenate([image, other])).numpy()[:1]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def _torch_parity_generator(antialias, antialias_up, seed):
    """CUT's generator in PyTorch (tests/models/torch_cut.py) with visible random weights, and ours."""
    torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")
    from cyclegan_tf.tools import torch_import
    from tests.models import torch_cut

    reference = torch_cut.Generator(4, 2, antialias=antialias, antialias_up=antialias_up)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=rng) * 0.05)
    state = {key: value.numpy() for key, value in reference.state_dict().items()}
    ours = torch_import.generator_from_state_dict(state, ngf=4, n_res_blocks=2)
    return reference.eval(), ours


@pytest.mark.parametrize(
    "antialias,antialias_up", [(True, True), (True, False), (False, True)], ids=str
)
@pytest.mark.parametrize("height,width", [(32, 32), (36, 44)])
def test_anti_aliased_generator_equals_cuts_pytorch_generator(
    antialias, antialias_up, height, width
):
    from tests.models import torch_cut

    reference, ours = _torch_parity_generator(antialias, antialias_up, seed=height)
    assert (ours.antialias, ours.antialias_up) == (antialias, antialias_up)
    images = np.random.default_rng(width).uniform(-1, 1, (2, height, width, 3)).astype("float32")
    expected = torch_cut.nhwc(reference(torch_cut.nchw(images)))
    assert expected.std() > 0.1
    np.testing.assert_allclose(ours(images).numpy(), expected, atol=1e-4)


def test_feature_points_are_the_official_nce_layers():
    """``input, down_0, down_1, res_0, res_1`` are the official indices 0, 4, 8, 12, 13."""
    from tests.models import torch_cut

    reference, ours = _torch_parity_generator(True, True, seed=3)
    points = ("input", "down_0", "down_1", "res_0", "res_1")
    indices = [ours.official_feature_index(point) for point in points]
    assert indices == [0, 4, 8, 12, 13]
    images = np.random.default_rng(1).uniform(-1, 1, (2, 36, 44, 3)).astype("float32")
    expected = [torch_cut.nhwc(f) for f in reference(torch_cut.nchw(images), indices)]
    features = ours.feature_extractor(points)(images)
    for point, feature, reference_feature in zip(points, features, expected):
        np.testing.assert_allclose(feature.numpy(), reference_feature, atol=1e-4, err_msg=point)
    # Without anti-aliasing the same meaning sits at other official indices.
    strided = ResnetGenerator(ngf=4, n_res_blocks=2)
    assert [strided.official_feature_index(point) for point in points] == [0, 4, 7, 10, 11]
    with pytest.raises(ValueError, match=r"some of \['input', 'stem'.*Received: \['res_7'\]"):
        strided.feature_extractor(["res_7"])


def test_anti_aliased_generator_round_trips_and_runs_tiled():
    generator = _randomized(
        ResnetGenerator(ngf=4, n_res_blocks=1, antialias=True, init_type="xavier"), seed=5
    )
    config = generator.get_config()
    assert (config["antialias"], config["antialias_up"], config["init_type"]) == (
        True,
        True,
        "xavier",
    )
    rebuilt = ResnetGenerator.from_config(config)
    rebuilt.set_weights(generator.get_weights())
    image = np.random.default_rng(2).uniform(-1, 1, (37, 50, 3)).astype("float32")
    whole = inference.translate(generator, image[None])[0]
    np.testing.assert_array_equal(inference.translate(rebuilt, image[None])[0], whole)
    tiled = TiledGenerator(generator, band_rows=3).translate(image)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
