/* SPDX-License-Identifier: MIT */
/* test_oom.c — allocation-failure sweep and the no-allocation guarantees.
 *
 * Sweep: every create / finalize / load / reserve path is first run with a counting allocator
 * to learn how many allocations it makes (n), then n more times with the 1st, 2nd, ... n-th
 * allocation failing. Each failing run must return MM_E_NOMEM, leave its handle output NULL,
 * free everything it took (live_bytes 0, no bad frees), and a final clean run must succeed:
 * the library is not left in a broken state by a failure.
 *
 * Zero allocations: the hot calls that the family suites do not already count (test_model_api
 * counts an MLP, test_attn forward/backward/step, test_loss the compute calls, test_policy a
 * continuous agent, test_ssm SELECTIVE/SSD scans and S4D conv) are counted here: models of every
 * layer kind with 1 and 2 threads (forward, backward, jvp, step, infer, decode), SSM steps of
 * every kind, LRU/SSD backwards and kernels, gated attention with dg, the loss helpers and a
 * discrete, normalising agent. */
#include "hard_fixtures.h"
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A path under test: runs with allocator a, frees everything it made, returns its status. */
typedef int (*oom_path)(const mm_allocator *a, const void *ctx);

/* Upper bound of allocations swept per path (keeps the suite fast; no path comes close). */
#define OOM_MAX_SWEEP 2000

static void sweep(const char *what, oom_path fn, const void *ctx)
{
    mm_allocator a;
    mmt_counter c;
    int64_t total;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(fn(&a, ctx));
    total = c.n_alloc;
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK(total > 0 && total < OOM_MAX_SWEEP);
    if (getenv("MM_TEST_VERBOSE")) printf("  %s: %lld allocations swept\n", what, (long long)total);
    for (int64_t k = 0; k < total && k < OOM_MAX_SWEEP; k++) {
        int rc;
        mmt_counting_allocator(&a, &c, k);
        rc = fn(&a, ctx);
        if (rc != MM_E_NOMEM || c.live_bytes != 0 || c.bad_free != 0)
            mmt_fail(__FILE__, __LINE__,
                     "%s, allocation %lld of %lld failing: %s, live %lld, "
                     "bad frees %lld",
                     what, (long long)k + 1, (long long)total, mm_status_name(rc),
                     (long long)c.live_bytes, (long long)c.bad_free);
    }
    mmt_counting_allocator(&a, &c, -1); /* and the library works normally afterwards */
    CHECK_OK(fn(&a, ctx));
    CHECK_EQ_I64(c.n_alloc, total);
    CHECK_EQ_I64(c.live_bytes, 0);
}

/* Checks the "no output on failure" half of the contract for a handle output. */
#define OUT_NULL_ON_FAIL(rc, h)                                                                    \
    do {                                                                                           \
        if ((rc) != MM_OK && (h) != NULL) mmt_fail(__FILE__, __LINE__, "handle set on failure");   \
    } while (0)

/* ---- tensors -------------------------------------------------------------------------------- */
static int path_tensor(const mm_allocator *a, const void *ctx)
{
    static const int64_t shape[3] = {3, 5, 7};
    mm_tensor *t = (mm_tensor *)&t, *w = (mm_tensor *)&w;
    float buf[105];
    int rc = mm_tensor_create(&t, 3, shape, a);
    (void)ctx;
    OUT_NULL_ON_FAIL(rc, t);
    if (rc != MM_OK) return rc;
    rc = mm_tensor_wrap(&w, buf, 3, shape, a);
    OUT_NULL_ON_FAIL(rc, w);
    if (rc == MM_OK) rc = mm_tensor_copy(w, t);
    mm_tensor_free(w);
    mm_tensor_free(t);
    return rc;
}

/* ---- models --------------------------------------------------------------------------------- */
typedef struct model_case {
    int zoo; /* 1: every layer kind; 0: the MLP */
    int32_t threads;
    int32_t optimizer;
} model_case;

/* create + add + finalize (+ set_optimizer); a finalize that fails leaves the model
 * unfinalized (forward refuses with MM_E_STATE) and freeable. */
static int path_model(const mm_allocator *a, const void *ctx)
{
    const model_case *mc = (const model_case *)ctx;
    mm_model *m = (mm_model *)&m;
    int rc = mc->zoo ? hx_build_zoo(&m, a, mc->threads, 3)
                     : hx_build_mlp(&m, a, 5, 2, 4, mc->threads, 3);
    OUT_NULL_ON_FAIL(rc, m);
    if (rc != MM_OK) return rc;
    if (mc->optimizer) rc = mm_model_set_optimizer(m, mc->optimizer);
    mm_model_free(m);
    return rc;
}

/* The finalize failure, seen from a handle that outlives it. */
static void test_model_finalize_state(void)
{
    for (int64_t k = 0; k < 6; k++) {
        mm_allocator a;
        mmt_counter c;
        mm_model_opts o;
        mm_model *m = NULL;
        mm_tensor *x = HX_T(1, -1, 1, 1, 4), *y = HX_T(0, 0, 0, 1, 2);
        int rc;
        mmt_counting_allocator(&a, &c, -1);
        CHECK_OK(mm_model_opts_init(&o));
        o.alloc = &a, o.input_dim = 4;
        CHECK_OK(mm_model_create(&m, &o));
        CHECK_OK(mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0));
        CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
        c.fail_after = c.n_alloc + k;
        rc = mm_model_finalize(m);
        if (rc == MM_E_NOMEM) {
            CHECK(strlen(mm_model_errmsg(m)) > 0);
            CHECK_STATUS(mm_model_forward(m, x, y), MM_E_STATE);
        } else {
            CHECK_OK(rc);
            CHECK_OK(mm_model_forward(m, x, y));
        }
        mm_model_free(m);
        CHECK_EQ_I64(c.live_bytes, 0);
        mm_tensor_free(x), mm_tensor_free(y);
    }
}

/* set_optimizer under memory pressure keeps the previous optimizer working. */
static void test_model_optimizer_kept(void)
{
    for (int64_t k = 0; k < 4; k++) {
        mm_allocator a;
        mmt_counter c;
        mm_model *m = NULL;
        double v = 0;
        int rc;
        mmt_counting_allocator(&a, &c, -1);
        CHECK_OK(hx_build_mlp(&m, &a, 5, 2, 4, 1, 1));
        if (!m) return;
        CHECK_OK(mm_model_set_optimizer(m, MM_OPT_MOMENTUM));
        CHECK_OK(mm_model_set_f64(m, MM_MODEL_LR, 0.25));
        c.fail_after = c.n_alloc + k;
        rc = mm_model_set_optimizer(m, MM_OPT_ADAM);
        c.fail_after = -1;
        if (rc == MM_E_NOMEM) {
            CHECK_OK(mm_model_get_f64(m, MM_MODEL_LR, &v));
            CHECK(v == 0.25);
            CHECK_STATUS(mm_model_get_f64(m, MM_MODEL_BETA1, &v), MM_E_UNSUPPORTED);
            CHECK(strlen(mm_model_errmsg(m)) > 0);
        } else {
            CHECK_OK(rc);
        }
        CHECK_OK(mm_model_step(m));
        mm_model_free(m);
        CHECK_EQ_I64(c.live_bytes, 0);
    }
}

/* copy with optimizer into a fresh model reserves the optimizer state in dst. */
static int path_model_copy(const mm_allocator *a, const void *ctx)
{
    mm_model *src = NULL, *dst = NULL;
    int rc;
    (void)ctx;
    if ((rc = hx_build_mlp(&src, a, 5, 2, 4, 1, 1)) != MM_OK) return rc;
    if ((rc = mm_model_set_optimizer(src, MM_OPT_ADAMW)) == MM_OK &&
        (rc = hx_build_mlp(&dst, a, 5, 2, 4, 1, 2)) == MM_OK)
        rc = mm_model_copy(dst, src, 1);
    mm_model_free(src);
    mm_model_free(dst);
    return rc;
}

/* ---- model files ---------------------------------------------------------------------------- */
typedef struct file_case {
    const void *data;
    size_t size;
    const char *path;
} file_case;

static int path_model_load_mem(const mm_allocator *a, const void *ctx)
{
    const file_case *f = (const file_case *)ctx;
    mm_model_opts o;
    mm_model *m = (mm_model *)&m;
    char err[160] = "";
    int rc;
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = a, o.max_batch = 2, o.max_seq = 6, o.err_buf = err, o.err_buf_size = sizeof err;
    rc = f->path ? mm_model_load(&m, f->path, &o) : mm_model_load_mem(&m, f->data, f->size, &o);
    OUT_NULL_ON_FAIL(rc, m);
    if (rc != MM_OK && err[0] == '\0') mmt_fail(__FILE__, __LINE__, "no err_buf text");
    mm_model_free(m);
    return rc;
}

static int path_model_save_mem(const mm_allocator *a, const void *ctx)
{
    mm_model *m = NULL;
    size_t size = 0;
    int rc;
    (void)ctx;
    if ((rc = hx_build_zoo(&m, a, 1, 4)) != MM_OK) return rc;
    if ((rc = mm_model_set_optimizer(m, MM_OPT_ADAM)) == MM_OK)
        rc = mm_model_save_mem(m, NULL, 0, &size, MM_SAVE_OPTIMIZER_STATE);
    mm_model_free(m);
    return rc;
}

static void test_model_load(void)
{
    mm_model *m = NULL;
    size_t size = 0;
    void *buf;
    file_case f = {NULL, 0, NULL};
    char dir[64] = "/tmp/mm_test_oom_XXXXXX", path[96];
    CHECK_OK(hx_build_zoo(&m, NULL, 1, 9));
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_RMSPROP));
    CHECK_OK(mm_model_save_mem(m, NULL, 0, &size, MM_SAVE_OPTIMIZER_STATE));
    buf = malloc(size);
    CHECK_OK(mm_model_save_mem(m, buf, size, &size, MM_SAVE_OPTIMIZER_STATE));
    f.data = buf, f.size = size;
    sweep("model load_mem (zoo + RMSprop state)", path_model_load_mem, &f);
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/m.safetensors", dir);
        CHECK_OK(mm_model_save(m, path, 0));
        f.path = path;
        sweep("model load (file)", path_model_load_mem, &f);
        unlink(path);
        rmdir(dir);
    }
    sweep("model save_mem", path_model_save_mem, NULL);
    free(buf);
    mm_model_free(m);
}

static void test_models(void)
{
    static const model_case cases[] = {
        {0, 1, 0},
        {0, 2, MM_OPT_SGD},
        {0, 1, MM_OPT_ADAM},
        {0, 1, MM_OPT_RMSPROP},
        {1, 1, MM_OPT_ADAMW},
        {1, 2, MM_OPT_MOMENTUM},
    };
    char what[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(what, sizeof what, "model %s threads %d opt %d", cases[i].zoo ? "zoo" : "mlp",
                 cases[i].threads, cases[i].optimizer);
        sweep(what, path_model, &cases[i]);
    }
    sweep("model copy with optimizer", path_model_copy, NULL);
}

/* ---- operators ------------------------------------------------------------------------------ */
typedef struct op_case {
    int32_t kind, threads;
} op_case;

static int path_loss(const mm_allocator *a, const void *ctx)
{
    const op_case *oc = (const op_case *)ctx;
    mm_loss_opts o;
    mm_loss *h = (mm_loss *)&h;
    char err[128] = "";
    int rc;
    CHECK_OK(mm_loss_opts_init(&o, oc->kind));
    o.alloc = a, o.max_batch = 16, o.max_dim = 8, o.tile = 8, o.max_queue = 8, o.group_size = 4;
    o.n_threads = oc->threads, o.err_buf = err, o.err_buf_size = sizeof err;
    rc = mm_loss_create(&h, &o);
    OUT_NULL_ON_FAIL(rc, h);
    if (rc != MM_OK && err[0] == '\0') mmt_fail(__FILE__, __LINE__, "loss: no err_buf text");
    mm_loss_free(h);
    return rc;
}

static int path_attn(const mm_allocator *a, const void *ctx)
{
    const op_case *oc = (const op_case *)ctx;
    mm_attn_opts o;
    mm_attn *h = (mm_attn *)&h;
    char err[128] = "";
    int rc;
    hx_attn_opts(&o, oc->kind, a, oc->threads);
    o.err_buf = err, o.err_buf_size = sizeof err;
    rc = mm_attn_create(&h, &o);
    OUT_NULL_ON_FAIL(rc, h);
    if (rc != MM_OK && err[0] == '\0') mmt_fail(__FILE__, __LINE__, "attn: no err_buf text");
    mm_attn_free(h);
    return rc;
}

static int path_ssm(const mm_allocator *a, const void *ctx)
{
    const op_case *oc = (const op_case *)ctx;
    mm_ssm_opts o;
    mm_ssm *h = (mm_ssm *)&h;
    char err[128] = "";
    int rc;
    hx_ssm_opts(&o, oc->kind, a, oc->threads);
    o.err_buf = err, o.err_buf_size = sizeof err;
    rc = mm_ssm_create(&h, &o);
    OUT_NULL_ON_FAIL(rc, h);
    if (rc != MM_OK && err[0] == '\0') mmt_fail(__FILE__, __LINE__, "ssm: no err_buf text");
    mm_ssm_free(h);
    return rc;
}

/* mm_ssm_discretize's dense scratch goes through the allocator too. */
static int path_discretize(const mm_allocator *a, const void *ctx)
{
    double A[16], B[4], Ad[16], Bd[4];
    int rc;
    (void)ctx;
    CHECK_OK(mm_hippo(MM_HIPPO_LEGS, 4, A, B));
    rc = mm_ssm_discretize(MM_DISC_ZOH, 0, 4, A, B, 0.1, Ad, Bd, a);
    if (rc == MM_OK) rc = mm_ssm_discretize(MM_DISC_BILINEAR, 0, 4, A, B, 0.1, Ad, Bd, a);
    return rc;
}

static void test_operators(void)
{
    char what[64];
    for (int32_t k = MM_LOSS_CLIP; k <= MM_LOSS_KIMI; k++)
        for (int32_t th = 1; th <= 2; th++) {
            op_case oc = {k, th};
            snprintf(what, sizeof what, "loss kind %d threads %d", k, th);
            sweep(what, path_loss, &oc);
        }
    for (int32_t k = MM_ATTN_SOFTMAX; k <= MM_ATTN_GATED; k++)
        for (int32_t th = 1; th <= 2; th++) {
            op_case oc = {k, th};
            snprintf(what, sizeof what, "attn kind %d threads %d", k, th);
            sweep(what, path_attn, &oc);
        }
    for (int32_t k = MM_SSM_SELECTIVE; k <= MM_SSM_LRU; k++)
        for (int32_t th = 1; th <= 2; th++) {
            op_case oc = {k, th};
            snprintf(what, sizeof what, "ssm kind %d threads %d", k, th);
            sweep(what, path_ssm, &oc);
        }
    sweep("ssm discretize dense", path_discretize, NULL);
}

/* ---- policies ------------------------------------------------------------------------------- */
typedef struct policy_case {
    int32_t algo;
    int discrete;
    const char *path; /* load this file after create (NULL: create only) */
} policy_case;

static int path_policy(const mm_allocator *a, const void *ctx)
{
    const policy_case *pc = (const policy_case *)ctx;
    mm_policy_opts o;
    mm_policy *p = (mm_policy *)&p;
    char err[128] = "";
    int rc;
    hx_policy_opts(&o, pc->algo, pc->discrete, a);
    o.err_buf = err, o.err_buf_size = sizeof err;
    rc = mm_policy_create(&p, &o);
    OUT_NULL_ON_FAIL(rc, p);
    if (rc != MM_OK && err[0] == '\0') mmt_fail(__FILE__, __LINE__, "policy: no err_buf text");
    if (rc == MM_OK && pc->path) {
        rc = mm_policy_load(p, pc->path);
        if (rc != MM_OK && strlen(mm_policy_errmsg(p)) == 0)
            mmt_fail(__FILE__, __LINE__, "policy load: no message");
    }
    mm_policy_free(p);
    return rc;
}

static void test_policies(void)
{
    static const int32_t algos[7] = {MM_ALGO_DDPG, MM_ALGO_TD3,  MM_ALGO_A2C, MM_ALGO_QAC,
                                     MM_ALGO_PPO,  MM_ALGO_TRPO, MM_ALGO_SAC};
    char what[64], dir[64] = "/tmp/mm_test_oom_XXXXXX", path[96];
    int have_dir = mkdtemp(dir) != NULL;
    snprintf(path, sizeof path, "%s/p.safetensors", dir);
    for (int i = 0; i < 7; i++)
        for (int d = 0; d < 2; d++) {
            policy_case pc = {algos[i], d, NULL};
            if (!hx_policy_fits(algos[i], d)) continue;
            snprintf(what, sizeof what, "policy algo %d discrete %d", algos[i], d);
            sweep(what, path_policy, &pc);
            if (have_dir) { /* load: a file of the same architecture */
                mm_policy_opts o;
                mm_policy *p = NULL;
                hx_policy_opts(&o, algos[i], d, NULL);
                CHECK_OK(mm_policy_create(&p, &o));
                CHECK_OK(mm_policy_save(p, path));
                mm_policy_free(p);
                pc.path = path;
                snprintf(what, sizeof what, "policy load algo %d discrete %d", algos[i], d);
                sweep(what, path_policy, &pc);
            }
        }
    if (have_dir) unlink(path), rmdir(dir);
}

static void test_tensors(void) { sweep("tensor create + wrap", path_tensor, NULL); }

/* ---- zero allocations in the hot calls ----------------------------------------------------- */
static void zoo_hot(int32_t threads)
{
    mm_allocator a;
    mmt_counter c;
    mm_model *m = NULL;
    mm_tensor *x = HX_T(11, -1, 1, 2, 6, HX_ZOO_IN), *y = HX_T(0, 0, 0, 2, 6, HX_ZOO_OUT);
    mm_tensor *dy = HX_T(12, -1, 1, 2, 6, HX_ZOO_OUT), *dx = hx_like(x), *jy = hx_like(y);
    mm_tensor *v = NULL;
    int64_t np = 0, before;
    size_t wsz = 0;
    void *ws;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(hx_build_zoo(&m, &a, threads, 5));
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_num_params(m, &np));
    v = HX_T(13, -0.01f, 0.01f, np);
    CHECK_OK(mm_model_infer_workspace_size(m, 2, 6, &wsz));
    ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
    before = c.n_alloc;
    for (int it = 0; it < 2; it++) {
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_forward(m, x, y));
        CHECK_OK(mm_model_backward(m, dy, dx));
        CHECK_OK(mm_model_jvp(m, x, v, y, jy));
        CHECK_OK(mm_model_backward(m, dy, NULL));
        CHECK_OK(mm_model_step(m));
        CHECK_OK(mm_model_infer(m, x, y, ws, wsz));
        CHECK_OK(mm_model_freeze(m, 0, 2, it == 0));
    }
    CHECK_EQ_I64(c.n_alloc, before);
    free(ws);
    mm_model_free(m);
    CHECK_EQ_I64(c.live_bytes, 0);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(dx);
    mm_tensor_free(jy), mm_tensor_free(v);
}

/* Decoding a recurrent model (dense -> Mamba -> S4D -> dense) token by token. */
static void decode_hot(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_model_opts o;
    mm_model *m = NULL;
    mm_tensor *x = HX_T(21, -1, 1, 2, 4), *y = HX_T(0, 0, 0, 2, 2);
    size_t sb = 0;
    void *state;
    int64_t before;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = &a, o.input_dim = 4, o.max_batch = 2, o.max_seq = 8;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    CHECK_OK(mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_mamba(m, 4, 2, 2, 0));
    CHECK_OK(mm_model_add_s4d(m, 4));
    CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_decode_state_size(m, 2, &sb));
    state = calloc(1, sb + 64);
    before = c.n_alloc;
    for (int t = 0; t < 5; t++) CHECK_OK(mm_model_decode_step(m, x, y, state, sb));
    CHECK_EQ_I64(c.n_alloc, before);
    free(state);
    mm_model_free(m);
    CHECK_EQ_I64(c.live_bytes, 0);
    mm_tensor_free(x), mm_tensor_free(y);
}

static void test_model_hot(void)
{
    zoo_hot(1);
    zoo_hot(2);
    decode_hot();
}

/* Every SSM call of every kind: scan + backward, step, kernel + backward, conv + backward. */
static void ssm_hot(int32_t kind, int32_t threads)
{
    mm_allocator a;
    mmt_counter c;
    mm_ssm_opts o;
    mm_ssm *h = NULL;
    hx_ssm s;
    int64_t before;
    hx_ssm_open(&s, kind);
    mmt_counting_allocator(&a, &c, -1);
    hx_ssm_opts(&o, kind, &a, threads);
    CHECK_OK(mm_ssm_create(&h, &o));
    if (!h) {
        hx_ssm_close(&s);
        return;
    }
    before = c.n_alloc;
    if (kind == MM_SSM_S4D || kind == MM_SSM_S4) {
        CHECK_OK(mm_ssm_kernel(h, &s.scan, s.k));
        CHECK_OK(mm_ssm_kernel_backward(h, &s.scan, s.dk, &s.g));
        CHECK_OK(mm_ssm_conv(h, s.cu, s.k, NULL, s.out));
        CHECK_OK(mm_ssm_conv_backward(h, s.cu, s.k, NULL, s.dout, NULL, s.dk, NULL));
    } else {
        CHECK_OK(mm_ssm_scan(h, &s.scan, s.out, s.last));
        CHECK_OK(mm_ssm_scan_backward(h, &s.scan, s.dout, &s.g));
    }
    if (kind != MM_SSM_S4) {
        for (int t = 0; t < 3; t++) CHECK_OK(mm_ssm_step(h, &s.step, s.sout));
        CHECK_OK(mm_ssm_reset(h));
    }
    if (c.n_alloc != before)
        mmt_fail(__FILE__, __LINE__, "ssm kind %d threads %d: %lld allocations", kind, threads,
                 (long long)(c.n_alloc - before));
    if (kind == MM_SSM_S4 || kind == MM_SSM_S4D) CHECK(strlen(mm_ssm_errmsg(h)) == 0);
    mm_ssm_free(h);
    CHECK_EQ_I64(c.live_bytes, 0);
    hx_ssm_close(&s);
}

static void test_ssm_hot(void)
{
    for (int32_t k = MM_SSM_SELECTIVE; k <= MM_SSM_LRU; k++) {
        ssm_hot(k, 1);
        ssm_hot(k, 2);
    }
}

/* Gated attention with data-dependent gates and their gradient; PERFORMER redraw and
 * projection round trip; reset. */
static void test_attn_hot(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_attn_opts o;
    mm_attn *g = NULL, *p = NULL;
    mm_tensor *q = HX_T(31, -1, 1, HX_AB, HX_AH, HX_AN, HX_AD),
              *v = HX_T(32, -1, 1, HX_AB, HX_AH, HX_AN, HX_ADV);
    mm_tensor *gate = HX_T(33, -1, -0.01f, HX_AB, HX_AH, HX_AN), *out = hx_like(v);
    mm_tensor *dq = hx_like(q), *dk = hx_like(q), *dv = hx_like(v), *dg = hx_like(gate);
    mm_tensor *w = HX_T(0, 0, 0, 16, HX_AD);
    int64_t before;
    mmt_counting_allocator(&a, &c, -1);
    hx_attn_opts(&o, MM_ATTN_GATED, &a, 2);
    CHECK_OK(mm_attn_create(&g, &o));
    hx_attn_opts(&o, MM_ATTN_PERFORMER, &a, 1);
    CHECK_OK(mm_attn_create(&p, &o));
    if (!g || !p) goto done;
    before = c.n_alloc;
    CHECK_OK(mm_attn_forward_gated(g, q, q, v, gate, out));
    CHECK_OK(mm_attn_backward(g, v, dq, dk, dv, dg));
    CHECK_OK(mm_attn_reset(g));
    CHECK_OK(mm_attn_redraw(p));
    CHECK_OK(mm_attn_get_projection(p, w));
    CHECK_OK(mm_attn_set_projection(p, w));
    CHECK_OK(mm_attn_forward(p, q, q, v, out));
    CHECK_OK(mm_attn_backward(p, v, dq, dk, dv, NULL));
    CHECK_EQ_I64(c.n_alloc, before);
done:
    mm_attn_free(g), mm_attn_free(p);
    CHECK_EQ_I64(c.live_bytes, 0);
    mm_tensor_free(q), mm_tensor_free(v), mm_tensor_free(gate), mm_tensor_free(out);
    mm_tensor_free(dq), mm_tensor_free(dk), mm_tensor_free(dv), mm_tensor_free(dg);
    mm_tensor_free(w);
}

/* The loss helpers (not counted by test_loss): FLIP masking, BLIP negatives, Kimi lengths. */
static void test_loss_helpers_hot(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_loss_opts o;
    mm_loss *h = NULL;
    int32_t keep[2 * 3], neg[4];
    int64_t lengths[8] = {3, 5, 1, 9, 2, 2, 7, 4}, before;
    mm_tensor *x = HX_T(41, -1, 1, 2, 6, 4), *out = HX_T(0, 0, 0, 2, 3, 4), *dx = hx_like(x);
    mm_tensor *sim = HX_T(42, -1, 1, 4, 6), *r = HX_T(43, 0, 1, 8), *lr = hx_like(r);
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_CLIP));
    o.alloc = &a, o.max_batch = 8, o.max_dim = 8, o.tile = 8;
    CHECK_OK(mm_loss_create(&h, &o));
    if (!h) goto done;
    before = c.n_alloc;
    CHECK_OK(mm_loss_flip_draw(h, 2, 6, 3, keep));
    CHECK_OK(mm_loss_flip_gather(h, x, keep, 3, out));
    CHECK_OK(mm_loss_flip_scatter(h, out, keep, 3, dx));
    CHECK_OK(mm_loss_blip_hard_negatives(h, sim, NULL, 0, neg));
    CHECK_OK(mm_loss_blip_hard_negatives(h, sim, NULL, 1, neg));
    CHECK_OK(mm_loss_kimi_length_reward(h, lengths, r, 4, lr));
    CHECK_EQ_I64(c.n_alloc, before);
done:
    mm_loss_free(h);
    CHECK_EQ_I64(c.live_bytes, 0);
    mm_tensor_free(x), mm_tensor_free(out), mm_tensor_free(dx), mm_tensor_free(sim);
    mm_tensor_free(r), mm_tensor_free(lr);
}

/* Discrete and normalising agents (test_policy counts continuous ones without norm_obs). */
static void test_policy_hot(void)
{
    static const int32_t algos[4] = {MM_ALGO_A2C, MM_ALGO_QAC, MM_ALGO_PPO, MM_ALGO_TRPO};
    for (int i = 0; i < 4; i++) {
        mm_allocator a;
        mmt_counter c;
        mm_policy_opts o;
        mm_policy *p = NULL;
        int64_t before;
        double v;
        mmt_counting_allocator(&a, &c, -1);
        hx_policy_opts(&o, algos[i], 1, &a);
        CHECK_OK(mm_policy_create(&p, &o));
        if (!p) continue;
        before = c.n_alloc;
        CHECK_OK(hx_policy_drive(p, 14, 3));
        CHECK_OK(mm_policy_set_f64(p, MM_POLICY_LR_ACTOR, 1e-4));
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &v));
        CHECK(v > 0);
        CHECK_EQ_I64(c.n_alloc, before);
        mm_policy_free(p);
        CHECK_EQ_I64(c.live_bytes, 0);
    }
}

void suite_oom(void)
{
    mmt_run("oom/tensor", test_tensors);
    mmt_run("oom/models", test_models);
    mmt_run("oom/model_finalize_state", test_model_finalize_state);
    mmt_run("oom/model_optimizer_kept", test_model_optimizer_kept);
    mmt_run("oom/model_load_save", test_model_load);
    mmt_run("oom/operators", test_operators);
    mmt_run("oom/policies", test_policies);
    mmt_run("oom/no_alloc_model", test_model_hot);
    mmt_run("oom/no_alloc_ssm", test_ssm_hot);
    mmt_run("oom/no_alloc_attn", test_attn_hot);
    mmt_run("oom/no_alloc_loss_helpers", test_loss_helpers_hot);
    mmt_run("oom/no_alloc_policy", test_policy_hot);
}
