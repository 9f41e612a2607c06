/* SPDX-License-Identifier: MIT */
/* test_xattn.c — the cross-attention block of mm_model (mm_model_add_cross_attention and the
 * *_ctx entry points): forward against a naive float64 reference written here, backward
 * (parameters, input and context) and JVP against central finite differences of that
 * reference, save/load, and the refusals (missing or misshapen context).
 *
 * Tolerances as tests/test_model.c: the finite differences run on the float64 reference at the
 * very parameters libmm holds, h = 1e-5 (truncation ~1e-10, rounding ~1e-11), and each value is
 * compared with |libmm - ref| <= 2e-4 (|ref| + max|ref|), the bound test_attn.c's block test
 * uses: float32 GEMM and softmax rounding stay ~100x below it, a wrong formula is O(1) off. */
#include "model/mmi_model.h"
#include "runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The model under test: xattn(H1, dk1) -> dense(D -> D) -> xattn(H2, dk2), all reading one
 * context of width DC. Two cross-attention layers check that dctx sums their parts. */
enum { B = 2, T = 3, M = 4, D = 6, DC = 5, MAXC = 6, H1 = 2, DK1 = 3, H2 = 1, DK2 = 4 };

typedef struct xref {
    int64_t h, dk; /* heads and head width */
} xref;

static const xref k_x[2] = {{H1, DK1}, {H2, DK2}};

static int64_t xattn_np(const xref *r)
{
    return 2 * r->h * r->dk * D + r->h * r->dk + 2 * r->h * r->dk * DC + 2 * r->h * r->dk + D;
}

/* y [B T, D] = x + cross-attention(x, ctx) in float64, parameters in libmm's layout. */
static void ref_xattn(const xref *r, const double *p, const double *x, const double *ctx, double *y)
{
    const int64_t qw = r->h * r->dk, kw = 2 * qw;
    const double *wq = p, *bq = wq + qw * D, *wkv = bq + qw, *bkv = wkv + kw * DC;
    const double *wo = bkv + kw, *bo = wo + D * qw;
    double q[B * T][16], kv[B * M][32], am[B * T][16];
    for (int64_t i = 0; i < B * T; i++) {
        double mu = 0, var = 0, xn[D];
        for (int64_t e = 0; e < D; e++) mu += x[i * D + e];
        mu /= D;
        for (int64_t e = 0; e < D; e++) var += (x[i * D + e] - mu) * (x[i * D + e] - mu);
        var = 1 / sqrt(var / D + 1e-5);
        for (int64_t e = 0; e < D; e++) xn[e] = (x[i * D + e] - mu) * var;
        for (int64_t o = 0; o < qw; o++) {
            double s = bq[o];
            for (int64_t e = 0; e < D; e++) s += xn[e] * wq[o * D + e];
            q[i][o] = s;
        }
    }
    for (int64_t j = 0; j < B * M; j++)
        for (int64_t o = 0; o < kw; o++) {
            double s = bkv[o];
            for (int64_t e = 0; e < DC; e++) s += ctx[j * DC + e] * wkv[o * DC + e];
            kv[j][o] = s;
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < r->h; h++) {
                double s[M], mx = -INFINITY, z = 0;
                const double *qi = q[b * T + t] + h * r->dk;
                for (int64_t j = 0; j < M; j++) {
                    s[j] = 0;
                    for (int64_t e = 0; e < r->dk; e++)
                        s[j] += qi[e] * kv[b * M + j][h * r->dk + e];
                    s[j] /= sqrt((double)r->dk);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int64_t j = 0; j < M; j++) z += (s[j] = exp(s[j] - mx));
                for (int64_t e = 0; e < r->dk; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < M; j++)
                        o += s[j] / z * kv[b * M + j][qw + h * r->dk + e];
                    am[b * T + t][h * r->dk + e] = o;
                }
            }
    for (int64_t i = 0; i < B * T; i++)
        for (int64_t o = 0; o < D; o++) {
            double s = x[i * D + o] + bo[o];
            for (int64_t e = 0; e < qw; e++) s += am[i][e] * wo[o * qw + e];
            y[i * D + o] = s;
        }
}

/* The whole model in float64. */
static void ref_model(const double *p, const double *x, const double *ctx, double *y)
{
    double h1[B * T * D], h2[B * T * D];
    const double *pd = p + xattn_np(&k_x[0]);
    ref_xattn(&k_x[0], p, x, ctx, h1);
    for (int64_t i = 0; i < B * T; i++)
        for (int64_t o = 0; o < D; o++) {
            double s = pd[D * D + o];
            for (int64_t e = 0; e < D; e++) s += h1[i * D + e] * pd[o * D + e];
            h2[i * D + o] = s;
        }
    ref_xattn(&k_x[1], pd + D * D + D, h2, ctx, y);
}

/* The first occurrence of the n bytes of pat in buf, or NULL. */
static char *find(void *buf, size_t sz, const char *pat, size_t n)
{
    char *b = (char *)buf;
    for (size_t i = 0; i + n <= sz; i++)
        if (memcmp(b + i, pat, n) == 0) return b + i;
    return NULL;
}

static void close_to(const float *got, const double *want, int64_t n, const char *what)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 2e-4 * (fabs(want[i]) + mx))) {
            mmt_fail(__FILE__, __LINE__, "%s[%lld] = %.7g, reference %.7g", what, (long long)i,
                     (double)got[i], want[i]);
            return;
        }
}

static mm_model *make_model(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = D, o.max_batch = B, o.max_seq = T, o.seed = 5;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return NULL;
    CHECK_OK(mm_model_add_cross_attention(m, H1, DK1, DC, MAXC));
    CHECK_OK(mm_model_add_dense(m, D, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_cross_attention(m, H2, DK2, DC, MAXC));
    CHECK_OK(mm_model_finalize(m));
    return m;
}

static mm_tensor *t3(int64_t a, int64_t b, int64_t c)
{
    mm_tensor *t = NULL;
    int64_t s[3] = {a, b, c};
    CHECK_OK(mm_tensor_create(&t, 3, s, NULL));
    return t;
}

/* Central differences of <w, model(...)> along each coordinate of z (a copy of which the
 * closure reads through pz). */
static void fd_grad(double *z, int64_t n, const double *p, const double *x, const double *c,
                    const float *w, double *out)
{
    const double h = 1e-5;
    double y[B * T * D];
    for (int64_t j = 0; j < n; j++) {
        double lp = 0, lm = 0, z0 = z[j];
        z[j] = z0 + h, ref_model(p, x, c, y);
        for (int64_t i = 0; i < B * T * D; i++) lp += y[i] * w[i];
        z[j] = z0 - h, ref_model(p, x, c, y);
        for (int64_t i = 0; i < B * T * D; i++) lm += y[i] * w[i];
        z[j] = z0, out[j] = (lp - lm) / (2 * h);
    }
}

static void test_xattn_reference(void)
{
    const int64_t nx = B * T * D, nc = B * M * DC;
    mm_model *m = make_model();
    mm_tensor *x = t3(B, T, D), *y = t3(B, T, D), *dy = t3(B, T, D), *dx = t3(B, T, D);
    mm_tensor *ctx = t3(B, M, DC), *dctx = t3(B, M, DC), *jy = t3(B, T, D), *vt = NULL;
    int64_t np = 0;
    float *p = NULL, *g = NULL;
    double *pd, *xd, *cd, *fd, yd[B * T * D], y2[B * T * D];
    if (!m) return;
    CHECK_OK(mm_model_params(m, &p, &np));
    CHECK_OK(mm_model_grads(m, &g, NULL));
    CHECK_EQ_I64(np, xattn_np(&k_x[0]) + D * D + D + xattn_np(&k_x[1]));
    mmt_fill_uniform(p, np, 300, -0.6f, 0.6f); /* larger than init: attention not flat */
    mmt_fill_uniform(mm_tensor_data(x), nx, 301, -1.5f, 1.5f);
    mmt_fill_uniform(mm_tensor_data(ctx), nc, 302, -1.5f, 1.5f);
    mmt_fill_uniform(mm_tensor_data(dy), nx, 303, -1.0f, 1.0f);
    CHECK_OK(mm_tensor_create(&vt, 1, &np, NULL));
    mmt_fill_uniform(mm_tensor_data(vt), np, 304, -1.0f, 1.0f);
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    /* the caller may reuse its context buffer: backward uses the layer's copy */
    mmt_fill_uniform(mm_tensor_data(ctx), nc, 999, -9.0f, 9.0f);
    CHECK_OK(mm_model_backward_ctx(m, dy, dx, dctx));
    mmt_fill_uniform(mm_tensor_data(ctx), nc, 302, -1.5f, 1.5f);
    pd = malloc(8 * (size_t)np), xd = malloc(8 * (size_t)nx), cd = malloc(8 * (size_t)nc);
    fd = malloc(8 * (size_t)np);
    for (int64_t i = 0; i < np; i++) pd[i] = p[i];
    for (int64_t i = 0; i < nx; i++) xd[i] = mm_tensor_data(x)[i];
    for (int64_t i = 0; i < nc; i++) cd[i] = mm_tensor_data(ctx)[i];
    ref_model(pd, xd, cd, yd);
    close_to(mm_tensor_data(y), yd, nx, "y");
    fd_grad(pd, np, pd, xd, cd, mm_tensor_data(dy), fd);
    close_to(g, fd, np, "dparams");
    fd_grad(xd, nx, pd, xd, cd, mm_tensor_data(dy), fd);
    close_to(mm_tensor_data(dx), fd, nx, "dx");
    fd_grad(cd, nc, pd, xd, cd, mm_tensor_data(dy), fd);
    close_to(mm_tensor_data(dctx), fd, nc, "dctx");
    /* JVP along v (context fixed) */
    CHECK_OK(mm_model_jvp_ctx(m, x, ctx, vt, NULL, jy));
    for (int64_t j = 0; j < np; j++) pd[j] = p[j] + 1e-5 * mm_tensor_data(vt)[j];
    ref_model(pd, xd, cd, y2);
    for (int64_t j = 0; j < np; j++) pd[j] = p[j] - 1e-5 * mm_tensor_data(vt)[j];
    ref_model(pd, xd, cd, yd);
    for (int64_t i = 0; i < nx; i++) fd[i] = (y2[i] - yd[i]) / 2e-5;
    close_to(mm_tensor_data(jy), fd, nx, "jvp");
    { /* frozen parameters: backward still reaches the context, and leaves the gradients */
        mm_tensor *dctx2 = t3(B, M, DC);
        CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
        CHECK_OK(mm_model_freeze(m, 0, 3, 1));
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_backward_ctx(m, dy, NULL, dctx2));
        CHECK(memcmp(mm_tensor_data(dctx2), mm_tensor_data(dctx), 4 * (size_t)nc) == 0);
        for (int64_t i = 0; i < np; i++) CHECK(g[i] == 0.0f);
        CHECK_OK(mm_model_freeze(m, 0, 3, 0));
        mm_tensor_free(dctx2);
    }
    free(pd), free(xd), free(cd), free(fd);
    mm_model_free(m);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(dx);
    mm_tensor_free(ctx), mm_tensor_free(dctx), mm_tensor_free(jy), mm_tensor_free(vt);
}

/* A shorter context than max_ctx and batch 1 use the front of the reservation. */
static void test_xattn_short_context(void)
{
    mm_model *m = make_model();
    mm_tensor *x = t3(1, 2, D), *y = t3(1, 2, D), *ctx = t3(1, 1, DC);
    double pd[2048], xd[B * T * D] = {0}, cd[B * M * DC] = {0}, yd[B * T * D];
    float *p = NULL;
    int64_t np = 0;
    if (!m) return;
    CHECK_OK(mm_model_params(m, &p, &np));
    mmt_fill_uniform(mm_tensor_data(x), 2 * D, 310, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(ctx), DC, 311, -1.0f, 1.0f);
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    /* One context token: softmax weight 1, so the attention output is that token's value.
     * The reference's B x T x M shape is padded: batch 0, rows 0..1 and context token 0,
     * replicated into all M slots (equal keys give equal weights, the same average). */
    CHECK(np <= 2048);
    for (int64_t i = 0; i < np && i < 2048; i++) pd[i] = p[i];
    for (int64_t i = 0; i < 2 * D; i++) xd[i] = mm_tensor_data(x)[i];
    for (int64_t j = 0; j < M; j++)
        for (int64_t e = 0; e < DC; e++) cd[j * DC + e] = mm_tensor_data(ctx)[e];
    ref_model(pd, xd, cd, yd);
    close_to(mm_tensor_data(y), yd, 2 * D, "y (M = 1)");
    mm_model_free(m);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(ctx);
}

static void test_xattn_save_load(void)
{
    mm_model *m = make_model(), *m2 = NULL;
    mm_tensor *x = t3(B, T, D), *y = t3(B, T, D), *y2 = t3(B, T, D), *ctx = t3(B, M, DC);
    mm_model_opts o;
    size_t sz = 0;
    void *buf;
    char name[64];
    if (!m) return;
    mmt_fill_uniform(mm_tensor_data(x), B * T * D, 320, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(ctx), B * M * DC, 321, -1.0f, 1.0f);
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    CHECK_OK(mm_model_save_mem(m, NULL, 0, &sz, 0));
    buf = malloc(sz);
    CHECK_OK(mm_model_save_mem(m, buf, sz, &sz, 0));
    CHECK(find(buf, sz, "cross_attention", 15) != NULL);
    CHECK_OK(mmi_model_tensor_name(m, 2, 2, name, sizeof name));
    CHECK(strcmp(name, "2.kv_proj.weight") == 0);
    CHECK(find(buf, sz, "2.kv_proj.weight", 16) != NULL);
    CHECK_OK(mm_model_opts_init(&o));
    o.max_batch = B, o.max_seq = T;
    CHECK_OK(mm_model_load_mem(&m2, buf, sz, &o));
    if (m2) {
        CHECK_OK(mm_model_forward_ctx(m2, x, ctx, y2));
        CHECK(memcmp(mm_tensor_data(y), mm_tensor_data(y2), 4 * (size_t)(B * T * D)) == 0);
    }
    /* a file whose cross-attention config is out of bounds is a format error */
    {
        char *s = find(buf, sz, "[2,3,5,6]", 9);
        CHECK(s != NULL);
        if (s) {
            memcpy(s, "[2,3,5,0]", 9);
            mm_model_free(m2);
            m2 = NULL;
            CHECK_STATUS(mm_model_load_mem(&m2, buf, sz, &o), MM_E_FORMAT);
        }
    }
    { /* a hostile max_ctx: the reservation it implies is out of proportion to the file */
        static const char big[] = "[2,3,5,2147483647]";
        char *s = find(buf, sz, "[2,3,5,0]", 9);
        size_t hl = 0, add = sizeof big - 1 - 9;
        unsigned char *nb = malloc(sz + add);
        CHECK(s != NULL);
        if (s && nb) {
            size_t at = (size_t)(s - (char *)buf);
            for (int i = 7; i >= 0; i--) hl = hl << 8 | ((unsigned char *)buf)[i];
            memcpy(nb, buf, at);
            memcpy(nb + at, big, sizeof big - 1);
            memcpy(nb + at + sizeof big - 1, (char *)buf + at + 9, sz - at - 9);
            hl += add;
            for (int i = 0; i < 8; i++) nb[i] = (unsigned char)(hl >> (8 * i));
            char msg[256] = "";
            o.err_buf = msg, o.err_buf_size = sizeof msg;
            CHECK_STATUS(mm_model_load_mem(&m2, nb, sz + add, &o), MM_E_FORMAT);
            if (!strstr(msg, "out of proportion"))
                mmt_fail(__FILE__, __LINE__, "refused for another reason: %s", msg);
        }
        free(nb);
    }
    free(buf);
    mm_model_free(m), mm_model_free(m2);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(y2), mm_tensor_free(ctx);
}

static void test_xattn_bad_input(void)
{
    mm_model *m = make_model(), *plain = NULL, *b2 = NULL;
    mm_model_opts o;
    mm_tensor *x = t3(B, T, D), *y = t3(B, T, D), *y0 = t3(B, T, D), *ctx = t3(B, M, DC);
    mm_tensor *dy = t3(B, T, D), *jy = t3(B, T, D), *vt = NULL;
    mm_tensor *c_wide = t3(B, M, DC + 1), *c_long = t3(B, MAXC + 1, DC), *c_b1 = t3(1, M, DC);
    mm_tensor *dctx_bad = t3(B, M + 1, DC), *x2 = NULL;
    int64_t np = 0, s2[2] = {B, D};
    size_t wsb = 0;
    void *ws;
    if (!m) return;
    CHECK_OK(mm_model_num_params(m, &np));
    CHECK_OK(mm_tensor_create(&vt, 1, &np, NULL));
    CHECK_OK(mm_tensor_create(&x2, 2, s2, NULL));
    mmt_fill_uniform(mm_tensor_data(x), B * T * D, 330, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(ctx), B * M * DC, 331, -1.0f, 1.0f);
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y0));
    /* missing context */
    CHECK_STATUS(mm_model_forward(m, x, y), MM_E_INVALID_ARG);
    CHECK(strstr(mm_model_errmsg(m), "needs context") != NULL);
    CHECK_STATUS(mm_model_forward_ctx(m, x, NULL, y), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_jvp(m, x, vt, NULL, jy), MM_E_INVALID_ARG);
    /* refused calls leave the last forward in place for backward */
    CHECK_OK(mm_model_backward(m, dy, NULL));
    CHECK_OK(mm_model_infer_workspace_size(m, B, T, &wsb));
    ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
    CHECK_STATUS(mm_model_infer(m, x, y, ws, wsb), MM_E_INVALID_ARG);
    free(ws);
    CHECK_STATUS(mm_model_decode_step(m, x2, x2, NULL, 0), MM_E_UNSUPPORTED);
    /* context shape */
    CHECK_STATUS(mm_model_forward_ctx(m, x, c_wide, y), MM_E_SHAPE);
    CHECK(strstr(mm_model_errmsg(m), "ctx is [2,4,6]") != NULL);
    CHECK_STATUS(mm_model_forward_ctx(m, x, c_b1, y), MM_E_SHAPE);
    CHECK_STATUS(mm_model_forward_ctx(m, x, c_long, y), MM_E_RANGE);
    CHECK_STATUS(mm_model_forward_ctx(m, x, x, y), MM_E_SHAPE);
    /* dctx */
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    CHECK(memcmp(mm_tensor_data(y), mm_tensor_data(y0), 4 * (size_t)(B * T * D)) == 0);
    CHECK_STATUS(mm_model_backward_ctx(m, dy, NULL, dctx_bad), MM_E_SHAPE);
    CHECK_STATUS(mm_model_backward_ctx(m, dy, NULL, dy), MM_E_SHAPE);
    CHECK_OK(mm_model_backward_ctx(m, dy, NULL, NULL));
    /* a model without cross-attention */
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = D, o.max_batch = B, o.max_seq = T;
    CHECK_OK(mm_model_create(&plain, &o));
    CHECK_OK(mm_model_add_dense(plain, D, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(plain));
    CHECK_STATUS(mm_model_forward_ctx(plain, x, ctx, y), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_forward_ctx(plain, x, NULL, y));
    CHECK_STATUS(mm_model_backward_ctx(plain, dy, NULL, ctx), MM_E_STATE);
    CHECK_OK(mm_model_backward_ctx(plain, dy, NULL, NULL));
    /* builder refusals */
    CHECK_OK(mm_model_create(&b2, &o));
    CHECK_STATUS(mm_model_add_cross_attention(NULL, 1, 2, DC, 4), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_cross_attention(b2, 0, 2, DC, 4), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_cross_attention(b2, 1, 1025, DC, 4), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_cross_attention(b2, 1, 2, 0, 4), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_cross_attention(b2, 1, 2, DC, 0), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_cross_attention(b2, 1, 2, DC, (int64_t)1 << 32), MM_E_RANGE);
    CHECK_OK(mm_model_add_cross_attention(b2, 1, 2, DC, 4));
    CHECK_STATUS(mm_model_add_cross_attention(b2, 1, 2, DC + 1, 4), MM_E_SHAPE);
    CHECK(strstr(mm_model_errmsg(b2), "one context tensor") != NULL);
    { /* the model is still usable after every refusal */
        int32_t n = 0;
        CHECK_OK(mm_model_num_layers(b2, &n));
        CHECK_EQ_I64(n, 1);
        CHECK_OK(mm_model_finalize(b2));
    }
    mm_model_free(m), mm_model_free(plain), mm_model_free(b2);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(y0), mm_tensor_free(ctx);
    mm_tensor_free(dy), mm_tensor_free(jy), mm_tensor_free(vt), mm_tensor_free(c_wide);
    mm_tensor_free(c_long), mm_tensor_free(c_b1), mm_tensor_free(dctx_bad), mm_tensor_free(x2);
}

/* forward_ctx, backward_ctx and jvp_ctx allocate nothing: every buffer was reserved at
 * finalize (the layer sizes its context regions for max_ctx). */
static void test_xattn_no_alloc(void)
{
    mm_allocator a;
    mmt_counter cnt;
    mm_model_opts o;
    mm_model *m = NULL;
    mm_tensor *x = t3(B, T, D), *y = t3(B, T, D), *ctx = t3(B, MAXC, DC), *dctx = t3(B, MAXC, DC);
    mm_tensor *dx = t3(B, T, D), *jy = t3(B, T, D), *vt = NULL;
    int64_t np = 0, before;
    mmt_counting_allocator(&a, &cnt, -1);
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = D, o.max_batch = B, o.max_seq = T, o.alloc = &a;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    CHECK_OK(mm_model_add_cross_attention(m, H1, DK1, DC, MAXC));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_num_params(m, &np));
    CHECK_OK(mm_tensor_create(&vt, 1, &np, NULL));
    mmt_fill_uniform(mm_tensor_data(x), B * T * D, 340, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(ctx), B * MAXC * DC, 341, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(vt), np, 342, -1.0f, 1.0f);
    before = cnt.n_alloc;
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    CHECK_OK(mm_model_backward_ctx(m, y, dx, dctx));
    CHECK_OK(mm_model_jvp_ctx(m, x, ctx, vt, y, jy));
    CHECK_EQ_I64(cnt.n_alloc, before);
    mm_model_free(m);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    CHECK_EQ_I64(cnt.bad_free, 0);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(ctx), mm_tensor_free(dctx);
    mm_tensor_free(dx), mm_tensor_free(jy), mm_tensor_free(vt);
}

/* mm_model_forward_ctx with y over ctx, whole or from its middle on: the cross-attention layers
 * keep their own copy of the context and y is written last, so y and the following
 * backward_ctx (dx, dctx, parameter gradients) are bitwise those of separate buffers. */
static void test_xattn_y_over_ctx(void)
{
    enum { NY = B * T * D, NC = B * M * DC };
    mm_model *m = make_model();
    float buf[2 * NC], c0[NC], yref[NY], dxref[NY], dcref[NC], *g, *gref = NULL;
    mm_tensor *x = t3(B, T, D), *dy = t3(B, T, D), *dx = t3(B, T, D), *dctx = t3(B, M, DC);
    mm_tensor *ctx = NULL, *y = NULL;
    int64_t np = 0;
    if (!m) return;
    CHECK_OK(mm_model_grads(m, &g, &np));
    gref = calloc((size_t)np, sizeof(float));
    CHECK(gref != NULL);
    mmt_fill_uniform(mm_tensor_data(x), NY, 350, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(dy), NY, 351, -1.0f, 1.0f);
    mmt_fill_uniform(c0, NC, 352, -1.0f, 1.0f);
    memcpy(buf, c0, sizeof c0);
    CHECK_OK(mm_tensor_wrap(&ctx, buf, 3, (int64_t[3]){B, M, DC}, NULL));
    CHECK_OK(mm_tensor_wrap(&y, yref, 3, (int64_t[3]){B, T, D}, NULL));
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_forward_ctx(m, x, ctx, y));
    CHECK_OK(mm_model_backward_ctx(m, dy, dx, dctx));
    memcpy(dxref, mm_tensor_data(dx), sizeof dxref);
    memcpy(dcref, mm_tensor_data(dctx), sizeof dcref);
    if (gref) memcpy(gref, g, sizeof(float) * (size_t)np);
    for (int part = 0; part < 2 && gref; part++) {
        mm_tensor *yo = NULL;
        memcpy(buf, c0, sizeof c0);
        CHECK_OK(mm_tensor_wrap(&yo, buf + (part ? NC / 2 : 0), 3, (int64_t[3]){B, T, D}, NULL));
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_forward_ctx(m, x, ctx, yo));
        CHECK(memcmp(mm_tensor_data(yo), yref, sizeof yref) == 0);
        CHECK_OK(mm_model_backward_ctx(m, dy, dx, dctx));
        CHECK(memcmp(mm_tensor_data(dx), dxref, sizeof dxref) == 0);
        CHECK(memcmp(mm_tensor_data(dctx), dcref, sizeof dcref) == 0);
        CHECK(memcmp(g, gref, sizeof(float) * (size_t)np) == 0);
        mm_tensor_free(yo);
    }
    mm_tensor_free(x), mm_tensor_free(dy), mm_tensor_free(dx), mm_tensor_free(dctx);
    mm_tensor_free(ctx), mm_tensor_free(y);
    free(gref);
    mm_model_free(m);
}

/* A pool of 2 threads gives bitwise the same output, gradients and context gradient. */
static void test_xattn_threads(void)
{
    mm_model *m[2] = {NULL, NULL};
    mm_tensor *x = t3(B, T, D), *ctx = t3(B, M, DC), *y[2], *dctx[2];
    float *g[2] = {NULL, NULL};
    int64_t np = 0;
    for (int k = 0; k < 2; k++) {
        mm_model_opts o;
        CHECK_OK(mm_model_opts_init(&o));
        o.input_dim = D, o.max_batch = B, o.max_seq = T, o.seed = 5, o.n_threads = 1 + k;
        CHECK_OK(mm_model_create(&m[k], &o));
        if (!m[k]) return;
        CHECK_OK(mm_model_add_cross_attention(m[k], H1, DK1, DC, MAXC));
        CHECK_OK(mm_model_add_dense(m[k], D, 1, MM_INIT_DEFAULT, 1.0));
        CHECK_OK(mm_model_finalize(m[k]));
        y[k] = t3(B, T, D), dctx[k] = t3(B, M, DC);
    }
    mmt_fill_uniform(mm_tensor_data(x), B * T * D, 350, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(ctx), B * M * DC, 351, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(mm_model_forward_ctx(m[k], x, ctx, y[k]));
        CHECK_OK(mm_model_backward_ctx(m[k], y[k], NULL, dctx[k]));
        CHECK_OK(mm_model_grads(m[k], &g[k], &np));
    }
    CHECK(memcmp(mm_tensor_data(y[0]), mm_tensor_data(y[1]), 4 * (size_t)(B * T * D)) == 0);
    CHECK(memcmp(mm_tensor_data(dctx[0]), mm_tensor_data(dctx[1]), 4 * (size_t)(B * M * DC)) == 0);
    CHECK(memcmp(g[0], g[1], 4 * (size_t)np) == 0);
    for (int k = 0; k < 2; k++) {
        mm_model_free(m[k]);
        mm_tensor_free(y[k]), mm_tensor_free(dctx[k]);
    }
    mm_tensor_free(x), mm_tensor_free(ctx);
}

void suite_xattn(void)
{
    mmt_run("xattn_reference", test_xattn_reference);
    mmt_run("xattn_short_context", test_xattn_short_context);
    mmt_run("xattn_save_load", test_xattn_save_load);
    mmt_run("xattn_bad_input", test_xattn_bad_input);
    mmt_run("xattn_no_alloc", test_xattn_no_alloc);
    mmt_run("xattn_threads", test_xattn_threads);
    mmt_run("xattn_y_over_ctx", test_xattn_y_over_ctx);
}
