/* SPDX-License-Identifier: MIT */
/* engine_loop.c — a game-engine style frame loop: 64 agents (each with its own Pendulum-v1
 * instance) share one TD3 policy with a 3-256-256-1 actor; every frame calls mm_policy_act
 * ONCE for all agents, steps the envs and records the transitions. Prints the per-frame act
 * latency (median, p99), the single-observation latency, and proves through a counting
 * allocator that no allocation happened inside the loop. Usage: engine_loop [frames]. */
#include <mm.h>

#include "envs/envs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGENTS 64

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

static double now_us(void)
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

int main(int argc, char **argv)
{
    static env envs[AGENTS];
    static float obs[AGENTS * 3], next[AGENTS * 3], act[AGENTS], rew[AGENTS];
    static uint8_t te[AGENTS], tr[AGENTS];
    long frames = argc > 1 ? atol(argv[1]) : 10000;
    float lo = -2.0f, hi = 2.0f;
    mm_allocator a = {sizeof(mm_allocator), 0, count_alloc, count_free, NULL};
    mm_policy_opts o;
    mm_policy *p = NULL;
    double *lat, *lat1;
    long before;
    int rc;

    if (frames < 100) frames = 100;
    lat = malloc(sizeof(double) * (size_t)frames);
    lat1 = malloc(sizeof(double) * (size_t)frames);
    if (!lat || !lat1) return 1;
    rc = mm_policy_opts_init(&o, MM_ALGO_TD3);
    o.obs_dim = 3, o.act_dim = 1, o.act_low = &lo, o.act_high = &hi, o.alloc = &a;
    o.n_agents = AGENTS, o.hidden[0] = 256, o.hidden[1] = 256, o.buffer_size = 100000;
    o.learning_starts = 0;
    if (rc == MM_OK) rc = mm_policy_create(&p, &o);
    if (rc != MM_OK) {
        fprintf(stderr, "create failed: %s\n", mm_status_str(rc));
        return 1;
    }
    for (int i = 0; i < AGENTS; i++) {
        env_init(&envs[i], ENV_PENDULUM, (uint64_t)i);
        env_reset(&envs[i], obs + 3 * i);
    }
    before = g_allocs;
    for (long f = 0; f < frames && rc == MM_OK; f++) {
        double t0 = now_us();
        rc = mm_policy_act(p, obs, AGENTS, act, 1); /* one call for all 64 agents */
        lat[f] = now_us() - t0;
        t0 = now_us();
        if (rc == MM_OK) rc = mm_policy_act(p, obs, 1, act, 0); /* one agent alone */
        lat1[f] = now_us() - t0;
        for (int i = 0; rc == MM_OK && i < AGENTS; i++) {
            int32_t t, u;
            env_step(&envs[i], act + i, next + 3 * i, rew + i, &t, &u);
            te[i] = (uint8_t)t, tr[i] = (uint8_t)u;
        }
        if (rc == MM_OK) rc = mm_policy_observe(p, obs, act, rew, next, te, tr, AGENTS);
        for (int i = 0; i < AGENTS; i++) {
            if (te[i] || tr[i]) env_reset(&envs[i], next + 3 * i);
            memcpy(obs + 3 * i, next + 3 * i, sizeof(float) * 3);
        }
    }
    if (rc != MM_OK) {
        fprintf(stderr, "frame loop failed: %s\n", mm_policy_errmsg(p));
        return 1;
    }
    qsort(lat, (size_t)frames, sizeof(double), cmp);
    qsort(lat1, (size_t)frames, sizeof(double), cmp);
    printf("libmm %s (%s)\n", mm_version_string(), mm_build_info());
    printf("%ld frames x %d agents, actor 3-256-256-1\n", frames, AGENTS);
    printf("act for %d agents per frame: median %.1f us, p99 %.1f us\n", AGENTS,
           lat[frames / 2], lat[frames * 99 / 100]);
    printf("act for 1 observation:        median %.2f us, p99 %.2f us (target <= 5 us)\n",
           lat1[frames / 2], lat1[frames * 99 / 100]);
    printf("allocations inside the frame loop: %ld\n", g_allocs - before);
    mm_policy_free(p);
    free(lat);
    free(lat1);
    return g_allocs - before == 0 ? 0 : 1;
}
