/* SPDX-License-Identifier: MIT */
/* discretize.c — mm_ssm_discretize: continuous (A, B) to discrete (Ad, Bd) by forward Euler,
 * backward Euler, bilinear (the GBT family of s4 transition.py) or zero-order hold. Dense ZOH
 * exponentiates the block matrix dt [[A, B], [0, 0]] = [[Ad, Bd], [0, I]] (scipy cont2discrete's
 * trick), so a singular A needs no inverse. The exponential is Higham's (2005) scaling and
 * squaring with the degree-13 Pade approximant, which is accurate to a few ulp in float64. */
#include "../core/mmi.h"

#include <math.h>
#include <string.h>

#define MAX_N 4096

/* c = a b for m x m row-major matrices (c distinct from a and b). */
static void matmul(int64_t m, const double *a, const double *b, double *c)
{
    memset(c, 0, (size_t)(m * m) * sizeof *c);
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < m; k++) {
            double aik = a[i * m + k];
            if (aik == 0.0) continue;
            for (int64_t j = 0; j < m; j++) c[i * m + j] += aik * b[k * m + j];
        }
}

/* Solves M X = R in place (M m x m, destroyed; R m x nr, overwritten by X) with partial
 * pivoting. Returns -1 if M is singular to working precision. */
static int lu_solve(int64_t m, double *mat, int64_t nr, double *r)
{
    for (int64_t c = 0; c < m; c++) {
        int64_t piv = c;
        for (int64_t i = c + 1; i < m; i++)
            if (fabs(mat[i * m + c]) > fabs(mat[piv * m + c])) piv = i;
        if (!(fabs(mat[piv * m + c]) > 0.0)) return -1;
        if (piv != c) {
            for (int64_t j = 0; j < m; j++) {
                double t = mat[c * m + j];
                mat[c * m + j] = mat[piv * m + j];
                mat[piv * m + j] = t;
            }
            for (int64_t j = 0; j < nr; j++) {
                double t = r[c * nr + j];
                r[c * nr + j] = r[piv * nr + j];
                r[piv * nr + j] = t;
            }
        }
        for (int64_t i = c + 1; i < m; i++) {
            double f = mat[i * m + c] / mat[c * m + c];
            if (f == 0.0) continue;
            for (int64_t j = c; j < m; j++) mat[i * m + j] -= f * mat[c * m + j];
            for (int64_t j = 0; j < nr; j++) r[i * nr + j] -= f * r[c * nr + j];
        }
    }
    for (int64_t c = m - 1; c >= 0; c--)
        for (int64_t j = 0; j < nr; j++) {
            double s = r[c * nr + j];
            for (int64_t k = c + 1; k < m; k++) s -= mat[c * m + k] * r[k * nr + j];
            r[c * nr + j] = s / mat[c * m + c];
        }
    return 0;
}

/* E = expm(A) for an m x m matrix; work holds 6 m^2 doubles. */
static int expm_pade13(int64_t m, const double *a_in, double *e, double *work)
{
    static const double b[14] = {64764752532480000.0,
                                 32382376266240000.0,
                                 7771770303897600.0,
                                 1187353796428800.0,
                                 129060195264000.0,
                                 10559470521600.0,
                                 670442572800.0,
                                 33522128640.0,
                                 1323241920.0,
                                 40840800.0,
                                 960960.0,
                                 16380.0,
                                 182.0,
                                 1.0};
    const double theta13 = 5.371920351148152;
    size_t mm = (size_t)(m * m);
    double *a = work, *a2 = a + mm, *a4 = a2 + mm, *a6 = a4 + mm, *u = a6 + mm, *v = u + mm;
    double norm = 0.0, scale = 1.0;
    int s = 0;
    for (int64_t j = 0; j < m; j++) {
        double col = 0.0;
        for (int64_t i = 0; i < m; i++) col += fabs(a_in[i * m + j]);
        if (col > norm) norm = col;
    }
    if (!isfinite(norm)) return -1;
    if (norm > theta13) {
        s = (int)ceil(log2(norm / theta13));
        scale = ldexp(1.0, -s);
    }
    for (size_t i = 0; i < mm; i++) a[i] = a_in[i] * scale;
    matmul(m, a, a, a2);
    matmul(m, a2, a2, a4);
    matmul(m, a4, a2, a6);
    /* e := inner polynomial of U, then U = A e; v := inner of V then V = A6 inner + rest */
    for (size_t i = 0; i < mm; i++) e[i] = b[13] * a6[i] + b[11] * a4[i] + b[9] * a2[i];
    matmul(m, a6, e, u);
    for (size_t i = 0; i < mm; i++) u[i] += b[7] * a6[i] + b[5] * a4[i] + b[3] * a2[i];
    for (int64_t i = 0; i < m; i++) u[i * m + i] += b[1];
    matmul(m, a, u, e); /* e = U */
    memcpy(u, e, mm * sizeof *u);
    for (size_t i = 0; i < mm; i++) e[i] = b[12] * a6[i] + b[10] * a4[i] + b[8] * a2[i];
    matmul(m, a6, e, v);
    for (size_t i = 0; i < mm; i++) v[i] += b[6] * a6[i] + b[4] * a4[i] + b[2] * a2[i];
    for (int64_t i = 0; i < m; i++) v[i * m + i] += b[0];
    /* (V - U) E = (V + U); a and a2 are free now */
    for (size_t i = 0; i < mm; i++) {
        a[i] = v[i] - u[i];
        e[i] = v[i] + u[i];
    }
    if (lu_solve(m, a, m, e) != 0) return -1;
    for (int k = 0; k < s; k++) {
        matmul(m, e, e, a2);
        memcpy(e, a2, mm * sizeof *e);
    }
    return 0;
}

static void diag_disc(int32_t method, int64_t n, const double *a, const double *b, double dt,
                      double *ad, double *bd)
{
    for (int64_t i = 0; i < n; i++) {
        double x = dt * a[i], ai, bi;
        switch (method) {
        case MM_DISC_FORWARD_EULER:
            ai = 1.0 + x;
            bi = dt;
            break;
        case MM_DISC_BACKWARD_EULER:
            ai = 1.0 / (1.0 - x);
            bi = dt / (1.0 - x);
            break;
        case MM_DISC_BILINEAR:
            ai = (1.0 + 0.5 * x) / (1.0 - 0.5 * x);
            bi = dt / (1.0 - 0.5 * x);
            break;
        default:
            ai = exp(x);
            bi = a[i] == 0.0 ? dt : expm1(x) / a[i];
            break;
        }
        ad[i] = ai;
        if (bd) bd[i] = bi * b[i];
    }
}

/* GBT(alpha): (I - alpha dt A) [Ad | Bd] = [I + (1 - alpha) dt A | dt B]. */
static int gbt_dense(double alpha, int64_t n, const double *a, const double *b, double dt,
                     double *ad, double *bd, double *work)
{
    int64_t nr = n + 1;
    double *m = work, *r = work + n * n;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) {
            double id = i == k ? 1.0 : 0.0;
            m[i * n + k] = id - alpha * dt * a[i * n + k];
            r[i * nr + k] = id + (1.0 - alpha) * dt * a[i * n + k];
        }
        r[i * nr + n] = b ? dt * b[i] : 0.0;
    }
    if (lu_solve(n, m, nr, r) != 0) return -1;
    for (int64_t i = 0; i < n; i++) {
        memcpy(ad + i * n, r + i * nr, (size_t)n * sizeof *ad);
        if (bd) bd[i] = r[i * nr + n];
    }
    return 0;
}

static int zoh_dense(int64_t n, const double *a, const double *b, double dt, double *ad, double *bd,
                     double *work)
{
    int64_t m = n + 1;
    size_t mm = (size_t)(m * m);
    double *blk = work, *e = work + mm;
    memset(blk, 0, mm * sizeof *blk);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < n; k++) blk[i * m + k] = dt * a[i * n + k];
        blk[i * m + n] = b ? dt * b[i] : 0.0;
    }
    if (expm_pade13(m, blk, e, e + mm) != 0) return -1;
    for (int64_t i = 0; i < n; i++) {
        memcpy(ad + i * n, e + i * m, (size_t)n * sizeof *ad);
        if (bd) bd[i] = e[i * m + n];
    }
    return 0;
}

static int all_finite_f64(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

MM_API int mm_ssm_discretize(int32_t method, uint32_t flags, int64_t n, const double *a,
                             const double *b, double dt, double *ad, double *bd,
                             const mm_allocator *alloc)
{
    mmi_alloc al;
    double *work;
    size_t bytes;
    int64_t m = n + 1;
    int bad;
    if (!a || !ad || (bd && !b)) return MM_E_INVALID_ARG;
    if (method < MM_DISC_FORWARD_EULER || method > MM_DISC_ZOH) return MM_E_INVALID_ARG;
    if (flags & ~(uint32_t)MM_DISC_DIAGONAL) return MM_E_INVALID_ARG;
    if (n < 1 || n > MAX_N || !(dt > 0.0) || !isfinite(dt)) return MM_E_RANGE;
    if (!all_finite_f64(a, (flags & MM_DISC_DIAGONAL) ? n : n * n) || (b && !all_finite_f64(b, n)))
        return MM_E_NUMERIC;
    if (flags & MM_DISC_DIAGONAL) {
        diag_disc(method, n, a, b, dt, ad, bd);
        return all_finite_f64(ad, n) && (!bd || all_finite_f64(bd, n)) ? MM_OK : MM_E_NUMERIC;
    }
    if (mmi_alloc_init(&al, alloc, NULL) != MM_OK) return MM_E_INVALID_ARG;
    bytes = (size_t)(8 * m * m) * sizeof(double); /* n <= 4096: no overflow on 64-bit size_t */
    work = (double *)mmi_malloc(&al, bytes);
    if (!work) return MM_E_NOMEM;
    if (method == MM_DISC_ZOH)
        bad = zoh_dense(n, a, b, dt, ad, bd, work);
    else {
        double alpha = method == MM_DISC_FORWARD_EULER    ? 0.0
                       : method == MM_DISC_BACKWARD_EULER ? 1.0
                                                          : 0.5;
        bad = gbt_dense(alpha, n, a, b, dt, ad, bd, work);
    }
    mmi_free(&al, work, bytes);
    if (bad) return MM_E_NUMERIC;
    return all_finite_f64(ad, n * n) && (!bd || all_finite_f64(bd, n)) ? MM_OK : MM_E_NUMERIC;
}
