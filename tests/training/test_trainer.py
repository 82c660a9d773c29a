import csv
import io as bytes_io
import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cyclegan_tf import inference, model_store, options
from cyclegan_tf.cli import train as train_cli
from cyclegan_tf.models.cyclegan import CycleGAN
from cyclegan_tf.training import callbacks, trainer
from cyclegan_tf.training.config import TrainConfig
from cyclegan_tf.training.run_folder import RunFolder


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_the_run_folder_and_exports(tiny_run):
    run, export_dir = tiny_run
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["name"] == "apple2orange" and config["decay_epochs"] == 1
    rows = _read_csv(os.path.join(run, "logs", "training.csv"))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"d_loss", "g_loss", "adv", "cycle", "identity", "cycle_aba"} <= set(rows[0])
    assert all(np.isfinite(float(row["g_loss"])) for row in rows)
    log_lines = open(os.path.join(run, "logs", "train.log")).read().splitlines()
    assert log_lines[-1].startswith("[Epoch 2/2] [Batch 3/3] [D loss: ")
    assert (
        "[G loss: " in log_lines[-1] and ", cycle: " in log_lines[-1] and "ETA: " in log_lines[-1]
    )
    for filename in CycleGAN.NETWORKS.values():
        network = keras.models.load_model(os.path.join(run, "models", filename), compile=False)
        assert network.output_shape[-1] in (1, 3)
    assert os.path.exists(os.path.join(run, "images", "epoch_001.png"))
    assert os.path.exists(os.path.join(run, "images", "epoch_002.png"))
    assert os.path.exists(os.path.join(run, "images", "latest.png"))
    assert not os.path.exists(os.path.join(run, "backup"))  # deleted when training finishes
    assert os.listdir(os.path.join(export_dir, "apple2orange")) == ["1"]
    assert os.listdir(os.path.join(export_dir, "orange2apple")) == ["1"]
    events = os.listdir(os.path.join(run, "logs", "train"))
    assert any(name.startswith("events.out.tfevents") for name in events)


def test_a_finished_run_is_never_overwritten(tiny_run, tiny_args, capsys):
    run, export_dir = tiny_run
    before = os.path.getmtime(os.path.join(run, "models", "netG_A2B.keras"))
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(tiny_args(run, export_dir))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "already holds a finished run" in err and len(err.strip().splitlines()) == 1
    assert os.path.getmtime(os.path.join(run, "models", "netG_A2B.keras")) == before


def test_resume_with_another_architecture_is_refused(tmp_path, tiny_args, capsys):
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    (run / "backup" / "latest.weights.h5").write_bytes(b"")
    args = tiny_args(str(run), str(tmp_path / "exports"))
    options.from_args(TrainConfig, train_cli.build_parser().parse_args(args)).resolved().to_json(
        str(run / "config.json")
    )
    with pytest.raises(SystemExit):
        train_cli.main([*args, "--ngf", "8"])
    err = capsys.readouterr().err
    assert "--ngf: cannot resume" in err and "it is 8 but the run was started with 4" in err


def test_bad_options_fail_with_one_line(tmp_path, synthetic_dir, capsys):
    cases = {
        ("--image-size", "30"): "error: --image-size: must be a multiple of 4",
        ("--load-size", "16", "--image-size", "32"): "error: --load-size: must be >= image_size",
        ("--batch-size", "0"): "error: --batch-size: must be positive",
        ("--keep-best",): "error: --keep-best: needs fid_every=N",
        ("--lr", "nan"): "error: --lr: must be a finite number > 0. Received: lr=nan",
        ("--lr", "inf"): "error: --lr: must be a finite number > 0. Received: lr=inf",
        ("--lambda-cycle", "nan"): "error: --lambda-cycle: must be a finite number >= 0",
        ("--beta1", "5"): "error: --beta1: must be a finite number in [0, 1). Received: beta1=5.0",
        ("--data-dir", str(tmp_path / "missing")): str(tmp_path / "missing"),
    }
    for extra, message in cases.items():
        argv = ["--data-dir", synthetic_dir, "--output-dir", str(tmp_path / "r"), *extra]
        with pytest.raises(SystemExit) as exit_info:
            train_cli.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # nothing is written for a run that cannot start


def test_non_finite_loss_stops_before_anything_is_saved(tmp_path):
    model = CycleGAN(ngf=4, ndf=4, n_res_blocks=1, image_size=32, pool_size=0)
    model.compile()
    images = np.full((2, 32, 32, 3), np.nan, "float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, images)).batch(1).repeat()
    models_dir = tmp_path / "models"
    guard = callbacks.StopOnNonFiniteLoss()
    with pytest.raises(
        callbacks.TrainingDiverged, match=r"became nan at step 1 \(epoch 1, batch 1\)"
    ):
        model.fit(
            dataset,
            epochs=1,
            steps_per_epoch=2,
            verbose=0,
            callbacks=[guard, callbacks.SaveNetworks(str(models_dir))],
        )
    assert not models_dir.exists()


def test_init_from_copies_the_networks(tiny_run, tiny_args):
    run, _ = tiny_run
    config = TrainConfig.from_json(os.path.join(run, "config.json"))
    model = trainer.build_model(config, steps_per_epoch=3)
    trainer.load_network_weights(model, run)
    saved = keras.models.load_model(os.path.join(run, "models", "netD_B.keras"), compile=False)
    for mine, theirs in zip(model.discriminator_b.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    other = CycleGAN(ngf=8, ndf=4, n_res_blocks=1, image_size=32)
    with pytest.raises(ValueError, match="does not fit this model's generator_ab"):
        trainer.load_network_weights(other, run)


def _network_weights(path):
    return keras.models.load_model(path, compile=False).get_weights()


def test_init_from_starts_a_new_run_from_another_runs_networks(tiny_run, tiny_args, tmp_path):
    run, _ = tiny_run
    # A learning rate so small that one Adam step leaves the weights where they started.
    tiny_step = ["--epochs", "1", "--steps-per-epoch", "1", "--lr", "1e-20"]
    tuned = str(tmp_path / "tuned")
    argv = [*tiny_args(tuned, str(tmp_path / "exports")), *tiny_step, "--init-from", run]
    assert train_cli.main(argv) == 0
    for attribute in CycleGAN.NETWORKS:
        source = _network_weights(RunFolder(run).network(attribute))
        started = _network_weights(RunFolder(tuned).network(attribute))
        for mine, theirs in zip(started, source):
            np.testing.assert_allclose(mine, theirs, atol=1e-6, err_msg=attribute)
    # Without --init-from the same command starts from its seed's random weights, which differ.
    config = TrainConfig.from_json(os.path.join(tuned, "config.json"))
    keras.utils.set_random_seed(config.seed)
    unrelated = CycleGAN(**config.model_options()).generator_ab.get_weights()
    source = _network_weights(RunFolder(run).network("generator_ab"))
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(unrelated, source))


def test_export_every_exports_during_training_and_once_more_only_if_needed(tmp_path, tiny_args):
    run, exports = str(tmp_path / "run"), str(tmp_path / "exports")
    quick = ("--steps-per-epoch", "1", "--sample-every", "0")
    argv = [*tiny_args(run, exports), *quick, "--epochs", "3", "--export-every", "2"]
    assert train_cli.main(argv) == 0
    # After epoch 2, then at the end (epoch 3); both directions share the version numbers.
    for name in ("apple2orange", "orange2apple"):
        assert sorted(os.listdir(os.path.join(exports, name))) == ["1", "2"]
    exported = tf.saved_model.load(os.path.join(exports, "apple2orange", "2"))
    images = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype("float32")
    generator = keras.models.load_model(RunFolder(run).generator("A2B"), compile=False)
    expected = inference.translate_pixels(generator, images).numpy()
    served = exported.signatures["serving_default"](images=tf.constant(images))["images"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-3)  # the last export is the final model


def test_the_end_of_training_does_not_export_the_last_epoch_again(tmp_path):
    exporter = callbacks.ExportGenerators(str(tmp_path), "apple2orange", every_epochs=1)
    exporter.set_model(CycleGAN(ngf=4, ndf=4, n_res_blocks=1, image_size=32))
    exporter.on_train_begin()
    exporter.on_epoch_begin(0)
    exporter.on_epoch_end(0)
    exporter.on_train_end()
    assert os.listdir(tmp_path / "apple2orange") == ["1"]  # after the epoch, not again at the end


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch=1):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt  # after that epoch's backup, like a Ctrl-C


class _Killed(BaseException):
    """A kill inside this process: nothing of the run handles it."""


class _KillAtEpochEnd(keras.callbacks.Callback):
    """Put first: dies at an epoch's end after its last step, before anything of that end is saved."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed


def test_a_run_killed_at_an_epochs_end_or_in_its_final_export_resumes_exactly(
    tmp_path, tiny_args, monkeypatch, capsys
):
    run, exports = str(tmp_path / "run"), str(tmp_path / "exports")
    argv = [*tiny_args(run, exports), "--epochs", "3", "--pool-size", "50", "--backup-every", "1"]
    config = options.from_args(TrainConfig, train_cli.build_parser().parse_args(argv))
    make_callbacks = trainer.default_callbacks
    with monkeypatch.context() as patch:  # killed after epoch 2's last step (and its backups)
        patch.setattr(
            trainer,
            "default_callbacks",
            lambda *a, **k: [_KillAtEpochEnd(1), *make_callbacks(*a, **k)],
        )
        with pytest.raises(_Killed):
            trainer.train(config)

    # The same folder without its backup/ (lost, say): the run cannot continue, and says why.
    lost = str(tmp_path / "lost")
    shutil.copytree(run, lost)
    shutil.rmtree(os.path.join(lost, "backup"))
    with pytest.raises(SystemExit) as refused:
        train_cli.main([*argv, "--output-dir", lost])
    assert refused.value.code == 2
    assert (
        f"--output-dir: {lost} holds an unfinished run (1 of 3 epochs logged) whose backup/ is gone"
        in (capsys.readouterr().err)
    )

    publish = model_store.publish
    with monkeypatch.context() as patch:  # killed while the first SavedModel is written
        patch.setattr(model_store, "publish", lambda *a, **k: (_ for _ in ()).throw(_Killed()))
        with pytest.raises(_Killed):
            trainer.train(config)
    assert model_store.publish is publish and not os.path.exists(exports)

    model, history = trainer.train(config)
    assert history.epoch == []  # the epochs were done: only the end was missing
    rows = _read_csv(os.path.join(run, "logs", "training.csv"))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]  # each epoch once
    assert int(model.generator_optimizer.iterations.numpy()) == 3 * 3
    assert int(model.discriminator_optimizer.iterations.numpy()) == 3 * 3
    # 3 epochs x 3 steps x 2 images: the pools came back from the backups, not refilled from empty.
    assert int(model.pool_a.count.numpy()) == 18
    for name in ("apple2orange", "orange2apple"):
        assert os.listdir(os.path.join(exports, name)) == ["1"]
    assert os.path.exists(os.path.join(run, "report.html"))
    assert os.path.exists(os.path.join(run, "finished.json"))
    assert not os.path.exists(os.path.join(run, "backup"))


def test_validation_fid_and_best_generator_during_training(tiny_run):
    run, _ = tiny_run  # trained with conftest.TINY_RUN_EVALUATION
    rows = _read_csv(os.path.join(run, "logs", "training.csv"))
    assert all(float(row["val_cycle"]) > 0 and float(row["val_identity"]) > 0 for row in rows)
    assert all(np.isfinite(float(row["fid"])) for row in rows)  # first and last epochs are scored
    best = keras.models.load_model(
        os.path.join(run, "models", "best_netG_A2B.keras"), compile=False
    )
    assert best.output_shape == (None, None, None, 3)
    report = open(os.path.join(run, "report.html")).read()
    assert "data:image/png;base64," in report and "apple2orange" in report


@pytest.mark.parametrize(
    "position, epochs, expected",
    [
        ((0, 0), 3, [(0, 3, 0, True)]),  # a new run
        ((1, 0), 3, [(1, 3, 0, True)]),  # resumed at an epoch's start
        ((1, 2), 3, [(1, 2, 2, False), (2, 3, 0, True)]),  # mid-epoch: the rest, then the others
        ((2, 2), 3, [(2, 3, 2, True)]),  # mid-epoch in the last epoch
        ((1, 6), 3, [(2, 3, 0, True)]),  # after an epoch's last step, before its end
        ((3, 0), 3, [(3, 3, 0, True)]),  # all epochs done: a fit of none still ends the training
    ],
)
def test_training_segments_cover_exactly_the_remaining_steps(position, epochs, expected):
    segments = trainer.TrainingSegment.plan(position, steps_per_epoch=6, epochs=epochs)
    assert [(s.first_epoch, s.end_epoch, s.first_batch, s.is_last) for s in segments] == expected
    assert segments[0].start_step(6) == min(position[0] * 6 + position[1], epochs * 6)


def _mixed_size_folder(root):
    """trainA/ and trainB/ of PNGs of different sizes and aspect ratios."""
    rng = np.random.default_rng(0)
    for domain, shapes in (("A", [(24, 40), (40, 28), (30, 30)]), ("B", [(26, 44), (32, 32)])):
        folder = root / f"train{domain}"
        folder.mkdir(parents=True)
        for index, shape in enumerate(shapes):
            image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    return str(root)


def test_images_of_their_own_sizes_train_and_resume_with_their_pools(
    tmp_path, tiny_args, monkeypatch
):
    run, exports = str(tmp_path / "run"), str(tmp_path / "exports")
    argv = [
        *tiny_args(run, exports),
        *("--data-dir", _mixed_size_folder(tmp_path / "data"), "--preprocess", "none"),
        *("--image-size", "24"),  # the smallest side the discriminators answer for
        *("--batch-size", "1", "--epochs", "2", "--steps-per-epoch", "2", "--pool-size", "50"),
        *("--sample-every", "0"),
    ]
    config = options.from_args(TrainConfig, train_cli.build_parser().parse_args(argv))
    make_callbacks = trainer.default_callbacks
    monkeypatch.setattr(
        trainer, "default_callbacks", lambda *a, **k: [*make_callbacks(*a, **k), _Crash(0)]
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config)
    monkeypatch.setattr(trainer, "default_callbacks", make_callbacks)
    model, history = trainer.train(config)
    assert history.epoch == [1]
    assert all(np.isfinite(value[0]) for value in history.history.values())
    # 2 epochs x 2 steps x 1 image each: the pools of images of any size came back from the backup.
    assert int(model.pool_a.count.numpy()) == int(model.pool_b.count.numpy()) == 4
    # Fakes of A are made from B images, so they have B's sizes, and the other way round.
    for pool, sizes in ((model.pool_a, {(24, 44), (32, 32)}), (model.pool_b, {(24, 40), (40, 28)})):
        stored = [tf.io.parse_tensor(entry, tf.float32).shape for entry in pool.images.numpy()[:4]]
        assert {tuple(shape) for shape in stored} <= {(*size, 3) for size in sizes | {(32, 32)}}


def test_sample_grid_tiles_each_image_into_its_cell():
    columns = [np.full((2, 4, 6, 3), value, np.float32) for value in (-1.0, 0.0, 1.0)]
    columns[1][1] = 1.0  # row 2 of column 2 differs
    mosaic = callbacks.grid_mosaic(columns, gap=2)
    assert mosaic.shape == (2 * 4 + 2, 3 * 6 + 2 * 2, 3) and mosaic.dtype == np.uint8
    np.testing.assert_array_equal(mosaic[0:4, 0:6], 0)  # -1 -> black
    np.testing.assert_array_equal(mosaic[0:4, 8:14], 128)
    np.testing.assert_array_equal(mosaic[6:10, 8:14], 255)
    np.testing.assert_array_equal(mosaic[6:10, 16:22], 255)
    np.testing.assert_array_equal(mosaic[4:6], 255)  # the gaps are white
    np.testing.assert_array_equal(mosaic[:, 6:8], 255)
    png = callbacks.render_grid(columns, ["a", "b", "c"], "epoch 1, step 2")
    assert Image.open(bytes_io.BytesIO(png)).size == (3 * 160, 2 * 160 + 50)


def test_sample_grid_shrinks_large_images_by_averaging_blocks():
    image = np.full((1, 20, 30, 3), -1.0, np.float32)
    image[0, :, ::2] = 1.0  # black and white stripes one pixel wide average to grey
    mosaic = callbacks.grid_mosaic([image, image], gap=1, max_side=10)
    assert mosaic.shape == (7, 10 + 1 + 10, 3)  # shrunk 3x, to 7 x 10
    assert set(np.unique(mosaic[:6, :10])) == {85, 170}  # blocks of 3 columns: 1/3 or 2/3 white
    np.testing.assert_array_equal(mosaic[:, 10], 255)


def _prepared_run(tmp_path, tiny_args):
    """A run folder as a first epoch of ``tiny_args`` would leave it: config.json and backup/."""
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    argv = tiny_args(str(run), str(tmp_path / "exports"))
    options.from_args(TrainConfig, train_cli.build_parser().parse_args(argv)).resolved().to_json(
        str(run / "config.json")
    )
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": -1}')
    return run, argv


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            {"backup/latest.weights.h5": b""},
            "no usable backup in {run}/backup: {run}/backup/latest.weights.h5 is empty. Restore "
            "the files from a copy to resume, or move {run}/backup away to start this run again "
            "from its first epoch",
        ),
        (
            {"backup/latest.weights.h5": b"\x89HDF\r\n\x1a\n truncated"},
            "no usable backup in {run}/backup: {run}/backup/latest.weights.h5 could not be loaded "
            "(Unable to synchronously open file (",
        ),
        (
            {"backup/latest.weights.h5": b"x", "backup/training_metadata.json": b"\x00garbage"},
            "no usable backup in {run}/backup: {run}/backup/training_metadata.json is damaged "
            "(Expecting value: line 1 column 1 (char 0))",
        ),
        (
            {"config.json": b"{not json", "backup/latest.weights.h5": b"x"},
            "--output-dir: {run}/config.json is damaged (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)): it holds the options of the run in {run}; restore "
            "it, or use another output folder",
        ),
    ],
    ids=["empty-first-backup", "truncated-backup", "garbage-metadata", "invalid-config"],
)
def test_damaged_run_files_are_named_in_one_line(tmp_path, tiny_args, capsys, damage, message):
    run, argv = _prepared_run(tmp_path, tiny_args)
    for name, contents in damage.items():
        (run / name).write_bytes(contents)
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"cyclegan-train: error: {message.format(run=run)}"), err[-1]
    assert (run / "backup").is_dir() and not (run / "models" / "netG_A2B.keras").exists()


def test_a_diverged_run_says_what_it_kept(tmp_path, tiny_args, capsys):
    run = str(tmp_path / "run")
    # A cycle weight so large that the losses overflow within the first steps.
    argv = [*tiny_args(run, str(tmp_path / "exports")), "--lambda-cycle", "3e38"]
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        r"cyclegan-train: error: [dg]_loss became (nan|inf) at step \d \(epoch 1, batch \d\); "
        r"training stopped before anything was saved from that step; kept: "
        r"backup/state-000001\.weights\.h5 \(the start of epoch 1\), from which the same command "
        r"resumes \(and would likely diverge again: a lower lr, or other data\)",
        err[-1],
    ), err[-1]
    assert not os.listdir(os.path.join(run, "models"))  # nothing after epoch 1, so nothing said


def test_a_second_training_in_the_same_folder_fails_at_once_naming_the_first(
    tmp_path, tiny_args, capsys
):
    import subprocess
    import sys
    import time

    run = str(tmp_path / "run")
    argv = [*tiny_args(run, str(tmp_path / "exports")), "--epochs", "50"]
    first = subprocess.Popen(
        [sys.executable, "-m", "cyclegan_tf.cli.train", *argv],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not os.path.exists(os.path.join(run, "config.json")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with pytest.raises(SystemExit) as exit_info:
            train_cli.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"cyclegan-train: error: --output-dir: {run} is in use by another training: pid "
            f"{first.pid} on "
        )
        assert "(train.py --data-dir " in err[0] and err[0].endswith(f"(lock: {run}/.lock)")
    finally:
        first.kill()
        first.wait()
    from cyclegan_tf import io

    with io.exclusive_lock(os.path.join(run, ".lock")):  # a kill -9 released it
        pass
