/* SPDX-License-Identifier: MIT */
/*
 * peak.c — the machine's measured peaks for the benchmarks' "% of peak" columns: single-core
 * float32 FMA throughput with AVX2 (8 lanes) and, where the CPU and the OS support it, AVX-512
 * (16 lanes), and single-core memory bandwidth (read and copy).
 *
 * Why its own file: a probe whose accumulators live in memory measures the store-to-load
 * latency, not the FMA units (an earlier probe written as an array of __m256 reported a third
 * of the real peak at -O2). Here every accumulator is a separate named local, which an
 * optimising compiler keeps in a register (checked with objdump: the loop is 12 or 16
 * register-to-register vfmadd and no load or store); without optimisation (-O0) every local
 * lives on the stack, so such a build reports no peak rather than a third of one. The result of
 * each run is compared with the same recurrence computed in scalar fmaf: a probe that was
 * optimised away or ran fewer FMAs than it counts fails the check and reports no peak.
 *
 * Each FMA probe runs 12 (AVX2) or 16 (AVX-512) independent chains a = a * m + c: enough to
 * cover a 4-cycle FMA latency on two FMA pipes. Peaks are the best of several samples in the
 * thread's CPU time (a peak is what the core can do, not what it did under load).
 */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PEAK_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

enum { PEAK_ITERS = 200000, PEAK_SAMPLES = 9 };

/* The probe is only valid when the compiler keeps the accumulators in registers (see above). */
#ifdef __OPTIMIZE__
enum { PEAK_OPTIMISED = 1 };
#else
enum { PEAK_OPTIMISED = 0 };
#endif

static const float g_mul = 0.9999f, g_add = 1e-4f;

/* This thread's CPU time: a worker thread of the process that is still spinning after a
 * threaded case (libmm's pool, OpenBLAS) must not count against the probe. */
static double cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Lane 0 of chain i after `iters` steps, computed as the vector code does (fmaf rounds once,
 * like a vector FMA). */
static float chain_init(int i) { return (float)i * 0.01f; }

static float chain_ref(int i, int64_t iters)
{
    float a = chain_init(i);
    for (int64_t t = 0; t < iters; t++) a = fmaf(a, g_mul, g_add);
    return a;
}

#ifdef PEAK_X86
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* AVX2 + FMA usable: CPUID says so and the OS saves YMM state (XCR0 bits 1-2). */
static int have_avx2(const char **why)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_FMA)) {
        *why = "CPUID: no FMA or no OSXSAVE";
        return 0;
    }
    if ((xgetbv0() & 0x6) != 0x6) {
        *why = "OS does not save YMM state (XCR0)";
        return 0;
    }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2)) {
        *why = "CPUID: no AVX2";
        return 0;
    }
    return 1;
}

/* AVX-512F usable: CPUID leaf 7 bit and XCR0 bits 5-7 (opmask, ZMM upper halves, ZMM16-31). */
static int have_avx512(const char **why)
{
    unsigned a, b, c, d;
    if (!have_avx2(why)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512F)) {
        *why = "CPUID: this CPU has no AVX-512F";
        return 0;
    }
    if ((xgetbv0() & 0xe6) != 0xe6) {
        *why = "OS does not save ZMM state (XCR0)";
        return 0;
    }
    return 1;
}

#define Y(i)     _mm256_set1_ps(chain_init(i))
#define STEP8(x) x = _mm256_fmadd_ps(x, m, c)
__attribute__((target("avx2,fma"))) static float fma_avx2(int64_t iters, float *lane0)
{
    const __m256 m = _mm256_set1_ps(g_mul), c = _mm256_set1_ps(g_add);
    __m256 a0 = Y(0), a1 = Y(1), a2 = Y(2);
    __m256 a3 = Y(3), a4 = Y(4), a5 = Y(5);
    __m256 a6 = Y(6), a7 = Y(7), a8 = Y(8);
    __m256 a9 = Y(9), a10 = Y(10), a11 = Y(11);
    for (int64_t t = 0; t < iters; t++) {
        STEP8(a0), STEP8(a1), STEP8(a2), STEP8(a3), STEP8(a4), STEP8(a5);
        STEP8(a6), STEP8(a7), STEP8(a8), STEP8(a9), STEP8(a10), STEP8(a11);
    }
    lane0[0] = _mm256_cvtss_f32(a0), lane0[1] = _mm256_cvtss_f32(a1);
    lane0[2] = _mm256_cvtss_f32(a2), lane0[3] = _mm256_cvtss_f32(a3);
    lane0[4] = _mm256_cvtss_f32(a4), lane0[5] = _mm256_cvtss_f32(a5);
    lane0[6] = _mm256_cvtss_f32(a6), lane0[7] = _mm256_cvtss_f32(a7);
    lane0[8] = _mm256_cvtss_f32(a8), lane0[9] = _mm256_cvtss_f32(a9);
    lane0[10] = _mm256_cvtss_f32(a10), lane0[11] = _mm256_cvtss_f32(a11);
    return 12.0f * 8.0f * 2.0f; /* flops per iteration */
}
#undef STEP8
#undef Y

#define Z(i)      _mm512_set1_ps(chain_init(i))
#define STEP16(x) x = _mm512_fmadd_ps(x, m, c)
__attribute__((target("avx512f"))) static float fma_avx512(int64_t iters, float *lane0)
{
    const __m512 m = _mm512_set1_ps(g_mul), c = _mm512_set1_ps(g_add);
    __m512 a0 = Z(0), a1 = Z(1), a2 = Z(2);
    __m512 a3 = Z(3), a4 = Z(4), a5 = Z(5);
    __m512 a6 = Z(6), a7 = Z(7), a8 = Z(8);
    __m512 a9 = Z(9), a10 = Z(10), a11 = Z(11);
    __m512 a12 = Z(12), a13 = Z(13);
    __m512 a14 = Z(14), a15 = Z(15);
    for (int64_t t = 0; t < iters; t++) {
        STEP16(a0), STEP16(a1), STEP16(a2), STEP16(a3), STEP16(a4), STEP16(a5), STEP16(a6);
        STEP16(a7), STEP16(a8), STEP16(a9), STEP16(a10), STEP16(a11), STEP16(a12);
        STEP16(a13), STEP16(a14), STEP16(a15);
    }
    lane0[0] = _mm512_cvtss_f32(a0), lane0[1] = _mm512_cvtss_f32(a1);
    lane0[2] = _mm512_cvtss_f32(a2), lane0[3] = _mm512_cvtss_f32(a3);
    lane0[4] = _mm512_cvtss_f32(a4), lane0[5] = _mm512_cvtss_f32(a5);
    lane0[6] = _mm512_cvtss_f32(a6), lane0[7] = _mm512_cvtss_f32(a7);
    lane0[8] = _mm512_cvtss_f32(a8), lane0[9] = _mm512_cvtss_f32(a9);
    lane0[10] = _mm512_cvtss_f32(a10), lane0[11] = _mm512_cvtss_f32(a11);
    lane0[12] = _mm512_cvtss_f32(a12), lane0[13] = _mm512_cvtss_f32(a13);
    lane0[14] = _mm512_cvtss_f32(a14), lane0[15] = _mm512_cvtss_f32(a15);
    return 16.0f * 16.0f * 2.0f;
}
#undef STEP16
#undef Z
#endif /* PEAK_X86 */

typedef float (*fma_probe)(int64_t iters, float *lane0);

/* Best GFLOP/s of a probe over `samples` runs. */
static double best_of(fma_probe fn, int samples, float *lane0)
{
    double best = 0;
    float flops_per_iter = fn(1000, lane0); /* warm-up: clock ramp, first use of the units */
    for (int s = 0; s < samples; s++) {
        double t0 = cpu_now_ns(), dt;
        fn(PEAK_ITERS, lane0);
        dt = cpu_now_ns() - t0;
        if (dt > 0 && (double)flops_per_iter * PEAK_ITERS / dt > best)
            best = (double)flops_per_iter * PEAK_ITERS / dt;
    }
    return best;
}

/* Best GFLOP/s of a probe over PEAK_SAMPLES runs, or -1 when its result disagrees with the
 * scalar recurrence (then *why says so). */
static double run_probe(fma_probe fn, int chains, const char **why)
{
    float lane0[16];
    double best = best_of(fn, PEAK_SAMPLES, lane0);
    for (int i = 0; i < chains; i++)
        if (lane0[i] != chain_ref(i, PEAK_ITERS)) {
            *why = "probe result differs from the scalar recurrence";
            return -1;
        }
    return best;
}

/* ---- memory bandwidth ------------------------------------------------------------------------ */
enum { BW_BYTES = 128 << 20, BW_SAMPLES = 5 };

static uint64_t read_all(const uint64_t *p, size_t n)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4)
        s0 += p[i], s1 ^= p[i + 1], s2 += p[i + 2], s3 ^= p[i + 3];
    return s0 + s1 + s2 + s3;
}

#ifdef PEAK_X86
__attribute__((target("avx2"))) static uint64_t read_all_avx2(const uint64_t *p, size_t n)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    uint64_t out[4];
    for (size_t i = 0; i + 16 <= n; i += 16) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(p + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    _mm256_storeu_si256((__m256i *)out, s0);
    return out[0] + out[1] + out[2] + out[3];
}
#endif

static volatile uint64_t g_bw_sink;

/* Best read and copy bandwidth in GB/s (10^9 bytes) of one core over a 128 MiB buffer, far
 * beyond any cache; copy counts the bytes read and written. */
static void bandwidth(int avx2, double *read_gbs, double *copy_gbs)
{
    uint64_t *a = (uint64_t *)aligned_alloc(64, BW_BYTES);
    uint64_t *b = (uint64_t *)aligned_alloc(64, BW_BYTES);
    const size_t n = BW_BYTES / sizeof(uint64_t);
    *read_gbs = *copy_gbs = -1;
    if (!a || !b) {
        free(a), free(b);
        return;
    }
    memset(a, 1, BW_BYTES), memset(b, 2, BW_BYTES); /* first touch outside the timing */
    for (int s = 0; s < BW_SAMPLES; s++) {
        double t0 = cpu_now_ns(), dt;
#ifdef PEAK_X86
        g_bw_sink = avx2 ? read_all_avx2(a, n) : read_all(a, n);
#else
        (void)avx2;
        g_bw_sink = read_all(a, n);
#endif
        dt = cpu_now_ns() - t0;
        if (dt > 0 && BW_BYTES / dt > *read_gbs) *read_gbs = BW_BYTES / dt;
        t0 = cpu_now_ns();
        memcpy(b, a, BW_BYTES);
        dt = cpu_now_ns() - t0;
        g_bw_sink += b[n / 2];
        if (dt > 0 && 2.0 * BW_BYTES / dt > *copy_gbs) *copy_gbs = 2.0 * BW_BYTES / dt;
    }
    free(a), free(b);
}

/* ---- the probe, once per run ------------------------------------------------------------------ */
static bench_peak g_peak;
static int g_peak_done;

const bench_peak *bench_peak_probe(void)
{
    const char *why = "not an x86 CPU";
    if (g_peak_done) return &g_peak;
    g_peak_done = 1;
    memset(&g_peak, 0, sizeof g_peak);
    g_peak.avx2_gflops = g_peak.avx512_gflops = -1;
    g_peak.best_isa = "none";
    g_peak.avx512_skip = "not an x86 CPU";
#ifdef PEAK_X86
    if (!PEAK_OPTIMISED)
        why = "bench built without optimisation: the probe's accumulators would live in memory";
    else if (have_avx2(&why)) {
        g_peak.avx2_gflops = run_probe(fma_avx2, 12, &why);
        if (g_peak.avx2_gflops > 0) g_peak.best_isa = "avx2";
    }
    if (g_peak.avx2_gflops <= 0) g_peak.avx2_skip = why;
    if (PEAK_OPTIMISED && have_avx512(&why)) {
        g_peak.avx512_gflops = run_probe(fma_avx512, 16, &why);
        if (g_peak.avx512_gflops > 0) g_peak.best_isa = "avx512";
    }
    g_peak.avx512_skip = g_peak.avx512_gflops > 0 ? NULL : why;
#else
    g_peak.avx2_skip = why;
#endif
    g_peak.best_gflops = g_peak.avx512_gflops > 0 ? g_peak.avx512_gflops : g_peak.avx2_gflops;
    bandwidth(g_peak.avx2_gflops > 0, &g_peak.read_gbs, &g_peak.copy_gbs);
    return &g_peak;
}

double bench_peak_recheck(void)
{
    float lane0[16];
    const bench_peak *p = bench_peak_probe();
#ifdef PEAK_X86
    /* the probe that measured best_gflops, already checked against the scalar recurrence */
    if (p->avx512_gflops > 0) return best_of(fma_avx512, 3, lane0);
    if (p->avx2_gflops > 0) return best_of(fma_avx2, 3, lane0);
#endif
    (void)lane0, (void)p;
    return -1;
}

/* One side of the two-core check: the probe once to warm up, then, from the moment both
 * threads passed the barrier, PAIR_SAMPLES probe runs timed in this thread's CPU time and in
 * wall-clock time. */
enum { PAIR_SAMPLES = 3 };

typedef struct pair_side {
    fma_probe fn;
    pthread_barrier_t *start;
    double per_cpu, per_wall; /* GFLOP per second of the thread's CPU time / of wall-clock */
} pair_side;

static void pair_run(pair_side *s)
{
    float lane0[16];
    float flops_per_iter = s->fn(1000, lane0);
    double c0, w0, flops = (double)flops_per_iter * PEAK_ITERS * PAIR_SAMPLES;
    pthread_barrier_wait(s->start);
    c0 = cpu_now_ns(), w0 = bench_now_ns();
    for (int i = 0; i < PAIR_SAMPLES; i++) s->fn(PEAK_ITERS, lane0);
    s->per_cpu = flops / (cpu_now_ns() - c0);
    s->per_wall = flops / (bench_now_ns() - w0);
}

static void *pair_thread(void *arg)
{
    pair_run((pair_side *)arg);
    return NULL;
}

int bench_peak_recheck_pair(double *per_cpu, double *per_wall)
{
    pthread_barrier_t start;
    pthread_t t;
    pair_side s[2];
    fma_probe fn = NULL;
    const bench_peak *p = bench_peak_probe();
#ifdef PEAK_X86
    fn = p->avx512_gflops > 0 ? fma_avx512 : p->avx2_gflops > 0 ? fma_avx2 : NULL;
#endif
    (void)p;
    if (!fn || pthread_barrier_init(&start, NULL, 2) != 0) return 0;
    for (int i = 0; i < 2; i++) s[i].fn = fn, s[i].start = &start;
    if (pthread_create(&t, NULL, pair_thread, &s[1]) != 0) {
        pthread_barrier_destroy(&start);
        return 0;
    }
    pair_run(&s[0]);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&start);
    *per_cpu = s[0].per_cpu < s[1].per_cpu ? s[0].per_cpu : s[1].per_cpu;
    *per_wall = s[0].per_wall < s[1].per_wall ? s[0].per_wall : s[1].per_wall;
    return 1;
}

void bench_peak_print(void)
{
    const bench_peak *p = bench_peak_probe();
    char avx2[128], avx512[128];
    if (p->avx2_gflops > 0)
        snprintf(avx2, sizeof avx2, "%.1f GFLOP/s", p->avx2_gflops);
    else
        snprintf(avx2, sizeof avx2, "n/a (%s)", p->avx2_skip);
    if (p->avx512_gflops > 0)
        snprintf(avx512, sizeof avx512, "%.1f GFLOP/s", p->avx512_gflops);
    else
        snprintf(avx512, sizeof avx512, "skipped (%s)", p->avx512_skip);
    printf("peak (one core, fp32 FMA, checked): AVX2 %s; AVX-512 %s; best ISA %s. "
           "Memory (one core, 128 MiB): read %.1f GB/s, copy %.1f GB/s\n",
           avx2, avx512, p->best_isa, p->read_gbs, p->copy_gbs);
    fflush(stdout);
}
