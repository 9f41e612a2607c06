/* SPDX-License-Identifier: MIT */
/* demo.c — `make demo`: libmm's main example. Trains a TD3 agent (libmm's mm_policy) on
 * Pendulum-v1 from scratch with a progress bar, saves it (demo_agent.safetensors), reloads it
 * into a fresh handle, evaluates the reloaded agent deterministically over 10 episodes and
 * writes the learning curve to demo_curve.svg — both in the current directory.
 * The bar: an average evaluation return of at least -200 (docs/RL.md §Published returns); it
 * takes well under a minute on one core. Usage: demo [seed] [steps]. */
#include <mm.h>

#include "envs/curve_svg.h"
#include "envs/envs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(_WIN32)
#include <io.h>
#define isatty _isatty
#define fileno _fileno
#else
#include <unistd.h>
#endif

#define MAX_EPISODES  1024
#define N_EVALS       5    /* evaluations during training, at every fifth of the steps */
#define EVAL_EPISODES 5    /* episodes per evaluation during training */
#define SMOOTH        10   /* window of the learning curve's moving average (episodes) */
#define WARMUP        1000 /* learning_starts: uniform random actions, no training */

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float g_low = -2.0f, g_high = 2.0f;

/* TD3 with the ZOO Pendulum settings (gamma 0.98, Normal(0, 0.1) exploration) on 64-64
 * networks, batch 128 and 1000 warm-up steps: small enough for 20k steps in seconds. */
static int demo_opts(mm_policy_opts *o, uint64_t seed, char *err, size_t n)
{
    int rc = mm_policy_opts_init(o, MM_ALGO_TD3);
    o->obs_dim = 3, o->act_dim = 1, o->act_low = &g_low, o->act_high = &g_high;
    o->seed = seed, o->gamma = 0.98, o->buffer_size = 200000, o->learning_starts = WARMUP;
    o->hidden[0] = 64, o->hidden[1] = 64, o->batch_size = 128;
    o->err_buf = err, o->err_buf_size = n;
    return rc;
}

/* Progress: a bar redrawn in place on a terminal; on a pipe or file (CI logs) a plain line
 * every tenth of the run instead, so the log holds no carriage returns. During the warm-up the
 * actions are random and nothing trains, so no speed is shown (it would be the environment's
 * alone); afterwards steps/s counts the training steps only. */
static void progress(int tty, long t, long total, double ret, double sps)
{
    char rate[48];
    if (t <= WARMUP)
        snprintf(rate, sizeof rate, "random warm-up (%d steps)", WARMUP);
    else
        snprintf(rate, sizeof rate, "%6.0f steps/s", sps);
    if (tty) {
        int w = 30, k = (int)(w * t / total);
        printf("\r[");
        for (int i = 0; i < w; i++) putchar(i < k ? '#' : '.');
        printf("] %6ld/%ld steps  last return %8.1f  %-28s", t, total, ret, rate);
    } else {
        printf("%6ld/%ld steps  last return %8.1f  %s\n", t, total, ret, rate);
    }
    fflush(stdout);
}

/* Deterministic evaluation: mean and std of n episode returns. */
static int evaluate(mm_policy *p, uint64_t seed, int n, double *mean, double *std)
{
    env e;
    double s = 0, s2 = 0;
    env_init(&e, ENV_PENDULUM, seed);
    for (int k = 0; k < n; k++) {
        float obs[3], a, r;
        int32_t te = 0, tr = 0;
        double ret = 0;
        env_reset(&e, obs);
        while (!te && !tr) {
            int rc = mm_policy_act(p, obs, 1, &a, 0);
            if (rc != MM_OK) return rc;
            env_step(&e, &a, obs, &r, &te, &tr);
            ret += r;
        }
        s += ret, s2 += ret * ret;
    }
    *mean = s / n;
    *std = sqrt(fmax(0.0, s2 / n - *mean * *mean));
    return MM_OK;
}

/* Evaluation points of the learning curve (deterministic policy, separate environment). */
typedef struct {
    int n;
    double step[N_EVALS + 1], mean[N_EVALS + 1], std[N_EVALS + 1];
} evals;

static int train(mm_policy *p, long total, uint64_t seed, double *ep_step, double *ep_ret,
                 int *n_ep, evals *ev)
{
    env e;
    float obs[3], next[3], a, r;
    double ret = 0, t_learn = now_s(), last = NAN;
    int tty = isatty(fileno(stdout));
    long every = tty ? 500 : total / 10;
    env_init(&e, ENV_PENDULUM, seed);
    env_reset(&e, obs);
    for (long t = 1; t <= total; t++) {
        int32_t te, tr, did;
        uint8_t te8, tr8;
        int rc = mm_policy_act(p, obs, 1, &a, 1);
        if (rc != MM_OK) return rc;
        env_step(&e, &a, next, &r, &te, &tr);
        te8 = (uint8_t)te, tr8 = (uint8_t)tr;
        if ((rc = mm_policy_observe(p, obs, &a, &r, next, &te8, &tr8, 1)) != MM_OK) return rc;
        if ((rc = mm_policy_update(p, &did)) != MM_OK) return rc;
        memcpy(obs, next, sizeof obs);
        ret += r;
        if (te || tr) {
            if (*n_ep < MAX_EPISODES) ep_step[*n_ep] = (double)t, ep_ret[(*n_ep)++] = ret;
            last = ret, ret = 0;
            env_reset(&e, obs);
        }
        if (t == WARMUP) t_learn = now_s();
        if (t % every == 0 || t == total)
            progress(tty, t, total, last, (double)(t - WARMUP) / (now_s() - t_learn));
        if (t % (total / N_EVALS) == 0 && ev->n < N_EVALS) {
            ev->step[ev->n] = (double)t;
            rc = evaluate(p, 500 + seed, EVAL_EPISODES, &ev->mean[ev->n], &ev->std[ev->n]);
            if (rc != MM_OK) return rc;
            ev->n++;
        }
    }
    if (tty) printf("\n");
    return MM_OK;
}

/* The learning curve (examples/envs/curve_svg.c): training episode returns (dots), their
 * SMOOTH-episode moving average (line), the deterministic evaluations (squares with +-1 std
 * bars; the last one is the reloaded agent's) and the -200 bar. */
static int write_svg(const char *path, const double *xs, const double *ys, int n, long total,
                     const evals *ev)
{
    curve_plot pl = {"libmm TD3 on Pendulum-v1: training episode returns",
                     0,
                     -1800,
                     0,
                     -200,
                     "bar: return -200",
                     SMOOTH,
                     6,
                     0};
    curve_series s = {"episode return", "#c33", xs, ys, n, 1};
    curve_evals e = {ev->n, ev->step, ev->mean, ev->std};
    pl.xmax = (double)total;
    return curve_svg_write(path, &pl, &s, 1, &e);
}

int main(int argc, char **argv)
{
    static double ep_step[MAX_EPISODES], ep_ret[MAX_EPISODES];
    static evals ev;
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    long total = argc > 2 ? atol(argv[2]) : 20000;
    char err[256] = "";
    mm_policy_opts o;
    mm_policy *p = NULL, *q = NULL;
    double t0, t_train, mean = 0, std = 0;
    int n_ep = 0, rc;

    printf("libmm %s  ABI %u  (%s)\n", mm_version_string(), (unsigned)mm_abi_version(),
           mm_build_info());
    if (total < 2 * WARMUP || total > 1000000) total = 20000;
    printf("TD3 on Pendulum-v1: %ld steps, networks 64-64, seed %llu\n", total,
           (unsigned long long)seed);
    rc = demo_opts(&o, seed, err, sizeof err);
    if (rc != MM_OK || (rc = mm_policy_create(&p, &o)) != MM_OK) {
        fprintf(stderr, "mm_policy_create: %s (%s)\n", mm_status_str(rc), err);
        return 1;
    }
    t0 = now_s();
    rc = train(p, total, seed, ep_step, ep_ret, &n_ep, &ev);
    t_train = now_s() - t0;
    if (rc == MM_OK) rc = mm_policy_save(p, "demo_agent.safetensors");
    if (rc != MM_OK) {
        fprintf(stderr, "training/saving failed: %s: %s\n", mm_status_str(rc), mm_policy_errmsg(p));
        mm_policy_free(p);
        return 1;
    }
    mm_policy_free(p);
    printf("trained in %.1f s; saved demo_agent.safetensors\n", t_train);
    if ((rc = mm_policy_create(&q, &o)) == MM_OK) rc = mm_policy_load(q, "demo_agent.safetensors");
    if (rc == MM_OK) rc = evaluate(q, 1000 + seed, 10, &mean, &std);
    if (rc != MM_OK) {
        fprintf(stderr, "reload/evaluate failed: %s: %s\n", mm_status_str(rc),
                q ? mm_policy_errmsg(q) : err);
        mm_policy_free(q);
        return 1;
    }
    mm_policy_free(q);
    if (ev.n == N_EVALS) ev.n--; /* the reloaded agent's evaluation replaces the last one */
    ev.step[ev.n] = (double)total, ev.mean[ev.n] = mean, ev.std[ev.n] = std, ev.n++;
    printf("reloaded agent, deterministic evaluation over 10 episodes: %.1f +- %.1f "
           "(bar: >= -200) %s\n",
           mean, std, mean >= -200 ? "PASS" : "below the bar");
    if (write_svg("demo_curve.svg", ep_step, ep_ret, n_ep, total, &ev) == 0)
        printf("learning curve written to ./demo_curve.svg (%d episodes)\n", n_ep);
    printf("total %.1f s\n", now_s() - t0);
    return mean >= -200 ? 0 : 2;
}
