/* SPDX-License-Identifier: MIT */
/* policy_observe.c — mm_policy_observe: validates a batch of transitions (refusing NaN/Inf
 * before anything is stored), folds observations into the running statistics, then stores
 * them in the replay buffer (off-policy) or as one rollout row (on-policy, with log pi(a|s),
 * V(s) and the truncation bootstrap r += gamma V(final obs), docs/RL.md §Formulas). With
 * norm_reward the rewards are scaled first (reward_norm.c). On-policy observe refuses while a
 * budgeted update trains on the rollout, and actions whose exploring sample was replaced (act
 * slots). With a memory core the rollout also keeps each row's state before the step, and an
 * agent's memory is reset when its episode ends. */
#include "mmi_policy.h"

#include <math.h>
#include <string.h>

/* Letters: n agents of the call, od obs_dim, ad = d act_dim, row = t x n its first rollout row. */

static int check_observe(mm_policy *p, const float *obs, const float *actions, const float *rewards,
                         const float *next_obs, const uint8_t *term, const uint8_t *trunc,
                         int64_t n, const char *fn)
{
    int64_t od = p->obs_dim, ad = p->act_dim;
    if (!obs || !actions || !rewards || !next_obs || !term || !trunc)
        return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: NULL buffer", fn);
    if (n < 1 || n > p->o.n_agents)
        return mmi_fail(&p->err, MM_E_RANGE,
                        "%s: n = %lld; the policy was created for 1..%lld "
                        "agents",
                        fn, (long long)n, (long long)p->o.n_agents);
    if (!p->offpolicy && n != p->o.n_agents)
        return mmi_fail(&p->err, MM_E_SHAPE,
                        "%s: on-policy rollouts take all %lld agents per "
                        "call, got %lld",
                        fn, (long long)p->o.n_agents, (long long)n);
    if (!p->offpolicy && p->ro.t >= p->ro.n_steps)
        return mmi_fail(&p->err, MM_E_STATE, "%s: the rollout is full; call mm_policy_update", fn);
    if (!mmi_all_finite(obs, n * od) || !mmi_all_finite(next_obs, n * od) ||
        !mmi_all_finite(rewards, n) || !mmi_all_finite(actions, n * ad))
        return mmi_fail(&p->err, MM_E_NUMERIC,
                        "%s: NaN or Inf in obs, actions, rewards or "
                        "next_obs; nothing stored",
                        fn);
    for (int64_t i = 0; p->discrete && i < n; i++)
        if (!(actions[i] >= 0 && actions[i] < (float)p->head_dim) ||
            actions[i] != floorf(actions[i]))
            return mmi_fail(&p->err, MM_E_RANGE,
                            "%s: action %g of agent %lld is not an index "
                            "in [0, %lld)",
                            fn, (double)actions[i], (long long)i, (long long)p->head_dim);
    for (int64_t i = 0; i < n; i++)
        if (term[i] > 1 || trunc[i] > 1)
            return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: terminated/truncated must be 0 or 1",
                            fn);
    return MM_OK;
}

static void observe_offpolicy(mm_policy *p, const float *obs, const float *actions,
                              const float *rewards, const float *next_obs, const uint8_t *term,
                              const uint8_t *trunc, int64_t n)
{
    int64_t od = p->obs_dim, ad = p->act_dim;
    float *a = mmi_observe_rows_of(p).act;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; p->discrete && j < ad; j++) a[j] = actions[i]; /* the index */
        for (int64_t j = 0; !p->discrete && j < ad; j++) { /* continuous: held in [-1, 1] */
            float lo = p->low[j], hi = p->high[j];
            float y = 2.0f * (actions[i * ad + j] - lo) / (hi - lo) - 1.0f;
            a[j] = y < -1.0f ? -1.0f : (y > 1.0f ? 1.0f : y);
        }
        mmi_replay_add(&p->rb, obs + i * od, a, rewards[i], next_obs + i * od,
                       term[i] ? 1.0f : 0.0f);
        if (term[i] || trunc[i]) mmi_noise_reset(p, i);
    }
    p->steps = mmi_count_add(p->steps, n);
    p->calls = mmi_count_add(p->calls, 1);
    p->calls_since_train = mmi_count_add(p->calls_since_train, 1);
    /* SB3: train every train_freq env steps once more than learning_starts were collected */
    if (p->calls_since_train >= p->o.train_freq && p->steps > p->o.learning_starts) {
        p->pending = mmi_count_add(p->pending, p->o.gradient_steps);
        p->calls_since_train = 0;
    }
}

/* The raw Gaussian sample of agent i if actions[i] is what its last act returned, else
 * actions[i] (a host-chosen action). */
static const float *raw_action(const mm_policy *p, const float *actions, int64_t i)
{
    int64_t d = p->act_dim;
    if (!p->discrete &&
        memcmp(actions + i * d, p->slots.out + i * d, sizeof(float) * (size_t)d) == 0)
        return p->slots.raw + i * d;
    return actions + i * d;
}

/* Refuses actions that come from an exploring act whose sample a later exploring act replaced:
 * the raw sample is gone, and storing the clipped action would bias log pi silently. */
static int check_samples(mm_policy *p, const float *actions, int64_t n, const char *fn)
{
    int64_t d = p->act_dim;
    for (int64_t i = 0; !p->discrete && i < n; i++)
        if (p->slots.pending[i] > 1 &&
            memcmp(actions + i * d, p->slots.out + i * d, sizeof(float) * (size_t)d) != 0)
            return mmi_fail(&p->err, MM_E_STATE,
                            "%s: agent %lld's action is not the one its "
                            "last exploring act returned, and that act replaced an earlier "
                            "unobserved sample; call observe once per exploring act",
                            fn, (long long)i);
    return MM_OK;
}

/* Value of n rows of normalised x for the truncation bootstrap: V(s) (or, for QAC, the
 * expected Q under pi: sum_a pi(a|s) q(s, a)). */
static int values(mm_policy *p, const float *x, int64_t n, float *v, const char *fn)
{
    if (p->mem.m) { /* V of the step the memory would take on x */
        mmi_mem_peek(p, x, n, p->mem.feat);
        return mmi_v_forward(p, p->mem.feat, n, v, fn);
    }
    if (p->vf) return mmi_v_forward(p, x, n, v, fn);
    mmi_observe_rows rw = mmi_observe_rows_of(p);
    float *q = rw.q, *z = rw.logits;
    double *prob = p->prob;
    int64_t k = p->head_dim;
    int rc = mm_model_forward(p->critic[0], mmi_pol_view(p, 0, (float *)x, n, p->obs_dim),
                              mmi_pol_view(p, 1, q, n, k));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->critic[0], rc, fn);
    if ((rc = mmi_pi_forward(p, x, n, z, fn)) != MM_OK) return rc;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        mmi_cat_softmax(z + i * k, k, prob);
        for (int64_t j = 0; j < k; j++) s += prob[j] * q[i * k + j];
        v[i] = (float)s;
    }
    return MM_OK;
}

static int observe_onpolicy(mm_policy *p, const float *actions, const float *rewards,
                            const float *next_obs, const uint8_t *term, const uint8_t *trunc,
                            int64_t n, const char *fn)
{
    mmi_rollout *r = &p->ro;
    int64_t od = p->obs_dim, ad = p->act_dim, row = r->t * n;
    mmi_observe_rows ow = mmi_observe_rows_of(p);
    float *x = r->obs + row * od, *a = r->act + row * ad, *head = ow.head, *vb = ow.boot;
    int rc, any_trunc = 0;
    for (int64_t i = 0; i < n; i++) {
        memcpy(a + i * ad, raw_action(p, actions, i), sizeof(float) * (size_t)ad);
        p->slots.pending[i] = 0;
    }
    if (p->mem.m) { /* the networks saw [x, memory output of the act]; keep its start state */
        int64_t n2 = 2 * p->mem.N;
        memcpy(p->mem.ro_h0 + row * n2, p->mem.prev, sizeof(float) * (size_t)(n * n2));
        mmi_mem_feat_last(p, x, n, p->mem.dfv); /* dfv: free outside an update */
        memset(p->mem.acted, 0, (size_t)n);
        x = p->mem.dfv;
    }
    if ((rc = mmi_pi_forward(p, x, n, head, fn)) != MM_OK) return rc;
    mmi_pi_logp(p, head, a, n, r->logp + row);
    if (p->vf && (rc = mmi_v_forward(p, x, n, r->val + row, fn)) != MM_OK) return rc;
    mmi_rms_apply(p->norm ? &p->rms : NULL, next_obs, n, od, r->last_obs);
    for (int64_t i = 0; i < n; i++) any_trunc |= trunc[i] && !term[i];
    if (any_trunc && (rc = values(p, r->last_obs, n, vb, fn)) != MM_OK) return rc;
    for (int64_t i = 0; i < n; i++) {
        double rw = rewards[i];
        if (trunc[i] && !term[i]) rw += p->o.gamma * vb[i]; /* bootstrap through the cut */
        r->rew[row + i] = (float)rw;
        r->done[row + i] = (term[i] || trunc[i]) ? 1.0f : 0.0f;
        if (term[i] || trunc[i]) { /* the next episode starts afresh */
            mmi_mem_reset(p, i);
            mmi_sde_reset(p, i);
        }
    }
    r->t++;
    p->steps = mmi_count_add(p->steps, n);
    p->calls = mmi_count_add(p->calls, 1);
    return MM_OK;
}

int mm_policy_observe(mm_policy *p, const float *obs, const float *actions, const float *rewards,
                      const float *next_obs, const uint8_t *terminated, const uint8_t *truncated,
                      int64_t n)
{
    static const char fn[] = "mm_policy_observe";
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if (!p->offpolicy && p->upd.active)
        return mmi_fail(&p->err, MM_E_STATE,
                        "%s: an update spread by mm_policy_update_budget "
                        "is training on the rollout; nothing stored until it completes",
                        fn);
    rc = check_observe(p, obs, actions, rewards, next_obs, terminated, truncated, n, fn);
    if (rc == MM_OK && !p->offpolicy) rc = check_samples(p, actions, n, fn);
    for (int64_t i = 0; rc == MM_OK && p->mem.m && i < n; i++)
        if (!p->mem.acted[i])
            rc = mmi_fail(&p->err, MM_E_STATE,
                          "%s: agent %lld has not acted since its last "
                          "observe; with a memory core each observed step needs its act (the "
                          "step's memory state)",
                          fn, (long long)i);
    if (rc != MM_OK) return rc;
    if (p->rn.on && !p->offpolicy) { /* on-policy rollouts store the scaled rewards (SB3) */
        mmi_reward_norm_observe(&p->rn, rewards, terminated, truncated, n, p->o.gamma,
                                p->rn.scaled);
        rewards = p->rn.scaled;
    } else if (p->rn.on) { /* the replay keeps raw rewards, scaled when sampled */
        mmi_reward_norm_observe(&p->rn, rewards, terminated, truncated, n, p->o.gamma, NULL);
    }
    if (p->offpolicy) {
        if (p->norm) mmi_rms_update(&p->rms, obs, n, p->rms_work);
        observe_offpolicy(p, obs, actions, rewards, next_obs, terminated, truncated, n);
        return MM_OK;
    }
    /* the rollout stores observations normalised with the statistics they were acted on */
    mmi_rms_apply(p->norm ? &p->rms : NULL, obs, n, p->obs_dim,
                  p->ro.obs + p->ro.t * n * p->obs_dim);
    if (p->norm) mmi_rms_update(&p->rms, obs, n, p->rms_work);
    return observe_onpolicy(p, actions, rewards, next_obs, terminated, truncated, n, fn);
}
