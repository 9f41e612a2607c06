#!/bin/sh
# SPDX-License-Identifier: MIT
# Prints the names of the functions include/mm.h declares with MM_API, sorted: the list the
# shared library must export, abi/symbols.txt must hold and src/libmm.map must name.
set -eu
hdr=${1:-include/mm.h}
grep -E '^MM_API' "$hdr" | sed -n 's/^[^(]*[ *]\(mm_[a-z0-9_]*\)(.*/\1/p' | sort -u
