/* SPDX-License-Identifier: MIT */
/* loss_tiles_avx512.c — AVX-512 (F/DQ/BW/VL) bodies of the tiled losses' element-wise loops,
 * the 16-lane twins of loss_tiles_avx2.c with the same contracts (mmi_loss_kernels.h) and
 * accuracy: each lane runs the AVX2 lane's exp (mmi_exp512, about 2 ulp, 0 below -88.38) and
 * log1p (log of u = fl(1 + e) with Cephes' logf polynomial plus the rounding correction
 * (e - (u - 1)) / u). Sums go to float64 lanes (two zmm of 8 per sum); only their final
 * horizontal order differs from the AVX2 set. Tails run the same vector code under a mask
 * instead of the scalar libm forms: the lanes past len are neither read, nor stored, nor
 * summed. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_loss_kernels.h"
#include "../simd/mmi_avx512_math.h"

#ifdef MMI_HAVE_AVX512

/* log1p(e) for e in [0, 1], given u = 1 + e and ru = 1 / u: loss_tiles_avx2.c's v_log1p01. */
MMI_AVX512_INLINE __m512 v_log1p01(__m512 e, __m512 u, __m512 ru)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __mmask16 big = _mm512_cmp_ps_mask(u, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    __m512 m = _mm512_mask_mul_ps(u, big, u, _mm512_set1_ps(0.5f));
    __m512 k = _mm512_maskz_mov_ps(big, _mm512_set1_ps(0.693147180559945f));
    __m512 f = _mm512_sub_ps(m, one); /* exact: m in [0.7, 1.42] */
    __m512 z = _mm512_mul_ps(f, f);
    __m512 p = _mm512_set1_ps(7.0376836292e-2f);
    __m512 corr = _mm512_mul_ps(_mm512_sub_ps(e, _mm512_sub_ps(u, one)), ru);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.1514610310e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.1676998740e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.2420140846e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.4249322787e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.6668057665e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.0000714765e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-2.4999993993e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(3.3333331174e-1f));
    p = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    p = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, p);
    return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(f, p), k), corr);
}

/* softplus(v) and sigmoid(v) from one exp(-|v|). */
MMI_AVX512_INLINE void v_softplus_sigmoid(__m512 v, __m512 *sp, __m512 *sg)
{
    __m512 e = mmi_exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(v))); /* exp(-|v|) */
    __m512 u = _mm512_add_ps(e, _mm512_set1_ps(1.0f));
    __m512 ru = _mm512_div_ps(_mm512_set1_ps(1.0f), u);
    __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
    *sp = _mm512_add_ps(_mm512_max_ps(v, _mm512_setzero_ps()), v_log1p01(e, u, ru));
    *sg = _mm512_mask_blend_ps(pos, _mm512_mul_ps(e, ru), ru);
}

MMI_AVX512_INLINE double hsum_pd(__m512d lo, __m512d hi)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

static float x_row_max(const float *z, int64_t len)
{
    __m512 vm = _mm512_set1_ps(-INFINITY);
    float m = z[0], t[16];
    for (int64_t j = 0; j < len; j += 16) /* lanes past len keep vm (no read) */
        vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(vm, mmi_mask16(len - j), z + j));
    _mm512_storeu_ps(t, vm);
    for (int l = 0; l < 16; l++) m = t[l] > m ? t[l] : m;
    return m;
}

static double x_row_expsum(const float *z, const float *w, int64_t len, float m, double *wsum)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, w0 = s0, w1 = s0;
    __m512 vm = _mm512_set1_ps(m);
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __m512 e =
            _mm512_maskz_mov_ps(k, mmi_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, z + j), vm)));
        mmi_add_pd512(&s0, &s1, e);
        mmi_add_pd512(&w0, &w1, _mm512_mul_ps(e, _mm512_maskz_loadu_ps(k, w + j)));
    }
    *wsum += hsum_pd(w0, w1);
    return hsum_pd(s0, s1);
}

static void x_col_max(const float *z, int64_t ldz, int64_t rows, int64_t len, float *mx)
{
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __m512 vm = _mm512_maskz_loadu_ps(k, mx + j);
        for (int64_t i = 0; i < rows; i++)
            vm = _mm512_max_ps(vm, _mm512_maskz_loadu_ps(k, z + i * ldz + j));
        _mm512_mask_storeu_ps(mx + j, k, vm);
    }
}

static void x_col_expsum(const float *z, int64_t ldz, int64_t rows, int64_t len, const float *m,
                         double *acc, double *wacc)
{
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __mmask8 klo = (__mmask8)(k & 0xFF), khi = (__mmask8)(k >> 8);
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
        __m512 vm = _mm512_maskz_loadu_ps(k, m + j);
        for (int64_t i = 0; i < rows; i++) {
            __m512 zi = _mm512_maskz_loadu_ps(k, z + i * ldz + j);
            __m512 e = mmi_exp512(_mm512_sub_ps(zi, vm));
            mmi_add_pd512(&a0, &a1, e);
            mmi_add_pd512(&b0, &b1, _mm512_mul_ps(e, zi));
        }
        _mm512_mask_storeu_pd(acc + j, klo, _mm512_add_pd(_mm512_maskz_loadu_pd(klo, acc + j), a0));
        _mm512_mask_storeu_pd(acc + j + 8, khi,
                              _mm512_add_pd(_mm512_maskz_loadu_pd(khi, acc + j + 8), a1));
        _mm512_mask_storeu_pd(wacc + j, klo,
                              _mm512_add_pd(_mm512_maskz_loadu_pd(klo, wacc + j), b0));
        _mm512_mask_storeu_pd(wacc + j + 8, khi,
                              _mm512_add_pd(_mm512_maskz_loadu_pd(khi, wacc + j + 8), b1));
    }
}

static void x_clip_grad_row(float *z, int64_t len, float lr, const float *lc)
{
    __m512 vl = _mm512_set1_ps(lr);
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __m512 v = _mm512_maskz_loadu_ps(k, z + j);
        __m512 g = _mm512_add_ps(mmi_exp512(_mm512_sub_ps(v, vl)),
                                 mmi_exp512(_mm512_sub_ps(v, _mm512_maskz_loadu_ps(k, lc + j))));
        _mm512_mask_storeu_ps(z + j, k, g);
    }
}

static double x_siglip_row(float *z, int64_t len, float bias, double *gsum, double *gzsum)
{
    __m512d l0 = _mm512_setzero_pd(), l1 = l0, g0 = l0, g1 = l0, h0 = l0, h1 = l0;
    __m512 vb = _mm512_set1_ps(bias);
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __m512 zj = _mm512_maskz_loadu_ps(k, z + j), sp, g;
        v_softplus_sigmoid(_mm512_add_ps(zj, vb), &sp, &g);
        /* the lanes past len hold softplus(bias) and sigmoid(bias): not summed */
        sp = _mm512_maskz_mov_ps(k, sp);
        g = _mm512_maskz_mov_ps(k, g);
        mmi_add_pd512(&l0, &l1, sp);
        mmi_add_pd512(&g0, &g1, g);
        mmi_add_pd512(&h0, &h1, _mm512_mul_ps(g, zj));
        _mm512_mask_storeu_ps(z + j, k, g);
    }
    *gsum += hsum_pd(g0, g1);
    *gzsum += hsum_pd(h0, h1);
    return hsum_pd(l0, l1);
}

static void x_itc_grad_row(float *s, const float *sm, int64_t len, float ls, float alpha, float lm)
{
    __m512 vls = _mm512_set1_ps(ls), vlm = _mm512_set1_ps(lm), va = _mm512_set1_ps(alpha);
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 k = mmi_mask16(len - j);
        __m512 p = mmi_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), vls));
        __m512 q = mmi_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sm + j), vlm));
        _mm512_mask_storeu_ps(s + j, k, _mm512_fnmadd_ps(va, q, p));
    }
}

/* lo/hi -= (y z) of the 16 lanes, both widened to float64 before the product. */
MMI_AVX512_INLINE void sub_prod_pd(__m512d *lo, __m512d *hi, __m512 y, __m512 z)
{
    *lo = _mm512_sub_pd(*lo, _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(y)),
                                           _mm512_cvtps_pd(_mm512_castps512_ps256(z))));
    *hi = _mm512_sub_pd(*hi, _mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(y, 1)),
                                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(z, 1))));
}

static double x_bce(const float *z, const float *y, int64_t count, float scale, float *dz)
{
    __m512d l0 = _mm512_setzero_pd(), l1 = l0;
    __m512 vs = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 k = mmi_mask16(count - i);
        __m512 zi = _mm512_maskz_loadu_ps(k, z + i), yi = _mm512_maskz_loadu_ps(k, y + i), sp, g;
        v_softplus_sigmoid(zi, &sp, &g);
        /* softplus(z) - y z, both terms widened before subtracting, as the scalar path does;
         * the lanes past count (z = y = 0, softplus log 2) are zeroed first */
        mmi_add_pd512(&l0, &l1, _mm512_maskz_mov_ps(k, sp));
        sub_prod_pd(&l0, &l1, yi, zi);
        if (dz) _mm512_mask_storeu_ps(dz + i, k, _mm512_mul_ps(vs, _mm512_sub_ps(g, yi)));
    }
    return hsum_pd(l0, l1);
}

static const mmi_loss_tile_ops k_avx512 = {
    x_row_max,       x_row_expsum, x_col_max,      x_col_expsum,
    x_clip_grad_row, x_siglip_row, x_itc_grad_row, x_bce,
};

const mmi_loss_tile_ops *mmi_loss_tile_ops_avx512(void) { return &k_avx512; }

#else /* not compiled for AVX-512: the dispatch keeps the AVX2 set on the AVX-512 path */

const mmi_loss_tile_ops *mmi_loss_tile_ops_avx512(void) { return NULL; }

#endif
