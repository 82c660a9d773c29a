"""``SaveNetworks``: the networks of a run as ``.keras`` files."""

import keras

from cyclegan_tf import io, model_store


class SaveNetworks(keras.callbacks.Callback):
    """Writes the model's networks as ``.keras`` files, named as its objective declares (``NETWORKS``).

    A CycleGAN's are ``netG_A2B``, ``netG_B2A``, ``netD_A`` and ``netD_B``; a CUT's ``netG``, ``netD``
    and ``netF``. Each file is a standalone model that ``keras.models.load_model`` opens (after
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
        """Writes every network's file now."""
        io.makedirs(self.directory)
        networks = self.model.networks()
        for attribute, filename in self.model.NETWORKS.items():
            model_store.save_model(networks[attribute], io.join(self.directory, filename))
