/* SPDX-License-Identifier: MIT */
/* mmi_tensor.h — the mm_tensor struct, visible to libmm's floors (never to users). */
#ifndef MMI_TENSOR_H
#define MMI_TENSOR_H

#include "../core/mmi.h"

struct mm_tensor {
    mmi_alloc alloc;
    float *data;
    int64_t numel;
    int64_t shape[MM_TENSOR_MAX_DIMS];
    int32_t ndim;
    int32_t owned; /* 1: data allocated by create and freed with the handle */
    mmi_err err;
};

/* 1 if a and b have the same ndim and sizes. */
int mmi_tensor_same_shape(const mm_tensor *a, const mm_tensor *b);
/* 1 if a and b (either may be NULL: no) share memory anywhere in their data. */
int mmi_tensor_overlap(const mm_tensor *a, const mm_tensor *b);
/* MM_OK, or MM_E_INVALID_ARG into e ("<fn>: <a> shares memory with <b>") for the first pair
 * i > j of the n tensors t (NULL: absent) that share memory, where i is an output
 * (i >= first_out); inputs may share memory with one another. */
int mmi_tensor_apart(mmi_err *e, const char *fn, int n, const mm_tensor *const *t,
                     const char *const *name, int first_out);
/* Writes "[2,4,128,64]" (or "NULL") into buf of size n, truncating. */
void mmi_tensor_shape_str(const mm_tensor *t, char *buf, size_t n);

#endif
