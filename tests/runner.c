/* SPDX-License-Identifier: MIT */
/* runner.c — runs the suites and prints "N passed, N failed"; exit 1 on any failure. */
#include "runner.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static const char *g_filter;
static int g_claim_fd = -1; /* MM_TEST_CLAIM: processes sharing this file split the tests */
static long long g_index;   /* index of the next test that passes the filter */
static long long g_claimed; /* the index this process holds (-1: none yet) */
static int g_passed, g_failed, g_skipped, g_cur_failures;
static char g_cur_skip[160]; /* set by mmt_skip: why the current test did not run */
static const char *g_cur_name;

static void (*const g_suites[])(void) = {
    suite_core,      suite_tensor,    suite_gemm,          suite_act,         suite_model,
    suite_model_api, suite_model_gen, suite_optim,         suite_io,          suite_ssm,
    suite_loss,      suite_attn,      suite_xattn,         suite_rwkv6,       suite_envs,
    suite_policy,    suite_policy_io, suite_policy_memory, suite_policy_loop, suite_sac,
    suite_comm,      suite_oom,       suite_threads,       suite_layout,      suite_badinput,
    suite_fileguard, suite_simd,      suite_api_const,
};

int mmt_quick(void) { return getenv("MM_TEST_QUICK") != NULL; }

int mmt_near(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

void mmt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    /* Cap the lines per test so a broken loop does not flood the log. */
    if (++g_cur_failures > 10) return;
    printf("  FAIL %s: %s:%d: ", g_cur_name, file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void mmt_skip(const char *why)
{
    snprintf(g_cur_skip, sizeof g_cur_skip, "%s", why && why[0] ? why : "skipped");
}

/* The next unclaimed test index from the shared claim file: an 8-byte counter read and
 * incremented under a POSIX record lock, so each index goes to exactly one process. A test
 * that cannot claim fails the run rather than being silently skipped or run twice. */
static long long claim_next(void)
{
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 8};
    long long n = 0;
    ssize_t got;
    if (fcntl(g_claim_fd, F_SETLKW, &lk) != 0) return -1;
    got = pread(g_claim_fd, &n, sizeof n, 0);
    if (got != (ssize_t)sizeof n) n = 0; /* a new, empty file: nothing claimed yet */
    n++;
    if (pwrite(g_claim_fd, &n, sizeof n, 0) != (ssize_t)sizeof n) n = 0;
    lk.l_type = F_UNLCK;
    (void)fcntl(g_claim_fd, F_SETLK, &lk);
    return n - 1;
}

/* 1 when this process runs the test at g_index (always, without a claim file). */
static int mine(void)
{
    long long i = g_index++;
    if (g_claim_fd < 0) return 1;
    if (g_claimed < i) g_claimed = claim_next();
    if (g_claimed < 0) {
        printf("not ok claim: MM_TEST_CLAIM file cannot be locked or written\n");
        g_failed++;
        g_claimed = 1LL << 62; /* run nothing more: the other processes run the rest */
    }
    return g_claimed == i;
}

void mmt_run(const char *name, void (*fn)(void))
{
    if (g_filter && !strstr(name, g_filter)) return;
    if (!mine()) return;
    g_cur_name = name;
    g_cur_failures = 0;
    g_cur_skip[0] = '\0';
    fn();
    if (g_cur_failures) {
        g_failed++;
        printf("not ok %s (%d failed checks)\n", name, g_cur_failures);
    } else if (g_cur_skip[0]) {
        g_skipped++;
        printf("skip %s: %s\n", name, g_cur_skip);
    } else {
        g_passed++;
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

/* ---- counting allocator ------------------------------------------------------------------- */
typedef struct {
    size_t size;
    uint64_t magic;
} mmt_hdr;
#define MMT_MAGIC 0x6d6d74616c6c6f63ULL

static void *count_alloc(void *ud, size_t size, size_t align)
{
    mmt_counter *c = (mmt_counter *)ud;
    unsigned char *raw;
    mmt_hdr h;
    if (c->fail_after >= 0 && c->n_alloc >= c->fail_after) {
        c->n_alloc++;
        return NULL;
    }
    if (align < 64 || (align & (align - 1))) c->bad_free++; /* libmm promises 64 */
    raw = (unsigned char *)aligned_alloc(64, ((size + 64 + 63) / 64) * 64);
    if (!raw) return NULL;
    h.size = size;
    h.magic = MMT_MAGIC;
    memcpy(raw, &h, sizeof h);
    c->n_alloc++;
    c->live_bytes += (int64_t)size;
    return raw + 64;
}

static void count_free(void *ud, void *ptr, size_t size)
{
    mmt_counter *c = (mmt_counter *)ud;
    unsigned char *raw = (unsigned char *)ptr - 64;
    mmt_hdr h;
    memcpy(&h, raw, sizeof h);
    if (h.magic != MMT_MAGIC || h.size != size) c->bad_free++;
    h.magic = 0;
    memcpy(raw, &h, sizeof h);
    c->n_free++;
    c->live_bytes -= (int64_t)size;
    free(raw);
}

void mmt_counting_allocator(mm_allocator *a, mmt_counter *c, int64_t fail_after)
{
    memset(c, 0, sizeof *c);
    c->fail_after = fail_after;
    memset(a, 0, sizeof *a);
    a->struct_size = sizeof *a;
    a->alloc_fn = count_alloc;
    a->free_fn = count_free;
    a->ud = c;
}

/* ---- test data ---------------------------------------------------------------------------- */
static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

void mmt_fill_uniform_f64(double *x, int64_t n, uint64_t seed, double lo, double hi)
{
    uint64_t s = seed * 2654435761ULL + 12345;
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ((double)lcg(&s) / 9007199254740992.0);
}

void mmt_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed * 2654435761ULL + 12345;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * ((double)lcg(&s) / 9007199254740992.0));
}

double mmt_act_ref(int32_t k, double x)
{
    switch (k) {
    case MM_ACT_RELU:
        return x > 0 ? x : 0;
    case MM_ACT_TANH:
        return tanh(x);
    case MM_ACT_SIGMOID:
        return 1 / (1 + exp(-x));
    case MM_ACT_GELU:
        return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case MM_ACT_SILU:
        return x / (1 + exp(-x));
    case MM_ACT_ELU:
        return x > 0 ? x : expm1(x);
    case MM_ACT_SOFTPLUS:
        return x > 20 ? x : log1p(exp(x));
    case MM_ACT_RELU2:
        return x > 0 ? x * x : 0;
    default:
        return NAN;
    }
}

void mmt_policy_drive(mm_policy *p, int steps, uint64_t seed, float obs_range)
{
    float obs[12], next[12], act[8], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    mmt_fill_uniform(obs, 12, seed, -1, 1);
    for (int s = 0; s < steps; s++) {
        int32_t did;
        CHECK_OK(mm_policy_act(p, obs, 4, act, 1));
        mmt_fill_uniform(next, 12, seed + 100 + (uint64_t)s, -obs_range, obs_range);
        for (int i = 0; i < 4; i++)
            rew[i] = next[3 * i] - 0.1f * act[i], te[i] = s % 7 == 3 && i == 1,
            tr[i] = s % 5 == 4 && i == 2;
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_update(p, &did));
        memcpy(obs, next, sizeof obs);
    }
}

/* Files go to a private directory made on first use, never under the working directory:
 * the runner is built into several trees (build/, build/asan/) and run from anywhere. */
static char g_tmpdir[256];

int mmt_tmp_path(char *buf, size_t n, const char *name)
{
    int len;
    if (!g_tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        if (!base || !base[0]) base = "/tmp";
        len = snprintf(g_tmpdir, sizeof g_tmpdir, "%s/mm_test_XXXXXX", base);
        if (len < 0 || (size_t)len >= sizeof g_tmpdir || !mkdtemp(g_tmpdir)) {
            g_tmpdir[0] = '\0';
            return -1;
        }
    }
    len = snprintf(buf, n, "%s/%s", g_tmpdir, name);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *claim = getenv("MM_TEST_CLAIM");
    if (argc > 1) g_filter = argv[1];
    g_claimed = -1;
    if (claim && claim[0]) {
        g_claim_fd = open(claim, O_RDWR | O_CREAT, 0600);
        if (g_claim_fd < 0) {
            printf("MM_TEST_CLAIM=%s cannot be opened\n0 passed, 1 failed\n", claim);
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof g_suites / sizeof g_suites[0]; i++) g_suites[i]();
    if (g_tmpdir[0] && rmdir(g_tmpdir) != 0) /* tests remove their files; a leftover is a bug */
        printf("note: %s is not empty\n", g_tmpdir);
    if (g_skipped) printf("note: %d skipped (reasons on the skip lines above)\n", g_skipped);
    if (g_claim_fd >= 0) close(g_claim_fd);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
