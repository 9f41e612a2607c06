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
 * it returns +Inf, below -88.38 (including -Inf) exactly 0, NaN gives NaN (the input's
 * payload, quieted). */
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
    /* NaN passes the clamp (max and min return their second operand when one is NaN), as in
     * mmi_exp256 */
    x = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
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
 * is NaN, so NaN passes the clamp; the clamp keeps +-Inf out of the reduction. The body after
 * the clamp: x in [-87.336544, 89] or NaN, keep the lanes not below FLT_MIN's log. */
MMI_AVX512_INLINE __m512 mmi_exp512_scalef_body(__m512 x, __mmask16 keep)
{
    __m512 n, z, y;
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

MMI_AVX512_INLINE __m512 mmi_exp512_scalef(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.336544f), hi = _mm512_set1_ps(89.0f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ); /* x >= FLT_MIN's log, NaN */
    return mmi_exp512_scalef_body(_mm512_min_ps(hi, _mm512_max_ps(lo, x)), keep);
}

/* mmi_exp512_scalef for x <= 0 or NaN, bitwise: the upper clamp, a no-op there (NaN passes
 * it), left out. */
MMI_AVX512_INLINE __m512 mmi_exp512_scalef_nonpos(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.336544f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);
    return mmi_exp512_scalef_body(_mm512_max_ps(lo, x), keep);
}

/* In place: r[i] (16 floats of row i) becomes column i of the 16x16 block. Unpacks and shuffles
 * inside 128-bit lanes give, in u[4q + c], lane L = rows 4q..4q+3 of column 4L + c; two rounds
 * of 128-bit lane shuffles then transpose the 4x4 grid of lanes (the GEMM's transposing packs,
 * the selective scan's channel blocks). */
/* clang-format off */
MMI_AVX512_INLINE void mmi_transpose16_avx512(__m512 r[16])
{
    /* named variables, not arrays indexed in loops: at -O2 the arrays went through the stack */
    __m512 t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
    __m512 u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15;
    __m512 v0, v1, v2, v3;
    t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
    t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
    t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
    t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
    t8 = _mm512_unpacklo_ps(r[8], r[9]), t9 = _mm512_unpackhi_ps(r[8], r[9]);
    t10 = _mm512_unpacklo_ps(r[10], r[11]), t11 = _mm512_unpackhi_ps(r[10], r[11]);
    t12 = _mm512_unpacklo_ps(r[12], r[13]), t13 = _mm512_unpackhi_ps(r[12], r[13]);
    t14 = _mm512_unpacklo_ps(r[14], r[15]), t15 = _mm512_unpackhi_ps(r[14], r[15]);
    u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
    u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
    u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
    u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
    u8 = _mm512_shuffle_ps(t8, t10, 0x44), u9 = _mm512_shuffle_ps(t8, t10, 0xEE);
    u10 = _mm512_shuffle_ps(t9, t11, 0x44), u11 = _mm512_shuffle_ps(t9, t11, 0xEE);
    u12 = _mm512_shuffle_ps(t12, t14, 0x44), u13 = _mm512_shuffle_ps(t12, t14, 0xEE);
    u14 = _mm512_shuffle_ps(t13, t15, 0x44), u15 = _mm512_shuffle_ps(t13, t15, 0xEE);
#define MMI_T16_LANES(a0, a1, a2, a3, b0, b1, b2, b3)                                      \
    v0 = _mm512_shuffle_f32x4(a0, a1, 0x44), v1 = _mm512_shuffle_f32x4(a0, a1, 0xEE);          \
    v2 = _mm512_shuffle_f32x4(a2, a3, 0x44), v3 = _mm512_shuffle_f32x4(a2, a3, 0xEE);          \
    b0 = _mm512_shuffle_f32x4(v0, v2, 0x88), b1 = _mm512_shuffle_f32x4(v0, v2, 0xDD);          \
    b2 = _mm512_shuffle_f32x4(v1, v3, 0x88), b3 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    MMI_T16_LANES(u0, u4, u8, u12, r[0], r[4], r[8], r[12])
    MMI_T16_LANES(u1, u5, u9, u13, r[1], r[5], r[9], r[13])
    MMI_T16_LANES(u2, u6, u10, u14, r[2], r[6], r[10], r[14])
    MMI_T16_LANES(u3, u7, u11, u15, r[3], r[7], r[11], r[15])
#undef MMI_T16_LANES
}

/* A 16 x 16 block moved through registers: loads rows i < rows of src (stride ld, lanes of km;
 * rows past `rows` are zero and not read), transposes them the way mmi_transpose16_avx512 does,
 * and stores column t of the block for t < kt at dst + t * dld (lanes of sm). Sixteen named
 * variables per step rather than an array, so the compiler keeps the block in zmm registers at
 * -O2 (arrays indexed in loops went through the stack). Used by the GEMM's transposing packs
 * and its small-k NT kernel. */
/* clang-format off */
MMI_AVX512_INLINE void mmi_transpose16_block_avx512(const float *src, int64_t ld, int64_t rows,
                                                    __mmask16 km, float *dst, int64_t dld,
                                                    int64_t kt, __mmask16 sm)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15;
    __m512 t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
    __m512 u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15;
    __m512 v0, v1, v2, v3;
#define MMI_T16_LD(i) r##i = (i) < rows ? _mm512_maskz_loadu_ps(km, src + (i) * ld) : z;
    MMI_T16_LD(0) MMI_T16_LD(1) MMI_T16_LD(2) MMI_T16_LD(3)
    MMI_T16_LD(4) MMI_T16_LD(5) MMI_T16_LD(6) MMI_T16_LD(7)
    MMI_T16_LD(8) MMI_T16_LD(9) MMI_T16_LD(10) MMI_T16_LD(11)
    MMI_T16_LD(12) MMI_T16_LD(13) MMI_T16_LD(14) MMI_T16_LD(15)
#undef MMI_T16_LD
    t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
    t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
    t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5);
    t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7);
    t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9);
    t10 = _mm512_unpacklo_ps(r10, r11), t11 = _mm512_unpackhi_ps(r10, r11);
    t12 = _mm512_unpacklo_ps(r12, r13), t13 = _mm512_unpackhi_ps(r12, r13);
    t14 = _mm512_unpacklo_ps(r14, r15), t15 = _mm512_unpackhi_ps(r14, r15);
    u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
    u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
    u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
    u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
    u8 = _mm512_shuffle_ps(t8, t10, 0x44), u9 = _mm512_shuffle_ps(t8, t10, 0xEE);
    u10 = _mm512_shuffle_ps(t9, t11, 0x44), u11 = _mm512_shuffle_ps(t9, t11, 0xEE);
    u12 = _mm512_shuffle_ps(t12, t14, 0x44), u13 = _mm512_shuffle_ps(t12, t14, 0xEE);
    u14 = _mm512_shuffle_ps(t13, t15, 0x44), u15 = _mm512_shuffle_ps(t13, t15, 0xEE);
#define MMI_T16_LANES(a0, a1, a2, a3, b0, b1, b2, b3)                                      \
    v0 = _mm512_shuffle_f32x4(a0, a1, 0x44), v1 = _mm512_shuffle_f32x4(a0, a1, 0xEE);          \
    v2 = _mm512_shuffle_f32x4(a2, a3, 0x44), v3 = _mm512_shuffle_f32x4(a2, a3, 0xEE);          \
    b0 = _mm512_shuffle_f32x4(v0, v2, 0x88), b1 = _mm512_shuffle_f32x4(v0, v2, 0xDD);          \
    b2 = _mm512_shuffle_f32x4(v1, v3, 0x88), b3 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    MMI_T16_LANES(u0, u4, u8, u12, r0, r4, r8, r12)
    MMI_T16_LANES(u1, u5, u9, u13, r1, r5, r9, r13)
    MMI_T16_LANES(u2, u6, u10, u14, r2, r6, r10, r14)
    MMI_T16_LANES(u3, u7, u11, u15, r3, r7, r11, r15)
#undef MMI_T16_LANES
#define MMI_T16_ST(i) if ((i) < kt) _mm512_mask_storeu_ps(dst + (i) * dld, sm, r##i);
    MMI_T16_ST(0) MMI_T16_ST(1) MMI_T16_ST(2) MMI_T16_ST(3)
    MMI_T16_ST(4) MMI_T16_ST(5) MMI_T16_ST(6) MMI_T16_ST(7)
    MMI_T16_ST(8) MMI_T16_ST(9) MMI_T16_ST(10) MMI_T16_ST(11)
    MMI_T16_ST(12) MMI_T16_ST(13) MMI_T16_ST(14) MMI_T16_ST(15)
#undef MMI_T16_ST
}
/* clang-format on */

#endif /* MMI_HAVE_AVX512 */
#endif /* MMI_AVX512_MATH_H */
