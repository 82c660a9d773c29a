"""Measuring the translation latency of exported generators side by side, in one process.

``measure_runtimes`` times runtimes that share one generator's weights on the same images in interleaved
rounds (every runtime once per round), so that a busier moment of a shared machine slows them alike,
and reports each one's pixel error against a reference runtime. ``prepare_runtimes`` exports and loads
the named variants; ``scripts/benchmark.py --parts inference --runtimes ...`` runs both and prints a
table.
"""

import logging
import os
import statistics
import tempfile
import time

import numpy as np

from cyclegan_tf.data.synthetic import write_synthetic_dataset
from cyclegan_tf.export import litert, onnx, openvino
from cyclegan_tf.inference import loading, runtimes

logger = logging.getLogger(__name__)

# Variant name → (exporter, file suffix, quantize, runtime class, runtime options).
VARIANTS = {
    "onnxruntime-fp32": (onnx.write, ".onnx", "none", runtimes.OnnxRuntime, {}),
    "onnxruntime-fp16": (onnx.write, ".onnx", "fp16", runtimes.OnnxRuntime, {}),
    "onnxruntime-int8": (onnx.write, ".onnx", "int8", runtimes.OnnxRuntime, {}),
    "openvino-fp32": (
        openvino.write,
        ".xml",
        "none",
        runtimes.OpenVinoRuntime,
        {"precision": "f32"},
    ),
    "openvino-bf16": (
        openvino.write,
        ".xml",
        "none",
        runtimes.OpenVinoRuntime,
        {"precision": "bf16"},
    ),
    "openvino-fp16": (
        openvino.write,
        ".xml",
        "fp16",
        runtimes.OpenVinoRuntime,
        {"precision": "f16"},
    ),
    "openvino-int8": (
        openvino.write,
        ".xml",
        "int8",
        runtimes.OpenVinoRuntime,
        {"precision": "f32"},
    ),
    "openvino-int8-bf16": (
        openvino.write,
        ".xml",
        "int8",
        runtimes.OpenVinoRuntime,
        {"precision": "bf16"},
    ),
    "litert-fp32": (litert.write, ".tflite", "none", runtimes.LiteRtRuntime, {}),
    "litert-fp16": (litert.write, ".tflite", "fp16", runtimes.LiteRtRuntime, {}),
    "litert-int8": (litert.write, ".tflite", "int8", runtimes.LiteRtRuntime, {}),
}
FAMILIES = {
    "tensorflow": ("tensorflow",),
    **{
        family: tuple(name for name in VARIANTS if name.startswith(family + "-"))
        for family in ("onnxruntime", "openvino", "litert")
    },
}


def expand_runtimes(names):
    """Variant names from families (``openvino``) and variants (``openvino-bf16``), in order, once each."""
    expanded = []
    for name in names:
        if name in FAMILIES:
            expanded.extend(FAMILIES[name])
        elif name in VARIANTS:
            expanded.append(name)
        else:
            raise ValueError(
                f"Unknown runtime {name!r}; expected one of {sorted(FAMILIES)} or {sorted(VARIANTS)}"
            )
    return list(dict.fromkeys(expanded))


def prepare_runtimes(generator, names, workdir, calibration_images=None, threads=None):
    """Exports ``generator`` as each variant into ``workdir`` and loads it.

    Args:
        generator: a ``keras.Model`` generator (images in [-1, 1]).
        names: variant or family names (see ``expand_runtimes``); ``"tensorflow"`` is the Keras
            generator in a ``tf.function`` (the baseline).
        workdir: str, a folder for the exported files.
        calibration_images: images for the int8 variants (see ``calibration.calibration_batches``).
        threads: int or None, threads of every runtime (default: all CPUs).

    Returns:
        A dict ``{variant: runtime}`` in the order of ``names``.
    """
    loaded = {}
    exported = {}
    for name in expand_runtimes(names):
        if name == "tensorflow":
            loaded[name] = loading.TensorFlowRuntime(generator, threads=threads)
            continue
        exporter, suffix, quantize, runtime_class, options = VARIANTS[name]
        key = (exporter, quantize)
        if key not in exported:
            path = os.path.join(workdir, f"{name.split('-')[0]}-{quantize}{suffix}")
            started = time.perf_counter()
            exporter(generator, path, quantize=quantize, calibration_images=calibration_images)
            logger.info("Exported %s in %.1f s", path, time.perf_counter() - started)
            exported[key] = path
        loaded[name] = runtime_class(exported[key], threads=threads, **options)
    return loaded


def test_image(size, seed=0):
    """A deterministic smooth RGB image ``[1, size, size, 3]`` in [0, 255] with some texture."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    noise = np.random.default_rng(seed).normal(0.0, 6.0, (size, size, 3)).astype(np.float32)
    image = np.stack(
        [
            128 + 100 * np.sin(6.0 * x + 2.0 * y),
            128 + 90 * np.cos(5.0 * y - 3.0 * x),
            128 + 80 * np.sin(9.0 * x * y + 1.0),
        ],
        axis=-1,
    )
    return np.clip(image + noise, 0.0, 255.0)[None]


def measure_runtimes(runtimes_by_name, sizes=(256, 1024), repeats=7, reference="tensorflow"):
    """Median latency of one image per runtime and size, measured in interleaved rounds.

    Args:
        runtimes_by_name: dict ``{name: runtime}``; each has ``translate_pixels``.
        sizes: ints, square image sides to measure.
        repeats: int, timed rounds (>= 1); every runtime runs once per round, after one untimed run.
        reference: str or None, the name whose output the others' pixel errors are measured against.

    Returns:
        A list of dicts, one per runtime and size: ``runtime, size, median_s, min_s, max_error,
        mean_error`` (pixels in [0, 255] against ``reference``; None without one), ``load_before``,
        ``load_after`` (the 1-minute load average around the size's measurement).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1. Received: repeats={repeats}")
    if reference is not None and reference not in runtimes_by_name:
        raise ValueError(
            f"reference {reference!r} is not among the runtimes {sorted(runtimes_by_name)}"
        )
    rows = []
    for size in sizes:
        image = test_image(size)
        load_before = os.getloadavg()[0]
        outputs = {
            name: runtime.translate_pixels(image) for name, runtime in runtimes_by_name.items()
        }
        times = {name: [] for name in runtimes_by_name}
        for _ in range(repeats):
            for name, runtime in runtimes_by_name.items():
                started = time.perf_counter()
                runtime.translate_pixels(image)
                times[name].append(time.perf_counter() - started)
        load_after = os.getloadavg()[0]
        for name in runtimes_by_name:
            error = None if reference is None else np.abs(outputs[name] - outputs[reference])
            rows.append(
                {
                    "runtime": name,
                    "size": size,
                    "median_s": statistics.median(times[name]),
                    "min_s": min(times[name]),
                    "max_error": None if error is None else float(error.max()),
                    "mean_error": None if error is None else float(error.mean()),
                    "load_before": load_before,
                    "load_after": load_after,
                }
            )
    return rows


def format_rows(rows):
    """A plain-text table of ``measure_runtimes`` rows, with the load average of each size."""
    lines = [
        f"{'runtime':20s} {'size':>5s} {'median s':>9s} {'min s':>7s} {'max err':>8s} {'mean err':>8s}"
    ]
    for index, row in enumerate(rows):
        error = (
            f"{row['max_error']:8.2f} {row['mean_error']:8.3f}"
            if row["max_error"] is not None
            else f"{'-':>8s} {'-':>8s}"
        )
        lines.append(
            f"{row['runtime']:20s} {row['size']:5d} {row['median_s']:9.3f} {row['min_s']:7.3f} {error}"
        )
        if index + 1 == len(rows) or rows[index + 1]["size"] != row["size"]:
            lines.append(
                f"  load average (1 min) before/after {row['size']}px: "
                f"{row['load_before']:.2f} / {row['load_after']:.2f}"
            )
    return "\n".join(lines)


def compare_runtimes(generator, names, sizes=(256, 1024), repeats=7, threads=None, workdir=None):
    """Exports ``generator`` as each named variant and measures them side by side.

    The int8 variants are calibrated on eight synthetic fruit images of 256x256 (the apple domain),
    written into the working folder.

    Args:
        generator: a ``keras.Model`` generator (images in [-1, 1]).
        names: variant or family names (see ``expand_runtimes``); the first is the error reference.
        sizes: ints, square image sides.
        repeats: int, timed rounds per size.
        threads: int or None, threads of every runtime (default: all CPUs).
        workdir: str or None, where the exports go (default: a temporary folder, deleted afterwards).

    Returns:
        The rows of ``measure_runtimes`` for every size, in order.
    """
    with tempfile.TemporaryDirectory(prefix="cyclegan-runtimes-") as temporary:
        workdir = workdir or temporary
        os.makedirs(workdir, exist_ok=True)
        fruit = write_synthetic_dataset(
            os.path.join(workdir, "fruit"), size=256, n_train=8, n_test=1, seed=0
        )
        loaded = prepare_runtimes(
            generator, names, workdir, os.path.join(fruit, "trainA"), threads=threads
        )
        rows = []
        for size in sizes:
            size_rows = measure_runtimes(loaded, [size], repeats, reference=next(iter(loaded)))
            logger.info("Measured %d px:\n%s", size, format_rows(size_rows))
            rows.extend(size_rows)
    return rows
