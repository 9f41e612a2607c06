/* params.c — the registry of run-time parameters: stable id, name and inclusive bounds.
 * Ids are never renumbered or reused; ranges per object are listed in mm.h. Each floor appends
 * its parameters here so mm_param_bounds answers for every object from one table. */
#include "mmi.h"


static const mmi_param k_params[] = {
    /* model 500-599: added with the mm_model floor */
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

MM_API int mm_param_bounds(int32_t id, double *lo, double *hi)
{
    const mmi_param *p = mmi_param_find(id);
    if (!p) return MM_E_UNSUPPORTED;
    if (lo) *lo = p->lo;
    if (hi) *hi = p->hi;
    return MM_OK;
}
