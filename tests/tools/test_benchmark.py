"""scripts/benchmark.py: the report's keys and values, the table, the JSON file, bad options."""

import json

import pytest

from cyclegan_tf.cli import benchmark as benchmark_cli

KEYS = (
    "train_step_s",
    "images_per_s",
    "handwritten_step_s",
    "inference_s",
    "pipeline_images_per_s",
    "peak_rss_mb",
    "device",
)
TINY = (
    "--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-res-blocks", "1", "--batch-size", "2",
    "--steps", "3", "--warmup", "1", "--inference-runs", "3", "--pipeline-images", "8",
    "--pipeline-batches", "10",
)  # fmt: skip


def test_benchmark_writes_every_key_and_prints_a_table(tmp_path, capsys):
    path = tmp_path / "out" / "bench.json"
    assert benchmark_cli.main([*TINY, "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    for key in KEYS:
        assert report[key] is not None, key
    assert 0 < report["train_step_s"] < 60 and 0 < report["handwritten_step_s"] < 60
    assert report["images_per_s"] == pytest.approx(2 / report["train_step_s"])
    assert report["fit_overhead"] == pytest.approx(
        report["train_step_s"] / report["handwritten_step_s"] - 1
    )
    assert 0 < report["inference_s"] < 10
    assert report["pipeline_images_per_s"] > 0 and report["pipeline_first_pass_images_per_s"] > 0
    assert report["peak_rss_mb"] > 100
    assert "TensorFlow" in report["device"] and "cores" in report["device"]
    assert report["float32_train_step_s"] is None and report["mixed_precision"] == "float32"
    table = capsys.readouterr().out
    assert f"train step (fit)               {report['train_step_s']:.4f} s" in table
    assert "32 px, batch 2, float32, 1 replica(s)" in table


def test_benchmark_compares_bf16_with_float32_side_by_side(tmp_path):
    path = tmp_path / "bf16.json"
    argv = [*TINY, "--mixed-precision", "bf16", "--compare-float32", "--parts", "train"]
    assert benchmark_cli.main([*argv, "--no-handwritten", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["mixed_precision"] == "bf16" and report["handwritten_step_s"] is None
    assert report["speedup_vs_float32"] == pytest.approx(
        report["float32_train_step_s"] / report["train_step_s"]
    )
    assert report["inference_s"] is None and report["pipeline_images_per_s"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps: must be >= 1. Received: 0"),
        (["--image-size", "30"], "--image-size: must be a multiple of 4 and at least 4"),
        (["--parts", "train,gpu"], "--parts: must name some of train, inference, pipeline"),
        (["--compare-float32"], "--compare-float32: needs mixed_precision"),
        (["--cpu-replicas", "2"], "--cpu-replicas: needs mirrored_strategy"),
    ],
)
def test_bad_benchmark_options_fail_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark_cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cyclegan-benchmark: error: ") and message in err
    assert err.count("\n") == 1


def test_pipeline_reads_a_given_folder_with_the_given_cache(synthetic_dir):
    from cyclegan_tf.tools import benchmark
    from cyclegan_tf.tools.benchmark_options import BenchmarkOptions

    options = BenchmarkOptions(
        image_size=32,
        pipeline_data_dir=synthetic_dir,
        data_cache="disk",
        pipeline_batches=4,
        parts=("pipeline",),
    )
    report = benchmark.measure_pipeline(options)
    assert report["pipeline_images_per_s"] > 0 and report["pipeline_first_pass_images_per_s"] > 0


def test_benchmark_sets_objectives_side_by_side_each_with_its_own_memory(tmp_path, capsys):
    path = tmp_path / "objectives.json"
    argv = [*TINY, "--n-res-blocks", "2", "--objective", "cyclegan,fastcut", "--parts", "train"]
    assert benchmark_cli.main([*argv, "--no-handwritten", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    rows = report["objectives"]
    assert sorted(rows) == ["cyclegan", "fastcut"]
    assert rows["cyclegan"]["train_step_s"] == report["train_step_s"]
    assert (
        rows["cyclegan"]["relative_step"] == 1.0 and rows["cyclegan"]["relative_training_mb"] == 1
    )
    fastcut = rows["fastcut"]
    assert fastcut["relative_step"] == pytest.approx(
        fastcut["train_step_s"] / report["train_step_s"]
    )
    for row in rows.values():  # each child's own figures: a runtime, and training on top of it
        assert 0 < row["training_mb"] < row["peak_rss_mb"]
    assert fastcut["relative_training_mb"] == pytest.approx(
        fastcut["training_mb"] / rows["cyclegan"]["training_mb"]
    )
    table = capsys.readouterr().out
    line = next(line for line in table.splitlines() if line.startswith("fastcut step"))
    assert line.endswith(
        f"{fastcut['train_step_s']:.4f} s ({fastcut['relative_step']:.2f}x), "
        f"{fastcut['peak_rss_mb']:.0f} MiB ({fastcut['training_mb']:.0f} MiB, "
        f"{fastcut['relative_training_mb']:.2f}x)"
    )


def test_without_proc_the_runtime_memory_is_unknown_and_a_row_gives_the_peak_alone(monkeypatch):
    from cyclegan_tf.tools import benchmark

    def no_proc(path, *args, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(benchmark, "open", no_proc, raising=False)
    assert benchmark.resident_mb() is None
    assert benchmark.peak_rss_mb() > 0  # from getrusage instead
    assert benchmark._ratio(None, 2312.0) is None and benchmark._ratio(1567.0, 2312.0) > 0.6
    known = {"training_mb": 612.4, "relative_training_mb": 0.684}
    assert benchmark_cli._training_memory(known) == " (612 MiB, 0.68x)"
    unknown = {"training_mb": None, "relative_training_mb": None}
    assert benchmark_cli._training_memory(unknown) == ""
