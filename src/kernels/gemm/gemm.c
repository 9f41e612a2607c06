/* SPDX-License-Identifier: MIT */
/*
 * gemm.c — the GEMM driver: picks the way to run a shape (packed, direct or dot; see
 * mmi_gemm.h), blocks over k, m and n, packs into the caller's workspace, splits the work over
 * the thread pool, and dispatches to OpenBLAS when the build has it.
 *
 * Determinism: the path and the k blocking depend only on (trans, m, n, k), and every C element
 * is computed by the same sequence of operations whichever thread or tile position it lands in,
 * so results are bitwise identical for every thread count (tests/test_gemm.c checks this).
 */
#include "mmi_gemm.h"

#include <string.h>

#ifdef MM_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* Below this many multiply-adds a pool wake-up costs more than it saves. */
#define PAR_MIN_FMAS ((int64_t)1 << 20)
/* ... unless C itself is this large: with a short k (a dense layer's 4 inputs, the rank-1 input
 * gradient under a 1-output layer) storing C and running the epilogue over it is the work, and
 * it splits as well as the multiply-adds do. */
#define PAR_MIN_OUTS ((int64_t)1 << 15)
/* Threaded runs cut C into about this many chunks per thread, which the pool's threads claim
 * in turn: on a shared machine one thread may lose its core for a while and the others then
 * take its chunks (a fixed split made 2 threads slower than 1 under load). Which thread
 * computes a chunk does not change its bits, so results stay identical for every thread
 * count. */
#define CHUNKS_PER_THREAD 4
/* The direct path's longest k block (MMI_GEMM_DIRECT_KC, mmi_gemm.h). */
#define DIRECT_KC MMI_GEMM_DIRECT_KC
/* NR panels of B per packing chunk when the threads pack a shared B block together. */
#define PACK_PANELS 4

enum { PATH_PACKED, PATH_DIRECT, PATH_DOT, PATH_SMALL_NT, PATH_GEMV };

/* NT with a few rows and a short k (an MLP's first layer at a small batch: y = x W^T with W
 * n x k, k the observation size, or the observation and a memory core's output): dot products
 * of length k are mostly horizontal sums (a 1x256x3 product took 0.5 us, an 8x64x18 one 0.35
 * us). A set with a small_nt kernel (it transposes B in registers) takes k <= SMALL_NT_COPY_K
 * and, beyond, k <= SMALL_NT_K where its small_nt_k_per_row allows (own_small_nt); otherwise
 * op(B) = W^T, at most SMALL_NT_FLOATS floats and k <= SMALL_NT_COPY_K, is copied into a stack
 * buffer as k x n and the direct NN tile runs over it (a scalar transposing copy of a longer k
 * costs more than the dot path it replaces), or the dot path runs. The kernel and the copy give
 * each element the FMA chain over p of the direct and packed paths. */
#define SMALL_NT_K      MMI_GEMM_SMALL_NT_K
#define SMALL_NT_COPY_K 16
#define SMALL_NT_FLOATS 2048

typedef struct gemm_job {
    const mmi_gemm_ukr *ukr;
    int ta, tb, path, split_n;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int64_t lda, ldb, ldc;
    unsigned char *ws;
    /* Threaded runs: the chunk grid (rows_per x cols_per chunks, n_rc x n_cc of them) and for
     * the packed path the current (jc, pc) block of the shared B. */
    int64_t rows_per, cols_per, n_rc, n_cc, cmu, cnu;
    int64_t jc, nc, pc, kc;
    float beta_blk;
    const mmi_gemm_ep *ep; /* NULL: none */
} gemm_job;

/* Floats of workspace kernel set u needs for nt threads: one kc x nc block of packed B, shared
 * by the threads, then one mc x kc block of packed A per thread. */
static size_t set_ws_floats(const mmi_gemm_ukr *u, size_t nt)
{
    return (size_t)u->kc * (size_t)u->nc + nt * (size_t)u->mc * (size_t)u->kc;
}

/* The most any set this build compiled needs (the getters only return addresses, whatever the
 * CPU), so the size is a build constant and a workspace fits whichever path the dispatch takes. */
size_t mmi_gemm_ws_size(int32_t n_threads)
{
    size_t n = n_threads < 1 ? 1 : (size_t)n_threads,
           need = set_ws_floats(&mmi_gemm_ukr_portable, n);
    const mmi_gemm_ukr *other[2];
    other[0] = mmi_gemm_ukr_avx2();
    other[1] = mmi_gemm_ukr_avx512();
    for (int i = 0; i < 2; i++)
        if (other[i] && set_ws_floats(other[i], n) > need) need = set_ws_floats(other[i], n);
    return sizeof(float) * need;
}

/*
 * Packing costs one pass over op(A) and op(B) and pays off when each packed element is reused
 * many times; the direct and dot paths skip it. The crossovers below were measured on Zen 3
 * (docs/BENCHMARKS.md) and are written as "the packed operand would be reused too little" or
 * "the whole problem is small":
 *   NN: direct when k is tiny (C streaming), m <= 16 (B reused by <= 3 row tiles), n <= 64,
 *       or B small enough to stay in L2 (k*n <= 2^16 with m <= 128, 2^18 with m <= 64).
 *   TN: A is read with stride lda in the direct kernel, so only k tiny, m or n <= 32, or a
 *       small problem.
 *   NT: m <= 8 with k <= 48: the set's small_nt where own_small_nt says so, else with k <= 16
 *       and a small B, B transposed on the stack, then direct (see SMALL_NT_K); dot products when m <= 8, or when m or n <= 64 and k >= 128 (the
 *       horizontal sums of a dot tile need a long k to amortise).
 *   TT: always packed.
 * A set with a one-row kernel (gemv) takes every NT shape with m == 1 (gemm_with).
 * Sizes are compared through quotients so that no product can overflow.
 */
static int choose_path(int ta, int tb, int64_t m, int64_t n, int64_t k)
{
    int tiny_k = k <= MMI_GEMM_SMALL_K;
    if (!ta && !tb) {
        int b_small =
            (m <= 128 && k <= ((int64_t)1 << 16) / n) || (m <= 64 && k <= ((int64_t)1 << 18) / n);
        if (tiny_k || m <= 16 || n <= 64 || b_small) return PATH_DIRECT;
    } else if (!tb) {
        int small = m <= 64 && n <= 64 && k <= ((int64_t)1 << 18) / (m * n);
        if (tiny_k || m <= 32 || n <= 32 || small) return PATH_DIRECT;
    } else if (!ta) {
        if (m <= 8 && k <= SMALL_NT_K) return PATH_SMALL_NT;
        if (m <= 8 || ((m <= 64 || n <= 64) && k >= 128)) return PATH_DOT;
    }
    return PATH_PACKED;
}

/* C = beta * C over m x n; beta == 0 writes zeros without reading (NaN does not propagate). */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc)
{
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < n; j++) ci[j] = 0.0f;
        else
            for (int64_t j = 0; j < n; j++) ci[j] *= beta;
    }
}

/* Splits k into equal blocks of at most max: 300 becomes 150 + 150, not 256 + 44. */
static int64_t block_len(int64_t total, int64_t max, int64_t unit)
{
    int64_t nb = (total + max - 1) / max;
    int64_t len = (total + nb - 1) / nb;
    return (len + unit - 1) / unit * unit;
}

/* The epilogue over a finished block of C (rows [i0, i1), columns [j0, j1)), while the block
 * is still in cache. */
static void finish(const gemm_job *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    if (g->ep && i1 > i0 && j1 > j0) g->ep->fn(g->ep->ctx, i0, i1, j0, j1);
}

/* Goto/BLIS loop nest over rows [i0, i1) and columns [j0, j1) of C. */
static void run_packed(const gemm_job *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float *ws)
{
    const mmi_gemm_ukr *u = g->ukr;
    float *bp = ws, *ap = ws + (size_t)u->kc * (size_t)u->nc;
    int64_t kb = block_len(g->k, u->kc, 1);
    int64_t mb = block_len(i1 - i0, u->mc, u->mr);
    for (int64_t jc = j0; jc < j1; jc += u->nc) {
        int64_t nc = j1 - jc < u->nc ? j1 - jc : u->nc;
        for (int64_t pc = 0; pc < g->k; pc += kb) {
            int64_t kc = g->k - pc < kb ? g->k - pc : kb;
            float beta = pc == 0 ? g->beta : 1.0f;
            g->ukr->pack_b(g->tb, g->b, g->ldb, pc, kc, jc, nc, bp);
            for (int64_t ic = i0; ic < i1; ic += mb) {
                int64_t mc = i1 - ic < mb ? i1 - ic : mb;
                g->ukr->pack_a(g->ta, g->a, g->lda, ic, mc, pc, kc, ap);
                g->ukr->packed(kc, mc, nc, ap, bp, g->alpha, beta, g->c + ic * g->ldc + jc, g->ldc);
                if (pc + kc == g->k) finish(g, ic, ic + mc, jc, jc + nc);
            }
        }
    }
}

/* NN / TN without packing, blocked over k (KC, at most DIRECT_KC) and m (MC) like the packed
 * path: a KC x NR slice of B is reused from L1 by every row tile, the MC x KC block of A from L2
 * by every strip. */
static void run_direct(const gemm_job *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    int64_t a_rs = g->ta ? 1 : g->lda, a_cs = g->ta ? g->lda : 1;
    int64_t kb = block_len(g->k, g->ukr->kc < DIRECT_KC ? g->ukr->kc : DIRECT_KC, 1);
    int64_t mb = block_len(i1 - i0, g->ukr->mc, g->ukr->mr);
    for (int64_t pc = 0; pc < g->k; pc += kb) {
        int64_t kc = g->k - pc < kb ? g->k - pc : kb;
        for (int64_t ic = i0; ic < i1; ic += mb) {
            int64_t mc = i1 - ic < mb ? i1 - ic : mb;
            g->ukr->direct(kc, mc, j1 - j0, g->a + ic * a_rs + pc * a_cs, a_rs, a_cs,
                           g->b + pc * g->ldb + j0, g->ldb, g->alpha, pc == 0 ? g->beta : 1.0f,
                           g->c + ic * g->ldc + j0, g->ldc);
        }
    }
}

/* Whether set u runs its own small_nt kernel on an m x k shape of PATH_SMALL_NT: up to the
 * k of the stack copy (which it beats at every m, one row included: 1 x 64 x 10 took 0.25 us
 * copied, 0.07 us transposed in registers on the AVX2 set), and up to small_nt_k_per_row k steps
 * per row of A beyond (the dot path's k). */
static int own_small_nt(const mmi_gemm_ukr *u, int64_t m, int64_t k)
{
    return u->small_nt && (k <= SMALL_NT_COPY_K || k <= (int64_t)u->small_nt_k_per_row * m);
}

/* PATH_SMALL_NT: the set's small_nt, or op(B) copied as k x n, then the direct NN tile (one
 * thread: the shape is far below PAR_MIN_FMAS). */
static void run_small_nt(const gemm_job *g)
{
    _Alignas(64) float bt[SMALL_NT_FLOATS];
    gemm_job d = *g;
    const int64_t n = g->n, k = g->k, ldb = g->ldb;
    const float *b = g->b;
    if (own_small_nt(g->ukr, g->m, k)) {
        g->ukr->small_nt(k, g->m, n, g->a, g->lda, b, ldb, g->alpha, g->beta, g->c, g->ldc);
        finish(g, 0, g->m, 0, n);
        return;
    }
    MMI_ASSERT(k <= SMALL_NT_COPY_K && k * n <= SMALL_NT_FLOATS);
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++) bt[p * n + j] = b[j * ldb + p];
    d.tb = 0;
    d.b = bt;
    d.ldb = g->n;
    run_direct(&d, 0, g->m, 0, g->n);
    finish(g, 0, g->m, 0, g->n);
}

/* NT as dot products, blocked over k (DOT_KC) and m (DOT_MC): the DOT_NR rows of B in use stay
 * in L1 and the DOT_MC x DOT_KC block of A in L2 while every column of C passes over it. */
static void run_dot(const gemm_job *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    int64_t kb = block_len(g->k, MMI_GEMM_DOT_KC, 8);
    for (int64_t pc = 0; pc < g->k; pc += kb) {
        int64_t kc = g->k - pc < kb ? g->k - pc : kb;
        for (int64_t ic = i0; ic < i1; ic += MMI_GEMM_DOT_MC) {
            int64_t mc = i1 - ic < MMI_GEMM_DOT_MC ? i1 - ic : MMI_GEMM_DOT_MC;
            g->ukr->dot(kc, mc, j1 - j0, g->a + ic * g->lda + pc, g->lda, g->b + j0 * g->ldb + pc,
                        g->ldb, g->alpha, pc == 0 ? g->beta : 1.0f, g->c + ic * g->ldc + j0,
                        g->ldc);
        }
    }
}

/* PATH_GEMV: columns [j0, j1) of the one row of C (one thread's chunk), the whole k. */
static void run_gemv(const gemm_job *g, int64_t j0, int64_t j1)
{
    g->ukr->gemv(g->k, j1 - j0, g->a, g->b + j0 * g->ldb, g->ldb, g->alpha, g->beta, g->c + j0);
}

static void tile_units(const mmi_gemm_ukr *u, int path, int64_t *mu, int64_t *nu)
{
    *mu = path == PATH_DOT ? MMI_GEMM_DOT_MR : path == PATH_GEMV ? 1 : u->mr;
    *nu = path == PATH_DOT ? MMI_GEMM_DOT_NR : path == PATH_GEMV ? MMI_GEMM_GEMV_NR : u->nr;
}

static int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Start of piece i when the tiles of total (multiples of unit, the last one short) are dealt
 * to n pieces as evenly as whole tiles allow. */
static int64_t deal(int64_t i, int64_t n, int64_t total, int64_t unit)
{
    return min64(i * ((total + unit - 1) / unit) / n * unit, total);
}

/* Chunk c of the grid as rows [i0, i1) and columns [j0, j1) of a rows x cols area. The n_rc
 * row chunks share the row tiles evenly (the same for columns), so the threads' shares of
 * chunks hold about as many tiles: 256 rows in 8 chunks of 36 gave the first thread of two
 * 144 rows and the second 112 (at best 1.78x). Boundaries stay on whole register tiles, so each
 * C element still gets the operations it gets on one thread. */
static void chunk_range(const gemm_job *g, int64_t c, int64_t rows, int64_t cols, int64_t *i0,
                        int64_t *i1, int64_t *j0, int64_t *j1)
{
    int64_t r = c / g->n_cc, k = c % g->n_cc;
    *i0 = deal(r, g->n_rc, rows, g->cmu);
    *i1 = deal(r + 1, g->n_rc, rows, g->cmu);
    *j0 = deal(k, g->n_cc, cols, g->cnu);
    *j1 = deal(k + 1, g->n_cc, cols, g->cnu);
}

/* Length of the pieces when total is cut into about want pieces that are multiples of unit
 * and at most max long (max >= unit). */
static int64_t piece_len(int64_t total, int64_t unit, int64_t want, int64_t max)
{
    int64_t len = round_up((total + want - 1) / want, unit);
    int64_t cap = max / unit * unit;
    return len < cap ? len : cap;
}

/* Cuts a rows x cols area into about CHUNKS_PER_THREAD * nt chunks whose sides are multiples
 * of the register tile (mu x nu), rows at most max_rows high. The first dimension (rows, or
 * columns when cols_first) is cut first, the other only when the first gives too few chunks:
 * for the packed path every column chunk repacks its rows of A. */
static void plan_chunks(gemm_job *g, int64_t rows, int64_t cols, int64_t mu, int64_t nu,
                        int64_t max_rows, int64_t nt, int cols_first)
{
    int64_t want = CHUNKS_PER_THREAD * nt, got;
    if (!cols_first) {
        g->rows_per = piece_len(rows, mu, want, max_rows);
        got = (rows + g->rows_per - 1) / g->rows_per;
        g->cols_per = got >= want ? cols : piece_len(cols, nu, (want + got - 1) / got, cols + nu);
    } else {
        g->cols_per = piece_len(cols, nu, want, cols + nu);
        got = (cols + g->cols_per - 1) / g->cols_per;
        g->rows_per = got >= want ? rows : piece_len(rows, mu, (want + got - 1) / got, max_rows);
    }
    g->n_rc = (rows + g->rows_per - 1) / g->rows_per;
    g->n_cc = (cols + g->cols_per - 1) / g->cols_per;
    g->cmu = mu, g->cnu = nu; /* dealt by chunk_range: no chunk is longer than *_per */
}

/* Threaded packed path, phase 1: the threads pack the (jc, pc) block of B together into the
 * shared buffer at the start of ws; task c packs PACK_PANELS panels. */
static void pack_b_task(void *ctx, int64_t c, int64_t n)
{
    const gemm_job *g = (const gemm_job *)ctx;
    const int64_t nr = g->ukr->nr;
    float *bp = (float *)(void *)g->ws;
    int64_t j = c * PACK_PANELS * nr, w = min64(PACK_PANELS * nr, g->nc - j);
    (void)n;
    g->ukr->pack_b(g->tb, g->b, g->ldb, g->pc, g->kc, g->jc + j, w,
                   bp + (size_t)(j / nr) * (size_t)(g->kc * nr));
}

/* Phase 2: chunk c packs its rows of A into the running thread's buffer and runs the register
 * tile over them and its columns of the shared B block. */
static void packed_chunk_task(void *ctx, int64_t c, int64_t n, int32_t slot)
{
    const gemm_job *g = (const gemm_job *)ctx;
    const mmi_gemm_ukr *u = g->ukr;
    float *bp = (float *)(void *)g->ws;
    float *ap = bp + (size_t)u->kc * (size_t)u->nc + (size_t)slot * (size_t)u->mc * (size_t)u->kc;
    int64_t i0, i1, j0, j1;
    (void)n;
    chunk_range(g, c, g->m, g->nc, &i0, &i1, &j0, &j1);
    u->pack_a(g->ta, g->a, g->lda, i0, i1 - i0, g->pc, g->kc, ap);
    u->packed(g->kc, i1 - i0, j1 - j0, ap, bp + (size_t)(j0 / u->nr) * (size_t)(g->kc * u->nr),
              g->alpha, g->beta_blk, g->c + i0 * g->ldc + g->jc + j0, g->ldc);
    if (g->pc + g->kc == g->k) finish(g, i0, i1, g->jc + j0, g->jc + j1);
}

/* The packed loop nest of run_packed with B packed once per block and shared: two pool jobs
 * per (jc, pc) block. The workspace of nt threads holds the shared B block and nt A blocks. */
static void run_packed_mt(gemm_job *g, mmi_pool *pool, int64_t nt)
{
    const mmi_gemm_ukr *u = g->ukr;
    int64_t kb = block_len(g->k, u->kc, 1), step = PACK_PANELS * u->nr;
    for (g->jc = 0; g->jc < g->n; g->jc += u->nc) {
        g->nc = min64(g->n - g->jc, u->nc);
        plan_chunks(g, g->m, g->nc, u->mr, u->nr, u->mc, nt, 0);
        for (g->pc = 0; g->pc < g->k; g->pc += kb) {
            g->kc = min64(g->k - g->pc, kb);
            g->beta_blk = g->pc == 0 ? g->beta : 1.0f;
            mmi_pool_run(pool, pack_b_task, g, (g->nc + step - 1) / step);
            mmi_pool_run_slots(pool, packed_chunk_task, g, g->n_rc * g->n_cc);
        }
    }
}

/* Threaded direct and dot paths: chunk c of C, no packing. */
static void unpacked_chunk_task(void *ctx, int64_t c, int64_t n)
{
    const gemm_job *g = (const gemm_job *)ctx;
    int64_t i0, i1, j0, j1;
    (void)n;
    chunk_range(g, c, g->m, g->n, &i0, &i1, &j0, &j1);
    if (g->path == PATH_DIRECT)
        run_direct(g, i0, i1, j0, j1);
    else if (g->path == PATH_GEMV)
        run_gemv(g, j0, j1);
    else
        run_dot(g, i0, i1, j0, j1);
    finish(g, i0, i1, j0, j1);
}

static void run_threaded(gemm_job *g, mmi_pool *pool, int64_t nt)
{
    int64_t mu, nu;
    if (g->path == PATH_PACKED) {
        run_packed_mt(g, pool, nt);
        return;
    }
    tile_units(g->ukr, g->path, &mu, &nu);
    /* The unpacked paths block rows themselves; a chunk may be as tall as C. */
    plan_chunks(g, g->m, g->n, mu, nu, g->m + mu, nt, g->split_n);
    mmi_pool_run(pool, unpacked_chunk_task, g, g->n_rc * g->n_cc);
}

static void gemm_with(const mmi_gemm_ukr *ukr, int ta, int tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc, void *ws, mmi_pool *pool,
                      const mmi_gemm_ep *ep)
{
    gemm_job g;
    int64_t nt = mmi_pool_size(pool), mu, nu, tiles;
    MMI_ASSERT(m >= 0 && n >= 0 && k >= 0 && ldc >= n);
    MMI_ASSERT(lda >= (ta ? m : k) && ldb >= (tb ? k : n));
    MMI_ASSERT((m == 0 || n == 0) || c != NULL);
    MMI_ASSERT(m == 0 || n == 0 || k == 0 || alpha == 0.0f || (a != NULL && b != NULL));
    /* (choose_path last: it divides by the sizes, which are only nonzero past the others.) */
    MMI_ASSERT(m == 0 || n == 0 || k == 0 || alpha == 0.0f ||
               choose_path(ta, tb, m, n, k) != PATH_PACKED ||
               (ws != NULL && (uintptr_t)ws % MMI_ALIGN == 0));
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        if (ep) ep->fn(ep->ctx, 0, m, 0, n);
        return;
    }
    memset(&g, 0, sizeof g);
    g.ep = ep;
    g.ukr = ukr;
    g.ta = ta;
    g.tb = tb;
    g.path = choose_path(ta, tb, m, n, k);
    /* One row of A, NT: the set's gemv when it has one (a shape rule per set, so the path
     * still never depends on the thread count; no workspace, as dot and small NT). */
    if (m == 1 && !ta && tb && ukr->gemv) g.path = PATH_GEMV;
    /* Small-k NT where the set's own kernel does not take it: the stack copy only where it
     * pays. */
    if (g.path == PATH_SMALL_NT && !own_small_nt(ukr, m, k) &&
        (k > SMALL_NT_COPY_K || k > SMALL_NT_FLOATS / n))
        g.path = PATH_DOT;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = alpha;
    g.beta = beta;
    g.a = a;
    g.b = b;
    g.c = c;
    g.lda = lda;
    g.ldb = ldb;
    g.ldc = ldc;
    g.ws = (unsigned char *)ws;
    tile_units(ukr, g.path, &mu, &nu);
    /* The unpacked paths split the dimension with more tiles. */
    g.split_n = (n + nu - 1) / nu >= (m + mu - 1) / mu;
    tiles = g.split_n ? (n + nu - 1) / nu : (m + mu - 1) / mu;
    if (m * n < PAR_MIN_FMAS / k && m * n < PAR_MIN_OUTS) nt = 1;
    if (nt > tiles) nt = tiles;
    if (g.path == PATH_SMALL_NT) {
        run_small_nt(&g);
    } else if (g.path == PATH_GEMV && nt <= 1) {
        run_gemv(&g, 0, n);
        finish(&g, 0, m, 0, n);
    } else if (nt > 1) {
        run_threaded(&g, pool, nt);
    } else if (g.path == PATH_PACKED) {
        run_packed(&g, 0, m, 0, n, (float *)ws);
    } else if (g.path == PATH_DIRECT) {
        run_direct(&g, 0, m, 0, n);
        finish(&g, 0, m, 0, n);
    } else {
        run_dot(&g, 0, m, 0, n);
        finish(&g, 0, m, 0, n);
    }
}

void mmi_gemm_portable(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       void *ws, mmi_pool *pool)
{
    gemm_with(&mmi_gemm_ukr_portable, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws,
              pool, NULL);
}

void mmi_gemm_native(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                     void *ws, mmi_pool *pool)
{
    gemm_with(mmi_gemm_ukr_for(mmi_simd_path_get()), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
              c, ldc, ws, pool, NULL);
}

int mmi_gemm_takes_small_nt(mmi_simd_path p, int64_t m, int64_t n, int64_t k)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(p);
    if (m < 1 || n < 1 || k < 1 || choose_path(0, 1, m, n, k) != PATH_SMALL_NT) return 0;
    if (m == 1 && u->gemv) return 0;
    return own_small_nt(u, m, k);
}

int mmi_gemm_on_path(mmi_simd_path p, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                     int64_t ldc, void *ws, mmi_pool *pool)
{
    if ((unsigned)p >= MMI_SIMD_NPATHS || !mmi_simd_available(p)) return 0;
    gemm_with(mmi_gemm_ukr_for(p), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, pool,
              NULL);
    return 1;
}

#ifdef MM_HAVE_OPENBLAS
/* OpenBLAS takes int sizes here; larger problems (and the trivial ones, which OpenBLAS would
 * report through its printing xerbla when a leading dimension is 0) stay native. */
static int blas_fits(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    return m > 0 && n > 0 && k > 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX &&
           lda <= INT32_MAX && ldb <= INT32_MAX && ldc <= INT32_MAX;
}
#endif

void mmi_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, void *ws,
              mmi_pool *pool)
{
#ifdef MM_HAVE_OPENBLAS
    if (alpha != 0.0f && blas_fits(m, n, k, lda, ldb, ldc)) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb,
                    beta, c, (blasint)ldc);
        return;
    }
#endif
    mmi_gemm_native(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, pool);
}

void mmi_gemm_then(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                   void *ws, mmi_pool *pool, const mmi_gemm_ep *ep)
{
#ifdef MM_HAVE_OPENBLAS
    if (alpha != 0.0f && blas_fits(m, n, k, lda, ldb, ldc)) {
        mmi_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws, pool);
        if (ep && m > 0 && n > 0) ep->fn(ep->ctx, 0, m, 0, n);
        return;
    }
#endif
    gemm_with(mmi_gemm_ukr_for(mmi_simd_path_get()), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta,
              c, ldc, ws, pool, ep);
}

int mmi_gemm_needs_ws(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                      int64_t ldb, int64_t ldc)
{
    if (m == 0 || n == 0 || k == 0 || alpha == 0.0f) return 0;
#ifdef MM_HAVE_OPENBLAS
    if (blas_fits(m, n, k, lda, ldb, ldc)) return 0;
#else
    (void)lda;
    (void)ldb;
    (void)ldc;
#endif
    return choose_path(ta, tb, m, n, k) == PATH_PACKED;
}

int mmi_gemm_native_needs_ws(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha)
{
    if (m == 0 || n == 0 || k == 0 || alpha == 0.0f) return 0;
    return choose_path(ta, tb, m, n, k) == PATH_PACKED;
}

/* ---- NT with B kept transposed (mmi_gemm.h) ---------------------------------------------- */

int64_t mmi_gemm_nt_panel_floats(int64_t n, int64_t k)
{
    return (n + MMI_GEMM_NR - 1) / MMI_GEMM_NR * MMI_GEMM_NR * k;
}

void mmi_gemm_nt_panel(int64_t n, int64_t k, const float *b, int64_t ldb, float *panel)
{
    for (int64_t j0 = 0; j0 < n; j0 += MMI_GEMM_NR) {
        float *s = panel + j0 * k; /* strip j0 / NR starts after j0 / NR strips of k x NR */
        for (int64_t p = 0; p < k; p++)
            for (int64_t jj = 0; jj < MMI_GEMM_NR; jj++)
                s[p * MMI_GEMM_NR + jj] = j0 + jj < n ? b[(j0 + jj) * ldb + p] : 0.0f;
    }
}

int mmi_gemm_nt_panel_is(int64_t n, int64_t k, const float *b, int64_t ldb, const float *panel)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++) {
            float v = panel[j / MMI_GEMM_NR * MMI_GEMM_NR * k + p * MMI_GEMM_NR + j % MMI_GEMM_NR];
            if (memcmp(&v, &b[j * ldb + p], sizeof v) != 0) return 0; /* bits: NaN, -0 */
        }
    return 1;
}

/* Every shape small_nt_panel accepts, also those where the set's small_nt would leave the
 * product to the dot path (one or two rows at k > 16, ...): without the transposes the panel's
 * tile is the faster one there too (the act of one agent with an LRU16 core, whose first layer
 * is 1 x 64 x 18: 0.56 us per act with the dot path, 0.49 us over the panel; AVX2, Zen 3). */
int mmi_gemm_nt_takes_panel(int64_t m, int64_t n, int64_t k)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
#ifdef MM_HAVE_OPENBLAS
    if (blas_fits(m, n, k, k, k, n)) return 0; /* mmi_gemm_then hands it to OpenBLAS */
#endif
    return u->small_nt_panel && m >= 1 && m <= 8 && n >= 1 && k >= 1 && k <= MMI_GEMM_SMALL_NT_K &&
           !(m == 1 && u->gemv);
}

void mmi_gemm_nt_panel_then(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                            int64_t lda, const float *panel, float beta, float *c, int64_t ldc,
                            const mmi_gemm_ep *ep)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    MMI_ASSERT(mmi_gemm_nt_takes_panel(m, n, k) && ldc >= n && lda >= k);
    u->small_nt_panel(k, m, n, a, lda, panel, alpha, beta, c, ldc);
    if (ep) ep->fn(ep->ctx, 0, m, 0, n);
}
