"""Keras callbacks of a training run; each works in a user's own ``model.fit(callbacks=[...])``."""

import datetime
import io as bytes_io
import logging
import math
import time

import keras
import numpy as np

from cyclegan_tf import _deprecated, _keras_compat, io, model_store, pixels
from cyclegan_tf.export import export_pair
from cyclegan_tf.training.run_folder import LATEST_GRID_FILE, NETWORK_FILES, epoch_grid_file

logger = logging.getLogger(__name__)


class SaveNetworks(keras.callbacks.Callback):
    """Writes the four networks as ``.keras`` files (``netG_A2B``, ``netG_B2A``, ``netD_A``, ``netD_B``).

    Each file is a standalone functional model that ``keras.models.load_model`` opens (after
    ``import cyclegan_tf``); writes are atomic.

    Args:
        directory: str, the ``models/`` folder of the run.
        every_epochs: int, save every N epochs (and always after the last). Defaults to 1.
    """

    def __init__(self, directory, every_epochs=1):
        super().__init__()
        self.directory = directory
        self.every_epochs = every_epochs

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs == 0:
            self.save()

    def on_train_end(self, logs=None):
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
    """

    def __init__(self, path, every=100, first_batch=0):
        super().__init__()
        self.path = path
        self.every = every
        self.first_batch = first_batch
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
        epochs = self.params.get("epochs") or 0
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
        epochs = self.params.get("epochs") or 0
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
    """Raised by ``StopOnNonFiniteLoss`` when a loss becomes NaN or infinite."""


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
                    f"{batch + 1}); training stopped, models/ and backup/ keep the last good state"
                )


class ResumableBackup(_keras_compat.BackupAndRestore):
    """Backs up the training state every ``save_freq`` steps and at every epoch end, recording where.

    The backup is Keras' (``latest.weights.h5`` and ``training_metadata.json``, read back by
    ``BackupAndRestore``), with one convention on top: ``batch`` in the metadata is the 0-based index
    of the last step of epoch ``epoch`` included, and -1 for a backup at the start of ``epoch``. A
    resumed run can then train exactly the remaining steps of an interrupted epoch
    (``RunFolder.backup_position``).

    Args:
        backup_dir: str, the backup folder.
        save_freq: ``"epoch"`` or int, steps between backups within an epoch.
        first_batch: int, steps of the first epoch done before this ``fit`` (a run resumed mid-epoch).
            Defaults to 0.
        delete_checkpoint: bool, delete the backup when ``fit`` ends; a ``fit`` that covers only part
            of a training keeps it. Defaults to True.
    """

    def __init__(self, backup_dir, save_freq="epoch", first_batch=0, delete_checkpoint=True):
        super().__init__(
            backup_dir, save_freq, double_checkpoint=True, delete_checkpoint=delete_checkpoint
        )
        self.first_batch = first_batch
        self._offset = first_batch

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last_batch_seen = self.first_batch - 1
        self._offset = self.first_batch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._offset + batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = -1
        self._batches_seen_since_last_saving = 0
        self._offset = 0
        self._save_model()


class ExportGenerators(keras.callbacks.Callback):
    """Exports both generators as SavedModels for TF Serving at the end of training.

    Each export is a new version of both models. The end of training does not export again when the
    last epoch has just been exported.

    Args:
        export_dir: str, the base path (``saved_models``).
        run_name: str, the run's name; see ``cyclegan_tf.export.model_names``.
        every_epochs: int or None, also export every N epochs.
        export_at_end: bool, export when ``fit`` ends; False for a ``fit`` that covers only part of
            a training. Defaults to True.
    """

    def __init__(self, export_dir, run_name, every_epochs=None, export_at_end=True):
        super().__init__()
        self.export_dir = export_dir
        self.run_name = run_name
        self.every_epochs = every_epochs
        self.export_at_end = export_at_end
        self.exported = {}
        self._up_to_date = False

    def on_epoch_begin(self, epoch, logs=None):
        self._up_to_date = False

    def on_epoch_end(self, epoch, logs=None):
        if self.every_epochs and (epoch + 1) % self.every_epochs == 0:
            self.export()

    def on_train_end(self, logs=None):
        if self.export_at_end and not self._up_to_date:
            self.export()

    def export(self):
        """Writes a new version of each generator now; returns ``{model_name: folder}``."""
        self.exported = export_pair(
            self.model.generator_ab, self.model.generator_ba, self.export_dir, self.run_name
        )
        self._up_to_date = True
        return self.exported


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
        io.write_bytes(path, png)
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
