import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cyclegan_tf import export, inference
from cyclegan_tf.cli import export as export_cli
from cyclegan_tf.models import resnet_generator
from tests.conftest import jpeg_with_orientation, pil_decode, textured_jpeg
from tests.export.test_formats import require_extra


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    generator = resnet_generator(ngf=4, n_res_blocks=1)
    base = str(tmp_path_factory.mktemp("exports"))
    return generator, base, export.export_generator(generator, base, "fruit_a2b")


def test_model_names():
    assert export.model_names("apple2orange") == ("apple2orange", "orange2apple")
    assert export.model_names("horse2zebra") == ("horse2zebra", "zebra2horse")
    assert export.model_names("fruit") == ("fruit_a2b", "fruit_b2a")


def test_versions_only_grow_and_are_never_overwritten(exported, tmp_path):
    generator, base, first = exported
    assert first.endswith(os.path.join("fruit_a2b", "1"))
    second = export.export_generator(generator, base, "fruit_a2b")
    assert second.endswith(os.path.join("fruit_a2b", "2"))
    mtime = os.path.getmtime(os.path.join(second, "saved_model.pb"))
    with pytest.raises(ValueError, match="already exists"):
        export.export_generator(generator, base, "fruit_a2b", version=2)
    assert os.path.getmtime(os.path.join(second, "saved_model.pb")) == mtime
    assert not [
        name for name in os.listdir(os.path.join(base, "fruit_a2b")) if name.startswith(".")
    ]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        export.export_generator(generator, str(a_file), "m")


def test_saved_model_cli_lists_both_signatures(exported):
    _, _, path = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--all", "--dir", path], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-1000:]
    text = result.stdout
    serving = text[text.index("signature_def['serving_default']") :]
    serving = serving[: serving.index("Method name")]
    assert "inputs['images']" in serving and "outputs['images']" in serving
    assert "DT_FLOAT" in serving and "(-1, -1, -1, 3)" in serving
    translate = text[text.index("signature_def['translate_bytes']") :]
    translate = translate[: translate.index("Method name")]
    assert "inputs['image_bytes']" in translate and "outputs['image_bytes']" in translate
    assert "DT_STRING" in translate and "shape: (-1)" in translate


def test_signatures_run_without_this_package_on_odd_sizes(exported, tmp_path):
    generator, _, path = exported
    reference_input = np.random.default_rng(0).uniform(0, 255, (1, 37, 53, 3)).astype("float32")
    np.save(tmp_path / "input.npy", reference_input)
    portrait = (
        tmp_path / "portrait.jpg"
    )  # a phone's portrait photo: landscape pixels, orientation 6
    portrait.write_bytes(jpeg_with_orientation(np.zeros((24, 40, 3), np.uint8), 6))
    script = textwrap.dedent(
        f"""
        import io, json, sys
        import numpy as np, tensorflow as tf
        from PIL import Image
        loaded = tf.saved_model.load({path!r})
        images = np.load({str(tmp_path / "input.npy")!r})
        out = loaded.signatures["serving_default"](images=tf.constant(images))["images"].numpy()
        np.save({str(tmp_path / "output.npy")!r}, out)
        tiny = loaded.signatures["serving_default"](images=tf.zeros([2, 1, 1, 3]))["images"]
        encoded = []
        for size in [(37, 53), (1, 1)]:
            buffer = io.BytesIO()
            Image.fromarray(np.full(size + (3,), 200, np.uint8)).save(buffer, "PNG")
            encoded.append(buffer.getvalue())
        encoded.append(open({str(portrait)!r}, "rb").read())
        pngs = loaded.signatures["translate_bytes"](image_bytes=tf.constant(encoded))["image_bytes"]
        sizes = [Image.open(io.BytesIO(png)).size for png in pngs.numpy()]
        print(json.dumps({{"tiny": list(tiny.shape), "sizes": sizes,
                          "imported": "cyclegan_tf" in sys.modules}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The portrait comes out upright (24 wide, 40 high), as a photo viewer shows it.
    assert report == {
        "tiny": [2, 1, 1, 3],
        "sizes": [[53, 37], [1, 1], [24, 40]],
        "imported": False,
    }
    outputs = np.load(tmp_path / "output.npy")
    from cyclegan_tf import inference

    expected = inference.translate_pixels(generator, reference_input).numpy()
    np.testing.assert_allclose(outputs, expected, atol=1e-3)


def test_translate_bytes_sees_the_pixels_pil_decodes_from_a_jpeg(exported):
    import tensorflow as tf

    _, _, path = exported
    signatures = tf.saved_model.load(path).signatures

    def translated(pixels):
        images = tf.constant(pixels[None], tf.float32)
        output = signatures["serving_default"](images=images)["images"][0].numpy()
        return np.round(output).astype(np.uint8)

    for subsampling in (0, 2):
        contents = textured_jpeg(45, 61, subsampling=subsampling)
        encoded = signatures["translate_bytes"](image_bytes=tf.constant([contents]))
        from_bytes = pil_decode(encoded["image_bytes"][0].numpy())
        np.testing.assert_array_equal(from_bytes, translated(pil_decode(contents)))
        # TensorFlow's default decode (the fast DCT) would have given another translation.
        fast = tf.io.decode_image(contents, channels=3).numpy()
        assert not np.array_equal(from_bytes, translated(fast))


def test_export_cli_from_a_run(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    base = str(tmp_path / "exports")
    assert export_cli.main(["--run", run, "--export-dir", base, "--version", "7"]) == 0
    assert os.path.isdir(os.path.join(base, "apple2orange", "7"))
    assert os.path.isdir(os.path.join(base, "orange2apple", "7"))
    with pytest.raises(SystemExit):
        export_cli.main(["--run", run, "--export-dir", base, "--version", "7"])
    assert "already exists" in capsys.readouterr().err
    assert export_cli.main(["--run", run, "--export-dir", base, "--name", "fruit"]) == 0
    assert os.listdir(os.path.join(base, "fruit_b2a")) == ["1"]


def test_formats_sit_next_to_the_saved_models_under_one_version(tmp_path, synthetic_dir):
    for format_name in ("onnx", "openvino", "litert"):
        require_extra(format_name)
    generator = resnet_generator(ngf=4, n_res_blocks=1)
    base = str(tmp_path)

    def export_as(format_name, **options):
        path = export.export_generator(generator, base, "m", format=format_name, **options)
        return os.path.relpath(path, os.path.join(base, "m"))

    assert export_as("saved_model") == "1"
    assert export_as("onnx") == "1.onnx"
    assert export_as("litert", image_size=32) == "1.32x32.tflite"
    assert export_as("openvino", quantize="fp16") == "1.fp16.openvino"
    assert export_as("onnx") == "2.onnx"  # 1.onnx is taken: a new version
    images = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    expected = inference.translate_pixels(generator, images).numpy()
    for name, tolerance in (("1.onnx", 0.2), ("1.32x32.tflite", 0.2), ("1.fp16.openvino", 2.0)):
        translated = inference.load_runtime(os.path.join(base, "m", name)).translate_pixels(images)
        assert np.abs(translated - expected).max() <= tolerance, name
    assert sorted(os.listdir(os.path.join(base, "m", "1.fp16.openvino"))) == [
        "model.bin",
        "model.xml",
    ]


def test_export_cli_formats_from_a_run_and_a_generator_file(tiny_run, tmp_path, capsys):
    require_extra("onnx")
    require_extra("litert")
    run, _ = tiny_run
    base = str(tmp_path / "exports")
    argv = ["--run", run, "--export-dir", base, "--format", "onnx", "--quantize", "int8"]
    assert export_cli.main(argv) == 0  # calibrated on the run's trainA/ and trainB/
    assert os.listdir(os.path.join(base, "apple2orange")) == ["1.int8.onnx"]
    assert os.listdir(os.path.join(base, "orange2apple")) == ["1.int8.onnx"]
    generator_file = os.path.join(run, "models", "netG_A2B.keras")
    argv = ["--generator", generator_file, "--export-dir", base, "--name", "apple2orange"]
    assert export_cli.main([*argv, "--format", "litert", "--image-size", "64"]) == 0
    assert "apple2orange: " + os.path.join(base, "apple2orange", "1.64x64.tflite") in (
        capsys.readouterr().out
    )
    with pytest.raises(SystemExit):
        export_cli.main([*argv, "--format", "litert", "--quantize", "int8"])
    assert "error: --calibration-images: quantize='int8' needs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_cli.main([*argv, "--image-size", "64"])
    assert "error: --image-size: the SavedModel takes any image size" in capsys.readouterr().err


def test_export_cli_names_the_missing_extra_in_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes ``import openvino`` fail
    run, _ = tiny_run
    argv = ["--run", run, "--export-dir", str(tmp_path), "--format", "openvino"]
    with pytest.raises(SystemExit) as exited:
        export_cli.main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "cyclegan-export: error: OpenVINO export needs the [openvino] extra: "
        "pip install 'cyclegan_tf[openvino]' (could not import openvino: import of openvino "
        "halted; None in sys.modules)"
    ]


def test_signatures_refuse_images_over_the_pixel_limit(tmp_path):
    import io

    import tensorflow as tf
    from PIL import Image

    generator = resnet_generator(ngf=4, n_res_blocks=1)
    path = export.saved_model.export(generator, str(tmp_path), "limited", max_pixels=20 * 10)
    signatures = tf.saved_model.load(path).signatures
    assert signatures["serving_default"](images=tf.zeros([1, 20, 10, 3]))["images"].shape[1] == 20

    def png(height, width):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buffer, "PNG")
        return tf.constant([buffer.getvalue()])

    signatures["translate_bytes"](image_bytes=png(10, 20))
    calls = [
        lambda: signatures["serving_default"](images=tf.zeros([1, 21, 10, 3])),
        lambda: signatures["translate_bytes"](image_bytes=png(10, 21)),
    ]
    for call in calls:
        with pytest.raises(tf.errors.InvalidArgumentError, match="at most 200 pixels") as error:
            call()
        assert "cyclegan-translate --model <this SavedModel>" in str(error.value)
