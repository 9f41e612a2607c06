/* SPDX-License-Identifier: MIT */
/* loss_tiles.c — the element-wise inner loops of the tiled losses, portable C with libm, and the
 * choice between them and the AVX2/FMA (loss_tiles_avx2.c) or AVX-512 (loss_tiles_avx512.c)
 * set. The formulas are the stable forms of docs/LOSSES.md §Conventions: softplus(v) =
 * max(v, 0) + log1p(exp(-|v|)), sigmoid from the same exp(-|v|), exponentials always of a
 * max-shifted argument. */
#include "mmi_loss_kernels.h"

#include <math.h>

static float p_row_max(const float *z, int64_t len)
{
    float m = z[0];
    for (int64_t j = 1; j < len; j++) m = z[j] > m ? z[j] : m;
    return m;
}

static double p_row_expsum(const float *z, const float *w, int64_t len, float m, double *wsum)
{
    double s = 0.0, ws = 0.0;
    for (int64_t j = 0; j < len; j++) {
        double e = (double)expf(z[j] - m);
        s += e;
        ws += e * (double)w[j];
    }
    *wsum += ws;
    return s;
}

static void p_col_max(const float *z, int64_t ldz, int64_t rows, int64_t len, float *mx)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *zi = z + i * ldz;
        for (int64_t j = 0; j < len; j++) mx[j] = zi[j] > mx[j] ? zi[j] : mx[j];
    }
}

static void p_col_expsum(const float *z, int64_t ldz, int64_t rows, int64_t len, const float *m,
                         double *acc, double *wacc)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *zi = z + i * ldz;
        for (int64_t j = 0; j < len; j++) {
            double e = (double)expf(zi[j] - m[j]);
            acc[j] += e;
            wacc[j] += e * (double)zi[j];
        }
    }
}

static void p_clip_grad_row(float *z, int64_t len, float lr, const float *lc)
{
    for (int64_t j = 0; j < len; j++) z[j] = expf(z[j] - lr) + expf(z[j] - lc[j]);
}

/* softplus(v) and sigmoid(v) from one exp(-|v|). */
static void softplus_sigmoid(float v, float *sp, float *sg)
{
    float e = expf(-fabsf(v));
    float r = 1.0f / (1.0f + e);
    *sp = (v > 0.0f ? v : 0.0f) + log1pf(e);
    *sg = v >= 0.0f ? r : e * r;
}

static double p_siglip_row(float *z, int64_t len, float bias, double *gsum, double *gzsum)
{
    double l = 0.0, gs = 0.0, gz = 0.0;
    for (int64_t j = 0; j < len; j++) {
        float sp, g;
        softplus_sigmoid(z[j] + bias, &sp, &g);
        l += sp;
        gs += g;
        gz += (double)g * (double)z[j];
        z[j] = g;
    }
    *gsum += gs;
    *gzsum += gz;
    return l;
}

static void p_itc_grad_row(float *s, const float *sm, int64_t len, float ls, float alpha, float lm)
{
    for (int64_t j = 0; j < len; j++) s[j] = expf(s[j] - ls) - alpha * expf(sm[j] - lm);
}

static double p_bce(const float *z, const float *y, int64_t count, float scale, float *dz)
{
    double l = 0.0;
    for (int64_t i = 0; i < count; i++) {
        float sp, g;
        softplus_sigmoid(z[i], &sp, &g);
        l += (double)sp - (double)y[i] * (double)z[i];
        if (dz) dz[i] = scale * (g - y[i]);
    }
    return l;
}

const mmi_loss_tile_ops mmi_loss_tile_ops_portable = {
    p_row_max,       p_row_expsum, p_col_max,      p_col_expsum,
    p_clip_grad_row, p_siglip_row, p_itc_grad_row, p_bce,
};

const mmi_loss_tile_ops *mmi_loss_tile_ops_get(void)
{
    return mmi_loss_tile_ops_for(mmi_simd_path_get());
}
