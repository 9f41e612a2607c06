/* SPDX-License-Identifier: MIT */
/* attn_tiles.c — the GEMM tiles attention kernels are built from: small products on the GEMM
 * micro-kernel's unpacked path (no packing workspace, so none is needed after create), in
 * pieces the path always takes, with a row fallback for the shapes it would have to pack. */
#include "mmi_attn_kernels.h"
#include "../gemm/mmi_gemm.h"

/* Pieces of at most TB rows, columns and reductions: a TN product of such pieces always runs
 * unpacked (m, n, k <= 64), as does NN with n <= 64. */
#define TB 64

/* A product the driver would run on the direct path in one block (the caller knows the path:
 * NN with n <= 64, or TN pieces of at most TB), handed straight to the dispatched set's direct
 * kernel with the arguments the driver would pass, so the same bits; 0 when the shape takes
 * more than one block (k beyond the direct k block, m beyond the set's mc) or the build routes
 * products to OpenBLAS. The driver's path choice, job setup and blocking cost about a tenth of
 * a 16 x 64 x 80 tile, and the linear kernels call ten such tiles per chunk. */
static int direct_tile(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
#ifdef MM_HAVE_OPENBLAS
    (void)ta, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
    (void)beta, (void)c, (void)ldc;
    return 0;
#else
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    if (m < 1 || n < 1 || k < 1 || alpha == 0.0f || k > MMI_GEMM_DIRECT_KC || k > u->kc ||
        m > u->mc)
        return 0;
    u->direct(k, m, n, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, alpha, beta, c, ldc);
    return 1;
#endif
}

int mmi_attn_tile_direct(int64_t m, int64_t k)
{
#ifdef MM_HAVE_OPENBLAS
    (void)m, (void)k;
    return 0;
#else
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    return m >= 1 && k >= 1 && k <= MMI_GEMM_DIRECT_KC && k <= u->kc && m <= u->mc;
#endif
}

void mmi_attn_tile_nn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (n <= TB && direct_tile(0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
    if (!mmi_gemm_needs_ws(0, 0, m, n, k, alpha, lda, ldb, ldc)) {
        mmi_gemm(0, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, NULL);
        return;
    }
    for (int64_t j = 0; j < n; j += TB) { /* column pieces: NN with n <= 64 is unpacked */
        const int64_t nb = n - j < TB ? n - j : TB;
        MMI_ASSERT(!mmi_gemm_needs_ws(0, 0, m, nb, k, alpha, lda, ldb, ldc));
        mmi_gemm(0, 0, m, nb, k, alpha, a, lda, b + j, ldb, beta, c + j, ldc, NULL, NULL);
    }
}

/* C = alpha A^T B + beta C by pieces; the pieces after the first along k accumulate. */
static void tile_tn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (int64_t p = 0; p < k; p += TB) {
        const int64_t kb = k - p < TB ? k - p : TB;
        for (int64_t i = 0; i < m; i += TB) {
            const int64_t mb = m - i < TB ? m - i : TB;
            for (int64_t j = 0; j < n; j += TB) {
                const int64_t nb = n - j < TB ? n - j : TB;
                MMI_ASSERT(!mmi_gemm_needs_ws(1, 0, mb, nb, kb, alpha, lda, ldb, ldc));
                const float bp = p == 0 ? beta : 1.0f;
                if (direct_tile(1, mb, nb, kb, alpha, a + p * lda + i, lda, b + p * ldb + j, ldb,
                                bp, c + i * ldc + j, ldc))
                    continue;
                mmi_gemm(1, 0, mb, nb, kb, alpha, a + p * lda + i, lda, b + p * ldb + j, ldb, bp,
                         c + i * ldc + j, ldc, NULL, NULL);
            }
        }
    }
}

void mmi_attn_tile_tn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float *c, int64_t ldc)
{
    tile_tn(m, n, k, alpha, a, lda, b, ldb, 1.0f, c, ldc);
}

void mmi_attn_tile_tn_set(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc)
{
    tile_tn(m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
}
