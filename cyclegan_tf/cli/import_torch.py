"""``cyclegan-import-torch`` / ``scripts/import_torch.py``: import an official PyTorch generator."""

import argparse
import sys

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-import-torch"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Import a ResNet generator of the official PyTorch CycleGAN release "
        "(latest_net_G.pth / <name>.pth) as EXPORT_DIR/<name>/<version>/ (SavedModel) and "
        "EXPORT_DIR/<name>/<version>.keras.",
    )
    parser.add_argument("weights", help="The PyTorch state dict, e.g. latest_net_G.pth.")
    parser.add_argument("--name", required=True, help="Served model name, e.g. apple2orange.")
    parser.add_argument(
        "--export-dir", default="saved_models", help="Base path (default: %(default)s)."
    )
    parser.add_argument(
        "--version", type=int, help="Version number (default: one above the highest)."
    )
    parser.add_argument(
        "--ngf", type=int, default=64, help="Filters of the first layer (default: 64)."
    )
    parser.add_argument(
        "--n-res-blocks",
        type=int,
        default=9,
        help="Residual blocks (default: 9; 6 for 128 px models).",
    )
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Imports one generator; prints what it wrote."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf.tools.torch_import import import_weights

        try:
            saved_model_dir, keras_path = import_weights(
                args.weights, args.name, args.export_dir, args.version, args.ngf, args.n_res_blocks
            )
        except ImportError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
    print(f"{args.name}: {saved_model_dir} (SavedModel), {keras_path} (Keras)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
