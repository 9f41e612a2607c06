/*
 * mmi_kernels.h — pure compute kernels on raw float buffers. No handles, no allocation, no
 * error text: callers (operators, models, the public mm_sgemm) validate arguments and provide
 * workspace; kernels assume valid input.
 */
#ifndef MMI_KERNELS_H
#define MMI_KERNELS_H

#include "../../core/mmi.h"

/* ---- GEMM --------------------------------------------------------------------------------- */
/* Bytes of workspace mmi_gemm needs for a pool of n_threads (>= 1) threads; a build constant per
 * thread count, 64-byte multiple. */
size_t mmi_gemm_ws_size(int32_t n_threads);

/* Row-major C = alpha*op(A)*op(B) + beta*C (see mm_sgemm in mm.h for the layout rules).
 * Preconditions (checked by callers): sizes >= 0, leading dimensions valid, C not overlapping A
 * or B, ws of mmi_gemm_ws_size(mmi_pool_size(pool)) bytes, 64-byte aligned. beta == 0 writes C
 * without reading it; ws may be NULL when mmi_gemm_needs_ws says so. Dispatches to OpenBLAS
 * when built with it, else the native kernel, whose results are bitwise identical for every
 * pool size. */
void mmi_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              void *ws, mmi_pool *pool);

/* 1 if mmi_gemm on this shape and these arguments uses its workspace (the packed path); when 0
 * its ws may be NULL. Lets mm_sgemm allocate only when packing is needed. (mmi_gemm_native and
 * mmi_gemm_portable agree with it except in OpenBLAS builds, where mmi_gemm never packs.) */
int mmi_gemm_needs_ws(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
                      int64_t ldb, int64_t ldc);

/* The native kernel only (portable blocked C or AVX2/FMA), never OpenBLAS: what benchmarks and
 * tests compare against the peer. Same contract as mmi_gemm. */
void mmi_gemm_native(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc, void *ws, mmi_pool *pool);

/* The portable C path alone (tests compare it with the AVX2 path). Same contract. */
void mmi_gemm_portable(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc, void *ws, mmi_pool *pool);

#endif /* MMI_KERNELS_H */
