/* SPDX-License-Identifier: MIT */
/* act_avx512.c — AVX-512 bodies of the activations act_avx2.c vectorises (forward: tanh,
 * sigmoid, SiLU, ReLU; backward: ReLU, tanh, sigmoid, ReLU²), 16 lanes with masked tails.
 * Each lane performs exactly the AVX2 lane's operations (mmi_exp512 is mmi_exp256's sequence;
 * tanh and sigmoid are act_avx2.c's), so the forward keeps the AVX2 accuracy (a few ulp) and
 * the backward, plain multiplies and subtracts without FMA, is bitwise the portable one. The
 * other kinds return 0 and run their portable bodies, as on the AVX2 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_elementwise.h"
#include "../simd/mmi_avx512_math.h"

#ifdef MMI_HAVE_AVX512

MMI_AVX512_INLINE __m512 tanh512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 ax = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(x, x), p, big, e;
    /* small (|x| < 0.625): x + x z P(z), Cephes' odd polynomial */
    p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    /* large: 1 - 2 / (exp(2|x|) + 1) with x's sign */
    e = mmi_exp512(_mm512_add_ps(ax, ax));
    big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    big = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(big), _mm512_and_si512(sign, _mm512_castps_si512(x))));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, p);
}

MMI_AVX512_INLINE __m512 sigmoid512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = mmi_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

int mmi_act_forward_avx512(int32_t kind, const float *x, float *y, int64_t n)
{
    if (kind != MM_ACT_TANH && kind != MM_ACT_SIGMOID && kind != MM_ACT_SILU && kind != MM_ACT_RELU)
        return 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = mmi_mask16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i), r;
        switch (kind) {
        case MM_ACT_TANH:
            r = tanh512(v); /* NaN stays NaN (mmi_exp512 keeps it), as on the AVX2 path */
            break;
        case MM_ACT_SIGMOID:
            r = sigmoid512(v);
            break;
        case MM_ACT_SILU:
            r = _mm512_mul_ps(v, sigmoid512(v));
            break;
        default:
            r = _mm512_max_ps(_mm512_setzero_ps(), v); /* NaN propagates (second operand) */
            break;
        }
        _mm512_mask_storeu_ps(y + i, k, r);
    }
    return 1;
}

/* y = mmi_exp512(x), masked tail: the primitive itself, for its tests. */
int mmi_exp_avx512(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = mmi_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, k, mmi_exp512(_mm512_maskz_loadu_ps(k, x + i)));
    }
    return 1;
}

int mmi_act_backward_avx512(int32_t kind, const float *x, const float *y, const float *dy,
                            float *dx, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), zero = _mm512_setzero_ps();
    if (kind != MM_ACT_RELU && kind != MM_ACT_TANH && kind != MM_ACT_SIGMOID &&
        kind != MM_ACT_RELU2)
        return 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = mmi_mask16(n - i);
        __m512 g = _mm512_maskz_loadu_ps(k, dy + i), r;
        switch (kind) {
        case MM_ACT_RELU: /* y > 0 ? dy : 0 */
            r = _mm512_maskz_mov_ps(
                _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, y + i), zero, _CMP_GT_OQ), g);
            break;
        case MM_ACT_TANH: {
            __m512 yv = _mm512_maskz_loadu_ps(k, y + i);
            r = _mm512_mul_ps(g, _mm512_sub_ps(one, _mm512_mul_ps(yv, yv)));
            break;
        }
        case MM_ACT_SIGMOID: {
            __m512 yv = _mm512_maskz_loadu_ps(k, y + i);
            r = _mm512_mul_ps(g, _mm512_mul_ps(yv, _mm512_sub_ps(one, yv)));
            break;
        }
        default: { /* relu2: x > 0 ? dy (2 x) : 0 */
            __m512 xv = _mm512_maskz_loadu_ps(k, x + i);
            r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(xv, zero, _CMP_GT_OQ),
                                    _mm512_mul_ps(g, _mm512_mul_ps(two, xv)));
            break;
        }
        }
        _mm512_mask_storeu_ps(dx + i, k, r);
    }
    return 1;
}

#endif /* MMI_HAVE_AVX512 */
