"""peer_torch_ddpg.py — plain PyTorch DDPG update (the peer of bench/rl_speed.c): actor
3-256-256-1 (ReLU, tanh head), critic 4-256-256-1, Adam 1e-3, batch 256, Polyak 0.005, one
thread; prints ms per update (critic step + actor step + target update)."""
import copy
import time

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(0)


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


for _ in range(30):
    update()
n = 300
t0 = time.perf_counter()
for _ in range(n):
    update()
dt = (time.perf_counter() - t0) / n
print(f"PyTorch {torch.__version__} DDPG update, 256-256, batch 256, 1 thread: {dt * 1e3:.2f} ms/update")
