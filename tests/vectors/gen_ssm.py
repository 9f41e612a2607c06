#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates tests/vectors/ssm_vectors.h:
1. mamba_ssm's selective scan with every option on (variable grouped B and C, D skip, z gate,
   delta bias with softplus, last state), its outputs and the gradients of every input, computed
   by a plain-torch re-implementation of mamba_ssm's selective_scan_ref
   (mamba_ssm/ops/selective_scan_interface.py, docs/SSM.md §MM_SSM_SELECTIVE) in float32 with autograd. The
   setup follows mamba's tests/ops/test_selective_scan.py: seed 0, batch 2, dim 4, dstate 8,
   A = -0.5 rand, delta = 0.5 rand, delta_bias = 0.5 rand, everything else randn.
2. A Mamba block written as mamba_simple.Mamba's slow path (in_proj, Conv1d with padding
   d_conv - 1 cut to L, SiLU, x_proj, dt_proj with its bias passed to the scan, A = -exp(A_log),
   D, silu(z) gate, out_proj) with torch's default initialisation: its state_dict (in libmm's
   tensor order, which is PyTorch's), input, output, and the gradients of a random projection
   of the output, so libmm's layer is checked against PyTorch's own Conv1d/Linear conventions.

Needs PyTorch (Debian: apt-get install python3-torch; the committed vectors were made with the
version named in the header, x86-64, one thread). Run from the repository root:

    /usr/bin/python3 tests/vectors/gen_ssm.py > tests/vectors/ssm_vectors.h
"""
import torch
import torch.nn.functional as F

BATCH, DIM, DSTATE, SEQLEN, GROUPS = 2, 4, 8, 48, 2


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True):
    """Real-valued selective_scan_ref: B, C are (batch, groups, dstate, L)."""
    delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    # grouped B/C: channel d uses group d // (dim // groups) ("B G N L -> B (G H) N L")
    rep = dim // B.shape[1]
    Bf = B.repeat_interleave(rep, dim=1)  # (batch, dim, dstate, L)
    Cf = C.repeat_interleave(rep, dim=1)
    deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    deltaB_u = torch.einsum('bdl,bdnl,bdl->bdln', delta, Bf, u)
    x = A.new_zeros((batch, dim, dstate))
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum('bdn,bdn->bd', x, Cf[:, :, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[..., None]
    out = out * F.silu(z)
    return out, x


def arr(name, t):
    vals = ", ".join("%.9gf" % v for v in t.detach().reshape(-1).tolist())
    return "static const float %s[%d] = {%s};\n" % (name, t.numel(), vals)


class MambaRef(torch.nn.Module):
    """mamba_simple.Mamba (bias=False, conv_bias=True), the non-fused path, no inference cache."""

    def __init__(self, d_model, d_state=4, d_conv=4, expand=2):
        super().__init__()
        self.d_inner = expand * d_model
        self.dt_rank = -(-d_model // 16)
        self.d_state = d_state
        self.in_proj = torch.nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = torch.nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                      padding=d_conv - 1, bias=True)
        self.x_proj = torch.nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = torch.nn.Linear(self.dt_rank, self.d_inner, bias=True)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = torch.nn.Parameter(torch.log(A) + 0.1 * torch.randn(self.d_inner, d_state))
        self.D = torch.nn.Parameter(1.0 + 0.1 * torch.randn(self.d_inner))
        self.out_proj = torch.nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, h):
        L = h.shape[1]
        xz = self.in_proj(h).transpose(1, 2)                      # (B, 2E, L)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :L])
        x_dbl = self.x_proj(x.transpose(1, 2))                    # (B, L, R + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.t()).transpose(1, 2)       # no bias: it goes to the scan
        B = B.transpose(1, 2).unsqueeze(1)                        # (B, 1, N, L)
        C = C.transpose(1, 2).unsqueeze(1)
        A = -torch.exp(self.A_log)
        y, _ = selective_scan_ref(x, dt, A, B, C, self.D, z, self.dt_proj.bias)
        return self.out_proj(y.transpose(1, 2))


def mamba_block_vectors():
    torch.manual_seed(1)
    d_model, batch, seqlen = 8, 2, 12
    m = MambaRef(d_model)
    x = torch.randn(batch, seqlen, d_model, requires_grad=True)
    y = m(x)
    g = torch.randn_like(y)
    y.backward(g)
    names = [n for n, _ in m.named_parameters()]
    print("/* Mamba block: d_model %d, d_state %d, d_conv 4, expand 2, dt_rank %d; batch %d, "
          "seq %d. Parameters flat in state_dict order: %s */"
          % (d_model, m.d_state, m.dt_rank, batch, seqlen, ", ".join(names)))
    print("#define SSMV_MB_H %d\n#define SSMV_MB_N %d\n#define SSMV_MB_B %d\n#define SSMV_MB_T %d"
          % (d_model, m.d_state, batch, seqlen))
    flat = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    gflat = torch.cat([p.grad.reshape(-1) for p in m.parameters()])
    for name, t in [("mb_params", flat), ("mb_x", x), ("mb_y", y), ("mb_dy", g),
                    ("mb_dparams", gflat), ("mb_dx", x.grad)]:
        print(arr("ssmv_" + name, t), end="")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    A = (-0.5 * torch.rand(DIM, DSTATE)).requires_grad_()
    B = torch.randn(BATCH, GROUPS, DSTATE, SEQLEN).requires_grad_()
    C = torch.randn(BATCH, GROUPS, DSTATE, SEQLEN).requires_grad_()
    D = torch.randn(DIM).requires_grad_()
    z = torch.randn(BATCH, DIM, SEQLEN).requires_grad_()
    delta_bias = (0.5 * torch.rand(DIM)).requires_grad_()
    u = torch.randn(BATCH, DIM, SEQLEN).requires_grad_()
    delta = (0.5 * torch.rand(BATCH, DIM, SEQLEN)).requires_grad_()
    out, last = selective_scan_ref(u, delta, A, B, C, D, z, delta_bias)
    g = torch.randn_like(out)
    out.backward(g)
    print("/* ssm_vectors.h — generated by tests/vectors/gen_ssm.py with torch %s; do not edit."
          % torch.__version__)
    print(" * selective_scan_ref (float32, autograd), all options on. */")
    print("#define SSMV_B %d\n#define SSMV_D %d\n#define SSMV_N %d\n#define SSMV_L %d\n"
          "#define SSMV_G %d" % (BATCH, DIM, DSTATE, SEQLEN, GROUPS))
    for name, t in [("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D), ("z", z),
                    ("delta_bias", delta_bias), ("dout", g), ("out", out), ("last", last),
                    ("du", u.grad), ("ddelta", delta.grad), ("dA", A.grad), ("dB", B.grad),
                    ("dC", C.grad), ("dD", D.grad), ("dz", z.grad),
                    ("ddelta_bias", delta_bias.grad)]:
        print(arr("ssmv_" + name, t), end="")
    mamba_block_vectors()


if __name__ == "__main__":
    main()
