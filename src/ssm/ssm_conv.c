/* SPDX-License-Identifier: MIT */
/* ssm_conv.c — mm_ssm_conv and its backward for S4D and S4 handles: the causal convolution
 * y = K * u + D u by real FFT of length nf = next power of two >= 2L (exact linear convolution on
 * [0, L)), and du = K (*) dy (correlation), dK = sum_b dy (*) u, dD = sum dy u (docs/SSM.md §mm_ssm_conv). */
#include "mmi_ssm.h"

#include <string.h>

static int check_conv(mm_ssm *h, const char *fn, const mm_tensor *u, const mm_tensor *k,
                      const mm_tensor *d, int64_t *Bt, int64_t *L)
{
    int rc;
    if (h->kind != MM_SSM_S4D && h->kind != MM_SSM_S4)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: S4D and S4 handles only", fn);
    if (!u || u->ndim != 3 || u->shape[1] != h->D)
        return mmi_ssm_want(h, fn, "u", u, 3,
                            (int64_t[3]){u && u->ndim == 3 ? u->shape[0] : 1, h->D,
                                         u && u->ndim == 3 ? u->shape[2] : 1});
    *Bt = u->shape[0], *L = u->shape[2];
    if ((rc = mmi_ssm_check_bl(h, fn, *Bt, *L)) ||
        (rc = mmi_ssm_want(h, fn, "k", k, 2, (int64_t[2]){h->D, *L})) ||
        (d && (rc = mmi_ssm_want(h, fn, "d", d, 1, (int64_t[1]){h->D}))))
        return rc;
    return MM_OK;
}

MM_API int mm_ssm_conv(mm_ssm *h, const mm_tensor *u, const mm_tensor *k, const mm_tensor *d,
                       mm_tensor *y)
{
    static const char fn[] = "mm_ssm_conv";
    int64_t Bt, L, nf, H;
    double *tw, *kf, *buf;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_conv(h, fn, u, k, d, &Bt, &L)) ||
        (rc = mmi_ssm_want(h, fn, "y", y, 3, u->shape)))
        return rc;
    {
        /* y over any part of u, k or d is read back after it is written (each row of y
         * reads its row of u again for the skip term). */
        const mm_tensor *t[4] = {u, k, d, y};
        static const char *const name[4] = {"u", "k", "d", "y"};
        if ((rc = mmi_ssm_apart(h, fn, 4, t, name, 3)) != MM_OK) return rc;
    }
    H = h->D, nf = mmi_fft_size(2 * L);
    tw = h->ws.fft, kf = tw + h->nfft, buf = kf + 2 * h->nfft;
    for (int64_t c = 0; c < H; c++) {
        mmi_ssm_rfft(nf, k->data + c * L, L, tw, h->nfft, kf);
        for (int64_t b = 0; b < Bt; b++) {
            const float *ur = u->data + (b * H + c) * L;
            float *yr = y->data + (b * H + c) * L;
            mmi_ssm_conv_row(L, nf, tw, h->nfft, kf, ur, yr, buf);
            if (d)
                for (int64_t t = 0; t < L; t++) yr[t] += d->data[c] * ur[t];
        }
    }
    return MM_OK;
}

MM_API int mm_ssm_conv_backward(mm_ssm *h, const mm_tensor *u, const mm_tensor *k,
                                const mm_tensor *d, const mm_tensor *dy, mm_tensor *du,
                                mm_tensor *dk, mm_tensor *dd)
{
    static const char fn[] = "mm_ssm_conv_backward";
    int64_t Bt, L, nf, H;
    double *tw, *kf, *gf, *acc, *tmp;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_conv(h, fn, u, k, d, &Bt, &L)) ||
        (rc = mmi_ssm_want(h, fn, "dy", dy, 3, u->shape)) ||
        (du && (rc = mmi_ssm_want(h, fn, "du", du, 3, u->shape))) ||
        (dk && (rc = mmi_ssm_want(h, fn, "dk", dk, 2, k->shape))) ||
        (dd && (rc = mmi_ssm_grad_like(h, fn, "dd", dd, d))))
        return rc;
    {
        /* du over dy left dd summing the overwritten dy; du over u left dk and dd wrong. */
        const mm_tensor *t[7] = {u, k, d, dy, du, dk, dd};
        static const char *const name[7] = {"u", "k", "d", "dy", "du", "dk", "dd"};
        if ((rc = mmi_ssm_apart(h, fn, 7, t, name, 4)) != MM_OK) return rc;
    }
    H = h->D, nf = mmi_fft_size(2 * L);
    tw = h->ws.fft, kf = tw + h->nfft, gf = kf + 2 * h->nfft, acc = gf + 2 * h->nfft;
    tmp = acc + 2 * h->nfft;
    for (int64_t c = 0; c < H; c++) {
        double sdd = 0.0;
        mmi_ssm_rfft(nf, k->data + c * L, L, tw, h->nfft, kf);
        memset(acc, 0, (size_t)(2 * nf) * sizeof *acc);
        for (int64_t b = 0; b < Bt; b++) {
            const float *ur = u->data + (b * H + c) * L, *g = dy->data + (b * H + c) * L;
            mmi_ssm_rfft(nf, g, L, tw, h->nfft, gf);
            if (du) {
                float *o = du->data + (b * H + c) * L;
                mmi_ssm_xcorr(nf, tw, h->nfft, gf, kf, tmp);
                for (int64_t t = 0; t < L; t++)
                    o[t] = (float)tmp[t] + (d ? d->data[c] * g[t] : 0.0f);
            }
            if (dk) { /* sum_b G conj(U) in the frequency domain, one inverse FFT at the end */
                mmi_ssm_rfft(nf, ur, L, tw, h->nfft, tmp);
                for (int64_t i = 0; i <= nf / 2; i++) {
                    double ar = gf[2 * i], ai = gf[2 * i + 1], br = tmp[2 * i],
                           bi = -tmp[2 * i + 1];
                    acc[2 * i] += ar * br - ai * bi;
                    acc[2 * i + 1] += ar * bi + ai * br;
                }
            }
            for (int64_t t = 0; t < L && dd; t++) sdd += (double)g[t] * ur[t];
        }
        if (dk) {
            mmi_ssm_irfft(nf, acc, tw, h->nfft);
            for (int64_t l = 0; l < L; l++) dk->data[c * L + l] = (float)acc[l];
        }
        if (dd) dd->data[c] = (float)sdd;
    }
    return MM_OK;
}
