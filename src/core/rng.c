/* SPDX-License-Identifier: MIT */
/* rng.c — the seeded RNG behind every random draw in libmm: xoshiro256** (Blackman & Vigna),
 * its 256-bit state filled from the 64-bit seed by splitmix64. Same seed, same stream, on every
 * platform: no libc rand(), no floating-point tricks that vary by compiler. */
#include "mmi.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mmi_rng_seed(mmi_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t mmi_rng_next(mmi_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mmi_rng_uniform(mmi_rng *r) { return (double)(mmi_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t mmi_rng_below(mmi_rng *r, uint64_t n)
{
    /* Rejection on the top of the range removes modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = mmi_rng_next(r);
    } while (x >= limit);
    return x % n;
}

double mmi_rng_normal(mmi_rng *r)
{
    /* 1 - u lies in (0, 1], so the log never sees 0. */
    double u1 = 1.0 - mmi_rng_uniform(r);
    double u2 = mmi_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Orthonormalises the columns of w (n rows x k columns, row-major, k <= n) in place by modified
 * Gram-Schmidt, each projection done twice for accuracy. */
static void mgs_columns(double *w, int64_t n, int64_t k)
{
    for (int64_t j = 0; j < k; j++) {
        for (int pass = 0; pass < 2; pass++) {
            for (int64_t p = 0; p < j; p++) {
                double dot = 0.0;
                for (int64_t i = 0; i < n; i++) dot += w[i * k + p] * w[i * k + j];
                for (int64_t i = 0; i < n; i++) w[i * k + j] -= dot * w[i * k + p];
            }
        }
        double nrm = 0.0;
        for (int64_t i = 0; i < n; i++) nrm += w[i * k + j] * w[i * k + j];
        nrm = sqrt(nrm);
        if (nrm == 0.0) nrm = 1.0; /* probability zero for Gaussian input */
        for (int64_t i = 0; i < n; i++) w[i * k + j] /= nrm;
    }
}

void mmi_rng_orthogonal(mmi_rng *r, double *q, int64_t rows, int64_t cols, double *work)
{
    /* Work on the tall orientation (n >= k), then transpose back if the output is wide.
     * Gram-Schmidt yields R with a positive diagonal, which is exactly the sign-corrected QR
     * (Q·diag(sign(R_jj))) that makes the result Haar-distributed. */
    int64_t n = rows >= cols ? rows : cols;
    int64_t k = rows >= cols ? cols : rows;
    for (int64_t i = 0; i < n * k; i++) work[i] = mmi_rng_normal(r);
    mgs_columns(work, n, k);
    if (rows >= cols) {
        memcpy(q, work, (size_t)(n * k) * sizeof(double));
    } else {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) q[i * cols + j] = work[j * k + i];
    }
}
