"""``cyclegan-report`` / ``scripts/report.py``: write ``RUN/report.html`` for a training run."""

import argparse

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-report"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write RUN/report.html: config, loss curves, sample grids and exports in one file.",
    )
    parser.add_argument("run", help="The run folder (runs/<name>).")
    parser.add_argument(
        "--export",
        nargs="+",
        help="Exported model folders to list (default: found from the run's config.json).",
    )
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Writes the report and prints its path; returns 0 (errors exit with status 2)."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.training.report import write_report

        path = write_report(args.run, export_paths=args.export)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
