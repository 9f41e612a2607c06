/* SPDX-License-Identifier: MIT */
/*
 * mmi_gemm.h — the GEMM family: its contract, its ISA variants (kernel sets) and how the
 * driver chooses among them. Like every kernel family: pure functions on raw float buffers, no
 * handles, no allocation, no error text; callers (operators, models, the public mm_sgemm)
 * validate arguments and provide workspace; kernels assume valid input (MMI_ASSERT states it).
 */
#ifndef MMI_GEMM_H
#define MMI_GEMM_H

#include "../../core/mmi.h"
#include "../simd/mmi_simd.h"

/* ---- GEMM --------------------------------------------------------------------------------- */
/* Bytes of workspace mmi_gemm needs for a pool of n_threads (>= 1) threads; a build constant per
 * thread count, 64-byte multiple. */
size_t mmi_gemm_ws_size(int32_t n_threads);

/* Row-major C = alpha*op(A)*op(B) + beta*C (see mm_sgemm in mm.h for the layout rules).
 * Preconditions (checked by callers): sizes >= 0, leading dimensions valid, C not overlapping A
 * or B, ws of mmi_gemm_ws_size(mmi_pool_size(pool)) bytes, 64-byte aligned. beta == 0 writes C
 * without reading it; ws may be NULL when mmi_gemm_needs_ws says so. Dispatches to OpenBLAS
 * when built with it, else the native kernel, whose results are bitwise identical for every
 * pool size. */
void mmi_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *ws,
              mmi_pool *pool);

/* An epilogue: fn(ctx, i0, i1, j0, j1) runs once on every finished block of C (rows [i0, i1),
 * columns [j0, j1); the blocks tile C exactly once) right after the block's last k step, while
 * it is still in cache, on whichever pool thread computed it. A layer passes its bias add and
 * activation here instead of two more passes over C. fn must treat each element on its own
 * (so the result does not depend on the blocking or the thread count) and touch only its block
 * of C and the caller's buffers at the same rows and columns. A function pointer rather than a
 * list of operations so the GEMM family links no other family's kernels. */
typedef struct mmi_gemm_ep {
    void (*fn)(void *ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1);
    void *ctx;
} mmi_gemm_ep;

/* mmi_gemm, then ep (NULL: none) over all of C, in blocks as described for mmi_gemm_ep. The
 * product is bitwise mmi_gemm's. */
void mmi_gemm_then(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                   void *ws, mmi_pool *pool, const mmi_gemm_ep *ep);

/* 1 if mmi_gemm on this shape and these arguments uses its workspace (the packed path); when 0
 * its ws may be NULL. Lets mm_sgemm allocate only when packing is needed. (mmi_gemm_native and
 * mmi_gemm_portable agree with it except in OpenBLAS builds, where mmi_gemm never packs.) */
int mmi_gemm_needs_ws(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                      int64_t ldb, int64_t ldc);

/* As mmi_gemm_needs_ws for mmi_gemm_native (which never hands off to OpenBLAS). */
int mmi_gemm_native_needs_ws(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha);

/* The native kernel only (portable blocked C or AVX2/FMA), never OpenBLAS: what benchmarks and
 * tests compare against the peer. Same contract as mmi_gemm. */
void mmi_gemm_native(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                     void *ws, mmi_pool *pool);

/* The portable C path alone. Same contract. */
void mmi_gemm_portable(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       void *ws, mmi_pool *pool);

/* The native kernel on SIMD path p whatever the dispatch chose (tests compare paths with it).
 * Returns 0 without touching C when p is not available (mmi_simd_available). Same contract. */
int mmi_gemm_on_path(mmi_simd_path p, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                     int64_t ldc, void *ws, mmi_pool *pool);

/* ---- kernel sets (gemm.c drives them; gemm_ukr*.c and gemm_pack*.c implement them) ---------
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
 *   gemv:   NT with m == 1, when the set has a gemv entry (the AVX-512 set): many rows of the
 *           stored B at once against the one row of A, any k (it replaces dot and small-k NT).
 * A kernel set implements the three block loops and the packing; the driver does the blocking,
 * threading, alpha == 0 / k == 0 and the beta of the first k block.
 */

/* Register tile of the portable and AVX2 sets' packed and direct paths: 6 rows x 16 columns =
 * 12 ymm accumulators (the AVX-512 set carries its own, 12 x 32; see gemm_ukr_avx512.c). */
#define MMI_GEMM_MR 6
#define MMI_GEMM_NR 16
/* Their cache blocks: a KC x NR panel of B (16 KiB) stays in L1, an MC x KC block of packed A
 * (144 KiB) in L2, a KC x NC block of packed B (1 MiB) in L3. MC is a multiple of MR and NC of
 * NR. Measured on Zen 3; see docs/BENCHMARKS.md. */
#define MMI_GEMM_KC 256
#define MMI_GEMM_MC 144
#define MMI_GEMM_NC 1024
/* The direct path's longest k block: its B slices are read in place, not packed, and must stay
 * in L1 across the row tiles of a strip, whatever k block a set's packed path prefers (the
 * AVX-512 set packs with kc 1024). A direct product with k up to this and up to the set's mc
 * rows is one call of the set's direct kernel (the attention tiles call it so). */
#define MMI_GEMM_DIRECT_KC 256
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
 * packed: with MR, NR the set's mr, nr: ap holds ceil(mc/MR) panels of kc x MR floats (element
 *         (r, p) at ap[p*MR + r] within a panel), bp holds ceil(nc/NR) panels of kc x NR floats
 *         (element (p, j) at bp[p*NR + j]); both zero-padded to whole panels.
 * direct: op(A)(i, p) = a[i*a_rs + p*a_cs]; op(B)(p, j) = b[p*ldb + j]. Reads nothing outside
 *         the m x k and k x n views.
 * dot:    op(A)(i, p) = a[i*lda + p]; op(B)(p, j) = b[j*ldb + p] (B stored n x k).
 */
typedef struct mmi_gemm_ukr {
    /* This set's register tile (mr x nr) and cache blocks (kc, mc, nc) of the packed and direct
     * paths: the driver blocks, packs and splits work with them, and mmi_gemm_ws_size covers
     * every set the build compiled. mc is a multiple of mr, nc of nr. */
    int32_t mr, nr, kc, mc, nc;
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
    /* One row of A, NT (y = x W^T at batch 1), or NULL: the driver then takes the dot or the
     * small-k path. c[j] = alpha * sum_p a[p] b[j*ldb + p] + beta * c[j] for j < n over the
     * whole k (no k blocks), each element computed the same way whatever n and whatever
     * column it is (the threads split n in multiples of MMI_GEMM_GEMV_NR). */
    void (*gemv)(int64_t k, int64_t n, const float *a, const float *b, int64_t ldb, float alpha,
                 float beta, float *c);
    /* A few rows of A, NT, short k (1 <= m <= 8, 1 <= k <= MMI_GEMM_SMALL_NT_K: a dense layer's
     * forward at a small batch), or NULL: the driver then copies a small B (k <= 16) to the
     * stack and runs direct, or takes the dot path. Same contract as dot; every C element gets direct's
     * operations in direct's order (an FMA chain over p from zero, then alpha, then beta), so
     * the choice never changes a result. */
    void (*small_nt)(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float alpha, float beta, float *c, int64_t ldc);
    /* small_nt runs for m <= 8 and k <= 16 or k <= min(MMI_GEMM_SMALL_NT_K,
     * small_nt_k_per_row * m): with few rows a longer k runs faster as dot products (the
     * transpose of B is paid for fewer FMAs). A shape rule per set, so the path never depends
     * on the thread count. (One row goes to gemv first where the set has one.) */
    int32_t small_nt_k_per_row;
    /* small_nt over B^T formed beforehand by mmi_gemm_nt_panel (a caller that keeps it across
     * products of the same B: mm_policy_act's first layer), or NULL. The same operations on
     * the same values as small_nt, so the same bits; it skips only the transposes, and takes
     * every m <= 8 and k <= MMI_GEMM_SMALL_NT_K (not only small_nt_k_per_row's). */
    void (*small_nt_panel)(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                           const float *panel, float alpha, float beta, float *c, int64_t ldc);
} mmi_gemm_ukr;

/* The longest k of the small-k NT path (gemm.c). */
#define MMI_GEMM_SMALL_NT_K 48

/* 1 if mmi_gemm_on_path(p, 0, 1, m, n, k, ...) with alpha != 0 runs set p's small_nt kernel
 * (p available): what tests use to know which rows must equal the packed path's bits. */
int mmi_gemm_takes_small_nt(mmi_simd_path p, int64_t m, int64_t n, int64_t k);

/* ---- NT with B kept transposed -------------------------------------------------------------
 * A caller that runs many small NT products against one B (y = x W^T of a dense layer at a
 * few rows) can form B^T once with mmi_gemm_nt_panel and run the products over it with
 * mmi_gemm_nt_panel_then, without the transposes small_nt repeats on each call. Each C element
 * gets the direct and packed paths' operations (an FMA chain over p from zero, then alpha, then
 * beta): bit for bit mmi_gemm_then(0, 1, ...) where that runs small_nt, and where it would take
 * the dot path instead (a row or two at k > 16 on the AVX2 set) the bits the packed path gives
 * the same rows in a taller product (a network's training forward). The caller keeps the panel
 * current: any write to B must form it again. Layout: ceil(n / NR) strips of k x NR floats (NR = MMI_GEMM_NR; B(j, p)
 * with j = s NR + jj at panel[s k NR + p NR + jj]), columns past n zero. */

/* Floats of a panel of an n x k B. */
int64_t mmi_gemm_nt_panel_floats(int64_t n, int64_t k);
/* B (n x k, row stride ldb) into panel (mmi_gemm_nt_panel_floats(n, k) floats). */
void mmi_gemm_nt_panel(int64_t n, int64_t k, const float *b, int64_t ldb, float *panel);
/* 1 if panel holds B as mmi_gemm_nt_panel would form it (debug checks of the callers). */
int mmi_gemm_nt_panel_is(int64_t n, int64_t k, const float *b, int64_t ldb, const float *panel);
/* 1 if the dispatched set has small_nt_panel (the AVX2 set) and m x n x k fits it (m <= 8, k <=
 * MMI_GEMM_SMALL_NT_K, not OpenBLAS's): then mmi_gemm_nt_panel_then may run. 0 elsewhere (use
 * mmi_gemm_then). */
int mmi_gemm_nt_takes_panel(int64_t m, int64_t n, int64_t k);
/* C = alpha A B^T + beta C over m x n (bits as above), then ep (NULL: none) over all of C, with
 * B's panel in place of B. Only where mmi_gemm_nt_takes_panel(m, n, k). */
void mmi_gemm_nt_panel_then(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                            int64_t lda, const float *panel, float beta, float *c, int64_t ldc,
                            const mmi_gemm_ep *ep);

/* Columns per chunk unit of the gemv path when threads split it. */
#define MMI_GEMM_GEMV_NR 16

/* The portable C kernel set (gemm_ukr.c); always present. */
extern const mmi_gemm_ukr mmi_gemm_ukr_portable;
/* The AVX2/FMA kernel set (gemm_ukr_avx2.c), or NULL when the build did not compile it. Only
 * the dispatch (mmi_gemm_ukr_for with an available path) hands it out. */
const mmi_gemm_ukr *mmi_gemm_ukr_avx2(void);
/* The AVX-512 (F/DQ/BW/VL) kernel set (gemm_ukr_avx512.c, gemm_pack_avx512.c; 12 x 32 tile), or
 * NULL when the build did not compile it; the dispatch then keeps the AVX2 set on the AVX-512
 * path. */
const mmi_gemm_ukr *mmi_gemm_ukr_avx512(void);

/* The kernel set of path p: the best one written at or below p (p available: the caller checks
 * with mmi_simd_available). Inline, so that a program linking only the GEMM links no other
 * family's kernels. */
static inline const mmi_gemm_ukr *mmi_gemm_ukr_for(mmi_simd_path p)
{
    if (p >= MMI_SIMD_AVX512 && mmi_gemm_ukr_avx512()) return mmi_gemm_ukr_avx512();
    if (p >= MMI_SIMD_AVX2 && mmi_gemm_ukr_avx2()) return mmi_gemm_ukr_avx2();
    return &mmi_gemm_ukr_portable;
}

/* Portable packing (gemm_pack.c); the AVX2 set has its own for whole panels (gemm_pack_avx2.c)
 * and calls these for edge panels. */
/* Packs op(A)[i0 .. i0+mc, p0 .. p0+kc) into ap as described for mmi_gemm_ukr.packed. */
void mmi_gemm_pack_a(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                     int64_t kc, float *ap);
/* Packs op(B)[p0 .. p0+kc, j0 .. j0+nc) into bp as described for mmi_gemm_ukr.packed. */
void mmi_gemm_pack_b(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                     int64_t nc, float *bp);

void mmi_gemm_pack_a_avx2(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                          int64_t kc, float *ap);
void mmi_gemm_pack_b_avx2(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                          int64_t nc, float *bp);

/* AVX-512 packing into the AVX-512 set's 12-row / 32-column panels (gemm_pack_avx512.c), edges
 * included (masked loads, zero padding). */
void mmi_gemm_pack_a_avx512(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                            int64_t kc, float *ap);
void mmi_gemm_pack_b_avx512(int tb, const float *b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                            int64_t nc, float *bp);

#endif /* MMI_GEMM_H */
