/* SPDX-License-Identifier: MIT */
/* layer_xattn.c — the pre-norm multi-head cross-attention block of mm_model (BLIP's
 * image-grounded text layers): the text tokens x [B, T, D] attend to context tokens
 * c [B, M, Dc] (image patches) that the caller passes with mm_model_forward_ctx:
 *   y = x + Attn(q, k, v) W_out^T + b_out
 *   q = LN(x) W_q^T + b_q,   [k | v] = c W_kv^T + b_kv
 * with a non-affine LayerNorm (eps 1e-5) on the text only (an encoder's last norm already
 * normalises the context), exact scaled softmax per head (scale 1/sqrt(d_head), no mask: every
 * text token sees every context token), and value width d_head. Heads run the softmax kind of
 * the shared per-head dispatch (src/attn/attn_head.c), so the tiled online-softmax forward and
 * exact backward are the same code as mm_attn's; the JVP uses its dense forward-mode form.
 * The context is held fixed by the JVP (its tangent is zero); backward accumulates the
 * context's gradient into c->dctx when the caller asks for it. forward keeps a copy of the
 * context in the saved region, so backward does not depend on the caller's buffer. */
#include "../attn/mmi_attn.h"
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: B batch, T text length, M context length, D d_model (in_dim), Dc context width,
 * H heads, dk head width (keys and values), qw = H dk query width, kw = 2 H dk key-value width.
 * icfg: heads, d_head, ctx_dim, max_ctx. */
#define HEADS(l)  ((l)->icfg[0])
#define DK(l)     ((l)->icfg[1])
#define CDIM(l)   ((l)->icfg[2])
#define MAXCTX(l) ((l)->icfg[3])
#define LN_EPS    1e-5
#define MAX_HEADS 4096
#define MAX_DK    1024 /* the dense JVP keeps dk accumulators on the stack (attn_head.c) */
#define MAX_WIDTH ((int64_t)1 << 31)

static int64_t qwidth(const mmi_layer *l) { return HEADS(l) * DK(l); }
static int64_t kwidth(const mmi_layer *l) { return 2 * HEADS(l) * DK(l); }

int mmi_xattn_context(const mmi_layer *l, int64_t *ctx_dim, int64_t *max_ctx)
{
    if (l->vt->kind != MMI_LAYER_XATTN) return 0;
    if (ctx_dim) *ctx_dim = CDIM(l);
    if (max_ctx) *max_ctx = MAXCTX(l);
    return 1;
}

/* One softmax head: t queries over m keys, non-causal. */
static mmi_attn_head head_of(const mmi_layer *l, int64_t t, int64_t m)
{
    mmi_attn_head a;
    memset(&a, 0, sizeof a);
    a.kind = MM_ATTN_SOFTMAX;
    a.fmap = MM_FMAP_IDENTITY;
    a.normalize = 1;
    a.s.n = t, a.s.m = m, a.s.d = DK(l), a.s.dv = DK(l);
    a.s.scale = (float)(1.0 / sqrt((double)DK(l)));
    a.s.chunk = 1;
    a.nf = DK(l);
    return a;
}

/* ---- buffers ------------------------------------------------------------------------------- */
/* What forward keeps (the saved region, or the front of scratch in mm_model_infer). */
typedef struct fbuf {
    double *stats; /* rows x (mean, 1/std) */
    float *xn, *ctx, *qh, *kh, *vh, *oh, *row, *am;
} fbuf;
/* Per-call scratch after the forward region. */
typedef struct sbuf {
    float *ws, *qp, *kvp, *doh, *dqh, *dkh, *dvh, *dxn, *tam;
    double *gb;
} sbuf;

static void layout_fwd(const mmi_layer *l, int64_t b, int64_t t, int64_t m, mmi_carve *y, fbuf *f)
{
    const int64_t rows = mmi_sz_mul(b, t), crows = mmi_sz_mul(b, m);
    f->stats = (double *)mmi_carve_take(y, mmi_sz_mul(2, rows), sizeof(double));
    f->xn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    f->ctx = (float *)mmi_carve_take(y, mmi_sz_mul(crows, CDIM(l)), 4);
    f->qh = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qwidth(l)), 4);
    f->kh = (float *)mmi_carve_take(y, mmi_sz_mul(crows, qwidth(l)), 4);
    f->vh = (float *)mmi_carve_take(y, mmi_sz_mul(crows, qwidth(l)), 4);
    f->oh = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qwidth(l)), 4);
    f->row = (float *)mmi_carve_take(y, mmi_sz_mul(rows, HEADS(l)), 4);
    f->am = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qwidth(l)), 4);
}

static void layout_scr(const mmi_layer *l, int64_t b, int64_t t, int64_t m, mmi_carve *y, sbuf *s)
{
    const int64_t rows = mmi_sz_mul(b, t), crows = mmi_sz_mul(b, m), qw = qwidth(l);
    const int64_t n = t > m ? t : m;
    const mmi_attn_head a = head_of(l, t, m);
    const int64_t w1 = mmi_sz_of(mmi_attn_head_ws_floats(&a, n)),
                  w2 = mmi_sz_of(mmi_attn_head_jvp_ws_floats(&a, n));
    int64_t wide = kwidth(l) > l->in_dim ? kwidth(l) : l->in_dim;
    s->ws = (float *)mmi_carve_take(y, w1 < 0 || w2 < 0 ? MMI_SIZE_BAD : w1 > w2 ? w1 : w2, 4);
    s->qp = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qw), 4);
    s->kvp = (float *)mmi_carve_take(y, mmi_sz_mul(crows, kwidth(l)), 4);
    s->doh = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qw), 4);
    s->dqh = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qw), 4);
    s->dkh = (float *)mmi_carve_take(y, mmi_sz_mul(crows, qw), 4);
    s->dvh = (float *)mmi_carve_take(y, mmi_sz_mul(crows, qw), 4);
    s->dxn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    s->tam = (float *)mmi_carve_take(y, mmi_sz_mul(rows, qw), 4);
    if (CDIM(l) > wide) wide = CDIM(l);
    s->gb = (double *)mmi_carve_take(y, wide, sizeof(double));
}

/* Sized for the largest context the layer takes (max_ctx): the model reserves once. */
static void xattn_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                        size_t *scratch, int *gemm_ws)
{
    mmi_carve y = mmi_carve_measure();
    fbuf f;
    sbuf s;
    layout_fwd(l, batch, seq, MAXCTX(l), &y, &f);
    *saved = y.off;
    layout_scr(l, batch, seq, MAXCTX(l), &y, &s); /* scratch = a forward region + the rest */
    *scratch = y.off;
    *gemm_ws = 1;
}

static void buffers(const mmi_layer *l, const mmi_exec *c, const void *saved, void *scratch,
                    fbuf *f, sbuf *s)
{
    mmi_carve y = mmi_carve_at(scratch, SIZE_MAX);
    fbuf fs;
    layout_fwd(l, c->batch, c->seq, c->ctx_len, &y, &fs);
    layout_scr(l, c->batch, c->seq, c->ctx_len, &y, s);
    if (saved) {
        mmi_carve z = mmi_carve_at((void *)(uintptr_t)saved, SIZE_MAX);
        layout_fwd(l, c->batch, c->seq, c->ctx_len, &z, f);
    } else {
        *f = fs;
    }
}

/* ---- setup and init ------------------------------------------------------------------------ */
static void tensor(mmi_layer *l, int i, const char *name, int64_t r, int64_t c, int64_t off)
{
    mmi_layer_set_tensor(l, i, name, c ? 2 : 1, r, c, 0, off);
}

static int xattn_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    const int64_t d = l->in_dim;
    int64_t qw, kw, dc, total;
    if (l->n_icfg != 4 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: cross_attention config needs 4 integers", fn);
    if (HEADS(l) < 1 || HEADS(l) > MAX_HEADS || DK(l) < 1 || DK(l) > MAX_DK || CDIM(l) < 1 ||
        CDIM(l) > MAX_WIDTH || MAXCTX(l) < 1 || MAXCTX(l) > MAX_WIDTH)
        return mmi_fail(e, MM_E_RANGE,
                        "%s: cross-attention needs heads in [1, %d], d_head in "
                        "[1, %d], ctx_dim and max_ctx in [1, 2^31] (got %lld, %lld, %lld, %lld)",
                        fn, MAX_HEADS, MAX_DK, (long long)HEADS(l), (long long)DK(l),
                        (long long)CDIM(l), (long long)MAXCTX(l));
    qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    total = mmi_sz_add(mmi_sz_mul(kw, dc), mmi_sz_mul(2 * qw, d));
    if (total < 0 || total > MMI_MAX_NUMEL)
        return mmi_fail(e, MM_E_RANGE, "%s: cross-attention has more than 2^40 parameters", fn);
    l->out_dim = d;
    l->n_tensors = 6;
    memset(l->tensors, 0, sizeof l->tensors);
    tensor(l, 0, "q_proj.weight", qw, d, 0);
    tensor(l, 1, "q_proj.bias", qw, 0, qw * d);
    tensor(l, 2, "kv_proj.weight", kw, dc, qw * d + qw);
    tensor(l, 3, "kv_proj.bias", kw, 0, qw * d + qw + kw * dc);
    tensor(l, 4, "out_proj.weight", d, qw, qw * d + qw + kw * dc + kw);
    tensor(l, 5, "out_proj.bias", d, 0, 2 * qw * d + qw + kw * dc + kw);
    l->n_params = 2 * qw * d + qw + kw * dc + kw + d;
    l->init_work = 0;
    return MM_OK;
}

/* Offsets of the parameter tensors in the layer's slice. */
typedef struct xparams {
    const float *wq, *bq, *wkv, *bkv, *wo, *bo;
} xparams;

static xparams params_of(const mmi_layer *l, const float *p)
{
    const int64_t d = l->in_dim, qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    xparams x;
    x.wq = p, x.bq = p + qw * d, x.wkv = x.bq + qw, x.bkv = x.wkv + kw * dc;
    x.wo = x.bkv + kw, x.bo = x.wo + d * qw;
    return x;
}

static void uniform(float *p, int64_t n, double bound, mmi_rng *rng)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)(bound * (2.0 * mmi_rng_uniform(rng) - 1.0));
}

static void xattn_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    const int64_t d = l->in_dim, qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    (void)work;
    /* As torch.nn.MultiheadAttention: xavier_uniform projections, zero biases, out_proj
     * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with a zero bias. */
    uniform(p, qw * d, sqrt(6.0 / (double)(d + qw)), rng);
    memset(p + qw * d, 0, sizeof(float) * (size_t)qw);
    uniform(p + qw * d + qw, kw * dc, sqrt(6.0 / (double)(dc + kw)), rng);
    memset(p + qw * d + qw + kw * dc, 0, sizeof(float) * (size_t)kw);
    uniform(p + qw * d + qw + kw * dc + kw, d * qw, 1.0 / sqrt((double)qw), rng);
    memset(p + 2 * qw * d + qw + kw * dc + kw, 0, sizeof(float) * (size_t)d);
}

/* ---- pieces shared by forward, backward and jvp ---------------------------------------------- */
/* Rows [B * n, width] (head h at column at + h dk) <-> per-head [B, H, n, dk]; dir 0 splits,
 * 1 merges (overwrites those columns). */
static void heads_io(const mmi_layer *l, int64_t batch, int64_t n, float *rows, int64_t width,
                     int64_t at, float *heads, int dir)
{
    const int64_t H = HEADS(l), dk = DK(l);
    const size_t bytes = sizeof(float) * (size_t)dk;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t t = 0; t < n; t++)
            for (int64_t h = 0; h < H; h++) {
                float *r = rows + (b * n + t) * width + at + h * dk;
                float *o = heads + ((b * H + h) * n + t) * dk;
                if (dir == 0)
                    memcpy(o, r, bytes);
                else
                    memcpy(r, o, bytes);
            }
}

/* The contract of every call: the model checked the context against the layer. */
static int exec_ok(const mmi_layer *l, const mmi_exec *c)
{
    return c->ctx_len >= 1 && c->ctx_len <= MAXCTX(l) && c->ctx_dim == CDIM(l);
}

static int xattn_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         float *y, void *saved, void *scratch)
{
    const int64_t d = l->in_dim, qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    const int64_t T = c->seq, M = c->ctx_len, dk = DK(l), bh = c->batch * HEADS(l);
    const xparams w = params_of(l, p);
    mmi_attn_head a;
    fbuf f;
    sbuf s;
    /* mm_model_infer and mm_model_forward have no context; the model's *_ctx entry points
     * check it before any layer runs, so this is the only refusal. */
    if (!c->ctx)
        return mmi_fail(c->err, MM_E_INVALID_ARG,
                        "cross_attention needs context tokens: call "
                        "mm_model_forward_ctx (or mm_model_jvp_ctx)");
    MMI_ASSERT(exec_ok(l, c));
    buffers(l, c, saved, scratch, &f, &s);
    memcpy(f.ctx, c->ctx, sizeof(float) * (size_t)(c->batch * M * dc));
    mmi_layernorm_rows_fwd(c->rows, d, LN_EPS, x, f.xn, f.stats);
    mmi_gemm(0, 1, c->rows, qw, d, 1.0f, f.xn, d, w.wq, d, 0.0f, s.qp, qw, c->gemm_ws, c->pool);
    mmi_add_rows(s.qp, w.bq, c->rows, qw);
    heads_io(l, c->batch, T, s.qp, qw, 0, f.qh, 0);
    mmi_gemm(0, 1, c->batch * M, kw, dc, 1.0f, f.ctx, dc, w.wkv, dc, 0.0f, s.kvp, kw, c->gemm_ws,
             c->pool);
    mmi_add_rows(s.kvp, w.bkv, c->batch * M, kw);
    heads_io(l, c->batch, M, s.kvp, kw, 0, f.kh, 0);
    heads_io(l, c->batch, M, s.kvp, kw, qw, f.vh, 0);
    a = head_of(l, T, M);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_fwd(&a, f.qh + i * T * dk, f.kh + i * M * dk, f.vh + i * M * dk, NULL, NULL,
                          NULL, f.oh + i * T * dk, f.row + i * T, NULL, s.ws);
    heads_io(l, c->batch, T, f.am, qw, 0, f.oh, 1);
    mmi_gemm(0, 1, c->rows, d, qw, 1.0f, f.am, qw, w.wo, qw, 0.0f, y, d, c->gemm_ws, c->pool);
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < d; i++) y[r * d + i] += x[r * d + i] + w.bo[i];
    return MM_OK;
}

/* g[0..n) += column sums of m [rows, n] (float64 sums in acc). */
static void add_colsum(const float *m, int64_t rows, int64_t n, double *acc, float *g)
{
    for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
    mmi_colsum_f64(m, rows, n, acc);
    for (int64_t j = 0; j < n; j++) g[j] += (float)acc[j];
}

static void xattn_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           const float *y, const void *saved, const float *dy, float *dx, float *g,
                           void *scratch)
{
    const int64_t d = l->in_dim, qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    const int64_t T = c->seq, M = c->ctx_len, dk = DK(l), bh = c->batch * HEADS(l);
    const int64_t crows = c->batch * M;
    const xparams w = params_of(l, p);
    mmi_attn_head a;
    fbuf f;
    sbuf s;
    (void)x, (void)y;
    MMI_ASSERT(exec_ok(l, c));
    buffers(l, c, saved, scratch, &f, &s);
    a = head_of(l, T, M);
    /* through the output projection: tam = dy W_out */
    mmi_gemm(0, 0, c->rows, qw, d, 1.0f, dy, d, w.wo, qw, 0.0f, s.tam, qw, c->gemm_ws, c->pool);
    if (g) {
        float *g_wo = g + (w.wo - p);
        mmi_gemm(1, 0, d, qw, c->rows, 1.0f, dy, d, f.am, qw, 1.0f, g_wo, qw, c->gemm_ws, c->pool);
        add_colsum(dy, c->rows, d, s.gb, g + (w.bo - p));
    }
    heads_io(l, c->batch, T, s.tam, qw, 0, s.doh, 0);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_bwd(&a, f.qh + i * T * dk, f.kh + i * M * dk, f.vh + i * M * dk, NULL, NULL,
                          NULL, f.oh + i * T * dk, f.row + i * T, s.doh + i * T * dk,
                          s.dqh + i * T * dk, s.dkh + i * M * dk, s.dvh + i * M * dk, NULL, s.ws);
    heads_io(l, c->batch, T, s.qp, qw, 0, s.dqh, 1);  /* dL/dq rows */
    heads_io(l, c->batch, M, s.kvp, kw, 0, s.dkh, 1); /* dL/d[k | v] rows */
    heads_io(l, c->batch, M, s.kvp, kw, qw, s.dvh, 1);
    if (g) {
        mmi_gemm(1, 0, qw, d, c->rows, 1.0f, s.qp, qw, f.xn, d, 1.0f, g, d, c->gemm_ws, c->pool);
        add_colsum(s.qp, c->rows, qw, s.gb, g + (w.bq - p));
        mmi_gemm(1, 0, kw, dc, crows, 1.0f, s.kvp, kw, f.ctx, dc, 1.0f, g + (w.wkv - p), dc,
                 c->gemm_ws, c->pool);
        add_colsum(s.kvp, crows, kw, s.gb, g + (w.bkv - p));
    }
    if (c->dctx) /* several cross-attention layers share the context: accumulate */
        mmi_gemm(0, 0, crows, dc, kw, 1.0f, s.kvp, kw, w.wkv, dc, 1.0f, c->dctx, dc, c->gemm_ws,
                 c->pool);
    if (!dx) return;
    mmi_gemm(0, 0, c->rows, d, qw, 1.0f, s.qp, qw, w.wq, d, 0.0f, s.dxn, d, c->gemm_ws, c->pool);
    memcpy(dx, dy, sizeof(float) * (size_t)(c->rows * d)); /* the residual */
    mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, s.dxn, dx, 1);
}

static void xattn_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                      const float *x, const float *tx, const float *y, const void *saved, float *ty,
                      void *scratch)
{
    const int64_t d = l->in_dim, qw = qwidth(l), kw = kwidth(l), dc = CDIM(l);
    const int64_t T = c->seq, M = c->ctx_len, dk = DK(l), bh = c->batch * HEADS(l);
    const xparams w = params_of(l, p), tw = params_of(l, v);
    mmi_attn_head a;
    fbuf f;
    sbuf s;
    (void)x, (void)y;
    MMI_ASSERT(exec_ok(l, c));
    buffers(l, c, saved, scratch, &f, &s);
    a = head_of(l, T, M);
    /* tangent of q: xn vW_q^T + vb_q + LN'(tx) W_q^T */
    mmi_gemm(0, 1, c->rows, qw, d, 1.0f, f.xn, d, tw.wq, d, 0.0f, s.qp, qw, c->gemm_ws, c->pool);
    mmi_add_rows(s.qp, tw.bq, c->rows, qw);
    if (tx) {
        mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, tx, s.dxn, 0);
        mmi_gemm(0, 1, c->rows, qw, d, 1.0f, s.dxn, d, w.wq, d, 1.0f, s.qp, qw, c->gemm_ws,
                 c->pool);
    }
    /* tangent of [k | v]: ctx vW_kv^T + vb_kv (the context is fixed) */
    mmi_gemm(0, 1, c->batch * M, kw, dc, 1.0f, f.ctx, dc, tw.wkv, dc, 0.0f, s.kvp, kw, c->gemm_ws,
             c->pool);
    mmi_add_rows(s.kvp, tw.bkv, c->batch * M, kw);
    heads_io(l, c->batch, T, s.qp, qw, 0, s.dqh, 0);
    heads_io(l, c->batch, M, s.kvp, kw, 0, s.dkh, 0);
    heads_io(l, c->batch, M, s.kvp, kw, qw, s.dvh, 0);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_jvp(&a, f.qh + i * T * dk, f.kh + i * M * dk, f.vh + i * M * dk, NULL, 0.0f,
                          s.dqh + i * T * dk, s.dkh + i * M * dk, s.dvh + i * M * dk,
                          s.doh + i * T * dk, s.ws);
    heads_io(l, c->batch, T, s.tam, qw, 0, s.doh, 1);
    /* ty = tx + am vW_out^T + vb_out + tam W_out^T */
    mmi_gemm(0, 1, c->rows, d, qw, 1.0f, f.am, qw, tw.wo, qw, 0.0f, ty, d, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, c->rows, d, qw, 1.0f, s.tam, qw, w.wo, qw, 1.0f, ty, d, c->gemm_ws, c->pool);
    mmi_add_rows(ty, tw.bo, c->rows, d);
    if (tx)
        for (int64_t i = 0; i < c->rows * d; i++) ty[i] += tx[i];
}

const mmi_layer_vt mmi_layer_xattn_vt = {
    "cross_attention", MMI_LAYER_XATTN, xattn_setup,    xattn_sizes,
    xattn_init,        xattn_forward,   xattn_backward, xattn_jvp,
};

MM_API int mm_model_add_cross_attention(mm_model *m, int64_t n_heads, int64_t d_head,
                                        int64_t ctx_dim, int64_t max_ctx)
{
    static const char fn[] = "mm_model_add_cross_attention";
    const int64_t ic[4] = {n_heads, d_head, ctx_dim, max_ctx};
    /* one context tensor per model: mmi_model_add_layer checks the ctx_dim of every
     * cross-attention layer against the others, for files as for this call */
    return mmi_model_add_layer(m, "cross_attention", ic, 4, NULL, 0, fn);
}
