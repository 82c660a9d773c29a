"""One trainer: a ``TrainConfig`` in, a trained ``CycleGAN`` and a run folder out (see ``run_folder``)."""

import contextlib
import dataclasses
import logging
import shutil
import sys
import tempfile

import keras

from cyclegan_tf import _keras_compat, data, distribute, io
from cyclegan_tf import callbacks as run_callbacks
from cyclegan_tf.errors import OptionError
from cyclegan_tf.model import CycleGAN, default_optimizer
from cyclegan_tf.run_folder import NETWORK_FILES, RunFolder
from cyclegan_tf.schedules import LinearDecayAfter

logger = logging.getLogger(__name__)

SAMPLE_IMAGES = 4  # rows of the sample grids
FID_SUBSET = 200  # test images per domain scored during training


def load_training_domains(config):
    """Both domains of the training split (fails before anything is written if the data is bad)."""
    domain_a, domain_b = data.load_domains(
        dataset=config.dataset, data_dir=config.data_dir, split="train", seed=config.seed
    )
    logger.info("Training images: %d in A, %d in B.", domain_a.num_examples, domain_b.num_examples)
    return domain_a, domain_b


def load_training_data(config, start_epoch=0, domains=None, cache_dir=None, input_context=None):
    """The train pipeline and its steps per epoch, from the config's data source.

    Args:
        config: a resolved ``TrainConfig``.
        start_epoch: int, the first epoch to produce (a resumed run sees the same order it would have).
        domains: ``(domain_a, domain_b)`` from ``load_training_domains``; loaded here if None.
        cache_dir: str or None, the folder of the disk cache (``data_cache="disk"``).
        input_context: ``tf.distribute.InputContext`` or None: this input pipeline's slice only.

    Returns:
        ``(dataset, steps_per_epoch)``: a dataset of ``(real_a, real_b)`` batches.
    """
    domain_a, domain_b = domains or load_training_domains(config)
    return data.make_train_dataset(
        domain_a,
        domain_b,
        image_size=config.image_size,
        load_size=config.load_size,
        batch_size=config.batch_size,
        seed=config.seed,
        steps_per_epoch=config.steps_per_epoch,
        start_epoch=start_epoch,
        cache=config.data_cache,
        cache_dir=cache_dir,
        input_context=input_context,
    )


def _per_worker_training_data(strategy, config, start_epoch, domains, cache_dir):
    """Each worker builds and reads only its own slice of every global batch."""
    steps = []

    def dataset_fn(input_context):
        dataset, steps_per_epoch = load_training_data(
            config, start_epoch, domains, cache_dir, input_context
        )
        steps.append(steps_per_epoch)
        return dataset

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    return dataset, steps[0]


def load_sample_images(config, count=SAMPLE_IMAGES):
    """A fixed handful of test images per domain (train images if there is no test split).

    Returns:
        ``(images_a, images_b)``, float32 arrays ``[count, image_size, image_size, 3]`` in [-1, 1].
    """
    try:
        domain_a, domain_b = data.load_domains(
            dataset=config.dataset, data_dir=config.data_dir, split="test", seed=config.seed
        )
    except data.DataError:
        domain_a, domain_b = data.load_domains(
            dataset=config.dataset, data_dir=config.data_dir, split="train", seed=config.seed
        )
    pairs = data.make_eval_dataset(domain_a, domain_b, config.image_size, batch_size=count)
    images_a, images_b = next(iter(pairs))
    return images_a.numpy(), images_b.numpy()


def build_model(config, steps_per_epoch):
    """A compiled ``CycleGAN`` with the reference's optimizers and learning-rate schedule.

    Args:
        config: a resolved ``TrainConfig``.
        steps_per_epoch: int, steps per epoch (drives the schedule).

    Returns:
        A compiled ``CycleGAN``.
    """
    model = CycleGAN(**config.model_options())

    def optimizer():
        schedule = LinearDecayAfter(config.lr, config.epochs, config.decay_epochs, steps_per_epoch)
        return distribute.wrap_optimizer(
            default_optimizer(schedule, beta_1=config.beta1), config.mixed_precision
        )

    model.compile(
        generator_optimizer=optimizer(),
        discriminator_optimizer=optimizer(),
        jit_compile=config.jit_compile,
    )
    return model


def load_network_weights(model, init_from):
    """Copies the networks of a run folder (or its ``models/``) into ``model`` (fine-tuning).

    Args:
        model: a ``CycleGAN``.
        init_from: str, a run folder or a folder holding the network files.

    Raises:
        OptionError: if no network file is there, or one does not fit this model's architecture.
    """
    import cyclegan_tf  # noqa: F401 - registers the custom layers

    models_dir = RunFolder.models_folder(init_from)
    found = 0
    for attribute, filename in NETWORK_FILES.items():
        path = io.join(models_dir, filename)
        if not io.exists(path):
            continue
        loaded = keras.models.load_model(path, compile=False)
        try:
            getattr(model, attribute).set_weights(loaded.get_weights())
        except ValueError as error:
            raise OptionError(
                "init_from",
                f"{path} does not fit this model's {attribute} ({error}); use the same ngf, ndf, "
                "n_res_blocks, n_disc_layers and discriminator",
            ) from None
        found += 1
    if not found:
        raise OptionError(
            "init_from", f"no network files ({', '.join(NETWORK_FILES.values())}) in {models_dir}"
        )
    logger.info("Initialised %d network(s) from %s.", found, models_dir)


def default_callbacks(config, run, sample_images=None, backup_dir=None):
    """The callbacks of a run, in an order that matters.

    The loss guard comes first so that nothing is saved from a diverged step; the CSV row of an epoch is
    written before its backup, so an interruption repeats at most that epoch's row.
    """
    callbacks = [run_callbacks.StopOnNonFiniteLoss()]
    if sample_images is not None:
        callbacks.append(
            run_callbacks.SampleGrid(
                *sample_images,
                run.images,
                every_steps=config.sample_every,
                tensorboard_dir=run.logs,
            )
        )
    callbacks += evaluation_callbacks(config, run)  # adds fid/kid to the logs the CSV row holds
    callbacks += [
        run_callbacks.TrainingLog(run.text_log, every=config.sample_every or 100),
        run_callbacks.StepLossScalars(run.step_logs),
        _keras_compat.CSVLogger(run.csv, append=True),
        keras.callbacks.TensorBoard(run.logs, write_graph=False, update_freq="epoch"),
        run_callbacks.SaveNetworks(run.models),
        keras.callbacks.BackupAndRestore(
            backup_dir or run.backup,
            save_freq=config.backup_every or "epoch",
            double_checkpoint=True,
        ),
    ]
    exporter = run_callbacks.ExportGenerators(config.export_dir, config.name, config.export_every)
    return [*callbacks, exporter, WriteReport(run.root, exporter)]


def log_parameter_counts(model):
    """Logs each network's parameter count, as the reference does when it builds its networks."""
    for attribute in NETWORK_FILES:
        network = getattr(model, attribute)
        millions = network.count_params() / 1e6
        logger.info("[Network %s] Total number of parameters : %.3f M", network.name, millions)


def load_test_domains(config, option):
    """The test split of both domains.

    Args:
        config: a resolved ``TrainConfig``.
        option: str, the ``TrainConfig`` field that needs the test split (``"fid_every"``).

    Raises:
        OptionError: for ``option``, if the source has no test split.
    """
    try:
        return data.load_domains(
            dataset=config.dataset, data_dir=config.data_dir, split="test", seed=config.seed
        )
    except data.DataError as error:
        raise OptionError(option, f"needs a test split (testA/ and testB/): {error}") from None


def evaluation_callbacks(config, run):
    """``--fid-every``: FID/KID of A→B on a fixed test subset, and ``--keep-best``."""
    if not config.fid_every:
        return []
    from cyclegan_tf.evaluation import FidCallback, InceptionFeatures

    test_a, test_b = load_test_domains(config, "fid_every")
    source = list(test_a.images.take(FID_SUBSET).as_numpy_iterator())
    target = list(test_b.images.take(FID_SUBSET).as_numpy_iterator())
    keep_best = run.best_generator if config.keep_best else None
    return [
        FidCallback(
            source,
            target,
            InceptionFeatures(config.inception_weights or "imagenet"),
            every=config.fid_every,
            keep_best_path=keep_best,
        )
    ]


def validation_data(config):
    """``--eval-every``: the test split as ``(real_a, real_b)`` pairs for ``fit``'s validation pass."""
    if not config.eval_every:
        return None
    test_a, test_b = load_test_domains(config, "eval_every")
    return data.make_eval_dataset(test_a, test_b, config.image_size, batch_size=config.batch_size)


class WriteReport(keras.callbacks.Callback):
    """Writes ``RUN/report.html`` (config, loss curves, sample grids, exports) when training ends.

    Args:
        run_dir: str, the run folder.
        exporter: an ``ExportGenerators`` callback placed before this one, whose exports the report
            lists; None lets the report find them from ``config.json``.
    """

    def __init__(self, run_dir, exporter=None):
        super().__init__()
        self.run_dir = run_dir
        self.exporter = exporter

    def on_train_end(self, logs=None):
        from cyclegan_tf.report import write_report

        exported = list(self.exporter.exported.values()) if self.exporter is not None else []
        logger.info("Report: %s", write_report(self.run_dir, exported or None))


@contextlib.contextmanager
def worker_outputs(config, tf_config):
    """Where this worker writes: the chief the run folder, other workers a temporary copy.

    Non-chief workers of a multi-worker run write models, logs, grids and exports to a temporary folder
    that is deleted afterwards (as Keras' multi-worker guide does), and keep their resume state next to
    the chief's, in ``.backup-<type>-<index>``.

    Yields:
        ``(config, backup_dir)`` for this worker.
    """
    if distribute.is_chief(tf_config):
        yield config, None
        return
    task = tf_config["task"]
    scratch = tempfile.mkdtemp(prefix=f"cyclegan-{task['type']}-{task['index']}-")
    backup = RunFolder(config.output_dir).worker_backup(task["type"], task["index"])
    try:
        yield (
            dataclasses.replace(
                config, output_dir=scratch, export_dir=io.join(scratch, "saved_models")
            ),
            backup,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def train(config):
    """Trains a CycleGAN as the config says and writes its run folder.

    Running the same command again after an interruption resumes from the last backup.

    Args:
        config: a ``TrainConfig`` (resolved here).

    Returns:
        ``(model, history)``.
    """
    config = config.resolved()
    strategy, tf_config = distribute.make_strategy(
        config.mirrored_strategy, config.cpu_replicas, config.multi_worker, config.cluster_timeout
    )
    distribute.check_batch_size(config.batch_size, strategy)
    logger.info("Training on %s.", distribute.describe(strategy))
    with distribute.precision(config.mixed_precision):
        with worker_outputs(config, tf_config) as (config, backup_dir):
            domains = load_training_domains(config)
            run = RunFolder(config.output_dir)
            start_epoch = run.prepare(config)
            if backup_dir is not None:
                # A non-chief worker's run folder is new each time; its resume state is its backup's.
                run.backup = backup_dir
                start_epoch = run.backup_epoch()
            keras.utils.set_random_seed(config.seed)
            cache_dir = run.data_cache
            if tf_config is None:
                dataset, steps_per_epoch = load_training_data(
                    config, start_epoch, domains, cache_dir
                )
            else:
                dataset, steps_per_epoch = _per_worker_training_data(
                    strategy, config, start_epoch, domains, cache_dir
                )
            with strategy.scope():
                model = build_model(config, steps_per_epoch)
            log_parameter_counts(model)
            if config.init_from and not start_epoch:
                load_network_weights(model, config.init_from)
            callbacks = default_callbacks(config, run, load_sample_images(config), run.backup)
            history = model.fit(
                dataset,
                epochs=config.epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                validation_data=validation_data(config),
                validation_freq=config.eval_every or 1,
                shuffle=False,
                verbose=1 if sys.stdout.isatty() else 2,
            )
    return model, history
