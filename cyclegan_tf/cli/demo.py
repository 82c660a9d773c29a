"""``make demo``: the synthetic fruit set, a small CycleGAN trained on the CPU, translated test images."""

import argparse
import time

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-demo"

# Small enough to train in minutes on two CPU cores, large enough to turn apples orange.
DEMO_OPTIONS = {
    "image_size": 64,
    "load_size": 72,
    "ngf": 16,
    "ndf": 16,
    "n_res_blocks": 3,
    "batch_size": 4,
    "epochs": 20,
    "steps_per_epoch": 40,
    "sample_every": 20,
}
# The synthetic set the demo draws (apples and oranges per domain, at this size).
DEMO_DATA = {"size": 96, "n_train": 200, "n_test": 40}


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "--workdir", default="demo", help="Where everything goes (default: %(default)s)."
    )
    parser.add_argument(
        "--epochs", type=int, default=DEMO_OPTIONS["epochs"], help="Training epochs."
    )
    add_verbose_argument(parser)
    return parser


def new_run_dir(workdir):
    """``workdir/run``, or ``run-2``, ``run-3``… so an earlier demo's outputs are never overwritten."""
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import io

    candidate = io.join(workdir, "run")
    index = 2
    while io.exists(candidate):
        candidate = io.join(workdir, f"run-{index}")
        index += 1
    return candidate


def main(argv=None):
    """Runs the demo and prints where its outputs are."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import inference, io
        from cyclegan_tf.data.decode import list_image_files
        from cyclegan_tf.data.synthetic import write_synthetic_dataset
        from cyclegan_tf.inference import file_translation
        from cyclegan_tf.training import trainer
        from cyclegan_tf.training.config import TrainConfig
        from cyclegan_tf.training.run_folder import RunFolder

        started = time.monotonic()
        data_dir = write_synthetic_dataset(io.join(args.workdir, "fruit"), **DEMO_DATA)
        run_dir = new_run_dir(args.workdir)
        options = {**DEMO_OPTIONS, "epochs": args.epochs}
        config = TrainConfig(
            dataset=None,
            data_dir=data_dir,
            name="apple2orange",
            output_dir=run_dir,
            export_dir=io.join(run_dir, "saved_models"),
            **options,
        )
        trainer.train(config)
        run = RunFolder(run_dir)
        outputs = {}
        for direction, domain in (("A2B", "testA"), ("B2A", "testB")):
            translator = inference.load_translator(run.generator(direction))
            files = list_image_files(io.join(data_dir, domain))
            outputs[direction] = io.join(run_dir, "translated", direction)
            file_translation.translate_files(
                translator, files, outputs[direction], side_by_side=True
            )
        minutes = (time.monotonic() - started) / 60
    print(f"\nDemo finished in {minutes:.1f} min.")
    print(f"  apples -> oranges: {outputs['A2B']}/*_compare.png")
    print(f"  oranges -> apples: {outputs['B2A']}/*_compare.png")
    print(f"  sample grids:      {run.images}/")
    print(f"  training log:      {run.csv}")
    print(f"  SavedModels:       {io.join(run_dir, 'saved_models')}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
