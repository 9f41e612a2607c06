/* SPDX-License-Identifier: MIT */
/* update_budget.c — mm_policy_update and its frame-bounded form mm_policy_update_budget.
 * Both run the same code: the one-shot update is a budgeted one with an unbounded budget, which
 * is why spreading an update over calls gives the same result bit for bit.
 *
 * While an on-policy update has work left between calls (upd.active):
 *   - act reads upd.actor_snap / upd.logstd_snap, the actor copied when the update began (the
 *     copy was allocated at create), and draws from upd.act_rng, a stream split from p->rng
 *     without advancing it, so the update draws exactly what the one-shot update draws;
 *   - observe refuses (the rollout it would write is being trained on).
 * The swap is the end of the update: act returns to the live actor and p->rng. Off-policy the
 * actor changes only between whole gradient steps, so act keeps the live actor; it only gets
 * its own random stream while gradient steps are left. */
#include "mmi_policy.h"

#include <string.h>

/* Gives act its own stream: seeded from the next value of a copy of p->rng. */
static void split_act_rng(mm_policy *p)
{
    mmi_rng t = p->rng;
    mmi_rng_seed(&p->upd.act_rng, mmi_rng_next(&t) ^ 0xA3C59AC2F1D3E5B7ull);
}

/* Copies the actor (and its log std) that act must keep using until the update ends. */
static int snapshot_actor(mm_policy *p)
{
    int rc = mm_model_copy(p->upd.actor_snap, p->actor, 0);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->upd.actor_snap, rc, "mm_policy_update");
    if (!p->discrete)
        memcpy(p->upd.logstd_snap, mmi_pol_logstd(p), sizeof(float) * (size_t)p->n_ls);
    return MM_OK;
}

static int run_offpolicy(mm_policy *p, int64_t budget, int32_t *trained, int32_t *done)
{
    int64_t used = 0;
    int rc = MM_OK;
    if (p->pending > 0 && p->rb.size > 0) {
        while (p->pending > 0 && used < budget && rc == MM_OK) {
            rc = p->o.algo == MM_ALGO_SAC ? mmi_sac_update(p) : mmi_ddpg_update(p);
            p->pending--, used++;
        }
        *trained = 1;
    }
    *done = !(p->pending > 0 && p->rb.size > 0);
    if (!*done && !p->upd.active) split_act_rng(p);
    p->upd.active = !*done;
    return rc;
}

/* Ends an on-policy update: the rollout restarts (even after a refused update: its data is
 * spent), act returns to the live actor, and samples drawn while observe was refused are
 * forgotten. */
static void end_onpolicy(mm_policy *p)
{
    p->ro.t = 0;
    p->upd.active = 0;
    mmi_sde_reset(p, -1); /* a rollout starts with fresh gSDE noise (SB3 collect_rollouts) */
    memset(p->slots.pending, 0, (size_t)p->o.n_agents);
}

static int run_onpolicy(mm_policy *p, int64_t budget, int32_t *trained, int32_t *done)
{
    int64_t used = 0;
    int finished = 0, rc = MM_OK;
    *done = 1;
    if (!p->upd.active) {
        if (p->ro.t < p->ro.n_steps) return MM_OK; /* nothing due */
        if (p->o.algo == MM_ALGO_TRPO) {           /* one unit: always finishes here */
            rc = mmi_trpo_update(p);
            p->upd.epochs_run = 1;
            end_onpolicy(p);
            *trained = rc == MM_OK;
            return rc;
        }
        rc = mmi_onpolicy_begin(p);
        if (rc == MM_OK && budget < INT64_MAX) rc = snapshot_actor(p);
        if (rc != MM_OK) {
            end_onpolicy(p);
            return rc;
        }
        split_act_rng(p);
        p->upd.active = 1;
    }
    rc = mmi_onpolicy_steps(p, budget, &used, &finished);
    if (rc != MM_OK || finished) {
        end_onpolicy(p);
        *trained = rc == MM_OK;
        return rc;
    }
    *done = 0;
    return MM_OK;
}

int mm_policy_update_budget(mm_policy *p, int64_t max_minibatches, int32_t *done)
{
    int32_t trained = 0, fin = 1;
    int rc;
    if (done) *done = 0;
    if (!p) return MM_E_INVALID_ARG;
    if (max_minibatches < 1)
        return mmi_fail(&p->err, MM_E_INVALID_ARG,
                        "mm_policy_update_budget: max_minibatches "
                        "must be >= 1, got %lld",
                        (long long)max_minibatches);
    if (p->mem.m) /* act would step the memory core while the update changes it */
        return mmi_fail(&p->err, MM_E_UNSUPPORTED,
                        "mm_policy_update_budget: a policy with a "
                        "memory core trains with mm_policy_update");
    rc = p->offpolicy ? run_offpolicy(p, max_minibatches, &trained, &fin)
                      : run_onpolicy(p, max_minibatches, &trained, &fin);
    mmi_pol_params_stale(p);
    if (done) *done = fin;
    return rc;
}

int mm_policy_update(mm_policy *p, int32_t *did_update)
{
    int32_t trained = 0, fin = 1;
    int rc;
    if (did_update) *did_update = 0;
    if (!p) return MM_E_INVALID_ARG;
    rc = p->offpolicy ? run_offpolicy(p, INT64_MAX, &trained, &fin)
                      : run_onpolicy(p, INT64_MAX, &trained, &fin);
    mmi_pol_params_stale(p); /* the actor and the core were trained */
    if (did_update) *did_update = trained;
    return rc;
}
