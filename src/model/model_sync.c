/* SPDX-License-Identifier: MIT */
/* model_sync.c — operations between models and on layer ranges of a finalized model:
 * mm_model_freeze (LiT locking), mm_model_copy (target-network initialisation, checkpoints in
 * memory) and mm_model_lerp (Polyak / EMA targets). */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "mmi_model.h"

#include <string.h>

MM_API int mm_model_freeze(mm_model *m, int32_t first, int32_t count, int32_t frozen)
{
    const char *fn = "mm_model_freeze";
    if (!m) return MM_E_INVALID_ARG;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if (frozen != 0 && frozen != 1)
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: frozen must be 0 or 1", fn);
    if (first < 0 || count < 0 || first > m->n_layers || count > m->n_layers - first)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: layers [%d, %d + %d) are outside [0, %d)", fn,
                        (int)first, (int)first, (int)count, (int)m->n_layers);
    for (int32_t i = first; i < first + count; i++) m->layers[i].frozen = frozen;
    return MM_OK;
}

/* 1 if a and b have the same layers with the same configurations and widths. */
static int same_arch(const mm_model *a, const mm_model *b)
{
    if (a->opts.input_dim != b->opts.input_dim || a->n_layers != b->n_layers ||
        a->n_params != b->n_params)
        return 0;
    for (int32_t i = 0; i < a->n_layers; i++) {
        const mmi_layer *x = &a->layers[i], *y = &b->layers[i];
        if (x->vt != y->vt || x->n_icfg != y->n_icfg || x->n_dcfg != y->n_dcfg ||
            x->out_dim != y->out_dim || x->n_params != y->n_params ||
            memcmp(x->icfg, y->icfg, (size_t)x->n_icfg * sizeof x->icfg[0]) != 0)
            return 0;
        /* Doubles compared by value: eps and gain must match, init gain included, as a
         * save/load round trip keeps them exactly. */
        for (int32_t k = 0; k < x->n_dcfg; k++)
            if (x->dcfg[k] != y->dcfg[k]) return 0;
    }
    return 1;
}

static int check_pair(mm_model *dst, const mm_model *src, const char *fn)
{
    if (!src) return mmi_fail(&dst->err, MM_E_INVALID_ARG, "%s: src is NULL", fn);
    if (dst == src)
        return mmi_fail(&dst->err, MM_E_INVALID_ARG,
                        "%s: dst and src are the same "
                        "model",
                        fn);
    if (!dst->finalized || !src->finalized)
        return mmi_fail(&dst->err, MM_E_STATE, "%s: both models must be finalized", fn);
    if (!same_arch(dst, src))
        return mmi_fail(&dst->err, MM_E_SHAPE, "%s: src and dst have different architectures", fn);
    return MM_OK;
}

MM_API int mm_model_copy(mm_model *dst, const mm_model *src, int32_t with_optimizer)
{
    const char *fn = "mm_model_copy";
    int rc;
    if (!dst) return MM_E_INVALID_ARG;
    if (with_optimizer != 0 && with_optimizer != 1)
        return mmi_fail(&dst->err, MM_E_INVALID_ARG, "%s: with_optimizer must be 0 or 1", fn);
    if ((rc = check_pair(dst, src, fn)) != MM_OK) return rc;
    if (with_optimizer && !src->opt.kind)
        return mmi_fail(&dst->err, MM_E_STATE, "%s: src has no optimizer to copy", fn);
    /* The optimizer first: it is the only part that can fail (allocation). */
    if (with_optimizer && (rc = mmi_optim_copy(dst, src, fn)) != MM_OK) return rc;
    memcpy(dst->params, src->params, (size_t)src->n_params * sizeof(float));
    return MM_OK;
}

MM_API int mm_model_lerp(mm_model *dst, const mm_model *src, double tau)
{
    const char *fn = "mm_model_lerp";
    float keep, take, *d;
    const float *s;
    int rc;
    if (!dst) return MM_E_INVALID_ARG;
    if (!(tau >= 0.0 && tau <= 1.0))
        return mmi_fail(&dst->err, MM_E_RANGE, "%s: tau = %g is outside [0, 1]", fn, tau);
    if ((rc = check_pair(dst, src, fn)) != MM_OK) return rc;
    /* SB3 polyak_update: target.mul_(1 - tau) then add_(param, alpha=tau), in float32. */
    keep = (float)(1.0 - tau);
    take = (float)tau;
    d = dst->params;
    s = src->params;
    mmi_lerp(d, s, dst->n_params, keep, take); /* bitwise the loop d = d keep + take s */
    return MM_OK;
}
