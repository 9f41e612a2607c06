/* SPDX-License-Identifier: MIT */
/* algo_trpo.c — TRPO (docs/RL.md §Formulas, sb3-contrib trpo.py semantics):
 *   g = grad of mean(rho A) at theta_old;  x = CG(F~, g) with F~ v = J^T M J v / N + damping v,
 *   the Gauss-Newton Fisher-vector product (M: Fisher of the distribution parameters; one
 *   mm_model_jvp and one mm_model_backward per product, no second-order autodiff);
 *   full step sqrt(2 delta / x'F~x) x; backtracking (decay^k) accepting only KL < delta AND a
 *   better surrogate, else theta_old is restored; then the value net alone is trained for
 *   n_epochs of minibatch Adam on MSE(R_GAE, V).
 * The policy vector is [actor parameters, log std] (log std only for Gaussians). */
#include "mmi_policy.h"

#include <math.h>
#include <string.h>

/* Letters: n rollout rows, K head_dim, na actor parameters, n_pi = na (+ act_dim), bs value
 * minibatch rows, od obs_dim. */

static float *actor_params(mm_policy *p, int64_t *n)
{
    float *w = NULL;
    int rc = mm_model_params(p->actor, &w, n);
    MMI_ASSERT(rc == MM_OK); /* the actor is finalized at create */
    (void)rc;
    return w;
}

void mmi_trpo_get_params(mm_policy *p, float *v)
{
    int64_t n;
    float *w = actor_params(p, &n);
    memcpy(v, w, sizeof(float) * (size_t)n);
    if (!p->discrete) memcpy(v + n, mmi_pol_logstd(p), sizeof(float) * (size_t)p->act_dim);
}

void mmi_trpo_set_params(mm_policy *p, const float *v)
{
    int64_t n;
    float *w = actor_params(p, &n);
    memcpy(w, v, sizeof(float) * (size_t)n);
    if (!p->discrete) memcpy(mmi_pol_logstd(p), v + n, sizeof(float) * (size_t)p->act_dim);
}

/* Actor gradient buffer (+ log-std part from dls) into g. */
static void collect_grad(mm_policy *p, const double *dls, float *g)
{
    float *ga = NULL;
    int64_t n = 0;
    int rc = mm_model_grads(p->actor, &ga, &n);
    MMI_ASSERT(rc == MM_OK);
    (void)rc;
    memcpy(g, ga, sizeof(float) * (size_t)n);
    for (int64_t j = 0; dls && !p->discrete && j < p->act_dim; j++) g[n + j] = (float)dls[j];
}

int mmi_trpo_fvp(mm_policy *p, const float *v, float *out)
{
    mmi_rollout *r = &p->ro;
    int64_t n = r->n_steps * r->n_agents, K = p->head_dim, na = 0;
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    float *u = rw.jvp, *head = rw.head;
    double *prob = p->prob, damp = p->o.cg_damping;
    int rc;
    MMI_ASSERT(v != out && n >= 1 && n <= p->maxb);
    (void)actor_params(p, &na);
    rc = mm_model_jvp(p->actor, mmi_pol_view(p, 0, r->obs, n, p->obs_dim),
                      mmi_pol_view(p, 3, (float *)v, 1, na), mmi_pol_view(p, 1, head, n, K),
                      mmi_pol_view(p, 2, u, n, K));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    if (p->discrete) { /* M u = p * u - p (p'u) */
        for (int64_t i = 0; i < n; i++) {
            double pu = 0;
            mmi_cat_softmax(head + i * K, K, prob);
            for (int64_t j = 0; j < K; j++) pu += prob[j] * u[i * K + j];
            for (int64_t j = 0; j < K; j++)
                u[i * K + j] = (float)((prob[j] * u[i * K + j] - prob[j] * pu) / (double)n);
        }
    } else { /* M = diag(1 / sigma^2) for the mean, 2 for each log std */
        const float *ls = mmi_pol_logstd(p);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++)
                u[i * K + j] = (float)(u[i * K + j] * exp(-2.0 * ls[j]) / (double)n);
    }
    if ((rc = mm_model_zero_grad(p->actor)) != MM_OK) return rc;
    rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, u, n, K), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    collect_grad(p, NULL, out);
    for (int64_t j = 0; !p->discrete && j < p->act_dim; j++) out[na + j] = 2.0f * v[na + j];
    for (int64_t i = 0; i < p->n_pi; i++) out[i] += (float)(damp * v[i]);
    return MM_OK;
}

typedef struct fvp_ctx {
    mm_policy *p;
    int rc;
} fvp_ctx;

static void fvp_mv(void *ctx, const float *v, float *out)
{
    fvp_ctx *c = ctx;
    if (c->rc == MM_OK) c->rc = mmi_trpo_fvp(c->p, v, out);
    if (c->rc != MM_OK) memset(out, 0, sizeof(float) * (size_t)c->p->n_pi);
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

int32_t mmi_cg(mmi_matvec_fn mv, void *ctx, const float *b, int64_t n, int32_t iters, float *x,
               float *r, float *d, float *ad)
{
    double rr;
    int32_t k;
    /* five distinct n-float vectors: x, r, d and ad are written while b is still read */
    MMI_ASSERT(n >= 1 && iters >= 0 && x != b && r != b && d != b && ad != b);
    MMI_ASSERT(x != r && x != d && x != ad && r != d && r != ad && d != ad);
    for (int64_t i = 0; i < n; i++) x[i] = 0.0f, r[i] = b[i], d[i] = b[i];
    rr = dot(r, r, n);
    for (k = 0; k < iters && rr >= 1e-10; k++) {
        double alpha, rr_new, pad;
        mv(ctx, d, ad);
        pad = dot(d, ad, n);
        if (!(pad > 0)) break; /* not positive definite along d (or NaN): stop here */
        alpha = rr / pad;
        for (int64_t i = 0; i < n; i++)
            x[i] += (float)(alpha * d[i]), r[i] -= (float)(alpha * ad[i]);
        rr_new = dot(r, r, n);
        for (int64_t i = 0; i < n; i++) d[i] = (float)(r[i] + rr_new / rr * d[i]);
        rr = rr_new;
    }
    return k;
}

/* Mean KL(old || current) from old heads and the current heads in cur (n rows). */
static double mean_kl(mm_policy *p, const float *old_head, const float *old_ls, const float *cur,
                      int64_t n)
{
    int64_t K = p->head_dim;
    double s = 0, *prob = p->prob;
    if (!p->discrete) {
        const float *ls = mmi_pol_logstd(p);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++) {
                double s0 = exp(2.0 * old_ls[j]), s1 = exp(2.0 * ls[j]);
                double dm = (double)old_head[i * K + j] - cur[i * K + j];
                s += ls[j] - old_ls[j] + (s0 + dm * dm) / (2.0 * s1) - 0.5;
            }
        return s / (double)n;
    }
    for (int64_t i = 0; i < n; i++) {
        double l0 = mmi_cat_softmax(old_head + i * K, K, prob), l1 = 0, m = cur[i * K];
        for (int64_t j = 1; j < K; j++) m = cur[i * K + j] > m ? cur[i * K + j] : m;
        for (int64_t j = 0; j < K; j++) l1 += exp((double)cur[i * K + j] - m);
        l1 = m + log(l1);
        for (int64_t j = 0; j < K; j++)
            if (prob[j] > 0)
                s += prob[j] * (((double)old_head[i * K + j] - l0) - ((double)cur[i * K + j] - l1));
    }
    return s / (double)n;
}

/* The old log std lives after the old heads (row n of the old-head buffer). */
static const float *old_logstd(const mm_policy *p, const float *old_head, int64_t n)
{
    return old_head + n * p->head_dim;
}

/* The old heads and log std (n + 1 rows) are read while the current heads, the head gradient
 * and the log probabilities are written: none of them may overlap old_head. */
static int old_head_apart(mm_policy *p, const float *old_head, int64_t n)
{
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    int64_t nh = (n + 1) * p->head_dim, nk = n * p->head_dim;
    return mmi_pol_disjoint(old_head, nh, rw.head, nk) &&
           mmi_pol_disjoint(old_head, nh, rw.dhead, nk) &&
           mmi_pol_disjoint(old_head, nh, rw.logp, n);
}

int mmi_trpo_kl(mm_policy *p, const float *old_head, int64_t n, double *kl)
{
    float *cur = mmi_trpo_rows_of(p).head;
    int rc;
    MMI_ASSERT(n >= 1 && n <= p->maxb && old_head_apart(p, old_head, n));
    rc = mmi_pi_forward(p, p->ro.obs, n, cur, "mm_policy_update");
    if (rc == MM_OK) *kl = mean_kl(p, old_head, old_logstd(p, old_head, n), cur, n);
    return rc;
}

int mmi_trpo_kl_grad(mm_policy *p, const float *old_head, int64_t n, float *g)
{
    int64_t K = p->head_dim;
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    float *cur = rw.head, *dh = rw.dhead;
    double *prob = p->prob, *dls = p->dls;
    const float *ols = old_logstd(p, old_head, n);
    int rc;
    MMI_ASSERT(n >= 1 && n <= p->maxb && old_head_apart(p, old_head, n));
    rc = mmi_pi_forward(p, p->ro.obs, n, cur, "mm_policy_update");
    if (rc != MM_OK) return rc;
    if (!p->discrete) {
        const float *ls = mmi_pol_logstd(p);
        for (int64_t j = 0; j < K; j++) dls[j] = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++) {
                double iv = exp(-2.0 * ls[j]), dm = (double)cur[i * K + j] - old_head[i * K + j];
                dh[i * K + j] = (float)(dm * iv / (double)n);
                dls[j] += (1.0 - (exp(2.0 * ols[j]) + dm * dm) * iv) / (double)n;
            }
    } else {
        double *p0 = prob;
        for (int64_t i = 0; i < n; i++) {
            float *z = cur + i * K;
            double m = z[0], s = 0;
            for (int64_t j = 1; j < K; j++) m = z[j] > m ? z[j] : m;
            for (int64_t j = 0; j < K; j++) s += exp((double)z[j] - m);
            mmi_cat_softmax(old_head + i * K, K, p0);
            for (int64_t j = 0; j < K; j++)
                dh[i * K + j] = (float)((exp((double)z[j] - m) / s - p0[j]) / (double)n);
        }
    }
    if ((rc = mm_model_zero_grad(p->actor)) != MM_OK) return rc;
    rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, dh, n, K), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    collect_grad(p, dls, g);
    return MM_OK;
}

/* Surrogate mean(exp(log pi - log pi_old) A) at the current parameters (heads left in
 * rw.head for the line search's KL). */
static int surrogate(mm_policy *p, int64_t n, double *s)
{
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    float *lp = rw.logp;
    double acc = 0;
    int rc = mmi_pi_forward(p, p->ro.obs, n, rw.head, "mm_policy_update");
    if (rc != MM_OK) return rc;
    mmi_pi_logp(p, rw.head, p->ro.act, n, lp);
    for (int64_t i = 0; i < n; i++) acc += exp((double)lp[i] - p->ro.logp[i]) * p->ro.adv[i];
    *s = acc / (double)n;
    return MM_OK;
}

int32_t mmi_trpo_line_search(mm_policy *p, const float *theta_old, const float *full,
                             const float *old_head, double surr_old, int *rc)
{
    int64_t n = p->ro.n_steps * p->ro.n_agents;
    float *th = p->trpo.trial, *cur = mmi_trpo_rows_of(p).head;
    double f = 1.0;
    MMI_ASSERT(old_head_apart(p, old_head, n));
    *rc = MM_OK;
    for (int32_t k = 0; k < p->o.ls_max_iter; k++, f *= p->o.ls_decay) {
        double s, kl;
        for (int64_t i = 0; i < p->n_pi; i++) th[i] = (float)(theta_old[i] + f * full[i]);
        mmi_trpo_set_params(p, th);
        if ((*rc = surrogate(p, n, &s)) != MM_OK) break;
        kl = mean_kl(p, old_head, old_logstd(p, old_head, n), cur, n);
        if (kl < p->o.target_kl && s > surr_old) {
            p->st_kl = kl, p->st_actor_loss = -s;
            return k;
        }
    }
    mmi_trpo_set_params(p, theta_old);
    p->st_kl = 0;
    return -1;
}

static int policy_step(mm_policy *p, int64_t n)
{
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    float *old_head = rw.old_head, *g = p->trpo.grad, *x = p->trpo.step;
    float *th_old = p->trpo.theta_old, *fx = p->trpo.fx;
    double *coef = p->coef, *dls = p->dls, surr_old, xfx, beta;
    fvp_ctx ctx = {p, MM_OK};
    int rc = mmi_pi_forward(p, p->ro.obs, n, old_head, "mm_policy_update");
    if (rc != MM_OK) return rc;
    if (!p->discrete)
        memcpy(old_head + n * p->head_dim, mmi_pol_logstd(p), sizeof(float) * (size_t)p->act_dim);
    /* g = grad mean(rho A) at theta_old: the log-prob gradient weighted by +A / n */
    for (int64_t i = 0; i < n; i++) coef[i] = p->ro.adv[i] / (double)n;
    p->st_entropy = mmi_pg_head_grad(p, old_head, p->ro.act, coef, n, 0.0, rw.dhead, dls);
    if ((rc = mm_model_zero_grad(p->actor)) != MM_OK) return rc;
    rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, rw.dhead, n, p->head_dim), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    collect_grad(p, dls, g);
    mmi_trpo_get_params(p, th_old);
    mmi_cg(fvp_mv, &ctx, g, p->n_pi, p->o.cg_max_steps, x, p->trpo.cg_r, p->trpo.cg_d,
           p->trpo.cg_ad);
    if (ctx.rc != MM_OK) return ctx.rc;
    if ((rc = mmi_trpo_fvp(p, x, fx)) != MM_OK) return rc;
    xfx = dot(x, fx, p->n_pi);
    if (!(xfx > 0) || !isfinite(xfx)) {
        p->st_ls = -1;
        return MM_OK; /* nothing sensible to step along: keep theta_old */
    }
    beta = sqrt(2.0 * p->o.target_kl / xfx);
    for (int64_t i = 0; i < p->n_pi; i++) x[i] = (float)(beta * x[i]);
    if ((rc = surrogate(p, n, &surr_old)) != MM_OK) return rc;
    p->st_ls = mmi_trpo_line_search(p, th_old, x, old_head, surr_old, &rc);
    return rc;
}

/* Value net: n_epochs of shuffled minibatch Adam on MSE(R, V). */
static int critic_epochs(mm_policy *p, int64_t n)
{
    int64_t bs = p->o.batch_size < n ? p->o.batch_size : n, od = p->obs_dim;
    mmi_trpo_rows rw = mmi_trpo_rows_of(p);
    float *x = rw.obs, *v = rw.value, *dv = rw.dvalue;
    double loss = 0;
    for (int32_t e = 0; e < p->o.n_epochs; e++) {
        int64_t *idx = p->w_idx;
        for (int64_t i = 0; i < n; i++) idx[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)mmi_rng_below(&p->rng, (uint64_t)(i + 1)), t = idx[i];
            idx[i] = idx[j], idx[j] = t;
        }
        for (int64_t s = 0; s < n; s += bs) {
            int64_t m = n - s < bs ? n - s : bs;
            int rc;
            for (int64_t k = 0; k < m; k++)
                memcpy(x + k * od, p->ro.obs + idx[s + k] * od, sizeof(float) * (size_t)od);
            if ((rc = mmi_v_forward(p, x, m, v, "mm_policy_update")) != MM_OK) return rc;
            loss = 0;
            for (int64_t k = 0; k < m; k++) {
                double d = (double)v[k] - p->ro.ret[idx[s + k]];
                loss += d * d;
                dv[k] = (float)(2.0 * d / (double)m);
            }
            rc = mm_model_zero_grad(p->vf);
            if (rc == MM_OK) rc = mm_model_backward(p->vf, mmi_pol_view(p, 2, dv, m, 1), NULL);
            if (rc == MM_OK)
                rc = mm_model_set_f64(p->vf, MM_MODEL_LR, p->o.lr_critic * mmi_pol_lr_factor(p));
            if (rc == MM_OK) rc = mm_model_step(p->vf);
            if (rc != MM_OK) return mmi_pol_model_fail(p, p->vf, rc, "mm_policy_update");
        }
    }
    p->st_critic_loss = loss / (double)bs;
    return MM_OK;
}

int mmi_trpo_update(mm_policy *p)
{
    mmi_rollout *r = &p->ro;
    int64_t n = r->n_steps * r->n_agents;
    int rc = mmi_last_values(p);
    if (rc != MM_OK) return rc;
    mmi_rollout_gae(r, p->o.gamma, p->o.gae_lambda);
    p->st_ev = mmi_explained_variance(r->val, r->ret, n);
    /* the critic regresses on the unnormalised returns; normalise a copy-free way: ret is
     * already computed, so normalising adv in place is safe */
    if (p->o.normalize_advantage) mmi_normalize_adv(r->adv, n);
    if ((rc = policy_step(p, n)) != MM_OK) return rc;
    rc = critic_epochs(p, n);
    p->n_updates = mmi_count_add(p->n_updates, 1);
    return rc;
}
