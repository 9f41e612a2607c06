#!/usr/bin/env python3
"""PyTorch peer for bench_loss.c: single-threaded CLIP and SigLIP forward+backward.

Usage:
  peer_torch_loss.py time REPS B D        median ns of CLIP fwd+bwd, then SigLIP fwd+bwd
  peer_torch_loss.py peak clip|siglip B D peak RSS growth in bytes of one fwd+bwd

The losses are written as open_clip computes them (ClipLoss: two logit matmuls and two
F.cross_entropy calls; SigLipLoss: 2*eye - ones labels and -logsigmoid(...).sum() / B), with
autograd for the backward, on L2-normalised float32 features. The bench runs this script with
OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1): one core, like libmm's single-thread case.
Prints nothing and exits 1 when torch is missing, so the C side shows "n/a".
"""
import math
import resource
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(1)


def clip_loss(x, y, t):
    s = t.exp()
    logits_per_image = s * x @ y.T
    logits_per_text = s * y @ x.T
    labels = torch.arange(x.shape[0])
    return (F.cross_entropy(logits_per_image, labels) +
            F.cross_entropy(logits_per_text, labels)) / 2


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
    loss = clip_loss(x, y, t) if kind == "clip" else siglip_loss(x, y, t, b)
    loss.backward()


def median_ns(fn, reps):
    fn()  # warm-up
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return samples[len(samples) // 2]


def main(argv):
    torch.set_num_threads(1)
    if argv[0] == "time":
        reps, n, d = int(argv[1]), int(argv[2]), int(argv[3])
        x, y, t, b = make_inputs(n, d)
        for kind in ("clip", "siglip"):
            print(f"{median_ns(lambda: step(kind, x, y, t, b), reps):.1f}", flush=True)
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
