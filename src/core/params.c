/* SPDX-License-Identifier: MIT */
/* params.c — the registry of run-time parameters: stable id, name and inclusive bounds.
 * Ids are never renumbered or reused; ranges per object are listed in mm.h. Each floor appends
 * its parameters here so mm_param_bounds answers for every object from one table. */
#include "mmi.h"

static const mmi_param k_params[] = {
    /* model 500-599 (mm_model_set_f64 / get_f64). Bounds are PyTorch's validity ranges
     * where it has them (betas in [0, 1), eps and decay >= 0) with generous finite tops. */
    {MM_MODEL_LR, "MM_MODEL_LR", 0.0, 1e6},
    {MM_MODEL_BETA1, "MM_MODEL_BETA1", 0.0, 0.99999999999999989},
    {MM_MODEL_BETA2, "MM_MODEL_BETA2", 0.0, 0.99999999999999989},
    {MM_MODEL_EPS, "MM_MODEL_EPS", 0.0, 1.0},
    {MM_MODEL_WEIGHT_DECAY, "MM_MODEL_WEIGHT_DECAY", 0.0, 1e6},
    {MM_MODEL_MOMENTUM, "MM_MODEL_MOMENTUM", 0.0, 1.0},
    {MM_MODEL_DAMPENING, "MM_MODEL_DAMPENING", 0.0, 1.0},
    {MM_MODEL_NESTEROV, "MM_MODEL_NESTEROV", 0.0, 1.0},
    {MM_MODEL_ALPHA, "MM_MODEL_ALPHA", 0.0, 1.0},
    {MM_MODEL_CENTERED, "MM_MODEL_CENTERED", 0.0, 1.0},
    {MM_MODEL_MAX_GRAD_NORM, "MM_MODEL_MAX_GRAD_NORM", 0.0, 1e30},
    {MM_MODEL_AMSGRAD, "MM_MODEL_AMSGRAD", 0.0, 1.0},
    /* read-only statistics: bounds are the range of values they report */
    {MM_MODEL_STAT_GRAD_NORM, "MM_MODEL_STAT_GRAD_NORM", 0.0, 1.79769313486231571e308},
    {MM_MODEL_STAT_STEPS, "MM_MODEL_STAT_STEPS", 0.0, 9.2233720368547758e18},
    {MM_MODEL_STAT_CLIPPED, "MM_MODEL_STAT_CLIPPED", 0.0, 1.0},
    /* loss 400-499 (mm_loss; read-only statistics from 450 have unbounded ranges) */
    {MM_LOSS_LOGIT_SCALE, "MM_LOSS_LOGIT_SCALE", -10.0, 10.0},
    {MM_LOSS_LOGIT_BIAS, "MM_LOSS_LOGIT_BIAS", -1000.0, 1000.0},
    {MM_LOSS_TEMP, "MM_LOSS_TEMP", 0.001, 0.5},
    {MM_LOSS_ALPHA, "MM_LOSS_ALPHA", 0.0, 1.0},
    {MM_LOSS_LABEL_SMOOTHING, "MM_LOSS_LABEL_SMOOTHING", 0.0, 1.0},
    {MM_LOSS_IGNORE_INDEX, "MM_LOSS_IGNORE_INDEX", -2147483648.0, 2147483647.0},
    {MM_LOSS_TAU, "MM_LOSS_TAU", 1e-6, 1e6},
    {MM_LOSS_KIMI_BASELINE, "MM_LOSS_KIMI_BASELINE", 0.0, 1.0},
    {MM_LOSS_NORM_EPS, "MM_LOSS_NORM_EPS", 0.0, 1.0},
    {MM_LOSS_NORM_EPS_MODE, "MM_LOSS_NORM_EPS_MODE", 0.0, 1.0},
    {MM_LOSS_CLAMP_LOGIT_SCALE, "MM_LOSS_CLAMP_LOGIT_SCALE", 0.0, 1.0},
    {MM_LOSS_GRAD_SCALE, "MM_LOSS_GRAD_SCALE", -1e6, 1e6},
    {MM_LOSS_STAT_LOSS, "MM_LOSS_STAT_LOSS", -1.7976931348623157e308, 1.7976931348623157e308},
    {MM_LOSS_STAT_DLOGIT_SCALE, "MM_LOSS_STAT_DLOGIT_SCALE", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_LOSS_STAT_DLOGIT_BIAS, "MM_LOSS_STAT_DLOGIT_BIAS", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_LOSS_STAT_DTEMP, "MM_LOSS_STAT_DTEMP", -1.7976931348623157e308, 1.7976931348623157e308},
    {MM_LOSS_STAT_LOSS_I2T, "MM_LOSS_STAT_LOSS_I2T", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_LOSS_STAT_LOSS_T2I, "MM_LOSS_STAT_LOSS_T2I", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_LOSS_STAT_VALID, "MM_LOSS_STAT_VALID", 0.0, 1.7976931348623157e308},
    {MM_LOSS_STAT_WORKSPACE_BYTES, "MM_LOSS_STAT_WORKSPACE_BYTES", 0.0, 1.7976931348623157e308},
    /* ssm 200-299 (mm_ssm_set_f64 / get_f64; CHUNK and statistics are read-only) */
    {MM_SSM_CHUNK, "MM_SSM_CHUNK", 1.0, 16777216.0},
    /* A floor above 1e3 is no step size (mamba2 draws dt in [1e-3, 0.1]) and overflowed:
     * 1e300 became +inf in float32 and every SSD output NaN (docs/SSM.md). */
    {MM_SSM_DT_MIN, "MM_SSM_DT_MIN", 0.0, 1e3},
    {MM_SSM_DT_MAX, "MM_SSM_DT_MAX", 0.0, 1e300},
    {MM_SSM_STAT_POSITION, "MM_SSM_STAT_POSITION", 0.0, 9.2233720368547758e18},
    {MM_SSM_STAT_WORKSPACE_BYTES, "MM_SSM_STAT_WORKSPACE_BYTES", 0.0, 1.7976931348623157e308},
    /* attention 100-199 (mm_attn_set_f64 / get_f64) */
    {MM_ATTN_SCALE, "MM_ATTN_SCALE", 1e-30, 1e6},
    {MM_ATTN_EPS, "MM_ATTN_EPS", 0.0, 1.0},
    {MM_ATTN_FEATURE_EPS, "MM_ATTN_FEATURE_EPS", 0.0, 1.0},
    {MM_ATTN_STAT_POSITION, "MM_ATTN_STAT_POSITION", 0.0, 9.2233720368547758e18},
    {MM_ATTN_STAT_WORKSPACE_BYTES, "MM_ATTN_STAT_WORKSPACE_BYTES", 0.0, 1.7976931348623157e308},
    /* policy 300-399 (mm_policy_set_f64 / get_f64; statistics from 350 are read-only) */
    {MM_POLICY_LR_ACTOR, "MM_POLICY_LR_ACTOR", 0.0, 10.0},
    {MM_POLICY_LR_CRITIC, "MM_POLICY_LR_CRITIC", 0.0, 10.0},
    {MM_POLICY_GAMMA, "MM_POLICY_GAMMA", 0.0, 1.0},
    {MM_POLICY_TAU, "MM_POLICY_TAU", 0.0, 1.0},
    {MM_POLICY_NOISE_SIGMA, "MM_POLICY_NOISE_SIGMA", 0.0, 10.0},
    {MM_POLICY_ENT_COEF, "MM_POLICY_ENT_COEF", 0.0, 10.0},
    {MM_POLICY_CLIP_RANGE, "MM_POLICY_CLIP_RANGE", 0.0, 10.0},
    {MM_POLICY_TARGET_KL, "MM_POLICY_TARGET_KL", 1e-8, 10.0},
    {MM_POLICY_VF_COEF, "MM_POLICY_VF_COEF", 0.0, 100.0},
    {MM_POLICY_MAX_GRAD_NORM, "MM_POLICY_MAX_GRAD_NORM", 0.0, 1e30},
    {MM_POLICY_CG_DAMPING, "MM_POLICY_CG_DAMPING", 0.0, 1e6},
    {MM_POLICY_STAT_ACTOR_LOSS, "MM_POLICY_STAT_ACTOR_LOSS", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_POLICY_STAT_CRITIC_LOSS, "MM_POLICY_STAT_CRITIC_LOSS", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_POLICY_STAT_KL, "MM_POLICY_STAT_KL", -1.7976931348623157e308, 1.7976931348623157e308},
    {MM_POLICY_STAT_ENTROPY, "MM_POLICY_STAT_ENTROPY", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_POLICY_STAT_EXPLAINED_VAR, "MM_POLICY_STAT_EXPLAINED_VAR", -1.7976931348623157e308, 1.0},
    {MM_POLICY_STAT_UPDATES, "MM_POLICY_STAT_UPDATES", 0.0, 9.2233720368547758e18},
    {MM_POLICY_STAT_STEPS, "MM_POLICY_STAT_STEPS", 0.0, 9.2233720368547758e18},
    {MM_POLICY_STAT_CLIP_FRACTION, "MM_POLICY_STAT_CLIP_FRACTION", 0.0, 1.0},
    {MM_POLICY_STAT_LS_STEPS, "MM_POLICY_STAT_LS_STEPS", -1.0, 1e6},
    {MM_POLICY_STAT_Q_MEAN, "MM_POLICY_STAT_Q_MEAN", -1.7976931348623157e308,
     1.7976931348623157e308},
    {MM_POLICY_STAT_EPOCHS, "MM_POLICY_STAT_EPOCHS", 0.0, 9.2233720368547758e18},
    {MM_POLICY_STAT_UPDATING, "MM_POLICY_STAT_UPDATING", 0.0, 1.0},
    {MM_POLICY_STAT_RETURN_STD, "MM_POLICY_STAT_RETURN_STD", 0.0, 1.7976931348623157e308},
    {MM_POLICY_STAT_ENT_COEF, "MM_POLICY_STAT_ENT_COEF", 0.0, 1.7976931348623157e308},
    {0, NULL, 0.0, 0.0} /* sentinel: id 0 is never a parameter */
};

const mmi_param *mmi_param_find(int32_t id)
{
    for (size_t i = 0; k_params[i].name; i++)
        if (k_params[i].id == id) return &k_params[i];
    return NULL;
}

int mmi_param_check(int32_t id, double v, mmi_err *e, const char *fn)
{
    const mmi_param *p = mmi_param_find(id);
    if (!p) return mmi_fail(e, MM_E_UNSUPPORTED, "%s: unknown parameter id %d", fn, (int)id);
    if (!(v >= p->lo && v <= p->hi)) /* also false for NaN */
        return mmi_fail(e, MM_E_RANGE, "%s: %s = %g is outside [%g, %g]", fn, p->name, v, p->lo,
                        p->hi);
    return MM_OK;
}

/* The handle kind owning an id, from the ranges mm.h assigns (ids are never moved). */
static const char *param_object(int32_t id)
{
    switch (id / 100) {
    case 1:
        return "attn";
    case 2:
        return "ssm";
    case 3:
        return "policy";
    case 4:
        return "loss";
    case 5:
        return "model";
    default:
        return "experimental";
    }
}

MM_API int32_t mm_param_count(void)
{
    return (int32_t)(sizeof k_params / sizeof k_params[0] - 1); /* without the sentinel */
}

MM_API int mm_param_info(int32_t index, int32_t *id, const char **name, const char **object,
                         double *lo, double *hi)
{
    if (index < 0 || index >= mm_param_count()) return MM_E_RANGE;
    const mmi_param *p = &k_params[index];
    if (id) *id = p->id;
    if (name) *name = p->name;
    if (object) *object = param_object(p->id);
    if (lo) *lo = p->lo;
    if (hi) *hi = p->hi;
    return MM_OK;
}

MM_API int mm_param_bounds(int32_t id, double *lo, double *hi)
{
    const mmi_param *p = mmi_param_find(id);
    if (!p) return MM_E_UNSUPPORTED;
    if (lo) *lo = p->lo;
    if (hi) *hi = p->hi;
    return MM_OK;
}
