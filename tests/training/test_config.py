import argparse
import dataclasses
import json
import os

import pytest

from cyclegan_tf import options
from cyclegan_tf.errors import OptionError
from cyclegan_tf.training.config import TrainConfig
from tests.conftest import REPO_ROOT

ROOT = str(REPO_ROOT)


def _parse(argv):
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, TrainConfig)
    return options.from_args(TrainConfig, parser.parse_args(argv))


def test_defaults_are_the_reference_ones():
    config = _parse([]).resolved()
    assert (config.lr, config.beta1, config.lambda_cycle, config.lambda_identity) == (
        2e-4,
        0.5,
        10.0,
        0.5,
    )
    assert (config.image_size, config.load_size, config.batch_size, config.pool_size) == (
        256,
        286,
        1,
        50,
    )
    assert (config.epochs, config.decay_epochs, config.gan_mode, config.discriminator) == (
        200,
        100,
        "lsgan",
        "patch",
    )
    assert config.name == "apple2orange" and config.output_dir == os.path.join(
        "runs", "apple2orange"
    )


def test_flags_json_round_trip(tmp_path):
    config = _parse(
        [
            "--image-size",
            "64",
            "--mixed-precision",
            "bf16",
            "--jit-compile",
            "--data-dir",
            "/d/fruit/",
        ]
    ).resolved()
    assert config.name == "fruit" and config.jit_compile and config.mixed_precision == "bf16"
    path = str(tmp_path / "config.json")
    config.to_json(path)
    assert TrainConfig.from_json(path) == config
    assert json.load(open(path))["image_size"] == 64


def test_unknown_keys_in_config_json_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**dataclasses.asdict(TrainConfig()), "colour": "red"}))
    with pytest.raises(ValueError, match=r"unknown options \['colour'\]"):
        TrainConfig.from_json(str(path))


def test_differences_name_changed_options():
    assert TrainConfig().differences(TrainConfig(ngf=32, lr=1.0)) == {
        "ngf": (64, 32),
        "lr": (2e-4, 1.0),
    }


@pytest.mark.parametrize(
    "overrides,option,message",
    [
        ({"decay_epochs": 300}, "decay_epochs", "must be between 0 and epochs (200)"),
        ({"gan_mode": "hinge"}, "gan_mode", "must be one of"),
        ({"export_every": 0}, "export_every", "must be positive"),
        ({"lambda_cycle": -1.0}, "lambda_cycle", "must be a finite number >= 0"),
        ({"preprocess": "zoom"}, "preprocess", "must be one of"),
        ({"preprocess": "scale_width", "batch_size": 2}, "batch_size", "needs batch_size=1"),
        ({"preprocess": "scale_width_and_crop", "load_size": 128}, "load_size", "must be >="),
        ({"lr": float("nan")}, "lr", "must be a finite number > 0. Received: lr=nan"),
        ({"lr": float("inf")}, "lr", "must be a finite number > 0. Received: lr=inf"),
        ({"lr": 0.0}, "lr", "must be a finite number > 0"),
        ({"lambda_cycle": float("nan")}, "lambda_cycle", "must be a finite number >= 0"),
        ({"lambda_identity": float("inf")}, "lambda_identity", "must be a finite number >= 0"),
        ({"beta1": 5.0}, "beta1", "must be a finite number in [0, 1). Received: beta1=5.0"),
        ({"beta1": 1.0}, "beta1", "in [0, 1)"),
        ({"beta1": -0.1}, "beta1", "in [0, 1)"),
        ({"cluster_timeout": float("nan")}, "cluster_timeout", "must be a finite number > 0"),
        ({"image_size": 30}, "image_size", "must be a multiple of 4"),
        ({"ngf": 0}, "ngf", "must be positive"),
        ({"seed": -1}, "seed", "must be >= 0"),
        ({"steps_per_epoch": 2.5}, "steps_per_epoch", "must be an integer"),
    ],
)
def test_out_of_range_options_are_named(overrides, option, message):
    with pytest.raises(OptionError) as info:
        TrainConfig(**overrides).resolved()
    assert info.value.option == option and message in info.value.message, info.value


def test_readme_documents_every_training_flag():
    readme = open(os.path.join(ROOT, "README.md")).read()
    missing = [key for key in TrainConfig.fields() if f"`--{key.replace('_', '-')}`" not in readme]
    assert not missing, f"README.md lacks {missing}"


def test_source_resolution_modes_ignore_load_size_and_variable_sizes_have_any_size_pools():
    config = TrainConfig(preprocess="crop", load_size=16).resolved()
    assert config.model_options()["image_size"] == 256
    options = TrainConfig(preprocess="none", batch_size=1).resolved().model_options()
    assert options["image_size"] is None


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--netG", "resnet_6blocks"], {"generator": "resnet", "n_res_blocks": 6}),
        (["--netG", "resnet_6blocks", "--n-res-blocks", "6"], {"n_res_blocks": 6}),
        (["--netD", "basic"], {"discriminator": "patch", "n_disc_layers": 3}),
        (
            ["--netD", "n_layers", "--n-layers-D", "5"],
            {"discriminator": "patch", "n_disc_layers": 5},
        ),
        (["--netD", "pixel", "--norm", "batch"], {"discriminator": "pixel", "norm": "batch"}),
        (["--n-layers-D", "4"], {"n_disc_layers": 4}),
    ],
)
def test_official_spellings_set_the_options_they_stand_for(argv, expected):
    config = _parse(argv)
    assert {key: getattr(config, key) for key in expected} == expected
    # Only the owners are options: config.json holds no alias.
    assert not {"netG", "netD", "n_layers_D"} & set(dataclasses.asdict(config))


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["--netG", "resnet_6blocks", "--n-res-blocks", "9"],
            "--n-res-blocks 9 conflicts with --netG resnet_6blocks: they set --n-res-blocks to 9 "
            "and 6",
        ),
        (
            ["--n-disc-layers", "4", "--netD", "basic"],
            "--netD basic conflicts with --n-disc-layers 4: they set --n-disc-layers to 3 and 4",
        ),
        (
            ["--discriminator", "global", "--netD", "pixel"],
            "--netD pixel conflicts with --discriminator global",
        ),
        (["--n-layers-D", "2", "--n-disc-layers", "5"], "--n-disc-layers 5 conflicts with"),
    ],
)
def test_flags_that_set_one_option_twice_are_refused_in_one_line(argv, message, capsys):
    from cyclegan_tf.cli import train

    with pytest.raises(SystemExit) as exit_info:
        train.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cyclegan-train: error: ") and err.count("\n") == 1
    assert message in err


def test_architecture_options_reach_the_objective_and_their_checks():
    config = TrainConfig(norm="batch", affine_norm=True, dropout=True, gan_mode="wgangp").resolved()
    model_options = config.model_options()
    assert {key: model_options[key] for key in ("norm", "affine_norm", "dropout", "gan_mode")} == {
        "norm": "batch",
        "affine_norm": True,
        "dropout": True,
        "gan_mode": "wgangp",
    }
    assert model_options["generator_kind"] == "resnet"
    with pytest.raises(OptionError, match="lambda_identity: .*input_nc == output_nc"):
        TrainConfig(input_nc=1, output_nc=3).resolved()
    assert TrainConfig(input_nc=1, output_nc=3, lambda_identity=0.0).resolved().output_nc == 3
    with pytest.raises(OptionError, match="nce_idt: .*input_nc == output_nc"):
        TrainConfig(objective="cut", input_nc=1, output_nc=3).resolved()
    with pytest.raises(OptionError, match="input_nc: must be one of"):
        TrainConfig(input_nc=2, output_nc=2).resolved()


def test_architecture_choices_are_the_models_own():
    """The choices spelled in the config (read without Keras) are the ones the networks accept."""
    from cyclegan_tf.models import discriminators, generators, layers, losses
    from cyclegan_tf.training import config

    assert config.GENERATOR_KINDS == tuple(generators.GENERATORS)
    assert config.DISCRIMINATOR_KINDS == tuple(discriminators.DISCRIMINATORS)
    assert config.NORMS == layers.NORMS
    assert config.GAN_MODES == tuple(losses.GAN_LOSSES)
