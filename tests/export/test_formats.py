"""The ONNX, OpenVINO and LiteRT exports against the Keras generator, each in its own runtime."""

import base64
import importlib.util
import os
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf import export, inference
from cyclegan_tf.errors import MissingDependencyError
from cyclegan_tf.export import calibration, pixel_graph
from cyclegan_tf.inference import runtimes
from cyclegan_tf.models import resnet_generator
from tests.conftest import require

# Square, wide, tall, odd (padded in the graph to 32x52), and a batch of two.
SIZES = ((1, 32, 32), (1, 48, 64), (1, 100, 76), (2, 30, 50))
FLOAT32_TOLERANCE = 1e-3 * 127.5  # 1e-3 in the generator's [-1, 1] units, in pixels
# Pixel errors (in [0, 255]) of the reduced-precision variants on the tiny random-weight generator,
# measured at about a fifth of these bounds (max, mean); see docs/formats.md.
BOUNDS = {
    ("onnx", "fp16", None): (2.0, 0.25),
    ("openvino", "fp16", "f32"): (2.0, 0.25),
    ("openvino", "none", "bf16"): (15.0, 1.5),
    ("openvino", "none", "f16"): (3.0, 0.3),
    ("litert", "fp16", None): (2.0, 0.25),
    ("onnx", "int8", None): (60.0, 10.0),
    ("openvino", "int8", "f32"): (40.0, 6.0),
    ("litert", "int8", None): (90.0, 15.0),
}
_MODULES = {
    "onnx": ("tf2onnx", "onnxruntime"),
    "openvino": ("openvino", "nncf"),
    "litert": ("ai_edge_litert",),
}
_SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}


def require_extra(format_name):
    """Skips (fails in CI) unless the ``[format_name]`` extra is installed."""
    missing = [m for m in _MODULES[format_name] if importlib.util.find_spec(m) is None]
    require(not missing, f"the [{format_name}] extra is not installed (no {', '.join(missing)})")


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return resnet_generator(ngf=8, n_res_blocks=2)


@pytest.fixture(scope="module")
def fruit(synthetic_dir):
    """``(calibration images [4, 64, 64, 3], test images [8, 64, 64, 3])`` of the apple domain, in [0, 255].

    Four training images calibrate the int8 exports (the CLI takes up to 16; four keep the test fast).
    """
    train = calibration.calibration_batches(os.path.join(synthetic_dir, "trainA"), limit=4)
    test = calibration.calibration_batches(os.path.join(synthetic_dir, "testA"))
    return np.concatenate(train), np.concatenate(test)


@pytest.fixture(scope="module")
def exported(generator, fruit, tmp_path_factory):
    """``exported(format, quantize)``: the path of that export of ``generator``, made once."""
    folder = tmp_path_factory.mktemp("formats")
    cache = {}

    def make(format_name, quantize):
        require_extra(format_name)
        if (format_name, quantize) not in cache:
            path = str(folder / f"generator_{quantize}{_SUFFIXES[format_name]}")
            export.FORMATS[format_name].write(
                generator, path, quantize=quantize, calibration_images=fruit[0]
            )
            cache[format_name, quantize] = path
        return cache[format_name, quantize]

    return make


def _images(fruit, batch, height, width):
    return tf.image.resize(fruit[1][:batch], (height, width)).numpy()


def _errors(runtime, generator, images):
    expected = inference.translate_pixels(generator, images).numpy()
    translated = runtime.translate_pixels(images)
    assert translated.shape == images.shape and translated.dtype == np.float32
    error = np.abs(translated - expected)
    return float(error.max()), float(error.mean())


@pytest.mark.parametrize("format_name", ["onnx", "openvino", "litert"])
def test_float32_export_matches_keras_at_any_size(format_name, exported, generator, fruit):
    runtime = inference.load_runtime(exported(format_name, "none"))
    for batch, height, width in SIZES:
        max_error, _ = _errors(runtime, generator, _images(fruit, batch, height, width))
        assert max_error <= FLOAT32_TOLERANCE, (batch, height, width, max_error)


@pytest.mark.parametrize(("format_name", "quantize", "precision"), list(BOUNDS))
def test_reduced_precision_error_is_bounded(
    format_name, quantize, precision, exported, generator, fruit
):
    options = {"precision": precision} if precision else {}
    runtime = inference.load_runtime(exported(format_name, quantize), **options)
    if precision is not None:
        # A CPU without float16 arithmetic runs the f16 hint in bfloat16: bound what really runs.
        precision = runtime.inference_precision
    max_error, mean_error = _errors(runtime, generator, _images(fruit, 4, 48, 64))
    print(f"{format_name} {quantize} {precision}: max {max_error:.2f} mean {mean_error:.3f} pixels")
    bound_max, bound_mean = BOUNDS[format_name, quantize, precision]
    assert max_error <= bound_max and mean_error <= bound_mean
    assert max_error > 0.01  # the variant really computes in reduced precision


def test_quantized_files_hold_quantized_weights(exported):
    require_extra("onnx")
    import onnx

    onnx_ops = {node.op_type for node in onnx.load(exported("onnx", "int8")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= onnx_ops
    float16 = onnx.load(exported("onnx", "fp16")).graph.initializer
    assert any(tensor.data_type == onnx.TensorProto.FLOAT16 for tensor in float16)
    with open(exported("openvino", "int8")) as file:
        assert "FakeQuantize" in file.read()
    float32_bin = os.path.getsize(exported("openvino", "none")[: -len(".xml")] + ".bin")
    float16_bin = os.path.getsize(exported("openvino", "fp16")[: -len(".xml")] + ".bin")
    assert float16_bin < 0.6 * float32_bin
    assert os.path.getsize(exported("litert", "int8")) < 0.6 * os.path.getsize(
        exported("litert", "none")
    )


def test_fixed_size_litert(generator, fruit, tmp_path):
    require_extra("litert")
    path = export.litert.write(generator, str(tmp_path / "g.tflite"), image_size=(48, 64))
    runtime = inference.load_runtime(path)
    max_error, _ = _errors(runtime, generator, _images(fruit, 2, 48, 64))
    assert max_error <= FLOAT32_TOLERANCE
    with pytest.raises(ValueError, match=r"takes images of shape \(-1, 48, 64, 3\)"):
        runtime.translate_pixels(np.zeros((1, 64, 64, 3), np.float32))


def test_openvino_default_precision_is_float32(exported, generator, fruit):
    """OpenVINO's own CPU default is bf16 on CPUs with AMX or AVX-512 BF16; the loader asks for f32."""
    runtime = inference.load_runtime(exported("openvino", "none"))
    assert runtime._compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"


def test_export_twin_computes_the_same_function(generator, fruit):
    twin = pixel_graph.export_generator(generator)
    norms = [
        layer
        for layer in twin._flatten_layers()
        if isinstance(layer, keras.layers.GroupNormalization)
    ]
    assert norms and all(
        isinstance(layer, pixel_graph.SpatialInstanceNormalization) for layer in norms
    )
    assert not any(
        isinstance(layer, pixel_graph.SpatialInstanceNormalization)
        for layer in generator._flatten_layers()
    )
    images = _images(fruit, 2, 48, 64) / 127.5 - 1.0
    np.testing.assert_allclose(twin(images), generator(images), atol=1e-4)


def test_tensorflow_runtime_matches_translate_pixels(generator, fruit):
    images = _images(fruit, 1, 30, 50)
    expected = inference.translate_pixels(generator, images).numpy()
    np.testing.assert_allclose(
        inference.TensorFlowRuntime(generator).translate_pixels(images), expected, atol=1e-3
    )


def test_missing_extra_names_the_pip_extra(monkeypatch, generator, tmp_path):
    for module in ("tf2onnx", "openvino", "ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    with pytest.raises(MissingDependencyError) as raised:
        export.export_generator(generator, str(tmp_path), "m", format="onnx")
    assert str(raised.value).startswith(
        "ONNX export needs the [onnx] extra: pip install 'cyclegan_tf[onnx]'"
    )
    with pytest.raises(MissingDependencyError, match=r"\[openvino\] extra"):
        export.export_generator(generator, str(tmp_path), "m", format="openvino")
    with pytest.raises(MissingDependencyError, match=r"\[litert\] extra"):
        runtimes.LiteRtRuntime(str(tmp_path / "g.tflite"))
    assert os.listdir(tmp_path / "m") == []  # nothing half-written


def test_bad_arguments_say_what_was_received(generator, tmp_path):
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        export.export_generator(generator, str(tmp_path), "m", format="litert", quantize="int4")
    with pytest.raises(ValueError, match="calibration_images: quantize='int8' needs a few images"):
        export.litert.write(generator, str(tmp_path / "g.tflite"), quantize="int8")
    with pytest.raises(ValueError, match=r"must end in \.xml"):
        export.openvino.write(generator, str(tmp_path / "g.bin"))
    with pytest.raises(ValueError, match="Received: format='coreml'"):
        export.export_generator(generator, str(tmp_path), "m", format="coreml")
    with pytest.raises(ValueError, match="quantize: the SavedModel is float32 only"):
        export.export_generator(generator, str(tmp_path), "m", quantize="fp16")
    with pytest.raises(ValueError, match="Unknown exported model type"):
        inference.load_runtime(str(tmp_path / "g.pb"))
    with pytest.raises(ValueError, match="precision: litert runtime has no such option"):
        inference.load_runtime(str(tmp_path / "g.tflite"), precision="bf16")
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\]"):
        runtimes.check_pixels(np.zeros((8, 8, 3)))


@pytest.fixture(scope="module")
def served_exports(exported, tmp_path_factory):
    """A model base path with ``apple2orange/1.onnx`` and ``apple2orange/1.openvino/`` (copies)."""
    model_dir = tmp_path_factory.mktemp("served_exports") / "apple2orange"
    model_dir.mkdir()
    shutil.copy(exported("onnx", "none"), model_dir / "1.onnx")
    xml = exported("openvino", "none")
    (model_dir / "1.openvino").mkdir()
    shutil.copy(xml, model_dir / "1.openvino" / "model.xml")
    shutil.copy(xml[: -len(".xml")] + ".bin", model_dir / "1.openvino" / "model.bin")
    return str(model_dir.parent)


def test_server_serves_an_export_with_tf_servings_api(served_exports, generator):
    import requests

    from cyclegan_tf.serving.process import ServerProcess

    pixels = np.random.default_rng(5).integers(0, 256, (2, 12, 20, 3)).astype("float32")
    expected = inference.translate_pixels(generator, pixels).numpy()
    args = [
        "--format",
        "openvino",
        "--file-system-poll-wait-seconds",
        "0",
        "--log-level",
        "warning",
    ]
    with ServerProcess(served_exports, args, ready_model="apple2orange") as server:
        url = f"{server.url}/v1/models/apple2orange"
        response = requests.post(f"{url}:predict", json={"instances": pixels.tolist()}, timeout=60)
        assert response.status_code == 200, response.text
        translated = np.array(response.json()["predictions"])
        assert np.abs(translated - expected).max() <= FLOAT32_TOLERANCE
        metadata = requests.get(f"{url}/metadata", timeout=30).json()
        assert metadata["model_spec"]["version"] == "1"
        images = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert images["inputs"]["images"]["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in images["inputs"]["images"]["tensor_shape"]["dim"]] == [
            "-1",
            "-1",
            "-1",
            "3",
        ]
        assert server.alive()


def test_registry_serves_both_signatures_of_an_onnx_export(served_exports, generator):
    import io as bytes_io

    from PIL import Image

    from cyclegan_tf.serving import predict
    from cyclegan_tf.serving.exported import ExportSource
    from cyclegan_tf.serving.registry import ModelRegistry
    from cyclegan_tf.serving.runs import MemoryBudget, ModelRuns

    runs = ModelRuns(MemoryBudget(max_bytes=2**30, max_runs=1))
    registry = ModelRegistry(served_exports, poll_seconds=0, source=ExportSource("onnx"))
    registry.refresh()
    served = registry.get("apple2orange")
    assert served.path.endswith("1.onnx")
    pixels = np.random.default_rng(6).integers(0, 256, (1, 9, 7, 3)).astype("float32")
    expected = inference.translate_pixels(generator, pixels).numpy()
    limits = predict.Limits(max_pixels=64 * 64)
    response = predict.predict(served, {"inputs": {"images": pixels.tolist()}}, limits, runs)
    assert np.abs(np.array(response["outputs"]) - expected).max() <= FLOAT32_TOLERANCE
    buffer = bytes_io.BytesIO()
    Image.fromarray(pixels[0].astype(np.uint8)).save(buffer, format="PNG")
    request = {
        "signature_name": "translate_bytes",
        "instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}],
    }
    (prediction,) = predict.predict(served, request, limits, runs)["predictions"]
    png = Image.open(bytes_io.BytesIO(base64.b64decode(prediction["b64"])))
    assert png.size == (7, 9)
    assert np.abs(np.asarray(png, np.float32) - np.round(expected[0])).max() <= 1.0
    assert (
        ModelRegistry(served_exports, 0, ExportSource("litert")).source.versions(
            os.path.join(served_exports, "apple2orange")
        )
        == []
    )


def test_translate_cli_runs_an_export(served_exports, generator, tmp_path, capsys):
    from PIL import Image

    from cyclegan_tf.cli import translate as translate_cli

    pixels = np.random.default_rng(7).integers(0, 256, (10, 14, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "apple.png")
    expected = inference.translate_pixels(generator, pixels[None].astype("float32")).numpy()[0]
    model = os.path.join(served_exports, "apple2orange", "1.openvino")
    argv = ["--model", model, "--input", str(tmp_path / "apple.png"), "--output"]
    assert translate_cli.main([*argv, str(tmp_path / "out"), "--precision", "bf16"]) == 0
    translated = np.asarray(Image.open(tmp_path / "out" / "apple.png"), np.float32)
    assert translated.shape == pixels.shape
    assert 0.01 < np.abs(translated - np.round(expected)).mean() < 3.0  # bf16: close, not equal
    onnx_file = os.path.join(served_exports, "apple2orange", "1.onnx")
    with pytest.raises(SystemExit):
        translate_cli.main(
            [*argv, str(tmp_path / "o"), "--model", onnx_file, "--precision", "bf16"]
        )
    assert "error: --precision: bf16 applies to .keras generators" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")
    # An export runs whole images only: one that would not fit the budget is refused, not run.
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(tmp_path / "large.png")
    argv = ["--model", onnx_file, "--input", str(tmp_path / "large.png"), "--output"]
    assert translate_cli.main([*argv, str(tmp_path / "o"), "--max-memory-gb", "1"]) == 1
    err = capsys.readouterr().err
    assert (
        "a 300x300 image needs about 1.1 GiB in onnxruntime" in err and "--max-memory-gb 1" in err
    )


def test_runtime_benchmark_names_and_rows():
    from cyclegan_tf.tools import runtime_benchmark

    assert runtime_benchmark.expand_runtimes(["tensorflow", "litert", "litert-int8"]) == [
        "tensorflow",
        "litert-fp32",
        "litert-fp16",
        "litert-int8",
    ]
    with pytest.raises(ValueError, match="Unknown runtime 'tensorrt'"):
        runtime_benchmark.expand_runtimes(["tensorrt"])

    class Offset:
        def __init__(self, offset):
            self.offset = offset

        def translate_pixels(self, images):
            return images + self.offset

    rows = runtime_benchmark.measure_runtimes(
        {"reference": Offset(0.0), "shifted": Offset(2.0)},
        sizes=(8, 12),
        repeats=2,
        reference="reference",
    )
    assert [(row["runtime"], row["size"]) for row in rows] == [
        ("reference", 8),
        ("shifted", 8),
        ("reference", 12),
        ("shifted", 12),
    ]
    assert rows[1]["max_error"] == pytest.approx(2.0, abs=1e-4) and rows[0]["max_error"] == 0.0
    assert all(row["min_s"] <= row["median_s"] for row in rows)
    table = runtime_benchmark.format_rows(rows)
    assert "shifted" in table and "load average (1 min) before/after 12px" in table
