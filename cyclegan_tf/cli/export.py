"""``cyclegan-export`` / ``scripts/export.py``: export a run's generators as SavedModels."""

import argparse

from cyclegan_tf.cli.common import quiet_tensorflow, user_errors

PROG = "cyclegan-export"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export a run's two generators in TF Serving's layout "
        "(EXPORT_DIR/<model_name>/<version>/).",
    )
    parser.add_argument(
        "--run", required=True, help="The run folder (holds models/ and config.json)."
    )
    parser.add_argument(
        "--export-dir", default="saved_models", help="Base path (default: %(default)s)."
    )
    parser.add_argument("--name", help="Run name (default: the run's config.json name).")
    parser.add_argument(
        "--version", type=int, help="Version number (default: one above the highest)."
    )
    return parser


def run_name(run_dir, name=None):
    """The name to export under: ``name`` if given, else the run's ``config.json`` name, else the folder's."""
    if name:
        return name
    from cyclegan_tf import io
    from cyclegan_tf.config import TrainConfig
    from cyclegan_tf.run_folder import RunFolder

    run = RunFolder(run_dir)
    if io.exists(run.config):
        return TrainConfig.from_json(run.config).name
    return io.basename(run_dir)


def main(argv=None):
    """Exports both generators; prints the version folders written."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    with user_errors(PROG):
        from cyclegan_tf import export, inference, io
        from cyclegan_tf.run_folder import RunFolder

        if not io.isdir(args.run):
            raise ValueError(f"--run: no such folder: {args.run}")
        run = RunFolder(args.run)
        generators = [inference.load_generator(run.generator(d)) for d in ("A2B", "B2A")]
        written = export.export_pair(
            *generators, args.export_dir, run_name(args.run, args.name), args.version
        )
    for name, folder in written.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
