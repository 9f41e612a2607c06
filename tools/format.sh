#!/bin/sh
# SPDX-License-Identifier: MIT
# Formats (or with --check, lists the files clang-format would change) every C/C++ source of
# the repository with .clang-format. Generated test vectors (tests/vectors/) are data, not code,
# and stay as their scripts wrote them. clang-format 14 is the pinned version: another major
# version formats some constructs differently.
set -eu
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-clang-format-14}
command -v "$CF" >/dev/null 2>&1 || { echo "format: $CF not found (apt-get install clang-format-14)"; exit 1; }
files=$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | grep -v '^tests/vectors/')
if [ "${1:-}" = "--check" ]; then
    bad=0
    for f in $files; do
        if ! "$CF" --style=file "$f" | cmp -s - "$f"; then echo "format-check: $f"; bad=1; fi
    done
    [ $bad -eq 0 ] && echo "format-check: every source is formatted ($CF)"
    exit $bad
fi
for f in $files; do "$CF" --style=file -i "$f"; done
echo "format: done ($CF)"
