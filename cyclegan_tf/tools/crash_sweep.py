"""The crash-point harness: a tiny training killed at every durable write and at random moments.

As storage engines test themselves: an uninterrupted run of a tiny training records every durable
write it makes (``io.crash_point``, through ``io.FAULT_LOG_ENV``). Then, for each of those points, the
same command runs again in a fresh folder and is killed right before or right after that write
(``io.FAULT_ENV``), and is run once more; and the same for a number of seeded random moments, with
SIGKILL, one SIGINT (the graceful stop) or two (the abort). Each rerun must end exactly as the
uninterrupted run did: the same networks bit for bit, the same CSV rows and progress lines, the same
export versions holding the same variables, the same report, ``finished.json``, and no backup or
temporary file left.

``tests/training/test_crash_points.py`` runs a chain of these faults in one process (fast);
``scripts/crash_sweep.py`` runs the whole sweep, each fault in its own process, before a release.
"""

import dataclasses
import fnmatch
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np

from cyclegan_tf import io
from cyclegan_tf.training.run_folder import RunFolder

# A tiny run that passes every kind of durable write: backups every step (mid-epoch and at epoch
# ends), CSV rows, networks, an export after each epoch, the report, finished.json.
TINY_OPTIONS = (
    *("--image-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4"),
    *("--n-res-blocks", "1", "--n-disc-layers", "2", "--batch-size", "2"),
    *("--epochs", "2", "--steps-per-epoch", "2", "--backup-every", "1", "--export-every", "1"),
    *("--sample-every", "2", "--name", "apple2orange"),
)
# Per objective: small image pools, so that a backup at every step stays small.
_OBJECTIVE_OPTIONS = {"cyclegan": ("--pool-size", "4")}
_ETA = re.compile(r" ETA: \S+$")
_GENERATED = re.compile(r" · generated \d{4}-\d\d-\d\d \d\d:\d\d")


def tiny_argv(data_dir, root, options=TINY_OPTIONS, objective="cyclegan"):
    """The training command's arguments for a run of ``objective`` in ``root/run``, exporting to ``root/exports``."""
    return [
        "--data-dir",
        data_dir,
        *options,
        "--objective",
        objective,
        *_OBJECTIVE_OPTIONS.get(objective, ()),
        "--output-dir",
        os.path.join(root, "run"),
        "--export-dir",
        os.path.join(root, "exports"),
    ]


def command(argv):
    """The training command (``cyclegan-train``) as a subprocess argument list."""
    return [sys.executable, "-m", "cyclegan_tf.cli.train", *argv]


def _environment(**extra):
    env = {k: v for k, v in os.environ.items() if k not in (io.FAULT_ENV, io.FAULT_LOG_ENV)}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _default_interrupt():
    # A background job of a shell starts with SIGINT ignored, and a child inherits that: the
    # training would then ignore a Ctrl-C sent before it installs its own handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv, **popen_options):
    """Starts the training command (``subprocess.Popen``) as a user's shell would: Ctrl-C acts."""
    return subprocess.Popen(
        command(argv), env=_environment(), preexec_fn=_default_interrupt, **popen_options
    )


def run_command(argv, fault=None, timeout=600, **extra_env):
    """Runs the training command in its own process; returns the ``CompletedProcess``.

    Args:
        argv: list of str, the command's arguments.
        fault: str or None, an ``io.FAULT_ENV`` value (``"after:state-*.json:3:kill"``).
        timeout: float, seconds.
        **extra_env: more environment variables.
    """
    env = _environment(**extra_env, **({io.FAULT_ENV: fault} if fault else {}))
    return subprocess.run(
        command(argv),
        env=env,
        preexec_fn=_default_interrupt,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def record_points(argv, log_path, timeout=600):
    """Runs the command once, uninterrupted, and lists the crash points it passed.

    Returns:
        ``(completed process, [(when, name, occurrence)])``, in the order passed.
    """
    if os.path.exists(log_path):
        os.remove(log_path)
    result = run_command(argv, timeout=timeout, **{io.FAULT_LOG_ENV: log_path})
    seen, points = {}, []
    with open(log_path) as f:
        for line in f.read().splitlines():
            when, name = line.split(":", 1)
            seen[when, name] = seen.get((when, name), 0) + 1
            points.append((when, name, seen[when, name]))
    return result, points


def fault_spec(point, action="kill"):
    """The ``io.FAULT_ENV`` value that fires ``action`` at ``(when, name, occurrence)``."""
    when, name, occurrence = point
    return f"{when}:{name}:{occurrence}:{action}"


def interrupt_at(argv, delay, signals, timeout=600):
    """Starts the command, sends ``signals`` (a list) ``delay`` seconds later; returns the result."""
    process = start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        for number in signals:
            process.send_signal(number)
            time.sleep(0.3)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@dataclasses.dataclass
class Outcome:
    """What a finished run left, in a form two runs can be compared by (``differences``)."""

    networks: dict
    csv: str
    progress: list
    images: list
    exports: dict
    ledger: str
    report: str
    finished: dict
    leftovers: list


def _network_weights(path):
    import keras

    import cyclegan_tf  # noqa: F401 - registers the custom layers

    return keras.models.load_model(path, compile=False).get_weights()


def _export_variables(folder):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(folder, "variables", "variables"))
    return {
        name: _as_array(reader.get_tensor(name))
        for name in sorted(reader.get_variable_to_shape_map())
        if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
    }


def _as_array(value):
    """A variable's value as an array; a string one (the generator's config) as its bytes."""
    return np.frombuffer(value, np.uint8) if isinstance(value, bytes) else value


def _read(path):
    return open(path).read() if os.path.exists(path) else ""


def outcome(root):
    """The ``Outcome`` of the run in ``root/run`` with its exports in ``root/exports``."""
    run, exports = os.path.join(root, "run"), os.path.join(root, "exports")
    normalise = lambda text: text.replace(run, "RUN").replace(exports, "EXPORTS")  # noqa: E731
    networks = {
        name: _network_weights(os.path.join(run, "models", name))
        for name in RunFolder(run).objective().NETWORKS.values()
        if os.path.exists(os.path.join(run, "models", name))
    }
    exported = {}
    for model in sorted(os.listdir(exports)) if os.path.isdir(exports) else []:
        for version in sorted(os.listdir(os.path.join(exports, model))):
            folder = os.path.join(exports, model, version)
            exported[f"{model}/{version}"] = _export_variables(folder) if version.isdigit() else {}
    finished = json.loads(_read(os.path.join(run, "finished.json")) or "{}")
    finished.pop("finished", None)
    leftovers = [
        os.path.relpath(os.path.join(folder, name), root)
        for base in (run, exports)
        for folder, folders, files in os.walk(base)
        for name in folders + files
        if io.is_temporary(name) or name == "backup" or name.startswith(".backup-")
    ]
    return Outcome(
        networks=networks,
        csv=_read(os.path.join(run, "logs", "training.csv")),
        progress=[
            _ETA.sub("", line)
            for line in _read(os.path.join(run, "logs", "train.log")).splitlines()
        ],
        images=sorted(os.listdir(os.path.join(run, "images")))
        if os.path.isdir(os.path.join(run, "images"))
        else [],
        exports=exported,
        ledger=_read(os.path.join(run, "exports.json")),
        report=normalise(_GENERATED.sub("", _read(os.path.join(run, "report.html")))),
        finished=json.loads(normalise(json.dumps(finished))),
        leftovers=leftovers,
    )


def _arrays_differ(expected, actual):
    if len(expected) != len(actual):
        return f"{len(actual)} arrays instead of {len(expected)}"
    worst = max(
        (float(np.max(np.abs(a - b))) if a.shape == b.shape else np.inf)
        for a, b in zip(expected, actual)
    )
    return None if worst == 0 else f"differ by up to {worst:g}"


def _by_value(variables):
    return sorted(variables.values(), key=lambda array: (array.shape, array.tobytes()))


def differences(expected, actual):
    """Lines saying how ``actual`` (an ``Outcome``) differs from ``expected``; empty if it does not."""
    found = []
    for name in sorted(set(expected.networks) | set(actual.networks)):
        if name not in actual.networks or name not in expected.networks:
            found.append(f"models/{name}: present in only one run")
            continue
        problem = _arrays_differ(expected.networks[name], actual.networks[name])
        if problem:
            found.append(f"models/{name}: weights {problem}")
    if sorted(expected.exports) != sorted(actual.exports):
        found.append(f"exports: {sorted(actual.exports)} instead of {sorted(expected.exports)}")
    else:
        for version, variables in expected.exports.items():
            # A SavedModel numbers its variables in an order that may differ between two exports
            # of the same network: they are compared as a set of arrays.
            problem = _arrays_differ(_by_value(variables), _by_value(actual.exports[version]))
            if problem:
                found.append(f"exports/{version}: {problem}")
    for field in ("csv", "progress", "images", "ledger", "report", "finished"):
        if getattr(expected, field) != getattr(actual, field):
            found.append(f"{field} differs")
    if actual.leftovers:
        found.append(f"left behind: {actual.leftovers}")
    return found


@dataclasses.dataclass
class Trial:
    """One fault and what followed: ``problems`` is empty when the rerun ended as it should."""

    fault: str
    first_exit: int
    rerun_exits: list
    problems: list
    seconds: float


FINISHED_ALREADY = "already holds a finished run"


def _rerun_until_done(argv, timeout, tries=3):
    """Reruns the command until it ends the run: exit 0, or the refusal of a finished run."""
    codes = []
    for _ in range(tries):
        result = run_command(argv, timeout=timeout)
        codes.append(result.returncode)
        if result.returncode == 0 or FINISHED_ALREADY in result.stderr:
            return codes, None
    return codes, result.stderr.strip().splitlines()[-1:] or ["(no output)"]


def trial(argv, root, reference, fault=None, delay=None, signals=(), timeout=600):
    """Runs one faulty run, then the same command until it succeeds (3 tries); compares the end."""
    start = time.monotonic()
    if fault is not None:
        first = run_command(argv, fault=fault, timeout=timeout)
        name = fault
    else:
        first = interrupt_at(argv, delay, list(signals), timeout=timeout)
        name = f"{'+'.join(signal.Signals(s).name for s in signals)} after {delay:.1f} s"
    # Killed, stopped gracefully (130, 143), or a Ctrl-C before the handlers were installed (-2).
    expected = {0, -signal.SIGKILL, -signal.SIGINT, 130, 143}
    problems = [] if first.returncode in expected else [f"first run exit {first.returncode}"]
    codes, failure = ([], None) if first.returncode == 0 else _rerun_until_done(argv, timeout)
    if failure:
        problems.append(f"reruns failed: {failure}")
    else:
        problems += differences(reference, outcome(root))
    return Trial(name, first.returncode, codes, problems, time.monotonic() - start)


def sweep(
    data_dir,
    workdir,
    kills=20,
    seed=0,
    points=None,
    match=None,
    timeout=600,
    report=print,
    objective="cyclegan",
):
    """Kills a tiny training at every crash point and at ``kills`` random moments.

    Args:
        data_dir: str, a ``trainA/ trainB/ testA/ testB/`` folder (``cyclegan-synthetic``).
        workdir: str, a folder for the runs (each trial's run is deleted after it passes).
        kills: int, random moments, each with SIGKILL, SIGINT or two SIGINTs (chosen by ``seed``).
        seed: int, the seed of the moments and signals.
        points: int or None, how many of the crash points to try (evenly spread); None: all.
        match: str or None, a glob: only the crash points whose ``WHEN:NAME:N`` matches it
            (``"before:1:*"``).
        timeout: float, seconds per process.
        report: callable taking one line, for progress.
        objective: str, the training objective (``models.objectives.OBJECTIVES``).

    Returns:
        ``(reference seconds, [Trial])``.
    """
    import shutil

    reference_root = os.path.join(workdir, "reference")
    shutil.rmtree(reference_root, ignore_errors=True)
    start = time.monotonic()
    result, crash_points = record_points(
        tiny_argv(data_dir, reference_root, objective=objective),
        os.path.join(workdir, "points.log"),
        timeout,
    )
    duration = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {result.stderr[-2000:]}")
    reference = outcome(reference_root)
    report(f"uninterrupted run: {duration:.1f} s, {len(crash_points)} crash points")
    if match is not None:
        crash_points = [
            p for p in crash_points if fnmatch.fnmatchcase(":".join(map(str, p)), match)
        ]
    if points is not None and points < len(crash_points):
        step = len(crash_points) / points
        crash_points = [crash_points[int(index * step)] for index in range(points)]
    rng = random.Random(seed)
    plans = [{"fault": fault_spec(point)} for point in crash_points]
    choices = ([signal.SIGKILL], [signal.SIGINT], [signal.SIGINT, signal.SIGINT])
    plans += [
        {"delay": rng.uniform(0.0, duration), "signals": rng.choice(choices)} for _ in range(kills)
    ]
    trials = []
    for index, plan in enumerate(plans):
        root = os.path.join(workdir, f"trial-{index:03d}")
        shutil.rmtree(root, ignore_errors=True)
        argv = tiny_argv(data_dir, root, objective=objective)
        outcome_trial = trial(argv, root, reference, timeout=timeout, **plan)
        trials.append(outcome_trial)
        verdict = (
            "ok" if not outcome_trial.problems else "FAILED: " + "; ".join(outcome_trial.problems)
        )
        report(
            f"[{index + 1}/{len(plans)}] {outcome_trial.fault}: exit {outcome_trial.first_exit}, "
            f"reruns {outcome_trial.rerun_exits} ({outcome_trial.seconds:.0f} s) {verdict}"
        )
        if not outcome_trial.problems:
            shutil.rmtree(root, ignore_errors=True)
    return duration, trials
