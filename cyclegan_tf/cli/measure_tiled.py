"""``scripts/measure_tiled.py``: seconds and peak memory of whole-image vs tiled translation.

Example::

    # the table: every mode x precision x size, each in its own process (cgroup-limited)
    python scripts/measure_tiled.py table --megapixels 1 3 12 48 --json tiled.json
    # one configuration in this process, printed as a JSON line
    python scripts/measure_tiled.py run --mode tiled --precision bf16 --megapixels 12
    # whole-image and tiled alternately in one process: their time ratio on a busy machine
    python scripts/measure_tiled.py compare --megapixels 1 3 --repeats 3
"""

import argparse
import dataclasses
import json

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "measure_tiled"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure whole-image and tiled translation of photo-like images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf.tools.tiled_benchmark import MODES, PRECISIONS

    run = commands.add_parser("run", help="One configuration in this process (a JSON line).")
    run.add_argument("--mode", choices=MODES, required=True)
    run.add_argument("--precision", choices=PRECISIONS, default="float32")
    run.add_argument("--megapixels", type=float, required=True)
    compare = commands.add_parser(
        "compare", help="Whole-image and tiled alternately in this process (their time ratio)."
    )
    compare.add_argument("--megapixels", nargs="+", type=float, default=[1, 3])
    compare.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    compare.add_argument("--repeats", type=int, default=3)
    table = commands.add_parser("table", help="Every configuration, each in its own process.")
    table.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    table.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    table.add_argument("--megapixels", nargs="+", type=float, default=[1, 3, 12, 48])
    table.add_argument(
        "--memory-limit-gb",
        type=float,
        default=16,
        help="cgroup memory limit of each run; whole-image runs estimated above it are not started.",
    )
    table.add_argument("--json", help="Also write the measurements to this file.")
    for sub in (run, compare, table):
        sub.add_argument("--ngf", type=int, default=64)
        sub.add_argument("--n-res-blocks", type=int, default=9)
        sub.add_argument(
            "--antialias", action="store_true", help="CUT's generator (blurred sampling)."
        )
    for sub in (run, table):
        sub.add_argument(
            "--max-memory-bytes",
            type=int,
            default=None,
            help="Tiled budget (default: the library's).",
        )
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.tools import tiled_benchmark

        if args.command == "run":
            result = tiled_benchmark.measure_one(
                args.mode,
                args.precision,
                args.megapixels,
                ngf=args.ngf,
                n_res_blocks=args.n_res_blocks,
                max_memory_bytes=args.max_memory_bytes,
                antialias=args.antialias,
            )
            print(json.dumps(result), flush=True)
            return 0
        if args.command == "compare":
            for megapixels in args.megapixels:
                for precision in args.precisions:
                    result = tiled_benchmark.compare_in_process(
                        megapixels,
                        precision,
                        repeats=args.repeats,
                        ngf=args.ngf,
                        n_res_blocks=args.n_res_blocks,
                        antialias=args.antialias,
                    )
                    print(json.dumps(result), flush=True)
            return 0
        measurements = []
        for megapixels in args.megapixels:
            for precision in args.precisions:
                for mode in args.modes:
                    measurement = tiled_benchmark.measure_in_subprocess(
                        mode,
                        precision,
                        megapixels,
                        int(args.memory_limit_gb * 2**30),
                        ngf=args.ngf,
                        n_res_blocks=args.n_res_blocks,
                        max_memory_bytes=args.max_memory_bytes,
                        antialias=args.antialias,
                    )
                    measurements.append(measurement)
                    print(tiled_benchmark.format_table([measurement]).splitlines()[-1], flush=True)
        print(tiled_benchmark.format_table(measurements))
        if args.json:
            with open(args.json, "w") as file:
                json.dump([dataclasses.asdict(m) for m in measurements], file, indent=1)
    return 0
