"""Zero-copy numpy <-> mm_tensor wrapping and small shared helpers.

A libmm call takes mm_tensor handles; the bindings wrap the caller's numpy arrays with
mm_tensor_wrap, which borrows the memory (no copy) and allocates only the small handle. Arrays
must be float32 and C-contiguous; `as_f32` converts anything else once (that copy is the only
one), and outputs are always fresh or caller-given float32 arrays written in place.
"""
import ctypes

import numpy as np

from . import errors
from ._lib import lib, f32p, c_int64


def as_f32(a, writable=False):
    """a as a C-contiguous float32 ndarray (no copy when it already is one)."""
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if writable and not arr.flags.writeable:
        arr = arr.copy()
    return arr


class Tensor:
    """An mm_tensor borrowing a numpy array. Keep the Tensor (it keeps the array alive) while
    libmm may use it; close() or garbage collection frees the handle, never the array."""

    __slots__ = ("handle", "array")

    def __init__(self, array):
        arr = array
        if not (isinstance(arr, np.ndarray) and arr.dtype == np.float32 and
                arr.flags.c_contiguous):
            raise TypeError("libmm tensors need C-contiguous float32 arrays (use as_f32)")
        if arr.ndim < 1 or arr.ndim > 8 or arr.size == 0:
            raise errors.error(errors.E_SHAPE, "shape %s: 1..8 dimensions, each >= 1" %
                               (arr.shape,))
        self.array = arr
        self.handle = ctypes.c_void_p()
        shape = (c_int64 * arr.ndim)(*arr.shape)
        data = arr.ctypes.data_as(f32p)
        errors.check(lib.mm_tensor_wrap(ctypes.byref(self.handle), data, arr.ndim, shape, None))

    def close(self):
        if self.handle:
            lib.mm_tensor_free(self.handle)
            self.handle = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


def wrap(a):
    """Tensor of a (None for None)."""
    return None if a is None else Tensor(a)


def h(t):
    """The handle of a Tensor, or None."""
    return None if t is None else t.handle


def view(ptr, n, owner):
    """A numpy view of n floats at ptr that keeps owner (a libmm object) alive."""
    buf = (ctypes.c_float * n).from_address(ctypes.addressof(ptr.contents))
    arr = np.frombuffer(buf, dtype=np.float32)
    buf._owner = owner  # the ctypes buffer is the array's base: owner lives as long as arr
    return arr


def err_buffer():
    return ctypes.create_string_buffer(512)


def raise_create(status, buf):
    raise errors.error(status, buf.value.decode(errors="replace"))


def lookup(table, value, what):
    """Maps a name ("relu") or an int to the enum value of a table."""
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError("unknown %s %r (one of %s)" % (what, value, sorted(table)))
    return int(value)


class Handle:
    """Base of the handle classes: owns one libmm handle, frees it on close(), on leaving a
    `with` block or on garbage collection, and raises errors with the handle's text."""

    _free = None    # staticmethod(lib.mm_<x>_free)
    _errmsg = None  # staticmethod(lib.mm_<x>_errmsg)
    _setter = None
    _getter = None
    _param_ids = {}

    def __init__(self):
        self.handle = ctypes.c_void_p()

    def _check(self, status):
        return errors.check(status, self._errmsg, self.handle)

    @property
    def errmsg(self):
        raw = self._errmsg(self.handle)
        return raw.decode(errors="replace") if raw else ""

    def close(self):
        if self.handle:
            self._free(self.handle)
            self.handle = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def set(self, param, value):
        """Sets a run-time parameter by name ("lr") or id."""
        pid = lookup(self._param_ids, param, "parameter")
        self._check(self._setter(self.handle, pid, float(value)))

    def get(self, param):
        """Reads a run-time parameter or statistic by name or id."""
        pid = lookup(self._param_ids, param, "parameter")
        v = ctypes.c_double()
        self._check(self._getter(self.handle, pid, ctypes.byref(v)))
        return v.value
