/* SPDX-License-Identifier: MIT */
/* sac_sb3_dump.c — the libmm side of tests/sac_sb3_step.py: K SAC gradient steps at
 * HalfCheetah-v4's sizes (obs 17, act 6, [256, 256], SB3's defaults otherwise) on batches and
 * N(0, 1) draws fixed here, with everything another implementation needs to replay them.
 *   sac_sb3_dump <dir> [K]
 * writes into dir (raw little-endian):
 *   replay.bin   R rows: obs [R, 17], next_obs [R, 17], act [R, 6], rew [R], term [R] (float32)
 *   batches.bin  per step: w_idx [N] (int64), then the draws [2N, 6] (float32; pi(s), pi(s'))
 *   p<k>.bin     the parameters before step 1 (k = 0) and after step k: for each of actor,
 *                critic 1, critic 2, their targets and log alpha's bias vector, an int64 count
 *                and that many float32 (mm_model_params order); then the same for the
 *                gradients step k left in the actor and in log alpha (zeros in p0.bin)
 * It links the library's objects (not the shared library) because it sets the batch and the
 * draws through the internal fields a unit test uses (mmi_policy.h: w_idx, sac_eps). */
#include "policy/mmi_policy.h"

#include <stdio.h>
#include <stdlib.h>

enum { OD = 17, AD = 6, N = 256, R = 300 };

static int put(FILE *f, const void *x, size_t size, size_t n)
{
    return fwrite(x, size, n, f) == n ? 0 : 1;
}

static int dump_params(const char *dir, int k, mm_policy *p)
{
    mm_model *nets[8] = {p->actor,       p->critic[0], p->critic[1], p->critic_t[0],
                         p->critic_t[1], p->ent,       p->actor,     p->ent};
    char path[4096];
    FILE *f;
    float zero = 0.0f;
    int bad = 0;
    snprintf(path, sizeof path, "%s/p%d.bin", dir, k);
    if (!(f = fopen(path, "wb"))) return 1;
    for (int i = 0; i < 8 && !bad; i++) {
        float *w = NULL;
        int64_t n = 0;
        bad = (i < 6 ? mm_model_params(nets[i], &w, &n) : mm_model_grads(nets[i], &w, &n)) != MM_OK;
        if (!bad) bad = put(f, &n, 8, 1);
        for (int64_t j = 0; !bad && k == 0 && i >= 6 && j < n; j++) bad = put(f, &zero, 4, 1);
        if (!bad && !(k == 0 && i >= 6)) bad = put(f, w, 4, (size_t)n); /* no gradient yet */
    }
    return fclose(f) != 0 || bad;
}

/* R transitions of wide-ranged observations, actions in [-1, 1], 10 % terminal. */
static int fill_replay(mm_policy *p, mmi_rng *g)
{
    float obs[OD], next[OD], act[AD], rew;
    uint8_t term, trunc = 0;
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < OD; j++)
            obs[j] = (float)(3.0 * mmi_rng_normal(g)), next[j] = (float)(3.0 * mmi_rng_normal(g));
        for (int j = 0; j < AD; j++) act[j] = (float)(2.0 * mmi_rng_uniform(g) - 1.0);
        rew = (float)(5.0 * mmi_rng_normal(g));
        term = mmi_rng_uniform(g) < 0.1;
        if (mm_policy_observe(p, obs, act, &rew, next, &term, &trunc, 1) != MM_OK) return 1;
    }
    return 0;
}

static int dump_replay(const char *dir, const mmi_replay *rb)
{
    char path[4096];
    FILE *f;
    int bad;
    snprintf(path, sizeof path, "%s/replay.bin", dir);
    if (!(f = fopen(path, "wb"))) return 1;
    bad = put(f, rb->obs, 4, R * OD) || put(f, rb->next_obs, 4, R * OD) ||
          put(f, rb->act, 4, R * AD) || put(f, rb->rew, 4, R) || put(f, rb->term, 4, R);
    return fclose(f) != 0 || bad;
}

static int run(const char *dir, int steps, mm_policy *p)
{
    char path[4096];
    mmi_rng g;
    FILE *f;
    int bad = 0;
    mmi_rng_seed(&g, 77);
    if (fill_replay(p, &g) || dump_replay(dir, &p->rb) || dump_params(dir, 0, p)) return 1;
    snprintf(path, sizeof path, "%s/batches.bin", dir);
    if (!(f = fopen(path, "wb"))) return 1;
    for (int k = 1; k <= steps && !bad; k++) {
        for (int i = 0; i < N; i++) p->w_idx[i] = (int64_t)mmi_rng_below(&g, R);
        for (int i = 0; i < 2 * N * AD; i++) p->sac_eps[i] = (float)mmi_rng_normal(&g);
        bad = put(f, p->w_idx, 8, N) || put(f, p->sac_eps, 4, 2 * N * AD);
        if (!bad && mmi_sac_step(p, N) != MM_OK) {
            fprintf(stderr, "sac_sb3_dump: step %d: %s\n", k, mm_policy_errmsg(p));
            bad = 1;
        }
        if (!bad) bad = dump_params(dir, k, p);
    }
    return fclose(f) != 0 || bad;
}

int main(int argc, char **argv)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    int steps = argc > 2 ? atoi(argv[2]) : 5, rc;
    if (argc < 2 || steps < 1) {
        fprintf(stderr, "usage: sac_sb3_dump <dir> [steps >= 1]\n");
        return 2;
    }
    if (mm_policy_opts_init(&o, MM_ALGO_SAC) != MM_OK) return 1;
    o.obs_dim = OD, o.act_dim = AD, o.seed = 3, o.batch_size = N, o.buffer_size = 1000;
    o.learning_starts = 1000000; /* observe must not train: the steps below are the only ones */
    if ((rc = mm_policy_create(&p, &o)) != MM_OK) {
        fprintf(stderr, "sac_sb3_dump: create: %s\n", mm_status_name(rc));
        return 1;
    }
    rc = run(argv[1], steps, p);
    if (rc) fprintf(stderr, "sac_sb3_dump: writing into %s failed\n", argv[1]);
    mm_policy_free(p);
    return rc;
}
