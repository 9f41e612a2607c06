/* SPDX-License-Identifier: MIT */
/* gen_seeds.c — writes the fuzz seed corpora: small valid model files of every layer kind and
 * optimizer (with and without state), a PyTorch-style file without libmm metadata, a file with
 * torch_io.py's metadata, near-valid variants (truncated, flipped checksum), and JSON texts.
 * Usage: gen_seeds <seed dir>   (writes the model_load and json subdirectories) */
#include "io/mmi_io.h"
#include "mm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void check(int rc, const char *what)
{
    if (rc != MM_OK) {
        fprintf(stderr, "gen_seeds: %s: %s\n", what, mm_status_name(rc));
        exit(1);
    }
}

/* Saves m under name, plus a truncated and a corrupted copy for the first few models. */
static void save_model(const char *dir, mm_model *m, const char *name, uint32_t flags, int bad)
{
    size_t size = 0;
    unsigned char *buf;
    char nm[128];
    check(mm_model_save_mem(m, NULL, 0, &size, flags), "size");
    buf = (unsigned char *)malloc(size);
    check(mm_model_save_mem(m, buf, size, &size, flags), "save");
    put(dir, "model_load", name, buf, size);
    if (bad) {
        snprintf(nm, sizeof nm, "%s.trunc", name);
        put(dir, "model_load", nm, buf, size - 5);
        buf[size - 1] ^= 1;
        snprintf(nm, sizeof nm, "%s.badcrc", name);
        put(dir, "model_load", nm, buf, size);
    }
    free(buf);
}

static mm_model *begin(int64_t in)
{
    mm_model_opts o;
    mm_model *m = NULL;
    check(mm_model_opts_init(&o), "opts");
    o.input_dim = in;
    o.seed = 7;
    check(mm_model_create(&m, &o), "create");
    return m;
}

static void models(const char *dir)
{
    mm_model *m = begin(3);
    check(mm_model_add_dense(m, 4, 1, MM_INIT_DEFAULT, 1.0), "dense");
    check(mm_model_add_activation(m, MM_ACT_TANH), "tanh");
    check(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0), "dense");
    check(mm_model_finalize(m), "finalize");
    save_model(dir, m, "mlp", 0, 1);
    check(mm_model_set_optimizer(m, MM_OPT_ADAM), "adam");
    save_model(dir, m, "mlp_adam_state", MM_SAVE_OPTIMIZER_STATE, 0);
    mm_model_free(m);

    m = begin(4);
    check(mm_model_add_layernorm(m, 1e-5, 1), "ln");
    check(mm_model_add_dense(m, 3, 0, MM_INIT_ORTHOGONAL, 1.41), "dense");
    check(mm_model_add_activation(m, MM_ACT_GELU), "gelu");
    check(mm_model_add_rmsnorm(m, 1e-6, 1), "rms");
    check(mm_model_add_rmsnorm(m, 1e-6, 0), "rms");
    check(mm_model_finalize(m), "finalize");
    check(mm_model_set_optimizer(m, MM_OPT_RMSPROP), "rmsprop");
    check(mm_model_set_f64(m, MM_MODEL_CENTERED, 1), "centered");
    save_model(dir, m, "norms_rmsprop", 0, 1);
    mm_model_free(m);

    m = begin(2);
    check(mm_model_add_embedding(m, 5, 3), "embedding");
    check(mm_model_add_activation(m, MM_ACT_SILU), "silu");
    check(mm_model_add_dense(m, 1, 1, MM_INIT_DEFAULT, 1.0), "dense");
    check(mm_model_finalize(m), "finalize");
    check(mm_model_set_optimizer(m, MM_OPT_MOMENTUM), "momentum");
    save_model(dir, m, "embedding_momentum", MM_SAVE_OPTIMIZER_STATE, 0);
    mm_model_free(m);
}

/* Sequence blocks: every attention kind, GAU, Mamba and S4D, small. */
static void block_models(const char *dir)
{
    static const int32_t kinds[] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER,
                                    MM_ATTN_RELU2,   MM_ATTN_SPARSE, MM_ATTN_GATED};
    char name[32];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        mm_model *m = begin(4);
        mm_attn_opts ao;
        check(mm_attn_opts_init(&ao, kinds[k]), "attn opts");
        ao.n_heads = 1;
        ao.d_head = 2;
        ao.n_features = 4;
        ao.chunk = 2;
        ao.window = 2;
        ao.stride = 2;
        check(mm_model_add_attention(m, &ao), "attention");
        check(mm_model_finalize(m), "finalize");
        snprintf(name, sizeof name, "attn%d", (int)kinds[k]);
        save_model(dir, m, name, 0, 0);
        mm_model_free(m);
    }
    {
        mm_model *m = begin(4);
        check(mm_model_add_gau(m, 2, 2, 1, 2), "gau");
        check(mm_model_add_mamba(m, 2, 2, 1, 0), "mamba");
        check(mm_model_add_s4d(m, 2), "s4d");
        check(mm_model_finalize(m), "finalize");
        save_model(dir, m, "gau_mamba_s4d", 0, 0);
        mm_model_free(m);
    }
    {
        mm_model *m = begin(4);
        check(mm_model_add_cross_attention(m, 2, 2, 3, 4), "cross_attention");
        check(mm_model_finalize(m), "finalize");
        save_model(dir, m, "cross_attention", 0, 0);
        mm_model_free(m);
    }
}

/* A file as PyTorch's safetensors writes it for Linear(3,2), LayerNorm(2): no metadata
 * beyond {"format":"pt"}; and one with torch_io.py's architecture for Linear, ReLU, Linear. */
static void torch_files(const char *dir)
{
    static const float w0[6] = {0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f}, b0[2] = {0.01f, 0.02f};
    static const float g[2] = {1, 1}, b[2] = {0, 0}, w2[2] = {0.7f, -0.8f}, b2[1] = {0.5f};
    const char *keys[3] = {"format", "format_version", "architecture"};
    const char *vals[3] = {"pt", "1.0",
                           "{\"input_dim\":3,\"layers\":[{\"kind\":\"dense\",\"icfg\":[2,1,0],"
                           "\"dcfg\":[1]},{\"kind\":\"relu\"},{\"kind\":\"dense\","
                           "\"icfg\":[1,1,0],\"dcfg\":[1]}]}"};
    mmi_st_out t[4];
    mmi_st_plan p;
    mmi_alloc a;
    mmi_err e;
    unsigned char buf[4096];
    size_t size;
    memset(t, 0, sizeof t);
    t[0] = (mmi_st_out){"0.weight", MMI_ST_F32, 2, {2, 3}, w0};
    t[1] = (mmi_st_out){"0.bias", MMI_ST_F32, 1, {2}, b0};
    t[2] = (mmi_st_out){"1.weight", MMI_ST_F32, 1, {2}, g};
    t[3] = (mmi_st_out){"1.bias", MMI_ST_F32, 1, {2}, b};
    check(mmi_alloc_init(&a, NULL, &e), "alloc");
    check(mmi_st_plan_make(&p, t, 4, keys, vals, 1, 0, &a, &e), "plan");
    check(mmi_st_plan_to_mem(&p, buf, sizeof buf, &size, &e, "gen"), "mem");
    put(dir, "model_load", "torch_plain", buf, size);
    mmi_st_plan_free(&p);
    t[2] = (mmi_st_out){"2.weight", MMI_ST_F32, 2, {1, 2}, w2};
    t[3] = (mmi_st_out){"2.bias", MMI_ST_F32, 1, {1}, b2};
    check(mmi_st_plan_make(&p, t, 4, keys, vals, 3, 0, &a, &e), "plan");
    check(mmi_st_plan_to_mem(&p, buf, sizeof buf, &size, &e, "gen"), "mem");
    put(dir, "model_load", "torch_io_arch", buf, size);
    mmi_st_plan_free(&p);
}

static void json_texts(const char *dir)
{
    static const char *const texts[] = {
        ("{\"__metadata__\":{\"format\":\"pt\"},\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
         "\"data_offsets\":[0,24]}}"),
        "{\"input_dim\":4,\"layers\":[{\"kind\":\"dense\",\"icfg\":[8,1,0],\"dcfg\":[1]}]}",
        "[1, -0, 0.5e-3, 1E+2, -12.75, true, false, null, \"\\u00e9\\ud83d\\ude00\\n\"]",
        "{\"a\":{\"b\":{\"c\":[[],{}]}},\"\":\"\",\"k\\u0000\":9223372036854775807}",
        "\"unterminated",
        "[1,]",
    };
    char name[32];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        snprintf(name, sizeof name, "json%zu", i);
        put(dir, "json", name, texts[i], strlen(texts[i]));
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds <seed dir>\n");
        return 2;
    }
    models(argv[1]);
    block_models(argv[1]);
    torch_files(argv[1]);
    json_texts(argv[1]);
    return 0;
}
