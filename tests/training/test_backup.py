"""Numbered backups: each counts once complete, damaged ones are passed over with a reason."""

import itertools
import json
import os

import pytest

from cyclegan_tf import io
from cyclegan_tf.training.backup import BackupStore, BackupUnusable

_COUNTER = itertools.count()


@pytest.fixture(params=["local", "ram"])
def folder(request, tmp_path):
    """An empty backup folder on a local disk and one on ``ram://``."""
    if request.param == "local":
        return str(tmp_path / "backup")
    return f"ram://test-backup-{next(_COUNTER)}/backup"


class _Model:
    """What a backup reads and writes of a model: ``save_weights`` and ``load_weights`` of bytes."""

    def __init__(self, state=b""):
        self.state = state
        self.loaded = []

    def save_weights(self, path):
        assert path.endswith(".weights.h5"), path  # Keras checks the ending
        io.write_bytes(path, self.state)

    def load_weights(self, path):
        data = io.read_bytes(path)
        if not data.startswith(b"state"):
            raise ValueError(f"A total of 21 objects could not be loaded from {path}")
        self.loaded.append(data)


def _write(store, state, epoch, batch):
    return store.write(_Model(state).save_weights, epoch, batch, {"config": {"ngf": 4}})


def test_the_newest_two_complete_backups_are_kept(folder):
    store = BackupStore(folder)
    for step in range(3):
        _write(store, f"state {step}".encode(), 0, step)
    names = io.listdir(folder)
    assert names == [
        "state-000002.json",
        "state-000002.weights.h5",
        "state-000003.json",
        "state-000003.weights.h5",
    ]
    manifest = json.loads(io.read_text(io.join(folder, "state-000003.json")))
    assert (manifest["epoch"], manifest["batch"], manifest["bytes"]) == (0, 2, len(b"state 2"))
    assert manifest["config"] == {"ngf": 4} and len(manifest["sha256"]) == 64
    model = _Model()
    backup = store.restore(model)
    assert model.loaded == [b"state 2"] and backup.position == (0, 3)
    assert backup.describe() == "backup/state-000003.weights.h5 (epoch 1, step 3)"


def test_a_damaged_newest_backup_is_passed_over_for_the_previous_one(folder, caplog):
    store = BackupStore(folder)
    _write(store, b"state one", 1, -1)
    newest = _write(store, b"state two", 1, 0)
    io.write_bytes(newest.weights, b"state twx")  # a flipped byte: same size, other checksum
    model = _Model()
    backup = store.restore(model)
    assert model.loaded == [b"state one"] and backup.position == (1, 0)
    assert f"{newest.weights} is damaged (its checksum differs from the one written)" in caplog.text
    assert "Resuming from backup/state-000001.weights.h5 (the start of epoch 2)" in caplog.text
    store.discard_newer(backup)
    assert io.listdir(folder) == ["state-000001.json", "state-000001.weights.h5"]


def test_a_killed_write_leaves_the_previous_backup_usable(folder, monkeypatch):
    store = BackupStore(folder)
    _write(store, b"state one", 0, 0)
    monkeypatch.setenv(io.FAULT_ENV, "before:state-*.json:1:raise")  # weights there, no manifest
    with pytest.raises(io.SimulatedCrash):
        _write(store, b"state two", 0, 1)
    monkeypatch.delenv(io.FAULT_ENV)
    assert "state-000002.weights.h5" in io.listdir(folder)
    model = _Model()
    assert store.restore(model).position == (0, 1) and model.loaded == [b"state one"]
    store.remove_temporary()
    assert io.listdir(folder) == ["state-000001.json", "state-000001.weights.h5"]


def test_no_usable_backup_names_each_file_and_what_to_do(folder):
    store = BackupStore(folder)
    truncated = _write(store, b"state one", 0, 0)
    io.write_bytes(truncated.weights, b"sta")
    io.write_text(io.join(folder, "state-000002.json"), "garbage")
    with pytest.raises(BackupUnusable) as info:
        store.restore(_Model())
    message = str(info.value)
    assert f"{truncated.weights} is damaged (3 bytes, 9 were written)" in message
    assert f"{io.join(folder, 'state-000002.json')} is damaged (Expecting value" in message
    assert "Restore the files from a copy to resume, or move" in message
    assert len(message.splitlines()) == 1


def test_backups_of_keras_backup_and_restore_are_still_read(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "latest.weights.h5").write_bytes(b"garbage: a write cut short")
    (folder / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 3}))
    (folder / "latest.weights.h5.bkp").write_bytes(b"state before")
    (folder / "training_metadata.json.bkp").write_text(json.dumps({"epoch": 2, "batch": 1}))
    model = _Model()
    backup = BackupStore(str(folder)).restore(model)
    assert backup.position == (2, 2) and model.loaded == [b"state before"]


def test_an_empty_folder_is_a_new_run_and_delete_removes_everything(tmp_path):
    store = BackupStore(str(tmp_path / "backup"))
    assert store.restore(_Model()) is None and not store.exists()
    _write(store, b"state", 0, -1)
    assert store.exists()
    store.delete()
    assert not os.path.exists(tmp_path / "backup")


def test_a_backup_that_would_not_fit_is_refused_before_it_starts(tmp_path, monkeypatch):
    store = BackupStore(str(tmp_path / "backup"))
    first = _write(store, b"state" * 1000, 0, 0)
    monkeypatch.setattr(io, "free_bytes", lambda path: 4000)  # 5000 bytes are needed
    with pytest.raises(
        OSError, match=r"No space left on device for a backup in .*: 0\.0 MiB free, "
    ):
        _write(store, b"state" * 1000, 0, 1)
    assert [backup.weights for backup in store.usable()[0]] == [first.weights]
