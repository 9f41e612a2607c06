# SPDX-License-Identifier: MIT
"""Python code must never crash the process through the bindings (libmm issue 13, items
14-18, plus the rest of the audit). Repros whose regression would read or write outside an
array run in a child interpreter (run_isolated), with the array placed against an inaccessible
page or on a read-only mapping, so a regression faults deterministically and fails the test."""
import os
import tempfile
import unittest

from _setup import needs_numpy, run_isolated

try:
    import numpy as np
    import libmm
except ImportError:  # numpy missing: the tests are skipped
    pass


@needs_numpy
class ObserveLengthsTest(unittest.TestCase):
    """Item 14: observe and the action bounds check every array against the rows / act_dim."""

    def test_short_arrays_are_refused_not_read_past(self):
        run_isolated(self, '''
            p = libmm.Policy("td3", 4, act_dim=2, n_agents=4, hidden=[8], buffer_size=64,
                             batch_size=4, learning_starts=1000)
            obs, act = np.zeros((4, 4), np.float32), np.zeros((4, 2), np.float32)
            rew, flags = np.zeros(4, np.float32), np.zeros(4, np.uint8)
            short = dict(actions=at_page_end(np.zeros((1, 2))), rewards=at_page_end([0.0]),
                         next_obs=at_page_end(np.zeros((1, 4))),
                         terminated=at_page_end([0], np.uint8),
                         truncated=at_page_end([0], np.uint8))
            for name, arr in short.items():
                args = dict(obs=obs, actions=act, rewards=rew, next_obs=obs, terminated=flags,
                            truncated=flags)
                args[name] = arr
                e = refused(libmm.ShapeError, p.observe, **args)
                assert name in e.message, e.message
            # flat or transposed arrays of the right size are refused as well (no reshape)
            refused(libmm.ShapeError, p.observe, obs, act.reshape(8), rew, obs, flags, flags)
            refused(libmm.ShapeError, p.observe, obs, act, rew.reshape(4, 1), obs, flags,
                    flags)
            refused(libmm.ShapeError, p.observe, obs, act, rew, obs.reshape(2, 8), flags,
                    flags)
            assert p.get("stat_steps") == 0  # nothing was stored
            p.observe(obs, act, rew, obs, [False] * 4, np.zeros(4))  # bools, 0.0 floats: fine
            assert p.get("stat_steps") == 4
            refused(libmm.RangeError, p.observe, obs, act, rew, obs, [0, 2, 0, 0], flags)
        ''')

    def test_bounds_shorter_than_act_dim_are_refused(self):
        run_isolated(self, '''
            for kw in (dict(act_low=at_page_end([-1.0])), dict(act_high=at_page_end([1.0])),
                       dict(act_low=at_page_end(-np.ones(63)), act_high=np.ones(64))):
                e = refused(libmm.ShapeError, libmm.Policy, "td3", 4, act_dim=64, hidden=[8],
                            buffer_size=64, **kw)
                assert "(64,)" in e.message, e.message
            p = libmm.Policy("td3", 4, act_dim=3, act_low=[-2, -2, -2], act_high=(2, 2, 2),
                             hidden=[8], buffer_size=64)
            assert np.all(np.abs(p.act(np.zeros((1, 4)), explore=False)) <= 2)
            refused(libmm.InvalidArgumentError, libmm.Policy, "ppo", 4, n_actions=3,
                    act_low=[-1])  # bounds with discrete actions are a mistake, not ignored
        ''')


@needs_numpy
class ActShapeTest(unittest.TestCase):
    """Item 15: act takes exactly [n, obs_dim]; nothing is reshaped."""

    def test_act_refuses_other_shapes(self):
        p = libmm.Policy("ppo", 4, act_dim=2, n_agents=4, n_steps=8, batch_size=8, hidden=[8])
        for bad in (np.zeros((2, 8)), np.zeros(8), np.zeros(4), np.zeros((4, 4, 1)),
                    np.zeros((4, 2))):
            with self.assertRaises(libmm.ShapeError) as cm:
                p.act(bad)
            self.assertIn("[n, 4]", cm.exception.message)
        self.assertEqual(p.act(np.zeros((2, 4))).shape, (2, 2))
        q = libmm.Policy("ppo", 4, n_actions=3, n_agents=2, n_steps=8, batch_size=8,
                         hidden=[8])
        self.assertEqual(q.act(np.zeros((2, 4), np.float64)).shape, (2,))
        with self.assertRaises(libmm.ShapeError):
            q.act(np.zeros((1, 8)))


@needs_numpy
class OutputArraysTest(unittest.TestCase):
    """Item 16: libmm writes only into writeable, C-contiguous, aligned float32 arrays of the
    exact output shape."""

    def test_read_only_outputs_are_refused(self):
        run_isolated(self, '''
            m = libmm.Model(3, max_batch=4).dense(2).finalize()
            x = np.ones((2, 3), np.float32)
            e = refused(libmm.InvalidArgumentError, m.forward, x, out=read_only((2, 2)))
            assert "read-only" in e.message, e.message
            raw = bytes(16)  # immutable: must stay zero
            refused(libmm.InvalidArgumentError, m.forward, x,
                    out=np.frombuffer(raw, np.float32).reshape(2, 2))
            assert raw == bytes(16)
            refused(libmm.InvalidArgumentError, libmm.Tensor, read_only((2, 2)), True)
            y = m.forward(read_only((2, 3)))  # a read-only input is fine: libmm only reads it
            assert y.shape == (2, 2)
        ''')

    def test_out_must_be_exact(self):
        m = libmm.Model(3, max_batch=4).dense(2).finalize()
        x = np.random.default_rng(0).uniform(-1, 1, (2, 3)).astype(np.float32)
        ref = m.forward(x)
        with self.assertRaises(libmm.DTypeError):
            m.forward(x, out=np.empty((2, 2), np.float64))
        with self.assertRaises(libmm.ShapeError):
            m.forward(x, out=np.empty((4, 1), np.float32))  # same size, other shape
        with self.assertRaises(libmm.ShapeError):
            m.forward(x, out=np.empty(4, np.float32))
        with self.assertRaises(libmm.InvalidArgumentError):
            m.forward(x, out=np.empty((2, 4), np.float32)[:, ::2])  # not contiguous
        unaligned = np.frombuffer(bytearray(17), np.float32, count=4, offset=1).reshape(2, 2)
        with self.assertRaises(libmm.InvalidArgumentError):
            m.forward(x, out=unaligned)
        with self.assertRaises(TypeError):
            m.forward(x, out=[[0.0, 0.0], [0.0, 0.0]])
        square = libmm.Model(2, max_batch=4).dense(2).finalize()
        xs = np.ones((2, 2), np.float32)
        with self.assertRaises(libmm.InvalidArgumentError):
            square.forward(xs, out=xs)  # out overlapping x
        out = np.zeros((2, 2), np.float32)
        self.assertIs(m.forward(x, out=out), out)
        np.testing.assert_array_equal(out, ref)
        # inputs that are unaligned or strided are converted (copied) once, not refused
        ux = np.frombuffer(bytearray(25), np.float32, count=6, offset=1).reshape(2, 3)
        ux[...] = x
        np.testing.assert_array_equal(m.forward(ux), ref)
        np.testing.assert_array_equal(m.forward(np.asfortranarray(x)), ref)


@needs_numpy
class ViewLifetimeTest(unittest.TestCase):
    """Item 17: params / grads views keep the model's memory alive past close() and `with`."""

    def test_views_outlive_close_and_with(self):
        # 1024 x 1024 floats: malloc serves such a block with mmap, and free unmaps it, so a
        # write through a view of freed parameters faults at once.
        run_isolated(self, '''
            m = libmm.Model(1024, max_batch=2).dense(1024).finalize()
            p, g = m.params, m.grads
            m.close()
            p[:] = 1.0
            g[:] = 2.0
            assert float(p.sum()) == p.size and float(g[:10].sum()) == 20.0
            with libmm.Model(1024, max_batch=2).dense(1024).finalize() as m2:
                q = m2.params[5:10]  # a slice keeps it alive too
                r = m2.grads.reshape(1025, 1024)
            q[:] = 3.0
            r[-1, :] = 4.0
            assert float(q.sum()) == 15.0
            del m2
            gc.collect()
            q[:] = 5.0

            # the model is unusable after close, and freed when the last view dies
            assert m.closed
            e = refused(libmm.StateError, m.forward, np.zeros((1, 1024), np.float32))
            assert "closed" in e.message
            refused(libmm.StateError, lambda: m.params)
            m.close()  # twice is fine
            m3 = libmm.Model(4).dense(4).finalize()
            p3, g3 = m3.params, m3.grads
            owner = weakref.ref(m3._owner)
            m3.close()
            del m3
            gc.collect()
            assert owner() is not None  # held by the views
            del p3
            gc.collect()
            assert owner() is not None  # g3 still holds it
            del g3
            gc.collect()
            assert owner() is None  # the last view freed the model
        ''')

    def test_close_while_another_thread_calls(self):
        # the call in flight holds the handle: the free waits for it to return, and the
        # thread's next call raises StateError
        run_isolated(self, """
            import threading, time
            m = (libmm.Model(64, max_batch=64).dense(1024).activation("tanh").dense(1024)
                 .finalize())
            x = np.ones((64, 64), np.float32)
            calls, ended = [], []

            def work():
                try:
                    while True:
                        m.infer(x)
                        calls.append(1)
                except libmm.StateError as e:
                    ended.append(e)

            t = threading.Thread(target=work)
            t.start()
            while len(calls) < 3:
                time.sleep(0.001)
            m.close()
            t.join()
            assert len(ended) == 1 and "closed" in ended[0].message
        """)

    def test_close_without_views_frees_at_once(self):
        import weakref
        m = libmm.Model(3).dense(2).finalize()
        owner = weakref.ref(m._owner)
        m.close()
        self.assertIsNone(owner())
        self.assertEqual(m.errmsg, "")
        with self.assertRaises(libmm.StateError):
            m.num_params


@needs_numpy
class IntegerRangeTest(unittest.TestCase):
    """Item 18: integers are checked against their C type before ctypes narrows them."""

    def test_sizes_and_ids(self):
        for bad in (2**64 + 4, 2**63, -2**63 - 1):
            with self.assertRaises(libmm.RangeError) as cm:
                libmm.Model(bad)
            self.assertIn(str(bad), cm.exception.message)
        with self.assertRaises(libmm.RangeError):
            libmm.Model(4, max_batch=2**64 + 1)
        with self.assertRaises(libmm.RangeError):
            libmm.Model(4, seed=-1)  # uint64_t
        with self.assertRaises(TypeError):
            libmm.Model(4.0)
        m = libmm.Model(4, seed=2**64 - 1)
        with self.assertRaises(libmm.RangeError) as cm:
            m.dense(2**64 + 8)
        self.assertIn("int64_t", cm.exception.message)
        with self.assertRaises(libmm.RangeError):
            m.activation(2**32 + 1)  # would be MM_ACT_RELU after narrowing
        with self.assertRaises(libmm.RangeError):
            m.attention(d_head=2**64 + 4, n_heads=1)
        m.dense(2).finalize()
        with self.assertRaises(libmm.RangeError):
            m.freeze(2**32, 1)
        m.set_optimizer("sgd")
        with self.assertRaises(libmm.RangeError):
            m.set(2**32 + 500, 0.1)  # would be MM_MODEL_LR after narrowing
        with self.assertRaises(libmm.RangeError):
            libmm.Policy("ppo", 2**64 + 4, act_dim=1)
        with self.assertRaises(libmm.RangeError):
            libmm.Policy("ppo", 4, act_dim=1, hidden=[2**64 + 16])
        with self.assertRaises(libmm.RangeError):
            libmm.Loss("clip", max_batch=2**64 + 8)

    def test_cross_entropy_targets(self):
        loss = libmm.Loss("cross_entropy", max_batch=4, max_dim=3)
        z = np.zeros((2, 3), np.float32)
        for t in ([0, 2**32 + 1], np.array([0, 2**32 + 1], np.int64), [0, -2**31 - 1],
                  np.array([0, 2**64 - 1], np.uint64)):
            with self.assertRaises(libmm.RangeError) as cm:
                loss.cross_entropy(z, t)
            self.assertIn("targets", cm.exception.message)
        with self.assertRaises(libmm.DTypeError):
            loss.cross_entropy(z, [0.0, 1.5])
        with self.assertRaises(libmm.ShapeError):
            loss.cross_entropy(z, [[0, 1]])
        with self.assertRaises(libmm.ShapeError):
            loss.cross_entropy(z, [0, 1, 2])
        value, _ = loss.cross_entropy(z, np.array([0, 1], np.uint64))
        self.assertAlmostEqual(value, np.log(3), places=6)


@needs_numpy
class AuditTest(unittest.TestCase):
    """The rest of the audit: options fields, copies, paths, foreign handles, threads."""

    def test_private_and_unknown_options_are_refused(self):
        run_isolated(self, '''
            for name in ("struct_size", "err_buf_size", "err_buf", "alloc", "reserved0",
                         "no_such_field"):
                refused(TypeError, libmm.Policy, "ppo", 4, act_dim=1, **{name: 1 << 40})
            for name in ("struct_size", "err_buf_size", "alloc", "reserved1", "d_hed"):
                refused(TypeError, libmm.Attention, "softmax", d_head=4, n_heads=1,
                        **{name: 1 << 40})
                refused(TypeError, libmm.Model(8).attention, "softmax", d_head=4, n_heads=2,
                        **{name: 1 << 40})
            refused(TypeError, libmm.Loss, "clip", struct_size=1 << 20)
            refused(TypeError, libmm.SSM, "s4d", err_buf_size=1 << 20)
        ''')

    def test_handles_are_not_copied(self):
        # a shallow copy shared the handle: both copies freed it (a double free)
        run_isolated(self, """
            import copy, pickle
            m = libmm.Model(3).dense(2).finalize()
            for fn in (copy.copy, copy.deepcopy, pickle.dumps):
                refused(TypeError, fn, m)
                refused(TypeError, fn, libmm.Tensor(np.zeros(2, np.float32)))
            refused(TypeError, m.copy_from, libmm.Loss("clip"))  # another kind of handle
            refused(TypeError, m.lerp_from, object(), 0.5)
            other = libmm.Model(3).dense(2).finalize()
            other.close()
            refused(libmm.StateError, m.copy_from, other)
            del m
            gc.collect()
        """)

    def test_paths_with_nul_are_refused(self):
        m = libmm.Model(3).dense(2).finalize()
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ValueError):
                m.save(os.path.join(d, "m.safetensors\0.txt"))
            self.assertEqual(os.listdir(d), [])
            path = os.path.join(d, "m.safetensors")
            m.save(path)
            with self.assertRaises(ValueError):
                libmm.Model.load(path + "\0x")
            self.assertEqual(libmm.Model.load(path).num_params, m.num_params)
        with self.assertRaises(TypeError):
            libmm.Model.from_bytes(12)  # an int is not a byte string

    def test_infer_from_threads(self):
        # wide enough that the calls overlap: with one workspace per model, threads overwrote
        # each other's rows and a growing workspace was freed under a running call (SIGSEGV)
        run_isolated(self, """
            import threading
            m = (libmm.Model(3, max_batch=64).dense(512).activation("tanh").dense(512)
                 .activation("tanh").dense(2).finalize())
            xs = [np.random.default_rng(i).uniform(-1, 1, (1 + 21 * i, 3)).astype(np.float32)
                  for i in range(4)]
            refs = [m.forward(x) for x in xs]
            failures = []

            def work(i):
                try:
                    for _ in range(50):
                        np.testing.assert_array_equal(m.infer(xs[i]), refs[i])
                except Exception as e:  # reported by the main thread
                    failures.append(e)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert failures == [], failures
        """)

if __name__ == "__main__":
    unittest.main()
