/* SPDX-License-Identifier: MIT */
/* loss_itc_kernel.c — one direction of BLIP's image-text contrastive loss with momentum
 * distillation (docs/LOSSES.md §MM_LOSS_ITC), streamed over column tiles so neither the B x (B + Q) similarities
 * nor the soft targets are ever held.
 * Pass 1 keeps per row, for the online sims S and the momentum sims M, an online max and
 * exp-sum, plus the flash-attention style accumulators a = sum exp(S - m_S) S and
 * b = sum exp(M - m_M) S; then loss_i = LSE(S_i) - alpha b_i / l_M - (1 - alpha) S_ii and
 * dLoss/dtemp need nothing more. Pass 2 (when dq is wanted) recomputes both tiles and forms
 * G = softmax(S) - alpha softmax(M) - (1 - alpha) I for dq += G K / (B temp). */
#include "mmi_loss_kernels.h"

#include <math.h>

#define ROWS_PER_TASK 32

typedef struct itc_ws {
    void *gemm_ws;
    float *s, *sm;         /* tile x tile: online and momentum sims */
    float *m_s, *m_m, *dg; /* per row: maxima (then log-sum-exps), S_ii */
    double *l_s, *l_m, *a_s, *b_m;
} itc_ws;

/* Carves ws (or only measures it when base is NULL); returns the byte count, 0 on overflow. */
static size_t itc_layout(void *base, int64_t n, int64_t tile, int32_t n_threads, itc_ws *w)
{
    mmi_carve y = base ? mmi_carve_at(base, SIZE_MAX) : mmi_carve_measure();
    int64_t tt;
    if (mmi_mul_i64(&tt, tile, tile)) return 0;
    w->gemm_ws = mmi_carve_take(&y, (int64_t)mmi_gemm_ws_size(n_threads), 1);
    w->s = mmi_carve_take(&y, tt, sizeof(float));
    w->sm = mmi_carve_take(&y, tt, sizeof(float));
    w->m_s = mmi_carve_take(&y, n, sizeof(float));
    w->m_m = mmi_carve_take(&y, n, sizeof(float));
    w->dg = mmi_carve_take(&y, n, sizeof(float));
    w->l_s = mmi_carve_take(&y, n, sizeof(double));
    w->l_m = mmi_carve_take(&y, n, sizeof(double));
    w->a_s = mmi_carve_take(&y, n, sizeof(double));
    w->b_m = mmi_carve_take(&y, n, sizeof(double));
    return y.overflow ? 0 : y.off;
}

size_t mmi_loss_itc_ws_size(int64_t max_n, int64_t max_q, int64_t tile, int32_t n_threads)
{
    itc_ws w;
    (void)max_q; /* the queue is streamed: it costs no workspace */
    return itc_layout(NULL, max_n, tile, n_threads, &w);
}

typedef struct itc_tile {
    const mmi_loss_tile_ops *ops;
    itc_ws *w;
    int64_t i0, ti, tj;
    int64_t diag_off; /* column index of row i0's positive within the tile, or -1 */
    int first;        /* first column block: statistics start fresh */
    float alpha;
} itc_tile;

/* Online (max, sum, weighted sum) update of one row with tile values z and weights v. */
static void online_row(const mmi_loss_tile_ops *ops, const float *z, const float *v, int64_t len,
                       int first, float *m, double *l, double *acc)
{
    float mx = ops->row_max(z, len);
    if (first) {
        *m = mx;
        *l = 0.0;
        *acc = 0.0;
    } else if (mx > *m) {
        double f = exp((double)*m - (double)mx);
        *l *= f;
        *acc *= f;
        *m = mx;
    }
    *l += ops->row_expsum(z, v, len, *m, acc);
}

static void itc_stats_task(void *ctx, int64_t k, int64_t n)
{
    const itc_tile *t = (const itc_tile *)ctx;
    itc_ws *w = t->w;
    int64_t r0 = k * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    (void)n;
    if (r1 > t->ti) r1 = t->ti;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = t->i0 + r, dcol = t->diag_off < 0 ? -1 : t->diag_off + r;
        const float *s = w->s + r * t->tj, *sm = w->sm + r * t->tj;
        online_row(t->ops, s, s, t->tj, t->first, &w->m_s[i], &w->l_s[i], &w->a_s[i]);
        online_row(t->ops, sm, s, t->tj, t->first, &w->m_m[i], &w->l_m[i], &w->b_m[i]);
        if (dcol >= 0 && dcol < t->tj) w->dg[i] = s[dcol];
    }
}

static void itc_grad_task(void *ctx, int64_t k, int64_t n)
{
    const itc_tile *t = (const itc_tile *)ctx;
    itc_ws *w = t->w;
    int64_t r0 = k * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    (void)n;
    if (r1 > t->ti) r1 = t->ti;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = t->i0 + r, dcol = t->diag_off < 0 ? -1 : t->diag_off + r;
        float *s = w->s + r * t->tj;
        t->ops->itc_grad_row(s, w->sm + r * t->tj, t->tj, w->m_s[i], t->alpha, w->m_m[i]);
        if (dcol >= 0 && dcol < t->tj) s[dcol] -= 1.0f - t->alpha;
    }
}

/* Visits every (row block, column block) tile, computing S and M, then runs task over the
 * tile's row strips and, in pass 2, accumulates dq. */
static void itc_sweep(const mmi_itc_args *a, itc_ws *w, mmi_pool *pool,
                      const mmi_loss_tile_ops *ops, int pass)
{
    float inv_t = 1.0f / a->temp;
    float c = (float)(a->grad_scale / ((double)a->n * (double)a->temp));
    for (int64_t i0 = 0; i0 < a->n; i0 += a->tile) {
        int64_t ti = a->n - i0 < a->tile ? a->n - i0 : a->tile;
        int64_t n_tasks = (ti + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
        for (int seg = 0; seg < 2; seg++) {
            const float *kbase = seg == 0 ? a->kb : a->kq;
            int64_t ncols = seg == 0 ? a->n : a->nq;
            for (int64_t j0 = 0; j0 < ncols; j0 += a->tile) {
                itc_tile t = {ops, w, i0, ti, 0, -1, seg == 0 && j0 == 0, a->alpha};
                const float *kj = kbase + j0 * a->d;
                t.tj = ncols - j0 < a->tile ? ncols - j0 : a->tile;
                if (seg == 0) t.diag_off = i0 - j0; /* row i0 + r is positive at column i0 + r */
                mmi_gemm(MM_NO_TRANS, MM_TRANS, ti, t.tj, a->d, inv_t, a->q + i0 * a->d, a->d, kj,
                         a->d, 0.0f, w->s, t.tj, w->gemm_ws, pool);
                mmi_gemm(MM_NO_TRANS, MM_TRANS, ti, t.tj, a->d, inv_t, a->qm + i0 * a->d, a->d, kj,
                         a->d, 0.0f, w->sm, t.tj, w->gemm_ws, pool);
                if (pass == 1) {
                    mmi_pool_run(pool, itc_stats_task, &t, n_tasks);
                    continue;
                }
                mmi_pool_run(pool, itc_grad_task, &t, n_tasks);
                mmi_gemm(MM_NO_TRANS, MM_NO_TRANS, ti, a->d, t.tj, c, w->s, t.tj, kj, a->d,
                         t.first ? 0.0f : 1.0f, a->dq + i0 * a->d, a->d, w->gemm_ws, pool);
            }
        }
    }
}

void mmi_loss_itc_dir(const mmi_itc_args *a, void *ws, mmi_pool *pool, double *loss, double *dtemp)
{
    MMI_ASSERT(a && loss && dtemp && a->n > 0 && a->nq >= 0 && a->d > 0 && a->tile > 0);
    MMI_ASSERT(a->q && a->qm && a->kb && (a->nq == 0 || a->kq));
    MMI_ASSERT(ws && (uintptr_t)ws % MMI_ALIGN == 0);
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    itc_ws w;
    double sum_l = 0.0, sum_u = 0.0, al = (double)a->alpha;
    itc_layout(ws, a->n, a->tile, mmi_pool_size(pool), &w);
    itc_sweep(a, &w, pool, ops, 1);
    for (int64_t i = 0; i < a->n; i++) {
        double lse_s = (double)w.m_s[i] + log(w.l_s[i]);
        double lse_m = (double)w.m_m[i] + log(w.l_m[i]);
        double tgt = al * w.b_m[i] / w.l_m[i] + (1.0 - al) * (double)w.dg[i]; /* sum_j T_ij S_ij */
        sum_l += lse_s - tgt;
        sum_u += w.a_s[i] / w.l_s[i] - tgt; /* sum_j (P_ij - T_ij) S_ij */
        w.m_s[i] = (float)lse_s;
        w.m_m[i] = (float)lse_m;
    }
    *loss = sum_l / (double)a->n;
    /* S = raw / temp, dS/dtemp = -S / temp; the targets are constants (BLIP: no_grad). */
    *dtemp = -a->grad_scale * sum_u / ((double)a->n * (double)a->temp);
    if (a->dq) itc_sweep(a, &w, pool, ops, 2);
}
