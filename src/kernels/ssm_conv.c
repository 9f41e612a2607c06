/* ssm_conv.c — causal convolution and cross-correlation by zero-padded FFT (float64), as
 * FFTConv / the minimal S4D compute y = irfft(rfft(u, n) rfft(K, n), n)[:L] (spec ssm.md
 * §2.3). With n >= 2L the circular convolution equals the linear one on [0, L). */
#include "mmi_ssm_kernels.h"

void mmi_ssm_rfft(int64_t nf, const float *x, int64_t n, const double *tw, int64_t tw_n,
                  double *out)
{
    for (int64_t i = 0; i < nf; i++) {
        out[2 * i] = i < n ? (double)x[i] : 0.0;
        out[2 * i + 1] = 0.0;
    }
    mmi_fft(nf, out, tw, tw_n, 0);
}

void mmi_ssm_conv_row(int64_t L, int64_t nf, const double *tw, int64_t tw_n, const double *kf,
                      const float *u, float *y, double *buf)
{
    mmi_ssm_rfft(nf, u, L, tw, tw_n, buf);
    for (int64_t i = 0; i < nf; i++) {
        double ar = buf[2 * i], ai = buf[2 * i + 1], br = kf[2 * i], bi = kf[2 * i + 1];
        buf[2 * i] = ar * br - ai * bi;
        buf[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_fft(nf, buf, tw, tw_n, 1);
    for (int64_t t = 0; t < L; t++) y[t] = (float)buf[2 * t];
}

void mmi_ssm_xcorr(int64_t nf, const double *tw, int64_t tw_n, const double *af,
                   const double *bf, double *acc)
{
    for (int64_t i = 0; i < nf; i++) {
        double ar = af[2 * i], ai = af[2 * i + 1], br = bf[2 * i], bi = -bf[2 * i + 1];
        acc[2 * i] = ar * br - ai * bi;
        acc[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_fft(nf, acc, tw, tw_n, 1);
}
