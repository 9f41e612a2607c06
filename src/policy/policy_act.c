/* SPDX-License-Identifier: MIT */
/* policy_act.c — mm_policy_act: one batched forward of the actor for n agents, then
 * exploration (noise, warm-up uniform actions or sampling) and the map to the environment's
 * units. With a memory core the actor sees [observation, memory output] (memory.c). Never
 * allocates: inputs go through tensor views over reserved work rows. */
#include "mmi_policy.h"

#include <float.h>
#include <math.h>

/* Letters: n agents of the call, d act_dim, k head_dim (logits of a discrete policy). */

static int check_act(mm_policy *p, const float *obs, int64_t n, const float *actions,
                     int32_t explore, const char *fn)
{
    if (!obs || !actions) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: NULL buffer", fn);
    if (explore != 0 && explore != 1)
        return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: explore must be 0 or 1", fn);
    if (n < 1 || n > p->o.n_agents)
        return mmi_fail(&p->err, MM_E_RANGE,
                        "%s: n = %lld agents; the policy was created for "
                        "1..%lld",
                        fn, (long long)n, (long long)p->o.n_agents);
    if (!mmi_all_finite(obs, n * p->obs_dim))
        return mmi_fail(&p->err, MM_E_NUMERIC, "%s: obs holds NaN or Inf", fn);
    return MM_OK;
}

/* The actor's output before it becomes actions: a NaN or Inf there (parameters that overflow,
 * a diverged memory core) would reach the caller as NaN actions, or as a garbage index drawn
 * from NaN logits, with MM_OK. Refused before any action or act slot is written. */
static int check_out(mm_policy *p, const float *v, int64_t count)
{
    if (mmi_all_finite(v, count)) return MM_OK;
    return mmi_fail(&p->err, MM_E_NUMERIC,
                    "mm_policy_act: the actor's output holds NaN or Inf (its parameters or the "
                    "observation statistics are out of range); no action was written");
}

/* y in [-1, 1] -> low + (y + 1) (high - low) / 2 */
static void unscale(const mm_policy *p, const float *y, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p->act_dim; j++) {
            float lo = p->low[j], hi = p->high[j];
            out[i * p->act_dim + j] = lo + (y[i * p->act_dim + j] + 1.0f) * 0.5f * (hi - lo);
        }
}

static float sample_categorical(mm_policy *p, const float *z, int32_t explore);

/* Discrete SAC: uniform indices in the warm-up, then a draw from (or the argmax of) the
 * actor's logits. */
static int act_discrete_sac(mm_policy *p, const float *x, int64_t n, float *actions,
                            int32_t explore)
{
    float *z = mmi_act_rows_of(p).y;
    int rc;
    if (explore && p->steps < p->o.learning_starts) {
        for (int64_t i = 0; i < n; i++) {
            double u = mmi_rng_uniform(mmi_pol_act_rng(p)) * (double)p->head_dim;
            actions[i] = (float)(u < (double)p->head_dim ? (int64_t)u : p->head_dim - 1);
        }
        return MM_OK;
    }
    rc = mm_model_forward(p->actor, mmi_pol_view(p, 0, (float *)x, n, p->obs_dim),
                          mmi_pol_view(p, 1, z, n, p->head_dim));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_act");
    if ((rc = check_out(p, z, n * p->head_dim)) != MM_OK) return rc;
    for (int64_t i = 0; i < n; i++)
        actions[i] = sample_categorical(p, z + i * p->head_dim, explore);
    return MM_OK;
}

static int act_offpolicy(mm_policy *p, const float *x, int64_t n, float *actions, int32_t explore)
{
    float *y = mmi_act_rows_of(p).y;
    if (p->discrete) return act_discrete_sac(p, x, n, actions, explore);
    if (explore && p->steps < p->o.learning_starts) { /* warm-up: uniform over the box */
        for (int64_t i = 0; i < n * p->act_dim; i++)
            y[i] = (float)(2.0 * mmi_rng_uniform(mmi_pol_act_rng(p)) - 1.0);
    } else if (p->o.algo == MM_ALGO_SAC) { /* the squashed Gaussian is its own exploration */
        int rc = mmi_sac_act(p, x, n, y, explore);
        if (rc != MM_OK || (rc = check_out(p, y, n * p->act_dim)) != MM_OK) return rc;
    } else {
        int rc = mm_model_forward(p->actor, mmi_pol_view(p, 0, (float *)x, n, p->obs_dim),
                                  mmi_pol_view(p, 1, y, n, p->act_dim));
        if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_act");
        if ((rc = check_out(p, y, n * p->act_dim)) != MM_OK) return rc;
        if (explore) mmi_noise_apply(p, y, n);
    }
    unscale(p, y, n, actions);
    return MM_OK;
}

static float sample_categorical(mm_policy *p, const float *z, int32_t explore)
{
    int64_t k = p->head_dim, best = 0;
    double *prob = p->prob, u, c = 0;
    if (!explore) {
        for (int64_t j = 1; j < k; j++) best = z[j] > z[best] ? j : best;
        return (float)best;
    }
    mmi_cat_softmax(z, k, prob);
    u = mmi_rng_uniform(mmi_pol_act_rng(p));
    for (int64_t j = 0; j < k; j++) {
        c += prob[j];
        if (u < c) return (float)j;
    }
    return (float)(k - 1); /* rounding left u above the last partial sum */
}

/* gSDE noise of agent i: phi . W_i, W_i drawn again when due (sde.c). */
static void sde_noise(mm_policy *p, int64_t i, const float *phi, const float *ls, double *eps)
{
    int64_t F = p->sde.F, d = p->act_dim;
    const float *w;
    if (p->sde.left[i] == 0) {
        mmi_sde_draw(p, i, ls);
        p->sde.left[i] = p->o.sde_sample_freq > 0 ? p->o.sde_sample_freq : -1;
    }
    if (p->sde.left[i] > 0) p->sde.left[i]--;
    w = p->sde.W + i * F * d;
    for (int64_t k = 0; k < d; k++) eps[k] = 0.0;
    for (int64_t j = 0; j < F; j++)
        for (int64_t k = 0; k < d && phi[j] != 0.0f; k++) eps[k] += (double)phi[j] * w[j * d + k];
}

/* A memory core's step is kept only once the act has succeeded: an actor output or a sample
 * that is refused after the step leaves every agent's memory as it was (mm.h). */
static int commit_memory(mm_policy *p, int64_t n)
{
    if (p->mem.m) mmi_mem_commit(p, n);
    return MM_OK;
}

static int act_onpolicy(mm_policy *p, const float *x, int64_t n, float *actions, int32_t explore)
{
    float *head = mmi_act_rows_of(p).head;
    const float *ls = NULL;
    int rc;
    if (p->mem.m) { /* every act advances the agents' memory by one step (commit_memory) */
        if (mmi_mem_act(p, x, n, p->mem.feat) != MM_OK)
            return mmi_fail(&p->err, MM_E_NUMERIC,
                            "mm_policy_act: the memory core's step overflowed (NaN or Inf in "
                            "its state); every agent's memory is left as it was");
        x = p->mem.feat;
    }
    rc = mmi_pi_forward_act(p, x, n, head, &ls);
    int64_t d = p->act_dim;
    mmi_act_slots *s = &p->slots;
    if (rc != MM_OK || (rc = check_out(p, head, n * p->head_dim)) != MM_OK) return rc;
    if (p->discrete) {
        for (int64_t i = 0; i < n; i++)
            actions[i] = sample_categorical(p, head + i * p->head_dim, explore);
        return commit_memory(p, n);
    }
    /* gSDE reads the features of the network that just ran (snapshot while updating) */
    const float *phi =
        p->sde.F && explore ? mmi_sde_phi(p->upd.active ? p->upd.actor_snap : p->actor) : NULL;
    double *eps = p->sde.S; /* one row of gSDE noise; S is free during act */
    int finite = 1;
    for (int64_t i = 0; i < n && explore; i++) { /* the raw samples, in place of the means */
        if (phi) sde_noise(p, i, phi + i * p->sde.F, ls, eps);
        for (int64_t j = 0; j < d; j++) {
            float mu = head[i * d + j], v;
            if (phi)
                v = (float)(mu + eps[j]);
            else
                v = (float)(mu + exp((double)ls[j]) * mmi_rng_normal(mmi_pol_act_rng(p)));
            finite &= fabsf(v) <= FLT_MAX;
            head[i * d + j] = v;
        }
    }
    /* A sample beyond float range (a log std or noise that overflows) would be stored as the
     * raw sample observe trains on, and the checkpoint loader refuses it (fuzz_config, TRPO):
     * refused before any action or act slot is written. */
    if (!finite)
        return mmi_fail(&p->err, MM_E_NUMERIC,
                        "mm_policy_act: an exploring sample overflowed (NaN or Inf: the log "
                        "std or the noise is out of range); no action was written");
    for (int64_t i = 0; i < n; i++) {
        /* The env gets the clipped action; observe recovers the raw sample from agent i's slot.
         * A deterministic act (rendering, evaluation) never replaces an exploring sample that
         * is still waiting for its observe. */
        int keep = explore || s->pending[i] == 0;
        for (int64_t j = 0; j < d; j++) {
            float a = head[i * d + j], lo = p->low[j], hi = p->high[j];
            if (keep) s->raw[i * d + j] = a;
            a = a < lo ? lo : (a > hi ? hi : a);
            if (keep) s->out[i * d + j] = a;
            actions[i * d + j] = a;
        }
        if (explore && s->pending[i] < 2) s->pending[i]++;
    }
    return commit_memory(p, n);
}

int mm_policy_act(mm_policy *p, const float *obs, int64_t n, float *actions, int32_t explore)
{
    static const char fn[] = "mm_policy_act";
    float *x;
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if ((rc = check_act(p, obs, n, actions, explore, fn)) != MM_OK) return rc;
    x = mmi_act_rows_of(p).obs;
    mmi_rms_apply(p->norm ? &p->rms : NULL, obs, n, p->obs_dim, x);
    return p->offpolicy ? act_offpolicy(p, x, n, actions, explore)
                        : act_onpolicy(p, x, n, actions, explore);
}
