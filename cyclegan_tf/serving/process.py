"""Running ``cyclegan-serve`` as a child process on a free loopback port (tests, demos, measurements)."""

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port(host="127.0.0.1"):
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m cyclegan_tf.cli.serve`` in a child process, as a context manager.

    Args:
        model_base_path: str, the folder of models to serve.
        extra_args: list of str, more ``cyclegan-serve`` flags (e.g. ``["--max-pixels", "64x64"]``).
        ready_model: str or None, a model whose status must answer before the server counts as ready;
            None waits for the web page only.
        timeout: float, seconds to wait for the server to come up. Defaults to 120.
        env: dict or None, environment variables to set for the server (on top of this process's).
        address_space_bytes: int or None, the server's address-space limit (``RLIMIT_AS``): an
            allocation beyond it fails, as one beyond the memory a system can commit does.

    Attributes:
        url: str, ``http://127.0.0.1:<port>``.

    Example:
        >>> with ServerProcess("saved_models", ready_model="apple2orange") as server:
        ...     urllib.request.urlopen(server.url + "/v1/models/apple2orange").status
        200
    """

    def __init__(
        self,
        model_base_path,
        extra_args=(),
        ready_model=None,
        timeout=120.0,
        env=None,
        address_space_bytes=None,
    ):
        self.model_base_path = model_base_path
        self.extra_args = list(extra_args)
        self.ready_model = ready_model
        self.timeout = timeout
        self.env = dict(env or {})
        self.address_space_bytes = address_space_bytes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = None
        self._log = None

    def __enter__(self):
        self._log = tempfile.TemporaryFile()
        command = [
            sys.executable,
            "-m",
            "cyclegan_tf.cli.serve",
            "--model-base-path",
            self.model_base_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
        self._process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=self._limit if self.address_space_bytes else None,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _limit(self):
        """Runs in the child before it starts the server."""
        resource.setrlimit(resource.RLIMIT_AS, (self.address_space_bytes,) * 2)

    def _wait_ready(self):
        path = f"/v1/models/{self.ready_model}" if self.ready_model else "/api/models"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self._process.returncode}:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:
                    json.load(response)
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer {path} in {self.timeout:g} s:\n{self.log()}")

    def alive(self):
        """Whether the child process is still running."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self):
        """int, the server's process id."""
        return self._process.pid

    @property
    def returncode(self):
        """The server's exit status once it has exited (negative: the signal), else None."""
        return self._process.poll()

    def log(self):
        """Everything the server wrote to stdout and stderr so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def __exit__(self, *exc_info):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
