/* SPDX-License-Identifier: MIT */
/*
 * gemm_api.c — the public mm_sgemm: validates every argument (the kernels trust theirs),
 * provides the workspace, and calls mmi_gemm.
 */
#include "mmi_gemm.h"

#include <stdint.h>

size_t mm_sgemm_workspace_size(void) { return mmi_gemm_ws_size(1); }

/* A stored rows x cols with leading dimension ld: MM_E_SHAPE for ld < cols, MM_E_RANGE when
 * its extent in bytes, ((rows - 1) * ld + cols) * 4, does not fit int64 and size_t. */
static int check_stored(int64_t rows, int64_t cols, int64_t ld)
{
    int64_t span, bytes;
    if (ld < cols) return MM_E_SHAPE;
    if (rows == 0 || cols == 0) return MM_OK;
    if (mmi_mul_i64(&span, rows - 1, ld) != 0 || span > INT64_MAX - cols) return MM_E_RANGE;
    if (mmi_mul_i64(&bytes, span + cols, (int64_t)sizeof(float)) != 0) return MM_E_RANGE;
    if ((uint64_t)bytes > (uint64_t)SIZE_MAX) return MM_E_RANGE;
    return MM_OK;
}

/* Everything but the workspace, in the order the header documents the codes. */
static int check_args(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float *a,
                      int64_t lda, const float *b, int64_t ldb, const float *c, int64_t ldc)
{
    int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int rc;
    if ((ta != MM_NO_TRANS && ta != MM_TRANS) || (tb != MM_NO_TRANS && tb != MM_TRANS))
        return MM_E_INVALID_ARG;
    if (m < 0 || n < 0 || k < 0) return MM_E_SHAPE;
    /* All three shape checks come before any range check: a too-small ld is a SHAPE error
     * whatever the other matrices look like. */
    if (lda < ac || ldb < bc || ldc < n) return MM_E_SHAPE;
    if ((rc = check_stored(ar, ac, lda)) != MM_OK) return rc;
    if ((rc = check_stored(br, bc, ldb)) != MM_OK) return rc;
    if ((rc = check_stored(m, n, ldc)) != MM_OK) return rc;
    if ((!a && m > 0 && k > 0) || (!b && k > 0 && n > 0) || (!c && m > 0 && n > 0))
        return MM_E_INVALID_ARG;
    /* In-place products are not supported (the kernels read A and B after writing C). */
    if (c && m > 0 && n > 0 && ((c == a && k > 0) || (c == b && k > 0))) return MM_E_INVALID_ARG;
    return MM_OK;
}

int mm_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc, void *workspace, size_t workspace_size)
{
    mmi_alloc heap;
    void *ws = workspace;
    size_t ws_size = mm_sgemm_workspace_size();
    int rc = check_args(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
    if (rc != MM_OK) return rc;
    if (workspace && ((uintptr_t)workspace % MMI_ALIGN != 0 || workspace_size < ws_size))
        return MM_E_INVALID_ARG;
    (void)mmi_alloc_init(&heap, NULL, NULL); /* the default allocator: cannot fail */
    if (!ws && mmi_gemm_needs_ws(trans_a, trans_b, m, n, k, alpha, lda, ldb, ldc)) {
        ws = mmi_malloc(&heap, ws_size);
        if (!ws) return MM_E_NOMEM;
    }
    mmi_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, NULL);
    if (ws != workspace) mmi_free(&heap, ws, ws_size);
    return MM_OK;
}
