"""The one place that touches user paths: local folders, ``gs://`` buckets and ``ram://`` alike.

Everything goes through ``tf.io.gfile``, so a run folder, a data folder or an export base path may live on
any filesystem TensorFlow knows (local disks, Google Cloud Storage, TensorFlow's in-process ``ram://``).

Atomic writes: on a local disk a file is written next to its destination and renamed into place, so a
reader sees the old file or the new one, never half of one. Object stores (``gs://``) have no rename, but
an object only becomes visible once its upload completes, so writing the object directly gives the same
guarantee for one file. Finished folders are moved into place with ``move``: renamed where the filesystem can,
copied file by file elsewhere, with a marker file written last (see its docstring).

Example:
    >>> from cyclegan_tf import io
    >>> io.write_text("ram://demo/config.json", "{}")
    >>> io.read_text("ram://demo/config.json")
    '{}'
"""

import concurrent.futures
import contextlib
import os
import posixpath
import re
import time

import tensorflow as tf

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Filesystems whose rename is a cheap, atomic metadata operation.
_RENAMING_SCHEMES = ("", "file://", "ram://")
# Files stat-ed at once on object stores, where each stat is a network round trip.
_STAT_THREADS = 16


def scheme(path):
    """The ``scheme://`` prefix of a path (``"gs://"``, ``"ram://"``), or ``""`` for a local path."""
    match = _SCHEME.match(str(path))
    return match.group(0) if match else ""


def is_local(path):
    """Whether ``path`` is on the local filesystem (no ``scheme://`` prefix, or ``file://``)."""
    return scheme(path) in ("", "file://")


def join(path, *parts):
    """Joins path components with ``/`` (the separator of every supported filesystem)."""
    join_fn = os.path.join if is_local(path) else posixpath.join
    return join_fn(path, *parts)


def basename(path):
    """The last component of ``path``, ignoring a trailing ``/``."""
    return posixpath.basename(str(path).rstrip("/"))


def dirname(path):
    """The folder holding ``path`` (``""`` for a bare name)."""
    return posixpath.dirname(str(path).rstrip("/"))


def normalize(path):
    """``path`` without redundant separators: ``os.path.normpath`` locally, trailing ``/`` dropped elsewhere."""
    return os.path.normpath(path) if is_local(path) else str(path).rstrip("/")


def absolute(path):
    """An absolute local path (``os.path.abspath``); other filesystems' paths are absolute already."""
    return os.path.abspath(path) if is_local(path) else str(path)


def stem(path):
    """The file name without its extension: ``"photos/apple.jpg"`` → ``"apple"``."""
    return os.path.splitext(basename(path))[0]


def exists(path):
    """Whether a file or folder exists at ``path``."""
    return tf.io.gfile.exists(path)


def isdir(path):
    """Whether ``path`` is a folder."""
    return tf.io.gfile.isdir(path)


def isfile(path):
    """Whether ``path`` is a file (exists and is not a folder)."""
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def listdir(path):
    """The sorted entry names of a folder (without a trailing ``/`` on sub-folders)."""
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def _has_extension(name, extensions):
    return not extensions or name.lower().endswith(tuple(extensions))


def list_files(folder, extensions=()):
    """The names of the files directly in a folder (sub-folders left out), sorted.

    Args:
        folder: str, the folder.
        extensions: iterable of str, lower-case endings such as ``(".jpg", ".png")``; only names
            ending with one of them (case-insensitive) are listed. Empty: every file.

    Returns:
        A sorted list of file names.
    """
    return [name for name, _, _ in list_file_stats(folder, extensions, with_stats=False)]


def list_file_stats(folder, extensions=(), with_stats=True):
    """``[(name, size, mtime_ns)]`` of the files directly in a folder, sorted by name.

    One directory read on a local disk; on object stores, where a listing marks sub-folders with a
    trailing ``/`` and each stat is a round trip, the files are stat-ed in parallel.

    Args:
        folder: str, the folder.
        extensions: iterable of str, as in ``list_files``.
        with_stats: bool, False gives ``(name, None, None)`` without stat-ing object-store files.

    Returns:
        A sorted list of ``(name, size in bytes, modification time in ns)``.
    """
    if is_local(folder):
        with os.scandir(folder.removeprefix("file://")) as entries:
            found = []
            for entry in entries:
                if _has_extension(entry.name, extensions) and entry.is_file():
                    info = entry.stat() if with_stats else None
                    found.append((entry.name, info and info.st_size, info and info.st_mtime_ns))
        return sorted(found)
    names = sorted(
        name
        for name in tf.io.gfile.listdir(folder)
        if not name.endswith("/") and _has_extension(name, extensions)
    )

    def stat(name):
        if not with_stats and not can_rename(folder):
            return name, None, None
        try:
            info = tf.io.gfile.stat(join(folder, name))
        except tf.errors.NotFoundError:  # Deleted since the listing.
            return None
        if info.is_directory:
            return None
        return (name, info.length, info.mtime_nsec) if with_stats else (name, None, None)

    with concurrent.futures.ThreadPoolExecutor(_STAT_THREADS) as pool:
        return [entry for entry in pool.map(stat, names) if entry is not None]


def makedirs(path):
    """Creates a folder and its parents; an existing folder is fine."""
    tf.io.gfile.makedirs(path)


def size(path):
    """The size of a file in bytes."""
    return tf.io.gfile.stat(path).length


def mtime_ns(path):
    """The modification time of a file in nanoseconds, or None if it does not exist."""
    try:
        return tf.io.gfile.stat(path).mtime_nsec
    except tf.errors.NotFoundError:
        return None


def remove(path):
    """Deletes a file; a missing file is fine."""
    with contextlib.suppress(tf.errors.NotFoundError):
        tf.io.gfile.remove(path)


def rmtree(path):
    """Deletes a folder and everything in it; a missing folder is fine."""
    with contextlib.suppress(tf.errors.NotFoundError):
        tf.io.gfile.rmtree(path)


def open_file(path, mode="r"):
    """Opens a file for reading or writing (a ``tf.io.gfile.GFile``, usable as a context manager)."""
    return tf.io.gfile.GFile(path, mode)


def read_bytes(path):
    """The contents of a file as bytes."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def read_text(path):
    """The contents of a UTF-8 text file."""
    return read_bytes(path).decode("utf-8")


def temporary_sibling(path):
    """A hidden, unique name next to ``path`` for a write that is renamed into place afterwards."""
    return join(dirname(path) or ".", f".{basename(path)}.tmp-{os.getpid()}-{time.monotonic_ns()}")


def write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (see the module docstring); creates the folder."""
    folder = dirname(path)
    if folder:
        makedirs(folder)
    if not can_rename(path):
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    tmp = temporary_sibling(path)
    try:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        remove(tmp)


def write_text(path, text):
    """Writes a UTF-8 text file atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_output(path):
    """Yields a path to write instead of ``path``; it replaces ``path`` when the block succeeds.

    For writers that want a file name rather than bytes (``keras.Model.save``, ``np.save``). On a local
    disk or ``ram://`` the temporary file is renamed into place; on object stores the file is written to a
    local temporary file and uploaded in one piece.

    Example:
        >>> with atomic_output("runs/a/models/netG_A2B.keras") as tmp:  # doctest: +SKIP
        ...     model.save(tmp)
    """
    import tempfile

    folder = dirname(path)
    if folder:
        makedirs(folder)
    suffix = os.path.splitext(path)[1]
    if can_rename(path):
        tmp = f"{temporary_sibling(path)}{suffix}"
        try:
            yield tmp
            tf.io.gfile.rename(tmp, path, overwrite=True)
        finally:
            remove(tmp)
        return
    handle, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(handle)
    try:
        yield tmp
        tf.io.gfile.copy(tmp, path, overwrite=True)
    finally:
        remove(tmp)


def can_rename(path):
    """Whether the filesystem of ``path`` renames atomically (local disks, ``ram://``; not ``gs://``)."""
    return scheme(path) in _RENAMING_SCHEMES


def copy(source, destination, overwrite=False):
    """Copies one file (across filesystems too)."""
    folder = dirname(destination)
    if folder:
        makedirs(folder)
    tf.io.gfile.copy(source, destination, overwrite=overwrite)


def copytree(source, destination):
    """Copies a folder's files and sub-folders into ``destination`` (created if missing)."""
    makedirs(destination)
    for name in listdir(source):
        src, dst = join(source, name), join(destination, name)
        if isdir(src):
            copytree(src, dst)
        else:
            tf.io.gfile.copy(src, dst, overwrite=True)


def move(source, destination, last_file=None):
    """Moves a finished file or folder to ``destination``, which must not exist.

    Where the filesystem renames (local disks; files on ``ram://``) it appears at once. Elsewhere
    (``gs://``, folders on ``ram://``) a folder is copied file by file with ``last_file`` (a path relative to the folder, e.g.
    ``saved_model.pb``) copied last, so a reader that waits for ``last_file`` never sees a partial folder;
    the source is deleted afterwards.

    Args:
        source: str, the finished file or folder.
        destination: str, where it should appear.
        last_file: str or None, for folders: the file whose presence marks the folder complete.
    """
    same_filesystem = scheme(source) == scheme(destination)
    if not isdir(source):
        if can_rename(destination) and same_filesystem:
            tf.io.gfile.rename(source, destination)
        else:
            copy(source, destination)
            remove(source)
        return
    # ram:// renames a folder's name but not its files, so only local folders are renamed.
    if is_local(destination) and same_filesystem:
        tf.io.gfile.rename(source, destination)
        return
    files = sorted(_relative_files(source))
    if last_file in files:
        files.remove(last_file)
        files.append(last_file)
    for relative in files:
        copy(join(source, relative), join(destination, relative), overwrite=True)
    rmtree(source)


def _relative_files(folder, prefix=""):
    for name in listdir(folder):
        path = join(folder, name)
        relative = posixpath.join(prefix, name) if prefix else name
        if isdir(path):
            yield from _relative_files(path, relative)
        else:
            yield relative


@contextlib.contextmanager
def local_copy(path):
    """Yields a local file with the contents of ``path`` (``path`` itself when it is local).

    For readers that need a real file (PIL, h5py); a remote file is downloaded to a temporary file that
    is deleted afterwards.
    """
    if is_local(path):
        yield path
        return
    import tempfile

    handle, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1])
    os.close(handle)
    try:
        tf.io.gfile.copy(path, tmp, overwrite=True)
        yield tmp
    finally:
        os.remove(tmp)
