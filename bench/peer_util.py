# SPDX-License-Identifier: MIT
"""peer_util.py — what every PyTorch peer of the bench shares: one thread, process CPU time,
medians after warm-up, and the check that the retained-memory run really has jemalloc loaded.

The bench (bench/bench_main.c) runs each peer twice: with BENCH_RETAINED=1 under
LD_PRELOAD=libjemalloc.so.2 and MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1, so memory a
PyTorch op frees stays mapped and the next call does not fault it in again (first touch of a
4 KiB page costs 7-35 us on these VMs), and once with glibc's malloc, which returns large freed
blocks to the kernel. A peer prints nothing and exits 1 when torch is missing, or when it was
asked for the retained run and jemalloc is not in the process.
"""
import os
import sys
import time

# Every peer is single-threaded, and torch's own set_num_threads(1) does not reach the BLAS it
# links (Debian's torch: OpenBLAS, pthread build), whose worker thread then busy-waits on the
# other core between calls and is counted in the process CPU time: 1.6-2.9x the peer's real
# time on an idle 2-core VM (4-256-256-1 train step 3.4 against 2.1 ms, 8-64-64-1 1.6 against
# 0.55 ms), less under load, when the spinner gets less of that core. The BLAS reads these at
# load time, so they are set before torch is imported, whatever the caller's environment.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

try:
    import torch
except ImportError:
    sys.exit(1)


def setup():
    if os.environ.get("BENCH_RETAINED") == "1":
        with open("/proc/self/maps") as f:
            if "jemalloc" not in f.read():
                sys.exit(1)
    torch.set_num_threads(1)
    torch.manual_seed(0)


def median_cpu_ns(fn, reps=5, min_warm_ns=20_000_000):
    """Median process CPU time of one fn() call in ns: warm-up of at least one call and 20 ms,
    calls shorter than 0.2 ms repeated inside a sample, at least 5 samples."""
    reps = max(reps, 5)
    t0 = time.process_time_ns()
    calls = 0
    while calls < 1 or time.process_time_ns() - t0 < min_warm_ns:
        fn()
        calls += 1
    once = max((time.process_time_ns() - t0) // calls, 50)
    inner = 1 if once >= 200_000 else 200_000 // once + 1
    samples = []
    for _ in range(reps):
        t0 = time.process_time_ns()
        for _ in range(inner):
            fn()
        samples.append((time.process_time_ns() - t0) / inner)
    samples.sort()
    return samples[len(samples) // 2]
