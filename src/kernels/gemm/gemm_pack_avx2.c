/* SPDX-License-Identifier: MIT */
/*
 * gemm_pack_avx2.c — AVX2 packing for the packed GEMM path (layout in mmi_gemm.h). Whole
 * MR-row / NR-column panels move 8 k steps at a time through 8x8 register transposes where the
 * source is strided along the panel (A not transposed, B transposed) and through plain vector
 * copies where it is contiguous; edge panels and k tails use the portable code. At 256^3
 * scalar packing took about a tenth of the GEMM; this brings it to a few percent.
 */
#include "../simd/mmi_avx2_target.h"
#include "mmi_gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "../simd/mmi_avx2_math.h"

enum { MR = MMI_GEMM_MR, NR = MMI_GEMM_NR };

/* Stores the low 6 floats of v (one k step of an A panel) without touching dst[6..8). */
MMI_AVX2_INLINE void store6(float *dst, __m256 v)
{
    _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
    _mm_storel_pi((__m64 *)(void *)(dst + 4), _mm256_extractf128_ps(v, 1));
}

/* A stored m x k, one full panel: rows are strided, so 6 rows x 8 k go through a transpose
 * (rows 6 and 7 are zero) and each column is one k step. */
static void pack_a_rows(const float *a, int64_t lda, int64_t kc, float *ap)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < MR; i++) r[i] = _mm256_loadu_ps(a + i * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        mmi_transpose8_avx2(r);
        /* Full stores spill two floats into the next k step, which the next store rewrites;
         * the last one of the group stores exactly 6. */
        for (int i = 0; i < 7; i++) _mm256_storeu_ps(ap + (p + i) * MR, r[i]);
        store6(ap + (p + 7) * MR, r[7]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < MR; i++) ap[p * MR + i] = a[i * lda + p];
}

/* A stored k x m, one full panel: each k step is 6 contiguous floats. */
static void pack_a_cols(const float *a, int64_t lda, int64_t kc, float *ap)
{
    for (int64_t p = 0; p < kc; p++) {
        const float *src = a + p * lda;
        _mm_storeu_ps(ap + p * MR, _mm_loadu_ps(src));
        _mm_storel_pi((__m64 *)(void *)(ap + p * MR + 4),
                      _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(const void *)(src + 4)));
    }
}

void mmi_gemm_pack_a_avx2(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                          int64_t kc, float *ap)
{
    int64_t ir = 0;
    for (; ir + MR <= mc; ir += MR) {
        if (ta)
            pack_a_cols(a + p0 * lda + i0 + ir, lda, kc, ap + ir * kc);
        else
            pack_a_rows(a + (i0 + ir) * lda + p0, lda, kc, ap + ir * kc);
    }
    if (ir < mc) mmi_gemm_pack_a(ta, a, lda, i0 + ir, mc - ir, p0, kc, ap + ir * kc);
}

/* B stored n x k, one full panel: 16 strided rows, two 8x8 transposes per 8 k steps. */
static void pack_b_rows(const float *b, int64_t ldb, int64_t kc, float *bp)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        mmi_transpose8_block_avx2(b + p, ldb, 8, 8, bp + p * NR, NR, 8);
        mmi_transpose8_block_avx2(b + 8 * ldb + p, ldb, 8, 8, bp + p * NR + 8, NR, 8);
    }
    for (; p < kc; p++)
        for (int j = 0; j < NR; j++) bp[p * NR + j] = b[j * ldb + p];
}

/* B stored k x n, one full panel: each k step is 16 contiguous floats. */
static void pack_b_cols(const float *b, int64_t ldb, int64_t kc, float *bp)
{
    for (int64_t p = 0; p < kc; p++) {
        _mm256_storeu_ps(bp + p * NR, _mm256_loadu_ps(b + p * ldb));
        _mm256_storeu_ps(bp + p * NR + 8, _mm256_loadu_ps(b + p * ldb + 8));
    }
}

void mmi_gemm_pack_b_avx2(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                          int64_t nc, float *bp)
{
    int64_t jr = 0;
    for (; jr + NR <= nc; jr += NR) {
        if (tb)
            pack_b_rows(b + (j0 + jr) * ldb + p0, ldb, kc, bp + jr * kc);
        else
            pack_b_cols(b + p0 * ldb + j0 + jr, ldb, kc, bp + jr * kc);
    }
    if (jr < nc) mmi_gemm_pack_b(tb, b, ldb, p0, kc, j0 + jr, nc - jr, bp + jr * kc);
}

#endif
