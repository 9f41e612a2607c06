# SPDX-License-Identifier: MIT
"""recurrent_vs_sb3.py - sb3-contrib RecurrentPPO at rl-baselines3-zoo's recurrentppo.yml settings
on Gymnasium's CartPole-v1 / Pendulum-v1 with the velocities masked (CartPoleNoVel-v1: [x, theta];
PendulumNoVel-v1: [cos, sin]), for comparison with build/bench/rl_memory (docs/RL.md "Memory").
Prints the deterministic evaluation return (10 episodes, LSTM state carried and reset per
episode; with --eval-episodes N > 10 also the mean over N, the first 10 being the same
episodes) and the wall-clock of each run. Usage (in the venv of bench/gym.mk with sb3-contrib
2.0.0): python bench/recurrent_vs_sb3.py [cartpole|pendulum] [--seeds N] [--first-seed S]
[--steps N] [--eval-episodes N] [--norm-gamma G]. VecNormalize gets the algorithm's gamma, as
the zoo's exp_manager gives it, unless --norm-gamma says otherwise."""
import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize


class NoVel(gym.ObservationWrapper):
    """Keeps the observation components in keep (the zoo's NoVel wrappers)."""

    def __init__(self, env, keep):
        super().__init__(env)
        self.keep = np.array(keep)
        low, high = env.observation_space.low[self.keep], env.observation_space.high[self.keep]
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, obs):
        return obs[self.keep].astype(np.float32)


def lin(v):
    return lambda progress: progress * v


KW = dict(ortho_init=False, activation_fn=torch.nn.ReLU, lstm_hidden_size=64,
          enable_critic_lstm=True, net_arch=dict(pi=[64], vf=[64]))
TASKS = {
    "cartpole": ("CartPole-v1", [0, 2], 8, dict(n_steps=32, batch_size=256, gae_lambda=0.8,
                 gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate=lin(1e-3),
                 clip_range=lin(0.2))),
    "pendulum": ("Pendulum-v1", [0, 1], 4, dict(n_steps=1024, gae_lambda=0.95, gamma=0.9,
                 n_epochs=10, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2, use_sde=True,
                 sde_sample_freq=4)),
}


def run(task, seed, steps, n_eval=10, norm_gamma=None):
    env_id, keep, n_envs, hp = TASKS[task]
    # rl-baselines3-zoo passes the algorithm's gamma to VecNormalize ("Use the same discount factor
    # as for the algorithm"), so that is the default here; --norm-gamma 0.99 gives VecNormalize's
    # own default, which runs before 2026-12-04 used.
    nk = dict(gamma=hp["gamma"] if norm_gamma is None else norm_gamma)
    venv = VecNormalize(make_vec_env(env_id, n_envs=n_envs, seed=seed,
                                     wrapper_class=NoVel, wrapper_kwargs=dict(keep=keep)), **nk)
    t0 = time.time()
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, policy_kwargs=KW, device="cpu", **hp)
    model.learn(total_timesteps=steps)
    secs = time.time() - t0
    venv.training, venv.norm_reward = False, False
    env = NoVel(gym.make(env_id), keep)
    rets = []
    for ep in range(n_eval):
        obs, _ = env.reset(seed=777 + seed * 100 + ep)
        state, start, done, total = None, np.ones((1,), dtype=bool), False, 0.0
        while not done:
            action, state = model.predict(venv.normalize_obs(obs[None]), state=state,
                                          episode_start=start, deterministic=True)
            obs, r, term, trunc, _ = env.step(action[0])
            total += r
            start = np.zeros((1,), dtype=bool)
            done = term or trunc
        rets.append(total)
    return float(np.mean(rets[:10])), float(np.mean(rets)), secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=sorted(TASKS))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--norm-gamma", type=float, default=None,
                    help="VecNormalize's reward gamma (default: the algorithm's gamma, as the "
                    "zoo passes it; VecNormalize's own default is 0.99)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    for s in range(a.first_seed, a.first_seed + a.seeds):
        ret, ret_n, secs = run(a.task, s, a.steps, max(a.eval_episodes, 10), a.norm_gamma)
        more = f" ({a.eval_episodes} episodes: {ret_n:.1f})" if a.eval_episodes > 10 else ""
        print(f"RecurrentPPO {TASKS[a.task][0]} NoVel seed {s}: eval {ret:.1f}{more}, "
              f"{secs:.1f} s wall for {a.steps} steps", flush=True)


if __name__ == "__main__":
    main()
