# SPDX-License-Identifier: MIT
"""Models from Python: build, train, infer, zero-copy parameter views, save / load (file and
bytes), and errors raised with the handle's message and the status name."""
import os
import tempfile
import unittest

from _setup import needs_numpy

try:
    import numpy as np
    import libmm
except ImportError:  # numpy missing: the tests are skipped
    pass


def mlp(seed=0, max_batch=16):
    return (libmm.Model(3, max_batch=max_batch, seed=seed).dense(32).activation("tanh")
            .dense(32, init="orthogonal").activation("gelu").dense(1).finalize())


@needs_numpy
class ModelTest(unittest.TestCase):
    def test_train_regression(self):
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (16, 3)).astype(np.float32)
        t = (np.sin(x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
        m = mlp()
        m.set_optimizer("adam", lr=1e-2)
        first = None
        for _ in range(300):
            m.zero_grad()
            y = m.forward(x)
            loss = float(((y - t) ** 2).mean())
            first = loss if first is None else first
            m.backward(2 * (y - t) / y.size)
            m.step()
        self.assertLess(loss, first * 0.1)
        self.assertEqual(m.get("stat_steps"), 300)
        np.testing.assert_array_equal(m.infer(x), m.forward(x))

    def test_params_view_is_zero_copy(self):
        m = mlp()
        x = np.ones((2, 3), np.float32)
        p = m.params
        self.assertEqual(p.size, m.num_params)
        p[:] = 0  # written through the view: the model's output becomes 0
        np.testing.assert_array_equal(m.forward(x), np.zeros((2, 1), np.float32))
        del m  # the view keeps the model alive
        self.assertEqual(float(p.sum()), 0.0)

    def test_backward_dx_and_jvp(self):
        m = mlp(seed=3)
        x = np.random.default_rng(1).uniform(-1, 1, (4, 3)).astype(np.float32)
        v = np.random.default_rng(2).normal(size=m.num_params).astype(np.float32)
        m.zero_grad()
        m.forward(x)
        dx = m.backward(np.ones((4, 1), np.float32), want_dx=True)
        self.assertEqual(dx.shape, x.shape)
        y, jy = m.jvp(x, v)
        eps = 1e-3  # J v against a central difference along v
        base = m.params.copy()
        m.params[:] = base + eps * v
        yp = m.forward(x)
        m.params[:] = base - eps * v
        ym = m.forward(x)
        m.params[:] = base
        np.testing.assert_allclose(jy, (yp - ym) / (2 * eps), rtol=2e-2, atol=2e-3)

    def test_save_load_roundtrip(self):
        m = mlp(seed=5)
        m.set_optimizer("adamw")
        x = np.random.default_rng(3).uniform(-1, 1, (5, 3)).astype(np.float32)
        y = m.forward(x)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            m.save(path, optimizer_state=True)
            with libmm.Model.load(path, max_batch=16) as m2:
                np.testing.assert_array_equal(m2.forward(x), y)
        m3 = libmm.Model.from_bytes(m.to_bytes(), max_batch=8)
        np.testing.assert_array_equal(m3.forward(x), y)

    def test_layers(self):
        m = (libmm.Model(6, max_batch=2, max_seq=5).dense(8).rmsnorm()
             .attention("softmax", d_head=4, n_heads=2, causal=1).gau(chunk=2).mamba(d_state=4)
             .s4d(4).layernorm().dense(2).finalize())
        y = m.forward(np.zeros((2, 5, 6), np.float32))
        self.assertEqual(y.shape, (2, 5, 2))
        self.assertEqual(m.num_layers, 8)

    def test_cross_attention(self):
        """forward against a float64 numpy reference, dctx against its central differences,
        and the missing-context refusal."""
        B, T, M, D, C, H, dk = 2, 3, 4, 4, 5, 2, 2
        m = libmm.Model(D, max_batch=B, max_seq=T, seed=3).cross_attention(H, dk, C, 6).finalize()
        rng = np.random.default_rng(1)
        m.params[:] = rng.uniform(-0.6, 0.6, m.num_params).astype(np.float32)
        x = rng.uniform(-1, 1, (B, T, D)).astype(np.float32)
        ctx = rng.uniform(-1, 1, (B, M, C)).astype(np.float32)
        w = rng.uniform(-1, 1, (B, T, D)).astype(np.float32)
        p = m.params.astype(np.float64)
        qw, kw = H * dk, 2 * H * dk
        sizes = [qw * D, qw, kw * C, kw, D * qw, D]
        wq, bq, wkv, bkv, wo, bo = np.split(p, np.cumsum(sizes)[:-1])
        wq, wkv, wo = wq.reshape(qw, D), wkv.reshape(kw, C), wo.reshape(D, qw)

        def ref(c):
            x64 = x.astype(np.float64)
            mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
            q = (((x64 - mu) / np.sqrt(var + 1e-5)) @ wq.T + bq).reshape(B, T, H, dk)
            kv = c @ wkv.T + bkv
            k, v = kv[..., :qw].reshape(B, M, H, dk), kv[..., qw:].reshape(B, M, H, dk)
            s = np.einsum("bthd,bmhd->bhtm", q, k) / np.sqrt(dk)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            o = np.einsum("bhtm,bmhd->bthd", a, v).reshape(B, T, qw)
            return x64 + o @ wo.T + bo

        y = m.forward(x, ctx=ctx)
        np.testing.assert_allclose(y, ref(ctx.astype(np.float64)), rtol=1e-5, atol=1e-5)
        dx, dctx = m.backward(w, want_dx=True, want_dctx=True)
        self.assertEqual(dx.shape, x.shape)
        fd, c64, h = np.empty(ctx.shape), ctx.astype(np.float64), 1e-5
        for i in np.ndindex(ctx.shape):
            c0 = c64[i]
            c64[i] = c0 + h
            lp = (ref(c64) * w).sum()
            c64[i] = c0 - h
            lm = (ref(c64) * w).sum()
            c64[i], fd[i] = c0, (lp - lm) / (2 * h)
        np.testing.assert_allclose(dctx, fd, rtol=1e-4, atol=1e-4 * np.abs(fd).max())
        y2, jy = m.jvp(x, np.zeros(m.num_params, np.float32), ctx=ctx)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(jy, 0)
        with self.assertRaises(libmm.InvalidArgumentError) as cm:
            m.forward(x)
        self.assertIn("needs context tokens", cm.exception.message)
        with self.assertRaises(libmm.ShapeError):
            m.forward(x, ctx=np.zeros((B, M, C + 1), np.float32))

    def test_errors_carry_message_and_name(self):
        m = mlp()
        with self.assertRaises(libmm.ShapeError) as cm:
            m.forward(np.zeros((2, 4), np.float32))
        self.assertEqual(cm.exception.name, "MM_E_SHAPE")
        self.assertIn("mm_model_forward", cm.exception.message)
        self.assertIsInstance(cm.exception, ValueError)
        with self.assertRaises(libmm.RangeError):
            m.forward(np.zeros((17, 3), np.float32))  # beyond max_batch
        with self.assertRaises(libmm.StateError):
            m.step()  # no optimizer
        with self.assertRaises(libmm.InvalidArgumentError) as cm:
            libmm.Model(0)  # create failure: the text comes from err_buf
        self.assertIn("input_dim", cm.exception.message)
        with self.assertRaises(libmm.FormatError):
            libmm.Model.from_bytes(b"\x10" + b"\0" * 63)
        with self.assertRaises(libmm.IOFailure):
            libmm.Model.load("/nonexistent/m.safetensors")
        with self.assertRaises(ValueError):
            m.set_optimizer("nadam")
        m.set_optimizer("sgd")
        with self.assertRaises(libmm.RangeError):
            m.set("lr", -1.0)
        with self.assertRaises(libmm.UnsupportedError):
            m.set("beta1", 0.5)
        g = m.grads
        g[0] = np.nan
        with self.assertRaises(libmm.NumericError):
            m.step()


if __name__ == "__main__":
    unittest.main()
