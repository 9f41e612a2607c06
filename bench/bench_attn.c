/*
 * bench_attn.c — mm_attn forward + backward for each kind at B = 1, H = 8, d = dv = 64 and
 * N in {512, 2048, 8192}, against PyTorch (bench/peer_torch_attn.py: masked softmax, the
 * cumulative-sum form of causal linear attention, ...) with the same thread count (1). PyTorch
 * is skipped where its materialising form is too slow or too large (printed as n/a). Also:
 * the causal linear kernel alone against an FMA-peak probe (ratio = fraction of peak), and the
 * per-token latency of mm_attn_step at positions 10, 1000 and 10000.
 *
 * Times are process CPU time (CLOCK_PROCESS_CPUTIME_ID here, time.process_time_ns in the
 * peer), medians of a few calls: every case is single-threaded on both sides, and CPU time is
 * what stays comparable on a shared machine whose other processes take the cores in turns
 * (wall-clock medians there moved by 2-6x between runs).
 */
#include "bench.h"

#include "kernels/attn/mmi_attn_kernels.h"
#include "mm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BH = 8, DH = 64 };

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median CPU time of one fn(ctx) call over reps samples (after one warm-up call); calls shorter
 * than 1 ms are repeated inside a sample. */
static double cpu_median_ns(void (*fn)(void *), void *ctx, int reps)
{
    double t[15], once;
    int64_t inner;
    if (reps > 15) reps = 15;
    once = cpu_ns();
    fn(ctx);
    once = cpu_ns() - once;
    inner = once < 1e6 ? (int64_t)(1e6 / (once > 100 ? once : 100)) + 1 : 1;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_ns();
        for (int64_t i = 0; i < inner; i++) fn(ctx);
        t[r] = (cpu_ns() - t0) / (double)inner;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

typedef struct attn_case {
    mm_attn *h;
    mm_tensor *q, *k, *v, *o, *dq, *dk, *dv;
} attn_case;

static const struct {
    const char *name, *peer;
    int32_t kind;
} g_kinds[] = {
    {"attn softmax causal", "softmax_causal", MM_ATTN_SOFTMAX},
    {"attn linear causal", "linear_causal", MM_ATTN_LINEAR},
    {"attn performer causal", "performer", MM_ATTN_PERFORMER},
    {"attn relu2 causal C256", "relu2_causal", MM_ATTN_RELU2},
    {"attn sparse local w128", "sparse_local", MM_ATTN_SPARSE},
    {"attn gated retnet", "gated_retnet", MM_ATTN_GATED},
};
static const int64_t g_ns[3] = {512, 2048, 8192};

static mm_tensor *tensor4(int64_t n, uint64_t seed)
{
    int64_t s[4] = {1, BH, n, DH};
    mm_tensor *t = NULL;
    float *x = bench_alloc_floats((size_t)(BH * n * DH), seed);
    if (mm_tensor_create(&t, 4, s, NULL) != MM_OK || !x) exit(1);
    for (int64_t i = 0; i < BH * n * DH; i++) mm_tensor_data(t)[i] = 0.5f * x[i];
    free(x);
    return t;
}

static int open_case(attn_case *c, int32_t kind, int64_t n)
{
    mm_attn_opts o;
    if (mm_attn_opts_init(&o, kind) != MM_OK) return -1;
    o.d_head = DH, o.n_heads = BH, o.max_seq = n, o.causal = 1;
    o.gate = MM_GATE_RETNET;
    if (mm_attn_create(&c->h, &o) != MM_OK) return -1;
    c->q = tensor4(n, 1), c->k = tensor4(n, 2), c->v = tensor4(n, 3), c->o = tensor4(n, 4);
    c->dq = tensor4(n, 5), c->dk = tensor4(n, 6), c->dv = tensor4(n, 7);
    return 0;
}

static void close_case(attn_case *c)
{
    mm_attn_free(c->h);
    mm_tensor_free(c->q), mm_tensor_free(c->k), mm_tensor_free(c->v), mm_tensor_free(c->o);
    mm_tensor_free(c->dq), mm_tensor_free(c->dk), mm_tensor_free(c->dv);
}

static void run_fwd_bwd(void *ctx)
{
    attn_case *c = (attn_case *)ctx;
    if (mm_attn_forward(c->h, c->q, c->k, c->v, c->o) != MM_OK ||
        mm_attn_backward(c->h, c->o, c->dq, c->dk, c->dv, NULL) != MM_OK)
        exit(1);
}

/* ---- the causal linear kernel against the FMA peak ------------------------------------------ */
typedef struct lin_kernel {
    float *fq, *fk, *v, *o, *den, *ws;
    int64_t n;
} lin_kernel;

static void run_lin_kernel(void *ctx)
{
    lin_kernel *l = (lin_kernel *)ctx;
    mmi_attn_dims s = {l->n, l->n, DH, DH, 1.0f, 1, 0, 0, 64};
    for (int64_t b = 0; b < BH; b++)
        mmi_attn_linear_fwd(&s, 1, 1e-6, l->fq + b * l->n * DH, l->fk + b * l->n * DH,
                            l->v + b * l->n * DH, l->o + b * l->n * DH, l->den + b * l->n, l->ws);
}

/* 12 independent 8-wide FMA chains: what one core's FMA units can do (flops = 16 * 12 * iters). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static void fma_peak(void *ctx)
{
    __m256 a[12], m = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    float out[8];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < 100000; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, b);
    for (int i = 1; i < 12; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    _mm256_storeu_ps(out, a[0]);
    *(volatile float *)ctx = out[0];
}
#define HAVE_PEAK 1
#endif

static void bench_lin_kernel(void)
{
    const int64_t n = 2048;
    lin_kernel l;
    double t, flops = 4.0 * BH * (double)n * DH * DH;
    l.n = n;
    l.fq = bench_alloc_floats((size_t)(BH * n * DH), 11), l.fk = bench_alloc_floats((size_t)(BH * n * DH), 12);
    l.v = bench_alloc_floats((size_t)(BH * n * DH), 13), l.o = bench_alloc_floats((size_t)(BH * n * DH), 14);
    l.den = bench_alloc_floats((size_t)(BH * n), 15);
    l.ws = bench_alloc_floats(mmi_attn_linear_ws_floats(DH, DH) + 64, 16);
    if (!l.fq || !l.fk || !l.v || !l.o || !l.den || !l.ws) exit(1);
    for (int64_t i = 0; i < BH * n * DH; i++) l.fq[i] += 1.0f, l.fk[i] += 1.0f; /* positive */
    t = cpu_median_ns(run_lin_kernel, &l, 9);
#ifdef HAVE_PEAK
    {
        volatile float sink = 0;
        const double pk = cpu_median_ns(fma_peak, (void *)&sink, 9);
        /* peer column: the FMA probe's time for the same flops; ratio = fraction of peak */
        bench_row("linear causal kernel", "BH8 N2048 d64", flops, t, "FMA peak",
                  pk * flops / (16.0 * 12 * 100000));
    }
#else
    bench_row("linear causal kernel", "BH8 N2048 d64", flops, t, "FMA peak", -1);
#endif
    free(l.fq), free(l.fk), free(l.v), free(l.o), free(l.den), free(l.ws);
}

/* ---- streaming latency ----------------------------------------------------------------------- */
static void bench_step(int32_t kind, const char *name)
{
    const int64_t at[3] = {10, 1000, 10000};
    int64_t s3[3] = {1, BH, DH}, pos = 0;
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *x = NULL, *y = NULL;
    if (mm_attn_opts_init(&o, kind) != MM_OK) return;
    o.d_head = DH, o.n_heads = BH, o.causal = 1, o.max_seq = 10016;
    if (mm_attn_create(&h, &o) != MM_OK || mm_tensor_create(&x, 3, s3, NULL) != MM_OK ||
        mm_tensor_create(&y, 3, s3, NULL) != MM_OK)
        exit(1);
    for (int64_t i = 0; i < BH * DH; i++) mm_tensor_data(x)[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int p = 0; p < 3; p++) {
        double t0, t;
        char shape[32];
        if (kind == MM_ATTN_SOFTMAX && at[p] > 1000) break; /* O(position): 10000 is slow */
        while (pos < at[p])
            if (mm_attn_step(h, x, x, x, NULL, y) != MM_OK) exit(1);
            else pos++;
        t0 = cpu_ns();
        for (int r = 0; r < 16; r++)
            if (mm_attn_step(h, x, x, x, NULL, y) != MM_OK) exit(1);
        t = (cpu_ns() - t0) / 16;
        pos += 16;
        snprintf(shape, sizeof shape, "BH8 d64 pos %lld", (long long)at[p]);
        bench_row(name, shape, 4.0 * BH * DH * DH, t, NULL, -1);
    }
    mm_attn_free(h);
    mm_tensor_free(x), mm_tensor_free(y);
}

void bench_attn(void)
{
    enum { NK = sizeof g_kinds / sizeof g_kinds[0] };
    char args[1024] = "1 1";
    double peer[NK * 3];
    int got;
    for (int k = 0; k < NK; k++)
        for (int i = 0; i < 3; i++) {
            char one[64];
            snprintf(one, sizeof one, " %s %lld", g_kinds[k].peer, (long long)g_ns[i]);
            strcat(args, one);
        }
    got = bench_peer_python("peer_torch_attn.py", args, peer, NK * 3);
    for (int k = 0; k < NK; k++)
        for (int i = 0; i < 3; i++) {
            attn_case c;
            char shape[32];
            double t, ws = 0;
            if (open_case(&c, g_kinds[k].kind, g_ns[i]) != 0) exit(1);
            t = cpu_median_ns(run_fwd_bwd, &c, g_ns[i] > 2048 ? 1 : 3);
            if (mm_attn_get_f64(c.h, MM_ATTN_STAT_WORKSPACE_BYTES, &ws) != MM_OK) ws = 0;
            snprintf(shape, sizeof shape, "BH8 N%lld %.0fMB", (long long)g_ns[i], ws / 1048576.0);
            bench_row(g_kinds[k].name, shape, -1, t, "torch (CPU time)",
                      got == NK * 3 && peer[k * 3 + i] > 0 ? peer[k * 3 + i] : -1);
            close_case(&c);
        }
    bench_lin_kernel();
    bench_step(MM_ATTN_LINEAR, "step linear");
    bench_step(MM_ATTN_GATED, "step gated");
    bench_step(MM_ATTN_PERFORMER, "step performer");
    bench_step(MM_ATTN_RELU2, "step relu2 C256");
    bench_step(MM_ATTN_SOFTMAX, "step softmax (KV cache)");
}
