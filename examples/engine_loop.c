/* SPDX-License-Identifier: MIT */
/* engine_loop.c — a game-engine style frame loop that learns: 16 agents (each its own
 * CartPole-v1) share one PPO policy with 64-64 networks. Every frame calls mm_policy_act once
 * for all agents, steps the envs, records the transitions with mm_policy_observe and gives the
 * update a slice of the frame with mm_policy_update_budget: minibatches run until the update is
 * done or the frame's training share (1 ms) is spent, and the rest continues next frame. While
 * an update has work left, act keeps using the actor the rollout was collected with and
 * observe refuses (MM_E_STATE): those frames are played but not recorded.
 *
 * The same run is repeated with the one-shot mm_policy_update for comparison. Prints the frame
 * time percentiles (act + observe + update share) of both, the learning progress (mean episode
 * length per update) and the allocations inside the loop; exits non-zero if the budgeted agent
 * did not learn or anything was allocated. Usage: engine_loop [frames]. */
#include <mm.h>

#include "envs/envs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGENTS   16
#define SLICE_US 1000.0 /* training share of a frame */

static long g_allocs;

static void *count_alloc(void *ud, size_t size, size_t align)
{
    (void)ud;
    g_allocs++;
    return aligned_alloc(align, (size + align - 1) / align * align);
}

static void count_free(void *ud, void *ptr, size_t size)
{
    (void)ud, (void)size;
    free(ptr);
}

/* CPU time of this thread: what the frame costs, without the time other processes of a shared
 * machine take the core away (wall time is printed too). */
static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

static double wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct run {
    double *frame_us;   /* per frame: act + observe + update share, CPU time */
    double *wall;       /* the same in wall time */
    double first, last; /* mean episode length of the first and last reported updates */
    long allocs, updates;
} run;

/* Gives the update at most SLICE_US of this frame, one minibatch at a time; *completed = 1
 * when an update finished in this slice. */
static int train_slice(mm_policy *p, int budgeted, int *completed)
{
    double t0 = now_us(), was = 0, upd = 0;
    int32_t done = 0, did = 0;
    int rc = mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &was);
    *completed = 0;
    if (rc != MM_OK) return rc;
    if (!budgeted) {
        rc = mm_policy_update(p, &did);
        *completed = did;
        return rc;
    }
    while (rc == MM_OK && !done && now_us() - t0 < SLICE_US)
        rc = mm_policy_update_budget(p, 1, &done);
    if (rc == MM_OK) rc = mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd);
    *completed = done && upd > was;
    return rc;
}

static int play(run *r, long frames, int budgeted)
{
    static env envs[AGENTS];
    static float obs[AGENTS * 4], next[AGENTS * 4], act[AGENTS], rew[AGENTS];
    static uint8_t te[AGENTS], tr[AGENTS];
    mm_allocator a = {sizeof(mm_allocator), 0, count_alloc, count_free, NULL};
    mm_policy_opts o;
    mm_policy *p = NULL;
    double ep_len_sum = 0, ep_n = 0;
    int rc = mm_policy_opts_init(&o, MM_ALGO_PPO);
    long before;
    o.obs_dim = 4, o.n_actions = 2, o.n_agents = AGENTS, o.alloc = &a, o.seed = 1;
    o.n_steps = 128, o.batch_size = 64, o.n_epochs = 10, o.lr_actor = o.lr_critic = 1e-3;
    o.gamma = 0.98, o.gae_lambda = 0.8;
    if (rc == MM_OK) rc = mm_policy_create(&p, &o);
    if (rc != MM_OK) {
        fprintf(stderr, "create failed: %s\n", mm_status_str(rc));
        return rc;
    }
    for (int i = 0; i < AGENTS; i++) {
        env_init(&envs[i], ENV_CARTPOLE, (uint64_t)i + 1);
        env_reset(&envs[i], obs + 4 * i);
    }
    r->first = -1, r->last = 0;
    before = g_allocs;
    for (long f = 0; f < frames && rc == MM_OK; f++) {
        double t0 = now_us(), w0 = wall_us(), t_env, t1, w_env, w1, updating = 0;
        int completed = 0;
        rc = mm_policy_act(p, obs, AGENTS, act, 1); /* one call for all agents */
        t_env = now_us(), w_env = wall_us();
        for (int i = 0; rc == MM_OK && i < AGENTS; i++) {
            int32_t t, u;
            env_step(&envs[i], act + i, next + 4 * i, rew + i, &t, &u);
            te[i] = (uint8_t)t, tr[i] = (uint8_t)u;
            if (t || u) ep_len_sum += envs[i].steps, ep_n++;
        }
        t1 = now_us(), w1 = wall_us();
        if (rc == MM_OK) rc = mm_policy_get_f64(p, MM_POLICY_STAT_UPDATING, &updating);
        if (rc == MM_OK && !updating) /* frames played during an update are not recorded */
            rc = mm_policy_observe(p, obs, act, rew, next, te, tr, AGENTS);
        if (rc == MM_OK) rc = train_slice(p, budgeted, &completed);
        r->frame_us[f] = (t_env - t0) + (now_us() - t1); /* the library's share of the frame */
        r->wall[f] = (w_env - w0) + (wall_us() - w1);
        for (int i = 0; i < AGENTS; i++) {
            if (te[i] || tr[i]) env_reset(&envs[i], next + 4 * i);
            memcpy(obs + 4 * i, next + 4 * i, sizeof(float) * 4);
        }
        if (completed && ep_n > 0) {
            double m = ep_len_sum / ep_n;
            if (r->first < 0) r->first = m;
            r->last = m, r->updates++;
            if (r->updates % 5 == 1)
                printf("  %-9s frame %5ld  update %3ld  mean episode length %6.1f\n",
                       budgeted ? "budgeted" : "one-shot", f, r->updates, m);
            ep_len_sum = 0, ep_n = 0;
        }
    }
    r->allocs = g_allocs - before;
    if (rc != MM_OK) fprintf(stderr, "frame loop failed: %s\n", mm_policy_errmsg(p));
    mm_policy_free(p);
    return rc;
}

static void report(const char *name, run *r, long frames)
{
    qsort(r->frame_us, (size_t)frames, sizeof(double), cmp);
    qsort(r->wall, (size_t)frames, sizeof(double), cmp);
    printf("%s: frame time (act + observe + update share), CPU: p50 %.0f us, p99 %.0f us, "
           "max %.0f us (wall: p99 %.0f us, max %.0f us)\n",
           name, r->frame_us[frames / 2], r->frame_us[frames * 99 / 100], r->frame_us[frames - 1],
           r->wall[frames * 99 / 100], r->wall[frames - 1]);
    printf("%s: mean episode length %.1f -> %.1f over %ld updates; %ld allocations in the "
           "loop\n",
           name, r->first, r->last, r->updates, r->allocs);
}

int main(int argc, char **argv)
{
    long frames = argc > 1 ? atol(argv[1]) : 6000;
    run b = {0}, s = {0};
    int rc;
    if (frames < 1000) frames = 1000;
    b.frame_us = malloc(sizeof(double) * (size_t)frames);
    s.frame_us = malloc(sizeof(double) * (size_t)frames);
    b.wall = malloc(sizeof(double) * (size_t)frames);
    s.wall = malloc(sizeof(double) * (size_t)frames);
    if (!b.frame_us || !s.frame_us || !b.wall || !s.wall) return 1;
    printf("libmm %s (%s)\n%ld frames x %d CartPole agents, PPO 64-64, rollout 128 x %d, "
           "training share %.0f us per frame\n",
           mm_version_string(), mm_build_info(), frames, AGENTS, AGENTS, SLICE_US);
    rc = play(&b, frames, 1);
    if (rc == MM_OK) rc = play(&s, frames, 0);
    if (rc != MM_OK) return 1;
    report("budgeted", &b, frames);
    report("one-shot", &s, frames);
    free(b.frame_us), free(s.frame_us), free(b.wall), free(s.wall);
    if (b.allocs != 0 || s.allocs != 0) return 1;
    if (!(b.last > 2.0 * b.first && b.last > 100.0)) {
        fprintf(stderr, "the budgeted agent did not learn\n");
        return 1;
    }
    return 0;
}
