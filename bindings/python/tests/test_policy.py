# SPDX-License-Identifier: MIT
"""Agents from Python: a PPO / TD3 loop on a toy task, save -> load -> the same actions, and
refused input raised as exceptions."""
import os
import tempfile
import unittest

from _setup import needs_numpy

try:
    import numpy as np
    import libmm
except ImportError:
    pass


def drive(p, steps, rng, n):
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    updates = 0
    for _ in range(steps):
        a = p.act(obs)
        nxt = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        target = obs[:, 0] if p.discrete else obs[:, :1]
        r = -np.abs(a.reshape(n, -1)[:, 0] - target.reshape(n)).astype(np.float32)
        p.observe(obs, a, r, nxt, np.zeros(n, np.uint8), np.zeros(n, np.uint8))
        updates += p.update()
        obs = nxt
    return updates


@needs_numpy
class PolicyTest(unittest.TestCase):
    def test_ppo_and_td3_loops(self):
        rng = np.random.default_rng(0)
        ppo = libmm.Policy("ppo", 3, act_dim=1, n_agents=4, n_steps=8, batch_size=16,
                           hidden=[16, 16], seed=1)
        self.assertEqual(drive(ppo, 24, rng, 4), 3)
        self.assertGreater(ppo.get("stat_updates"), 0)
        td3 = libmm.Policy("td3", 3, act_dim=1, act_low=[-2], act_high=[2], hidden=[16, 16],
                           buffer_size=256, batch_size=16, learning_starts=20, n_agents=2)
        self.assertGreater(drive(td3, 30, rng, 2), 0)
        self.assertTrue(np.all(np.abs(td3.act(np.zeros((2, 3)), explore=False)) <= 2))

    def test_update_budget_equals_update(self):
        def run(budget):
            rng = np.random.default_rng(3)
            p = libmm.Policy("ppo", 3, act_dim=1, n_agents=2, n_steps=4, batch_size=4,
                             hidden=[8], seed=2, norm_reward=1)
            obs = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
            for _ in range(4):
                a = p.act(obs)
                p.observe(obs, a, obs[:, 0].copy(), obs, np.zeros(2, np.uint8),
                          np.zeros(2, np.uint8))
            calls = 1
            if budget:
                while not p.update_budget(budget):
                    calls += 1
                    self.assertEqual(p.get("stat_updating"), 1)
            else:
                self.assertTrue(p.update())
            return p.act(obs, explore=False), p.get("stat_updates"), calls
        one, n1, _ = run(0)
        spread, n2, calls = run(3)
        self.assertTrue(np.array_equal(one, spread))
        self.assertEqual(n1, n2)
        self.assertGreater(calls, 1)
    def test_memory_loop(self):
        rng = np.random.default_rng(4)
        p = libmm.Policy("ppo", 3, n_actions=2, n_agents=4, n_steps=8, batch_size=16,
                         hidden=[16], seed=1, memory="lru", memory_dim=4, memory_seq_len=4)
        self.assertEqual(drive(p, 24, rng, 4), 3)
        obs = np.zeros((4, 3), np.float32)
        p.reset_agent(0)
        p.reset_agent(1)
        a = p.act(obs, explore=False)
        self.assertEqual(a[0], a[1])  # two fresh memories act alike on the same input
        with self.assertRaises(libmm.MMError):
            p.reset_agent(4)
        with self.assertRaises(libmm.MMError):
            libmm.Policy("td3", 3, act_dim=1, memory="lru")
        with self.assertRaises(libmm.MMError):
            p.update_budget(1)

    def test_sac_loop(self):
        rng = np.random.default_rng(3)
        sac = libmm.Policy("sac", 3, act_dim=1, act_low=[-2], act_high=[2], hidden=[16, 16],
                           buffer_size=256, batch_size=16, learning_starts=20, n_agents=2)
        self.assertEqual(sac.get("stat_ent_coef"), 1.0)
        self.assertGreater(drive(sac, 30, rng, 2), 0)
        self.assertNotEqual(sac.get("stat_ent_coef"), 1.0)  # the temperature is tuned
        self.assertTrue(np.all(np.abs(sac.act(np.zeros((2, 3)), explore=False)) <= 2))

    def test_bound_rows_same_as_checked_calls(self):
        # bind_rows skips the per-call conversion and checks: the same seed and data must give
        # bit-identical actions through both paths, updates included (SAC and discrete PPO)
        for algo, kw in (("sac", dict(act_dim=2, act_low=[-2, -1], act_high=[2, 1])),
                         ("ppo", dict(n_actions=3, n_steps=8))):
            a = libmm.Policy(algo, 3, hidden=[16, 16], learning_starts=10, batch_size=8,
                             seed=5, n_agents=2, **kw)
            b = libmm.Policy(algo, 3, hidden=[16, 16], learning_starts=10, batch_size=8,
                             seed=5, n_agents=2, **kw)
            io = b.bind_rows()
            rng = np.random.default_rng(1)
            obs = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
            io.obs[:] = obs
            for t in range(40):
                act_a = a.act(obs)
                act_b = io.act()
                np.testing.assert_array_equal(act_a, act_b, err_msg="%s step %d" % (algo, t))
                nxt = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
                r = rng.normal(size=2).astype(np.float32)
                te = np.array([t % 7 == 6, 0], np.uint8)
                a.observe(obs, act_a, r, nxt, te, np.zeros(2, np.uint8))
                io.rewards[:], io.next_obs[:], io.terminated[:] = r, nxt, te
                io.observe()
                self.assertEqual(a.update(), b.update())
                obs = nxt
                io.obs[:] = nxt
            self.assertGreater(b.get("stat_updates"), 0)
            self.assertEqual(a.get("stat_updates"), b.get("stat_updates"))
            np.testing.assert_array_equal(a.act(obs, explore=False), io.act(explore=False))
        with self.assertRaises(libmm.MMError):
            b.bind_rows(3)  # more rows than agents
        with self.assertRaises(AttributeError):
            io.obs = np.zeros((2, 3), np.float32)  # the C pointers are to the bound buffers

    def test_save_load_same_actions(self):
        p = libmm.Policy("a2c", 3, n_actions=3, n_agents=2, hidden=[8], seed=4)
        drive(p, 15, np.random.default_rng(1), 2)
        obs = np.random.default_rng(2).uniform(-1, 1, (2, 3)).astype(np.float32)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.safetensors")
            p.save(path)
            q = libmm.Policy("a2c", 3, n_actions=3, n_agents=2, hidden=[8], seed=99)
            q.load(path)
        np.testing.assert_array_equal(p.act(obs, explore=False), q.act(obs, explore=False))

    def test_errors(self):
        with self.assertRaises(libmm.InvalidArgumentError) as cm:
            libmm.Policy("td3", 3, n_actions=2)
        self.assertIn("continuous", cm.exception.message)
        p = libmm.Policy("ppo", 3, act_dim=1, n_agents=2, n_steps=4, batch_size=8)
        with self.assertRaises(libmm.NumericError):
            p.act(np.full((2, 3), np.nan, np.float32))
        with self.assertRaises(libmm.RangeError):
            p.act(np.zeros((5, 3), np.float32))
        with self.assertRaises(libmm.RangeError):
            p.set("gamma", 2.0)
        with self.assertRaises(libmm.IOFailure):
            p.load("/nonexistent/p.safetensors")


if __name__ == "__main__":
    unittest.main()
