"""The learning test: a small CycleGAN trained on the synthetic fruit set turns apples orange."""

import os

import numpy as np
import pytest

from cyclegan_tf import file_translation, inference
from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.data import (
    hue_statistic,
    list_image_files,
    read_image_file,
    write_synthetic_dataset,
)

pytestmark = pytest.mark.slow

APPLE_HUE_MAX = 8.0  # degrees; the synthetic apples are red (about 0 degrees)
ORANGE_HUE_MIN = 15.0  # the synthetic oranges are about 28 degrees


@pytest.mark.parametrize("precision", [None, "bf16"])
def test_translated_apples_become_orange_hued(tmp_path_factory, precision):
    root = tmp_path_factory.mktemp("learning")
    data_dir = write_synthetic_dataset(str(root / "fruit"), size=72, n_train=120, n_test=24, seed=1)
    run = str(root / "run")
    argv = [
        "--data-dir", data_dir, "--name", "apple2orange", "--output-dir", run,
        "--export-dir", str(root / "saved_models"),
        "--image-size", "64", "--load-size", "72", "--ngf", "16", "--ndf", "16",
        "--n-res-blocks", "3", "--batch-size", "4", "--epochs", "10", "--steps-per-epoch", "30",
        "--sample-every", "0",
    ] + (["--mixed-precision", precision] if precision else [])  # fmt: skip
    assert train_cli.main(argv) == 0

    apples_before, apples_after = _hues(run, data_dir, "testA", "netG_A2B.keras")
    oranges_before, oranges_after = _hues(run, data_dir, "testB", "netG_B2A.keras")
    print(f"{precision or 'float32'} fruit hue: apples {apples_before:.1f} -> {apples_after:.1f} deg (A->B), "
          f"oranges {oranges_before:.1f} -> {oranges_after:.1f} deg (B->A)")  # fmt: skip
    assert apples_before < APPLE_HUE_MAX and oranges_before > ORANGE_HUE_MIN
    assert apples_after > ORANGE_HUE_MIN
    assert oranges_after < APPLE_HUE_MAX


def _hues(run, data_dir, split, generator_file):
    """Mean fruit hue of a test split before and after translation."""
    images = [read_image_file(f) for f in list_image_files(os.path.join(data_dir, split))]
    translator = inference.load_translator(os.path.join(run, "models", generator_file))
    translated = [file_translation.translate_array(translator, image) for image in images]
    return hue_statistic(np.stack(images)), hue_statistic(np.stack(translated))
