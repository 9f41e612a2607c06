/* SPDX-License-Identifier: MIT */
/* loss_siglip_kernel.c — the SigLIP pairwise sigmoid loss, forward and backward fused in one
 * tiled pass (docs/LOSSES.md §MM_LOSS_SIGLIP). Its logit gradient G = (sigmoid(z) - I) / B depends on z alone, so
 * each tile Z = s X_I Y_J^T + b is turned into G right after its loss terms are summed, and
 * used at once: dX_I += (s/B) G Y_J, dY_J += (s/B) G^T X_I. Nothing is kept between tiles but
 * float64 sums; memory is one tile. Uses softplus(-z) = softplus(z) - z, so the labels only
 * touch the diagonal. The GEMMs run on packed operands (loss_tile_gemm.c): X_I is packed once
 * per row block, in both forms it takes, and reused by every column block. */
#include "mmi_loss_kernels.h"

#include <string.h>

#define ROWS_PER_TASK 32 /* tile rows per pool task (fixed: results never depend on threads) */

typedef struct siglip_ws {
    float *z;       /* tile x tile */
    float *xa, *yb; /* X_I as op(A) and Y_J^T as op(B) of Z */
    float *ga;      /* G or G^T as op(A) of the gradient GEMMs */
    float *xn, *yn; /* X_I and Y_J as op(B) of dY_J and dX_I */
    double *part;   /* 3 sums per row task: softplus, g, g * (z - b) */
} siglip_ws;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Carves ws (or only measures it when base is NULL); returns the byte count, 0 on overflow. */
static size_t siglip_layout(void *base, int64_t d, int64_t tile, siglip_ws *w)
{
    mmi_carve y = base ? mmi_carve_at(base, SIZE_MAX) : mmi_carve_measure();
    int64_t tt, td, gg, dt;
    if (mmi_mul_i64(&tt, tile, tile) || mmi_mul_i64(&td, mmi_tg_pad(tile), d) ||
        mmi_mul_i64(&gg, mmi_tg_pad(tile), tile) || mmi_mul_i64(&dt, mmi_tg_pad(d), tile))
        return 0;
    w->z = mmi_carve_take(&y, tt, sizeof(float));
    w->xa = mmi_carve_take(&y, td, sizeof(float));
    w->yb = mmi_carve_take(&y, td, sizeof(float));
    w->ga = mmi_carve_take(&y, gg, sizeof(float));
    w->xn = mmi_carve_take(&y, dt, sizeof(float));
    w->yn = mmi_carve_take(&y, dt, sizeof(float));
    w->part = mmi_carve_take(&y, ceil_div(tile, ROWS_PER_TASK) * 3, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_loss_siglip_ws_size(int64_t max_n, int64_t max_d, int64_t tile, int32_t n_threads)
{
    siglip_ws w;
    (void)max_n; /* O(tile^2 + tile d): the batch size does not matter */
    (void)n_threads;
    return siglip_layout(NULL, max_d, tile, &w);
}

typedef struct siglip_tile {
    const mmi_loss_tile_ops *ops;
    siglip_ws *w;
    int64_t i0, j0, ti, tj;
    float bias;
} siglip_tile;

/* Row strip: loss terms and G for rows of the tile; the diagonal gets its label fix. */
static void siglip_task(void *ctx, int64_t k, int64_t n)
{
    const siglip_tile *t = (const siglip_tile *)ctx;
    double *p = t->w->part + 3 * k, l = 0.0, gs = 0.0, gz = 0.0;
    int64_t r0 = k * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    (void)n;
    if (r1 > t->ti) r1 = t->ti;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = t->i0 + r;
        float *zr = t->w->z + r * t->tj;
        int on_diag = i >= t->j0 && i < t->j0 + t->tj;
        float zd = on_diag ? zr[i - t->j0] : 0.0f; /* s x_i.y_i before it becomes g */
        l += t->ops->siglip_row(zr, t->tj, t->bias, &gs, &gz);
        if (on_diag) {
            /* positive pair: softplus(-v) = softplus(v) - v, gradient sigmoid(v) - 1 */
            l -= (double)zd + (double)t->bias;
            zr[i - t->j0] -= 1.0f;
            gs -= 1.0;
            gz -= (double)zd;
        }
    }
    p[0] = l;
    p[1] = gs;
    p[2] = gz;
}

/* The tiled pass; gemm_only: the GEMMs alone (mmi_loss_siglip_gemms). */
static void siglip_run(const mmi_pair_args *a, void *ws, mmi_pool *pool, int gemm_only,
                       const mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u, double sums[3])
{
    const int64_t d = a->d;
    siglip_ws w;
    float c = (float)((double)a->scale * a->grad_scale / (double)a->n);
    siglip_layout(ws, d, a->tile, &w);
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        int64_t ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
        mmi_tg_pack_a(u, MM_NO_TRANS, a->x + i0 * d, d, ti, d, w.xa, pool);
        if (a->dy) mmi_tg_pack_b(u, MM_NO_TRANS, a->x + i0 * d, d, ti, d, w.xn, pool);
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            siglip_tile t = {ops, &w, i0, j0, ti, 0, a->bias};
            int64_t tasks = ceil_div(ti, ROWS_PER_TASK);
            t.tj = a->n - j0 < a->tile ? a->n - j0 : a->tile;
            mmi_tg_pack_b(u, MM_TRANS, a->y + j0 * d, d, d, t.tj, w.yb, pool);
            mmi_tg_run(u, ti, t.tj, d, a->scale, w.xa, w.yb, 0.0f, w.z, t.tj, pool);
            if (!gemm_only) {
                mmi_pool_run(pool, siglip_task, &t, tasks);
                for (int64_t k = 0; k < tasks; k++) { /* fixed order: deterministic sums */
                    sums[0] += w.part[3 * k];
                    sums[1] += w.part[3 * k + 1];
                    sums[2] += w.part[3 * k + 2];
                }
            }
            /* beta 0 on the first visit of a block of dX / dY: no zero-fill pass needed. */
            if (a->dx) {
                mmi_tg_pack_a(u, MM_NO_TRANS, w.z, t.tj, ti, t.tj, w.ga, pool);
                mmi_tg_pack_b(u, MM_NO_TRANS, a->y + j0 * d, d, t.tj, d, w.yn, pool);
                mmi_tg_run(u, ti, d, t.tj, c, w.ga, w.yn, j0 == 0 ? 0.0f : 1.0f, a->dx + i0 * d, d,
                           pool);
            }
            if (a->dy) {
                mmi_tg_pack_a(u, MM_TRANS, w.z, t.tj, t.tj, ti, w.ga, pool);
                mmi_tg_run(u, t.tj, d, ti, c, w.ga, w.xn, i0 == 0 ? 0.0f : 1.0f, a->dy + j0 * d, d,
                           pool);
            }
        }
    }
}

double mmi_loss_siglip_gemms(const mmi_pair_args *a, void *ws, mmi_pool *pool)
{
    double sums[3] = {0.0, 0.0, 0.0};
    siglip_run(a, ws, pool, 1, NULL, mmi_gemm_ukr_for(mmi_simd_path_get()), sums);
    return 2.0 * (1 + (a->dx != NULL) + (a->dy != NULL)) * (double)a->n * (double)a->n *
           (double)a->d;
}

void mmi_loss_siglip_with(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r,
                          const struct mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u)
{
    MMI_ASSERT(a && r && a->n > 0 && a->d > 0 && a->tile > 0 && a->x && a->y);
    MMI_ASSERT(ws && (uintptr_t)ws % MMI_ALIGN == 0);
    double sums[3] = {0.0, 0.0, 0.0}, n = (double)a->n; /* softplus, g, g (z - b) */
    siglip_run(a, ws, pool, 0, ops, u, sums);
    memset(r, 0, sizeof *r);
    r->loss = sums[0] / n;
    r->dlog_scale = a->grad_scale * sums[2] / n; /* sum G (z - b), z - b = s x.y */
    r->dbias = a->grad_scale * sums[1] / n;
}

void mmi_loss_siglip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r)
{
    mmi_loss_siglip_with(a, ws, pool, r, mmi_loss_tile_ops_get(),
                         mmi_gemm_ukr_for(mmi_simd_path_get()));
}
