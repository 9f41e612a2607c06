/* SPDX-License-Identifier: MIT */
/* test_envs.c — the classic-control environments of examples/envs against the step vectors of
 * docs/RL.md §Environments (tolerance 1e-6), time limits, termination and reset determinism. The env
 * sources are plain C and compiled into this file directly. */
#include "runner.h"

#include "../examples/envs/acrobot.c"
#include "../examples/envs/cartpole.c"
#include "../examples/envs/env.c"
#include "../examples/envs/mountain_car.c"
#include "../examples/envs/pendulum.c"

static void test_step_vectors(void)
{
    int32_t t;
    double c1[4] = {0.01, -0.02, 0.03, -0.04}, c0[4] = {0.01, -0.02, 0.03, -0.04};
    CHECK_NEAR(cartpole_dynamics(c1, 1, &t), 1.0, 0, 0);
    CHECK(!t);
    CHECK_NEAR(c1[0], 0.0096, 0, 1e-6);
    CHECK_NEAR(c1[1], 0.1746791957, 0, 1e-6);
    CHECK_NEAR(c1[2], 0.0292, 0, 1e-6);
    CHECK_NEAR(c1[3], -0.3230687180, 0, 1e-6);
    CHECK_NEAR(cartpole_dynamics(c0, 0, &t), 1.0, 0, 0);
    CHECK_NEAR(c0[1], -0.2155390171, 0, 1e-6);
    CHECK_NEAR(c0[3], 0.2619952238, 0, 1e-6);
    double p1[2] = {1.0, 0.5}, p2[2] = {-3.5, 7.9};
    CHECK_NEAR(pendulum_dynamics(p1, 1.5f, &t), -1.02725, 0, 1e-6);
    CHECK_NEAR(p1[0], 1.0678051619, 0, 1e-6);
    CHECK_NEAR(p1[1], 1.3561032386, 0, 1e-6);
    CHECK_NEAR(pendulum_dynamics(p2, -3.0f, &t), -13.9911204541, 0, 1e-6);
    CHECK_NEAR(p2[0], -3.1068456290, 0, 1e-6);
    CHECK_NEAR(p2[1], 7.8630874208, 0, 1e-6);
    double m1[2] = {-0.5, 0.0}, m2[2] = {0.449, 0.06};
    CHECK_NEAR(mountain_car_dynamics(m1, 1.0f, &t), -0.1, 0, 1e-6);
    CHECK(!t);
    CHECK_NEAR(m1[0], -0.4986768430, 0, 1e-6);
    CHECK_NEAR(m1[1], 0.0013231570, 0, 1e-6);
    CHECK_NEAR(mountain_car_dynamics(m2, 0.5f, &t), 99.975, 0, 1e-6);
    CHECK(t);
    CHECK_NEAR(m2[0], 0.5091951678, 0, 1e-6);
    CHECK_NEAR(m2[1], 0.0601951678, 0, 1e-6);
    double a[4] = {0.05, -0.03, 0.02, -0.01};
    CHECK_NEAR(acrobot_dynamics(a, 2, &t), -1.0, 0, 0);
    CHECK(!t);
    CHECK_NEAR(a[0], 0.0339392116, 0, 1e-6);
    CHECK_NEAR(a[1], 0.0101677904, 0, 1e-6);
    CHECK_NEAR(a[2], -0.1758318308, 0, 1e-6);
    CHECK_NEAR(a[3], 0.4017749797, 0, 1e-6);
}

static void test_time_limits(void)
{
    static const int32_t kinds[4] = {ENV_CARTPOLE, ENV_PENDULUM, ENV_MOUNTAIN_CAR, ENV_ACROBOT};
    static const int32_t limits[4] = {500, 200, 999, 500};
    for (int k = 0; k < 4; k++) {
        env e;
        float obs[ENV_MAX_OBS], a = 0, r;
        int32_t te = 0, tr = 0, n = 0;
        CHECK_EQ_I64(env_init(&e, kinds[k], 3), 0);
        env_reset(&e, obs);
        while (!tr && n < 5000) {
            /* keep the state away from termination: reset the physics, not the counter */
            if (kinds[k] == ENV_CARTPOLE) e.s[0] = e.s[1] = e.s[2] = e.s[3] = 0;
            if (kinds[k] == ENV_MOUNTAIN_CAR) e.s[0] = -0.5, e.s[1] = 0;
            if (kinds[k] == ENV_ACROBOT) e.s[0] = e.s[1] = e.s[2] = e.s[3] = 0, a = 1;
            env_step(&e, &a, obs, &r, &te, &tr);
            CHECK(!te);
            n++;
        }
        CHECK_EQ_I64(n, limits[k]);
    }
    {
        env bad;
        CHECK_EQ_I64(env_init(&bad, 99, 0), -1);
    }
}

static void test_termination_and_reset(void)
{
    env e, f;
    float o1[4], o2[4], a = 1, r;
    int32_t te = 0, tr = 0, n = 0;
    env_init(&e, ENV_CARTPOLE, 7);
    env_init(&f, ENV_CARTPOLE, 7);
    env_reset(&e, o1);
    env_reset(&f, o2);
    for (int i = 0; i < 4; i++) {
        CHECK(o1[i] == o2[i]);
        CHECK(o1[i] >= -0.05f && o1[i] <= 0.05f);
    }
    while (!te && n < 500) env_step(&e, &a, o1, &r, &te, &tr), n++;
    CHECK(te);        /* always pushing right tips the pole */
    CHECK(r == 1.0f); /* reward 1 on the terminating step too */
    env_step(&e, &a, o1, &r, &te, &tr);
    CHECK(r == 0.0f); /* stepping a finished episode gives 0 */
    CHECK_NEAR(angle_normalize(-3.5), -3.5 + 2 * ENV_PI, 0, 1e-12);
    CHECK_NEAR(angle_normalize(7.0), 7.0 - 2 * ENV_PI, 0, 1e-12);
}

void suite_envs(void)
{
    mmt_run("envs_step_vectors", test_step_vectors);
    mmt_run("envs_time_limits", test_time_limits);
    mmt_run("envs_termination_and_reset", test_termination_and_reset);
}
