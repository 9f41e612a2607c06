/* SPDX-License-Identifier: MIT */
/*
 * mmi_avx2_math.h — vector math shared by the *_avx2.c kernel files (and only by them: it needs
 * -mavx2 -mfma). One inline attribute and one exponential for every AVX2 kernel, so activations, attention, scans and
 * losses round the same way.
 */
#ifndef MMI_AVX2_MATH_H
#define MMI_AVX2_MATH_H

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* Small vector helpers called once per vector inside the hot loops: forced inline so their
 * operands stay in registers (at -O2 GCC would otherwise keep little arrays of them on the
 * stack). One definition for every *_avx2.c file. */
#if defined(__GNUC__) || defined(__clang__)
#define MMI_AVX2_INLINE static inline __attribute__((always_inline))
#else
#define MMI_AVX2_INLINE static inline
#endif

/* e^x / 2^fx for fx = round(x log2 e) (x already clamped): the Cephes reduction by fx ln 2 in
 * two parts and the degree-6 polynomial. mmi_exp256's core, shared by the kernels' own
 * exponentials (softmax rows, elu+1) so they round exactly as it does. */
MMI_AVX2_INLINE __m256 mmi_exp256_poly(__m256 x, __m256 fx)
{
    __m256 z, y;
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    z = _mm256_mul_ps(x, x);
    y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    return _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
}

/* exp of 8 floats: the Cephes expf scheme (range reduction by ln 2 in two parts, degree-6
 * polynomial, exponent bits), about 2 ulp. Above 88.38 it returns +Inf: expf overflows only
 * above 88.72, so results in (2.4e38, FLT_MAX] become +Inf here, as the callers expect of
 * an overflowing exp (the activations saturate on it; softmax rows subtract their max first);
 * below -88.38 (including -Inf, e.g. masked logits) exactly 0: results there are below
 * 1.2e-38, in the denormal range, so flushing costs at most that much absolute error. NaN
 * gives NaN (the input's payload, quieted), so callers need no NaN patch of their own. */
MMI_AVX2_INLINE __m256 mmi_exp256(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 fx, y;
    __m256i e, h, r;
    /* The bounds first and x second: max and min return their second operand when one is NaN,
     * so the clamp passes NaN on (and the compares above are false for it), which keeps NaN
     * through the reduction and the scaling: NaN in, NaN out, as expf. For two non-NaN values
     * the operand order does not change the result, so no other input changes. */
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    fx = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    y = mmi_exp256_poly(x, fx);
    /* 2^fx through the exponent field. After the clamp fx is in [-128, 128], which does not
     * fit one biased exponent at either end, so it is applied as two halves h and fx - h
     * (both powers of two: the product is exact wherever the result is a normal float). */
    e = _mm256_cvtps_epi32(fx);
    h = _mm256_srai_epi32(e, 1);
    r = _mm256_sub_epi32(e, h);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23)));
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(r, bias), 23)));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    return _mm256_andnot_ps(under, y);
}

/* The 8x8 transpose on eight named registers passed by address: on return *ri is column i.
 * Named variables and not an array, so that after inlining the compiler keeps the block in
 * ymm registers (arrays indexed in loops went through the stack at -O2, the reason
 * mmi_transpose16_avx512 uses named variables too). */
/* clang-format off */
MMI_AVX2_INLINE void mmi_transpose8_regs_avx2(__m256 *r0, __m256 *r1, __m256 *r2, __m256 *r3,
                                              __m256 *r4, __m256 *r5, __m256 *r6, __m256 *r7)
{
    __m256 t0 = _mm256_unpacklo_ps(*r0, *r1), t1 = _mm256_unpackhi_ps(*r0, *r1);
    __m256 t2 = _mm256_unpacklo_ps(*r2, *r3), t3 = _mm256_unpackhi_ps(*r2, *r3);
    __m256 t4 = _mm256_unpacklo_ps(*r4, *r5), t5 = _mm256_unpackhi_ps(*r4, *r5);
    __m256 t6 = _mm256_unpacklo_ps(*r6, *r7), t7 = _mm256_unpackhi_ps(*r6, *r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    *r0 = _mm256_permute2f128_ps(s0, s4, 0x20), *r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
    *r2 = _mm256_permute2f128_ps(s2, s6, 0x20), *r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
    *r4 = _mm256_permute2f128_ps(s0, s4, 0x31), *r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
    *r6 = _mm256_permute2f128_ps(s2, s6, 0x31), *r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}
/* clang-format on */

/* In place: r[i] (8 floats of row i) becomes column i of the 8x8 block (the GEMM's A packing,
 * the selective scan's channel blocks), on constant indices so the array stays in registers. */
MMI_AVX2_INLINE void mmi_transpose8_avx2(__m256 r[8])
{
    mmi_transpose8_regs_avx2(&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7]);
}

/* An 8 x 8 block moved through registers: loads the first kl (1..8) floats of rows i < rows
 * of src (stride ld; rows past `rows` and lanes past kl are zero and not read), transposes,
 * and stores column t for t < kt (8 floats each) at dst + t * dld. Used by the GEMM's
 * transposing B packs, its small-k NT kernel and the chunkwise attention transposes. */
/* clang-format off */
MMI_AVX2_INLINE void mmi_transpose8_block_avx2(const float *src, int64_t ld, int64_t rows,
                                               int64_t kl, float *dst, int64_t dld, int64_t kt)
{
    const __m256 z = _mm256_setzero_ps();
    const __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)kl),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 r0, r1, r2, r3, r4, r5, r6, r7;
#define MMI_T8_LD(i) r##i = (i) >= rows ? z : kl == 8 ? _mm256_loadu_ps(src + (i) * ld)        \
                                          : _mm256_maskload_ps(src + (i) * ld, km);
    MMI_T8_LD(0) MMI_T8_LD(1) MMI_T8_LD(2) MMI_T8_LD(3)
    MMI_T8_LD(4) MMI_T8_LD(5) MMI_T8_LD(6) MMI_T8_LD(7)
#undef MMI_T8_LD
    mmi_transpose8_regs_avx2(&r0, &r1, &r2, &r3, &r4, &r5, &r6, &r7);
    _mm256_storeu_ps(dst, r0);
    if (kt > 1) _mm256_storeu_ps(dst + dld, r1);
    if (kt > 2) _mm256_storeu_ps(dst + 2 * dld, r2);
    if (kt > 3) _mm256_storeu_ps(dst + 3 * dld, r3);
    if (kt > 4) _mm256_storeu_ps(dst + 4 * dld, r4);
    if (kt > 5) _mm256_storeu_ps(dst + 5 * dld, r5);
    if (kt > 6) _mm256_storeu_ps(dst + 6 * dld, r6);
    if (kt > 7) _mm256_storeu_ps(dst + 7 * dld, r7);
}
/* clang-format on */

#endif
#endif
