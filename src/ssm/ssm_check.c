/* ssm_check.c — argument checks shared by the mm_ssm calls: tensor shapes against what the
 * kind expects (messages name both shapes), unused inputs, and the reservation. */
#include "mmi_ssm.h"

#include <stdio.h>
#include <string.h>

static void shape_str(char *buf, size_t n, int32_t ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int32_t i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

int mmi_ssm_want(mm_ssm *h, const char *fn, const char *name, const mm_tensor *t, int32_t ndim,
                 const int64_t *shape)
{
    char got[96], want[96];
    int same;
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    same = t->ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return MM_OK;
    mmi_tensor_shape_str(t, got, sizeof got);
    shape_str(want, sizeof want, ndim, shape);
    return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s is %s but expected %s", fn, name, got, want);
}

int mmi_ssm_unused(mm_ssm *h, const char *fn, const char *name, const void *t)
{
    static const char *const kinds[] = {"", "MM_SSM_SELECTIVE", "MM_SSM_SSD", "MM_SSM_S4D",
                                        "MM_SSM_S4", "MM_SSM_LRU"};
    if (!t) return MM_OK;
    return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is not an input of %s (pass NULL)", fn,
                    name, kinds[h->kind]);
}

int mmi_ssm_check_bl(mm_ssm *h, const char *fn, int64_t batch, int64_t len)
{
    if (batch > h->max_batch)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: batch %lld exceeds max_batch %lld", fn,
                        (long long)batch, (long long)h->max_batch);
    if (len > h->max_seq)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: length %lld exceeds max_seq %lld", fn,
                        (long long)len, (long long)h->max_seq);
    return MM_OK;
}

int mmi_ssm_grad_like(mm_ssm *h, const char *fn, const char *name, const mm_tensor *g,
                      const mm_tensor *in)
{
    if (!g) return MM_OK;
    if (!in)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s requested but its input is NULL", fn,
                        name);
    return mmi_ssm_want(h, fn, name, g, in->ndim, in->shape);
}
