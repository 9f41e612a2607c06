/* SPDX-License-Identifier: MIT */
/* loss_clip_kernel.c — the CLIP symmetric InfoNCE loss, tiled so the B x B logits never exist
 * (docs/LOSSES.md §MM_LOSS_CLIP). Pass 1 visits every tile Z = s X_I Y_J^T once and keeps, per row and per column,
 * an online max m, a sum l = sum exp(z - m) and a weighted sum a = sum exp(z - m) z; that gives
 * both directions' log-sum-exp, the loss and dLoss/dt = sum G z without any gradient GEMM.
 * Pass 2 (only when dx or dy is wanted) recomputes each tile and turns it into
 * G' = P + Q - 2I (P row softmax, Q column softmax), then dX_I += c G' Y_J and
 * dY_J += c G'^T X_I with c = s / (2B). State between passes: 2B floats. The GEMMs run on
 * packed operands (loss_tile_gemm.c): X_I is packed once per row block, in both the forms it
 * takes (rows of Z, and B operand of dY_J), and reused by every column block. */
#include "mmi_loss_kernels.h"

#include <math.h>
#include <string.h>

#define ROWS_PER_TASK 32 /* tile rows per pool task (fixed: results never depend on threads) */
#define COLS_PER_TASK 64 /* tile columns per pool task */

typedef struct clip_ws {
    float *z;          /* tile x tile */
    float *xa, *yb;    /* X_I as op(A) and Y_J^T as op(B) of Z (tile rows by d) */
    float *ga;         /* G' or G'^T as op(A) of the gradient GEMMs (tile x tile) */
    float *xn, *yn;    /* X_I and Y_J as op(B) of dY_J and dX_I (tile by d columns) */
    float *m_r, *m_c;  /* running maxima, then log-sum-exps */
    double *l_r, *l_c; /* running sums of exp(z - m) */
    double *a_r, *a_c; /* running sums of exp(z - m) z */
} clip_ws;

/* Carves ws (or only measures it when base is NULL); returns the byte count, 0 on overflow. */
static size_t clip_layout(void *base, int64_t n, int64_t d, int64_t tile, clip_ws *w)
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
    w->m_r = mmi_carve_take(&y, n, sizeof(float));
    w->m_c = mmi_carve_take(&y, n, sizeof(float));
    w->l_r = mmi_carve_take(&y, n, sizeof(double));
    w->l_c = mmi_carve_take(&y, n, sizeof(double));
    w->a_r = mmi_carve_take(&y, n, sizeof(double));
    w->a_c = mmi_carve_take(&y, n, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_loss_clip_ws_size(int64_t max_n, int64_t max_d, int64_t tile, int32_t n_threads)
{
    clip_ws w;
    (void)n_threads; /* the packed operands are shared by the threads */
    return clip_layout(NULL, max_n, max_d, tile, &w);
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

/* Z = s X_I Y_J^T from the packed X_I (w->xa) after packing Y_J^T. */
static void tile_gemm(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool, const mmi_gemm_ukr *u,
                      const clip_tile *t)
{
    mmi_tg_pack_b(u, MM_TRANS, a->y + t->j0 * a->d, a->d, a->d, t->tj, w->yb, pool);
    mmi_tg_run(u, t->ti, t->tj, a->d, a->scale, w->xa, w->yb, 0.0f, w->z, t->tj, pool);
}

static void tile_size(const mmi_pair_args *a, clip_tile *t)
{
    t->ti = a->n - t->i0 < a->tile ? a->n - t->i0 : a->tile;
    t->tj = a->n - t->j0 < a->tile ? a->n - t->j0 : a->tile;
}

/* Pass 1 over every tile; returns the diagonal sum of z. gemm_only: no statistics. */
static double clip_pass1(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool,
                         const mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u, int gemm_only)
{
    double diag = 0.0;
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        int64_t ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
        mmi_tg_pack_a(u, MM_NO_TRANS, a->x + i0 * a->d, a->d, ti, a->d, w->xa, pool);
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            clip_tile t = {ops, w, i0, j0, 0, 0, j0 == 0, i0 == 0, 0};
            tile_size(a, &t);
            t.n_row_tasks = ceil_div(t.ti, ROWS_PER_TASK);
            tile_gemm(a, w, pool, u, &t);
            if (gemm_only) continue;
            for (int64_t i = i0 > j0 ? i0 : j0; i < i0 + t.ti && i < j0 + t.tj; i++)
                diag += (double)w->z[(i - i0) * t.tj + (i - j0)];
            mmi_pool_run(pool, stats_task, &t, t.n_row_tasks + ceil_div(t.tj, COLS_PER_TASK));
        }
    }
    return diag;
}

/* Pass 2: gradients dX, dY (either may be NULL). */
static void clip_pass2(const mmi_pair_args *a, clip_ws *w, mmi_pool *pool,
                       const mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u, int gemm_only)
{
    float c = (float)((double)a->scale * a->grad_scale / (2.0 * (double)a->n));
    const int64_t d = a->d;
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        int64_t ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
        mmi_tg_pack_a(u, MM_NO_TRANS, a->x + i0 * d, d, ti, d, w->xa, pool);
        if (a->dy) mmi_tg_pack_b(u, MM_NO_TRANS, a->x + i0 * d, d, ti, d, w->xn, pool);
        for (int64_t j0 = 0; j0 < a->n; j0 += a->tile) {
            clip_tile t = {ops, w, i0, j0, 0, 0, 0, 0, 0};
            tile_size(a, &t);
            tile_gemm(a, w, pool, u, &t);
            if (!gemm_only) mmi_pool_run(pool, grad_task, &t, ceil_div(t.ti, ROWS_PER_TASK));
            /* beta 0 on the first visit of a block of dX / dY: no zero-fill pass needed. */
            if (a->dx) {
                mmi_tg_pack_a(u, MM_NO_TRANS, w->z, t.tj, t.ti, t.tj, w->ga, pool);
                mmi_tg_pack_b(u, MM_NO_TRANS, a->y + j0 * d, d, t.tj, d, w->yn, pool);
                mmi_tg_run(u, t.ti, d, t.tj, c, w->ga, w->yn, j0 == 0 ? 0.0f : 1.0f, a->dx + i0 * d,
                           d, pool);
            }
            if (a->dy) {
                mmi_tg_pack_a(u, MM_TRANS, w->z, t.tj, t.tj, t.ti, w->ga, pool);
                mmi_tg_run(u, t.tj, d, t.ti, c, w->ga, w->xn, i0 == 0 ? 0.0f : 1.0f, a->dy + j0 * d,
                           d, pool);
            }
        }
    }
}

static double pair_flops(const mmi_pair_args *a, int gemms)
{
    return 2.0 * gemms * (double)a->n * (double)a->n * (double)a->d;
}

double mmi_loss_clip_gemms(const mmi_pair_args *a, void *ws, mmi_pool *pool)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    clip_ws w;
    clip_layout(ws, a->n, a->d, a->tile, &w);
    clip_pass1(a, &w, pool, NULL, u, 1);
    if (a->dx || a->dy) clip_pass2(a, &w, pool, NULL, u, 1);
    return pair_flops(a, 1 + (a->dx || a->dy) + (a->dx != NULL) + (a->dy != NULL));
}

void mmi_loss_clip_with(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r,
                        const struct mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u)
{
    MMI_ASSERT(a && r && a->n > 0 && a->d > 0 && a->tile > 0 && a->x && a->y);
    MMI_ASSERT(ws && (uintptr_t)ws % MMI_ALIGN == 0);
    clip_ws w;
    double diag, sum_r = 0.0, sum_c = 0.0, wz_r = 0.0, wz_c = 0.0, n = (double)a->n;
    clip_layout(ws, a->n, a->d, a->tile, &w);
    diag = clip_pass1(a, &w, pool, ops, u, 0);
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
    if (a->dx || a->dy) clip_pass2(a, &w, pool, ops, u, 0);
}

void mmi_loss_clip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r)
{
    mmi_loss_clip_with(a, ws, pool, r, mmi_loss_tile_ops_get(),
                       mmi_gemm_ukr_for(mmi_simd_path_get()));
}
