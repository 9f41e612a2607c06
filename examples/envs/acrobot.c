/* SPDX-License-Identifier: MIT */
/* acrobot.c — Acrobot-v1 dynamics (Gymnasium classic_control/acrobot.py, "book" variant):
 * one classical RK4 step of dt = 0.2 with the torque held, then angle wrapping and velocity
 * clipping. */
#include "envs.h"

#include <math.h>

static void acrobot_deriv(const double y[4], double tau, double d[4])
{
    const double m1 = 1, m2 = 1, l1 = 1, lc1 = 0.5, lc2 = 0.5, i1 = 1, i2 = 1, g = 9.8;
    double th1 = y[0], th2 = y[1], dth1 = y[2], dth2 = y[3];
    double d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * cos(th2)) + i1 + i2;
    double d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos(th2)) + i2;
    double phi2 = m2 * lc2 * g * cos(th1 + th2 - ENV_PI / 2.0);
    double phi1 = -m2 * l1 * lc2 * dth2 * dth2 * sin(th2) -
                  2 * m2 * l1 * lc2 * dth2 * dth1 * sin(th2) +
                  (m1 * lc1 + m2 * l1) * g * cos(th1 - ENV_PI / 2.0) + phi2;
    double ddth2 = (tau + d2 / d1 * phi1 - m2 * l1 * lc2 * dth1 * dth1 * sin(th2) - phi2) /
                   (m2 * lc2 * lc2 + i2 - d2 * d2 / d1);
    double ddth1 = -(d2 * ddth2 + phi1) / d1;
    d[0] = dth1;
    d[1] = dth2;
    d[2] = ddth1;
    d[3] = ddth2;
}

static double wrap(double x, double lo, double hi)
{
    double diff = hi - lo;
    while (x > hi) x -= diff;
    while (x < lo) x += diff;
    return x;
}

static double bound(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

double acrobot_dynamics(double s[4], int32_t action, int32_t *terminated)
{
    const double dt = 0.2;
    double tau = (double)(action - 1), k1[4], k2[4], k3[4], k4[4], y[4];
    acrobot_deriv(s, tau, k1);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt / 2 * k1[i];
    acrobot_deriv(y, tau, k2);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt / 2 * k2[i];
    acrobot_deriv(y, tau, k3);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt * k3[i];
    acrobot_deriv(y, tau, k4);
    for (int i = 0; i < 4; i++) s[i] += dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    s[0] = wrap(s[0], -ENV_PI, ENV_PI);
    s[1] = wrap(s[1], -ENV_PI, ENV_PI);
    s[2] = bound(s[2], -4 * ENV_PI, 4 * ENV_PI);
    s[3] = bound(s[3], -9 * ENV_PI, 9 * ENV_PI);
    *terminated = -cos(s[0]) - cos(s[1] + s[0]) > 1.0;
    return *terminated ? 0.0 : -1.0;
}
