/* SPDX-License-Identifier: MIT */
/* loss_helper_kernels.c — the small kernels around the image-text losses: row-wise L2
 * normalisation and its backward (two eps conventions), FLIP patch masking (draw, gather,
 * scatter) and BLIP's hard-negative sampling. */
#include "mmi_loss_kernels.h"

#include <math.h>
#include <string.h>

static double row_norm(const float *u, int64_t d)
{
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) s += (double)u[j] * (double)u[j];
    return sqrt(s);
}

/* The divisor of a row with norm nrm: max(nrm, eps) (mode 0) or nrm + eps (mode 1). */
static double norm_den(double nrm, double eps, int mode)
{
    if (mode == 1) return nrm + eps;
    return nrm > eps ? nrm : eps;
}

void mmi_l2norm_fwd(const float *u, int64_t n, int64_t d, double eps, int mode, float *x)
{
    MMI_ASSERT(n >= 0 && d > 0 && (n == 0 || (u && x)));
    for (int64_t i = 0; i < n; i++) {
        double den = norm_den(row_norm(u + i * d, d), eps, mode);
        /* den == 0 only for a zero row with eps == 0: keep it zero instead of NaN. */
        double inv = den > 0.0 ? 1.0 / den : 0.0;
        for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)((double)u[i * d + j] * inv);
    }
}

void mmi_l2norm_bwd(const float *u, const float *dx, int64_t n, int64_t d, double eps, int mode,
                    float *du)
{
    MMI_ASSERT(n >= 0 && d > 0 && (n == 0 || (u && dx && du)));
    for (int64_t i = 0; i < n; i++) {
        const float *ui = u + i * d, *gi = dx + i * d;
        double nrm = row_norm(ui, d), den = norm_den(nrm, eps, mode), dot = 0.0, inv, k;
        for (int64_t j = 0; j < d; j++) dot += (double)ui[j] * (double)gi[j];
        inv = den > 0.0 ? 1.0 / den : 0.0;
        /* x = u / den(|u|):  du = dx / den - u (u.dx) den'(|u|) / (|u| den^2), with den' = 1
         * when the norm term is active (mode 1 always, mode 0 above eps) and 0 when clamped. */
        if (nrm > 0.0 && (mode == 1 || nrm > eps))
            k = dot / (nrm * den * den);
        else
            k = 0.0;
        for (int64_t j = 0; j < d; j++)
            du[i * d + j] = (float)((double)gi[j] * inv - (double)ui[j] * k);
    }
}

void mmi_patch_draw(mmi_rng *rng, int64_t b, int64_t l, int64_t k, int32_t *keep)
{
    for (int64_t r = 0; r < b; r++) {
        int32_t *row = keep + r * k;
        /* Floyd: a uniformly random k-subset of [0, l) in k draws, membership by scan. */
        for (int64_t j = l - k, c = 0; j < l; j++, c++) {
            int32_t t = (int32_t)mmi_rng_below(rng, (uint64_t)j + 1), seen = 0;
            for (int64_t q = 0; q < c; q++)
                if (row[q] == t) {
                    seen = 1;
                    break;
                }
            row[c] = seen ? (int32_t)j : t;
        }
        /* Fisher-Yates: the kept patches in uniformly random order, as FLIP's argsort. */
        for (int64_t j = k - 1; j > 0; j--) {
            int64_t q = (int64_t)mmi_rng_below(rng, (uint64_t)j + 1);
            int32_t tmp = row[j];
            row[j] = row[q];
            row[q] = tmp;
        }
    }
}

void mmi_patch_gather(const float *x, const int32_t *keep, int64_t b, int64_t l, int64_t k,
                      int64_t d, float *out)
{
    MMI_ASSERT(b >= 0 && l > 0 && k >= 0 && k <= l && d > 0 && x && keep && out);
    for (int64_t r = 0; r < b; r++)
        for (int64_t j = 0; j < k; j++)
            memcpy(out + (r * k + j) * d, x + (r * l + keep[r * k + j]) * d,
                   (size_t)d * sizeof(float));
}

void mmi_patch_scatter(const float *dout, const int32_t *keep, int64_t b, int64_t l, int64_t k,
                       int64_t d, float *dx)
{
    MMI_ASSERT(b >= 0 && l > 0 && k >= 0 && k <= l && d > 0 && dout && keep && dx);
    memset(dx, 0, (size_t)(b * l * d) * sizeof(float));
    for (int64_t r = 0; r < b; r++)
        for (int64_t j = 0; j < k; j++) {
            float *dst = dx + (r * l + keep[r * k + j]) * d;
            const float *src = dout + (r * k + j) * d;
            for (int64_t q = 0; q < d; q++) dst[q] += src[q];
        }
}

/* Draws one index with probability proportional to w[0..n) (total > 0). */
static int32_t draw_weighted(mmi_rng *rng, const double *w, int64_t n, double total)
{
    double u = mmi_rng_uniform(rng) * total, c = 0.0;
    int64_t last = -1;
    for (int64_t j = 0; j < n; j++) {
        if (w[j] <= 0.0) continue;
        c += w[j];
        last = j;
        if (u < c) return (int32_t)j;
    }
    return (int32_t)last; /* rounding left u at the very top */
}

void mmi_blip_hard_negatives(const float *sim, int64_t ld, int64_t n, const int64_t *ids,
                             int by_column, mmi_rng *rng, double *w, int32_t *neg)
{
    MMI_ASSERT(n > 0 && ld >= n && sim && rng && w && neg);
    /* element (i, j) of the matrix sampled from: row i's candidates j */
    int64_t si = by_column ? 1 : ld, sj = by_column ? ld : 1;
    for (int64_t i = 0; i < n; i++) {
        const float *row = sim + i * si;
        double m = (double)row[0], z = 0.0, total = 0.0;
        int64_t cands = 0;
        for (int64_t j = 1; j < n; j++) m = (double)row[j * sj] > m ? (double)row[j * sj] : m;
        for (int64_t j = 0; j < n; j++) z += (w[j] = exp((double)row[j * sj] - m));
        for (int64_t j = 0; j < n; j++) {
            int pos = ids ? ids[j] == ids[i] : j == i;
            /* softmax over the whole row (positive included), + 1e-4 in pretraining, then the
             * positives zeroed: BLIP's weights_t2i / weights_i2t */
            w[j] = pos ? 0.0 : w[j] / z + (ids ? 0.0 : 1e-4);
            if (!pos) cands++;
            total += w[j];
        }
        if (cands == 0) {
            neg[i] = -1;
        } else if (total > 0.0) {
            neg[i] = draw_weighted(rng, w, n, total);
        } else { /* every candidate underflowed: uniform among them */
            int64_t pick = (int64_t)mmi_rng_below(rng, (uint64_t)cands);
            for (int64_t j = 0; j < n; j++) {
                int pos = ids ? ids[j] == ids[i] : j == i;
                if (!pos && pick-- == 0) {
                    neg[i] = (int32_t)j;
                    break;
                }
            }
        }
    }
}
