/* SPDX-License-Identifier: MIT */
/* test_comm.c — mm_comm and the distributed math, with threads as ranks (mmt_comm.h): the
 * distributed CLIP / SigLIP losses and gradients equal the single-process ones on the global
 * batch, data-parallel model steps equal one process with the global batch, data-parallel RL
 * keeps the ranks identical; a rank with bad input or a failing transport makes every rank
 * return (no hang). Multi-rank tests are named comm_threads_* so make check-tsan runs them. */
#include "mmt_comm.h"
#include "runner.h"
#include "core/mmi_comm.h"
#include "policy/mmi_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXW       4
#define TIMEOUT_MS 5000

/* ---- mm_comm_create ------------------------------------------------------------------------ */

static int32_t dummy_ar(void *ud, float *b, int64_t n)
{
    (void)ud, (void)b, (void)n;
    return 0;
}
static int32_t dummy_ag(void *ud, const float *s, float *r, int64_t n)
{
    memcpy(r, s, (size_t)n * sizeof(float));
    (void)ud;
    return 0;
}
static int32_t dummy_sr(void *ud, const float *s, int32_t d, float *r, int32_t src, int64_t n)
{
    memcpy(r, s, (size_t)n * sizeof(float));
    (void)ud, (void)d, (void)src;
    return 0;
}

static void fill_cb(mm_comm_callbacks *cb, int32_t rank, int32_t size)
{
    memset(cb, 0, sizeof *cb);
    cb->struct_size = sizeof *cb;
    cb->rank = rank;
    cb->size = size;
    cb->allreduce_sum = dummy_ar;
    cb->allgather = dummy_ag;
    cb->sendrecv = dummy_sr;
}

static void test_comm_create(void)
{
    mm_comm_callbacks cb;
    mm_comm *c = (mm_comm *)1;
    mm_allocator al;
    mmt_counter cnt;
    fill_cb(&cb, 0, 1);
    CHECK_STATUS(mm_comm_create(NULL, &cb, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_comm_create(&c, NULL, NULL), MM_E_INVALID_ARG);
    CHECK(c == NULL);
    cb.allgather = NULL;
    CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
    fill_cb(&cb, 2, 2);
    CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
    fill_cb(&cb, 0, 0);
    CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
    fill_cb(&cb, 0, 1);
    cb.reserved0 = 1;
    CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
    fill_cb(&cb, 0, 1);
    cb.struct_size = 8;
    CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
    fill_cb(&cb, 1, 3);
    mmt_counting_allocator(&al, &cnt, 0);
    CHECK_STATUS(mm_comm_create(&c, &cb, &al), MM_E_NOMEM);
    mmt_counting_allocator(&al, &cnt, 1);
    CHECK_STATUS(mm_comm_create(&c, &cb, &al), MM_E_NOMEM);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    mmt_counting_allocator(&al, &cnt, -1);
    CHECK_OK(mm_comm_create(&c, &cb, &al));
    CHECK_EQ_I64(mm_comm_rank(c), 1);
    CHECK_EQ_I64(mm_comm_size(c), 3);
    CHECK(strcmp(mm_comm_errmsg(c), "") == 0);
    mm_comm_free(c);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    CHECK_EQ_I64(cnt.bad_free, 0);
    CHECK_EQ_I64(mm_comm_rank(NULL), MM_E_INVALID_ARG);
    CHECK(strcmp(mm_comm_errmsg(NULL), "invalid handle") == 0);
    mm_comm_free(NULL);
}

/* ---- the core wrappers on a threads world -------------------------------------------------- */

typedef struct wrap_ctx {
    mmt_world *w;
    double sum[MAXW][2];
    float ar[MAXW][3], bc[MAXW][2];
    int rc[MAXW];
} wrap_ctx;

static void wrap_rank(int32_t rank, void *p)
{
    wrap_ctx *x = (wrap_ctx *)p;
    mm_comm_callbacks cb;
    mm_comm *c;
    mmi_err e;
    double v[2] = {1.0 / 3.0 + rank * 1e-12, 1e20 + rank};
    float buf[3] = {(float)rank, 1.0f, 0.5f}, b2[2] = {7.0f + (float)rank, -1.0f};
    mmt_world_callbacks(x->w, rank, &cb);
    if (mm_comm_create(&c, &cb, NULL) != MM_OK) return;
    x->rc[rank] = mmi_comm_sum_f64(c, v, 2, &e, "t");
    x->sum[rank][0] = v[0];
    x->sum[rank][1] = v[1];
    if (mmi_comm_allreduce(c, buf, 3, &e, "t") == MM_OK) memcpy(x->ar[rank], buf, sizeof buf);
    if (mmi_comm_bcast0(c, b2, 2, &e, "t") == MM_OK) memcpy(x->bc[rank], b2, sizeof b2);
    mm_comm_free(c);
}

static void test_comm_wrappers(void)
{
    wrap_ctx x;
    memset(&x, 0, sizeof x);
    x.w = mmt_world_create(3, TIMEOUT_MS);
    mmt_world_run(x.w, wrap_rank, &x);
    for (int r = 0; r < 3; r++) {
        CHECK_OK(x.rc[r]);
        /* exact float64 sums, the same on every rank */
        CHECK(x.sum[r][0] == (1.0 / 3.0 + 0.0) + (1.0 / 3.0 + 1e-12) + (1.0 / 3.0 + 2e-12));
        CHECK(x.sum[r][1] == (1e20 + 0.0) + (1e20 + 1.0) + (1e20 + 2.0));
        CHECK(x.ar[r][0] == 3.0f && x.ar[r][1] == 3.0f && x.ar[r][2] == 1.5f);
        CHECK(x.bc[r][0] == 7.0f && x.bc[r][1] == -1.0f);
    }
    mmt_world_free(x.w);
}

/* ---- distributed CLIP and SigLIP ----------------------------------------------------------- */

typedef struct loss_ctx {
    mmt_world *w;
    int32_t kind, size;
    uint32_t flags;
    int64_t b, d;
    const float *x, *y; /* global [N, D] */
    float *dx, *dy;     /* global [N, D], each rank writes its rows */
    double loss[MAXW], dt[MAXW], db[MAXW], i2t[MAXW];
    int rc[MAXW];
    int nan_rank; /* -1, or the rank that passes a NaN */
    int want_dy[MAXW];
} loss_ctx;

static mm_loss *make_loss(int32_t kind, int64_t b, int64_t d)
{
    mm_loss_opts o;
    mm_loss *h = NULL;
    if (mm_loss_opts_init(&o, kind) != MM_OK) return NULL;
    o.max_batch = b;
    o.max_dim = d;
    o.tile = 8;
    if (mm_loss_create(&h, &o) != MM_OK) return NULL;
    return h;
}

/* A statistic, or NaN if the kind has none. */
static double stat_of(const mm_loss *h, int32_t id)
{
    double v = NAN;
    if (mm_loss_get_f64(h, id, &v) != MM_OK) v = NAN;
    return v;
}

static void loss_rank(int32_t rank, void *p)
{
    loss_ctx *c = (loss_ctx *)p;
    mm_comm_callbacks cb;
    mm_comm *cm = NULL;
    mm_loss *h = make_loss(c->kind, c->b, c->d);
    mm_tensor *x = NULL, *y = NULL, *dx = NULL, *dy = NULL;
    int64_t shape[2] = {c->b, c->d}, off = rank * c->b * c->d;
    mmt_world_callbacks(c->w, rank, &cb);
    c->rc[rank] = MM_E_INTERNAL;
    if (!h || mm_comm_create(&cm, &cb, NULL) != MM_OK || mm_loss_set_comm(h, cm, c->flags) ||
        mm_tensor_wrap(&x, (float *)c->x + off, 2, shape, NULL) ||
        mm_tensor_wrap(&y, (float *)c->y + off, 2, shape, NULL) ||
        mm_tensor_wrap(&dx, c->dx + off, 2, shape, NULL) ||
        mm_tensor_wrap(&dy, c->dy + off, 2, shape, NULL))
        goto done;
    if (rank == c->nan_rank) mm_tensor_data(x)[1] = NAN;
    c->rc[rank] = c->kind == MM_LOSS_CLIP
                      ? mm_loss_clip(h, x, y, &c->loss[rank], dx, c->want_dy[rank] ? dy : NULL)
                      : mm_loss_siglip(h, x, y, &c->loss[rank], dx, c->want_dy[rank] ? dy : NULL);
    if (rank == c->nan_rank) mm_tensor_data(x)[1] = 0.25f;
    c->dt[rank] = stat_of(h, MM_LOSS_STAT_DLOGIT_SCALE);
    c->db[rank] = stat_of(h, MM_LOSS_STAT_DLOGIT_BIAS);
    c->i2t[rank] = stat_of(h, MM_LOSS_STAT_LOSS_I2T);
done:
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_tensor_free(dx);
    mm_tensor_free(dy);
    mm_loss_free(h);
    mm_comm_free(cm);
}

/* Single-process reference on the global batch. */
static void reference(int32_t kind, int64_t n, int64_t d, const float *xg, const float *yg,
                      float *dx, float *dy, double *loss, double *dt, double *db, double *i2t)
{
    mm_loss *h = make_loss(kind, n, d);
    mm_tensor *x, *y, *tdx, *tdy;
    int64_t shape[2] = {n, d};
    CHECK(h != NULL);
    if (!h) return;
    CHECK_OK(mm_tensor_wrap(&x, (float *)xg, 2, shape, NULL));
    CHECK_OK(mm_tensor_wrap(&y, (float *)yg, 2, shape, NULL));
    CHECK_OK(mm_tensor_wrap(&tdx, dx, 2, shape, NULL));
    CHECK_OK(mm_tensor_wrap(&tdy, dy, 2, shape, NULL));
    CHECK_OK(kind == MM_LOSS_CLIP ? mm_loss_clip(h, x, y, loss, tdx, tdy)
                                  : mm_loss_siglip(h, x, y, loss, tdx, tdy));
    CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, dt));
    *db = 0.0;
    *i2t = 0.0;
    if (kind == MM_LOSS_SIGLIP) CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_BIAS, db));
    if (kind == MM_LOSS_CLIP) CHECK_OK(mm_loss_get_f64(h, MM_LOSS_STAT_LOSS_I2T, i2t));
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_tensor_free(tdx);
    mm_tensor_free(tdy);
    mm_loss_free(h);
}

static void make_features(float *v, int64_t n, int64_t d, uint64_t seed)
{
    mmt_fill_uniform(v, n * d, seed, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) { /* L2-normalised rows, as the towers give */
        double s = 0.0;
        for (int64_t j = 0; j < d; j++) s += (double)v[i * d + j] * v[i * d + j];
        for (int64_t j = 0; j < d; j++) v[i * d + j] = (float)(v[i * d + j] / sqrt(s));
    }
}

static void check_dist(int32_t kind, int32_t size, int64_t b, int64_t d, uint32_t flags)
{
    int64_t n = size * b;
    float *x = malloc((size_t)(n * d) * 4), *y = malloc((size_t)(n * d) * 4);
    float *rdx = malloc((size_t)(n * d) * 4), *rdy = malloc((size_t)(n * d) * 4);
    float *ddx = calloc((size_t)(n * d), 4), *ddy = calloc((size_t)(n * d), 4);
    double rl, rdt, rdb, ri2t, mean_loss = 0.0;
    loss_ctx c;
    make_features(x, n, d, 11 + (uint64_t)size);
    make_features(y, n, d, 97 + (uint64_t)b);
    reference(kind, n, d, x, y, rdx, rdy, &rl, &rdt, &rdb, &ri2t);
    memset(&c, 0, sizeof c);
    c.w = mmt_world_create(size, TIMEOUT_MS);
    c.kind = kind;
    c.size = size;
    c.flags = flags;
    c.b = b;
    c.d = d;
    c.x = x;
    c.y = y;
    c.dx = ddx;
    c.dy = ddy;
    c.nan_rank = -1;
    for (int r = 0; r < size; r++) c.want_dy[r] = 1;
    mmt_world_run(c.w, loss_rank, &c);
    for (int r = 0; r < size; r++) {
        CHECK_OK(c.rc[r]);
        mean_loss += c.loss[r] / size;
        if (!(flags & MM_COMM_LOCAL_LOSS)) {
            CHECK_NEAR(c.loss[r], rl, 1e-5, 1e-6);
            CHECK_NEAR(c.dt[r], rdt, 1e-4, 1e-6);
            if (kind == MM_LOSS_SIGLIP) CHECK_NEAR(c.db[r], rdb, 1e-4, 1e-6);
            if (kind == MM_LOSS_CLIP) CHECK_NEAR(c.i2t[r], ri2t, 1e-5, 1e-6);
            CHECK(c.loss[r] == c.loss[0]); /* bitwise the same on every rank */
        }
    }
    CHECK_NEAR(mean_loss, rl, 1e-5, 1e-6);
    /* gather-with-grad convention: each rank's rows of size x the global gradient */
    for (int64_t i = 0; i < n * d; i++) {
        CHECK_NEAR(ddx[i], size * rdx[i], 2e-4, 2e-6);
        CHECK_NEAR(ddy[i], size * rdy[i], 2e-4, 2e-6);
    }
    mmt_world_free(c.w);
    free(x), free(y), free(rdx), free(rdy), free(ddx), free(ddy);
}

static void test_comm_clip(void)
{
    check_dist(MM_LOSS_CLIP, 1, 12, 6, 0);
    check_dist(MM_LOSS_CLIP, 2, 12, 6, 0);
    check_dist(MM_LOSS_CLIP, 3, 7, 5, 0);
    check_dist(MM_LOSS_CLIP, 3, 12, 6, MM_COMM_LOCAL_LOSS);
    check_dist(MM_LOSS_CLIP, 4, 20, 9, 0);
}

static void test_comm_siglip(void)
{
    check_dist(MM_LOSS_SIGLIP, 1, 12, 6, 0);
    check_dist(MM_LOSS_SIGLIP, 2, 12, 6, 0);
    check_dist(MM_LOSS_SIGLIP, 3, 7, 5, 0);
    check_dist(MM_LOSS_SIGLIP, 3, 12, 6, MM_COMM_LOCAL_LOSS);
    check_dist(MM_LOSS_SIGLIP, 4, 20, 9, 0);
}

/* One rank passes NaN: it returns MM_E_NUMERIC, the others MM_E_STATE, nobody hangs, and the
 * next call (good input) works everywhere. Then a transport failure: everybody MM_E_IO. */
static void test_comm_failures(void)
{
    enum { W = 3, B = 6, D = 4 };
    float x[W * B * D], y[W * B * D], dx[W * B * D], dy[W * B * D];
    for (int kind = MM_LOSS_CLIP; kind <= MM_LOSS_SIGLIP; kind++) {
        loss_ctx c;
        make_features(x, W * B, D, 5);
        make_features(y, W * B, D, 6);
        memset(&c, 0, sizeof c);
        c.w = mmt_world_create(W, TIMEOUT_MS);
        c.kind = kind;
        c.size = W;
        c.b = B;
        c.d = D;
        c.x = x;
        c.y = y;
        c.dx = dx;
        c.dy = dy;
        c.nan_rank = 1;
        c.want_dy[0] = 1; /* ranks may differ in what they want */
        mmt_world_run(c.w, loss_rank, &c);
        CHECK_STATUS(c.rc[0], MM_E_STATE);
        CHECK_STATUS(c.rc[1], MM_E_NUMERIC);
        CHECK_STATUS(c.rc[2], MM_E_STATE);
        c.nan_rank = -1;
        mmt_world_run(c.w, loss_rank, &c);
        for (int r = 0; r < W; r++) CHECK_OK(c.rc[r]);
        /* the transport fails on rank 2 in its second collective */
        mmt_world_fail_at(c.w, 2, 1);
        mmt_world_run(c.w, loss_rank, &c);
        for (int r = 0; r < W; r++) CHECK_STATUS(c.rc[r], MM_E_IO);
        mmt_world_free(c.w);
    }
}

/* Ranks with different batch sizes all refuse with MM_E_SHAPE. */
typedef struct shape_ctx {
    mmt_world *w;
    int rc[2];
} shape_ctx;

static void shape_rank(int32_t rank, void *p)
{
    shape_ctx *c = (shape_ctx *)p;
    mm_comm_callbacks cb;
    mm_comm *cm = NULL;
    mm_loss *h = make_loss(MM_LOSS_SIGLIP, 8, 4);
    mm_tensor *x = NULL;
    int64_t shape[2] = {4 + rank, 4};
    mmt_world_callbacks(c->w, rank, &cb);
    c->rc[rank] = MM_E_INTERNAL;
    if (h && mm_comm_create(&cm, &cb, NULL) == MM_OK && mm_loss_set_comm(h, cm, 0) == MM_OK &&
        mm_tensor_create(&x, 2, shape, NULL) == MM_OK && mm_tensor_fill(x, 0.1f) == MM_OK)
        c->rc[rank] = mm_loss_siglip(h, x, x, NULL, NULL, NULL);
    mm_tensor_free(x);
    mm_loss_free(h);
    mm_comm_free(cm);
}

static void test_comm_shape_mismatch(void)
{
    shape_ctx c;
    mm_loss *h = make_loss(MM_LOSS_BCE, 8, 4);
    CHECK_STATUS(mm_loss_set_comm(h, NULL, 0), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_loss_set_comm(NULL, NULL, 0), MM_E_INVALID_ARG);
    mm_loss_free(h);
    h = make_loss(MM_LOSS_CLIP, 8, 4);
    CHECK_STATUS(mm_loss_set_comm(h, NULL, 8), MM_E_INVALID_ARG);
    CHECK_OK(mm_loss_set_comm(h, NULL, 0));
    mm_loss_free(h);
    memset(&c, 0, sizeof c);
    c.w = mmt_world_create(2, TIMEOUT_MS);
    mmt_world_run(c.w, shape_rank, &c);
    CHECK_STATUS(c.rc[0], MM_E_SHAPE);
    CHECK_STATUS(c.rc[1], MM_E_SHAPE);
    mmt_world_free(c.w);
}

/* ---- data-parallel RL ------------------------------------------------------------------------ */

#define PT    10   /* steps driven */
#define PA    4    /* agents in the global batch */
#define PMAXP 4096 /* floats of actor parameters kept for comparison */

typedef struct pol_ctx {
    mmt_world *w; /* NULL: single process */
    int32_t algo, size;
    int64_t n_actions; /* > 0: discrete actions (QAC, discrete SAC) */
    int use_act;       /* 1: actions from mm_policy_act(explore); 0: the fixed ones below */
    float obs[PT + 1][PA][3], act[PT][PA], rew[PT][PA];
    float params[MAXW][PMAXP];
    int64_t n_params;
    int rc[MAXW], saved[MAXW];
} pol_ctx;

static void pol_data(pol_ctx *c)
{
    mmt_fill_uniform(&c->obs[0][0][0], (PT + 1) * PA * 3, 3, -1.0f, 1.0f);
    mmt_fill_uniform(&c->act[0][0], PT * PA, 4, -0.9f, 0.9f);
    mmt_fill_uniform(&c->rew[0][0], PT * PA, 5, -1.0f, 1.0f);
}

static mm_policy *pol_make(int32_t algo, int64_t n_agents, int64_t n_actions)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    if (mm_policy_opts_init(&o, algo) != MM_OK) return NULL;
    o.obs_dim = 3, o.act_dim = 1, o.seed = 9, o.n_agents = n_agents;
    o.n_hidden = 1, o.hidden[0] = 16;
    o.buffer_size = 64, o.batch_size = 8, o.learning_starts = 4, o.n_steps = 5, o.n_epochs = 2;
    o.n_actions = n_actions;
    return mm_policy_create(&p, &o) == MM_OK ? p : NULL;
}

/* Rank `rank` drives its share of the agents (all of them when single) for PT steps. */
static void pol_rank(int32_t rank, void *arg)
{
    pol_ctx *c = (pol_ctx *)arg;
    int64_t na = PA / c->size, a0 = rank * na;
    mm_policy *p = pol_make(c->algo, na, c->n_actions);
    mm_comm *cm = NULL;
    mm_comm_callbacks cb;
    int rc = p ? MM_OK : MM_E_INTERNAL;
    if (rc == MM_OK && c->w) {
        mmt_world_callbacks(c->w, rank, &cb);
        rc = mm_comm_create(&cm, &cb, NULL);
        if (rc == MM_OK) rc = mm_policy_set_comm(p, cm);
    }
    for (int t = 0; rc == MM_OK && t < PT; t++) {
        float act[PA], rew[PA];
        uint8_t te[PA] = {0}, tr[PA] = {0};
        for (int64_t i = 0; i < na; i++) act[i] = c->act[t][a0 + i], rew[i] = c->rew[t][a0 + i];
        if (c->use_act) rc = mm_policy_act(p, &c->obs[t][a0][0], na, act, 1);
        if (rc == MM_OK)
            rc = mm_policy_observe(p, &c->obs[t][a0][0], act, rew, &c->obs[t + 1][a0][0], te, tr,
                                   na);
        if (rc == MM_OK) rc = mm_policy_update(p, NULL);
    }
    c->rc[rank] = rc;
    if (rc == MM_OK) { /* white-box: the actor's (or policy net's) parameters */
        float *w;
        int64_t n;
        rc = mm_model_params(p->actor, &w, &n);
        n = n < PMAXP ? n : PMAXP;
        if (rank == 0) c->n_params = n; /* one writer: the ranks run as threads */
        if (rc == MM_OK) memcpy(c->params[rank], w, sizeof(float) * (size_t)n);
        c->rc[rank] = rc;
    }
    if (rc == MM_OK && cm) { /* checkpoints: rank 0 writes, the others only return MM_OK */
        char path[96];
        snprintf(path, sizeof path, "/tmp/mm_test_comm_pol_%d.%d", (int)getpid(), (int)rank);
        c->rc[rank] = mm_policy_save(p, path);
        c->saved[rank] = remove(path) == 0;
    }
    mm_policy_free(p);
    mm_comm_free(cm);
}

static void pol_run(pol_ctx *c, int32_t size)
{
    c->size = size;
    memset(c->rc, 0, sizeof c->rc);
    if (size == 1) {
        c->w = NULL;
        pol_rank(0, c);
        return;
    }
    c->w = mmt_world_create(size, TIMEOUT_MS);
    mmt_world_run(c->w, pol_rank, c);
    mmt_world_free(c->w);
    c->w = NULL;
}

/* A2C on fixed transitions: two ranks with two agents each take exactly the step of one rank
 * with four agents (the loss is a mean over equal-sized shards). */
static void test_comm_a2c_equals_single(void)
{
    static pol_ctx c1, c2;
    float *init;
    int moved = 0;
    memset(&c1, 0, sizeof c1);
    pol_data(&c1);
    c1.algo = MM_ALGO_A2C;
    c2 = c1;
    pol_run(&c1, 1);
    CHECK_OK(c1.rc[0]);
    pol_run(&c2, 2);
    CHECK_OK(c2.rc[0]);
    CHECK_OK(c2.rc[1]);
    CHECK(c1.n_params > 0 && c1.n_params == c2.n_params);
    for (int64_t i = 0; i < c1.n_params; i++) {
        CHECK_NEAR(c2.params[0][i], c1.params[0][i], 1e-4, 1e-6);
        CHECK(c2.params[1][i] == c2.params[0][i]); /* ranks bitwise identical */
    }
    /* and training did move the parameters away from a fresh agent's */
    {
        mm_policy *p = pol_make(MM_ALGO_A2C, PA, 0);
        int64_t n = 0;
        CHECK(p && mm_model_params(p->actor, &init, &n) == MM_OK);
        for (int64_t i = 0; p && i < n && i < c1.n_params; i++) moved |= init[i] != c1.params[0][i];
        mm_policy_free(p);
    }
    CHECK(moved);
}

/* Did training move the actor away from a fresh agent's (same seed, so same start)? */
static int pol_moved(const pol_ctx *c)
{
    mm_policy *p = pol_make(c->algo, PA, c->n_actions);
    float *init = NULL;
    int64_t n = 0;
    int moved = 0;
    if (p && mm_model_params(p->actor, &init, &n) == MM_OK)
        for (int64_t i = 0; i < n && i < c->n_params; i++) moved |= init[i] != c->params[0][i];
    mm_policy_free(p);
    return moved;
}

/* PPO, DDPG, TD3, QAC, SAC and discrete SAC with sampled actions: ranks stay identical, and a
 * rerun is bitwise the same. */
static void test_comm_policy_reproducible(void)
{
    static const int32_t algos[6] = {MM_ALGO_PPO, MM_ALGO_DDPG, MM_ALGO_TD3,
                                     MM_ALGO_QAC, MM_ALGO_SAC,  MM_ALGO_SAC};
    static const int64_t n_actions[6] = {0, 0, 0, 3, 0, 3}; /* QAC is discrete only */
    static pol_ctx a, b;
    for (int k = 0; k < 6; k++) {
        memset(&a, 0, sizeof a);
        pol_data(&a);
        a.algo = algos[k];
        a.n_actions = n_actions[k];
        a.use_act = 1;
        b = a;
        pol_run(&a, 2);
        pol_run(&b, 2);
        for (int r = 0; r < 2; r++) {
            CHECK_OK(a.rc[r]);
            CHECK_OK(b.rc[r]);
        }
        CHECK(a.n_params > 0);
        CHECK(a.saved[0] == 1 && a.saved[1] == 0);
        CHECK(memcmp(a.params[0], a.params[1], sizeof(float) * (size_t)a.n_params) == 0);
        CHECK(memcmp(a.params[0], b.params[0], sizeof(float) * (size_t)a.n_params) == 0);
        CHECK(pol_moved(&a)); /* identical because averaged, not because nothing was trained */
    }
}

/* Memory PPO on ranks created with different seeds: set_comm gives every rank rank 0's
 * networks, the memory core included (also after the rank acted on its own), and the averaged
 * updates keep them identical. */
typedef struct mem_ctx {
    mmt_world *w;
    float core[MAXW][PMAXP], actor[MAXW][PMAXP];
    int64_t n_core, n_actor;
    int rc[MAXW];
} mem_ctx;

static void mem_copy(mm_model *m, float *dst, int64_t *n_out, int *rc)
{
    float *w;
    int64_t n = 0;
    if (*rc == MM_OK) *rc = mm_model_params(m, &w, &n);
    n = n < PMAXP ? n : PMAXP;
    if (*rc == MM_OK) memcpy(dst, w, sizeof(float) * (size_t)n);
    *n_out = n;
}

static void mem_rank(int32_t rank, void *arg)
{
    mem_ctx *c = (mem_ctx *)arg;
    mm_policy_opts o;
    mm_policy *p = NULL;
    mm_comm *cm = NULL;
    mm_comm_callbacks cb;
    float obs[2][3] = {{0.1f, -0.2f, 0.3f}, {0.4f, 0.0f, -0.5f}};
    float next[2][3] = {{0.2f, -0.1f, 0.0f}, {0.3f, 0.1f, -0.4f}}, act[2], rew[2] = {1.0f, -1.0f};
    uint8_t te[2] = {0}, tr[2] = {0};
    int64_t n_core = 0, n_actor = 0;
    int rc = mm_policy_opts_init(&o, MM_ALGO_PPO);
    o.obs_dim = 3, o.act_dim = 1, o.n_agents = 2, o.seed = 100 + (uint64_t)rank;
    o.n_hidden = 1, o.hidden[0] = 8, o.n_steps = 4, o.batch_size = 8, o.n_epochs = 1;
    o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 2;
    if (rc == MM_OK) rc = mm_policy_create(&p, &o);
    if (rc == MM_OK) mmt_world_callbacks(c->w, rank, &cb), rc = mm_comm_create(&cm, &cb, NULL);
    /* an act first forms the core's operands from this rank's own parameters: the acts after
     * the broadcast must form them again (debug builds check it) */
    if (rc == MM_OK) rc = mm_policy_act(p, &obs[0][0], 2, act, 0);
    if (rc == MM_OK) rc = mm_policy_set_comm(p, cm);
    for (int t = 0; rc == MM_OK && t < 8; t++) {
        rc = mm_policy_act(p, &obs[0][0], 2, act, 1);
        if (rc == MM_OK) rc = mm_policy_observe(p, &obs[0][0], act, rew, &next[0][0], te, tr, 2);
        if (rc == MM_OK) rc = mm_policy_update(p, NULL);
    }
    if (p && p->mem.m) mem_copy(p->mem.m, c->core[rank], &n_core, &rc);
    if (p) mem_copy(p->actor, c->actor[rank], &n_actor, &rc);
    if (rank == 0) c->n_core = n_core, c->n_actor = n_actor; /* one writer: ranks are threads */
    c->rc[rank] = rc;
    mm_policy_free(p);
    mm_comm_free(cm);
}

static void test_comm_threads_policy_memory(void)
{
    static mem_ctx c;
    memset(&c, 0, sizeof c);
    c.w = mmt_world_create(2, TIMEOUT_MS);
    mmt_world_run(c.w, mem_rank, &c);
    mmt_world_free(c.w);
    CHECK_OK(c.rc[0]);
    CHECK_OK(c.rc[1]);
    CHECK(c.n_core > 0 && c.n_actor > 0);
    CHECK(memcmp(c.core[0], c.core[1], sizeof(float) * (size_t)c.n_core) == 0);
    CHECK(memcmp(c.actor[0], c.actor[1], sizeof(float) * (size_t)c.n_actor) == 0);
}

static void test_comm_policy_refusals(void)
{
    mm_policy *p = pol_make(MM_ALGO_TRPO, 2, 0);
    mm_comm_callbacks cb;
    mm_comm *cm = NULL;
    fill_cb(&cb, 0, 1);
    CHECK_OK(mm_comm_create(&cm, &cb, NULL));
    CHECK_STATUS(mm_policy_set_comm(NULL, cm), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_set_comm(p, cm), MM_E_UNSUPPORTED);
    CHECK_OK(mm_policy_set_comm(p, NULL));
    mm_policy_free(p);
    mm_comm_free(cm);
}

/* ---- data-parallel mm_model ------------------------------------------------------------------ */

#define MROWS 12
#define MIN   5
#define MOUT  3

typedef struct model_ctx {
    mmt_world *w;
    int32_t size;
    float x[MROWS * MIN], t[MROWS * MOUT];
    float params[MAXW][512];
    int64_t n_params;
    int rc[MAXW], nan_rc[MAXW], save_rc[MAXW], saved[MAXW];
    char path[64];
} model_ctx;

static mm_model *model_make(uint64_t seed, int64_t rows)
{
    mm_model_opts o;
    mm_model *m = NULL;
    if (mm_model_opts_init(&o) != MM_OK) return NULL;
    o.input_dim = MIN, o.max_batch = rows, o.seed = seed;
    if (mm_model_create(&m, &o) != MM_OK) return NULL;
    if (mm_model_add_dense(m, 7, 1, MM_INIT_DEFAULT, 1.0) ||
        mm_model_add_activation(m, MM_ACT_TANH) ||
        mm_model_add_dense(m, MOUT, 1, MM_INIT_DEFAULT, 1.0) || mm_model_finalize(m) ||
        mm_model_set_optimizer(m, MM_OPT_ADAM) || mm_model_set_f64(m, MM_MODEL_LR, 1e-2) ||
        mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 0.05)) {
        mm_model_free(m);
        return NULL;
    }
    return m;
}

/* Three steps of mean squared error on rows [r0, r0 + rows). */
static int model_train(mm_model *m, const model_ctx *c, int64_t r0, int64_t rows)
{
    float y[MROWS * MOUT];
    mm_tensor *tx = NULL, *ty = NULL;
    int64_t sx[2] = {rows, MIN}, sy[2] = {rows, MOUT};
    int rc = mm_tensor_wrap(&tx, (float *)c->x + r0 * MIN, 2, sx, NULL);
    if (rc == MM_OK) rc = mm_tensor_wrap(&ty, y, 2, sy, NULL);
    for (int s = 0; rc == MM_OK && s < 3; s++) {
        rc = mm_model_zero_grad(m);
        if (rc == MM_OK) rc = mm_model_forward(m, tx, ty);
        for (int64_t i = 0; rc == MM_OK && i < rows * MOUT; i++)
            y[i] = (y[i] - c->t[r0 * MOUT + i]) / (float)rows; /* d(mean 0.5 |y - t|^2) */
        if (rc == MM_OK) rc = mm_model_backward(m, ty, NULL);
        if (rc == MM_OK) rc = mm_model_step(m);
    }
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    return rc;
}

static void model_rank(int32_t rank, void *arg)
{
    model_ctx *c = (model_ctx *)arg;
    int64_t rows = MROWS / c->size;
    mm_model *m = model_make(100 + (uint64_t)rank, rows); /* rank 0's weights must win */
    mm_comm_callbacks cb;
    mm_comm *cm = NULL;
    float *w, *g;
    int64_t n;
    char path[80];
    mmt_world_callbacks(c->w, rank, &cb);
    c->rc[rank] = m ? mm_comm_create(&cm, &cb, NULL) : MM_E_INTERNAL;
    if (c->rc[rank] == MM_OK) c->rc[rank] = mm_model_set_comm(m, cm);
    if (c->rc[rank] == MM_OK) c->rc[rank] = model_train(m, c, rank * rows, rows);
    if (c->rc[rank] == MM_OK && mm_model_params(m, &w, &n) == MM_OK) {
        if (rank == 0) c->n_params = n; /* one writer: the ranks run as threads */
        memcpy(c->params[rank], w, sizeof(float) * (size_t)n);
    }
    /* a NaN gradient on the last rank: every rank refuses the step */
    if (c->rc[rank] == MM_OK && mm_model_grads(m, &g, &n) == MM_OK) {
        if (rank == c->size - 1) g[0] = NAN;
        c->nan_rc[rank] = mm_model_step(m);
    }
    /* checkpoints: rank 0 writes, the others return MM_OK without writing */
    snprintf(path, sizeof path, "%s.%d", c->path, (int)rank);
    c->save_rc[rank] = m ? mm_model_save(m, path, 0) : MM_E_INTERNAL;
    c->saved[rank] = remove(path) == 0;
    mm_model_free(m);
    mm_comm_free(cm);
}

static void test_comm_model_equals_global(void)
{
    static model_ctx c;
    static const int32_t sizes[2] = {2, 3};
    mm_model *single;
    float *w;
    int64_t n = 0;
    memset(&c, 0, sizeof c);
    mmt_fill_uniform(c.x, MROWS * MIN, 21, -1.0f, 1.0f);
    mmt_fill_uniform(c.t, MROWS * MOUT, 22, -1.0f, 1.0f);
    snprintf(c.path, sizeof c.path, "/tmp/mm_test_comm_%d", (int)getpid());
    single = model_make(100, MROWS);
    CHECK(single != NULL);
    if (!single) return;
    CHECK_OK(model_train(single, &c, 0, MROWS));
    CHECK_OK(mm_model_params(single, &w, &n));
    for (int k = 0; k < 2; k++) {
        c.size = sizes[k];
        c.w = mmt_world_create(c.size, TIMEOUT_MS);
        mmt_world_run(c.w, model_rank, &c);
        CHECK(c.n_params == n);
        for (int r = 0; r < c.size; r++) {
            CHECK_OK(c.rc[r]);
            CHECK_STATUS(c.nan_rc[r], MM_E_NUMERIC);
            CHECK_OK(c.save_rc[r]);
            CHECK(c.saved[r] == (r == 0));
            CHECK(memcmp(c.params[r], c.params[0], sizeof(float) * (size_t)n) == 0);
        }
        for (int64_t i = 0; i < n; i++) CHECK_NEAR(c.params[0][i], w[i], 1e-5, 1e-6);
        mmt_world_free(c.w);
    }
    mm_model_free(single);
    CHECK_STATUS(mm_model_set_comm(NULL, NULL), MM_E_INVALID_ARG);
}

/* The test transport is strict about the callbacks' contract (buffers never overlap), so every
 * comm_threads_* test also checks that libmm never hands a callback overlapping send and
 * receive buffers. Here the transport itself: overlapping buffers fail, apart ones pass. */
static void test_comm_transport_strict(void)
{
    mmt_world *w = mmt_world_create(1, TIMEOUT_MS);
    mm_comm_callbacks cb;
    float buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(w != NULL);
    if (!w) return;
    mmt_world_callbacks(w, 0, &cb);
    CHECK(cb.allgather(cb.ud, buf, buf + 2, 4) != 0);
    mmt_world_reset(w);
    CHECK(cb.sendrecv(cb.ud, buf + 3, 0, buf, 0, 4) != 0);
    mmt_world_reset(w);
    CHECK(cb.allgather(cb.ud, buf, buf + 4, 4) == 0);
    CHECK(buf[4] == 1.0f && buf[7] == 4.0f);
    CHECK(cb.sendrecv(cb.ud, buf, 0, buf + 4, 0, 4) == 0);
    mmt_world_free(w);
}

void suite_comm(void)
{
    mmt_run("comm_create", test_comm_create);
    mmt_run("comm_transport_strict", test_comm_transport_strict);
    mmt_run("comm_threads_wrappers", test_comm_wrappers);
    mmt_run("comm_threads_clip_equals_global", test_comm_clip);
    mmt_run("comm_threads_siglip_equals_global", test_comm_siglip);
    mmt_run("comm_threads_failing_rank_no_hang", test_comm_failures);
    mmt_run("comm_threads_shape_mismatch", test_comm_shape_mismatch);
    mmt_run("comm_threads_model_equals_global", test_comm_model_equals_global);
    mmt_run("comm_threads_a2c_equals_single", test_comm_a2c_equals_single);
    mmt_run("comm_threads_policy_reproducible", test_comm_policy_reproducible);
    mmt_run("comm_threads_policy_memory", test_comm_threads_policy_memory);
    mmt_run("comm_policy_refusals", test_comm_policy_refusals);
}
