"""Model runs within a memory budget: whole images through the signature, larger ones tiled.

Every phase of a request that holds memory reserves it from one ``MemoryBudget`` first: reading and
parsing the JSON body (``json_bytes``), each model run, and writing the JSON answer (``render_bytes``).
A run reserves what it is estimated to need (``inference.estimate_whole_image_bytes`` for a whole-image
run, less the runtime counted once per process: the resident peak plus the largest buffer a convolution
may ask for on any CPU) and a run slot. An image whose whole-image run would take more than a tiled
run's share of the budget is translated by the tiled engine instead, in that share, with the generator
rebuilt from the SavedModel's weights (``inference.generator_from_saved_model``): the same result to
1/255, in bounded memory.

A request's images run one at a time (``translate_bytes``), or in chunks of at most
``CHUNK_PIXELS`` (``serving_default``), each with its own reservation, so that one large batch cannot
hold a run slot for long: waiting requests take turns in arrival order. A request that finds no room
waits up to ``wait_seconds`` and then gets 503; one that runs past its ``Deadline`` stops at the next
image, chunk or band and gets 504.
"""

import collections
import contextlib
import threading
import time

import numpy as np
import tensorflow as tf

from cyclegan_tf.data.decode import decode_image
from cyclegan_tf.inference.keras_translator import KerasTranslator
from cyclegan_tf.inference.tiled import (
    check_precision,
    estimate_runtime_bytes,
)
from cyclegan_tf.serving import limits
from cyclegan_tf.serving.predict import RequestError

DEFAULT_MAX_MEMORY_GB = limits.MAX_MEMORY_GB
DEFAULT_MAX_CONCURRENT_RUNS = limits.MAX_CONCURRENT_RUNS
DEFAULT_WAIT_SECONDS = limits.WAIT_SECONDS
_SIGNATURE_INPUTS = {"serving_default": "images", "translate_bytes": "image_bytes"}
# At most this many padded pixels per whole-image run of a batch (a 1024 x 1024 image).
CHUNK_PIXELS = 2**20
# Resident bytes of parsing JSON, per body byte. Measured with json.loads in CPython 3.11: 2.5 for
# numbers, 5 to 8 for nested pixel lists, 24 for a list of empty objects or lists and 34.5 for a list
# of [[]] (the most objects per byte); the body itself comes on top.
_JSON_BYTES_PER_BODY_BYTE = 40
# Resident bytes of writing a float as JSON: the Python float and list slot of ``tolist``, its text,
# the joined string and the encoded body (98 measured for [1, 1000, 1000, 3] float32).
_RENDER_BYTES_PER_VALUE = 128


def json_bytes(body_bytes):
    """int, what reading and parsing a JSON body of ``body_bytes`` may hold (the worst case)."""
    return (1 + _JSON_BYTES_PER_BODY_BYTE) * int(body_bytes)


def render_bytes(outputs):
    """int, what writing ``{name: NumPy array}`` as TF Serving's JSON may hold."""
    total = 0
    for array in outputs.values():
        if array.dtype == object:  # encoded images: base64 text, its string and the body, twice
            total += (
                sum(4 * len(item) for item in array.flat) + _RENDER_BYTES_PER_VALUE * array.size
            )
        else:
            total += _RENDER_BYTES_PER_VALUE * array.size
    return total


class RequestCancelled(Exception):
    """The client went away: the request's work stops and nothing is answered."""


class Deadline:
    """When a request's work must stop: at its deadline (504), or as soon as its client is gone.

    Args:
        seconds: float or None, the time the request may take from now; None for no limit.
    """

    def __init__(self, seconds=None):
        self.seconds = seconds
        self.expires = None if seconds is None else time.monotonic() + float(seconds)
        self._cancelled = threading.Event()

    def cancel(self):
        """Marks the client as gone (called from the event loop)."""
        self._cancelled.set()

    @property
    def cancelled(self):
        """bool, whether the client is gone."""
        return self._cancelled.is_set()

    def remaining(self):
        """float, seconds left (infinite without a deadline)."""
        return float("inf") if self.expires is None else self.expires - time.monotonic()

    def check(self, *unused_progress):
        """Raises ``RequestCancelled`` or ``RequestError(504)`` once the work must stop.

        Takes and ignores a progress fraction, so that it can be a tiled run's progress callback.
        """
        if self.cancelled:
            raise RequestCancelled()
        if self.remaining() <= 0:
            raise RequestError(
                504,
                f"the request took longer than {self.seconds:g} s (--rest-api-timeout-in-ms) and "
                "was stopped; send smaller or fewer images",
            )


class _Reservation:
    """Bytes (and maybe a run slot) held in a ``MemoryBudget`` until ``release``."""

    def __init__(self, budget, nbytes, run):
        self._budget = budget
        self.nbytes = nbytes
        self.run = run
        self._released = False

    def release(self):
        """Gives the bytes and the slot back (again: nothing)."""
        with self._budget._condition:
            if self._released:
                return
            self._released = True
            self._budget.used_bytes -= self.nbytes
            self._budget.runs -= int(self.run)
            self._budget._condition.notify_all()


class MemoryBudget:
    """Bytes and run slots shared by concurrent requests, granted in arrival order.

    Args:
        max_bytes: int, what the requests in flight may hold together.
        max_runs: int, how many model runs may be in flight.
        wait_seconds: float, how long a reservation waits for room before it is refused with 503.
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
        self._waiting = collections.deque()

    def acquire(self, nbytes, run=True, deadline=None):
        """Waits for ``nbytes`` (and a run slot if ``run``); returns a reservation to ``release``.

        Waiters are served first come, first served: a batch that releases its slot between two chunks
        gets it back only after the requests that were waiting already.

        Raises:
            RequestError: 400 if ``nbytes`` exceeds the whole budget; 503 if no room came within
                ``wait_seconds``; 504 if ``deadline`` passed first.
            RequestCancelled: if the deadline's client went away.
        """
        nbytes = int(nbytes)
        if nbytes > self.max_bytes:
            raise RequestError(
                400,
                f"this request needs about {nbytes / 2**30:.1f} GiB, more than this server's budget "
                f"of {self.max_bytes / 2**30:.1f} GiB (--max-memory-gb); send smaller images, or "
                "translate them with cyclegan-translate",
            )
        deadline = deadline or Deadline()
        give_up = time.monotonic() + self.wait_seconds
        ticket = object()
        with self._condition:
            self._waiting.append(ticket)
            try:
                while not self._fits(ticket, nbytes, run):
                    deadline.check()
                    remaining = min(give_up - time.monotonic(), deadline.remaining())
                    if remaining <= 0:
                        deadline.check()
                        raise RequestError(
                            503,
                            f"the server is busy: {self.runs} model run(s) and "
                            f"{self.used_bytes / 2**30:.1f} of {self.max_bytes / 2**30:.1f} GiB in "
                            "use (--max-memory-gb, --max-concurrent-runs); retry in a moment",
                        )
                    # Wake up now and then: a client that goes away does not notify the condition.
                    self._condition.wait(min(remaining, 0.5))
            finally:
                self._waiting.remove(ticket)
                self._condition.notify_all()
            self.used_bytes += nbytes
            self.runs += int(run)
        return _Reservation(self, nbytes, run)

    def _fits(self, ticket, nbytes, run):
        return (
            self._waiting[0] is ticket
            and self.used_bytes + nbytes <= self.max_bytes
            and (not run or self.runs < self.max_runs)
        )

    @contextlib.contextmanager
    def reserve(self, nbytes, run=True, deadline=None):
        """``acquire`` for the duration of a ``with`` block."""
        reservation = self.acquire(nbytes, run, deadline)
        try:
            yield reservation
        finally:
            reservation.release()


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
        self._translators = {}  # model name -> (generator, KerasTranslator): the latest used
        self._lock = threading.Lock()

    def whole_run_bytes(self, served, sizes):
        """Estimated bytes of running ``sizes`` (``(height, width)`` each) whole, runtime excluded.

        An export is estimated by its runtime (``runtimes.estimate_export_bytes``). A SavedModel
        whose generator could not be rebuilt (not exported by this package) has no known memory
        model: it is given a tiled run's share of the budget.
        """
        runtime = estimate_runtime_bytes()
        if served.generator is not None:
            estimate = self._translator(served).whole_image_bytes
        elif served.estimate_image_bytes(1, 1) is not None:  # an export, in its own runtime
            estimate = served.estimate_image_bytes
        else:
            return self.tiled_run_bytes
        return sum(estimate(height, width) - runtime for height, width in sizes)

    def run(self, served, signature_name, arrays, sizes, deadline=None):
        """Runs one request's inputs; returns ``{output name: NumPy array}``.

        Args:
            served: a ``registry.ServedVersion``.
            signature_name: str.
            arrays: dict of input name to NumPy array (checked against the signature).
            sizes: list of ``(height, width)``, the images in the request.
            deadline: a ``Deadline`` or None.
        """
        deadline = deadline or Deadline()
        if served.image_signatures and signature_name == "translate_bytes":
            images = arrays["image_bytes"]
            return {"image_bytes": self._translate_bytes(served, images, sizes, deadline)}
        if served.image_signatures and signature_name == "serving_default":
            return {"images": self._translate_pixels(served, arrays["images"], deadline)}
        # A signature of a SavedModel not exported by this package: one run, as it is.
        with self.budget.reserve(self.whole_run_bytes(served, sizes), deadline=deadline):
            return self._call(served, signature_name, arrays)

    def _call(self, served, signature_name, arrays):
        specs = served.input_specs(signature_name)
        inputs = {name: tf.constant(array, specs[name].dtype) for name, array in arrays.items()}
        try:
            outputs = served.signatures[signature_name](**inputs)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise RequestError(400, _graph_error_message(error)) from None
        return {name: np.asarray(tensor) for name, tensor in outputs.items()}

    def _tiles(self, served, whole_bytes):
        tileable = served.generator is not None and self._translator(served).can_tile
        return tileable and (self.precision != "float32" or whole_bytes > self.tiled_run_bytes)

    def _translate_pixels(self, served, images, deadline):
        """``[batch, H, W, C]`` pixels, in chunks of at most ``CHUNK_PIXELS`` or one at a time tiled."""
        if not len(images):
            return self._call(served, "serving_default", {"images": images})["images"]
        height, width = images.shape[1:3]
        one = self.whole_run_bytes(served, [(height, width)])
        outputs = []
        if self._tiles(served, one):
            for image in images:
                outputs.append(self._run_tiled(served, image, deadline)[None])
            return np.concatenate(outputs)
        padded = max(height + 3, 8) * max(width + 3, 8)
        chunk = max(1, min(CHUNK_PIXELS // padded, self.tiled_run_bytes // max(one, 1)))
        for start in range(0, len(images), chunk):
            deadline.check()
            part = images[start : start + chunk]
            with self.budget.reserve(one * len(part), deadline=deadline):
                outputs.append(self._call(served, "serving_default", {"images": part})["images"])
        return np.concatenate(outputs)

    def _translate_bytes(self, served, image_bytes, sizes, deadline):
        """Encoded images, decoded as viewers show them, translated one at a time, as PNGs."""
        encoded = []
        for index, (data, size) in enumerate(zip(image_bytes, sizes)):
            deadline.check()
            whole = self.whole_run_bytes(served, [size])
            if self._tiles(served, whole):
                with self.budget.reserve(self.tiled_run_bytes, deadline=deadline):
                    image = _decode(data, index, served.channels)
                    pixels = self._translator(served).translate_tiled(image, deadline.check)
            else:
                with self.budget.reserve(whole, deadline=deadline):
                    image = _decode(data, index, served.channels)
                    pixels = self._call(served, "serving_default", {"images": image[None]})
                    pixels = pixels["images"][0]
            pixels = np.round(np.clip(pixels, 0, 255)).astype(np.uint8)
            encoded.append(tf.io.encode_png(pixels).numpy())
        return np.array(encoded, dtype=object)

    def _run_tiled(self, served, image, deadline):
        with self.budget.reserve(self.tiled_run_bytes, deadline=deadline):
            return self._translator(served).translate_tiled(image, deadline.check)

    def _translator(self, served):
        """The ``KerasTranslator`` of a served generator (one per model name: its latest version)."""
        generator = served.generator
        with self._lock:
            cached = self._translators.get(served.name)
            if cached is None or cached[0] is not generator:
                runtime = estimate_runtime_bytes()
                budget_gb = (runtime + self.tiled_run_bytes) / 2**30
                cached = (generator, KerasTranslator(generator, budget_gb, self.precision))
                self._translators[served.name] = cached
            return cached[1]


def _decode(data, index, channels=3):
    try:
        return decode_image(data, channels).numpy()
    except tf.errors.InvalidArgumentError as error:
        raise RequestError(
            400, f"image_bytes[{index}] could not be decoded: {_graph_error_message(error)}"
        ) from None


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
