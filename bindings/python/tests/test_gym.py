# SPDX-License-Identifier: MIT
"""The Gymnasium adapter (libmm.gym) on Gymnasium's own CartPole-v1 and Pendulum-v1: spaces
become policy options, PPO learns CartPole, TD3 drives Pendulum inside its bounds and survives
save -> load, vector envs bootstrap from their final observations. Skipped, with the reason
printed, when gymnasium is not installed (CI installs gymnasium 0.28.1 in a virtual env)."""
import os
import tempfile
import unittest

from _setup import HAVE_NUMPY

try:
    import gymnasium as gym
    HAVE_GYM = True
except ImportError:
    HAVE_GYM = False

if HAVE_NUMPY:
    import numpy as np
    import libmm
    from libmm import gym as mmgym

needs_gym = unittest.skipUnless(HAVE_NUMPY and HAVE_GYM,
                                "gymnasium is not installed (pip install gymnasium==0.28.1 in a "
                                "venv made with --system-site-packages)")


@needs_gym
class GymAdapter(unittest.TestCase):
    def test_spaces_become_options(self):
        p = mmgym.make_policy(gym.make("Pendulum-v1"), "td3", seed=1)
        self.assertEqual((p.obs_dim, p.act_width, p.discrete), (3, 1, False))
        a = p.act(np.zeros((1, 3), np.float32))
        self.assertTrue(-2.0 <= float(a[0, 0]) <= 2.0)
        c = mmgym.make_policy(gym.make("CartPole-v1"), "ppo", seed=1)
        self.assertEqual((c.obs_dim, c.discrete), (4, True))
        v = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(3)])
        self.assertEqual(mmgym.make_policy(v, "ppo").n_agents, 3)

    def test_unsupported_space_refused(self):
        env = gym.make("CartPole-v1")
        env.action_space = gym.spaces.MultiDiscrete([2, 2])
        with self.assertRaises(libmm.MMError):
            mmgym.make_policy(env, "ppo")

    def test_ppo_learns_cartpole(self):
        env = gym.make("CartPole-v1")
        agent = mmgym.make_policy(env, "ppo", seed=0)
        hist = mmgym.train(env, agent, 30000, seed=0, log=None)
        recent = np.mean([r for _, r in hist[-20:]])
        # 500 is the maximum; a policy that has not learned balances about 20 steps
        self.assertGreater(recent, 150.0)
        mean, _ = mmgym.evaluate(gym.make("CartPole-v1"), agent, episodes=3, seed=100)
        self.assertGreater(mean, 150.0)

    def test_td3_pendulum_save_load(self):
        env = gym.make("Pendulum-v1")
        agent = mmgym.make_policy(env, "td3", seed=0, learning_starts=200, batch_size=64)
        hist = mmgym.train(env, agent, 1000, seed=0, log=None)
        self.assertEqual(len(hist), 5)  # 200-step episodes, ended by the time limit
        self.assertGreater(agent.get("stat_updates"), 0)
        obs = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
        before = [agent.act(obs[i:i + 1], explore=False) for i in range(4)]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "td3.safetensors")
            agent.save(path)
            other = mmgym.make_policy(env, "td3", seed=7, learning_starts=200, batch_size=64)
            other.load(path)
        for i in range(4):
            np.testing.assert_array_equal(before[i], other.act(obs[i:i + 1], explore=False))

    def test_vector_env_final_observation(self):
        n = 4
        env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
        agent = mmgym.make_policy(env, "ppo", seed=0, n_steps=256)
        hist = mmgym.train(env, agent, 4000, seed=0, log=None)
        self.assertGreater(len(hist), 0)
        self.assertGreater(agent.get("stat_updates"), 0)
        # the final observation of a finished env replaces its reset observation
        nxt = np.zeros((2, 4), np.float32)
        info = {"final_observation": np.array([None, np.ones(4)], dtype=object)}
        final = mmgym._final_obs(nxt, info, np.array([False, True]), 2)
        np.testing.assert_array_equal(final, [[0, 0, 0, 0], [1, 1, 1, 1]])


if __name__ == "__main__":
    unittest.main()
