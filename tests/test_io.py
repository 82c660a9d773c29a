"""File I/O on TensorFlow's in-process ``ram://`` filesystem and on local disks, without mocks."""

import itertools
import os

import pytest

from cyclegan_tf import io

_COUNTER = itertools.count()


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
    """An empty folder on a local disk and one on ``ram://``."""
    if request.param == "local":
        return str(tmp_path)
    return f"ram://test-io-{next(_COUNTER)}"


def test_write_read_list_and_delete(root):
    path = io.join(root, "a", "b", "config.json")
    io.write_text(path, '{"x": 1}')
    assert io.read_text(path) == '{"x": 1}'
    assert io.isfile(path) and not io.isdir(path)
    assert io.isdir(io.join(root, "a", "b"))
    assert io.listdir(io.join(root, "a")) == ["b"]
    assert io.size(path) == 8
    io.write_bytes(path, b"new")  # replaces, leaves no temporary file
    assert io.read_bytes(path) == b"new"
    assert io.listdir(io.join(root, "a", "b")) == ["config.json"]
    io.remove(path)
    io.remove(path)  # a missing file is fine
    assert not io.exists(path)
    io.rmtree(io.join(root, "a"))
    assert not io.exists(io.join(root, "a"))


def test_atomic_output_replaces_only_on_success(root):
    path = io.join(root, "model.keras")
    io.write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with io.atomic_output(path) as tmp:
            assert tmp.endswith(".keras") and tmp != path
            io.write_bytes(tmp, b"half")
            raise RuntimeError("killed mid-write")
    assert io.read_bytes(path) == b"old"
    assert io.listdir(root) == ["model.keras"]
    with io.atomic_output(path) as tmp:
        io.write_bytes(tmp, b"new")
    assert io.read_bytes(path) == b"new"
    assert io.listdir(root) == ["model.keras"]


def test_move_publishes_a_folder_with_its_marker(root):
    staging = io.join(root, ".staging")
    io.write_text(io.join(staging, "variables", "v.index"), "v")
    io.write_text(io.join(staging, "saved_model.pb"), "pb")
    io.move(staging, io.join(root, "1"), last_file="saved_model.pb")
    assert not io.exists(staging)
    assert io.listdir(io.join(root, "1")) == ["saved_model.pb", "variables"]
    assert io.read_text(io.join(root, "1", "variables", "v.index")) == "v"


def test_copytree_and_local_copy(root, tmp_path):
    io.write_text(io.join(root, "src", "x", "y.txt"), "y")
    io.copytree(io.join(root, "src"), io.join(root, "dst"))
    assert io.read_text(io.join(root, "dst", "x", "y.txt")) == "y"
    with io.local_copy(io.join(root, "dst", "x", "y.txt")) as local:
        with open(local) as f:
            assert f.read() == "y"


def test_path_helpers():
    assert io.scheme("gs://bucket/a") == "gs://" and io.scheme("/tmp/a") == ""
    assert io.is_local("/tmp/a") and not io.is_local("ram://a")
    assert io.join("gs://bucket", "runs", "x") == "gs://bucket/runs/x"
    assert io.basename("gs://bucket/runs/x/") == "x"
    assert io.dirname("gs://bucket/runs/x") == "gs://bucket/runs"
    assert io.stem("ram://a/photo.jpg") == "photo"
    assert io.can_rename("/tmp/x") and io.can_rename("ram://x") and not io.can_rename("gs://b/x")


def test_list_files_leaves_out_folders_and_other_extensions(root):
    io.write_bytes(io.join(root, "b.PNG"), b"12")
    io.write_bytes(io.join(root, "a.jpg"), b"1")
    io.write_text(io.join(root, "notes.txt"), "x")
    io.write_text(io.join(root, "folder.jpg", "inner.jpg"), "x")
    assert io.list_files(root, (".jpg", ".png")) == ["a.jpg", "b.PNG"]
    assert io.list_files(root) == ["a.jpg", "b.PNG", "notes.txt"]
    stats = io.list_file_stats(root, (".jpg", ".png"))
    assert [(name, size) for name, size, _ in stats] == [("a.jpg", 1), ("b.PNG", 2)]
    assert all(isinstance(mtime, int) for _, _, mtime in stats)


def test_normalize_and_absolute():
    assert (
        io.normalize("runs//a/") == "runs/a" and io.normalize("gs://b/runs/a/") == "gs://b/runs/a"
    )
    assert io.absolute("ram://a/b") == "ram://a/b" and io.absolute("runs").startswith("/")


def test_durable_writes_replace_whole_files_and_leave_nothing_else(root):
    path = io.join(root, "run", "config.json")
    io.write_text(path, "old", durable=True)
    io.write_text(path, "new", durable=True)
    with io.atomic_output(io.join(root, "run", "state.weights.h5"), durable=True) as tmp:
        assert tmp.endswith(".weights.h5")  # Keras' save_weights checks the whole ending
        io.write_bytes(tmp, b"weights")
    assert io.read_text(path) == "new"
    assert io.listdir(io.join(root, "run")) == ["config.json", "state.weights.h5"]
    io.remove_durably(io.join(root, "run"))
    assert not io.exists(io.join(root, "run"))


def test_a_crash_point_fires_at_the_nth_matching_write_only(root, monkeypatch):
    path = io.join(root, "training.csv")
    monkeypatch.setenv(io.FAULT_ENV, "after:*.csv:2:raise")
    io.write_text(path, "row 1", durable=True)
    io.write_text(io.join(root, "other.json"), "{}", durable=True)  # not a match
    with pytest.raises(io.SimulatedCrash):
        io.write_text(path, "row 2", durable=True)
    assert io.read_text(path) == "row 2"  # "after": the write is complete
    monkeypatch.setenv(io.FAULT_ENV, "before:*.csv:1:enospc")
    with pytest.raises(OSError, match="No space left on device"):
        io.write_text(path, "row 3", durable=True)
    assert io.read_text(path) == "row 2"  # "before": nothing of it is there
    io.write_text(path, "row 4")  # not durable: no crash point
    assert io.read_text(path) == "row 4"


def test_the_crash_point_log_lists_every_durable_write(tmp_path, monkeypatch):
    log = tmp_path / "points.log"
    monkeypatch.setenv(io.FAULT_LOG_ENV, str(log))
    io.write_text(str(tmp_path / "a.json"), "{}", durable=True)
    io.write_text(str(tmp_path / "b.json"), "{}")
    assert log.read_text().splitlines() == ["before:a.json", "after:a.json"]


def test_a_local_lock_names_its_holder_and_is_released_when_left(tmp_path):
    path = str(tmp_path / "run" / ".lock")
    with io.exclusive_lock(path):
        with pytest.raises(io.LockHeld) as info:
            with io.exclusive_lock(path):
                pass
        assert info.value.holder["pid"] == os.getpid()
        assert f"is held by pid {os.getpid()} on " in str(info.value)
    with io.exclusive_lock(path):  # released
        pass


def test_an_object_store_lock_has_a_heartbeat_and_goes_stale(monkeypatch):
    import json
    import socket
    import time

    path = f"ram://test-io-{next(_COUNTER)}/run/.lock"
    other = {"pid": 1, "host": "elsewhere", "since": "then", "heartbeat": time.time()}
    io.write_text(path, json.dumps(other))
    with pytest.raises(io.LockHeld, match="is held by pid 1 on elsewhere since then"):
        with io.exclusive_lock(path, stale_after=60):
            pass
    io.write_text(path, json.dumps({**other, "heartbeat": time.time() - 61}))  # stale
    with io.exclusive_lock(path, heartbeat=0.05, stale_after=60):
        first = json.loads(io.read_text(path))["heartbeat"]
        time.sleep(0.3)
        assert json.loads(io.read_text(path))["heartbeat"] > first  # it beats
    assert not io.exists(path)  # removed on release
    gone = {**other, "host": socket.gethostname(), "pid": 2**22 + 12345}  # no such process here
    io.write_text(path, json.dumps(gone))
    with io.exclusive_lock(path):
        pass


def test_temporary_files_keep_every_ending_of_the_name(root):
    # Keras reads "x.weights.h5" as its weights format and "x.h5" as a legacy HDF5 model.
    path = io.join(root, "state-000001.weights.h5")
    assert io.endings(path) == ".weights.h5" and io.endings(io.join(root, "README")) == ""
    io.write_bytes(path, b"weights")
    with io.local_copy(path) as local:
        assert local.endswith(".weights.h5")


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    path = str(tmp_path / "training.csv")
    io.write_text(path, "old", durable=True)

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        io.write_text(path, "new", durable=True)
    assert str(info.value) == f"[Errno 28] No space left on device: '{path}'"
    with pytest.raises(OSError, match=r"No space left on device: '.*state\.weights\.h5'"):
        with io.atomic_output(str(tmp_path / "state.weights.h5"), durable=True) as tmp:
            io.write_bytes(tmp, b"weights")
    monkeypatch.undo()
    assert io.read_text(path) == "old" and os.listdir(tmp_path) == ["training.csv"]
