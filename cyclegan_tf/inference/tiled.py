"""Translating photos of any size in bounded memory, with exact instance-norm statistics.

Run whole, the ResNet generator holds several full-resolution 64-channel maps at once: its peak memory
grows with the pixels (about 11 GB for a 12-MP photo in graph mode). Cutting the photo into tiles that
are normalised on their own statistics shows seams. ``TiledGenerator`` computes what the whole-image
model computes, band of rows by band of rows:

* Between two instance norms there is exactly one convolution. A *pass* computes a convolution's
  output band by band (full-width rows plus the halo its kernel needs, padded by reflection or zeros at
  the image's true borders only) and folds each band's per-channel mean and squared deviations into
  float64 totals (Chan et al.'s pairwise update), so the statistics are those of the whole map.
* A convolution's input is made from the previous map on the fly: ``(x - mean) / sqrt(var + eps)``,
  ReLU, and the residual addition, all inside the same compiled band function.
* Full-resolution maps are never stored. Two bottleneck maps are (a quarter of the resolution,
  ``4 * ngf`` channels, 64 bytes per input pixel each in float32): the residual stream and the current
  convolution's output, which a residual block overwrites in place (see ``band_store``). What does not
  fit the budget goes to a temporary file.
* The other passes recompute what they read: the stem for the downsamplings, the first upsampling for
  the second one and the head. Where the budget has room, the outputs of the first downsampling and of
  the first upsampling are kept in RAM instead (128 bytes per pixel each). Recomputing everything costs
  about 12 % more arithmetic than the whole-image model, with both caches about 4 %.

CUT's anti-aliased generators (``ResnetGenerator(antialias=True)``) add fixed blurs: a blur-pool after a
downsampling's ReLU and a blur-upsample before an upsampling's convolution. Each is one more node of the
chain, computed band by band like a convolution (one filter per channel, no norm after it): a
convolution reads the blur of its source, and the bottleneck map stored is the blur-pool's output.

Every band function is a ``tf.function`` with an input signature of unknown sizes, so it is traced once
per kind of convolution, not per band or per photo size.
"""

import dataclasses
import functools
import logging
import tempfile
import threading

import numpy as np
import tensorflow as tf

from cyclegan_tf.errors import OptionError
from cyclegan_tf.inference.band_store import BandStore, as_tensor
from cyclegan_tf.inference.padding import pad_to_multiple
from cyclegan_tf.models.generators import as_resnet_generator
from cyclegan_tf.models.layers import blur_down_kernel, blur_upsample_padded
from cyclegan_tf.pixels import GENERATOR_DOWNSAMPLINGS

logger = logging.getLogger(__name__)

DEFAULT_MAX_MEMORY_BYTES = 4 * 2**30
# The share of the budget used by the bands in flight; the rest holds the stored maps.
_WORKING_SHARE = 0.25
_MAX_WORKING_BYTES = 2**30

_PRECISIONS = {
    # name: (compute dtype of the convolutions, dtype of the stored maps)
    "float32": (tf.float32, tf.float32),
    "bf16": (tf.bfloat16, tf.bfloat16),
}
PRECISIONS = tuple(_PRECISIONS)


def check_precision(precision):
    """Raises ``OptionError`` unless ``precision`` is one of ``PRECISIONS`` (the inference precisions)."""
    if precision not in PRECISIONS:
        raise OptionError(
            "precision", f"must be one of {list(PRECISIONS)}. Received: {precision!r}"
        )
    return precision


# bfloat16 maps cross between NumPy and TensorFlow as their bits (DLPack has no bfloat16).
_HOST_DTYPES = {tf.float32: tf.float32, tf.bfloat16: tf.uint16}
_PAD_MODES = {"reflect": "REFLECT", "zero": "CONSTANT", "symmetric": "SYMMETRIC"}


@dataclasses.dataclass(frozen=True)
class _ConvSpec:
    """The geometry of one convolution and of the padding in front of it.

    Attributes:
        kernel_size: int, square kernel.
        stride: int, 1 or 2 (always 2 for a transposed convolution).
        pad: int, pixels padded on every side before the convolution.
        pad_mode: str, ``"reflect"`` or ``"zero"``.
        transpose: bool, a 3x3 stride-2 ``"valid"`` transposed convolution whose first output row and
            column are cropped (PyTorch's ``padding=1, output_padding=1``).
        blur: str or None, a fixed per-channel blur instead of a learned convolution: ``"down"``
            (``BlurPool2D``: 3x3, stride 2, reflection padding 1) or ``"up"`` (``BlurUpsample2D``: each
            output row a 1:3 blend of the two nearest input rows, edge rows repeated).
    """

    kernel_size: int
    stride: int = 1
    pad: int = 0
    pad_mode: str = "reflect"
    transpose: bool = False
    blur: str | None = None

    def output_size(self, size):
        """int, the output height (or width) for an input of ``size``."""
        if self.transpose or self.blur == "up":
            return 2 * size
        return (size + 2 * self.pad - self.kernel_size) // self.stride + 1

    def source_rows(self, start, stop, source_height):
        """The input rows that output rows ``[start, stop)`` need.

        Returns:
            ``(lo, hi, pad_top, pad_bottom, keep_start)``: the input rows ``[lo, hi)`` inside the
            image, the rows to pad above and below them (non-zero at the image's borders only), and
            the first output row to keep of what the convolution of that band gives.
        """
        if self.transpose:
            # Input row i reaches full output rows 2i .. 2i + 2; full row r is cropped row r - 1.
            lo, hi = start // 2, min(source_height, stop // 2 + 1)
            return lo, hi, 0, 0, start + 1 - 2 * lo
        if self.blur == "up":
            # Output rows 2m and 2m + 1 blend input rows m - 1, m and m + 1 (edges repeated); the
            # band of input rows [first, last) gives output rows from 2 * (first + 1) on.
            first, last = start // 2 - 1, (stop - 1) // 2 + 2
            lo, hi = max(first, 0), min(last, source_height)
            return lo, hi, lo - first, last - hi, start - 2 * (first + 1)
        first = start * self.stride - self.pad
        last = (stop - 1) * self.stride - self.pad + self.kernel_size
        lo, hi = max(first, 0), min(last, source_height)
        return lo, hi, lo - first, last - hi, 0


@dataclasses.dataclass
class _Conv:
    """A convolution of the generator: its geometry, its Keras layer, the norm layer after it.

    A fixed blur (``spec.blur``) has no layer: ``channels`` gives its width.
    """

    spec: _ConvSpec
    layer: object
    norm: object = None  # None: no norm follows (the head, a blur, a generator without norms)
    downsample: bool = False  # a blur-pool follows the norm and ReLU (anti-aliased sampling)
    upsample: bool = False  # a blur-upsample comes before the convolution
    channels: int | None = None
    running_statistics: bool = False  # the norm is a batch norm: fixed statistics in inference

    def statistics(self):
        """A fresh ``_Stats`` for the norm after this convolution, or None where there is none.

        An instance norm's statistics are the map's own, accumulated band by band; a batch norm's
        (in inference) are its running statistics, known before the map is computed.
        """
        norm = self.norm
        if norm is None:
            return None
        gamma = None if norm.gamma is None else np.asarray(norm.gamma, np.float64)
        beta = None if norm.beta is None else np.asarray(norm.beta, np.float64)
        stats = _Stats(self.filters, float(norm.epsilon), gamma, beta)
        if self.running_statistics:
            stats.fix(np.asarray(norm.moving_mean), np.asarray(norm.moving_variance))
        return stats

    @property
    def filters(self):
        if self.layer is None:
            return self.channels
        return int(self.layer.kernel.shape[2 if self.spec.transpose else 3])

    @property
    def in_channels(self):
        if self.layer is None:
            return self.channels
        return int(self.layer.kernel.shape[3 if self.spec.transpose else 2])

    def weights(self, compute_dtype):
        """``(kernel, bias)`` in ``compute_dtype``: the layer's, or a blur's fixed filter and zeros."""
        if self.spec.blur == "down":
            kernel = tf.constant(blur_down_kernel(self.channels))
        elif self.spec.blur == "up":
            kernel = tf.zeros([self.spec.kernel_size] * 2 + [0, 0])  # computed by formula
        else:
            kernel, bias = self.layer.kernel, self.layer.bias
            if bias is None:  # a convolution before a batch norm (or none) has no bias
                bias = tf.zeros([self.filters])
            return tf.cast(kernel, compute_dtype), tf.cast(bias, compute_dtype)
        return tf.cast(kernel, compute_dtype), tf.zeros([self.channels], compute_dtype)


def _blur(kind, channels):
    """The ``_Conv`` of a fixed blur over ``channels`` channels (``"down"`` or ``"up"``)."""
    if kind == "down":
        spec = _ConvSpec(3, stride=2, pad=1, pad_mode="reflect", blur="down")
    else:
        spec = _ConvSpec(4, pad=1, pad_mode="symmetric", blur="up")
    return _Conv(spec, None, channels=channels)


class _Stats:
    """Per-channel mean and sum of squared deviations of a map, accumulated band by band in float64.

    Or, for a batch norm, fixed running statistics (``fix``): nothing is accumulated.

    Args:
        channels: int.
        epsilon: float, the epsilon of the norm that uses these statistics.
        gamma: float64 array or None, the norm's learned scale (None: 1).
        beta: float64 array or None, its learned shift (None: 0).
    """

    def __init__(self, channels, epsilon, gamma=None, beta=None):
        self.epsilon = epsilon
        self.count = 0
        self.mean = np.zeros(channels, np.float64)
        self.m2 = np.zeros(channels, np.float64)
        self.gamma = np.ones(channels) if gamma is None else gamma
        self.beta = np.zeros(channels) if beta is None else beta
        self.accumulates = True

    def fix(self, mean, variance):
        """Uses running statistics (a batch norm in inference) instead of the map's own."""
        self.mean = np.asarray(mean, np.float64)
        self.count = 1
        self.m2 = np.asarray(variance, np.float64)
        self.accumulates = False

    def add(self, count, mean, m2):
        """Folds in a band of ``count`` values per channel with its own mean and squared deviations."""
        total = self.count + count
        delta = np.asarray(mean, np.float64) - self.mean
        self.mean += delta * (count / total)
        self.m2 += np.asarray(m2, np.float64) + delta**2 * (self.count * count / total)
        self.count = total

    def normalizer(self):
        """``(mean, gamma / sqrt(variance + epsilon), beta)`` as float32 (the population variance)."""
        scale = self.gamma / np.sqrt(self.m2 / self.count + self.epsilon)
        return self.mean.astype(np.float32), scale.astype(np.float32), self.beta.astype(np.float32)


class _ImageRows:
    """The input image padded to the generator's size contract, read as bands of rows.

    The padding of ``inference.pad_to_multiple`` (reflection to a multiple of 4, at least 8) is applied
    per band by indexing, so no padded copy of the image is made.

    Args:
        image: array ``[H, W, C]``, values in [-1, 1] or, with ``pixels``, in [0, 255].
        pixels: bool, map [0, 255] to [-1, 1] as ``inference.to_model_range`` does.
    """

    dtype = tf.float32

    def __init__(self, image, pixels):
        self.image = image
        self.pixels = pixels
        self.row_index, self.top = _padded_index(image.shape[0])
        self.col_index, self.left = _padded_index(image.shape[1])
        self.height, self.width, self.channels = (
            len(self.row_index),
            len(self.col_index),
            image.shape[2],
        )

    def rows(self, start, stop):
        band = self.image[self.row_index[start:stop]][:, self.col_index].astype(np.float32)
        if self.pixels:
            band = band / np.float32(127.5) - np.float32(1.0)
        return tf.convert_to_tensor(band)

    def working_bytes(self, rows):
        return rows * self.width * self.channels * 8


def _padded_index(size):
    """``(source index of each padded position, padding before)`` for one axis of length ``size``."""
    index = tf.reshape(tf.range(size), [1, size, 1, 1])
    padded, (top, _, _, _) = pad_to_multiple(index)
    return padded[0, :, 0, 0].numpy(), int(top)


class _StoredRows:
    """A ``BandStore`` seen as a source of rows, with the statistics of the map it holds."""

    def __init__(self, store, host_dtype):
        self.store = store
        self.dtype = host_dtype
        self.height, self.width, self.channels = store.shape

    def rows(self, start, stop):
        return as_tensor(self.store.rows(start, stop))

    def working_bytes(self, rows):
        return 2 * rows * self.store.row_bytes


@dataclasses.dataclass
class _Input:
    """What a convolution reads: ``skip + relu?((source - mean) * scale + shift)``, each optional."""

    source: object
    stats: _Stats | None = None
    relu: bool = False
    skip: object = None


@dataclasses.dataclass(frozen=True)
class _BandConfig:
    """The static part of a band function (one ``tf.function`` per distinct value)."""

    spec: _ConvSpec
    input_dtype: tf.DType
    normalize: bool
    relu: bool
    skip: bool
    stats: bool
    keep_input: bool
    tanh: bool


class _ConvNode:
    """A convolution of the generator evaluated on demand for any band of its output rows.

    Args:
        conv: the ``_Conv``.
        inputs: the ``_Input`` it reads.
        engine: the ``TiledGenerator`` (band functions, dtypes).
        weights: dict, ``id(layer)`` to ``(kernel, bias)`` in the compute dtype, read for this call.
        tanh: bool, apply tanh to the output (the head).
    """

    def __init__(self, conv, inputs, engine, weights, tanh=False):
        self.conv = conv
        self.inputs = inputs
        self.engine = engine
        self.kernel, self.bias = weights[id(conv)]
        self.tanh = tanh
        source = inputs.source
        self.height = conv.spec.output_size(source.height)
        self.width = conv.spec.output_size(source.width)
        self.channels = conv.filters
        self.dtype = tf.float32 if tanh else engine.host_dtype
        self.stats = conv.statistics()

    def compute(self, start, stop, stats=False, keep_input=False):
        """Output rows ``[start, stop)`` and, optionally, their statistics and the input rows.

        Returns:
            A dict with ``output`` (``[rows, width, channels]``), and ``mean``, ``m2`` with ``stats``,
            ``input`` (the convolution's input rows ``[start, stop)``) with ``keep_input``.
        """
        inputs = self.inputs
        lo, hi, pad_top, pad_bottom, keep_start = self.conv.spec.source_rows(
            start, stop, inputs.source.height
        )
        if inputs.stats is None:
            mean = np.zeros(inputs.source.channels, np.float32)
            scale = np.ones(inputs.source.channels, np.float32)
            shift = np.zeros(inputs.source.channels, np.float32)
        else:
            mean, scale, shift = inputs.stats.normalizer()
        config = _BandConfig(
            spec=self.conv.spec,
            input_dtype=inputs.source.dtype,
            normalize=inputs.stats is not None,
            relu=inputs.relu,
            skip=inputs.skip is not None,
            stats=stats,
            keep_input=keep_input,
            tanh=self.tanh,
        )
        skip = (
            inputs.skip.rows(lo, hi)
            if inputs.skip is not None
            else np.zeros((0, 0, 0), self.engine.host_dtype.as_numpy_dtype)
        )
        return self.engine.band_function(config)(
            inputs.source.rows(lo, hi),
            skip,
            mean,
            scale,
            shift,
            pad_top,
            pad_bottom,
            keep_start,
            stop - start,
            start - lo,
            self.kernel,
            self.bias,
        )

    def rows(self, start, stop):
        return self.compute(start, stop)["output"]

    def macs_per_row(self):
        """Multiply-accumulates per output row (the progress bar's unit of work)."""
        spec = self.conv.spec
        if spec.blur:  # one filter per channel: 9 taps (down), 4 blends of two (up)
            return (9 if spec.blur == "down" else 4) * self.channels * self.width
        per_pixel = spec.kernel_size**2 * self.conv.in_channels * self.channels
        return per_pixel * self.width // (4 if spec.transpose else 1)

    def chain_macs(self):
        """Multiply-accumulates of one pass over this node, recomputed sources included."""
        source = self.inputs.source
        upstream = source.chain_macs() if isinstance(source, _ConvNode) else 0
        return self.macs_per_row() * self.height + upstream

    def working_bytes(self, rows):
        """An upper estimate of the memory that computing ``rows`` output rows holds at once."""
        spec, source = self.conv.spec, self.inputs.source
        lo, hi, *_ = spec.source_rows(0, min(rows, self.height), source.height)
        in_rows = hi - lo + 2 * spec.pad
        compute = self.engine.compute_dtype.size
        storage = self.engine.storage_dtype.size
        in_width = source.width + 2 * spec.pad
        own = in_rows * in_width * source.channels * (storage * 2 + 4 + 2 * compute)
        out_rows = 2 * in_rows + 1 if spec.transpose or spec.blur == "up" else rows
        own += out_rows * (self.width + 1) * self.channels * (2 * compute + 8 + storage)
        if not spec.blur:  # a per-channel filter is not a matrix product: no im2col
            # The convolution's own buffer (see ``convolution_buffer_bytes``), bounded like the rest.
            own += convolution_buffer_bytes(
                spec.kernel_size,
                source.channels,
                self.channels,
                in_pixels=(hi - lo) * source.width,
                out_pixels=rows * self.width,
                transpose=spec.transpose,
            )
        return own + source.working_bytes(hi - lo)


@dataclasses.dataclass
class _Pass:
    """One sweep down a node's output: statistics, storing, writing the residual back, or output."""

    node: _ConvNode
    store: BandStore | None = None
    writeback: BandStore | None = None
    sink: object = None
    band_rows: int = 1
    release: tuple = ()

    def run(self, on_band):
        """Sweeps the node's rows; ``on_band`` is called with the fraction of the rows each band did."""
        node = self.node
        stats = node.stats is not None and node.stats.accumulates
        for start in range(0, node.height, self.band_rows):
            stop = min(start + self.band_rows, node.height)
            band = node.compute(start, stop, stats=stats, keep_input=self.writeback is not None)
            if stats:
                node.stats.add((stop - start) * node.width, band["mean"], band["m2"])
            # np.asarray shares the tensors' memory (Tensor.numpy() would copy).
            if self.writeback is not None:
                self.writeback.write(start, np.asarray(band["input"]))
            if self.store is not None:
                self.store.write(start, np.asarray(band["output"]))
            if self.sink is not None:
                self.sink(start, np.asarray(band["output"]))
            on_band((stop - start) / node.height)
        for store in self.release:
            store.close()


@dataclasses.dataclass
class TiledRun:
    """What the last ``TiledGenerator`` call did.

    Attributes:
        band_rows: list of int, the band height of each pass (in that pass's output rows).
        stored_bytes: int, bytes of the maps kept between passes (bottleneck maps and caches).
        spilled_bytes: int, of those, the bytes kept in a temporary file.
    """

    band_rows: list
    stored_bytes: int
    spilled_bytes: int


class TiledGenerator:
    """Runs a ResNet generator on an image of any size in bounded memory, band of rows by band of rows.

    The output equals the whole-image model's (``inference.translate``) up to float rounding: every
    instance norm uses the statistics of the whole map. The convolutions are read from the generator's
    stages (``ResnetGenerator``), and their weights at each call, so any ``ResnetGenerator`` works,
    whatever its size and dtype policy.

    The engine is not changed by a call: the budget may be given per call and what a call did is kept
    per thread (``last_run``), so threads may share one engine and translate images of any sizes at
    once, each with the result it would get alone.

    Args:
        generator: a ``ResnetGenerator`` (or a generator saved before 0.2, see
            ``as_resnet_generator``).
        max_memory_bytes: int, what the feature maps and the bands in flight may take (the framework, the
            model's weights and the caller's input and output arrays come on top). A quarter (at most
            1 GiB) goes to the bands, the rest holds the two stored bottleneck maps; a map that does not
            fit goes to a temporary file. Defaults to 4 GiB.
        precision: str, ``"float32"`` or ``"bf16"`` (bfloat16 convolutions and stored maps; norm
            statistics, normalisation and tanh in float32, as under ``mixed_bfloat16``). Defaults to
            ``"float32"``.
        spill_dir: str or None, folder for the temporary files. Defaults to the system's temp folder.
        band_rows: int or None, a fixed band height for every pass (in the pass's output rows);
            None chooses the largest that fits the budget.

    Example:
        >>> tiled = TiledGenerator(resnet_generator(ngf=8, n_res_blocks=1), max_memory_bytes=2**26)
        >>> tiled.translate(np.zeros((37, 53, 3), np.float32)).shape
        (37, 53, 3)
    """

    def __init__(
        self,
        generator,
        max_memory_bytes=DEFAULT_MAX_MEMORY_BYTES,
        precision="float32",
        spill_dir=None,
        band_rows=None,
    ):
        check_precision(precision)
        if int(max_memory_bytes) <= 0:
            raise ValueError(
                f"max_memory_bytes must be positive. Received: max_memory_bytes={max_memory_bytes}"
            )
        if band_rows is not None and int(band_rows) < 1:
            raise ValueError(f"band_rows must be >= 1 or None. Received: band_rows={band_rows}")
        self.generator = generator
        self.max_memory_bytes = int(max_memory_bytes)
        self.precision = precision
        self.spill_dir = spill_dir
        self.band_rows = None if band_rows is None else int(band_rows)
        self.compute_dtype, self.storage_dtype = _PRECISIONS[precision]
        self.host_dtype = _HOST_DTYPES[self.storage_dtype]
        self.convs = _generator_convs(generator)
        self._functions = {}
        self._functions_lock = threading.Lock()
        self._calls = threading.local()

    @property
    def last_run(self):
        """The ``TiledRun`` of this thread's last call (None before its first)."""
        return getattr(self._calls, "last_run", None)

    def translate(self, image, progress=None, max_memory_bytes=None):
        """Translates one image in [-1, 1].

        Args:
            image: float array ``[H, W, 3]`` in [-1, 1], any ``H, W >= 1``.
            progress: callable or None, called with the fraction of the work done (0 to 1) after each
                band. An exception it raises stops the translation (and frees its maps).
            max_memory_bytes: int or None, this call's budget (see the class); None for the engine's.

        Returns:
            float32 array ``[H, W, 3]`` in [-1, 1].
        """
        image = _check_image(image, self.convs.channels)
        output = np.empty(image.shape[:2] + (self.convs.head.filters,), np.float32)
        source = _ImageRows(image, pixels=False)

        def sink(start, rows):
            _write_cropped(output, source, start, rows)

        self._run(source, sink, progress, max_memory_bytes)
        return output

    def translate_pixels(self, pixels, progress=None, max_memory_bytes=None):
        """Translates one image of pixel values in [0, 255] (e.g. ``uint8`` from a file).

        Args:
            pixels: array ``[H, W, 3]`` in [0, 255], any numeric dtype.
            progress: callable or None, as in ``translate``.
            max_memory_bytes: int or None, as in ``translate``.

        Returns:
            float32 array ``[H, W, 3]`` of pixel values in [0, 255] (clipped, not rounded), as
            ``inference.translate_pixels`` returns.
        """
        pixels = _check_image(pixels, self.convs.channels)
        output = np.empty(pixels.shape[:2] + (self.convs.head.filters,), np.float32)
        source = _ImageRows(pixels, pixels=True)

        def sink(start, rows):
            _write_cropped(output, source, start, np.clip((rows + 1.0) * 127.5, 0.0, 255.0))

        self._run(source, sink, progress, max_memory_bytes)
        return output

    def architecture(self):
        """``(ngf, n_res_blocks)`` of the generator."""
        return self.convs.ngf, len(self.convs.res)

    @property
    def antialias(self):
        """bool, whether the generator has CUT's blurred sampling (more full-resolution maps)."""
        return self.convs.antialias

    def band_function(self, config):
        """The compiled band function for ``config`` (traced once per config, for any size)."""
        with self._functions_lock:
            if config not in self._functions:
                self._functions[config] = _band_function(
                    config, self.compute_dtype, self.storage_dtype
                )
            return self._functions[config]

    def _run(self, source, sink, progress, max_memory_bytes):
        if max_memory_bytes is None:
            max_memory_bytes = self.max_memory_bytes
        elif int(max_memory_bytes) <= 0:
            raise ValueError(
                f"max_memory_bytes must be positive. Received: max_memory_bytes={max_memory_bytes}"
            )
        weights = {id(conv): conv.weights(self.compute_dtype) for conv in self.convs.all()}
        stores = []
        try:
            passes = self._plan(source, sink, stores, int(max_memory_bytes), weights)
            total = sum(p.node.chain_macs() for p in passes)
            done = 0.0
            for p in passes:
                share = p.node.chain_macs() / total

                def on_band(fraction, share=share):
                    nonlocal done
                    done += fraction * share
                    if progress is not None:
                        progress(min(done, 1.0))

                for store in stores:
                    store.begin_pass(halo=p.node.conv.spec.pad)
                p.run(on_band)
            if progress is not None:
                progress(1.0)
        finally:
            for store in stores:
                store.close()

    def _plan(self, source, sink, stores, max_memory_bytes, weights):
        """The passes for one image, with every map they keep allocated in RAM or on disk.

        Two bottleneck maps are required: the residual stream and the current convolution's output
        (the latter gets the RAM first: a block reads and writes it twice, the stream once). Where the
        budget has room next to them, the outputs of the first downsampling and of the first upsampling
        are kept in RAM as well, which saves recomputing them (and the stem) in the next passes. With
        anti-aliased downsampling the stream is the last blur-pool's output, written by a pass of its
        own once the statistics of the convolution before it are known.
        """
        convs = self.convs
        working = min(int(max_memory_bytes * _WORKING_SHARE), _MAX_WORKING_BYTES)
        room = max_memory_bytes - working
        spill_dir = self.spill_dir or tempfile.gettempdir()
        make = functools.partial(_ConvNode, engine=self, weights=weights)

        def reading(conv, inputs):
            """The node of ``conv`` on ``inputs``, through its blur-upsample if it has one."""
            if conv.upsample:
                inputs = _Input(make(convs.blurs[id(conv)], inputs))
            return make(conv, inputs)

        def output_of(node):
            """What the next convolution reads of ``node``: normalised, ReLU, and blur-pooled if due."""
            inputs = _Input(node, node.stats, relu=True)
            if node.conv.downsample:
                inputs = _Input(make(convs.blurs[id(node.conv)], inputs))
            return inputs

        def allocate(node, in_ram):
            shape = (node.height, node.width, node.channels)
            store = BandStore(shape, self.host_dtype.as_numpy_dtype, None if in_ram else spill_dir)
            stores.append(store)
            return store

        def map_bytes(node):
            return node.height * node.width * node.channels * self.storage_dtype.size

        def cache(producer, consumer, last_reader, resident):
            """Keeps ``producer``'s output in RAM for ``consumer`` if it fits next to ``resident``."""
            if resident + map_bytes(producer.node) > room:
                return False
            producer.store = allocate(producer.node, in_ram=True)
            reader = _reader_of(consumer.node, producer.node)
            reader.source = _StoredRows(producer.store, self.host_dtype)
            last_reader.release += (producer.store,)
            return True

        passes = [_Pass(make(convs.stem, _Input(source)))]
        for conv in convs.down:
            passes.append(_Pass(reading(conv, output_of(passes[-1].node))))
        last = passes[-1].node
        if last.conv.downsample:
            # The stream is stored as the blur-pool gives it: normalised and ReLU'd already.
            passes.append(_Pass(output_of(last).source))
            stream_stats, stream_relu = None, False
        else:
            stream_stats, stream_relu = last.stats, True
        bottleneck = passes[-1].node
        size = map_bytes(bottleneck)
        outputs = allocate(bottleneck, in_ram=size <= room)
        resident_outputs = 0 if outputs.spilled else size
        residual = allocate(bottleneck, in_ram=resident_outputs + size <= room)
        resident = resident_outputs + (0 if residual.spilled else size)
        passes[-1].store = residual
        # While the downsampling passes run only the stream has been written (the np.empty pages of
        # the outputs map are not resident before their first write).
        for producer, consumer in zip(passes[1:-1], passes[2:]):
            cache(producer, consumer, consumer, resident - resident_outputs)

        dtype = self.host_dtype
        stream = _Input(_StoredRows(residual, dtype), stream_stats, relu=stream_relu)
        for conv_1, conv_2 in convs.res:
            first = make(conv_1, stream)
            passes.append(_Pass(first, store=outputs, writeback=residual))
            second = make(conv_2, _Input(_StoredRows(outputs, dtype), first.stats, True))
            passes.append(_Pass(second, store=outputs))
            stream = _Input(
                _StoredRows(outputs, dtype), second.stats, skip=_StoredRows(residual, dtype)
            )

        up = [_Pass(reading(convs.up[0], stream))]
        for conv in convs.up[1:]:
            up.append(_Pass(reading(conv, output_of(up[-1].node))))
        head = _Pass(make(convs.head, output_of(up[-1].node), tanh=True), sink=sink)
        # The head reads the first upsampling's output through the later ones.
        if len(up) > 1 and cache(up[0], up[1], head, resident):
            up[0].release = (outputs, residual)
        passes += up + [head]

        for p in passes:
            p.band_rows = self.band_rows or _fitting_rows(p.node, working)
        self._calls.last_run = TiledRun(
            band_rows=[p.band_rows for p in passes],
            stored_bytes=sum(store.nbytes for store in stores),
            spilled_bytes=sum(store.nbytes for store in stores if store.spilled),
        )
        logger.debug("tiled plan: %s", self._calls.last_run)
        return passes


def _reader_of(node, producer):
    """The ``_Input`` in ``node``'s chain that reads ``producer`` directly (past any blur nodes)."""
    inputs = node.inputs
    while inputs.source is not producer:
        inputs = inputs.source.inputs
    return inputs


def _fitting_rows(node, working_bytes):
    """The largest band height (at least 1) whose estimated working memory fits ``working_bytes``."""
    lo, hi = 1, node.height
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if node.working_bytes(mid) <= working_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _write_cropped(output, source, start, rows):
    """Writes padded-image rows starting at ``start`` into ``output``, dropping the padding."""
    height, width = output.shape[:2]
    first, last = max(start, source.top), min(start + len(rows), source.top + height)
    if last > first:
        output[first - source.top : last - source.top] = rows[
            first - start : last - start, source.left : source.left + width
        ]


def _check_image(image, channels):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != channels or min(image.shape[:2]) < 1:
        raise ValueError(
            f"expected one image [height, width, {channels}] with height, width >= 1. "
            f"Received: shape={image.shape}"
        )
    return image


def _band_function(config, compute_dtype, storage_dtype):
    """Builds the ``tf.function`` that turns one band of input rows into output rows.

    Its arguments are those that ``_ConvNode.compute`` passes; its input signature leaves every size
    unknown, so it is traced once whatever the band or image size.
    """
    spec = config.spec
    k = spec.kernel_size
    signature = [
        tf.TensorSpec([None, None, None], config.input_dtype),  # source rows
        tf.TensorSpec([None, None, None], _HOST_DTYPES[storage_dtype]),  # skip (empty if unused)
        tf.TensorSpec([None], tf.float32),  # mean
        tf.TensorSpec([None], tf.float32),  # gamma / sqrt(var + eps)
        tf.TensorSpec([None], tf.float32),  # beta
        tf.TensorSpec([], tf.int32),  # rows to pad above
        tf.TensorSpec([], tf.int32),  # rows to pad below
        tf.TensorSpec([], tf.int32),  # first output row kept
        tf.TensorSpec([], tf.int32),  # output rows kept
        tf.TensorSpec([], tf.int32),  # first input row of the band's own rows (keep_input)
        tf.TensorSpec([k, k, None, None], compute_dtype),
        tf.TensorSpec([None], compute_dtype),
    ]

    @tf.function(input_signature=signature)
    def band(
        x,
        skip,
        mean,
        scale,
        shift,
        pad_top,
        pad_bottom,
        keep_start,
        count,
        input_start,
        kernel,
        bias,
    ):
        outputs = {}
        v = tf.cast(_from_host(x, storage_dtype), tf.float32)
        if config.normalize:
            v = (v - mean) * scale + shift
        if config.relu:
            v = tf.nn.relu(v)
        if config.skip:
            v = tf.cast(_from_host(skip, storage_dtype), tf.float32) + v
        if config.keep_input:
            outputs["input"] = _to_host(v[input_start : input_start + count], storage_dtype)
        v = tf.cast(v, compute_dtype)[None]
        if spec.pad:
            paddings = [[0, 0], [pad_top, pad_bottom], [spec.pad, spec.pad], [0, 0]]
            v = tf.pad(v, paddings, mode=_PAD_MODES[spec.pad_mode])
        if spec.transpose:
            shape = tf.shape(v)
            full = tf.stack([1, 2 * shape[1] + 1, 2 * shape[2] + 1, tf.shape(kernel)[2]])
            y = tf.nn.conv2d_transpose(v, kernel, full, strides=2, padding="VALID")
        elif spec.blur == "up":
            y = blur_upsample_padded(blur_upsample_padded(v, axis=1), axis=2)
        elif spec.blur == "down":
            y = tf.nn.depthwise_conv2d(v, kernel, [1, spec.stride, spec.stride, 1], "VALID")
        else:
            y = tf.nn.conv2d(v, kernel, spec.stride, "VALID")
        # The bias right after the convolution lets grappler fuse the two; then crop.
        y = tf.nn.bias_add(y, bias)[
            0, keep_start : keep_start + count, 1 if spec.transpose else 0 :
        ]
        if config.tanh:
            y = tf.tanh(tf.cast(y, tf.float32))
        if config.stats:
            outputs["mean"], outputs["m2"] = _band_moments(tf.cast(y, tf.float32))
        outputs["output"] = y if config.tanh else _to_host(y, storage_dtype)
        return outputs

    return band


def _band_moments(y):
    """Per-channel mean and sum of squared deviations of ``[rows, width, channels]``, in float64.

    Each row's moments are float32 (one width of terms), the rows are combined in float64. A float32
    reduction over a whole band of millions of values, as ``tf.nn.moments`` over the whole map in the
    whole-image model, loses about 3e-4 of the variance; this loses about 3e-8.
    """
    row_mean, row_variance = tf.nn.moments(y, axes=[1])
    width = tf.cast(tf.shape(y)[1], tf.float64)
    row_mean = tf.cast(row_mean, tf.float64)
    mean = tf.reduce_mean(row_mean, axis=0)
    spread = tf.reduce_sum(tf.square(row_mean - mean), axis=0)
    return mean, width * (tf.reduce_sum(tf.cast(row_variance, tf.float64), axis=0) + spread)


def _from_host(x, storage_dtype):
    """Rows as NumPy holds them (bfloat16 as uint16 bits) to ``storage_dtype`` (float32 stays)."""
    return tf.bitcast(x, storage_dtype) if x.dtype == tf.uint16 else x


def _to_host(x, storage_dtype):
    """Casts to ``storage_dtype`` in the form NumPy holds it (bfloat16 as uint16 bits)."""
    x = tf.cast(x, storage_dtype)
    return tf.bitcast(x, _HOST_DTYPES[storage_dtype]) if storage_dtype == tf.bfloat16 else x


@dataclasses.dataclass
class _GeneratorConvs:
    """The convolutions of a ResNet generator, by stage, and the blurs of anti-aliased sampling."""

    stem: _Conv
    down: list
    res: list  # (conv_1, conv_2) per block
    up: list
    head: _Conv
    channels: int
    blurs: dict = dataclasses.field(
        default_factory=dict
    )  # id(conv): its blur-pool or blur-upsample

    @property
    def ngf(self):
        """int, the generator's first-layer filters."""
        return self.stem.filters

    @property
    def antialias(self):
        """bool, whether any sampling is CUT's blurred one."""
        return bool(self.blurs)

    def all(self):
        convs = [self.stem, *self.down, *(c for pair in self.res for c in pair), *self.up]
        return [*convs, self.head, *self.blurs.values()]


def _generator_convs(generator):
    """The convolutions of a ResNet generator, read from its stages (``ResnetGenerator``).

    Raises:
        ValueError: if the model is not a ResNet generator (see ``as_resnet_generator``).
    """
    generator = as_resnet_generator(generator)

    blurs = {}

    def conv(stage):
        spec = _ConvSpec(
            stage.kernel_size,
            stride=stage.stride,
            pad=stage.pad,
            pad_mode=stage.pad_mode,
            transpose=stage.transpose,
        )
        result = _Conv(
            spec,
            stage.conv,
            stage.norm,
            stage.downsample,
            stage.upsample,
            running_statistics=stage.batch_norm,
        )
        if stage.downsample:
            blurs[id(result)] = _blur("down", result.filters)
        if stage.upsample:
            blurs[id(result)] = _blur("up", result.in_channels)
        return result

    return _GeneratorConvs(
        stem=conv(generator.stem),
        down=[conv(stage) for stage in generator.downsamplings],
        res=[tuple(conv(stage) for stage in block.stages) for block in generator.res_blocks],
        up=[conv(stage) for stage in generator.upsamplings],
        head=conv(generator.head),
        channels=generator.channels,
        blurs=blurs,
    )


# Peak resident memory of translating one image whole (``CompiledGenerator``), measured with /usr/bin/time -v (TensorFlow 2.21 on CPU,
# graph mode, uint8 in and out; scripts/measure_tiled.py): a fixed 0.75 to 0.85 GiB (runtime, model)
# plus, per pixel and unit of ngf, 11.6 to 12.5 bytes in float32 and 12.9 to 14.2 in mixed_bfloat16
# (1 to 12 MP, ngf 32 and 64). 2 or 9 residual blocks differ by about 1 %. Rounded up.
_WHOLE_IMAGE_BASE_BYTES = int(0.9 * 2**30)
_WHOLE_IMAGE_BYTES_PER_PIXEL_AND_NGF = {"float32": 13.0, "bf16": 14.5}
# CUT's anti-aliased generator keeps more maps at full resolution (its first downsampling convolution
# and its last upsampling run there, with their blurs): measured 27.2 bytes per pixel and unit of ngf
# in float32 and 33.8 in mixed_bfloat16 (1 and 3 MP, ngf 64, the same way). Rounded up.
_ANTIALIAS_BYTES_PER_PIXEL_AND_NGF = {"float32": 29.0, "bf16": 35.0}
# TensorFlow's own CPU convolution (Eigen's, which TensorFlow runs wherever it does not use oneDNN: on
# CPUs without AVX-512 VNNI/BF16 or AMX, or with TF_ENABLE_ONEDNN_OPTS=0) is a matrix product whose
# thread-pool evaluation may pack the whole left-hand side, the im2col of the input, at once: float32
# values, kernel height x width x input channels per output pixel, padded to a multiple of 16. It does
# so for some shapes and thread counts only (a 7x7 convolution of 8 channels to 3 asked for exactly that,
# 25 GiB, at 4096x4096 and for nothing extra at 3584x3584, on 2 threads), so the bound assumes it always.
_GEMM_VALUE_BYTES = 4
_GEMM_PACKING = 16


def _packed(values):
    return -(-values // _GEMM_PACKING) * _GEMM_PACKING


def convolution_buffer_bytes(
    kernel_size, in_channels, out_channels, in_pixels, out_pixels, transpose=False
):
    """int, the largest buffer one convolution may ask for besides its input and output.

    The im2col of its whole input (see the comment above ``_GEMM_PACKING``): ``4 * kernel_size**2 *
    in_channels`` bytes (rounded up) per output pixel. A transposed convolution (TensorFlow's
    ``Conv2DBackpropInput``) multiplies its input by the kernel into columns of
    ``kernel_size**2 * out_channels`` values per input pixel and then sums them into the output.

    Args:
        kernel_size: int, the square kernel's side.
        in_channels: int.
        out_channels: int.
        in_pixels: int, batch x height x width of the input.
        out_pixels: int, batch x height x width of the output.
        transpose: bool, a transposed convolution.
    """
    if transpose:
        columns = _packed(in_channels) + kernel_size**2 * out_channels
        return _GEMM_VALUE_BYTES * in_pixels * columns
    return _GEMM_VALUE_BYTES * out_pixels * _packed(kernel_size**2 * in_channels)


def _padded_pixels(height, width):
    """An upper bound of the pixels of an image padded to the generator's multiple (at least 8)."""
    return max(height + 3, 8) * max(width + 3, 8)


def estimate_runtime_bytes():
    """int, the resident memory of the process before any image: TensorFlow's runtime and a model."""
    return _WHOLE_IMAGE_BASE_BYTES


def estimate_whole_image_resident_bytes(
    ngf, n_res_blocks, height, width, precision="float32", antialias=False
):
    """The peak resident memory (RSS) of translating one image whole (``CompiledGenerator``).

    A measured model (see ``_WHOLE_IMAGE_BYTES_PER_PIXEL_AND_NGF``) that errs high, by 1 to 13 % from
    1 to 12 MP on a CPU where TensorFlow runs oneDNN's convolutions. Full-resolution 64-channel maps
    dominate, so it grows with ``height * width * ngf``; an anti-aliased generator (CUT's) about twice
    as fast. What a run may ask for on other CPUs is ``estimate_whole_image_bytes``.

    Args:
        ngf: int, the generator's first-layer filters.
        n_res_blocks: int, its residual blocks (they hardly matter: the bottleneck is 1/16 the pixels).
        height: int, image height (before padding to a multiple of 4).
        width: int, image width.
        precision: str, ``"float32"`` or ``"bf16"`` (a ``mixed_bfloat16`` model).
        antialias: bool, CUT's blurred sampling (``ResnetGenerator(antialias=True)``).

    Returns:
        int, bytes of the whole process (TensorFlow runtime included).

    Example:
        >>> estimate_whole_image_resident_bytes(64, 9, 3000, 4000) / 2**30  # a 12-MP photo
        10.21...
    """
    check_precision(precision)
    del n_res_blocks  # about 1 % from 2 to 9 blocks, within the model's error
    per_pixel = (
        ngf
        * (
            _ANTIALIAS_BYTES_PER_PIXEL_AND_NGF
            if antialias
            else _WHOLE_IMAGE_BYTES_PER_PIXEL_AND_NGF
        )[precision]
    )
    return int(_WHOLE_IMAGE_BASE_BYTES + per_pixel * _padded_pixels(height, width))


def estimate_convolution_buffer_bytes(ngf, height, width, antialias=False):
    """int, the largest ``convolution_buffer_bytes`` of a ``ResnetGenerator`` on one whole image.

    The head's (7x7, ``ngf`` channels to 3 at full resolution: ``196 * ngf`` bytes per pixel) for any
    ``ngf`` from 4 up; the stem's (7x7 from 3 channels: 640 bytes per pixel) below. An anti-aliased
    generator's stride-1 sampling convolutions (3x3 at the resolution they blur from or to) are
    smaller than the head's.
    """
    pixels = _padded_pixels(height, width)
    convs = [(7, 3, ngf, pixels, pixels, False)]  # the stem
    channels, resolution = ngf, pixels
    for _ in range(GENERATOR_DOWNSAMPLINGS):
        out = resolution if antialias else resolution // 4  # stride 1, then the blur-pool
        convs.append((3, channels, 2 * channels, resolution, out, False))
        channels, resolution = 2 * channels, resolution // 4
    convs.append((3, channels, channels, resolution, resolution, False))  # residual blocks
    for _ in range(GENERATOR_DOWNSAMPLINGS):
        if antialias:  # the blur-upsample, then a stride-1 convolution
            convs.append((3, channels, channels // 2, 4 * resolution, 4 * resolution, False))
        else:
            convs.append((3, channels, channels // 2, resolution, 4 * resolution, True))
        channels, resolution = channels // 2, 4 * resolution
    convs.append((7, channels, 3, resolution, resolution, False))  # the head
    return max(convolution_buffer_bytes(*conv) for conv in convs)


def estimate_whole_image_bytes(
    ngf, n_res_blocks, height, width, precision="float32", antialias=False
):
    """The memory that translating one image whole (``CompiledGenerator``) may ask for, on any CPU.

    The measured resident peak (``estimate_whole_image_resident_bytes``) plus the largest buffer a
    convolution of TensorFlow's own CPU kernels may ask for (``estimate_convolution_buffer_bytes``:
    about ``196 * ngf`` bytes per pixel, most of it never touched, but refused outright where it exceeds
    the memory the system can commit). Use it to choose between ``CompiledGenerator`` and
    ``TiledGenerator``: a run below it fits, whichever convolution kernels the CPU gets.

    Args:
        ngf: int, the generator's first-layer filters.
        n_res_blocks: int, its residual blocks.
        height: int, image height (before padding to a multiple of 4).
        width: int, image width.
        precision: str, ``"float32"`` or ``"bf16"`` (a ``mixed_bfloat16`` model).
        antialias: bool, CUT's blurred sampling (``ResnetGenerator(antialias=True)``).

    Returns:
        int, bytes of the whole process (TensorFlow runtime included).

    Example:
        >>> estimate_whole_image_bytes(64, 9, 3000, 4000) / 2**30  # a 12-MP photo
        150.6...
    """
    resident = estimate_whole_image_resident_bytes(
        ngf, n_res_blocks, height, width, precision, antialias
    )
    return resident + estimate_convolution_buffer_bytes(ngf, height, width, antialias)
