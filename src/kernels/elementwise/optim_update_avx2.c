/* SPDX-License-Identifier: MIT */
/* optim_update_avx2.c — AVX2 bodies of the Adam and RMSprop updates: 8 elements at a time with
 * exactly the portable code's operations (multiplies and adds kept separate, no FMA; sqrt and
 * division are correctly rounded), so results are bitwise those of optim_update.c, and the
 * same non-finite verdict. The tail runs through the portable body. Adam's dry pass with
 * eps > 0 judges most vectors by a bound instead of the square root and divisions
 * (adam_dry_fast). */
#include "../simd/mmi_avx2_target.h"
#include "mmi_elementwise.h"

#if defined(__AVX2__)
#include <immintrin.h>
#include <float.h>
#include <math.h>

#define SET(x)   _mm256_set1_ps(x)
#define LD(p)    _mm256_loadu_ps(p)
#define ST(p, v) _mm256_storeu_ps(p, v)
#define ADD      _mm256_add_ps
#define MUL      _mm256_mul_ps
#define DIV      _mm256_div_ps

/* The scalar tail: the same struct shifted to start at element i; returns its non-finite flag. */
static int tail(const mmi_opt_args *u, int64_t i, int (*body)(const mmi_opt_args *))
{
    mmi_opt_args t = *u;
    if (i >= u->n) return 0;
    t.p += i;
    t.g += i;
    t.s0 += i;
    if (t.s1) t.s1 += i;
    if (t.s2) t.s2 += i;
    t.n = u->n - i;
    return body(&t);
}

/* acc += x * 0: NaN exactly when some x was Inf or NaN (Inf * 0 is NaN), so one compare at
 * the end gives the verdict. */
static __m256 nonfinite_add(__m256 acc, __m256 x) { return ADD(acc, MUL(x, _mm256_setzero_ps())); }

static int any_nan(__m256 acc)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(acc, acc, _CMP_UNORD_Q)) != 0;
}

/* |x| as a bit operation (no rounding; NaN stays NaN). */
static __m256 abs8(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

/* All-ones in the lanes where x is NaN or Inf: the portable !(|x| <= FLT_MAX). */
static __m256 nonfinite8(__m256 x)
{
    return _mm256_cmp_ps(abs8(x), _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ);
}

/* The dry pass's verdict without the square root and the two divisions, as the AVX-512
 * body's adam_dry_fast (optim_update_avx512.c gives the bound's derivation; the same
 * constants and tests): mm_model_step runs a dry pass over every layer before it stores
 * anything, and the divider is the bound of both passes (the 4-256-256-1 training step spent
 * 10 % of its time in Adam on AVX2, half of it judging). m and v are formed and tested exactly
 * as in the committing loop; a vector where |p| + |m| c or |m| ie is not <= 1e38 is judged by
 * the exact operations, so the verdict is always the one the committing pass finds. Returns 0
 * (the exact loop judges) for eps <= 0 or constants out of range. */
static int adam_dry_fast(const mmi_opt_args *u, int *nonfinite)
{
    const double ied = (1.0 / (double)u->eps) * (1.0 + 1e-4);
    const double cd = fabs((double)u->nstep) * ied;
    const __m256 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m256 b = SET(u->b), cb = SET(u->cb), eps = SET(u->eps), bc2s = SET(u->bc2s);
    const __m256 nstep = SET(u->nstep), shrink = SET(u->shrink), lim = SET(1e38f);
    const int do_shrink = u->shrink != 1.0f, do_l2 = u->l2 != 0.0f, amsgrad = u->flag1;
    __m256 c, ie, bad = _mm256_setzero_ps();
    int64_t i = 0;
    if (!(u->eps > 0.0f) || !(cd <= 1e30) || !(ied <= 1e30)) return 0;
    c = SET((float)cd), ie = SET((float)ied);
    for (; i + 8 <= u->n; i += 8) {
        __m256 p = LD(u->p + i), d = MUL(LD(u->g + i), scale), m, v, t, am, slow;
        if (do_shrink) p = MUL(p, shrink);
        if (do_l2) d = ADD(d, MUL(l2, p));
        m = ADD(MUL(LD(u->s0 + i), a), MUL(ca, d));
        v = ADD(MUL(LD(u->s1 + i), b), MUL(MUL(cb, d), d));
        bad = _mm256_or_ps(bad, _mm256_or_ps(nonfinite8(m), nonfinite8(v)));
        if (amsgrad) v = _mm256_max_ps(v, LD(u->s2 + i));
        am = abs8(m);
        t = ADD(abs8(p), MUL(am, c));
        /* not (t <= 1e38): also a NaN t (from a NaN p or m); then m / den must be finite */
        slow = _mm256_or_ps(_mm256_cmp_ps(t, lim, _CMP_NLE_UQ),
                            _mm256_cmp_ps(MUL(am, ie), lim, _CMP_NLE_UQ));
        if (_mm256_movemask_ps(slow)) {
            __m256 den = ADD(DIV(_mm256_sqrt_ps(v), bc2s), eps);
            bad =
                _mm256_or_ps(bad, _mm256_and_ps(slow, nonfinite8(ADD(p, MUL(nstep, DIV(m, den))))));
        }
    }
    *nonfinite = tail(u, i, mmi_adam_update_portable) | (_mm256_movemask_ps(bad) != 0);
    return 1;
}

int mmi_adam_update_avx2(const mmi_opt_args *u, int *nonfinite)
{
    const __m256 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m256 b = SET(u->b), cb = SET(u->cb), eps = SET(u->eps), bc2s = SET(u->bc2s);
    const __m256 nstep = SET(u->nstep), shrink = SET(u->shrink);
    int do_shrink = u->shrink != 1.0f, do_l2 = u->l2 != 0.0f, store = !u->dry;
    __m256 bad = _mm256_setzero_ps();
    int64_t i = 0;
    if (!store && adam_dry_fast(u, nonfinite)) return 1;
    for (; i + 8 <= u->n; i += 8) {
        __m256 p = LD(u->p + i), d = MUL(LD(u->g + i), scale), m, v, den;
        if (do_shrink) p = MUL(p, shrink);
        if (do_l2) d = ADD(d, MUL(l2, p));
        m = ADD(MUL(LD(u->s0 + i), a), MUL(ca, d));
        v = ADD(MUL(LD(u->s1 + i), b), MUL(MUL(cb, d), d));
        bad = nonfinite_add(nonfinite_add(bad, m), v);
        if (store) ST(u->s0 + i, m), ST(u->s1 + i, v);
        if (u->flag1) {
            /* max_ps returns its second operand for NaN: old, as the portable "v > old" */
            v = _mm256_max_ps(v, LD(u->s2 + i));
            if (store) ST(u->s2 + i, v);
        }
        den = ADD(DIV(_mm256_sqrt_ps(v), bc2s), eps);
        p = ADD(p, MUL(nstep, DIV(m, den)));
        bad = nonfinite_add(bad, p);
        if (store) ST(u->p + i, p);
    }
    *nonfinite = tail(u, i, mmi_adam_update_portable) | any_nan(bad);
    return 1;
}

int mmi_rmsprop_update_avx2(const mmi_opt_args *u, int *nonfinite)
{
    const __m256 scale = SET(u->scale), l2 = SET(u->l2), a = SET(u->a), ca = SET(u->ca);
    const __m256 mom = SET(u->b), eps = SET(u->eps), nlr = SET(-u->lr), neg1 = SET(-1.0f);
    int do_l2 = u->l2 != 0.0f, use_mom = u->b > 0.0f, store = !u->dry;
    __m256 bad = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= u->n; i += 8) {
        __m256 p = LD(u->p + i), d = MUL(LD(u->g + i), scale), sq, avg;
        if (do_l2) d = ADD(d, MUL(l2, p));
        sq = ADD(MUL(LD(u->s0 + i), a), MUL(MUL(ca, d), d));
        bad = nonfinite_add(bad, sq);
        if (store) ST(u->s0 + i, sq);
        if (u->flag1) {
            __m256 ga = ADD(MUL(LD(u->s2 + i), a), MUL(ca, d));
            bad = nonfinite_add(bad, ga);
            if (store) ST(u->s2 + i, ga);
            avg = _mm256_sqrt_ps(ADD(sq, MUL(MUL(neg1, ga), ga)));
        } else {
            avg = _mm256_sqrt_ps(sq);
        }
        avg = ADD(avg, eps);
        if (use_mom) {
            __m256 buf = ADD(MUL(LD(u->s1 + i), mom), DIV(d, avg));
            bad = nonfinite_add(bad, buf);
            if (store) ST(u->s1 + i, buf);
            p = ADD(p, MUL(nlr, buf));
        } else {
            p = ADD(p, MUL(nlr, DIV(d, avg)));
        }
        bad = nonfinite_add(bad, p);
        if (store) ST(u->p + i, p);
    }
    *nonfinite = tail(u, i, mmi_rmsprop_update_portable) | any_nan(bad);
    return 1;
}

#endif
