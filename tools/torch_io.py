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
(torch >= 2.4, or the class below) and Embedding (input = integer-valued float indices), and
libmm's sequence blocks as the modules below, whose parameters carry the reference
implementations' names and whose forward is the block's math (docs/MODEL.md, docs/FORMAT.md):
AttentionBlock (mm_model_add_attention: every kind except PERFORMER, whose projection is drawn
by libmm's RNG), GAU (mm_model_add_gau), Mamba (mm_model_add_mamba), S4D (mm_model_add_s4d),
CrossAttention (mm_model_add_cross_attention; in a ContextSequential, whose forward(x, ctx)
passes the context tokens as mm_model_forward_ctx does). They act on [batch, seq, width] inputs
(a 2-D input is seq 1), as in libmm. RWKV-6 (MM_ATTN_RWKV6) is an mm_attn kind only, not a
model layer, so no model file holds it.
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


# ---- sequence blocks -------------------------------------------------------------------------
_ATTN = {"softmax": 1, "linear": 2, "performer": 3, "relu2": 4, "sparse": 5, "gated": 6}
_LN_EPS = 1e-5  # the blocks' non-affine LayerNorm


def _relu2_attention(q, k, v, causal, chunk):
    """libmm's MM_ATTN_RELU2 on [..., T, d] (docs/ATTENTION.md): one non-causal chunk is GAU's
    relu(q k^T / T)^2 v; otherwise FLASH's mixed chunks of length chunk: relu(q k^T / C)^2
    inside a chunk (causal: j <= i) plus a linear term across chunks (causal: the exclusive
    prefix of k^T v over earlier chunks / C; non-causal: all of k^T v / T)."""
    t = q.shape[-2]
    if not causal and chunk >= t:
        return torch.relu(q @ k.transpose(-1, -2) / t) ** 2 @ v
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    prefix = torch.zeros(*q.shape[:-2], q.shape[-1], v.shape[-1], dtype=q.dtype)
    total = k.transpose(-1, -2) @ v / t
    for s in range(0, t, chunk):
        e = min(s + chunk, t)
        qg, kg, vg = q[..., s:e, :], k[..., s:e, :], v[..., s:e, :]
        a = torch.relu(qg @ kg.transpose(-1, -2) / chunk) ** 2
        if causal:
            a = a * torch.tril(torch.ones(e - s, e - s, dtype=q.dtype))
            out[..., s:e, :] = a @ vg + qg @ prefix / chunk
            prefix = prefix + kg.transpose(-1, -2) @ vg
        else:
            out[..., s:e, :] = a @ vg + qg @ total
    return out


def _attention(kind, q, k, v, causal, variant, aux):
    """One mm_attn kind on q, k [B, H, T, d], v [B, H, T, dv] as the model block runs it
    (scale 1/sqrt(d), LINEAR normalised with eps 1e-6, T = M)."""
    t, d = q.shape[-2], q.shape[-1]
    i = torch.arange(t).unsqueeze(1)
    j = torch.arange(t).unsqueeze(0)
    if kind in (1, 5):  # SOFTMAX, SPARSE
        s = q @ k.transpose(-1, -2) / d ** 0.5
        mask = torch.ones(t, t, dtype=torch.bool)
        if causal or kind == 5:
            mask = j <= i
        if kind == 5 and variant == 1:
            mask = mask & (j > i - aux)
        if kind == 5 and variant == 2:
            mask = mask & ((i - j) % aux == 0)
        p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
        return p @ v
    if kind == 2:  # LINEAR
        phi = {1: lambda x: nn.functional.elu(x) + 1, 2: torch.relu, 3: lambda x: x}[variant]
        w = phi(q) @ phi(k).transpose(-1, -2)
        if causal:
            w = w * (j <= i).to(w.dtype)
        return (w @ v) / (w.sum(-1, keepdim=True) + 1e-6)
    if kind == 4:
        return _relu2_attention(q, k, v, causal, aux)
    if kind == 6:  # GATED: decay gamma_h^(i-j) (RetNet) or none, causal, unnormalised
        w = (q / d ** 0.5) @ k.transpose(-1, -2) * (j <= i).to(q.dtype)
        if variant == 1:
            h = torch.arange(q.shape[1], dtype=torch.float64)
            gamma = (1 - 2.0 ** (-5 - h)).view(-1, 1, 1)
            expo = (i - j).clamp(min=0).to(torch.float64)
            w = w * (gamma ** expo).to(q.dtype)
        return w @ v
    raise ValueError("attention kind %d has no PyTorch form here (PERFORMER draws its "
                     "projection from libmm's RNG)" % kind)


def _as3d(x):
    return (x.unsqueeze(1), True) if x.dim() == 2 else (x, False)


class AttentionBlock(nn.Module):
    """mm_model_add_attention: y = x + Attn(q, k, v) W_out^T + b_out, [q | k | v] =
    LN(x) W_in^T + b_in (non-affine LayerNorm, eps 1e-5), nn.MultiheadAttention's tensors.
    kind: "softmax", "linear", "relu2", "sparse" or "gated"; variant: LINEAR feature map
    (1 elu+1, 2 relu, 3 identity), SPARSE pattern (1 local, 2 strided), GATED gate (0 none,
    1 RetNet); aux: RELU2/GATED chunk, SPARSE window or stride."""

    def __init__(self, width, kind, heads, d_head, dv=None, causal=False, variant=0, aux=0,
                 seed=0):
        super().__init__()
        self.kind = _ATTN[kind] if isinstance(kind, str) else int(kind)
        if self.kind == 3:
            raise ValueError("PERFORMER attention blocks are not convertible: libmm draws their "
                             "projection from its own RNG")
        self.heads, self.d_head, self.dv = heads, d_head, dv or d_head
        self.causal, self.variant, self.aux, self.seed = int(causal), variant, aux, seed
        self.width = width
        rows = heads * (2 * d_head + self.dv)
        self.in_proj_weight = nn.Parameter(torch.empty(rows, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(rows))
        self.out_proj = nn.Linear(heads * self.dv, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def icfg(self):
        return [self.kind, self.heads, self.d_head, self.dv, self.causal, self.variant,
                self.aux, self.seed]

    def forward(self, x):
        x, flat = _as3d(x)
        b, t, _ = x.shape
        h, dk, dv = self.heads, self.d_head, self.dv
        p = nn.functional.linear(nn.functional.layer_norm(x, (self.width,), eps=_LN_EPS),
                                 self.in_proj_weight, self.in_proj_bias)
        q = p[..., :h * dk].reshape(b, t, h, dk).transpose(1, 2)
        k = p[..., h * dk:2 * h * dk].reshape(b, t, h, dk).transpose(1, 2)
        v = p[..., 2 * h * dk:].reshape(b, t, h, dv).transpose(1, 2)
        o = _attention(self.kind, q, k, v, self.causal, self.variant, self.aux)
        y = x + self.out_proj(o.transpose(1, 2).reshape(b, t, h * dv))
        return y.squeeze(1) if flat else y


class GAU(nn.Module):
    """mm_model_add_gau (Hua et al. 2022): xn = LN(x), [U | V | Z] = SiLU(uvz(xn)),
    q = Z gamma_q + beta_q, k = Z gamma_k + beta_k (rows of qk: gamma_q, gamma_k, beta_q,
    beta_k), y = x + out(U * relu2attn(q, k, V))."""

    def __init__(self, width, expansion=0, qk_dim=0, causal=False, chunk=0):
        super().__init__()
        self.width = width
        self.e = expansion or 2 * width
        self.s = qk_dim or 128
        self.causal, self.chunk = int(causal), chunk or 256
        self.qk = nn.Parameter(torch.cat([torch.randn(2, self.s) * 0.02, torch.zeros(2, self.s)]))
        self.uvz = nn.Linear(width, 2 * self.e + self.s)
        self.out = nn.Linear(self.e, width, bias=False)

    def icfg(self):
        return [self.e, self.s, self.causal, self.chunk]

    def forward(self, x):
        x, flat = _as3d(x)
        xn = nn.functional.layer_norm(x, (self.width,), eps=_LN_EPS)
        hid = nn.functional.silu(self.uvz(xn))
        u, v, z = hid[..., :self.e], hid[..., self.e:2 * self.e], hid[..., 2 * self.e:]
        q = z * self.qk[0] + self.qk[2]
        k = z * self.qk[1] + self.qk[3]
        a = _relu2_attention(q, k, v, self.causal, self.chunk)
        y = x + self.out(u * a)
        return y.squeeze(1) if flat else y


class Mamba(nn.Module):
    """mm_model_add_mamba (mamba_ssm's Mamba with bias-free in/out projections; its
    selective_scan_ref math): in_proj -> causal depthwise conv1d -> SiLU -> x_proj ->
    softplus(dt_proj) -> selective scan with D skip and silu(z) gate -> out_proj. No residual."""

    def __init__(self, width, d_state=16, d_conv=4, expand=2, dt_rank=0, dt_min=1e-3,
                 dt_max=0.1, dt_floor=1e-4):
        super().__init__()
        self.width, self.n, self.w, self.expand = width, d_state, d_conv, expand
        self.dt_rank_cfg = dt_rank
        self.r = dt_rank or (width + 15) // 16
        self.dcfg = [dt_min, dt_max, dt_floor]
        e = expand * width
        self.e = e
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32))
                                  .repeat(e, 1))
        self.D = nn.Parameter(torch.ones(e))
        self.in_proj = nn.Linear(width, 2 * e, bias=False)
        self.conv1d = nn.Conv1d(e, e, d_conv, groups=e, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(e, self.r + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.r, e, bias=True)
        self.out_proj = nn.Linear(e, width, bias=False)

    def icfg(self):
        return [self.n, self.w, self.expand, self.dt_rank_cfg]

    def forward(self, x):
        x, flat = _as3d(x)
        b, t, _ = x.shape
        xh, z = self.in_proj(x).chunk(2, dim=-1)
        u = nn.functional.silu(self.conv1d(xh.transpose(1, 2))[..., :t]).transpose(1, 2)
        dt_low, bm, cm = self.x_proj(u).split([self.r, self.n, self.n], dim=-1)
        delta = nn.functional.softplus(self.dt_proj(dt_low))  # [b, t, e]
        a = -torch.exp(self.A_log)  # [e, n]
        state = torch.zeros(b, self.e, self.n, dtype=x.dtype)
        ys = []
        for s in range(t):
            da = torch.exp(delta[:, s, :, None] * a)
            state = da * state + (delta[:, s] * u[:, s])[..., None] * bm[:, s, None, :]
            ys.append((state * cm[:, s, None, :]).sum(-1))
        y = (torch.stack(ys, dim=1) + self.D * u) * nn.functional.silu(z)
        out = self.out_proj(y)
        return out.squeeze(1) if flat else out


class _S4DKernel(nn.Module):
    def __init__(self, h, n):
        super().__init__()
        m = n // 2
        self.C = nn.Parameter(torch.randn(h, m, 2) * 0.5 ** 0.5)
        self.log_dt = nn.Parameter(torch.rand(h) * (torch.log(torch.tensor(0.1)) -
                                                    torch.log(torch.tensor(1e-3))) +
                                   torch.log(torch.tensor(1e-3)))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(h, m)))
        self.A_imag = nn.Parameter(torch.pi * torch.arange(m, dtype=torch.float32).repeat(h, 1))

    def forward(self, length):
        """K [H, L] = 2 Re sum_n C_n (exp(dt A_n) - 1) / A_n exp(l dt A_n), in complex128."""
        dt = torch.exp(self.log_dt.double())
        c = torch.view_as_complex(self.C.double().contiguous())
        a = -torch.exp(self.log_A_real.double()) + 1j * self.A_imag.double()
        dta = a * dt[:, None]
        c = c * (torch.exp(dta) - 1.0) / a
        return 2 * torch.einsum("hn,hnl->hl", c,
                                torch.exp(dta[..., None] * torch.arange(length))).real


class S4D(nn.Module):
    """mm_model_add_s4d (state-spaces/s4 s4d.py S4D, transposed=False, no dropout): y = K * u +
    D u (causal convolution along the sequence per channel), out = GLU(Conv1d(H, 2H, 1)(GELU(y)))
    on [B, T, H]. No residual."""

    def __init__(self, width, d_state=64):
        super().__init__()
        self.h, self.n = width, d_state
        self.D = nn.Parameter(torch.randn(width))
        self.kernel = _S4DKernel(width, d_state)
        self.output_linear = nn.Sequential(nn.Conv1d(width, 2 * width, kernel_size=1),
                                           nn.GLU(dim=-2))

    def icfg(self):
        return [self.n]

    def forward(self, x):
        x, flat = _as3d(x)
        t = x.shape[1]
        u = x.transpose(1, 2)  # [B, H, T]
        k = self.kernel(t)  # [H, T] float64
        ud = u.double()
        y = torch.zeros_like(ud)
        for lag in range(t):
            y[..., lag:] += k[:, lag, None] * ud[..., :t - lag]
        y = (y + ud * self.D.double()[:, None]).to(x.dtype)
        out = self.output_linear(nn.functional.gelu(y)).transpose(1, 2)
        return out.squeeze(1) if flat else out


class CrossAttention(nn.Module):
    """mm_model_add_cross_attention (BLIP's image-grounded text layer): the tokens x [B, T, width]
    attend to context tokens ctx [B, M, ctx_dim]: q = q_proj(LN(x)) (non-affine, eps 1e-5),
    [k | v] = kv_proj(ctx) (keys, then values; head-major), y = x + out_proj(softmax(q k^T /
    sqrt(d_head)) v), no mask. It takes the context as a second argument, so it lives in a
    ContextSequential (below), not a plain nn.Sequential."""

    def __init__(self, width, heads, d_head, ctx_dim, max_ctx):
        super().__init__()
        self.width, self.heads, self.d_head = width, heads, d_head
        self.ctx_dim, self.max_ctx = ctx_dim, max_ctx
        self.q_proj = nn.Linear(width, heads * d_head)
        self.kv_proj = nn.Linear(ctx_dim, 2 * heads * d_head)
        self.out_proj = nn.Linear(heads * d_head, width)
        for lin in (self.q_proj, self.kv_proj, self.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def icfg(self):
        return [self.heads, self.d_head, self.ctx_dim, self.max_ctx]

    def forward(self, x, ctx):
        x, flat = _as3d(x)
        b, t, _ = x.shape
        m = ctx.shape[1]
        if ctx.dim() != 3 or ctx.shape[0] != b or ctx.shape[2] != self.ctx_dim or m > self.max_ctx:
            raise ValueError("ctx must be [%d, 1..%d, %d], not %s"
                             % (b, self.max_ctx, self.ctx_dim, list(ctx.shape)))
        h, dk = self.heads, self.d_head
        q = self.q_proj(nn.functional.layer_norm(x, (self.width,), eps=_LN_EPS))
        q = q.reshape(b, t, h, dk).transpose(1, 2)
        kv = self.kv_proj(ctx)
        k = kv[..., :h * dk].reshape(b, m, h, dk).transpose(1, 2)
        v = kv[..., h * dk:].reshape(b, m, h, dk).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / dk ** 0.5, dim=-1)
        y = x + self.out_proj((a @ v).transpose(1, 2).reshape(b, t, h * dk))
        return y.squeeze(1) if flat else y


class ContextSequential(nn.Sequential):
    """An nn.Sequential whose forward(x, ctx) hands the context tokens to its CrossAttention
    layers (libmm's mm_model_forward_ctx); import_sequential returns one for a file with a
    cross_attention layer, and export_sequential writes one like any nn.Sequential."""

    def forward(self, x, ctx=None):
        for layer in self:
            if isinstance(layer, CrossAttention):
                if ctx is None:
                    raise ValueError("this model has cross-attention layers: pass ctx")
                x = layer(x, ctx)
            else:
                x = layer(x)
        return x


_BLOCKS = {"attention": AttentionBlock, "gau": GAU, "mamba": Mamba, "s4d": S4D,
           "cross_attention": CrossAttention}


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
    for kind, cls in _BLOCKS.items():
        if isinstance(layer, cls):
            if getattr(layer, "width", getattr(layer, "h", width)) != width:
                raise ValueError("%s block built for width %d, previous width is %d"
                                 % (kind, layer.width, width))
            dcfg = [float(v) for v in layer.dcfg] if kind == "mamba" else []
            return {"kind": kind, "icfg": [int(v) for v in layer.icfg()], "dcfg": dcfg}, width
    raise ValueError("unsupported layer %s" % name)


def _first_width(model):
    for layer in model:
        if isinstance(layer, nn.Linear):
            return layer.in_features
        if isinstance(layer, nn.LayerNorm) or type(layer).__name__ == "RMSNorm":
            return layer.normalized_shape[0]
        if isinstance(layer, (nn.Embedding, _Embed)):
            return 1
        if isinstance(layer, tuple(_BLOCKS.values())):
            return getattr(layer, "width", getattr(layer, "h", None))
    raise ValueError("cannot infer input_dim: pass it")


def export_sequential(module, path, input_dim=None):
    """Writes an nn.Sequential (or a single supported layer) as a libmm-loadable safetensors
    file: its state_dict in float32 and __metadata__ {format: "pt", format_version,
    architecture}. input_dim is the width of the input's last axis (inferred from the first
    Linear/LayerNorm/RMSNorm; an Embedding first means 1 index per row)."""
    model = module if isinstance(module, nn.Sequential) else nn.Sequential(module)
    write_safetensors(path, model.state_dict(), architecture_metadata(model, input_dim))


def architecture_metadata(module, input_dim=None):
    """The __metadata__ export_sequential writes ({format: "pt", format_version,
    architecture}), for files written by other tools, e.g.
    safetensors.torch.save_file(model.state_dict(), path, architecture_metadata(model))."""
    model = module if isinstance(module, nn.Sequential) else nn.Sequential(module)
    width = input_dim if input_dim is not None else _first_width(model)
    layers = []
    for layer in model:
        desc, width = _describe(layer, width)
        layers.append(desc)
    arch = {"input_dim": input_dim if input_dim is not None else _first_width(model),
            "layers": layers}
    return {"format": "pt", "format_version": FORMAT_VERSION,
            "architecture": json.dumps(arch, separators=(",", ":"))}


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
    if kind == "attention":
        return AttentionBlock(width, icfg[0], icfg[1], icfg[2], icfg[3], icfg[4], icfg[5],
                              icfg[6], icfg[7]), width
    if kind == "gau":
        return GAU(width, icfg[0], icfg[1], icfg[2], icfg[3]), width
    if kind == "mamba":
        return Mamba(width, icfg[0], icfg[1], icfg[2], icfg[3], *dcfg), width
    if kind == "s4d":
        return S4D(width, icfg[0]), width
    if kind == "cross_attention":
        return CrossAttention(width, icfg[0], icfg[1], icfg[2], icfg[3]), width
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
    return sequential_from(meta, tensors)


def sequential_from(meta, tensors):
    """import_sequential on what another reader returned: the __metadata__ dict and the
    tensors by name (e.g. safetensors.safe_open(path, "pt").metadata() and
    safetensors.torch.load_file(path))."""
    meta = meta or {}
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
    ctx = any(isinstance(m, CrossAttention) for m in mods)
    model = ContextSequential(*mods) if ctx else nn.Sequential(*mods)
    state = {k: v.to(torch.float32) for k, v in tensors.items() if not k.startswith("optimizer.")}
    model.load_state_dict(state, strict=True)
    return model
