#!/bin/sh
# SPDX-License-Identifier: MIT
# floors_check.sh — fails when a lower floor of src/ references a higher one (docs/ARCHITECTURE.md):
#   core < tensor < kernels < operators (attn, ssm, loss) < model, io < policy < mpi
# Floors of the same rank may use each other. Two checks:
#   1. every #include "..." of src/<floor>/ resolves to a file of the same or a lower floor;
#   2. every undefined symbol of an object in OBJDIR/<floor>/ (nm -u) that another object
#      defines is defined in the same or a lower floor.
# Usage: tools/floors_check.sh [OBJDIR]   (OBJDIR defaults to build/obj; check 2 needs it built)
set -eu
export LC_ALL=C
OBJDIR=${1:-build/obj}
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
    core) echo 0 ;; tensor) echo 1 ;; kernels) echo 2 ;; attn | ssm | loss) echo 3 ;;
    model | io) echo 4 ;; policy) echo 5 ;; mpi) echo 6 ;; *) echo 99 ;;
    esac
}

bad=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. includes ---------------------------------------------------------------------------
for f in $(find src -name '*.[ch]' | sort); do
    from=$(echo "$f" | cut -d/ -f2)
    rf=$(rank "$from")
    dir=$(dirname "$f")
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
        while read -r inc; do
            target=$(realpath -m --relative-to=. "$dir/$inc")
            case "$target" in
            src/*) ;;
            *) continue ;; # include/mm.h, system or test headers
            esac
            to=$(echo "$target" | cut -d/ -f2)
            if [ "$(rank "$to")" -gt "$rf" ]; then
                echo "floors-check: $f includes $inc ($to is above $from)"
                echo x >>"$tmp/bad"
            fi
        done
done

# ---- 2. symbols ----------------------------------------------------------------------------
if [ -d "$OBJDIR" ]; then
    # symbol -> floor of the object defining it
    find "$OBJDIR" -name '*.o' | sort | while read -r o; do
        fl=$(echo "${o#"$OBJDIR"/}" | cut -d/ -f1)
        nm --defined-only -g "$o" | awk -v fl="$fl" 'NF == 3 { print $3, fl }'
    done | sort -u >"$tmp/defs"
    find "$OBJDIR" -name '*.o' | sort | while read -r o; do
        fl=$(echo "${o#"$OBJDIR"/}" | cut -d/ -f1)
        rf=$(rank "$fl")
        nm -u "$o" | awk '{ print $NF }' | sort -u | join - "$tmp/defs" | while read -r sym to; do
            if [ "$(rank "$to")" -gt "$rf" ]; then
                echo "floors-check: ${o#"$OBJDIR"/} uses $sym, defined in $to (above $fl)"
                echo x >>"$tmp/bad"
            fi
        done
    done
else
    echo "floors-check: $OBJDIR not built; checked includes only"
fi

if [ -s "$tmp/bad" ]; then
    echo "floors-check: $(wc -l <"$tmp/bad") reference(s) point up a floor"
    exit 1
fi
echo "floors-check: every include and symbol reference points down or across"
