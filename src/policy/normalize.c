/* SPDX-License-Identifier: MIT */
/* normalize.c — running observation statistics as SB3's RunningMeanStd / VecNormalize: mean 0,
 * var 1, count 1e-4 at start; batch updates with the population variance; applied as
 * clip((x - mean) / sqrt(var + 1e-8), +-clip_obs). Statistics are float64 (they integrate
 * millions of steps); act applies float copies so the hot path stays in float. */
#include "mmi_policy.h"

#include <math.h>

void mmi_rms_update(mmi_obs_rms *s, const float *x, int64_t n, double *work)
{
    int64_t d = s->dim;
    double *bm = work, *bv = work + d, tot = s->count + (double)n;
    /* count 0 is legal (a loaded file may carry it: "no prior samples"); tot > 0 once n >= 1. */
    MMI_ASSERT(n >= 0 && s->dim >= 1 && s->count >= 0);
    if (n < 1) return;
    for (int64_t j = 0; j < d; j++) bm[j] = 0, bv[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) bm[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) bm[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double c = x[i * d + j] - bm[j];
            bv[j] += c * c;
        }
    for (int64_t j = 0; j < d; j++) {
        double delta = bm[j] - s->mean[j];
        double m2 = s->var[j] * s->count + bv[j] + delta * delta * s->count * (double)n / tot;
        s->mean[j] += delta * (double)n / tot;
        s->var[j] = m2 / tot;
    }
    /* held at the loader's bound like every counter: the statistics barely move there anyway */
    s->count = tot < (double)MMI_COUNT_MAX ? tot : (double)MMI_COUNT_MAX;
    mmi_rms_refresh(s);
}

void mmi_rms_refresh(mmi_obs_rms *s)
{
    for (int64_t j = 0; j < s->dim; j++) {
        s->f_mean[j] = (float)s->mean[j];
        s->f_istd[j] = (float)(1.0 / sqrt(s->var[j] + 1e-8));
    }
}

void mmi_rms_apply(const mmi_obs_rms *s, const float *x, int64_t n, int64_t dim, float *y)
{
    if (!s) {
        for (int64_t i = 0; i < n * dim; i++) y[i] = x[i];
        return;
    }
    float c = (float)s->clip;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) {
            float v = (x[i * dim + j] - s->f_mean[j]) * s->f_istd[j];
            y[i * dim + j] = v < -c ? -c : (v > c ? c : v);
        }
}
