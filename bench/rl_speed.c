/* SPDX-License-Identifier: MIT */
/* rl_speed.c — RL speed numbers for `make bench-rl`: (1) milliseconds per DDPG update with
 * PyTorch-comparable sizes (256-256 actor and critic, batch 256, Adam; bench/peer_torch_ddpg.py
 * is the same update in PyTorch), (2) 20k Pendulum-v1 steps of TD3 with the demo's sizes (64-64,
 * batch 128, one update per step) on one core. Process CPU time, as the peer measures: wall-clock
 * on a shared machine measures the other processes too. (3) Milliseconds per update at the
 * sizes of bench/gym_vs_sb3.py's Pendulum-v1 runs (TD3 400-300 with policy delay 2, SAC 256-256
 * with automatic temperature, batch 256): on that benchmark libmm's side is almost all update,
 * so these rows track it without Python. `make bench BENCH_ARGS=rl` times the update alone
 * (bench/bench_rl.c). */
#include <mm.h>

#include "../examples/envs/envs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Wall-clock, for the one-row mode with more than one thread (process CPU time is then the sum
 * over the threads, spinning included). */
static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float g_lo = -2.0f, g_hi = 2.0f;

/* Runs `steps` Pendulum steps with one update each (after learning_starts). */
static int run(mm_policy *p, long steps, double *secs)
{
    env e;
    float obs[3], next[3], a, r;
    double t0 = now_s();
    int rc = MM_OK;
    env_init(&e, ENV_PENDULUM, 1);
    env_reset(&e, obs);
    for (long t = 0; t < steps && rc == MM_OK; t++) {
        int32_t te, tr;
        uint8_t a8, b8;
        rc = mm_policy_act(p, obs, 1, &a, 1);
        env_step(&e, &a, next, &r, &te, &tr);
        a8 = (uint8_t)te, b8 = (uint8_t)tr;
        if (rc == MM_OK) rc = mm_policy_observe(p, obs, &a, &r, next, &a8, &b8, 1);
        if (rc == MM_OK) rc = mm_policy_update(p, NULL);
        memcpy(obs, next, sizeof obs);
        if (te || tr) env_reset(&e, obs);
    }
    *secs = now_s() - t0;
    return rc;
}

static int make2(mm_policy **p, int32_t algo, int64_t h0, int64_t h1, int64_t batch, int64_t starts,
                 int32_t n_threads)
{
    mm_policy_opts o;
    int rc = mm_policy_opts_init(&o, algo);
    o.obs_dim = 3, o.act_dim = 1, o.act_low = &g_lo, o.act_high = &g_hi;
    o.hidden[0] = h0, o.hidden[1] = h1, o.batch_size = batch, o.learning_starts = starts;
    o.buffer_size = 100000, o.gamma = 0.98, o.n_threads = n_threads;
    return rc == MM_OK ? mm_policy_create(p, &o) : rc;
}

static int make(mm_policy **p, int32_t algo, int64_t hidden, int64_t batch, int64_t starts)
{
    return make2(p, algo, hidden, hidden, batch, starts, 1);
}

/* CPU ms per update (with its act and env step) after 1000 warm-up steps, as row (1), and the
 * wall-clock ms of the same updates in *wall_ms when it is not NULL. */
static int gym_size_update(int32_t algo, int64_t h0, int64_t h1, long n_upd, int32_t n_threads,
                           double *ms, double *wall_ms)
{
    mm_policy *p = NULL;
    double warm, full, w0 = 0;
    int rc = make2(&p, algo, h0, h1, 256, 1000, n_threads);
    if (rc == MM_OK) rc = run(p, 1000, &warm);
    w0 = wall_s();
    if (rc == MM_OK) rc = run(p, n_upd, &full);
    if (wall_ms) *wall_ms = 1e3 * (wall_s() - w0) / (double)n_upd;
    mm_policy_free(p);
    *ms = 1e3 * full / (double)n_upd;
    return rc;
}

/* `rl_speed td3|sac [updates [threads]]`: only the TD3 400-300 or SAC 256-256 row, with that
 * many updates (default 300) after the warm-up, on that many threads (mm_policy_opts.n_threads,
 * default 1; with more, wall-clock is printed too): for A/B runs and `perf record` of one
 * update. */
static int one_row(const char *which, long n_upd, long n_threads)
{
    double ms, wall;
    int sac = strcmp(which, "sac") == 0;
    if ((!sac && strcmp(which, "td3") != 0) || n_threads < 1 || n_threads > 256) {
        fprintf(stderr, "usage: rl_speed [td3|sac [updates [threads 1..256]]]\n");
        return 2;
    }
    if (n_upd < 1) n_upd = 300;
    if (gym_size_update(sac ? MM_ALGO_SAC : MM_ALGO_TD3, sac ? 256 : 400, sac ? 256 : 300, n_upd,
                        (int32_t)n_threads, &ms, &wall) != MM_OK)
        return 1;
    if (n_threads == 1)
        printf("libmm %s update, %s, batch 256: %.3f ms CPU time per update over %ld (incl. "
               "act+step)\n",
               sac ? "SAC" : "TD3", sac ? "256-256" : "400-300, policy delay 2", ms, n_upd);
    else
        printf("libmm %s update, %s, batch 256, %ld threads: %.3f ms wall-clock, %.3f ms CPU time "
               "(all threads) per update over %ld (incl. act+step)\n",
               sac ? "SAC" : "TD3", sac ? "256-256" : "400-300, policy delay 2", n_threads, wall,
               ms, n_upd);
    return 0;
}

int main(int argc, char **argv)
{
    mm_policy *p = NULL;
    double warm, full, demo;
    const long n_upd = 300;
    int rc;
    if (argc > 1)
        return one_row(argv[1], argc > 2 ? atol(argv[2]) : 300, argc > 3 ? atol(argv[3]) : 1);
    rc = make(&p, MM_ALGO_DDPG, 256, 256, 1000);
    /* DDPG update cost = (time of 1000 + n_upd steps) - (time of 1000 warm-up steps) */
    if (rc == MM_OK) rc = run(p, 1000, &warm);
    if (rc == MM_OK) rc = run(p, n_upd, &full);
    mm_policy_free(p);
    if (rc != MM_OK) return 1;
    printf("libmm DDPG update, 256-256, batch 256, 1 thread: %.2f ms CPU time per update (incl. "
           "act+step)\n",
           1e3 * full / (double)n_upd);
    p = NULL;
    rc = make(&p, MM_ALGO_TD3, 64, 128, 1000);
    if (rc == MM_OK) rc = run(p, 20000, &demo);
    mm_policy_free(p);
    if (rc != MM_OK) return 1;
    printf("libmm TD3 demo sizes (64-64, batch 128): 20k Pendulum steps in %.1f s CPU time (target "
           "<= 30 s)\n",
           demo);
    if (gym_size_update(MM_ALGO_TD3, 400, 300, n_upd, 1, &full, NULL) != MM_OK) return 1;
    printf("libmm TD3 update, 400-300, batch 256, policy delay 2 (gym_vs_sb3 td3-pendulum): %.2f "
           "ms CPU time per update (incl. act+step)\n",
           full);
    if (gym_size_update(MM_ALGO_SAC, 256, 256, n_upd, 1, &full, NULL) != MM_OK) return 1;
    printf("libmm SAC update, 256-256, batch 256 (gym_vs_sb3 sac-pendulum): %.2f ms CPU time per "
           "update (incl. act+step)\n",
           full);
    (void)warm;
    return 0;
}
