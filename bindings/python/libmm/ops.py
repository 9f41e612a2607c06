"""The operator handles: mm_loss (image-text and policy losses), mm_attn (attention) and
mm_ssm (state-space scans, steps and kernels). Inputs are numpy arrays (wrapped without
copies); outputs are new float32 arrays."""
import ctypes

import numpy as np

from . import constants, errors
from ._lib import (lib, LossOpts, AttnOpts, SsmOpts, SsmInputs, SsmGrads, SSM_INPUT_NAMES,
                   i32p)
from .core import Handle, Tensor, as_f32, err_buffer, h, lookup, raise_create, wrap


def _create(handle, create, opts):
    buf = err_buffer()
    opts.err_buf, opts.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
    rc = create(ctypes.byref(handle), ctypes.byref(opts))
    if rc != 0:
        raise_create(rc, buf)


def _fill(opts, fields):
    for k, v in fields.items():
        if not hasattr(opts, k):
            raise TypeError("unknown option %r" % k)
        setattr(opts, k, v)


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
        _fill(o, fields)
        _create(self.handle, lib.mm_loss_create, o)

    def _pair(self, fn, x, y, grad):
        x, y = as_f32(x), as_f32(y)
        dx = np.empty_like(x) if grad else None
        dy = np.empty_like(y) if grad else None
        loss = ctypes.c_double()
        tx, ty, tdx, tdy = wrap(x), wrap(y), wrap(dx), wrap(dy)
        self._check(fn(self.handle, tx.handle, ty.handle, ctypes.byref(loss), h(tdx), h(tdy)))
        return (loss.value, dx, dy) if grad else loss.value

    def clip(self, x, y, grad=True):
        """CLIP loss of features x, y [B, D]; (loss, dx, dy) with grad, else loss."""
        return self._pair(lib.mm_loss_clip, x, y, grad)

    def siglip(self, x, y, grad=True):
        return self._pair(lib.mm_loss_siglip, x, y, grad)

    def cross_entropy(self, logits, targets, grad=True):
        """Softmax cross entropy of logits [N, C] against int targets [N]."""
        z = as_f32(logits)
        t = np.ascontiguousarray(targets, dtype=np.int32)
        dz = np.empty_like(z) if grad else None
        loss = ctypes.c_double()
        tz, tdz = wrap(z), wrap(dz)
        self._check(lib.mm_loss_cross_entropy(self.handle, tz.handle, t.ctypes.data_as(i32p),
                                              t.size, ctypes.byref(loss), h(tdz)))
        return (loss.value, dz) if grad else loss.value

    def bce(self, logits, targets, grad=True):
        z, t = as_f32(logits), as_f32(targets)
        dz = np.empty_like(z) if grad else None
        loss = ctypes.c_double()
        tz, tt, tdz = wrap(z), wrap(t), wrap(dz)
        self._check(lib.mm_loss_bce(self.handle, tz.handle, tt.handle, ctypes.byref(loss),
                                    h(tdz)))
        return (loss.value, dz) if grad else loss.value

    def kimi(self, logp, logp_old, rewards, grad=True):
        a, b, r = as_f32(logp), as_f32(logp_old), as_f32(rewards)
        d = np.empty_like(a) if grad else None
        loss = ctypes.c_double()
        ta, tb, tr, td = wrap(a), wrap(b), wrap(r), wrap(d)
        self._check(lib.mm_loss_kimi(self.handle, ta.handle, tb.handle, tr.handle,
                                     ctypes.byref(loss), h(td)))
        return (loss.value, d) if grad else loss.value

    def l2_normalize(self, u):
        u = as_f32(u)
        x = np.empty_like(u)
        tu, tx = wrap(u), wrap(x)
        self._check(lib.mm_loss_l2_normalize(self.handle, tu.handle, tx.handle))
        return x


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
        _fill(o, fields)
        _create(self.handle, lib.mm_attn_create, o)
        self._shapes = None

    def forward(self, q, k, v, g=None):
        """out [B, H, N, dv]; g: GATED data-dependent log-gates (forward_gated)."""
        q, k, v = as_f32(q), as_f32(k), as_f32(v)
        out = np.empty(q.shape[:-1] + v.shape[-1:], np.float32)
        tq, tk, tv, to = wrap(q), wrap(k), wrap(v), wrap(out)
        if g is None:
            self._check(lib.mm_attn_forward(self.handle, tq.handle, tk.handle, tv.handle,
                                            to.handle))
        else:
            g = as_f32(g)
            tg = wrap(g)
            self._check(lib.mm_attn_forward_gated(self.handle, tq.handle, tk.handle, tv.handle,
                                                  tg.handle, to.handle))
        self._shapes = (q.shape, k.shape, v.shape, None if g is None else g.shape)
        return out

    def backward(self, dout):
        """(dq, dk, dv) of the last forward (plus dg after a gated forward)."""
        if self._shapes is None:
            raise errors.error(errors.E_STATE, "backward before forward")
        grads = [None if s is None else np.empty(s, np.float32) for s in self._shapes]
        dout = as_f32(dout)
        td, t = wrap(dout), [wrap(a) for a in grads]
        self._check(lib.mm_attn_backward(self.handle, td.handle, h(t[0]), h(t[1]), h(t[2]),
                                         h(t[3])))
        return tuple(grads[:3]) if grads[3] is None else tuple(grads)

    def step(self, q, k, v, g=None):
        """One streaming token per batch-head: q, k [B, H, d], v [B, H, dv] -> [B, H, dv]."""
        q, k, v = as_f32(q), as_f32(k), as_f32(v)
        out = np.empty(q.shape[:-1] + v.shape[-1:], np.float32)
        g = None if g is None else as_f32(g)
        tq, tk, tv, tg, to = wrap(q), wrap(k), wrap(v), wrap(g), wrap(out)
        self._check(lib.mm_attn_step(self.handle, tq.handle, tk.handle, tv.handle, h(tg),
                                     to.handle))
        return out

    def reset(self):
        self._check(lib.mm_attn_reset(self.handle))
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
        _fill(o, fields)
        _create(self.handle, lib.mm_ssm_create, o)

    @staticmethod
    def _inputs(arrays):
        unknown = set(arrays) - set(SSM_INPUT_NAMES)
        if unknown:
            raise TypeError("unknown ssm inputs %s" % sorted(unknown))
        ins = SsmInputs()
        errors.check(lib.mm_ssm_inputs_init(ctypes.byref(ins)))
        keep = {}
        for name, a in arrays.items():
            if a is not None:
                keep[name] = Tensor(as_f32(a))
                setattr(ins, name, keep[name].handle.value)
        return ins, keep

    def scan(self, last_state_shape=None, **inputs):
        """out (shaped as u), or (out, last_state) when last_state_shape is given."""
        ins, keep = self._inputs(inputs)
        out = np.empty(keep["u"].array.shape, np.float32)
        last = None if last_state_shape is None else np.empty(last_state_shape, np.float32)
        to, tl = wrap(out), wrap(last)
        self._check(lib.mm_ssm_scan(self.handle, ctypes.byref(ins), to.handle, h(tl)))
        return out if last is None else (out, last)

    def scan_backward(self, dout, wrt=("u",), **inputs):
        """Gradients of the last scan (run with the same inputs) for the names in wrt."""
        ins, keep = self._inputs(inputs)
        g = SsmGrads()
        errors.check(lib.mm_ssm_grads_init(ctypes.byref(g)))
        res, tens = {}, []
        for name in wrt:
            res[name] = np.empty(keep[name].array.shape, np.float32)
            tens.append(Tensor(res[name]))
            setattr(g, "d" + name, tens[-1].handle.value)
        dout = as_f32(dout)
        td = Tensor(dout)
        self._check(lib.mm_ssm_scan_backward(self.handle, ctypes.byref(ins), td.handle,
                                             ctypes.byref(g)))
        return res

    def step(self, **inputs):
        """One decoding step with the state carried in the handle; out shaped as u."""
        ins, keep = self._inputs(inputs)
        out = np.empty(keep["u"].array.shape, np.float32)
        to = wrap(out)
        self._check(lib.mm_ssm_step(self.handle, ctypes.byref(ins), to.handle))
        return out

    def kernel(self, length, channels, **inputs):
        """S4D / S4 convolution kernel K [channels, length]."""
        ins, keep = self._inputs(inputs)
        k = np.empty((channels, length), np.float32)
        tk = wrap(k)
        self._check(lib.mm_ssm_kernel(self.handle, ctypes.byref(ins), tk.handle))
        return k

    def conv(self, u, k, d=None):
        """Causal FFT convolution of u [Bt, H, L] with k [H, L] (+ d [H] skip)."""
        u, k = as_f32(u), as_f32(k)
        d = None if d is None else as_f32(d)
        y = np.empty_like(u)
        tu, tk, td, ty = wrap(u), wrap(k), wrap(d), wrap(y)
        self._check(lib.mm_ssm_conv(self.handle, tu.handle, tk.handle, h(td), ty.handle))
        return y

    def reset(self):
        self._check(lib.mm_ssm_reset(self.handle))
