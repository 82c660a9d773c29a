"""The reference's ``--preprocess`` modes: what size a training image is brought to, then cropped.

A mode is a resize (or none) followed by a random crop (or none), then the random horizontal
flip every mode has, as in the official code's ``data/base_dataset.py`` ``get_transform``:

* ``resize_and_crop`` (default): resize to ``load_size`` × ``load_size``, random crop
  ``crop_size``.
* ``scale_width_and_crop``: scale the width to ``load_size`` keeping the aspect ratio (the
  height never below ``crop_size``), random crop ``crop_size``; the official recipe for
  high-resolution sets (e.g. Cityscapes at ``--load-size 1024 --image-size 360``).
* ``crop``: random crop ``crop_size`` from the image at its own resolution.
* ``scale_width``: scale the width as above, no crop: images keep their aspect ratio.
* ``none``: the image at its own resolution, each side rounded to a multiple of 4.

``scale_width`` and ``none`` give images of different sizes, so they train with batches of one
image. ``crop`` and ``none`` use no image smaller than ``crop_size`` on a side (``crop`` cannot
cut its square from it; the discriminators need a minimum size): the pipeline skips it with a
warning. Sides are rounded to a multiple of 4 (the generators downsample twice): the reference
rounds in ``none`` only and fails on the cycle loss when ``scale_width`` gives a height that is
not a multiple of 4; here ``scale_width`` rounds too. Every resize is PIL's bicubic
(``decode.resize_like_pil``); an image already at its target size is not resized.
"""

import dataclasses

from cyclegan_tf import pixels
from cyclegan_tf.lazy import LazyModule

# Imported on first use: the commands read this module before TensorFlow loads (--help).
tf = LazyModule("tensorflow")

PREPROCESS_MODES = ("resize_and_crop", "scale_width_and_crop", "crop", "scale_width", "none")
# Modes whose training images keep a size of their own: batches of one image.
VARIABLE_SIZE_MODES = ("scale_width", "none")
# Modes that keep the source resolution: the stored image is as large as the decoded file.
SOURCE_RESOLUTION_MODES = ("crop", "none")


def _round_to_multiple(side):
    """``round(side / 4) * 4`` with Python's (and ``tf.round``'s) half-to-even, at least 4."""
    rounded = tf.round(tf.cast(side, tf.float64) / pixels.SIZE_MULTIPLE) * pixels.SIZE_MULTIPLE
    return tf.maximum(tf.cast(rounded, tf.int32), pixels.SIZE_MULTIPLE)


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """One ``--preprocess`` mode with its sizes.

    Attributes:
        mode: str, one of ``PREPROCESS_MODES``.
        load_size: int, the resize (``resize_and_crop``) or the width (``scale_width*``).
        crop_size: int, the random crop, a multiple of 4 (``--image-size``); in ``scale_width``
            the smallest height, in ``none`` the smallest side.
        channels: int, the images' channels (1, 3 or 4). Defaults to 3.
    """

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    channels: int = 3

    def __post_init__(self):
        if self.mode not in PREPROCESS_MODES:
            raise ValueError(
                f"preprocess must be one of {', '.join(PREPROCESS_MODES)}. "
                f"Received: preprocess={self.mode!r}"
            )
        pixels.check_size_multiple("image_size", self.crop_size)
        if self.channels not in pixels.CHANNELS:
            raise ValueError(
                f"channels must be one of {list(pixels.CHANNELS)}. Received: {self.channels!r}"
            )
        resizes = self.mode not in SOURCE_RESOLUTION_MODES
        if resizes and (not isinstance(self.load_size, int) or self.load_size < self.crop_size):
            raise ValueError(
                "load_size must be an integer >= image_size (images are resized to load_size, "
                f"then cropped to image_size). Received: image_size={self.crop_size!r}, "
                f"load_size={self.load_size!r}"
            )

    @property
    def variable_size(self):
        """Whether training images keep sizes of their own (batches of one image)."""
        return self.mode in VARIABLE_SIZE_MODES

    @property
    def crops(self):
        """Whether a random ``crop_size`` square is cut from each image."""
        return "crop" in self.mode

    @property
    def cache_key(self):
        """Names the stored images' geometry: it keys the disk cache's folders."""
        key = self.mode
        if self.mode not in SOURCE_RESOLUTION_MODES:
            key = f"{key}-{self.load_size}-{self.crop_size}"
        return key if self.channels == 3 else f"{key}-c{self.channels}"

    def stored_image_bytes(self):
        """Bytes of one image as stored before the crop, or None when it depends on the file.

        ``scale_width*`` is estimated as a square (landscape images take less, portrait more).
        """
        if self.mode in SOURCE_RESOLUTION_MODES:
            return None
        return self.load_size * self.load_size * self.channels

    def stored_shape(self, source_shape):
        """``[height, width]`` (int32 tensor) an image of ``source_shape`` is resized to.

        Args:
            source_shape: int tensor ``[height, width, ...]`` of the decoded source image.
        """
        height = tf.cast(source_shape[0], tf.int32)
        width = tf.cast(source_shape[1], tf.int32)
        if self.mode == "resize_and_crop":
            return tf.constant([self.load_size, self.load_size], tf.int32)
        if self.mode in ("scale_width_and_crop", "scale_width"):
            # The reference: ``int(max(load_size * oh / ow, crop_size))``.
            scaled = tf.cast(
                tf.floor(self.load_size * tf.cast(height, tf.float64) / tf.cast(width, tf.float64)),
                tf.int32,
            )
            new_height = tf.maximum(scaled, self.crop_size)
            new_width = tf.constant(self.load_size, tf.int32)
            if self.mode == "scale_width":
                new_height, new_width = (
                    _round_to_multiple(new_height),
                    _round_to_multiple(new_width),
                )
            return tf.stack([new_height, new_width])
        if self.mode == "crop":
            return tf.stack([height, width])
        return tf.stack([_round_to_multiple(height), _round_to_multiple(width)])

    def check_stored(self, image):
        """An op that fails when a stored image is smaller than ``crop_size`` on a side.

        Only ``crop`` and ``none`` can meet one (the other modes resize to at least
        ``crop_size``): ``crop`` cannot cut its square from it, and in ``none`` it is the smallest
        size the discriminators answer for. The pipeline then uses another image.
        """
        shape = tf.shape(image)
        return tf.debugging.Assert(
            tf.reduce_all(shape[:2] >= self.crop_size),
            [
                f"an image is smaller than image_size={self.crop_size} on a side; its shape is",
                shape,
            ],
        )

    def jitter(self, image, seed):
        """The random crop (if any) and flip of a stored ``uint8`` image, in [-1, 1].

        Args:
            image: ``uint8`` tensor ``[H, W, channels]``, as ``stored_shape`` says.
            seed: int tensor ``[2]``, the seed of the stateless crop and flip.

        Returns:
            ``float32 [crop_size, crop_size, channels]``, or ``[H, W, channels]`` for the
            variable-size modes.
        """
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        image = tf.cast(image, tf.float32)
        if self.crops:
            image = tf.image.stateless_random_crop(
                image, [self.crop_size, self.crop_size, self.channels], seed=crop_seed
            )
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return pixels.to_model_range(image)
