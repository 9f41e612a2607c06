/* SPDX-License-Identifier: MIT */
/*
 * test_gemm.c — GEMM against a float64 reference: all four transpose cases, odd and skinny
 * shapes on each side of every block size and path threshold, padded leading dimensions,
 * alpha/beta edge values, every kernel set (portable, AVX2, AVX-512) on every path this machine
 * runs, the thread pool, and every misuse of mm_sgemm. The AVX-512 set (12 x 32 tile, its own
 * cache blocks) has its own edge shapes; on a machine without AVX-512 that test reports a skip
 * with the reason, and the checks that need no AVX-512 CPU (its table, the workspace size) run.
 *
 * Tolerance (every path). Whatever order a float32 sum of k products is taken in (blocks of k, 8 SIMD lanes,
 * FMA or not), its error is at most about k*u*sum|a||b| with u = 2^-24; alpha, beta and the
 * blocked updates of C add a few more roundings of at most u*scale each. So every element must
 * satisfy |c - ref| <= (k + 4) * u * scale with scale = |alpha| sum_p |a_ip||b_pj| + |beta||c_ij|.
 * That bound never flakes, yet a dropped or doubled term (about scale/k) or a wrong element is
 * far outside it for every k used here.
 *
 * Threads. The path and k blocking depend only on the shape, and every element is computed by
 * the same operations whichever thread computes it, so the pooled run must match the
 * single-thread run bitwise (checked with memcmp).
 *
 * Buffers are allocated at their exact extent ((rows-1)*ld + cols floats), so a kernel reading
 * past a view is caught by ASan and valgrind; the gaps between rows of C hold a sentinel that
 * must survive.
 */
#include "runner.h"

#include "kernels/gemm/mmi_gemm.h"

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

typedef struct gcase {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    int nan_c; /* fill C with NaN (only meaningful with beta == 0) */
} gcase;

typedef struct gbufs {
    float *a, *b, *c0, *c;
    size_t na, nb, nc;
    double *ref, *scale;
} gbufs;

enum { VIA_NATIVE, VIA_PORTABLE, VIA_GEMM, VIA_API, VIA_API_WS };
static const char *const via_name[] = {"native", "portable", "mmi_gemm", "mm_sgemm", "mm_sgemm+ws"};

/* Floats spanned by a rows x cols matrix with leading dimension ld. */
static size_t extent(int64_t rows, int64_t cols, int64_t ld)
{
    return rows == 0 || cols == 0 ? 0 : (size_t)((rows - 1) * ld + cols);
}

/* Exact-size allocation (at least 1 float so NULL means failure). */
static float *alloc_floats(size_t n) { return (float *)malloc(sizeof(float) * (n ? n : 1)); }

static int bufs_init(const gcase *g, gbufs *s, uint64_t seed)
{
    int64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
    int64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
    size_t mn = (size_t)(g->m * g->n);
    s->na = extent(ar, ac, g->lda);
    s->nb = extent(br, bc, g->ldb);
    s->nc = extent(g->m, g->n, g->ldc);
    s->a = alloc_floats(s->na);
    s->b = alloc_floats(s->nb);
    s->c0 = alloc_floats(s->nc);
    s->c = alloc_floats(s->nc);
    s->ref = (double *)malloc(sizeof(double) * (mn ? mn : 1));
    s->scale = (double *)malloc(sizeof(double) * (mn ? mn : 1));
    if (!s->a || !s->b || !s->c0 || !s->c || !s->ref || !s->scale) return -1;
    mmt_fill_uniform(s->a, (int64_t)s->na, seed, -1.0f, 1.0f);
    mmt_fill_uniform(s->b, (int64_t)s->nb, seed + 1, -1.0f, 1.0f);
    for (size_t i = 0; i < s->nc; i++) s->c0[i] = SENTINEL;
    for (int64_t i = 0; i < g->m; i++) {
        float *row = s->c0 + i * g->ldc;
        if (g->nan_c)
            for (int64_t j = 0; j < g->n; j++) row[j] = NAN;
        else
            mmt_fill_uniform(row, g->n, seed + 2 + (uint64_t)i, -1.0f, 1.0f);
    }
    return 0;
}

static void bufs_free(gbufs *s)
{
    free(s->a);
    free(s->b);
    free(s->c0);
    free(s->c);
    free(s->ref);
    free(s->scale);
}

static double op_a(const gcase *g, const float *a, int64_t i, int64_t p)
{
    return g->ta ? a[p * g->lda + i] : a[i * g->lda + p];
}

static double op_b(const gcase *g, const float *b, int64_t p, int64_t j)
{
    return g->tb ? b[j * g->ldb + p] : b[p * g->ldb + j];
}

static void reference(const gcase *g, gbufs *s)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double sum = 0.0, mag = 0.0;
            for (int64_t p = 0; p < g->k; p++) {
                double x = op_a(g, s->a, i, p), y = op_b(g, s->b, p, j);
                sum += x * y;
                mag += fabs(x * y);
            }
            double r = (double)g->alpha * sum, sc = fabs((double)g->alpha) * mag;
            if (g->beta != 0.0f) {
                double c0 = s->c0[i * g->ldc + j];
                r += (double)g->beta * c0;
                sc += fabs((double)g->beta * c0);
            }
            s->ref[i * g->n + j] = r;
            s->scale[i * g->n + j] = sc;
        }
}

static void run_via(int via, const gcase *g, const float *a, const float *b, float *c, void *ws,
                    mmi_pool *pool)
{
    switch (via) {
    case VIA_NATIVE:
        mmi_gemm_native(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c,
                        g->ldc, ws, pool);
        break;
    case VIA_PORTABLE:
        mmi_gemm_portable(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta,
                          c, g->ldc, ws, pool);
        break;
    case VIA_GEMM:
        mmi_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc,
                 ws, pool);
        break;
    case VIA_API:
        CHECK_OK(mm_sgemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta,
                          c, g->ldc, NULL, 0));
        break;
    default:
        CHECK_OK(mm_sgemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta,
                          c, g->ldc, ws, mm_sgemm_workspace_size()));
    }
}

/* Compares c with the reference and the sentinel gaps; reports the first bad element. */
static void check_c(const gcase *g, const gbufs *s, const float *c, const char *what)
{
    const double u = FLT_EPSILON / 2.0;
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->ldc && i * g->ldc + j < (int64_t)s->nc; j++) {
            float got = c[i * g->ldc + j];
            if (j >= g->n) {
                if (memcmp(&got, &s->c0[i * g->ldc + j], sizeof got) != 0) {
                    mmt_fail(__FILE__, __LINE__,
                             "%s ta=%d tb=%d %lldx%lldx%lld: gap (%lld,%lld)"
                             " written",
                             what, g->ta, g->tb, (long long)g->m, (long long)g->n, (long long)g->k,
                             (long long)i, (long long)j);
                    return;
                }
                continue;
            }
            double ref = s->ref[i * g->n + j];
            double tol = (double)(g->k + 4) * u * s->scale[i * g->n + j];
            if (!(fabs((double)got - ref) <= tol)) {
                mmt_fail(__FILE__, __LINE__,
                         "%s ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g: C(%lld,%lld) = "
                         "%.9g, want %.9g (tol %.3g)",
                         what, g->ta, g->tb, (long long)g->m, (long long)g->n, (long long)g->k,
                         (double)g->alpha, (double)g->beta, (long long)i, (long long)j, (double)got,
                         ref, tol);
                return;
            }
        }
}

static const char *const path_label[MMI_SIMD_NPATHS] = {"path portable", "path avx2",
                                                        "path avx512"};

/* Runs g on SIMD path p (when available) into s->c, from s->c0, and checks it. */
static void check_on_path(mmi_simd_path p, const gcase *g, gbufs *s, void *ws, mmi_pool *pool)
{
    memcpy(s->c, s->c0, sizeof(float) * s->nc);
    if (mmi_gemm_on_path(p, g->ta, g->tb, g->m, g->n, g->k, g->alpha, s->na ? s->a : NULL, g->lda,
                         s->nb ? s->b : NULL, g->ldb, g->beta, s->nc ? s->c : NULL, g->ldc, ws,
                         pool))
        check_c(g, s, s->c, path_label[p]);
}

/* Runs one case through every entry point and every available path against the reference. */
static void run_case(const gcase *g, void *ws, uint64_t seed)
{
    gbufs s;
    memset(&s, 0, sizeof s);
    if (bufs_init(g, &s, seed) != 0) {
        CHECK(!"out of memory");
        bufs_free(&s);
        return;
    }
    reference(g, &s);
    for (int via = VIA_NATIVE; via <= VIA_API_WS; via++) {
        memcpy(s.c, s.c0, sizeof(float) * s.nc);
        run_via(via, g, s.na ? s.a : NULL, s.nb ? s.b : NULL, s.nc ? s.c : NULL, ws, NULL);
        check_c(g, &s, s.c, via_name[via]);
    }
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) check_on_path((mmi_simd_path)p, g, &s, ws, NULL);
    bufs_free(&s);
}

static void *test_ws(int32_t n_threads)
{
    size_t n = mmi_gemm_ws_size(n_threads);
    return aligned_alloc(64, n);
}

/* Builds a case with leading dimensions padded by pad. */
static gcase make_case(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t pad, float alpha,
                       float beta)
{
    gcase g;
    memset(&g, 0, sizeof g);
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.lda = (ta ? m : k) + pad;
    g.ldb = (tb ? k : n) + pad;
    g.ldc = n + pad;
    g.alpha = alpha;
    g.beta = beta;
    return g;
}

/* Shapes on each side of every tile size (6 x 16, dot 3 x 4), cache block (KC 256, MC 144,
 * NC 1024, dot KC 2048 and MC 96) and path threshold of gemm.c's choose_path (k 4/5; NN m 16/17,
 * n 64/65, m 128/129 with a small B; TN m and n 32/33, 64^3/65^3; NT m 8/9, k 127/128, and the
 * small-k NT panels: k 4/5 (scalar copy or the set's pack_b), 16/17, 18 (an actor with memory's
 * first layer), 32/33, partial last panels),
 * plus empty and unit sizes. Each runs in all four transpose cases. */
static const int64_t shapes[][3] = {
    {0, 0, 0},     {0, 5, 3},      {5, 0, 3},      {5, 3, 0},      {1, 1, 1},      {1, 17, 1},
    {1, 256, 256}, {17, 1, 33},    {2, 3, 4},      {6, 16, 8},     {7, 17, 9},     {3, 4, 8},
    {4, 5, 7},     {9, 70, 128},   {8, 70, 127},   {16, 65, 5},    {17, 64, 4},    {32, 32, 32},
    {33, 33, 33},  {64, 64, 64},   {65, 65, 65},   {64, 100, 40},  {65, 100, 40},  {128, 80, 60},
    {129, 80, 60}, {48, 50, 64},   {13, 31, 300},  {5, 300, 100},  {300, 7, 100},  {100, 37, 257},
    {150, 70, 40}, {70, 150, 513}, {145, 1025, 3}, {130, 1030, 6}, {3, 1025, 300}, {40, 33, 1100},
    {200, 5, 130}, {2, 5, 2100},   {5, 128, 16},   {5, 129, 16},   {8, 64, 17},    {1, 256, 3},
    {8, 64, 18},   {8, 70, 32},    {8, 70, 33},    {9, 64, 18},    {3, 17, 5},     {7, 2, 25},
    {8, 40, 34},   {8, 33, 48},    {8, 33, 49},
};

static void test_gemm_shapes(void)
{
    void *ws = test_ws(1);
    size_t n_shapes = sizeof shapes / sizeof shapes[0];
    CHECK(ws != NULL);
    if (!ws) return;
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < n_shapes; i++) {
            const int64_t *sh = shapes[i];
            if (mmt_quick() && sh[0] * sh[1] * sh[2] > 200000) continue;
            gcase g =
                make_case(t >> 1, t & 1, sh[0], sh[1], sh[2], (int64_t)(i % 3) * 5, 1.0f, 0.5f);
            run_case(&g, ws, 100 + i);
        }
    free(ws);
}

static void test_gemm_alpha_beta(void)
{
    static const float vals[] = {0.0f, 1.0f, -1.0f, 0.5f};
    void *ws = test_ws(1);
    CHECK(ws != NULL);
    if (!ws) return;
    for (int t = 0; t < 4; t++)
        for (int ia = 0; ia < 4; ia++)
            for (int ib = 0; ib < 4; ib++) {
                /* one packed shape and one skinny shape per combination */
                gcase g1 = make_case(t >> 1, t & 1, 40, 37, 20, 1, vals[ia], vals[ib]);
                gcase g2 = make_case(t >> 1, t & 1, 3, 37, 20, 2, vals[ia], vals[ib]);
                g1.nan_c = g2.nan_c = vals[ib] == 0.0f;
                run_case(&g1, ws, 7);
                run_case(&g2, ws, 8);
            }
    free(ws);
}

/* k == 0 and alpha == 0: C = beta * C, A and B not read (they hold NaN here). */
static void test_gemm_k0_alpha0(void)
{
    float a[12], b[12], c[6];
    for (int i = 0; i < 12; i++) a[i] = b[i] = NAN;
    for (int i = 0; i < 6; i++) c[i] = (float)i;
    CHECK_OK(
        mm_sgemm(MM_NO_TRANS, MM_NO_TRANS, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 2.0f, c, 3, NULL, 0));
    for (int i = 0; i < 6; i++) CHECK(c[i] == 2.0f * (float)i);
    CHECK_OK(mm_sgemm(MM_NO_TRANS, MM_TRANS, 2, 3, 4, 0.0f, a, 4, b, 4, 0.5f, c, 3, NULL, 0));
    for (int i = 0; i < 6; i++) CHECK(c[i] == (float)i);
    for (int i = 0; i < 6; i++) c[i] = NAN;
    CHECK_OK(mm_sgemm(MM_TRANS, MM_NO_TRANS, 2, 3, 4, 0.0f, a, 2, b, 3, 0.0f, c, 3, NULL, 0));
    for (int i = 0; i < 6; i++) CHECK(c[i] == 0.0f);
}

/* Random shapes, transposes, leading dimensions and alpha/beta. */
static void test_gemm_random(void)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int n_cases = mmt_quick() ? 6 : 60;
    void *ws = test_ws(1);
    CHECK(ws != NULL);
    if (!ws) return;
    for (int i = 0; i < n_cases; i++) {
        int64_t d[3];
        for (int j = 0; j < 3; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            /* Skew toward small sizes: half the draws are <= 40. */
            d[j] = (s >> 60) & 1 ? 1 + (int64_t)((s >> 33) % 40) : 1 + (int64_t)((s >> 33) % 300);
        }
        while (d[0] * d[1] * d[2] > (mmt_quick() ? 100000 : 2000000)) d[2] = d[2] / 2 + 1;
        gcase g = make_case((int)(s >> 20) & 1, (int)(s >> 21) & 1, d[0], d[1], d[2],
                            (int64_t)((s >> 22) % 4), (s >> 24) & 1 ? 1.0f : -0.75f,
                            (s >> 25) & 1 ? 0.0f : 1.5f);
        g.nan_c = g.beta == 0.0f && ((s >> 26) & 1);
        run_case(&g, ws, 1000 + (uint64_t)i);
    }
    free(ws);
}

/* On SIMD path p (when available): the run with pool gives the bits of the run without one (c1
 * is scratch of s->nc floats), and both are within the tolerance. */
static void threads_on_path(mmi_simd_path p, const gcase *g, gbufs *s, float *c1, void *ws1,
                            void *ws2, mmi_pool *pool)
{
    memcpy(c1, s->c0, sizeof(float) * s->nc);
    memcpy(s->c, s->c0, sizeof(float) * s->nc);
    if (!mmi_gemm_on_path(p, g->ta, g->tb, g->m, g->n, g->k, g->alpha, s->a, g->lda, s->b, g->ldb,
                          g->beta, c1, g->ldc, ws1, NULL))
        return;
    CHECK(mmi_gemm_on_path(p, g->ta, g->tb, g->m, g->n, g->k, g->alpha, s->a, g->lda, s->b, g->ldb,
                           g->beta, s->c, g->ldc, ws2, pool) == 1);
    if (memcmp(c1, s->c, sizeof(float) * s->nc) != 0)
        mmt_fail(__FILE__, __LINE__, "%s ta=%d tb=%d %lldx%lldx%lld: %d threads differ from 1",
                 path_label[p], g->ta, g->tb, (long long)g->m, (long long)g->n, (long long)g->k,
                 (int)mmi_pool_size(pool));
    check_c(g, s, s->c, path_label[p]);
}

/* A pool of 2 gives the bitwise result of one thread, for every path and transpose (the short-k
 * shapes at the end are threaded only because C is large). */
static void test_gemm_threads(void)
{
    static const int64_t tshapes[][3] = {
        {200, 150, 100},
        {8, 1000, 200},
        {1000, 8, 200},
        {5, 600, 400},
        {600, 5, 400},
        {97, 211, 300},
        {1000, 600, 2},
        /* under 2^20 multiply-adds but C of 2^16: threaded for the size of C */
        {256, 256, 4},
        {256, 256, 1},
    };
    mmi_alloc al;
    mmi_pool *pool = NULL;
    void *ws1 = test_ws(1), *ws2 = test_ws(2);
    CHECK_OK(mmi_alloc_init(&al, NULL, NULL));
    CHECK_OK(mmi_pool_create(&pool, 2, &al, NULL));
    CHECK(pool != NULL && ws1 && ws2);
    if (!pool || !ws1 || !ws2) goto done;
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < sizeof tshapes / sizeof tshapes[0]; i++) {
            const int64_t *sh = tshapes[i];
            gcase g = make_case(t >> 1, t & 1, sh[0], sh[1], sh[2], 3, 0.75f, 0.5f);
            gbufs s;
            float *c1;
            if (mmt_quick() && i > 1) continue;
            memset(&s, 0, sizeof s);
            c1 = NULL;
            if (bufs_init(&g, &s, 55 + i) == 0 && (c1 = alloc_floats(s.nc)) != NULL) {
                for (int via = VIA_NATIVE; via <= VIA_PORTABLE; via++) {
                    memcpy(c1, s.c0, sizeof(float) * s.nc);
                    memcpy(s.c, s.c0, sizeof(float) * s.nc);
                    run_via(via, &g, s.a, s.b, c1, ws1, NULL);
                    run_via(via, &g, s.a, s.b, s.c, ws2, pool);
                    if (memcmp(c1, s.c, sizeof(float) * s.nc) != 0)
                        mmt_fail(__FILE__, __LINE__,
                                 "%s ta=%d tb=%d %lldx%lldx%lld: 2 threads "
                                 "differ from 1",
                                 via_name[via], g.ta, g.tb, (long long)g.m, (long long)g.n,
                                 (long long)g.k);
                }
                reference(&g, &s);
                check_c(&g, &s, s.c, "pool of 2");
                for (int p = 0; p < MMI_SIMD_NPATHS; p++)
                    threads_on_path((mmi_simd_path)p, &g, &s, c1, ws1, ws2, pool);
            } else {
                CHECK(!"out of memory");
            }
            free(c1);
            bufs_free(&s);
        }
done:
    mmi_pool_free(pool);
    free(ws1);
    free(ws2);
}

/* Wherever the AVX2 path is available (compiled and run by this CPU), mmi_gemm_on_path must
 * really run the AVX2 set: both sets are checked against the reference, and FMA rounds
 * differently from the portable mul + add, so identical output would mean it fell back to the
 * portable set. Where it is not available, the entry refuses and leaves C alone. */
static void test_gemm_portable_vs_avx2(void)
{
    gcase g = make_case(0, 1, 50, 60, 70, 0, 1.0f, 0.0f);
    gbufs s;
    float *cp = NULL;
    void *ws;
    float c1 = 7.0f, one = 1.0f;
    if (!mmi_simd_available(MMI_SIMD_AVX2)) {
        CHECK(mmi_gemm_on_path(MMI_SIMD_AVX2, 0, 0, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &c1, 1,
                               NULL, NULL) == 0);
        CHECK(c1 == 7.0f);
        return;
    }
    memset(&s, 0, sizeof s);
    ws = test_ws(1);
    if (bufs_init(&g, &s, 3) != 0 || !ws || !(cp = alloc_floats(s.nc))) {
        CHECK(!"out of memory");
        bufs_free(&s);
        free(ws);
        return;
    }
    reference(&g, &s);
    CHECK(mmi_gemm_on_path(MMI_SIMD_AVX2, g.ta, g.tb, g.m, g.n, g.k, g.alpha, s.a, g.lda, s.b,
                           g.ldb, g.beta, s.c, g.ldc, ws, NULL) == 1);
    CHECK(mmi_gemm_on_path(MMI_SIMD_PORTABLE, g.ta, g.tb, g.m, g.n, g.k, g.alpha, s.a, g.lda, s.b,
                           g.ldb, g.beta, cp, g.ldc, ws, NULL) == 1);
    check_c(&g, &s, s.c, "avx2");
    check_c(&g, &s, cp, "portable");
    CHECK(memcmp(cp, s.c, sizeof(float) * s.nc) != 0);
    free(cp);
    free(ws);
    bufs_free(&s);
}

/* Every kernel set this build compiled (the getters only return addresses, whatever the CPU)
 * has a consistent tile and cache blocks, and the workspace size, a build constant, covers the
 * largest of them for every thread count; the AVX-512 set is compiled exactly when the AVX-512
 * path is, has at least 12 zmm accumulators, and is the one its path dispatches to. */
static void test_gemm_sets(void)
{
    const mmi_gemm_ukr *sets[3];
    mmi_dispatch d;
    sets[0] = &mmi_gemm_ukr_portable;
    sets[1] = mmi_gemm_ukr_avx2();
    sets[2] = mmi_gemm_ukr_avx512();
    CHECK((sets[1] != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK((sets[2] != NULL) == mmi_simd_compiled(MMI_SIMD_AVX512));
    for (int i = 0; i < 3; i++) {
        const mmi_gemm_ukr *u = sets[i];
        if (!u) continue;
        CHECK(u->mr > 0 && u->nr > 0 && u->kc > 0 && u->mc > 0 && u->nc > 0);
        CHECK(u->mc % u->mr == 0 && u->nc % u->nr == 0);
        CHECK(u->packed && u->direct && u->dot && u->pack_a && u->pack_b);
        for (int32_t nt = 1; nt <= 4; nt++) {
            size_t need = sizeof(float) * ((size_t)u->kc * (size_t)u->nc +
                                           (size_t)nt * (size_t)u->mc * (size_t)u->kc);
            CHECK(mmi_gemm_ws_size(nt) >= need);
            CHECK(mmi_gemm_ws_size(nt) % 64 == 0);
        }
    }
    if (sets[2]) {
        /* 16 floats per zmm: mr rows x nr / 16 vectors of accumulators. */
        CHECK(sets[2]->mr * (sets[2]->nr / 16) >= 12);
        CHECK(sets[2]->nr % 16 == 0);
        CHECK(sets[2]->gemv != NULL); /* the one-row NT kernel (test_gemm_gemv) */
    }
    if (mmi_dispatch_for(MMI_SIMD_AVX512, &d)) CHECK(d.gemm == (sets[2] ? sets[2] : sets[1]));
    if (mmi_dispatch_for(MMI_SIMD_AVX2, &d)) CHECK(d.gemm == sets[1]);
    CHECK(mmi_dispatch_for(MMI_SIMD_PORTABLE, &d) == 1 && d.gemm == sets[0]);
}

/* One pack on kernel set u against the layout mmi_gemm_ukr.packed documents, element by element
 * (bitwise: packing only moves floats): op(X)[r0 .. r0+rows, q0 .. q0+kc) of an X stored with
 * leading dimension ld, transposed or not, into panels of `tile` (mr or nr) rows or columns,
 * zero-padded; the floats past the panels stay untouched. is_a picks pack_a (tile = mr, op(A)
 * rows) or pack_b (tile = nr, op(B) columns). Returns the mismatches. */
static int64_t pack_mismatches(const mmi_gemm_ukr *u, int is_a, int tr, int64_t rows, int64_t kc)
{
    const int64_t tile = is_a ? u->mr : u->nr, r0 = 3, q0 = 5, guard = 64;
    const int64_t panels = (rows + tile - 1) / tile, np = panels * tile * kc;
    /* X stored rows x k (not transposed: op(A) rows / op(B)^T rows are the stored rows, i.e.
     * A not transposed or B transposed) or k x rows; ld pads each stored row by 7 floats. */
    const int strided = is_a ? !tr : tr;
    const int64_t srow = strided ? r0 + rows : q0 + kc, scol = strided ? q0 + kc : r0 + rows;
    const int64_t ld = scol + 7;
    float *x = alloc_floats((size_t)(srow * ld)), *pk = alloc_floats((size_t)(np + guard));
    int64_t bad = 0;
    if (!x || !pk) {
        free(x);
        free(pk);
        return -1;
    }
    for (int64_t i = 0; i < srow * ld; i++) x[i] = (float)(i % 1021) * 0.25f - 100.0f;
    for (int64_t i = 0; i < np + guard; i++) pk[i] = -7.5f;
    if (is_a)
        u->pack_a(tr, x, ld, r0, rows, q0, kc, pk);
    else
        u->pack_b(tr, x, ld, q0, kc, r0, rows, pk);
    for (int64_t r = 0; r < panels * tile; r++)
        for (int64_t p = 0; p < kc; p++) {
            float want = 0.0f;
            if (r < rows) want = strided ? x[(r0 + r) * ld + q0 + p] : x[(q0 + p) * ld + r0 + r];
            if (memcmp(&pk[(r / tile) * tile * kc + p * tile + r % tile], &want, sizeof want))
                bad++;
        }
    for (int64_t i = np; i < np + guard; i++) bad += pk[i] != -7.5f;
    free(x);
    free(pk);
    return bad;
}

/* Every available set's pack_a and pack_b, both storage orders, against the documented panel
 * layout on sizes on each side of the panel widths (12 / 32 on AVX-512, 6 / 16 on AVX2) and
 * of the transposing packs' 16-step k blocks: the strided (transposing) packs are the NT
 * shapes' B (a dense layer's x W^T) and the plain A, and must equal the portable packing's
 * layout exactly whatever their register scheme. */
static void test_gemm_pack_layout(void)
{
    static const int64_t rows_list[] = {1, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33, 48, 65};
    static const int64_t kc_list[] = {1, 3, 15, 16, 17, 31, 33, 64};
    for (int pth = 0; pth <= MMI_SIMD_AVX512; pth++) {
        const mmi_gemm_ukr *u;
        if (!mmi_simd_available((mmi_simd_path)pth)) continue;
        u = mmi_gemm_ukr_for((mmi_simd_path)pth);
        for (int is_a = 0; is_a < 2; is_a++)
            for (int tr = 0; tr < 2; tr++)
                for (size_t i = 0; i < sizeof rows_list / sizeof rows_list[0]; i++)
                    for (size_t j = 0; j < sizeof kc_list / sizeof kc_list[0]; j++) {
                        int64_t bad = pack_mismatches(u, is_a, tr, rows_list[i], kc_list[j]);
                        if (bad != 0)
                            mmt_fail(__FILE__, __LINE__,
                                     "path %d %s t=%d rows %lld kc %lld: %lld wrong", pth,
                                     is_a ? "pack_a" : "pack_b", tr, (long long)rows_list[i],
                                     (long long)kc_list[j], (long long)bad);
                    }
    }
}

/* Shapes on each side of the AVX-512 set's tile (12 x 32) and cache blocks (kc 1024, mc 96,
 * nc 512; the direct path's k block of 256; packed whole tiles run in their own kernel, 4 k
 * steps at a time, with the C rows fetched 32 k steps before the end; a last strip of 1..16
 * columns runs with the one before it in 6 x 48 tiles: n 33, 38, 44, 48, 65, 70, 100, 130, 300,
 * 400, 1057) as well as the 6 x 16 ones, the tiny-k direct path (k 1..4), the m == 1 row kernel
 * and the dot path (NT, m <= 8 or a long k; k tails of 16 lanes). In all four transpose cases
 * they take the packed path (TT always), the direct or the dot path. */
static const int64_t edge_shapes[][3] = {
    {11, 31, 5},      {12, 32, 128},  {13, 33, 129},   {23, 47, 127},   {24, 64, 130},
    {25, 65, 257},    {130, 97, 129}, {289, 70, 40},   {300, 100, 300}, {36, 2081, 9},
    {37, 100, 1},     {37, 100, 2},   {37, 100, 3},    {37, 100, 4},    {1, 300, 7},
    {1, 129, 1},      {3, 7, 17},     {8, 9, 255},     {5, 70, 129},    {70, 5, 200},
    {150, 130, 31},   {14, 17, 16},   {97, 1057, 513}, {264, 256, 256}, {40, 96, 33},
    {130, 530, 1030}, {97, 40, 1025}, {100, 48, 70},   {61, 300, 70},   {40, 400, 20},
};

/* The edge shapes on path p (which must be available) with alpha/beta cycling through (1, 0)
 * with C full of NaN, (-0.75, 1.5) and (0.5, 1). */
static void edges_on_path(mmi_simd_path p)
{
    static const float ab[3][2] = {{1.0f, 0.0f}, {-0.75f, 1.5f}, {0.5f, 1.0f}};
    void *ws = test_ws(1);
    CHECK(ws != NULL);
    for (int t = 0; t < 4 && ws; t++)
        for (size_t i = 0; i < sizeof edge_shapes / sizeof edge_shapes[0]; i++) {
            const int64_t *sh = edge_shapes[i];
            size_t v = (i + (size_t)t) % 3;
            gcase g = make_case(t >> 1, t & 1, sh[0], sh[1], sh[2], (int64_t)(i % 2) * 3, ab[v][0],
                                ab[v][1]);
            gbufs s;
            if (mmt_quick() && sh[0] * sh[1] * sh[2] > 200000) continue;
            g.nan_c = g.beta == 0.0f;
            memset(&s, 0, sizeof s);
            if (bufs_init(&g, &s, 500 + i) != 0) {
                CHECK(!"out of memory");
                bufs_free(&s);
                continue;
            }
            reference(&g, &s);
            check_on_path(p, &g, &s, ws, NULL);
            bufs_free(&s);
        }
    free(ws);
}

/* Pools of 2 and 3 give the bits of one thread on path p, on shapes that split into chunks on
 * every path and cross the 12 x 32 tile's blocks. */
static void threads_edges_on_path(mmi_simd_path p)
{
    static const int64_t tshapes[][3] = {
        {301, 150, 260}, {13, 2100, 40}, {290, 40, 300},
        {8, 700, 300},   {1000, 400, 3}, {150, 600, 1100},
    };
    mmi_alloc al;
    mmi_pool *pool[2] = {NULL, NULL};
    void *ws1 = test_ws(1), *ws3 = test_ws(3);
    CHECK_OK(mmi_alloc_init(&al, NULL, NULL));
    for (int i = 0; i < 2; i++) CHECK_OK(mmi_pool_create(&pool[i], 2 + i, &al, NULL));
    CHECK(ws1 && ws3 && pool[0] && pool[1]);
    for (int t = 0; t < 4 && ws1 && ws3 && pool[0] && pool[1]; t++)
        for (size_t i = 0; i < sizeof tshapes / sizeof tshapes[0]; i++) {
            const int64_t *sh = tshapes[i];
            gcase g = make_case(t >> 1, t & 1, sh[0], sh[1], sh[2], 1, 1.25f, i % 2 ? 0.0f : 0.5f);
            gbufs s;
            float *c1 = NULL;
            if (mmt_quick() && i > 1) continue;
            memset(&s, 0, sizeof s);
            if (bufs_init(&g, &s, 900 + i) == 0 && (c1 = alloc_floats(s.nc)) != NULL) {
                reference(&g, &s);
                for (int np = 0; np < 2; np++) threads_on_path(p, &g, &s, c1, ws1, ws3, pool[np]);
            } else {
                CHECK(!"out of memory");
            }
            free(c1);
            bufs_free(&s);
        }
    for (int i = 0; i < 2; i++) mmi_pool_free(pool[i]);
    free(ws1);
    free(ws3);
}

/* The edge shapes and the thread check on every available path but AVX-512 (its own test). */
static void test_gemm_edges(void)
{
    for (int p = 0; p < MMI_SIMD_AVX512; p++)
        if (mmi_simd_available((mmi_simd_path)p)) {
            edges_on_path((mmi_simd_path)p);
            threads_edges_on_path((mmi_simd_path)p);
        }
}

/* The AVX-512 set against the float64 reference on its edge shapes, and bitwise across thread
 * counts. Where the path is not available it must refuse and leave C alone, and the test says
 * why it skipped. */
static void test_gemm_avx512(void)
{
    float c1 = 7.0f, one = 1.0f;
    if (!mmi_simd_available(MMI_SIMD_AVX512)) {
        CHECK(mmi_gemm_on_path(MMI_SIMD_AVX512, 0, 0, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &c1, 1,
                               NULL, NULL) == 0);
        CHECK(c1 == 7.0f);
        mmt_skip(mmi_simd_compiled(MMI_SIMD_AVX512)
                     ? "the AVX-512 GEMM set is compiled but this CPU/OS does not run AVX-512 "
                       "F/DQ/BW/VL"
                     : "this build did not compile the AVX-512 paths");
        return;
    }
    CHECK(mmi_gemm_ukr_avx512() != NULL);
    edges_on_path(MMI_SIMD_AVX512);
    threads_edges_on_path(MMI_SIMD_AVX512);
}

/* One row of A, NT (y = x W^T at batch 1): the gemv path of a set that has one (the AVX-512
 * set), the dot or small-k NT path of the others. On every available path: n on each side of
 * the 16-row tile and of its tails (1..3 rows alone, 4..15 as one masked tile), k on each side
 * of the 16-lane steps, padded ldb, alpha/beta with C full of NaN at beta 0, against the
 * reference. Where the set has a gemv, every element must also be bitwise the same column
 * computed alone (n = 1): that is what keeps a thread split of the columns invisible; and
 * pools of 2 and 3 give the one-thread bits on shapes that split. */
static void gemv_columns_alone(mmi_simd_path p, const gcase *g, const gbufs *s)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(p);
    if (!u->gemv) return;
    for (int64_t j = 0; j < g->n; j++) {
        float cj = s->c0[j];
        CHECK(mmi_gemm_on_path(p, 0, 1, 1, 1, g->k, g->alpha, s->a, g->lda, s->b + j * g->ldb,
                               g->ldb, g->beta, &cj, 1, NULL, NULL) == 1);
        if (memcmp(&cj, &s->c[j], sizeof cj) != 0) {
            mmt_fail(__FILE__, __LINE__,
                     "%s 1x%lldx%lld: column %lld alone gives %.9g, in the row %.9g", path_label[p],
                     (long long)g->n, (long long)g->k, (long long)j, (double)cj, (double)s->c[j]);
            return;
        }
    }
}

static void test_gemm_gemv(void)
{
    static const int64_t ns[] = {1, 2, 3, 4, 5, 15, 16, 17, 19, 20, 31, 32, 33, 255, 256, 257};
    static const int64_t ks[] = {1, 2, 3, 15, 16, 17, 255, 256, 257, 2100};
    static const float ab[3][2] = {{1.0f, 0.0f}, {-0.75f, 1.5f}, {0.5f, 1.0f}};
    static const int64_t tshapes[][2] = {{3000, 400}, {1100, 1000}, {4100, 257}};
    mmi_alloc al;
    mmi_pool *pool[2] = {NULL, NULL};
    void *ws1 = test_ws(1), *ws3 = test_ws(3);
    size_t v = 0;
    CHECK(ws1 && ws3);
    for (size_t in = 0; ws1 && in < sizeof ns / sizeof ns[0]; in++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++, v++) {
            gcase g = make_case(0, 1, 1, ns[in], ks[ik], (int64_t)(v % 3) * 3, ab[v % 3][0],
                                ab[v % 3][1]);
            gbufs s;
            if (mmt_quick() && ns[in] * ks[ik] > 20000) continue;
            g.nan_c = g.beta == 0.0f;
            memset(&s, 0, sizeof s);
            if (bufs_init(&g, &s, 700 + v) != 0) {
                CHECK(!"out of memory");
                bufs_free(&s);
                continue;
            }
            reference(&g, &s);
            for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
                memcpy(s.c, s.c0, sizeof(float) * s.nc);
                if (!mmi_gemm_on_path((mmi_simd_path)p, 0, 1, 1, g.n, g.k, g.alpha, s.a, g.lda, s.b,
                                      g.ldb, g.beta, s.c, g.ldc, ws1, NULL))
                    continue;
                check_c(&g, &s, s.c, path_label[p]);
                gemv_columns_alone((mmi_simd_path)p, &g, &s);
            }
            bufs_free(&s);
        }
    CHECK_OK(mmi_alloc_init(&al, NULL, NULL));
    for (int i = 0; i < 2; i++) CHECK_OK(mmi_pool_create(&pool[i], 2 + i, &al, NULL));
    for (size_t i = 0; ws1 && ws3 && pool[0] && pool[1] && i < sizeof tshapes / sizeof tshapes[0];
         i++) {
        gcase g = make_case(0, 1, 1, tshapes[i][0], tshapes[i][1], 1, 1.25f, i % 2 ? 0.0f : 0.5f);
        gbufs s;
        float *c1 = NULL;
        if (mmt_quick() && i > 0) continue;
        memset(&s, 0, sizeof s);
        if (bufs_init(&g, &s, 950 + i) == 0 && (c1 = alloc_floats(s.nc)) != NULL) {
            reference(&g, &s);
            for (int p = 0; p < MMI_SIMD_NPATHS; p++)
                for (int np = 0; np < 2; np++)
                    threads_on_path((mmi_simd_path)p, &g, &s, c1, ws1, ws3, pool[np]);
        } else {
            CHECK(!"out of memory");
        }
        free(c1);
        bufs_free(&s);
    }
    for (int i = 0; i < 2; i++) mmi_pool_free(pool[i]);
    free(ws1);
    free(ws3);
}

/* A few rows of A, NT, short k (a dense layer's forward for a few agents): the small-k NT
 * kernel of the sets that have one (AVX-512, AVX2), the stack copy or the dot path otherwise.
 * On every available path: m 1..8, every k from 1 to 48 (odd ones, the 4-step and 8-step tails
 * of the AVX2 transposes, the 16-step ones of AVX-512), n on each side of the 8- and 16-column
 * strips, padded leading dimensions, alpha and beta as the other kernels (C full of NaN at
 * beta 0), against the float64 reference. Where the driver runs the set's small_nt
 * (mmi_gemm_takes_small_nt), every element must also be bitwise the same row of a 24-row
 * product (the packed path, which the training forward of the same layer takes), with the rows
 * and gap columns it does not own untouched. */
static void small_nt_rows(mmi_simd_path p, const gcase *g24, const gbufs *s, const float *c24,
                          float *cs)
{
    for (int64_t m = 1; m <= 8; m++) {
        gcase g = *g24;
        int64_t bad = -1;
        int own = mmi_gemm_takes_small_nt(p, m, g.n, g.k);
        g.m = m;
        memcpy(cs, s->c0, sizeof(float) * s->nc);
        CHECK(mmi_gemm_on_path(p, 0, 1, m, g.n, g.k, g.alpha, s->a, g.lda, s->b, g.ldb, g.beta, cs,
                               g.ldc, NULL, NULL) == 1);
        check_c(&g, s, cs, path_label[p]);
        for (int64_t e = 0; e < (int64_t)s->nc && bad < 0; e++) {
            int mine = e / g.ldc < m && e % g.ldc < g.n;
            if (!mine && memcmp(&cs[e], &s->c0[e], sizeof(float)) != 0) bad = e;
            if (mine && own && memcmp(&cs[e], &c24[e], sizeof(float)) != 0) bad = e;
        }
        if (bad >= 0) {
            mmt_fail(__FILE__, __LINE__,
                     "%s small-k NT %lldx%lldx%lld: C(%lld,%lld) = %.9g differs from the 24-row "
                     "product's (or a cell it does not own was written)",
                     path_label[p], (long long)m, (long long)g.n, (long long)g.k,
                     (long long)(bad / g.ldc), (long long)(bad % g.ldc), (double)cs[bad]);
            return;
        }
    }
}

static void test_gemm_small_nt(void)
{
    static const int64_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 24, 33, 64, 70};
    static const float ab[4][2] = {{1.0f, 0.0f}, {-0.75f, 0.0f}, {0.5f, 1.0f}, {1.25f, -0.5f}};
    void *ws = test_ws(1);
    int any = 0;
    size_t v = 0;
    CHECK(ws != NULL);
    for (int p = 0; p < MMI_SIMD_NPATHS; p++)
        any |= mmi_simd_available((mmi_simd_path)p) && mmi_gemm_ukr_for((mmi_simd_path)p)->small_nt;
    for (int64_t k = 1; ws && k <= MMI_GEMM_SMALL_NT_K; k++)
        for (int t = 0; t < 2; t++, v++) {
            gcase g = make_case(0, 1, 24, ns[(v * 5) % 12], k, (int64_t)(v % 3) * 2, ab[v % 4][0],
                                ab[v % 4][1]);
            gbufs s;
            float *cs = NULL;
            if (mmt_quick() && k % 3 != 0) continue;
            g.nan_c = g.beta == 0.0f;
            memset(&s, 0, sizeof s);
            if (bufs_init(&g, &s, 1300 + v) != 0 || !(cs = alloc_floats(s.nc))) {
                CHECK(!"out of memory");
                free(cs);
                bufs_free(&s);
                continue;
            }
            reference(&g, &s);
            for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
                memcpy(s.c, s.c0, sizeof(float) * s.nc);
                if (!mmi_gemm_on_path((mmi_simd_path)p, 0, 1, g.m, g.n, g.k, g.alpha, s.a, g.lda,
                                      s.b, g.ldb, g.beta, s.c, g.ldc, ws, NULL))
                    continue;
                check_c(&g, &s, s.c, path_label[p]);
                small_nt_rows((mmi_simd_path)p, &g, &s, s.c, cs);
            }
            free(cs);
            bufs_free(&s);
        }
    free(ws);
    if (!any) mmt_skip("no available GEMM set has a small-k NT kernel (AVX2 and AVX-512 have one)");
}

/* One kernel set's expected choices: each {m, n, k} of `sh` must (want = 1) or must not
 * (want = 0) take the small-k NT kernel on path p. */
static void check_small_nt_shapes(mmi_simd_path p, const int64_t (*sh)[3], size_t count, int want)
{
    for (size_t i = 0; i < count; i++)
        CHECK(mmi_gemm_takes_small_nt(p, sh[i][0], sh[i][1], sh[i][2]) == want);
}

/* The driver's choice for a few rows NT: the AVX2 set's small_nt for k <= 16 and up to 8 k steps
 * per row of A (longer k with few rows runs as dot products), the AVX-512 set's for every
 * k <= 48 from two rows (one row is its gemv), never on the portable set or beyond 8 rows. */
static void test_gemm_small_nt_choice(void)
{
    static const int64_t avx2_yes[][3] = {{8, 64, 18}, {2, 64, 16}, {3, 64, 24},
                                          {4, 3, 32},  {6, 64, 48}, {8, 64, 48},
                                          {2, 1, 1},   {1, 64, 16}, {1, 64, 2}};
    static const int64_t avx2_no[][3] = {{2, 64, 17}, {3, 64, 25}, {5, 64, 41},
                                         {1, 64, 17}, {9, 64, 18}, {8, 64, 49}};
    static const int64_t avx512_yes[][3] = {{2, 64, 48}, {8, 64, 18}, {2, 5, 1}};
    static const int64_t avx512_no[][3] = {{1, 64, 18}, {9, 64, 18}, {8, 64, 49}};
#define N_SHAPES(t) (sizeof t / sizeof t[0])
    const mmi_gemm_ukr *u2 = mmi_gemm_ukr_avx2(), *u5 = mmi_gemm_ukr_avx512();
    for (int i = 0; i < MMI_SIMD_NPATHS; i++) {
        const mmi_simd_path p = (mmi_simd_path)i;
        const mmi_gemm_ukr *u;
        if (!mmi_simd_available(p)) continue;
        u = mmi_gemm_ukr_for(p);
        CHECK(mmi_gemm_takes_small_nt(p, 8, 64, 18) == (u->small_nt != NULL));
        if (u == u2) {
            check_small_nt_shapes(p, avx2_yes, N_SHAPES(avx2_yes), 1);
            check_small_nt_shapes(p, avx2_no, N_SHAPES(avx2_no), 0);
        }
        if (u == u5) {
            check_small_nt_shapes(p, avx512_yes, N_SHAPES(avx512_yes), 1);
            check_small_nt_shapes(p, avx512_no, N_SHAPES(avx512_no), 0);
        }
    }
#undef N_SHAPES
    CHECK(mmi_gemm_takes_small_nt(MMI_SIMD_PORTABLE, 8, 64, 18) == 0);
}

/* B kept transposed (mmi_gemm_nt_panel, what mm_policy_act keeps of its actor's first layer):
 * wherever the dispatched set takes the panel, each row of the product over it is bit for bit
 * that row of a 24-row NT product (the packed path: a network's training forward), and where
 * the set runs small_nt the whole m-row NT product too, for alpha and beta of every kind, with
 * the epilogue called once over C; the panel check sees a changed B. */
typedef struct panel_ep_ctx {
    int64_t calls, i0, i1, j0, j1;
} panel_ep_ctx;

static void panel_ep(void *ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    panel_ep_ctx *e = (panel_ep_ctx *)ctx;
    e->calls++, e->i0 = i0, e->i1 = i1, e->j0 = j0, e->j1 = j1;
}

static void test_gemm_nt_panel(void)
{
    static const int64_t ns[] = {1, 3, 8, 9, 16, 17, 33, 64, 70};
    static const float ab[4][2] = {{1.0f, 0.0f}, {-0.75f, 0.0f}, {0.5f, 1.0f}, {1.25f, -0.5f}};
    const mmi_simd_path path = mmi_simd_path_get();
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(path);
    enum { MAXN = 70, MAXK = MMI_GEMM_SMALL_NT_K, LDA = MAXK + 3, LDB = MAXK + 5, TALL = 24 };
    float *a = alloc_floats(TALL * LDA), *b = alloc_floats(MAXN * LDB);
    float *c0 = alloc_floats(TALL * MAXN), *c1 = alloc_floats(TALL * MAXN);
    float *c2 = alloc_floats(TALL * MAXN);
    void *ws = test_ws(1);
    float *pan = alloc_floats((size_t)mmi_gemm_nt_panel_floats(MAXN, MAXK));
    int64_t taken = 0, v = 0;
    CHECK(a && b && c0 && c1 && c2 && pan && ws);
    CHECK(mmi_gemm_nt_panel_floats(64, 18) == 64 * 18 && mmi_gemm_nt_panel_floats(17, 2) == 64);
    for (int64_t k = 1; a && b && c0 && c1 && c2 && pan && ws && k <= MAXK; k++)
        for (int64_t m = 1; m <= 8; m++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++, v++) {
                const int64_t n = ns[ni];
                const float al = ab[v % 4][0], be = ab[v % 4][1];
                int want = u->small_nt_panel != NULL;
                const size_t rows_m = sizeof(float) * (size_t)(m * MAXN);
                panel_ep_ctx e = {0, 0, 0, 0, 0};
                mmi_gemm_ep ep = {panel_ep, &e};
                /* NT products go to OpenBLAS in such a build (the tests are compiled without
                 * the library's MM_HAVE_OPENBLAS, so ask the library) */
                if (strstr(mm_build_info(), "blas=openblas")) want = 0;
                CHECK(mmi_gemm_nt_takes_panel(m, n, k) == want);
                if (!want) continue;
                taken++;
                mmt_fill_uniform(a, TALL * LDA, 7000 + (uint64_t)v, -1, 1);
                mmt_fill_uniform(b, MAXN * LDB, 8000 + (uint64_t)v, -1, 1);
                mmt_fill_uniform(c0, TALL * MAXN, 9000 + (uint64_t)v, -1, 1);
                memcpy(c1, c0, sizeof(float) * TALL * MAXN);
                memcpy(c2, c0, sizeof(float) * TALL * MAXN);
                mmi_gemm_nt_panel(n, k, b, LDB, pan);
                CHECK(mmi_gemm_nt_panel_is(n, k, b, LDB, pan));
                mmi_gemm_nt_panel_then(m, n, k, al, a, LDA, pan, be, c2, MAXN, &ep);
                CHECK(e.calls == 1 && e.i0 == 0 && e.i1 == m && e.j0 == 0 && e.j1 == n);
                CHECK(memcmp(c2 + m * MAXN, c0 + m * MAXN, sizeof(float) * (TALL - m) * MAXN) == 0);
                mmi_gemm_then(0, 1, TALL, n, k, al, a, LDA, b, LDB, be, c1, MAXN, ws, NULL, NULL);
                CHECK(memcmp(c1, c2, rows_m) == 0); /* the rows of the packed path */
                if (mmi_gemm_takes_small_nt(path, m, n, k)) {
                    memcpy(c1, c0, rows_m);
                    mmi_gemm_then(0, 1, m, n, k, al, a, LDA, b, LDB, be, c1, MAXN, NULL, NULL,
                                  NULL);
                    CHECK(memcmp(c1, c2, rows_m) == 0); /* the m-row product itself */
                }
                b[(n - 1) * LDB + k - 1] += 1.0f; /* a write to B: the panel is stale */
                CHECK(!mmi_gemm_nt_panel_is(n, k, b, LDB, pan));
            }
    if (!taken) mmt_skip("the dispatched GEMM set keeps no panel (the AVX2 set does)");
    free(a), free(b), free(c0), free(c1), free(c2), free(pan), free(ws);
}

/* Every misuse returns its code and leaves C untouched. */
/* C and A (or B) as blocks of one buffer, leading dimensions drawn independently: mm_sgemm
 * refuses exactly the layouts in which C shares an element with the operand (counted here
 * element by element), and every accepted layout gives bitwise the C of the same call on
 * separate copies of the buffer. Before, any overlap of the storage ranges with different
 * leading dimensions was refused, also rows that interleave without touching. */
static void test_gemm_exact_overlap(void)
{
    enum { NB = 160, TRIALS = 3000 };
    float *buf = aligned_alloc(64, NB * sizeof(float)),
          *buf0 = aligned_alloc(64, NB * sizeof(float));
    float *bufo = aligned_alloc(64, NB * sizeof(float)),
          *bufc = aligned_alloc(64, NB * sizeof(float));
    float other[64];
    uint64_t r = 0x9E3779B97F4A7C15ull;
    int64_t accepted_close = 0, refused = 0;
    CHECK(buf && buf0 && bufo && bufc);
    if (!buf || !buf0 || !bufo || !bufc) goto done;
    mmt_fill_uniform(buf0, NB, 21, -1.0f, 1.0f);
    mmt_fill_uniform(other, 64, 22, -1.0f, 1.0f);
    for (int t = 0; t < TRIALS; t++) {
#define DRAW(lo, hi)                                                                               \
    (r = r * 6364136223846793005ull + 1442695040888963407ull,                                      \
     (lo) + (int64_t)((r >> 33) % (uint64_t)((hi) - (lo) + 1)))
        const int64_t m = DRAW(1, 5), n = DRAW(1, 5), k = DRAW(1, 4);
        const int32_t ta = (int32_t)DRAW(0, 1), tb = (int32_t)DRAW(0, 1),
                      in_a = (int32_t)DRAW(0, 1);
        /* the stored operand in the buffer: A (rows x cols) or B */
        const int64_t rows = in_a ? (ta ? k : m) : (tb ? n : k);
        const int64_t cols = in_a ? (ta ? m : k) : (tb ? k : n);
        const int64_t ldx = cols + DRAW(0, 6), ldc = n + DRAW(0, 6);
        const int64_t ox = DRAW(0, 60), oc = DRAW(0, 60);
        const int64_t lda = in_a ? ldx : (ta ? m : k), ldb = in_a ? (tb ? k : n) : ldx;
        unsigned char mark[NB] = {0};
        int share = 0, rc;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) mark[ox + i * ldx + j] = 1;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) share |= mark[oc + i * ldc + j];
        memcpy(buf, buf0, NB * sizeof(float));
        rc = in_a ? mm_sgemm(ta, tb, m, n, k, 1.0f, buf + ox, lda, other, ldb, 0.5f, buf + oc, ldc,
                             NULL, 0)
                  : mm_sgemm(ta, tb, m, n, k, 1.0f, other, lda, buf + ox, ldb, 0.5f, buf + oc, ldc,
                             NULL, 0);
        CHECK_STATUS(rc, share ? MM_E_INVALID_ARG : MM_OK);
        if (rc != MM_OK) {
            refused++;
            CHECK(memcmp(buf, buf0, NB * sizeof(float)) == 0);
            continue;
        }
        /* the same call with the operand and C in separate copies */
        memcpy(bufo, buf0, NB * sizeof(float));
        memcpy(bufc, buf0, NB * sizeof(float));
        CHECK_OK(in_a ? mm_sgemm(ta, tb, m, n, k, 1.0f, bufo + ox, lda, other, ldb, 0.5f, bufc + oc,
                                 ldc, NULL, 0)
                      : mm_sgemm(ta, tb, m, n, k, 1.0f, other, lda, bufo + ox, ldb, 0.5f, bufc + oc,
                                 ldc, NULL, 0));
        CHECK(memcmp(buf, bufc, NB * sizeof(float)) == 0);
        accepted_close += ox + (rows - 1) * ldx + cols > oc && oc + (m - 1) * ldc + n > ox;
#undef DRAW
    }
    /* both kinds occur, and accepted layouts with overlapping storage ranges too */
    CHECK(refused > 0 && accepted_close > 0);
done:
    free(buf), free(buf0), free(bufo), free(bufc);
}

static void test_gemm_misuse(void)
{
    float a[64], b[64], c[64], keep[64];
    size_t wsz = mm_sgemm_workspace_size();
    unsigned char *ws = (unsigned char *)aligned_alloc(64, wsz + 64);
    const int64_t big = INT64_MAX / 2;
    CHECK(ws != NULL && wsz > 0 && wsz % 64 == 0);
    if (!ws) return;
    mmt_fill_uniform(a, 64, 1, -1.0f, 1.0f);
    mmt_fill_uniform(b, 64, 2, -1.0f, 1.0f);
    mmt_fill_uniform(c, 64, 3, -1.0f, 1.0f);
    memcpy(keep, c, sizeof c);
#define SG(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, W, WS)                                         \
    mm_sgemm(ta, tb, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, W, WS)
    CHECK_STATUS(SG(2, 0, 4, 4, 4, a, 4, b, 4, c, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, -1, 4, 4, 4, a, 4, b, 4, c, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, -1, 4, 4, a, 4, b, 4, c, 4, NULL, 0), MM_E_SHAPE);
    CHECK_STATUS(SG(0, 0, 4, -1, 4, a, 4, b, 4, c, 4, NULL, 0), MM_E_SHAPE);
    CHECK_STATUS(SG(0, 0, 4, 4, -1, a, 4, b, 4, c, 4, NULL, 0), MM_E_SHAPE);
    CHECK_STATUS(SG(0, 0, 4, 5, 6, a, 5, b, 5, c, 5, NULL, 0), MM_E_SHAPE); /* lda < k */
    CHECK_STATUS(SG(1, 0, 4, 5, 6, a, 3, b, 5, c, 5, NULL, 0), MM_E_SHAPE); /* lda < m */
    CHECK_STATUS(SG(0, 0, 4, 5, 6, a, 6, b, 4, c, 5, NULL, 0), MM_E_SHAPE); /* ldb < n */
    CHECK_STATUS(SG(0, 1, 4, 5, 6, a, 6, b, 5, c, 5, NULL, 0), MM_E_SHAPE); /* ldb < k */
    CHECK_STATUS(SG(0, 0, 4, 5, 6, a, 6, b, 5, c, 4, NULL, 0), MM_E_SHAPE); /* ldc < n */
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, -4, b, 4, c, 4, NULL, 0), MM_E_SHAPE);
    CHECK_STATUS(SG(0, 0, big, 2, 2, a, 2, b, 2, c, 2, NULL, 0), MM_E_RANGE);
    CHECK_STATUS(SG(0, 0, 2, 2, 2, a, big, b, 2, c, 2, NULL, 0), MM_E_RANGE);
    CHECK_STATUS(SG(0, 0, 2, 2, 2, a, 2, b, 2, c, big, NULL, 0), MM_E_RANGE);
    CHECK_STATUS(
        SG(0, 0, 3, (int64_t)1 << 61, 1, a, 1, b, (int64_t)1 << 61, c, (int64_t)1 << 61, NULL, 0),
        MM_E_RANGE); /* bytes overflow int64 */
    CHECK_STATUS(SG(0, 0, 4, 4, 4, NULL, 4, b, 4, c, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, NULL, 4, c, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, b, 4, NULL, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, c, 4, b, 4, c, 4, NULL, 0), MM_E_INVALID_ARG); /* C is A */
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, c, 4, c, 4, NULL, 0), MM_E_INVALID_ARG); /* C is B */
    /* Partial overlaps (before: MM_OK with a wrong C): C one row into A, into B (transposed),
     * a workspace over A or C; side by side blocks of one matrix (one ld, disjoint columns)
     * share nothing and stay accepted. */
    CHECK_STATUS(SG(0, 0, 4, 4, 4, c, 4, b, 4, c + 4, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 1, 4, 4, 4, a, 4, c + 8, 4, c, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 2, 2, 2, c, 4, b, 2, c + 1, 4, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 2, 2, 2, c, 4, b, 2, c + 1, 3, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, (float *)ws, 4, b, 4, c, 4, ws, wsz), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, b, 4, (float *)ws + 16, 4, ws, wsz), MM_E_INVALID_ARG);
    CHECK(memcmp(c, keep, sizeof c) == 0);
    {
        float m2[4 * 8], want[16];
        mmt_fill_uniform(m2, 32, 4, -1.0f, 1.0f);
        for (int i = 0; i < 4; i++) memcpy(keep + 4 * i, m2 + 8 * i, 4 * sizeof(float));
        CHECK_OK(SG(0, 0, 4, 4, 4, keep, 4, b, 4, want, 4, NULL, 0));
        CHECK_OK(SG(0, 0, 4, 4, 4, m2, 8, b, 4, m2 + 4, 8, NULL, 0)); /* [A | C] */
        for (int i = 0; i < 4; i++)
            CHECK(memcmp(m2 + 8 * i + 4, want + 4 * i, 4 * sizeof(float)) == 0);
        memcpy(keep, c, sizeof c);
    }
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, b, 4, c, 4, ws + 4, wsz), MM_E_INVALID_ARG);
    CHECK_STATUS(SG(0, 0, 4, 4, 4, a, 4, b, 4, c, 4, ws, wsz - 1), MM_E_INVALID_ARG);
    CHECK(memcmp(c, keep, sizeof c) == 0);
    /* Empty products accept NULL for the empty operands. */
    CHECK_OK(SG(0, 0, 0, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0));
    CHECK_OK(SG(0, 0, 0, 4, 4, NULL, 4, b, 4, NULL, 4, NULL, 0));
    CHECK_OK(SG(1, 1, 4, 0, 4, a, 4, NULL, 4, NULL, 0, NULL, 0));
    /* A valid workspace gives the same result as the internal allocation. */
    CHECK_OK(SG(0, 1, 8, 8, 8, a, 8, b, 8, c, 8, ws, wsz));
    memcpy(keep, c, sizeof c);
    CHECK_OK(SG(0, 1, 8, 8, 8, a, 8, b, 8, c, 8, NULL, 0));
    CHECK(memcmp(c, keep, sizeof c) == 0);
#undef SG
    free(ws);
}

/* mm_sgemm_mt: pools of 1..4 threads and no pool agree bitwise with each other and with the
 * float64 reference, on odd shapes of every path and transpose, including several k blocks
 * (k > KC 256) and several column blocks of the shared packed B (n > NC 1024); the pool's own
 * workspace and a caller's give the same bits; calls allocate nothing through the pool's
 * allocator (the counting allocator sees no call after create). */
static void test_gemm_threads_mt(void)
{
    static const int64_t tshapes[][3] = {
        {97, 211, 300}, {257, 255, 257}, {13, 1031, 70}, {300, 7, 100}, {150, 1100, 300},
        {5, 600, 400},  {1000, 600, 2},  {64, 64, 64},   {31, 33, 513},
    };
    mm_threads *th[5] = {NULL, NULL, NULL, NULL, NULL};
    mm_allocator al;
    mmt_counter cnt;
    int64_t allocs_after_create;
    void *ws4 = aligned_alloc(64, mm_sgemm_mt_workspace_size(4));
    CHECK(ws4 != NULL);
    mmt_counting_allocator(&al, &cnt, -1);
    for (int32_t n = 1; n <= 4; n++) CHECK_OK(mm_threads_create(&th[n], n, &al));
    allocs_after_create = cnt.n_alloc;
    for (int t = 0; t < 4 && ws4; t++)
        for (size_t i = 0; i < sizeof tshapes / sizeof tshapes[0]; i++) {
            const int64_t *sh = tshapes[i];
            gcase g = make_case(t >> 1, t & 1, sh[0], sh[1], sh[2], (int64_t)(i % 2) * 3, 0.75f,
                                i % 3 ? 0.5f : 0.0f);
            gbufs s;
            float *c1 = NULL;
            if (mmt_quick() && i > 2) continue;
            memset(&s, 0, sizeof s);
            if (bufs_init(&g, &s, 77 + i) != 0 || (c1 = alloc_floats(s.nc)) == NULL) {
                CHECK(!"out of memory");
                free(c1);
                bufs_free(&s);
                continue;
            }
            memcpy(c1, s.c0, sizeof(float) * s.nc);
            CHECK_OK(mm_sgemm_mt(g.ta, g.tb, g.m, g.n, g.k, g.alpha, s.a, g.lda, s.b, g.ldb, g.beta,
                                 c1, g.ldc, NULL, NULL, 0));
            reference(&g, &s);
            check_c(&g, &s, c1, "mm_sgemm_mt, no pool");
            for (int32_t n = 1; n <= 4; n++)
                for (int own = 0; own < 2; own++) {
                    memcpy(s.c, s.c0, sizeof(float) * s.nc);
                    CHECK_OK(mm_sgemm_mt(g.ta, g.tb, g.m, g.n, g.k, g.alpha, s.a, g.lda, s.b, g.ldb,
                                         g.beta, s.c, g.ldc, th[n], own ? NULL : ws4,
                                         own ? 0 : mm_sgemm_mt_workspace_size(4)));
                    if (memcmp(c1, s.c, sizeof(float) * s.nc) != 0)
                        mmt_fail(__FILE__, __LINE__,
                                 "ta=%d tb=%d %lldx%lldx%lld: %d threads "
                                 "(%s workspace) differ from no pool",
                                 g.ta, g.tb, (long long)g.m, (long long)g.n, (long long)g.k, (int)n,
                                 own ? "own" : "caller's");
                }
            free(c1);
            bufs_free(&s);
        }
    CHECK_EQ_I64(cnt.n_alloc, allocs_after_create);
    for (int32_t n = 1; n <= 4; n++) mm_threads_free(th[n]);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    free(ws4);
}

/* Misuse of mm_threads_create and mm_sgemm_mt returns the documented codes and leaves C and
 * the pool untouched and usable. */
static void test_gemm_threads_mt_misuse(void)
{
    mm_threads *th = NULL;
    mm_allocator bad;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {9, 9, 9, 9};
    size_t ws2 = mm_sgemm_mt_workspace_size(2);
    unsigned char *ws = (unsigned char *)aligned_alloc(64, ws2 + 64);
    CHECK_EQ_I64((int64_t)mm_sgemm_mt_workspace_size(0), 0);
    CHECK_EQ_I64((int64_t)mm_sgemm_mt_workspace_size(257), 0);
    CHECK(mm_sgemm_mt_workspace_size(1) == mm_sgemm_workspace_size());
    CHECK(ws2 > mm_sgemm_mt_workspace_size(1));
    CHECK_STATUS(mm_threads_create(NULL, 2, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_threads_create(&th, 0, NULL), MM_E_RANGE);
    CHECK(th == NULL);
    CHECK_STATUS(mm_threads_create(&th, 257, NULL), MM_E_RANGE);
    memset(&bad, 0, sizeof bad);
    bad.struct_size = 3;
    CHECK_STATUS(mm_threads_create(&th, 2, &bad), MM_E_INVALID_ARG);
    mm_threads_free(NULL);
    CHECK_OK(mm_threads_create(&th, 2, NULL));
    CHECK(ws != NULL && th != NULL);
    if (!ws || !th) goto done;
    CHECK_STATUS(mm_sgemm_mt(2, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, NULL, 0),
                 MM_E_INVALID_ARG);
    CHECK_STATUS(mm_sgemm_mt(0, 0, -1, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, NULL, 0),
                 MM_E_SHAPE);
    CHECK_STATUS(mm_sgemm_mt(0, 0, 2, 2, 3, 1.0f, a, 2, b, 2, 0.0f, c, 2, th, NULL, 0), MM_E_SHAPE);
    CHECK_STATUS(mm_sgemm_mt(0, 0, 2, 2, 3, 1.0f, NULL, 3, b, 2, 0.0f, c, 2, th, NULL, 0),
                 MM_E_INVALID_ARG);
    CHECK_STATUS(mm_sgemm_mt(0, 0, 2, 2, 2, 1.0f, c, 2, b, 2, 0.0f, c, 2, th, NULL, 0),
                 MM_E_INVALID_ARG);
    CHECK_STATUS(mm_sgemm_mt(0, 0, INT64_MAX / 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, NULL, 0),
                 MM_E_RANGE);
    /* a workspace for one thread is too small for a pool of two; misaligned is refused */
    CHECK_STATUS(mm_sgemm_mt(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, ws,
                             mm_sgemm_mt_workspace_size(1)),
                 MM_E_INVALID_ARG);
    CHECK_STATUS(mm_sgemm_mt(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, ws + 4, ws2),
                 MM_E_INVALID_ARG);
    for (int i = 0; i < 4; i++) CHECK(c[i] == 9.0f);
    /* still usable: [1 2 3; 4 5 6] x [1 0; 0 1; 1 1] */
    CHECK_OK(mm_sgemm_mt(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, th, ws, ws2));
    CHECK(c[0] == 4.0f && c[1] == 5.0f && c[2] == 10.0f && c[3] == 11.0f);
done:
    mm_threads_free(th);
    free(ws);
}

/* ---- the epilogue (mmi_gemm_then) --------------------------------------------------------- */

typedef struct ep_probe {
    const float *c, *want; /* C being written, and mmi_gemm's final C */
    int64_t ldc;
    int32_t *visits;
    _Atomic int early; /* a block handed over before its value was final */
} ep_probe;

static void ep_probe_fn(void *ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    ep_probe *e = (ep_probe *)ctx;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            e->visits[i * e->ldc + j]++; /* blocks are disjoint: no two threads share an entry */
            if (memcmp(&e->c[i * e->ldc + j], &e->want[i * e->ldc + j], sizeof(float)) != 0)
                atomic_store(&e->early, 1);
        }
}

/* Every element of C reaches the epilogue exactly once, with its final value, on the packed
 * (k in several blocks), direct, dot, small-NT and one-row (gemv) paths, with 1 and 2 threads;
 * the product is bitwise mmi_gemm's. */
static void test_gemm_epilogue(void)
{
    static const int64_t ep_shapes[][5] = {
        /* ta, tb, m, n, k */
        {0, 1, 256, 256, 600}, {1, 0, 200, 150, 300}, {0, 0, 97, 211, 300}, {0, 1, 3, 300, 500},
        {0, 1, 4, 200, 6},     {0, 0, 300, 40, 3},    {0, 1, 1, 3000, 400}, {0, 1, 1, 257, 3},
    };
    mmi_alloc al;
    mmi_pool *pool = NULL;
    void *ws = test_ws(2);
    CHECK_OK(mmi_alloc_init(&al, NULL, NULL));
    CHECK_OK(mmi_pool_create(&pool, 2, &al, NULL));
    CHECK(pool != NULL && ws != NULL);
    for (size_t s = 0; pool && ws && s < sizeof ep_shapes / sizeof ep_shapes[0]; s++) {
        int ta = (int)ep_shapes[s][0], tb = (int)ep_shapes[s][1];
        int64_t m = ep_shapes[s][2], n = ep_shapes[s][3], k = ep_shapes[s][4];
        float *a = alloc_floats((size_t)(m * k)), *b = alloc_floats((size_t)(k * n));
        float *want = alloc_floats((size_t)(m * n)), *c = alloc_floats((size_t)(m * n));
        int32_t *visits = (int32_t *)calloc((size_t)(m * n), sizeof(int32_t));
        CHECK(a && b && want && c && visits);
        if (!a || !b || !want || !c || !visits) goto next;
        mmt_fill_uniform(a, m * k, 11 + s, -1.0f, 1.0f);
        mmt_fill_uniform(b, k * n, 12 + s, -1.0f, 1.0f);
        mmi_gemm(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 0.0f, want, n, ws, NULL);
        for (int nt = 1; nt <= 2; nt++) {
            ep_probe e;
            mmi_gemm_ep ep;
            int once = 1;
            memset(visits, 0, sizeof(int32_t) * (size_t)(m * n));
            e.c = c, e.want = want, e.ldc = n, e.visits = visits;
            atomic_init(&e.early, 0);
            ep.fn = ep_probe_fn, ep.ctx = &e;
            mmi_gemm_then(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 0.0f, c, n, ws,
                          nt == 2 ? pool : NULL, &ep);
            for (int64_t i = 0; i < m * n; i++) once &= visits[i] == 1;
            CHECK(once);
            CHECK(!atomic_load(&e.early));
            CHECK(memcmp(c, want, sizeof(float) * (size_t)(m * n)) == 0);
        }
    next:
        free(a), free(b), free(want), free(c), free(visits);
    }
    mmi_pool_free(pool);
    free(ws);
}

void suite_gemm(void)
{
    mmt_run("gemm_shapes", test_gemm_shapes);
    mmt_run("gemm_epilogue", test_gemm_epilogue);
    mmt_run("gemm_alpha_beta", test_gemm_alpha_beta);
    mmt_run("gemm_k0_alpha0", test_gemm_k0_alpha0);
    mmt_run("gemm_random", test_gemm_random);
    mmt_run("gemm_threads", test_gemm_threads);
    mmt_run("gemm_portable_vs_avx2", test_gemm_portable_vs_avx2);
    mmt_run("gemm_sets", test_gemm_sets);
    mmt_run("gemm_pack_layout", test_gemm_pack_layout);
    mmt_run("gemm_edges", test_gemm_edges);
    mmt_run("gemm_avx512", test_gemm_avx512);
    mmt_run("gemm_gemv", test_gemm_gemv);
    mmt_run("gemm_small_nt", test_gemm_small_nt);
    mmt_run("gemm_small_nt_choice", test_gemm_small_nt_choice);
    mmt_run("gemm_nt_panel", test_gemm_nt_panel);
    mmt_run("gemm_misuse", test_gemm_misuse);
    mmt_run("gemm_exact_overlap", test_gemm_exact_overlap);
    mmt_run("gemm_threads_mt", test_gemm_threads_mt);
    mmt_run("gemm_threads_mt_misuse", test_gemm_threads_mt_misuse);
}
