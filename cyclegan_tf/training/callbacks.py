"""Keras callbacks of a training run; each works in a user's own ``model.fit(callbacks=[...])``."""

import collections
import csv
import datetime
import io as bytes_io
import json
import logging
import math
import signal
import time

import keras
import numpy as np

from cyclegan_tf import _deprecated, _keras_compat, io, model_store, pixels
from cyclegan_tf.export import export_generator, export_pair
from cyclegan_tf.training import distribute
from cyclegan_tf.training.backup import BackupStore
from cyclegan_tf.training.interruption import TrainingInterrupted
from cyclegan_tf.training.run_folder import LATEST_GRID_FILE, NETWORK_FILES, epoch_grid_file

logger = logging.getLogger(__name__)


class SaveNetworks(keras.callbacks.Callback):
    """Writes the four networks as ``.keras`` files (``netG_A2B``, ``netG_B2A``, ``netD_A``, ``netD_B``).

    Each file is a standalone functional model that ``keras.models.load_model`` opens (after
    ``import cyclegan_tf``); writes are atomic and durable (``model_store.save_model``).

    Args:
        directory: str, the ``models/`` folder of the run.
        every_epochs: int, save every N epochs (and always after the last). Defaults to 1.
        save_at_end: bool, save when ``fit`` ends; False when the caller saves at the end of the
            whole training (the trainer's ``finish``). Defaults to True.
    """

    def __init__(self, directory, every_epochs=1, save_at_end=True):
        super().__init__()
        self.directory = directory
        self.every_epochs = every_epochs
        self.save_at_end = save_at_end

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs == 0:
            self.save()

    def on_train_end(self, logs=None):
        if self.save_at_end:
            self.save()

    def save(self):
        """Writes the four files now."""
        io.makedirs(self.directory)
        for attribute, filename in NETWORK_FILES.items():
            model_store.save_model(
                getattr(self.model, attribute), io.join(self.directory, filename)
            )


class TrainingLog(keras.callbacks.Callback):
    """Appends progress lines in the seed repository's format to a text file (and the Python log).

    ``[Epoch 50/50] [Batch 1019/1019] [D loss: 0.168199] [G loss: 1.151066, adv: 0.407010,
    cycle: 0.026193, identity: 0.096426] ETA: 0:03:12``

    Args:
        path: str, the log file (appended to, so a resumed run keeps its history).
        every: int, write a line every N batches and at each epoch end. Defaults to 100.
        first_batch: int, batches of the first epoch done before this ``fit`` (a run resumed
            mid-epoch), so that lines number batches within the whole epoch. Defaults to 0.
        epochs: int or None, the epochs of the whole training, when a ``fit`` covers only part of
            them (its ``epochs`` otherwise). Defaults to None.
    """

    def __init__(self, path, every=100, first_batch=0, epochs=None):
        super().__init__()
        self.path = path
        self.every = every
        self.first_batch = first_batch
        self.epochs = epochs
        self._offset = first_batch
        self._epoch = 0
        self._start = None
        self._done = 0

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._done = 0
        if io.dirname(self.path):
            io.makedirs(io.dirname(self.path))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if self.every and (self._offset + batch + 1) % self.every == 0:
            self._write(self._offset + batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        steps = self._steps()
        if not (self.every and steps % self.every == 0):  # else the last batch's line is there
            self._write(steps, logs)
        self._offset = 0

    def _steps(self):
        return (self.params.get("steps") or 0) + self._offset

    def _write(self, batch, logs):
        logs = logs or {}
        epochs = self.epochs or self.params.get("epochs") or 0
        steps = self._steps()
        line = (
            f"[Epoch {self._epoch + 1}/{epochs}] [Batch {batch}/{steps}] "
            f"[D loss: {_value(logs, 'd_loss')}] [G loss: {_value(logs, 'g_loss')}, "
            f"adv: {_value(logs, 'adv')}, cycle: {_value(logs, 'cycle')}, "
            f"identity: {_value(logs, 'identity')}] ETA: {self._eta(batch)}"
        )
        logger.info(line)
        with io.open_file(self.path, "a") as f:
            f.write(line + "\n")

    def _eta(self, batch):
        epochs = self.epochs or self.params.get("epochs") or 0
        steps = self.params.get("steps") or 0
        remaining = (epochs - self._epoch - 1) * steps + (steps - batch)
        if not self._done:
            return "unknown"
        seconds = (time.monotonic() - self._start) / self._done * max(remaining, 0)
        return str(datetime.timedelta(seconds=round(seconds)))


def _value(logs, key):
    value = logs.get(key)
    return "n/a" if value is None else f"{float(value):.6f}"


class StepLossScalars(keras.callbacks.Callback):
    """TensorBoard scalars of each step's losses, not the epoch's running mean (``logs/steps/``).

    Keras reports the mean of an epoch so far after each batch; a GAN's losses are watched step by step.
    The value of step ``k`` of an epoch is recovered exactly from the running means ``m_k`` and
    ``m_{k-1}``: ``k * m_k - (k - 1) * m_{k-1}``.

    Args:
        log_dir: str, the folder of the event files (``RUN/logs/steps``).
        keys: tuple of str, the logged losses. Defaults to the seed's summary losses.
        every: int, write every N steps. Defaults to 1.
    """

    def __init__(self, log_dir, keys=("d_loss", "g_loss", "adv", "cycle", "identity"), every=1):
        super().__init__()
        self.log_dir = log_dir
        self.keys = keys
        self.every = every
        self._writer = None
        self._previous = {}

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        values = {}
        for key in self.keys:
            if logs.get(key) is None:
                continue
            mean = float(np.mean(logs[key]))
            values[key] = (batch + 1) * mean - batch * self._previous.get(key, 0.0)
            self._previous[key] = mean
        if self.every and step % self.every == 0 and values:
            with self._writer.as_default():
                for key, value in values.items():
                    tf.summary.scalar(key, value, step=step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class TrainingDiverged(RuntimeError):
    """Raised by ``StopOnNonFiniteLoss`` when a loss becomes NaN or infinite.

    Attributes:
        message: str, one line: which loss, when, and (from the trainer) what was kept.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN/inf loss, before anything is saved from that state.

    Unlike ``keras.callbacks.TerminateOnNaN`` it raises: with ``stop_training`` the epoch would still end
    normally and the networks and the backup would be written from the diverged weights. Put it first in
    the callback list so that no later callback sees the bad step.

    Args:
        keys: tuple of str, the logged losses to watch. Defaults to ``("d_loss", "g_loss")``.
    """

    def __init__(self, keys=("d_loss", "g_loss")):
        super().__init__()
        self.keys = keys
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for key in self.keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                step = int(self.model.optimizer.iterations.numpy())
                raise TrainingDiverged(
                    f"{key} became {float(value)} at step {step} (epoch {self._epoch + 1}, batch "
                    f"{batch + 1}); training stopped before anything was saved from that step"
                )


class ResumableBackup(_keras_compat.BackupAndRestore):
    """Backs up the training state every ``save_freq`` steps and at every epoch end, durably.

    Each backup is a new, numbered one in ``backup_dir`` (``backup.BackupStore``): the model's state
    (networks, optimizers, image pools), then a manifest with where training was, the weights file's
    size and checksum and the loss trackers of the epoch so far. A backup counts only once all of it
    is on the disk, and the previous one stays until then, so a run killed at any instant resumes.

    ``batch`` in a manifest is the 0-based index of the last step of epoch ``epoch`` included, and -1
    for a backup at the start of ``epoch``: a resumed run trains exactly the remaining steps of an
    interrupted epoch (``trainer.TrainingSegment``), and its epoch's losses continue from the
    backed-up trackers.

    With ``stop`` (an ``interruption.StopSignals``), a Ctrl-C or SIGTERM stops training after the
    current step: this callback backs that step up and raises ``TrainingInterrupted``. In a
    multi-worker run, every worker stops after the same step.

    In a user's own ``fit``, the newest usable backup is loaded when training starts; ``fit`` then
    starts at its ``initial_epoch`` argument (``_keras_compat.BackupAndRestore``), which
    ``resume_position(backup_dir)`` gives.

    Args:
        backup_dir: str, the backup folder.
        save_freq: ``"epoch"`` or int, steps between backups within an epoch.
        first_batch: int, steps of the first epoch done before this ``fit`` (a run resumed mid-epoch).
            Defaults to 0.
        delete_checkpoint: bool, delete the backups when ``fit`` ends. The trainer keeps them (False)
            until the networks, exports and report are written. Defaults to True.
        restore: bool, load the newest usable backup when ``fit`` starts; False when the caller has
            loaded one (``resumed``). Defaults to True.
        resumed: ``backup.Backup`` or None, the backup the caller loaded into the model.
        stop: ``interruption.StopSignals`` or None, whose requests stop training after a step.
        record: dict or None, kept in every manifest (the trainer keeps the run's options there).
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        first_batch=0,
        delete_checkpoint=True,
        restore=True,
        resumed=None,
        stop=None,
        record=None,
    ):
        super().__init__(backup_dir, save_freq, delete_checkpoint=delete_checkpoint)
        self.store = BackupStore(backup_dir)
        self.first_batch = first_batch
        self.restore = restore
        self.resumed = resumed
        self.stop = stop
        self.record = dict(record or {})
        self.last_backup = None
        self._offset = first_batch
        self._saved_after = None
        self._first_epoch = None

    def _load_model(self):
        if self.restore:
            self.resumed = self.store.restore(self.model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last_batch_seen = self.first_batch - 1
        self._offset = self.first_batch
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if self._first_epoch is None:
            self._first_epoch = epoch
        resumed = self.resumed
        if (
            resumed is not None
            and resumed.position == (epoch, self.first_batch)
            and resumed.batch >= 0
        ):
            # fit reset the trackers just before this epoch; the resumed epoch continues its means.
            _set_tracker_state(self.model, resumed.manifest.get("trackers", {}))
        first = self.first_batch if epoch == self._first_epoch else 0
        where = f"epoch {epoch + 1}, step {first}" if first else f"the start of epoch {epoch + 1}"
        self._stop_if_asked(where, backup=False)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= ((self.params or {}).get("steps") or math.inf):
            # An epoch's last step: its backup (and a stop) wait for the epoch's end, so that a
            # resumed run never skips what an epoch's end writes (CSV row, networks, exports).
            return
        super().on_train_batch_end(self._offset + batch, logs)
        where = f"epoch {self._current_epoch + 1}, step {self._offset + batch + 1}"
        self._stop_if_asked(where, backup=True)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = -1
        self._batches_seen_since_last_saving = 0
        self._offset = 0
        self._save_model()

    def _save_model(self):
        position = (self._current_epoch, self._last_batch_seen)
        if self._saved_after == position:
            return
        record = {
            **self.record,
            "step": int(self.model.optimizer.iterations.numpy()),
            "trackers": _tracker_state(self.model),
        }
        self.last_backup = self.store.write(
            self.model.save_weights, self._current_epoch, self._last_batch_seen, record
        )
        self._saved_after = position

    def _stop_if_asked(self, where, backup):
        if self.stop is None:
            return
        asked = self.stop.requested is not None
        if not distribute.any_worker(self.model.distribute_strategy, asked):
            return
        if backup:
            self._save_model()
        if not asked:
            where += " (another worker was asked to stop)"
        raise TrainingInterrupted(self.stop.requested or signal.SIGTERM, where)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            self.store.delete()

    @staticmethod
    def resume_position(backup_dir):
        """``(epoch, steps done)`` of the newest usable backup in ``backup_dir``; ``(0, 0)`` if none."""
        usable, _ = BackupStore(backup_dir).usable()
        return usable[0].position if usable else (0, 0)


def _tracker_state(model):
    """``{metric name: [variable values]}`` of a model's metrics (the epoch's running means)."""
    return {
        metric.name: [float(np.asarray(variable)) for variable in metric.variables]
        for metric in model.metrics
    }


def _set_tracker_state(model, state):
    for metric in model.metrics:
        values = state.get(metric.name)
        if values is not None and len(values) == len(metric.variables):
            for variable, value in zip(metric.variables, values):
                variable.assign(value)


class EpochCsvLog(keras.callbacks.Callback):
    """One row per epoch in a CSV file, in the format of ``keras.callbacks.CSVLogger``, durably.

    The file is written anew after every epoch (``io.write_text`` with ``durable=True``), so the row
    of an epoch is on the disk before that epoch's backup, on any filesystem. A file that exists is
    continued with its own columns, so the rows of a resumed run line up with the earlier ones.

    Args:
        path: str, the CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._text = ""
        self._keys = None

    def on_train_begin(self, logs=None):
        self._text = io.read_text(self.path) if io.isfile(self.path) else ""
        header = next(csv.reader(self._text.splitlines()), None)
        self._keys = header[1:] if header and header[0] == "epoch" else None
        if self._keys is None:
            self._text = ""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        buffer = bytes_io.StringIO()
        if self._keys is None:
            self._keys = sorted(logs)
            if not any(key.startswith("val_") for key in self._keys):
                self._keys += [f"val_{key}" for key in self._keys]
            csv.writer(buffer).writerow(["epoch", *self._keys])
        row = collections.OrderedDict(epoch=epoch)
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self._keys)
        csv.DictWriter(buffer, fieldnames=["epoch", *self._keys]).writerow(row)
        self._text += buffer.getvalue()
        io.write_text(self.path, self._text, durable=True)


def _csv_value(value):
    """A log value as ``keras.callbacks.CSVLogger`` writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value
    if np.ndim(value) > 0:
        return f'"[{", ".join(map(str, np.ravel(value)))}]"'
    return value


class ExportGenerators(keras.callbacks.Callback):
    """Exports both generators as SavedModels for TF Serving at the end of training.

    Each export is a new version of both models. The end of training does not export again when the
    last epoch has just been exported.

    With ``ledger`` (a JSON file; the trainer's is ``RUN/exports.json``) each export is planned
    before it is written: the version numbers of the export after epoch N are recorded there first,
    durably. A run that stopped during an export, or before the backup that follows it, and is
    resumed then completes that export under the same version numbers instead of adding new ones.

    Args:
        export_dir: str, the base path (``saved_models``).
        run_name: str, the run's name; see ``cyclegan_tf.export.model_names``.
        every_epochs: int or None, also export every N epochs.
        export_at_end: bool, export when ``fit`` ends; False for a ``fit`` that covers only part of
            a training. Defaults to True.
        ledger: str or None, the file of planned exports.
    """

    def __init__(self, export_dir, run_name, every_epochs=None, export_at_end=True, ledger=None):
        super().__init__()
        self.export_dir = export_dir
        self.run_name = run_name
        self.every_epochs = every_epochs
        self.export_at_end = export_at_end
        self.ledger = ledger
        self.exported = {}
        self._up_to_date = False

    def on_epoch_begin(self, epoch, logs=None):
        self._up_to_date = False

    def on_epoch_end(self, epoch, logs=None):
        if self.every_epochs and (epoch + 1) % self.every_epochs == 0:
            self.export(epochs_done=epoch + 1)

    def on_train_end(self, logs=None):
        if self.export_at_end and not self._up_to_date:
            self.export(epochs_done=(self.params or {}).get("epochs"))

    def _planned(self):
        if not self.ledger or not io.isfile(self.ledger):
            return {}
        return json.loads(io.read_text(self.ledger))

    def export(self, epochs_done=None):
        """Writes a version of each generator now (unless the one after ``epochs_done`` exists).

        Args:
            epochs_done: int or None, the epochs trained; the key of the export in the ledger.

        Returns:
            ``{model_name: folder}``.
        """
        key = None if epochs_done is None else str(epochs_done)
        plans = self._planned()
        generators = dict(
            zip(
                model_store.model_names(self.run_name),
                (self.model.generator_ab, self.model.generator_ba),
            )
        )
        if key in plans:
            self.exported = {}
            for name, version in plans[key].items():
                path = io.join(self.export_dir, name, str(version))
                if not io.exists(path):
                    _remove_staging(io.join(self.export_dir, name), version)
                    export_generator(generators[name], self.export_dir, name, version)
                self.exported[name] = path
        else:
            folders = [io.join(self.export_dir, name) for name in generators]
            version = model_store.default_version(folders)
            if self.ledger and key is not None:
                plans[key] = {name: version for name in generators}
                io.write_text(
                    self.ledger, json.dumps(plans, indent=1, sort_keys=True), durable=True
                )
            self.exported = export_pair(
                self.model.generator_ab,
                self.model.generator_ba,
                self.export_dir,
                self.run_name,
                version=version,
            )
        self._up_to_date = True
        return self.exported


def _remove_staging(model_dir, version):
    """Deletes what an export of ``version`` that was cut short left (its hidden staging copy).

    The version is this run's (planned in its ledger), so no other export writes it.
    """
    if not io.isdir(model_dir):
        return
    for name in io.listdir(model_dir):
        if io.is_temporary(name) and name.startswith(f".{version}.tmp-"):
            path = io.join(model_dir, name)
            io.rmtree(path) if io.isdir(path) else io.remove(path)


class SampleGrid(keras.callbacks.Callback):
    """Sample grids on fixed images: ``images/latest.png`` every N steps, ``images/epoch_NNN.png`` per epoch.

    Columns: real A | A→B | A→B→A | real B | B→A | B→A→B, one row per image, titled with the epoch and
    step. The epoch grids also go to TensorBoard as an image summary. The generators run in inference mode
    on a handful of images, so the cost is a small fraction of a training step.

    Args:
        images_a: float array ``[n, H, W, 3]`` in [-1, 1], chosen once (the same every time).
        images_b: the same for domain B.
        directory: str, the run's ``images/`` folder.
        every_steps: int, write ``latest.png`` every N steps (0: only per epoch). Defaults to 100.
        tensorboard_dir: str or None, where the image summaries go.
    """

    COLUMNS = ("real A", "A→B", "A→B→A", "real B", "B→A", "B→A→B")

    def __init__(self, images_a, images_b, directory, every_steps=100, tensorboard_dir=None):
        super().__init__()
        self.images_a = images_a
        self.images_b = images_b
        self.directory = directory
        self.every_steps = every_steps
        self.tensorboard_dir = tensorboard_dir
        self._epoch = 0
        self._writer = None
        self._translate = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        io.makedirs(self.directory)
        model = self.model

        @tf.function(reduce_retracing=True)
        def translate(real_a, real_b):
            fake_b = model.generator_ab(real_a, training=False)
            fake_a = model.generator_ba(real_b, training=False)
            cycle_a = model.generator_ba(fake_b, training=False)
            cycle_b = model.generator_ab(fake_a, training=False)
            return real_a, fake_b, cycle_a, real_b, fake_a, cycle_b

        self._translate = translate
        if self.tensorboard_dir:
            self._writer = tf.summary.create_file_writer(io.join(self.tensorboard_dir, "samples"))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.every_steps and step % self.every_steps == 0:
            self.write(io.join(self.directory, LATEST_GRID_FILE), step)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        png = self.write(io.join(self.directory, epoch_grid_file(epoch)), step)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                tf.summary.image("samples", tf.io.decode_png(png)[None], step=step)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()

    def write(self, path, step):
        """Renders the grid to ``path`` (atomically) and returns the PNG bytes."""
        columns = [np.asarray(c) for c in self._translate(self.images_a, self.images_b)]
        png = render_grid(columns, self.COLUMNS, f"epoch {self._epoch + 1}, step {step}")
        io.write_bytes(path, png, durable=True)
        return png


GRID_CELL_INCHES = 1.6  # each image's place in a sample grid
GRID_DPI = 100


def _shrunk(image, max_side):
    """``image`` (uint8 ``[H, W, 3]``) box-averaged by the smallest integer factor that fits ``max_side``."""
    factor = -(-max(image.shape[:2]) // max_side)
    if factor <= 1:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).reduce(factor))


def grid_mosaic(columns, gap, max_side=None):
    """Tiles image columns into one picture, one row per image, ``gap`` white pixels between cells.

    Args:
        columns: list of arrays ``[n, H, W, 3]`` in [-1, 1], one per column (sizes may differ; each
            cell is as large as the largest image).
        gap: int, pixels between cells.
        max_side: int or None, images larger than this on a side are first shrunk to fit (averaging
            whole blocks of pixels), so a grid of large images stays small in memory.

    Returns:
        uint8 array ``[n * H + (n - 1) * gap, c * W + (c - 1) * gap, 3]``, H and W after shrinking.
    """

    def cell(image):
        image = pixels.to_uint8(image)
        return _shrunk(image, max_side) if max_side else image

    cells = [[cell(image) for image in images] for images in columns]
    height = max(cell.shape[0] for column in cells for cell in column)
    width = max(cell.shape[1] for column in cells for cell in column)
    step_y, step_x = height + gap, width + gap
    mosaic = np.full((len(cells[0]) * step_y - gap, len(cells) * step_x - gap, 3), 255, np.uint8)
    for col, column in enumerate(cells):
        for row, cell in enumerate(column):
            top, left = row * step_y, col * step_x
            mosaic[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
    return mosaic


def render_grid(columns, titles, suptitle):
    """A titled grid of image columns in [-1, 1], as PNG bytes.

    The images are tiled into one picture drawn on a single matplotlib axes (one axes per image
    made a grid cost about a second at every sample). Images larger than twice their place in the
    figure are shrunk first: the PNG could not show more.

    Args:
        columns: list of arrays ``[n, H, W, 3]`` in [-1, 1], one per column.
        titles: list of str, one per column.
        suptitle: str, the figure title.

    Returns:
        bytes, the PNG.
    """
    from matplotlib.figure import Figure

    rows = columns[0].shape[0]
    max_side = 2 * int(GRID_CELL_INCHES * GRID_DPI)
    width = min(max(images.shape[2] for images in columns), max_side)
    mosaic = grid_mosaic(columns, gap=max(1, width // 16), max_side=max_side)
    figure = Figure(figsize=(GRID_CELL_INCHES * len(columns), GRID_CELL_INCHES * rows + 0.5))
    axis = figure.add_axes((0.0, 0.0, 1.0, 1.0 - 0.5 / figure.get_figheight()))
    axis.imshow(mosaic)
    cell_width = mosaic.shape[1] / len(columns)
    axis.set_xticks([(col + 0.5) * cell_width for col in range(len(columns))], titles, fontsize=9)
    axis.xaxis.tick_top()
    axis.tick_params(length=0, pad=2)
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)
    figure.suptitle(suptitle, fontsize=10, y=1.0 - 0.05 / figure.get_figheight(), va="top")
    buffer = bytes_io.BytesIO()
    figure.savefig(buffer, format="png", dpi=GRID_DPI)
    return buffer.getvalue()


def __getattr__(name):
    # ``callbacks.save_atomically`` of 0.1 is ``model_store.save_model``.
    if name == "save_atomically":
        _deprecated.warn_renamed(f"{__name__}.{name}", "cyclegan_tf.model_store.save_model")
        return model_store.save_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
