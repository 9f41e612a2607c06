/* SPDX-License-Identifier: MIT */
/* loss_siglip_kernel.c — the SigLIP pairwise sigmoid loss, forward and backward fused in one
 * tiled pass (docs/LOSSES.md §MM_LOSS_SIGLIP). Its logit gradient G = (sigmoid(z) - I) / B depends on z alone, so
 * each tile Z = s X_I Y_J^T + b is turned into G right after its loss terms are summed, and
 * used at once: dX_I += (s/B) G Y_J, dY_J += (s/B) G^T X_I. Nothing is kept between tiles but
 * float64 sums; memory is one tile. Uses softplus(-z) = softplus(z) - z, so the labels only
 * touch the diagonal. */
#include "mmi_loss_kernels.h"

#include <string.h>

#define ROWS_PER_TASK 32 /* tile rows per pool task (fixed: results never depend on threads) */

typedef struct siglip_ws {
    void *gemm_ws;
    float *z;     /* tile x tile */
    double *part; /* 3 sums per row task: softplus, g, g * (z - b) */
} siglip_ws;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Carves ws (or only measures it when base is NULL); returns the byte count, 0 on overflow. */
static size_t siglip_layout(void *base, int64_t tile, int32_t n_threads, siglip_ws *w)
{
    mmi_carve y = base ? mmi_carve_at(base, SIZE_MAX) : mmi_carve_measure();
    int64_t tt;
    if (mmi_mul_i64(&tt, tile, tile)) return 0;
    w->gemm_ws = mmi_carve_take(&y, (int64_t)mmi_gemm_ws_size(n_threads), 1);
    w->z = mmi_carve_take(&y, tt, sizeof(float));
    w->part = mmi_carve_take(&y, ceil_div(tile, ROWS_PER_TASK) * 3, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_loss_siglip_ws_size(int64_t max_n, int64_t tile, int32_t n_threads)
{
    siglip_ws w;
    (void)max_n; /* O(tile^2): the batch size does not matter */
    return siglip_layout(NULL, tile, n_threads, &w);
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

void mmi_loss_siglip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r)
{
    MMI_ASSERT(a && r && a->n > 0 && a->d > 0 && a->tile > 0 && a->x && a->y);
    MMI_ASSERT(ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    siglip_ws w;
    double loss = 0.0, gsum = 0.0, gzsum = 0.0, n = (double)a->n;
    float c = (float)((double)a->scale * a->grad_scale / n);
    siglip_layout(ws, a->tile, mmi_pool_size(pool), &w);
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            siglip_tile t = {ops, &w, i0, j0, 0, 0, a->bias};
            int64_t tasks;
            t.ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
            t.tj = a->n - j0 < a->tile ? a->n - j0 : a->tile;
            tasks = ceil_div(t.ti, ROWS_PER_TASK);
            mmi_gemm(MM_NO_TRANS, MM_TRANS, t.ti, t.tj, a->d, a->scale, a->x + i0 * a->d, a->d,
                     a->y + j0 * a->d, a->d, 0.0f, w.z, t.tj, w.gemm_ws, pool);
            mmi_pool_run(pool, siglip_task, &t, tasks);
            for (int64_t k = 0; k < tasks; k++) { /* fixed order: deterministic sums */
                loss += w.part[3 * k];
                gsum += w.part[3 * k + 1];
                gzsum += w.part[3 * k + 2];
            }
            if (a->dx)
                mmi_gemm(MM_NO_TRANS, MM_NO_TRANS, t.ti, a->d, t.tj, c, w.z, t.tj, a->y + j0 * a->d,
                         a->d, j0 == 0 ? 0.0f : 1.0f, a->dx + i0 * a->d, a->d, w.gemm_ws, pool);
            if (a->dy)
                mmi_gemm(MM_TRANS, MM_NO_TRANS, t.tj, a->d, t.ti, c, w.z, t.tj, a->x + i0 * a->d,
                         a->d, i0 == 0 ? 0.0f : 1.0f, a->dy + j0 * a->d, a->d, w.gemm_ws, pool);
        }
    }
    memset(r, 0, sizeof *r);
    r->loss = loss / n;
    r->dlog_scale = a->grad_scale * gzsum / n; /* sum G (z - b), z - b = s x.y */
    r->dbias = a->grad_scale * gsum / n;
}
