import pytest

from cyclegan_tf.data import cache


def test_auto_keeps_resized_images_in_memory_only_within_the_budget():
    per_image = cache.resized_bytes(286)
    assert per_image == 286 * 286 * 3
    assert cache.resolve_cache_mode("auto", 100, 286, memory_budget=100 * per_image) == "memory"
    assert cache.resolve_cache_mode("auto", 101, 286, memory_budget=100 * per_image) == "none"
    # The default budget (1 GiB) holds 2,000 photos per domain at 286 px, not 20,000.
    assert cache.resolve_cache_mode("auto", 4_000, 286) == "memory"
    assert cache.resolve_cache_mode("auto", 40_000, 286) == "none"
    for mode in ("memory", "disk", "none"):
        assert cache.resolve_cache_mode(mode, 10**9, 286) == mode


def test_unknown_cache_mode_lists_the_choices():
    with pytest.raises(ValueError, match="auto, memory, disk, none. Received: cache='ram'"):
        cache.resolve_cache_mode("ram", 1, 8)


def test_disk_store_folders_differ_by_size_and_files(tmp_path):
    root = str(tmp_path)
    base = cache.disk_store_folder(root, "fingerprint-1", 286)
    assert base.startswith(str(tmp_path / "286px-"))
    assert cache.disk_store_folder(root, "fingerprint-1", 143) != base
    assert cache.disk_store_folder(root, "fingerprint-2", 286) != base
    assert cache.disk_store_folder(root, "fingerprint-1", 286) == base
