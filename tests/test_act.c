/* SPDX-License-Identifier: MIT */
/* test_act.c — the activation kernels (src/kernels/elementwise/act*.c): forward values against float64
 * libm over a wide range including the saturating tails, NaN propagation, PyTorch's softplus
 * threshold and ReLU conventions, and derivatives against float64 formulas. Both the
 * dispatched path (AVX2/FMA on this CPU when available) and the result's relative error bound
 * (4 ulp, 2.4e-7, plus 1e-37 absolute for denormal-range sigmoid tails) are checked. */
#include "kernels/elementwise/mmi_elementwise.h"
#include "runner.h"

#include <math.h>
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

static void test_values(void)
{
    enum { N = 4003 }; /* not a multiple of 8: the SIMD tail runs */
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    float *dy = malloc(sizeof(float) * N), *dx = malloc(sizeof(float) * N);
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
        mmi_act_forward(k, x, y, N);
        mmi_act_backward(k, x, y, dy, dx, N);
        for (int i = 0; i < N && bad < 3; i++) {
            double want = mmt_act_ref(k, x[i]), dwant = dy[i] * dref(k, x[i]);
            if (fabs(y[i] - want) > 2.4e-7 * fabs(want) + 1e-37) {
                mmt_fail(__FILE__, __LINE__, "act %d: f(%.9g) = %.9g, want %.9g", k, (double)x[i],
                         (double)y[i], want);
                bad++;
            }
            /* Derivatives are computed from the float y (tanh' = 1 - y^2), so y's 2.4e-7
             * relative error becomes up to ~5e-7 absolute in f'; bound: 1e-6 relative plus
             * 5e-7 |dy| absolute. */
            if (fabs(dx[i] - dwant) > 1e-6 * fabs(dwant) + 5e-7 * fabs(dy[i])) {
                mmt_fail(__FILE__, __LINE__, "act %d: f'(%.9g) dy = %.9g, want %.9g", k,
                         (double)x[i], (double)dx[i], dwant);
                bad++;
            }
        }
    }
    free(x), free(y), free(dy), free(dx);
}

static void test_special(void)
{
    float x[9] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 20.0f, 20.5f, 19.5f, 1.0f}, y[9];
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        mmi_act_forward(k, x, y, 9);
        CHECK(isnan(y[0])); /* NaN propagates through every activation */
    }
    mmi_act_forward(MM_ACT_TANH, x, y, 9);
    CHECK(y[1] == 1.0f && y[2] == -1.0f && y[3] == 0.0f);
    mmi_act_forward(MM_ACT_SIGMOID, x, y, 9);
    CHECK(y[1] == 1.0f && y[2] == 0.0f && y[3] == 0.5f);
    mmi_act_forward(MM_ACT_RELU, x, y, 9);
    CHECK(y[1] == INFINITY && y[2] == 0.0f && y[8] == 1.0f);
    /* softplus: identity strictly above 20 (torch threshold=20), log1p(exp) at 20 */
    mmi_act_forward(MM_ACT_SOFTPLUS, x, y, 9);
    CHECK(y[6] == 20.5f);
    CHECK_NEAR(y[5], log1p(exp(20.0)), 1e-7, 0);
    CHECK_NEAR(y[7], log1p(exp(19.5)), 1e-7, 0);
}

/* The dispatched backward (AVX2 on this CPU) is bitwise the portable one; the row and column
 * kernels are bitwise the plain loops written here. */
static void test_paths_bitwise(void)
{
    enum { R = 37, C = 45 }; /* tails in both directions */
    float x[R * C], y[R * C], dy[R * C], a[R * C], b[R * C], bias[C];
    double acc1[C], acc2[C], lane[8] = {0}, want;
    int64_t i = 0;
    mmt_fill_uniform(x, R * C, 1, -3, 3);
    mmt_fill_uniform(dy, R * C, 2, -1, 1);
    mmt_fill_uniform(bias, C, 3, -1, 1);
    mmi_dispatch d;
    const mmi_elementwise_isa *avx2 = mmi_dispatch_for(MMI_SIMD_AVX2, &d) ? d.elementwise : NULL;
    for (int k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++) {
        mmi_act_forward(k, x, y, R * C);
        mmi_act_backward(k, x, y, dy, a, R * C);
        mmi_act_backward_portable(k, x, y, dy, b, R * C);
        CHECK(memcmp(a, b, sizeof a) == 0);
        /* And the AVX2 variant itself, whichever path MM_SIMD chose for the dispatch. */
        if (avx2 && avx2->act_backward(k, x, y, dy, a, R * C)) CHECK(memcmp(a, b, sizeof a) == 0);
    }
    memcpy(a, x, sizeof a);
    mmi_add_rows(a, bias, R, C);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) CHECK(a[r * C + j] == x[r * C + j] + bias[j]);
    for (int j = 0; j < C; j++) acc1[j] = acc2[j] = 0.5 * j;
    mmi_colsum_f64(x, R, C, acc1);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) acc2[j] += (double)x[r * C + j];
    CHECK(memcmp(acc1, acc2, sizeof acc1) == 0);
    for (; i + 8 <= R * C; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < R * C; i++, k++) lane[k] += (double)x[i] * (double)x[i];
    want =
        ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    CHECK(mmi_sumsq_f64(x, R * C) == want);
    x[100] = NAN;
    CHECK(isnan(mmi_sumsq_f64(x, R * C)));
    x[100] = INFINITY;
    CHECK(isinf(mmi_sumsq_f64(x, R * C)));
}

void suite_act(void)
{
    mmt_run("act_paths_bitwise", test_paths_bitwise);
    mmt_run("act_values", test_values);
    mmt_run("act_special", test_special);
}
