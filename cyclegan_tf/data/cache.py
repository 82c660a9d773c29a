"""Where the training pipeline keeps images once they are resized (``preprocess``), before the crop.

A resized RGB image is ``load_size² × 3`` bytes in the resize modes (245 KB at 286 px) whatever the
size of its source file, so a cache of resized images is bounded by the number of images, never by
their resolution (the ``crop`` and ``none`` modes keep the source resolution: their images are as
large as the decoded files). Each store is filled lazily, the first time an image is read; all of
them give back exactly the bytes that were stored, so whether an image comes from the store or from
its file never changes the training batches.

* ``memory``: an in-process hash table (``tf.lookup.experimental.MutableHashTable``).
* ``disk``: one file per image under a folder (the run folder's ``cache/``); survives restarts,
  and the folder is keyed by the domain's fingerprint and the preprocessing, so a changed data set
  never reads stale images.
* ``none``: every read decodes the source file.
* ``auto``: ``memory`` when the resized images of both domains fit ``memory_budget`` bytes,
  else ``none`` (also ``none`` when their size is only known once decoded).
"""

import hashlib
import logging

from cyclegan_tf import io
from cyclegan_tf.lazy import LazyModule

tf = LazyModule("tensorflow")  # the cache modes are options, read without TensorFlow

logger = logging.getLogger(__name__)

CACHE_MODES = ("auto", "memory", "disk", "none")
# What ``auto`` lets the resized images of both domains take in memory: 1 GiB holds about 2,100
# images at 286 px (about 8,700 at 143 px).
DEFAULT_MEMORY_BUDGET = 1 << 30
# Bumped whenever the stored bytes would change (decoder, resize), so old disk caches are not read.
_FORMAT = "v2"
_SUFFIX = ".tensor"
# Ends every stored image: a disk file cut short (an interrupted write) lacks it and is decoded again.
_END = b"\x00cyclegan_tf\x00"


def resolve_cache_mode(mode, num_images, image_bytes, memory_budget=DEFAULT_MEMORY_BUDGET):
    """The store a ``cache`` option means for a data set of ``num_images`` images.

    Args:
        mode: str, one of ``CACHE_MODES``.
        num_images: int, images of both domains together.
        image_bytes: int or None, bytes of one stored image; None when only the decode tells.
        memory_budget: int, bytes ``auto`` may use for ``memory``.

    Returns:
        str, ``"memory"``, ``"disk"`` or ``"none"``.

    Raises:
        ValueError: if ``mode`` is not one of ``CACHE_MODES``.
    """
    if mode not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}. Received: cache={mode!r}")
    if mode != "auto":
        return mode
    if image_bytes is None:
        logger.info(
            "Data cache: none (images keep their source resolution, so their size is unknown "
            "until decoded; choose memory or disk to keep them)."
        )
        return "none"
    needed = num_images * image_bytes
    resolved = "memory" if needed <= memory_budget else "none"
    logger.info(
        "Data cache: %s (%d images of %.2f MB take %.2f GB; memory budget %.2f GB).",
        resolved,
        num_images,
        image_bytes / 1e6,
        needed / 1e9,
        memory_budget / 1e9,
    )
    return resolved


class ImageStore:
    """No store: every lookup misses. The base of the stores.

    Args:
        channels: int, the stored images' channels (1, 3 or 4). Defaults to 3.
    """

    def __init__(self, channels=3):
        self.channels = int(channels)

    def _lookup(self, index):
        del index
        return tf.constant("")

    def lookup(self, index):
        """``(found, image)`` for an image index; ``image`` is meaningful only when ``found``."""
        stored = self._lookup(index)
        length = tf.strings.length(stored)
        tail = tf.strings.substr(stored, tf.maximum(length - len(_END), 0), len(_END))
        found = tf.logical_and(length > len(_END), tf.equal(tail, _END))
        image = tf.cond(
            found,
            lambda: tf.io.parse_tensor(
                tf.strings.substr(stored, 0, tf.maximum(length - len(_END), 0)), tf.uint8
            ),
            lambda: tf.zeros([0, 0, self.channels], tf.uint8),
        )
        return found, tf.ensure_shape(image, [None, None, self.channels])

    def insert(self, index, image):
        """An op that stores ``image`` (``uint8 [H, W, channels]``) under ``index``."""
        del index, image
        return tf.no_op()

    @staticmethod
    def _serialized(image):
        return tf.strings.join([tf.io.serialize_tensor(image), _END])


class MemoryStore(ImageStore):
    """Resized images in an in-process hash table, filled as they are first read."""

    def __init__(self, channels=3):
        super().__init__(channels)
        self._table = tf.lookup.experimental.MutableHashTable(tf.int64, tf.string, "")

    def _lookup(self, index):
        return self._table.lookup(index)

    def insert(self, index, image):
        return self._table.insert(index, self._serialized(image))


class DiskStore(ImageStore):
    """Resized images as one file each under ``folder``, filled as they are first read.

    The files present when the store is created, and those it writes, are remembered in an
    in-process table, so a missing file is never opened. A file is written in place (TensorFlow
    has no rename op); one cut short by an interrupted run or read while another worker rewrites
    it lacks the end mark, counts as missing and is decoded and written again.

    Args:
        folder: str, the store's own folder (created if needed).
        channels: int, the stored images' channels. Defaults to 3.
    """

    def __init__(self, folder, channels=3):
        super().__init__(channels)
        self.folder = folder
        io.makedirs(folder)
        present = [
            int(name[: -len(_SUFFIX)])
            for name in io.list_files(folder, (_SUFFIX,))
            if name[: -len(_SUFFIX)].isdigit()
        ]
        # 1 for an index whose file is there (int64: the tables have no boolean values).
        self._known = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int64, 0)
        if present:
            self._known.insert(tf.constant(present, tf.int64), tf.ones([len(present)], tf.int64))
        logger.info("Disk cache %s: %d images already there.", folder, len(present))

    def _path(self, index):
        name = tf.strings.as_string(index, width=7, fill="0") + _SUFFIX
        return tf.strings.join([self.folder, name], separator="/")

    def _lookup(self, index):
        return tf.cond(
            tf.equal(self._known.lookup(index), 1),
            lambda: tf.io.read_file(self._path(index)),
            lambda: tf.constant(""),
        )

    def insert(self, index, image):
        written = tf.io.write_file(self._path(index), self._serialized(image))
        with tf.control_dependencies([written]):
            return self._known.insert(index, tf.constant(1, tf.int64))


def disk_store_folder(cache_dir, domain_key, geometry):
    """The folder of one domain's disk store: ``cache_dir/<geometry>-<key>``.

    Args:
        cache_dir: str, the folder of the disk stores.
        domain_key: str, identifies the domain's files (their fingerprint).
        geometry: str, names the stored images' sizes (``Preprocess.cache_key``).
    """
    digest = hashlib.sha1(f"{_FORMAT}\0{domain_key}".encode()).hexdigest()[:16]
    return io.join(cache_dir, f"{geometry}-{digest}")


def make_store(mode, geometry, cache_dir=None, domain_key="", channels=3):
    """The store of one domain for a resolved mode (``memory``, ``disk`` or ``none``).

    Args:
        mode: str, a mode ``resolve_cache_mode`` returned.
        geometry: str, names the stored images' sizes (``Preprocess.cache_key``), for ``disk``.
        cache_dir: str or None, the folder of the disk stores (needed for ``disk``).
        domain_key: str, identifies the domain's files (their fingerprint) for ``disk``.
        channels: int, the stored images' channels (part of ``geometry``'s key). Defaults to 3.

    Raises:
        ValueError: for ``disk`` without ``cache_dir``.
    """
    if mode == "memory":
        return MemoryStore(channels)
    if mode == "disk":
        if not cache_dir:
            raise ValueError("cache='disk' needs a cache_dir. Received: cache_dir=None")
        return DiskStore(disk_store_folder(cache_dir, domain_key, geometry), channels)
    return ImageStore(channels)
