/* SPDX-License-Identifier: MIT */
/* act_avx2.c — AVX2/FMA forward bodies of the activations whose libm calls dominate a small
 * network's run time (tanh, sigmoid, SiLU; ReLU for symmetry). Built with -mavx2 -mfma; the
 * dispatch table (elementwise_avx2.c) hands them out only on CPUs that run them. The exponential is mmi_exp256 (mmi_avx2_math.h); tanh
 * uses Cephes' odd polynomial below 0.625, where 1 - 2/(e^2x + 1) would cancel. Inputs beyond
 * +-88.38 give exp = Inf / 0, so sigmoid and tanh saturate exactly as libm's do. */
#include "../simd/mmi_avx2_target.h"
#include "mmi_elementwise.h"
#include "../simd/mmi_avx2_math.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

MMI_AVX2_INLINE __m256 tanh256(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x), p, big, e, t, fx;
    /* small: x + x z P(z) */
    p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* large: 1 - 2 / (exp(2|x|) + 1), sign restored. exp's argument t is never negative, and
     * above 20 the result is 1 whatever exp gives (2 / (e^20 + 1) is below half an ulp of 1),
     * so t = min(2|x|, 20) needs none of mmi_exp256's clamps and patches and one scaling by
     * 2^fx (fx <= 29) instead of two: the same bits for all 2^32 inputs, NaN included (min
     * passes it on), and a 128-value tanh about 0.035 us faster on Zen 3 (the tanh on a memory
     * core's output, docs/history/RL_LOG.md, entry 21). */
    t = _mm256_min_ps(_mm256_set1_ps(20.0f), _mm256_add_ps(ax, ax));
    fx = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    e = _mm256_mul_ps(mmi_exp256_poly(t, fx),
                      _mm256_castsi256_ps(_mm256_slli_epi32(
                          _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23)));
    big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(big, p, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

MMI_AVX2_INLINE __m256 sigmoid256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = mmi_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/* y = act(x) for one kind: whole vectors, then the tail through a padded copy. KIND is a
 * constant at each call (mmi_act_forward_avx2), so the per-vector loop has no switch. A NaN
 * lane gives NaN with no patch of its own: mmi_exp256 keeps it, and every later operation has
 * it as its only NaN operand (the result is the input NaN, quieted, sign and payload kept). */
MMI_AVX2_INLINE __m256 act_vec(__m256 v, const int32_t KIND)
{
    switch (KIND) {
    case MM_ACT_TANH:
        return tanh256(v);
    case MM_ACT_SIGMOID:
        return sigmoid256(v);
    case MM_ACT_SILU:
        return _mm256_mul_ps(v, sigmoid256(v));
    default:
        return _mm256_max_ps(_mm256_setzero_ps(), v); /* NaN propagates */
    }
}

MMI_AVX2_INLINE void act_loop(const float *x, float *y, int64_t n, const int32_t KIND)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act_vec(_mm256_loadu_ps(x + i), KIND));
    if (i < n) { /* tail through a padded copy */
        float tx[8], ty[8];
        for (int64_t j = 0; j < 8; j++) tx[j] = i + j < n ? x[i + j] : 0.0f;
        _mm256_storeu_ps(ty, act_vec(_mm256_loadu_ps(tx), KIND));
        for (int64_t j = 0; i + j < n; j++) y[i + j] = ty[j];
    }
}

int mmi_act_forward_avx2(int32_t kind, const float *x, float *y, int64_t n)
{
    switch (kind) {
    case MM_ACT_TANH:
        act_loop(x, y, n, MM_ACT_TANH);
        return 1;
    case MM_ACT_SIGMOID:
        act_loop(x, y, n, MM_ACT_SIGMOID);
        return 1;
    case MM_ACT_SILU:
        act_loop(x, y, n, MM_ACT_SILU);
        return 1;
    case MM_ACT_RELU:
        act_loop(x, y, n, MM_ACT_RELU);
        return 1;
    default:
        return 0;
    }
}

/* y = mmi_exp256(x) (the tail through a padded copy): the primitive itself, for its tests. */
int mmi_exp_avx2(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, mmi_exp256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        for (int64_t j = 0; i + j < n; j++) t[j] = x[i + j];
        _mm256_storeu_ps(t, mmi_exp256(_mm256_loadu_ps(t)));
        for (int64_t j = 0; i + j < n; j++) y[i + j] = t[j];
    }
    return 1;
}

/* dx = dy * f'(.) for one kind over whole vectors (KIND a constant in each instance: one loop
 * per kind, as act_loop, instead of the kind's test in every vector); returns where it
 * stopped. */
MMI_AVX2_INLINE int64_t bwd_loop(const float *x, const float *y, const float *dy, float *dx,
                                 int64_t n, const int32_t KIND)
{
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(dy + i), yv, r;
        switch (KIND) {
        case MM_ACT_RELU:
            yv = _mm256_loadu_ps(y + i);
            r = _mm256_and_ps(_mm256_cmp_ps(yv, zero, _CMP_GT_OQ), g);
            break;
        case MM_ACT_TANH:
            yv = _mm256_loadu_ps(y + i);
            r = _mm256_mul_ps(g, _mm256_sub_ps(one, _mm256_mul_ps(yv, yv)));
            break;
        case MM_ACT_SIGMOID:
            yv = _mm256_loadu_ps(y + i);
            r = _mm256_mul_ps(g, _mm256_mul_ps(yv, _mm256_sub_ps(one, yv)));
            break;
        default: { /* relu2 */
            __m256 xv = _mm256_loadu_ps(x + i);
            r = _mm256_and_ps(_mm256_cmp_ps(xv, zero, _CMP_GT_OQ),
                              _mm256_mul_ps(g, _mm256_mul_ps(two, xv)));
            break;
        }
        }
        _mm256_storeu_ps(dx + i, r);
    }
    return i;
}

int mmi_act_backward_avx2(int32_t kind, const float *x, const float *y, const float *dy, float *dx,
                          int64_t n)
{
    int64_t i;
    switch (kind) {
    case MM_ACT_RELU:
        i = bwd_loop(x, y, dy, dx, n, MM_ACT_RELU);
        break;
    case MM_ACT_TANH:
        i = bwd_loop(x, y, dy, dx, n, MM_ACT_TANH);
        break;
    case MM_ACT_SIGMOID:
        i = bwd_loop(x, y, dy, dx, n, MM_ACT_SIGMOID);
        break;
    case MM_ACT_RELU2:
        i = bwd_loop(x, y, dy, dx, n, MM_ACT_RELU2);
        break;
    default:
        return 0;
    }
    if (i < n) mmi_act_backward_portable(kind, x + i, y + i, dy + i, dx + i, n - i);
    return 1;
}

#endif
