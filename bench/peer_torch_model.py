#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch peer for bench_model.c: the same model workloads, single-threaded.

Usage: peer_torch_model.py REPS CASE [CASE ...]
Cases (must match bench_model.c):
  train_relu  one training step of a 4-256-256-1 ReLU MLP at batch 256: zero_grad, forward,
              MSE loss, backward, Adam step
  train_tanh  the same for an 8-64-64-1 tanh MLP at batch 64 (SB3 on-policy size)
  infer_tanh  single-observation forward of a 3-256-256-1 tanh MLP under torch.no_grad()
Prints one median process CPU time in nanoseconds per case, in order (bench/peer_util.py).
Prints nothing and exits 1 when torch is missing, so the C side shows "n/a".
"""
import sys

from peer_util import median_cpu_ns, setup

import torch


def mlp(sizes, act):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def train_case(sizes, act, batch):
    net = mlp(sizes, act)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, sizes[0]) * 2 - 1
    t = torch.rand(batch, sizes[-1]) * 2 - 1

    def step():
        opt.zero_grad()
        loss = ((net(x) - t) ** 2).mean()
        loss.backward()
        opt.step()
    return step


def infer_case():
    net = mlp([3, 256, 256, 1], torch.nn.Tanh)
    o = torch.rand(1, 3)

    def fwd():
        with torch.no_grad():
            net(o)
    return fwd


CASES = {
    "train_relu": lambda: train_case([4, 256, 256, 1], torch.nn.ReLU, 256),
    "train_tanh": lambda: train_case([8, 64, 64, 1], torch.nn.Tanh, 64),
    "infer_tanh": infer_case,
}


def main(argv):
    setup()
    reps = int(argv[0])
    for name in argv[1:]:
        print("%.1f" % median_cpu_ns(CASES[name](), reps))


if __name__ == "__main__":
    main(sys.argv[1:])
