"""The resume state of a training run: numbered backups, each written in full and checked before it counts.

A backup folder (``RUN/backup/``, and ``RUN/.backup-worker-N/`` for the other workers of a multi-worker
run) holds::

    state-000007.weights.h5   the model's state (networks, both optimizers, the image pools), Keras'
                              ``save_weights`` format
    state-000007.json         its manifest, written after it: where training was (epoch, step), the
                              size and SHA-256 of the weights file, the loss trackers of the epoch so
                              far, the run's options

Each file is written durably (``io.write_bytes``/``io.atomic_output`` with ``durable=True``): to a new
file, fsynced, renamed into place, its folder fsynced. A backup counts once its manifest exists, and is
used only if its weights file still has the size and checksum its manifest recorded, so a kill, a power
cut or a full disk at any moment leaves the previous backup usable. The newest two complete backups are
kept; before a new one is written, older ones are deleted (a folder holds at most the newest complete
backup and the one being written, plus the one before when none is being written).

On ``gs://`` the same sequence holds: the weights object is uploaded whole, then the manifest object, the
small pointer that makes it count.

Backups written by earlier versions of this package (Keras' ``latest.weights.h5`` and
``training_metadata.json``, with their ``.bkp`` copies) are still read, newest first; they carry no
checksum, so loading them is their check.
"""

import dataclasses
import errno
import hashlib
import json
import logging
import re
import time

from cyclegan_tf import io
from cyclegan_tf.errors import first_line

logger = logging.getLogger(__name__)

FORMAT = 1
_MANIFEST = re.compile(r"^state-(\d{6,})\.json$")
_STATE = re.compile(r"^state-(\d{6,})\.")
_CHUNK = 8 << 20
# Keras' BackupAndRestore files (``double_checkpoint=True``), newest first: (weights, metadata).
_LEGACY = (
    ("latest.weights.h5", "training_metadata.json"),
    ("latest.weights.h5.bkp", "training_metadata.json.bkp"),
)


class BackupUnusable(ValueError):
    """No backup of a folder can be used; the message names each file and why, and what to do."""


@dataclasses.dataclass(frozen=True)
class Backup:
    """One backup: its weights file and its manifest.

    Attributes:
        weights: str, the weights file.
        manifest: dict, what the manifest holds (``epoch``, ``batch``, ``bytes``, ``sha256``...).
        sequence: int, its number in the folder; 0 for a backup of an earlier version.
        manifest_path: str or None, the manifest file.
    """

    weights: str
    manifest: dict
    sequence: int
    manifest_path: str | None = None

    @property
    def epoch(self):
        """int, the 0-based epoch the backup was taken in (or, at an epoch's end, the next one)."""
        return int(self.manifest["epoch"])

    @property
    def batch(self):
        """int, the 0-based last step of ``epoch`` included; -1 for a backup at the epoch's start."""
        return int(self.manifest.get("batch", -1))

    @property
    def position(self):
        """``(epoch, steps of that epoch done)``: where training resumes from this backup."""
        return self.epoch, self.batch + 1

    @property
    def name(self):
        """The weights file's name, for messages."""
        return io.basename(self.weights)

    def describe(self):
        """``backup/state-000007.weights.h5 (epoch 3, step 4)``: 1-based, as the logs count."""
        epoch, steps = self.position
        where = f"epoch {epoch + 1}, step {steps}" if steps else f"the start of epoch {epoch + 1}"
        return f"{io.join(io.basename(io.dirname(self.weights)), self.name)} ({where})"


def file_digest(path):
    """``(size in bytes, SHA-256 hex digest)`` of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with io.open_file(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class BackupStore:
    """The backups of one folder: write a new one, find the usable ones, load one, delete them all.

    Args:
        folder: str, the backup folder (local, ``gs://`` or ``ram://``).
    """

    def __init__(self, folder):
        self.folder = folder

    def _path(self, sequence, suffix):
        return io.join(self.folder, f"state-{sequence:06d}{suffix}")

    def exists(self):
        """Whether the folder holds any backup file (complete, damaged or of an earlier version)."""
        if not io.isdir(self.folder):
            return False
        return any(
            _STATE.match(name) or name in {file for pair in _LEGACY for file in pair}
            for name in io.listdir(self.folder)
        )

    def backups(self):
        """Every backup with a readable manifest, newest first.

        Returns:
            ``(backups, problems)``: the ``Backup`` list and a line for each manifest that cannot be
            read.
        """
        if not io.isdir(self.folder):
            return [], []
        found, problems = [], []
        names = io.listdir(self.folder)
        for name in sorted(names, reverse=True):
            match = _MANIFEST.match(name)
            if not match:
                continue
            path = io.join(self.folder, name)
            try:
                manifest = json.loads(io.read_text(path))
                int(manifest["epoch"]), int(manifest["batch"]), str(manifest["weights"])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
                problems.append(f"{path} is damaged ({first_line(error)})")
                continue
            weights = io.join(self.folder, manifest["weights"])
            found.append(Backup(weights, manifest, int(match.group(1)), path))
        return found + self._legacy(names, problems), problems

    def _legacy(self, names, problems):
        found = []
        for weights_name, metadata_name in _LEGACY:
            if weights_name not in names:
                continue
            path = io.join(self.folder, metadata_name)
            try:
                metadata = json.loads(io.read_text(path))
                manifest = {
                    "epoch": int(metadata["epoch"]),
                    "batch": int(metadata.get("batch", -1)),
                }
            except Exception as error:  # noqa: BLE001 - missing, half-written or foreign
                problems.append(f"{path} is damaged ({first_line(error)})")
                continue
            found.append(Backup(io.join(self.folder, weights_name), manifest, 0, path))
        return found

    def check(self, backup):
        """None if the weights file matches its manifest, else a line saying what is wrong."""
        if not io.exists(backup.weights):
            return f"{backup.weights} is missing"
        expected = backup.manifest.get("bytes")
        if expected is None:  # an earlier version's backup: loading it is the check
            return None if io.size(backup.weights) else f"{backup.weights} is empty"
        size, digest = file_digest(backup.weights)
        if size != expected:
            return f"{backup.weights} is damaged ({size} bytes, {expected} were written)"
        if digest != backup.manifest.get("sha256"):
            return f"{backup.weights} is damaged (its checksum differs from the one written)"
        return None

    def usable(self):
        """The backups whose files check out, newest first.

        Returns:
            ``(backups, problems)``: the ``Backup`` list and a line for each backup passed over.
        """
        backups, problems = self.backups()
        usable = []
        for backup in backups:
            problem = self.check(backup)
            if problem:
                problems.append(problem)
            else:
                usable.append(backup)
        return usable, problems

    def load(self, model, candidates, problems):
        """Loads the first of ``candidates`` that loads into ``model``; raises if none does.

        Args:
            model: a built ``keras.Model`` with built optimizers.
            candidates: list of ``Backup``, from ``usable``, in the order to try.
            problems: list of str, why other backups were passed over (extended here).

        Returns:
            The ``Backup`` loaded.

        Raises:
            BackupUnusable: naming every file tried and why it failed.
        """
        for backup in candidates:
            try:
                with io.local_copy(backup.weights) as local:
                    model.load_weights(local)
            except (ValueError, OSError) as error:
                problems.append(f"{backup.weights} could not be loaded ({first_line(error)})")
                continue
            skipped = [line for line in problems if backup.weights not in line]
            if skipped:
                logger.warning(
                    "Resuming from %s: %s", backup.describe(), "; ".join(dict.fromkeys(skipped))
                )
            return backup
        raise BackupUnusable(
            f"no usable backup in {self.folder}: {'; '.join(dict.fromkeys(problems))}. Restore the "
            f"files from a copy to resume, or move {self.folder} away to start this run again from "
            "its first epoch"
        )

    def restore(self, model):
        """Loads the newest usable backup into ``model``.

        Returns:
            The ``Backup`` loaded, or None if the folder holds no backup at all.

        Raises:
            BackupUnusable: if backups exist but none can be used.
        """
        usable, problems = self.usable()
        if not usable and not problems:
            return None
        return self.load(model, usable, problems)

    def write(self, save_weights, epoch, batch, record=None):
        """Writes a new backup; returns it once its weights file and its manifest are durable.

        Args:
            save_weights: callable taking a file path, e.g. ``model.save_weights``.
            epoch: int, the epoch (0-based; at an epoch's end, the next one).
            batch: int, the 0-based last step of ``epoch`` included, -1 for none.
            record: dict or None, more to keep in the manifest (JSON-serialisable).

        Returns:
            The new ``Backup``.
        """
        io.makedirs(self.folder)
        complete, _ = self.backups()
        for old in complete[1:]:  # keeps the newest complete one until this one is complete
            self._delete(old)
        self.remove_temporary()
        if complete:
            self._check_space(complete[0].manifest.get("bytes"))
        used = [int(m.group(1)) for name in io.listdir(self.folder) if (m := _STATE.match(name))]
        sequence = max(used, default=0) + 1
        weights = self._path(sequence, ".weights.h5")
        with io.atomic_output(weights, durable=True) as tmp:
            save_weights(tmp)
            size, digest = file_digest(tmp)
        manifest = {
            **(record or {}),
            "format": FORMAT,
            "epoch": int(epoch),
            "batch": int(batch),
            "weights": io.basename(weights),
            "bytes": size,
            "sha256": digest,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        manifest_path = self._path(sequence, ".json")
        io.write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True), durable=True)
        return Backup(weights, manifest, sequence, manifest_path)

    def _check_space(self, expected):
        """Raises ENOSPC before a backup that would not fit (the last one's size, plus 5 %).

        HDF5 that runs out of space in the middle of a file can end the process with a
        segmentation fault (seen on a full tmpfs) instead of raising: the previous backup is safe
        either way, but the user would get no message.
        """
        free = io.free_bytes(self.folder)
        if expected is None or free is None or free >= expected * 1.05:
            return
        raise OSError(
            errno.ENOSPC,
            f"No space left on device for a backup in {self.folder}: {free / 2**20:.1f} MiB free, "
            f"about {expected / 2**20:.1f} MiB needed",
        )

    def discard_newer(self, backup):
        """Deletes the backups newer than ``backup`` (damaged, or beyond where all workers agree)."""
        for other in self.backups()[0]:
            if other.sequence > backup.sequence:
                self._delete(other)

    def _delete(self, backup):
        # The manifest first: a backup without its manifest no longer counts.
        if backup.manifest_path and backup.sequence:
            io.remove(backup.manifest_path)
            io.remove(backup.weights)

    def remove_temporary(self):
        """Deletes what killed writes left (hidden temporary files, weights without a manifest)."""
        if not io.isdir(self.folder):
            return
        names = io.listdir(self.folder)
        manifests = {m.group(1) for name in names if (m := _MANIFEST.match(name))}
        for name in names:
            match = _STATE.match(name)
            if io.is_temporary(name) or (match and match.group(1) not in manifests):
                io.remove(io.join(self.folder, name))

    def delete(self):
        """Deletes the folder and every backup in it, durably."""
        if io.exists(self.folder):
            io.remove_durably(self.folder)
