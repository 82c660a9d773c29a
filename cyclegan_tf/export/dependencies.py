"""Importing the optional packages of the export formats with one clear error when they are missing."""

import importlib

from cyclegan_tf.errors import MissingDependencyError, first_line

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
