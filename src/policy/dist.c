/* SPDX-License-Identifier: MIT */
/* dist.c — the action distributions of the on-policy algorithms (SB3 distributions.py):
 * a diagonal Gaussian with a state-independent log std, and a categorical over logits.
 * Sums in float64. */
#include "mmi_policy.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178

double mmi_gauss_logp(const float *a, const float *mu, const float *ls, int64_t d)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        double z = ((double)a[j] - mu[j]) * exp(-(double)ls[j]);
        s += -0.5 * z * z - ls[j] - HALF_LOG_2PI;
    }
    return s;
}

double mmi_gauss_entropy(const float *ls, int64_t d)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += 0.5 + HALF_LOG_2PI + ls[j];
    return s;
}

double mmi_cat_softmax(const float *z, int64_t k, double *prob)
{
    MMI_ASSERT(k >= 1);
    double m = z[0], s = 0;
    for (int64_t j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
    for (int64_t j = 0; j < k; j++) s += (prob[j] = exp((double)z[j] - m));
    for (int64_t j = 0; j < k; j++) prob[j] /= s;
    return m + log(s);
}
