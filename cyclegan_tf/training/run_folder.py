"""A run folder: where a training run writes, and whether a run there can be resumed.

The layout (``--output-dir``, default ``runs/<name>``; local, ``gs://`` or ``ram://``)::

    config.json            the resolved options
    logs/training.csv      one row per finished epoch (Keras CSVLogger; appended on resume)
    logs/train.log         progress lines in the seed repository's format
    logs/train/, logs/validation/, logs/samples/, logs/steps/   TensorBoard events
    images/latest.png, images/epoch_NNN.png         sample grids
    models/netG_A2B.keras  netG_B2A.keras  netD_A.keras  netD_B.keras
    models/best_netG_A2B.keras                      with --keep-best
    report.html            config, curves, grids and exports in one page
    backup/                Keras BackupAndRestore state while training runs (deleted at the end)
    cache/                 resized training images with ``--data-cache disk`` (kept for resumes)

``RunFolder`` is the only place that spells these names; everything else asks it.
"""

import json
import logging

from cyclegan_tf import io
from cyclegan_tf.errors import OptionError
from cyclegan_tf.training.config import TrainConfig

logger = logging.getLogger(__name__)

# The seed's four network files, by ``CycleGAN`` attribute.
NETWORK_FILES = {
    "generator_ab": "netG_A2B.keras",
    "generator_ba": "netG_B2A.keras",
    "discriminator_a": "netD_A.keras",
    "discriminator_b": "netD_B.keras",
}
# The generator files by direction, as ``cyclegan-translate`` and the exports name them.
GENERATOR_ATTRIBUTES = {"A2B": "generator_ab", "B2A": "generator_ba"}
BEST_GENERATOR_FILE = "best_netG_A2B.keras"
LATEST_GRID_FILE = "latest.png"
_BACKUP_MARKERS = ("training_metadata.json", "training_metadata.json.bkp")


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
        self.best_generator = io.join(self.models, BEST_GENERATOR_FILE)

    @classmethod
    def models_folder(cls, path):
        """The ``models/`` folder of a run folder, or ``path`` itself if it holds the network files."""
        run = cls(path)
        return run.models if io.isdir(run.models) else path

    def network(self, attribute):
        """The ``.keras`` file of a ``CycleGAN`` network attribute (``"generator_ab"``, ...)."""
        return io.join(self.models, NETWORK_FILES[attribute])

    def generator(self, direction):
        """The ``.keras`` file of the ``"A2B"`` or ``"B2A"`` generator."""
        if direction not in GENERATOR_ATTRIBUTES:
            raise ValueError(
                f"direction must be one of {sorted(GENERATOR_ATTRIBUTES)}. Received: {direction!r}"
            )
        return self.network(GENERATOR_ATTRIBUTES[direction])

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
        """Whether an interrupted run left resumable state."""
        return io.isdir(self.backup) and any(
            name.endswith((".weights.h5", ".weights.h5.bkp")) for name in io.listdir(self.backup)
        )

    def has_models(self):
        """Whether any of the four network files exists."""
        return any(io.exists(self.network(attribute)) for attribute in NETWORK_FILES)

    def backup_position(self):
        """Where an interrupted run resumes: ``(epoch, steps of that epoch already done)``.

        Read from the backup's ``training_metadata.json`` (or its previous copy), in the convention
        of ``callbacks.ResumableBackup``: ``batch`` is the last step of ``epoch`` included, -1 for
        none. ``(0, 0)`` when there is no backup.
        """
        for name in _BACKUP_MARKERS:
            try:
                metadata = json.loads(io.read_text(io.join(self.backup, name)))
                return int(metadata["epoch"]), int(metadata.get("batch", -1)) + 1
            except Exception:  # noqa: BLE001 - missing, half-written or foreign: try the next
                continue
        return 0, 0

    def prepare(self, config):
        """Decides how a run starts in this folder and writes ``config.json``.

        * No ``config.json``: a new run.
        * ``config.json`` and a backup: the same command resumes. Options that define the networks must
          match; others may change (a warning lists them).
        * ``config.json`` and finished networks but no backup: refused, nothing is overwritten.

        Args:
            config: the resolved ``TrainConfig`` of this invocation.

        Returns:
            ``(epoch, steps)``: where training starts, ``(0, 0)`` for a new run (see
            ``backup_position``).

        Raises:
            OptionError: naming the differing option, or the finished run that would be overwritten.
        """
        self.make()
        position = (0, 0)
        if io.exists(self.config):
            previous = TrainConfig.from_json(self.config)
            if self.has_backup():
                self._check_resumable(previous, config)
                position = self.backup_position()
                epoch, steps = position
                logger.info(
                    "Resuming %s at epoch %d%s.",
                    self.root,
                    epoch + 1,
                    f", after its step {steps}" if steps else "",
                )
            elif self.has_models():
                raise OptionError(
                    "output_dir",
                    f"{self.root} already holds a finished run (models/ and no backup/); use another "
                    f"output folder, or initialise from it (init_from={self.root!r}) to fine-tune",
                )
        config.to_json(self.config)
        return position

    def _check_resumable(self, previous, config):
        differences = previous.differences(config)
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
