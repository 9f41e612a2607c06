/* SPDX-License-Identifier: MIT */
/* policy_comm.c — data-parallel RL (mm_policy_set_comm): every rank runs its own environments
 * into its own rollout or replay buffer; at each gradient step the gradients of each network
 * are averaged over ranks before clipping and the optimizer, so all ranks keep identical
 * networks and the step is that of the union of the ranks' batches. Networks start from rank
 * 0's parameters; the exploration / sampling RNG is re-seeded per rank, so ranks explore
 * differently and a run is reproducible for a fixed seed and world size. */
#include "../core/mmi_comm.h"
#include "mmi_policy.h"

#define MMI_POL_NETS 10

/* All networks of the policy, targets and the memory core included (NULL entries skipped). */
static int32_t all_models(mm_policy *p, mm_model **ms)
{
    int32_t n = 0;
    mm_model *list[MMI_POL_NETS] = {p->actor,     p->actor_t,     p->critic[0], p->critic_t[0],
                                    p->critic[1], p->critic_t[1], p->vf,        p->logstd,
                                    p->ent,       p->mem.m};
    for (int k = 0; k < MMI_POL_NETS; k++)
        if (list[k]) ms[n++] = list[k];
    return n;
}

/* The state a joining rank must share with rank 0: sizes of every network. */
static int agree_and_broadcast(mm_policy *p, mm_comm *c, int status, const char *fn)
{
    mm_model *ms[MMI_POL_NETS];
    int32_t n = all_models(p, ms);
    float v[3] = {(float)p->o.algo, (float)n, 0.0f};
    const float *all;
    int rc;
    for (int32_t k = 0; status == MM_OK && k < n; k++) {
        int64_t np = 0;
        if (mm_model_num_params(ms[k], &np) != MM_OK) status = MM_E_INTERNAL;
        v[2] += (float)np;
    }
    if ((rc = mmi_comm_vote(c, status, v, 3, &all, &p->err, fn)) != MM_OK) return rc;
    for (int32_t r = 0; r < c->size; r++)
        if (all[4 * r + 1] != v[0] || all[4 * r + 2] != v[1] || all[4 * r + 3] != v[2])
            return mmi_fail(&p->err, MM_E_SHAPE,
                            "%s: rank %d's policy differs from rank %d's (algorithm or network "
                            "sizes)",
                            fn, (int)r, (int)c->rank);
    for (int32_t k = 0; k < n; k++) {
        float *w;
        int64_t np;
        if (mm_model_params(ms[k], &w, &np) != MM_OK) return MM_E_INTERNAL;
        if ((rc = mmi_comm_bcast0(c, w, np, &p->err, fn)) != MM_OK) return rc;
    }
    return MM_OK;
}

MM_API int mm_policy_set_comm(mm_policy *p, mm_comm *comm)
{
    static const char fn[] = "mm_policy_set_comm";
    int status = MM_OK;
    if (!p) return MM_E_INVALID_ARG;
    if (!comm) {
        p->comm = NULL;
        return MM_OK;
    }
    if (p->o.algo == MM_ALGO_TRPO)
        status = mmi_fail(&p->err, MM_E_UNSUPPORTED,
                          "%s: TRPO has no data-parallel form yet (its natural-gradient step "
                          "needs distributed Fisher-vector products)",
                          fn);
    else if (p->norm)
        status = mmi_fail(&p->err, MM_E_UNSUPPORTED,
                          "%s: norm_obs keeps per-rank statistics, which would make the ranks' "
                          "networks see different inputs; normalise in the host",
                          fn);
    /* Every rank votes, so a refusing rank does not leave the others in the broadcast. */
    status = agree_and_broadcast(p, comm, status, fn);
    mmi_pol_params_stale(p); /* the broadcast may have written the actor and the core */
    if (status != MM_OK) return status;
    /* Rank 0 keeps the single-process stream; the others get their own. */
    mmi_rng_seed(&p->rng,
                 (p->o.seed ^ 0x5DEECE66Dull) + (uint64_t)comm->rank * 0x9E3779B97F4A7C15ull);
    p->comm = comm;
    return MM_OK;
}

int mmi_pol_comm_average(mm_policy *p, mm_model *const *ms, int32_t n)
{
    static const char fn[] = "mm_policy_update";
    float w = (float)p->comm->size;
    for (int32_t k = 0; k < n; k++) {
        float *g;
        int64_t ng;
        int rc;
        if (!ms[k]) continue;
        if (mm_model_grads(ms[k], &g, &ng) != MM_OK) return MM_E_INTERNAL;
        if ((rc = mmi_comm_allreduce(p->comm, g, ng, &p->err, fn)) != MM_OK) return rc;
        if (p->comm->size > 1)
            for (int64_t i = 0; i < ng; i++) g[i] /= w; /* rounded once */
    }
    return MM_OK;
}
