/* SPDX-License-Identifier: MIT */
/* fuzz_policy_load.c — libFuzzer target for mm_policy_load on arbitrary file bytes.
 *
 * Input: [config byte][file bytes]. The config byte picks one of six small agents (every
 * algorithm, continuous and discrete: byte % 6) and the loader ((byte / 6) % 4: mm_policy_load
 * from a private temporary file, mm_policy_load_mem, mm_policy_load_cb in 5-byte chunks, or
 * mm_policy_load_new, which creates the agent from the file). Weights files and training
 * checkpoints are both seeds. Oracle: no crash, leak or sanitizer report; a failed load sets a message
 * and changes nothing (the deterministic actions are the same as before the call, as the
 * header promises: "everything is validated before anything is changed"); a successful load
 * gives an agent whose save -> load round trip reproduces its actions exactly. */
#include "mm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_CONFIGS 6
static const int32_t g_algo[N_CONFIGS] = {MM_ALGO_DDPG, MM_ALGO_TD3, MM_ALGO_A2C,
                                          MM_ALGO_QAC,  MM_ALGO_PPO, MM_ALGO_TRPO};

/* Config c's agent: obs 3, 2 agents, hidden 8 x 8; QAC and TRPO discrete, the others
 * continuous 2-D; PPO normalises observations (so the statistics are loaded too). */
static mm_policy *make_policy(int c)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    if (mm_policy_opts_init(&o, g_algo[c]) != MM_OK) abort();
    o.obs_dim = 3, o.n_agents = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = (uint64_t)c;
    o.buffer_size = 32, o.batch_size = 4, o.n_steps = 4, o.norm_obs = g_algo[c] == MM_ALGO_PPO;
    if (g_algo[c] == MM_ALGO_QAC || g_algo[c] == MM_ALGO_TRPO)
        o.n_actions = 3;
    else
        o.act_dim = 2;
    if (mm_policy_create(&p, &o) != MM_OK) abort();
    return p;
}

/* Acts for both agents. A loaded file may hold finite parameters large enough to overflow the
 * actor (1e37 weights): mm_policy_act then refuses with MM_E_NUMERIC and a message and writes
 * no action, as documented; any other failure is a bug. */
static int actions(mm_policy *p, float *out)
{
    static const float obs[6] = {0.1f, -0.2f, 0.3f, 1.0f, 0.5f, -1.5f};
    float keep[4];
    int rc;
    memcpy(keep, out, sizeof keep);
    rc = mm_policy_act(p, obs, 2, out, 0);
    if (rc != MM_OK && rc != MM_E_NUMERIC) abort();
    if (rc == MM_E_NUMERIC && (mm_policy_errmsg(p)[0] == '\0' || memcmp(keep, out, sizeof keep)))
        abort();
    return rc;
}

static const char *tmp_path(int which)
{
    static char path[2][64];
    if (!path[which][0])
        snprintf(path[which], sizeof path[which], "/tmp/mm_fuzz_policy_%ld_%d.safetensors",
                 (long)getpid(), which);
    return path[which];
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}

typedef struct chunks {
    const uint8_t *b;
    int64_t n, at;
} chunks;

static int64_t read_chunks(void *ud, void *buf, int64_t n)
{
    chunks *s = ud;
    int64_t k = s->n - s->at;
    if (k > n) k = n;
    if (k > 5) k = 5;
    memcpy(buf, s->b + s->at, (size_t)k);
    s->at += k;
    return k;
}

/* mm_policy_load_new: a failure leaves *out NULL with a message; a success gives an agent that
 * acts. */
static void load_new(void)
{
    mm_policy_opts o;
    mm_policy *r = (mm_policy *)&o;
    char msg[256] = "";
    float obs[3] = {0.5f, -0.5f, 0.25f}, a[8];
    if (mm_policy_opts_init(&o, MM_ALGO_PPO) != MM_OK) abort();
    o.err_buf = msg, o.err_buf_size = sizeof msg;
    if (mm_policy_load_new(&r, tmp_path(0), NULL) == MM_OK) {
        int rc;
        if (!r) abort();
        rc = mm_policy_act(r, obs, 1, a, 0); /* MM_E_NUMERIC: parameters that overflow */
        if (rc != MM_OK && rc != MM_E_NUMERIC) abort();
        mm_policy_free(r);
    } else if (r != NULL) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_policy *p, *q;
    float before[4] = {0}, after[4] = {0}; /* discrete agents write 2 of the 4 */
    int c, mode, rc, acted;
    if (size < 1) return 0;
    c = data[0] % N_CONFIGS;
    mode = (data[0] / N_CONFIGS) % 4;
    if (mode != 1 && !write_file(tmp_path(0), data + 1, size - 1)) return 0;
    if (mode == 3) {
        load_new();
        unlink(tmp_path(0));
        return 0;
    }
    p = make_policy(c);
    if (actions(p, before) != MM_OK) abort(); /* a fresh agent always acts */
    if (mode == 1) {
        rc = mm_policy_load_mem(p, data + 1, size - 1);
    } else if (mode == 2) {
        chunks s = {data + 1, (int64_t)size - 1, 0};
        rc = mm_policy_load_cb(p, read_chunks, &s);
        if (s.at > s.n) abort();
    } else {
        rc = mm_policy_load(p, tmp_path(0));
    }
    acted = actions(p, after);
    if (rc != MM_OK) {
        if (mm_policy_errmsg(p)[0] == '\0' || acted != MM_OK) abort();
        if (memcmp(before, after, sizeof before) != 0) abort(); /* changed by a failed load */
    } else {
        q = make_policy(c);
        if (mm_policy_save(p, tmp_path(1)) != MM_OK || mm_policy_load(q, tmp_path(1)) != MM_OK)
            abort();
        memcpy(before, after, sizeof before);
        if (actions(q, before) != acted) abort(); /* the saved copy acts (or refuses) alike */
        if (memcmp(before, after, sizeof before) != 0) abort();
        mm_policy_free(q);
        unlink(tmp_path(1));
    }
    mm_policy_free(p);
    unlink(tmp_path(0));
    return 0;
}
