/* SPDX-License-Identifier: MIT */
/*
 * bench_util.c — the helpers of bench.h shared by the suites and by bench/ggml_peer.c: clocks
 * and medians, table rows and notes, the PyTorch peer runner, the machine line.
 */
#include "bench.h"

#include "mm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The clock every median uses: CPU time, except inside bench_median_wall_ns. */
static double (*g_clock)(void) = bench_cpu_ns;

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

enum { MIN_REPS = 5, MAX_REPS = 101 };

/* The core-speed check of the current suite (bench_flush_notes prints and resets it). */
static double g_core_min = -1, g_core_max = -1;
static int g_core_checks, g_core_slow;

static void core_check(void)
{
    const double now = bench_peak_recheck();
    if (now <= 0) return;
    g_core_slow += now < BENCH_SLOW_CORE * bench_peak_probe()->best_gflops;
    if (g_core_checks == 0 || now < g_core_min) g_core_min = now;
    if (g_core_checks == 0 || now > g_core_max) g_core_max = now;
    g_core_checks++;
}

/* The two-core check of the current suite: the FMA probe on two threads at once right after
 * every wall-clock (two-thread) timing; lowest and highest of the slower thread's rates. */
static double g_pair_cpu_min = -1, g_pair_cpu_max = -1, g_pair_wall_min = -1, g_pair_wall_max = -1;
static int g_pair_checks, g_pair_slow, g_pair_taken;

static void pair_check(void)
{
    double per_cpu, per_wall;
    if (!bench_peak_recheck_pair(&per_cpu, &per_wall)) return;
    g_pair_slow += per_cpu < BENCH_SLOW_CORE * bench_peak_probe()->best_gflops;
    g_pair_taken += per_wall < BENCH_SLOW_CORE * bench_peak_probe()->best_gflops;
    if (g_pair_checks == 0 || per_cpu < g_pair_cpu_min) g_pair_cpu_min = per_cpu;
    if (g_pair_checks == 0 || per_cpu > g_pair_cpu_max) g_pair_cpu_max = per_cpu;
    if (g_pair_checks == 0 || per_wall < g_pair_wall_min) g_pair_wall_min = per_wall;
    if (g_pair_checks == 0 || per_wall > g_pair_wall_max) g_pair_wall_max = per_wall;
    g_pair_checks++;
}

/* Warm-up for at least 20 ms (caches, page faults, thread wake-up and the clock ramping up: the
 * first case of a run would otherwise be timed at a low frequency); returns how many calls make
 * one sample of at least ~0.2 ms. */
static int64_t warm_up(void (*fn)(void *ctx), void *ctx)
{
    double t0 = g_clock(), elapsed, once;
    int64_t calls = 0;
    do {
        fn(ctx);
        calls++;
        elapsed = g_clock() - t0;
    } while (elapsed < 2e7 && calls < 1000000);
    once = elapsed / (double)calls;
    return once < 2e5 ? (int64_t)(2e5 / (once > 50.0 ? once : 50.0)) + 1 : 1;
}

/* Time of one call in ns, averaged over one sample of inner calls. */
static double sample_ns(void (*fn)(void *ctx), void *ctx, int64_t inner)
{
    double t0 = g_clock();
    for (int64_t i = 0; i < inner; i++) fn(ctx);
    return (g_clock() - t0) / (double)inner;
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
    if (reps < MIN_REPS) reps = MIN_REPS;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int r = 0; r < reps; r++) t[r] = sample_ns(fn, ctx, inner);
    core_check();
    return median(t, reps);
}

double bench_median_wall_ns(void (*fn)(void *ctx), void *ctx, int reps)
{
    double t;
    g_clock = bench_now_ns;
    t = bench_median_ns(fn, ctx, reps);
    g_clock = bench_cpu_ns;
    return t;
}

void bench_median_wall_cpu_ns(void (*fn)(void *ctx), void *ctx, int reps, double *wall_ns,
                              double *cpu_ns)
{
    double tw[MAX_REPS], tc[MAX_REPS];
    int64_t inner = warm_up(fn, ctx) * 250; /* ~50 ms samples: see bench.h */
    if (reps < MIN_REPS) reps = MIN_REPS;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int r = 0; r < reps; r++) {
        double w0 = bench_now_ns(), c0 = bench_cpu_ns();
        for (int64_t i = 0; i < inner; i++) fn(ctx);
        tw[r] = (bench_now_ns() - w0) / (double)inner;
        tc[r] = (bench_cpu_ns() - c0) / (double)inner;
    }
    core_check();
    pair_check();
    *wall_ns = median(tw, reps);
    *cpu_ns = median(tc, reps);
}

void bench_pair_median_ns(void (*fn_a)(void *ctx), void *ctx_a, void (*fn_b)(void *ctx),
                          void *ctx_b, int reps, double *a_ns, double *b_ns)
{
    double ta[MAX_REPS], tb[MAX_REPS];
    int64_t inner_a = warm_up(fn_a, ctx_a), inner_b = warm_up(fn_b, ctx_b);
    if (reps < MIN_REPS) reps = MIN_REPS;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int r = 0; r < reps; r++) {
        ta[r] = sample_ns(fn_a, ctx_a, inner_a);
        tb[r] = sample_ns(fn_b, ctx_b, inner_b);
    }
    core_check();
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

void bench_row(const char *name, const char *shape, double flops, double libmm_ns, const char *peer,
               double peer_ns, double peer_default_ns)
{
    char mine[48], theirs[48], deflt[48], ratio[16];
    fmt_time(mine, sizeof mine, libmm_ns, flops);
    fmt_time(theirs, sizeof theirs, peer_ns, flops);
    if (peer_default_ns == BENCH_NA)
        snprintf(deflt, sizeof deflt, "-");
    else
        fmt_time(deflt, sizeof deflt, peer_default_ns, flops);
    if (peer_ns > 0 && libmm_ns > 0)
        snprintf(ratio, sizeof ratio, "%.2f", peer_ns / libmm_ns);
    else
        snprintf(ratio, sizeof ratio, "n/a");
    printf("| %-24s | %-18s | %-24s | %-26s | %-24s | %-24s | %5s |\n", name, shape, mine,
           peer ? peer : "-", theirs, deflt, ratio);
    fflush(stdout);
}

/* Notes are kept until the suite's table is complete (a text line would end the table). */
static char g_notes[8192];

void bench_note(const char *fmt, ...)
{
    size_t len = strlen(g_notes);
    va_list ap;
    if (len + 4 >= sizeof g_notes) return;
    memcpy(g_notes + len, "- ", 3);
    len += 2;
    va_start(ap, fmt);
    vsnprintf(g_notes + len, sizeof g_notes - len - 1, fmt, ap);
    va_end(ap);
    len = strlen(g_notes);
    g_notes[len] = '\n', g_notes[len + 1] = '\0';
}

/* The note of the suite's core-speed check (see bench.h). */
static void core_note(void)
{
    const double start = bench_peak_probe()->best_gflops;
    if (g_core_checks == 0 || start <= 0) return;
    bench_note("core check: the %s FMA peak re-measured after each of the %d timings of this "
               "suite was %.1f-%.1f GFLOP/s (peak line: %.1f; %d under %.0f%% of it)%s",
               bench_peak_probe()->best_isa, g_core_checks, g_core_min, g_core_max, start,
               g_core_slow, 100 * BENCH_SLOW_CORE,
               g_core_slow
                   ? "; **the core ran slower during part of this suite: its times, and ratios "
                     "against a peer timed at another moment, are not reliable; rerun it**"
                   : "");
    g_core_checks = g_core_slow = 0;
    if (g_pair_checks == 0) return;
    bench_note("two-core check: the same probe on two threads at once after each of the %d "
               "wall-clock timings ran %.1f-%.1f GFLOP/s per second of its thread's CPU time and "
               "%.1f-%.1f per wall-clock second on the slower thread (%d and %d under %.0f%% of "
               "the peak line)%s%s",
               g_pair_checks, g_pair_cpu_min, g_pair_cpu_max, g_pair_wall_min, g_pair_wall_max,
               g_pair_slow, g_pair_taken, 100 * BENCH_SLOW_CORE,
               g_pair_slow ? "; **the two threads shared one core's FMA units (the host ran both "
                             "vCPUs on one physical core) during part of this suite**"
                           : "",
               g_pair_taken > g_pair_slow
                   ? "; **another process or the host took one of the two cores during part of "
                     "this suite**"
                   : "");
    if (g_pair_slow || g_pair_taken)
        bench_note("**the two-thread rows of this suite are not reliable: rerun it**");
    g_pair_checks = g_pair_slow = g_pair_taken = 0;
}

void bench_flush_notes(void)
{
    core_note();
    if (g_notes[0]) printf("\n%s", g_notes);
    g_notes[0] = '\0';
}

static const char *python_path(void)
{
    const char *p = getenv("BENCH_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* The preload that keeps freed memory: BENCH_JEMALLOC names the library, else the soname is
 * found through the loader cache. NULL (and one printed note) when there is none. */
const char *bench_jemalloc_lib(void)
{
    static int done;
    static const char *lib;
    const char *env = getenv("BENCH_JEMALLOC");
    if (done) return lib;
    done = 1;
    if (env && *env)
        lib = env;
    else if (system("ldconfig -p 2>/dev/null | grep -q 'libjemalloc.so.2 '") == 0)
        lib = "libjemalloc.so.2";
    if (!lib)
        printf("note: jemalloc not found (Debian: libjemalloc2; or set BENCH_JEMALLOC): the "
               "retained-memory PyTorch column is n/a and no PyTorch ratio is printed\n");
    return lib;
}

static int run_python(const char *script, const char *args, const char *preload, double *out,
                      int max)
{
    char cmd[2048];
    FILE *f;
    int n = 0;
    if (preload)
        snprintf(cmd, sizeof cmd,
                 "LD_PRELOAD=%s MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 BENCH_RETAINED=1 "
                 "%s bench/%s %s 2>/dev/null",
                 preload, python_path(), script, args ? args : "");
    else
        snprintf(cmd, sizeof cmd, "%s bench/%s %s 2>/dev/null", python_path(), script,
                 args ? args : "");
    for (int i = 0; i < max; i++) out[i] = -1;
    fflush(stdout);
    core_check(); /* the peer's run lies between this check and the one below */
    f = popen(cmd, "r");
    if (!f) return 0;
    while (n < max && fscanf(f, "%lf", &out[n]) == 1) n++;
    n = pclose(f) != 0 ? -1 : n;
    core_check();
    if (n < 0) { /* a failing script's partial output is not trusted */
        for (int i = 0; i < max; i++) out[i] = -1;
        return 0;
    }
    return n;
}

int bench_peer_python(const char *script, const char *args, double *out, int max)
{
    return run_python(script, args, NULL, out, max);
}

int bench_peer_torch(const char *script, const char *args, double *retained, double *deflt, int max)
{
    static int warned;
    const char *je = bench_jemalloc_lib();
    int n = 0, nd = run_python(script, args, NULL, deflt, max);
    if (je)
        n = run_python(script, args, je, retained, max);
    else
        for (int i = 0; i < max; i++) retained[i] = -1;
    if (nd == 0 && !warned) {
        warned = 1;
        bench_note("%s with torch did not run (Debian: python3-torch; or set BENCH_PYTHON): "
                   "PyTorch columns are n/a",
                   python_path());
    }
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

/* First line of /proc/cpuinfo starting with key, value part copied into out. */
static void cpuinfo(const char *key, char *out, size_t n)
{
    char line[4096];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, n, "?");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0 && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            while (*v == ' ') v++;
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, n, "%s", v);
            break;
        }
    fclose(f);
}

/* The SIMD flags of the cpuinfo flag list that matter to these kernels. */
static void isa_flags(char *out, size_t n)
{
    static const char *const want[] = {"sse4_2",      "avx",      "avx2",     "fma",
                                       "f16c",        "avx512f",  "avx512bw", "avx512vl",
                                       "avx512_bf16", "avx_vnni", "amx_tile"};
    char flags[4096];
    size_t len = 0;
    cpuinfo("flags", flags, sizeof flags);
    out[0] = '\0';
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *p = flags;
        size_t w = strlen(want[i]);
        while ((p = strstr(p, want[i])) != NULL) {
            if ((p == flags || p[-1] == ' ') && (p[w] == ' ' || p[w] == '\0')) {
                len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", len ? " " : "",
                                        want[i]);
                break;
            }
            p += w;
        }
    }
}

void bench_machine_print(void)
{
    char model[256], family[32], cpu_model[32], flags[512], load[64] = "?", date[64];
    FILE *lf = fopen("/proc/loadavg", "r");
    time_t now = time(NULL);
    struct utsname u;
    cpuinfo("model name", model, sizeof model);
    cpuinfo("cpu family", family, sizeof family);
    cpuinfo("model\t", cpu_model, sizeof cpu_model);
    isa_flags(flags, sizeof flags);
    if (lf) {
        double la[3];
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) == 3)
            snprintf(load, sizeof load, "%.2f %.2f %.2f", la[0], la[1], la[2]);
        fclose(lf);
    }
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    if (uname(&u) != 0) snprintf(u.release, sizeof u.release, "?");
    printf("machine: %s (family %s model %s); ISA %s; %ld cores online; load average %s; "
#if defined(__clang__)
           "compiler clang " __clang_version__ "; "
#elif defined(__GNUC__)
           "compiler gcc " __VERSION__ "; "
#endif
           "Linux %s; %s; libmm %s %s\n",
           model, family, cpu_model, flags, sysconf(_SC_NPROCESSORS_ONLN), load, u.release, date,
           mm_version_string(), mm_build_info());
    fflush(stdout);
}
