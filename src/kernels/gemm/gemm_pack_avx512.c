/* SPDX-License-Identifier: MIT */
/*
 * gemm_pack_avx512.c — AVX-512 packing for the AVX-512 set's packed path: op(A) into 12-row
 * panels and op(B) into 32-column panels (layout in mmi_gemm.h, MR = 12, NR = 32). Where the
 * source is strided along the panel (A not transposed, B transposed) 16 k steps move at a time
 * through 16x16 register transposes (mmi_transpose16_block_avx512: named zmm variables, so the
 * block never goes through the stack); where it is contiguous each k step is one or two vector
 * copies. Edges need no scalar code: rows or columns beyond the view and k steps beyond kc are
 * read with masked loads (zero lanes, memory untouched) and the panel is zero-padded, so nothing
 * outside the view is read and nothing outside the panels written.
 */
#include "../simd/mmi_avx512_target.h"
#include "mmi_gemm.h"

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>

#include "../simd/mmi_avx512_math.h"

enum { MR = 12, NR = 32 };
/* pack_a_rows prefetches each source row this many floats ahead (4 lines): its 12 rows are lda
 * apart, and with a power-of-two lda the hardware prefetchers fell behind (packing A for 1024^3
 * took twice as long without it). A prefetch never faults, so it may point past the view. */
#define PACK_A_AHEAD 64

#if defined(__GNUC__) || defined(__clang__)
#define PACK_INLINE static inline __attribute__((always_inline))
#else
#define PACK_INLINE static inline
#endif

/* Floats ahead of the current 16 k steps that the strided (transposing) packs prefetch on every
 * row they read: rows lda or ldb apart are separate streams, more than the hardware prefetcher
 * follows, so a B panel packed from L3 (a loss tile of Y^T, 32 rows 2 KiB apart) ran at half
 * the speed of one packed from L2; two lines ahead measured best (16, 64 and 128 slower). */
#define PREFETCH_AHEAD 32

PACK_INLINE void prefetch_rows(const float *src, int64_t ld, int64_t rows)
{
    for (int64_t i = 0; i < rows; i++)
        _mm_prefetch((const char *)(src + i * ld + PREFETCH_AHEAD), _MM_HINT_T0);
}

/* One 12-row panel of op(A) with A stored m x k: rows i of a (stride lda), mr <= 12 of them. */
static void pack_a_rows(const float *a, int64_t lda, int64_t mr, int64_t kc, float *ap)
{
    for (int64_t p = 0; p < kc; p += 16) {
        int64_t kt = kc - p < 16 ? kc - p : 16;
        for (int64_t i = 0; i < mr; i++)
            _mm_prefetch((const char *)(a + i * lda + p + PACK_A_AHEAD), _MM_HINT_T0);
        mmi_transpose16_block_avx512(a + p, lda, mr, mmi_lanes16(kt), ap + p * MR, MR, kt, 0x0FFF);
    }
}

/* The 12-row panels of op(A) with A stored k x m, mc rows: k step p is the mc contiguous floats
 * of row p of a. Rows are read once each, in order, and cut into the panels' 12-float slots;
 * a panel-by-panel order would read every row kc times 48 bytes apart at stride lda, which for
 * a power-of-two lda maps all of them to a few L1 sets and runs from L2. */
static void pack_a_cols(const float *a, int64_t lda, int64_t mc, int64_t kc, float *ap)
{
    for (int64_t p = 0; p < kc; p++) {
        const float *src = a + p * lda;
        float *dst = ap + p * MR;
        for (int64_t ir = 0; ir < mc; ir += MR, dst += MR * kc)
            _mm512_mask_storeu_ps(dst, 0x0FFF,
                                  _mm512_maskz_loadu_ps(mmi_lanes16(mc - ir), src + ir));
    }
}

void mmi_gemm_pack_a_avx512(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                            int64_t kc, float *ap)
{
    if (ta) {
        pack_a_cols(a + p0 * lda + i0, lda, mc, kc, ap);
        return;
    }
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        pack_a_rows(a + (i0 + ir) * lda + p0, lda, mr, kc, ap + ir * kc);
    }
}

/* One 32-column panel of op(B) with B stored n x k: nr <= 32 rows of b (stride ldb), two 16x16
 * register transposes per 16 k steps (the first writes columns 0..15 of the panel's k rows,
 * the second 16..31, zero when nr <= 16). */
static void pack_b_rows(const float *b, int64_t ldb, int64_t nr, int64_t kc, float *bp)
{
    for (int64_t p = 0; p < kc; p += 16) {
        int64_t kt = kc - p < 16 ? kc - p : 16;
        __mmask16 km = mmi_lanes16(kt);
        prefetch_rows(b + p, ldb, nr);
        mmi_transpose16_block_avx512(b + p, ldb, nr, km, bp + p * NR, NR, kt, 0xFFFF);
        if (nr > 16)
            mmi_transpose16_block_avx512(b + 16 * ldb + p, ldb, nr - 16, km, bp + p * NR + 16, NR,
                                         kt, 0xFFFF);
        else
            for (int64_t t = 0; t < kt; t++)
                _mm512_storeu_ps(bp + (p + t) * NR + 16, _mm512_setzero_ps());
    }
}

/* One 32-column panel of op(B) with B stored k x n: each k step is nr contiguous floats. */
static void pack_b_cols(const float *b, int64_t ldb, int64_t nr, int64_t kc, float *bp)
{
    const __mmask16 m0 = mmi_lanes16(nr), m1 = mmi_lanes16(nr - 16);
    for (int64_t p = 0; p < kc; p++) {
        const float *src = b + p * ldb;
        _mm512_storeu_ps(bp + p * NR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_storeu_ps(bp + p * NR + 16,
                         nr > 16 ? _mm512_maskz_loadu_ps(m1, src + 16) : _mm512_setzero_ps());
    }
}

void mmi_gemm_pack_b_avx512(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                            int64_t nc, float *bp)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        if (tb)
            pack_b_rows(b + (j0 + jr) * ldb + p0, ldb, nr, kc, bp + jr * kc);
        else
            pack_b_cols(b + p0 * ldb + j0 + jr, ldb, nr, kc, bp + jr * kc);
    }
}

#endif /* MMI_HAVE_AVX512 */
