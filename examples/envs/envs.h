/* SPDX-License-Identifier: MIT */
/*
 * envs.h — the classic-control environments libmm's examples, tests and benchmarks train on:
 * CartPole-v1, Pendulum-v1, MountainCarContinuous-v0 and Acrobot-v1 with Gymnasium's dynamics,
 * rewards, termination and time limits (docs/RL.md §Environments; the TimeLimit wrapper
 * is built in: `truncated` becomes 1 on the max_steps-th step).
 *
 * Plain C99, no allocation: an env is a struct the caller owns. Seeded: the same seed gives the
 * same reset states. Observations are float32 (the state is integrated in double, emitted as
 * float, as Gymnasium does); actions are float (a discrete action is an integer-valued float).
 */
#ifndef MM_EXAMPLES_ENVS_H
#define MM_EXAMPLES_ENVS_H

#include <stdint.h>

enum { ENV_CARTPOLE = 1, ENV_PENDULUM = 2, ENV_MOUNTAIN_CAR = 3, ENV_ACROBOT = 4 };

#define ENV_MAX_OBS 6
#define ENV_PI      3.14159265358979323846

typedef struct env {
    int32_t kind;
    int32_t obs_dim;
    int32_t act_dim;         /* continuous: action width; discrete: 1 */
    int32_t n_actions;       /* discrete: number of actions; continuous: 0 */
    float act_low, act_high; /* continuous bounds (same for every dimension here) */
    int32_t max_steps;       /* TimeLimit max_episode_steps */
    int32_t steps;           /* steps since the last reset */
    int32_t done;            /* 1 after a terminating step (stepping on is allowed, reward 0) */
    double s[4];             /* physical state: CartPole (x, x', th, th'); Pendulum (th, th');
                              MountainCar (p, v); Acrobot (th1, th2, th1', th2') */
    uint64_t rng;            /* splitmix64 state of the reset draws */
    int32_t masked;          /* 1: velocities hidden (env_mask_velocity) */
} env;

/* Sets up env e of kind ENV_* with reset seed seed. Returns 0, or -1 for an unknown kind. */
int env_init(env *e, int32_t kind, uint64_t seed);
/* Starts an episode: draws the initial state and writes the observation (obs_dim floats). */
void env_reset(env *e, float *obs);
/* Writes the observation of the current state (obs_dim floats). */
void env_observe(const env *e, float *obs);
/* One step: action is act_dim floats (discrete: the index as a float), writes the next
 * observation, the reward, terminated (a true end) and truncated (the time limit). The caller
 * resets after either. */
void env_step(env *e, const float *action, float *obs, float *reward, int32_t *terminated,
              int32_t *truncated);
/* "CartPole-v1", ... */
const char *env_name(int32_t kind);
/* Hides the velocities from the observation, as rl-baselines3-zoo's NoVel wrappers
 * (CartPoleNoVel-v1: [x, theta]; PendulumNoVel-v1: [cos theta, sin theta]): a partially
 * observed task that a memoryless agent cannot solve. Call after env_init; obs_dim becomes 2.
 * Returns 0, or -1 for a kind without a masked form. */
int env_mask_velocity(env *e);
/* env_name, or "CartPoleNoVel-v1" / "PendulumNoVel-v1" when masked. */
const char *env_label(const env *e);

/* The per-kind dynamics on a given state (no time limit), for tests: s is updated in place,
 * the reward is returned and *terminated set. */
double cartpole_dynamics(double s[4], int32_t action, int32_t *terminated);
double pendulum_dynamics(double s[2], float action, int32_t *terminated);
double mountain_car_dynamics(double s[2], float action, int32_t *terminated);
double acrobot_dynamics(double s[4], int32_t action, int32_t *terminated);

#endif
