# SPDX-License-Identifier: MIT
"""peer_torch_ddpg.py — plain PyTorch DDPG update (the peer of bench/bench_rl.c and
bench/rl_speed.c): actor 3-256-256-1 (ReLU, tanh head), critic 4-256-256-1, Adam 1e-3, batch
256, Polyak 0.005, one thread; prints the process CPU time per update (critic step + actor step
+ target update): in ms with a sentence, or with `ns REPS` as one median in ns for the bench
table. Prints nothing and exits 1 when torch is missing."""
import copy
import sys

from peer_util import median_cpu_ns, setup

import torch
import torch.nn as nn

setup()


def mlp(i, o, tanh=False):
    layers = [nn.Linear(i, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, o)]
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


actor, critic = mlp(3, 1, True), mlp(4, 1)
actor_t, critic_t = copy.deepcopy(actor), copy.deepcopy(critic)
oa = torch.optim.Adam(actor.parameters(), lr=1e-3)
oc = torch.optim.Adam(critic.parameters(), lr=1e-3)
N = 100000
obs, nobs = torch.randn(N, 3), torch.randn(N, 3)
act, rew, done = torch.rand(N, 1) * 2 - 1, torch.randn(N, 1), torch.zeros(N, 1)


def update():
    idx = torch.randint(0, N, (256,))
    s, a, r, s2, d = obs[idx], act[idx], rew[idx], nobs[idx], done[idx]
    with torch.no_grad():
        y = r + 0.98 * (1 - d) * critic_t(torch.cat([s2, actor_t(s2)], 1))
    lc = ((critic(torch.cat([s, a], 1)) - y) ** 2).mean()
    oc.zero_grad()
    lc.backward()
    oc.step()
    la = -critic(torch.cat([s, actor(s)], 1)).mean()
    oa.zero_grad()
    la.backward()
    oa.step()
    with torch.no_grad():
        for net, tgt in ((actor, actor_t), (critic, critic_t)):
            for p, pt in zip(net.parameters(), tgt.parameters()):
                pt.mul_(0.995).add_(p, alpha=0.005)


if len(sys.argv) > 2 and sys.argv[1] == "ns":
    print(f"{median_cpu_ns(update, int(sys.argv[2])):.0f}")
else:
    dt = median_cpu_ns(update, 15) / 1e6
    print(f"PyTorch {torch.__version__} DDPG update, 256-256, batch 256, 1 thread: {dt:.2f} ms "
          "CPU time per update (median)")
