# SPDX-License-Identifier: MIT
"""sac_sb3_step.py — replays the SAC steps of tests/sac_sb3_dump.c through Stable-Baselines3
2.0's own SAC.train and compares the parameters after every step (`make check-sac-sb3`).

    python tests/sac_sb3_step.py DIR [STEPS]

SB3's nets get libmm's initial parameters (the actor's one [mean | log std] head split into
SB3's mu and log_std layers), its replay batch comes from DIR/batches.bin and its Gaussian draws
(Normal.rsample: pi(s) first, then pi(s')) are libmm's. Everything else is SB3's code: the
temperature, critic and actor losses and their order, the Adam steps, the Polyak update. Per
step and net it prints |SB3 - libmm| / |libmm's step| (L2 over the net's parameters), and for
the actor's and log alpha's gradients |SB3 - libmm| / |libmm's| (Adam's first steps move by
about lr whatever the gradient's size, so a wrong scale, such as another target entropy, shows
only there), and fails when any exceeds TOL: float32 rounding gives ~1e-5 here, and one
coordinate whose gradient is ~1e-9 (where Adam's eps decides the step size) can add up to 2 lr,
about 1e-2 of a step; a different formula moves whole nets by O(1) of a step."""
import sys

import numpy as np
import torch as th
import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

OD, AD, N, R = 17, 6, 256, 300  # as in sac_sb3_dump.c
TOL = 2e-2
NAMES = ["actor", "critic1", "critic2", "target1", "target2", "log_alpha"]
GRADS = ["actor", "log_alpha"]  # the gradients of the step; SB3's critic .grad also holds the
# actor loss's (its backward runs through the critics), so the critics compare by parameters


class Box17x6(gym.Env):
    """Only the spaces: SAC.train never steps the env."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (OD,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (AD,), np.float32)

    def reset(self, seed=None, options=None):
        return np.zeros(OD, np.float32), {}

    def step(self, action):
        return np.zeros(OD, np.float32), 0.0, False, False, {}


def read_params(path):
    raw, out, off = open(path, "rb").read(), [], 0
    for _ in NAMES + GRADS:
        n = int(np.frombuffer(raw, np.int64, 1, off)[0])
        out.append(np.frombuffer(raw, np.float32, n, off + 8).astype(np.float64))
        off += 8 + 4 * n
    return out


def linears(seq):
    return [m for m in seq if isinstance(m, th.nn.Linear)]


def flat(layers):
    return np.concatenate([np.concatenate([lin.weight.detach().numpy().ravel(),
                                           lin.bias.detach().numpy()]) for lin in layers])


def load(layers, v):
    off = 0
    for lin in layers:
        for t in (lin.weight, lin.bias):
            t.data.copy_(th.from_numpy(v[off:off + t.numel()].reshape(t.shape)).float())
            off += t.numel()
    assert off == v.size, "parameter count"


def actor_flat(actor):
    """libmm's order: the latent layers, then one [2 AD, H] head weight and its bias."""
    mu, ls = actor.mu, actor.log_std
    head_w = np.concatenate([mu.weight.detach().numpy(), ls.weight.detach().numpy()]).ravel()
    head_b = np.concatenate([mu.bias.detach().numpy(), ls.bias.detach().numpy()])
    return np.concatenate([flat(linears(actor.latent_pi)), head_w, head_b])


def load_actor(actor, v):
    lat = linears(actor.latent_pi)
    n_lat = sum(lin.weight.numel() + lin.bias.numel() for lin in lat)
    load(lat, v[:n_lat])
    H = lat[-1].out_features
    w = v[n_lat:n_lat + 2 * AD * H].reshape(2 * AD, H)
    b = v[n_lat + 2 * AD * H:]
    assert b.size == 2 * AD, "actor head size"
    for lin, rows in ((actor.mu, slice(0, AD)), (actor.log_std, slice(AD, 2 * AD))):
        lin.weight.data.copy_(th.from_numpy(w[rows].copy()).float())
        lin.bias.data.copy_(th.from_numpy(b[rows].copy()).float())


def sb3_params(model):
    pol = model.policy
    return ([actor_flat(pol.actor)] +
            [flat(linears(q)) for q in pol.critic.q_networks] +
            [flat(linears(q)) for q in pol.critic_target.q_networks] +
            [np.array([0.0, model.log_ent_coef.item()])])


def sb3_grads(model):
    """The actor's and log alpha's gradients, in libmm's order (swaps the .data for .grad)."""
    actor = model.policy.actor
    saved = [(t, t.data.clone()) for t in actor.parameters()]
    for t, _ in saved:
        t.data.copy_(t.grad)
    g = actor_flat(actor)
    for t, d in saved:
        t.data.copy_(d)
    return [g, np.array([0.0, model.log_ent_coef.grad.item()])]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    th.set_num_threads(1)
    model = SAC("MlpPolicy", Box17x6(), batch_size=N, learning_starts=0, seed=0, device="cpu",
                policy_kwargs=dict(net_arch=[256, 256]))
    model.set_logger(configure(None, []))
    pol, p0 = model.policy, read_params(d + "/p0.bin")
    load_actor(pol.actor, p0[0])
    for c in range(2):
        load(linears(pol.critic.q_networks[c]), p0[1 + c])
        load(linears(pol.critic_target.q_networks[c]), p0[3 + c])
    model.log_ent_coef.data.fill_(p0[5][1])  # [weight (unused), bias = log alpha]

    a = np.fromfile(d + "/replay.bin", np.float32)
    cut = np.cumsum([R * OD, R * OD, R * AD, R])
    obs, nobs, act, rew, term = np.split(a, cut)
    obs, nobs, act = obs.reshape(R, OD), nobs.reshape(R, OD), act.reshape(R, AD)
    batches = open(d + "/batches.bin", "rb").read()
    size = 8 * N + 4 * 2 * N * AD
    draws = []

    def sample(batch_size, env=None):
        assert batch_size == N
        b = batches[k * size:(k + 1) * size]
        idx = np.frombuffer(b, np.int64, N)
        eps = np.frombuffer(b, np.float32, 2 * N * AD, 8 * N).reshape(2, N, AD)
        draws.extend([eps[0].copy(), eps[1].copy()])
        t = lambda x: th.from_numpy(np.ascontiguousarray(x))  # noqa: E731
        return ReplayBufferSamples(t(obs[idx]), t(act[idx]), t(nobs[idx]), t(term[idx, None]),
                                   t(rew[idx, None]))

    def rsample(self, sample_shape=th.Size()):
        return self.loc + th.from_numpy(draws.pop(0)) * self.scale

    model.replay_buffer.sample = sample
    th.distributions.Normal.rsample = rsample
    worst = 0.0
    for k in range(steps):
        model.train(gradient_steps=1, batch_size=N)
        assert not draws, "SB3 drew a different number of Gaussian batches"
        before, after = read_params(d + "/p%d.bin" % k), read_params(d + "/p%d.bin" % (k + 1))
        row, grow = [], []
        for name, mine, b, x in zip(NAMES, sb3_params(model), before, after):
            rel = np.linalg.norm(mine - x) / max(np.linalg.norm(x - b), 1e-30)
            worst = max(worst, rel)
            row.append("%s %.1e" % (name, rel))
        for name, mine, x in zip(GRADS, sb3_grads(model), after[len(NAMES):]):
            rel = np.linalg.norm(mine - x) / max(np.linalg.norm(x), 1e-30)
            worst = max(worst, rel)
            grow.append("%s %.1e" % (name, rel))
        print("step %d  |SB3 - libmm| / |step|: %s;  / |gradient|: %s" %
              (k + 1, "  ".join(row), "  ".join(grow)))
    print("sac_sb3_step: worst %.2e (tolerance %.0e): %s" %
          (worst, TOL, "ok" if worst <= TOL else "FAILED"))
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
