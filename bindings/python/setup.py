# SPDX-License-Identifier: MIT
"""Build step of the libmm Python package: compiles libmm.so.0 from the C sources into the
package, with the flags of the Makefile's shared build (only a C11 compiler is needed; $CC
picks it, default cc). The sources are the checkout's (../../src, ../../include) or, in an
sdist, the copy under csrc/ that the sdist step below adds.

LIBMM_USE_SYSTEM=1 builds a pure package without the library; it then loads an installed one
at run time ($LIBMM_LIBRARY, $LIBMM_LIBDIR, pkg-config, the system's search path).
LIBMM_BUILD_JOBS sets the number of parallel compiles (default: the CPU count).
"""
import concurrent.futures
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.command.sdist import sdist as _sdist

HERE = os.path.dirname(os.path.abspath(__file__))
USE_SYSTEM = os.environ.get("LIBMM_USE_SYSTEM", "") not in ("", "0")


def source_root():
    for root in (os.path.join(HERE, "csrc"), os.path.normpath(os.path.join(HERE, "..", ".."))):
        if os.path.isfile(os.path.join(root, "include", "mm.h")) and \
           os.path.isdir(os.path.join(root, "src", "core")):
            return root
    raise SystemExit("libmm: C sources not found (neither csrc/ nor ../../src); "
                     "set LIBMM_USE_SYSTEM=1 to use an installed libmm")


def header_define(root, name):
    with open(os.path.join(root, "include", "mm.h")) as f:
        m = re.search(r"^#define %s\s+(\d+)" % name, f.read(), re.M)
    return m.group(1)


def version(root):
    return ".".join(header_define(root, "MM_VERSION_" + p) for p in ("MAJOR", "MINOR", "PATCH"))


def c_sources(root):
    """Every library source: src/<floor>/*.c and src/kernels/<family>/*.c; src/mpi is the
    separate libmm_mpi."""
    srcs = glob.glob(os.path.join(root, "src", "*", "*.c"))
    srcs += glob.glob(os.path.join(root, "src", "kernels", "*", "*.c"))
    return sorted(s for s in srcs if os.sep + "mpi" + os.sep not in s)


def compile_one(cc, root, src, obj):
    # MMI_SYMVER: the library is linked with src/libmm.map, so it carries the same versioned
    # symbols as the Makefile's libmm.so.0 (mm_policy_opts_init@LIBMM_0.1 and @@LIBMM_0.2).
    flags = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-fPIC", "-fvisibility=hidden",
             "-ffunction-sections", "-fdata-sections", "-pthread", "-DMMI_SYMVER=1",
             "-ffp-contract=off",
             "-I" + os.path.join(root, "include")]
    # *_avx2.c / *_avx512.c hold the AVX2/FMA and AVX-512 paths, chosen at run time only on
    # CPUs that have them (the Makefile's AVX2_FLAGS and AVX512_FLAGS).
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
    if x86 and src.endswith("_avx2.c"):
        flags += ["-mavx2", "-mfma"]
    if x86 and src.endswith("_avx512.c"):
        flags += ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]
    subprocess.run(cc + flags + ["-c", src, "-o", obj], check=True)


def build_shared_library(root, out):
    cc = os.environ.get("CC", "cc").split()
    soname = "libmm.so." + header_define(root, "MM_ABI_VERSION")
    tmp = tempfile.mkdtemp(prefix="libmm-build-")
    try:
        srcs = c_sources(root)
        objs = [os.path.join(tmp, "%d.o" % i) for i in range(len(srcs))]
        jobs = int(os.environ.get("LIBMM_BUILD_JOBS", "0")) or os.cpu_count() or 1
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            list(pool.map(lambda so: compile_one(cc, root, *so), zip(srcs, objs)))
        subprocess.run(cc + ["-shared", "-Wl,-soname," + soname,
                             "-Wl,--version-script=" + os.path.join(root, "src", "libmm.map"),
                             "-Wl,--no-undefined", "-o", out] + objs + ["-lm", "-pthread"],
                       check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return soname


class build_py(_build_py):
    """The Python modules, then libmm.so.0 next to them (libmm/_lib.py loads it from there)."""

    def run(self):
        super().run()
        if USE_SYSTEM:
            return
        root = source_root()
        pkg = os.path.join(self.build_lib, "libmm")
        soname = "libmm.so." + header_define(root, "MM_ABI_VERSION")
        sys.stderr.write("libmm: compiling %s from %s\n" % (soname, root))
        build_shared_library(root, os.path.join(pkg, soname))


class sdist(_sdist):
    """Adds the C sources (src/, include/, LICENSE) under csrc/ so the sdist builds alone."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = source_root()
        dst = os.path.join(base_dir, "csrc")
        for sub in ("src", "include"):
            shutil.copytree(os.path.join(root, sub), os.path.join(dst, sub),
                            ignore=shutil.ignore_patterns("*.o", "mpi"))
        if os.path.isfile(os.path.join(root, "LICENSE")):
            shutil.copy(os.path.join(root, "LICENSE"), os.path.join(base_dir, "LICENSE"))


cmdclass = {"build_py": build_py, "sdist": sdist}
try:
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel

    class bdist_wheel(_bdist_wheel):
        """A platform wheel (it carries a shared library) usable by any Python 3: ctypes only."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = USE_SYSTEM

        def get_tag(self):
            python, abi, plat = super().get_tag()
            return ("py3", "none", plat) if not USE_SYSTEM else (python, abi, plat)

    cmdclass["bdist_wheel"] = bdist_wheel
except ImportError:  # no wheel package: sdist and plain installs still work
    pass

setup(version=version(source_root()), packages=["libmm"], cmdclass=cmdclass)
