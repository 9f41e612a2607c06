/* SPDX-License-Identifier: MIT */
/* layer_attn.c — the pre-norm multi-head attention block of mm_model:
 *   y = x + Attn(q, k, v) W_out^T + b_out,  [q | k | v] = LN(x) W_in^T + b_in
 * with a non-affine LayerNorm (eps 1e-5; an affine norm would be absorbed by W_in and b_in) and
 * any mm_attn kind per head (torch.nn.MultiheadAttention's tensor layout: in_proj_weight
 * [H (2 dk + dv), D], in_proj_bias, out_proj.weight [D, H dv], out_proj.bias). Heads run the
 * same per-head dispatch as mm_attn (src/attn/attn_head.c); backward is exact, the JVP uses the
 * dense forward-mode form of each kind. PERFORMER redraws its projection from the layer's seed
 * at every forward (a few d^3 flops), so it is part of the architecture, not a parameter. */
#include "../attn/mmi_attn.h"
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: B batch, T sequence, d d_model (in_dim), H heads, dk key width, dv value width,
 * nf feature count (PERFORMER n_features, else dk), bh = B x H, pw / aw projection widths. */
/* icfg: kind, heads, d_head, dv, causal, variant, aux, seed (see cfg_from_opts) */
#define KIND(l)   ((int32_t)(l)->icfg[0])
#define HEADS(l)  ((l)->icfg[1])
#define DK(l)     ((l)->icfg[2])
#define DV(l)     ((l)->icfg[3])
#define CAUSAL(l) ((int32_t)(l)->icfg[4])
#define VAR(l)    ((l)->icfg[5])
#define AUX(l)    ((l)->icfg[6])
#define SEED(l)   ((uint64_t)(l)->icfg[7])
#define LN_EPS    1e-5
#define MAX_DV    1024

static int64_t n_feat(const mmi_layer *l)
{
    if (KIND(l) != MM_ATTN_PERFORMER) return DK(l);
    return VAR(l) > 0 ? VAR(l) : DK(l) > 1 ? (int64_t)((double)DK(l) * log((double)DK(l))) : 1;
}
static int64_t pwidth(const mmi_layer *l) { return HEADS(l) * (2 * DK(l) + DV(l)); }
static int64_t awidth(const mmi_layer *l) { return HEADS(l) * DV(l); }

/* The per-head description for sequences of length t. */
static mmi_attn_head head_of(const mmi_layer *l, int64_t t, const float *proj, const float *projt)
{
    mmi_attn_head a;
    memset(&a, 0, sizeof a);
    a.kind = KIND(l);
    a.fmap = KIND(l) == MM_ATTN_LINEAR ? (int32_t)VAR(l) : MM_FMAP_IDENTITY;
    a.normalize = 1;
    a.gmode = KIND(l) == MM_ATTN_GATED && VAR(l) == MM_GATE_RETNET ? 1 : 0;
    a.s.n = a.s.m = t, a.s.d = DK(l), a.s.dv = DV(l);
    a.s.scale = (float)(1.0 / sqrt((double)DK(l)));
    a.s.causal = CAUSAL(l);
    a.s.window = KIND(l) == MM_ATTN_SPARSE && VAR(l) == MM_SPARSE_LOCAL ? AUX(l) : 0;
    a.s.stride = KIND(l) == MM_ATTN_SPARSE && VAR(l) == MM_SPARSE_STRIDED ? AUX(l) : 0;
    a.s.chunk = KIND(l) == MM_ATTN_RELU2 || KIND(l) == MM_ATTN_GATED ? AUX(l) : 1;
    a.eps = KIND(l) == MM_ATTN_PERFORMER ? 0.0 : 1e-6;
    a.feps = 1e-4;
    a.nf = n_feat(l);
    a.proj = proj, a.projt = projt;
    return a;
}

/* ---- buffers ------------------------------------------------------------------------------- */
/* What forward keeps (the saved region, or the front of scratch in mm_model_infer). */
typedef struct fbuf {
    double *stats; /* rows x (mean, 1/std) */
    float *xn, *pr, *qh, *kh, *vh, *fq, *fk, *oh, *row, *am, *stab, *lg, *proj, *projt;
} fbuf;
/* Backward / JVP scratch after the forward region. */
typedef struct sbuf {
    float *ws, *doh, *dqh, *dkh, *dvh, *dpr, *dxn, *tam;
    double *gb, *draw;
} sbuf;

static void layout_fwd(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, fbuf *f)
{
    /* Every count goes through mmi_sz_mul: an overflow saturates the walk, which the
     * reservation then refuses (the kind's bounds are in attn_setup). */
    const int64_t rows = mmi_sz_mul(b, t), bh = mmi_sz_mul(b, HEADS(l)), nf = n_feat(l);
    const int64_t bht = mmi_sz_mul(bh, t), dk = DK(l);
    const int feat = KIND(l) == MM_ATTN_LINEAR || KIND(l) == MM_ATTN_PERFORMER;
    f->stats = (double *)mmi_carve_take(y, mmi_sz_mul(2, rows), sizeof(double));
    f->xn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    f->pr = (float *)mmi_carve_take(y, mmi_sz_mul(rows, pwidth(l)), 4);
    f->qh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dk), 4);
    f->kh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dk), 4);
    f->vh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, DV(l)), 4);
    f->fq = feat ? (float *)mmi_carve_take(y, mmi_sz_mul(bht, nf), 4) : NULL;
    f->fk = feat ? (float *)mmi_carve_take(y, mmi_sz_mul(bht, nf), 4) : NULL;
    f->oh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, DV(l)), 4);
    f->row = (float *)mmi_carve_take(y, bht, 4);
    f->am = (float *)mmi_carve_take(y, mmi_sz_mul(rows, awidth(l)), 4);
    f->stab = (float *)mmi_carve_take(y, bh, 4);
    f->lg = (float *)mmi_carve_take(y, HEADS(l), 4);
    f->proj =
        KIND(l) == MM_ATTN_PERFORMER ? (float *)mmi_carve_take(y, mmi_sz_mul(nf, dk), 4) : NULL;
    f->projt =
        KIND(l) == MM_ATTN_PERFORMER ? (float *)mmi_carve_take(y, mmi_sz_mul(nf, dk), 4) : NULL;
}

static void layout_scr(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, sbuf *s)
{
    const int64_t rows = mmi_sz_mul(b, t), bht = mmi_sz_mul(mmi_sz_mul(b, HEADS(l)), t);
    const int64_t dk = DK(l), dv = DV(l);
    const mmi_attn_head a = head_of(l, t, NULL, NULL);
    const int64_t w1 = mmi_sz_of(mmi_attn_head_ws_floats(&a, t)),
                  w2 = mmi_sz_of(mmi_attn_head_jvp_ws_floats(&a, t));
    int64_t wide = pwidth(l) > l->in_dim ? pwidth(l) : l->in_dim;
    s->ws = (float *)mmi_carve_take(y, w1 < 0 || w2 < 0 ? MMI_SIZE_BAD : w1 > w2 ? w1 : w2, 4);
    s->doh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dv), 4);
    s->dqh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dk), 4);
    s->dkh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dk), 4);
    s->dvh = (float *)mmi_carve_take(y, mmi_sz_mul(bht, dv), 4);
    s->dpr = (float *)mmi_carve_take(y, mmi_sz_mul(rows, pwidth(l)), 4);
    s->dxn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    s->tam = (float *)mmi_carve_take(y, mmi_sz_mul(rows, awidth(l)), 4);
    s->gb = (double *)mmi_carve_take(y, wide, sizeof(double));
    /* Only PERFORMER redraws a projection; a d_head^2 scratch for every kind let a small
     * file with a large d_head reserve hundreds of MB for nothing. */
    s->draw = KIND(l) == MM_ATTN_PERFORMER
                  ? (double *)mmi_carve_take(y, mmi_sz_mul(2, mmi_sz_mul(dk, dk)), sizeof(double))
                  : NULL;
}

static void attn_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                       size_t *scratch, int *gemm_ws)
{
    mmi_carve y = mmi_carve_measure();
    fbuf f;
    sbuf s;
    layout_fwd(l, batch, seq, &y, &f);
    *saved = y.off;
    layout_scr(l, batch, seq, &y, &s); /* scratch = a forward region (for infer) + the rest */
    *scratch = y.off;
    *gemm_ws = 1;
}

/* Forward region (saved, or scratch when saved is NULL) and the scratch after it. */
static void buffers(const mmi_layer *l, const mmi_exec *c, const void *saved, void *scratch,
                    fbuf *f, sbuf *s)
{
    mmi_carve y = mmi_carve_at(scratch, SIZE_MAX);
    fbuf fs;
    layout_fwd(l, c->batch, c->seq, &y, &fs);
    layout_scr(l, c->batch, c->seq, &y, s);
    if (saved) {
        mmi_carve z = mmi_carve_at((void *)(uintptr_t)saved, SIZE_MAX);
        layout_fwd(l, c->batch, c->seq, &z, f);
    } else {
        *f = fs;
    }
}

/* ---- setup and init ------------------------------------------------------------------------ */
static void tensor(mmi_layer *l, int i, const char *name, int64_t r, int64_t c, int64_t off)
{
    mmi_layer_set_tensor(l, i, name, c ? 2 : 1, r, c, 0, off);
}

/* The builder stores the resolved mm_attn_opts as icfg (below); setup reads them back and
 * validates them with mm_attn_create's own checks (mmi_attn_opts_resolve), so a file replayed
 * through setup meets exactly the bounds mm_model_add_attention applies, with no second copy. */
static void icfg_of_opts(const mm_attn_opts *o, int64_t ic[8])
{
    ic[0] = o->kind, ic[1] = o->n_heads, ic[2] = o->d_head, ic[3] = o->dv, ic[4] = o->causal;
    ic[5] = o->kind == MM_ATTN_LINEAR      ? o->feature_map
            : o->kind == MM_ATTN_SPARSE    ? o->sparse_pattern
            : o->kind == MM_ATTN_GATED     ? o->gate
            : o->kind == MM_ATTN_PERFORMER ? o->n_features
                                           : 0;
    ic[6] = o->kind == MM_ATTN_RELU2 || o->kind == MM_ATTN_GATED ? o->chunk
            : o->kind == MM_ATTN_SPARSE
                ? (o->sparse_pattern == MM_SPARSE_LOCAL ? o->window : o->stride)
                : 0;
    ic[7] = (int64_t)(o->seed & 0x7fffffffffffffffULL);
}

/* The options an icfg stands for (values clamped into the fields' types only to be refused). */
static int opts_of_icfg(const mmi_layer *l, mm_attn_opts *o)
{
    const int64_t k = KIND(l), v = VAR(l), a = AUX(l);
    const int32_t v32 = v < INT32_MIN || v > INT32_MAX ? INT32_MIN : (int32_t)v;
    int rc = mm_attn_opts_init(o, k >= MM_ATTN_SOFTMAX && k <= MM_ATTN_GATED ? (int32_t)k
                                                                             : MM_ATTN_SOFTMAX);
    o->kind = k < INT32_MIN || k > INT32_MAX ? INT32_MIN : (int32_t)k;
    o->n_heads = HEADS(l), o->d_head = DK(l), o->dv = DV(l);
    o->causal = l->icfg[4] < 0 || l->icfg[4] > 1 ? -1 : (int32_t)l->icfg[4];
    if (k == MM_ATTN_LINEAR) o->feature_map = v32;
    if (k == MM_ATTN_SPARSE) o->sparse_pattern = v32;
    if (k == MM_ATTN_GATED) o->gate = v32;
    if (k == MM_ATTN_PERFORMER) o->n_features = v;
    if (k == MM_ATTN_RELU2 || k == MM_ATTN_GATED) o->chunk = a;
    if (k == MM_ATTN_SPARSE) o->window = o->stride = a;
    o->seed = (uint64_t)l->icfg[7];
    return rc;
}

static int attn_check(const mmi_layer *l, mmi_err *e, const char *fn)
{
    static const char *const field[8] = {"kind",   "heads",   "d_head", "dv",
                                         "causal", "variant", "aux",    "seed"};
    mm_attn_opts in, o;
    mmi_err oe;
    int64_t ic[8];
    int rc;
    if (l->n_icfg != 8 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: attention config needs 8 integers", fn);
    oe.msg[0] = '\0';
    if ((rc = opts_of_icfg(l, &in)) != MM_OK || (rc = mmi_attn_opts_resolve(&o, &in, &oe)) != MM_OK)
        return mmi_fail(e, rc, "%s: attention config refused (%s)", fn, oe.msg);
    if (o.kind == MM_ATTN_RWKV6) /* its decays and bonus are inputs the block does not make */
        return mmi_fail(e, MM_E_INVALID_ARG,
                        "%s: MM_ATTN_RWKV6 takes w and u from the caller; "
                        "the attention block does not support it (use mm_attn)",
                        fn);
    /* Fields the kind does not use are 0, n_features is resolved: what the builder stores. */
    icfg_of_opts(&o, ic);
    for (int k = 0; k < 8; k++)
        if (ic[k] != l->icfg[k])
            return mmi_fail(e, MM_E_INVALID_ARG,
                            "%s: attention config %s is %lld; "
                            "mm_model_add_attention stores %lld for this kind",
                            fn, field[k], (long long)l->icfg[k], (long long)ic[k]);
    /* The block's own limits, narrower than mm_attn's. */
    if (HEADS(l) > 4096 || DK(l) > 4096 || DV(l) > MAX_DV)
        return mmi_fail(e, MM_E_RANGE,
                        "%s: attention block needs heads <= 4096, d_head <= "
                        "4096 and dv <= %d (got %lld, %lld, %lld)",
                        fn, MAX_DV, (long long)HEADS(l), (long long)DK(l), (long long)DV(l));
    return MM_OK;
}

static int attn_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    const int64_t d = l->in_dim;
    int64_t pw, aw;
    int rc;
    if ((rc = attn_check(l, e, fn)) != MM_OK) return rc;
    pw = pwidth(l), aw = awidth(l);
    l->out_dim = d;
    l->n_tensors = 4;
    memset(l->tensors, 0, sizeof l->tensors);
    tensor(l, 0, "in_proj_weight", pw, d, 0);
    tensor(l, 1, "in_proj_bias", pw, 0, pw * d);
    tensor(l, 2, "out_proj.weight", d, aw, pw * d + pw);
    tensor(l, 3, "out_proj.bias", d, 0, pw * d + pw + d * aw);
    l->n_params = pw * d + pw + d * aw + d;
    l->init_work = 0;
    return MM_OK;
}

static void attn_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    const int64_t d = l->in_dim, pw = pwidth(l), aw = awidth(l);
    const double bin = sqrt(6.0 / (double)(d + pw)), bout = 1.0 / sqrt((double)aw);
    (void)work;
    /* torch.nn.MultiheadAttention: xavier_uniform in_proj, zero biases, Linear-style out_proj */
    for (int64_t i = 0; i < pw * d; i++) p[i] = (float)(bin * (2.0 * mmi_rng_uniform(rng) - 1.0));
    memset(p + pw * d, 0, sizeof(float) * (size_t)pw);
    for (int64_t i = 0; i < d * aw; i++)
        p[pw * d + pw + i] = (float)(bout * (2.0 * mmi_rng_uniform(rng) - 1.0));
    memset(p + pw * d + pw + d * aw, 0, sizeof(float) * (size_t)d);
}

/* ---- pieces shared by forward, backward and jvp ---------------------------------------------- */
/* Rows [rows, pw] <-> per-head q, k, v [B, H, T, w]; dir 0 splits, 1 merges (overwrites). */
static void heads_io(const mmi_layer *l, const mmi_exec *c, float *pr, float *qh, float *kh,
                     float *vh, int dir)
{
    const int64_t H = HEADS(l), dk = DK(l), dv = DV(l), pw = pwidth(l), T = c->seq;
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t t = 0; t < T; t++) {
            float *row = pr + (b * T + t) * pw;
            for (int64_t h = 0; h < H; h++) {
                const int64_t hi = (b * H + h) * T + t;
                float *parts[3] = {qh + hi * dk, kh + hi * dk, vh + hi * dv};
                const int64_t w[3] = {dk, dk, dv},
                              at[3] = {h * dk, H * dk + h * dk, 2 * H * dk + h * dv};
                for (int p = 0; p < 3; p++) {
                    if (dir == 0)
                        memcpy(parts[p], row + at[p], sizeof(float) * (size_t)w[p]);
                    else
                        memcpy(row + at[p], parts[p], sizeof(float) * (size_t)w[p]);
                }
            }
        }
}

/* Per-head outputs [B, H, T, dv] <-> rows [rows, H dv]. */
static void merge_o(const mmi_layer *l, const mmi_exec *c, float *oh, float *am, int dir)
{
    const int64_t H = HEADS(l), dv = DV(l), T = c->seq;
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                float *r = am + (b * T + t) * H * dv + h * dv, *o = oh + ((b * H + h) * T + t) * dv;
                if (dir == 0)
                    memcpy(r, o, sizeof(float) * (size_t)dv);
                else
                    memcpy(o, r, sizeof(float) * (size_t)dv);
            }
}

/* Per-head gates of the block: RetNet decay or none. */
static const float *head_gate(const mmi_layer *l, const fbuf *f, int64_t bh)
{
    return KIND(l) == MM_ATTN_GATED && VAR(l) == MM_GATE_RETNET ? f->lg + bh % HEADS(l) : NULL;
}

static int attn_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                        float *y, void *saved, void *scratch)
{
    const int64_t d = l->in_dim, pw = pwidth(l), aw = awidth(l), T = c->seq, nf = n_feat(l);
    const int64_t bh = c->batch * HEADS(l), dk = DK(l), dv = DV(l);
    const float *w_in = p, *b_in = p + pw * d, *w_out = b_in + pw, *b_out = w_out + d * aw;
    fbuf f;
    sbuf s;
    mmi_attn_head a;
    buffers(l, c, saved, scratch, &f, &s);
    if (KIND(l) == MM_ATTN_PERFORMER) { /* the projection is a function of the seed */
        mmi_rng rng;
        mmi_rng_seed(&rng, SEED(l));
        mmi_attn_draw_projection(&rng, dk, nf, f.proj, s.draw);
        for (int64_t r = 0; r < nf; r++)
            for (int64_t e = 0; e < dk; e++) f.projt[e * nf + r] = f.proj[r * dk + e];
    }
    for (int64_t h = 0; h < HEADS(l); h++)
        f.lg[h] = (float)log1p(-ldexp(1.0, -5 - (int)(h < 60 ? h : 60)));
    mmi_layernorm_rows_fwd(c->rows, d, LN_EPS, x, f.xn, f.stats);
    mmi_gemm(0, 1, c->rows, pw, d, 1.0f, f.xn, d, w_in, d, 0.0f, f.pr, pw, c->gemm_ws, c->pool);
    mmi_add_rows(f.pr, b_in, c->rows, pw);
    heads_io(l, c, f.pr, f.qh, f.kh, f.vh, 0);
    a = head_of(l, T, f.proj, f.projt);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_fwd(&a, f.qh + i * T * dk, f.kh + i * T * dk, f.vh + i * T * dv,
                          head_gate(l, &f, i), f.fq ? f.fq + i * T * nf : NULL,
                          f.fk ? f.fk + i * T * nf : NULL, f.oh + i * T * dv, f.row + i * T,
                          f.stab + i, s.ws);
    merge_o(l, c, f.oh, f.am, 0);
    mmi_gemm(0, 1, c->rows, d, aw, 1.0f, f.am, aw, w_out, aw, 0.0f, y, d, c->gemm_ws, c->pool);
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < d; i++) y[r * d + i] += x[r * d + i] + b_out[i];
    return MM_OK;
}

/* gb[0..n) += column sums of m [rows, n] into g (float64 sums). */
static void add_colsum(const float *m, int64_t rows, int64_t n, double *acc, float *g)
{
    for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
    mmi_colsum_f64(m, rows, n, acc);
    for (int64_t j = 0; j < n; j++) g[j] += (float)acc[j];
}

static void attn_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                          const float *y, const void *saved, const float *dy, float *dx, float *g,
                          void *scratch)
{
    const int64_t d = l->in_dim, pw = pwidth(l), aw = awidth(l), T = c->seq, nf = n_feat(l);
    const int64_t bh = c->batch * HEADS(l), dk = DK(l), dv = DV(l);
    const float *w_in = p, *w_out = p + pw * d + pw;
    fbuf f;
    sbuf s;
    mmi_attn_head a;
    (void)x, (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    a = head_of(l, T, f.proj, f.projt);
    /* through the output projection */
    mmi_gemm(0, 0, c->rows, aw, d, 1.0f, dy, d, w_out, aw, 0.0f, s.tam, aw, c->gemm_ws, c->pool);
    if (g) {
        mmi_gemm(1, 0, d, aw, c->rows, 1.0f, dy, d, f.am, aw, 1.0f, g + pw * d + pw, aw, c->gemm_ws,
                 c->pool);
        add_colsum(dy, c->rows, d, s.gb, g + pw * d + pw + d * aw);
    }
    merge_o(l, c, s.doh, s.tam, 1);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_bwd(&a, f.qh + i * T * dk, f.kh + i * T * dk, f.vh + i * T * dv,
                          head_gate(l, &f, i), f.fq ? f.fq + i * T * nf : NULL,
                          f.fk ? f.fk + i * T * nf : NULL, f.oh + i * T * dv, f.row + i * T,
                          s.doh + i * T * dv, s.dqh + i * T * dk, s.dkh + i * T * dk,
                          s.dvh + i * T * dv, NULL, s.ws);
    heads_io(l, c, s.dpr, s.dqh, s.dkh, s.dvh, 1);
    if (g) {
        mmi_gemm(1, 0, pw, d, c->rows, 1.0f, s.dpr, pw, f.xn, d, 1.0f, g, d, c->gemm_ws, c->pool);
        add_colsum(s.dpr, c->rows, pw, s.gb, g + pw * d);
    }
    if (!dx) return;
    mmi_gemm(0, 0, c->rows, d, pw, 1.0f, s.dpr, pw, w_in, d, 0.0f, s.dxn, d, c->gemm_ws, c->pool);
    memcpy(dx, dy, sizeof(float) * (size_t)(c->rows * d)); /* the residual */
    mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, s.dxn, dx, 1);
}

static void attn_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                     const float *x, const float *tx, const float *y, const void *saved, float *ty,
                     void *scratch)
{
    const int64_t d = l->in_dim, pw = pwidth(l), aw = awidth(l), T = c->seq;
    const int64_t bh = c->batch * HEADS(l), dk = DK(l), dv = DV(l);
    const float *w_in = p, *w_out = p + pw * d + pw;
    const float *vw_in = v, *vb_in = v + pw * d, *vw_out = vb_in + pw, *vb_out = vw_out + d * aw;
    fbuf f;
    sbuf s;
    mmi_attn_head a;
    (void)x, (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    a = head_of(l, T, f.proj, f.projt);
    /* tangent of the projection: xn vW^T + vb + txn W^T */
    mmi_gemm(0, 1, c->rows, pw, d, 1.0f, f.xn, d, vw_in, d, 0.0f, s.dpr, pw, c->gemm_ws, c->pool);
    mmi_add_rows(s.dpr, vb_in, c->rows, pw);
    if (tx) {
        mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, tx, s.dxn, 0);
        mmi_gemm(0, 1, c->rows, pw, d, 1.0f, s.dxn, d, w_in, d, 1.0f, s.dpr, pw, c->gemm_ws,
                 c->pool);
    }
    heads_io(l, c, s.dpr, s.dqh, s.dkh, s.dvh, 0);
    for (int64_t i = 0; i < bh; i++)
        mmi_attn_head_jvp(&a, f.qh + i * T * dk, f.kh + i * T * dk, f.vh + i * T * dv,
                          head_gate(l, &f, i), f.stab[i], s.dqh + i * T * dk, s.dkh + i * T * dk,
                          s.dvh + i * T * dv, s.doh + i * T * dv, s.ws);
    merge_o(l, c, s.doh, s.tam, 0);
    /* ty = tx + am vW_out^T + vb_out + tam W_out^T */
    mmi_gemm(0, 1, c->rows, d, aw, 1.0f, f.am, aw, vw_out, aw, 0.0f, ty, d, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, c->rows, d, aw, 1.0f, s.tam, aw, w_out, aw, 1.0f, ty, d, c->gemm_ws, c->pool);
    mmi_add_rows(ty, vb_out, c->rows, d);
    if (tx)
        for (int64_t i = 0; i < c->rows * d; i++) ty[i] += tx[i];
}

const mmi_layer_vt mmi_layer_attention_vt = {
    "attention", MMI_LAYER_ATTENTION, attn_setup,    attn_sizes,
    attn_init,   attn_forward,        attn_backward, attn_jvp,
};

MM_API int mm_model_add_attention(mm_model *m, const mm_attn_opts *opts)
{
    static const char fn[] = "mm_model_add_attention";
    mm_attn_opts o;
    int64_t ic[8];
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if ((rc = mmi_attn_opts_resolve(&o, opts, &m->err)) != MM_OK) return rc;
    icfg_of_opts(&o, ic);
    return mmi_model_add_layer(m, "attention", ic, 8, NULL, 0, fn);
}
