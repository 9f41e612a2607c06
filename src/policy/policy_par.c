/* SPDX-License-Identifier: MIT */
/* policy_par.c — the off-policy updates on more than one thread: independent networks' work at
 * once (mmi_pol_each) and the Polyak averaging cut over the pool (mmi_pol_polyak).
 *
 * Splitting each product of a 256-row batch over two threads gave TD3 400-300 only about 1.5x
 * on two cores (a 2-core AVX2 VM): the first and last layers' products are too small to split
 * well, every product synchronises the threads two to four times, and the elementwise passes
 * between them run on one thread. The twin critics of TD3 and SAC, their targets and (for TD3)
 * the actor's forward on s beside the target actor's on s' do not depend on each other: each
 * runs whole on one thread, with no synchronisation until both are done. Results stay those of
 * one thread bit for bit: a network's products, Adam and elementwise passes give the same bits
 * on any number of threads, each task writes only its own rows, and what the tasks' results
 * are combined into (the loss, the min over the twins) is formed afterwards in task order. */
#include "mmi_policy.h"

#include "../kernels/elementwise/mmi_elementwise.h"

int mmi_pol_fwd_at(mm_policy *p, int v, mm_model *m, float *x, int64_t rows, int64_t in, float *y,
                   int64_t out)
{
    return mm_model_forward(m, mmi_pol_view(p, v, x, rows, in),
                            mmi_pol_view(p, v + 1, y, rows, out));
}

int mmi_pol_critic_adam(mm_policy *p, int32_t c, int v, float *dy, int64_t n, mm_model **failed)
{
    mm_model *m = p->critic[c];
    int rc = mm_model_zero_grad(m);
    if (rc == MM_OK) rc = mm_model_backward(m, mmi_pol_view(p, v, dy, n, 1), NULL);
    if (rc == MM_OK) rc = mm_model_set_f64(m, MM_MODEL_LR, p->o.lr_critic);
    if (rc == MM_OK && p->comm) /* gradients averaged over ranks (never two pieces at once) */
        if ((rc = mmi_pol_comm_average(p, &p->critic[c], 1)) != MM_OK) return rc;
    if (rc == MM_OK) rc = mm_model_step(m);
    if (rc != MM_OK) *failed = m;
    return rc;
}

typedef struct each_job {
    mm_policy *p;
    mmi_pol_each_fn fn;
    void *ctx;
    int rc[MMI_POL_EACH_MAX];
    mm_model *failed[MMI_POL_EACH_MAX];
} each_job;

static void each_task(void *ctx, int64_t i, int64_t n)
{
    each_job *j = (each_job *)ctx;
    (void)n;
    j->failed[i] = NULL;
    j->rc[i] = j->fn(j->p, j->ctx, (int32_t)i, &j->failed[i]);
}

int mmi_pol_each(mm_policy *p, mm_model *const *ms, int32_t n_ms, mmi_pol_each_fn fn, void *ctx,
                 int32_t n)
{
    each_job j;
    /* A communicator's collectives must come in the same order on every rank: one at a time. */
    int conc = p->pool && !p->comm && n > 1;
    MMI_ASSERT(n >= 1 && n <= MMI_POL_EACH_MAX);
    j.p = p, j.fn = fn, j.ctx = ctx;
    if (conc) {
        for (int32_t i = 0; i < n_ms; i++)
            if (ms[i]) mmi_model_share_pool(ms[i], NULL);
        mmi_pool_run(p->pool, each_task, &j, n);
        for (int32_t i = 0; i < n_ms; i++)
            if (ms[i]) mmi_model_share_pool(ms[i], p->pool);
    } else {
        /* one after the other, each network's kernels on the pool; the first failure ends it */
        for (int32_t k = 0; k < n; k++) {
            each_task(&j, k, n);
            if (j.rc[k] != MM_OK) {
                n = k + 1;
                break;
            }
        }
    }
    for (int32_t k = 0; k < n; k++)
        if (j.rc[k] != MM_OK)
            return j.failed[k] ? mmi_pol_model_fail(p, j.failed[k], j.rc[k], "mm_policy_update")
                               : j.rc[k];
    return MM_OK;
}

/* Floats per Polyak task: a multiple of 64 (whole cache lines and vectors in every task). */
#define POLYAK_CHUNK ((int64_t)1 << 14)

typedef struct polyak_job {
    float *dst[MMI_POL_EACH_MAX];
    const float *src[MMI_POL_EACH_MAX];
    int64_t n[MMI_POL_EACH_MAX], first[MMI_POL_EACH_MAX + 1]; /* first task of each pair */
    int32_t pairs;
    float keep, take;
} polyak_job;

static void polyak_task(void *ctx, int64_t t, int64_t n_tasks)
{
    const polyak_job *j = (const polyak_job *)ctx;
    int32_t k = 0;
    int64_t i0, len;
    (void)n_tasks;
    while (t >= j->first[k + 1]) k++;
    i0 = (t - j->first[k]) * POLYAK_CHUNK;
    len = j->n[k] - i0 < POLYAK_CHUNK ? j->n[k] - i0 : POLYAK_CHUNK;
    mmi_lerp(j->dst[k] + i0, j->src[k] + i0, len, j->keep, j->take);
}

int mmi_pol_polyak(mm_policy *p, mm_model *const *dst, mm_model *const *src, int32_t n, double tau)
{
    polyak_job j;
    int rc = MM_OK;
    MMI_ASSERT(n >= 1 && n <= MMI_POL_EACH_MAX);
    if (!p->pool) { /* one thread: mm_model_lerp, which checks the pair */
        for (int32_t k = 0; k < n && rc == MM_OK; k++) rc = mm_model_lerp(dst[k], src[k], tau);
        return rc == MM_OK ? rc : mmi_fail(&p->err, rc, "mm_policy_update: target update failed");
    }
    /* As mm_model_lerp (SB3 polyak_update: target.mul_(1 - tau), add_(param, alpha=tau)) */
    j.keep = (float)(1.0 - tau), j.take = (float)tau, j.pairs = n, j.first[0] = 0;
    for (int32_t k = 0; k < n; k++) {
        float *d = NULL, *s = NULL;
        int64_t nd = 0, ns = 0;
        rc = mm_model_params(dst[k], &d, &nd);
        if (rc == MM_OK) rc = mm_model_params(src[k], &s, &ns);
        if (rc != MM_OK || nd != ns || !(tau >= 0.0 && tau <= 1.0))
            return mmi_fail(&p->err, rc == MM_OK ? MM_E_INVALID_ARG : rc,
                            "mm_policy_update: target update failed");
        j.dst[k] = d, j.src[k] = s, j.n[k] = nd;
        j.first[k + 1] = j.first[k] + (nd + POLYAK_CHUNK - 1) / POLYAK_CHUNK;
    }
    mmi_pool_run(p->pool, polyak_task, &j, j.first[n]);
    return MM_OK;
}
