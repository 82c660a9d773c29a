"""Peak memory of ``cyclegan-translate`` and ``cyclegan-serve`` on the largest images, under a cgroup.

For each generator (``--generators``, ``NGF:BLOCKS``, random weights, exported as a SavedModel and a
``.keras`` file) and each image (an all-black 4096x4096 PNG of 49 KB and a 12-MP photo-like JPEG), runs
the CLI and the server with their default flags in a cgroup-v1 memory group of ``--memory-limit-gb``
(needs root; without it, no limit) under ``/usr/bin/time -v``, and prints one line per run: the
outcome (exit status, or HTTP status and whether the server stayed up), seconds and peak RSS.
``--eigen`` runs TensorFlow's own convolutions on 16 threads (``TF_ENABLE_ONEDNN_OPTS=0``), as a CPU
without AVX-512 VNNI/BF16 or AMX runs them.

Example (docs/performance.md, "Memory that holds for every model and size")::

    python scripts/measure_bounds.py --workdir /tmp/bounds --generators 8:2 64:9
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
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cyclegan_tf.serving.process import free_port  # noqa: E402
from cyclegan_tf.tools.tiled_benchmark import make_memory_cgroup  # noqa: E402

EIGEN = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "16", "MALLOC_ARENA_MAX": "2"}


def _limited(command, cgroup):
    """``command`` under ``/usr/bin/time -v``, moved into ``cgroup`` first (when there is one)."""
    prefix = f"echo $$ > {cgroup}/cgroup.procs && exec " if cgroup else "exec "
    return ["sh", "-c", prefix + '/usr/bin/time -v "$0" "$@"', *command]


def _peak_gib(text):
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return None if match is None else int(match.group(1)) / 2**20


def _environment(eigen):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return {**env, **EIGEN} if eigen else env


def prepare(workdir, generators):
    """Writes the models and the two images; returns ``({name: (keras, base path)}, images)``."""
    import keras
    import numpy as np
    from PIL import Image

    from cyclegan_tf import export
    from cyclegan_tf.models import resnet_generator
    from cyclegan_tf.tools.tiled_benchmark import photo_like

    models = {}
    for spec in generators:
        ngf, blocks = (int(part) for part in spec.split(":"))
        name = f"ngf{ngf}_{blocks}"
        base = os.path.join(workdir, "saved_models")
        keras_file = os.path.join(workdir, f"{name}.keras")
        if not os.path.exists(keras_file):
            keras.utils.set_random_seed(0)
            generator = resnet_generator(ngf=ngf, n_res_blocks=blocks)
            export.export_generator(generator, base, name)
            generator.save(keras_file)
        models[name] = (keras_file, base)
    images = {
        "black_4096.png": lambda: np.zeros((4096, 4096, 3), np.uint8),
        "photo_12mp.jpg": lambda: photo_like(12),
    }
    paths = {}
    for file_name, make in images.items():
        path = os.path.join(workdir, file_name)
        if not os.path.exists(path):
            Image.fromarray(make()).save(path, optimize=True, quality=92)
        paths[file_name] = path
    return models, paths


def measure_cli(model, image, workdir, limit_bytes, eigen):
    cgroup = make_memory_cgroup(limit_bytes)
    output = tempfile.mkdtemp(dir=workdir)
    command = [sys.executable, "-m", "cyclegan_tf.cli.translate", "--model", model]
    command += ["--input", image, "--output", output]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            _limited(command, cgroup), capture_output=True, text=True, env=_environment(eigen)
        )
    finally:
        if cgroup:
            os.rmdir(cgroup)
    outcome = f"exit {done.returncode}"
    if "bad_alloc" in done.stderr:
        outcome += " (std::bad_alloc)"
    if "terminated by signal" in done.stderr:
        outcome += " (" + re.search(r"terminated by signal \d+", done.stderr).group(0) + ")"
    return outcome, time.perf_counter() - start, _peak_gib(done.stderr)


def measure_server(model_name, base, image, limit_bytes, eigen):
    cgroup = make_memory_cgroup(limit_bytes)
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    command = [sys.executable, "-m", "cyclegan_tf.cli.serve", "--model-base-path", base]
    command += ["--port", str(port), "--file-system-poll-wait-seconds", "0"]
    server = subprocess.Popen(
        _limited(command, cgroup),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_environment(eigen),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1/models/{model_name}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and server.poll() is None:
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(1)
        with open(image, "rb") as file:
            data = base64.b64encode(file.read()).decode("ascii")
        body = json.dumps({"signature_name": "translate_bytes", "instances": [{"b64": data}]})
        request = urllib.request.Request(url + ":predict", data=body.encode())
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=3600) as response:
                outcome = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            outcome = f"HTTP {error.code}: {error.read()[:120].decode(errors='replace')}"
        except OSError as error:
            outcome = f"no answer ({type(error).__name__})"
        seconds = time.perf_counter() - start
        try:
            alive = urllib.request.urlopen(url, timeout=10).status == 200
        except OSError:
            alive = False
        outcome += ", server up" if alive else ", server down"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
        server.wait(120)
        if cgroup:
            os.rmdir(cgroup)
    log.seek(0)
    text = log.read()
    os.unlink(log.name)
    if "bad_alloc" in text:
        outcome += " (std::bad_alloc)"
    return outcome, seconds, _peak_gib(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--generators", nargs="+", default=["8:2", "64:9"])
    parser.add_argument("--memory-limit-gb", type=float, default=12.0)
    parser.add_argument("--paths", nargs="+", default=["cli", "server"])
    parser.add_argument("--images", nargs="+", default=["black_4096.png", "photo_12mp.jpg"])
    parser.add_argument("--eigen", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    models, images = prepare(args.workdir, args.generators)
    limit = int(args.memory_limit_gb * 2**30)
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        "unknown CPU",
    )
    kernels = "TensorFlow's own (Eigen), 16 threads" if args.eigen else "default (oneDNN here)"
    print(f"CPU: {cpu}; {os.cpu_count()} cores; limit {args.memory_limit_gb:g} GiB; {kernels}")
    for name, (keras_file, base) in models.items():
        for image_name in args.images:
            for path in args.paths:
                if path == "cli":
                    result = measure_cli(
                        keras_file, images[image_name], args.workdir, limit, args.eigen
                    )
                else:
                    result = measure_server(name, base, images[image_name], limit, args.eigen)
                outcome, seconds, peak = result
                peak_text = "?" if peak is None else f"{peak:.2f} GiB"
                print(
                    f"{name} {image_name} {path}: {outcome}; {seconds:.0f} s; peak RSS {peak_text}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
