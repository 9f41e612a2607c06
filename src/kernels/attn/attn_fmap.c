/* SPDX-License-Identifier: MIT */
/* attn_fmap.c — the feature maps of linear attention: the elementwise maps elu(x)+1, relu(x),
 * identity (fast-transformers, FLA), and FAVOR+ positive random features (Performer). Their
 * backward passes turn gradients with respect to features into gradients with respect to the
 * raw queries and keys. */
#include "mmi_attn_kernels.h"

#include <math.h>
#include <string.h>

void mmi_attn_fmap_fwd(int32_t fmap, const float *x, float *y, int64_t n)
{
    const mmi_attn_isa *v = mmi_attn_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (x && y)));
    switch (fmap) {
    case MM_FMAP_ELU1:
        if (v && v->elu1(n, x, y)) break;
        /* exp over the whole block with the vector exponential, then the positive side; y
         * may alias x, so the exponentials go through y only where x <= 0 is kept */
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
            float e[256];
            const int64_t m = n - i0 < 256 ? n - i0 : 256;
            (void)mmi_attn_exp_sub(m, x + i0, 0.0f, e);
            for (int64_t i = 0; i < m; i++) y[i0 + i] = x[i0 + i] > 0.0f ? x[i0 + i] + 1.0f : e[i];
        }
        break;
    case MM_FMAP_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    default:
        if (y != x) memcpy(y, x, sizeof(float) * (size_t)n);
        break;
    }
}

void mmi_attn_fmap_bwd(int32_t fmap, const float *y, const float *dy, float *dx, int64_t n)
{
    const mmi_attn_isa *v = mmi_attn_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (y && dy && dx)));
    switch (fmap) {
    case MM_FMAP_ELU1: /* phi' = 1 for x > 0 (phi > 1), e^x = phi otherwise */
        if (v && v->elu1_bwd(n, y, dy, dx)) break;
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] > 1.0f ? 1.0f : y[i]);
        break;
    case MM_FMAP_RELU:
        for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    default:
        if (dx != dy) memcpy(dx, dy, sizeof(float) * (size_t)n);
        break;
    }
}

/* u = W xh for one row (xh = c x written into xh), returns |xh|^2 / 2. */
static double favor_proj(const float *x, int64_t d, const float *wt, int64_t nf, float *u,
                         float *xh)
{
    const double c = pow((double)d, -0.25);
    double sq = 0.0;
    for (int64_t e = 0; e < d; e++) {
        xh[e] = (float)(c * x[e]);
        sq += (double)xh[e] * xh[e];
    }
    mmi_attn_rowmat(nf, d, xh, wt, nf, 1.0f, u);
    return 0.5 * sq;
}

void mmi_attn_favor_fwd(const float *x, int64_t rows, int64_t d, const float *wt, int64_t nf,
                        double eps, int stab_mode, float stab, float *y, float *ws)
{
    MMI_ASSERT(rows >= 0 && d > 0 && nf > 0 && x && wt && y && ws);
    const float norm = (float)(1.0 / sqrt((double)nf)), e = (float)eps;
    float *u = ws, *xh = ws + nf;
    for (int64_t i = 0; i < rows; i++) {
        const double diag = favor_proj(x + i * d, d, wt, nf, u, xh);
        float *yi = y + i * nf, st = stab;
        if (stab_mode == 0) {
            st = -INFINITY;
            for (int64_t r = 0; r < nf; r++) st = u[r] > st ? u[r] : st;
        }
        /* arguments are <= 0 for queries (row max) and normally for keys: vector exp */
        (void)mmi_attn_exp_sub(nf, u, (float)(diag + st), yi);
        for (int64_t r = 0; r < nf; r++) yi[r] = norm * (yi[r] + e);
    }
}

float mmi_attn_favor_max(const float *x, int64_t rows, int64_t d, const float *wt, int64_t nf,
                         float *ws)
{
    MMI_ASSERT(rows >= 0 && d > 0 && nf > 0 && x && wt && ws);
    float *u = ws, *xh = ws + nf, mx = -INFINITY;
    for (int64_t i = 0; i < rows; i++) {
        (void)favor_proj(x + i * d, d, wt, nf, u, xh);
        for (int64_t r = 0; r < nf; r++) mx = u[r] > mx ? u[r] : mx;
    }
    return mx;
}

void mmi_attn_favor_bwd(const float *x, int64_t rows, int64_t d, const float *w, int64_t nf,
                        double eps, const float *y, const float *dy, float *dx, float *ws)
{
    MMI_ASSERT(rows >= 0 && d > 0 && nf > 0 && x && w && y && dy && dx && ws);
    const double c = pow((double)d, -0.25), e0 = eps / sqrt((double)nf);
    float *g = ws;
    for (int64_t i = 0; i < rows; i++) {
        const float *yi = y + i * nf, *gi = dy + i * nf, *xi = x + i * d;
        float *dxi = dx + i * d;
        double tot = 0.0;
        for (int64_t r = 0; r < nf; r++) {
            g[r] = (float)(gi[r] * (yi[r] - e0));
            tot += g[r];
        }
        /* dx = c W^T g - c^2 x sum(g) */
        memset(dxi, 0, sizeof(float) * (size_t)d);
        mmi_attn_matrow_acc(nf, d, g, w, d, dxi);
        for (int64_t e = 0; e < d; e++) dxi[e] = (float)(c * dxi[e] - c * c * xi[e] * tot);
    }
}
