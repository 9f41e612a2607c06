/* SPDX-License-Identifier: MIT */
/* loss_tile_gemm.c — the GEMMs of the tiled pairwise losses, on operands packed once and reused.
 * mmi_gemm packs both operands on every call; the losses call it on the same row block of X
 * for every column block (and the same column block of Y in both CLIP passes), so that packing
 * cost as much as a third of the arithmetic at tile 256 on AVX-512. Here the loss packs an
 * operand into the dispatched GEMM kernel set's panel layout (mmi_gemm.h) once, for all its k
 * blocks, keeps it in its workspace as long as it is reused, and runs the set's packed
 * register-tile loop over it. Packing and register tile are mmi_gemm's native packed path; the
 * k blocks (equal blocks, fixed by k and the set alone) may be longer than mmi_gemm's (TG_KC),
 * so the last bits may differ from an mmi_gemm of the same product. Each element is computed by
 * the same operations whichever thread or row chunk computes it: results do not depend on the
 * thread count. Always the native kernels, also in OpenBLAS builds. */
#include "mmi_loss_kernels.h"

/* Rows (or columns) of one pool task of the packing and of the register-tile loop, in units of
 * the set's mr (or nr). */
#define PACK_UNITS 4
#define RUN_UNITS  8
/* k blocks of at least TG_KC (the set's kc when larger): the AVX-512 set's kc of 128 made every
 * C block of a d = 512 tile go through the register tile's load, scale and store four times;
 * 256 keeps its B panel (256 x 32 floats, 32 KiB) in L1. Columns of C per block: TG_NC, so a
 * 256-row block (128 KiB) stays in L2 across the k blocks while the next B panels stream. Both
 * measured on Zen 5 (docs/BENCHMARKS.md, loss tile GEMMs rows): about 5% over 128 and all
 * columns at once. */
#define TG_KC 256
#define TG_NC 128

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t k_block(const mmi_gemm_ukr *u, int64_t k)
{
    int64_t nb = ceil_div(k, u->kc > TG_KC ? u->kc : TG_KC);
    return ceil_div(k, nb); /* equal blocks of at most kc: mmi_gemm's block_len */
}

int64_t mmi_tg_pad(int64_t rows) { return ceil_div(rows, MMI_TG_PAD) * MMI_TG_PAD; }

typedef struct tg_job {
    const mmi_gemm_ukr *u;
    int t; /* transpose flag of the operand */
    const float *src;
    int64_t ld, rows, k, kb, pad; /* rows: the packed dimension (m of op(A), n of op(B)) */
    float *dst;
    /* run */
    const float *ap, *bp;
    int64_t m, n, chunk;
    float alpha, beta;
    float *c;
    int64_t ldc;
} tg_job;

static void pack_a_task(void *ctx, int64_t g, int64_t n)
{
    const tg_job *j = (const tg_job *)ctx;
    int64_t r0 = g * PACK_UNITS * j->u->mr, len = j->rows - r0;
    (void)n;
    if (len > PACK_UNITS * j->u->mr) len = PACK_UNITS * j->u->mr;
    for (int64_t pc = 0; pc < j->k; pc += j->kb) {
        int64_t kc = j->k - pc < j->kb ? j->k - pc : j->kb;
        j->u->pack_a(j->t, j->src, j->ld, r0, len, pc, kc, j->dst + j->pad * pc + r0 * kc);
    }
}

static void pack_b_task(void *ctx, int64_t g, int64_t n)
{
    const tg_job *j = (const tg_job *)ctx;
    int64_t c0 = g * PACK_UNITS * j->u->nr, len = j->rows - c0;
    (void)n;
    if (len > PACK_UNITS * j->u->nr) len = PACK_UNITS * j->u->nr;
    for (int64_t pc = 0; pc < j->k; pc += j->kb) {
        int64_t kc = j->k - pc < j->kb ? j->k - pc : j->kb;
        j->u->pack_b(j->t, j->src, j->ld, pc, kc, c0, len, j->dst + j->pad * pc + c0 * kc);
    }
}

void mmi_tg_pack_a(const mmi_gemm_ukr *u, int ta, const float *a, int64_t lda, int64_t m, int64_t k,
                   float *ap, mmi_pool *pool)
{
    tg_job j = {0};
    j.u = u, j.t = ta, j.src = a, j.ld = lda, j.rows = m, j.k = k, j.kb = k_block(u, k);
    j.pad = ceil_div(m, u->mr) * u->mr;
    j.dst = ap;
    mmi_pool_run(pool, pack_a_task, &j, ceil_div(m, PACK_UNITS * u->mr));
}

void mmi_tg_pack_b(const mmi_gemm_ukr *u, int tb, const float *b, int64_t ldb, int64_t k, int64_t n,
                   float *bp, mmi_pool *pool)
{
    tg_job j = {0};
    j.u = u, j.t = tb, j.src = b, j.ld = ldb, j.rows = n, j.k = k, j.kb = k_block(u, k);
    j.pad = ceil_div(n, u->nr) * u->nr;
    j.dst = bp;
    mmi_pool_run(pool, pack_b_task, &j, ceil_div(n, PACK_UNITS * u->nr));
}

/* Row chunk g, TG_NC columns at a time: every k block of those, so that block of C stays in L2
 * between k blocks. */
static void run_task(void *ctx, int64_t g, int64_t n)
{
    const tg_job *j = (const tg_job *)ctx;
    const mmi_gemm_ukr *u = j->u;
    int64_t r0 = g * j->chunk, mc = j->m - r0, mpad = ceil_div(j->m, u->mr) * u->mr,
            npad = ceil_div(j->n, u->nr) * u->nr;
    const int64_t ncb = TG_NC;
    (void)n;
    if (mc > j->chunk) mc = j->chunk;
    for (int64_t jc = 0; jc < j->n; jc += ncb) {
        int64_t nc = j->n - jc < ncb ? j->n - jc : ncb;
        for (int64_t pc = 0; pc < j->k; pc += j->kb) {
            int64_t kc = j->k - pc < j->kb ? j->k - pc : j->kb;
            u->packed(kc, mc, nc, j->ap + mpad * pc + r0 * kc, j->bp + npad * pc + jc * kc,
                      j->alpha, pc == 0 ? j->beta : 1.0f, j->c + r0 * j->ldc + jc, j->ldc);
        }
    }
}

void mmi_tg_run(const mmi_gemm_ukr *u, int64_t m, int64_t n, int64_t k, float alpha,
                const float *ap, const float *bp, float beta, float *c, int64_t ldc, mmi_pool *pool)
{
    tg_job j = {0};
    int64_t nt = mmi_pool_size(pool);
    j.u = u, j.m = m, j.n = n, j.k = k, j.kb = k_block(u, k), j.ap = ap, j.bp = bp;
    j.alpha = alpha, j.beta = beta, j.c = c, j.ldc = ldc;
    /* one chunk per thread's share of RUN_UNITS register rows at least: a single thread runs
     * the whole block, whose packed A stays in L2 while the B panels stream through L1 */
    j.chunk = nt <= 1 ? m : ceil_div(ceil_div(m, 2 * nt), u->mr) * u->mr;
    if (j.chunk < RUN_UNITS * u->mr && nt > 1) j.chunk = RUN_UNITS * u->mr;
    if (j.chunk < 1) j.chunk = 1;
    mmi_pool_run(pool, run_task, &j, ceil_div(m, j.chunk));
}
