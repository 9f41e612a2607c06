#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/integration/run.sh CC VERSION — `make check-integration`: builds and runs examples/hello.c
# as a consumer of libmm in each supported way. Run from the repository root after `make`.
#   1. pkg-config on a staged install moved to another prefix (--define-prefix: relocatable .pc);
#      with mpicc, a WITH_MPI=1 install carries libmm_mpi, mm_mpi.h and libmm_mpi.pc
#   2. CMake find_package on a staged install: libmm::mm, libmm::mm_shared, libmm::mm_static
#   3. CMake add_subdirectory of this tree (static and BUILD_SHARED_LIBS=ON)
#   4. Meson subproject (this tree linked at subprojects/libmm)
# A missing tool (cmake; meson or ninja) is reported as SKIPPED for its part, never as passed.
set -eu
CC=$1
VER=$2
ROOT=$(pwd)
W=$ROOT/build/integration
HELLO=$ROOT/examples/hello.c
rm -rf "$W"
mkdir -p "$W"
log() { printf 'check-integration: %s\n' "$*"; }

# ---- 1. relocatable pkg-config -----------------------------------------------------------------
make --no-print-directory install DESTDIR="$W/stage" PREFIX=/opt/libmm-int >"$W/install.log"
mkdir -p "$W/moved"
mv "$W/stage/opt/libmm-int" "$W/moved/prefix"
PC=$W/moved/prefix/lib/pkgconfig
grep -q '^libdir=${prefix}/lib$' "$PC/libmm.pc" || { log "libmm.pc libdir is not \${prefix}-relative"; exit 1; }
flags=$(PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$PC" pkg-config --define-prefix --cflags --libs libmm)
case $flags in *"$W/moved/prefix/lib"*) ;; *) log "pkg-config --define-prefix gave: $flags"; exit 1;; esac
# shellcheck disable=SC2086
$CC -std=c99 -o "$W/hello_pc" "$HELLO" $flags -Wl,-rpath,"$W/moved/prefix/lib"
"$W/hello_pc" >/dev/null
log "pkg-config --define-prefix on a moved install: ok"

# ---- 1b. WITH_MPI=1 installs libmm_mpi, mm_mpi.h and libmm_mpi.pc (when mpicc exists) --------
if command -v mpicc >/dev/null 2>&1; then
    make --no-print-directory install WITH_MPI=1 DESTDIR="$W/mpi" PREFIX=/opt/libmm-int >"$W/mpi.log"
    for f in include/mm_mpi.h lib/libmm_mpi.a lib/libmm_mpi.so lib/libmm_mpi.so.$VER lib/pkgconfig/libmm_mpi.pc; do
        [ -e "$W/mpi/opt/libmm-int/$f" ] || { log "WITH_MPI=1 install lacks $f"; exit 1; }
    done
    libs=$(PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$W/mpi/opt/libmm-int/lib/pkgconfig" pkg-config --libs libmm_mpi)
    libs=$(echo $libs)
    [ "$libs" = "-L/opt/libmm-int/lib -lmm_mpi -lmm" ] || { log "pkg-config --libs libmm_mpi gave: $libs"; exit 1; }
    make --no-print-directory uninstall WITH_MPI=1 DESTDIR="$W/mpi" PREFIX=/opt/libmm-int >>"$W/mpi.log"
    [ -z "$(find "$W/mpi" -type f)" ] || { log "uninstall left files in $W/mpi"; exit 1; }
    log "make install WITH_MPI=1 (libmm_mpi, mm_mpi.h, libmm_mpi.pc) and uninstall: ok"
else
    log "WITH_MPI=1 install: SKIPPED (mpicc not installed)"
fi

# ---- 2, 3. CMake -------------------------------------------------------------------------------
if command -v cmake >/dev/null 2>&1; then
    P=$W/moved/prefix
    for mode in default static; do
        b=$W/cmake_find_$mode
        extra=""
        [ $mode = static ] && extra="-DLIBMM_USE_STATIC=ON"
        # shellcheck disable=SC2086
        cmake -S tests/integration/cmake_find -B "$b" -DCMAKE_PREFIX_PATH="$P" -DHELLO_C="$HELLO" \
            -DCMAKE_C_COMPILER="$CC" $extra >"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        cmake --build "$b" >>"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        for exe in hello_default hello_shared hello_static; do "$b/$exe" >/dev/null; done
    done
    # the static target really is static, the shared one really loads libmm.so
    if ldd "$W/cmake_find_static/hello_default" | grep -q libmm; then log "LIBMM_USE_STATIC linked libmm.so"; exit 1; fi
    ldd "$W/cmake_find_default/hello_shared" | grep -q "libmm.so.0 => $P/lib" || { log "hello_shared does not load $P/lib/libmm.so.0"; exit 1; }
    log "CMake find_package (libmm::mm, mm_shared, mm_static, LIBMM_USE_STATIC): ok"
    for shared in OFF ON; do
        b=$W/cmake_subdir_$shared
        cmake -S tests/integration/cmake_subdir -B "$b" -DLIBMM_SOURCE_DIR="$ROOT" -DHELLO_C="$HELLO" \
            -DBUILD_SHARED_LIBS=$shared -DCMAKE_C_COMPILER="$CC" >"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        cmake --build "$b" -j2 >>"$b.log" 2>&1 || { cat "$b.log"; exit 1; }
        "$b/hello" >/dev/null
    done
    log "CMake add_subdirectory (static and shared): ok"
else
    log "CMake: SKIPPED (cmake not installed)"
fi

# ---- 4. Meson subproject -----------------------------------------------------------------------
mv_ver=$(sed -n "s/^project('libmm', 'c', version: '\([^']*\)'.*/\1/p" meson.build)
[ "$mv_ver" = "$VER" ] || { log "meson.build says version '$mv_ver', mm.h says $VER"; exit 1; }
abi=$(sed -n 's/^#define MM_ABI_VERSION[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/mm.h)
mv_so=$(sed -n "s/.*soversion: '\([0-9]*\)'.*/\1/p" meson.build)
[ -n "$abi" ] && [ "$mv_so" = "$abi" ] ||
    { log "meson.build says soversion '$mv_so', mm.h's MM_ABI_VERSION is '$abi'"; exit 1; }
if command -v meson >/dev/null 2>&1 && command -v ninja >/dev/null 2>&1; then
    m=$W/meson
    mkdir -p "$m/src/subprojects"
    cp tests/integration/meson/meson.build "$HELLO" "$m/src/"
    ln -s "$ROOT" "$m/src/subprojects/libmm"
    CC=$CC meson setup "$m/build" "$m/src" >"$m/setup.log" 2>&1 || { cat "$m/setup.log"; exit 1; }
    ninja -C "$m/build" >"$m/build.log" 2>&1 || { cat "$m/build.log"; exit 1; }
    "$m/build/hello" >/dev/null
    log "Meson subproject: ok"
else
    log "Meson subproject: SKIPPED (meson or ninja not installed)"
fi
rm -rf "$W/stage" "$W/moved" "$W/mpi"
