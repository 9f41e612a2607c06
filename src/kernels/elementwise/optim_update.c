/* SPDX-License-Identifier: MIT */
/* optim_update.c — the per-element optimizer updates of mm_model_step (torch.optim's formulas,
 * float32, torch's operation order), portable bodies and dispatch to optim_update_avx2.c. */
#include "mmi_elementwise.h"

#include <float.h>
#include <math.h>

/* 1 for Inf and NaN; OR-ed over the loop (an int OR, unlike a float flag sum, is a reduction
 * a compiler may vectorise). */
static inline int nonfinite(float x) { return !(fabsf(x) <= FLT_MAX); }

/* Each body is written once with dry as a parameter and instantiated twice with a constant, so
 * neither loop carries a store branch. */
static inline int sgd_body(const mmi_opt_args *u, const int dry)
{
    /* Locals, not u->: a float store through p may alias u's float fields, which would force
     * a reload of every hyperparameter per element. */
    float *p = u->p, *s0 = u->s0;
    const float *g = u->g;
    const float scale = u->scale, l2 = u->l2, nlr = -u->lr, a = u->a, ca = u->ca;
    const int use_mom = a != 0.0f, nesterov = u->flag1, first = u->flag2;
    const int64_t n = u->n;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] * scale, q;
        if (l2 != 0.0f) d = d + l2 * p[i];
        if (use_mom) {
            /* torch: the first step's buffer is a copy of d (no dampening) */
            float b = first ? d : s0[i] * a + ca * d;
            bad |= nonfinite(b);
            if (!dry) s0[i] = b;
            d = nesterov ? d + a * b : b;
        }
        q = p[i] + nlr * d;
        bad |= nonfinite(q);
        if (!dry) p[i] = q;
    }
    return bad;
}

int mmi_sgd_update(const mmi_opt_args *u) { return u->dry ? sgd_body(u, 1) : sgd_body(u, 0); }

static inline int adam_body(const mmi_opt_args *u, const int dry)
{
    int bad = 0;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, p = u->p[i], m, v, den;
        if (u->shrink != 1.0f) p = p * u->shrink;
        if (u->l2 != 0.0f) d = d + u->l2 * p;
        m = u->s0[i] * u->a + u->ca * d;
        v = u->s1[i] * u->b + u->cb * d * d;
        bad |= nonfinite(m) | nonfinite(v);
        if (!dry) u->s0[i] = m, u->s1[i] = v;
        if (u->flag1) {
            if (!(v > u->s2[i])) v = u->s2[i];
            if (!dry) u->s2[i] = v;
        }
        /* eps outside the square root, after the bias correction (torch) */
        den = sqrtf(v) / u->bc2s + u->eps;
        p = p + u->nstep * (m / den);
        bad |= nonfinite(p);
        if (!dry) u->p[i] = p;
    }
    return bad;
}

int mmi_adam_update_portable(const mmi_opt_args *u)
{
    return u->dry ? adam_body(u, 1) : adam_body(u, 0);
}

static inline int rmsprop_body(const mmi_opt_args *u, const int dry)
{
    int bad = 0;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, sq, avg, p;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        sq = u->s0[i] * u->a + u->ca * d * d;
        bad |= nonfinite(sq);
        if (!dry) u->s0[i] = sq;
        if (u->flag1) {
            float ga = u->s2[i] * u->a + u->ca * d;
            bad |= nonfinite(ga);
            if (!dry) u->s2[i] = ga;
            avg = sqrtf(sq + -1.0f * ga * ga);
        } else {
            avg = sqrtf(sq);
        }
        avg = avg + u->eps;
        if (u->b > 0.0f) {
            float buf = u->s1[i] * u->b + d / avg;
            bad |= nonfinite(buf);
            if (!dry) u->s1[i] = buf;
            p = u->p[i] + (-u->lr) * buf;
        } else {
            p = u->p[i] + (-u->lr) * (d / avg);
        }
        bad |= nonfinite(p);
        if (!dry) u->p[i] = p;
    }
    return bad;
}

int mmi_rmsprop_update_portable(const mmi_opt_args *u)
{
    return u->dry ? rmsprop_body(u, 1) : rmsprop_body(u, 0);
}

int mmi_adam_update(const mmi_opt_args *u)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    int bad;
    MMI_ASSERT(u && u->n >= 0 && (u->n == 0 || (u->p && u->g && u->s0 && u->s1)));
    if (v && v->adam_update(u, &bad)) return bad;
    return mmi_adam_update_portable(u);
}

int mmi_rmsprop_update(const mmi_opt_args *u)
{
    const mmi_elementwise_isa *v = mmi_elementwise_isa_get();
    int bad;
    MMI_ASSERT(u && u->n >= 0 && (u->n == 0 || (u->p && u->g && u->s0)));
    if (v && v->rmsprop_update(u, &bad)) return bad;
    return mmi_rmsprop_update_portable(u);
}
