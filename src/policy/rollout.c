/* SPDX-License-Identifier: MIT */
/* rollout.c — GAE(lambda) over the on-policy rollout, as SB3 RolloutBuffer: per column,
 * backwards, with next_non_terminal taken from the step's own done flag (equal to the next
 * step's episode start), the last step bootstrapping from V(last next obs). Truncated episodes
 * were already given r += gamma V(final obs) by observe, so a done here never bootstraps.
 * Accumulates in float64 (docs/RL.md §Formulas). */
#include "mmi_policy.h"

void mmi_gae(int64_t T, int64_t N, const float *rew, const float *val, const float *done,
             const float *last_val, double gamma, double lambda, float *adv, float *ret)
{
    MMI_ASSERT(T >= 1 && N >= 1 && gamma >= 0 && lambda >= 0);
    for (int64_t i = 0; i < N; i++) {
        double a = 0.0;
        for (int64_t t = T - 1; t >= 0; t--) {
            int64_t k = t * N + i;
            double nonterm = 1.0 - (double)done[k];
            double vnext = t == T - 1 ? (double)last_val[i] : (double)val[k + N];
            double delta = (double)rew[k] + gamma * vnext * nonterm - (double)val[k];
            a = delta + gamma * lambda * nonterm * a;
            adv[k] = (float)a;
            ret[k] = (float)(a + (double)val[k]);
        }
    }
}

void mmi_rollout_gae(mmi_rollout *r, double gamma, double lambda)
{
    mmi_gae(r->n_steps, r->n_agents, r->rew, r->val, r->done, r->last_val, gamma, lambda, r->adv,
            r->ret);
}
