/* SPDX-License-Identifier: MIT */
/*
 * lru_scan_avx2.c — the AVX2 body of mmi_ssm_lru_step_rows: one LRU step for n rows (a
 * recurrent policy's agents acting together), as lru_scan_avx512.c does it with 16 lanes. Every
 * state and output is the sum of lru_scan.c's streaming loops, term by term in the same order,
 * but each term is added by an FMA (acc + w u; v + Re C hr, then - Im C hi) where the portable
 * loops multiply and add separately: a different rounding (within float rounding of them), and
 * about 0.07 us of the eight-agent LRU16 act (1.38 us on Zen 3 after that round;
 * docs/history/RL_LOG.md, entry 21).
 * Acting and training stay bit-equal because mmi_ssm_lru_fwd_t runs its steps through this same
 * body on this set. What else changes is the width and the reuse: 8 lanes per instruction
 * instead of the four -O2 gives plain C, and each row of the transposed operands (bt, ct) is
 * loaded once for up to four agents, whose independent chains of additions overlap (two 8-lane
 * blocks each).
 *
 * Layout (lru_scan.c): bt [H, 2N] (lane j = 2n + c of the state), ct [N, 2, H] (lane k of the
 * output). Letters: H inputs and outputs, N complex states, u input row, h state, y output,
 * lambda the diagonal, G agents per group. Tails are masked loads and stores (nothing outside
 * the rows is read or written).
 */
#include "../simd/mmi_avx2_target.h"
#include "mmi_ssm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "../simd/mmi_avx2_math.h"

/* Lanes [0, n) of an 8-lane mask (n may be outside 0..8). */
MMI_AVX2_INLINE __m256i lanes8(int64_t n)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), iota);
}

/* Eight floats at p, or the lanes of k (the others 0, their memory not read) when MASKED. */
MMI_AVX2_INLINE __m256 ld(const float *p, __m256i k, const int MASKED)
{
    return MASKED ? _mm256_maskload_ps(p, k) : _mm256_loadu_ps(p);
}

/* v into the eight floats at p, or into the lanes of k only when MASKED. */
MMI_AVX2_INLINE void st(float *p, __m256i k, __m256 v, const int MASKED)
{
    if (MASKED)
        _mm256_maskstore_ps(p, k, v);
    else
        _mm256_storeu_ps(p, v);
}

/* h = lambda hp + acc on the (re, im) pairs of one block: re = lr pr - li pi, im = lr pi + li pr
 * (lru_carry's products, difference and sum), then + acc. */
MMI_AVX2_INLINE void carry(const float *lam, const float *hp, __m256 acc, float *hv, __m256i k,
                           const int MASKED)
{
    const __m256 l = ld(lam, k, MASKED);
    const __m256 lr = _mm256_moveldup_ps(l), li = _mm256_movehdup_ps(l);
    const __m256 p = hp ? ld(hp, k, MASKED) : _mm256_setzero_ps();
    const __m256 t1 = _mm256_mul_ps(lr, p), t2 = _mm256_mul_ps(li, _mm256_permute_ps(p, 0xB1));
    const __m256 h = _mm256_blend_ps(_mm256_sub_ps(t1, t2), _mm256_add_ps(t1, t2), 0xAA);
    st(hv, k, _mm256_add_ps(h, acc), MASKED);
}

/* States of rows i0 .. i0 + G - 1 on NB blocks of 8 lanes of 2N from j (2G or G independent
 * chains; the last block masked to the lanes of k when TAIL): acc = fma(bt[q], u_i[q], acc) in
 * q order from 0 (lru_bsum's order; over us and Hs when the caller folded a map into bt), then
 * the carry. G, NB and TAIL are constants at every call (the
 * loops over g unroll into registers). */
MMI_AVX2_INLINE void states(const mmi_lru_steps *s, int64_t i0, int64_t j, __m256i k, const int G,
                            const int NB, const int TAIL)
{
    const int64_t H = s->us ? s->Hs : s->H, N2 = 2 * s->N; /* the states' input width */
    const float *u = s->us ? s->us : s->u;
    const int M0 = TAIL && NB == 1, M1 = TAIL && NB == 2;
    __m256 a0[4], a1[4];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) a0[g] = a1[g] = _mm256_setzero_ps();
    for (int64_t q = 0; q < H; q++) {
        const float *w = s->bt + q * N2 + j;
        const __m256 w0 = ld(w, k, M0), w1 = NB == 2 ? ld(w + 8, k, M1) : w0;
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m256 b = _mm256_broadcast_ss(u + (i0 + g) * H + q);
            a0[g] = _mm256_fmadd_ps(w0, b, a0[g]);
            if (NB == 2) a1[g] = _mm256_fmadd_ps(w1, b, a1[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        const int64_t o = (i0 + g) * N2 + j;
        const float *hp = s->h0 ? s->h0 + o : NULL;
        carry(s->lam + j, hp, a0[g], s->hs + o, k, M0);
        if (NB == 2) carry(s->lam + j + 8, hp ? hp + 8 : NULL, a1[g], s->hs + o + 8, k, M1);
    }
}

/* Outputs of rows i0 .. i0 + G - 1 (their new states written) on NB blocks of 8 lanes of H from
 * j (the last masked to k when TAIL): y = D u (or 0), then for n in order (lru_csum's order)
 * y = fma(Re C, hr, y), then y = fma(-Im C, hi, y). */
MMI_AVX2_INLINE void outputs(const mmi_lru_steps *s, int64_t i0, int64_t j, __m256i k, const int G,
                             const int NB, const int TAIL)
{
    const int64_t H = s->H, N = s->N;
    const int M0 = TAIL && NB == 1, M1 = TAIL && NB == 2;
    const __m256 z = _mm256_setzero_ps();
    const __m256 d0 = s->d ? ld(s->d + j, k, M0) : z;
    const __m256 d1 = s->d && NB == 2 ? ld(s->d + j + 8, k, M1) : z;
    __m256 v0[4], v1[4];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        const float *u = s->u + (i0 + g) * H + j;
        v0[g] = s->d ? _mm256_mul_ps(d0, ld(u, k, M0)) : z;
        v1[g] = s->d && NB == 2 ? _mm256_mul_ps(d1, ld(u + 8, k, M1)) : z;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *c = s->ct + n * 2 * H + j;
        const __m256 cr0 = ld(c, k, M0), ci0 = ld(c + H, k, M0);
        const __m256 cr1 = NB == 2 ? ld(c + 8, k, M1) : z, ci1 = NB == 2 ? ld(c + H + 8, k, M1) : z;
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const float *h = s->hs + (i0 + g) * 2 * N + 2 * n;
            const __m256 hr = _mm256_broadcast_ss(h), hi = _mm256_broadcast_ss(h + 1);
            v0[g] = _mm256_fnmadd_ps(ci0, hi, _mm256_fmadd_ps(cr0, hr, v0[g]));
            if (NB == 2) v1[g] = _mm256_fnmadd_ps(ci1, hi, _mm256_fmadd_ps(cr1, hr, v1[g]));
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        float *y = s->y + (i0 + g) * H + j;
        st(y, k, v0[g], M0);
        if (NB == 2) st(y + 8, k, v1[g], M1);
    }
}

/* Lanes [0, len) in blocks: 16 at a time, then the rest as one or two blocks, masked only
 * where the last block is partial. */
#define BLOCKS(len, CALL)                                                                          \
    do {                                                                                           \
        int64_t j = 0, r;                                                                          \
        const __m256i all = _mm256_set1_epi32(-1);                                                 \
        for (; j + 16 <= (len); j += 16) CALL(j, all, 2, 0);                                       \
        r = (len)-j;                                                                               \
        if (r == 8)                                                                                \
            CALL(j, all, 1, 0);                                                                    \
        else if (r > 8)                                                                            \
            CALL(j, lanes8(r - 8), 2, 1);                                                          \
        else if (r > 0)                                                                            \
            CALL(j, lanes8(r), 1, 1);                                                              \
    } while (0)

/* One group of G rows: all its states, then all its outputs (which read the states). */
MMI_AVX2_INLINE void step_group(const mmi_lru_steps *s, int64_t i0, const int G)
{
#define STATES(j, k, NB, TAIL)  states(s, i0, j, k, G, NB, TAIL)
#define OUTPUTS(j, k, NB, TAIL) outputs(s, i0, j, k, G, NB, TAIL)
    BLOCKS(2 * s->N, STATES);
    BLOCKS(s->H, OUTPUTS);
#undef STATES
#undef OUTPUTS
}

int mmi_ssm_lru_step_rows_avx2(const mmi_lru_steps *s)
{
    int64_t i = 0;
    for (; i + 4 <= s->n; i += 4) step_group(s, i, 4);
    for (; i + 2 <= s->n; i += 2) step_group(s, i, 2);
    for (; i < s->n; i++) step_group(s, i, 1);
    return 1;
}

#endif /* __AVX2__ && __FMA__ */
