/* SPDX-License-Identifier: MIT */
/* fuzz_params.c — libFuzzer target for run-time parameter sequences: mm_*_set_f64 /
 * mm_*_get_f64 on a model, loss, attention, SSM and policy handle, interleaved with the calls
 * that use the parameters.
 *
 * Input: records [object byte][id: 2 bytes][value: 8 bytes, a double or one of a few special
 * values]. Oracle: no crash or sanitizer report; a set that returns MM_OK is read back exactly
 * by get and lies inside mm_param_bounds; a refused set leaves the value unchanged; a set
 * outside the bounds of a known settable id is refused with MM_E_RANGE; compute calls after any
 * sequence return a status and, when a loss call succeeds, a finite loss (overflowing logits
 * must be refused up front). */
#include "mm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct handles {
    mm_model *m;
    mm_loss *clip, *ce;
    mm_attn *att;
    mm_ssm *ssd;
    mm_policy *ppo;
    mm_tensor *x, *y, *f, *g;
} handles;

static handles g_h;

static void setup(void)
{
    mm_model_opts mo;
    mm_loss_opts lo;
    mm_attn_opts ao;
    mm_ssm_opts so;
    mm_policy_opts po;
    int64_t xs[2] = {2, 3}, ys[2] = {2, 2}, fs[2] = {4, 8};
    if (mm_model_opts_init(&mo) != MM_OK) abort();
    mo.input_dim = 3, mo.max_batch = 2;
    if (mm_model_create(&g_h.m, &mo) || mm_model_add_dense(g_h.m, 2, 1, MM_INIT_DEFAULT, 1) ||
        mm_model_finalize(g_h.m) || mm_model_set_optimizer(g_h.m, MM_OPT_ADAM))
        abort();
    if (mm_loss_opts_init(&lo, MM_LOSS_CLIP)) abort();
    lo.max_batch = 4, lo.max_dim = 8, lo.tile = 8;
    if (mm_loss_create(&g_h.clip, &lo)) abort();
    if (mm_loss_opts_init(&lo, MM_LOSS_CROSS_ENTROPY)) abort();
    lo.max_batch = 4, lo.max_dim = 8;
    if (mm_loss_create(&g_h.ce, &lo)) abort();
    if (mm_attn_opts_init(&ao, MM_ATTN_LINEAR)) abort();
    ao.d_head = 4, ao.max_seq = 8;
    if (mm_attn_create(&g_h.att, &ao)) abort();
    if (mm_ssm_opts_init(&so, MM_SSM_SSD)) abort();
    so.d_inner = 2, so.d_state = 2, so.head_dim = 2, so.max_seq = 8;
    if (mm_ssm_create(&g_h.ssd, &so)) abort();
    if (mm_policy_opts_init(&po, MM_ALGO_PPO)) abort();
    po.obs_dim = 2, po.n_actions = 2, po.n_steps = 4, po.batch_size = 4, po.hidden[0] = 4;
    po.hidden[1] = 4;
    if (mm_policy_create(&g_h.ppo, &po)) abort();
    if (mm_tensor_create(&g_h.x, 2, xs, NULL) || mm_tensor_create(&g_h.y, 2, ys, NULL) ||
        mm_tensor_create(&g_h.f, 2, fs, NULL) || mm_tensor_create(&g_h.g, 2, fs, NULL))
        abort();
    for (int i = 0; i < 32; i++) mm_tensor_data(g_h.f)[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
}

/* The five objects, their setters / getters and their id ranges. */
static int obj_set(int o, int32_t id, double v)
{
    switch (o) {
    case 0:
        return mm_model_set_f64(g_h.m, id, v);
    case 1:
        return mm_loss_set_f64((id == 404 || id == 405) ? g_h.ce : g_h.clip, id, v);
    case 2:
        return mm_attn_set_f64(g_h.att, id, v);
    case 3:
        return mm_ssm_set_f64(g_h.ssd, id, v);
    default:
        return mm_policy_set_f64(g_h.ppo, id, v);
    }
}

static int obj_get(int o, int32_t id, double *v)
{
    switch (o) {
    case 0:
        return mm_model_get_f64(g_h.m, id, v);
    case 1:
        return mm_loss_get_f64((id == 404 || id == 405) ? g_h.ce : g_h.clip, id, v);
    case 2:
        return mm_attn_get_f64(g_h.att, id, v);
    case 3:
        return mm_ssm_get_f64(g_h.ssd, id, v);
    default:
        return mm_policy_get_f64(g_h.ppo, id, v);
    }
}

static double value_of(const uint8_t *p)
{
    static const double special[8] = {0.0, -0.0, 1.0, -1.0, NAN, INFINITY, -INFINITY, 1e-300};
    double v;
    memcpy(&v, p, 8);
    if (p[7] == 0x7f && p[6] < 8) return special[p[6]]; /* a cheap way to reach the specials */
    return v;
}

static void exercise(void)
{
    double loss = 0;
    int32_t tg[4] = {0, 1, 2, 3};
    for (int i = 0; i < 6; i++) mm_tensor_data(g_h.x)[i] = (float)i / 6.0f;
    (void)!mm_model_forward(g_h.m, g_h.x, g_h.y); /* huge lr may blow up params: no oracle */
    if (mm_model_zero_grad(g_h.m) != MM_OK) abort();
    (void)!mm_model_step(g_h.m);
    if (mm_loss_clip(g_h.clip, g_h.f, g_h.f, &loss, g_h.g, NULL) == MM_OK && !isfinite(loss))
        abort();
    if (mm_loss_cross_entropy(g_h.ce, g_h.f, tg, 4, &loss, g_h.g) == MM_OK && !isfinite(loss))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int32_t base[5] = {500, 400, 100, 200, 300};
    if (!g_h.m) setup();
    for (size_t pos = 0; pos + 11 <= size; pos += 11) {
        int o = data[pos] % 5;
        int32_t id =
            base[o] + (int32_t)(((uint32_t)data[pos + 1] | (uint32_t)data[pos + 2] << 8) % 100);
        double v = value_of(data + pos + 3), before = 0, after = 0, lo = 0, hi = 0;
        int known = mm_param_bounds(id, &lo, &hi) == MM_OK;
        int had = obj_get(o, id, &before) == MM_OK;
        int rc = obj_set(o, id, v);
        if (rc == MM_OK) {
            if (!known || isnan(v) || v < lo || v > hi) abort();
            if (obj_get(o, id, &after) != MM_OK) abort();
            if (fabs(after - v) > 1e-6 * fabs(v)) abort(); /* read back (float storage ok) */
        } else if (had && obj_get(o, id, &after) == MM_OK && memcmp(&after, &before, 8) != 0 &&
                   !(isnan(after) && isnan(before))) {
            abort(); /* a refused set changed the value */
        }
        if (rc != MM_OK && rc != MM_E_RANGE && rc != MM_E_UNSUPPORTED && rc != MM_E_STATE) abort();
        if (data[pos] % 7 == 0) exercise();
    }
    exercise();
    /* restore the defaults so runs stay independent: recreate what parameters can change */
    mm_model_free(g_h.m), mm_loss_free(g_h.clip), mm_loss_free(g_h.ce), mm_attn_free(g_h.att);
    mm_ssm_free(g_h.ssd), mm_policy_free(g_h.ppo);
    mm_tensor_free(g_h.x), mm_tensor_free(g_h.y), mm_tensor_free(g_h.f), mm_tensor_free(g_h.g);
    memset(&g_h, 0, sizeof g_h);
    return 0;
}
