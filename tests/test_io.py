"""File I/O on TensorFlow's in-process ``ram://`` filesystem and on local disks, without mocks."""

import itertools

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
