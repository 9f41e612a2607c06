/* SPDX-License-Identifier: MIT */
/* test_fileguard.c — hostile and unusual files: loaded configs meet the builder's bounds, size
 * formulas never wrap, a file cannot make finalize reserve far more than its size, step counts
 * cannot overflow, non-regular files are refused without blocking, non-finite content is
 * refused, and a save through a symbolic link replaces the link's target. */
#include "runner.h"
#include "attn/mmi_attn.h"
#include "io/mmi_io.h"
#include "model/mmi_model.h"
#include "policy/mmi_policy.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- an allocator that records the largest single request ------------------------------- */
typedef struct peak_alloc {
    mm_allocator pub;
    size_t largest;
    int64_t live;
} peak_alloc;

static void *peak_fn(void *ud, size_t size, size_t align)
{
    peak_alloc *p = (peak_alloc *)ud;
    void *q = NULL;
    if (size > p->largest) p->largest = size;
    if (posix_memalign(&q, align, size) != 0) return NULL;
    p->live += (int64_t)size;
    return q;
}

static void peak_free(void *ud, void *ptr, size_t size)
{
    ((peak_alloc *)ud)->live -= (int64_t)size;
    free(ptr);
}

static void peak_init(peak_alloc *p)
{
    memset(p, 0, sizeof *p);
    p->pub.struct_size = (uint32_t)sizeof p->pub;
    p->pub.alloc_fn = peak_fn;
    p->pub.free_fn = peak_free;
    p->pub.ud = p;
}

/* ---- building files ----------------------------------------------------------------------- */
/* A libmm file from metadata pairs and tensors (CRC added). Caller frees. */
static unsigned char *make_file(const mmi_st_out *t, int64_t n, const char *const *keys,
                                const char *const *vals, int64_t nm, size_t *size)
{
    mmi_alloc a;
    mmi_err e;
    mmi_st_plan p;
    unsigned char *buf = NULL;
    CHECK_OK(mmi_alloc_init(&a, NULL, NULL));
    if (mmi_st_plan_make(&p, t, n, keys, vals, nm, 1, &a, &e) != MM_OK) {
        mmt_fail(__FILE__, __LINE__, "plan: %s", e.msg);
        return NULL;
    }
    buf = (unsigned char *)malloc(p.total_size);
    if (buf) CHECK_OK(mmi_st_plan_to_mem(&p, buf, p.total_size, size, &e, "t"));
    mmi_st_plan_free(&p);
    return buf;
}

/* A one-attention-layer model file with config ic on input width d (weights 0.01). */
static unsigned char *attn_file(const int64_t ic[8], int64_t d, size_t *size)
{
    const int64_t pw = ic[1] * (2 * ic[2] + ic[3]), aw = ic[1] * ic[3];
    const char *keys[3] = {"format", "format_version", "architecture"};
    const char *vals[3];
    char arch[512];
    mmi_st_out t[4];
    float *w = (float *)calloc((size_t)(pw * d + pw + d * aw + d), sizeof(float));
    unsigned char *buf;
    snprintf(arch, sizeof arch,
             "{\"input_dim\":%lld,\"layers\":[{\"kind\":\"attention\",\"icfg\":[%lld,%lld,%lld,"
             "%lld,%lld,%lld,%lld,%lld],\"dcfg\":[]}]}",
             (long long)d, (long long)ic[0], (long long)ic[1], (long long)ic[2], (long long)ic[3],
             (long long)ic[4], (long long)ic[5], (long long)ic[6], (long long)ic[7]);
    vals[0] = "libmm", vals[1] = "1.0", vals[2] = arch;
    for (int64_t i = 0; i < pw * d; i++) w[i] = 0.01f;
    memset(t, 0, sizeof t);
    t[0].name = "0.in_proj_weight", t[0].ndim = 2, t[0].shape[0] = pw, t[0].shape[1] = d;
    t[1].name = "0.in_proj_bias", t[1].ndim = 1, t[1].shape[0] = pw;
    t[2].name = "0.out_proj.weight", t[2].ndim = 2, t[2].shape[0] = d, t[2].shape[1] = aw;
    t[3].name = "0.out_proj.bias", t[3].ndim = 1, t[3].shape[0] = d;
    t[0].data = w, t[1].data = w + pw * d, t[2].data = w + pw * d + pw;
    t[3].data = w + pw * d + pw + d * aw;
    for (int i = 0; i < 4; i++) t[i].dtype = MMI_ST_F32;
    buf = make_file(t, 4, keys, vals, 3, size);
    free(w);
    return buf;
}

/* Copies a saved file with metadata key set to val (if key), and element elem of tensor
 * tname set to v (if tname; F32, F64, I64 or U8). Caller frees. */
static unsigned char *remake(const unsigned char *file, size_t size, const char *key,
                             const char *val, const char *tname, int64_t elem, double v,
                             size_t *out_size)
{
    mmi_alloc a;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    mmi_st_out outs[64];
    const char *keys[16], *vals[16];
    unsigned char *data, *buf = NULL;
    int64_t nm = 0;
    CHECK_OK(mmi_alloc_init(&a, NULL, NULL));
    mmi_st_limits_default(&lim);
    if (mmi_st_parse(&f, file, size, &lim, &a, &e) != MM_OK || f.n_tensors > 64) return NULL;
    for (int64_t i = 0; i < f.n_meta && nm < 16; i++) {
        if (strcmp(f.meta[i].key, "crc32") == 0) continue;
        keys[nm] = f.meta[i].key;
        vals[nm++] = key && strcmp(f.meta[i].key, key) == 0 ? val : f.meta[i].val;
    }
    data = (unsigned char *)malloc(f.data_len + 1);
    memcpy(data, f.data, f.data_len); /* little-endian host assumed by this test's patches */
    for (int64_t i = 0; i < f.n_tensors; i++) {
        const mmi_st_tensor *t = &f.tensors[i];
        memset(&outs[i], 0, sizeof outs[i]);
        outs[i].name = t->name;
        outs[i].dtype = t->dtype;
        outs[i].ndim = t->ndim;
        memcpy(outs[i].shape, t->shape, sizeof t->shape);
        outs[i].data = data + t->begin;
        if (tname && strcmp(t->name, tname) == 0) {
            if (t->dtype == MMI_ST_F64) {
                memcpy(data + t->begin + 8 * elem, &v, 8);
            } else if (t->dtype == MMI_ST_I64) {
                int64_t iv = (int64_t)v;
                memcpy(data + t->begin + 8 * elem, &iv, 8);
            } else if (t->dtype == MMI_ST_U8) {
                data[t->begin + elem] = (unsigned char)v;
            } else {
                float fv = (float)v;
                memcpy(data + t->begin + 4 * elem, &fv, 4);
            }
        }
    }
    buf = make_file(outs, f.n_tensors, keys, vals, nm, out_size);
    free(data);
    mmi_st_free(&f);
    return buf;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (unsigned char *)malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Loads from memory with a peak allocator; expects want, no handle, a message naming word,
 * nothing leaked and no allocation over 1 MiB. */
static void expect_refused(const unsigned char *buf, size_t n, int want, const char *word, int line)
{
    peak_alloc pa;
    mm_model_opts o;
    mm_model *m = NULL;
    char err[256] = "";
    int rc;
    peak_init(&pa);
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = &pa.pub, o.err_buf = err, o.err_buf_size = sizeof err;
    rc = mm_model_load_mem(&m, buf, n, &o);
    if (rc != want || m != NULL || !strstr(err, word) || pa.largest > ((size_t)1 << 20) ||
        pa.live != 0)
        mmt_fail(__FILE__, line,
                 "got %s \"%s\" (largest allocation %zu, live %lld); want %s "
                 "naming \"%s\"",
                 mm_status_name(rc), err, pa.largest, (long long)pa.live, mm_status_name(want),
                 word);
    mm_model_free(m);
}

/* ---- items 1-3: attention configs ------------------------------------------------------------ */
typedef struct cfg_case {
    int64_t ic[8];
    int64_t d;
    const char *word;
} cfg_case;

static void test_attn_configs(void)
{
    static const cfg_case cases[] = {
        /* n_features 2^62: loaded, then the projection draw ran off a tiny buffer */
        {{MM_ATTN_PERFORMER, 1, 1, 1, 0, (int64_t)1 << 62, 0, 7}, 1, "n_features"},
        {{MM_ATTN_PERFORMER, 1, 1, 1, 0, 100000000, 0, 7}, 1, "n_features"},
        {{MM_ATTN_GATED, 1, 1, 1, 1, 0, (int64_t)1 << 31, 0}, 1, "chunk"},
        {{MM_ATTN_GATED, 1, 1, 1, 1, 0, 3037000500LL, 0}, 1, "chunk"},
        /* configs mm_model_add_attention refuses */
        {{MM_ATTN_PERFORMER, 1, 1, 1, 0, 65537, 0, 0}, 1, "n_features"},
        {{MM_ATTN_GATED, 1, 1, 1, 1, 0, 1025, 0}, 1, "chunk"},
        {{MM_ATTN_LINEAR, 1, 1, 1, 0, 99, 0, 0}, 1, "feature_map"},
        {{MM_ATTN_GATED, 1, 1, 1, 1, 7, 64, 0}, 1, "gate"},
        {{MM_ATTN_SPARSE, 1, 1, 1, 1, 9, 4, 0}, 1, "sparse_pattern"},
        {{MM_ATTN_GATED, 1, 1, 1, 0, 0, 64, 0}, 1, "causal"},
        {{99, 1, 1, 1, 0, 0, 0, 0}, 1, "kind"},
        /* a field the kind does not use is not 0: never written by the builder */
        {{MM_ATTN_SOFTMAX, 1, 1, 1, 0, 5, 0, 0}, 1, "variant"},
        {{MM_ATTN_LINEAR, 1, 1, 1, 0, 1, 0, -1}, 1, "seed"},
        /* within every bound, but the FAVOR+ draw alone would reserve 2 d_head^2 doubles
         * (256 MiB) and the projection 512 MiB for a file of 64 KiB */
        {{MM_ATTN_PERFORMER, 1, 4096, 1, 0, 65536, 0, 7}, 1, "proportion"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        unsigned char *buf = attn_file(cases[i].ic, cases[i].d, &n);
        if (!buf) continue;
        expect_refused(buf, n, MM_E_FORMAT, cases[i].word, __LINE__);
        free(buf);
    }
    /* A sane PERFORMER file still loads and runs. */
    {
        static const int64_t ok[8] = {MM_ATTN_PERFORMER, 2, 4, 3, 1, 8, 0, 7};
        size_t n = 0;
        unsigned char *buf = attn_file(ok, 5, &n);
        mm_model *m = NULL;
        mm_model_opts o;
        mm_tensor *x = NULL, *y = NULL;
        int64_t xs[3] = {1, 2, 5};
        CHECK_OK(mm_model_opts_init(&o));
        o.max_seq = 2;
        CHECK_OK(mm_model_load_mem(&m, buf, n, &o));
        CHECK_OK(mm_tensor_create(&x, 3, xs, NULL));
        CHECK_OK(mm_tensor_create(&y, 3, xs, NULL));
        if (m && x && y) {
            CHECK_OK(mm_tensor_fill(x, 0.5f));
            CHECK_OK(mm_model_forward(m, x, y));
            CHECK(isfinite(mm_tensor_data(y)[0]));
        }
        mm_tensor_free(x);
        mm_tensor_free(y);
        mm_model_free(m);
        free(buf);
    }
}

/* Two cross-attention layers with different ctx_dim: mm_model_add_cross_attention refuses the
 * second, and so does the loader (it used to load a model no *_ctx call could run). */
static void test_xattn_one_context(void)
{
    static const char *const suffix[6] = {"q_proj.weight", "q_proj.bias",     "kv_proj.weight",
                                          "kv_proj.bias",  "out_proj.weight", "out_proj.bias"};
    const char *keys[3] = {"format", "format_version", "architecture"};
    const char *vals[3] = {"libmm", "1.0",
                           "{\"input_dim\":4,\"layers\":["
                           "{\"kind\":\"cross_attention\",\"icfg\":[1,2,3,2],\"dcfg\":[]},"
                           "{\"kind\":\"cross_attention\",\"icfg\":[1,2,5,2],\"dcfg\":[]}]}"};
    static float w[64];
    char names[12][32];
    mmi_st_out t[12];
    size_t n = 0;
    unsigned char *buf;
    mm_model_opts mo;
    mm_model *m = NULL;
    memset(t, 0, sizeof t);
    for (int L = 0; L < 2; L++) {
        const int64_t dc = L ? 5 : 3;
        const int64_t shape[6][2] = {{2, 4}, {2, 0}, {4, dc}, {4, 0}, {4, 2}, {4, 0}};
        for (int k = 0; k < 6; k++) {
            mmi_st_out *o = &t[6 * L + k];
            snprintf(names[6 * L + k], sizeof names[0], "%d.%s", L, suffix[k]);
            o->name = names[6 * L + k], o->dtype = MMI_ST_F32, o->data = w;
            o->ndim = shape[k][1] ? 2 : 1;
            o->shape[0] = shape[k][0], o->shape[1] = shape[k][1];
        }
    }
    buf = make_file(t, 12, keys, vals, 3, &n);
    if (buf) expect_refused(buf, n, MM_E_FORMAT, "ctx_dim", __LINE__);
    free(buf);
    CHECK_OK(mm_model_opts_init(&mo));
    mo.input_dim = 4;
    CHECK_OK(mm_model_create(&m, &mo));
    CHECK_OK(mm_model_add_cross_attention(m, 1, 2, 3, 2));
    CHECK_STATUS(mm_model_add_cross_attention(m, 1, 2, 5, 2), MM_E_SHAPE);
    CHECK(strstr(mm_model_errmsg(m), "ctx_dim") != NULL);
    mm_model_free(m);
}

/* The builder refuses the same configs the loader refuses (one validation path). */
static void test_attn_builder_agrees(void)
{
    static const struct {
        int32_t kind;
        int field; /* 0 n_features, 1 chunk, 2 feature_map, 3 gate, 4 sparse_pattern */
        int64_t v;
    } cases[] = {{MM_ATTN_PERFORMER, 0, 65537},
                 {MM_ATTN_GATED, 1, 1025},
                 {MM_ATTN_LINEAR, 2, 99},
                 {MM_ATTN_GATED, 3, 7},
                 {MM_ATTN_SPARSE, 4, 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mm_model_opts mo;
        mm_attn_opts ao;
        mm_model *m = NULL;
        int rc;
        CHECK_OK(mm_model_opts_init(&mo));
        mo.input_dim = 4;
        CHECK_OK(mm_model_create(&m, &mo));
        CHECK_OK(mm_attn_opts_init(&ao, cases[i].kind));
        ao.d_head = 2;
        if (cases[i].field == 0) ao.n_features = cases[i].v;
        if (cases[i].field == 1) ao.chunk = cases[i].v;
        if (cases[i].field == 2) ao.feature_map = (int32_t)cases[i].v;
        if (cases[i].field == 3) ao.gate = (int32_t)cases[i].v;
        if (cases[i].field == 4) ao.sparse_pattern = (int32_t)cases[i].v;
        rc = mm_model_add_attention(m, &ao);
        CHECK(rc == MM_E_RANGE || rc == MM_E_INVALID_ARG);
        CHECK(strlen(mm_model_errmsg(m)) > 0);
        mm_model_free(m);
    }
}

/* ---- checked size formulas ------------------------------------------------------------------- */
static void test_checked_sizes(void)
{
    mmi_carve c = mmi_carve_measure();
    CHECK(mmi_attn_linear_ws_floats(1, (int64_t)1 << 62, 1) == SIZE_MAX);
    CHECK(mmi_attn_linear_ws_floats(INT64_MAX, 1, 1) == SIZE_MAX);
    /* z, dden, [S ; chunk], [S^T ; chunk] with a chunk's columns beside S^T, the stacked left
     * operand, [fk^T ; A] and V^T of a chunk, P, a chunk of feature gradients (chunks of 16
     * tokens), padding, rounded down to 16; then the backward's dden of every row (n doubles) */
    CHECK(mmi_attn_linear_ws_floats(100, 64, 64) ==
          (2 * 64 + 2 * 16 + (64 + 16) * 64 + (64 + 16) * (64 + 16) + 16 * (64 + 16) +
           (64 + 16 + 64) * 16 + 16 * 16 + 16 * 64 + 32 + 15) /
                  16 * 16 +
              2 * 100);
    CHECK(mmi_attn_gated_ws_floats(1024, 3037000500LL, 1, 1) == SIZE_MAX);
    CHECK(mmi_attn_gated_ws_floats(INT64_MAX, 1, 64, 64) == SIZE_MAX);
    CHECK(mmi_sz_mul(INT64_MAX, 2) == MMI_SIZE_BAD);
    CHECK(mmi_sz_mul(MMI_SIZE_BAD, 0) == MMI_SIZE_BAD);
    CHECK(mmi_sz_add(INT64_MAX, 1) == MMI_SIZE_BAD);
    CHECK(mmi_sz_add(3, 4) == 7);
    CHECK(mmi_carve_take(&c, 10, 4) == NULL && c.off == 64);
    (void)mmi_carve_take(&c, INT64_MAX, 8);
    CHECK(c.off == SIZE_MAX);
    (void)mmi_carve_take(&c, 1, 4); /* saturated for good: never wraps back to small */
    CHECK(c.off == SIZE_MAX);
    /* A built model whose workspace overflows: finalize refuses with MM_E_RANGE instead of
     * reserving a wrapped size (2^40 rows x 4096 heads x 65536 features). */
    {
        mm_model_opts mo;
        mm_attn_opts ao;
        mm_model *m = NULL;
        CHECK_OK(mm_model_opts_init(&mo));
        mo.input_dim = 2, mo.max_batch = (int64_t)1 << 20, mo.max_seq = (int64_t)1 << 20;
        CHECK_OK(mm_model_create(&m, &mo));
        CHECK_OK(mm_attn_opts_init(&ao, MM_ATTN_PERFORMER));
        ao.d_head = 1, ao.n_heads = 4096, ao.n_features = 65536;
        CHECK_OK(mm_model_add_attention(m, &ao));
        CHECK_STATUS(mm_model_finalize(m), MM_E_RANGE);
        CHECK(strstr(mm_model_errmsg(m), "overflows") != NULL);
        mm_model_free(m);
    }
}

/* ---- item 4: step counters --------------------------------------------------------------------- */
static unsigned char *adam_file(size_t *size)
{
    mm_model_opts o;
    mm_model *m = NULL;
    unsigned char *buf;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 3;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_save_mem(m, NULL, 0, size, MM_SAVE_OPTIMIZER_STATE));
    buf = (unsigned char *)malloc(*size);
    CHECK_OK(mm_model_save_mem(m, buf, *size, size, MM_SAVE_OPTIMIZER_STATE));
    mm_model_free(m);
    return buf;
}

/* The optimizer metadata of an Adam file with its counters replaced. */
static unsigned char *with_steps(const unsigned char *file, size_t size, const char *counters,
                                 size_t *n)
{
    static const char zero[] = "\"steps\":0,\"layer_step\":[0]";
    mmi_alloc a;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    char opt[1024];
    const char *v, *at;
    size_t len = 0;
    unsigned char *out = NULL;
    CHECK_OK(mmi_alloc_init(&a, NULL, NULL));
    mmi_st_limits_default(&lim);
    if (mmi_st_parse(&f, file, size, &lim, &a, &e) != MM_OK) return NULL;
    v = mmi_st_meta(&f, "optimizer", &len);
    at = v ? strstr(v, zero) : NULL;
    if (at && len < 700) {
        snprintf(opt, sizeof opt, "%.*s%s%s", (int)(at - v), v, counters, at + strlen(zero));
        out = remake(file, size, "optimizer", opt, NULL, 0, 0, n);
    }
    mmi_st_free(&f);
    CHECK(out != NULL);
    return out;
}

static void test_step_counters(void)
{
    size_t size = 0, n = 0;
    unsigned char *base = adam_file(&size), *bad;
    mm_model *m = NULL;
    float *p = NULL;
    int64_t np = 0;
    double steps = 0;
    bad = with_steps(base, size, "\"steps\":9223372036854775806,\"layer_step\":[0]", &n);
    if (bad) expect_refused(bad, n, MM_E_FORMAT, "steps", __LINE__);
    free(bad);
    bad = with_steps(base, size, "\"steps\":0,\"layer_step\":[9223372036854775807]", &n);
    if (bad) expect_refused(bad, n, MM_E_FORMAT, "per-layer", __LINE__);
    free(bad);
    bad = with_steps(base, size, "\"steps\":9007199254740993,\"layer_step\":[0]", &n);
    if (bad) expect_refused(bad, n, MM_E_FORMAT, "2^53", __LINE__);
    free(bad);
    /* The largest count allowed loads and keeps stepping with finite parameters; the counts
     * stay at 2^53, so the model's own file still loads (they used to reach 2^53 + 2 and the
     * saved file was refused). */
    bad =
        with_steps(base, size, "\"steps\":9007199254740992,\"layer_step\":[9007199254740992]", &n);
    CHECK_OK(mm_model_load_mem(&m, bad, n, NULL));
    if (m) {
        mm_model *back = NULL;
        size_t nb = 0;
        unsigned char *again;
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_step(m));
        CHECK_OK(mm_model_step(m));
        CHECK_OK(mm_model_params(m, &p, &np));
        for (int64_t i = 0; i < np; i++) CHECK(isfinite(p[i]));
        CHECK_OK(mm_model_get_f64(m, MM_MODEL_STAT_STEPS, &steps));
        CHECK(steps == 9007199254740992.0);
        CHECK_OK(mm_model_save_mem(m, NULL, 0, &nb, MM_SAVE_OPTIMIZER_STATE));
        again = (unsigned char *)malloc(nb);
        CHECK_OK(mm_model_save_mem(m, again, nb, &nb, MM_SAVE_OPTIMIZER_STATE));
        CHECK_OK(mm_model_load_mem(&back, again, nb, NULL));
        mm_model_free(back);
        free(again);
    }
    mm_model_free(m);
    free(bad);
    free(base);
}

/* ---- item 5: non-regular files ------------------------------------------------------------------ */
static void test_non_regular(void)
{
    char dir[64], fifo[96];
    mm_model_opts o;
    mm_model *m = NULL;
    mm_policy_opts po;
    mm_policy *p = NULL;
    char err[256] = "";
    snprintf(dir, sizeof dir, "/tmp/mm_test_guard_XXXXXX");
    if (!mkdtemp(dir)) {
        mmt_fail(__FILE__, __LINE__, "mkdtemp failed");
        return;
    }
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_OK(mm_model_opts_init(&o));
    o.err_buf = err, o.err_buf_size = sizeof err;
    alarm(60); /* a regression blocks in open: the alarm ends the run instead of hanging CI */
    CHECK_STATUS(mm_model_load(&m, fifo, &o), MM_E_IO);
    CHECK(m == NULL && strstr(err, "not a regular file") != NULL);
    CHECK_STATUS(mm_model_load(&m, "/dev/null", &o), MM_E_IO);
    CHECK(m == NULL && strstr(err, "not a regular file") != NULL);
    CHECK_STATUS(mm_model_load(&m, dir, &o), MM_E_IO);
    CHECK(strstr(err, "directory") != NULL);
    CHECK_OK(mm_policy_opts_init(&po, MM_ALGO_PPO));
    po.obs_dim = 2, po.act_dim = 1;
    CHECK_OK(mm_policy_create(&p, &po));
    CHECK_STATUS(mm_policy_load(p, fifo), MM_E_IO);
    CHECK(strstr(mm_policy_errmsg(p), "not a regular file") != NULL);
    /* every loader that opens a path: the model's, the policy's into a handle and into a new
     * one; a FIFO, a directory and a device that never ends (/dev/zero) */
    {
        const char *paths[3] = {fifo, dir, "/dev/zero"};
        for (int i = 0; i < 3; i++) {
            mm_policy *q = (mm_policy *)1;
            err[0] = '\0';
            CHECK_STATUS(mm_model_load(&m, paths[i], &o), MM_E_IO);
            CHECK(m == NULL && strstr(err, "not a regular file") != NULL);
            CHECK_STATUS(mm_policy_load(p, paths[i]), MM_E_IO);
            CHECK(strstr(mm_policy_errmsg(p), "not a regular file") != NULL);
            err[0] = '\0';
            po.err_buf = err, po.err_buf_size = sizeof err;
            CHECK_STATUS(mm_policy_load_new(&q, paths[i], &po), MM_E_IO);
            CHECK(q == NULL && strstr(err, "mm_policy_load_new") != NULL &&
                  strstr(err, "not a regular file") != NULL);
        }
    }
    alarm(0);
    mm_policy_free(p);
    unlink(fifo);
    rmdir(dir);
}

/* ---- item 6: non-finite content ----------------------------------------------------------------- */
static void test_model_nonfinite(void)
{
    size_t size = 0, n = 0;
    unsigned char *base = adam_file(&size), *bad;
    static const struct {
        const char *tensor;
        double v;
    } cases[] = {{"0.weight", NAN},
                 {"0.bias", INFINITY},
                 {"0.weight", -INFINITY},
                 {"optimizer.0.weight.exp_avg", NAN},
                 {"optimizer.0.bias.exp_avg_sq", -1.0},
                 {"optimizer.0.weight.max_exp_avg_sq", -0.5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad = remake(base, size, NULL, NULL, cases[i].tensor, 1, cases[i].v, &n);
        if (bad) expect_refused(bad, n, MM_E_NUMERIC, cases[i].tensor, __LINE__);
        free(bad);
    }
    /* -0.0 in a square average is a zero, not a negative value. */
    bad = remake(base, size, NULL, NULL, "optimizer.0.bias.exp_avg_sq", 0, -0.0, &n);
    {
        mm_model *m = NULL;
        CHECK_OK(mm_model_load_mem(&m, bad, n, NULL));
        mm_model_free(m);
    }
    free(bad);
    free(base);
}

static mm_policy *small_policy(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    static float lo[2] = {-1, -1}, hi[2] = {1, 1};
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.act_low = lo, o.act_high = hi, o.norm_obs = 1;
    o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 3;
    CHECK_OK(mm_policy_create(&p, &o));
    return p;
}

static void test_policy_nonfinite(void)
{
    char path[512], badp[512];
    static const struct {
        const char *tensor; /* NULL: the first weight */
        double v;
    } cases[] = {{"obs_rms.var", -1.0},
                 {"obs_rms.var", NAN},
                 {"obs_rms.mean", INFINITY},
                 {"obs_rms.count", -2.0},
                 {"obs_rms.count", NAN},
                 {NULL, NAN},
                 {NULL, INFINITY},
                 /* finite but beyond what float observations produce: a 1e300 mean made the
                  * variance Inf at the next observe and every later action NaN */
                 {"obs_rms.mean", 1e300},
                 {"obs_rms.mean", -1e39},
                 {"obs_rms.var", 1e79},
                 {"obs_rms.count", 1e300}};
    mm_policy *p = small_policy(), *q = small_policy();
    float obs[3] = {0.3f, -0.2f, 0.9f}, a0[2], a1[2];
    size_t size = 0;
    unsigned char *file;
    /* a private temporary directory, not build/tests/ (absent on a fresh clone: item 12) */
    CHECK(mmt_tmp_path(path, sizeof path, "guard_policy.safetensors") == 0);
    CHECK(mmt_tmp_path(badp, sizeof badp, "guard_policy_bad.safetensors") == 0);
    CHECK_OK(mm_policy_save(p, path));
    file = read_all(path, &size);
    CHECK_OK(mm_policy_act(q, obs, 1, a0, 0));
    for (size_t i = 0; file && i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        const char *tn = cases[i].tensor;
        unsigned char *bad;
        mmi_alloc a;
        mmi_err e;
        mmi_st_file f;
        mmi_st_limits lim;
        char first[96] = "";
        if (!tn) { /* the first F32 tensor of the file */
            CHECK_OK(mmi_alloc_init(&a, NULL, NULL));
            mmi_st_limits_default(&lim);
            CHECK_OK(mmi_st_parse(&f, file, size, &lim, &a, &e));
            for (int64_t k = 0; k < f.n_tensors && !first[0]; k++)
                if (f.tensors[k].dtype == MMI_ST_F32)
                    snprintf(first, sizeof first, "%s", f.tensors[k].name);
            mmi_st_free(&f);
            tn = first;
        }
        bad = remake(file, size, NULL, NULL, tn, 0, cases[i].v, &n);
        if (!bad) continue;
        write_all(badp, bad, n);
        CHECK_STATUS(mm_policy_load(q, badp), MM_E_NUMERIC);
        CHECK(strstr(mm_policy_errmsg(q), tn) != NULL);
        /* Refused before anything was copied: q acts as before. */
        CHECK_OK(mm_policy_act(q, obs, 1, a1, 0));
        CHECK(memcmp(a0, a1, sizeof a0) == 0);
        free(bad);
    }
    CHECK_OK(mm_policy_load(q, path)); /* the unmodified file still loads */
    free(file);
    remove(path);
    remove(badp);
    mm_policy_free(p);
    mm_policy_free(q);
}

/* The largest statistics allowed load, and act / observe keep giving finite actions. */
static void test_policy_rms_limits(void)
{
    char path[512];
    mm_policy *p = small_policy();
    float obs[3] = {1e30f, -2.0f, 0.5f}, nobs[3] = {-1e30f, 3.0f, 0.0f}, a[2], rew = 1.0f;
    uint8_t te = 0, tr = 0;
    size_t size = 0, n1 = 0, n2 = 0;
    unsigned char *file, *b1 = NULL, *b2 = NULL;
    CHECK(mmt_tmp_path(path, sizeof path, "guard_rms.safetensors") == 0);
    CHECK_OK(mm_policy_save(p, path));
    file = read_all(path, &size);
    if (file) b1 = remake(file, size, NULL, NULL, "obs_rms.mean", 0, FLT_MAX, &n1);
    if (b1) b2 = remake(b1, n1, NULL, NULL, "obs_rms.var", 0, 1e78, &n2);
    if (b2) {
        CHECK_OK(mm_policy_load_mem(p, b2, n2));
        for (int k = 0; k < 20; k++) {
            CHECK_OK(mm_policy_act(p, obs, 1, a, 1));
            CHECK(isfinite(a[0]) && isfinite(a[1]));
            CHECK_OK(mm_policy_observe(p, obs, a, &rew, nobs, &te, &tr, 1));
        }
    }
    free(b2);
    free(b1);
    free(file);
    remove(path);
    mm_policy_free(p);
}

/* Counters at their largest allowed value (2^53) load, keep the policy working and stay there,
 * so the checkpoint it writes next loads back. fuzz_config found a loaded calls counter of 2^53
 * that one observe took past the loader's bound: the policy's own checkpoint was refused. */
static void test_policy_counter_limits(void)
{
    static const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    const double top = 9007199254740992.0; /* 2^53 */
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[6] = {0.3f, -0.2f, 0.9f, 0.1f, 0.5f, -0.7f}, a[4], rew[2] = {1.0f, -0.5f};
    uint8_t te[2] = {0, 1}, tr[2] = {0, 0};
    size_t size = 0, n = 0;
    unsigned char *file = NULL, *cur;
    double v = 0;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_TD3));
    o.obs_dim = 3, o.act_dim = 2, o.act_low = lo, o.act_high = hi, o.n_agents = 2;
    o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 7, o.norm_obs = 1;
    o.learning_starts = 0, o.batch_size = 4, o.buffer_size = 64;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    CHECK_OK(mm_policy_act(p, obs, 2, a, 1));
    CHECK_OK(mm_policy_observe(p, obs, a, rew, obs, te, tr, 2));
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
    cur = (unsigned char *)malloc(size);
    CHECK_OK(mm_policy_save_mem(p, cur, size, &size, MM_POLICY_SAVE_CHECKPOINT));
    /* One observe call owes at most gradient_steps (1) steps: a file owing more is refused
     * (fuzz_config: 3.2e9 owed steps after 5 calls kept mm_policy_update busy for hours). */
    for (int owed = 1; owed <= 2; owed++) {
        unsigned char *f = remake(cur, size, NULL, NULL, "ckpt.counters", 3, owed, &n);
        CHECK(f != NULL);
        if (f) CHECK_STATUS(mm_policy_load_mem(p, f, n), owed == 1 ? MM_OK : MM_E_FORMAT);
        if (f && owed == 2) CHECK(strstr(mm_policy_errmsg(p), "ckpt.counters") != NULL);
        free(f);
    }
    CHECK_OK(mm_policy_load_mem(p, cur, size));
    /* counters 0-4 (steps, calls, calls since training, pending, updates) and the observation
     * count at 2^53; pending stays 0 (a pending count is work the next update must do) */
    for (int k = 0; k < 5 && cur; k++) {
        unsigned char *next;
        if (k == 3) continue;
        next = remake(cur, size, NULL, NULL, "ckpt.counters", k, top, &n);
        CHECK(next != NULL);
        free(cur), cur = next, size = n;
    }
    file = cur ? remake(cur, size, NULL, NULL, "obs_rms.count", 0, top, &n) : NULL;
    free(cur);
    CHECK(file != NULL);
    if (file) {
        CHECK_OK(mm_policy_load_mem(p, file, n));
        for (int k = 0; k < 3; k++) {
            int32_t did = 0;
            CHECK_OK(mm_policy_act(p, obs, 2, a, 1));
            CHECK(isfinite(a[0]) && isfinite(a[3]));
            CHECK_OK(mm_policy_observe(p, obs, a, rew, obs, te, tr, 2));
            CHECK_OK(mm_policy_update(p, &did));
        }
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_STEPS, &v));
        CHECK(v == top);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &v));
        CHECK(v == top);
        free(file);
        size = 0;
        CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
        file = (unsigned char *)malloc(size);
        CHECK_OK(mm_policy_save_mem(p, file, size, &size, MM_POLICY_SAVE_CHECKPOINT));
        CHECK_OK(mm_policy_load_mem(p, file, size)); /* its own checkpoint loads back */
    }
    free(file);
    mm_policy_free(p);
}

/* A discrete policy's stored actions must be indices in [0, n_actions): the updates read a
 * head's row with them (fuzz_config: a rollout action of 3.9e32 in a QAC checkpoint). Both the
 * rollout (QAC) and the replay (discrete SAC) are checked; the policy keeps its state. */
static void test_policy_ckpt_actions(void)
{
    static const double bad_v[] = {3.9e32, 1.5, 3.0, -1.0};
    static const struct {
        int32_t algo;
        const char *tensor;
    } algos[] = {{MM_ALGO_QAC, "ckpt.rollout.act"}, {MM_ALGO_SAC, "ckpt.replay.act"}};
    for (size_t k = 0; k < sizeof algos / sizeof algos[0]; k++) {
        mm_policy_opts o;
        mm_policy *p = NULL;
        float obs[3] = {0.3f, -0.2f, 0.9f}, a = 0, rew = 1.0f;
        uint8_t te = 0, tr = 0;
        size_t size = 0, n = 0;
        unsigned char *file, *f;
        int32_t did = 0;
        CHECK_OK(mm_policy_opts_init(&o, algos[k].algo));
        o.obs_dim = 3, o.n_actions = 3, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 11;
        if (algos[k].algo == MM_ALGO_SAC) o.learning_starts = 0, o.batch_size = 2;
        CHECK_OK(mm_policy_create(&p, &o));
        if (!p) continue;
        CHECK_OK(mm_policy_act(p, obs, 1, &a, 1));
        CHECK_OK(mm_policy_observe(p, obs, &a, &rew, obs, &te, &tr, 1));
        CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
        file = (unsigned char *)malloc(size);
        CHECK_OK(mm_policy_save_mem(p, file, size, &size, MM_POLICY_SAVE_CHECKPOINT));
        for (size_t i = 0; i < sizeof bad_v / sizeof bad_v[0]; i++) {
            f = remake(file, size, NULL, NULL, algos[k].tensor, 0, bad_v[i], &n);
            CHECK(f != NULL);
            if (!f) continue;
            CHECK_STATUS(mm_policy_load_mem(p, f, n), MM_E_FORMAT);
            CHECK(strstr(mm_policy_errmsg(p), algos[k].tensor) != NULL);
            free(f);
        }
        f = remake(file, size, NULL, NULL, algos[k].tensor, 0, 2.0, &n); /* a valid index */
        CHECK(f != NULL);
        if (f) CHECK_OK(mm_policy_load_mem(p, f, n));
        free(f);
        CHECK_OK(mm_policy_update(p, &did));
        free(file);
        mm_policy_free(p);
    }
}

/* A rollout reward may be non-finite in the policy's own state (a truncated step adds gamma
 * times the critic's value, which overflows with the critic): its checkpoint loads back, and
 * the update refuses the rollout with MM_E_NUMERIC, leaving the actor as it was. */
static void test_policy_ckpt_rollout_reward(void)
{
    static const double vals[] = {INFINITY, NAN};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        mm_policy_opts o;
        mm_policy *p = NULL;
        static float lo[2] = {-1, -1}, hi[2] = {1, 1};
        float obs[3] = {0.3f, -0.2f, 0.9f}, a[2], d0[2], d1[2], rew = 1.0f;
        uint8_t te = 0, tr = 0;
        size_t size = 0, n = 0;
        unsigned char *file, *f;
        int32_t did = 0;
        CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
        o.obs_dim = 3, o.act_dim = 2, o.act_low = lo, o.act_high = hi, o.n_steps = 4;
        o.batch_size = 4, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 13;
        CHECK_OK(mm_policy_create(&p, &o));
        if (!p) continue;
        CHECK_OK(mm_policy_act(p, obs, 1, a, 1));
        CHECK_OK(mm_policy_observe(p, obs, a, &rew, obs, &te, &tr, 1));
        CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
        file = (unsigned char *)malloc(size);
        CHECK_OK(mm_policy_save_mem(p, file, size, &size, MM_POLICY_SAVE_CHECKPOINT));
        f = remake(file, size, NULL, NULL, "ckpt.rollout.rew", 0, vals[k], &n);
        CHECK(f != NULL);
        if (f) CHECK_OK(mm_policy_load_mem(p, f, n));
        CHECK_OK(mm_policy_act(p, obs, 1, d0, 0));
        for (int t = 1; t < 4; t++) {
            CHECK_OK(mm_policy_act(p, obs, 1, a, 1));
            CHECK_OK(mm_policy_observe(p, obs, a, &rew, obs, &te, &tr, 1));
        }
        CHECK_STATUS(mm_policy_update(p, &did), MM_E_NUMERIC);
        CHECK_OK(mm_policy_act(p, obs, 1, d1, 0));
        CHECK(memcmp(d0, d1, sizeof d0) == 0);
        free(f);
        free(file);
        mm_policy_free(p);
    }
}

/* A finite file whose memory core overflows: act refuses with MM_E_NUMERIC instead of
 * returning NaN actions with MM_OK, and leaves the agents' memory as it was: the policy's
 * checkpoint still loads (the tanh on the core's output kept the actions finite while the
 * state went Inf, and that checkpoint was refused: fuzz_config). */
static void test_policy_act_nonfinite(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[3] = {0.3f, -0.2f, 0.9f}, a[2] = {0, 0};
    size_t size = 0, n = 0;
    unsigned char *file, *bad = NULL;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 5;
    o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 4;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, 0));
    file = (unsigned char *)malloc(size);
    CHECK_OK(mm_policy_save_mem(p, file, size, &size, 0));
    /* element 0 of the core's parameter vector: W's first weight (docs/RL.md "Memory") */
    for (int64_t e = 0; e < 40; e++) {
        unsigned char *next =
            remake(bad ? bad : file, size, NULL, NULL, "memory.0.weight", e, 1e30, &n);
        free(bad);
        bad = next;
        if (!bad) break;
    }
    if (bad) {
        int rc;
        CHECK_OK(mm_policy_load_mem(p, bad, n));
        rc = mm_policy_act(p, obs, 1, a, 1);
        if (rc == MM_OK)
            CHECK(isfinite(a[0]) && isfinite(a[1]));
        else
            CHECK(rc == MM_E_NUMERIC && strstr(mm_policy_errmsg(p), "NaN or Inf") != NULL);
        CHECK(rc == MM_E_NUMERIC); /* 1e30 weights overflow the core: the case this guards */
        {
            size_t nc = 0;
            unsigned char *ck;
            CHECK_OK(mm_policy_save_mem(p, NULL, 0, &nc, MM_POLICY_SAVE_CHECKPOINT));
            ck = (unsigned char *)malloc(nc);
            CHECK_OK(mm_policy_save_mem(p, ck, nc, &nc, MM_POLICY_SAVE_CHECKPOINT));
            CHECK_OK(mm_policy_load_mem(p, ck, nc));
            free(ck);
        }
    }
    free(bad);
    free(file);
    mm_policy_free(p);
}

/* The checkpoint of p (MM_POLICY_SAVE_CHECKPOINT) in a malloc'd buffer, its size in *n. */
static unsigned char *ckpt_bytes(mm_policy *p, size_t *n)
{
    unsigned char *b = NULL;
    *n = 0;
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, n, MM_POLICY_SAVE_CHECKPOINT));
    b = (unsigned char *)malloc(*n);
    CHECK_OK(mm_policy_save_mem(p, b, *n, n, MM_POLICY_SAVE_CHECKPOINT));
    return b;
}

/* An exploring sample beyond float range (a loaded log std of 1000: exp overflows) used to be
 * kept as the raw sample with MM_OK, and the policy's next checkpoint failed to load
 * (ckpt.act.raw holds NaN or Inf; fuzz_config, TRPO). Now the act is refused and writes
 * nothing; a deterministic act still works, and the checkpoint loads. */
static void test_policy_act_sample_overflow(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[3] = {0.3f, -0.2f, 0.9f}, a[2] = {7, 7};
    size_t size = 0, n = 0, nc = 0;
    unsigned char *file, *bad, *ck;
    int rc;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 5;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, 0));
    file = (unsigned char *)malloc(size);
    CHECK_OK(mm_policy_save_mem(p, file, size, &size, 0));
    bad = remake(file, size, NULL, NULL, "log_std.0.bias", 0, 1000.0, &n);
    CHECK(bad != NULL);
    if (bad) {
        CHECK_OK(mm_policy_load_mem(p, bad, n));
        rc = mm_policy_act(p, obs, 1, a, 1);
        CHECK(rc == MM_E_NUMERIC && strstr(mm_policy_errmsg(p), "overflowed") != NULL);
        CHECK(a[0] == 7 && a[1] == 7); /* nothing written */
        CHECK_OK(mm_policy_act(p, obs, 1, a, 0));
        CHECK(isfinite(a[0]) && isfinite(a[1]));
        ck = ckpt_bytes(p, &nc);
        CHECK_OK(mm_policy_load_mem(p, ck, nc));
        free(ck);
    }
    free(bad);
    free(file);
    mm_policy_free(p);
}

/* The memory buffers a refused act must leave as they were: state and prev (ns floats each), y
 * (ny floats) and acted, of all n_agents (<= 8). */
typedef struct mem_snap {
    float *buf; /* state, prev, y */
    uint8_t acted[8];
    int64_t ns, ny, na;
} mem_snap;

/* Allocates: s->buf (free it). */
static void mem_snap_take(mem_snap *s, const mm_policy *p)
{
    s->na = p->o.n_agents, s->ns = s->na * 2 * p->mem.N, s->ny = s->na * p->mem.H;
    s->buf = (float *)malloc(sizeof(float) * (size_t)(2 * s->ns + s->ny));
    CHECK(s->buf != NULL && s->na <= 8);
    if (!s->buf || s->na > 8) return;
    memcpy(s->buf, p->mem.state, sizeof(float) * (size_t)s->ns);
    memcpy(s->buf + s->ns, p->mem.prev, sizeof(float) * (size_t)s->ns);
    memcpy(s->buf + 2 * s->ns, p->mem.y, sizeof(float) * (size_t)s->ny);
    memcpy(s->acted, p->mem.acted, (size_t)s->na);
    CHECK(memcmp(s->buf, s->buf + s->ns, sizeof(float) * (size_t)s->ns) != 0); /* state != prev */
}

static void mem_snap_check(const mem_snap *s, const mm_policy *p)
{
    CHECK(s->buf != NULL);
    if (!s->buf) return;
    CHECK(memcmp(p->mem.state, s->buf, sizeof(float) * (size_t)s->ns) == 0);
    CHECK(memcmp(p->mem.prev, s->buf + s->ns, sizeof(float) * (size_t)s->ns) == 0);
    CHECK(memcmp(p->mem.y, s->buf + 2 * s->ns, sizeof(float) * (size_t)s->ny) == 0);
    CHECK(memcmp(p->mem.acted, s->acted, (size_t)s->na) == 0);
}

/* After an act that was kept: prev holds the state the snapshot saw. */
static void mem_snap_check_stepped(const mem_snap *s, const mm_policy *p)
{
    CHECK(s->buf != NULL && memcmp(p->mem.prev, s->buf, sizeof(float) * (size_t)s->ns) == 0);
}

/* The same overflowing sample with a memory core, after successful acts (so state, prev and y
 * differ): the core's step ran before the sample was drawn, and the refused act must not keep
 * it (mm.h: the agents' memory is left as it was). Both ways of keeping a step are tried: all
 * agents and a leading subset. */
static void test_policy_act_sample_overflow_memory(void)
{
    const float ok[9] = {0.3f, -0.2f, 0.9f, -0.5f, 0.4f, 0.1f, 0.7f, 0.2f, -0.6f};
    mm_policy_opts o;
    mm_policy *p = NULL;
    float a[4] = {7, 7, 7, 7};
    size_t nb = 0, nbad = 0;
    unsigned char *ck, *bad;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 5;
    o.n_agents = 2, o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 4;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    CHECK_OK(mm_policy_act(p, ok, 2, a, 1));
    CHECK_OK(mm_policy_act(p, ok + 3, 2, a, 1));
    ck = ckpt_bytes(p, &nb);
    bad = ck ? remake(ck, nb, NULL, NULL, "log_std.0.bias", 0, 1000.0, &nbad) : NULL;
    CHECK(bad != NULL);
    if (bad) {
        mem_snap snap;
        CHECK_OK(mm_policy_load_mem(p, bad, nbad));
        mem_snap_take(&snap, p);
        for (int k = 0; k < 2; k++) {
            a[0] = a[1] = a[2] = a[3] = 7;
            CHECK_STATUS(mm_policy_act(p, ok, k ? 1 : 2, a, 1), MM_E_NUMERIC);
            CHECK(a[0] == 7 && a[1] == 7 && a[2] == 7 && a[3] == 7);
            mem_snap_check(&snap, p);
        }
        /* a deterministic act still answers, and it keeps its step */
        CHECK_OK(mm_policy_act(p, ok, 2, a, 0));
        mem_snap_check_stepped(&snap, p);
        free(snap.buf);
    }
    free(bad);
    free(ck);
    mm_policy_free(p);
}

/* A refused memory step after successful ones (so state, prev and y all differ and the act's
 * buffers have traded places) leaves every memory buffer and the checkpoint byte for byte as
 * they were, on both of the act's ways to keep a step: all agents acting and a leading subset.
 * The core's W and B are 1e30, so an agent with a zero observation stays finite (u = b) and
 * only the one with a nonzero observation overflows. */
static void test_policy_act_refused_keeps_memory(void)
{
    static const float zero[9] = {0};
    const float ok[12] = {0.3f, -0.2f, 0.9f,  -0.5f, 0.4f, 0.1f,
                          0.7f, 0.2f,  -0.6f, 0.1f,  0.5f, -0.3f};
    const float one3[9] = {0, 0, 0, 0, 0, 0, 0.3f, -0.2f, 0.9f}; /* agent 2 overflows */
    const float one2[6] = {0, 0, 0, 0.3f, -0.2f, 0.9f};          /* agent 1 overflows */
    mm_policy_opts o;
    mm_policy *p = NULL;
    float a[6];
    size_t n0 = 0, n1 = 0, nb = 0, nbad = 0;
    unsigned char *ck, *bad = NULL;
    int64_t H;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 5;
    o.n_agents = 3, o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 4;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    H = p->mem.H;
    CHECK_OK(mm_policy_act(p, ok, 3, a, 1));
    CHECK_OK(mm_policy_act(p, ok + 3, 3, a, 1));
    CHECK_OK(mm_policy_act(p, ok, 2, a, 1));
    ck = ckpt_bytes(p, &nb);
    /* W [H, 3] is elements 0 .. 3H - 1; B [N, H, 2] starts after b, nu, theta, gamma */
    for (int64_t e = 0; e < 3 * H + 4 * H + 2 * H * H && ck; e++) {
        unsigned char *next;
        if (e >= 3 * H && e < 4 * H + 3 * H) continue;
        next =
            remake(bad ? bad : ck, bad ? nbad : nb, NULL, NULL, "memory.0.weight", e, 1e30, &nbad);
        free(bad);
        bad = next;
        if (!bad) break;
    }
    CHECK(bad != NULL);
    if (bad) {
        mem_snap snap;
        unsigned char *before, *after;
        CHECK_OK(mm_policy_load_mem(p, bad, nbad));
        mem_snap_take(&snap, p);
        before = ckpt_bytes(p, &n0);
        for (int k = 0; k < 2; k++) {
            CHECK_STATUS(mm_policy_act(p, k ? one2 : one3, k ? 2 : 3, a, 1), MM_E_NUMERIC);
            mem_snap_check(&snap, p);
            after = ckpt_bytes(p, &n1);
            CHECK(n1 == n0 && before && after && memcmp(before, after, n0) == 0);
            free(after);
        }
        /* the zero-observation agents alone step (finite): only one agent made the refusals */
        CHECK_OK(mm_policy_act(p, zero, 3, a, 1));
        mem_snap_check_stepped(&snap, p);
        free(before);
        free(snap.buf);
    }
    free(bad);
    free(ck);
    mm_policy_free(p);
}

/* Checkpoint flags out of range: ckpt.act.pending counts 0-2 pending actions, ckpt.memory.acted
 * is 0 or 1; a file with a larger value is refused (MM_E_FORMAT) and the handle unchanged. */
static void test_policy_ckpt_flags(void)
{
    static const struct {
        const char *tensor;
        double v;
        int want;
    } cases[] = {
        {"ckpt.memory.acted", 1, MM_OK},         {"ckpt.memory.acted", 2, MM_E_FORMAT},
        {"ckpt.memory.acted", 255, MM_E_FORMAT}, {"ckpt.act.pending", 2, MM_OK},
        {"ckpt.act.pending", 3, MM_E_FORMAT},
    };
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[3] = {0.3f, -0.2f, 0.9f}, a[2], b[2];
    size_t size = 0, n = 0;
    unsigned char *file;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 3, o.act_dim = 2, o.hidden[0] = 8, o.hidden[1] = 8, o.seed = 5;
    o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 4;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return;
    CHECK_OK(mm_policy_act(p, obs, 1, a, 1));
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
    file = (unsigned char *)malloc(size);
    CHECK_OK(mm_policy_save_mem(p, file, size, &size, MM_POLICY_SAVE_CHECKPOINT));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *bad = remake(file, size, NULL, NULL, cases[i].tensor, 0, cases[i].v, &n);
        CHECK(bad != NULL);
        if (!bad) continue;
        CHECK_STATUS(mm_policy_load_mem(p, bad, n), cases[i].want);
        if (cases[i].want != MM_OK) CHECK(strstr(mm_policy_errmsg(p), cases[i].tensor) != NULL);
        free(bad);
    }
    /* still the saved agent: the file as written loads and acts as before */
    CHECK_OK(mm_policy_load_mem(p, file, size));
    CHECK_OK(mm_policy_act(p, obs, 1, b, 0));
    CHECK(isfinite(b[0]) && isfinite(b[1]));
    free(file);
    mm_policy_free(p);
}

/* ---- item 10: saving through a symbolic link ---------------------------------------------------- */
static mm_model *tiny_model(uint64_t seed)
{
    mm_model_opts o;
    mm_model *m = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 3, o.seed = seed;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    return m;
}

static int same_params(mm_model *a, const char *path)
{
    mm_model *b = NULL;
    float *pa, *pb;
    int64_t na = 0, nb = 0;
    int same;
    if (mm_model_load(&b, path, NULL) != MM_OK) return 0;
    same = mm_model_params(a, &pa, &na) == MM_OK && mm_model_params(b, &pb, &nb) == MM_OK &&
           na == nb && memcmp(pa, pb, (size_t)na * sizeof(float)) == 0;
    mm_model_free(b);
    return same;
}

static void test_save_symlink(void)
{
    char dir[64], target[128], link[128], dang[128], fresh[128], loop1[128], loop2[128];
    char buf[128];
    struct stat st;
    ssize_t len;
    mm_model *a = tiny_model(1), *b = tiny_model(2);
    snprintf(dir, sizeof dir, "/tmp/mm_test_guard_XXXXXX");
    if (!mkdtemp(dir)) {
        mmt_fail(__FILE__, __LINE__, "mkdtemp failed");
        return;
    }
    snprintf(target, sizeof target, "%s/target.st", dir);
    snprintf(link, sizeof link, "%s/link.st", dir);
    snprintf(dang, sizeof dang, "%s/dangling.st", dir);
    snprintf(fresh, sizeof fresh, "%s/fresh.st", dir);
    snprintf(loop1, sizeof loop1, "%s/loop1", dir);
    snprintf(loop2, sizeof loop2, "%s/loop2", dir);
    CHECK_OK(mm_model_save(a, target, 0));
    CHECK(symlink("target.st", link) == 0); /* relative: read from the link's directory */
    CHECK_OK(mm_model_save(b, link, 0));
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    len = readlink(link, buf, sizeof buf - 1);
    CHECK(len == 9 && memcmp(buf, "target.st", 9) == 0);
    CHECK(lstat(target, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(same_params(b, target)); /* the target holds the new model */
    /* An absolute link to a file that does not exist yet: the file is created there. */
    CHECK(symlink(fresh, dang) == 0);
    CHECK_OK(mm_model_save(a, dang, 0));
    CHECK(lstat(dang, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(fresh, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(same_params(a, fresh));
    /* A link loop is an I/O error with text, not a hang. */
    CHECK(symlink("loop2", loop1) == 0 && symlink("loop1", loop2) == 0);
    CHECK_STATUS(mm_model_save(a, loop1, 0), MM_E_IO);
    CHECK(strstr(mm_model_errmsg(a), "loop1") != NULL);
    unlink(loop1);
    unlink(loop2);
    unlink(dang);
    unlink(fresh);
    unlink(link);
    unlink(target);
    CHECK(rmdir(dir) == 0); /* fails if a temporary file was left behind */
    mm_model_free(a);
    mm_model_free(b);
}

/* The policy's saves go through the same atomic writer: through a link, the target is
 * replaced and the link stays (mm_policy_save and mm_policy_export_save). */
static void test_policy_save_symlink(void)
{
    char dir[64], target[128], link[128];
    struct stat st;
    mm_policy *p = small_policy(), *q = small_policy(), *r = NULL;
    mm_model *m = NULL;
    float obs[3] = {0.1f, 0.2f, -0.3f}, ap[2], ar[2];
    snprintf(dir, sizeof dir, "/tmp/mm_test_guard_XXXXXX");
    if (!mkdtemp(dir)) {
        mmt_fail(__FILE__, __LINE__, "mkdtemp failed");
        return;
    }
    snprintf(target, sizeof target, "%s/target.st", dir);
    snprintf(link, sizeof link, "%s/link.st", dir);
    CHECK_OK(mm_policy_save(q, target));
    CHECK(symlink("target.st", link) == 0);
    CHECK_OK(mm_policy_save(p, link));
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(target, &st) == 0 && S_ISREG(st.st_mode));
    CHECK_OK(mm_policy_load_new(&r, target, NULL)); /* the target holds p now */
    if (r) {
        CHECK_OK(mm_policy_act(p, obs, 1, ap, 0));
        CHECK_OK(mm_policy_act(r, obs, 1, ar, 0));
        CHECK(memcmp(ap, ar, sizeof ap) == 0);
    }
    CHECK_OK(mm_policy_export_save(p, link));
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK_OK(mm_model_load(&m, target, NULL)); /* now the exported actor */
    unlink(link);
    unlink(target);
    CHECK(rmdir(dir) == 0); /* no temporary file left behind */
    mm_model_free(m);
    mm_policy_free(r);
    mm_policy_free(p);
    mm_policy_free(q);
}

/* ---- item 9 on the loaders: options that are refused ------------------------------------- */
static void test_load_opts_refused(void)
{
    char path[512];
    mm_policy *p = small_policy(), *q = (mm_policy *)1;
    mm_policy_opts junk;
    mm_model *m = (mm_model *)1;
    mm_model_opts mo;
    unsigned char big[sizeof(mm_model_opts) + 16];
    mm_model_opts *newer = (mm_model_opts *)(void *)big;
    char err[256] = "";
    size_t size = 0;
    unsigned char *file = adam_file(&size);
    /* An uninitialised struct: struct_size, alloc and err_buf all garbage. mm_policy_load_new
     * used to trust its alloc (through an allocator pointer 0xa5a5...) before any check. */
    CHECK(mmt_tmp_path(path, sizeof path, "guard_opts_policy.safetensors") == 0);
    CHECK_OK(mm_policy_save(p, path));
    memset(&junk, 0xa5, sizeof junk);
    CHECK_STATUS(mm_policy_load_new(&q, path, &junk), MM_E_INVALID_ARG);
    CHECK(q == NULL);
    memset(&mo, 0xa5, sizeof mo);
    CHECK_STATUS(mm_model_load_mem(&m, file, size, &mo), MM_E_INVALID_ARG);
    CHECK(m == NULL);
    /* A newer caller's struct that sets a field this library does not know: refused, and the
     * text reaches its err_buf as mm_model_create's does. */
    memset(big, 0, sizeof big);
    CHECK_OK(mm_model_opts_init(newer));
    newer->struct_size = (uint32_t)sizeof big;
    newer->err_buf = err, newer->err_buf_size = sizeof err;
    big[sizeof(mm_model_opts) + 3] = 1;
    CHECK_STATUS(mm_model_load_mem(&m, file, size, newer), MM_E_VERSION);
    CHECK(m == NULL && strstr(err, "mm_model_load_mem") != NULL && strstr(err, "newer") != NULL);
    remove(path);
    free(file);
    mm_policy_free(p);
}

void suite_fileguard(void)
{
    mmt_run("fileguard_attn_configs", test_attn_configs);
    mmt_run("fileguard_attn_builder_agrees", test_attn_builder_agrees);
    mmt_run("fileguard_xattn_one_context", test_xattn_one_context);
    mmt_run("fileguard_checked_sizes", test_checked_sizes);
    mmt_run("fileguard_step_counters", test_step_counters);
    mmt_run("fileguard_non_regular", test_non_regular);
    mmt_run("fileguard_model_nonfinite", test_model_nonfinite);
    mmt_run("fileguard_policy_nonfinite", test_policy_nonfinite);
    mmt_run("fileguard_policy_rms_limits", test_policy_rms_limits);
    mmt_run("fileguard_policy_counter_limits", test_policy_counter_limits);
    mmt_run("fileguard_policy_ckpt_actions", test_policy_ckpt_actions);
    mmt_run("fileguard_policy_ckpt_rollout_reward", test_policy_ckpt_rollout_reward);
    mmt_run("fileguard_policy_act_nonfinite", test_policy_act_nonfinite);
    mmt_run("fileguard_policy_act_sample_overflow", test_policy_act_sample_overflow);
    mmt_run("fileguard_policy_act_sample_overflow_memory", test_policy_act_sample_overflow_memory);
    mmt_run("fileguard_policy_act_refused_keeps_memory", test_policy_act_refused_keeps_memory);
    mmt_run("fileguard_policy_ckpt_flags", test_policy_ckpt_flags);
    mmt_run("fileguard_save_symlink", test_save_symlink);
    mmt_run("fileguard_policy_save_symlink", test_policy_save_symlink);
    mmt_run("fileguard_load_opts_refused", test_load_opts_refused);
}
