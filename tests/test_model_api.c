/* SPDX-License-Identifier: MIT */
/* test_model_api.c — mm_model's contract: options and lifecycle misuse, shapes and
 * reservation limits, allocation (counting allocator: no allocation on the hot path, every
 * byte freed, out-of-memory at every allocation of create/finalize/set_optimizer), read-only
 * inference and its thread sharing, initialisation, freeze, copy, lerp, tensor names. */
#include "model/mmi_model.h"
#include "runner.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A 3-8-8-2 tanh MLP with an optional allocator. */
static int build_mlp(mm_model **out, const mm_allocator *a, int64_t max_batch, int32_t threads,
                     uint64_t seed)
{
    mm_model_opts o;
    mm_model *m = NULL;
    int rc;
    *out = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = a;
    o.input_dim = 3;
    o.max_batch = max_batch;
    o.max_seq = 2;
    o.seed = seed;
    o.n_threads = threads;
    if ((rc = mm_model_create(&m, &o)) != MM_OK) return rc;
    if ((rc = mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0)) != MM_OK ||
        (rc = mm_model_add_activation(m, MM_ACT_TANH)) != MM_OK ||
        (rc = mm_model_add_layernorm(m, 1e-5, 1)) != MM_OK ||
        (rc = mm_model_add_dense(m, 8, 1, MM_INIT_ORTHOGONAL, 1.0)) != MM_OK ||
        (rc = mm_model_add_activation(m, MM_ACT_TANH)) != MM_OK ||
        (rc = mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0)) != MM_OK ||
        (rc = mm_model_finalize(m)) != MM_OK) {
        mm_model_free(m);
        return rc;
    }
    *out = m;
    return MM_OK;
}

typedef struct io {
    float x[64 * 3], y[64 * 2], dy[64 * 2], dx[64 * 3], jy[64 * 2];
    mm_tensor *tx, *ty, *tdy, *tdx, *tjy;
} io;

static void io_init(io *b, int64_t batch)
{
    int64_t xs[2] = {batch, 3}, ys[2] = {batch, 2};
    mmt_fill_uniform(b->x, batch * 3, 1, -1, 1);
    mmt_fill_uniform(b->dy, batch * 2, 2, -1, 1);
    CHECK_OK(mm_tensor_wrap(&b->tx, b->x, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&b->ty, b->y, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&b->tdy, b->dy, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&b->tdx, b->dx, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&b->tjy, b->jy, 2, ys, NULL));
}

static void io_free(io *b)
{
    mm_tensor_free(b->tx);
    mm_tensor_free(b->ty);
    mm_tensor_free(b->tdy);
    mm_tensor_free(b->tdx);
    mm_tensor_free(b->tjy);
}

static void test_opts_and_lifecycle(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    char buf[200];
    unsigned char big[sizeof(mm_model_opts) + 16];
    float *p;
    io b;
    CHECK_STATUS(mm_model_opts_init(NULL), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_opts_init(&o));
    CHECK_EQ_I64(o.struct_size, sizeof o);
    CHECK_EQ_I64(o.max_batch, 1);
    CHECK_EQ_I64(o.n_threads, 1);
    CHECK_STATUS(mm_model_create(NULL, &o), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_create(&m, NULL), MM_E_INVALID_ARG);
    /* input_dim is required; the reason goes to err_buf */
    o.err_buf = buf;
    o.err_buf_size = sizeof buf;
    buf[0] = 0;
    CHECK_STATUS(mm_model_create(&m, &o), MM_E_INVALID_ARG);
    CHECK(m == NULL);
    CHECK(strstr(buf, "input_dim") != NULL);
    o.input_dim = 3;
    o.max_batch = 0;
    CHECK_STATUS(mm_model_create(&m, &o), MM_E_INVALID_ARG);
    o.max_batch = 4;
    o.n_threads = 0;
    CHECK_STATUS(mm_model_create(&m, &o), MM_E_INVALID_ARG);
    o.n_threads = 1;
    o.reserved1 = 7;
    CHECK_STATUS(mm_model_create(&m, &o), MM_E_INVALID_ARG);
    o.reserved1 = 0;
    o.struct_size = 4;
    CHECK_STATUS(mm_model_create(&m, &o), MM_E_INVALID_ARG);
    /* a newer caller's larger struct: zero tail accepted, non-zero tail refused */
    o.struct_size = (uint32_t)sizeof big;
    memset(big, 0, sizeof big);
    memcpy(big, &o, sizeof o);
    CHECK_OK(mm_model_create(&m, (const mm_model_opts *)(void *)big));
    mm_model_free(m);
    big[sizeof big - 1] = 1;
    buf[0] = 0;
    CHECK_STATUS(mm_model_create(&m, (const mm_model_opts *)(void *)big), MM_E_VERSION);
    CHECK(m == NULL);
    CHECK(strstr(buf, "newer") != NULL); /* explained through the caller's err_buf */
    /* an older caller's smaller struct keeps defaults for the tail (seed, threads, ...) */
    o.struct_size = (uint32_t)offsetof(mm_model_opts, seed);
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_EQ_I64(m->opts.n_threads, 1);
    mm_model_free(m);
    o.struct_size = sizeof o;

    /* lifecycle order */
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_STATUS(mm_model_finalize(m), MM_E_STATE); /* no layers */
    CHECK_STATUS(mm_model_params(m, &p, NULL), MM_E_STATE);
    CHECK_STATUS(mm_model_zero_grad(m), MM_E_STATE);
    CHECK_STATUS(mm_model_set_optimizer(m, MM_OPT_ADAM), MM_E_STATE);
    CHECK_STATUS(mm_model_freeze(m, 0, 1, 1), MM_E_STATE);
    CHECK_STATUS(mm_model_add_dense(m, 0, 1, MM_INIT_DEFAULT, 1), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_dense(m, 4, 2, MM_INIT_DEFAULT, 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_dense(m, 4, 1, 7, 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_dense(m, 4, 1, MM_INIT_ORTHOGONAL, NAN), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_activation(m, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_activation(m, 9), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_layernorm(m, 0.0, 1), MM_E_RANGE);
    CHECK_STATUS(mm_model_add_rmsnorm(m, 1e-5, 3), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_add_embedding(m, 0, 4), MM_E_RANGE);
    CHECK(strstr(mm_model_errmsg(m), "mm_model_add_embedding") != NULL);
    CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1));
    io_init(&b, 4);
    CHECK_STATUS(mm_model_forward(m, b.tx, b.ty), MM_E_STATE);
    CHECK_OK(mm_model_finalize(m));
    CHECK_STATUS(mm_model_finalize(m), MM_E_STATE);
    CHECK_STATUS(mm_model_add_activation(m, MM_ACT_RELU), MM_E_STATE);
    CHECK_STATUS(mm_model_backward(m, b.tdy, NULL), MM_E_STATE); /* no forward yet */
    CHECK_OK(mm_model_forward(m, b.tx, b.ty));
    CHECK_OK(mm_model_backward(m, b.tdy, NULL));
    io_free(&b);
    mm_model_free(m);
    mm_model_free(NULL);
    CHECK(strcmp(mm_model_errmsg(NULL), "invalid handle") == 0);
}

static void test_shapes_and_limits(void)
{
    mm_model *m;
    float x[5 * 2 * 3] = {0}, y[5 * 2 * 2], v[200];
    int64_t s5[2] = {5, 3}, s3d[3] = {2, 2, 3}, s3dy[3] = {2, 2, 2}, s3long[3] = {1, 3, 3};
    int64_t sbad[2] = {4, 4}, sy4[2] = {4, 2}, sy3[2] = {4, 3}, s1[1] = {3}, sy1[1] = {2};
    int64_t np, sv[1];
    mm_tensor *t5, *ty5, *t3d, *ty3d, *tlong, *tbad, *ty4, *ty3, *t1, *ty1, *tv;
    io b;
    CHECK_OK(build_mlp(&m, NULL, 4, 1, 1));
    io_init(&b, 4);
    CHECK_OK(mm_model_num_params(m, &np));
    sv[0] = np - 1;
    CHECK_OK(mm_tensor_wrap(&t5, x, 2, s5, NULL));
    CHECK_OK(mm_tensor_wrap(&ty5, y, 2, (int64_t[]){5, 2}, NULL));
    CHECK_OK(mm_tensor_wrap(&t3d, x, 3, s3d, NULL));
    CHECK_OK(mm_tensor_wrap(&ty3d, y, 3, s3dy, NULL));
    CHECK_OK(mm_tensor_wrap(&tlong, x, 3, s3long, NULL));
    CHECK_OK(mm_tensor_wrap(&tbad, x, 2, sbad, NULL));
    CHECK_OK(mm_tensor_wrap(&ty4, y, 2, sy4, NULL));
    CHECK_OK(mm_tensor_wrap(&ty3, y, 2, sy3, NULL));
    CHECK_OK(mm_tensor_wrap(&t1, x, 1, s1, NULL));
    CHECK_OK(mm_tensor_wrap(&ty1, y, 1, sy1, NULL));
    CHECK_OK(mm_tensor_wrap(&tv, v, 1, sv, NULL));
    CHECK_STATUS(mm_model_forward(m, t5, ty5), MM_E_RANGE); /* batch 5 > max_batch 4 */
    CHECK(strstr(mm_model_errmsg(m), "max_batch") != NULL);
    CHECK_STATUS(mm_model_forward(m, tlong, ty3d), MM_E_RANGE); /* seq 3 > max_seq 2 */
    CHECK_STATUS(mm_model_forward(m, t3d, ty4), MM_E_SHAPE);    /* y does not match x */
    CHECK_STATUS(mm_model_forward(m, tbad, ty4), MM_E_SHAPE);   /* 4 features, model takes 3 */
    CHECK_STATUS(mm_model_forward(m, b.tx, ty3), MM_E_SHAPE);
    CHECK_STATUS(mm_model_forward(m, NULL, ty4), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_forward(m, b.tx, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_forward(NULL, b.tx, b.ty), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_forward(m, t3d, ty3d));                    /* [2, 2, 3], max_seq 2 */
    CHECK_OK(mm_model_forward(m, t1, ty1));                      /* a single observation [3] */
    CHECK_STATUS(mm_model_backward(m, b.tdy, NULL), MM_E_SHAPE); /* dy must be [2] now */
    CHECK_OK(mm_model_forward(m, b.tx, b.ty));
    CHECK_STATUS(mm_model_backward(m, b.tdy, b.tdy), MM_E_SHAPE);
    CHECK_STATUS(mm_model_backward(m, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_jvp(m, b.tx, tv, NULL, b.tjy), MM_E_SHAPE); /* v one short */
    CHECK_STATUS(mm_model_jvp(m, b.tx, NULL, NULL, b.tjy), MM_E_INVALID_ARG);
    /* a call refused by its checks changes nothing: the last forward still counts */
    CHECK_OK(mm_model_backward(m, b.tdy, NULL));
    io_free(&b);
    mm_tensor_free(t5), mm_tensor_free(ty5), mm_tensor_free(t3d), mm_tensor_free(ty3d);
    mm_tensor_free(tlong), mm_tensor_free(tbad), mm_tensor_free(ty4), mm_tensor_free(ty3);
    mm_tensor_free(t1), mm_tensor_free(ty1), mm_tensor_free(tv);
    mm_model_free(m);
}

static void test_embedding_refusal(void)
{
    mm_model_opts o;
    mm_model *m;
    float x[4] = {0, 3, 1, 2}, y[4 * 2], dy[4 * 2] = {0};
    int64_t xs[2] = {4, 1}, ys[2] = {4, 2};
    mm_tensor *tx, *ty, *tdy;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 1;
    o.max_batch = 4;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_embedding(m, 4, 2));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tdy, dy, 2, ys, NULL));
    CHECK_OK(mm_model_forward(m, tx, ty));
    x[2] = 4; /* out of range */
    CHECK_STATUS(mm_model_forward(m, tx, ty), MM_E_RANGE);
    CHECK(strstr(mm_model_errmsg(m), "layer 0") != NULL);
    CHECK_STATUS(mm_model_backward(m, tdy, NULL), MM_E_STATE); /* that forward did not finish */
    x[2] = 1.5f;
    CHECK_STATUS(mm_model_forward(m, tx, ty), MM_E_RANGE);
    x[2] = -1;
    CHECK_STATUS(mm_model_forward(m, tx, ty), MM_E_RANGE);
    x[2] = NAN;
    CHECK_STATUS(mm_model_forward(m, tx, ty), MM_E_RANGE);
    x[2] = 3;
    CHECK_OK(mm_model_forward(m, tx, ty));
    CHECK_OK(mm_model_backward(m, tdy, NULL));
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tdy);
    mm_model_free(m);
}

/* Every allocation goes through the allocator, all are freed, and forward, backward, jvp,
 * step, zero_grad, infer, lerp and copy allocate nothing. */
static void test_allocations(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_model *m, *t;
    int64_t n_alloc, np, sv[1];
    float *v;
    mm_tensor *tv;
    size_t wsz;
    void *ws;
    io b;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(build_mlp(&m, &a, 4, 1, 3));
    CHECK_OK(build_mlp(&t, &a, 4, 1, 4));
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 0.5));
    CHECK_OK(mm_model_num_params(m, &np));
    v = calloc((size_t)np, sizeof(float));
    sv[0] = np;
    CHECK_OK(mm_tensor_wrap(&tv, v, 1, sv, NULL));
    CHECK_OK(mm_model_infer_workspace_size(m, 4, 1, &wsz));
    ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
    io_init(&b, 4);
    n_alloc = c.n_alloc;
    for (int it = 0; it < 3; it++) {
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_forward(m, b.tx, b.ty));
        CHECK_OK(mm_model_backward(m, b.tdy, b.tdx));
        CHECK_OK(mm_model_jvp(m, b.tx, tv, b.ty, b.tjy));
        CHECK_OK(mm_model_step(m));
        CHECK_OK(mm_model_infer(m, b.tx, b.ty, ws, wsz));
        CHECK_OK(mm_model_lerp(t, m, 0.005));
        CHECK_OK(mm_model_copy(t, m, 0));
    }
    CHECK_EQ_I64(c.n_alloc, n_alloc);
    io_free(&b);
    mm_tensor_free(tv);
    free(v);
    free(ws);
    mm_model_free(m);
    mm_model_free(t);
    CHECK_EQ_I64(c.n_alloc, c.n_free);
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK_EQ_I64(c.bad_free, 0);
}

/* Out of memory at each allocation of create + add + finalize + set_optimizer: MM_E_NOMEM,
 * nothing leaks, and the handle (when one exists) is still usable or freeable. */
static void test_out_of_memory(void)
{
    int done = 0;
    for (int64_t k = 0; k < 64 && !done; k++) {
        mm_allocator a;
        mmt_counter c;
        mm_model *m = NULL;
        int rc;
        mmt_counting_allocator(&a, &c, k);
        rc = build_mlp(&m, &a, 4, k % 2 ? 2 : 1, 1);
        if (rc == MM_OK) rc = mm_model_set_optimizer(m, MM_OPT_RMSPROP);
        if (rc == MM_OK)
            done = 1;
        else
            CHECK_STATUS(rc, MM_E_NOMEM);
        mm_model_free(m);
        CHECK_EQ_I64(c.live_bytes, 0);
        /* every allocation from the k-th on fails; each successful one was freed */
        CHECK_EQ_I64(c.n_alloc > k ? k : c.n_alloc, c.n_free);
        CHECK_EQ_I64(c.bad_free, 0);
    }
    CHECK(done);
}

/* mm_model_infer matches mm_model_forward bitwise, needs only its workspace, and can be
 * called from several threads on one model at once. */
typedef struct infer_job {
    const mm_model *m;
    const float *x;
    float y[64 * 2];
    int rc;
} infer_job;

static void *infer_thread(void *arg)
{
    infer_job *j = (infer_job *)arg;
    int64_t xs[2] = {64, 3}, ys[2] = {64, 2};
    mm_tensor *tx = NULL, *ty = NULL;
    size_t wsz = 0;
    void *ws;
    j->rc = mm_model_infer_workspace_size(j->m, 64, 1, &wsz);
    ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
    if (j->rc == MM_OK) j->rc = mm_tensor_wrap(&tx, (float *)j->x, 2, xs, NULL);
    if (j->rc == MM_OK) j->rc = mm_tensor_wrap(&ty, j->y, 2, ys, NULL);
    for (int it = 0; it < 20 && j->rc == MM_OK; it++) j->rc = mm_model_infer(j->m, tx, ty, ws, wsz);
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    free(ws);
    return NULL;
}

static void test_infer(void)
{
    mm_model *m;
    io b;
    size_t wsz, wsz1;
    void *ws;
    infer_job jobs[3];
    pthread_t th[3];
    CHECK_OK(build_mlp(&m, NULL, 64, 1, 5));
    io_init(&b, 64);
    mmt_fill_uniform(b.x, 64 * 3, 7, -2, 2);
    CHECK_OK(mm_model_forward(m, b.tx, b.ty));
    CHECK_OK(mm_model_infer_workspace_size(m, 64, 1, &wsz));
    CHECK_OK(mm_model_infer_workspace_size(m, 1, 1, &wsz1));
    CHECK(wsz1 <= wsz);
    CHECK_STATUS(mm_model_infer_workspace_size(m, 0, 1, &wsz1), MM_E_RANGE);
    ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
    CHECK_STATUS(mm_model_infer(m, b.tx, b.tjy, ws, wsz - 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_infer(m, b.tx, b.tjy, (char *)ws + 4, wsz), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_infer(m, b.tx, b.tx, ws, wsz), MM_E_SHAPE);
    CHECK_OK(mm_model_infer(m, b.tx, b.tjy, ws, wsz));
    CHECK(memcmp(b.y, b.jy, sizeof(float) * 64 * 2) == 0);
    for (int i = 0; i < 3; i++) {
        jobs[i].m = m;
        jobs[i].x = b.x;
        CHECK(pthread_create(&th[i], NULL, infer_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_OK(jobs[i].rc);
        CHECK(memcmp(jobs[i].y, b.y, sizeof(float) * 64 * 2) == 0);
    }
    free(ws);
    io_free(&b);
    mm_model_free(m);
}

/* A model without recurrent layers decodes with no state: its size is 0 and state may be NULL
 * (it was refused as a NULL argument); the step equals the forward row for row. */
static void test_decode_stateless(void)
{
    mm_model *m;
    io b;
    size_t sb = 1;
    CHECK_OK(build_mlp(&m, NULL, 4, 1, 5));
    io_init(&b, 4);
    CHECK_OK(mm_model_decode_state_size(m, 4, &sb));
    CHECK(sb == 0);
    CHECK_OK(mm_model_forward(m, b.tx, b.ty));
    CHECK_OK(mm_model_decode_step(m, b.tx, b.tjy, NULL, 0));
    CHECK(memcmp(b.y, b.jy, sizeof(float) * 4 * 2) == 0);
    CHECK_OK(mm_model_decode_step(m, b.tx, b.tjy, NULL, 123)); /* the size is not looked at */
    CHECK_STATUS(mm_model_decode_step(m, NULL, b.tjy, NULL, 0), MM_E_INVALID_ARG);
    CHECK(strstr(mm_model_errmsg(m), "NULL") != NULL);
    io_free(&b);
    mm_model_free(m);
}

/* Same seed, same parameters; a two-thread model computes bitwise what one thread does. */
static void test_determinism_threads(void)
{
    mm_model *a, *b2, *c;
    float *pa, *pb, *pc, *ga, *gb;
    int64_t n;
    io x1, x2;
    CHECK_OK(build_mlp(&a, NULL, 64, 1, 77));
    CHECK_OK(build_mlp(&b2, NULL, 64, 2, 77));
    CHECK_OK(build_mlp(&c, NULL, 64, 1, 78));
    CHECK_OK(mm_model_params(a, &pa, &n));
    CHECK_OK(mm_model_params(b2, &pb, NULL));
    CHECK_OK(mm_model_params(c, &pc, NULL));
    CHECK(memcmp(pa, pb, sizeof(float) * (size_t)n) == 0);
    CHECK(memcmp(pa, pc, sizeof(float) * (size_t)n) != 0);
    io_init(&x1, 64);
    io_init(&x2, 64);
    CHECK_OK(mm_model_forward(a, x1.tx, x1.ty));
    CHECK_OK(mm_model_forward(b2, x2.tx, x2.ty));
    CHECK_OK(mm_model_backward(a, x1.tdy, x1.tdx));
    CHECK_OK(mm_model_backward(b2, x2.tdy, x2.tdx));
    CHECK(memcmp(x1.y, x2.y, sizeof x1.y) == 0);
    CHECK(memcmp(x1.dx, x2.dx, sizeof(float) * 64 * 3) == 0);
    CHECK_OK(mm_model_grads(a, &ga, NULL));
    CHECK_OK(mm_model_grads(b2, &gb, NULL));
    CHECK(memcmp(ga, gb, sizeof(float) * (size_t)n) == 0);
    io_free(&x1);
    io_free(&x2);
    mm_model_free(a);
    mm_model_free(b2);
    mm_model_free(c);
}

/* A model large enough for the threaded paths (GEMMs above the 2^20 multiply-add threshold,
 * bias gradients of at least 2^15 elements, optimizer and norm chunks of 8192 parameters,
 * zero_grad in pieces) trains bitwise the same with 1, 2, 3 and 4 threads, with and without
 * clipping (the norm's chunk sums run with the dry pass, or before it), and its training steps
 * allocate nothing: parameters, gradients and the reported gradient norm are compared. */
static void test_threads_train_bitwise(void)
{
    enum { B = 128, IN = 5, H = 300, OUT = 3, STEPS = 3 };
    static float x[B * IN], y[B * OUT], dy[B * OUT];
    int64_t xs[2] = {B, IN}, ys[2] = {B, OUT}, n = 0;
    mm_tensor *tx = NULL, *ty = NULL, *tdy = NULL;
    mmt_fill_uniform(x, B * IN, 11, -1, 1);
    CHECK_OK(mm_tensor_wrap(&tx, x, 2, xs, NULL));
    CHECK_OK(mm_tensor_wrap(&ty, y, 2, ys, NULL));
    CHECK_OK(mm_tensor_wrap(&tdy, dy, 2, ys, NULL));
    for (int clip = 0; clip < 2; clip++) {
        float *p1 = NULL, *g1 = NULL;
        double norm1 = -1.0, clipped = 0.0;
        for (int32_t threads = 1; threads <= 4; threads++) {
            mm_model_opts o;
            mm_model *m = NULL;
            mm_allocator al;
            mmt_counter cnt;
            int64_t allocs;
            float *p, *g;
            double norm = -1.0;
            mmt_counting_allocator(&al, &cnt, -1);
            CHECK_OK(mm_model_opts_init(&o));
            o.alloc = &al;
            o.input_dim = IN;
            o.max_batch = B;
            o.seed = 5;
            o.n_threads = threads;
            CHECK_OK(mm_model_create(&m, &o));
            CHECK_OK(mm_model_add_dense(m, H, 1, MM_INIT_DEFAULT, 1.0));
            CHECK_OK(mm_model_add_activation(m, MM_ACT_RELU));
            CHECK_OK(mm_model_add_dense(m, H, 1, MM_INIT_DEFAULT, 1.0));
            CHECK_OK(mm_model_add_activation(m, MM_ACT_TANH));
            CHECK_OK(mm_model_add_dense(m, OUT, 1, MM_INIT_DEFAULT, 1.0));
            CHECK_OK(mm_model_finalize(m));
            CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
            if (clip) CHECK_OK(mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 0.01));
            allocs = cnt.n_alloc;
            for (int s = 0; s < STEPS; s++) {
                CHECK_OK(mm_model_zero_grad(m));
                CHECK_OK(mm_model_forward(m, tx, ty));
                for (int i = 0; i < B * OUT; i++) dy[i] = 0.01f * (y[i] - 0.1f * (float)(i % 5));
                CHECK_OK(mm_model_backward(m, tdy, NULL));
                CHECK_OK(mm_model_step(m));
            }
            CHECK_EQ_I64(cnt.n_alloc, allocs);
            CHECK_OK(mm_model_params(m, &p, &n));
            CHECK_OK(mm_model_grads(m, &g, NULL));
            CHECK_OK(mm_model_get_f64(m, MM_MODEL_STAT_GRAD_NORM, &norm));
            if (threads == 1) {
                p1 = (float *)malloc(sizeof(float) * (size_t)n);
                g1 = (float *)malloc(sizeof(float) * (size_t)n);
                CHECK(p1 != NULL && g1 != NULL);
                if (p1 && g1) {
                    memcpy(p1, p, sizeof(float) * (size_t)n);
                    memcpy(g1, g, sizeof(float) * (size_t)n);
                }
                norm1 = norm;
                CHECK_OK(mm_model_get_f64(m, MM_MODEL_STAT_CLIPPED, &clipped));
                CHECK(clipped == (double)clip);
            } else if (p1 && g1 &&
                       (memcmp(p1, p, sizeof(float) * (size_t)n) != 0 ||
                        memcmp(g1, g, sizeof(float) * (size_t)n) != 0 || norm != norm1)) {
                mmt_fail(__FILE__, __LINE__, "%d threads train differently from 1 (clip %d)",
                         (int)threads, clip);
            }
            mm_model_free(m);
            CHECK_EQ_I64(cnt.live_bytes, 0);
        }
        free(p1);
        free(g1);
    }
    CHECK(n > 2 * 16384);
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    mm_tensor_free(tdy);
}

static void test_init(void)
{
    mm_model_opts o;
    mm_model *m;
    float *p;
    int64_t n, in = 50, out = 30;
    double bound = 1.0 / sqrt((double)in), mx = 0, mean = 0, var = 0;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = in;
    o.seed = 9;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_dense(m, out, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_dense(m, 60, 1, MM_INIT_ORTHOGONAL, 2.0)); /* wide: 60 x 30 */
    CHECK_OK(mm_model_add_dense(m, 10, 1, MM_INIT_ORTHOGONAL, 0.5)); /* 10 x 60 */
    CHECK_OK(mm_model_add_layernorm(m, 1e-5, 1));
    CHECK_OK(mm_model_add_rmsnorm(m, 1e-5, 1));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_params(m, &p, &n));
    CHECK_EQ_I64(n, out * in + out + 60 * 30 + 60 + 10 * 60 + 10 + 20 + 10);
    /* PyTorch default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias: bound and variance */
    for (int64_t i = 0; i < out * in + out; i++) {
        if (fabs(p[i]) > mx) mx = fabs(p[i]);
        mean += p[i];
        var += (double)p[i] * p[i];
    }
    mean /= (double)(out * in + out);
    var /= (double)(out * in + out);
    CHECK(mx <= bound && mx > 0.95 * bound);
    CHECK(fabs(mean) < 0.05 * bound);
    CHECK_NEAR(var, bound * bound / 3, 0.1, 0);
    /* orthogonal: rows orthonormal for 10 x 60 (times gain^2), columns for 60 x 30 */
    {
        const float *w1 = p + out * in + out, *b1 = w1 + 60 * 30, *w2 = b1 + 60;
        for (int i = 0; i < 30; i++)
            for (int j = 0; j < 30; j++) {
                double s = 0;
                for (int r = 0; r < 60; r++) s += (double)w1[r * 30 + i] * w1[r * 30 + j];
                CHECK_NEAR(s, i == j ? 4.0 : 0.0, 0, 1e-5);
            }
        for (int i = 0; i < 60; i++) CHECK(b1[i] == 0.0f);
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++) {
                double s = 0;
                for (int k = 0; k < 60; k++) s += (double)w2[i * 60 + k] * w2[j * 60 + k];
                CHECK_NEAR(s, i == j ? 0.25 : 0.0, 0, 1e-6);
            }
        /* norms: weight 1, bias 0 */
        for (int i = 0; i < 10; i++) CHECK(w2[600 + 10 + i] == 1.0f && w2[600 + 20 + i] == 0.0f);
        for (int i = 0; i < 10; i++) CHECK(w2[600 + 30 + i] == 1.0f);
    }
    mm_model_free(m);
}

static void test_freeze(void)
{
    mm_model *m, *ref;
    float *p, *g, *pr, *gr, before[256];
    int64_t n;
    int32_t nl;
    int64_t off2 = 3 * 8 + 8 + 16; /* layer 3 (second dense) starts after dense+ln params */
    io b, b2;
    CHECK_OK(build_mlp(&m, NULL, 4, 1, 8));
    CHECK_OK(build_mlp(&ref, NULL, 4, 1, 8));
    CHECK_OK(mm_model_num_layers(m, &nl));
    CHECK_EQ_I64(nl, 6);
    CHECK_STATUS(mm_model_freeze(m, 4, 3, 1), MM_E_RANGE);
    CHECK_STATUS(mm_model_freeze(m, -1, 1, 1), MM_E_RANGE);
    CHECK_STATUS(mm_model_freeze(m, 0, 1, 2), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_freeze(m, 0, 3, 1)); /* dense, tanh, layernorm */
    CHECK_OK(mm_model_params(m, &p, &n));
    CHECK_OK(mm_model_grads(m, &g, NULL));
    CHECK_OK(mm_model_params(ref, &pr, NULL));
    CHECK_OK(mm_model_grads(ref, &gr, NULL));
    CHECK(n <= 256);
    io_init(&b, 4);
    io_init(&b2, 4);
    CHECK_OK(mm_model_forward(m, b.tx, b.ty));
    CHECK_OK(mm_model_backward(m, b.tdy, NULL));
    CHECK_OK(mm_model_forward(ref, b2.tx, b2.ty));
    CHECK_OK(mm_model_backward(ref, b2.tdy, b2.tdx));
    for (int64_t i = 0; i < off2; i++) CHECK(g[i] == 0.0f); /* not computed */
    CHECK(memcmp(g + off2, gr + off2, sizeof(float) * (size_t)(n - off2)) == 0);
    /* with dx the frozen layers still pass the gradient through */
    CHECK_OK(mm_model_backward(m, b.tdy, b.tdx));
    CHECK(memcmp(b.dx, b2.dx, sizeof(float) * 4 * 3) == 0);
    for (int64_t i = 0; i < off2; i++) CHECK(g[i] == 0.0f);
    /* step: frozen parameters do not move, even with weight decay */
    memcpy(before, p, sizeof(float) * (size_t)n);
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAMW));
    g[0] = NAN; /* a frozen layer's gradient is not looked at */
    CHECK_OK(mm_model_step(m));
    CHECK(memcmp(before, p, sizeof(float) * (size_t)off2) == 0);
    CHECK(memcmp(before + off2, p + off2, sizeof(float) * (size_t)(n - off2)) != 0);
    CHECK_OK(mm_model_freeze(m, 0, 3, 0));
    CHECK_STATUS(mm_model_step(m), MM_E_NUMERIC); /* now it is */
    io_free(&b);
    io_free(&b2);
    mm_model_free(m);
    mm_model_free(ref);
}

static void test_copy_lerp(void)
{
    mm_model *a, *b2, *other;
    mm_model_opts o;
    float *pa, *pb, snap[256];
    int64_t n;
    io x;
    CHECK_OK(build_mlp(&a, NULL, 4, 1, 10));
    CHECK_OK(build_mlp(&b2, NULL, 4, 1, 11));
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 3;
    CHECK_OK(mm_model_create(&other, &o));
    CHECK_OK(mm_model_add_dense(other, 2, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(other));
    CHECK_OK(mm_model_params(a, &pa, &n));
    CHECK_OK(mm_model_params(b2, &pb, NULL));
    CHECK_STATUS(mm_model_copy(other, a, 0), MM_E_SHAPE);
    CHECK_STATUS(mm_model_lerp(other, a, 0.5), MM_E_SHAPE);
    CHECK_STATUS(mm_model_copy(a, a, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_copy(b2, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_copy(b2, a, 1), MM_E_STATE); /* a has no optimizer */
    CHECK_STATUS(mm_model_lerp(b2, a, 1.5), MM_E_RANGE);
    CHECK_STATUS(mm_model_lerp(b2, a, NAN), MM_E_RANGE);
    /* lerp: dst = (1 - tau) dst + tau src in float32 */
    memcpy(snap, pb, sizeof(float) * (size_t)n);
    CHECK_OK(mm_model_lerp(b2, a, 0.25));
    for (int64_t i = 0; i < n; i++) CHECK(pb[i] == snap[i] * 0.75f + 0.25f * pa[i]);
    CHECK_OK(mm_model_lerp(b2, a, 1.0));
    CHECK(memcmp(pa, pb, sizeof(float) * (size_t)n) == 0);
    /* copy with optimizer: both then train identically */
    CHECK_OK(mm_model_set_optimizer(a, MM_OPT_ADAM));
    CHECK_OK(mm_model_set_f64(a, MM_MODEL_LR, 0.05));
    io_init(&x, 4);
    for (int it = 0; it < 2; it++) {
        CHECK_OK(mm_model_zero_grad(a));
        CHECK_OK(mm_model_forward(a, x.tx, x.ty));
        CHECK_OK(mm_model_backward(a, x.tdy, NULL));
        CHECK_OK(mm_model_step(a));
    }
    CHECK_OK(mm_model_copy(b2, a, 1));
    CHECK(memcmp(pa, pb, sizeof(float) * (size_t)n) == 0);
    for (int it = 0; it < 2; it++) {
        mm_model *ms[2] = {a, b2};
        for (int k = 0; k < 2; k++) {
            CHECK_OK(mm_model_zero_grad(ms[k]));
            CHECK_OK(mm_model_forward(ms[k], x.tx, x.ty));
            CHECK_OK(mm_model_backward(ms[k], x.tdy, NULL));
            CHECK_OK(mm_model_step(ms[k]));
        }
    }
    CHECK(memcmp(pa, pb, sizeof(float) * (size_t)n) == 0);
    {
        double v;
        CHECK_OK(mm_model_get_f64(b2, MM_MODEL_LR, &v));
        CHECK(v == 0.05);
        CHECK_OK(mm_model_get_f64(b2, MM_MODEL_STAT_STEPS, &v));
        CHECK(v == 4.0);
    }
    io_free(&x);
    mm_model_free(a);
    mm_model_free(b2);
    mm_model_free(other);
}

/* The enumeration save/load uses: labels, configs, tensor names in nn.Sequential style, and a
 * rebuild through mmi_model_add_layer that reproduces the architecture. */
static void test_enumeration(void)
{
    mm_model *m, *r;
    mm_model_opts o;
    char name[32];
    CHECK_OK(build_mlp(&m, NULL, 4, 1, 12));
    CHECK(strcmp(mmi_layer_label(&m->layers[0]), "dense") == 0);
    CHECK(strcmp(mmi_layer_label(&m->layers[1]), "tanh") == 0);
    CHECK(strcmp(mmi_layer_label(&m->layers[2]), "layernorm") == 0);
    CHECK_OK(mmi_model_tensor_name(m, 0, 1, name, sizeof name));
    CHECK(strcmp(name, "0.bias") == 0);
    CHECK_OK(mmi_model_tensor_name(m, 3, 0, name, sizeof name));
    CHECK(strcmp(name, "3.weight") == 0);
    CHECK_EQ_I64(m->layers[3].tensors[0].offset, 3 * 8 + 8 + 16);
    CHECK_EQ_I64(m->layers[3].tensors[0].shape[0], 8);
    CHECK_STATUS(mmi_model_tensor_name(m, 1, 0, name, sizeof name), MM_E_RANGE);
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 3;
    CHECK_OK(mm_model_create(&r, &o));
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        if (l->vt->kind == MMI_LAYER_ACT)
            CHECK_OK(mmi_model_add_layer(r, mmi_layer_label(l), NULL, 0, NULL, 0, "test"));
        else
            CHECK_OK(mmi_model_add_layer(r, l->vt->kind_name, l->icfg, l->n_icfg, l->dcfg,
                                         l->n_dcfg, "test"));
    }
    CHECK_STATUS(mmi_model_add_layer(r, "conv", NULL, 0, NULL, 0, "test"), MM_E_UNSUPPORTED);
    CHECK_OK(mm_model_finalize(r));
    CHECK_OK(mm_model_copy(r, m, 0)); /* same architecture */
    mm_model_free(m);
    mm_model_free(r);
}

/* Outputs over inputs. mm_model_forward copies x before writing anything, so y may be x itself
 * or overlap it: the result (and the following backward) equals the separate-buffer one. Every
 * other overlap is refused with MM_E_INVALID_ARG: before, a backward's dx over part of dy, a
 * jvp's jy over part of v or y over part of jy, an infer's y over part of x or inside ws
 * returned wrong values with MM_OK. On 1 and 2 threads. */
static void test_overlap(void)
{
    enum { B = 4, F = 8, NX = B * F };
    const int64_t sh[2] = {B, F};
    for (int32_t thr = 1; thr <= 2; thr++) {
        mm_model_opts o;
        mm_model *m = NULL;
        float buf[3 * NX], x0[NX], yref[NX], dxref[NX], jref[NX], dyb[2 * NX], dxb[NX], jb[NX];
        float *g, *vb, *gref;
        int64_t np, sv[1];
        int32_t tg[NX];
        size_t wsz;
        void *ws;
        mm_tensor *x = NULL, *xw = NULL, *y = NULL, *dy = NULL, *dyw = NULL, *dx = NULL, *v = NULL;
        mm_tensor *vw = NULL, *jy = NULL, *jyw = NULL, *yws = NULL, *lp = NULL;
        CHECK_OK(mm_model_opts_init(&o));
        o.input_dim = F, o.max_batch = B, o.max_seq = 1, o.n_threads = thr, o.seed = 3;
        CHECK_OK(mm_model_create(&m, &o));
        CHECK_OK(mm_model_add_dense(m, F, 1, MM_INIT_DEFAULT, 1.0));
        CHECK_OK(mm_model_add_activation(m, MM_ACT_TANH));
        CHECK_OK(mm_model_add_dense(m, F, 1, MM_INIT_DEFAULT, 1.0));
        CHECK_OK(mm_model_finalize(m));
        CHECK_OK(mm_model_grads(m, &g, &np));
        sv[0] = np;
        vb = calloc((size_t)(np + NX), sizeof(float));
        gref = calloc((size_t)np, sizeof(float));
        mmt_fill_uniform(x0, NX, 11, -1, 1);
        mmt_fill_uniform(dyb, NX, 12, -1, 1);
        mmt_fill_uniform(vb, np, 13, -1, 1);
        memcpy(buf, x0, sizeof x0);
        CHECK_OK(mm_tensor_wrap(&x, buf, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&xw, buf + NX / 2, 2, sh, NULL)); /* over x's second half */
        CHECK_OK(mm_tensor_wrap(&y, yref, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&dy, dyb, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&dyw, dyb + NX / 2, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&dx, dxb, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&v, vb, 1, sv, NULL));
        CHECK_OK(mm_tensor_wrap(&vw, vb + np - NX / 2, 2, sh, NULL)); /* over v's tail */
        CHECK_OK(mm_tensor_wrap(&jy, jb, 2, sh, NULL));
        CHECK_OK(mm_tensor_wrap(&jyw, jb + NX / 2, 1, (int64_t[1]){NX / 2}, NULL));
        /* the separate-buffer results */
        memset(g, 0, sizeof(float) * (size_t)np);
        CHECK_OK(mm_model_forward(m, x, y));
        CHECK_OK(mm_model_backward(m, dy, dx));
        memcpy(dxref, dxb, sizeof dxref), memcpy(gref, g, sizeof(float) * (size_t)np);
        CHECK_OK(mm_model_jvp(m, x, v, NULL, jy));
        memcpy(jref, jb, sizeof jref);
        /* forward in place: y == x, and y over part of x */
        for (int part = 0; part < 2; part++) {
            mm_tensor *out = part ? xw : x;
            memcpy(buf, x0, sizeof x0);
            memset(g, 0, sizeof(float) * (size_t)np);
            CHECK_OK(mm_model_forward(m, x, out));
            CHECK(memcmp(mm_tensor_data(out), yref, sizeof yref) == 0);
            CHECK_OK(mm_model_backward(m, dy, dx));
            CHECK(memcmp(dxb, dxref, sizeof dxref) == 0);
            CHECK(memcmp(g, gref, sizeof(float) * (size_t)np) == 0);
        }
        memcpy(buf, x0, sizeof x0);
        CHECK_OK(mm_model_forward(m, x, y));
        /* backward: dx over part of dy */
        CHECK_STATUS(mm_model_backward(m, dy, dyw), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "dx shares memory with dy") != NULL);
        /* jvp: jy over part of v, y over part of jy; jy == x is fine (x is copied first) */
        CHECK_STATUS(mm_model_jvp(m, x, v, NULL, vw), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "jy shares memory with v") != NULL);
        CHECK_STATUS(mm_model_jvp(m, x, v, jyw, jy), MM_E_SHAPE); /* shape first */
        {
            mm_tensor *y2 = NULL;
            float yb[NX + NX / 2];
            mm_tensor *jy2 = NULL;
            CHECK_OK(mm_tensor_wrap(&jy2, yb, 2, sh, NULL));
            CHECK_OK(mm_tensor_wrap(&y2, yb + NX / 2, 2, sh, NULL));
            CHECK_STATUS(mm_model_jvp(m, x, v, y2, jy2), MM_E_INVALID_ARG);
            CHECK(strstr(mm_model_errmsg(m), "y shares memory with jy") != NULL);
            mm_tensor_free(y2), mm_tensor_free(jy2);
        }
        CHECK_OK(mm_model_jvp(m, x, v, NULL, x));
        CHECK(memcmp(buf, jref, sizeof jref) == 0);
        memcpy(buf, x0, sizeof x0);
        /* infer: y over part of x, y inside ws */
        CHECK_OK(mm_model_infer_workspace_size(m, B, 1, &wsz));
        ws = aligned_alloc(64, (wsz + sizeof yref + 63) / 64 * 64);
        CHECK(ws != NULL);
        if (ws) {
            CHECK_STATUS(mm_model_infer(m, x, xw, ws, wsz), MM_E_INVALID_ARG);
            CHECK_OK(mm_tensor_wrap(&yws, (float *)ws, 2, sh, NULL));
            CHECK_STATUS(mm_model_infer(m, x, yws, ws, wsz), MM_E_INVALID_ARG);
            CHECK_OK(mm_model_infer(m, x, y, ws, wsz));
            free(ws);
        }
        /* logprob: logp over the targets */
        for (int i = 0; i < NX; i++) tg[i] = -1;
        tg[0] = 1;
        CHECK_OK(mm_tensor_wrap(&lp, (float *)tg, 1, (int64_t[1]){B}, NULL));
        CHECK_STATUS(mm_model_logprob(m, x, tg, B, lp), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "logp shares memory with targets") != NULL);
        /* decode_step: y over part of x; sample: tokens over a later row of logits */
        CHECK_STATUS(mm_model_decode_step(m, x, xw, NULL, 0), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "y shares memory with x") != NULL);
        CHECK_OK(mm_model_decode_step(m, x, y, NULL, 0));
        memcpy(buf, yref, sizeof yref);
        CHECK_STATUS(mm_model_sample(m, x, 1.0, 0, 1.0, (int32_t *)(void *)(buf + F), B, NULL),
                     MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "tokens shares memory with logits") != NULL);
        CHECK_STATUS(mm_model_sample(m, x, 1.0, 0, 1.0, tg, B, buf + 2), MM_E_INVALID_ARG);
        memcpy(buf, x0, sizeof x0);
        mm_tensor_free(x), mm_tensor_free(xw), mm_tensor_free(y), mm_tensor_free(dy);
        mm_tensor_free(dyw), mm_tensor_free(dx), mm_tensor_free(v), mm_tensor_free(vw);
        mm_tensor_free(jy), mm_tensor_free(jyw), mm_tensor_free(yws), mm_tensor_free(lp);
        free(vb), free(gref);
        mm_model_free(m);
    }
}

/* A bump allocator over one caller buffer (frees nothing): puts a model inside memory the
 * caller also holds, the one way a save buffer can cover the parameters. */
typedef struct bump {
    unsigned char *base;
    size_t used, cap;
} bump;

static void *bump_alloc(void *ud, size_t size, size_t align)
{
    bump *b = (bump *)ud;
    size_t at = (b->used + align - 1) / align * align;
    if (at > b->cap || size > b->cap - at) return NULL;
    b->used = at + size;
    return b->base + at;
}

static void bump_free(void *ud, void *ptr, size_t size) { (void)ud, (void)ptr, (void)size; }

/* Caller tensors over the model's own buffers (mm_model_params / mm_model_grads views). Inputs
 * may be views: x over the parameters gives bitwise the forward and backward of a copy, dy
 * over the parameters the backward of a copy, v = the parameters the jvp of a copy, and
 * logprob_backward's weights over the gradients the gradients of a copy. Outputs over either
 * buffer, and a backward's dy over the gradients, are refused (before: MM_OK, with the
 * parameters changed under the call or the gradients replaced); so are save_mem's size inside
 * buf and a save buffer over the parameters. */
static void test_own_buffers(void)
{
    enum { B = 4, F = 8, NX = B * F };
    const int64_t sh[2] = {B, F};
    mm_model_opts o;
    mm_model *m = NULL;
    float *P, *G, xc[NX], y1[NX], y2[NX], dyc[NX], dx1[NX], dx2[NX], *g1, *pc;
    int64_t np;
    mm_tensor *x = NULL, *xp = NULL, *y = NULL, *dy = NULL, *dx = NULL, *t = NULL, *v = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = F, o.max_batch = B, o.max_seq = 1, o.seed = 9;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    CHECK_OK(mm_model_add_dense(m, F, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_activation(m, MM_ACT_TANH));
    CHECK_OK(mm_model_add_dense(m, F, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_params(m, &P, &np));
    CHECK_OK(mm_model_grads(m, &G, NULL));
    CHECK(np >= 2 * NX);
    g1 = calloc((size_t)np, sizeof(float)), pc = calloc((size_t)np, sizeof(float));
    CHECK(g1 && pc);
    if (!g1 || !pc) goto out;
    memcpy(pc, P, sizeof(float) * (size_t)np);
    memcpy(xc, P + 8, sizeof xc);
    memcpy(dyc, P + 40, sizeof dyc);
    CHECK_OK(mm_tensor_wrap(&x, xc, 2, sh, NULL));
    CHECK_OK(mm_tensor_wrap(&xp, P + 8, 2, sh, NULL));
    CHECK_OK(mm_tensor_wrap(&y, y1, 2, sh, NULL));
    CHECK_OK(mm_tensor_wrap(&dy, dyc, 2, sh, NULL));
    CHECK_OK(mm_tensor_wrap(&dx, dx1, 2, sh, NULL));
    /* x over the parameters, dy over the parameters */
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_forward(m, x, y));
    CHECK_OK(mm_model_backward(m, dy, dx));
    memcpy(g1, G, sizeof(float) * (size_t)np), memcpy(y2, y1, sizeof y2),
        memcpy(dx2, dx1, sizeof dx2);
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_forward(m, xp, y));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    CHECK_OK(mm_tensor_wrap(&t, P + 40, 2, sh, NULL));
    CHECK_OK(mm_model_backward(m, t, dx));
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0);
    CHECK(memcmp(G, g1, sizeof(float) * (size_t)np) == 0);
    CHECK(memcmp(P, pc, sizeof(float) * (size_t)np) == 0);
    /* outputs over the parameters or the gradients */
    CHECK_STATUS(mm_model_forward(m, x, xp), MM_E_INVALID_ARG);
    CHECK(strstr(mm_model_errmsg(m), "y shares memory with the model's parameters") != NULL);
    mm_tensor_free(t), t = NULL;
    CHECK_OK(mm_tensor_wrap(&t, G + 16, 2, sh, NULL));
    CHECK_STATUS(mm_model_forward(m, x, t), MM_E_INVALID_ARG);
    CHECK(strstr(mm_model_errmsg(m), "y shares memory with the model's gradients") != NULL);
    CHECK_OK(mm_model_forward(m, x, y));
    CHECK_STATUS(mm_model_backward(m, dy, t), MM_E_INVALID_ARG); /* dx over the gradients */
    CHECK(strstr(mm_model_errmsg(m), "dx shares memory with the model's gradients") != NULL);
    CHECK_STATUS(mm_model_backward(m, dy, xp), MM_E_INVALID_ARG); /* dx over the parameters */
    CHECK_STATUS(mm_model_backward(m, t, dx), MM_E_INVALID_ARG);  /* dy over the gradients */
    CHECK(strstr(mm_model_errmsg(m), "dy shares memory with the model's gradients") != NULL);
    CHECK(memcmp(G, g1, sizeof(float) * (size_t)np) == 0); /* nothing accumulated */
    /* jvp: v = the parameters themselves; jy over them refused */
    CHECK_OK(mm_tensor_wrap(&v, pc, 1, &np, NULL));
    CHECK_OK(mm_model_jvp(m, x, v, NULL, y));
    memcpy(y2, y1, sizeof y2);
    mm_tensor_free(v), v = NULL;
    CHECK_OK(mm_tensor_wrap(&v, P, 1, &np, NULL));
    CHECK_OK(mm_model_jvp(m, x, v, NULL, y));
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    mm_tensor_free(v), v = NULL;
    CHECK_OK(mm_tensor_wrap(&v, pc, 1, &np, NULL));
    CHECK_STATUS(mm_model_jvp(m, x, v, NULL, xp), MM_E_INVALID_ARG);
    CHECK(strstr(mm_model_errmsg(m), "jy shares memory with the model's parameters") != NULL);
    /* infer, logprob, decode */
    {
        size_t wsz;
        void *ws;
        int32_t tg[B] = {1, 2, 3, 4};
        mm_tensor *lp = NULL, *w = NULL, *lo = NULL;
        float wc[B] = {0.5f, -1.0f, 2.0f, 0.25f}, lod[B];
        CHECK_OK(mm_model_infer_workspace_size(m, B, 1, &wsz));
        ws = aligned_alloc(64, (wsz + 63) / 64 * 64);
        CHECK(ws != NULL);
        if (ws) {
            CHECK_STATUS(mm_model_infer(m, x, xp, ws, wsz), MM_E_INVALID_ARG);
            CHECK_STATUS(mm_model_infer(m, x, t, ws, wsz), MM_E_INVALID_ARG);
            CHECK_OK(mm_model_infer(m, x, y, ws, wsz));
            free(ws);
        }
        CHECK_OK(mm_tensor_wrap(&lp, G + 4, 1, (int64_t[1]){B}, NULL));
        CHECK_STATUS(mm_model_logprob(m, x, tg, B, lp), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "logp shares memory with the model's gradients") != NULL);
        CHECK_STATUS(mm_model_decode_step(m, x, xp, NULL, 0), MM_E_INVALID_ARG);
        CHECK(strstr(mm_model_errmsg(m), "y shares memory with the model's parameters") != NULL);
        CHECK(memcmp(P, pc, sizeof(float) * (size_t)np) == 0);
        /* logprob_backward: weights over the gradients, against a copy */
        CHECK_OK(mm_tensor_wrap(&w, wc, 1, (int64_t[1]){B}, NULL));
        CHECK_OK(mm_tensor_wrap(&lo, lod, 1, (int64_t[1]){B}, NULL));
        CHECK_OK(mm_model_logprob(m, x, tg, B, lo));
        CHECK_OK(mm_model_zero_grad(m));
        memcpy(G + 4, wc, sizeof wc);
        CHECK_OK(mm_model_logprob_backward(m, tg, B, w));
        memcpy(g1, G, sizeof(float) * (size_t)np);
        CHECK_OK(mm_model_logprob(m, x, tg, B, lo));
        CHECK_OK(mm_model_zero_grad(m));
        memcpy(G + 4, wc, sizeof wc);
        CHECK_OK(mm_model_logprob_backward(m, tg, B, lp));
        CHECK(memcmp(G, g1, sizeof(float) * (size_t)np) == 0);
        mm_tensor_free(lp), mm_tensor_free(w), mm_tensor_free(lo);
    }
    /* save_mem: size inside buf */
    {
        size_t need = 0;
        unsigned char *sb;
        CHECK_OK(mm_model_save_mem(m, NULL, 0, &need, 0));
        sb = aligned_alloc(64, (need + 63) / 64 * 64);
        CHECK(sb != NULL);
        if (sb) {
            size_t *in_buf = (size_t *)(void *)(sb + 64);
            CHECK_STATUS(mm_model_save_mem(m, sb, need, in_buf, 0), MM_E_INVALID_ARG);
            CHECK(strstr(mm_model_errmsg(m), "size points into buf") != NULL);
            free(sb);
        }
    }
    /* a save buffer over the parameters: the model lives in the caller's arena */
    {
        enum { ARENA = 1 << 24 };
        bump ar = {aligned_alloc(64, ARENA), 0, ARENA};
        mm_allocator al = {sizeof(mm_allocator), 0, bump_alloc, bump_free, &ar};
        mm_model *mb = NULL;
        size_t sz = 0;
        CHECK(ar.base != NULL);
        o.alloc = &al;
        if (ar.base && mm_model_create(&mb, &o) == MM_OK) {
            CHECK_OK(mm_model_add_dense(mb, F, 1, MM_INIT_DEFAULT, 1.0));
            CHECK_OK(mm_model_finalize(mb));
            CHECK_STATUS(mm_model_save_mem(mb, ar.base, ARENA, &sz, 0), MM_E_INVALID_ARG);
            CHECK(strstr(mm_model_errmsg(mb), "buf shares memory with the model's parameters") !=
                  NULL);
            mm_model_free(mb);
        }
        free(ar.base);
    }
out:
    mm_tensor_free(x), mm_tensor_free(xp), mm_tensor_free(y), mm_tensor_free(dy);
    mm_tensor_free(dx), mm_tensor_free(t), mm_tensor_free(v);
    free(g1), free(pc);
    mm_model_free(m);
}

void suite_model_api(void)
{
    mmt_run("model_opts_and_lifecycle", test_opts_and_lifecycle);
    mmt_run("model_overlap", test_overlap);
    mmt_run("model_own_buffers", test_own_buffers);
    mmt_run("model_shapes_and_limits", test_shapes_and_limits);
    mmt_run("model_embedding_refusal", test_embedding_refusal);
    mmt_run("model_allocations", test_allocations);
    mmt_run("model_out_of_memory", test_out_of_memory);
    mmt_run("model_infer", test_infer);
    mmt_run("model_decode_stateless", test_decode_stateless);
    mmt_run("model_determinism_threads", test_determinism_threads);
    mmt_run("model_threads_train_bitwise", test_threads_train_bitwise);
    mmt_run("model_init", test_init);
    mmt_run("model_freeze", test_freeze);
    mmt_run("model_copy_lerp", test_copy_lerp);
    mmt_run("model_enumeration", test_enumeration);
}
