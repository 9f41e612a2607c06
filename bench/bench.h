/*
 * bench.h — libmm's benchmark harness (make bench [BENCH_ARGS=filter]).
 *
 * Each bench/bench_<area>.c defines one suite `void bench_<area>(void)`, declared below and
 * listed once in bench_main.c. A suite times its cases with bench_median_ns and prints one line
 * per case with bench_row; all suites share one table:
 *
 *   case | shape | libmm median | peer | peer median | ratio
 *
 * ratio is peer time / libmm time (above 1: libmm is faster). When a case has a flop count, the
 * medians also show GFLOP/s. Peers are OpenBLAS (linked when installed: BENCH_HAVE_OPENBLAS) or
 * PyTorch through a script run with bench_peer_python; a missing peer prints "n/a".
 *
 * The bench links the library objects directly, so suites may call mmi_ kernels (-Isrc).
 */
#ifndef MM_BENCH_H
#define MM_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds. */
double bench_now_ns(void);

/* Median time of one fn(ctx) call in ns, over reps samples (reps >= 1) after a warm-up call.
 * Fast functions are repeated inside a sample until it lasts at least ~0.2 ms, so clock
 * resolution does not matter; the result is per call. */
double bench_median_ns(void (*fn)(void *ctx), void *ctx, int reps);

/* As bench_median_ns for two functions whose samples alternate (a, b, a, b, ...), so a change
 * of machine load during the case hits both alike: use it for libmm against a C peer. */
void bench_pair_median_ns(void (*fn_a)(void *ctx), void *ctx_a, void (*fn_b)(void *ctx),
                          void *ctx_b, int reps, double *a_ns, double *b_ns);

/* Prints one table row. flops: operations of one call (<= 0: no GFLOP/s column).
 * peer_ns < 0 prints "n/a" for the peer median and the ratio. */
void bench_row(const char *name, const char *shape, double flops, double libmm_ns,
               const char *peer, double peer_ns);

/* Runs `/usr/bin/python3 bench/<script> <args>` and reads up to max numbers (whitespace
 * separated) from its standard output into out. A script prints nothing and exits non-zero
 * when its peer (e.g. torch) is missing. Returns the count read (0 when the script or python
 * is unavailable); never fails the bench. */
int bench_peer_python(const char *script, const char *args, double *out, int max);

/* 64-byte aligned buffer of n floats filled with uniform values in [-1, 1) from seed; NULL on
 * failure. Free with free(). */
float *bench_alloc_floats(size_t n, uint64_t seed);

/* ---- suites (one per bench/bench_<area>.c) ------------------------------------------------ */
void bench_gemm(void);
void bench_model(void);
void bench_loss(void);
void bench_ssm(void);
void bench_attn(void);

#endif
