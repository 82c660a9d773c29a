"""Finding, loading and hot-swapping the SavedModels under a model base path, as TF Serving does.

``BASE/<model_name>/<version>/saved_model.pb``: every subfolder of the base path is a model, every
numeric subfolder of a model is a version, and the highest version is served (TF Serving's default
"latest 1" version policy). ``refresh`` rescans; ``start_polling`` rescans every
``poll_seconds`` (TF Serving's ``--file_system_poll_wait_seconds``) so new versions are picked up
without a restart. Models are loaded once with ``tf.saved_model.load`` and shared by all requests; a
request that holds a ``ServedVersion`` keeps it usable even while a newer version replaces it.
"""

import dataclasses
import logging
import threading

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from cyclegan_tf import io
from cyclegan_tf.errors import OptionError, first_line
from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model
from cyclegan_tf.model_store import SAVED_MODEL_FILE, existing_versions

logger = logging.getLogger(__name__)


class ServableNotFoundError(LookupError):
    """No served model or version matches a request (HTTP 404)."""


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    """One loaded SavedModel version.

    Attributes:
        name: str, the model name (its folder).
        version: int, the version (its subfolder).
        path: str, the version folder.
        signatures: mapping of signature name to the loaded concrete function.
        signature_defs: dict, the SignatureDefMap as TF Serving's metadata API prints it.
        loaded: the object ``tf.saved_model.load`` returned (kept alive for its variables).
        generator: the ``resnet_generator`` rebuilt from the SavedModel's weights, which can run
            tiled; None for a SavedModel not exported by this package.
    """

    name: str
    version: int
    path: str
    signatures: dict
    signature_defs: dict
    loaded: object = dataclasses.field(repr=False)
    generator: object = dataclasses.field(default=None, repr=False)

    def input_specs(self, signature_name):
        """``{input_name: tf.TensorSpec}`` of a signature."""
        return dict(self.signatures[signature_name].structured_input_signature[1])

    def output_specs(self, signature_name):
        """``{output_name: tf.TensorSpec}`` of a signature."""
        return dict(self.signatures[signature_name].structured_outputs)


def message_to_dict(message):
    """A proto as TF Serving's REST API prints it: proto field names, default values included."""
    try:
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf < 5.26 names the option differently
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, including_default_value_fields=True
        )


def read_signature_defs(version_dir):
    """The ``serve`` MetaGraph's SignatureDefMap of a SavedModel, as TF Serving's metadata prints it.

    Args:
        version_dir: str, a SavedModel folder.

    Returns:
        ``{"signature_def": {name: {"inputs": ..., "outputs": ..., "method_name": ...}}}``.
    """
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(io.read_bytes(io.join(version_dir, SAVED_MODEL_FILE)))
    meta_graphs = [
        graph for graph in saved_model.meta_graphs if "serve" in graph.meta_info_def.tags
    ]
    meta_graph = (meta_graphs or list(saved_model.meta_graphs))[0]
    return {
        "signature_def": {
            name: message_to_dict(signature)
            for name, signature in sorted(meta_graph.signature_def.items())
        }
    }


def load_version(name, version, path):
    """Loads one SavedModel version folder as a ``ServedVersion``."""
    loaded = tf.saved_model.load(path)
    return ServedVersion(
        name=name,
        version=version,
        path=path,
        signatures=dict(loaded.signatures),
        signature_defs=read_signature_defs(path),
        loaded=loaded,
        generator=generator_from_saved_model(loaded),
    )


class SavedModelSource:
    """``<version>/saved_model.pb`` folders, loaded with ``tf.saved_model.load``."""

    def versions(self, model_dir):
        """Sorted version numbers present in ``model_dir``."""
        return existing_versions(model_dir)

    def path(self, model_dir, version):
        """The version's folder."""
        return io.join(model_dir, str(version))

    def marker(self, path):
        """The file whose modification time marks the version complete and changed."""
        return io.join(path, SAVED_MODEL_FILE)

    def load(self, name, version, path):
        """A ``registry.ServedVersion``."""
        return load_version(name, version, path)


class ModelRegistry:
    """The models under a base path, each served at its highest loadable version.

    Args:
        base_path: str, the folder holding one subfolder per model.
        poll_seconds: float, seconds between rescans once ``start_polling`` is called; 0 or less scans
            only at start, like TF Serving's ``--file_system_poll_wait_seconds=0``. Defaults to 1.
        source: what a version is: None for SavedModels, or an ``exported.ExportSource`` to serve
            ``<version>.onnx`` (``.openvino``, ``.tflite``) exports through their runtime.

    Example:
        >>> registry = ModelRegistry("saved_models")
        >>> registry.refresh()
        >>> registry.get("apple2orange").version
        1
    """

    def __init__(self, base_path, poll_seconds=1.0, source=None):
        self.base_path = base_path
        self.source = source or SavedModelSource()
        self.poll_seconds = float(poll_seconds)
        self._served = {}
        self._failed = {}  # (name, version) -> (saved_model.pb mtime, error message)
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def refresh(self):
        """Rescans the base path: loads new highest versions, drops models whose folder is gone.

        A version that fails to load is reported in ``status`` and retried only once its
        ``saved_model.pb`` (or exported file) changes; the previously served version stays in service
        meanwhile.

        Raises:
            ValueError: if the base path is not a folder.
        """
        if not io.isdir(self.base_path):
            raise OptionError("base_path", f"no such folder: {self.base_path}")
        with self._refresh_lock:
            names = [
                name
                for name in io.listdir(self.base_path)
                if not name.startswith(".") and io.isdir(io.join(self.base_path, name))
            ]
            for name in names:
                self._refresh_model(name)
            with self._lock:
                for name in set(self._served) - set(names):
                    logger.info("Unloaded %s: its folder is gone", name)
                    del self._served[name]

    def _refresh_model(self, name):
        model_dir = io.join(self.base_path, name)
        current = self._served.get(name)
        for version in reversed(self.source.versions(model_dir)):
            if current is not None and version <= current.version:
                return
            path = self.source.path(model_dir, version)
            mtime = io.mtime_ns(self.source.marker(path))
            if mtime is None:
                continue  # not complete (yet)
            failure = self._failed.get((name, version))
            if failure is not None and failure[0] == mtime:
                continue
            try:
                served = self.source.load(name, version, path)
            except Exception as error:  # a broken version must not take the server down
                message = first_line(error)
                logger.error("Could not load %s version %d: %s", name, version, message)
                self._failed[(name, version)] = (mtime, message)
                continue
            self._failed.pop((name, version), None)
            with self._lock:
                self._served[name] = served
            logger.info("Serving %s version %d from %s", name, version, path)
            return

    def start_polling(self):
        """Rescans every ``poll_seconds`` in a daemon thread (no-op when ``poll_seconds <= 0``)."""
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._thread.start()

    def stop_polling(self):
        """Stops the polling thread, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # keep polling; the folder may come back
                logger.exception("Rescanning %s failed", self.base_path)

    def model_names(self):
        """Sorted names of the models being served."""
        with self._lock:
            return sorted(self._served)

    def get(self, name, version=None):
        """The served version of ``name``.

        Args:
            name: str, the model name.
            version: int or None, a specific version; None for the served (highest) one.

        Raises:
            ServableNotFoundError: if the model or that version is not served.
        """
        with self._lock:
            served = self._served.get(name)
        if served is None or (version is not None and served.version != version):
            spec = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServableNotFoundError(f"Servable not found for request: {spec}")
        return served

    def status(self, name, version=None):
        """TF Serving's ``GetModelStatusResponse`` for a model, or one version of it.

        Returns:
            ``{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {...}}]}``;
            a version that failed to load is listed with state ``END`` and its error.

        Raises:
            ServableNotFoundError: if nothing of that model (or version) is served or failed.
        """
        with self._lock:
            served = self._served.get(name)
            failed = {v: message for (n, v), (_, message) in self._failed.items() if n == name}
        entries = {}
        if served is not None:
            entries[served.version] = ("AVAILABLE", "OK", "")
        for failed_version, message in failed.items():
            if served is None or failed_version > served.version:
                entries[failed_version] = ("END", "UNKNOWN", message)
        if version is not None:
            entries = {v: entry for v, entry in entries.items() if v == version}
        if not entries:
            if version is None:
                raise ServableNotFoundError(f"Could not find any versions of model {name}")
            raise ServableNotFoundError(f"Could not find version {version} of model {name}")
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": state,
                    "status": {"error_code": code, "error_message": message},
                }
                for v, (state, code, message) in sorted(entries.items(), reverse=True)
            ]
        }

    def metadata(self, name, version=None):
        """TF Serving's ``GetModelMetadataResponse`` (the signature defs) of a served version."""
        served = self.get(name, version)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(served.version)},
            "metadata": {"signature_def": served.signature_defs},
        }
