/* SPDX-License-Identifier: MIT */
/* loss_check.c — argument validation shared by the mm_loss compute calls. Every check writes a
 * message that names the function, the tensor and its shape, and runs before any output is
 * touched, so a refused call leaves outputs and statistics as they were. */
#include "mmi_loss.h"

#include <stdint.h>

int mmi_loss_need(mm_loss *h, const char *fn, const char *name, const mm_tensor *t, int32_t ndim,
                  const char *layout)
{
    char s[96];
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    if (ndim > 0 && t->ndim != ndim) {
        mmi_tensor_shape_str(t, s, sizeof s);
        return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s is %s but must be %d-D %s", fn, name, s,
                        (int)ndim, layout);
    }
    return MM_OK;
}

int mmi_loss_same_shape(mm_loss *h, const char *fn, const char *na, const mm_tensor *a,
                        const char *nb, const mm_tensor *b)
{
    char sa[96], sb[96];
    if (mmi_tensor_same_shape(a, b)) return MM_OK;
    mmi_tensor_shape_str(a, sa, sizeof sa);
    mmi_tensor_shape_str(b, sb, sizeof sb);
    return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s is %s but %s is %s", fn, nb, sb, na, sa);
}

int mmi_loss_finite(mm_loss *h, const char *fn, const char *name, const mm_tensor *t)
{
    if (mmi_all_finite(t->data, t->numel)) return MM_OK;
    for (int64_t i = 0; i < t->numel; i++) /* name the first bad element for the message */
        if (!(t->data[i] - t->data[i] == 0.0f))
            return mmi_fail(&h->err, MM_E_NUMERIC, "%s: %s[%lld] is %g (NaN or Inf refused)", fn,
                            name, (long long)i, (double)t->data[i]);
    return mmi_fail(&h->err, MM_E_NUMERIC, "%s: %s holds NaN or Inf", fn, name);
}

int mmi_loss_no_alias(mm_loss *h, const char *fn, const char *nout, const mm_tensor *out,
                      const char *nin, const mm_tensor *in)
{
    if (mmi_tensor_overlap(out, in))
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s shares memory with %s", fn, nout, nin);
    return MM_OK;
}

int mmi_loss_no_alias_raw(mm_loss *h, const char *fn, const char *nout, const void *out,
                          size_t n_out, const char *nin, const void *in, size_t n_in)
{
    if (out && in && mmi_overlaps(out, n_out, in, n_in))
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s shares memory with %s", fn, nout, nin);
    return MM_OK;
}

int mmi_loss_scalar_apart(mm_loss *h, const char *fn, const double *loss, const mm_tensor *g0,
                          const char *n0, const mm_tensor *g1, const char *n1)
{
    const mm_tensor *g[2] = {g0, g1};
    const char *n[2] = {n0, n1};
    for (int i = 0; loss && i < 2; i++)
        if (g[i] &&
            mmi_overlaps(loss, sizeof *loss, g[i]->data, sizeof(float) * (size_t)g[i]->numel))
            return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: loss shares memory with %s", fn, n[i]);
    return MM_OK;
}

int mmi_loss_kind_is(mm_loss *h, const char *fn, int32_t want)
{
    if (h->kind == want) return MM_OK;
    return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: the handle is %s; create one with %s", fn,
                    mmi_loss_kind_name(h->kind), mmi_loss_kind_name(want));
}

int mmi_loss_within(mm_loss *h, const char *fn, const char *name, int64_t rows, int64_t width)
{
    if (rows > h->max_batch)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: %s has %lld rows but the handle reserved max_batch %lld", fn, name,
                        (long long)rows, (long long)h->max_batch);
    if (width >= 0 && width > h->max_dim)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: %s has width %lld but the handle reserved max_dim %lld", fn, name,
                        (long long)width, (long long)h->max_dim);
    return MM_OK;
}
