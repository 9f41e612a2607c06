#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch peer for bench_loss.c: single-threaded CLIP and SigLIP forward+backward.

Usage:
  peer_torch_loss.py time REPS B D        median ns of CLIP fwd+bwd (open_clip's two logit
                                          matmuls), CLIP with one matmul and .T, SigLIP fwd+bwd
  peer_torch_loss.py peak clip|siglip B D peak RSS growth in bytes of one fwd+bwd
  peer_torch_loss.py check                only the check below (`make check-torch`)

The losses are written as open_clip computes them (ClipLoss: two logit matmuls and two
F.cross_entropy calls; SigLipLoss: 2*eye - ones labels and -logsigmoid(...).sum() / B), with
autograd for the backward, on L2-normalised float32 features; CLIP also as one logit matmul
whose transpose gives the text logits (the same loss, one GEMM less; before timing, its loss and
gradients are checked against open_clip's form at B 64, exit 1 on a mismatch). The bench runs this script
with one BLAS thread (bench/peer_util.py) and torch.set_num_threads(1): one core, like libmm's single-thread
case. Times are medians of process CPU time (bench/peer_util.py). Prints nothing and exits 1
when torch is missing, so the C side shows "n/a".
"""
import math
import resource
import sys

from peer_util import median_cpu_ns, setup

import torch
import torch.nn.functional as F


def clip_loss(x, y, t):
    s = t.exp()
    logits_per_image = s * x @ y.T
    logits_per_text = s * y @ x.T
    labels = torch.arange(x.shape[0])
    return (F.cross_entropy(logits_per_image, labels) +
            F.cross_entropy(logits_per_text, labels)) / 2


def clip_loss_one_matmul(x, y, t):
    logits = t.exp() * x @ y.T
    labels = torch.arange(x.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def siglip_loss(x, y, t, b):
    logits = t.exp() * x @ y.T + b
    n = x.shape[0]
    labels = 2 * torch.eye(n) - torch.ones(n, n)
    return -F.logsigmoid(labels * logits).sum() / n


def make_inputs(n, d):
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(n, d, generator=g), dim=-1).requires_grad_(True)
    y = F.normalize(torch.randn(n, d, generator=g), dim=-1).requires_grad_(True)
    t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    return x, y, t, b


def step(kind, x, y, t, b):
    x.grad = y.grad = t.grad = b.grad = None
    if kind == "clip":
        loss = clip_loss(x, y, t)
    elif kind == "clip1":
        loss = clip_loss_one_matmul(x, y, t)
    else:
        loss = siglip_loss(x, y, t, b)
    loss.backward()


def check_forms():
    """The one-matmul CLIP form must give open_clip's loss and gradients (a fast wrong peer
    would not be a fair one)."""
    x, y, t, b = make_inputs(64, 32)
    got = []
    for fn in (clip_loss, clip_loss_one_matmul):
        x.grad = y.grad = t.grad = None
        loss = fn(x, y, t)
        loss.backward()
        got.append([loss.detach().clone(), x.grad.clone(), y.grad.clone(), t.grad.clone()])
    for ref, one in zip(*got):
        if not torch.allclose(one, ref, rtol=1e-4, atol=1e-6):
            print("peer_torch_loss: CLIP one-matmul form disagrees with open_clip's", file=sys.stderr)
            sys.exit(1)


def main(argv):
    setup()
    if argv[0] == "check":
        check_forms()
        print("peer_torch_loss: the one-matmul CLIP form agrees with open_clip's")
        return 0
    if argv[0] == "time":
        check_forms()
        reps, n, d = int(argv[1]), int(argv[2]), int(argv[3])
        x, y, t, b = make_inputs(n, d)
        for kind in ("clip", "clip1", "siglip"):
            print(f"{median_cpu_ns(lambda: step(kind, x, y, t, b), reps):.1f}", flush=True)
        return 0
    kind, n, d = argv[1], int(argv[2]), int(argv[3])
    x, y, t, b = make_inputs(n, d)
    # ru_maxrss is the process's peak RSS in KiB: read it after the inputs exist and after one
    # step, so the difference is what the loss itself needed at its peak.
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(kind, x, y, t, b)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{(peak - base) * 1024.0:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
