/* SPDX-License-Identifier: MIT */
/* numeric.c — small numeric checks shared by every floor. */
#include "mmi.h"

#include <math.h>

int mmi_all_finite(const float *x, int64_t n)
{
    /* x*0 is 0 for finite x and NaN for Inf/NaN, so one accumulated test covers the block. */
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0.0f;
}
