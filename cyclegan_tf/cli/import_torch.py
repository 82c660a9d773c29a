"""``cyclegan-import-torch`` / ``scripts/import_torch.py``: import a PyTorch generator, any layout."""

import argparse
import sys

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-import-torch"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Import a PyTorch generator (the official CycleGAN, pix2pix and CUT releases' "
        "ResNet and U-Net generators, re-implementations' ResNet generators; a plain state dict or "
        "a checkpoint holding several networks) as EXPORT_DIR/<name>/<version>/ (SavedModel) and "
        "EXPORT_DIR/<name>/<version>.keras. The layout and the architecture are read from the "
        "file's keys and shapes.",
    )
    parser.add_argument(
        "weights", help="The PyTorch file, e.g. latest_net_G.pth or a training checkpoint."
    )
    parser.add_argument("--name", required=True, help="Served model name, e.g. apple2orange.")
    parser.add_argument(
        "--export-dir", default="saved_models", help="Base path (default: %(default)s)."
    )
    parser.add_argument(
        "--version", type=int, help="Version number (default: one above the highest)."
    )
    parser.add_argument(
        "--key",
        help="The network to import from a checkpoint that holds several (G_A2B, netG_B, "
        "state_dict/netG ...); without it, the only generator, or the command lists them.",
    )
    parser.add_argument(
        "--ngf", type=int, help="Filters of the first layer (default: read from the file)."
    )
    parser.add_argument(
        "--n-res-blocks", type=int, help="Residual blocks (default: counted in the file)."
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
            imported = import_weights(
                args.weights,
                args.name,
                args.export_dir,
                args.version,
                args.ngf,
                args.n_res_blocks,
                args.key,
            )
        except ImportError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
    source = args.weights if imported.key is None else f"{args.weights} ({imported.key})"
    print(f"{source}: {imported.description}")
    print(f"{args.name}: {imported.saved_model_dir} (SavedModel), {imported.keras_path} (Keras)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
