"""A grayscale CycleGAN end to end: trained, sampled, validated, exported, translated and served.

One tiny run with ``--input-nc 1 --output-nc 1`` (and the official batch norm, PixelGAN and WGAN-GP,
so that those train in graph mode too); every later stage reads its channels from the generator.
"""

import base64
import io
import json
import os
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cyclegan_tf import export, inference
from cyclegan_tf.cli import train as train_cli
from tests.conftest import TINY_TRAIN_ARGS, built_once, textured_jpeg


@pytest.fixture(scope="module")
def gray_run(tmp_path_factory, synthetic_dir):
    """``(run folder, export folder)`` of a finished one-epoch grayscale run."""

    def build(folder):
        argv = ["--data-dir", synthetic_dir, *TINY_TRAIN_ARGS, "--epochs", "1", "--name", "gray"]
        argv += ["--output-dir", os.path.join(folder, "run")]
        argv += ["--export-dir", os.path.join(folder, "saved_models")]
        argv += ["--input-nc", "1", "--output-nc", "1", "--norm", "batch", "--netD", "pixel"]
        argv += ["--gan-mode", "wgangp", "--eval-every", "1"]
        argv += ["--init-gain", "0.2"]  # outputs far from flat after so few steps
        assert train_cli.main(argv) == 0

    root = built_once(tmp_path_factory, "gray_run", build)
    return os.path.join(root, "run"), os.path.join(root, "saved_models")


def _gray_of(jpeg):
    """What PIL (and so the reference's ``Grayscale(1)``) makes of a JPEG: ``uint8 [H, W, 1]``."""
    with Image.open(io.BytesIO(jpeg)) as image:
        return np.asarray(image.convert("RGB").convert("L"))[..., None]


def test_a_grayscale_run_trains_samples_and_validates(gray_run):
    run, export_dir = gray_run
    with open(os.path.join(run, "logs", "training.csv")) as csv:
        header, row = csv.read().splitlines()[:2]
    values = dict(zip(header.split(","), row.split(",")))
    assert np.isfinite(float(values["val_cycle"])) and np.isfinite(float(values["d_loss"]))
    with Image.open(os.path.join(run, "images", "latest.png")) as grid:
        assert grid.mode in ("RGB", "RGBA")
    generator = inference.load_generator(os.path.join(run, "models", "netG_A2B.keras"))
    config = generator.get_config()
    assert (config["channels"], config["output_channels"], config["norm"]) == (1, 1, "batch")
    assert sorted(os.listdir(export_dir)) == ["gray_a2b", "gray_b2a"]


def test_a_grayscale_generator_translates_a_colour_photo_everywhere_alike(gray_run, tmp_path):
    """The .keras file, the SavedModel's two signatures and an ONNX export give the same pixels."""
    run, export_dir = gray_run
    jpeg = textured_jpeg(36, 52)
    gray = _gray_of(jpeg)
    keras_path = os.path.join(run, "models", "netG_A2B.keras")
    expected = inference.load_translator(keras_path).translate_pixels(gray[None])[0]
    assert expected.shape == (36, 52, 1) and expected.std() > 0.5

    loaded = tf.saved_model.load(os.path.join(export_dir, "gray_a2b", "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(gray[None], tf.float32))
    np.testing.assert_allclose(served["images"].numpy()[0], expected, atol=1e-3)
    png = loaded.signatures["translate_bytes"](image_bytes=tf.constant([jpeg]))["image_bytes"]
    with Image.open(io.BytesIO(png.numpy()[0])) as image:
        assert image.mode == "L"
        assert np.abs(np.asarray(image, np.float32) - expected[..., 0]).max() <= 0.51

    generator = inference.load_generator(keras_path)
    onnx_path = export.export_generator(generator, str(tmp_path), "gray", format="onnx")
    onnx = inference.load_translator(onnx_path)
    assert onnx.channels == 1
    np.testing.assert_allclose(onnx.translate_pixels(gray[None])[0], expected, atol=1e-2)


def test_a_grayscale_model_is_served(gray_run):
    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    from cyclegan_tf.serving.process import ServerProcess

    _, export_dir = gray_run
    jpeg = textured_jpeg(40, 48, seed=3)
    gray = _gray_of(jpeg)
    loaded = tf.saved_model.load(os.path.join(export_dir, "gray_a2b", "1"))
    expected = loaded.signatures["serving_default"](images=tf.constant(gray[None], tf.float32))
    expected = np.round(expected["images"].numpy()[0, ..., 0])
    with ServerProcess(export_dir, ["--log-level", "warning"], ready_model="gray_a2b") as server:
        body = {
            "signature_name": "translate_bytes",
            "instances": [{"b64": base64.b64encode(jpeg).decode("ascii")}],
        }
        request = urllib.request.Request(
            f"{server.url}/v1/models/gray_a2b:predict",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            prediction = json.loads(response.read())["predictions"][0]
    with Image.open(io.BytesIO(base64.b64decode(prediction["b64"]))) as image:
        assert image.mode == "L" and image.size == (48, 40)
        assert np.abs(np.asarray(image, np.float32) - expected).max() <= 1.0
