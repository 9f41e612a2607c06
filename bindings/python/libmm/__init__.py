# SPDX-License-Identifier: MIT
"""libmm from Python (ctypes + numpy, no compiled extension).

    import numpy as np, libmm
    m = libmm.Model(4, max_batch=32).dense(64).activation("tanh").dense(2).finalize()
    m.set_optimizer("adam", lr=1e-3)
    y = m.forward(np.zeros((32, 4), np.float32))

Arrays are passed to libmm without copies (mm_tensor_wrap) when they are C-contiguous float32.
Errors raise libmm.MMError subclasses carrying .status, .name and the handle's .message.
The shared library is found through $LIBMM_LIBRARY, $LIBMM_LIBDIR or the build tree's lib/.
"""
from ._lib import lib as _clib
from .errors import (MMError, InvalidArgumentError, ShapeError, RangeError, DTypeError,
                     NumericError, StateError, UnsupportedError, FormatError, IOFailure,
                     OutOfMemory)
from .core import Tensor, as_f32
from .model import Model
from .ops import Loss, Attention, SSM
from .policy import Policy
from .linalg import (sgemm, Threads, hippo, hippo_rank_correction, discretize, s4d_init)
from . import constants, linalg

__all__ = ["MMError", "InvalidArgumentError", "ShapeError", "RangeError", "DTypeError",
           "NumericError",
           "StateError", "UnsupportedError", "FormatError", "IOFailure", "OutOfMemory",
           "Tensor", "as_f32", "Model", "Loss", "Attention", "SSM", "Policy", "constants",
           "linalg", "sgemm", "Threads", "hippo", "hippo_rank_correction", "discretize",
           "s4d_init",
           "version", "build_info", "version_number", "abi_version"]


def version():
    return _clib.mm_version_string().decode()


def build_info():
    return _clib.mm_build_info().decode()


def version_number():
    """MM_VERSION_NUMBER of the loaded library (major * 10000 + minor * 100 + patch)."""
    return _clib.mm_version_number()


def abi_version():
    """MM_ABI_VERSION of the loaded library (the soname's number)."""
    return _clib.mm_abi_version()
