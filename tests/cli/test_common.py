"""What every command shares: --help before TensorFlow loads, and no TensorFlow log lines on stderr."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cyclegan_tf.cli import common
from tests.conftest import REPO_ROOT, write_clip

BIN = Path(sys.executable).parent


def _console_scripts():
    """``{command: module}`` of setup.cfg's console scripts."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(
        (name.strip(), target.strip().split(":")[0])
        for name, target in (line.split("=") for line in lines)
    )


COMMANDS = _console_scripts()
# Its options are the benchmark module's, which loads TensorFlow to define them.
LOADS_TENSORFLOW_FOR_HELP = {"cyclegan-benchmark"}
# An HTTP client: it never loads TensorFlow, so it has no --verbose.
NEVER_LOADS_TENSORFLOW = {"cyclegan-loadtest"}


def _quiet_environment():
    """The environment of a user who set nothing: TensorFlow's own default log level."""
    return {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def _tensorflow_lines(stderr):
    return [line for line in stderr.splitlines() if common.is_tensorflow_log_line(line)]


def test_every_command_parses_its_arguments_before_tensorflow_loads():
    modules = [module for name, module in COMMANDS.items() if name not in LOADS_TENSORFLOW_FOR_HELP]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name).build_parser()\n"
        "print(sorted({'tensorflow', 'keras', 'torch', 'av'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_prints_only_the_usage(command):
    result = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, env=_quiet_environment()
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ")
    assert ("--verbose" in result.stdout) != (command in NEVER_LOADS_TENSORFLOW)
    assert result.stderr == ""


def test_the_tensorflow_lines_are_dropped_and_the_others_kept(capfd):
    with common.tensorflow_log_lines_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ...\n")
        os.write(2, b"I0000 00:00:1796615105.450302   13984 port.cc:153] oneDNN custom ...\n")
        os.write(2, b"E0000 00:00:1796615105.45   13984 cuda_platform.cc:52] failed call ...\n")
        os.write(2, b"To enable the following instructions: AVX2 FMA, in other operations, ")
        os.write(2, b"rebuild TensorFlow with the appropriate compiler flags.\n")
        print("UserWarning: a warning of ours", file=sys.stderr)
        os.write(2, b"F0000 00:00:1796615105.45   13984 op.cc:1] Check failed: x\n")
    assert capfd.readouterr().err == (
        "UserWarning: a warning of ours\nF0000 00:00:1796615105.45   13984 op.cc:1] Check failed: x\n"
    )


def test_the_bf16_note_only_where_the_cpu_emulates_it(tmp_path):
    emulating, native = tmp_path / "zen3", tmp_path / "zen4"
    emulating.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    native.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    note = common.bf16_note("cyclegan-translate", str(emulating))
    assert note.startswith("cyclegan-translate: note: this CPU has no bfloat16 arithmetic")
    assert "emulated and slower than float32 (1.4x on AVX-512 without BF16)" in note
    assert common.bf16_note("cyclegan-translate", str(native)) is None
    assert common.bf16_note("cyclegan-translate", str(tmp_path / "none")) is None


def test_verbose_leaves_tensorflow_its_log_level(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    common.quiet_tensorflow(verbose=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    common.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_precisions_of_the_parsers_are_the_library_ones():
    from cyclegan_tf.inference import PRECISIONS

    assert common.PRECISIONS == PRECISIONS


def test_a_tiny_training_and_translation_write_no_tensorflow_lines(tiny_args, tmp_path):
    """The commands as a user runs them, stderr read whole: the project's lines, none of TensorFlow's."""
    environment = _quiet_environment()
    run, exports = tmp_path / "run", tmp_path / "exports"
    train = subprocess.run(
        [str(BIN / "cyclegan-train"), *tiny_args(str(run), str(exports))]
        + ["--epochs", "1", "--steps-per-epoch", "1"],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    assert _tensorflow_lines(train.stderr) == [], train.stderr
    assert "Training on 1 replica" in train.stderr  # the project's own log lines still show

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_clip(inputs / "clip.mp4", frames=4)
    (inputs / "notes.txt").write_text("not an image")
    model = str(run / "models" / "netG_A2B.keras")
    argv = ["--model", model, "--input", str(inputs), "--output", str(tmp_path / "out")]
    translate = subprocess.run(
        [str(BIN / "cyclegan-translate"), *argv], capture_output=True, text=True, env=environment
    )
    assert translate.returncode == 0, translate.stderr[-2000:]
    assert _tensorflow_lines(translate.stderr) == [], translate.stderr
    assert "skipped" in translate.stderr and "notes.txt" in translate.stderr  # our own warning
