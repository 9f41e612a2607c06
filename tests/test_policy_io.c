/* SPDX-License-Identifier: MIT */
/* test_policy_io.c — policy files beyond 0.1: the exported actor reproduces mm_policy_act for
 * every algorithm (in memory, through a model file and mm_model_infer); save/load through
 * buffers and callbacks; create-from-file; mm_model_load naming a policy file; a 0.1 file
 * still loading; and checkpoints: save -> load into a fresh handle -> continue equals the
 * uninterrupted run bit for bit (TD3, DDPG with OU noise, A2C, PPO, TRPO), while a weights-only
 * resume does not (so the comparison can fail). */
#include "runner.h"

#include "policy/mmi_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float g_lo[2] = {-2.0f, -1.0f}, g_hi[2] = {2.0f, 3.0f};
static int g_memory; /* 1: PPO policies get an LRU memory core */

static void opts_for(mm_policy_opts *o, int32_t algo, int discrete, int norm)
{
    CHECK_OK(mm_policy_opts_init(o, algo));
    o->obs_dim = 3, o->seed = 9, o->n_agents = 4, o->norm_obs = norm;
    o->hidden[0] = 16, o->hidden[1] = 16;
    if (discrete)
        o->n_actions = 3;
    else
        o->act_dim = 2, o->act_low = g_lo, o->act_high = g_hi;
    o->buffer_size = 48, o->batch_size = 8, o->learning_starts = 10, o->n_steps = 6;
    o->n_epochs = 2, o->batch_size = algo >= MM_ALGO_A2C ? 12 : 8;
    o->linear_decay_steps = algo >= MM_ALGO_A2C ? 400 : 0;
    if (g_memory && algo == MM_ALGO_PPO)
        o->memory = MM_MEMORY_LRU, o->memory_dim = 4, o->memory_seq_len = 4;
}

static mm_policy *make_rn(int32_t algo, int discrete, int norm, int32_t noise, int32_t rnorm)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    opts_for(&o, algo, discrete, norm);
    if (noise) o.noise = noise;
    o.norm_reward = rnorm;
    CHECK_OK(mm_policy_create(&p, &o));
    return p;
}

static mm_policy *make(int32_t algo, int discrete, int norm, int32_t noise)
{
    return make_rn(algo, discrete, norm, noise, 0);
}

static void drive(mm_policy *p, int steps, uint64_t seed)
{
    mmt_policy_drive(p, steps, seed, 1.5f);
}

/* ---- export --------------------------------------------------------------------------------- */

/* The documented steps around the exported model, in the documented float order. */
static void exported_act(mm_model *m, int use_infer, const mm_policy_export_info *in,
                         const float *mean, const float *istd, const float *lo, const float *hi,
                         const float *obs, int64_t n, float *out)
{
    float x[4 * 3], y[4 * 4];
    int64_t sx[2] = {n, in->obs_dim}, sy[2] = {n, in->model_out};
    mm_tensor *tx = NULL, *ty = NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < in->obs_dim; j++) {
            float v = obs[i * in->obs_dim + j], c = in->clip_obs;
            if (in->norm_obs) {
                v = (v - mean[j]) * istd[j];
                v = v < -c ? -c : (v > c ? c : v);
            }
            x[i * in->obs_dim + j] = v;
        }
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, sx, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, 2, sy, NULL));
    if (use_infer) {
        size_t ws = 0;
        void *w;
        CHECK_OK(mm_model_infer_workspace_size(m, n, 1, &ws));
        w = aligned_alloc(64, (ws + 63) / 64 * 64 + 64);
        CHECK_OK(mm_model_infer(m, tx, ty, w, ws + 64));
        free(w);
    } else {
        CHECK_OK(mm_model_forward(m, tx, ty));
    }
    for (int64_t i = 0; i < n; i++) {
        const float *z = y + i * in->model_out;
        if (in->output == MM_EXPORT_ARGMAX) {
            int64_t best = 0;
            for (int64_t j = 1; j < in->model_out; j++) best = z[j] > z[best] ? j : best;
            out[i] = (float)best;
            continue;
        }
        for (int64_t j = 0; j < in->act_dim; j++) {
            float a = z[j];
            if (in->output == MM_EXPORT_TANH_MEAN) a = (float)tanh((double)a);
            if (in->output == MM_EXPORT_TANH_RESCALE || in->output == MM_EXPORT_TANH_MEAN)
                a = lo[j] + (a + 1.0f) * 0.5f * (hi[j] - lo[j]);
            else
                a = a < lo[j] ? lo[j] : (a > hi[j] ? hi[j] : a);
            out[i * in->act_dim + j] = a;
        }
    }
    mm_tensor_free(tx);
    mm_tensor_free(ty);
}

static void export_case(int32_t algo, int discrete)
{
    mm_policy *p = make(algo, discrete, 1, 0);
    mm_model *m = NULL, *f = NULL;
    mm_policy_export_info in;
    float mean[3], istd[3], lo[2], hi[2], obs[12], want[8], got[8];
    char path[512];
    int64_t nw = discrete ? 4 : 8;
    drive(p, 40, 11); /* trained weights and moved statistics */
    CHECK_OK(mm_policy_export(p, &m, NULL));
    CHECK_OK(mm_policy_export_io(p, &in, mean, istd, lo, hi));
    CHECK(in.output == (discrete              ? MM_EXPORT_ARGMAX
                        : algo == MM_ALGO_SAC ? MM_EXPORT_TANH_MEAN
                        : algo <= MM_ALGO_TD3 ? MM_EXPORT_TANH_RESCALE
                                              : MM_EXPORT_CLIP));
    CHECK(in.norm_obs == 1 && in.obs_dim == 3);
    for (int k = 0; k < 3; k++) {
        mmt_fill_uniform(obs, 12, 500 + (uint64_t)k, -3, 3); /* some beyond the bounds */
        CHECK_OK(mm_policy_act(p, obs, 4, want, 0));
        exported_act(m, 0, &in, mean, istd, lo, hi, obs, 4, got);
        CHECK(memcmp(want, got, sizeof(float) * (size_t)nw) == 0);
    }
    /* more training, then the same model refreshed in place */
    drive(p, 13, 12);
    CHECK_OK(mm_policy_export_copy(p, m));
    CHECK_OK(mm_policy_export_io(p, &in, mean, istd, lo, hi));
    CHECK_OK(mm_policy_act(p, obs, 4, want, 0));
    exported_act(m, 0, &in, mean, istd, lo, hi, obs, 4, got);
    CHECK(memcmp(want, got, sizeof(float) * (size_t)nw) == 0);
    /* through a model file, mm_model_load and the thread-safe mm_model_infer */
    CHECK(mmt_tmp_path(path, sizeof path, "policy_export.safetensors") == 0);
    CHECK_OK(mm_policy_export_save(p, path));
    CHECK_OK(mm_model_load(&f, path, NULL));
    exported_act(f, 1, &in, mean, istd, lo, hi, obs, 4, got);
    CHECK(memcmp(want, got, sizeof(float) * (size_t)nw) == 0);
    mm_model_free(f);
    mm_model_free(m);
    remove(path);
    mm_policy_free(p);
}

static void test_export(void)
{
    export_case(MM_ALGO_DDPG, 0);
    export_case(MM_ALGO_TD3, 0);
    export_case(MM_ALGO_A2C, 0);
    export_case(MM_ALGO_A2C, 1);
    export_case(MM_ALGO_QAC, 1);
    export_case(MM_ALGO_PPO, 0);
    export_case(MM_ALGO_PPO, 1);
    export_case(MM_ALGO_TRPO, 0);
    export_case(MM_ALGO_TRPO, 1);
    export_case(MM_ALGO_SAC, 0);
    export_case(MM_ALGO_SAC, 1); /* discrete SAC: the logits model, argmax */
}

static void test_export_misuse(void)
{
    mm_policy *p = make(MM_ALGO_PPO, 0, 0, 0);
    mm_model_opts mo;
    mm_model *m = (mm_model *)p; /* overwritten with NULL on failure */
    CHECK_STATUS(mm_policy_export(NULL, &m, NULL), MM_E_INVALID_ARG);
    CHECK(m == NULL);
    CHECK_STATUS(mm_policy_export(p, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_opts_init(&mo));
    mo.input_dim = 7;
    CHECK_STATUS(mm_policy_export(p, &m, &mo), MM_E_SHAPE);
    CHECK(strlen(mm_policy_errmsg(p)) > 0);
    CHECK_STATUS(mm_policy_export_io(p, NULL, NULL, NULL, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_export_save(p, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_export_copy(p, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_export_copy(NULL, NULL), MM_E_INVALID_ARG);
    {
        mm_policy *other = make(MM_ALGO_PPO, 1, 0, 0); /* discrete: another head width */
        CHECK_OK(mm_policy_export(other, &m, NULL));
        CHECK_STATUS(mm_policy_export_copy(p, m), MM_E_SHAPE);
        CHECK(strlen(mm_policy_errmsg(p)) > 0);
        mm_model_free(m);
        mm_policy_free(other);
    }
    mm_policy_free(p);
}

/* ---- memory, callbacks, create-from-file ----------------------------------------------------- */

typedef struct stream {
    const unsigned char *b;
    int64_t n, at, chunk;
} stream;

static int64_t read_chunks(void *ud, void *buf, int64_t n)
{
    stream *s = ud;
    int64_t k = s->n - s->at;
    if (k > n) k = n;
    if (k > s->chunk) k = s->chunk;
    memcpy(buf, s->b + s->at, (size_t)k);
    s->at += k;
    return k;
}

static char *find_bytes(unsigned char *h, size_t n, const char *s, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(h + i, s, k) == 0) return (char *)h + i;
    return NULL;
}

static void acts(mm_policy *p, float *out)
{
    float obs[12];
    mmt_fill_uniform(obs, 12, 4242, -2, 2);
    CHECK_OK(mm_policy_act(p, obs, 4, out, 0));
}

static void test_mem_cb_new(void)
{
    mm_policy *p = make(MM_ALGO_TD3, 0, 1, 0), *q = make(MM_ALGO_TD3, 0, 1, 0), *r = NULL;
    mm_policy_opts o;
    mm_model *m = NULL;
    size_t n = 0, n2 = 0;
    unsigned char *buf, *big;
    float a[8], b[8];
    char path[512];
    stream s;
    drive(p, 30, 5);
    CHECK_STATUS(mm_policy_save_mem(p, NULL, 0, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_save_mem(p, NULL, 0, &n, 8), MM_E_INVALID_ARG); /* unknown flag */
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &n, 0));
    buf = malloc(n + 16);
    CHECK_STATUS(mm_policy_save_mem(p, buf, n - 1, &n2, 0), MM_E_BUFFER_TOO_SMALL);
    CHECK(n2 == n);
    /* size inside buf: refused (before: MM_OK, size then overwritten by the file's bytes) */
    CHECK_STATUS(mm_policy_save_mem(p, buf, n, (size_t *)(void *)(buf + 8), 0), MM_E_INVALID_ARG);
    CHECK(strstr(mm_policy_errmsg(p), "size points into buf") != NULL);
    CHECK_OK(mm_policy_save_mem(p, buf, n, NULL, 0));
    CHECK_OK(mm_policy_load_mem(q, buf, n));
    acts(p, a), acts(q, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_STATUS(mm_policy_load_mem(q, buf, n - 3), MM_E_FORMAT);
    { /* the header is outside the checksum: a newer major version, a foreign format */
        unsigned char *h = malloc(n);
        char *at;
        memcpy(h, buf, n);
        at = find_bytes(h, n, "\"format_version\":\"1.0\"", 22);
        CHECK(at != NULL);
        if (at) at[18] = '2';
        CHECK_STATUS(mm_policy_load_mem(q, h, n), MM_E_VERSION);
        CHECK(strstr(mm_policy_errmsg(q), "newer") != NULL);
        if (at) at[18] = '1';
        at = find_bytes(h, n, "libmm-policy", 12);
        CHECK(at != NULL);
        if (at) at[11] = 'Y';
        CHECK_STATUS(mm_policy_load_mem(q, h, n), MM_E_FORMAT);
        free(h);
    }
    /* a callback delivering 7 bytes at a time, followed by other data it must not read */
    memcpy(buf + n, "TRAILING", 8);
    s.b = buf, s.n = (int64_t)n + 8, s.at = 0, s.chunk = 7;
    mm_policy_free(q);
    q = make(MM_ALGO_TD3, 0, 1, 0);
    CHECK_OK(mm_policy_load_cb(q, read_chunks, &s));
    CHECK(s.at == (int64_t)n);
    acts(q, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* the same bytes as the file save, which create-from-file reads with its bounds */
    CHECK(mmt_tmp_path(path, sizeof path, "policy_mem.safetensors") == 0);
    CHECK_OK(mm_policy_save(p, path));
    {
        FILE *f = fopen(path, "rb");
        big = malloc(n + 1);
        CHECK(f && fread(big, 1, n + 1, f) == n);
        CHECK(memcmp(big, buf, n) == 0);
        if (f) fclose(f);
        free(big);
    }
    CHECK_OK(mm_policy_load_new(&r, path, NULL)); /* defaults: one agent */
    {
        /* one row on both sides: a 1-row and a 4-row batch may round differently (OpenBLAS
         * picks another kernel for a single row) */
        float obs[12], ref[2];
        mmt_fill_uniform(obs, 12, 4242, -2, 2);
        CHECK_OK(mm_policy_act(p, obs, 1, ref, 0));
        CHECK_OK(mm_policy_act(r, obs, 1, b, 0));
        CHECK(memcmp(ref, b, 2 * sizeof(float)) == 0);
    }
    mm_policy_free(r);
    opts_for(&o, MM_ALGO_PPO, 0, 0);
    CHECK_STATUS(mm_policy_load_new(&r, path, &o), MM_E_FORMAT); /* opts of another algorithm */
    CHECK(r == NULL);
    opts_for(&o, MM_ALGO_TD3, 0, 0);
    o.hidden[0] = 5, o.act_low = NULL, o.act_high = NULL; /* the file's architecture wins */
    CHECK_OK(mm_policy_load_new(&r, path, &o));
    acts(r, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    mm_policy_free(r);
    {
        /* A newer caller's options (a longer struct): accepted when the fields this library
         * does not know are zero, refused with MM_E_VERSION when one is set, as every create
         * function does. */
        struct {
            mm_policy_opts o;
            unsigned char newer[16];
        } big_o;
        memset(&big_o, 0, sizeof big_o);
        opts_for(&big_o.o, MM_ALGO_TD3, 0, 0);
        big_o.o.struct_size = (uint32_t)sizeof big_o;
        CHECK_OK(mm_policy_load_new(&r, path, &big_o.o));
        acts(r, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
        mm_policy_free(r);
        big_o.newer[5] = 1;
        CHECK_STATUS(mm_policy_load_new(&r, path, &big_o.o), MM_E_VERSION);
        CHECK(r == NULL);
    }
    /* mm_model_load says what the file is */
    {
        char eb[256] = "";
        mm_model_opts mo;
        CHECK_OK(mm_model_opts_init(&mo));
        mo.err_buf = eb, mo.err_buf_size = sizeof eb;
        CHECK_STATUS(mm_model_load(&m, path, &mo), MM_E_FORMAT);
        CHECK(strstr(eb, "policy") != NULL && strstr(eb, "mm_policy_load") != NULL);
    }
    remove(path);
    free(buf);
    mm_policy_free(q);
    mm_policy_free(p);
}

/* ---- a file written by 0.1 ---------------------------------------------------------------- */
#include "vectors/policy_v01.h"

/* The 0.1 actions were computed by 0.1's kernels; 0.2 computes the first layer (k = obs_dim)
 * with a different summation order (the small-k path of the GEMM), so the same weights give
 * actions that agree to float rounding, not bit for bit. 1e-5 relative is ~100 ulp: a wrong
 * weight, a missing normalisation or a wrong bound moves the action by far more. */
static int legacy_act_close(const float a[8])
{
    for (int i = 0; i < 8; i++) {
        double e = fabs((double)a[i] - (double)k_policy_v01_act[i]);
        if (!(e <= 1e-5 * (1.0 + fabs((double)k_policy_v01_act[i])))) return 0;
    }
    return 1;
}

static void test_legacy_file(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL, *r = NULL;
    float a[8], obs[12];
    char path[512];
    FILE *f;
    opts_for(&o, MM_ALGO_PPO, 0, 1);
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK_OK(mm_policy_load_mem(p, k_policy_v01, sizeof k_policy_v01));
    memcpy(obs, k_policy_v01_obs, sizeof obs);
    CHECK_OK(mm_policy_act(p, obs, 4, a, 0));
    CHECK(legacy_act_close(a));
    /* create-from-file reads 0.1 metadata (bounds then come from opts) */
    CHECK(mmt_tmp_path(path, sizeof path, "policy_v01.safetensors") == 0);
    f = fopen(path, "wb");
    CHECK(f && fwrite(k_policy_v01, 1, sizeof k_policy_v01, f) == sizeof k_policy_v01);
    if (f) fclose(f);
    CHECK_OK(mm_policy_load_new(&r, path, &o));
    CHECK_OK(mm_policy_act(r, obs, 4, a, 0));
    CHECK(legacy_act_close(a));
    mm_policy_free(r);
    remove(path);
    mm_policy_free(p);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

static int same_nets(mm_policy *a, mm_policy *b)
{
    mm_model *ma[9] = {a->actor,       a->actor_t, a->critic[0], a->critic_t[0], a->critic[1],
                       a->critic_t[1], a->vf,      a->logstd,    a->mem.m};
    mm_model *mb[9] = {b->actor,       b->actor_t, b->critic[0], b->critic_t[0], b->critic[1],
                       b->critic_t[1], b->vf,      b->logstd,    b->mem.m};
    for (int k = 0; k < 9; k++) {
        float *wa, *wb;
        int64_t na, nb;
        if (!ma[k]) continue;
        if (mm_model_params(ma[k], &wa, &na) || mm_model_params(mb[k], &wb, &nb) || na != nb ||
            memcmp(wa, wb, sizeof(float) * (size_t)na) != 0)
            return 0;
    }
    return 1;
}

static void ckpt_case_rn(int32_t algo, int discrete, int32_t noise, int n_first, int n_more,
                         int32_t rnorm)
{
    mm_policy *a = make_rn(algo, discrete, 1, noise, rnorm);
    mm_policy *b = make_rn(algo, discrete, 1, noise, rnorm);
    mm_policy *c = make_rn(algo, discrete, 1, noise, rnorm);
    float xa[8] = {0}, xb[8] = {0}, xc[8] = {0}; /* discrete agents write 4 of the 8 */
    double ua = 0, ub = 0;
    size_t n = 0, nw = 0;
    unsigned char *buf, *wbuf;
    drive(a, n_first, 21);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &nw, 0));
    CHECK(n > nw);
    buf = malloc(n), wbuf = malloc(nw);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_OK(mm_policy_save_mem(a, wbuf, nw, NULL, 0));
    CHECK_OK(mm_policy_load_mem(b, buf, n));
    CHECK_OK(mm_policy_load_mem(c, wbuf, nw)); /* weights only */
    drive(a, n_more, 77);
    drive(b, n_more, 77);
    drive(c, n_more, 77);
    CHECK(same_nets(a, b));
    CHECK(!same_nets(a, c)); /* without the training state the run diverges */
    acts(a, xa), acts(b, xb), acts(c, xc);
    CHECK(memcmp(xa, xb, sizeof xa) == 0);
    CHECK_OK(mm_policy_get_f64(a, MM_POLICY_STAT_UPDATES, &ua));
    CHECK_OK(mm_policy_get_f64(b, MM_POLICY_STAT_UPDATES, &ub));
    CHECK(ua == ub && ua > 0);
    /* a corrupted counter block is refused and changes nothing */
    {
        mm_policy *d = make_rn(algo, discrete, 1, noise, rnorm);
        float before[8] = {0}, after[8] = {0};
        acts(d, before);
        CHECK_STATUS(mm_policy_load_mem(d, buf, n - 1), MM_E_FORMAT);
        for (int i = 0; i < 4; i++) CHECK_OK(mm_policy_reset_agent(d, i)); /* act stepped it */
        acts(d, after);
        CHECK(memcmp(before, after, sizeof before) == 0);
        mm_policy_free(d);
    }
    free(buf), free(wbuf);
    mm_policy_free(a), mm_policy_free(b), mm_policy_free(c);
}

static void ckpt_case(int32_t algo, int discrete, int32_t noise, int n_first, int n_more)
{
    ckpt_case_rn(algo, discrete, noise, n_first, n_more, 0);
}

/* A budgeted update in progress: the checkpoint is refused (act runs a snapshot then), and
 * allowed again once the update ran to done. */
static void ckpt_mid_update(void)
{
    mm_policy *a = make(MM_ALGO_PPO, 0, 1, 0);
    float obs[12], next[12], act[8], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    int32_t done = 0;
    size_t n = 0;
    double upd = 0;
    mmt_fill_uniform(obs, 12, 5, -1, 1);
    for (int s = 0; s < 64 && !upd; s++) {
        CHECK_OK(mm_policy_act(a, obs, 4, act, 1));
        mmt_fill_uniform(next, 12, 500 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 4; i++) rew[i] = next[3 * i];
        CHECK_OK(mm_policy_observe(a, obs, act, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_update_budget(a, 1, &done));
        CHECK_OK(mm_policy_get_f64(a, MM_POLICY_STAT_UPDATING, &upd));
        memcpy(obs, next, sizeof obs);
    }
    CHECK(upd == 1.0);
    CHECK_STATUS(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT), MM_E_STATE);
    CHECK(strstr(mm_policy_errmsg(a), "update is in progress") != NULL);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, 0)); /* weights-only saves stay allowed */
    for (int k = 0; k < 1000 && !done; k++) CHECK_OK(mm_policy_update_budget(a, 1, &done));
    CHECK(done == 1);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    mm_policy_free(a);
}

static void test_checkpoint(void)
{
    /* reward normalisation state (returns, statistics) travels too */
    ckpt_case_rn(MM_ALGO_PPO, 0, 0, 9, 14, 1);
    ckpt_case_rn(MM_ALGO_TD3, 0, 0, 23, 30, 2);
    ckpt_mid_update();
    ckpt_case(MM_ALGO_TD3, 0, 0, 23, 30); /* training (warm-up: the first 10 steps) */
    ckpt_case(MM_ALGO_TD3, 0, 0, 2, 30);  /* inside the uniform warm-up */
    ckpt_case(MM_ALGO_DDPG, 0, MM_NOISE_OU, 23, 30);
    ckpt_case(MM_ALGO_A2C, 0, 0, 9, 14); /* mid-rollout (n_steps 6) */
    ckpt_case(MM_ALGO_PPO, 0, 0, 9, 14);
    ckpt_case(MM_ALGO_PPO, 1, 0, 12, 14); /* right after an update */
    ckpt_case(MM_ALGO_TRPO, 0, 0, 9, 14);
    ckpt_case(MM_ALGO_SAC, 0, 0, 23, 30); /* with log alpha and its Adam state */
    ckpt_case(MM_ALGO_SAC, 0, 0, 2, 30);
    ckpt_case(MM_ALGO_SAC, 1, 0, 23, 30); /* discrete SAC */
    ckpt_case(MM_ALGO_SAC, 1, 0, 2, 30);
    ckpt_case(MM_ALGO_QAC, 1, 0, 8, 10);
    /* memory core: per-agent states, the last act's output and the rollout's stored initial
       states travel, mid-rollout (segments of 4 in n_steps 6) and after an update */
    g_memory = 1;
    ckpt_case(MM_ALGO_PPO, 0, 0, 9, 14);
    ckpt_case(MM_ALGO_PPO, 1, 0, 12, 14);
    ckpt_case_rn(MM_ALGO_PPO, 0, 0, 5, 14, 1);
    g_memory = 0;
}

static void test_checkpoint_mismatch(void)
{
    mm_policy_opts o;
    mm_policy *a = make(MM_ALGO_TD3, 0, 0, 0), *b = NULL;
    size_t n = 0;
    unsigned char *buf;
    drive(a, 5, 1);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    buf = malloc(n);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    opts_for(&o, MM_ALGO_TD3, 0, 0);
    o.buffer_size = 49;
    CHECK_OK(mm_policy_create(&b, &o));
    CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_FORMAT);
    CHECK(strstr(mm_policy_errmsg(b), "buffer_size") != NULL);
    mm_policy_free(b);
    free(buf);
    mm_policy_free(a);
}

/* Found by fuzz_config: act stores log-probs and critic values as computed, and an action the
 * policy finds astronomically unlikely has log-prob -Inf in float (a critic that overflows
 * stores Inf or NaN). The loader refused such a checkpoint although the policy had written it;
 * these rows must round-trip as they are. */
static void test_checkpoint_nonfinite_rollout(void)
{
    mm_policy *a = make(MM_ALGO_PPO, 0, 0, 0), *b = make(MM_ALGO_PPO, 0, 0, 0);
    size_t n = 0;
    unsigned char *buf;
    drive(a, 3, 7); /* mid-rollout: 3 of 6 rows filled */
    CHECK(a->ro.t == 3);
    a->ro.logp[1] = -INFINITY, a->ro.val[2] = NAN, a->ro.last_val[0] = INFINITY;
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    buf = malloc(n);
    CHECK(buf != NULL);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_OK(mm_policy_load_mem(b, buf, n));
    CHECK(b->ro.t == 3);
    CHECK(isinf(b->ro.logp[1]) && b->ro.logp[1] < 0 && isnan(b->ro.val[2]));
    CHECK(isinf(b->ro.last_val[0]) && b->ro.logp[0] == a->ro.logp[0]);
    /* the other rollout tensors stay checked: a NaN observation is still refused */
    a->ro.obs[0] = NAN;
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_NUMERIC);
    CHECK(strstr(mm_policy_errmsg(b), "ckpt.rollout.obs") != NULL);
    free(buf);
    mm_policy_free(a);
    mm_policy_free(b);
}

/* Found by fuzz_config: settings an algorithm ignores are kept as given (TD3 does not read
 * cg_damping, so create does not check it), the checkpoint stores them, and the loader called
 * the policy's own NaN "changed" (NaN != NaN) and refused it as out of range. */
static void test_checkpoint_ignored_nan_setting(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL;
    size_t n = 0;
    unsigned char *buf;
    double v = 0;
    opts_for(&o, MM_ALGO_TD3, 0, 0);
    o.cg_damping = NAN;
    CHECK_OK(mm_policy_create(&a, &o));
    CHECK_OK(mm_policy_create(&b, &o));
    drive(a, 5, 3);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    buf = malloc(n);
    CHECK(buf != NULL);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_OK(mm_policy_load_mem(b, buf, n));
    CHECK_OK(mm_policy_get_f64(b, MM_POLICY_CG_DAMPING, &v));
    CHECK(isnan(v));
    /* a NaN where the loading policy holds a number is still refused */
    mm_policy_free(b);
    b = make(MM_ALGO_TD3, 0, 0, 0);
    CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_FORMAT);
    CHECK(strstr(mm_policy_errmsg(b), "CG_DAMPING") != NULL);
    free(buf);
    mm_policy_free(a);
    mm_policy_free(b);
}

/* Found by fuzz_config: a checkpoint with a finite but huge reward-normaliser return (1e306)
 * loaded, the next observe squared it to +Inf in the variance, and the policy's own next
 * checkpoint was refused. The loader now bounds the returns and statistics (docs/FORMAT.md). */
static void test_checkpoint_reward_norm_bounds(void)
{
    mm_policy *a = make_rn(MM_ALGO_PPO, 0, 0, 0, 1), *b = make_rn(MM_ALGO_PPO, 0, 0, 0, 1);
    size_t n = 0;
    unsigned char *buf;
    drive(a, 3, 5);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    buf = malloc(n);
    CHECK(buf != NULL);
    for (int k = 0; k < 5; k++) {
        const double ret0 = a->rn.ret[0], mean = a->rn.mean, var = a->rn.var;
        if (k == 1) a->rn.ret[0] = 1e99; /* inside: loads, and observe stays finite */
        if (k == 2) a->rn.ret[0] = -1e306;
        if (k == 3) a->rn.mean = 2e100;
        if (k == 4) a->rn.var = 1e201;
        CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
        a->rn.ret[0] = ret0, a->rn.mean = mean, a->rn.var = var;
        if (k < 2) {
            CHECK_OK(mm_policy_load_mem(b, buf, n));
            drive(b, 1, 6);
            CHECK(isfinite(b->rn.var) && isfinite(b->rn.mean));
        } else {
            CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_NUMERIC);
            CHECK(strstr(mm_policy_errmsg(b),
                         k == 2 ? "ckpt.reward_norm.ret" : "ckpt.reward_norm") != NULL);
        }
    }
    free(buf);
    mm_policy_free(a);
    mm_policy_free(b);
}

/* A checkpoint file (mm_policy_save_ex) read by create-from-file resumes exactly too. */
static void test_checkpoint_file_new(void)
{
    mm_policy_opts o;
    mm_policy *a = make(MM_ALGO_PPO, 0, 1, 0), *b = NULL;
    char path[512];
    float xa[8], xb[8];
    CHECK(mmt_tmp_path(path, sizeof path, "policy_ckpt.safetensors") == 0);
    drive(a, 9, 3);
    CHECK_STATUS(mm_policy_save_ex(a, path, 2), MM_E_INVALID_ARG);
    CHECK_OK(mm_policy_save_ex(a, path, MM_POLICY_SAVE_CHECKPOINT));
    opts_for(&o, MM_ALGO_PPO, 0, 0); /* norm_obs and bounds come from the file */
    o.act_low = o.act_high = NULL;
    CHECK_OK(mm_policy_load_new(&b, path, &o));
    drive(a, 10, 8);
    drive(b, 10, 8);
    CHECK(same_nets(a, b));
    acts(a, xa), acts(b, xb);
    CHECK(memcmp(xa, xb, sizeof xa) == 0);
    remove(path);
    mm_policy_free(a), mm_policy_free(b);
}

void suite_policy_io(void)
{
    mmt_run("policy_io_export_matches_act", test_export);
    mmt_run("policy_io_export_misuse", test_export_misuse);
    mmt_run("policy_io_mem_cb_new", test_mem_cb_new);
    mmt_run("policy_io_legacy_0_1_file", test_legacy_file);
    mmt_run("policy_io_checkpoint_resume_exact", test_checkpoint);
    mmt_run("policy_io_checkpoint_mismatch", test_checkpoint_mismatch);
    mmt_run("policy_io_checkpoint_nonfinite_rollout", test_checkpoint_nonfinite_rollout);
    mmt_run("policy_io_checkpoint_ignored_nan_setting", test_checkpoint_ignored_nan_setting);
    mmt_run("policy_io_checkpoint_reward_norm_bounds", test_checkpoint_reward_norm_bounds);
    mmt_run("policy_io_checkpoint_file_load_new", test_checkpoint_file_new);
}
