/* SPDX-License-Identifier: MIT */
/* test_model.c — mm_model's numbers: forward against a float64 reference written here, and
 * backward (parameters and input) and jvp against central finite differences of that float64
 * reference, for every layer kind alone and for composed models (2-D and 3-D inputs).
 *
 * Tolerances. libmm computes in float32 (GEMM sums, SIMD tanh/sigmoid of about 2 ulp), so its
 * outputs and derivatives carry relative errors of order 1e-6 of the largest value involved.
 * The finite differences run on the float64 reference at the very parameters libmm holds (float
 * values are exact doubles), with step h = 1e-5: truncation error h^2 f''' ~ 1e-10 and rounding
 * 1e-16 / h ~ 1e-11, both far below float32 noise. So each derivative is compared with
 * |libmm - fd| <= 1e-4 * (|fd| + max|fd|): a wrong formula gives O(1) relative errors, float
 * rounding stays 100x below the bound. */
#include "model/mmi_model.h"
#include "runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the float64 reference ------------------------------------------------------------------ */

enum { R_DENSE, R_ACT, R_LN, R_RMS, R_EMB };

typedef struct ref_layer {
    int kind, bias, act, affine;
    int64_t in, out, num, dim, poff;
    double eps;
} ref_layer;

typedef struct ref_model {
    int n;
    ref_layer l[16];
    int64_t in_dim, width, n_params;
} ref_model;

/* y (rows x out) = layer(x (rows x in)) in float64. */
static void ref_layer_fwd(const ref_layer *l, const double *p, const double *x, double *y,
                          int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * l->in;
        double *yr = y + r * l->out;
        if (l->kind == R_DENSE) {
            for (int64_t o = 0; o < l->out; o++) {
                double s = l->bias ? p[l->out * l->in + o] : 0;
                for (int64_t i = 0; i < l->in; i++) s += xr[i] * p[o * l->in + i];
                yr[o] = s;
            }
        } else if (l->kind == R_ACT) {
            for (int64_t i = 0; i < l->in; i++) yr[i] = mmt_act_ref(l->act, xr[i]);
        } else if (l->kind == R_LN || l->kind == R_RMS) {
            double mu = 0, v = 0;
            if (l->kind == R_LN) {
                for (int64_t i = 0; i < l->in; i++) mu += xr[i];
                mu /= (double)l->in;
            }
            for (int64_t i = 0; i < l->in; i++) v += (xr[i] - mu) * (xr[i] - mu);
            v = 1 / sqrt(v / (double)l->in + l->eps);
            for (int64_t i = 0; i < l->in; i++) {
                double h = (xr[i] - mu) * v;
                if (l->affine) h *= p[i];
                if (l->affine && l->kind == R_LN) h += p[l->in + i];
                yr[i] = h;
            }
        } else { /* embedding */
            for (int64_t i = 0; i < l->in; i++)
                for (int64_t j = 0; j < l->dim; j++)
                    yr[i * l->dim + j] = p[(int64_t)xr[i] * l->dim + j];
        }
    }
}

static void ref_forward(const ref_model *rm, const double *p, const double *x, double *y,
                        int64_t rows)
{
    double *a = malloc(sizeof(double) * (size_t)(rows * rm->width));
    double *b = malloc(sizeof(double) * (size_t)(rows * rm->width));
    memcpy(a, x, sizeof(double) * (size_t)(rows * rm->in_dim));
    for (int i = 0; i < rm->n; i++) {
        ref_layer_fwd(&rm->l[i], p + rm->l[i].poff, a, b, rows);
        double *t = a;
        a = b;
        b = t;
    }
    memcpy(y, a, sizeof(double) * (size_t)(rows * rm->l[rm->n - 1].out));
    free(a);
    free(b);
}

/* ---- building a model and its reference side by side ----------------------------------------- */

typedef struct pair {
    mm_model *m;
    ref_model r;
} pair;

static void pair_init(pair *pr, int64_t in_dim, int64_t max_batch, int64_t max_seq, uint64_t seed)
{
    mm_model_opts o;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = in_dim;
    o.max_batch = max_batch;
    o.max_seq = max_seq;
    o.seed = seed;
    CHECK_OK(mm_model_create(&pr->m, &o));
    memset(&pr->r, 0, sizeof pr->r);
    pr->r.in_dim = pr->r.width = in_dim;
}

static ref_layer *pair_push(pair *pr, int kind, int64_t out)
{
    ref_model *r = &pr->r;
    ref_layer *l = &r->l[r->n];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = r->n ? r->l[r->n - 1].out : r->in_dim;
    l->out = out ? out : l->in;
    l->poff = r->n_params;
    if (l->out > r->width) r->width = l->out;
    r->n++;
    return l;
}

static void add_dense(pair *pr, int64_t out, int bias, int init, double gain)
{
    ref_layer *l = pair_push(pr, R_DENSE, out);
    l->bias = bias;
    pr->r.n_params += out * l->in + (bias ? out : 0);
    CHECK_OK(mm_model_add_dense(pr->m, out, bias, init, gain));
}

static void add_act(pair *pr, int k)
{
    pair_push(pr, R_ACT, 0)->act = k;
    CHECK_OK(mm_model_add_activation(pr->m, k));
}

static void add_norm(pair *pr, int ln, double eps, int affine)
{
    ref_layer *l = pair_push(pr, ln ? R_LN : R_RMS, 0);
    l->eps = eps;
    l->affine = affine;
    if (affine) pr->r.n_params += (ln ? 2 : 1) * l->in;
    if (ln)
        CHECK_OK(mm_model_add_layernorm(pr->m, eps, affine));
    else
        CHECK_OK(mm_model_add_rmsnorm(pr->m, eps, affine));
}

static void add_embedding(pair *pr, int64_t num, int64_t dim)
{
    int64_t in = pr->r.n ? pr->r.l[pr->r.n - 1].out : pr->r.in_dim;
    ref_layer *l = pair_push(pr, R_EMB, in * dim);
    l->num = num;
    l->dim = dim;
    pr->r.n_params += num * dim;
    CHECK_OK(mm_model_add_embedding(pr->m, num, dim));
}

/* ---- the checks ----------------------------------------------------------------------------- */

static double dotd(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(a[i]) > s) s = fabs(a[i]);
    return s;
}

/* Compares got (float) with want (double) under the bound in the file comment. */
static int close_all(const float *got, const double *want, int64_t n, const char *what,
                     const char *name)
{
    double scale = max_abs(want, n), worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]), tol = 1e-4 * (fabs(want[i]) + scale) + 1e-7;
        if (err > tol && err - tol > worst) {
            worst = err - tol;
            at = i;
        }
    }
    if (at >= 0)
        mmt_fail(__FILE__, __LINE__, "%s: %s[%lld] = %.9g, reference %.9g", name, what,
                 (long long)at, (double)got[at], want[at]);
    return at < 0;
}

typedef struct gc_opts {
    int64_t batch, seq; /* seq 0: 2-D input [batch, in] */
    int index_input;    /* 1: the input holds embedding indices in [0, num) */
    int64_t num;
} gc_opts;

/* Runs forward, backward (params and input) and jvp of pr against the reference. */
static void gradcheck(pair *pr, const gc_opts *go, const char *name)
{
    const ref_model *r = &pr->r;
    int64_t rows = go->batch * (go->seq ? go->seq : 1), in = r->in_dim;
    int64_t out = r->l[r->n - 1].out, np = r->n_params, nx = rows * in, ny = rows * out;
    int64_t xs[3] = {go->batch, go->seq ? go->seq : in, in}, ys[3] = {go->batch, go->seq, out};
    int32_t nd = go->seq ? 3 : 2;
    float *x = malloc(4 * (size_t)nx), *y = malloc(4 * (size_t)ny), *w = malloc(4 * (size_t)ny);
    float *dx = malloc(4 * (size_t)nx), *jy = malloc(4 * (size_t)ny), *v = malloc(4 * (size_t)np);
    double *pd = malloc(8 * (size_t)np), *xd = malloc(8 * (size_t)nx), *yd = malloc(8 * (size_t)ny);
    double *y2 = malloc(8 * (size_t)ny), *wd = malloc(8 * (size_t)ny), *fd = malloc(8 * (size_t)np);
    double *fdx = malloc(8 * (size_t)nx), *fdj = malloc(8 * (size_t)ny);
    mm_tensor *tx, *ty, *tdy, *tdx, *tv, *tjy;
    float *p, *g;
    const double h = 1e-5;
    if (!go->seq) {
        xs[1] = in;
        ys[1] = out;
    }
    CHECK_OK(mm_model_finalize(pr->m));
    CHECK_OK(mm_model_params(pr->m, &p, NULL));
    CHECK_OK(mm_model_grads(pr->m, &g, NULL));
    for (int64_t i = 0; i < np; i++) pd[i] = p[i];
    mmt_fill_uniform(x, nx, 11, -1.5f, 1.5f);
    if (go->index_input)
        for (int64_t i = 0; i < nx; i++) x[i] = (float)((i * 5 + 3) % go->num);
    for (int64_t i = 0; i < nx; i++) xd[i] = x[i];
    mmt_fill_uniform(w, ny, 12, -1.0f, 1.0f);
    for (int64_t i = 0; i < ny; i++) wd[i] = w[i];
    mmt_fill_uniform(v, np, 13, -1.0f, 1.0f);
    CHECK_OK(mm_tensor_wrap(&tx, x, nd, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, nd, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tdy, w, nd, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tdx, dx, nd, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&tjy, jy, nd, ys, NULL));
    tv = NULL; /* a model without parameters takes v = NULL */
    if (np > 0) CHECK_OK(mm_tensor_wrap(&tv, v, 1, &np, NULL));

    /* forward vs the reference */
    CHECK_OK(mm_model_forward(pr->m, tx, ty));
    ref_forward(r, pd, xd, yd, rows);
    close_all(y, yd, ny, "y", name);

    /* backward of L = sum(w * y): parameter gradients and input gradient */
    CHECK_OK(mm_model_zero_grad(pr->m));
    CHECK_OK(mm_model_backward(pr->m, tdy, tdx));
    for (int64_t j = 0; j < np; j++) {
        double keep = pd[j], lp, lm;
        pd[j] = keep + h;
        ref_forward(r, pd, xd, y2, rows);
        lp = dotd(y2, wd, ny);
        pd[j] = keep - h;
        ref_forward(r, pd, xd, y2, rows);
        lm = dotd(y2, wd, ny);
        pd[j] = keep;
        fd[j] = (lp - lm) / (2 * h);
    }
    close_all(g, fd, np, "dL/dparams", name);
    for (int64_t j = 0; j < nx; j++) {
        double keep = xd[j], lp, lm;
        if (go->index_input) {
            fdx[j] = 0; /* indices have no gradient */
            continue;
        }
        xd[j] = keep + h;
        ref_forward(r, pd, xd, y2, rows);
        lp = dotd(y2, wd, ny);
        xd[j] = keep - h;
        ref_forward(r, pd, xd, y2, rows);
        lm = dotd(y2, wd, ny);
        xd[j] = keep;
        fdx[j] = (lp - lm) / (2 * h);
    }
    close_all(dx, fdx, nx, "dL/dx", name);

    /* backward accumulates: a second call doubles the parameter gradients */
    {
        float *g1 = malloc(4 * (size_t)np);
        memcpy(g1, g, 4 * (size_t)np);
        CHECK_OK(mm_model_backward(pr->m, tdy, NULL));
        for (int64_t j = 0; j < np; j++) CHECK_NEAR(g[j], 2.0f * g1[j], 1e-6, 1e-7);
        free(g1);
    }

    /* jvp along v: central difference of the reference along v */
    CHECK_OK(mm_model_jvp(pr->m, tx, tv, NULL, tjy));
    {
        double *pp = calloc((size_t)np + 1, 8);
        for (int64_t j = 0; j < np; j++) pp[j] = pd[j] + h * v[j];
        ref_forward(r, pp, xd, y2, rows);
        for (int64_t j = 0; j < np; j++) pp[j] = pd[j] - h * v[j];
        ref_forward(r, pp, xd, fdj, rows);
        for (int64_t i = 0; i < ny; i++) fdj[i] = (y2[i] - fdj[i]) / (2 * h);
        free(pp);
    }
    close_all(jy, fdj, ny, "jvp", name);
    /* ... and J v must agree with the gradient: <w, J v> = <dL/dp, v> */
    {
        double a = 0, b = 0;
        CHECK_OK(mm_model_zero_grad(pr->m));
        CHECK_OK(mm_model_backward(pr->m, tdy, NULL)); /* jvp counts as the forward */
        for (int64_t i = 0; i < ny; i++) a += (double)w[i] * jy[i];
        for (int64_t j = 0; j < np; j++) b += (double)g[j] * v[j];
        CHECK_NEAR(a, b, 1e-4, 1e-5);
    }

    mm_tensor_free(tx);
    mm_tensor_free(ty);
    mm_tensor_free(tdy);
    mm_tensor_free(tdx);
    mm_tensor_free(tjy);
    mm_tensor_free(tv);
    mm_model_free(pr->m);
    free(x), free(y), free(w), free(dx), free(jy), free(v), free(pd), free(xd), free(yd);
    free(y2), free(wd), free(fd), free(fdx), free(fdj);
}

static const gc_opts k_2d = {3, 0, 0, 0}, k_3d = {2, 3, 0, 0};

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_dense_grad(void)
{
    pair pr;
    pair_init(&pr, 4, 3, 1, 1);
    add_dense(&pr, 5, 1, MM_INIT_DEFAULT, 1.0);
    gradcheck(&pr, &k_2d, "dense");
    pair_init(&pr, 4, 2, 3, 2);
    add_dense(&pr, 3, 0, MM_INIT_ORTHOGONAL, 1.4142135623730951);
    add_dense(&pr, 2, 1, MM_INIT_ORTHOGONAL, 0.01);
    gradcheck(&pr, &k_3d, "dense no bias, orthogonal, 3-D");
}

/* The weight and bias gradients of one dense layer against float64 sums, for inputs narrower
 * than one vector (dW computed as (x^T dy)^T) and wider, batches in one and in two row blocks
 * of the GEMM (7, 300), on 1 and 2 threads (bitwise equal; 300 x 64 outputs make the bias
 * sums run in column blocks over the pool). Bound: a float32 sum of N products, whatever its
 * order, is within N * 2^-24 * sum |products| of the exact one (plus one rounding of each
 * product, inside the same bound); the bias gradient is the float64 sum over the rows in row
 * order, rounded once to float and added: exactly the sum written here. */
static void test_dense_weight_grad_shapes(void)
{
    static const int64_t ins[] = {4, 15, 16, 33}, batches[] = {7, 300};
    enum { OUT = 128 };
    for (size_t a = 0; a < sizeof ins / sizeof ins[0]; a++)
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            int64_t in = ins[a], rows = batches[b], xs[2] = {rows, in}, ys[2] = {rows, OUT};
            float *x = (float *)malloc(sizeof(float) * (size_t)(rows * in));
            float *y = (float *)malloc(sizeof(float) * (size_t)(rows * OUT));
            float *dy = (float *)malloc(sizeof(float) * (size_t)(rows * OUT));
            float *g1 = (float *)malloc(sizeof(float) * (size_t)(OUT * in + OUT));
            if (!x || !y || !dy || !g1) {
                CHECK(0);
                free(x), free(y), free(dy), free(g1);
                return;
            }
            mmt_fill_uniform(x, rows * in, 31, -1, 1);
            mmt_fill_uniform(dy, rows * OUT, 32, -1, 1);
            for (int32_t threads = 1; threads <= 2; threads++) {
                mm_model_opts o;
                mm_model *m = NULL;
                mm_tensor *tx = NULL, *ty = NULL, *tdy = NULL;
                float *g;
                int64_t n = 0;
                CHECK_OK(mm_model_opts_init(&o));
                o.input_dim = in;
                o.max_batch = rows;
                o.n_threads = threads;
                CHECK_OK(mm_model_create(&m, &o));
                CHECK_OK(mm_model_add_dense(m, OUT, 1, MM_INIT_DEFAULT, 1.0));
                CHECK_OK(mm_model_finalize(m));
                CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
                CHECK_OK(mm_tensor_wrap(&ty, y, 2, ys, NULL));
                CHECK_OK(mm_tensor_wrap(&tdy, dy, 2, ys, NULL));
                CHECK_OK(mm_model_grads(m, &g, &n));
                CHECK_EQ_I64(n, OUT * in + OUT);
                for (int64_t i = 0; i < n; i++) g[i] = 0.25f; /* backward accumulates */
                CHECK_OK(mm_model_forward(m, tx, ty));
                CHECK_OK(mm_model_backward(m, tdy, NULL));
                for (int64_t j = 0; j < OUT; j++) {
                    double sb = 0.0;
                    for (int64_t i = 0; i < in; i++) {
                        double s = 0.25, mag = 0.25;
                        for (int64_t r = 0; r < rows; r++) {
                            s += (double)dy[r * OUT + j] * x[r * in + i];
                            mag += fabs((double)dy[r * OUT + j] * x[r * in + i]);
                        }
                        CHECK(fabs(g[j * in + i] - s) <= (double)(rows + 1) * 0x1p-24 * mag);
                    }
                    for (int64_t r = 0; r < rows; r++) sb += dy[r * OUT + j];
                    CHECK(g[OUT * in + j] == 0.25f + (float)sb); /* same float64 order */
                }
                if (threads == 1)
                    memcpy(g1, g, sizeof(float) * (size_t)n);
                else
                    CHECK(memcmp(g1, g, sizeof(float) * (size_t)n) == 0);
                mm_tensor_free(tx);
                mm_tensor_free(ty);
                mm_tensor_free(tdy);
                mm_model_free(m);
            }
            free(x), free(y), free(dy), free(g1);
        }
}

static void test_activation_grad(void)
{
    static const char *names[] = {"",     "relu", "tanh",     "sigmoid", "gelu",
                                  "silu", "elu",  "softplus", "relu2"};
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        pair pr;
        pair_init(&pr, 3, 3, 1, (uint64_t)k);
        add_dense(&pr, 6, 1, MM_INIT_ORTHOGONAL, 2.0); /* pre-activations of order 1-3 */
        add_act(&pr, k);
        gradcheck(&pr, &k_2d, names[k]);
    }
}

static void test_activation_alone(void)
{
    /* A model without parameters: backward gives only dx; jvp is zero with v NULL. */
    pair pr;
    mm_tensor *tx, *ty, *tjy;
    float x[6] = {-2, -0.5f, 0.25f, 1, 3, -4}, y[6], jy[6];
    int64_t s[2] = {2, 3};
    pair_init(&pr, 3, 3, 1, 0);
    add_act(&pr, MM_ACT_TANH);
    gradcheck(&pr, &k_2d, "tanh alone");
    pair_init(&pr, 3, 2, 1, 0);
    add_act(&pr, MM_ACT_SIGMOID);
    CHECK_OK(mm_model_finalize(pr.m));
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, s, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, 2, s, NULL));
    CHECK_OK(mm_tensor_wrap(&tjy, jy, 2, s, NULL));
    CHECK_OK(mm_model_jvp(pr.m, tx, NULL, ty, tjy));
    for (int i = 0; i < 6; i++) {
        CHECK(jy[i] == 0.0f);
        CHECK_NEAR(y[i], 1 / (1 + exp(-x[i])), 1e-6, 1e-7);
    }
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    mm_tensor_free(tjy);
    mm_model_free(pr.m);
}

static void test_norm_grad(void)
{
    pair pr;
    pair_init(&pr, 4, 3, 1, 3);
    add_dense(&pr, 6, 1, MM_INIT_DEFAULT, 1.0);
    add_norm(&pr, 1, 1e-5, 1);
    add_dense(&pr, 2, 1, MM_INIT_DEFAULT, 1.0); /* non-trivial weight/bias gradients */
    gradcheck(&pr, &k_2d, "layernorm affine");
    pair_init(&pr, 5, 2, 3, 4);
    add_norm(&pr, 1, 1e-3, 0);
    gradcheck(&pr, &k_3d, "layernorm plain, first layer, 3-D");
    pair_init(&pr, 4, 3, 1, 5);
    add_dense(&pr, 6, 1, MM_INIT_DEFAULT, 1.0);
    add_norm(&pr, 0, 1e-6, 1);
    add_dense(&pr, 3, 0, MM_INIT_DEFAULT, 1.0);
    gradcheck(&pr, &k_2d, "rmsnorm affine");
    pair_init(&pr, 5, 2, 3, 6);
    add_norm(&pr, 0, 1.1920929e-07, 0);
    gradcheck(&pr, &k_3d, "rmsnorm plain, 3-D");
}

static void test_embedding_grad(void)
{
    pair pr;
    gc_opts go = {3, 0, 1, 7};
    pair_init(&pr, 1, 3, 1, 7);
    add_embedding(&pr, 7, 4);
    add_dense(&pr, 3, 1, MM_INIT_DEFAULT, 1.0);
    gradcheck(&pr, &go, "embedding [B,1]");
    go.seq = 4;
    go.batch = 2;
    pair_init(&pr, 2, 2, 4, 8);
    add_embedding(&pr, 5, 3); /* two index columns: [B, T, 2] -> [B, T, 6] */
    add_norm(&pr, 1, 1e-5, 1);
    add_act(&pr, MM_ACT_GELU);
    go.num = 5;
    gradcheck(&pr, &go, "embedding [B,T,2]");
}

static void test_composed_grad(void)
{
    pair pr;
    pair_init(&pr, 5, 2, 3, 42);
    add_dense(&pr, 8, 1, MM_INIT_ORTHOGONAL, 1.4142135623730951);
    add_norm(&pr, 1, 1e-5, 1);
    add_act(&pr, MM_ACT_GELU);
    add_dense(&pr, 7, 1, MM_INIT_DEFAULT, 1.0);
    add_norm(&pr, 0, 1e-6, 1);
    add_act(&pr, MM_ACT_SILU);
    add_dense(&pr, 6, 0, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_TANH);
    add_dense(&pr, 3, 1, MM_INIT_ORTHOGONAL, 0.01);
    gradcheck(&pr, &k_3d, "composed 3-D");
    pair_init(&pr, 4, 3, 1, 43);
    add_dense(&pr, 16, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_ELU);
    add_dense(&pr, 16, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_SOFTPLUS);
    add_dense(&pr, 9, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_RELU2);
    add_dense(&pr, 2, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_SIGMOID);
    gradcheck(&pr, &k_2d, "composed 2-D");
}

/* A larger MLP (GEMM's packed paths) forward against the reference, batch 64. */
static void test_mlp_forward_large(void)
{
    pair pr;
    int64_t B = mmt_quick() ? 8 : 64, in = 17, out = 5, xs[2], ys[2];
    float *x, *y, *p;
    double *xd, *yd, *pd;
    mm_tensor *tx, *ty;
    pair_init(&pr, in, B, 1, 9);
    add_dense(&pr, 96, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_TANH);
    add_dense(&pr, 80, 1, MM_INIT_DEFAULT, 1.0);
    add_act(&pr, MM_ACT_RELU);
    add_dense(&pr, out, 1, MM_INIT_DEFAULT, 1.0);
    CHECK_OK(mm_model_finalize(pr.m));
    xs[0] = ys[0] = B;
    xs[1] = in;
    ys[1] = out;
    x = malloc(4 * (size_t)(B * in));
    y = malloc(4 * (size_t)(B * out));
    xd = malloc(8 * (size_t)(B * in));
    yd = malloc(8 * (size_t)(B * out));
    pd = malloc(8 * (size_t)pr.r.n_params);
    mmt_fill_uniform(x, B * in, 3, -2, 2);
    for (int64_t i = 0; i < B * in; i++) xd[i] = x[i];
    CHECK_OK(mm_model_params(pr.m, &p, NULL));
    for (int64_t i = 0; i < pr.r.n_params; i++) pd[i] = p[i];
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, 2, ys, NULL));
    CHECK_OK(mm_model_forward(pr.m, tx, ty));
    ref_forward(&pr.r, pd, xd, yd, B);
    close_all(y, yd, B * out, "y", "mlp 17-96-80-5");
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    mm_model_free(pr.m);
    free(x), free(y), free(xd), free(yd), free(pd);
}

/* One observation (batch 1: the one-row NT GEMM, the gemv path on AVX-512) through
 * 3-256-256-1 tanh (a game's policy) and 400-3000-2 tanh (wide enough that two threads split
 * the first GEMM), against the float64 reference; mm_model_infer gives forward's bits, and a
 * model with 2 threads gives the bits of the one with 1. */
static void test_forward_one_obs(void)
{
    static const int64_t dims[2][4] = {{3, 256, 256, 1}, {400, 3000, 0, 2}};
    for (int c = 0; c < 2; c++) {
        const int64_t *d = dims[c], in = d[0], out = d[3], xs[2] = {1, in}, ys[2] = {1, out};
        pair pr;
        mm_model_opts o;
        mm_model *m2 = NULL;
        mm_tensor *tx = NULL, *ty = NULL, *t2 = NULL;
        float x[400], y[2], y2[2], *p1, *p2, *ws = NULL;
        double xd[400], yd[2], *pd;
        int64_t np = 0;
        size_t wsz = 0;
        pair_init(&pr, in, 1, 1, 31 + (uint64_t)c);
        CHECK_OK(mm_model_opts_init(&o));
        o.input_dim = in, o.n_threads = 2;
        CHECK_OK(mm_model_create(&m2, &o));
        for (int i = 1; i < 4; i++) {
            if (!d[i]) continue;
            add_dense(&pr, d[i], 1, MM_INIT_DEFAULT, 1.0);
            CHECK_OK(mm_model_add_dense(m2, d[i], 1, MM_INIT_DEFAULT, 1.0));
            if (i == 3) break;
            add_act(&pr, MM_ACT_TANH);
            CHECK_OK(mm_model_add_activation(m2, MM_ACT_TANH));
        }
        CHECK_OK(mm_model_finalize(pr.m));
        CHECK_OK(mm_model_finalize(m2));
        CHECK_OK(mm_model_params(pr.m, &p1, &np));
        CHECK_OK(mm_model_params(m2, &p2, NULL));
        pd = malloc(sizeof(double) * (size_t)np);
        CHECK(pd != NULL && np == pr.r.n_params);
        if (!pd) goto next;
        memcpy(p2, p1, sizeof(float) * (size_t)np);
        for (int64_t i = 0; i < np; i++) pd[i] = p1[i];
        mmt_fill_uniform(x, in, 40 + (uint64_t)c, -2, 2);
        for (int64_t i = 0; i < in; i++) xd[i] = x[i];
        CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
        CHECK_OK(mm_tensor_wrap(&ty, y, 2, ys, NULL));
        CHECK_OK(mm_tensor_wrap(&t2, y2, 2, ys, NULL));
        CHECK_OK(mm_model_forward(pr.m, tx, ty));
        ref_forward(&pr.r, pd, xd, yd, 1);
        close_all(y, yd, out, "y", c ? "400-3000-2 batch 1" : "3-256-256-1 batch 1");
        CHECK_OK(mm_model_forward(m2, tx, t2));
        CHECK(memcmp(y, y2, sizeof(float) * (size_t)out) == 0);
        CHECK_OK(mm_model_infer_workspace_size(pr.m, 1, 1, &wsz));
        ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
        CHECK(ws != NULL);
        if (ws) {
            memset(y2, 0, sizeof y2);
            CHECK_OK(mm_model_infer(pr.m, tx, t2, ws, wsz));
            CHECK(memcmp(y, y2, sizeof(float) * (size_t)out) == 0);
        }
    next:
        free(ws), free(pd);
        mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(t2);
        mm_model_free(pr.m);
        mm_model_free(m2);
    }
}

/* An MLP of every fused kind (dense + relu / tanh / gelu / relu2) with n_threads threads. */
static mm_model *fused_mlp(int64_t in, int64_t B, int32_t n_threads)
{
    static const int32_t acts[4] = {MM_ACT_RELU, MM_ACT_TANH, MM_ACT_GELU, MM_ACT_RELU2};
    static const int64_t widths[4] = {300, 260, 40, 24};
    mm_model_opts o;
    mm_model *m = NULL;
    int ok = mm_model_opts_init(&o) == MM_OK;
    o.input_dim = in, o.max_batch = B, o.n_threads = n_threads, o.seed = 5;
    ok = ok && mm_model_create(&m, &o) == MM_OK;
    for (int i = 0; ok && i < 4; i++)
        ok = mm_model_add_dense(m, widths[i], 1, MM_INIT_DEFAULT, 1.0) == MM_OK &&
             mm_model_add_activation(m, acts[i]) == MM_OK;
    ok = ok && mm_model_add_dense(m, 3, 1, MM_INIT_DEFAULT, 1.0) == MM_OK &&
         mm_model_finalize(m) == MM_OK;
    CHECK(ok);
    return m;
}

/* The dense layers run their bias, the activation above and the activation below's backward
 * in GEMM epilogues. The fused forward is bitwise the layer-by-layer one (jvp mode runs the
 * layers one by one) and mm_model_infer's (activations in place), and the fused forward and
 * backward are bitwise the same on 1 and 2 threads at sizes that split the GEMMs. (The fused
 * backward against float64 is model_activation_grad's and model_composed_grad's gradcheck.) */
static void test_fused_epilogue(void)
{
    int64_t B = 200, in = 7, xs[2] = {B, in}, ys[2] = {B, 3}, np = 0;
    mm_model *m1 = fused_mlp(in, B, 1), *m2 = fused_mlp(in, B, 2);
    mm_tensor *tx = NULL, *ty = NULL, *tj = NULL, *tdy = NULL, *tdx = NULL, *tv = NULL;
    float *x = malloc(4 * (size_t)(B * in)), *y1 = malloc(4 * (size_t)(B * 3));
    float *y2 = malloc(4 * (size_t)(B * 3)), *dy = malloc(4 * (size_t)(B * 3));
    float *dx1 = malloc(4 * (size_t)(B * in)), *dx2 = malloc(4 * (size_t)(B * in));
    float *p1, *p2, *g1, *g2, *v, *ws = NULL;
    size_t wsz = 0;
    if (!m1 || !m2 || !x || !y1 || !y2 || !dy || !dx1 || !dx2) goto done;
    mmt_fill_uniform(x, B * in, 21, -2, 2);
    mmt_fill_uniform(dy, B * 3, 22, -1, 1);
    CHECK_OK(mm_model_params(m1, &p1, &np));
    CHECK_OK(mm_model_params(m2, &p2, NULL));
    memcpy(p2, p1, 4 * (size_t)np);
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y1, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tj, y2, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tdy, dy, 2, ys, NULL));
    CHECK_OK(mm_tensor_create(&tv, 1, &np, NULL));
    if (!tv) goto done;
    v = mm_tensor_data(tv);
    memset(v, 0, 4 * (size_t)np);
    /* layer by layer (jvp mode) against fused */
    CHECK_OK(mm_model_jvp(m2, tx, tv, tj, ty)); /* y (unfused) into y2, jy into y1 */
    CHECK_OK(mm_model_forward(m1, tx, ty));
    CHECK(memcmp(y1, y2, 4 * (size_t)(B * 3)) == 0);
    /* infer (activations in place) against forward */
    CHECK_OK(mm_model_infer_workspace_size(m1, B, 1, &wsz));
    ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
    CHECK(ws != NULL);
    if (ws) {
        CHECK_OK(mm_model_infer(m1, tx, tj, ws, wsz));
        CHECK(memcmp(y1, y2, 4 * (size_t)(B * 3)) == 0);
    }
    /* 1 thread against 2: forward, dx and every parameter gradient */
    CHECK_OK(mm_model_forward(m2, tx, tj));
    CHECK(memcmp(y1, y2, 4 * (size_t)(B * 3)) == 0);
    CHECK_OK(mm_tensor_wrap(&tdx, dx1, 2, xs, NULL));
    CHECK_OK(mm_model_zero_grad(m1));
    CHECK_OK(mm_model_backward(m1, tdy, tdx));
    mm_tensor_free(tdx);
    CHECK_OK(mm_tensor_wrap(&tdx, dx2, 2, xs, NULL));
    CHECK_OK(mm_model_zero_grad(m2));
    CHECK_OK(mm_model_backward(m2, tdy, tdx));
    CHECK(memcmp(dx1, dx2, 4 * (size_t)(B * in)) == 0);
    CHECK_OK(mm_model_grads(m1, &g1, NULL));
    CHECK_OK(mm_model_grads(m2, &g2, NULL));
    CHECK(memcmp(g1, g2, 4 * (size_t)np) == 0);
done:
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tj), mm_tensor_free(tdy);
    mm_tensor_free(tdx), mm_tensor_free(tv);
    mm_model_free(m1), mm_model_free(m2);
    free(x), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(ws);
}

void suite_model(void)
{
    mmt_run("model_dense_grad", test_dense_grad);
    mmt_run("model_dense_weight_grad_shapes", test_dense_weight_grad_shapes);
    mmt_run("model_fused_epilogue", test_fused_epilogue);
    mmt_run("model_activation_grad", test_activation_grad);
    mmt_run("model_activation_alone", test_activation_alone);
    mmt_run("model_norm_grad", test_norm_grad);
    mmt_run("model_embedding_grad", test_embedding_grad);
    mmt_run("model_composed_grad", test_composed_grad);
    mmt_run("model_mlp_forward_large", test_mlp_forward_large);
    mmt_run("model_forward_one_obs", test_forward_one_obs);
}
