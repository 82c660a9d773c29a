"""Measuring whole-image and tiled translation of large photos: seconds and peak resident memory.

Each configuration runs in its own process under ``/usr/bin/time -v`` (peak RSS) and, where the
machine allows it, in a cgroup with a memory limit, so that a whole-image run that does not fit dies
alone. A whole-image run whose resident peak ``estimate_whole_image_resident_bytes`` puts above that
limit is not started and is reported as out of memory (a cgroup counts resident pages only).
"""

import dataclasses
import json
import os
import re
import resource
import subprocess
import sys
import time

import numpy as np

from cyclegan_tf import inference
from cyclegan_tf.inference.tiled import estimate_whole_image_resident_bytes
from cyclegan_tf.models import ResnetGenerator

_CGROUP_ROOT = "/sys/fs/cgroup/memory"
MODES = ("whole", "tiled")
PRECISIONS = inference.PRECISIONS
_RUN_MAIN = "from cyclegan_tf.cli.measure_tiled import main; raise SystemExit(main())"


def photo_like(megapixels, seed=0, aspect=4 / 3, band_rows=256):
    """A ``uint8`` photo-like image: smooth colour gradients and waves plus sensor-like noise.

    Args:
        megapixels: float, the size (``width / height = aspect``).
        seed: int, the noise seed.
        aspect: float, width over height. Defaults to 4:3.
        band_rows: int, rows generated at a time (bounds the float temporaries).

    Returns:
        ``uint8`` array ``[height, width, 3]``.
    """
    height = max(1, round((megapixels * 1e6 / aspect) ** 0.5))
    width = max(1, round(height * aspect))
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    u = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    phases = np.array([0.0, 2.1, 4.2], np.float32)
    for start in range(0, height, band_rows):
        v = np.linspace(0, 1, height, dtype=np.float32)[start : start + band_rows, None, None]
        smooth = (
            90
            + 80 * u * (1 - v)
            + 50 * v
            + 30 * np.sin(6.0 * u + 4.0 * v + phases)
            + 15 * np.cos(23.0 * u * v + phases)
        )
        noise = rng.normal(0.0, 6.0, (len(v), width, 3)).astype(np.float32)
        image[start : start + len(v)] = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    return image


def measure_one(
    mode,
    precision,
    megapixels,
    ngf=64,
    n_res_blocks=9,
    max_memory_bytes=None,
    seed=0,
    antialias=False,
):
    """Translates a ``photo_like`` image once (after a small warm-up image) in this process.

    Args:
        mode: str, ``"whole"`` or ``"tiled"``.
        precision: str, ``"float32"`` or ``"bf16"`` (whole: a ``mixed_bfloat16`` copy of the model).
        megapixels: float.
        ngf: int, the generator's first-layer filters (random initial weights from ``seed``).
        n_res_blocks: int, the generator's residual blocks.
        max_memory_bytes: int or None, the tiled budget (None: the default).
        seed: int.
        antialias: bool, CUT's generator (blurred sampling) instead of CycleGAN's.

    Returns:
        A dict: ``seconds`` (the translation, warm-up excluded), ``seconds_per_megapixel``, sizes,
        ``rss_before_mb`` (resident memory before the translation) and, for tiled runs, the plan.
    """
    import keras

    if mode not in MODES or precision not in PRECISIONS:
        raise ValueError(
            f"mode must be in {MODES} and precision in {PRECISIONS}. "
            f"Received: mode={mode!r}, precision={precision!r}"
        )
    keras.utils.set_random_seed(seed)
    if mode == "whole" and precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    generator = ResnetGenerator(ngf, n_res_blocks, antialias=antialias)
    if mode == "whole":
        translator = _WholeImage(generator)
    else:
        options = {} if max_memory_bytes is None else {"max_memory_bytes": max_memory_bytes}
        translator = inference.TiledGenerator(generator, precision=precision, **options)
    image = photo_like(megapixels, seed)
    translator.translate_pixels(image[:64, :64])
    rss_before = _current_rss_mb()
    start = time.perf_counter()
    translator.translate_pixels(image)
    seconds = time.perf_counter() - start
    result = {
        "mode": mode,
        "precision": precision,
        "antialias": antialias,
        "megapixels": image.shape[0] * image.shape[1] / 1e6,
        "height": image.shape[0],
        "width": image.shape[1],
        "seconds": seconds,
        "seconds_per_megapixel": seconds / (image.shape[0] * image.shape[1] / 1e6),
        "rss_before_mb": rss_before,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if mode == "tiled":
        result["max_memory_bytes"] = translator.max_memory_bytes
        result.update(dataclasses.asdict(translator.last_run))
    return result


def compare_in_process(
    megapixels, precision, repeats=3, ngf=64, n_res_blocks=9, seed=0, antialias=False
):
    """Times whole-image and tiled translation alternately in one process.

    On a busy machine this gives a fair ratio: a slow moment slows both alike.

    Args:
        megapixels: float, the photo size (it must fit the whole-image path's memory).
        precision: str, ``"float32"`` or ``"bf16"``.
        repeats: int, rounds of (whole, tiled).
        ngf: int, the generator's first-layer filters.
        n_res_blocks: int, its residual blocks.
        seed: int.
        antialias: bool, CUT's generator (blurred sampling) instead of CycleGAN's.

    Returns:
        A dict with the per-round ``whole_s`` and ``tiled_s`` lists and ``median_ratio`` (tiled / whole).
    """
    import keras

    keras.utils.set_random_seed(seed)
    generator = ResnetGenerator(ngf, n_res_blocks, antialias=antialias)
    whole_model = generator
    if precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            whole_model = ResnetGenerator(ngf, n_res_blocks, antialias=antialias)
        finally:
            keras.config.set_dtype_policy("float32")
        whole_model.set_weights(generator.get_weights())
    whole = _WholeImage(whole_model)
    tiled = inference.TiledGenerator(generator, precision=precision)
    image = photo_like(megapixels, seed)
    for translator in (whole, tiled):
        translator.translate_pixels(image[:64, :64])
    times = {"whole_s": [], "tiled_s": []}
    for _ in range(repeats):
        for key, translator in (("whole_s", whole), ("tiled_s", tiled)):
            start = time.perf_counter()
            translator.translate_pixels(image)
            times[key].append(time.perf_counter() - start)
    ratios = sorted(t / w for t, w in zip(times["tiled_s"], times["whole_s"]))
    return {
        "megapixels": image.shape[0] * image.shape[1] / 1e6,
        "precision": precision,
        **times,
        "median_ratio": ratios[len(ratios) // 2],
        "load": _loadavg(),
    }


class _WholeImage:
    """``inference.CompiledGenerator`` on one ``[H, W, 3]`` image, as ``TiledGenerator`` is called."""

    def __init__(self, generator):

        self._compiled = inference.CompiledGenerator(generator)

    def translate_pixels(self, image):
        return self._compiled.translate_pixels(image[None])[0].numpy()


def _current_rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclasses.dataclass
class Measurement:
    """One configuration run in its own process.

    Attributes:
        command: str, what ran.
        result: dict from ``measure_one`` or None when the run failed or was skipped.
        peak_rss_mb: float or None, ``/usr/bin/time -v``'s maximum resident set size.
        wall_s: float or None, the process's wall time (start-up and warm-up included).
        load_before, load_after: str, ``/proc/loadavg``'s 1, 5 and 15 minute averages.
        outcome: str, ``"ok"``, ``"out of memory"`` (killed at the limit, or estimated above it) or
            the error.
    """

    command: str
    result: dict | None = None
    peak_rss_mb: float | None = None
    wall_s: float | None = None
    load_before: str = ""
    load_after: str = ""
    outcome: str = "ok"


def measure_in_subprocess(
    mode,
    precision,
    megapixels,
    memory_limit_bytes,
    ngf=64,
    n_res_blocks=9,
    max_memory_bytes=None,
    antialias=False,
):
    """Runs ``measure_one`` in a new process under ``/usr/bin/time -v`` and a cgroup memory limit.

    Whole-image runs whose estimated peak exceeds ``memory_limit_bytes`` are not started.

    Returns:
        A ``Measurement``.
    """
    args = [
        sys.executable, "-c", _RUN_MAIN, "run",
        "--mode", mode, "--precision", precision, "--megapixels", str(megapixels),
        "--ngf", str(ngf), "--n-res-blocks", str(n_res_blocks),
    ]  # fmt: skip
    if max_memory_bytes is not None:
        args += ["--max-memory-bytes", str(max_memory_bytes)]
    if antialias:
        args.append("--antialias")
    command = " ".join(["/usr/bin/time", "-v", "scripts/measure_tiled.py"] + args[3:])
    measurement = Measurement(command=command, load_before=_loadavg())
    if mode == "whole":
        side = (megapixels * 1e6) ** 0.5
        estimate = estimate_whole_image_resident_bytes(
            ngf, n_res_blocks, side, side, precision, antialias=antialias
        )
        if estimate > memory_limit_bytes:
            measurement.outcome = (
                f"out of memory (estimated {estimate / 2**30:.1f} GiB > limit "
                f"{memory_limit_bytes / 2**30:.1f} GiB; not run)"
            )
            return measurement
    cgroup = make_memory_cgroup(memory_limit_bytes)
    prefix = f"echo $$ > {cgroup}/cgroup.procs && exec " if cgroup else "exec "
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.getcwd())
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            ["sh", "-c", prefix + '/usr/bin/time -v "$0" "$@"', *args],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    finally:
        if cgroup:
            os.rmdir(cgroup)
    measurement.wall_s = time.perf_counter() - start
    measurement.load_after = _loadavg()
    measurement.peak_rss_mb = _time_field(completed.stderr, r"Maximum resident set size \(kbytes\)")
    if measurement.peak_rss_mb is not None:
        measurement.peak_rss_mb /= 1024
    killed = "terminated by signal 9" in completed.stderr
    json_lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if json_lines and not killed:
        measurement.result = json.loads(json_lines[-1])
    elif killed:
        measurement.outcome = "out of memory (killed at the cgroup limit)"
    else:
        measurement.outcome = "failed: " + completed.stderr.strip().splitlines()[-1][:200]
    return measurement


def make_memory_cgroup(limit_bytes):
    """A new cgroup-v1 memory group with ``limit_bytes``, or None where that is not possible."""
    path = os.path.join(_CGROUP_ROOT, f"cyclegan_measure_{os.getpid()}_{time.monotonic_ns()}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as limit:
            limit.write(str(int(limit_bytes)))
    except OSError:
        return None
    return path


def _loadavg():
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _time_field(stderr, label):
    match = re.search(label + r":\s*([0-9.]+)", stderr)
    return float(match.group(1)) if match else None


def format_table(measurements):
    """A Markdown table of ``Measurement``s."""
    lines = [
        "| mode | precision | MP | size | seconds | s/MP | peak RSS | spilled | load before → after "
        "| outcome |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in measurements:
        r = m.result or {}
        mode, precision, mp = _describe(m.command)
        lines.append(
            "| "
            + " | ".join(
                [
                    mode,
                    precision,
                    mp,
                    f"{r['width']}x{r['height']}" if r else "",
                    f"{r['seconds']:.1f}" if r else "",
                    f"{r['seconds_per_megapixel']:.2f}" if r else "",
                    f"{m.peak_rss_mb / 1024:.2f} GiB" if m.peak_rss_mb else "",
                    f"{r['spilled_bytes'] / 2**30:.2f} GiB" if "spilled_bytes" in r else "",
                    f"{m.load_before} → {m.load_after}" if m.load_after else m.load_before,
                    m.outcome,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _describe(command):
    def flag(name):
        match = re.search(rf"--{name} (\S+)", command)
        return match.group(1) if match else ""

    return flag("mode"), flag("precision"), flag("megapixels")
