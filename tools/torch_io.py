# SPDX-License-Identifier: MIT
"""torch_io.py -- move nn.Sequential models between PyTorch and libmm (safetensors files).

    import torch_io
    torch_io.export_sequential(model, "policy.safetensors")   # PyTorch -> libmm
    model = torch_io.import_sequential("policy.safetensors")  # libmm (or this tool) -> PyTorch

A libmm model file is a safetensors file whose tensors are the state_dict of an nn.Sequential
("0.weight", "0.bias", "2.weight", ...: activations take an index too) and whose __metadata__
carries the architecture as JSON text (docs/FORMAT.md). export_sequential writes that metadata,
so libmm's mm_model_load rebuilds the model; import_sequential reads files written by libmm or by
export_sequential. Only torch, json and struct are used (no safetensors package needed); the
files are ordinary safetensors files that safetensors.torch.load_file also reads.

Supported layers: Linear, ReLU, Tanh, Sigmoid, GELU (exact), SiLU, ELU (alpha 1), Softplus
(beta 1, threshold 20), ReLU2 (below), LayerNorm (last axis, with or without affine), RMSNorm
(torch >= 2.4, or the class below) and Embedding (input = integer-valued float indices).
"""

import json
import struct

import torch
from torch import nn

FORMAT_VERSION = "1.0"
_F32_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps, RMSNorm's eps=None

# MM_ACT_* numbers of include/mm.h (stable).
_ACT_IDS = {"ReLU": 1, "Tanh": 2, "Sigmoid": 3, "GELU": 4, "SiLU": 5, "ELU": 6, "Softplus": 7,
            "ReLU2": 8}


class ReLU2(nn.Module):
    """max(x, 0)^2, libmm's MM_ACT_RELU2 (PyTorch has no module for it)."""

    def forward(self, x):
        return torch.relu(x) ** 2


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm for PyTorch versions that lack it (same parameter name "weight")."""

    def __init__(self, dim, eps=None, elementwise_affine=True):
        super().__init__()
        self.eps = eps
        self.normalized_shape = (dim,)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(dim))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        eps = _F32_EPS if self.eps is None else self.eps
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * self.weight if self.weight is not None else y


class _Embed(nn.Module):
    """libmm's embedding on PyTorch: each of the W index values of the last axis is looked up
    and the vectors are concatenated ([..., W] -> [..., W * dim]). The table is "weight", so the
    state_dict matches nn.Embedding's."""

    def __init__(self, num, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num, dim))

    def forward(self, x):
        v = nn.functional.embedding(x.long(), self.weight)
        return v.reshape(*x.shape[:-1], x.shape[-1] * self.weight.shape[1])


# ---- safetensors without the safetensors package --------------------------------------------
def write_safetensors(path, tensors, metadata=None):
    """Writes an ordered dict name -> float32 tensor as a safetensors file (header padded with
    spaces to a multiple of 8 bytes, data little-endian)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous().cpu()
        flat = t.reshape(-1).tolist()
        blob = struct.pack("<%df" % len(flat), *flat)
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reads a safetensors file of F32 tensors: returns (metadata dict, {name: tensor}) in file
    order. Raises ValueError for anything malformed."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("header length past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    if meta.get("format") == "libmm-policy" or (meta.get("format") == "libmm" and "algo" in meta):
        raise ValueError("this is an mm_policy file (several networks and statistics), not a "
                         "model: export the actor with mm_policy_export_save and read that")
    out = {}
    for name, d in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if d["dtype"] != "F32":
            raise ValueError("%s: dtype %s (only F32)" % (name, d["dtype"]))
        b, e = d["data_offsets"]
        count = 1
        for s in d["shape"]:
            count *= s
        if e - b != 4 * count or e > len(data):
            raise ValueError("%s: data_offsets do not match the shape" % name)
        vals = struct.unpack("<%df" % count, data[b:e])
        out[name] = torch.tensor(vals, dtype=torch.float32).reshape(d["shape"])
    return meta, out


# ---- architecture --------------------------------------------------------------------------
def _describe(layer, width):
    """Returns (layer description, output width) for one module at input width."""
    name = type(layer).__name__
    if isinstance(layer, nn.Linear):
        if layer.in_features != width:
            raise ValueError("Linear expects %d inputs, previous width is %d"
                             % (layer.in_features, width))
        return ({"kind": "dense", "icfg": [layer.out_features, int(layer.bias is not None), 0],
                 "dcfg": [1.0]}, layer.out_features)
    if name in _ACT_IDS:
        if name == "GELU" and getattr(layer, "approximate", "none") != "none":
            raise ValueError("libmm's GELU is the exact erf form")
        if name == "ELU" and layer.alpha != 1.0:
            raise ValueError("libmm's ELU has alpha 1")
        if name == "Softplus" and (layer.beta != 1 or layer.threshold != 20):
            raise ValueError("libmm's Softplus has beta 1, threshold 20")
        return {"kind": "activation", "icfg": [_ACT_IDS[name]], "dcfg": []}, width
    if isinstance(layer, nn.LayerNorm):
        if tuple(layer.normalized_shape) != (width,):
            raise ValueError("LayerNorm must normalise the last axis (%d)" % width)
        if layer.elementwise_affine and getattr(layer, "bias", True) is None:
            raise ValueError("LayerNorm without bias is not supported")
        return ({"kind": "layernorm", "icfg": [int(layer.elementwise_affine)],
                 "dcfg": [float(layer.eps)]}, width)
    if name == "RMSNorm":
        if tuple(layer.normalized_shape) != (width,):
            raise ValueError("RMSNorm must normalise the last axis (%d)" % width)
        eps = _F32_EPS if layer.eps is None else float(layer.eps)
        return ({"kind": "rmsnorm", "icfg": [int(layer.elementwise_affine)], "dcfg": [eps]},
                width)
    if isinstance(layer, (nn.Embedding, _Embed)):
        num, dim = layer.weight.shape
        return {"kind": "embedding", "icfg": [num, dim], "dcfg": []}, width * dim
    raise ValueError("unsupported layer %s" % name)


def _first_width(model):
    for layer in model:
        if isinstance(layer, nn.Linear):
            return layer.in_features
        if isinstance(layer, nn.LayerNorm) or type(layer).__name__ == "RMSNorm":
            return layer.normalized_shape[0]
        if isinstance(layer, (nn.Embedding, _Embed)):
            return 1
    raise ValueError("cannot infer input_dim: pass it")


def export_sequential(module, path, input_dim=None):
    """Writes an nn.Sequential (or a single supported layer) as a libmm-loadable safetensors
    file: its state_dict in float32 and __metadata__ {format: "pt", format_version,
    architecture}. input_dim is the width of the input's last axis (inferred from the first
    Linear/LayerNorm/RMSNorm; an Embedding first means 1 index per row)."""
    model = module if isinstance(module, nn.Sequential) else nn.Sequential(module)
    width = input_dim if input_dim is not None else _first_width(model)
    layers = []
    for layer in model:
        desc, width = _describe(layer, width)
        layers.append(desc)
    arch = {"input_dim": input_dim if input_dim is not None else _first_width(model),
            "layers": layers}
    meta = {"format": "pt", "format_version": FORMAT_VERSION,
            "architecture": json.dumps(arch, separators=(",", ":"))}
    write_safetensors(path, model.state_dict(), meta)


def _build(desc, width):
    kind, icfg, dcfg = desc["kind"], desc.get("icfg", []), desc.get("dcfg", [])
    if kind == "dense":
        return nn.Linear(width, icfg[0], bias=bool(icfg[1])), icfg[0]
    if kind == "activation" or kind in [k.lower() for k in _ACT_IDS]:
        act = icfg[0] if kind == "activation" else _ACT_IDS[
            [k for k in _ACT_IDS if k.lower() == kind][0]]
        mods = {1: nn.ReLU, 2: nn.Tanh, 3: nn.Sigmoid, 4: nn.GELU, 5: nn.SiLU, 6: nn.ELU,
                7: nn.Softplus, 8: ReLU2}
        return mods[act](), width
    if kind == "layernorm":
        return nn.LayerNorm(width, eps=dcfg[0], elementwise_affine=bool(icfg[0])), width
    if kind == "rmsnorm":
        cls = getattr(nn, "RMSNorm", RMSNorm)
        return cls(width, eps=dcfg[0], elementwise_affine=bool(icfg[0])), width
    if kind == "embedding":
        return _Embed(icfg[0], icfg[1]), width * icfg[1]
    raise ValueError("unsupported layer kind %r" % kind)


def _infer(tensors):
    """Architecture of a plain state_dict: Linear / LayerNorm / RMSNorm at every index."""
    idx = sorted({int(k.split(".")[0]) for k in tensors if not k.startswith("optimizer.")})
    if idx != list(range(len(idx))):
        raise ValueError("no architecture metadata and parameter-free layers in between")
    layers, width = [], None
    for i in idx:
        w, b = tensors["%d.weight" % i], tensors.get("%d.bias" % i)
        if w.dim() == 2:
            layers.append({"kind": "dense", "icfg": [w.shape[0], int(b is not None), 0],
                           "dcfg": [1.0]})
            width = width or w.shape[1]
        else:
            layers.append({"kind": "layernorm" if b is not None else "rmsnorm", "icfg": [1],
                           "dcfg": [1e-5 if b is not None else _F32_EPS]})
            width = width or w.shape[0]
    return {"input_dim": width, "layers": layers}


def import_sequential(path):
    """Reads a libmm model file (or one written by export_sequential, or a plain state_dict
    of Linear/LayerNorm/RMSNorm layers) and returns an nn.Sequential in float32 with the
    parameters loaded (optimizer state tensors are ignored)."""
    meta, tensors = read_safetensors(path)
    major = int(meta.get("format_version", FORMAT_VERSION).split(".")[0])
    if major > int(FORMAT_VERSION.split(".")[0]):
        raise ValueError("file format %s is newer than this tool" % meta["format_version"])
    if "architecture" in meta:
        arch = json.loads(meta["architecture"])
    else:
        arch = _infer(tensors)
    width, mods = arch["input_dim"], []
    for desc in arch["layers"]:
        m, width = _build(desc, width)
        mods.append(m)
    model = nn.Sequential(*mods)
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    model.load_state_dict(state, strict=True)
    return model
