import io
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")

from cyclegan_tf import inference  # noqa: E402
from cyclegan_tf.cli import import_torch  # noqa: E402
from cyclegan_tf.inference import load_generator  # noqa: E402
from cyclegan_tf.inference.tiled import TiledGenerator  # noqa: E402
from cyclegan_tf.models.generators import ResnetGenerator as KerasGenerator  # noqa: E402
from cyclegan_tf.tools import torch_import  # noqa: E402
from tests.tools.torch_reference import ResnetGenerator, random_reference_generator  # noqa: E402

PARITY_TOLERANCE = 1e-4  # in [-1, 1] units


def torch_output(generator, pixels):
    """The PyTorch generator on NHWC pixels in [0, 255]; NHWC output in [-1, 1]."""
    inputs = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        return generator(inputs).permute(0, 2, 3, 1).numpy()


def numpy_state(generator):
    return {key: value.numpy() for key, value in generator.state_dict().items()}


@pytest.mark.parametrize("n_blocks", [9, 6, 1, 0])
def test_layout_names_every_weight_of_the_reference_module(n_blocks):
    keys = set(ResnetGenerator(ngf=4, n_blocks=n_blocks).state_dict())
    convs, _ = torch_import.torch_layout(KerasGenerator(ngf=4, n_res_blocks=n_blocks))
    assert {f"{prefix}.{kind}" for prefix in convs for kind in ("weight", "bias")} == keys


def test_layout_of_the_released_nine_block_generator():
    generator = KerasGenerator(ngf=4, n_res_blocks=9)
    convs, norms = torch_import.torch_layout(generator)
    assert convs["model.1"] is generator.stem
    assert (convs["model.4"], convs["model.7"]) == generator.downsamplings
    assert convs["model.10.conv_block.1"] is generator.res_blocks[0].stages[0]
    assert convs["model.18.conv_block.5"] is generator.res_blocks[8].stages[1]
    assert (convs["model.19"], convs["model.22"], convs["model.26"]) == (
        *generator.upsamplings,
        generator.head,
    )
    assert {"model.2", "model.20", "model.23", "model.10.conv_block.6"} <= set(norms)
    assert norms["model.10.conv_block.6"] is generator.res_blocks[0].stages[1]


@pytest.fixture(scope="module")
def imported_reference(tmp_path_factory):
    """A random ngf-64 / 9-block reference generator, saved as .pth and imported with the CLI."""
    tmp = tmp_path_factory.mktemp("parity")
    generator = random_reference_generator(ngf=64, n_blocks=9, seed=1)
    weights = tmp / "latest_net_G.pth"
    torch.save(generator.state_dict(), weights)
    export_dir = tmp / "saved_models"
    code = import_torch.main(
        [str(weights), "--name", "apple2orange", "--export-dir", str(export_dir)]
    )
    assert code == 0
    return generator, export_dir / "apple2orange"


@pytest.mark.parametrize("height,width", [(256, 256), (200, 300)])
def test_exported_saved_model_equals_pytorch(imported_reference, height, width):
    generator, model_dir = imported_reference
    pixels = np.random.default_rng(height).integers(0, 256, (1, height, width, 3)).astype("float32")
    expected = torch_output(generator, pixels)
    assert expected.std() > 0.2 and np.mean(np.abs(expected) > 0.99) < 0.05, "output saturated"

    serving = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
    translated = serving(images=tf.constant(pixels))["images"].numpy()
    error = np.abs(translated / 127.5 - 1.0 - expected).max()
    print(f"parity {height}x{width}: max |SavedModel - PyTorch| = {error:.2e} ([-1, 1] units)")
    assert translated.shape == pixels.shape
    assert error < PARITY_TOLERANCE


def test_imported_keras_file_and_bytes_signature_equal_pytorch(imported_reference):
    generator, model_dir = imported_reference
    pixels = np.random.default_rng(7).integers(0, 256, (1, 64, 96, 3)).astype("uint8")
    expected = torch_output(generator, pixels)

    keras_model = load_generator(str(model_dir / "1.keras"))
    from_keras = keras_model(pixels.astype("float32") / 127.5 - 1.0).numpy()
    assert np.abs(from_keras - expected).max() < PARITY_TOLERANCE

    buffer = io.BytesIO()
    Image.fromarray(pixels[0]).save(buffer, format="PNG")
    serving = tf.saved_model.load(str(model_dir / "1")).signatures["translate_bytes"]
    png = serving(image_bytes=tf.constant([buffer.getvalue()]))["image_bytes"].numpy()[0]
    decoded = np.asarray(Image.open(io.BytesIO(png)), dtype="float32")
    # PNG output is rounded to whole pixels: at most half a level off.
    assert np.abs(decoded - (expected[0] + 1.0) * 127.5).max() <= 0.5 + 1e-2


def test_running_statistics_of_old_checkpoints_are_ignored():
    generator = random_reference_generator(ngf=8, n_blocks=2, seed=2)
    state = numpy_state(generator)
    _, norms = torch_import.torch_layout(KerasGenerator(ngf=8, n_res_blocks=2))
    old = dict(state)
    for prefix in norms:  # values that would change the output if they were applied
        old[f"{prefix}.running_mean"] = np.full(8, 5.0, "float32")
        old[f"{prefix}.running_var"] = np.full(8, 9.0, "float32")
        old[f"{prefix}.num_batches_tracked"] = np.array(3)
    pixels = np.random.default_rng(3).integers(0, 256, (1, 32, 40, 3)).astype("float32")
    x = pixels / 127.5 - 1.0
    plain = torch_import.generator_from_state_dict(state)(x).numpy()
    with_stats = torch_import.generator_from_state_dict(old)(x).numpy()
    np.testing.assert_array_equal(plain, with_stats)
    assert np.abs(plain - torch_output(generator, pixels)).max() < PARITY_TOLERANCE


def test_data_parallel_prefix_is_accepted():
    generator = random_reference_generator(ngf=4, n_blocks=1, seed=4)
    state = {f"module.{key}": value for key, value in numpy_state(generator).items()}
    model = torch_import.generator_from_state_dict(state)
    np.testing.assert_array_equal(
        model.stem.conv.kernel.numpy(),
        np.transpose(state["module.model.1.weight"], (2, 3, 1, 0)),
    )


def test_a_file_of_no_known_layout_names_the_closest_and_the_first_key_that_differs():
    state = numpy_state(random_reference_generator(ngf=4, n_blocks=1, seed=5))
    del state["model.14.weight"]
    state["model.1.bias"] = np.zeros(5, "float32")
    with pytest.raises(ValueError) as error:
        torch_import.generator_from_state_dict(state)
    message = str(error.value)
    assert "\n" not in message
    assert "the closest is the official CycleGAN ResNet layout (ngf 4, 1 blocks" in message
    assert "the first key that differs is model.1.bias (shape [5], expected [4])" in message
    # A discriminator's weights: no generator's first key.
    from tests.models import torch_cut

    discriminator = torch_cut.Discriminator(ndf=4, n_layers=2, antialias=False).state_dict()
    with pytest.raises(ValueError, match=r"its first key model\.0\.weight is none of theirs"):
        torch_import.detect_generator({k: v.numpy() for k, v in discriminator.items()})


def test_cli_refuses_overrides_that_do_not_fit_the_file(tmp_path, capsys):
    weights = tmp_path / "small.pth"
    torch.save(random_reference_generator(ngf=8, n_blocks=2).state_dict(), weights)
    with pytest.raises(SystemExit) as exit_info:
        import_torch.main(
            [str(weights), "--name", "a2b", "--export-dir", str(tmp_path / "out"), "--ngf", "16"]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cyclegan-import-torch: error: ") and err.count("\n") == 1
    assert "closest is the official CycleGAN ResNet layout (ngf 16, 2 blocks" in err
    assert (
        "first key that differs is model.1.weight (shape [8, 3, 7, 7], expected [16, 3, 7, 7])"
        in err
    )
    assert not (tmp_path / "out").exists()


def test_cli_never_overwrites_a_version(tmp_path, capsys):
    weights = tmp_path / "g.pth"
    torch.save(random_reference_generator(ngf=4, n_blocks=1).state_dict(), weights)
    args = [str(weights), "--name", "a2b", "--export-dir", str(tmp_path)]
    assert import_torch.main(args) == 0
    assert "official CycleGAN ResNet layout (ngf 4, 1 blocks" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "a2b")) == ["1", "1.keras"]
    assert import_torch.main(args) == 0
    assert sorted(os.listdir(tmp_path / "a2b")) == ["1", "1.keras", "2", "2.keras"]
    with pytest.raises(SystemExit):
        import_torch.main([*args, "--version", "2"])
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["", "a/b", "../x", "m:predict"])
def test_cli_refuses_names_unfit_for_urls(tmp_path, capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        import_torch.main(["missing.pth", "--name", name, "--export-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--name" in capsys.readouterr().err


def test_files_that_are_not_state_dicts_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a PyTorch state dict file"):
        torch_import.load_torch_state_dict(str(garbage))
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        torch_import.load_torch_state_dict(str(listed))
    with pytest.raises(ValueError, match="no such weights file"):
        torch_import.load_torch_state_dict(str(tmp_path / "absent.pth"))


def test_without_torch_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "g.pth"
    weights.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"cyclegan_tf\[torch\]"):
        torch_import.load_torch_state_dict(str(weights))
    assert import_torch.main([str(weights), "--name", "a2b", "--export-dir", str(tmp_path)]) == 2
    assert "pip install 'cyclegan_tf[torch]'" in capsys.readouterr().err


def test_official_cut_generator_imports_and_equals_pytorch(tmp_path):
    """CUT's anti-aliased ``latest_net_G.pth`` (nine blocks): the layout is read from its blur buffers."""
    from tests.models import torch_cut

    reference = torch_cut.Generator(ngf=8, n_blocks=9)
    rng = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=rng) * 0.04)
    reference.eval()
    state = reference.state_dict()
    assert {"model.7.filt", "model.11.filt", "model.21.filt", "model.25.filt"} <= set(state)
    weights = tmp_path / "latest_net_G.pth"
    torch.save(state, weights)
    args = [str(weights), "--name", "horse2zebra", "--export-dir", str(tmp_path)]
    assert import_torch.main(args) == 0

    keras_model = load_generator(str(tmp_path / "horse2zebra" / "1.keras"))
    assert (keras_model.antialias, keras_model.antialias_up) == (True, True)
    serving = tf.saved_model.load(str(tmp_path / "horse2zebra" / "1")).signatures["serving_default"]
    for height, width in [(64, 64), (48, 80)]:
        pixels = np.random.default_rng(width).integers(0, 256, (1, height, width, 3))
        expected = torch_output(reference, pixels.astype("float32"))
        assert expected.std() > 0.1
        translated = serving(images=tf.constant(pixels, tf.float32))["images"].numpy()
        assert np.abs(translated / 127.5 - 1.0 - expected).max() < PARITY_TOLERANCE


def test_a_blur_buffer_that_is_not_the_official_filter_is_refused():
    from tests.models import torch_cut

    state = {k: v.numpy() for k, v in torch_cut.Generator(ngf=4, n_blocks=1).state_dict().items()}
    state["model.7.filt"] = np.ones_like(state["model.7.filt"]) / 9
    with pytest.raises(ValueError, match=r"model.7.filt \(not the fixed blur filter"):
        torch_import.generator_from_state_dict(state)


# Each layout and official option: the PyTorch generator's options (tests/tools/torch_reference.py),
# the layout the importer must name and what it must infer.
LAYOUT_CASES = {
    "official-batch-norm": (dict(norm="batch"), "official", {"norm": "batch", "use_bias": False}),
    "official-no-norm": (dict(norm="none"), "official", {"norm": "none", "use_bias": False}),
    "official-dropout": (dict(dropout=True), "official", {"dropout": True}),
    "official-grayscale": (dict(channels=1), "official", {"channels": 1, "output_channels": 1}),
    "official-gray-to-rgb": (
        dict(channels=1, output_channels=3),
        "official",
        {"channels": 1, "output_channels": 3},
    ),
    "reimplementation-block-affine": (
        dict(affine=True, block_name="block"),
        "reimplementation",
        {"affine_norm": True, "norm": "instance", "use_bias": True},
    ),
    "reimplementation-affine-dropout-rgba": (
        dict(affine=True, dropout=True, channels=4),
        "reimplementation",
        {"affine_norm": True, "dropout": True, "channels": 4, "output_channels": 4},
    ),
}


@pytest.mark.parametrize("case", list(LAYOUT_CASES))
def test_each_layout_is_detected_and_equals_pytorch(case):
    options, layout, inferred = LAYOUT_CASES[case]
    reference = random_reference_generator(ngf=4, n_blocks=2, seed=len(case), scale=0.1, **options)
    imported = torch_import.detect_generator(numpy_state(reference))
    generator = imported.generator
    config = generator.get_config()
    assert imported.layout == layout
    assert (config["ngf"], config["n_res_blocks"]) == (4, 2)
    assert {key: config[key] for key in inferred} == inferred
    channels = config["channels"]
    for height, width in [(32, 32), (36, 44)]:
        images = np.random.default_rng(width).uniform(-1, 1, (2, height, width, channels))
        images = images.astype("float32")
        with torch.no_grad():
            expected = reference(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = expected.numpy()
        assert expected.std() > 0.05 and np.mean(np.abs(expected) > 0.99) < 0.1
        np.testing.assert_allclose(generator(images).numpy(), expected, atol=PARITY_TOLERANCE)
    # The tiled engine reads the same architecture from the stages: band by band, the same pixels.
    tiled = TiledGenerator(generator, band_rows=3).translate(images[0])
    np.testing.assert_allclose(tiled, expected[0], atol=PARITY_TOLERANCE)


@pytest.fixture(scope="module")
def checkpoint_of_several_networks(tmp_path_factory):
    """A training checkpoint: two generators (one wrapped by DataParallel), a discriminator, an epoch."""
    from tests.models import torch_cut

    g_a2b = random_reference_generator(ngf=4, n_blocks=1, seed=11, norm="batch")
    g_b2a = random_reference_generator(ngf=4, n_blocks=2, seed=12, affine=True, block_name="block")
    checkpoint = {
        "G_A2B": {f"module.{key}": value for key, value in g_a2b.state_dict().items()},
        "G_B2A": g_b2a.state_dict(),
        "D_A": torch_cut.Discriminator(ndf=4, n_layers=2, antialias=False).state_dict(),
        "epoch": 3,
    }
    path = tmp_path_factory.mktemp("checkpoint") / "checkpoint.pth"
    torch.save(checkpoint, path)
    return path, g_a2b, g_b2a


def test_a_checkpoint_of_several_generators_lists_them(checkpoint_of_several_networks, capsys):
    path, _, _ = checkpoint_of_several_networks
    with pytest.raises(SystemExit) as exit_info:
        import_torch.main([str(path), "--name", "b2a", "--export-dir", str(path.parent / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--key: " in err and "holds several generators: G_A2B, G_B2A; choose one" in err
    with pytest.raises(SystemExit):
        import_torch.main([str(path), "--name", "b2a", "--key", "G_C"])
    assert "has no network 'G_C'; its networks are G_A2B, G_B2A, D_A" in capsys.readouterr().err


def test_key_picks_a_generator_that_exports_tiles_and_serves_as_pytorch(
    checkpoint_of_several_networks, capsys
):
    from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model

    path, _, g_b2a = checkpoint_of_several_networks
    export_dir = path.parent / "saved_models"
    args = [str(path), "--name", "b2a", "--export-dir", str(export_dir), "--key", "G_B2A"]
    assert import_torch.main(args) == 0
    out = capsys.readouterr().out
    assert "(G_B2A): a re-implementation's ResNet layout (ngf 4, 2 blocks, affine instance" in out
    pixels = np.random.default_rng(9).integers(0, 256, (1, 36, 52, 3)).astype("float32")
    expected = torch_output(g_b2a, pixels)
    loaded = tf.saved_model.load(str(export_dir / "b2a" / "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(pixels))["images"].numpy()
    assert np.abs(served / 127.5 - 1.0 - expected).max() < PARITY_TOLERANCE
    rebuilt = generator_from_saved_model(loaded)
    assert rebuilt.get_config()["affine_norm"] is True
    tiled = TiledGenerator(rebuilt, band_rows=4).translate_pixels(pixels[0])
    assert np.abs(tiled / 127.5 - 1.0 - expected[0]).max() < PARITY_TOLERANCE


def test_wrapped_networks_are_found_without_a_key(checkpoint_of_several_networks):
    path, g_a2b, g_b2a = checkpoint_of_several_networks
    checkpoint = torch_import.load_torch_checkpoint(str(path))
    name, state = torch_import.pick_network(checkpoint, "G_A2B")
    assert name == "G_A2B" and "model.1.weight" in state  # the DataParallel prefix is gone
    # A checkpoint with one generator among other networks, nested one level down.
    nested = {"state_dict": {"netG": checkpoint["G_B2A"], "netD": checkpoint["D_A"]}, "step": 9}
    assert torch_import.pick_network(nested)[0] == "state_dict/netG"
    # A Lightning-style state dict whose keys start with each network's name.
    flat = {f"netG_A.{key}": value for key, value in checkpoint["G_A2B"].items()}
    flat.update({f"netD_A.{key}": value for key, value in checkpoint["D_A"].items()})
    name, state = torch_import.pick_network({"state_dict": flat})
    assert name == "state_dict/netG_A"
    generator = torch_import.detect_generator(state).generator
    assert generator.get_config()["norm"] == "batch"


def test_python_objects_in_a_checkpoint_are_not_loaded(tmp_path):
    import argparse

    path = tmp_path / "with_args.pth"
    state = random_reference_generator(ngf=4, n_blocks=1).state_dict()
    torch.save({"netG": state, "args": argparse.Namespace(lr=2e-4)}, path)
    with pytest.raises(ValueError, match=r"holds a Python object \(argparse.Namespace\)"):
        torch_import.load_torch_checkpoint(str(path))


@pytest.mark.parametrize(
    "options",
    [dict(num_downs=5, norm="batch"), dict(num_downs=6, norm="instance", channels=1)],
    ids=["batch-5-levels", "instance-6-levels-grayscale"],
)
def test_official_unet_is_detected_and_equals_pytorch(options):
    from tests.tools.torch_reference import UnetGenerator, randomize

    reference = randomize(UnetGenerator(ngf=4, **options), seed=8, scale=0.1)
    imported = torch_import.detect_generator(numpy_state(reference))
    config = imported.generator.get_config()
    assert imported.layout == "unet"
    assert (config["num_downs"], config["norm"]) == (options["num_downs"], options["norm"])
    assert imported.generator.size_multiple == 2 ** options["num_downs"]
    channels = options.get("channels", 3)
    for height, width in [(64, 64), (64, 128)]:
        images = np.random.default_rng(width).uniform(-1, 1, (2, height, width, channels))
        images = images.astype("float32")
        with torch.no_grad():
            expected = reference(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = expected.numpy()
        assert expected.std() > 0.05
        np.testing.assert_allclose(imported.generator(images), expected, atol=PARITY_TOLERANCE)


def test_imported_unet_exports_translates_any_size_and_refuses_what_exceeds_the_budget(
    tmp_path, capsys
):
    """pix2pix's layout through the command: the SavedModel rebuilds it; large images are refused."""
    from cyclegan_tf.errors import OptionError
    from cyclegan_tf.inference.keras_translator import KerasTranslator
    from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model
    from tests.tools.torch_reference import UnetGenerator, randomize

    reference = randomize(UnetGenerator(ngf=4, num_downs=5, norm="batch"), seed=9, scale=0.1)
    weights = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), weights)
    assert (
        import_torch.main([str(weights), "--name", "facades", "--export-dir", str(tmp_path)]) == 0
    )
    assert "the official U-Net layout (ngf 4, 5 levels, batch norm" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(tmp_path / "facades" / "1"))
    rebuilt = generator_from_saved_model(loaded)
    assert type(rebuilt).__name__ == "UnetGenerator" and rebuilt.num_downs == 5
    # Any size: padded by reflection to multiples of 32, translated, cropped back.
    pixels = np.random.default_rng(2).integers(0, 256, (1, 50, 70, 3)).astype("float32")
    served = loaded.signatures["serving_default"](images=tf.constant(pixels))["images"].numpy()
    keras_model = load_generator(str(tmp_path / "facades" / "1.keras"))
    expected = inference.translate_pixels(keras_model, pixels).numpy()
    assert served.shape == (1, 50, 70, 3)
    np.testing.assert_allclose(served, expected, atol=1e-3)
    # A 12-MP photo would need more than a 1.5 GiB budget whole, and a U-Net cannot be tiled.
    translator = KerasTranslator(rebuilt, max_memory_gb=1.5)
    assert not translator.can_tile
    with pytest.raises(OptionError, match=r"max_memory_gb: a 4000x3000 image needs about .* GiB"):
        translator.translate_pixels(np.zeros((1, 3000, 4000, 3), np.uint8))
