/* SPDX-License-Identifier: MIT */
/* noise.c — exploration noise of DDPG / TD3 in the [-1, 1] action space: Gaussian, or
 * Ornstein-Uhlenbeck as SB3 (x += theta (0 - x) dt + sigma sqrt(dt) N(0, 1), per agent, reset at
 * the agent's episode end). The noisy action is clipped to [-1, 1] (docs/RL.md §Formulas). */
#include "mmi_policy.h"

#include <float.h>
#include <math.h>

void mmi_noise_apply(mm_policy *p, float *y, int64_t n)
{
    int64_t d = p->act_dim;
    double sigma = p->o.noise_sigma, th = p->o.noise_theta, dt = p->o.noise_dt;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double eps = 0, v;
            if (p->o.noise == MM_NOISE_GAUSSIAN) {
                eps = sigma * mmi_rng_normal(mmi_pol_act_rng(p));
            } else if (p->o.noise == MM_NOISE_OU) {
                float *x = &p->ou[i * d + j];
                double nx =
                    *x - th * *x * dt + sigma * sqrt(dt) * mmi_rng_normal(mmi_pol_act_rng(p));
                /* Large theta * dt or sigma make the discretised process diverge; the state
                 * saturates at the float range instead of becoming Inf (then Inf - Inf = NaN),
                 * so the clipped action below stays defined. */
                if (nx != nx) nx = 0.0;
                *x = (float)(nx < -FLT_MAX ? -FLT_MAX : nx > FLT_MAX ? FLT_MAX : nx);
                eps = *x;
            }
            v = y[i * d + j] + eps;
            y[i * d + j] = (float)(v < -1 ? -1 : (v > 1 ? 1 : v));
        }
}

void mmi_noise_reset(mm_policy *p, int64_t i)
{
    MMI_ASSERT(i >= 0 && i < p->o.n_agents);
    for (int64_t j = 0; j < p->act_dim; j++) p->ou[i * p->act_dim + j] = 0.0f;
}
