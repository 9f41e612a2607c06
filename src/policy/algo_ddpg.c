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
    int rc = mmi_pol_fwd_at(p, 0, m, x, rows, in, y, out);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, m, rc, "mm_policy_update");
}

/* The work of one step, shared by its pieces (mmi_pol_each). */
typedef struct step_ctx {
    int64_t N;
    double loss[2], q_mean;
} step_ctx;

/* Piece 0: mu'(s') by the target actor; piece 1 (when the actor steps): mu(s) by the actor,
 * whose backward in the actor step uses this forward (nothing else runs the actor before it). */
static int actors_fwd(mm_policy *p, void *ctx, int32_t k, mm_model **failed)
{
    const step_ctx *c = (const step_ctx *)ctx;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, c->N);
    mm_model *m = k == 0 ? p->actor_t : p->actor;
    int rc = mmi_pol_fwd_at(p, 3 * k, m, k == 0 ? rw.next_obs : rw.obs, c->N, p->obs_dim,
                            k == 0 ? rw.target_act : rw.mu, p->act_dim);
    if (rc != MM_OK) *failed = m;
    return rc;
}

/* Piece k: Q'_k(s', a') into q + k N. */
static int target_q(mm_policy *p, void *ctx, int32_t k, mm_model **failed)
{
    const step_ctx *c = (const step_ctx *)ctx;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, c->N);
    int64_t N = c->N;
    int rc = mmi_pol_fwd_at(p, 3 * k, p->critic_t[k], rw.target_in, N, p->obs_dim + p->act_dim,
                            rw.q + k * N, 1);
    if (rc != MM_OK) *failed = p->critic_t[k];
    return rc;
}

/* Bellman targets y [N] from s' and mu'(s') (in target_act). */
static int targets(mm_policy *p, step_ctx *sc)
{
    int64_t N = sc->N, od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *a2 = rw.target_act, *x2 = rw.target_in, *q = rw.q;
    double *rd = rw.rd, *y = rw.y, c = p->o.target_noise_clip;
    int rc;
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
    rc = mmi_pol_each(p, p->critic_t, p->o.n_critics, target_q, sc, p->o.n_critics);
    if (rc != MM_OK) return rc;
    for (int32_t c2 = 0; c2 < p->o.n_critics; c2++)
        for (int64_t k = 0; k < N; k++)
            if (c2 == 0 || q[c2 * N + k] < y[k]) y[k] = q[c2 * N + k]; /* min over the twins */
    for (int64_t k = 0; k < N; k++) y[k] = rd[2 * k] + p->o.gamma * (1.0 - rd[2 * k + 1]) * y[k];
    return MM_OK;
}

/* Piece c: critic c's MSE step toward y (forward, backward, Adam), its loss into loss[c]. */
static int critic_step(mm_policy *p, void *ctx, int32_t c, mm_model **failed)
{
    step_ctx *sc = (step_ctx *)ctx;
    int64_t N = sc->N, w = p->obs_dim + p->act_dim;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *q = rw.q + c * N, *dy = rw.dq + c * N;
    const double *y = rw.y;
    mm_model *m = p->critic[c];
    double s = 0, qs = 0;
    int rc = mmi_pol_fwd_at(p, 3 * c, m, rw.obs_act, N, w, q, 1);
    if (rc == MM_OK) {
        for (int64_t k = 0; k < N; k++) {
            double d = (double)q[k] - y[k];
            s += d * d, qs += q[k];
            dy[k] = (float)(2.0 * d / (double)N);
        }
        sc->loss[c] = s / (double)N;
        if (c == 0) sc->q_mean = qs / (double)N;
        return mmi_pol_critic_adam(p, c, 3 * c + 2, dy, N, failed);
    }
    *failed = m;
    return rc;
}

/* Actor: maximise Q_1(s, mu(s)) with mu(s) formed beside the targets; the critic is frozen so
 * its backward only yields dQ/da. */
static int actor_step(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_ddpg_rows rw = mmi_ddpg_rows_of(p, N);
    float *mu = rw.mu, *x = rw.obs_act, *q = rw.q, *dq = rw.dq, *dx = rw.dx, *da = rw.da;
    mm_model *cr = p->critic[0];
    int32_t nl = 0;
    double s = 0;
    int rc;
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
    /* the actor's saved forward is still that of mu(s) (the critic has its own arena) */
    rc = mm_model_zero_grad(p->actor);
    if (rc == MM_OK) rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, da, N, ad), NULL);
    if (rc == MM_OK) rc = mm_model_set_f64(p->actor, MM_MODEL_LR, p->o.lr_actor);
    if (rc == MM_OK && p->comm && (rc = mmi_pol_comm_average(p, &p->actor, 1)) != MM_OK)
        return rc; /* gradients averaged over ranks */
    if (rc == MM_OK) rc = mm_model_step(p->actor);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
}

int mmi_ddpg_update(mm_policy *p)
{
    mm_model *const actors[2] = {p->actor_t, p->actor};
    mm_model *dst[3], *src[3];
    step_ctx sc;
    int64_t N = p->o.batch_size;
    int32_t nc = p->o.n_critics;
    /* whether this step ends with the actor's (n_updates counts it only after the critics) */
    int actor_due = mmi_count_add(p->n_updates, 1) % p->o.policy_delay == 0;
    int rc;
    sc.N = N, sc.loss[0] = sc.loss[1] = 0, sc.q_mean = 0;
    gather(p, N);
    if ((rc = mmi_pol_each(p, actors, 2, actors_fwd, &sc, actor_due ? 2 : 1)) != MM_OK) return rc;
    if ((rc = targets(p, &sc)) != MM_OK) return rc;
    if ((rc = mmi_pol_each(p, p->critic, nc, critic_step, &sc, nc)) != MM_OK) return rc;
    p->st_q_mean = sc.q_mean;
    p->st_critic_loss = 0;
    for (int32_t c = 0; c < nc; c++) p->st_critic_loss += sc.loss[c];
    p->n_updates = mmi_count_add(p->n_updates, 1);
    if (!actor_due) return MM_OK;
    if ((rc = actor_step(p, N)) != MM_OK) return rc;
    dst[0] = p->actor_t, src[0] = p->actor;
    for (int32_t c = 0; c < nc; c++) dst[1 + c] = p->critic_t[c], src[1 + c] = p->critic[c];
    return mmi_pol_polyak(p, dst, src, 1 + nc, p->o.tau);
}
