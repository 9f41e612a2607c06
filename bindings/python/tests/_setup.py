# SPDX-License-Identifier: MIT
"""Shared by the binding tests: makes `import libmm` work from the source tree and tells the
runner to skip (not fail) when numpy is missing."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
# The checkout whose reference files (include/mm.h, tests/test_layout.c) the tests compare the
# binding with: $LIBMM_SOURCE_DIR when the tests run from a copy against an installed package
# (make check-python-wheel), else the tree these tests sit in.
REPO = os.environ.get("LIBMM_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", ".."))

try:
    import numpy  # noqa: F401
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False

needs_numpy = unittest.skipUnless(HAVE_NUMPY, "numpy is not installed")


# ---- crash repros in a child interpreter ---------------------------------------------------------
import subprocess  # noqa: E402
import textwrap  # noqa: E402

PACKAGE_DIR = os.path.dirname(HERE)

# Helpers the child code may use. at_page_end(values, dtype) places an array so that its last
# byte is the last one before an inaccessible page: C reading one element past it faults at
# once, so a binding that lets libmm read past an array crashes the child deterministically.
# read_only(shape) gives a zeroed float32 array on a read-only mapping: a write faults.
_PRELUDE = '''
import ctypes, gc, mmap, sys, weakref
import numpy as np
import libmm
_libc = ctypes.CDLL(None)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_maps = []
def at_page_end(values, dtype=np.float32):
    a = np.asarray(values, dtype)
    page = mmap.PAGESIZE
    m = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert _libc.mprotect(base + page, page, 0) == 0  # PROT_NONE
    arr = np.frombuffer(m, a.dtype, count=a.size, offset=page - a.nbytes).reshape(a.shape)
    arr[...] = a
    _maps.append(m)
    return arr
def read_only(shape):
    m = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ)
    _maps.append(m)
    arr = np.frombuffer(m, np.float32, count=int(np.prod(shape))).reshape(shape)
    assert not arr.flags.writeable
    return arr
def refused(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s%r was accepted (expected %s)" % (getattr(fn, "__name__", fn), args,
                                                               exc.__name__))
'''


def run_isolated(test, code, timeout=120):
    """Runs code (after _PRELUDE) in a child interpreter and fails test unless it exits 0 and
    prints OK last. A regression that crashes (SIGSEGV, SIGBUS, abort) fails this test instead
    of killing the test runner."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    src = _PRELUDE + textwrap.dedent(code) + "\nprint('OK')\n"
    r = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode < 0:
        test.fail("the child crashed with signal %d\n%s" % (-r.returncode, r.stderr[-3000:]))
    test.assertEqual(r.returncode, 0, r.stderr[-3000:])
    test.assertEqual(r.stdout.strip().splitlines()[-1:], ["OK"], r.stdout[-3000:])
