"""LiteRT (TFLite) export of a generator: ``[batch, height, width, C]`` pixels in [0, 255] in and out.

C is the generator's channels: 3 (RGB), or 1 or 4 in and out.

The model is converted by ``keras.Model.export(format="litert")`` (the TFLite converter) with builtin
ops only. Without ``image_size`` the ``.tflite`` has a dynamic shape signature ``[-1, -1, -1, 3]``: the
interpreter takes any size after ``resize_tensor_input`` (the runtime loader does that), and any height
and width >= 1 work (see ``graph``). With ``image_size`` the height and width are fixed, which lets the
converter fold the padding arithmetic and the interpreter plan its memory once.

Quantization (the converter's post-training options):

* ``"fp16"``: weights stored as float16 (``target_spec.supported_types = [tf.float16]``), half the
  file; the CPU interpreter dequantizes them to float32 when it loads the model.
* ``"int8"``: full integer quantization of the ops that have int8 kernels: int8 weights per channel and
  int8 activations whose ranges come from running the float model on the calibration images
  (``representative_dataset``); input and output stay float32, other ops run in float32.
"""

import os

import tensorflow as tf

from cyclegan_tf import _deprecated, model_store
from cyclegan_tf.export import pixel_graph
from cyclegan_tf.export.calibration import calibration_batches
from cyclegan_tf.export.formats import ExportFormat


def write(generator, path, quantize="none", image_size=None, calibration_images=None):
    """Writes ``generator`` as a ``.tflite`` model.

    Args:
        generator: a ``keras.Model`` mapping images in [-1, 1] to images in [-1, 1].
        path: str, the ``.tflite`` file to write.
        quantize: ``"none"``, ``"fp16"`` or ``"int8"``. Defaults to ``"none"``.
        image_size: None for any input size, or ``(height, width)`` to fix it.
        calibration_images: for ``"int8"``: a folder or an array of images in [0, 255] (see
            ``calibration.calibration_batches``).

    Returns:
        str, ``path``.

    Raises:
        ValueError: if ``path`` does not end in ``.tflite``, or on a bad ``quantize`` or missing
            calibration images.
    """
    model_store.check_quantize(quantize)
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"The LiteRT path must end in .tflite. Received: path={path!r}")
    options = {}
    if quantize == "fp16":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    if quantize == "int8":
        batches = calibration_batches(
            calibration_images, image_size, channels=pixel_graph.input_channels(generator)
        )
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": lambda: ([batch] for batch in batches),
        }
    pixel_graph.pixel_model(generator).export(
        path,
        format="litert",
        input_signature=pixel_graph.generator_signature(generator, image_size),
        verbose=False,
        **options,
    )
    return path


FORMAT = ExportFormat(model_store.FORMATS["litert"], write)


def __getattr__(name):
    return _deprecated.format_function(__name__, FORMAT, name)
