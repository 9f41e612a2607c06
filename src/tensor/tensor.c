/* SPDX-License-Identifier: MIT */
/* tensor.c — mm_tensor: a float32 row-major buffer with a shape of up to 8 dimensions, owning
 * its data (create) or borrowing the caller's (wrap, zero-copy). */
#include "../core/mmi.h"
#include "mmi_tensor.h"

#include <stdio.h>
#include <string.h>

static int tensor_new(mm_tensor **out, float *data, int32_t ndim, const int64_t *shape,
                      const mm_allocator *alloc, const char *fn)
{
    mmi_alloc a;
    mm_tensor *t;
    int64_t numel = 0;
    int rc;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    /* No handle exists yet, so the detail text has nowhere to go: codes only. */
    if ((rc = mmi_alloc_init(&a, alloc, NULL)) != MM_OK) return rc;
    if ((rc = mmi_shape_numel(ndim, shape, &numel, NULL, fn)) != MM_OK) return rc;
    t = (mm_tensor *)mmi_calloc(&a, sizeof *t);
    if (!t) return MM_E_NOMEM;
    t->alloc = a;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = numel;
    if (data) {
        t->data = data;
        t->owned = 0;
    } else {
        t->data = (float *)mmi_calloc(&a, (size_t)numel * sizeof(float));
        if (!t->data) {
            mmi_free(&a, t, sizeof *t);
            return MM_E_NOMEM;
        }
        t->owned = 1;
    }
    *out = t;
    return MM_OK;
}

MM_API int mm_tensor_create(mm_tensor **out, int32_t ndim, const int64_t *shape,
                            const mm_allocator *alloc)
{
    return tensor_new(out, NULL, ndim, shape, alloc, "mm_tensor_create");
}

MM_API int mm_tensor_wrap(mm_tensor **out, float *data, int32_t ndim, const int64_t *shape,
                          const mm_allocator *alloc)
{
    if (!data) {
        if (out) *out = NULL;
        return MM_E_INVALID_ARG;
    }
    if (((uintptr_t)data & 3u) != 0) {
        if (out) *out = NULL;
        return MM_E_INVALID_ARG;
    }
    return tensor_new(out, data, ndim, shape, alloc, "mm_tensor_wrap");
}

MM_API void mm_tensor_free(mm_tensor *t)
{
    mmi_alloc a;
    if (!t) return;
    a = t->alloc;
    if (t->owned) mmi_free(&a, t->data, (size_t)t->numel * sizeof(float));
    mmi_free(&a, t, sizeof *t);
}

MM_API int32_t mm_tensor_ndim(const mm_tensor *t) { return t ? t->ndim : MM_E_INVALID_ARG; }

MM_API int64_t mm_tensor_dim(const mm_tensor *t, int32_t axis)
{
    if (!t) return MM_E_INVALID_ARG;
    if (axis < -t->ndim || axis >= t->ndim) return MM_E_RANGE;
    return t->shape[axis < 0 ? axis + t->ndim : axis];
}

MM_API int64_t mm_tensor_numel(const mm_tensor *t) { return t ? t->numel : MM_E_INVALID_ARG; }

MM_API float *mm_tensor_data(const mm_tensor *t) { return t ? t->data : NULL; }

MM_API int mm_tensor_reshape(mm_tensor *t, int32_t ndim, const int64_t *shape)
{
    int64_t numel = 0;
    int rc;
    if (!t) return MM_E_INVALID_ARG;
    rc = mmi_shape_numel(ndim, shape, &numel, &t->err, "mm_tensor_reshape");
    if (rc != MM_OK) return rc;
    if (numel != t->numel)
        return mmi_fail(&t->err, MM_E_SHAPE,
                        "mm_tensor_reshape: new shape has %lld elements, the tensor has %lld",
                        (long long)numel, (long long)t->numel);
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    return MM_OK;
}

MM_API int mm_tensor_fill(mm_tensor *t, float v)
{
    if (!t) return MM_E_INVALID_ARG;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
    return MM_OK;
}

MM_API int mm_tensor_copy(mm_tensor *dst, const mm_tensor *src)
{
    char a[96], b[96];
    if (!dst) return MM_E_INVALID_ARG;
    if (!src) return mmi_fail(&dst->err, MM_E_INVALID_ARG, "mm_tensor_copy: src is NULL");
    if (!mmi_tensor_same_shape(dst, src)) {
        mmi_tensor_shape_str(dst, a, sizeof a);
        mmi_tensor_shape_str(src, b, sizeof b);
        return mmi_fail(&dst->err, MM_E_SHAPE, "mm_tensor_copy: dst is %s but src is %s", a, b);
    }
    if (dst->data != src->data) memmove(dst->data, src->data, (size_t)src->numel * sizeof(float));
    return MM_OK;
}

MM_API const char *mm_tensor_errmsg(const mm_tensor *t)
{
    return t ? t->err.msg : "invalid handle";
}

/* ---- internal helpers for the floors above ------------------------------------------------ */
int mmi_tensor_same_shape(const mm_tensor *a, const mm_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

int mmi_tensor_overlap(const mm_tensor *a, const mm_tensor *b)
{
    return a && b &&
           mmi_overlaps(a->data, sizeof(float) * (size_t)a->numel, b->data,
                        sizeof(float) * (size_t)b->numel);
}

int mmi_tensor_apart(mmi_err *e, const char *fn, int n, const mm_tensor *const *t,
                     const char *const *name, int first_out)
{
    for (int i = first_out; i < n; i++)
        for (int j = 0; j < i; j++)
            if (mmi_tensor_overlap(t[i], t[j]))
                return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s shares memory with %s", fn, name[i],
                                name[j]);
    return MM_OK;
}

void mmi_tensor_shape_str(const mm_tensor *t, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0) return;
    buf[0] = '\0';
    if (!t) {
        snprintf(buf, n, "NULL");
        return;
    }
    for (int32_t i = 0; i < t->ndim && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%lld", i ? "," : "[", (long long)t->shape[i]);
        if (w < 0) return;
        used += (size_t)w;
    }
    if (used < n) snprintf(buf + used, n - used, "]");
}
