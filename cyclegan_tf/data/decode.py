"""Image decoding shared by the training pipeline, the translate command, evaluation and serving.

One decoder, ``decode_image``, serves eager code, ``tf.data`` graphs and exported SavedModel
signatures alike, so a file that validates at load time decodes the same way inside the pipeline and
the server. A JPEG is decoded with libjpeg's accurate integer DCT, as PIL (and so PyTorch code) decodes
it, and turned as its EXIF orientation says, the way image viewers show it: a phone stores a portrait
photo as a landscape image with orientation 6 ("rotate 90 degrees clockwise").
"""

import re

import tensorflow as tf

from cyclegan_tf import io, pixels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CHANNELS = pixels.CHANNELS
# What the first bytes of a file say about its format, for messages about files that do not decode.
FORMAT_NAMES = "JPEG, PNG, BMP, GIF or WebP"


class DataError(ValueError):
    """Bad data input (a missing folder, no readable image, a failed download).

    The message is one line meant for the user; the command-line tools print it as
    ``error: <message>`` and exit with status 2.
    """


# EXIF in a JPEG: an APP1 segment starting "Exif\0\0", then a TIFF header ("II" little-endian or
# "MM" big-endian, the offset of the first IFD) and 12-byte IFD entries: tag, type, count, value.
_EXIF_SEARCH_BYTES = 1 << 17  # the APP segments come first; APP1 holds at most 64 KiB
_MAX_SEGMENTS = 32
_MAX_IFD_ENTRIES = 64
_ORIENTATION_TAG = 0x0112


def exif_orientation(contents):
    """The EXIF orientation of a JPEG (1 to 8), or 1 for other files and JPEGs without one.

    Written in TensorFlow ops, so it runs eagerly, in ``tf.data`` and inside an exported SavedModel
    (TF Serving included). Malformed EXIF data gives 1.

    Args:
        contents: scalar ``tf.string`` tensor (or ``bytes``), the encoded file.

    Returns:
        ``tf.int32`` scalar.
    """
    return _exif_orientation_function(tf.convert_to_tensor(contents, dtype=tf.string))


def _exif_orientation_ops(contents):
    """The ops of ``exif_orientation`` (a few hundred: the segment loop and the IFD scan)."""
    head = tf.strings.substr(contents, 0, _EXIF_SEARCH_BYTES)
    # Zero padding: reads past the end see zeros, which match no marker and end every loop.
    data = tf.concat(
        [tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32), tf.zeros([64], tf.int32)], 0
    )
    size = tf.size(data)

    def byte(index):
        return tf.gather(data, tf.clip_by_value(index, 0, size - 1))

    def big_endian(index, count):
        value = tf.zeros_like(index)
        for offset in range(count):
            value = value * 256 + byte(index + offset)
        return value

    exif = tf.constant([0x45, 0x78, 0x69, 0x66, 0, 0])  # "Exif\0\0"

    def is_exif(position):
        return tf.reduce_all(tf.equal(byte(position + 4 + tf.range(6)), exif))

    def searching(position, tiff, step):
        marker = byte(position + 1)
        return (
            (tiff < 0)
            & (step < _MAX_SEGMENTS)
            & tf.equal(byte(position), 0xFF)
            & (marker >= 0xC0)
            & tf.not_equal(marker, 0xDA)  # start of scan: the image data, no EXIF after it
            & tf.not_equal(marker, 0xD9)
        )

    def next_segment(position, tiff, step):
        found = tf.equal(byte(position + 1), 0xE1) & is_exif(position)
        tiff = tf.where(found, position + 10, tiff)
        return position + 2 + big_endian(position + 2, 2), tiff, step + 1

    is_jpeg = tf.equal(byte(0), 0xFF) & tf.equal(byte(1), 0xD8)
    _, tiff, _ = tf.while_loop(
        searching, next_segment, (tf.constant(2), tf.constant(-1), tf.constant(0))
    )
    little = tf.equal(byte(tiff), 0x49)  # "II"

    def unsigned(index, count):
        forward = big_endian(index, count)
        backward = tf.zeros_like(index)
        for offset in reversed(range(count)):
            backward = backward * 256 + byte(index + offset)
        return tf.where(little, backward, forward)

    ifd = tiff + unsigned(tiff + 4, 4)
    entries = ifd + 2 + 12 * tf.range(_MAX_IFD_ENTRIES)
    present = tf.range(_MAX_IFD_ENTRIES) < unsigned(ifd, 2)
    matches = present & tf.equal(unsigned(entries, 2), _ORIENTATION_TAG)
    values = unsigned(entries + 8, 2)
    orientation = tf.reduce_max(tf.where(matches, values, tf.zeros_like(values)))
    valid = is_jpeg & (tiff >= 0) & (orientation >= 1) & (orientation <= 8)
    return tf.where(valid, orientation, 1)


# Traced once per process and called from every graph that decodes (each pipeline map, each exported
# signature) and from eager code: building the ops again in each graph took 0.5 s per graph, several
# seconds per training run.
_exif_orientation_function = tf.function(
    _exif_orientation_ops, input_signature=[tf.TensorSpec([], tf.string)], autograph=False
)


def apply_orientation(image, orientation):
    """Turns an ``[H, W, C]`` image as EXIF ``orientation`` (1 to 8) says, to how viewers show it.

    Orientations 5 to 8 swap height and width (6: rotate 90 degrees clockwise, 8: counter-clockwise).
    """
    return _apply_orientation_function(tf.convert_to_tensor(image), tf.cast(orientation, tf.int32))


def _apply_orientation_ops(image, orientation):
    """The ops of ``apply_orientation``: one branch per orientation."""

    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,  # 1: as stored
        lambda: tf.reverse(image, [1]),  # 2: mirrored left-right
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.reverse(image, [0]),  # 4: mirrored top-bottom
        lambda: transpose(image),  # 5: transposed
        lambda: tf.image.rot90(image, 3),  # 6: rotate 90 clockwise
        lambda: tf.image.rot90(transpose(image), 2),  # 7: transposed across the other diagonal
        lambda: tf.image.rot90(image, 1),  # 8: rotate 90 counter-clockwise
    ]
    index = tf.clip_by_value(orientation - 1, 0, 7)
    return tf.switch_case(index, branches)


# As ``_exif_orientation_function``: traced once per image dtype and rank, not once per graph.
_apply_orientation_function = tf.function(
    _apply_orientation_ops, reduce_retracing=True, autograph=False
)


def _oriented_shape(shape, orientation):
    """``[height, width]`` as shown, from the stored ``shape`` (5 to 8 swap the two)."""
    swapped = tf.cast(orientation, tf.int32) >= 5
    height, width = shape[0], shape[1]
    return tf.where(swapped, tf.stack([width, height]), tf.stack([height, width]))


def check_channels(channels):
    """Raises ``ValueError`` unless ``channels`` is one of ``CHANNELS``; returns it as an int."""
    if isinstance(channels, bool) or channels not in CHANNELS:
        raise ValueError(
            f"channels must be one of {list(CHANNELS)}. Received: channels={channels!r}"
        )
    return int(channels)


def to_channels(image, channels):
    """An RGB or RGBA ``uint8`` image converted to ``channels`` as PIL's ``Image.convert`` does.

    1: PIL's ``"L"``, the ITU-R 601-2 luma ``(19595 R + 38470 G + 7471 B + 2**15) >> 16`` (what the
    official releases' ``transforms.Grayscale(1)`` gives after ``convert("RGB")``); 3: RGB (alpha
    dropped); 4: RGBA (an RGB image opaque).

    Args:
        image: ``uint8`` tensor ``[H, W, 3]`` or ``[H, W, 4]``.
        channels: int, one of ``CHANNELS``.

    Returns:
        ``uint8`` tensor ``[H, W, channels]``.
    """
    channels = check_channels(channels)
    if image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an RGB or RGBA image. Received: shape={image.shape}")
    if channels == 4:
        if image.shape[-1] == 4:
            return image
        opaque = tf.fill(tf.concat([tf.shape(image)[:2], [1]], 0), tf.constant(255, tf.uint8))
        return tf.concat([image, opaque], axis=-1)
    rgb = image[..., :3]
    if channels == 3:
        return rgb
    weights = tf.constant([19595, 38470, 7471], tf.int32)
    luma = tf.reduce_sum(tf.cast(rgb, tf.int32) * weights, axis=-1, keepdims=True) + 0x8000
    return tf.cast(tf.bitwise.right_shift(luma, 16), tf.uint8)


def decode_image(contents, channels=3):
    """Decodes JPEG, PNG, BMP, GIF or WebP bytes to a ``uint8`` image, as viewers show it.

    A JPEG (recognised by its bytes, whatever its file name) is decoded with libjpeg's accurate DCT,
    giving the pixels PIL gives, and turned as its EXIF orientation says (``exif_orientation``).
    Images are converted to ``channels`` as PIL converts them (``to_channels``): by default RGB,
    grayscale repeated over three channels and alpha dropped. 16-bit PNGs are scaled to 8 bits
    (65535 → 255) and only the first frame of an animated GIF is kept. Works eagerly, inside
    ``tf.data.Dataset.map`` and in an exported SavedModel.

    Args:
        contents: scalar ``tf.string`` tensor (or ``bytes``), the encoded file.
        channels: int, 1 (grayscale), 3 (RGB) or 4 (RGBA). Defaults to 3.

    Returns:
        ``tf.uint8`` tensor of shape ``[H, W, channels]`` (static shape ``[None, None, channels]``).

    Raises:
        tf.errors.InvalidArgumentError: if the bytes are not a supported, complete image.
    """
    channels = check_channels(channels)
    contents = tf.convert_to_tensor(contents, dtype=tf.string)
    decoded = 4 if channels == 4 else 3

    def other():
        # ``dtype=uint8`` makes 16-bit PNGs go through ``convert_image_dtype`` (a scale, not a cast).
        return tf.io.decode_image(
            contents, channels=decoded, dtype=tf.uint8, expand_animations=False
        )

    def jpeg():
        return to_channels(_decode_jpeg(contents), decoded)

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image = apply_orientation(
        tf.ensure_shape(image, [None, None, decoded]), exif_orientation(contents)
    )
    image = to_channels(tf.ensure_shape(image, [None, None, decoded]), channels)
    return tf.ensure_shape(image, [None, None, channels])


def _decode_jpeg(contents, ratio=1):
    """Decodes JPEG bytes to RGB ``uint8`` as PIL does: libjpeg's accurate integer DCT (``ISLOW``).

    TensorFlow's default (``tf.io.decode_image``, or ``tf.io.decode_jpeg`` without ``dct_method``)
    is the fast integer DCT, a few levels away from PIL's decode (up to 5, 1.0 on average, on a
    textured 1200x900 photo); the accurate DCT gives PIL's pixels exactly, so a generator sees what
    it sees under PyTorch. Its cost is in docs/performance.md. The EXIF orientation is not applied.

    Args:
        contents: scalar ``tf.string`` tensor (or ``bytes``), the encoded JPEG.
        ratio: int, 1 (default), 2, 4 or 8: decode at 1/``ratio`` scale in the DCT domain.

    Returns:
        ``tf.uint8`` tensor of shape ``[H, W, 3]``.

    Raises:
        tf.errors.InvalidArgumentError: if the bytes are not a complete JPEG.
    """
    return tf.io.decode_jpeg(contents, channels=3, ratio=ratio, dct_method="INTEGER_ACCURATE")


# The JPEG ``ratio`` (DCT-domain downscale: 1/2, 1/4, 1/8) is used only while the decoded image
# keeps at least this many times the target side: measured on 1-3 MP photos resized to 286 px, the
# result then stays within 0.65 levels (mean absolute difference, PSNR >= 47 dB) of a full decode
# followed by PIL's bicubic resize, and decoding takes half the time.
_MIN_DCT_OVERSAMPLING = 2
_DCT_RATIOS = (1, 2, 4, 8)


def _dct_ratio_index(source_shape, target_shape):
    """Index into ``_DCT_RATIOS`` of the strongest downscale that keeps quality (see above)."""
    source = tf.cast(source_shape[:2], tf.int64)
    needed = _MIN_DCT_OVERSAMPLING * tf.cast(target_shape, tf.int64)
    return tf.add_n(
        [tf.cast(tf.reduce_all(source >= needed * ratio), tf.int32) for ratio in _DCT_RATIOS[1:]]
    )


def _decode_jpeg_for_shape(contents, target_shape):
    def decode_at(ratio):
        return lambda: _decode_jpeg(contents, ratio)

    index = _dct_ratio_index(tf.io.extract_jpeg_shape(contents), target_shape)
    return tf.switch_case(index, [decode_at(ratio) for ratio in _DCT_RATIOS])


def decode_to_shape(contents, shape_for, channels=3):
    """Decodes an image and resizes it, as PIL's bicubic resize does, to a shape of its own.

    This is the decode of the training pipeline. JPEGs much larger than their target are decoded
    at 1/2, 1/4 or 1/8 scale in the DCT domain first, which halves the decode time of 1-3 MP
    photos and stays within 0.65 levels on average of the full decode (PSNR >= 47 dB, measured
    at 286 px).

    Args:
        contents: scalar ``tf.string`` tensor, the encoded file (JPEG, PNG, BMP, GIF or WebP).
        shape_for: a function from the source image's shape as shown (int tensor ``[H, W, ...]``,
            after the EXIF orientation) to the ``[height, width]`` to resize to (e.g.
            ``preprocess.Preprocess.stored_shape``).
        channels: int, 1, 3 or 4: the image is converted (``to_channels``) before it is resized,
            as the reference converts before its transforms. Defaults to 3.

    Returns:
        ``tf.uint8`` tensor ``[height, width, channels]``.

    Raises:
        tf.errors.InvalidArgumentError: if the bytes are not a supported, complete image.
    """
    contents = tf.convert_to_tensor(contents, dtype=tf.string)

    def jpeg():
        orientation = exif_orientation(contents)
        stored = tf.io.extract_jpeg_shape(contents)
        target = shape_for(_oriented_shape(stored, orientation))
        # The DCT scale is chosen on the stored image, against the target turned back the same way.
        stored_target = _oriented_shape(target, orientation)
        image = _decode_jpeg_for_shape(contents, stored_target)
        image = tf.ensure_shape(apply_orientation(image, orientation), [None, None, 3])
        image = to_channels(image, channels)
        return resize_like_pil(image, target)

    def other():
        image = decode_image(contents, channels)
        return resize_like_pil(image, shape_for(tf.shape(image)))

    return tf.cond(tf.io.is_jpeg(contents), jpeg, other)


def decode_resized(contents, size, channels=3):
    """Decodes an image and resizes it to ``size`` × ``size`` as PIL's bicubic resize does.

    The reference's ``transforms.Resize([load_size, load_size], BICUBIC)`` (antialiased when
    shrinking, rounded and clipped to ``uint8``), through ``decode_to_shape``.

    Args:
        contents: scalar ``tf.string`` tensor, the encoded file (JPEG, PNG, BMP, GIF or WebP).
        size: int, the side of the output.
        channels: int, 1, 3 or 4 (``to_channels``). Defaults to 3.

    Returns:
        ``tf.uint8`` tensor ``[size, size, channels]``.

    Raises:
        tf.errors.InvalidArgumentError: if the bytes are not a supported, complete image.
    """
    image = decode_to_shape(contents, lambda _: tf.constant([size, size], tf.int32), channels)
    return tf.ensure_shape(image, [size, size, channels])


def resize_like_pil(image, size):
    """Resizes as PIL's ``Image.resize(..., BICUBIC)`` does; an image already that size is kept.

    Antialiased (PIL widens the bicubic kernel when shrinking), then rounded and clipped to
    ``uint8`` as PIL returns it: measured against PIL on 1-3 MP photos resized to 286 px, within
    0.1 levels on average. Without antialiasing the difference is 5 levels (PSNR 29 dB).

    Each channel is resized on its own (an RGBA image too: PIL would premultiply the alpha).

    Args:
        image: ``uint8`` (or float in [0, 255]) tensor ``[H, W, C]``.
        size: int (a square side), or ``[height, width]`` (ints or an int tensor).

    Returns:
        ``tf.uint8`` tensor ``[height, width, C]``.
    """
    square = isinstance(size, int)
    shape = tf.constant([size, size], tf.int32) if square else tf.cast(size, tf.int32)

    def to_uint8(pixels):
        pixels = tf.clip_by_value(tf.cast(pixels, tf.float32), 0.0, 255.0)
        return tf.cast(tf.round(pixels), tf.uint8)

    unchanged = tf.reduce_all(tf.equal(tf.shape(image)[:2], shape))
    image = tf.cond(
        unchanged,
        lambda: to_uint8(image),
        lambda: to_uint8(tf.image.resize(image, shape, method="bicubic", antialias=True)),
    )
    channels = image.shape[-1]
    return tf.ensure_shape(image, [size, size, channels] if square else [None, None, channels])


def read_image_file(path, channels=3):
    """Reads and decodes one image file eagerly.

    Args:
        path: str, the file (local, ``gs://``, ``ram://``).
        channels: int, 1, 3 or 4 (``decode_image``). Defaults to 3.

    Returns:
        ``np.ndarray`` of dtype ``uint8`` and shape ``[H, W, channels]``.

    Raises:
        DataError: if the file cannot be read, or is not a supported, complete image.
    """
    try:
        contents = io.read_bytes(path)
    except tf.errors.NotFoundError:
        raise DataError(f"no such image file: {path}") from None
    except tf.errors.OpError as error:
        raise DataError(f"cannot read image {path}: {_op_error_reason(error)}") from None
    try:
        return decode_image(contents, channels).numpy()
    except tf.errors.InvalidArgumentError as error:
        raise DataError(f"cannot decode image {path}: {_op_error_reason(error)}") from None


def _op_error_reason(error):
    """The human part of a TensorFlow op error ("Invalid PNG data, size 40")."""
    message = error.message.splitlines()[0] if error.message else ""
    message = re.sub(r"^\{\{[^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:.*$", "", message)
    return message or "not a supported image"


_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_GIF_STARTS = (b"GIF87a", b"GIF89a")
HEADER_BYTES = 16  # what ``header_problem`` needs from each end of a file
SUSPECT = "suspect"


def header_problem(head, tail, size):
    """A cheap check of an image file from its first and last bytes, without decoding it.

    Args:
        head: bytes, the first ``HEADER_BYTES`` bytes of the file (fewer if it is shorter).
        tail: bytes, the last ``HEADER_BYTES`` bytes.
        size: int, the file size in bytes.

    Returns:
        None if the file looks complete; ``SUSPECT`` if it starts like an image but does not end
        like one (truncated, or trailing bytes: only a full decode can tell); otherwise a short
        reason such as ``"empty file"``.
    """
    if size == 0:
        return "empty file"
    if head.startswith(_JPEG_START):
        complete = _JPEG_END in tail
    elif head.startswith(_PNG_START):
        complete = tail.endswith(_PNG_END)
    elif head.startswith(_GIF_STARTS):
        complete = tail.endswith(b";")
    elif head.startswith(b"BM") and len(head) >= 6:
        complete = int.from_bytes(head[2:6], "little") == size
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        complete = int.from_bytes(head[4:8], "little") + 8 == size
    else:
        return f"not a {FORMAT_NAMES} file"
    return None if complete else SUSPECT


def is_image_file(name):
    """Whether a file name has one of ``IMAGE_EXTENSIONS`` (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_image_files(folder):
    """The image files directly inside a folder, sorted by name.

    Args:
        folder: str, the folder (local, ``gs://``, ``ram://``; not searched recursively).

    Returns:
        A sorted list of paths (``folder`` joined with each file name) whose extension is one of
        ``IMAGE_EXTENSIONS``, case-insensitive.
    """
    return [io.join(folder, name) for name in io.list_files(folder, IMAGE_EXTENSIONS)]


# The networks' [-1, 1] to ``uint8`` pixels, under the data package's name.
image_to_uint8 = pixels.to_uint8
