/* SPDX-License-Identifier: MIT */
/* cartpole.c — CartPole-v1 dynamics (Gymnasium classic_control/cartpole.py, explicit Euler). */
#include "envs.h"

#include <math.h>

double cartpole_dynamics(double s[4], int32_t action, int32_t *terminated)
{
    const double g = 9.8, m_pole = 0.1, total = 1.1, l = 0.5, pml = m_pole * l, dt = 0.02;
    const double th_max = 12.0 * 2.0 * ENV_PI / 360.0;
    double f = action == 1 ? 10.0 : -10.0;
    double x = s[0], xd = s[1], th = s[2], thd = s[3];
    double c = cos(th), sn = sin(th);
    double tmp = (f + pml * thd * thd * sn) / total;
    double thacc = (g * sn - c * tmp) / (l * (4.0 / 3.0 - m_pole * c * c / total));
    double xacc = tmp - pml * thacc * c / total;
    /* explicit Euler: positions move with the OLD velocities */
    s[0] = x + dt * xd;
    s[1] = xd + dt * xacc;
    s[2] = th + dt * thd;
    s[3] = thd + dt * thacc;
    *terminated = s[0] < -2.4 || s[0] > 2.4 || s[2] < -th_max || s[2] > th_max;
    return 1.0; /* also on the terminating step */
}
