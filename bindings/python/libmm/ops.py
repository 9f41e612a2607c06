# SPDX-License-Identifier: MIT
"""The operator handles: mm_loss (image-text and policy losses), mm_attn (attention) and
mm_ssm (state-space scans, steps and kernels). Inputs are numpy arrays (wrapped without
copies); outputs are new float32 arrays."""
import ctypes
import math

import numpy as np

from . import constants, errors
from ._lib import (lib, LossOpts, AttnOpts, SsmOpts, SsmInputs, SsmGrads, SSM_INPUT_NAMES,
                   f32p, i32p, i64p, c_int32, c_int64)
from .core import (Handle, Tensor, check_int, err_buffer, f32_input, h, int_input, lookup,
                   out_tensor, pointer, raise_create, set_fields, view)


def _create(obj, create, opts):
    buf = err_buffer()
    opts.err_buf, opts.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
    rc = create(ctypes.byref(obj._owner.ptr), ctypes.byref(opts))
    if rc != 0:
        raise_create(rc, buf)


def _ins(*pairs):
    """Tensors of input arrays, converted once to float32 (None stays None): pairs of
    (array, name)."""
    return [None if a is None else Tensor(f32_input(a, n), name=n) for a, n in pairs]


def _outs(*pairs):
    return [out_tensor(a, n) for a, n in pairs]


class Loss(Handle):
    """A loss of one kind ("clip", "siglip", "itc", "cross_entropy", "bce", "kimi"); options
    are mm_loss_opts fields (max_batch, max_dim, tile, group_size, n_threads, seed, ...)."""

    _free = staticmethod(lib.mm_loss_free)
    _errmsg = staticmethod(lib.mm_loss_errmsg)
    _setter = staticmethod(lib.mm_loss_set_f64)
    _getter = staticmethod(lib.mm_loss_get_f64)
    _param_ids = constants.LOSS_PARAMS

    def __init__(self, kind, **fields):
        super().__init__()
        o = LossOpts()
        errors.check(lib.mm_loss_opts_init(ctypes.byref(o),
                                           lookup(constants.LOSSES, kind, "loss")))
        set_fields(o, fields)
        _create(self, lib.mm_loss_create, o)

    def _pair(self, fn, x, y, grad):
        tx, ty = _ins((x, "x"), (y, "y"))
        dx = np.empty_like(tx.array) if grad else None
        dy = np.empty_like(ty.array) if grad else None
        loss = ctypes.c_double()
        tdx, tdy = _outs((dx, "dx"), (dy, "dy"))
        self._call(fn, tx.handle, ty.handle, ctypes.byref(loss), h(tdx), h(tdy))
        return (loss.value, dx, dy) if grad else loss.value

    def clip(self, x, y, grad=True):
        """CLIP loss of features x, y [B, D]; (loss, dx, dy) with grad, else loss."""
        return self._pair(lib.mm_loss_clip, x, y, grad)

    def siglip(self, x, y, grad=True):
        return self._pair(lib.mm_loss_siglip, x, y, grad)

    def cross_entropy(self, logits, targets, grad=True):
        """Softmax cross entropy of logits [N, C] against integer targets [N] (each in
        [0, C) or ignore_index; values beyond int32 are refused, not wrapped)."""
        (tz,) = _ins((logits, "logits"))
        z = tz.array
        if z.ndim != 2:
            raise errors.error(errors.E_SHAPE, "logits has shape %s; expected [N, C]" %
                               (z.shape,))
        t = int_input(targets, "targets", c_int32, (z.shape[0],))
        dz = np.empty_like(z) if grad else None
        loss = ctypes.c_double()
        (tdz,) = _outs((dz, "dlogits"))
        self._call(lib.mm_loss_cross_entropy, tz.handle, pointer(t, i32p), t.size,
                   ctypes.byref(loss), h(tdz))
        return (loss.value, dz) if grad else loss.value

    def bce(self, logits, targets, grad=True):
        tz, tt = _ins((logits, "logits"), (targets, "targets"))
        dz = np.empty_like(tz.array) if grad else None
        loss = ctypes.c_double()
        (tdz,) = _outs((dz, "dlogits"))
        self._call(lib.mm_loss_bce, tz.handle, tt.handle, ctypes.byref(loss), h(tdz))
        return (loss.value, dz) if grad else loss.value

    def kimi(self, logp, logp_old, rewards, grad=True):
        ta, tb, tr = _ins((logp, "logp"), (logp_old, "logp_old"), (rewards, "rewards"))
        d = np.empty_like(ta.array) if grad else None
        loss = ctypes.c_double()
        (td,) = _outs((d, "dlogp"))
        self._call(lib.mm_loss_kimi, ta.handle, tb.handle, tr.handle, ctypes.byref(loss), h(td))
        return (loss.value, d) if grad else loss.value

    def l2_normalize(self, u):
        (tu,) = _ins((u, "u"))
        x = np.empty_like(tu.array)
        (tx,) = _outs((x, "x"))
        self._call(lib.mm_loss_l2_normalize, tu.handle, tx.handle)
        return x

    def kimi_length_reward(self, lengths, rewards, group_size):
        """Kimi k1.5 length reward of N responses in groups of group_size: lengths (N
        integers >= 0), rewards (N values, any shape) -> out shaped as rewards."""
        (tr,) = _ins((rewards, "rewards"))
        n = tr.array.size
        ln = int_input(lengths, "lengths", c_int64, (n,))
        out = np.empty_like(tr.array)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_loss_kimi_length_reward, pointer(ln, i64p), tr.handle, group_size,
                   to.handle)
        return out

    # ---- FLIP patch masking and BLIP hard negatives ----------------------------------------
    def flip_draw(self, batch, n_patches, n_keep):
        """n_keep distinct patch indices in [0, n_patches) per sample: int32 [batch, n_keep]
        drawn from the handle's RNG."""
        batch = check_int(batch, c_int64, "batch")
        n_keep = check_int(n_keep, c_int64, "n_keep")
        if batch < 1 or n_keep < 1:
            raise errors.error(errors.E_RANGE, "batch = %d, n_keep = %d: each >= 1" %
                               (batch, n_keep))
        keep = np.empty((batch, n_keep), np.int32)
        self._call(lib.mm_loss_flip_draw, batch, n_patches, n_keep, pointer(keep, i32p))
        return keep

    @staticmethod
    def _keep(keep, batch):
        k = int_input(keep, "keep", c_int32)
        if k.ndim != 2 or k.shape[0] != batch:
            raise errors.error(errors.E_SHAPE, "keep has shape %s; expected [%d, n_keep]" %
                               (k.shape, batch))
        return k

    def flip_gather(self, x, keep):
        """out[b, j, :] = x[b, keep[b, j], :] for x [B, L, D], keep [B, n_keep] ints."""
        (tx,) = _ins((x, "x"))
        if tx.array.ndim != 3:
            raise errors.error(errors.E_SHAPE, "x has shape %s; expected [B, L, D]" %
                               (tx.array.shape,))
        B, _, D = tx.array.shape
        k = self._keep(keep, B)
        out = np.empty((B, k.shape[1], D), np.float32)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_loss_flip_gather, tx.handle, pointer(k, i32p), k.shape[1], to.handle)
        return out

    def flip_scatter(self, dout, keep, length):
        """Backward of flip_gather: dx [B, length, D], zero except dx[b, keep[b, j]] +=
        dout[b, j] (dout [B, n_keep, D])."""
        (td,) = _ins((dout, "dout"))
        if td.array.ndim != 3:
            raise errors.error(errors.E_SHAPE, "dout has shape %s; expected [B, n_keep, D]" %
                               (td.array.shape,))
        B, _, D = td.array.shape
        k = self._keep(keep, B)
        length = check_int(length, c_int64, "length")
        if length < 1:
            raise errors.error(errors.E_SHAPE, "length = %d: >= 1" % length)
        dx = np.empty((B, length, D), np.float32)
        (tdx,) = _outs((dx, "dx"))
        self._call(lib.mm_loss_flip_scatter, td.handle, pointer(k, i32p), k.shape[1],
                   tdx.handle)
        return dx

    def blip_hard_negatives(self, sim, ids=None, by_column=False):
        """One hard negative per row of sim [B, M] (M >= B), drawn with probability
        softmax(sim) over the other columns (with ids, B labels: every same-label column is
        excluded); by_column samples a row per column instead. int32 [B], -1 where no
        candidate exists."""
        (ts,) = _ins((sim, "sim"))
        if ts.array.ndim != 2:
            raise errors.error(errors.E_SHAPE, "sim has shape %s; expected [B, M]" %
                               (ts.array.shape,))
        B = ts.array.shape[0]
        lab = None if ids is None else int_input(ids, "ids", c_int64, (B,))
        neg = np.empty(B, np.int32)
        self._call(lib.mm_loss_blip_hard_negatives, ts.handle,
                   None if lab is None else pointer(lab, i64p), int(bool(by_column)),
                   pointer(neg, i32p))
        return neg


class Attention(Handle):
    """Attention of one kind on q [B, H, N, d], k [B, H, M, d], v [B, H, M, dv]; options are
    mm_attn_opts fields (d_head, dv, n_heads, max_batch, max_seq, causal, chunk, ...)."""

    _free = staticmethod(lib.mm_attn_free)
    _errmsg = staticmethod(lib.mm_attn_errmsg)
    _setter = staticmethod(lib.mm_attn_set_f64)
    _getter = staticmethod(lib.mm_attn_get_f64)
    _param_ids = constants.ATTN_PARAMS

    def __init__(self, kind, **fields):
        super().__init__()
        o = AttnOpts()
        errors.check(lib.mm_attn_opts_init(ctypes.byref(o),
                                           lookup(constants.ATTENTIONS, kind, "attention")))
        set_fields(o, fields)
        _create(self, lib.mm_attn_create, o)
        self._shapes = None
        # PERFORMER's projection shape (mm.h: n_features 0 means int(d ln d)); libmm checks it
        d = o.d_head
        self._proj_shape = (o.n_features or int(d * math.log(d)) if d > 1 else 1, d)

    def forward(self, q, k, v, g=None):
        """out [B, H, N, dv]; g: GATED data-dependent log-gates (forward_gated)."""
        tq, tk, tv, tg = _ins((q, "q"), (k, "k"), (v, "v"), (g, "g"))
        out = np.empty(tq.array.shape[:-1] + tv.array.shape[-1:], np.float32)
        (to,) = _outs((out, "out"))
        if tg is None:
            self._call(lib.mm_attn_forward, tq.handle, tk.handle, tv.handle, to.handle)
        else:
            self._call(lib.mm_attn_forward_gated, tq.handle, tk.handle, tv.handle, tg.handle,
                       to.handle)
        self._shapes = tuple(None if t is None else t.array.shape for t in (tq, tk, tv, tg))
        return out

    def backward(self, dout):
        """(dq, dk, dv) of the last forward (plus dg after a gated forward)."""
        if self._shapes is None:
            raise errors.error(errors.E_STATE, "backward before forward")
        grads = [None if s is None else np.empty(s, np.float32) for s in self._shapes]
        (td,) = _ins((dout, "dout"))
        t = _outs(*zip(grads, ("dq", "dk", "dv", "dg")))
        self._call(lib.mm_attn_backward, td.handle, h(t[0]), h(t[1]), h(t[2]), h(t[3]))
        return tuple(grads[:3]) if grads[3] is None else tuple(grads)

    def step(self, q, k, v, g=None):
        """One streaming token per batch-head: q, k [B, H, d], v [B, H, dv] -> [B, H, dv]."""
        tq, tk, tv, tg = _ins((q, "q"), (k, "k"), (v, "v"), (g, "g"))
        out = np.empty(tq.array.shape[:-1] + tv.array.shape[-1:], np.float32)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_attn_step, tq.handle, tk.handle, tv.handle, h(tg), to.handle)
        return out

    def reset(self):
        self._call(lib.mm_attn_reset)
        self._shapes = None

    # ---- RWKV6 (since libmm 0.2) --------------------------------------------------------------
    def forward_rwkv6(self, r, k, v, w, u):
        """RWKV-6 time mixing: r, k, w [B, H, N, d] (w the log-decays, <= 0), v [B, H, N, dv],
        u [H, d] the bonus -> out [B, H, N, dv]. backward_rwkv6 differentiates it."""
        tq, tk, tv, tw, tu = _ins((r, "r"), (k, "k"), (v, "v"), (w, "w"), (u, "u"))
        out = np.empty(tq.array.shape[:-1] + tv.array.shape[-1:], np.float32)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_attn_forward_rwkv6, h(tq), h(tk), h(tv), h(tw), h(tu), to.handle)
        self._shapes = ("rwkv6",) + tuple(t.array.shape for t in (tq, tk, tv, tw, tu))
        return out

    def backward_rwkv6(self, dout):
        """(dr, dk, dv, dw, du) of the last forward_rwkv6 (du [H, d] summed over the batch)."""
        if self._shapes is None or self._shapes[0] != "rwkv6":
            raise errors.error(errors.E_STATE, "backward_rwkv6 without a forward_rwkv6")
        grads = [np.empty(s, np.float32) for s in self._shapes[1:]]
        (td,) = _ins((dout, "dout"))
        t = _outs(*zip(grads, ("dr", "dk", "dv", "dw", "du")))
        self._call(lib.mm_attn_backward_rwkv6, td.handle, *(x.handle for x in t))
        return tuple(grads)

    def step_rwkv6(self, r, k, v, w, u):
        """One RWKV-6 token per batch-head: r, k, w [B, H, d], v [B, H, dv], u [H, d] ->
        out [B, H, dv], what forward_rwkv6 gives at that position (state in the handle;
        reset() starts over)."""
        tq, tk, tv, tw, tu = _ins((r, "r"), (k, "k"), (v, "v"), (w, "w"), (u, "u"))
        out = np.empty(tq.array.shape[:-1] + tv.array.shape[-1:], np.float32)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_attn_step_rwkv6, h(tq), h(tk), h(tv), h(tw), h(tu), to.handle)
        return out

    # ---- Performer projection ------------------------------------------------------------------
    @property
    def projection(self):
        """PERFORMER: a copy of the random-feature projection W [n_features, d_head]."""
        w = np.empty(self._proj_shape, np.float32)
        (tw,) = _outs((w, "projection"))
        self._call(lib.mm_attn_get_projection, tw.handle)
        return w

    @projection.setter
    def projection(self, w):
        """Copies W [n_features, d_head] (finite) into the handle."""
        (tw,) = _ins((w, "projection"))
        self._call(lib.mm_attn_set_projection, h(tw))
        self._shapes = None

    def redraw(self):
        """PERFORMER: draws a new projection from the handle's RNG."""
        self._call(lib.mm_attn_redraw)
        self._shapes = None


class SSM(Handle):
    """A state-space operator ("selective", "ssd", "lru", "s4d", "s4"); options are
    mm_ssm_opts fields. Inputs are passed by their mm_ssm_inputs names (u, delta, A, B, C, D,
    z, delta_bias, init_state, log_dt, A_real, A_imag, P, nu_log, theta_log, gamma_log)."""

    _free = staticmethod(lib.mm_ssm_free)
    _errmsg = staticmethod(lib.mm_ssm_errmsg)
    _setter = staticmethod(lib.mm_ssm_set_f64)
    _getter = staticmethod(lib.mm_ssm_get_f64)
    _param_ids = constants.SSM_PARAMS

    def __init__(self, kind, **fields):
        super().__init__()
        o = SsmOpts()
        errors.check(lib.mm_ssm_opts_init(ctypes.byref(o), lookup(constants.SSMS, kind, "ssm")))
        set_fields(o, fields)
        _create(self, lib.mm_ssm_create, o)
        self._dims = (o.d_inner, o.d_state)  # the sizes of lru_init's arrays

    @staticmethod
    def _inputs(arrays):
        """mm_ssm_inputs of the given arrays, and the Tensors (kept by the caller until the
        call returns) by name."""
        unknown = set(arrays) - set(SSM_INPUT_NAMES)
        if unknown:
            raise TypeError("unknown ssm inputs %s" % sorted(unknown))
        ins = SsmInputs()
        errors.check(lib.mm_ssm_inputs_init(ctypes.byref(ins)))
        keep = {}
        for name, a in arrays.items():
            if a is not None:
                (keep[name],) = _ins((a, name))
                setattr(ins, name, keep[name].handle.value)
        return ins, keep

    @staticmethod
    def _shape_of(keep, name):
        if name not in keep:
            raise errors.error(errors.E_INVALID_ARG, "input %s is required here" % name)
        return keep[name].array.shape

    def scan(self, last_state_shape=None, **inputs):
        """out (shaped as u), or (out, last_state) when last_state_shape is given."""
        ins, keep = self._inputs(inputs)
        out = np.empty(self._shape_of(keep, "u"), np.float32)
        last = None if last_state_shape is None else np.empty(last_state_shape, np.float32)
        to, tl = _outs((out, "out"), (last, "last_state"))
        self._call(lib.mm_ssm_scan, ctypes.byref(ins), to.handle, h(tl))
        return out if last is None else (out, last)

    def scan_backward(self, dout, wrt=("u",), **inputs):
        """Gradients of the last scan (run with the same inputs) for the names in wrt."""
        ins, keep = self._inputs(inputs)
        g = SsmGrads()
        errors.check(lib.mm_ssm_grads_init(ctypes.byref(g)))
        res, tens = {}, []
        for name in wrt:
            res[name] = np.empty(self._shape_of(keep, name), np.float32)
            tens.append(out_tensor(res[name], "d" + name))
            setattr(g, "d" + name, tens[-1].handle.value)
        (td,) = _ins((dout, "dout"))
        self._call(lib.mm_ssm_scan_backward, ctypes.byref(ins), td.handle, ctypes.byref(g))
        return res

    def step(self, **inputs):
        """One decoding step with the state carried in the handle; out shaped as u."""
        ins, keep = self._inputs(inputs)
        out = np.empty(self._shape_of(keep, "u"), np.float32)
        (to,) = _outs((out, "out"))
        self._call(lib.mm_ssm_step, ctypes.byref(ins), to.handle)
        return out

    def kernel(self, length, channels, **inputs):
        """S4D / S4 convolution kernel K [channels, length]."""
        ins, keep = self._inputs(inputs)
        k = np.empty((channels, length), np.float32)
        (tk,) = _outs((k, "k"))
        self._call(lib.mm_ssm_kernel, ctypes.byref(ins), tk.handle)
        return k

    def conv(self, u, k, d=None):
        """Causal FFT convolution of u [Bt, H, L] with k [H, L] (+ d [H] skip)."""
        tu, tk, td = _ins((u, "u"), (k, "k"), (d, "d"))
        y = np.empty_like(tu.array)
        (ty,) = _outs((y, "y"))
        self._call(lib.mm_ssm_conv, tu.handle, tk.handle, h(td), ty.handle)
        return y

    def conv_backward(self, u, k, dy, d=None):
        """Backward of conv: (du [Bt, H, L], dk [H, L], dd [H] or None without d)."""
        tu, tk, td, tdy = _ins((u, "u"), (k, "k"), (d, "d"), (dy, "dy"))
        du, dk = np.empty_like(tu.array), np.empty_like(tk.array)
        dd = None if td is None else np.empty_like(td.array)
        tdu, tdk, tdd = _outs((du, "du"), (dk, "dk"), (dd, "dd"))
        self._call(lib.mm_ssm_conv_backward, tu.handle, tk.handle, h(td), tdy.handle,
                   tdu.handle, tdk.handle, h(tdd))
        return du, dk, dd

    def kernel_backward(self, dk, wrt=("log_dt",), **inputs):
        """Gradients of kernel(...) given dk [H, L], for the names in wrt (S4D: log_dt,
        A_real, A_imag, B, C; S4: log_dt, A_real, A_imag, P, B, C), by name."""
        ins, keep = self._inputs(inputs)
        g = SsmGrads()
        errors.check(lib.mm_ssm_grads_init(ctypes.byref(g)))
        res, tens = {}, []
        for name in wrt:
            if name not in SSM_INPUT_NAMES:
                raise TypeError("unknown ssm input %r" % (name,))
            res[name] = np.empty(self._shape_of(keep, name), np.float32)
            tens.append(out_tensor(res[name], "d" + name))
            setattr(g, "d" + name, tens[-1].handle.value)
        (td,) = _ins((dk, "dk"))
        self._call(lib.mm_ssm_kernel_backward, ctypes.byref(ins), td.handle, ctypes.byref(g))
        return res

    @property
    def state(self):
        """The streaming state as a writable flat float32 view into the handle (max_batch rows;
        layout per kind in mm.h), e.g. to continue step() from a scan's last_state. Kept alive
        like Model.params."""
        owner = self._live()
        p, n = f32p(), ctypes.c_int64()
        self._call(lib.mm_ssm_state, ctypes.byref(p), ctypes.byref(n))
        return view(p, n.value, owner)

    def lru_init(self, r_min=0.0, r_max=1.0, max_phase=6.283):
        """Minimal-LRU initialisation from the handle's RNG (an "lru" handle): a dict of
        nu_log, theta_log, gamma_log [N], B [N, H, 2], C [H, N, 2], D [H] (H = d_inner,
        N = d_state), ready to pass to scan()."""
        H, N = self._dims
        res = {"nu_log": (N,), "theta_log": (N,), "gamma_log": (N,), "B": (N, H, 2),
               "C": (H, N, 2), "D": (H,)}
        res = {k: np.empty(s, np.float32) for k, s in res.items()}
        self._call(lib.mm_ssm_lru_init, float(r_min), float(r_max), float(max_phase),
                   *(pointer(a, f32p) for a in res.values()))
        return res

    def reset(self):
        self._call(lib.mm_ssm_reset)
