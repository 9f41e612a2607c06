/* optim_update.c — the per-element optimizer updates of mm_model_step (torch.optim's formulas,
 * float32, torch's operation order), portable bodies and dispatch to optim_update_avx2.c. */
#include "mmi_elementwise.h"

#include <math.h>

/* x * 0 is NaN exactly when x is Inf or NaN, so a running sum of x * 0 over every value the
 * update would store says, with no branch, whether any of them is non-finite. */
#define NONFINITE_ADD(acc, x) ((acc) += (x) * 0.0f)

int mmi_sgd_update(const mmi_opt_args *u)
{
    int use_mom = u->a != 0.0f;
    float bad = 0.0f;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, p;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        if (use_mom) {
            /* torch: the first step's buffer is a copy of d (no dampening) */
            float b = u->flag2 ? d : u->s0[i] * u->a + u->ca * d;
            NONFINITE_ADD(bad, b);
            if (!u->dry) u->s0[i] = b;
            d = u->flag1 ? d + u->a * b : b;
        }
        p = u->p[i] + (-u->lr) * d;
        NONFINITE_ADD(bad, p);
        if (!u->dry) u->p[i] = p;
    }
    return bad != bad;
}

int mmi_adam_update_portable(const mmi_opt_args *u)
{
    float bad = 0.0f;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, p = u->p[i], m, v, den;
        if (u->shrink != 1.0f) p = p * u->shrink;
        if (u->l2 != 0.0f) d = d + u->l2 * p;
        m = u->s0[i] * u->a + u->ca * d;
        v = u->s1[i] * u->b + u->cb * d * d;
        NONFINITE_ADD(bad, m);
        NONFINITE_ADD(bad, v);
        if (!u->dry) u->s0[i] = m, u->s1[i] = v;
        if (u->flag1) {
            if (!(v > u->s2[i])) v = u->s2[i];
            if (!u->dry) u->s2[i] = v;
        }
        /* eps outside the square root, after the bias correction (torch) */
        den = sqrtf(v) / u->bc2s + u->eps;
        p = p + u->nstep * (m / den);
        NONFINITE_ADD(bad, p);
        if (!u->dry) u->p[i] = p;
    }
    return bad != bad;
}

int mmi_rmsprop_update_portable(const mmi_opt_args *u)
{
    float bad = 0.0f;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, sq, avg, p;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        sq = u->s0[i] * u->a + u->ca * d * d;
        NONFINITE_ADD(bad, sq);
        if (!u->dry) u->s0[i] = sq;
        if (u->flag1) {
            float ga = u->s2[i] * u->a + u->ca * d;
            NONFINITE_ADD(bad, ga);
            if (!u->dry) u->s2[i] = ga;
            avg = sqrtf(sq + -1.0f * ga * ga);
        } else {
            avg = sqrtf(sq);
        }
        avg = avg + u->eps;
        if (u->b > 0.0f) {
            float buf = u->s1[i] * u->b + d / avg;
            NONFINITE_ADD(bad, buf);
            if (!u->dry) u->s1[i] = buf;
            p = u->p[i] + (-u->lr) * buf;
        } else {
            p = u->p[i] + (-u->lr) * (d / avg);
        }
        NONFINITE_ADD(bad, p);
        if (!u->dry) u->p[i] = p;
    }
    return bad != bad;
}

int mmi_adam_update(const mmi_opt_args *u)
{
    int bad;
    if (mmi_cpu_has_avx2_fma() && mmi_adam_update_avx2(u, &bad)) return bad;
    return mmi_adam_update_portable(u);
}

int mmi_rmsprop_update(const mmi_opt_args *u)
{
    int bad;
    if (mmi_cpu_has_avx2_fma() && mmi_rmsprop_update_avx2(u, &bad)) return bad;
    return mmi_rmsprop_update_portable(u);
}
