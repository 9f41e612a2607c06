/* SPDX-License-Identifier: MIT */
/* reward_spike.c — one corrupted reward of 1e6 in a TD3 run on Pendulum-v1 (64-64 networks,
 * 15000 steps, the spike at step 3000), trained with norm_reward = 0 (raw rewards), 1 (SB3
 * VecNormalize) and 2 (VecNormalize with the outlier guard), and once without the spike.
 * Prints the deterministic evaluation return (10 episodes) of each; exits non-zero if the
 * guarded normaliser did not learn despite the spike (return below -400; a random policy
 * scores about -1200). Usage: reward_spike [steps] [seed]. */
#include <mm.h>

#include "envs/envs.h"

#include <stdio.h>
#include <stdlib.h>

static float g_lo = -2.0f, g_hi = 2.0f;

/* Trains one agent and returns its evaluation return (1e9 on a library failure). */
static double train(int32_t norm, int spike, long steps, uint64_t seed)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    env e;
    float obs[3], next[3], a, r;
    double total = 0;
    int rc = mm_policy_opts_init(&o, MM_ALGO_TD3);
    o.obs_dim = 3, o.act_dim = 1, o.act_low = &g_lo, o.act_high = &g_hi, o.seed = seed;
    o.gamma = 0.98, o.buffer_size = 200000, o.learning_starts = 1000;
    o.hidden[0] = 64, o.hidden[1] = 64, o.batch_size = 128, o.norm_reward = norm;
    if (rc == MM_OK) rc = mm_policy_create(&p, &o);
    env_init(&e, ENV_PENDULUM, seed);
    env_reset(&e, obs);
    for (long s = 0; s < steps && rc == MM_OK; s++) {
        int32_t te, tr, did;
        uint8_t t8, u8;
        rc = mm_policy_act(p, obs, 1, &a, 1);
        env_step(&e, &a, next, &r, &te, &tr);
        if (spike && s == 3000) r = 1e6f; /* a sensor glitch, a scripting bug ... */
        t8 = (uint8_t)te, u8 = (uint8_t)tr;
        if (rc == MM_OK) rc = mm_policy_observe(p, obs, &a, &r, next, &t8, &u8, 1);
        if (rc == MM_OK) rc = mm_policy_update(p, &did);
        if (te || tr)
            env_reset(&e, obs);
        else
            obs[0] = next[0], obs[1] = next[1], obs[2] = next[2];
    }
    env_init(&e, ENV_PENDULUM, seed + 1000);
    for (int k = 0; k < 10 && rc == MM_OK; k++) {
        int32_t te = 0, tr = 0;
        env_reset(&e, obs);
        while (!te && !tr && rc == MM_OK) {
            rc = mm_policy_act(p, obs, 1, &a, 0);
            env_step(&e, &a, obs, &r, &te, &tr);
            total += r;
        }
    }
    if (rc != MM_OK) fprintf(stderr, "failed: %s\n", p ? mm_policy_errmsg(p) : mm_status_str(rc));
    mm_policy_free(p);
    return rc == MM_OK ? total / 10 : 1e9;
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 15000;
    uint64_t seed = argc > 2 ? (uint64_t)atoll(argv[2]) : 1;
    double clean = train(0, 0, steps, seed), raw = train(0, 1, steps, seed);
    double sb3 = train(1, 1, steps, seed), guard = train(2, 1, steps, seed);
    printf("TD3 Pendulum-v1, %ld steps, seed %llu, evaluation return (higher is better)\n", steps,
           (unsigned long long)seed);
    printf("  no spike, raw rewards          %8.1f\n", clean);
    printf("  spike, raw rewards             %8.1f\n", raw);
    printf("  spike, norm_reward 1 (SB3)     %8.1f\n", sb3);
    printf("  spike, norm_reward 2 (guarded) %8.1f\n", guard);
    return guard > 1e8 || guard < -400.0 ? 1 : 0;
}
