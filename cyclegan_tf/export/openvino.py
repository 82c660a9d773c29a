"""OpenVINO IR export of a generator: ``[batch, height, width, C]`` pixels in [0, 255] in and out.

C is the generator's channels: 3 (RGB), or 1 or 4 in and out.

The model is converted by ``keras.Model.export(format="openvino")`` (OpenVINO's TensorFlow frontend)
and written as ``.xml`` (graph) plus ``.bin`` (weights). Batch, height and width stay dynamic unless
``image_size`` fixes them; any height and width >= 1 work (see ``graph``).

Precision is mostly a runtime choice in OpenVINO: the CPU plugin runs a float32 IR in bfloat16 when the
CPU has AMX or AVX-512 BF16 (its default ``INFERENCE_PRECISION_HINT`` there), so the runtime loader asks
for ``"f32"`` explicitly unless told otherwise. Quantization at export:

* ``"fp16"``: weights stored as float16 (``compress_to_fp16``), half the ``.bin``; they are decompressed
  when the model is compiled, so speed and precision follow the runtime's precision hint.
* ``"int8"``: post-training quantization by NNCF (``nncf.quantize``) of the convolutions only: int8
  weights per output channel and FakeQuantize nodes on their inputs whose ranges are measured on the
  calibration images, plus a fast bias correction. The CPU plugin runs them with int8 kernels
  (VNNI/AMX); normalizations and the rest stay in the runtime's float precision.
"""

import os
import tempfile

from cyclegan_tf import _deprecated, model_store
from cyclegan_tf.errors import require
from cyclegan_tf.export import pixel_graph
from cyclegan_tf.export.calibration import calibration_batches
from cyclegan_tf.export.formats import ExportFormat


def write(generator, path, quantize="none", image_size=None, calibration_images=None):
    """Writes ``generator`` as an OpenVINO IR.

    Args:
        generator: a ``keras.Model`` mapping images in [-1, 1] to images in [-1, 1].
        path: str, the ``.xml`` file to write; the weights go to the ``.bin`` beside it.
        quantize: ``"none"``, ``"fp16"`` or ``"int8"``. Defaults to ``"none"``.
        image_size: None for any input size, or ``(height, width)`` to fix it.
        calibration_images: for ``"int8"``: a folder or an array of images in [0, 255] (see
            ``calibration.calibration_batches``).

    Returns:
        A tuple of str, the ``.xml`` and ``.bin`` files written.

    Raises:
        ValueError: if ``path`` does not end in ``.xml``, or on a bad ``quantize`` or missing
            calibration images.
        MissingDependencyError: without the ``[openvino]`` extra.
    """
    model_store.check_quantize(quantize)
    path = os.fspath(path)
    if not path.endswith(".xml"):
        raise ValueError(f"The OpenVINO path must end in .xml. Received: path={path!r}")
    ov = require("openvino", "OpenVINO export")
    batches = None
    if quantize == "int8":
        nncf = require("nncf", "OpenVINO int8 quantization")
        batches = calibration_batches(
            calibration_images, image_size, channels=pixel_graph.input_channels(generator)
        )
    with tempfile.TemporaryDirectory() as workdir:
        float_path = os.path.join(workdir, "float32.xml")
        pixel_graph.pixel_model(generator).export(
            float_path,
            format="openvino",
            input_signature=pixel_graph.generator_signature(generator, image_size),
            verbose=False,
        )
        model = ov.Core().read_model(float_path)
        if quantize == "int8":
            model = _quantize_int8(nncf, model, batches)
        ov.save_model(model, path, compress_to_fp16=quantize == "fp16")
    return path, path[: -len(".xml")] + ".bin"


# Convolutions hold nearly all of the compute; quantizing the normalization arithmetic too (NNCF's
# default) multiplied the pixel error several times over for no measurable speed.
_INT8_OP_TYPES = {"Convolution", "ConvolutionBackpropData"}


def _quantize_int8(nncf, model, batches):
    others = sorted({op.get_type_name() for op in model.get_ops()} - _INT8_OP_TYPES)
    return nncf.quantize(
        model,
        nncf.Dataset(batches),
        subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(types=others, validate=False),
    )


FORMAT = ExportFormat(model_store.FORMATS["openvino"], write, writes_folder_file=True)


def __getattr__(name):
    return _deprecated.format_function(__name__, FORMAT, name)
