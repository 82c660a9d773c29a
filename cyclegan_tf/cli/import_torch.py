"""``cyclegan-import-torch`` / ``scripts/import_torch.py``: import an official PyTorch generator."""

import argparse
import os
import re
import sys

from cyclegan_tf.cli.common import quiet_tensorflow, user_errors

PROG = "cyclegan-import-torch"

# Served names end up in URLs (/v1/models/<name>:predict) and folder names.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    return parser


def check_model_name(name):
    """Raises ``ValueError`` unless ``name`` is usable as a folder name and in a URL."""
    if not _MODEL_NAME.match(name):
        raise ValueError(
            "--name must start with a letter or digit and hold only letters, digits, '_', '.' and '-'. "
            f"Received: {name!r}"
        )


def import_weights(weights, name, export_dir="saved_models", version=None, ngf=64, n_res_blocks=9):
    """Imports ``weights`` and writes the SavedModel version and the ``.keras`` generator.

    Returns:
        ``(saved_model_dir, keras_path)``.

    Raises:
        ValueError: on a bad name, an existing version, or weights that do not fit the generator.
        ImportError: if ``torch`` is not installed.
    """
    from cyclegan_tf import export, torch_import

    check_model_name(name)
    state_dict = torch_import.load_torch_state_dict(weights)
    generator = torch_import.generator_from_state_dict(
        state_dict, ngf=ngf, n_res_blocks=n_res_blocks
    )
    model_dir = os.path.join(export_dir, name)
    if version is None:
        versions = export.existing_versions(model_dir)
        version = versions[-1] + 1 if versions else 1
    keras_path = os.path.join(model_dir, f"{version}.keras")
    if os.path.exists(keras_path):
        raise ValueError(
            f"{keras_path} already exists; versions are never overwritten (pass another)"
        )
    saved_model_dir = export.export_generator(generator, export_dir, name, version)
    generator.save(keras_path)
    return saved_model_dir, keras_path


def main(argv=None):
    """Imports one generator; prints what it wrote."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    with user_errors(PROG):
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
