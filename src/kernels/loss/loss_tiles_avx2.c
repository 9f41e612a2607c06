/* SPDX-License-Identifier: MIT */
/* loss_tiles_avx2.c — AVX2/FMA bodies of the tiled losses' element-wise loops (compiled with
 * -mavx2 -mfma; the dispatch hands the set out only on CPUs that run them). The tiles hold B^2 logits per call, so
 * libm's scalar expf/log1pf would cost as much as the GEMMs; here 8 lanes run
 *   exp:   range reduction by ln 2 split in two parts, Cephes' degree-6 polynomial, exponent
 *          bits (about 2 ulp; arguments are clamped to [-87.3, 88], so a very negative argument
 *          gives about 1e-38 instead of 0);
 *   log1p: of e in [0, 1] as log(u) for u = fl(1 + e) (reduced to [sqrt(1/2), sqrt 2], Cephes'
 *          logf polynomial) plus the rounding correction (e - (u - 1)) / u, so tiny e keep full
 *          relative accuracy (SigLIP's negatives sit at exp(-10) and below).
 * Sums go to float64 lanes. Tails shorter than 8 run the scalar libm forms. */
#include "../simd/mmi_avx2_target.h"
#include "mmi_loss_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "../simd/mmi_avx2_math.h"
#include <math.h>

/* log1p(e) for e in [0, 1], given u = 1 + e and ru = 1 / u (the caller needs both anyway). */
static inline __m256 v_log1p01(__m256 e, __m256 u, __m256 ru)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 big = _mm256_cmp_ps(u, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
    __m256 m = _mm256_blendv_ps(u, _mm256_mul_ps(u, _mm256_set1_ps(0.5f)), big);
    __m256 k = _mm256_and_ps(big, _mm256_set1_ps(0.693147180559945f));
    __m256 f = _mm256_sub_ps(m, one); /* exact: m in [0.7, 1.42] */
    __m256 z = _mm256_mul_ps(f, f);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    __m256 corr = _mm256_mul_ps(_mm256_sub_ps(e, _mm256_sub_ps(u, one)), ru);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174e-1f));
    p = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    p = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, p);
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(f, p), k), corr);
}

/* softplus(v) and sigmoid(v) from one exp(-|v|). */
static inline void v_softplus_sigmoid(__m256 v, __m256 *sp, __m256 *sg)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 e = mmi_exp256(_mm256_or_ps(v, sign)); /* exp(-|v|) */
    __m256 u = _mm256_add_ps(e, _mm256_set1_ps(1.0f));
    __m256 ru = _mm256_div_ps(_mm256_set1_ps(1.0f), u);
    __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
    *sp = _mm256_add_ps(_mm256_max_ps(v, _mm256_setzero_ps()), v_log1p01(e, u, ru));
    *sg = _mm256_blendv_ps(_mm256_mul_ps(e, ru), ru, pos);
}

static inline void s_softplus_sigmoid(float v, float *sp, float *sg)
{
    float e = expf(-fabsf(v));
    float r = 1.0f / (1.0f + e);
    *sp = (v > 0.0f ? v : 0.0f) + log1pf(e);
    *sg = v >= 0.0f ? r : e * r;
}

/* acc += the 8 lanes of v widened to float64. */
static inline void add_pd(__m256d *lo, __m256d *hi, __m256 v)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double hsum_pd(__m256d lo, __m256d hi)
{
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(lo, hi));
    return (t[0] + t[1]) + (t[2] + t[3]);
}

static float a_row_max(const float *z, int64_t len)
{
    int64_t j = 0;
    float m = z[0], t[8];
    if (len >= 8) {
        __m256 vm = _mm256_loadu_ps(z);
        for (j = 8; j + 8 <= len; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(z + j));
        _mm256_storeu_ps(t, vm);
        for (int l = 0; l < 8; l++) m = t[l] > m ? t[l] : m;
    }
    for (; j < len; j++) m = z[j] > m ? z[j] : m;
    return m;
}

static double a_row_expsum(const float *z, const float *w, int64_t len, float m, double *wsum)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, w0 = s0, w1 = s0;
    __m256 vm = _mm256_set1_ps(m);
    int64_t j = 0;
    double s, ws;
    for (; j + 8 <= len; j += 8) {
        __m256 e = mmi_exp256(_mm256_sub_ps(_mm256_loadu_ps(z + j), vm));
        add_pd(&s0, &s1, e);
        add_pd(&w0, &w1, _mm256_mul_ps(e, _mm256_loadu_ps(w + j)));
    }
    s = hsum_pd(s0, s1);
    ws = hsum_pd(w0, w1);
    for (; j < len; j++) {
        double e = (double)expf(z[j] - m);
        s += e;
        ws += e * (double)w[j];
    }
    *wsum += ws;
    return s;
}

static void a_col_max(const float *z, int64_t ldz, int64_t rows, int64_t len, float *mx)
{
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256 vm = _mm256_loadu_ps(mx + j);
        for (int64_t i = 0; i < rows; i++) vm = _mm256_max_ps(vm, _mm256_loadu_ps(z + i * ldz + j));
        _mm256_storeu_ps(mx + j, vm);
    }
    for (; j < len; j++)
        for (int64_t i = 0; i < rows; i++) mx[j] = z[i * ldz + j] > mx[j] ? z[i * ldz + j] : mx[j];
}

static void a_col_expsum(const float *z, int64_t ldz, int64_t rows, int64_t len, const float *m,
                         double *acc, double *wacc)
{
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
        __m256 vm = _mm256_loadu_ps(m + j);
        for (int64_t i = 0; i < rows; i++) {
            __m256 zi = _mm256_loadu_ps(z + i * ldz + j);
            __m256 e = mmi_exp256(_mm256_sub_ps(zi, vm));
            add_pd(&a0, &a1, e);
            add_pd(&b0, &b1, _mm256_mul_ps(e, zi));
        }
        _mm256_storeu_pd(acc + j, _mm256_add_pd(_mm256_loadu_pd(acc + j), a0));
        _mm256_storeu_pd(acc + j + 4, _mm256_add_pd(_mm256_loadu_pd(acc + j + 4), a1));
        _mm256_storeu_pd(wacc + j, _mm256_add_pd(_mm256_loadu_pd(wacc + j), b0));
        _mm256_storeu_pd(wacc + j + 4, _mm256_add_pd(_mm256_loadu_pd(wacc + j + 4), b1));
    }
    for (; j < len; j++)
        for (int64_t i = 0; i < rows; i++) {
            double e = (double)expf(z[i * ldz + j] - m[j]);
            acc[j] += e;
            wacc[j] += e * (double)z[i * ldz + j];
        }
}

static void a_clip_grad_row(float *z, int64_t len, float lr, const float *lc)
{
    __m256 vl = _mm256_set1_ps(lr);
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256 v = _mm256_loadu_ps(z + j);
        __m256 g = _mm256_add_ps(mmi_exp256(_mm256_sub_ps(v, vl)),
                                 mmi_exp256(_mm256_sub_ps(v, _mm256_loadu_ps(lc + j))));
        _mm256_storeu_ps(z + j, g);
    }
    for (; j < len; j++) z[j] = expf(z[j] - lr) + expf(z[j] - lc[j]);
}

static double a_siglip_row(float *z, int64_t len, float bias, double *gsum, double *gzsum)
{
    __m256d l0 = _mm256_setzero_pd(), l1 = l0, g0 = l0, g1 = l0, h0 = l0, h1 = l0;
    __m256 vb = _mm256_set1_ps(bias);
    int64_t j = 0;
    double l, gs, gz;
    for (; j + 8 <= len; j += 8) {
        __m256 zj = _mm256_loadu_ps(z + j), sp, g;
        v_softplus_sigmoid(_mm256_add_ps(zj, vb), &sp, &g);
        add_pd(&l0, &l1, sp);
        add_pd(&g0, &g1, g);
        add_pd(&h0, &h1, _mm256_mul_ps(g, zj));
        _mm256_storeu_ps(z + j, g);
    }
    l = hsum_pd(l0, l1);
    gs = hsum_pd(g0, g1);
    gz = hsum_pd(h0, h1);
    for (; j < len; j++) {
        float sp, g;
        s_softplus_sigmoid(z[j] + bias, &sp, &g);
        l += sp;
        gs += g;
        gz += (double)g * (double)z[j];
        z[j] = g;
    }
    *gsum += gs;
    *gzsum += gz;
    return l;
}

static void a_itc_grad_row(float *s, const float *sm, int64_t len, float ls, float alpha, float lm)
{
    __m256 vls = _mm256_set1_ps(ls), vlm = _mm256_set1_ps(lm), va = _mm256_set1_ps(alpha);
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256 p = mmi_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vls));
        __m256 q = mmi_exp256(_mm256_sub_ps(_mm256_loadu_ps(sm + j), vlm));
        _mm256_storeu_ps(s + j, _mm256_fnmadd_ps(va, q, p));
    }
    for (; j < len; j++) s[j] = expf(s[j] - ls) - alpha * expf(sm[j] - lm);
}

static double a_bce(const float *z, const float *y, int64_t count, float scale, float *dz)
{
    __m256d l0 = _mm256_setzero_pd(), l1 = l0;
    __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    double l;
    for (; i + 8 <= count; i += 8) {
        __m256 zi = _mm256_loadu_ps(z + i), yi = _mm256_loadu_ps(y + i), sp, g;
        v_softplus_sigmoid(zi, &sp, &g);
        /* softplus(z) - y z: both terms widened before subtracting, as the scalar path does. */
        add_pd(&l0, &l1, sp);
        l0 = _mm256_sub_pd(l0, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(yi)),
                                             _mm256_cvtps_pd(_mm256_castps256_ps128(zi))));
        l1 = _mm256_sub_pd(l1, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(yi, 1)),
                                             _mm256_cvtps_pd(_mm256_extractf128_ps(zi, 1))));
        if (dz) _mm256_storeu_ps(dz + i, _mm256_mul_ps(vs, _mm256_sub_ps(g, yi)));
    }
    l = hsum_pd(l0, l1);
    for (; i < count; i++) {
        float sp, g;
        s_softplus_sigmoid(z[i], &sp, &g);
        l += (double)sp - (double)y[i] * (double)z[i];
        if (dz) dz[i] = scale * (g - y[i]);
    }
    return l;
}

static const mmi_loss_tile_ops k_avx2 = {
    a_row_max,       a_row_expsum, a_col_max,      a_col_expsum,
    a_clip_grad_row, a_siglip_row, a_itc_grad_row, a_bce,
};

const mmi_loss_tile_ops *mmi_loss_tile_ops_avx2(void) { return &k_avx2; }

#else /* no AVX2/FMA in this compiler or target */

const mmi_loss_tile_ops *mmi_loss_tile_ops_avx2(void) { return NULL; }

#endif
