/* SPDX-License-Identifier: MIT */
/*
 * gemm_api.c — the public mm_sgemm and mm_sgemm_mt (with its mm_threads pool): validates every
 * argument (the kernels trust theirs), provides the workspace, and calls the kernel.
 */
#include "mmi_gemm.h"

#include <stdint.h>

struct mm_threads {
    mmi_alloc alloc;
    mmi_pool *pool; /* NULL for one thread */
    int32_t n_threads;
    void *ws;
    size_t ws_size;
};

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

/* 1 if a row of C (m x n, ldc, starting d floats after X) shares a float with a row of X
 * (rows x cols, ldx). X's rows are apart and in order, so only the first X row that ends after
 * a C row's start can meet that row. O(m): the caller walks the matrix with fewer rows. */
static int rows_meet(int64_t rows, int64_t cols, int64_t ldx, int64_t d, int64_t m, int64_t n,
                     int64_t ldc)
{
    for (int64_t p = 0; p < m; p++) {
        const int64_t s = d + p * ldc, i = s < cols ? 0 : (s - cols) / ldx + 1;
        if (s + n <= 0) continue;
        if (i >= rows) break; /* this C row starts past X's last row, and so do the later ones */
        if (i * ldx < s + n) return 1;
    }
    return 0;
}

/* 1 if C (m x n, ldc) shares a byte with X (rows x cols, ldx); sizes already checked. Storage
 * ranges apart: no, O(1). A C not a whole number of floats away from X: yes (refused without
 * looking closer). Otherwise exact, row by row (O(min(m, rows)), only for overlapping ranges):
 * side-by-side blocks of one matrix, or blocks with different leading dimensions whose rows
 * interleave without touching, share nothing. */
static int stored_overlap(const float *x, int64_t rows, int64_t cols, int64_t ldx, const float *c,
                          int64_t m, int64_t n, int64_t ldc)
{
    intptr_t d;
    if (!x || !c || rows == 0 || cols == 0 || m == 0 || n == 0) return 0;
    if (!mmi_overlaps(x, sizeof(float) * (size_t)((rows - 1) * ldx + cols), c,
                      sizeof(float) * (size_t)((m - 1) * ldc + n)))
        return 0;
    d = (intptr_t)((uintptr_t)c - (uintptr_t)x);
    if (d % (intptr_t)sizeof(float) != 0) return 1;
    d /= (intptr_t)sizeof(float);
    /* The ranges overlap, so |d| is below both extents: no overflow in the walk. */
    return m <= rows ? rows_meet(rows, cols, ldx, (int64_t)d, m, n, ldc)
                     : rows_meet(m, n, ldc, -(int64_t)d, rows, cols, ldx);
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
    /* In-place products are not supported (the kernels read A and B after writing C): any
     * overlap, not only c == a, came back wrong with MM_OK. */
    if (k > 0 && (stored_overlap(a, ar, ac, lda, c, m, n, ldc) ||
                  stored_overlap(b, br, bc, ldb, c, m, n, ldc)))
        return MM_E_INVALID_ARG;
    return MM_OK;
}

/* Runs native (the threads' path) or mmi_gemm (mm_sgemm's) after the checks both share. */
static int sgemm_call(int native, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc, mmi_pool *pool, void *own_ws, size_t need,
                      void *workspace, size_t workspace_size)
{
    mmi_alloc heap;
    void *ws = workspace ? workspace : own_ws;
    int rc = check_args(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (rc != MM_OK) return rc;
    if (workspace && ((uintptr_t)workspace % MMI_ALIGN != 0 || workspace_size < need))
        return MM_E_INVALID_ARG;
    /* The packing buffers are written while A and B are read and C is written. */
    if (workspace &&
        (stored_overlap(a, ta ? k : m, ta ? m : k, lda, workspace, 1,
                        (int64_t)(workspace_size / sizeof(float)),
                        (int64_t)(workspace_size / sizeof(float))) ||
         stored_overlap(b, tb ? n : k, tb ? k : n, ldb, workspace, 1,
                        (int64_t)(workspace_size / sizeof(float)),
                        (int64_t)(workspace_size / sizeof(float))) ||
         stored_overlap(c, m, n, ldc, workspace, 1, (int64_t)(workspace_size / sizeof(float)),
                        (int64_t)(workspace_size / sizeof(float)))))
        return MM_E_INVALID_ARG;
    (void)mmi_alloc_init(&heap, NULL, NULL); /* the default allocator: cannot fail */
    if (!ws && (native ? mmi_gemm_native_needs_ws(ta, tb, m, n, k, alpha)
                       : mmi_gemm_needs_ws(ta, tb, m, n, k, alpha, lda, ldb, ldc))) {
        ws = mmi_malloc(&heap, need);
        if (!ws) return MM_E_NOMEM;
    }
    if (native)
        mmi_gemm_native(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, pool);
    else
        mmi_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, pool);
    if (ws != workspace && ws != own_ws) mmi_free(&heap, ws, need);
    return MM_OK;
}

int mm_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc, void *workspace, size_t workspace_size)
{
    return sgemm_call(0, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, NULL,
                      mm_sgemm_workspace_size(), workspace, workspace_size);
}

size_t mm_sgemm_mt_workspace_size(int32_t n_threads)
{
    return n_threads < 1 || n_threads > 256 ? 0 : mmi_gemm_ws_size(n_threads);
}

int mm_threads_create(mm_threads **out, int32_t n_threads, const mm_allocator *alloc)
{
    mmi_alloc al;
    mm_threads *t;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    if (mmi_alloc_init(&al, alloc, NULL) != MM_OK) return MM_E_INVALID_ARG;
    if (n_threads < 1 || n_threads > 256) return MM_E_RANGE;
    t = (mm_threads *)mmi_calloc(&al, sizeof *t);
    if (!t) return MM_E_NOMEM;
    t->alloc = al;
    t->n_threads = n_threads;
    t->ws_size = mmi_gemm_ws_size(n_threads);
    t->ws = mmi_malloc(&al, t->ws_size);
    if (!t->ws || mmi_pool_create(&t->pool, n_threads, &al, NULL) != MM_OK) {
        mm_threads_free(t);
        return MM_E_NOMEM;
    }
    *out = t;
    return MM_OK;
}

void mm_threads_free(mm_threads *t)
{
    mmi_alloc al;
    if (!t) return;
    al = t->alloc;
    mmi_pool_free(t->pool);
    if (t->ws) mmi_free(&al, t->ws, t->ws_size);
    mmi_free(&al, t, sizeof *t);
}

int mm_sgemm_mt(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                int64_t ldc, mm_threads *threads, void *workspace, size_t workspace_size)
{
    int32_t nt = threads ? threads->n_threads : 1;
    return sgemm_call(1, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                      threads ? threads->pool : NULL, threads ? threads->ws : NULL,
                      mmi_gemm_ws_size(nt), workspace, workspace_size);
}
