# SPDX-License-Identifier: MIT
"""libmm's functions without a handle: single-precision GEMM (one thread or a Threads pool),
the HiPPO matrices, state-space discretisation and the S4D initialisation. Inputs are numpy
arrays (converted once to the dtype libmm reads); outputs are new arrays, or c= for sgemm."""
import ctypes
import threading

import numpy as np

from . import constants, errors
from ._lib import lib, f32p, f64p, c_int32, c_int64
from .core import (Handle, check_int, checked, f32_input, lookup, pointer)

__all__ = ["sgemm", "Threads", "hippo", "hippo_rank_correction", "discretize", "s4d_init"]


class Threads(Handle):
    """A pool of n_threads threads (the calling one included) for sgemm(threads=...). One
    sgemm runs on a pool at a time (mm.h's rule): calls from several Python threads on one
    pool wait for each other here."""

    _free = staticmethod(lib.mm_threads_free)
    _errmsg = None  # mm_threads keeps no error text

    def __init__(self, n_threads):
        super().__init__()
        errors.check(lib.mm_threads_create(ctypes.byref(self._owner.ptr),
                                           check_int(n_threads, c_int32, "n_threads"), None))
        self.n_threads = n_threads
        self._lock = threading.Lock()

    @property
    def workspace_size(self):
        """Bytes of the pool's sgemm workspace (mm_sgemm_mt_workspace_size)."""
        return lib.mm_sgemm_mt_workspace_size(self.n_threads)


def _f32_2d(a, name):
    a = f32_input(a, name)
    if a.ndim != 2:
        raise errors.error(errors.E_SHAPE, "%s has shape %s; expected a matrix" % (name, a.shape))
    return a


def sgemm(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, threads=None):
    """C = alpha op(A) op(B) + beta C in float32 (libmm's kernel; op transposes when trans_*),
    returned. c: None (a new zeroed matrix) or a float32, C-contiguous, writeable [m, n] array,
    updated in place. threads: None for mm_sgemm, or a Threads pool for mm_sgemm_mt (results
    bitwise equal for every thread count)."""
    a, b = _f32_2d(a, "a"), _f32_2d(b, "b")
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k:
        raise errors.error(errors.E_SHAPE, "op(a) is %dx%d, op(b) is %dx%d" % (m, k, kb, n))
    if c is None:
        c = np.zeros((m, n), np.float32)
    else:
        c = checked(c, "c", np.float32, (m, n), writable=True)
        if np.may_share_memory(c, a) or np.may_share_memory(c, b):
            raise errors.error(errors.E_INVALID_ARG, "c overlaps a or b")
    args = (int(bool(trans_a)), int(bool(trans_b)), m, n, k, float(alpha), pointer(a, f32p),
            a.shape[1], pointer(b, f32p), b.shape[1], float(beta), pointer(c, f32p), n)
    if threads is None:
        errors.check(lib.mm_sgemm(*args, None, 0))
        return c
    if not isinstance(threads, Threads):
        raise TypeError("threads must be a libmm.Threads, not %s" % type(threads).__name__)
    with threads._lock:
        owner = threads._live()  # held until the call returns
        errors.check(lib.mm_sgemm_mt(*args, owner.ptr, None, 0))
    return c


def _measure(measure):
    return lookup(constants.HIPPO_MEASURES, measure, "measure")


def hippo(measure, n):
    """The HiPPO matrices (A [n, n], B [n]) in float64 of measure "legs", "legt", "lagt" or
    "fout"."""
    n = check_int(n, c_int64, "n")
    if not 1 <= n <= 4096:
        raise errors.error(errors.E_RANGE, "n = %d: 1..4096" % n)
    A, B = np.empty((n, n)), np.empty(n)
    errors.check(lib.mm_hippo(_measure(measure), n, pointer(A, f64p), pointer(B, f64p)))
    return A, B


def hippo_rank_correction(measure, n, rank=1):
    """(P [rank, n], A + P^T P [n, n]) in float64: the low-rank correction that makes the HiPPO
    matrix normal (S4's DPLR form)."""
    n = check_int(n, c_int64, "n")
    rank = check_int(rank, c_int32, "rank")
    if not 1 <= n <= 4096 or not 1 <= rank <= 16:
        raise errors.error(errors.E_RANGE, "n = %d, rank = %d: n in 1..4096, rank in 1..16" %
                           (n, rank))
    P, normal = np.empty((rank, n)), np.empty((n, n))
    errors.check(lib.mm_hippo_rank_correction(_measure(measure), n, rank, pointer(P, f64p),
                                              pointer(normal, f64p)))
    return P, normal


def discretize(method, A, B, dt):
    """(Ad, Bd) of x' = A x + B u with step dt, in float64: method "forward_euler",
    "backward_euler", "bilinear" or "zoh". A is [n, n] (dense) or [n] (its diagonal); B [n]."""
    A = np.require(A, np.float64, ["C_CONTIGUOUS", "ALIGNED"])
    if A.ndim not in (1, 2) or (A.ndim == 2 and A.shape[0] != A.shape[1]) or A.size == 0:
        raise errors.error(errors.E_SHAPE, "A has shape %s; expected [n, n] or [n]" %
                           (A.shape,))
    n = A.shape[0]
    B = checked(np.require(B, np.float64, ["C_CONTIGUOUS", "ALIGNED"]), "B", np.float64, (n,))
    flags = constants.ENUMS["MM_DISC_DIAGONAL"] if A.ndim == 1 else 0
    Ad, Bd = np.empty_like(A), np.empty(n)
    errors.check(lib.mm_ssm_discretize(lookup(constants.DISCRETIZATIONS, method, "method"),
                                       flags, n, pointer(A, f64p), pointer(B, f64p),
                                       float(dt), pointer(Ad, f64p), pointer(Bd, f64p), None))
    return Ad, Bd


def s4d_init(variant, h, n):
    """S4D's deterministic initialisation ("lin" or "inv") for h rows and state size n (even):
    (log_A_real, A_imag), float32 [h, n/2] each, the SSM inputs of kind "s4d"."""
    h, n = check_int(h, c_int64, "h"), check_int(n, c_int64, "n")
    if h < 1 or n < 2 or n % 2:
        raise errors.error(errors.E_RANGE, "h = %d, n = %d: h >= 1, n even >= 2" % (h, n))
    re, im = np.empty((h, n // 2), np.float32), np.empty((h, n // 2), np.float32)
    errors.check(lib.mm_ssm_s4d_init(lookup(constants.S4D_INITS, variant, "variant"), h, n,
                                     pointer(re, f32p), pointer(im, f32p)))
    return re, im
