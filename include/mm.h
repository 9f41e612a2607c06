/* SPDX-License-Identifier: MIT */
/*
 * mm.h — the one public header of libmm.
 *
 * libmm is an embeddable C library of machine-learning kernels behind opaque handles: tensors
 * (mm_tensor), GEMM, models with backward and forward-mode derivatives and PyTorch-equivalent
 * optimizers (mm_model, saved and loaded as safetensors), image-text and policy losses
 * (mm_loss), efficient attention (mm_attn), state-space models (mm_ssm), reinforcement-learning
 * agents (mm_policy) and data-parallel training through host callbacks (mm_comm).
 *
 * The header is C99 and C++ compatible and uses only <stddef.h> and <stdint.h>.
 *
 * ---------------------------------------------------------------------------------------------
 * Thread-safety contract
 *  1. libmm has no mutable global state; every mm_* function is reentrant.
 *  2. A mutable handle (mm_tensor, mm_model during training, mm_loss, mm_attn, mm_ssm,
 *     mm_policy, mm_comm) is used by one thread at a time; the caller does any locking.
 *     Different handles may be used from different threads in parallel.
 *  3. A finalized mm_model that is only read through mm_model_infer may be shared by many threads.
 *  4. libmm starts no threads unless an options struct sets n_threads > 1. With OpenBLAS enabled
 *     (make WITH_OPENBLAS=1), OpenBLAS runs its own global pool; engines should use a
 *     single-threaded OpenBLAS.
 *  5. Callbacks (allocator, read callbacks, communicator callbacks) run on the calling thread
 *     and must be thread-safe if handles are used from different threads. mm_status_str,
 *     mm_status_name, mm_version_*, mm_build_info and mm_param_bounds are always safe.
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
 *
 * API conventions
 *  Value or status: a function returns its result directly only when it cannot fail except on
 *  a NULL handle and the result is a count, size or index (>= 0), so a negative value is the
 *  status (mm_tensor_ndim/dim/numel, mm_comm_rank/size); or when it cannot fail at all (version,
 *  status and error text, mm_sgemm_workspace_size). Every other function returns an int
 *  status and writes its results through out-parameters, untouched on failure (handles: NULL).
 *  Const: a getter that changes nothing a caller can observe takes a const handle (counts,
 *  sizes, mm_*_get_f64, mm_attn_get_projection, errmsg); it may still record its failure text
 *  in the handle, so the one-thread-at-a-time rule of a mutable handle applies to it too.
 *  Calls that hand out writable views (mm_model_params/grads, mm_ssm_state) or do work (save,
 *  forward, ...) take a mutable handle. mm_tensor_data returns a writable pointer even from a
 *  const tensor (the handle is const, its elements are not); 0.1 keeps that signature, as
 *  changing a return type breaks C++ callers.
 *  MM_NODISCARD marks every status a caller must check. The initialisers whose only failure is
 *  a NULL pointer (mm_model_opts_init, mm_ssm_inputs_init, mm_ssm_grads_init) do not carry it:
 *  given the address of a struct they cannot fail. The kind-taking ones (mm_loss_, mm_ssm_,
 *  mm_attn_, mm_policy_opts_init) keep it: an unknown kind (from a configuration file, say)
 *  leaves the struct untouched or holding another kind's defaults, which create must not be
 *  given. (An attribute only: the symbols and the ABI are the same.)
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
/* One space between name and number: build scripts read these lines (kept so by clang-format
 * off). */
/* clang-format off */
#define MM_VERSION_MAJOR 0
#define MM_VERSION_MINOR 1
#define MM_VERSION_PATCH 0
#define MM_VERSION_NUMBER (MM_VERSION_MAJOR * 10000 + MM_VERSION_MINOR * 100 + MM_VERSION_PATCH)
#define MM_VERSION_STRING "0.1.0"
/* The soname major (libmm.so.MM_ABI_VERSION); 0 means the ABI is not frozen yet. */
#define MM_ABI_VERSION 0
/* clang-format on */

/* Returns MM_VERSION_NUMBER of the library actually linked. Allocates: nothing. Since: 0.1 */
MM_API uint32_t mm_version_number(void);
/* Returns MM_VERSION_STRING of the library actually linked (static text). Allocates: nothing.
 * Since: 0.1 */
MM_API const char *mm_version_string(void);
/* Returns MM_ABI_VERSION of the library actually linked. Allocates: nothing. Since: 0.1 */
MM_API uint32_t mm_abi_version(void);
/* Returns static text describing compile-time features, e.g.
 * "simd=avx2 blas=none threads=pthread" (simd names the best path this CPU runs).
 * Allocates: nothing. Since: 0.1 */
MM_API const char *mm_build_info(void);

/* ---- status codes (numbers never change, never reused) -------------------------------------- */
enum {
    MM_OK = 0,
    MM_E_INVALID_ARG = -1, /* NULL where a value is required, bad enum value */
    MM_E_NOMEM = -2,       /* the allocator returned NULL */
    MM_E_SHAPE = -3,       /* tensor shapes do not match what the call needs */
    MM_E_DTYPE = -4,       /* data type not supported */
    MM_E_RANGE = -5,       /* value beyond its bounds or beyond the reserved sizes */
    MM_E_STATE = -6,       /* wrong lifecycle stage, or handle poisoned by an internal error */
    MM_E_UNSUPPORTED = -7, /* unknown parameter id, or feature not compiled in */
    MM_E_FORMAT = -20,     /* malformed file or buffer */
    MM_E_VERSION = -21,    /* file or options struct newer than this library */
    MM_E_IO = -22,         /* read, write, fsync or rename failed */
    MM_E_NUMERIC = -30,    /* NaN or Inf where the operation refuses them */
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

/* Number of run-time parameters (and read-only statistics) of every object, for bindings and
 * tools that enumerate them with mm_param_info instead of copying ids from this header.
 * Allocates: nothing. Thread-safety: always safe. Since: 0.2 */
MM_API int32_t mm_param_count(void);

/* Describes the parameter at index (0 <= index < mm_param_count(); the order is unspecified but
 * fixed for a given library build):
 *   id:     its id (MM_MODEL_LR = 500, ...), as mm_<object>_set_f64 / get_f64 take it.
 *   name:   its identifier in this header ("MM_MODEL_LR"); static text, never freed.
 *   object: the handle kind it belongs to: "attn", "ssm", "policy", "loss" or "model"
 *           ("experimental" for ids >= 9000); static text.
 *   lo, hi: its inclusive bounds, as mm_param_bounds gives them.
 * Any output may be NULL. Returns MM_OK, or MM_E_RANGE for an index outside [0, count) (outputs
 * untouched). Allocates: nothing. Thread-safety: always safe. Since: 0.2 */
MM_API MM_NODISCARD int mm_param_info(int32_t index, int32_t *id, const char **name,
                                      const char **object, double *lo, double *hi);

/* Number of the other named integer constants of this header: status codes, kinds (MM_ACT_*,
 * MM_OPT_*, MM_LOSS_CLIP, MM_ATTN_SOFTMAX, MM_SSM_SELECTIVE, MM_ALGO_*, ...) and flags; together
 * with mm_param_count it covers every enumerator of mm.h. Allocates: nothing. Thread-safety:
 * always safe. Since: 0.2 */
MM_API int32_t mm_enum_count(void);

/* Describes the constant at index (0 <= index < mm_enum_count(), fixed order): its identifier
 * in this header (*name, static text, e.g. "MM_ACT_TANH") and its value (*value). Either output
 * may be NULL. Returns MM_OK, or MM_E_RANGE for an index outside [0, count) (outputs untouched).
 * Allocates: nothing. Thread-safety: always safe. Since: 0.2 */
MM_API MM_NODISCARD int mm_enum_info(int32_t index, const char **name, int32_t *value);

/* ---- options-struct convention ---------------------------------------------------------------
 * Construction settings come in mm_<object>_opts structs whose first field is uint32_t
 * struct_size, filled by mm_<object>_opts_init() with the published defaults. Fields are only
 * ever appended. The library reads the fields within struct_size; a smaller struct (an older
 * caller) keeps the defaults for the rest; a larger one (a newer caller) is accepted only if the
 * unknown tail is all zero, otherwise create returns MM_E_VERSION. A struct_size below 8 or
 * above 4096 (an uninitialised struct) is refused with MM_E_INVALID_ARG before anything past
 * the first 4 bytes is read; its err_buf is not written either. */

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

/* Frees the handle and, for created tensors, the data. NULL is a no-op. Allocates: nothing.
 * Since: 0.1 */
MM_API void mm_tensor_free(mm_tensor *t);

/* Returns the number of dimensions, or MM_E_INVALID_ARG for NULL. Allocates: nothing. Since: 0.1 */
MM_API int32_t mm_tensor_ndim(const mm_tensor *t);

/* Returns the size of dimension axis (negative axis counts from the end: -1 is the last), or a
 * negative status: MM_E_INVALID_ARG for NULL, MM_E_RANGE for an axis outside [-ndim, ndim).
 * Allocates: nothing. Since: 0.1 */
MM_API int64_t mm_tensor_dim(const mm_tensor *t, int32_t axis);

/* Returns the element count, or MM_E_INVALID_ARG for NULL. Allocates: nothing. Since: 0.1 */
MM_API int64_t mm_tensor_numel(const mm_tensor *t);

/* Returns the data pointer (row-major floats), or NULL for NULL. Allocates: nothing. Since: 0.1 */
MM_API float *mm_tensor_data(const mm_tensor *t);

/* Changes the shape without moving data; the element count must stay the same.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_SHAPE (bad ndim, size < 1 or other element count; the
 * tensor is unchanged). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_reshape(mm_tensor *t, int32_t ndim, const int64_t *shape);

/* Sets every element to v. Returns MM_OK or MM_E_INVALID_ARG. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_fill(mm_tensor *t, float v);

/* Copies src's elements into dst; both must have the same shape. They may overlap, in any way
 * (since 0.2 documented and tested: the copy is made as if through a temporary, memmove).
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_SHAPE (message on dst).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_tensor_copy(mm_tensor *dst, const mm_tensor *src);

/* Returns the detail text of the last failure on t ("" if none; "invalid handle" for NULL).
 * Valid until the next call on t. Allocates: nothing. Since: 0.1 */
MM_API const char *mm_tensor_errmsg(const mm_tensor *t);

/* ---- GEMM ----------------------------------------------------------------------------------- */
enum { MM_NO_TRANS = 0, MM_TRANS = 1 };

/* Bytes of workspace mm_sgemm needs to run without allocating (a constant of the build).
 * Allocates: nothing. Since: 0.1 */
MM_API size_t mm_sgemm_workspace_size(void);

/* Single-precision GEMM, row-major: C = alpha * op(A) * op(B) + beta * C, where op(X) is X or
 * its transpose, op(A) is m x k, op(B) is k x n and C is m x n.
 *   trans_a, trans_b: MM_NO_TRANS or MM_TRANS.
 *   a, lda: A is stored m x k (lda >= k) without transpose, k x m (lda >= m) with transpose.
 *   b, ldb: B is stored k x n (ldb >= n) without transpose, n x k (ldb >= k) with transpose.
 *   c, ldc: m x n, ldc >= n. C must share no element with A or B: since 0.2 any shared
 *   element is refused (before, only C == A or C == B was); blocks of one buffer that share
 *   none are accepted, whatever their leading dimensions (side-by-side column ranges, or rows
 *   that interleave without touching; checked exactly, row by row, only when the storage
 *   ranges overlap: O(min(rows of C, rows of A or B))). A C not a whole number of floats
 *   away from A or B, inside its range, is refused. A workspace must not overlap A, B or C.
 *   beta == 0 overwrites C without reading it (NaN in C does not propagate), as BLAS does.
 *   m, n or k == 0 is valid (with k == 0, C = beta * C).
 *   workspace: NULL, or at least mm_sgemm_workspace_size() bytes aligned to 64 (workspace_size
 *   is its size in bytes).
 * Uses the AVX2/FMA path when the CPU has it, OpenBLAS when built WITH_OPENBLAS=1.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL pointers with non-empty sizes, bad trans, C
 * overlapping A or B, misaligned, small or overlapping workspace), MM_E_SHAPE (negative sizes or leading dimensions too
 * small), MM_E_RANGE (sizes whose products overflow), MM_E_NOMEM.
 * Allocates: packing buffers with malloc when workspace is NULL and the shape needs packing;
 * nothing otherwise. Thread-safety: always safe (single-threaded). Since: 0.1 */
MM_API MM_NODISCARD int mm_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                 float alpha, const float *a, int64_t lda, const float *b,
                                 int64_t ldb, float beta, float *c, int64_t ldc, void *workspace,
                                 size_t workspace_size);

/* ---- threaded GEMM -------------------------------------------------------------------------- */
/* A thread pool for mm_sgemm_mt: n_threads - 1 worker threads plus the calling thread, and the
 * packing workspace for that many threads. Create it once (thread start-up costs tens of
 * microseconds) and reuse it for every call. A pool is a mutable handle: one mm_sgemm_mt at a
 * time uses it; different pools may run in parallel. Idle workers spin for at most 0.1 ms after
 * a call, then sleep. */
typedef struct mm_threads mm_threads;

/* Creates a pool of n_threads threads (1..256; 1 starts no thread).
 *   out: receives the pool (NULL on failure).
 *   alloc: NULL for aligned malloc/free, else the allocator of the pool and its workspace.
 * Returns MM_OK, MM_E_INVALID_ARG (out NULL, bad allocator), MM_E_RANGE (n_threads outside
 * 1..256), MM_E_NOMEM (memory, or a thread that could not start).
 * Allocates: the handle, mm_sgemm_mt_workspace_size(n_threads) bytes of workspace and
 * n_threads - 1 threads. Since: 0.2 */
MM_API MM_NODISCARD int mm_threads_create(mm_threads **out, int32_t n_threads,
                                          const mm_allocator *alloc);

/* Stops the threads and frees the pool; NULL is a no-op. Allocates: nothing. Since: 0.2 */
MM_API void mm_threads_free(mm_threads *threads);

/* Bytes of workspace mm_sgemm_mt needs for n_threads threads (a constant of the build per
 * thread count), or 0 when n_threads is outside 1..256. Allocates: nothing. Since: 0.2 */
MM_API size_t mm_sgemm_mt_workspace_size(int32_t n_threads);

/* mm_sgemm spread over the threads of a pool: same arguments, layout rules and return codes,
 * plus
 *   threads: a pool from mm_threads_create, or NULL for one thread (the calling one).
 *   workspace: NULL to use the pool's own workspace (with threads NULL: allocated with malloc
 *   for the call when the shape needs packing, as mm_sgemm), or at least
 *   mm_sgemm_mt_workspace_size(n) bytes aligned to 64 for a pool of n threads.
 * Always runs libmm's own kernel (also in WITH_OPENBLAS=1 builds), and its results are
 * bitwise identical for every thread count: the threads split C into tiles, never k, and
 * every element is computed by the same operations whichever thread computes it. Small
 * problems (under about a million multiply-adds) run on the calling thread alone.
 * Returns as mm_sgemm; a too small or misaligned workspace is MM_E_INVALID_ARG.
 * Allocates: nothing, except as described for threads NULL and workspace NULL.
 * Thread-safety: one call at a time per pool. Since: 0.2 */
MM_API MM_NODISCARD int mm_sgemm_mt(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                                    int64_t k, float alpha, const float *a, int64_t lda,
                                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                                    mm_threads *threads, void *workspace, size_t workspace_size);

/* ---- mm_model ------------------------------------------------------------------------------- */
/* A stack of layers (dense, activations, layer/RMS norm, embedding) whose parameters live in one
 * flat 64-byte aligned float32 buffer, with forward, backward (VJP), forward-mode JVP and
 * PyTorch-equivalent optimizers. Lifecycle:
 *   mm_model_opts_init -> mm_model_create -> mm_model_add_* ... -> mm_model_finalize
 *   -> (mm_model_set_optimizer) -> forward / backward / jvp / step ... -> mm_model_free.
 * Inputs are [batch, features], [batch, seq, features] or a single observation [features]; every
 * layer acts on the last axis. Outputs have the input's rank with the last axis replaced.
 * forward, backward, jvp, infer, step, zero_grad, lerp and copy (without optimizer change)
 * never allocate; beyond the sizes reserved at finalize (max_batch, max_seq) they return
 * MM_E_RANGE.
 * Thread-safety: a model is a mutable handle (one thread at a time), except that a finalized
 * model may be shared by many threads that only call mm_model_infer, each with its own
 * workspace, while no thread modifies it (no forward/backward/step/lerp/copy/free meanwhile).
 * Bad input returns a code, sets mm_model_errmsg and leaves the model usable and its parameters
 * unchanged. */
typedef struct mm_model mm_model;

/* Activation kinds for mm_model_add_activation (numbers never change). */
enum {
    MM_ACT_RELU = 1, /* max(x, 0) */
    MM_ACT_TANH = 2,
    MM_ACT_SIGMOID = 3,
    MM_ACT_GELU = 4,     /* exact erf form: x/2 (1 + erf(x/sqrt 2)), torch.nn.GELU() */
    MM_ACT_SILU = 5,     /* x sigmoid(x) */
    MM_ACT_ELU = 6,      /* alpha = 1 */
    MM_ACT_SOFTPLUS = 7, /* beta = 1, threshold = 20, as torch.nn.Softplus() */
    MM_ACT_RELU2 = 8     /* max(x, 0)^2 (squared ReLU) */
};

/* Dense-layer initialisations for mm_model_add_dense. */
enum {
    MM_INIT_DEFAULT = 0,   /* torch.nn.Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)) */
    MM_INIT_ORTHOGONAL = 1 /* torch.nn.init.orthogonal_(weight, gain), bias 0 (SB3) */
};

/* Optimizer kinds for mm_model_set_optimizer (PyTorch equivalents in docs/MODEL.md). */
enum {
    MM_OPT_SGD = 1,      /* torch.optim.SGD, momentum 0 by default */
    MM_OPT_MOMENTUM = 2, /* torch.optim.SGD with momentum 0.9 by default (and Nesterov) */
    MM_OPT_ADAM = 3,     /* torch.optim.Adam (L2 weight decay added to the gradient) */
    MM_OPT_ADAMW = 4,    /* torch.optim.AdamW (decoupled weight decay, default 0.01) */
    MM_OPT_RMSPROP = 5   /* torch.optim.RMSprop (alpha, centered, momentum) */
};

/* Run-time parameters of mm_model (mm_model_set_f64 / mm_model_get_f64, bounds through
 * mm_param_bounds). Optimizer ids need mm_model_set_optimizer first and apply only to the kinds
 * listed; mm_model_set_optimizer resets them to the kind's PyTorch defaults (in brackets). */
enum {
    MM_MODEL_LR = 500,            /* all [SGD 1e-3, Adam/AdamW 1e-3, RMSprop 1e-2], [0, 1e6] */
    MM_MODEL_BETA1 = 501,         /* Adam, AdamW [0.9], [0, 1) */
    MM_MODEL_BETA2 = 502,         /* Adam, AdamW [0.999], [0, 1) */
    MM_MODEL_EPS = 503,           /* Adam, AdamW, RMSprop [1e-8], [0, 1] */
    MM_MODEL_WEIGHT_DECAY = 504,  /* all [0; AdamW 0.01], [0, 1e6]; L2 except AdamW */
    MM_MODEL_MOMENTUM = 505,      /* SGD [0], MOMENTUM [0.9], RMSprop [0], [0, 1] */
    MM_MODEL_DAMPENING = 506,     /* SGD, MOMENTUM [0], [0, 1] */
    MM_MODEL_NESTEROV = 507,      /* SGD, MOMENTUM [0], 0 or 1 (needs momentum > 0, dampening 0) */
    MM_MODEL_ALPHA = 508,         /* RMSprop smoothing [0.99], [0, 1] */
    MM_MODEL_CENTERED = 509,      /* RMSprop [0], 0 or 1 */
    MM_MODEL_MAX_GRAD_NORM = 510, /* all [0 = off], [0, 1e30]: global L2 clipping as
                                     torch.nn.utils.clip_grad_norm_ (g *= c / (norm + 1e-6)
                                     when norm > c - 1e-6) before the update */
    MM_MODEL_AMSGRAD = 511,       /* Adam, AdamW [0], 0 or 1 */
    /* Read-only statistics (setting them returns MM_E_UNSUPPORTED). */
    MM_MODEL_STAT_GRAD_NORM = 550, /* global gradient L2 norm seen by the last step (before
                                      clipping; frozen layers excluded) */
    MM_MODEL_STAT_STEPS = 551,     /* optimizer steps since mm_model_set_optimizer (stop at 2^53) */
    MM_MODEL_STAT_CLIPPED = 552    /* 1 if the last step clipped the gradients, else 0 */
};

/* Construction options. Fields are only ever appended. */
typedef struct mm_model_opts {
    uint32_t struct_size;      /* sizeof(mm_model_opts), set by mm_model_opts_init */
    uint32_t reserved0;        /* must be 0 */
    const mm_allocator *alloc; /* copied; NULL = aligned malloc/free */
    int64_t input_dim;         /* width of the input's last axis, >= 1 (required; default 0) */
    int64_t max_batch;         /* largest batch forward/backward/jvp accept [1] */
    int64_t max_seq;           /* largest sequence length (3-D inputs) [1] */
    uint64_t seed;             /* seed of the parameter initialisation [0] */
    int32_t n_threads;         /* > 1 starts a thread pool for the GEMMs [1] */
    int32_t reserved1;         /* must be 0 */
    char *err_buf;             /* optional: receives mm_model_create's failure text */
    size_t err_buf_size;
} mm_model_opts;

/* Fills o with the defaults above and struct_size = sizeof(mm_model_opts).
 * Returns MM_OK or MM_E_INVALID_ARG (o NULL). Allocates: nothing. Since: 0.1 */
MM_API int mm_model_opts_init(mm_model_opts *o);

/* Creates an empty model (no layers yet).
 *   out:  receives the handle; set to NULL on failure.
 *   opts: read during the call only (the allocator struct is copied); err_buf, if set, receives
 *         the failure text of this call (later failures: mm_model_errmsg).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, bad allocator, input_dim < 1, max_batch/max_seq < 1,
 * n_threads < 1 or > 256, reserved fields non-zero), MM_E_VERSION (newer struct with unknown
 * non-zero fields), MM_E_NOMEM. Allocates: the handle and a small layer table. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_create(mm_model **out, const mm_model_opts *opts);

/* Appends a dense (fully connected) layer y = x W^T + b, W [out_features, in], b [out_features]
 * (torch.nn.Linear layout; tensor names "<i>.weight", "<i>.bias").
 *   bias: 1 with bias, 0 without.   init: MM_INIT_DEFAULT or MM_INIT_ORTHOGONAL.
 *   gain: orthogonal gain (finite, >= 0); ignored by MM_INIT_DEFAULT.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, bad bias/init/gain), MM_E_RANGE (out_features < 1 or
 * > 2^31), MM_E_STATE (already finalized), MM_E_NOMEM. Allocates: the layer table may grow.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_dense(mm_model *m, int64_t out_features, int32_t bias,
                                           int32_t init, double gain);

/* Appends an element-wise activation (MM_ACT_*). No parameters, but it takes one nn.Sequential
 * index in tensor names. Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown kind), MM_E_STATE,
 * MM_E_NOMEM. Allocates: the layer table may grow. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_activation(mm_model *m, int32_t kind);

/* Appends torch.nn.LayerNorm(width, eps, elementwise_affine=affine) over the last axis
 * (weight 1, bias 0). eps in (0, 1]; affine 0 or 1. Statistics in float64.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_RANGE (eps), MM_E_STATE, MM_E_NOMEM.
 * Allocates: the layer table may grow. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_layernorm(mm_model *m, double eps, int32_t affine);

/* Appends torch.nn.RMSNorm(width, eps, elementwise_affine=affine): y = x / sqrt(mean(x^2) + eps)
 * * weight (weight 1). eps in (0, 1] (PyTorch's eps=None is FLT_EPSILON = 1.1920929e-07).
 * Returns and allocates as mm_model_add_layernorm. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_rmsnorm(mm_model *m, double eps, int32_t affine);

/* Appends an embedding table weight [num_embeddings, embedding_dim] (init N(0, 1) as
 * torch.nn.Embedding). Its input holds integer-valued float indices: each of the W values of the
 * last axis is looked up and the vectors are concatenated, so [B, T, W] -> [B, T, W * dim]
 * (W = 1 is nn.Embedding on x[..., 0]). forward refuses a non-integer or out-of-range index with
 * MM_E_RANGE. It passes no gradient to its input (dx is zero).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_RANGE (sizes < 1 or > 2^31), MM_E_STATE,
 * MM_E_NOMEM. Allocates: the layer table may grow. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_embedding(mm_model *m, int64_t num_embeddings,
                                               int64_t embedding_dim);

/* Ends construction: allocates the parameter and gradient buffers (zeroed gradients), draws the
 * initial parameters from opts.seed (layer after layer, so a model's initialisation does not
 * depend on what follows a layer), and reserves every buffer forward/backward/jvp need for
 * max_batch x max_seq. A model needs at least one layer.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_STATE (already finalized or no layers),
 * MM_E_RANGE (sizes overflow), MM_E_NOMEM (the model stays unfinalized and may be freed).
 * Allocates: parameters, gradients, activations and workspaces; a thread pool if n_threads > 1.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_model_finalize(mm_model *m);

/* Forward pass y = model(x), keeping the activations a following mm_model_backward needs.
 *   x: [B, input_dim], [B, T, input_dim] or [input_dim]; B <= max_batch, T <= max_seq.
 *   y: same rank as x, last axis the model's output width (caller-owned, overwritten). y may
 *      be x itself or overlap it (x is copied before anything is written; tested), but not
 *      the model's parameters or gradients (mm_model_params; x may be a view of them).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; since 0.2 y over the model's parameters or
 * gradients), MM_E_STATE (not finalized), MM_E_SHAPE, MM_E_RANGE
 * (beyond the reservation; embedding index not an integer in range).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_forward(mm_model *m, const mm_tensor *x, mm_tensor *y);

/* Backward pass (VJP) of the last mm_model_forward/mm_model_jvp: accumulates (+=) dL/dparams
 * into the gradient buffer (skipping frozen layers) and, if dx is not NULL, writes dL/dx.
 *   dy: dL/dy, shaped as that forward's y.   dx: NULL or shaped as that forward's x, sharing
 *       no memory with dy. Neither may lie in the model's gradients, nor dx in its parameters
 *       (dy may: it is only read; tested).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; dx sharing memory with dy: since 0.2 any overlap, not
 * only the same buffer; since 0.2 dx or dy over the model's own buffers as above), MM_E_STATE
 * (no successful forward since finalize or the last failure), MM_E_SHAPE. Allocates: nothing.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_model_backward(mm_model *m, const mm_tensor *dy, mm_tensor *dx);

/* Forward-mode derivative along a parameter direction: jy = d/de model(x; params + e v) at
 * e = 0 (the Jacobian-vector product J v that TRPO's Fisher-vector product needs). Runs a
 * forward at x, so it also counts as the forward for a following mm_model_backward. Frozen
 * layers are not special: v covers every parameter.
 *   x:  as in mm_model_forward.    v: num_params floats (any shape with that element count);
 *       NULL only for a model without parameters.
 *   y:  NULL, or receives model(x).  jy: shaped as y. y and jy may overlap x but share no
 *       memory with v, each other or the model's parameters and gradients (v may be the
 *       parameters themselves: tested).
 * Returns as mm_model_forward, plus MM_E_INVALID_ARG (y, jy or v sharing memory: since 0.2
 * any overlap, not only the same buffer; since 0.2 y or jy over the model's own buffers).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_jvp(mm_model *m, const mm_tensor *x, const mm_tensor *v,
                                     mm_tensor *y, mm_tensor *jy);

/* Bytes of workspace mm_model_infer needs for inputs of batch x seq (seq 1 for 2-D inputs).
 * Not limited by max_batch/max_seq. Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_STATE (not
 * finalized), MM_E_RANGE (sizes < 1 or overflowing). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_infer_workspace_size(const mm_model *m, int64_t batch, int64_t seq,
                                                      size_t *bytes);

/* Forward pass that reads the model and writes only y and ws: any number of threads may call
 * it at once on one model, each with its own workspace (see the thread-safety note above). It
 * keeps nothing for backward and runs single-threaded. It does not write mm_model_errmsg (the
 * model is shared); the status says what failed.
 *   ws: at least mm_model_infer_workspace_size(m, B, T) bytes, 64-byte aligned.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, misaligned or too small ws, y sharing memory with x;
 * since 0.2 any overlap of y and x, ws overlapping x or y, and y or ws over the model's
 * parameters or gradients),
 * MM_E_STATE, MM_E_SHAPE, MM_E_RANGE (embedding index). Allocates: nothing.
 * Thread-safety: see above. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_infer(const mm_model *m, const mm_tensor *x, mm_tensor *y,
                                       void *ws, size_t ws_size);

/* Number of parameters (floats in the flat buffers). Returns MM_OK, MM_E_INVALID_ARG,
 * MM_E_STATE (not finalized). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_num_params(const mm_model *m, int64_t *n);

/* Flat views of the parameters and of the accumulated gradients: *data points into the model
 * (64-byte aligned, n floats, valid until mm_model_free) and may be read and written, e.g. to
 * set parameters. Layer i's tensors are consecutive in layer order, each row-major in PyTorch
 * layout. n may be NULL.
 * A caller tensor wrapping either view may be an input of the model's calls (x, ctx, v, dy
 * over the parameters, mm_model_logprob_backward's targets and weights over the gradients:
 * each is read before the buffer it lies in is written; x, dy, v and the weights tested
 * bitwise against copies). Since 0.2 the calls refuse
 * (MM_E_INVALID_ARG naming the output and the buffer) any output over either view (y, jy, dx,
 * dctx, logp, mm_model_decode_step's y and state, mm_model_infer's y and ws,
 * mm_model_save_mem's buf) and a backward's dy over the gradients: the calls read the
 * parameters while they write and accumulate into the gradients while they read dy, so these
 * gave wrong values with MM_OK (or, for a forward's y, changed the weights its backward is
 * taken at). mm_model_sample reads neither view and checks neither.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE (not finalized).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_params(mm_model *m, float **data, int64_t *n);
MM_API MM_NODISCARD int mm_model_grads(mm_model *m, float **data, int64_t *n);

/* Sets every gradient to 0. Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE. Allocates: nothing.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_model_zero_grad(mm_model *m);

/* Selects the optimizer (MM_OPT_*), resets its hyperparameters to the PyTorch defaults, zeroes
 * its state and step count, and reserves the state buffers (so mm_model_step never allocates).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown kind), MM_E_STATE (not finalized), MM_E_NOMEM
 * (the previous optimizer is kept). Allocates: up to 3 x num_params floats. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_set_optimizer(mm_model *m, int32_t kind);

/* Sets / reads a run-time parameter (MM_MODEL_*). Flags (NESTEROV, CENTERED, AMSGRAD) take 0
 * or 1. Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_UNSUPPORTED (unknown id, read-only id,
 * or an id the current optimizer does not have), MM_E_STATE (no optimizer yet for optimizer
 * ids), MM_E_RANGE (outside the bounds or not finite; value unchanged).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_set_f64(mm_model *m, int32_t id, double v);
MM_API MM_NODISCARD int mm_model_get_f64(const mm_model *m, int32_t id, double *v);

/* One optimizer step on the accumulated gradients (frozen layers skipped): optional global
 * norm clipping, then the update with PyTorch's exact formulas. Gradients are not zeroed (call
 * mm_model_zero_grad). Refuses with MM_E_NUMERIC, leaving parameters, optimizer state, step
 * counts and statistics unchanged, non-finite gradients and any step whose result would hold
 * an Inf or NaN parameter or optimizer state (e.g. EPS 0 on a zero-gradient coordinate, 0/0;
 * or lr times a huge gradient overflowing): MM_OK always leaves finite numbers.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE (no optimizer; Nesterov without momentum or with
 * dampening), MM_E_NUMERIC. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_step(mm_model *m);

/* Freezes (frozen = 1) or unfreezes (0) layers [first, first + count) (LiT-style locking): a
 * frozen layer's parameter gradients are not computed, it is skipped by clipping and by the
 * optimizer, and its optimizer state is kept. Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE (not
 * finalized), MM_E_RANGE (layer range). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_freeze(mm_model *m, int32_t first, int32_t count, int32_t frozen);

/* Copies src's parameters into dst, which must have the same architecture (layers, configs,
 * input width). with_optimizer = 1 also copies the optimizer kind, hyperparameters, step count
 * and state (dst's previous state is replaced). Gradients and frozen flags are not copied.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, dst == src), MM_E_STATE (not finalized, or
 * with_optimizer and src has none), MM_E_SHAPE (different architecture), MM_E_NOMEM.
 * Allocates: optimizer state in dst only when with_optimizer and dst has another optimizer
 * kind (or none). Since: 0.1 */
MM_API MM_NODISCARD int mm_model_copy(mm_model *dst, const mm_model *src, int32_t with_optimizer);

/* Polyak / EMA update of parameters: dst = (1 - tau) * dst + tau * src, in float32 as SB3's
 * polyak_update. tau in [0, 1]. Same-architecture rule as mm_model_copy.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE, MM_E_SHAPE, MM_E_RANGE (tau).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_lerp(mm_model *dst, const mm_model *src, double tau);

/* Number of layers and the model's output width (last axis). Returns MM_OK,
 * MM_E_INVALID_ARG. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_num_layers(const mm_model *m, int32_t *n);
MM_API MM_NODISCARD int mm_model_output_dim(const mm_model *m, int64_t *dim);

/* Returns the detail text of the last failure on m ("" if none; "invalid handle" for NULL).
 * Valid until the next call on m. Allocates: nothing. Since: 0.1 */
MM_API const char *mm_model_errmsg(const mm_model *m);

/* Frees the model and everything it allocated. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_model_free(mm_model *m);

/* ---- mm_loss -------------------------------------------------------------------------------- */
/* Image-text and policy losses with their gradients in the same call (docs/LOSSES.md has every
 * formula and the reference it matches):
 *   MM_LOSS_CLIP          symmetric InfoNCE (open_clip ClipLoss), logits exp(t) x y^T; tiled
 *                         in two passes with O(B) state: the B x B logits are never held.
 *   MM_LOSS_SIGLIP        pairwise sigmoid loss (open_clip SigLipLoss, big_vision), logits
 *                         exp(t) x y^T + b; forward and backward fused in one tiled pass.
 *   MM_LOSS_ITC           BLIP image-text contrastive loss with momentum-distilled soft
 *                         targets and an optional queue of extra negatives; raw temperature.
 *   MM_LOSS_CROSS_ENTROPY softmax cross entropy with PyTorch's label smoothing and ignore index.
 *   MM_LOSS_BCE           multi-label binary cross entropy summed over classes and divided by
 *                         the batch (CatLIP).
 *   MM_LOSS_KIMI          Kimi k1.5 squared surrogate over per-sample summed log-probabilities.
 * Helpers on any mm_loss handle: L2 normalisation and its backward, FLIP random patch masking
 * (draw, gather, scatter), BLIP hard-negative sampling, the Kimi length reward.
 *
 * Lifecycle: mm_loss_opts_init(&o, kind) -> set sizes -> mm_loss_create -> compute calls ...
 * -> mm_loss_free. Every workspace is reserved at create from max_batch, max_dim, max_queue and
 * tile; compute calls never allocate and return MM_E_RANGE beyond the reservation. The helpers
 * never allocate either.
 * Learnable scalars (logit scale t, bias b, BLIP temperature) live in the handle as parameters:
 * each call reads them, and writes their gradients as read-only statistics
 * (MM_LOSS_STAT_DLOGIT_SCALE, ...). The caller's optimizer updates them with mm_loss_set_f64.
 * Inputs are checked: NaN or Inf gives MM_E_NUMERIC, mismatched shapes MM_E_SHAPE, both with a
 * message naming the tensors and shapes; logits that could overflow float32 are refused up
 * front (MM_E_NUMERIC). A refused call writes no output and keeps the statistics; only the
 * helpers' after-the-fact overflow checks (mm_loss_l2_normalize*) may leave an output written.
 * Thread-safety: one thread at a time per handle (mutable statistics and RNG).
 * Numbers: float32 inputs and gradients, every sum over a batch accumulated in float64, every
 * log-sum-exp max-shifted, log-sigmoid computed through softplus. */
typedef struct mm_loss mm_loss;

/* Loss kinds (numbers never change). */
enum {
    MM_LOSS_CLIP = 1,
    MM_LOSS_SIGLIP = 2,
    MM_LOSS_ITC = 3,
    MM_LOSS_CROSS_ENTROPY = 4,
    MM_LOSS_BCE = 5,
    MM_LOSS_KIMI = 6
};

/* Run-time parameters of mm_loss (mm_loss_set_f64 / mm_loss_get_f64, bounds through
 * mm_param_bounds). Defaults in brackets; the kinds a parameter applies to are listed, other
 * kinds return MM_E_UNSUPPORTED for it. Setters reject values outside the bounds with
 * MM_E_RANGE (value unchanged): a training loop that updates t or the temperature clamps into
 * the bounds itself, as open_clip (t into [0, ln 100]) and BLIP (temp into [0.001, 0.5]) do. */
enum {
    MM_LOSS_LOGIT_SCALE = 400,     /* t, the log of the logit scale s = exp(t). CLIP
                                       [ln(1/0.07) = 2.6592600], SIGLIP [ln 10]; [-10, 10] */
    MM_LOSS_LOGIT_BIAS = 401,      /* b. SIGLIP [-10]; [-1000, 1000] */
    MM_LOSS_TEMP = 402,            /* BLIP temperature, logits are sims / temp (raw, not log).
                                       ITC [0.07]; [0.001, 0.5] (BLIP's clamp) */
    MM_LOSS_ALPHA = 403,           /* ITC distillation weight of the momentum targets [0.4];
                                       [0, 1] (BLIP ramps it up over the first epochs) */
    MM_LOSS_LABEL_SMOOTHING = 404, /* CROSS_ENTROPY [0]; [0, 1] */
    MM_LOSS_IGNORE_INDEX = 405,    /* CROSS_ENTROPY target value that is skipped [-100];
                                       an integer in [-2^31, 2^31 - 1] */
    MM_LOSS_TAU = 406,             /* KIMI KL weight tau [1]; [1e-6, 1e6] (the paper gives none) */
    MM_LOSS_KIMI_BASELINE = 407,   /* KIMI estimate of tau log Z: 0 = mean group reward, as the
                                       paper uses [0]; 1 = tau log mean exp(r / tau) */
    MM_LOSS_NORM_EPS = 408,        /* helpers: eps of mm_loss_l2_normalize [1e-12]; [0, 1] */
    MM_LOSS_NORM_EPS_MODE = 409,   /* helpers: 0 = u / max(|u|, eps) (F.normalize, open_clip)
                                       [0]; 1 = u / (|u| + eps) (big_vision, FLIP) */
    MM_LOSS_CLAMP_LOGIT_SCALE = 410, /* CLIP, SIGLIP: 1 = use s = exp(clamp(t, 0, ln 100))
                                        inside the loss, zero t-gradient when clamped (FLIP) [0] */
    MM_LOSS_GRAD_SCALE = 411,        /* all kinds: every gradient (tensors and statistics) is
                                       multiplied by this upstream weight [1]; [-1e6, 1e6] */
    /* Read-only statistics of the last successful compute call (setting them returns
     * MM_E_UNSUPPORTED; 0 before the first call). */
    MM_LOSS_STAT_LOSS = 450,           /* the loss value (also returned by the call) */
    MM_LOSS_STAT_DLOGIT_SCALE = 451,   /* CLIP, SIGLIP: dLoss/dt (times GRAD_SCALE) */
    MM_LOSS_STAT_DLOGIT_BIAS = 452,    /* SIGLIP: dLoss/db (times GRAD_SCALE) */
    MM_LOSS_STAT_DTEMP = 453,          /* ITC: dLoss/dtemp (times GRAD_SCALE) */
    MM_LOSS_STAT_LOSS_I2T = 454,       /* CLIP, ITC: image->text (row) direction's loss */
    MM_LOSS_STAT_LOSS_T2I = 455,       /* CLIP, ITC: text->image (column) direction's loss */
    MM_LOSS_STAT_VALID = 456,          /* CROSS_ENTROPY: rows not ignored; others: rows used */
    MM_LOSS_STAT_WORKSPACE_BYTES = 457 /* all kinds: bytes reserved at create (the handle and its
                                          workspaces; a thread pool's threads are not counted) */
};

/* Construction options. Fields are only ever appended. */
typedef struct mm_loss_opts {
    uint32_t struct_size;      /* sizeof(mm_loss_opts), set by mm_loss_opts_init */
    uint32_t reserved0;        /* must be 0 */
    const mm_allocator *alloc; /* copied; NULL = aligned malloc/free */
    int32_t kind;              /* MM_LOSS_*, set by mm_loss_opts_init */
    int32_t n_threads;         /* > 1 starts a thread pool for the tiled kinds [1] */
    int64_t max_batch;         /* largest batch: pairs B (CLIP, SIGLIP, ITC), rows (CROSS_ENTROPY,
                                  BCE), samples (KIMI), rows of BLIP hard-negative sampling
                                  [1024] */
    int64_t max_dim;           /* largest feature width D (CLIP, SIGLIP, ITC) or class count C
                                  (CROSS_ENTROPY, BCE) [1024] */
    int64_t max_queue;         /* ITC: largest queue of extra negatives Q [0] */
    int64_t tile;              /* CLIP, SIGLIP, ITC: tile edge in rows and columns [256];
                                  8..4096. Results depend on it only through rounding. */
    int64_t group_size;        /* KIMI: samples per prompt k [8]; batches are [n_prompts * k] */
    uint64_t seed;             /* seed of the handle's RNG (FLIP masks, BLIP negatives) [0] */
    char *err_buf;             /* optional: receives mm_loss_create's failure text */
    size_t err_buf_size;
} mm_loss_opts;

/* Fills o with the defaults of kind (see the fields and parameters above) and struct_size =
 * sizeof(mm_loss_opts). Returns MM_OK, MM_E_INVALID_ARG (o NULL, unknown kind; o is then left
 * untouched). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_opts_init(mm_loss_opts *o, int32_t kind);

/* Creates a loss handle and reserves every workspace its kind needs for the sizes in opts.
 *   out:  receives the handle; set to NULL on failure.
 *   opts: read during the call only (the allocator struct is copied); err_buf, if set, receives
 *         the failure text of this call (later failures: mm_loss_errmsg).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, bad allocator, unknown kind, reserved0 non-zero),
 * MM_E_RANGE (max_batch, max_dim, tile, group_size, max_queue or n_threads out of range, sizes
 * overflowing), MM_E_VERSION (newer struct with unknown non-zero fields), MM_E_NOMEM.
 * Allocates: the handle, the workspaces (CLIP and ITC: O(max_batch + tile^2) floats, the ITC
 * queue is streamed; SIGLIP: O(tile^2); every kind: max_batch doubles for BLIP sampling), a
 * thread pool if n_threads > 1.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_create(mm_loss **out, const mm_loss_opts *opts);

/* Frees the handle and everything it allocated. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_loss_free(mm_loss *h);

/* Returns the detail text of the last failure on h ("" if none; "invalid handle" for NULL).
 * Valid until the next call on h. Allocates: nothing. Since: 0.1 */
MM_API const char *mm_loss_errmsg(const mm_loss *h);

/* Sets / reads a run-time parameter or statistic (MM_LOSS_*). Returns MM_OK, MM_E_INVALID_ARG
 * (NULL), MM_E_UNSUPPORTED (unknown id, read-only id for set, id not used by this kind),
 * MM_E_RANGE (outside the bounds, not finite, or IGNORE_INDEX / flags not integral; value
 * unchanged). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_set_f64(mm_loss *h, int32_t id, double v);
MM_API MM_NODISCARD int mm_loss_get_f64(const mm_loss *h, int32_t id, double *v);

/* CLIP loss (kind MM_LOSS_CLIP). With s = exp(t), z = s x y^T (B x B):
 *   loss = ( mean_i [LSE_j z_ij - z_ii] + mean_j [LSE_i z_ij - z_jj] ) / 2.
 *   x, y:   [B, D] image and text features (normally L2-normalised), B <= max_batch,
 *           D <= max_dim; finite.
 *   loss:   NULL or receives the loss (float64), stored after everything else: it may point
 *           into x or y (tested), not into dx or dy (since 0.2 MM_E_INVALID_ARG; before, MM_OK
 *           with two floats of the gradient replaced). The same holds for every compute call's
 *           loss and its gradient outputs (dlogits, dlogp, d_img, d_txt).
 *   dx, dy: NULL (not computed: pass dx = NULL for a locked image tower, LiT) or [B, D],
 *           overwritten with dLoss/dx, dLoss/dy. They must not alias x or y.
 * dLoss/dt is always computed (MM_LOSS_STAT_DLOGIT_SCALE). Cost: one B x B x D product for the
 * loss, three more for the gradients; memory O(B + tile^2).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL h/x/y, wrong kind, aliasing, loss inside dx or dy),
 * MM_E_SHAPE, MM_E_RANGE (beyond the reservation), MM_E_NUMERIC (NaN/Inf in x or y, or a
 * non-finite result).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_clip(mm_loss *h, const mm_tensor *x, const mm_tensor *y,
                                     double *loss, mm_tensor *dx, mm_tensor *dy);

/* SigLIP loss (kind MM_LOSS_SIGLIP). With s = exp(t), z = s x y^T + b and labels +1 on the
 * diagonal, -1 elsewhere:  loss = (1/B) sum_ij softplus(-label_ij z_ij)  (all B^2 pairs, divided
 * by B, as open_clip and big_vision). Arguments, returns and LiT use as mm_loss_clip; dLoss/dt
 * and dLoss/db are always computed (MM_LOSS_STAT_DLOGIT_SCALE, _DLOGIT_BIAS). Cost: one
 * B x B x D product for the loss, two more for the gradients, in the same pass; memory
 * O(tile^2). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_siglip(mm_loss *h, const mm_tensor *x, const mm_tensor *y,
                                       double *loss, mm_tensor *dx, mm_tensor *dy);

/* BLIP image-text contrastive loss (kind MM_LOSS_ITC) with momentum distillation.
 *   img, txt:         [B, D] online features (L2-normalised by the caller).
 *   img_m, txt_m:     [B, D] momentum-encoder features (no gradient).
 *   img_queue, txt_queue: both NULL, or both [Q, D] with Q <= max_queue: extra negatives
 *                     (BLIP's feature queues; the caller keeps and advances them).
 * With temp the MM_LOSS_TEMP parameter, columns T = [txt_m; txt_queue], I = [img_m; img_queue]:
 *   i2t_i = LSE_j(img_i.T_j / temp) - sum_j target_ij img_i.T_j / temp,
 *   target_i = alpha softmax_j(img_m_i.T_j / temp) + (1 - alpha) onehot(i),
 *   t2i likewise with txt, txt_m and I;  loss = (mean_i i2t_i + mean_i t2i_i) / 2.
 *   d_img, d_txt: NULL or [B, D], overwritten with the gradients (momentum features and queues
 *                 get none, as in BLIP). dLoss/dtemp is always computed (MM_LOSS_STAT_DTEMP).
 * Returns as mm_loss_clip. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_itc(mm_loss *h, const mm_tensor *img, const mm_tensor *txt,
                                    const mm_tensor *img_m, const mm_tensor *txt_m,
                                    const mm_tensor *img_queue, const mm_tensor *txt_queue,
                                    double *loss, mm_tensor *d_img, mm_tensor *d_txt);

/* Softmax cross entropy (kind MM_LOSS_CROSS_ENTROPY), as torch.nn.functional.cross_entropy
 * with reduction='mean', label_smoothing = eps (MM_LOSS_LABEL_SMOOTHING) and ignore_index
 * (MM_LOSS_IGNORE_INDEX): over the valid rows v (target != ignore_index), with lp =
 * log_softmax(z_n) and C classes,
 *   loss = (1 - eps) mean_v(-lp[t_n]) + (eps / C) mean_v(-sum_c lp[c]).
 *   logits:  [N, C], N <= max_batch, C <= max_dim.
 *   targets: N class indices in [0, C) or ignore_index (n_targets must be N).
 *   dlogits: NULL or [N, C], overwritten (ignored rows get 0); sharing no memory with logits
 *            or targets (since 0.2 targets too: MM_E_INVALID_ARG).
 * If every row is ignored the loss and gradients are 0 (PyTorch returns NaN).
 * Returns as mm_loss_clip, plus MM_E_RANGE for a target outside [0, C).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_cross_entropy(mm_loss *h, const mm_tensor *logits,
                                              const int32_t *targets, int64_t n_targets,
                                              double *loss, mm_tensor *dlogits);

/* Multi-label binary cross entropy (kind MM_LOSS_BCE) with CatLIP's normalisation:
 *   loss = (1/N) sum_{n,c} [softplus(z_nc) - y_nc z_nc]   (summed over classes, divided by N).
 *   logits:  [N, C]; targets: [N, C] in [0, 1] (multi-hot or soft).
 *   dlogits: NULL or [N, C], overwritten with (sigmoid(z) - y) / N.
 * Returns as mm_loss_clip, plus MM_E_RANGE for a target outside [0, 1].
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_bce(mm_loss *h, const mm_tensor *logits, const mm_tensor *targets,
                                    double *loss, mm_tensor *dlogits);

/* Kimi k1.5 policy-mirror-descent surrogate (kind MM_LOSS_KIMI). Samples come in groups of k =
 * group_size responses to one prompt; with l_j = logp_j - logp_old_j and the group's baseline
 * rbar (MM_LOSS_KIMI_BASELINE: mean reward, or tau log mean exp(r / tau)):
 *   loss = (1/N) sum_j (r_j - rbar - tau l_j)^2,   dLoss/dlogp_j = -(2 tau / N)(r_j - rbar - tau l_j).
 *   logp:     [N] or [N/k, k]: summed log-probabilities of each response under the current
 *             policy; logp_old, rewards: same shape (sampling policy, rewards).
 *   dlogp:    NULL or the same shape, overwritten. N <= max_batch, N a multiple of k.
 * Returns as mm_loss_clip. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_kimi(mm_loss *h, const mm_tensor *logp, const mm_tensor *logp_old,
                                     const mm_tensor *rewards, double *loss, mm_tensor *dlogp);

/* Kimi k1.5 length reward (Sec. 2.3.3) for groups of group_size responses: within a group,
 * lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len) (0 when all lengths are equal);
 * out_i = lambda_i for a correct response (reward > 0.5), min(0, lambda_i) otherwise. The caller
 * adds weight * out_i to its rewards.
 *   lengths:  N response lengths (>= 0).   rewards, out: N elements each (any shape); out may
 *   be rewards, but must not otherwise overlap it nor overlap lengths. N a multiple of
 *   group_size.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; out overlapping lengths, since 0.2, or part of
 * rewards), MM_E_SHAPE, MM_E_RANGE (negative length, group_size < 1),
 * MM_E_NUMERIC. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_kimi_length_reward(mm_loss *h, const int64_t *lengths,
                                                   const mm_tensor *rewards, int64_t group_size,
                                                   mm_tensor *out);

/* L2 normalisation over the last axis of u (any shape, e.g. [N, D]) into x of the same shape
 * (x may be u), with float64 norms: x = u / max(|u|, eps) (MM_LOSS_NORM_EPS_MODE 0, torch
 * F.normalize as open_clip uses) or u / (|u| + eps) (mode 1, big_vision and FLIP), eps =
 * MM_LOSS_NORM_EPS. Not limited by the reservation. Returns MM_OK, MM_E_INVALID_ARG (NULL,
 * partial overlap), MM_E_SHAPE, MM_E_NUMERIC (NaN/Inf in u, or x overflowing with a tiny eps).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_l2_normalize(mm_loss *h, const mm_tensor *u, mm_tensor *x);

/* Backward of mm_loss_l2_normalize with the same parameters: given the input u and dL/dx,
 * writes dL/du into du (du may be dx, not u); where the eps clamp of mode 0 is active the
 * gradient is dx / eps, as torch's clamp_min gives. Returns as mm_loss_l2_normalize.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_l2_normalize_backward(mm_loss *h, const mm_tensor *u,
                                                      const mm_tensor *dx, mm_tensor *du);

/* FLIP random patch masking, step 1: draws for each of batch samples n_keep distinct patch
 * indices out of n_patches from the handle's RNG, in random order (as FLIP's argsort of noise
 * and open_clip's PatchDropout keep them). FLIP keeps n_keep = (int)(n_patches * (1 - ratio)).
 *   keep: batch * n_keep int32 (row-major [batch, n_keep]).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_RANGE (batch < 1, n_keep outside
 * [1, n_patches], n_patches > 2^31 - 1). Cost O(batch n_keep^2). Allocates: nothing.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_flip_draw(mm_loss *h, int64_t batch, int64_t n_patches,
                                          int64_t n_keep, int32_t *keep);

/* FLIP masking forward: out[b, k, :] = x[b, keep[b, k], :].
 *   x: [B, L, D]; keep: B * n_keep indices in [0, L) (from mm_loss_flip_draw or the caller);
 *   out: [B, n_keep, D], sharing no memory with x or (since 0.2) keep.
 * Returns as mm_loss_clip plus MM_E_RANGE for an index outside [0, L).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_flip_gather(mm_loss *h, const mm_tensor *x, const int32_t *keep,
                                            int64_t n_keep, mm_tensor *out);

/* FLIP masking backward: dx [B, L, D] is overwritten with zeros, then dx[b, keep[b, k], :] +=
 * dout[b, k, :] (dout [B, n_keep, D]); dx shares no memory with dout or (since 0.2) keep.
 * Returns as mm_loss_flip_gather.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_flip_scatter(mm_loss *h, const mm_tensor *dout, const int32_t *keep,
                                             int64_t n_keep, mm_tensor *dx);

/* BLIP hard-negative sampling for image-text matching. For each row i of sim [B, M] (M >= B;
 * the first B columns are the in-batch candidates), draws one negative column j from the
 * handle's RNG with probability proportional to softmax_j(sim_i)_j + 1e-4 over j != i (BLIP
 * pretraining); with ids (B labels), every j with ids[j] == ids[i] is excluded and the 1e-4 is
 * not added (BLIP retrieval). by_column = 1 samples for each column j < B a row instead (sim
 * read transposed). neg[i] = -1 if row i has no candidate.
 *   sim: [B, M] similarities (BLIP passes sims / temp); ids: NULL or B labels; neg: B int32,
 *   sharing no memory with sim or ids (since 0.2: MM_E_INVALID_ARG).
 * Returns as mm_loss_clip (B <= max_batch). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_blip_hard_negatives(mm_loss *h, const mm_tensor *sim,
                                                    const int64_t *ids, int32_t by_column,
                                                    int32_t *neg);

/* ---- mm_model files (safetensors) ------------------------------------------------------------
 * A model file is a safetensors file (docs/FORMAT.md): an 8-byte little-endian header length,
 * a JSON header, then raw little-endian float32 data. Tensor names follow PyTorch's
 * nn.Sequential state_dict ("0.weight", "0.bias", "2.weight", ...; activation layers take an
 * index too), so PyTorch reads libmm files and libmm reads PyTorch files (tools/torch_io.py).
 * __metadata__ carries format "libmm", the format and libmm versions, the architecture, the
 * optimizer settings and a CRC32 of the data. Loading validates every length, offset, shape,
 * dtype, name and the checksum before it trusts anything; a malformed or hostile file returns
 * MM_E_FORMAT with a message and leaks nothing. */

/* A read callback for mm_model_load_cb: copies up to n (>= 1) bytes of the stream into buf and
 * returns how many (1..n), 0 at the end of the stream, or a negative value on error (the load
 * then fails with MM_E_IO). Called on the loading thread. */
typedef int64_t (*mm_read_fn)(void *ud, void *buf, int64_t n);

/* Flags of mm_model_save / mm_model_save_mem. */
enum {
    /* Also store the optimizer state (Adam moments, momentum buffers, ...) and step count as
     * tensors "optimizer.<param>.<slot>", so training resumes exactly. PyTorch's
     * load_state_dict needs strict=False for such files, or tools/torch_io.py. */
    MM_SAVE_OPTIMIZER_STATE = 1
};

/* Saves a finalized model to path atomically: the bytes go to "<path>.tmp.<pid>.<nonce>" in
 * the same directory, which is fsynced and renamed onto path, then the directory is fsynced. A
 * crash or failure mid-save leaves the previous file at path intact (and no temporary file,
 * except after a crash). When path is a symbolic link (or a chain of them), the file it names
 * is replaced (the temporary file is written next to it) and the link stays a link.
 *   m:     the model (not modified; its error text is set on failure).
 *   path:  file name, NUL-terminated, at most 4095 bytes; the directory must be writable.
 *   flags: 0 or MM_SAVE_OPTIMIZER_STATE.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown flags), MM_E_STATE (not finalized), MM_E_IO
 * (a link loop, or create, write, fsync, close or rename failed; the text names the step and
 * the OS error),
 * MM_E_NOMEM. Allocates: the header and tensor list (freed before returning).
 * Thread-safety: as any call that writes m's error text (one thread at a time). Since: 0.1 */
MM_API MM_NODISCARD int mm_model_save(mm_model *m, const char *path, uint32_t flags);

/* Saves a finalized model into a caller buffer (the same bytes mm_model_save writes).
 *   buf:   destination, or NULL to query the size only.
 *   cap:   bytes available at buf.
 *   size:  NULL, or receives the file's size in bytes (also when cap is too small); not inside
 *          buf[0..cap).
 *   flags: as mm_model_save.
 * buf[0..cap) must not cover the model's parameters or gradients (possible only with an
 * allocator that places the model in the caller's memory).
 * Returns MM_OK, MM_E_INVALID_ARG (m NULL, buf and size both NULL, unknown flags; since 0.2
 * size inside buf, which the file's bytes overwrote, and buf over the parameters or
 * gradients), MM_E_STATE
 * (not finalized), MM_E_BUFFER_TOO_SMALL (cap < size; nothing written), MM_E_NOMEM.
 * Allocates: the header and tensor list (freed before returning). Thread-safety: as
 * mm_model_save. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_save_mem(mm_model *m, void *buf, size_t cap, size_t *size,
                                          uint32_t flags);

/* Loads a model file from path and returns a finalized model, rebuilt with the caller's
 * options: alloc, max_batch, max_seq, n_threads and err_buf are honoured; input_dim is taken
 * from the file when 0 and must match it otherwise; seed is irrelevant (parameters come from
 * the file). A file without libmm metadata (plain PyTorch safetensors) loads when its
 * architecture metadata (tools/torch_io.py) is present or the architecture can be inferred
 * (an nn.Sequential of Linear / LayerNorm / RMSNorm layers only). Saved optimizer settings are
 * restored with mm_model_set_optimizer; saved optimizer state and step count too.
 *   out:  receives the model; NULL on failure.
 *   path: NUL-terminated file name; the file must end right after the data.
 *   opts: NULL (defaults) or options from mm_model_opts_init; err_buf receives the failure text.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL out or path, bad options or allocator), MM_E_IO
 * (cannot open or read, or path is not a regular file: a FIFO, device or directory is refused
 * without blocking), MM_E_FORMAT (malformed, truncated, inconsistent or corrupt file:
 * header length, JSON, dtype name, shape/offset mismatch, overlapping, out-of-range or gapped
 * offsets, duplicate or missing tensors, bad metadata, wrong checksum, an architecture the
 * tensors do not match or the builder refuses, step counts above 2^53, a workspace out of
 * proportion to the file's size; docs/FORMAT.md lists every bound), MM_E_NUMERIC (a NaN or
 * Inf parameter or optimizer state, a negative average of squares), MM_E_VERSION (file
 * format newer than this library, or newer opts with unknown fields set), MM_E_DTYPE (a
 * parameter stored in another dtype than F32), MM_E_SHAPE (opts.input_dim differs from the
 * file's), MM_E_NOMEM.
 * Allocates: the file's bytes while loading (freed before returning), then the model as
 * mm_model_create + mm_model_finalize (+ mm_model_set_optimizer) do. Thread-safety: always
 * safe (a new handle; distinct calls may run in parallel). Since: 0.1 */
MM_API MM_NODISCARD int mm_model_load(mm_model **out, const char *path, const mm_model_opts *opts);

/* As mm_model_load, from the size bytes at data (read only during the call; the buffer must
 * hold exactly one file, without trailing bytes). Returns as mm_model_load except MM_E_IO.
 * Allocates: as mm_model_load, without the copy of the file. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_load_mem(mm_model **out, const void *data, size_t size,
                                          const mm_model_opts *opts);

/* As mm_model_load, from a read callback: fn(ud, buf, n) is called until the file's last byte
 * has arrived, and never past it, so a model may be followed by other data in the same stream.
 * Memory grows with the bytes that actually arrive (a stream that announces a huge file but
 * ends early costs little). Returns as mm_model_load; MM_E_IO when fn returns a negative value
 * or more than n. Allocates: as mm_model_load. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_load_cb(mm_model **out, mm_read_fn fn, void *ud,
                                         const mm_model_opts *opts);

/* ---- mm_ssm ----------------------------------------------------------------------------------
 * State-space models: HiPPO matrices and discretisation (stateless), and the mm_ssm operator for
 * five kinds, each matching a reference implementation (docs/SSM.md has the formulas):
 *   MM_SSM_SELECTIVE  Mamba-1 selective scan (mamba_ssm selective_scan_ref): delta softplus and
 *                     bias, D skip, silu(z) gate, last state; mm_ssm_scan / _backward / _step.
 *   MM_SSM_SSD        Mamba-2 scalar-A-per-head SSD, chunked, with initial state; scan/step.
 *   MM_SSM_LRU        Linear Recurrent Unit (Orvieto et al. 2023): complex diagonal recurrence,
 *                     exponential parameterisation, gamma normalisation; scan/step.
 *   MM_SSM_S4D        diagonal S4 kernel (s4d.py): ZOH, Vandermonde, factor 2; mm_ssm_kernel,
 *                     mm_ssm_conv (FFT convolution) and their backwards; step (recurrence).
 *   MM_SSM_S4         DPLR S4 kernel from (Lambda, P, B, C~) via a Cauchy kernel at the roots of
 *                     unity and an inverse FFT; mm_ssm_kernel / _backward, mm_ssm_conv.
 * Complex numbers are stored as a trailing axis of 2 floats (re, im), as torch.view_as_real.
 * Hot calls (scan, backward, kernel, conv, step) never allocate; sizes beyond those reserved at
 * create (max_batch, max_seq, d_inner, d_state, ...) return MM_E_RANGE. Sums over a sequence or
 * a batch are accumulated in float64. A handle is used by one thread at a time. */
typedef struct mm_ssm mm_ssm;

/* Kinds (numbers never change). */
enum { MM_SSM_SELECTIVE = 1, MM_SSM_SSD = 2, MM_SSM_S4D = 3, MM_SSM_S4 = 4, MM_SSM_LRU = 5 };

/* HiPPO measures for mm_hippo (the state-spaces/s4 hippo.py `transition` conventions). */
enum { MM_HIPPO_LEGS = 1, MM_HIPPO_LEGT = 2, MM_HIPPO_LAGT = 3, MM_HIPPO_FOUT = 4 };

/* Discretisation methods for mm_ssm_discretize. */
enum {
    MM_DISC_FORWARD_EULER = 1,  /* Ad = I + dt A,              Bd = dt B */
    MM_DISC_BACKWARD_EULER = 2, /* Ad = (I - dt A)^-1,         Bd = dt (I - dt A)^-1 B */
    MM_DISC_BILINEAR = 3,       /* Ad = (I - dt/2 A)^-1 (I + dt/2 A), Bd = dt (I - dt/2 A)^-1 B */
    MM_DISC_ZOH = 4             /* Ad = exp(dt A),             Bd = A^-1 (exp(dt A) - I) B */
};

/* Flags of mm_ssm_discretize. */
enum {
    MM_DISC_DIAGONAL = 1 /* A is given as its diagonal (n values); closed forms per element */
};

/* Option flags (mm_ssm_opts.flags). */
enum {
    MM_SSM_DELTA_SOFTPLUS = 1 /* SELECTIVE, SSD: delta = softplus(delta + bias), threshold 20
                                 (set by mm_ssm_opts_init for both) */
};

/* S4D initialisations for mm_ssm_s4d_init (s4 dplr(): A = -1/2 + i imag). */
enum {
    MM_S4D_LIN = 1, /* imag_n = pi n */
    MM_S4D_INV = 2  /* imag_n = (N/pi) (N/(2n+1) - 1) */
};

/* Run-time parameters and statistics (mm_ssm_set_f64 / mm_ssm_get_f64; ids 200-299). */
enum {
    MM_SSM_CHUNK = 200,               /* read-only: SELECTIVE backward recomputation chunk / SSD
                                    chunk length (opts.chunk, capped at max_seq) */
    MM_SSM_DT_MIN = 201,              /* SSD: clamp of delta after softplus, lower [0], 0..1e3 */
    MM_SSM_DT_MAX = 202,              /* SSD: upper clamp [+inf = off: 1e300] */
    MM_SSM_STAT_POSITION = 250,       /* read-only: tokens consumed by mm_ssm_step since reset */
    MM_SSM_STAT_WORKSPACE_BYTES = 251 /* read-only: bytes reserved at create */
};

/* Writes the continuous-time HiPPO matrices of a measure (state-spaces/s4 hippo.py transition):
 *   LEGS: A_nk = -sqrt((2n+1)(2k+1)) (n > k), -(n+1) (n = k), 0 (n < k); B_n = sqrt(2n+1).
 *   LEGT: A_nk = -sqrt((2n+1)(2k+1))/2 * (1 if n >= k else (-1)^(n-k)); B_n = sqrt(2n+1)/2.
 *   LAGT: A = I/2 - tril(1) (A_nn = -1/2, A_nk = -1 for n > k); B_n = 1.
 *   FOUT: B_0 = 1, B_2m = sqrt 2, B_odd = 0; A = Omega - B B^T with Omega[2m,2m+1] = -pi m,
 *         Omega[2m+1,2m] = pi m (m >= 1). N must be even.
 *   n: state size, 1..4096.  a: n*n doubles (row-major A[n][k]).  b: n doubles (may be NULL).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL a, unknown measure), MM_E_RANGE (n; odd n for FOUT).
 * Allocates: nothing. Thread-safety: always safe. Since: 0.1 */
MM_API MM_NODISCARD int mm_hippo(int32_t measure, int64_t n, double *a, double *b);

/* Writes the low-rank correction P (rank x n doubles, row-major) of hippo.py rank_correction,
 * such that A + sum_r P_r P_r^T is the normal part (-I/2 + skew for LEGS, skew for the others):
 *   LEGS: P_n = sqrt(n + 1/2) (rank 1).  LEGT: rank 2, sqrt(2n+1)/sqrt 2, row 0 zero at even n,
 *   row 1 zero at odd n.  LAGT: P_n = sqrt(1/2).  FOUT: P = B. Rows beyond the natural rank are 0.
 *   normal: NULL, or n*n doubles receiving A + sum_r P_r P_r^T.
 * Returns as mm_hippo, plus MM_E_RANGE (rank < 1 or > 16). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_hippo_rank_correction(int32_t measure, int64_t n, int32_t rank,
                                                 double *p, double *normal);

/* Discretises x' = A x + B u with step dt (s4 transition.py GBT conventions; C, D unchanged):
 *   method: MM_DISC_*.  flags: 0 (A dense n x n row-major) or MM_DISC_DIAGONAL (A holds the n
 *   diagonal entries; ad receives n values).  a, b: inputs (b: n values, may be NULL with bd
 *   NULL).  ad, bd: outputs, same layout as a and b (bd may be NULL).
 *   Dense ZOH uses the matrix exponential of the block matrix dt [[A, B], [0, 0]] by scaling and
 *   squaring with a degree-13 Pade approximant (works for singular A); dense GBT methods solve
 *   with partial-pivoting LU. Diagonal ZOH uses Bd = expm1(dt a)/a * b (dt b where a = 0).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown method or flags), MM_E_RANGE (n outside
 * 1..4096, dt not finite or <= 0), MM_E_NUMERIC (singular I - alpha dt A, non-finite input),
 * MM_E_NOMEM. Allocates: dense only, O(n^2) doubles of scratch through alloc (NULL: malloc),
 * freed before returning. Thread-safety: always safe. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_discretize(int32_t method, uint32_t flags, int64_t n,
                                          const double *a, const double *b, double dt, double *ad,
                                          double *bd, const mm_allocator *alloc);

/* Construction options. Fields are only ever appended. Sizes per kind ([defaults]):
 *   SELECTIVE: d_inner = channels D, d_state = N (<= 256), n_groups = G of grouped B/C [1].
 *   SSD:       d_inner = heads H, head_dim = P, d_state = N, n_groups = G, chunk = Q [64].
 *   LRU:       d_inner = model width H, d_state = complex states N.
 *   S4D, S4:   d_inner = H, d_state = N (even; N/2 complex modes are stored).
 * max_seq bounds L of scan/kernel/conv calls; chunk is the SELECTIVE backward's recomputation
 * chunk [256] and the SSD chunk [64]. */
typedef struct mm_ssm_opts {
    uint32_t struct_size;      /* sizeof(mm_ssm_opts), set by mm_ssm_opts_init */
    uint32_t reserved0;        /* must be 0 */
    const mm_allocator *alloc; /* copied; NULL = aligned malloc/free */
    int32_t kind;              /* MM_SSM_*, set by mm_ssm_opts_init */
    int32_t n_threads;         /* > 1 starts a thread pool (SELECTIVE, SSD scans) [1] */
    int64_t d_inner;           /* see above [16] */
    int64_t d_state;           /* see above [SELECTIVE/LRU 16, SSD 16, S4D/S4 64] */
    int64_t head_dim;          /* SSD: P [16]; others ignore it */
    int64_t n_groups;          /* SELECTIVE, SSD: B/C groups G [1] */
    int64_t max_batch;         /* largest batch [1] */
    int64_t max_seq;           /* largest sequence length L [1024] */
    int64_t chunk;             /* see above */
    uint32_t flags;            /* MM_SSM_DELTA_SOFTPLUS */
    uint32_t reserved1;        /* must be 0 */
    uint64_t seed;             /* seed of mm_ssm_lru_init draws [0] */
    char *err_buf;             /* optional: receives mm_ssm_create's failure text */
    size_t err_buf_size;
} mm_ssm_opts;

/* Inputs of scan, step and kernel calls. Unused fields are NULL. struct_size first as for
 * options (set by mm_ssm_inputs_init); fields are only ever appended. Shapes per kind
 * (Bt batch, L length, G groups, "x2" a trailing complex axis):
 *   SELECTIVE: u [Bt,D,L], delta [Bt,D,L], A [D,N], B and C each [D,N] (constant),
 *              [Bt,N,L] (variable) or [Bt,G,N,L] (grouped: channel d uses group d/(D/G)),
 *              D [D] (optional), z [Bt,D,L] (optional), delta_bias [D] (optional).
 *   SSD:       u = x [Bt,L,H,P], delta = dt [Bt,L,H], A [H], B, C [Bt,L,G,N] (head h uses group
 *              h/(H/G)), D [H] (optional), delta_bias [H] (optional), init_state [Bt,H,P,N]
 *              (optional).
 *   LRU:       u [Bt,L,H], nu_log, theta_log, gamma_log [N], B [N,H,x2], C [H,N,x2], D [H].
 *   S4D:       log_dt [H], A_real = log_A_real [H,N/2], A_imag [H,N/2], C [H,N/2,x2],
 *              B [H,N/2,x2] (optional, default 1).
 *   S4:        log_dt [H], A = Lambda [H,N/2,x2], P [H,N/2,x2], B [H,N/2,x2], C = C~ [H,N/2,x2].
 *   (mm_ssm_kernel ignores u and D, so one struct can serve the kernel and the step.)
 * For mm_ssm_step the time axis is dropped: u [Bt,D] (SELECTIVE, S4D: [Bt,H]), B/C [Bt,N] or
 * [Bt,G,N] (SELECTIVE), SSD x [Bt,H,P], dt [Bt,H], B/C [Bt,G,N]; LRU u [Bt,H]. */
typedef struct mm_ssm_inputs {
    uint32_t struct_size;
    uint32_t reserved0;
    const mm_tensor *u, *delta, *A, *B, *C, *D, *z, *delta_bias, *init_state;
    const mm_tensor *log_dt, *A_real, *A_imag, *P;
    const mm_tensor *nu_log, *theta_log, *gamma_log;
} mm_ssm_inputs;

/* Gradients written by the backwards, named after the inputs (d<name>, same shape). NULL
 * fields are not computed. Parameter gradients of inputs shared across the batch are summed
 * over it. Overwritten, not accumulated. */
typedef struct mm_ssm_grads {
    uint32_t struct_size;
    uint32_t reserved0;
    mm_tensor *du, *ddelta, *dA, *dB, *dC, *dD, *dz, *ddelta_bias, *dinit_state;
    mm_tensor *dlog_dt, *dA_real, *dA_imag, *dP;
    mm_tensor *dnu_log, *dtheta_log, *dgamma_log;
} mm_ssm_grads;

/* Zero-fill in / g (every tensor NULL) and set struct_size. Return MM_OK or MM_E_INVALID_ARG
 * (NULL). Allocates: nothing. Since: 0.1 */
MM_API int mm_ssm_inputs_init(mm_ssm_inputs *in);
MM_API int mm_ssm_grads_init(mm_ssm_grads *g);

/* Fills o with the defaults of kind and struct_size = sizeof(mm_ssm_opts). Returns MM_OK or
 * MM_E_INVALID_ARG (o NULL, unknown kind; o untouched). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_opts_init(mm_ssm_opts *o, int32_t kind);

/* Creates an SSM handle and reserves every workspace of its kind for the sizes in opts.
 *   out:  receives the handle; NULL on failure.   opts: read during the call only.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, bad allocator, unknown kind, reserved fields non-zero,
 * unknown flags), MM_E_RANGE (sizes < 1 or too large, D not a multiple of G, odd N for
 * S4D/S4, n_threads outside 1..256, overflow), MM_E_VERSION, MM_E_NOMEM.
 * Allocates: the handle, the workspaces (SELECTIVE: O(Bt D N L/chunk + T Bt G N L + T (chunk N
 * + L)); SSD: O(Bt H P N L/chunk + T (Bt L G N + chunk P N)); S4D/S4: FFT buffers O(L + H N);
 * LRU: O(Bt N L); T = n_threads), the streaming state O(Bt D N), a thread pool if
 * n_threads > 1. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_create(mm_ssm **out, const mm_ssm_opts *opts);

/* Frees the handle and everything it allocated. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_ssm_free(mm_ssm *h);

/* Returns the detail text of the last failure on h ("" if none; "invalid handle" for NULL).
 * Valid until the next call on h. Allocates: nothing. Since: 0.1 */
MM_API const char *mm_ssm_errmsg(const mm_ssm *h);

/* Sequence scan (SELECTIVE, SSD, LRU), keeping what mm_ssm_scan_backward needs.
 *   SELECTIVE: delta' = softplus(delta + bias) (flag) ; x_t = exp(delta' A) x_{t-1} +
 *              delta' B_t u_t, x_{-1} = 0; y_t = C_t . x_t; out = (y + D u) silu(z).
 *   SSD:       S_t = exp(dt_t A_h) S_{t-1} + dt_t x_t B_t^T (S_{-1} = init_state or 0);
 *              y_t = S_t C_t + D x_t.
 *   LRU:       h_t = lambda h_{t-1} + (B e^gamma_log) u_t; y_t = Re(C h_t) + D u_t.
 *   out:        shaped as u.
 *   last_state: NULL or SELECTIVE [Bt,D,N], SSD [Bt,H,P,N], LRU [Bt,N,x2]: the final state.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL h/in/out or required input, wrong kind, inputs of
 * another kind, out or last_state sharing memory with an input or each other: since 0.2 any
 * overlap, not only the same data pointer; the text names the pair), MM_E_SHAPE (the text
 * names the shapes), MM_E_RANGE (beyond the reservation). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out,
                                    mm_tensor *last_state);

/* Backward of the last mm_ssm_scan on h, which must have run with the same inputs: given
 * dout (shaped as out), writes the gradients selected in g (a reverse-time scan; SELECTIVE
 * recomputes the forward inside chunks of MM_SSM_CHUNK steps from saved boundary states). The
 * final state gets no gradient (as mamba_ssm); SSD's init_state does.
 * Returns MM_OK, MM_E_INVALID_ARG (also: a gradient sharing memory with an input, dout or,
 * since 0.2, another gradient; since 0.2 any overlap, not only the same data pointer),
 * MM_E_STATE (no scan since create or since a failure, or a scan of other sizes), MM_E_SHAPE.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_scan_backward(mm_ssm *h, const mm_ssm_inputs *in,
                                             const mm_tensor *dout, mm_ssm_grads *g);

/* Convolution kernel K [H, L] of S4D (K_l = 2 Re sum_n C_n B_n (e^{dtA_n} - 1)/A_n e^{l dtA_n},
 * dt = e^log_dt, A = -e^log_A_real + i A_imag) or S4 (bilinear DPLR, generating function at the
 * L-th roots of unity, Cauchy kernel with a rank-1 Woodbury correction, inverse FFT).
 * L = dim 1 of k, <= max_seq; k shares no memory with an input. Returns as mm_ssm_scan.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k);

/* Backward of mm_ssm_kernel: given dk [H, L], writes dlog_dt, dA_real, dA_imag, dC, dB
 * (S4D) or dlog_dt, dA, dP, dB, dC (S4) as selected in g, none sharing memory with an input,
 * dk or another gradient (since 0.2 any overlap). Returns as mm_ssm_kernel.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in,
                                               const mm_tensor *dk, mm_ssm_grads *g);

/* Causal convolution y[b,h,t] = sum_{l<=t} k[h,l] u[b,h,t-l] + d[h] u[b,h,t] by float64 FFT
 * of the next power of two >= 2L (any L; zero-padded, so the circular convolution is the
 * linear one). u, y [Bt, H, L]; k [H, L]; d NULL or [H]. S4D and S4 handles. y must share no
 * memory with u, k or d (since 0.2 any overlap is MM_E_INVALID_ARG naming the pair; 0.1
 * refused only y == u). Returns as mm_ssm_scan. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_conv(mm_ssm *h, const mm_tensor *u, const mm_tensor *k,
                                    const mm_tensor *d, mm_tensor *y);

/* Backward of mm_ssm_conv: du [Bt,H,L], dk [H,L], dd [H] (each NULL: skipped), overwritten,
 * none sharing memory with u, k, d, dy or another (since 0.2: MM_E_INVALID_ARG naming the
 * pair). Returns as mm_ssm_scan. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_conv_backward(mm_ssm *h, const mm_tensor *u, const mm_tensor *k,
                                             const mm_tensor *d, const mm_tensor *dy, mm_tensor *du,
                                             mm_tensor *dk, mm_tensor *dd);

/* One decoding step with the state carried in h (SELECTIVE, SSD, LRU, S4D; S4 is not
 * supported in 0.1): the same math as one time step of the scan (S4D: ZOH recurrence
 * x = e^{dtA} x + B(e^{dtA}-1)/A u, y = 2 Re(C x) + D u). Inputs have no time axis (see
 * mm_ssm_inputs); batch rows 0..Bt-1 use state rows 0..Bt-1. out: shaped as u, sharing no
 * memory with an input (since 0.2: MM_E_INVALID_ARG naming the pair, and no step taken).
 * Neither out nor an input may lie in the streaming state (mm_ssm_state; since 0.2
 * MM_E_INVALID_ARG, no step taken: the state is updated row by row while later rows' inputs
 * are still read).
 * Returns as mm_ssm_scan (MM_E_UNSUPPORTED for S4). Cost independent of the position.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out);

/* Zeroes the streaming state and position. Returns MM_OK or MM_E_INVALID_ARG.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_reset(mm_ssm *h);

/* A view of the streaming state (max_batch rows; SELECTIVE [Bt,D,N], SSD [Bt,H,P,N], LRU
 * [Bt,N,x2], S4D [Bt,H,N/2,x2]) that may be read or written, e.g. to continue decoding from a
 * scan's last_state: a scan may write last_state straight into it, or read init_state from
 * it (the scans do not touch this state; tested bitwise against a copy since 0.2). A step's
 * inputs and out must lie outside it (mm_ssm_step). *n receives the float count (may be
 * NULL). Valid until mm_ssm_free.
 * Returns MM_OK or MM_E_INVALID_ARG. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_state(mm_ssm *h, float **data, int64_t *n);

/* Sets / reads a run-time parameter or statistic (MM_SSM_*). Returns MM_OK, MM_E_INVALID_ARG
 * (NULL), MM_E_UNSUPPORTED (unknown id, read-only id for set, id not used by this kind),
 * MM_E_RANGE (outside the bounds; value unchanged). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_set_f64(mm_ssm *h, int32_t id, double v);
MM_API MM_NODISCARD int mm_ssm_get_f64(const mm_ssm *h, int32_t id, double *v);

/* S4D deterministic initialisation (s4 SSMKernelDiag / s4d.py): log_a_real[h,n] = ln 1/2 and
 * a_imag[h,n] = pi n (MM_S4D_LIN) or (N/pi)(N/(2n+1) - 1) (MM_S4D_INV), n < N/2, for H rows.
 * Arrays hold H*N/2 floats. Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown variant),
 * MM_E_RANGE (H < 1, N < 2 or odd). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_s4d_init(int32_t variant, int64_t h, int64_t n, float *log_a_real,
                                        float *a_imag);

/* LRU initialisation (minimal-LRU) from h's RNG (an LRU handle of width H and N states):
 * nu_log = ln(-ln(u1 (r_max^2 - r_min^2) + r_min^2)/2), theta_log = ln(max_phase u2),
 * gamma_log = ln sqrt(1 - |lambda|^2), B [N,H,x2] parts ~ N(0, 1/(2H)), C [H,N,x2] parts
 * ~ N(0, 1/N), D [H] ~ N(0, 1). Any output may be NULL (not drawn, but the stream advances as
 * if it were). Requires 0 <= r_min < r_max <= 1, max_phase > 0.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL h, wrong kind), MM_E_RANGE. Allocates: nothing.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_ssm_lru_init(mm_ssm *h, double r_min, double r_max, double max_phase,
                                        float *nu_log, float *theta_log, float *gamma_log, float *b,
                                        float *c, float *d);

/* ---- mm_ssm model blocks (mm_model layers, see the mm_model section) ------------------------ */
/* Appends a Mamba block (mamba_ssm Mamba, bias-free in/out projections) on inputs
 * [B, T, d_model] (d_model = the previous layer's width; 2-D inputs are T = 1):
 *   xz = in_proj(x); x' = silu(causal depthwise conv1d(x-half, d_conv taps) + bias);
 *   [dt_low, B, C] = x_proj(x'); delta = dt_proj(dt_low) (+ its bias inside the softplus);
 *   y = selective_scan(x', delta, A = -exp(A_log), B, C, D, z-half); out = out_proj(y).
 *   d_state N (1..256, mamba: 16), d_conv (1..64, mamba: 4), expand (1..64, mamba: 2),
 *   dt_rank (0: ceil(d_model / 16)).
 * Init as mamba_ssm: default Linear/Conv1d, dt_proj.weight U(+-dt_rank^-1/2), dt_proj.bias the
 * inverse softplus of exp(U(ln 1e-3, ln 0.1)) (floor 1e-4), A_log = ln[1..N], D = 1. Tensors,
 * in PyTorch's state_dict order and names: "<i>.A_log" [E,N], "<i>.D", "<i>.in_proj.weight",
 * "<i>.conv1d.weight" [E,1,d_conv], "<i>.conv1d.bias", "<i>.x_proj.weight", "<i>.dt_proj.weight",
 * "<i>.dt_proj.bias", "<i>.out_proj.weight" (E = expand d_model). Backward and JVP are exact (the scan backward
 * recomputes chunks of 64 steps). Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_RANGE (sizes),
 * MM_E_STATE (finalized), MM_E_NOMEM. Allocates: the layer table may grow. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_mamba(mm_model *m, int64_t d_state, int64_t d_conv,
                                           int64_t expand, int64_t dt_rank);

/* Appends an S4D block (state-spaces/s4 models/s4/s4d.py S4D, transposed=False): on
 * [B, T, H], y = S4D-kernel(T) * u + D u (causal FFT convolution along T per channel),
 * a = GELU(y), out = GLU(Linear(H -> 2H)(a)) = z1 sigmoid(z2). d_state N (even, 2..4096,
 * N/2 complex modes). Init as s4d.py: log_dt U(ln dt_min, ln dt_max) with dt_min = 1e-3,
 * dt_max = 0.1, C complex N(0, 1/2) per part, log_A_real = ln 1/2, A_imag = pi n (S4D-Lin),
 * D N(0, 1), the output Linear as torch's Conv1d(H, 2H, 1). Tensors "<i>.D", "<i>.kernel.C"
 * [H,N/2,2], "<i>.kernel.log_dt", "<i>.kernel.log_A_real", "<i>.kernel.A_imag",
 * "<i>.output_linear.0.weight" [2H,H,1], "<i>.output_linear.0.bias". No dropout.
 * Returns as mm_model_add_mamba. Allocates: the layer table may grow. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_s4d(mm_model *m, int64_t d_state);

/* Token-by-token decoding of a finalized model whose layers are row-wise (dense, activations,
 * norms, embedding) or recurrent (Mamba, S4D); attention-type layers are refused. The caller
 * owns the recurrent state: mm_model_decode_state_size gives its bytes for batch rows (0 if
 * the model has no recurrent layer); zero it to start a sequence (as mamba's
 * allocate_inference_cache). mm_model_decode_step feeds one token per row:
 *   x: [batch, input_dim] (batch <= max_batch); y: [batch, output_dim];
 *   state: state_size bytes for this batch, 8-byte aligned, updated; may be NULL when that
 *   size is 0 (no recurrent layer).
 * A decoded step equals the same position of mm_model_forward on the whole sequence (up to
 * rounding). It clears the forward kept for mm_model_backward.
 * y shares no memory with x, nor state with either, nor y or state with the model's parameters
 * or gradients.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, misaligned or small state; since 0.2 y overlapping
 * x or state overlapping x or y, or either over the model's own buffers), MM_E_STATE (not
 * finalized), MM_E_SHAPE, MM_E_RANGE (batch),
 * MM_E_UNSUPPORTED (a layer without decoding).
 * Allocates: nothing. Cost per token independent of the position. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_decode_state_size(const mm_model *m, int64_t batch, size_t *bytes);
MM_API MM_NODISCARD int mm_model_decode_step(mm_model *m, const mm_tensor *x, mm_tensor *y,
                                             void *state, size_t state_bytes);

/* ---- mm_model generation: sampling and per-token log-probabilities ------------------------- */
/* What a language-model RL loop (Kimi k1.5, policy gradient) needs around mm_model_decode_step:
 * drawing tokens from the logits, and the log-probabilities of whole sampled sequences with
 * their gradient (docs/KIMI.md walks through the loop of examples/kimi_rl.c). */

/* Reseeds the model's RNG, the one mm_model_sample draws from (mm_model_finalize seeds it with
 * opts.seed and draws the initial parameters from it). The same seed and the same sequence of
 * calls give the same tokens. Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_STATE (not
 * finalized). Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_seed(mm_model *m, uint64_t seed);

/* Draws one token per row of logits (e.g. mm_model_decode_step's y) from the model's RNG:
 *   logits:      [n, V] or [V], V the model's output width; finite.
 *   temperature: 0 = greedy (the argmax, the lower index on a tie; top_k, top_p ignored, no
 *                random draw), else in [1e-6, 1e6]: softmax(logits / temperature).
 *   top_k:       0 = off, else keep only the top_k highest logits (ties ranked by lower index).
 *   top_p:       in (0, 1]; 1 = off, else keep the shortest run of best tokens whose mass under
 *                the (top-k truncated, renormalised) distribution reaches top_p (nucleus).
 *                Order as Hugging Face's warpers: temperature, then top-k, then top-p.
 *   tokens:      receives n token indices (n_tokens must be n).
 *   logp:        NULL or receives n values log softmax(logits)[token]: the model's own
 *                log-probability (temperature 1, untruncated), the log pi_old a policy update
 *                compares against.
 * Rows are drawn in order, one uniform number per row. Batched decoding of k samples per prompt:
 * give each prompt k rows of one mm_model_decode_step batch (state from
 * mm_model_decode_state_size for n_prompts * k rows) and sample all rows at once.
 * tokens and logp share no memory with logits or each other.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; tokens or logp overlapping logits or each other),
 * MM_E_STATE (not finalized), MM_E_SHAPE, MM_E_RANGE (temperature, top_k < 0, top_p),
 * MM_E_NUMERIC (non-finite logits; nothing written).
 * Allocates: nothing (candidates are ranked in the model's reserved buffers). Cost O(n V),
 * plus O(kept log V) per row when truncating. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_sample(mm_model *m, const mm_tensor *logits, double temperature,
                                        int64_t top_k, double top_p, int32_t *tokens,
                                        int64_t n_tokens, float *logp);

/* Per-token log-probabilities of given tokens under a model whose output is logits:
 * runs mm_model_forward on x and writes logp_r = log softmax(logits_r)[targets_r] for every
 * position r (row-major over x's leading axes), in float64 before rounding. It keeps the
 * forward for mm_model_logprob_backward (or mm_model_backward).
 *   x:       as in mm_model_forward (e.g. [B, T, 1] token ids for an embedding model).
 *   targets: B*T entries (n_targets must be B*T): the token whose probability is read at each
 *            position (for next-token prediction, the input shifted by one), or a negative
 *            value to skip the position (logp 0, no gradient: prompts, padding).
 *   logp:    B*T elements (any shape), overwritten; sharing no memory with x, targets or the
 *            model's parameters and gradients.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; logp overlapping x, targets or the model's own
 * buffers), MM_E_STATE (not
 * finalized), MM_E_SHAPE, MM_E_RANGE (beyond the reservation, a target >= the output width,
 * embedding index), MM_E_NUMERIC
 * (a non-finite log-probability; logp is then unspecified and no forward is kept).
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_logprob(mm_model *m, const mm_tensor *x, const int32_t *targets,
                                         int64_t n_targets, mm_tensor *logp);

/* Backward of mm_model_logprob: accumulates (+=) into the gradient buffer the gradient of
 * sum_r weights_r logp_r with respect to the parameters (frozen layers skipped), e.g. the
 * dLoss/dlogp of mm_loss_kimi spread over each response's tokens, then mm_model_step.
 *   targets: the same B*T targets as that mm_model_logprob (negative: no gradient).
 *   weights: B*T elements (any shape), finite.
 * The logits are those of the last forward, so no other forward, jvp or decode step may run in
 * between. Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_STATE (no forward kept), MM_E_SHAPE,
 * MM_E_RANGE (a target >= the output width), MM_E_NUMERIC (non-finite weights).
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_logprob_backward(mm_model *m, const int32_t *targets,
                                                  int64_t n_targets, const mm_tensor *weights);

/* ---- mm_attn -------------------------------------------------------------------------------- */
/* Attention on q [B, H, N, d], k [B, H, M, d], v [B, H, M, dv] -> out [B, H, N, dv], row-major
 * (docs/ATTENTION.md has every formula, its complexity and the reference it matches):
 *   MM_ATTN_SOFTMAX   exact softmax(scale q k^T) v, scale 1/sqrt(d); tiled online softmax
 *                     (flash-attention): neither forward nor backward forms N x M; backward
 *                     recomputes probabilities from the saved per-row log-sum-exp.
 *   MM_ATTN_LINEAR    phi(q)^T S / (phi(q) . z + eps) with phi = elu+1, relu or identity
 *                     ("Transformers are RNNs"; eps added after the dot product as
 *                     fast-transformers, default 1e-6); causal form carries an O(d dv) state.
 *   MM_ATTN_PERFORMER linear attention on FAVOR+ positive orthogonal random features (the
 *                     projection W [n_features, d] is drawn from the seed, readable and
 *                     settable; feature eps 1e-4 as performer-pytorch).
 *   MM_ATTN_RELU2     FLASH / GAU squared-ReLU attention: relu(q k^T / C)^2 v inside chunks of
 *                     C (one chunk = GAU's relu(q k^T / n)^2 v), linear across chunks.
 *   MM_ATTN_SPARSE    softmax attention under a Sparse Transformer mask (local band or
 *                     strided), causal; masked blocks are skipped.
 *   MM_ATTN_GATED     S_t = diag(a_t) S_{t-1} + k_t v_t^T, o_t = S_t^T (scale q_t), chunkwise
 *                     parallel: no decay (plain causal linear attention), RetNet's fixed
 *                     per-head decay, or data-dependent log-gates (GLA) via
 *                     mm_attn_forward_gated.
 *   MM_ATTN_RWKV6     RWKV-6 time mixing (ggml's rwkv_wkv6, fla's chunk_rwkv6):
 *                     o_t = scale r_t^T (S_{t-1} + diag(u) k_t v_t^T),
 *                     S_t = diag(exp w_t) S_{t-1} + k_t v_t^T, q plays r; data-dependent
 *                     per-key log-decays w and the per-head bonus u come from the call
 *                     (mm_attn_forward_rwkv6); causal, chunkwise parallel as GATED. Since: 0.2
 * Causal masks with N != M are bottom-right aligned (flash-attention): query i sits at key
 * position i + M - N and sees keys j <= i + M - N; a query that sees no key outputs 0.
 * Lifecycle: mm_attn_opts_init(&o, kind) -> set sizes -> mm_attn_create -> forward / backward
 * / step ... -> mm_attn_free. Every workspace (saved tensors for backward, streaming state,
 * KV cache) is reserved at create from max_batch, n_heads and max_seq: forward, backward and
 * step never allocate and return MM_E_RANGE beyond the reservation.
 * Thread-safety: one thread at a time per handle. */
typedef struct mm_attn mm_attn;

/* Attention kinds (numbers never change). */
enum {
    MM_ATTN_SOFTMAX = 1,
    MM_ATTN_LINEAR = 2,
    MM_ATTN_PERFORMER = 3,
    MM_ATTN_RELU2 = 4,
    MM_ATTN_SPARSE = 5,
    MM_ATTN_GATED = 6,
    MM_ATTN_RWKV6 = 7 /* Since: 0.2 */
};

/* Feature maps of MM_ATTN_LINEAR. */
enum {
    MM_FMAP_ELU1 = 1,    /* elu(x) + 1 (fast-transformers) */
    MM_FMAP_RELU = 2,    /* max(x, 0) */
    MM_FMAP_IDENTITY = 3 /* x (with normalize = 1 the denominator may vanish: see eps) */
};

/* Sparse patterns of MM_ATTN_SPARSE (openai/sparse_attention masks, i' = i + M - N):
 * LOCAL sees keys i' - window < j <= i'; STRIDED sees j <= i' with (i' - j) % stride == 0. */
enum { MM_SPARSE_LOCAL = 1, MM_SPARSE_STRIDED = 2 };

/* Gates of MM_ATTN_GATED with mm_attn_forward (mm_attn_forward_gated always takes its gates
 * from the call): NONE a_t = 1; RETNET a_t = gamma_h = 1 - 2^(-5-h) for head h. */
enum { MM_GATE_NONE = 0, MM_GATE_RETNET = 1 };

/* Run-time parameters (mm_attn_set_f64 / mm_attn_get_f64; bounds through mm_param_bounds). */
enum {
    MM_ATTN_SCALE = 100,       /* logit scale (SOFTMAX, SPARSE) or query scale (GATED,
                                  RWKV6) [1/sqrt(d); RWKV6 1], [1e-30, 1e6]; RELU2 ignores it
                                  (1/C scaling) */
    MM_ATTN_EPS = 101,         /* denominator eps of LINEAR [1e-6] and PERFORMER [0], [0, 1] */
    MM_ATTN_FEATURE_EPS = 102, /* PERFORMER feature eps [1e-4], [0, 1] */
    /* read-only statistics */
    MM_ATTN_STAT_POSITION = 150,       /* tokens fed to mm_attn_step since the last reset */
    MM_ATTN_STAT_WORKSPACE_BYTES = 151 /* bytes reserved at create */
};

/* Construction options. Fields are only ever appended. */
typedef struct mm_attn_opts {
    uint32_t struct_size;      /* sizeof(mm_attn_opts), set by mm_attn_opts_init */
    uint32_t reserved0;        /* must be 0 */
    const mm_allocator *alloc; /* copied; NULL = aligned malloc/free */
    int32_t kind;              /* MM_ATTN_* (set by mm_attn_opts_init) */
    int32_t feature_map;       /* LINEAR: MM_FMAP_* [MM_FMAP_ELU1] */
    int32_t causal;            /* 0 or 1 [0; SPARSE, GATED, RWKV6 1, and must stay 1] */
    int32_t normalize;         /* LINEAR: 1 divides by phi(q) . z + eps, 0 does not [1] */
    int64_t d_head;            /* d, width of q and k [64] */
    int64_t dv;                /* width of v and out [0 = d_head] */
    int64_t n_heads;           /* H [1] */
    int64_t max_batch;         /* largest B [1] */
    int64_t max_seq;           /* largest N and M [1024] */
    int64_t chunk;             /* RELU2 chunk C [256], >= 1; GATED, RWKV6 chunk [32], 1..1024 */
    int32_t sparse_pattern;    /* SPARSE: MM_SPARSE_* [MM_SPARSE_LOCAL] */
    int32_t gate;              /* GATED: MM_GATE_* [MM_GATE_NONE] */
    int64_t window;            /* SPARSE LOCAL band [128] */
    int64_t stride;            /* SPARSE STRIDED stride [128] */
    int64_t n_features;        /* PERFORMER m [0 = int(d ln d), 266 at d = 64] */
    uint64_t seed;             /* PERFORMER projection seed [0] */
    int32_t n_threads;         /* > 1 runs batch-heads on a thread pool [1] */
    int32_t reserved1;         /* must be 0 */
    char *err_buf;             /* optional: receives mm_attn_create's failure text */
    size_t err_buf_size;
} mm_attn_opts;

/* Fills o with the defaults of kind (above, in brackets) and struct_size.
 * Returns MM_OK, MM_E_INVALID_ARG (o NULL or unknown kind; o then holds SOFTMAX defaults).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_opts_init(mm_attn_opts *o, int32_t kind);

/* Creates an attention operator and reserves everything its calls need: saved tensors for
 * backward (max_batch x n_heads x max_seq rows), per-thread kernel workspaces, streaming state
 * (KV cache of max_seq tokens for SOFTMAX and SPARSE), and for PERFORMER the projection drawn
 * from seed.
 *   out:  receives the handle; NULL on failure.
 *   opts: read during the call; err_buf receives this call's failure text.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown kind / feature map / pattern / gate,
 * causal = 0 for SPARSE or GATED, reserved fields, bad allocator), MM_E_RANGE (sizes < 1;
 * d_head, dv, n_features > 65536; other sizes > 2^31; GATED chunk > 1024; n_threads > 256;
 * a reservation that overflows), MM_E_VERSION (newer opts with unknown fields set),
 * MM_E_NOMEM. Allocates: the handle, the workspaces above and a thread pool if n_threads > 1.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_create(mm_attn **out, const mm_attn_opts *opts);

/* Forward pass out = attention(q, k, v), saving what mm_attn_backward needs (copies of the
 * inputs, the output, per-row log-sum-exp or denominators, features).
 *   q [B, H, N, d], k [B, H, M, d], v [B, H, M, dv], out [B, H, N, dv] (caller-owned,
 *   overwritten); B <= max_batch, N, M <= max_seq. RELU2 with C < N or causal, and GATED,
 *   need N == M. GATED uses the handle's gate (none or RetNet decay). out may be q, k or v
 *   itself (the same data and size: computed in place) but must not overlap them otherwise.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; out overlapping an input without being it; since
 * 0.2), MM_E_SHAPE (the text names the shapes),
 * MM_E_RANGE (beyond the reservation), MM_E_STATE (an RWKV6 handle: mm_attn_forward_rwkv6).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_forward(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                        const mm_tensor *v, mm_tensor *out);

/* GATED forward with data-dependent log-gates g = log a_t <= 0: g [B, H, N] (one gate per
 * head and step: Simple GLA, Mamba-2) or [B, H, N, d] (one per key dimension: GLA). Returns
 * as mm_attn_forward, plus MM_E_STATE (not a GATED handle), MM_E_NUMERIC (a gate > 0, NaN or
 * Inf). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_forward_gated(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                              const mm_tensor *v, const mm_tensor *g,
                                              mm_tensor *out);

/* RWKV6 forward: q is the receptance r [B, H, N, d], k [B, H, N, d], v [B, H, N, dv],
 * w [B, H, N, d] the log-decays (the decay applied after step t is exp(w_t), so ggml's
 * time_decay is exp(w); RWKV-6 models compute w = -exp(raw)), u [H, d] the bonus (RWKV's
 * time_faaaa), out [B, H, N, dv]. The inputs, w and u are copied for mm_attn_backward and
 * mm_attn_backward_rwkv6 (the gradient of w comes back through dg).
 * Returns as mm_attn_forward, plus MM_E_STATE (not an RWKV6 handle), MM_E_NUMERIC (a w > 0,
 * NaN or Inf; a non-finite u). Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_attn_forward_rwkv6(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                              const mm_tensor *v, const mm_tensor *w,
                                              const mm_tensor *u, mm_tensor *out);

/* Backward of the last mm_attn_forward_rwkv6: mm_attn_backward's gradients (dq = dr, dk, dv,
 * dw shaped as w; any may be NULL) plus du [H, d] (summed over the batch; NULL allowed), none
 * sharing memory with dout or another. Returns as mm_attn_backward, plus MM_E_STATE when the
 * last forward was not RWKV6's.
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_attn_backward_rwkv6(mm_attn *h, const mm_tensor *dout, mm_tensor *dq,
                                               mm_tensor *dk, mm_tensor *dv, mm_tensor *dw,
                                               mm_tensor *du);

/* RWKV6 streaming: one token per batch-head, returning what mm_attn_forward_rwkv6 returns at
 * that position: q (r), k [B, H, d] (or [B, H, 1, d]), v [B, H, dv], w [B, H, d] (or
 * as q), u [H, d], out [B, H, dv] (same rank as q; sharing no memory with an input). Cost
 * O(d dv) per token. Returns as mm_attn_step, plus MM_E_STATE (not an RWKV6 handle), MM_E_NUMERIC (bad w or u).
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_attn_step_rwkv6(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                           const mm_tensor *v, const mm_tensor *w,
                                           const mm_tensor *u, mm_tensor *out);

/* Backward of the last successful forward: given dout [B, H, N, dv], writes dq, dk, dv
 * (shaped as q, k, v; any may be NULL when not needed) and, after mm_attn_forward_gated, dg
 * (shaped as g; NULL allowed). Gradients are with respect to the raw q and k (through feature
 * maps and scales). PERFORMER holds its stabilisers constant (as performer-pytorch detaches
 * them). dout and the gradients must not share memory with one another.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL h or dout; since 0.2 also two of dout, dq, dk, dv, dg
 * sharing memory), MM_E_STATE (no forward since create, reset or a failure), MM_E_SHAPE. A
 * refused call keeps the forward to differentiate. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_backward(mm_attn *h, const mm_tensor *dout, mm_tensor *dq,
                                         mm_tensor *dk, mm_tensor *dv, mm_tensor *dg);

/* Streaming: feeds one token per batch-head and returns what the causal forward returns at
 * that position (N = M = position + 1).
 *   q [B, H, d] (or [B, H, 1, d]), k [B, H, d], v [B, H, dv], out [B, H, dv] (same rank as q);
 *   g: GATED data-dependent gates [B, H] or [B, H, d] (NULL: the handle's gate); NULL for
 *   the other kinds. B <= max_batch and must stay the same until mm_attn_reset.
 * Cost per token: O(d dv) for LINEAR and GATED, O(n_features dv) for PERFORMER, O(C (d + dv))
 * for RELU2 (its current chunk), O(position) for SOFTMAX, O(window) for SPARSE LOCAL.
 * out must not share memory with q, k, v or g.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL; since 0.2 out sharing memory with an input),
 * MM_E_STATE (handle not causal; RWKV6: mm_attn_step_rwkv6),
 * MM_E_SHAPE, MM_E_RANGE (SOFTMAX / SPARSE beyond max_seq tokens).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_step(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                     const mm_tensor *v, const mm_tensor *g, mm_tensor *out);

/* Clears the streaming state (position 0) and forgets the saved forward. Returns MM_OK or
 * MM_E_INVALID_ARG. Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_reset(mm_attn *h);

/* PERFORMER: draws a new projection from the handle's RNG (the stream continues from create's
 * draw, so a sequence of redraws is reproducible from the seed); forgets the saved forward.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE (other kinds). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_redraw(mm_attn *h);

/* PERFORMER: copies the projection W [n_features, d_head] out of / into the handle (w must be
 * a tensor of exactly that shape). set refuses NaN / Inf (MM_E_NUMERIC) and forgets the saved
 * forward. Returns MM_OK, MM_E_INVALID_ARG, MM_E_STATE (other kinds), MM_E_SHAPE.
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_get_projection(const mm_attn *h, mm_tensor *w);
MM_API MM_NODISCARD int mm_attn_set_projection(mm_attn *h, const mm_tensor *w);

/* Sets / reads a run-time parameter (MM_ATTN_*). Setting one forgets the saved forward (its
 * backward would not match); streaming state is kept. Returns MM_OK, MM_E_INVALID_ARG (NULL),
 * MM_E_UNSUPPORTED (unknown or read-only id), MM_E_RANGE (outside the bounds; unchanged).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_attn_set_f64(mm_attn *h, int32_t id, double v);
MM_API MM_NODISCARD int mm_attn_get_f64(const mm_attn *h, int32_t id, double *v);

/* Returns the detail text of the last failure on h ("" if none; "invalid handle" for NULL).
 * Allocates: nothing. Since: 0.1 */
MM_API const char *mm_attn_errmsg(const mm_attn *h);

/* Frees the handle and everything it reserved. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_attn_free(mm_attn *h);

/* ---- attention blocks of mm_model (declared here with the attention they use) ---------------- */

/* Appends a pre-norm multi-head attention block, width D = the previous layer's output:
 *   y = x + Attn(q, k, v) W_out^T + b_out,   [q | k | v] = LN(x) W_in^T + b_in
 * with a non-affine LayerNorm (eps 1e-5; an affine one would fold into W_in, b_in) and the
 * attention of opts (any kind but MM_ATTN_RWKV6, whose w and u are call inputs; kind,
 * feature_map, causal, d_head, dv, n_heads, chunk, sparse_pattern, window, stride, gate,
 * n_features, seed; alloc, max_batch, max_seq, n_threads and err_buf are ignored: the
 * model's own apply). Inputs are [B, T, D] (a 2-D
 * input is T = 1). Tensors, in torch.nn.MultiheadAttention's layout: "<i>.in_proj_weight"
 * [H (2 d_head + dv), D] (q rows, then k, then v), "<i>.in_proj_bias", "<i>.out_proj.weight"
 * [D, H dv], "<i>.out_proj.bias"; init xavier-uniform in_proj, zero biases, U(+-1/sqrt(H dv))
 * out_proj. PERFORMER draws its projection from opts.seed at every forward (not a parameter).
 * Backward is exact; the JVP evaluates the attention densely (O(T^2) per head).
 * Returns MM_OK, MM_E_INVALID_ARG (NULL m, bad options), MM_E_RANGE (sizes; dv <= 1024),
 * MM_E_VERSION, MM_E_STATE (finalized), MM_E_NOMEM. Allocates: the layer table may grow.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_attention(mm_model *m, const mm_attn_opts *opts);

/* Appends a GAU block (Hua et al., "Transformer Quality in Linear Time"), width D:
 *   xn = LN(x) (non-affine),  [U | V | Z] = SiLU(xn W^T + b),  U, V [T, e], Z [T, s]
 *   q = Z * gamma_q + beta_q,  k = Z * gamma_k + beta_k   (per-dimension scale and offset)
 *   y = x + (U * A) W_o^T,    A = MM_ATTN_RELU2 attention of (q, k, V): relu(q k^T / T)^2 V
 *   (one chunk, non-causal), or FLASH mixed chunks of length chunk (causal or not).
 *   expansion: e (0 = 2 D);  qk_dim: s (0 = 128);  causal: 0 or 1;  chunk: >= 1 (0 = 256).
 * Tensors: "<i>.uvz.weight" [2e + s, D], "<i>.uvz.bias" [2e + s], "<i>.qk" [4, s] (gamma_q,
 * gamma_k, beta_q, beta_k; init gamma ~ N(0, 0.02^2), beta 0 as lucidrains' FLASH),
 * "<i>.out.weight" [D, e]. Returns and allocates as mm_model_add_attention, except that a
 * negative expansion, qk_dim or chunk gives MM_E_INVALID_ARG. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_add_gau(mm_model *m, int64_t expansion, int64_t qk_dim,
                                         int32_t causal, int64_t chunk);

/* Appends a pre-norm multi-head cross-attention block (BLIP's image-grounded text layer): the
 * model's tokens x [B, T, D] attend to context tokens ctx [B, M, ctx_dim] (e.g. image patches)
 * passed with mm_model_forward_ctx / mm_model_backward_ctx / mm_model_jvp_ctx:
 *   q = LN(x) W_q^T + b_q (LN non-affine, eps 1e-5),  [k | v] = ctx W_kv^T + b_kv,
 *   y = x + softmax(q_h k_h^T / sqrt(d_head)) v_h (heads concatenated) W_out^T + b_out.
 * No mask: every token sees all M context tokens. Value width is d_head.
 *   n_heads: 1..4096.  d_head: 1..1024.  ctx_dim: the context's last axis, 1..2^31 (every
 *   cross-attention layer of a model reads the same context, so they share ctx_dim).
 *   max_ctx: the largest M a call may pass, 1..2^31 (reserved at finalize).
 * Tensors (torch.nn.Linear layouts): "<i>.q_proj.weight" [H dk, D], "<i>.q_proj.bias",
 * "<i>.kv_proj.weight" [2 H dk, ctx_dim] (keys, then values), "<i>.kv_proj.bias",
 * "<i>.out_proj.weight" [D, H dk], "<i>.out_proj.bias" [D]; init as
 * torch.nn.MultiheadAttention (xavier-uniform projections, zero biases).
 * mm_model_forward, mm_model_jvp and mm_model_infer refuse a model with this layer
 * (MM_E_INVALID_ARG: no context); mm_model_decode_step returns MM_E_UNSUPPORTED.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_RANGE (sizes), MM_E_SHAPE (ctx_dim differs from
 * an earlier cross-attention layer), MM_E_STATE (finalized), MM_E_NOMEM.
 * Allocates: the layer table may grow. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_add_cross_attention(mm_model *m, int64_t n_heads, int64_t d_head,
                                                     int64_t ctx_dim, int64_t max_ctx);

/* mm_model_forward with context tokens for the cross-attention layers (copied: the caller may
 * reuse ctx after the call).
 *   x: [B, T, input_dim] (or [B, input_dim], [input_dim] with B = 1), as mm_model_forward.
 *   ctx: [B, M, ctx_dim], 1 <= M <= max_ctx of every cross-attention layer; NULL only for a
 *        model without cross-attention layers (then it is mm_model_forward).
 *   y: as mm_model_forward; y may also overlap ctx, whole or in part (the layers keep their
 *      own copy of ctx and y is written last: since 0.2 tested bitwise, with the following
 *      mm_model_backward_ctx).
 * Returns as mm_model_forward, plus MM_E_INVALID_ARG (ctx NULL although the model has
 * cross-attention layers, or ctx given to a model without any), MM_E_SHAPE (ctx not [B, M,
 * ctx_dim]), MM_E_RANGE (M > max_ctx). Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_forward_ctx(mm_model *m, const mm_tensor *x, const mm_tensor *ctx,
                                             mm_tensor *y);

/* mm_model_backward that can also return the context gradient.
 *   dy, dx: as mm_model_backward.
 *   dctx: NULL, or [B, M, ctx_dim] as the last forward's ctx: receives dL/dctx (overwritten;
 *         the sum over all cross-attention layers).
 * Returns as mm_model_backward, plus MM_E_STATE (dctx given but the last forward had no
 * context), MM_E_SHAPE (dctx), MM_E_INVALID_ARG (dctx sharing memory with dx or dy; since
 * 0.2 any overlap).
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_backward_ctx(mm_model *m, const mm_tensor *dy, mm_tensor *dx,
                                              mm_tensor *dctx);

/* mm_model_jvp with context tokens: the derivative along the parameter direction v with the
 * context held fixed (its tangent is zero). Arguments as mm_model_jvp plus ctx as in
 * mm_model_forward_ctx; it counts as the forward for a following mm_model_backward(_ctx). y
 * and jy share no memory with ctx (nor v, nor each other).
 * Returns as mm_model_forward_ctx and mm_model_jvp. Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_model_jvp_ctx(mm_model *m, const mm_tensor *x, const mm_tensor *ctx,
                                         const mm_tensor *v, mm_tensor *y, mm_tensor *jy);

/* ---- mm_policy ------------------------------------------------------------------------------ */
/* Reinforcement-learning agents built from mm_models: DDPG and TD3 (off-policy, replay buffer,
 * continuous actions), A2C, PPO and TRPO (on-policy rollouts, continuous or discrete) and QAC
 * (on-policy, discrete actions only: continuous QAC is refused with MM_E_INVALID_ARG).
 * Defaults, formulas and sources are in docs/RL.md. Lifecycle:
 *   mm_policy_opts_init(&o, MM_ALGO_*) -> set obs_dim, action space, n_agents ... ->
 *   mm_policy_create -> loop { mm_policy_act; env step; mm_policy_observe; mm_policy_update
 *   (or mm_policy_update_budget to spread an update over frames) } -> mm_policy_save /
 *   mm_policy_load -> mm_policy_free.
 * One call handles n agents (rows of obs / actions), e.g. 64 NPCs of a game or n copies of an
 * environment. Continuous actions are given and returned in the environment's units (bounds in
 * the options; internally the off-policy actor works in [-1, 1]); discrete actions are exact
 * float indices 0 .. n_actions-1. terminated = a true end (no bootstrap); truncated = a time
 * limit or any other cut (the value of next_obs is bootstrapped), as Stable-Baselines3.
 * act, observe and update never allocate (everything is reserved by create).
 * Thread-safety: a policy is a mutable handle (one thread at a time). */
typedef struct mm_policy mm_policy;

/* Algorithms (numbers never change). */
enum {
    MM_ALGO_DDPG = 1, /* deep deterministic policy gradient (SB3 >= 2.3 defaults) */
    MM_ALGO_TD3 = 2,  /* twin delayed DDPG (SB3 defaults) */
    MM_ALGO_A2C = 3,  /* advantage actor-critic (SB3 defaults: RMSprop, n_steps 5) */
    MM_ALGO_QAC = 4,  /* Q actor-critic (Zhao, Alg. 10.1), batched like A2C */
    MM_ALGO_PPO = 5,  /* proximal policy optimisation, clipped (SB3 defaults) */
    MM_ALGO_TRPO = 6, /* trust region policy optimisation (sb3-contrib defaults) */
    MM_ALGO_SAC = 7   /* soft actor-critic (Haarnoja et al. 2018 v2; SB3 defaults); with
                         n_actions > 0 discrete SAC (Christodoulou 2019). Since: 0.2 */
};

/* Exploration noise of DDPG / TD3 (added in the [-1, 1] action space). */
enum {
    MM_NOISE_NONE = 0,
    MM_NOISE_GAUSSIAN = 1, /* N(0, noise_sigma^2) per step and dimension */
    MM_NOISE_OU = 2        /* Ornstein-Uhlenbeck (noise_theta, noise_sigma, noise_dt), reset
                              when the agent's episode ends */
};

/* Memory cores of mm_policy_opts.memory (numbers never change; docs/RL.md "Memory"). */
enum {
    MM_MEMORY_NONE = 0, /* memoryless: the networks see the observation only */
    MM_MEMORY_LRU = 1   /* a Linear Recurrent Unit (libmm's MM_SSM_LRU recurrence) of
                           memory_dim channels and memory_dim complex states on a linear
                           encoding of the observation; actor and value net see
                           [observation, tanh(LRU output)]. PPO only. Since: 0.2 */
};

/* Run-time parameters (mm_policy_set_f64 / mm_policy_get_f64; bounds via mm_param_bounds). */
enum {
    MM_POLICY_LR_ACTOR = 300,      /* actor / policy learning rate */
    MM_POLICY_LR_CRITIC = 301,     /* critic / value learning rate (A2C, PPO: same network
                                     optimizer, this one is used for the value net) */
    MM_POLICY_GAMMA = 302,         /* discount */
    MM_POLICY_TAU = 303,           /* Polyak coefficient of the targets (DDPG, TD3) */
    MM_POLICY_NOISE_SIGMA = 304,   /* exploration noise std (DDPG, TD3) */
    MM_POLICY_ENT_COEF = 305,      /* entropy bonus (A2C, QAC, PPO); SAC: alpha when not tuned */
    MM_POLICY_CLIP_RANGE = 306,    /* PPO ratio clip */
    MM_POLICY_TARGET_KL = 307,     /* TRPO trust region delta */
    MM_POLICY_VF_COEF = 308,       /* value loss weight (A2C, PPO) */
    MM_POLICY_MAX_GRAD_NORM = 309, /* global gradient clipping, 0 = off */
    MM_POLICY_CG_DAMPING = 310,    /* TRPO damping */
    /* read-only statistics of the last update */
    MM_POLICY_STAT_ACTOR_LOSS = 350,
    MM_POLICY_STAT_CRITIC_LOSS = 351,
    MM_POLICY_STAT_KL = 352,            /* PPO approx. KL, TRPO accepted KL */
    MM_POLICY_STAT_ENTROPY = 353,       /* mean policy entropy */
    MM_POLICY_STAT_EXPLAINED_VAR = 354, /* 1 - Var(R - V) / Var(R) of the rollout */
    MM_POLICY_STAT_UPDATES = 355,       /* gradient updates so far (stop at 2^53) */
    MM_POLICY_STAT_STEPS = 356,         /* transitions observed so far (stop at 2^53) */
    MM_POLICY_STAT_CLIP_FRACTION = 357, /* PPO: fraction of clipped ratios */
    MM_POLICY_STAT_LS_STEPS = 358,      /* TRPO: backtracking steps of the last line search
                                           (-1: no step accepted) */
    MM_POLICY_STAT_Q_MEAN = 359,        /* DDPG/TD3/QAC/SAC: mean Q of the last critic batch */
    MM_POLICY_STAT_EPOCHS = 360,        /* PPO/A2C: epochs begun by the last update (fewer
                                           than n_epochs after a target_kl stop). Since 0.2 */
    MM_POLICY_STAT_UPDATING = 361,      /* 1 while an update spread by mm_policy_update_budget
                                           has work left, else 0. Since 0.2 */
    MM_POLICY_STAT_RETURN_STD = 362,    /* norm_reward: sqrt(var + 1e-8) of the discounted
                                           returns. Since 0.2 */
    MM_POLICY_STAT_ENT_COEF = 363       /* SAC: the entropy temperature alpha now (Since: 0.2) */
};

/* Construction options; mm_policy_opts_init fills the published defaults of an algorithm
 * (in brackets: DDPG/TD3 | A2C | PPO | TRPO | QAC; docs/RL.md says where each comes from;
 * SAC: the TD3 values except hidden 256,256, lr_actor = lr_critic = 3e-4, ent_coef 1).
 * Fields are only ever appended. */
typedef struct mm_policy_opts {
    uint32_t struct_size;      /* sizeof(mm_policy_opts), set by mm_policy_opts_init */
    uint32_t reserved0;        /* must be 0 */
    const mm_allocator *alloc; /* copied; NULL = aligned malloc/free */
    int32_t algo;              /* MM_ALGO_* (set by opts_init) */
    int32_t n_threads;         /* threads of the networks: GEMMs, twin critics at once [1] */
    uint64_t seed;             /* initialisation, exploration and sampling [0] */
    /* spaces */
    int64_t obs_dim;       /* observation width, >= 1 (required) */
    int64_t act_dim;       /* continuous action width (n_actions == 0) [1] */
    int64_t n_actions;     /* > 0: discrete actions 0..n_actions-1 (not DDPG/TD3) [0] */
    const float *act_low;  /* continuous bounds, act_dim floats each (copied at create); */
    const float *act_high; /* NULL = [-1, 1]. Finite, low < high. */
    int64_t n_agents;      /* agents per act/observe call; on-policy: exactly this many,
                                   each a column of the rollout [1] */
    /* networks: hidden[0..n_hidden) units with activation, for actor and critic alike */
    int32_t n_hidden;   /* 1..4 [2] */
    int32_t activation; /* MM_ACT_* [RELU | TANH] */
    int64_t hidden[4];  /* [400,300 | 64,64] */
    /* common */
    double gamma;         /* [0.99] */
    double lr_actor;      /* [1e-3 | 7e-4 | 3e-4 | 1e-3 (critic only; the actor moves by
                                   the natural step) | 7e-4] */
    double lr_critic;     /* [1e-3 | = lr_actor] */
    double max_grad_norm; /* [0 | 0.5 | 0.5 | 0 | 0.5] */
    int32_t norm_obs;     /* running observation normalisation [0] */
    int32_t reserved1;    /* must be 0 */
    double clip_obs;      /* clip of normalised observations, finite > 0 [10] */
    /* off-policy (DDPG, TD3) */
    int64_t buffer_size;      /* replay capacity in transitions [1000000] */
    int64_t batch_size;       /* [256 | - | 64 | 128 | -]: PPO/TRPO minibatch */
    int64_t learning_starts;  /* transitions with uniform random actions first [100] */
    int64_t train_freq;       /* train every train_freq observe calls [1] */
    int64_t gradient_steps;   /* updates per training round [1] */
    double tau;               /* Polyak coefficient [0.005] */
    int32_t noise;            /* MM_NOISE_* [GAUSSIAN] */
    int32_t policy_delay;     /* [1 | 2] */
    double noise_sigma;       /* [0.1] */
    double noise_theta;       /* OU mean reversion [0.15] */
    double noise_dt;          /* OU time step [0.01, SB3]; sigma, theta, dt finite */
    double target_noise;      /* TD3 target smoothing std [0 | 0.2] */
    double target_noise_clip; /* [0 | 0.5] */
    int32_t n_critics;        /* [1 | 2] */
    int32_t n_epochs;         /* PPO epochs [10]; TRPO critic epochs [10] */
    /* on-policy (A2C, QAC, PPO, TRPO) */
    int64_t n_steps;             /* rollout length per agent [- | 5 | 2048 | 2048 | 5] */
    double gae_lambda;           /* [- | 1.0 | 0.95 | 0.95 | -] */
    double ent_coef;             /* [0; SAC 1.0: alpha, see the SAC block] */
    double vf_coef;              /* [0.5] */
    double clip_range;           /* PPO [0.2] */
    double clip_range_vf;        /* PPO value clipping, 0 = off [0] */
    int32_t normalize_advantage; /* [0 | 0 | 1 | 1 | 0] (unbiased std, as SB3) */
    int32_t use_rmsprop;         /* A2C/QAC: RMSprop(0.99, 1e-5) instead of Adam [1 for A2C] */
    double log_std_init;         /* Gaussian log std [0], in [-20, 20] */
    double adam_eps;             /* on-policy Adam eps [1e-5] */
    int64_t linear_decay_steps;  /* > 0: lr and PPO clip decay linearly to 0 over this many
                                   transitions (ZOO "lin_" schedules) [0] */
    /* TRPO */
    double target_kl;     /* [0.01] */
    double cg_damping;    /* [0.1] */
    int32_t cg_max_steps; /* [15] */
    int32_t ls_max_iter;  /* [10] */
    double ls_decay;      /* [0.8] */
    char *err_buf;        /* optional: receives mm_policy_create's failure text */
    size_t err_buf_size;
    /* since 0.2 (docs/RL.md "Reward normalisation", "Schedules", "target_kl") */
    int32_t norm_reward;      /* 1: rewards divided by the running std of each agent's
                                   discounted return and clipped to +-clip_reward (SB3
                                   VecNormalize; off-policy: the replay keeps raw rewards and
                                   batches are scaled with the current statistics); 2: the same
                                   with an outlier guard (a reward enters the return statistics
                                   clipped to +-clip_reward of their std) [0] */
    int32_t reserved2;        /* must be 0 */
    double clip_reward;       /* clip of normalised rewards, > 0 [10] */
    double ppo_target_kl;     /* PPO: > 0 stops the epochs at the first minibatch whose
                                   approx. KL exceeds 1.5 x this (that minibatch is not
                                   applied; SB3 target_kl); 0 = off [0] */
    int64_t lr_decay_steps;   /* learning rates: > 0 decay linearly to 0 over this many
                                   transitions, -1 constant, 0 follow linear_decay_steps [0] */
    int64_t clip_decay_steps; /* PPO clip range: the same choices [0] */
    /* SAC (Since: 0.2). ent_coef above is SAC's temperature alpha: its initial value when
       ent_auto is 1, the fixed value when 0 [1.0; must be > 0]. The other off-policy fields
       (buffer_size ... tau, n_critics) apply as for TD3; noise and policy_delay are unused.
       n_actions > 0 selects discrete SAC (docs/RL.md): the actor emits n_actions logits and
       each critic Q(s, .) for every action. */
    int32_t ent_auto;               /* tune log alpha by Adam toward target_entropy (SB3
                                   ent_coef="auto") [1] */
    int32_t target_update_interval; /* Polyak update of the critic targets every k gradient
                                   steps [1] */
    double target_entropy;          /* NaN = -act_dim (SB3 "auto"); discrete SAC:
                                   0.89 log(n_actions) (CleanRL sac_atari) [NaN] */
    double lr_alpha;                /* Adam learning rate of log alpha [3e-4] */
    /* memory (Since: 0.2; docs/RL.md "Memory"). With a memory core each agent carries a
       recurrent state across mm_policy_act calls: every act advances the state of agents
       0..n-1 by one step; observe resets agent i's state when its episode ended (terminated or
       truncated); mm_policy_reset_agent resets it by hand. PPO trains the core by
       backpropagation through time over rollout segments of memory_seq_len steps that start
       from the states stored while acting. */
    int32_t memory;         /* MM_MEMORY_* [NONE] */
    int32_t reserved3;      /* must be 0 */
    int64_t memory_dim;     /* channels = complex states of the core, 1..1024 [16] */
    int64_t memory_seq_len; /* BPTT segment length in steps, 1..n_steps; PPO minibatches
                                   hold max(1, batch_size / memory_seq_len) segments [16] */
    /* generalized State-Dependent Exploration (Since: 0.2; docs/RL.md "gSDE"; continuous A2C
       and PPO, with or without memory). The exploring action is mean + phi(s) . W_i, phi the
       actor's last hidden features, W_i [F x act_dim] drawn per agent from N(0, sigma^2) with
       sigma = exp(log_std), a learned [F x act_dim] matrix started at log_std_init; the action's
       Gaussian has variance sum_j phi_j^2 sigma_jk^2 + 1e-6 (phi detached from its gradient,
       SB3's learn_features=False, full_std=True). */
    int32_t use_sde;         /* 1: gSDE instead of the state-independent Gaussian [0] */
    int32_t sde_sample_freq; /* W_i is drawn afresh every sde_sample_freq exploring acts of
                                agent i (>= 1), or -1: only when a rollout or the agent's
                                episode starts (SB3's -1); it is always drawn then [-1] */
} mm_policy_opts;

/* Fills o with the published defaults of algo (MM_ALGO_*) and struct_size.
 * Returns MM_OK or MM_E_INVALID_ARG (o NULL, unknown algo). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_opts_init(mm_policy_opts *o, int32_t algo);

/* Creates an agent: networks (initialised from opts.seed), optimizers, targets, the replay or
 * rollout buffer and every work buffer act/observe/update need.
 *   out:  receives the handle; NULL on failure.  opts: read during the call only.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL, bad sizes or settings, discrete DDPG/TD3, bounds not
 * finite or low >= high), MM_E_VERSION, MM_E_RANGE (sizes overflow), MM_E_NOMEM.
 * Allocates: everything the agent will ever use. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_create(mm_policy **out, const mm_policy_opts *opts);

/* Chooses actions for n agents: obs [n, obs_dim] row-major -> actions [n, act_dim] (discrete:
 * [n] float indices). explore = 1 samples (on-policy, SAC: tanh of a Gaussian sample, discrete
 * SAC: the categorical) or adds noise (DDPG, TD3), with uniform random actions before
 * learning_starts (off-policy); 0 is the deterministic policy (mean, argmax; SAC: tanh(mean)).
 * n in 1..n_agents. actions may be obs itself or overlap it (obs is read into the policy's own
 * rows before an action is written; tested since 0.2).
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_RANGE (n), MM_E_NUMERIC (NaN/Inf in
 * obs, in the actor's output or in a memory core's step: parameters that overflow; no action
 * written, the agents' memory left as it was). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_act(mm_policy *p, const float *obs, int64_t n, float *actions,
                                      int32_t explore);

/* Starts agent i's memory afresh (zero recurrent state), as observe does when the agent's
 * episode ends: for hosts that reset an environment outside the act/observe loop (an
 * evaluation episode, a respawned NPC). A policy without memory has nothing to reset.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL p), MM_E_RANGE (i outside 0..n_agents-1).
 * Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_reset_agent(mm_policy *p, int64_t i);

/* Records n transitions (rows): obs, the actions taken (as returned by act, or any valid
 * action), rewards [n], next_obs (the TRUE last observation when the episode ended, not the
 * reset one), terminated [n] and truncated [n] (0/1). Updates the observation statistics when
 * norm_obs is set. On-policy algorithms need n == n_agents. Refuses NaN/Inf in obs, rewards,
 * actions or next_obs with MM_E_NUMERIC and stores nothing. Returns MM_OK, MM_E_INVALID_ARG,
 * MM_E_RANGE (n; discrete action out of range), MM_E_SHAPE (on-policy n != n_agents),
 * MM_E_STATE (on-policy: rollout full, call mm_policy_update; an update spread by
 * mm_policy_update_budget still has work left; or an agent's action is not what its last
 * exploring act returned and that act replaced an unobserved sample - a deterministic act in
 * between is harmless; with a memory core: an agent that has not acted since its last
 * observe), MM_E_NUMERIC. With norm_reward, rewards are scaled (docs/RL.md).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_observe(mm_policy *p, const float *obs, const float *actions,
                                          const float *rewards, const float *next_obs,
                                          const uint8_t *terminated, const uint8_t *truncated,
                                          int64_t n);

/* Trains when it is time: off-policy after learning_starts every train_freq observe calls
 * (gradient_steps updates); on-policy when the rollout holds n_steps observe calls (one
 * algorithm update, then the rollout restarts). *did_update (optional) = 1 if it trained.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_NUMERIC (a non-finite gradient or loss: the networks
 * are left as before that step). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_update(mm_policy *p, int32_t *did_update);

/* Frame-bounded training: does the work mm_policy_update would do, at most max_minibatches
 * units per call, continuing where the previous call stopped. A unit is one PPO/A2C minibatch
 * step, one DDPG/TD3 gradient step, or a whole QAC or TRPO update. Running the calls back to
 * back gives the same networks, statistics and random stream as one mm_policy_update, bit for
 * bit; mm_policy_update called while work is left finishes it.
 * While an on-policy update has work left (MM_POLICY_STAT_UPDATING = 1):
 *   - mm_policy_act uses the actor as it was when the update began (a copy made at create) and
 *     its own random stream, so acting between calls changes neither the update nor the
 *     actions' consistency; the new actor takes over when the update completes;
 *   - mm_policy_observe refuses with MM_E_STATE (the rollout is being trained on); skip
 *     recording those frames.
 * Off-policy: the remaining gradient steps stay pending; act (own random stream meanwhile) and
 * observe may run between calls (transitions observed meanwhile may be sampled by the
 * remaining steps, unlike one mm_policy_update before them).
 *   max_minibatches: >= 1.  done (optional): 1 when no update work is left after this call.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL p, max_minibatches < 1), MM_E_UNSUPPORTED (a policy
 * with a memory core: use mm_policy_update), and mm_policy_update's failures (the update then
 * ends and the rollout restarts). Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_update_budget(mm_policy *p, int64_t max_minibatches,
                                                int32_t *done);

/* Sets / reads a run-time parameter or statistic (MM_POLICY_*). Returns MM_OK,
 * MM_E_INVALID_ARG, MM_E_UNSUPPORTED (unknown id, read-only id for set), MM_E_RANGE (outside
 * bounds; unchanged). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_set_f64(mm_policy *p, int32_t id, double v);
MM_API MM_NODISCARD int mm_policy_get_f64(const mm_policy *p, int32_t id, double *v);

/* Saves the agent as safetensors at path, atomically: every network (actor, critics, targets,
 * value net, log std; "actor.0.weight", ...), the observation statistics and, in the metadata,
 * the algorithm and sizes. Replay/rollout contents and optimizer state are not saved (see
 * mm_policy_save_ex for a full checkpoint). A path
 * that is a symbolic link replaces the file the link names, as mm_model_save does.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_IO, MM_E_NOMEM. Allocates: a temporary header.
 * Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_save(mm_policy *p, const char *path);

/* Loads a file written by mm_policy_save into p, which must have been created with the same
 * algorithm, spaces and network sizes. Everything is validated before anything is changed.
 * Since 0.2 a checkpoint (mm_policy_save_ex) also restores the training state, and files
 * written by 0.1 still load; the action bounds stay those of p's options.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_IO (cannot read, or not a regular file: refused
 * without blocking), MM_E_FORMAT (malformed, checksum, other architecture), MM_E_NUMERIC (a
 * NaN or Inf weight or statistic, a negative observation variance or count), MM_E_NOMEM.
 * Allocates: the file while it is read. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_load(mm_policy *p, const char *path);

/* ---- mm_policy files in memory, checkpoints, export (Since: 0.2) ------------------------------
 * A policy file (docs/FORMAT.md "Policy files") is safetensors with metadata format
 * "libmm-policy", format_version "1.0", algo by name ("td3"), the sizes, and a CRC32. A weights
 * file holds the networks, the observation statistics and the action bounds; a checkpoint
 * (MM_POLICY_SAVE_CHECKPOINT) also holds the training state: replay or rollout contents, every
 * optimizer's state and step counts, the random stream, counters (steps, updates, pending
 * gradient steps, which drive the warm-up and the linear schedule), OU noise state, the last
 * act's raw samples, the reward normaliser, the run-time parameters and statistics. It is
 * taken between updates: while mm_policy_update_budget has work left, saving one returns
 * MM_E_STATE. Loading a checkpoint into a
 * policy created with the same options and continuing reproduces the uninterrupted run bit for
 * bit. Every loader accepts both kinds (and 0.1 files) and validates everything before it
 * changes anything. mm_model_load refuses policy files with MM_E_FORMAT and says so. */

/* Flags of mm_policy_save_ex / mm_policy_save_mem. */
enum {
    MM_POLICY_SAVE_CHECKPOINT = 1 /* also store the full training state (see above) */
};

/* As mm_policy_save (atomic, rank 0 only under a communicator), with flags 0 or
 * MM_POLICY_SAVE_CHECKPOINT. Returns MM_OK, MM_E_INVALID_ARG (NULL, unknown flags), MM_E_IO,
 * MM_E_NOMEM, MM_E_STATE (a checkpoint while a budgeted update has work left). Allocates: the header, a tensor table and, for a checkpoint, one serialised
 * copy of each network with an optimizer (all freed before returning). Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_save_ex(mm_policy *p, const char *path, uint32_t flags);

/* Writes the bytes mm_policy_save_ex would write into buf[0..cap).
 *   buf:  destination, or NULL to query the size only.
 *   size: NULL, or receives the file's size (also when cap is too small); not inside
 *         buf[0..cap).
 * Returns MM_OK, MM_E_INVALID_ARG (p NULL, buf and size both NULL, unknown flags; size inside
 * buf), MM_E_BUFFER_TOO_SMALL (cap < size; nothing written), MM_E_NOMEM. Allocates: as
 * mm_policy_save_ex. Writes on every rank. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_save_mem(mm_policy *p, void *buf, size_t cap, size_t *size,
                                           uint32_t flags);

/* As mm_policy_load, from the size bytes at data (read only during the call; exactly one file,
 * no trailing bytes). Returns as mm_policy_load except MM_E_IO. Allocates: the parsed header
 * and, for a checkpoint, a temporary model per optimizer (freed before returning). Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_load_mem(mm_policy *p, const void *data, size_t size);

/* As mm_policy_load, from a read callback (mm_read_fn); nothing past the file's last byte is
 * read. Returns as mm_policy_load; MM_E_IO when fn fails. Allocates: the bytes that arrive,
 * as mm_policy_load_mem. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_load_cb(mm_policy *p, mm_read_fn fn, void *ud);

/* Creates a policy from a file, as mm_model_load creates a model: the algorithm, spaces,
 * network sizes, activation, action bounds, norm_obs and clip_obs come from the file; the
 * other options (learning rates, buffer sizes, n_agents, seed, alloc, err_buf, ...) from opts,
 * or the published defaults of the file's algorithm when opts is NULL. A checkpoint needs the
 * buffer_size, n_agents and n_steps it was taken with.
 *   out:  receives the policy; NULL on failure.
 *   opts: NULL, or from mm_policy_opts_init for the file's algorithm.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL out/path, bad opts), MM_E_IO, MM_E_FORMAT (as
 * mm_policy_load; also opts for another algorithm), MM_E_VERSION (newer format), MM_E_NUMERIC,
 * MM_E_NOMEM, or any mm_policy_create status. Allocates: the file while loading, then the
 * policy as mm_policy_create. Thread-safety: always safe (a new handle). Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_load_new(mm_policy **out, const char *path,
                                           const mm_policy_opts *opts);

/* The deterministic actor as a new finalized mm_model: the same layers and parameters, no
 * optimizer; mm_model_save, mm_model_load, mm_model_infer and tools/torch_io.py accept it.
 * Its input is the normalised observation and its output the actor's head; the steps around
 * it (mm_policy_export_io gives the constants) reproduce mm_policy_act(p, obs, n, a, 0) bit
 * for bit, with float arithmetic in this order:
 *   in:  x[j] = norm_obs ? clamp((obs[j] - obs_mean[j]) * obs_istd[j], -clip_obs, clip_obs)
 *                        : obs[j]
 *   out: MM_EXPORT_TANH_RESCALE (DDPG, TD3; the model ends in tanh):
 *            a[j] = low[j] + (y[j] + 1) * 0.5f * (high[j] - low[j])
 *        MM_EXPORT_CLIP (continuous A2C, PPO, TRPO; y is the Gaussian mean):
 *            a[j] = y[j] < low[j] ? low[j] : (y[j] > high[j] ? high[j] : y[j])
 *        MM_EXPORT_ARGMAX (discrete; y are logits): a = the first index of the largest y.
 *        MM_EXPORT_TANH_MEAN (continuous SAC; y = [mean, log std], model_out = 2 act_dim):
 *            t[j] = (float)tanh((double)y[j]) for j < act_dim, then a[j] as TANH_RESCALE
 *            with t in place of y.
 *   opts: NULL (defaults) or from mm_model_opts_init (alloc, max_batch, n_threads, err_buf are
 *         honoured; input_dim must be 0 or obs_dim).
 * The model is a copy: later updates of p do not change it (mm_policy_export_copy refreshes
 * it without allocating).
 * A policy with a memory core (mm_policy_opts.memory) is not one feed-forward model: export,
 * export_copy and export_save refuse it with MM_E_UNSUPPORTED.
 * Returns MM_OK, MM_E_INVALID_ARG, MM_E_SHAPE (input_dim), MM_E_UNSUPPORTED (memory),
 * MM_E_NOMEM. Allocates: the model (caller frees with mm_model_free). Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_export(mm_policy *p, mm_model **out, const mm_model_opts *opts);

/* Refreshes a model made by mm_policy_export (of this policy, or of one with the same
 * architecture) with the actor's current parameters: the worker-thread pattern's swap point.
 * dst is written only; nothing is allocated, so it can run every update.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL), MM_E_SHAPE (another architecture; text on p).
 * Allocates: nothing. Thread-safety: no call on p or on dst (mm_model_infer included) may run
 * at the same time. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_export_copy(mm_policy *p, mm_model *dst);

/* Writes the exported actor (mm_policy_export) to path as a model file (mm_model_save, flags 0).
 * Returns as mm_policy_export and mm_model_save. Allocates: the model while saving. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_export_save(mm_policy *p, const char *path);

/* Output mapping of an exported actor (mm_policy_export_info.output). */
enum {
    MM_EXPORT_TANH_RESCALE = 1,
    MM_EXPORT_CLIP = 2,
    MM_EXPORT_ARGMAX = 3,
    MM_EXPORT_TANH_MEAN = 4
};

/* The constants of the steps around an exported actor (see mm_policy_export). */
typedef struct mm_policy_export_info {
    int32_t output;    /* MM_EXPORT_* */
    int32_t norm_obs;  /* 1: normalise observations before the model */
    int64_t obs_dim;   /* model input width, length of obs_mean / obs_istd */
    int64_t act_dim;   /* action values per agent (1 for discrete), length of act_low / high */
    int64_t model_out; /* model output width (act_dim, or n_actions for discrete) */
    float clip_obs;    /* clamp after normalisation */
    float reserved;
} mm_policy_export_info;

/* Fills info and, for each non-NULL array, the current normalisation (obs_dim floats each;
 * mean 0 and istd 1 when norm_obs is off) and action bounds (act_dim floats each; -1 and 1 for
 * discrete). The statistics move while the policy trains: read them with the export. Returns
 * MM_OK, MM_E_INVALID_ARG (NULL p or info; info and the arrays sharing memory with one
 * another, nothing written). Allocates: nothing. Since: 0.2 */
MM_API MM_NODISCARD int mm_policy_export_io(const mm_policy *p, mm_policy_export_info *info,
                                            float *obs_mean, float *obs_istd, float *act_low,
                                            float *act_high);

/* Returns the detail text of the last failure on p ("" if none; "invalid handle" for NULL).
 * Allocates: nothing. Since: 0.1 */
MM_API const char *mm_policy_errmsg(const mm_policy *p);

/* Frees the agent and everything it allocated. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_policy_free(mm_policy *p);

/* ---- mm_comm (data-parallel training across processes) --------------------------------------
 * A communicator built from host callbacks, so libmm never links MPI (or NCCL, gloo, a game
 * server's sockets): the host says which rank this process is, how many ranks there are, and
 * gives all-reduce, all-gather and neighbour send/receive on float32 buffers. mm_model,
 * mm_loss (CLIP, SigLIP) and mm_policy use it for data-parallel training over the global batch
 * (docs/DISTRIBUTED.md). An MPI implementation ships separately: include/mm_mpi.h,
 * mm_comm_create_mpi, libmm_mpi (make WITH_MPI=1).
 *
 * Collective contract. Every rank makes the same sequence of collective libmm calls (the same
 * functions on handles built alike, in the same order); each such call runs the same sequence
 * of callbacks on every rank. Before its data collectives, every distributed call first agrees
 * on a status word (an all-gather of a few floats): a rank whose own arguments are bad still
 * takes part, returns its own error, and every other rank returns MM_E_STATE ("rank k
 * failed") instead of hanging. A callback that returns non-zero makes the call return MM_E_IO
 * and poisons the communicator (every later call on it returns MM_E_STATE): after a failed
 * collective the ranks may be out of step, so training must stop or restart from a checkpoint.
 * Detecting a rank that died or stopped calling is the callbacks' job (mm_comm_create_mpi uses
 * a deadline).
 * Thread-safety: a communicator is used by one thread at a time, with the handles attached to
 * it; callbacks run on the calling thread. */
typedef struct mm_comm mm_comm;

/* Host callbacks. Each returns 0 on success and any other value on failure. n counts floats
 * (n >= 1); buffers never overlap unless stated (allgather's send and recv, sendrecv's send
 * and recv are always apart: since 0.2 the tests run every distributed call through a
 * transport that fails on overlapping buffers).
 *   allreduce_sum(ud, buf, n):       buf = element-wise sum of every rank's buf, in place. The
 *                                    sum must be the same on every rank (bitwise).
 *   allgather(ud, send, recv, n):    recv[r*n .. r*n+n) = rank r's send (n floats each);
 *                                    recv holds size*n floats.
 *   sendrecv(ud, send, dest, recv, source, n): send n floats to rank dest and receive n floats
 *                                    from rank source, as one deadlock-free exchange
 *                                    (MPI_Sendrecv); dest / source are the ring neighbours
 *                                    (rank +- 1 mod size), or rank itself when size is 1.
 *   broadcast(ud, buf, n, root):     optional (NULL: libmm uses allreduce_sum with zeros on
 *                                    the other ranks); buf = root's buf on every rank.
 *   release(ud):                     optional; called once by mm_comm_free (and by a failing
 *                                    mm_comm_create), so a transport can own ud. Not when
 *                                    struct_size is above 4096 (an uninitialised struct, whose
 *                                    pointers are not trusted). */
typedef struct mm_comm_callbacks {
    uint32_t struct_size; /* sizeof(mm_comm_callbacks) as the caller compiled it */
    uint32_t reserved0;   /* must be 0 */
    void *ud;             /* passed to every callback; libmm never reads it */
    int32_t rank;         /* this process's rank, 0 <= rank < size */
    int32_t size;         /* number of ranks (world size), 1 .. 65536 */
    int32_t (*allreduce_sum)(void *ud, float *buf, int64_t n);
    int32_t (*allgather)(void *ud, const float *send, float *recv, int64_t n);
    int32_t (*sendrecv)(void *ud, const float *send, int32_t dest, float *recv, int32_t source,
                        int64_t n);
    int32_t (*broadcast)(void *ud, float *buf, int64_t n, int32_t root);
    void (*release)(void *ud);
} mm_comm_callbacks;

/* Creates a communicator from callbacks (copied; ud is kept: the host keeps it alive, or hands
 * it over through release).
 *   out:   receives the handle; set to NULL on failure.
 *   cb:    allreduce_sum, allgather and sendrecv must be set; broadcast may be NULL.
 *   alloc: allocator for the handle and its scratch, copied; NULL = aligned malloc.
 * Calls no callback. Returns MM_OK, MM_E_INVALID_ARG (NULL, missing callback, rank or size out
 * of range, reserved0 non-zero, struct_size too small, bad allocator), MM_E_NOMEM.
 * Allocates: the handle and O(size) floats of scratch. Since: 0.1 */
MM_API MM_NODISCARD int mm_comm_create(mm_comm **out, const mm_comm_callbacks *cb,
                                       const mm_allocator *alloc);

/* Frees the communicator and calls release(ud) if set (no collective). Handles attached to it
 * must be detached or freed first. NULL is a no-op. Allocates: nothing. Since: 0.1 */
MM_API void mm_comm_free(mm_comm *c);

/* This process's rank / the world size, or MM_E_INVALID_ARG for NULL. Allocates: nothing.
 * Since: 0.1 */
MM_API int32_t mm_comm_rank(const mm_comm *c);
MM_API int32_t mm_comm_size(const mm_comm *c);

/* Returns the detail text of the last failure on c ("" if none; "invalid handle" for NULL).
 * Allocates: nothing. Since: 0.1 */
MM_API const char *mm_comm_errmsg(const mm_comm *c);

/* Attaches a communicator to a finalized model for data-parallel training (comm NULL
 * detaches). Collective: every rank calls it with a model of the same architecture; the
 * parameters of rank 0 are broadcast to every rank. From then on mm_model_step first replaces
 * the accumulated gradients by their mean over ranks (one fused all-reduce of the flat gradient
 * buffer), then clips and updates as usual, so W ranks each holding B rows of a loss that is a
 * mean over its rows take exactly the step of one process with W * B rows (to float rounding).
 * Every rank must call mm_model_step the same number of times. A NaN or Inf gradient on any
 * rank reaches every rank through the sum, and all refuse the step (MM_E_NUMERIC); the
 * gradients are then the averaged ones. Optimizer state is not synchronised: attach before
 * training, or after every rank loaded the same checkpoint. mm_model_save writes on rank 0 only
 * (the other ranks return MM_OK without touching the file); mm_model_save_mem writes on every
 * rank. The comm must outlive the attachment.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL m), MM_E_STATE (not finalized, or another rank
 * refused), MM_E_SHAPE (ranks built different architectures), MM_E_IO (a callback failed).
 * Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_model_set_comm(mm_model *m, mm_comm *comm);

/* Flags of mm_loss_set_comm. */
enum {
    /* CLIP, SigLIP: the reported loss, direction losses and dLoss/dt, dLoss/db are this rank's
     * own terms (open_clip local_loss=True: local rows against the global batch, divided by
     * the local B); their mean over ranks is the global value. Without it every rank reports
     * the global values. Feature gradients are the same either way. */
    MM_COMM_LOCAL_LOSS = 1u
};

/* Attaches a communicator to a CLIP or SigLIP loss (comm NULL detaches): from then on
 * mm_loss_clip / mm_loss_siglip take this rank's shard x, y [B, D] (every rank the same B and
 * D, B <= max_batch) of a global batch of N = size * B pairs, rank r holding pairs r*B ..
 * r*B+B-1, and compute the loss of the global batch without any rank holding all of it:
 *   CLIP:   image and text features are all-gathered (2 N D floats per rank); each rank
 *           computes its B x N row block and N x B column block, and the log-sum-exp
 *           statistics are exchanged (2 N floats), so the gradients are exact.
 *   SigLIP: text features travel around the ring (size - 1 neighbour exchanges), each rank
 *           scoring its images against one text block at a time; the text gradients travel
 *           with them and reach their owner after one more exchange. Memory O(B D + tile^2).
 * Gradients follow open_clip's gather-with-grad convention: dx, dy are this rank's rows of
 * the gradient of size * Loss_global, so that averaging the towers' parameter gradients over
 * ranks (mm_model_set_comm) gives exactly the gradient of the global loss. (Set
 * MM_LOSS_GRAD_SCALE = 1 / size for the plain rows.) dLoss/dt and dLoss/db are global (or
 * local with MM_COMM_LOCAL_LOSS) and need no averaging: t and b live in each rank's handle and
 * stay identical if every rank applies the same update.
 *   flags: 0 or MM_COMM_LOCAL_LOSS.
 * Attached, mm_loss_clip / mm_loss_siglip are collective and may also return MM_E_SHAPE (ranks
 * disagree on B or D), MM_E_INVALID_ARG (ranks disagree on t or b), MM_E_STATE (another rank
 * refused its input, or the communicator is poisoned) and MM_E_IO (a callback failed); the
 * logit bound is checked over the global batch.
 * The comm must outlive the attachment. Returns MM_OK, MM_E_INVALID_ARG (NULL h, unknown
 * flags), MM_E_UNSUPPORTED (kind other than CLIP or SigLIP), MM_E_RANGE (sizes overflow),
 * MM_E_NOMEM (the previous attachment is kept). Calls no callback.
 * Allocates: CLIP 2 (size + 1) max_batch max_dim + O(size max_batch + tile^2) floats;
 * SigLIP 4 max_batch max_dim + O(tile^2) floats. Since: 0.1 */
MM_API MM_NODISCARD int mm_loss_set_comm(mm_loss *h, mm_comm *comm, uint32_t flags);

/* Attaches a communicator to an agent (comm NULL detaches) for data-parallel RL: each rank
 * steps its own environments (its own n_agents) into its own rollout (A2C, QAC, PPO) or replay
 * buffer (DDPG, TD3), and every gradient step averages each network's gradients over ranks
 * before clipping and the optimizer, so the networks stay identical on every rank and each
 * step is that of the union of the ranks' batches (A2C: exactly one rank with size x
 * n_agents; PPO: advantages are normalised per rank's minibatch). Collective: every rank calls
 * it, then calls mm_policy_update on the same schedule (same n_steps, train_freq,
 * learning_starts and observe cadence). At attach the networks (targets included) take rank
 * 0's parameters and the exploration / sampling RNG is re-seeded per rank (rank 0 keeps the
 * single-process stream), so a run is reproducible for a fixed seed and world size. Attach
 * before training: optimizer state is not synchronised. mm_policy_save writes on rank 0 only
 * (other ranks return MM_OK without writing). Statistics (losses, KL, ...) are rank-local.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL p), MM_E_UNSUPPORTED (TRPO; norm_obs set: normalise
 * observations in the host), MM_E_SHAPE (ranks built different agents), MM_E_STATE (another
 * rank refused), MM_E_IO (a callback failed). Allocates: nothing. Since: 0.1 */
MM_API MM_NODISCARD int mm_policy_set_comm(mm_policy *p, mm_comm *comm);

#ifdef __cplusplus
}
#endif
#endif /* MM_H_6A1F */
