/* SPDX-License-Identifier: MIT */
/* fuzz_tensor.c — libFuzzer target for tensor shapes: mm_tensor_create / wrap / reshape /
 * dim / numel / fill / copy driven by arbitrary shape words.
 *
 * Input: a sequence of records [op byte][ndim byte][ndim x 8-byte little-endian sizes].
 * Oracle: every call returns a status (no crash, leak or sanitizer report); a shape is accepted
 * exactly when it is valid (1..8 dimensions, every size >= 1, element count <= 2^40) — creation
 * is only attempted for small valid shapes, larger valid ones go through reshape and wrap
 * checks that allocate nothing — and accepted tensors report the shape they were given. */
#include "mm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ELEMS ((int64_t)1 << 40)

/* 1 if shape is what the header calls valid; *numel receives the element count. */
static int valid_shape(int32_t ndim, const int64_t *shape, int64_t *numel)
{
    int64_t n = 1;
    if (ndim < 1 || ndim > MM_TENSOR_MAX_DIMS) return 0;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 1) return 0;
        if (shape[i] > MAX_ELEMS || n > MAX_ELEMS / shape[i]) return -1; /* too large */
        n *= shape[i];
    }
    *numel = n;
    return 1;
}

static int same_shape(const mm_tensor *t, int32_t ndim, const int64_t *shape)
{
    if (mm_tensor_ndim(t) != ndim) return 0;
    for (int32_t i = 0; i < ndim; i++)
        if (mm_tensor_dim(t, i) != shape[i]) return 0;
    return 1;
}

static void check_reports(const mm_tensor *t, int32_t ndim, const int64_t *shape, int64_t n)
{
    if (mm_tensor_ndim(t) != ndim || mm_tensor_numel(t) != n) abort();
    for (int32_t i = 0; i < ndim; i++)
        if (mm_tensor_dim(t, i) != shape[i] || mm_tensor_dim(t, i - ndim) != shape[i]) abort();
    if (mm_tensor_dim(t, ndim) != MM_E_RANGE || mm_tensor_dim(t, -ndim - 1) != MM_E_RANGE) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t base_shape[1] = {64};
    float buf[64] = {0};
    mm_tensor *base = NULL, *t = NULL;
    size_t pos = 0;
    if (mm_tensor_wrap(&base, buf, 1, base_shape, NULL) != MM_OK) abort();
    while (pos + 2 <= size) {
        uint8_t op = data[pos];
        int32_t ndim = (int8_t)data[pos + 1]; /* negative and > 8 on purpose */
        int64_t shape[16] = {0}, n = 0;
        int32_t k = ndim < 0 ? 0 : ndim > 16 ? 16 : ndim;
        int v, rc;
        pos += 2;
        for (int32_t i = 0; i < k && pos + 8 <= size; i++, pos += 8)
            memcpy(&shape[i], data + pos, 8);
        v = valid_shape(ndim, shape, &n);
        switch (op % 3) {
        case 0: /* create: only small shapes really allocate */
            if (v == 1 && n > 4096) break;
            t = (mm_tensor *)&t;
            rc = mm_tensor_create(&t, ndim, shape, NULL);
            if ((rc == MM_OK) != (v == 1) || (rc != MM_OK && t != NULL)) abort();
            if (v == 0 && rc != MM_E_SHAPE) abort();
            if (v == -1 && rc != MM_E_RANGE) abort();
            if (rc == MM_OK) {
                check_reports(t, ndim, shape, n);
                if (mm_tensor_fill(t, 1.5f) != MM_OK) abort();
                rc = mm_tensor_copy(base, t); /* base has whatever shape reshape gave it */
                if ((rc == MM_OK) != same_shape(base, ndim, shape)) abort();
                if (rc != MM_OK && mm_tensor_errmsg(base)[0] == '\0') abort();
                mm_tensor_free(t);
            }
            break;
        case 1: /* reshape of a 64-element tensor: accepted iff valid with 64 elements */
            rc = mm_tensor_reshape(base, ndim, shape);
            if ((rc == MM_OK) != (v == 1 && n == 64)) abort();
            if (rc == MM_OK)
                check_reports(base, ndim, shape, 64);
            else if (mm_tensor_errmsg(base)[0] == '\0' || mm_tensor_numel(base) != 64)
                abort();
            break;
        default: /* wrap borrows: any valid shape up to the buffer's 64 floats */
            if (v == 1 && n > 64) break;
            t = (mm_tensor *)&t;
            rc = mm_tensor_wrap(&t, buf, ndim, shape, NULL);
            if ((rc == MM_OK) != (v == 1) || (rc != MM_OK && t != NULL)) abort();
            if (rc == MM_OK) check_reports(t, ndim, shape, n), mm_tensor_free(t);
            break;
        }
    }
    mm_tensor_free(base);
    return 0;
}
