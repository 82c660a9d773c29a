"""Serving ONNX, OpenVINO and LiteRT exports with the SavedModel's signatures.

A registry source says which versions a model folder holds, which file marks a version as changed,
and how to load one. ``registry.SavedModelSource`` reads ``<version>/saved_model.pb`` (TF Serving's
layout); ``ExportSource`` reads ``<version><suffix>`` files written by ``cyclegan-export --format``
(``3.onnx``, ``3.int8.openvino/``, ``3.tflite``) and runs them in their runtime
(``cyclegan_tf.inference.runtimes``) behind the two signatures a SavedModel has:

* ``serving_default``: ``images`` float32 ``[batch, height, width, C]`` in [0, 255] → ``images``
  (``C`` the export's channels: 3, or 1 or 4).
* ``translate_bytes``: ``image_bytes`` encoded images ``[batch]`` (turned as their EXIF orientation
  says) → ``image_bytes`` PNGs.

so the REST API and the web page work the same whatever runs underneath.
"""

import dataclasses

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from cyclegan_tf import export, io, model_store
from cyclegan_tf.data.decode import decode_image
from cyclegan_tf.inference import loading, runtimes
from cyclegan_tf.serving import registry


def _signature_inputs(channels=3):
    """``{signature: (input name, dtype, shape)}``; the images have ``channels`` channels."""
    return {
        "serving_default": ("images", tf.float32, [None, None, None, int(channels)]),
        "translate_bytes": ("image_bytes", tf.string, [None]),
    }


class ExportSource:
    """``<version><suffix>`` exports of one format and variant, run by their runtime.

    Args:
        format: str, ``"onnx"``, ``"openvino"`` or ``"litert"``.
        quantize: str, which variant to serve: ``"none"``, ``"fp16"`` or ``"int8"``.
        image_size: None or an int: serve the fixed-size export (``3.256x256.tflite``).
        precision: str, ``"float32"`` or ``"bf16"`` (OpenVINO only; see
            ``runtimes.precision_options``).
        **runtime_options: the runtime's other options (``threads``).

    Raises:
        OptionError: for a precision the format's runtime does not take.
    """

    def __init__(  # noqa: A002
        self, format, quantize="none", image_size=None, precision="float32", **runtime_options
    ):
        if format not in export.FORMATS or format == "saved_model":
            raise ValueError(
                f"format must be one of onnx, openvino, litert. Received: format={format!r}"
            )
        self.stored_format = model_store.FORMATS[format]
        self.suffix = export.FORMATS[format].suffix(quantize=quantize, image_size=image_size)
        # Checked now, on the file name every served version will have, not when a version loads.
        precision_options = runtimes.precision_options(f"<version>{self.suffix}", precision)
        self.runtime_options = {**precision_options, **runtime_options}

    def versions(self, model_dir):
        """Sorted version numbers that have an export with this source's suffix."""
        if not io.isdir(model_dir):
            return []
        numbers = [
            name[: -len(self.suffix)]
            for name in io.listdir(model_dir)
            if name.endswith(self.suffix)
        ]
        return sorted(int(number) for number in numbers if number.isdigit())

    def path(self, model_dir, version):
        """The version's file (or ``.openvino`` folder)."""
        return io.join(model_dir, f"{version}{self.suffix}")

    def marker(self, path):
        """The file itself, or an OpenVINO folder's ``model.xml`` (``model_store.StoredFormat``)."""
        return self.stored_format.marker(path)

    def load(self, name, version, path):
        """An ``ExportedVersion`` running ``path`` in its runtime."""
        runtime = loading.load_runtime(path, **self.runtime_options)
        return ExportedVersion(
            name=name,
            version=version,
            path=path,
            signatures=_signatures(runtime),
            signature_defs=_signature_defs(runtime.channels),
            loaded=runtime,
        )


@dataclasses.dataclass(frozen=True)
class ExportedVersion(registry.ServedVersion):
    """A ``ServedVersion`` whose signatures call a runtime instead of a SavedModel."""

    @property
    def image_signatures(self):
        """True: both signatures translate each image of a batch on its own."""
        return True

    def estimate_image_bytes(self, height, width):
        """int, what the runtime takes to translate one image whole (it cannot tile)."""
        return runtimes.estimate_export_bytes(self.loaded, height, width)

    def input_specs(self, signature_name):
        """``{input_name: tf.TensorSpec}`` of a signature."""
        key, dtype, shape = _signature_inputs(self.loaded.channels)[signature_name]
        return {key: tf.TensorSpec(shape, dtype, name=key)}

    def output_specs(self, signature_name):
        """``{output_name: tf.TensorSpec}`` of a signature."""
        return self.input_specs(signature_name)


def _signatures(runtime):
    def serving_default(images):
        return {"images": tf.constant(runtime.translate_pixels(images.numpy()))}

    def translate_one(encoded):
        image = decode_image(encoded, runtime.channels)
        translated = runtime.translate_pixels(image.numpy()[None].astype("float32"))[0]
        return tf.io.encode_png(tf.cast(tf.round(translated), tf.uint8))

    def translate_bytes(image_bytes):
        return {"image_bytes": tf.stack([translate_one(item) for item in tf.unstack(image_bytes)])}

    return {"serving_default": serving_default, "translate_bytes": translate_bytes}


def _signature_defs(channels=3):
    """The SignatureDefMap of the SavedModel export, as TF Serving's metadata API prints it."""
    definitions = {}
    for name, (key, dtype, shape) in _signature_inputs(channels).items():
        definition = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        for tensors, suffix in ((definition.inputs, "_input"), (definition.outputs, "_output")):
            info = tensors[key]
            info.name = f"{key}{suffix}"
            info.dtype = dtype.as_datatype_enum
            for size in shape:
                info.tensor_shape.dim.add(size=-1 if size is None else size)
        definitions[name] = registry.message_to_dict(definition)
    return {"signature_def": definitions}
