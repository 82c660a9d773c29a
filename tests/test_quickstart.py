"""What a new user runs first: ``make demo``'s code path and the README's Python example, at tiny size."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from cyclegan_tf.cli import demo as demo_cli
from cyclegan_tf.training import trainer
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_demo_trains_translates_and_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(demo_cli.DEMO_DATA, "size", 40)
    monkeypatch.setitem(demo_cli.DEMO_DATA, "n_train", 8)
    monkeypatch.setitem(demo_cli.DEMO_DATA, "n_test", 3)
    tiny = {"image_size": 32, "load_size": 36, "ngf": 4, "ndf": 4, "n_res_blocks": 1}
    for key, value in {**tiny, "batch_size": 2, "steps_per_epoch": 2, "sample_every": 1}.items():
        monkeypatch.setitem(demo_cli.DEMO_OPTIONS, key, value)
    workdir = tmp_path / "demo"
    assert demo_cli.main(["--workdir", str(workdir), "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    run = workdir / "run"
    for direction, kind in (("A2B", "apple"), ("B2A", "orange")):
        folder = run / "translated" / direction
        assert f"{folder}/*_compare.png" in printed
        outputs = sorted(p.name for p in folder.glob("*.png") if "_compare" not in p.name)
        assert outputs == [f"{kind}_{i:04d}.png" for i in (1, 2, 3)]
        pair = np.asarray(Image.open(folder / f"{kind}_0001_compare.png"))
        assert pair.shape == (40, 80, 3)  # original | translation, at the source's size
    assert sorted(os.listdir(run / "saved_models")) == ["apple2orange", "orange2apple"]
    assert (run / "images" / "epoch_002.png").exists()
    assert len((run / "logs" / "training.csv").read_text().splitlines()) == 3  # header + 2 epochs

    # A second demo never overwrites the first: it trains into run-2 (stopped there, for time).
    first_model = (run / "models" / "netG_A2B.keras").read_bytes()
    started = []

    def train_only_starts(config):
        started.append(config.output_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", train_only_starts)
    with pytest.raises(SystemExit) as interrupted:  # a Ctrl-C exits 130, like any interrupt
        demo_cli.main(["--workdir", str(workdir), "--epochs", "1"])
    assert interrupted.value.code == 130
    assert started == [str(workdir / "run-2")]
    assert (run / "models" / "netG_A2B.keras").read_bytes() == first_model


def _readme_python_example():
    text = README.read_text()
    section = text[text.index("From Python:") :]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    code = _readme_python_example()
    # The same code at tiny size: only numbers shrink and the folders move to tmp_path.
    small = {
        "ngf=16": "ngf=4",
        "ndf=16": "ndf=4",
        "n_res_blocks=3": "n_res_blocks=1",
        "epochs=5": "epochs=1",
        "steps_per_epoch=steps": "steps_per_epoch=2",
    }
    for written, tiny in small.items():
        assert written in code, f"the README example no longer contains {written!r}"
        code = code.replace(written, tiny)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    models = tmp_path / "runs" / "mine" / "models"
    assert sorted(os.listdir(models)) == [
        "netD_A.keras",
        "netD_B.keras",
        "netG_A2B.keras",
        "netG_B2A.keras",
    ]
    assert (tmp_path / "runs" / "mine" / "images" / "epoch_001.png").exists()
    assert (tmp_path / "datasets" / "fruit" / "trainA").is_dir()


def test_readme_names_only_existing_console_scripts():
    import configparser

    config = configparser.ConfigParser()
    config.read(README.parent / "setup.cfg")
    scripts = {
        line.split("=")[0].strip()
        for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    }
    used = set(re.findall(r"\b(cyclegan-[a-z-]+)", README.read_text()))
    assert used <= scripts, used - scripts
