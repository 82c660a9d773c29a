"""``cyclegan-train`` / ``scripts/train.py``: train a CycleGAN."""

import argparse

from cyclegan_tf import options
from cyclegan_tf.cli.common import quiet_tensorflow, user_errors
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
    return parser


def main(argv=None):
    """Parses ``argv``, trains, and prints where the outputs are."""
    config = options.from_args(TrainConfig, build_parser().parse_args(argv))
    quiet_tensorflow()
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.training import trainer

        config = config.resolved()
        model, _ = trainer.train(config)
    print(f"Run folder: {config.output_dir} (models/, logs/, images/)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
