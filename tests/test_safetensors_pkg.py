# SPDX-License-Identifier: MIT
"""test_safetensors_pkg.py -- libmm model files against the official `safetensors` package.

Run by `make check-safetensors` (part of `make check-torch`) with the Python of a virtual
environment that has safetensors installed (the target makes it under build/). Checks that
  * safetensors reads files libmm wrote (MLP with optimizer state, every sequence block): the
    same names, shapes, values and __metadata__ as libmm's own description of the file;
  * libmm loads files safetensors wrote: a state_dict saved by safetensors.torch.save_file with
    tools/torch_io.py's architecture metadata, and a plain state_dict with no metadata (saved
    by safetensors.numpy), each giving PyTorch's outputs;
  * a libmm file read by safetensors and written back by safetensors loads in libmm with
    bitwise the same outputs.
Ends with "N passed, N failed"; without safetensors (or torch) it says why and exits 0.
"""

import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

try:
    import numpy as np
    import safetensors
    import safetensors.numpy
    import safetensors.torch
    import torch
    from torch import nn
except ImportError as e:
    print("test_safetensors_pkg: SKIPPED: %s" % e)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)

import test_torch_io as tio  # noqa: E402  (helper build, libmm runs, check counters)
import torch_io  # noqa: E402


def libmm_files_read_by_safetensors(tmp):
    for name, args in (("mlp", []), ("blocks", ["blocks"])):
        path = os.path.join(tmp, "libmm_%s.safetensors" % name)
        tio.subprocess.check_call([tio.HELPER, "build", path] + args)
        ours_meta, ours = torch_io.read_safetensors(path)
        with safetensors.safe_open(path, framework="np") as f:
            meta = f.metadata()
            theirs = {k: f.get_tensor(k) for k in f.keys()}
        same = (set(theirs) == set(ours) and meta == ours_meta and meta.get("format") == "libmm"
                and all(list(theirs[k].shape) == list(ours[k].shape) and
                        theirs[k].dtype == np.float32 and
                        np.array_equal(theirs[k], ours[k].numpy()) for k in ours))
        tio.record("safetensors_reads_libmm_%s (%d tensors)" % (name, len(ours)), same)
        # Into PyTorch through safetensors.torch, then back out through safetensors.torch.
        state = safetensors.torch.load_file(path)
        model = torch_io.sequential_from(meta, state)
        x = torch.randn(3, 5, 6 if name == "mlp" else 8)
        want = tio.read_f32(tio.libmm_forward(path, x, tmp), (3, 5, -1))
        with torch.no_grad():
            got = model.double()(x.double()).float()
        tio.check("safetensors_torch_%s_forward_vs_libmm" % name, got, want)
        again = os.path.join(tmp, "again_%s.safetensors" % name)
        params = {k: v for k, v in state.items() if not k.startswith("optimizer.")}
        safetensors.torch.save_file(params, again, metadata={
            "format": "pt", "architecture": meta["architecture"]})
        got2 = tio.read_f32(tio.libmm_forward(again, x, tmp), (3, 5, -1))
        tio.check("safetensors_rewrite_%s_libmm_bitwise" % name, got2, want, rtol=0, atol=0)


def safetensors_files_loaded_by_libmm(tmp):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.LayerNorm(16),
                          torch_io.Mamba(16, d_state=4, d_conv=2, expand=1),
                          torch_io.AttentionBlock(16, "softmax", 2, 4, 4, causal=1),
                          nn.Linear(16, 3))
    path = os.path.join(tmp, "st_torch.safetensors")
    safetensors.torch.save_file(model.state_dict(), path,
                                metadata=torch_io.architecture_metadata(model))
    x = torch.randn(2, 6, 4)
    with torch.no_grad():
        want = model.double()(x.double()).float()
    got = tio.read_f32(tio.libmm_forward(path, x, tmp), want.shape)
    tio.check("libmm_loads_safetensors_torch_save_file", got, want)

    plain = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    ppath = os.path.join(tmp, "st_numpy_plain.safetensors")
    safetensors.numpy.save_file({k: v.detach().numpy() for k, v in plain.state_dict().items()},
                                ppath)
    with torch.no_grad():
        want = plain(x)
    got = tio.read_f32(tio.libmm_forward(ppath, x, tmp), want.shape)
    tio.check("libmm_loads_safetensors_numpy_plain_state_dict", got, want)


def main():
    print("safetensors %s, torch %s" % (safetensors.__version__, torch.__version__))
    tio.build_helper()
    with tempfile.TemporaryDirectory() as tmp:
        libmm_files_read_by_safetensors(tmp)
        safetensors_files_loaded_by_libmm(tmp)
    print("%d passed, %d failed" % (tio.PASSED, tio.FAILED))
    sys.exit(1 if tio.FAILED else 0)


if __name__ == "__main__":
    main()
