# SPDX-License-Identifier: MIT
"""mm_model: build, train (forward / backward / step), infer, save and load."""
import ctypes
import threading

import numpy as np

from . import constants, errors
from ._lib import lib, ModelOpts, AttnOpts, f32p, i32p, c_int32
from .core import (Handle, Tensor, checked, err_buffer, f32_input, int_input, lookup,
                   out_tensor, path_arg, pointer, raise_create, reader, set_fields, view)


def _ins_f32(a, name):
    return (Tensor(f32_input(a, name), name=name),)


def _opts(input_dim=0, max_batch=1, max_seq=1, seed=0, n_threads=1):
    o = ModelOpts()
    errors.check(lib.mm_model_opts_init(ctypes.byref(o)))
    set_fields(o, dict(input_dim=input_dim, max_batch=max_batch, max_seq=max_seq, seed=seed,
                       n_threads=n_threads))
    buf = err_buffer()
    o.err_buf, o.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
    return o, buf


class Model(Handle):
    """A stack of layers. Build with the add methods (each returns the model, so they chain),
    then finalize(); e.g. Model(4, max_batch=64).dense(64).activation("tanh").dense(2)
    .finalize()."""

    _free = staticmethod(lib.mm_model_free)
    _errmsg = staticmethod(lib.mm_model_errmsg)
    _setter = staticmethod(lib.mm_model_set_f64)
    _getter = staticmethod(lib.mm_model_get_f64)
    _param_ids = constants.MODEL_PARAMS

    def __init__(self, input_dim, max_batch=1, max_seq=1, seed=0, n_threads=1):
        super().__init__()
        o, buf = _opts(input_dim, max_batch, max_seq, seed, n_threads)
        rc = lib.mm_model_create(ctypes.byref(self._owner.ptr), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        self._state()

    def _state(self):
        self._last_x_shape = None
        self._last_ctx_shape = None
        self._tls = threading.local()  # per-thread infer workspace

    # ---- construction ------------------------------------------------------------------------
    def dense(self, out_features, bias=True, init="default", gain=1.0):
        self._call(lib.mm_model_add_dense, out_features, int(bool(bias)),
                   lookup(constants.INITS, init, "init"), float(gain))
        return self

    def activation(self, kind):
        self._call(lib.mm_model_add_activation, lookup(constants.ACTIVATIONS, kind,
                                                       "activation"))
        return self

    def layernorm(self, eps=1e-5, affine=True):
        self._call(lib.mm_model_add_layernorm, float(eps), int(bool(affine)))
        return self

    def rmsnorm(self, eps=1.1920929e-07, affine=True):
        self._call(lib.mm_model_add_rmsnorm, float(eps), int(bool(affine)))
        return self

    def embedding(self, num_embeddings, embedding_dim):
        self._call(lib.mm_model_add_embedding, num_embeddings, embedding_dim)
        return self

    def attention(self, kind="softmax", **fields):
        """A pre-norm attention block; fields are mm_attn_opts fields (d_head, n_heads, ...)."""
        o = AttnOpts()
        errors.check(lib.mm_attn_opts_init(ctypes.byref(o),
                                           lookup(constants.ATTENTIONS, kind, "attention")))
        set_fields(o, fields)
        self._call(lib.mm_model_add_attention, ctypes.byref(o))
        return self

    def gau(self, expansion=0, qk_dim=0, causal=True, chunk=0):
        self._call(lib.mm_model_add_gau, expansion, qk_dim, int(bool(causal)), chunk)
        return self

    def mamba(self, d_state=16, d_conv=4, expand=2, dt_rank=0):
        self._call(lib.mm_model_add_mamba, d_state, d_conv, expand, dt_rank)
        return self

    def s4d(self, d_state=64):
        self._call(lib.mm_model_add_s4d, d_state)
        return self

    def cross_attention(self, n_heads, d_head, ctx_dim, max_ctx):
        """A cross-attention block to the context tokens [B, M, ctx_dim] (M <= max_ctx) passed
        as forward(x, ctx=...); since libmm 0.2."""
        self._call(lib.mm_model_add_cross_attention, n_heads, d_head, ctx_dim, max_ctx)
        return self

    def finalize(self):
        self._call(lib.mm_model_finalize)
        return self

    # ---- sizes and buffers -------------------------------------------------------------------
    @property
    def output_dim(self):
        d = ctypes.c_int64()
        self._call(lib.mm_model_output_dim, ctypes.byref(d))
        return d.value

    @property
    def num_params(self):
        n = ctypes.c_int64()
        self._call(lib.mm_model_num_params, ctypes.byref(n))
        return n.value

    @property
    def num_layers(self):
        n = ctypes.c_int32()
        self._call(lib.mm_model_num_layers, ctypes.byref(n))
        return n.value

    def _flat(self, fn):
        owner = self._live()
        p, n = f32p(), ctypes.c_int64()
        self._call(fn, ctypes.byref(p), ctypes.byref(n))
        return view(p, n.value, owner)

    @property
    def params(self):
        """The flat parameters as a writable float32 view into the model (no copy). The view
        keeps the model's memory alive: it stays valid after close() (which then frees the
        memory when the last view is gone)."""
        return self._flat(lib.mm_model_params)

    @property
    def grads(self):
        """The accumulated gradients as a writable float32 view into the model (kept alive
        like params)."""
        return self._flat(lib.mm_model_grads)

    # ---- compute -----------------------------------------------------------------------------
    def _out_shape(self, x):
        return x.shape[:-1] + (self.output_dim,)

    def _ctx(self, ctx):
        """(array, Tensor) of a context, or (None, None)."""
        if ctx is None:
            return None, None
        ctx = f32_input(ctx, "ctx")
        return ctx, Tensor(ctx, name="ctx")

    def forward(self, x, out=None, ctx=None):
        """y = model(x), keeping what backward needs. x: [..., input_dim] float32 (converted
        once otherwise). out: None, or a float32, C-contiguous, writeable array of exactly
        x.shape[:-1] + (output_dim,), not overlapping x, written in place and returned.
        ctx: the context tokens [B, M, ctx_dim] of the cross-attention layers (or None)."""
        x = f32_input(x, "x")
        tx = Tensor(x, name="x")
        ctx, tc = self._ctx(ctx)
        if out is None:
            y = np.empty(self._out_shape(x), np.float32)
        else:
            y = checked(out, "out", np.float32, self._out_shape(x), writable=True)
            if np.may_share_memory(y, x):
                raise errors.error(errors.E_INVALID_ARG, "out overlaps x")
        ty = out_tensor(y, "out")
        if tc is None:
            self._call(lib.mm_model_forward, tx.handle, ty.handle)
        else:
            self._call(lib.mm_model_forward_ctx, tx.handle, tc.handle, ty.handle)
        self._last_x_shape = x.shape
        self._last_ctx_shape = None if ctx is None else ctx.shape
        return y

    def backward(self, dy, want_dx=False, want_dctx=False):
        """Accumulates parameter gradients of the last forward; returns dL/dx if want_dx.
        With want_dctx (the last forward had a context) returns (dx or None, dL/dctx)."""
        dy = f32_input(dy, "dy")
        dx = np.empty(self._last_x_shape, np.float32) if want_dx and self._last_x_shape else None
        tdy, tdx = Tensor(dy, name="dy"), out_tensor(dx, "dx")
        if not want_dctx:
            self._call(lib.mm_model_backward, tdy.handle, tdx.handle if tdx else None)
            return dx
        if self._last_ctx_shape is None:
            raise errors.error(errors.E_STATE, "want_dctx: the last forward had no context")
        dctx = np.empty(self._last_ctx_shape, np.float32)
        tdc = out_tensor(dctx, "dctx")
        self._call(lib.mm_model_backward_ctx, tdy.handle, tdx.handle if tdx else None,
                   tdc.handle)
        return dx, dctx

    def jvp(self, x, v, ctx=None):
        """(model(x), J v) for a parameter direction v of num_params floats (the context, if
        any, held fixed)."""
        x, v = f32_input(x, "x"), f32_input(v, "v")
        tx, tv = Tensor(x, name="x"), Tensor(v, name="v")
        ctx, tc = self._ctx(ctx)
        y, jy = np.empty(self._out_shape(x), np.float32), np.empty(self._out_shape(x),
                                                                  np.float32)
        ty, tj = out_tensor(y, "y"), out_tensor(jy, "jy")
        if tc is None:
            self._call(lib.mm_model_jvp, tx.handle, tv.handle, ty.handle, tj.handle)
        else:
            self._call(lib.mm_model_jvp_ctx, tx.handle, tc.handle, tv.handle, ty.handle,
                       tj.handle)
        self._last_x_shape = x.shape
        self._last_ctx_shape = None if ctx is None else ctx.shape
        return y, jy

    def infer(self, x):
        """Forward for inference only (nothing kept). Python threads may call it at once on one
        model: each thread has its own workspace."""
        x = f32_input(x, "x")
        tx = Tensor(x, name="x")
        batch = x.shape[0] if x.ndim > 1 else 1
        seq = x.shape[1] if x.ndim > 2 else 1
        size = ctypes.c_size_t()
        self._call(lib.mm_model_infer_workspace_size, batch, seq, ctypes.byref(size))
        ws = getattr(self._tls, "ws", None)
        if ws is None or ws.size < size.value + 64:
            ws = self._tls.ws = np.empty(size.value + 64, dtype=np.uint8)
        addr = ws.ctypes.data
        aligned = addr + (-addr) % 64  # ws (a local) stays referenced during the call
        y = np.empty(self._out_shape(x), np.float32)
        ty = out_tensor(y, "y")
        # infer does not write the model's error text (the model is shared)
        self._call_quiet(lib.mm_model_infer, tx.handle, ty.handle, ctypes.c_void_p(aligned),
                         size.value)
        return y

    # ---- decoding and sampling (since libmm 0.2) ------------------------------------------------
    def decode_state(self, batch):
        """A zeroed recurrent state for decode_step with batch rows (a uint64 array, so it is
        8-byte aligned; empty when the model has no recurrent layer). Zero it again (or make a
        new one) to start new sequences."""
        size = ctypes.c_size_t()
        self._call(lib.mm_model_decode_state_size, batch, ctypes.byref(size))
        return np.zeros((size.value + 7) // 8, np.uint64)

    def decode_step(self, x, state):
        """One token per row: x [batch, input_dim] -> y [batch, output_dim], updating state
        (from decode_state(batch)) in place."""
        x = f32_input(x, "x")
        st = checked(state, "state", np.uint64, writable=True)
        tx = Tensor(x, name="x")
        y = np.empty(self._out_shape(x), np.float32)
        ty = out_tensor(y, "y")
        ptr = st.ctypes.data_as(ctypes.c_void_p) if st.nbytes else None
        self._call(lib.mm_model_decode_step, tx.handle, ty.handle, ptr, st.nbytes)
        self._last_x_shape = None
        return y

    def seed(self, seed):
        """Reseeds the RNG sample() draws from."""
        self._call(lib.mm_model_seed, seed)

    def sample(self, logits, temperature=1.0, top_k=0, top_p=1.0):
        """One token per row of logits [n, V] (or [V]): (tokens int32 [n], logp float32 [n]),
        logp the untempered log-softmax of the drawn tokens. temperature 0 is greedy."""
        (tz,) = _ins_f32(logits, "logits")
        n = tz.array.shape[0] if tz.array.ndim == 2 else 1
        tokens = np.empty(n, np.int32)
        logp = np.empty(n, np.float32)
        self._call(lib.mm_model_sample, tz.handle, float(temperature), top_k, float(top_p),
                   pointer(tokens, i32p), n, pointer(logp, f32p))
        return tokens, logp

    def logprob(self, x, targets):
        """Runs forward on x and returns logp [x.shape[:-1]] (float32): log softmax of the
        output at each position, read at targets (same count; negative = skipped, 0). Keeps
        the forward for logprob_backward."""
        x = f32_input(x, "x")
        rows = x.shape[:-1] if x.ndim > 1 else (1,)
        n = int(np.prod(rows))
        t = int_input(targets, "targets", c_int32)
        if t.size != n:
            raise errors.error(errors.E_SHAPE, "targets has %d entries; x has %d positions" %
                               (t.size, n))
        tx = Tensor(x, name="x")
        logp = np.empty(rows, np.float32)
        tl = out_tensor(logp, "logp")
        self._call(lib.mm_model_logprob, tx.handle, pointer(t, i32p), n, tl.handle)
        self._last_x_shape = x.shape
        self._last_ctx_shape = None
        return logp

    def logprob_backward(self, targets, weights):
        """Accumulates into grads the gradient of sum(weights * logp) of the last logprob
        (the same targets; weights with one value per position)."""
        t = int_input(targets, "targets", c_int32)
        (tw,) = _ins_f32(weights, "weights")
        if tw.array.size != t.size:
            raise errors.error(errors.E_SHAPE, "weights has %d entries; targets %d" %
                               (tw.array.size, t.size))
        self._call(lib.mm_model_logprob_backward, pointer(t, i32p), t.size, tw.handle)

    # ---- training ----------------------------------------------------------------------------
    def zero_grad(self):
        self._call(lib.mm_model_zero_grad)

    def set_optimizer(self, kind, **params):
        """Selects an optimizer ("adam", ...) with PyTorch defaults, then sets params."""
        self._call(lib.mm_model_set_optimizer, lookup(constants.OPTIMIZERS, kind, "optimizer"))
        for k, v in params.items():
            self.set(k, v)
        return self

    def step(self):
        self._call(lib.mm_model_step)

    def freeze(self, first, count, frozen=True):
        self._call(lib.mm_model_freeze, first, count, int(bool(frozen)))

    @staticmethod
    def _source(src):
        if not isinstance(src, Model):
            raise TypeError("src must be a libmm.Model, not %s" % type(src).__name__)
        return src._live()

    def copy_from(self, src, with_optimizer=False):
        so = self._source(src)  # held until the call returns
        self._call(lib.mm_model_copy, so.ptr, int(bool(with_optimizer)))

    def lerp_from(self, src, tau):
        """Polyak update: self = (1 - tau) self + tau src."""
        so = self._source(src)
        self._call(lib.mm_model_lerp, so.ptr, float(tau))

    # ---- files -------------------------------------------------------------------------------
    def save(self, path, optimizer_state=False):
        self._call(lib.mm_model_save, path_arg(path), int(bool(optimizer_state)))

    def to_bytes(self, optimizer_state=False):
        flags = int(bool(optimizer_state))
        size = ctypes.c_size_t()
        self._call(lib.mm_model_save_mem, None, 0, ctypes.byref(size), flags)
        buf = ctypes.create_string_buffer(size.value)
        self._call(lib.mm_model_save_mem, buf, len(buf), ctypes.byref(size), flags)
        return buf.raw[:size.value]

    @classmethod
    def _adopt(cls):
        m = cls.__new__(cls)
        Handle.__init__(m)
        m._state()
        return m

    @classmethod
    def load(cls, path, max_batch=1, max_seq=1, n_threads=1):
        m = cls._adopt()
        o, buf = _opts(0, max_batch, max_seq, 0, n_threads)
        rc = lib.mm_model_load(ctypes.byref(m._owner.ptr), path_arg(path), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        return m

    @classmethod
    def from_stream(cls, stream, max_batch=1, max_seq=1, n_threads=1):
        """A model read from a binary file object (anything with read(n)); nothing past the
        model's last byte is read, so other data may follow it in the stream."""
        m = cls._adopt()
        o, buf = _opts(0, max_batch, max_seq, 0, n_threads)
        fn, caught = reader(stream)
        rc = lib.mm_model_load_cb(ctypes.byref(m._owner.ptr), fn, None, ctypes.byref(o))
        if rc != 0:
            if caught:
                raise errors.error(rc, "reading the stream failed: %r" % caught[0]) \
                    from caught[0]
            raise_create(rc, buf)
        return m

    @classmethod
    def from_bytes(cls, data, max_batch=1, max_seq=1, n_threads=1):
        """A model from the bytes of to_bytes (any bytes-like object)."""
        blob = memoryview(data).tobytes()
        m = cls._adopt()
        o, buf = _opts(0, max_batch, max_seq, 0, n_threads)
        raw = ctypes.create_string_buffer(blob, len(blob))
        rc = lib.mm_model_load_mem(ctypes.byref(m._owner.ptr), raw, len(blob), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        return m
