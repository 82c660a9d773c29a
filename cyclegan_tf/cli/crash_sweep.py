"""``scripts/crash_sweep.py``: kill a tiny training at every durable write and at random moments.

Each fault is followed by the same command; the run must end as the uninterrupted one did (see
``cyclegan_tf.tools.crash_sweep``). Run it before a release; it prints one line per trial and exits 1
if any failed.
"""

import argparse
import time

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "crash_sweep"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kill a tiny training at every durable write and at seeded random moments "
        "(SIGKILL, SIGINT, two SIGINTs), rerun it, and check that it ends as an uninterrupted run.",
    )
    parser.add_argument(
        "--workdir", default="crash-sweep", help="Folder for the runs (default: %(default)s)."
    )
    parser.add_argument(
        "--data-dir",
        help="A trainA/ trainB/ testA/ testB/ folder (default: a synthetic set in --workdir).",
    )
    parser.add_argument(
        "--kills",
        type=int,
        default=20,
        help="Random moments to interrupt at (default: %(default)s).",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the moments and signals (default: %(default)s).",
    )
    parser.add_argument(
        "--points", type=int, help="Crash points to try, evenly spread (default: all of them)."
    )
    parser.add_argument(
        "--match",
        help="Only the crash points whose WHEN:NAME:N matches this glob (e.g. 'before:1:*').",
    )
    parser.add_argument(
        "--objective",
        default="cyclegan",
        help="The training objective of the tiny run: cyclegan, cut or fastcut (default: "
        "%(default)s).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="Seconds per training process (default: %(default)g).",
    )
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Runs the sweep; 0 if every trial ended as the uninterrupted run, else 1."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        if args.kills < 0 or (args.points is not None and args.points < 1) or args.timeout <= 0:
            raise ValueError(
                "--kills must be >= 0, --points >= 1 and --timeout > 0. Received: "
                f"--kills {args.kills}, --points {args.points}, --timeout {args.timeout:g}"
            )
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import io
        from cyclegan_tf.data.synthetic import write_synthetic_dataset
        from cyclegan_tf.models.objectives import get_objective
        from cyclegan_tf.tools import crash_sweep

        get_objective(args.objective)  # an unknown one is named before any work

        start = time.monotonic()
        io.makedirs(args.workdir)
        data_dir = args.data_dir or write_synthetic_dataset(
            io.join(args.workdir, "fruit"), size=64, n_train=16, n_test=8, seed=0
        )
        _, trials = crash_sweep.sweep(
            data_dir,
            args.workdir,
            kills=args.kills,
            seed=args.seed,
            points=args.points,
            match=args.match,
            timeout=args.timeout,
            report=lambda line: print(line, flush=True),
            objective=args.objective,
        )
    failed = [trial for trial in trials if trial.problems]
    minutes = (time.monotonic() - start) / 60
    print(
        f"{len(trials) - len(failed)} of {len(trials)} trials ended as the uninterrupted run ({minutes:.1f} min)."
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
