# SPDX-License-Identifier: MIT
# bench/gym.mk — Gymnasium and Stable-Baselines3 in a virtual environment (included from the
# Makefile). The venv is made with --system-site-packages so Debian's numpy and torch stay in
# use, and numpy is pinned to the system's version (a newer wheel would break torch 1.13).
#   make check-gym   the Python package's Gymnasium adapter tests (bindings/python/tests/
#                    test_gym.py) on Gymnasium's CartPole-v1 and Pendulum-v1; when pip cannot
#                    install gymnasium (no network) it says so and succeeds without them
#   make bench-gym   bench/gym_vs_sb3.py: libmm against SB3 with matched hyperparameters, returns
#                    over seeds and the wall-clock ratio (GYM_ARGS="--runs ... --seeds N")
#   make bench-gym-mujoco   the same with mujoco 2.3.x added to the venv, for the HalfCheetah-v4
#                    runs (GYM_ARGS="--runs sac-halfcheetah,td3-halfcheetah")
#   make check-sac-sb3   five SAC gradient steps of libmm replayed through SB3's own SAC.train
#                    on the same parameters, batches and Gaussian draws (tests/sac_sb3_dump.c,
#                    tests/sac_sb3_step.py); skipped like check-gym without the venv
GYM_VENV   ?= build/gymvenv
GYM_PY     := $(GYM_VENV)/bin/python
GYM_ARGS   ?=
SYS_PYTHON ?= /usr/bin/python3

$(GYM_VENV)/.installed:
	@rm -rf $(GYM_VENV) && mkdir -p $(dir $(GYM_VENV))
	$(SYS_PYTHON) -m venv --system-site-packages $(GYM_VENV)
	$(SYS_PYTHON) -c 'import numpy; print("numpy==" + numpy.__version__)' > $(GYM_VENV)/constraints.txt
	$(GYM_VENV)/bin/pip install -q -c $(GYM_VENV)/constraints.txt gymnasium==0.28.1 \
	  stable-baselines3==2.0.0
	@touch $@

check-gym: $(SHARED)
	@if ! $(MAKE) --no-print-directory $(GYM_VENV)/.installed; then \
	  echo "check-gym: SKIPPED: could not install gymnasium into $(GYM_VENV) (no network?)"; \
	else \
	  cd bindings/python/tests && LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) \
	    PYTHONDONTWRITEBYTECODE=1 $(CURDIR)/$(GYM_PY) -m unittest -v test_gym; \
	fi

# sb3-contrib's RecurrentPPO on the velocity-masked tasks (bench/recurrent_vs_sb3.py), the peer of
# build/bench/rl_memory: make bench-gym-recurrent RECURRENT_ARGS="cartpole --seeds 3"
RECURRENT_ARGS ?= cartpole
$(GYM_VENV)/.contrib: $(GYM_VENV)/.installed
	$(GYM_VENV)/bin/pip install -q -c $(GYM_VENV)/constraints.txt sb3-contrib==2.0.0
	@touch $@

bench-gym-recurrent: $(GYM_VENV)/.contrib
	OMP_NUM_THREADS=1 $(GYM_PY) bench/recurrent_vs_sb3.py $(RECURRENT_ARGS)

# MuJoCo for the HalfCheetah-v4 runs (td3-halfcheetah, sac-halfcheetah), in its own stamp so that
# check-gym does not need it: make bench-gym-mujoco GYM_ARGS="--runs sac-halfcheetah --seeds 3"
$(GYM_VENV)/.mujoco: $(GYM_VENV)/.installed
	$(GYM_VENV)/bin/pip install -q -c $(GYM_VENV)/constraints.txt "gymnasium[mujoco]==0.28.1" "mujoco>=2.3.3,<3"
	@touch $@

bench-gym-mujoco: $(SHARED) $(GYM_VENV)/.mujoco
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) \
	  $(GYM_PY) bench/gym_vs_sb3.py $(GYM_ARGS)

bench-gym: $(SHARED) $(GYM_VENV)/.installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 LIBMM_LIBRARY=$(CURDIR)/lib/$(SONAME) \
	  $(GYM_PY) bench/gym_vs_sb3.py $(GYM_ARGS)

# The dumper links the library's objects: it fixes the batch and the draws through internal fields
$(BDIR)/tests/sac_sb3_dump: tests/sac_sb3_dump.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) -o $@ $< $(OBJS) $(LIB_LIBS)

check-sac-sb3: $(BDIR)/tests/sac_sb3_dump
	@if ! $(MAKE) --no-print-directory $(GYM_VENV)/.installed; then \
	  echo "check-sac-sb3: SKIPPED: could not install stable-baselines3 into $(GYM_VENV) (no network?)"; \
	else \
	  rm -rf $(BDIR)/sac_sb3 && mkdir -p $(BDIR)/sac_sb3 && \
	  $(BDIR)/tests/sac_sb3_dump $(BDIR)/sac_sb3 5 && \
	  OMP_NUM_THREADS=1 $(GYM_PY) tests/sac_sb3_step.py $(BDIR)/sac_sb3 5; \
	fi

.PHONY: check-gym bench-gym bench-gym-mujoco bench-gym-recurrent check-sac-sb3
