"""A run folder: where a training run writes, and whether a run there starts, resumes or is done.

The layout (``--output-dir``, default ``runs/<name>``; local, ``gs://`` or ``ram://``)::

    config.json            the resolved options
    logs/training.csv      one row per finished epoch (rewritten durably after each)
    logs/train.log         progress lines in the seed repository's format
    logs/train/, logs/validation/, logs/samples/, logs/steps/   TensorBoard events
    images/latest.png, images/epoch_NNN.png         sample grids
    models/<network files>  the objective's networks (its ``NETWORKS``): CycleGAN's netG_A2B.keras,
                           netG_B2A.keras, netD_A.keras, netD_B.keras; CUT's netG, netD, netF
    models/best_<A→B generator file>                with --keep-best (best_netG_A2B.keras)
    exports.json           the export versions planned after each exported epoch
    report.html            config, curves, grids and exports in one page
    finished.json          written last, once the networks, exports and report are: the run is done
    backup/                resume state (``backup.BackupStore``), from the first step until finished
    .backup-worker-N/      the same for the other workers of a multi-worker run
    .lock                  held by the training that writes the folder (``io.exclusive_lock``)
    cache/                 resized training images with ``--data-cache disk`` (kept for resumes)

``RunFolder`` is the only place that spells these names; everything else asks it. The network files
are the run's objective's (``config.json``'s ``objective``; a run written before objectives existed is
a CycleGAN run).

The folder's state decides what the same command does (``prepare``): no ``config.json``, a new run; a
backup, a resume from it (exactly: ``logs/`` is cut back to the backup, and the steps after it are
trained again); ``finished.json``, a refusal (nothing is overwritten); no backup but progress
(networks, CSV rows) and no ``finished.json``, a refusal too, since the run cannot continue where it
stopped.
"""

import json
import logging
import re

from cyclegan_tf import io
from cyclegan_tf.errors import OptionError, first_line
from cyclegan_tf.models.objectives import get_objective
from cyclegan_tf.training.backup import BackupStore
from cyclegan_tf.training.config import TrainConfig

logger = logging.getLogger(__name__)

LATEST_GRID_FILE = "latest.png"
FINISHED_FILE = "finished.json"
# ``[Epoch 3/20] [Batch 40/40] ...``: the lines of ``logs/train.log`` by position.
_LOG_LINE = re.compile(r"^\[Epoch (\d+)/\d+\] \[Batch (\d+)/\d+\]")


def epoch_grid_file(epoch):
    """The file name of the sample grid after 0-based ``epoch``: ``epoch_NNN.png``, 1-based."""
    return f"epoch_{epoch + 1:03d}.png"


class RunFolder:
    """Paths of a run folder, and the checks that decide between a new run and a resume.

    Args:
        root: str, the run folder.
    """

    def __init__(self, root):
        self.root = root
        self.config = io.join(root, "config.json")
        self.logs = io.join(root, "logs")
        self.csv = io.join(self.logs, "training.csv")
        self.text_log = io.join(self.logs, "train.log")
        self.step_logs = io.join(self.logs, "steps")
        self.models = io.join(root, "models")
        self.images = io.join(root, "images")
        self.backup = io.join(root, "backup")
        self.data_cache = io.join(root, "cache")
        self.report = io.join(root, "report.html")
        self.exports = io.join(root, "exports.json")
        self.finished = io.join(root, FINISHED_FILE)

    @classmethod
    def models_folder(cls, path):
        """The ``models/`` folder of a run folder, or ``path`` itself if it holds the network files."""
        run = cls(path)
        return run.models if io.isdir(run.models) else path

    def objective(self):
        """The ``GAN`` subclass of the run: ``config.json``'s ``objective`` (CycleGAN without one)."""
        objective = "cyclegan"
        if io.isfile(self.config):
            try:
                objective = json.loads(io.read_text(self.config)).get("objective") or objective
            except (ValueError, UnicodeDecodeError):
                pass  # a damaged config.json: prepare() names it; a reader assumes a CycleGAN run
        return get_objective(objective)

    def network(self, attribute):
        """The ``.keras`` file of a network attribute of the run's objective (``"generator_ab"``)."""
        return io.join(self.models, self.objective().NETWORKS[attribute])

    def generator(self, direction):
        """The ``.keras`` file of the run's ``"A2B"`` (or, where it has one, ``"B2A"``) generator."""
        translations = self.objective().TRANSLATIONS
        if direction not in translations:
            raise ValueError(
                f"direction must be one of {sorted(translations)} for a "
                f"{self.objective().__name__} run. Received: {direction!r}"
            )
        return self.network(translations[direction])

    @property
    def best_generator(self):
        """``models/best_<A→B generator file>`` (``best_netG_A2B.keras``), kept by --keep-best."""
        return io.join(self.models, "best_" + io.basename(self.generator("A2B")))

    def epoch_grid(self, epoch):
        """The sample grid written after 0-based ``epoch`` (``images/epoch_NNN.png``)."""
        return io.join(self.images, epoch_grid_file(epoch))

    @property
    def latest_grid(self):
        """The sample grid rewritten every ``--sample-every`` steps."""
        return io.join(self.images, LATEST_GRID_FILE)

    def worker_backup(self, task_type, index):
        """Where a non-chief worker of a multi-worker run keeps its resume state."""
        return io.join(self.root, f".backup-{task_type}-{index}")

    def lock_file(self, task=None):
        """The lock of the process that writes this folder (``task``: another worker's own lock)."""
        suffix = f"-{task['type']}-{task['index']}" if task else ""
        return io.join(self.root, f".lock{suffix}")

    def is_run(self):
        """Whether the folder holds anything a run writes (config, log or images)."""
        return any(io.exists(path) for path in (self.config, self.csv, self.images))

    def make(self):
        """Creates the folders."""
        if io.exists(self.root) and not io.isdir(self.root):
            raise OptionError("output_dir", f"{self.root} is a file, not a folder")
        for folder in (self.root, self.logs, self.models, self.images):
            io.makedirs(folder)

    def has_backup(self):
        """Whether an interrupted run left resumable state (or what is left of it)."""
        return BackupStore(self.backup).exists()

    def has_models(self):
        """Whether any network file of the run's objective exists."""
        return any(io.exists(self.network(attribute)) for attribute in self.objective().NETWORKS)

    def is_finished(self):
        """Whether the run finished: ``finished.json``, written after everything else."""
        return io.exists(self.finished)

    def worker_backups(self):
        """The backup folders of the other workers of a multi-worker run that are present."""
        if not io.isdir(self.root):
            return []
        return [
            io.join(self.root, name)
            for name in io.listdir(self.root)
            if name.startswith(".backup-")
        ]

    def lock(self, task=None):
        """Holds the folder's lock for a block: one training per run folder.

        Args:
            task: dict or None, ``TF_CONFIG``'s task of a non-chief worker, which holds a lock of
                its own (the chief holds the folder's).

        Raises:
            OptionError: for ``output_dir``, naming who holds it.
        """
        return _RunLock(self, task)

    def prepare(self, config):
        """Decides how a run starts in this folder and writes ``config.json``.

        * No ``config.json`` and no backup: a new run.
        * A backup: the same command resumes. Options that define the networks must match; others
          may change (a warning lists them). A damaged ``config.json`` is rewritten from the options
          kept in the backup.
        * ``finished.json``: refused, nothing is overwritten.
        * ``config.json``, no backup, and networks or logged epochs: refused too (the backup is gone,
          the run cannot continue where it stopped).

        Args:
            config: the resolved ``TrainConfig`` of this invocation.

        Returns:
            bool, whether a backup is there to resume from (see ``trainer.train``).

        Raises:
            OptionError: naming the differing option, the finished run, or the damaged file.
        """
        self.make()
        self._remove_temporary()
        store = BackupStore(self.backup)
        if self.is_finished():
            self._delete_leftover_backups(store)
        self.check_not_finished()
        resuming = store.exists()
        previous = self._previous_config(store, resuming)
        if previous is not None and not resuming:
            self._refuse_without_backup(previous)
        if previous is not None:
            self._check_resumable(previous, config)
        config.to_json(self.config)
        return resuming

    def check_not_finished(self):
        """Raises ``OptionError`` if the run in this folder is finished (``finished.json``)."""
        if self.is_finished():
            raise OptionError(
                "output_dir",
                f"{self.root} already holds a finished run ({FINISHED_FILE}); use another output "
                f"folder, or initialise from it (init_from={self.root!r}) to fine-tune",
            )

    def _previous_config(self, store, resuming):
        if not io.exists(self.config):
            return None
        try:
            return TrainConfig.from_json(self.config)
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            problem = f"{self.config} is damaged ({first_line(error)})"
        kept = None
        for backup in store.backups()[0] if resuming else []:
            if "config" in backup.manifest:
                kept = backup.manifest["config"]
                break
        if kept is None:
            raise OptionError(
                "output_dir",
                f"{problem}: it holds the options of the run in {self.root}; restore it, or use "
                "another output folder",
            )
        logger.warning("%s; using the options kept in the backup.", problem)
        return TrainConfig(**kept)

    def _refuse_without_backup(self, previous):
        epochs = self.logged_epochs()
        if not self.has_models() and not epochs:
            return  # stopped before its first backup: nothing to lose, it starts again
        if io.exists(self.report) and len(epochs) >= previous.epochs:
            raise OptionError(
                "output_dir",
                f"{self.root} already holds a finished run (models/ and no backup/); use another "
                f"output folder, or initialise from it (init_from={self.root!r}) to fine-tune",
            )
        raise OptionError(
            "output_dir",
            f"{self.root} holds an unfinished run ({len(epochs)} of {previous.epochs} epochs logged) "
            f"whose backup/ is gone, so it cannot continue where it stopped; use another output "
            f"folder, or start one from its networks (init_from={self.root!r}: the optimizers and "
            "image pools start afresh)",
        )

    def _check_resumable(self, previous, config):
        # Resolved, a config.json written before an option existed holds that option's default.
        differences = previous.resolved().differences(config)
        for key in TrainConfig.ARCHITECTURE_KEYS:
            if key in differences:
                before, now = differences[key]
                raise OptionError(
                    key,
                    f"cannot resume {self.root}: it is {now!r} but the run was started with "
                    f"{before!r} (see {self.config}); use the same options or another output folder",
                )
        if differences:
            changed = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in sorted(differences.items()))
            logger.warning("Resuming with changed options: %s", changed)

    def logged_epochs(self):
        """The 0-based epochs of the rows of ``logs/training.csv``, in file order."""
        if not io.isfile(self.csv):
            return []
        lines = io.read_text(self.csv).splitlines()[1:]
        firsts = [line.split(",", 1)[0] for line in lines]
        return [int(first) for first in firsts if first.isdigit()]

    def trim_logs(self, position):
        """Cuts ``logs/training.csv`` and ``logs/train.log`` back to a backup's position.

        What was logged after the backup (a killed run logged on for a while) is trained and logged
        again by the resumed run; without the cut, those epochs and steps would appear twice.

        Args:
            position: ``(epoch, steps done)`` of the backup resumed from.
        """
        epoch, steps = position
        if io.isfile(self.csv):
            lines = io.read_text(self.csv).splitlines(keepends=True)
            kept = lines[:1] + [line for line in lines[1:] if _row_before(line, epoch)]
            if kept != lines:
                io.write_text(self.csv, "".join(kept), durable=True)
        if io.isfile(self.text_log):
            lines = io.read_text(self.text_log).splitlines(keepends=True)
            kept = [line for line in lines if _logged_before(line, epoch, steps)]
            if kept != lines:
                io.write_text(self.text_log, "".join(kept), durable=True)

    def mark_finished(self, record):
        """Writes ``finished.json`` (durably), after the networks, exports and report."""
        io.write_text(self.finished, json.dumps(record, indent=1, sort_keys=True), durable=True)

    def delete_backups(self):
        """Deletes the backups of every worker (after ``mark_finished``)."""
        for folder in [*self.worker_backups(), self.backup]:
            BackupStore(folder).delete()

    def _delete_leftover_backups(self, store):
        if store.exists() or self.worker_backups():
            logger.info("%s finished; deleting the backups its end left.", self.root)
            self.delete_backups()

    def _remove_temporary(self):
        """Deletes the hidden files of writes that a killed run left half done."""
        for folder in (self.root, self.logs, self.models, self.images, self.backup):
            if io.isdir(folder):
                for name in io.listdir(folder):
                    if io.is_temporary(name):
                        path = io.join(folder, name)
                        io.rmtree(path) if io.isdir(path) else io.remove(path)


def _row_before(line, epoch):
    """Whether a CSV row is about an epoch before 0-based ``epoch`` (a row without one is kept)."""
    first = line.split(",", 1)[0]
    return not first.isdigit() or int(first) < epoch


def _logged_before(line, epoch, steps):
    """Whether a ``train.log`` line is about a step up to ``steps`` of 0-based ``epoch``, or earlier."""
    match = _LOG_LINE.match(line)
    if not match:
        return True
    logged_epoch, batch = int(match.group(1)) - 1, int(match.group(2))
    return logged_epoch < epoch or (logged_epoch == epoch and batch <= steps)


class _RunLock:
    """The context manager of ``RunFolder.lock``: ``io.exclusive_lock`` with a user's message."""

    def __init__(self, run, task):
        self.path = run.lock_file(task)
        self.root = run.root
        self._held = None

    def __enter__(self):
        self._held = io.exclusive_lock(self.path)
        try:
            self._held.__enter__()
        except io.LockHeld as error:
            raise OptionError(
                "output_dir",
                f"{self.root} is in use by another training: "
                f"{io.describe_lock_holder(error.holder)}{error.detail}; wait for it to end, or stop it (Ctrl-C "
                f"there), or use another output folder (lock: {self.path})",
            ) from None
        return self

    def __exit__(self, *exc_info):
        return self._held.__exit__(*exc_info)
