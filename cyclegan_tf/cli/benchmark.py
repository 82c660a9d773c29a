r"""``cyclegan-benchmark`` / ``scripts/benchmark.py``: train-step, inference and pipeline speed.

Example::

    cyclegan-benchmark --image-size 256 --steps 10 --json float32.json
    cyclegan-benchmark --image-size 256 --mixed-precision bf16 --compare-float32 --json bf16.json
    cyclegan-benchmark --parts inference --runtimes tensorflow,onnxruntime,openvino,litert \\
        --runtime-sizes 256,1024 --inference-runs 7 --json runtimes.json
"""

import argparse
import json

from cyclegan_tf.cli.common import quiet_tensorflow, user_errors

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


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure CycleGAN train-step, inference and input-pipeline speed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--image-size", type=int, default=256, help="Image side in pixels.")
    parser.add_argument("--batch-size", type=int, default=1, help="Global batch size.")
    parser.add_argument("--steps", type=int, default=10, help="Timed train steps per variant.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed steps before timing.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Interleaved rounds the timed steps are split into."
    )
    parser.add_argument("--mixed-precision", choices=("bf16", "fp16"), default=None)
    parser.add_argument("--jit-compile", action="store_true", help="Compile the step with XLA.")
    parser.add_argument(
        "--mirrored-strategy", action="store_true", help="MirroredStrategy over local GPUs."
    )
    parser.add_argument(
        "--cpu-replicas", type=int, default=None, help="Logical CPU devices (no-GPU machines)."
    )
    parser.add_argument(
        "--compare-float32",
        action="store_true",
        help="With --mixed-precision, also time the float32 fit step side by side.",
    )
    parser.add_argument(
        "--no-handwritten",
        dest="compare_handwritten",
        action="store_false",
        help="Skip the hand-written tf.function step.",
    )
    parser.add_argument("--ngf", type=int, default=64, help="Generator filters.")
    parser.add_argument("--ndf", type=int, default=64, help="Discriminator filters.")
    parser.add_argument("--n-res-blocks", type=int, default=9, help="Residual blocks.")
    parser.add_argument("--inference-runs", type=int, default=20, help="Timed inference runs.")
    parser.add_argument(
        "--runtimes",
        default="",
        help="With --parts inference: compare these runtimes side by side (families tensorflow, "
        "onnxruntime, openvino, litert, or variants such as openvino-bf16); the first is the "
        "pixel-error reference.",
    )
    parser.add_argument(
        "--runtime-sizes", default="256,1024", help="With --runtimes: square image sides."
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="With --runtimes: threads (default: all CPUs)."
    )
    parser.add_argument(
        "--pipeline-images", type=int, default=64, help="JPEGs per domain for the pipeline."
    )
    parser.add_argument(
        "--pipeline-data-dir",
        default=None,
        help="Read the pipeline's images from DIR/trainA and DIR/trainB instead of synthetic ones.",
    )
    parser.add_argument(
        "--data-cache",
        choices=("auto", "memory", "disk", "none"),
        default="auto",
        help="The pipeline's resized-image cache (disk: a temporary folder).",
    )
    parser.add_argument(
        "--pipeline-batches", type=int, default=200, help="Batches timed from the pipeline."
    )
    parser.add_argument(
        "--parts", default="train,inference,pipeline", help="Comma-separated parts to measure."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", default=None, help="Also write the report here.")
    return parser


def format_table(report):
    """The report as an aligned two-column table (unmeasured rows are left out)."""
    rows = [
        (label, fmt.format(report[key])) for key, label, fmt in _ROWS if report.get(key) is not None
    ]
    settings = (
        f"{report['image_size']} px, batch {report['batch_size']}, {report['mixed_precision']}"
        f"{', XLA' if report['jit_compile'] else ''}, {report['replicas']} replica(s)"
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
    quiet_tensorflow()
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.tools import benchmark

        options = benchmark.BenchmarkOptions(
            image_size=args.image_size,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            rounds=args.rounds,
            mixed_precision=args.mixed_precision,
            jit_compile=args.jit_compile,
            mirrored_strategy=args.mirrored_strategy,
            cpu_replicas=args.cpu_replicas,
            compare_float32=args.compare_float32,
            compare_handwritten=args.compare_handwritten,
            ngf=args.ngf,
            ndf=args.ndf,
            n_res_blocks=args.n_res_blocks,
            inference_runs=args.inference_runs,
            runtimes=tuple(name.strip() for name in args.runtimes.split(",") if name.strip()),
            runtime_sizes=tuple(int(size) for size in args.runtime_sizes.split(",")),
            threads=args.threads,
            pipeline_images=args.pipeline_images,
            pipeline_batches=args.pipeline_batches,
            pipeline_data_dir=args.pipeline_data_dir,
            data_cache=args.data_cache,
            parts=tuple(part.strip() for part in args.parts.split(",") if part.strip()),
            seed=args.seed,
        )
        report = benchmark.run_benchmark(options)
        if args.json:
            # Imported on use: --help and flag errors answer without loading the library.
            from cyclegan_tf import io

            io.write_text(args.json, json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(format_table(report))
    if report.get("runtimes"):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.tools.runtime_benchmark import format_rows

        print(format_rows(report["runtimes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
