/* SPDX-License-Identifier: MIT */
/* norm.c — row-wise non-affine LayerNorm pieces shared by the attention and GAU blocks (their
 * pre-norm), with statistics in float64. */
#include "mmi_elementwise.h"

#include <math.h>

void mmi_layernorm_rows_fwd(int64_t rows, int64_t d, double eps, const float *x, float *y,
                            double *st)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        double mu = 0, ss = 0, inv;
        for (int64_t i = 0; i < d; i++) mu += xr[i];
        mu /= (double)d;
        for (int64_t i = 0; i < d; i++) ss += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        inv = 1.0 / sqrt(ss / (double)d + eps);
        st[2 * r] = mu, st[2 * r + 1] = inv;
        for (int64_t i = 0; i < d; i++) y[r * d + i] = (float)(((double)xr[i] - mu) * inv);
    }
}

void mmi_layernorm_rows_lin(int64_t rows, int64_t d, const float *xn, const double *st,
                            const float *g, float *dx, int accumulate)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * d, *hr = xn + r * d;
        double sg = 0, sgh = 0;
        for (int64_t i = 0; i < d; i++) sg += gr[i], sgh += (double)gr[i] * hr[i];
        sg /= (double)d, sgh /= (double)d;
        for (int64_t i = 0; i < d; i++) {
            const float v = (float)(st[2 * r + 1] * (gr[i] - sg - hr[i] * sgh));
            dx[r * d + i] = accumulate ? dx[r * d + i] + v : v;
        }
    }
}
