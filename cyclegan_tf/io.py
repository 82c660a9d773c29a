"""The one place that touches user paths: local folders, ``gs://`` buckets and ``ram://`` alike.

Everything goes through ``tf.io.gfile``, so a run folder, a data folder or an export base path may live on
any filesystem TensorFlow knows (local disks, Google Cloud Storage, TensorFlow's in-process ``ram://``).

Atomic writes: on a local disk a file is written next to its destination and renamed into place, so a
reader sees the old file or the new one, never half of one. Object stores (``gs://``) have no rename, but
an object only becomes visible once its upload completes, so writing the object directly gives the same
guarantee for one file. Finished folders are moved into place with ``move``: renamed where the filesystem can,
copied file by file elsewhere, with a marker file written last (see its docstring).

Durable writes (``durable=True``, what a training run uses for its state): on a local disk the new file is
also flushed and fsynced before the rename, and its folder fsynced after it, so that once the call returns
the new file survives a power cut, and before it returns a power cut leaves the old file. An object store
acknowledges an upload only once the object is stored, so there the atomic write is durable already.

A process lock (``exclusive_lock``) keeps one writer per folder: an ``fcntl`` lock on a local disk, which
the kernel releases whatever way the process ends; elsewhere a lock object with a heartbeat.

Example:
    >>> from cyclegan_tf import io
    >>> io.write_text("ram://demo/config.json", "{}")
    >>> io.read_text("ram://demo/config.json")
    '{}'
"""

import concurrent.futures
import contextlib
import fnmatch
import os
import posixpath
import re
import shutil
import time

from cyclegan_tf.lazy import LazyModule

# Imported on first use: the commands read this module before TensorFlow loads (--help).
tf = LazyModule("tensorflow")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Filesystems whose rename is a cheap, atomic metadata operation.
_RENAMING_SCHEMES = ("", "file://", "ram://")
# Files stat-ed at once on object stores, where each stat is a network round trip.
_STAT_THREADS = 16
# What ``temporary_sibling`` names look like: ``.<name>.tmp-<pid>-<ns>[.ext]``.
_TEMPORARY = re.compile(r"^\..+\.tmp-\d+-\d+(\.[^/]*)?$")


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


def free_bytes(path):
    """Bytes free on the local filesystem of ``path`` (or of its nearest existing parent).

    None for other filesystems: object stores have no such limit.
    """
    if not is_local(path):
        return None
    folder = os.path.abspath(_local(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return shutil.disk_usage(folder).free


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


def endings(path):
    """Every ending of a file's name: ``".weights.h5"`` for ``state.weights.h5``, not only ``".h5"``.

    A temporary file keeps them all: Keras tells its weights files from legacy HDF5 files by them.
    """
    name = basename(path).lstrip(".")
    return "." + name.split(".", 1)[1] if "." in name else ""


def is_temporary(name):
    """Whether a file or folder name is one of ``temporary_sibling``'s (what a killed write leaves)."""
    return bool(_TEMPORARY.match(name))


def _local(path):
    return str(path).removeprefix("file://")


def _fsync_path(path):
    """Flushes a local file or folder to the disk (a folder: its entries, e.g. a rename)."""
    descriptor = os.open(_local(path), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(path):
    """Makes the entries of a local folder durable (after a rename or delete in it); elsewhere a no-op."""
    if is_local(path):
        _fsync_path(path or ".")


def _sync_tree(path):
    """Flushes every file and folder under a local path to the disk (before a finished folder is renamed in)."""
    if not os.path.isdir(_local(path)):
        _fsync_path(path)
        return
    for folder, _, files in os.walk(_local(path)):
        for name in files:
            _fsync_path(os.path.join(folder, name))
        _fsync_path(folder)


def write_bytes(path, data, durable=False):
    """Writes ``data`` to ``path`` atomically (see the module docstring); creates the folder.

    Args:
        path: str, the file.
        data: bytes.
        durable: bool, also make it survive a power cut before returning (fsync; see the module
            docstring). Defaults to False.
    """
    folder = dirname(path)
    if folder:
        makedirs(folder)
    if durable:
        crash_point("before", path)
    if not can_rename(path):
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
    elif durable and is_local(path):
        with _naming(path):
            _write_local_durably(path, data)
    else:
        tmp = temporary_sibling(path)
        try:
            with tf.io.gfile.GFile(tmp, "wb") as f:
                f.write(data)
            tf.io.gfile.rename(tmp, path, overwrite=True)
        finally:
            remove(tmp)
    if durable:
        crash_point("after", path)


@contextlib.contextmanager
def _naming(path):
    """Adds ``path`` to an ``OSError`` that names no file (a full disk: ``[Errno 28] ...: 'path'``)."""
    try:
        yield
    except OSError as error:
        if error.filename or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror or str(error), path) from error


def _write_local_durably(path, data):
    tmp = _local(temporary_sibling(path))
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, _local(path))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    sync_folder(dirname(path) or ".")


def write_text(path, text, durable=False):
    """Writes a UTF-8 text file atomically (durably with ``durable=True``, see ``write_bytes``)."""
    write_bytes(path, text.encode("utf-8"), durable=durable)


@contextlib.contextmanager
def atomic_output(path, durable=False):
    """Yields a path to write instead of ``path``; it replaces ``path`` when the block succeeds.

    For writers that want a file name rather than bytes (``keras.Model.save``, ``np.save``). On a local
    disk or ``ram://`` the temporary file is renamed into place; on object stores the file is written to a
    local temporary file and uploaded in one piece.

    Args:
        path: str, the file to write.
        durable: bool, fsync the new file before the rename and the folder after it (local disks).
            Defaults to False.

    Example:
        >>> with atomic_output("runs/a/models/netG_A2B.keras") as tmp:  # doctest: +SKIP
        ...     model.save(tmp)
    """
    import tempfile

    folder = dirname(path)
    if folder:
        makedirs(folder)
    suffix = endings(path)
    if durable:
        crash_point("before", path)
    if can_rename(path):
        tmp = f"{temporary_sibling(path)}{suffix}"
        try:
            with _naming(path):
                yield tmp
                if durable and is_local(path):
                    _fsync_path(tmp)
            tf.io.gfile.rename(tmp, path, overwrite=True)
        finally:
            remove(tmp)
        if durable:
            sync_folder(folder or ".")
    else:
        handle, tmp = tempfile.mkstemp(suffix=suffix)
        os.close(handle)
        try:
            yield tmp
            tf.io.gfile.copy(tmp, path, overwrite=True)
        finally:
            remove(tmp)
    if durable:
        crash_point("after", path)


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


def move(source, destination, last_file=None, durable=False):
    """Moves a finished file or folder to ``destination``, which must not exist.

    Where the filesystem renames (local disks; files on ``ram://``) it appears at once. Elsewhere
    (``gs://``, folders on ``ram://``) a folder is copied file by file with ``last_file`` (a path relative to the folder, e.g.
    ``saved_model.pb``) copied last, so a reader that waits for ``last_file`` never sees a partial folder;
    the source is deleted afterwards.

    Args:
        source: str, the finished file or folder.
        destination: str, where it should appear.
        last_file: str or None, for folders: the file whose presence marks the folder complete.
        durable: bool, on a local disk fsync every file of ``source`` before the rename and the
            folder of ``destination`` after it, so the moved files survive a power cut once this
            returns. Defaults to False.
    """
    same_filesystem = scheme(source) == scheme(destination)
    if durable:
        crash_point("before", destination)
        if is_local(source):
            _sync_tree(source)
    if not isdir(source):
        if can_rename(destination) and same_filesystem:
            tf.io.gfile.rename(source, destination)
        else:
            copy(source, destination)
            remove(source)
    elif is_local(destination) and same_filesystem:
        # ram:// renames a folder's name but not its files, so only local folders are renamed.
        tf.io.gfile.rename(source, destination)
    else:
        files = sorted(_relative_files(source))
        if last_file in files:
            files.remove(last_file)
            files.append(last_file)
        for relative in files:
            copy(join(source, relative), join(destination, relative), overwrite=True)
        rmtree(source)
    if durable:
        sync_folder(dirname(destination) or ".")
        crash_point("after", destination)


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

    handle, tmp = tempfile.mkstemp(suffix=endings(path))
    os.close(handle)
    try:
        tf.io.gfile.copy(path, tmp, overwrite=True)
        yield tmp
    finally:
        os.remove(tmp)


def remove_durably(path):
    """Deletes a file or folder and makes the deletion durable (local disks: fsync of its folder)."""
    crash_point("before", path)
    if isdir(path):
        rmtree(path)
    else:
        remove(path)
    sync_folder(dirname(path) or ".")
    crash_point("after", path)


# Test-only fault injection: the crash-point harness (tests/training/test_crash_points.py,
# scripts/crash_sweep.py) sets FAULT_ENV in a training process to end it right before or right after
# one durable write, as a power cut or `kill -9` would there. Unset, every crash point is a dictionary
# lookup and nothing else.
FAULT_ENV = "CYCLEGAN_TF_FAULT"
FAULT_LOG_ENV = "CYCLEGAN_TF_FAULT_LOG"


class SimulatedCrash(BaseException):
    """Raised at a crash point by the ``raise`` action: a kill simulated inside one process.

    A ``BaseException`` so that no ``except Exception`` on the way handles it, as nothing handles a
    ``kill -9``.
    """


class _FaultPlan:
    """The parsed ``FAULT_ENV``: ``WHEN:NAME[:N[:ACTION]]``.

    ``WHEN`` is ``before`` or ``after``; ``NAME`` a glob matched against the written file's name
    (``state-*.weights.h5``, ``training.csv``, ``1``: an export version); ``N`` (default 1) which
    matching write; ``ACTION`` one of ``kill`` (SIGKILL, the default), ``raise`` (``SimulatedCrash``),
    ``sigint`` (one Ctrl-C), ``sigint2`` (two Ctrl-Cs: the abort), ``sigterm`` or ``enospc`` (the write
    fails with "No space left on device").
    """

    ACTIONS = ("kill", "raise", "sigint", "sigint2", "sigterm", "enospc")

    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) < 2 or parts[0] not in ("before", "after"):
            raise ValueError(f"{FAULT_ENV} must be WHEN:NAME[:N[:ACTION]]. Received: {spec!r}")
        self.spec = spec
        self.when, self.pattern = parts[0], parts[1]
        self.occurrence = int(parts[2]) if len(parts) > 2 and parts[2] else 1
        self.action = parts[3] if len(parts) > 3 else "kill"
        if self.action not in self.ACTIONS:
            raise ValueError(
                f"{FAULT_ENV}: action must be one of {self.ACTIONS}. Received: {spec!r}"
            )
        self.seen = 0

    def fire(self):
        import errno
        import signal

        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.action == "raise":
            raise SimulatedCrash(self.spec)
        if self.action == "enospc":
            raise OSError(errno.ENOSPC, f"No space left on device (injected: {self.spec})")
        if self.action == "sigterm":
            signal.raise_signal(signal.SIGTERM)
            return
        for _ in range(2 if self.action == "sigint2" else 1):
            signal.raise_signal(signal.SIGINT)


_fault_plans = {}  # one per FAULT_ENV value until it fires: N counts the writes of a process


def crash_point(when, path):
    """Marks the moment right ``when`` (``"before"``/``"after"``) a durable change of ``path``.

    Does nothing unless the test-only ``FAULT_ENV`` (see ``_FaultPlan``) or ``FAULT_LOG_ENV`` (a file
    that collects every point passed, ``WHEN:NAME`` per line) is set.
    """
    spec, log = os.environ.get(FAULT_ENV), os.environ.get(FAULT_LOG_ENV)
    if not spec and not log:
        return
    name = basename(path)
    if log:
        with open(log, "a") as f:
            f.write(f"{when}:{name}\n")
    if not spec:
        return
    if spec not in _fault_plans:
        _fault_plans[spec] = _FaultPlan(spec)
    plan = _fault_plans[spec]
    if when == plan.when and fnmatch.fnmatchcase(name, plan.pattern):
        plan.seen += 1
        if plan.seen == plan.occurrence:
            del _fault_plans[spec]  # fired: the same value set again counts afresh
            plan.fire()


class LockHeld(OSError):
    """Another process holds a lock of ``exclusive_lock``; the message says who.

    Attributes:
        path: str, the lock file.
        holder: dict, what the holder wrote (``pid``, ``host``, ``since``, ``command``), maybe empty.
        detail: str, more about the holder (how long ago a lock object was last renewed), or "".
    """

    def __init__(self, path, holder, detail=""):
        self.path = path
        self.holder = holder
        self.detail = detail
        who = describe_lock_holder(holder)
        super().__init__(f"{path} is held by {who}{detail}")


def describe_lock_holder(holder):
    """``pid 1234 on host-a since 2025-01-01 12:00:00 (cyclegan-train ...)`` from a lock's record."""
    if not holder:
        return "another process (it has not written its name yet)"
    text = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    if holder.get("since"):
        text += f" since {holder['since']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _lock_record():
    import socket
    import sys

    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:200],
        "token": f"{socket.gethostname()}-{os.getpid()}-{time.monotonic_ns()}",
        "heartbeat": time.time(),
    }


def _read_record(path):
    import json

    try:
        record = json.loads(read_text(path) or "{}")
    except (tf.errors.NotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


@contextlib.contextmanager
def exclusive_lock(path, heartbeat=30.0, stale_after=120.0):
    """Holds ``path`` as a lock for the block: one holder at a time, across processes and machines.

    On a local disk: an ``fcntl`` lock on the file, released by the kernel whatever way the process
    ends (``kill -9`` included); the file keeps the holder's pid, host, start time and command, so
    that the next one can say who holds it. On other filesystems (``gs://``, ``ram://``), which have
    no locks: a lock object whose holder rewrites its time every ``heartbeat`` seconds. A lock object
    counts as held while its time is younger than ``stale_after`` seconds, unless its holder was a
    process of this machine that no longer exists; two processes that start within the same second
    may both take it (object stores offer no compare-and-swap through ``tf.io.gfile``).

    Args:
        path: str, the lock file.
        heartbeat: float, seconds between the rewrites of a lock object.
        stale_after: float, age in seconds after which a lock object no longer counts.

    Raises:
        LockHeld: if another process holds it.
    """
    if is_local(path):
        with _local_lock(path):
            yield
    else:
        with _object_lock(path, heartbeat, stale_after):
            yield


@contextlib.contextmanager
def _local_lock(path):
    import fcntl
    import json

    makedirs(dirname(path) or ".")
    handle = open(_local(path), "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            raise LockHeld(path, holder) from None
        record = _lock_record()
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _process_exists(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


@contextlib.contextmanager
def _object_lock(path, heartbeat, stale_after):
    import json
    import socket
    import threading

    holder = _read_record(path)
    if holder:
        age = time.time() - float(holder.get("heartbeat", 0))
        gone = holder.get("host") == socket.gethostname() and not _process_exists(holder.get("pid"))
        if age < stale_after and not gone:
            raise LockHeld(path, holder, f" (its last sign of life {age:.0f} s ago)")
    record = _lock_record()
    write_text(path, json.dumps(record))
    if _read_record(path).get("token") != record["token"]:  # another process wrote after us
        raise LockHeld(path, _read_record(path))
    stopped = threading.Event()

    def beat():
        while not stopped.wait(heartbeat):
            record["heartbeat"] = time.time()
            with contextlib.suppress(Exception):
                write_text(path, json.dumps(record))

    thread = threading.Thread(target=beat, name="lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join()
        if _read_record(path).get("token") == record["token"]:
            remove(path)
