/*
 * bench_main.c — runs the benchmark suites (all, or those whose name contains argv[1]) and
 * prints one table. The shared helpers of bench.h live here too.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_suite {
    const char *name;
    void (*fn)(void);
} bench_suite;

static const bench_suite g_suites[] = {
    {"gemm", bench_gemm},
    {"model", bench_model},
    {"loss", bench_loss},
    {"ssm", bench_ssm},
    {"attn", bench_attn},
};

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

enum { MAX_REPS = 101 };

/* Warm-up for at least 20 ms (caches, page faults, thread wake-up and the clock ramping up: the
 * first case of a run would otherwise be timed at a low frequency); returns how many calls make
 * one sample of at least ~0.2 ms. */
static int64_t warm_up(void (*fn)(void *ctx), void *ctx)
{
    double t0 = bench_now_ns(), elapsed, once;
    int64_t calls = 0;
    do {
        fn(ctx);
        calls++;
        elapsed = bench_now_ns() - t0;
    } while (elapsed < 2e7 && calls < 1000000);
    once = elapsed / (double)calls;
    return once < 2e5 ? (int64_t)(2e5 / (once > 50.0 ? once : 50.0)) + 1 : 1;
}

/* Time of one call in ns, averaged over one sample of inner calls. */
static double sample_ns(void (*fn)(void *ctx), void *ctx, int64_t inner)
{
    double t0 = bench_now_ns();
    for (int64_t i = 0; i < inner; i++) fn(ctx);
    return (bench_now_ns() - t0) / (double)inner;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

double bench_median_ns(void (*fn)(void *ctx), void *ctx, int reps)
{
    double t[MAX_REPS];
    int64_t inner = warm_up(fn, ctx);
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int r = 0; r < reps; r++) t[r] = sample_ns(fn, ctx, inner);
    return median(t, reps);
}

void bench_pair_median_ns(void (*fn_a)(void *ctx), void *ctx_a, void (*fn_b)(void *ctx),
                          void *ctx_b, int reps, double *a_ns, double *b_ns)
{
    double ta[MAX_REPS], tb[MAX_REPS];
    int64_t inner_a = warm_up(fn_a, ctx_a), inner_b = warm_up(fn_b, ctx_b);
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int r = 0; r < reps; r++) {
        ta[r] = sample_ns(fn_a, ctx_a, inner_a);
        tb[r] = sample_ns(fn_b, ctx_b, inner_b);
    }
    *a_ns = median(ta, reps);
    *b_ns = median(tb, reps);
}

/* "812.3 us  (85.1 GF/s)" style cell. */
static void fmt_time(char *buf, size_t n, double ns, double flops)
{
    const char *unit = "ns";
    double v = ns;
    if (ns < 0) {
        snprintf(buf, n, "n/a");
        return;
    }
    if (ns >= 1e6) {
        v = ns / 1e6;
        unit = "ms";
    } else if (ns >= 1e3) {
        v = ns / 1e3;
        unit = "us";
    }
    if (flops > 0)
        snprintf(buf, n, "%7.2f %s %6.1f GF/s", v, unit, flops / ns);
    else
        snprintf(buf, n, "%7.2f %s", v, unit);
}

void bench_row(const char *name, const char *shape, double flops, double libmm_ns,
               const char *peer, double peer_ns)
{
    char mine[48], theirs[48], ratio[16];
    fmt_time(mine, sizeof mine, libmm_ns, flops);
    fmt_time(theirs, sizeof theirs, peer_ns, flops);
    if (peer_ns > 0 && libmm_ns > 0)
        snprintf(ratio, sizeof ratio, "%.2f", peer_ns / libmm_ns);
    else
        snprintf(ratio, sizeof ratio, "n/a");
    printf("| %-22s | %-16s | %-24s | %-14s | %-24s | %5s |\n", name, shape, mine,
           peer ? peer : "-", theirs, ratio);
    fflush(stdout);
}

int bench_peer_python(const char *script, const char *args, double *out, int max)
{
    char cmd[1024];
    FILE *f;
    int n = 0;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/%s %s 2>/dev/null", script,
             args ? args : "");
    f = popen(cmd, "r");
    if (!f) return 0;
    while (n < max && fscanf(f, "%lf", &out[n]) == 1) n++;
    if (pclose(f) != 0) return 0; /* a failing script's partial output is not trusted */
    return n;
}

float *bench_alloc_floats(size_t n, uint64_t seed)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *x = (float *)aligned_alloc(64, bytes ? bytes : 64);
    uint64_t s = seed * 2654435761ULL + 1;
    if (!x) return NULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 40) / 8388608.0 - 1.0);
    }
    return x;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int ran = 0;
    printf("| %-22s | %-16s | %-24s | %-14s | %-24s | %5s |\n", "case", "shape", "libmm median",
           "peer", "peer median", "ratio");
    printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------", "------------------",
           "--------------------------", "----------------", "--------------------------",
           "-------");
    for (size_t i = 0; i < sizeof g_suites / sizeof g_suites[0]; i++) {
        if (filter && !strstr(g_suites[i].name, filter)) continue;
        g_suites[i].fn();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "bench: no suite matches \"%s\"\n", filter);
        return 1;
    }
    return 0;
}
