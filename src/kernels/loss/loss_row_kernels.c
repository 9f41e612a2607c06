/* SPDX-License-Identifier: MIT */
/* loss_row_kernels.c — the losses that act row by row: softmax cross entropy with label
 * smoothing (PyTorch's formula), multi-label BCE (CatLIP), and the Kimi k1.5 surrogate with its
 * length reward. */
#include "mmi_loss_kernels.h"

#include <math.h>

double mmi_loss_ce_rows(const float *z, const int32_t *target, int64_t n, int64_t c, double eps,
                        int32_t ignore, int64_t n_valid, double grad_scale, float *dz)
{
    MMI_ASSERT(n >= 0 && c > 0 && (n == 0 || (z && target)));
    const mmi_loss_tile_ops *ops = mmi_loss_tile_ops_get();
    double total = 0.0, k = n_valid > 0 ? grad_scale / (double)n_valid : 0.0;
    double eps_c = eps / (double)c;
    for (int64_t r = 0; r < n; r++) {
        const float *zr = z + r * c;
        float *dr = dz ? dz + r * c : NULL;
        double sum_e, sum_z = 0.0, unused = 0.0, lse;
        float m;
        int32_t t = target[r];
        if (t == ignore) {
            if (dr)
                for (int64_t j = 0; j < c; j++) dr[j] = 0.0f;
            continue;
        }
        m = ops->row_max(zr, c);
        sum_e = ops->row_expsum(zr, zr, c, m, &unused);
        lse = (double)m + log(sum_e);
        for (int64_t j = 0; j < c; j++) sum_z += (double)zr[j];
        /* (1 - eps)(lse - z_t) + (eps / C)(C lse - sum_c z_c) */
        total += lse - (1.0 - eps) * (double)zr[t] - eps_c * sum_z;
        if (dr) {
            for (int64_t j = 0; j < c; j++) dr[j] = (float)(k * (exp((double)zr[j] - lse) - eps_c));
            dr[t] -= (float)(k * (1.0 - eps));
        }
    }
    return total;
}

double mmi_loss_bce_sum(const float *z, const float *y, int64_t count, double grad_scale, float *dz)
{
    MMI_ASSERT(count >= 0 && (count == 0 || (z && y)));
    return mmi_loss_tile_ops_get()->bce(z, y, count, (float)grad_scale, dz);
}

/* The group's estimate of tau log Z: the mean reward, or tau log mean exp(r / tau)
 * (max-shifted). */
static double kimi_baseline(const float *r, int64_t k, double tau, int mode)
{
    double s = 0.0, m;
    if (mode == 0) {
        for (int64_t j = 0; j < k; j++) s += (double)r[j];
        return s / (double)k;
    }
    m = (double)r[0];
    for (int64_t j = 1; j < k; j++) m = (double)r[j] > m ? (double)r[j] : m;
    for (int64_t j = 0; j < k; j++) s += exp(((double)r[j] - m) / tau);
    return m + tau * log(s / (double)k);
}

double mmi_loss_kimi(const float *lp, const float *lp_old, const float *r, int64_t n, int64_t k,
                     double tau, int baseline, double grad_scale, float *dlp)
{
    MMI_ASSERT(n > 0 && k > 0 && n % k == 0 && lp && lp_old && r);
    double total = 0.0, g = -2.0 * tau * grad_scale / (double)n;
    for (int64_t g0 = 0; g0 < n; g0 += k) {
        double rbar = kimi_baseline(r + g0, k, tau, baseline);
        for (int64_t j = g0; j < g0 + k; j++) {
            double e = (double)r[j] - rbar - tau * ((double)lp[j] - (double)lp_old[j]);
            total += e * e;
            if (dlp) dlp[j] = (float)(g * e);
        }
    }
    return total / (double)n;
}

void mmi_kimi_length_reward(const int64_t *len, const float *r, int64_t n, int64_t k, float *out)
{
    for (int64_t g0 = 0; g0 < n; g0 += k) {
        int64_t lo = len[g0], hi = len[g0];
        for (int64_t j = g0 + 1; j < g0 + k; j++) {
            lo = len[j] < lo ? len[j] : lo;
            hi = len[j] > hi ? len[j] : hi;
        }
        for (int64_t j = g0; j < g0 + k; j++) {
            double lam = hi == lo ? 0.0 : 0.5 - (double)(len[j] - lo) / (double)(hi - lo);
            int correct = r[j] > 0.5f; /* read before out[j] (which may be r[j]) is written */
            out[j] = (float)(correct ? lam : (lam < 0.0 ? lam : 0.0));
        }
    }
}
