"""Loading whatever a user points at as a translator: a ``.keras`` file, a SavedModel, or an export.

Exported ``.onnx``, ``.openvino`` (``.xml``) and ``.tflite`` models run in their own runtime (``runtimes``).

Every translator has ``translate_pixels(images)``: ``[batch, H, W, 3]`` pixels in [0, 255] in, float32
pixels in [0, 255] of the same size out.
"""

import inspect
import os

import keras
import numpy as np
import tensorflow as tf

from cyclegan_tf import io
from cyclegan_tf.errors import OptionError
from cyclegan_tf.inference import runtimes
from cyclegan_tf.inference.keras_translator import (
    DEFAULT_MAX_MEMORY_GB,
    KerasTranslator,
    check_max_memory_gb,
)
from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model
from cyclegan_tf.model_store import SAVED_MODEL_FILE, existing_versions
from cyclegan_tf.models.generators import ResnetGenerator, as_resnet_generator
from cyclegan_tf.models.unet import UnetGenerator

_ZIP_MAGIC = b"PK\x03\x04"


class SavedModelTranslator:
    """A SavedModel as a translator: tiled like a ``.keras`` generator when it was exported by us.

    A SavedModel exported by this package holds the generator's weights, so the generator is rebuilt
    (``generator_from_saved_model``) and runs as a ``KerasTranslator`` within ``max_memory_gb``. Any
    other SavedModel runs its ``serving_default`` signature on the whole image (float32 only).

    Args:
        path: str, a SavedModel version folder (``saved_models/apple2orange/3``).
        max_memory_gb: float, as in ``KerasTranslator``.
        precision: str, as in ``KerasTranslator``.
    """

    def __init__(self, path, max_memory_gb=DEFAULT_MAX_MEMORY_GB, precision="float32"):
        self.path = path
        loaded = tf.saved_model.load(path)
        self._signature = loaded.signatures["serving_default"]
        spec = self._signature.structured_input_signature[1]["images"]
        outputs = self._signature.structured_outputs["images"]
        self.channels = int(spec.shape[-1]) if spec.shape[-1] is not None else 3
        self.output_channels = int(outputs.shape[-1]) if outputs.shape[-1] is not None else 3
        generator = generator_from_saved_model(loaded)
        if generator is None and precision != "float32":
            raise OptionError(
                "precision", f"{precision} needs a generator exported by cyclegan_tf; {path} is not"
            )
        self.keras = (
            None if generator is None else KerasTranslator(generator, max_memory_gb, precision)
        )

    def tiles(self, height, width):
        """bool, whether a ``height`` x ``width`` image runs tiled."""
        return self.keras is not None and self.keras.tiles(height, width)

    def images_per_call(self, height, width, limit):
        """int, images per ``translate_pixels`` call within the budget (see ``KerasTranslator``)."""
        return 1 if self.keras is None else self.keras.images_per_call(height, width, limit)

    def translate_pixels(self, images, progress=None):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255]; returns float32 pixels in [0, 255]."""
        if self.keras is not None:
            return self.keras.translate_pixels(images, progress)
        return self._signature(images=tf.cast(images, tf.float32))["images"]


class ExportTranslator:
    """An export's runtime within a memory budget: it runs whole images, so larger ones are refused.

    Args:
        runtime: a runtime of ``runtimes`` (with ``translate_pixels``).
        max_memory_gb: float, the memory that translating one image may take.
    """

    def __init__(self, runtime, max_memory_gb=DEFAULT_MAX_MEMORY_GB):
        self.runtime = runtime
        self.max_memory_gb = check_max_memory_gb(max_memory_gb)
        self.channels = getattr(runtime, "channels", 3)

    def images_per_call(self, height, width, limit):
        """int, how many ``height`` x ``width`` images fit one call within the budget (at least 1)."""
        count = 1
        while count < limit and self._needed_bytes(height, width, count + 1) <= self._budget_bytes:
            count += 1
        return count

    @property
    def _budget_bytes(self):
        return self.max_memory_gb * 2**30

    def _needed_bytes(self, height, width, batch):
        return runtimes.estimate_export_bytes(self.runtime, height, width, batch)

    def translate_pixels(self, images):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255]; returns float32 pixels in [0, 255].

        Raises:
            ValueError: for images whose whole-image run would exceed the budget.
        """
        batch, height, width = np.shape(images)[:3]
        needed = self._needed_bytes(height, width, batch)
        if needed > self._budget_bytes:
            raise ValueError(
                f"a {width}x{height} image needs about {needed / 2**30:.1f} GiB in "
                f"{self.runtime.name}, which runs whole images only: over --max-memory-gb "
                f"{self.max_memory_gb:g}; raise it, or translate with the SavedModel or the .keras "
                "generator, which translate large images in tiles"
            )
        return self.runtime.translate_pixels(images)


def _is_keras_file(path):
    with io.open_file(path, "rb") as f:
        return f.read(4) == _ZIP_MAGIC


def resolve_model_path(model_path):
    """Resolves a model path: a ``.keras`` file, a SavedModel version folder, or a model base folder.

    Args:
        model_path: str, what the user passed.

    Returns:
        ``(kind, path)`` with kind ``"keras"``, ``"saved_model"`` or ``"exported"`` (a file whose
        ending names its runtime, see ``runtimes.runtime_class``); a base folder resolves to its
        highest numeric SavedModel version.

    Raises:
        OptionError: if nothing loadable is there, naming what was found.
    """
    if runtimes.runtime_class(model_path) is not None and io.exists(model_path):
        return "exported", model_path
    if io.isfile(model_path):
        if not _is_keras_file(model_path):
            raise OptionError("model_path", f"{model_path} is not a .keras model file")
        return "keras", model_path
    if not io.isdir(model_path):
        raise OptionError("model_path", f"no such file or folder: {model_path}")
    if io.exists(io.join(model_path, SAVED_MODEL_FILE)):
        return "saved_model", model_path
    for version in reversed(existing_versions(model_path)):
        candidate = io.join(model_path, str(version))
        if io.exists(io.join(candidate, SAVED_MODEL_FILE)):
            return "saved_model", candidate
    found = io.listdir(model_path)[:5]
    raise OptionError(
        "model_path",
        f"{model_path} is neither a SavedModel (no {SAVED_MODEL_FILE}) nor a model base folder "
        f"with numeric versions; found {found or 'an empty folder'}",
    )


def load_translator(model_path, max_memory_gb=DEFAULT_MAX_MEMORY_GB, precision="float32"):
    """Loads a generator ``.keras`` file, a SavedModel version folder, a model base folder or an export.

    Args:
        model_path: str, the path (local, ``gs://`` or ``ram://``; exported files local only).
        max_memory_gb: float, the memory budget per image: larger images are translated tiled (see
            ``KerasTranslator``; a SavedModel not exported by this package runs whole), or refused
            by an export, which runs whole images only (``ExportTranslator``).
        precision: str, ``"float32"`` or ``"bf16"`` (the tiled engine's convolutions, or OpenVINO's
            inference precision; ONNX Runtime and LiteRT run an export in its own precision).

    Returns:
        A ``KerasTranslator``, ``SavedModelTranslator`` or ``ExportTranslator``.
    """
    kind, resolved = resolve_model_path(model_path)
    if kind == "exported":
        runtime = load_runtime(resolved, **runtimes.precision_options(resolved, precision))
        return ExportTranslator(runtime, max_memory_gb)
    if kind == "keras":
        return KerasTranslator(load_generator(resolved), max_memory_gb, precision)
    return SavedModelTranslator(resolved, max_memory_gb, precision)


def load_generator(model_path):
    """Loads a generator saved as ``.keras`` (e.g. ``RUN/models/netG_A2B.keras``).

    Args:
        model_path: str, the ``.keras`` file.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, 3]`` images to the same shape: a
        ``ResnetGenerator`` for this package's generators (those saved by 0.1 too, see
        ``as_resnet_generator``), else the model as it is.

    Raises:
        OptionError: if the file is missing or is not an image-to-image generator.
    """
    if not io.isfile(model_path):
        raise OptionError("model_path", f"no such file: {model_path}")
    if not _is_keras_file(model_path):
        raise OptionError("model_path", f"{model_path} is not a .keras model file")
    model = keras.models.load_model(model_path, compile=False)
    if hasattr(model, "generator_ab"):
        return model.generator_ab
    if isinstance(model, (ResnetGenerator, UnetGenerator)):
        return model  # its config says what it takes: 1, 3 or 4 channels
    inputs, outputs = model.inputs, model.outputs
    if (
        len(inputs) != 1
        or len(outputs) != 1
        or inputs[0].shape[-1] != 3
        or outputs[0].shape[-1] != 3
    ):
        raise OptionError(
            "model_path",
            f"{model_path} is not a generator (it maps {[i.shape for i in inputs]} to "
            f"{[o.shape for o in outputs]}; expected one image in and one image out, e.g. a "
            "models/netG_*.keras file)",
        )
    try:
        return as_resnet_generator(model)
    except ValueError:
        return model  # another image-to-image model: it runs whole


class TensorFlowRuntime:
    """The baseline: a Keras generator compiled once, or a SavedModel's ``serving_default``.

    Args:
        model: a ``keras.Model`` generator (images in [-1, 1]) or the path of a SavedModel written by
            ``cyclegan_tf.export`` (pixels in [0, 255]).
        threads: int or None, TensorFlow's intra-op threads; set only if TensorFlow has not started
            its thread pools yet.
    """

    name = "tensorflow"

    def __init__(self, model, threads=None):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(runtimes.thread_count(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # The pools already exist in this process; their sizes stay.
        if isinstance(model, (str, os.PathLike)):
            self._translator = SavedModelTranslator(os.fspath(model))
        else:
            self._translator = KerasTranslator(model)
        self.channels = self._translator.channels

    def translate_pixels(self, images):
        images = runtimes.check_pixels(images, self.channels)
        return np.asarray(self._translator.translate_pixels(images))


def load_runtime(path, **options):
    """Loads an exported generator by its file type (``.onnx``, ``.xml``, ``.tflite``, SavedModel folder).

    Args:
        path: str, the exported file, or a SavedModel folder.
        **options: the runtime's keyword arguments (``threads``, ``precision`` …).

    Returns:
        A runtime with ``translate_pixels``.
    """
    path = os.fspath(path)
    found = runtimes.runtime_class(path)
    if found is not None:
        accepted = inspect.signature(found).parameters
        for option in options:
            if option not in accepted:
                raise OptionError(option, f"{found.name} runtime has no such option ({path})")
        return found(path, **options)
    if os.path.isdir(path):
        return TensorFlowRuntime(path, **options)
    raise ValueError(
        f"Unknown exported model type {os.path.splitext(path)[1]!r}; expected one of "
        f"{sorted(runtimes.RUNTIMES)} or a SavedModel folder. Received: path={path!r}"
    )
