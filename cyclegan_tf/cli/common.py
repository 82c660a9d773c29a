"""What every command shares: a quiet TensorFlow, one-line errors, and the flags several commands take.

Every command parses its arguments before TensorFlow is imported (``--help`` and flag errors answer
at once), then calls ``quiet_tensorflow``.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

from cyclegan_tf.errors import MissingDependencyError, OptionError, first_line

# TensorFlow's C++ log lines (absl's format: ``I0000 00:00:1796614420.838849    6103 port.cc:153] ...``),
# the line absl writes before its logging starts, and the second line of the CPU-feature message.
# Fatal (``F``) lines are kept: the process is about to abort and they say why.
_TENSORFLOW_LOG_LINE = re.compile(
    r"^([IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_tensorflow_log_line(line):
    """Whether ``line`` is one of TensorFlow's C++ log lines (info, warning or error; not fatal)."""
    return bool(_TENSORFLOW_LOG_LINE.match(line))


def quiet_tensorflow(verbose=False):
    """Imports TensorFlow without its C++ log lines, unless ``verbose``; call it after parsing arguments.

    TensorFlow's shared libraries log a few lines while they load, before any log level applies
    (``oneDNN custom operations are on``, ``Could not find cuda drivers``...): they are written to a
    temporary file during the import and dropped, and any other line written meanwhile (a Python
    warning) is passed on. Afterwards ``TF_CPP_MIN_LOG_LEVEL=3`` keeps the runtime's info, warning
    and error lines off (``failed call to cuInit``, oneDNN's fallbacks, the graph remapper's): an
    error that matters reaches the command as an exception and is printed as one line.

    Args:
        verbose: bool, keep TensorFlow's log lines (as ``TF_CPP_MIN_LOG_LEVEL`` says, all of them
            when it is unset).
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if verbose:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" in sys.modules:
        return
    with tensorflow_log_lines_dropped():
        # Imported here, under the filter: the start-up lines are written while these load.
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def tensorflow_log_lines_dropped():
    """Sends file descriptor 2 to a temporary file; passes on all but TensorFlow's lines afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                kept = "".join(line for line in lines if not is_tensorflow_log_line(line))
                if kept:
                    sys.stderr.write(kept)
                    sys.stderr.flush()
    finally:
        os.close(saved)


# CPU flags (Linux /proc/cpuinfo) of bfloat16 arithmetic; without them oneDNN emulates bf16.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# bf16 against float32 time of the default generator (tiled engine, 480p video frames) with oneDNN
# held to AVX-512 without BF16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI) on an AMD EPYC: 10.0 against
# 7.4 s a frame (docs/performance.md, "bf16 without bfloat16 arithmetic").
_EMULATED_BF16_SLOWDOWN = 1.4


def bf16_note(prog, cpuinfo="/proc/cpuinfo"):
    """The one hardware note that matters, for bf16: a CPU without bfloat16 arithmetic emulates it.

    TensorFlow's own line about it is hidden with its other log lines (``quiet_tensorflow``).

    Args:
        prog: str, the command's name.
        cpuinfo: str, the file listing the CPU's flags.

    Returns:
        str, the line to print, or None where the CPU has bfloat16 arithmetic (or cannot tell).
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split()}
    except OSError:
        return None
    if not flags or any(flag in flags for flag in _BF16_CPU_FLAGS):
        return None
    return (
        f"{prog}: note: this CPU has no bfloat16 arithmetic (AVX512_BF16 or AMX), so bf16 is "
        f"emulated and slower than float32 ({_EMULATED_BF16_SLOWDOWN}x on AVX-512 without BF16)"
    )


def add_verbose_argument(parser):
    """Adds ``--verbose``: TensorFlow's own log lines, hidden by default (see ``quiet_tensorflow``)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Also show TensorFlow's own log lines (its C++ start-up and runtime messages).",
    )


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


# ``inference.PRECISIONS``, spelled here so that --help does not load the tiled engine (a test
# checks that the two agree).
PRECISIONS = ("float32", "bf16")

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
    from cyclegan_tf.inference.budget import DEFAULT_MAX_MEMORY_GB

    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=DEFAULT_MAX_MEMORY_GB,
        help="Peak memory (GiB) for translating one image with a .keras generator: larger images "
        "are translated in tiles, with the same result (default: %(default)s).",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="bf16: bfloat16 convolutions (.keras generators and SavedModels of this package, float32 "
        "in and out) or OpenVINO's bf16 inference precision (.openvino/.xml exports: about 3-4x "
        "faster on CPUs with AMX or AVX-512 BF16, about 2 of 255 mean pixel error).",
    )
