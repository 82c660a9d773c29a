"""``cyclegan-translate`` / ``scripts/translate.py``: translate images and videos with a trained generator.

Two ways to choose the inputs:

* ``--input FILES_OR_FOLDERS``: each image (into a PNG) and video (into an MP4), one generator
  (``--model``).
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
    add_verbose_argument,
    bf16_note,
    quiet_tensorflow,
    user_errors,
)

PROG = "cyclegan-translate"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Translate images and videos with a generator; outputs keep the input's size "
        "(and a video its frame rate, duration and sound).",
    )
    add_model_argument(parser, " With --dataset/--data-dir: a run folder.")
    parser.add_argument("--model-b2a", help="With --dataset/--data-dir: the B->A model.")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument(
        "--input",
        nargs="+",
        help="Image files, video files (.mp4 .mov .mkv .webm .avi) and/or folders of them.",
    )
    inputs.add_argument(
        "--dataset", help="A TFDS cycle_gan config (e.g. apple2orange) or 'synthetic'."
    )
    inputs.add_argument("--data-dir", help="A folder with testA/ testB/ (and trainA/ trainB/).")
    parser.add_argument(
        "--split", default="test", choices=("train", "test"), help="With --dataset/--data-dir."
    )
    parser.add_argument(
        "--output", required=True, help="Folder for the <name>.png (and <name>.mp4) outputs."
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="Also write <name>_compare.png (or .mp4): original | output.",
    )
    parser.add_argument(
        "--temporal-smoothing",
        type=float,
        default=0.0,
        metavar="S",
        help="Videos: blend each output frame with the previous one where the input did not change "
        "(S in [0, 1); 0.5 averages still parts over about 2 frames), which lowers flicker; moving "
        "parts are not blended (default: 0, each frame translated alone).",
    )
    add_memory_arguments(parser)
    add_verbose_argument(parser)
    return parser


def collect_inputs(paths):
    """Expands folders into the image and video files they hold (sorted); files are kept as given.

    Returns:
        ``(files, skipped)``: the paths to translate, and ``(path, reason)`` for each other file of
        the folders (hidden files aside), so that none is left out without a word.

    Raises:
        ValueError: if a path does not exist.
    """
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import io
    from cyclegan_tf.data.decode import IMAGE_EXTENSIONS, is_image_file
    from cyclegan_tf.inference.video import VIDEO_EXTENSIONS, is_video_file

    readable = ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    files, skipped = [], []
    for path in paths:
        if io.isdir(path):
            for name in sorted(io.listdir(path)):
                child = io.join(path, name)
                if name.startswith(".") or io.isdir(child):
                    continue
                if is_image_file(name) or is_video_file(name):
                    files.append(child)
                else:
                    extension = os.path.splitext(name)[1].lower() or "no extension"
                    reason = f"not an image or video this reads ({extension}; it reads {readable})"
                    skipped.append((child, reason))
        elif io.exists(path):
            files.append(path)
        else:
            raise ValueError(f"input not found: {path}")
    return files, skipped


def _translate_inputs(args):
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import inference
    from cyclegan_tf.inference import file_translation, video

    files, skipped = collect_inputs(args.input)
    for path, reason in skipped:
        print(f"{PROG}: skipped {path}: {reason}", file=sys.stderr)
    if not files:
        raise ValueError(f"no image or video files in {args.input}")
    file_translation.output_stems(files, args.side_by_side)
    file_translation.check_output_dir(args.output)
    video.check_temporal_smoothing(args.temporal_smoothing)
    if any(video.is_video_file(path) for path in files):
        video.require_av()
    translator = inference.load_translator(args.model, args.max_memory_gb, args.precision)
    results = file_translation.translate_files(
        translator,
        files,
        args.output,
        side_by_side=args.side_by_side,
        temporal_smoothing=args.temporal_smoothing,
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


def describe_video(result):
    """One line about a translated clip: frames, size, rate, duration, sound and flicker."""
    flicker = (
        "n/a (fewer than two frames, or a still input)"
        if result.flicker_ratio is None
        else f"{result.flicker_ratio:.2f}"
    )
    line = (
        f"{result.source}: {result.frames} frames, {result.width}x{result.height}, "
        f"{result.frame_rate:.3g} fps, {result.duration:.2f} s, audio {result.audio}; "
        f"flicker ratio {flicker}; {result.throughput:.2f} frames/s"
    )
    if result.declared_frames:
        line += f" (the file declares {result.declared_frames} frames: truncated?)"
    return line


def _interrupted(interrupted, output):
    """The one line said on Ctrl-C: what was not written, and what was."""
    done = [result for result in interrupted.results if result.output]
    return (
        f"{PROG}: interrupted: {interrupted.source} was not written (nothing partial is left); "
        f"the {len(done)} output(s) finished before it are in {output}"
    )


def main(argv=None):
    """Translates every input; returns 1 if any input failed, else 0."""
    args = build_parser().parse_args(argv)
    if args.model_b2a and args.input:
        build_parser().error("--model-b2a goes with --dataset or --data-dir")
    quiet_tensorflow(args.verbose)
    note = bf16_note(PROG) if args.precision == "bf16" else None
    if note:
        print(note, file=sys.stderr)
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf.inference.file_translation import TranslationInterrupted

    flags = {"model_path": "--model", "output_dir": "--output"}
    with user_errors(PROG, flags=flags):
        try:
            results, skipped = _translate_inputs(args) if args.input else _translate_split(args)
        except TranslationInterrupted as interrupted:
            print(_interrupted(interrupted, args.output), file=sys.stderr)
            raise SystemExit(130) from None
    failed = [result for result in results if result.error]
    for result in failed:
        print(f"{PROG}: skipped {result.source}: {result.error}", file=sys.stderr)
    for result in results:
        if result.video is not None:
            print(describe_video(result.video))
    videos = sum(result.video is not None for result in results)
    images = len(results) - len(failed) - videos
    notes = [f"{len(failed)} failed"] if failed else []
    notes += [f"{skipped} other file(s) skipped"] if skipped else []
    written = f"{images} image(s)" + (f" and {videos} video(s)" if videos else "")
    print(f"Wrote {written} to {args.output}", end="")
    print(f"; {', '.join(notes)}." if notes else ".")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
