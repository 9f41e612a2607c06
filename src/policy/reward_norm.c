/* SPDX-License-Identifier: MIT */
/* reward_norm.c — reward scaling as SB3's VecNormalize(norm_reward=True): each agent keeps a
 * discounted return ret = gamma ret + r (zeroed when its episode ends), a RunningMeanStd of
 * those returns (mean 0, var 1, count 1e-4 at start, batch updates with the population
 * variance, all in float64) and rewards are divided by sqrt(var + 1e-8) - the mean is not
 * subtracted - then clipped to +-clip_reward.
 * norm_reward = 2 adds a guard SB3 lacks: a reward enters the returns clipped to +-clip_reward
 * standard deviations of the statistics before it, so one outlier (a 1e6 reward) cannot
 * inflate the variance and shrink every later reward towards 0 for the rest of training. */
#include "mmi_policy.h"

#include <math.h>

/* Folds the n returns ret[0..n) into the statistics (the parallel batch update). */
static void fold(mmi_reward_norm *z, const double *ret, int64_t n)
{
    double bm = 0, bv = 0, tot = z->count + (double)n, delta, m2;
    for (int64_t i = 0; i < n; i++) bm += ret[i];
    bm /= (double)n;
    for (int64_t i = 0; i < n; i++) bv += (ret[i] - bm) * (ret[i] - bm);
    delta = bm - z->mean;
    m2 = z->var * z->count + bv + delta * delta * z->count * (double)n / tot;
    z->mean += delta * (double)n / tot;
    z->var = m2 / tot;
    z->count = tot;
}

float mmi_reward_norm_apply(const mmi_reward_norm *z, float r)
{
    double v = (double)r / sqrt(z->var + 1e-8);
    return (float)(v < -z->clip ? -z->clip : (v > z->clip ? z->clip : v));
}

void mmi_reward_norm_observe(mmi_reward_norm *z, const float *r, const uint8_t *term,
                             const uint8_t *trunc, int64_t n, double gamma, float *out)
{
    MMI_ASSERT(n >= 1 && z->count > 0);
    double bound = z->clip * sqrt(z->var + 1e-8);
    for (int64_t i = 0; i < n; i++) {
        double ri = r[i];
        if (z->on == 2) ri = ri < -bound ? -bound : (ri > bound ? bound : ri);
        z->ret[i] = gamma * z->ret[i] + ri;
    }
    fold(z, z->ret, n);
    for (int64_t i = 0; out && i < n; i++) out[i] = mmi_reward_norm_apply(z, r[i]);
    for (int64_t i = 0; i < n; i++)
        if (term[i] || trunc[i]) z->ret[i] = 0.0;
}
