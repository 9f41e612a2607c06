# SPDX-License-Identifier: MIT
# bench/rl.mk — `make bench-rl` (include from the Makefile: `-include bench/rl.mk`).
# Trains DDPG/TD3/SAC (Pendulum-v1, 20k steps), PPO/TRPO/A2C/QAC and discrete SAC (CartPole-v1)
# over 5 seeds and prints mean +- std of the deterministic evaluation return and wall-clock per
# run; then, when python3 with torch is present, a plain PyTorch DDPG update side by side with
# libmm's. Also PPO with and without a memory core on the velocity-masked tasks
# (bench/rl_memory.c).
# RL_ARGS passes options (e.g. RL_ARGS="TD3 --seeds 3" or "--quick").
RL_PY ?= /usr/bin/python3
build/bench/rl_bench: bench/rl_bench.c $(STATIC) $(wildcard examples/envs/*.c) $(wildcard examples/envs/*.h)
	@mkdir -p build/bench
	$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) -o $@ bench/rl_bench.c $(wildcard examples/envs/*.c) \
	  $(STATIC) $(LIB_LIBS)

build/bench/rl_speed: bench/rl_speed.c $(STATIC) $(wildcard examples/envs/*.c) $(wildcard examples/envs/*.h)
	@mkdir -p build/bench
	$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) -o $@ bench/rl_speed.c $(wildcard examples/envs/*.c) \
	  $(STATIC) $(LIB_LIBS)

build/bench/rl_memory: bench/rl_memory.c $(STATIC) $(wildcard examples/envs/*.c) $(wildcard examples/envs/*.h)
	@mkdir -p build/bench
	$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) -o $@ bench/rl_memory.c $(wildcard examples/envs/*.c) \
	  $(STATIC) $(LIB_LIBS)

# PPO with / without a memory core on CartPoleNoVel-v1 and PendulumNoVel-v1, act latency
# (RLMEM_ARGS e.g. "--seeds 3 cartpole latency" or "--quick").
bench-rl-memory: build/bench/rl_memory
	OPENBLAS_NUM_THREADS=1 build/bench/rl_memory $(RLMEM_ARGS)

bench-rl: build/bench/rl_bench build/bench/rl_speed build/bench/rl_memory
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/rl_bench $(RL_ARGS)
	OPENBLAS_NUM_THREADS=1 build/bench/rl_speed
	OPENBLAS_NUM_THREADS=1 build/bench/rl_memory $(RLMEM_ARGS)
	@if $(RL_PY) -c 'import torch' 2>/dev/null; then \
	  OMP_NUM_THREADS=1 $(RL_PY) bench/peer_torch_ddpg.py; \
	else echo "torch not found: PyTorch DDPG peer skipped"; fi

.PHONY: bench-rl bench-rl-memory
