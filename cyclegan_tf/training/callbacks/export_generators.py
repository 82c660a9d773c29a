"""``ExportGenerators``: a run's generators exported as SavedModels, under planned versions."""

import json

import keras

from cyclegan_tf import io, model_store
from cyclegan_tf.export import export_generator, export_generators


class ExportGenerators(keras.callbacks.Callback):
    """Exports the model's generators as SavedModels for TF Serving at the end of training.

    The generators are the objective's (``TRANSLATIONS``): a CycleGAN's two, served as
    ``model_store.model_names(run_name)`` (``apple2orange`` and ``orange2apple``), a CUT's A→B one
    as the first of them. Each export is a new version of every model, under one version number. The
    end of training does not export again when the last epoch has just been exported.

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
        names = model_store.names_by_direction(self.run_name)
        generators = {
            names[direction]: generator
            for direction, generator in self.model.translation_generators().items()
        }
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
            self.exported = export_generators(
                self.model.translation_generators(), self.export_dir, self.run_name, version=version
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
