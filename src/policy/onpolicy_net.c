/* SPDX-License-Identifier: MIT */
/* onpolicy_net.c — the networks of the on-policy agents seen as distributions: the policy head
 * (Gaussian mean or logits), the value net, log-probabilities of stored actions, and global
 * gradient clipping over several models (SB3 clips one norm over all policy parameters). */
#include "mmi_policy.h"

#include <math.h>

float *mmi_pol_logstd(mm_policy *p)
{
    float *w = NULL;
    int64_t n = 0;
    if (!p->logstd || mm_model_params(p->logstd, &w, &n) != MM_OK) return NULL;
    return w + p->n_ls; /* [weight (n_ls x 1), bias (n_ls)] */
}

int mmi_pi_forward(mm_policy *p, const float *x, int64_t n, float *head, const char *fn)
{
    MMI_ASSERT(n >= 1 && n <= p->maxb);
    mm_tensor *tx = mmi_pol_view(p, 0, (float *)x, n, p->in_dim);
    mm_tensor *ty = mmi_pol_view(p, 1, head, n, p->head_dim);
    int rc = mm_model_forward(p->actor, tx, ty);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->actor, rc, fn);
}

int mmi_pi_forward_act(mm_policy *p, const float *x, int64_t n, float *head, const float **ls)
{
    mm_model *m = p->upd.active ? p->upd.actor_snap : p->actor;
    mm_tensor *tx, *ty;
    int rc;
    MMI_ASSERT(n >= 1 && n <= p->o.n_agents && m);
    tx = mmi_pol_view(p, 0, (float *)x, n, p->in_dim);
    ty = mmi_pol_view(p, 1, head, n, p->head_dim);
    rc = mmi_model_forward_kept(m, tx, ty, &p->act_w, "mm_model_forward");
    if (rc != MM_OK) return mmi_pol_model_fail(p, m, rc, "mm_policy_act");
    *ls = p->discrete ? NULL : p->upd.active ? p->upd.logstd_snap : mmi_pol_logstd(p);
    return MM_OK;
}

void mmi_pol_params_stale(mm_policy *p)
{
    p->act_w.of = NULL;
    mmi_mem_stale(p);
}

int mmi_v_forward(mm_policy *p, const float *x, int64_t n, float *v, const char *fn)
{
    MMI_ASSERT(n >= 1 && n <= p->maxb && p->vf);
    mm_tensor *tx = mmi_pol_view(p, 0, (float *)x, n, p->in_dim);
    mm_tensor *ty = mmi_pol_view(p, 1, v, n, 1);
    int rc = mm_model_forward(p->vf, tx, ty);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->vf, rc, fn);
}

void mmi_pi_logp(const mm_policy *p, const float *head, const float *a, int64_t n, float *logp)
{
    int64_t k = p->head_dim;
    if (p->discrete) {
        for (int64_t i = 0; i < n; i++) {
            const float *z = head + i * k;
            double m = z[0], s = 0;
            for (int64_t j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
            for (int64_t j = 0; j < k; j++) s += exp((double)z[j] - m);
            logp[i] = (float)((double)z[(int64_t)a[i]] - m - log(s));
        }
        return;
    }
    const float *ls = mmi_pol_logstd((mm_policy *)p);
    if (p->sde.F) { /* gSDE: the variances of each row from the features of that forward */
        const float *phi = mmi_sde_phi(p->actor);
        mmi_sde_sigma2(ls, p->n_ls, p->sde.s2);
        for (int64_t i = 0; i < n; i++) {
            mmi_sde_var(phi + i * p->sde.F, p->sde.s2, p->sde.F, p->act_dim, p->sde.S);
            logp[i] = (float)mmi_sde_logp(a + i * p->act_dim, head + i * k, p->sde.S, p->act_dim);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        logp[i] = (float)mmi_gauss_logp(a + i * p->act_dim, head + i * k, ls, p->act_dim);
}

double mmi_clip_grads(mm_model **ms, int32_t nm, double max_norm)
{
    double s = 0, norm, f;
    for (int32_t k = 0; k < nm; k++) {
        float *g;
        int64_t n;
        if (!ms[k] || mm_model_grads(ms[k], &g, &n) != MM_OK) continue;
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    }
    norm = sqrt(s);
    if (max_norm <= 0 || !(norm > max_norm)) return norm;
    f = max_norm / (norm + 1e-6); /* torch clip_grad_norm_ */
    for (int32_t k = 0; k < nm; k++) {
        float *g;
        int64_t n;
        if (!ms[k] || mm_model_grads(ms[k], &g, &n) != MM_OK) continue;
        for (int64_t i = 0; i < n; i++) g[i] = (float)(g[i] * f);
    }
    return norm;
}
