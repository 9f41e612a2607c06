# SPDX-License-Identifier: MIT
"""Gymnasium adapter: train libmm agents on any `gymnasium.Env` or vector env.

    import gymnasium as gym
    from libmm import gym as mmgym
    env = gym.make("Pendulum-v1")
    agent = mmgym.make_policy(env, "td3", seed=0)
    mmgym.train(env, agent, total_steps=20000, seed=0)
    print(mmgym.evaluate(gym.make("Pendulum-v1"), agent, episodes=10, seed=100))
    agent.save("pendulum_td3.safetensors")

Observation spaces: Box (flattened to float32). Action spaces: Box (continuous; the agent acts
inside [low, high]) or Discrete (n actions). A single env is driven as one agent; a vector env
(`gymnasium.vector.VectorEnv`, autoreset) as num_envs agents of one policy. Episodes that end by
the time limit are observed as truncated, so the agents bootstrap from the final observation
(for vector envs read from info["final_observation"]).

gymnasium itself is not a dependency of libmm: this module imports it only to read the spaces,
and every function takes an env the caller made.
"""
import time

import numpy as np

from . import errors
from .policy import Policy

__all__ = ["make_policy", "train", "evaluate"]


def _spaces(env):
    """(single observation space, single action space, number of envs) of env."""
    n = getattr(env, "num_envs", None)
    if n is not None and hasattr(env, "single_observation_space"):
        return env.single_observation_space, env.single_action_space, int(n)
    return env.observation_space, env.action_space, 1


def _kind(space):
    name = type(space).__name__
    if name not in ("Box", "Discrete"):
        raise errors.error(errors.E_UNSUPPORTED, "space %s: only Box and Discrete spaces are "
                           "supported" % name)
    return name


def make_policy(env, algo, seed=0, **fields):
    """A Policy sized for env's spaces: obs_dim from its Box observation space, act_dim and
    act_low/act_high from a Box action space or n_actions from a Discrete one, n_agents = the
    number of envs. Other mm_policy_opts fields (hidden, lr, batch_size, ...) pass through."""
    obs_space, act_space, n = _spaces(env)
    if _kind(obs_space) != "Box":
        raise errors.error(errors.E_UNSUPPORTED, "observation space must be a Box")
    obs_dim = int(np.prod(obs_space.shape))
    fields.setdefault("n_agents", n)
    fields.setdefault("seed", seed)
    if _kind(act_space) == "Discrete":
        return Policy(algo, obs_dim, n_actions=int(act_space.n), **fields)
    low = np.asarray(act_space.low, np.float32).ravel()
    high = np.asarray(act_space.high, np.float32).ravel()
    return Policy(algo, obs_dim, act_dim=low.size, act_low=low, act_high=high, **fields)


def _obs(o, n):
    return np.ascontiguousarray(np.asarray(o, np.float32).reshape(n, -1))


def _env_action(agent, a, n, vector):
    """The action(s) as the env wants them."""
    if agent.discrete:
        a = a.astype(np.int64)
        return a if vector else int(a[0])
    return a if vector else a[0]


def _final_obs(next_obs, info, done, n):
    """Next observations with the final observation of finished episodes (vector autoreset)."""
    final = next_obs.copy()
    fo = info.get("final_observation") if isinstance(info, dict) else None
    if fo is not None:
        for i in np.flatnonzero(done):
            if fo[i] is not None:
                final[i] = np.asarray(fo[i], np.float32).ravel()
    return final


def train(env, agent, total_steps, seed=None, log_every=10000, log=print):
    """Runs act -> env.step -> observe -> update for total_steps env steps (summed over the
    envs of a vector env). Returns the list of (steps, episode return) of finished episodes.
    log_every: print a progress line (steps, mean of the last 20 returns, updates, seconds)
    every that many steps; 0 or log=None: silent. The rows go through agent.bind_rows: fixed
    buffers, no per-step validation or allocation on the libmm side."""
    _, _, n = _spaces(env)
    vector = hasattr(env, "num_envs") and hasattr(env, "single_observation_space")
    io = agent.bind_rows(n)
    obs, _ = env.reset(seed=seed)
    io.obs[:] = _obs(obs, n)
    ret, history = np.zeros(n), []
    t0, steps, next_log = time.time(), 0, log_every
    while steps < total_steps:
        a = io.act()
        # a copy: io.actions is overwritten by the next act and the env may keep what it gets
        nxt, r, te, tr, info = env.step(_env_action(agent, a.copy(), n, vector))
        nxt = _obs(nxt, n)
        io.rewards[:] = np.asarray(r, np.float32).reshape(n)
        io.terminated[:] = np.asarray(te, bool).reshape(n)
        io.truncated[:] = np.asarray(tr, bool).reshape(n)
        done = io.terminated | io.truncated
        io.next_obs[:] = _final_obs(nxt, info, done, n) if vector else nxt
        io.observe()
        agent.update()
        ret += io.rewards
        steps += n
        for i in np.flatnonzero(done):
            history.append((steps, float(ret[i])))
            ret[i] = 0.0
        if done.any() and not vector:
            nxt, _ = env.reset()
            nxt = _obs(nxt, n)
        io.obs[:] = nxt
        if log and log_every and steps >= next_log:
            recent = [h[1] for h in history[-20:]]
            log("steps %8d  mean return (last %d episodes) %9.2f  updates %d  %.1f s" %
                (steps, len(recent), np.mean(recent) if recent else float("nan"),
                 agent.get("stat_updates"), time.time() - t0))
            next_log += log_every
    return history


def evaluate(env, agent, episodes=10, seed=None):
    """Mean and standard deviation of the return of `episodes` deterministic episodes on a
    single (non-vector) env."""
    if hasattr(env, "num_envs") and hasattr(env, "single_observation_space"):
        raise errors.error(errors.E_INVALID_ARG, "evaluate takes a single env")
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + k)
        total, done = 0.0, False
        while not done:
            a = agent.act(_obs(obs, 1), explore=False)
            obs, r, te, tr, _ = env.step(_env_action(agent, a, 1, False))
            total += float(r)
            done = bool(te) or bool(tr)
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
