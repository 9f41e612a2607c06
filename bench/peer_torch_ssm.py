#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch peer for bench_ssm.c, single-threaded, float32.

Usage: peer_torch_ssm.py selective B D L N   -> prints forward and forward+backward median ns
       peer_torch_ssm.py s4d B H L N         -> prints kernel + FFT convolution median ns

selective: mamba_ssm's selective_scan_ref re-implemented in plain torch (a Python loop over L,
           as the reference), variable B/C, D, z, delta bias with softplus.
s4d:       s4d.py's S4DKernel (Vandermonde via exp(dtA * arange(L))) and FFT convolution with
           n = 2L, plus D u.
Times are medians of process CPU time (bench/peer_util.py). Prints nothing and exits 1 when
torch is missing, so the C side shows "n/a".
"""
import sys

from peer_util import median_cpu_ns, setup

import torch
import torch.nn.functional as F


def median_ns(fn, reps=5):
    return median_cpu_ns(fn, reps)


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias):
    delta = F.softplus(delta + delta_bias[..., None])
    deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, u)
    x = A.new_zeros((u.shape[0], A.shape[0], A.shape[1]))
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum('bdn,bn->bd', x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    return (y + u * D[..., None]) * F.silu(z)


def selective(b, d, l, n):
    g = lambda *s: torch.randn(*s, requires_grad=True)
    u, delta, z = g(b, d, l), g(b, d, l), g(b, d, l)
    A = (-torch.rand(d, n)).requires_grad_()
    B, C, D, bias = g(b, n, l), g(b, n, l), g(d), g(d)
    dout = torch.randn(b, d, l)

    def fwd():
        with torch.no_grad():
            selective_scan_ref(u, delta, A, B, C, D, z, bias)

    def fwd_bwd():
        out = selective_scan_ref(u, delta, A, B, C, D, z, bias)
        out.backward(dout)

    print(median_ns(fwd), median_ns(fwd_bwd))


def s4d(b, h, l, n):
    log_dt = torch.rand(h) * (torch.log(torch.tensor(0.1)) - torch.log(torch.tensor(0.001))) \
        + torch.log(torch.tensor(0.001))
    C = torch.randn(h, n // 2, dtype=torch.cfloat)
    log_A_real = torch.log(0.5 * torch.ones(h, n // 2))
    A_imag = torch.pi * torch.arange(n // 2).repeat(h, 1).float()
    u, D = torch.randn(b, h, l), torch.randn(h)

    def run():
        with torch.no_grad():
            dt = torch.exp(log_dt)
            A = -torch.exp(log_A_real) + 1j * A_imag
            dtA = A * dt.unsqueeze(-1)
            K = dtA.unsqueeze(-1) * torch.arange(l)
            Cc = C * (torch.exp(dtA) - 1.) / A
            K = 2 * torch.einsum('hn,hnl->hl', Cc, torch.exp(K)).real
            k_f = torch.fft.rfft(K, n=2 * l)
            u_f = torch.fft.rfft(u, n=2 * l)
            torch.fft.irfft(u_f * k_f, n=2 * l)[..., :l] + u * D.unsqueeze(-1)

    print(median_ns(run, 5))


def main():
    setup()
    kind, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"selective": selective, "s4d": s4d}[kind](*args)


if __name__ == "__main__":
    main()
