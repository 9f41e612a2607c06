/* SPDX-License-Identifier: MIT */
/*
 * bench.h — libmm's benchmark harness (make bench [BENCH_ARGS=filter], make bench-report).
 *
 * Each bench/bench_<area>.c defines one suite `void bench_<area>(void)`, declared below and
 * listed once in bench_main.c. A suite times its cases with bench_median_ns and prints one line
 * per case with bench_row; all suites share one table:
 *
 *   case | shape | libmm | peer | peer (retained) | peer (glibc) | ratio
 *
 * ratio is peer time / libmm time (above 1: libmm is faster). When a case has a flop count, the
 * medians also show GFLOP/s. Peers are OpenBLAS (linked when installed: BENCH_HAVE_OPENBLAS) or
 * PyTorch through a script run with bench_peer_torch, once with freed memory retained (the
 * figure the ratio uses) and once with the default malloc; a missing peer prints "n/a".
 * All times are process CPU time.
 *
 * The bench links the library objects directly, so suites may call mmi_ kernels (-Isrc).
 */
#ifndef MM_BENCH_H
#define MM_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic wall clock and process CPU time (CLOCK_PROCESS_CPUTIME_ID) in nanoseconds. */
double bench_now_ns(void);
double bench_cpu_ns(void);

/* Median process CPU time of one fn(ctx) call in ns, over reps samples (at least 5, at most
 * 101) after a warm-up of at least 20 ms. Fast functions are repeated inside a sample until it
 * lasts at least ~0.2 ms, so clock resolution does not matter; the result is per call. CPU time,
 * not wall-clock: on a shared machine other processes take the cores in turns, which changes
 * wall-clock medians by 2-6x and CPU-time medians by a few percent. */
double bench_median_ns(void (*fn)(void *ctx), void *ctx, int reps);

/* As bench_median_ns with the wall clock: only for multi-threaded cases, whose process CPU
 * time is the sum over their threads. */
double bench_median_wall_ns(void (*fn)(void *ctx), void *ctx, int reps);

/* Wall-clock and process CPU time medians of one fn(ctx) call, for threaded cases, from samples
 * of about 50 ms: the kernel adds a running thread's CPU time to the process total only at a
 * scheduler tick or switch, so short samples miss most of a spinning worker's time. */
void bench_median_wall_cpu_ns(void (*fn)(void *ctx), void *ctx, int reps, double *wall_ns,
                              double *cpu_ns);

/* As bench_median_ns for two functions whose samples alternate (a, b, a, b, ...), so a change
 * of machine load during the case hits both alike: use it for libmm against a C peer. */
void bench_pair_median_ns(void (*fn_a)(void *ctx), void *ctx_a, void (*fn_b)(void *ctx),
                          void *ctx_b, int reps, double *a_ns, double *b_ns);

/* Prints one table row. flops: operations of one call (<= 0: no GFLOP/s column).
 * peer_ns: the peer's time, for PyTorch the run with freed memory retained (jemalloc; see
 * bench_peer_torch); peer_default_ns: PyTorch with the default glibc malloc, or BENCH_NA for a
 * C peer. The ratio is peer_ns / libmm_ns. A negative time prints "n/a". */
#define BENCH_NA (-2.0)
void bench_row(const char *name, const char *shape, double flops, double libmm_ns, const char *peer,
               double peer_ns, double peer_default_ns);

/* Prints the notes kept by bench_note (after a table), then the core-speed check of the
 * suite: the lowest and highest FMA peak re-measured right after every timing of the suite
 * (libmm's, a C peer's, and before and after each PyTorch peer run) against the peak line, with
 * a warning when the lowest is under BENCH_SLOW_CORE of it. */
#define BENCH_SLOW_CORE 0.85
void bench_flush_notes(void);

/* The library preloaded for the retained-memory PyTorch run, NULL without jemalloc (the first
 * call prints a note saying so). */
const char *bench_jemalloc_lib(void);

/* Keeps a note line of the current suite, printed under its table by bench_flush_notes. */
void bench_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Runs `/usr/bin/python3 bench/<script> <args>` twice: with freed memory retained (LD_PRELOAD of
 * libjemalloc.so.2, MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1) into retained[] and with
 * glibc's malloc into deflt[]; reads up to max numbers from each run's standard output (-1 where
 * a run gave none). A script prints nothing and exits non-zero when its peer (torch) is missing.
 * Returns how many numbers the retained run gave (0 without jemalloc or torch; the first call
 * prints why). Never fails the bench. */
int bench_peer_torch(const char *script, const char *args, double *retained, double *deflt,
                     int max);

/* One run of the script with glibc's malloc (for peers whose figure is not a time, e.g. peak
 * memory); returns the count of numbers read, 0 when the script failed. */
int bench_peer_python(const char *script, const char *args, double *out, int max);

/* 64-byte aligned buffer of n floats filled with uniform values in [-1, 1) from seed; NULL on
 * failure. Free with free(). */
float *bench_alloc_floats(size_t n, uint64_t seed);

/* ---- machine (bench/peak.c, bench_main.c) ----------------------------------------------------- */
typedef struct bench_peak {
    double avx2_gflops, avx512_gflops;   /* one core, fp32 FMA; -1 when not run */
    double best_gflops;                  /* of the best ISA the machine has */
    const char *best_isa;                /* "avx512", "avx2" or "none" */
    const char *avx2_skip, *avx512_skip; /* why a probe did not run (NULL when it ran) */
    double read_gbs, copy_gbs;           /* one core, 128 MiB buffers */
} bench_peak;

/* Runs the probes once per process (about a second) and returns the cached result. */
const bench_peak *bench_peak_probe(void);
/* The best ISA's FMA probe once more (about 1 ms, not re-checked): GFLOP/s now, -1 when the
 * first probe measured nothing. The bench calls it around every timing (bench_util.c) to tell
 * when the core ran slower than at the start of the run: a virtual machine's core shared with
 * another guest can run at half speed for minutes, and process CPU time does not hide that. */
double bench_peak_recheck(void);
/* The same probe on two threads at once, the caller and one it starts (about 3 ms): the lower
 * of the two threads' rates in GFLOP per second of the thread's own CPU time (*per_cpu) and
 * per wall-clock second (*per_wall). Two vCPUs that the host runs on the two hardware threads
 * of one physical core halve *per_cpu (and process CPU time does not show it: both threads are
 * busy); another process, or the host, taking one of the cores lowers *per_wall. Returns 0 when
 * the probe cannot run. Called after every two-thread timing (bench_util.c). */
int bench_peak_recheck_pair(double *per_cpu, double *per_wall);
/* Prints the peak line. */
void bench_peak_print(void);
/* Prints the machine line: CPU model/family, ISA flags, cores, load average, compiler, date and
 * the ISA libmm runs (mm_build_info). */
void bench_machine_print(void);

/* ---- suites (one per bench/bench_<area>.c) ------------------------------------------------ */
void bench_gemm(void);
void bench_model(void);
void bench_loss(void);
void bench_ssm(void);
void bench_attn(void);
void bench_rl(void);

#endif
