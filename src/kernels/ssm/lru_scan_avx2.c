/* SPDX-License-Identifier: MIT */
/*
 * lru_scan_avx2.c — the AVX2 body of mmi_ssm_lru_step_rows: one LRU step for n rows (a
 * recurrent policy's agents acting together), as lru_scan_avx512.c does it with 16 lanes. Every
 * state and output is the sum of lru_scan.c's streaming loops, term by term in the same order,
 * with a separate multiply and add (no FMA): bit-equal to the portable step and to the training
 * forward. What changes is the width and the reuse: 8 lanes per instruction instead of the four
 * -O2 gives plain C, and each row of the transposed operands (bt, ct) is loaded once for up to
 * four agents, whose independent chains of additions overlap (two 8-lane blocks each).
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

/* Eight floats at p, or the lanes of k (the others 0, their memory not read) unless FULL. */
MMI_AVX2_INLINE __m256 ld(const float *p, __m256i k, const int FULL)
{
    return FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k);
}

/* h = lambda hp + acc on the (re, im) pairs of one block: re = lr pr - li pi, im = lr pi + li pr
 * (lru_carry's products, difference and sum), then + acc. */
MMI_AVX2_INLINE void carry(const float *lam, const float *hp, __m256 acc, float *hv, __m256i k,
                           const int FULL)
{
    const __m256 l = ld(lam, k, FULL);
    const __m256 lr = _mm256_moveldup_ps(l), li = _mm256_movehdup_ps(l);
    const __m256 p = hp ? ld(hp, k, FULL) : _mm256_setzero_ps();
    const __m256 t1 = _mm256_mul_ps(lr, p), t2 = _mm256_mul_ps(li, _mm256_permute_ps(p, 0xB1));
    const __m256 h =
        _mm256_add_ps(_mm256_blend_ps(_mm256_sub_ps(t1, t2), _mm256_add_ps(t1, t2), 0xAA), acc);
    if (FULL)
        _mm256_storeu_ps(hv, h);
    else
        _mm256_maskstore_ps(hv, k, h);
}

/* States of rows i0 .. i0 + G - 1 on lanes [j, j + 16) of 2N (two blocks, 2G independent
 * chains): acc = sum_q bt[q] u_i[q] in q order from 0 (lru_bsum), then the carry. G is a
 * constant at every call (the loops over g unroll into registers). */
MMI_AVX2_INLINE void states16(const mmi_lru_steps *s, int64_t i0, int64_t j, const int G,
                              const int FULL)
{
    const int64_t H = s->H, N2 = 2 * s->N;
    const __m256i k0 = lanes8(N2 - j), k1 = lanes8(N2 - j - 8);
    __m256 a0[4], a1[4];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) a0[g] = a1[g] = _mm256_setzero_ps();
    for (int64_t q = 0; q < H; q++) {
        const float *w = s->bt + q * N2 + j;
        const __m256 w0 = ld(w, k0, FULL), w1 = ld(w + 8, k1, FULL);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m256 b = _mm256_broadcast_ss(s->u + (i0 + g) * H + q);
            a0[g] = _mm256_add_ps(a0[g], _mm256_mul_ps(w0, b));
            a1[g] = _mm256_add_ps(a1[g], _mm256_mul_ps(w1, b));
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        const int64_t o = (i0 + g) * N2 + j;
        const float *hp = s->h0 ? s->h0 + o : NULL;
        carry(s->lam + j, hp, a0[g], s->hs + o, k0, FULL);
        if (FULL || N2 - j > 8)
            carry(s->lam + j + 8, hp ? hp + 8 : NULL, a1[g], s->hs + o + 8, k1, FULL);
    }
}

/* Outputs of rows i0 .. i0 + G - 1 (their new states written) on lanes [j, j + 16) of H:
 * y = D u (or 0), then += (Re C hr - Im C hi) for n in order (lru_csum). */
MMI_AVX2_INLINE void outputs16(const mmi_lru_steps *s, int64_t i0, int64_t j, const int G,
                               const int FULL)
{
    const int64_t H = s->H, N = s->N;
    const __m256i k0 = lanes8(H - j), k1 = lanes8(H - j - 8);
    const __m256 z = _mm256_setzero_ps();
    const __m256 d0 = s->d ? ld(s->d + j, k0, FULL) : z, d1 = s->d ? ld(s->d + j + 8, k1, FULL) : z;
    __m256 v0[4], v1[4];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        const float *u = s->u + (i0 + g) * H + j;
        v0[g] = s->d ? _mm256_mul_ps(d0, ld(u, k0, FULL)) : z;
        v1[g] = s->d ? _mm256_mul_ps(d1, ld(u + 8, k1, FULL)) : z;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *c = s->ct + n * 2 * H + j;
        const __m256 cr0 = ld(c, k0, FULL), cr1 = ld(c + 8, k1, FULL);
        const __m256 ci0 = ld(c + H, k0, FULL), ci1 = ld(c + H + 8, k1, FULL);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const float *h = s->hs + (i0 + g) * 2 * N + 2 * n;
            const __m256 hr = _mm256_broadcast_ss(h), hi = _mm256_broadcast_ss(h + 1);
            v0[g] =
                _mm256_add_ps(v0[g], _mm256_sub_ps(_mm256_mul_ps(cr0, hr), _mm256_mul_ps(ci0, hi)));
            v1[g] =
                _mm256_add_ps(v1[g], _mm256_sub_ps(_mm256_mul_ps(cr1, hr), _mm256_mul_ps(ci1, hi)));
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        float *y = s->y + (i0 + g) * H + j;
        if (FULL) {
            _mm256_storeu_ps(y, v0[g]);
            _mm256_storeu_ps(y + 8, v1[g]);
        } else {
            _mm256_maskstore_ps(y, k0, v0[g]);
            _mm256_maskstore_ps(y + 8, k1, v1[g]);
        }
    }
}

/* One group of G rows: all its states, then all its outputs (which read the states). */
MMI_AVX2_INLINE void step_group(const mmi_lru_steps *s, int64_t i0, const int G)
{
    const int64_t H = s->H, N2 = 2 * s->N;
    int64_t j = 0;
    for (; j + 16 <= N2; j += 16) states16(s, i0, j, G, 1);
    if (j < N2) states16(s, i0, j, G, 0);
    for (j = 0; j + 16 <= H; j += 16) outputs16(s, i0, j, G, 1);
    if (j < H) outputs16(s, i0, j, G, 0);
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
