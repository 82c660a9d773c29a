"""Where the training pipeline keeps images once they are resized to ``load_size``.

A resized image is ``load_size² × 3`` bytes (245 KB at 286 px) whatever the size of its source
file, so a cache of resized images is bounded by the number of images, never by their resolution.
Each store is filled lazily, the first time an image is read; all of them give back exactly the
bytes that were stored, so whether an image comes from the store or from its file never changes
the training batches.

* ``memory``: an in-process hash table (``tf.lookup.experimental.MutableHashTable``).
* ``disk``: one file per image under a folder (the run folder's ``cache/``); survives restarts,
  and the folder is keyed by the domain's fingerprint and ``load_size``, so a changed data set
  never reads stale images.
* ``none``: every read decodes the source file.
* ``auto``: ``memory`` when the resized images of both domains fit ``memory_budget`` bytes,
  else ``none``.
"""

import hashlib
import logging

import tensorflow as tf

from cyclegan_tf import io

logger = logging.getLogger(__name__)

CACHE_MODES = ("auto", "memory", "disk", "none")
# What ``auto`` lets the resized images of both domains take in memory: 1 GiB holds about 2,100
# images at 286 px (about 8,700 at 143 px).
DEFAULT_MEMORY_BUDGET = 1 << 30
# Bumped whenever the stored bytes would change (decoder, resize), so old disk caches are not read.
_FORMAT = "v1"
_SUFFIX = ".tensor"


def resized_bytes(load_size):
    """Bytes of one image resized to ``load_size`` (``uint8``, three channels)."""
    return load_size * load_size * 3


def resolve_cache_mode(mode, num_images, load_size, memory_budget=DEFAULT_MEMORY_BUDGET):
    """The store a ``cache`` option means for a data set of ``num_images`` images.

    Args:
        mode: str, one of ``CACHE_MODES``.
        num_images: int, images of both domains together.
        load_size: int, the side images are resized to.
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
    needed = num_images * resized_bytes(load_size)
    resolved = "memory" if needed <= memory_budget else "none"
    logger.info(
        "Data cache: %s (%d images at %d px take %.2f GB; memory budget %.2f GB).",
        resolved,
        num_images,
        load_size,
        needed / 1e9,
        memory_budget / 1e9,
    )
    return resolved


def _serialized_length(load_size):
    return len(tf.io.serialize_tensor(tf.zeros([load_size, load_size, 3], tf.uint8)).numpy())


class ImageStore:
    """No store: every lookup misses. The base of the stores.

    Args:
        load_size: int, the side of the stored images.
    """

    def __init__(self, load_size):
        self.load_size = load_size
        self._length = _serialized_length(load_size)

    def _lookup(self, index):
        del index
        return tf.constant("")

    def lookup(self, index):
        """``(found, image)`` for an image index; ``image`` is meaningful only when ``found``."""
        stored = self._lookup(index)
        found = tf.equal(tf.strings.length(stored), self._length)
        image = tf.cond(
            found,
            lambda: tf.io.parse_tensor(stored, tf.uint8),
            lambda: tf.zeros([self.load_size, self.load_size, 3], tf.uint8),
        )
        return found, tf.ensure_shape(image, [self.load_size, self.load_size, 3])

    def insert(self, index, image):
        """An op that stores ``image`` (``uint8 [load_size, load_size, 3]``) under ``index``."""
        del index, image
        return tf.no_op()


class MemoryStore(ImageStore):
    """Resized images in an in-process hash table, filled as they are first read."""

    def __init__(self, load_size):
        super().__init__(load_size)
        self._table = tf.lookup.experimental.MutableHashTable(tf.int64, tf.string, "")

    def _lookup(self, index):
        return self._table.lookup(index)

    def insert(self, index, image):
        return self._table.insert(index, tf.io.serialize_tensor(image))


class DiskStore(ImageStore):
    """Resized images as one file each under ``folder``, filled as they are first read.

    The files present when the store is created, and those it writes, are remembered in an
    in-process table, so a missing file is never opened. A file is written in place (TensorFlow
    has no rename op); one cut short by an interrupted run or read while another worker rewrites
    it has the wrong length, counts as missing and is decoded and written again.

    Args:
        folder: str, the store's own folder (created if needed).
        load_size: int, the side of the stored images.
    """

    def __init__(self, folder, load_size):
        super().__init__(load_size)
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
        written = tf.io.write_file(self._path(index), tf.io.serialize_tensor(image))
        with tf.control_dependencies([written]):
            return self._known.insert(index, tf.constant(1, tf.int64))


def disk_store_folder(cache_dir, domain_key, load_size):
    """The folder of one domain's disk store: ``cache_dir/<load_size>px-<key>``."""
    digest = hashlib.sha1(f"{_FORMAT}\0{domain_key}".encode()).hexdigest()[:16]
    return io.join(cache_dir, f"{load_size}px-{digest}")


def make_store(mode, load_size, cache_dir=None, domain_key=""):
    """The store of one domain for a resolved mode (``memory``, ``disk`` or ``none``).

    Args:
        mode: str, a mode ``resolve_cache_mode`` returned.
        load_size: int, the side of the stored images.
        cache_dir: str or None, the folder of the disk stores (needed for ``disk``).
        domain_key: str, identifies the domain's files (their fingerprint) for ``disk``.

    Raises:
        ValueError: for ``disk`` without ``cache_dir``.
    """
    if mode == "memory":
        return MemoryStore(load_size)
    if mode == "disk":
        if not cache_dir:
            raise ValueError("cache='disk' needs a cache_dir. Received: cache_dir=None")
        return DiskStore(disk_store_folder(cache_dir, domain_key, load_size), load_size)
    return ImageStore(load_size)
