"""mm_model: build, train (forward / backward / step), infer, save and load."""
import ctypes

import numpy as np

from . import constants, errors
from ._lib import lib, ModelOpts, AttnOpts, f32p
from .core import Handle, Tensor, as_f32, err_buffer, lookup, raise_create, view


def _opts(input_dim=0, max_batch=1, max_seq=1, seed=0, n_threads=1):
    o = ModelOpts()
    errors.check(lib.mm_model_opts_init(ctypes.byref(o)))
    o.input_dim, o.max_batch, o.max_seq = input_dim, max_batch, max_seq
    o.seed, o.n_threads = seed, n_threads
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
        rc = lib.mm_model_create(ctypes.byref(self.handle), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        self._last_x_shape = None
        self._ws = None

    # ---- construction ------------------------------------------------------------------------
    def dense(self, out_features, bias=True, init="default", gain=1.0):
        self._check(lib.mm_model_add_dense(self.handle, out_features, int(bool(bias)),
                                           lookup(constants.INITS, init, "init"), gain))
        return self

    def activation(self, kind):
        self._check(lib.mm_model_add_activation(self.handle,
                                                lookup(constants.ACTIVATIONS, kind, "activation")))
        return self

    def layernorm(self, eps=1e-5, affine=True):
        self._check(lib.mm_model_add_layernorm(self.handle, eps, int(bool(affine))))
        return self

    def rmsnorm(self, eps=1.1920929e-07, affine=True):
        self._check(lib.mm_model_add_rmsnorm(self.handle, eps, int(bool(affine))))
        return self

    def embedding(self, num_embeddings, embedding_dim):
        self._check(lib.mm_model_add_embedding(self.handle, num_embeddings, embedding_dim))
        return self

    def attention(self, kind="softmax", **fields):
        """A pre-norm attention block; fields are mm_attn_opts fields (d_head, n_heads, ...)."""
        o = AttnOpts()
        errors.check(lib.mm_attn_opts_init(ctypes.byref(o),
                                           lookup(constants.ATTENTIONS, kind, "attention")))
        for k, v in fields.items():
            setattr(o, k, v)
        self._check(lib.mm_model_add_attention(self.handle, ctypes.byref(o)))
        return self

    def gau(self, expansion=0, qk_dim=0, causal=True, chunk=0):
        self._check(lib.mm_model_add_gau(self.handle, expansion, qk_dim, int(bool(causal)),
                                         chunk))
        return self

    def mamba(self, d_state=16, d_conv=4, expand=2, dt_rank=0):
        self._check(lib.mm_model_add_mamba(self.handle, d_state, d_conv, expand, dt_rank))
        return self

    def s4d(self, d_state=64):
        self._check(lib.mm_model_add_s4d(self.handle, d_state))
        return self

    def finalize(self):
        self._check(lib.mm_model_finalize(self.handle))
        return self

    # ---- sizes and buffers -------------------------------------------------------------------
    @property
    def output_dim(self):
        d = ctypes.c_int64()
        self._check(lib.mm_model_output_dim(self.handle, ctypes.byref(d)))
        return d.value

    @property
    def num_params(self):
        n = ctypes.c_int64()
        self._check(lib.mm_model_num_params(self.handle, ctypes.byref(n)))
        return n.value

    @property
    def num_layers(self):
        n = ctypes.c_int32()
        self._check(lib.mm_model_num_layers(self.handle, ctypes.byref(n)))
        return n.value

    def _flat(self, fn):
        p, n = f32p(), ctypes.c_int64()
        self._check(fn(self.handle, ctypes.byref(p), ctypes.byref(n)))
        return view(p, n.value, self)

    @property
    def params(self):
        """The flat parameters as a writable float32 view into the model (no copy)."""
        return self._flat(lib.mm_model_params)

    @property
    def grads(self):
        """The accumulated gradients as a writable float32 view into the model."""
        return self._flat(lib.mm_model_grads)

    # ---- compute -----------------------------------------------------------------------------
    def _out(self, x):
        return np.empty(x.shape[:-1] + (self.output_dim,), dtype=np.float32)

    def forward(self, x, out=None):
        """y = model(x), keeping what backward needs. x: [..., input_dim] float32."""
        x = as_f32(x)
        y = self._out(x) if out is None else out
        tx, ty = Tensor(x), Tensor(y)
        self._check(lib.mm_model_forward(self.handle, tx.handle, ty.handle))
        self._last_x_shape = x.shape
        return y

    def backward(self, dy, want_dx=False):
        """Accumulates parameter gradients of the last forward; returns dL/dx if want_dx."""
        dy = as_f32(dy)
        dx = np.empty(self._last_x_shape, np.float32) if want_dx and self._last_x_shape else None
        tdy, tdx = Tensor(dy), (Tensor(dx) if dx is not None else None)
        self._check(lib.mm_model_backward(self.handle, tdy.handle,
                                          tdx.handle if tdx else None))
        return dx

    def jvp(self, x, v):
        """(model(x), J v) for a parameter direction v of num_params floats."""
        x, v = as_f32(x), as_f32(v)
        y, jy = self._out(x), self._out(x)
        tx, tv, ty, tj = Tensor(x), Tensor(v), Tensor(y), Tensor(jy)
        self._check(lib.mm_model_jvp(self.handle, tx.handle, tv.handle, ty.handle, tj.handle))
        self._last_x_shape = x.shape
        return y, jy

    def infer(self, x):
        """Forward for inference only (nothing kept; safe to share between threads in C)."""
        x = as_f32(x)
        batch = x.shape[0] if x.ndim > 1 else 1
        seq = x.shape[1] if x.ndim > 2 else 1
        size = ctypes.c_size_t()
        self._check(lib.mm_model_infer_workspace_size(self.handle, batch, seq,
                                                      ctypes.byref(size)))
        if self._ws is None or self._ws.size < size.value + 64:
            self._ws = np.empty(size.value + 64, dtype=np.uint8)
        addr = self._ws.ctypes.data
        aligned = addr + (-addr) % 64
        y = self._out(x)
        tx, ty = Tensor(x), Tensor(y)
        rc = lib.mm_model_infer(self.handle, tx.handle, ty.handle, ctypes.c_void_p(aligned),
                                size.value)
        errors.check(rc)  # infer does not write the model's error text (the model is shared)
        return y

    # ---- training ----------------------------------------------------------------------------
    def zero_grad(self):
        self._check(lib.mm_model_zero_grad(self.handle))

    def set_optimizer(self, kind, **params):
        """Selects an optimizer ("adam", ...) with PyTorch defaults, then sets params."""
        self._check(lib.mm_model_set_optimizer(self.handle,
                                               lookup(constants.OPTIMIZERS, kind, "optimizer")))
        for k, v in params.items():
            self.set(k, v)
        return self

    def step(self):
        self._check(lib.mm_model_step(self.handle))

    def freeze(self, first, count, frozen=True):
        self._check(lib.mm_model_freeze(self.handle, first, count, int(bool(frozen))))

    def copy_from(self, src, with_optimizer=False):
        self._check(lib.mm_model_copy(self.handle, src.handle, int(bool(with_optimizer))))

    def lerp_from(self, src, tau):
        """Polyak update: self = (1 - tau) self + tau src."""
        self._check(lib.mm_model_lerp(self.handle, src.handle, tau))

    # ---- files -------------------------------------------------------------------------------
    def save(self, path, optimizer_state=False):
        self._check(lib.mm_model_save(self.handle, str(path).encode(), int(bool(optimizer_state))))

    def to_bytes(self, optimizer_state=False):
        flags = int(bool(optimizer_state))
        size = ctypes.c_size_t()
        self._check(lib.mm_model_save_mem(self.handle, None, 0, ctypes.byref(size), flags))
        buf = ctypes.create_string_buffer(size.value)
        self._check(lib.mm_model_save_mem(self.handle, buf, size.value, ctypes.byref(size),
                                          flags))
        return buf.raw[:size.value]

    @classmethod
    def _adopt(cls):
        m = cls.__new__(cls)
        Handle.__init__(m)
        m._last_x_shape, m._ws = None, None
        return m

    @classmethod
    def load(cls, path, max_batch=1, max_seq=1, n_threads=1):
        m = cls._adopt()
        o, buf = _opts(0, max_batch, max_seq, 0, n_threads)
        rc = lib.mm_model_load(ctypes.byref(m.handle), str(path).encode(), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        return m

    @classmethod
    def from_bytes(cls, data, max_batch=1, max_seq=1, n_threads=1):
        m = cls._adopt()
        o, buf = _opts(0, max_batch, max_seq, 0, n_threads)
        raw = ctypes.create_string_buffer(bytes(data), len(data))
        rc = lib.mm_model_load_mem(ctypes.byref(m.handle), raw, len(data), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        return m
