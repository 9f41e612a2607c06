#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch peer for bench_gemm.c: single-threaded torch GEMM times.

Usage: peer_gemm.py REPS TA TB M N K BETA [TA TB M N K BETA ...]
Prints one median process CPU time in nanoseconds per shape (C = op(A) op(B) + beta C,
row-major, op = transpose when TA/TB is 1), in order (bench/peer_util.py). Prints nothing and
exits 1 when torch is missing, so the C side shows "n/a".
"""
import sys

from peer_util import median_cpu_ns, setup

import torch


def main(argv):
    setup()
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
        print(f"{median_cpu_ns(fn, reps):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
