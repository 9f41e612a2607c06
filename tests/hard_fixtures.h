/* SPDX-License-Identifier: MIT */
/*
 * hard_fixtures.h — small, valid configurations of every libmm operator, shared by the
 * hardening suites (test_oom.c, test_threads.c, test_badinput.c) so that each of them states
 * only what it checks, not how a well-formed call is set up.
 *
 * Everything here is static inline: a file that does not use a helper gets no
 * -Wunused-function warning, and no new translation unit is needed in the Makefile.
 * Sizes are tiny on purpose: the sweeps call these builders hundreds of times.
 */
#ifndef MM_TEST_HARD_FIXTURES_H
#define MM_TEST_HARD_FIXTURES_H

#include "mm.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

/* ---- tensors ------------------------------------------------------------------------------- */
/* A created tensor of the given shape filled from seed in [lo, hi); NULL on failure. */
static inline mm_tensor *hx_tensor(int32_t ndim, const int64_t *shape, uint64_t seed, float lo,
                                   float hi)
{
    mm_tensor *t = NULL;
    if (mm_tensor_create(&t, ndim, shape, NULL) != MM_OK) return NULL;
    if (lo != hi) mmt_fill_uniform(mm_tensor_data(t), mm_tensor_numel(t), seed, lo, hi);
    return t;
}
#define HX_T(seed, lo, hi, ...)                                                                    \
    hx_tensor((int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                       \
              (int64_t[]){__VA_ARGS__}, (seed), (lo), (hi))

/* A zeroed tensor shaped like t (NULL for NULL). */
static inline mm_tensor *hx_like(const mm_tensor *t)
{
    int64_t shape[MM_TENSOR_MAX_DIMS];
    int32_t nd;
    if (!t) return NULL;
    nd = mm_tensor_ndim(t);
    for (int32_t i = 0; i < nd; i++) shape[i] = mm_tensor_dim(t, i);
    return hx_tensor(nd, shape, 0, 0, 0);
}

/* ---- models -------------------------------------------------------------------------------- */
/* "zoo": one layer of every kind that takes [B, T, D] input, so a sweep over it reaches every
 * layer's finalize path: dense, activation, attention, GAU, Mamba, S4D, RMSNorm, LayerNorm.
 * Input width HX_ZOO_IN, output HX_ZOO_OUT, max_batch 2, max_seq 6. */
#define HX_ZOO_IN  6
#define HX_ZOO_OUT 3
static inline int hx_build_zoo(mm_model **out, const mm_allocator *a, int32_t n_threads,
                               uint64_t seed)
{
    mm_model_opts o;
    mm_attn_opts ao;
    mm_model *m = NULL;
    int rc;
    *out = NULL;
    if ((rc = mm_model_opts_init(&o)) != MM_OK) return rc;
    o.alloc = a, o.input_dim = HX_ZOO_IN, o.max_batch = 2, o.max_seq = 6, o.seed = seed;
    o.n_threads = n_threads;
    if ((rc = mm_model_create(&m, &o)) != MM_OK) return rc;
    if ((rc = mm_attn_opts_init(&ao, MM_ATTN_SOFTMAX)) != MM_OK) goto fail;
    ao.d_head = 4, ao.n_heads = 2, ao.causal = 1;
    if ((rc = mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0)) != MM_OK ||
        (rc = mm_model_add_activation(m, MM_ACT_GELU)) != MM_OK ||
        (rc = mm_model_add_attention(m, &ao)) != MM_OK ||
        (rc = mm_model_add_gau(m, 0, 4, 1, 2)) != MM_OK ||
        (rc = mm_model_add_mamba(m, 4, 2, 2, 0)) != MM_OK ||
        (rc = mm_model_add_s4d(m, 4)) != MM_OK ||
        (rc = mm_model_add_rmsnorm(m, 1e-6, 1)) != MM_OK ||
        (rc = mm_model_add_layernorm(m, 1e-5, 1)) != MM_OK ||
        (rc = mm_model_add_dense(m, HX_ZOO_OUT, 1, MM_INIT_ORTHOGONAL, 1.0)) != MM_OK ||
        (rc = mm_model_finalize(m)) != MM_OK)
        goto fail;
    *out = m;
    return MM_OK;
fail:
    mm_model_free(m);
    return rc;
}

/* A row-wise MLP (decodable, shareable through mm_model_infer): in -> 16 -> 16 -> out. */
static inline int hx_build_mlp(mm_model **out, const mm_allocator *a, int64_t in, int64_t outw,
                               int64_t max_batch, int32_t n_threads, uint64_t seed)
{
    mm_model_opts o;
    mm_model *m = NULL;
    int rc;
    *out = NULL;
    if ((rc = mm_model_opts_init(&o)) != MM_OK) return rc;
    o.alloc = a, o.input_dim = in, o.max_batch = max_batch, o.seed = seed;
    o.n_threads = n_threads;
    if ((rc = mm_model_create(&m, &o)) != MM_OK) return rc;
    if ((rc = mm_model_add_dense(m, 16, 1, MM_INIT_DEFAULT, 1.0)) != MM_OK ||
        (rc = mm_model_add_activation(m, MM_ACT_TANH)) != MM_OK ||
        (rc = mm_model_add_dense(m, 16, 1, MM_INIT_ORTHOGONAL, 1.0)) != MM_OK ||
        (rc = mm_model_add_activation(m, MM_ACT_SILU)) != MM_OK ||
        (rc = mm_model_add_dense(m, outw, 1, MM_INIT_DEFAULT, 1.0)) != MM_OK ||
        (rc = mm_model_finalize(m)) != MM_OK) {
        mm_model_free(m);
        return rc;
    }
    *out = m;
    return MM_OK;
}

/* ---- attention ------------------------------------------------------------------------------ */
/* Sizes of the attention fixture: q [B, H, N, d], v [B, H, N, dv]. */
enum { HX_AB = 2, HX_AH = 2, HX_AN = 12, HX_AD = 8, HX_ADV = 4 };
static inline void hx_attn_opts(mm_attn_opts *o, int32_t kind, const mm_allocator *a,
                                int32_t n_threads)
{
    CHECK_OK(mm_attn_opts_init(o, kind));
    o->alloc = a, o->d_head = HX_AD, o->dv = HX_ADV, o->n_heads = HX_AH, o->max_batch = HX_AB;
    o->max_seq = 16, o->causal = 1, o->chunk = 4, o->window = 4, o->stride = 3;
    o->n_features = 16, o->seed = 7, o->n_threads = n_threads;
    if (kind == MM_ATTN_GATED) o->gate = MM_GATE_RETNET;
}

/* ---- ssm ------------------------------------------------------------------------------------ */
/* Every tensor of one kind's scan / step / kernel call, with its gradient tensors. */
typedef struct hx_ssm {
    int32_t kind;
    int64_t Bt, L, D, N, P, G;
    mm_tensor *t[48];
    int nt;
    mm_ssm_inputs scan, step;     /* scan: sequence inputs; step: one token */
    mm_tensor *out, *dout, *last; /* scan output, its upstream gradient, final state */
    mm_tensor *sout;              /* step output */
    mm_tensor *k, *dk;            /* S4D / S4 kernel [H, L] and its gradient */
    mm_tensor *cu;                /* S4D / S4 convolution input [Bt, H, L] */
    mm_ssm_grads g;               /* every gradient the kind's backward can write */
} hx_ssm;

static inline mm_tensor *hx_keep(hx_ssm *s, mm_tensor *t)
{
    if (s->nt < (int)(sizeof s->t / sizeof s->t[0])) s->t[s->nt++] = t;
    return t;
}
#define HX_K(s, seed, lo, hi, ...) hx_keep((s), HX_T((seed), (lo), (hi), __VA_ARGS__))
#define HX_G(s, t)                 hx_keep((s), hx_like(t))

static inline void hx_ssm_selective(hx_ssm *s)
{
    int64_t B = s->Bt, D = s->D, N = s->N, L = s->L;
    mm_ssm_inputs *in = &s->scan, *st = &s->step;
    in->u = HX_K(s, 1, -1, 1, B, D, L), in->delta = HX_K(s, 2, -1, 1, B, D, L);
    in->A = HX_K(s, 3, -1, -0.1f, D, N), in->B = HX_K(s, 4, -1, 1, B, N, L);
    in->C = HX_K(s, 5, -1, 1, B, N, L), in->D = HX_K(s, 6, -1, 1, D);
    in->z = HX_K(s, 7, -1, 1, B, D, L), in->delta_bias = HX_K(s, 8, -0.5f, 0.5f, D);
    st->u = HX_K(s, 9, -1, 1, B, D), st->delta = HX_K(s, 10, -1, 1, B, D), st->A = in->A;
    st->B = HX_K(s, 11, -1, 1, B, N), st->C = HX_K(s, 12, -1, 1, B, N), st->D = in->D;
    st->z = HX_K(s, 13, -1, 1, B, D), st->delta_bias = in->delta_bias;
    s->out = HX_K(s, 0, 0, 0, B, D, L), s->last = HX_K(s, 0, 0, 0, B, D, N);
    s->sout = HX_K(s, 0, 0, 0, B, D), s->dout = HX_K(s, 14, -1, 1, B, D, L);
    s->g.du = HX_G(s, in->u), s->g.ddelta = HX_G(s, in->delta), s->g.dA = HX_G(s, in->A);
    s->g.dB = HX_G(s, in->B), s->g.dC = HX_G(s, in->C), s->g.dD = HX_G(s, in->D);
    s->g.dz = HX_G(s, in->z), s->g.ddelta_bias = HX_G(s, in->delta_bias);
}

static inline void hx_ssm_ssd(hx_ssm *s)
{
    int64_t B = s->Bt, H = s->D, P = s->P, N = s->N, L = s->L, G = s->G;
    mm_ssm_inputs *in = &s->scan, *st = &s->step;
    in->u = HX_K(s, 21, -1, 1, B, L, H, P), in->delta = HX_K(s, 22, -2, 1, B, L, H);
    in->A = HX_K(s, 23, -1, -0.1f, H), in->B = HX_K(s, 24, -1, 1, B, L, G, N);
    in->C = HX_K(s, 25, -1, 1, B, L, G, N), in->D = HX_K(s, 26, -1, 1, H);
    in->delta_bias = HX_K(s, 27, -0.5f, 0.5f, H), in->init_state = HX_K(s, 28, -1, 1, B, H, P, N);
    st->u = HX_K(s, 29, -1, 1, B, H, P), st->delta = HX_K(s, 30, -2, 1, B, H), st->A = in->A;
    st->B = HX_K(s, 31, -1, 1, B, G, N), st->C = HX_K(s, 32, -1, 1, B, G, N), st->D = in->D;
    st->delta_bias = in->delta_bias;
    s->out = HX_K(s, 0, 0, 0, B, L, H, P), s->last = HX_K(s, 0, 0, 0, B, H, P, N);
    s->sout = HX_K(s, 0, 0, 0, B, H, P), s->dout = HX_K(s, 33, -1, 1, B, L, H, P);
    s->g.du = HX_G(s, in->u), s->g.ddelta = HX_G(s, in->delta), s->g.dA = HX_G(s, in->A);
    s->g.dB = HX_G(s, in->B), s->g.dC = HX_G(s, in->C), s->g.dD = HX_G(s, in->D);
    s->g.ddelta_bias = HX_G(s, in->delta_bias), s->g.dinit_state = HX_G(s, in->init_state);
}

static inline void hx_ssm_lru(hx_ssm *s)
{
    int64_t B = s->Bt, H = s->D, N = s->N, L = s->L;
    mm_ssm_inputs *in = &s->scan, *st = &s->step;
    in->u = HX_K(s, 41, -1, 1, B, L, H), in->nu_log = HX_K(s, 42, -1, 0, N);
    in->theta_log = HX_K(s, 43, -1, 1, N), in->gamma_log = HX_K(s, 44, -0.5f, 0, N);
    in->B = HX_K(s, 45, -0.5f, 0.5f, N, H, 2), in->C = HX_K(s, 46, -0.5f, 0.5f, H, N, 2);
    in->D = HX_K(s, 47, -1, 1, H);
    *st = *in;
    st->u = HX_K(s, 48, -1, 1, B, H);
    s->out = HX_K(s, 0, 0, 0, B, L, H), s->last = HX_K(s, 0, 0, 0, B, N, 2);
    s->sout = HX_K(s, 0, 0, 0, B, H), s->dout = HX_K(s, 49, -1, 1, B, L, H);
    s->g.du = HX_G(s, in->u), s->g.dnu_log = HX_G(s, in->nu_log);
    s->g.dtheta_log = HX_G(s, in->theta_log), s->g.dgamma_log = HX_G(s, in->gamma_log);
    s->g.dB = HX_G(s, in->B), s->g.dC = HX_G(s, in->C), s->g.dD = HX_G(s, in->D);
}

static inline void hx_ssm_s4(hx_ssm *s)
{
    int64_t B = s->Bt, H = s->D, N2 = s->N / 2, L = s->L;
    mm_ssm_inputs *in = &s->scan;
    in->log_dt = HX_K(s, 51, -6.9f, -2.3f, H), in->C = HX_K(s, 52, -0.7f, 0.7f, H, N2, 2);
    in->B = HX_K(s, 53, 0.5f, 1, H, N2, 2);
    if (s->kind == MM_SSM_S4D) {
        in->A_real = HX_K(s, 54, -1, 0, H, N2), in->A_imag = HX_K(s, 55, 0, 3, H, N2);
        s->g.dA_real = HX_G(s, in->A_real), s->g.dA_imag = HX_G(s, in->A_imag);
        s->step = *in;
        s->step.u = HX_K(s, 56, -1, 1, B, H);
        s->sout = HX_K(s, 0, 0, 0, B, H);
    } else {
        in->A = HX_K(s, 57, -0.5f, 0.5f, H, N2, 2);
        for (int64_t i = 0; i < H * N2; i++) mm_tensor_data(in->A)[2 * i] = -0.5f; /* Re < 0 */
        in->P = HX_K(s, 58, -0.3f, 0.3f, H, N2, 2);
        s->g.dA = HX_G(s, in->A), s->g.dP = HX_G(s, in->P);
    }
    s->g.dlog_dt = HX_G(s, in->log_dt), s->g.dC = HX_G(s, in->C), s->g.dB = HX_G(s, in->B);
    s->k = HX_K(s, 0, 0, 0, H, L), s->dk = HX_K(s, 59, -1, 1, H, L);
    s->out = HX_K(s, 0, 0, 0, B, H, L), s->dout = HX_K(s, 60, -1, 1, B, H, L);
    s->cu = HX_K(s, 61, -1, 1, B, H, L);
}

/* Builds the fixture of kind (Bt 2, L 12, D/H 4, N 4, P 3, G 1). */
static inline void hx_ssm_open(hx_ssm *s, int32_t kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind, s->Bt = 2, s->L = 12, s->D = 4, s->N = 4, s->P = 3, s->G = 1;
    CHECK_OK(mm_ssm_inputs_init(&s->scan));
    CHECK_OK(mm_ssm_inputs_init(&s->step));
    CHECK_OK(mm_ssm_grads_init(&s->g));
    switch (kind) {
    case MM_SSM_SELECTIVE:
        hx_ssm_selective(s);
        break;
    case MM_SSM_SSD:
        hx_ssm_ssd(s);
        break;
    case MM_SSM_LRU:
        hx_ssm_lru(s);
        break;
    default:
        hx_ssm_s4(s);
        break;
    }
}

static inline void hx_ssm_close(hx_ssm *s)
{
    for (int i = 0; i < s->nt; i++) mm_tensor_free(s->t[i]);
    memset(s, 0, sizeof *s);
}

/* Options for a handle that fits the fixture. */
static inline void hx_ssm_opts(mm_ssm_opts *o, int32_t kind, const mm_allocator *a,
                               int32_t n_threads)
{
    CHECK_OK(mm_ssm_opts_init(o, kind));
    o->alloc = a, o->d_inner = 4, o->d_state = 4, o->head_dim = 3, o->n_groups = 1;
    o->max_batch = 2, o->max_seq = 16, o->chunk = 4, o->n_threads = n_threads;
}

/* ---- policies ------------------------------------------------------------------------------- */
static const float hx_act_lo[2] = {-2.0f, -1.0f}, hx_act_hi[2] = {2.0f, 3.0f};

/* Whether algo accepts the action space (DDPG/TD3 continuous only, QAC discrete only). */
static inline int hx_policy_fits(int32_t algo, int discrete)
{
    if (algo == MM_ALGO_DDPG || algo == MM_ALGO_TD3) return !discrete;
    if (algo == MM_ALGO_QAC) return discrete;
    return 1;
}

/* A small agent: obs 3, 4 agents, 2-D continuous actions or 3 discrete ones. */
static inline void hx_policy_opts(mm_policy_opts *o, int32_t algo, int discrete,
                                  const mm_allocator *a)
{
    CHECK_OK(mm_policy_opts_init(o, algo));
    o->obs_dim = 3, o->alloc = a, o->seed = 5, o->n_agents = 4, o->norm_obs = 1;
    o->hidden[0] = 16, o->hidden[1] = 16;
    if (discrete)
        o->n_actions = 3;
    else
        o->act_dim = 2, o->act_low = hx_act_lo, o->act_high = hx_act_hi;
    o->buffer_size = 64, o->batch_size = 8, o->learning_starts = 10, o->n_steps = 6;
}

/* Drives steps of a fake 4-agent environment through act / observe / update; returns the
 * first failing status or MM_OK. */
static inline int hx_policy_drive(mm_policy *p, int steps, uint64_t seed)
{
    float obs[12], next[12], act[8], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    int rc;
    mmt_fill_uniform(obs, 12, seed, -1, 1);
    for (int s = 0; s < steps; s++) {
        int32_t did;
        if ((rc = mm_policy_act(p, obs, 4, act, 1)) != MM_OK) return rc;
        mmt_fill_uniform(next, 12, seed + 100 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 4; i++) {
            rew[i] = next[3 * i] - 0.1f * act[i];
            te[i] = (uint8_t)(s % 7 == 3 && i == 1);
            tr[i] = (uint8_t)(s % 5 == 4 && i == 2);
        }
        if ((rc = mm_policy_observe(p, obs, act, rew, next, te, tr, 4)) != MM_OK) return rc;
        if ((rc = mm_policy_update(p, &did)) != MM_OK) return rc;
        memcpy(obs, next, sizeof obs);
    }
    return MM_OK;
}

#endif
