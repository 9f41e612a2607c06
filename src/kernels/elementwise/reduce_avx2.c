/* SPDX-License-Identifier: MIT */
/* reduce_avx2.c — AVX2 bodies of reduce.c with the same association as the portable loops
 * (separate multiply and add, no FMA), so both paths give identical bits. */
#include "../simd/mmi_avx2_target.h"
#include "mmi_elementwise.h"

#if defined(__AVX2__)
#include <immintrin.h>

int mmi_add_rows_avx2(float *y, const float *b, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++, y += n) {
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_loadu_ps(y + j), _mm256_loadu_ps(b + j)));
        for (; j < n; j++) y[j] += b[j];
    }
    return 1;
}

int mmi_colsum_f64_avx2(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc)
{
    int64_t j = 0;
    /* 8 columns at a time, all rows, in row order: each column's sum is the portable one. */
    for (; j + 8 <= n; j += 8) {
        __m256d lo = _mm256_loadu_pd(acc + j), hi = _mm256_loadu_pd(acc + j + 4);
        for (int64_t r = 0; r < rows; r++) {
            __m256 v = _mm256_loadu_ps(x + r * ld + j);
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        _mm256_storeu_pd(acc + j, lo);
        _mm256_storeu_pd(acc + j + 4, hi);
    }
    for (int64_t r = 0; r < rows && j < n; r++)
        for (int64_t k = j; k < n; k++) acc[k] += (double)x[r * ld + k];
    return 1;
}

int mmi_sumsq_f64_avx2(const float *x, int64_t n, double *out)
{
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
    double lane[8];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a = _mm256_add_pd(a, _mm256_mul_pd(lo, lo));
        b = _mm256_add_pd(b, _mm256_mul_pd(hi, hi));
    }
    _mm256_storeu_pd(lane, a);
    _mm256_storeu_pd(lane + 4, b);
    for (int k = 0; i < n; i++, k++) lane[k] += (double)x[i] * (double)x[i];
    *out =
        ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    return 1;
}

int mmi_lerp_avx2(float *d, const float *s, int64_t n, float keep, float take)
{
    const __m256 kv = _mm256_set1_ps(keep), tv = _mm256_set1_ps(take);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) /* two products and their sum, as the portable loop */
        _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(d + i), kv),
                                              _mm256_mul_ps(tv, _mm256_loadu_ps(s + i))));
    for (; i < n; i++) d[i] = d[i] * keep + take * s[i];
    return 1;
}

#endif
