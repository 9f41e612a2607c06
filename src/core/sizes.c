/* SPDX-License-Identifier: MIT */
/* sizes.c — overflow-checked size arithmetic and shape validation. */
#include "mmi.h"

int mmi_mul_size(size_t *out, size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int mmi_add_size(size_t *out, size_t a, size_t b)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

int mmi_mul_i64(int64_t *out, int64_t a, int64_t b)
{
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > INT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int64_t mmi_sz_mul(int64_t a, int64_t b)
{
    int64_t r;
    return mmi_mul_i64(&r, a, b) ? MMI_SIZE_BAD : r;
}

int64_t mmi_sz_add(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || b > INT64_MAX - a) return MMI_SIZE_BAD;
    return a + b;
}

int64_t mmi_sz_of(size_t n) { return n > (size_t)INT64_MAX ? MMI_SIZE_BAD : (int64_t)n; }

size_t mmi_sz_to(int64_t n) { return n < 0 ? SIZE_MAX : (size_t)n; }

int mmi_shape_numel(int32_t ndim, const int64_t *shape, int64_t *numel, mmi_err *e, const char *fn)
{
    int64_t n = 1;
    if (!shape) return mmi_fail(e, MM_E_INVALID_ARG, "%s: shape is NULL", fn);
    if (ndim < 1 || ndim > MM_TENSOR_MAX_DIMS)
        return mmi_fail(e, MM_E_SHAPE, "%s: ndim is %d, must be 1..%d", fn, (int)ndim,
                        MM_TENSOR_MAX_DIMS);
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return mmi_fail(e, MM_E_SHAPE, "%s: shape[%d] is %lld, must be >= 1", fn, (int)i,
                            (long long)shape[i]);
        /* Checking against the cap at every step keeps the product far from int64 overflow. */
        if (mmi_mul_i64(&n, n, shape[i]) != 0 || n > MMI_MAX_NUMEL)
            return mmi_fail(e, MM_E_RANGE, "%s: element count exceeds 2^40", fn);
    }
    *numel = n;
    return MM_OK;
}
