/* SPDX-License-Identifier: MIT */
/*
 * bench_ssm.c — mm_ssm workloads:
 *   - the Mamba-1 selective scan (variable B/C, D, z, delta bias + softplus: the Mamba block's
 *     call) forward and forward+backward at B = 2, D in {256, 768}, L in {1024, 4096}, N = 16,
 *     with the time bound from the exp and FMA count at the measured FMA peak of the best ISA
 *     the machine has (bench/peak.c);
 *   - PyTorch's selective_scan_ref loop (bench/peer_torch_ssm.py, one thread) side by side at
 *     a small L;
 *   - S4D kernel (Vandermonde) plus FFT convolution at L = 4096;
 *   - mm_ssm_step latency at position 0 and after 100000 tokens (should not depend on it).
 */
#include "bench.h"

#include "mm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_median_ns(void (*fn)(void *), void *ctx, int reps)
{
    return bench_median_ns(fn, ctx, reps);
}

/* FMA-port operations (mul, add, fma) per 8 state elements and time step in the forward: exp
 * (x log2e, two-step range reduction, z = x^2, degree-6 polynomial, + 1, scaling: 12) plus
 * delta*A, B*du, the state FMA and the output FMA (4). Rounding, conversion, shift and min/max
 * run on other ports and are not counted. At W lanes and a peak of P flops/ns (two per FMA),
 * B D L N elements take B D L N / W x 16 vector ops at P / (2 W) per ns: B D L N x 32 / P,
 * whatever W is. One exp per (b, d, l, n) is needed (delta varies over b, d, l and A over
 * d, n), so the count is right for the mmi_exp256 scheme it names; it is not a floor for every
 * exp: the channel-block forward's exp2 takes 6 FMA-port operations instead of 12 on AVX2 and 5 on
 * AVX-512 (docs/SSM.md), 10 or 8 per vector in all, so a body at its own FMA-port limit would
 * take 0.62 or 0.5 of the bound. */
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
            vecs = 2.0 * (double)Ds[di] * (double)Ls[li] * 16.0; /* state elements */
            bound = peak > 0 ? vecs * 2.0 * OPS_PER_VEC / peak : -1;
            f = cpu_median_ns(run_fwd, &c, 5);
            fb = cpu_median_ns(run_fwd_bwd, &c, 5);
            snprintf(shape, sizeof shape, "2x%lldx%lld N16", (long long)Ds[di], (long long)Ls[li]);
            bench_row("sel scan fwd", shape, -1, f, "exp+FMA bound", bound, BENCH_NA);
            bench_row("sel scan fwd+bwd", shape, -1, fb, "fwd x 4", 4.0 * f, BENCH_NA);
            scan_free(&c);
        }
}

static void bench_scan_peer(void)
{
    scan_case c;
    double t[2], td[2];
    if (!scan_setup(&c, 2, 256, 256, 16)) return;
    bench_peer_torch("peer_torch_ssm.py", "selective 2 256 256 16", t, td, 2);
    bench_row("sel scan fwd", "2x256x256 N16", -1, bench_median_ns(run_fwd, &c, 9),
              "torch selective_scan_ref", t[0], td[0]);
    bench_row("sel scan fwd+bwd", "2x256x256 N16", -1, bench_median_ns(run_fwd_bwd, &c, 9),
              "torch selective_scan_ref", t[1], td[1]);
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
    if (mm_ssm_kernel(c->h, &c->in, c->k) != MM_OK ||
        mm_ssm_conv(c->h, c->u, c->k, c->d, c->y) != MM_OK)
        abort();
}

static void bench_s4d(void)
{
    enum { H = 256, N = 64, B = 2, L = 4096 };
    s4d_case c;
    scan_case tc;
    mm_ssm_opts o;
    double t[1], td[1];
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
    bench_peer_torch("peer_torch_ssm.py", "s4d 2 256 4096 64", t, td, 1);
    bench_row("s4d kernel+fft conv", "2x256x4096 N64", -1, bench_median_ns(run_s4d, &c, 5),
              "torch s4d.py", t[0], td[0]);
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
    bench_row("sel step (pos ~0)", "1x1536 N16", -1, t0, "pos > 100k", t1, BENCH_NA);
    for (int i = 0; i < tc.nt; i++) mm_tensor_free(tc.t[i]);
    mm_ssm_free(c.h);
}

void bench_ssm(void)
{
    const bench_peak *p = bench_peak_probe();
    bench_scan(p->best_gflops);
    bench_note("ssm: exp+FMA bound = %.0f FMA-port operations per vector of state elements "
               "(B D L N x 32 flop-equivalents) at the %s FMA peak (%.1f GFLOP/s, the best ISA "
               "this machine has; libmm ran %s); the ratio of a bound row is bound / libmm, the "
               "fraction of the bound reached. Targets: forward "
               "within 1.5x of the bound (ratio >= 0.67), backward <= 3x forward (fwd+bwd "
               "ratio >= 1)",
               OPS_PER_VEC, p->best_isa, p->best_gflops, mm_build_info());
    bench_scan_peer();
    bench_s4d();
    bench_step();
}
