"""Peak memory of ``cyclegan-serve`` under concurrent requests: full-resolution images, or a load test.

Serves ``--model-base-path`` under ``/usr/bin/time -v``, sends ``--clients`` concurrent requests of one
image file to ``--model``, prints each request's status and seconds, whether the server is still up,
and the server's peak resident memory. With ``--load-levels 1 4 16 64`` it runs ``cyclegan-loadtest``
(``--size`` px PNGs for ``--duration`` seconds) at each number of clients instead and prints a
Markdown row per level: requests/s, p50, p99, errors and the server's resident memory. Extra
``cyclegan-serve`` flags go after ``--``.

Examples (docs/performance.md, "The server under 4 concurrent 12-MP requests"; docs/serving.md, "Load")::

    python scripts/measure_serving_memory.py --model-base-path /tmp/saved_models \\
        --model apple2orange --image /tmp/photo_12mp.png --clients 4
    python scripts/measure_serving_memory.py --model-base-path /tmp/saved_models \\
        --model apple2orange --load-levels 1 4 16 64 --duration 30
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


def _server_memory_gib(server):
    """``(resident now, peak resident)`` of the server (``/usr/bin/time``'s child) in GiB."""
    children = open(f"/proc/{server.pid}/task/{server.pid}/children").read().split()
    fields = {}
    for line in open(f"/proc/{children[0]}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 2**20
    return fields["VmRSS"], fields["VmHWM"]


def _load_table(args, url, server):
    from cyclegan_tf.serving.loadtest import run

    print("| clients | req/s | p50 | p99 | errors (by status) | RSS after / peak |")
    print("|---|---|---|---|---|---|")
    base = url.rsplit("/v1/", 1)[0]
    for clients in args.load_levels:
        result = run(base, args.model, args.size, clients, duration=args.duration, timeout=300)
        resident, peak = _server_memory_gib(server)
        errors = {k: v for k, v in result["counts"].items() if k != "200"}

        def ms(value):
            return "-" if value is None else f"{1000 * value:.0f} ms"

        print(
            f"| {clients} | {result['requests_per_s']:.2f} | {ms(result['p50_s'])} | "
            f"{ms(result['p99_s'])} | {result['errors']} {errors or ''} | "
            f"{resident:.2f} / {peak:.2f} GiB |",
            flush=True,
        )


def _full_resolution(args, url):
    with open(args.image, "rb") as file:
        data = base64.b64encode(file.read()).decode("ascii")
    body = json.dumps({"signature_name": "translate_bytes", "instances": [{"b64": data}]}).encode()
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--load-levels", type=int, nargs="+")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("serve_args", nargs="*", help="more cyclegan-serve flags, after --")
    args = parser.parse_args(argv)
    if not args.image and not args.load_levels:
        parser.error("give --image or --load-levels")
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
        if args.load_levels:
            _load_table(args, url, server)
        else:
            _full_resolution(args, url)
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
