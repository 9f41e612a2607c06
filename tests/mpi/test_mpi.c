/* SPDX-License-Identifier: MIT */
/* test_mpi.c — libmm_mpi under mpirun (make check-mpi): the MPI communicator gives the same
 * distributed CLIP / SigLIP results and data-parallel model steps as one process on the global
 * batch, a rank with bad input
 * makes every rank return, and a rank that arrives too late makes the others time out instead
 * of hanging. Prints "N passed, N failed" on rank 0; exit status 1 on any failure. */
#include "mm_mpi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_fail, g_pass, g_rank;

#define EXPECT(c, ...)                                                                             \
    do {                                                                                           \
        if (c) {                                                                                   \
            g_pass++;                                                                              \
        } else {                                                                                   \
            g_fail++;                                                                              \
            printf("rank %d FAIL line %d: ", g_rank, __LINE__);                                    \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static int near(double a, double b, double rtol, double atol)
{
    return fabs(a - b) <= atol + rtol * fabs(b);
}

/* Deterministic unit rows, the same on every rank. */
static void features(float *v, int64_t n, int64_t d, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < d; j++) {
            seed = seed * 1664525u + 1013904223u;
            v[i * d + j] = (float)((double)(seed >> 8) / 16777216.0 - 0.5);
            s += (double)v[i * d + j] * v[i * d + j];
        }
        for (int64_t j = 0; j < d; j++) v[i * d + j] = (float)(v[i * d + j] / sqrt(s));
    }
}

static mm_loss *make_loss(int32_t kind, int64_t b, int64_t d)
{
    mm_loss_opts o;
    mm_loss *h = NULL;
    if (mm_loss_opts_init(&o, kind) != MM_OK) return NULL;
    o.max_batch = b;
    o.max_dim = d;
    o.tile = 16;
    return mm_loss_create(&h, &o) == MM_OK ? h : NULL;
}

static int run_loss(mm_loss *h, int32_t kind, float *x, float *y, float *dx, float *dy, int64_t b,
                    int64_t d, double *loss)
{
    int64_t shape[2] = {b, d};
    mm_tensor *tx = NULL, *ty = NULL, *tdx = NULL, *tdy = NULL;
    int rc = MM_E_NOMEM;
    if (mm_tensor_wrap(&tx, x, 2, shape, NULL) == MM_OK &&
        mm_tensor_wrap(&ty, y, 2, shape, NULL) == MM_OK &&
        mm_tensor_wrap(&tdx, dx, 2, shape, NULL) == MM_OK &&
        mm_tensor_wrap(&tdy, dy, 2, shape, NULL) == MM_OK)
        rc = kind == MM_LOSS_CLIP ? mm_loss_clip(h, tx, ty, loss, tdx, tdy)
                                  : mm_loss_siglip(h, tx, ty, loss, tdx, tdy);
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    mm_tensor_free(tdx);
    mm_tensor_free(tdy);
    return rc;
}

static void test_loss(mm_comm *c, int32_t kind)
{
    int32_t me = mm_comm_rank(c), w = mm_comm_size(c);
    int64_t b = 40, d = 24, n = b * w;
    float *x = malloc((size_t)(n * d) * 4), *y = malloc((size_t)(n * d) * 4);
    float *rdx = malloc((size_t)(n * d) * 4), *rdy = malloc((size_t)(n * d) * 4);
    float *dx = malloc((size_t)(b * d) * 4), *dy = malloc((size_t)(b * d) * 4);
    mm_loss *ref = make_loss(kind, n, d), *h = make_loss(kind, b, d);
    double rl = 0.0, l = 0.0, rdt = 0.0, dt = 0.0;
    features(x, n, d, 7);
    features(y, n, d, 99);
    EXPECT(ref && h, "create");
    EXPECT(run_loss(ref, kind, x, y, rdx, rdy, n, d, &rl) == MM_OK, "reference");
    EXPECT(mm_loss_set_comm(h, c, 0) == MM_OK, "set_comm");
    EXPECT(run_loss(h, kind, x + me * b * d, y + me * b * d, dx, dy, b, d, &l) == MM_OK,
           "distributed: %s", mm_loss_errmsg(h));
    EXPECT(mm_loss_get_f64(ref, MM_LOSS_STAT_DLOGIT_SCALE, &rdt) == MM_OK, "stat");
    EXPECT(mm_loss_get_f64(h, MM_LOSS_STAT_DLOGIT_SCALE, &dt) == MM_OK, "stat");
    EXPECT(near(l, rl, 1e-5, 1e-6), "kind %d loss %.9g vs %.9g", (int)kind, l, rl);
    EXPECT(near(dt, rdt, 1e-4, 1e-6), "kind %d dt %.9g vs %.9g", (int)kind, dt, rdt);
    for (int64_t i = 0; i < b * d; i++) {
        if (!near(dx[i], w * rdx[me * b * d + i], 2e-4, 2e-6) ||
            !near(dy[i], w * rdy[me * b * d + i], 2e-4, 2e-6)) {
            EXPECT(0, "kind %d gradient element %lld", (int)kind, (long long)i);
            break;
        }
    }
    /* rank 1 passes NaN: it gets MM_E_NUMERIC, everybody else MM_E_STATE */
    if (w > 1) {
        float keep = x[me * b * d];
        int rc;
        if (me == 1) x[me * b * d] = NAN;
        rc = run_loss(h, kind, x + me * b * d, y + me * b * d, dx, dy, b, d, &l);
        EXPECT(rc == (me == 1 ? MM_E_NUMERIC : MM_E_STATE), "bad rank: got %s", mm_status_name(rc));
        x[me * b * d] = keep;
        EXPECT(run_loss(h, kind, x + me * b * d, y + me * b * d, dx, dy, b, d, &l) == MM_OK,
               "usable after a refused call");
    }
    mm_loss_free(ref);
    mm_loss_free(h);
    free(x), free(y), free(rdx), free(rdy), free(dx), free(dy);
}

/* Data-parallel model: W ranks with 16 rows each take the steps of one process with 16 W rows
 * (each rank also computes that reference itself). Rank 1 starts from other weights, which the
 * attach overwrites with rank 0's. */
static mm_model *small_model(uint64_t seed, int64_t rows)
{
    mm_model_opts o;
    mm_model *m = NULL;
    if (mm_model_opts_init(&o) != MM_OK) return NULL;
    o.input_dim = 6, o.max_batch = rows, o.seed = seed;
    if (mm_model_create(&m, &o) != MM_OK) return NULL;
    if (mm_model_add_dense(m, 16, 1, MM_INIT_DEFAULT, 1.0) ||
        mm_model_add_activation(m, MM_ACT_GELU) ||
        mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0) || mm_model_finalize(m) ||
        mm_model_set_optimizer(m, MM_OPT_ADAMW) ||
        mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 0.1)) {
        mm_model_free(m);
        return NULL;
    }
    return m;
}

static int train_rows(mm_model *m, const float *x, const float *t, int64_t rows)
{
    int64_t sx[2] = {rows, 6}, sy[2] = {rows, 2};
    float *y = malloc((size_t)(rows * 2) * sizeof(float));
    mm_tensor *tx = NULL, *ty = NULL;
    int rc = y ? mm_tensor_wrap(&tx, (float *)x, 2, sx, NULL) : MM_E_NOMEM;
    if (rc == MM_OK) rc = mm_tensor_wrap(&ty, y, 2, sy, NULL);
    for (int s = 0; rc == MM_OK && s < 4; s++) {
        rc = mm_model_zero_grad(m);
        if (rc == MM_OK) rc = mm_model_forward(m, tx, ty);
        for (int64_t i = 0; rc == MM_OK && i < rows * 2; i++) y[i] = (y[i] - t[i]) / (float)rows;
        if (rc == MM_OK) rc = mm_model_backward(m, ty, NULL);
        if (rc == MM_OK) rc = mm_model_step(m);
    }
    mm_tensor_free(tx);
    mm_tensor_free(ty);
    free(y);
    return rc;
}

static void test_model(mm_comm *c)
{
    int32_t me = mm_comm_rank(c), w = mm_comm_size(c);
    int64_t b = 16, n = b * w, np = 0, np2 = 0;
    float *x = malloc((size_t)(n * 6) * 4), *t = malloc((size_t)(n * 2) * 4), *p1, *p2;
    mm_model *ref = small_model(3, n), *m = small_model(3 + (uint64_t)me, b);
    features(x, n, 6, 5);
    features(t, n, 2, 6);
    EXPECT(ref && m, "create");
    EXPECT(train_rows(ref, x, t, n) == MM_OK, "reference");
    EXPECT(mm_model_set_comm(m, c) == MM_OK, "set_comm: %s", mm_model_errmsg(m));
    EXPECT(train_rows(m, x + me * b * 6, t + me * b * 2, b) == MM_OK, "distributed: %s",
           mm_model_errmsg(m));
    EXPECT(mm_model_params(ref, &p1, &np) == MM_OK && mm_model_params(m, &p2, &np2) == MM_OK &&
               np == np2,
           "params");
    for (int64_t i = 0; i < np; i++)
        if (!near(p2[i], p1[i], 1e-5, 1e-6)) {
            EXPECT(0, "model parameter %lld: %.9g vs %.9g", (long long)i, p2[i], p1[i]);
            break;
        }
    mm_model_free(ref);
    mm_model_free(m);
    free(x), free(t);
}

/* Rank 1 arrives 3 s late on a communicator with a 1 s timeout: rank 0 returns MM_E_IO after
 * about 1 s instead of waiting; rank 1 then finds nobody and times out too. */
static void test_timeout(void)
{
    mm_comm *c = NULL;
    mm_loss *h = make_loss(MM_LOSS_SIGLIP, 8, 4);
    float x[32], dx[32], dy[32];
    double l, t0;
    int rc;
    struct timespec ts = {3, 0};
    features(x, 8, 4, 3);
    EXPECT(mm_comm_create_mpi_timeout(&c, MPI_COMM_WORLD, 1.0, NULL) == MM_OK, "create");
    EXPECT(mm_loss_set_comm(h, c, 0) == MM_OK, "set_comm");
    if (g_rank == 1) nanosleep(&ts, NULL);
    t0 = MPI_Wtime();
    rc = run_loss(h, MM_LOSS_SIGLIP, x, x, dx, dy, 8, 4, &l);
    EXPECT(rc == MM_E_IO, "late peer: got %s", mm_status_name(rc));
    EXPECT(MPI_Wtime() - t0 < 2.5, "returned after %.1f s", MPI_Wtime() - t0);
    rc = run_loss(h, MM_LOSS_SIGLIP, x, x, dx, dy, 8, 4, &l);
    EXPECT(rc == MM_E_STATE, "poisoned: got %s", mm_status_name(rc));
    mm_loss_free(h);
    mm_comm_free(c);
}

int main(int argc, char **argv)
{
    mm_comm *c = NULL;
    int size, total[2];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    EXPECT(mm_comm_create_mpi(NULL, MPI_COMM_WORLD, NULL) == MM_E_INVALID_ARG, "NULL out");
    EXPECT(mm_comm_create_mpi_timeout(&c, MPI_COMM_WORLD, -1.0, NULL) == MM_E_RANGE, "timeout");
    EXPECT(mm_comm_create_mpi(&c, MPI_COMM_WORLD, NULL) == MM_OK, "create");
    EXPECT(mm_comm_rank(c) == g_rank && mm_comm_size(c) == size, "rank/size");
    test_loss(c, MM_LOSS_CLIP);
    test_loss(c, MM_LOSS_SIGLIP);
    test_model(c);
    mm_comm_free(c);
    if (size == 2) test_timeout();
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Allreduce((int[2]){g_pass, g_fail}, total, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0)
        printf("test_mpi (%d ranks): %d passed, %d failed\n", size, total[0], total[1]);
    MPI_Finalize();
    return total[1] ? 1 : 0;
}
