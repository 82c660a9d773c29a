"""A run folder: where a training run writes, and whether a run there can be resumed.

The layout (``--output-dir``, default ``runs/<name>``)::

    config.json            the resolved options
    logs/training.csv      one row per finished epoch (Keras CSVLogger; appended on resume)
    logs/train.log         progress lines in the seed repository's format
    logs/train/, logs/validation/, logs/samples/   TensorBoard events
    images/latest.png, images/epoch_NNN.png         sample grids
    models/netG_A2B.keras  netG_B2A.keras  netD_A.keras  netD_B.keras
    backup/                Keras BackupAndRestore state while training runs (deleted at the end)
"""

import json
import logging
import os

from cyclegan_tf.callbacks import NETWORK_FILES
from cyclegan_tf.config import TrainConfig

logger = logging.getLogger(__name__)


class RunFolder:
    """Paths of a run folder, and the checks that decide between a new run and a resume.

    Args:
        root: str, the run folder.
    """

    def __init__(self, root):
        self.root = root
        self.config = os.path.join(root, "config.json")
        self.logs = os.path.join(root, "logs")
        self.csv = os.path.join(self.logs, "training.csv")
        self.text_log = os.path.join(self.logs, "train.log")
        self.models = os.path.join(root, "models")
        self.images = os.path.join(root, "images")
        self.backup = os.path.join(root, "backup")

    def make(self):
        """Creates the folders."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ValueError(f"--output-dir {self.root} is a file, not a folder")
        for folder in (self.root, self.logs, self.models, self.images):
            os.makedirs(folder, exist_ok=True)

    def has_backup(self):
        """Whether an interrupted run left resumable state."""
        return os.path.isdir(self.backup) and any(
            name.endswith(".weights.h5") or name.endswith(".weights.h5.bkp")
            for name in os.listdir(self.backup)
        )

    def has_models(self):
        """Whether any of the four network files exists."""
        return any(os.path.exists(os.path.join(self.models, f)) for f in NETWORK_FILES.values())

    def backup_epoch(self):
        """The epoch an interrupted run resumes at (Keras' ``training_metadata.json``), else 0."""
        for name in ("training_metadata.json", "training_metadata.json.bkp"):
            try:
                with open(os.path.join(self.backup, name)) as f:
                    return int(json.load(f)["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return 0

    def prepare(self, config):
        """Decides how a run starts in this folder and writes ``config.json``.

        * No ``config.json``: a new run.
        * ``config.json`` and a backup: the same command resumes. Options that define the networks must
          match; others may change (a warning lists them).
        * ``config.json`` and finished networks but no backup: refused, nothing is overwritten.

        Args:
            config: the resolved ``TrainConfig`` of this invocation.

        Returns:
            int, the epoch training starts at (0 for a new run).

        Raises:
            ValueError: naming the differing option, or the finished run that would be overwritten.
        """
        self.make()
        start_epoch = 0
        if os.path.exists(self.config):
            previous = TrainConfig.from_json(self.config)
            if self.has_backup():
                self._check_resumable(previous, config)
                start_epoch = self.backup_epoch()
                logger.info("Resuming %s at epoch %d.", self.root, start_epoch + 1)
            elif self.has_models():
                raise ValueError(
                    f"{self.root} already holds a finished run (models/ and no backup/); use another "
                    f"--output-dir, or --init-from {self.root} to fine-tune from it"
                )
        config.to_json(self.config)
        return start_epoch

    def _check_resumable(self, previous, config):
        differences = previous.differences(config)
        for key in TrainConfig.ARCHITECTURE_KEYS:
            if key in differences:
                before, now = differences[key]
                raise ValueError(
                    f"cannot resume {self.root}: --{key.replace('_', '-')} is {now} but the run was "
                    f"started with {before} (see {self.config}); use the same options or another "
                    "--output-dir"
                )
        if differences:
            changed = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in sorted(differences.items()))
            logger.warning("Resuming with changed options: %s", changed)
