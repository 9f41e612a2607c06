/* SPDX-License-Identifier: MIT */
/* hippo.c — HiPPO measure matrices (A, B) and their low-rank corrections, as state-spaces/s4
 * hippo.py `transition` and `rank_correction` build them (docs/SSM.md §HiPPO and discretisation). Closed forms
 * are written per entry instead of the reference's matrix products, so they are exact in
 * float64 and need no workspace. */
#include "../core/mmi.h"

#include <math.h>
#include <string.h>

#define MAX_N    4096
#define MAX_RANK 16

static int check_measure(int32_t measure, int64_t n)
{
    if (measure < MM_HIPPO_LEGS || measure > MM_HIPPO_FOUT) return MM_E_INVALID_ARG;
    if (n < 1 || n > MAX_N) return MM_E_RANGE;
    if (measure == MM_HIPPO_FOUT && (n % 2) != 0) return MM_E_RANGE;
    return MM_OK;
}

static void legs(int64_t n, double *a, double *b)
{
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) {
            double v = 0.0;
            if (i > k)
                v = -sqrt((2.0 * i + 1.0) * (2.0 * k + 1.0));
            else if (i == k)
                v = -(double)(i + 1);
            a[i * n + k] = v;
        }
        if (b) b[i] = sqrt(2.0 * i + 1.0);
    }
}

/* LegT is already halved in hippo.py ("for timescale correctness"); the unhalved copy in
 * visualizations.py is legacy and not reproduced. */
static void legt(int64_t n, double *a, double *b)
{
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) {
            double s = sqrt((2.0 * i + 1.0) * (2.0 * k + 1.0));
            double sign = (i >= k || ((k - i) % 2) == 0) ? 1.0 : -1.0;
            a[i * n + k] = -0.5 * s * sign;
        }
        if (b) b[i] = 0.5 * sqrt(2.0 * i + 1.0);
    }
}

static void lagt(int64_t n, double *a, double *b)
{
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) a[i * n + k] = i == k ? -0.5 : (i > k ? -1.0 : 0.0);
        if (b) b[i] = 1.0;
    }
}

static double fout_b(int64_t i)
{
    if (i % 2) return 0.0;
    return i == 0 ? 1.0 : sqrt(2.0);
}

/* Index 1 is the dead "sin 0" mode: its row and column stay zero. */
static void fout(int64_t n, double *a, double *b)
{
    const double pi = 3.14159265358979323846;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) a[i * n + k] = -fout_b(i) * fout_b(k);
        if (b) b[i] = fout_b(i);
    }
    for (int64_t m = 1; 2 * m + 1 < n; m++) {
        a[(2 * m) * n + 2 * m + 1] += -pi * (double)m;
        a[(2 * m + 1) * n + 2 * m] += pi * (double)m;
    }
}

MM_API int mm_hippo(int32_t measure, int64_t n, double *a, double *b)
{
    int rc = check_measure(measure, n);
    if (rc != MM_OK) return rc;
    if (!a) return MM_E_INVALID_ARG;
    switch (measure) {
    case MM_HIPPO_LEGS:
        legs(n, a, b);
        break;
    case MM_HIPPO_LEGT:
        legt(n, a, b);
        break;
    case MM_HIPPO_LAGT:
        lagt(n, a, b);
        break;
    default:
        fout(n, a, b);
        break;
    }
    return MM_OK;
}

static void fill_p(int32_t measure, int64_t n, int32_t rank, double *p)
{
    memset(p, 0, (size_t)rank * (size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        switch (measure) {
        case MM_HIPPO_LEGS:
            p[i] = sqrt(i + 0.5);
            break;
        case MM_HIPPO_LEGT: {
            /* rank 2: row 0 keeps the odd entries, row 1 the even ones */
            double v = sqrt(2.0 * i + 1.0) / sqrt(2.0);
            if (i % 2)
                p[i] = v;
            else if (rank > 1)
                p[n + i] = v;
            break;
        }
        case MM_HIPPO_LAGT:
            p[i] = sqrt(0.5);
            break;
        default:
            p[i] = fout_b(i);
            break;
        }
    }
}

MM_API int mm_hippo_rank_correction(int32_t measure, int64_t n, int32_t rank, double *p,
                                    double *normal)
{
    int rc = check_measure(measure, n);
    if (rc != MM_OK) return rc;
    if (!p) return MM_E_INVALID_ARG;
    if (rank < 1 || rank > MAX_RANK) return MM_E_RANGE;
    fill_p(measure, n, rank, p);
    if (!normal) return MM_OK;
    rc = mm_hippo(measure, n, normal, NULL);
    if (rc != MM_OK) return rc;
    for (int32_t r = 0; r < rank; r++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < n; k++) normal[i * n + k] += p[r * n + i] * p[r * n + k];
    return MM_OK;
}
