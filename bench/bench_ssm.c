/*
 * bench_ssm.c — mm_ssm workloads:
 *   - the Mamba-1 selective scan (variable B/C, D, z, delta bias + softplus: the Mamba block's
 *     call) forward and forward+backward at B = 2, D in {256, 768}, L in {1024, 4096}, N = 16,
 *     with the time bound from the exp and FMA count at this machine's measured FMA peak;
 *   - PyTorch's selective_scan_ref loop (bench/peer_torch_ssm.py, one thread) side by side at
 *     a small L;
 *   - S4D kernel (Vandermonde) plus FFT convolution at L = 4096;
 *   - mm_ssm_step latency at position 0 and after 100000 tokens (should not depend on it).
 */
#include "bench.h"

#include "mm.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Median thread CPU time of fn over reps calls (after one warm-up): the machine may be shared,
 * and long calls lose wall-clock time to other processes, which a bound on arithmetic should
 * not be compared with. */
static double cpu_median_ns(void (*fn)(void *), void *ctx, int reps)
{
    double t[16], tmp;
    struct timespec a, b;
    fn(ctx);
    if (reps > 16) reps = 16;
    for (int r = 0; r < reps; r++) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        fn(ctx);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        t[r] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) tmp = t[j], t[j] = t[j - 1], t[j - 1] = tmp;
    return t[reps / 2];
}

/* FMA-port operations (mul, add, fma) per 8 state elements and time step in the forward: exp
 * (x log2e, two-step range reduction, z = x^2, degree-6 polynomial, + 1, scaling: 12) plus
 * delta*A, B*du, the state FMA and the output FMA (4). Rounding, conversion, shift and min/max
 * run on other ports and are not counted. */
#define OPS_PER_VEC 16.0

typedef struct scan_case {
    mm_ssm *h;
    mm_ssm_inputs in;
    mm_ssm_grads g;
    mm_tensor *t[20];
    int nt;
    mm_tensor *out, *dout;
} scan_case;

static mm_tensor *tens(scan_case *c, int32_t ndim, const int64_t *shape, uint64_t seed, float lo,
                       float hi)
{
    mm_tensor *t = NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (mm_tensor_create(&t, ndim, shape, NULL) != MM_OK) abort();
    {
        float *d = mm_tensor_data(t), *r = bench_alloc_floats((size_t)n, seed);
        for (int64_t i = 0; i < n; i++) d[i] = lo + (hi - lo) * 0.5f * (r[i] + 1.0f);
        free(r);
    }
    c->t[c->nt++] = t;
    return t;
}

static int scan_setup(scan_case *c, int64_t B, int64_t D, int64_t L, int64_t N)
{
    mm_ssm_opts o;
    memset(c, 0, sizeof *c);
    if (mm_ssm_opts_init(&o, MM_SSM_SELECTIVE) != MM_OK) return 0;
    o.d_inner = D, o.d_state = N, o.max_batch = B, o.max_seq = L;
    if (mm_ssm_create(&c->h, &o) != MM_OK) return 0;
    if (mm_ssm_inputs_init(&c->in) != MM_OK || mm_ssm_grads_init(&c->g) != MM_OK) return 0;
    c->in.u = tens(c, 3, (int64_t[]){B, D, L}, 1, -1, 1);
    c->in.delta = tens(c, 3, (int64_t[]){B, D, L}, 2, -4, -1);
    c->in.A = tens(c, 2, (int64_t[]){D, N}, 3, -8, -1);
    c->in.B = tens(c, 3, (int64_t[]){B, N, L}, 4, -1, 1);
    c->in.C = tens(c, 3, (int64_t[]){B, N, L}, 5, -1, 1);
    c->in.D = tens(c, 1, (int64_t[]){D}, 6, 0.5f, 1.5f);
    c->in.z = tens(c, 3, (int64_t[]){B, D, L}, 7, -1, 1);
    c->in.delta_bias = tens(c, 1, (int64_t[]){D}, 8, -1, 1);
    c->out = tens(c, 3, (int64_t[]){B, D, L}, 9, 0, 0);
    c->dout = tens(c, 3, (int64_t[]){B, D, L}, 10, -1, 1);
    c->g.du = tens(c, 3, (int64_t[]){B, D, L}, 0, 0, 0);
    c->g.ddelta = tens(c, 3, (int64_t[]){B, D, L}, 0, 0, 0);
    c->g.dz = tens(c, 3, (int64_t[]){B, D, L}, 0, 0, 0);
    c->g.dA = tens(c, 2, (int64_t[]){D, N}, 0, 0, 0);
    c->g.dB = tens(c, 3, (int64_t[]){B, N, L}, 0, 0, 0);
    c->g.dC = tens(c, 3, (int64_t[]){B, N, L}, 0, 0, 0);
    c->g.dD = tens(c, 1, (int64_t[]){D}, 0, 0, 0);
    c->g.ddelta_bias = tens(c, 1, (int64_t[]){D}, 0, 0, 0);
    return 1;
}

static void scan_free(scan_case *c)
{
    for (int i = 0; i < c->nt; i++) mm_tensor_free(c->t[i]);
    mm_ssm_free(c->h);
}

static void run_fwd(void *ctx)
{
    scan_case *c = (scan_case *)ctx;
    if (mm_ssm_scan(c->h, &c->in, c->out, NULL) != MM_OK) abort();
}

static void run_fwd_bwd(void *ctx)
{
    scan_case *c = (scan_case *)ctx;
    if (mm_ssm_scan(c->h, &c->in, c->out, NULL) != MM_OK ||
        mm_ssm_scan_backward(c->h, &c->in, c->dout, &c->g) != MM_OK)
        abort();
}

/* Measured peak of 8-wide FMAs per second (10 independent chains hide the latency). */
static volatile float g_sink;
__attribute__((target("avx2,fma"))) static void fma_loop(void *ctx)
{
    __m256 a[10], m = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
    (void)ctx;
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    for (int r = 0; r < 10000; r++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], m, b);
    for (int i = 1; i < 10; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    g_sink = _mm256_cvtss_f32(a[0]);
}

static double fma_peak_per_ns(void)
{
    double ns = bench_median_ns(fma_loop, NULL, 9);
    return 100000.0 / ns; /* vector FMAs per ns */
}

static void bench_scan(double peak)
{
    static const int64_t Ds[2] = {256, 768}, Ls[2] = {1024, 4096};
    char shape[64];
    for (int di = 0; di < 2; di++)
        for (int li = 0; li < 2; li++) {
            scan_case c;
            double f, fb, bound, vecs;
            if (!scan_setup(&c, 2, Ds[di], Ls[li], 16)) {
                printf("selective scan: setup failed\n");
                return;
            }
            vecs = 2.0 * (double)Ds[di] * (double)Ls[li] * 16.0 / 8.0;
            bound = vecs * OPS_PER_VEC / peak;
            f = cpu_median_ns(run_fwd, &c, 5);
            fb = cpu_median_ns(run_fwd_bwd, &c, 5);
            snprintf(shape, sizeof shape, "2x%lldx%lld N16", (long long)Ds[di], (long long)Ls[li]);
            bench_row("sel scan fwd (cpu)", shape, -1, f, "exp+FMA bound", bound);
            bench_row("sel scan fwd+bwd (cpu)", shape, -1, fb, "fwd x 4", 4.0 * f);
            scan_free(&c);
        }
}

static void bench_scan_peer(void)
{
    scan_case c;
    double t[2] = {-1, -1};
    if (!scan_setup(&c, 2, 256, 256, 16)) return;
    bench_peer_python("peer_torch_ssm.py", "selective 2 256 256 16", t, 2);
    bench_row("sel scan fwd", "2x256x256 N16", -1, bench_median_ns(run_fwd, &c, 9),
              "torch ref loop", t[0] > 0 ? t[0] : -1);
    bench_row("sel scan fwd+bwd", "2x256x256 N16", -1, bench_median_ns(run_fwd_bwd, &c, 9),
              "torch ref loop", t[1] > 0 ? t[1] : -1);
    scan_free(&c);
}

typedef struct s4d_case {
    mm_ssm *h;
    mm_ssm_inputs in;
    mm_tensor *t[8], *k, *u, *d, *y;
} s4d_case;

static void run_s4d(void *ctx)
{
    s4d_case *c = (s4d_case *)ctx;
    if (mm_ssm_kernel(c->h, &c->in, c->k) != MM_OK || mm_ssm_conv(c->h, c->u, c->k, c->d, c->y) != MM_OK)
        abort();
}

static void bench_s4d(void)
{
    enum { H = 256, N = 64, B = 2, L = 4096 };
    s4d_case c;
    scan_case tc;
    mm_ssm_opts o;
    double t[1] = {-1};
    memset(&c, 0, sizeof c);
    memset(&tc, 0, sizeof tc);
    if (mm_ssm_opts_init(&o, MM_SSM_S4D) != MM_OK) return;
    o.d_inner = H, o.d_state = N, o.max_batch = B, o.max_seq = L;
    if (mm_ssm_create(&c.h, &o) != MM_OK || mm_ssm_inputs_init(&c.in) != MM_OK) return;
    c.in.log_dt = tens(&tc, 1, (int64_t[]){H}, 1, -6, -2.5f);
    c.in.A_real = tens(&tc, 2, (int64_t[]){H, N / 2}, 2, -0.7f, -0.7f);
    c.in.A_imag = tens(&tc, 2, (int64_t[]){H, N / 2}, 3, 0, 100);
    c.in.C = tens(&tc, 3, (int64_t[]){H, N / 2, 2}, 4, -1, 1);
    c.k = tens(&tc, 2, (int64_t[]){H, L}, 5, 0, 0);
    c.u = tens(&tc, 3, (int64_t[]){B, H, L}, 6, -1, 1);
    c.d = tens(&tc, 1, (int64_t[]){H}, 7, -1, 1);
    c.y = tens(&tc, 3, (int64_t[]){B, H, L}, 8, 0, 0);
    bench_peer_python("peer_torch_ssm.py", "s4d 2 256 4096 64", t, 1);
    bench_row("s4d kernel+fft conv", "2x256x4096 N64", -1, bench_median_ns(run_s4d, &c, 5),
              "torch s4d.py", t[0] > 0 ? t[0] : -1);
    for (int i = 0; i < tc.nt; i++) mm_tensor_free(tc.t[i]);
    mm_ssm_free(c.h);
}

typedef struct step_case {
    mm_ssm *h;
    mm_ssm_inputs in;
    mm_tensor *t[10], *y;
} step_case;

static void run_step(void *ctx)
{
    step_case *c = (step_case *)ctx;
    if (mm_ssm_step(c->h, &c->in, c->y) != MM_OK) abort();
}

static void bench_step(void)
{
    enum { D = 1536, N = 16 };
    step_case c;
    scan_case tc;
    mm_ssm_opts o;
    double t0, t1;
    memset(&c, 0, sizeof c);
    memset(&tc, 0, sizeof tc);
    if (mm_ssm_opts_init(&o, MM_SSM_SELECTIVE) != MM_OK) return;
    o.d_inner = D, o.d_state = N;
    if (mm_ssm_create(&c.h, &o) != MM_OK || mm_ssm_inputs_init(&c.in) != MM_OK) return;
    c.in.u = tens(&tc, 2, (int64_t[]){1, D}, 1, -1, 1);
    c.in.delta = tens(&tc, 2, (int64_t[]){1, D}, 2, -4, -1);
    c.in.A = tens(&tc, 2, (int64_t[]){D, N}, 3, -8, -1);
    c.in.B = tens(&tc, 2, (int64_t[]){1, N}, 4, -1, 1);
    c.in.C = tens(&tc, 2, (int64_t[]){1, N}, 5, -1, 1);
    c.in.D = tens(&tc, 1, (int64_t[]){D}, 6, -1, 1);
    c.in.z = tens(&tc, 2, (int64_t[]){1, D}, 7, -1, 1);
    c.y = tens(&tc, 2, (int64_t[]){1, D}, 8, 0, 0);
    if (mm_ssm_reset(c.h) != MM_OK) abort();
    t0 = bench_median_ns(run_step, &c, 9);
    for (int i = 0; i < 100000; i++) run_step(&c);
    t1 = bench_median_ns(run_step, &c, 9);
    bench_row("sel step (pos ~0)", "1x1536 N16", -1, t0, "pos > 100k", t1);
    for (int i = 0; i < tc.nt; i++) mm_tensor_free(tc.t[i]);
    mm_ssm_free(c.h);
}

void bench_ssm(void)
{
    double peak = fma_peak_per_ns();
    printf("| ssm: measured peak %.2f 8-wide FMA/ns; bound = B D L N/8 x %.0f FMA-port ops / peak;"
           " (cpu) rows are thread CPU time; target: ratio >= 0.5 (fwd within 2x of the bound),"
           " >= 1 (backward <= 3x forward) |\n",
           peak, OPS_PER_VEC);
    bench_scan(peak);
    bench_scan_peer();
    bench_s4d();
    bench_step();
}
