"""``cyclegan-translate`` / ``scripts/translate.py``: translate image files with a trained generator."""

import argparse
import os
import sys

from cyclegan_tf.cli.common import quiet_tensorflow, user_errors

PROG = "cyclegan-translate"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Translate images with a generator; outputs keep the input's size."
    )
    parser.add_argument(
        "--model",
        required=True,
        help="A generator .keras file (RUN/models/netG_A2B.keras), a SavedModel version folder, or a model base folder (its highest version).",
    )
    parser.add_argument("--input", nargs="+", required=True, help="Image files and/or folders.")
    parser.add_argument("--output", required=True, help="Folder for <stem>.png outputs.")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="Also write <stem>_compare.png (original | output).",
    )
    return parser


def collect_inputs(paths):
    """Expands folders into their image files (sorted); files are kept as given.

    Raises:
        ValueError: if a path does not exist.
    """
    from cyclegan_tf.data.decode import list_image_files

    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(list_image_files(path))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise ValueError(f"input not found: {path}")
    return files


def main(argv=None):
    """Translates every input; returns 1 if any input failed, else 0."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    with user_errors(PROG):
        from cyclegan_tf import translation

        files = collect_inputs(args.input)
        if not files:
            raise ValueError(f"no image files in {args.input}")
        translator = translation.load_translator(args.model)
        results = translation.translate_files(
            translator, files, args.output, side_by_side=args.side_by_side
        )
    failed = [result for result in results if result.error]
    for result in failed:
        print(f"{PROG}: skipped {result.source}: {result.error}", file=sys.stderr)
    print(f"Wrote {len(results) - len(failed)} image(s) to {args.output}", end="")
    print(f"; {len(failed)} failed." if failed else ".")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
