# SPDX-License-Identifier: MIT
"""gen_torch_vectors.py -- regenerates the PyTorch interop vectors that tests/test_io.c checks
without torch. Run from the repository root:  /usr/bin/python3 tests/vectors/gen_torch_vectors.py

  torch_mlp.safetensors      nn.Sequential exported by tools/torch_io.py (architecture metadata)
  torch_mlp_io.safetensors   {"x": inputs [7, 5], "y": PyTorch's outputs [7, 3]}
  torch_plain.safetensors    a plain state_dict (Linear, LayerNorm, Linear), metadata only
                             {"format": "pt"} as safetensors.torch.save_file writes it: libmm
                             infers the architecture
  torch_plain_io.safetensors {"x": [7, 5], "y": [7, 2]}
"""

import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import torch_io  # noqa: E402


def main():
    torch.manual_seed(20240611)
    mlp = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.LayerNorm(8),
                        nn.Linear(8, 6), nn.GELU(), nn.Linear(6, 3))
    with torch.no_grad():
        mlp[4].weight.uniform_(0.5, 1.5)
        mlp[4].bias.uniform_(-0.5, 0.5)
    x = torch.randn(7, 5)
    with torch.no_grad():
        y = mlp(x)
    torch_io.export_sequential(mlp, os.path.join(HERE, "torch_mlp.safetensors"))
    torch_io.write_safetensors(os.path.join(HERE, "torch_mlp_io.safetensors"),
                               {"x": x, "y": y}, {"generator": "gen_torch_vectors.py"})

    plain = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with torch.no_grad():
        plain[1].weight.uniform_(0.5, 1.5)
        plain[1].bias.uniform_(-0.5, 0.5)
        y2 = plain(x)
    torch_io.write_safetensors(os.path.join(HERE, "torch_plain.safetensors"), plain.state_dict(),
                               {"format": "pt"})
    torch_io.write_safetensors(os.path.join(HERE, "torch_plain_io.safetensors"),
                               {"x": x, "y": y2}, {"generator": "gen_torch_vectors.py"})


if __name__ == "__main__":
    main()
