/* SPDX-License-Identifier: MIT */
/* sde.c — generalized State-Dependent Exploration (Raffin et al. 2021; SB3's
 * StateDependentNoiseDistribution with full_std=True, learn_features=False, use_expln=False):
 * the exploration noise of agent i is phi(s) . W_i, phi the actor's last hidden features and
 * W_i [F, A] a matrix drawn from N(0, exp(l)^2) that is held for sde_sample_freq exploring acts,
 * so the noise is a smooth function of the state instead of independent per step. The action's
 * distribution is the Gaussian N(mu, S), S_k = sum_j phi_j^2 exp(2 l_jk) + 1e-6; log-prob and
 * entropy are those of this Gaussian, with phi treated as a constant (pg_grad.c has the
 * gradients). Sums in float64. */
#include "mmi_policy.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178

void mmi_sde_sigma2(const float *ls, int64_t n, double *s2)
{
    for (int64_t q = 0; q < n; q++) s2[q] = exp(2.0 * (double)ls[q]);
}

void mmi_sde_var(const float *phi, const double *s2, int64_t F, int64_t A, double *S)
{
    for (int64_t k = 0; k < A; k++) S[k] = MMI_SDE_EPS;
    for (int64_t j = 0; j < F; j++) {
        double f2 = (double)phi[j] * phi[j];
        if (f2 == 0.0) continue; /* ReLU features are often exactly 0 */
        for (int64_t k = 0; k < A; k++) S[k] += f2 * s2[j * A + k];
    }
}

double mmi_sde_logp(const float *a, const float *mu, const double *S, int64_t A)
{
    double s = 0;
    for (int64_t k = 0; k < A; k++) {
        double z = (double)a[k] - mu[k];
        s += -0.5 * z * z / S[k] - 0.5 * log(S[k]) - HALF_LOG_2PI;
    }
    return s;
}

double mmi_sde_entropy(const double *S, int64_t A)
{
    double s = 0;
    for (int64_t k = 0; k < A; k++) s += 0.5 + HALF_LOG_2PI + 0.5 * log(S[k]);
    return s;
}

const float *mmi_sde_phi(const mm_model *m)
{
    int32_t nl = 0;
    int rc = mm_model_num_layers(m, &nl);
    const float *phi = rc == MM_OK ? mmi_model_layer_input(m, nl - 1, NULL) : NULL;
    MMI_ASSERT(phi); /* called right after a successful forward of an on-policy actor */
    return phi;
}

void mmi_sde_draw(mm_policy *p, int64_t i, const float *ls)
{
    int64_t n = p->sde.F * p->act_dim;
    float *w = p->sde.W + i * n;
    mmi_rng *r = mmi_pol_act_rng(p);
    for (int64_t q = 0; q < n; q++) w[q] = (float)(exp((double)ls[q]) * mmi_rng_normal(r));
}

void mmi_sde_reset(mm_policy *p, int64_t i)
{
    if (!p->sde.F) return;
    if (i >= 0) {
        p->sde.left[i] = 0;
        return;
    }
    for (int64_t k = 0; k < p->o.n_agents; k++) p->sde.left[k] = 0;
}
