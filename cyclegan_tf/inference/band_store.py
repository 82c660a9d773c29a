"""Feature maps kept in memory or in a temporary file and accessed in bands of rows.

The tiled generator keeps a few maps between its passes. Where they do not fit the memory budget they
live in a temporary file that is read and written with explicit ``pread``/``pwrite`` calls: unlike a
memory map, those pages never count as the process's resident memory.

A pass may overwrite a map while it still reads it (a residual block writes its output over its input).
Band ``[a, b)`` reads rows ``[a - halo, b + halo)`` before it writes rows ``[a, b)``, so the only
overwritten rows a later band reads are the last ``halo`` rows written. ``write`` keeps their old
values and ``rows`` serves them, so every read sees the map as it was when the pass began.

Arrays are 64-byte aligned so that TensorFlow can use them without a copy (``as_tensor``).
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

# TensorFlow's CPU kernels assume buffers aligned to EIGEN_MAX_ALIGN_BYTES (64 with AVX-512).
ALIGNMENT = 64
# Linux transfers at most this many bytes in one read or write call.
_MAX_IO_BYTES = 0x7FFFF000


def aligned_empty(shape, dtype):
    """``np.empty`` whose data starts on an ``ALIGNMENT``-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    offset = (-raw.ctypes.data) % ALIGNMENT
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def as_tensor(array):
    """A ``tf.Tensor`` sharing ``array``'s memory where it is contiguous and aligned, else a copy.

    The caller must not change the array while the tensor is in use.
    """
    if array.size and array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


class BandStore:
    """A ``[height, width, channels]`` map in RAM or in an unlinked temporary file.

    Args:
        shape: tuple ``(height, width, channels)``.
        dtype: a NumPy dtype.
        spill_dir: str or None, where the temporary file goes; None keeps the map in RAM.
    """

    def __init__(self, shape, dtype, spill_dir=None):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
        self.spilled = spill_dir is not None
        self._array = None
        self._fd = None
        if self.spilled:
            self._fd, path = tempfile.mkstemp(prefix="cyclegan_band_", dir=spill_dir)
            os.unlink(path)  # the space is freed when the descriptor closes, even after a crash
            os.ftruncate(self._fd, self.nbytes)
        else:
            self._array = aligned_empty(self.shape, self.dtype)
        self.begin_pass()

    @property
    def nbytes(self):
        """int, the map's size in bytes."""
        return self.shape[0] * self.row_bytes

    def begin_pass(self, halo=0):
        """Starts a pass in which band ``[a, b)`` may read up to ``halo`` rows above ``a``."""
        self._halo = halo
        self._written = 0
        self._kept = self._read(0, 0)  # old values of rows [_written - len(_kept), _written)

    def rows(self, start, stop):
        """Rows ``[start, stop)`` (clipped to the map) as they were when the pass began.

        The result may share memory with the map: use it before the next ``write``.

        Raises:
            RuntimeError: if it needs overwritten rows that were not kept (a pass that reads more than
                ``halo`` rows above its band, or goes up the map).
        """
        start, stop = max(start, 0), min(stop, self.shape[0])
        if start >= self._written:
            return self._read(start, stop)
        kept_start = self._written - len(self._kept)
        if start < kept_start:
            raise RuntimeError(
                f"rows {start}..{stop} of a map overwritten up to row {self._written} in this pass; "
                f"only rows from {kept_start} were kept"
            )
        head = self._kept[start - kept_start : min(stop, self._written) - kept_start]
        return np.concatenate([head, self._read(self._written, max(stop, self._written))])

    def write(self, start, values):
        """Writes ``values`` (``[rows, width, channels]``) at row ``start``."""
        stop = start + len(values)
        if self._halo:
            keep_from = max(stop - self._halo, 0)
            kept_start = self._written - len(self._kept)
            old = (
                [self._kept[max(keep_from - kept_start, 0) :]] if self._written > keep_from else []
            )
            self._kept = np.concatenate(old + [self._read(max(keep_from, start), stop)])
        values = np.ascontiguousarray(values, self.dtype)
        if self._array is not None:
            self._array[start:stop] = values
        else:
            _pwrite_all(self._fd, values.reshape(-1).view(np.uint8), start * self.row_bytes)
        self._written = max(self._written, stop)

    def close(self):
        """Frees the memory or the file."""
        self._array = None
        self._kept = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read(self, start, stop):
        if self._array is not None:
            return self._array[start:stop]
        band = aligned_empty((max(stop - start, 0),) + self.shape[1:], self.dtype)
        _pread_all(self._fd, band.reshape(-1).view(np.uint8), start * self.row_bytes)
        return band


def _pwrite_all(fd, buffer, offset):
    view = memoryview(buffer)
    while len(view):
        written = os.pwrite(fd, view[:_MAX_IO_BYTES], offset)
        view, offset = view[written:], offset + written


def _pread_all(fd, buffer, offset):
    view = memoryview(buffer)
    while len(view):
        read = os.preadv(fd, [view[:_MAX_IO_BYTES]], offset)
        if read == 0:
            raise OSError(f"unexpected end of the spill file at byte {offset}")
        view, offset = view[read:], offset + read
