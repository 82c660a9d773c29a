import os

import numpy as np
import pytest
from PIL import Image

from cyclegan_tf.cli import translate as translate_cli


def _write_image(path, size):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    _write_image(folder / "wide.png", (21, 50))
    _write_image(folder / "tiny.jpg", (3, 5))
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize("model_kind", ["keras", "version", "base"])
def test_outputs_keep_the_input_size(tiny_run, inputs, tmp_path, model_kind, capsys):
    run, export_dir = tiny_run
    model = {
        "keras": os.path.join(run, "models", "netG_A2B.keras"),
        "version": os.path.join(export_dir, "apple2orange", "1"),
        "base": os.path.join(export_dir, "apple2orange"),
    }[model_kind]
    output = tmp_path / "out"
    code = translate_cli.main(
        ["--model", model, "--input", str(inputs), "--output", str(output), "--side-by-side"]
    )
    assert code == 1  # broken.jpg failed; the others were written
    err = capsys.readouterr().err
    assert "broken.jpg" in err
    assert Image.open(output / "wide.png").size == (50, 21)
    assert Image.open(output / "tiny.png").size == (5, 3)
    assert Image.open(output / "wide_compare.png").size == (100, 21)
    assert not (output / "broken.png").exists()


def test_keras_and_saved_model_agree(tiny_run, inputs, tmp_path):
    run, export_dir = tiny_run
    wide = str(inputs / "wide.png")
    for name, model in [
        ("k", os.path.join(run, "models", "netG_A2B.keras")),
        ("s", os.path.join(export_dir, "apple2orange")),
    ]:
        assert (
            translate_cli.main(
                ["--model", model, "--input", wide, "--output", str(tmp_path / name)]
            )
            == 0
        )
    keras_out = np.asarray(Image.open(tmp_path / "k" / "wide.png"), "int32")
    saved_out = np.asarray(Image.open(tmp_path / "s" / "wide.png"), "int32")
    assert np.abs(keras_out - saved_out).max() <= 1


def test_model_that_is_not_a_generator_is_refused(tiny_run, inputs, tmp_path, capsys):
    run, _ = tiny_run
    cases = {
        os.path.join(run, "models", "netD_A.keras"): "is not a generator",
        os.path.join(run, "config.json"): "is not a .keras model file",
        run: "neither a SavedModel",
        str(tmp_path / "nothing"): "no such file or folder",
    }
    for model, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            translate_cli.main(
                ["--model", model, "--input", str(inputs), "--output", str(tmp_path)]
            )
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_split_mode_names_outputs_after_their_sources(tiny_run, synthetic_dir, tmp_path):
    run, _ = tiny_run
    output = tmp_path / "out"
    argv = ["--model", run, "--data-dir", synthetic_dir, "--split", "test", "--output", str(output)]
    assert translate_cli.main([*argv, "--side-by-side"]) == 0
    for domain in ("A", "B"):
        sources = sorted(os.listdir(os.path.join(synthetic_dir, f"test{domain}")))
        stems = [os.path.splitext(name)[0] for name in sources]
        written = sorted(
            name for name in os.listdir(output / domain) if not name.endswith("_compare.png")
        )
        assert written == [f"{stem}.png" for stem in stems]
    # B outputs come from B sources through B->A: compare with a direct translation of one file.
    from cyclegan_tf import inference
    from cyclegan_tf.data import read_image_file
    from cyclegan_tf.inference import file_translation

    source = os.path.join(
        synthetic_dir, "testB", sorted(os.listdir(os.path.join(synthetic_dir, "testB")))[3]
    )
    translator = inference.load_translator(os.path.join(run, "models", "netG_B2A.keras"))
    expected = file_translation.translate_array(translator, read_image_file(source)).astype("int32")
    stem = os.path.splitext(os.path.basename(source))[0]
    written = np.asarray(Image.open(output / "B" / f"{stem}.png"), "int32")
    assert np.abs(written - expected).max() <= 1


def test_split_mode_needs_a_run_folder(tiny_run, synthetic_dir, tmp_path, capsys):
    run, _ = tiny_run
    model = os.path.join(run, "models", "netG_A2B.keras")
    with pytest.raises(SystemExit):
        translate_cli.main(
            ["--model", model, "--data-dir", synthetic_dir, "--output", str(tmp_path)]
        )
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("model_kind", ["keras", "saved_model"])
def test_small_budget_translates_in_tiles_with_the_same_result(
    tiny_run, inputs, tmp_path, capsys, model_kind
):
    run, export_dir = tiny_run
    model = {
        "keras": os.path.join(run, "models", "netG_A2B.keras"),
        "saved_model": os.path.join(export_dir, "apple2orange"),
    }[model_kind]
    wide = str(inputs / "wide.png")
    argv = ["--model", model, "--input", wide, "--output"]
    assert translate_cli.main([*argv, str(tmp_path / "whole")]) == 0
    assert "in tiles" not in capsys.readouterr().out
    assert translate_cli.main([*argv, str(tmp_path / "tiled"), "--max-memory-gb", "0.5"]) == 0
    assert "Translating 50x21 in tiles" in capsys.readouterr().out
    whole = np.asarray(Image.open(tmp_path / "whole" / "wide.png"), "int32")
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "wide.png"), "int32")
    assert np.abs(whole - tiled).max() <= 1
    with pytest.raises(SystemExit):
        translate_cli.main([*argv, str(tmp_path / "x"), "--max-memory-gb", "0"])
    assert "--max-memory-gb: must be a positive number" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory):
    """A tiny generator .keras file (ngf 4, 1 block): fast to load and to run."""
    import keras

    from cyclegan_tf.models import resnet_generator

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "netG_A2B.keras"
    resnet_generator(ngf=4, n_res_blocks=1).save(path)
    return str(path)


def test_every_image_of_a_folder_gets_its_own_output(tiny_keras, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    _write_image(folder / "gray.png", (10, 12))
    _write_image(folder / "gray.jpg", (14, 16))
    _write_image(folder / "leaf.webp", (9, 11))
    _write_image(folder / "scan.tiff", (8, 8))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden").write_text("")
    output = tmp_path / "out"
    code = translate_cli.main(
        ["--model", tiny_keras, "--input", str(folder), "--output", str(output)]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert sorted(os.listdir(output)) == ["gray_jpg.png", "gray_png.png", "leaf.png"]
    assert Image.open(output / "gray_jpg.png").size == (16, 14)
    assert Image.open(output / "leaf.png").size == (11, 9)
    skipped = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and "scan.tiff" in skipped[1] and "(.tiff;" in skipped[1]
    assert "Wrote 3 image(s)" in captured.out and "2 other file(s) skipped" in captured.out


def test_two_inputs_for_one_output_name_are_refused_before_any_work(tiny_keras, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write_image(tmp_path / folder / "x.png", (6, 6))
    output = tmp_path / "out"
    argv = ["--model", tiny_keras, "--output", str(output)]
    with pytest.raises(SystemExit) as exit_info:
        translate_cli.main([*argv, "--input", str(tmp_path / "a"), str(tmp_path / "b")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--input:" in err and "would both be written to x.png" in err
    assert not output.exists()


def test_an_output_that_is_a_file_is_refused_before_any_work(tiny_keras, inputs, tmp_path, capsys):
    target = tmp_path / "out.png"
    target.write_bytes(b"mine")
    with pytest.raises(SystemExit) as exit_info:
        translate_cli.main(
            ["--model", tiny_keras, "--input", str(inputs / "wide.png"), "--output", str(target)]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"cyclegan-translate: error: --output: {target} is a file; give a folder for the outputs"
    )
    assert target.read_bytes() == b"mine"


def test_a_portrait_phone_photo_comes_out_upright(tiny_keras, tmp_path):
    from tests.conftest import jpeg_with_orientation

    stored = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    photo = tmp_path / "IMG_0001.JPG"
    photo.write_bytes(jpeg_with_orientation(stored, 6))  # landscape pixels, "rotate 90 clockwise"
    output = tmp_path / "out"
    assert (
        translate_cli.main(["--model", tiny_keras, "--input", str(photo), "--output", str(output)])
        == 0
    )
    assert Image.open(output / "IMG_0001.png").size == (24, 40)  # as a viewer shows it: portrait


def test_a_large_black_png_is_translated_within_an_address_space_limit(tiny_keras, tmp_path):
    import resource
    import subprocess
    import sys

    # TensorFlow's own CPU convolutions (a CPU without AVX-512 VNNI/BF16 or AMX) on 16 threads ask
    # for the im2col of a whole convolution at once: 3.3 GB for this image's last convolution, which
    # the limit refuses. This run peaks at 2.6 GiB of address space; without the bound it needed 7.5.
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((2048, 2048, 3), np.uint8)).save(black)
    limit = 4 * 2**30
    env = {
        **os.environ,
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_NUM_INTRAOP_THREADS": "16",
        "MALLOC_ARENA_MAX": "2",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = [sys.executable, "-m", "cyclegan_tf.cli.translate", "--model", tiny_keras]
    command += ["--input", str(black), "--output", str(tmp_path / "out")]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "black.png").size == (2048, 2048)


def test_a_folder_of_photos_and_videos(tiny_keras, tmp_path, capsys):
    from tests.conftest import write_clip

    folder = tmp_path / "holiday"
    folder.mkdir()
    _write_image(folder / "beach.jpg", (20, 30))
    write_clip(folder / "waves.mp4", frames=10, rotation=-90)
    (folder / "broken.mov").write_bytes(b"not a video at all")
    output = tmp_path / "out"
    argv = ["--model", tiny_keras, "--input", str(folder), "--output", str(output)]
    code = translate_cli.main([*argv, "--side-by-side", "--temporal-smoothing", "0.5"])
    captured = capsys.readouterr()
    assert code == 1  # broken.mov failed; the others were written
    assert sorted(os.listdir(output)) == [
        "beach.png",
        "beach_compare.png",
        "waves.mp4",
        "waves_compare.mp4",
    ]
    errors = [line for line in captured.err.splitlines() if "broken.mov" in line]
    assert len(errors) == 1 and "cannot read video" in errors[0]
    summary = next(line for line in captured.out.splitlines() if "waves.mp4:" in line)
    assert "10 frames, 32x48, 10 fps, 1.00 s, audio copied; flicker ratio" in summary
    assert "Wrote 1 image(s) and 1 video(s)" in captured.out and "1 failed" in captured.out


def test_ctrl_c_during_a_video_says_what_was_not_written(tiny_keras, tmp_path, capsys, monkeypatch):
    from cyclegan_tf import inference
    from tests.conftest import write_clip

    class Interrupting:
        def translate_pixels(self, images):
            raise KeyboardInterrupt

    monkeypatch.setattr(inference, "load_translator", lambda *args: Interrupting())
    clip = tmp_path / "clip.mkv"
    write_clip(clip, frames=4, audio=None)
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        translate_cli.main(["--model", tiny_keras, "--input", str(clip), "--output", str(output)])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == (
        f"cyclegan-translate: interrupted: {clip} was not written (nothing partial is left); "
        f"the 0 output(s) finished before it are in {output}"
    )
    assert os.listdir(output) == []


def test_videos_without_pyav_are_refused_naming_the_extra(
    tiny_keras, tmp_path, capsys, monkeypatch
):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    monkeypatch.setitem(__import__("sys").modules, "av", None)
    with pytest.raises(SystemExit) as exit_info:
        translate_cli.main(["--model", tiny_keras, "--input", str(clip), "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'cyclegan_tf[video]'" in err
