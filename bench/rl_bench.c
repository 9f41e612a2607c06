/* SPDX-License-Identifier: MIT */
/* rl_bench.c — `make bench-rl`: trains each libmm agent over 5 seeds on its benchmark task and
 * prints the mean +- std (over seeds) of the deterministic evaluation return (10 episodes per
 * seed), the per-seed returns, how many seeds pass the bar, and wall-clock per run.
 * Hyperparameters: rl-baselines3-zoo (hyperparams/<algo>.yml) where it has the task, except that
 * DDPG/TD3 use 64-64 networks, batch 128 and 1000 warm-up steps (the demo's sizes) instead of
 * ZOO's [400, 300] / 10000, and SAC 64-64 instead of [256, 256]; discrete SAC ("SACD") on
 * CartPole-v1 has no ZOO config: 64-64, lr 1e-3, batch 64, 1000 warm-up steps (docs/RL.md). Usage: rl_bench [ALGO ...] [--seeds N] [--quick]. */
#include <mm.h>

#include "../examples/envs/envs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_AGENTS 16

typedef struct task {
    const char *name;
    int32_t algo, env;
    long budget;
    double bar;
    int32_t n_agents;
} task;

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float g_low = -2.0f, g_high = 2.0f;

static int configure(const task *t, mm_policy_opts *o, uint64_t seed)
{
    int rc = mm_policy_opts_init(o, t->algo);
    o->seed = seed, o->n_agents = t->n_agents;
    if (t->algo == MM_ALGO_SAC && t->env == ENV_CARTPOLE) { /* discrete SAC: libmm's choice */
        o->obs_dim = 4, o->n_actions = 2;
        o->hidden[0] = 64, o->hidden[1] = 64;
        o->lr_actor = o->lr_critic = o->lr_alpha = 1e-3;
        o->buffer_size = 100000, o->batch_size = 64, o->learning_starts = 1000;
        return rc;
    }
    if (t->algo == MM_ALGO_SAC) { /* ZOO sac.yml Pendulum-v1 (SB3 defaults, lr 1e-3), 64-64 */
        o->obs_dim = 3, o->act_dim = 1, o->act_low = &g_low, o->act_high = &g_high;
        o->lr_actor = o->lr_critic = o->lr_alpha = 1e-3;
        o->hidden[0] = 64, o->hidden[1] = 64;
        return rc;
    }
    if (t->env == ENV_PENDULUM) {
        o->obs_dim = 3, o->act_dim = 1, o->act_low = &g_low, o->act_high = &g_high;
        o->gamma = 0.98, o->buffer_size = 200000, o->learning_starts = 1000;
        o->hidden[0] = 64, o->hidden[1] = 64, o->batch_size = 128;
        return rc;
    }
    o->obs_dim = 4, o->n_actions = 2; /* CartPole-v1 */
    switch (t->algo) {
    case MM_ALGO_PPO: /* ZOO ppo.yml CartPole-v1 */
        o->n_steps = 32, o->batch_size = 256, o->gamma = 0.98, o->gae_lambda = 0.8;
        o->n_epochs = 20, o->lr_actor = o->lr_critic = 1e-3, o->clip_range = 0.2;
        o->linear_decay_steps = t->budget;
        break;
    case MM_ALGO_TRPO: /* ZOO trpo.yml CartPole-v1 */
        o->n_steps = 512, o->batch_size = 512, o->cg_damping = 1e-3, o->gae_lambda = 0.98;
        o->n_epochs = 20, o->lr_critic = 1e-3;
        break;
    case MM_ALGO_QAC: /* libmm tuning (no published config): Adam, slow actor, fast critic */
        o->n_steps = 8, o->use_rmsprop = 0, o->lr_actor = 5e-5, o->lr_critic = 3e-3;
        break;
    default: /* A2C: ZOO a2c.yml CartPole-v1 = SB3 defaults with 8 envs */
        break;
    }
    return rc;
}

static int evaluate(mm_policy *p, int32_t kind, uint64_t seed, int n, double *mean)
{
    env e;
    double s = 0;
    env_init(&e, kind, seed);
    for (int k = 0; k < n; k++) {
        float obs[ENV_MAX_OBS], a;
        int32_t te = 0, tr = 0;
        env_reset(&e, obs);
        while (!te && !tr) {
            float r;
            int rc = mm_policy_act(p, obs, 1, &a, 0);
            if (rc != MM_OK) return rc;
            env_step(&e, &a, obs, &r, &te, &tr);
            s += r;
        }
    }
    *mean = s / n;
    return MM_OK;
}

/* Trains one seed; returns the deterministic evaluation mean. */
static int run(const task *t, uint64_t seed, double *score, double *secs)
{
    static env envs[MAX_AGENTS];
    static float obs[MAX_AGENTS * ENV_MAX_OBS], next[MAX_AGENTS * ENV_MAX_OBS];
    float act[MAX_AGENTS], rew[MAX_AGENTS];
    uint8_t te[MAX_AGENTS], tr[MAX_AGENTS];
    int32_t n = t->n_agents, od;
    char err[256] = "";
    mm_policy_opts o;
    mm_policy *p = NULL;
    double t0 = now_s();
    int rc = configure(t, &o, seed);
    o.err_buf = err, o.err_buf_size = sizeof err;
    if (rc == MM_OK) rc = mm_policy_create(&p, &o);
    if (rc != MM_OK) {
        fprintf(stderr, "%s: create: %s\n", t->name, err);
        return rc;
    }
    for (int32_t i = 0; i < n; i++) {
        env_init(&envs[i], t->env, seed * 1000 + (uint64_t)i);
        env_reset(&envs[i], obs + i * envs[i].obs_dim);
    }
    od = envs[0].obs_dim;
    for (long s = 0; s < t->budget && rc == MM_OK; s += n) {
        rc = mm_policy_act(p, obs, n, act, 1);
        for (int32_t i = 0; rc == MM_OK && i < n; i++) {
            int32_t a, b;
            env_step(&envs[i], act + i, next + i * od, rew + i, &a, &b);
            te[i] = (uint8_t)a, tr[i] = (uint8_t)b;
        }
        if (rc == MM_OK) rc = mm_policy_observe(p, obs, act, rew, next, te, tr, n);
        if (rc == MM_OK) rc = mm_policy_update(p, NULL);
        for (int32_t i = 0; i < n; i++) {
            if (te[i] || tr[i]) env_reset(&envs[i], next + i * od);
            memcpy(obs + i * od, next + i * od, sizeof(float) * (size_t)od);
        }
    }
    if (rc == MM_OK) rc = evaluate(p, t->env, 777 + seed, 10, score);
    if (rc != MM_OK) fprintf(stderr, "%s: %s\n", t->name, mm_policy_errmsg(p));
    *secs = now_s() - t0;
    mm_policy_free(p);
    return rc;
}

static const task k_tasks[] = {
    {"DDPG", MM_ALGO_DDPG, ENV_PENDULUM, 20000, -200.0, 1},
    {"TD3", MM_ALGO_TD3, ENV_PENDULUM, 20000, -200.0, 1},
    {"SAC", MM_ALGO_SAC, ENV_PENDULUM, 20000, -200.0, 1},
    {"SACD", MM_ALGO_SAC, ENV_CARTPOLE, 30000, 475.0, 1}, /* discrete SAC */
    {"PPO", MM_ALGO_PPO, ENV_CARTPOLE, 100000, 475.0, 8},
    {"TRPO", MM_ALGO_TRPO, ENV_CARTPOLE, 100000, 475.0, 2},
    {"A2C", MM_ALGO_A2C, ENV_CARTPOLE, 500000, 475.0, 8},
    {"QAC", MM_ALGO_QAC, ENV_CARTPOLE, 100000, 195.0, 8},
};

int main(int argc, char **argv)
{
    int seeds = 5, quick = 0, any = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else
            any = 1;
    }
    printf("libmm %s (%s) RL benchmark: %d seeds, deterministic eval 10 episodes/seed\n",
           mm_version_string(), mm_build_info(), seeds);
    printf("%-5s %-12s %8s %18s %6s %10s  per-seed\n", "algo", "env", "steps", "eval mean+-std",
           "pass", "s/run");
    for (size_t k = 0; k < sizeof k_tasks / sizeof k_tasks[0]; k++) {
        task t = k_tasks[k];
        double sc[64], tm[64], m = 0, v = 0, ts = 0;
        int pass = 0, ok = 1;
        if (any) {
            int want = 0;
            for (int i = 1; i < argc; i++) want |= !strcmp(argv[i], t.name);
            if (!want) continue;
        }
        if (quick) t.budget /= 5;
        for (int s = 0; s < seeds && s < 64 && ok; s++) {
            ok = run(&t, (uint64_t)s, &sc[s], &tm[s]) == MM_OK;
            m += sc[s], ts += tm[s], pass += sc[s] >= t.bar;
        }
        if (!ok) {
            printf("%-5s failed\n", t.name);
            continue;
        }
        m /= seeds;
        for (int s = 0; s < seeds; s++) v += (sc[s] - m) * (sc[s] - m);
        printf("%-5s %-12s %8ld %9.1f +- %6.1f %3d/%-2d %10.1f  ", t.name, env_name(t.env),
               t.budget, m, sqrt(v / seeds), pass, seeds, ts / seeds);
        for (int s = 0; s < seeds; s++) printf("%.0f ", sc[s]);
        printf("(bar %.0f)\n", t.bar);
        fflush(stdout);
    }
    return 0;
}
