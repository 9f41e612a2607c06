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
    /* 32 columns at a time, all rows, in row order: each column's sum is the portable one.
     * Eight independent add chains per row (two, 8 columns at a time, waited on the add
     * latency) and whole cache lines of each row (8 columns read half a line per row and came
     * back for the other half; 2 % of the 4-256-256-1 training step on AVX2). */
    for (; j + 32 <= n; j += 32) {
        /* named accumulators: GCC keeps an array of vectors in memory */
        __m256d s0 = _mm256_loadu_pd(acc + j), s1 = _mm256_loadu_pd(acc + j + 4);
        __m256d s2 = _mm256_loadu_pd(acc + j + 8), s3 = _mm256_loadu_pd(acc + j + 12);
        __m256d s4 = _mm256_loadu_pd(acc + j + 16), s5 = _mm256_loadu_pd(acc + j + 20);
        __m256d s6 = _mm256_loadu_pd(acc + j + 24), s7 = _mm256_loadu_pd(acc + j + 28);
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * ld + j;
            __m256 v0 = _mm256_loadu_ps(xr), v1 = _mm256_loadu_ps(xr + 8);
            __m256 v2 = _mm256_loadu_ps(xr + 16), v3 = _mm256_loadu_ps(xr + 24);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v0)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1)));
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(v1)));
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1)));
            s4 = _mm256_add_pd(s4, _mm256_cvtps_pd(_mm256_castps256_ps128(v2)));
            s5 = _mm256_add_pd(s5, _mm256_cvtps_pd(_mm256_extractf128_ps(v2, 1)));
            s6 = _mm256_add_pd(s6, _mm256_cvtps_pd(_mm256_castps256_ps128(v3)));
            s7 = _mm256_add_pd(s7, _mm256_cvtps_pd(_mm256_extractf128_ps(v3, 1)));
        }
        _mm256_storeu_pd(acc + j, s0), _mm256_storeu_pd(acc + j + 4, s1);
        _mm256_storeu_pd(acc + j + 8, s2), _mm256_storeu_pd(acc + j + 12, s3);
        _mm256_storeu_pd(acc + j + 16, s4), _mm256_storeu_pd(acc + j + 20, s5);
        _mm256_storeu_pd(acc + j + 24, s6), _mm256_storeu_pd(acc + j + 28, s7);
    }
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

/* ReLU only (max(0, z): exact, so it is every path's ReLU, NaN and -0 included); without an
 * activation the bias add alone. Each 8-float piece of a row is loaded once, biased, stored,
 * and its ReLU stored: the unfused pair made two passes over every block of the forward's
 * GEMM (add_rows and act_forward together 1-2 % of the TD3 update on AVX2). */
int mmi_bias_act_rows_avx2(float *z, const float *b, float *ya, int32_t kind, int64_t rows,
                           int64_t n, int64_t ld)
{
    const __m256 zero = _mm256_setzero_ps();
    if (ya && kind != MM_ACT_RELU) return 0;
    for (int64_t r = 0; r < rows; r++) {
        float *zr = z + r * ld, *yr = ya ? ya + r * ld : NULL;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(zr + j);
            if (b) {
                v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
                if (yr != zr) _mm256_storeu_ps(zr + j, v); /* in place: ya only */
            }
            if (yr) _mm256_storeu_ps(yr + j, _mm256_max_ps(zero, v));
        }
        for (; j < n; j++) {
            float v = zr[j];
            if (b) {
                v = v + b[j];
                if (yr != zr) zr[j] = v;
            }
            if (yr) yr[j] = v < 0.0f ? 0.0f : v;
        }
    }
    return 1;
}

#endif
