/* SPDX-License-Identifier: MIT */
/* mountain_car.c — MountainCarContinuous-v0 dynamics (Gymnasium continuous_mountain_car.py);
 * the state is rounded to float32 after each step as Gymnasium stores it. */
#include "envs.h"

#include <math.h>

double mountain_car_dynamics(double s[2], float action, int32_t *terminated)
{
    double p = s[0], v = s[1];
    double force = action < -1.0f ? -1.0 : (action > 1.0f ? 1.0 : (double)action);
    double r;
    v += force * 0.0015 - 0.0025 * cos(3.0 * p);
    v = v < -0.07 ? -0.07 : (v > 0.07 ? 0.07 : v);
    p += v;
    p = p < -1.2 ? -1.2 : (p > 0.6 ? 0.6 : p);
    if (p == -1.2 && v < 0) v = 0;
    *terminated = p >= 0.45 && v >= 0;
    /* the penalty uses the RAW action, the dynamics the clipped one */
    r = (*terminated ? 100.0 : 0.0) - 0.1 * (double)action * (double)action;
    s[0] = (float)p;
    s[1] = (float)v;
    return r;
}
