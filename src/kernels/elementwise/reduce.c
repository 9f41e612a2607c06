/* SPDX-License-Identifier: MIT */
/* reduce.c — row broadcasts and float64 reductions used around the GEMMs of dense layers
 * (bias add, bias gradient) and by gradient clipping (global sum of squares), with run-time
 * dispatch to reduce_avx2.c (see mmi_elementwise_isa_get). */
#include "mmi_elementwise.h"

void mmi_add_rows(float *y, const float *b, int64_t rows, int64_t n)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(rows >= 0 && n >= 0 && (rows == 0 || n == 0 || (y && b)));
    if (v && v->add_rows(y, b, rows, n)) return;
    for (int64_t r = 0; r < rows; r++, y += n)
        for (int64_t j = 0; j < n; j++) y[j] += b[j];
}

void mmi_colsum_f64(const float *x, int64_t rows, int64_t n, double *acc)
{
    mmi_colsum_f64_ld(x, rows, n, n, acc);
}

void mmi_colsum_f64_ld(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(rows >= 0 && n >= 0 && ld >= n && (rows == 0 || n == 0 || (x && acc)));
    if (v && v->colsum_f64(x, rows, n, ld, acc)) return;
    for (int64_t r = 0; r < rows; r++, x += ld)
        for (int64_t j = 0; j < n; j++) acc[j] += (double)x[j];
}

double mmi_sumsq_f64(const float *x, int64_t n)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, out;
    int64_t i = 0;
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || x));
    if (v && v->sumsq_f64(x, n, &out)) return out;
    /* Eight independent sums: no add waits for the previous one, and the order is the one the
     * AVX2 body uses (two 4-lane vectors). */
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < n; i++, k++) lane[k] += (double)x[i] * (double)x[i];
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
           ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

void mmi_lerp(float *d, const float *s, int64_t n, float keep, float take)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (d && s)));
    if (v && v->lerp && v->lerp(d, s, n, keep, take)) return;
    for (int64_t i = 0; i < n; i++) d[i] = d[i] * keep + take * s[i];
}

void mmi_bias_act_rows(float *z, const float *b, float *ya, int32_t kind, int64_t rows, int64_t n,
                       int64_t ld)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(rows >= 0 && n >= 0 && ld >= n && (rows == 0 || n == 0 || z));
    if (v && v->bias_act_rows && v->bias_act_rows(z, b, ya, kind, rows, n, ld)) return;
    for (int64_t r = 0; r < rows; r++) {
        if (b) mmi_add_rows(z + r * ld, b, 1, n);
        if (ya) mmi_act_forward(kind, z + r * ld, ya + r * ld, n);
    }
}
