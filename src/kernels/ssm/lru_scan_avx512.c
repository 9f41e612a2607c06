/* SPDX-License-Identifier: MIT */
/*
 * lru_scan_avx512.c — the AVX-512 (F/DQ/BW/VL) body of mmi_ssm_lru_step_rows: one LRU step for
 * n rows (a recurrent policy's agents acting together). Every state and output is the sum of
 * lru_scan.c's streaming loops, term by term in the same order, with a separate multiply and
 * add (no FMA): bit-equal to the portable step and to the training forward. What changes is
 * the width and the reuse: 16 lanes per instruction instead of the four -O2 gives plain C, and
 * each row of the transposed operands (bt, ct) is loaded once for up to four agents, whose
 * four independent chains of additions overlap (eight for the states: two blocks of 2N).
 *
 * Layout (lru_scan.c): bt [H, 2N] (lane j = 2n + c of the state), ct [N, 2, H] (lane k of the
 * output). The state sum acc = bt^T u runs over lanes of 2N, the carry lambda h + acc on the
 * interleaved (re, im) pairs, and the output sum over lanes of H; tails are masked.
 */
#include "../simd/mmi_avx512_target.h"
#include "mmi_ssm_kernels.h"

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>

#include "../simd/mmi_avx512_math.h"

#if defined(__GNUC__) || defined(__clang__)
#define INL static inline __attribute__((always_inline))
#else
#define INL static inline
#endif

/* h = lambda hp + acc on the (re, im) pairs of one block: re = lr pr - li pi, im = lr pi + li pr
 * (lru_carry's products, difference and sum), then + acc. */
INL void carry(const float *lam, const float *hp, __m512 acc, float *hv, __mmask16 k)
{
    const __m512 l = _mm512_maskz_loadu_ps(k, lam);
    const __m512 lr = _mm512_moveldup_ps(l), li = _mm512_movehdup_ps(l);
    const __m512 p = hp ? _mm512_maskz_loadu_ps(k, hp) : _mm512_setzero_ps();
    const __m512 t1 = _mm512_mul_ps(lr, p), t2 = _mm512_mul_ps(li, _mm512_permute_ps(p, 0xB1));
    const __m512 h = _mm512_mask_add_ps(_mm512_sub_ps(t1, t2), (__mmask16)0xAAAA, t1, t2);
    _mm512_mask_storeu_ps(hv, k, _mm512_add_ps(h, acc));
}

/* States of rows i0 .. i0 + G - 1, 32 lanes of 2N at a time (two blocks, 2G independent
 * chains): acc = sum_k bt[k] u_i[k] in k order from 0 (lru_bsum; over us and Hs when the
 * caller folded a map into bt), then the carry. G is a
 * constant at every call (the loops over g unroll into registers). */
INL void states(const mmi_lru_steps *s, int64_t i0, int G)
{
    const int64_t H = s->us ? s->Hs : s->H, N2 = 2 * s->N; /* the states' input width */
    const float *u = s->us ? s->us : s->u;
    for (int64_t j = 0; j < N2; j += 32) {
        const __mmask16 k0 = mmi_lanes16(N2 - j), k1 = mmi_lanes16(N2 - j - 16);
        __m512 a0[4], a1[4];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) a0[g] = a1[g] = _mm512_setzero_ps();
        for (int64_t q = 0; q < H; q++) {
            const float *w = s->bt + q * N2 + j;
            const __m512 w0 = _mm512_maskz_loadu_ps(k0, w), w1 = _mm512_maskz_loadu_ps(k1, w + 16);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                const __m512 b = _mm512_set1_ps(u[(i0 + g) * H + q]);
                a0[g] = _mm512_add_ps(a0[g], _mm512_mul_ps(w0, b));
                a1[g] = _mm512_add_ps(a1[g], _mm512_mul_ps(w1, b));
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const int64_t o = (i0 + g) * N2 + j;
            const float *hp = s->h0 ? s->h0 + o : NULL;
            carry(s->lam + j, hp, a0[g], s->hs + o, k0);
            if (k1) carry(s->lam + j + 16, hp ? hp + 16 : NULL, a1[g], s->hs + o + 16, k1);
        }
    }
}

/* Outputs of rows i0 .. i0 + G - 1 (their new states written), 16 lanes of H at a time:
 * y = D u (or 0), then += (Re C hr - Im C hi) for n in order (lru_csum). */
INL void outputs(const mmi_lru_steps *s, int64_t i0, int G)
{
    const int64_t H = s->H, N = s->N;
    for (int64_t j = 0; j < H; j += 16) {
        const __mmask16 k = mmi_lanes16(H - j);
        const __m512 d = s->d ? _mm512_maskz_loadu_ps(k, s->d + j) : _mm512_setzero_ps();
        __m512 v[4];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
            v[g] = s->d ? _mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, s->u + (i0 + g) * H + j))
                        : _mm512_setzero_ps();
        for (int64_t n = 0; n < N; n++) {
            const __m512 cr = _mm512_maskz_loadu_ps(k, s->ct + n * 2 * H + j);
            const __m512 ci = _mm512_maskz_loadu_ps(k, s->ct + n * 2 * H + H + j);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                const float *h = s->hs + (i0 + g) * 2 * N + 2 * n;
                const __m512 t = _mm512_sub_ps(_mm512_mul_ps(cr, _mm512_set1_ps(h[0])),
                                               _mm512_mul_ps(ci, _mm512_set1_ps(h[1])));
                v[g] = _mm512_add_ps(v[g], t);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) _mm512_mask_storeu_ps(s->y + (i0 + g) * H + j, k, v[g]);
    }
}

int mmi_ssm_lru_step_rows_avx512(const mmi_lru_steps *s)
{
    int64_t i = 0;
    for (; i + 4 <= s->n; i += 4) states(s, i, 4), outputs(s, i, 4);
    for (; i + 2 <= s->n; i += 2) states(s, i, 2), outputs(s, i, 2);
    for (; i < s->n; i++) states(s, i, 1), outputs(s, i, 1);
    return 1;
}

#endif /* MMI_HAVE_AVX512 */
