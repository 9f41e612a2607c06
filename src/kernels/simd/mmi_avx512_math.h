/* SPDX-License-Identifier: MIT */
/*
 * mmi_avx512_math.h — vector math shared by the *_avx512.c kernel files (and only by them: it
 * needs the AVX-512 F/DQ/BW/VL flags or the target pragma of mmi_avx512_target.h, which those
 * files include first). The 16-lane twin of mmi_avx2_math.h: the same exponential with the
 * same operations in the same order, so every lane rounds exactly as the AVX2 lane would, and
 * the AVX-512 kernels inherit the AVX2 kernels' documented accuracy unchanged.
 */
#ifndef MMI_AVX512_MATH_H
#define MMI_AVX512_MATH_H

#include "mmi_avx512_target.h"

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* Forced inline for the same reason as MMI_AVX2_INLINE (operands stay in registers). */
#if defined(__GNUC__) || defined(__clang__)
#define MMI_AVX512_INLINE static inline __attribute__((always_inline))
#else
#define MMI_AVX512_INLINE static inline
#endif

/* The lanes below len - i (all 16 when at least 16 are left): the mask of a loop step whose
 * last step is a tail. Masked loads do not touch memory outside the mask (no fault, no read
 * past a view), masked stores write only inside it. */
MMI_AVX512_INLINE __mmask16 mmi_mask16(int64_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (unsigned)left) - 1u);
}

/* The lanes [0, n) of a 16-lane mask for any n: none when n <= 0, all when n >= 16 (for
 * loops whose second block may start past the end, where mmi_mask16 would shift by a negative
 * amount). */
MMI_AVX512_INLINE __mmask16 mmi_lanes16(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* exp of 16 floats: mmi_exp256's Cephes scheme (range reduction by ln 2 in two parts, degree-6
 * polynomial, exponent bits) with the same constants and operations, about 2 ulp. Above 88.38
 * it returns +Inf, below -88.38 (including -Inf) exactly 0; a NaN lane gives a finite value
 * (the clamp), which callers that must propagate NaN patch back. */
MMI_AVX512_INLINE __m512 mmi_exp512(__m512 x)
{
    const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-88.3762626647949f);
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i bias = _mm512_set1_epi32(127);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __m512 fx, z, y;
    __m512i e, h, r;
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    /* roundscale with scale 0 and round-to-nearest is _mm256_round_ps(.., NEAREST) */
    fx = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, c1, x);
    x = _mm512_fnmadd_ps(fx, c2, x);
    z = _mm512_mul_ps(x, x);
    y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, one));
    /* 2^fx in two halves h and fx - h, as in mmi_exp256 (fx in [-128, 128] after the clamp). */
    e = _mm512_cvtps_epi32(fx);
    h = _mm512_srai_epi32(e, 1);
    r = _mm512_sub_epi32(e, h);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h, bias), 23)));
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(r, bias), 23)));
    y = _mm512_mask_blend_ps(over, y, _mm512_set1_ps(INFINITY));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

/* lo += lanes 0..7 of v widened to float64, hi += lanes 8..15. */
MMI_AVX512_INLINE void mmi_add_pd512(__m512d *lo, __m512d *hi, __m512 v)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

/* exp of 16 floats by vscalefps: the AVX2 exp's reduction and polynomial, at most 1.25 ulp
 * measured, 0 below FLT_MIN's log (not mmi_exp512's edge), NaN kept, Inf on overflow. max and min return their second operand when one
 * is NaN, so NaN passes the clamp; the clamp keeps +-Inf out of the reduction. */
MMI_AVX512_INLINE __m512 mmi_exp512_scalef(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.336544f), hi = _mm512_set1_ps(89.0f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ); /* x >= FLT_MIN's log, NaN */
    __m512 n, z, y;
    x = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
    n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), x);
    z = _mm512_mul_ps(x, x);
    y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(keep, y, n); /* y 2^n, correctly rounded, Inf on overflow */
}

/* In place: r[i] (16 floats of row i) becomes column i of the 16x16 block. Unpacks and shuffles
 * inside 128-bit lanes give, in u[4q + c], lane L = rows 4q..4q+3 of column 4L + c; two rounds
 * of 128-bit lane shuffles then transpose the 4x4 grid of lanes (the GEMM's transposing packs,
 * the selective scan's channel blocks). */
MMI_AVX512_INLINE void mmi_transpose16_avx512(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int q = 0; q < 8; q++) {
        t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    for (int q = 0; q < 4; q++) {
        u[4 * q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

#endif /* MMI_HAVE_AVX512 */
#endif /* MMI_AVX512_MATH_H */
