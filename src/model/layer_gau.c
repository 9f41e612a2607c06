/* SPDX-License-Identifier: MIT */
/* layer_gau.c — the GAU block of "Transformer Quality in Linear Time" (Hua et al. 2022):
 *   xn = LN(x),  [U | V | Z] = SiLU(xn W^T + b),  q = Z gamma_q + beta_q,  k = Z gamma_k + beta_k
 *   y = x + (U * relu2attn(q, k, V)) W_o^T
 * with the squared-ReLU attention of mm_attn (one chunk: relu(q k^T / T)^2 V; shorter chunks:
 * FLASH's mixed chunk attention). One shared Z feeds both q and k through per-dimension scales
 * and offsets, as the paper's GAU. Exact backward; JVP through the dense relu2 form. */
#include "../attn/mmi_attn.h"
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: B batch, T sequence, d d_model (in_dim), e expansion width (U, V), sd shared q/k
 * width (Z), w3 = 2e + sd (the [U | V | Z] projection); rows = B x T. */
#define EXP(l)    ((l)->icfg[0])
#define SDIM(l)   ((l)->icfg[1])
#define CAUSAL(l) ((int32_t)(l)->icfg[2])
#define CHUNK(l)  ((l)->icfg[3])
#define W3(l)     (2 * EXP(l) + SDIM(l))
#define LN_EPS    1e-5

static mmi_attn_head head_of(const mmi_layer *l, int64_t t)
{
    mmi_attn_head a;
    memset(&a, 0, sizeof a);
    a.kind = MM_ATTN_RELU2;
    a.s.n = a.s.m = t, a.s.d = SDIM(l), a.s.dv = EXP(l);
    a.s.scale = 1.0f;
    a.s.causal = CAUSAL(l);
    a.s.chunk = CHUNK(l);
    a.nf = SDIM(l);
    return a;
}

typedef struct gbuf {
    double *stats;
    float *xn, *h, *a, *q, *k, *v, *ao, *gated;
} gbuf;
typedef struct gscr {
    float *ws, *dg, *dao, *dq, *dk, *dv, *da, *dxn;
    double *acc;
} gscr;
static void layout(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, gbuf *f, gscr *s)
{
    /* counts through mmi_sz_mul like every layout (an overflow saturates; finalize refuses) */
    const int64_t rows = mmi_sz_mul(b, t), e = EXP(l), sd = SDIM(l), w3 = W3(l);
    f->stats = (double *)mmi_carve_take(y, mmi_sz_mul(2, rows), sizeof(double));
    f->xn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    f->h = (float *)mmi_carve_take(y, mmi_sz_mul(rows, w3), 4);
    f->a = (float *)mmi_carve_take(y, mmi_sz_mul(rows, w3), 4);
    f->q = (float *)mmi_carve_take(y, mmi_sz_mul(rows, sd), 4);
    f->k = (float *)mmi_carve_take(y, mmi_sz_mul(rows, sd), 4);
    f->v = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    f->ao = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    f->gated = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    if (!s) return;
    {
        const mmi_attn_head a = head_of(l, t);
        const int64_t w1 = mmi_sz_of(mmi_attn_head_ws_floats(&a, t)),
                      w2 = mmi_sz_of(mmi_attn_head_jvp_ws_floats(&a, t));
        s->ws = (float *)mmi_carve_take(y, w1 < 0 || w2 < 0 ? MMI_SIZE_BAD : w1 > w2 ? w1 : w2, 4);
    }
    s->dg = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    s->dao = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    s->dq = (float *)mmi_carve_take(y, mmi_sz_mul(rows, sd), 4);
    s->dk = (float *)mmi_carve_take(y, mmi_sz_mul(rows, sd), 4);
    s->dv = (float *)mmi_carve_take(y, mmi_sz_mul(rows, e), 4);
    s->da = (float *)mmi_carve_take(y, mmi_sz_mul(rows, w3), 4);
    s->dxn = (float *)mmi_carve_take(y, mmi_sz_mul(rows, l->in_dim), 4);
    s->acc = (double *)mmi_carve_take(y, w3 > l->in_dim ? w3 : l->in_dim, sizeof(double));
}

static void gau_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                      size_t *scratch, int *gemm_ws)
{
    mmi_carve y = mmi_carve_measure();
    gbuf f;
    gscr s;
    layout(l, batch, seq, &y, &f, NULL);
    *saved = y.off;
    layout(l, batch, seq, &y, &f, &s); /* scratch: a forward region (infer) then the rest */
    *scratch = y.off;
    *gemm_ws = 1;
}

static void buffers(const mmi_layer *l, const mmi_exec *c, const void *saved, void *scratch,
                    gbuf *f, gscr *s)
{
    mmi_carve y = mmi_carve_at(scratch, SIZE_MAX);
    gbuf fs;
    layout(l, c->batch, c->seq, &y, &fs, NULL);
    layout(l, c->batch, c->seq, &y, &fs, s);
    if (saved) {
        mmi_carve z = mmi_carve_at((void *)(uintptr_t)saved, SIZE_MAX);
        layout(l, c->batch, c->seq, &z, f, NULL);
    } else {
        mmi_carve z = mmi_carve_at(scratch, SIZE_MAX);
        layout(l, c->batch, c->seq, &z, f, NULL);
    }
}

static void tensor(mmi_layer *l, int i, const char *name, int64_t r, int64_t c, int64_t off)
{
    mmi_layer_set_tensor(l, i, name, c ? 2 : 1, r, c, 0, off);
}

static int gau_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    const int64_t d = l->in_dim;
    if (l->n_icfg != 4 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: GAU config needs 4 integers", fn);
    if (EXP(l) < 1 || EXP(l) > 1024 || SDIM(l) < 1 || SDIM(l) > 4096 || CHUNK(l) < 1 ||
        (CAUSAL(l) != 0 && CAUSAL(l) != 1))
        return mmi_fail(e, MM_E_INVALID_ARG,
                        "%s: bad GAU config (expansion %lld <= 1024, "
                        "qk_dim %lld, causal %lld, chunk %lld)",
                        fn, (long long)EXP(l), (long long)SDIM(l), (long long)CAUSAL(l),
                        (long long)CHUNK(l));
    l->out_dim = d;
    l->n_tensors = 4;
    memset(l->tensors, 0, sizeof l->tensors);
    tensor(l, 0, "uvz.weight", W3(l), d, 0);
    tensor(l, 1, "uvz.bias", W3(l), 0, W3(l) * d);
    tensor(l, 2, "qk", 4, SDIM(l), W3(l) * d + W3(l));
    tensor(l, 3, "out.weight", d, EXP(l), W3(l) * d + W3(l) + 4 * SDIM(l));
    l->n_params = W3(l) * d + W3(l) + 4 * SDIM(l) + d * EXP(l);
    l->init_work = 0;
    return MM_OK;
}

static void gau_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    const int64_t d = l->in_dim, w3 = W3(l), sd = SDIM(l), e = EXP(l);
    const double bi = 1.0 / sqrt((double)d), bo = 1.0 / sqrt((double)e);
    float *qk = p + w3 * d + w3, *wo = qk + 4 * sd;
    (void)work;
    for (int64_t i = 0; i < w3 * d + w3; i++)
        p[i] = (float)(bi * (2.0 * mmi_rng_uniform(rng) - 1.0));
    for (int64_t i = 0; i < 2 * sd; i++) qk[i] = (float)(0.02 * mmi_rng_normal(rng));
    memset(qk + 2 * sd, 0, sizeof(float) * (size_t)(2 * sd));
    for (int64_t i = 0; i < d * e; i++) wo[i] = (float)(bo * (2.0 * mmi_rng_uniform(rng) - 1.0));
}

/* q = Z gamma_q + beta_q, k = Z gamma_k + beta_k (qk = [gamma_q; gamma_k; beta_q; beta_k]);
 * V copied out of the activations so each batch's rows are contiguous for the kernel. */
static void make_qkv(const mmi_layer *l, int64_t rows, const float *a, const float *qk, float *q,
                     float *k, float *v)
{
    const int64_t e = EXP(l), sd = SDIM(l), w3 = W3(l);
    for (int64_t r = 0; r < rows; r++) {
        const float *z = a + r * w3 + 2 * e;
        memcpy(v + r * e, a + r * w3 + e, sizeof(float) * (size_t)e);
        for (int64_t c = 0; c < sd; c++) {
            q[r * sd + c] = z[c] * qk[c] + qk[2 * sd + c];
            k[r * sd + c] = z[c] * qk[sd + c] + qk[3 * sd + c];
        }
    }
}

static int gau_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                       float *y, void *saved, void *scratch)
{
    const int64_t d = l->in_dim, e = EXP(l), sd = SDIM(l), w3 = W3(l), T = c->seq;
    const float *w = p, *b = p + w3 * d, *qk = b + w3, *wo = qk + 4 * sd;
    const mmi_attn_head a = head_of(l, T);
    gbuf f;
    gscr s;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_layernorm_rows_fwd(c->rows, d, LN_EPS, x, f.xn, f.stats);
    mmi_gemm(0, 1, c->rows, w3, d, 1.0f, f.xn, d, w, d, 0.0f, f.h, w3, c->gemm_ws, c->pool);
    mmi_add_rows(f.h, b, c->rows, w3);
    mmi_act_forward(MM_ACT_SILU, f.h, f.a, c->rows * w3);
    make_qkv(l, c->rows, f.a, qk, f.q, f.k, f.v);
    for (int64_t bi = 0; bi < c->batch; bi++)
        mmi_attn_head_fwd(&a, f.q + bi * T * sd, f.k + bi * T * sd, f.v + bi * T * e, NULL, NULL,
                          NULL, f.ao + bi * T * e, NULL, NULL, s.ws);
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < e; j++) f.gated[r * e + j] = f.a[r * w3 + j] * f.ao[r * e + j];
    mmi_gemm(0, 1, c->rows, d, e, 1.0f, f.gated, e, wo, e, 0.0f, y, d, c->gemm_ws, c->pool);
    for (int64_t i = 0; i < c->rows * d; i++) y[i] += x[i];
    return MM_OK;
}

static void gau_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         const float *y, const void *saved, const float *dy, float *dx, float *g,
                         void *scratch)
{
    const int64_t d = l->in_dim, e = EXP(l), sd = SDIM(l), w3 = W3(l), T = c->seq;
    const float *w = p, *qk = p + w3 * d + w3, *wo = qk + 4 * sd;
    const mmi_attn_head a = head_of(l, T);
    gbuf f;
    gscr s;
    (void)x, (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_gemm(0, 0, c->rows, e, d, 1.0f, dy, d, wo, e, 0.0f, s.dg, e, c->gemm_ws, c->pool);
    if (g)
        mmi_gemm(1, 0, d, e, c->rows, 1.0f, dy, d, f.gated, e, 1.0f, g + w3 * d + w3 + 4 * sd, e,
                 c->gemm_ws, c->pool);
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < e; j++) {
            s.da[r * w3 + j] = s.dg[r * e + j] * f.ao[r * e + j]; /* dU */
            s.dao[r * e + j] = s.dg[r * e + j] * f.a[r * w3 + j]; /* d attention output */
        }
    for (int64_t bi = 0; bi < c->batch; bi++)
        mmi_attn_head_bwd(&a, f.q + bi * T * sd, f.k + bi * T * sd, f.v + bi * T * e, NULL, NULL,
                          NULL, f.ao + bi * T * e, NULL, s.dao + bi * T * e, s.dq + bi * T * sd,
                          s.dk + bi * T * sd, s.dv + bi * T * e, NULL, s.ws);
    if (g) { /* d gamma, d beta */
        float *gq = g + w3 * d + w3;
        for (int64_t cc = 0; cc < sd; cc++) {
            double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int64_t r = 0; r < c->rows; r++) {
                const double z = f.a[r * w3 + 2 * e + cc];
                a0 += s.dq[r * sd + cc] * z, a1 += s.dk[r * sd + cc] * z;
                a2 += s.dq[r * sd + cc], a3 += s.dk[r * sd + cc];
            }
            gq[cc] += (float)a0, gq[sd + cc] += (float)a1, gq[2 * sd + cc] += (float)a2,
                gq[3 * sd + cc] += (float)a3;
        }
    }
    for (int64_t r = 0; r < c->rows; r++) {
        memcpy(s.da + r * w3 + e, s.dv + r * e, sizeof(float) * (size_t)e); /* dV */
        for (int64_t cc = 0; cc < sd; cc++)                                 /* dZ */
            s.da[r * w3 + 2 * e + cc] =
                s.dq[r * sd + cc] * qk[cc] + s.dk[r * sd + cc] * qk[sd + cc];
    }
    mmi_act_backward(MM_ACT_SILU, f.h, f.a, s.da, s.da, c->rows * w3);
    if (g) {
        mmi_gemm(1, 0, w3, d, c->rows, 1.0f, s.da, w3, f.xn, d, 1.0f, g, d, c->gemm_ws, c->pool);
        for (int64_t j = 0; j < w3; j++) s.acc[j] = 0.0;
        mmi_colsum_f64(s.da, c->rows, w3, s.acc);
        for (int64_t j = 0; j < w3; j++) g[w3 * d + j] += (float)s.acc[j];
    }
    if (!dx) return;
    mmi_gemm(0, 0, c->rows, d, w3, 1.0f, s.da, w3, w, d, 0.0f, s.dxn, d, c->gemm_ws, c->pool);
    memcpy(dx, dy, sizeof(float) * (size_t)(c->rows * d));
    mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, s.dxn, dx, 1);
}

static void gau_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                    const float *x, const float *tx, const float *y, const void *saved, float *ty,
                    void *scratch)
{
    const int64_t d = l->in_dim, e = EXP(l), sd = SDIM(l), w3 = W3(l), T = c->seq;
    const float *w = p, *qk = p + w3 * d + w3, *wo = qk + 4 * sd;
    const float *vw = v, *vb = v + w3 * d, *vqk = vb + w3, *vwo = vqk + 4 * sd;
    const mmi_attn_head a = head_of(l, T);
    gbuf f;
    gscr s;
    (void)x, (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    /* tangent pre-activation, then through SiLU (its backward is also the forward-mode rule) */
    mmi_gemm(0, 1, c->rows, w3, d, 1.0f, f.xn, d, vw, d, 0.0f, s.da, w3, c->gemm_ws, c->pool);
    mmi_add_rows(s.da, vb, c->rows, w3);
    if (tx) {
        mmi_layernorm_rows_lin(c->rows, d, f.xn, f.stats, tx, s.dxn, 0);
        mmi_gemm(0, 1, c->rows, w3, d, 1.0f, s.dxn, d, w, d, 1.0f, s.da, w3, c->gemm_ws, c->pool);
    }
    mmi_act_backward(MM_ACT_SILU, f.h, f.a, s.da, s.da, c->rows * w3);
    for (int64_t r = 0; r < c->rows; r++) {
        const float *z = f.a + r * w3 + 2 * e, *tz = s.da + r * w3 + 2 * e;
        memcpy(s.dv + r * e, s.da + r * w3 + e, sizeof(float) * (size_t)e);
        for (int64_t cc = 0; cc < sd; cc++) {
            s.dq[r * sd + cc] = tz[cc] * qk[cc] + z[cc] * vqk[cc] + vqk[2 * sd + cc];
            s.dk[r * sd + cc] = tz[cc] * qk[sd + cc] + z[cc] * vqk[sd + cc] + vqk[3 * sd + cc];
        }
    }
    for (int64_t bi = 0; bi < c->batch; bi++)
        mmi_attn_head_jvp(&a, f.q + bi * T * sd, f.k + bi * T * sd, f.v + bi * T * e, NULL, 0.0f,
                          s.dq + bi * T * sd, s.dk + bi * T * sd, s.dv + bi * T * e,
                          s.dao + bi * T * e, s.ws);
    for (int64_t r = 0; r < c->rows; r++) /* tangent of U * A */
        for (int64_t j = 0; j < e; j++)
            s.dg[r * e + j] =
                s.da[r * w3 + j] * f.ao[r * e + j] + f.a[r * w3 + j] * s.dao[r * e + j];
    mmi_gemm(0, 1, c->rows, d, e, 1.0f, f.gated, e, vwo, e, 0.0f, ty, d, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, c->rows, d, e, 1.0f, s.dg, e, wo, e, 1.0f, ty, d, c->gemm_ws, c->pool);
    if (tx)
        for (int64_t i = 0; i < c->rows * d; i++) ty[i] += tx[i];
}

const mmi_layer_vt mmi_layer_gau_vt = {
    "gau", MMI_LAYER_GAU, gau_setup, gau_sizes, gau_init, gau_forward, gau_backward, gau_jvp,
};

MM_API int mm_model_add_gau(mm_model *m, int64_t expansion, int64_t qk_dim, int32_t causal,
                            int64_t chunk)
{
    int64_t ic[4];
    if (!m) return MM_E_INVALID_ARG;
    if (expansion < 0 || qk_dim < 0 || chunk < 0)
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "mm_model_add_gau: sizes must be >= 0");
    ic[0] = expansion ? expansion : 2 * mmi_model_out_dim(m);
    ic[1] = qk_dim ? qk_dim : 128;
    ic[2] = causal;
    ic[3] = chunk ? chunk : 256;
    return mmi_model_add_layer(m, "gau", ic, 4, NULL, 0, "mm_model_add_gau");
}
