#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Trains a PPO agent on CartPole from Python through the libmm bindings.

CartPole is written here in numpy (the classic Barto-Sutton-Anderson dynamics with gym's
constants and limits), vectorised over 8 environments that libmm treats as 8 agents of one
policy. PPO uses SB3's defaults except short rollouts (n_steps 32 x 8 environments, minibatch
64, 4 epochs) and a linearly decaying learning rate. Run from the repository root:

    make && LIBMM_LIBRARY=lib/libmm.so.0 /usr/bin/python3 examples/python/train_agent.py

--quick trains briefly (for `make check-python`) and only checks that learning starts.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import numpy as np  # noqa: E402
import libmm  # noqa: E402


class CartPole:
    """n independent CartPole-v1 environments (gym constants, 500-step time limit)."""

    def __init__(self, n, seed=0):
        self.n, self.rng = n, np.random.default_rng(seed)
        self.state = self.rng.uniform(-0.05, 0.05, (n, 4))
        self.steps = np.zeros(n, np.int64)

    def obs(self):
        return self.state.astype(np.float32)

    def step(self, action):
        x, x_dot, th, th_dot = self.state.T
        force = np.where(action > 0.5, 10.0, -10.0)
        cos, sin = np.cos(th), np.sin(th)
        temp = (force + 0.05 * th_dot ** 2 * sin) / 1.1
        th_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos ** 2 / 1.1))
        x_acc = temp - 0.05 * th_acc * cos / 1.1
        tau = 0.02
        self.state = np.stack([x + tau * x_dot, x_dot + tau * x_acc, th + tau * th_dot,
                               th_dot + tau * th_acc], axis=1)
        self.steps += 1
        terminated = (np.abs(self.state[:, 0]) > 2.4) | (np.abs(self.state[:, 2]) > 0.2095)
        truncated = ~terminated & (self.steps >= 500)
        final = self.obs()  # the true last observation, before any reset
        done = terminated | truncated
        self.state[done] = self.rng.uniform(-0.05, 0.05, (int(done.sum()), 4))
        self.steps[done] = 0
        return final, np.ones(self.n, np.float32), terminated, truncated


def train(total_steps, n_envs=8, seed=0, log_every=10000):
    env = CartPole(n_envs, seed)
    agent = libmm.Policy("ppo", obs_dim=4, n_actions=2, n_agents=n_envs, n_steps=32,
                         batch_size=64, n_epochs=4, hidden=[64, 64], seed=seed,
                         linear_decay_steps=total_steps)
    obs, ep_ret, returns = env.obs(), np.zeros(n_envs), []
    t0, next_log = time.time(), log_every
    for step in range(0, total_steps, n_envs):
        actions = agent.act(obs)
        final, reward, terminated, truncated = env.step(actions)
        agent.observe(obs, actions, reward, final, terminated, truncated)
        agent.update()
        ep_ret += reward
        done = terminated | truncated
        returns.extend(ep_ret[done].tolist())
        ep_ret[done] = 0
        obs = env.obs()
        if step + n_envs >= next_log:
            recent = np.mean(returns[-20:]) if returns else 0.0
            print("steps %6d  mean return (last 20 episodes) %6.1f  updates %d  %.1fs" %
                  (step + n_envs, recent, agent.get("stat_updates"), time.time() - t0))
            next_log += log_every
    return agent, returns


def evaluate(agent, episodes=5, seed=123):
    env, lengths = CartPole(1, seed), []
    for _ in range(episodes):
        length, done = 0, False
        while not done:
            _, _, te, tr = env.step(agent.act(env.obs(), explore=False))
            length, done = length + 1, bool(te[0] or tr[0])
        lengths.append(length)
    return float(np.mean(lengths))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60000)
    ap.add_argument("--quick", action="store_true", help="short run for the test suite")
    ap.add_argument("--save", help="write the trained agent to this file")
    args = ap.parse_args()
    steps = 16000 if args.quick else args.steps
    agent, returns = train(steps, log_every=4000 if args.quick else 10000)
    score = evaluate(agent)
    print("deterministic policy: mean episode length %.1f (500 is the maximum)" % score)
    if args.save:
        agent.save(args.save)
    if args.quick:  # learning must have started: random play lasts ~22 steps
        ok = np.mean(returns[-20:]) > 40
        print("train_agent --quick: %s" % ("ok" if ok else "FAILED (no learning)"))
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
