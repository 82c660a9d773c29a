"""Measuring training and inference speed: what ``scripts/benchmark.py`` reports.

Every figure is a median over repeated measurements, taken after warm-up steps that absorb tracing and
compilation. Train steps of the variants compared (``CycleGAN.fit``, a plain hand-written ``tf.function``
step of the same networks and losses, and optionally the float32 ``fit`` step next to a mixed-precision
one) are measured in interleaved rounds in one process, so that a slower or busier moment of the machine
affects all of them alike.

Keys of the report (``run_benchmark``'s dict and the ``--json`` file):

* ``train_step_s``: median seconds of one ``fit`` step of the first ``--objective`` (a CycleGAN's:
  pool, metrics and both optimizers); ``images_per_s``: ``batch_size / train_step_s``.
* ``objectives`` (with several ``--objective``): ``{objective: {"train_step_s", "relative_step",
  "peak_rss_mb", "training_mb", "relative_training_mb"}}``: each objective's ``fit`` step, timed in
  the same interleaved rounds, and its ratio to the first one's; the peak resident memory of a process
  that builds and trains only that objective (a child process each, the same options, ``--steps 2``),
  what of it training added to the runtime (``peak_rss_mb - runtime_rss_mb`` of that process), and
  that figure's ratio to the first objective's (both None where ``/proc`` is missing).
* ``handwritten_step_s`` (for ``--objective cyclegan``): the same networks, losses and Adam updates
  in one hand-written ``tf.function`` (no image pool, no metrics), as the Keras guides write a
  CycleGAN step; ``fit_overhead``: ``train_step_s / handwritten_step_s - 1``.
* ``float32_train_step_s`` and ``speedup_vs_float32`` with ``compare_float32`` under mixed precision.
* ``inference_s``: median seconds for one image through the exported generator's ``serving_default``.
* ``runtimes`` (with ``runtimes`` set, instead of ``inference_s``): one row per runtime variant and
  image side (``runtime_sizes``): median and min seconds of one image, pixel error against the first
  runtime, load average around it (see ``cyclegan_tf.tools.runtime_benchmark``).
* ``pipeline_images_per_s``: the ``tf.data`` train pipeline alone (JPEG files, decode to batch), in
  training pairs per second once its cache is warm; ``pipeline_first_pass_images_per_s`` includes decoding.
* ``peak_rss_mb``: the process's peak resident memory; ``runtime_rss_mb``: its resident memory once
  TensorFlow and the strategy are up, before anything is built; ``device``: CPU model, GPU name, versions.
"""

import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from cyclegan_tf import data, export
from cyclegan_tf.models import losses
from cyclegan_tf.models.gan import default_optimizer
from cyclegan_tf.tools import runtime_benchmark
from cyclegan_tf.training import distribute
from cyclegan_tf.training.config import TrainConfig
from cyclegan_tf.training.trainer import build_model as build_training_model

logger = logging.getLogger(__name__)

# The reference's resize before the crop: 286 for 256 (``--load_size``), in proportion otherwise.
_LOAD_RATIO = 286 / 256


def run_benchmark(options):
    """Measures what ``options`` asks for.

    Args:
        options: a ``BenchmarkOptions``.

    Returns:
        dict with the keys listed in the module docstring (None where a part was not measured).

    Raises:
        ValueError: for options out of range or combinations the strategy refuses.
    """
    options.validate()
    strategy, _ = distribute.make_strategy(options.mirrored_strategy, options.cpu_replicas)
    distribute.check_batch_size(options.batch_size, strategy)
    runtime_rss_mb = resident_mb()
    report = {
        "image_size": options.image_size,
        "batch_size": options.batch_size,
        "mixed_precision": options.mixed_precision or "float32",
        "jit_compile": options.jit_compile,
        "replicas": strategy.num_replicas_in_sync,
        "objective": options.objective[0],
        "train_step_s": None,
        "images_per_s": None,
        "handwritten_step_s": None,
        "fit_overhead": None,
        "float32_train_step_s": None,
        "speedup_vs_float32": None,
        "inference_s": None,
        "pipeline_images_per_s": None,
        "pipeline_first_pass_images_per_s": None,
    }
    logger.info("Benchmarking on %s.", distribute.describe(strategy))
    model = None
    if "train" in options.parts:
        model = _measure_training(options, strategy, report)
    generator = None if model is None else model.translation_generators()["A2B"]
    if "inference" in options.parts and options.runtimes:
        report["runtimes"] = measure_runtimes(generator, options)
    elif "inference" in options.parts:
        report["inference_s"] = measure_inference(generator, options)
    if "pipeline" in options.parts:
        report.update(measure_pipeline(options))
    report["peak_rss_mb"] = peak_rss_mb()
    report["runtime_rss_mb"] = runtime_rss_mb
    report["device"] = device_description()
    return report


def _measure_training(options, strategy, report):
    """Times the train-step variants in interleaved rounds; fills ``report``; returns the fit model."""
    batch = _random_batch(options, seed=options.seed)
    variants = {}
    first, *others = options.objective
    with distribute.precision(options.mixed_precision):
        model = training_model(options, strategy, first)
        variants["fit"] = FitStepTimer(model, batch)
        for objective in others:
            variants[objective] = FitStepTimer(training_model(options, strategy, objective), batch)
        if (
            options.compare_handwritten
            and first == "cyclegan"
            and strategy.num_replicas_in_sync == 1
        ):
            variants["handwritten"] = HandwrittenStep(model, options.jit_compile).timer(batch)
    if options.compare_float32:
        with distribute.precision(None):
            variants["float32"] = FitStepTimer(training_model(options, strategy, first), batch)
    for name, timer in variants.items():
        logger.info("Warming up the %s step (%d steps).", name, options.warmup)
        timer.run(options.warmup)
    times = {name: [] for name in variants}
    rounds = min(options.rounds, options.steps)
    for index in range(rounds):
        count = options.steps // rounds + (index < options.steps % rounds)
        for name, timer in variants.items():
            times[name] += timer.run(count)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        logger.info("%s step: median %.4f s over %d steps", name, medians[name], len(values))
    report["train_step_s"] = medians["fit"]
    report["images_per_s"] = options.batch_size / medians["fit"]
    if "handwritten" in medians:
        report["handwritten_step_s"] = medians["handwritten"]
        report["fit_overhead"] = medians["fit"] / medians["handwritten"] - 1.0
    if "float32" in medians:
        report["float32_train_step_s"] = medians["float32"]
        report["speedup_vs_float32"] = medians["float32"] / medians["fit"]
    if others:
        steps = {first: medians["fit"], **{name: medians[name] for name in others}}
        memory = {name: objective_memory_mb(options, name) for name in steps}
        report["objectives"] = {
            name: {
                "train_step_s": step,
                "relative_step": step / medians["fit"],
                **memory[name],
                "relative_training_mb": _ratio(
                    memory[name]["training_mb"], memory[first]["training_mb"]
                ),
            }
            for name, step in steps.items()
        }
    return model


def training_config(options, objective):
    """The ``TrainConfig`` of a training run with the benchmark's networks, sizes and precision."""
    return TrainConfig(
        objective=objective,
        ngf=options.ngf,
        ndf=options.ndf,
        n_res_blocks=options.n_res_blocks,
        image_size=options.image_size,
        load_size=options.image_size,
        batch_size=options.batch_size,
        seed=options.seed,
        mixed_precision=options.mixed_precision,
        jit_compile=options.jit_compile,
    ).resolved()


def training_model(options, strategy, objective=None):
    """A compiled objective as training builds it (``trainer.build_model``: optimizers, schedule).

    Args:
        options: a ``BenchmarkOptions``.
        strategy: the ``tf.distribute`` strategy.
        objective: str or None, the objective (default: the first of ``options.objective``).
    """
    keras.utils.set_random_seed(options.seed)
    config = training_config(options, objective or options.objective[0])
    with strategy.scope():
        return build_training_model(config, steps_per_epoch=max(options.steps, 1))


def objective_memory_mb(options, objective):
    """The memory of a process that builds and trains only ``objective`` (MiB).

    Runs ``cyclegan-benchmark --parts train --objective OBJECTIVE --steps 2`` with the same
    networks, sizes and precision in a child process, so that each objective's figure is its own.

    Returns:
        dict: ``peak_rss_mb``, the child's peak resident memory, and ``training_mb``, what building
        and training added to its runtime's resident memory.
    """
    argv = [
        *("--parts", "train", "--objective", objective, "--steps", "2", "--rounds", "1"),
        *("--warmup", "1", "--no-handwritten", "--image-size", str(options.image_size)),
        *("--batch-size", str(options.batch_size), "--ngf", str(options.ngf)),
        *("--ndf", str(options.ndf), "--n-res-blocks", str(options.n_res_blocks)),
        *("--seed", str(options.seed)),
        *(["--mixed-precision", options.mixed_precision] if options.mixed_precision else []),
        *(["--jit-compile"] if options.jit_compile else []),
    ]
    with tempfile.TemporaryDirectory(prefix="cyclegan-benchmark-") as root:
        path = os.path.join(root, "report.json")
        command = [sys.executable, "-m", "cyclegan_tf.cli.benchmark", *argv, "--json", path]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"measuring {objective} alone failed: {result.stderr.strip().splitlines()[-1:]}"
            )
        with open(path) as f:
            child = json.load(f)
    runtime = child["runtime_rss_mb"]
    return {
        "peak_rss_mb": child["peak_rss_mb"],
        "training_mb": None if runtime is None else child["peak_rss_mb"] - runtime,
    }


def _ratio(value, reference):
    """``value / reference``, or None where either is unknown."""
    return None if value is None or reference is None else value / reference


def _random_batch(options, seed):
    shape = (options.batch_size, options.image_size, options.image_size, 3)
    rng = np.random.default_rng(seed)
    return tuple(tf.constant(rng.uniform(-1, 1, shape).astype("float32")) for _ in range(2))


class _StepTimes(keras.callbacks.Callback):
    """Seconds of each ``fit`` batch, from its start until its losses are on the host."""

    def __init__(self):
        super().__init__()
        self.times = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(logs["g_loss"])  # waits for the step (asynchronous on GPUs)
        self.times.append(time.perf_counter() - self._start)


class FitStepTimer:
    """Runs ``model.fit`` on an in-memory batch, ``n`` steps at a time, and returns each step's time.

    The data is one repeated batch so that the input pipeline is not part of the step time (it is
    measured on its own by ``measure_pipeline``).
    """

    def __init__(self, model, batch):
        self.model = model
        self.dataset = tf.data.Dataset.from_tensors(batch).repeat()

    def run(self, steps):
        timer = _StepTimes()
        self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
        return timer.times


class HandwrittenStep:
    """The plain ``tf.function`` CycleGAN step the ``fit`` step is compared with.

    The same networks, objective and update order as ``CycleGAN.train_step`` (generators on the joint
    loss, then the discriminators on ``0.5 * (real + fake)``), written the way a Keras guide would:
    one function, two tapes, two Adam optimizers, no image pool and no metric trackers.

    Args:
        model: a ``CycleGAN`` whose networks (and dtype policy) are used.
        jit_compile: bool, compile the step with XLA.
    """

    def __init__(self, model, jit_compile=False):
        self.model = model
        self.generator_optimizer = default_optimizer()
        self.discriminator_optimizer = default_optimizer()
        self.generator_optimizer.build(model.generator_variables)
        self.discriminator_optimizer.build(model.discriminator_variables)
        self.step = tf.function(self._step, jit_compile=jit_compile)

    def _step(self, real_a, real_b):
        m = self.model
        weight_cycle, weight_identity = m.lambda_cycle, m.lambda_cycle * m.lambda_identity
        with tf.GradientTape() as tape:
            fake_b = m.generator_ab(real_a, training=True)
            fake_a = m.generator_ba(real_b, training=True)
            g_loss = (
                losses.lsgan_loss(m.discriminator_b(fake_b, training=True), True)
                + losses.lsgan_loss(m.discriminator_a(fake_a, training=True), True)
                + weight_cycle * losses.l1_loss(m.generator_ba(fake_b, training=True), real_a)
                + weight_cycle * losses.l1_loss(m.generator_ab(fake_a, training=True), real_b)
                + weight_identity * losses.l1_loss(m.generator_ba(real_a, training=True), real_a)
                + weight_identity * losses.l1_loss(m.generator_ab(real_b, training=True), real_b)
            )
        generator_grads = tape.gradient(g_loss, m.generator_variables)
        with tf.GradientTape() as tape:
            d_loss = 0.0
            for discriminator, real, fake in (
                (m.discriminator_a, real_a, fake_a),
                (m.discriminator_b, real_b, fake_b),
            ):
                d_loss += 0.5 * (
                    losses.lsgan_loss(discriminator(real, training=True), True)
                    + losses.lsgan_loss(discriminator(fake, training=True), False)
                )
        discriminator_grads = tape.gradient(d_loss, m.discriminator_variables)
        self.generator_optimizer.apply_gradients(zip(generator_grads, m.generator_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(discriminator_grads, m.discriminator_variables)
        )
        return g_loss

    def timer(self, batch):
        """A timer with ``run(steps)`` like ``FitStepTimer``'s."""
        return _CallTimer(lambda: float(self.step(*batch)))


class _CallTimer:
    def __init__(self, call):
        self.call = call

    def run(self, steps):
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            self.call()
            times.append(time.perf_counter() - start)
        return times


def measure_inference(generator, options):
    """Median seconds for one image through an exported generator's ``serving_default``.

    The generator is exported with ``export.export_generator`` (as training exports it), loaded back with
    ``tf.saved_model.load`` and called on one float32 ``[1, S, S, 3]`` image in [0, 255].

    Args:
        generator: a generator ``keras.Model``, or None to build the reference one under the options'
            precision.
        options: a ``BenchmarkOptions`` (``image_size``, ``inference_runs``, ``warmup``).

    Returns:
        float, seconds.
    """
    if generator is None:
        with distribute.precision(options.mixed_precision):
            model = training_model(options, tf.distribute.get_strategy())
            generator = model.translation_generators()["A2B"]
    with tempfile.TemporaryDirectory(prefix="cyclegan-benchmark-") as root:
        version = export.export_generator(generator, root, "benchmark")
        serving = tf.saved_model.load(version).signatures["serving_default"]
        rng = np.random.default_rng(options.seed)
        size = options.image_size
        image = tf.constant(rng.uniform(0, 255, (1, size, size, 3)).astype("float32"))
        for _ in range(max(options.warmup, 1)):
            serving(images=image)["images"].numpy()
        times = _CallTimer(lambda: serving(images=image)["images"].numpy()).run(
            options.inference_runs
        )
    return statistics.median(times)


def measure_runtimes(generator, options):
    """The exported generator in each of ``options.runtimes``, side by side (``runtime_benchmark``).

    Args:
        generator: a generator ``keras.Model``, or None to build the reference one (float32).
        options: a ``BenchmarkOptions`` (``runtimes``, ``runtime_sizes``, ``inference_runs``,
            ``threads``).

    Returns:
        A list of row dicts (see ``runtime_benchmark.measure_runtimes``).
    """
    if generator is None:
        model = training_model(options, tf.distribute.get_strategy())
        generator = model.translation_generators()["A2B"]
    return runtime_benchmark.compare_runtimes(
        generator,
        options.runtimes,
        options.runtime_sizes,
        options.inference_runs,
        threads=options.threads,
    )


def measure_pipeline(options):
    """Training pairs per second from the ``tf.data`` train pipeline alone (JPEG files to batches).

    A synthetic set of ``image_size`` JPEGs (as the published sets are) is read with the training
    pipeline (``data.make_train_dataset``: decode, cache, shuffle, resize to ``load_size``, random crop
    and flip, batch). The first pass includes decoding every file; later passes read the decoded cache,
    which is the rate during training.

    Returns:
        dict with ``pipeline_images_per_s`` and ``pipeline_first_pass_images_per_s``.
    """
    size = options.image_size
    with tempfile.TemporaryDirectory(prefix="cyclegan-pipeline-") as root:
        data_dir = options.pipeline_data_dir
        if data_dir is None:
            count = max(options.pipeline_images, options.batch_size)
            data_dir = data.write_synthetic_dataset(
                os.path.join(root, "fruit"), size=max(size, 16), n_train=count, n_test=1, seed=0
            )
        domain_a, domain_b = data.load_domains(data_dir=data_dir, split="train")
        count = max(domain_a.num_examples, domain_b.num_examples, options.batch_size)
        dataset, _ = data.make_train_dataset(
            domain_a,
            domain_b,
            image_size=size,
            load_size=max(size, int(round(size * _LOAD_RATIO))),
            batch_size=options.batch_size,
            seed=options.seed,
            cache=options.data_cache,
            cache_dir=os.path.join(root, "cache"),
        )
        iterator = iter(dataset)
        first_pass = max(count // options.batch_size, 1)
        first = _pairs_per_second(iterator, first_pass, options.batch_size)
        _pairs_per_second(iterator, first_pass, options.batch_size)  # warm caches and threads
        steady = _pairs_per_second(iterator, options.pipeline_batches, options.batch_size)
    return {"pipeline_images_per_s": steady, "pipeline_first_pass_images_per_s": first}


def _pairs_per_second(iterator, batches, batch_size):
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def _proc_status_mb(field):
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; None without ``/proc``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def resident_mb():
    """The process's resident memory now in MiB (``VmRSS``; None where ``/proc`` is missing)."""
    return _proc_status_mb("VmRSS")


def peak_rss_mb():
    """The process's peak resident memory in MiB.

    On Linux ``VmHWM`` (``/proc/self/status``): the high-water mark of this process's own memory.
    ``ru_maxrss`` would not do for a child process: Linux keeps there the resident size of the parent
    it was forked from, up to its ``exec``. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def device_description():
    """``"<CPU model> (<n> cores)[; GPU: <names>]; TensorFlow <v>, Keras <v>"``."""
    cpu = _cpu_model()
    parts = [f"{cpu} ({os.cpu_count()} cores)"]
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in gpus
        ]
        parts.append(f"GPU: {', '.join(names)}")
    parts.append(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    return "; ".join(parts)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
