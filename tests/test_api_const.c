/* SPDX-License-Identifier: MIT */
/* test_api_const.c — the getters take const handles (docs: mm.h "API conventions"): each is
 * called through a const pointer, returns the value a setter wrote, and on failure still
 * records its text in the handle without changing what it reads. Being const-correct is
 * checked by the compiler (this file builds with -Wall -Wextra, and passing a const handle
 * to a non-const parameter would warn); the values and messages are checked here. */
#include "runner.h"

#include <string.h>

static void test_model_get_const(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    const mm_model *cm;
    double v = -1;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 2;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_dense(m, 3, 1, MM_INIT_DEFAULT, 0));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_LR, 0.25));
    cm = m;
    CHECK_OK(mm_model_get_f64(cm, MM_MODEL_LR, &v));
    CHECK(v == 0.25);
    CHECK_STATUS(mm_model_get_f64(cm, 599, &v), MM_E_UNSUPPORTED);
    CHECK(v == 0.25); /* untouched on failure */
    CHECK(strstr(mm_model_errmsg(cm), "mm_model_get_f64") != NULL);
    CHECK_OK(mm_model_get_f64(cm, MM_MODEL_LR, &v)); /* the handle stays usable */
    CHECK(v == 0.25);
    CHECK_STATUS(mm_model_get_f64(NULL, MM_MODEL_LR, &v), MM_E_INVALID_ARG);
    mm_model_free(m);
}

static void test_attn_get_const(void)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    const mm_attn *ch;
    mm_tensor *w = NULL;
    double v = -1;
    int64_t shape[2] = {8, 4};
    CHECK_OK(mm_attn_opts_init(&o, MM_ATTN_PERFORMER));
    o.d_head = 4;
    o.n_features = 8;
    o.max_seq = 8;
    CHECK_OK(mm_attn_create(&h, &o));
    CHECK_OK(mm_attn_set_f64(h, MM_ATTN_EPS, 0.5));
    ch = h;
    CHECK_OK(mm_attn_get_f64(ch, MM_ATTN_EPS, &v));
    CHECK(v == 0.5);
    CHECK_STATUS(mm_attn_get_f64(ch, 199, &v), MM_E_UNSUPPORTED);
    CHECK(v == 0.5);
    CHECK(strstr(mm_attn_errmsg(ch), "mm_attn_get_f64") != NULL);
    CHECK_OK(mm_tensor_create(&w, 2, shape, NULL));
    CHECK_OK(mm_attn_get_projection(ch, w));
    CHECK(mm_tensor_data(w)[0] != 0.0f); /* the drawn projection was copied */
    CHECK_OK(mm_tensor_reshape(w, 1, (const int64_t[1]){32}));
    CHECK_STATUS(mm_attn_get_projection(ch, w), MM_E_SHAPE);
    CHECK(strstr(mm_attn_errmsg(ch), "mm_attn_get_projection") != NULL);
    mm_tensor_free(w);
    mm_attn_free(h);
}

static void test_policy_get_const(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    const mm_policy *cp;
    double v = -1;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3;
    o.n_actions = 2;
    o.n_steps = 8;
    o.batch_size = 8;
    o.hidden[0] = o.hidden[1] = 8;
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK_OK(mm_policy_set_f64(p, MM_POLICY_GAMMA, 0.5));
    cp = p;
    CHECK_OK(mm_policy_get_f64(cp, MM_POLICY_GAMMA, &v));
    CHECK(v == 0.5);
    CHECK_STATUS(mm_policy_get_f64(cp, 399, &v), MM_E_UNSUPPORTED);
    CHECK(v == 0.5);
    CHECK(strstr(mm_policy_errmsg(cp), "mm_policy_get_f64") != NULL);
    /* mm_policy_export_io is a getter too (const since 0.2): discrete PPO -> argmax. */
    {
        mm_policy_export_info info;
        float mean[3] = {9, 9, 9}, lo[1] = {9};
        CHECK_OK(mm_policy_export_io(cp, &info, mean, NULL, lo, NULL));
        CHECK(info.output == MM_EXPORT_ARGMAX && info.obs_dim == 3 && info.model_out == 2);
        CHECK(mean[0] == 0.0f && mean[2] == 0.0f && lo[0] == -1.0f);
        CHECK_STATUS(mm_policy_export_io(cp, NULL, NULL, NULL, NULL, NULL), MM_E_INVALID_ARG);
        CHECK(strstr(mm_policy_errmsg(cp), "mm_policy_export_io") != NULL);
    }
    mm_policy_free(p);
}

void suite_api_const(void)
{
    mmt_run("api_const_model_get", test_model_get_const);
    mmt_run("api_const_attn_get", test_attn_get_const);
    mmt_run("api_const_policy_get", test_policy_get_const);
}
