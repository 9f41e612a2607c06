# SPDX-License-Identifier: MIT
"""Losses, attention and SSMs from Python, against small numpy references."""
import unittest

from _setup import needs_numpy

try:
    import numpy as np
    import libmm
except ImportError:
    pass


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def log_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


@needs_numpy
class LossTest(unittest.TestCase):
    def test_clip_matches_numpy(self):
        loss = libmm.Loss("clip", max_batch=16, max_dim=8, tile=8)
        x = loss.l2_normalize(rand(12, 8, seed=1))
        y = loss.l2_normalize(rand(12, 8, seed=2))
        value, dx, dy = loss.clip(x, y)
        s = np.exp(loss.get("logit_scale"))
        z = s * x.astype(np.float64) @ y.T.astype(np.float64)
        ref = -(np.diag(log_softmax(z, 1)).mean() + np.diag(log_softmax(z, 0)).mean()) / 2
        self.assertAlmostEqual(value, ref, places=5)
        self.assertEqual(dx.shape, x.shape)
        self.assertAlmostEqual(loss.get("stat_loss"), value)

    def test_cross_entropy_and_errors(self):
        loss = libmm.Loss("cross_entropy", max_batch=8, max_dim=5)
        z = rand(6, 5, seed=3)
        t = np.array([0, 4, 2, 1, 3, 0])
        value, dz = loss.cross_entropy(z, t)
        ref = -log_softmax(z.astype(np.float64), 1)[np.arange(6), t].mean()
        self.assertAlmostEqual(value, ref, places=5)
        with self.assertRaises(libmm.RangeError) as cm:
            loss.cross_entropy(z, np.array([0, 9, 2, 1, 3, 0]))
        self.assertTrue(cm.exception.message)
        bad = z.copy()
        bad[1, 1] = np.inf
        with self.assertRaises(libmm.NumericError):
            loss.cross_entropy(bad, t)
        with self.assertRaises(libmm.RangeError):
            libmm.Loss("clip", tile=2)


@needs_numpy
class AttentionTest(unittest.TestCase):
    def test_softmax_causal_matches_numpy(self):
        B, H, N, d = 2, 3, 10, 8
        att = libmm.Attention("softmax", d_head=d, n_heads=H, max_batch=B, max_seq=16, causal=1)
        q, k, v = rand(B, H, N, d, seed=4), rand(B, H, N, d, seed=5), rand(B, H, N, d, seed=6)
        out = att.forward(q, k, v)
        s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(d)
        s = np.where(np.tril(np.ones((N, N), bool)), s, -np.inf)
        ref = np.einsum("bhij,bhjd->bhid", np.exp(log_softmax(s, -1)), v)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
        dq, dk, dv = att.backward(np.ones_like(out))
        self.assertEqual((dq.shape, dk.shape, dv.shape), (q.shape, k.shape, v.shape))
        att.reset()  # streaming gives the causal forward's rows
        for t in range(3):
            o = att.step(q[:, :, t], k[:, :, t], v[:, :, t])
            np.testing.assert_allclose(o, out[:, :, t], rtol=1e-4, atol=1e-5)
        with self.assertRaises(libmm.ShapeError):
            att.forward(q, k, v[..., :4])


@needs_numpy
class SsmTest(unittest.TestCase):
    def test_conv_matches_numpy(self):
        Bt, H, L = 2, 3, 9
        s = libmm.SSM("s4d", d_inner=H, d_state=4, max_batch=Bt, max_seq=16)
        u, k, d = rand(Bt, H, L, seed=7), rand(H, L, seed=8), rand(H, seed=9)
        y = s.conv(u, k, d)
        ref = np.zeros((Bt, H, L))
        for t in range(L):
            ref[:, :, t] = (k[None, :, :t + 1][:, :, ::-1] * u[:, :, :t + 1]).sum(-1)
        ref += d[None, :, None] * u
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)

    def test_selective_scan_equals_steps(self):
        Bt, D, N, L = 2, 4, 3, 7
        s = libmm.SSM("selective", d_inner=D, d_state=N, max_batch=Bt, max_seq=L)
        ins = dict(u=rand(Bt, D, L, seed=10), delta=rand(Bt, D, L, seed=11),
                   A=rand(D, N, seed=12, lo=-1, hi=-0.1), B=rand(Bt, N, L, seed=13),
                   C=rand(Bt, N, L, seed=14), D=rand(D, seed=15))
        out, last = s.scan(last_state_shape=(Bt, D, N), **ins)
        grads = s.scan_backward(np.ones_like(out), wrt=("u", "A"), **ins)
        self.assertEqual(grads["A"].shape, (D, N))
        s.reset()
        for t in range(L):
            o = s.step(u=ins["u"][:, :, t].copy(), delta=ins["delta"][:, :, t].copy(),
                       A=ins["A"], B=ins["B"][:, :, t].copy(), C=ins["C"][:, :, t].copy(),
                       D=ins["D"])
            np.testing.assert_allclose(o, out[:, :, t], rtol=1e-4, atol=1e-5)
        with self.assertRaises(libmm.InvalidArgumentError) as cm:
            s.scan(u=ins["u"])  # missing inputs
        self.assertIn("mm_ssm_scan", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
