/* SPDX-License-Identifier: MIT */
/* torch_io_helper.c — the libmm side of tests/test_torch_io.py, using the public API only.
 *   torch_io_helper run   <model.safetensors> <in.f32> <rows> <out.f32>
 *       loads the model, runs forward on rows x input_dim floats, writes the outputs
 *   torch_io_helper build <model.safetensors>
 *       builds a model with every layer kind from a fixed seed and saves it
 *   torch_io_helper policy <actor.safetensors> <policy.safetensors>
 *       creates a PPO agent (obs 6, 3-D actions, hidden 16 x 16), writes its exported actor
 *       (mm_policy_export_save) and the policy file itself (mm_policy_save)
 * Files of floats are raw little-endian float32. Exit 0 on success. */
#include "mm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, int rc, const char *msg)
{
    fprintf(stderr, "torch_io_helper: %s: %s %s\n", what, mm_status_name(rc), msg ? msg : "");
    return 1;
}

static int run(const char *path, const char *in_path, int64_t rows, const char *out_path)
{
    mm_model_opts o;
    mm_model *m = NULL;
    mm_tensor *x = NULL, *y = NULL;
    char err[256] = "";
    int64_t in_dim, out_dim, n;
    int64_t xs[2], ys[2];
    FILE *f;
    int rc = mm_model_opts_init(&o);
    o.max_batch = rows;
    o.err_buf = err;
    o.err_buf_size = sizeof err;
    if (rc || (rc = mm_model_load(&m, path, &o))) return fail("load", rc, err);
    /* The input file holds rows x input_dim floats. */
    if ((rc = mm_model_output_dim(m, &out_dim))) return fail("output_dim", rc, NULL);
    f = fopen(in_path, "rb");
    if (!f) return fail("open input", 0, in_path);
    fseek(f, 0, SEEK_END);
    n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    in_dim = n / rows;
    xs[0] = rows;
    xs[1] = in_dim;
    ys[0] = rows;
    ys[1] = out_dim;
    if ((rc = mm_tensor_create(&x, 2, xs, NULL)) || (rc = mm_tensor_create(&y, 2, ys, NULL)))
        return fail("tensor", rc, NULL);
    if (fread(mm_tensor_data(x), 4, (size_t)n, f) != (size_t)n) return fail("read", 0, in_path);
    fclose(f);
    if ((rc = mm_model_forward(m, x, y))) return fail("forward", rc, mm_model_errmsg(m));
    f = fopen(out_path, "wb");
    if (!f || fwrite(mm_tensor_data(y), 4, (size_t)(rows * out_dim), f) != (size_t)(rows * out_dim))
        return fail("write", 0, out_path);
    fclose(f);
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_model_free(m);
    return 0;
}

static int build(const char *path)
{
    mm_model_opts o;
    mm_model *m = NULL;
    int rc = mm_model_opts_init(&o);
    o.input_dim = 6;
    o.seed = 1234;
    if (rc || (rc = mm_model_create(&m, &o))) return fail("create", rc, NULL);
    if ((rc = mm_model_add_dense(m, 12, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_TANH)) ||
        (rc = mm_model_add_layernorm(m, 1e-5, 1)) ||
        (rc = mm_model_add_dense(m, 10, 0, MM_INIT_ORTHOGONAL, 1.41421356)) ||
        (rc = mm_model_add_activation(m, MM_ACT_GELU)) ||
        (rc = mm_model_add_rmsnorm(m, 1e-6, 1)) ||
        (rc = mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_SILU)) ||
        (rc = mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_ELU)) ||
        (rc = mm_model_add_dense(m, 6, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_SOFTPLUS)) ||
        (rc = mm_model_add_dense(m, 5, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_SIGMOID)) ||
        (rc = mm_model_add_dense(m, 4, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_RELU2)) ||
        (rc = mm_model_add_dense(m, 3, 1, MM_INIT_DEFAULT, 1.0)) ||
        (rc = mm_model_add_activation(m, MM_ACT_RELU)) || (rc = mm_model_finalize(m)))
        return fail("build", rc, mm_model_errmsg(m));
    if ((rc = mm_model_set_optimizer(m, MM_OPT_ADAMW)) ||
        (rc = mm_model_save(m, path, MM_SAVE_OPTIMIZER_STATE)))
        return fail("save", rc, mm_model_errmsg(m));
    mm_model_free(m);
    return 0;
}

static int policy(const char *actor_path, const char *policy_path)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    int rc = mm_policy_opts_init(&o, MM_ALGO_PPO);
    o.obs_dim = 6, o.act_dim = 3, o.hidden[0] = 16, o.hidden[1] = 16, o.seed = 7;
    if (rc || (rc = mm_policy_create(&p, &o))) return fail("policy create", rc, NULL);
    if ((rc = mm_policy_export_save(p, actor_path)) || (rc = mm_policy_save(p, policy_path)))
        return fail("policy save", rc, mm_policy_errmsg(p));
    mm_policy_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "policy") == 0) return policy(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv[3], atoll(argv[4]), argv[5]);
    if (argc == 3 && strcmp(argv[1], "build") == 0) return build(argv[2]);
    fprintf(stderr, "usage: torch_io_helper run <model> <in.f32> <rows> <out.f32>\n"
                    "       torch_io_helper build <model>\n");
    return 2;
}
