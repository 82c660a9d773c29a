"""``cyclegan-translate`` / ``scripts/translate.py``: translate images with a trained generator.

Two ways to choose the inputs:

* ``--input FILES_OR_FOLDERS``: each image, one generator (``--model``).
* ``--dataset NAME`` or ``--data-dir DIR`` with ``--split test``: both domains of a split, A through the
  A→B generator into ``OUTPUT/A`` and B through the B→A generator into ``OUTPUT/B``, each output named
  after its source image. ``--model`` is then a run folder (its ``models/netG_A2B.keras`` and
  ``netG_B2A.keras``), or the A→B model with ``--model-b2a`` for the other direction.
"""

import argparse
import os
import sys

from cyclegan_tf.cli.common import add_model_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-translate"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Translate images with a generator; outputs keep the input's size.",
    )
    add_model_argument(parser, " With --dataset/--data-dir: a run folder.")
    parser.add_argument("--model-b2a", help="With --dataset/--data-dir: the B->A model.")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--input", nargs="+", help="Image files and/or folders.")
    inputs.add_argument(
        "--dataset", help="A TFDS cycle_gan config (e.g. apple2orange) or 'synthetic'."
    )
    inputs.add_argument("--data-dir", help="A folder with testA/ testB/ (and trainA/ trainB/).")
    parser.add_argument(
        "--split", default="test", choices=("train", "test"), help="With --dataset/--data-dir."
    )
    parser.add_argument("--output", required=True, help="Folder for the <name>.png outputs.")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="Also write <name>_compare.png (original | output).",
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


def _translate_inputs(args):
    from cyclegan_tf import translation

    files = collect_inputs(args.input)
    if not files:
        raise ValueError(f"no image files in {args.input}")
    translator = translation.load_translator(args.model)
    return translation.translate_files(
        translator, files, args.output, side_by_side=args.side_by_side
    )


def _translate_split(args):
    from cyclegan_tf import data, translation

    run_models = os.path.join(args.model, "models")
    if args.model_b2a:
        model_ab, model_ba = args.model, args.model_b2a
    elif os.path.isdir(run_models):
        model_ab = os.path.join(run_models, "netG_A2B.keras")
        model_ba = os.path.join(run_models, "netG_B2A.keras")
    else:
        raise ValueError(
            f"--model {args.model} is not a run folder (no models/): with --dataset/--data-dir give a "
            "run folder, or the A->B model and --model-b2a"
        )
    translators = translation.load_translator(model_ab), translation.load_translator(model_ba)
    domains = data.load_domains(dataset=args.dataset, data_dir=args.data_dir, split=args.split)
    results = []
    for translator, domain, folder in zip(translators, domains, ("A", "B")):
        results += translation.translate_domain(
            translator, domain, os.path.join(args.output, folder), side_by_side=args.side_by_side
        )
    return results


def main(argv=None):
    """Translates every input; returns 1 if any input failed, else 0."""
    args = build_parser().parse_args(argv)
    if args.model_b2a and args.input:
        build_parser().error("--model-b2a goes with --dataset or --data-dir")
    quiet_tensorflow()
    with user_errors(PROG):
        results = _translate_inputs(args) if args.input else _translate_split(args)
    failed = [result for result in results if result.error]
    for result in failed:
        print(f"{PROG}: skipped {result.source}: {result.error}", file=sys.stderr)
    print(f"Wrote {len(results) - len(failed)} image(s) to {args.output}", end="")
    print(f"; {len(failed)} failed." if failed else ".")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
