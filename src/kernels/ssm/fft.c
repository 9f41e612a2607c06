/* SPDX-License-Identifier: MIT */
/* fft.c — FFTs in float64: complex FFT of power-of-two length (iterative radix-2, bit-reversed
 * input order); the real FFT of power-of-two length built on it (a real sequence of length n
 * transformed as n/2 complex points, even samples real and odd imaginary, then split into its
 * n/2 + 1 bins: half the work of a complex FFT); and Bluestein's chirp-z DFT for any length.
 * Used by the S4/S4D convolutions (any L, zero-padded to a power of two >= 2L) and by the S4
 * kernel's inverse DFT of length L. Twiddles are computed once for the largest size; smaller
 * powers of two read them with a stride. */
#include "mmi_ssm_kernels.h"

#include <math.h>

#define TWO_PI 6.28318530717958647692

int64_t mmi_fft_size(int64_t n)
{
    int64_t m = 1;
    while (m < n) {
        if (m > ((int64_t)1 << 40)) return 0;
        m <<= 1;
    }
    return m;
}

void mmi_fft_twiddles(int64_t n, double *tw)
{
    for (int64_t k = 0; k < n / 2; k++) {
        double a = -TWO_PI * (double)k / (double)n;
        tw[2 * k] = cos(a);
        tw[2 * k + 1] = sin(a);
    }
}

static void bit_reverse(int64_t n, double *x)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double tr = x[2 * i], ti = x[2 * i + 1];
            x[2 * i] = x[2 * j];
            x[2 * i + 1] = x[2 * j + 1];
            x[2 * j] = tr;
            x[2 * j + 1] = ti;
        }
    }
}

void mmi_fft(int64_t n, double *x, const double *tw, int64_t tw_n, int inverse)
{
    MMI_ASSERT(n > 0 && (n & (n - 1)) == 0 && tw_n >= n && tw_n % n == 0 && x && tw);
    const double sgn = inverse ? -1.0 : 1.0;
    bit_reverse(n, x);
    for (int64_t len = 2; len <= n; len <<= 1) {
        int64_t half = len >> 1, step = tw_n / len;
        for (int64_t s = 0; s < n; s += len)
            for (int64_t k = 0; k < half; k++) {
                double wr = tw[2 * k * step], wi = sgn * tw[2 * k * step + 1];
                double *a = x + 2 * (s + k), *b = x + 2 * (s + k + half);
                double br = b[0] * wr - b[1] * wi, bi = b[0] * wi + b[1] * wr;
                b[0] = a[0] - br;
                b[1] = a[1] - bi;
                a[0] += br;
                a[1] += bi;
            }
    }
    if (inverse) {
        double s = 1.0 / (double)n;
        for (int64_t i = 0; i < 2 * n; i++) x[i] *= s;
    }
}

/* X_k = sum_j x_j e^{-+2 pi i jk/n} with jk = (j^2 + k^2 - (k-j)^2)/2 (Bluestein): a chirp
 * multiply, a convolution of length m >= 2n-1 by FFT, and a chirp multiply. The chirp angle
 * uses jk mod 2n in integers so it stays exact for large n. */
void mmi_dft_any(int64_t n, double *x, int inverse, const double *tw, int64_t tw_n, double *w1,
                 double *w2, double *chirp)
{
    MMI_ASSERT(n > 0 && x && tw && w1 && w2 && chirp);
    int64_t m = mmi_fft_size(2 * n - 1);
    const double sgn = inverse ? 1.0 : -1.0;
    for (int64_t j = 0; j < n; j++) {
        int64_t q = (j * j) % (2 * n);
        double a = sgn * TWO_PI * 0.5 * (double)q / (double)n;
        chirp[2 * j] = cos(a);
        chirp[2 * j + 1] = sin(a);
    }
    for (int64_t i = 0; i < 2 * m; i++) w1[i] = w2[i] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double cr = chirp[2 * j], ci = chirp[2 * j + 1];
        w1[2 * j] = x[2 * j] * cr - x[2 * j + 1] * ci;
        w1[2 * j + 1] = x[2 * j] * ci + x[2 * j + 1] * cr;
        w2[2 * j] = cr; /* conj(chirp) convolution kernel, symmetric in j */
        w2[2 * j + 1] = -ci;
        if (j) {
            w2[2 * (m - j)] = cr;
            w2[2 * (m - j) + 1] = -ci;
        }
    }
    mmi_fft(m, w1, tw, tw_n, 0);
    mmi_fft(m, w2, tw, tw_n, 0);
    for (int64_t i = 0; i < m; i++) {
        double ar = w1[2 * i], ai = w1[2 * i + 1], br = w2[2 * i], bi = w2[2 * i + 1];
        w1[2 * i] = ar * br - ai * bi;
        w1[2 * i + 1] = ar * bi + ai * br;
    }
    mmi_fft(m, w1, tw, tw_n, 1);
    for (int64_t k = 0; k < n; k++) {
        double cr = chirp[2 * k], ci = chirp[2 * k + 1];
        double yr = w1[2 * k] * cr - w1[2 * k + 1] * ci, yi = w1[2 * k] * ci + w1[2 * k + 1] * cr;
        x[2 * k] = inverse ? yr / (double)n : yr;
        x[2 * k + 1] = inverse ? yi / (double)n : yi;
    }
}

/* ---- real FFT ----------------------------------------------------------------------------- */
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
        double dr = 0.5 * (ar - br), di = 0.5 * (ai + bi);    /* W^k Fo_k */
        double wr = tw[2 * k * st], wi = -tw[2 * k * st + 1]; /* conj(W^k) */
        double fo_r = wr * dr - wi * di, fo_i = wr * di + wi * dr;
        z[2 * k] = fer - fo_i, z[2 * k + 1] = fei + fo_r;             /* Fe + i Fo */
        if (j != k) z[2 * j] = fer + fo_i, z[2 * j + 1] = fo_r - fei; /* conj(Fe) + i conj(Fo) */
    }
    z[0] = 0.5 * (x0 + xh), z[1] = 0.5 * (x0 - xh);
}

void mmi_ssm_rfft(int64_t nf, const float *x, int64_t n, const double *tw, int64_t tw_n,
                  double *out)
{
    MMI_ASSERT(nf >= 2 && (nf & (nf - 1)) == 0 && n >= 0 && (n == 0 || x) && tw && out);
    for (int64_t i = 0; i < nf; i++) out[i] = i < n ? (double)x[i] : 0.0;
    mmi_fft(nf / 2, out, tw, tw_n, 0);
    unpack(nf, out, tw, tw_n / nf);
}

void mmi_ssm_irfft(int64_t nf, double *spec, const double *tw, int64_t tw_n)
{
    MMI_ASSERT(nf >= 2 && (nf & (nf - 1)) == 0 && tw_n >= nf && spec && tw);
    pack(nf, spec, tw, tw_n / nf);
    mmi_fft(nf / 2, spec, tw, tw_n, 1);
}
