/* SPDX-License-Identifier: MIT */
/* act.c — activation functions and their derivatives, portable C (libm) with run-time dispatch
 * to the AVX2/FMA (act_avx2.c) or AVX-512 (act_avx512.c) bodies for the kinds they vectorise.
 * Derivatives are cheap arithmetic on x and y, and their vector bodies perform the portable
 * operations exactly, so backward is bitwise the same on every path given the same forward
 * values. */
#include "mmi_elementwise.h"

#include <math.h>

/* Softplus switches to the identity above this (torch.nn.Softplus threshold, beta = 1). */
#define SOFTPLUS_THRESHOLD 20.0f

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void mmi_act_forward_portable(int32_t kind, const float *x, float *y, int64_t n)
{
    int64_t i;
    switch (kind) {
    case MM_ACT_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates */
        break;
    case MM_ACT_TANH:
        for (i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case MM_ACT_SIGMOID:
        for (i = 0; i < n; i++) y[i] = sigmoidf(x[i]);
        break;
    case MM_ACT_GELU:
        /* Exact GELU; erf in double keeps the float result correctly rounded in practice. */
        for (i = 0; i < n; i++)
            y[i] = (float)(0.5 * (double)x[i] * (1.0 + erf((double)x[i] * 0.70710678118654752)));
        break;
    case MM_ACT_SILU:
        for (i = 0; i < n; i++) y[i] = x[i] * sigmoidf(x[i]);
        break;
    case MM_ACT_ELU:
        for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : expm1f(x[i]);
        break;
    case MM_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) y[i] = x[i] > SOFTPLUS_THRESHOLD ? x[i] : log1pf(expf(x[i]));
        break;
    case MM_ACT_RELU2:
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i] * x[i];
        break;
    default:
        break;
    }
}

void mmi_act_forward(int32_t kind, const float *x, float *y, int64_t n)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (x && y)));
    if (v && v->act_forward(kind, x, y, n)) return;
    mmi_act_forward_portable(kind, x, y, n);
}

void mmi_act_backward_portable(int32_t kind, const float *x, const float *y, const float *dy,
                               float *dx, int64_t n)
{
    int64_t i;
    switch (kind) {
    case MM_ACT_RELU:
        /* 0 at x == 0, as PyTorch (threshold_backward on the output). */
        for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case MM_ACT_TANH:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case MM_ACT_SIGMOID:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
        break;
    case MM_ACT_GELU:
        /* d/dx x*Phi(x) = Phi(x) + x*phi(x). */
        for (i = 0; i < n; i++) {
            double v = (double)x[i];
            double cdf = 0.5 * (1.0 + erf(v * 0.70710678118654752));
            double pdf = 0.39894228040143268 * exp(-0.5 * v * v);
            dx[i] = (float)((double)dy[i] * (cdf + v * pdf));
        }
        break;
    case MM_ACT_SILU:
        /* s + x s (1 - s) = s (1 + x (1 - s)). */
        for (i = 0; i < n; i++) {
            float s = sigmoidf(x[i]);
            dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
        }
        break;
    case MM_ACT_ELU:
        /* exp(x) = y + 1 for x <= 0 (alpha = 1). */
        for (i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + 1.0f);
        break;
    case MM_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) dx[i] = x[i] > SOFTPLUS_THRESHOLD ? dy[i] : dy[i] * sigmoidf(x[i]);
        break;
    case MM_ACT_RELU2:
        for (i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] * (2.0f * x[i]) : 0.0f;
        break;
    default:
        break;
    }
}

void mmi_act_backward(int32_t kind, const float *x, const float *y, const float *dy, float *dx,
                      int64_t n)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (x && y && dy && dx)));
    if (v && v->act_backward(kind, x, y, dy, dx, n)) return;
    mmi_act_backward_portable(kind, x, y, dy, dx, n);
}
