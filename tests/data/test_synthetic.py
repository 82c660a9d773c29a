import json
import os

import numpy as np
import pytest

from cyclegan_tf.cli import synthetic as synthetic_cli
from cyclegan_tf.data import synthetic
from cyclegan_tf.data.decode import DataError, list_image_files, read_image_file


def _files(root):
    result = {}
    for folder in ("trainA", "trainB", "testA", "testB"):
        for path in list_image_files(os.path.join(root, folder)):
            with open(path, "rb") as f:
                result[os.path.relpath(path, root)] = f.read()
    return result


def _images(root, folder):
    return np.stack([read_image_file(p) for p in list_image_files(os.path.join(root, folder))])


def test_layout_counts_and_marker(synthetic_dir):
    files = _files(synthetic_dir)
    assert len(files) == 2 * 16 + 2 * 8
    assert "trainA/apple_0001.jpg" in files and "testB/orange_0008.jpg" in files
    with open(os.path.join(synthetic_dir, synthetic.MARKER)) as f:
        marker = json.load(f)
    assert (marker["size"], marker["n_train"], marker["n_test"], marker["seed"]) == (64, 16, 8, 0)
    assert _images(synthetic_dir, "testA").shape == (8, 64, 64, 3)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = synthetic.write_synthetic_dataset(str(tmp_path / "a"), 32, 3, 2, seed=7)
    second = synthetic.write_synthetic_dataset(str(tmp_path / "b"), 32, 3, 2, seed=7)
    other = synthetic.write_synthetic_dataset(str(tmp_path / "c"), 32, 3, 2, seed=8)
    assert _files(first) == _files(second)
    assert _files(first).keys() == _files(other).keys()
    differing = [k for k, v in _files(first).items() if _files(other)[k] != v]
    assert len(differing) == 10


def test_rewriting_is_a_no_op_and_other_parameters_are_refused(tmp_path):
    root = synthetic.write_synthetic_dataset(str(tmp_path / "fruit"), 32, 2, 1, seed=0)
    marker = os.path.join(root, synthetic.MARKER)
    before = os.stat(marker).st_mtime_ns
    assert synthetic.write_synthetic_dataset(root, 32, 2, 1, seed=0) == root
    assert os.stat(marker).st_mtime_ns == before
    with pytest.raises(DataError, match="other parameters.*n_train=2.*n_train=5"):
        synthetic.write_synthetic_dataset(root, 32, 5, 1, seed=0)


def test_a_folder_with_user_files_is_never_overwritten(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(DataError, match="exists and is not a synthetic set"):
        synthetic.write_synthetic_dataset(str(user), 32, 2, 1)
    assert os.listdir(user) == ["holiday.jpg"]
    assert (user / "holiday.jpg").read_bytes() == b"precious"


def test_an_empty_existing_folder_is_filled(tmp_path):
    (tmp_path / "empty").mkdir()
    root = synthetic.write_synthetic_dataset(str(tmp_path / "empty"), 32, 2, 1)
    assert len(_files(root)) == 6
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]


@pytest.mark.parametrize(
    "kwargs, received",
    [({"size": 8}, "size=8"), ({"n_train": 0}, "n_train=0"), ({"seed": -1}, "seed=-1")],
)
def test_out_of_range_parameters_are_value_errors(tmp_path, kwargs, received):
    with pytest.raises(ValueError, match=received):
        synthetic.write_synthetic_dataset(str(tmp_path / "x"), **kwargs)
    assert not (tmp_path / "x").exists()


def test_hue_statistic_separates_apples_from_oranges(synthetic_dir):
    apples = np.concatenate([_images(synthetic_dir, "trainA"), _images(synthetic_dir, "testA")])
    oranges = np.concatenate([_images(synthetic_dir, "trainB"), _images(synthetic_dir, "testB")])
    apple_hue, orange_hue = synthetic.hue_statistic(apples), synthetic.hue_statistic(oranges)
    assert -8.0 < apple_hue < 8.0
    assert 22.0 < orange_hue < 34.0
    per_apple = [synthetic.hue_statistic(image) for image in apples]
    per_orange = [synthetic.hue_statistic(image) for image in oranges]
    assert max(per_apple) + 8.0 < min(per_orange)


def test_hue_statistic_on_known_colors():
    def solid(rgb):
        return np.full((4, 4, 3), rgb, np.uint8)

    assert synthetic.hue_statistic(solid((255, 0, 0))) == pytest.approx(0.0, abs=1e-4)
    assert synthetic.hue_statistic(solid((255, 128, 0))) == pytest.approx(30.1, abs=0.2)
    # Reds on both sides of 0°/360° average to about 0, not 180.
    wrap = np.concatenate([solid((255, 0, 40)), solid((255, 40, 0))])
    assert synthetic.hue_statistic(wrap) == pytest.approx(0.0, abs=1e-3)
    # Muted, dark and green pixels do not count.
    assert np.isnan(synthetic.hue_statistic(solid((120, 110, 100))))
    assert np.isnan(synthetic.hue_statistic(solid((40, 5, 5))))
    assert np.isnan(synthetic.hue_statistic(solid((30, 200, 30))))
    mixed = np.concatenate([solid((255, 128, 0)), solid((30, 200, 30)), solid((128, 128, 128))])
    assert synthetic.hue_statistic(mixed) == pytest.approx(30.1, abs=0.2)


def test_hue_statistic_rejects_float_images():
    with pytest.raises(ValueError, match="Received: dtype=float32"):
        synthetic.hue_statistic(np.zeros((4, 4, 3), np.float32))


def test_render_fruit_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind='pear'"):
        synthetic.render_fruit("pear", 32, np.random.default_rng(0))


def test_cli_writes_the_expected_counts(tmp_path, capsys):
    out = tmp_path / "cli"
    status = synthetic_cli.main(
        ["--out", str(out), "--size", "32", "--n-train", "3", "--n-test", "2"]
    )
    assert status == 0
    counts = {folder: len(os.listdir(out / folder)) for folder in ("trainA", "trainB", "testA")}
    assert counts == {"trainA": 3, "trainB": 3, "testA": 2}
    printed = capsys.readouterr().out
    assert f"{out / 'trainA'}: 3 apple images" in printed
    assert f"{out / 'testB'}: 2 orange images" in printed


def test_cli_reports_bad_input_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        synthetic_cli.main(["--out", str(tmp_path / "x"), "--size", "4"])
    assert exit_.value.code == 2
    assert "error: size must be an integer >= 16. Received: size=4" in capsys.readouterr().err
