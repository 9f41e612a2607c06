/* SPDX-License-Identifier: MIT */
/* replay.c — the off-policy replay buffer (SB3 ReplayBuffer): a circular array of raw
 * transitions with the TRUE next observation and the "terminated" flag only, so truncated
 * transitions bootstrap (docs/RL.md §Formulas); uniform sampling with replacement. */
#include "mmi_policy.h"

#include <string.h>

void mmi_replay_add(mmi_replay *r, const float *obs, const float *act, float rew,
                    const float *next_obs, float term)
{
    int64_t i = r->pos;
    MMI_ASSERT(r->cap > 0 && i >= 0 && i < r->cap);
    memcpy(r->obs + i * r->obs_dim, obs, sizeof(float) * (size_t)r->obs_dim);
    memcpy(r->next_obs + i * r->obs_dim, next_obs, sizeof(float) * (size_t)r->obs_dim);
    memcpy(r->act + i * r->act_dim, act, sizeof(float) * (size_t)r->act_dim);
    r->rew[i] = rew;
    r->term[i] = term;
    r->pos = (i + 1) % r->cap;
    if (r->size < r->cap) r->size++;
}

void mmi_replay_sample(const mmi_replay *r, mmi_rng *rng, int64_t n, int64_t *idx)
{
    MMI_ASSERT(r->size > 0 && r->size <= r->cap && n >= 0);
    for (int64_t k = 0; k < n; k++) idx[k] = (int64_t)mmi_rng_below(rng, (uint64_t)r->size);
}
