"""Finding, loading and hot-swapping the SavedModels under a model base path, as TF Serving does.

``BASE/<model_name>/<version>/saved_model.pb``: every subfolder of the base path is a model, every
numeric subfolder of a model is a version, and the highest version that loads is served (TF Serving's
default "latest 1" version policy). ``refresh`` rescans; ``start_polling`` rescans every
``poll_seconds`` (TF Serving's ``--file_system_poll_wait_seconds``) so that versions are picked up
without a restart:

* a new highest version is loaded, then served; the one it replaces is unloaded;
* a served version whose folder disappears (a rollback) is unloaded once the next highest version is
  loaded and serving; until then it keeps answering, so no request fails meanwhile;
* a version that fails to load (a copy still in progress, a broken file) is retried on every later
  scan until it loads; the version served before stays in service meanwhile.

``status`` reports each version's state as TF Serving's model status API does: ``LOADING``,
``AVAILABLE``, ``UNLOADING``, and ``END`` for a version unloaded (error code ``OK``) or one that failed
to load (its error). Models are loaded once with ``tf.saved_model.load`` and shared by all requests; a
request that holds a ``ServedVersion`` keeps it usable even while another version replaces it.
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

    @property
    def channels(self):
        """int, the channels of the images ``serving_default`` takes (3 where it does not say)."""
        spec = self.input_specs("serving_default").get("images") if self.signatures else None
        last = None if spec is None or spec.shape.rank != 4 else spec.shape[-1]
        return 3 if last is None else int(last)

    def estimate_image_bytes(self, height, width):
        """Int or None: what translating one image whole takes, where the version knows it.

        None for a SavedModel (its generator, or the default one, is estimated by ``runs``).
        """
        del height, width
        return None

    @property
    def image_signatures(self):
        """bool, whether ``serving_default`` and ``translate_bytes`` are this package's.

        Then every image of a batch is translated on its own, so the server may split batches and
        decode the images itself.
        """
        return self.generator is not None


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


@dataclasses.dataclass
class _VersionState:
    """What ``status`` reports of one version: TF Serving's state, and the error of a failed load."""

    state: str
    error: str = ""


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
        self._states = {}  # name -> {version: _VersionState}
        self._reported = {}  # (name, version) -> the last load error logged
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def refresh(self):
        """Rescans the base path: serves each model's highest version that loads (see the module).

        Raises:
            OptionError: if the base path is not a folder.
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
            for name in set(self._served) - set(names):
                logger.info("Unloaded %s: its folder is gone", name)
                self._unload(name)

    def _set_state(self, name, version, state, error=""):
        with self._lock:
            self._states.setdefault(name, {})[version] = _VersionState(state, error)

    def _unload(self, name, replacement=None):
        """Serves ``replacement`` (or nothing) instead of ``name``'s current version, which ends."""
        with self._lock:
            current = self._served.pop(name, None)
            if replacement is not None:
                self._served[name] = replacement
            if current is not None:
                self._states.setdefault(name, {})[current.version] = _VersionState("END")

    def _refresh_model(self, name):
        model_dir = io.join(self.base_path, name)
        current = self._served.get(name)
        present = [
            version
            for version in self.source.versions(model_dir)
            if io.mtime_ns(self.source.marker(self.source.path(model_dir, version))) is not None
        ]
        for version in sorted(present, reverse=True):
            if current is not None and version == current.version:
                return  # the highest version that loads is the one served
            served = self._load(name, version, self.source.path(model_dir, version))
            if served is not None:
                if current is not None:
                    with self._lock:
                        self._states[name][current.version] = _VersionState("UNLOADING")
                self._unload(name, replacement=served)
                if current is not None:
                    logger.info("Unloaded %s version %d", name, current.version)
                logger.info("Serving %s version %d", name, version)
                return
        if current is not None:
            logger.info("Unloaded %s version %d: no version of it is left", name, current.version)
            self._unload(name)

    def _load(self, name, version, path):
        """A ``ServedVersion``, or None if it does not load (retried at the next scan)."""
        self._set_state(name, version, "LOADING")
        try:
            served = self.source.load(name, version, path)
        except Exception as error:  # a broken version must not take the server down
            message = first_line(error)
            self._set_state(name, version, "END", message)
            if self._reported.get((name, version)) != message:
                logger.error(
                    "Could not load %s version %d (retried at every scan): %s",
                    name,
                    version,
                    message,
                )
            else:
                logger.debug("Could not load %s version %d: %s", name, version, message)
            self._reported[(name, version)] = message
            return None
        self._reported.pop((name, version), None)
        self._set_state(name, version, "AVAILABLE")
        return served

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
            ``{"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": {...}}]}``,
            highest version first: every version seen since start, ``AVAILABLE`` for the served one,
            ``LOADING`` while one loads, ``END`` for one unloaded (error code ``OK``) or that failed to
            load (error code ``UNKNOWN`` and its error).

        Raises:
            ServableNotFoundError: if no version of that model (or that version) was ever seen.
        """
        with self._lock:
            entries = dict(self._states.get(name, {}))
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
                    "state": entry.state,
                    "status": {
                        "error_code": "UNKNOWN" if entry.error else "OK",
                        "error_message": entry.error,
                    },
                }
                for v, entry in sorted(entries.items(), reverse=True)
            ]
        }

    def metadata(self, name, version=None):
        """TF Serving's ``GetModelMetadataResponse`` (the signature defs) of a served version."""
        served = self.get(name, version)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(served.version)},
            "metadata": {"signature_def": served.signature_defs},
        }
