# SPDX-License-Identifier: MIT
# libmm — the only build system. `make` builds lib/libmm.a and lib/libmm.so.X.Y.Z.
# User CFLAGS are respected; the library adds the flags it needs in LIB_CFLAGS.
#
#   make                      static + shared library, pkgconfig/libmm.pc
#   make WITH_OPENBLAS=1      GEMM through OpenBLAS (libopenblas-dev)
#   make check                all tests; ends with "N passed, N failed" (one line per step;
#                             the full output goes to build/check.log)
#   make V=1 ...              show every compiler command (quiet by default)
#   make -j1 ...              build serially (make uses one job per CPU unless told otherwise)
#   make demo                 the main example
#   make kimi                 Kimi k1.5 RL end to end (examples/kimi_rl.c)
#   make bench                benchmark tables (median CPU times, peers side by side)
#   make bench-report         one bench run written into docs/BENCHMARKS.md
#   make bench-ggml GGML_DIR=  libmm against ggml's operators (a ggml source + build of yours)
#   make AVX2_FLAGS=-DMMI_NO_AVX2   portable kernels only; MM_SIMD=portable|avx2|avx512 picks
#                             a path at run time among those compiled and supported
#   make check-asan | check-valgrind | symbols-check | abi-check | abi-dump | install-check
#   make check-avx512-emu [FILTER=substring]   the tests on an emulated AVX-512 CPU (Bochs; slow)
#   make floors-check         no floor of src/ references a floor above it
#   make format | format-check  clang-format 14 over every C/C++ source (CI runs the check)
#   make install | uninstall  (PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR)

# ---- version, read from the one place it is written -------------------------------------------
VMAJOR := $(shell sed -n 's/^\#define MM_VERSION_MAJOR[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/mm.h)
VMINOR := $(shell sed -n 's/^\#define MM_VERSION_MINOR[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/mm.h)
VPATCH := $(shell sed -n 's/^\#define MM_VERSION_PATCH[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/mm.h)
ABI    := $(shell sed -n 's/^\#define MM_ABI_VERSION[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/mm.h)
VER    := $(VMAJOR).$(VMINOR).$(VPATCH)
ifeq ($(strip $(VMAJOR)),)
$(error could not read MM_VERSION_MAJOR from include/mm.h)
endif
ifeq ($(strip $(VMINOR))$(strip $(VPATCH))$(strip $(ABI)),)
$(error could not read the version from include/mm.h)
endif

# ---- tools and flags ---------------------------------------------------------------------------
CC      ?= cc
CXX     ?= c++
AR      ?= ar
LD      ?= ld
OBJCOPY ?= objcopy
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

# ---- everyday build UX: parallel by default, quiet commands ------------------------------------
# make runs one job per CPU unless the command line (-jN, -j1 for serial) or a MAKEFLAGS
# environment variable says otherwise; sub-makes share the jobserver; `make clean ...` stays
# serial so `make clean all` cannot race. (GNU make 4.3 does not show a command-line -j in
# MAKEFLAGS while parsing, but a command-line -j overrides this default.)
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
ifeq ($(MAKELEVEL)$(filter clean,$(MAKECMDGOALS))$(findstring j,$(shell printf '%s' "$$MAKEFLAGS")),0)
MAKEFLAGS += -j$(JOBS)
endif
# Compile and link commands print one short line ("  CC  src/core/status.c"); V=1 prints them.
V ?= 0
ifeq ($(V),1)
Q :=
say = @:
else
Q := @
say = @printf '  %-5s %s\n' '$(1)' '$(2)'
endif

WARN       := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# Function and data sections let a static link drop what it does not call (-Wl,--gc-sections;
# make check-static-size measures it).
# -ffp-contract=off: no fused multiply-adds the source does not write (src/core/mmi.h says why)
LIB_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -fPIC -fvisibility=hidden \
              -ffunction-sections -fdata-sections -Iinclude -pthread -DMMI_SYMVER=1 \
              -ffp-contract=off
LIB_LIBS   := -lm -pthread
PC_PRIVATE := -lm -pthread
BUILD_INFO_BLAS := none
ifeq ($(WITH_OPENBLAS),1)
LIB_CFLAGS += -DMM_HAVE_OPENBLAS $(shell pkg-config --cflags openblas 2>/dev/null)
OPENBLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
LIB_LIBS   += $(OPENBLAS_LIBS)
PC_PRIVATE += $(OPENBLAS_LIBS)
endif
# Files named *_avx2.c hold the AVX2/FMA paths. The kernels' dispatch (src/kernels/simd) uses
# them only when they were compiled for AVX2 and the CPU and OS run them. Built without these
# flags (`make AVX2_FLAGS=`, or a build system using one set of flags for src/), GCC still
# compiles them for AVX2 through a target pragma (simd/mmi_avx2_target.h); other compilers and
# other architectures leave them empty (guarded by __AVX2__/__FMA__) and the portable path
# runs. AVX2_FLAGS=-DMMI_NO_AVX2 builds the portable path only.
ifneq ($(filter x86_64% i686% i386%,$(shell $(CC) -dumpmachine 2>/dev/null)),)
AVX2_FLAGS := -mavx2 -mfma
AVX512_FLAGS := -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
else
AVX2_FLAGS :=
AVX512_FLAGS :=
endif
# Files named *_avx512.c hold the AVX-512 F/DQ/BW/VL paths, used when compiled and the CPU and
# OS run them (opmask and zmm state saved). A portable-only build (-DMMI_NO_AVX2) has none;
# AVX512_FLAGS=-DMMI_NO_AVX512 leaves out only them.
ifneq ($(findstring MMI_NO_AVX2,$(AVX2_FLAGS)),)
AVX512_FLAGS := -DMMI_NO_AVX512
endif

# ---- sources -----------------------------------------------------------------------------------
# The kernels floor is split into families (src/kernels/<family>/); the other floors are flat.
FLOORS  := core tensor kernels attn ssm loss model io policy
KERNEL_FAMILIES := gemm elementwise attn ssm loss simd
SRCS    := $(sort $(foreach f,$(FLOORS),$(wildcard src/$(f)/*.c)) \
             $(foreach k,$(KERNEL_FAMILIES),$(wildcard src/kernels/$(k)/*.c)))
BDIR    ?= build
OBJS    := $(patsubst src/%.c,$(BDIR)/obj/%.o,$(SRCS))
# The same sources compiled with -DMMI_DEBUG (MMI_ASSERT on the floor contracts compiled in):
# what the test runner links. lib/libmm.a and libmm.so are built from OBJS, without it.
DBG_OBJS := $(patsubst src/%.c,$(BDIR)/debug/obj/%.o,$(SRCS))
HDRS    := include/mm.h $(wildcard src/*/*.h src/kernels/*/*.h)

STATIC  := lib/libmm.a
SHARED  := lib/libmm.so.$(VER)
SONAME  := libmm.so.$(ABI)

TEST_SRCS  := $(wildcard tests/test_*.c) tests/runner.c
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c) bench/bench_main.c) bench/peak.c

.PHONY: all lib static shared check demo kimi blip bench check-asan check-valgrind symbols-check \
        abi-check abi-dump install-check install uninstall clean examples header-check docs docs-check check-torch \
        check-build check-cpp check-safetensors check-avx512-emu \
        bench-report bench-ggml floors-check spdx-check check-static-size format format-check

all: $(STATIC) $(SHARED) pkgconfig/libmm.pc

lib: all
static: $(STATIC)
shared: $(SHARED)

# Flags one source file needs beyond LIB_CFLAGS (its instruction set).
SRC_FLAGS = $(if $(findstring _avx2.c,$<),$(AVX2_FLAGS))$(if $(findstring _avx512.c,$<),$(AVX512_FLAGS))

$(BDIR)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(LIB_CFLAGS) $(SRC_FLAGS) $(CFLAGS) -c $< -o $@

$(BDIR)/debug/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(LIB_CFLAGS) -DMMI_DEBUG $(SRC_FLAGS) $(CFLAGS) -c $< -o $@

# Static archive: one relocatable object with every hidden symbol made local, so only mm_*
# stay global and internal names never clash with a host's.
$(STATIC): $(OBJS)
	@mkdir -p lib
	$(LD) -r -o $(BDIR)/mm_all.o $(OBJS)
	$(OBJCOPY) --localize-hidden $(BDIR)/mm_all.o
	rm -f $@ && $(AR) rcs $@ $(BDIR)/mm_all.o

$(SHARED): $(OBJS) src/libmm.map
	@mkdir -p lib
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libmm.map -Wl,--no-undefined \
	  -Wl,-z,relro,-z,now $(LDFLAGS) -o $@ $(OBJS) $(LIB_LIBS)
	ln -sf libmm.so.$(VER) lib/$(SONAME)
	ln -sf $(SONAME) lib/libmm.so

# The .pc file names the install folders, so install writes it afresh for its own PREFIX/LIBDIR;
# pkgconfig/libmm.pc (made by `all`) shows what a default install would contain.
# libdir and includedir are written relative to ${prefix} when they lie under PREFIX, so
# `pkg-config --define-prefix` (or editing prefix=) relocates the whole install.
PC_REL = $(patsubst $(PREFIX)/%,$${prefix}/%,$(patsubst $(PREFIX),$${prefix},$(1)))
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call PC_REL,$(LIBDIR))|' \
  -e 's|@INCLUDEDIR@|$(call PC_REL,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VER)|' \
  -e 's|@LIBS_PRIVATE@|$(PC_PRIVATE)|'
pkgconfig/libmm.pc: pkgconfig/libmm.pc.in include/mm.h Makefile
	$(PC_SED) $< > $@

# ---- tests -------------------------------------------------------------------------------------
# The runner links the library objects directly so white-box tests reach mmi_ kernels, and
# links the MMI_DEBUG build of them so every floor contract (MMI_ASSERT) is checked while the
# tests run; the examples and the FFI-style test link lib/libmm.a and lib/libmm.so like a user
# does.
TEST_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -Isrc -pthread -ffp-contract=off
$(BDIR)/tests/runner: $(TEST_SRCS) $(wildcard tests/*.h tests/vectors/*.h) $(DBG_OBJS) $(HDRS)
	@mkdir -p $(BDIR)/tests
	$(call say,LINK,$@)
	$(Q)$(CC) $(TEST_CFLAGS) -DMMI_DEBUG $(CFLAGS) -o $@ $(TEST_SRCS) $(DBG_OBJS) $(LIB_LIBS)

EXAMPLES := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,build/examples/%,$(EXAMPLES))
EXAMPLE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -Iexamples
build/examples/%: examples/%.c $(STATIC) $(wildcard examples/*.h) $(wildcard examples/envs/*.c) $(wildcard examples/envs/*.h)
	@mkdir -p build/examples
	$(call say,LINK,$@)
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) -o $@ $< $(wildcard examples/envs/*.c) $(STATIC) $(LIB_LIBS)

examples: $(EXAMPLE_BINS)

# The header must compile as C99 and as C++ with every warning an error.
header-check:
	@mkdir -p build/tests
	printf '#include "mm.h"\nint main(void){return mm_version_number()==0;}\n' > build/tests/hc.c
	$(CC) -std=c99 -pedantic $(WARN) -Werror -Iinclude -fsyntax-only build/tests/hc.c
	printf '#include "mm.h"\nint main(){return mm_version_number()==0;}\n' > build/tests/hc.cpp
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only build/tests/hc.cpp
	printf '#include "mm.hpp"\nint main(){return mm::version()==nullptr;}\n' > build/tests/hpp.cpp
	$(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only build/tests/hpp.cpp

# `make check` (tools/run_check.sh) builds check-build, then runs each step with its output in
# build/check.log and one line per step on the terminal: the shared-library smoke test, the
# hello example, the C++ header test, the fuzz corpus replay (an ASan + UBSan build), the Python
# bindings and the unit-test runner. It ends with "N passed, N failed" (the runner's tests plus
# one per other step) and names whatever failed.
check-build: all build/tests/runner examples header-check build/tests/shared_smoke \
             build/tests/test_hpp
check:
	@MAKE='$(MAKE)' V='$(V)' tools/run_check.sh

# ---- C++ header (include/mm.hpp) ----------------------------------------------------------------
# tests/cpp/test_hpp.cpp against lib/libmm.a, as C++17 with every warning an error.
CXXFLAGS ?= -O2 -g
CXX_TEST_FLAGS := -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude
build/tests/test_hpp: tests/cpp/test_hpp.cpp include/mm.hpp include/mm.h $(STATIC)
	@mkdir -p build/tests
	$(call say,CXX,$<)
	$(Q)$(CXX) $(CXX_TEST_FLAGS) $(CXXFLAGS) -o $@ $< $(STATIC) $(LIB_LIBS)

check-cpp: build/tests/test_hpp
	build/tests/test_hpp

# A program linked against the shared library (through its soname link) calling the public API.
build/tests/shared_smoke: tests/shared_smoke.c $(SHARED)
	@mkdir -p build/tests
	$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) -o $@ $< -Llib -lmm -Wl,-rpath,'$$ORIGIN/../../lib'

# PyTorch <-> libmm file round trips (tools/torch_io.py), and the check that the bench's fast
# PyTorch attention and CLIP forms equal the naive ones; skips when torch is missing.
TORCH_PY ?= /usr/bin/python3
check-torch: $(STATIC)
	$(TORCH_PY) tests/test_torch_io.py
	@if $(TORCH_PY) -c 'import torch' 2>/dev/null; then cd bench && $(TORCH_PY) peer_torch_attn.py check && \
	  $(TORCH_PY) peer_torch_loss.py check; else echo "torch not found: bench peer form check skipped"; fi
	$(MAKE) --no-print-directory check-safetensors

# ---- the official safetensors package (tests/test_safetensors_pkg.py) ---------------------------
# A virtual environment over TORCH_PY's packages (torch, numpy) with safetensors from the Python
# package index, made once under build/. When the environment or the install fails (no
# python3-venv, no network), the target says why and succeeds without testing.
ST_VENV := build/venv-safetensors
check-safetensors: $(STATIC)
	@if [ ! -x $(ST_VENV)/bin/python ] || ! $(ST_VENV)/bin/python -c 'import safetensors' 2>/dev/null; then \
	  rm -rf $(ST_VENV); \
	  if ! $(TORCH_PY) -m venv --system-site-packages $(ST_VENV) >build/venv-safetensors.log 2>&1; then \
	    echo "check-safetensors: SKIPPED: '$(TORCH_PY) -m venv' failed (install python3-venv; build/venv-safetensors.log)"; exit 0; fi; \
	  if ! $(ST_VENV)/bin/pip install -q safetensors >>build/venv-safetensors.log 2>&1; then \
	    echo "check-safetensors: SKIPPED: 'pip install safetensors' failed (offline? build/venv-safetensors.log)"; exit 0; fi; \
	fi; \
	$(ST_VENV)/bin/python tests/test_safetensors_pkg.py

demo: build/examples/demo
	build/examples/demo

# Kimi k1.5 RL end to end (examples/kimi_rl.c, docs/KIMI.md): exits non-zero below its goals.
kimi: build/examples/kimi_rl
	build/examples/kimi_rl

# BLIP's ITC + ITM + LM and CapFilt on synthetic pairs (issue 19; ~1 minute on 2 cores)
blip: build/examples/blip_capfilt
	build/examples/blip_capfilt

# ---- packaging: dead-stripped static link (issue 18) ---------------------------------------------
# README's one-call example (tests/static_size.c: mm_sgemm + mm_tensor_wrap) linked statically
# against lib/libmm.a with -Wl,--gc-sections and stripped must stay under STATIC_SIZE_MAX bytes
# (measured 92 KB with GCC 12 on x86-64, against 494 KB before function sections; what remains
# is mostly the SIMD dispatch tables, which reference every family's kernels). docs/INSTALL.md.
STATIC_SIZE_MAX ?= 131072
check-static-size: $(STATIC)
	@mkdir -p build/tests
	$(CC) -std=c99 $(WARN) -O2 -Iinclude -o build/tests/static_size tests/static_size.c $(STATIC) \
	  $(LIB_LIBS) -Wl,--gc-sections -s
	build/tests/static_size
	@sz=$$(wc -c < build/tests/static_size); echo "check-static-size: $$sz bytes (limit $(STATIC_SIZE_MAX))"; \
	  test $$sz -le $(STATIC_SIZE_MAX) || { echo "check-static-size: the dead-stripped example grew past the limit"; exit 1; }

# ---- sanitizers and valgrind -------------------------------------------------------------------
# The sanitizer runners link their BDIR's debug objects (MMI_DEBUG on), like the plain runner.
# TEST_SHARDS runners (default: one per core) split the tests between them (tools/run_shards.sh).
TEST_SHARDS ?= $(JOBS)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
check-asan:
	$(MAKE) --no-print-directory BDIR=build/asan build/asan/tests/runner \
	  CFLAGS='-O1 -g $(SAN)' LIB_LIBS='$(LIB_LIBS) $(SAN)'
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  tools/run_shards.sh $(TEST_SHARDS) build/asan/tests/runner

check-valgrind: $(BDIR)/tests/runner
	MM_TEST_QUICK=1 tools/run_shards.sh $(TEST_SHARDS) valgrind --quiet --error-exitcode=1 \
	  --leak-check=full --errors-for-leak-kinds=definite,indirect $(BDIR)/tests/runner

# ---- the AVX-512 path on a CPU without it -------------------------------------------------------
# The runner, linked statically from build/emu/'s debug objects, boots under Bochs on an emulated
# AVX-512 CPU (tools/avx512_emu.sh; docs/ARCHITECTURE.md) and runs `runner simd`, then
# `runner $(FILTER)` with MM_SIMD=avx512. Minutes per run, so not part of `make check`.
FILTER ?=
check-avx512-emu:
	MAKE='$(MAKE)' sh tools/avx512_emu.sh $(if $(FILTER),'$(FILTER)')

# ---- symbols and ABI ---------------------------------------------------------------------------
# Three lists must agree: the MM_API functions of include/mm.h, abi/symbols.txt and what
# lib/libmm.so exports; libmm.a may define no global symbol outside mm_*; and include/mm.hpp
# names every function (a wrapper, or a comment saying why there is none).
symbols-check: $(SHARED) $(STATIC)
	tools/api_symbols.sh > build/header_symbols.txt
	nm -D --defined-only $(SHARED) | awk '{print $$3}' | sed 's/@.*//' | grep -v '^LIBMM_' \
	  | sort -u > build/symbols.txt
	diff -u abi/symbols.txt build/header_symbols.txt
	diff -u abi/symbols.txt build/symbols.txt
	@bad=$$(nm --defined-only -g $(STATIC) | awk 'NF==3 {print $$3}' | grep -v '^mm_' || true); \
	  if [ -n "$$bad" ]; then echo "libmm.a exports non-mm_ symbols:"; echo "$$bad"; exit 1; fi
	@missing=$$(for f in $$(cat abi/symbols.txt); do grep -qw "$$f" include/mm.hpp || echo "$$f"; done); \
	  if [ -n "$$missing" ]; then echo "include/mm.hpp neither wraps nor names (with the reason) these functions:"; \
	    echo "$$missing"; exit 1; fi
	@echo "symbols-check: header, abi/symbols.txt and exported symbols agree; mm.hpp covers every function"

# The baseline must not name the build machine's folders: comp-dir-path is reset to '.'.
abi-dump: $(SHARED)
	abidw --headers-dir include --out-file abi/libmm.abi $(SHARED)
	sed -i "s|comp-dir-path='[^']*'|comp-dir-path='.'|" abi/libmm.abi

# Report-only until 1.0 (MM_ABI_VERSION 0): prints the differences, fails only if the tools fail
# or the library lacks debug info.
abi-check: $(SHARED)
	readelf -S --wide $(SHARED) | grep -q '\.debug_info' || { echo "abi-check: no DWARF in $(SHARED) (build with -g)"; exit 1; }
	abidiff --no-added-syms --headers-dir1 include --headers-dir2 include abi/libmm.abi $(SHARED); \
	  rc=$$?; echo "abi-check: abidiff --no-added-syms exit $$rc (report-only until 1.0)"; \
	  if [ $$((rc & 3)) -ne 0 ]; then exit 1; fi

# ---- install -----------------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/mm.h $(DESTDIR)$(INCLUDEDIR)/mm.h
	install -m 644 include/mm.hpp $(DESTDIR)$(INCLUDEDIR)/mm.hpp
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libmm.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libmm.so.$(VER)
	ln -sf libmm.so.$(VER) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmm.so
	$(PC_SED) pkgconfig/libmm.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libmm.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/libmm.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/mm.h $(DESTDIR)$(INCLUDEDIR)/mm.hpp $(DESTDIR)$(LIBDIR)/libmm.a \
	  $(DESTDIR)$(LIBDIR)/libmm.so.$(VER) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libmm.so $(DESTDIR)$(PKGCONFIGDIR)/libmm.pc

# Stage an install (with a prefix that only exists under DESTDIR), then build and run
# examples/hello.c through pkg-config, static and shared.
install-check:
	rm -rf build/stage
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/build/stage PREFIX=/opt/libmm-check
	PKG_CONFIG_SYSROOT_DIR=$(CURDIR)/build/stage \
	PKG_CONFIG_LIBDIR=$(CURDIR)/build/stage/opt/libmm-check/lib/pkgconfig \
	  sh -c 'pkg-config --validate libmm && \
	    $(CC) -std=c99 -o build/stage/hello examples/hello.c $$(pkg-config --cflags --libs libmm) \
	      -Wl,-rpath,$(CURDIR)/build/stage/opt/libmm-check/lib && \
	    $(CC) -std=c99 -o build/stage/hello_static examples/hello.c $$(pkg-config --cflags libmm) \
	      $$(pkg-config --variable=libdir libmm)/libmm.a $$(pkg-config --libs-only-other --static libmm) -lm -pthread'
	build/stage/hello
	build/stage/hello_static
	$(MAKE) --no-print-directory uninstall DESTDIR=$(CURDIR)/build/stage PREFIX=/opt/libmm-check
	@test -z "$$(find build/stage -type f -path '*libmm*')" || { echo "uninstall left files"; exit 1; }
	@echo "install-check: ok"

# ---- build integration: CMake package, libmm_mpi install, consumers (issue 18) -----------------
# `make install` also writes <libdir>/cmake/libmm/libmm-config{,-version}.cmake (find_package(
# libmm) -> libmm::mm, libmm::mm_static, libmm::mm_shared; relocatable: paths are found from
# the file's folder) and, built WITH_MPI=1, libmm_mpi (.a, .so), include/mm_mpi.h and
# libmm_mpi.pc. docs/INSTALL.md.
CMAKEDIR ?= $(LIBDIR)/cmake/libmm
CMAKE_STATIC_EXTRA := $(if $(filter 1,$(WITH_OPENBLAS)),;$(OPENBLAS_LIBS))
CMAKE_SED = sed -e 's|@VERSION@|$(VER)|g' -e 's|@VMAJOR@|$(VMAJOR)|g' -e 's|@ABI@|$(ABI)|g' \
  -e 's|@STATIC_EXTRA@|$(CMAKE_STATIC_EXTRA)|g' \
  -e "s|@REL_INCLUDEDIR@|$$(realpath -m --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g"
.PHONY: install-integration uninstall-integration check-integration
install: install-integration
uninstall: uninstall-integration
install-integration: all
	install -d $(DESTDIR)$(CMAKEDIR)
	$(CMAKE_SED) cmake/libmm-config.cmake.in > $(DESTDIR)$(CMAKEDIR)/libmm-config.cmake
	$(CMAKE_SED) cmake/libmm-config-version.cmake.in > $(DESTDIR)$(CMAKEDIR)/libmm-config-version.cmake
ifeq ($(WITH_MPI),1)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/mm_mpi.h $(DESTDIR)$(INCLUDEDIR)/mm_mpi.h
	install -m 644 $(MPI_STATIC) $(DESTDIR)$(LIBDIR)/libmm_mpi.a
	install -m 755 $(MPI_SHARED) $(DESTDIR)$(LIBDIR)/libmm_mpi.so.$(VER)
	ln -sf libmm_mpi.so.$(VER) $(DESTDIR)$(LIBDIR)/$(MPI_SONAME)
	ln -sf $(MPI_SONAME) $(DESTDIR)$(LIBDIR)/libmm_mpi.so
	$(PC_SED) pkgconfig/libmm_mpi.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libmm_mpi.pc
endif

uninstall-integration:
	rm -f $(DESTDIR)$(CMAKEDIR)/libmm-config.cmake $(DESTDIR)$(CMAKEDIR)/libmm-config-version.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null
	rm -f $(DESTDIR)$(INCLUDEDIR)/mm_mpi.h $(DESTDIR)$(LIBDIR)/libmm_mpi.a \
	  $(DESTDIR)$(LIBDIR)/libmm_mpi.so.$(VER) $(DESTDIR)$(LIBDIR)/libmm_mpi.so.$(ABI) \
	  $(DESTDIR)$(LIBDIR)/libmm_mpi.so $(DESTDIR)$(PKGCONFIGDIR)/libmm_mpi.pc

# A tiny consumer (examples/hello.c) built the ways docs/INSTALL.md describes, each one run:
# CMake find_package on a staged install (shared, static, LIBMM_USE_STATIC), CMake
# add_subdirectory of this tree, a Meson subproject, and pkg-config --define-prefix on a moved
# install. A tool that is not installed (cmake, meson + ninja) is reported as skipped. ('+': the
# script's own make calls share the jobserver.)
check-integration:
	+tests/integration/run.sh "$(CC)" "$(VER)"

# ---- benchmarks --------------------------------------------------------------------------------
# The bench links OpenBLAS as a peer when it is installed, whatever WITH_OPENBLAS says, and
# always measures libmm's own kernel; python3 with torch is used for PyTorch peers when present.
# (A '#' written inside $(shell ...) reaches the shell as '\#' with GNU make 4.3; go through HASH.)
HASH := \#
BENCH_PEER := $(shell printf '$(HASH)include <cblas.h>\nint main(void){return 0;}' | \
  $(CC) -x c - -o /dev/null $$(pkg-config --cflags --libs openblas 2>/dev/null || echo -lopenblas) \
  2>/dev/null && echo yes)
BENCH_FLAGS := $(if $(BENCH_PEER),-DBENCH_HAVE_OPENBLAS $(shell pkg-config --cflags openblas 2>/dev/null))
BENCH_LIBS  := $(if $(BENCH_PEER),$(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas))
build/bench/bench: $(BENCH_SRCS) $(wildcard bench/*.h) $(OBJS) $(HDRS)
	@mkdir -p build/bench
	$(CC) $(TEST_CFLAGS) $(BENCH_FLAGS) $(CFLAGS) -o $@ $(BENCH_SRCS) $(OBJS) $(LIB_LIBS) $(BENCH_LIBS)

bench: build/bench/bench
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/bench $(BENCH_ARGS)

# One full run (about 10 minutes on 2 cores) whose tables replace the generated region of
# docs/BENCHMARKS.md. Installs nothing: without torch or jemalloc the run says which columns
# are n/a and why.
bench-report: build/bench/bench
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/bench | tee build/bench/report.md
	python3 tools/bench_report.py build/bench/report.md docs/BENCHMARKS.md
	@echo "bench-report: docs/BENCHMARKS.md rewritten from build/bench/report.md"

# libmm against ggml's CPU operators (bench/ggml_peer.c). Built only when GGML_DIR names a ggml
# source tree that the user configured and built (GGML_BUILD, default $(GGML_DIR)/build), e.g.
#   cmake -B build -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF && cmake --build build
# Nothing of ggml is part of this repository and this target fetches nothing.
GGML_DIR   ?=
GGML_BUILD ?= $(GGML_DIR)/build
GGML_LIBS  ?= -L$(GGML_BUILD)/src -L$(GGML_BUILD)/src/ggml-cpu -lggml -lggml-cpu -lggml-base \
              -Wl,-rpath,$(abspath $(GGML_BUILD))/src -lstdc++ -lm -pthread
build/bench/ggml_peer: bench/ggml_peer.c bench/bench_util.c bench/peak.c bench/bench.h $(OBJS) $(HDRS)
	@mkdir -p build/bench
	$(CC) $(TEST_CFLAGS) -I$(GGML_DIR)/include $(CFLAGS) -o $@ bench/ggml_peer.c bench/bench_util.c \
	  bench/peak.c $(OBJS) $(GGML_LIBS) $(LIB_LIBS)

bench-ggml:
	@if [ -z "$(GGML_DIR)" ] || [ ! -f "$(GGML_DIR)/include/ggml.h" ]; then \
	  echo "bench-ggml: set GGML_DIR to a ggml source tree (with include/ggml.h) that you built;"; \
	  echo "            GGML_BUILD (default \$$GGML_DIR/build) must hold its libggml*.a or .so"; exit 1; fi
	$(MAKE) --no-print-directory build/bench/ggml_peer
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/ggml_peer

# No floor of src/ may include a header of, or use a symbol defined by, a floor above it
# (core < tensor < kernels < attn, ssm, loss < model, io < policy < mpi).
# Every tracked source file carries an SPDX licence line (LICENSE: MIT).
spdx-check:
	tools/spdx_check.sh

# Source formatting (.clang-format, clang-format 14): `make format` rewrites, `format-check`
# (run by CI) lists the files that differ and fails.
format:
	tools/format.sh

format-check:
	tools/format.sh --check

floors-check: $(OBJS)
	tools/floors_check.sh $(BDIR)/obj

# ---- documentation: API.md, man pages, references, snippets -----------------------------------
# docs/API.md and man/man3/*.3 are generated from the header comments and committed; docs-check
# fails if either is stale, a public function's comment lacks "Since:" or "Allocates", or a file
# points at a document outside the repository (tools/doc_refs_check.py). snippets-check compiles
# every C snippet of README.md and docs/*.md as C99 (and every C++ one as C++17) with -Werror
# and runs it (a step of make check, tools/run_check.sh).
# `make install` also installs the man pages under MANDIR (default $(PREFIX)/share/man).
.PHONY: snippets-check install-man uninstall-man install-man-check
MANDIR  ?= $(PREFIX)/share/man
MAN3DIR ?= $(MANDIR)/man3
docs:
	python3 tools/gen_api_doc.py include/mm.h > docs/API.md
	python3 tools/gen_man.py include/mm.h man/man3

docs-check:
	@mkdir -p build
	python3 tools/gen_api_doc.py --check include/mm.h > build/API.md
	diff -u docs/API.md build/API.md
	python3 tools/gen_man.py --check include/mm.h man/man3
	python3 tools/doc_refs_check.py
	@echo "docs-check: docs/API.md and the man pages are current, every reference resolves"

snippets-check: $(STATIC)
	python3 tools/doc_snippets.py --cc "$(CC)" --cxx "$(CXX)" --lib $(STATIC) --libs "$(LIB_LIBS)"

install: install-man
uninstall: uninstall-man
install-check: install-man-check

install-man:
	install -d $(DESTDIR)$(MAN3DIR)
	install -m 644 man/man3/*.3 $(DESTDIR)$(MAN3DIR)/

uninstall-man:
	cd man/man3 && for f in *.3; do rm -f "$(DESTDIR)$(MAN3DIR)/$$f"; done

# A staged install has the man pages (one rendered by man -l) and uninstall removes them all.
install-man-check:
	rm -rf build/stage-man
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/build/stage-man PREFIX=/opt/libmm-check
	page=build/stage-man/opt/libmm-check/share/man/man3/mm_policy_create.3; \
	  if command -v man >/dev/null; then MANWIDTH=80 man -l $$page | grep -q 'int mm_policy_create(mm_policy'; \
	  else grep -q '^int mm_policy_create(mm_policy' $$page; fi
	$(MAKE) --no-print-directory uninstall DESTDIR=$(CURDIR)/build/stage-man PREFIX=/opt/libmm-check
	@test -z "$$(find build/stage-man -name '*.3')" || { echo "uninstall left man pages"; exit 1; }
	rm -rf build/stage-man
	@echo "install-man-check: man pages installed under share/man/man3 and removed"

clean:
	rm -rf build lib pkgconfig/libmm.pc

-include fuzz/fuzz.mk
-include bench/rl.mk
-include bench/gym.mk
-include tests/tsan.mk
-include bindings/python/python.mk
-include src/mpi/mpi.mk
