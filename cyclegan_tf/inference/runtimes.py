"""Running an exported generator: one runtime per format, each with ``translate_pixels``.

Every runtime takes float32 ``[batch, height, width, channels]`` pixels in [0, 255] and returns a
float32 numpy array of the same height and width in [0, 255] (the export's output channels), so
translation and serving code can use any of them; ``channels`` is the export's input channels (3 for
RGB, 1 grayscale, 4 RGBA):

    runtime = load_runtime("saved_models/horse2zebra/1.openvino", precision="bf16")
    translated = runtime.translate_pixels(images)

``inference.load_runtime`` picks the runtime by the file's ending: ``.onnx`` (ONNX Runtime), ``.xml`` or a
``.openvino`` folder (OpenVINO), ``.tflite`` (LiteRT), else a SavedModel folder (TensorFlow).

Threads default to the machine's CPU count for the operator (intra-op) pool and one inter-op thread:
a single image is one chain of convolutions, so parallelism inside each op is what helps.

An export always runs the whole image; ``estimate_export_bytes`` says how much memory that takes, so
that callers can refuse an image that would not fit (the SavedModel and ``.keras`` paths tile instead).
"""

import os

import numpy as np

from cyclegan_tf import model_store
from cyclegan_tf.errors import OptionError, require
from cyclegan_tf.inference.tiled import check_precision

# Peak resident memory of translating one image whole, per padded pixel and unit of ngf, measured with
# /usr/bin/time -v (ngf 8, 2 blocks, 2048x2048 and 4096x4096, AMD EPYC Zen 4): ONNX Runtime 30,
# OpenVINO f32 24.5, LiteRT/XNNPACK 147 (2048x2048; 4096x4096 went past an 8 GiB cgroup). Rounded up,
# on top of the process's runtime (about 0.8 GiB).
_EXPORT_BASE_BYTES = int(0.9 * 2**30)
# An export does not say how wide its generator is: the default one (ngf 64) is assumed.
EXPORT_NGF = 64


def estimate_export_bytes(runtime, height, width, batch=1):
    """int, the peak resident memory of ``runtime.translate_pixels`` on ``batch`` images, process included.

    Args:
        runtime: a runtime of this module (its class's ``BYTES_PER_PIXEL_AND_NGF``).
        height: int.
        width: int.
        batch: int, images in one call.
    """
    pixels = batch * max(height + 3, 8) * max(width + 3, 8)
    return int(_EXPORT_BASE_BYTES + runtime.BYTES_PER_PIXEL_AND_NGF * EXPORT_NGF * pixels)


def thread_count(threads):
    """``threads``, or the CPU count when None; ValueError unless a positive int."""
    if threads is None:
        return os.cpu_count() or 1
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None. Received: threads={threads!r}")
    return threads


def check_pixels(images, channels=3):
    """``images`` as a float32 array ``[batch, height, width, channels]``; ValueError otherwise."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != channels:
        raise ValueError(
            f"images must be [batch, height, width, {channels}]. Received shape {images.shape}"
        )
    return images


def _channels(shape):
    """The last dimension of an input shape, or 3 where it is not a fixed number."""
    last = shape[-1] if len(shape) else None
    return int(last) if isinstance(last, (int, np.integer)) and last > 0 else 3


class OnnxRuntime:
    """An ``.onnx`` file in ONNX Runtime's CPU provider.

    Args:
        path: str, the ``.onnx`` file.
        threads: int or None, intra-op threads (default: all CPUs); one inter-op thread, sequential.
        optimization_level: ``"basic"``, ``"extended"`` or ``"all"`` (default) graph optimizations.
    """

    name = "onnxruntime"
    BYTES_PER_PIXEL_AND_NGF = 36
    _LEVELS = ("basic", "extended", "all")

    def __init__(self, path, threads=None, optimization_level="all"):
        ort = require("onnxruntime", "The ONNX runtime")
        if optimization_level not in self._LEVELS:
            raise ValueError(
                f"optimization_level must be one of {self._LEVELS}. "
                f"Received: optimization_level={optimization_level!r}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization_level]
        self._session = ort.InferenceSession(
            os.fspath(path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self.channels = _channels(self._session.get_inputs()[0].shape)

    def translate_pixels(self, images):
        return self._session.run(None, {self._input: check_pixels(images, self.channels)})[0]


# OpenVINO element types by name, as the precision hints spell them.
_OPENVINO_PRECISIONS = {"f32": "f32", "bf16": "bf16", "f16": "f16"}


class OpenVinoRuntime:
    """An OpenVINO IR compiled for the CPU.

    Args:
        path: str, the ``.xml`` file, or a ``<version>.openvino`` folder holding ``model.xml``.
        precision: ``"f32"`` (default), ``"bf16"`` or ``"f16"``: the CPU plugin's
            ``INFERENCE_PRECISION_HINT``. OpenVINO's own default on a CPU with AMX or AVX-512 BF16 is
            bf16, so it is always set explicitly here. An int8 IR runs its quantized parts in int8 and
            the rest in this precision.
        threads: int or None, ``INFERENCE_NUM_THREADS`` (default: all CPUs).
        performance_hint: ``"LATENCY"`` (default: one stream, all threads on one request) or
            ``"THROUGHPUT"``.
    """

    name = "openvino"
    BYTES_PER_PIXEL_AND_NGF = 30
    PRECISIONS = ("f32", "bf16", "f16")

    def __init__(self, path, precision="f32", threads=None, performance_hint="LATENCY"):
        ov = require("openvino", "The OpenVINO runtime")
        if precision not in self.PRECISIONS:
            raise ValueError(
                f"precision must be one of {self.PRECISIONS}. Received: precision={precision!r}"
            )
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": performance_hint,
            "INFERENCE_NUM_THREADS": thread_count(threads),
        }
        if performance_hint == "LATENCY":
            config["NUM_STREAMS"] = 1
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, model_store.OPENVINO_MODEL_FILE)
        self._compiled = ov.Core().compile_model(path, "CPU", config)
        self._request = self._compiled.create_infer_request()
        last = self._compiled.inputs[0].get_partial_shape()[-1]
        self.channels = last.get_length() if last.is_static else 3

    @property
    def inference_precision(self):
        """str, the precision the CPU plugin really runs: ``"f32"``, ``"bf16"`` or ``"f16"``.

        It can differ from the one asked for: a CPU without float16 arithmetic runs the ``"f16"``
        hint in bfloat16 where it has AVX-512 BF16 or AMX (seen on an AMD Zen 4).
        """
        element_type = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        return _OPENVINO_PRECISIONS.get(str(element_type.get_type_name()), str(element_type))

    def translate_pixels(self, images):
        return self._request.infer({0: check_pixels(images, self.channels)})[0].copy()


class LiteRtRuntime:
    """A ``.tflite`` file in the LiteRT interpreter (XNNPACK delegate on the CPU).

    Args:
        path: str, the ``.tflite`` file.
        threads: int or None, the interpreter's and XNNPACK's threads (default: all CPUs).
    """

    name = "litert"
    BYTES_PER_PIXEL_AND_NGF = 170

    def __init__(self, path, threads=None):
        interpreter_module = require("ai_edge_litert.interpreter", "The LiteRT runtime")
        self._interpreter = interpreter_module.Interpreter(
            model_path=os.fspath(path), num_threads=thread_count(threads)
        )
        (self._input,) = self._interpreter.get_input_details()
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._signature = tuple(int(d) for d in self._input["shape_signature"])
        self.channels = _channels(self._signature)
        self._shape = None

    def translate_pixels(self, images):
        images = check_pixels(images, self.channels)
        if images.shape != self._shape:
            fixed = [(want, got) for want, got in zip(self._signature, images.shape) if want != -1]
            if any(want != got for want, got in fixed):
                raise ValueError(
                    f"This LiteRT model takes images of shape {self._signature} (-1: any). "
                    f"Received shape {images.shape}"
                )
            self._interpreter.resize_tensor_input(self._input["index"], images.shape, strict=True)
            self._interpreter.allocate_tensors()
            self._shape = images.shape
        self._interpreter.set_tensor(self._input["index"], images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


# By the ending of an exported file (``model_store.FORMATS``); ``.xml`` is an OpenVINO IR named directly.
RUNTIMES = {
    model_store.FORMATS["onnx"].extension: OnnxRuntime,
    model_store.FORMATS["openvino"].extension: OpenVinoRuntime,
    ".xml": OpenVinoRuntime,
    model_store.FORMATS["litert"].extension: LiteRtRuntime,
}


def runtime_class(path):
    """The runtime class of an exported file by its ending, or None (e.g. a SavedModel folder)."""
    return RUNTIMES.get(os.path.splitext(os.fspath(path).rstrip("/"))[1].lower())


def precision_options(path, precision):
    """The runtime options of the package-wide ``precision`` (``"float32"`` or ``"bf16"``) for ``path``.

    OpenVINO takes bf16 as its inference precision; ONNX Runtime and LiteRT run an export in the
    precision it was written in (``--quantize`` at export time).

    Raises:
        OptionError: for ``"bf16"`` with a runtime that has no such setting, or an unknown precision.
    """
    check_precision(precision)
    if precision == "float32":
        return {}
    if runtime_class(path) is OpenVinoRuntime:
        return {"precision": "bf16"}
    raise OptionError(
        "precision",
        f"bf16 applies to .keras generators, SavedModels and OpenVINO exports, not {path}; "
        "export with quantize='fp16' or 'int8' for a faster ONNX or LiteRT model",
    )
