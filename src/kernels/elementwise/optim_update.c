/* optim_update.c — the per-element optimizer updates of mm_model_step (torch.optim's formulas,
 * float32, torch's operation order), portable bodies and dispatch to optim_update_avx2.c. */
#include "mmi_elementwise.h"

#include <math.h>

void mmi_sgd_update(const mmi_opt_args *u)
{
    int use_mom = u->a != 0.0f;
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        if (use_mom) {
            /* torch: the first step's buffer is a copy of d (no dampening) */
            float b = u->flag2 ? d : u->s0[i] * u->a + u->ca * d;
            u->s0[i] = b;
            d = u->flag1 ? d + u->a * b : b;
        }
        u->p[i] = u->p[i] + (-u->lr) * d;
    }
}

void mmi_adam_update_portable(const mmi_opt_args *u)
{
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, m, v, den;
        if (u->shrink != 1.0f) u->p[i] = u->p[i] * u->shrink;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        m = u->s0[i] * u->a + u->ca * d;
        v = u->s1[i] * u->b + u->cb * d * d;
        u->s0[i] = m;
        u->s1[i] = v;
        if (u->flag1) {
            if (v > u->s2[i]) u->s2[i] = v;
            v = u->s2[i];
        }
        /* eps outside the square root, after the bias correction (torch) */
        den = sqrtf(v) / u->bc2s + u->eps;
        u->p[i] = u->p[i] + u->nstep * (m / den);
    }
}

void mmi_rmsprop_update_portable(const mmi_opt_args *u)
{
    for (int64_t i = 0; i < u->n; i++) {
        float d = u->g[i] * u->scale, sq, avg;
        if (u->l2 != 0.0f) d = d + u->l2 * u->p[i];
        sq = u->s0[i] * u->a + u->ca * d * d;
        u->s0[i] = sq;
        if (u->flag1) {
            float ga = u->s2[i] * u->a + u->ca * d;
            u->s2[i] = ga;
            avg = sqrtf(sq + -1.0f * ga * ga);
        } else {
            avg = sqrtf(sq);
        }
        avg = avg + u->eps;
        if (u->b > 0.0f) {
            float buf = u->s1[i] * u->b + d / avg;
            u->s1[i] = buf;
            u->p[i] = u->p[i] + (-u->lr) * buf;
        } else {
            u->p[i] = u->p[i] + (-u->lr) * (d / avg);
        }
    }
}

void mmi_adam_update(const mmi_opt_args *u)
{
    const mmi_elementwise_isa *v = mmi_dispatch_get()->elementwise;
    MMI_ASSERT(u && u->n >= 0 && (u->n == 0 || (u->p && u->g && u->s0 && u->s1)));
    if (v && v->adam_update(u)) return;
    mmi_adam_update_portable(u);
}

void mmi_rmsprop_update(const mmi_opt_args *u)
{
    const mmi_elementwise_isa *v = mmi_dispatch_get()->elementwise;
    MMI_ASSERT(u && u->n >= 0 && (u->n == 0 || (u->p && u->g && u->s0)));
    if (v && v->rmsprop_update(u)) return;
    mmi_rmsprop_update_portable(u);
}
