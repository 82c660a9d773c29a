"""Requests meant to bring the server down, each answered in a bounded time while it stays up.

Every test talks to a server on the loopback interface. Most share one server with small limits (so that
each hostile request is small and quick); one runs a server with the default flags under an
address-space limit, with TensorFlow's own CPU convolutions on 16 threads, as a CPU without oneDNN's
features (or with ``TF_ENABLE_ONEDNN_OPTS=0``) runs them; one serves an app in this process to see its
deadline.
"""

import contextlib
import json
import shutil
import socket
import threading
import time

import keras
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
requests = pytest.importorskip("requests")

from cyclegan_tf import export  # noqa: E402
from cyclegan_tf.models import resnet_generator  # noqa: E402
from cyclegan_tf.serving import loadtest  # noqa: E402
from cyclegan_tf.serving.process import ServerProcess, free_port  # noqa: E402
from tests.serving.conftest import b64, png, tiny_generator  # noqa: E402

LIMITS = {
    "--max-pixels": "256x256",
    "--max-request-pixels": "1000000",
    "--max-instances": "48",
    "--max-concurrent-runs": "1",
    "--max-memory-gb": "0.05",  # 53.7 MB: what parsing a 1.3 MB JSON body may take
    "--body-timeout-seconds": "1",
    "--header-timeout-seconds": "1",
    "--max-request-mb": "4",
    "--file-system-poll-wait-seconds": "0.2",
    "--log-level": "info",
}


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_models")
    export.export_generator(tiny_generator(1), str(base), "m")
    # Fifty times the work of "m" per image (50 ms at 128 x 128 on a 2-core CPU): a batch that lasts.
    keras.utils.set_random_seed(5)
    export.export_generator(resnet_generator(ngf=16, n_res_blocks=3), str(base), "slow")
    for seed in (2, 3):  # versions 1 and 2
        export.export_generator(tiny_generator(seed), str(base), "rollback")
    return base


@pytest.fixture(scope="module")
def server(base_path):
    args = [item for pair in LIMITS.items() for item in pair]
    with ServerProcess(str(base_path), args, ready_model="m") as process:
        yield process
        assert process.alive(), process.log()


def url(server, model="m"):
    return f"{server.url}/v1/models/{model}:predict"


def translate_bytes(images):
    return {"signature_name": "translate_bytes", "instances": [b64(data) for data in images]}


def test_too_many_instances_are_refused_before_any_work(server):
    tiny = png(4, 4, flat=True)
    response = requests.post(url(server), json=translate_bytes([tiny] * 49), timeout=30)
    assert response.status_code == 400
    assert "holds 49 instances" in response.json()["error"]
    assert "--max-instances" in response.json()["error"]
    pixels = {"instances": np.zeros((5000, 1, 1, 3), "uint8").tolist()}
    response = requests.post(url(server), json=pixels, timeout=30)
    assert response.status_code == 400 and "5000 instances" in response.json()["error"]


def test_too_many_pixels_in_one_request_are_refused(server):
    images = [
        png(250, 250, flat=True)
    ] * 20  # each within --max-pixels, together over the request's
    response = requests.post(url(server), json=translate_bytes(images), timeout=30)
    assert response.status_code == 400
    assert "hold 1250000 pixels together" in response.json()["error"]
    assert "--max-request-pixels" in response.json()["error"]


def test_parsing_a_body_counts_in_the_memory_budget(server):
    # 1.5 MB of JSON may take 41 times that parsed: more than the whole 53.7 MB budget.
    body = json.dumps({"instances": np.full((1, 300, 300, 3), 100, "uint8").tolist()})
    assert len(body) > 1.4e6
    response = requests.post(url(server), data=body, timeout=30)
    assert response.status_code == 400
    assert "--max-memory-gb" in response.json()["error"]
    small = {"instances": np.full((1, 20, 20, 3), 100, "uint8").tolist()}
    assert requests.post(url(server), json=small, timeout=30).status_code == 200


def _raw_connection(server):
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return connection


def _read_all(connection):
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_are_answered_408_and_closed(server):
    head = "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with _raw_connection(server) as slow_body:
        slow_body.sendall(head.encode() + b'{"instances": ')  # and nothing more
        answer = _read_all(slow_body)  # the server answers and closes: no timeout here
    assert answer.startswith(b"HTTP/1.1 408") and b"--body-timeout-seconds" in answer
    with _raw_connection(server) as slow_headers:
        slow_headers.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n")
        answer = _read_all(slow_headers)
    assert answer.startswith(b"HTTP/1.1 408") and b"--header-timeout-seconds" in answer
    with _raw_connection(server) as silent:
        assert _read_all(silent).startswith(b"HTTP/1.1 408")


def test_a_client_that_goes_away_leaves_one_log_line(server):
    before = server.log()
    head = "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    with _raw_connection(server) as leaving:
        leaving.sendall(head.encode() + b'{"instances": [')
        time.sleep(0.3)
    body = json.dumps(translate_bytes([png(128, 128, flat=True)] * 40)).encode()
    head = (
        f"POST /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with _raw_connection(server) as impatient:
        impatient.sendall(head.encode() + body)
        time.sleep(0.5)  # the translation has begun; it takes 2 s or more
    for _ in range(100):  # the second leaves its line when its work stops, at the next image
        new = server.log()[len(before) :]
        if "its work stopped" in new:
            break
        time.sleep(0.1)
    gone = [line for line in new.splitlines() if "went away" in line]
    assert len(gone) == 2, new
    assert "Traceback" not in new and "Exception" not in new
    assert requests.get(f"{server.url}/v1/models/m", timeout=30).status_code == 200


def test_a_large_batch_does_not_hold_the_run_slot(server):
    # One run slot: the batch of 48 images runs one image per reservation, so a request that comes
    # while it runs is served between two of its images instead of after the whole batch.
    batch = translate_bytes([png(128, 128, flat=True)] * 48)
    single = translate_bytes([png(16, 16)])
    timings = {}

    def send(name, body):
        start = time.monotonic()
        response = requests.post(url(server, "slow"), json=body, timeout=120)
        timings[name] = (time.monotonic() - start, response.status_code)

    send("batch alone", batch)  # warm: each size's first run builds its kernels
    send("single alone", single)
    batch_seconds = timings["batch alone"][0]
    finished = []
    large = threading.Thread(target=lambda: (send("batch", batch), finished.append("batch")))
    large.start()
    time.sleep(batch_seconds / 4)  # a quarter of its images done: the batch holds the slot
    send("single", single)
    finished.append("single")
    large.join()
    assert finished == ["single", "batch"], timings
    assert {status for _, status in timings.values()} == {200}, timings
    # It waited for one of the batch's images, not for the three quarters left.
    assert timings["single"][0] < batch_seconds / 4, timings


def test_rollback_under_load_serves_version_1_with_no_errors(server, base_path):
    model = "rollback"
    status_url = f"{server.url}/v1/models/{model}"
    assert requests.get(status_url, timeout=30).json()["model_version_status"][0]["version"] == "2"
    results = {}
    load = threading.Thread(
        target=lambda: results.update(
            loadtest.run(server.url, model, size=16, clients=2, duration=3.0, warmup=0)
        )
    )
    load.start()
    time.sleep(0.5)
    shutil.rmtree(base_path / model / "2")
    for _ in range(100):
        states = requests.get(status_url, timeout=30).json()["model_version_status"]
        if [(s["version"], s["state"]) for s in states] == [("2", "END"), ("1", "AVAILABLE")]:
            break
        time.sleep(0.1)
    load.join()
    assert [(s["version"], s["state"]) for s in states] == [("2", "END"), ("1", "AVAILABLE")]
    assert results["errors"] == 0 and results["counts"]["200"] > 0
    one = requests.post(url(server, f"{model}/versions/1"), json=translate_bytes([png(8, 8)]))
    assert one.status_code == 200
    two = requests.post(url(server, f"{model}/versions/2"), json=translate_bytes([png(8, 8)]))
    assert two.status_code == 404


@contextlib.contextmanager
def _serve_in_process(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_request_past_its_deadline_gets_504_and_frees_its_slot(base_path):
    from cyclegan_tf.serving.registry import ModelRegistry
    from cyclegan_tf.serving.rest import create_app

    registry = ModelRegistry(str(base_path), poll_seconds=0)
    registry.refresh()
    app = create_app(registry, max_concurrent_runs=1, request_timeout_seconds=0.3)
    with _serve_in_process(app) as local:
        batch = translate_bytes([png(128, 128, seed=i) for i in range(64)])
        response = requests.post(f"{local}/v1/models/m:predict", json=batch, timeout=60)
        assert response.status_code == 504
        assert "--rest-api-timeout-in-ms" in response.json()["error"]
        single = translate_bytes([png(16, 16)])
        assert requests.post(f"{local}/v1/models/m:predict", json=single).status_code == 200


# TensorFlow's own CPU convolutions (those of a CPU without AVX-512 VNNI/BF16 or AMX) on 16 threads
# ask for the im2col of a whole convolution at once: 3.3 GB for this image's last convolution.
EIGEN_KERNELS = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_NUM_INTRAOP_THREADS": "16",
    "MALLOC_ARENA_MAX": "2",
}
ADDRESS_SPACE_BYTES = 4 * 2**30  # this test's server peaks at 2.7 GiB; 5.0 GiB before this bound


def test_a_large_black_png_with_default_flags_is_answered_and_the_server_stays_up(tmp_path):
    base = tmp_path / "models"
    export.export_generator(tiny_generator(4), str(base), "m")
    black = png(2048, 2048, flat=True)
    with ServerProcess(
        str(base),
        ["--log-level", "warning"],
        ready_model="m",
        env=EIGEN_KERNELS,
        address_space_bytes=ADDRESS_SPACE_BYTES,
    ) as limited:
        try:
            response = requests.post(url(limited), json=translate_bytes([black]), timeout=300)
        except requests.ConnectionError:
            pytest.fail(f"the server died (status {limited.returncode}):\n{limited.log()[-2000:]}")
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 1
        assert limited.alive()
