/* ssm_conv.c — real FFTs and the causal convolution / cross-correlation built on them, as
 * FFTConv and the minimal S4D compute y = irfft(rfft(u, n) rfft(K, n), n)[:L] (spec ssm.md
 * §2.3). A real sequence of length n is transformed as n/2 complex points (even samples real,
 * odd imaginary) and split into its n/2 + 1 bins, half the work of a complex FFT. With
 * n >= 2L the circular convolution equals the linear one on [0, L). All in float64. */
#include "mmi_ssm_kernels.h"

/* Turns the n/2-point FFT Z of z_j = x_2j + i x_2j+1 into the bins X_0..X_{n/2} of x (in
 * place; z holds n + 2 doubles). X_k = Fe_k + W^k Fo_k, Fe_k = (Z_k + conj Z_{h-k}) / 2,
 * Fo_k = (Z_k - conj Z_{h-k}) / 2i, W = e^{-2 pi i / n}. */
static void unpack(int64_t n, double *z, const double *tw, int64_t st)
{
    const int64_t h = n / 2;
    double z0r = z[0], z0i = z[1];
    for (int64_t k = 1; k <= h / 2; k++) {
        int64_t j = h - k;
        double ar = z[2 * k], ai = z[2 * k + 1], br = z[2 * j], bi = z[2 * j + 1];
        double fer = 0.5 * (ar + br), fei = 0.5 * (ai - bi);
        double fo_r = 0.5 * (ai + bi), fo_i = -0.5 * (ar - br); /* (Z_k - conj Z_j) / 2i */
        double wr = tw[2 * k * st], wi = tw[2 * k * st + 1];
        double tr = wr * fo_r - wi * fo_i, ti = wr * fo_i + wi * fo_r;
        z[2 * k] = fer + tr, z[2 * k + 1] = fei + ti;
        if (j != k) z[2 * j] = fer - tr, z[2 * j + 1] = ti - fei; /* conj(Fe_k - W^k Fo_k) */
    }
    z[0] = z0r + z0i, z[1] = 0.0;
    z[2 * h] = z0r - z0i, z[2 * h + 1] = 0.0;
}

/* The inverse of unpack: bins X_0..X_{h} (imaginary parts of X_0 and X_h ignored, as irfft)
 * back to Z_k = Fe_k + i Fo_k. */
static void pack(int64_t n, double *z, const double *tw, int64_t st)
{
    const int64_t h = n / 2;
    double x0 = z[0], xh = z[2 * h];
    for (int64_t k = 1; k <= h / 2; k++) {
        int64_t j = h - k;
        double ar = z[2 * k], ai = z[2 * k + 1], br = z[2 * j], bi = z[2 * j + 1];
        double fer = 0.5 * (ar + br), fei = 0.5 * (ai - bi);
        double dr = 0.5 * (ar - br), di = 0.5 * (ai + bi); /* W^k Fo_k */
        double wr = tw[2 * k * st], wi = -tw[2 * k * st + 1]; /* conj(W^k) */
        double fo_r = wr * dr - wi * di, fo_i = wr * di + wi * dr;
        z[2 * k] = fer - fo_i, z[2 * k + 1] = fei + fo_r;          /* Fe + i Fo */
        if (j != k) z[2 * j] = fer + fo_i, z[2 * j + 1] = fo_r - fei; /* conj(Fe) + i conj(Fo) */
    }
    z[0] = 0.5 * (x0 + xh), z[1] = 0.5 * (x0 - xh);
}

void mmi_ssm_rfft(int64_t nf, const float *x, int64_t n, const double *tw, int64_t tw_n,
                  double *out)
{
    for (int64_t i = 0; i < nf; i++) out[i] = i < n ? (double)x[i] : 0.0;
    mmi_fft(nf / 2, out, tw, tw_n, 0);
    unpack(nf, out, tw, tw_n / nf);
}

void mmi_ssm_irfft(int64_t nf, double *spec, const double *tw, int64_t tw_n)
{
    pack(nf, spec, tw, tw_n / nf);
    mmi_fft(nf / 2, spec, tw, tw_n, 1);
}

void mmi_ssm_conv_row(int64_t L, int64_t nf, const double *tw, int64_t tw_n, const double *kf,
                      const float *u, float *y, double *buf)
{
    mmi_ssm_rfft(nf, u, L, tw, tw_n, buf);
    for (int64_t i = 0; i <= nf / 2; i++) {
        double ar = buf[2 * i], ai = buf[2 * i + 1], br = kf[2 * i], bi = kf[2 * i + 1];
        buf[2 * i] = ar * br - ai * bi;
        buf[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_ssm_irfft(nf, buf, tw, tw_n);
    for (int64_t t = 0; t < L; t++) y[t] = (float)buf[t];
}

void mmi_ssm_xcorr(int64_t nf, const double *tw, int64_t tw_n, const double *af,
                   const double *bf, double *acc)
{
    for (int64_t i = 0; i <= nf / 2; i++) {
        double ar = af[2 * i], ai = af[2 * i + 1], br = bf[2 * i], bi = -bf[2 * i + 1];
        acc[2 * i] = ar * br - ai * bi;
        acc[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_ssm_irfft(nf, acc, tw, tw_n);
}
