"""A training run whose data, run folder and exports live on ``gs://``, interrupted and resumed.

TensorFlow's ``gs://`` filesystem has no endpoint setting: its URLs are constants
(``https://www.googleapis.com/storage/v1/`` and ``https://storage.googleapis.com`` in
``tsl/platform/cloud/gcs_file_system.cc``). Its libcurl does honour ``https_proxy`` and
``CURL_CA_BUNDLE``, and ``GOOGLE_AUTH_TOKEN_FOR_TESTING`` replaces the OAuth flow. So the test runs
the ``gcp-storage-emulator`` on 127.0.0.1 behind a small proxy that answers ``CONNECT``, ends TLS
with a certificate made for the two Google hosts (trusted through ``CURL_CA_BUNDLE``) and forwards
each request to the emulator. Nothing leaves the machine; the training code is not changed for it.
"""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from tests.conftest import REPO_ROOT, TINY_TRAIN_ARGS, require

pytestmark = pytest.mark.slow

ROOT = str(REPO_ROOT)
BUCKET = "cyclegan-test"
_GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _certificate(folder):
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    names = ",".join(f"DNS:{host}" for host in _GOOGLE_HOSTS)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", key]
        + ["-out", cert, "-subj", f"/CN={_GOOGLE_HOSTS[0]}", "-addext", f"subjectAltName={names}"],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Forwarder(http.server.BaseHTTPRequestHandler):
    """An HTTPS proxy for the Google hosts that forwards every request to the emulator."""

    protocol_version = "HTTP/1.1"
    emulator = None  # (host, port)
    tls = None  # ssl.SSLContext with the test certificate

    def log_message(self, *args):
        del args

    def do_CONNECT(self):
        self.send_response(200, "Connection established")
        self.end_headers()
        self.connection = self.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb", -1)
        self.wfile = self.connection.makefile("wb", 0)
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()

    def _body(self):
        if "chunked" not in self.headers.get("Transfer-Encoding", ""):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return body

    def _forward(self):
        parts = urllib.parse.urlsplit(self.path)
        path = (parts.path + (f"?{parts.query}" if parts.query else "")) or "/"
        body = self._body()
        dropped = (
            "proxy-connection",
            "transfer-encoding",
            "content-length",
            "expect",
            "connection",
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(*self.emulator, timeout=60)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() in ("transfer-encoding", "content-length", "connection"):
                continue
            if key.lower() == "location":  # the emulator names itself http://<Host header>
                value = value.replace("http://", "https://", 1)
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward


def _allow_empty_media_uploads():
    """The emulator fails on an empty ``uploadType=media`` body (TensorFlow's folder markers)."""
    from gcp_storage_emulator.handlers import objects

    original = objects._media_upload
    if getattr(original, "allows_empty", False):
        return

    def media_upload(request, response, storage):
        if request.data is None:
            request._data = b""
        return original(request, response, storage)

    media_upload.allows_empty = True
    objects._media_upload = media_upload


class FakeGcs:
    """The emulator, the proxy, and the environment a TensorFlow process needs to use them."""

    def __init__(self, folder):
        from gcp_storage_emulator.server import create_server

        _allow_empty_media_uploads()
        self.port = _free_port()
        self.server = create_server("127.0.0.1", self.port, in_memory=True, default_bucket=BUCKET)
        self.server.start()
        cert, key = _certificate(folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        handler = type(
            "Forwarder", (_Forwarder,), {"emulator": ("127.0.0.1", self.port), "tls": tls}
        )
        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.proxy.daemon_threads = True
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        proxy = f"http://127.0.0.1:{self.proxy.server_address[1]}"
        self.env = {
            "https_proxy": proxy,
            "http_proxy": proxy,
            "no_proxy": "",
            "CURL_CA_BUNDLE": cert,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
            "NO_GCE_CHECK": "true",
        }

    def _request(self, method, path, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def upload(self, name, data):
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        status, _ = self._request("POST", f"/upload/storage/v1/b/{BUCKET}/o?{query}", data)
        assert status == 200, (name, status)

    def read(self, name):
        status, data = self._request("GET", f"/{BUCKET}/{urllib.parse.quote(name)}")
        return data if status == 200 else None

    def names(self, prefix):
        query = urllib.parse.urlencode({"prefix": prefix})
        _, data = self._request("GET", f"/storage/v1/b/{BUCKET}/o?{query}")
        return sorted(item["name"] for item in json.loads(data).get("items", []))

    def close(self):
        self.proxy.shutdown()
        self.proxy.server_close()
        self.server.stop()


@pytest.fixture
def fake_gcs(tmp_path):
    try:
        import gcp_storage_emulator  # noqa: F401

        available = shutil.which("openssl") is not None
    except ImportError:
        available = False
    require(available, "gcp-storage-emulator (pip) and openssl")
    gcs = FakeGcs(str(tmp_path))
    yield gcs
    gcs.close()


def _csv_epochs(data):
    lines = data.decode().splitlines()[1:] if data else []
    return [int(line.split(",")[0]) for line in lines if line.strip()]


def _epoch_end_backed_up(fake_gcs):
    """Whether a backup manifest of the end of epoch 1 (``"epoch": 1``) is in the run's backup/."""
    for name in fake_gcs.names("runs/a2o/backup/"):
        if name.endswith(".json") and json.loads(fake_gcs.read(name) or b"{}").get("epoch") == 1:
            return True
    return False


def test_train_on_gs_is_killed_and_resumes_from_its_backup_there(fake_gcs, synthetic_dir):
    for split in ("trainA", "trainB", "testA", "testB"):
        for name in sorted(os.listdir(os.path.join(synthetic_dir, split))):
            with open(os.path.join(synthetic_dir, split, name), "rb") as f:
                fake_gcs.upload(f"fruit/{split}/{name}", f.read())
    run, exports = f"gs://{BUCKET}/runs/a2o", f"gs://{BUCKET}/saved_models"
    command = [
        sys.executable,
        os.path.join(ROOT, "scripts", "train.py"),
        "--data-dir",
        f"gs://{BUCKET}/fruit",
        *TINY_TRAIN_ARGS,
        "--epochs",
        "2",
        "--steps-per-epoch",
        "2",
        "--output-dir",
        run,
        "--export-dir",
        exports,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT, **fake_gcs.env}
    csv_name = "runs/a2o/logs/training.csv"

    first = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while first.poll() is None and time.monotonic() < deadline:
        if _csv_epochs(fake_gcs.read(csv_name)) and _epoch_end_backed_up(fake_gcs):
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    _, stderr = first.communicate()
    killed_after = _csv_epochs(fake_gcs.read(csv_name))
    assert killed_after == [0], stderr.decode()[-2000:]
    assert fake_gcs.names("saved_models/") == []

    resumed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {run} at epoch" in resumed.stderr
    assert _csv_epochs(fake_gcs.read(csv_name)) == [0, 1]  # each epoch once
    assert fake_gcs.names("runs/a2o/backup/") == []
    assert fake_gcs.read("runs/a2o/finished.json")
    exported = fake_gcs.names("saved_models/apple2orange/")
    assert "saved_models/apple2orange/1/saved_model.pb" in exported
    assert not any("/." in name for name in exported)  # no staging folder left behind
    for network in ("netG_A2B", "netG_B2A", "netD_A", "netD_B"):
        assert fake_gcs.read(f"runs/a2o/models/{network}.keras")
