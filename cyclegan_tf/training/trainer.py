"""One trainer: a ``TrainConfig`` in, a trained objective (``CycleGAN``, ``CUT`` …) and a run folder out.

A run survives any interruption (``docs/reliability.md``): it holds its folder's lock, backs up from
its first step on (``backup.BackupStore``), stops gracefully on Ctrl-C or SIGTERM
(``interruption.StopSignals``), and resumes exactly from its newest usable backup. Its end is a
sequence of durable steps (networks, exports, report, ``finished.json``, then the backups deleted),
and a run stopped between two of them finishes the rest when the same command runs again.
"""

import contextlib
import dataclasses
import logging
import shutil
import sys
import tempfile
import time

import keras

from cyclegan_tf import data, io
from cyclegan_tf.errors import OptionError
from cyclegan_tf.evaluation import FidCallback, InceptionFeatures
from cyclegan_tf.models.gan import default_optimizer
from cyclegan_tf.models.schedules import LinearDecayAfter
from cyclegan_tf.training import callbacks as run_callbacks
from cyclegan_tf.training import distribute
from cyclegan_tf.training.backup import BackupStore
from cyclegan_tf.training.interruption import StopSignals, TrainingInterrupted
from cyclegan_tf.training.report import write_report
from cyclegan_tf.training.run_folder import RunFolder

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


def load_training_data(config, start_step=0, domains=None, cache_dir=None, input_context=None):
    """The train pipeline and its steps per epoch, from the config's data source.

    Args:
        config: a resolved ``TrainConfig``.
        start_step: int, the first step to produce (a resumed run sees the batches it would have).
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
        start_step=start_step,
        cache=config.data_cache,
        cache_dir=cache_dir,
        input_context=input_context,
        preprocess=config.preprocess,
        channels=(config.input_nc, config.output_nc),
    )


def _training_data(strategy, multi_worker, config, start_step, domains, cache_dir):
    """The dataset ``fit`` reads from ``start_step`` on.

    Under several workers, each builds and reads only its own slice of every global batch.
    """
    if not multi_worker:
        return load_training_data(config, start_step, domains, cache_dir)[0]

    def dataset_fn(input_context):
        return load_training_data(config, start_step, domains, cache_dir, input_context)[0]

    return strategy.distribute_datasets_from_function(dataset_fn)


@dataclasses.dataclass(frozen=True)
class TrainingSegment:
    """One ``fit`` call of a training: epochs ``[first_epoch, end_epoch)``.

    A run resumed in the middle of an epoch trains the rest of that epoch in a segment of its own
    (``first_batch`` steps of it are done), then the following epochs in a second one, so that it sees
    exactly the steps an uninterrupted run would have.
    """

    first_epoch: int
    end_epoch: int
    first_batch: int
    is_last: bool

    @classmethod
    def plan(cls, position, steps_per_epoch, epochs):
        """The segments that train from ``position`` (``(epoch, steps done)``) to ``epochs``."""
        epoch, done = position
        # Backed up after an epoch's last step, before its end (backups of earlier versions only:
        # ResumableBackup leaves that step to the epoch-end backup).
        if done >= steps_per_epoch:
            epoch, done = epoch + 1, 0
        bounds = [(epoch, epoch + 1, done)] if done else []
        if not bounds or epoch + 1 < epochs:
            # Also when no epoch is left: a fit of no epochs still ends the training (export, report).
            bounds.append((epoch + bool(done), epochs, 0))
        return [
            cls(first, end, batch, is_last=index == len(bounds) - 1)
            for index, (first, end, batch) in enumerate(bounds)
        ]

    def start_step(self, steps_per_epoch):
        """The global step this segment's data starts at."""
        return self.first_epoch * steps_per_epoch + self.first_batch


def load_sample_images(config, count=SAMPLE_IMAGES):
    """A fixed handful of test images per domain (train images if there is no test split).

    Returns:
        ``(images_a, images_b)``, float32 arrays ``[count, image_size, image_size, C]`` in [-1, 1],
        ``C`` each domain's channels.
    """
    try:
        domain_a, domain_b = data.load_domains(
            dataset=config.dataset, data_dir=config.data_dir, split="test", seed=config.seed
        )
    except data.DataError:
        domain_a, domain_b = data.load_domains(
            dataset=config.dataset, data_dir=config.data_dir, split="train", seed=config.seed
        )
    channels = (config.input_nc, config.output_nc)
    pairs = data.make_eval_dataset(
        domain_a, domain_b, config.image_size, batch_size=count, channels=channels
    )
    images_a, images_b = next(iter(pairs))
    return images_a.numpy(), images_b.numpy()


def build_model(config, steps_per_epoch):
    """The config's objective, compiled with the reference's optimizers and learning-rate schedule.

    One Adam optimizer per optimizer group of the objective (``OPTIMIZER_GROUPS``), each with the
    linear decay of ``--decay-epochs`` and, under ``--mixed-precision fp16``, loss scaling. The
    trainer and the benchmark both build their model here.

    Args:
        config: a resolved ``TrainConfig``.
        steps_per_epoch: int, steps per epoch (drives the schedule).

    Returns:
        A compiled ``GAN`` (``CycleGAN``, ``CUT`` …).
    """
    objective = config.objective_class()
    model = objective(**config.model_options())

    def optimizer():
        schedule = LinearDecayAfter(config.lr, config.epochs, config.decay_epochs, steps_per_epoch)
        return distribute.wrap_optimizer(
            default_optimizer(schedule, beta_1=config.beta1), config.mixed_precision
        )

    optimizers = {f"{group}_optimizer": optimizer() for group in objective.OPTIMIZER_GROUPS}
    model.compile(jit_compile=config.jit_compile, **optimizers)
    return model


def load_network_weights(model, init_from):
    """Copies the networks of a run folder (or its ``models/``) into ``model`` (fine-tuning).

    Args:
        model: a ``GAN`` (its ``NETWORKS`` name the files).
        init_from: str, a run folder or a folder holding the network files.

    Raises:
        OptionError: if no network file is there, or one does not fit this model's architecture.
    """
    models_dir = RunFolder.models_folder(init_from)
    found = 0
    networks = model.networks()
    for attribute, filename in model.NETWORKS.items():
        path = io.join(models_dir, filename)
        if not io.exists(path):
            continue
        loaded = keras.models.load_model(path, compile=False)
        try:
            networks[attribute].set_weights(loaded.get_weights())
        except ValueError as error:
            raise OptionError(
                "init_from",
                f"{path} does not fit this model's {attribute} ({error}); use the same objective, "
                "ngf, ndf, n_res_blocks, n_disc_layers, discriminator and nce_layers",
            ) from None
        found += 1
    if not found:
        raise OptionError(
            "init_from",
            f"no network files ({', '.join(model.NETWORKS.values())}) in {models_dir}",
        )
    logger.info("Initialised %d network(s) from %s.", found, models_dir)


def default_callbacks(
    config,
    run,
    sample_images=None,
    backup_dir=None,
    segment=None,
    stop=None,
    resumed=None,
    exporter=None,
):
    """The callbacks of a run, in an order that matters.

    The loss guard comes first so that nothing is saved from a diverged step. At an epoch's end the
    CSV row, the networks and a due export are written before the epoch's backup, which comes last:
    a run killed before that backup trains the epoch's last steps again and rewrites them (the logs
    are cut back to the backup first, and an export keeps its planned version), so nothing appears
    twice. The end of a training (networks, exports, report) is ``finish``'s, not a callback's.

    Args:
        config: the resolved ``TrainConfig``.
        run: the ``RunFolder``.
        sample_images: ``(images_a, images_b)`` of the sample grids, or None.
        backup_dir: str or None, the backup folder (the run's ``backup/`` by default).
        segment: the ``TrainingSegment`` of this ``fit``, or None for a whole training.
        stop: ``interruption.StopSignals`` or None: Ctrl-C and SIGTERM stop after a step.
        resumed: ``backup.Backup`` or None, the backup the model was restored from.
        exporter: an ``ExportGenerators`` or None (one is made).
    """
    first_batch = segment.first_batch if segment else 0
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
    exporter = exporter or make_exporter(config, run)
    return [
        *callbacks,
        run_callbacks.TrainingLog(
            run.text_log,
            every=config.sample_every or 100,
            first_batch=first_batch,
            epochs=config.epochs,
        ),
        run_callbacks.StepLossScalars(run.step_logs),
        run_callbacks.EpochCsvLog(run.csv),
        keras.callbacks.TensorBoard(run.logs, write_graph=False, update_freq="epoch"),
        run_callbacks.SaveNetworks(run.models, save_at_end=False),
        exporter,
        run_callbacks.ResumableBackup(
            backup_dir or run.backup,
            save_freq=config.backup_every or "epoch",
            first_batch=first_batch,
            delete_checkpoint=False,
            restore=False,
            resumed=resumed,
            stop=stop,
            record=backup_record(config),
        ),
    ]


def make_exporter(config, run):
    """The run's ``ExportGenerators``: every ``export_every`` epochs, planned in ``RUN/exports.json``.

    It does not export when a ``fit`` ends: ``finish`` does, once, at the end of the training.
    """
    return run_callbacks.ExportGenerators(
        config.export_dir,
        config.name,
        config.export_every,
        export_at_end=False,
        ledger=run.exports,
    )


def backup_record(config):
    """What every backup's manifest keeps besides the state: the options, to mend ``config.json``."""
    return {"config": dataclasses.asdict(config)}


def log_parameter_counts(model):
    """Logs each network's parameter count, as the reference does when it builds its networks."""
    for network in model.networks().values():
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

    test_a, test_b = load_test_domains(config, "fid_every")
    source = data.domain_images(test_a, config.input_nc).take(FID_SUBSET)
    target = data.domain_images(test_b, config.output_nc).take(FID_SUBSET)
    source, target = list(source.as_numpy_iterator()), list(target.as_numpy_iterator())
    keep_best = run.best_generator if config.keep_best else None
    return [
        FidCallback(
            source,
            target,
            InceptionFeatures(config.inception_weights or "imagenet"),
            every=config.fid_every,
            keep_best_path=keep_best,
            epochs=config.epochs,
        )
    ]


def validation_data(config):
    """``--eval-every``: the test split as ``(real_a, real_b)`` pairs for ``fit``'s validation pass."""
    if not config.eval_every:
        return None
    test_a, test_b = load_test_domains(config, "eval_every")
    return data.make_eval_dataset(
        test_a,
        test_b,
        config.image_size,
        batch_size=config.batch_size,
        channels=(config.input_nc, config.output_nc),
    )


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


def _joined(history, more):
    """One ``History`` of consecutive ``fit`` calls."""
    if history is None:
        return more
    history.epoch += more.epoch
    for key, values in more.history.items():
        history.history.setdefault(key, []).extend(values)
    return history


def restore(model, store, tf_config=None, timeout=distribute.DEFAULT_CLUSTER_TIMEOUT):
    """Loads the newest usable backup of ``store`` into ``model`` (every worker: the same position).

    A backup whose files do not match its manifest is passed over with a line saying which and why
    (``BackupStore.load``); the backups newer than the one loaded are deleted.

    Args:
        model: the built, compiled ``GAN``.
        store: the ``BackupStore`` of this worker.
        tf_config: dict or None, ``TF_CONFIG`` of a multi-worker run.
        timeout: float, seconds to wait for the other workers.

    Returns:
        The ``backup.Backup`` loaded, or None for a new run.

    Raises:
        BackupUnusable: if there are backups but none can be used.
    """
    usable, problems = store.usable()
    if tf_config is not None:
        position = distribute.agree_on_position(
            tf_config, "cyclegan_tf/resume", [list(b.position) for b in usable], timeout
        )
        usable = [backup for backup in usable if backup.position == position][:1]
        if position is None and not problems:
            return None
    elif not usable and not problems:
        return None
    backup = store.load(model, usable, problems)
    store.discard_newer(backup)
    return backup


def _stop_between(stop, what):
    """Raises ``TrainingInterrupted`` if a stop was asked while the run was finishing.

    ``stop`` is None for the workers of a multi-worker run, which finish together.
    """
    if stop is not None and stop.requested is not None:
        raise TrainingInterrupted(stop.requested, f"the end of training, before {what}")


def finish(model, config, run, exporter, tf_config=None, stop=None):
    """The end of a run, in durable steps; run again, it does what is missing.

    After the last epoch's backup (the networks in ``models/`` were written before it): both exports
    (versions planned in ``exports.json``, so a repeated end completes them rather than adding new
    ones), the report, then ``finished.json``, and only then the backups are deleted. The workers of
    a multi-worker run meet at a barrier before the chief marks the run finished, so no worker leaves
    while another still needs it.

    Returns:
        ``{model_name: export folder}``.
    """
    stop = None if tf_config is not None else stop
    if not all(io.exists(run.network(attribute)) for attribute in model.NETWORKS):
        # Each epoch's end writes them before its backup: only a lost file is written here.
        saver = run_callbacks.SaveNetworks(run.models)
        saver.set_model(model)
        saver.save()
    _stop_between(stop, "the exports")
    exporter.set_model(model)
    exported = exporter.export(epochs_done=config.epochs)
    _stop_between(stop, "the report")
    logger.info("Report: %s", write_report(run.root, list(exported.values()) or None))
    distribute.final_barrier(tf_config, config.cluster_timeout)
    if distribute.is_chief(tf_config):
        _stop_between(stop, "marking it finished")
        run.mark_finished(
            {
                "epochs": config.epochs,
                "exports": exported,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        run.delete_backups()
    return exported


def _kept_state(run, store):
    """What a diverged run keeps, for its error message."""
    backups, _ = store.backups()
    epochs = run.logged_epochs()
    kept = [
        f"{backups[0].describe()}, from which the same command resumes (and would likely diverge "
        "again: a lower lr, or other data)"
        if backups
        else "no backup"
    ]
    if epochs and run.has_models():
        kept.append(f"models/ after epoch {max(epochs) + 1}")
    return "kept: " + "; ".join(kept)


def train(config):
    """Trains the config's objective (a CycleGAN by default) and writes its run folder.

    Running the same command again after an interruption resumes from the last backup. The first
    Ctrl-C or SIGTERM stops after the current step with a backup (``TrainingInterrupted``); a second
    one stops at once.

    Args:
        config: a ``TrainConfig`` (resolved here).

    Returns:
        ``(model, history)``.

    Raises:
        TrainingInterrupted: after a Ctrl-C or SIGTERM, once the backup is written.
        TrainingDiverged: when a loss becomes NaN or infinite; the message says what was kept.
        OptionError: for options that cannot work, a finished run, a folder in use.
    """
    config = config.resolved()
    strategy, tf_config = distribute.make_strategy(
        config.mirrored_strategy, config.cpu_replicas, config.multi_worker, config.cluster_timeout
    )
    distribute.check_batch_size(config.batch_size, strategy)
    logger.info("Training on %s.", distribute.describe(strategy))
    chief = distribute.is_chief(tf_config)
    shared_run = RunFolder(config.output_dir)
    # After the strategy: a multi-worker strategy replaces the SIGTERM handler when it starts.
    with (
        distribute.precision(config.mixed_precision),
        StopSignals() as stop,
        contextlib.ExitStack() as held,
    ):
        lock = shared_run.lock(None if chief else tf_config["task"])
        if io.isdir(shared_run.root):
            held.enter_context(lock)  # a second training in the folder fails at once
        if not chief:
            shared_run.check_not_finished()  # as the chief does in prepare()
        with worker_outputs(config, tf_config) as (config, backup_dir):
            domains = load_training_domains(config)
            if not io.isdir(shared_run.root):
                held.enter_context(lock)
            run = RunFolder(config.output_dir)
            run.prepare(config)
            store = BackupStore(backup_dir or run.backup)
            keras.utils.set_random_seed(config.seed)
            steps_per_epoch = data.epoch_steps(*domains, config.batch_size, config.steps_per_epoch)
            with strategy.scope():
                model = build_model(config, steps_per_epoch)
            log_parameter_counts(model)
            resumed = restore(model, store, tf_config, config.cluster_timeout)
            if resumed is None:
                if config.init_from:
                    load_network_weights(model, config.init_from)
                # The backup every run has until it finishes: a folder with a config but no
                # backup is then one that never trained, or one whose backup was lost.
                store.write(model.save_weights, 0, -1, backup_record(config))
                position = (0, 0)
            else:
                position = resumed.position
                epoch, steps = position
                logger.info(
                    "Resuming %s at epoch %d%s (from %s).",
                    shared_run.root,
                    epoch + 1,
                    f", after its step {steps}" if steps else "",
                    resumed.describe(),
                )
                run.trim_logs(position)
            sample_images = load_sample_images(config)
            exporter = make_exporter(config, run)
            history = None
            try:
                for segment in TrainingSegment.plan(position, steps_per_epoch, config.epochs):
                    dataset = _training_data(
                        strategy,
                        tf_config is not None,
                        config,
                        segment.start_step(steps_per_epoch),
                        domains,
                        run.data_cache,
                    )
                    callbacks = default_callbacks(
                        config,
                        run,
                        sample_images,
                        store.folder,
                        segment,
                        stop=stop,
                        resumed=resumed,
                        exporter=exporter,
                    )
                    with data.explained_stream_errors():
                        segment_history = model.fit(
                            dataset,
                            initial_epoch=segment.first_epoch,
                            epochs=segment.end_epoch,
                            steps_per_epoch=steps_per_epoch - segment.first_batch,
                            callbacks=callbacks,
                            validation_data=validation_data(config),
                            validation_freq=config.eval_every or 1,
                            shuffle=False,
                            verbose=1 if sys.stdout.isatty() else 2,
                        )
                    history = _joined(history, segment_history)
                    del dataset  # a memory cache of the next segment's data replaces this one's
            except run_callbacks.TrainingDiverged as error:
                raise run_callbacks.TrainingDiverged(
                    f"{error.message}; {_kept_state(run, store)}"
                ) from None
            finish(model, config, run, exporter, tf_config, stop)
    return model, history
