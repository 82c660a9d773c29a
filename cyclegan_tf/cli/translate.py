"""``cyclegan-translate`` / ``scripts/translate.py``: translate images with a trained generator.

Two ways to choose the inputs:

* ``--input FILES_OR_FOLDERS``: each image, one generator (``--model``).
* ``--dataset NAME`` or ``--data-dir DIR`` with ``--split test``: both domains of a split, A through the
  A→B generator into ``OUTPUT/A`` and B through the B→A generator into ``OUTPUT/B``, each output named
  after its source image. ``--model`` is then a run folder (its ``models/netG_A2B.keras`` and
  ``netG_B2A.keras``), or the A→B model with ``--model-b2a`` for the other direction. A run of a one-way
  objective (CUT, FastCUT: ``models/netG.keras``) translates domain A only.
"""

import argparse
import os
import sys

from cyclegan_tf.cli.common import (
    add_memory_arguments,
    add_model_argument,
    quiet_tensorflow,
    user_errors,
)

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
    add_memory_arguments(parser)
    return parser


def collect_inputs(paths):
    """Expands folders into the image files they hold (sorted); files are kept as given.

    Returns:
        ``(files, skipped)``: the paths to translate, and ``(path, reason)`` for each other file of
        the folders (hidden files aside), so that none is left out without a word.

    Raises:
        ValueError: if a path does not exist.
    """
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import io
    from cyclegan_tf.data.decode import IMAGE_EXTENSIONS, is_image_file

    files, skipped = [], []
    for path in paths:
        if io.isdir(path):
            for name in sorted(io.listdir(path)):
                child = io.join(path, name)
                if name.startswith(".") or io.isdir(child):
                    continue
                if is_image_file(name):
                    files.append(child)
                else:
                    extension = os.path.splitext(name)[1].lower() or "no extension"
                    reason = f"not an image this reads ({extension}; it reads {', '.join(IMAGE_EXTENSIONS)})"
                    skipped.append((child, reason))
        elif io.exists(path):
            files.append(path)
        else:
            raise ValueError(f"input not found: {path}")
    return files, skipped


def _translate_inputs(args):
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import inference
    from cyclegan_tf.inference import file_translation

    files, skipped = collect_inputs(args.input)
    for path, reason in skipped:
        print(f"{PROG}: skipped {path}: {reason}", file=sys.stderr)
    if not files:
        raise ValueError(f"no image files in {args.input}")
    file_translation.output_stems(files, args.side_by_side)
    file_translation.check_output_dir(args.output)
    translator = inference.load_translator(args.model, args.max_memory_gb, args.precision)
    results = file_translation.translate_files(
        translator, files, args.output, side_by_side=args.side_by_side
    )
    return results, len(skipped)


def _translate_split(args):
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import data, inference, io
    from cyclegan_tf.inference import file_translation
    from cyclegan_tf.training.run_folder import RunFolder

    run = RunFolder(args.model)
    if args.model_b2a:
        models = {"A": args.model, "B": args.model_b2a}
    elif io.isdir(run.models):
        directions = run.objective().TRANSLATIONS
        models = {d[0]: run.generator(d) for d in ("A2B", "B2A") if d in directions}
        if "B" not in models:
            print(f"{PROG}: {args.model} translates A to B only; domain B is left out.")
    else:
        raise ValueError(
            f"--model {args.model} is not a run folder (no models/): with --dataset/--data-dir give a "
            "run folder, or the A->B model and --model-b2a"
        )
    for folder in models:
        file_translation.check_output_dir(io.join(args.output, folder))
    translators = {
        folder: inference.load_translator(path, args.max_memory_gb, args.precision)
        for folder, path in models.items()
    }
    domains = data.load_domains(dataset=args.dataset, data_dir=args.data_dir, split=args.split)
    results = []
    for domain, folder in zip(domains, ("A", "B")):
        if folder in translators:
            results += file_translation.translate_domain(
                translators[folder],
                domain,
                io.join(args.output, folder),
                side_by_side=args.side_by_side,
            )
    return results, 0


def main(argv=None):
    """Translates every input; returns 1 if any input failed, else 0."""
    args = build_parser().parse_args(argv)
    if args.model_b2a and args.input:
        build_parser().error("--model-b2a goes with --dataset or --data-dir")
    quiet_tensorflow()
    flags = {"model_path": "--model", "output_dir": "--output"}
    with user_errors(PROG, flags=flags):
        results, skipped = _translate_inputs(args) if args.input else _translate_split(args)
    failed = [result for result in results if result.error]
    for result in failed:
        print(f"{PROG}: skipped {result.source}: {result.error}", file=sys.stderr)
    notes = [f"{len(failed)} failed"] if failed else []
    notes += [f"{skipped} other file(s) skipped"] if skipped else []
    print(f"Wrote {len(results) - len(failed)} image(s) to {args.output}", end="")
    print(f"; {', '.join(notes)}." if notes else ".")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
