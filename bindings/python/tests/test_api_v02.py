# SPDX-License-Identifier: MIT
"""The 0.2 wrappers (RWKV-6, Performer projection, decoding and sampling, log-probabilities,
policy bytes / checkpoints / load_new / export, version numbers), each against an independent
path: a float64 numpy reference, or the same result through an already-tested call."""
import io
import os
import re
import tempfile
import unittest

from _setup import REPO, needs_numpy

try:
    import numpy as np
    import libmm
except ImportError:
    pass


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def rwkv6_ref(r, k, v, w, u):
    """float64 RWKV-6: o_t = r_t . (S + diag(u) k_t v_t^T), then S = diag(exp w_t) S +
    k_t v_t^T, per batch-head."""
    r, k, v, w, u = (np.asarray(a, np.float64) for a in (r, k, v, w, u))
    B, H, N, d = r.shape
    out = np.zeros((B, H, N, v.shape[-1]))
    for b in range(B):
        for hh in range(H):
            S = np.zeros((d, v.shape[-1]))
            for t in range(N):
                kv = np.outer(k[b, hh, t], v[b, hh, t])
                out[b, hh, t] = r[b, hh, t] @ (S + u[hh][:, None] * kv)
                S = np.exp(w[b, hh, t])[:, None] * S + kv
    return out


@needs_numpy
class VersionTest(unittest.TestCase):
    def test_numbers_match_header(self):
        with open(os.path.join(REPO, "include", "mm.h")) as f:
            src = f.read()
        abi = int(re.search(r"#define MM_ABI_VERSION\s+(\d+)", src).group(1))
        self.assertEqual(libmm.abi_version(), abi)
        n = libmm.version_number()
        self.assertEqual("%d.%d.%d" % (n // 10000, n // 100 % 100, n % 100),
                         libmm.version().split("-")[0].split("+")[0])


@needs_numpy
class Rwkv6Test(unittest.TestCase):
    B, H, N, d, dv = 2, 2, 5, 4, 3

    def inputs(self):
        B, H, N, d, dv = self.B, self.H, self.N, self.d, self.dv
        return (rand(B, H, N, d, seed=1), rand(B, H, N, d, seed=2), rand(B, H, N, dv, seed=3),
                rand(B, H, N, d, seed=4, lo=-1.5, hi=-0.05), rand(H, d, seed=5))

    def attn(self):
        return libmm.Attention("rwkv6", d_head=self.d, dv=self.dv, n_heads=self.H,
                               max_batch=self.B, max_seq=self.N)

    def test_forward_matches_numpy_and_steps(self):
        a = self.attn()
        r, k, v, w, u = self.inputs()
        out = a.forward_rwkv6(r, k, v, w, u)
        np.testing.assert_allclose(out, rwkv6_ref(r, k, v, w, u), rtol=1e-4, atol=1e-5)
        a.reset()
        steps = np.stack([a.step_rwkv6(r[:, :, t], k[:, :, t], v[:, :, t], w[:, :, t], u)
                          for t in range(self.N)], axis=2)
        np.testing.assert_allclose(steps, out, rtol=1e-4, atol=1e-5)

    def test_backward_matches_finite_differences(self):
        a = self.attn()
        xs = list(self.inputs())
        dout = rand(self.B, self.H, self.N, self.dv, seed=9)
        a.forward_rwkv6(*xs)
        grads = a.backward_rwkv6(dout)
        for g, x in zip(grads, xs):
            self.assertEqual(g.shape, x.shape)
        f = lambda ys: float((rwkv6_ref(*ys) * dout).sum())  # noqa: E731
        rng = np.random.default_rng(7)
        for i, name in enumerate(("r", "k", "v", "w", "u")):
            direction = rng.standard_normal(xs[i].shape)
            eps = 1e-6
            hi = [np.asarray(x, np.float64) for x in xs]
            lo = [np.asarray(x, np.float64) for x in xs]
            hi[i] = hi[i] + eps * direction
            lo[i] = lo[i] - eps * direction
            fd = (f(hi) - f(lo)) / (2 * eps)
            an = float((grads[i].astype(np.float64) * direction).sum())
            self.assertAlmostEqual(an, fd, delta=1e-3 * (1 + abs(fd)), msg=name)

    def test_bad_input(self):
        a = self.attn()
        r, k, v, w, u = self.inputs()
        with self.assertRaises(libmm.StateError):
            a.backward_rwkv6(np.zeros((self.B, self.H, self.N, self.dv), np.float32))
        with self.assertRaises(libmm.NumericError):
            a.forward_rwkv6(r, k, v, -w, u)            # a positive log-decay
        with self.assertRaises(libmm.ShapeError):
            a.forward_rwkv6(r, k, v, w, u[:, :2])
        with self.assertRaises(libmm.InvalidArgumentError):
            a.forward_rwkv6(r, k, v, w, None)
        with self.assertRaises(ValueError):            # numpy refuses to make it float32
            a.forward_rwkv6(r, k, v, w, "u")
        with self.assertRaises(libmm.StateError):      # not an RWKV6 handle
            libmm.Attention("gated", d_head=4, dv=3, n_heads=2, max_batch=2,
                            max_seq=5).forward_rwkv6(r, k, v, w, u)
        np.testing.assert_allclose(a.forward_rwkv6(r, k, v, w, u), rwkv6_ref(r, k, v, w, u),
                                   rtol=1e-4, atol=1e-5)  # still usable


@needs_numpy
class PerformerProjectionTest(unittest.TestCase):
    def test_get_set_redraw(self):
        a = libmm.Attention("performer", d_head=8, n_heads=1, max_batch=1, max_seq=6,
                            n_features=16, seed=3)
        q, k, v = rand(1, 1, 6, 8, seed=1), rand(1, 1, 6, 8, seed=2), rand(1, 1, 6, 8, seed=3)
        w = a.projection
        self.assertEqual(w.shape, (16, 8))
        out = a.forward(q, k, v)
        a.redraw()
        self.assertFalse(np.array_equal(a.projection, w))
        self.assertFalse(np.array_equal(a.forward(q, k, v), out))
        a.projection = w                                # back to the first draw
        np.testing.assert_array_equal(a.projection, w)
        np.testing.assert_array_equal(a.forward(q, k, v), out)
        # another handle with the same seed draws the same projection
        b = libmm.Attention("performer", d_head=8, n_heads=1, max_batch=1, max_seq=6,
                            n_features=16, seed=3)
        np.testing.assert_array_equal(b.projection, w)

    def test_default_feature_count(self):
        a = libmm.Attention("performer", d_head=64, n_heads=1, max_batch=1, max_seq=2)
        self.assertEqual(a.projection.shape, (266, 64))  # mm.h: 266 at d = 64

    def test_bad_input(self):
        a = libmm.Attention("performer", d_head=8, n_heads=1, max_batch=1, max_seq=6,
                            n_features=16)
        with self.assertRaises(libmm.ShapeError):
            a.projection = np.zeros((16, 7), np.float32)
        bad = a.projection
        bad[0, 0] = np.nan
        with self.assertRaises(libmm.NumericError):
            a.projection = bad
        with self.assertRaises(libmm.InvalidArgumentError):
            a.projection = None
        s = libmm.Attention("softmax", d_head=8, n_heads=1, max_batch=1, max_seq=6)
        with self.assertRaises(libmm.StateError):
            s.redraw()
        with self.assertRaises(libmm.StateError):
            s.projection


def lm(seed=0, recurrent=True):
    """A tiny token model: embedding -> (mamba) -> dense logits over 7 tokens."""
    m = libmm.Model(1, max_batch=3, max_seq=6, seed=seed).embedding(7, 8)
    if recurrent:
        m.mamba(d_state=4)
    return m.dense(7).finalize()


@needs_numpy
class DecodeSampleTest(unittest.TestCase):
    def test_decode_steps_equal_forward(self):
        m = lm()
        x = np.random.default_rng(1).integers(0, 7, (3, 6, 1)).astype(np.float32)
        full = m.forward(x)
        state = m.decode_state(3)
        self.assertGreater(state.size, 0)
        steps = np.stack([m.decode_step(x[:, t], state) for t in range(6)], axis=1)
        np.testing.assert_allclose(steps, full, rtol=1e-4, atol=1e-5)
        self.assertEqual(lm(recurrent=False).decode_state(2).size, 0)

    def test_sample_and_logprob(self):
        m = lm(seed=2)
        z = rand(4, 7, seed=3, lo=-3, hi=3)
        m2 = libmm.Model(2, max_batch=4).dense(7).finalize()
        tok, logp = m2.sample(z, temperature=0)
        np.testing.assert_array_equal(tok, np.argmax(z, axis=1))
        np.testing.assert_allclose(logp, log_softmax(z)[np.arange(4), tok], rtol=1e-5,
                                   atol=1e-6)
        m2.seed(11)
        a = m2.sample(z, temperature=0.7, top_k=3)
        m2.seed(11)
        b = m2.sample(z, temperature=0.7, top_k=3)
        np.testing.assert_array_equal(a[0], b[0])
        top3 = np.argsort(-z, axis=1)[:, :3]
        self.assertTrue(all(t in row for t, row in zip(a[0], top3)))
        # logprob = log_softmax(forward) at the targets; its backward = backward of
        # weights * (onehot - softmax), through the already-tested Model.backward
        x = np.random.default_rng(4).integers(0, 7, (2, 5, 1)).astype(np.float32)
        t = np.random.default_rng(5).integers(0, 7, (2, 5))
        t[0, 0] = -1                                        # skipped position
        wts = rand(2, 5, seed=6)
        ref = log_softmax(m.forward(x))
        lp = m.logprob(x, t)
        want = np.where(t >= 0, np.take_along_axis(ref, np.maximum(t, 0)[..., None], -1)[..., 0],
                        0)
        np.testing.assert_allclose(lp, want, rtol=1e-5, atol=1e-5)
        m.zero_grad()
        m.logprob_backward(t, wts)
        g1 = m.grads.copy()
        onehot = np.zeros(ref.shape)
        for (b, s), tt in np.ndenumerate(t):
            if tt >= 0:
                onehot[b, s, tt] = 1
        dy = ((onehot - np.exp(ref)) * np.where(t >= 0, wts, 0)[..., None]).astype(np.float32)
        m.zero_grad()
        m.forward(x)
        m.backward(dy)
        np.testing.assert_allclose(g1, m.grads, rtol=1e-4, atol=1e-5)

    def test_bad_input(self):
        m = lm()
        x = np.zeros((3, 1), np.float32)
        with self.assertRaises(libmm.DTypeError):
            m.decode_step(x, m.decode_state(3).astype(np.float32))
        with self.assertRaises(libmm.InvalidArgumentError):
            m.decode_step(x, np.zeros(1, np.uint64))             # too small
        with self.assertRaises(libmm.RangeError):
            m.decode_state(99)
        z = rand(2, 7)
        with self.assertRaises(libmm.RangeError):
            m.sample(z, top_p=2.0)
        with self.assertRaises(libmm.ShapeError):
            m.sample(rand(2, 5))
        bad = z.copy()
        bad[0, 1] = np.inf
        with self.assertRaises(libmm.NumericError):
            m.sample(bad)
        xs = np.zeros((2, 5, 1), np.float32)
        with self.assertRaises(libmm.DTypeError):
            m.logprob(xs, np.zeros((2, 5), np.float32))
        with self.assertRaises(libmm.ShapeError):
            m.logprob(xs, np.zeros(9, np.int64))
        with self.assertRaises(libmm.RangeError):
            m.logprob(xs, np.full(10, 2**33))
        with self.assertRaises(libmm.ShapeError):
            m.logprob_backward(np.zeros(10, np.int32), np.zeros(9, np.float32))
        self.assertEqual(m.sample(z, temperature=0)[0].shape, (2,))   # still usable


def policy(seed=0, **kw):
    args = dict(n_agents=5, n_steps=8, batch_size=8, hidden=[8], seed=seed, norm_obs=1)
    args.update(kw)
    return libmm.Policy("ppo", 3, act_dim=2, act_low=[-1, -2], act_high=[1, 2], **args)


def train(p, steps=16, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((p.n_agents, 3)).astype(np.float32)
    for _ in range(steps):
        a = p.act(obs)
        nxt = rng.standard_normal(obs.shape).astype(np.float32)
        p.observe(obs, a, rng.standard_normal(p.n_agents), nxt, np.zeros(p.n_agents),
                  np.zeros(p.n_agents))
        p.update()
        obs = nxt


@needs_numpy
class PolicyIoTest(unittest.TestCase):
    def setUp(self):
        self.obs = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32) * 2

    def test_bytes_roundtrip_acts_identically(self):
        p, q = policy(seed=1), policy(seed=2)
        train(p)
        self.assertFalse(np.array_equal(p.act(self.obs, False), q.act(self.obs, False)))
        q.load_bytes(p.to_bytes())
        np.testing.assert_array_equal(q.act(self.obs, False), p.act(self.obs, False))
        c = policy(seed=3)
        c.load_bytes(p.to_bytes(checkpoint=True))
        np.testing.assert_array_equal(c.act(self.obs, False), p.act(self.obs, False))
        self.assertGreater(len(p.to_bytes(checkpoint=True)), len(p.to_bytes()))

    def test_checkpoint_file_and_from_file(self):
        p = policy(seed=1)
        train(p)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.safetensors")
            p.save(path, checkpoint=True)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), p.to_bytes(checkpoint=True))
            q = libmm.Policy.from_file(path, algo="ppo", n_agents=5, n_steps=8, batch_size=8)
            np.testing.assert_array_equal(q.act(self.obs, False), p.act(self.obs, False))
            p.save(path)
            r = libmm.Policy.from_file(path)             # the defaults: one agent
            one = self.obs[:1]
            np.testing.assert_array_equal(r.act(one, False), p.act(one, False))
            self.assertEqual(r.act(one).shape, (1, 2))

    def test_export_reproduces_act(self):
        p = policy(seed=1)
        train(p)
        m = p.export(max_batch=5)
        np.testing.assert_array_equal(p.act_exported(m, self.obs), p.act(self.obs, False))
        io = p.export_io()
        self.assertEqual(io["output_name"], "clip")
        np.testing.assert_array_equal(io["act_low"], [-1, -2])
        self.assertEqual((io["obs_dim"], io["act_dim"], io["model_out"]), (3, 2, 2))
        before = m.infer(self.obs)
        train(p, seed=5)                               # the export is a copy ...
        np.testing.assert_array_equal(m.infer(self.obs), before)
        p.export_copy(m)                               # ... until refreshed
        np.testing.assert_array_equal(p.act_exported(m, self.obs), p.act(self.obs, False))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "actor.safetensors")
            p.export_save(path)
            np.testing.assert_array_equal(libmm.Model.load(path, max_batch=5).infer(self.obs),
                                          m.infer(self.obs))
        for algo, kw in (("td3", dict(act_dim=2, act_low=[-1, -2], act_high=[1, 2])),
                         ("ppo", dict(n_actions=3)),
                         ("sac", dict(act_dim=2))):
            q = libmm.Policy(algo, 3, hidden=[8], norm_obs=0, n_agents=5, **kw)
            np.testing.assert_array_equal(q.act_exported(q.export(max_batch=5), self.obs),
                                          q.act(self.obs, False), err_msg=algo)

    def test_streams(self):
        p, q = policy(seed=1), policy(seed=2)
        train(p)
        blob = p.to_bytes()
        f = io.BytesIO(blob + b"trailing data")
        q.load_stream(f)
        self.assertEqual(f.tell(), len(blob))           # nothing past the file was read
        np.testing.assert_array_equal(q.act(self.obs, False), p.act(self.obs, False))
        m = lm(seed=3)
        mb = m.to_bytes()
        f = io.BytesIO(mb + blob)
        m2 = libmm.Model.from_stream(f, max_batch=3, max_seq=6)
        self.assertEqual(f.tell(), len(mb))
        x = np.random.default_rng(1).integers(0, 7, (3, 6, 1)).astype(np.float32)
        np.testing.assert_array_equal(m2.infer(x), m.infer(x))
        q.load_stream(f)                                 # the policy that followed the model
        np.testing.assert_array_equal(q.act(self.obs, False), p.act(self.obs, False))

        class Broken(io.RawIOBase):
            def read(self, n):
                raise OSError("disk on fire")
        with self.assertRaises(libmm.IOFailure) as cm:
            libmm.Model.from_stream(Broken())
        self.assertIsInstance(cm.exception.__cause__, OSError)
        with self.assertRaises(libmm.IOFailure):
            q.load_stream(Broken())
        with self.assertRaises(libmm.FormatError):       # truncated
            libmm.Model.from_stream(io.BytesIO(mb[:len(mb) // 2]))
        with self.assertRaises(libmm.FormatError):
            q.load_stream(io.BytesIO(blob[:100]))
        with self.assertRaises(libmm.IOFailure):         # read() returning a str
            q.load_stream(io.StringIO("text"))
        np.testing.assert_array_equal(q.act(self.obs, False), p.act(self.obs, False))

    def test_bad_input(self):
        p = policy()
        with self.assertRaises(libmm.FormatError):
            p.load_bytes(b"not a policy file")
        with self.assertRaises(libmm.FormatError):
            p.load_bytes(p.to_bytes()[:-3])
        with self.assertRaises(TypeError):
            p.export_copy("model")
        with self.assertRaises(libmm.ShapeError):      # another architecture
            p.export_copy(libmm.Model(3, max_batch=1).dense(2).finalize())
        with self.assertRaises(libmm.UnsupportedError):
            libmm.Policy("ppo", 3, n_actions=2, memory="lru", memory_dim=4,
                         memory_seq_len=4).export()
        with self.assertRaises(libmm.IOFailure):
            libmm.Policy.from_file("/nonexistent/dir/p.safetensors")
        with self.assertRaises(libmm.InvalidArgumentError):
            libmm.Policy.from_file("p.safetensors", n_agents=2)   # options without algo
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.safetensors")
            p.save(path)
            with self.assertRaises(libmm.FormatError):             # options of another algo
                libmm.Policy.from_file(path, algo="td3")
        np.testing.assert_array_equal(p.act(self.obs, False), p.act(self.obs, False))


if __name__ == "__main__":
    unittest.main()
