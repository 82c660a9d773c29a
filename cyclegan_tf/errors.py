"""Errors meant for the user, the one way a message is shortened to one line, and optional imports.

Bottom layer: imports nothing of this package.
"""

import importlib


def first_line(error):
    r"""The first non-empty line of an exception's message, or its type name when it has none.

    TensorFlow errors carry multi-line graph traces; a user needs their first line only.

    Example:
        >>> first_line(ValueError("bad size\n  more detail"))
        'bad size'
        >>> first_line(KeyError())
        'KeyError'
    """
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


class OptionError(ValueError):
    """A bad value of a named argument; the command-line tools print it under the flag's name.

    Library code names the Python argument (``output_dir``); ``cyclegan_tf.cli`` prints the flag
    (``--output-dir``), so neither layer spells the other's names.

    Args:
        option: str, the argument's Python name.
        message: str, what is wrong, in one line (without the argument's name).

    Example:
        >>> str(OptionError("output_dir", "runs/a is a file, not a folder"))
        'output_dir: runs/a is a file, not a folder'
    """

    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the pip extra that installs it.

    Example:
        >>> str(MissingDependencyError("ONNX export needs the [onnx] extra: pip install 'cyclegan_tf[onnx]'"))
        "ONNX export needs the [onnx] extra: pip install 'cyclegan_tf[onnx]'"
    """


# The pip extra that installs each optional module (see ``setup.cfg``).
_EXTRAS = {
    "tf2onnx": "onnx",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxruntime.quantization": "onnx",
    "onnxruntime.transformers.float16": "onnx",
    "openvino": "openvino",
    "nncf": "openvino",
    "ai_edge_litert.interpreter": "litert",
    "av": "video",
}


def require(module, purpose):
    """Imports ``module`` or raises ``MissingDependencyError`` naming the pip extra that installs it.

    Args:
        module: str, the module to import, a key of ``_EXTRAS``.
        purpose: str, what needs it, for the message (e.g. ``"ONNX export"``).

    Returns:
        The imported module.

    Example:
        >>> ort = require("onnxruntime", "the ONNX runtime")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = _EXTRAS[module]
        raise MissingDependencyError(
            f"{purpose} needs the [{extra}] extra: pip install 'cyclegan_tf[{extra}]' "
            f"(could not import {module}: {first_line(error)})"
        ) from None
