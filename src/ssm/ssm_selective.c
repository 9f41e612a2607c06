/* SPDX-License-Identifier: MIT */
/* ssm_selective.c — MM_SSM_SELECTIVE: validates selective_scan_ref's inputs, lays variable
 * B/C out time-major once per call, and runs the row kernels (src/kernels/ssm/selective_scan.c)
 * over (batch, channel) rows, split across the pool. The backward gives each task a range of
 * channels, so per-channel sums (dA, dD, dbias, constant dB/dC) need no reduction; variable
 * dB/dC are summed over the channels of a group in per-task float64 buffers, reduced at the
 * end in task order (deterministic for a fixed thread count). */
#include "mmi_ssm.h"

#include <math.h>
#include <string.h>

enum { BC_CONST = 0, BC_VAR = 1 };

typedef struct sel_call {
    mm_ssm *h;
    const mm_ssm_inputs *in;
    int64_t Bt, L, Gb, Gc; /* groups of B and C (1 when constant or variable) */
    int32_t b_mode, c_mode;
    float *out, *last;
    const float *dout;
    const mm_ssm_grads *g;
} sel_call;

/* Checks B or C: [D,N], [Bt,N,L] or [Bt,G,N,L]; sets mode and group count. */
static int check_bc(mm_ssm *h, const char *fn, const char *name, const mm_tensor *t, int64_t Bt,
                    int64_t L, int32_t *mode, int64_t *groups)
{
    int64_t s2[2] = {h->D, h->N}, s3[3] = {Bt, h->N, L}, s4[4] = {Bt, 0, h->N, L};
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    *groups = 1;
    if (t->ndim == 2) {
        *mode = BC_CONST;
        return mmi_ssm_want(h, fn, name, t, 2, s2);
    }
    *mode = BC_VAR;
    if (t->ndim == 3) return mmi_ssm_want(h, fn, name, t, 3, s3);
    s4[1] = t->ndim == 4 ? t->shape[1] : 1;
    if (t->ndim == 4 && (s4[1] < 1 || s4[1] > h->G || h->D % s4[1]))
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: %s has %lld groups; expected a divisor of D = "
                        "%lld up to n_groups = %lld",
                        fn, name, (long long)s4[1], (long long)h->D, (long long)h->G);
    *groups = s4[1];
    return mmi_ssm_want(h, fn, name, t, 4, s4);
}

static int check_inputs(sel_call *c, const char *fn, const mm_tensor *out, const mm_tensor *last)
{
    mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    int64_t s3[3], sd[1] = {h->D}, sa[2] = {h->D, h->N}, sl[3];
    int rc;
    if (!in->u) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: u is NULL", fn);
    if (in->u->ndim != 3 || in->u->shape[1] != h->D) {
        s3[0] = in->u->ndim == 3 ? in->u->shape[0] : 1;
        s3[1] = h->D;
        s3[2] = in->u->ndim == 3 ? in->u->shape[2] : 1;
        return mmi_ssm_want(h, fn, "u", in->u, 3, s3);
    }
    c->Bt = in->u->shape[0];
    c->L = in->u->shape[2];
    memcpy(s3, in->u->shape, sizeof s3);
    sl[0] = c->Bt, sl[1] = h->D, sl[2] = h->N;
    if ((rc = mmi_ssm_check_bl(h, fn, c->Bt, c->L)) ||
        (rc = mmi_ssm_want(h, fn, "delta", in->delta, 3, s3)) ||
        (rc = mmi_ssm_want(h, fn, "A", in->A, 2, sa)) ||
        (rc = check_bc(h, fn, "B", in->B, c->Bt, c->L, &c->b_mode, &c->Gb)) ||
        (rc = check_bc(h, fn, "C", in->C, c->Bt, c->L, &c->c_mode, &c->Gc)) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, sd))) ||
        (in->z && (rc = mmi_ssm_want(h, fn, "z", in->z, 3, s3))) ||
        (in->delta_bias && (rc = mmi_ssm_want(h, fn, "delta_bias", in->delta_bias, 1, sd))) ||
        (out && (rc = mmi_ssm_want(h, fn, "out", out, 3, s3))) ||
        (last && (rc = mmi_ssm_want(h, fn, "last_state", last, 3, sl))) ||
        (rc = mmi_ssm_only_inputs(h, fn, in, "u delta A B C D z delta_bias")))
        return rc;
    return MM_OK;
}

/* Copies variable B or C [Bt,G,N,L] to time-major [Bt,G,L,N]. */
static void transpose_bc(const float *src, float *dst, int64_t Bt, int64_t G, int64_t N, int64_t L)
{
    for (int64_t bg = 0; bg < Bt * G; bg++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t t = 0; t < L; t++) dst[(bg * L + t) * N + n] = src[(bg * N + n) * L + t];
}

/* Per-thread scratch: the row state x (N), the backward's chunk buffers (2 chunk N), then the
 * row's element-wise precomputations dlt, dsp, gz, sz (max_seq each), the step's 3 max_batch D,
 * and for the forward's blocks of up to MMI_SEL_BLOCK_MAX rows their states (N each) and dlt, gz
 * and a copy of u (one row each, BLK_STRIDE apart: rows 4 KiB apart would share one L1 set when
 * the block reads them side by side), and the backward's block scratch
 * (MMI_SEL_BWD_BLOCK_WORK: the chunk's states and exponentials for BLK channels and 8 lane-major
 * step buffers; the block backward puts its rows' dlt, dsp and sz in the forward's dlt, gz and
 * u rows). ssm_plan.c reserves (2 chunk + 1 + BLK) N + (4 + 3 BLK) max_seq + 48 BLK + 3
 * max_batch D + MMI_SEL_BWD_BLOCK_WORK(chunk, N) floats. */
#define BLK_STRIDE(h) ((h)->max_seq + 16)
typedef struct row_ws {
    float *x, *chunk, *dlt, *dsp, *gz, *sz, *bx, *bdlt, *bgz, *bu, *bwork;
} row_ws;

static row_ws thread_ws(const mm_ssm *h, int64_t i)
{
    row_ws w;
    w.x = h->ws.work + (size_t)i * h->ws.work_per_thread;
    w.chunk = w.x + h->N;
    w.dlt = w.chunk + 2 * h->chunk * h->N;
    w.dsp = w.dlt + h->max_seq;
    w.gz = w.dsp + h->max_seq;
    w.sz = w.gz + h->max_seq;
    w.bx = w.sz + h->max_seq + 3 * h->max_batch * h->D;
    w.bdlt = w.bx + MMI_SEL_BLOCK_MAX * h->N;
    w.bgz = w.bdlt + MMI_SEL_BLOCK_MAX * BLK_STRIDE(h);
    w.bu = w.bgz + MMI_SEL_BLOCK_MAX * BLK_STRIDE(h);
    w.bwork = w.bu + MMI_SEL_BLOCK_MAX * BLK_STRIDE(h);
    return w;
}

/* Fills the row description of (b, d) and its element-wise precomputation (bwd: derivatives
 * too); x is the row's final state. */
static void row_of(const sel_call *c, int64_t b, int64_t d, const row_ws *w, int bwd,
                   mmi_sel_row *r)
{
    const mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    int64_t L = c->L, N = h->N, off = (b * h->D + d) * L;
    const float *z = in->z ? in->z->data + off : NULL;
    memset(r, 0, sizeof *r);
    r->L = L, r->N = N, r->chunk = h->chunk;
    r->u = in->u->data + off;
    mmi_ssm_sel_prep(L, in->delta->data + off, in->delta_bias ? in->delta_bias->data[d] : 0.0f,
                     (h->opts.flags & MM_SSM_DELTA_SOFTPLUS) != 0, z, w->dlt, bwd ? w->dsp : NULL,
                     bwd ? NULL : w->gz, bwd ? w->sz : NULL);
    r->dlt = w->dlt;
    r->dsp = w->dsp;
    r->z = z;
    r->gz = z && !bwd ? w->gz : NULL;
    r->sz = z && bwd ? w->sz : NULL;
    r->A = in->A->data + d * N;
    r->b_var = c->b_mode == BC_VAR, r->c_var = c->c_mode == BC_VAR;
    r->B = r->b_var ? h->ws.bt + ((b * c->Gb + d / (h->D / c->Gb)) * L) * N : in->B->data + d * N;
    r->C = r->c_var ? h->ws.ct + ((b * c->Gc + d / (h->D / c->Gc)) * L) * N : in->C->data + d * N;
    r->has_d = in->D != NULL;
    r->dskip = in->D ? in->D->data[d] : 0.0f;
    r->out = c->out ? c->out + off : NULL;
    r->x = w->x;
    r->ckpt = h->ws.ckpt + (b * h->D + d) * h->nck_max * N;
}

/* Rows [row, hi) that can go in one block with row: same batch row, same B and C group, at most
 * w (the path's block width). */
static int64_t block_len(const sel_call *c, int64_t row, int64_t hi, int64_t w)
{
    const int64_t D = c->h->D, sb = D / c->Gb, sc = D / c->Gc, d = row % D;
    int64_t end = row - d + D; /* the batch row's end */
    if (row - d + (d / sb + 1) * sb < end) end = row - d + (d / sb + 1) * sb;
    if (row - d + (d / sc + 1) * sc < end) end = row - d + (d / sc + 1) * sc;
    if (row + w < end) end = row + w;
    return (end < hi ? end : hi) - row;
}

/* Rows [lo, hi) in blocks of channels (mmi_ssm_sel_fwd_block); 0 when the shape has no block
 * body (then nothing was written). */
static int fwd_blocks(const sel_call *c, const row_ws *w, int64_t lo, int64_t hi)
{
    const mm_ssm *h = c->h;
    const int64_t bw = mmi_ssm_sel_block_rows();
    mmi_sel_row r[MMI_SEL_BLOCK_MAX];
    if (bw < 1 || bw > MMI_SEL_BLOCK_MAX) return 0;
    for (int64_t row = lo; row < hi;) {
        int64_t nr = block_len(c, row, hi, bw);
        for (int64_t j = 0; j < nr; j++) {
            row_ws wj = *w;
            wj.x = w->bx + j * h->N;
            wj.dlt = w->bdlt + j * BLK_STRIDE(h);
            wj.gz = w->bgz + j * BLK_STRIDE(h);
            row_of(c, (row + j) / h->D, (row + j) % h->D, &wj, 0, &r[j]);
            /* u too: rows L floats apart (4 KiB at L = 1024) alias in L1 when read side by side */
            memcpy(w->bu + j * BLK_STRIDE(h), r[j].u, (size_t)c->L * sizeof(float));
            r[j].u = w->bu + j * BLK_STRIDE(h);
        }
        if (!mmi_ssm_sel_fwd_block(r, nr)) return 0;
        if (c->last)
            for (int64_t j = 0; j < nr; j++)
                memcpy(c->last + (row + j) * h->N, r[j].x, (size_t)h->N * sizeof(float));
        row += nr;
    }
    return 1;
}

static void fwd_task(void *ctx, int64_t i, int64_t n)
{
    const sel_call *c = (const sel_call *)ctx;
    const mm_ssm *h = c->h;
    int64_t rows = c->Bt * h->D, lo = rows * i / n, hi = rows * (i + 1) / n;
    row_ws w = thread_ws(h, i);
    mmi_sel_row r;
    if (lo < hi && fwd_blocks(c, &w, lo, hi)) return;
    for (int64_t row = lo; row < hi; row++) {
        row_of(c, row / h->D, row % h->D, &w, 0, &r);
        mmi_ssm_sel_fwd(&r);
        if (c->last) memcpy(c->last + row * h->N, w.x, (size_t)h->N * sizeof(float));
    }
}

static void prepare_bc(sel_call *c)
{
    mm_ssm *h = c->h;
    if (c->b_mode == BC_VAR) transpose_bc(c->in->B->data, h->ws.bt, c->Bt, c->Gb, h->N, c->L);
    if (c->c_mode == BC_VAR) transpose_bc(c->in->C->data, h->ws.ct, c->Bt, c->Gc, h->N, c->L);
}

int mmi_ssm_sel_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last)
{
    MMI_ASSERT(h->kind == MM_SSM_SELECTIVE); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_scan";
    sel_call c;
    int rc;
    memset(&c, 0, sizeof c);
    c.h = h, c.in = in;
    if ((rc = check_inputs(&c, fn, out, last)) != MM_OK) return rc;
    c.out = out->data;
    c.last = last ? last->data : NULL;
    prepare_bc(&c);
    mmi_pool_run(h->pool, fwd_task, &c, mmi_pool_size(h->pool));
    h->fwd_batch = c.Bt, h->fwd_len = c.L, h->fwd_b_mode = c.b_mode, h->fwd_c_mode = c.c_mode;
    return MM_OK;
}

static int check_grads(sel_call *c, const char *fn, const mm_tensor *dout)
{
    mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    const mm_ssm_grads *g = c->g;
    int rc;
    if ((rc = check_inputs(c, fn, NULL, NULL)) != MM_OK) return rc;
    if (c->Bt != h->fwd_batch || c->L != h->fwd_len || c->b_mode != h->fwd_b_mode ||
        c->c_mode != h->fwd_c_mode)
        return mmi_fail(&h->err, MM_E_STATE,
                        "%s: inputs differ from the last mm_ssm_scan "
                        "(batch %lld, length %lld)",
                        fn, (long long)h->fwd_batch, (long long)h->fwd_len);
    if ((rc = mmi_ssm_want(h, fn, "dout", dout, 3, in->u->shape)) ||
        (rc = mmi_ssm_grad_like(h, fn, "du", g->du, in->u)) ||
        (rc = mmi_ssm_grad_like(h, fn, "ddelta", g->ddelta, in->delta)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dA", g->dA, in->A)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dB", g->dB, in->B)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dC", g->dC, in->C)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dD", g->dD, in->D)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dz", g->dz, in->z)) ||
        (rc = mmi_ssm_grad_like(h, fn, "ddelta_bias", g->ddelta_bias, in->delta_bias)) ||
        (rc = mmi_ssm_only_grads(h, fn, g, "u delta A B C D z delta_bias")))
        return rc;
    return MM_OK;
}

/* Per-channel accumulators: dA [N], constant dB [N], constant dC [N], dD, dbias. */
static double *chan_acc(const mm_ssm *h, int64_t d) { return h->ws.dacc + d * (3 * h->N + 2); }

/* The row gradients of (b, d): outputs at their places, sums into the channel's accumulators
 * and (variable B, C) the task's dbt, dct. */
static void grad_of(const sel_call *c, int64_t b, int64_t d, double *dbt, double *dct,
                    const mmi_sel_row *r, float *work, mmi_sel_grad *gr)
{
    const mm_ssm *h = c->h;
    const mm_ssm_grads *g = c->g;
    const int64_t N = h->N, L = c->L, off = (b * h->D + d) * L;
    double *acc = chan_acc(h, d);
    memset(gr, 0, sizeof *gr);
    gr->dout = c->dout + off;
    gr->du = g->du ? g->du->data + off : NULL;
    gr->ddelta = g->ddelta ? g->ddelta->data + off : NULL;
    gr->dz = g->dz ? g->dz->data + off : NULL;
    gr->dA = acc;
    gr->dB = r->b_var ? dbt + ((b * c->Gb + d / (h->D / c->Gb)) * L) * N : acc + N;
    gr->dC = r->c_var ? dct + ((b * c->Gc + d / (h->D / c->Gc)) * L) * N : acc + 2 * N;
    gr->dD = acc + 3 * N;
    gr->dbias = acc + 3 * N + 1;
    gr->work = work;
}

/* The channel blocks of the backward: starting at channel 0, each of up to the path's block
 * width within one B and C group (block_len on batch row 0). Task i of n takes blocks
 * [nb i / n, nb (i + 1) / n), so the blocks, and the order in which a block sums its rows'
 * shares of dB and dC, do not depend on the thread count. Returns 0 (nothing written) when
 * the path or shape has no block body. */
static int bwd_blocks(const sel_call *c, const row_ws *w, double *dbt, double *dct, int64_t i,
                      int64_t n)
{
    const mm_ssm *h = c->h;
    const int64_t D = h->D, bw = mmi_ssm_sel_block_rows();
    int64_t nb = 0, blo, bhi, k = 0;
    mmi_sel_row r[MMI_SEL_BLOCK_MAX];
    mmi_sel_grad gr[MMI_SEL_BLOCK_MAX];
    memset(r, 0, sizeof r[0]); /* the shape query (nr = 0): every task decides alike */
    r[0].L = c->L, r[0].N = h->N, r[0].chunk = h->chunk;
    r[0].b_var = c->b_mode == BC_VAR, r[0].c_var = c->c_mode == BC_VAR;
    if (bw < 1 || bw > MMI_SEL_BLOCK_MAX || !mmi_ssm_sel_bwd_block(r, NULL, 0)) return 0;
    for (int64_t d = 0; d < D; d += block_len(c, d, D, bw)) nb++;
    blo = nb * i / n, bhi = nb * (i + 1) / n;
    for (int64_t d = 0; d < D && k < bhi; k++) {
        const int64_t nr = block_len(c, d, D, bw);
        if (k >= blo) {
            for (int64_t j = 0; j < nr; j++)
                memset(chan_acc(h, d + j), 0, (size_t)(3 * h->N + 2) * sizeof(double));
            for (int64_t b = 0; b < c->Bt; b++) {
                for (int64_t j = 0; j < nr; j++) {
                    row_ws wj = *w;
                    wj.dlt = w->bdlt + j * BLK_STRIDE(h);
                    wj.dsp = w->bgz + j * BLK_STRIDE(h);
                    wj.sz = w->bu + j * BLK_STRIDE(h);
                    row_of(c, b, d + j, &wj, 1, &r[j]);
                    grad_of(c, b, d + j, dbt, dct, &r[j], w->bwork, &gr[j]);
                }
                (void)mmi_ssm_sel_bwd_block(r, gr, nr); /* takes the shape: see the query */
            }
        }
        d += nr;
    }
    return 1;
}

static void bwd_task(void *ctx, int64_t i, int64_t n)
{
    const sel_call *c = (const sel_call *)ctx;
    const mm_ssm *h = c->h;
    int64_t N = h->N, L = c->L, lo = h->D * i / n, hi = h->D * (i + 1) / n;
    row_ws w = thread_ws(h, i);
    double *dbt = h->ws.dbt + (size_t)i * (size_t)(c->Bt * c->Gb * L * N);
    double *dct = h->ws.dct + (size_t)i * (size_t)(c->Bt * c->Gc * L * N);
    mmi_sel_row r;
    mmi_sel_grad gr;
    if (bwd_blocks(c, &w, dbt, dct, i, n)) return;
    for (int64_t d = lo; d < hi; d++) {
        memset(chan_acc(h, d), 0, (size_t)(3 * N + 2) * sizeof(double));
        for (int64_t b = 0; b < c->Bt; b++) {
            row_of(c, b, d, &w, 1, &r);
            grad_of(c, b, d, dbt, dct, &r, w.chunk, &gr);
            mmi_ssm_sel_bwd(&r, &gr);
        }
    }
}

/* Sums the per-task [Bt,G,L,N] buffers and writes mamba's [Bt,G,N,L] layout. */
static void write_var_grad(const double *acc, int64_t tasks, int64_t Bt, int64_t G, int64_t L,
                           int64_t N, float *dst)
{
    size_t slice = (size_t)(Bt * G * L * N);
    for (int64_t bg = 0; bg < Bt * G; bg++)
        for (int64_t t = 0; t < L; t++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0.0;
                for (int64_t k = 0; k < tasks; k++) s += acc[k * slice + (bg * L + t) * N + n];
                dst[(bg * N + n) * L + t] = (float)s;
            }
}

static void write_grads(const sel_call *c, int64_t tasks)
{
    const mm_ssm *h = c->h;
    const mm_ssm_grads *g = c->g;
    int64_t N = h->N;
    for (int64_t d = 0; d < h->D; d++) {
        const double *acc = chan_acc(h, d);
        for (int64_t n = 0; n < N; n++) {
            if (g->dA) g->dA->data[d * N + n] = (float)acc[n];
            if (g->dB && c->b_mode == BC_CONST) g->dB->data[d * N + n] = (float)acc[N + n];
            if (g->dC && c->c_mode == BC_CONST) g->dC->data[d * N + n] = (float)acc[2 * N + n];
        }
        if (g->dD) g->dD->data[d] = (float)acc[3 * N];
        if (g->ddelta_bias) g->ddelta_bias->data[d] = (float)acc[3 * N + 1];
    }
    if (g->dB && c->b_mode == BC_VAR)
        write_var_grad(h->ws.dbt, tasks, c->Bt, c->Gb, c->L, N, g->dB->data);
    if (g->dC && c->c_mode == BC_VAR)
        write_var_grad(h->ws.dct, tasks, c->Bt, c->Gc, c->L, N, g->dC->data);
}

int mmi_ssm_sel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout, mm_ssm_grads *g)
{
    MMI_ASSERT(h->kind == MM_SSM_SELECTIVE); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_scan_backward";
    sel_call c;
    int64_t tasks = mmi_pool_size(h->pool);
    int rc;
    memset(&c, 0, sizeof c);
    c.h = h, c.in = in, c.g = g;
    if ((rc = check_grads(&c, fn, dout)) != MM_OK) return rc;
    c.dout = dout->data;
    prepare_bc(&c);
    if (c.b_mode == BC_VAR)
        memset(h->ws.dbt, 0, (size_t)(tasks * c.Bt * c.Gb * c.L * h->N) * sizeof(double));
    if (c.c_mode == BC_VAR)
        memset(h->ws.dct, 0, (size_t)(tasks * c.Bt * c.Gc * c.L * h->N) * sizeof(double));
    mmi_pool_run(h->pool, bwd_task, &c, tasks);
    write_grads(&c, tasks);
    return MM_OK;
}

/* One token per row: the recurrence of mmi_ssm_sel_fwd_portable on the carried state. */
int mmi_ssm_sel_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out)
{
    MMI_ASSERT(h->kind == MM_SSM_SELECTIVE); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_step";
    int64_t Bt, N = h->N, D = h->D, sd[1] = {D}, sa[2] = {D, N}, s2[2], gb = 1, gc = 1;
    int rc;
    if (!in->u || in->u->ndim != 2) return mmi_ssm_want(h, fn, "u", in->u, 2, (int64_t[2]){1, D});
    Bt = in->u->shape[0];
    s2[0] = Bt, s2[1] = D;
    if ((rc = mmi_ssm_want(h, fn, "u", in->u, 2, s2)) || (rc = mmi_ssm_check_bl(h, fn, Bt, 1)) ||
        (rc = mmi_ssm_want(h, fn, "delta", in->delta, 2, s2)) ||
        (rc = mmi_ssm_want(h, fn, "A", in->A, 2, sa)) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, sd))) ||
        (in->z && (rc = mmi_ssm_want(h, fn, "z", in->z, 2, s2))) ||
        (in->delta_bias && (rc = mmi_ssm_want(h, fn, "delta_bias", in->delta_bias, 1, sd))) ||
        (rc = mmi_ssm_want(h, fn, "out", out, 2, s2)))
        return rc;
    for (int i = 0; i < 2; i++) {
        const mm_tensor *t = i ? in->C : in->B;
        int64_t *grp = i ? &gc : &gb;
        int64_t g = t && t->ndim == 3 ? t->shape[1] : 1;
        if (t && t->ndim == 3 && (g < 1 || D % g))
            return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s has %lld groups, not a divisor of %lld",
                            fn, i ? "C" : "B", (long long)g, (long long)D);
        if ((rc = t && t->ndim == 3
                      ? mmi_ssm_want(h, fn, i ? "C" : "B", t, 3, (int64_t[3]){Bt, g, N})
                      : mmi_ssm_want(h, fn, i ? "C" : "B", t, 2, (int64_t[2]){Bt, N})))
            return rc;
        *grp = g;
    }
    {
        /* element-wise parts over the whole [Bt, D] token at once, then one-step row kernels */
        row_ws w = thread_ws(h, 0);
        float *raw = w.sz + h->max_seq; /* after the row buffers */
        float *dlt = raw + Bt * D, *gz = dlt + Bt * D;
        for (int64_t b = 0; b < Bt; b++)
            for (int64_t d = 0; d < D; d++)
                raw[b * D + d] =
                    in->delta->data[b * D + d] + (in->delta_bias ? in->delta_bias->data[d] : 0.0f);
        mmi_ssm_sel_prep(Bt * D, raw, 0.0f, (h->opts.flags & MM_SSM_DELTA_SOFTPLUS) != 0,
                         in->z ? in->z->data : NULL, dlt, NULL, in->z ? gz : NULL, NULL);
        /* runs of D / lcm(gb, gc) channels share one B group and one C group */
        int64_t runs = gb, a = gb, m = gc;
        while (m) {
            int64_t t = a % m;
            a = m, m = t;
        }
        runs = gb / a * gc;
        for (int64_t b = 0; b < Bt; b++)
            for (int64_t g = 0; g < runs; g++) {
                int64_t n = D / runs, d0 = g * n, i = b * D + d0;
                mmi_sel_step st;
                st.n = n, st.N = N;
                st.A = in->A->data + d0 * N;
                st.B = in->B->data + (b * gb + d0 / (D / gb)) * N;
                st.C = in->C->data + (b * gc + d0 / (D / gc)) * N;
                st.dlt = dlt + i, st.u = in->u->data + i, st.gz = in->z ? gz + i : NULL;
                st.dskip = in->D ? in->D->data + d0 : NULL;
                st.x = h->ws.state + i * N, st.out = out->data + i;
                mmi_ssm_sel_step_rows(&st);
            }
    }
    return MM_OK;
}
