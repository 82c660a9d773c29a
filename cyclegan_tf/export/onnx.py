"""ONNX export of a generator: ``[batch, height, width, C]`` pixels in [0, 255] in and out.

C is the generator's channels: 3 (RGB), or 1 or 4 in and out.

The model is converted by ``keras.Model.export(format="onnx")`` (tf2onnx). Batch, height and width stay
dynamic unless ``image_size`` fixes them; any height and width >= 1 work (see ``graph``). tf2onnx moves
the convolutions to ONNX's channels-first layout and keeps one transpose at each end.

Quantization:

* ``"fp16"``: the image path (every node fed by the input image, not by its shape) converted to
  float16 by ``onnxruntime.transformers.float16`` with float32 inputs and outputs kept; the padding
  index arithmetic stays float32. ONNX Runtime's CPU provider has no float16 convolution on x86: it
  casts back to float32 around them, so on a CPU this only halves the file (it is for GPU providers).
* ``"int8"``: static post-training quantization by ``onnxruntime.quantization.quantize_static`` in the
  QDQ format: int8 weights per output channel (symmetric), uint8 activations at the inputs of
  convolutions, whose ranges come from running the float model on the calibration images (min/max).
  Normalizations and the rest stay float32.
"""

import collections
import os
import tempfile

from cyclegan_tf import _deprecated, model_store
from cyclegan_tf.errors import require
from cyclegan_tf.export import pixel_graph
from cyclegan_tf.export.calibration import calibration_batches
from cyclegan_tf.export.formats import ExportFormat

OPSET = 17
OUTPUT_NAME = "translated"
_DYNAMIC_DIMENSIONS = ("batch", "height", "width")
# Convolutions hold nearly all of the compute; quantizing only them keeps normalizations exact.
_INT8_OP_TYPES = ("Conv", "ConvTranspose")


def write(generator, path, quantize="none", image_size=None, calibration_images=None):
    """Writes ``generator`` as an ONNX model.

    Args:
        generator: a ``keras.Model`` mapping images in [-1, 1] to images in [-1, 1].
        path: str, the ``.onnx`` file to write.
        quantize: ``"none"``, ``"fp16"`` or ``"int8"``. Defaults to ``"none"``.
        image_size: None for any input size, or ``(height, width)`` to fix it.
        calibration_images: for ``"int8"``: a folder or an array of images in [0, 255] (see
            ``calibration.calibration_batches``).

    Returns:
        str, ``path``.

    Raises:
        ValueError: if ``path`` does not end in ``.onnx``, or on a bad ``quantize`` or missing
            calibration images.
        MissingDependencyError: without the ``[onnx]`` extra.
    """
    model_store.check_quantize(quantize)
    if not str(path).endswith(".onnx"):
        raise ValueError(f"The ONNX path must end in .onnx. Received: path={path!r}")
    path = os.fspath(path)
    require("tf2onnx", "ONNX export")
    onnx = require("onnx", "ONNX export")
    batches = None
    if quantize == "int8":
        batches = calibration_batches(
            calibration_images, image_size, channels=pixel_graph.input_channels(generator)
        )
    with tempfile.TemporaryDirectory() as workdir:
        float_path = os.path.join(workdir, "float32.onnx")
        pixel_graph.pixel_model(generator).export(
            float_path,
            format="onnx",
            input_signature=pixel_graph.generator_signature(generator, image_size),
            opset_version=OPSET,
            verbose=False,
        )
        model = onnx.load(float_path)
        _name_inputs_and_outputs(model)
        if quantize == "fp16":
            model = _float16(model)
        if quantize == "int8":
            onnx.save(model, float_path)
            _quantize_int8(float_path, path, batches)
        else:
            onnx.save(model, path)
    return path


def _name_inputs_and_outputs(model):
    """Names the dynamic dimensions ``batch, height, width`` and the output ``translated``."""
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    for dim, name in zip(dims, _DYNAMIC_DIMENSIONS):
        if dim.dim_param:
            dim.dim_param = name
    (graph_output,) = model.graph.output
    old_name = graph_output.name
    for node in model.graph.node:
        node.output[:] = [OUTPUT_NAME if name == old_name else name for name in node.output]
    graph_output.name = OUTPUT_NAME
    for dim, name in zip(graph_output.type.tensor_type.shape.dim, _DYNAMIC_DIMENSIONS):
        if not dim.HasField("dim_value"):
            dim.dim_param = name


def _image_path_nodes(model):
    """Names of the nodes that the input image's values reach (not through ``Shape``)."""
    consumers = collections.defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    reached, frontier = set(), [model.graph.input[0].name]
    while frontier:
        for node in consumers[frontier.pop()]:
            if node.name not in reached and node.op_type != "Shape":
                reached.add(node.name)
                frontier.extend(node.output)
    return reached


def _float16(model):
    """The image path of ``model`` in float16; index arithmetic and the inputs and outputs in float32."""
    float16 = require("onnxruntime.transformers.float16", "ONNX float16 export")
    image_path = _image_path_nodes(model)
    model = float16.convert_float_to_float16(
        model,
        keep_io_types=True,
        node_block_list=[node.name for node in model.graph.node if node.name not in image_path],
    )
    _remove_float16_round_trips(model)
    return model


def _remove_float16_round_trips(model):
    """Removes the float32 → float16 → float32 cast pairs the converter puts between float32 nodes.

    The converter assumes every float tensor becomes float16, so a float32 tensor passed between two
    kept-float32 nodes goes through float16 on the way. The padding arithmetic passes ``INT32_MAX``
    slice ends that way (tf2onnx computes a ``Max`` of them in float), which float16 turns into
    infinity and the crop into an empty image.
    """
    nodes = model.graph.node
    producers = {name: node for node in nodes for name in node.output}
    consumers = collections.defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)
    for node in list(nodes):
        to_float16 = producers.get(node.input[0]) if node.op_type == "Cast" else None
        if not (
            node.name.endswith("_cast_to_fp32_node")
            and to_float16 is not None
            and to_float16.name.endswith("_cast_to_fp16_node")
        ):
            continue
        for consumer in consumers[node.output[0]]:
            consumer.input[:] = [
                to_float16.input[0] if name == node.output[0] else name for name in consumer.input
            ]
        nodes.remove(node)
        if all(consumer is node for consumer in consumers[node.input[0]]):
            nodes.remove(to_float16)


def _quantize_int8(float_path, path, batches):
    quantization = require("onnxruntime.quantization", "ONNX int8 quantization")

    class _Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {pixel_graph.INPUT_NAME: batch}

    quantization.quantize_static(
        float_path,
        path,
        _Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        op_types_to_quantize=list(_INT8_OP_TYPES),
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.MinMax,
    )


FORMAT = ExportFormat(model_store.FORMATS["onnx"], write)


def __getattr__(name):
    return _deprecated.format_function(__name__, FORMAT, name)
