/* SPDX-License-Identifier: MIT */
/* rl_memory.c — part of `make bench-rl` (alone: `make bench-rl-memory`): PPO with and without a
 * memory core (MM_MEMORY_LRU) on the velocity-masked tasks where a memoryless agent fails,
 * CartPoleNoVel-v1 ([x, theta]) and PendulumNoVel-v1 ([cos, sin]), as rl-baselines3-zoo's
 * RecurrentPPO entries. Prints the deterministic evaluation return (10 episodes per seed, the
 * agent's memory reset at every episode start) as mean +- std over seeds with the per-seed
 * values and wall-clock per run; then mm_policy_act latency with and without memory.
 * Hyperparameters: rl-baselines3-zoo recurrentppo.yml (docs/RL.md "Memory").
 * With --svg DIR, seed 1's training episode returns of both agents (moving averages) go to
 * DIR/rl_memory_cartpole.svg and DIR/rl_memory_pendulum.svg (examples/envs/curve_svg.c, the
 * demo's writer).
 * --sde K runs PendulumNoVel with gSDE (use_sde, sde_sample_freq K; the zoo's 4) and
 * log_std_init 0 unless --log-std is given; --memory-only skips the memoryless agent.
 * --full-obs trains and evaluates on the unmasked tasks (CartPole-v1, Pendulum-v1: the
 * velocities observed) with the same settings: the bound a memory agent can reach.
 * --eval-episodes N evaluates N episodes per seed instead of 10 (the first 10 are the same).
 * --first-seed S runs seeds S .. S + N - 1 instead of 1 .. N. --trace prints, per seed, the mean
 * training episode return in each tenth of the budget and the evaluation of the deterministic
 * and of the exploring policy (does a seed reach 500 and fall back, or never get there?); with
 * it, --svg draws the last seed's curves instead of the first's.
 * Usage: rl_memory [--seeds N] [--first-seed S] [--dim memory_dim] [--seq memory_seq_len]
 *                  [--log-std x] [--sde K] [--memory-only] [--full-obs] [--eval-episodes N]
 *                  [--trace] [--svg DIR] [--quick] [cartpole|pendulum|latency]. */
#include <mm.h>

#include "../examples/envs/curve_svg.h"
#include "../examples/envs/envs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_AGENTS 8

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float g_low = -2.0f, g_high = 2.0f;
static int64_t g_dim = 16; /* --dim: memory_dim of the trained agents */
static int64_t g_seq = 0;  /* --seq: memory_seq_len (0: 32 CartPole, 64 Pendulum) */
static double g_lsi = 0.5; /* --log-std: PendulumNoVel's log_std_init (docs/history/RL_LOG.md) */
static const char *g_svg;  /* --svg DIR: seed 1's learning curves into DIR/rl_memory_*.svg */
static int g_sde = 0;      /* --sde K: PendulumNoVel with gSDE, sde_sample_freq K (0: off) */
static int g_lsi_set = 0;  /* --log-std given */
static int g_mem_only = 0; /* --memory-only */
static int g_full = 0;     /* --full-obs: velocities observed (CartPole-v1, Pendulum-v1) */
static int g_eval_n = 10;  /* --eval-episodes */
static int g_trace = 0;    /* --trace: per-seed training curve in 10 windows, stochastic eval */
static int g_seed0 = 1;    /* --first-seed: seeds g_seed0 .. g_seed0 + seeds - 1 */

#define MAX_EPISODES 8192
typedef struct episodes { /* training episodes of one run: end step and return */
    int n;
    double step[MAX_EPISODES], ret[MAX_EPISODES];
} episodes;

typedef struct task {
    const char *name;
    int32_t env, n_agents;
    long budget;
} task;

static void configure(const task *t, int memory, uint64_t seed, mm_policy_opts *o)
{
    if (mm_policy_opts_init(o, MM_ALGO_PPO) != MM_OK) abort();
    o->seed = seed, o->n_agents = t->n_agents;
    o->obs_dim = g_full ? (t->env == ENV_CARTPOLE ? 4 : 3) : 2;
    o->norm_obs = 1, o->norm_reward = 1;                             /* ZOO normalize: true */
    o->n_hidden = 1, o->hidden[0] = 64, o->activation = MM_ACT_RELU; /* pi=[64], vf=[64] */
    if (t->env == ENV_CARTPOLE) { /* recurrentppo.yml CartPoleNoVel-v1 */
        o->n_actions = 2;
        o->n_steps = 32, o->batch_size = 256, o->gamma = 0.98, o->gae_lambda = 0.8;
        o->n_epochs = 20, o->lr_actor = o->lr_critic = 1e-3, o->clip_range = 0.2;
        o->ent_coef = 0.0, o->linear_decay_steps = t->budget;
    } else { /* recurrentppo.yml PendulumNoVel-v1 (without gSDE; RecurrentPPO's batch 128) */
        o->act_dim = 1, o->act_low = &g_low, o->act_high = &g_high;
        o->n_steps = 1024, o->batch_size = 128, o->gamma = 0.9, o->gae_lambda = 0.95;
        o->n_epochs = 10, o->lr_actor = o->lr_critic = 1e-3, o->clip_range = 0.2;
        o->ent_coef = 0.0;
        o->log_std_init = g_lsi; /* without gSDE a wider start explores instead */
        if (g_sde) { /* the zoo's use_sde: True, sde_sample_freq: 4; SB3's log_std_init 0 */
            o->use_sde = 1, o->sde_sample_freq = g_sde;
            o->log_std_init = g_lsi_set ? g_lsi : 0.0;
        }
    }
    if (memory) {
        o->memory = MM_MEMORY_LRU, o->memory_dim = g_dim;
        o->memory_seq_len = g_seq > 0 ? g_seq : t->env == ENV_CARTPOLE ? 32 : 64;
    }
}

static void make_env(env *e, int32_t kind, uint64_t seed)
{
    env_init(e, kind, seed);
    if (!g_full) env_mask_velocity(e);
}

static int evaluate(mm_policy *p, int32_t kind, uint64_t seed, int n, int explore, double *mean)
{
    env e;
    double s = 0;
    make_env(&e, kind, seed);
    for (int k = 0; k < n; k++) {
        float obs[ENV_MAX_OBS], a;
        int32_t te = 0, tr = 0;
        int rc = mm_policy_reset_agent(p, 0); /* a new episode: forget the last one */
        if (rc != MM_OK) return rc;
        env_reset(&e, obs);
        while (!te && !tr) {
            float r;
            if ((rc = mm_policy_act(p, obs, 1, &a, explore)) != MM_OK) return rc;
            env_step(&e, &a, obs, &r, &te, &tr);
            s += r;
        }
    }
    *mean = s / n;
    return MM_OK;
}

static void record(episodes *ep, double step, double ret)
{
    if (ep && ep->n < MAX_EPISODES) ep->step[ep->n] = step, ep->ret[ep->n++] = ret;
}

static int run(const task *t, int memory, uint64_t seed, double *score, double *secs, episodes *ep)
{
    double ret[MAX_AGENTS] = {0};
    static env envs[MAX_AGENTS];
    float obs[MAX_AGENTS * ENV_MAX_OBS], next[MAX_AGENTS * ENV_MAX_OBS], act[MAX_AGENTS];
    float rew[MAX_AGENTS];
    uint8_t te[MAX_AGENTS], tr[MAX_AGENTS];
    int32_t n = t->n_agents;
    int64_t od;
    char err[256] = "";
    mm_policy_opts o;
    mm_policy *p = NULL;
    double t0 = now_s();
    int rc;
    configure(t, memory, seed, &o);
    od = o.obs_dim;
    o.err_buf = err, o.err_buf_size = sizeof err;
    if ((rc = mm_policy_create(&p, &o)) != MM_OK) {
        fprintf(stderr, "%s: create: %s\n", t->name, err);
        return rc;
    }
    for (int32_t i = 0; i < n; i++) {
        make_env(&envs[i], t->env, seed * 1000 + (uint64_t)i);
        env_reset(&envs[i], obs + i * od);
    }
    for (long s = 0; s < t->budget && rc == MM_OK; s += n) {
        rc = mm_policy_act(p, obs, n, act, 1);
        for (int32_t i = 0; rc == MM_OK && i < n; i++) {
            int32_t a, b;
            env_step(&envs[i], act + i, next + i * od, rew + i, &a, &b);
            te[i] = (uint8_t)a, tr[i] = (uint8_t)b;
            ret[i] += rew[i];
            if (a || b) record(ep, (double)(s + n), ret[i]), ret[i] = 0;
        }
        /* observe resets the memory of agents whose episode ended */
        if (rc == MM_OK) rc = mm_policy_observe(p, obs, act, rew, next, te, tr, n);
        if (rc == MM_OK) rc = mm_policy_update(p, NULL);
        for (int32_t i = 0; i < n; i++) {
            if (te[i] || tr[i]) env_reset(&envs[i], next + i * od);
            memcpy(obs + i * od, next + i * od, sizeof(float) * (size_t)od);
        }
    }
    if (rc == MM_OK) rc = evaluate(p, t->env, 777 + seed, g_eval_n, 0, score);
    if (rc == MM_OK && g_trace && ep) { /* the curve in 10 windows; the exploring policy */
        double sto = 0, sum[10] = {0};
        int cnt[10] = {0};
        rc = evaluate(p, t->env, 777 + seed, g_eval_n, 1, &sto);
        for (int k = 0; k < ep->n; k++) {
            int w = (int)(ep->step[k] * 10 / (double)t->budget);
            w = w > 9 ? 9 : w;
            sum[w] += ep->ret[k], cnt[w]++;
        }
        printf("  seed %2d train:", (int)seed);
        for (int w = 0; w < 10; w++) printf(" %5.0f", cnt[w] ? sum[w] / cnt[w] : 0.0);
        printf(" | eval det %5.0f explore %5.0f\n", *score, sto);
    }
    if (rc != MM_OK) fprintf(stderr, "%s: %s\n", t->name, mm_policy_errmsg(p));
    *secs = now_s() - t0;
    mm_policy_free(p);
    return rc;
}

/* Seed 1's training curves of both agents into DIR/rl_memory_<file>.svg. */
static void write_curves(const task *t, const episodes *ep)
{
    int cart = t->env == ENV_CARTPOLE;
    char path[512], title[160], mem[32];
    curve_plot pl = {title,        0,   cart ? 0 : -1800, cart ? 500 : 0, 0, NULL, cart ? 20 : 10,
                     cart ? 5 : 6, cart};
    curve_series s[2] = {{mem, "#c33", ep[1].step, ep[1].ret, ep[1].n, 0},
                         {"PPO memoryless", "#36c", ep[0].step, ep[0].ret, ep[0].n, 0}};
    pl.xmax = (double)t->budget;
    snprintf(mem, sizeof mem, "PPO + LRU%d", (int)g_dim);
    snprintf(title, sizeof title, "libmm PPO on %s, seed 1: training episode returns", t->name);
    snprintf(path, sizeof path, "%s/rl_memory_%s.svg", g_svg, cart ? "cartpole" : "pendulum");
    if (curve_svg_write(path, &pl, s, 2, NULL) == 0)
        printf("learning curves written to %s\n", path);
    else
        fprintf(stderr, "cannot write %s\n", path);
}

static void bench_task(const task *t, int seeds)
{
    static episodes ep[2];
    ep[0].n = ep[1].n = 0;
    for (int memory = 1; memory >= g_mem_only; memory--) {
        double sc[32], sum = 0, sq = 0, secs = 0;
        char per[512] = "", label[32];
        snprintf(label, sizeof label, "PPO+LRU%d%s", (int)g_dim,
                 g_sde && t->env == ENV_PENDULUM ? "+gSDE" : "");
        for (int k = 0; k < seeds; k++) {
            double s = 0, w = 0;
            if (g_trace) ep[memory].n = 0;
            if (run(t, memory, (uint64_t)(k + g_seed0), &s, &w,
                    k == 0 || g_trace ? &ep[memory] : NULL) != MM_OK)
                return;
            sc[k] = s, sum += s, secs += w;
            snprintf(per + strlen(per), sizeof per - strlen(per), " %.0f", s);
        }
        for (int k = 0; k < seeds; k++) sq += (sc[k] - sum / seeds) * (sc[k] - sum / seeds);
        printf("%-17s %-10s %7ld %9.1f +- %-7.1f %7.2f  %s\n", t->name, memory ? label : "PPO",
               t->budget, sum / seeds, sqrt(sq / seeds), secs / seeds, per);
        fflush(stdout);
    }
    if (g_svg) write_curves(t, ep);
}

/* mm_policy_act latency: CartPoleNoVel's networks, n agents per call, explore = 1, for the
 * memoryless policy and memory_dim 8, 16, 32. The machine is shared: the configurations are
 * timed in turn in the thread's CPU time (time spent waiting for a core is not counted), 300
 * rounds of 300 calls each, and the fastest round of each is kept. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void latency(int32_t n)
{
    const task t = {"lat", ENV_CARTPOLE, MAX_AGENTS, 100000};
    static const int64_t dims[4] = {0, 8, 16, 32};
    mm_policy *p[4] = {NULL};
    float obs[MAX_AGENTS * ENV_MAX_OBS], act[MAX_AGENTS];
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int i = 0; i < MAX_AGENTS * ENV_MAX_OBS; i++) obs[i] = 0.01f * (float)i;
    for (int c = 0; c < 4; c++) {
        mm_policy_opts o;
        configure(&t, dims[c] > 0, 1, &o);
        if (dims[c]) o.memory_dim = dims[c];
        if (mm_policy_create(&p[c], &o) != MM_OK) return;
    }
    for (int round = 0; round < 300; round++)
        for (int c = 0; c < 4; c++) {
            double t0 = cpu_s(), us;
            for (int k = 0; k < 300; k++)
                if (mm_policy_act(p[c], obs, n, act, 1) != MM_OK) return;
            us = (cpu_s() - t0) * 1e6 / 300;
            best[c] = us < best[c] ? us : best[c];
        }
    printf("act latency, %d agent%s/call: memoryless %.2f us", (int)n, n > 1 ? "s" : "", best[0]);
    for (int c = 1; c < 4; c++)
        printf(", LRU%d %.2f us (%.1fx)", (int)dims[c], best[c], best[c] / best[0]);
    printf("\n");
    for (int c = 0; c < 4; c++) mm_policy_free(p[c]);
}

int main(int argc, char **argv)
{
    int seeds = 5, quick = 0, which = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
            g_dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc)
            g_seq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--log-std") && i + 1 < argc)
            g_lsi = atof(argv[++i]), g_lsi_set = 1;
        else if (!strcmp(argv[i], "--sde") && i + 1 < argc)
            g_sde = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--memory-only"))
            g_mem_only = 1;
        else if (!strcmp(argv[i], "--full-obs"))
            g_full = 1;
        else if (!strcmp(argv[i], "--eval-episodes") && i + 1 < argc)
            g_eval_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--trace"))
            g_trace = 1;
        else if (!strcmp(argv[i], "--first-seed") && i + 1 < argc)
            g_seed0 = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--svg") && i + 1 < argc)
            g_svg = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "cartpole"))
            which = which == 7 ? 1 : which | 1;
        else if (!strcmp(argv[i], "pendulum"))
            which = which == 7 ? 2 : which | 2;
        else if (!strcmp(argv[i], "latency"))
            which = which == 7 ? 4 : which | 4;
    }
    if (seeds < 1 || seeds > 32) seeds = 5;
    if (g_eval_n < 1) g_eval_n = 10;
    printf("libmm %s (%s) memory benchmark: PPO with / without an LRU memory core on "
           "%s tasks, %d seeds, deterministic eval %d episodes/seed\n",
           mm_version_string(), mm_build_info(),
           g_full ? "UNMASKED (--full-obs)" : "velocity-masked", seeds, g_eval_n);
    if (which & 3)
        printf("%-17s %-10s %7s %20s %7s  per-seed\n", "env", "agent", "steps", "eval mean+-std",
               "s/run");
    if (which & 1) {
        task t = {g_full ? "CartPole-v1" : "CartPoleNoVel-v1", ENV_CARTPOLE, 8,
                  quick ? 30000 : 100000};
        bench_task(&t, seeds);
    }
    if (which & 2) {
        task t = {g_full ? "Pendulum-v1" : "PendulumNoVel-v1", ENV_PENDULUM, 4,
                  quick ? 40000 : 100000};
        bench_task(&t, seeds);
    }
    if (which & 4)
        for (int32_t n = 1; n <= MAX_AGENTS; n *= 8) latency(n);
    return 0;
}
