"""Model runs within a memory budget: whole images through the signature, larger ones tiled.

Each run reserves the memory it is estimated to need (``inference.estimate_whole_image_bytes`` for a
whole-image run, less the runtime counted once per process) from a ``MemoryBudget`` shared by all
requests. An image whose whole-image run would take more than a tiled run's share of the budget is
translated by the tiled engine instead, in that share, with the generator rebuilt from the SavedModel's
weights (``inference.generator_from_saved_model``): the same result to 1/255, in bounded memory. A
request that finds no room waits up to ``wait_seconds`` and then gets 503.
"""

import contextlib
import threading
import time

import numpy as np
import tensorflow as tf

from cyclegan_tf.inference.keras_translator import KerasTranslator
from cyclegan_tf.inference.tiled import (
    check_precision,
    estimate_runtime_bytes,
)
from cyclegan_tf.serving.predict import RequestError

DEFAULT_MAX_MEMORY_GB = 6.0
DEFAULT_MAX_CONCURRENT_RUNS = 2
DEFAULT_WAIT_SECONDS = 10.0
_SIGNATURE_INPUTS = {"serving_default": "images", "translate_bytes": "image_bytes"}


class MemoryBudget:
    """Bytes and run slots shared by concurrent model runs.

    Args:
        max_bytes: int, what the runs in flight may hold together.
        max_runs: int, how many runs may be in flight.
        wait_seconds: float, how long a run waits for room before it is refused with 503.
    """

    def __init__(self, max_bytes, max_runs, wait_seconds=DEFAULT_WAIT_SECONDS):
        for name, value in (("max_memory_bytes", max_bytes), ("max_concurrent_runs", max_runs)):
            if int(value) <= 0:
                raise ValueError(f"{name} must be positive. Received: {name}={value}")
        self.max_bytes = int(max_bytes)
        self.max_runs = int(max_runs)
        self.wait_seconds = float(wait_seconds)
        self.used_bytes = 0
        self.runs = 0
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes):
        """Holds ``nbytes`` and a run slot while the block runs.

        Raises:
            RequestError: 400 if ``nbytes`` exceeds the whole budget; 503 if no room came within
                ``wait_seconds``.
        """
        if nbytes > self.max_bytes:
            raise RequestError(
                400,
                f"this request needs about {nbytes / 2**30:.1f} GiB for the model run, more than "
                f"this server's budget of {self.max_bytes / 2**30:.1f} GiB (--max-memory-gb); send "
                "smaller images, or translate it with cyclegan-translate",
            )
        deadline = time.monotonic() + self.wait_seconds
        with self._condition:
            while self.used_bytes + nbytes > self.max_bytes or self.runs >= self.max_runs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestError(
                        503,
                        f"the server is busy: {self.runs} model run(s) hold "
                        f"{self.used_bytes / 2**30:.1f} of {self.max_bytes / 2**30:.1f} GiB "
                        "(--max-memory-gb, --max-concurrent-runs); retry in a moment",
                    )
                self._condition.wait(remaining)
            self.used_bytes += nbytes
            self.runs += 1
        try:
            yield
        finally:
            with self._condition:
                self.used_bytes -= nbytes
                self.runs -= 1
                self._condition.notify_all()


class ModelRuns:
    """Runs signatures within a ``MemoryBudget``, tiling images too large to run whole.

    Args:
        budget: a ``MemoryBudget``.
        precision: str, ``"float32"``, or ``"bf16"`` to run every image of our two signatures on the
            tiled engine with bfloat16 convolutions (float32 in and out; other signatures and
            SavedModels not exported by this package run their float32 signature).
    """

    def __init__(self, budget, precision="float32"):
        check_precision(precision)
        self.budget = budget
        self.precision = precision
        # A tiled run may take this much, so that max_runs of them fit the budget together.
        self.tiled_run_bytes = budget.max_bytes // budget.max_runs
        self._translators = {}
        self._lock = threading.Lock()

    def whole_run_bytes(self, served, sizes):
        """Estimated bytes of running ``sizes`` (``(height, width)`` each) whole, runtime excluded.

        A SavedModel whose generator could not be rebuilt (not exported by this package) has no
        known memory model: it is given a tiled run's share of the budget.
        """
        if served.generator is None:
            return self.tiled_run_bytes
        runtime = estimate_runtime_bytes()
        estimate = self._translator(served.generator).whole_image_bytes
        return sum(estimate(height, width) - runtime for height, width in sizes)

    def run(self, served, signature_name, arrays, sizes):
        """Runs one request's inputs; returns ``{output name: NumPy array}``.

        Args:
            served: a ``registry.ServedVersion``.
            signature_name: str.
            arrays: dict of input name to NumPy array (checked against the signature).
            sizes: list of ``(height, width)``, the images in the request.
        """
        whole_bytes = self.whole_run_bytes(served, sizes)
        tileable = served.generator is not None and signature_name in _SIGNATURE_INPUTS
        if tileable and (self.precision != "float32" or whole_bytes > self.tiled_run_bytes):
            with self.budget.reserve(self.tiled_run_bytes):
                return self._run_tiled(served, signature_name, arrays)
        specs = served.input_specs(signature_name)
        inputs = {name: tf.constant(array, specs[name].dtype) for name, array in arrays.items()}
        with self.budget.reserve(whole_bytes):
            try:
                outputs = served.signatures[signature_name](**inputs)
            except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
                raise RequestError(400, _graph_error_message(error)) from None
            return {name: tensor.numpy() for name, tensor in outputs.items()}

    def _translator(self, generator):
        with self._lock:
            translator = self._translators.get(id(generator))
            if translator is None or translator.generator is not generator:
                runtime = estimate_runtime_bytes()
                budget_gb = (runtime + self.tiled_run_bytes) / 2**30
                translator = KerasTranslator(generator, budget_gb, self.precision)
                self._translators[id(generator)] = translator
            return translator

    def _run_tiled(self, served, signature_name, arrays):
        translator = self._translator(served.generator)
        if signature_name == "serving_default":
            images = arrays["images"]
            return {"images": np.stack([translator.translate_tiled(image) for image in images])}
        encoded = []
        for index, data in enumerate(arrays["image_bytes"]):
            try:
                image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
            except tf.errors.InvalidArgumentError as error:
                raise RequestError(
                    400, f"image_bytes[{index}] could not be decoded: {_graph_error_message(error)}"
                ) from None
            pixels = np.round(translator.translate_tiled(image)).astype(np.uint8)
            encoded.append(tf.io.encode_png(pixels).numpy())
        return {"image_bytes": np.array(encoded, dtype=object)}


def _graph_error_message(error):
    """The line of a TensorFlow error that says what went wrong (not ``Graph execution error:``)."""
    message = getattr(error, "message", None) or str(error)
    lines = [
        line.strip()
        for line in message.splitlines()
        if line.strip()
        and not line.strip().startswith(("Graph execution error", "Detected at node", "[["))
    ]
    if not lines:
        return repr(error)
    line = lines[0]
    return line.split("}}", 1)[-1].strip() if line.startswith("{{") else line
