import json
import math
import os

import keras
import numpy as np
import pytest

from cyclegan_tf.cli import evaluate as evaluate_cli
from cyclegan_tf.evaluation import metrics


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    """A tiny randomly initialised generator saved as .keras."""
    from cyclegan_tf.models import resnet_generator

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("model") / "netG_A2B.keras")
    resnet_generator(ngf=4, n_res_blocks=1, name="netG_A2B").save(path)
    return path


def test_evaluates_offline_with_a_local_weights_file(
    synthetic_dir, generator_file, weights_file, tmp_path, capsys
):
    json_path, cache = str(tmp_path / "fid.json"), str(tmp_path / "cache")
    code = evaluate_cli.main(
        [
            "--model", generator_file,
            "--data-dir", synthetic_dir,
            "--split", "testA",
            "--inception-weights", weights_file,
            "--json", json_path,
            "--cache-dir", cache,
            "--max-images", "4",
            "--kid-subsets", "3",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "translated" in out and "untranslated source" in out

    with open(json_path) as f:
        results = json.load(f)
    assert results["source"] == os.path.join(synthetic_dir, "testA")
    assert results["target"] == os.path.join(synthetic_dir, "testB")
    assert (results["num_source"], results["num_target"], results["kid_subset_size"]) == (4, 4, 4)
    for scores in (results, results["baseline"]):
        assert all(math.isfinite(scores[key]) for key in ("fid", "kid", "kid_std"))
        assert scores["fid"] >= 0

    # The baseline compares the untranslated source with the target, whose features were cached.
    cached = {name.split("-")[0]: np.load(os.path.join(cache, name)) for name in os.listdir(cache)}
    assert sorted(cached) == ["testA", "testB"]
    assert cached["testA"].shape == (4, 2048)
    expected = metrics.fid(cached["testA"], cached["testB"])
    assert results["baseline"]["fid"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_offline_without_weights_fails_with_one_line(
    synthetic_dir, generator_file, monkeypatch, capsys
):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(
            ["--model", generator_file, "--data-dir", synthetic_dir, "--split", "testA"]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "cyclegan-evaluate: error: --inception-weights: cannot download the InceptionV3"
    )
    assert err.endswith("on a machine with internet access and pass that file")


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--source: no source images: give a folder, or a dataset and a split"),
        (["--source", "{a}"], "--target: a source folder needs a folder of target-domain images"),
        (["--dataset", "synthetic"], "--split: must be one of trainA, trainB, testA, testB"),
        (["--source", "{a}", "--data-dir", "{root}", "--split", "testA"], "not both"),
        (["--source", "{empty}", "--target", "{a}"], "holds 0 image file(s)"),
        (["--source", "{root}/nowhere", "--target", "{a}"], "no such folder"),
        (["--source", "{a}", "--target", "{a}", "--max-images", "1"], "Received: 1"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(synthetic_dir, tmp_path, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    paths = {"a": os.path.join(synthetic_dir, "testA"), "root": synthetic_dir}
    paths["empty"] = str(tmp_path / "empty")
    argv = ["--model", "unused.keras"] + [arg.format(**paths) for arg in extra]
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_fails_before_inception_is_built(synthetic_dir, capsys):
    folder = os.path.join(synthetic_dir, "testA")
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--model", "absent.keras", "--source", folder, "--target", folder])
    assert "--model: no such file or folder: absent.keras" in capsys.readouterr().err


def _identity_generator_file(path):
    inputs = keras.Input((None, None, 3), name="images")
    keras.Model(inputs, keras.layers.Identity()(inputs), name="identity").save(path)
    return path


def test_an_identity_translator_scores_exactly_the_baseline(synthetic_dir, weights_file, tmp_path):
    from cyclegan_tf.evaluation import evaluate

    model = _identity_generator_file(str(tmp_path / "identity.keras"))
    folders = {
        "source": os.path.join(synthetic_dir, "testA"),
        "target": os.path.join(synthetic_dir, "testB"),
    }
    results = evaluate(model, inception_weights=weights_file, kid_subsets=3, **folders)
    assert results["fid"] == pytest.approx(results["baseline"]["fid"], rel=1e-6, abs=1e-6)
    assert results["kid"] == pytest.approx(results["baseline"]["kid"], rel=1e-5, abs=1e-7)


def test_the_translated_fid_is_the_fid_of_the_translations(
    synthetic_dir, generator_file, weights_file, tmp_path
):
    from cyclegan_tf import inference
    from cyclegan_tf.data import list_image_files, read_image_file
    from cyclegan_tf.evaluation import InceptionFeatures

    source, target = (os.path.join(synthetic_dir, split) for split in ("testA", "testB"))
    json_path = str(tmp_path / "scores.json")
    code = evaluate_cli.main(
        ["--model", generator_file, "--source", source, "--target", target,
         "--inception-weights", weights_file, "--kid-subsets", "3", "--json", json_path]
    )  # fmt: skip
    assert code == 0
    with open(json_path) as f:
        cli_fid = json.load(f)["fid"]

    # The same number, computed without the CLI or the evaluation module.
    translator = inference.load_translator(generator_file)
    translated = [
        np.asarray(translator.translate_pixels(read_image_file(path)[None])[0])
        for path in list_image_files(source)
    ]
    inception = InceptionFeatures(weights_file)
    target_images = [read_image_file(path) for path in list_image_files(target)]
    expected = metrics.fid(
        inception(translated, progress=False), inception(target_images, progress=False)
    )
    assert cli_fid == pytest.approx(expected, rel=1e-6)
