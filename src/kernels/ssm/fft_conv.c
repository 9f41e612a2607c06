/* SPDX-License-Identifier: MIT */
/* fft_conv.c — the causal convolution and cross-correlation of real sequences by real FFT
 * (fft.c), as FFTConv and the minimal S4D compute y = irfft(rfft(u, n) rfft(K, n), n)[:L]
 * (docs/SSM.md §mm_ssm_conv). With n >= 2L the circular convolution equals the linear one on [0, L).
 * All in float64. */
#include "mmi_ssm_kernels.h"

void mmi_ssm_conv_row(int64_t L, int64_t nf, const double *tw, int64_t tw_n, const double *kf,
                      const float *u, float *y, double *buf)
{
    MMI_ASSERT(L > 0 && nf >= L && (nf & (nf - 1)) == 0 && tw && kf && u && y && buf);
    mmi_ssm_rfft(nf, u, L, tw, tw_n, buf);
    for (int64_t i = 0; i <= nf / 2; i++) {
        double ar = buf[2 * i], ai = buf[2 * i + 1], br = kf[2 * i], bi = kf[2 * i + 1];
        buf[2 * i] = ar * br - ai * bi;
        buf[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_ssm_irfft(nf, buf, tw, tw_n);
    for (int64_t t = 0; t < L; t++) y[t] = (float)buf[t];
}

void mmi_ssm_xcorr(int64_t nf, const double *tw, int64_t tw_n, const double *af, const double *bf,
                   double *acc)
{
    MMI_ASSERT(nf > 0 && (nf & (nf - 1)) == 0 && tw && af && bf && acc);
    for (int64_t i = 0; i <= nf / 2; i++) {
        double ar = af[2 * i], ai = af[2 * i + 1], br = bf[2 * i], bi = -bf[2 * i + 1];
        acc[2 * i] = ar * br - ai * bi;
        acc[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_ssm_irfft(nf, acc, tw, tw_n);
}
