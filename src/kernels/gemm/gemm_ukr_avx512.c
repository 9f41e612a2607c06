/* SPDX-License-Identifier: MIT */
/*
 * gemm_ukr_avx512.c — the AVX-512 (F/DQ/BW/VL) kernel set of the GEMM driver (compiled with the
 * AVX-512 flags or the target pragma of mmi_avx512_target.h; the dispatch hands it out only when
 * the CPU and OS run AVX-512). Same contract and block loops as the AVX2 set (gemm_ukr_avx2.c);
 * packing is in gemm_pack_avx512.c.
 *
 * Register tile: 12 rows x 32 columns, i.e. 24 zmm accumulators (two 16-float vectors per row).
 * Each k step loads 2 B vectors and broadcasts 12 A values (folded into the FMAs as {1to16}
 * memory operands or one scratch register): 24 FMAs for 14 loads, 1.7 FMAs per load, using
 * 24 + 2 + 1 = 27 of the 32 zmm registers. Covering the FMA latency (4 cycles) on two 512-bit
 * FMA pipes takes at least 8 independent chains; 24 leave room for load latency, and 24 FMAs
 * (12 cycles at two per cycle) need only 14 loads, within the two loads per cycle of current
 * cores even where a 512-bit load counts twice. The alternatives: 6 x 16 (the AVX2 tile in zmm)
 * has 6 chains, too few; 6 x 32 has 12 chains but 1.5 FMAs per load; 14 x 32 reaches 1.75 with
 * 28 accumulators + 2 + 1 = 31 registers, leaving the compiler no spare, and 14 divides no
 * cache block evenly.
 *
 * Cache blocks (this set's kc, mc, nc), measured on Zen 5 (48 KiB L1d, 1 MiB L2 per core, two
 * 512-bit FMA pipes). The driver loops strip by strip: a kc x 32 panel of B is reused by every
 * 12-row panel of the mc x kc A block. Each C tile is loaded and stored once per k block, and
 * that traffic, not the L1 fit of the B panel, set the speed: with mc and nc adjusted, 1024^3
 * ran about 6% faster at kc 256 than at 128, 8% more at 512 and 3% more at 1024 (interleaved
 * runs in one process; both panels then stream from L2, 176 bytes per 24 FMAs, well within its
 * bandwidth). So kc = 1024; mc = 96 keeps the A block at 384 KiB in L2 with the B panel beside
 * it, and nc = 512 the packed B block at 2 MiB. The direct path caps its k block at 256 (gemm.c:
 * its B is read in place and must stay in L1). Whole packed tiles run in tile_packed: constant
 * panel strides, four k steps per iteration, the A panel prefetched 8 steps ahead and the C rows
 * 32 k steps before the end rather than at the start (12 rows of a power-of-two ldc share one
 * L1 set).
 *
 * One row of A times the stored B transposed (NT, m == 1: a dense layer at batch 1) has its own
 * kernel (avx512_gemv, the set's gemv entry), 16 rows of B per tile; see the section below.
 *
 * Every C element is computed as in the AVX2 set: an FMA chain over its k block starting from
 * zero, then alpha * sum (+ beta * C by one FMA), whatever tile, strip or row kernel it lands in,
 * so results do not depend on the thread count. Tails are masked loads and stores (zero lanes,
 * memory untouched): nothing outside the views is read or written.
 */
/* The tile is a statement macro template that clang-format 14 re-wraps on every pass. */
/* clang-format off */
#include "../simd/mmi_avx512_target.h"
#include "mmi_gemm.h"

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>

#if defined(__GNUC__) || defined(__clang__)
#define UKR_INLINE static inline __attribute__((always_inline))
#else
#define UKR_INLINE static inline
#endif

enum { MR = 12, NR = 32, KC = 1024, MC = 96, NC = 512 };
/* k steps before the end of a packed tile at which its C rows are prefetched. */
#define C_LEAD 32

/* Lanes [0, n) of a 16-lane mask (n may be outside 0..16). */
UKR_INLINE __mmask16 lanes16(int64_t n)
{
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* c[lanes of mask] = alpha * v (+ beta * c when BETA; without it c is not read). */
UKR_INLINE void store16(float *c, __m512 v, __m512 va, __m512 vb, __mmask16 mask, const int BETA)
{
    v = _mm512_mul_ps(v, va);
    if (BETA) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, c), vb, v);
    _mm512_mask_storeu_ps(c, mask, v);
}

/* What every tile of one strip shares: the lane masks of its nr columns, alpha and beta. */
typedef struct strip_env {
    __mmask16 m0, m1;
    __m512 va, vb;
    int beta;
} strip_env;

/*
 * The 12 x 32 tile template: C[0..MR_, 0..nr) = alpha * sum_p A(r, p) B(p, j) + beta * C, with
 * A(r, p) = a[r*a_rs + p*a_cs] and B(p, j) = b[p*b_rs + j].
 *   MR_:    rows computed (1..12).
 *   NV:     zmm vectors per row (1: nr <= 16, 2: nr <= 32).
 * B is read through e's lane masks: nothing beyond column nr (see DEF_STRIP).
 */
UKR_INLINE void tile(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                     int64_t b_rs, float *c, int64_t ldc, int64_t nr, const strip_env *e,
                     const int MR_, const int NV)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    __m512 c80 = z, c81 = z, c90 = z, c91 = z, c100 = z, c101 = z, c110 = z, c111 = z;
    /* Start fetching the C tile now; it is read after the k loop (short for small k). */
    for (int r = 0; r < MR_; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < k; p++) {
        __m512 b0, b1 = z, av;
        b0 = _mm512_maskz_loadu_ps(e->m0, b);
        if (NV == 2) b1 = _mm512_maskz_loadu_ps(e->m1, b + 16);
#define ROW(r)                                                                                  \
    if (MR_ > r) {                                                                              \
        av = _mm512_set1_ps(a[r * a_rs]);                                                       \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                             \
        if (NV == 2) c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                                \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8) ROW(9) ROW(10) ROW(11)
#undef ROW
        a += a_cs;
        b += b_rs;
    }
    /* One branch per tile, not per row. */
#define STORE(r, B)                                                                             \
    if (MR_ > r) {                                                                              \
        store16(c + r * ldc, c##r##0, e->va, e->vb, e->m0, B);                                  \
        if (NV == 2) store16(c + r * ldc + 16, c##r##1, e->va, e->vb, e->m1, B);                \
    }
#define STORE_ALL(B) STORE(0, B) STORE(1, B) STORE(2, B) STORE(3, B) STORE(4, B) STORE(5, B)  \
    STORE(6, B) STORE(7, B) STORE(8, B) STORE(9, B) STORE(10, B) STORE(11, B)
    if (e->beta) {
        STORE_ALL(1)
    } else {
        STORE_ALL(0)
    }
#undef STORE_ALL
#undef STORE
}

/*
 * One strip of nr (<= 32) columns and m rows: whole 12-row tiles, then the row tail as tiles of
 * 8, 4, 2 and 1 rows (five instantiations rather than twelve keep the set small; an element's
 * operations do not depend on its tile). a points at the strip's first row; a_step advances it
 * by one 12-row tile.
 */
UKR_INLINE void strip(int64_t k, int64_t m, const float *a, int64_t a_step, int64_t a_rs,
                      int64_t a_cs, const float *b, int64_t b_rs, int64_t nr, float alpha,
                      float beta, float *c, int64_t ldc, const int NV)
{
    strip_env e;
    int64_t ir = 0;
    e.m0 = lanes16(nr);
    e.m1 = lanes16(nr - 16);
    e.va = _mm512_set1_ps(alpha);
    e.vb = _mm512_set1_ps(beta);
    e.beta = beta != 0.0f;
    for (; ir + MR <= m; ir += MR, a += a_step)
        tile(k, a, a_rs, a_cs, b, b_rs, c + ir * ldc, ldc, nr, &e, MR, NV);
    c += ir * ldc;
#define TAIL(R)                                                                                 \
    if (m - ir >= R) {                                                                          \
        tile(k, a, a_rs, a_cs, b, b_rs, c, ldc, nr, &e, R, NV);                                \
        ir += R, a += R * a_rs, c += R * ldc;                                                   \
    }
    TAIL(8) TAIL(4) TAIL(2) TAIL(1)
#undef TAIL
}

/* Strips of one (nr <= 16) or two (nr <= 32) vectors per row. B is always read through the lane
 * masks (all ones for a whole strip; a masked load costs what a plain one does): the direct path
 * must not read beyond column nr, and the packed path, whose panels are zero-padded, shares
 * these two instantiations rather than adding its own (the set's code size counts in a static
 * link of mm_sgemm). */
#define DEF_STRIP(NV)                                                                           \
    static void strip_##NV(int64_t k, int64_t m, const float *a, int64_t a_step, int64_t a_rs, \
                           int64_t a_cs, const float *b, int64_t b_rs, int64_t nr, float alpha, \
                           float beta, float *c, int64_t ldc)                                  \
    {                                                                                           \
        strip(k, m, a, a_step, a_rs, a_cs, b, b_rs, nr, alpha, beta, c, ldc, NV);               \
    }
DEF_STRIP(1)
DEF_STRIP(2)
#undef DEF_STRIP

/*
 * The packed path's whole tiles: 12 rows x 32 columns read from the zero-padded panels, whose
 * strides are constants here (12 floats of A and 32 of B per k step), so every A broadcast is
 * one load at a fixed offset from one pointer and the loop needs no spilled strides (the shared
 * tile() takes a_rs and a_cs at run time). Four k steps per iteration, with a prefetch of the
 * A panel 8 steps ahead (the next tile's panel streams from L2). The operations on each C
 * element are tile()'s, in the same order: the choice of kernel never changes a result.
 */
static void tile_packed(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                        const strip_env *e)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    __m512 c80 = z, c81 = z, c90 = z, c91 = z, c100 = z, c101 = z, c110 = z, c111 = z;
    int64_t p = 0, p_c = k > C_LEAD ? (k - C_LEAD) & ~(int64_t)3 : 0;
#define ROW(r, o)                                                                               \
    av = _mm512_set1_ps(a[(o) * MR + r]);                                                       \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                 \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);
#define STEP(o)                                                                                 \
    {                                                                                           \
        __m512 b0 = _mm512_loadu_ps(b + (o) * NR), b1 = _mm512_loadu_ps(b + (o) * NR + 16), av; \
        ROW(0, o) ROW(1, o) ROW(2, o) ROW(3, o) ROW(4, o) ROW(5, o)                             \
        ROW(6, o) ROW(7, o) ROW(8, o) ROW(9, o) ROW(10, o) ROW(11, o)                           \
    }
#define STEP4                                                                                   \
    {                                                                                           \
        _mm_prefetch((const char *)(a + 8 * MR), _MM_HINT_T0);                                  \
        _mm_prefetch((const char *)(a + 8 * MR + 16), _MM_HINT_T0);                             \
        _mm_prefetch((const char *)(a + 8 * MR + 32), _MM_HINT_T0);                             \
        STEP(0) STEP(1) STEP(2) STEP(3)                                                         \
    }
    for (; p < p_c; p += 4, a += 4 * MR, b += 4 * NR) STEP4
    for (int r = 0; r < MR; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
    for (; p + 4 <= k; p += 4, a += 4 * MR, b += 4 * NR) STEP4
#undef STEP4
    for (; p < k; p++, a += MR, b += NR) STEP(0)
#undef STEP
#undef ROW
#define STORE(r, B)                                                                             \
    store16(c + r * ldc, c##r##0, e->va, e->vb, e->m0, B);                                      \
    store16(c + r * ldc + 16, c##r##1, e->va, e->vb, e->m1, B);
#define STORE_ALL(B) STORE(0, B) STORE(1, B) STORE(2, B) STORE(3, B) STORE(4, B) STORE(5, B)  \
    STORE(6, B) STORE(7, B) STORE(8, B) STORE(9, B) STORE(10, B) STORE(11, B)
    if (e->beta) {
        STORE_ALL(1)
    } else {
        STORE_ALL(0)
    }
#undef STORE_ALL
#undef STORE
}

/*
 * The last 33..48 columns of a packed block (a whole 32-column panel and a last one of 1..16,
 * e.g. the 44 left of a 300-wide product, the 48 of a 400-wide one) as 6 x 48 tiles over half a
 * 12-row A panel each (rows 0..5 or 6..11; a points at the first): 18 accumulators, 6
 * broadcasts and 3 B loads per 18 FMAs. Without it the narrow strip ran 12 x 16 tiles (12
 * broadcasts and 1 load per 12 FMAs): in a 256 x 300 x 400 product its 12 columns took about
 * 1.8 times their share of the time. b points at the whole panel, b2 at the narrow one; e->m1
 * masks the narrow panel's columns. Same operations per C element as tile(). Not inlined: in
 * avx512_packed it changed the register allocation of the whole tiles' loop, and shapes that
 * never reach it (256^3, 512^3) ran 2-4 % slower.
 */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void tile_packed_6x48(int64_t k, const float *a, const float *b, const float *b2,
                             float *c, int64_t ldc, const strip_env *e)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    __m512 c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    const __mmask16 all = 0xFFFF;
    int64_t p = 0;
    for (int r = 0; r < 6; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 47), _MM_HINT_T0);
    }
#define ROW(r, o)                                                                               \
    av = _mm512_set1_ps(a[(o) * MR + r]);                                                       \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                 \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                                                 \
    c##r##2 = _mm512_fmadd_ps(av, bb, c##r##2);
#define STEP(o)                                                                                 \
    {                                                                                           \
        __m512 b0 = _mm512_loadu_ps(b + (o) * NR), b1 = _mm512_loadu_ps(b + (o) * NR + 16), av; \
        __m512 bb = _mm512_loadu_ps(b2 + (o) * NR);                                             \
        ROW(0, o) ROW(1, o) ROW(2, o) ROW(3, o) ROW(4, o) ROW(5, o)                             \
    }
    for (; p + 4 <= k; p += 4, a += 4 * MR, b += 4 * NR, b2 += 4 * NR) {
        _mm_prefetch((const char *)(a + 8 * MR), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + 8 * MR + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + 8 * MR + 32), _MM_HINT_T0);
        STEP(0) STEP(1) STEP(2) STEP(3)
    }
    for (; p < k; p++, a += MR, b += NR, b2 += NR) STEP(0)
#undef STEP
#undef ROW
#define STORE(r, B)                                                                             \
    store16(c + r * ldc, c##r##0, e->va, e->vb, all, B);                                        \
    store16(c + r * ldc + 16, c##r##1, e->va, e->vb, all, B);                                   \
    store16(c + r * ldc + 32, c##r##2, e->va, e->vb, e->m1, B);
#define STORE_ALL(B) STORE(0, B) STORE(1, B) STORE(2, B) STORE(3, B) STORE(4, B) STORE(5, B)
    if (e->beta) {
        STORE_ALL(1)
    } else {
        STORE_ALL(0)
    }
#undef STORE_ALL
#undef STORE
}

/* ---- block loops ---------------------------------------------------------------------------- */
/* Strip by strip: one kc x 32 panel of B stays in L1 while the mc x kc block of A streams from
 * L2. Whole 32-column strips run their whole 12-row tiles in tile_packed; when the last strip has
 * 1..16 columns, it and the strip before it run theirs in tile_packed_6x48. The rest (a last
 * strip of 17..31 columns, the row tail) runs in the shared strip kernels. */
static void avx512_packed(int64_t kc, int64_t mc, int64_t nc, const float *ap, const float *bp,
                          float alpha, float beta, float *c, int64_t ldc)
{
    strip_env e;
    const int64_t m_whole = mc / MR * MR;
    e.m0 = e.m1 = 0xFFFF;
    e.va = _mm512_set1_ps(alpha);
    e.vb = _mm512_set1_ps(beta);
    e.beta = beta != 0.0f;
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR, ir = 0;
        const float *b = bp + jr * kc;
        if (nc - jr > NR && nc - jr <= NR + 16) {
            /* the last two panels together, in 6 x 48 tiles */
            strip_env e2 = e;
            e2.m1 = lanes16(nc - jr - NR);
            for (; ir < m_whole; ir += MR)
                for (int64_t h = 0; h < MR; h += 6)
                    tile_packed_6x48(kc, ap + ir * kc + h, b, b + NR * kc,
                                     c + (ir + h) * ldc + jr, ldc, &e2);
        } else if (jr > 0 && nc - jr <= 16) {
            ir = m_whole; /* the narrow last panel's whole tiles ran with the one before */
        }
        if (nr == NR)
            for (; ir < m_whole; ir += MR)
                tile_packed(kc, ap + ir * kc, b, c + ir * ldc + jr, ldc, &e);
        if (ir == mc) continue;
        if (nr > 16)
            strip_2(kc, mc - ir, ap + ir * kc, MR * kc, 1, MR, b, NR, nr, alpha, beta,
                    c + ir * ldc + jr, ldc);
        else
            strip_1(kc, mc - ir, ap + ir * kc, MR * kc, 1, MR, b, NR, nr, alpha, beta,
                    c + ir * ldc + jr, ldc);
    }
}

/* C[0..32) of one row (lanes of e's masks) = alpha * sum_p a[p*a_cs] b[p*ldb + j] + beta * C,
 * with the operations of tile() in the same order. */
UKR_INLINE void row32(int64_t k, const float *a, int64_t a_cs, const float *b, int64_t ldb,
                      float *c, const strip_env *e)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += ldb) {
        __m512 av = _mm512_set1_ps(*a);
        s0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(e->m0, b), s0);
        s1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(e->m1, b + 16), s1);
    }
    if (e->beta) {
        store16(c, s0, e->va, e->vb, e->m0, 1);
        store16(c + 16, s1, e->va, e->vb, e->m1, 1);
    } else {
        store16(c, s0, e->va, e->vb, e->m0, 0);
        store16(c + 16, s1, e->va, e->vb, e->m1, 0);
    }
}

/* As row32 for 128 whole columns: eight accumulators (enough chains for m == 1), and each k
 * step reads eight consecutive cache lines of the B row. */
UKR_INLINE void row128(int64_t k, const float *a, int64_t a_cs, const float *b, int64_t ldb,
                       float *c, const strip_env *e)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0;
    __m512 s7 = s0;
    const __mmask16 all = 0xFFFF;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += ldb) {
        __m512 av = _mm512_set1_ps(*a);
        s0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b), s0);
        s1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 16), s1);
        s2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 32), s2);
        s3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 48), s3);
        s4 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 64), s4);
        s5 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 80), s5);
        s6 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 96), s6);
        s7 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 112), s7);
    }
#define ST(B)                                                                                   \
    store16(c, s0, e->va, e->vb, all, B);                                                       \
    store16(c + 16, s1, e->va, e->vb, all, B);                                                  \
    store16(c + 32, s2, e->va, e->vb, all, B);                                                  \
    store16(c + 48, s3, e->va, e->vb, all, B);                                                  \
    store16(c + 64, s4, e->va, e->vb, all, B);                                                  \
    store16(c + 80, s5, e->va, e->vb, all, B);                                                  \
    store16(c + 96, s6, e->va, e->vb, all, B);                                                  \
    store16(c + 112, s7, e->va, e->vb, all, B);
    if (e->beta) {
        ST(1)
    } else {
        ST(0)
    }
#undef ST
}

/*
 * Row by row, for one row of C (m == 1: x W at batch 1) or a tiny k (a rank-k update): both
 * stream B or C, and the prefetchers follow whole rows far better than 32-column strips. Each
 * element gets the operations of tile() in the same order, so the choice never changes a result.
 */
static void direct_rows(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs,
                        int64_t a_cs, const float *b, int64_t ldb, float alpha, float beta,
                        float *c, int64_t ldc)
{
    strip_env e, tail;
    int64_t j128 = n / 128 * 128;
    e.m0 = e.m1 = 0xFFFF;
    e.va = _mm512_set1_ps(alpha);
    e.vb = _mm512_set1_ps(beta);
    e.beta = beta != 0.0f;
    tail = e;
    for (int64_t i = 0; i < m; i++, a += a_rs, c += ldc) {
        int64_t j = 0;
        for (; j < j128; j += 128) row128(k, a, a_cs, b + j, ldb, c + j, &e);
        for (; j < n; j += NR) {
            tail.m0 = lanes16(n - j);
            tail.m1 = lanes16(n - j - 16);
            row32(k, a, a_cs, b + j, ldb, c + j, &tail);
        }
    }
}

static void avx512_direct(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs,
                          int64_t a_cs, const float *b, int64_t ldb, float alpha, float beta,
                          float *c, int64_t ldc)
{
    if (k <= MMI_GEMM_SMALL_K || m == 1) {
        direct_rows(k, m, n, a, a_rs, a_cs, b, ldb, alpha, beta, c, ldc);
        return;
    }
    for (int64_t jr = 0; jr < n; jr += NR) {
        int64_t nr = n - jr < NR ? n - jr : NR;
        if (nr > 16)
            strip_2(k, m, a, MR * a_rs, a_rs, a_cs, b + jr, ldb, nr, alpha, beta, c + jr, ldc);
        else
            strip_1(k, m, a, MR * a_rs, a_rs, a_cs, b + jr, ldb, nr, alpha, beta, c + jr, ldc);
    }
}

/* ---- dot path ------------------------------------------------------------------------------- */
/* Sums of four vectors as one xmm [sum(s0), sum(s1), sum(s2), sum(s3)]: halves added, then the
 * horizontal adds of the AVX2 set; the same tree for every element. */
UKR_INLINE __m128 hsum4(__m512 s0, __m512 s1, __m512 s2, __m512 s3)
{
#define HALF(s) _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1))
    __m256 h0 = HALF(s0), h1 = HALF(s1), h2 = HALF(s2), h3 = HALF(s3);
#undef HALF
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(h0, h1), _mm256_hadd_ps(h2, h3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* c[0..S) = alpha * v + beta * c (c not read when beta == 0), one masked vector for any S. */
UKR_INLINE void dot_store(float *c, __m128 v, float alpha, float beta, const int S)
{
    const __mmask8 m = (__mmask8)((1u << S) - 1u);
    v = _mm_mul_ps(v, _mm_set1_ps(alpha));
    if (beta != 0.0f) v = _mm_fmadd_ps(_mm_maskz_loadu_ps(m, c), _mm_set1_ps(beta), v);
    _mm_mask_storeu_ps(c, m, v);
}

/*
 * R rows of A times S rows of the stored B, each C element a dot product over k: sixteen lanes
 * of partial sums per element, the k tail read through a mask (zero lanes, memory untouched).
 */
UKR_INLINE void dot_tile(int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                         float alpha, float beta, float *c, int64_t ldc, const int R, const int S)
{
    const float *a0 = a, *a1 = a + (R > 1 ? lda : 0), *a2 = a + (R > 2 ? 2 * lda : 0);
    const float *b0 = b, *b1 = b + (S > 1 ? ldb : 0), *b2 = b + (S > 2 ? 2 * ldb : 0);
    const float *b3 = b + (S > 3 ? 3 * ldb : 0);
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    __m512 c20 = z, c21 = z, c22 = z, c23 = z;
    int64_t p = 0;
    /* One k step of 16 through mask M (all ones but in the last, partial step). */
#define DOT_COL(s, bs, M)                                                                       \
    {                                                                                           \
        y = _mm512_maskz_loadu_ps(M, bs + p);                                                   \
        c0##s = _mm512_fmadd_ps(x0, y, c0##s);                                                  \
        if (R > 1) c1##s = _mm512_fmadd_ps(x1, y, c1##s);                                       \
        if (R > 2) c2##s = _mm512_fmadd_ps(x2, y, c2##s);                                       \
    }
#define DOT_STEP(M)                                                                             \
    {                                                                                           \
        __m512 x0 = _mm512_maskz_loadu_ps(M, a0 + p), x1 = z, x2 = z, y;                        \
        if (R > 1) x1 = _mm512_maskz_loadu_ps(M, a1 + p);                                       \
        if (R > 2) x2 = _mm512_maskz_loadu_ps(M, a2 + p);                                       \
        DOT_COL(0, b0, M)                                                                       \
        if (S > 1) DOT_COL(1, b1, M)                                                            \
        if (S > 2) DOT_COL(2, b2, M)                                                            \
        if (S > 3) DOT_COL(3, b3, M)                                                            \
    }
    for (; p + 16 <= k; p += 16) DOT_STEP((__mmask16)0xFFFF)
    if (p < k) {
        const __mmask16 tail = lanes16(k - p);
        DOT_STEP(tail)
    }
#undef DOT_STEP
#undef DOT_COL
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
#undef DEF_DOT_ROWS
#undef DEF_DOT
/* Indexed by [rows - 1][cols - 1]. */
static const dot_tile_fn dot_tiles[MMI_GEMM_DOT_MR][MMI_GEMM_DOT_NR] = {
    {dot_1_1, dot_1_2, dot_1_3, dot_1_4},
    {dot_2_1, dot_2_2, dot_2_3, dot_2_4},
    {dot_3_1, dot_3_2, dot_3_3, dot_3_4}};

/* jr outer: the DOT_NR rows of B (k block of DOT_KC) stay in L1 while A rows stream. */
static void avx512_dot(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
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

/* ---- one row of A, NT (y = x W^T at batch 1) ------------------------------------------------ */
/*
 * C has one row and every element is a dot product of x (the row of A) with a row of the stored
 * B. Sixteen rows of B at once, one zmm of partial sums each (sixteen FMA chains, enough for two
 * FMA pipes of latency 4), x read once per k step of 16 for all sixteen: 17 loads per 16 FMAs,
 * and B streams row by row from L2. The k tail is read through a mask (zero lanes).
 *
 * Every C element is computed the same way whichever tile it lands in: lane l of its
 * accumulator sums x[p] B(j, p) over p = l (mod 16) in increasing p by FMA from zero, then the
 * 16 lanes are added as ((s_l + s_l+8) + (.. + s_l+4)) + ((.. + s_l+2) + (.. + s_l+1)), i.e.
 * halves, quarters, pairs, neighbours; the 16-row tile does that for its rows with one
 * transposing add tree, a lone row with four shuffles (rowsum16), in the same association.
 * So results do not depend on how threads split the columns.
 */

/* The lane sum of one accumulator, in the association described above. */
UKR_INLINE float rowsum16(__m512 v)
{
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E)); /* l + (l + 8) */
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1)); /* + (l + 4) */
    v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, 0x4E));    /* + (l + 2) */
    v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, 0xB1));    /* + (l + 1) */
    return _mm512_cvtss_f32(v);
}

/*
 * The lane sums of sixteen accumulators as one vector (lane r: the sum of s_r), each in
 * rowsum16's association: halves of rows r and r + 8 added into one vector, then quarters,
 * pairs and neighbours, four levels of 8, 4, 2 and 1 adds with two shuffles each; the rows
 * come out as 0 2 1 3 8 10 9 11 4 6 5 7 12 14 13 15 and one permute puts them in order.
 */
#define GEMV_ROWS16(X)                                                                          \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
typedef struct gemv_acc {
    __m512 s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15;
} gemv_acc;

UKR_INLINE __m512 sums16(const gemv_acc *q)
{
#define HALVES(u, v)                                                                            \
    _mm512_add_ps(_mm512_shuffle_f32x4(u, v, 0x44), _mm512_shuffle_f32x4(u, v, 0xEE))
#define QUARTERS(u, v)                                                                          \
    _mm512_add_ps(_mm512_shuffle_f32x4(u, v, 0x88), _mm512_shuffle_f32x4(u, v, 0xDD))
#define PAIRS(u, v) _mm512_add_ps(_mm512_shuffle_ps(u, v, 0x44), _mm512_shuffle_ps(u, v, 0xEE))
#define NEIGHBOURS(u, v)                                                                        \
    _mm512_add_ps(_mm512_shuffle_ps(u, v, 0x88), _mm512_shuffle_ps(u, v, 0xDD))
    __m512 t0 = HALVES(q->s0, q->s8), t1 = HALVES(q->s1, q->s9), t2 = HALVES(q->s2, q->s10);
    __m512 t3 = HALVES(q->s3, q->s11), t4 = HALVES(q->s4, q->s12), t5 = HALVES(q->s5, q->s13);
    __m512 t6 = HALVES(q->s6, q->s14), t7 = HALVES(q->s7, q->s15);
    __m512 u0 = QUARTERS(t0, t4), u1 = QUARTERS(t1, t5), u2 = QUARTERS(t2, t6);
    __m512 u3 = QUARTERS(t3, t7);
    __m512 w0 = PAIRS(u0, u2), w1 = PAIRS(u1, u3);
    __m512 f = NEIGHBOURS(w0, w1);
#undef HALVES
#undef QUARTERS
#undef PAIRS
#undef NEIGHBOURS
    return _mm512_permutexvar_ps(
        _mm512_set_epi32(15, 13, 14, 12, 7, 5, 6, 4, 11, 9, 10, 8, 3, 1, 2, 0), f);
}

/* x . B(0, :) as sixteen lanes of partial sums (lane l: p = l mod 16, in increasing p, by FMA
 * from zero): kf = k rounded down to 16 whole steps, then the tail through mask tm (0: none;
 * computed once per tile by the caller). */
UKR_INLINE __m512 gemv_lanes(int64_t kf, __mmask16 tm, const float *x, const float *b,
                             int64_t pf)
{
    __m512 s = _mm512_setzero_ps();
    for (int64_t p = 0; p < kf; p += 16) {
        _mm_prefetch((const char *)(b + pf + p), _MM_HINT_T0); /* never faults, any address */
        s = _mm512_fmadd_ps(_mm512_loadu_ps(x + p), _mm512_loadu_ps(b + p), s);
    }
    if (tm)
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, x + kf), _mm512_maskz_loadu_ps(tm, b + kf),
                            s);
    return s;
}

/* Each row's loop asks for the row GEMV_PF_ROWS rows ahead, one cache line per step: with the
 * weights in L2, the L1 stream prefetcher alone left the batch-1 product well below the L2 read
 * rate; 4 rows ahead made the 3-256-256-1 act 3-6% faster (2 and 8 less, 16 slower), the same bits. */
#define GEMV_PF_ROWS 4

/* C[0..16) of the row (lanes of mask) = alpha * (x . B(j, :)) + beta * C, for the sixteen rows
 * of B at b + r * ldb (rows past the mask repeat row 0: computed, never stored). The rows are
 * read one after the other, each whole (one stream through memory, which the prefetchers follow
 * better than sixteen rows side by side: 1.25x measured at 256 x 256); the sixteen chains are
 * independent, so out-of-order execution overlaps them. */
static void gemv_tile16(int64_t k, const float *x, const float *b, int64_t ldb, int64_t rows,
                        float alpha, float beta, float *c)
{
    const __mmask16 mask = lanes16(rows), tm = lanes16(k % 16);
    const int64_t kf = k - k % 16;
    gemv_acc q;
    if (kf == 0) { /* k < 16 (an observation's width): one masked FMA per row, x loaded once */
        const __m512 xv = _mm512_maskz_loadu_ps(tm, x), z = _mm512_setzero_ps();
#define ROW(r)                                                                                  \
    q.s##r = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(tm, b + (r < rows ? r : 0) * ldb), z);
        GEMV_ROWS16(ROW)
#undef ROW
    } else {
#define ROW(r) q.s##r = gemv_lanes(kf, tm, x, b + (r < rows ? r : 0) * ldb, GEMV_PF_ROWS * ldb);
        GEMV_ROWS16(ROW)
#undef ROW
    }
    {
        __m512 v = _mm512_mul_ps(sums16(&q), _mm512_set1_ps(alpha));
        if (beta != 0.0f)
            v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, c), _mm512_set1_ps(beta), v);
        _mm512_mask_storeu_ps(c, mask, v);
    }
}

/* C[0] = alpha * (x . B(0, :)) + beta * C[0] for one row of B, as gemv_tile16 computes it. */
static void gemv_row(int64_t k, const float *x, const float *b, float alpha, float beta, float *c)
{
    /* the tile's alpha * sum (+ beta * C by one FMA), in float */
    const __m512 s = gemv_lanes(k - k % 16, lanes16(k % 16), x, b, 0);
    float v = _mm_cvtss_f32(_mm_mul_ss(_mm_set_ss(rowsum16(s)), _mm_set_ss(alpha)));
    if (beta != 0.0f)
        v = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(*c), _mm_set_ss(beta), _mm_set_ss(v)));
    *c = v;
}

/* Whole 16-row tiles; a tail of 4 or more rows as one masked tile, fewer row by row. */
static void avx512_gemv(int64_t k, int64_t n, const float *a, const float *b, int64_t ldb,
                        float alpha, float beta, float *c)
{
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) gemv_tile16(k, a, b + j * ldb, ldb, 16, alpha, beta, c + j);
    if (n - j >= 4) {
        gemv_tile16(k, a, b + j * ldb, ldb, n - j, alpha, beta, c + j);
        return;
    }
    for (; j < n; j++) gemv_row(k, a, b + j * ldb, alpha, beta, c + j);
}
#undef GEMV_ROWS16

/* ---- a few rows of A, a short k, NT (y = x W^T at a small batch) ---------------------------- */
/*
 * m <= 8 rows of A (an actor's first layer for a few agents: k = the observation, or the
 * observation and a memory core's output) times the stored B transposed, k <= 48. Sixteen
 * columns of C at a time: their sixteen rows of B are transposed in registers (one 16 x 16
 * transpose per 16 k steps; a tail of at most four k steps is gathered instead) into a k x 16
 * panel on the stack, then every row of A runs the FMA chain of tile() over it, one accumulator
 * per row. Each C element thus gets tile()'s operations in tile()'s order (from zero, p
 * increasing, then alpha, then beta by one FMA): the same bits as the direct and packed paths.
 * Nothing outside the views is read (masked loads; rows of B past n are zero).
 */
UKR_INLINE void snt_transpose(const float *b, int64_t ldb, int64_t rows, __mmask16 km, float *bt,
                              int64_t kt)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15;
    __m512 t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
    __m512 u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15;
    __m512 v0, v1, v2, v3;
#define LD(i) r##i = (i) < rows ? _mm512_maskz_loadu_ps(km, b + (i) * ldb) : z;
    LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7)
    LD(8) LD(9) LD(10) LD(11) LD(12) LD(13) LD(14) LD(15)
#undef LD
    t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
    t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
    t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5);
    t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7);
    t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9);
    t10 = _mm512_unpacklo_ps(r10, r11), t11 = _mm512_unpackhi_ps(r10, r11);
    t12 = _mm512_unpacklo_ps(r12, r13), t13 = _mm512_unpackhi_ps(r12, r13);
    t14 = _mm512_unpacklo_ps(r14, r15), t15 = _mm512_unpackhi_ps(r14, r15);
    u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
    u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
    u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xEE);
    u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xEE);
    u8 = _mm512_shuffle_ps(t8, t10, 0x44), u9 = _mm512_shuffle_ps(t8, t10, 0xEE);
    u10 = _mm512_shuffle_ps(t9, t11, 0x44), u11 = _mm512_shuffle_ps(t9, t11, 0xEE);
    u12 = _mm512_shuffle_ps(t12, t14, 0x44), u13 = _mm512_shuffle_ps(t12, t14, 0xEE);
    u14 = _mm512_shuffle_ps(t13, t15, 0x44), u15 = _mm512_shuffle_ps(t13, t15, 0xEE);
    v0 = _mm512_shuffle_f32x4(u0, u4, 0x44), v1 = _mm512_shuffle_f32x4(u0, u4, 0xEE);
    v2 = _mm512_shuffle_f32x4(u8, u12, 0x44), v3 = _mm512_shuffle_f32x4(u8, u12, 0xEE);
    r0 = _mm512_shuffle_f32x4(v0, v2, 0x88), r4 = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r8 = _mm512_shuffle_f32x4(v1, v3, 0x88), r12 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    v0 = _mm512_shuffle_f32x4(u1, u5, 0x44), v1 = _mm512_shuffle_f32x4(u1, u5, 0xEE);
    v2 = _mm512_shuffle_f32x4(u9, u13, 0x44), v3 = _mm512_shuffle_f32x4(u9, u13, 0xEE);
    r1 = _mm512_shuffle_f32x4(v0, v2, 0x88), r5 = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r9 = _mm512_shuffle_f32x4(v1, v3, 0x88), r13 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    v0 = _mm512_shuffle_f32x4(u2, u6, 0x44), v1 = _mm512_shuffle_f32x4(u2, u6, 0xEE);
    v2 = _mm512_shuffle_f32x4(u10, u14, 0x44), v3 = _mm512_shuffle_f32x4(u10, u14, 0xEE);
    r2 = _mm512_shuffle_f32x4(v0, v2, 0x88), r6 = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r10 = _mm512_shuffle_f32x4(v1, v3, 0x88), r14 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    v0 = _mm512_shuffle_f32x4(u3, u7, 0x44), v1 = _mm512_shuffle_f32x4(u3, u7, 0xEE);
    v2 = _mm512_shuffle_f32x4(u11, u15, 0x44), v3 = _mm512_shuffle_f32x4(u11, u15, 0xEE);
    r3 = _mm512_shuffle_f32x4(v0, v2, 0x88), r7 = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r11 = _mm512_shuffle_f32x4(v1, v3, 0x88), r15 = _mm512_shuffle_f32x4(v1, v3, 0xDD);
#define ST(i) if ((i) < kt) _mm512_store_ps(bt + (i) * 16, r##i);
    ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7)
    ST(8) ST(9) ST(10) ST(11) ST(12) ST(13) ST(14) ST(15)
#undef ST
}

/* Panel rows p0 .. k - 1 (at most four) of sixteen rows of B (rows past `rows` zero) by gathers
 * at stride ldb, which the caller checked fits 32-bit offsets. */
UKR_INLINE void snt_gather(const float *b, int64_t ldb, int64_t rows, int64_t p0, int64_t k,
                           float *bt)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((int)ldb));
    const __mmask16 rm = lanes16(rows);
    for (int64_t p = p0; p < k; p++)
        _mm512_store_ps(bt + p * 16,
                        _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rm, idx, b + p, 4));
}

/* C[0..R, lanes of mask) = alpha * sum_p A(r, p) panel(p, :) (+ beta * C), R <= 8. */
UKR_INLINE void snt_rows(int64_t k, const float *a, int64_t lda, const float *bt, float *c,
                         int64_t ldc, __mmask16 mask, const strip_env *e, const int R)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
    for (int64_t p = 0; p < k; p++) {
        const __m512 bv = _mm512_load_ps(bt + p * 16);
#define ROW(r) if (R > r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + p]), bv, c##r);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
#define STORE(r, B) if (R > r) store16(c + r * ldc, c##r, e->va, e->vb, mask, B);
#define STORE_ALL(B) STORE(0, B) STORE(1, B) STORE(2, B) STORE(3, B) STORE(4, B) STORE(5, B)  \
    STORE(6, B) STORE(7, B)
    if (e->beta) {
        STORE_ALL(1)
    } else {
        STORE_ALL(0)
    }
#undef STORE_ALL
#undef STORE
}

static void avx512_small_nt(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                            const float *b, int64_t ldb, float alpha, float beta, float *c,
                            int64_t ldc)
{
    _Alignas(64) float bt[MMI_GEMM_SMALL_NT_K * 16];
    strip_env e;
    const int gather_ok = ldb <= INT32_MAX / 16;
    MMI_ASSERT(k >= 1 && k <= MMI_GEMM_SMALL_NT_K && m >= 1 && m <= 8);
    e.va = _mm512_set1_ps(alpha);
    e.vb = _mm512_set1_ps(beta);
    e.beta = beta != 0.0f;
    for (int64_t j = 0; j < n; j += 16) {
        const int64_t rows = n - j < 16 ? n - j : 16;
        const float *bj = b + j * ldb;
        const __mmask16 mask = lanes16(rows);
        for (int64_t p = 0; p < k; p += 16) {
            const int64_t kt = k - p < 16 ? k - p : 16;
            if (kt <= 4 && gather_ok)
                snt_gather(bj, ldb, rows, p, p + kt, bt);
            else
                snt_transpose(bj + p, ldb, rows, lanes16(kt), bt + p * 16, kt);
        }
        switch (m) {
#define CASE(R) case R: snt_rows(k, a, lda, bt, c + j, ldc, mask, &e, R); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
        default: break;
        }
    }
}

static const mmi_gemm_ukr avx512_ukr = {MR, NR, KC, MC, NC, avx512_packed, avx512_direct,
                                        avx512_dot, mmi_gemm_pack_a_avx512,
                                        mmi_gemm_pack_b_avx512, avx512_gemv, avx512_small_nt,
                                        MMI_GEMM_SMALL_NT_K, NULL};

const mmi_gemm_ukr *mmi_gemm_ukr_avx512(void) { return &avx512_ukr; }

#else /* the build did not compile the AVX-512 paths */

const mmi_gemm_ukr *mmi_gemm_ukr_avx512(void) { return NULL; }

#endif
/* clang-format on */
