/*
 * gemm_ukr.h — what the GEMM driver (gemm.c) shares with its micro-kernel sets (gemm_ukr.c,
 * gemm_ukr_avx2.c) and packing routines (gemm_pack.c, gemm_pack_avx2.c). Internal to
 * src/kernels.
 *
 * The driver chooses one of three ways to run a GEMM, always from the shape alone (so results
 * never depend on the thread count):
 *   packed: Goto/BLIS blocking; op(A) and op(B) blocks are copied into the workspace as
 *           MR-row and NR-column panels (zero-padded at the edges), then a MR x NR register tile
 *           runs over them.
 *   direct: no packing; the same register tile reads op(A) through two strides and B rows in
 *           place. Serves NN and TN where packing would cost about as much as the arithmetic
 *           it saves (small m, n or k, or a small problem; see choose_path in gemm.c).
 *   dot:    no packing; NT with small m or n and a long k (y = x W^T at batch 1): rows of A
 *           and rows of the stored B are both contiguous along k, so each C element is a dot
 *           product.
 * A kernel set implements the three block loops and the packing; the driver does the blocking,
 * threading, alpha == 0 / k == 0 and the beta of the first k block.
 */
#ifndef MMI_GEMM_UKR_H
#define MMI_GEMM_UKR_H

#include "mmi_gemm.h"

/* Register tile of the packed and direct paths: 6 rows x 16 columns = 12 ymm accumulators. */
#define MMI_GEMM_MR 6
#define MMI_GEMM_NR 16
/* Cache blocks: a KC x NR panel of B (16 KiB) stays in L1, an MC x KC block of packed A
 * (144 KiB) in L2, a KC x NC block of packed B (1 MiB) in L3. MC is a multiple of MR and NC of
 * NR. Measured on Zen 3; see docs/BENCHMARKS.md. */
#define MMI_GEMM_KC 256
#define MMI_GEMM_MC 144
#define MMI_GEMM_NC 1024
/* k at most this: NN and TN take the direct path whatever m and n, streaming C row by row. */
#define MMI_GEMM_SMALL_K 4
/* Dot path tile (rows of A x rows of stored B) and its k and m blocks. Long k blocks measured
 * best (rows are streamed, and each new row restarts the prefetcher: 512 ran 25% slower than
 * 2048 at k = 1024); 96 rows of A at k <= 1024 stay in L2 while every column of C uses them. */
#define MMI_GEMM_DOT_MR 3
#define MMI_GEMM_DOT_NR 4
#define MMI_GEMM_DOT_KC 2048
#define MMI_GEMM_DOT_MC 96

/*
 * One kernel set. Every function computes C = alpha * (op(A) op(B)) + beta * C over an m x n
 * block (or mc x nc), with beta == 0 meaning "write without reading C".
 *
 * packed: ap holds ceil(mc/MR) panels of kc x MR floats (element (r, p) at ap[p*MR + r] within
 *         a panel), bp holds ceil(nc/NR) panels of kc x NR floats (element (p, j) at
 *         bp[p*NR + j]); both zero-padded to whole panels.
 * direct: op(A)(i, p) = a[i*a_rs + p*a_cs]; op(B)(p, j) = b[p*ldb + j]. Reads nothing outside
 *         the m x k and k x n views.
 * dot:    op(A)(i, p) = a[i*lda + p]; op(B)(p, j) = b[j*ldb + p] (B stored n x k).
 */
typedef struct mmi_gemm_ukr {
    void (*packed)(int64_t kc, int64_t mc, int64_t nc, const float *ap, const float *bp,
                   float alpha, float beta, float *c, int64_t ldc);
    void (*direct)(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs, int64_t a_cs,
                   const float *b, int64_t ldb, float alpha, float beta, float *c, int64_t ldc);
    void (*dot)(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda, const float *b,
                int64_t ldb, float alpha, float beta, float *c, int64_t ldc);
    /* Packing into the layout packed reads (same contract as mmi_gemm_pack_a / _b). */
    void (*pack_a)(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                   int64_t kc, float *ap);
    void (*pack_b)(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                   int64_t nc, float *bp);
} mmi_gemm_ukr;

/* The portable C kernel set (gemm_ukr.c); always present. */
extern const mmi_gemm_ukr mmi_gemm_ukr_portable;
/* The AVX2/FMA kernel set (gemm_ukr_avx2.c), or NULL when the compiler did not build it.
 * Callers still check mmi_cpu_has_avx2_fma() before using it. */
const mmi_gemm_ukr *mmi_gemm_ukr_avx2(void);

/* Portable packing (gemm_pack.c); the AVX2 set has its own for whole panels (gemm_pack_avx2.c)
 * and calls these for edge panels. */
/* Packs op(A)[i0 .. i0+mc, p0 .. p0+kc) into ap as described for mmi_gemm_ukr.packed. */
void mmi_gemm_pack_a(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                     int64_t kc, float *ap);
/* Packs op(B)[p0 .. p0+kc, j0 .. j0+nc) into bp as described for mmi_gemm_ukr.packed. */
void mmi_gemm_pack_b(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                     int64_t nc, float *bp);

void mmi_gemm_pack_a_avx2(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc,
                          int64_t p0, int64_t kc, float *ap);
void mmi_gemm_pack_b_avx2(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc,
                          int64_t j0, int64_t nc, float *bp);

#endif /* MMI_GEMM_UKR_H */
