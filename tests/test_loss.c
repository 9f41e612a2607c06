/* SPDX-License-Identifier: MIT */
/* test_loss.c — mm_loss: every kind and helper against a naive float64 reference written here,
 * float64 finite differences of those references for every gradient (t, b and temp included),
 * tiled against untiled at batches that are not tile multiples, PyTorch-generated vectors
 * (tests/vectors/loss_vectors.h), misuse, threads, the AVX2 and AVX-512 tile loops against the
 * portable ones and every path's tile loops against float64 at every tail length (the AVX-512
 * checks report a skip on a CPU without it), and the memory contract (no allocation in compute
 * calls, everything freed, OOM). */
#include "kernels/loss/mmi_loss_kernels.h"
#include "runner.h"
#include "vectors/loss_vectors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small utilities ------------------------------------------------------------------------ */
static mm_loss *make(int32_t kind, int64_t max_batch, int64_t max_dim, int64_t tile,
                     int32_t threads)
{
    mm_loss_opts o;
    mm_loss *h = NULL;
    CHECK_OK(mm_loss_opts_init(&o, kind));
    o.max_batch = max_batch;
    o.max_dim = max_dim;
    o.tile = tile;
    o.n_threads = threads;
    o.max_queue = 64;
    CHECK_OK(mm_loss_create(&h, &o));
    return h;
}

static mm_tensor *wrap(float *data, int32_t ndim, int64_t a, int64_t b, int64_t c)
{
    int64_t shape[3] = {a, b, c};
    mm_tensor *t = NULL;
    CHECK_OK(mm_tensor_wrap(&t, data, ndim, shape, NULL));
    return t;
}

static float *fvec(int64_t n) { return (float *)calloc((size_t)n, sizeof(float)); }
static double *dvec(int64_t n) { return (double *)calloc((size_t)n, sizeof(double)); }

static void to_f64(const float *x, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = (double)x[i];
}

/* Random rows, optionally L2-normalised (in float32, like a model's output). */
static void rand_rows(float *x, int64_t n, int64_t d, uint64_t seed, int normalise)
{
    mmt_fill_uniform(x, n * d, seed, -1.0f, 1.0f);
    if (!normalise) return;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / sqrt(s));
    }
}

/* |got - want| <= rtol |want| + atol_frac * max|want| for every element (first miss reported). */
static void check_vec(const float *got, const double *want, int64_t n, double rtol,
                      double atol_frac)
{
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (int64_t i = 0; i < n; i++)
        if (!mmt_near(got[i], want[i], rtol, atol_frac * mx + 1e-30)) {
            CHECK_NEAR(got[i], want[i], rtol, atol_frac * mx);
            return;
        }
}

/* ---- float64 references ------------------------------------------------------------------- */
static double dot(const double *a, const double *b, int64_t d)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += a[k] * b[k];
    return s;
}

/* CLIP: returns the loss; dx, dy (may be NULL), dt. */
static double ref_clip(const double *x, const double *y, int64_t n, int64_t d, double t, double *dx,
                       double *dy, double *dt)
{
    double s = exp(t), loss = 0, *z = dvec(n * n), *lr = dvec(n), *lc = dvec(n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) z[i * n + j] = s * dot(x + i * d, y + j * d, d);
    for (int64_t i = 0; i < n; i++) {
        double mr = -INFINITY, mc = -INFINITY, sr = 0, sc = 0;
        for (int64_t j = 0; j < n; j++) {
            mr = fmax(mr, z[i * n + j]);
            mc = fmax(mc, z[j * n + i]);
        }
        for (int64_t j = 0; j < n; j++) {
            sr += exp(z[i * n + j] - mr);
            sc += exp(z[j * n + i] - mc);
        }
        lr[i] = mr + log(sr);
        lc[i] = mc + log(sc);
        loss += (lr[i] + lc[i] - 2 * z[i * n + i]) / (2.0 * n);
    }
    if (dx) memset(dx, 0, sizeof(double) * (size_t)(n * d));
    if (dy) memset(dy, 0, sizeof(double) * (size_t)(n * d));
    *dt = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double g = (exp(z[i * n + j] - lr[i]) + exp(z[i * n + j] - lc[j]) - 2.0 * (i == j)) /
                       (2.0 * n);
            *dt += g * z[i * n + j];
            for (int64_t k = 0; k < d; k++) {
                if (dx) dx[i * d + k] += s * g * y[j * d + k];
                if (dy) dy[j * d + k] += s * g * x[i * d + k];
            }
        }
    free(z);
    free(lr);
    free(lc);
    return loss;
}

static double softplus(double v) { return fmax(v, 0) + log1p(exp(-fabs(v))); }
static double sigmoid(double v) { return v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)); }

static double ref_siglip(const double *x, const double *y, int64_t n, int64_t d, double t, double b,
                         double *dx, double *dy, double *dt, double *db)
{
    double s = exp(t), loss = 0;
    if (dx) memset(dx, 0, sizeof(double) * (size_t)(n * d));
    if (dy) memset(dy, 0, sizeof(double) * (size_t)(n * d));
    *dt = *db = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double raw = s * dot(x + i * d, y + j * d, d), z = raw + b, lab = i == j ? 1 : -1;
            double g = (sigmoid(z) - (i == j)) / n;
            loss += softplus(-lab * z) / n;
            *dt += g * raw;
            *db += g;
            for (int64_t k = 0; k < d; k++) {
                if (dx) dx[i * d + k] += s * g * y[j * d + k];
                if (dy) dy[j * d + k] += s * g * x[i * d + k];
            }
        }
    return loss;
}

/* Column c of ITC's column set: kb rows then kq rows. */
static const double *itc_col(const double *kb, const double *kq, int64_t n, int64_t d, int64_t c)
{
    return c < n ? kb + c * d : kq + (c - n) * d;
}

/* One ITC direction: mean over rows; dq += scale * dLoss/dq; *dtemp += scale * dLoss/dtemp.
 * The targets use temp_m: BLIP computes them under no_grad, so a finite difference in temp
 * must hold them fixed. */
static double ref_itc_dir(const double *q, const double *qm, const double *kb, const double *kq,
                          int64_t n, int64_t nq, int64_t d, double temp, double temp_m,
                          double alpha, double scale, double *dq, double *dtemp)
{
    int64_t m = n + nq;
    double loss = 0, *s = dvec(m), *sm = dvec(m);
    for (int64_t i = 0; i < n; i++) {
        double ms = -INFINITY, mm = -INFINITY, ls = 0, lm = 0;
        for (int64_t c = 0; c < m; c++) {
            s[c] = dot(q + i * d, itc_col(kb, kq, n, d, c), d) / temp;
            sm[c] = dot(qm + i * d, itc_col(kb, kq, n, d, c), d) / temp_m;
            ms = fmax(ms, s[c]);
            mm = fmax(mm, sm[c]);
        }
        for (int64_t c = 0; c < m; c++) {
            ls += exp(s[c] - ms);
            lm += exp(sm[c] - mm);
        }
        for (int64_t c = 0; c < m; c++) {
            double p = exp(s[c] - ms) / ls;
            double tg = alpha * exp(sm[c] - mm) / lm + (1 - alpha) * (c == i);
            double g = (p - tg) / n;
            loss -= tg * log(p) / n;
            *dtemp += scale * g * (-s[c] / temp);
            if (dq)
                for (int64_t k = 0; k < d; k++)
                    dq[i * d + k] += scale * g * itc_col(kb, kq, n, d, c)[k] / temp;
        }
    }
    free(s);
    free(sm);
    return loss;
}

static double ref_itc(double *const *f, const double *qi, const double *qt, int64_t n, int64_t nq,
                      int64_t d, double temp, double temp_m, double alpha, double *di, double *dtx,
                      double *dtemp)
{
    double l;
    if (di) memset(di, 0, sizeof(double) * (size_t)(n * d));
    if (dtx) memset(dtx, 0, sizeof(double) * (size_t)(n * d));
    *dtemp = 0;
    l = ref_itc_dir(f[0], f[2], f[3], qt, n, nq, d, temp, temp_m, alpha, 0.5, di, dtemp);
    l += ref_itc_dir(f[1], f[3], f[2], qi, n, nq, d, temp, temp_m, alpha, 0.5, dtx, dtemp);
    return 0.5 * l;
}

static double ref_ce(const double *z, const int32_t *t, int64_t n, int64_t c, double eps,
                     int32_t ignore, double *dz)
{
    double loss = 0;
    int64_t valid = 0;
    for (int64_t i = 0; i < n; i++) valid += t[i] != ignore;
    for (int64_t i = 0; i < n; i++) {
        double m = -INFINITY, s = 0, lse;
        if (t[i] == ignore) {
            if (dz)
                for (int64_t j = 0; j < c; j++) dz[i * c + j] = 0;
            continue;
        }
        for (int64_t j = 0; j < c; j++) m = fmax(m, z[i * c + j]);
        for (int64_t j = 0; j < c; j++) s += exp(z[i * c + j] - m);
        lse = m + log(s);
        for (int64_t j = 0; j < c; j++) {
            double q = (1 - eps) * (j == t[i]) + eps / c;
            loss += q * (lse - z[i * c + j]) / valid;
            if (dz) dz[i * c + j] = (exp(z[i * c + j] - lse) - q) / valid;
        }
    }
    return loss;
}

static double ref_bce(const double *z, const double *y, int64_t n, int64_t c, double *dz)
{
    double loss = 0;
    for (int64_t i = 0; i < n * c; i++) {
        loss += (softplus(z[i]) - y[i] * z[i]) / n;
        if (dz) dz[i] = (sigmoid(z[i]) - y[i]) / n;
    }
    return loss;
}

static double ref_kimi(const double *lp, const double *lpo, const double *r, int64_t n, int64_t k,
                       double tau, int mode, double *dlp)
{
    double loss = 0;
    for (int64_t g = 0; g < n; g += k) {
        double rb = 0;
        for (int64_t j = g; j < g + k; j++) rb += mode ? exp(r[j] / tau) / k : r[j] / k;
        if (mode) rb = tau * log(rb);
        for (int64_t j = g; j < g + k; j++) {
            double e = r[j] - rb - tau * (lp[j] - lpo[j]);
            loss += e * e / n;
            if (dlp) dlp[j] = -2 * tau * e / n;
        }
    }
    return loss;
}

/* sum_ij w_ij x_ij with x = normalise(u): a scalar to differentiate the normalisation. */
static double ref_l2_dot(const double *u, const double *w, int64_t n, int64_t d, double eps,
                         int mode)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double nr = sqrt(dot(u + i * d, u + i * d, d));
        double den = mode ? nr + eps : fmax(nr, eps);
        s += dot(u + i * d, w + i * d, d) / den;
    }
    return s;
}

/* ---- finite differences ------------------------------------------------------------------- */
typedef double (*scalar_fn)(void *ctx);

/* d fn / d v[idx] by central differences in float64. */
static double fd(scalar_fn fn, void *ctx, double *v, double h)
{
    double v0 = *v, a, b;
    *v = v0 + h;
    a = fn(ctx);
    *v = v0 - h;
    b = fn(ctx);
    *v = v0;
    return (a - b) / (2 * h);
}

/* Checks `got` (library gradient, float) against finite differences at a spread of indices. */
static void check_fd(scalar_fn fn, void *ctx, double *v, int64_t n, const float *got, double gscale)
{
    int64_t step = n > 24 ? n / 24 : 1;
    for (int64_t i = 0; i < n; i += step) {
        double want = fd(fn, ctx, v + i, 1e-6);
        CHECK_NEAR(got[i], want, 1e-3, 1e-5 * gscale + 1e-9);
    }
}

static double max_abs(const float *g, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(g[i]) > m ? fabs(g[i]) : m;
    return m;
}

/* ---- CLIP ----------------------------------------------------------------------------------- */
typedef struct pair_ctx {
    double *x, *y, t, b;
    int64_t n, d;
    int siglip;
} pair_ctx;

static double pair_loss(void *c)
{
    pair_ctx *p = (pair_ctx *)c;
    double dt, db;
    if (p->siglip) return ref_siglip(p->x, p->y, p->n, p->d, p->t, p->b, NULL, NULL, &dt, &db);
    return ref_clip(p->x, p->y, p->n, p->d, p->t, NULL, NULL, &dt);
}

/* Runs CLIP or SigLIP through libmm and checks loss, dx, dy, dt (and db) against the
 * reference and finite differences. */
static void pair_case(int siglip, int64_t n, int64_t d, int64_t tile, double t, double b,
                      int normalise, uint64_t seed)
{
    mm_loss *h = make(siglip ? MM_LOSS_SIGLIP : MM_LOSS_CLIP, n, d, tile, 1);
    float *x = fvec(n * d), *y = fvec(n * d), *dx = fvec(n * d), *dy = fvec(n * d);
    double *xd = dvec(n * d), *yd = dvec(n * d), *rdx = dvec(n * d), *rdy = dvec(n * d);
    double loss = 0, want, rdt, rdb = 0, got;
    mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0);
    mm_tensor *tdx = wrap(dx, 2, n, d, 0), *tdy = wrap(dy, 2, n, d, 0);
    pair_ctx ctx = {xd, yd, t, b, n, d, siglip};
    rand_rows(x, n, d, seed, normalise);
    rand_rows(y, n, d, seed + 1, normalise);
    to_f64(x, xd, n * d);
    to_f64(y, yd, n * d);
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, t));
    if (siglip) {
        CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_BIAS, b));
        CHECK_OK(mm_loss_siglip(h, tx, ty, &loss, tdx, tdy));
        want = ref_siglip(xd, yd, n, d, t, b, rdx, rdy, &rdt, &rdb);
        CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_BIAS, &got));
        CHECK_NEAR(got, rdb, 1e-5, 1e-7);
        ctx.b += 0; /* b's finite difference: */
        CHECK_NEAR(got, fd(pair_loss, &ctx, &ctx.b, 1e-6), 1e-5, 1e-7);
    } else {
        CHECK_OK(mm_loss_clip(h, tx, ty, &loss, tdx, tdy));
        want = ref_clip(xd, yd, n, d, t, rdx, rdy, &rdt);
    }
    CHECK_NEAR(loss, want, 1e-5, 1e-7);
    check_vec(dx, rdx, n * d, 1e-4, 1e-5);
    check_vec(dy, rdy, n * d, 1e-4, 1e-5);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &got));
    CHECK_NEAR(got, rdt, 1e-4, 1e-6);
    CHECK_NEAR(got, fd(pair_loss, &ctx, &ctx.t, 1e-6), 1e-4, 1e-6);
    check_fd(pair_loss, &ctx, xd, n * d, dx, max_abs(dx, n * d));
    check_fd(pair_loss, &ctx, yd, n * d, dy, max_abs(dy, n * d));
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tdx), mm_tensor_free(tdy);
    free(x), free(y), free(dx), free(dy), free(xd), free(yd), free(rdx), free(rdy);
    mm_loss_free(h);
}

static void test_clip_reference(void)
{
    pair_case(0, 37, 19, 8, log(1 / 0.07), 0, 1, 11); /* 37 = 4 tiles of 8 + 5 */
    pair_case(0, 21, 7, 16, log(100.0), 0, 1, 12);    /* s = 100: the max shift matters */
    pair_case(0, 9, 5, 8, 0.3, 0, 0, 13);             /* raw features */
    pair_case(0, 1, 3, 8, 1.0, 0, 1, 14);             /* a single pair: loss 0 */
}

static void test_siglip_reference(void)
{
    pair_case(1, 37, 19, 8, log(10.0), -10.0, 1, 21);
    pair_case(1, 23, 6, 16, log(100.0), -2.71, 1, 22);
    pair_case(1, 9, 5, 8, 0.5, 3.0, 0, 23);
    pair_case(1, 1, 4, 8, 1.0, -1.0, 1, 24);
}

/* The same batch with tile 64 (B not a multiple) and untiled (tile = B): equal to 1e-5. */
static void tiled_vs_untiled(int siglip)
{
    int64_t n = mmt_quick() ? 150 : 300, d = 64;
    mm_loss *a = make(siglip ? MM_LOSS_SIGLIP : MM_LOSS_CLIP, n, d, 64, 1);
    mm_loss *b = make(siglip ? MM_LOSS_SIGLIP : MM_LOSS_CLIP, n, d, n, 1);
    float *x = fvec(n * d), *y = fvec(n * d), *g[4];
    mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0), *tg[4];
    double la, lb, ta, tb;
    for (int i = 0; i < 4; i++) tg[i] = wrap(g[i] = fvec(n * d), 2, n, d, 0);
    rand_rows(x, n, d, 31, 1);
    rand_rows(y, n, d, 32, 1);
    for (int64_t i = 0; i < n * d; i++) y[i] = 0.7f * y[i] + 0.3f * x[i]; /* some alignment */
    if (siglip) {
        CHECK_OK(mm_loss_siglip(a, tx, ty, &la, tg[0], tg[1]));
        CHECK_OK(mm_loss_siglip(b, tx, ty, &lb, tg[2], tg[3]));
    } else {
        CHECK_OK(mm_loss_clip(a, tx, ty, &la, tg[0], tg[1]));
        CHECK_OK(mm_loss_clip(b, tx, ty, &lb, tg[2], tg[3]));
    }
    CHECK_NEAR(la, lb, 1e-5, 0);
    CHECK_OK(mm_loss_get_f64(a, MM_LOSS_STAT_DLOGIT_SCALE, &ta));
    CHECK_OK(mm_loss_get_f64(b, MM_LOSS_STAT_DLOGIT_SCALE, &tb));
    CHECK_NEAR(ta, tb, 1e-5, 1e-9);
    for (int k = 0; k < 2; k++) {
        double mx = max_abs(g[k + 2], n * d);
        for (int64_t i = 0; i < n * d; i++)
            if (!mmt_near(g[k][i], g[k + 2][i], 1e-5, 1e-5 * mx)) {
                CHECK_NEAR(g[k][i], g[k + 2][i], 1e-5, 1e-5 * mx);
                break;
            }
    }
    for (int i = 0; i < 4; i++) mm_tensor_free(tg[i]), free(g[i]);
    mm_tensor_free(tx), mm_tensor_free(ty), free(x), free(y);
    mm_loss_free(a), mm_loss_free(b);
}

static void test_tiled_vs_untiled(void)
{
    tiled_vs_untiled(0);
    tiled_vs_untiled(1);
}

/* LiT: dx NULL gives the same dy; loss only gives the same loss and scalar gradients. */
static void test_pair_partial_grads(void)
{
    int64_t n = 40, d = 12;
    for (int siglip = 0; siglip < 2; siglip++) {
        mm_loss *h = make(siglip ? MM_LOSS_SIGLIP : MM_LOSS_CLIP, n, d, 16, 1);
        float *x = fvec(n * d), *y = fvec(n * d), *dy1 = fvec(n * d), *dy2 = fvec(n * d);
        float *dx = fvec(n * d);
        mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0);
        mm_tensor *t1 = wrap(dy1, 2, n, d, 0), *t2 = wrap(dy2, 2, n, d, 0);
        mm_tensor *tdx = wrap(dx, 2, n, d, 0);
        double l1, l2, l3, s1, s2, s3;
        int (*f)(mm_loss *, const mm_tensor *, const mm_tensor *, double *, mm_tensor *,
                 mm_tensor *) = siglip ? mm_loss_siglip : mm_loss_clip;
        rand_rows(x, n, d, 41, 1);
        rand_rows(y, n, d, 42, 1);
        CHECK_OK(f(h, tx, ty, &l1, tdx, t1));
        CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s1));
        CHECK_OK(f(h, tx, ty, &l2, NULL, t2));
        CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s2));
        CHECK_OK(f(h, tx, ty, &l3, NULL, NULL));
        CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s3));
        CHECK(l1 == l2 && l2 == l3 && s1 == s2 && s2 == s3);
        CHECK(memcmp(dy1, dy2, sizeof(float) * (size_t)(n * d)) == 0);
        mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(t1), mm_tensor_free(t2);
        mm_tensor_free(tdx);
        free(x), free(y), free(dy1), free(dy2), free(dx);
        mm_loss_free(h);
    }
}

/* GRAD_SCALE multiplies every gradient; CLAMP_LOGIT_SCALE clips t into [0, ln 100] (FLIP). */
static void test_pair_scale_options(void)
{
    int64_t n = 10, d = 6;
    mm_loss *h = make(MM_LOSS_CLIP, n, d, 8, 1);
    float *x = fvec(n * d), *y = fvec(n * d), *dx1 = fvec(n * d), *dx2 = fvec(n * d);
    mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0);
    mm_tensor *t1 = wrap(dx1, 2, n, d, 0), *t2 = wrap(dx2, 2, n, d, 0);
    double l1, l2, s1, s2;
    rand_rows(x, n, d, 51, 1);
    rand_rows(y, n, d, 52, 1);
    CHECK_OK(mm_loss_clip(h, tx, ty, &l1, t1, NULL));
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s1));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_GRAD_SCALE, -2.5));
    CHECK_OK(mm_loss_clip(h, tx, ty, &l2, t2, NULL));
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s2));
    CHECK(l1 == l2);
    CHECK_NEAR(s2, -2.5 * s1, 1e-6, 1e-12);
    for (int64_t i = 0; i < n * d; i++) CHECK_NEAR(dx2[i], -2.5 * dx1[i], 1e-5, 1e-9);
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_GRAD_SCALE, 1.0));
    /* t = 6 is clamped to ln 100: same loss as t = ln 100, zero t-gradient */
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_CLAMP_LOGIT_SCALE, 1));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, 6.0));
    CHECK_OK(mm_loss_clip(h, tx, ty, &l1, NULL, NULL));
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &s1));
    CHECK(s1 == 0.0);
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_CLAMP_LOGIT_SCALE, 0));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, log(100.0)));
    CHECK_OK(mm_loss_clip(h, tx, ty, &l2, NULL, NULL));
    CHECK_NEAR(l1, l2, 1e-6, 0);
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(t1), mm_tensor_free(t2);
    free(x), free(y), free(dx1), free(dx2);
    mm_loss_free(h);
}

/* ---- PyTorch vectors ---------------------------------------------------------------------- */
static void vec_pair(int siglip, const float *xv, const float *yv, int64_t n, int64_t d, double t,
                     double b, double loss_want, double dt_want, double db_want,
                     const double *dx_want, const double *dy_want)
{
    mm_loss *h = make(siglip ? MM_LOSS_SIGLIP : MM_LOSS_CLIP, n, d, 8, 1);
    float *x = fvec(n * d), *y = fvec(n * d), *dx = fvec(n * d), *dy = fvec(n * d);
    mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0);
    mm_tensor *tdx = wrap(dx, 2, n, d, 0), *tdy = wrap(dy, 2, n, d, 0);
    double loss, got;
    memcpy(x, xv, sizeof(float) * (size_t)(n * d));
    memcpy(y, yv, sizeof(float) * (size_t)(n * d));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, t));
    if (siglip) {
        CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LOGIT_BIAS, b));
        CHECK_OK(mm_loss_siglip(h, tx, ty, &loss, tdx, tdy));
        CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_BIAS, &got));
        CHECK_NEAR(got, db_want, 1e-5, 1e-7);
    } else {
        CHECK_OK(mm_loss_clip(h, tx, ty, &loss, tdx, tdy));
    }
    CHECK_NEAR(loss, loss_want, 1e-5, 1e-7);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &got));
    CHECK_NEAR(got, dt_want, 1e-4, 1e-6);
    check_vec(dx, dx_want, n * d, 1e-4, 1e-5);
    check_vec(dy, dy_want, n * d, 1e-4, 1e-5);
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tdx), mm_tensor_free(tdy);
    free(x), free(y), free(dx), free(dy);
    mm_loss_free(h);
}

static void vec_ce(const float *zv, const int32_t *t, int64_t n, int64_t c, double eps,
                   double loss_want, const double *dz_want)
{
    mm_loss *h = make(MM_LOSS_CROSS_ENTROPY, n, c, 8, 1);
    float *z = fvec(n * c), *dz = fvec(n * c);
    mm_tensor *tz = wrap(z, 2, n, c, 0), *tdz = wrap(dz, 2, n, c, 0);
    double loss;
    memcpy(z, zv, sizeof(float) * (size_t)(n * c));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LABEL_SMOOTHING, eps));
    CHECK_OK(mm_loss_cross_entropy(h, tz, t, n, &loss, tdz));
    CHECK_NEAR(loss, loss_want, 1e-6, 1e-7);
    check_vec(dz, dz_want, n * c, 1e-5, 1e-6);
    mm_tensor_free(tz), mm_tensor_free(tdz), free(z), free(dz);
    mm_loss_free(h);
}

static void test_pytorch_vectors(void)
{
    vec_pair(0, CLIPA_X, CLIPA_Y, CLIPA_B, CLIPA_D, CLIPA_T, 0, CLIPA_LOSS, CLIPA_DT, 0, CLIPA_DX,
             CLIPA_DY);
    vec_pair(0, CLIPB_X, CLIPB_Y, CLIPB_B, CLIPB_D, CLIPB_T, 0, CLIPB_LOSS, CLIPB_DT, 0, CLIPB_DX,
             CLIPB_DY);
    vec_pair(1, SIGA_X, SIGA_Y, SIGA_B, SIGA_D, SIGA_T, SIGA_BIAS, SIGA_LOSS, SIGA_DT, SIGA_DB,
             SIGA_DX, SIGA_DY);
    vec_pair(1, SIGB_X, SIGB_Y, SIGB_B, SIGB_D, SIGB_T, SIGB_BIAS, SIGB_LOSS, SIGB_DT, SIGB_DB,
             SIGB_DX, SIGB_DY);
    vec_ce(CES_Z, CES_T, CES_N, CES_C, CES_EPS, CES_LOSS, CES_DZ);
    vec_ce(CE0_Z, CE0_T, CE0_N, CE0_C, CE0_EPS, CE0_LOSS, CE0_DZ);
}

/* ---- ITC ------------------------------------------------------------------------------------ */
typedef struct itc_ctx {
    double *f[4], *qi, *qt, temp, temp_m, alpha;
    int64_t n, nq, d;
} itc_ctx;

static double itc_loss(void *c)
{
    itc_ctx *p = (itc_ctx *)c;
    double dt;
    return ref_itc(p->f, p->qi, p->qt, p->n, p->nq, p->d, p->temp, p->temp_m, p->alpha, NULL, NULL,
                   &dt);
}

static void itc_case(int64_t n, int64_t nq, int64_t d, int64_t tile, double temp, double alpha)
{
    mm_loss *h = make(MM_LOSS_ITC, n, d, tile, 1);
    float *f[6], *di = fvec(n * d), *dt = fvec(n * d);
    mm_tensor *tf[6] = {0}, *tdi = wrap(di, 2, n, d, 0), *tdt = wrap(dt, 2, n, d, 0);
    itc_ctx c = {{0}, NULL, NULL, temp, temp, alpha, n, nq, d};
    double *qd[2] = {NULL, NULL}, *rdi = dvec(n * d), *rdt = dvec(n * d), loss, want, rtemp, got;
    for (int i = 0; i < 6; i++) {
        int64_t rows = i < 4 ? n : nq;
        f[i] = rows ? fvec(rows * d) : NULL;
        if (!rows) continue;
        rand_rows(f[i], rows, d, 60 + (uint64_t)i, 1);
        tf[i] = wrap(f[i], 2, rows, d, 0);
        if (i < 4)
            to_f64(f[i], c.f[i] = dvec(rows * d), rows * d);
        else
            to_f64(f[i], qd[i - 4] = dvec(rows * d), rows * d);
    }
    for (int64_t k = 0; k < n * d; k++) { /* momentum features near the online ones */
        f[2][k] = 0.8f * f[2][k] + 0.6f * f[0][k];
        f[3][k] = 0.8f * f[3][k] + 0.6f * f[1][k];
        c.f[2][k] = f[2][k];
        c.f[3][k] = f[3][k];
    }
    c.qi = qd[0];
    c.qt = qd[1];
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_TEMP, temp));
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_ALPHA, alpha));
    CHECK_OK(mm_loss_itc(h, tf[0], tf[1], tf[2], tf[3], tf[4], tf[5], &loss, tdi, tdt));
    want = ref_itc(c.f, c.qi, c.qt, n, nq, d, temp, temp, alpha, rdi, rdt, &rtemp);
    CHECK_NEAR(loss, want, 1e-5, 1e-7);
    check_vec(di, rdi, n * d, 1e-4, 1e-5);
    check_vec(dt, rdt, n * d, 1e-4, 1e-5);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DTEMP, &got));
    CHECK_NEAR(got, rtemp, 1e-4, 1e-6);
    CHECK_NEAR(got, fd(itc_loss, &c, &c.temp, 1e-7), 1e-4, 1e-6);
    check_fd(itc_loss, &c, c.f[0], n * d, di, max_abs(di, n * d));
    check_fd(itc_loss, &c, c.f[1], n * d, dt, max_abs(dt, n * d));
    for (int i = 0; i < 6; i++) mm_tensor_free(tf[i]), free(f[i]);
    for (int i = 0; i < 4; i++) free(c.f[i]);
    free(qd[0]), free(qd[1]), free(rdi), free(rdt), free(di), free(dt);
    mm_tensor_free(tdi), mm_tensor_free(tdt);
    mm_loss_free(h);
}

static void test_itc_reference(void)
{
    itc_case(23, 17, 11, 8, 0.07, 0.4); /* queue split over tiles, B not a tile multiple */
    itc_case(13, 0, 6, 8, 0.2, 0.0);    /* no queue, no distillation: plain InfoNCE */
    itc_case(9, 40, 5, 16, 0.5, 1.0);   /* targets from the momentum model alone */
}

/* ---- row-wise kinds ------------------------------------------------------------------------ */
typedef struct row_ctx {
    double *z, *y, *lpo, *r, eps, tau;
    const int32_t *t;
    int64_t n, c, k;
    int kind, mode;
} row_ctx;

static double row_loss(void *c)
{
    row_ctx *p = (row_ctx *)c;
    if (p->kind == MM_LOSS_CROSS_ENTROPY) return ref_ce(p->z, p->t, p->n, p->c, p->eps, -100, NULL);
    if (p->kind == MM_LOSS_BCE) return ref_bce(p->z, p->y, p->n, p->c, NULL);
    return ref_kimi(p->z, p->lpo, p->r, p->n, p->k, p->tau, p->mode, NULL);
}

static void test_cross_entropy_reference(void)
{
    enum { N = 11, C = 37 };
    int32_t t[N];
    float z[N * C], dz[N * C];
    double zd[N * C], rdz[N * C], loss, valid;
    mm_loss *h = make(MM_LOSS_CROSS_ENTROPY, 16, 64, 8, 1);
    mm_tensor *tz = wrap(z, 2, N, C, 0), *tdz = wrap(dz, 2, N, C, 0);
    row_ctx c = {zd, NULL, NULL, NULL, 0.1, 0, t, N, C, 0, MM_LOSS_CROSS_ENTROPY, 0};
    mmt_fill_uniform(z, N * C, 71, -8, 8);
    z[5] = 60.0f; /* a dominant logit: the max shift matters */
    for (int i = 0; i < N; i++) t[i] = (int32_t)((i * 7) % C);
    t[3] = -100;
    to_f64(z, zd, N * C);
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_LABEL_SMOOTHING, 0.1));
    CHECK_OK(mm_loss_cross_entropy(h, tz, t, N, &loss, tdz));
    CHECK_NEAR(loss, ref_ce(zd, t, N, C, 0.1, -100, rdz), 1e-6, 1e-8);
    check_vec(dz, rdz, N * C, 1e-5, 1e-6);
    check_fd(row_loss, &c, zd, N * C, dz, max_abs(dz, N * C));
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_VALID, &valid));
    CHECK(valid == N - 1);
    /* every row ignored: 0 loss, 0 gradient (PyTorch would give NaN) */
    for (int i = 0; i < N; i++) t[i] = 7;
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_IGNORE_INDEX, 7));
    CHECK_OK(mm_loss_cross_entropy(h, tz, t, N, &loss, tdz));
    CHECK(loss == 0.0 && max_abs(dz, N * C) == 0.0);
    mm_tensor_free(tz), mm_tensor_free(tdz);
    mm_loss_free(h);
}

static void test_bce_reference(void)
{
    enum { N = 7, C = 53 };
    float z[N * C], y[N * C], dz[N * C];
    double zd[N * C], yd[N * C], rdz[N * C], loss;
    mm_loss *h = make(MM_LOSS_BCE, 8, 64, 8, 1);
    mm_tensor *tz = wrap(z, 2, N, C, 0), *ty = wrap(y, 2, N, C, 0), *tdz = wrap(dz, 2, N, C, 0);
    row_ctx c = {zd, yd, NULL, NULL, 0, 0, NULL, N, C, 0, MM_LOSS_BCE, 0};
    mmt_fill_uniform(z, N * C, 81, -30, 30); /* both saturated tails */
    for (int i = 0; i < N * C; i++) y[i] = (i % 5 == 0) ? 1.0f : (i % 7 == 0 ? 0.25f : 0.0f);
    to_f64(z, zd, N * C);
    to_f64(y, yd, N * C);
    CHECK_OK(mm_loss_bce(h, tz, ty, &loss, tdz));
    CHECK_NEAR(loss, ref_bce(zd, yd, N, C, rdz), 1e-6, 1e-8);
    check_vec(dz, rdz, N * C, 1e-5, 1e-6);
    check_fd(row_loss, &c, zd, N * C, dz, max_abs(dz, N * C));
    mm_tensor_free(tz), mm_tensor_free(ty), mm_tensor_free(tdz);
    mm_loss_free(h);
}

static void test_kimi_reference(void)
{
    enum { N = 24, K = 6 };
    float lp[N], lpo[N], r[N], g[N];
    double lpd[N], lpod[N], rd[N], rg[N], loss;
    mm_loss_opts o;
    mm_loss *h = NULL;
    mm_tensor *t1, *t2, *t3, *tg;
    row_ctx c = {lpd, NULL, lpod, rd, 0, 0.7, NULL, N, 0, K, MM_LOSS_KIMI, 0};
    CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_KIMI));
    o.group_size = K;
    o.max_batch = N;
    CHECK_OK(mm_loss_create(&h, &o));
    mmt_fill_uniform(lp, N, 91, -40, -5);
    mmt_fill_uniform(lpo, N, 92, -40, -5);
    for (int i = 0; i < N; i++) r[i] = (float)((i * 5) % 3 == 0);
    to_f64(lp, lpd, N), to_f64(lpo, lpod, N), to_f64(r, rd, N);
    t1 = wrap(lp, 2, N / K, K, 0), t2 = wrap(lpo, 2, N / K, K, 0), t3 = wrap(r, 2, N / K, K, 0);
    tg = wrap(g, 2, N / K, K, 0);
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_TAU, 0.7));
    for (int mode = 0; mode < 2; mode++) {
        c.mode = mode;
        CHECK_OK(mm_loss_set_f64(h, MM_LOSS_KIMI_BASELINE, mode));
        CHECK_OK(mm_loss_kimi(h, t1, t2, t3, &loss, tg));
        CHECK_NEAR(loss, ref_kimi(lpd, lpod, rd, N, K, 0.7, mode, rg), 1e-9, 1e-9);
        check_vec(g, rg, N, 1e-6, 1e-7);
        check_fd(row_loss, &c, lpd, N, g, max_abs(g, N));
    }
    /* at logp == logp_old with mean baseline the gradient is the centred reward (eq. 3) */
    CHECK_OK(mm_loss_set_f64(h, MM_LOSS_KIMI_BASELINE, 0));
    CHECK_OK(mm_loss_kimi(h, t2, t2, t3, &loss, tg));
    CHECK_NEAR(g[0], -2 * 0.7 * (1.0 - 2.0 / 6.0) / N, 1e-6, 0);
    mm_tensor_free(t1), mm_tensor_free(t2), mm_tensor_free(t3), mm_tensor_free(tg);
    mm_loss_free(h);
}

/* ---- helpers -------------------------------------------------------------------------------- */
typedef struct l2_ctx {
    double *u, *w, eps;
    int64_t n, d;
    int mode;
} l2_ctx;

static double l2_loss(void *c)
{
    l2_ctx *p = (l2_ctx *)c;
    return ref_l2_dot(p->u, p->w, p->n, p->d, p->eps, p->mode);
}

static void test_l2_normalize(void)
{
    enum { N = 6, D = 9 };
    float u[N * D], x[N * D], w[N * D], du[N * D];
    double ud[N * D], wd[N * D];
    mm_loss *h = make(MM_LOSS_CLIP, 8, 16, 8, 1);
    mm_tensor *tu = wrap(u, 2, N, D, 0), *tx = wrap(x, 2, N, D, 0), *tw = wrap(w, 2, N, D, 0);
    mm_tensor *tdu = wrap(du, 2, N, D, 0);
    l2_ctx c = {ud, wd, 0, N, D, 0};
    mmt_fill_uniform(u, N * D, 101, -2, 2);
    mmt_fill_uniform(w, N * D, 102, -1, 1);
    for (int j = 0; j < D; j++) u[5 * D + j] = 1e-14f; /* below eps = 1e-12 in mode 0 */
    to_f64(u, ud, N * D), to_f64(w, wd, N * D);
    for (int mode = 0; mode < 2; mode++) {
        double eps = mode ? 1e-8 : 1e-12;
        c.mode = mode, c.eps = eps;
        CHECK_OK(mm_loss_set_f64(h, MM_LOSS_NORM_EPS_MODE, mode));
        CHECK_OK(mm_loss_set_f64(h, MM_LOSS_NORM_EPS, eps));
        CHECK_OK(mm_loss_l2_normalize(h, tu, tx));
        for (int i = 0; i < N; i++) {
            double nr = sqrt(dot(ud + i * D, ud + i * D, D));
            double den = mode ? nr + eps : fmax(nr, eps);
            for (int j = 0; j < D; j++) CHECK_NEAR(x[i * D + j], ud[i * D + j] / den, 1e-6, 1e-9);
        }
        CHECK_OK(mm_loss_l2_normalize_backward(h, tu, tw, tdu));
        check_fd(l2_loss, &c, ud, 5 * D, du, max_abs(du, 5 * D)); /* rows with |u| >> eps */
        /* the clamped row: x = u / eps, gradient w / eps */
        if (mode == 0) CHECK_NEAR(du[5 * D + 2], w[5 * D + 2] / eps, 1e-6, 0);
    }
    CHECK_OK(mm_loss_l2_normalize(h, tu, tu)); /* in place */
    CHECK_NEAR(u[0], x[0], 1e-6, 1e-9);
    mm_tensor_free(tu), mm_tensor_free(tx), mm_tensor_free(tw), mm_tensor_free(tdu);
    mm_loss_free(h);
}

static void test_flip_masking(void)
{
    enum { B = 3, L = 10, K = 4, D = 5, ROWS = 3000 };
    int32_t keep[B * K], *many = (int32_t *)malloc(sizeof(int32_t) * ROWS * 3), cnt[L] = {0},
                         first[L] = {0};
    float x[B * L * D], out[B * K * D], g[B * K * D], dx[B * L * D];
    mm_loss *h = make(MM_LOSS_CLIP, 4, 8, 8, 1), *h2 = make(MM_LOSS_CLIP, 4, 8, 8, 1);
    mm_tensor *tx = wrap(x, 3, B, L, D), *to = wrap(out, 3, B, K, D), *tg = wrap(g, 3, B, K, D);
    mm_tensor *tdx = wrap(dx, 3, B, L, D);
    int32_t keep2[B * K];
    double lhs = 0, rhs = 0;
    CHECK_OK(mm_loss_flip_draw(h, B, L, K, keep));
    CHECK_OK(mm_loss_flip_draw(h2, B, L, K, keep2));
    CHECK(memcmp(keep, keep2, sizeof keep) == 0); /* same seed, same draw */
    for (int r = 0; r < B; r++)
        for (int a = 0; a < K; a++) {
            CHECK(keep[r * K + a] >= 0 && keep[r * K + a] < L);
            for (int b2 = 0; b2 < a; b2++) CHECK(keep[r * K + a] != keep[r * K + b2]);
        }
    /* uniform subsets in uniform order: counts within 5 sigma */
    CHECK_OK(mm_loss_flip_draw(h, ROWS, L, 3, many));
    for (int i = 0; i < ROWS * 3; i++) cnt[many[i]]++;
    for (int i = 0; i < ROWS; i++) first[many[i * 3]]++;
    for (int i = 0; i < L; i++) {
        CHECK(abs(cnt[i] - ROWS * 3 / L) < 5 * 25);
        CHECK(abs(first[i] - ROWS / L) < 5 * 17);
    }
    /* gather picks the rows; scatter is its adjoint */
    mmt_fill_uniform(x, B * L * D, 111, -1, 1);
    mmt_fill_uniform(g, B * K * D, 112, -1, 1);
    CHECK_OK(mm_loss_flip_gather(h, tx, keep, K, to));
    for (int r = 0; r < B; r++)
        for (int a = 0; a < K; a++)
            CHECK(out[(r * K + a) * D + 3] == x[(r * L + keep[r * K + a]) * D + 3]);
    CHECK_OK(mm_loss_flip_scatter(h, tg, keep, K, tdx));
    for (int i = 0; i < B * K * D; i++) lhs += (double)out[i] * g[i];
    for (int i = 0; i < B * L * D; i++) rhs += (double)x[i] * dx[i];
    CHECK_NEAR(lhs, rhs, 1e-9, 1e-9);
    keep[1] = L;
    CHECK_STATUS(mm_loss_flip_gather(h, tx, keep, K, to), MM_E_RANGE);
    CHECK(strstr(mm_loss_errmsg(h), "keep[1]") != NULL);
    CHECK_STATUS(mm_loss_flip_draw(h, B, L, L + 1, keep), MM_E_RANGE);
    CHECK_STATUS(mm_loss_flip_gather(h, tx, keep, K + 1, to), MM_E_SHAPE);
    mm_tensor_free(tx), mm_tensor_free(to), mm_tensor_free(tg), mm_tensor_free(tdx);
    mm_loss_free(h), mm_loss_free(h2), free(many);
}

static void test_blip_hard_negatives(void)
{
    enum { B = 4, M = 6, DRAWS = 20000 };
    float sim[B * M];
    int32_t neg[B], cnt[B] = {0};
    int64_t ids[B] = {7, 7, 3, 9};
    double p[B], z = 0;
    mm_loss *h = make(MM_LOSS_ITC, B, 8, 8, 1);
    mm_tensor *ts = wrap(sim, 2, B, M, 0);
    mmt_fill_uniform(sim, B * M, 121, -2, 2);
    sim[0 * M + 1] = 3.0f; /* row 0 prefers column 1 */
    for (int rep = 0; rep < DRAWS; rep++) {
        CHECK_OK(mm_loss_blip_hard_negatives(h, ts, NULL, 0, neg));
        for (int i = 0; i < B; i++) CHECK(neg[i] >= 0 && neg[i] < B && neg[i] != i);
        cnt[neg[0]]++;
    }
    /* row 0: P(j) proportional to softmax_j + 1e-4 over j != 0 (the full row's softmax) */
    for (int j = 0; j < B; j++) z += exp(sim[j]);
    for (int j = 0; j < B; j++) p[j] = j == 0 ? 0 : exp(sim[j]) / z + 1e-4;
    z = p[1] + p[2] + p[3];
    for (int j = 1; j < B; j++) {
        double e = DRAWS * p[j] / z;
        CHECK(fabs(cnt[j] - e) < 5 * sqrt(e) + 1);
    }
    CHECK_OK(mm_loss_blip_hard_negatives(h, ts, ids, 1, neg)); /* by column, ids masked */
    CHECK(neg[0] >= 2 && neg[1] >= 2 && neg[2] != 2 && neg[3] != 3);
    for (int i = 0; i < B; i++) ids[i] = 5;
    CHECK_OK(mm_loss_blip_hard_negatives(h, ts, ids, 0, neg));
    CHECK(neg[0] == -1 && neg[3] == -1); /* no candidate anywhere */
    CHECK_STATUS(mm_loss_blip_hard_negatives(h, ts, NULL, 2, neg), MM_E_INVALID_ARG);
    mm_tensor_free(ts);
    mm_loss_free(h);
}

static void test_kimi_length_reward(void)
{
    int64_t len[8] = {10, 20, 30, 40, 5, 5, 5, 5};
    float r[8] = {1, 0, 1, 0, 1, 0, 1, 0}, out[8];
    mm_loss *h = make(MM_LOSS_KIMI, 8, 8, 8, 1);
    mm_tensor *tr = wrap(r, 1, 8, 0, 0), *to = wrap(out, 1, 8, 0, 0);
    CHECK_OK(mm_loss_kimi_length_reward(h, len, tr, 4, to));
    CHECK_NEAR(out[0], 0.5, 1e-7, 0);
    CHECK_NEAR(out[1], 0.0, 0, 0);                           /* incorrect, lambda = 1/6 > 0: 0 */
    CHECK_NEAR(out[2], -1.0 / 6.0, 1e-6, 0);                 /* correct but long */
    CHECK_NEAR(out[3], -0.5, 1e-7, 0);                       /* incorrect and longest */
    for (int i = 4; i < 8; i++) CHECK(out[i] == 0.0f);       /* equal lengths */
    CHECK_OK(mm_loss_kimi_length_reward(h, len, tr, 4, tr)); /* in place */
    CHECK(memcmp(r, out, sizeof out) == 0);
    CHECK_STATUS(mm_loss_kimi_length_reward(h, len, tr, 3, to), MM_E_SHAPE);
    len[2] = -1;
    CHECK_STATUS(mm_loss_kimi_length_reward(h, len, tr, 4, to), MM_E_RANGE);
    mm_tensor_free(tr), mm_tensor_free(to);
    mm_loss_free(h);
}

/* ---- options, parameters, misuse ---------------------------------------------------------- */
static void test_opts_and_create(void)
{
    mm_loss_opts o;
    mm_loss *h = (mm_loss *)&o;
    char buf[200];
    unsigned char big[sizeof(mm_loss_opts) + 16];
    CHECK_STATUS(mm_loss_opts_init(NULL, MM_LOSS_CLIP), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_loss_opts_init(&o, 99), MM_E_INVALID_ARG);
    CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_SIGLIP));
    CHECK(o.struct_size == sizeof o && o.kind == MM_LOSS_SIGLIP && o.tile == 256);
    CHECK_STATUS(mm_loss_create(NULL, &o), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_loss_create(&h, NULL), MM_E_INVALID_ARG);
    CHECK(h == NULL);
    o.err_buf = buf;
    o.err_buf_size = sizeof buf;
    o.tile = 3;
    CHECK_STATUS(mm_loss_create(&h, &o), MM_E_RANGE);
    CHECK(strstr(buf, "tile") != NULL);
    o.tile = 64;
    o.max_batch = 0;
    CHECK_STATUS(mm_loss_create(&h, &o), MM_E_RANGE);
    o.max_batch = 16;
    o.kind = 0;
    CHECK_STATUS(mm_loss_create(&h, &o), MM_E_INVALID_ARG);
    CHECK(strstr(buf, "kind") != NULL);
    o.kind = MM_LOSS_CLIP;
    o.reserved0 = 1;
    CHECK_STATUS(mm_loss_create(&h, &o), MM_E_INVALID_ARG);
    o.reserved0 = 0;
    o.struct_size = 4;
    CHECK_STATUS(mm_loss_create(&h, &o), MM_E_INVALID_ARG);
    /* a newer caller's larger struct: zero tail accepted, non-zero tail refused */
    o.struct_size = sizeof big;
    memset(big, 0, sizeof big);
    memcpy(big, &o, sizeof o);
    CHECK_OK(mm_loss_create(&h, (const mm_loss_opts *)(void *)big));
    mm_loss_free(h);
    big[sizeof big - 1] = 1;
    CHECK_STATUS(mm_loss_create(&h, (const mm_loss_opts *)(void *)big), MM_E_VERSION);
    CHECK(strstr(buf, "newer") != NULL);
    /* an older caller's shorter struct (up to group_size): the rest keeps the defaults */
    o.struct_size = (uint32_t)offsetof(mm_loss_opts, seed);
    CHECK_OK(mm_loss_create(&h, &o));
    mm_loss_free(h);
    mm_loss_free(NULL);
    CHECK(strcmp(mm_loss_errmsg(NULL), "invalid handle") == 0);
    /* the options layout is ABI: fields are only appended (LP64 numbers) */
    if (sizeof(void *) == 8) {
        CHECK_EQ_I64(offsetof(mm_loss_opts, kind), 16);
        CHECK_EQ_I64(offsetof(mm_loss_opts, max_batch), 24);
        CHECK_EQ_I64(offsetof(mm_loss_opts, seed), 64);
        CHECK_EQ_I64(offsetof(mm_loss_opts, err_buf_size), 80);
        CHECK_EQ_I64(sizeof(mm_loss_opts), 88);
    }
}

static void test_params(void)
{
    mm_loss *h = make(MM_LOSS_SIGLIP, 8, 8, 8, 1);
    double v, lo, hi;
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_LOGIT_SCALE, &v));
    CHECK_NEAR(v, log(10.0), 1e-15, 0);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_LOGIT_BIAS, &v));
    CHECK(v == -10.0);
    CHECK_OK(mm_param_bounds(MM_LOSS_TEMP, &lo, &hi));
    CHECK(lo == 0.001 && hi == 0.5);
    CHECK_OK(mm_param_bounds(MM_LOSS_LOGIT_SCALE, &lo, &hi));
    CHECK_STATUS(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, hi + 1), MM_E_RANGE);
    CHECK_STATUS(mm_loss_set_f64(h, MM_LOSS_LOGIT_SCALE, NAN), MM_E_RANGE);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_LOGIT_SCALE, &v));
    CHECK_NEAR(v, log(10.0), 1e-15, 0); /* unchanged */
    CHECK_STATUS(mm_loss_set_f64(h, 399, 1), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_loss_set_f64(h, 499, 1), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_loss_get_f64(h, 420, &v), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_loss_set_f64(h, MM_LOSS_TEMP, 0.1), MM_E_UNSUPPORTED); /* ITC only */
    CHECK(strstr(mm_loss_errmsg(h), "does not apply") != NULL);
    CHECK_STATUS(mm_loss_set_f64(h, MM_LOSS_STAT_LOSS, 1), MM_E_UNSUPPORTED);
    CHECK(strstr(mm_loss_errmsg(h), "read-only") != NULL);
    CHECK_STATUS(mm_loss_set_f64(h, MM_LOSS_CLAMP_LOGIT_SCALE, 0.5), MM_E_RANGE);
    CHECK_STATUS(mm_loss_set_f64(NULL, MM_LOSS_LOGIT_BIAS, 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_loss_get_f64(h, MM_LOSS_LOGIT_BIAS, NULL), MM_E_INVALID_ARG);
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_WORKSPACE_BYTES, &v));
    CHECK(v > 8 * 8 * 4);
    for (int32_t id = 400; id <= 457; id++) { /* every registered id has bounds and a use */
        int rc = mm_param_bounds(id, &lo, &hi);
        if (rc == MM_OK) CHECK(lo <= hi);
    }
    mm_loss_free(h);
}

static void test_misuse(void)
{
    enum { N = 6, D = 4 };
    float x[N * D], y[N * D], g[N * D], big[(N + 4) * D];
    mm_loss *h = make(MM_LOSS_CLIP, N, D, 8, 1), *hs = make(MM_LOSS_SIGLIP, N, D, 8, 1);
    mm_tensor *tx = wrap(x, 2, N, D, 0), *ty = wrap(y, 2, N, D, 0), *tg = wrap(g, 2, N, D, 0);
    mm_tensor *t3 = wrap(x, 3, 2, 3, D), *tshort = wrap(y, 2, N - 1, D, 0);
    mm_tensor *tbig = wrap(big, 2, N + 4, D, 0), *tbig2 = wrap(big, 2, N + 4, D, 0);
    double loss = 123;
    rand_rows(x, N, D, 131, 1);
    rand_rows(y, N, D, 132, 1);
    memset(big, 0, sizeof big);
    CHECK_STATUS(mm_loss_clip(NULL, tx, ty, &loss, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_loss_clip(h, NULL, ty, &loss, NULL, NULL), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(h), "x is NULL") != NULL);
    CHECK_STATUS(mm_loss_clip(h, t3, ty, &loss, NULL, NULL), MM_E_SHAPE);
    CHECK(strstr(mm_loss_errmsg(h), "[2,3,4]") != NULL);
    CHECK_STATUS(mm_loss_clip(h, tx, tshort, &loss, NULL, NULL), MM_E_SHAPE);
    CHECK(strstr(mm_loss_errmsg(h), "[5,4]") && strstr(mm_loss_errmsg(h), "[6,4]"));
    CHECK_STATUS(mm_loss_clip(h, tbig, tbig2, &loss, NULL, NULL), MM_E_RANGE);
    CHECK(strstr(mm_loss_errmsg(h), "max_batch") != NULL);
    CHECK_STATUS(mm_loss_clip(hs, tx, ty, &loss, NULL, NULL), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(hs), "MM_LOSS_SIGLIP") != NULL);
    CHECK_STATUS(mm_loss_clip(h, tx, ty, &loss, tx, NULL), MM_E_INVALID_ARG); /* dx = x */
    CHECK_STATUS(mm_loss_clip(h, tx, ty, &loss, tg, tg), MM_E_INVALID_ARG);   /* dx = dy */
    CHECK_STATUS(mm_loss_clip(h, tx, ty, &loss, tshort, NULL), MM_E_SHAPE);
    x[5] = NAN;
    CHECK_STATUS(mm_loss_clip(h, tx, ty, &loss, tg, NULL), MM_E_NUMERIC);
    CHECK(strstr(mm_loss_errmsg(h), "x[5]") != NULL);
    x[5] = INFINITY;
    CHECK_STATUS(mm_loss_siglip(hs, tx, ty, &loss, NULL, NULL), MM_E_NUMERIC);
    x[5] = 3e37f; /* finite, but s x.y could overflow float32 */
    loss = 123;
    CHECK_STATUS(mm_loss_clip(h, tx, ty, &loss, NULL, NULL), MM_E_NUMERIC);
    CHECK(strstr(mm_loss_errmsg(h), "overflow") != NULL);
    CHECK(loss == 123); /* refused calls write nothing */
    x[5] = 0.1f;
    CHECK_OK(mm_loss_clip(h, tx, ty, &loss, NULL, NULL));
    /* the handle stays usable after every failure */
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tg), mm_tensor_free(t3);
    mm_tensor_free(tshort), mm_tensor_free(tbig), mm_tensor_free(tbig2);
    mm_loss_free(h), mm_loss_free(hs);
}

static void test_misuse_rows(void)
{
    enum { N = 4, C = 5 };
    float z[N * C], y[N * C], g[N * C];
    int32_t t[N] = {0, 1, 2, 3};
    mm_loss *ce = make(MM_LOSS_CROSS_ENTROPY, N, C, 8, 1), *bce = make(MM_LOSS_BCE, N, C, 8, 1);
    mm_loss *km = make(MM_LOSS_KIMI, 8, 8, 8, 1), *itc = NULL;
    mm_loss_opts o;
    mm_tensor *tz = wrap(z, 2, N, C, 0), *ty = wrap(y, 2, N, C, 0), *tg = wrap(g, 2, N, C, 0);
    mm_tensor *t6 = wrap(z, 1, 6, 0, 0);
    double loss;
    mmt_fill_uniform(z, N * C, 141, -1, 1);
    mmt_fill_uniform(y, N * C, 142, 0, 1);
    CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_ITC));
    o.max_batch = N;
    o.max_queue = 2;
    CHECK_OK(mm_loss_create(&itc, &o));
    CHECK_STATUS(mm_loss_cross_entropy(ce, tz, NULL, N, &loss, tg), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_loss_cross_entropy(ce, tz, t, N - 1, &loss, tg), MM_E_SHAPE);
    t[2] = C;
    CHECK_STATUS(mm_loss_cross_entropy(ce, tz, t, N, &loss, tg), MM_E_RANGE);
    CHECK(strstr(mm_loss_errmsg(ce), "targets[2] = 5") != NULL);
    t[2] = 2;
    CHECK_STATUS(mm_loss_cross_entropy(ce, tz, t, N, &loss, tz), MM_E_INVALID_ARG); /* alias */
    y[3] = 1.5f;
    CHECK_STATUS(mm_loss_bce(bce, tz, ty, &loss, tg), MM_E_RANGE);
    y[3] = NAN;
    CHECK_STATUS(mm_loss_bce(bce, tz, ty, &loss, tg), MM_E_NUMERIC);
    y[3] = 0.5f;
    CHECK_OK(mm_loss_bce(bce, tz, ty, &loss, tg));
    CHECK_STATUS(mm_loss_kimi(km, t6, t6, t6, &loss, NULL), MM_E_SHAPE); /* 6 % 8 */
    CHECK(strstr(mm_loss_errmsg(km), "group_size") != NULL);
    CHECK_STATUS(mm_loss_itc(itc, tz, tz, tz, tz, tz, NULL, &loss, NULL, NULL),
                 MM_E_INVALID_ARG); /* one queue */
    CHECK_STATUS(mm_loss_itc(itc, tz, tz, tz, tz, tz, tz, &loss, NULL, NULL),
                 MM_E_RANGE); /* 4 queue rows, max_queue 2 */
    CHECK(strstr(mm_loss_errmsg(itc), "max_queue") != NULL);
    mm_tensor_free(tz), mm_tensor_free(ty), mm_tensor_free(tg), mm_tensor_free(t6);
    mm_loss_free(ce), mm_loss_free(bce), mm_loss_free(km), mm_loss_free(itc);
}

/* ITC with a queue: tile 16 vs untiled (to 1e-5), and 1 vs 2 threads (bitwise). */
static void test_itc_tiles_and_threads(void)
{
    enum { N = 70, Q = 45, D = 16 };
    mm_loss_opts o;
    mm_loss *h[3] = {NULL, NULL, NULL};
    float *f[6], *g[6];
    mm_tensor *t[6], *tg[6];
    double loss[3], dtemp[3];
    for (int i = 0; i < 6; i++) {
        int64_t rows = i < 4 ? N : Q;
        rand_rows(f[i] = fvec(rows * D), rows, D, 180 + (uint64_t)i, 1);
        t[i] = wrap(f[i], 2, rows, D, 0);
        tg[i] = wrap(g[i] = fvec(N * D), 2, N, D, 0);
    }
    for (int k = 0; k < 3; k++) {
        CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_ITC));
        o.max_batch = N, o.max_queue = Q, o.max_dim = D;
        o.tile = k == 0 ? N + Q : 16;
        o.n_threads = k == 2 ? 2 : 1;
        CHECK_OK(mm_loss_create(&h[k], &o));
        CHECK_OK(mm_loss_itc(h[k], t[0], t[1], t[2], t[3], t[4], t[5], &loss[k], tg[2 * k],
                             tg[2 * k + 1]));
        CHECK_OK(mm_loss_get_f64(h[k], MM_LOSS_STAT_DTEMP, &dtemp[k]));
    }
    CHECK_NEAR(loss[1], loss[0], 1e-5, 0);
    CHECK_NEAR(dtemp[1], dtemp[0], 1e-5, 1e-9);
    for (int s = 0; s < 2; s++) {
        double mx = max_abs(g[s], N * D);
        for (int64_t i = 0; i < N * D; i++)
            if (!mmt_near(g[2 + s][i], g[s][i], 1e-5, 1e-5 * mx)) {
                CHECK_NEAR(g[2 + s][i], g[s][i], 1e-5, 1e-5 * mx);
                break;
            }
        CHECK(memcmp(g[2 + s], g[4 + s], sizeof(float) * N * D) == 0);
    }
    CHECK(loss[1] == loss[2] && dtemp[1] == dtemp[2]);
    for (int i = 0; i < 6; i++) mm_tensor_free(t[i]), mm_tensor_free(tg[i]), free(f[i]), free(g[i]);
    for (int k = 0; k < 3; k++) mm_loss_free(h[k]);
}

/* ---- threads, SIMD, memory ---------------------------------------------------------------- */
static void test_threads_bitwise(void)
{
    int64_t n = 150, d = 24;
    for (int kind = MM_LOSS_CLIP; kind <= MM_LOSS_SIGLIP; kind++) {
        mm_loss *a = make(kind, n, d, 32, 1), *b = make(kind, n, d, 32, 2);
        float *x = fvec(n * d), *y = fvec(n * d), *g1 = fvec(n * d), *g2 = fvec(n * d);
        mm_tensor *tx = wrap(x, 2, n, d, 0), *ty = wrap(y, 2, n, d, 0);
        mm_tensor *t1 = wrap(g1, 2, n, d, 0), *t2 = wrap(g2, 2, n, d, 0);
        double l1, l2;
        int (*f)(mm_loss *, const mm_tensor *, const mm_tensor *, double *, mm_tensor *,
                 mm_tensor *) = kind == MM_LOSS_SIGLIP ? mm_loss_siglip : mm_loss_clip;
        rand_rows(x, n, d, 151, 1);
        rand_rows(y, n, d, 152, 1);
        CHECK_OK(f(a, tx, ty, &l1, t1, NULL));
        CHECK_OK(f(b, tx, ty, &l2, t2, NULL));
        CHECK(l1 == l2);
        CHECK(memcmp(g1, g2, sizeof(float) * (size_t)(n * d)) == 0);
        mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(t1), mm_tensor_free(t2);
        free(x), free(y), free(g1), free(g2);
        mm_loss_free(a), mm_loss_free(b);
    }
}

/* ---- the tiles' GEMMs on packed operands (loss_tile_gemm.c) ------------------------------ */
/* mmi_tg_* on kernel set u, (ta, tb) op(A) m x k, op(B) k x n, C = alpha AB + beta C, against
 * float64; the k of 300 splits into two equal blocks, and m, n leave partial panels of every
 * set (6/12 rows, 16/32 columns). Returns the result for the threads comparison. */
static float *tg_case(const mmi_gemm_ukr *u, int ta, int tb, int64_t m, int64_t n, int64_t k,
                      float beta, mmi_pool *pool, uint64_t seed)
{
    float *a = fvec(m * k), *b = fvec(k * n), *c = fvec(m * n);
    float *ap = fvec(mmi_tg_pad(m) * k + 16), *bp = fvec(mmi_tg_pad(n) * k + 16);
    double *want = dvec(m * n);
    const float alpha = 0.75f;
    mmt_fill_uniform(a, m * k, seed, -1.0f, 1.0f);
    mmt_fill_uniform(b, k * n, seed + 1, -1.0f, 1.0f);
    mmt_fill_uniform(c, m * n, seed + 2, -1.0f, 1.0f);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            for (int64_t p = 0; p < k; p++)
                sum += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                       (double)(tb ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = alpha * sum + (beta != 0.0f ? beta * (double)c[i * n + j] : 0.0);
        }
    if (beta == 0.0f)
        for (int64_t i = 0; i < m * n; i++) c[i] = NAN; /* beta 0 must not read C */
    mmi_tg_pack_a(u, ta, a, ta ? m : k, m, k, ap, pool);
    mmi_tg_pack_b(u, tb, b, tb ? k : n, k, n, bp, pool);
    mmi_tg_run(u, m, n, k, alpha, ap, bp, beta, c, n, pool);
    /* float32 sums of k products of values in [-1, 1]: error well under k * 2^-24 * sum|ab| */
    for (int64_t i = 0; i < m * n; i++)
        if (!mmt_near(c[i], want[i], 0, 1e-6 * (double)k)) {
            CHECK_NEAR(c[i], want[i], 0, 1e-6 * (double)k);
            break;
        }
    free(a), free(b), free(ap), free(bp), free(want);
    return c;
}

static void test_tile_gemm_paths(void)
{
    mm_allocator al;
    mmt_counter cnt;
    mmi_alloc ma;
    mmi_err e;
    mmi_pool *pool = NULL;
    mmt_counting_allocator(&al, &cnt, -1);
    CHECK_OK(mmi_alloc_init(&ma, &al, &e));
    CHECK_OK(mmi_pool_create(&pool, 2, &ma, &e));
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
        const mmi_gemm_ukr *u;
        if (!mmi_simd_available((mmi_simd_path)p)) continue;
        u = mmi_gemm_ukr_for((mmi_simd_path)p);
        CHECK(MMI_TG_PAD % u->mr == 0 && MMI_TG_PAD % u->nr == 0);
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1;
            float *c1 = tg_case(u, ta, tb, 37, 45, 300, 0.0f, NULL, 700 + (uint64_t)t);
            float *c2 = tg_case(u, ta, tb, 37, 45, 300, 0.0f, pool, 700 + (uint64_t)t);
            CHECK(memcmp(c1, c2, sizeof(float) * 37 * 45) == 0); /* 1 vs 2 threads */
            free(c1), free(c2);
            free(tg_case(u, ta, tb, 131, 70, 7, 0.5f, pool, 710 + (uint64_t)t));
            free(tg_case(u, ta, tb, 1, 1, 1, 1.0f, NULL, 720 + (uint64_t)t));
        }
    }
    mmi_pool_free(pool);
}

/* CLIP and SigLIP kernels with every available path's tile primitives and GEMM set against the
 * float64 references (which test_clip_reference / test_siglip_reference check against finite
 * differences): the operator tests run only the dispatched path. Same tolerances as there. */
static void test_pair_every_path(void)
{
    const int64_t n = 37, d = 19;
    float *x = fvec(n * d), *y = fvec(n * d), *dx = fvec(n * d), *dy = fvec(n * d);
    double *xd = dvec(n * d), *yd = dvec(n * d), *rdx = dvec(n * d), *rdy = dvec(n * d);
    rand_rows(x, n, d, 731, 1);
    rand_rows(y, n, d, 732, 1);
    to_f64(x, xd, n * d);
    to_f64(y, yd, n * d);
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
        mmi_dispatch dis;
        if (!mmi_dispatch_for((mmi_simd_path)p, &dis)) continue;
        for (int siglip = 0; siglip < 2; siglip++)
            for (int64_t tile = 8; tile <= 40; tile += 32) { /* 4 tiles + 5, and one tile */
                const double t = siglip ? log(10.0) : log(1 / 0.07), b = siglip ? -3.0 : 0.0;
                size_t bytes = siglip ? mmi_loss_siglip_ws_size(n, d, tile, 1)
                                      : mmi_loss_clip_ws_size(n, d, tile, 1);
                void *ws = aligned_alloc(64, (bytes + 63) / 64 * 64);
                mmi_pair_args a = {x, y, dx, dy, n, d, tile, (float)exp(t), (float)b, 1.0};
                mmi_pair_result r;
                double want, rdt, rdb = 0;
                CHECK(bytes > 0 && ws != NULL);
                if (!ws) continue;
                if (siglip) {
                    mmi_loss_siglip_with(&a, ws, NULL, &r, dis.loss,
                                         mmi_gemm_ukr_for((mmi_simd_path)p));
                    want = ref_siglip(xd, yd, n, d, t, b, rdx, rdy, &rdt, &rdb);
                    CHECK_NEAR(r.dbias, rdb, 1e-5, 1e-7);
                } else {
                    mmi_loss_clip_with(&a, ws, NULL, &r, dis.loss,
                                       mmi_gemm_ukr_for((mmi_simd_path)p));
                    want = ref_clip(xd, yd, n, d, t, rdx, rdy, &rdt);
                }
                CHECK_NEAR(r.loss, want, 1e-5, 1e-7);
                CHECK_NEAR(r.dlog_scale, rdt, 1e-4, 1e-6);
                check_vec(dx, rdx, n * d, 1e-4, 1e-5);
                check_vec(dy, rdy, n * d, 1e-4, 1e-5);
                free(ws);
            }
    }
    free(x), free(y), free(dx), free(dy), free(xd), free(yd), free(rdx), free(rdy);
}

/* Path p's tile set, or NULL when p is not available. */
static const mmi_loss_tile_ops *tile_ops_on(int p)
{
    mmi_dispatch d;
    return mmi_dispatch_for((mmi_simd_path)p, &d) ? d.loss : NULL;
}

/* Vector set v against the portable loops at L = 203 (tails of 8 and 16). */
static void check_tile_ops(const mmi_loss_tile_ops *v)
{
    enum { L = 203, R = 5 };
    const mmi_loss_tile_ops *p = &mmi_loss_tile_ops_portable;
    float z[R * L], z2[R * L], w[L], m[L], mx1[L], mx2[L], lc[L], y[L], d1[L], d2[L];
    double a1[L] = {0}, b1[L] = {0}, a2[L] = {0}, b2[L] = {0}, ws1 = 0, ws2 = 0, g1 = 0, g2 = 0,
           h1 = 0, h2 = 0;
    if (!v) return;
    mmt_fill_uniform(z, R * L, 161, -30, 30);
    mmt_fill_uniform(w, L, 162, -2, 2);
    mmt_fill_uniform(lc, L, 163, 20, 40);
    mmt_fill_uniform(y, L, 164, 0, 1);
    z[7] = -200.0f; /* far below the exp clamp */
    CHECK(p->row_max(z, L) == v->row_max(z, L));
    CHECK_NEAR(v->row_expsum(z, w, L, 31.0f, &ws2), p->row_expsum(z, w, L, 31.0f, &ws1), 1e-6,
               1e-30);
    CHECK_NEAR(ws2, ws1, 1e-6, 1e-6 * fabs(ws1));
    for (int j = 0; j < L; j++) mx1[j] = mx2[j] = -INFINITY, m[j] = 31.0f;
    p->col_max(z, L, R, L, mx1);
    v->col_max(z, L, R, L, mx2);
    CHECK(memcmp(mx1, mx2, sizeof mx1) == 0);
    p->col_expsum(z, L, R, L, m, a1, b1);
    v->col_expsum(z, L, R, L, m, a2, b2);
    for (int j = 0; j < L; j++) CHECK_NEAR(a2[j], a1[j], 2e-6, 1e-30);
    memcpy(z2, z, sizeof z);
    p->clip_grad_row(z, L, 33.0f, lc);
    v->clip_grad_row(z2, L, 33.0f, lc);
    for (int j = 0; j < L; j++) CHECK_NEAR(z2[j], z[j], 2e-6, 1e-37);
    mmt_fill_uniform(z, L, 165, -25, 25);
    memcpy(z2, z, sizeof(float) * L);
    CHECK_NEAR(v->siglip_row(z2, L, -10.0f, &g2, &h2), p->siglip_row(z, L, -10.0f, &g1, &h1), 1e-6,
               0);
    CHECK_NEAR(g2, g1, 1e-6, 1e-9);
    CHECK_NEAR(h2, h1, 1e-6, 1e-9);
    for (int j = 0; j < L; j++) CHECK_NEAR(z2[j], z[j], 2e-6, 1e-37);
    mmt_fill_uniform(z, L, 166, -25, 25);
    CHECK_NEAR(v->bce(z, y, L, 0.5f, d2), p->bce(z, y, L, 0.5f, d1), 1e-6, 0);
    for (int j = 0; j < L; j++) CHECK_NEAR(d2[j], d1[j], 2e-6, 1e-9);
    /* log1p accuracy where SigLIP's negatives live: softplus(-12) = 6.1e-6 */
    z[0] = -12.0f;
    z2[0] = -12.0f;
    g1 = h1 = 0;
    CHECK_NEAR(v->siglip_row(z2, 1, 0.0f, &g1, &h1), log1p(exp(-12.0)), 1e-6, 0);
}

static void test_tile_ops_avx2(void)
{
    const mmi_loss_tile_ops *v = tile_ops_on(MMI_SIMD_AVX2);
    if (v) check_tile_ops(v);
}

/* |got - want| <= rtol * mag + atol, mag the sum of the magnitudes behind want. */
static void check_sum(double got, double want, double mag, double rtol, double atol, int64_t len)
{
    if (!(fabs(got - want) <= rtol * mag + atol))
        mmt_fail(__FILE__, __LINE__, "len %lld: %.12g vs float64 %.12g", (long long)len, got, want);
}

/* One tile set at every length 1..40 (each residue mod 8 and 16) against float64 references
 * of the same float arguments, with guard values around every buffer a primitive writes:
 * tails (scalar or masked) stay inside [0, len) and sum only what is there. */
static void check_tile_tails(const mmi_loss_tile_ops *v)
{
    enum { M = 40, G = 16, R = 3, LD = M + 5 };
    float z[R * LD], w[M], lc[M], y[M], mv[M], buf[M + 2 * G], buf2[M + 2 * G], mx[M + 2 * G];
    double acc[M + 2 * G], wacc[M + 2 * G];
    mmt_fill_uniform(z, R * LD, 181, -30, 30);
    mmt_fill_uniform(w, M, 182, -2, 2);
    mmt_fill_uniform(lc, M, 183, 20, 40);
    mmt_fill_uniform(y, M, 184, 0, 1);
    z[3] = -200.0f; /* exp of it is 0 (or below 1.2e-38) */
    for (int64_t len = 1; len <= M; len++) {
        double s = 0, ws = 0, wmag = 0, got, wsum = 0.25, l = 0, lmag = 0, gs = 0, gz = 0,
               gzmag = 0;
        double gsum = 0, gzsum = 0;
        float m = z[0];
        for (int64_t j = 1; j < len; j++) m = z[j] > m ? z[j] : m;
        CHECK(v->row_max(z, len) == m);
        for (int64_t j = 0; j < len; j++) {
            double e = exp((double)(z[j] - m));
            s += e;
            ws += e * w[j];
            wmag += e * fabs(w[j]);
        }
        got = v->row_expsum(z, w, len, m, &wsum);
        check_sum(got, s, s, 2e-6, 0, len);
        check_sum(wsum - 0.25, ws, wmag, 2e-6, 1e-12, len);
        /* columns: R rows of stride LD, len columns; guards on both sides */
        for (int j = 0; j < M + 2 * G; j++) mx[j] = -50.0f, acc[j] = wacc[j] = 0.5;
        v->col_max(z, LD, R, len, mx + G);
        for (int64_t j = 0; j < len; j++) {
            float c = -50.0f;
            for (int i = 0; i < R; i++) c = z[i * LD + j] > c ? z[i * LD + j] : c;
            CHECK(mx[G + j] == c);
            mv[j] = c;
        }
        v->col_expsum(z, LD, R, len, mv, acc + G, wacc + G);
        for (int64_t j = 0; j < len; j++) {
            double a = 0, b = 0, bmag = 0;
            for (int i = 0; i < R; i++) {
                double e = exp((double)(z[i * LD + j] - mv[j]));
                a += e, b += e * z[i * LD + j], bmag += e * fabs(z[i * LD + j]);
            }
            check_sum(acc[G + j] - 0.5, a, a, 2e-6, 0, len);
            check_sum(wacc[G + j] - 0.5, b, bmag, 2e-6, 1e-12, len);
        }
        for (int j = 0; j < G; j++) {
            CHECK(mx[j] == -50.0f && mx[G + len + j] == -50.0f);
            CHECK(acc[j] == 0.5 && acc[G + len + j] == 0.5 && wacc[G + len + j] == 0.5);
        }
        /* in-place rows: clip, siglip, itc; bce's dz */
        for (int j = 0; j < M + 2 * G; j++) buf[j] = buf2[j] = 66.0f;
        memcpy(buf + G, z, sizeof(float) * (size_t)len);
        v->clip_grad_row(buf + G, len, 33.0f, lc);
        for (int64_t j = 0; j < len; j++) {
            double want = exp((double)(z[j] - 33.0f)) + exp((double)(z[j] - lc[j]));
            check_sum(buf[G + j], want, want, 2e-6, 1e-37, len);
        }
        memcpy(buf + G, z, sizeof(float) * (size_t)len);
        got = v->siglip_row(buf + G, len, -3.0f, &gsum, &gzsum);
        for (int64_t j = 0; j < len; j++) {
            double vj = (double)(z[j] + -3.0f), g = sigmoid(vj);
            l += softplus(vj), lmag += softplus(vj);
            gs += g, gz += g * z[j], gzmag += g * fabs(z[j]);
            check_sum(buf[G + j], g, g, 2e-6, 1e-37, len);
        }
        check_sum(got, l, lmag, 2e-6, 1e-12, len);
        check_sum(gsum, gs, gs, 2e-6, 1e-12, len);
        check_sum(gzsum, gz, gzmag, 2e-6, 1e-12, len);
        memcpy(buf + G, z, sizeof(float) * (size_t)len);
        v->itc_grad_row(buf + G, z + LD, len, 29.0f, 0.4f, 31.0f);
        for (int64_t j = 0; j < len; j++) {
            double p = exp((double)(z[j] - 29.0f)), q = 0.4 * exp((double)(z[LD + j] - 31.0f));
            check_sum(buf[G + j], p - q, p + q, 2e-6, 1e-37, len);
        }
        l = lmag = 0;
        got = v->bce(z, y, len, 0.5f, buf2 + G);
        for (int64_t j = 0; j < len; j++) {
            double t = softplus(z[j]) - (double)y[j] * z[j];
            l += t, lmag += softplus(z[j]) + fabs((double)y[j] * z[j]);
            check_sum(buf2[G + j], 0.5 * (sigmoid(z[j]) - y[j]), 0.5, 2e-6, 0, len);
        }
        check_sum(got, l, lmag, 2e-6, 1e-12, len);
        for (int j = 0; j < G; j++) {
            CHECK(buf[j] == 66.0f && buf[G + len + j] == 66.0f);
            CHECK(buf2[j] == 66.0f && buf2[G + len + j] == 66.0f);
        }
    }
}

static void test_tile_ops_tails(void)
{
    for (int p = 0; p < MMI_SIMD_NPATHS; p++)
        if (tile_ops_on(p)) check_tile_tails(tile_ops_on(p));
}

/* The AVX-512 set (not the AVX2 fallback) against the portable loops; it cannot run on a CPU
 * without AVX-512: reported as a skip. */
static void test_tile_ops_avx512(void)
{
    const mmi_loss_tile_ops *v = tile_ops_on(MMI_SIMD_AVX512);
    if (!v) {
        mmt_skip(mmi_simd_compiled(MMI_SIMD_AVX512)
                     ? "this CPU or OS does not run AVX-512 F/DQ/BW/VL"
                     : "this build did not compile the AVX-512 path");
        return;
    }
    CHECK(v == mmi_loss_tile_ops_avx512() && v != mmi_loss_tile_ops_avx2());
    check_tile_ops(v);
}

/* Zero allocations in compute calls, everything freed; every create failure path leaks
 * nothing. */
static void test_memory_contract(void)
{
    enum { N = 20, D = 8 };
    mm_allocator al;
    mmt_counter c;
    float x[N * D], y[N * D], g[N * D], g2[N * D];
    int32_t t[N], keep[N * 2];
    mm_tensor *tx = wrap(x, 2, N, D, 0), *ty = wrap(y, 2, N, D, 0), *tg = wrap(g, 2, N, D, 0);
    mm_tensor *tg2 = wrap(g2, 2, N, D, 0), *tsim = wrap(g2, 2, D, N, 0);
    double loss;
    memset(g2, 0, sizeof g2);
    rand_rows(x, N, D, 171, 1);
    rand_rows(y, N, D, 172, 1);
    for (int i = 0; i < N; i++) t[i] = i % D;
    for (int kind = MM_LOSS_CLIP; kind <= MM_LOSS_KIMI; kind++) {
        mm_loss_opts o;
        mm_loss *h = NULL;
        int64_t before;
        int rc = MM_E_NOMEM;
        for (int64_t fail = 0; rc == MM_E_NOMEM && fail < 20; fail++) { /* OOM sweep */
            mmt_counting_allocator(&al, &c, fail);
            CHECK_OK(mm_loss_opts_init(&o, kind));
            o.alloc = &al;
            o.max_batch = N;
            o.max_dim = D;
            o.tile = 8;
            o.max_queue = N;
            o.group_size = 4;
            o.n_threads = 2;
            rc = mm_loss_create(&h, &o);
            if (rc != MM_OK) CHECK(h == NULL && c.live_bytes == 0);
        }
        CHECK_OK(rc);
        before = c.n_alloc;
        switch (kind) {
        case MM_LOSS_CLIP:
            CHECK_OK(mm_loss_clip(h, tx, ty, &loss, tg, tg2));
            break;
        case MM_LOSS_SIGLIP:
            CHECK_OK(mm_loss_siglip(h, tx, ty, &loss, tg, tg2));
            break;
        case MM_LOSS_ITC:
            CHECK_OK(mm_loss_itc(h, tx, ty, ty, tx, tx, ty, &loss, tg, tg2));
            break;
        case MM_LOSS_CROSS_ENTROPY:
            CHECK_OK(mm_loss_cross_entropy(h, tx, t, N, &loss, tg));
            break;
        case MM_LOSS_BCE: {
            float yy[N * D] = {0};
            mm_tensor *tyy = wrap(yy, 2, N, D, 0);
            CHECK_OK(mm_loss_bce(h, tx, tyy, &loss, tg));
            mm_tensor_free(tyy);
            break;
        }
        default: {
            mm_tensor *f = wrap(x, 1, N, 0, 0), *gg = wrap(g, 1, N, 0, 0);
            CHECK_OK(mm_loss_kimi(h, f, f, f, &loss, gg));
            mm_tensor_free(f), mm_tensor_free(gg);
        }
        }
        CHECK_OK(mm_loss_l2_normalize(h, tx, tg));
        CHECK_OK(mm_loss_l2_normalize_backward(h, tx, ty, tg));
        CHECK_OK(mm_loss_flip_draw(h, N, 5, 2, keep));
        CHECK_OK(mm_loss_blip_hard_negatives(h, tsim, NULL, 0, keep));
        CHECK(c.n_alloc == before);
        mm_loss_free(h);
        CHECK(c.live_bytes == 0 && c.n_alloc == c.n_free && c.bad_free == 0);
    }
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tg), mm_tensor_free(tg2);
    mm_tensor_free(tsim);
}

/* Outputs over the raw index and length arrays are refused (MM_E_INVALID_ARG naming the pair):
 * before, flip_scatter zeroed a dx lying over keep and then scattered by the zeroed indices,
 * and cross_entropy, flip_gather, blip_hard_negatives and kimi_length_reward read indices or
 * lengths they had overwritten, all with MM_OK. */
static void test_index_overlap(void)
{
    float buf[64];
    int32_t *ib = (int32_t *)(void *)buf;
    int64_t lb[8];
    mm_loss *ce = make(MM_LOSS_CROSS_ENTROPY, 4, 8, 8, 1), *itc = make(MM_LOSS_ITC, 4, 8, 8, 1);
    mm_loss *km = make(MM_LOSS_KIMI, 8, 8, 8, 1);
    mm_tensor *z = NULL, *dz = wrap(buf, 2, 2, 4, 0), *x = NULL, *o = wrap(buf, 3, 1, 2, 2);
    mm_tensor *sim = wrap(buf, 2, 2, 2, 0), *r = NULL, *lo = wrap((float *)(void *)lb, 1, 8, 0, 0);
    float zd[8], xd[8], rd[8];
    int32_t keep[2] = {0, 1};
    double loss;
    mmt_fill_uniform(zd, 8, 131, -1, 1);
    mmt_fill_uniform(xd, 8, 132, -1, 1);
    z = wrap(zd, 2, 2, 4, 0), x = wrap(xd, 3, 1, 4, 2);
    for (int i = 0; i < 8; i++) rd[i] = (float)(i % 2), lb[i] = 10 + i;
    r = wrap(rd, 1, 8, 0, 0);
    ib[0] = 1, ib[1] = 2;
    CHECK_STATUS(mm_loss_cross_entropy(ce, z, ib, 2, &loss, dz), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(ce), "dlogits shares memory with targets") != NULL);
    ib[0] = 0, ib[1] = 1;
    CHECK_STATUS(mm_loss_flip_gather(itc, x, ib, 2, o), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(itc), "out shares memory with keep") != NULL);
    CHECK_OK(mm_loss_flip_gather(itc, x, keep, 2, o));
    ib[0] = 0, ib[1] = 1;
    {
        mm_tensor *dx = wrap(buf, 3, 1, 4, 2), *dout = wrap(rd, 3, 1, 2, 2);
        CHECK_STATUS(mm_loss_flip_scatter(itc, dout, ib, 2, dx), MM_E_INVALID_ARG);
        CHECK(strstr(mm_loss_errmsg(itc), "dx shares memory with keep") != NULL);
        mm_tensor_free(dx), mm_tensor_free(dout);
    }
    mmt_fill_uniform(buf, 4, 133, -1, 1);
    CHECK_STATUS(mm_loss_blip_hard_negatives(itc, sim, NULL, 0, ib), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(itc), "neg shares memory with sim") != NULL);
    CHECK_STATUS(mm_loss_kimi_length_reward(km, lb, r, 4, lo), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(km), "out shares memory with lengths") != NULL);
    mm_tensor_free(z), mm_tensor_free(dz), mm_tensor_free(x), mm_tensor_free(o);
    mm_tensor_free(sim), mm_tensor_free(r), mm_tensor_free(lo);
    mm_loss_free(ce), mm_loss_free(itc), mm_loss_free(km);
}

/* The double *loss of a compute call is stored after every input was read and every gradient
 * written: inside an input it gives the same loss and gradients (bitwise) as a separate
 * double; inside a gradient output it is refused (before: MM_OK with that gradient's first
 * two floats replaced by the loss). */
static void test_scalar_overlap(void)
{
    double zs[4], ds[4], xs[16], ys[16], dxs[16], dys[16], ks[4], kd[4], lref, l2;
    float *zf = (float *)(void *)zs, *df = (float *)(void *)ds, dref[8], dxr[32], dyr[32];
    float *xf = (float *)(void *)xs, *yf = (float *)(void *)ys, kr[8];
    int32_t tg[2] = {1, 3};
    mm_loss *ce = make(MM_LOSS_CROSS_ENTROPY, 4, 8, 8, 1), *cl = make(MM_LOSS_CLIP, 4, 8, 8, 1);
    mm_loss *sg = make(MM_LOSS_SIGLIP, 4, 8, 8, 1), *km = make(MM_LOSS_KIMI, 8, 8, 8, 1);
    mm_loss *bc = make(MM_LOSS_BCE, 4, 8, 8, 1), *it = make(MM_LOSS_ITC, 4, 8, 8, 1);
    mm_tensor *z = wrap(zf, 2, 2, 4, 0), *dz = wrap(df, 2, 2, 4, 0);
    mm_tensor *x = wrap(xf, 2, 4, 8, 0), *y = wrap(yf, 2, 4, 8, 0);
    mm_tensor *dx = wrap((float *)(void *)dxs, 2, 4, 8, 0),
              *dy = wrap((float *)(void *)dys, 2, 4, 8, 0);
    mm_tensor *lp = NULL, *lo = NULL, *rw = NULL, *dlp = wrap((float *)(void *)kd, 1, 8, 0, 0);
    float lpd[8], lod[8];
    /* cross entropy: loss over the logits */
    mmt_fill_uniform(zf, 8, 141, -1, 1);
    CHECK_OK(mm_loss_cross_entropy(ce, z, tg, 2, &lref, dz));
    memcpy(dref, df, sizeof dref);
    memset(df, 0, sizeof dref);
    CHECK_OK(mm_loss_cross_entropy(ce, z, tg, 2, &zs[1], dz));
    CHECK(zs[1] == lref);
    CHECK(memcmp(df, dref, sizeof dref) == 0);
    mmt_fill_uniform(zf, 8, 141, -1, 1);
    CHECK_STATUS(mm_loss_cross_entropy(ce, z, tg, 2, &ds[2], dz), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(ce), "loss shares memory with dlogits") != NULL);
    CHECK_STATUS(mm_loss_bce(bc, z, z, &ds[0], dz), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(bc), "loss shares memory with dlogits") != NULL);
    /* CLIP: loss over x, then over dy */
    mmt_fill_uniform(xf, 32, 142, -0.5f, 0.5f);
    mmt_fill_uniform(yf, 32, 143, -0.5f, 0.5f);
    CHECK_OK(mm_loss_clip(cl, x, y, &lref, dx, dy));
    memcpy(dxr, dxs, sizeof dxr), memcpy(dyr, dys, sizeof dyr);
    CHECK_OK(mm_loss_clip(cl, x, y, &xs[5], dx, dy));
    CHECK(xs[5] == lref);
    CHECK(memcmp(dxs, dxr, sizeof dxr) == 0 && memcmp(dys, dyr, sizeof dyr) == 0);
    mmt_fill_uniform(xf, 32, 142, -0.5f, 0.5f);
    CHECK_STATUS(mm_loss_clip(cl, x, y, &dys[15], dx, dy), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(cl), "loss shares memory with dy") != NULL);
    CHECK_STATUS(mm_loss_siglip(sg, x, y, &dxs[0], dx, NULL), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(sg), "loss shares memory with dx") != NULL);
    CHECK_STATUS(mm_loss_itc(it, x, y, x, y, NULL, NULL, &dys[3], dx, dy), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(it), "loss shares memory with d_txt") != NULL);
    /* Kimi: loss over the rewards, then over dlogp */
    mmt_fill_uniform(lpd, 8, 144, -2, 0);
    mmt_fill_uniform(lod, 8, 145, -2, 0);
    mmt_fill_uniform((float *)(void *)ks, 8, 146, 0, 1);
    memcpy(kr, ks, sizeof kr);
    lp = wrap(lpd, 1, 8, 0, 0), lo = wrap(lod, 1, 8, 0, 0),
    rw = wrap((float *)(void *)ks, 1, 8, 0, 0);
    CHECK_OK(mm_loss_kimi(km, lp, lo, rw, &lref, dlp));
    memcpy(dref, kd, sizeof dref);
    CHECK_OK(mm_loss_kimi(km, lp, lo, rw, &ks[3], dlp));
    CHECK(ks[3] == lref);
    CHECK(memcmp(kd, dref, sizeof dref) == 0);
    memcpy(ks, kr, sizeof kr);
    CHECK_STATUS(mm_loss_kimi(km, lp, lo, rw, &kd[1], dlp), MM_E_INVALID_ARG);
    CHECK(strstr(mm_loss_errmsg(km), "loss shares memory with dlogp") != NULL);
    CHECK_OK(mm_loss_kimi(km, lp, lo, rw, &l2, NULL)); /* no gradient: nothing to refuse */
    CHECK(l2 == lref);
    mm_tensor_free(z), mm_tensor_free(dz), mm_tensor_free(x), mm_tensor_free(y);
    mm_tensor_free(dx), mm_tensor_free(dy), mm_tensor_free(lp), mm_tensor_free(lo);
    mm_tensor_free(rw), mm_tensor_free(dlp);
    mm_loss_free(ce), mm_loss_free(cl), mm_loss_free(sg), mm_loss_free(km), mm_loss_free(bc);
    mm_loss_free(it);
}

void suite_loss(void)
{
    mmt_run("loss_opts_and_create", test_opts_and_create);
    mmt_run("loss_params", test_params);
    mmt_run("loss_index_overlap", test_index_overlap);
    mmt_run("loss_scalar_overlap", test_scalar_overlap);
    mmt_run("loss_clip_reference", test_clip_reference);
    mmt_run("loss_siglip_reference", test_siglip_reference);
    mmt_run("loss_tiled_vs_untiled", test_tiled_vs_untiled);
    mmt_run("loss_pair_partial_grads", test_pair_partial_grads);
    mmt_run("loss_pair_scale_options", test_pair_scale_options);
    mmt_run("loss_pytorch_vectors", test_pytorch_vectors);
    mmt_run("loss_itc_reference", test_itc_reference);
    mmt_run("loss_cross_entropy_reference", test_cross_entropy_reference);
    mmt_run("loss_bce_reference", test_bce_reference);
    mmt_run("loss_kimi_reference", test_kimi_reference);
    mmt_run("loss_l2_normalize", test_l2_normalize);
    mmt_run("loss_flip_masking", test_flip_masking);
    mmt_run("loss_blip_hard_negatives", test_blip_hard_negatives);
    mmt_run("loss_kimi_length_reward", test_kimi_length_reward);
    mmt_run("loss_misuse", test_misuse);
    mmt_run("loss_misuse_rows", test_misuse_rows);
    mmt_run("loss_itc_tiles_and_threads", test_itc_tiles_and_threads);
    mmt_run("loss_threads_bitwise", test_threads_bitwise);
    mmt_run("loss_tile_gemm_paths", test_tile_gemm_paths);
    mmt_run("loss_pair_every_path", test_pair_every_path);
    mmt_run("loss_tile_ops_avx2", test_tile_ops_avx2);
    mmt_run("loss_tile_ops_tails", test_tile_ops_tails);
    mmt_run("loss_tile_ops_avx512", test_tile_ops_avx512);
    mmt_run("loss_memory_contract", test_memory_contract);
}
