import base64
import csv
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from cyclegan_tf.cli import report as report_cli
from cyclegan_tf.training import report

LOSS_COLUMNS = ("adv", "cycle", "d_loss", "g_loss", "identity", "val_cycle", "val_identity")


def _embedded_pngs(page):
    return [
        Image.open(io.BytesIO(base64.b64decode(data)))
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with 5 logged epochs (FID at epochs 1, 3, 5), grids for each epoch, a config."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "images").mkdir()
    with open(run / "config.json", "w") as f:
        json.dump({"name": "apple2orange", "epochs": 5, "lr": 0.0002}, f)
    with open(run / "logs" / "training.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *LOSS_COLUMNS, "fid", "kid"])
        for epoch in range(5):
            fid = ["80.5", "0.02"] if epoch % 2 == 0 else ["NA", "NA"]
            if epoch == 2:
                fid = ["42.25", "0.01"]
            writer.writerow([epoch, *[f"{1.0 / (epoch + 1):.4f}"] * len(LOSS_COLUMNS), *fid])
    for epoch in range(1, 6):
        color = np.full((12, 20, 3), 40 * epoch, np.uint8)
        Image.fromarray(color).save(run / "images" / f"epoch_{epoch:03d}.png")
    Image.fromarray(np.zeros((12, 20, 3), np.uint8)).save(run / "images" / "latest.png")
    return str(run)


def test_read_log_is_one_based_with_nan_for_missing_values(run_dir):
    log = report.read_log(os.path.join(run_dir, "logs", "training.csv"))
    assert log["epoch"] == [1, 2, 3, 4, 5]
    assert log["g_loss"][1] == pytest.approx(0.5)
    assert np.isnan(log["fid"][1]) and log["fid"][2] == 42.25


def test_read_log_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    path = tmp_path / "training.csv"
    path.write_text("epoch,g_loss\n0,3.0\n1,2.0\n1,1.5\n2,1.0\n")
    assert report.read_log(str(path)) == {"epoch": [1, 2, 3], "g_loss": [3.0, 1.5, 1.0]}


def test_report_is_self_contained_with_curves_and_first_middle_last_samples(run_dir):
    path = report.write_report(run_dir, export_paths=["saved_models/apple2orange/1"])
    assert path == os.path.join(run_dir, "report.html")
    with open(path, encoding="utf-8") as f:
        page = f.read()
    assert not re.search(r'(src|href)="(http|file|/)', page)  # nothing outside the file
    assert "<script" not in page

    images = _embedded_pngs(page)
    curves = [image for image in images if image.size == (640, 360)]
    samples = [np.asarray(image) for image in images if image.size == (20, 12)]
    # Losses, generator terms, validation, FID and KID.
    assert len(curves) == 5
    # Epochs 1, 3 and 5, byte for byte.
    assert [int(sample[0, 0, 0]) for sample in samples] == [40, 120, 200]
    for epoch in (1, 3, 5):
        assert f"Epoch {epoch} " in page
    assert "Epoch 2 " not in page and "Epoch 4 " not in page

    assert "42.25 at epoch 3" in page  # the best FID in the summary
    assert "saved_models/apple2orange/1" in page
    assert "<th>lr</th><td>0.0002</td>" in page


def test_curves_are_left_out_when_their_columns_are_absent(run_dir):
    log = report.read_log(os.path.join(run_dir, "logs", "training.csv"))
    assert report.plot_curves(log, "FID", ("fid",), "FID") is not None
    del log["fid"]
    assert report.plot_curves(log, "FID", ("fid",), "FID") is None
    log["val_cycle"] = [float("nan")] * 5
    assert report.plot_curves(log, "Validation", ("val_cycle",), "L1") is None


def test_exports_are_found_from_the_config(run_dir, tmp_path):
    export_dir = tmp_path / "saved_models"
    for name in ("apple2orange/1", "apple2orange/2", "orange2apple/1", "other/1"):
        (export_dir / name).mkdir(parents=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"name": "apple2orange", "export_dir": str(export_dir)}, f)
    with open(report.write_report(run_dir), encoding="utf-8") as f:
        page = f.read()
    for name in ("apple2orange/1", "apple2orange/2", "orange2apple/1"):
        assert os.path.join(str(export_dir), name) in page
    assert "other" not in page


def test_report_of_a_tiny_training_run_shows_its_curves(tiny_run, capsys):
    run, export_dir = tiny_run
    assert report_cli.main([run]) == 0
    assert capsys.readouterr().out.strip() == f"Wrote {os.path.join(run, 'report.html')}"
    with open(os.path.join(run, "report.html"), encoding="utf-8") as f:
        page = f.read()
    curves = [image for image in _embedded_pngs(page) if image.size == (640, 360)]
    assert len(curves) >= 2  # losses and generator terms
    assert "Epoch 1 " in page and "Epoch 2 " in page
    assert os.path.join(export_dir, "apple2orange", "1") in page


def test_not_a_run_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_cli.main([str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "no such run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report_cli.main([str(tmp_path)])
    assert "is not a run folder" in capsys.readouterr().err
