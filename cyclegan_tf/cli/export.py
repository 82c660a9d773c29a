"""``cyclegan-export`` / ``scripts/export.py``: export generators for serving and deployment.

Example::

    cyclegan-export --run runs/apple2orange                      # SavedModels for TF Serving
    cyclegan-export --run runs/apple2orange --format onnx
    cyclegan-export --run runs/apple2orange --format openvino --quantize int8
    cyclegan-export --generator netG_A2B.keras --name apple2orange --format litert --image-size 256
"""

import argparse

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors
from cyclegan_tf.model_store import FORMATS, QUANTIZE_MODES

PROG = "cyclegan-export"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export a run's two generators (or one generator file) under "
        "EXPORT_DIR/<model_name>/: SavedModels as <version>/ (TF Serving's layout), the other "
        "formats beside them as <version>.onnx, <version>.openvino/, <version>.tflite.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="The run folder (holds models/ and config.json).")
    source.add_argument(
        "--generator", help="One generator .keras file (e.g. RUN/models/netG_A2B.keras)."
    )
    parser.add_argument(
        "--export-dir", default="saved_models", help="Base path (default: %(default)s)."
    )
    parser.add_argument(
        "--name",
        help="Run name (default: the run's config.json name); with --generator, the model name "
        "(default: the file's name).",
    )
    parser.add_argument(
        "--version",
        type=int,
        help="Version number (default: a new one for saved_model; for the other formats the "
        "latest version when it has no such export yet, else a new one).",
    )
    parser.add_argument(
        "--format", default="saved_model", choices=tuple(FORMATS), help="Default: %(default)s."
    )
    parser.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE_MODES,
        help="onnx, openvino, litert: fp16 weights or int8 (calibrated) (default: %(default)s).",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="Fix the input to SIZE x SIZE (litert, onnx, openvino; default: any size).",
    )
    parser.add_argument(
        "--calibration-images",
        help="With --quantize int8: for a run, a folder with trainA/ and trainB/ (default: the "
        "run's --data-dir); for --generator, a folder of images of its input domain.",
    )
    add_verbose_argument(parser)
    return parser


def run_name(run_dir, name=None):
    """The name to export under: ``name`` if given, else the run's ``config.json`` name, else the folder's."""
    if name:
        return name
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import io
    from cyclegan_tf.training.config import TrainConfig
    from cyclegan_tf.training.run_folder import RunFolder

    run = RunFolder(run_dir)
    if io.exists(run.config):
        return TrainConfig.from_json(run.config).name
    return io.basename(run_dir)


def run_calibration_images(run_dir, data_dir=None):
    """``(trainA, trainB)`` folders for int8 calibration of a run's A→B and B→A generators.

    Args:
        run_dir: str, the run folder.
        data_dir: str or None, a folder with ``trainA/`` and ``trainB/``; default the run's
            ``config.json`` ``data_dir``.

    Raises:
        OptionError: ``calibration_images`` if there is no such folder.
    """
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf import io
    from cyclegan_tf.errors import OptionError
    from cyclegan_tf.training.config import TrainConfig
    from cyclegan_tf.training.run_folder import RunFolder

    if data_dir is None:
        run = RunFolder(run_dir)
        if io.exists(run.config):
            data_dir = TrainConfig.from_json(run.config).data_dir
    if data_dir is None:
        raise OptionError(
            "calibration_images",
            "quantize='int8' needs a few training images: give a folder with trainA/ and trainB/",
        )
    folders = tuple(io.join(data_dir, split) for split in ("trainA", "trainB"))
    missing = [folder for folder in folders if not io.isdir(folder)]
    if missing:
        raise OptionError("calibration_images", f"no such folder: {missing[0]}")
    return folders


def main(argv=None):
    """Exports the generators; prints the paths written."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import export, inference, io
        from cyclegan_tf.training.run_folder import RunFolder

        options = {"quantize": args.quantize}
        if args.image_size is not None:
            options["image_size"] = args.image_size
        int8 = args.quantize == "int8"
        if args.generator:
            generator = inference.load_generator(args.generator)
            name = args.name or io.stem(args.generator)
            if int8:
                options["calibration_images"] = args.calibration_images
            path = export.export_generator(
                generator, args.export_dir, name, args.version, args.format, **options
            )
            written = {name: path}
        else:
            if not io.isdir(args.run):
                raise ValueError(f"--run: no such folder: {args.run}")
            run = RunFolder(args.run)
            generators = {
                direction: inference.load_generator(run.generator(direction))
                for direction in run.objective().TRANSLATIONS
            }
            if int8:
                options["calibration_images"] = run_calibration_images(
                    args.run, args.calibration_images
                )
            written = export.export_generators(
                generators,
                args.export_dir,
                run_name(args.run, args.name),
                args.version,
                args.format,
                **options,
            )
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
