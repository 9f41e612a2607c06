/* SPDX-License-Identifier: MIT */
/*
 * bench_gemm.c — SGEMM: libmm's native kernel (mmi_gemm_native, never OpenBLAS) against
 * OpenBLAS with the same thread count, and against single-threaded PyTorch for a few shapes.
 * Square shapes 64..1024, the other transposes at 512, and the MLP shapes of a 256x256 dense
 * layer at batch 1, 32 and 256: forward y = x W^T (NT), backward dX = dY W (NN) and
 * dW += dY^T X (TN, beta 1 as gradients accumulate). Single-thread rows are process CPU time;
 * the 2-thread rows are wall-clock (CPU time would add up both threads). Each row's case name
 * ends with the kernel set that ran (avx512, avx2 or portable; MM_SIMD picks it) and libmm's
 * fraction of the FMA peak of the best ISA the machine has (bench/peak.c, one core per thread),
 * e.g. "[avx2 ran, 45% of avx512 peak]" on an AVX-512 machine with MM_SIMD=avx2: a row shows
 * what the machine could do, not only what the chosen kernel set could.
 */
#include "bench.h"

#include "kernels/gemm/mmi_gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct gemm_case {
    int ta, tb;
    int64_t m, n, k;
    float beta;
    float *a, *b, *c;
    void *ws;
    mmi_pool *pool;
} gemm_case;

static void run_libmm(void *ctx)
{
    gemm_case *g = (gemm_case *)ctx;
    mmi_gemm_native(g->ta, g->tb, g->m, g->n, g->k, 1.0f, g->a, g->ta ? g->m : g->k, g->b,
                    g->tb ? g->k : g->n, g->beta, g->c, g->n, g->ws, g->pool);
}

#ifdef BENCH_HAVE_OPENBLAS
static void run_openblas(void *ctx)
{
    gemm_case *g = (gemm_case *)ctx;
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                (blasint)g->m, (blasint)g->n, (blasint)g->k, 1.0f, g->a,
                (blasint)(g->ta ? g->m : g->k), g->b, (blasint)(g->tb ? g->k : g->n), g->beta, g->c,
                (blasint)g->n);
}
#endif

typedef struct row_spec {
    const char *name;
    int ta, tb;
    int64_t m, n, k;
    float beta;
    int threads;
    int torch; /* also time PyTorch (single thread) */
} row_spec;

static const row_spec g_rows[] = {
    {"sgemm NN", 0, 0, 64, 64, 64, 0.0f, 1, 0},
    {"sgemm NN", 0, 0, 128, 128, 128, 0.0f, 1, 0},
    {"sgemm NN", 0, 0, 256, 256, 256, 0.0f, 1, 0},
    {"sgemm NN", 0, 0, 512, 512, 512, 0.0f, 1, 0},
    {"sgemm NN", 0, 0, 1024, 1024, 1024, 0.0f, 1, 1},
    {"sgemm NT", 0, 1, 512, 512, 512, 0.0f, 1, 0},
    {"sgemm TN", 1, 0, 512, 512, 512, 0.0f, 1, 0},
    {"sgemm TT", 1, 1, 512, 512, 512, 0.0f, 1, 0},
    {"mlp fwd x.W^T (NT)", 0, 1, 1, 256, 256, 0.0f, 1, 1},
    {"mlp fwd x.W^T (NT)", 0, 1, 32, 256, 256, 0.0f, 1, 1},
    {"mlp fwd x.W^T (NT)", 0, 1, 256, 256, 256, 0.0f, 1, 1},
    {"mlp bwd dY.W (NN)", 0, 0, 1, 256, 256, 0.0f, 1, 0},
    {"mlp bwd dY.W (NN)", 0, 0, 32, 256, 256, 0.0f, 1, 0},
    {"mlp bwd dY.W (NN)", 0, 0, 256, 256, 256, 0.0f, 1, 0},
    {"mlp bwd dY^T.X (TN)", 1, 0, 256, 256, 1, 1.0f, 1, 0},
    {"mlp bwd dY^T.X (TN)", 1, 0, 256, 256, 32, 1.0f, 1, 0},
    {"mlp bwd dY^T.X (TN)", 1, 0, 256, 256, 256, 1.0f, 1, 0},
    {"sgemm NN 2 threads", 0, 0, 512, 512, 512, 0.0f, 2, 0},
    {"sgemm NN 2 threads", 0, 0, 1024, 1024, 1024, 0.0f, 2, 0},
    {"mlp fwd 2 threads", 0, 1, 256, 256, 256, 0.0f, 2, 0},
};
#define N_ROWS (sizeof g_rows / sizeof g_rows[0])

/* One PyTorch process for every row marked torch (its import costs seconds). */
static void torch_times(double *out, double *out_def)
{
    char args[2048];
    double got[N_ROWS], got_def[N_ROWS];
    int len = snprintf(args, sizeof args, "7");
    int want = 0, n;
    for (size_t i = 0; i < N_ROWS; i++) {
        out[i] = out_def[i] = -1.0;
        if (!g_rows[i].torch) continue;
        len += snprintf(args + len, sizeof args - (size_t)len, " %d %d %lld %lld %lld %g",
                        g_rows[i].ta, g_rows[i].tb, (long long)g_rows[i].m, (long long)g_rows[i].n,
                        (long long)g_rows[i].k, (double)g_rows[i].beta);
        want++;
    }
    n = bench_peer_torch("peer_gemm.py", args, got, got_def, want);
    (void)n;
    for (size_t i = 0, j = 0; i < N_ROWS; i++)
        if (g_rows[i].torch) out[i] = got[j], out_def[i] = got_def[j++];
}

/* The kernel set mmi_gemm_native runs on this machine. */
static const char *gemm_set(void)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    if (u != NULL && u == mmi_gemm_ukr_avx512()) return "avx512";
    if (u != NULL && u == mmi_gemm_ukr_avx2()) return "avx2";
    return "portable";
}

/* "name [set ran, NN% of isa peak]": the set that ran and the fraction of the best ISA's peak
 * over threads cores. */
static void label_row(char *out, size_t n, const row_spec *r, double flops, double ns)
{
    const bench_peak *p = bench_peak_probe();
    if (p->best_gflops > 0 && ns > 0)
        snprintf(out, n, "%s [%s ran, %.0f%% of %s peak]", r->name, gemm_set(),
                 100.0 * flops / ns / (p->best_gflops * r->threads), p->best_isa);
    else
        snprintf(out, n, "%s [%s ran]", r->name, gemm_set());
}

static void bench_one(const row_spec *r, mmi_pool *pool2, double torch_ns, double torch_def)
{
#ifdef BENCH_HAVE_OPENBLAS
    const struct timespec settle = {0, 300000000};
#endif
    gemm_case g;
    char shape[48], name[96];
    double flops = 2.0 * (double)r->m * (double)r->n * (double)r->k, mine, peer = -1.0;
    int reps = flops > 1e8 ? 7 : 15;
    g.ta = r->ta;
    g.tb = r->tb;
    g.m = r->m;
    g.n = r->n;
    g.k = r->k;
    g.beta = r->beta;
    g.a = bench_alloc_floats((size_t)(r->m * r->k), 1);
    g.b = bench_alloc_floats((size_t)(r->k * r->n), 2);
    g.c = bench_alloc_floats((size_t)(r->m * r->n), 3);
    g.ws = aligned_alloc(64, mmi_gemm_ws_size(r->threads));
    g.pool = r->threads > 1 ? pool2 : NULL;
    snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)r->m, (long long)r->n,
             (long long)r->k);
    if (!g.a || !g.b || !g.c || !g.ws || (r->threads > 1 && !pool2)) {
        bench_row(r->name, shape, flops, -1.0, "skipped", -1.0, BENCH_NA);
    } else {
#ifdef BENCH_HAVE_OPENBLAS
        if (r->threads == 1) {
            bench_pair_median_ns(run_libmm, &g, run_openblas, &g, reps, &mine, &peer);
        } else {
            /* OpenBLAS workers spin for a while after each job and would take a core from
             * libmm's threads if the samples alternated: time libmm first, then OpenBLAS,
             * then let its workers fall asleep before the next case. */
            mine = bench_median_wall_ns(run_libmm, &g, reps);
            openblas_set_num_threads(r->threads);
            peer = bench_median_wall_ns(run_openblas, &g, reps);
            openblas_set_num_threads(1);
            nanosleep(&settle, NULL);
        }
#else
        mine = r->threads > 1 ? bench_median_wall_ns(run_libmm, &g, reps)
                              : bench_median_ns(run_libmm, &g, reps);
#endif
        label_row(name, sizeof name, r, flops, mine);
        bench_row(name, shape, flops, mine, r->threads > 1 ? "OpenBLAS 2T (wall)" : "OpenBLAS",
                  peer, BENCH_NA);
        if (r->torch) bench_row(name, shape, flops, mine, "torch 1T", torch_ns, torch_def);
    }
    free(g.a);
    free(g.b);
    free(g.c);
    free(g.ws);
}

/* Thread scaling of the MLP shapes: 2 threads against 1, wall clock and process CPU time. The
 * ratio column is the speed-up (1-thread wall / 2-thread wall); the note gives CPU times. */
static void bench_scaling(mmi_pool *pool2)
{
    static const int tr[3][2] = {{0, 1}, {0, 0}, {1, 0}};
    static const char *const names[3] = {"mlp fwd NT 2T vs 1T", "mlp bwd NN 2T vs 1T",
                                         "mlp bwd TN 2T vs 1T"};
    for (int i = 0; i < 3 && pool2; i++) {
        gemm_case g;
        double w1, c1, w2, c2, flops = 2.0 * 256 * 256 * 256;
        memset(&g, 0, sizeof g);
        g.ta = tr[i][0], g.tb = tr[i][1], g.m = g.n = g.k = 256;
        g.a = bench_alloc_floats(256 * 256, 1);
        g.b = bench_alloc_floats(256 * 256, 2);
        g.c = bench_alloc_floats(256 * 256, 3);
        g.ws = aligned_alloc(64, mmi_gemm_ws_size(2));
        if (g.a && g.b && g.c && g.ws) {
            bench_median_wall_cpu_ns(run_libmm, &g, 7, &w1, &c1);
            g.pool = pool2;
            bench_median_wall_cpu_ns(run_libmm, &g, 7, &w2, &c2);
            bench_row(names[i], "256x256x256", flops, w2, "libmm 1T (wall)", w1, BENCH_NA);
            bench_note("%s: wall 1T %.1f us, 2T %.1f us (x%.2f); CPU 1T %.1f us, 2T %.1f us "
                       "(both threads)",
                       names[i], w1 / 1e3, w2 / 1e3, w1 / w2, c1 / 1e3, c2 / 1e3);
        }
        free(g.a);
        free(g.b);
        free(g.c);
        free(g.ws);
    }
}

void bench_gemm(void)
{
    double torch_ns[N_ROWS], torch_def[N_ROWS];
    mmi_alloc al;
    mmi_pool *pool2 = NULL;
#ifdef BENCH_HAVE_OPENBLAS
    openblas_set_num_threads(1);
#endif
    torch_times(torch_ns, torch_def);
    if (mmi_alloc_init(&al, NULL, NULL) != MM_OK || mmi_pool_create(&pool2, 2, &al, NULL) != MM_OK)
        pool2 = NULL;
    for (size_t i = 0; i < N_ROWS; i++) bench_one(&g_rows[i], pool2, torch_ns[i], torch_def[i]);
    bench_scaling(pool2);
    mmi_pool_free(pool2);
}
