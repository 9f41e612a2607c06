/* SPDX-License-Identifier: MIT */
/* algo_sac_discrete.c — soft actor-critic for discrete actions (Christodoulou 2019, "Soft
 * Actor-Critic for Discrete Action Settings", arXiv 1910.07207). The actor emits n logits,
 * pi = softmax; each critic emits Q(s, .) for all n actions. Every expectation over actions is
 * taken exactly (no sampling in the losses). One gradient step on a replay batch
 * (s, a, r, s', d) at alpha = exp(log alpha) read before this step's alpha update:
 *   target   V(s') = sum_a pi(a|s') (min_k Q'_k(s', a) - alpha log pi(a|s')),
 *            y = r + gamma (1 - d) V(s')
 *   critics  L_Q = 1/2 sum_k mean (Q_k(s, a) - y)^2  (the chosen action's output only)
 *   actor    L_pi = mean_s sum_a pi(a|s) (alpha log pi(a|s) - min_k Q_k(s, a)), with the
 *            critics just updated as constants: dL/dz_j = pi_j (f_j - sum_a pi_a f_a) / N
 *            where f_a = alpha log pi_a - min_k Q_k(s, a) (the log pi term's own derivative
 *            sums to zero under pi)
 *   alpha    L_a = -mean log alpha (-H(pi(.|s)) + target_entropy), H detached
 *   targets  Polyak(tau) as the continuous form (mmi_sac_step).
 * Work rows: mmi_sacd_rows (policy_rows.c). */
#include "mmi_policy.h"

#include <math.h>
#include <string.h>

/* CleanRL sac_atari's target_entropy_scale (the paper uses 0.98) times the maximum entropy. */
#define TARGET_ENTROPY_SCALE 0.89

double mmi_sacd_target_entropy(const mm_policy *p)
{
    double t = p->o.target_entropy;
    return isnan(t) ? TARGET_ENTROPY_SCALE * log((double)p->head_dim) : t;
}

static void gather(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim;
    const mmi_obs_rms *rms = p->norm ? &p->rms : NULL;
    mmi_sacd_rows rw = mmi_sacd_rows_of(p, N);
    for (int64_t k = 0; k < N; k++) {
        int64_t i = p->w_idx[k];
        mmi_rms_apply(rms, p->rb.obs + i * od, 1, od, rw.obs + k * od);
        mmi_rms_apply(rms, p->rb.next_obs + i * od, 1, od, rw.next_obs + k * od);
        /* the replay keeps raw rewards: norm_reward scales the batch (as algo_ddpg.c) */
        rw.rd[2 * k] = p->rn.on ? mmi_reward_norm_apply(&p->rn, p->rb.rew[i]) : p->rb.rew[i];
        rw.rd[2 * k + 1] = p->rb.term[i];
    }
}

/* The stored action index of batch row k (observe checked it). */
static int64_t action_of(const mm_policy *p, int64_t k)
{
    int64_t a = (int64_t)p->rb.act[p->w_idx[k]];
    MMI_ASSERT(a >= 0 && a < p->head_dim);
    return a;
}

/* q0 <- min(q0, q1) elementwise over N x n (the twin critics' pessimistic value). */
static void min_into(float *q0, const float *q1, int64_t m)
{
    for (int64_t i = 0; i < m; i++) q0[i] = q1[i] < q0[i] ? q1[i] : q0[i];
}

/* y = r + gamma (1 - d) sum_a pi(a|s') (min Q'(s', a) - alpha log pi(a|s')). */
static int targets(mm_policy *p, int64_t N, double alpha)
{
    int64_t od = p->obs_dim, n = p->head_dim;
    mmi_sacd_rows rw = mmi_sacd_rows_of(p, N);
    float *z = rw.logits, *q = rw.q, *q1 = rw.q2;
    double *rd = rw.rd, *y = rw.y, *pr = p->prob;
    int rc = mmi_sac_fwd(p, p->actor, rw.next_obs, N, od, z, n);
    for (int32_t c = 0; rc == MM_OK && c < p->o.n_critics; c++)
        rc = mmi_sac_fwd(p, p->critic_t[c], rw.next_obs, N, od, c ? q1 : q, n);
    if (rc != MM_OK) return rc;
    if (p->o.n_critics == 2) min_into(q, q1, N * n);
    for (int64_t k = 0; k < N; k++) {
        double lse = mmi_cat_softmax(z + k * n, n, pr), v = 0;
        for (int64_t a = 0; a < n; a++)
            v += pr[a] * ((double)q[k * n + a] - alpha * ((double)z[k * n + a] - lse));
        y[k] = rd[2 * k] + p->o.gamma * (1.0 - rd[2 * k + 1]) * v;
    }
    return MM_OK;
}

/* Critic c: dL/dQ_c(s, .) is (Q_c(s, a_k) - y_k) / N at the chosen action, 0 elsewhere. */
static int critic_step(mm_policy *p, int32_t c, int64_t N, double *loss)
{
    int64_t od = p->obs_dim, n = p->head_dim;
    mmi_sacd_rows rw = mmi_sacd_rows_of(p, N);
    float *q = rw.q, *dq = rw.dq;
    const double *y = rw.y;
    double s = 0, qs = 0;
    int rc = mmi_sac_fwd(p, p->critic[c], rw.obs, N, od, q, n);
    if (rc != MM_OK) return rc;
    memset(dq, 0, sizeof(float) * (size_t)(N * n));
    for (int64_t k = 0; k < N; k++) {
        int64_t a = action_of(p, k);
        double e = (double)q[k * n + a] - y[k];
        s += e * e, qs += q[k * n + a];
        dq[k * n + a] = (float)(e / (double)N);
    }
    *loss += 0.5 * s / (double)N;
    if (c == 0) p->st_q_mean = qs / (double)N;
    rc = mm_model_zero_grad(p->critic[c]);
    if (rc == MM_OK) rc = mm_model_backward(p->critic[c], mmi_pol_view(p, 2, dq, N, n), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->critic[c], rc, "mm_policy_update");
    return mmi_sac_adam(p, p->critic[c], p->o.lr_critic);
}

/* Actor on the exact expectation under pi, then log alpha on the batch's mean entropy. */
static int actor_alpha_step(mm_policy *p, int64_t N, double alpha)
{
    int64_t od = p->obs_dim, n = p->head_dim;
    mmi_sacd_rows rw = mmi_sacd_rows_of(p, N);
    float *z = rw.logits, *mq = rw.q, *q1 = rw.q2, *dz = rw.dlogits;
    double *pr = p->prob, loss = 0, ent = 0;
    int rc = MM_OK;
    for (int32_t c = 0; rc == MM_OK && c < p->o.n_critics; c++)
        rc = mmi_sac_fwd(p, p->critic[c], rw.obs, N, od, c ? q1 : mq, n);
    if (rc == MM_OK) rc = mmi_sac_fwd(p, p->actor, rw.obs, N, od, z, n);
    if (rc != MM_OK) return rc;
    if (p->o.n_critics == 2) min_into(mq, q1, N * n);
    for (int64_t k = 0; k < N; k++) {
        const float *zk = z + k * n, *qk = mq + k * n;
        double lse = mmi_cat_softmax(zk, n, pr), fbar = 0;
        for (int64_t a = 0; a < n; a++) {
            double lp = (double)zk[a] - lse;
            fbar += pr[a] * (alpha * lp - (double)qk[a]);
            ent -= pr[a] * lp;
        }
        loss += fbar;
        for (int64_t a = 0; a < n; a++) {
            double f = alpha * ((double)zk[a] - lse) - (double)qk[a];
            dz[k * n + a] = (float)(pr[a] * (f - fbar) / (double)N);
        }
    }
    p->st_actor_loss = loss / (double)N, p->st_entropy = ent / (double)N;
    rc = mm_model_zero_grad(p->actor);
    if (rc == MM_OK) rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, dz, N, n), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    if ((rc = mmi_sac_adam(p, p->actor, p->o.lr_actor)) != MM_OK) return rc;
    /* dL_a / dlog alpha = -(E[log pi] + target) = H - target, averaged over the batch */
    return mmi_sac_alpha_step(p, p->st_entropy - mmi_sacd_target_entropy(p));
}

int mmi_sacd_step(mm_policy *p, int64_t N, double alpha)
{
    double loss = 0;
    int rc;
    gather(p, N);
    if ((rc = targets(p, N, alpha)) != MM_OK) return rc;
    for (int32_t c = 0; c < p->o.n_critics; c++)
        if ((rc = critic_step(p, c, N, &loss)) != MM_OK) return rc;
    p->st_critic_loss = loss;
    return actor_alpha_step(p, N, alpha);
}
