/* SPDX-License-Identifier: MIT */
/* loss_clip_kernel.c — the CLIP symmetric InfoNCE loss, tiled so the B x B logits never exist
 * (docs/LOSSES.md §MM_LOSS_CLIP). Pass 1 visits every tile Z = s X_I Y_J^T once and keeps, per row and per column,
 * an online max m, a sum l = sum exp(z - m) and a weighted sum a = sum exp(z - m) z; that gives
 * both directions' log-sum-exp, the loss and dLoss/dt = sum G z without any gradient GEMM.
 * Pass 2 (only when dx or dy is wanted) recomputes each tile and turns it into
 * G' = P + Q - 2I (P row softmax, Q column softmax), then dX_I += c G' Y_J and
 * dY_J += c G'^T X_I with c = s / (2B). State between passes: 2B floats. */
#include "mmi_loss_kernels.h"

#include <math.h>
#include <string.h>

#define ROWS_PER_TASK 32 /* tile rows per pool task (fixed: results never depend on threads) */
#define COLS_PER_TASK 64 /* tile columns per pool task */

typedef struct clip_ws {
    void *gemm_ws;
    float *z;          /* tile x tile */
    float *m_r, *m_c;  /* running maxima, then log-sum-exps */
    double *l_r, *l_c; /* running sums of exp(z - m) */
    double *a_r, *a_c; /* running sums of exp(z - m) z */
} clip_ws;

/* Carves ws (or only measures it when base is NULL); returns the byte count, 0 on overflow. */
static size_t clip_layout(void *base, int64_t n, int64_t tile, int32_t n_threads, clip_ws *w)
{
    mmi_carve y = base ? mmi_carve_at(base, SIZE_MAX) : mmi_carve_measure();
    int64_t tt;
    if (mmi_mul_i64(&tt, tile, tile)) return 0;
    w->gemm_ws = mmi_carve_take(&y, (int64_t)mmi_gemm_ws_size(n_threads), 1);
    w->z = mmi_carve_take(&y, tt, sizeof(float));
    w->m_r = mmi_carve_take(&y, n, sizeof(float));
    w->m_c = mmi_carve_take(&y, n, sizeof(float));
    w->l_r = mmi_carve_take(&y, n, sizeof(double));
    w->l_c = mmi_carve_take(&y, n, sizeof(double));
    w->a_r = mmi_carve_take(&y, n, sizeof(double));
    w->a_c = mmi_carve_take(&y, n, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_loss_clip_ws_size(int64_t max_n, int64_t tile, int32_t n_threads)
{
    clip_ws w;
    return clip_layout(NULL, max_n, tile, n_threads, &w);
}

/* One tile's work, shared by the pool tasks of both passes. */
typedef struct clip_tile {
    const mmi_loss_tile_ops *ops;
    clip_ws *w;
    int64_t i0, j0, ti, tj; /* tile origin and size */
    int first_col_block;    /* j0 == 0: row statistics start fresh */
    int first_row_block;    /* i0 == 0: column statistics start fresh */
    int64_t n_row_tasks;
} clip_tile;

/* Pass 1, row strip: online update of (m, l, a) for rows of the tile. */
static void stats_rows(const clip_tile *t, int64_t r0, int64_t r1)
{
    clip_ws *w = t->w;
    for (int64_t r = r0; r < r1; r++) {
        const float *zr = w->z + r * t->tj;
        int64_t i = t->i0 + r;
        float mx = t->ops->row_max(zr, t->tj);
        if (t->first_col_block) {
            w->m_r[i] = mx;
            w->l_r[i] = 0.0;
            w->a_r[i] = 0.0;
        } else if (mx > w->m_r[i]) {
            double f = exp((double)w->m_r[i] - (double)mx);
            w->l_r[i] *= f;
            w->a_r[i] *= f;
            w->m_r[i] = mx;
        }
        w->l_r[i] += t->ops->row_expsum(zr, zr, t->tj, w->m_r[i], &w->a_r[i]);
    }
}

/* Pass 1, column strip: the same update for columns c0..c1 of the tile. */
static void stats_cols(const clip_tile *t, int64_t c0, int64_t c1)
{
    clip_ws *w = t->w;
    float mx[COLS_PER_TASK];
    int64_t len = c1 - c0, j0 = t->j0 + c0;
    for (int64_t c = 0; c < len; c++) mx[c] = -INFINITY;
    t->ops->col_max(w->z + c0, t->tj, t->ti, len, mx);
    for (int64_t c = 0; c < len; c++) {
        int64_t j = j0 + c;
        if (t->first_row_block) {
            w->m_c[j] = mx[c];
            w->l_c[j] = 0.0;
            w->a_c[j] = 0.0;
        } else if (mx[c] > w->m_c[j]) {
            double f = exp((double)w->m_c[j] - (double)mx[c]);
            w->l_c[j] *= f;
            w->a_c[j] *= f;
            w->m_c[j] = mx[c];
        }
    }
    t->ops->col_expsum(w->z + c0, t->tj, t->ti, len, w->m_c + j0, w->l_c + j0, w->a_c + j0);
}

static void stats_task(void *ctx, int64_t k, int64_t n)
{
    const clip_tile *t = (const clip_tile *)ctx;
    (void)n;
    if (k < t->n_row_tasks) {
        int64_t r0 = k * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
        stats_rows(t, r0, r1 < t->ti ? r1 : t->ti);
    } else {
        int64_t c0 = (k - t->n_row_tasks) * COLS_PER_TASK, c1 = c0 + COLS_PER_TASK;
        stats_cols(t, c0, c1 < t->tj ? c1 : t->tj);
    }
}

/* Pass 2, row strip: z -> exp(z - lse_row) + exp(z - lse_col), minus 2 on the diagonal. */
static void grad_task(void *ctx, int64_t k, int64_t n)
{
    const clip_tile *t = (const clip_tile *)ctx;
    clip_ws *w = t->w;
    int64_t r0 = k * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    (void)n;
    if (r1 > t->ti) r1 = t->ti;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = t->i0 + r;
        float *zr = w->z + r * t->tj;
        t->ops->clip_grad_row(zr, t->tj, w->m_r[i], w->m_c + t->j0);
        if (i >= t->j0 && i < t->j0 + t->tj) zr[i - t->j0] -= 2.0f;
    }
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void tile_gemm(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool, const clip_tile *t)
{
    mmi_gemm(MM_NO_TRANS, MM_TRANS, t->ti, t->tj, a->d, a->scale, a->x + t->i0 * a->d, a->d,
             a->y + t->j0 * a->d, a->d, 0.0f, w->z, t->tj, w->gemm_ws, pool);
}

/* Pass 1 over every tile; returns the diagonal sum of z. */
static double clip_pass1(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool,
                         const mmi_loss_tile_ops *ops)
{
    double diag = 0.0;
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            clip_tile t = {ops, w, i0, j0, 0, 0, j0 == 0, i0 == 0, 0};
            t.ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
            t.tj = a->n - j0 < a->tile ? a->n - j0 : a->tile;
            t.n_row_tasks = ceil_div(t.ti, ROWS_PER_TASK);
            tile_gemm(a, w, pool, &t);
            for (int64_t i = i0 > j0 ? i0 : j0; i < i0 + t.ti && i < j0 + t.tj; i++)
                diag += (double)w->z[(i - i0) * t.tj + (i - j0)];
            mmi_pool_run(pool, stats_task, &t, t.n_row_tasks + ceil_div(t.tj, COLS_PER_TASK));
        }
    }
    return diag;
}

/* Pass 2: gradients dX, dY (either may be NULL). */
static void clip_pass2(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool,
                       const mmi_loss_tile_ops *ops)
{
    float c = (float)((double)a->scale * a->grad_scale / (2.0 * (double)a->n));
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            clip_tile t = {ops, w, i0, j0, 0, 0, 0, 0, 0};
            t.ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
            t.tj = a->n - j0 < a->tile ? a->n - j0 : a->tile;
            tile_gemm(a, w, pool, &t);
            mmi_pool_run(pool, grad_task, &t, ceil_div(t.ti, ROWS_PER_TASK));
            /* beta 0 on the first visit of a block of dX / dY: no zero-fill pass needed. */
            if (a->dx)
                mmi_gemm(MM_NO_TRANS, MM_NO_TRANS, t.ti, a->d, t.tj, c, w->z, t.tj,
                         a->y + j0 * a->d, a->d, j0 == 0 ? 0.0f : 1.0f, a->dx + i0 * a->d, a->d,
                         w->gemm_ws, pool);
            if (a->dy)
                mmi_gemm(MM_TRANS, MM_NO_TRANS, t.tj, a->d, t.ti, c, w->z, t.tj, a->x + i0 * a->d,
                         a->d, i0 == 0 ? 0.0f : 1.0f, a->dy + j0 * a->d, a->d, w->gemm_ws, pool);
        }
    }
}

void mmi_loss_clip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r)
{
    MMI_ASSERT(a && r && a->n > 0 && a->d > 0 && a->tile > 0 && a->x && a->y);
    MMI_ASSERT(ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    clip_ws w;
    double diag, sum_r = 0.0, sum_c = 0.0, wz_r = 0.0, wz_c = 0.0, n = (double)a->n;
    clip_layout(ws, a->n, a->tile, mmi_pool_size(pool), &w);
    diag = clip_pass1(a, &w, pool, ops);
    /* Turn the running maxima into log-sum-exps (kept in m_r / m_c for pass 2). */
    for (int64_t i = 0; i < a->n; i++) {
        double lr = (double)w.m_r[i] + log(w.l_r[i]), lc = (double)w.m_c[i] + log(w.l_c[i]);
        sum_r += lr;
        sum_c += lc;
        wz_r += w.a_r[i] / w.l_r[i]; /* sum_j P_ij z_ij */
        wz_c += w.a_c[i] / w.l_c[i]; /* sum_i Q_ij z_ij */
        w.m_r[i] = (float)lr;
        w.m_c[i] = (float)lc;
    }
    memset(r, 0, sizeof *r);
    r->loss_rows = (sum_r - diag) / n;
    r->loss_cols = (sum_c - diag) / n;
    r->loss = 0.5 * (r->loss_rows + r->loss_cols);
    /* dLoss/dt = sum_ij G_ij z_ij with G = (P + Q - 2I) / (2B). */
    r->dlog_scale = a->grad_scale * (wz_r + wz_c - 2.0 * diag) / (2.0 * n);
    if (a->dx || a->dy) clip_pass2(a, &w, pool, ops);
}
