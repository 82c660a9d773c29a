import pytest

from cyclegan_tf.data import cache
from cyclegan_tf.data.preprocess import Preprocess


def test_auto_keeps_resized_images_in_memory_only_within_the_budget():
    per_image = Preprocess("resize_and_crop", 286, 256).stored_image_bytes()
    assert per_image == 286 * 286 * 3
    assert cache.resolve_cache_mode("auto", 100, per_image, memory_budget=100 * per_image) == (
        "memory"
    )
    assert cache.resolve_cache_mode("auto", 101, per_image, memory_budget=100 * per_image) == (
        "none"
    )
    # The default budget (1 GiB) holds 2,000 photos per domain at 286 px, not 20,000.
    assert cache.resolve_cache_mode("auto", 4_000, per_image) == "memory"
    assert cache.resolve_cache_mode("auto", 40_000, per_image) == "none"
    for mode in ("memory", "disk", "none"):
        assert cache.resolve_cache_mode(mode, 10**9, per_image) == mode


def test_auto_keeps_nothing_when_images_keep_their_source_resolution():
    for mode in ("crop", "none"):
        per_image = Preprocess(mode, 286, 256).stored_image_bytes()
        assert per_image is None
        assert cache.resolve_cache_mode("auto", 10, per_image) == "none"
        assert cache.resolve_cache_mode("memory", 10, per_image) == "memory"


def test_unknown_cache_mode_lists_the_choices():
    with pytest.raises(ValueError, match="auto, memory, disk, none. Received: cache='ram'"):
        cache.resolve_cache_mode("ram", 1, 8)


def test_disk_store_folders_differ_by_geometry_and_files(tmp_path):
    root = str(tmp_path)
    geometry = Preprocess("resize_and_crop", 286, 256).cache_key
    base = cache.disk_store_folder(root, "fingerprint-1", geometry)
    assert base.startswith(str(tmp_path / "resize_and_crop-286-256-"))
    for other in (
        Preprocess("resize_and_crop", 143, 128),
        Preprocess("scale_width_and_crop", 286, 256),
        Preprocess("scale_width", 286, 128),
    ):
        assert cache.disk_store_folder(root, "fingerprint-1", other.cache_key) != base
    assert cache.disk_store_folder(root, "fingerprint-2", geometry) != base
    assert cache.disk_store_folder(root, "fingerprint-1", geometry) == base
