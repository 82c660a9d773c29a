"""Exporting a generator to ONNX, OpenVINO IR and LiteRT, and running the exports.

Every export holds the same graph (``graph.PixelTranslator``): float32 ``[batch, height, width, 3]``
pixels in [0, 255] in, translated pixels in [0, 255] out, like the SavedModel's ``serving_default``.

Example:
    ```
    from cyclegan_tf import formats

    formats.export("openvino", generator, "g.xml", quantize="int8", calibration_images="data/trainA")
    runtime = formats.load_runtime("g.xml", precision="bf16")
    translated = runtime.translate_pixels(images)  # [batch, height, width, 3] in [0, 255]
    ```
"""

from cyclegan_tf.formats import litert, onnx, openvino
from cyclegan_tf.formats._deps import MissingDependencyError
from cyclegan_tf.formats.graph import QUANTIZE_MODES
from cyclegan_tf.formats.runtimes import load_runtime

EXPORTERS = {"onnx": onnx.export, "openvino": openvino.export, "litert": litert.export}


def export(format, generator, path, **options):
    """Exports ``generator`` with the exporter of ``format`` (a key of ``EXPORTERS``).

    Args:
        format: str, ``"onnx"``, ``"openvino"`` or ``"litert"``.
        generator: a ``keras.Model`` mapping images in [-1, 1] to images in [-1, 1].
        path: str, the file to write.
        **options: ``quantize``, ``image_size``, ``calibration_images`` (see each module's ``export``).

    Returns:
        The path or paths written.
    """
    if format not in EXPORTERS:
        raise ValueError(f"format must be one of {sorted(EXPORTERS)}. Received: format={format!r}")
    return EXPORTERS[format](generator, path, **options)


__all__ = ["EXPORTERS", "MissingDependencyError", "QUANTIZE_MODES", "export", "load_runtime"]
