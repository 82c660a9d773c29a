"""Translating image files and dataset splits into PNG files, and video files into MP4 files.

Images as the seed repository's ``test.py`` does; videos through ``video.translate_video``. Every output name is checked before any work: ``photo.png`` and ``photo.jpg`` are written to
``photo_png.png`` and ``photo_jpg.png`` (where the stems alone are unique, ``<stem>.png``; a video's
output is ``<stem>.mp4``), and a name that would still be written twice is refused, as is an output
folder that is a file.
"""

import collections
import dataclasses
import io as bytes_io
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from cyclegan_tf import io, pixels
from cyclegan_tf.data.decode import read_image_file
from cyclegan_tf.data.pipeline import domain_images
from cyclegan_tf.errors import OptionError, first_line
from cyclegan_tf.inference.video import OUTPUT_EXTENSION as VIDEO_OUTPUT_EXTENSION
from cyclegan_tf.inference.video import is_video_file, translate_video

COMPARE_SUFFIX = "_compare"
IMAGE_OUTPUT_EXTENSION = ".png"


@dataclasses.dataclass
class TranslationResult:
    """The outcome for one input file.

    Attributes:
        source: str, the input path.
        output: str or None, the translated PNG (or MP4) written.
        error: str or None, why the input could not be translated.
        video: ``video.VideoResult`` or None, what was written for a video.
    """

    source: str
    output: str | None = None
    error: str | None = None
    video: object = None


class TranslationInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``translate_files``: ``source`` was not written, the ``results`` before it were.

    Attributes:
        source: str, the input being translated (nothing of its output is left).
        results: list of ``TranslationResult``, the inputs finished before it.
    """

    def __init__(self, source, results):
        super().__init__(source)
        self.source = source
        self.results = results


def translate_array(translator, image, progress=False):
    """Translates one ``uint8 [H, W, C]`` image at its own size and returns ``uint8 [H, W, C']``.

    Args:
        translator: anything with ``translate_pixels`` (see ``cyclegan_tf.inference.load_translator``).
        image: ``uint8`` array ``[H, W, C]``, C the translator's ``channels``.
        progress: bool, show a progress bar while an image too large for the translator's memory
            budget is translated tiled.
    """
    bar = _tiling_progress(translator, image) if progress else None
    if bar is None:
        outputs = translator.translate_pixels(image[None])
    else:
        outputs = translator.translate_pixels(image[None], progress=bar)
    return np.round(np.asarray(outputs[0])).astype(np.uint8)


def _tiling_progress(translator, image):
    """A callback showing the percentage done, for an image that ``translator`` tiles; else None."""
    tiles = getattr(translator, "tiles", None)
    if tiles is None or not tiles(*image.shape[:2]):
        return None
    height, width = image.shape[:2]
    print(f"Translating {width}x{height} in tiles (it exceeds the memory budget whole)")
    bar = keras.utils.Progbar(100, unit_name="%", verbose=1 if sys.stdout.isatty() else 2)
    return lambda fraction: bar.update(round(100 * fraction))


def check_output_dir(output_dir):
    """Raises ``OptionError`` if ``output_dir`` (or the folder it would be made in) is a file.

    Called before any work, so that a wrong ``--output`` costs nothing; nothing is created.
    """
    folder = output_dir
    while folder and not io.exists(folder):
        parent = io.dirname(folder.rstrip("/"))
        if parent == folder:
            break
        folder = parent
    if folder and io.exists(folder) and not io.isdir(folder):
        where = "is" if folder == output_dir else f"would be made in {folder}, which is"
        raise OptionError(
            "output_dir", f"{output_dir} {where} a file; give a folder for the outputs"
        )


def prepare_output_dir(output_dir):
    """Creates ``output_dir`` if missing; ``OptionError`` if it cannot hold the outputs."""
    check_output_dir(output_dir)
    try:
        io.makedirs(output_dir)
    except (OSError, tf.errors.OpError) as error:
        raise OptionError(
            "output_dir", f"cannot create the folder {output_dir}: {first_line(error)}"
        ) from None


def output_extension(path):
    """``.mp4`` for a video input, ``.png`` for an image."""
    return VIDEO_OUTPUT_EXTENSION if is_video_file(path) else IMAGE_OUTPUT_EXTENSION


def output_stems(files, side_by_side=False):
    """The output name (without ``.png``/``.mp4``) of each input file, each written once.

    A file's stem (``photo`` for ``photo.jpg``), or, where stems collide, the stem and the extension
    (``photo_jpg``, ``photo_png``).

    Args:
        files: list of str, the inputs.
        side_by_side: bool, ``<stem>_compare.png`` is written too.

    Returns:
        list of str, one per file.

    Raises:
        OptionError: naming two inputs that would still be written to one file (the same name in
            two folders, or one file given twice).
    """
    stems = [io.stem(path) for path in files]
    extensions = [os.path.splitext(path)[1].lstrip(".").lower() for path in files]
    counts = collections.Counter(stems)
    names = [
        stem if counts[stem] == 1 else f"{stem}_{extension}"
        for stem, extension in zip(stems, extensions)
    ]
    written = {}
    for path, stem, name in zip(files, stems, names):
        outputs = [name, name + COMPARE_SUFFIX] if side_by_side else [name]
        for output in outputs:
            if output in written:
                first = written[output]
                extension = output_extension(path)
                shown = (
                    f"{stem}{extension}"
                    if io.basename(first) == io.basename(path)
                    else f"{output}{extension}"
                )
                raise OptionError(
                    "input",
                    f"{first} and {path} would both be written to {shown}; rename one, or "
                    "translate them into separate folders",
                )
            written[output] = path
    return names


def translate_files(
    translator, files, output_dir, side_by_side=False, progress=True, temporal_smoothing=0.0
):
    """Translates each file into ``output_dir/<name>.png`` (and ``<name>_compare.png``).

    A video (``video.VIDEO_EXTENSIONS``) is translated into ``<name>.mp4`` (and
    ``<name>_compare.mp4``) by ``video.translate_video``. The names are those of ``output_stems``,
    checked with the output folder before any work. An input that cannot be read (or an output that
    cannot be written) is reported in its result and the others are still written.

    Args:
        translator: from ``cyclegan_tf.inference.load_translator``.
        files: list of str, image and video paths.
        output_dir: str, created if missing.
        side_by_side: bool, also write the original and the translation side by side.
        progress: bool, show a progress bar (over the images; per clip over its frames).
        temporal_smoothing: float in [0, 1), for videos: see ``video.TemporalSmoother``.
            Defaults to 0 (each frame translated alone).

    Returns:
        A list of ``TranslationResult``, one per input, in order.

    Raises:
        OptionError: for an output folder that is a file, or two inputs written to one name.
        TranslationInterrupted: on Ctrl-C; the input under way leaves no output.
    """
    stems = output_stems(files, side_by_side)
    prepare_output_dir(output_dir)
    images_only = not any(is_video_file(path) for path in files)
    results = []
    for path, stem in _progress(list(zip(files, stems)), progress and images_only):
        result = TranslationResult(source=path)
        try:
            if is_video_file(path):
                result.video = _write_video(
                    translator, path, output_dir, stem, side_by_side, progress, temporal_smoothing
                )
                result.output = result.video.output
            else:
                image = read_image_file(path, getattr(translator, "channels", 3))
                result.output = write_translation(
                    translator, image, output_dir, stem, side_by_side, progress
                )
        except (ValueError, OSError, tf.errors.OpError) as error:
            result.error = first_line(error)
        except KeyboardInterrupt:
            raise TranslationInterrupted(path, results) from None
        results.append(result)
    return results


def _write_video(translator, path, output_dir, stem, side_by_side, progress, temporal_smoothing):
    """Translates one clip into ``<stem>.mp4`` (and ``<stem>_compare.mp4``); a ``VideoResult``."""
    compare = (
        io.join(output_dir, f"{stem}{COMPARE_SUFFIX}{VIDEO_OUTPUT_EXTENSION}")
        if side_by_side
        else None
    )
    return translate_video(
        translator,
        path,
        io.join(output_dir, f"{stem}{VIDEO_OUTPUT_EXTENSION}"),
        compare_output=compare,
        temporal_smoothing=temporal_smoothing,
        progress=progress,
    )


def translate_domain(translator, domain, output_dir, side_by_side=False, progress=True):
    """Translates every image of a ``DomainData`` into ``output_dir``, named after its source file.

    Args:
        translator: from ``cyclegan_tf.inference.load_translator``.
        domain: ``cyclegan_tf.data.DomainData``; outputs are named by its ``names`` (the source file
            stems), or ``image_0001``… where the source has no file names (TFDS).
        output_dir: str, created if missing.
        side_by_side: bool, also write ``<name>_compare.png``.
        progress: bool, show a progress bar.

    Returns:
        A list of ``TranslationResult``.
    """
    names = domain.names or [f"image_{i + 1:04d}" for i in range(domain.num_examples)]
    images = domain_images(domain, getattr(translator, "channels", 3))
    pairs = zip(names, images.as_numpy_iterator())
    return [
        TranslationResult(
            source=name,
            output=write_translation(translator, image, output_dir, name, side_by_side, progress),
        )
        for name, image in _progress(list(pairs), progress, total=len(names))
    ]


def png_bytes(image):
    """A ``uint8 [H, W, C]`` array as PNG bytes (grayscale, RGB or RGBA)."""
    buffer = bytes_io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_translation(translator, image, output_dir, stem, side_by_side=False, progress=False):
    """Translates one ``uint8`` image and writes ``<stem>.png`` (and ``<stem>_compare.png``).

    Args:
        translator: from ``cyclegan_tf.inference.load_translator``.
        image: ``uint8`` array ``[H, W, 3]``.
        output_dir: str.
        stem: str, the output's name without ``.png``.
        side_by_side: bool, also write ``<stem>_compare.png``.
        progress: bool, show a progress bar while a tiled image is translated.

    Returns:
        str, the translated PNG's path.
    """
    translated = translate_array(translator, image, progress)
    output = io.join(output_dir, f"{stem}.png")
    io.write_bytes(output, png_bytes(translated))
    if side_by_side:
        if image.shape[-1] != translated.shape[-1]:  # e.g. grayscale to RGB: shown as RGB
            image, translated = pixels.to_rgb(image), pixels.to_rgb(translated)
        pair = np.concatenate([image, translated], axis=1)
        io.write_bytes(io.join(output_dir, f"{stem}{COMPARE_SUFFIX}.png"), png_bytes(pair))
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
