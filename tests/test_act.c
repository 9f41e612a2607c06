/* SPDX-License-Identifier: MIT */
/* test_act.c — the activation kernels (src/kernels/elementwise/act*.c): forward values against float64
 * libm over a wide range including the saturating tails, NaN propagation, PyTorch's softplus
 * threshold and ReLU conventions, and derivatives against float64 formulas, on the dispatched
 * entry points and on every path this machine runs (portable, AVX2, AVX-512; the AVX-512
 * checks report a skip where the CPU lacks it), with the result's relative error bound (4 ulp,
 * 2.4e-7, plus 1e-37 absolute for denormal-range sigmoid tails). */
#include "kernels/elementwise/mmi_elementwise.h"
#include "runner.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static double dref(int k, double x)
{
    double s = 1 / (1 + exp(-x));
    switch (k) {
    case MM_ACT_RELU:
        return x > 0;
    case MM_ACT_TANH:
        return 1 - tanh(x) * tanh(x);
    case MM_ACT_SIGMOID:
        return s * (1 - s);
    case MM_ACT_GELU:
        return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-x * x / 2) / 2.5066282746310002;
    case MM_ACT_SILU:
        return s * (1 + x * (1 - s));
    case MM_ACT_ELU:
        return x > 0 ? 1 : exp(x);
    case MM_ACT_SOFTPLUS:
        return x > 20 ? 1 : s;
    default:
        return x > 0 ? 2 * x : 0;
    }
}

/* Path p's elementwise table through the dispatch: 1 and *t (NULL on the portable path) when
 * the path is available, else 0. */
static int path_table(int p, const mmi_elementwise_isa **t)
{
    mmi_dispatch d;
    if (!mmi_dispatch_for((mmi_simd_path)p, &d)) return 0;
    *t = d.elementwise;
    return 1;
}

/* Forward and backward of kind k as path table t runs them (its portable bodies where t is
 * NULL or declines the kind). */
static void fwd_on(const mmi_elementwise_isa *t, int k, const float *x, float *y, int64_t n)
{
    if (!t || !t->act_forward(k, x, y, n)) mmi_act_forward_portable(k, x, y, n);
}
static void bwd_on(const mmi_elementwise_isa *t, int k, const float *x, const float *y,
                   const float *dy, float *dx, int64_t n)
{
    if (!t || !t->act_backward(k, x, y, dy, dx, n)) mmi_act_backward_portable(k, x, y, dy, dx, n);
}

/* Every available path (and the dispatched entry points) against float64. */
static void check_values(int path)
{
    enum { N = 4003 }; /* not a multiple of 8 or 16: the SIMD tails run */
    const mmi_elementwise_isa *t = NULL;
    float *x, *y, *dy, *dx;
    if (path >= 0 && !path_table(path, &t)) return;
    x = malloc(sizeof(float) * N), y = malloc(sizeof(float) * N);
    dy = malloc(sizeof(float) * N), dx = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = -30.0f + 60.0f * (float)i / (N - 1);
    x[0] = -100.0f;
    x[1] = 100.0f;
    x[2] = 1e-6f;
    x[3] = -1e-6f;
    x[4] = 0.0f;
    x[5] = 0.624f;
    x[6] = 0.626f;
    mmt_fill_uniform(dy, N, 5, -1, 1);
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        int bad = 0;
        if (path < 0) { /* the dispatched entry points */
            mmi_act_forward(k, x, y, N);
            mmi_act_backward(k, x, y, dy, dx, N);
        } else {
            fwd_on(t, k, x, y, N);
            bwd_on(t, k, x, y, dy, dx, N);
        }
        for (int i = 0; i < N && bad < 3; i++) {
            double want = mmt_act_ref(k, x[i]), dwant = dy[i] * dref(k, x[i]);
            if (fabs(y[i] - want) > 2.4e-7 * fabs(want) + 1e-37) {
                mmt_fail(__FILE__, __LINE__, "path %d act %d: f(%.9g) = %.9g, want %.9g", path, k,
                         (double)x[i], (double)y[i], want);
                bad++;
            }
            /* Derivatives are computed from the float y (tanh' = 1 - y^2), so y's 2.4e-7
             * relative error becomes up to ~5e-7 absolute in f'; bound: 1e-6 relative plus
             * 5e-7 |dy| absolute. */
            if (fabs(dx[i] - dwant) > 1e-6 * fabs(dwant) + 5e-7 * fabs(dy[i])) {
                mmt_fail(__FILE__, __LINE__, "path %d act %d: f'(%.9g) dy = %.9g, want %.9g", path,
                         k, (double)x[i], (double)dx[i], dwant);
                bad++;
            }
        }
    }
    free(x), free(y), free(dy), free(dx);
}

static void test_values(void)
{
    check_values(-1);
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) check_values(p);
}

/* The dispatched entry point (path -1) or path table t. */
static void fwd_at(int path, const mmi_elementwise_isa *t, int k, const float *x, float *y,
                   int64_t n)
{
    if (path < 0)
        mmi_act_forward(k, x, y, n);
    else
        fwd_on(t, k, x, y, n);
}

/* Special values on every available path (-1: the dispatched entry point). */
static void check_special(int path)
{
    float x[9] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 20.0f, 20.5f, 19.5f, 1.0f}, y[9];
    const mmi_elementwise_isa *t = NULL;
    if (path >= 0 && !path_table(path, &t)) return;
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        fwd_at(path, t, k, x, y, 9);
        CHECK(isnan(y[0])); /* NaN propagates through every activation */
    }
    fwd_at(path, t, MM_ACT_TANH, x, y, 9);
    CHECK(y[1] == 1.0f && y[2] == -1.0f && y[3] == 0.0f);
    fwd_at(path, t, MM_ACT_SIGMOID, x, y, 9);
    CHECK(y[1] == 1.0f && y[2] == 0.0f && y[3] == 0.5f);
    fwd_at(path, t, MM_ACT_RELU, x, y, 9);
    CHECK(y[1] == INFINITY && y[2] == 0.0f && y[8] == 1.0f);
    /* softplus: identity strictly above 20 (torch threshold=20), log1p(exp) at 20 */
    fwd_at(path, t, MM_ACT_SOFTPLUS, x, y, 9);
    CHECK(y[6] == 20.5f);
    CHECK_NEAR(y[5], log1p(exp(20.0)), 1e-7, 0);
    CHECK_NEAR(y[7], log1p(exp(19.5)), 1e-7, 0);
}

static void test_special(void)
{
    check_special(-1);
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) check_special(p);
}

/* The dispatched backward is bitwise the portable one, and so is every available path's; the
 * row and column kernels of every path are bitwise the plain loops written here. */
static void test_paths_bitwise(void)
{
    enum { R = 37, C = 45 }; /* tails in both directions (8 and 16 lanes) */
    float x[R * C], y[R * C], dy[R * C], a[R * C], b[R * C], bias[C];
    double acc1[C], acc2[C], lane[8] = {0}, want, got;
    int64_t i = 0;
    mmt_fill_uniform(x, R * C, 1, -3, 3);
    mmt_fill_uniform(dy, R * C, 2, -1, 1);
    mmt_fill_uniform(bias, C, 3, -1, 1);
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        mmi_act_forward(k, x, y, R * C);
        mmi_act_backward(k, x, y, dy, a, R * C);
        mmi_act_backward_portable(k, x, y, dy, b, R * C);
        CHECK(memcmp(a, b, sizeof a) == 0);
        /* And each path's variant itself, whichever path MM_SIMD chose for the dispatch. */
        for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
            const mmi_elementwise_isa *t;
            if (!path_table(p, &t)) continue;
            bwd_on(t, k, x, y, dy, a, R * C);
            CHECK(memcmp(a, b, sizeof a) == 0);
        }
    }
    for (; i + 8 <= R * C; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < R * C; i++, k++) lane[k] += (double)x[i] * (double)x[i];
    want =
        ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    /* path -1: the dispatched entry points */
    for (int p = -1; p < MMI_SIMD_NPATHS; p++) {
        const mmi_elementwise_isa *t = NULL;
        if (p >= 0 && !path_table(p, &t)) continue;
        memcpy(a, x, sizeof a);
        if (p < 0)
            mmi_add_rows(a, bias, R, C);
        else if (t)
            CHECK(t->add_rows(a, bias, R, C) == 1);
        else
            continue; /* the portable path has no table: its loops are the dispatched ones */
        for (int r = 0; r < R; r++)
            for (int j = 0; j < C; j++) CHECK(a[r * C + j] == x[r * C + j] + bias[j]);
        for (int j = 0; j < C; j++) acc1[j] = acc2[j] = 0.5 * j;
        if (p < 0)
            mmi_colsum_f64(x, R, C, acc1);
        else
            CHECK(t->colsum_f64(x, R, C, C, acc1) == 1);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < C; j++) acc2[j] += (double)x[r * C + j];
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0);
        /* Slices of 7 columns (odd: vector tails in the middle of a row) with the full row
         * stride give each column the same sum (the bias gradient's threads take column
         * blocks of a wider matrix). */
        for (int j = 0; j < C; j++) acc1[j] = 0.5 * j;
        for (int j0 = 0; j0 < C; j0 += 7) {
            int w = C - j0 < 7 ? C - j0 : 7;
            if (p < 0)
                mmi_colsum_f64_ld(x + j0, R, w, C, acc1 + j0);
            else
                CHECK(t->colsum_f64(x + j0, R, w, C, acc1 + j0) == 1);
        }
        CHECK(memcmp(acc1, acc2, sizeof acc1) == 0);
        if (p < 0)
            got = mmi_sumsq_f64(x, R * C);
        else
            CHECK(t->sumsq_f64(x, R * C, &got) == 1);
        CHECK(got == want);
    }
    x[100] = NAN;
    CHECK(isnan(mmi_sumsq_f64(x, R * C)));
    x[100] = INFINITY;
    CHECK(isinf(mmi_sumsq_f64(x, R * C)));
}

/* Every length 0..40 on every path with a table, with guard values around the view: the
 * masked and scalar tails touch nothing outside [0, n), the backward and the reductions stay
 * bitwise the portable loops at each length (each lane residue mod 8 and 16), and the forward
 * stays within the activation bound of test_values. */
static void check_tails(const mmi_elementwise_isa *t)
{
    enum { M = 40, G = 16 };
    float x[M], dy[M], y[M + 2 * G], dx[M + 2 * G], ref[M], bias[M], rows[3 * M + 2 * G];
    double acc[M + 2 * G], acc2[M], got;
    mmt_fill_uniform(x, M, 7, -6, 6);
    mmt_fill_uniform(dy, M, 8, -1, 1);
    mmt_fill_uniform(bias, M, 9, -1, 1);
    for (int64_t n = 0; n <= M; n++) {
        for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
            for (int j = 0; j < M + 2 * G; j++) y[j] = dx[j] = 77.0f;
            fwd_on(t, k, x, y + G, n);
            mmi_act_backward_portable(k, x, y + G, dy, ref, n);
            bwd_on(t, k, x, y + G, dy, dx + G, n);
            for (int j = 0; j < G; j++) {
                CHECK(y[j] == 77.0f && y[G + n + j] == 77.0f);
                CHECK(dx[j] == 77.0f && dx[G + n + j] == 77.0f);
            }
            for (int64_t j = 0; j < n; j++) {
                double want = mmt_act_ref(k, x[j]);
                CHECK(fabs(y[G + j] - want) <= 2.4e-7 * fabs(want) + 1e-37);
            }
            CHECK(n == 0 || memcmp(dx + G, ref, sizeof(float) * (size_t)n) == 0);
        }
        /* 3 rows of n columns, guards around */
        for (int j = 0; j < 3 * M + 2 * G; j++) rows[j] = 55.0f;
        for (int64_t j = 0; j < 3 * n; j++) rows[G + j] = x[j % M];
        CHECK(t->add_rows(rows + G, bias, 3, n) == 1);
        for (int j = 0; j < G; j++) CHECK(rows[j] == 55.0f && rows[G + 3 * n + j] == 55.0f);
        for (int64_t j = 0; j < 3 * n; j++) CHECK(rows[G + j] == x[j % M] + bias[j % n]);
        for (int j = 0; j < M + 2 * G; j++) acc[j] = 0.25 * j;
        for (int64_t j = 0; j < n; j++) acc2[j] = 0.25 * (double)(G + j);
        CHECK(t->colsum_f64(rows + G, 3, n, n, acc + G) == 1);
        for (int r = 0; r < 3; r++)
            for (int64_t j = 0; j < n; j++) acc2[j] += (double)rows[G + r * n + j];
        for (int j = 0; j < G; j++)
            CHECK(acc[j] == 0.25 * j && acc[G + n + j] == 0.25 * (G + n + j));
        CHECK(n == 0 || memcmp(acc + G, acc2, sizeof(double) * (size_t)n) == 0);
        {
            double lane[8] = {0};
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
            for (int k = 0; i < n; i++, k++) lane[k] += (double)x[i] * (double)x[i];
            CHECK(t->sumsq_f64(x, n, &got) == 1);
            CHECK(got == ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
                             ((lane[2] + lane[6]) + (lane[3] + lane[7])));
        }
    }
}

static void test_tails(void)
{
    for (int p = MMI_SIMD_AVX2; p < MMI_SIMD_NPATHS; p++) {
        const mmi_elementwise_isa *t;
        if (path_table(p, &t) && t) check_tails(t);
    }
}

/* The AVX-512 table: every entry its own (not the AVX2 fallback), the forward bitwise the AVX2
 * forward (the same lane arithmetic, mmi_exp512 = mmi_exp256's sequence) at every length. On a
 * machine without AVX-512 it cannot run: reported as a skip. */
static void test_avx512(void)
{
    enum { N = 203 };
    const mmi_elementwise_isa *t5 = NULL, *t2 = NULL;
    float x[N], y5[N], y2[N];
    if (!path_table(MMI_SIMD_AVX512, &t5)) {
        mmt_skip(mmi_simd_compiled(MMI_SIMD_AVX512)
                     ? "this CPU or OS does not run AVX-512 F/DQ/BW/VL"
                     : "this build did not compile the AVX-512 path");
        return;
    }
    CHECK(t5 == mmi_elementwise_isa_avx512() && t5 != mmi_elementwise_isa_avx2());
    if (!path_table(MMI_SIMD_AVX2, &t2) || !t2) {
        CHECK(0); /* AVX-512 implies AVX2 */
        return;
    }
    CHECK(t2 == mmi_elementwise_isa_avx2());
    mmt_fill_uniform(x, N, 11, -12, 12);
    x[5] = NAN;
    x[6] = 0.624f;
    x[7] = -0.626f;
    x[8] = -100.0f;
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++)
        for (int64_t n = 0; n <= N; n += n < 40 ? 1 : 27) {
            int h5 = t5->act_forward(k, x, y5, n), h2 = t2->act_forward(k, x, y2, n);
            CHECK(h5 == h2); /* the same kinds vectorised */
            if (h5 && n) CHECK(memcmp(y5, y2, sizeof(float) * (size_t)n) == 0);
        }
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* NaN inputs of several signs and payloads, quiet and signalling. */
static const uint32_t k_nans[] = {0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0xffd00001u,
                                  0x7f800001u, 0xff812345u, 0x7fbfffffu};

/* The vector exponential itself (mmi_exp256 on the AVX2 table, mmi_exp512 on the AVX-512 one),
 * on every path this machine runs: NaN in gives NaN out, the input's bits quieted (the clamp
 * before the polynomial once turned NaN into its bound, a finite value); +Inf -> +Inf, above
 * 88.3763 +Inf, -Inf and below -88.3763 +0, exp(0) = 1, and float64 exp within 2.4e-7 relative
 * on [-87, 88] (absolute 1.2e-38 down to the cut), in vector lanes and in tails. */
static void exp_primitive_on(const mmi_elementwise_isa *t)
{
    enum { NE = 24, NN = (int)(sizeof k_nans / sizeof k_nans[0]) };
    const float hi = 88.3762626647949f;
    float x[NE] = {INFINITY, -INFINITY,
                   0.0f,     -0.0f,
                   hi,       nextafterf(hi, 100.0f),
                   88.72f,   FLT_MAX,
                   -hi,      nextafterf(-hi, -100.0f),
                   -87.5f,   -FLT_MAX,
                   1.0f,     -1.0f,
                   87.0f,    -87.0f,
                   1e-30f,   -1e-30f,
                   1e-45f,   10.5f,
                   -10.5f,   0.3466f,
                   60.0f,    -60.0f};
    float y[NE], one, xn[NN * 3], yn[NN * 3];
    CHECK(t->exp(x, y, NE) == 1);
    for (int i = 0; i < NE; i++) { /* the same bits alone, in a tail */
        CHECK(t->exp(x + i, &one, 1) == 1);
        CHECK(to_bits(one) == to_bits(y[i]));
    }
    CHECK(y[0] == INFINITY && to_bits(y[1]) == 0 && y[2] == 1.0f && y[3] == 1.0f);
    CHECK(isfinite(y[4]) && y[4] > 2e38f && y[5] == INFINITY && y[6] == INFINITY);
    CHECK(y[7] == INFINITY && to_bits(y[9]) == 0 && to_bits(y[11]) == 0);
    CHECK(y[8] > 0.0f && y[8] < 1.2e-38f && y[10] >= 0.0f && y[10] < 1.2e-38f);
    for (int i = 12; i < NE; i++) CHECK_NEAR(y[i], exp((double)x[i]), 2.4e-7, 1.2e-38);
    for (int i = 0; i < 3 * NN; i++) /* each NaN between finite lanes, at three offsets */
        xn[i] = i % 3 == 1 ? from_bits(k_nans[i / 3]) : (float)(i % 7) - 3.0f;
    for (int64_t n = 1; n <= 3 * NN; n++) {
        CHECK(t->exp(xn, yn, n) == 1);
        for (int64_t i = 0; i < n; i++)
            if (i % 3 == 1)
                CHECK(to_bits(yn[i]) == (k_nans[i / 3] | 0x00400000u));
            else
                CHECK_NEAR(yn[i], exp((double)xn[i]), 2.4e-7, 0);
    }
}

static void test_exp_primitive(void)
{
    int ran = 0;
    for (int p = MMI_SIMD_AVX2; p < MMI_SIMD_NPATHS; p++) {
        const mmi_elementwise_isa *t;
        if (!path_table(p, &t) || !t) continue;
        CHECK(t->exp != NULL);
        if (t->exp) exp_primitive_on(t), ran++;
    }
    if (!ran) mmt_skip("no vector path runs here");
}

/* tanh, sigmoid and SiLU on the vector paths: a NaN input gives that NaN quieted (sign and
 * payload kept), in vector lanes and tails, with no patch after the exponential; the portable
 * path gives some NaN (libm's). */
static void test_nan_bits(void)
{
    enum { NN = (int)(sizeof k_nans / sizeof k_nans[0]), M = 40 };
    const int kinds[3] = {MM_ACT_TANH, MM_ACT_SIGMOID, MM_ACT_SILU};
    float x[M], y[M];
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
        const mmi_elementwise_isa *t;
        if (!path_table(p, &t)) continue;
        for (int k = 0; k < 3; k++)
            for (int v = 0; v < NN; v++)
                for (int64_t n = 1; n <= M; n += n < 20 ? 1 : 7) {
                    mmt_fill_uniform(x, n, 31 + v, -3, 3);
                    x[(v * 5 + n) % n] = from_bits(k_nans[v]);
                    x[n - 1] = from_bits(k_nans[(v + 1) % NN]); /* the last lane, a tail's */
                    fwd_on(t, kinds[k], x, y, n);
                    for (int64_t i = 0; i < n; i++) {
                        const uint32_t xb = to_bits(x[i]);
                        if (!isnan(x[i])) {
                            CHECK(!isnan(y[i]));
                        } else if (t) {
                            CHECK(to_bits(y[i]) == (xb | 0x00400000u));
                        } else {
                            CHECK(isnan(y[i]));
                        }
                    }
                }
    }
}

/* mmi_lerp (Polyak) and mmi_bias_act_rows (the dense forward epilogue) on the dispatched entry
 * and on every path's table: lerp bitwise the loop d = d keep + take s (two rounded products,
 * a rounded sum) and within 1 ulp-scale of the float64 value, for every length 0..40 with
 * guards; bias_act_rows bitwise add_rows then act_forward row by row, on a strided view
 * (ld > n) whose gaps and guards stay untouched, for ReLU, a kind no table fuses (tanh), bias
 * or activation alone, and ReLU in place (ya = z). */
static void lerp_bias_on(const mmi_elementwise_isa *t)
{
    enum { M = 40, G = 16, R = 3, LD = M + 5 };
    static float d[M + 2 * G], ref[M], s[M], z[R * LD + 2 * G], ya[R * LD + 2 * G];
    static float zr[R * LD], yr[R * LD], x[R * LD], bias[M];
    const float keep = 0.995f, take = 0.005f;
    mmt_fill_uniform(s, M, 21, -3, 3);
    mmt_fill_uniform(x, R * LD, 22, -2, 2);
    mmt_fill_uniform(bias, M, 23, -1, 1);
    for (int64_t n = 0; n <= M; n++) {
        for (int j = 0; j < M + 2 * G; j++) d[j] = 66.0f;
        mmt_fill_uniform(d + G, n, 24, -3, 3);
        for (int64_t j = 0; j < n; j++) {
            double want = (double)d[G + j] * 0.995 + 0.005 * (double)s[j];
            ref[j] = d[G + j] * keep + take * s[j];
            CHECK(fabs(ref[j] - want) <= 1e-6 * (fabs(want) + 3.0));
        }
        if (t)
            CHECK(!t->lerp || t->lerp(d + G, s, n, keep, take) == 1);
        else
            mmi_lerp(d + G, s, n, keep, take);
        for (int j = 0; j < G; j++) CHECK(d[j] == 66.0f && d[G + n + j] == 66.0f);
        CHECK(n == 0 || !t || !t->lerp || memcmp(d + G, ref, sizeof(float) * (size_t)n) == 0);
        CHECK(n == 0 || t || memcmp(d + G, ref, sizeof(float) * (size_t)n) == 0);
        for (int k = 0; k < 5; k++) {
            const int kind = k == 3 ? MM_ACT_TANH : MM_ACT_RELU, use_b = k != 2, use_a = k != 1;
            float *out = k == 4 ? z : ya; /* k 4: in place (ya = z), as a ReLU after a dense */
            int done;
            for (int j = 0; j < R * LD + 2 * G; j++) z[j] = ya[j] = 55.0f;
            for (int r = 0; r < R; r++)
                for (int64_t j = 0; j < n; j++) z[G + r * LD + j] = zr[r * LD + j] = x[r * LD + j];
            for (int r = 0; r < R; r++) { /* the unfused pair, row by row */
                if (use_b) mmi_add_rows(zr + r * LD, bias, 1, n);
                if (use_a) mmi_act_forward(kind, zr + r * LD, yr + r * LD, n);
            }
            if (t) {
                done = t->bias_act_rows && t->bias_act_rows(z + G, use_b ? bias : NULL,
                                                            use_a ? out + G : NULL, kind, R, n, LD);
                if (!done) continue; /* the pair runs instead: nothing of its own to check */
            } else {
                mmi_bias_act_rows(z + G, use_b ? bias : NULL, use_a ? out + G : NULL, kind, R, n,
                                  LD);
            }
            if (k == 4) { /* z holds the activation; the reference's yr */
                for (int r = 0; r < R; r++)
                    CHECK(n == 0 ||
                          memcmp(z + G + r * LD, yr + r * LD, sizeof(float) * (size_t)n) == 0);
                for (int j = 0; j < G; j++)
                    CHECK(z[j] == 55.0f && z[G + (R - 1) * LD + n + j] == 55.0f);
                continue;
            }
            for (int j = 0; j < G; j++) {
                CHECK(z[j] == 55.0f && z[G + (R - 1) * LD + n + j] == 55.0f);
                CHECK(ya[j] == 55.0f && ya[G + (R - 1) * LD + n + j] == 55.0f);
            }
            for (int r = 0; r < R; r++) {
                for (int64_t j = n; j < LD && r < R - 1; j++)
                    CHECK(z[G + r * LD + j] == 55.0f && ya[G + r * LD + j] == 55.0f);
                CHECK(n == 0 ||
                      memcmp(z + G + r * LD, zr + r * LD, sizeof(float) * (size_t)n) == 0);
                if (use_a)
                    CHECK(n == 0 ||
                          memcmp(ya + G + r * LD, yr + r * LD, sizeof(float) * (size_t)n) == 0);
                for (int64_t j = 0; j < n && use_a && kind == MM_ACT_RELU; j++) {
                    double v = (double)x[r * LD + j] + (use_b ? (double)bias[j] : 0.0);
                    CHECK(fabs(ya[G + r * LD + j] - (v > 0 ? v : 0)) <= 1e-6 * (fabs(v) + 1));
                }
            }
        }
    }
}

static void test_lerp_bias_act(void)
{
    lerp_bias_on(NULL); /* the dispatched entries */
    for (int p = MMI_SIMD_AVX2; p < MMI_SIMD_NPATHS; p++) {
        const mmi_elementwise_isa *t;
        if (path_table(p, &t) && t) lerp_bias_on(t);
    }
}

void suite_act(void)
{
    mmt_run("act_lerp_bias_act", test_lerp_bias_act);
    mmt_run("act_paths_bitwise", test_paths_bitwise);
    mmt_run("act_values", test_values);
    mmt_run("act_special", test_special);
    mmt_run("act_tails", test_tails);
    mmt_run("act_avx512", test_avx512);
    mmt_run("act_exp_primitive", test_exp_primitive);
    mmt_run("act_nan_bits", test_nan_bits);
}
