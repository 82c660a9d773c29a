"""What every command shares: quiet TensorFlow start-up and one-line errors."""

import contextlib
import logging
import os
import sys

from cyclegan_tf.errors import MissingDependencyError, OptionError, first_line


def quiet_tensorflow():
    """Hides TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def flag_name(option, flags=None):
    """The command-line flag of a library argument: ``output_dir`` → ``--output-dir``."""
    return (flags or {}).get(option) or f"--{option.replace('_', '-')}"


@contextlib.contextmanager
def user_errors(prog, flags=None):
    """Turns a ``ValueError``/``OSError`` from bad input into ``prog: error: ...`` and exit code 2.

    A ``cyclegan_tf.errors.OptionError`` is printed under its flag's name.

    Args:
        prog: str, the command's name.
        flags: dict or None, library argument names whose flag is not ``--`` + the name with dashes
            (``{"model_path": "--model"}``).
    """
    try:
        yield
    except OptionError as error:
        message = error.message.strip().splitlines()[0] if error.message.strip() else ""
        print(f"{prog}: error: {flag_name(error.option, flags)}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, OSError, MissingDependencyError) as error:
        print(f"{prog}: error: {first_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


MODEL_HELP = (
    "A generator .keras file (RUN/models/netG_A2B.keras), a SavedModel version folder, or a model "
    "base folder (its highest version)."
)


def add_model_argument(parser, extra_help=""):
    """Adds ``--model``: what ``cyclegan_tf.inference.load_translator`` accepts."""
    parser.add_argument("--model", required=True, help=f"{MODEL_HELP}{extra_help}")


def add_memory_arguments(parser):
    """Adds ``--max-memory-gb`` and ``--precision``: how a ``.keras`` generator runs on an image."""
    # Imported on use: --help and flag errors answer without loading the library.
    from cyclegan_tf.inference import DEFAULT_MAX_MEMORY_GB

    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=DEFAULT_MAX_MEMORY_GB,
        help="Peak memory (GiB) for translating one image with a .keras generator: larger images "
        "are translated in tiles, with the same result (default: %(default)s).",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "bf16"),
        default="float32",
        help="bf16: bfloat16 convolutions (.keras generators and SavedModels of this package, float32 "
        "in and out) or OpenVINO's bf16 inference precision (.openvino/.xml exports: about 3-4x "
        "faster on CPUs with AMX or AVX-512 BF16, about 2 of 255 mean pixel error).",
    )
