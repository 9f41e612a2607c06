# SPDX-License-Identifier: MIT
# src/mpi/mpi.mk — the optional MPI part, included by the Makefile (-include src/mpi/mpi.mk) so
# the core Makefile stays MPI-free. Nothing here runs unless asked for:
#   make WITH_MPI=1        also builds lib/libmm_mpi.a and lib/libmm_mpi.so (mm_comm_create_mpi)
#   make check-mpi         builds them and runs tests/mpi under mpirun -np 2 (loopback only)
#   make bench-mpi         step time and 1 -> 2 rank scaling (model step, SigLIP at N = 8192)
#   make mpi-example       builds examples/mpi/mpi_siglip
# MPICC names the MPI compiler wrapper (Open MPI's mpicc by default); MPIRUN the launcher.
MPICC  ?= mpicc
MPIRUN ?= mpirun
# Loopback only, and what Open MPI needs to run as root in a container: shared memory (vader)
# without the single-copy mechanism that ptrace restrictions break.
MPIRUN_FLAGS ?= --allow-run-as-root --oversubscribe --mca btl self,vader \
                --mca btl_vader_single_copy_mechanism none
MPI_ENV := OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

MPI_OBJ    := $(BDIR)/obj/mpi/comm_mpi.o
MPI_STATIC := lib/libmm_mpi.a
MPI_SHARED := lib/libmm_mpi.so.$(VER)
MPI_SONAME := libmm_mpi.so.$(ABI)

.PHONY: mpi check-mpi bench-mpi mpi-example
ifeq ($(WITH_MPI),1)
all: mpi
endif
mpi: $(MPI_STATIC) $(MPI_SHARED)

$(MPI_OBJ): src/mpi/comm_mpi.c include/mm_mpi.h include/mm.h
	@mkdir -p $(dir $@)
	$(MPICC) $(LIB_CFLAGS) $(CFLAGS) -c $< -o $@

$(MPI_STATIC): $(MPI_OBJ)
	@mkdir -p lib
	rm -f $@ && $(AR) rcs $@ $(MPI_OBJ)

# Linked against libmm.so (through its soname) and the MPI library mpicc names.
$(MPI_SHARED): $(MPI_OBJ) $(SHARED) src/mpi/libmm_mpi.map
	$(MPICC) -shared -Wl,-soname,$(MPI_SONAME) -Wl,--version-script=src/mpi/libmm_mpi.map \
	  -Wl,--no-undefined $(LDFLAGS) -o $@ $(MPI_OBJ) -Llib -lmm $(LIB_LIBS)
	ln -sf libmm_mpi.so.$(VER) lib/$(MPI_SONAME)
	ln -sf $(MPI_SONAME) lib/libmm_mpi.so

MPI_PROG_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -Iexamples
build/mpi/test_mpi: tests/mpi/test_mpi.c $(MPI_STATIC) $(STATIC)
	@mkdir -p build/mpi
	$(MPICC) $(MPI_PROG_CFLAGS) $(CFLAGS) -o $@ $< $(MPI_STATIC) $(STATIC) $(LIB_LIBS)

# The same test linked against the shared libraries, as a user of libmm_mpi.so would.
build/mpi/test_mpi_shared: tests/mpi/test_mpi.c $(MPI_SHARED)
	@mkdir -p build/mpi
	$(MPICC) $(MPI_PROG_CFLAGS) $(CFLAGS) -o $@ $< -Llib -lmm_mpi -lmm -lm \
	  -Wl,-rpath,'$$ORIGIN/../../lib'

check-mpi: build/mpi/test_mpi build/mpi/test_mpi_shared
	$(MPI_ENV) $(MPIRUN) -np 2 $(MPIRUN_FLAGS) build/mpi/test_mpi
	$(MPI_ENV) $(MPIRUN) -np 1 $(MPIRUN_FLAGS) build/mpi/test_mpi
	$(MPI_ENV) $(MPIRUN) -np 2 $(MPIRUN_FLAGS) build/mpi/test_mpi_shared

build/mpi/bench_mpi: bench/mpi/bench_mpi.c $(MPI_STATIC) $(STATIC)
	@mkdir -p build/mpi
	$(MPICC) $(MPI_PROG_CFLAGS) $(CFLAGS) -o $@ $< $(MPI_STATIC) $(STATIC) $(LIB_LIBS)

# One run: rank 0 alone (a sub-communicator of size 1), then both ranks, on the same global batch.
bench-mpi: build/mpi/bench_mpi
	$(MPI_ENV) OPENBLAS_NUM_THREADS=1 $(MPIRUN) -np 2 $(MPIRUN_FLAGS) --mca mpi_yield_when_idle 1 \
	  build/mpi/bench_mpi $(BENCH_MPI_ARGS)

build/mpi/mpi_siglip: examples/mpi/mpi_siglip.c $(MPI_STATIC) $(STATIC)
	@mkdir -p build/mpi
	$(MPICC) $(MPI_PROG_CFLAGS) $(CFLAGS) -o $@ $< $(MPI_STATIC) $(STATIC) $(LIB_LIBS)

mpi-example: build/mpi/mpi_siglip
