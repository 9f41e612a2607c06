/* SPDX-License-Identifier: MIT */
/* layer_dense.c — the dense layer y = x W^T + b in torch.nn.Linear's layout (W [out, in]),
 * with PyTorch's default initialisation or SB3's orthogonal one. All products go through
 * mmi_gemm; the bias gradient sums over the batch in float64. The bias add and the
 * activations around a dense layer run in its GEMMs' epilogues (mmi_dense_forward_act,
 * mmi_dense_backward_act). */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: rows = B x T, in = in_dim, out = out_features; W [out, in], b [out]. */

#define OUT(l)      ((l)->icfg[0])
#define HAS_BIAS(l) ((l)->icfg[1] != 0)
#define INIT(l)     ((l)->icfg[2])
#define GAIN(l)     ((l)->dcfg[0])
#define MAX_WIDTH   ((int64_t)1 << 31)

static int dense_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    int64_t out = OUT(l), in = l->in_dim, nw;
    if (l->n_icfg != 3 || l->n_dcfg != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: dense config needs 3 integers and 1 double", fn);
    if (out < 1 || out > MAX_WIDTH)
        return mmi_fail(e, MM_E_RANGE, "%s: out_features %lld is outside [1, 2^31]", fn,
                        (long long)out);
    if (l->icfg[1] != 0 && l->icfg[1] != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: bias must be 0 or 1, got %lld", fn,
                        (long long)l->icfg[1]);
    if (INIT(l) != MM_INIT_DEFAULT && INIT(l) != MM_INIT_ORTHOGONAL)
        return mmi_fail(e, MM_E_INVALID_ARG,
                        "%s: unknown init %lld (MM_INIT_DEFAULT or "
                        "MM_INIT_ORTHOGONAL)",
                        fn, (long long)INIT(l));
    if (!isfinite(GAIN(l)) || GAIN(l) < 0.0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: gain must be finite and >= 0, got %g", fn,
                        GAIN(l));
    if (mmi_mul_i64(&nw, out, in) != 0 || nw > MMI_MAX_NUMEL)
        return mmi_fail(e, MM_E_RANGE, "%s: weight [%lld, %lld] is too large", fn, (long long)out,
                        (long long)in);
    l->out_dim = out;
    l->n_params = nw + (HAS_BIAS(l) ? out : 0);
    l->n_tensors = HAS_BIAS(l) ? 2 : 1;
    memset(l->tensors, 0, sizeof l->tensors);
    strcpy(l->tensors[0].name, "weight");
    l->tensors[0].ndim = 2;
    l->tensors[0].shape[0] = out;
    l->tensors[0].shape[1] = in;
    l->tensors[0].numel = nw;
    if (HAS_BIAS(l)) {
        strcpy(l->tensors[1].name, "bias");
        l->tensors[1].ndim = 1;
        l->tensors[1].shape[0] = out;
        l->tensors[1].numel = out;
        l->tensors[1].offset = nw;
    }
    /* Orthogonal init works on a float64 copy plus as much Gram-Schmidt space. */
    l->init_work = INIT(l) == MM_INIT_ORTHOGONAL ? 2 * nw : 0;
    return MM_OK;
}

/* Inputs narrower than this (an MLP's first layer on a few observation features) get their
 * weight gradient as dW^T = x^T dy, in x out, then transposed into dW: dy^T x with in columns
 * fills a fraction in/16 of the GEMM's register tile (every k step runs a whole row tile for
 * a few columns), x^T dy fills all of it (4 x 256 x 256: 2.7 us against 11.8 us). Each element
 * is the same dot product over the rows, so the result does not depend on the thread count. */
#define NARROW_IN 16

static void dense_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                        size_t *scratch, int *gemm_ws)
{
    int64_t out = OUT(l), in = l->in_dim;
    *gemm_ws = mmi_gemm_needs_ws(0, 1, batch * seq, out, in, 1.0f, in, in, out);
    *saved = 0;
    /* bias-gradient sums, then (narrow inputs) dW^T */
    *scratch =
        (size_t)out * sizeof(double) + (in < NARROW_IN ? (size_t)(in * out) * sizeof(float) : 0);
}

static void dense_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    int64_t out = OUT(l), in = l->in_dim, nw = out * in;
    if (INIT(l) == MM_INIT_ORTHOGONAL) {
        double *q = work, *tmp = work + nw;
        mmi_rng_orthogonal(rng, q, out, in, tmp);
        for (int64_t i = 0; i < nw; i++) p[i] = (float)(GAIN(l) * q[i]);
        if (HAS_BIAS(l)) memset(p + nw, 0, (size_t)out * sizeof(float));
        return;
    }
    /* kaiming_uniform(a = sqrt 5) reduces to U(-1/sqrt(in), 1/sqrt(in)); the bias uses the
     * same bound. */
    double bound = 1.0 / sqrt((double)in);
    for (int64_t i = 0; i < l->n_params; i++)
        p[i] = (float)(bound * (2.0 * mmi_rng_uniform(rng) - 1.0));
}

/* The forward's GEMM epilogue: per finished block of y = x W^T, the bias add and (act) the
 * activation into ya, each row segment while it is in cache. Element-wise, so the result is
 * bitwise the unfused passes' (mmi_add_rows over y, then mmi_act_forward into ya). */
typedef struct dense_ep {
    float *y, *ya;
    const float *bias;
    int64_t ld;
    int32_t act;
} dense_ep;

static void dense_ep_rows(void *ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    const dense_ep *e = (const dense_ep *)ctx;
    int64_t o = i0 * e->ld + j0;
    mmi_bias_act_rows(e->y + o, e->bias ? e->bias + j0 : NULL, e->ya ? e->ya + o : NULL, e->act,
                      i1 - i0, j1 - j0, e->ld);
}

void mmi_dense_forward_act(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           float *y, int32_t act, float *ya)
{
    int64_t out = OUT(l), in = l->in_dim;
    dense_ep e;
    mmi_gemm_ep ep;
    MMI_ASSERT(l->vt->kind == MMI_LAYER_DENSE && ya != x);
    e.y = y, e.ya = ya, e.ld = out, e.act = act;
    e.bias = HAS_BIAS(l) ? p + out * in : NULL;
    ep.fn = dense_ep_rows, ep.ctx = &e;
    mmi_gemm_then(0, 1, c->rows, out, in, 1.0f, x, in, p, in, 0.0f, y, out, c->gemm_ws, c->pool,
                  e.bias || ya ? &ep : NULL);
}

void mmi_dense_forward_kept(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                            float *y, int32_t act, float *ya, mmi_kept_w *kw, const mm_model *m)
{
    int64_t out = OUT(l), in = l->in_dim;
    dense_ep e;
    mmi_gemm_ep ep;
    if (!mmi_gemm_nt_takes_panel(c->rows, out, in)) {
        mmi_dense_forward_act(l, c, p, x, y, act, ya);
        return;
    }
    MMI_ASSERT(l->vt->kind == MMI_LAYER_DENSE && ya != x);
    if (kw->of != m) {
        mmi_gemm_nt_panel(out, in, p, in, kw->panel);
        kw->of = m;
    }
    /* A writer of W that did not clear kw->of would act on the old weights: the tests reach
     * every writer of the policy's actor before an act, and this catches the one that forgot. */
    MMI_ASSERT(mmi_gemm_nt_panel_is(out, in, p, in, kw->panel));
    e.y = y, e.ya = ya, e.ld = out, e.act = act;
    e.bias = HAS_BIAS(l) ? p + out * in : NULL;
    ep.fn = dense_ep_rows, ep.ctx = &e;
    mmi_gemm_nt_panel_then(c->rows, out, in, 1.0f, x, in, kw->panel, 0.0f, y, out,
                           e.bias || ya ? &ep : NULL);
}

static int dense_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         float *y, void *saved, void *scratch)
{
    (void)saved;
    (void)scratch;
    mmi_dense_forward_act(l, c, p, x, y, 0, NULL);
    return MM_OK;
}

/* The input gradient's GEMM epilogue: per finished block of dx = dy W, the backward of the
 * activation below (input ax, output ay) in place, as mmi_act_backward over the whole of dx
 * would compute it element by element. */
typedef struct dense_bwd_ep {
    float *dx;
    const float *ax, *ay;
    int64_t ld;
    int32_t act;
} dense_bwd_ep;

static void dense_bwd_ep_rows(void *ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    const dense_bwd_ep *e = (const dense_bwd_ep *)ctx;
    if (j0 == 0 && j1 == e->ld) { /* whole rows: one stretch of memory, one call */
        int64_t o = i0 * e->ld;
        mmi_act_backward(e->act, e->ax + o, e->ay + o, e->dx + o, e->dx + o, (i1 - i0) * e->ld);
        return;
    }
    for (int64_t i = i0; i < i1; i++) {
        int64_t o = i * e->ld + j0;
        mmi_act_backward(e->act, e->ax + o, e->ay + o, e->dx + o, e->dx + o, j1 - j0);
    }
}

/* The bias gradient gb += column sums of dy, each column summed in float64 over the rows in
 * row order; the columns are independent, so the threads take blocks of BIAS_COLS columns (a
 * multiple of every path's vector width) once dy has BIAS_PAR_MIN elements, and the sums are
 * bitwise the same for every thread count. */
#define BIAS_COLS    64
#define BIAS_PAR_MIN ((int64_t)1 << 15)

typedef struct bias_job {
    const float *dy;
    int64_t rows, out;
    double *acc; /* out doubles of scratch */
    float *gb;
} bias_job;

static void bias_task(void *ctx, int64_t t, int64_t n)
{
    const bias_job *b = (const bias_job *)ctx;
    int64_t j0 = t * BIAS_COLS, w = b->out - j0 < BIAS_COLS ? b->out - j0 : BIAS_COLS;
    (void)n;
    for (int64_t j = 0; j < w; j++) b->acc[j0 + j] = 0.0;
    mmi_colsum_f64_ld(b->dy + j0, b->rows, w, b->out, b->acc + j0);
    for (int64_t j = 0; j < w; j++) b->gb[j0 + j] += (float)b->acc[j0 + j];
}

void mmi_dense_backward_act(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                            const float *dy, float *dx, float *g, void *scratch, int32_t act,
                            const float *ax)
{
    int64_t out = OUT(l), in = l->in_dim, rows = c->rows;
    dense_bwd_ep e;
    mmi_gemm_ep ep;
    MMI_ASSERT(l->vt->kind == MMI_LAYER_DENSE && (!dx || (dx != dy && dx != x && dx != ax)));
    if (g) {
        if (in < NARROW_IN) {
            /* dW^T = x^T dy into scratch (after the bias sums), then dW += its transpose */
            float *t = (float *)((double *)scratch + out);
            mmi_gemm(1, 0, in, out, rows, 1.0f, x, in, dy, out, 0.0f, t, out, c->gemm_ws, c->pool);
            for (int64_t j = 0; j < out; j++)
                for (int64_t i = 0; i < in; i++) g[j * in + i] += t[i * out + j];
        } else {
            /* dW += dy^T x */
            mmi_gemm(1, 0, out, in, rows, 1.0f, dy, out, x, in, 1.0f, g, in, c->gemm_ws, c->pool);
        }
        if (HAS_BIAS(l)) {
            bias_job b;
            int64_t tasks = (out + BIAS_COLS - 1) / BIAS_COLS;
            b.dy = dy, b.rows = rows, b.out = out, b.acc = (double *)scratch, b.gb = g + out * in;
            mmi_pool_run(rows * out >= BIAS_PAR_MIN && tasks > 1 ? c->pool : NULL, bias_task, &b,
                         tasks);
        }
    }
    if (!dx) return;
    /* dx = dy W, then (ax) the activation's backward: x is that activation's output */
    e.dx = dx, e.ax = ax, e.ay = x, e.ld = in, e.act = act;
    ep.fn = dense_bwd_ep_rows, ep.ctx = &e;
    mmi_gemm_then(0, 0, rows, in, out, 1.0f, dy, out, p, in, 0.0f, dx, in, c->gemm_ws, c->pool,
                  ax ? &ep : NULL);
}

static void dense_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           const float *y, const void *saved, const float *dy, float *dx, float *g,
                           void *scratch)
{
    (void)y;
    (void)saved;
    mmi_dense_backward_act(l, c, p, x, dy, dx, g, scratch, 0, NULL);
}

static void dense_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                      const float *x, const float *tx, const float *y, const void *saved, float *ty,
                      void *scratch)
{
    int64_t out = OUT(l), in = l->in_dim, rows = c->rows;
    (void)y;
    (void)saved;
    (void)scratch;
    /* ty = x Vw^T + vb + tx W^T */
    mmi_gemm(0, 1, rows, out, in, 1.0f, x, in, v, in, 0.0f, ty, out, c->gemm_ws, c->pool);
    if (HAS_BIAS(l)) mmi_add_rows(ty, v + out * in, rows, out);
    if (tx) mmi_gemm(0, 1, rows, out, in, 1.0f, tx, in, p, in, 1.0f, ty, out, c->gemm_ws, c->pool);
}

const mmi_layer_vt mmi_layer_dense_vt = {
    "dense",    MMI_LAYER_DENSE, dense_setup,    dense_sizes,
    dense_init, dense_forward,   dense_backward, dense_jvp,
};
