/* SPDX-License-Identifier: MIT */
/* optim_update_avx512.c — AVX-512 bodies of the Adam and RMSprop updates: 16 elements at a
 * time, the last step masked, with exactly the portable code's operations in its order
 * (multiplies and adds kept separate, no FMA; sqrt and division are correctly rounded), so the
 * values are bitwise those of optim_update.c and optim_update_avx2.c. The non-finite verdict
 * is taken per lane with a class test (NaN or Inf) under the step's mask, so the lanes a tail
 * leaves out never count; dry stores nothing (and Adam's dry pass with eps > 0 judges most
 * lanes by a bound instead of the square root and divisions: adam_dry_fast). */
#include "../simd/mmi_avx512_target.h"
#include "mmi_elementwise.h"
#include "../simd/mmi_avx512_math.h"

#include <math.h>

#ifdef MMI_HAVE_AVX512

#define SET(x)      _mm512_set1_ps(x)
#define LD(k, p)    _mm512_maskz_loadu_ps(k, p)
#define ST(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#define ADD         _mm512_add_ps
#define MUL         _mm512_mul_ps
#define DIV         _mm512_div_ps

/* Floats ahead of the current 16 that each pass prefetches on the arrays every step streams
 * (parameters, gradients, Adam's two moments, RMSprop's square average; not the optional
 * AMSGrad, momentum and centred slots). They are a model's whole state, several times L2 for
 * an RL critic (120k parameters: 2 MiB of parameters, gradients and moments), and the
 * hardware prefetchers left the loops waiting on their loads: in the TD3 400-300 update (Zen
 * 5, loaded machine) Adam took 9-10 % of the samples without this and 4 % with 1024 floats
 * (4 KiB) ahead (256: 5 %, 2048: 4.5 %). A prefetch never faults, so it may point past the
 * arrays (the address is formed as an integer: no pointer past an array); it changes no
 * value. */
#define AHEAD       1024
#define PREFETCH(x) _mm_prefetch((const char *)((uintptr_t)(x) + 4 * AHEAD), _MM_HINT_T0)

/* The lanes of x (within k) that hold NaN or Inf: fpclass categories QNaN 0x01, +Inf 0x08,
 * -Inf 0x10, SNaN 0x80 — the portable test !(|x| <= FLT_MAX). */
MMI_AVX512_INLINE __mmask16 nonfinite16(__mmask16 k, __m512 x)
{
    return _mm512_mask_fpclass_ps_mask(k, x, 0x01 | 0x08 | 0x10 | 0x80);
}

/* The dry pass's verdict without the square root and the two divisions (mm_model_step runs a
 * dry pass over every layer before it stores anything, so this is half of an Adam step's
 * divider work). m and v are formed and tested exactly as below. For eps > 0 the denominator
 * is >= eps (every rounding is monotone), so |m / den| <= fl(|m| / eps) <= |m| ie (1 + 2u)
 * with ie = fl(1 / eps), and the new p = p + nstep (m / den) is finite whenever
 * |p| + |m| c <= 1e38 with c = |nstep| ie (1 + 1e-4) (the margin covers every rounding on the
 * way; 1e38 < FLT_MAX by more than all of them) — provided m / den itself is finite, which
 * |m| ie (1 + 1e-4) <= 1e38 ensures. That second test is needed: with lr 0 (a schedule at its
 * end) c is 0, and an m of 5.5e37 over a den of 0.09 overflowed to Inf, nstep x Inf = -0 x Inf
 * stored NaN after a dry pass that had judged the lane finite (found by fuzz_config). A lane
 * that fails either test is judged by the exact operations, so the verdict is always the one
 * the committing pass finds. */
static int adam_dry_fast(const mmi_opt_args *u, int *nonfinite)
{
    const double ied = (1.0 / (double)u->eps) * (1.0 + 1e-4);
    const double cd = fabs((double)u->nstep) * ied;
    const __m512 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m512 b = SET(u->b), cb = SET(u->cb), eps = SET(u->eps), bc2s = SET(u->bc2s);
    const __m512 nstep = SET(u->nstep), shrink = SET(u->shrink), lim = SET(1e38f);
    const int do_shrink = u->shrink != 1.0f, do_l2 = u->l2 != 0.0f, amsgrad = u->flag1;
    __m512 c, ie;
    __mmask16 bad = 0;
    if (!(u->eps > 0.0f) || !(cd <= 1e30) || !(ied <= 1e30)) return 0; /* the exact loop judges */
    c = SET((float)cd), ie = SET((float)ied);
    for (int64_t i = 0; i < u->n; i += 16) {
        __mmask16 k = mmi_mask16(u->n - i), slow;
        __m512 p, d, m, v, t;
        PREFETCH(u->p + i), PREFETCH(u->g + i), PREFETCH(u->s0 + i), PREFETCH(u->s1 + i);
        p = LD(k, u->p + i), d = MUL(LD(k, u->g + i), scale);
        if (do_shrink) p = MUL(p, shrink);
        if (do_l2) d = ADD(d, MUL(l2, p));
        m = ADD(MUL(LD(k, u->s0 + i), a), MUL(ca, d));
        v = ADD(MUL(LD(k, u->s1 + i), b), MUL(MUL(cb, d), d));
        bad |= nonfinite16(k, m) | nonfinite16(k, v);
        if (amsgrad) v = _mm512_max_ps(v, LD(k, u->s2 + i));
        t = ADD(_mm512_abs_ps(p), MUL(_mm512_abs_ps(m), c));
        /* not (t <= 1e38): also a NaN t (from a NaN p or m); then m / den must be finite */
        slow = _mm512_mask_cmp_ps_mask(k, t, lim, _CMP_NLE_UQ) |
               _mm512_mask_cmp_ps_mask(k, MUL(_mm512_abs_ps(m), ie), lim, _CMP_NLE_UQ);
        if (slow) {
            __m512 den = ADD(DIV(_mm512_sqrt_ps(v), bc2s), eps);
            bad |= nonfinite16(slow, ADD(p, MUL(nstep, DIV(m, den))));
        }
    }
    *nonfinite = bad != 0;
    return 1;
}

int mmi_adam_update_avx512(const mmi_opt_args *u, int *nonfinite)
{
    const __m512 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m512 b = SET(u->b), cb = SET(u->cb), eps = SET(u->eps), bc2s = SET(u->bc2s);
    const __m512 nstep = SET(u->nstep), shrink = SET(u->shrink);
    const int do_shrink = u->shrink != 1.0f, do_l2 = u->l2 != 0.0f, store = !u->dry;
    const int amsgrad = u->flag1;
    __mmask16 bad = 0;
    if (!store && adam_dry_fast(u, nonfinite)) return 1;
    for (int64_t i = 0; i < u->n; i += 16) {
        __mmask16 k = mmi_mask16(u->n - i);
        __m512 p, d, m, v, den;
        PREFETCH(u->p + i), PREFETCH(u->g + i), PREFETCH(u->s0 + i), PREFETCH(u->s1 + i);
        p = LD(k, u->p + i), d = MUL(LD(k, u->g + i), scale);
        if (do_shrink) p = MUL(p, shrink);
        if (do_l2) d = ADD(d, MUL(l2, p));
        m = ADD(MUL(LD(k, u->s0 + i), a), MUL(ca, d));
        v = ADD(MUL(LD(k, u->s1 + i), b), MUL(MUL(cb, d), d));
        bad |= nonfinite16(k, m) | nonfinite16(k, v);
        if (store) ST(u->s0 + i, k, m), ST(u->s1 + i, k, v);
        if (amsgrad) {
            /* max_ps returns its second operand for NaN: old, as the portable "v > old" */
            v = _mm512_max_ps(v, LD(k, u->s2 + i));
            if (store) ST(u->s2 + i, k, v);
        }
        den = ADD(DIV(_mm512_sqrt_ps(v), bc2s), eps);
        p = ADD(p, MUL(nstep, DIV(m, den)));
        bad |= nonfinite16(k, p);
        if (store) ST(u->p + i, k, p);
    }
    *nonfinite = bad != 0;
    return 1;
}

int mmi_rmsprop_update_avx512(const mmi_opt_args *u, int *nonfinite)
{
    const __m512 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m512 mom = SET(u->b), eps = SET(u->eps), nlr = SET(-u->lr), neg1 = SET(-1.0f);
    const int do_l2 = u->l2 != 0.0f, use_mom = u->b > 0.0f, store = !u->dry;
    const int centered = u->flag1;
    __mmask16 bad = 0;
    for (int64_t i = 0; i < u->n; i += 16) {
        __mmask16 k = mmi_mask16(u->n - i);
        __m512 p, d, sq, avg;
        PREFETCH(u->p + i), PREFETCH(u->g + i), PREFETCH(u->s0 + i);
        p = LD(k, u->p + i), d = MUL(LD(k, u->g + i), scale);
        if (do_l2) d = ADD(d, MUL(l2, p));
        sq = ADD(MUL(LD(k, u->s0 + i), a), MUL(MUL(ca, d), d));
        bad |= nonfinite16(k, sq);
        if (store) ST(u->s0 + i, k, sq);
        if (centered) {
            __m512 ga = ADD(MUL(LD(k, u->s2 + i), a), MUL(ca, d));
            bad |= nonfinite16(k, ga);
            if (store) ST(u->s2 + i, k, ga);
            avg = _mm512_sqrt_ps(ADD(sq, MUL(MUL(neg1, ga), ga)));
        } else {
            avg = _mm512_sqrt_ps(sq);
        }
        avg = ADD(avg, eps);
        if (use_mom) {
            __m512 buf = ADD(MUL(LD(k, u->s1 + i), mom), DIV(d, avg));
            bad |= nonfinite16(k, buf);
            if (store) ST(u->s1 + i, k, buf);
            p = ADD(p, MUL(nlr, buf));
        } else {
            p = ADD(p, MUL(nlr, DIV(d, avg)));
        }
        bad |= nonfinite16(k, p);
        if (store) ST(u->p + i, k, p);
    }
    *nonfinite = bad != 0;
    return 1;
}

#endif /* MMI_HAVE_AVX512 */
