/* SPDX-License-Identifier: MIT */
/* loss_dist_kernel.c — rectangular CLIP and SigLIP blocks for the distributed losses (see
 * mmi_loss_dist.h). Tiles of Z = s A_I B_J^T (+ b) are computed one at a time, so a rank's
 * B x N block is never held: CLIP keeps online (max, sum exp, sum exp * z) statistics per row
 * and per column; SigLIP turns each tile into its gradient at once. Pool tasks own fixed row
 * or column strips, so sums never depend on the thread count. */
#include "mmi_loss_dist.h"

#include <math.h>
#include <string.h>

#define ROWS_PER_TASK 32
#define COLS_PER_TASK 64

typedef struct block_ws {
    void *gemm_ws;
    float *z;          /* tile x tile */
    double *part;      /* 3 sums per row task (SigLIP) */
    float *m_r, *m_c;  /* running maxima per row / column */
    double *l_r, *l_c; /* running sums of exp(z - m) */
    double *a_r, *a_c; /* running sums of exp(z - m) z */
} block_ws;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Carves base into the buffers (or only measures when base is NULL); 0 on overflow. */
static size_t block_layout(void *base, int64_t nr, int64_t nc, int64_t tile, int32_t nth,
                           block_ws *w)
{
    mmi_carve y = base ? mmi_carve_at(base, SIZE_MAX) : mmi_carve_measure();
    int64_t tt;
    if (mmi_mul_i64(&tt, tile, tile)) return 0;
    w->gemm_ws = mmi_carve_take(&y, (int64_t)mmi_gemm_ws_size(nth), 1);
    w->z = mmi_carve_take(&y, tt, sizeof(float));
    w->part = mmi_carve_take(&y, ceil_div(tile, ROWS_PER_TASK) * 3, sizeof(double));
    w->m_r = mmi_carve_take(&y, nr, sizeof(float));
    w->l_r = mmi_carve_take(&y, nr, sizeof(double));
    w->a_r = mmi_carve_take(&y, nr, sizeof(double));
    w->m_c = mmi_carve_take(&y, nc, sizeof(float));
    w->l_c = mmi_carve_take(&y, nc, sizeof(double));
    w->a_c = mmi_carve_take(&y, nc, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_block_ws_size(int64_t max_nr, int64_t max_nc, int64_t tile, int32_t n_threads)
{
    block_ws w;
    return block_layout(NULL, max_nr, max_nc, tile, n_threads, &w);
}

typedef struct tile_job {
    const mmi_loss_tile_ops *ops;
    const mmi_block_args *a;
    block_ws *w;
    int64_t i0, j0, ti, tj, n_row_tasks;
    const float *lse_r, *lse_c; /* CLIP gradient pass */
} tile_job;

static void tile_gemm(const mmi_block_args *a, block_ws *w, mmi_pool *pool, int64_t i0, int64_t j0,
                      int64_t ti, int64_t tj)
{
    mmi_gemm(MM_NO_TRANS, MM_TRANS, ti, tj, a->d, a->scale, a->a + i0 * a->d, a->d,
             a->b + j0 * a->d, a->d, 0.0f, w->z, tj, w->gemm_ws, pool);
}

/* Online (max, sum, weighted sum) update of one statistic with a new block maximum mx. */
static void online_rescale(float *m, double *l, double *acc, float mx, int fresh)
{
    if (fresh) {
        *m = mx;
        *l = 0.0;
        *acc = 0.0;
    } else if (mx > *m) {
        double f = exp((double)*m - (double)mx);
        *l *= f;
        *acc *= f;
        *m = mx;
    }
}

static void stats_task(void *ctx, int64_t k, int64_t n)
{
    const tile_job *t = (const tile_job *)ctx;
    block_ws *w = t->w;
    (void)n;
    if (k < t->n_row_tasks) {
        int64_t r1 = min64((k + 1) * ROWS_PER_TASK, t->ti);
        for (int64_t r = k * ROWS_PER_TASK; r < r1; r++) {
            const float *zr = w->z + r * t->tj;
            int64_t i = t->i0 + r;
            online_rescale(&w->m_r[i], &w->l_r[i], &w->a_r[i], t->ops->row_max(zr, t->tj),
                           t->j0 == 0);
            w->l_r[i] += t->ops->row_expsum(zr, zr, t->tj, w->m_r[i], &w->a_r[i]);
        }
    } else {
        float mx[COLS_PER_TASK];
        int64_t c0 = (k - t->n_row_tasks) * COLS_PER_TASK, len = min64(COLS_PER_TASK, t->tj - c0);
        int64_t j0 = t->j0 + c0;
        for (int64_t c = 0; c < len; c++) mx[c] = -INFINITY;
        t->ops->col_max(w->z + c0, t->tj, t->ti, len, mx);
        for (int64_t c = 0; c < len; c++)
            online_rescale(&w->m_c[j0 + c], &w->l_c[j0 + c], &w->a_c[j0 + c], mx[c], t->i0 == 0);
        t->ops->col_expsum(w->z + c0, t->tj, t->ti, len, w->m_c + j0, w->l_c + j0, w->a_c + j0);
    }
}

/* Sum of the positive logits inside the current tile. */
static double tile_diag(const mmi_block_args *a, const block_ws *w, int64_t i0, int64_t j0,
                        int64_t ti, int64_t tj)
{
    double s = 0.0;
    if (a->diag < 0) return 0.0;
    for (int64_t r = 0; r < ti; r++) {
        int64_t col = a->diag + i0 + r - j0;
        if (col >= 0 && col < tj) s += (double)w->z[r * tj + col];
    }
    return s;
}

void mmi_clip_block_stats(const mmi_block_args *a, void *ws, mmi_pool *pool, float *lse_r,
                          double *wz_r, float *lse_c, float *wz_c, double *diag)
{
    MMI_ASSERT(a && a->nr > 0 && a->nc > 0 && a->d > 0 && a->tile > 0 && a->a && a->b);
    MMI_ASSERT(lse_r && wz_r && lse_c && wz_c && diag && ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    block_ws w;
    double dg = 0.0;
    block_layout(ws, a->nr, a->nc, a->tile, mmi_pool_size(pool), &w);
    for (int64_t i0 = 0; i0 < a->nr; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->nc; j0 += a->tile) {
            tile_job t = {
                ops, a,    &w,  i0, j0, min64(a->tile, a->nr - i0), min64(a->tile, a->nc - j0),
                0,   NULL, NULL};
            t.n_row_tasks = ceil_div(t.ti, ROWS_PER_TASK);
            tile_gemm(a, &w, pool, i0, j0, t.ti, t.tj);
            dg += tile_diag(a, &w, i0, j0, t.ti, t.tj);
            mmi_pool_run(pool, stats_task, &t, t.n_row_tasks + ceil_div(t.tj, COLS_PER_TASK));
        }
    }
    for (int64_t i = 0; i < a->nr; i++) {
        lse_r[i] = (float)((double)w.m_r[i] + log(w.l_r[i]));
        wz_r[i] = w.a_r[i] / w.l_r[i];
    }
    for (int64_t j = 0; j < a->nc; j++) {
        lse_c[j] = (float)((double)w.m_c[j] + log(w.l_c[j]));
        wz_c[j] = (float)(w.a_c[j] / w.l_c[j]);
    }
    *diag = dg;
}

/* Turns rows of the tile into G = P + Q - 2 (on the positives). */
static void clip_grad_task(void *ctx, int64_t k, int64_t n)
{
    const tile_job *t = (const tile_job *)ctx;
    int64_t r1 = min64((k + 1) * ROWS_PER_TASK, t->ti);
    (void)n;
    for (int64_t r = k * ROWS_PER_TASK; r < r1; r++) {
        int64_t i = t->i0 + r, col = t->a->diag + i - t->j0;
        float *zr = t->w->z + r * t->tj;
        t->ops->clip_grad_row(zr, t->tj, t->lse_r[i], t->lse_c + t->j0);
        if (t->a->diag >= 0 && col >= 0 && col < t->tj) zr[col] -= 2.0f;
    }
}

/* da_I (+)= c G b_J and db_J (+)= c G^T a_I for the tile held in w->z. */
static void tile_grads(const mmi_block_args *a, block_ws *w, mmi_pool *pool, int64_t i0, int64_t j0,
                       int64_t ti, int64_t tj, float c, float *da, int da_acc, float *db,
                       int db_acc)
{
    if (da)
        mmi_gemm(MM_NO_TRANS, MM_NO_TRANS, ti, a->d, tj, c, w->z, tj, a->b + j0 * a->d, a->d,
                 (da_acc || j0 > 0) ? 1.0f : 0.0f, da + i0 * a->d, a->d, w->gemm_ws, pool);
    if (db)
        mmi_gemm(MM_TRANS, MM_NO_TRANS, tj, a->d, ti, c, w->z, tj, a->a + i0 * a->d, a->d,
                 (db_acc || i0 > 0) ? 1.0f : 0.0f, db + j0 * a->d, a->d, w->gemm_ws, pool);
}

void mmi_clip_block_grad(const mmi_block_args *a, const float *lse_r, const float *lse_c, float c,
                         float *da, float *db, void *ws, mmi_pool *pool)
{
    MMI_ASSERT(a && a->nr > 0 && a->nc > 0 && a->d > 0 && a->tile > 0 && a->a && a->b);
    MMI_ASSERT(lse_r && lse_c && ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    block_ws w;
    block_layout(ws, a->nr, a->nc, a->tile, mmi_pool_size(pool), &w);
    for (int64_t i0 = 0; i0 < a->nr; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->nc; j0 += a->tile) {
            tile_job t = {
                ops, a,     &w,   i0, j0, min64(a->tile, a->nr - i0), min64(a->tile, a->nc - j0),
                0,   lse_r, lse_c};
            tile_gemm(a, &w, pool, i0, j0, t.ti, t.tj);
            mmi_pool_run(pool, clip_grad_task, &t, ceil_div(t.ti, ROWS_PER_TASK));
            tile_grads(a, &w, pool, i0, j0, t.ti, t.tj, c, da, 0, db, 0);
        }
    }
}

/* SigLIP rows of the tile: loss terms, then z becomes G (label fix on the positives). */
static void siglip_task(void *ctx, int64_t k, int64_t n)
{
    const tile_job *t = (const tile_job *)ctx;
    double *p = t->w->part + 3 * k, l = 0.0, gs = 0.0, gz = 0.0;
    int64_t r1 = min64((k + 1) * ROWS_PER_TASK, t->ti);
    float bias = t->a->bias;
    (void)n;
    for (int64_t r = k * ROWS_PER_TASK; r < r1; r++) {
        int64_t col = t->a->diag + t->i0 + r - t->j0;
        int pos = t->a->diag >= 0 && col >= 0 && col < t->tj;
        float *zr = t->w->z + r * t->tj;
        float zd = pos ? zr[col] : 0.0f;
        l += t->ops->siglip_row(zr, t->tj, bias, &gs, &gz);
        if (pos) { /* softplus(-v) = softplus(v) - v; gradient sigmoid(v) - 1 */
            l -= (double)zd + (double)bias;
            zr[col] -= 1.0f;
            gs -= 1.0;
            gz -= (double)zd;
        }
    }
    p[0] = l;
    p[1] = gs;
    p[2] = gz;
}

void mmi_siglip_block(const mmi_block_args *a, float c, float *da, int da_acc, float *db,
                      int db_acc, void *ws, mmi_pool *pool, double sums[3])
{
    MMI_ASSERT(a && a->nr > 0 && a->nc > 0 && a->d > 0 && a->tile > 0 && a->a && a->b);
    MMI_ASSERT(sums && ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    block_ws w;
    block_layout(ws, a->nr, a->nc, a->tile, mmi_pool_size(pool), &w);
    for (int64_t i0 = 0; i0 < a->nr; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->nc; j0 += a->tile) {
            tile_job t = {
                ops, a,    &w,  i0, j0, min64(a->tile, a->nr - i0), min64(a->tile, a->nc - j0),
                0,   NULL, NULL};
            int64_t tasks = ceil_div(t.ti, ROWS_PER_TASK);
            tile_gemm(a, &w, pool, i0, j0, t.ti, t.tj);
            mmi_pool_run(pool, siglip_task, &t, tasks);
            for (int64_t k = 0; k < tasks; k++) /* fixed order: deterministic sums */
                for (int q = 0; q < 3; q++) sums[q] += w.part[3 * k + q];
            tile_grads(a, &w, pool, i0, j0, t.ti, t.tj, c, da, da_acc, db, db_acc);
        }
    }
}
