/* SPDX-License-Identifier: MIT */
/* test_attn.c — mm_attn against naive float64 references written here (dense masked softmax,
 * recurrences for causal linear and gated attention, dense mixed-chunk RELU2), float64 finite
 * differences of those references for every backward, streaming against the causal forward,
 * chunkwise against recurrent, misuse, zero allocations, and thread determinism. */
#include "runner.h"
#include "vectors/attn_vectors.h"
#include "attn/mmi_attn_head.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a configuration and its float64 reference ----------------------------------------------- */
typedef struct cfg {
    int32_t kind, fmap, causal, normalize, pattern,
        gate; /* gate: 0 none, 1 retnet, 2 scalar, 3 vector */
    int64_t b, h, n, m, d, dv, chunk, window, stride, nf;
    double eps, feps, scale;
    double glo;     /* GATED test gates are drawn in (glo, -0.01); 0 means -3 */
    const float *w; /* PERFORMER projection [nf, d] */
} cfg;

static cfg cfg_make(int32_t kind, int64_t b, int64_t h, int64_t n, int64_t m, int64_t d, int64_t dv)
{
    cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind, c.b = b, c.h = h, c.n = n, c.m = m, c.d = d, c.dv = dv;
    c.fmap = MM_FMAP_ELU1, c.normalize = 1, c.chunk = kind == MM_ATTN_GATED ? 64 : 256;
    c.causal = kind == MM_ATTN_SPARSE || kind == MM_ATTN_GATED;
    c.pattern = MM_SPARSE_LOCAL, c.window = 128, c.stride = 128;
    c.eps = kind == MM_ATTN_PERFORMER ? 0.0 : 1e-6, c.feps = 1e-4, c.scale = 1.0 / sqrt((double)d);
    return c;
}

static int vis(const cfg *c, int64_t i, int64_t j)
{
    const int64_t diff = i + c->m - c->n - j;
    if (c->causal && diff < 0) return 0;
    if (c->kind == MM_ATTN_SPARSE && c->pattern == MM_SPARSE_LOCAL && diff >= c->window) return 0;
    if (c->kind == MM_ATTN_SPARSE && c->pattern == MM_SPARSE_STRIDED && diff % c->stride) return 0;
    return 1;
}

static double dotd(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void ref_softmax(const cfg *c, const double *q, const double *k, const double *v, double *o)
{
    double *s = malloc(sizeof(double) * (size_t)c->m);
    for (int64_t i = 0; i < c->n; i++) {
        double mx = -INFINITY, l = 0;
        for (int64_t j = 0; j < c->m; j++) {
            s[j] = vis(c, i, j) ? c->scale * dotd(q + i * c->d, k + j * c->d, c->d) : -INFINITY;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] = 0;
        if (mx == -INFINITY) continue;
        for (int64_t j = 0; j < c->m; j++) l += s[j] = exp(s[j] - mx);
        for (int64_t j = 0; j < c->m; j++)
            for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] += s[j] / l * v[j * c->dv + e];
    }
    free(s);
}

static double phi1(int32_t f, double x)
{
    return f == MM_FMAP_ELU1 ? (x > 0 ? x + 1 : exp(x)) : f == MM_FMAP_RELU ? (x > 0 ? x : 0) : x;
}

/* FAVOR+ features of one row, stabiliser given (use_stab) or the row's own max. */
static void favor_row(const cfg *c, const double *x, int use_stab, double stab, double *y)
{
    const double cc = pow((double)c->d, -0.25);
    double diag = 0, mx = -INFINITY, *u = malloc(sizeof(double) * (size_t)c->nf);
    for (int64_t e = 0; e < c->d; e++) diag += 0.5 * cc * cc * x[e] * x[e];
    for (int64_t r = 0; r < c->nf; r++) {
        u[r] = 0;
        for (int64_t e = 0; e < c->d; e++) u[r] += (double)c->w[r * c->d + e] * cc * x[e];
        mx = u[r] > mx ? u[r] : mx;
    }
    for (int64_t r = 0; r < c->nf; r++)
        y[r] = (exp(u[r] - diag - (use_stab ? stab : mx)) + c->feps) / sqrt((double)c->nf);
    free(u);
}

static double favor_rowmax(const cfg *c, const double *x)
{
    const double cc = pow((double)c->d, -0.25);
    double mx = -INFINITY;
    for (int64_t r = 0; r < c->nf; r++) {
        double u = 0;
        for (int64_t e = 0; e < c->d; e++) u += (double)c->w[r * c->d + e] * cc * x[e];
        mx = u > mx ? u : mx;
    }
    return mx;
}

/* PERFORMER stabilisers are held constant by libmm (detached): finite differences of the block
 * record them at the base point (mode 1) and reuse them (mode 2). */
static int g_stab_mode, g_head;
static double g_kstab[64], g_qstab[64 * 64];

/* Linear attention written as the dense sum o_i = sum_j sim_ij v_j / (sum_j sim_ij + eps). */
static void ref_linear(const cfg *c, const double *q, const double *k, const double *v, double *o)
{
    const int perf = c->kind == MM_ATTN_PERFORMER;
    const int64_t f = perf ? c->nf : c->d;
    double *fq = malloc(sizeof(double) * (size_t)(c->n * f)),
           *fk = malloc(sizeof(double) * (size_t)(c->m * f));
    double stab = -INFINITY;
    if (perf) {
        for (int64_t j = 0; j < (c->causal ? 1 : c->m); j++) {
            const double s = favor_rowmax(c, k + j * c->d);
            stab = s > stab ? s : stab;
        }
        if (g_stab_mode == 1) g_kstab[g_head] = stab;
        if (g_stab_mode == 2) stab = g_kstab[g_head];
        for (int64_t i = 0; i < c->n; i++) {
            double qs = favor_rowmax(c, q + i * c->d);
            if (g_stab_mode == 1) g_qstab[g_head * 64 + i] = qs;
            if (g_stab_mode == 2) qs = g_qstab[g_head * 64 + i];
            favor_row(c, q + i * c->d, 1, qs, fq + i * f);
        }
        for (int64_t j = 0; j < c->m; j++) favor_row(c, k + j * c->d, 1, stab, fk + j * f);
    } else {
        for (int64_t i = 0; i < c->n * f; i++) fq[i] = phi1(c->fmap, q[i]);
        for (int64_t i = 0; i < c->m * f; i++) fk[i] = phi1(c->fmap, k[i]);
    }
    for (int64_t i = 0; i < c->n; i++) {
        double den = c->eps;
        for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] = 0;
        for (int64_t j = 0; j < c->m; j++) {
            if (!vis(c, i, j)) continue;
            const double sim = dotd(fq + i * f, fk + j * f, f);
            den += sim;
            for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] += sim * v[j * c->dv + e];
        }
        if (!c->normalize || den == 0) den = 1;
        for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] /= den;
    }
    free(fq);
    free(fk);
}

/* Mixed-chunk RELU2 as one dense weight per (i, j). */
static void ref_relu2(const cfg *c, const double *q, const double *k, const double *v, double *o)
{
    const int single = !c->causal && c->chunk >= c->n;
    for (int64_t i = 0; i < c->n; i++) {
        for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] = 0;
        for (int64_t j = 0; j < c->m; j++) {
            const double qk = dotd(q + i * c->d, k + j * c->d, c->d);
            double w;
            if (single) {
                w = qk / c->m > 0 ? (qk / c->m) * (qk / c->m) : 0;
            } else if (i / c->chunk == j / c->chunk) {
                w = (c->causal && j > i)
                        ? 0
                        : (qk / c->chunk > 0 ? (qk / c->chunk) * (qk / c->chunk) : 0);
                if (!c->causal) w += qk / c->n;
            } else if (!c->causal) {
                w = qk / c->n;
            } else {
                w = j / c->chunk < i / c->chunk ? qk / c->chunk : 0;
            }
            for (int64_t e = 0; e < c->dv; e++) o[i * c->dv + e] += w * v[j * c->dv + e];
        }
    }
}

/* The gated recurrence; g per head slice: gate 1 uses lg, 2 g[n], 3 g[n, d]. */
static void ref_gated(const cfg *c, const double *q, const double *k, const double *v,
                      const double *g, double lg, double *o)
{
    double *st = calloc((size_t)(c->d * c->dv), sizeof(double));
    for (int64_t t = 0; t < c->n; t++) {
        for (int64_t a = 0; a < c->d; a++) {
            const double gt = c->gate == 1   ? lg
                              : c->gate == 2 ? g[t]
                              : c->gate == 3 ? g[t * c->d + a]
                                             : 0;
            for (int64_t e = 0; e < c->dv; e++)
                st[a * c->dv + e] =
                    exp(gt) * st[a * c->dv + e] + k[t * c->d + a] * v[t * c->dv + e];
        }
        for (int64_t e = 0; e < c->dv; e++) {
            double s = 0;
            for (int64_t a = 0; a < c->d; a++) s += c->scale * q[t * c->d + a] * st[a * c->dv + e];
            o[t * c->dv + e] = s;
        }
    }
    free(st);
}

static int64_t glen(const cfg *c) { return c->gate == 3 ? c->n * c->d : c->gate == 2 ? c->n : 0; }

/* Reference over all batch-heads. */
static void ref_all(const cfg *c, const double *q, const double *k, const double *v,
                    const double *g, double *o)
{
    for (int64_t i = 0; i < c->b * c->h; i++) {
        const double *qi = q + i * c->n * c->d, *ki = k + i * c->m * c->d,
                     *vi = v + i * c->m * c->dv;
        double *oi = o + i * c->n * c->dv;
        g_head = (int)i;
        switch (c->kind) {
        case MM_ATTN_SOFTMAX:
        case MM_ATTN_SPARSE:
            ref_softmax(c, qi, ki, vi, oi);
            break;
        case MM_ATTN_LINEAR:
        case MM_ATTN_PERFORMER:
            ref_linear(c, qi, ki, vi, oi);
            break;
        case MM_ATTN_RELU2:
            ref_relu2(c, qi, ki, vi, oi);
            break;
        default:
            ref_gated(c, qi, ki, vi, g ? g + i * glen(c) : NULL,
                      log1p(-ldexp(1.0, -5 - (int)(i % c->h))), oi);
        }
    }
}

/* ---- the library side -------------------------------------------------------------------------- */
typedef struct run {
    mm_attn *h;
    mm_tensor *q, *k, *v, *g, *o, *dout, *dq, *dk, *dv, *dg;
} run;

static mm_tensor *t4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = {a, b, c, d};
    mm_tensor *t = NULL;
    CHECK_OK(mm_tensor_create(&t, 4, s, NULL));
    return t;
}
static mm_tensor *t3(int64_t a, int64_t b, int64_t c)
{
    int64_t s[3] = {a, b, c};
    mm_tensor *t = NULL;
    CHECK_OK(mm_tensor_create(&t, 3, s, NULL));
    return t;
}

static int make_handle(const cfg *c, int32_t threads, const mm_allocator *al, mm_attn **h)
{
    mm_attn_opts o;
    int rc;
    CHECK_OK(mm_attn_opts_init(&o, c->kind));
    o.alloc = al;
    o.feature_map = c->fmap, o.causal = c->causal, o.normalize = c->normalize;
    o.d_head = c->d, o.dv = c->dv, o.n_heads = c->h, o.max_batch = c->b;
    o.max_seq = c->n > c->m ? c->n : c->m;
    o.chunk = c->chunk, o.sparse_pattern = c->pattern, o.window = c->window, o.stride = c->stride;
    o.gate = c->gate == 1 ? MM_GATE_RETNET : MM_GATE_NONE;
    o.n_features = c->nf;
    o.n_threads = threads;
    rc = mm_attn_create(h, &o);
    if (rc != MM_OK) return rc;
    if (c->kind == MM_ATTN_PERFORMER && c->w) {
        mm_tensor *w = NULL;
        int64_t s[2] = {c->nf, c->d};
        CHECK_OK(mm_tensor_wrap(&w, (float *)c->w, 2, s, NULL));
        CHECK_OK(mm_attn_set_projection(*h, w));
        mm_tensor_free(w);
    }
    if (c->kind == MM_ATTN_PERFORMER || c->kind == MM_ATTN_LINEAR)
        CHECK_OK(mm_attn_set_f64(*h, MM_ATTN_EPS, c->eps));
    if (c->kind == MM_ATTN_PERFORMER) CHECK_OK(mm_attn_set_f64(*h, MM_ATTN_FEATURE_EPS, c->feps));
    CHECK_OK(mm_attn_set_f64(*h, MM_ATTN_SCALE, c->scale));
    return MM_OK;
}

static void run_open(run *r, const cfg *c, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(make_handle(c, 1, NULL, &r->h));
    r->q = t4(c->b, c->h, c->n, c->d), r->k = t4(c->b, c->h, c->m, c->d);
    r->v = t4(c->b, c->h, c->m, c->dv), r->o = t4(c->b, c->h, c->n, c->dv);
    r->dout = t4(c->b, c->h, c->n, c->dv), r->dq = t4(c->b, c->h, c->n, c->d);
    r->dk = t4(c->b, c->h, c->m, c->d), r->dv = t4(c->b, c->h, c->m, c->dv);
    mmt_fill_uniform(mm_tensor_data(r->q), mm_tensor_numel(r->q), seed, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(r->k), mm_tensor_numel(r->k), seed + 1, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(r->v), mm_tensor_numel(r->v), seed + 2, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(r->dout), mm_tensor_numel(r->dout), seed + 3, -1.0f, 1.0f);
    if (c->gate >= 2) {
        r->g = c->gate == 3 ? t4(c->b, c->h, c->n, c->d) : t3(c->b, c->h, c->n);
        r->dg = c->gate == 3 ? t4(c->b, c->h, c->n, c->d) : t3(c->b, c->h, c->n);
        /* strong and weak gates: log a in (glo, 0), glo = -3 unless the test asks */
        mmt_fill_uniform(mm_tensor_data(r->g), mm_tensor_numel(r->g), seed + 4,
                         c->glo < 0 ? (float)c->glo : -3.0f, -0.01f);
    }
}

static void run_close(run *r)
{
    mm_attn_free(r->h);
    mm_tensor *all[] = {r->q, r->k, r->v, r->g, r->o, r->dout, r->dq, r->dk, r->dv, r->dg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mm_tensor_free(all[i]);
}

static int run_fwd(run *r)
{
    return r->g ? mm_attn_forward_gated(r->h, r->q, r->k, r->v, r->g, r->o)
                : mm_attn_forward(r->h, r->q, r->k, r->v, r->o);
}

static double *to_f64(const mm_tensor *t)
{
    const int64_t n = mm_tensor_numel(t);
    double *x = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = mm_tensor_data(t)[i];
    return x;
}

/* Forward vs reference; returns the max abs error. */
static double check_forward(const cfg *c, uint64_t seed, double tol)
{
    run r;
    double err = 0;
    run_open(&r, c, seed);
    CHECK_OK(run_fwd(&r));
    {
        double *q = to_f64(r.q), *k = to_f64(r.k), *v = to_f64(r.v), *g = r.g ? to_f64(r.g) : NULL;
        const int64_t no = mm_tensor_numel(r.o);
        double *o = malloc(sizeof(double) * (size_t)no);
        ref_all(c, q, k, v, g, o);
        for (int64_t i = 0; i < no; i++) {
            const double e = fabs(mm_tensor_data(r.o)[i] - o[i]) / (1.0 + fabs(o[i]));
            err = e > err ? e : err;
        }
        if (err > tol)
            mmt_fail(__FILE__, __LINE__, "kind %d causal %d: forward error %.3g > %.3g",
                     (int)c->kind, (int)c->causal, err, tol);
        free(q), free(k), free(v), free(g), free(o);
    }
    run_close(&r);
    return err;
}

/* Loss = sum(out * dout) through the reference; central difference on one input element. */
static double ref_loss(const cfg *c, const double *q, const double *k, const double *v,
                       const double *g, const float *w, double *o)
{
    double s = 0;
    ref_all(c, q, k, v, g, o);
    for (int64_t i = 0; i < c->b * c->h * c->n * c->dv; i++) s += o[i] * w[i];
    return s;
}

static void fd_check_one(const cfg *c, const char *name, double *x, int64_t n, const float *grad,
                         const double *q, const double *k, const double *v, const double *g,
                         const float *w, double *o)
{
    const double h = 1e-5;
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i];
        double lp, lm, fd, e;
        x[i] = x0 + h;
        lp = ref_loss(c, q, k, v, g, w, o);
        x[i] = x0 - h;
        lm = ref_loss(c, q, k, v, g, w, o);
        x[i] = x0;
        fd = (lp - lm) / (2 * h);
        e = fabs(fd - grad[i]) / (1e-3 + fabs(fd));
        if (e > worst) worst = e, at = i;
    }
    if (worst > 2e-3)
        mmt_fail(__FILE__, __LINE__, "kind %d: d%s[%lld] off by rel %.3g", (int)c->kind, name,
                 (long long)at, worst);
}

static void check_grads(const cfg *c, uint64_t seed)
{
    run r;
    run_open(&r, c, seed);
    CHECK_OK(run_fwd(&r));
    CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, r.dg));
    {
        double *q = to_f64(r.q), *k = to_f64(r.k), *v = to_f64(r.v), *g = r.g ? to_f64(r.g) : NULL;
        double *o = malloc(sizeof(double) * (size_t)mm_tensor_numel(r.o));
        const float *w = mm_tensor_data(r.dout);
        fd_check_one(c, "q", q, mm_tensor_numel(r.q), mm_tensor_data(r.dq), q, k, v, g, w, o);
        fd_check_one(c, "k", k, mm_tensor_numel(r.k), mm_tensor_data(r.dk), q, k, v, g, w, o);
        fd_check_one(c, "v", v, mm_tensor_numel(r.v), mm_tensor_data(r.dv), q, k, v, g, w, o);
        if (g)
            fd_check_one(c, "g", g, mm_tensor_numel(r.g), mm_tensor_data(r.dg), q, k, v, g, w, o);
        free(q), free(k), free(v), free(g), free(o);
    }
    run_close(&r);
}

/* A random projection for PERFORMER tests (scaled like the drawn one: rows of norm ~ sqrt d). */
static float g_proj[64 * 64];
static void perf_cfg(cfg *c, int64_t nf)
{
    c->nf = nf;
    mmt_fill_uniform(g_proj, nf * c->d, 77, -1.7f, 1.7f);
    c->w = g_proj;
}

/* ---- tests ------------------------------------------------------------------------------------- */
static void test_attn_softmax_forward(void)
{
    const int q = mmt_quick();
    cfg c = cfg_make(MM_ATTN_SOFTMAX, 2, 2, q ? 19 : 150, q ? 23 : 130, 16, 8);
    check_forward(&c, 1, 2e-5); /* non-causal, N != M, across key and row blocks */
    c.causal = 1;
    check_forward(&c, 2, 2e-5); /* causal, N > M: the first rows see nothing and output 0 */
    c.n = q ? 17 : 70, c.m = q ? 40 : 200;
    check_forward(&c, 3, 2e-5); /* causal, bottom-right with M > N */
    c.n = c.m = q ? 33 : 129;
    check_forward(&c, 4, 2e-5);
}

/* Widths that use every SIMD block size (32-wide, 8-wide and scalar tails). */
static void test_attn_wide(void)
{
    const int32_t kinds[6] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER,
                              MM_ATTN_RELU2,   MM_ATTN_SPARSE, MM_ATTN_GATED};
    for (int i = 0; i < 6; i++) {
        cfg c = cfg_make(kinds[i], 1, 2, 70, 70, 41, 43);
        c.causal = 1, c.chunk = 24, c.window = 20;
        if (kinds[i] == MM_ATTN_PERFORMER) perf_cfg(&c, 45);
        if (kinds[i] == MM_ATTN_GATED) c.gate = 3, c.glo = -0.2;
        check_forward(&c, 180 + (uint64_t)i, 2e-5);
        c.n = c.m = 6, c.d = 33, c.dv = 34, c.chunk = 4, c.window = 3, c.h = 1;
        c.scale = 1.0 / sqrt(33.0);
        if (kinds[i] == MM_ATTN_PERFORMER) perf_cfg(&c, 35), c.feps = 0;
        check_grads(&c, 190 + (uint64_t)i);
    }
}

static void test_attn_softmax_grad(void)
{
    cfg c = cfg_make(MM_ATTN_SOFTMAX, 1, 2, 7, 5, 4, 3);
    check_grads(&c, 10);
    c.causal = 1;
    check_grads(&c, 11); /* rows 0-1 see no key */
    c.n = 5, c.m = 9;
    check_grads(&c, 12);
}

static void test_attn_sparse(void)
{
    cfg c = cfg_make(MM_ATTN_SPARSE, 1, 2, mmt_quick() ? 40 : 150, mmt_quick() ? 40 : 150, 8, 8);
    c.window = 5;
    check_forward(&c, 20, 2e-5);
    c.pattern = MM_SPARSE_STRIDED, c.stride = 7;
    check_forward(&c, 21, 2e-5);
    c.n = c.m = 9, c.d = 4, c.dv = 3, c.stride = 3;
    check_grads(&c, 22);
    c.pattern = MM_SPARSE_LOCAL, c.window = 3;
    check_grads(&c, 23);
}

static void test_attn_linear(void)
{
    const int32_t maps[3] = {MM_FMAP_ELU1, MM_FMAP_RELU, MM_FMAP_IDENTITY};
    for (int f = 0; f < 3; f++)
        for (int causal = 0; causal < 2; causal++) {
            cfg c = cfg_make(MM_ATTN_LINEAR, 2, 2, 37, 45, 8, 5);
            c.fmap = maps[f], c.causal = causal;
            if (maps[f] == MM_FMAP_IDENTITY) c.normalize = 0; /* signed denominators */
            check_forward(&c, 30 + (uint64_t)f, 2e-5);
            c.n = 45, c.m = 37;
            check_forward(&c, 40 + (uint64_t)f, 2e-5);
            c.n = 6, c.m = 5, c.d = 3, c.dv = 2;
            check_grads(&c, 50 + (uint64_t)f);
        }
    {
        cfg c = cfg_make(MM_ATTN_LINEAR, 1, 1, 6, 6, 3, 2);
        c.fmap = MM_FMAP_ELU1, c.normalize = 0, c.causal = 1;
        check_grads(&c, 60);
    }
}

/* The chunkwise causal path (N = M; chunks of 16 tokens): several chunks and a partial last
 * one, every feature map, normalised or not, odd d and dv; forward against float64 sums,
 * gradients against float64 finite differences (PERFORMER's causal mode runs the same path). */
static void test_attn_linear_chunks(void)
{
    const int32_t maps[3] = {MM_FMAP_ELU1, MM_FMAP_RELU, MM_FMAP_IDENTITY};
    for (int f = 0; f < 3; f++) {
        cfg c = cfg_make(MM_ATTN_LINEAR, 2, 2, 77, 77, 9, 7);
        c.fmap = maps[f], c.causal = 1;
        if (maps[f] == MM_FMAP_IDENTITY) c.normalize = 0;
        check_forward(&c, 320 + (uint64_t)f, 2e-5);
        c.b = 1, c.h = 1, c.n = c.m = 37, c.d = 5, c.dv = 3;
        check_grads(&c, 325 + (uint64_t)f);
        c.normalize = !c.normalize;
        if (maps[f] != MM_FMAP_IDENTITY) check_grads(&c, 330 + (uint64_t)f); /* unnormalised */
    }
    {
        cfg c = cfg_make(MM_ATTN_PERFORMER, 1, 2, 50, 50, 8, 5);
        c.causal = 1;
        perf_cfg(&c, 20);
        check_forward(&c, 335, 2e-5);
    }
    { /* dv > d: the stacked products' left operand is as wide as dv + the chunk; a sequence
       * of exactly two chunks (no partial one) */
        cfg c = cfg_make(MM_ATTN_LINEAR, 1, 2, 77, 77, 5, 11);
        c.causal = 1;
        check_forward(&c, 336, 2e-5);
        c.n = c.m = 32;
        check_forward(&c, 337, 2e-5);
        c.h = 1, c.n = c.m = 37, c.d = 3, c.dv = 7;
        check_grads(&c, 338);
        /* F >= the chunk: the backward keeps the chunks' P tiles between its passes */
        c.n = c.m = 35, c.d = 17, c.dv = 5;
        check_grads(&c, 339);
    }
}

/* The kernels with the feature map inside (mmi_attn_linear_fwd_map / _bwd_map: the causal
 * chunkwise path maps each chunk as it goes) give bitwise what the map passes around the plain
 * kernels give, on every map, normalised or not, causal (chunked, a partial last chunk) and
 * not; the backward also with dv aliasing dout (pass 1 keeps dnum in dv's rows). With
 * F >= MMI_ATTN_LINEAR_CHUNK the mapped backward keeps each chunk's P tile in tq for pass 2
 * where the plain one recomputes it: the same bits either way. */
static void fused_map_case(const int64_t N, const int64_t F, const int64_t W)
{
    const int32_t maps[3] = {MM_FMAP_ELU1, MM_FMAP_RELU, MM_FMAP_IDENTITY};
    const size_t wsn = mmi_attn_linear_ws_floats(N, F, W) + 64;
    float *ws = malloc(sizeof(float) * wsn), *b[20];
    for (int i = 0; i < 20; i++) b[i] = calloc((size_t)(N * (F > W ? F : W)), sizeof(float));
    float *q = b[0], *k = b[1], *v = b[2], *dout = b[3], *fq = b[4], *fk = b[5], *o = b[6],
          *den = b[7], *fq2 = b[8], *fk2 = b[9], *o2 = b[10], *den2 = b[11], *tq = b[12],
          *tk = b[13], *dq = b[14], *dk = b[15], *dv = b[16], *dq2 = b[17], *dk2 = b[18],
          *dv2 = b[19];
    mmt_fill_uniform(q, N * F, 700, -1.5f, 1.5f), mmt_fill_uniform(k, N * F, 701, -1.5f, 1.5f);
    mmt_fill_uniform(v, N * W, 702, -1, 1), mmt_fill_uniform(dout, N * W, 703, -1, 1);
    for (int f = 0; f < 3; f++)
        for (int causal = 0; causal < 2; causal++)
            for (int norm = 0; norm < 2; norm++) {
                const mmi_attn_dims s = {N, N, F, W, 1.0f, causal, 0, 0, 0};
                if (maps[f] == MM_FMAP_IDENTITY && norm) continue; /* signed denominators */
                mmi_attn_linear_fwd_map(&s, maps[f], norm, 1e-6, q, k, fq, fk, v, o, den, ws);
                mmi_attn_fmap_fwd(maps[f], q, fq2, N * F),
                    mmi_attn_fmap_fwd(maps[f], k, fk2, N * F);
                mmi_attn_linear_fwd(&s, norm, 1e-6, fq2, fk2, v, o2, den2, ws);
                CHECK(!memcmp(fq, fq2, sizeof(float) * N * F));
                CHECK(!memcmp(fk, fk2, sizeof(float) * N * F));
                CHECK(!memcmp(o, o2, sizeof(float) * N * W));
                CHECK(!memcmp(den, den2, sizeof(float) * N));
                { /* with the copies of v and o for the backward (the operator's call) */
                    const mmi_attn_fmap_in in = {maps[f], q, k, dv2, dq2};
                    memset(fq2, 0, sizeof(float) * N * F), memset(fk2, 0, sizeof(float) * N * F);
                    mmi_attn_linear_fwd_io(&s, &in, norm, 1e-6, fq2, fk2, v, o2, den2, ws);
                    CHECK(!memcmp(fq, fq2, sizeof(float) * N * F));
                    CHECK(!memcmp(fk, fk2, sizeof(float) * N * F));
                    CHECK(!memcmp(o, o2, sizeof(float) * N * W));
                    CHECK(!memcmp(dq2, o, sizeof(float) * N * W));
                    CHECK(!memcmp(dv2, v, sizeof(float) * N * W));
                }
                mmi_attn_linear_bwd_map(&s, maps[f], norm, fq, fk, v, o, den, dout, dq, dk, dv, tq,
                                        tk, ws);
                mmi_attn_linear_bwd(&s, norm, fq, fk, v, o, den, dout, tq, tk, dv2, ws);
                mmi_attn_fmap_bwd(maps[f], fq, tq, dq2, N * F);
                mmi_attn_fmap_bwd(maps[f], fk, tk, dk2, N * F);
                CHECK(!memcmp(dq, dq2, sizeof(float) * N * F));
                CHECK(!memcmp(dk, dk2, sizeof(float) * N * F));
                CHECK(!memcmp(dv, dv2, sizeof(float) * N * W));
                memcpy(dv, dout, sizeof(float) * N * W); /* dv aliasing dout */
                mmi_attn_linear_bwd_map(&s, maps[f], norm, fq, fk, v, o, den, dv, dq, dk, dv, tq,
                                        tk, ws);
                CHECK(!memcmp(dq, dq2, sizeof(float) * N * F));
                CHECK(!memcmp(dv, dv2, sizeof(float) * N * W));
            }
    for (int i = 0; i < 20; i++) free(b[i]);
    free(ws);
}

static void test_attn_linear_fused_map(void)
{
    { /* mmi_attn_copy_keep: memcpy's result at every length and alignment of the destination */
        float src[77], dst[80], want[80];
        for (int i = 0; i < 77; i++) src[i] = (float)i + 0.5f;
        for (int off = 0; off < 3; off++)
            for (int n = 0; n <= 77; n += 1 + (n > 20) * 6) {
                for (int i = 0; i < 80; i++) dst[i] = want[i] = -1.0f;
                memcpy(want + off, src, sizeof(float) * (size_t)n);
                mmi_attn_copy_keep(n, src, dst + off, off == 1);
                CHECK(!memcmp(dst, want, sizeof dst));
            }
        mmi_attn_copy_keep(0, NULL, NULL, 1);
    }
    fused_map_case(77, 9, 7);
    fused_map_case(77, 20, 7); /* P kept in tq */
    fused_map_case(48, 16, 24);
}

/* LINEAR's forward reads q and k in place (its backward needs only the saved features): out may
 * alias q, and q, k overwritten between forward and backward change nothing; nor do v and out
 * when out is apart from the inputs (the kernel then saves them chunk by chunk). */
static void test_attn_linear_inputs_reused(void)
{
    const int64_t b = 1, h = 2, n = 40, d = 6, numel = b * h * n * d;
    mm_tensor *q = t4(b, h, n, d), *k = t4(b, h, n, d), *v = t4(b, h, n, d), *o = t4(b, h, n, d);
    mm_tensor *o2 = t4(b, h, n, d), *g[6];
    mm_attn *a = NULL;
    cfg c = cfg_make(MM_ATTN_LINEAR, b, h, n, n, d, d);
    c.causal = 1;
    for (int i = 0; i < 6; i++) g[i] = t4(b, h, n, d);
    for (int64_t i = 0; i < numel; i++) {
        mm_tensor_data(q)[i] = (float)sin(0.37 * (double)i);
        mm_tensor_data(k)[i] = (float)cos(0.23 * (double)i);
        mm_tensor_data(v)[i] = (float)sin(0.11 * (double)i + 1.0);
    }
    CHECK_OK(make_handle(&c, 1, NULL, &a));
    CHECK_OK(mm_attn_forward(a, q, k, v, o));
    CHECK_OK(mm_attn_backward(a, v, g[0], g[1], g[2], NULL));
    memcpy(mm_tensor_data(o2), mm_tensor_data(q), sizeof(float) * (size_t)numel);
    CHECK_OK(mm_attn_forward(a, o2, k, v, o2)); /* out aliases q */
    CHECK(memcmp(mm_tensor_data(o2), mm_tensor_data(o), sizeof(float) * (size_t)numel) == 0);
    for (int64_t i = 0; i < numel; i++) mm_tensor_data(k)[i] = 1e3f; /* k reused */
    CHECK_OK(mm_attn_backward(a, v, g[3], g[4], g[5], NULL));
    for (int i = 0; i < 3; i++)
        CHECK(memcmp(mm_tensor_data(g[i]), mm_tensor_data(g[i + 3]),
                     sizeof(float) * (size_t)numel) == 0);
    /* out apart from the inputs (the kernel saves v and the output as it goes): v and out
     * overwritten before the backward change nothing either */
    for (int64_t i = 0; i < numel; i++) mm_tensor_data(k)[i] = (float)cos(0.23 * (double)i);
    memcpy(mm_tensor_data(o2), mm_tensor_data(v), sizeof(float) * (size_t)numel);
    CHECK_OK(mm_attn_forward(a, q, k, o2, o));
    for (int64_t i = 0; i < numel; i++) mm_tensor_data(o2)[i] = mm_tensor_data(o)[i] = -7.0f;
    CHECK_OK(mm_attn_backward(a, v, g[3], g[4], g[5], NULL));
    for (int i = 0; i < 3; i++)
        CHECK(memcmp(mm_tensor_data(g[i]), mm_tensor_data(g[i + 3]),
                     sizeof(float) * (size_t)numel) == 0);
    mm_attn_free(a);
    for (int i = 0; i < 6; i++) mm_tensor_free(g[i]);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(o), mm_tensor_free(o2);
}

/* GATED keeps q, k, v a chunk at a time as its kernel reads them (and copies them first when
 * out overlaps an input): both paths give the same bits, and q, k, v and g overwritten between
 * forward and backward change no gradient. Every gate mode, a partial last chunk. */
static void test_attn_gated_inputs_kept(void)
{
    for (int gate = 0; gate < 4; gate++) {
        cfg c = cfg_make(MM_ATTN_GATED, 2, 2, 40, 40, 8, 8);
        run r;
        mm_tensor *o2, *grads[4];
        int64_t numel;
        c.gate = gate, c.chunk = 16;
        run_open(&r, &c, 300 + (uint64_t)gate);
        numel = mm_tensor_numel(r.q);
        o2 = t4(c.b, c.h, c.n, c.dv);
        for (int i = 0; i < 3; i++) grads[i] = t4(c.b, c.h, c.n, c.d);
        grads[3] = r.g ? (gate == 3 ? t4(c.b, c.h, c.n, c.d) : t3(c.b, c.h, c.n)) : NULL;
        CHECK_OK(run_fwd(&r));
        CHECK_OK(mm_attn_backward(r.h, r.dout, grads[0], grads[1], grads[2], grads[3]));
        memcpy(mm_tensor_data(o2), mm_tensor_data(r.q), sizeof(float) * (size_t)numel);
        CHECK_OK(r.g ? mm_attn_forward_gated(r.h, o2, r.k, r.v, r.g, o2)
                     : mm_attn_forward(r.h, o2, r.k, r.v, o2)); /* out aliases q */
        CHECK(memcmp(mm_tensor_data(o2), mm_tensor_data(r.o), sizeof(float) * (size_t)numel) == 0);
        CHECK_OK(run_fwd(&r));
        for (int64_t i = 0; i < numel; i++) /* the caller reuses its buffers */
            mm_tensor_data(r.q)[i] = mm_tensor_data(r.k)[i] = mm_tensor_data(r.v)[i] = 1e3f;
        if (r.g)
            for (int64_t i = 0; i < mm_tensor_numel(r.g); i++) mm_tensor_data(r.g)[i] = -5.0f;
        CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, r.dg));
        CHECK(memcmp(mm_tensor_data(grads[0]), mm_tensor_data(r.dq),
                     sizeof(float) * (size_t)numel) == 0);
        CHECK(memcmp(mm_tensor_data(grads[1]), mm_tensor_data(r.dk),
                     sizeof(float) * (size_t)numel) == 0);
        CHECK(memcmp(mm_tensor_data(grads[2]), mm_tensor_data(r.dv),
                     sizeof(float) * (size_t)numel) == 0);
        if (r.g)
            CHECK(memcmp(mm_tensor_data(grads[3]), mm_tensor_data(r.dg),
                         sizeof(float) * (size_t)mm_tensor_numel(r.g)) == 0);
        for (int i = 0; i < 4; i++) mm_tensor_free(grads[i]);
        mm_tensor_free(o2);
        run_close(&r);
    }
}

/* Outputs that share memory with inputs: out may be q, k or v itself (same address and size)
 * but no other overlap, and no gradient may share memory with dout or another gradient. Before
 * this was checked, softmax's dq written over dout came back wrong with MM_OK, and an out over
 * parts of two heads' q gave results that depended on the order the heads ran in. A refused
 * call leaves the handle usable: a backward refused keeps the forward to differentiate. */
static void test_attn_overlap_refused(void)
{
    static const int32_t kinds[] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_RELU2, MM_ATTN_GATED};
    for (size_t kk = 0; kk < sizeof kinds / sizeof kinds[0]; kk++) {
        cfg c = cfg_make(kinds[kk], 1, 2, 16, 16, 4, 4);
        run r;
        const int64_t numel = 2 * 16 * 4, s[4] = {1, 2, 16, 4};
        float *buf = calloc((size_t)(2 * numel), sizeof(float));
        mm_tensor *qw = NULL, *ow = NULL, *dq2 = NULL;
        c.causal = 1, c.chunk = 8;
        run_open(&r, &c, 340 + kk);
        memcpy(buf, mm_tensor_data(r.q), sizeof(float) * (size_t)numel);
        CHECK_OK(mm_tensor_wrap(&qw, buf, 4, s, NULL));
        CHECK_OK(mm_tensor_wrap(&ow, buf + numel / 4, 4, s, NULL)); /* over both heads' q */
        CHECK_STATUS(mm_attn_forward(r.h, qw, r.k, r.v, ow), MM_E_INVALID_ARG);
        CHECK(strstr(mm_attn_errmsg(r.h), "out overlaps q") != NULL);
        CHECK_STATUS(mm_attn_forward(r.h, r.q, qw, r.v, ow), MM_E_INVALID_ARG); /* k */
        CHECK_STATUS(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, NULL), MM_E_STATE);
        CHECK_OK(mm_attn_forward(r.h, r.q, r.k, r.v, r.o));
        dq2 = t4(1, 2, 16, 4);
        CHECK_OK(mm_attn_backward(r.h, r.dout, dq2, r.dk, r.dv, NULL));
        CHECK_STATUS(mm_attn_backward(r.h, r.dout, r.dout, r.dk, r.dv, NULL), MM_E_INVALID_ARG);
        CHECK(strstr(mm_attn_errmsg(r.h), "dq shares memory with dout") != NULL);
        CHECK_STATUS(mm_attn_backward(r.h, r.dout, r.dq, r.dq, r.dv, NULL), MM_E_INVALID_ARG);
        CHECK_STATUS(mm_attn_backward(r.h, r.dout, NULL, ow, qw, NULL), MM_E_INVALID_ARG);
        CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, NULL)); /* still differentiable */
        CHECK(memcmp(mm_tensor_data(dq2), mm_tensor_data(r.dq), sizeof(float) * (size_t)numel) ==
              0);
        memcpy(mm_tensor_data(dq2), mm_tensor_data(r.q), sizeof(float) * (size_t)numel);
        CHECK_OK(mm_attn_forward(r.h, dq2, r.k, r.v, dq2)); /* out is q itself: accepted */
        CHECK(memcmp(mm_tensor_data(dq2), mm_tensor_data(r.o), sizeof(float) * (size_t)numel) == 0);
        mm_tensor_free(qw), mm_tensor_free(ow), mm_tensor_free(dq2);
        free(buf);
        run_close(&r);
    }
    /* Streaming: out may share no memory with an input (RELU2's and GATED's step kernels
     * returned wrong values with MM_OK for out == q). */
    for (size_t kk = 0; kk < sizeof kinds / sizeof kinds[0]; kk++) {
        cfg c = cfg_make(kinds[kk], 1, 2, 8, 8, 4, 4);
        mm_attn *h = NULL;
        const int64_t s[3] = {1, 2, 4};
        float buf[16];
        mm_tensor *q = NULL, *k = NULL, *v = NULL, *o = NULL, *ow = NULL;
        c.causal = 1, c.chunk = 4;
        CHECK_OK(make_handle(&c, 1, NULL, &h));
        CHECK_OK(mm_tensor_wrap(&q, buf, 3, s, NULL));
        CHECK_OK(mm_tensor_wrap(&ow, buf + 4, 3, s, NULL));
        k = t3(1, 2, 4), v = t3(1, 2, 4), o = t3(1, 2, 4);
        mmt_fill_uniform(buf, 16, 350 + kk, -1.0f, 1.0f);
        mmt_fill_uniform(mm_tensor_data(k), 8, 360 + kk, -1.0f, 1.0f);
        mmt_fill_uniform(mm_tensor_data(v), 8, 370 + kk, -1.0f, 1.0f);
        CHECK_STATUS(mm_attn_step(h, q, k, v, NULL, q), MM_E_INVALID_ARG);
        CHECK(strstr(mm_attn_errmsg(h), "out shares memory with q") != NULL);
        CHECK_STATUS(mm_attn_step(h, q, k, v, NULL, ow), MM_E_INVALID_ARG);
        CHECK_STATUS(mm_attn_step(h, q, k, v, NULL, v), MM_E_INVALID_ARG);
        CHECK_OK(mm_attn_step(h, q, k, v, NULL, o)); /* the refusals took no step */
        CHECK_STATUS(mm_attn_step(h, q, k, v, NULL, k), MM_E_INVALID_ARG);
        mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(o);
        mm_tensor_free(ow);
        mm_attn_free(h);
    }
}

static void test_attn_performer(void)
{
    for (int causal = 0; causal < 2; causal++) {
        cfg c = cfg_make(MM_ATTN_PERFORMER, 2, 2, 33, 29, 8, 5);
        c.causal = causal;
        perf_cfg(&c, 20);
        check_forward(&c, 70, 2e-5);
        c.n = c.m = 5, c.d = 4, c.dv = 3;
        perf_cfg(&c, 6);
        /* The stabilisers are held constant (detached, as performer-pytorch); with feature
         * eps 0 they cancel exactly, so the reference's finite differences may move them. */
        c.feps = 0;
        check_grads(&c, 71);
    }
}

static void test_attn_performer_projection(void)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *w = NULL, *w2 = NULL;
    int64_t s[2] = {266, 64};
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_PERFORMER));
    o.seed = 5;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_tensor_create(&w, 2, s, NULL)); /* default m = int(64 ln 64) = 266 */
    CHECK_OK(mm_tensor_create(&w2, 2, s, NULL));
    CHECK_OK(mm_attn_get_projection(h, w));
    { /* rows of one block are orthogonal; row norms are chi_d draws (around 8) */
        const float *x = mm_tensor_data(w);
        double d01 = 0, n0 = 0, n1 = 0;
        for (int e = 0; e < 64; e++)
            d01 += x[e] * x[64 + e], n0 += x[e] * x[e], n1 += x[64 + e] * x[64 + e];
        CHECK(fabs(d01) < 1e-4 * sqrt(n0 * n1));
        CHECK(sqrt(n0) > 4 && sqrt(n0) < 12);
    }
    CHECK_OK(mm_attn_redraw(h));
    CHECK_OK(mm_attn_get_projection(h, w2));
    CHECK(memcmp(mm_tensor_data(w), mm_tensor_data(w2), 266 * 64 * 4) != 0);
    CHECK_OK(mm_attn_set_projection(h, w));
    CHECK_OK(mm_attn_get_projection(h, w2));
    CHECK(memcmp(mm_tensor_data(w), mm_tensor_data(w2), 266 * 64 * 4) == 0);
    mm_attn_free(h);
    h = NULL;
    CHECK_OK(mm_attn_create(&h, &o)); /* same seed, same projection */
    CHECK_OK(mm_attn_get_projection(h, w2));
    CHECK(memcmp(mm_tensor_data(w), mm_tensor_data(w2), 266 * 64 * 4) == 0);
    mm_tensor_data(w)[3] = NAN;
    CHECK_STATUS(mm_attn_set_projection(h, w), MM_E_NUMERIC);
    mm_attn_free(h);
    mm_tensor_free(w);
    mm_tensor_free(w2);
}

static void test_attn_relu2(void)
{
    cfg c = cfg_make(MM_ATTN_RELU2, 2, 2, 100, 100, 8, 6);
    c.causal = 1, c.chunk = 32; /* 100 is not a multiple of 32 */
    check_forward(&c, 80, 2e-5);
    c.causal = 0;
    check_forward(&c, 81, 2e-5); /* non-causal mixed chunks */
    c.chunk = 256, c.m = 77;
    check_forward(&c, 82, 2e-5); /* one chunk: GAU, M != N */
    c.n = 7, c.m = 5, c.d = 3, c.dv = 2;
    check_grads(&c, 83);
    c.m = 7, c.chunk = 3;
    check_grads(&c, 84);
    c.causal = 1;
    check_grads(&c, 85);
}

/* RELU2's tiles (64 query rows x 64 keys inside a chunk) and chunk states across their
 * blocks: chunks longer than a block and not multiples of it, causal and not, GAU with M != N
 * over two key blocks, odd d and dv; forward against the float64 reference, gradients
 * against float64 finite differences. */
static void test_attn_relu2_tiles(void)
{
    const int q = mmt_quick();
    cfg c = cfg_make(MM_ATTN_RELU2, 1, 2, q ? 150 : 300, q ? 150 : 300, 7, 9);
    c.causal = 1, c.chunk = 130;
    check_forward(&c, 310, 2e-5);
    c.causal = 0;
    check_forward(&c, 311, 2e-5);
    c = cfg_make(MM_ATTN_RELU2, 1, 1, q ? 90 : 150, q ? 90 : 150, 5, 3);
    c.causal = 1, c.chunk = 70; /* two row and key blocks per chunk, a partial last chunk */
    check_grads(&c, 312);
    c.causal = 0;
    check_grads(&c, 313); /* mixed non-causal chunks: the global state */
    c.chunk = 256, c.n = 70, c.m = q ? 80 : 131, c.d = 3, c.dv = 4;
    check_grads(&c, 314); /* GAU: one chunk, M != N, key blocks past 64 */
    /* causal diagonal tiles of 64 and 36 rows (chunk 100) and 40 (the last chunk): row and key
     * pieces of 32 and the partial pieces after them */
    c = cfg_make(MM_ATTN_RELU2, 1, 1, 140, 140, 5, 3);
    c.causal = 1, c.chunk = 100;
    check_forward(&c, 315, 2e-5);
    if (!q) check_grads(&c, 316);
}

/* RELU2's forward writes the caller's output directly when it is apart from q, k and v, and
 * through the reserved slice when it aliases one: the same bits either way, and q, k, v and out
 * overwritten between forward and backward change no gradient. Causal and not, a partial last
 * chunk, two batch-heads. */
static void test_attn_relu2_inputs_kept(void)
{
    for (int causal = 0; causal < 2; causal++) {
        cfg c = cfg_make(MM_ATTN_RELU2, 1, 2, 100, 100, 8, 8);
        run r;
        mm_tensor *o2, *grads[3];
        int64_t numel;
        c.causal = causal, c.chunk = 40;
        run_open(&r, &c, 330 + (uint64_t)causal);
        numel = mm_tensor_numel(r.q);
        o2 = t4(c.b, c.h, c.n, c.dv);
        for (int i = 0; i < 3; i++) grads[i] = t4(c.b, c.h, c.n, c.d);
        /* NaN in every output: the kernels write each element (no zeroing pass) */
        for (int64_t i = 0; i < numel; i++)
            mm_tensor_data(r.o)[i] = mm_tensor_data(grads[0])[i] = mm_tensor_data(grads[1])[i] =
                mm_tensor_data(grads[2])[i] = NAN;
        CHECK_OK(run_fwd(&r));
        CHECK_OK(mm_attn_backward(r.h, r.dout, grads[0], grads[1], grads[2], NULL));
        for (int64_t i = 0; i < numel; i++)
            CHECK(isfinite(mm_tensor_data(r.o)[i]) && isfinite(mm_tensor_data(grads[0])[i]) &&
                  isfinite(mm_tensor_data(grads[1])[i]) && isfinite(mm_tensor_data(grads[2])[i]));
        memcpy(mm_tensor_data(o2), mm_tensor_data(r.q), sizeof(float) * (size_t)numel);
        CHECK_OK(mm_attn_forward(r.h, o2, r.k, r.v, o2)); /* out aliases q */
        CHECK(memcmp(mm_tensor_data(o2), mm_tensor_data(r.o), sizeof(float) * (size_t)numel) == 0);
        CHECK_OK(run_fwd(&r));
        for (int64_t i = 0; i < numel; i++) /* the caller reuses its buffers */
            mm_tensor_data(r.q)[i] = mm_tensor_data(r.k)[i] = mm_tensor_data(r.v)[i] =
                mm_tensor_data(r.o)[i] = 1e3f;
        CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, NULL));
        {
            const mm_tensor *again[3] = {r.dq, r.dk, r.dv};
            for (int i = 0; i < 3; i++) {
                CHECK(memcmp(mm_tensor_data(grads[i]), mm_tensor_data(again[i]),
                             sizeof(float) * (size_t)numel) == 0);
                mm_tensor_free(grads[i]);
            }
        }
        mm_tensor_free(o2);
        run_close(&r);
    }
}

static void test_attn_gated(void)
{
    const int64_t chunks[4] = {1, 5, 16, 64};
    for (int gate = 0; gate < 4; gate++)
        for (int ci = 0; ci < 4; ci++) {
            cfg c = cfg_make(MM_ATTN_GATED, 2, 3, 37, 37, 8, 5);
            c.gate = gate, c.chunk = chunks[ci];
            check_forward(&c, 90 + (uint64_t)(gate * 4 + ci), 2e-5); /* chunkwise == recurrent */
        }
    for (int gate = 0; gate < 4; gate++) {
        cfg c = cfg_make(MM_ATTN_GATED, 1, 2, 7, 7, 3, 2);
        c.gate = gate, c.chunk = 3;
        check_grads(&c, 110 + (uint64_t)gate);
    }
    for (int gate = 2; gate < 4; gate++) { /* strong gates (log a down to -6) over 64-chunks:
                                            * cumulative log-gates reach -380, nothing overflows */
        cfg c = cfg_make(MM_ATTN_GATED, 1, 2, 150, 150, 8, 5);
        c.gate = gate, c.chunk = 64, c.glo = -6.0;
        check_forward(&c, 120 + (uint64_t)gate, 2e-5);
        c.n = c.m = 9, c.d = 3, c.dv = 2, c.chunk = 4;
        check_grads(&c, 125 + (uint64_t)gate);
        c.n = c.m = 45, c.chunk = 40, c.h = 1; /* sub-chunks of 16 inside a 40-chunk */
        check_grads(&c, 130 + (uint64_t)gate);
        c.glo = -0.3; /* weak gates: pairs across sub-chunks matter */
        check_grads(&c, 135 + (uint64_t)gate);
        check_forward(&c, 140 + (uint64_t)gate, 2e-5);
    }
    for (int gate = 0; gate < 4; gate += 3) { /* tiles too large for the GEMM's unpacked path:
                                               * the row-primitive fallback */
        cfg c =
            cfg_make(MM_ATTN_GATED, 1, 1, mmt_quick() ? 160 : 300, mmt_quick() ? 160 : 300, 72, 72);
        c.gate = gate, c.chunk = 256, c.glo = -0.05;
        check_forward(&c, 145 + (uint64_t)gate, 2e-5);
    }
}

/* ---- gated precision: every gate the API accepts, every chunk size -------------------------- */
/* Float64 reference of one head by pairs: o_t = sum_{u<=t} A_tu v_u with
 * A_tu = scale sum_c q_tc k_uc exp(D_tuc), D_tuc = sum_{s=u+1..t} g_sc summed directly (no
 * differences of cumulative sums, so no cancellation for any gate), with all gradients:
 * dg_s = sum over pairs u < s <= t of the pair's term. gl = 1 (scalar gates) or d. */
static void ref_gated_pairs(int64_t n, int64_t d, int64_t dv, int64_t gl, double scale,
                            const float *q, const float *k, const float *v, const float *g,
                            const float *dout, double *o, double *dq, double *dk, double *dv_,
                            double *dg)
{
    double *dd = malloc(sizeof(double) * (size_t)d), *w = malloc(sizeof(double) * (size_t)(n * d));
    memset(o, 0, sizeof(double) * (size_t)(n * dv)),
        memset(dq, 0, sizeof(double) * (size_t)(n * d));
    memset(dk, 0, sizeof(double) * (size_t)(n * d)),
        memset(dv_, 0, sizeof(double) * (size_t)(n * dv));
    memset(dg, 0, sizeof(double) * (size_t)(n * gl));
    for (int64_t t = 0; t < n; t++) {
        for (int64_t c = 0; c < d; c++) dd[c] = 0.0;
        for (int64_t u = t; u >= 0; u--) {
            double a = 0.0, x = 0.0;
            if (u < t)
                for (int64_t c = 0; c < d; c++) dd[c] += g[(u + 1) * gl + (gl == 1 ? 0 : c)];
            for (int64_t e = 0; e < dv; e++) x += (double)dout[t * dv + e] * v[u * dv + e];
            for (int64_t c = 0; c < d; c++) {
                const double f = scale * exp(dd[c]);
                a += f * q[t * d + c] * k[u * d + c];
                dq[t * d + c] += x * f * k[u * d + c];
                dk[u * d + c] += x * f * q[t * d + c];
                w[u * d + c] = x * f * q[t * d + c] * k[u * d + c];
            }
            for (int64_t e = 0; e < dv; e++) {
                o[t * dv + e] += a * v[u * dv + e];
                dv_[u * dv + e] += a * dout[t * dv + e];
            }
        }
        for (int64_t c = 0; c < d; c++) { /* dg_s += sum_{u<s} w_u for s = 1..t */
            double pre = 0.0;
            for (int64_t s = 1; s <= t; s++) {
                pre += w[(s - 1) * d + c];
                dg[s * gl + (gl == 1 ? 0 : c)] += pre;
            }
        }
    }
    free(dd), free(w);
}

/* max |x - ref| over n entries. */
static double max_err(const float *x, const double *ref, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(x[i] - ref[i]));
    return e;
}
static double max_abs(const double *x, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(x[i]));
    return e;
}

typedef struct gprec {
    int64_t n, d, dv, gl, chunk;
    double scale;
    const float *q, *k, *v, *g, *dout;
} gprec;

/* Forward, backward and (stream = 1) the step at every position of one head against the pair
 * reference; the normalised errors (max abs error / max abs reference) must be <= 1e-5. The
 * gradients share one normaliser, the largest reference gradient: dg comes from FLA's identity
 * dg = rev-cumsum(q . dq - k . dk), a difference of terms of the size of the other gradients,
 * so its rounding is relative to them (with strong gates dg itself is ~0). */
static void check_gprec(const gprec *p, int stream, const char *what)
{
    const int64_t n = p->n, d = p->d, dv = p->dv, gl = p->gl;
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *q = t4(1, 1, n, d), *k = t4(1, 1, n, d), *v = t4(1, 1, n, dv),
              *out = t4(1, 1, n, dv);
    mm_tensor *dout = t4(1, 1, n, dv), *dq = t4(1, 1, n, d), *dk = t4(1, 1, n, d),
              *dvt = t4(1, 1, n, dv);
    mm_tensor *g = gl == 1 ? t3(1, 1, n) : t4(1, 1, n, d),
              *dg = gl == 1 ? t3(1, 1, n) : t4(1, 1, n, d);
    double *ro = malloc(sizeof(double) * (size_t)(n * dv)),
           *rq = malloc(sizeof(double) * (size_t)(n * d));
    double *rk = malloc(sizeof(double) * (size_t)(n * d)),
           *rv = malloc(sizeof(double) * (size_t)(n * dv));
    double *rg = malloc(sizeof(double) * (size_t)(n * gl)), eo, egr, gmax;
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_GATED));
    o.d_head = d, o.dv = dv, o.n_heads = 1, o.max_batch = 1, o.max_seq = n, o.chunk = p->chunk;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_attn_set_f64(h, MM_ATTN_SCALE, p->scale));
    memcpy(mm_tensor_data(q), p->q, sizeof(float) * (size_t)(n * d));
    memcpy(mm_tensor_data(k), p->k, sizeof(float) * (size_t)(n * d));
    memcpy(mm_tensor_data(v), p->v, sizeof(float) * (size_t)(n * dv));
    memcpy(mm_tensor_data(g), p->g, sizeof(float) * (size_t)(n * gl));
    memcpy(mm_tensor_data(dout), p->dout, sizeof(float) * (size_t)(n * dv));
    CHECK_OK(mm_attn_forward_gated(h, q, k, v, g, out));
    CHECK_OK(mm_attn_backward(h, dout, dq, dk, dvt, dg));
    ref_gated_pairs(n, d, dv, gl, p->scale, p->q, p->k, p->v, p->g, p->dout, ro, rq, rk, rv, rg);
    eo = max_err(mm_tensor_data(out), ro, n * dv) / fmax(max_abs(ro, n * dv), 1e-30);
    gmax = fmax(fmax(max_abs(rq, n * d), max_abs(rk, n * d)),
                fmax(max_abs(rv, n * dv), max_abs(rg, n * gl)));
    egr = fmax(fmax(max_err(mm_tensor_data(dq), rq, n * d), max_err(mm_tensor_data(dk), rk, n * d)),
               fmax(max_err(mm_tensor_data(dvt), rv, n * dv),
                    max_err(mm_tensor_data(dg), rg, n * gl))) /
          fmax(gmax, 1e-30);
    if (eo > 1e-5 || egr > 1e-5)
        mmt_fail(__FILE__, __LINE__,
                 "gated %s (gates %s, chunk %lld, n %lld): out error %.3g, "
                 "gradient error %.3g (normalised, limit 1e-5)",
                 what, gl == 1 ? "scalar" : "per-key", (long long)p->chunk, (long long)n, eo, egr);
    if (stream) { /* the O(1) step returns what the forward returns */
        mm_tensor *q1 = t3(1, 1, d), *k1 = t3(1, 1, d), *v1 = t3(1, 1, dv), *o1 = t3(1, 1, dv), *g1;
        double es = 0.0;
        int64_t gs[2] = {1, 1};
        if (gl == 1)
            CHECK_OK(mm_tensor_create(&g1, 2, gs, NULL));
        else
            g1 = t3(1, 1, d);
        CHECK_OK(mm_attn_reset(h));
        for (int64_t t = 0; t < n; t++) {
            memcpy(mm_tensor_data(q1), p->q + t * d, sizeof(float) * (size_t)d);
            memcpy(mm_tensor_data(k1), p->k + t * d, sizeof(float) * (size_t)d);
            memcpy(mm_tensor_data(v1), p->v + t * dv, sizeof(float) * (size_t)dv);
            memcpy(mm_tensor_data(g1), p->g + t * gl, sizeof(float) * (size_t)gl);
            CHECK_OK(mm_attn_step(h, q1, k1, v1, g1, o1));
            for (int64_t e = 0; e < dv; e++)
                es = fmax(es, fabs(mm_tensor_data(o1)[e] - ro[t * dv + e]));
        }
        es /= fmax(max_abs(ro, n * dv), 1e-30);
        if (es > 1e-5)
            mmt_fail(__FILE__, __LINE__, "gated %s: step vs reference %.3g (limit 1e-5)", what, es);
        mm_tensor_free(q1), mm_tensor_free(k1), mm_tensor_free(v1), mm_tensor_free(o1),
            mm_tensor_free(g1);
    }
    mm_attn_free(h);
    mm_tensor *all[] = {q, k, v, out, dout, dq, dk, dvt, g, dg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mm_tensor_free(all[i]);
    free(ro), free(rq), free(rk), free(rv), free(rg);
}

/* The issue's repro: d = dv = 1, q = k = v = 1, scale 1, log-gates [-1e5, -0.3, -0.3]. After
 * the strong gate the state restarts, so out = [1, 1 + e^-0.3, 1 + e^-0.3 + e^-0.6]; float32
 * cumulative sums gave out[1] = 1.7431369 (exact 1.7408182). */
static void test_attn_gated_strong_repro(void)
{
    const float one[3] = {1, 1, 1}, g[3] = {-1e5f, -0.3f, -0.3f};
    const double want[3] = {1.0, 1.0 + exp(-0.3), 1.0 + exp(-0.3) + exp(-0.6)};
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *q = t4(1, 1, 3, 1), *k = t4(1, 1, 3, 1), *v = t4(1, 1, 3, 1), *out = t4(1, 1, 3, 1);
    mm_tensor *gt = t3(1, 1, 3);
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_GATED));
    o.d_head = 1, o.dv = 1, o.n_heads = 1, o.max_batch = 1, o.max_seq = 3;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_attn_set_f64(h, MM_ATTN_SCALE, 1.0));
    memcpy(mm_tensor_data(q), one, sizeof one), memcpy(mm_tensor_data(k), one, sizeof one);
    memcpy(mm_tensor_data(v), one, sizeof one), memcpy(mm_tensor_data(gt), g, sizeof g);
    CHECK_OK(mm_attn_forward_gated(h, q, k, v, gt, out));
    for (int t = 0; t < 3; t++) CHECK_NEAR(mm_tensor_data(out)[t], want[t], 1e-6, 0);
    mm_attn_free(h);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(out),
        mm_tensor_free(gt);
}

/* Gate patterns of the sweep: 0 mild gates in (-0.3, 0) with G at every 7th step (per key:
 * staggered), 1 every gate G, 2 a random mix of 0 and G. */
static void fill_gates(float *g, int64_t n, int64_t gl, float big, int pattern, uint64_t seed)
{
    float *r = malloc(sizeof(float) * (size_t)(n * gl));
    mmt_fill_uniform(r, n * gl, seed, 0.0f, 1.0f);
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < gl; c++) {
            const float x = r[t * gl + c];
            g[t * gl + c] = pattern == 1           ? big
                            : pattern == 2         ? (x < 0.5f ? 0.0f : big)
                            : (t + 2 * c) % 7 == 3 ? big
                                                   : -0.3f * x;
        }
    free(r);
}

static void test_attn_gated_sweep(void)
{
    const float bigs[9] = {0.0f, -1e-3f, -0.3f, -3.0f, -30.0f, -100.0f, -1e5f, -1e20f, -FLT_MAX};
    const int64_t chunks[9] = {1, 2, 3, 5, 16, 17, 40, 64, 1024};
    const int64_t n = mmt_quick() ? 24 : 45, d = 4, dv = 3;
    float *q = malloc(sizeof(float) * (size_t)(n * d)),
          *k = malloc(sizeof(float) * (size_t)(n * d));
    float *v = malloc(sizeof(float) * (size_t)(n * dv)),
          *dout = malloc(sizeof(float) * (size_t)(n * dv));
    float *g = malloc(sizeof(float) * (size_t)(n * d));
    mmt_fill_uniform(q, n * d, 501, -1.0f, 1.0f), mmt_fill_uniform(k, n * d, 502, -1.0f, 1.0f);
    mmt_fill_uniform(v, n * dv, 503, -1.0f, 1.0f), mmt_fill_uniform(dout, n * dv, 504, -1.0f, 1.0f);
    for (int64_t gl = 1; gl <= d; gl += d - 1)
        for (int bi = 0; bi < 9; bi++)
            for (int pat = 0; pat < 3; pat++) {
                gprec p = {n, d, dv, gl, 0, 0.5, q, k, v, g, dout};
                char what[64];
                if (bi == 0 && pat > 0) continue; /* all-zero gates: once is enough */
                fill_gates(g, n, gl, bigs[bi], pat, 600 + (uint64_t)(bi * 3 + pat));
                snprintf(what, sizeof what, "G = %g pattern %d", (double)bigs[bi], pat);
                for (int ci = 0; ci < 9; ci++) {
                    p.chunk = chunks[ci];
                    check_gprec(&p, ci == 7, what);
                }
            }
    free(q), free(k), free(v), free(dout), free(g);
}

/* ---- softmax backward in saturated rows ------------------------------------------------------ */
/* Gradients of one non-causal softmax head (scale sc) at the given inputs. */
static void softmax_grads(int64_t n, int64_t m, int64_t d, int64_t dv, double sc, const float *q,
                          const float *k, const float *v, const float *dout, float *dq, float *dk,
                          float *dvv)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *tq = t4(1, 1, n, d), *tk = t4(1, 1, m, d), *tv = t4(1, 1, m, dv),
              *to = t4(1, 1, n, dv);
    mm_tensor *tdo = t4(1, 1, n, dv), *tdq = t4(1, 1, n, d), *tdk = t4(1, 1, m, d),
              *tdv = t4(1, 1, m, dv);
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_SOFTMAX));
    o.d_head = d, o.dv = dv, o.n_heads = 1, o.max_batch = 1, o.max_seq = n > m ? n : m,
    o.causal = 0;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_attn_set_f64(h, MM_ATTN_SCALE, sc));
    memcpy(mm_tensor_data(tq), q, sizeof(float) * (size_t)(n * d));
    memcpy(mm_tensor_data(tk), k, sizeof(float) * (size_t)(m * d));
    memcpy(mm_tensor_data(tv), v, sizeof(float) * (size_t)(m * dv));
    memcpy(mm_tensor_data(tdo), dout, sizeof(float) * (size_t)(n * dv));
    CHECK_OK(mm_attn_forward(h, tq, tk, tv, to));
    CHECK_OK(mm_attn_backward(h, tdo, tdq, tdk, tdv, NULL));
    memcpy(dq, mm_tensor_data(tdq), sizeof(float) * (size_t)(n * d));
    memcpy(dk, mm_tensor_data(tdk), sizeof(float) * (size_t)(m * d));
    memcpy(dvv, mm_tensor_data(tdv), sizeof(float) * (size_t)(m * dv));
    mm_attn_free(h);
    mm_tensor *all[] = {tq, tk, tv, to, tdo, tdq, tdk, tdv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mm_tensor_free(all[i]);
}

/* The primitive behind the saturated-row fix: y_j = alpha sum_c x_c (Mt[c][j] - o_c) across
 * the 32-wide, 8-wide and scalar column blocks, and exactly 0 in a column equal to o. */
static void test_attn_rowmat_sub(void)
{
    enum { K = 7, N = 43, LD = 48 };
    float x[K], o[K], mt[K * LD], y[N];
    mmt_fill_uniform(x, K, 801, -1.0f, 1.0f), mmt_fill_uniform(o, K, 802, -1.0f, 1.0f);
    mmt_fill_uniform(mt, K * LD, 803, -1.0f, 1.0f);
    for (int c = 0; c < K; c++) mt[c * LD + 5] = mt[c * LD + 40] = o[c]; /* both blocks */
    mmi_attn_rowmat_sub(N, K, x, mt, LD, o, 3.0f, y);
    for (int j = 0; j < N; j++) {
        double want = 0.0;
        for (int c = 0; c < K; c++) want += (double)x[c] * ((double)mt[c * LD + j] - o[c]);
        CHECK_NEAR(y[j], 3.0 * want, 1e-5, 1e-6);
    }
    CHECK(y[5] == 0.0f && y[40] == 0.0f);
}

/* The softmax backward's dS tile: p[r][j] *= sum_c x[r][c] (Mt[c][j] - o[r][c]) for every row
 * count of the 4-row blocks (1..9) and column counts across whole and masked 16-wide strips,
 * exactly 0 where a column equals the row's o, and nothing outside the rows x n view touched. */
static void test_attn_ds_tile(void)
{
    enum { K = 9, LDX = 11, LDM = 48, LDP = 50, R = 9 };
    float x[R * LDX], o[R * LDX], mt[K * LDM], p[R * LDP], p0[R * LDP];
    const int64_t ns[5] = {1, 7, 16, 37, 48};
    mmt_fill_uniform(x, R * LDX, 811, -1.0f, 1.0f), mmt_fill_uniform(o, R * LDX, 812, -1.0f, 1.0f);
    mmt_fill_uniform(mt, K * LDM, 813, -1.0f, 1.0f), mmt_fill_uniform(p0, R * LDP, 814, 0.0f, 1.0f);
    for (int c = 0; c < K; c++) mt[c * LDM + 0] = o[2 * LDX + c], mt[c * LDM + 33] = o[5 * LDX + c];
    for (int64_t rows = 1; rows <= R; rows++)
        for (int ni = 0; ni < 5; ni++) {
            const int64_t n = ns[ni];
            memcpy(p, p0, sizeof p);
            mmi_attn_ds_tile(rows, n, K, x, o, LDX, mt, LDM, p, LDP);
            for (int64_t r = 0; r < R; r++)
                for (int64_t j = 0; j < LDP; j++) {
                    double want = 0.0;
                    if (r >= rows || j >= n) { /* outside the view: untouched */
                        CHECK(p[r * LDP + j] == p0[r * LDP + j]);
                        continue;
                    }
                    for (int c = 0; c < K; c++)
                        want += (double)x[r * LDX + c] * ((double)mt[c * LDM + j] - o[r * LDX + c]);
                    CHECK_NEAR(p[r * LDP + j], p0[r * LDP + j] * want, 1e-5, 1e-6);
                }
            if (rows > 2) CHECK(p[2 * LDP + 0] == 0.0f);
            if (rows > 5 && n > 33) CHECK(p[5 * LDP + 33] == 0.0f);
        }
}

/* Checks p = exp_rows(rows, n, off, s, ld, sub) against exp_sub row by row (v's entry, or
 * mmi_attn_exp_sub when v is NULL), bitwise: each row's visible keys clamp(r + off, 0, n), 0
 * after them and in a row whose sub is infinite, the columns from n to ld untouched. */
static void exp_rows_check(const mmi_attn_isa *v, int64_t rows, int64_t n, int64_t off,
                           const float *s, const float *p, int64_t ld, const float *sub)
{
    float *e = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1)), sum = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
        if (nv > 0 && v) CHECK(v->exp_sub(nv, s + r * ld, sub[r], e, &sum) == 1);
        if (nv > 0 && !v) (void)mmi_attn_exp_sub(nv, s + r * ld, sub[r], e);
        for (int64_t j = 0; j < ld; j++) {
            const float got = p[r * ld + j];
            if (j >= n)
                CHECK(got == s[r * ld + j]);
            else if (j >= nv)
                CHECK(got == 0.0f);
            else
                CHECK(memcmp(&got, &e[j], sizeof got) == 0);
        }
    }
    free(e);
}

/* mmi_attn_exp_rows on the process's path (the portable loop under MM_SIMD=portable, exp_sub
 * row by row where a table has no body): bitwise mmi_attn_exp_sub over each row's visible
 * keys, 0 after them and for a row with sub = +inf, the stride's gap untouched. */
static void test_attn_exp_rows(void)
{
    enum { R = 6, N = 37, LD = 40 };
    float s[R * LD], p[R * LD], sub[R];
    mmt_fill_uniform(s, R * LD, 951, -20.0f, 1.0f);
    for (int r = 0; r < R; r++) sub[r] = 0.5f - 0.125f * (float)r;
    sub[3] = INFINITY;
    for (int64_t off = -1; off <= N + 1; off += 6) {
        memcpy(p, s, sizeof p);
        mmi_attn_exp_rows(R, N, off, p, LD, sub);
        exp_rows_check(NULL, R, N, off, s, p, LD, sub);
    }
}

/* The tiled backward across its blocks (64 keys x 64 query rows, 16 rows under a local band)
 * against float64 finite differences: N and M not multiples of 64, causal and not, N != M in
 * both directions, odd d and dv (the dS tile's masked column strips and row tails). */
static void test_attn_softmax_grad_tiles(void)
{
    const int q = mmt_quick();
    cfg c = cfg_make(MM_ATTN_SOFTMAX, 1, 1, q ? 70 : 100, q ? 70 : 100, 5, 3);
    c.causal = 1;
    check_grads(&c, 301); /* two key and two row blocks, partial second ones */
    c.causal = 0, c.n = 70, c.m = q ? 67 : 131, c.d = 3, c.dv = 7;
    check_grads(&c, 302); /* N < M, non-causal: a partial third key block */
    c.causal = 1, c.n = q ? 90 : 133, c.m = 70, c.d = 4, c.dv = 1;
    check_grads(&c, 303); /* N > M, causal: leading rows see nothing, three row blocks */
    c = cfg_make(MM_ATTN_SPARSE, 1, 1, 90, 90, 3, 5);
    c.window = 20;
    check_grads(&c, 304); /* local band: 16-row blocks */
}

/* Causal blocks the diagonal cuts run their products only over the visible part (16-key strips
 * and 16-row pieces). The skipped terms are masked ones with P = 0, so the kernel must return
 * exactly what the generic masked path returns: the same problem as a strided mask of stride 1
 * (the same visibility, which takes the whole-tile path). Offsets M - N of 0, +-50 and +-13
 * put the diagonal at every position in its blocks; out, lse, dq, dk, dv compared with ==.
 * A WITH_OPENBLAS build runs the tile products through OpenBLAS, whose kernel rounds a piece
 * of a product differently from the whole: there the two must agree to rounding only. */
static int same_or_near(float a, float b, int exact)
{
    return exact ? a == b : mmt_near(a, b, 1e-5, 1e-6);
}

static void test_attn_softmax_diag_blocks(void)
{
    const int exact = strstr(mm_build_info(), "blas=openblas") == NULL;
    const int64_t shapes[5][2] = {{200, 200}, {150, 200}, {200, 150}, {77, 90}, {90, 77}};
    const int64_t d = 16, dv = 8, nmax = 200;
    float *buf = malloc(sizeof(float) * (size_t)(nmax * (3 * d + 5 * dv) * 2 + 4 * nmax));
    float *ws = malloc(sizeof(float) * mmi_attn_softmax_ws_floats(nmax, d, dv));
    if (!buf || !ws) {
        free(buf), free(ws);
        CHECK(0);
        return;
    }
    float *q = buf, *k = q + nmax * d, *v = k + nmax * d, *dout = v + nmax * dv;
    float *res[2][6];
    for (int w = 0; w < 2; w++) {
        float *b = dout + nmax * dv + (int64_t)w * nmax * (2 * d + 4 * dv + 2);
        res[w][0] = b, res[w][1] = b + nmax * dv;                       /* out, lse */
        res[w][2] = res[w][1] + nmax, res[w][3] = res[w][2] + nmax * d; /* dq, dk */
        res[w][4] = res[w][3] + nmax * d;                               /* dv */
    }
    mmt_fill_uniform(q, nmax * d, 901, -2.0f, 2.0f),
        mmt_fill_uniform(k, nmax * d, 902, -2.0f, 2.0f);
    mmt_fill_uniform(v, nmax * dv, 903, -1.0f, 1.0f);
    mmt_fill_uniform(dout, nmax * dv, 904, -1.0f, 1.0f);
    for (int si = 0; si < 5; si++) {
        const int64_t n = shapes[si][0], m = shapes[si][1];
        for (int w = 0; w < 2; w++) { /* w 0: causal (diagonal blocks cut), 1: stride 1 */
            mmi_attn_dims s = {n, m, d, dv, 0.25f, 1, 0, w ? 1 : 0, 0};
            mmi_attn_softmax_fwd(&s, q, k, v, res[w][0], res[w][1], ws);
            mmi_attn_softmax_bwd(&s, q, k, v, res[w][0], res[w][1], dout, res[w][2], res[w][3],
                                 res[w][4], ws);
        }
        for (int64_t i = 0; i < n * dv; i++) CHECK(same_or_near(res[0][0][i], res[1][0][i], exact));
        for (int64_t i = 0; i < n; i++) CHECK(same_or_near(res[0][1][i], res[1][1][i], exact));
        for (int64_t i = 0; i < n * d; i++) CHECK(same_or_near(res[0][2][i], res[1][2][i], exact));
        for (int64_t i = 0; i < m * d; i++) CHECK(same_or_near(res[0][3][i], res[1][3][i], exact));
        for (int64_t i = 0; i < m * dv; i++) CHECK(same_or_near(res[0][4][i], res[1][4][i], exact));
    }
    free(buf), free(ws);
}

/* The issue's repro: q = [1], k = [1, -1], one-hot at scale 1000 and 1e6. dS = P (dP - D) must
 * cancel exactly (PyTorch float32 autograd gives 0); subtracting a float64 D from a float32 dP
 * gave dq = dk[0] = -1.86e-5 at scale 1000 and -0.0186 at 1e6. */
static void test_attn_softmax_saturated_repro(void)
{
    const float q[1] = {1}, k[2] = {1, -1}, v[6] = {.1f, .2f, .3f, .4f, .5f, .6f};
    const float dout[3] = {.7f, 1.3f, -.9f};
    const double scales[3] = {1e3, 1e6, 1e2};
    for (int si = 0; si < 3; si++) {
        float dq[1], dk[2], dv[6];
        softmax_grads(1, 2, 1, 3, scales[si], q, k, v, dout, dq, dk, dv);
        /* max |grad| is 1.3 (dv); the goal is an error <= 1e-6 of it */
        CHECK(fabsf(dq[0]) <= 1.3e-6f);
        CHECK(fabsf(dk[0]) <= 1.3e-6f && fabsf(dk[1]) <= 1.3e-6f);
        for (int e = 0; e < 3; e++) {
            CHECK_NEAR(dv[e], dout[e], 1e-6, 0);
            CHECK(dv[3 + e] == 0.0f);
        }
    }
}

/* One-hot rows across key blocks: keys are distinct +-1 sign patterns (d = 8), each query is one
 * of the keys, so its own logit beats every other by >= 2 x scale and P is exactly one-hot for
 * scale >= 100. Exact gradients: dq = dk = 0, dv_j = sum of dout over the rows that pick j. */
static void test_attn_softmax_saturated_sweep(void)
{
    const int64_t n = 21, m = 70, d = 8, dv = 5;
    const double scales[5] = {1e2, 1e3, 1e4, 1e5, 1e6};
    float *q = malloc(sizeof(float) * (size_t)(n * d)),
          *k = malloc(sizeof(float) * (size_t)(m * d));
    float *v = malloc(sizeof(float) * (size_t)(m * dv)),
          *dout = malloc(sizeof(float) * (size_t)(n * dv));
    float *dq = malloc(sizeof(float) * (size_t)(n * d)),
          *dk = malloc(sizeof(float) * (size_t)(m * d));
    float *dvv = malloc(sizeof(float) * (size_t)(m * dv));
    double *want = calloc((size_t)(m * dv), sizeof(double));
    for (int64_t j = 0; j < m; j++)
        for (int64_t c = 0; c < d; c++)
            k[j * d + c] = ((j * 37 + 11) % 256 >> c) & 1 ? 1.0f : -1.0f;
    mmt_fill_uniform(v, m * dv, 701, -1.0f, 1.0f), mmt_fill_uniform(dout, n * dv, 702, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = (i * 29 + 3) % m;
        memcpy(q + i * d, k + t * d, sizeof(float) * (size_t)d);
        for (int64_t e = 0; e < dv; e++) want[t * dv + e] += dout[i * dv + e];
    }
    for (int si = 0; si < 5; si++) {
        double gmax = max_abs(want, m * dv), err = 0.0;
        softmax_grads(n, m, d, dv, scales[si], q, k, v, dout, dq, dk, dvv);
        for (int64_t i = 0; i < n * d; i++) err = fmax(err, fabs(dq[i]));
        for (int64_t i = 0; i < m * d; i++) err = fmax(err, fabs(dk[i]));
        err = fmax(err, max_err(dvv, want, m * dv));
        if (err > 1e-6 * gmax)
            mmt_fail(__FILE__, __LINE__,
                     "softmax one-hot rows, scale %g: gradient error %.3g "
                     "> 1e-6 of max |grad| %.3g",
                     scales[si], err, gmax);
    }
    free(q), free(k), free(v), free(dout), free(dq), free(dk), free(dvv), free(want);
}

/* Step-by-step streaming equals the causal forward at every position. */
static void check_stream(const cfg *c0, uint64_t seed)
{
    cfg c = *c0;
    run r;
    mm_tensor *qt = t3(c.b, c.h, c.d), *kt = t3(c.b, c.h, c.d), *vt = t3(c.b, c.h, c.dv);
    mm_tensor *ot = t3(c.b, c.h, c.dv), *gt = NULL;
    double worst = 0;
    run_open(&r, &c, seed);
    CHECK_OK(run_fwd(&r));
    if (c.gate >= 2) gt = c.gate == 3 ? t3(c.b, c.h, c.d) : NULL;
    if (c.gate == 2) {
        int64_t s[2] = {c.b, c.h};
        CHECK_OK(mm_tensor_create(&gt, 2, s, NULL));
    }
    for (int64_t t = 0; t < c.n; t++) {
        for (int64_t i = 0; i < c.b * c.h; i++) {
            memcpy(mm_tensor_data(qt) + i * c.d, mm_tensor_data(r.q) + (i * c.n + t) * c.d,
                   4 * (size_t)c.d);
            memcpy(mm_tensor_data(kt) + i * c.d, mm_tensor_data(r.k) + (i * c.n + t) * c.d,
                   4 * (size_t)c.d);
            memcpy(mm_tensor_data(vt) + i * c.dv, mm_tensor_data(r.v) + (i * c.n + t) * c.dv,
                   4 * (size_t)c.dv);
            if (gt) {
                const int64_t gl = c.gate == 3 ? c.d : 1;
                memcpy(mm_tensor_data(gt) + i * gl, mm_tensor_data(r.g) + (i * c.n + t) * gl,
                       4 * (size_t)gl);
            }
        }
        CHECK_OK(mm_attn_step(r.h, qt, kt, vt, gt, ot));
        for (int64_t i = 0; i < c.b * c.h; i++)
            for (int64_t e = 0; e < c.dv; e++) {
                const double a = mm_tensor_data(ot)[i * c.dv + e];
                const double b = mm_tensor_data(r.o)[(i * c.n + t) * c.dv + e];
                const double err = fabs(a - b) / (1 + fabs(b));
                worst = err > worst ? err : worst;
            }
    }
    if (worst > 2e-5)
        mmt_fail(__FILE__, __LINE__, "kind %d: stream vs forward %.3g", (int)c.kind, worst);
    {
        double pos = 0;
        CHECK_OK(mm_attn_get_f64(r.h, MM_ATTN_STAT_POSITION, &pos));
        CHECK_EQ_I64((int64_t)pos, c.n);
    }
    mm_tensor_free(qt), mm_tensor_free(kt), mm_tensor_free(vt), mm_tensor_free(ot),
        mm_tensor_free(gt);
    run_close(&r);
}

static void test_attn_stream(void)
{
    const int32_t kinds[6] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER,
                              MM_ATTN_RELU2,   MM_ATTN_SPARSE, MM_ATTN_GATED};
    for (int i = 0; i < 6; i++) {
        cfg c = cfg_make(kinds[i], 2, 2, 41, 41, 8, 5);
        c.causal = 1, c.window = 6, c.chunk = kinds[i] == MM_ATTN_RELU2 ? 16 : 8;
        if (kinds[i] == MM_ATTN_PERFORMER) perf_cfg(&c, 12);
        check_stream(&c, 130 + (uint64_t)i);
    }
    for (int gate = 1; gate < 4; gate++) {
        cfg c = cfg_make(MM_ATTN_GATED, 2, 2, 23, 23, 8, 5);
        c.gate = gate, c.chunk = 4;
        check_stream(&c, 140 + (uint64_t)gate);
    }
    {
        cfg c = cfg_make(MM_ATTN_SPARSE, 1, 2, 30, 30, 8, 5);
        c.pattern = MM_SPARSE_STRIDED, c.stride = 4;
        check_stream(&c, 150);
    }
}

static void test_attn_misuse(void)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    char buf[256];
    mm_tensor *q = t4(2, 4, 16, 64), *k = t4(2, 4, 16, 32), *v = t4(2, 4, 16, 32),
              *out = t4(2, 4, 16, 32);
    CHECK_STATUS(mm_attn_opts_init(NULL, MM_ATTN_SOFTMAX), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_attn_opts_init(&o, 99), MM_E_INVALID_ARG);
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_SOFTMAX));
    CHECK_STATUS(mm_attn_create(NULL, &o), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_attn_create(&h, NULL), MM_E_INVALID_ARG);
    o.err_buf = buf, o.err_buf_size = sizeof buf;
    o.d_head = 0;
    CHECK_STATUS(mm_attn_create(&h, &o), MM_E_RANGE);
    CHECK(strstr(buf, "d_head") != NULL);
    CHECK(h == NULL);
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_GATED));
    o.causal = 0;
    CHECK_STATUS(mm_attn_create(&h, &o), MM_E_INVALID_ARG);
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_LINEAR));
    o.feature_map = 9;
    CHECK_STATUS(mm_attn_create(&h, &o), MM_E_INVALID_ARG);
    { /* a newer caller's struct with an unknown field set */
        unsigned char big[sizeof(mm_attn_opts) + 8];
        memset(big, 0, sizeof big);
        CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_SOFTMAX));
        o.struct_size = (uint32_t)sizeof big;
        memcpy(big, &o, sizeof o);
        big[sizeof o + 3] = 1;
        CHECK_STATUS(mm_attn_create(&h, (const mm_attn_opts *)(void *)big), MM_E_VERSION);
    }
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_SOFTMAX));
    o.d_head = 32, o.n_heads = 4, o.max_batch = 2, o.max_seq = 16;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_STATUS(mm_attn_forward(h, q, k, v, out), MM_E_SHAPE);
    CHECK(strstr(mm_attn_errmsg(h), "[2,4,16,64]") && strstr(mm_attn_errmsg(h), "d_head 32"));
    CHECK_STATUS(mm_attn_forward(h, NULL, k, v, out), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_attn_backward(h, out, NULL, NULL, NULL, NULL), MM_E_STATE);
    mm_tensor_free(q);
    q = t4(2, 4, 16, 32);
    CHECK_OK(mm_attn_forward(h, q, k, v, out));
    CHECK_STATUS(mm_attn_backward(h, q, NULL, NULL, NULL, out), MM_E_STATE); /* dg without gates */
    CHECK_STATUS(mm_attn_step(h, q, k, v, NULL, out), MM_E_STATE);           /* not causal */
    CHECK_STATUS(mm_attn_redraw(h), MM_E_STATE);
    CHECK_STATUS(mm_attn_forward_gated(h, q, k, v, q, out), MM_E_STATE);
    CHECK_STATUS(mm_attn_set_f64(h, MM_ATTN_SCALE, -1.0), MM_E_RANGE);
    CHECK_STATUS(mm_attn_set_f64(h, MM_ATTN_STAT_POSITION, 1.0), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_attn_set_f64(h, 199, 1.0), MM_E_UNSUPPORTED);
    CHECK_OK(mm_attn_set_f64(h, MM_ATTN_SCALE, 0.5));
    {
        double x = 0, lo = 0, hi = 0;
        CHECK_OK(mm_attn_get_f64(h, MM_ATTN_SCALE, &x));
        CHECK(x == 0.5);
        CHECK_OK(mm_param_bounds(MM_ATTN_EPS, &lo, &hi));
        CHECK(lo == 0 && hi == 1);
    }
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(out);
    q = t4(3, 4, 16, 32), k = t4(3, 4, 17, 32), v = t4(3, 4, 17, 32), out = t4(3, 4, 16, 32);
    CHECK_STATUS(mm_attn_forward(h, q, k, v, out), MM_E_RANGE); /* batch 3 > max_batch 2 */
    mm_attn_free(h);
    mm_attn_free(NULL);
    CHECK(strcmp(mm_attn_errmsg(NULL), "invalid handle") == 0);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(out);
    { /* the KV cache ends at max_seq */
        cfg c = cfg_make(MM_ATTN_SOFTMAX, 1, 1, 2, 2, 4, 4);
        mm_tensor *x = t3(1, 1, 4), *y = t3(1, 1, 4);
        c.causal = 1;
        CHECK_OK(make_handle(&c, 1, NULL, &h));
        CHECK_OK(mm_attn_step(h, x, x, x, NULL, y));
        CHECK_OK(mm_attn_step(h, x, x, x, NULL, y));
        CHECK_STATUS(mm_attn_step(h, x, x, x, NULL, y), MM_E_RANGE);
        CHECK_OK(mm_attn_reset(h));
        CHECK_OK(mm_attn_step(h, x, x, x, NULL, y));
        mm_attn_free(h);
        mm_tensor_free(x), mm_tensor_free(y);
    }
}

/* forward, backward and step allocate nothing; everything is freed. */
static void test_attn_no_alloc(void)
{
    const int32_t kinds[6] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER,
                              MM_ATTN_RELU2,   MM_ATTN_SPARSE, MM_ATTN_GATED};
    for (int i = 0; i < 6; i++) {
        mm_allocator al;
        mmt_counter cnt;
        mm_attn *h = NULL;
        cfg c = cfg_make(kinds[i], 2, 2, 20, 20, 8, 4);
        run r;
        int64_t before;
        c.causal = 1, c.chunk = 8;
        if (kinds[i] == MM_ATTN_PERFORMER) perf_cfg(&c, 10);
        mmt_counting_allocator(&al, &cnt, -1);
        CHECK_OK(make_handle(&c, 2, &al, &h));
        run_open(&r, &c, 160);
        before = cnt.n_alloc;
        CHECK_OK(mm_attn_forward(h, r.q, r.k, r.v, r.o));
        CHECK_OK(mm_attn_backward(h, r.dout, r.dq, NULL, r.dv, NULL));
        {
            mm_tensor *x = t3(2, 2, 8), *xv = t3(2, 2, 4), *y = t3(2, 2, 4);
            mmt_fill_uniform(mm_tensor_data(x), 32, 3, -1, 1);
            mmt_fill_uniform(mm_tensor_data(xv), 16, 4, -1, 1);
            CHECK_OK(mm_attn_step(h, x, x, xv, NULL, y));
            CHECK_OK(mm_attn_step(h, x, x, xv, NULL, y));
            mm_tensor_free(x), mm_tensor_free(xv), mm_tensor_free(y);
        }
        CHECK_EQ_I64(cnt.n_alloc, before);
        mm_attn_free(h);
        CHECK_EQ_I64(cnt.live_bytes, 0);
        CHECK_EQ_I64(cnt.bad_free, 0);
        run_close(&r);
    }
    { /* allocation failure at create leaks nothing */
        mm_allocator al;
        mmt_counter cnt;
        mm_attn *h = NULL;
        cfg c = cfg_make(MM_ATTN_PERFORMER, 1, 1, 8, 8, 8, 4);
        for (int64_t k = 0; k < 4; k++) {
            mmt_counting_allocator(&al, &cnt, k);
            if (make_handle(&c, 2, &al, &h) == MM_OK) mm_attn_free(h), h = NULL;
            CHECK_EQ_I64(cnt.live_bytes, 0);
        }
    }
}

/* Data-dependent gates with dg NULL: the backward skips the gate gradient (it used to trip a
 * debug assertion) and the other gradients are the same. */
static void test_attn_gated_no_dg(void)
{
    for (int gate = 2; gate <= 3; gate++) {
        cfg c = cfg_make(MM_ATTN_GATED, 1, 2, 19, 19, 4, 3);
        run r;
        mm_tensor *dq2 = t4(1, 2, 19, 4);
        c.gate = gate, c.chunk = 8;
        run_open(&r, &c, 300 + gate);
        CHECK_OK(run_fwd(&r));
        CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, r.dk, r.dv, r.dg));
        CHECK_OK(mm_attn_backward(r.h, r.dout, dq2, NULL, NULL, NULL));
        CHECK(!memcmp(mm_tensor_data(dq2), mm_tensor_data(r.dq), sizeof(float) * 2 * 19 * 4));
        mm_tensor_free(dq2);
        run_close(&r);
    }
}

/* Two threads give bitwise the same results as one. */
static void test_attn_threads(void)
{
    const int32_t kinds[3] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_GATED};
    for (int i = 0; i < 3; i++) {
        cfg c = cfg_make(kinds[i], 2, 3, 30, 30, 8, 4);
        run r;
        mm_attn *h2 = NULL;
        mm_tensor *o2 = t4(2, 3, 30, 4), *dq2 = t4(2, 3, 30, 8);
        c.causal = 1;
        run_open(&r, &c, 170);
        CHECK_OK(make_handle(&c, 2, NULL, &h2));
        CHECK_OK(mm_attn_forward(r.h, r.q, r.k, r.v, r.o));
        CHECK_OK(mm_attn_backward(r.h, r.dout, r.dq, NULL, NULL, NULL));
        CHECK_OK(mm_attn_forward(h2, r.q, r.k, r.v, o2));
        CHECK_OK(mm_attn_backward(h2, r.dout, dq2, NULL, NULL, NULL));
        CHECK(memcmp(mm_tensor_data(o2), mm_tensor_data(r.o), 4 * (size_t)mm_tensor_numel(o2)) ==
              0);
        CHECK(memcmp(mm_tensor_data(dq2), mm_tensor_data(r.dq), 4 * (size_t)mm_tensor_numel(dq2)) ==
              0);
        mm_attn_free(h2);
        mm_tensor_free(o2), mm_tensor_free(dq2);
        run_close(&r);
    }
}

/* ---- model blocks against a float64 reference ---------------------------------------------------- */
static void ref_ln(int64_t rows, int64_t d, const double *x, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0, ss = 0;
        for (int64_t i = 0; i < d; i++) mu += x[r * d + i];
        mu /= d;
        for (int64_t i = 0; i < d; i++) ss += (x[r * d + i] - mu) * (x[r * d + i] - mu);
        for (int64_t i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mu) / sqrt(ss / d + 1e-5);
    }
}

/* y[rows, n] = x[rows, k] W^T (+ b), W [n, k] */
static void ref_lin(int64_t rows, int64_t k, int64_t n, const double *x, const double *w,
                    const double *b, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            double a = b ? b[j] : 0;
            for (int64_t i = 0; i < k; i++) a += x[r * k + i] * w[j * k + i];
            y[r * n + j] = a;
        }
}

typedef struct blk {
    int gau; /* 0: attention block (cfg c), 1: GAU */
    cfg c;   /* attention: kind etc., h heads, d = d_head, dv; GAU: d = s, dv = e, chunk */
    int64_t D, B, T;
    float w[4096]; /* PERFORMER projection of the block (drawn from the seed) */
} blk;

static void ref_block(const blk *bk, const double *p, const double *x, double *y)
{
    const int64_t D = bk->D, B = bk->B, T = bk->T, rows = B * T;
    cfg c = bk->c;
    double *xn = calloc((size_t)(rows * D), sizeof(double));
    c.b = B, c.n = c.m = T;
    if (c.kind == MM_ATTN_PERFORMER) c.w = bk->w;
    ref_ln(rows, D, x, xn);
    if (!bk->gau) {
        const int64_t H = c.h, dk = c.d, dv = c.dv, pw = H * (2 * dk + dv), aw = H * dv;
        const double *w_in = p, *b_in = p + pw * D, *w_out = b_in + pw, *b_out = w_out + D * aw;
        double *pr = calloc((size_t)(rows * pw), sizeof(double));
        double *qh = calloc((size_t)(rows * H * dk), sizeof(double)),
               *kh = calloc((size_t)(rows * H * dk), sizeof(double));
        double *vh = calloc((size_t)(rows * aw), sizeof(double)),
               *oh = calloc((size_t)(rows * aw), sizeof(double));
        double *am = calloc((size_t)(rows * aw), sizeof(double));
        ref_lin(rows, D, pw, xn, w_in, b_in, pr);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < H; h++) {
                    const int64_t hi = (b * H + h) * T + t;
                    for (int64_t e = 0; e < dk; e++) {
                        qh[hi * dk + e] = pr[(b * T + t) * pw + h * dk + e];
                        kh[hi * dk + e] = pr[(b * T + t) * pw + H * dk + h * dk + e];
                    }
                    for (int64_t e = 0; e < dv; e++)
                        vh[hi * dv + e] = pr[(b * T + t) * pw + 2 * H * dk + h * dv + e];
                }
        ref_all(&c, qh, kh, vh, NULL, oh);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t e = 0; e < dv; e++)
                        am[(b * T + t) * aw + h * dv + e] = oh[((b * H + h) * T + t) * dv + e];
        ref_lin(rows, aw, D, am, w_out, b_out, y);
        free(pr), free(qh), free(kh), free(vh), free(oh), free(am);
    } else {
        const int64_t e = c.dv, sd = c.d, w3 = 2 * e + sd;
        const double *w = p, *bb = p + w3 * D, *qk = bb + w3, *wo = qk + 4 * sd;
        double *hh = calloc((size_t)(rows * w3), sizeof(double)),
               *q = calloc((size_t)(rows * sd), sizeof(double));
        double *k = calloc((size_t)(rows * sd), sizeof(double)),
               *v = calloc((size_t)(rows * e), sizeof(double));
        double *ao = calloc((size_t)(rows * e), sizeof(double));
        ref_lin(rows, D, w3, xn, w, bb, hh);
        for (int64_t i = 0; i < rows * w3; i++) hh[i] = hh[i] / (1 + exp(-hh[i]));
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t j = 0; j < e; j++) v[r * e + j] = hh[r * w3 + e + j];
            for (int64_t j = 0; j < sd; j++) {
                q[r * sd + j] = hh[r * w3 + 2 * e + j] * qk[j] + qk[2 * sd + j];
                k[r * sd + j] = hh[r * w3 + 2 * e + j] * qk[sd + j] + qk[3 * sd + j];
            }
        }
        c.h = 1;
        ref_all(&c, q, k, v, NULL, ao);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < e; j++) ao[r * e + j] *= hh[r * w3 + j];
        ref_lin(rows, e, D, ao, wo, NULL, y);
        free(hh), free(q), free(k), free(v), free(ao);
    }
    for (int64_t i = 0; i < rows * D; i++) y[i] += x[i];
    free(xn);
}

static void close_to(const float *got, const double *want, int64_t n, const char *what, int kind)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (int64_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 2e-4 * (fabs(want[i]) + mx)) {
            mmt_fail(__FILE__, __LINE__, "block kind %d: %s[%lld] = %.7g, fd %.7g", kind, what,
                     (long long)i, (double)got[i], want[i]);
            return;
        }
}

static void check_block(blk *bk)
{
    const int64_t D = bk->D, B = bk->B, T = bk->T, nx = B * T * D;
    mm_model_opts mo;
    mm_model *m = NULL;
    mm_tensor *x = NULL, *y = NULL, *dy = NULL, *dx = NULL, *vt = NULL, *jy = NULL;
    int64_t sx[3] = {B, T, D}, np = 0;
    float *p = NULL, *g = NULL;
    CHECK_OK(mm_model_opts_init(&mo));
    mo.input_dim = D, mo.max_batch = B, mo.max_seq = T, mo.seed = 3;
    CHECK_OK(mm_model_create(&m, &mo));
    if (bk->gau) {
        CHECK_OK(mm_model_add_gau(m, bk->c.dv, bk->c.d, bk->c.causal, bk->c.chunk));
    } else {
        mm_attn_opts o;
        CHECK_OK(mm_attn_opts_init(&o, bk->c.kind));
        o.n_heads = bk->c.h, o.d_head = bk->c.d, o.dv = bk->c.dv, o.causal = bk->c.causal;
        o.chunk = bk->c.chunk, o.gate = bk->c.gate, o.feature_map = bk->c.fmap;
        o.n_features = bk->c.nf, o.seed = 11, o.window = bk->c.window;
        CHECK_OK(mm_model_add_attention(m, &o));
        if (bk->c.kind == MM_ATTN_PERFORMER) {
            mmi_rng r;
            double work[2 * 64 * 64];
            mmi_rng_seed(&r, 11);
            mmi_attn_draw_projection(&r, bk->c.d, bk->c.nf, bk->w, work);
        }
    }
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_params(m, &p, &np));
    CHECK_OK(mm_model_grads(m, &g, NULL));
    mmt_fill_uniform(p, np, 200, -0.6f, 0.6f); /* larger than init so attention is not flat */
    CHECK_OK(mm_tensor_create(&x, 3, sx, NULL));
    CHECK_OK(mm_tensor_create(&y, 3, sx, NULL));
    CHECK_OK(mm_tensor_create(&dy, 3, sx, NULL));
    CHECK_OK(mm_tensor_create(&dx, 3, sx, NULL));
    CHECK_OK(mm_tensor_create(&jy, 3, sx, NULL));
    CHECK_OK(mm_tensor_create(&vt, 1, &np, NULL));
    mmt_fill_uniform(mm_tensor_data(x), nx, 201, -1.5f, 1.5f);
    mmt_fill_uniform(mm_tensor_data(dy), nx, 202, -1.0f, 1.0f);
    mmt_fill_uniform(mm_tensor_data(vt), np, 203, -1.0f, 1.0f);
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_forward(m, x, y));
    CHECK_OK(mm_model_backward(m, dy, dx));
    CHECK_OK(mm_model_jvp(m, x, vt, NULL, jy));
    { /* the shared-model inference path keeps nothing and gives the same output */
        size_t wsb = 0;
        void *ws = NULL;
        mm_tensor *y2 = NULL;
        CHECK_OK(mm_tensor_create(&y2, 3, sx, NULL));
        CHECK_OK(mm_model_infer_workspace_size(m, B, T, &wsb));
        ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
        CHECK_OK(mm_model_infer(m, x, y2, ws, wsb));
        CHECK(memcmp(mm_tensor_data(y2), mm_tensor_data(y), 4 * (size_t)nx) == 0);
        free(ws);
        { /* save / load round trip (the layer config travels in the file) */
            size_t sz = 0;
            void *buf = NULL;
            mm_model *m2 = NULL;
            CHECK_OK(mm_model_save_mem(m, NULL, 0, &sz, 0));
            buf = malloc(sz);
            CHECK_OK(mm_model_save_mem(m, buf, sz, &sz, 0));
            CHECK_OK(mm_model_load_mem(&m2, buf, sz, &mo));
            if (m2) {
                CHECK_OK(mm_model_forward(m2, x, y2));
                CHECK(memcmp(mm_tensor_data(y2), mm_tensor_data(y), 4 * (size_t)nx) == 0);
            }
            mm_model_free(m2);
            free(buf);
        }
        mm_tensor_free(y2);
    }
    {
        double *pd = malloc(8 * (size_t)np), *xd = malloc(8 * (size_t)nx),
               *yd = malloc(8 * (size_t)nx);
        double *y2 = malloc(8 * (size_t)nx), *fd = malloc(8 * (size_t)(np > nx ? np : nx));
        const float *w = mm_tensor_data(dy);
        const double h = 1e-5;
        for (int64_t i = 0; i < np; i++) pd[i] = p[i];
        for (int64_t i = 0; i < nx; i++) xd[i] = mm_tensor_data(x)[i];
        g_stab_mode = 1;
        ref_block(bk, pd, xd, yd);
        g_stab_mode = 2;
        close_to(mm_tensor_data(y), yd, nx, "y", bk->gau ? 99 : bk->c.kind);
        for (int64_t j = 0; j < np; j++) {
            double lp = 0, lm = 0, p0 = pd[j];
            pd[j] = p0 + h, ref_block(bk, pd, xd, y2);
            for (int64_t i = 0; i < nx; i++) lp += y2[i] * w[i];
            pd[j] = p0 - h, ref_block(bk, pd, xd, y2);
            for (int64_t i = 0; i < nx; i++) lm += y2[i] * w[i];
            pd[j] = p0, fd[j] = (lp - lm) / (2 * h);
        }
        close_to(g, fd, np, "dparams", bk->gau ? 99 : bk->c.kind);
        for (int64_t j = 0; j < nx; j++) {
            double lp = 0, lm = 0, x0 = xd[j];
            xd[j] = x0 + h, ref_block(bk, pd, xd, y2);
            for (int64_t i = 0; i < nx; i++) lp += y2[i] * w[i];
            xd[j] = x0 - h, ref_block(bk, pd, xd, y2);
            for (int64_t i = 0; i < nx; i++) lm += y2[i] * w[i];
            xd[j] = x0, fd[j] = (lp - lm) / (2 * h);
        }
        close_to(mm_tensor_data(dx), fd, nx, "dx", bk->gau ? 99 : bk->c.kind);
        for (int64_t j = 0; j < np; j++) pd[j] = p[j] + h * mm_tensor_data(vt)[j];
        ref_block(bk, pd, xd, y2);
        for (int64_t j = 0; j < np; j++) pd[j] = p[j] - h * mm_tensor_data(vt)[j];
        ref_block(bk, pd, xd, yd);
        for (int64_t i = 0; i < nx; i++) fd[i] = (y2[i] - yd[i]) / (2 * h);
        close_to(mm_tensor_data(jy), fd, nx, "jvp", bk->gau ? 99 : bk->c.kind);
        g_stab_mode = 0;
        free(pd), free(xd), free(yd), free(y2), free(fd);
    }
    mm_model_free(m);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(dx);
    mm_tensor_free(vt), mm_tensor_free(jy);
}

static void test_attn_model_blocks(void)
{
    static blk bk; /* large: the projection buffer */
    const int32_t kinds[6] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER,
                              MM_ATTN_RELU2,   MM_ATTN_SPARSE, MM_ATTN_GATED};
    for (int i = 0; i < 6; i++) {
        memset(&bk, 0, sizeof bk);
        bk.c = cfg_make(kinds[i], 2, 2, 5, 5, 3, 2);
        bk.c.causal = i != 2 && i != 3; /* PERFORMER and RELU2 non-causal here, below causal */
        bk.c.chunk = kinds[i] == MM_ATTN_RELU2 ? 2 : 3, bk.c.window = 3, bk.c.nf = 5;
        if (kinds[i] == MM_ATTN_GATED) bk.c.gate = 1;
        bk.D = 6, bk.B = 2, bk.T = 5;
        check_block(&bk);
        if (kinds[i] == MM_ATTN_RELU2 || kinds[i] == MM_ATTN_PERFORMER) {
            bk.c.causal = 1;
            check_block(&bk);
        }
    }
    memset(&bk, 0, sizeof bk); /* GAU: one chunk non-causal (1/T scaling), then FLASH causal */
    bk.gau = 1, bk.D = 4, bk.B = 2, bk.T = 5;
    bk.c = cfg_make(MM_ATTN_RELU2, 2, 1, 5, 5, 3, 8);
    bk.c.chunk = 256;
    check_block(&bk);
    bk.c.causal = 1, bk.c.chunk = 2;
    check_block(&bk);
}

/* PyTorch float64 vectors (tests/vectors/gen_attn.py). */
static void torch_case(const attnv_case *tc)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *q = NULL, *k = NULL, *v = NULL, *dout = NULL;
    mm_tensor *out = t4(tc->b, tc->h, tc->n, tc->dv), *dq = t4(tc->b, tc->h, tc->n, tc->d);
    mm_tensor *dk = t4(tc->b, tc->h, tc->m, tc->d), *dv = t4(tc->b, tc->h, tc->m, tc->dv);
    int64_t sq[4] = {tc->b, tc->h, tc->n, tc->d}, sk[4] = {tc->b, tc->h, tc->m, tc->d};
    int64_t sv[4] = {tc->b, tc->h, tc->m, tc->dv}, so[4] = {tc->b, tc->h, tc->n, tc->dv};
    const struct {
        const float *want;
        mm_tensor *got;
        double rtol, atol;
    } cmp[4] = {{tc->out, out, 2e-5, 2e-6},
                {tc->dq, dq, 1e-4, 1e-5},
                {tc->dk, dk, 1e-4, 1e-5},
                {tc->dvv, dv, 1e-4, 1e-5}};
    const char *nm = tc->name;
    const int32_t kind = !strcmp(nm, "softmax_causal")  ? MM_ATTN_SOFTMAX
                         : !strcmp(nm, "linear_causal") ? MM_ATTN_LINEAR
                         : !strcmp(nm, "performer")     ? MM_ATTN_PERFORMER
                                                        : MM_ATTN_RELU2;
    CHECK_OK(mm_attn_opts_init(&o, kind));
    o.d_head = tc->d, o.dv = tc->dv, o.n_heads = tc->h, o.max_batch = tc->b;
    o.max_seq = tc->n > tc->m ? tc->n : tc->m;
    o.causal = strstr(nm, "causal") != NULL;
    o.n_features = 12;
    o.chunk = !strcmp(nm, "flash_causal") ? ATTNV_FLASH_C : 256;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_tensor_wrap(&q, (float *)tc->q, 4, sq, NULL));
    CHECK_OK(mm_tensor_wrap(&k, (float *)tc->k, 4, sk, NULL));
    CHECK_OK(mm_tensor_wrap(&v, (float *)tc->v, 4, sv, NULL));
    CHECK_OK(mm_tensor_wrap(&dout, (float *)tc->dout, 4, so, NULL));
    if (kind == MM_ATTN_PERFORMER) {
        mm_tensor *w = NULL;
        int64_t sw[2] = {12, 8};
        CHECK_OK(mm_tensor_wrap(&w, (float *)attnv_w_perf, 2, sw, NULL));
        CHECK_OK(mm_attn_set_projection(h, w));
        mm_tensor_free(w);
    }
    CHECK_OK(mm_attn_forward(h, q, k, v, out));
    CHECK_OK(mm_attn_backward(h, dout, dq, dk, dv, NULL));
    for (int c = 0; c < 4; c++) {
        int fails = 0;
        for (int64_t i = 0; i < mm_tensor_numel(cmp[c].got) && fails < 3; i++)
            if (!mmt_near(mm_tensor_data(cmp[c].got)[i], cmp[c].want[i], cmp[c].rtol,
                          cmp[c].atol)) {
                mmt_fail(__FILE__, __LINE__, "%s: tensor %d [%lld]: %.9g vs torch %.9g", nm, c,
                         (long long)i, (double)mm_tensor_data(cmp[c].got)[i],
                         (double)cmp[c].want[i]);
                fails++;
            }
    }
    mm_attn_free(h);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(dout);
    mm_tensor_free(out), mm_tensor_free(dq), mm_tensor_free(dk), mm_tensor_free(dv);
}

static void test_attn_torch_vectors(void)
{
    for (size_t i = 0; i < sizeof attnv_cases / sizeof attnv_cases[0]; i++)
        torch_case(&attnv_cases[i]);
}

/* ---- the primitives' ISA tables on every path ------------------------------------------------ */
/* Each available path's table (mmi_dispatch_for: AVX2, AVX-512; the portable bodies are what the
 * operator tests above check under MM_SIMD=portable) against float64 references, at widths
 * across the 64- and 16-wide blocks and masked tails, with a guard band after every output that
 * must stay untouched (vector code ASan cannot check on a machine without it); exact where the
 * contract promises it: 0 for a column equal to o, the relu rows, elu+1's backward, the
 * normaliser's z, gate_row's sums and its factors equal to exp_sub's. */
#define AG   16
#define AG_F 4321.0f

static float *agbuf(int64_t n, uint64_t seed, float lo, float hi)
{
    float *b = malloc(sizeof(float) * (size_t)(n + AG));
    if (n > 0) mmt_fill_uniform(b, n, seed, lo, hi);
    for (int i = 0; i < AG; i++) b[n + i] = AG_F;
    return b;
}

static int agok(const float *b, int64_t n)
{
    for (int i = 0; i < AG; i++)
        if (b[n + i] != AG_F) return 0;
    return 1;
}

/* rowmat, rowmat_sub and matrow_acc on n output columns, K rows of mt (ld apart). */
static void isa_rowmats(const mmi_attn_isa *v, int64_t n)
{
    enum { K = 7 };
    const int64_t ld = n + 3;
    float x[K], o[K], *mt = agbuf(K * ld, 901, -1, 1), *y = agbuf(n, 0, 0, 0);
    float *y0 = agbuf(n, 902, -1, 1);
    mmt_fill_uniform(x, K, 903, -1, 1), mmt_fill_uniform(o, K, 904, -1, 1);
    for (int c = 0; c < K; c++) mt[c * ld + n - 1] = o[c]; /* the last column equals o */
    CHECK(v->rowmat(n, K, x, mt, ld, 1.5f, y) == 1);
    for (int64_t j = 0; j < n; j++) {
        double want = 0;
        for (int c = 0; c < K; c++) want += (double)x[c] * mt[c * ld + j];
        CHECK_NEAR(y[j], 1.5 * want, 1e-5, 1e-5);
    }
    CHECK(agok(y, n));
    CHECK(v->rowmat_sub(n, K, x, mt, ld, o, 1.5f, y) == 1);
    for (int64_t j = 0; j < n; j++) {
        double want = 0;
        for (int c = 0; c < K; c++) want += (double)x[c] * ((double)mt[c * ld + j] - o[c]);
        CHECK_NEAR(y[j], 1.5 * want, 1e-5, 1e-5);
    }
    CHECK(y[n - 1] == 0.0f && agok(y, n));
    memcpy(y, y0, sizeof(float) * (size_t)n);
    CHECK(v->matrow_acc(K, n, x, mt, ld, y) == 1);
    for (int64_t j = 0; j < n; j++) {
        double want = y0[j];
        for (int c = 0; c < K; c++) want += (double)x[c] * mt[c * ld + j];
        CHECK_NEAR(y[j], want, 1e-5, 1e-5);
    }
    CHECK(agok(y, n));
    free(mt), free(y), free(y0);
}

/* state_step in all seven combinations of a, w, b. */
static void isa_state_step(const mmi_attn_isa *v, int64_t n)
{
    enum { R = 6 };
    const int64_t ld = n + 5;
    float a[R], b[R], out[R + AG], *x = agbuf(n, 911, -1, 1), *w = agbuf(n, 912, -1, 1);
    float *st0 = agbuf(R * ld, 913, -1, 1), *st = agbuf(R * ld, 0, 0, 0);
    float *y0 = agbuf(n, 914, -1, 1), *y = agbuf(n, 0, 0, 0);
    mmt_fill_uniform(a, R, 915, -1, 1), mmt_fill_uniform(b, R, 916, -1, 1);
    for (int mode = 1; mode < 8; mode++) {
        const int ha = mode & 4, hw = mode & 2, hb = mode & 1;
        memcpy(st, st0, sizeof(float) * (size_t)(R * ld + AG));
        memcpy(y, y0, sizeof(float) * (size_t)(n + AG));
        for (int i = 0; i < R + AG; i++) out[i] = AG_F;
        CHECK(v->state_step(R, n, ha ? a : NULL, ha ? x : NULL, st, ld, hw ? w : NULL,
                            hw ? out : NULL, hb ? b : NULL, hb ? y : NULL) == 1);
        for (int r = 0; r < R; r++) {
            double dot = 0;
            for (int64_t j = 0; j < ld; j++) {
                const double s =
                    j < n && ha ? (double)st0[r * ld + j] + (double)a[r] * x[j] : st0[r * ld + j];
                if (j >= n) { /* between rows: untouched */
                    CHECK(st[r * ld + j] == st0[r * ld + j]);
                    continue;
                }
                CHECK_NEAR(st[r * ld + j], s, 1e-6, 1e-6);
                dot += s * w[j];
            }
            if (hw) CHECK_NEAR(out[r], dot, 1e-5, 1e-5);
        }
        for (int64_t j = 0; hb && j < n; j++) {
            double want = y0[j];
            for (int r = 0; r < R; r++)
                want += (double)b[r] *
                        (ha ? (double)st0[r * ld + j] + (double)a[r] * x[j] : st0[r * ld + j]);
            CHECK_NEAR(y[j], want, 1e-5, 1e-5);
        }
        CHECK(agok(st, R * ld) && agok(y, n) && agok(out, R));
    }
    free(x), free(w), free(st0), free(st), free(y0), free(y);
}

/* exp_sub (with -Inf for masked logits), elu+1 forward and backward, the normaliser step. */
static void isa_elementwise(const mmi_attn_isa *v, int64_t n)
{
    float *s = agbuf(n, 921, -12, 2), *p = agbuf(n, 0, 0, 0), *y = agbuf(n, 0, 0, 0);
    float *dy = agbuf(n, 922, -1, 1), *dx = agbuf(n, 0, 0, 0), sum = 0;
    float *k = agbuf(n, 923, -1, 1), *q = agbuf(n, 924, -1, 1);
    double *z = malloc(sizeof(double) * (size_t)(n + AG)), *z0 = malloc(sizeof(double) * (size_t)n);
    double want = 0, dot = 0;
    s[0] = -INFINITY, s[n - 1] = n > 1 ? -95.0f : s[n - 1];
    CHECK(v->exp_sub(n, s, 0.75f, p, &sum) == 1);
    for (int64_t j = 0; j < n; j++) {
        const double e = exp((double)(s[j] - 0.75f)); /* the kernels subtract in float */
        CHECK_NEAR(p[j], e < FLT_MIN ? 0.0 : e, 2e-7, 0);
        want += p[j];
    }
    CHECK(p[0] == 0.0f && agok(p, n));
    CHECK_NEAR(sum, want, 1e-6, 0);
    s[n / 2] = NAN; /* a NaN logit (a NaN in q or k) stays NaN in p and the sum, as expf keeps it */
    CHECK(v->exp_sub(n, s, 0.75f, p, &sum) == 1);
    CHECK(isnan(p[n / 2]) && isnan(sum));
    mmt_fill_uniform(s, n, 925, -6, 6);
    CHECK(v->elu1(n, s, y) == 1);
    for (int64_t j = 0; j < n; j++) {
        float one;
        CHECK_NEAR(y[j], s[j] > 0 ? (double)s[j] + 1 : exp((double)s[j]), 2e-7, 0);
        /* the same bits wherever the element sits (whole blocks or the tail) */
        CHECK(v->elu1(1, s + j, &one) == 1 && memcmp(&one, y + j, sizeof one) == 0);
    }
    CHECK(agok(y, n));
    { /* the edges: NaN stays NaN, -Inf and below FLT_MIN's log give 0, +-0 give 1 */
        const float in[8] = {NAN, -INFINITY, INFINITY, -0.0f, 0.0f, -90.0f, -87.0f, 88.0f};
        float out[8], g[8], dg[8];
        CHECK(v->elu1(8, in, out) == 1);
        CHECK(isnan(out[0]) && out[1] == 0.0f && out[2] == INFINITY && out[3] == 1.0f);
        CHECK(out[4] == 1.0f && out[5] == 0.0f && out[7] == 89.0f);
        CHECK_NEAR(out[6], exp(-87.0), 2e-7, 0);
        for (int j = 0; j < 8; j++) g[j] = 1.0f;
        CHECK(v->elu1_bwd(8, out, g, dg) == 1); /* a NaN feature gives a NaN gradient */
        CHECK(isnan(dg[0]) && dg[1] == 0.0f && dg[2] == 1.0f && dg[3] == 1.0f);
    }
    CHECK(v->elu1_bwd(n, y, dy, dx) == 1);
    for (int64_t j = 0; j < n; j++) CHECK(dx[j] == dy[j] * (y[j] > 1.0f ? 1.0f : y[j]));
    CHECK(agok(dx, n));
    for (int64_t j = 0; j < n; j++) z0[j] = z[j] = 0.5 * (double)j - 3.0;
    for (int i = 0; i < AG; i++) z[n + i] = AG_F;
    CHECK(v->norm_step(n, k, z, q, &dot) == 1);
    want = 0;
    for (int64_t j = 0; j < n; j++) {
        CHECK(z[j] == z0[j] + (double)k[j]);
        want += (double)q[j] * z[j];
    }
    for (int i = 0; i < AG; i++) CHECK(z[n + i] == AG_F);
    CHECK_NEAR(dot, want, 1e-12, 1e-12);
    CHECK(v->norm_step(n, NULL, z, q, &dot) == 1); /* read only */
    CHECK_NEAR(dot, want, 1e-12, 1e-12);
    free(s), free(p), free(y), free(dy), free(dx), free(k), free(q), free(z), free(z0);
}

/* The RELU2 rows (exact: one rounding each) and the dS tile over every row count up to 13. */
static void isa_relu_ds(const mmi_attn_isa *v, int64_t n)
{
    enum { K = 5, R = 13 };
    const int64_t ldx = K + 2, ldm = n + 4, ldp = n + 6;
    float *x = agbuf(n, 931, -2, 2), *t = agbuf(n, 932, -2, 2), *u = agbuf(n, 933, -1, 1);
    float *t2 = agbuf(n, 0, 0, 0), *u2 = agbuf(n, 0, 0, 0), *r0 = agbuf(n, 0, 0, 0);
    float xr[R * ldx], or_[R * ldx], *mt = agbuf(K * ldm, 934, -1, 1);
    float *p0 = agbuf(R * ldp, 935, 0, 1), *p = agbuf(R * ldp, 0, 0, 0);
    for (int sq = 0; sq <= 1; sq++)
        for (int64_t lim = 0; lim <= n; lim += n / 3 + 1) {
            memcpy(r0, x, sizeof(float) * (size_t)n);
            CHECK(v->relu_row(n, lim, r0, sq) == 1);
            for (int64_t j = 0; j < n; j++) {
                const float y = j < lim && x[j] > 0.0f ? x[j] : 0.0f;
                CHECK(r0[j] == (sq ? y * y : y));
            }
            CHECK(agok(r0, n));
        }
    memcpy(t2, t, sizeof(float) * (size_t)n), memcpy(u2, u, sizeof(float) * (size_t)n);
    CHECK(v->relu_ds_row(n, t2, u2, 0.375f) == 1);
    for (int64_t j = 0; j < n; j++) CHECK(u2[j] == 0.375f * t[j] * u[j] && t2[j] == t[j] * t[j]);
    CHECK(agok(t2, n) && agok(u2, n));
    mmt_fill_uniform(xr, R * ldx, 936, -1, 1), mmt_fill_uniform(or_, R * ldx, 937, -1, 1);
    for (int c = 0; c < K; c++) mt[c * ldm + n - 1] = or_[2 * ldx + c]; /* row 2's o */
    for (int64_t rows = 1; rows <= R; rows++) {
        memcpy(p, p0, sizeof(float) * (size_t)(R * ldp + AG));
        CHECK(v->ds_tile(rows, n, K, xr, or_, ldx, mt, ldm, p, ldp) == 1);
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < ldp; j++) {
                double want = 0;
                if (r >= rows || j >= n) { /* outside the view: untouched */
                    CHECK(p[r * ldp + j] == p0[r * ldp + j]);
                    continue;
                }
                for (int c = 0; c < K; c++)
                    want += (double)xr[r * ldx + c] * ((double)mt[c * ldm + j] - or_[r * ldx + c]);
                CHECK_NEAR(p[r * ldp + j], p0[r * ldp + j] * want, 1e-5, 1e-6);
            }
        if (rows > 2) CHECK(p[2 * ldp + n - 1] == 0.0f);
        CHECK(agok(p, R * ldp));
        /* bitwise the tile called on 16-column strips (an ISA may block n >= 64 another way,
         * AVX2 a row at a time over 64 columns: the blocks must not change the bits) */
        {
            float *q = agbuf(R * ldp, 0, 0, 0);
            memcpy(q, p0, sizeof(float) * (size_t)(R * ldp + AG));
            for (int64_t j = 0; j < n; j += 16)
                CHECK(v->ds_tile(rows, n - j < 16 ? n - j : 16, K, xr, or_, ldx, mt + j, ldm, q + j,
                                 ldp) == 1);
            CHECK(memcmp(p, q, sizeof(float) * (size_t)(R * ldp)) == 0);
            free(q);
        }
    }
    free(x), free(t), free(u), free(t2), free(u2), free(r0), free(mt), free(p0), free(p);
}

/* gate_row: the float64 sums exactly, the factors against float64 and, where the table
 * handled the row, bitwise what exp_sub and the scalar products give. */
static void isa_gate_row(const mmi_attn_isa *v, int64_t n)
{
    float *g = agbuf(n, 941, -3, 0), *q = agbuf(n, 942, -1, 1), *k = agbuf(n, 943, -1, 1);
    float *qe = agbuf(n, 0, 0, 0), *kh = agbuf(n, 0, 0, 0), *bf = agbuf(n, 0, 0, 0);
    float *e = agbuf(n, 0, 0, 0), *eo = agbuf(n, 0, 0, 0), sum;
    double *prev = malloc(sizeof(double) * (size_t)n),
           *bt = malloc(sizeof(double) * (size_t)(n + AG));
    g[0] = -1e30f; /* clamped to -128 */
    for (int64_t c = 0; c < n; c++) prev[c] = -0.37 * (double)c;
    for (int i = 0; i < AG; i++) bt[n + i] = AG_F;
    if (v->gate_row(n, prev, g, bt, q, 0.5f, k, qe, kh, eo)) {
        for (int64_t c = 0; c < n; c++) {
            const double want = prev[c] + (g[c] > -128.0f ? (double)g[c] : -128.0);
            CHECK(bt[c] == want);
            double ex;
            bf[c] = (float)bt[c];
            ex = exp((double)bf[c]) < FLT_MIN ? 0.0 : exp((double)bf[c]); /* flushed: k / 0 */
            CHECK_NEAR(qe[c], 0.5 * q[c] * ex, 4e-7, 1e-37);
            CHECK_NEAR(kh[c], (float)(k[c] / ex), 4e-7, 0);
        }
        CHECK(v->exp_sub(n, bf, 0.0f, e, &sum) == 1);
        for (int64_t c = 0; c < n; c++)
            CHECK(qe[c] == 0.5f * q[c] * e[c] && kh[c] == k[c] / e[c] && eo[c] == e[c]);
        CHECK(agok(qe, n) && agok(kh, n) && agok(eo, n));
        for (int i = 0; i < AG; i++) CHECK(bt[n + i] == AG_F);
    }
    if (v->gate_row(n, NULL, g, bt, NULL, 0.0f, NULL, NULL, NULL, NULL))
        for (int64_t c = 0; c < n; c++) CHECK(bt[c] == (g[c] > -128.0f ? (double)g[c] : -128.0));
    free(g), free(q), free(k), free(qe), free(kh), free(bf), free(e), free(eo), free(prev);
    free(bt);
}

/* log_gate_copy (an entry a table may leave NULL; the wrapper then runs the AVX2 body): the
 * copy exact with the padding untouched, and a bad gate (above 0, +0 allowed; NaN; -inf; +inf)
 * found wherever it sits, in the vector body or the tail. The wrapper (the process's path)
 * agrees. */
static void isa_log_gate_copy(const mmi_attn_isa *v, int64_t n)
{
    const float bad[4] = {1e-30f, NAN, -INFINITY, INFINITY};
    float *x = agbuf(n, 961, -3, 0), *y = agbuf(n, 0, 0, 0);
    const int64_t step = n > 9 ? n / 3 + 1 : 1;
    int r = -1;
    x[n / 2] = 0.0f, x[0] = -FLT_MAX;
    if (!v->log_gate_copy || !v->log_gate_copy(n, x, y, &r)) r = mmi_attn_log_gate_copy(n, x, y);
    CHECK(r == 0 && agok(y, n) && mmi_attn_log_gate_copy(n, x, y) == 0);
    for (int64_t c = 0; c < n; c++) CHECK(y[c] == x[c]);
    for (int b = 0; b < 4; b++)
        for (int64_t at = 0; at < n; at += step) {
            const float keep = x[at];
            x[at] = bad[b];
            if (!v->log_gate_copy || !v->log_gate_copy(n, x, y, &r))
                r = mmi_attn_log_gate_copy(n, x, y);
            CHECK(r == 1 && mmi_attn_log_gate_copy(n, x, y) == 1 && agok(y, n));
            x[at] = keep;
        }
    free(x), free(y);
}

/* transpose and gate_grad_row (entries a table may leave NULL): the transpose exactly, into a
 * destination with padding that must stay untouched; the gate gradient row bitwise against the
 * portable formula, over several rows so the running float64 sums carry. */
static void isa_transpose_gate_grad(const mmi_attn_isa *v, int64_t n)
{
    const int64_t rows = n % 13 + 3, ldd = rows + 5, lds = n + 2;
    float *src = agbuf(rows * lds, 951, -1, 1), *dst = agbuf(n * ldd, 0, 0, 0);
    float *q = agbuf(n, 952, -1, 1), *k = agbuf(n, 953, -1, 1), *dk = agbuf(n, 954, -1, 1);
    float *dq = agbuf(n, 955, -1, 1), *dg = agbuf(n, 0, 0, 0), *dq0 = agbuf(n, 0, 0, 0);
    double *acc = calloc((size_t)n, sizeof(double)), *ref = calloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n * ldd; i++) dst[i] = AG_F;
    if (v->transpose && v->transpose(rows, n, src, lds, dst, ldd)) {
        int ok = 1;
        for (int64_t c = 0; c < n; c++)
            for (int64_t r = 0; r < ldd; r++)
                ok &= r < rows ? dst[c * ldd + r] == src[r * lds + c] : dst[c * ldd + r] == AG_F;
        CHECK(ok && agok(dst, n * ldd));
    }
    for (int rep = 0; rep < 3 && v->gate_grad_row; rep++) {
        memcpy(dq0, dq, sizeof(float) * (size_t)n);
        if (!v->gate_grad_row(n, 0.37f, q, dq, k, dk, acc, dg)) break;
        for (int64_t c = 0; c < n; c++) {
            ref[c] += (double)0.37f * q[c] * dq0[c] - (double)k[c] * dk[c];
            CHECK(acc[c] == ref[c] && dg[c] == (float)ref[c] && dq[c] == dq0[c] * 0.37f);
        }
        CHECK(agok(dq, n) && agok(dg, n));
    }
    free(src), free(dst), free(q), free(k), free(dk), free(dq), free(dg), free(dq0), free(acc);
    free(ref);
}

/* gate_grad_rows (may be NULL): a chunk's rows last to first, bitwise against the portable
 * formula row by row, the running float64 sums carried over two calls; the rows' padding past
 * n columns (row stride n: the block is [rows, n]) is the next row, so nothing may spill. */
static void isa_gate_grad_rows(const mmi_attn_isa *v, int64_t n)
{
    const int64_t rows = n % 5 + 2, len = rows * n;
    float *q = agbuf(len, 956, -1, 1), *k = agbuf(len, 957, -1, 1), *dk = agbuf(len, 958, -1, 1);
    float *dq = agbuf(len, 959, -1, 1), *dg = agbuf(len, 0, 0, 0), *dq0 = agbuf(len, 0, 0, 0);
    double *acc = calloc((size_t)n, sizeof(double)), *ref = calloc((size_t)n, sizeof(double));
    for (int rep = 0; rep < 2 && v->gate_grad_rows; rep++) {
        int ok = 1;
        memcpy(dq0, dq, sizeof(float) * (size_t)len);
        CHECK(v->gate_grad_rows(rows, n, 0.37f, q, dq, k, dk, acc, dg) == 1);
        for (int64_t t = rows - 1; t >= 0; t--)
            for (int64_t c = 0; c < n; c++) {
                const int64_t i = t * n + c;
                ref[c] += (double)0.37f * q[i] * dq0[i] - (double)k[i] * dk[i];
                ok &= dg[i] == (float)ref[c] && dq[i] == dq0[i] * 0.37f;
            }
        for (int64_t c = 0; c < n; c++) ok &= acc[c] == ref[c];
        CHECK(ok && agok(dq, len) && agok(dg, len));
    }
    free(q), free(k), free(dk), free(dq), free(dg), free(dq0), free(acc), free(ref);
}

/* The gated kernel with the chunk-entry states saved by the forward (the operator's path) and
 * recomputed by the backward (hs NULL: the model blocks' path): the same outputs bitwise, and
 * gradients within 1e-5 of the largest (the two paths round the states differently), for mild
 * and strong per-key gates and scalar gates, chunks that do and do not divide n. */
static void test_attn_gated_saved_states(void)
{
    const int64_t n = 77, d = 8, dv = 5;
    for (int cs = 0; cs < 4; cs++) {
        const int gmode = cs < 3 ? 3 : 2;
        const float lo = cs == 1 ? -30.0f : -0.2f;
        mmi_attn_dims s = {n, n, d, dv, 0.35f, 1, 0, 0, cs == 2 ? 11 : 16};
        const int64_t gl = gmode == 3 ? n * d : n;
        const size_t nws = mmi_attn_gated_ws_floats(n, s.chunk, d, dv) + 16;
        const size_t nhs = mmi_attn_gated_hs_floats(n, s.chunk, d, dv);
        float *q = agbuf(n * d, 961, -1, 1), *k = agbuf(n * d, 962, -1, 1);
        float *v = agbuf(n * dv, 963, -1, 1), *g = agbuf(gl, 964, lo, 0);
        float *dout = agbuf(n * dv, 965, -1, 1), *ws = agbuf((int64_t)nws, 0, 0, 0);
        float *hs = agbuf((int64_t)nhs, 0, 0, 0), *out[2], *grad[2][4];
        double big = 0, err = 0;
        for (int p = 0; p < 2; p++) {
            out[p] = agbuf(n * dv, 0, 0, 0);
            grad[p][0] = agbuf(n * d, 0, 0, 0), grad[p][1] = agbuf(n * d, 0, 0, 0);
            grad[p][2] = agbuf(n * dv, 0, 0, 0), grad[p][3] = agbuf(gl, 0, 0, 0);
            mmi_attn_gated_fwd(&s, gmode, g, q, k, v, out[p], p ? hs : NULL, ws);
            mmi_attn_gated_bwd(&s, gmode, g, q, k, v, dout, grad[p][0], grad[p][1], grad[p][2],
                               grad[p][3], p ? hs : NULL, ws);
        }
        CHECK(!memcmp(out[0], out[1], sizeof(float) * (size_t)(n * dv)));
        CHECK(agok(hs, (int64_t)nhs) && agok(out[1], n * dv) && agok(grad[1][3], gl));
        for (int t = 0; t < 4; t++) {
            const int64_t len = t < 2 ? n * d : t == 2 ? n * dv : gl;
            for (int64_t i = 0; i < len; i++) {
                big = fmax(big, fabs(grad[0][t][i]));
                err = fmax(err, fabs(grad[0][t][i] - grad[1][t][i]));
            }
        }
        CHECK(big > 0 && err <= 1e-5 * big);
        free(q), free(k), free(v), free(g), free(dout), free(ws), free(hs);
        for (int p = 0; p < 2; p++) {
            free(out[p]);
            for (int t = 0; t < 4; t++) free(grad[p][t]);
        }
    }
}

/* softmax_row (an entry some tables leave NULL): masked keys never read (they hold NaN here),
 * the maximum, exponentials and sum bitwise what exp_sub gives on the whole row with the masked
 * keys as -inf (the portable body's contract: a row cut at lim has the bits of the row masked by
 * value, which the diagonal blocks rely on; AVX2's exp_sub sums a tail past the last 8-block in
 * scalar, so its sum over lim keys alone is grouped differently), the accumulator rescaled by
 * libm's alpha, the guard bands untouched; an empty row leaves m, l and acc as they were. */
static void isa_softmax_row(const mmi_attn_isa *v, int64_t n)
{
    float *s = agbuf(n, 931, -12, 2), *s0 = agbuf(n, 0, 0, 0), *p = agbuf(n, 0, 0, 0);
    float *acc = agbuf(n, 932, -1, 1), *acc0 = agbuf(n, 0, 0, 0);
    const int64_t lims[3] = {n, n - n / 3, 0};
    if (!v->softmax_row) goto done;
    for (int c = 0; c < 3; c++)
        for (int mi = 0; mi < 2; mi++) {
            const int64_t lim = lims[c];
            double m = mi ? -INFINITY : 0.5, l = 2.0, m1, l1;
            float mx = -INFINITY, sum = 0.0f, alpha;
            mmt_fill_uniform(s, n, 933 + (uint64_t)c, -12, 2);
            for (int64_t j = lim; j < n; j++) s[j] = NAN; /* masked: never read */
            memcpy(s0, s, sizeof(float) * (size_t)n);
            memcpy(acc0, acc, sizeof(float) * (size_t)n);
            for (int64_t j = 0; j < lim; j++) mx = s[j] > mx ? s[j] : mx;
            m1 = m, l1 = l;
            CHECK(v->softmax_row(n, lim, s, &m1, &l1, acc, n) == 1);
            CHECK(agok(s, n) && agok(acc, n));
            if (lim == 0) {
                for (int64_t j = 0; j < n; j++) CHECK(s[j] == 0.0f && acc[j] == acc0[j]);
                CHECK(m1 == m && l1 == l);
                continue;
            }
            {
                const float mnew = (float)m > mx ? (float)m : mx;
                alpha = m == -INFINITY ? 0.0f : expf((float)m - mnew);
                for (int64_t j = lim; j < n; j++) s0[j] = -INFINITY; /* masked by value */
                CHECK(v->exp_sub(n, s0, mnew, p, &sum) == 1);
                for (int64_t j = 0; j < n; j++) CHECK(s[j] == p[j] && (j < lim || s[j] == 0.0f));
                for (int64_t j = 0; j < n; j++)
                    CHECK(acc[j] == (alpha != 1.0f ? acc0[j] * alpha : acc0[j]));
                CHECK(m1 == (double)mnew && l1 == l * alpha + sum);
            }
        }
done:
    free(s), free(s0), free(p), free(acc), free(acc0);
}

/* rwkv_bonus (may be NULL): c in the portable body's bits (eight partial sums, then the tail and
 * the parts in order), near the float64 sum, o += (float)c v as one product and one sum. */
static void isa_rwkv_bonus(const mmi_attn_isa *v, int64_t n)
{
    float *r = agbuf(n, 941, -1, 1), *u = agbuf(n, 942, -1, 1), *k = agbuf(n, 943, -1, 1);
    float *vv = agbuf(n, 944, -1, 1), *o = agbuf(n, 945, -1, 1), *o0 = agbuf(n, 0, 0, 0);
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, want = 0.0, exact = 0.0, c = 0.0;
    int64_t i = 0;
    if (!v->rwkv_bonus) goto done;
    memcpy(o0, o, sizeof(float) * (size_t)n);
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += (double)r[i + j] * (double)u[i + j] * (double)k[i + j];
    for (; i < n; i++) want += (double)r[i] * (double)u[i] * (double)k[i];
    for (int j = 0; j < 8; j++) want += part[j];
    want *= (double)0.375f;
    for (i = 0; i < n; i++) exact += (double)r[i] * (double)u[i] * (double)k[i];
    CHECK(v->rwkv_bonus(n, n, 0.375f, r, u, k, vv, o, &c) == 1);
    CHECK(c == want);
    CHECK_NEAR(c, 0.375 * exact, 1e-12, 1e-12);
    for (i = 0; i < n; i++) {
        const float y = (float)c * vv[i];
        CHECK(o[i] == o0[i] + y);
    }
    CHECK(agok(o, n));
done:
    free(r), free(u), free(k), free(vv), free(o), free(o0);
}

/* The causal linear kernel's row entries (a table may leave them NULL, or decline n > 64):
 * lin_norm against the table's own norm_step and the row scaling, lin_dnum and lin_acc against
 * the portable formulas, all bitwise, over a chunk of rows so the float64 sums carry; nothing
 * past the rows is written. */
static void isa_linear_rows(const mmi_attn_isa *v, int64_t n)
{
    enum { LEN = 5 };
    const int64_t ldx = n + 3;
    float *q = agbuf(LEN * n, 971, 0, 2), *k = agbuf(LEN * n, 972, 0, 2);
    float *x = agbuf(LEN * ldx, 0, 0, 0), *den = agbuf(LEN, 0, 0, 0);
    float *g = agbuf(LEN * n, 973, -1, 1), *g0 = agbuf(LEN * n, 0, 0, 0);
    float *dnum = agbuf(n, 0, 0, 0);
    double *z = calloc((size_t)n, sizeof(double)), *zr = calloc((size_t)n, sizeof(double));
    double a[LEN] = {0.3, -1.7, 2.5e-3, 11.0, -0.0625}, dd = 0;
    for (int norm = 0; norm < 2; norm++) {
        for (int64_t c = 0; c < n; c++) z[c] = zr[c] = 0.25 * (double)c - 1.0;
        if (v->lin_norm && v->lin_norm(LEN, n, q, k, z, norm, 1e-6, den, x, ldx)) {
            int ok = 1;
            for (int64_t t = 0; t < LEN; t++) {
                double qz = 0, dn = 1.0;
                CHECK(v->norm_step(n, k + t * n, zr, q + t * n, &qz) == 1);
                if (norm) dn = 1e-6 + qz == 0.0 ? 1.0 : 1e-6 + qz;
                ok &= den[t] == (float)dn;
                for (int64_t c = 0; c < ldx; c++)
                    ok &= c < n ? x[t * ldx + c] == (norm ? (float)(1.0 / dn) : 1.0f) * q[t * n + c]
                                : x[t * ldx + c] == 0.0f;
            }
            for (int64_t c = 0; c < n; c++) ok &= z[c] == zr[c];
            CHECK(ok && agok(x, LEN * ldx) && agok(den, LEN));
        }
    }
    if (v->lin_dnum && v->lin_dnum(n, g, q, 1.37f, dnum, &dd)) {
        double part[8] = {0}, dot = 0;
        int ok = 1;
        int64_t c = 0;
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) part[j] += (double)g[c + j] * (double)q[c + j];
        for (; c < n; c++) dot += (double)g[c] * (double)q[c];
        for (int j = 0; j < 8; j++) dot += part[j];
        for (c = 0; c < n; c++) ok &= dnum[c] == g[c] / 1.37f;
        CHECK(ok && dd == -dot / 1.37f && agok(dnum, n));
    }
    for (int rev = 0; rev < 2 && v->lin_acc; rev++) {
        int ok = 1;
        for (int64_t c = 0; c < n; c++) z[c] = zr[c] = 0.5 * (double)c - 3.0;
        memcpy(g0, g, sizeof(float) * (size_t)(LEN * n));
        if (!v->lin_acc(LEN, n, rev, a, k, z, g)) break;
        for (int64_t i = 0; i < LEN; i++) {
            const int64_t t = rev ? LEN - 1 - i : i;
            for (int64_t c = 0; c < n; c++) {
                double y;
                if (rev) {
                    const double p = a[t] * (double)k[t * n + c];
                    zr[c] = zr[c] + p;
                    y = (double)g0[t * n + c] + zr[c];
                } else {
                    const double p = zr[c] + (double)k[t * n + c];
                    zr[c] = p;
                    y = (double)g0[t * n + c] + zr[c] * a[t];
                }
                ok &= g[t * n + c] == (float)y;
            }
        }
        for (int64_t c = 0; c < n; c++) ok &= z[c] == zr[c];
        CHECK(ok && agok(g, LEN * n));
        memcpy(g, g0, sizeof(float) * (size_t)(LEN * n));
    }
    free(q), free(k), free(x), free(den), free(g), free(g0), free(dnum), free(z), free(zr);
}

/* lin_tile (a table may leave it NULL, or decline n > 64) on m x n outputs with reductions of
 * 1, 5, 16 and 80: NN written (mode 0), accumulated (1) and lower-triangular (2), TN
 * accumulated (the state updates), and NN with the reduction split into two segments whose
 * second A and B lie elsewhere with other strides. Against a float64 reference (exact zeros
 * above the diagonal in mode 2), and bitwise against the GEMM tile it stands in for on the
 * stacked operands (mmi_attn_tile_nn with beta = mode 1, then the upper triangle zeroed;
 * mmi_attn_tile_tn at k <= 64, its piece; not in an OpenBLAS build, whose tiles round their own
 * way, nor with the portable GEMM kernel, which sums in its own order and is never paired with
 * lin_tile); the columns between n and ldc and the rows past m are left alone. */
static void isa_lin_tile_case(const mmi_attn_isa *v, int64_t m, int64_t n, int64_t k, int var)
{
    /* var: 0-2 NN in mode var, 3 TN (mode 1), 4 NN (mode 0) in two segments */
    const int tn = var == 3, mode = var == 3 ? 1 : var == 4 ? 0 : var;
    const int64_t lda = (tn ? m : k) + 2, ldb = n + 1, ldc = n + 3, rs = tn ? 1 : lda;
    const int64_t cs = tn ? lda : 1, k1 = var == 4 ? k / 2 : k, lda2 = k - k1 + 5, ldb2 = n + 7;
    float *a = agbuf((tn ? k : m) * lda, 981, -1, 1), *b = agbuf(k * ldb, 982, -1, 1);
    float *c = agbuf(m * ldc, 983, -1, 1), *c0 = agbuf(m * ldc, 0, 0, 0);
    float *c1 = agbuf(m * ldc, 0, 0, 0), *a2 = agbuf(m * lda2, 0, 0, 0);
    float *b2 = agbuf((k - k1) * ldb2, 0, 0, 0);
    mmi_attn_lin_seg sg[2] = {{k1, a, rs, cs, b, ldb}, {k - k1, a2, lda2, 1, b2, ldb2}};
    int ok = 1;
    for (int64_t i = 0; i < m; i++) /* the second segment's copy of A and B */
        for (int64_t p = k1; p < k; p++) a2[i * lda2 + p - k1] = a[i * lda + p];
    for (int64_t p = k1; p < k; p++)
        for (int64_t j = 0; j < n; j++) b2[(p - k1) * ldb2 + j] = b[p * ldb + j];
    memcpy(c0, c, sizeof(float) * (size_t)(m * ldc));
    memcpy(c1, c, sizeof(float) * (size_t)(m * ldc));
    if (!v->lin_tile(mode, m, n, sg, k1 < k ? 2 : 1, c, ldc)) {
        CHECK(n > 64);
        goto done;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double y = mode == 1 ? (double)c0[i * ldc + j] : 0.0;
            const float got = c[i * ldc + j];
            for (int64_t p = 0; p < k && j < n; p++)
                y += (double)a[i * rs + p * cs] * (double)b[p * ldb + j];
            if (j >= n)
                ok &= got == c0[i * ldc + j];
            else if (mode == 2 && j > i)
                ok &= got == 0.0f;
            else
                ok &= fabs((double)got - y) <= 1e-5 * (1.0 + (double)k);
        }
    /* MM_HAVE_OPENBLAS is a library flag, not a test one: ask the build info (as above) */
    if (strstr(mm_build_info(), "blas=openblas") == NULL) {
        if (tn)
            mmi_attn_tile_tn(m, n, k, 1.0f, a, lda, b, ldb, c1, ldc);
        else
            mmi_attn_tile_nn(m, n, k, 1.0f, a, lda, b, ldb, mode == 1 ? 1.0f : 0.0f, c1, ldc);
        for (int64_t i = 0; i < m && mode == 2; i++)
            for (int64_t j = i + 1; j < n; j++) c1[i * ldc + j] = 0.0f;
        ok &= (tn && k > 64) || mmi_simd_path_get() == MMI_SIMD_PORTABLE ||
              memcmp(c, c1, sizeof(float) * (size_t)(m * ldc)) == 0;
    }
    CHECK(ok && agok(c, m * ldc));
done:
    free(a), free(b), free(c), free(c0), free(c1), free(a2), free(b2);
}

static void isa_lin_tile(const mmi_attn_isa *v, int64_t n)
{
    static const int64_t ms[] = {1, 5, 6, 13, 16, 17, 64}, ks[] = {1, 5, 16, 80};
    if (!v->lin_tile) return;
    for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++)
            for (int var = 0; var < 5; var++) isa_lin_tile_case(v, ms[im], n, ks[ik], var);
}

/* lin_tile_rs (NULL on tables without it) bitwise against its two-pass form: C0 scaled into C
 * by f per row, then lin_tile's mode 1; TN with one segment (the gated state update) and NN in
 * two segments, C0 apart from C (its own stride) and C0 being C itself (the in-place update);
 * the columns between n and ldc left alone. n > 64 may be declined. */
static void isa_lin_tile_rs_case(const mmi_attn_isa *v, int64_t m, int64_t n, int64_t k, int var)
{
    const int tn = var == 0, inplace = var == 2;
    const int64_t lda = (tn ? m : k) + 2, ldb = n + 1, ldc = n + 3, ldc0 = inplace ? ldc : n + 5;
    const int64_t rs = tn ? 1 : lda, cs = tn ? lda : 1, k1 = tn ? k : (k + 1) / 2;
    float *a = agbuf((tn ? k : m) * lda, 971, -1, 1), *b = agbuf(k * ldb, 972, -1, 1);
    float *c = agbuf(m * ldc, 973, -1, 1), *c0 = agbuf(m * ldc0, 974, -1, 1);
    float *ref = agbuf(m * ldc, 0, 0, 0), *f = agbuf(m, 975, 0, 1);
    const mmi_attn_lin_seg sg[2] = {{k1, a, rs, cs, b, ldb},
                                    {k - k1, a + k1 * cs, rs, cs, b + k1 * ldb, ldb}};
    const int nseg = k1 < k ? 2 : 1;
    int ok = 1;
    if (inplace) memcpy(c0, c, sizeof(float) * (size_t)(m * ldc));
    memcpy(ref, c, sizeof(float) * (size_t)(m * ldc));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) ref[i * ldc + j] = c0[i * ldc0 + j] * f[i];
    if (!v->lin_tile_rs(m, n, sg, nseg, f, inplace ? c : c0, ldc0, c, ldc)) {
        CHECK(n > 64);
        goto done;
    }
    CHECK(v->lin_tile(1, m, n, sg, nseg, ref, ldc) == 1);
    ok &= memcmp(c, ref, sizeof(float) * (size_t)(m * ldc)) == 0;
    CHECK(ok && agok(c, m * ldc) && agok(c0, m * ldc0));
done:
    free(a), free(b), free(c), free(c0), free(ref), free(f);
}

static void isa_lin_tile_rs(const mmi_attn_isa *v, int64_t n)
{
    static const int64_t ms[] = {1, 5, 6, 13, 16, 17, 64}, ks[] = {1, 5, 16, 32, 80};
    if (!v->lin_tile_rs) return;
    for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++)
            for (int var = 0; var < 3; var++) isa_lin_tile_rs_case(v, ms[im], n, ks[ik], var);
}

/* exp_rows against exp_sub row by row, bitwise: every visible count from the clamp's both ends
 * (off < 0 .. off > n), masked logits (-inf), a row that saw no key (sub = +inf: all 0), and the
 * columns between n and the row stride untouched. */
static void isa_exp_rows(const mmi_attn_isa *v, int64_t n)
{
    enum { R = 7 };
    const int64_t ld = n + 3, offs[] = {-2, 0, 1, 3, n - 2, n, n + 5};
    float *s = agbuf(R * ld, 941, -30, 2), *p = agbuf(R * ld, 0, 0, 0);
    float sub[R];
    if (!v->exp_rows) goto done;
    for (int r = 0; r < R; r++) sub[r] = 0.25f * (float)r - 0.5f;
    sub[4] = INFINITY;
    s[2 * ld + n / 2] = -INFINITY;
    for (size_t io = 0; io < sizeof offs / sizeof offs[0]; io++) {
        const int64_t off = offs[io];
        memcpy(p, s, sizeof(float) * (size_t)(R * ld + AG));
        CHECK(v->exp_rows(R, n, off, p, ld, sub) == 1);
        exp_rows_check(v, R, n, off, s, p, ld, sub);
        CHECK(agok(p, R * ld));
    }
done:
    free(s), free(p);
}

/* exp_ds_rows (NULL on tables without it): P bitwise exp_rows's (exp_sub row by row on the
 * same table), dS = P (dP - D) per element as one subtraction and one product, bitwise, 0 from
 * each row's visible count on without reading x there (NaN there must not leak), for every
 * visible count from the clamp's both ends and a row that saw no key; the columns between n and
 * the row stride untouched in both tiles. */
static void isa_exp_ds_rows(const mmi_attn_isa *v, int64_t n)
{
    enum { R = 7 };
    const int64_t ld = n + 3, offs[] = {-2, 0, 1, 3, n - 2, n, n + 5};
    float *s = agbuf(R * ld, 951, -30, 2), *x0 = agbuf(R * ld, 952, -2, 2);
    float *p = agbuf(R * ld, 0, 0, 0), *x = agbuf(R * ld, 0, 0, 0);
    float sub[R], dd[R];
    if (!v->exp_ds_rows) goto done;
    for (int r = 0; r < R; r++) sub[r] = 0.25f * (float)r - 0.5f, dd[r] = 0.3f * (float)r - 1.0f;
    sub[4] = INFINITY;
    s[2 * ld + n / 2] = -INFINITY;
    for (size_t io = 0; io < sizeof offs / sizeof offs[0]; io++) {
        const int64_t off = offs[io];
        int ok = 1;
        memcpy(p, s, sizeof(float) * (size_t)(R * ld + AG));
        memcpy(x, x0, sizeof(float) * (size_t)(R * ld + AG));
        for (int64_t r = 0; r < R; r++) {
            const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
            for (int64_t j = nv; j < n; j++) x[r * ld + j] = NAN;
        }
        CHECK(v->exp_ds_rows(R, n, off, p, x, ld, sub, dd) == 1);
        exp_rows_check(v, R, n, off, s, p, ld, sub);
        for (int64_t r = 0; r < R; r++) {
            const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
            for (int64_t j = 0; j < ld; j++) {
                const float got = x[r * ld + j], want = p[r * ld + j] * (x0[r * ld + j] - dd[r]);
                if (j >= n)
                    ok &= memcmp(&got, &x0[r * ld + j], sizeof got) == 0;
                else if (j >= nv)
                    ok &= got == 0.0f;
                else
                    ok &= memcmp(&got, &want, sizeof got) == 0;
            }
        }
        CHECK(ok && agok(p, R * ld) && agok(x, R * ld));
    }
done:
    free(s), free(x0), free(p), free(x);
}

/* row_dots (NULL on tables without it) over reductions k: each dd[r] near the float64 dot and,
 * where the tiles run on libmm's direct kernel of an FMA path (not the portable path, whose
 * GEMM sums with separate products, nor an OpenBLAS build), bitwise the GEMM tile's element
 * a_r . b_r: the diagonal of mmi_attn_tile_nn(A, B^T) with alpha 1, beta 0, which is what the
 * softmax backward's dP tile holds in a saturated row. Row counts across the 8-row blocks;
 * nothing past rows written. */
static void isa_row_dots(const mmi_attn_isa *v, int64_t k)
{
    static const int64_t rs[] = {1, 3, 8, 9, 17, 64};
    const int64_t lda = k + 3, ldb = k + 5;
    if (!v->row_dots) return;
    for (size_t ir = 0; ir < sizeof rs / sizeof rs[0]; ir++) {
        const int64_t rows = rs[ir], ldt = rows + 2;
        float *a = agbuf(rows * lda, 961, -1, 1), *b = agbuf(rows * ldb, 962, -1, 1);
        float *dd = agbuf(rows, 0, 0, 0), *bt = agbuf(k * ldt, 963, -1, 1);
        float *c = agbuf(rows * ldt, 0, 0, 0);
        int ok = 1;
        CHECK(v->row_dots(rows, k, a, lda, b, ldb, dd) == 1);
        for (int64_t r = 0; r < rows; r++) {
            double want = 0.0;
            for (int64_t i = 0; i < k; i++) want += (double)a[r * lda + i] * b[r * ldb + i];
            ok &= fabs((double)dd[r] - want) <= 1e-6 * (1.0 + (double)k);
        }
        if (mmi_attn_tile_direct(rows, k) && mmi_simd_path_get() != MMI_SIMD_PORTABLE) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t i = 0; i < k; i++) bt[i * ldt + r] = b[r * ldb + i];
            mmi_attn_tile_nn(rows, rows, k, 1.0f, a, lda, bt, ldt, 0.0f, c, ldt);
            for (int64_t r = 0; r < rows; r++)
                ok &= memcmp(&c[r * ldt + r], &dd[r], sizeof(float)) == 0;
        }
        CHECK(ok && agok(dd, rows));
        free(a), free(b), free(dd), free(bt), free(c);
    }
}

/* mmi_attn_tile_direct: the softmax backward's GEMM form depends on it. True for the
 * backward's tiles (64 rows, d = 64) with libmm's own kernels, false in an OpenBLAS build, for
 * a reduction past the direct k block (256) and for empty shapes. */
static void test_attn_tile_direct(void)
{
    const int own = strstr(mm_build_info(), "blas=openblas") == NULL;
    CHECK(mmi_attn_tile_direct(64, 64) == own && mmi_attn_tile_direct(1, 1) == own);
    CHECK(mmi_attn_tile_direct(16, 256) == own);
    CHECK(!mmi_attn_tile_direct(64, 257) && !mmi_attn_tile_direct(0, 64));
    CHECK(!mmi_attn_tile_direct(64, 0));
}

static void attn_isa_on(const mmi_attn_isa *v)
{
    static const int64_t ns[] = {1, 7, 8, 16, 17, 33, 64, 70, 100, 131, 136};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        isa_rowmats(v, ns[i]);
        isa_state_step(v, ns[i]);
        isa_elementwise(v, ns[i]);
        isa_relu_ds(v, ns[i]);
        isa_gate_row(v, ns[i]);
        isa_transpose_gate_grad(v, ns[i]);
        isa_gate_grad_rows(v, ns[i]);
        isa_log_gate_copy(v, ns[i]);
        isa_softmax_row(v, ns[i]);
        isa_rwkv_bonus(v, ns[i]);
        isa_linear_rows(v, ns[i]);
        isa_lin_tile(v, ns[i]);
        isa_lin_tile_rs(v, ns[i]);
        isa_exp_rows(v, ns[i]);
        isa_exp_ds_rows(v, ns[i]);
        isa_row_dots(v, ns[i]);
    }
}

static void test_attn_isa_paths(void)
{
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
        mmi_dispatch d;
        if (mmi_dispatch_for((mmi_simd_path)p, &d) && d.attn) attn_isa_on(d.attn);
    }
}

/* The AVX-512 table: present exactly when compiled, and passes the checks above. Skipped (with
 * the reason) where it cannot run. */
static void test_attn_isa_avx512(void)
{
    mmi_dispatch d;
    CHECK((mmi_attn_isa_avx512() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX512));
    if (!mmi_dispatch_for(MMI_SIMD_AVX512, &d)) {
        mmt_skip(mmi_simd_compiled(MMI_SIMD_AVX512)
                     ? "this CPU or OS does not run AVX-512 F/DQ/BW/VL"
                     : "this build did not compile the AVX-512 path");
        return;
    }
    CHECK(d.attn == mmi_attn_isa_avx512());
    attn_isa_on(d.attn);
}

/* elu+1 through the dispatcher (the path MM_SIMD chose, portable included): NaN stays NaN in
 * the feature and its gradient, the edges as the ISA tables above. */
static void test_attn_fmap_edges(void)
{
    const float in[9] = {NAN, -INFINITY, INFINITY, -0.0f, 0.0f, -90.0f, -87.0f, 88.0f, -1.0f};
    float out[9], g[9], dg[9];
    mmi_attn_fmap_fwd(MM_FMAP_ELU1, in, out, 9);
    CHECK(isnan(out[0]) && out[1] == 0.0f && out[2] == INFINITY && out[3] == 1.0f);
    /* below FLT_MIN the SIMD exponentials flush to 0, expf keeps the denormal */
    CHECK(out[4] == 1.0f && out[5] >= 0.0f && out[5] < FLT_MIN && out[7] == 89.0f);
    CHECK_NEAR(out[6], exp(-87.0), 2e-7, 0);
    CHECK_NEAR(out[8], exp(-1.0), 2e-7, 0);
    for (int j = 0; j < 9; j++) g[j] = 2.0f;
    mmi_attn_fmap_bwd(MM_FMAP_ELU1, out, g, dg, 9);
    CHECK(isnan(dg[0]) && dg[1] == 0.0f && dg[2] == 2.0f && dg[4] == 2.0f);
    CHECK(dg[8] == 2.0f * out[8]);
}

void suite_attn(void)
{
    mmt_run("attn_softmax_forward", test_attn_softmax_forward);
    mmt_run("attn_softmax_grad", test_attn_softmax_grad);
    mmt_run("attn_wide", test_attn_wide);
    mmt_run("attn_sparse", test_attn_sparse);
    mmt_run("attn_linear", test_attn_linear);
    mmt_run("attn_linear_chunks", test_attn_linear_chunks);
    mmt_run("attn_linear_inputs_reused", test_attn_linear_inputs_reused);
    mmt_run("attn_gated_inputs_kept", test_attn_gated_inputs_kept);
    mmt_run("attn_linear_fused_map", test_attn_linear_fused_map);
    mmt_run("attn_performer", test_attn_performer);
    mmt_run("attn_performer_projection", test_attn_performer_projection);
    mmt_run("attn_relu2", test_attn_relu2);
    mmt_run("attn_relu2_tiles", test_attn_relu2_tiles);
    mmt_run("attn_relu2_inputs_kept", test_attn_relu2_inputs_kept);
    mmt_run("attn_overlap_refused", test_attn_overlap_refused);
    mmt_run("attn_gated", test_attn_gated);
    mmt_run("attn_gated_strong_repro", test_attn_gated_strong_repro);
    mmt_run("attn_gated_sweep", test_attn_gated_sweep);
    mmt_run("attn_rowmat_sub", test_attn_rowmat_sub);
    mmt_run("attn_ds_tile", test_attn_ds_tile);
    mmt_run("attn_exp_rows", test_attn_exp_rows);
    mmt_run("attn_isa_paths", test_attn_isa_paths);
    mmt_run("attn_tile_direct", test_attn_tile_direct);
    mmt_run("attn_isa_avx512", test_attn_isa_avx512);
    mmt_run("attn_fmap_edges", test_attn_fmap_edges);
    mmt_run("attn_softmax_grad_tiles", test_attn_softmax_grad_tiles);
    mmt_run("attn_softmax_diag_blocks", test_attn_softmax_diag_blocks);
    mmt_run("attn_softmax_saturated_repro", test_attn_softmax_saturated_repro);
    mmt_run("attn_softmax_saturated_sweep", test_attn_softmax_saturated_sweep);
    mmt_run("attn_stream", test_attn_stream);
    mmt_run("attn_misuse", test_attn_misuse);
    mmt_run("attn_no_alloc", test_attn_no_alloc);
    mmt_run("attn_threads", test_attn_threads);
    mmt_run("attn_gated_no_dg", test_attn_gated_no_dg);
    mmt_run("attn_gated_saved_states", test_attn_gated_saved_states);
    mmt_run("attn_torch_vectors", test_attn_torch_vectors);
    mmt_run("attn_model_blocks", test_attn_model_blocks);
}
