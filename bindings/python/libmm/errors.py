# SPDX-License-Identifier: MIT
"""libmm status codes as Python exceptions.

Every failing libmm call raises MMError (or a subclass that is also the matching built-in
exception, so `except ValueError` works for shape errors). The exception carries the numeric
status, its stable name ("MM_E_SHAPE") and the handle's detail text (mm_*_errmsg, or the
create call's err_buf). The text is copied into Python at once: libmm's buffer is only valid
until the next call on the handle.
"""
from ._lib import lib

OK = 0
E_INVALID_ARG = -1
E_NOMEM = -2
E_SHAPE = -3
E_DTYPE = -4
E_RANGE = -5
E_STATE = -6
E_UNSUPPORTED = -7
E_FORMAT = -20
E_VERSION = -21
E_IO = -22
E_NUMERIC = -30
E_BUFFER_TOO_SMALL = -31
E_INTERNAL = -99


class MMError(Exception):
    """A libmm call failed. Attributes: status (int), name (str), message (str)."""

    def __init__(self, status, message=""):
        self.status = int(status)
        self.name = lib.mm_status_name(self.status).decode()
        self.message = message or lib.mm_status_str(self.status).decode()
        super().__init__("%s: %s" % (self.name, self.message))


class InvalidArgumentError(MMError, ValueError):
    pass


class ShapeError(MMError, ValueError):
    pass


class RangeError(MMError, ValueError):
    pass


class DTypeError(MMError, TypeError):
    pass


class NumericError(MMError, ArithmeticError):
    pass


class StateError(MMError, RuntimeError):
    pass


class UnsupportedError(MMError, NotImplementedError):
    pass


class FormatError(MMError, ValueError):
    pass


class IOFailure(MMError, OSError):
    pass


class OutOfMemory(MMError, MemoryError):
    pass


_CLASSES = {E_INVALID_ARG: InvalidArgumentError, E_SHAPE: ShapeError, E_RANGE: RangeError,
            E_DTYPE: DTypeError,
            E_NUMERIC: NumericError, E_STATE: StateError, E_UNSUPPORTED: UnsupportedError,
            E_FORMAT: FormatError, E_VERSION: FormatError, E_IO: IOFailure,
            E_NOMEM: OutOfMemory}


def error(status, message=""):
    """The exception object for a status."""
    return _CLASSES.get(int(status), MMError)(status, message)


def check(status, errmsg=None, handle=None):
    """Raises for a negative status, with errmsg(handle) (a libmm mm_*_errmsg) as the text."""
    if status >= 0:
        return status
    text = ""
    if errmsg is not None and handle:
        raw = errmsg(handle)
        text = raw.decode(errors="replace") if raw else ""
    raise error(status, text)
