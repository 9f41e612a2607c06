/* SPDX-License-Identifier: MIT */
/*
 * gemm_ukr_avx2.c — the AVX2/FMA kernel set of the GEMM driver (compiled with -mavx2 -mfma;
 * the dispatch hands it out only when the CPU and OS run AVX2 and FMA).
 *
 * The register tile is 6 rows x 16 columns: 12 ymm accumulators, two B vectors and one
 * broadcast per k step, i.e. 12 FMAs for 2 vector loads and 6 broadcasts, enough independent
 * chains to cover the FMA latency on two FMA pipes. The tile is written once as an always-inline
 * template whose row count, vector count and masking are compile-time constants in each
 * instantiation, so the accumulators stay in registers (named variables, not an array, because
 * GCC does not reliably keep arrays of vectors in registers).
 *
 * Block loops: packed (the tile over packed panels), direct (the tile reading A through strides
 * and B in place, or whole rows 64 columns at a time when m == 1 or k is tiny) and dot (NT as
 * 3 x 4 tiles of dot products).
 */
/* The tile and dot kernels below are statement macros without semicolons, which clang-format 14
 * re-wraps differently on every pass: this file keeps its hand layout. */
/* clang-format off */
#include "../simd/mmi_avx2_target.h"
#include "mmi_gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "../simd/mmi_avx2_math.h"


/* Lanes j < n_valid of an 8-lane mask (n_valid may be outside 0..8). */
MMI_AVX2_INLINE __m256i lane_mask(int64_t n_valid)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int v = n_valid < 0 ? 0 : n_valid > 8 ? 8 : (int)n_valid;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), iota);
}

/* c[0..8) (masked unless FULL) = alpha * v + beta * c; without BETA, c is not read. */
MMI_AVX2_INLINE void store_vec(float *c, __m256 v, __m256 va, __m256 vb, __m256i mask, const int FULL,
                  const int BETA)
{
    v = _mm256_mul_ps(v, va);
    if (FULL) {
        if (BETA) v = _mm256_fmadd_ps(_mm256_loadu_ps(c), vb, v);
        _mm256_storeu_ps(c, v);
    } else {
        if (BETA) v = _mm256_fmadd_ps(_mm256_maskload_ps(c, mask), vb, v);
        _mm256_maskstore_ps(c, mask, v);
    }
}

/* What every tile of one NR-column strip shares: the lane masks of its nr columns, alpha and
 * beta, and whether its stores are whole vectors. */
typedef struct strip_env {
    __m256i m0, m1;
    __m256 va, vb;
    int full, beta;
} strip_env;

/*
 * The 6x16 tile template: C[0..MR_, 0..nr) = alpha * sum_p A(r, p) B(p, j) + beta * C, with
 * A(r, p) = a[r*a_rs + p*a_cs] and B(p, j) = b[p*b_rs + j].
 *   MR_:    rows computed (1..6).
 *   NV:     ymm vectors per row computed (1: nr <= 8, 2: nr <= 16).
 *   MASKED: B may not be read beyond column nr (direct path); packed panels are padded.
 */
MMI_AVX2_INLINE void tile(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
             int64_t b_rs, float *c, int64_t ldc, int64_t nr, const strip_env *e,
             const int MR_, const int NV, const int MASKED)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* Start fetching the C tile now; it is read at the end, after the k loop (which is short
     * for the small k of gradient updates). */
    for (int r = 0; r < MR_; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < k; p++) {
        __m256 b0, b1 = _mm256_setzero_ps(), av;
        b0 = MASKED ? _mm256_maskload_ps(b, e->m0) : _mm256_loadu_ps(b);
        if (NV == 2) b1 = MASKED ? _mm256_maskload_ps(b + 8, e->m1) : _mm256_loadu_ps(b + 8);
#define ROW(r)                                                                                  \
    if (MR_ > r) {                                                                              \
        av = _mm256_broadcast_ss(a + r * a_rs);                                                 \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                             \
        if (NV == 2) c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
        a += a_cs;
        b += b_rs;
    }
    /* One branch per tile, not per row: with a small k the store is a large part of it. */
#define STORE(r, F, B)                                                                          \
    if (MR_ > r) {                                                                              \
        store_vec(c + r * ldc, c##r##0, e->va, e->vb, e->m0, F, B);                             \
        if (NV == 2) store_vec(c + r * ldc + 8, c##r##1, e->va, e->vb, e->m1, F, B);            \
    }
#define STORE_ALL(F, B) STORE(0, F, B) STORE(1, F, B) STORE(2, F, B) STORE(3, F, B) \
    STORE(4, F, B) STORE(5, F, B)
    if (e->full && e->beta) {
        STORE_ALL(1, 1)
    } else if (e->full) {
        STORE_ALL(1, 0)
    } else if (e->beta) {
        STORE_ALL(0, 1)
    } else {
        STORE_ALL(0, 0)
    }
#undef STORE_ALL
#undef STORE
}

/*
 * One strip of nr (<= NR) columns and m rows: whole 6-row tiles, then the row tail. a points at
 * the strip's first row; a_step advances it by one 6-row tile. Looping inside one function
 * keeps the call and the per-strip setup out of each tile, which matters when k is short.
 */
MMI_AVX2_INLINE void strip(int64_t k, int64_t m, const float *a, int64_t a_step, int64_t a_rs, int64_t a_cs,
              const float *b, int64_t b_rs, int64_t nr, float alpha, float beta, float *c,
              int64_t ldc, const int NV, const int MASKED)
{
    strip_env e;
    int64_t ir = 0;
    e.m0 = lane_mask(nr);
    e.m1 = lane_mask(nr - 8);
    e.va = _mm256_set1_ps(alpha);
    e.vb = _mm256_set1_ps(beta);
    e.full = nr == 8 * NV;
    e.beta = beta != 0.0f;
    for (; ir + MMI_GEMM_MR <= m; ir += MMI_GEMM_MR, a += a_step)
        tile(k, a, a_rs, a_cs, b, b_rs, c + ir * ldc, ldc, nr, &e, 6, NV, MASKED);
    c += ir * ldc;
    switch (m - ir) {
    case 1: tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, 1, NV, MASKED); break;
    case 2: tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, 2, NV, MASKED); break;
    case 3: tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, 3, NV, MASKED); break;
    case 4: tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, 4, NV, MASKED); break;
    case 5: tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, 5, NV, MASKED); break;
    default: break;
    }
}

/* Packed strips: A panels of kc x MR, a B panel of kc x NR (zero-padded: never masked). */
#define DEF_PACKED(NV)                                                                          \
    static void strip_packed_##NV(int64_t kc, int64_t mc, const float *ap, const float *bp,    \
                                  int64_t nr, float alpha, float beta, float *c, int64_t ldc)  \
    {                                                                                           \
        strip(kc, mc, ap, MMI_GEMM_MR * kc, 1, MMI_GEMM_MR, bp, MMI_GEMM_NR, nr, alpha, beta,   \
              c, ldc, NV, 0);                                                                   \
    }
/* Direct strips: A through its strides, B rows in place (masked unless nr == NR). */
#define DEF_DIRECT(NV, M)                                                                       \
    static void strip_direct_##NV##_##M(int64_t k, int64_t m, const float *a, int64_t a_rs,    \
                                        int64_t a_cs, const float *b, int64_t ldb, int64_t nr, \
                                        float alpha, float beta, float *c, int64_t ldc)        \
    {                                                                                           \
        strip(k, m, a, MMI_GEMM_MR * a_rs, a_rs, a_cs, b, ldb, nr, alpha, beta, c, ldc, NV, M); \
    }
DEF_PACKED(1)
DEF_PACKED(2)
DEF_DIRECT(1, 1)
DEF_DIRECT(2, 1)
DEF_DIRECT(2, 0)

/* ---- block loops ---------------------------------------------------------------------------- */
/* Strip by strip (jr outer, ir inside the strip): one KC x NR panel of B stays in L1 while the
 * MC x KC block of A streams from L2. */
static void avx2_packed(int64_t kc, int64_t mc, int64_t nc, const float *ap, const float *bp,
                        float alpha, float beta, float *c, int64_t ldc)
{
    for (int64_t jr = 0; jr < nc; jr += MMI_GEMM_NR) {
        int64_t nr = nc - jr < MMI_GEMM_NR ? nc - jr : MMI_GEMM_NR;
        if (nr > 8)
            strip_packed_2(kc, mc, ap, bp + jr * kc, nr, alpha, beta, c + jr, ldc);
        else
            strip_packed_1(kc, mc, ap, bp + jr * kc, nr, alpha, beta, c + jr, ldc);
    }
}

/* C[0..16) of one row (masked unless FULL) = alpha * sum_p a[p*a_cs] b[p*ldb + j] + beta * C,
 * with the operations of tile() in the same order. */
MMI_AVX2_INLINE void row16(int64_t k, const float *a, int64_t a_cs, const float *b, int64_t ldb, float *c,
              const strip_env *e, const int FULL)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += ldb) {
        __m256 av = _mm256_broadcast_ss(a);
        s0 = _mm256_fmadd_ps(av, FULL ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, e->m0), s0);
        s1 = _mm256_fmadd_ps(av, FULL ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, e->m1),
                             s1);
    }
    if (e->beta) {
        store_vec(c, s0, e->va, e->vb, e->m0, FULL, 1);
        store_vec(c + 8, s1, e->va, e->vb, e->m1, FULL, 1);
    } else {
        store_vec(c, s0, e->va, e->vb, e->m0, FULL, 0);
        store_vec(c + 8, s1, e->va, e->vb, e->m1, FULL, 0);
    }
}

/* As row16 for 64 columns (always whole): eight accumulators, so each k step reads four
 * consecutive cache lines of the B row instead of one. */
MMI_AVX2_INLINE void row64(int64_t k, const float *a, int64_t a_cs, const float *b, int64_t ldb, float *c,
              const strip_env *e)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0;
    __m256 s7 = s0;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += ldb) {
        __m256 av = _mm256_broadcast_ss(a);
        s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b), s0);
        s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 8), s1);
        s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 16), s2);
        s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 24), s3);
        s4 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 32), s4);
        s5 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 40), s5);
        s6 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 48), s6);
        s7 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 56), s7);
    }
#define ST(B)                                                                                   \
    store_vec(c, s0, e->va, e->vb, e->m0, 1, B);                                                \
    store_vec(c + 8, s1, e->va, e->vb, e->m0, 1, B);                                            \
    store_vec(c + 16, s2, e->va, e->vb, e->m0, 1, B);                                           \
    store_vec(c + 24, s3, e->va, e->vb, e->m0, 1, B);                                           \
    store_vec(c + 32, s4, e->va, e->vb, e->m0, 1, B);                                           \
    store_vec(c + 40, s5, e->va, e->vb, e->m0, 1, B);                                           \
    store_vec(c + 48, s6, e->va, e->vb, e->m0, 1, B);                                           \
    store_vec(c + 56, s7, e->va, e->vb, e->m0, 1, B);
    if (e->beta) {
        ST(1)
    } else {
        ST(0)
    }
#undef ST
}

/*
 * Row by row, for one row of C (m == 1: x W at batch 1) or a tiny k (a rank-k update such as a
 * weight gradient at batch 1). Both stream B or C, and the prefetchers follow whole rows of 64
 * columns far better than 16-column strips (measured 2x at 256 x 256 x 1). Each element gets the
 * operations of tile() in the same order, so the choice never changes a result.
 */
static void direct_rows(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs,
                        int64_t a_cs, const float *b, int64_t ldb, float alpha, float beta,
                        float *c, int64_t ldc)
{
    strip_env e;
    int64_t j16 = n / MMI_GEMM_NR * MMI_GEMM_NR, j64 = n / 64 * 64;
    e.m0 = lane_mask(n - j16);
    e.m1 = lane_mask(n - j16 - 8);
    e.va = _mm256_set1_ps(alpha);
    e.vb = _mm256_set1_ps(beta);
    e.full = 0;
    e.beta = beta != 0.0f;
    for (int64_t i = 0; i < m; i++, a += a_rs, c += ldc) {
        int64_t j = 0;
        for (; j < j64; j += 64) row64(k, a, a_cs, b + j, ldb, c + j, &e);
        for (; j < j16; j += MMI_GEMM_NR) row16(k, a, a_cs, b + j, ldb, c + j, &e, 1);
        if (j < n) row16(k, a, a_cs, b + j, ldb, c + j, &e, 0);
    }
}

static void avx2_direct(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs,
                        int64_t a_cs, const float *b, int64_t ldb, float alpha, float beta,
                        float *c, int64_t ldc)
{
    if (k <= MMI_GEMM_SMALL_K || m == 1) {
        direct_rows(k, m, n, a, a_rs, a_cs, b, ldb, alpha, beta, c, ldc);
        return;
    }
    for (int64_t jr = 0; jr < n; jr += MMI_GEMM_NR) {
        int64_t nr = n - jr < MMI_GEMM_NR ? n - jr : MMI_GEMM_NR;
        if (nr == MMI_GEMM_NR)
            strip_direct_2_0(k, m, a, a_rs, a_cs, b + jr, ldb, nr, alpha, beta, c + jr, ldc);
        else if (nr > 8)
            strip_direct_2_1(k, m, a, a_rs, a_cs, b + jr, ldb, nr, alpha, beta, c + jr, ldc);
        else
            strip_direct_1_1(k, m, a, a_rs, a_cs, b + jr, ldb, nr, alpha, beta, c + jr, ldc);
    }
}

/* ---- dot path ------------------------------------------------------------------------------- */
/* Eight floats; when masked, lanes outside mask read as 0 and their memory is not touched. */
MMI_AVX2_INLINE __m256 ld8(const float *p, const int masked, __m256i mask)
{
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

/* Sum of each of four vectors, as one xmm [sum(s0), sum(s1), sum(s2), sum(s3)]. */
MMI_AVX2_INLINE __m128 hsum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* c[0..S) = alpha * v + beta * c. */
MMI_AVX2_INLINE void dot_store(float *c, __m128 v, float alpha, float beta, const int S)
{
    v = _mm_mul_ps(v, _mm_set1_ps(alpha));
    if (S == 4) {
        if (beta != 0.0f) v = _mm_fmadd_ps(_mm_loadu_ps(c), _mm_set1_ps(beta), v);
        _mm_storeu_ps(c, v);
    } else {
        float t[4];
        _mm_storeu_ps(t, v);
        for (int s = 0; s < S; s++) c[s] = beta == 0.0f ? t[s] : t[s] + beta * c[s];
    }
}

/*
 * R rows of A times S rows of the stored B, each C element a dot product over k. Eight lanes
 * of partial sums per element; the k tail is read with a mask (zero lanes), so nothing outside
 * the k columns is touched.
 */
MMI_AVX2_INLINE void dot_tile(int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                 float alpha, float beta, float *c, int64_t ldc, const int R, const int S)
{
    const float *a0 = a, *a1 = a + (R > 1 ? lda : 0), *a2 = a + (R > 2 ? 2 * lda : 0);
    const float *b0 = b, *b1 = b + (S > 1 ? ldb : 0), *b2 = b + (S > 2 ? 2 * ldb : 0);
    const float *b3 = b + (S > 3 ? 3 * ldb : 0);
    __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    __m256 c20 = z, c21 = z, c22 = z, c23 = z;
    const __m256i tail0 = _mm256_setzero_si256(); /* unused by unmasked steps */
    int64_t p = 0;
    /* One k step of 8; masked reads zero the lanes beyond k (the last step only). */
#define DOT_STEP(M, MASK)                                                                          \
    {                                                                                           \
        __m256 x0 = ld8(a0 + p, M, MASK), x1 = z, x2 = z, y;                                       \
        if (R > 1) x1 = ld8(a1 + p, M, MASK);                                                      \
        if (R > 2) x2 = ld8(a2 + p, M, MASK);                                                      \
        DOT_COL(0, b0, M, MASK) if (S > 1) DOT_COL(1, b1, M, MASK)                           \
        if (S > 2) DOT_COL(2, b2, M, MASK)                                                      \
        if (S > 3) DOT_COL(3, b3, M, MASK)                                                         \
    }
#define DOT_COL(s, bs, M, MASK)                                                                    \
    {                                                                                           \
        y = ld8(bs + p, M, MASK);                                                                  \
        c0##s = _mm256_fmadd_ps(x0, y, c0##s);                                                  \
        if (R > 1) c1##s = _mm256_fmadd_ps(x1, y, c1##s);                                       \
        if (R > 2) c2##s = _mm256_fmadd_ps(x2, y, c2##s);                                       \
    }
    for (; p + 8 <= k; p += 8) DOT_STEP(0, tail0)
    if (p < k) {
        const __m256i tail = lane_mask(k - p);
        DOT_STEP(1, tail)
    }
#undef DOT_COL
#undef DOT_STEP
    dot_store(c, hsum4(c00, c01, c02, c03), alpha, beta, S);
    if (R > 1) dot_store(c + ldc, hsum4(c10, c11, c12, c13), alpha, beta, S);
    if (R > 2) dot_store(c + 2 * ldc, hsum4(c20, c21, c22, c23), alpha, beta, S);
}

typedef void (*dot_tile_fn)(int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                            float alpha, float beta, float *c, int64_t ldc);
#define DEF_DOT(R, S)                                                                           \
    static void dot_##R##_##S(int64_t k, const float *a, int64_t lda, const float *b,           \
                              int64_t ldb, float alpha, float beta, float *c, int64_t ldc)      \
    {                                                                                           \
        dot_tile(k, a, lda, b, ldb, alpha, beta, c, ldc, R, S);                                 \
    }
#define DEF_DOT_ROWS(R) DEF_DOT(R, 1) DEF_DOT(R, 2) DEF_DOT(R, 3) DEF_DOT(R, 4)
DEF_DOT_ROWS(1) DEF_DOT_ROWS(2) DEF_DOT_ROWS(3)
/* Indexed by [rows - 1][cols - 1]. */
static const dot_tile_fn dot_tiles[MMI_GEMM_DOT_MR][MMI_GEMM_DOT_NR] = {
    {dot_1_1, dot_1_2, dot_1_3, dot_1_4},
    {dot_2_1, dot_2_2, dot_2_3, dot_2_4},
    {dot_3_1, dot_3_2, dot_3_3, dot_3_4}};

/* jr outer: the DOT_NR rows of B (k block of DOT_KC) stay in L1 while A rows stream. */
static void avx2_dot(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float alpha, float beta, float *c,
                     int64_t ldc)
{
    for (int64_t j = 0; j < n; j += MMI_GEMM_DOT_NR) {
        int64_t nr = n - j < MMI_GEMM_DOT_NR ? n - j : MMI_GEMM_DOT_NR;
        for (int64_t i = 0; i < m; i += MMI_GEMM_DOT_MR) {
            int64_t mr = m - i < MMI_GEMM_DOT_MR ? m - i : MMI_GEMM_DOT_MR;
            dot_tiles[mr - 1][nr - 1](k, a + i * lda, lda, b + j * ldb, ldb, alpha, beta,
                                      c + i * ldc + j, ldc);
        }
    }
}

/* ---- small-k NT ----------------------------------------------------------------------------
 * A few rows of A (m <= 8) times the stored B transposed, k <= MMI_GEMM_SMALL_NT_K: a dense
 * layer's forward for a few agents. For 16 columns at a time, their 16 rows of the stored B are
 * transposed in registers into a k x 16 panel on the stack (8 x 8 transposes, a tail of at most
 * four k steps as 4 x 8), then the packed path's 6 x 16 tile runs over the panel for the rows of
 * A (at most six per pass: 7 rows as 4 + 3, 8 as 4 + 4, so each pass keeps at least six FMA
 * chains): every element gets the packed and direct paths' operations in their order.
 * With few rows the transposes are paid for few FMAs, and the dot path, which reads B in place,
 * wins at longer k (Zen 5, n = 64, MM_SIMD=avx2: at k = 34, 2 rows 0.27 us here against 0.18 on
 * the dot path, 4 rows 0.28 against 0.33; at k = 48, 8 rows 0.55 against 0.57): beyond k = 16
 * the driver runs this kernel for k <= SMALL_NT_K_PER_ROW * m only. */
#define SMALL_NT_K_PER_ROW 8

/* As mmi_transpose8_block_avx2 for 1 <= kt <= 4 (which takes 5 <= kt <= 8 here): row r's k steps in the low half of one ymm and row r + 4's in
 * the high half, then a 4 x 4 transpose within the halves. */
MMI_AVX2_INLINE void snt_t4(const float *b, int64_t ldb, int64_t rows, int64_t kt, float *bt,
                            int64_t ps)
{
    const __m128 z = _mm_setzero_ps();
    const __m128i km = _mm256_castsi256_si128(lane_mask(kt));
    __m128 x0, x1, x2, x3, x4, x5, x6, x7;
    __m256 r0, r1, r2, r3, t0, t1, t2, t3;
#define LD(i) x##i = (i) >= rows ? z : kt == 4 ? _mm_loadu_ps(b + (i) * ldb)                  \
                                        : _mm_maskload_ps(b + (i) * ldb, km);
    LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7)
#undef LD
    r0 = _mm256_insertf128_ps(_mm256_castps128_ps256(x0), x4, 1);
    r1 = _mm256_insertf128_ps(_mm256_castps128_ps256(x1), x5, 1);
    r2 = _mm256_insertf128_ps(_mm256_castps128_ps256(x2), x6, 1);
    r3 = _mm256_insertf128_ps(_mm256_castps128_ps256(x3), x7, 1);
    t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    _mm256_store_ps(bt, _mm256_shuffle_ps(t0, t2, 0x44));
    if (kt > 1) _mm256_store_ps(bt + ps, _mm256_shuffle_ps(t0, t2, 0xEE));
    if (kt > 2) _mm256_store_ps(bt + 2 * ps, _mm256_shuffle_ps(t1, t3, 0x44));
    if (kt > 3) _mm256_store_ps(bt + 3 * ps, _mm256_shuffle_ps(t1, t3, 0xEE));
}

/* k steps of 8 rows of b (rows past `rows` zero) into the panel's lanes at bt. */
MMI_AVX2_INLINE void snt_panel8(int64_t k, const float *b, int64_t ldb, int64_t rows, float *bt)
{
    for (int64_t p = 0; p < k; p += 8) {
        const int64_t kt = k - p < 8 ? k - p : 8;
        if (kt > 4)
            mmi_transpose8_block_avx2(b + p, ldb, rows, kt, bt + p * MMI_GEMM_NR, MMI_GEMM_NR, kt);
        else
            snt_t4(b + p, ldb, rows, kt, bt + p * MMI_GEMM_NR, MMI_GEMM_NR);
    }
}

/* Four rows of one strip: tile() over the panel (row stride NR, whole: never masked). */
static void snt_rows4(int64_t k, const float *a, int64_t lda, const float *bt, float *c,
                      int64_t ldc, int64_t nr, const strip_env *e)
{
    tile(k, a, lda, 1, bt, MMI_GEMM_NR, c, ldc, nr, e, 4, 2, 0);
}

/* small_nt, with panel NULL (B's strips transposed here, strip by strip) or over B^T formed
 * beforehand by mmi_gemm_nt_panel (the same strips: k x NR, columns past n zero). One body for
 * both, so the tiles are the same code and give the same bits. */
static void small_nt_body(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                          const float *b, int64_t ldb, const float *panel, float alpha,
                          float beta, float *c, int64_t ldc)
{
    _Alignas(32) float stack_bt[MMI_GEMM_SMALL_NT_K * MMI_GEMM_NR];
    strip_env e;
    MMI_ASSERT(k >= 1 && k <= MMI_GEMM_SMALL_NT_K && m >= 1 && m <= 8);
    e.va = _mm256_set1_ps(alpha);
    e.vb = _mm256_set1_ps(beta);
    e.beta = beta != 0.0f;
    for (int64_t j = 0; j < n; j += MMI_GEMM_NR) {
        const int64_t nr = n - j < MMI_GEMM_NR ? n - j : MMI_GEMM_NR;
        const float *bt = panel ? panel + j * k : stack_bt; /* strip j / NR */
        int64_t i = 0;
        e.m0 = lane_mask(nr);
        e.m1 = lane_mask(nr - 8);
        e.full = nr == MMI_GEMM_NR;
        /* a strip of at most 8 columns runs the same tile: its panel's upper half is zeros and
         * the stores skip those columns */
        if (!panel) {
            snt_panel8(k, b + j * ldb, ldb, nr, stack_bt);
            snt_panel8(k, b + (j + 8) * ldb, ldb, nr - 8, stack_bt + 8);
        }
        /* up to 6 rows in one pass of the direct strip's tile, 7 as 4 + 3 and 8 as 4 + 4 (each
         * pass keeps at least six FMA chains; 6 + 2 measured 10% slower at 8 x 64 x 18). One
         * tile instance of its own (4 rows), not one per row count: inlining all of them grew
         * a dead-stripped GEMM-only program by 12 KB, near `make check-static-size`'s limit. */
        for (; m - i > 6; i += 4)
            snt_rows4(k, a + i * lda, lda, bt, c + i * ldc + j, ldc, nr, &e);
        strip_direct_2_0(k, m - i, a + i * lda, lda, 1, bt, MMI_GEMM_NR, nr, alpha, beta,
                         c + i * ldc + j, ldc);
    }
}

static void avx2_small_nt(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float alpha, float beta, float *c,
                          int64_t ldc)
{
    small_nt_body(k, m, n, a, lda, b, ldb, NULL, alpha, beta, c, ldc);
}

static void avx2_small_nt_panel(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                                const float *panel, float alpha, float beta, float *c,
                                int64_t ldc)
{
    small_nt_body(k, m, n, a, lda, NULL, 0, panel, alpha, beta, c, ldc);
}

static const mmi_gemm_ukr avx2_ukr = {MMI_GEMM_MR, MMI_GEMM_NR, MMI_GEMM_KC, MMI_GEMM_MC,
                                      MMI_GEMM_NC, avx2_packed, avx2_direct, avx2_dot,
                                      mmi_gemm_pack_a_avx2, mmi_gemm_pack_b_avx2, NULL,
                                      avx2_small_nt, SMALL_NT_K_PER_ROW, avx2_small_nt_panel};

const mmi_gemm_ukr *mmi_gemm_ukr_avx2(void) { return &avx2_ukr; }

#else /* no AVX2/FMA in this compiler or target */

const mmi_gemm_ukr *mmi_gemm_ukr_avx2(void) { return NULL; }

#endif
/* clang-format on */
