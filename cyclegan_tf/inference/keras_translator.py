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
    convolution_buffer_bytes,
    estimate_runtime_bytes,
    estimate_whole_image_bytes,
)
from cyclegan_tf.models.unet import UnetGenerator

# Input (uint8, then float32 in the whole-image graph), output (float32) and its rounded copy, per
# pixel and channel: what a translation holds besides the generator's own maps.
_IMAGE_BYTES_PER_VALUE = 1 + 4 + 4 + 1
# The least the tiled maps get, however small the budget: below it, everything spills to disk.
_MIN_TILED_BYTES = 2**26
# Peak resident memory of a U-Net (``UnetGenerator``, 8 levels) translating one image whole, measured
# with /usr/bin/time -v (TensorFlow 2.21 on CPU, graph mode, uint8 in and out): 1.31, 2.22 and 4.63 GiB
# at 1024², 2048² and 3072² for ngf 64 (1.53 GiB at 2048² for ngf 32), so about 1 GiB plus 4.2 to 6.5
# bytes per padded pixel and unit of ngf. Rounded up.
_UNET_BYTES_PER_PIXEL_AND_NGF = 7.0


def estimate_unet_image_bytes(generator, height, width):
    """The memory that translating one image whole with a ``UnetGenerator`` may ask for, on any CPU.

    The measured resident peak (see ``_UNET_BYTES_PER_PIXEL_AND_NGF``) of the image padded to the
    U-Net's size multiple, plus the largest buffer one of its convolutions may ask for on TensorFlow's
    own CPU kernels (``convolution_buffer_bytes``), as ``estimate_whole_image_bytes`` does for a ResNet.

    Args:
        generator: a ``UnetGenerator``.
        height: int, image height (before padding).
        width: int, image width.

    Returns:
        int, bytes of the whole process (TensorFlow's runtime included).
    """
    multiple = generator.size_multiple
    pixels = -(-height // multiple) * multiple * -(-width // multiple) * multiple
    resident = estimate_runtime_bytes() + _UNET_BYTES_PER_PIXEL_AND_NGF * generator.ngf * pixels
    buffers = []
    in_channels, resolution = generator.channels, pixels
    for level in generator.levels:
        out_channels = int(level.down.filters)
        buffers.append(
            convolution_buffer_bytes(4, in_channels, out_channels, resolution, resolution // 4)
        )
        up_in = int(level.up.kernel.shape[3])
        buffers.append(
            convolution_buffer_bytes(
                4, up_in, int(level.up.filters), resolution // 4, resolution, True
            )
        )
        in_channels, resolution = out_channels, resolution // 4
    return int(resident + max(buffers))


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
        self.channels, self.output_channels = self._whole.channels, self._whole.output_channels
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

        The whole process's (TensorFlow's runtime included); see ``estimate_whole_image_bytes`` and,
        for a U-Net, ``estimate_unet_image_bytes``. None for another architecture: its memory is
        unknown (it always runs whole).
        """
        if isinstance(self.generator, UnetGenerator):
            return estimate_unet_image_bytes(self.generator, height, width)
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
        if self.tiles(height, width) or self.whole_image_bytes(height, width) is None:
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
        image_bytes = (
            _IMAGE_BYTES_PER_VALUE * max(self.channels, self.output_channels) * height * width
        )
        available = self.max_memory_bytes - estimate_runtime_bytes() - image_bytes
        return max(available, _MIN_TILED_BYTES)

    def translate_pixels(self, images, progress=None):
        """Translates ``[batch, H, W, C]`` pixels in [0, 255] (``C`` the generator's ``channels``).

        Args:
            images: array or tensor ``[batch, H, W, C]``, any numeric dtype.
            progress: callable or None; for a tiled image, called with the fraction done (0 to 1)
                after each band.

        Returns:
            float32 NumPy array ``[batch, H, W, C']`` of pixels in [0, 255] (``output_channels``).
        """
        images = np.asarray(images)
        if not self.tiles(*images.shape[1:3]):
            self._check_whole_fits(*images.shape[:3])
            return np.asarray(self._whole.translate_pixels(images))
        return np.stack([self.translate_tiled(image, progress) for image in images])

    def _check_whole_fits(self, batch, height, width):
        """Refuses a U-Net's image that would exceed the budget whole (it cannot be tiled)."""
        if self.can_tile or not isinstance(self.generator, UnetGenerator):
            return
        needed = self.whole_image_bytes(height * batch, width)
        if needed > self.max_memory_bytes:
            raise OptionError(
                "max_memory_gb",
                f"a {width}x{height} image needs about {needed / 2**30:.1f} GiB translated whole by "
                f"this U-Net generator, over the budget of {self.max_memory_gb:g} GiB; a U-Net cannot "
                "be translated in tiles (each output pixel depends on the whole image): raise the "
                "budget, or translate a smaller image",
            )

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
