/* SPDX-License-Identifier: MIT */
/* algo_onpolicy.c — A2C, QAC and PPO updates on a full rollout (docs/RL.md §Formulas).
 *   A2C: one gradient step on the whole rollout: -mean(A log pi) - ent H + vf MSE(R, V),
 *        global norm clipping, RMSprop (SB3 defaults).
 *   PPO: n_epochs over shuffled minibatches: -mean(min(rho A, clip(rho) A)) - ent H +
 *        vf MSE(R, V_pred) (V_pred clipped around V_old when clip_range_vf > 0), advantages
 *        normalised per minibatch (SB3); with ppo_target_kl, the epochs stop at the first
 *        minibatch whose approx. KL exceeds 1.5 ppo_target_kl, before its step (SB3).
 * The update runs in two parts so mm_policy_update_budget can spread it over calls: begin
 * (bootstrap values, GAE) and steps (minibatches from the position kept in p->upd).
 * With a memory core (PPO) a minibatch is max(1, batch_size / memory_seq_len) shuffled
 * segments of memory_seq_len steps of one agent, run forward from their stored initial states
 * and trained by backpropagation through time (memory.c).
 *   QAC: Zhao's Q actor-critic, batched: the actor ascends q(s,a) log pi(a|s) (no baseline);
 *        the critic regresses q(s_t, a_t) on the SARSA target r_t + gamma q(s_t+1, a_t+1)
 *        (expected q under pi at the rollout end and at truncations). */
#include "mmi_policy.h"

#include <math.h>
#include <string.h>

/* Letters: n rollout rows (n_steps x N agents), m minibatch rows, bs minibatch size, K head_dim,
 * od obs_dim, ad act_dim, F in_dim, H memory channels. */

/* The rollout rows idx into the minibatch rows: obs, act, adv and, per row of rw.row, [1]
 * return, [2] old log pi, [3] old value. */
static void gather_rows(mm_policy *p, const int64_t *idx, int64_t m)
{
    const mmi_rollout *r = &p->ro;
    int64_t od = p->obs_dim, ad = p->act_dim;
    mmi_onpolicy_rows rw = mmi_onpolicy_rows_of(p, m);
    double *w = rw.row;
    for (int64_t k = 0; k < m; k++) {
        int64_t i = idx[k];
        memcpy(rw.obs + k * od, r->obs + i * od, sizeof(float) * (size_t)od);
        memcpy(rw.act + k * ad, r->act + i * ad, sizeof(float) * (size_t)ad);
        rw.adv[k] = r->adv[i];
        w[4 * k + 1] = r->ret[i], w[4 * k + 2] = r->logp[i], w[4 * k + 3] = r->val[i];
    }
}

/* The networks' input rows: the gathered observations, or [observation, memory output]. */
static float *net_in(mm_policy *p, int64_t m)
{
    return p->mem.m ? p->mem.feat : mmi_onpolicy_rows_of(p, m).obs;
}

/* Value loss and its backward for m rows of net_in. */
static int value_step(mm_policy *p, int64_t m, double *loss)
{
    mmi_onpolicy_rows rw = mmi_onpolicy_rows_of(p, m);
    const double *w = rw.row;
    float *v = rw.value, *dv = rw.dvalue;
    double s = 0, cv = p->o.clip_range_vf, k = p->o.vf_coef;
    int rc = mmi_v_forward(p, net_in(p, m), m, v, "mm_policy_update");
    if (rc != MM_OK) return rc;
    for (int64_t i = 0; i < m; i++) {
        double pred = v[i], g = 1.0;
        if (cv > 0) { /* SB3: V_old + clamp(V - V_old, -c, c) */
            double dlt = pred - w[4 * i + 3];
            if (dlt > cv || dlt < -cv) g = 0.0;
            pred = w[4 * i + 3] + (dlt > cv ? cv : (dlt < -cv ? -cv : dlt));
        }
        double e = pred - w[4 * i + 1];
        s += e * e;
        dv[i] = (float)(k * 2.0 * e * g / (double)m);
    }
    *loss = s / (double)m;
    rc = mm_model_backward(p->vf, mmi_pol_view(p, 2, dv, m, 1),
                           p->mem.m ? mmi_pol_view(p, 3, p->mem.dfv, m, p->in_dim) : NULL);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->vf, rc, "mm_policy_update");
}

static int zero_all(mm_policy *p)
{
    mm_model *ms[5] = {p->actor, p->vf, p->logstd, p->critic[0], p->mem.m};
    for (int k = 0; k < 5; k++)
        if (ms[k] && mm_model_zero_grad(ms[k]) != MM_OK) return MM_E_INTERNAL;
    return MM_OK;
}

/* Global clipping over actor, log std, value net and memory core, then one optimizer step
 * each (the memory core moves with the actor's learning rate). */
static int step_all(mm_policy *p)
{
    mm_model *ms[5] = {p->actor, p->logstd, p->vf, p->mem.m, p->critic[0]};
    double f = mmi_pol_lr_factor(p);
    int rc0 = p->comm ? mmi_pol_comm_average(p, ms, 5) : MM_OK; /* mean over ranks first */
    if (rc0 != MM_OK) return rc0;
    mmi_clip_grads(ms, 4, p->o.max_grad_norm);
    for (int k = 0; k < 5; k++) {
        int rc;
        if (!ms[k]) continue;
        rc = mm_model_set_f64(ms[k], MM_MODEL_LR,
                              (k < 2 || k == 3 ? p->o.lr_actor : p->o.lr_critic) * f);
        if (rc == MM_OK) rc = mm_model_step(ms[k]);
        if (rc != MM_OK) return mmi_pol_model_fail(p, ms[k], rc, "mm_policy_update");
    }
    p->n_updates = mmi_count_add(p->n_updates, 1);
    return MM_OK;
}

/* The memory part of the actor's and the value net's input gradients, through the core. */
static int memory_backward(mm_policy *p, int64_t m)
{
    mmi_memory *mm = &p->mem;
    int64_t F = p->in_dim, od = p->obs_dim, H = mm->H;
    for (int64_t k = 0; k < m; k++)
        for (int64_t h = 0; h < H; h++)
            mm->dy[k * H + h] = mm->dfa[k * F + od + h] + mm->dfv[k * F + od + h];
    return mmi_mem_backward(p, mmi_onpolicy_rows_of(p, m).obs, mm->dy, m);
}

/* One PPO/A2C minibatch of m rows gathered into the work buffers. *stop = 1 (and no step)
 * when its approx. KL is beyond the target_kl bound. */
static int minibatch(mm_policy *p, int64_t m, int ppo, int *stop)
{
    mmi_onpolicy_rows rw = mmi_onpolicy_rows_of(p, m);
    double *w = rw.row, *coef = p->coef, *dl = p->dls;
    double vloss = 0, eps = p->o.clip_range * mmi_pol_clip_factor(p), pl = 0, kl = 0;
    float *head = rw.head, *lp = rw.logp;
    int rc;
    if (p->o.normalize_advantage) mmi_normalize_adv(rw.adv, m);
    if (p->mem.m) mmi_mem_forward(p, rw.obs, m); /* BPTT forward of the gathered segments */
    if ((rc = mmi_pi_forward(p, net_in(p, m), m, head, "mm_policy_update")) != MM_OK) return rc;
    mmi_pi_logp(p, head, rw.act, m, lp);
    for (int64_t i = 0; i < m; i++) { /* coef = dL/dlog pi */
        double A = rw.adv[i], lr = (double)lp[i] - w[4 * i + 2], rho = exp(lr), g = -A;
        if (ppo) {
            double rcl = rho < 1 - eps ? 1 - eps : (rho > 1 + eps ? 1 + eps : rho);
            g = rho * A <= rcl * A ? -A * rho : 0.0; /* the clipped branch has no gradient */
            pl += -fmin(rho * A, rcl * A);
            p->upd.clip_frac += fabs(rho - 1) > eps;
            kl += (rho - 1) - lr;
            p->upd.kl += (rho - 1) - lr; /* one running sum, as the 0.1 statistic */
        } else {
            pl += -A * lp[i];
        }
        coef[i] = g / (double)m;
    }
    p->st_actor_loss = pl / (double)m;
    p->upd.rows += m;
    if (ppo && p->o.ppo_target_kl > 0 && kl / (double)m > 1.5 * p->o.ppo_target_kl) {
        *stop = 1; /* SB3 checks after logging this minibatch and before its step */
        return MM_OK;
    }
    if ((rc = zero_all(p)) != MM_OK) return mmi_fail(&p->err, rc, "mm_policy_update: zero_grad");
    p->st_entropy = mmi_pg_head_grad(p, head, rw.act, coef, m, p->o.ent_coef, rw.dhead, dl);
    if ((rc = mmi_pg_backward(p, rw.dhead, m, dl)) != MM_OK) return rc;
    if ((rc = value_step(p, m, &vloss)) != MM_OK) return rc; /* after: value shares pg's rows */
    p->st_critic_loss = vloss;
    if (p->mem.m && (rc = memory_backward(p, m)) != MM_OK) return rc;
    return step_all(p);
}

static void shuffle(mm_policy *p, int64_t *idx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)mmi_rng_below(&p->rng, (uint64_t)(i + 1)), t = idx[i];
        idx[i] = idx[j], idx[j] = t;
    }
}

/* Runs minibatches from the kept position until the epochs end, target_kl stops them or the
 * budget is spent. The shuffle of an epoch is drawn just before its first minibatch, so a pause
 * at an epoch boundary draws nothing early. */
static int ppo_a2c(mm_policy *p, int64_t budget, int64_t *used, int *finished)
{
    mmi_update_state *u = &p->upd;
    int64_t n = p->ro.n_steps * p->ro.n_agents;
    int ppo = p->o.algo == MM_ALGO_PPO, stop = 0;
    int64_t bs = ppo ? p->o.batch_size : n, epochs = ppo ? p->o.n_epochs : 1;
    int rc = MM_OK;
    if (p->mem.m) { /* with memory the shuffled units are segments, not rows */
        n = mmi_mem_n_segments(p);
        bs = bs / p->mem.L > 1 ? bs / p->mem.L : 1;
    }
    if (bs > n) bs = n;
    while (u->epoch < epochs && *used < budget && rc == MM_OK) {
        int64_t m = n - u->start < bs ? n - u->start : bs;
        if (u->start == 0) {
            shuffle(p, p->w_idx, n);
            if (!ppo) /* A2C: the whole rollout in order (one gradient step) */
                for (int64_t i = 0; i < n; i++) p->w_idx[i] = i;
            u->epochs_run++;
        }
        if (p->mem.m) {
            int64_t rows = mmi_mem_gather(p, p->w_idx + u->start, m);
            gather_rows(p, p->mem.seg, rows);
            rc = minibatch(p, rows, ppo, &stop);
        } else {
            gather_rows(p, p->w_idx + u->start, m);
            rc = minibatch(p, m, ppo, &stop);
        }
        (*used)++;
        u->start += m;
        if (u->start >= n) u->start = 0, u->epoch++;
        if (stop) u->stopped = 1, u->epoch = epochs;
    }
    *finished = rc != MM_OK || u->epoch >= epochs;
    if (*finished && ppo && u->rows > 0)
        p->st_clip_frac = u->clip_frac / (double)u->rows, p->st_kl = u->kl / (double)u->rows;
    return rc;
}

/* QAC: q [n, K] of every rollout row; actor weight q(s,a), critic SARSA target. */
static int qac(mm_policy *p)
{
    mmi_rollout *r = &p->ro;
    int64_t N = r->n_agents, n = r->n_steps * N, K = p->head_dim;
    mmi_onpolicy_rows rw = mmi_onpolicy_rows_of(p, n);
    float *q = rw.q, *dq = rw.dq, *head = rw.head;
    double *coef = p->coef, *dl = p->dls, closs = 0, qm = 0;
    int rc = mm_model_forward(p->critic[0], mmi_pol_view(p, 0, r->obs, n, p->obs_dim),
                              mmi_pol_view(p, 1, q, n, K));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->critic[0], rc, "mm_policy_update");
    if ((rc = zero_all(p)) != MM_OK) return mmi_fail(&p->err, rc, "mm_policy_update: zero_grad");
    for (int64_t i = 0; i < n; i++) {
        int64_t a = (int64_t)r->act[i], t = i / N;
        double next =
            t == r->n_steps - 1 ? r->last_val[i % N] : q[(i + N) * K + (int64_t)r->act[i + N]];
        double y = r->rew[i] + p->o.gamma * (1.0 - r->done[i]) * next, e = q[i * K + a] - y;
        for (int64_t j = 0; j < K; j++) dq[i * K + j] = 0.0f;
        dq[i * K + a] = (float)(2.0 * e / (double)n);
        closs += e * e, qm += q[i * K + a];
        coef[i] = -(double)q[i * K + a] / (double)n; /* ascend q log pi */
    }
    rc = mm_model_backward(p->critic[0], mmi_pol_view(p, 2, dq, n, K), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->critic[0], rc, "mm_policy_update");
    p->st_critic_loss = closs / (double)n, p->st_q_mean = qm / (double)n;
    if ((rc = mmi_pi_forward(p, r->obs, n, head, "mm_policy_update")) != MM_OK) return rc;
    p->st_entropy = mmi_pg_head_grad(p, head, r->act, coef, n, p->o.ent_coef, rw.dhead, dl);
    if ((rc = mmi_pg_backward(p, rw.dhead, n, dl)) != MM_OK) return rc;
    return step_all(p);
}

int mmi_onpolicy_begin(mm_policy *p)
{
    mmi_rollout *r = &p->ro;
    mmi_update_state *u = &p->upd;
    int rc = mmi_last_values(p);
    u->epoch = 0, u->start = 0, u->rows = 0, u->epochs_run = 0, u->stopped = 0;
    u->clip_frac = 0, u->kl = 0;
    if (rc != MM_OK || p->o.algo == MM_ALGO_QAC) return rc;
    mmi_rollout_gae(r, p->o.gamma, p->o.gae_lambda);
    p->st_ev = mmi_explained_variance(r->val, r->ret, r->n_steps * r->n_agents);
    return MM_OK;
}

int mmi_onpolicy_steps(mm_policy *p, int64_t budget, int64_t *used, int *finished)
{
    if (p->o.algo != MM_ALGO_QAC) return ppo_a2c(p, budget, used, finished);
    (*used)++;
    *finished = 1;
    return qac(p);
}
