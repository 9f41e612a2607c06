/* SPDX-License-Identifier: MIT */
/*
 * bench_rl.c — one DDPG update (critic step, actor step, Polyak update of both targets, with
 * the minibatch sampled from the replay buffer) at PyTorch-comparable sizes: actor 3-256-256-1,
 * critic 4-256-256-1, batch 256, Adam, one thread; side by side with the same update written in
 * plain PyTorch (bench/peer_torch_ddpg.py). The buffer is filled with random Pendulum-shaped
 * transitions first; a timed call is one mm_policy_observe (one transition) and the
 * mm_policy_update it triggers, the peer's one `update()`.
 */
#include "bench.h"

#include "mm.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct rl_case {
    mm_policy *p;
    float obs[3], next[3], act, rew;
    uint64_t s;
} rl_case;

static float uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 40) / 8388608.0 - 1.0);
}

static int observe(rl_case *c)
{
    const uint8_t no = 0;
    for (int i = 0; i < 3; i++) c->obs[i] = uniform(&c->s), c->next[i] = uniform(&c->s);
    c->act = 2.0f * uniform(&c->s), c->rew = -8.0f * (0.5f + 0.5f * uniform(&c->s));
    return mm_policy_observe(c->p, c->obs, &c->act, &c->rew, c->next, &no, &no, 1);
}

static void run_update(void *ctx)
{
    rl_case *c = (rl_case *)ctx;
    int32_t did = 0;
    if (observe(c) != MM_OK || mm_policy_update(c->p, &did) != MM_OK || !did) {
        fprintf(stderr, "bench_rl: update failed\n");
        exit(1);
    }
}

static void run_act(void *ctx)
{
    rl_case *c = (rl_case *)ctx;
    if (mm_policy_act(c->p, c->obs, 1, &c->act, 0) != MM_OK) {
        fprintf(stderr, "bench_rl: act failed\n");
        exit(1);
    }
}

void bench_rl(void)
{
    static float lo = -2.0f, hi = 2.0f;
    mm_policy_opts o;
    rl_case c = {0};
    double ret[1], def[1], t = -1, t_act = -1;
    bench_peer_torch("peer_torch_ddpg.py", "ns 5", ret, def, 1);
    c.s = 7;
    if (mm_policy_opts_init(&o, MM_ALGO_DDPG) == MM_OK) {
        o.obs_dim = 3, o.act_dim = 1, o.act_low = &lo, o.act_high = &hi;
        o.hidden[0] = o.hidden[1] = 256, o.batch_size = 256, o.learning_starts = 1000;
        o.buffer_size = 100000, o.gamma = 0.98;
        if (mm_policy_create(&c.p, &o) == MM_OK) {
            int ok = 1;
            for (int i = 0; i < 1000 && ok; i++) ok = observe(&c) == MM_OK;
            if (ok) t = bench_median_ns(run_update, &c, 7);
            c.obs[0] = 0.5f, c.obs[1] = -0.25f, c.obs[2] = 0.125f;
            if (ok) t_act = bench_median_ns(run_act, &c, 31);
        }
        mm_policy_free(c.p);
    }
    bench_row("DDPG update", "256-256 b256 Adam", -1, t, "torch 1T", ret[0], def[0]);
    bench_row("policy act 1 obs", "actor 3-256-256-1", -1, t_act, "none", -1.0, BENCH_NA);
    bench_note("rl: DDPG update = critic step + actor step + Polyak update of both targets, "
               "minibatch sampled from a 100k replay buffer (libmm: one observe + update call)");
}
