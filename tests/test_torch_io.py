# SPDX-License-Identifier: MIT
"""test_torch_io.py -- PyTorch <-> libmm round trips through tools/torch_io.py.

Run from the repository root after `make` (it builds tests/torch_io_helper.c against
lib/libmm.a):  /usr/bin/python3 tests/test_torch_io.py
Ends with "N passed, N failed" (exit 1 on failure); without torch it skips (exit 0).
"""

import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

try:
    import torch
    from torch import nn
except ImportError:
    print("test_torch_io: torch not available, skipped")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)

import torch_io  # noqa: E402

HELPER = os.path.join(ROOT, "build", "tests", "torch_io_helper")
PASSED, FAILED = 0, 0


def build_helper():
    lib = os.path.join(ROOT, "lib", "libmm.a")
    if not os.path.exists(lib):
        subprocess.check_call(["make", "-s", "-C", ROOT, "static"])
    os.makedirs(os.path.dirname(HELPER), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, "-std=c99", "-O2", "-I" + os.path.join(ROOT, "include"),
                           os.path.join(ROOT, "tests", "torch_io_helper.c"), lib, "-lm",
                           "-pthread", "-o", HELPER])


def write_f32(path, t):
    flat = t.detach().reshape(-1).tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(flat), *flat))


def read_f32(path, shape):
    with open(path, "rb") as f:
        raw = f.read()
    return torch.tensor(struct.unpack("<%df" % (len(raw) // 4), raw)).reshape(shape)


def libmm_forward(model_path, x, tmp, ctx=None):
    """Runs the libmm model on x ([rows, width] or [rows, seq, width]; with ctx [rows, M,
    ctx_dim], mm_model_forward_ctx); returns the file of outputs."""
    xin, yout = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.f32")
    write_f32(xin, x)
    seq = [str(x.shape[1])] if x.dim() == 3 else []
    if ctx is not None:
        cin = os.path.join(tmp, "ctx.f32")
        write_f32(cin, ctx)
        seq += [cin, str(ctx.shape[1])]
    subprocess.check_call([HELPER, "run", model_path, xin, str(x.shape[0]), yout] + seq)
    return yout


def record(name, ok):
    global PASSED, FAILED
    print("%s %s" % ("ok" if ok else "not ok", name))
    if ok:
        PASSED += 1
    else:
        FAILED += 1


def check(name, got, want, rtol=1e-5, atol=1e-5):
    err = (got - want).abs().max().item()
    record("%s (max abs diff %.3g)" % (name, err), torch.allclose(got, want, rtol=rtol, atol=atol))


def torch_to_libmm(tmp):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 12), nn.ReLU(),
                          nn.LayerNorm(12), nn.Linear(12, 8), nn.GELU(), nn.Linear(8, 8),
                          nn.SiLU(), nn.Linear(8, 6), nn.ELU(), nn.Linear(6, 6), nn.Softplus(),
                          nn.Linear(6, 4), nn.Sigmoid(), nn.Linear(4, 4, bias=False),
                          torch_io.ReLU2(), torch_io.RMSNorm(4, eps=1e-6), nn.Linear(4, 3))
    with torch.no_grad():  # non-trivial norm parameters
        model[4].weight.uniform_(0.5, 1.5)
        model[4].bias.uniform_(-0.5, 0.5)
        model[17].weight.uniform_(0.5, 1.5)
    path = os.path.join(tmp, "torch.safetensors")
    torch_io.export_sequential(model, path)
    x = torch.randn(7, 5)
    with torch.no_grad():
        want = model(x)
    got = read_f32(libmm_forward(path, x, tmp), want.shape)
    check("pytorch_export_libmm_forward", got, want)
    # A plain state_dict without architecture metadata: libmm infers Linear/LayerNorm.
    plain = nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.Linear(7, 2))
    ppath = os.path.join(tmp, "plain.safetensors")
    torch_io.write_safetensors(ppath, plain.state_dict(), {"format": "pt"})
    with torch.no_grad():
        want = plain(x)
    got = read_f32(libmm_forward(ppath, x, tmp), want.shape)
    check("pytorch_plain_state_dict_libmm_forward", got, want)


def libmm_to_torch(tmp):
    path = os.path.join(tmp, "libmm.safetensors")
    subprocess.check_call([HELPER, "build", path])
    model = torch_io.import_sequential(path)
    x = torch.randn(9, 6)
    with torch.no_grad():
        want = model(x)
    got = read_f32(libmm_forward(path, x, tmp), want.shape)
    check("libmm_save_pytorch_import_forward", want, got)
    # Export what PyTorch imported: libmm reads it back with the same outputs.
    again = os.path.join(tmp, "again.safetensors")
    torch_io.export_sequential(model, again)
    got2 = read_f32(libmm_forward(again, x, tmp), want.shape)
    check("libmm_pytorch_libmm_bitwise", got2, got, rtol=0, atol=0)


def _perturb(model, seed):
    """Every parameter moved off its initial value (norm gains, zero biases, D = 1, ...) so
    that the comparison sees each one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
            if name.endswith("log_A_real"):
                p.clamp_(max=0.5)


def blocks_torch_to_libmm(tmp):
    """Each sequence block built in PyTorch, exported, run by libmm: outputs agree to 1e-5."""
    torch.manual_seed(3)
    x = torch.randn(3, 7, 8)
    cases = [
        ("attention_softmax", torch_io.AttentionBlock(8, "softmax", 2, 4, 3)),
        ("attention_softmax_causal", torch_io.AttentionBlock(8, "softmax", 2, 4, 3, causal=1)),
        ("attention_linear_elu1_causal",
         torch_io.AttentionBlock(8, "linear", 2, 3, 3, causal=1, variant=1)),
        ("attention_linear_identity", torch_io.AttentionBlock(8, "linear", 1, 4, 2, variant=3)),
        ("attention_relu2_one_chunk", torch_io.AttentionBlock(8, "relu2", 2, 4, 3, aux=256)),
        ("attention_relu2_causal_chunks",
         torch_io.AttentionBlock(8, "relu2", 2, 4, 3, causal=1, aux=3)),
        ("attention_relu2_chunks", torch_io.AttentionBlock(8, "relu2", 1, 4, 3, aux=4)),
        ("attention_sparse_local",
         torch_io.AttentionBlock(8, "sparse", 2, 4, 3, causal=1, variant=1, aux=3)),
        ("attention_sparse_strided",
         torch_io.AttentionBlock(8, "sparse", 2, 4, 3, causal=1, variant=2, aux=2)),
        ("attention_gated_none", torch_io.AttentionBlock(8, "gated", 2, 4, 3, causal=1, aux=4)),
        ("attention_gated_retnet",
         torch_io.AttentionBlock(8, "gated", 2, 4, 3, causal=1, variant=1, aux=64)),
        ("gau_one_chunk", torch_io.GAU(8, 6, 5)),
        ("gau_causal_chunks", torch_io.GAU(8, 4, 3, causal=1, chunk=3)),
        ("mamba", torch_io.Mamba(8, d_state=4, d_conv=3, expand=2)),
        ("s4d", torch_io.S4D(8, d_state=6)),
    ]
    for i, (name, block) in enumerate(cases):
        model = nn.Sequential(block, nn.Tanh())
        _perturb(model, i)
        path = os.path.join(tmp, "block.safetensors")
        torch_io.export_sequential(model, path)
        with torch.no_grad():
            want = model.double()(x.double()).float()
        got = read_f32(libmm_forward(path, x, tmp), want.shape)
        check("pytorch_%s_libmm_forward" % name, got, want)


def blocks_libmm_to_torch(tmp):
    """libmm's model with every convertible block, imported into PyTorch: same outputs; the
    imported model exported again loads in libmm with bitwise the same outputs."""
    path = os.path.join(tmp, "blocks.safetensors")
    subprocess.check_call([HELPER, "build", path, "blocks"])
    model = torch_io.import_sequential(path)
    torch.manual_seed(4)
    x = torch.randn(2, 7, 8)
    with torch.no_grad():
        want = model.double()(x.double()).float()
    got = read_f32(libmm_forward(path, x, tmp), want.shape)
    check("libmm_blocks_pytorch_import_forward", got, want)
    again = os.path.join(tmp, "blocks_again.safetensors")
    torch_io.export_sequential(model.float(), again)
    got2 = read_f32(libmm_forward(again, x, tmp), want.shape)
    check("libmm_blocks_pytorch_libmm_bitwise", got2, got, rtol=0, atol=0)


def cross_attention_both_ways(tmp):
    """A ContextSequential with two CrossAttention layers exported to libmm gives
    mm_model_forward_ctx's outputs; imported back it is a ContextSequential with the same
    outputs, and exported again it loads in libmm with bitwise the same outputs. A missing
    context is refused on both sides."""
    torch.manual_seed(6)
    model = torch_io.ContextSequential(nn.Linear(5, 8), torch_io.CrossAttention(8, 2, 3, 6, 4),
                                       nn.Tanh(), torch_io.CrossAttention(8, 1, 4, 6, 4),
                                       nn.Linear(8, 3))
    with torch.no_grad():  # non-zero biases, so a swapped or dropped bias shows
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    path = os.path.join(tmp, "cross.safetensors")
    torch_io.export_sequential(model, path)
    x, ctx = torch.randn(2, 5, 5), torch.randn(2, 4, 6)
    with torch.no_grad():
        want = model.double()(x.double(), ctx.double()).float()
    got = read_f32(libmm_forward(path, x, tmp, ctx), want.shape)
    check("pytorch_cross_attention_libmm_forward_ctx", got, want)
    back = torch_io.import_sequential(path)
    record("cross_attention_imports_as_ContextSequential",
           isinstance(back, torch_io.ContextSequential))
    with torch.no_grad():
        check("libmm_cross_attention_pytorch_import_forward", back(x, ctx), want)
    again = os.path.join(tmp, "cross_again.safetensors")
    torch_io.export_sequential(back.float(), again)
    got2 = read_f32(libmm_forward(again, x, tmp, ctx), want.shape)
    check("libmm_cross_attention_pytorch_libmm_bitwise", got2, got, rtol=0, atol=0)
    try:
        back(x)
        ok = False
    except ValueError as e:
        ok = "ctx" in str(e)
    record("cross_attention_without_ctx_refused", ok)


def policy_actor(tmp):
    """mm_policy_export_save's actor imports into PyTorch with the same forward; the policy
    file itself is refused with a message that names the export."""
    actor = os.path.join(tmp, "actor.safetensors")
    pol = os.path.join(tmp, "policy.safetensors")
    subprocess.check_call([HELPER, "policy", actor, pol])
    model = torch_io.import_sequential(actor)
    x = torch.randn(5, 6)
    with torch.no_grad():
        want = model(x)
    got = read_f32(libmm_forward(actor, x, tmp), want.shape)
    check("policy_export_pytorch_import_forward", want, got)
    try:
        torch_io.import_sequential(pol)
        ok = False
    except ValueError as e:
        ok = "mm_policy_export_save" in str(e)
    record("policy_file_refused_by_name", ok)


def main():
    build_helper()
    with tempfile.TemporaryDirectory() as tmp:
        torch_to_libmm(tmp)
        libmm_to_torch(tmp)
        blocks_torch_to_libmm(tmp)
        blocks_libmm_to_torch(tmp)
        cross_attention_both_ways(tmp)
        policy_actor(tmp)
    print("%d passed, %d failed" % (PASSED, FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
