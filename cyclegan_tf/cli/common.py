"""What every command shares: quiet TensorFlow start-up and one-line errors."""

import contextlib
import logging
import os
import sys


def quiet_tensorflow():
    """Hides TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def user_errors(prog):
    """Turns a ``ValueError``/``OSError`` from bad input into ``prog: error: ...`` and exit code 2."""
    try:
        yield
    except (ValueError, OSError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


MODEL_HELP = (
    "A generator .keras file (RUN/models/netG_A2B.keras), a SavedModel version folder, or a model "
    "base folder (its highest version)."
)


def add_model_argument(parser, extra_help=""):
    """Adds ``--model``: what ``cyclegan_tf.translation.load_translator`` accepts."""
    parser.add_argument("--model", required=True, help=f"{MODEL_HELP}{extra_help}")
