#!/bin/sh
# SPDX-License-Identifier: MIT
# avx512_emu.sh — run the test runner of the libmm tree in the current directory on an emulated
# CPU with AVX-512 F/DQ/BW/VL (Bochs), so the AVX-512 paths are tested on machines without it.
#
#   tools/avx512_emu.sh [FILTER...]      (from the top of a libmm tree; make check-avx512-emu)
#
# FILTER is the runner's substring filter; without one only `runner simd` runs, and '' runs
# every test (hours under emulation).
#
# Builds a static runner from the tree's debug objects (build/emu/), packs it with a tiny
# /init (tools/avx512_emu_init.c) into an initramfs, boots Debian's kernel from a syslinux ISO
# under Bochs, runs `runner simd` (which must report the AVX-512 path available) and then
# `runner FILTER` for each FILTER with MM_SIMD=avx512, prints the guest's serial output and
# exits with the runner's status. Each run has its own directory under build/emu/, so several
# runs (of one tree or of several) can go at once. Exit 2: a tool is missing, the boot failed
# or timed out, or the guest did not run the AVX-512 path.
#
# Needs: bochs bochsbios vgabios bochs-term isolinux syslinux-common xorriso cpio (Debian/
# Ubuntu names), and apt-get to fetch the kernel package once (cached in build/emu/kernel/, or
# set AVX512_EMU_KERNEL=/path/to/vmlinuz). Environment: AVX512_EMU_CPU (Bochs CPU model,
# default corei7_skylake_x), AVX512_EMU_MEGS (guest memory, default 512), AVX512_EMU_TIMEOUT
# (seconds, default 3600), AVX512_EMU_KEEP=1 (keep the run directory), AVX512_EMU_VERBOSE=1
# (the kernel's messages too), AVX512_EMU_APPEND (more kernel arguments), AVX512_EMU_FLAVOR
# (Debian kernel flavour, default cloud-amd64), AVX512_EMU_IPS (the emulated clock's
# instructions per second); MM_* variables of the caller reach the runner (MM_SIMD defaults to
# avx512).
set -eu

# The whole script is one function, read before it runs: editing the file cannot disturb a run.
main() {

fail() {
    echo "avx512-emu: $*" >&2
    exit 2
}

if [ ! -f include/mm.h ] || [ ! -f tests/runner.c ] || [ ! -f Makefile ]; then
    fail "run from the top of a libmm tree (no include/mm.h, tests/runner.c, Makefile here)"
fi
TOP=$(pwd)
case $0 in */*) HERE=$(cd "${0%/*}" && pwd) ;; *) HERE=$(pwd)/tools ;; esac
INIT_SRC="$HERE/avx512_emu_init.c"
[ -f "$INIT_SRC" ] || fail "missing $INIT_SRC"

CPU=${AVX512_EMU_CPU:-corei7_skylake_x}
MEGS=${AVX512_EMU_MEGS:-512}
IPS=${AVX512_EMU_IPS:-50000000}
# Debian's cloud kernel: LZ4-compressed (the generic one's XZ takes minutes to unpack under
# Bochs) and without most hardware drivers, so it boots faster.
FLAVOR=${AVX512_EMU_FLAVOR:-cloud-amd64}
QUIET="quiet loglevel=3"
[ "${AVX512_EMU_VERBOSE:-0}" = 1 ] && QUIET=""
AVX512_EMU_APPEND=${AVX512_EMU_APPEND:-}
TIMEOUT=${AVX512_EMU_TIMEOUT:-3600}
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
LDLINUX_C32=/usr/lib/syslinux/modules/bios/ldlinux.c32
BIOS=/usr/share/bochs/BIOS-bochs-latest
VGABIOS=/usr/share/vgabios/vgabios.bin

missing=
for t in bochs-bin xorriso cpio script "${CC:-cc}" strip; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
for f in "$ISOLINUX_BIN" "$LDLINUX_C32" "$BIOS" "$VGABIOS"; do
    [ -f "$f" ] || missing="$missing $f"
done
# The text display (package bochs-term); Debian's Bochs has no display-less build.
ls /usr/lib/*/bochs/plugins/libbx_term_gui.so* >/dev/null 2>&1 || missing="$missing bochs-term"
[ -z "$missing" ] || fail "missing:$missing
  install: apt-get install bochs bochsbios vgabios bochs-term isolinux syslinux-common xorriso cpio"

EMU=$TOP/build/emu
mkdir -p "$EMU"

# ---- kernel: Debian's generic amd64 kernel, fetched once ------------------------------------
kernel() {
    if [ -n "${AVX512_EMU_KERNEL:-}" ]; then
        [ -f "$AVX512_EMU_KERNEL" ] || fail "AVX512_EMU_KERNEL=$AVX512_EMU_KERNEL: no such file"
        KERNEL=$AVX512_EMU_KERNEL
        return
    fi
    KERNEL=$EMU/kernel/vmlinuz-$FLAVOR
    [ -f "$KERNEL" ] && return
    command -v apt-get >/dev/null 2>&1 ||
        fail "no kernel: set AVX512_EMU_KERNEL to an x86-64 Linux bzImage (no apt-get here)"
    pkg=$(apt-cache depends "linux-image-$FLAVOR" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
    [ -n "$pkg" ] || fail "no kernel: apt-cache knows no linux-image-$FLAVOR (run apt-get update?)"
    tmp=$EMU/kernel.tmp.$$
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$tmp" && apt-get download "$pkg" >download.log 2>&1) ||
        fail "no kernel: 'apt-get download $pkg' failed ($tmp/download.log)"
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' ||
        fail "no kernel: could not unpack $pkg"
    mkdir -p "$EMU/kernel"
    mv "$tmp"/boot/vmlinuz-* "$KERNEL.$$" && mv "$KERNEL.$$" "$KERNEL"
    rm -rf "$tmp"
}

# ---- the static runner and /init, built under a lock (runs of one tree share build/emu) -----
build() {
    ${MAKE:-make} --no-print-directory -j2 BDIR=build/emu build/emu/tests/runner \
        LIB_LIBS='-lm -pthread -static' >"$EMU/build.log" 2>&1 ||
        { tail -n 30 "$EMU/build.log" >&2; fail "building the static runner failed ($EMU/build.log)"; }
    # The objects the runner links (src/<floor>/*.c, src/kernels/<family>/*.c), for mm_build_info.
    objs=
    for s in src/*/*.c src/*/*/*.c; do
        o=$EMU/debug/obj/${s#src/}
        o=${o%.c}.o
        [ -f "$o" ] && objs="$objs $o"
    done
    # shellcheck disable=SC2086 # one word per object file
    ${CC:-cc} -std=c11 -O2 -Iinclude -static -o "$EMU/init" "$INIT_SRC" $objs -lm -pthread \
        2>>"$EMU/build.log" || fail "building the guest /init failed ($EMU/build.log)"
}

# The runner and /init of this run, copied out while the lock is held.
prepare() {
    build
    RUN=$(mktemp -d "$EMU/run.XXXXXX")
    cp "$EMU/tests/runner" "$RUN/runner.full"
    cp "$EMU/init" "$RUN/init.full"
}

kernel
if command -v flock >/dev/null 2>&1; then
    exec 9>"$EMU/.lock"
    flock 9
    prepare
    exec 9>&-
else
    prepare
fi
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "${BOCHS_PID:-}" ]; then kill "$BOCHS_PID" 2>/dev/null || true; fi
    if [ "${AVX512_EMU_KEEP:-0}" != 1 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- initramfs: /init, /runner, /args (one filter a line), /env ------------------------------
ROOT=$RUN/root
mkdir -p "$ROOT" "$RUN/iso/isolinux"
strip -o "$ROOT/runner" "$RUN/runner.full"
strip -o "$ROOT/init" "$RUN/init.full"
rm -f "$RUN/runner.full" "$RUN/init.full"
{
    echo simd
    for f in "$@"; do printf '%s\n' "$f"; done
} >"$ROOT/args"
env | grep '^MM_' | grep -v '^MM_SIMD=' >"$ROOT/env" || true
echo "MM_SIMD=${MM_SIMD:-avx512}" >>"$ROOT/env"
(cd "$ROOT" && find . | cpio -o -H newc --quiet) >"$RUN/iso/initrd.img" ||
    fail "cpio failed"

# ---- boot ISO (isolinux) ----------------------------------------------------------------------
cp "$KERNEL" "$RUN/iso/vmlinuz"
cp "$ISOLINUX_BIN" "$LDLINUX_C32" "$RUN/iso/isolinux/"
cat >"$RUN/iso/isolinux/isolinux.cfg" <<EOF
DEFAULT emu
PROMPT 0
TIMEOUT 0
LABEL emu
  KERNEL /vmlinuz
  APPEND initrd=/initrd.img console=ttyS0,115200 $QUIET panic=-1 mitigations=off lpj=4000000 tsc=reliable random.trust_cpu=on nosmp clearcpuid=321,323 rodata=off cryptomgr.notests $AVX512_EMU_APPEND
EOF
xorriso -as mkisofs -quiet -o "$RUN/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table "$RUN/iso" >"$RUN/xorriso.log" 2>&1 ||
    fail "xorriso failed ($RUN/xorriso.log)"
rm -rf "$RUN/iso" "$ROOT"

# ---- Bochs -----------------------------------------------------------------------------------
cat >"$RUN/bochsrc" <<EOF
megs: $MEGS
cpu: model=$CPU, count=1, ips=$IPS, reset_on_triple_fault=0
clock: sync=none, time0=local
romimage: file=$BIOS
vgaromimage: file=$VGABIOS
ata0-master: type=cdrom, path=$RUN/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$RUN/serial.log
display_library: term
log: $RUN/bochs.log
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
EOF
: >"$RUN/serial.log"
# Debian's Bochs has its debugger built in and stops at the first instruction: continue.
printf 'continue\nquit\n' >"$RUN/debugger.rc"
echo "avx512-emu: booting Bochs ($CPU) in $RUN"
start=$(date +%s)
# Its display is the text one (bochs-term), which wants a terminal: script(1) gives it one.
TERM=vt100 script -qfc "echo \$\$ >'$RUN/bochs.pid'; exec bochs-bin -q -f '$RUN/bochsrc' -rc '$RUN/debugger.rc'" \
    /dev/null >"$RUN/screen.log" 2>&1 </dev/null &
SCRIPT_PID=$!
while [ ! -s "$RUN/bochs.pid" ] && kill -0 "$SCRIPT_PID" 2>/dev/null; do sleep 0.2; done
BOCHS_PID=$(cat "$RUN/bochs.pid" 2>/dev/null || echo "$SCRIPT_PID")
tail -n +1 -f "$RUN/serial.log" --pid="$BOCHS_PID" &
TAIL_PID=$!
booted=
while kill -0 "$BOCHS_PID" 2>/dev/null; do
    if [ -z "$booted" ] && grep -q '^avx512-emu: cpu' "$RUN/serial.log" 2>/dev/null; then
        booted=$(($(date +%s) - start))
    fi
    if grep -q '^avx512-emu: exit [0-9]*' "$RUN/serial.log" 2>/dev/null; then
        sleep 1
        break
    fi
    if grep -q 'Kernel panic' "$RUN/serial.log" 2>/dev/null; then
        sleep 2
        break
    fi
    if [ $(($(date +%s) - start)) -ge "$TIMEOUT" ]; then
        echo "avx512-emu: timed out after ${TIMEOUT}s" >&2
        break
    fi
    sleep 1
done
kill "$BOCHS_PID" 2>/dev/null || true
wait "$SCRIPT_PID" 2>/dev/null || true
BOCHS_PID=
kill "$TAIL_PID" 2>/dev/null || true
wait "$TAIL_PID" 2>/dev/null || true
secs=$(($(date +%s) - start))
LOG=$RUN/serial.log
status=$(sed -n 's/^avx512-emu: exit \([0-9]*\).*/\1/p' "$LOG" | tr -d '\r' | tail -n 1)
if [ -z "$status" ]; then
    AVX512_EMU_KEEP=1
    fail "the guest did not finish (${secs}s; boot or runner failed): see $RUN/serial.log, $RUN/bochs.log"
fi
if ! tr -d '\r' <"$LOG" | grep -q '^ok simd_avx512$'; then
    AVX512_EMU_KEEP=1
    fail "the guest did not run the AVX-512 path (simd_avx512 did not pass): see $RUN/serial.log"
fi
if ! tr -d '\r' <"$LOG" | grep -q 'mm_build_info: simd=avx512 '; then
    [ "${MM_SIMD:-avx512}" != avx512 ] ||
        { AVX512_EMU_KEEP=1; fail "mm_build_info does not say simd=avx512: see $RUN/serial.log"; }
fi
echo "avx512-emu: done in ${secs}s (${booted:-?}s to boot Bochs $CPU and start /init), runner status $status"
exit "$status"
}
main "$@"
