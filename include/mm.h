/*
 * mm.h — the one public header of libmm.
 *
 * libmm is an embeddable C library of machine-learning kernels: tensors, GEMM, models with
 * backward and forward-mode derivatives, optimizers, and (in later releases) image-text losses,
 * efficient attention, state-space models and reinforcement-learning agents.
 *
 * The header is C99 and C++ compatible and uses only <stddef.h> and <stdint.h>.
 *
 * ---------------------------------------------------------------------------------------------
 * Thread-safety contract
 *  1. libmm has no mutable global state; every mm_* function is reentrant.
 *  2. A mutable handle (mm_tensor, mm_model during training, and every later operator handle) is
 *     used by one thread at a time; the caller does any locking. Different handles may be used
 *     from different threads in parallel.
 *  3. A finalized mm_model that is only read through mm_model_infer may be shared by many threads.
 *  4. libmm starts no threads unless an options struct sets n_threads > 1. With OpenBLAS enabled
 *     (make WITH_OPENBLAS=1), OpenBLAS runs its own global pool; engines should use a
 *     single-threaded OpenBLAS.
 *  5. Callbacks (allocator, read callbacks) run on the calling thread and must be thread-safe if
 *     handles are used from different threads. mm_status_str, mm_status_name, mm_version_*,
 *     mm_build_info and mm_param_bounds are always safe.
 *
 * Error contract
 *  Every fallible function returns int: MM_OK (0) or a negative MM_E_* code whose number never
 *  changes. Outputs go through pointer parameters and are untouched (or set to NULL for handle
 *  outputs) on failure. Detail text is per handle (mm_<object>_errmsg); create and load functions
 *  write it into the optional err_buf of their options. Nothing aborts, exits or prints.
 *
 * Memory contract
 *  Every allocation goes through the handle's mm_allocator (NULL: aligned malloc/free), 64-byte
 *  aligned. Each function's comment says what it allocates ("Allocates:").
 * ---------------------------------------------------------------------------------------------
 */
#ifndef MM_H_6A1F
#define MM_H_6A1F

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- visibility and attributes -------------------------------------------------------------- */
#if defined(MM_BUILDING_DLL) && defined(MM_USING_DLL)
#error "define at most one of MM_BUILDING_DLL and MM_USING_DLL"
#endif
#if defined(_WIN32) && defined(MM_BUILDING_DLL)
#define MM_API __declspec(dllexport)
#elif defined(_WIN32) && defined(MM_USING_DLL)
#define MM_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define MM_API __attribute__((visibility("default")))
#else
#define MM_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MM_NODISCARD __attribute__((warn_unused_result))
#else
#define MM_NODISCARD
#endif

#if defined(MM_DISABLE_DEPRECATE_WARNINGS)
#define MM_DEPRECATED(msg)
#elif defined(__GNUC__) || defined(__clang__)
#define MM_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define MM_DEPRECATED(msg)
#endif

/* ---- version -------------------------------------------------------------------------------- */
#define MM_VERSION_MAJOR 0
#define MM_VERSION_MINOR 1
#define MM_VERSION_PATCH 0
#define MM_VERSION_NUMBER (MM_VERSION_MAJOR * 10000 + MM_VERSION_MINOR * 100 + MM_VERSION_PATCH)
#define MM_VERSION_STRING "0.1.0"
/* The soname major (libmm.so.MM_ABI_VERSION); 0 means the ABI is not frozen yet. */
#define MM_ABI_VERSION 0

/* Returns MM_VERSION_NUMBER of the library actually linked. Since: 0.1 */
MM_API uint32_t mm_version_number(void);
/* Returns MM_VERSION_STRING of the library actually linked (static text). Since: 0.1 */
MM_API const char *mm_version_string(void);
/* Returns MM_ABI_VERSION of the library actually linked. Since: 0.1 */
MM_API uint32_t mm_abi_version(void);
/* Returns static text describing compile-time features, e.g.
 * "simd=avx2 blas=none threads=pthread" (simd names the best path this CPU runs). Since: 0.1 */
MM_API const char *mm_build_info(void);

/* ---- status codes (numbers never change, never reused) -------------------------------------- */
enum {
    MM_OK = 0,
    MM_E_INVALID_ARG = -1,       /* NULL where a value is required, bad enum value */
    MM_E_NOMEM = -2,             /* the allocator returned NULL */
    MM_E_SHAPE = -3,             /* tensor shapes do not match what the call needs */
    MM_E_DTYPE = -4,             /* data type not supported */
    MM_E_RANGE = -5,             /* value beyond its bounds or beyond the reserved sizes */
    MM_E_STATE = -6,             /* wrong lifecycle stage, or handle poisoned by an internal error */
    MM_E_UNSUPPORTED = -7,       /* unknown parameter id, or feature not compiled in */
    MM_E_FORMAT = -20,           /* malformed file or buffer */
    MM_E_VERSION = -21,          /* file or options struct newer than this library */
    MM_E_IO = -22,               /* read, write, fsync or rename failed */
    MM_E_NUMERIC = -30,          /* NaN or Inf where the operation refuses them */
    MM_E_BUFFER_TOO_SMALL = -31, /* output buffer too small; the needed size was reported */
    MM_E_INTERNAL = -99          /* a broken invariant inside libmm (a bug: please report) */
};

/* Returns a static, human-readable description of a status code; never NULL (unknown codes give
 * "unknown status"). Allocates: nothing. Thread-safety: always safe. Since: 0.1 */
MM_API const char *mm_status_str(int status);
/* Returns the identifier of a status code ("MM_E_SHAPE"), or "MM_E_UNKNOWN"; never NULL.
 * Allocates: nothing. Thread-safety: always safe. Since: 0.1 */
MM_API const char *mm_status_name(int status);

/* ---- allocator ------------------------------------------------------------------------------ */
/* A host allocator, passed by pointer in options and copied into the handle that uses it (and
 * inherited by the handles it creates). Fields are only ever appended.
 *   alloc_fn(ud, size, align): return size bytes aligned to align (a power of two, 64 in practice)
 *                              or NULL. size is never 0.
 *   free_fn(ud, ptr, size):    release ptr, with the size it was allocated with. ptr is never NULL.
 * Both must be non-NULL. A NULL allocator pointer in options means aligned malloc/free.
 * struct_size must be sizeof(mm_allocator) as the caller compiled it. */
typedef struct mm_allocator {
    uint32_t struct_size;
    uint32_t reserved0; /* must be 0 */
    void *(*alloc_fn)(void *ud, size_t size, size_t align);
    void (*free_fn)(void *ud, void *ptr, size_t size);
    void *ud;
} mm_allocator;

/* ---- run-time parameters -------------------------------------------------------------------- */
/* Run-time tunables are set by stable integer id with typed setters (mm_<object>_set_f64).
 * Id ranges: attention 100-199, ssm 200-299, policy 300-399, loss 400-499, model 500-599;
 * ids >= 9000 are experimental. Every id is also readable with the matching getter.
 *
 * mm_param_bounds: writes the inclusive bounds of parameter id into *lo and *hi (either may be
 * NULL). Returns MM_OK, or MM_E_UNSUPPORTED for an unknown id. Setters reject values outside the
 * bounds with MM_E_RANGE and leave the value unchanged. Allocates: nothing. Thread-safety: always
 * safe. Since: 0.1 */
MM_API MM_NODISCARD int mm_param_bounds(int32_t id, double *lo, double *hi);

/* ---- options-struct convention ---------------------------------------------------------------
 * Construction settings come in mm_<object>_opts structs whose first field is uint32_t
 * struct_size, filled by mm_<object>_opts_init() with the published defaults. Fields are only
 * ever appended. The library reads the fields within struct_size; a smaller struct (an older
 * caller) keeps the defaults for the rest; a larger one (a newer caller) is accepted only if the
 * unknown tail is all zero, otherwise create returns MM_E_VERSION. */

/* ---- mm_tensor ------------------------------------------------------------------------------ */
/* A float32 row-major tensor of up to MM_TENSOR_MAX_DIMS dimensions, owning its buffer
 * (mm_tensor_create) or borrowing the caller's (mm_tensor_wrap). Every dimension is >= 1 and
 * the element count is at most 2^40. */
#define MM_TENSOR_MAX_DIMS 8
typedef struct mm_tensor mm_tensor;

/* Creates a zero-filled tensor of the given shape.
 *   out:   receives the handle; set to NULL on failure.
 *   ndim:  1..MM_TENSOR_MAX_DIMS.
 *   shape: ndim sizes, each >= 1 (copied).
 *   alloc: allocator for the handle and its data, copied; NULL = aligned malloc.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL out/shape, bad allocator), MM_E_SHAPE (bad ndim or a
 * size < 1), MM_E_RANGE (element count too large), MM_E_NOMEM.
 * Allocates: the handle and numel*4 bytes, 64-byte aligned. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_create(mm_tensor **out, int32_t ndim, const int64_t *shape,
                                         const mm_allocator *alloc);

/* Creates a tensor that borrows data (zero-copy): libmm reads and writes data but never frees
 * it; the caller keeps it alive until mm_tensor_free. data must hold numel floats and be aligned
 * to 4 bytes. Arguments and returns as mm_tensor_create.
 * Allocates: the handle only. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_wrap(mm_tensor **out, float *data, int32_t ndim,
                                       const int64_t *shape, const mm_allocator *alloc);

/* Frees the handle and, for created tensors, the data. NULL is a no-op. Since: 0.1 */
MM_API void mm_tensor_free(mm_tensor *t);

/* Returns the number of dimensions, or MM_E_INVALID_ARG for NULL. Since: 0.1 */
MM_API int32_t mm_tensor_ndim(const mm_tensor *t);

/* Returns the size of dimension axis (negative axis counts from the end: -1 is the last), or a
 * negative status: MM_E_INVALID_ARG for NULL, MM_E_RANGE for an axis outside [-ndim, ndim).
 * Since: 0.1 */
MM_API int64_t mm_tensor_dim(const mm_tensor *t, int32_t axis);

/* Returns the element count, or MM_E_INVALID_ARG for NULL. Since: 0.1 */
MM_API int64_t mm_tensor_numel(const mm_tensor *t);

/* Returns the data pointer (row-major floats), or NULL for NULL. Since: 0.1 */
MM_API float *mm_tensor_data(const mm_tensor *t);

/* Changes the shape without moving data; the element count must stay the same.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_SHAPE (bad ndim, size < 1 or other element count; the
 * tensor is unchanged). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_reshape(mm_tensor *t, int32_t ndim, const int64_t *shape);

/* Sets every element to v. Returns MM_OK or MM_E_INVALID_ARG. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_fill(mm_tensor *t, float v);

/* Copies src's elements into dst; both must have the same shape (they may not overlap unless
 * they are the same tensor). Returns MM_OK, MM_E_INVALID_ARG, MM_E_SHAPE (message on dst).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_copy(mm_tensor *dst, const mm_tensor *src);

/* Returns the detail text of the last failure on t ("" if none; "invalid handle" for NULL).
 * Valid until the next call on t. Since: 0.1 */
MM_API const char *mm_tensor_errmsg(const mm_tensor *t);

/* ---- GEMM ----------------------------------------------------------------------------------- */
enum { MM_NO_TRANS = 0, MM_TRANS = 1 };

/* Bytes of workspace mm_sgemm needs to run without allocating (a constant of the build).
 * Since: 0.1 */
MM_API size_t mm_sgemm_workspace_size(void);

/* Single-precision GEMM, row-major: C = alpha * op(A) * op(B) + beta * C, where op(X) is X or
 * its transpose, op(A) is m x k, op(B) is k x n and C is m x n.
 *   trans_a, trans_b: MM_NO_TRANS or MM_TRANS.
 *   a, lda: A is stored m x k (lda >= k) without transpose, k x m (lda >= m) with transpose.
 *   b, ldb: B is stored k x n (ldb >= n) without transpose, n x k (ldb >= k) with transpose.
 *   c, ldc: m x n, ldc >= n. C must not overlap A or B (checked only for identical pointers).
 *   beta == 0 overwrites C without reading it (NaN in C does not propagate), as BLAS does.
 *   m, n or k == 0 is valid (with k == 0, C = beta * C).
 *   workspace: NULL, or at least mm_sgemm_workspace_size() bytes aligned to 64 (workspace_size
 *   is its size in bytes).
 * Uses the AVX2/FMA path when the CPU has it, OpenBLAS when built WITH_OPENBLAS=1.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL pointers with non-empty sizes, bad trans, C aliasing A
 * or B, misaligned or small workspace), MM_E_SHAPE (negative sizes or leading dimensions too
 * small), MM_E_RANGE (sizes whose products overflow), MM_E_NOMEM.
 * Allocates: packing buffers with malloc when workspace is NULL and the shape needs packing;
 * nothing otherwise. Thread-safety: always safe (single-threaded). Since: 0.1 */
MM_API MM_NODISCARD int mm_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                                 int64_t k, float alpha, const float *a, int64_t lda,
                                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                                 void *workspace, size_t workspace_size);

#ifdef __cplusplus
}
#endif
#endif /* MM_H_6A1F */
