#!/usr/bin/env python3
"""PyTorch peer for bench_attn.c: forward + backward of each attention kind, float32, with the
same thread count as the C side.

Usage: peer_torch_attn.py THREADS REPS CASE N [CASE N ...]
BH = 8 heads of d = dv = 64 (shape [1, 8, N, 64]); loss = sum(out * g). Cases:
  softmax_causal  masked softmax: softmax(q k^T / 8 masked_fill(-inf)) v (materialises N x N)
  linear_causal   elu+1, cumulative-sum form of fast-transformers' reference (materialises
                  N x d x dv per head)
  performer       FAVOR+ causal, m = 266 features, the same cumulative-sum form
  relu2_causal    FLASH mixed chunks (C = 256): chunk loop in PyTorch
  sparse_local    masked softmax with the local band (window 128)
  gated_retnet    RetNet parallel form ((q k^T) * decay mask) v
Prints one median process CPU time (time.process_time_ns, as the C side measures) in
nanoseconds per case, in order (-1 when skipped for size). Prints nothing and exits 1 when torch
is missing.
"""
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(1)

D = 64
H = 8


def median_ns(fn, reps):
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.process_time_ns()
        fn()
        samples.append(time.process_time_ns() - t0)
    samples.sort()
    return samples[len(samples) // 2]


def causal_mask(n):
    return torch.ones(n, n, dtype=torch.bool).triu(1)


def softmax_causal(q, k, v):
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    return torch.softmax(s.masked_fill(causal_mask(q.shape[2]), float("-inf")), -1) @ v


def sparse_local(q, k, v):
    n = q.shape[2]
    i = torch.arange(n)
    bad = (i[None, :] > i[:, None]) | (i[:, None] - i[None, :] >= 128)
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    return torch.softmax(s.masked_fill(bad, float("-inf")), -1) @ v


def cumsum_linear(fq, fk, v, eps=1e-6):
    kv = torch.einsum("bhnd,bhne->bhnde", fk, v).cumsum(2)
    num = torch.einsum("bhnd,bhnde->bhne", fq, kv)
    den = torch.einsum("bhnd,bhnd->bhn", fq, fk.cumsum(2)) + eps
    return num / den.unsqueeze(-1)


def linear_causal(q, k, v):
    return cumsum_linear(F.elu(q) + 1, F.elu(k) + 1, v)


W_PERF = torch.randn(266, D)


def favor(x, is_query):
    c = D ** -0.25
    u = (c * x) @ W_PERF.t()
    diag = (c * x).pow(2).sum(-1, keepdim=True) / 2
    stab = (u.amax(-1, keepdim=True) if is_query else u[:, :, :1].amax((-1, -2), keepdim=True))
    return (torch.exp(u - diag - stab.detach()) + 1e-4) / math.sqrt(266)


def performer(q, k, v):
    return cumsum_linear(favor(q, True), favor(k, False), v, 0.0)


def relu2_causal(q, k, v, c=256):
    n = q.shape[2]
    outs = []
    state = torch.zeros(q.shape[0], q.shape[1], D, v.shape[-1])
    tri = torch.ones(c, c).tril()
    for c0 in range(0, n, c):
        c1 = min(c0 + c, n)
        qg, kg, vg = q[:, :, c0:c1], k[:, :, c0:c1], v[:, :, c0:c1]
        a = torch.relu(qg @ kg.transpose(-1, -2) / c).pow(2) * tri[: c1 - c0, : c1 - c0]
        outs.append(a @ vg + qg @ state)
        state = state + kg.transpose(-1, -2) @ vg / c
    return torch.cat(outs, 2)


def gated_retnet(q, k, v):
    n = q.shape[2]
    gam = 1 - 2.0 ** (-5 - torch.arange(H, dtype=torch.float32))
    i = torch.arange(n, dtype=torch.float32)
    diff = i[:, None] - i[None, :]
    dec = torch.where(diff >= 0, gam.log()[:, None, None] * diff, torch.tensor(float("-inf"))).exp()
    return ((q / math.sqrt(D)) @ k.transpose(-1, -2) * dec) @ v


CASES = {"softmax_causal": softmax_causal, "linear_causal": linear_causal,
         "performer": performer, "relu2_causal": relu2_causal, "sparse_local": sparse_local,
         "gated_retnet": gated_retnet}
# largest N each materialising form is run at (memory and time on a shared 2-core box)
LIMIT = {"softmax_causal": 4096, "linear_causal": 2048, "performer": 512,
         "relu2_causal": 8192, "sparse_local": 4096, "gated_retnet": 4096}


def main():
    threads, reps = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    args = sys.argv[3:]
    res = []
    for name, n in zip(args[0::2], args[1::2]):
        n = int(n)
        if n > LIMIT[name]:
            res.append(-1)
            continue
        q, k, v = (torch.randn(1, H, n, D, requires_grad=True) for _ in range(3))
        g = torch.randn(1, H, n, D)
        fn = CASES[name]

        def step():
            q.grad = k.grad = v.grad = None
            (fn(q, k, v) * g).sum().backward()

        res.append(median_ns(step, reps))
    print(" ".join(str(int(r)) for r in res))


if __name__ == "__main__":
    main()
