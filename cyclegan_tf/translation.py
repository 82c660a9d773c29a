"""Translating image files with a saved generator (the seed repository's ``test.py``)."""

import dataclasses
import os
import sys
import zipfile

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from cyclegan_tf import inference
from cyclegan_tf.data.decode import read_image_file


@dataclasses.dataclass
class TranslationResult:
    """The outcome for one input file.

    Attributes:
        source: str, the input path.
        output: str or None, the translated PNG written.
        error: str or None, why the input could not be translated.
    """

    source: str
    output: str | None = None
    error: str | None = None


class SavedModelTranslator:
    """Calls an exported SavedModel's ``serving_default`` signature like a generator on pixels.

    Args:
        path: str, a SavedModel version folder (``saved_models/apple2orange/3``).
    """

    def __init__(self, path):
        self.path = path
        self._signature = tf.saved_model.load(path).signatures["serving_default"]

    def translate_pixels(self, images):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255]; returns float32 pixels in [0, 255]."""
        return self._signature(images=tf.cast(images, tf.float32))["images"]


class KerasTranslator:
    """Wraps a Keras generator so it takes and returns pixels in [0, 255] at any size.

    Args:
        generator: a ``keras.Model`` on images in [-1, 1].
    """

    def __init__(self, generator):
        self.generator = generator

    def translate_pixels(self, images):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255]; returns float32 pixels in [0, 255]."""
        return inference.translate_pixels(self.generator, images)


def resolve_model_path(path):
    """Resolves ``--model``: a ``.keras`` file, a SavedModel version folder, or a model base folder.

    Args:
        path: str, what the user passed.

    Returns:
        ``(kind, path)`` with kind ``"keras"`` or ``"saved_model"``; a base folder resolves to its
        highest numeric version.

    Raises:
        ValueError: if nothing loadable is there, naming what was found.
    """
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"--model: {path} is not a .keras model file")
        return "keras", path
    if not os.path.isdir(path):
        raise ValueError(f"--model: no such file or folder: {path}")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved_model", path
    versions = sorted(int(name) for name in os.listdir(path) if name.isdigit())
    for version in reversed(versions):
        candidate = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return "saved_model", candidate
    found = sorted(os.listdir(path))[:5]
    raise ValueError(
        f"--model: {path} is neither a SavedModel (no saved_model.pb) nor a model base folder with "
        f"numeric versions; found {found or 'an empty folder'}"
    )


def load_translator(path):
    """Loads whatever ``--model`` points at as an object with ``translate_pixels(images)``.

    Args:
        path: str, a generator ``.keras`` file, a SavedModel version folder or a model base folder.

    Returns:
        A ``KerasTranslator`` or ``SavedModelTranslator``.
    """
    kind, resolved = resolve_model_path(path)
    if kind == "keras":
        return KerasTranslator(load_generator(resolved))
    return SavedModelTranslator(resolved)


def load_generator(path):
    """Loads a generator saved as ``.keras`` (e.g. ``RUN/models/netG_A2B.keras``).

    Args:
        path: str, the ``.keras`` file.

    Returns:
        A ``keras.Model`` mapping ``[batch, H, W, 3]`` images to the same shape.

    Raises:
        ValueError: if the file is missing or is not an image-to-image generator.
    """
    if not os.path.isfile(path):
        raise ValueError(f"--model: no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"--model: {path} is not a .keras model file")
    import cyclegan_tf  # noqa: F401 - registers the custom layers

    model = keras.models.load_model(path, compile=False)
    if hasattr(model, "generator_ab"):
        return model.generator_ab
    inputs, outputs = model.inputs, model.outputs
    if (
        len(inputs) != 1
        or len(outputs) != 1
        or inputs[0].shape[-1] != 3
        or outputs[0].shape[-1] != 3
    ):
        raise ValueError(
            f"--model: {path} is not a generator (it maps {[i.shape for i in inputs]} to "
            f"{[o.shape for o in outputs]}; expected one image in and one image out, e.g. a "
            "models/netG_*.keras file)"
        )
    return model


def translate_array(translator, image):
    """Translates one ``uint8 [H, W, 3]`` image at its own size and returns ``uint8 [H, W, 3]``."""
    outputs = translator.translate_pixels(image[None])
    return np.round(np.asarray(outputs[0])).astype(np.uint8)


def translate_files(translator, files, output_dir, side_by_side=False, progress=True):
    """Translates each file into ``output_dir/<stem>.png`` (and ``<stem>_compare.png``).

    An input that cannot be read is reported in its result and the others are still written.

    Args:
        translator: from ``load_translator`` (or a ``KerasTranslator``).
        files: list of str, image paths.
        output_dir: str, created if missing.
        side_by_side: bool, also write the original and the translation side by side.
        progress: bool, show a progress bar.

    Returns:
        A list of ``TranslationResult``, one per input, in order.
    """
    results = []
    for path in _progress(files, progress):
        result = TranslationResult(source=path)
        try:
            image = read_image_file(path)
        except (ValueError, OSError) as error:
            result.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        else:
            stem = os.path.splitext(os.path.basename(path))[0]
            result.output = write_translation(translator, image, output_dir, stem, side_by_side)
        results.append(result)
    return results


def translate_domain(translator, domain, output_dir, side_by_side=False, progress=True):
    """Translates every image of a ``DomainData`` into ``output_dir``, named after its source file.

    Args:
        translator: from ``load_translator``.
        domain: ``cyclegan_tf.data.DomainData``; outputs are named by its ``names`` (the source file
            stems), or ``image_0001``… where the source has no file names (TFDS).
        output_dir: str, created if missing.
        side_by_side: bool, also write ``<name>_compare.png``.
        progress: bool, show a progress bar.

    Returns:
        A list of ``TranslationResult``.
    """
    names = domain.names or [f"image_{i + 1:04d}" for i in range(domain.num_examples)]
    pairs = zip(names, domain.images.as_numpy_iterator())
    return [
        TranslationResult(
            source=name, output=write_translation(translator, image, output_dir, name, side_by_side)
        )
        for name, image in _progress(list(pairs), progress, total=len(names))
    ]


def write_translation(translator, image, output_dir, stem, side_by_side=False):
    """Translates one ``uint8`` image and writes ``<stem>.png`` (and ``<stem>_compare.png``).

    Returns:
        str, the translated PNG's path.
    """
    os.makedirs(output_dir, exist_ok=True)
    translated = translate_array(translator, image)
    output = os.path.join(output_dir, f"{stem}.png")
    Image.fromarray(translated).save(output)
    if side_by_side:
        pair = np.concatenate([image, translated], axis=1)
        Image.fromarray(pair).save(os.path.join(output_dir, f"{stem}_compare.png"))
    return output


def _progress(items, enabled, total=None):
    """Yields ``items`` while a progress bar counts them (live on a terminal, one line otherwise)."""
    total = len(items) if total is None else total
    bar = None
    if enabled and total > 1:
        bar = keras.utils.Progbar(total, unit_name="image", verbose=1 if sys.stdout.isatty() else 2)
    for index, item in enumerate(items):
        yield item
        if bar is not None:
            bar.update(index + 1)
