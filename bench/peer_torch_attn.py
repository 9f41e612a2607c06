#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch peer for bench_attn.c: forward + backward of each attention kind, float32, one thread.

Usage: peer_torch_attn.py REPS CASE N [CASE N ...]
       peer_torch_attn.py check        (only the check of the forms below; `make check-torch`)
BH = 8 heads of d = dv = 64 (shape [1, 8, N, 64]); loss = sum(out * g). For each case the peer
times every correct PyTorch form a user would pick, and reports the fastest; the forms:
  softmax_causal  F.scaled_dot_product_attention(is_causal=True) (torch >= 2.0); blocked causal
                  softmax (query blocks of 256 against their key prefix); masked N x N softmax
  linear_causal   elu+1 features, chunked form (chunk 64: masked products inside a chunk, a
                  running d x dv state between chunks); fast-transformers' cumulative-sum form
  performer       FAVOR+ (m = 266) features, the same chunked and cumulative-sum forms
  relu2_causal    FLASH mixed chunks (C = 256), the chunk loop of the paper
  sparse_local    banded softmax: query blocks of 128 against their own and the previous key
                  block (window 128); masked N x N softmax
  gated_retnet    RetNet chunkwise form (chunk 64, decay masks built once outside the timed
                  call); RetNet parallel form ((q k^T) * decay) v
Every form is checked against the naive one at N = 256 before timing (exit 1 on a mismatch).
Prints, per case, the median process CPU time in ns of the fastest form and that form's index
in the list above (e.g. "123456 0"); "-1 -1" when every form is skipped for size. Prints nothing
and exits 1 when torch is missing.
"""
import math
import sys
import time

from peer_util import median_cpu_ns, setup

import torch
import torch.nn.functional as F

D = 64
H = 8
SCALE = 1 / math.sqrt(D)


# ---- softmax ---------------------------------------------------------------------------------
def softmax_masked(q, k, v):
    n = q.shape[2]
    s = q @ k.transpose(-1, -2) * SCALE
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)
    return torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v


def softmax_sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def softmax_blocked(q, k, v, bq=256):
    n = q.shape[2]
    outs = []
    for q0 in range(0, n, bq):
        q1 = min(q0 + bq, n)
        s = q[:, :, q0:q1] @ k[:, :, :q1].transpose(-1, -2) * SCALE
        mask = torch.ones(q1 - q0, q1, dtype=torch.bool).triu(q0 + 1)
        outs.append(torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v[:, :, :q1])
    return torch.cat(outs, 2)


# ---- linear and performer ----------------------------------------------------------------------
def cumsum_linear(fq, fk, v, eps=1e-6):
    kv = torch.einsum("bhnd,bhne->bhnde", fk, v).cumsum(2)
    num = torch.einsum("bhnd,bhnde->bhne", fq, kv)
    den = torch.einsum("bhnd,bhnd->bhn", fq, fk.cumsum(2)) + eps
    return num / den.unsqueeze(-1)


def chunked_linear(fq, fk, v, eps=1e-6, c=64):
    b, h, n, d = fq.shape
    e = v.shape[-1]
    nc = n // c
    qc, kc, vc = (x.reshape(b, h, nc, c, x.shape[-1]) for x in (fq, fk, v))
    a = (qc @ kc.transpose(-1, -2)) * torch.ones(c, c).tril()
    kv = kc.transpose(-1, -2) @ vc                       # per-chunk d x e
    state = kv.cumsum(2) - kv                            # exclusive prefix over chunks
    ksum = kc.sum(-2)
    z = ksum.cumsum(2) - ksum
    num = a @ vc + qc @ state
    den = a.sum(-1) + (qc @ z.unsqueeze(-1)).squeeze(-1) + eps
    return (num / den.unsqueeze(-1)).reshape(b, h, n, e)


def elu1(x):
    return F.elu(x) + 1


W_PERF = torch.randn(266, D)


def favor(x, is_query):
    c = D ** -0.25
    u = (c * x) @ W_PERF.t()
    diag = (c * x).pow(2).sum(-1, keepdim=True) / 2
    stab = (u.amax(-1, keepdim=True) if is_query else u[:, :, :1].amax((-1, -2), keepdim=True))
    return (torch.exp(u - diag - stab.detach()) + 1e-4) / math.sqrt(266)


# ---- relu2 -------------------------------------------------------------------------------------
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


# ---- sparse local ------------------------------------------------------------------------------
W = 128


def local_masked(q, k, v):
    n = q.shape[2]
    i = torch.arange(n)
    bad = (i[None, :] > i[:, None]) | (i[:, None] - i[None, :] >= W)
    s = q @ k.transpose(-1, -2) * SCALE
    return torch.softmax(s.masked_fill(bad, float("-inf")), -1) @ v


def band_mask():
    i = torch.arange(W)[:, None] + W            # query position inside [prev block, block]
    j = torch.arange(2 * W)[None, :]
    return (j > i) | (i - j >= W)


BAND = band_mask()


def local_banded(q, k, v):
    b, h, n, d = q.shape
    nb = n // W
    qb, kb, vb = (x.reshape(b, h, nb, W, d) for x in (q, k, v))
    kp = torch.cat([torch.zeros_like(kb[:, :, :1]), kb[:, :, :-1]], 2)
    vp = torch.cat([torch.zeros_like(vb[:, :, :1]), vb[:, :, :-1]], 2)
    kk, vv = torch.cat([kp, kb], 3), torch.cat([vp, vb], 3)
    s = (qb @ kk.transpose(-1, -2)) * SCALE
    mask = BAND.expand(nb, W, 2 * W).clone()
    mask[0, :, :W] = True                       # block 0 has no previous block
    return (torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ vv).reshape(b, h, n, d)


# ---- gated (RetNet) ----------------------------------------------------------------------------
GAMMA = 1 - 2.0 ** (-5 - torch.arange(H, dtype=torch.float64))
CH = 64


def retnet_masks(n):
    """Decay masks, built once per shape outside the timed call (as RetNet caches them)."""
    lg = GAMMA.log()
    # the parallel form's N x N mask only where that form runs (at 8192 it would take 4 GB)
    full = None
    if n <= NAIVE:
        i = torch.arange(n, dtype=torch.float64)
        diff = i[:, None] - i[None, :]
        full = torch.where(diff >= 0, (lg[:, None, None] * diff).exp(), torch.zeros(()))
    c = torch.arange(CH, dtype=torch.float64)
    dc = c[:, None] - c[None, :]
    inner = torch.where(dc >= 0, (lg[:, None, None] * dc).exp(), torch.zeros(()))
    qdec = (lg[:, None] * (c + 1)).exp()[:, :, None]           # gamma^(i+1)
    kdec = (lg[:, None] * (CH - 1 - c)).exp()[:, :, None]      # gamma^(C-1-j)
    cdec = (lg * CH).exp()[:, None, None]                      # gamma^C
    return {k: x.float() for k, x in dict(full=full, inner=inner, q=qdec, k=kdec, c=cdec).items()
            if x is not None}


MASKS = {}


def retnet_parallel(q, k, v):
    m = MASKS[q.shape[2]]
    return ((q * SCALE) @ k.transpose(-1, -2) * m["full"]) @ v


def retnet_chunkwise(q, k, v):
    b, h, n, d = q.shape
    m = MASKS[n]
    nc = n // CH
    qc, kc, vc = (x.reshape(b, h, nc, CH, d) for x in (q * SCALE, k, v))
    inner = ((qc @ kc.transpose(-1, -2)) * m["inner"][:, None]) @ vc
    kv = (kc * m["k"][:, None]).transpose(-1, -2) @ vc           # per-chunk state update
    states = []
    s = torch.zeros(b, h, d, v.shape[-1])
    for c in range(nc):
        states.append(s)
        s = s * m["c"] + kv[:, :, c]
    cross = (qc * m["q"][:, None]) @ torch.stack(states, 2)
    return (inner + cross).reshape(b, h, n, d)


# name -> (forms in order, largest N each form is run at). The naive forms materialise N x N
# (or N x d x dv) tensors and were never the fastest above N = 512 on the bench machine, so
# beyond it they are not tried (their first look alone took seconds per form).
ANY, NAIVE = 1 << 30, 512
CASES = {
    "softmax_causal": ([softmax_sdpa, softmax_blocked, softmax_masked], [ANY, ANY, NAIVE]),
    "linear_causal": ([lambda q, k, v: chunked_linear(elu1(q), elu1(k), v),
                       lambda q, k, v: cumsum_linear(elu1(q), elu1(k), v)], [ANY, NAIVE]),
    "performer": ([lambda q, k, v: chunked_linear(favor(q, True), favor(k, False), v, 0.0),
                   lambda q, k, v: cumsum_linear(favor(q, True), favor(k, False), v, 0.0)],
                  [ANY, NAIVE]),
    "relu2_causal": ([relu2_causal], [ANY]),
    "sparse_local": ([local_banded, local_masked], [ANY, NAIVE]),
    "gated_retnet": ([retnet_chunkwise, retnet_parallel], [ANY, NAIVE]),
}


def available(fn):
    return fn is not softmax_sdpa or hasattr(F, "scaled_dot_product_attention")


def inputs(n, grad):
    g = torch.Generator().manual_seed(n)
    return [(0.5 * torch.randn(1, H, n, D, generator=g)).requires_grad_(grad) for _ in range(3)]


def check_forms():
    n = 256
    MASKS[n] = retnet_masks(n)
    q, k, v = inputs(n, False)
    for name, (forms, _) in CASES.items():
        ref = forms[-1](q, k, v)
        for fn in forms[:-1]:
            if available(fn):
                got = fn(q, k, v)
                if not torch.allclose(got, ref, rtol=1e-3, atol=1e-4 * ref.abs().max().item()):
                    print(f"peer_torch_attn: {name} form {forms.index(fn)} disagrees",
                          file=sys.stderr)
                    sys.exit(1)


def time_case(name, n, reps):
    forms, limits = CASES[name]
    if n not in MASKS and name == "gated_retnet":
        MASKS[n] = retnet_masks(n)
    q, k, v = inputs(n, True)
    g = torch.randn(1, H, n, D)
    best, best_i = None, -1
    for i, fn in enumerate(forms):
        if n > limits[i] or not available(fn):
            continue

        def step(fn=fn):
            q.grad = k.grad = v.grad = None
            (fn(q, k, v) * g).sum().backward()
        step()                                  # a first look: one warm call, one timed call
        t0 = time.process_time_ns()
        step()
        t = time.process_time_ns() - t0
        if best is None or t < best[0]:
            best, best_i = (t, step), i
    if best is None:
        return -1, -1
    return median_cpu_ns(best[1], reps), best_i


def main():
    setup()
    if sys.argv[1] == "check":
        check_forms()
        print("peer_torch_attn: every fast form agrees with the naive form")
        return
    reps = int(sys.argv[1])
    args = sys.argv[2:]
    check_forms()
    res = []
    for name, n in zip(args[0::2], args[1::2]):
        res.extend(time_case(name, int(n), reps))
    print(" ".join(str(int(r)) for r in res))


if __name__ == "__main__":
    main()
