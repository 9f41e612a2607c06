/* SPDX-License-Identifier: MIT */
/*
 * gemm_pack.c — copies blocks of op(A) and op(B) into the panel layout the packed micro-kernels
 * read (see mmi_gemm.h). Panels are zero-padded to whole MR rows / NR columns, so the kernels
 * never branch on edges inside their k loop. Packing touches each element once per block and is
 * a few percent of a large GEMM; the loops are ordered so the reads are contiguous.
 */
#include "mmi_gemm.h"

#include <string.h>

/* One MR-row panel of op(A): rows i0 .. i0+mr (mr <= MR), k range p0 .. p0+kc. */
static void pack_a_panel(int ta, const float *a, int64_t lda, int64_t i0, int64_t mr, int64_t p0,
                         int64_t kc, float *ap)
{
    enum { MR = MMI_GEMM_MR };
    if (mr < MR) memset(ap, 0, sizeof(float) * (size_t)(kc * MR));
    if (ta) {
        /* A stored k x m: the mr values of one k step are contiguous. */
        for (int64_t p = 0; p < kc; p++) {
            const float *src = a + (p0 + p) * lda + i0;
            for (int64_t r = 0; r < mr; r++) ap[p * MR + r] = src[r];
        }
    } else {
        /* A stored m x k: walk each row contiguously and scatter with stride MR. */
        for (int64_t r = 0; r < mr; r++) {
            const float *src = a + (i0 + r) * lda + p0;
            for (int64_t p = 0; p < kc; p++) ap[p * MR + r] = src[p];
        }
    }
}

void mmi_gemm_pack_a(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                     int64_t kc, float *ap)
{
    for (int64_t ir = 0; ir < mc; ir += MMI_GEMM_MR) {
        int64_t mr = mc - ir < MMI_GEMM_MR ? mc - ir : MMI_GEMM_MR;
        pack_a_panel(ta, a, lda, i0 + ir, mr, p0, kc, ap + ir * kc);
    }
}

/* One NR-column panel of op(B): columns j0 .. j0+nr (nr <= NR), k range p0 .. p0+kc. */
static void pack_b_panel(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                         int64_t nr, float *bp)
{
    enum { NR = MMI_GEMM_NR };
    if (nr < NR) memset(bp, 0, sizeof(float) * (size_t)(kc * NR));
    if (tb) {
        /* B stored n x k: each column of op(B) is a contiguous row of B. */
        for (int64_t j = 0; j < nr; j++) {
            const float *src = b + (j0 + j) * ldb + p0;
            for (int64_t p = 0; p < kc; p++) bp[p * NR + j] = src[p];
        }
    } else if (nr == NR) {
        for (int64_t p = 0; p < kc; p++)
            memcpy(bp + p * NR, b + (p0 + p) * ldb + j0, sizeof(float) * NR);
    } else {
        for (int64_t p = 0; p < kc; p++)
            memcpy(bp + p * NR, b + (p0 + p) * ldb + j0, sizeof(float) * (size_t)nr);
    }
}

void mmi_gemm_pack_b(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                     int64_t nc, float *bp)
{
    for (int64_t jr = 0; jr < nc; jr += MMI_GEMM_NR) {
        int64_t nr = nc - jr < MMI_GEMM_NR ? nc - jr : MMI_GEMM_NR;
        pack_b_panel(tb, b, ldb, p0, kc, j0 + jr, nr, bp + jr * kc);
    }
}
