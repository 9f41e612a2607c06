#!/usr/bin/env python3
"""PyTorch peer for bench_gemm.c: single-threaded torch GEMM times.

Usage: peer_gemm.py REPS TA TB M N K BETA [TA TB M N K BETA ...]
Prints one median time in nanoseconds per shape (C = op(A) op(B) + beta C, row-major,
op = transpose when TA/TB is 1), in order. Prints nothing and exits 1 when torch is missing,
so the C side shows "n/a".
"""
import sys
import time

try:
    import torch
except ImportError:
    sys.exit(1)


def median_ns(fn, reps):
    fn()  # warm-up
    t0 = time.perf_counter_ns()
    fn()
    once = max(time.perf_counter_ns() - t0, 50)
    inner = 1 if once >= 200_000 else 200_000 // once + 1
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter_ns() - t0) / inner)
    samples.sort()
    return samples[len(samples) // 2]


def main(argv):
    torch.set_num_threads(1)
    reps = int(argv[0])
    fields = argv[1:]
    g = torch.Generator().manual_seed(0)
    for i in range(0, len(fields), 6):
        ta, tb, m, n, k = (int(x) for x in fields[i:i + 5])
        beta = float(fields[i + 5])
        a = torch.rand((k, m) if ta else (m, k), generator=g) * 2 - 1
        b = torch.rand((n, k) if tb else (k, n), generator=g) * 2 - 1
        c = torch.rand((m, n), generator=g) * 2 - 1
        oa = a.t() if ta else a
        ob = b.t() if tb else b
        if beta == 0.0:
            fn = lambda: torch.matmul(oa, ob, out=c)  # noqa: E731
        else:
            fn = lambda: c.addmm_(oa, ob, beta=beta)  # noqa: E731
        print(f"{median_ns(fn, reps):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
