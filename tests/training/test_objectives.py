"""Training objectives through whole runs: CUT and FastCUT as CycleGAN runs go, and older runs still resume.

Each objective's uninterrupted tiny run is built once (``conftest.ObjectiveRuns``); the same command
killed and stopped must end exactly as it did (the crash harness's comparison).
"""

import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest

from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.cli import translate as translate_cli
from cyclegan_tf.data.synthetic import write_synthetic_dataset
from cyclegan_tf.tools import crash_sweep
from tests.conftest import REPO_ROOT
from tests.training.test_crash_points import train_here

pytestmark = pytest.mark.slow

FIXTURE_0_2 = REPO_ROOT / "tests" / "fixtures" / "run_0_2"


@pytest.mark.parametrize("objective", ["cut", "fastcut"])
def test_a_killed_and_stopped_run_ends_as_an_uninterrupted_one(
    objective, objective_runs, tmp_path, monkeypatch, capsys
):
    argv = objective_runs.argv(objective, tmp_path)
    # Killed right after its first mid-epoch backup (the first backup is the initial one).
    assert train_here(argv, monkeypatch, "after:state-*.json:2:raise") == "crashed"
    # One Ctrl-C right after the next backup: it stops there, gracefully.
    assert train_here(argv, monkeypatch, "after:state-*.json:2:sigint") == 130
    assert "run the same command to resume" in capsys.readouterr().err
    assert train_here(argv, monkeypatch) == 0
    _, reference = objective_runs.reference(objective)
    assert crash_sweep.differences(reference, crash_sweep.outcome(str(tmp_path))) == []


def test_a_cut_run_keeps_its_three_networks_its_logs_and_one_generator(objective_runs):
    root, _ = objective_runs.reference("cut")
    run = os.path.join(root, "run")
    models = sorted(os.listdir(os.path.join(run, "models")))
    assert models == ["best_netG.json", "best_netG.keras", "netD.keras", "netF.keras", "netG.keras"]
    generator = keras.models.load_model(os.path.join(run, "models", "netG.keras"), compile=False)
    assert generator.get_config()["antialias"] and generator.get_config()["init_type"] == "xavier"
    projection = keras.models.load_model(os.path.join(run, "models", "netF.keras"), compile=False)
    assert projection.channels == [3, 8, 16, 16]  # input, down_0, down_1, res_0 of a 1-block ngf 4
    last = open(os.path.join(run, "logs", "train.log")).read().splitlines()[-1]
    assert last.startswith("[Epoch 2/2] [Batch 2/2] [D loss: ")
    assert ", adv: " in last and ", nce: " in last and ", nce_y: " in last and "cycle" not in last
    header = open(os.path.join(run, "logs", "training.csv")).readline().strip().split(",")
    assert {"d_loss", "g_loss", "adv", "nce", "nce_y", "d_real", "d_fake", "fid", "kid"} <= set(
        header
    )
    assert os.listdir(os.path.join(root, "exports")) == ["apple2orange"]
    assert sorted(os.listdir(os.path.join(root, "exports", "apple2orange"))) == ["1", "2"]
    assert json.load(open(os.path.join(run, "finished.json")))["exports"] == {
        "apple2orange": os.path.join(root, "exports", "apple2orange", "2")
    }
    report = open(os.path.join(run, "report.html")).read()
    assert "<title>CUT run: apple2orange</title>" in report and "best FID" in report


def test_a_cut_run_translates_domain_a_and_says_b_is_left_out(
    objective_runs, synthetic_dir, tmp_path, capsys
):
    root, _ = objective_runs.reference("fastcut")
    output = tmp_path / "out"
    argv = [
        "--model",
        os.path.join(root, "run"),
        "--data-dir",
        synthetic_dir,
        "--output",
        str(output),
    ]
    assert translate_cli.main(argv) == 0
    assert "translates A to B only; domain B is left out" in capsys.readouterr().out
    assert sorted(os.listdir(output)) == ["A"]
    assert len(os.listdir(output / "A")) == 8


def test_resuming_with_another_objective_is_refused_naming_both(
    objective_runs, tmp_path, monkeypatch, capsys
):
    argv = objective_runs.argv("fastcut", tmp_path)
    assert train_here(argv, monkeypatch, "after:state-*.json:2:raise") == "crashed"
    before = sorted(os.listdir(tmp_path / "run" / "backup"))
    other = [*argv[: argv.index("--objective") + 1], "cut", *argv[argv.index("--objective") + 2 :]]
    assert train_here(other, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"cyclegan-train: error: --objective: cannot resume {tmp_path / 'run'}: it is 'cut' but "
        f"the run was started with 'fastcut' (see {tmp_path / 'run' / 'config.json'}); use the "
        "same options or another output folder"
    )
    assert sorted(os.listdir(tmp_path / "run" / "backup")) == before


@pytest.mark.parametrize(
    "objective,flags,message",
    [
        (
            "cut",
            ["--lambda-cycle", "5"],
            "--lambda-cycle: is an option of --objective cyclegan, not of this run's --objective "
            "cut. Received: lambda_cycle=5.0",
        ),
        ("cyclegan", ["--no-nce-idt"], "--nce-idt: is an option of --objective cut"),
        ("cut", ["--nce-layers", "res_2"], "'res_2' is not a map of this generator"),
        ("fastcut", ["--num-patches", "100"], "is larger than the 8x8 map res_0"),
    ],
)
def test_options_that_cannot_work_are_refused_before_anything_is_written(
    objective, flags, message, synthetic_dir, tmp_path, capsys
):
    argv = crash_sweep.tiny_argv(synthetic_dir, str(tmp_path), objective=objective)
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main([*argv, *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_run_written_before_objectives_resumes_and_exports(tmp_path, caplog):
    """A CycleGAN run of 0.2, killed after its epoch-1 backup (``tests/fixtures/run_0_2``)."""
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_0_2 / "run", run)
    data = write_synthetic_dataset(
        str(tmp_path / "synthetic"), size=32, n_train=8, n_test=4, seed=0
    )
    argv = [
        *("--data-dir", data, "--output-dir", str(run), "--export-dir", str(tmp_path / "exports")),
        *("--image-size", "32", "--load-size", "36", "--ngf", "2", "--ndf", "2"),
        *("--n-res-blocks", "1", "--n-disc-layers", "2", "--batch-size", "2", "--pool-size", "2"),
        *("--epochs", "2", "--steps-per-epoch", "2", "--sample-every", "0"),
        *("--name", "apple2orange"),
    ]
    assert train_cli.main(argv) == 0
    assert "Resuming" in caplog.text and "at epoch 2" in caplog.text
    rows = open(run / "logs" / "training.csv").read().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1"]
    for name in ("apple2orange", "orange2apple"):
        assert os.listdir(tmp_path / "exports" / name) == ["1"]
    resumed = keras.models.load_model(run / "models" / "netG_A2B.keras", compile=False)
    original = keras.models.load_model(
        FIXTURE_0_2 / "run" / "models" / "netG_A2B.keras", compile=False
    )
    moved = [np.abs(a - b).max() for a, b in zip(resumed.get_weights(), original.get_weights())]
    assert max(moved) > 0  # epoch 2 trained from the backup's weights
    assert json.load(open(run / "config.json"))["objective"] == "cyclegan"
    assert (run / "finished.json").exists() and not (run / "backup").exists()


@pytest.mark.parametrize("objective", ["cut", "fastcut"])
def test_the_export_is_served_and_a_12_megapixel_photo_is_translated_in_bands(
    objective, objective_runs, tmp_path
):
    """The run's export behind cyclegan-serve, and its generator on a 12-MP photo in bounded memory."""
    import resource
    import subprocess
    import sys

    import requests
    import tensorflow as tf
    from PIL import Image

    from cyclegan_tf.serving.process import ServerProcess
    from cyclegan_tf.tools.tiled_benchmark import photo_like

    root, _ = objective_runs.reference(objective)
    exports = os.path.join(root, "exports")
    local = tf.saved_model.load(os.path.join(exports, "apple2orange", "2"))
    pixels = np.random.default_rng(3).integers(0, 256, (1, 48, 64, 3)).astype("float32")
    expected = local.signatures["serving_default"](images=tf.constant(pixels))["images"].numpy()
    args = ["--file-system-poll-wait-seconds", "0", "--log-level", "warning"]
    with ServerProcess(exports, args, ready_model="apple2orange") as server:
        url = f"{server.url}/v1/models/apple2orange"
        response = requests.post(f"{url}:predict", json={"instances": pixels.tolist()}, timeout=120)
        assert response.status_code == 200, response.text
        assert np.abs(np.array(response.json()["predictions"]) - expected).max() <= 1.0
        assert requests.get(url, timeout=30).json()["model_version_status"][0]["version"] == "2"

    # 12 MP: whole, the anti-aliased generator would ask for about 10 GiB (estimate_whole_image_bytes);
    # in bands it stays under an address-space limit of 3 GiB.
    photo = tmp_path / "photo.jpg"
    Image.fromarray(photo_like(12.0, seed=1)).save(photo, quality=90)
    limit = 3 * 2**30
    command = [sys.executable, "-m", "cyclegan_tf.cli.translate"]
    command += ["--model", os.path.join(root, "run", "models", "netG.keras"), "--input", str(photo)]
    command += ["--output", str(tmp_path / "out")]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Translating 4000x3000 in tiles" in result.stdout
    translated = Image.open(tmp_path / "out" / "photo.png")
    assert translated.size == (4000, 3000)
    assert np.asarray(translated).std() > 1.0
