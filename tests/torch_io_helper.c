/* SPDX-License-Identifier: MIT */
/* torch_io_helper.c — the libmm side of tests/test_torch_io.py, using the public API only.
 *   torch_io_helper run   <model.safetensors> <in.f32> <rows> <out.f32> [seq [ctx.f32 M]]
 *       loads the model, runs forward on rows x input_dim floats (rows x seq x input_dim
 *       with seq; with ctx.f32, mm_model_forward_ctx on rows x M x ctx_dim context floats),
 *       writes the outputs
 *   torch_io_helper build <model.safetensors> [blocks]
 *       builds a model with every MLP layer kind (or, with "blocks", every sequence block:
 *       attention of each convertible kind, GAU, Mamba, S4D) from a fixed seed and saves it
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

/* Reads a file of floats into a new [rows, m, n / (rows m)] tensor. */
static int read_ctx(const char *path, int64_t rows, int64_t m, mm_tensor **out)
{
    FILE *f = fopen(path, "rb");
    int64_t n, shape[3];
    int rc;
    if (!f) return fail("open context", 0, path);
    fseek(f, 0, SEEK_END);
    n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    shape[0] = rows, shape[1] = m, shape[2] = n / (rows * m);
    if ((rc = mm_tensor_create(out, 3, shape, NULL))) return fail("context tensor", rc, NULL);
    if (fread(mm_tensor_data(*out), 4, (size_t)n, f) != (size_t)n) return fail("read", 0, path);
    fclose(f);
    return 0;
}

static int run(const char *path, const char *in_path, int64_t rows, const char *out_path,
               int64_t seq, const char *ctx_path, int64_t ctx_len)
{
    mm_tensor *ctx = NULL;
    mm_model_opts o;
    mm_model *m = NULL;
    mm_tensor *x = NULL, *y = NULL;
    char err[256] = "";
    int64_t in_dim, out_dim, n;
    int64_t xs[3], ys[3];
    FILE *f;
    int rc = mm_model_opts_init(&o);
    o.max_batch = rows;
    o.max_seq = seq;
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
    in_dim = n / (rows * seq);
    xs[0] = ys[0] = rows;
    xs[1] = ys[1] = seq;
    xs[2] = in_dim;
    ys[2] = out_dim;
    if ((rc = mm_tensor_create(&x, 3, xs, NULL)) || (rc = mm_tensor_create(&y, 3, ys, NULL)))
        return fail("tensor", rc, NULL);
    if (fread(mm_tensor_data(x), 4, (size_t)n, f) != (size_t)n) return fail("read", 0, in_path);
    fclose(f);
    if (ctx_path && read_ctx(ctx_path, rows, ctx_len, &ctx)) return 1;
    if ((rc = mm_model_forward_ctx(m, x, ctx, y))) return fail("forward", rc, mm_model_errmsg(m));
    mm_tensor_free(ctx);
    f = fopen(out_path, "wb");
    n = rows * seq * out_dim;
    if (!f || fwrite(mm_tensor_data(y), 4, (size_t)n, f) != (size_t)n)
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
        (rc = mm_model_add_activation(m, MM_ACT_GELU)) || (rc = mm_model_add_rmsnorm(m, 1e-6, 1)) ||
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

/* Every sequence block on width 8: attention of the kinds with a PyTorch form (the variants
 * that change the math), GAU one-chunk and chunked causal, Mamba, S4D; dense layers between. */
static int build_blocks(const char *path)
{
    static const int32_t kinds[][6] = {
        /* kind, causal, variant, aux (chunk / window / stride), heads, d_head */
        {MM_ATTN_SOFTMAX, 0, 0, 0, 2, 4},
        {MM_ATTN_SOFTMAX, 1, 0, 0, 2, 4},
        {MM_ATTN_LINEAR, 1, MM_FMAP_ELU1, 0, 2, 3},
        {MM_ATTN_LINEAR, 0, MM_FMAP_RELU, 0, 1, 4},
        {MM_ATTN_RELU2, 0, 0, 256, 2, 4},
        {MM_ATTN_RELU2, 1, 0, 3, 2, 4},
        {MM_ATTN_RELU2, 0, 0, 4, 1, 4},
        {MM_ATTN_SPARSE, 1, MM_SPARSE_LOCAL, 3, 2, 4},
        {MM_ATTN_SPARSE, 1, MM_SPARSE_STRIDED, 2, 2, 4},
        {MM_ATTN_GATED, 1, MM_GATE_NONE, 4, 2, 4},
        {MM_ATTN_GATED, 1, MM_GATE_RETNET, 64, 2, 4}};
    mm_model_opts o;
    mm_model *m = NULL;
    int rc = mm_model_opts_init(&o);
    o.input_dim = 8;
    o.seed = 99;
    if (rc || (rc = mm_model_create(&m, &o))) return fail("create", rc, NULL);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && rc == MM_OK; i++) {
        mm_attn_opts a;
        rc = mm_attn_opts_init(&a, kinds[i][0]);
        a.causal = kinds[i][1];
        if (kinds[i][0] == MM_ATTN_LINEAR) a.feature_map = kinds[i][2];
        if (kinds[i][0] == MM_ATTN_SPARSE) a.sparse_pattern = kinds[i][2];
        if (kinds[i][0] == MM_ATTN_GATED) a.gate = kinds[i][2];
        if (kinds[i][0] == MM_ATTN_RELU2 || kinds[i][0] == MM_ATTN_GATED) a.chunk = kinds[i][3];
        if (kinds[i][0] == MM_ATTN_SPARSE) a.window = a.stride = kinds[i][3];
        a.n_heads = kinds[i][4];
        a.d_head = kinds[i][5];
        a.dv = 3;
        if (rc == MM_OK) rc = mm_model_add_attention(m, &a);
    }
    if (rc || (rc = mm_model_add_gau(m, 6, 5, 0, 0)) || (rc = mm_model_add_gau(m, 4, 3, 1, 3)) ||
        (rc = mm_model_add_mamba(m, 4, 3, 2, 0)) || (rc = mm_model_add_dense(m, 6, 1, 0, 1.0)) ||
        (rc = mm_model_add_s4d(m, 8)) || (rc = mm_model_finalize(m)))
        return fail("build blocks", rc, mm_model_errmsg(m));
    if ((rc = mm_model_save(m, path, 0))) return fail("save", rc, mm_model_errmsg(m));
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
    if ((argc == 6 || argc == 7 || argc == 9) && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv[3], atoll(argv[4]), argv[5], argc >= 7 ? atoll(argv[6]) : 1,
                   argc == 9 ? argv[7] : NULL, argc == 9 ? atoll(argv[8]) : 0);
    if (argc == 3 && strcmp(argv[1], "build") == 0) return build(argv[2]);
    if (argc == 4 && strcmp(argv[1], "build") == 0 && strcmp(argv[3], "blocks") == 0)
        return build_blocks(argv[2]);
    fprintf(stderr, "usage: torch_io_helper run <model> <in.f32> <rows> <out.f32> [seq [ctx M]]\n"
                    "       torch_io_helper build <model> [blocks]\n"
                    "       torch_io_helper policy <actor> <policy>\n");
    return 2;
}
