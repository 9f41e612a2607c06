#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libmm against Stable-Baselines3 on Gymnasium's own environments, matched hyperparameters.

Run through `make bench-gym` (which makes the virtual environment) or directly with a Python
that has gymnasium 0.28.1 and stable-baselines3 2.0 (the versions that work with Debian's torch
1.13):

    LIBMM_LIBRARY=lib/libmm.so.0 python bench/gym_vs_sb3.py [--runs ppo-cartpole,td3-pendulum]
        [--seeds 3] [--steps-scale 1.0]

For every run and seed both libraries train from scratch on the same env id with the same
hyperparameters (the rl-baselines3-zoo settings where the zoo has them), then evaluate 10
deterministic episodes on a separate env, seeded once with 10000 + seed and reset without a
seed after that, so both sides' episodes start from the same states. Printed per run: the
mean +- std over seeds of the evaluation return for each side, the wall-clock and process CPU
time of training, and the wall-clock ratio SB3 / libmm. Each library runs single-threaded
(torch.set_num_threads(1)) unless --threads N gives both the same N threads (torch's intra-op
threads; libmm's n_threads, its networks' thread pool); the environment stepping is the same
gymnasium code on both sides, so it is part of both times. Debian's torch runs SB3's products
through OpenBLAS, which torch's threads do not split: --torch-threads T and --blas-threads B pick
SB3's form within the same budget (torch T + OpenBLAS B; default torch N, OpenBLAS 1), and the
records and table rows say which form ran.
The process runs with freed memory retained, as every PyTorch peer of the bench does: unless
--malloc system is given it re-executes itself once with LD_PRELOAD=libjemalloc.so.2 (or
$BENCH_JEMALLOC) and MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1, because on these VMs the
first touch of a page costs 7-35 us and glibc's malloc returns torch's freed blocks to the
kernel. libmm allocates nothing in its training loop, so this changes SB3's time only. Without
jemalloc installed (Debian: libjemalloc2) it says so and runs with the system malloc. Each
record carries the malloc it ran with; SB3 with two threads measured faster with glibc on one
machine (docs/history/RL_LOG.md, entry 24), so --malloc system is there to find the peer's
fastest form.
Runs: ppo-cartpole, td3-pendulum, sac-pendulum (when libmm has SAC), td3-halfcheetah and
sac-halfcheetah (MuJoCo HalfCheetah-v4, 100k steps; `make bench-gym-mujoco` adds mujoco 2.3.x to
the venv; not in the default set: per seed about 20 CPU-minutes for libmm and 40 for SB3).

The sides and seeds can run as separate processes (--side, --seed-list) that append their
records to --jsonl files; --report prints the table from those files. --monitor-dir keeps each
training episode's return in a CSV as it ends (SB3's Monitor wrapper on both sides), so a run
stopped early still has its learning curve; --svg DIR (with --report or --monitor-summary) draws
the learning curves of both sides over their seeds as DIR/gym_<run>.svg.

--train-stats (SAC runs; off by default, and without it nothing changes) also samples each
side's latest training statistics every 1000 env steps once updates have begun, both taken right
after the update of that env step: the alpha, actor loss, critic loss and policy entropy of the
last gradient step, defined alike on both sides (see TRAIN_STATS_DOC), into the record's
"train_stats" and, with --monitor-dir, as they come into DIR/<run>-<side>-<seed>.train_stats.jsonl
(so a stopped run keeps them). Reading them draws no random numbers and changes no state: the
returns are the same with and without it. With it the SAC samples also carry the actor's own
movement, read through each side's public surface and computed by the same code for both
(ACTOR_STATS_DOC): parameter step norms over one update and over 1000 steps, the change of the
deterministic action over 1000 steps, the mean |pre-tanh mean|, the share of saturated means and
the mean std over a fixed probe batch, a replay-like batch and the recent states, and every 10k
steps the returns of a few deterministic and stochastic episodes from the same start states on
both sides. --train-stats-summary FILE... prints both sides per 10k steps from --jsonl files or
those side files.
"""
import argparse
import json
import os
import sys
import time


def _blas_threads_arg(argv):
    """--blas-threads N from argv, read before numpy and torch load OpenBLAS (it reads its thread
    count once, when it loads); None when not given."""
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
    return None


# OpenBLAS (Debian's torch calls it for every product; numpy too) reads its thread count when it
# loads, from OMP_NUM_THREADS when nothing else is set, so --threads 2 with OMP_NUM_THREADS=2 gave
# SB3 two OpenBLAS workers beside torch's two intra-op threads on the same cores: its two-thread
# TD3 Pendulum run took 177.8 s once and 396-514 s other times, against 170.2 s with one OpenBLAS
# thread (docs/history/RL_LOG.md, entry 24). torch's own threads do not split those products, so
# SB3's two-core forms are torch 2 + BLAS 1 (elementwise work split), torch 1 + BLAS 2 (products
# split) and torch 1 + BLAS 1; which is fastest depends on the run (entry 42). One BLAS thread
# unless --blas-threads or the caller's OPENBLAS_NUM_THREADS says otherwise.
os.environ["OPENBLAS_NUM_THREADS"] = (_blas_threads_arg(sys.argv)
                                      or os.environ.get("OPENBLAS_NUM_THREADS", "1"))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings",
                                "python"))
import numpy as np  # noqa: E402

try:
    import gymnasium as gym
    import torch
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise
except ImportError as exc:
    sys.exit("gym_vs_sb3: %s (make bench-gym installs gymnasium 0.28.1 and "
             "stable-baselines3 2.0 in build/gymvenv)" % exc)
import libmm  # noqa: E402
from libmm import gym as mmgym  # noqa: E402

# name: (env id, algo, steps, shared hyperparameters, libmm-only fields, SB3-only kwargs)
RUNS = {
    "ppo-cartpole": ("CartPole-v1", "ppo", 100000,
                     dict(n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99, gae_lambda=0.95,
                          clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5),
                     dict(lr_actor=3e-4, hidden=[64, 64]),
                     dict(learning_rate=3e-4, policy_kwargs=dict(net_arch=[64, 64]))),
    "td3-pendulum": ("Pendulum-v1", "td3", 20000,
                     dict(gamma=0.98, buffer_size=200000, learning_starts=10000, batch_size=256,
                          train_freq=1, gradient_steps=1, tau=0.005),
                     dict(lr_actor=1e-3, lr_critic=1e-3, hidden=[400, 300], noise_sigma=0.1),
                     dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]),
                          action_noise="normal0.1")),
    "sac-pendulum": ("Pendulum-v1", "sac", 20000,
                     dict(gamma=0.99, buffer_size=1000000, learning_starts=100, batch_size=256,
                          train_freq=1, gradient_steps=1, tau=0.005),
                     dict(lr_actor=1e-3, lr_critic=1e-3, lr_alpha=1e-3, hidden=[256, 256]),
                     dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[256, 256]))),
    "td3-halfcheetah": ("HalfCheetah-v4", "td3", 100000,
                        dict(gamma=0.99, buffer_size=1000000, learning_starts=10000,
                             batch_size=256, train_freq=1, gradient_steps=1, tau=0.005),
                        dict(lr_actor=1e-3, lr_critic=1e-3, hidden=[400, 300],
                             noise_sigma=0.1),
                        dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]),
                             action_noise="normal0.1")),
    "sac-halfcheetah": ("HalfCheetah-v4", "sac", 100000,
                        dict(gamma=0.99, buffer_size=1000000, learning_starts=10000,
                             batch_size=256, train_freq=1, gradient_steps=1, tau=0.005),
                        dict(lr_actor=3e-4, lr_critic=3e-4, lr_alpha=3e-4, hidden=[256, 256]),
                        dict(learning_rate=3e-4, policy_kwargs=dict(net_arch=[256, 256]))),
}
DEFAULT_RUNS = "ppo-cartpole,td3-pendulum,sac-pendulum"

TRAIN_STATS_EVERY = 1000
# What --train-stats records, per sample, all of the last gradient step before the sample:
TRAIN_STATS_DOC = {
    "updates": "gradient steps so far",
    "ent_coef": "alpha: SB3 the alpha that step used; libmm the alpha after that step's alpha "
                "update (one Adam step of log alpha later, |d log alpha| <= ~lr)",
    "actor_loss": "mean over the batch of alpha log pi(a~|s) - min_k Q_k(s, a~) (both sides)",
    "critic_loss": "1/2 sum over the two critics of mean (Q_k(s, a) - y)^2 (both sides)",
    "entropy": "-mean log pi(a~|s) over the actor's batch: libmm's stat; SB3's from its "
               "ent_coef_loss = -log alpha (mean log pi + target_entropy)",
    "min_q_pi": "mean min_k Q_k(s, a~) = -actor_loss - alpha * entropy (derived on both sides; "
                "libmm's with its ent_coef above, off by alpha's last step: ~1e-4 relative)",
    "q_mean": "libmm only: mean Q_1(s, a) of the replay batch before the critic step",
    "ent_coef_loss": "SB3 only: its recorded alpha loss",
}


def _stats_sink(path):
    """A function that appends one sample as a JSON line to path (flushed: a stopped run keeps
    what it wrote), or does nothing without a path."""
    if not path:
        return lambda row: None

    def sink(row):
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    return sink


def libmm_stats_logger(agent, rows, sink, actor=None):
    """mmgym.train's log hook (called every step, right after that step's update: log_every 1):
    every TRAIN_STATS_EVERY steps reads the policy's stats (reads only, no random numbers) into
    rows; with actor (an ActorStats) also the actor's, which needs the parameters one step
    before the sample too."""
    def log(msg):
        step = int(msg.split()[1])
        if actor is not None and step % TRAIN_STATS_EVERY == TRAIN_STATS_EVERY - 1:
            actor.snapshot(step)
        if step % TRAIN_STATS_EVERY:
            return
        n = agent.get("stat_updates")
        if n < 1:
            return
        alpha, ent, al = (agent.get(k) for k in ("stat_ent_coef", "stat_entropy",
                                                 "stat_actor_loss"))
        st = dict(updates=int(n), ent_coef=alpha, actor_loss=al,
                  critic_loss=agent.get("stat_critic_loss"), entropy=ent,
                  min_q_pi=-al - alpha * ent, q_mean=agent.get("stat_q_mean"))
        if actor is not None:
            st.update(actor.sample(step))
        rows.append([step, st])
        sink(dict(step=step, **st))
    return log


class SB3TrainStats(BaseCallback):
    """Reads SAC.train's last logger.record values after each train() call at a multiple of
    TRAIN_STATS_EVERY env steps. on_rollout_start comes right after the previous train()
    (no dump between them: SB3 dumps inside collect_rollouts, before train), so the values
    are that of the update after env step num_timesteps, as libmm's. Reads only."""

    def __init__(self, target_entropy, rows, sink, actor=None):
        super().__init__(verbose=0)
        self.tgt, self.rows, self.sink, self.actor = target_entropy, rows, sink, actor

    def _on_step(self):
        return True

    def _on_rollout_start(self):
        t = self.model.num_timesteps
        if self.actor is not None and t % TRAIN_STATS_EVERY == TRAIN_STATS_EVERY - 1:
            self.actor.snapshot(t)
        self._grab()

    def _on_training_end(self):
        self._grab()

    def _grab(self):
        t = self.model.num_timesteps
        nv = self.model.logger.name_to_value
        if t % TRAIN_STATS_EVERY or "train/actor_loss" not in nv or (
                self.rows and self.rows[-1][0] == t):
            return
        alpha, al = float(nv["train/ent_coef"]), float(nv["train/actor_loss"])
        st = dict(updates=int(nv["train/n_updates"]), ent_coef=alpha, actor_loss=al,
                  critic_loss=float(nv["train/critic_loss"]))
        if "train/ent_coef_loss" in nv and alpha != 1.0:
            ecl = float(nv["train/ent_coef_loss"])
            st["entropy"] = ecl / np.log(alpha) + self.tgt
            st["min_q_pi"] = -al - alpha * st["entropy"]
            st["ent_coef_loss"] = ecl
        if self.actor is not None:
            st.update(self.actor.sample(t))
        self.rows.append([t, st])
        self.sink(dict(step=t, **st))


# --train-stats, the actor's own movement (both sides through the same code below; a side
# gives only heads(obs) -> (mean, log std) before tanh and params() -> its actor's parameters
# flat in one layout: trunk layers (weight [out, in], then bias), then the head as
# [mean rows | log-std rows] weight [2 act_dim, hidden], then its bias: libmm's one head of
# 2 act_dim outputs as it is, SB3's mu and log_std Linear layers stacked in that order).
ACTOR_PROBE_SEED = 12345  # the fixed probe batch: a uniform-random rollout, the same on both sides
ACTOR_PROBE_ROWS = 1000
ACTOR_REPLAY_ROWS = 1024
ACTOR_RECENT_ROWS = 1000
ACTOR_EVAL_EVERY = 10000
ACTOR_EVAL_EPISODES = 5
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp (sac/policies.py), libmm's (algo_sac.c)
SAT_TANH = 0.99
ACTOR_STATS_DOC = {
    "a_theta": "||theta_t||, all actor parameters",
    "a_step1": "||theta_t - theta_{t-1}||: the update of env step t alone",
    "a_d1k": "||theta_t - theta_{t-1000}|| (and a_d1k_trunk, a_d1k_mu, a_d1k_ls: the trunk, "
             "the mean head's and the log-std head's rows of it)",
    "a_dact1k_probe": "mean |tanh mu_t(s) - tanh mu_{t-1000}(s)| over the probe batch",
    "a_dact1k_visited": "the same over the states visited in the 1000 steps before t-1000 "
                        "(the recent batch of the previous sample)",
    "<b>_absmu": "mean |mu| (pre-tanh mean) over batch b: probe (fixed, ACTOR_PROBE_ROWS states "
                 "of a uniform-random rollout seeded ACTOR_PROBE_SEED, the same on both sides), "
                 "replay (ACTOR_REPLAY_ROWS acting states drawn uniformly from all so far, "
                 "as the replay samples) or recent (the last ACTOR_RECENT_ROWS acting states)",
    "<b>_sat": "share of |tanh mu| > 0.99 (|mu| > 2.65) over b",
    "<b>_std": "mean exp(clamp(log std, -20, 2)) over b and the action dimensions",
    "<b>_logstd": "mean clamp(log std, -20, 2) over b",
    "eval_det, eval_sto": "every ACTOR_EVAL_EVERY steps: mean return of ACTOR_EVAL_EPISODES "
                          "episodes of tanh(mu) and of tanh(mu + std eps) (eps from the bench's "
                          "own generator, the same draws at every sample and on both sides), "
                          "from the same start states (a separate env reset with seed "
                          "20000 + 100 seed + k); per-episode lists in eval_det_eps, eval_sto_eps",
}


class ObsRecorder(gym.Wrapper):
    """Keeps the acting states (every observation an action is taken from: reset's, and step's
    unless the episode ended), so the actor statistics can draw replay-like and recent batches.
    Reads only."""

    def __init__(self, env):
        super().__init__(env)
        self.states = []

    def reset(self, **kw):
        o, info = self.env.reset(**kw)
        self.states.append(np.array(o, np.float32).ravel())
        return o, info

    def step(self, action):
        o, r, te, tr, info = self.env.step(action)
        if not (te or tr):
            self.states.append(np.array(o, np.float32).ravel())
        return o, r, te, tr, info


def probe_states(env_id, rows=ACTOR_PROBE_ROWS, seed=ACTOR_PROBE_SEED):
    """The fixed probe batch: acting states of a uniform-random rollout on a separate env with
    its own generator (touches no other random stream)."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    lo, hi = env.action_space.low, env.action_space.high
    o, _ = env.reset(seed=seed)
    out = []
    while len(out) < rows:
        out.append(np.array(o, np.float32).ravel())
        o, _, te, tr, _ = env.step(rng.uniform(lo, hi).astype(np.float32))
        if te or tr:
            o, _ = env.reset()
    env.close()
    return np.stack(out)


class ActorStats:
    """The actor statistics of ACTOR_STATS_DOC for one side. heads(x [n, obs_dim] float32) ->
    (mu, log std) [n, act_dim] before any clamp or tanh; params() -> a float64 copy of the
    actor's parameters in the common layout above; hidden: the width of the last trunk layer
    (the head's input); recorder: the ObsRecorder of the training env."""

    def __init__(self, env_id, seed, heads, params, hidden, act_dim, recorder):
        self.heads, self.params, self.rec, self.seed = heads, params, recorder, seed
        self.env_id, self.d, self.hidden = env_id, act_dim, hidden
        self.probe = probe_states(env_id)
        self.prev1 = None  # (t, params) at t - 1
        self.prev1k = None  # (t, params, tanh mu on probe, visited batch, tanh mu on it)
        self.eval_env = None

    def snapshot(self, t):
        """Called at env step t = sample - 1, after its update."""
        self.prev1 = (t, self.params())

    def _masks(self, n):
        """Slices of the flat parameters: trunk, mean head rows (+ bias), log-std head rows."""
        d, h = self.d, self.hidden
        trunk = n - 2 * d * h - 2 * d
        idx = np.arange(n)
        head_w = (idx >= trunk) & (idx < trunk + 2 * d * h)
        mu = (head_w & ((idx - trunk) < d * h)) | (idx >= n - 2 * d) & (idx < n - d)
        ls = (head_w & ((idx - trunk) >= d * h)) | (idx >= n - d)
        return idx < trunk, mu, ls

    def _batch_stats(self, name, mu, ls):
        lsc = np.clip(ls, LOG_STD_MIN, LOG_STD_MAX)
        return {name + "_absmu": float(np.mean(np.abs(mu))),
                name + "_sat": float(np.mean(np.abs(np.tanh(mu)) > SAT_TANH)),
                name + "_std": float(np.mean(np.exp(lsc))),
                name + "_logstd": float(np.mean(lsc))}

    def sample(self, t):
        st = {}
        th = self.params()
        st["a_theta"] = float(np.linalg.norm(th))
        if self.prev1 is not None and self.prev1[0] == t - 1:
            st["a_step1"] = float(np.linalg.norm(th - self.prev1[1]))
        mu_p, ls_p = self.heads(self.probe)
        st.update(self._batch_stats("probe", mu_p, ls_p))
        states = self.rec.states
        n = min(t, len(states))
        rng = np.random.default_rng(1000003 * (self.seed + 1) + t)
        rep = np.stack([states[i] for i in rng.integers(0, n, ACTOR_REPLAY_ROWS)])
        st.update(self._batch_stats("replay", *self.heads(rep)))
        recent = np.stack(states[max(0, n - ACTOR_RECENT_ROWS):n])
        mu_r, ls_r = self.heads(recent)
        st.update(self._batch_stats("recent", mu_r, ls_r))
        if self.prev1k is not None and self.prev1k[0] == t - TRAIN_STATS_EVERY:
            _, th0, a_p0, vis0, a_v0 = self.prev1k
            diff = th - th0
            st["a_d1k"] = float(np.linalg.norm(diff))
            for nm, m in zip(("trunk", "mu", "ls"), self._masks(th.size)):
                st["a_d1k_" + nm] = float(np.linalg.norm(diff[m]))
            st["a_dact1k_probe"] = float(np.mean(np.abs(np.tanh(mu_p) - a_p0)))
            st["a_dact1k_visited"] = float(np.mean(np.abs(np.tanh(self.heads(vis0)[0]) - a_v0)))
        self.prev1k = (t, th, np.tanh(mu_p), recent, np.tanh(mu_r))
        if t % ACTOR_EVAL_EVERY == 0:
            st.update(self.evaluate())
        return st

    def evaluate(self):
        """Deterministic and stochastic episodes from the same start states (see the doc)."""
        if self.eval_env is None:
            self.eval_env = gym.make(self.env_id)
        env = self.eval_env
        lo, hi = env.action_space.low, env.action_space.high
        res = {"eval_det_eps": [], "eval_sto_eps": []}
        for k in range(ACTOR_EVAL_EPISODES):
            for mode in ("det", "sto"):
                o, _ = env.reset(seed=20000 + 100 * self.seed + k)
                rng = np.random.default_rng(50000 + 100 * self.seed + k)
                total, done = 0.0, False
                while not done:
                    mu, ls = self.heads(np.array(o, np.float32).reshape(1, -1))
                    u = mu[0]
                    if mode == "sto":
                        u = u + np.exp(np.clip(ls[0], LOG_STD_MIN, LOG_STD_MAX)) * \
                            rng.standard_normal(self.d)
                    a = np.tanh(u).astype(np.float32)
                    a = lo + (a + np.float32(1)) * np.float32(0.5) * (hi - lo)
                    o, r, te, tr, _ = env.step(a)
                    total += float(r)
                    done = bool(te) or bool(tr)
                res["eval_%s_eps" % mode].append(total)
        res["eval_det"] = float(np.mean(res["eval_det_eps"]))
        res["eval_sto"] = float(np.mean(res["eval_sto_eps"]))
        return res


def libmm_actor_stats(env_id, seed, agent, recorder, hidden):
    """ActorStats over libmm's actor through the public API only: an exported copy of the actor
    (mm_policy_export, refreshed by mm_policy_export_copy) whose output is the head, mean then
    log std before the clamp; its flat parameters are already in the common layout."""
    io = agent.export_io()
    rows = max(ACTOR_PROBE_ROWS, ACTOR_REPLAY_ROWS, ACTOR_RECENT_ROWS)
    model = agent.export(max_batch=rows)
    d = int(io["act_dim"])
    state = {"fresh": -1}

    def refresh():
        n = agent.get("stat_updates")
        if state["fresh"] != n:
            agent.export_copy(model)
            state["fresh"] = n

    def heads(x):
        refresh()
        x = np.ascontiguousarray(x, np.float32)
        if io["norm_obs"]:
            c = np.float32(io["clip_obs"])
            x = np.clip((x - io["obs_mean"]) * io["obs_istd"], -c, c).astype(np.float32)
        y = model.infer(x).astype(np.float64)
        return y[:, :d], y[:, d:2 * d]

    def params():
        refresh()
        return np.array(model.params, np.float64)

    return ActorStats(env_id, seed, heads, params, hidden, d, recorder)


def sb3_actor_stats(env_id, seed, model, recorder, hidden):
    """ActorStats over SB3's model.actor: its latent_pi, mu and log_std layers, read under
    no_grad (no random numbers, no state)."""
    actor = model.actor
    d = int(model.action_space.shape[0])

    def heads(x):
        with torch.no_grad():
            lat = actor.latent_pi(actor.extract_features(torch.as_tensor(
                np.ascontiguousarray(x, np.float32)), actor.features_extractor))
            mu, ls = actor.mu(lat), actor.log_std(lat)
        return mu.numpy().astype(np.float64), ls.numpy().astype(np.float64)

    def params():
        with torch.no_grad():
            parts = [p.detach().reshape(-1) for p in actor.latent_pi.parameters()]
            parts.append(torch.cat([actor.mu.weight, actor.log_std.weight]).reshape(-1))
            parts.append(torch.cat([actor.mu.bias, actor.log_std.bias]))
            return torch.cat(parts).numpy().astype(np.float64)

    return ActorStats(env_id, seed, heads, params, hidden, d, recorder)


def run_libmm(env_id, algo, steps, shared, own, seed, monitor=None, stats=None):
    """stats: None, or a list that receives the --train-stats samples (also written to
    <monitor>.train_stats.jsonl with a monitor path)."""
    # the same Monitor wrapper as the SB3 side, so both pay for it and both leave a CSV (and
    # with --train-stats on a SAC run the same ObsRecorder inside it)
    sac_stats = stats is not None and algo == "sac"
    rec = ObsRecorder(gym.make(env_id)) if sac_stats else None
    env = Monitor(rec or gym.make(env_id), filename=monitor)
    agent = mmgym.make_policy(env, algo, seed=seed, **shared, **own)
    log = None
    if sac_stats:
        actor = libmm_actor_stats(env_id, seed, agent, rec, own["hidden"][-1])
        log = libmm_stats_logger(agent, stats,
                                 _stats_sink(monitor and monitor + ".train_stats.jsonl"), actor)
    w0, c0 = time.time(), time.process_time()
    history = mmgym.train(env, agent, steps, seed=seed, log_every=1 if log else TRAIN_STATS_EVERY,
                          log=log)
    wall, cpu = time.time() - w0, time.process_time() - c0
    # seeded once, as run_sb3's eval env, then evaluate's unseeded resets: the 10 episodes start
    # from the same states as evaluate_policy's (its own reset, then the automatic ones)
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10000 + seed)
    mean, _ = mmgym.evaluate(eval_env, agent, episodes=10)
    return mean, wall, cpu, history


def sb3_model(env, algo, shared, own, seed):
    """SB3's agent for a run: the shared hyperparameters it takes, and its own."""
    kw = dict(shared)
    kw.update(own)
    noise = kw.pop("action_noise", None)
    if noise:
        dim = env.action_space.shape[0]
        kw["action_noise"] = NormalActionNoise(np.zeros(dim), float(noise[6:]) * np.ones(dim))
    if algo in ("td3", "sac") and "n_steps" in kw:
        del kw["n_steps"]
    if algo in ("td3", "sac"):
        for k in ("n_epochs", "gae_lambda", "clip_range", "ent_coef", "vf_coef", "max_grad_norm"):
            kw.pop(k, None)
    else:
        for k in ("buffer_size", "learning_starts", "train_freq", "gradient_steps", "tau"):
            kw.pop(k, None)
    cls = {"ppo": sb3.PPO, "td3": sb3.TD3, "sac": sb3.SAC}[algo]
    return cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kw), kw


def run_sb3(env_id, algo, steps, shared, own, seed, monitor=None, stats=None):
    # SB3 would add a Monitor itself; ours gives the episode returns (and with a path, writes
    # them to <monitor>.monitor.csv as they finish, so a run stopped early still has its curve)
    rec = ObsRecorder(gym.make(env_id)) if stats is not None and algo == "sac" else None
    env = Monitor(rec or gym.make(env_id), filename=monitor)
    model, kw = sb3_model(env, algo, shared, own, seed)
    cb = None
    if stats is not None and algo == "sac":
        actor = sb3_actor_stats(env_id, seed, model, rec, kw["policy_kwargs"]["net_arch"][-1])
        cb = SB3TrainStats(float(model.target_entropy), stats,
                           _stats_sink(monitor and monitor + ".train_stats.jsonl"), actor)
    w0, c0 = time.time(), time.process_time()
    model.learn(total_timesteps=steps, callback=cb)
    wall, cpu = time.time() - w0, time.process_time() - c0
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10000 + seed)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    lengths = np.cumsum(env.get_episode_lengths())
    history = [(int(t), float(r)) for t, r in zip(lengths, env.get_episode_rewards())]
    return float(mean), wall, cpu, history


STEP_COST_WARM = 300


def step_cost(side, env_id, algo, shared, own, seed, n):
    """One side's cost of an env step with its update (off-policy runs): learning_starts + 300
    steps untimed, then n steps timed. Returns (wall ms, CPU ms) per step. For finding each
    side's fastest thread form in minutes instead of a whole run per form."""
    warm = shared["learning_starts"] + STEP_COST_WARM
    env = Monitor(gym.make(env_id))
    if side == "libmm":
        agent = mmgym.make_policy(env, algo, seed=seed, **shared, **own)
        mmgym.train(env, agent, warm, seed=seed, log=None)
        w0, c0 = time.time(), time.process_time()
        mmgym.train(env, agent, n, log=None)
    else:
        model, _ = sb3_model(env, algo, shared, own, seed)
        model.learn(total_timesteps=warm)
        w0, c0 = time.time(), time.process_time()
        model.learn(total_timesteps=n, reset_num_timesteps=False)
    return (time.time() - w0) / n * 1e3, (time.process_time() - c0) / n * 1e3


def summary(name, steps, mm, sb):
    """The table row of one run from the per-seed records of each side (either may be empty)."""
    def side(recs):
        if not recs:
            return "%-17s %9s %9s" % ("not run", "-", "-"), None
        r = np.array([x["return"] for x in recs])
        w = np.array([x["wall"] for x in recs])
        c = np.array([x["cpu"] for x in recs])
        return "%8.1f +- %6.1f %9.1f %9.1f" % (r.mean(), r.std(), w.mean(), c.mean()), (w, c)
    mtxt, mt = side(mm)
    stxt, st = side(sb)
    ratio = "-"
    if mt and st:
        ratio = "%.2fx (cpu %.2fx)" % (st[0].mean() / mt[0].mean(), st[1].mean() / mt[1].mean())
    print("%-16s %8d | %s | %s | %s" % (name, steps, mtxt, stxt, ratio), flush=True)
    print("%-16s per seed: libmm %s  SB3 %s" % (
        "", [round(x["return"], 1) for x in mm], [round(x["return"], 1) for x in sb]))


def row_label(name, threads, malloc, sb3_form=None):
    """A table row's name: the run, its thread count when not 1, the malloc when it was not
    jemalloc (records written before the malloc field existed ran with the system malloc), and
    SB3's (torch threads, BLAS threads) when they are not (threads, 1)."""
    label = name + ("" if threads == 1 else " %dT" % threads) + \
        ("" if malloc == "jemalloc" else " sysmalloc")
    if sb3_form and tuple(sb3_form) != (threads, 1):
        label += " sb3:t%d/b%d" % tuple(sb3_form)
    return label


def header(seeds, columns=True):
    print("libmm %s, stable-baselines3 %s, torch %s, gymnasium %s; seeds %s" %
          (libmm.version(), sb3.__version__, torch.__version__, gym.__version__, seeds))
    if not columns:
        return
    print("%-16s %8s | %-17s %9s %9s | %-17s %9s %9s | %s" %
          ("run", "steps", "libmm return", "wall s", "cpu s", "SB3 return", "wall s", "cpu s",
           "SB3/libmm wall"))


def report(paths):
    """Prints the table from --jsonl files written by earlier (possibly separate) runs."""
    recs = []
    for p in paths:
        with open(p) as f:
            recs += [json.loads(line) for line in f if line.strip()]
    header(sorted({r["seed"] for r in recs}))
    # records before --threads existed ran single-threaded, before --malloc with the system's
    # (records before --torch-threads / --blas-threads ran torch on --threads, OpenBLAS on one).
    # A row pairs the libmm records of a run, thread budget and malloc with the SB3 records of
    # one SB3 form (torch threads, BLAS threads) under the same budget.
    def key(r):
        return r["run"], r.get("threads", 1), r.get("malloc", "system")

    def form(r):
        return r.get("torch_threads", r.get("threads", 1)), r.get("blas_threads", 1)
    for k in dict.fromkeys(key(r) for r in recs):
        mine = [r for r in recs if key(r) == k]
        mm = [r for r in mine if r["side"] == "libmm"]
        sb = [r for r in mine if r["side"] == "sb3"]
        for f in dict.fromkeys(form(r) for r in sb) or [None]:
            summary(row_label(*k, sb3_form=f), mine[0]["steps"], mm,
                    [r for r in sb if form(r) == f])
    return recs


def monitor_summary(directory):
    """Per monitor CSV of --monitor-dir (finished or stopped runs): episodes, steps and the
    returns of the last three training episodes."""
    print("%-34s %8s %8s  %s" % ("run-side-seed", "episodes", "steps", "last 3 episode returns"))
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".monitor.csv"):
            continue
        with open(os.path.join(directory, fn)) as f:
            rows = [line.split(",") for line in f.read().splitlines()[2:] if line]
        steps = sum(int(r[1]) for r in rows)
        print("%-34s %8d %8d  %s" % (fn[:-len(".monitor.csv")], len(rows), steps,
                                     " ".join("%.1f" % float(r[0]) for r in rows[-3:])))


COLORS = {"libmm": "#c33", "sb3": "#36c"}


def records_from_monitor(directory):
    """--monitor-dir CSVs as --jsonl-like records (run, side, seed, history of (steps, return)),
    so stopped or still running runs can be plotted."""
    recs = []
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".monitor.csv"):
            continue
        run, side, seed = fn[:-len(".monitor.csv")].rsplit("-", 2)
        with open(os.path.join(directory, fn)) as f:
            rows = [line.split(",") for line in f.read().splitlines()[2:] if line]
        t, hist = 0, []
        for r in rows:
            t += int(r[1])
            hist.append((t, float(r[0])))
        recs.append(dict(run=run, side=side, seed=int(seed), history=hist,
                         steps=RUNS[run][2] if run in RUNS else t))
    return recs


def smoothed(hist, window):
    """(steps, moving average of the last `window` episode returns) after each episode."""
    out, acc = [], []
    for t, r in hist:
        acc.append(r)
        acc = acc[-window:]
        out.append((t, sum(acc) / len(acc)))
    return out


def nice_step(span):
    mag = 10 ** np.floor(np.log10(span / 5))
    return mag * min((m for m in (1, 2, 2.5, 5, 10) if span / (m * mag) <= 6), default=10)


def svg_curves(path, title, by_side, xmax, window):
    """One SVG: each seed's moving average as a thin line, the mean over seeds (on a 60-point
    grid of steps, each seed's last value at or before the point) as a thick one, per side.
    The legend sits bottom right, where learning curves that rise leave room."""
    W, H, L, R, T, B = 640, 400, 70, 30, 30, 50
    curves = {side: [smoothed(h, window) for h in hs] for side, hs in by_side.items()}
    ys = [y for cs in curves.values() for c in cs for _, y in c]
    step = nice_step(max(ys) - min(ys) or 1.0)
    y0, y1 = np.floor(min(ys) / step) * step, np.ceil(max(ys) / step) * step
    sx = lambda x: L + x / xmax * (W - L - R)  # noqa: E731
    sy = lambda y: T + (y1 - y) / (y1 - y0) * (H - T - B)  # noqa: E731
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="12">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="14">%s</text>' % (L, title)]
    y = y0
    while y <= y1 + step / 2:
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" '
                 'y="%.1f" text-anchor="end">%g</text>' % (L, sy(y), W - R, sy(y), L - 5,
                                                           sy(y) + 4, y))
        y += step
    for k in range(5):
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' %
                 (sx(xmax * k / 4), H - B + 18, xmax * k / 4))
    o.append('<text x="%.1f" y="%d" text-anchor="middle">environment steps</text>' %
             ((L + W - R) / 2, H - 10))
    o.append('<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">training '
             'episode return, moving average of %d</text>' % ((T + H - B) / 2, window))
    grid = np.linspace(0, xmax, 61)[1:]
    for i, (side, cs) in enumerate(curves.items()):
        color = COLORS.get(side, "#555")
        for c in cs:
            o.append('<polyline fill="none" stroke="%s" stroke-opacity="0.35" stroke-width="1" '
                     'points="%s"/>' % (color, " ".join("%.1f,%.1f" % (sx(t), sy(v))
                                                        for t, v in c)))
        mean = []
        for g in grid:
            vals = [next((v for t, v in reversed(c) if t <= g), None) for c in cs]
            vals = [v for v in vals if v is not None]
            if len(vals) == len(cs):
                mean.append((g, sum(vals) / len(vals)))
        o.append('<polyline fill="none" stroke="%s" stroke-width="2.5" points="%s"/>' %
                 (color, " ".join("%.1f,%.1f" % (sx(t), sy(v)) for t, v in mean)))
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>'
                 '<text x="%d" y="%d">%s, %d seeds (thin: each seed; thick: their mean)</text>' %
                 (W - R - 340, H - B - 30 - 18 * i, W - R - 320, H - B - 30 - 18 * i, color,
                  W - R - 314, H - B - 26 - 18 * i, "libmm" if side == "libmm" else "SB3",
                  len(cs)))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def write_svgs(recs, directory, window):
    """One SVG per run (<directory>/gym_<run>.svg) from records with episode histories."""
    for name in dict.fromkeys(r["run"] for r in recs):
        mine = sorted((r for r in recs if r["run"] == name), key=lambda r: r["seed"])
        by_side = {}
        for side in ("libmm", "sb3"):
            hs = [r["history"] for r in mine if r["side"] == side and r["history"]]
            if hs:
                by_side[side] = hs
        env_id = RUNS[name][0] if name in RUNS else name
        algo = name.split("-")[0].upper()
        path = os.path.join(directory, "gym_%s.svg" % name)
        svg_curves(path, "%s on %s: libmm and SB3, training episode returns" % (algo, env_id),
                   by_side, mine[0]["steps"], window)
        print("wrote", path)


def train_stats_summary(paths, window=10000):
    """Both sides' --train-stats side by side: per window of env steps, the mean of the samples
    in (end - window, end] (10 samples of one batch each: single batches are noisy). The last
    table adds train_return, the mean return of the training episodes that ended in the window
    (the record's history, or the side file's monitor CSV beside it when there is one)."""
    series, episodes = {}, {}
    for p in paths:
        with open(p) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                if "train_stats" in r:  # a --jsonl record
                    key = (r["run"], r["seed"], r["side"])
                    series[key] = [(t, st) for t, st in r["train_stats"]]
                    episodes[key] = [(int(t), float(ret)) for t, ret in r.get("history", [])]
                else:  # a side file: <run>-<side>-<seed>.train_stats.jsonl, one sample a line
                    run, side, seed = os.path.basename(p)[:-len(".train_stats.jsonl")].rsplit(
                        "-", 2)
                    key = (run, int(seed), side)
                    csv = p[:-len(".train_stats.jsonl")] + ".monitor.csv"
                    if key not in episodes and os.path.exists(csv):
                        with open(csv) as fc:
                            rows = [ln.split(",") for ln in fc.read().splitlines()[2:] if ln]
                        ends = np.cumsum([int(x[1]) for x in rows])
                        episodes[key] = [(int(t), float(x[0])) for t, x in zip(ends, rows)]
                    t = r.pop("step")
                    if all(t != u for u, _ in series.setdefault(key, [])):
                        series[key].append((t, r))
    tables = (("ent_coef", "entropy", "critic_loss", "actor_loss", "min_q_pi"),
              # the actor's own movement and its outputs (ACTOR_STATS_DOC), when recorded
              ("a_step1", "a_d1k", "a_d1k_trunk", "a_d1k_mu", "a_d1k_ls", "a_dact1k_probe",
               "a_dact1k_visited", "a_theta"),
              ("probe_absmu", "probe_sat", "probe_std", "replay_absmu", "replay_sat",
               "replay_std", "recent_absmu", "recent_sat", "recent_std"),
              ("train_return", "eval_det", "eval_sto", "eval_gap"))
    for key in series:  # the deterministic evaluation's margin over the stochastic one
        for _, st in series[key]:
            if "eval_det" in st:
                st["eval_gap"] = st["eval_det"] - st["eval_sto"]
        series[key] += [(t, {"train_return": ret}) for t, ret in episodes.get(key, [])]
    for run, seed in dict.fromkeys((k[0], k[1]) for k in series):
        sides = [s for s in ("libmm", "sb3") if (run, seed, s) in series]
        for cols in tables:
            if not any(c in st for s in sides for _, st in series[(run, seed, s)] for c in cols):
                continue
            print("%s seed %d: mean of the samples in each %d-step window; columns %s" %
                  (run, seed, window, " / ".join(sides)))
            print("%8s " % "steps" + " ".join("%-21s" % c for c in cols))
            last = max(t for s in sides for t, _ in series[(run, seed, s)])
            for end in range(window, last + window, window):
                if not any(end - window < t <= end
                           for s in sides for t, _ in series[(run, seed, s)]):
                    continue
                cells = []
                for c in cols:
                    vals = []
                    for side in sides:
                        v = [st[c] for t, st in series[(run, seed, side)]
                             if end - window < t <= end and c in st]
                        vals.append("%9.4g" % np.mean(v) if v else "%9s" % "-")
                    cells.append("%-21s" % " / ".join(vals))
                print("%8d " % end + " ".join(cells))


JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def malloc_in_use():
    """'jemalloc' when jemalloc is mapped into this process, else 'system'."""
    with open("/proc/self/maps") as f:
        return "jemalloc" if "jemalloc" in f.read() else "system"


def reexec_with_jemalloc():
    """Re-executes this script once with jemalloc preloaded (keeping freed memory); returns only
    when that cannot be done: jemalloc is missing, or the re-executed process still lacks it."""
    if malloc_in_use() == "jemalloc":
        return
    if os.environ.get("GYM_VS_SB3_REEXEC") == "1":
        print("note: LD_PRELOAD did not load jemalloc; running with the system malloc")
        return
    lib = os.environ.get("BENCH_JEMALLOC") or ""
    if not lib:
        import ctypes.util
        lib = "libjemalloc.so.2" if ctypes.util.find_library("jemalloc") else ""
    if not lib:
        print("note: jemalloc not found (Debian: libjemalloc2; or set BENCH_JEMALLOC): SB3 runs "
              "with the system malloc, which returns freed memory to the kernel")
        return
    env = dict(os.environ, GYM_VS_SB3_REEXEC="1", MALLOC_CONF=JEMALLOC_CONF,
               LD_PRELOAD=(lib + " " + os.environ.get("LD_PRELOAD", "")).strip())
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default=DEFAULT_RUNS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-list", help="comma-separated seeds instead of 0..seeds-1")
    ap.add_argument("--side", choices=("both", "libmm", "sb3"), default="both",
                    help="train only one library (to run the sides as separate processes)")
    ap.add_argument("--jsonl", help="append one JSON record per run, side and seed (return, "
                    "wall, cpu, episode history) to this file")
    ap.add_argument("--monitor-dir", help="write each training episode's return to "
                    "DIR/<run>-<side>-<seed>.monitor.csv as it ends")
    ap.add_argument("--report", nargs="+", metavar="JSONL",
                    help="print the table from --jsonl files and exit")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of both libraries: torch.set_num_threads and libmm's n_threads "
                    "(default 1)")
    ap.add_argument("--torch-threads", type=int,
                    help="torch.set_num_threads for the SB3 side (default: --threads)")
    ap.add_argument("--blas-threads", type=int,
                    help="OpenBLAS threads (default 1, or $OPENBLAS_NUM_THREADS): Debian's torch "
                    "runs SB3's products through OpenBLAS, which torch's threads do not split")
    ap.add_argument("--step-cost", type=int, metavar="N",
                    help="instead of training runs (td3 and sac runs only): each side trains to "
                    "learning_starts + 300 steps, then the next N steps are timed; prints ms per "
                    "step (update and env step), wall-clock and CPU, with the thread form")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply every run's step budget (e.g. 0.1 for a smoke run)")
    ap.add_argument("--monitor-summary", metavar="DIR",
                    help="print what the monitor CSVs in DIR hold so far and exit")
    ap.add_argument("--svg", metavar="DIR",
                    help="with --report or --monitor-summary: also write DIR/gym_<run>.svg, "
                    "the learning curves of both sides over their seeds")
    ap.add_argument("--smooth", type=int, default=10,
                    help="episodes in the curves' moving average (default 10)")
    ap.add_argument("--train-stats", action="store_true",
                    help="SAC runs: sample both sides' training statistics every %d env steps "
                    "into the record's train_stats (and DIR/<run>-<side>-<seed>.train_stats.jsonl "
                    "with --monitor-dir)" % TRAIN_STATS_EVERY)
    ap.add_argument("--train-stats-summary", nargs="+", metavar="FILE",
                    help="print the --train-stats of --jsonl files or side files per 10k steps, "
                    "both sides side by side, and exit")
    ap.add_argument("--malloc", choices=("jemalloc", "system"), default="jemalloc",
                    help="jemalloc (default): re-execute with jemalloc preloaded and freed memory "
                    "retained, the peers' fair form; system: the process's own malloc")
    a = ap.parse_args()
    if a.train_stats_summary:
        train_stats_summary(a.train_stats_summary)
        return
    if a.monitor_summary:
        monitor_summary(a.monitor_summary)
        if a.svg:
            write_svgs(records_from_monitor(a.monitor_summary), a.svg, a.smooth)
        return
    if a.report:
        recs = report(a.report)
        if a.svg:
            write_svgs(recs, a.svg, a.smooth)
        return
    torch_threads = a.threads if a.torch_threads is None else a.torch_threads
    if a.threads < 1 or torch_threads < 1 or (a.blas_threads is not None and a.blas_threads < 1):
        ap.error("--threads, --torch-threads and --blas-threads must be >= 1")
    if a.malloc == "jemalloc":
        reexec_with_jemalloc()
    malloc = malloc_in_use()
    print("malloc: %s" % malloc)
    torch.set_num_threads(torch_threads)
    blas_threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    print("threads: libmm %d, torch %d, OpenBLAS %d" % (a.threads, torch_threads, blas_threads))
    seeds = ([int(x) for x in a.seed_list.split(",")] if a.seed_list else
             list(range(a.seeds)))
    header(seeds, columns=not a.step_cost)
    for name in a.runs.split(","):
        env_id, algo, steps, shared, own, sb_own = RUNS[name]
        steps = max(1000, int(steps * a.steps_scale))
        try:
            gym.make(env_id)
        except Exception as exc:  # mujoco missing, for example
            print("%-16s skipped: %s" % (name, exc))
            continue
        if algo.upper() not in [k.upper() for k in libmm.constants.ALGOS]:
            print("%-16s skipped: this libmm has no %s" % (name, algo.upper()))
            continue
        if a.step_cost:
            if algo not in ("td3", "sac"):
                print("%-16s skipped: --step-cost times off-policy runs only" % name)
                continue
            for side in ("libmm", "sb3"):
                if a.side not in ("both", side):
                    continue
                for s in seeds:
                    wall, cpu = step_cost(side, env_id, algo, shared,
                                          dict(own, n_threads=a.threads) if side == "libmm"
                                          else sb_own, s, a.step_cost)
                    print("%-16s %-5s seed %d, libmm %d / torch %d / OpenBLAS %d threads: "
                          "%.3f ms/step wall, %.3f CPU" % (name, side, s, a.threads, torch_threads,
                                                           blas_threads, wall, cpu), flush=True)
            continue
        recs = {"libmm": [], "sb3": []}
        own = dict(own, n_threads=a.threads)
        for side, fn, own_kw in (("libmm", run_libmm, own), ("sb3", run_sb3, sb_own)):
            if a.side not in ("both", side):
                continue
            for s in seeds:
                mon = (os.path.join(a.monitor_dir, "%s-%s-%d" % (name, side, s))
                       if a.monitor_dir else None)
                stats = [] if a.train_stats else None
                ret, wall, cpu, hist = fn(env_id, algo, steps, shared, own_kw, s, monitor=mon,
                                          stats=stats)
                rec = dict(run=name, side=side, seed=s, steps=steps, env=env_id, threads=a.threads,
                           malloc=malloc, torch_threads=torch_threads, blas_threads=blas_threads,
                           **{"return": ret, "wall": wall, "cpu": cpu, "history": hist})
                if stats is not None:
                    rec["train_stats"] = stats
                recs[side].append(rec)
                if a.jsonl:
                    with open(a.jsonl, "a") as f:
                        f.write(json.dumps(rec) + "\n")
        summary(row_label(name, a.threads, malloc, (torch_threads, blas_threads)), steps,
                recs["libmm"], recs["sb3"])


if __name__ == "__main__":
    main()
