import logging
import os
import re
import shutil
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from cyclegan_tf.data import sources
from cyclegan_tf.data.decode import DataError


def _copy_layout(synthetic_dir, tmp_path, split="train"):
    root = tmp_path / "copy"
    for domain in "AB":
        shutil.copytree(os.path.join(synthetic_dir, f"{split}{domain}"), root / f"{split}{domain}")
    return root


def test_load_folder_reads_both_domains_in_name_order(synthetic_dir):
    domain_a, domain_b = sources.load_folder(synthetic_dir, "train")
    assert (domain_a.num_examples, domain_b.num_examples) == (16, 16)
    assert domain_a.names[:2] == ["apple_0001", "apple_0002"]
    assert domain_b.names[-1] == "orange_0016"
    images = list(domain_a.images.as_numpy_iterator())
    assert len(images) == 16
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in images)

    test_a, test_b = sources.load_folder(synthetic_dir, "test")
    assert (test_a.num_examples, test_b.num_examples) == (8, 8)


def test_load_folder_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ".*trainA/ and trainB/"):
        sources.load_folder(str(missing), "train")


def test_load_folder_missing_domain_names_it(synthetic_dir, tmp_path):
    root = _copy_layout(synthetic_dir, tmp_path)
    shutil.rmtree(root / "trainB")
    with pytest.raises(DataError, match=re.escape(f"missing folder {root / 'trainB'}")):
        sources.load_folder(str(root), "train")
    with pytest.raises(DataError, match="testA/ and testB/"):
        sources.load_folder(str(root), "test")


def test_load_folder_empty_domain_is_an_error(synthetic_dir, tmp_path):
    root = _copy_layout(synthetic_dir, tmp_path)
    shutil.rmtree(root / "trainA")
    (root / "trainA").mkdir()
    (root / "trainA" / "readme.txt").write_text("no images here")
    with pytest.raises(
        DataError, match="no readable image .* in " + re.escape(str(root / "trainA")) + "$"
    ):
        sources.load_folder(str(root), "train")


def test_load_folder_only_corrupt_files_is_an_error(synthetic_dir, tmp_path):
    root = _copy_layout(synthetic_dir, tmp_path)
    shutil.rmtree(root / "trainB")
    (root / "trainB").mkdir()
    (root / "trainB" / "zero.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"trainB \(1 unreadable\)"):
        sources.load_folder(str(root), "train")


def test_load_folder_skips_corrupt_files_with_one_warning_per_domain(
    synthetic_dir, tmp_path, caplog
):
    root = _copy_layout(synthetic_dir, tmp_path)
    good = (root / "trainA" / "apple_0001.jpg").read_bytes()
    (root / "trainA" / "zero.jpg").write_bytes(b"")
    (root / "trainA" / "text.jpg").write_text("not a jpeg at all")
    (root / "trainA" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "trainB" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    with caplog.at_level(logging.WARNING, logger="cyclegan_tf.data.sources"):
        domain_a, domain_b = sources.load_folder(str(root), "train")

    assert (domain_a.num_examples, domain_b.num_examples) == (16, 16)
    assert len(list(domain_a.images)) == 16
    assert "zero" not in domain_a.names
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Skipped 3 of 19 files" in warnings[0]
    for name in ("zero.jpg", "text.jpg", "truncated.jpg"):
        assert name in warnings[0]
    assert "Skipped 1 of 17 files" in warnings[1] and "truncated.png" in warnings[1]


def test_skip_warning_names_five_then_counts_the_rest(synthetic_dir, tmp_path, caplog):
    root = _copy_layout(synthetic_dir, tmp_path)
    for index in range(8):
        (root / "trainA" / f"bad_{index}.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="cyclegan_tf.data.sources"):
        sources.load_folder(str(root), "train")
    (message,) = [r.getMessage() for r in caplog.records]
    assert "bad_4.jpg (empty file) and 3 more" in message
    assert "bad_5.jpg" not in message


def test_load_folder_rejects_unknown_split(synthetic_dir):
    with pytest.raises(DataError, match="split=.*val"):
        sources.load_folder(synthetic_dir, "val")


def test_load_tfds_under_mock_data_copies_the_encoded_images_once(tmp_path):
    files_dir = str(tmp_path / "files")
    with tfds.testing.mock_data(num_examples=3):
        domain_a, domain_b = sources.load_tfds(
            "horse2zebra", "test", files_dir=files_dir, probe_timeout=None
        )
        assert (domain_a.num_examples, domain_b.num_examples) == (3, 3)
        assert domain_a.names is None
        assert domain_a.images.element_spec == tf.TensorSpec([None, None, 3], tf.uint8)
        images = list(domain_b.images.as_numpy_iterator())
        folder = os.path.dirname(domain_b.files[0])
        assert folder.endswith(os.path.join("cycle_gan", "horse2zebra", "3.0.0", "testB"))
        before = os.stat(domain_b.files[0]).st_mtime_ns
        again, _ = sources.load_tfds("horse2zebra", "test", files_dir=files_dir, probe_timeout=None)
    assert os.stat(domain_b.files[0]).st_mtime_ns == before  # not written again
    assert again.files == domain_a.files
    assert len(images) == 3
    assert all(image.ndim == 3 and image.shape[-1] == 3 for image in images)


def test_load_tfds_unknown_config_lists_the_choices():
    with pytest.raises(DataError, match="unknown dataset 'pears2plums'.*apple2orange.*synthetic"):
        sources.load_tfds("pears2plums")


def test_load_tfds_download_failure_suggests_alternatives(monkeypatch):
    class OfflineBuilder:
        def is_prepared(self):
            return True  # Nothing to probe: the failure comes from the download itself.

        def download_and_prepare(self):
            raise ConnectionError("Failed to resolve 'people.eecs.berkeley.edu'\nmore details")

    monkeypatch.setattr(tfds, "builder", lambda *args, **kwargs: OfflineBuilder())
    with pytest.raises(DataError) as info:
        sources.load_tfds("apple2orange", "train")
    message = str(info.value)
    assert "\n" not in message
    assert "could not download" in message and "people.eecs.berkeley.edu" in message
    assert "--data-dir DIR" in message and "--dataset synthetic" in message


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_tfds_fails_at_once_when_the_download_host_is_unreachable(monkeypatch):
    port = _closed_port()

    class UnpreparedBuilder:
        def is_prepared(self):
            return False

        def download_and_prepare(self):
            raise AssertionError("must not try to download")

    monkeypatch.setattr(tfds, "builder", lambda *args, **kwargs: UnpreparedBuilder())
    monkeypatch.setattr(sources, "_download_host", lambda name: ("127.0.0.1", port))
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        sources.load_tfds("apple2orange", "train")
    assert time.monotonic() - start < sources.DOWNLOAD_PROBE_TIMEOUT
    message = str(info.value)
    assert f"cannot reach 127.0.0.1:{port} (Connection refused)" in message
    assert "\n" not in message and "--dataset synthetic" in message


def test_an_unanswered_probe_gives_up_after_its_timeout(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    assert sources._unreachable("example.org", 443, timeout=0.2) == "no answer within 0.2 s"
    assert time.monotonic() - start < 2


def test_checks_are_remembered_per_folder_until_a_file_changes(
    synthetic_dir, tmp_path, monkeypatch
):
    root = _copy_layout(synthetic_dir, tmp_path)
    folder = str(root / "trainA")
    (root / "trainA" / "zero.jpg").write_bytes(b"")
    checked = []
    real_check = sources._file_problem

    def counting_check(path, size):
        checked.append(os.path.basename(path))
        return real_check(path, size)

    monkeypatch.setattr(sources, "_file_problem", counting_check)
    cache = str(tmp_path / "cache")
    first = sources.load_image_folder(folder, check_cache_dir=cache)
    assert len(checked) == 17 and first.num_examples == 16
    checked.clear()
    again = sources.load_image_folder(folder, check_cache_dir=cache)
    assert checked == [] and again.files == first.files
    assert again.fingerprint == first.fingerprint
    (root / "trainA" / "zero.jpg").write_bytes((root / "trainA" / "apple_0001.jpg").read_bytes())
    repaired = sources.load_image_folder(folder, check_cache_dir=cache)
    assert checked == ["zero.jpg"] and repaired.num_examples == 17
    assert repaired.fingerprint != first.fingerprint


def test_load_domains_dispatches_on_the_options(synthetic_dir, tmp_path, monkeypatch):
    domain_a, _ = sources.load_domains(dataset="apple2orange", data_dir=synthetic_dir)
    assert domain_a.names[0] == "apple_0001"  # A folder wins over the (default) TFDS name.

    root = str(tmp_path / "fruit")
    domain_a, domain_b = sources.load_domains(
        "synthetic", root, "test", synthetic_size=32, synthetic_n_train=2, synthetic_n_test=3
    )
    assert (domain_a.num_examples, domain_b.num_examples) == (3, 3)
    assert sorted(os.listdir(os.path.join(root, "trainB"))) == [
        "orange_0001.jpg",
        "orange_0002.jpg",
    ]

    monkeypatch.setenv("CYCLEGAN_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "_check_download_host", lambda name, timeout: None)  # offline
    with tfds.testing.mock_data(num_examples=2):
        domain_a, _ = sources.load_domains("apple2orange", None, "train")
    assert domain_a.num_examples == 2


@pytest.mark.parametrize("dataset", [None, ""])
def test_load_domains_without_a_source_lists_the_choices(dataset):
    with pytest.raises(DataError, match="--data-dir DIR.*--dataset synthetic.*Received"):
        sources.load_domains(dataset, None)


def test_load_synthetic_defaults_to_a_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLEGAN_TF_CACHE", str(tmp_path / "cache"))
    domain_a, _ = sources.load_synthetic(image_size=32, n_train=2, n_test=1, seed=3)
    assert domain_a.num_examples == 2
    expected = tmp_path / "cache" / "synthetic_fruit_32px_train2_test1_seed3" / "trainA"
    assert expected.is_dir()


def test_a_ram_folder_loads_with_its_checks_remembered_there(synthetic_dir):
    from cyclegan_tf import io

    root = "ram://sources-test/fruit"
    for domain in "AB":
        io.copytree(os.path.join(synthetic_dir, f"train{domain}"), f"{root}/train{domain}")
    io.write_bytes(f"{root}/trainA/zero.jpg", b"")
    io.makedirs(f"{root}/trainA/folder.jpg")  # a folder with an image's name is not an image
    checks = "ram://sources-test/checks"

    domain_a, domain_b = sources.load_folder(root, "train", check_cache_dir=checks)

    assert (domain_a.num_examples, domain_b.num_examples) == (16, 16)
    assert domain_a.files[0] == f"{root}/trainA/apple_0001.jpg"
    assert domain_a.names[0] == "apple_0001" and "zero" not in domain_a.names
    assert len(io.listdir(f"{checks}/image_checks")) == 2  # one record per folder
    first = next(iter(domain_a.images)).numpy()
    local = next(iter(sources.load_folder(synthetic_dir, "train", "")[0].images)).numpy()
    np.testing.assert_array_equal(first, local)
    again = sources.load_image_folder(f"{root}/trainA", check_cache_dir=checks)
    assert again.fingerprint == domain_a.fingerprint
