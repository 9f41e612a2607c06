/* SPDX-License-Identifier: MIT */
/*
 * runner.h — libmm's in-house test runner (libuv/Opus style, no framework).
 *
 * A test is `static void test_x(void)` using the CHECK macros; each tests/test_<area>.c defines
 * one suite function `void suite_<area>(void)` that calls mmt_run("name", test_x) per test, and
 * is listed once in runner.c. `build/tests/runner [substring]` runs all tests (or those whose
 * name contains the substring) and ends with exactly one line "N passed, N failed".
 * Runners started with the same MM_TEST_CLAIM=<file> (new or empty) split the tests between
 * them, each test run by exactly one (tools/run_shards.sh runs N of them and adds the counts).
 */
#ifndef MM_TEST_RUNNER_H
#define MM_TEST_RUNNER_H

#include "mm.h"
#include <stddef.h>
#include <stdint.h>

void mmt_run(const char *name, void (*fn)(void));
void mmt_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Marks the running test as skipped with a reason (printed as "skip <name>: <why>" and counted
 * apart from passed and failed): for a test of a path this build or machine does not have, such
 * as AVX-512 kernels on a CPU without AVX-512. The test returns after calling it; a failed CHECK
 * still counts as a failure. */
void mmt_skip(const char *why);
/* 1 when MM_TEST_QUICK is set (valgrind runs): tests shrink their sizes. */
int mmt_quick(void);
/* buf = "<a private temporary directory>/name" (made on first use under $TMPDIR or /tmp,
 * removed at exit once empty; the test removes its files). 0, or -1 if it cannot be made. */
int mmt_tmp_path(char *buf, size_t n, const char *name);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) mmt_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                                   \
    } while (0)
#define CHECK_EQ_I64(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) mmt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);      \
    } while (0)
/* |a-b| <= atol + rtol*|b| */
#define CHECK_NEAR(a, b, rtol, atol)                                                               \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!mmt_near(a_, b_, (rtol), (atol)))                                                     \
            mmt_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (rtol %g, atol %g)", #a, #b, a_,   \
                     b_, (double)(rtol), (double)(atol));                                          \
    } while (0)
/* Expects a status code; prints both names on mismatch. */
#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        int s_ = (expr), w_ = (want);                                                              \
        if (s_ != w_)                                                                              \
            mmt_fail(__FILE__, __LINE__, "%s: got %s, want %s", #expr, mm_status_name(s_),         \
                     mm_status_name(w_));                                                          \
    } while (0)
#define CHECK_OK(expr) CHECK_STATUS(expr, MM_OK)

int mmt_near(double a, double b, double rtol, double atol);

/* ---- a counting allocator (64-byte alignment checked, optional fail-after-N) ------------------ */
typedef struct mmt_counter {
    int64_t n_alloc, n_free; /* calls */
    int64_t live_bytes;      /* allocated minus freed */
    int64_t fail_after;      /* -1: never fail; k: the (k+1)-th allocation returns NULL */
    int64_t bad_free;        /* frees with a wrong size or a pointer we never returned */
} mmt_counter;
/* Fills a and c: a routes to c. fail_after as in mmt_counter. */
void mmt_counting_allocator(mm_allocator *a, mmt_counter *c, int64_t fail_after);

/* ---- deterministic test data -------------------------------------------------------------- */
/* Fills x with uniform values in [lo, hi) from a small LCG keyed by seed. */
void mmt_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);
void mmt_fill_uniform_f64(double *x, int64_t n, uint64_t seed, double lo, double hi);
/* Activation k (MM_ACT_*) of x in float64, the reference of the layer and kernel tests; NaN
 * for an unknown k. */
double mmt_act_ref(int32_t k, double x);
/* steps of a fake 4-agent environment (obs 3, up to 2 action values each) through act (explore),
 * observe and update; the stream depends on seed and the step index only, next observations
 * in [-obs_range, obs_range]. */
void mmt_policy_drive(mm_policy *p, int steps, uint64_t seed, float obs_range);

/* ---- suites (one per tests/test_<area>.c) ------------------------------------------------- */
void suite_core(void);
void suite_tensor(void);
void suite_gemm(void);
void suite_act(void);
void suite_model(void);
void suite_model_api(void);
void suite_model_gen(void);
void suite_optim(void);
void suite_io(void);
void suite_ssm(void);
void suite_loss(void);
void suite_attn(void);
void suite_xattn(void);
void suite_rwkv6(void);
void suite_envs(void);
void suite_policy(void);
void suite_policy_io(void);
void suite_policy_memory(void);
void suite_policy_loop(void);
void suite_sac(void);
void suite_comm(void);
void suite_oom(void);
void suite_threads(void);
void suite_layout(void);
void suite_badinput(void);
void suite_fileguard(void);
void suite_simd(void);
void suite_api_const(void);

#endif
