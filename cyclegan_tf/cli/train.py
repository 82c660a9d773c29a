"""``cyclegan-train`` / ``scripts/train.py``: train a CycleGAN.

Exit codes: 0 done; 2 bad options or files (one line naming them); 1 training diverged; 130/143 stopped
by Ctrl-C/SIGTERM (the same command resumes).
"""

import argparse
import sys

from cyclegan_tf import options
from cyclegan_tf.cli.common import add_verbose_argument, bf16_note, quiet_tensorflow, user_errors
from cyclegan_tf.training.config import TrainConfig

PROG = "cyclegan-train"


def build_parser():
    """The argument parser: one flag per ``TrainConfig`` field."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a CycleGAN (the reference networks and losses) with model.fit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    options.add_arguments(parser, TrainConfig)
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Parses ``argv``, trains, and prints where the outputs are."""
    args = build_parser().parse_args(argv)
    config = options.from_args(TrainConfig, args)
    quiet_tensorflow(args.verbose)
    note = bf16_note(PROG) if config.mixed_precision == "bf16" else None
    if note:
        print(note, file=sys.stderr)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.training import trainer
        from cyclegan_tf.training.callbacks import TrainingDiverged
        from cyclegan_tf.training.interruption import TrainingInterrupted

        config = config.resolved()
        try:
            trainer.train(config)
        except TrainingInterrupted as stopped:
            print(f"{PROG}: {stopped.message}", file=sys.stderr)
            raise SystemExit(stopped.exit_code) from None
        except KeyboardInterrupt:
            print(
                f"{PROG}: stopped at once; run the same command to resume from the last backup",
                file=sys.stderr,
            )
            raise SystemExit(130) from None
        except TrainingDiverged as diverged:
            print(f"{PROG}: error: {diverged.message}", file=sys.stderr)
            raise SystemExit(1) from None
    print(f"Run folder: {config.output_dir} (models/, logs/, images/)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
