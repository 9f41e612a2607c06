/* SPDX-License-Identifier: MIT */
/* algo_ddpg.c — one DDPG / TD3 gradient step (docs/RL.md §Formulas, SB3 td3.py ordering):
 *   y = r + gamma (1 - terminated) min_k Q'_k(s', clip(mu'(s') + clip(eps, +-c), +-1))
 *   critics: MSE(Q_k(s, a), y), one Adam step each (the sum of the losses, as SB3's single
 *   optimizer over both critics: Adam is per parameter);
 *   every policy_delay-th step: actor loss -mean Q_1(s, mu(s)) with the critic frozen (the
 *   gradient reaches only the actor through dQ/da), then Polyak on every target.
 * DDPG is the same with one critic, delay 1 and no target noise (SB3 ddpg.py). */
#include "mmi_policy.h"

#include <string.h>

/* Letters: N batch_size, od obs_dim, ad act_dim, w = od + ad (critic input [s, a]), k row. */

/* Gathers the batch: s, s', [s, a], and r, d (mmi_ddpg_rows). */
static void gather(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    const mmi_obs_rms *rms = p->norm ? &p->rms : NULL;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    double *rd = rw.rd;
    mmi_replay_sample(&p->rb, &p->rng, N, p->w_idx);
    for (int64_t k = 0; k < N; k++) {
        int64_t i = p->w_idx[k];
        mmi_rms_apply(rms, p->rb.obs + i * od, 1, od, rw.obs + k * od);
        mmi_rms_apply(rms, p->rb.next_obs + i * od, 1, od, rw.next_obs + k * od);
        memcpy(rw.obs_act + k * w, rw.obs + k * od, sizeof(float) * (size_t)od);
        memcpy(rw.obs_act + k * w + od, p->rb.act + i * ad, sizeof(float) * (size_t)ad);
        rd[2 * k] = p->rn.on ? mmi_reward_norm_apply(&p->rn, p->rb.rew[i]) : p->rb.rew[i];
        rd[2 * k + 1] = p->rb.term[i];
    }
}

static int fwd(mm_policy *p, mm_model *m, float *x, int64_t rows, int64_t in, float *y, int64_t out)
{
    int rc = mm_model_forward(m, mmi_pol_view(p, 0, x, rows, in), mmi_pol_view(p, 1, y, rows, out));
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, m, rc, "mm_policy_update");
}

/* Bellman targets y [N] from s'. */
static int targets(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *a2 = rw.target_act, *x2 = rw.target_in, *q = rw.q;
    double *rd = rw.rd, *y = rw.y, c = p->o.target_noise_clip;
    int rc = fwd(p, p->actor_t, rw.next_obs, N, od, a2, ad);
    if (rc != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) {
        memcpy(x2 + k * w, rw.next_obs + k * od, sizeof(float) * (size_t)od);
        for (int64_t j = 0; j < ad; j++) {
            double v = a2[k * ad + j];
            if (p->o.target_noise > 0) { /* clip the noise first, then the action, as SB3 */
                double eps = p->o.target_noise * mmi_rng_normal(&p->rng);
                v += eps < -c ? -c : (eps > c ? c : eps);
                v = v < -1 ? -1 : (v > 1 ? 1 : v);
            }
            x2[k * w + od + j] = (float)v;
        }
    }
    for (int32_t c2 = 0; c2 < p->o.n_critics; c2++) {
        if ((rc = fwd(p, p->critic_t[c2], x2, N, w, q, 1)) != MM_OK) return rc;
        for (int64_t k = 0; k < N; k++)
            if (c2 == 0 || q[k] < y[k]) y[k] = q[k]; /* min over the twin targets */
    }
    for (int64_t k = 0; k < N; k++) y[k] = rd[2 * k] + p->o.gamma * (1.0 - rd[2 * k + 1]) * y[k];
    return MM_OK;
}

static int critic_step(mm_policy *p, int32_t c, int64_t N, double *loss)
{
    int64_t w = p->obs_dim + p->act_dim;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *q = rw.q, *dy = rw.dq;
    const double *y = rw.y;
    double s = 0, qs = 0;
    int rc = fwd(p, p->critic[c], rw.obs_act, N, w, q, 1);
    if (rc != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) {
        double d = (double)q[k] - y[k];
        s += d * d, qs += q[k];
        dy[k] = (float)(2.0 * d / (double)N);
    }
    *loss += s / (double)N;
    if (c == 0) p->st_q_mean = qs / (double)N;
    rc = mm_model_zero_grad(p->critic[c]);
    if (rc == MM_OK) rc = mm_model_backward(p->critic[c], mmi_pol_view(p, 2, dy, N, 1), NULL);
    if (rc == MM_OK) rc = mm_model_set_f64(p->critic[c], MM_MODEL_LR, p->o.lr_critic);
    if (rc == MM_OK && p->comm && (rc = mmi_pol_comm_average(p, &p->critic[c], 1)) != MM_OK)
        return rc; /* gradients averaged over ranks */
    if (rc == MM_OK) rc = mm_model_step(p->critic[c]);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->critic[c], rc, "mm_policy_update");
}

/* Actor: maximise Q_1(s, mu(s)); the critic is frozen so its backward only yields dQ/da. */
static int actor_step(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *mu = rw.mu, *x = rw.obs_act, *q = rw.q, *dq = rw.dq, *dx = rw.dx, *da = rw.da;
    mm_model *cr = p->critic[0];
    int32_t nl = 0;
    double s = 0;
    int rc = fwd(p, p->actor, rw.obs, N, od, mu, ad);
    if (rc != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) memcpy(x + k * w + od, mu + k * ad, sizeof(float) * (size_t)ad);
    if ((rc = fwd(p, cr, x, N, w, q, 1)) != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) s += q[k], dq[k] = (float)(-1.0 / (double)N);
    p->st_actor_loss = -s / (double)N;
    rc = mm_model_num_layers(cr, &nl);
    if (rc == MM_OK) rc = mm_model_freeze(cr, 0, nl, 1);
    if (rc == MM_OK)
        rc = mm_model_backward(cr, mmi_pol_view(p, 2, dq, N, 1), mmi_pol_view(p, 3, dx, N, w));
    if (rc == MM_OK) rc = mm_model_freeze(cr, 0, nl, 0);
    if (rc != MM_OK) return mmi_pol_model_fail(p, cr, rc, "mm_policy_update");
    for (int64_t k = 0; k < N; k++)
        memcpy(da + k * ad, dx + k * w + od, sizeof(float) * (size_t)ad);
    /* the actor's saved forward is still the one above (the critic has its own arena) */
    rc = mm_model_zero_grad(p->actor);
    if (rc == MM_OK) rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, da, N, ad), NULL);
    if (rc == MM_OK) rc = mm_model_set_f64(p->actor, MM_MODEL_LR, p->o.lr_actor);
    if (rc == MM_OK && p->comm && (rc = mmi_pol_comm_average(p, &p->actor, 1)) != MM_OK)
        return rc; /* gradients averaged over ranks */
    if (rc == MM_OK) rc = mm_model_step(p->actor);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
}

static int polyak(mm_policy *p)
{
    int rc = mm_model_lerp(p->actor_t, p->actor, p->o.tau);
    for (int32_t c = 0; rc == MM_OK && c < p->o.n_critics; c++)
        rc = mm_model_lerp(p->critic_t[c], p->critic[c], p->o.tau);
    return rc == MM_OK ? rc : mmi_fail(&p->err, rc, "mm_policy_update: target update failed");
}

int mmi_ddpg_update(mm_policy *p)
{
    int64_t N = p->o.batch_size;
    double loss = 0;
    int rc;
    gather(p, N);
    if ((rc = targets(p, N)) != MM_OK) return rc;
    for (int32_t c = 0; c < p->o.n_critics; c++)
        if ((rc = critic_step(p, c, N, &loss)) != MM_OK) return rc;
    p->st_critic_loss = loss;
    p->n_updates = mmi_count_add(p->n_updates, 1);
    if (p->n_updates % p->o.policy_delay != 0) return MM_OK;
    if ((rc = actor_step(p, N)) != MM_OK) return rc;
    return polyak(p);
}
