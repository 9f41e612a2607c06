#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/spdx_check.sh — every tracked source file (C, C++, Python, shell, make, CMake, Meson,
# version scripts, pkg-config templates, fuzz dictionaries, .clang-format) carries an SPDX
# licence line near its top. Prints the files that do not; exit 1 if any.
status=0
for f in $(git ls-files '*.c' '*.h' '*.hpp' '*.cpp' '*.py' '*.sh' '*.mk' '*.map' Makefile .ci/run \
             '*CMakeLists.txt' '*.cmake.in' '*meson.build' '*.toml' '*.pc.in' '*.dict' \
             .clang-format '*MANIFEST.in'); do
    if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier:'; then
        echo "spdx-check: no SPDX-License-Identifier line in $f"
        status=1
    fi
done
[ $status -eq 0 ] && echo "spdx-check: every source file names its licence"
exit $status
