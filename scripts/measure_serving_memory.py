"""Peak memory of ``cyclegan-serve`` under concurrent full-resolution ``translate_bytes`` requests.

Serves ``--model-base-path`` under ``/usr/bin/time -v``, sends ``--clients`` concurrent requests of one
image file to ``--model``, prints each request's status and seconds, whether the server is still up,
and the server's peak resident memory. Extra ``cyclegan-serve`` flags go after ``--``.

Example (docs/performance.md, "The server under 4 concurrent 12-MP requests")::

    python scripts/measure_serving_memory.py --model-base-path /tmp/saved_models \\
        --model apple2orange --image /tmp/photo_12mp.png --clients 4
"""

import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cyclegan_tf.serving.process import free_port  # noqa: E402


def _post(url, body, results, index):
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:
            answer = json.loads(response.read())
            png = base64.b64decode(answer["predictions"][0]["b64"])
            results[index] = (response.status, f"{len(png)} PNG bytes")
    except urllib.error.HTTPError as error:
        results[index] = (error.code, error.read()[:200].decode(errors="replace"))
    except OSError as error:
        results[index] = (None, repr(error)[:200])
    results[index] += (round(time.perf_counter() - start, 1),)


def _wait_until_up(url, server, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the server did not come up at {url}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("serve_args", nargs="*", help="more cyclegan-serve flags, after --")
    args = parser.parse_args(argv)
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    command = [sys.executable, os.path.join(ROOT, "scripts", "serve.py")]
    command += ["--model-base-path", args.model_base_path, "--port", str(port)]
    command += ["--file-system-poll-wait-seconds", "0", "--log-level", "warning", *args.serve_args]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    server = subprocess.Popen(
        ["/usr/bin/time", "-v", *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # the interrupt below reaches the server, not only `time`
    )
    url = f"http://127.0.0.1:{port}/v1/models/{args.model}"
    try:
        _wait_until_up(url, server)
        with open(args.image, "rb") as file:
            data = base64.b64encode(file.read()).decode("ascii")
        body = json.dumps(
            {"signature_name": "translate_bytes", "instances": [{"b64": data}]}
        ).encode()
        print("load before:", open("/proc/loadavg").read().split()[:3], flush=True)
        results = {}
        threads = [
            threading.Thread(target=_post, args=(url + ":predict", body, results, i))
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        for index in range(args.clients):
            print(f"request {index + 1}: status, answer, seconds = {results[index]}")
        print("load after:", open("/proc/loadavg").read().split()[:3])
        print("server up afterwards:", urllib.request.urlopen(url, timeout=30).status == 200)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(120)
    log.seek(0)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log.read())
    if match:
        print(f"server peak RSS: {int(match.group(1)) / 2**20:.2f} GiB")
    os.unlink(log.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
