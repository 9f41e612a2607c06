/* SPDX-License-Identifier: MIT */
/*
 * lru_scan_avx512.c — the AVX-512 (F/DQ/BW/VL) body of mmi_ssm_lru_step_rows: one LRU step for
 * n rows (a recurrent policy's agents acting together). Every state and output is the sum of
 * lru_scan.c's streaming loops, term by term in the same order, with a separate multiply and
 * add (no FMA): bit-equal to the portable step and to the training forward. What changes is
 * the width and the reuse: 16 lanes per instruction instead of the four -O2 gives plain C, and
 * each row of the transposed operands (bt, ct) is loaded once for up to four agents, whose
 * four independent chains of additions overlap.
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

/* States of rows i0 .. i0 + G - 1: for each 16-lane block of 2N, acc = sum_k bt[k] u_i[k] in k
 * order (from 0), then h = lambda hp + acc with the pair operations of lru_carry. */
INL void states(const mmi_lru_steps *s, int64_t i0, int G)
{
    const int64_t H = s->H, N2 = 2 * s->N;
    for (int64_t j = 0; j < N2; j += 16) {
        const __mmask16 k = mmi_mask16(N2 - j);
        __m512 a[4];
        for (int g = 0; g < G; g++) a[g] = _mm512_setzero_ps();
        for (int64_t q = 0; q < H; q++) {
            const __m512 w = _mm512_maskz_loadu_ps(k, s->bt + q * N2 + j);
            for (int g = 0; g < G; g++)
                a[g] = _mm512_add_ps(a[g],
                                     _mm512_mul_ps(w, _mm512_set1_ps(s->u[(i0 + g) * H + q])));
        }
        /* lam = (lr, li) pairs: lr in both lanes of a pair, li in both */
        const __m512 lam = _mm512_maskz_loadu_ps(k, s->lam + j);
        const __m512 lr = _mm512_moveldup_ps(lam), li = _mm512_movehdup_ps(lam);
        for (int g = 0; g < G; g++) {
            const int64_t o = (i0 + g) * N2 + j;
            const __m512 p = s->h0 ? _mm512_maskz_loadu_ps(k, s->h0 + o) : _mm512_setzero_ps();
            const __m512 ps = _mm512_permute_ps(p, 0xB1); /* (pi, pr) */
            const __m512 t1 = _mm512_mul_ps(lr, p), t2 = _mm512_mul_ps(li, ps);
            /* re: lr pr - li pi; im: lr pi + li pr; then + acc */
            __m512 h = _mm512_mask_add_ps(_mm512_sub_ps(t1, t2), (__mmask16)0xAAAA, t1, t2);
            _mm512_mask_storeu_ps(s->hs + o, k, _mm512_add_ps(h, a[g]));
        }
    }
}

/* Outputs of rows i0 .. i0 + G - 1 (their new states written): for each 16-lane block of H,
 * y = D u (or 0), then += (Re C hr - Im C hi) for n in order. */
INL void outputs(const mmi_lru_steps *s, int64_t i0, int G)
{
    const int64_t H = s->H, N = s->N;
    for (int64_t j = 0; j < H; j += 16) {
        const __mmask16 k = mmi_mask16(H - j);
        __m512 v[4];
        const __m512 d = s->d ? _mm512_maskz_loadu_ps(k, s->d + j) : _mm512_setzero_ps();
        for (int g = 0; g < G; g++)
            v[g] = s->d ? _mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, s->u + (i0 + g) * H + j))
                        : _mm512_setzero_ps();
        for (int64_t n = 0; n < N; n++) {
            const __m512 cr = _mm512_maskz_loadu_ps(k, s->ct + n * 2 * H + j);
            const __m512 ci = _mm512_maskz_loadu_ps(k, s->ct + n * 2 * H + H + j);
            for (int g = 0; g < G; g++) {
                const float *h = s->hs + (i0 + g) * 2 * N + 2 * n;
                const __m512 t = _mm512_sub_ps(_mm512_mul_ps(cr, _mm512_set1_ps(h[0])),
                                               _mm512_mul_ps(ci, _mm512_set1_ps(h[1])));
                v[g] = _mm512_add_ps(v[g], t);
            }
        }
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
