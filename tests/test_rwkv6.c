/* SPDX-License-Identifier: MIT */
/* test_rwkv6.c — MM_ATTN_RWKV6 (RWKV-6 time mixing) against a float64 recurrence written here
 * the way ggml's rwkv_wkv6 states it (read S_{t-1} and the bonus, then decay and add k v^T):
 * the forward at several chunk sizes and decay strengths, every gradient (r, k, v, w, u)
 * against float64 central differences of that recurrence, streaming against the forward, bad
 * inputs, no allocation after create and thread determinism. */
#include "runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rcfg {
    int64_t b, h, n, d, dv, chunk;
    double scale;
    float wlo; /* log-decays drawn in (wlo, -0.001) */
} rcfg;

/* One problem: inputs, output and gradients as tensors. */
typedef struct rrun {
    mm_attn *h;
    mm_tensor *r, *k, *v, *w, *u, *o, *dout, *dr, *dk, *dv, *dw, *du;
} rrun;

static mm_tensor *tn(int nd, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = {a, b, c, d};
    mm_tensor *t = NULL;
    CHECK_OK(mm_tensor_create(&t, nd, s, NULL));
    return t;
}

/* ---- the float64 reference ------------------------------------------------------------------ */
/* o_t = scale r_t^T (S + diag(u) k_t v_t^T), then S = diag(e^{w_t}) S + k_t v_t^T, per head. */
static void ref_rwkv6(const rcfg *c, const double *r, const double *k, const double *v,
                      const double *w, const double *u, double *o)
{
    const int64_t n = c->n, d = c->d, dv = c->dv;
    double *st = malloc(sizeof(double) * (size_t)(d * dv));
    for (int64_t bh = 0; bh < c->b * c->h; bh++) {
        const double *uh = u + (bh % c->h) * d;
        memset(st, 0, sizeof(double) * (size_t)(d * dv));
        for (int64_t t = 0; t < n; t++) {
            const double *rt = r + (bh * n + t) * d, *kt = k + (bh * n + t) * d;
            const double *vt = v + (bh * n + t) * dv, *wt = w + (bh * n + t) * d;
            double *ot = o + (bh * n + t) * dv;
            for (int64_t e = 0; e < dv; e++) {
                double acc = 0;
                for (int64_t i = 0; i < d; i++)
                    acc += rt[i] * (st[i * dv + e] + uh[i] * kt[i] * vt[e]);
                ot[e] = c->scale * acc;
            }
            for (int64_t i = 0; i < d; i++)
                for (int64_t e = 0; e < dv; e++)
                    st[i * dv + e] = exp(wt[i]) * st[i * dv + e] + kt[i] * vt[e];
        }
    }
    free(st);
}

static double *f64_of(const mm_tensor *t)
{
    const int64_t n = mm_tensor_numel(t);
    double *x = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = mm_tensor_data((mm_tensor *)t)[i];
    return x;
}

static int make(const rcfg *c, int32_t threads, const mm_allocator *al, mm_attn **h)
{
    mm_attn_opts o;
    int rc;
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_RWKV6));
    o.alloc = al;
    o.d_head = c->d, o.dv = c->dv, o.n_heads = c->h, o.max_batch = c->b, o.max_seq = c->n;
    o.chunk = c->chunk, o.n_threads = threads;
    if ((rc = mm_attn_create(h, &o)) != MM_OK) return rc;
    CHECK_OK(mm_attn_set_f64(*h, MM_ATTN_SCALE, c->scale));
    return MM_OK;
}

static void open_run(rrun *x, const rcfg *c, uint64_t seed)
{
    memset(x, 0, sizeof *x);
    CHECK_OK(make(c, 1, NULL, &x->h));
    x->r = tn(4, c->b, c->h, c->n, c->d), x->k = tn(4, c->b, c->h, c->n, c->d);
    x->v = tn(4, c->b, c->h, c->n, c->dv), x->w = tn(4, c->b, c->h, c->n, c->d);
    x->u = tn(2, c->h, c->d, 0, 0), x->o = tn(4, c->b, c->h, c->n, c->dv);
    x->dout = tn(4, c->b, c->h, c->n, c->dv), x->dr = tn(4, c->b, c->h, c->n, c->d);
    x->dk = tn(4, c->b, c->h, c->n, c->d), x->dv = tn(4, c->b, c->h, c->n, c->dv);
    x->dw = tn(4, c->b, c->h, c->n, c->d), x->du = tn(2, c->h, c->d, 0, 0);
    mmt_fill_uniform(mm_tensor_data(x->r), mm_tensor_numel(x->r), seed, -1, 1);
    mmt_fill_uniform(mm_tensor_data(x->k), mm_tensor_numel(x->k), seed + 1, -1, 1);
    mmt_fill_uniform(mm_tensor_data(x->v), mm_tensor_numel(x->v), seed + 2, -1, 1);
    mmt_fill_uniform(mm_tensor_data(x->w), mm_tensor_numel(x->w), seed + 3, c->wlo, -0.001f);
    mmt_fill_uniform(mm_tensor_data(x->u), mm_tensor_numel(x->u), seed + 4, -1, 1);
    mmt_fill_uniform(mm_tensor_data(x->dout), mm_tensor_numel(x->dout), seed + 5, -1, 1);
}

static void close_run(rrun *x)
{
    mm_tensor *all[] = {x->r,    x->k,  x->v,  x->w,  x->u,  x->o,
                        x->dout, x->dr, x->dk, x->dv, x->dw, x->du};
    mm_attn_free(x->h);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mm_tensor_free(all[i]);
}

/* max |got - want| / max |want| */
static double norm_err(const float *got, const double *want, int64_t n)
{
    double e = 0, m = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        const double a = fabs(got[i] - want[i]);
        e = a > e ? a : e;
        m = fabs(want[i]) > m ? fabs(want[i]) : m;
    }
    return e / m;
}

static double check_fwd(const rcfg *c, uint64_t seed)
{
    rrun x;
    double *r, *k, *v, *w, *u, *o, err;
    open_run(&x, c, seed);
    CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
    r = f64_of(x.r), k = f64_of(x.k), v = f64_of(x.v), w = f64_of(x.w), u = f64_of(x.u);
    o = malloc(sizeof(double) * (size_t)mm_tensor_numel(x.o));
    ref_rwkv6(c, r, k, v, w, u, o);
    err = norm_err(mm_tensor_data(x.o), o, mm_tensor_numel(x.o));
    free(r), free(k), free(v), free(w), free(u), free(o);
    close_run(&x);
    return err;
}

static void test_rwkv6_forward(void)
{
    const rcfg cases[] = {
        {2, 3, 37, 8, 5, 8, 1.0, -3.0f},     /* several chunks and a partial one */
        {1, 2, 1, 4, 3, 64, 1.0, -1.0f},     /* one token: the bonus alone */
        {1, 2, 2, 4, 3, 1, 0.5, -1.0f},      /* chunk 1, a query scale */
        {1, 2, 150, 16, 12, 64, 1.0, -0.2f}, /* mild decays: GEMM-tiled chunks */
        {1, 1, 130, 8, 8, 64, 1.0, -40.0f},  /* strong decays: sub-chunk path */
        {2, 1, 70, 72, 9, 32, 1.0, -2.0f},   /* d wider than a SIMD block */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const double e = check_fwd(&cases[i], 10 + i);
        if (!(e <= 1e-5)) mmt_fail(__FILE__, __LINE__, "case %zu: forward error %.3g", i, e);
    }
}

/* ---- gradients against float64 central differences ----------------------------------------- */
static double loss(const rcfg *c, const double *r, const double *k, const double *v,
                   const double *w, const double *u, const float *dout, double *o)
{
    double s = 0;
    ref_rwkv6(c, r, k, v, w, u, o);
    for (int64_t i = 0; i < c->b * c->h * c->n * c->dv; i++) s += o[i] * dout[i];
    return s;
}

typedef struct fdin {
    const rcfg *c;
    double *r, *k, *v, *w, *u, *o;
    const float *dout;
} fdin;

static void fd_one(const fdin *f, const char *name, double *x, int64_t n, const float *grad)
{
    const double hstep = 1e-6;
    double worst = 0, gmax = 1e-30;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) gmax = fabs(grad[i]) > gmax ? fabs(grad[i]) : gmax;
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i];
        double lp, lm, e;
        x[i] = x0 + hstep;
        lp = loss(f->c, f->r, f->k, f->v, f->w, f->u, f->dout, f->o);
        x[i] = x0 - hstep;
        lm = loss(f->c, f->r, f->k, f->v, f->w, f->u, f->dout, f->o);
        x[i] = x0;
        /* error relative to the largest gradient of the tensor (float32 sums of many terms) */
        e = fabs((lp - lm) / (2 * hstep) - grad[i]) / gmax;
        if (e > worst) worst = e, at = i;
    }
    if (!(worst <= 1e-5))
        mmt_fail(__FILE__, __LINE__, "d%s[%lld] off by %.3g of max |d%s|", name, (long long)at,
                 worst, name);
}

static void check_grads(const rcfg *c, uint64_t seed)
{
    rrun x;
    fdin f;
    open_run(&x, c, seed);
    CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
    CHECK_OK(mm_attn_backward_rwkv6(x.h, x.dout, x.dr, x.dk, x.dv, x.dw, x.du));
    f.c = c, f.r = f64_of(x.r), f.k = f64_of(x.k), f.v = f64_of(x.v), f.w = f64_of(x.w);
    f.u = f64_of(x.u), f.dout = mm_tensor_data(x.dout);
    f.o = malloc(sizeof(double) * (size_t)mm_tensor_numel(x.o));
    fd_one(&f, "r", f.r, mm_tensor_numel(x.r), mm_tensor_data(x.dr));
    fd_one(&f, "k", f.k, mm_tensor_numel(x.k), mm_tensor_data(x.dk));
    fd_one(&f, "v", f.v, mm_tensor_numel(x.v), mm_tensor_data(x.dv));
    fd_one(&f, "w", f.w, mm_tensor_numel(x.w), mm_tensor_data(x.dw));
    fd_one(&f, "u", f.u, mm_tensor_numel(x.u), mm_tensor_data(x.du));
    { /* mm_attn_backward gives the same dr, dk, dv, dw (dg = dw) without du */
        mm_tensor *dr2 = tn(4, c->b, c->h, c->n, c->d), *dw2 = tn(4, c->b, c->h, c->n, c->d);
        CHECK_OK(mm_attn_backward(x.h, x.dout, dr2, NULL, NULL, dw2));
        CHECK(!memcmp(mm_tensor_data(dr2), mm_tensor_data(x.dr),
                      sizeof(float) * (size_t)mm_tensor_numel(dr2)));
        CHECK(!memcmp(mm_tensor_data(dw2), mm_tensor_data(x.dw),
                      sizeof(float) * (size_t)mm_tensor_numel(dw2)));
        mm_tensor_free(dr2), mm_tensor_free(dw2);
    }
    free(f.r), free(f.k), free(f.v), free(f.w), free(f.u), free(f.o);
    close_run(&x);
}

static void test_rwkv6_grad(void)
{
    const rcfg cases[] = {
        {2, 2, 21, 5, 4, 8, 1.0, -3.0f},   /* batch 2: du sums over it */
        {1, 1, 1, 3, 2, 64, 1.0, -1.0f},   /* one token */
        {1, 2, 40, 4, 3, 16, 0.7, -0.1f},  /* mild chunks, scaled r */
        {1, 1, 33, 4, 3, 16, 1.0, -30.0f}, /* strong decays */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_grads(&cases[i], 40 + i);
}

/* ---- streaming equals the forward ----------------------------------------------------------- */
static void test_rwkv6_stream(void)
{
    const rcfg c = {2, 3, 45, 8, 6, 16, 1.0, -2.0f};
    const int64_t bh = c.b * c.h, n = c.n, d = c.d, dv = c.dv;
    rrun x;
    mm_tensor *rt = tn(3, c.b, c.h, d, 0), *kt = tn(3, c.b, c.h, d, 0),
              *vt = tn(3, c.b, c.h, dv, 0);
    mm_tensor *wt = tn(3, c.b, c.h, d, 0), *ot = tn(3, c.b, c.h, dv, 0);
    double worst = 0, m = 1e-30;
    open_run(&x, &c, 77);
    CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
    for (int pass = 0; pass < 2; pass++) { /* the second pass after a reset starts clean */
        CHECK_OK(mm_attn_reset(x.h));
        for (int64_t t = 0; t < n; t++) {
            for (int64_t i = 0; i < bh; i++) {
                memcpy(mm_tensor_data(rt) + i * d, mm_tensor_data(x.r) + (i * n + t) * d,
                       sizeof(float) * (size_t)d);
                memcpy(mm_tensor_data(kt) + i * d, mm_tensor_data(x.k) + (i * n + t) * d,
                       sizeof(float) * (size_t)d);
                memcpy(mm_tensor_data(wt) + i * d, mm_tensor_data(x.w) + (i * n + t) * d,
                       sizeof(float) * (size_t)d);
                memcpy(mm_tensor_data(vt) + i * dv, mm_tensor_data(x.v) + (i * n + t) * dv,
                       sizeof(float) * (size_t)dv);
            }
            CHECK_OK(mm_attn_step_rwkv6(x.h, rt, kt, vt, wt, x.u, ot));
            for (int64_t i = 0; i < bh; i++)
                for (int64_t e = 0; e < dv; e++) {
                    const double a = mm_tensor_data(ot)[i * dv + e];
                    const double b = mm_tensor_data(x.o)[(i * n + t) * dv + e];
                    worst = fabs(a - b) > worst ? fabs(a - b) : worst;
                    m = fabs(b) > m ? fabs(b) : m;
                }
        }
    }
    if (!(worst / m <= 1e-5)) mmt_fail(__FILE__, __LINE__, "step vs forward: %.3g", worst / m);
    mm_tensor_free(rt), mm_tensor_free(kt), mm_tensor_free(vt), mm_tensor_free(wt);
    mm_tensor_free(ot);
    close_run(&x);
}

/* ---- bad inputs: a negative code, a message, and a handle that still works ------------------- */
static void test_rwkv6_misuse(void)
{
    const rcfg c = {1, 2, 6, 4, 3, 4, 1.0, -1.0f};
    rrun x;
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *bad_u = tn(2, 2, 5, 0, 0), *k5 = tn(4, 1, 2, 5, 4), *st = tn(3, 1, 2, 4, 0);
    mm_tensor *sv = tn(3, 1, 2, 3, 0), *so = tn(3, 1, 2, 3, 0); /* out apart from v */
    open_run(&x, &c, 5);
    /* create: causal only, chunk bounded */
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_RWKV6));
    CHECK_EQ_I64(o.causal, 1);
    CHECK_EQ_I64(o.chunk, 32);
    o.causal = 0;
    CHECK_STATUS(mm_attn_create(&h, &o), MM_E_INVALID_ARG);
    o.causal = 1, o.chunk = 1025;
    CHECK_STATUS(mm_attn_create(&h, &o), MM_E_RANGE);
    CHECK(h == NULL);
    /* the wrong entry points */
    CHECK_STATUS(mm_attn_forward(x.h, x.r, x.k, x.v, x.o), MM_E_STATE);
    CHECK(strstr(mm_attn_errmsg(x.h), "mm_attn_forward_rwkv6") != NULL);
    CHECK_STATUS(mm_attn_forward_gated(x.h, x.r, x.k, x.v, x.w, x.o), MM_E_STATE);
    CHECK_STATUS(mm_attn_step(x.h, st, st, sv, NULL, so), MM_E_STATE);
    CHECK_STATUS(mm_attn_backward_rwkv6(x.h, x.dout, x.dr, NULL, NULL, NULL, x.du), MM_E_STATE);
    /* bad tensors */
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, NULL, x.u, x.o), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, bad_u, x.o), MM_E_SHAPE);
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, k5, x.v, x.w, x.u, x.o), MM_E_SHAPE);
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.u, x.u, x.o), MM_E_SHAPE);
    mm_tensor_data(x.w)[7] = 0.5f;
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o), MM_E_NUMERIC);
    CHECK(strstr(mm_attn_errmsg(x.h), "w[7]") != NULL);
    mm_tensor_data(x.w)[7] = NAN;
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o), MM_E_NUMERIC);
    mm_tensor_data(x.w)[7] = -0.5f;
    mm_tensor_data(x.u)[3] = INFINITY;
    CHECK_STATUS(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o), MM_E_NUMERIC);
    CHECK_STATUS(mm_attn_step_rwkv6(x.h, st, st, sv, st, x.u, so), MM_E_NUMERIC);
    mm_tensor_data(x.u)[3] = 0.25f;
    CHECK_STATUS(mm_attn_step_rwkv6(x.h, st, st, sv, st, bad_u, so), MM_E_SHAPE);
    CHECK_STATUS(mm_attn_step_rwkv6(x.h, st, st, sv, NULL, x.u, so), MM_E_INVALID_ARG);
    mm_tensor_data(st)[0] = 1.0f; /* as w: a positive log-decay */
    CHECK_STATUS(mm_attn_step_rwkv6(x.h, st, st, sv, st, x.u, so), MM_E_NUMERIC);
    CHECK_STATUS(mm_attn_backward_rwkv6(NULL, x.dout, NULL, NULL, NULL, NULL, NULL),
                 MM_E_INVALID_ARG);
    /* still usable; then a bad du shape */
    CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
    CHECK_STATUS(mm_attn_backward_rwkv6(x.h, x.dout, NULL, NULL, NULL, NULL, bad_u), MM_E_SHAPE);
    CHECK_OK(mm_attn_backward_rwkv6(x.h, x.dout, x.dr, x.dk, x.dv, x.dw, x.du));
    /* the RWKV6 entry points refuse other kinds */
    {
        mm_attn *g = NULL;
        CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_GATED));
        o.d_head = 4, o.dv = 3, o.n_heads = 2, o.max_seq = 6;
        CHECK_OK(mm_attn_create(&g, &o));
        CHECK_STATUS(mm_attn_forward_rwkv6(g, x.r, x.k, x.v, x.w, x.u, x.o), MM_E_STATE);
        CHECK_STATUS(mm_attn_step_rwkv6(g, st, st, sv, st, x.u, so), MM_E_STATE);
        CHECK_STATUS(mm_attn_backward_rwkv6(g, x.dout, NULL, NULL, NULL, NULL, NULL), MM_E_STATE);
        mm_attn_free(g);
    }
    { /* the model's attention block does not take RWKV6 */
        mm_model_opts mo;
        mm_model *m = NULL;
        CHECK_OK(mm_model_opts_init(&mo));
        mo.input_dim = 8;
        CHECK_OK(mm_model_create(&m, &mo));
        CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_RWKV6));
        o.d_head = 4, o.n_heads = 2;
        CHECK_STATUS(mm_model_add_attention(m, &o), MM_E_INVALID_ARG);
        mm_model_free(m);
    }
    mm_tensor_free(bad_u), mm_tensor_free(k5), mm_tensor_free(st), mm_tensor_free(sv);
    mm_tensor_free(so);
    close_run(&x);
}

/* ---- no allocation after create; two threads equal one ------------------------------------ */
/* The forward keeps r, k, v a chunk at a time as its kernel reads them (and copies them first
 * when out overlaps an input): both paths give the same bits, and r, k, v, w overwritten
 * between forward and backward change no gradient. A partial last chunk, and one token. */
static void test_rwkv6_inputs_kept(void)
{
    for (int64_t n = 1; n <= 40; n += 39) {
        const rcfg c = {2, 2, n, 8, 8, 16, 0.5, -2.0f};
        rrun x;
        mm_tensor *o2, *g[5];
        int64_t numel;
        open_run(&x, &c, 120 + (uint64_t)n);
        numel = mm_tensor_numel(x.r);
        o2 = tn(4, c.b, c.h, c.n, c.dv);
        for (int i = 0; i < 4; i++) g[i] = tn(4, c.b, c.h, c.n, c.d);
        g[4] = tn(2, c.h, c.d, 0, 0);
        CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
        CHECK_OK(mm_attn_backward_rwkv6(x.h, x.dout, g[0], g[1], g[2], g[3], g[4]));
        memcpy(mm_tensor_data(o2), mm_tensor_data(x.r), sizeof(float) * (size_t)numel);
        CHECK_OK(mm_attn_forward_rwkv6(x.h, o2, x.k, x.v, x.w, x.u, o2)); /* out aliases r */
        CHECK(!memcmp(mm_tensor_data(o2), mm_tensor_data(x.o), sizeof(float) * (size_t)numel));
        CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
        for (int64_t i = 0; i < numel; i++) { /* the caller reuses its buffers */
            mm_tensor_data(x.r)[i] = mm_tensor_data(x.k)[i] = mm_tensor_data(x.v)[i] = 1e3f;
            mm_tensor_data(x.w)[i] = -5.0f;
        }
        CHECK_OK(mm_attn_backward_rwkv6(x.h, x.dout, x.dr, x.dk, x.dv, x.dw, x.du));
        CHECK(!memcmp(mm_tensor_data(g[0]), mm_tensor_data(x.dr), sizeof(float) * (size_t)numel));
        CHECK(!memcmp(mm_tensor_data(g[1]), mm_tensor_data(x.dk), sizeof(float) * (size_t)numel));
        CHECK(!memcmp(mm_tensor_data(g[2]), mm_tensor_data(x.dv), sizeof(float) * (size_t)numel));
        CHECK(!memcmp(mm_tensor_data(g[3]), mm_tensor_data(x.dw), sizeof(float) * (size_t)numel));
        CHECK(!memcmp(mm_tensor_data(g[4]), mm_tensor_data(x.du),
                      sizeof(float) * (size_t)(c.h * c.d)));
        for (int i = 0; i < 5; i++) mm_tensor_free(g[i]);
        mm_tensor_free(o2);
        close_run(&x);
    }
}

static void test_rwkv6_no_alloc_threads(void)
{
    const rcfg c = {2, 2, 40, 8, 4, 16, 1.0, -2.0f};
    mm_allocator al;
    mmt_counter cnt;
    mm_attn *h2 = NULL;
    rrun x;
    int64_t before;
    mm_tensor *o2 = tn(4, c.b, c.h, c.n, c.dv), *dk2 = tn(4, c.b, c.h, c.n, c.d);
    mm_tensor *du2 = tn(2, c.h, c.d, 0, 0), *st = tn(3, c.b, c.h, c.d, 0),
              *sv = tn(3, c.b, c.h, c.dv, 0), *so = tn(3, c.b, c.h, c.dv, 0);
    mmt_counting_allocator(&al, &cnt, -1);
    open_run(&x, &c, 90);
    CHECK_OK(make(&c, 2, &al, &h2));
    before = cnt.n_alloc;
    CHECK_OK(mm_attn_forward_rwkv6(h2, x.r, x.k, x.v, x.w, x.u, o2));
    CHECK_OK(mm_attn_backward_rwkv6(h2, x.dout, NULL, dk2, NULL, NULL, du2));
    mmt_fill_uniform(mm_tensor_data(st), mm_tensor_numel(st), 3, -1.0f, -0.1f);
    mmt_fill_uniform(mm_tensor_data(sv), mm_tensor_numel(sv), 4, -1.0f, 1.0f);
    CHECK_OK(mm_attn_step_rwkv6(h2, st, st, sv, st, x.u, so));
    CHECK_EQ_I64(cnt.n_alloc, before);
    CHECK_OK(mm_attn_forward_rwkv6(x.h, x.r, x.k, x.v, x.w, x.u, x.o));
    CHECK_OK(mm_attn_backward_rwkv6(x.h, x.dout, NULL, x.dk, NULL, NULL, x.du));
    CHECK(!memcmp(mm_tensor_data(o2), mm_tensor_data(x.o),
                  sizeof(float) * (size_t)mm_tensor_numel(o2)));
    CHECK(!memcmp(mm_tensor_data(dk2), mm_tensor_data(x.dk),
                  sizeof(float) * (size_t)mm_tensor_numel(dk2)));
    CHECK(!memcmp(mm_tensor_data(du2), mm_tensor_data(x.du),
                  sizeof(float) * (size_t)mm_tensor_numel(du2)));
    mm_attn_free(h2);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    mm_tensor_free(o2), mm_tensor_free(dk2), mm_tensor_free(du2), mm_tensor_free(st);
    mm_tensor_free(sv), mm_tensor_free(so);
    close_run(&x);
}

void suite_rwkv6(void)
{
    mmt_run("rwkv6_forward", test_rwkv6_forward);
    mmt_run("rwkv6_grad", test_rwkv6_grad);
    mmt_run("rwkv6_stream", test_rwkv6_stream);
    mmt_run("rwkv6_misuse", test_rwkv6_misuse);
    mmt_run("rwkv6_no_alloc_threads", test_rwkv6_no_alloc_threads);
    mmt_run("rwkv6_inputs_kept", test_rwkv6_inputs_kept);
}
