/* SPDX-License-Identifier: MIT */
/* bench_mpi.c — data-parallel scaling of libmm under MPI (make bench-mpi).
 *
 *   mpirun -np W build/mpi/bench_mpi [global_batch] [reps]
 *
 * Strong scaling at a fixed global batch: the same work is timed on 1 rank (rank 0 alone, on
 * a sub-communicator of size 1, while the others wait) and on all W ranks, and rank 0 prints
 * the median step time of each and the efficiency T1 / (W * TW). On a machine shared with
 * other work the wall times are noisy, so the CPU time of the call itself (the slowest rank's)
 * is printed too: its efficiency measures the work the distribution adds, whatever the load.
 *   siglip: mm_loss_siglip with gradients, global batch N (default 8192) of 256-wide unit
 *           embeddings: the ring exchange of text blocks against the single-rank fused kernel.
 *   clip:   the same for mm_loss_clip (all-gather of texts, statistics exchange, all-reduce
 *           of the text gradients).
 *   model:  one data-parallel training step of a 3-layer MLP (256-1024-1024-256, Adam):
 *           forward, backward, gradient all-reduce (mm_model_set_comm) and update, global
 *           batch 1024 rows. */
#include "mm_mpi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D 256

static int g_rank;

static void die(int rc, const char *what)
{
    fprintf(stderr, "rank %d: %s failed: %s\n", g_rank, what, mm_status_str(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) die(rc_, #call);                                                         \
    } while (0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Median wall and CPU seconds of reps timed calls. */
typedef struct timing {
    double *wall, *cpu;
} timing;

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void unit_rows(float *v, int64_t n, int64_t d, uint32_t seed)
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

static mm_tensor *wrap(float *p, int64_t r, int64_t c)
{
    int64_t shape[2] = {r, c};
    mm_tensor *t = NULL;
    TRY(mm_tensor_wrap(&t, p, 2, shape, NULL));
    return t;
}

/* Median seconds of one loss call with gradients on comm (b local pairs). */
static double time_loss(MPI_Comm comm, int32_t kind, int64_t b, int reps, double *cpu)
{
    mm_comm *c = NULL;
    mm_loss *h = NULL;
    mm_loss_opts o;
    int rank;
    float *x = malloc((size_t)(b * D) * 4), *y = malloc((size_t)(b * D) * 4);
    float *dx = malloc((size_t)(b * D) * 4), *dy = malloc((size_t)(b * D) * 4);
    mm_tensor *tx = wrap(x, b, D), *ty = wrap(y, b, D), *tdx = wrap(dx, b, D),
              *tdy = wrap(dy, b, D);
    double *t = malloc(sizeof(double) * (size_t)reps), *u = malloc(sizeof(double) * (size_t)reps);
    double l, med;
    MPI_Comm_rank(comm, &rank);
    unit_rows(x, b, D, 11u + (uint32_t)rank);
    unit_rows(y, b, D, 77u + (uint32_t)rank);
    TRY(mm_loss_opts_init(&o, kind));
    o.max_batch = b;
    o.max_dim = D;
    TRY(mm_loss_create(&h, &o));
    TRY(mm_comm_create_mpi(&c, comm, NULL));
    TRY(mm_loss_set_comm(h, c, 0));
    for (int r = -1; r < reps; r++) { /* one warm-up call */
        double t0, c0;
        MPI_Barrier(comm);
        t0 = MPI_Wtime();
        c0 = cpu_now();
        TRY(kind == MM_LOSS_CLIP ? mm_loss_clip(h, tx, ty, &l, tdx, tdy)
                                 : mm_loss_siglip(h, tx, ty, &l, tdx, tdy));
        if (r >= 0) u[r] = cpu_now() - c0;
        MPI_Barrier(comm);
        if (r >= 0) t[r] = MPI_Wtime() - t0;
    }
    med = median(t, reps);
    *cpu = median(u, reps);
    free(u);
    mm_loss_free(h);
    mm_comm_free(c);
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tdx), mm_tensor_free(tdy);
    free(x), free(y), free(dx), free(dy), free(t);
    return med;
}

/* Median seconds of one data-parallel model step (b local rows). */
static double time_model(MPI_Comm comm, int64_t b, int reps, double *cpu)
{
    static const int64_t widths[3] = {1024, 1024, D};
    mm_comm *c = NULL;
    mm_model *m = NULL;
    mm_model_opts o;
    float *x = malloc((size_t)(b * D) * 4), *y = malloc((size_t)(b * D) * 4);
    mm_tensor *tx = wrap(x, b, D), *ty = wrap(y, b, D);
    double *t = malloc(sizeof(double) * (size_t)reps), *u = malloc(sizeof(double) * (size_t)reps);
    double med;
    unit_rows(x, b, D, 5u);
    TRY(mm_model_opts_init(&o));
    o.input_dim = D;
    o.max_batch = b;
    o.seed = 1;
    TRY(mm_model_create(&m, &o));
    for (int i = 0; i < 3; i++) {
        TRY(mm_model_add_dense(m, widths[i], 1, MM_INIT_DEFAULT, 1.0));
        if (i < 2) TRY(mm_model_add_activation(m, MM_ACT_GELU));
    }
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAM));
    TRY(mm_comm_create_mpi(&c, comm, NULL));
    TRY(mm_model_set_comm(m, c));
    for (int r = -1; r < reps; r++) {
        double t0, c0;
        MPI_Barrier(comm);
        t0 = MPI_Wtime();
        c0 = cpu_now();
        TRY(mm_model_zero_grad(m));
        TRY(mm_model_forward(m, tx, ty));
        for (int64_t i = 0; i < b * D; i++) y[i] *= 1.0f / (float)b; /* d(mean |y|^2 / 2) */
        TRY(mm_model_backward(m, ty, NULL));
        TRY(mm_model_step(m));
        if (r >= 0) u[r] = cpu_now() - c0;
        MPI_Barrier(comm);
        if (r >= 0) t[r] = MPI_Wtime() - t0;
    }
    med = median(t, reps);
    *cpu = median(u, reps);
    free(u);
    mm_model_free(m);
    mm_comm_free(c);
    mm_tensor_free(tx), mm_tensor_free(ty);
    free(x), free(y), free(t);
    return med;
}

static double loss_or_model(MPI_Comm comm, int32_t kind, int64_t b, int reps, double *cpu)
{
    if (kind == 0) return time_model(comm, b, reps, cpu);
    return time_loss(comm, kind, b, reps, cpu);
}

/* Times `kind` on rank 0 alone and on all ranks; rank 0 prints one line. */
static void scale(const char *name, int32_t kind, int64_t global, int reps, int w)
{
    MPI_Comm solo;
    double t1 = 0.0, tw, c1 = 0.0, cw, cmax = 0.0;
    MPI_Comm_split(MPI_COMM_WORLD, g_rank == 0 ? 0 : MPI_UNDEFINED, 0, &solo);
    if (g_rank == 0) t1 = loss_or_model(solo, kind, global, reps, &c1);
    if (solo != MPI_COMM_NULL) MPI_Comm_free(&solo);
    MPI_Barrier(MPI_COMM_WORLD);
    tw = loss_or_model(MPI_COMM_WORLD, kind, global / w, reps, &cw);
    MPI_Reduce(&cw, &cmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (g_rank == 0)
        printf("%-7s N %5lld | wall: 1 rank %8.1f ms, %d ranks %8.1f ms, efficiency %5.1f%% | "
               "cpu: 1 rank %8.1f ms, %d ranks %8.1f ms/rank, efficiency %5.1f%%\n",
               name, (long long)global, 1e3 * t1, w, 1e3 * tw, 100.0 * t1 / (w * tw), 1e3 * c1, w,
               1e3 * cmax, 100.0 * c1 / (w * cmax));
}

int main(int argc, char **argv)
{
    int w, reps;
    int64_t n;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w);
    n = argc > 1 ? atoll(argv[1]) : 8192;
    reps = argc > 2 ? atoi(argv[2]) : 3;
    if (n % w || reps < 1) {
        if (g_rank == 0)
            fprintf(stderr, "usage: bench_mpi [global batch, a multiple of W] [reps]\n");
        MPI_Finalize();
        return 2;
    }
    if (g_rank == 0)
        printf("bench-mpi: %d ranks, %s, median of %d (strong scaling, fixed global batch)\n", w,
               mm_build_info(), reps);
    scale("model", 0, 1024, reps, w);
    scale("siglip", MM_LOSS_SIGLIP, n, reps, w);
    scale("clip", MM_LOSS_CLIP, n, reps, w);
    MPI_Finalize();
    return 0;
}
