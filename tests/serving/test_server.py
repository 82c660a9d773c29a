import base64
import io
import json
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
requests = pytest.importorskip("requests")

from cyclegan_tf import export  # noqa: E402
from cyclegan_tf.cli import serve as serve_cli  # noqa: E402
from cyclegan_tf.serving import loadtest  # noqa: E402
from cyclegan_tf.serving.process import ServerProcess  # noqa: E402
from cyclegan_tf.serving.registry import ModelRegistry, ServableNotFoundError  # noqa: E402
from tests.conftest import REPO_ROOT, pil_decode, require, textured_jpeg  # noqa: E402
from tests.serving.conftest import b64, png, tiny_generator  # noqa: E402

DOCS = REPO_ROOT / "docs" / "serving.md"
MAX_PIXELS = 128 * 128


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    export.export_generator(tiny_generator(1), str(base), "apple2orange")
    export.export_generator(tiny_generator(2), str(base), "orange2apple")
    export.export_generator(tiny_generator(3), str(base), "hotswap")
    return base


@pytest.fixture(scope="module")
def server(base_path):
    args = ["--max-request-mb", "1", "--max-pixels", "128x128"]
    args += ["--file-system-poll-wait-seconds", "0.2", "--max-concurrent-runs", "2"]
    args += ["--log-level", "warning"]
    with ServerProcess(str(base_path), args, ready_model="apple2orange") as process:
        yield process
        assert process.alive()


@pytest.fixture(scope="module")
def local_model(base_path):
    return tf.saved_model.load(str(base_path / "apple2orange" / "1"))


def predict_url(server, model="apple2orange", version=None):
    where = model if version is None else f"{model}/versions/{version}"
    return f"{server.url}/v1/models/{where}:predict"


def test_model_status_is_tf_servings(server):
    response = requests.get(f"{server.url}/v1/models/apple2orange", timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert requests.get(f"{server.url}/v1/models/apple2orange/versions/1", timeout=30).json() == (
        response.json()
    )


def test_metadata_lists_both_signatures(server):
    response = requests.get(f"{server.url}/v1/models/orange2apple/metadata", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": "orange2apple", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    images = signatures["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [dim["size"] for dim in images["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert signatures["translate_bytes"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert signatures["translate_bytes"]["outputs"]["image_bytes"]["dtype"] == "DT_STRING"


def test_predict_pixels_row_and_columnar_formats(server, local_model):
    pixels = np.random.default_rng(5).integers(0, 256, (2, 12, 20, 3)).astype("float32")
    expected = local_model.signatures["serving_default"](images=tf.constant(pixels))["images"]

    row = requests.post(predict_url(server), json={"instances": pixels.tolist()}, timeout=60)
    assert row.status_code == 200, row.text
    np.testing.assert_allclose(np.array(row.json()["predictions"]), expected, atol=1e-3)

    columnar = requests.post(
        predict_url(server, version=1), json={"inputs": {"images": pixels.tolist()}}, timeout=60
    )
    assert columnar.status_code == 200, columnar.text
    np.testing.assert_allclose(np.array(columnar.json()["outputs"]), expected, atol=1e-3)

    other = requests.post(predict_url(server, "orange2apple"), json={"inputs": pixels.tolist()})
    assert np.abs(np.array(other.json()["outputs"]) - expected.numpy()).max() > 1.0


def test_predict_image_bytes_as_b64(server, local_model):
    images = [png(12, 20, seed=1), png(9, 7, seed=2)]
    request = {"signature_name": "translate_bytes", "instances": [b64(data) for data in images]}
    response = requests.post(predict_url(server), json=request, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = local_model.signatures["translate_bytes"](image_bytes=tf.constant(images))
    for prediction, data, local in zip(predictions, images, expected["image_bytes"].numpy()):
        translated = Image.open(io.BytesIO(base64.b64decode(prediction["b64"])))
        assert translated.format == "PNG"
        assert translated.size == Image.open(io.BytesIO(data)).size
        np.testing.assert_array_equal(
            np.asarray(translated), np.asarray(Image.open(io.BytesIO(local)))
        )

    named = {"signature_name": "translate_bytes", "instances": [{"image_bytes": b64(images[1])}]}
    columnar = {"signature_name": "translate_bytes", "inputs": {"image_bytes": [b64(images[1])]}}
    for body, key in [(named, "predictions"), (columnar, "outputs")]:
        answer = requests.post(predict_url(server), json=body, timeout=60).json()
        assert answer[key] == [predictions[1]]


def test_a_portrait_phone_photo_comes_back_upright(server):
    from tests.conftest import jpeg_with_orientation

    stored = np.random.default_rng(3).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    request = {
        "signature_name": "translate_bytes",
        "instances": [b64(jpeg_with_orientation(stored, 6))],  # landscape pixels, orientation 6
    }
    response = requests.post(predict_url(server), json=request, timeout=60)
    assert response.status_code == 200, response.text
    translated = Image.open(io.BytesIO(base64.b64decode(response.json()["predictions"][0]["b64"])))
    assert translated.size == (24, 40)  # as a photo viewer shows it


def test_a_jpeg_is_translated_from_the_pixels_pil_decodes(server, local_model):
    contents = textured_jpeg(96, 128, subsampling=2)  # the web page sends the file as it is
    request = {"signature_name": "translate_bytes", "instances": [b64(contents)]}
    response = requests.post(predict_url(server), json=request, timeout=60)
    assert response.status_code == 200, response.text
    served = pil_decode(base64.b64decode(response.json()["predictions"][0]["b64"]))

    def translated(pixels):
        images = tf.constant(pixels[None], tf.float32)
        output = local_model.signatures["serving_default"](images=images)["images"][0]
        return np.round(np.clip(output, 0, 255)).astype(np.uint8)

    np.testing.assert_array_equal(served, translated(pil_decode(contents)))
    fast = tf.io.decode_image(contents, channels=3).numpy()  # TensorFlow's default decode
    assert not np.array_equal(served, translated(fast))


def _post_raw(server, body, url=None):
    return requests.post(url or predict_url(server), data=body, timeout=60)


BAD_REQUESTS = [
    ("malformed JSON", b'{"instances": [', 400, "JSON Parse error"),
    ("not an object", b"[1, 2]", 400, "must be a JSON object"),
    ("neither key", b'{"signature_name": "serving_default"}', 400, '"instances" or "inputs"'),
    ("both keys", b'{"instances": [1], "inputs": [1]}', 400, "not both"),
    ("unknown signature", b'{"signature_name": "nope", "instances": [1]}', 400, "not found"),
    ("wrong rank", b'{"instances": [[1, 2, 3]]}', 400, "expects shape [-1, -1, -1, 3]"),
    ("wrong channels", b'{"instances": [[[[1, 2]]]]}', 400, "Received: [1, 1, 1, 2]"),
    ("strings for floats", b'{"instances": [[[["a", "b", "c"]]]]}', 400, "expected float32"),
    ("ragged", b'{"instances": [[[[1, 2, 3]], [[1, 2, 3], [4, 5, 6]]]]}', 400, "ragged"),
    ("empty instances", b'{"instances": []}', 400, "non-empty list"),
    (
        "not an image",
        json.dumps({"signature_name": "translate_bytes", "instances": [b64(b"hello")]}).encode(),
        400,
        "image_bytes[0] is not an image",
    ),
    (
        "invalid base64",
        b'{"signature_name": "translate_bytes", "instances": [{"b64": "%%%"}]}',
        400,
        "not valid base64",
    ),
    (
        "too many pixels (bytes)",
        json.dumps(
            {"signature_name": "translate_bytes", "instances": [b64(png(100, 200))]}
        ).encode(),
        400,
        "200x100 = 20000 pixels",
    ),
    (
        "too many pixels (floats)",
        json.dumps({"instances": np.zeros((1, 130, 130, 3), "uint8").tolist()}).encode(),
        400,
        "130x130 = 16900 pixels",
    ),
    ("body over the limit", b'{"instances": [' + b"1," * 600_000 + b"1]}", 413, "over 1048576"),
]


@pytest.mark.parametrize(
    "body,status,message",
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_tf_serving_errors_and_the_server_stays_up(server, body, status, message):
    response = _post_raw(server, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]
    assert requests.get(f"{server.url}/v1/models/apple2orange", timeout=30).status_code == 200


@pytest.mark.parametrize(
    "method,path,message",
    [
        (
            "post",
            "/v1/models/zebra2horse:predict",
            "Servable not found for request: Latest(zebra2horse)",
        ),
        ("post", "/v1/models/apple2orange/versions/9:predict", "Specific(apple2orange, 9)"),
        ("get", "/v1/models/zebra2horse", "Could not find any versions of model zebra2horse"),
        ("get", "/v1/models/apple2orange/versions/9", "Could not find version 9"),
        ("get", "/v1/models/zebra2horse/metadata", "Latest(zebra2horse)"),
        ("get", "/v1/nothing", "Not Found"),
    ],
)
def test_unknown_models_and_versions_are_404(server, method, path, message):
    response = getattr(requests, method)(server.url + path, json={"instances": [1]}, timeout=30)
    assert response.status_code == 404
    assert message in response.json()["error"]


def test_new_versions_are_served_without_restart(server, base_path):
    pixels = np.full((1, 8, 8, 3), 100.0, "float32").tolist()
    before = requests.post(predict_url(server, "hotswap"), json={"instances": pixels}).json()
    export.export_generator(tiny_generator(4), str(base_path), "hotswap")
    for _ in range(150):
        status = requests.get(f"{server.url}/v1/models/hotswap", timeout=30).json()
        if ("2", "AVAILABLE") == tuple(status["model_version_status"][0].values())[:2]:
            break  # version 2 loaded (LOADING while it loads, version 1 still AVAILABLE meanwhile)
        threading.Event().wait(0.2)
    states = [(entry["version"], entry["state"]) for entry in status["model_version_status"]]
    assert states == [("2", "AVAILABLE"), ("1", "END")]  # version 1 was unloaded, as in TF Serving
    after = requests.post(predict_url(server, "hotswap"), json={"instances": pixels}).json()
    assert "predictions" in after, after
    assert after["predictions"] != before["predictions"]
    old = requests.post(predict_url(server, "hotswap", version=1), json={"instances": pixels})
    assert old.status_code == 404


def test_concurrent_clients_get_their_own_answers(server):
    bodies = [loadtest.predict_body(png(16, 16 + 4 * i, seed=i)) for i in range(4)]
    expected = [_post_raw(server, body).json() for body in bodies]
    answers = [[] for _ in bodies]

    def client(index):
        for _ in range(3):
            answers[index].append(_post_raw(server, bodies[index]).json())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, received in enumerate(answers):
        assert received == [expected[index]] * 3


def test_loadtest_measures_latency_and_throughput(server):
    result = loadtest.run(server.url, "apple2orange", size=64, clients=4, requests=8)
    assert result["counts"] == {"200": 8} and result["errors"] == 0
    assert 0 < result["p50_s"] <= result["p90_s"] <= result["p99_s"] < 30
    assert result["requests_per_s"] > 0


def test_loadtest_counts_errors_and_goes_on(server, capsys):
    from cyclegan_tf.cli import loadtest as loadtest_cli

    code = loadtest_cli.main(
        ["--url", server.url, "--model", "absent", "--requests", "6", "--clients", "2"]
    )
    assert code == 1  # every request failed, none stopped the run
    line, data = capsys.readouterr().out.splitlines()
    assert json.loads(data)["counts"] == {"404": 6} and "404: 6" in line and "6 error(s)" in line
    closed = loadtest.run("http://127.0.0.1:9", "m", clients=1, requests=2, warmup=0)
    assert closed["counts"] == {"connection": 2} and closed["p99_s"] is None


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert [loadtest.percentile(values, p) for p in (0.5, 0.9, 0.99)] == [50, 90, 99]
    assert loadtest.percentile([3.0], 0.99) == 3.0 and loadtest.percentile([], 0.5) is None


def test_web_page_and_model_list_are_served(server):
    page = requests.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and '<select id="model"' in page.text
    assert requests.get(server.url + "/static/app.js", timeout=30).status_code == 200
    listed = requests.get(server.url + "/api/models", timeout=30).json()
    names = [model["name"] for model in listed["models"]]
    assert {"apple2orange", "orange2apple"} <= set(names)
    assert listed["max_pixels"] == MAX_PIXELS and listed["max_request_bytes"] == 2**20


def _doc_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_docs_curl_examples_run_against_the_server(server, tmp_path, monkeypatch):
    require(shutil.which("curl") is not None, "curl is not installed")
    Image.open(io.BytesIO(png(48, 64, seed=9))).convert("RGB").save(tmp_path / "apple.jpg")
    monkeypatch.chdir(tmp_path)
    local = server.url.replace("http://", "")
    curls = [block for block in _doc_blocks("sh") if block.lstrip().startswith(("curl", "printf"))]
    assert len(curls) >= 4
    for block in curls:
        script = block.replace("localhost:8501", local)
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert '"error"' not in result.stdout
    assert Image.open(tmp_path / "orange.png").size == (64, 48)


def test_docs_python_examples_run_against_the_server(server, tmp_path, monkeypatch):
    Image.open(io.BytesIO(png(48, 64, seed=9))).convert("RGB").save(tmp_path / "apple.jpg")
    monkeypatch.chdir(tmp_path)
    local = server.url.replace("http://", "")
    namespace = {}
    python_blocks = _doc_blocks("python")
    assert len(python_blocks) == 2
    for block in python_blocks:
        exec(compile(block.replace("localhost:8501", local), str(DOCS), "exec"), namespace)
    assert Image.open(tmp_path / "orange.png").size == (64, 48)
    assert Image.open(tmp_path / "orange_pixels.png").size == (64, 48)


def _states(registry, name):
    return [(e["version"], e["state"]) for e in registry.status(name)["model_version_status"]]


def test_rollback_serves_the_next_highest_version_at_the_next_scan(tmp_path):
    for seed in (1, 2):
        export.export_generator(tiny_generator(seed), str(tmp_path), "a2b")
    registry = ModelRegistry(str(tmp_path), poll_seconds=0)
    registry.refresh()
    assert registry.get("a2b").version == 2 and _states(registry, "a2b") == [("2", "AVAILABLE")]
    shutil.rmtree(tmp_path / "a2b" / "2")
    registry.refresh()  # one scan: version 1 is loaded, then version 2 unloaded
    assert registry.get("a2b").version == 1
    assert registry.get("a2b", 1).version == 1
    with pytest.raises(ServableNotFoundError, match="Specific\\(a2b, 2\\)"):
        registry.get("a2b", 2)
    assert _states(registry, "a2b") == [("2", "END"), ("1", "AVAILABLE")]
    shutil.rmtree(tmp_path / "a2b" / "1")
    registry.refresh()  # no version left: the model is no longer served
    with pytest.raises(ServableNotFoundError):
        registry.get("a2b")
    assert _states(registry, "a2b") == [("2", "END"), ("1", "END")]


def test_a_version_copied_in_two_steps_loads_once_complete(tmp_path):
    export.export_generator(tiny_generator(1), str(tmp_path), "a2b")
    complete = export.export_generator(tiny_generator(2), str(tmp_path / "staging"), "a2b")
    registry = ModelRegistry(str(tmp_path), poll_seconds=0)
    registry.refresh()
    copy = tmp_path / "a2b" / "2"
    copy.mkdir()
    shutil.copy(f"{complete}/saved_model.pb", copy)  # variables/ comes later
    registry.refresh()
    assert registry.get("a2b").version == 1
    ((version, state, error),) = [
        (e["version"], e["state"], e["status"]["error_message"])
        for e in registry.status("a2b", 2)["model_version_status"]
    ]
    assert (version, state) == ("2", "END") and error
    registry.refresh()  # retried, fails again: version 1 still serves
    assert registry.get("a2b").version == 1
    shutil.copytree(f"{complete}/variables", copy / "variables")
    registry.refresh()  # the same saved_model.pb, now complete: retried and served
    assert registry.get("a2b").version == 2
    assert _states(registry, "a2b") == [("2", "AVAILABLE"), ("1", "END")]


def test_registry_keeps_serving_when_a_new_version_is_broken(tmp_path):
    export.export_generator(tiny_generator(1), str(tmp_path), "a2b")
    registry = ModelRegistry(str(tmp_path), poll_seconds=0)
    registry.refresh()
    (tmp_path / "a2b" / "2").mkdir()
    (tmp_path / "a2b" / "2" / "saved_model.pb").write_bytes(b"garbage")
    registry.refresh()
    assert registry.get("a2b").version == 1
    status = registry.status("a2b")["model_version_status"]
    assert [(entry["version"], entry["state"]) for entry in status] == [
        ("2", "END"),
        ("1", "AVAILABLE"),
    ]
    assert status[0]["status"]["error_code"] == "UNKNOWN" and status[0]["status"]["error_message"]
    shutil.rmtree(tmp_path / "a2b")
    registry.refresh()
    with pytest.raises(ServableNotFoundError):
        registry.get("a2b")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_request_bytes": 0}, {"max_pixels": -1}, {"max_concurrent_runs": 0}],
)
def test_app_refuses_limits_that_are_not_positive(tmp_path, kwargs):
    from cyclegan_tf.serving import create_app

    with pytest.raises(ValueError, match="must be positive. Received: "):
        create_app(ModelRegistry(str(tmp_path)), **kwargs)


def test_cli_refuses_a_missing_base_path(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_cli.main(["--model-base-path", str(tmp_path / "absent")])
    assert exit_info.value.code == 2
    assert "--model-base-path: no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("text,pixels", [("4096x4096", 4096 * 4096), ("100", 100), ("3 x 5", 15)])
def test_max_pixels_accepts_sizes_and_counts(text, pixels):
    assert serve_cli.pixel_count(text) == pixels


def test_the_server_does_not_import_training_code():
    code = (
        "import sys; import cyclegan_tf.cli.serve, cyclegan_tf.serving.rest; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('cyclegan_tf'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = result.stdout.split()
    assert "cyclegan_tf.serving.registry" in loaded
    # The server decodes images as training does (data.decode); it never loads the training layer.
    assert "cyclegan_tf.data.decode" in loaded
    assert not [module for module in loaded if module.startswith("cyclegan_tf.training")]


def test_three_probes_get_clear_answers(server):
    nested = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = _post_raw(server, nested)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]

    truncated = png(64, 64, seed=7)[:-200]
    request = {"signature_name": "translate_bytes", "instances": [b64(truncated)]}
    response = requests.post(predict_url(server), json=request, timeout=60)
    assert response.status_code == 400
    assert "image_bytes[0]: the image is truncated" in response.json()["error"]

    for path in ("apple2orange:predict", "apple2orange/versions/1:predict"):
        response = requests.get(f"{server.url}/v1/models/{path}", timeout=30)
        assert response.status_code == 405
        assert ":predict takes POST" in response.json()["error"]
    assert server.alive()


def test_images_over_a_runs_share_are_tiled_with_the_signatures_result(base_path, local_model):
    from cyclegan_tf.serving.runs import MemoryBudget, ModelRuns

    registry = ModelRegistry(str(base_path))
    registry.refresh()
    served = registry.get("apple2orange")
    assert served.generator is not None  # rebuilt from the SavedModel's weights
    runs = ModelRuns(MemoryBudget(max_bytes=2**23, max_runs=1))
    # ngf 4: a 96x128 image may take about 11 MiB whole (most of it the head convolution's im2col
    # buffer), over the run's 8 MiB: it is tiled; a 48x64 image, about 3 MiB, runs whole.
    assert runs.whole_run_bytes(served, [(96, 128)]) > runs.tiled_run_bytes
    assert runs.whole_run_bytes(served, [(48, 64)]) < runs.tiled_run_bytes
    images = np.array([png(96, 128, seed=8)], dtype=object)
    outputs = runs.run(served, "translate_bytes", {"image_bytes": images}, [(96, 128)])
    translated = np.asarray(Image.open(io.BytesIO(outputs["image_bytes"][0])))
    expected = local_model.signatures["translate_bytes"](image_bytes=tf.constant(images))
    expected = np.asarray(Image.open(io.BytesIO(expected["image_bytes"].numpy()[0])))
    assert translated.shape == expected.shape == (96, 128, 3)
    assert np.abs(translated.astype(int) - expected).max() <= 1
    pixels = np.random.default_rng(9).integers(0, 256, (1, 96, 128, 3)).astype("float32")
    outputs = runs.run(served, "serving_default", {"images": pixels}, [(96, 128)])
    expected = local_model.signatures["serving_default"](images=tf.constant(pixels))["images"]
    assert np.abs(outputs["images"] - expected.numpy()).max() <= 1.0
    assert runs.budget.used_bytes == 0
    bf16 = ModelRuns(MemoryBudget(max_bytes=2**30, max_runs=1), precision="bf16")
    small = pixels[:, :32, :40]
    outputs = bf16.run(served, "serving_default", {"images": small}, [(32, 40)])
    expected = local_model.signatures["serving_default"](images=tf.constant(small))["images"]
    error = np.abs(outputs["images"] - expected.numpy())
    assert 0 < error.max() <= 6.0  # bfloat16 convolutions: a few levels at most


def test_memory_budget_waits_then_refuses_with_503():
    from cyclegan_tf.serving.predict import RequestError
    from cyclegan_tf.serving.runs import MemoryBudget

    budget = MemoryBudget(max_bytes=100, max_runs=2, wait_seconds=0.2)
    with pytest.raises(RequestError) as error:
        with budget.reserve(101):
            pass
    assert error.value.status == 400 and "--max-memory-gb" in error.value.message
    released = threading.Event()
    entered = []

    def hold():
        with budget.reserve(60):
            entered.append("first")
            released.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    while not entered:
        threading.Event().wait(0.01)
    with pytest.raises(RequestError) as error:  # 60 + 60 > 100: waits 0.2 s, then 503
        with budget.reserve(60):
            pass
    assert error.value.status == 503 and "busy" in error.value.message
    with budget.reserve(40):  # fits next to the first
        assert budget.used_bytes == 100 and budget.runs == 2
    late = threading.Timer(0.1, released.set)
    late.start()
    budget.wait_seconds = 5
    with budget.reserve(60):  # waits for the first to finish
        assert budget.runs == 1
    holder.join()
    assert budget.used_bytes == 0 and budget.runs == 0


def test_serve_help_needs_neither_fastapi_nor_uvicorn():
    """``cyclegan-serve --help`` and its defaults come from ``serving.limits``, not the server."""
    script = (
        "import sys\n"
        "sys.modules.update(fastapi=None, uvicorn=None, starlette=None)\n"
        "from cyclegan_tf.cli import serve\n"
        "serve.build_parser().print_help()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    assert "--max-connections" in text and "(default: 256)" in text


def test_cli_defaults_are_the_servers():
    from cyclegan_tf.serving import connections, predict, rest, runs

    args = serve_cli.build_parser().parse_args([])
    assert args.max_concurrent_runs == runs.DEFAULT_MAX_CONCURRENT_RUNS
    assert args.max_memory_gb == runs.DEFAULT_MAX_MEMORY_GB
    assert args.max_instances == predict.DEFAULT_MAX_INSTANCES
    assert args.max_connections == connections.DEFAULT_MAX_CONNECTIONS
    assert args.max_request_mb * 2**20 == rest.DEFAULT_MAX_REQUEST_BYTES
    assert args.rest_api_timeout_in_ms / 1000 == rest.DEFAULT_REQUEST_TIMEOUT_SECONDS


def test_max_concurrent_runs_bounds_the_model_runs_in_flight(base_path):
    import socket
    import time

    import uvicorn

    from cyclegan_tf.serving.rest import create_app

    registry = ModelRegistry(str(base_path), 0)
    registry.refresh()
    served = registry.get("apple2orange")
    run_signature = served.signatures["serving_default"]
    in_flight, most = [0], [0]
    lock = threading.Lock()

    class CountingSignature:  # the model run, slowed so that requests overlap
        def __getattr__(self, name):
            return getattr(run_signature, name)

        def __call__(self, **inputs):
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.3)
            try:
                return run_signature(**inputs)
            finally:
                with lock:
                    in_flight[0] -= 1

    served.signatures["serving_default"] = CountingSignature()
    app = create_app(registry, max_concurrent_runs=2, max_wait_seconds=30)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    try:
        while not uvicorn_server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/models/apple2orange:predict"
        body = {"instances": np.zeros((1, 8, 8, 3)).tolist()}
        statuses = []

        def client():
            statuses.append(requests.post(url, json=body, timeout=60).status_code)

        clients = [threading.Thread(target=client) for _ in range(6)]
        for each in clients:
            each.start()
        for each in clients:
            each.join()
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
    assert statuses == [200] * 6  # the others waited for a slot
    assert most[0] == 2
