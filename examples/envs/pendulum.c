/* SPDX-License-Identifier: MIT */
/* pendulum.c — Pendulum-v1 dynamics (Gymnasium classic_control/pendulum.py, g = 10). */
#include "envs.h"

#include <math.h>

/* ((x + pi) mod 2 pi) - pi with Python's floor-mod (fmod keeps the dividend's sign). */
static double angle_normalize(double x)
{
    double m = fmod(x + ENV_PI, 2.0 * ENV_PI);
    if (m < 0) m += 2.0 * ENV_PI;
    return m - ENV_PI;
}

double pendulum_dynamics(double s[2], float action, int32_t *terminated)
{
    const double g = 10.0, m = 1.0, l = 1.0, dt = 0.05, max_speed = 8.0;
    double th = s[0], thd = s[1];
    double u = action < -2.0f ? -2.0 : (action > 2.0f ? 2.0 : (double)action);
    double an = angle_normalize(th);
    double cost = an * an + 0.1 * thd * thd + 0.001 * u * u; /* pre-step state */
    double nthd = thd + (3.0 * g / (2.0 * l) * sin(th) + 3.0 / (m * l * l) * u) * dt;
    nthd = nthd < -max_speed ? -max_speed : (nthd > max_speed ? max_speed : nthd);
    s[0] = th + nthd * dt; /* semi-implicit: the new velocity */
    s[1] = nthd;
    *terminated = 0;
    return -cost;
}
