# SPDX-License-Identifier: MIT
"""The wrappers of the loss helpers (FLIP masking, BLIP hard negatives, Kimi length reward),
the SSM extras (conv / kernel backward, state view, LRU init) and the handle-free functions
(sgemm with thread pools, HiPPO, discretisation, S4D init), each against a float64 numpy
reference or an already-tested path, plus bad input."""
import math
import unittest

from _setup import needs_numpy

try:
    import numpy as np
    import libmm
except ImportError:
    pass


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def directional(f, xs, i, g, seed=0, eps=1e-6):
    """(analytic, finite-difference) derivative of the float64 function f(*xs) along a random
    direction of argument i, g being the analytic gradient of argument i."""
    v = np.random.default_rng(seed).standard_normal(np.shape(xs[i]))
    hi = [np.asarray(x, np.float64) for x in xs]
    lo = [np.asarray(x, np.float64) for x in xs]
    hi[i], lo[i] = hi[i] + eps * v, lo[i] - eps * v
    return float((np.asarray(g, np.float64) * v).sum()), (f(*hi) - f(*lo)) / (2 * eps)


@needs_numpy
class LossHelpersTest(unittest.TestCase):
    def test_flip_draw_gather_scatter(self):
        loss = libmm.Loss("clip", max_batch=4, max_dim=8, seed=5)
        keep = loss.flip_draw(3, 10, 4)
        self.assertEqual((keep.shape, keep.dtype), ((3, 4), np.int32))
        for row in keep:
            self.assertEqual(len(set(row)), 4)
            self.assertTrue(((row >= 0) & (row < 10)).all())
        x = rand(3, 10, 5, seed=1)
        out = loss.flip_gather(x, keep)
        np.testing.assert_array_equal(out, np.take_along_axis(x, keep[..., None].astype(int), 1))
        dout = rand(3, 4, 5, seed=2)
        dx = loss.flip_scatter(dout, keep, 10)
        ref = np.zeros((3, 10, 5))
        for b in range(3):
            np.add.at(ref[b], keep[b], dout[b])
        np.testing.assert_array_equal(dx, ref.astype(np.float32))
        again = libmm.Loss("clip", max_batch=4, max_dim=8, seed=5).flip_draw(3, 10, 4)
        np.testing.assert_array_equal(again, keep)      # the seed decides the draw

    def test_blip_hard_negatives(self):
        loss = libmm.Loss("itc", max_batch=6, max_dim=8, max_queue=8, seed=3)
        sim = rand(5, 8, seed=4)
        neg = loss.blip_hard_negatives(sim)
        self.assertEqual(neg.dtype, np.int32)
        self.assertTrue(all(j != i and 0 <= j < 8 for i, j in enumerate(neg)))
        ids = np.array([0, 0, 1, 1, 2])
        neg = loss.blip_hard_negatives(sim, ids=ids)
        for i, j in enumerate(neg):                     # same-label columns excluded
            self.assertTrue(j == -1 or j >= 5 or ids[j] != ids[i])
        neg = loss.blip_hard_negatives(sim[:, :5].copy(), ids=np.zeros(5, np.int64))
        np.testing.assert_array_equal(neg, -1)           # nothing left to draw
        # a dominant column is drawn (softmax weight ~ 1)
        peaked = np.zeros((5, 5), np.float32)
        peaked[:, 3], peaked[3, 1] = 60, 60
        np.testing.assert_array_equal(loss.blip_hard_negatives(peaked), [3, 3, 3, 1, 3])

    def test_kimi_length_reward(self):
        loss = libmm.Loss("kimi", max_batch=8, group_size=4)
        lengths = np.array([10, 20, 30, 40, 5, 5, 5, 5])
        rewards = np.array([1, 0, 1, 0, 1, 0, 1, 0], np.float32)
        out = loss.kimi_length_reward(lengths, rewards, 4)
        ref = []
        for g in range(2):
            ln = lengths[4 * g:4 * g + 4].astype(np.float64)
            lam = (0.5 - (ln - ln.min()) / (ln.max() - ln.min()) if ln.max() > ln.min()
                   else np.zeros(4))
            r = rewards[4 * g:4 * g + 4]
            ref += list(np.where(r > 0.5, lam, np.minimum(0, lam)))
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-7)

    def test_bad_input(self):
        loss = libmm.Loss("clip", max_batch=4, max_dim=8)
        with self.assertRaises(libmm.RangeError):
            loss.flip_draw(3, 10, 11)
        with self.assertRaises(libmm.RangeError):
            loss.flip_draw(0, 10, 2)
        x = rand(3, 10, 5)
        with self.assertRaises(libmm.RangeError):
            loss.flip_gather(x, np.array([[0, 10]] * 3))
        with self.assertRaises(libmm.DTypeError):
            loss.flip_gather(x, np.zeros((3, 2), np.float32))
        with self.assertRaises(libmm.ShapeError):
            loss.flip_gather(x, np.zeros((2, 2), np.int32))
        with self.assertRaises(libmm.ShapeError):
            loss.flip_scatter(rand(3, 2), np.zeros((3, 2), np.int32), 10)
        with self.assertRaises(libmm.RangeError):
            loss.flip_scatter(rand(3, 2, 5), np.array([[0, 11]] * 3), 10)
        with self.assertRaises(libmm.ShapeError):
            loss.blip_hard_negatives(rand(4, 8), ids=[1, 2])
        with self.assertRaises(libmm.RangeError):
            loss.kimi_length_reward([1, -1], np.zeros(2, np.float32), 2)
        with self.assertRaises(libmm.ShapeError):
            loss.kimi_length_reward([1, 2, 3], np.zeros(2, np.float32), 2)
        np.testing.assert_array_equal(loss.flip_gather(x, np.zeros((3, 1), np.int32)),
                                      x[:, :1])          # still usable


def s4d_kernel_ref(log_dt, A_real, A_imag, C, B, L):
    dt = np.exp(log_dt)[:, None]
    A = -np.exp(A_real) + 1j * A_imag
    CB = (C[..., 0] + 1j * C[..., 1]) * (B[..., 0] + 1j * B[..., 1])
    w = CB * (np.exp(dt * A) - 1) / A
    pw = np.exp(dt[..., None] * A[..., None] * np.arange(L))
    return 2 * np.real((w[..., None] * pw).sum(1))


@needs_numpy
class SsmExtrasTest(unittest.TestCase):
    def test_kernel_backward_and_s4d_init(self):
        H, N, L = 2, 6, 7
        s = libmm.SSM("s4d", d_inner=H, d_state=N, max_batch=1, max_seq=L)
        A_real, A_imag = libmm.s4d_init("lin", H, N)
        np.testing.assert_allclose(A_real, np.full((H, 3), math.log(0.5)), rtol=1e-6)
        np.testing.assert_allclose(A_imag, np.pi * np.tile(np.arange(3), (H, 1)), rtol=1e-6)
        _, inv = libmm.s4d_init("inv", H, N)
        np.testing.assert_allclose(inv[0], (N / np.pi) * (N / (2 * np.arange(3) + 1) - 1),
                                   rtol=1e-6)
        ins = dict(log_dt=rand(H, seed=1, lo=-3, hi=-1), A_real=A_real, A_imag=A_imag,
                   C=rand(H, 3, 2, seed=2), B=rand(H, 3, 2, seed=3))
        k = s.kernel(L, H, **ins)
        args = [ins[n] for n in ("log_dt", "A_real", "A_imag", "C", "B")]
        np.testing.assert_allclose(k, s4d_kernel_ref(*args, L), rtol=1e-4, atol=1e-5)
        dk = rand(H, L, seed=4)
        g = s.kernel_backward(dk, wrt=("log_dt", "A_real", "A_imag", "C", "B"), **ins)
        f = lambda *xs: float((s4d_kernel_ref(*xs, L) * dk).sum())  # noqa: E731
        for i, name in enumerate(("log_dt", "A_real", "A_imag", "C", "B")):
            an, fd = directional(f, args, i, g[name], seed=i)
            self.assertAlmostEqual(an, fd, delta=1e-3 * (1 + abs(fd)), msg=name)

    def test_conv_backward(self):
        Bt, H, L = 2, 3, 9
        s = libmm.SSM("s4d", d_inner=H, d_state=4, max_batch=Bt, max_seq=16)
        u, k, d, dy = rand(Bt, H, L, seed=7), rand(H, L, seed=8), rand(H, seed=9), \
            rand(Bt, H, L, seed=10)

        def conv(u, k, d):
            y = np.zeros((Bt, H, L))
            for t in range(L):
                y[:, :, t] = (k[None, :, :t + 1][:, :, ::-1] * u[:, :, :t + 1]).sum(-1)
            return float(((y + d[None, :, None] * u) * dy).sum())
        grads = s.conv_backward(u, k, dy, d)
        for i, g in enumerate(grads):
            an, fd = directional(conv, [u, k, d], i, g, seed=i)
            self.assertAlmostEqual(an, fd, delta=1e-4 * (1 + abs(fd)))
        self.assertIsNone(s.conv_backward(u, k, dy)[2])
        with self.assertRaises(libmm.ShapeError):
            s.conv_backward(u, k[:, :4], dy)

    def test_lru_init_and_state(self):
        Bt, H, N, L = 2, 3, 4, 6
        s = libmm.SSM("lru", d_inner=H, d_state=N, max_batch=Bt, max_seq=L, seed=4)
        p = s.lru_init(r_min=0.5, r_max=0.9, max_phase=1.0)
        mod = np.exp(-np.exp(p["nu_log"].astype(np.float64)))
        self.assertTrue(((mod >= 0.5 - 1e-6) & (mod <= 0.9 + 1e-6)).all())
        self.assertTrue((np.exp(p["theta_log"]) <= 1.0 + 1e-6).all())
        np.testing.assert_allclose(p["gamma_log"], np.log(np.sqrt(1 - mod ** 2)), rtol=1e-5,
                                   atol=1e-6)
        self.assertEqual((p["B"].shape, p["C"].shape, p["D"].shape), ((N, H, 2), (H, N, 2),
                                                                       (H,)))
        # the state view continues a scan: scan(L-1) -> state = last_state -> step == scan(L)
        u = rand(Bt, L, H, seed=5)
        full = s.scan(u=u, **p)
        part, last = s.scan(last_state_shape=(Bt, N, 2), u=u[:, :L - 1].copy(), **p)
        s.reset()
        st = s.state
        np.testing.assert_array_equal(st, 0)
        st[:last.size] = last.ravel()
        o = s.step(u=u[:, L - 1].copy(), **p)
        np.testing.assert_allclose(o, full[:, L - 1], rtol=1e-4, atol=1e-5)
        s.close()
        self.assertEqual(st.size, Bt * N * 2)           # the view outlives close()
        with self.assertRaises(libmm.InvalidArgumentError):   # not an LRU handle
            libmm.SSM("s4d", d_inner=2, d_state=4).lru_init()
        with self.assertRaises(libmm.RangeError):
            libmm.SSM("lru", d_inner=2, d_state=4).lru_init(r_min=0.9, r_max=0.5)


@needs_numpy
class FunctionsTest(unittest.TestCase):
    def test_sgemm_matches_numpy_and_threads(self):
        a, b = rand(70, 50, seed=1), rand(50, 90, seed=2)
        c0 = rand(70, 90, seed=3)
        ref = 0.5 * (a.astype(np.float64) @ b) + 2.0 * c0
        c = libmm.sgemm(a, b, c0.copy(), alpha=0.5, beta=2.0)
        np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)
        t = libmm.sgemm(a.T.copy(), b.T.copy(), trans_a=True, trans_b=True)
        np.testing.assert_allclose(t, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
        big_a, big_b = rand(160, 120, seed=4), rand(120, 140, seed=5)
        one = libmm.sgemm(big_a, big_b, threads=libmm.Threads(1))
        with libmm.Threads(2) as pool:
            self.assertGreater(pool.workspace_size, 0)
            two = libmm.sgemm(big_a, big_b, threads=pool)
        np.testing.assert_array_equal(one, two)          # bitwise for every thread count
        np.testing.assert_allclose(two, big_a.astype(np.float64) @ big_b, rtol=1e-4,
                                   atol=1e-4)

    def test_sgemm_bad_input(self):
        a, b = rand(4, 3), rand(3, 5)
        with self.assertRaises(libmm.ShapeError):
            libmm.sgemm(a, rand(4, 5))
        with self.assertRaises(libmm.ShapeError):
            libmm.sgemm(a, b, c=np.zeros((4, 4), np.float32))
        with self.assertRaises(libmm.DTypeError):
            libmm.sgemm(a, b, c=np.zeros((4, 5)))
        with self.assertRaises(libmm.InvalidArgumentError):
            libmm.sgemm(a, b, c=np.zeros((5, 4), np.float32).T)
        with self.assertRaises(libmm.ShapeError):
            libmm.sgemm(rand(3), b)
        with self.assertRaises(libmm.RangeError):
            libmm.Threads(0)
        with self.assertRaises(TypeError):
            libmm.sgemm(a, b, threads=2)
        pool = libmm.Threads(2)
        pool.close()
        with self.assertRaises(libmm.StateError):
            libmm.sgemm(a, b, threads=pool)

    def test_hippo(self):
        n = 6
        A, B = libmm.hippo("legs", n)
        i = np.arange(n)
        q = np.sqrt(2 * i + 1)
        ref = -np.where(i[:, None] > i[None, :], np.outer(q, q), np.diag(i + 1.0))
        np.testing.assert_allclose(A, ref, rtol=1e-12)
        np.testing.assert_allclose(B, q, rtol=1e-12)
        P, normal = libmm.hippo_rank_correction("legs", n, rank=1)
        np.testing.assert_allclose(P[0], np.sqrt(i + 0.5), rtol=1e-12)
        np.testing.assert_allclose(normal, A + np.outer(P[0], P[0]), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(normal + normal.T, -np.eye(n), atol=1e-12)
        P2, _ = libmm.hippo_rank_correction("legt", n, rank=3)
        np.testing.assert_array_equal(P2[2], 0)          # rows beyond the natural rank
        with self.assertRaises(libmm.RangeError):
            libmm.hippo("fout", 5)                        # odd n
        with self.assertRaises(ValueError):
            libmm.hippo("nope", 4)
        with self.assertRaises(libmm.RangeError):
            libmm.hippo_rank_correction("legs", 4, rank=17)

    def test_discretize(self):
        A, B = libmm.hippo("legt", 4)
        dt = 0.1
        Ad, Bd = libmm.discretize("bilinear", A, B, dt)
        inv = np.linalg.inv(np.eye(4) - dt / 2 * A)
        np.testing.assert_allclose(Ad, inv @ (np.eye(4) + dt / 2 * A), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Bd, dt * inv @ B, rtol=1e-10, atol=1e-12)
        a = np.array([-1.0, -0.5, 0.0])
        b = np.array([1.0, 2.0, 3.0])
        ad, bd = libmm.discretize("zoh", a, b, 0.2)
        np.testing.assert_allclose(ad, np.exp(0.2 * a), rtol=1e-12)
        np.testing.assert_allclose(bd, [np.expm1(-0.2) / -1, np.expm1(-0.1) / -0.5 * 2,
                                        0.2 * 3], rtol=1e-12)
        with self.assertRaises(libmm.RangeError):
            libmm.discretize("zoh", a, b, 0.0)
        with self.assertRaises(libmm.ShapeError):
            libmm.discretize("zoh", a, b[:2], 0.1)
        with self.assertRaises(libmm.ShapeError):
            libmm.discretize("zoh", np.zeros((2, 3)), b[:2], 0.1)
        with self.assertRaises(libmm.NumericError):
            libmm.discretize("zoh", np.array([np.nan]), np.ones(1), 0.1)
        with self.assertRaises(libmm.RangeError):
            libmm.s4d_init("lin", 2, 5)


if __name__ == "__main__":
    unittest.main()
