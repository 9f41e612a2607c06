/* SPDX-License-Identifier: MIT */
/*
 * gemm_ukr.c — the portable C kernel set of the GEMM driver: plain loops that any C11 compiler
 * vectorizes as far as it can. Used on CPUs without AVX2/FMA, and by the tests as the second
 * implementation the AVX2 set is checked against.
 */
#include "mmi_gemm.h"

#include <string.h>

enum { MR = MMI_GEMM_MR, NR = MMI_GEMM_NR };

/* C tile (mr x nr) = alpha * acc + beta * C; beta == 0 does not read C. */
static void store_tile(float acc[MR][NR], int64_t mr, int64_t nr, float alpha, float beta, float *c,
                       int64_t ldc)
{
    for (int64_t r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < nr; j++) cr[j] = alpha * acc[r][j];
        else
            for (int64_t j = 0; j < nr; j++) cr[j] = alpha * acc[r][j] + beta * cr[j];
    }
}

#if defined(__GNUC__) || defined(__clang__)
/* GCC/Clang vector extension: 4 floats, one SSE or NEON register on every SIMD target. Local
 * variables of this type keep the accumulators in registers, which plain arrays do not at -O2
 * (about 2x at 1024^3 on baseline x86-64). */
typedef float v4f __attribute__((vector_size(16)));

/* acc[0..MR)[h..h+8) = A (MR x k, A(r, p) = a[r*a_rs + p*a_cs]) times columns h..h+8 of B
 * (B(p, j) = b[p*b_rs + j]): 12 vector accumulators, two B loads and six broadcasts per k step. */
static inline __attribute__((always_inline)) void mul8(int64_t k, const float *a, int64_t a_rs,
                                                       int64_t a_cs, const float *b, int64_t b_rs,
                                                       float acc[MR][NR], int h)
{
    v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    v4f c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0}, b0, b1;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += b_rs) {
        memcpy(&b0, b + h, sizeof b0);
        memcpy(&b1, b + h + 4, sizeof b1);
#define ROW(r)                                                                                     \
    {                                                                                              \
        float s_ = a[r * a_rs];                                                                    \
        v4f ar = {s_, s_, s_, s_};                                                                 \
        c##r##0 += ar * b0;                                                                        \
        c##r##1 += ar * b1;                                                                        \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
#define OUT(r)                                                                                     \
    memcpy(acc[r] + h, &c##r##0, sizeof c##r##0);                                                  \
    memcpy(acc[r] + h + 4, &c##r##1, sizeof c##r##1);
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5)
#undef OUT
}
#else
static void mul8(int64_t k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                 int64_t b_rs, float acc[MR][NR], int h)
{
    for (int r = 0; r < MR; r++)
        for (int j = h; j < h + 8; j++) acc[r][j] = 0.0f;
    for (int64_t p = 0; p < k; p++, a += a_cs, b += b_rs)
        for (int r = 0; r < MR; r++)
            for (int j = h; j < h + 8; j++) acc[r][j] += a[r * a_rs] * b[j];
}
#endif

/* Panels are zero-padded, so every tile is computed whole and only the store is clipped. */
static void portable_packed(int64_t kc, int64_t mc, int64_t nc, const float *ap, const float *bp,
                            float alpha, float beta, float *c, int64_t ldc)
{
    float acc[MR][NR];
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            mul8(kc, ap + ir * kc, 1, MR, bp + jr * kc, NR, acc, 0);
            if (nr > 8) mul8(kc, ap + ir * kc, 1, MR, bp + jr * kc, NR, acc, 8);
            store_tile(acc, mr, nr, alpha, beta, c + ir * ldc + jr, ldc);
        }
    }
}

/* Whole 6-row tiles use mul8 on the 8-column halves that lie inside n; the rest (row tails,
 * column tails) runs as plain loops, which never read past the view. */
static void portable_direct(int64_t k, int64_t m, int64_t n, const float *a, int64_t a_rs,
                            int64_t a_cs, const float *b, int64_t ldb, float alpha, float beta,
                            float *c, int64_t ldc)
{
    float acc[MR][NR];
    for (int64_t jr = 0; jr < n; jr += NR) {
        int64_t nr = n - jr < NR ? n - jr : NR;
        for (int64_t ir = 0; ir < m; ir += MR) {
            int64_t mr = m - ir < MR ? m - ir : MR, j0 = 0;
            const float *ai = a + ir * a_rs;
            if (mr == MR)
                for (; j0 + 8 <= nr; j0 += 8) mul8(k, ai, a_rs, a_cs, b + jr, ldb, acc, (int)j0);
            for (int64_t r = 0; r < mr; r++)
                for (int64_t j = j0; j < nr; j++) acc[r][j] = 0.0f;
            for (int64_t p = 0; p < k; p++) {
                const float *bp = b + p * ldb + jr;
                for (int64_t r = 0; r < mr; r++) {
                    float ar = ai[r * a_rs + p * a_cs];
                    for (int64_t j = j0; j < nr; j++) acc[r][j] += ar * bp[j];
                }
            }
            store_tile(acc, mr, nr, alpha, beta, c + ir * ldc + jr, ldc);
        }
    }
}

static void portable_dot(int64_t k, int64_t m, int64_t n, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float alpha, float beta, float *c,
                         int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda;
        for (int64_t j = 0; j < n; j++) {
            const float *bj = b + j * ldb;
            /* Four partial sums break the add latency chain. */
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            int64_t p = 0;
            for (; p + 4 <= k; p += 4) {
                s0 += ai[p] * bj[p];
                s1 += ai[p + 1] * bj[p + 1];
                s2 += ai[p + 2] * bj[p + 2];
                s3 += ai[p + 3] * bj[p + 3];
            }
            for (; p < k; p++) s0 += ai[p] * bj[p];
            float s = (s0 + s1) + (s2 + s3);
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
    }
}

const mmi_gemm_ukr mmi_gemm_ukr_portable = {MMI_GEMM_MR,
                                            MMI_GEMM_NR,
                                            MMI_GEMM_KC,
                                            MMI_GEMM_MC,
                                            MMI_GEMM_NC,
                                            portable_packed,
                                            portable_direct,
                                            portable_dot,
                                            mmi_gemm_pack_a,
                                            mmi_gemm_pack_b,
                                            NULL,
                                            NULL,
                                            0,
                                            NULL};
