#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compiles and runs every C snippet of README.md and docs/*.md, so the documentation's code
is copy-paste ready.

A block opened with ```c is a complete program: it is compiled as C99 with -Wall -Wextra
-Werror -pedantic against include/ and lib/libmm.a, then run in an empty temporary folder (a
snippet that needs a file creates it there) and must exit with 0 within 60 s. A block opened
with ```c fragment is compiled only (-c, same flags): it must be a complete translation unit
but need not have a main. A block opened with ```cpp (the C++ header, docs/CPP.md) is compiled
the same way as C++17 with $CXX (default c++) and run. docs/API.md is skipped: its blocks are the header's declarations,
generated and checked by `make docs-check`.

Usage: tools/doc_snippets.py [--cc CC] [--cxx CXX] [--lib lib/libmm.a] [--libs "-lm -pthread"] [--list]
                             [FILE.md ...]
(--libs: what the static library needs at link time, the Makefile's LIB_LIBS: it includes
-lopenblas in a WITH_OPENBLAS=1 build.)
Standard library only; `make snippets-check` runs it (and `make check` runs that).
"""
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
         "-Wshadow", "-Wstrict-prototypes"]
CXXFLAGS = ["-std=c++17", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wshadow"]
OPEN = re.compile(r"^```(c|cpp)(?:\s+(fragment))?\s*$")


def snippets(path):
    """Yields (line number, is_fragment, is_cpp, code) for every C / C++ block of a markdown
    file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        yield start, m.group(2) == "fragment", m.group(1) == "cpp", "\n".join(lines[start:j]) + "\n"
        i = j + 1


def run(cmd, cwd=None, timeout=120):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return -1, "timed out after %d s" % timeout


def main():
    args = sys.argv[1:]
    cc = shlex.split(os.environ.get("CC", "cc"))
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    lib = "lib/libmm.a"
    libs = ["-lm", "-pthread"]
    listing = False
    files = []
    while args:
        a = args.pop(0)
        if a == "--cc":
            cc = shlex.split(args.pop(0))
        elif a == "--cxx":
            cxx = shlex.split(args.pop(0))
        elif a == "--lib":
            lib = args.pop(0)
        elif a == "--libs":
            libs = shlex.split(args.pop(0))
        elif a == "--list":
            listing = True
        else:
            files.append(a)
    if not files:
        files = ["README.md"] + sorted(f for f in glob.glob("docs/*.md")
                                       if os.path.basename(f) != "API.md")
    root = os.getcwd()
    include = os.path.join(root, "include")
    libpath = os.path.join(root, lib)
    failed = 0
    count = 0
    with tempfile.TemporaryDirectory(prefix="mm_snippets_") as tmp:
        for path in files:
            for line, fragment, cpp, code in snippets(path):
                count += 1
                name = "%s:%d" % (path, line)
                if listing:
                    print("%s %s%s" % (name, "C++ " if cpp else "", "fragment" if fragment else "program"))
                    continue
                work = os.path.join(tmp, "s%d" % count)
                os.mkdir(work)
                src = os.path.join(work, "snippet.cpp" if cpp else "snippet.c")
                with open(src, "w", encoding="utf-8") as f:
                    f.write(code)
                comp = cxx + CXXFLAGS if cpp else cc + FLAGS
                if fragment:
                    cmd = comp + ["-I" + include, "-c", src, "-o", src + ".o"]
                else:
                    cmd = comp + ["-I" + include, src, "-o", os.path.join(work, "a.out"),
                                  libpath] + libs
                rc, out = run(cmd)
                if rc != 0:
                    failed += 1
                    sys.stderr.write("%s: does not compile cleanly:\n%s\n" % (name, out))
                    continue
                if not fragment:
                    rc, out = run([os.path.join(work, "a.out")], cwd=work, timeout=60)
                    if rc != 0:
                        failed += 1
                        sys.stderr.write("%s: exited with %d:\n%s\n" % (name, rc, out))
                        continue
                print("snippet %s: ok (%s%s)" % (name, "C++, " if cpp else "",
                                                 "compiled" if fragment else "ran"))
    if listing:
        return 0
    if failed:
        sys.stderr.write("doc_snippets: %d of %d snippets failed\n" % (failed, count))
        return 1
    print("doc_snippets: %d snippets compile warning-free and run" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
