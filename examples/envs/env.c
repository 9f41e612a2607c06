/* SPDX-License-Identifier: MIT */
/* env.c — the generic env front: kind dispatch, the seeded reset draws and the TimeLimit
 * wrapper (truncated on the max_steps-th step, checked after the step as Gymnasium does). */
#include "envs.h"

#include <math.h>
#include <stddef.h>

/* splitmix64: tiny, seedable, good enough for reset states */
static double env_uniform(env *e, double lo, double hi)
{
    uint64_t z = (e->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * ((double)(z >> 11) * (1.0 / 9007199254740992.0));
}

int env_init(env *e, int32_t kind, uint64_t seed)
{
    static const int32_t obs_dim[5] = {0, 4, 3, 2, 6};
    static const int32_t max_steps[5] = {0, 500, 200, 999, 500};
    static const int32_t n_actions[5] = {0, 2, 0, 0, 3};
    static const float high[5] = {0, 0, 2.0f, 1.0f, 0};
    if (kind < ENV_CARTPOLE || kind > ENV_ACROBOT) return -1;
    e->kind = kind;
    e->obs_dim = obs_dim[kind];
    e->act_dim = 1;
    e->n_actions = n_actions[kind];
    e->act_low = -high[kind];
    e->act_high = high[kind];
    e->max_steps = max_steps[kind];
    e->steps = 0;
    e->done = 0;
    e->s[0] = e->s[1] = e->s[2] = e->s[3] = 0.0;
    e->rng = seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    e->masked = 0;
    return 0;
}

int env_mask_velocity(env *e)
{
    if (e->kind != ENV_CARTPOLE && e->kind != ENV_PENDULUM) return -1;
    e->masked = 1;
    e->obs_dim = 2;
    return 0;
}

const char *env_label(const env *e)
{
    if (e->masked) return e->kind == ENV_CARTPOLE ? "CartPoleNoVel-v1" : "PendulumNoVel-v1";
    return env_name(e->kind);
}

void env_reset(env *e, float *obs)
{
    e->steps = 0;
    e->done = 0;
    switch (e->kind) {
    case ENV_CARTPOLE:
        for (int i = 0; i < 4; i++) e->s[i] = env_uniform(e, -0.05, 0.05);
        break;
    case ENV_PENDULUM:
        e->s[0] = env_uniform(e, -ENV_PI, ENV_PI);
        e->s[1] = env_uniform(e, -1.0, 1.0);
        break;
    case ENV_MOUNTAIN_CAR: /* Gymnasium keeps this state in float32 */
        e->s[0] = (float)env_uniform(e, -0.6, -0.4);
        e->s[1] = 0.0;
        break;
    default: /* Acrobot: float32 draws */
        for (int i = 0; i < 4; i++) e->s[i] = (float)env_uniform(e, -0.1, 0.1);
        break;
    }
    env_observe(e, obs);
}

void env_observe(const env *e, float *obs)
{
    const double *s = e->s;
    switch (e->kind) {
    case ENV_CARTPOLE:
        if (e->masked) { /* position and angle only */
            obs[0] = (float)s[0];
            obs[1] = (float)s[2];
            break;
        }
        for (int i = 0; i < 4; i++) obs[i] = (float)s[i];
        break;
    case ENV_PENDULUM:
        obs[0] = (float)cos(s[0]);
        obs[1] = (float)sin(s[0]);
        if (!e->masked) obs[2] = (float)s[1];
        break;
    case ENV_MOUNTAIN_CAR:
        obs[0] = (float)s[0];
        obs[1] = (float)s[1];
        break;
    default:
        obs[0] = (float)cos(s[0]);
        obs[1] = (float)sin(s[0]);
        obs[2] = (float)cos(s[1]);
        obs[3] = (float)sin(s[1]);
        obs[4] = (float)s[2];
        obs[5] = (float)s[3];
        break;
    }
}

void env_step(env *e, const float *action, float *obs, float *reward, int32_t *terminated,
              int32_t *truncated)
{
    int32_t term = 0;
    double r;
    switch (e->kind) {
    case ENV_CARTPOLE:
        r = cartpole_dynamics(e->s, action[0] >= 0.5f ? 1 : 0, &term);
        break;
    case ENV_PENDULUM:
        r = pendulum_dynamics(e->s, action[0], &term);
        break;
    case ENV_MOUNTAIN_CAR:
        r = mountain_car_dynamics(e->s, action[0], &term);
        break;
    default: {
        float a = action[0];
        int32_t ai = a < 0.5f ? 0 : (a < 1.5f ? 1 : 2);
        r = acrobot_dynamics(e->s, ai, &term);
        break;
    }
    }
    /* Gymnasium: stepping a finished CartPole gives reward 0 (undefined behaviour warning). */
    if (e->done && e->kind == ENV_CARTPOLE) r = 0.0;
    if (term) e->done = 1;
    e->steps++;
    env_observe(e, obs);
    *reward = (float)r;
    *terminated = term;
    *truncated = e->steps >= e->max_steps;
}

const char *env_name(int32_t kind)
{
    switch (kind) {
    case ENV_CARTPOLE:
        return "CartPole-v1";
    case ENV_PENDULUM:
        return "Pendulum-v1";
    case ENV_MOUNTAIN_CAR:
        return "MountainCarContinuous-v0";
    case ENV_ACROBOT:
        return "Acrobot-v1";
    default:
        return "unknown";
    }
}
