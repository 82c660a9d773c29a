r"""``cyclegan-benchmark`` / ``scripts/benchmark.py``: train-step, inference and pipeline speed.

Example::

    cyclegan-benchmark --image-size 256 --steps 10 --json float32.json
    cyclegan-benchmark --objective cyclegan,cut,fastcut --parts train --json objectives.json
    cyclegan-benchmark --image-size 256 --mixed-precision bf16 --compare-float32 --json bf16.json
    cyclegan-benchmark --parts inference --runtimes tensorflow,onnxruntime,openvino,litert \\
        --runtime-sizes 256,1024 --inference-runs 7 --json runtimes.json
"""

import argparse
import json

from cyclegan_tf import options
from cyclegan_tf.cli.common import (
    add_verbose_argument,
    quiet_tensorflow,
    tensorflow_log_lines_dropped,
    user_errors,
)

PROG = "cyclegan-benchmark"

# (key, label, format) of the printed table, in order.
_ROWS = (
    ("train_step_s", "train step (fit)", "{:.4f} s"),
    ("images_per_s", "training images/s", "{:.2f}"),
    ("handwritten_step_s", "hand-written tf.function step", "{:.4f} s"),
    ("fit_overhead", "fit vs hand-written", "{:+.1%}"),
    ("float32_train_step_s", "float32 train step (fit)", "{:.4f} s"),
    ("speedup_vs_float32", "speed-up vs float32", "{:.2f}x"),
    ("inference_s", "exported generator, 1 image", "{:.4f} s"),
    ("pipeline_images_per_s", "tf.data pipeline images/s", "{:.1f}"),
    ("pipeline_first_pass_images_per_s", "  first pass (decoding)", "{:.1f}"),
    ("peak_rss_mb", "peak RSS", "{:.0f} MiB"),
    ("device", "device", "{}"),
)


# Flags not spelled as their option's name.
FLAGS = {"compare_handwritten": "--no-handwritten"}


def build_parser():
    """The argument parser: one flag per ``BenchmarkOptions`` field, and ``--json``."""
    with tensorflow_log_lines_dropped():
        # Imported on use, and its start-up lines dropped (before --verbose is parsed): the
        # benchmark's options live with the benchmark, which loads TensorFlow.
        from cyclegan_tf.tools.benchmark_options import BenchmarkOptions

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure train-step (of each objective), inference and input-pipeline speed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    options.add_arguments(parser, BenchmarkOptions, FLAGS)
    parser.add_argument("--json", metavar="FILE", default=None, help="Also write the report here.")
    add_verbose_argument(parser)
    return parser


def _training_memory(row):
    """`` (T MiB, Rx)``: what training added to the runtime, and its ratio; empty where unknown."""
    if row["training_mb"] is None:
        return ""
    return f" ({row['training_mb']:.0f} MiB, {row['relative_training_mb']:.2f}x)"


def format_table(report):
    """The report as an aligned two-column table (unmeasured rows are left out)."""
    rows = [
        (label, fmt.format(report[key])) for key, label, fmt in _ROWS if report.get(key) is not None
    ]
    settings = (
        f"{report['objective']}, {report['image_size']} px, batch {report['batch_size']}, "
        f"{report['mixed_precision']}"
        f"{', XLA' if report['jit_compile'] else ''}, {report['replicas']} replica(s)"
    )
    for objective, row in (report.get("objectives") or {}).items():
        rows.append(
            (
                f"{objective} step, peak RSS (training)",
                f"{row['train_step_s']:.4f} s ({row['relative_step']:.2f}x), "
                f"{row['peak_rss_mb']:.0f} MiB{_training_memory(row)}",
            )
        )
    width = max(len(label) for label, _ in rows)
    # The runtime comparison has its own sizes and precisions (its table follows).
    measured = ("train_step_s", "inference_s", "pipeline_images_per_s")
    lines = [f"{'setting'.ljust(width)}  {settings}"]
    lines = lines if any(report.get(key) is not None for key in measured) else []
    lines += [f"{label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines)


def main(argv=None):
    """Parses ``argv``, measures, prints the table and writes ``--json``."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG, FLAGS):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import io
        from cyclegan_tf.tools import benchmark, runtime_benchmark
        from cyclegan_tf.tools.benchmark_options import BenchmarkOptions

        report = benchmark.run_benchmark(options.from_args(BenchmarkOptions, args))
        if args.json:
            io.write_text(args.json, json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(format_table(report))
    if report.get("runtimes"):
        print(runtime_benchmark.format_rows(report["runtimes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
