"""A Keras generator as a translator: the whole image where it fits a memory budget, tiled beyond it.

``KerasTranslator.translate_pixels`` chooses per image. Where ``estimate_whole_image_bytes`` (the
measured peak of a whole-image run plus the largest buffer a convolution may ask for on any CPU) fits
``max_memory_gb`` the image runs whole, as one compiled graph (``CompiledGenerator``, the fastest way);
otherwise ``TiledGenerator`` runs it band by band in what the budget leaves after the runtime and the
image arrays, with the same result to float rounding. A translator holds no per-image state: threads
may share one.
"""

import numpy as np

from cyclegan_tf.errors import OptionError
from cyclegan_tf.inference.budget import DEFAULT_MAX_MEMORY_GB, check_max_memory_gb
from cyclegan_tf.inference.generator import CompiledGenerator
from cyclegan_tf.inference.tiled import (
    TiledGenerator,
    check_precision,
    estimate_runtime_bytes,
    estimate_whole_image_bytes,
)

# Input (uint8, then float32 in the whole-image graph), output (float32) and its rounded copy, per
# pixel and channel: what a translation holds besides the generator's own maps.
_IMAGE_BYTES_PER_VALUE = 1 + 4 + 4 + 1
# The least the tiled maps get, however small the budget: below it, everything spills to disk.
_MIN_TILED_BYTES = 2**26


class KerasTranslator:
    """Translates pixels with a Keras generator within a memory budget.

    Args:
        generator: a ``keras.Model`` on images in [-1, 1]. A ``resnet_generator`` can be tiled; another
            model always runs on the whole image.
        max_memory_gb: float, the peak resident memory (GiB) that translating one image may take,
            TensorFlow's runtime included. Images whose whole-image run is estimated above it are
            tiled. Defaults to 4 (a 12-MP photo then takes about 4.5 GB).
        precision: str, ``"float32"`` or ``"bf16"`` (bfloat16 convolutions, float32 in and out, norm
            statistics in float32; always the tiled engine). Defaults to ``"float32"``.
        spill_dir: str or None, where tiled maps over the budget go (a local folder). Defaults to the
            system's temporary folder.

    Example:
        >>> translator = KerasTranslator(resnet_generator(ngf=8, n_res_blocks=1), max_memory_gb=2)
        >>> translator.translate_pixels(np.zeros((1, 30, 41, 3), np.uint8)).shape
        (1, 30, 41, 3)
    """

    def __init__(
        self, generator, max_memory_gb=DEFAULT_MAX_MEMORY_GB, precision="float32", spill_dir=None
    ):
        check_precision(precision)
        self.generator = generator
        self.max_memory_gb = check_max_memory_gb(max_memory_gb)
        self.precision = precision
        self._whole = CompiledGenerator(generator)
        try:
            self._tiled = TiledGenerator(generator, precision=precision, spill_dir=spill_dir)
        except ValueError as error:
            if precision != "float32":
                raise OptionError(
                    "precision", f"{precision} needs a resnet_generator model: {error}"
                ) from None
            self._tiled = None

    @property
    def max_memory_bytes(self):
        """int, the budget in bytes."""
        return int(self.max_memory_gb * 2**30)

    @property
    def can_tile(self):
        """bool, whether the generator can run tiled (a ``resnet_generator``)."""
        return self._tiled is not None

    def whole_image_bytes(self, height, width):
        """Int or None, the estimated peak memory of translating a ``height`` x ``width`` image whole.

        The whole process's (TensorFlow's runtime included); see ``estimate_whole_image_bytes``.
        None for a generator that is not a ``ResnetGenerator``: its memory is unknown (it always
        runs whole).
        """
        if self._tiled is None:
            return None
        ngf, n_res_blocks = self._tiled.architecture()
        return estimate_whole_image_bytes(
            ngf, n_res_blocks, height, width, antialias=self._tiled.antialias
        )

    def tiles(self, height, width):
        """bool, whether a ``height`` x ``width`` image runs tiled (it would not fit the budget whole)."""
        if self._tiled is None:
            return False
        if self.precision != "float32":
            return True
        return self.whole_image_bytes(height, width) > self.max_memory_bytes

    def images_per_call(self, height, width, limit):
        """int, how many ``height`` x ``width`` images one ``translate_pixels`` call may take.

        Tiled images run one by one (1); whole ones as many as fit the budget together, at most
        ``limit`` (a batch of ``n`` costs what one image ``n`` times as tall costs).
        """
        if self._tiled is None or self.tiles(height, width):
            return 1
        count = 1
        while (
            count < limit
            and self.whole_image_bytes(height * (count + 1), width) <= self.max_memory_bytes
        ):
            count += 1
        return count

    def tiled_maps_bytes(self, height, width):
        """int, the bytes the tiled maps of a ``height`` x ``width`` image may take.

        The budget less the runtime and the image arrays, at least 64 MiB (what does not fit spills
        to disk).
        """
        image_bytes = _IMAGE_BYTES_PER_VALUE * 3 * height * width
        available = self.max_memory_bytes - estimate_runtime_bytes() - image_bytes
        return max(available, _MIN_TILED_BYTES)

    def translate_pixels(self, images, progress=None):
        """Translates ``[batch, H, W, 3]`` pixels in [0, 255].

        Args:
            images: array or tensor ``[batch, H, W, 3]``, any numeric dtype.
            progress: callable or None; for a tiled image, called with the fraction done (0 to 1)
                after each band.

        Returns:
            float32 NumPy array ``[batch, H, W, 3]`` of pixels in [0, 255].
        """
        images = np.asarray(images)
        if not self.tiles(*images.shape[1:3]):
            return np.asarray(self._whole.translate_pixels(images))
        return np.stack([self.translate_tiled(image, progress) for image in images])

    def translate_tiled(self, image, progress=None):
        """Translates one ``[H, W, 3]`` image on the tiled engine, whatever its size.

        Args:
            image: array ``[H, W, 3]`` of pixels in [0, 255].
            progress: callable or None, called with the fraction done after each band; an exception
                it raises stops the translation.

        Returns:
            float32 NumPy array ``[H, W, 3]`` of pixels in [0, 255].

        Raises:
            ValueError: if the generator cannot tile (see ``can_tile``).
        """
        if self._tiled is None:
            raise ValueError("this generator cannot run tiled: it is not a resnet_generator")
        budget = self.tiled_maps_bytes(*image.shape[:2])
        return self._tiled.translate_pixels(image, progress, max_memory_bytes=budget)

    @property
    def last_tiled_run(self):
        """The ``TiledRun`` of this thread's last tiled translation (None before one)."""
        return None if self._tiled is None else self._tiled.last_run
