/* SPDX-License-Identifier: MIT */
/* reduce_avx512.c — AVX-512 bodies of reduce.c with the portable association, so every path
 * gives identical bits: add_rows 16 floats a step; colsum_f64 16 columns a step, each summed
 * over the rows in row order; sumsq_f64 keeps the portable "8 fixed lanes" as the 8 float64
 * lanes of one zmm accumulator (lane k takes elements i with i % 8 == k, in order, and the
 * final pairing is the portable one). Tails are masked. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_elementwise.h"
#include "../simd/mmi_avx512_math.h"

#ifdef MMI_HAVE_AVX512

/* Floats ahead that the streaming loops (sumsq_f64, lerp) prefetch: their arrays are a whole
 * model's gradients or parameters, several times L2 in an RL step, and the hardware
 * prefetchers left the loops waiting on their loads (see optim_update_avx512.c, where 4 KiB
 * ahead halved the Adam step's share of the TD3 400-300 update). A prefetch never faults. */
#define AHEAD       1024
#define PREFETCH(x) _mm_prefetch((const char *)((uintptr_t)(x) + 4 * AHEAD), _MM_HINT_T0)

int mmi_add_rows_avx512(float *y, const float *b, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++, y += n)
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 k = mmi_mask16(n - j);
            __m512 v =
                _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + j), _mm512_maskz_loadu_ps(k, b + j));
            _mm512_mask_storeu_ps(y + j, k, v);
        }
    return 1;
}

int mmi_colsum_f64_avx512(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc)
{
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = mmi_mask16(n - j);
        __mmask8 klo = (__mmask8)(k & 0xFF), khi = (__mmask8)(k >> 8);
        __m512d lo = _mm512_maskz_loadu_pd(klo, acc + j),
                hi = _mm512_maskz_loadu_pd(khi, acc + j + 8);
        for (int64_t r = 0; r < rows; r++)
            mmi_add_pd512(&lo, &hi, _mm512_maskz_loadu_ps(k, x + r * ld + j));
        _mm512_mask_storeu_pd(acc + j, klo, lo);
        _mm512_mask_storeu_pd(acc + j + 8, khi, hi);
    }
    return 1;
}

int mmi_sumsq_f64_avx512(const float *x, int64_t n, double *out)
{
    __m512d a = _mm512_setzero_pd();
    double lane[8];
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 k = (__mmask8)(n - i >= 8 ? 0xFF : (1u << (unsigned)(n - i)) - 1u);
        __m512d v;
        if (!(i & 15)) PREFETCH(x + i);
        v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + i));
        /* masked add: the lanes past the end keep their sums untouched */
        a = _mm512_mask_add_pd(a, k, a, _mm512_mul_pd(v, v));
    }
    _mm512_storeu_pd(lane, a);
    *out =
        ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    return 1;
}

int mmi_lerp_avx512(float *d, const float *s, int64_t n, float keep, float take)
{
    const __m512 kv = _mm512_set1_ps(keep), tv = _mm512_set1_ps(take);
    for (int64_t i = 0; i < n; i += 16) { /* two products and their sum, as the portable loop */
        __mmask16 k = mmi_mask16(n - i);
        __m512 v;
        PREFETCH(d + i), PREFETCH(s + i);
        v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, d + i), kv),
                          _mm512_mul_ps(tv, _mm512_maskz_loadu_ps(k, s + i)));
        _mm512_mask_storeu_ps(d + i, k, v);
    }
    return 1;
}

/* ReLU only (max(0, z): exact, so it is every path's ReLU); without an activation the bias add
 * alone. Each 16-float piece of a row is loaded once, biased, stored, and its ReLU stored. */
int mmi_bias_act_rows_avx512(float *z, const float *b, float *ya, int32_t kind, int64_t rows,
                             int64_t n, int64_t ld)
{
    const __m512 zero = _mm512_setzero_ps();
    if (ya && kind != MM_ACT_RELU) return 0;
    for (int64_t r = 0; r < rows; r++) {
        float *zr = z + r * ld, *yr = ya ? ya + r * ld : NULL;
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 k = mmi_mask16(n - j);
            __m512 v = _mm512_maskz_loadu_ps(k, zr + j);
            if (b) {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + j));
                if (yr != zr) _mm512_mask_storeu_ps(zr + j, k, v); /* in place: ya only */
            }
            if (yr) _mm512_mask_storeu_ps(yr + j, k, _mm512_max_ps(zero, v));
        }
    }
    return 1;
}

#endif /* MMI_HAVE_AVX512 */
