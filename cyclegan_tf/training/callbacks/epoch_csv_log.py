"""``EpochCsvLog``: one durable CSV row per epoch."""

import collections
import csv
import io as bytes_io

import keras
import numpy as np

from cyclegan_tf import io


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
