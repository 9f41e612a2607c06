/* SPDX-License-Identifier: MIT */
/* layer_norm.c — LayerNorm and RMSNorm over the last axis (torch.nn.LayerNorm / nn.RMSNorm).
 * Row statistics are computed in float64 and the per-row mean and 1/std are kept from forward
 * for backward and jvp; parameter-gradient sums over the batch are float64 too. */
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: rows = B x T, d = in_dim (the normalised axis); weight and bias [d]. */

#define AFFINE(l) ((l)->icfg[0] != 0)
#define EPS(l)    ((l)->dcfg[0])
#define IS_LN(l)  ((l)->vt->kind == MMI_LAYER_LAYERNORM)

static int norm_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    int64_t d = l->in_dim;
    if (l->n_icfg != 1 || l->n_dcfg != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: norm config needs 1 integer and 1 double", fn);
    if (l->icfg[0] != 0 && l->icfg[0] != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: affine must be 0 or 1, got %lld", fn,
                        (long long)l->icfg[0]);
    if (!(EPS(l) > 0.0 && EPS(l) <= 1.0))
        return mmi_fail(e, MM_E_RANGE, "%s: eps = %g is outside (0, 1]", fn, EPS(l));
    l->out_dim = d;
    l->n_tensors = 0;
    l->n_params = 0;
    l->init_work = 0;
    memset(l->tensors, 0, sizeof l->tensors);
    if (AFFINE(l)) {
        int32_t nt = IS_LN(l) ? 2 : 1;
        for (int32_t t = 0; t < nt; t++) {
            strcpy(l->tensors[t].name, t == 0 ? "weight" : "bias");
            l->tensors[t].ndim = 1;
            l->tensors[t].shape[0] = d;
            l->tensors[t].numel = d;
            l->tensors[t].offset = t * d;
        }
        l->n_tensors = nt;
        l->n_params = nt * d;
    }
    return MM_OK;
}

static void norm_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                       size_t *scratch, int *gemm_ws)
{
    *gemm_ws = 0;
    /* saved: mean and 1/std per row (RMSNorm keeps the mean slot at 0 to share the code). */
    *saved = (size_t)batch * (size_t)seq * 2 * sizeof(double);
    *scratch = (size_t)l->in_dim * 2 * sizeof(double);
}

static void norm_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    int64_t d = l->in_dim;
    (void)rng;
    (void)work;
    if (!AFFINE(l)) return;
    for (int64_t i = 0; i < d; i++) p[i] = 1.0f;
    if (IS_LN(l))
        for (int64_t i = 0; i < d; i++) p[d + i] = 0.0f;
}

/* Row statistics: mean (0 for RMSNorm) and r = 1/sqrt(var + eps) (mean square for RMSNorm). */
static void row_stats(const mmi_layer *l, const float *x, double *mean, double *r)
{
    int64_t d = l->in_dim;
    double mu = 0.0, ss = 0.0;
    if (IS_LN(l)) {
        for (int64_t i = 0; i < d; i++) mu += x[i];
        mu /= (double)d;
    }
    for (int64_t i = 0; i < d; i++) {
        double t = (double)x[i] - mu;
        ss += t * t;
    }
    *mean = mu;
    *r = 1.0 / sqrt(ss / (double)d + EPS(l));
}

static int norm_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                        float *y, void *saved, void *scratch)
{
    int64_t d = l->in_dim;
    double *st = (double *)saved;
    const float *w = AFFINE(l) ? p : NULL, *b = AFFINE(l) && IS_LN(l) ? p + d : NULL;
    (void)scratch;
    for (int64_t row = 0; row < c->rows; row++, x += d, y += d) {
        double mu, r;
        row_stats(l, x, &mu, &r);
        if (st) {
            st[2 * row] = mu;
            st[2 * row + 1] = r;
        }
        for (int64_t i = 0; i < d; i++) {
            double h = ((double)x[i] - mu) * r;
            if (w) h *= (double)w[i];
            if (b) h += (double)b[i];
            y[i] = (float)h;
        }
    }
    return MM_OK;
}

static void norm_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                          const float *y, const void *saved, const float *dy, float *dx, float *g,
                          void *scratch)
{
    int64_t d = l->in_dim;
    const double *st = (const double *)saved;
    const float *w = AFFINE(l) ? p : NULL;
    double *gw = (double *)scratch, *gb = gw + d;
    int ln = IS_LN(l), want_g = g && AFFINE(l);
    (void)y;
    if (want_g) memset(gw, 0, 2 * (size_t)d * sizeof(double));
    for (int64_t row = 0; row < c->rows; row++, x += d, dy += d) {
        double mu = st[2 * row], r = st[2 * row + 1], sg = 0.0, sgh = 0.0;
        /* g_i = dy_i w_i; dx = r (g - mean(g) - xhat mean(g xhat)), mean(g) only for LN. */
        for (int64_t i = 0; i < d; i++) {
            double h = ((double)x[i] - mu) * r, gi = (double)dy[i] * (w ? (double)w[i] : 1.0);
            sg += gi;
            sgh += gi * h;
            if (want_g) {
                gw[i] += (double)dy[i] * h;
                gb[i] += (double)dy[i];
            }
        }
        if (!dx) continue;
        sg = ln ? sg / (double)d : 0.0;
        sgh /= (double)d;
        for (int64_t i = 0; i < d; i++) {
            double h = ((double)x[i] - mu) * r, gi = (double)dy[i] * (w ? (double)w[i] : 1.0);
            dx[row * d + i] = (float)(r * (gi - sg - h * sgh));
        }
    }
    if (want_g) {
        for (int64_t i = 0; i < d; i++) g[i] += (float)gw[i];
        if (ln)
            for (int64_t i = 0; i < d; i++) g[d + i] += (float)gb[i];
    }
}

static void norm_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                     const float *x, const float *tx, const float *y, const void *saved, float *ty,
                     void *scratch)
{
    int64_t d = l->in_dim;
    const double *st = (const double *)saved;
    const float *w = AFFINE(l) ? p : NULL;
    const float *vw = AFFINE(l) ? v : NULL, *vb = AFFINE(l) && IS_LN(l) ? v + d : NULL;
    int ln = IS_LN(l);
    (void)y;
    (void)scratch;
    for (int64_t row = 0; row < c->rows; row++, x += d, ty += d) {
        double mu = st[2 * row], r = st[2 * row + 1], st_ = 0.0, sth = 0.0;
        const float *t = tx ? tx + row * d : NULL;
        /* t_hat = r (t - mean(t) - xhat mean(xhat t)); ty = t_hat w + xhat vw + vb. */
        if (t) {
            for (int64_t i = 0; i < d; i++) {
                double h = ((double)x[i] - mu) * r;
                st_ += (double)t[i];
                sth += h * (double)t[i];
            }
            st_ = ln ? st_ / (double)d : 0.0;
            sth /= (double)d;
        }
        for (int64_t i = 0; i < d; i++) {
            double h = ((double)x[i] - mu) * r, o = 0.0;
            if (t) o = r * ((double)t[i] - st_ - h * sth) * (w ? (double)w[i] : 1.0);
            if (vw) o += h * (double)vw[i];
            if (vb) o += (double)vb[i];
            ty[i] = (float)o;
        }
    }
}

const mmi_layer_vt mmi_layer_layernorm_vt = {
    "layernorm", MMI_LAYER_LAYERNORM, norm_setup,    norm_sizes,
    norm_init,   norm_forward,        norm_backward, norm_jvp,
};

const mmi_layer_vt mmi_layer_rmsnorm_vt = {
    "rmsnorm", MMI_LAYER_RMSNORM, norm_setup,    norm_sizes,
    norm_init, norm_forward,      norm_backward, norm_jvp,
};
