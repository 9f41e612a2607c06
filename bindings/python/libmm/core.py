# SPDX-License-Identifier: MIT
"""What every libmm call from Python goes through: the array gate, integer and options checks,
and the handle owner.

Memory. libmm reads and writes caller memory through raw pointers (mm_tensor_wrap, the float
arrays of mm_policy_act / observe, cross-entropy targets, action bounds), so every array handed
to C first passes `checked`: an ndarray of exactly the dtype, C-contiguous, aligned, of exactly
the expected shape where the binding knows it (never reshaped), and writeable when libmm writes
it. Inputs may be converted once (`as_f32`, `int_input`, `flag_input`: the copy is the only
one); outputs given by the caller (`out=`) are never copied, so they must already qualify.

Integers. ctypes narrows silently, so every integer goes through `check_int` (see _lib) before
it reaches a C parameter or an options field; integer arrays are range-checked before their
conversion too.

Handles. A libmm handle is owned by one `_Owner`; the Python objects that need the handle's
memory hold references to it: the Handle object, every numpy view of the model's parameters or
gradients (through the view's base), and every call in flight (a local in `Handle._call`).
close() drops the Handle's reference, so the C free runs when the last of them is gone: right
away when nothing else holds the owner, otherwise when the last view dies or the last call in
another thread returns. A closed Handle raises StateError; nothing can reach freed memory.
"""
import ctypes
import os

import numpy as np

from . import errors
from ._lib import lib, f32p, c_int32, c_int64, c_double, check_int, int_limits

__all__ = ["as_f32", "checked", "f32_input", "int_input", "flag_input", "pointer", "Tensor",
           "wrap", "out_tensor", "h", "view", "check_int", "set_field", "set_fields",
           "path_arg", "lookup", "Handle"]


# ---- arrays -------------------------------------------------------------------------------------
def _fail(status, fmt, *args):
    raise errors.error(status, fmt % args)


def checked(arr, name, dtype=np.float32, shape=None, writable=False):
    """The gate for memory libmm reads or writes: arr itself (never a copy) once it is an
    ndarray of dtype, C-contiguous, aligned, of exactly shape (a tuple; None when the C side
    checks the shape through an mm_tensor) and writeable if writable. Raises DTypeError
    (a TypeError), ShapeError or InvalidArgumentError (ValueErrors)."""
    if not isinstance(arr, np.ndarray):
        _fail(errors.E_DTYPE, "%s must be a numpy array, not %s", name, type(arr).__name__)
    if arr.dtype != dtype:
        _fail(errors.E_DTYPE, "%s has dtype %s; libmm needs %s", name, arr.dtype,
              np.dtype(dtype))
    if shape is not None and arr.shape != tuple(shape):
        _fail(errors.E_SHAPE, "%s has shape %s; expected %s", name, arr.shape, tuple(shape))
    if not arr.flags.c_contiguous:
        _fail(errors.E_INVALID_ARG, "%s is not C-contiguous (use np.ascontiguousarray)", name)
    if not arr.flags.aligned:
        _fail(errors.E_INVALID_ARG, "%s is not aligned to its element size", name)
    if writable and not arr.flags.writeable:
        _fail(errors.E_INVALID_ARG, "%s is read-only; libmm writes into it", name)
    return arr


def as_f32(a, writable=False):
    """a as a C-contiguous, aligned float32 ndarray (no copy when it already is one; a writable
    copy of a read-only one if writable)."""
    arr = np.require(a, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    if writable and not arr.flags.writeable:
        arr = arr.copy()
    return arr


def f32_input(a, name, shape=None):
    """An input libmm only reads: converted once if needed, then checked."""
    return checked(as_f32(a), name, np.float32, shape)


def int_input(a, name, ctype=c_int32, shape=None):
    """An integer array libmm reads, as ctype's dtype: the values are range-checked before the
    conversion (numpy's astype wraps 2**32 + 1 to 1 for int32). Float arrays are refused."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biu":
        _fail(errors.E_DTYPE, "%s must hold integers, not %s", name, arr.dtype)
    if arr.size and arr.dtype.kind != "b":
        lo, hi = int_limits(ctype)
        least, most = int(arr.min()), int(arr.max())
        if least < lo or most > hi:
            _fail(errors.E_RANGE, "%s holds %d, outside the range of %s [%d, %d]", name,
                  least if least < lo else most, np.dtype(ctype).name, lo, hi)
    return checked(np.require(arr, np.dtype(ctype), ["C_CONTIGUOUS", "ALIGNED"]), name,
                   np.dtype(ctype), shape)


def flag_input(a, name, shape=None):
    """A 0/1 array (terminated, truncated) as uint8: bools, or numbers that are all 0 or 1."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        _fail(errors.E_DTYPE, "%s must hold 0/1 flags, not %s", name, arr.dtype)
    if arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1)):
        _fail(errors.E_RANGE, "%s must hold only 0 and 1", name)
    return checked(np.require(arr, np.uint8, ["C_CONTIGUOUS", "ALIGNED"]), name, np.uint8,
                   shape)


def pointer(arr, ptype):
    """The data pointer of an array that passed `checked` (the caller keeps arr referenced for
    as long as libmm may use the pointer)."""
    return arr.ctypes.data_as(ptype)


class Tensor:
    """An mm_tensor borrowing a numpy array. Keep the Tensor (it keeps the array alive) while
    libmm may use it; close() or garbage collection frees the handle, never the array. The
    array must pass `checked` (writeable too when writable: libmm will write it)."""

    __slots__ = ("_handle", "_array")

    def __init__(self, array, writable=False, name="array"):
        arr = checked(array, name, np.float32, None, writable)
        if arr.ndim < 1 or arr.ndim > 8 or arr.size == 0:
            _fail(errors.E_SHAPE, "%s has shape %s: 1..8 dimensions, each >= 1", name,
                  arr.shape)
        self._array = arr
        self._handle = ctypes.c_void_p()
        shape = (c_int64 * arr.ndim)(*arr.shape)
        errors.check(lib.mm_tensor_wrap(ctypes.byref(self._handle), pointer(arr, f32p),
                                        arr.ndim, shape, None))

    @property
    def handle(self):
        return self._handle

    @property
    def array(self):
        return self._array

    def close(self):
        if self._handle:
            lib.mm_tensor_free(self._handle)
            self._handle.value = None  # in place: no other reference can see the old value

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __reduce__(self):
        raise TypeError("a libmm Tensor cannot be copied or pickled")


def wrap(a, writable=False, name="array"):
    """Tensor of a (None for None)."""
    return None if a is None else Tensor(a, writable, name)


def out_tensor(a, name="output"):
    """Tensor of an output array libmm writes (None for None)."""
    return wrap(a, True, name)


def h(t):
    """The handle of a Tensor, or None."""
    return None if t is None else t.handle


# ---- integers, options, paths, names -------------------------------------------------------------
# Options fields Python never sets: sizes and pointers the binding manages itself (a wrong
# struct_size or err_buf_size makes libmm read or write outside the memory it was given).
_PRIVATE_FIELDS = {"struct_size", "alloc", "err_buf", "err_buf_size", "act_low", "act_high",
                   "hidden"}


def set_field(opts, name, value):
    """opts.name = value with the value checked against the field's C type."""
    ctype = dict(opts._fields_).get(name)
    if ctype is None or name in _PRIVATE_FIELDS or name.startswith("reserved"):
        raise TypeError("unknown option %r" % name)
    if ctype is c_double:
        setattr(opts, name, float(value))
    else:
        setattr(opts, name, check_int(value, ctype, name))


def set_fields(opts, fields):
    for k, v in fields.items():
        set_field(opts, k, v)


def path_arg(path):
    """A file path as the bytes libmm opens: a C string ends at the first NUL, so a path
    holding one would name another file; it is refused."""
    raw = os.fsencode(os.fspath(path))
    if b"\0" in raw:
        raise ValueError("path contains a NUL byte: %r" % (path,))
    return raw


def lookup(table, value, what):
    """Maps a name ("relu") or an int to the enum value of a table (an int32_t in C)."""
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError("unknown %s %r (one of %s)" % (what, value, sorted(table)))
    return check_int(value, c_int32, what)


def reader(stream):
    """(mm_read_fn, errors) reading from a binary file object's read(n) (or readinto): the
    callback copies at most n bytes, returns 0 at the end and -1 (libmm: MM_E_IO) when read
    raises; the exception is kept in errors for the caller to chain. Keep the returned
    callback referenced until the C call returns."""
    from ._lib import READ_FN
    caught = []

    def read(_ud, buf, n):
        try:
            data = stream.read(n)
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("read() returned %s, not bytes" % type(data).__name__)
            data = memoryview(data).cast("B")
            if len(data) > n:
                raise ValueError("read(%d) returned %d bytes" % (n, len(data)))
            ctypes.memmove(buf, bytes(data), len(data))
            return len(data)
        except BaseException as e:  # noqa: B902 (a C caller cannot take an exception)
            caught.append(e)
            return -1

    return READ_FN(read), caught


def err_buffer():
    return ctypes.create_string_buffer(512)


def raise_create(status, buf):
    raise errors.error(status, buf.value.decode(errors="replace"))


# ---- handles -------------------------------------------------------------------------------------
class _Owner:
    """Owns one libmm handle pointer and frees it when the last reference goes (see the module
    comment). Never copied: two owners of one pointer would free it twice."""

    __slots__ = ("ptr", "_free", "__weakref__")

    def __init__(self, free):
        self.ptr = ctypes.c_void_p()
        self._free = free

    def __del__(self):
        ptr = self.ptr
        if ptr:
            self.ptr = ctypes.c_void_p()
            try:
                self._free(ptr)
            except Exception:  # interpreter shutdown
                pass

    def __reduce__(self):
        raise TypeError("a libmm handle cannot be copied or pickled")


def view(ptr, n, owner):
    """A writable numpy view of n floats at ptr (memory of owner's handle). The view's base, a
    ctypes array, references owner, so the memory lives at least as long as any view of it."""
    address = ctypes.cast(ptr, ctypes.c_void_p).value
    if n == 0 or not address:
        return np.zeros(0, np.float32)
    buf = (ctypes.c_float * n).from_address(address)
    buf._owner = owner
    return np.frombuffer(buf, dtype=np.float32)


class Handle:
    """Base of the handle classes: owns one libmm handle through an _Owner, releases it on
    close(), on leaving a `with` block or on garbage collection, and raises errors with the
    handle's text. Every call on the handle goes through _call."""

    _free = None    # staticmethod(lib.mm_<x>_free)
    _errmsg = None  # staticmethod(lib.mm_<x>_errmsg)
    _setter = None
    _getter = None
    _param_ids = {}

    def __init__(self):
        self._owner = _Owner(self._free)

    @property
    def handle(self):
        """The raw handle (c_void_p; NULL once closed)."""
        owner = self._owner
        return owner.ptr if owner is not None else ctypes.c_void_p()

    @property
    def closed(self):
        return self._owner is None or not self._owner.ptr

    def _live(self):
        """The owner of an open handle (hold it in a local for the duration of a C call)."""
        owner = self._owner
        if owner is None or not owner.ptr:
            _fail(errors.E_STATE, "this %s is closed", type(self).__name__)
        return owner

    def _call(self, fn, *args):
        """fn(handle, *args), raising for a negative status with the handle's message. The
        local `owner` keeps the handle alive until fn returns, even if another thread closes
        this object meanwhile."""
        owner = self._live()
        status = fn(owner.ptr, *args)
        if status < 0:
            errors.check(status, self._errmsg, owner.ptr)
        return status

    def _call_quiet(self, fn, *args):
        """As _call for functions that write no error text (mm_model_infer)."""
        owner = self._live()
        return errors.check(fn(owner.ptr, *args))

    @property
    def errmsg(self):
        owner = self._owner
        if owner is None or not owner.ptr:
            return ""
        raw = self._errmsg(owner.ptr)
        return raw.decode(errors="replace") if raw else ""

    def close(self):
        """Releases this object's hold on the handle: freed now, or when the last numpy view
        of its memory (Model.params / grads) is gone. The object is unusable afterwards."""
        self._owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __reduce__(self):
        raise TypeError("libmm handles cannot be copied or pickled (Model.to_bytes() and "
                        "Model.from_bytes() copy a model)")

    def set(self, param, value):
        """Sets a run-time parameter by name ("lr") or id."""
        pid = lookup(self._param_ids, param, "parameter")
        self._call(self._setter, pid, float(value))

    def get(self, param):
        """Reads a run-time parameter or statistic by name or id."""
        pid = lookup(self._param_ids, param, "parameter")
        v = ctypes.c_double()
        self._call(self._getter, pid, ctypes.byref(v))
        return v.value
