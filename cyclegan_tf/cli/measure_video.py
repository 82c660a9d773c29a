"""``scripts/measure_video.py``: generated test clips, and the speed and flicker of video translation.

Example::

    # a 10-minute 720p clip (30 fps, with sound) to translate under /usr/bin/time -v
    python scripts/measure_video.py clip --out /tmp/long.mp4 --seconds 600 --height 720 --width 1280
    # frames per second of a model on a clip, warm
    python scripts/measure_video.py speed --model netG.keras --clip /tmp/720p.mp4 --precision bf16
    # the flicker ratio at several --temporal-smoothing strengths
    python scripts/measure_video.py flicker --model netG.keras --clip /tmp/256.mp4
"""

import argparse
import json

from cyclegan_tf.cli.common import (
    PRECISIONS,
    add_verbose_argument,
    quiet_tensorflow,
    user_errors,
)

PROG = "measure_video"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Make test clips; measure the speed and flicker of video translation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    clip = commands.add_parser("clip", help="Write a camera-like test clip with a sine tone.")
    clip.add_argument("--out", required=True, help="The .mp4 file to write.")
    clip.add_argument("--seconds", type=float, default=10)
    clip.add_argument("--height", type=int, default=720)
    clip.add_argument("--width", type=int, default=1280)
    clip.add_argument("--fps", type=int, default=30)
    clip.add_argument("--seed", type=int, default=0)
    speed = commands.add_parser("speed", help="Frames per second on a clip (a JSON line).")
    speed.add_argument("--precision", choices=PRECISIONS, default="float32")
    flicker = commands.add_parser("flicker", help="Flicker ratio per smoothing strength (JSON).")
    flicker.add_argument("--strengths", nargs="+", type=float, default=[0.0, 0.5, 0.8])
    for sub in (speed, flicker):
        sub.add_argument("--model", required=True, help="A generator .keras file or an export.")
        sub.add_argument("--clip", required=True, help="The clip to translate.")
        sub.add_argument("--max-memory-gb", type=float, default=4.0)
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.tools import video_benchmark

        if args.command == "clip":
            frames = video_benchmark.write_test_clip(
                args.out, args.seconds, args.height, args.width, args.fps, args.seed
            )
            print(f"Wrote {args.out}: {frames} frames of {args.width}x{args.height}.")
        elif args.command == "speed":
            result = video_benchmark.measure_speed(
                args.model, args.clip, args.precision, args.max_memory_gb
            )
            print(json.dumps({"clip": args.clip, "precision": args.precision, **result}))
        else:
            rows = video_benchmark.measure_flicker(
                args.model, args.clip, tuple(args.strengths), args.max_memory_gb
            )
            print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
