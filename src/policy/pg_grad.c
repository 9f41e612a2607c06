/* SPDX-License-Identifier: MIT */
/* pg_grad.c — gradients of policy-gradient losses with respect to the distribution head, shared
 * by A2C, QAC, PPO and TRPO. For a loss L = sum_i c_i log pi(a_i|s_i) - ent_coef mean_i H_i:
 *   Gaussian (mean mu, state-independent log std l):
 *     dL/dmu_ij = c_i (a_ij - mu_ij) / sigma_j^2,  dL/dl_j = sum_i c_i ((a_ij - mu_ij)^2 /
 *     sigma_j^2 - 1) - ent_coef   (dH/dl_j = 1)
 *   Categorical (logits z, p = softmax z):
 *     dL/dz_ij = c_i (1[j = a_i] - p_ij) + (ent_coef / n) p_ij (log p_ij + H_i)
 * Then runs the backward passes (actor; log std through its zero-input dense layer). */
#include "mmi_policy.h"

#include <math.h>

/* Letters: n rows, k head_dim, d act_dim, c_i the coefficient of row i, l the log std. */

/* gSDE (sde.c): with S_ik = sum_j phi_ij^2 e^(2 l_jk) + eps and z = a - mu, phi constant,
 *   dL/dmu_ik = c_i z_ik / S_ik,
 *   dL/dl_jk  = sum_i [c_i (z_ik^2 / S_ik - 1) - ent_coef / n] / (2 S_ik) 2 phi_ij^2 e^(2 l_jk)
 * (log N = -z^2 / (2 S) - log(S) / 2 - log(2 pi) / 2, H = (1 + log(2 pi S)) / 2 per dim). */
static double sde_head_grad(mm_policy *p, const float *head, const float *a, const double *c,
                            int64_t n, double ent_coef, float *dhead, double *dls)
{
    int64_t F = p->sde.F, d = p->act_dim;
    const float *ls = mmi_pol_logstd(p), *phi = mmi_sde_phi(p->actor);
    double *S = p->sde.S, *s2 = p->sde.s2, ent = 0;
    mmi_sde_sigma2(ls, F * d, s2);
    for (int64_t q = 0; q < F * d; q++) dls[q] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *f = phi + i * F;
        mmi_sde_var(f, s2, F, d, S);
        ent += mmi_sde_entropy(S, d);
        for (int64_t k = 0; k < d; k++) {
            double z = (double)a[i * d + k] - head[i * d + k];
            double gS = (c[i] * (z * z / S[k] - 1.0) - ent_coef / (double)n) / (2.0 * S[k]);
            dhead[i * d + k] = (float)(c[i] * z / S[k]);
            for (int64_t j = 0; j < F; j++)
                if (f[j] != 0.0f) dls[j * d + k] += gS * 2.0 * (double)f[j] * f[j] * s2[j * d + k];
        }
    }
    return ent / (double)n;
}

double mmi_pg_head_grad(mm_policy *p, const float *head, const float *a, const double *c, int64_t n,
                        double ent_coef, float *dhead, double *dls)
{
    int64_t k = p->head_dim, d = p->act_dim;
    double ent = 0;
    /* dhead is written while head and a are still read */
    MMI_ASSERT(mmi_pol_disjoint(dhead, n * k, head, n * k) &&
               mmi_pol_disjoint(dhead, n * k, a, n * (p->discrete ? 1 : d)));
    if (p->sde.F) return sde_head_grad(p, head, a, c, n, ent_coef, dhead, dls);
    if (!p->discrete) {
        const float *ls = mmi_pol_logstd(p);
        for (int64_t j = 0; j < d; j++) dls[j] = -ent_coef;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) {
                double iv = exp(-2.0 * ls[j]), z = (double)a[i * d + j] - head[i * k + j];
                dhead[i * k + j] = (float)(c[i] * z * iv);
                dls[j] += c[i] * (z * z * iv - 1.0);
            }
        return mmi_gauss_entropy(ls, d);
    }
    double *prob = p->prob;
    for (int64_t i = 0; i < n; i++) {
        double h = 0;
        int64_t ai = (int64_t)a[i];
        mmi_cat_softmax(head + i * k, k, prob);
        for (int64_t j = 0; j < k; j++) h -= prob[j] > 0 ? prob[j] * log(prob[j]) : 0.0;
        for (int64_t j = 0; j < k; j++) {
            double lp = prob[j] > 0 ? log(prob[j]) : 0.0;
            double g = c[i] * ((j == ai ? 1.0 : 0.0) - prob[j]);
            g += ent_coef / (double)n * prob[j] * (lp + h);
            dhead[i * k + j] = (float)g;
        }
        ent += h;
    }
    return ent / (double)n;
}

int mmi_pg_backward(mm_policy *p, const float *dhead, int64_t n, const double *dls)
{
    mmi_pg_rows rw = mmi_pg_rows_of(p);
    /* the log-std rows are written after the actor's backward has read dhead: apart anyway,
     * so that a later reader of dhead still finds it */
    MMI_ASSERT(n >= 1 && n <= p->maxb &&
               mmi_pol_disjoint(dhead, n * p->head_dim, rw.ls_in, 1 + 2 * p->n_ls));
    /* with a memory core the input gradient continues into it (algo_onpolicy.c) */
    mm_tensor *dx = p->mem.m ? mmi_pol_view(p, 3, p->mem.dfa, n, p->in_dim) : NULL;
    int rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, (float *)dhead, n, p->head_dim), dx);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    if (!p->logstd) return MM_OK;
    float *zero = rw.ls_in, *out = rw.ls_out, *dy = rw.ls_dy;
    zero[0] = 0.0f;
    for (int64_t j = 0; j < p->n_ls; j++) dy[j] = (float)dls[j];
    rc = mm_model_forward(p->logstd, mmi_pol_view(p, 0, zero, 1, 1),
                          mmi_pol_view(p, 1, out, 1, p->n_ls));
    if (rc == MM_OK) rc = mm_model_backward(p->logstd, mmi_pol_view(p, 2, dy, 1, p->n_ls), NULL);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->logstd, rc, "mm_policy_update");
}

double mmi_explained_variance(const float *v, const float *ret, int64_t n)
{
    double mr = 0, md = 0, vr = 0, vd = 0;
    for (int64_t i = 0; i < n; i++) mr += ret[i], md += (double)ret[i] - v[i];
    mr /= (double)n, md /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double a = ret[i] - mr, b = (double)ret[i] - v[i] - md;
        vr += a * a, vd += b * b;
    }
    return vr > 0 ? 1.0 - vd / vr : 0.0;
}

void mmi_normalize_adv(float *adv, int64_t n)
{
    double m = 0, s = 0;
    if (n < 2) return; /* SB3 skips a single-sample minibatch */
    for (int64_t i = 0; i < n; i++) m += adv[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) s += ((double)adv[i] - m) * ((double)adv[i] - m);
    s = sqrt(s / (double)(n - 1)); /* unbiased, as torch.std (SB3) */
    for (int64_t i = 0; i < n; i++) adv[i] = (float)(((double)adv[i] - m) / (s + 1e-8));
}

int mmi_last_values(mm_policy *p)
{
    mmi_rollout *r = &p->ro;
    if (p->mem.m) { /* from each agent's state after the rollout's last step */
        mmi_mem_peek(p, r->last_obs, r->n_agents, p->mem.feat);
        return mmi_v_forward(p, p->mem.feat, r->n_agents, r->last_val, "mm_policy_update");
    }
    if (p->vf) return mmi_v_forward(p, r->last_obs, r->n_agents, r->last_val, "mm_policy_update");
    /* QAC: expected Q under pi */
    mmi_pg_rows rw = mmi_pg_rows_of(p);
    float *q = rw.q, *z = rw.logits;
    double *prob = p->prob;
    int64_t k = p->head_dim, n = r->n_agents;
    int rc = mm_model_forward(p->critic[0], mmi_pol_view(p, 0, r->last_obs, n, p->obs_dim),
                              mmi_pol_view(p, 1, q, n, k));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->critic[0], rc, "mm_policy_update");
    if ((rc = mmi_pi_forward(p, r->last_obs, n, z, "mm_policy_update")) != MM_OK) return rc;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        mmi_cat_softmax(z + i * k, k, prob);
        for (int64_t j = 0; j < k; j++) s += prob[j] * q[i * k + j];
        r->last_val[i] = (float)s;
    }
    return MM_OK;
}
