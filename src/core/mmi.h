/* SPDX-License-Identifier: MIT */
/*
 * mmi.h — internal core services shared by every floor: error text, allocation, size math,
 * options-struct checks, the RNG, the thread pool and CRC32. Nothing here is exported; every
 * symbol is mmi_-prefixed and hidden (-fvisibility=hidden, localized in libmm.a).
 */
#ifndef MMI_CORE_H
#define MMI_CORE_H

#include "mm.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* No floating-point contraction (a * b + c into one fused multiply-add) in library code: the
 * SIMD paths promise the portable loops' bits (separate multiply and add, in the files built
 * with FMA enabled too), and acting equals the training forward. GCC does not contract in ISO
 * C mode (-std=c11, which every build file here sets; -ffp-contract=off is passed as well);
 * clang contracts within an expression unless this standard pragma says otherwise, even when
 * an embedder's build system compiles these files with its own flags. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define MMI_ALIGN       64
#define MMI_MAX_NUMEL   ((int64_t)1 << 40)
#define MMI_ERRMSG_SIZE 256

/* MMI_ASSERT states a floor contract (a precondition the caller above has already checked).
 * Compiled in when MMI_DEBUG is defined (the test runner, sanitizer and fuzz builds), compiled
 * out of release builds, where bad input is answered by status codes, never by an abort. */
#ifdef MMI_DEBUG
#include <assert.h>
#define MMI_ASSERT(cond) assert(cond)
#else
/* not evaluated, but still compiled: a condition cannot rot in the build that skips it */
#define MMI_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MMI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MMI_PRINTF(f, a)
#endif

/* ---- error text --------------------------------------------------------------------------- */
/* Per-handle error text, embedded in every handle struct. */
typedef struct mmi_err {
    char msg[MMI_ERRMSG_SIZE];
} mmi_err;

/* Formats a message into e (truncating) and returns code, so callers write
 * `return mmi_fail(&h->err, MM_E_SHAPE, "mm_x: ...", ...);`. e may be NULL. */
int mmi_fail(mmi_err *e, int code, const char *fmt, ...) MMI_PRINTF(3, 4);
/* Clears e (an empty message). e may be NULL. */
void mmi_err_clear(mmi_err *e);
/* Copies e's text into a caller buffer of size n (both may be NULL/0: then nothing happens). */
void mmi_err_export(const mmi_err *e, char *buf, size_t n);

/* ---- allocation --------------------------------------------------------------------------- */
/* A validated copy of a caller allocator (or the default aligned malloc/free). */
typedef struct mmi_alloc {
    void *(*alloc_fn)(void *ud, size_t size, size_t align);
    void (*free_fn)(void *ud, void *ptr, size_t size);
    void *ud;
} mmi_alloc;

/* Fills out from a caller allocator (NULL: default). Returns MM_OK or MM_E_INVALID_ARG (wrong
 * struct_size, NULL function pointers, non-zero reserved field) with text in e. */
int mmi_alloc_init(mmi_alloc *out, const mm_allocator *a, mmi_err *e);
/* 64-byte aligned allocation of size bytes (size 0 is rounded up to 1). NULL on failure. */
void *mmi_malloc(const mmi_alloc *a, size_t size);
/* As mmi_malloc, zero-filled. */
void *mmi_calloc(const mmi_alloc *a, size_t size);
/* Frees p (NULL is a no-op); size must be the size it was allocated with. */
void mmi_free(const mmi_alloc *a, void *p, size_t size);
/* Rounds size up to a multiple of MMI_ALIGN; returns 0 on overflow. */
size_t mmi_align_up(size_t size);

/* The one workspace carver (as zstd's cwksp): consecutive 64-byte aligned regions out of one
 * buffer. The same layout walk runs twice: first measuring (mmi_carve_measure: every take
 * returns NULL and only off grows, with checked arithmetic), then, over the one allocation of
 * that size, handing out pointers (mmi_carve_at), so the size computed at reserve time and
 * the layout used at run time cannot disagree. Each region is n * elem_size bytes rounded up
 * to MMI_ALIGN (an empty region takes no bytes). overflow is sticky: a measure whose sum does
 * not fit size_t saturates off at SIZE_MAX (so a caller that only adds sizes up still fails),
 * and a carve that runs past size returns NULL from then on (a contract violation, which
 * MMI_ASSERT catches in debug builds). */
typedef struct mmi_carve {
    size_t off;          /* bytes taken so far */
    unsigned char *base; /* NULL: measuring */
    size_t size;         /* carving: bytes available at base */
    int overflow;
} mmi_carve;
/* A measuring carver. */
mmi_carve mmi_carve_measure(void);
/* A carver over size bytes at base (base from one allocation the measure sized). */
mmi_carve mmi_carve_at(void *base, size_t size);
/* Returns the next region of n elements of elem_size bytes (NULL when measuring, on a
 * negative n or on overflow) and advances off past it. */
void *mmi_carve_take(mmi_carve *c, int64_t n, size_t elem_size);

/* ---- overflow-checked size math ----------------------------------------------------------- */
/* *out = a * b; returns 0, or -1 on overflow (out untouched). */
int mmi_mul_size(size_t *out, size_t a, size_t b);
/* *out = a + b; returns 0, or -1 on overflow (out untouched). */
int mmi_add_size(size_t *out, size_t a, size_t b);
/* *out = a * b for non-negative int64; returns 0, or -1 on overflow or negative input. */
int mmi_mul_i64(int64_t *out, int64_t a, int64_t b);
/* Workspace formulas: a * b and a + b of element counts, or MMI_SIZE_BAD (-1) when an input
 * is negative (already bad) or the result exceeds INT64_MAX. MMI_SIZE_BAD propagates through
 * further calls and mmi_carve_take refuses it, so a formula written with these never wraps. */
#define MMI_SIZE_BAD ((int64_t)-1)
int64_t mmi_sz_mul(int64_t a, int64_t b);
int64_t mmi_sz_add(int64_t a, int64_t b);
/* A kernel's size_t workspace count as an int64 count (SIZE_MAX and values above INT64_MAX,
 * the kernels' overflow marker, become MMI_SIZE_BAD). */
int64_t mmi_sz_of(size_t n);
/* The reverse, for kernels that report size_t: MMI_SIZE_BAD (or any negative) becomes
 * SIZE_MAX, the value no reservation accepts. */
size_t mmi_sz_to(int64_t n);
/* Run counters (optimizer steps, a policy's steps, calls and updates) stop at MMI_COUNT_MAX =
 * 2^53: every value up to there is exact as a double (bias corrections and the getters use
 * them as doubles), and files carrying a larger one are refused. A counter that kept counting
 * past the loader's bound would make the library write a checkpoint it cannot read back (found
 * by fuzz_config: a loaded calls counter of 2^53, one act later, saved and refused). */
#define MMI_COUNT_MAX ((int64_t)1 << 53)

/* c + n for a counter c in [0, MMI_COUNT_MAX] and n >= 0, held at MMI_COUNT_MAX. */
static inline int64_t mmi_count_add(int64_t c, int64_t n)
{
    return n < MMI_COUNT_MAX - c ? c + n : MMI_COUNT_MAX;
}

/* Validates ndim (1..MM_TENSOR_MAX_DIMS) and each size (>= 1) and writes the element count.
 * Returns MM_OK, MM_E_SHAPE or MM_E_RANGE (count > MMI_MAX_NUMEL) with text in e (prefixed by
 * fn, the public function's name). */
int mmi_shape_numel(int32_t ndim, const int64_t *shape, int64_t *numel, mmi_err *e, const char *fn);

/* ---- options structs ---------------------------------------------------------------------- */
/* The largest struct_size taken for a newer caller's struct. The largest options struct is
 * 400 bytes; a struct_size beyond this is an uninitialised struct, and believing it would read
 * that many bytes of the caller's memory past its struct (the zero check of the tail). */
#define MMI_OPTS_MAX_SIZE 4096
/* Copies a caller options struct into dst (already filled with defaults, lib_size bytes):
 * src->struct_size (its first uint32_t) may be smaller (older caller: the tail keeps defaults)
 * or larger, up to MMI_OPTS_MAX_SIZE, with an all-zero tail (newer caller). Returns MM_OK,
 * MM_E_INVALID_ARG (NULL, size smaller than the 8-byte head or above MMI_OPTS_MAX_SIZE) or
 * MM_E_VERSION (unknown non-zero tail), with text in e. */
int mmi_opts_copy(void *dst, const void *src, size_t lib_size, mmi_err *e, const char *fn);
/* The one way a create function reports its failure: copies e's text into the caller's
 * err_buf. src is the caller's options struct as passed (NULL: nothing happens); buf_at and
 * size_at are offsetof its `char *err_buf` and `size_t err_buf_size`. They are read only if
 * src's struct_size covers them, so a short or refused struct is never read past its end. */
void mmi_opts_export_error(const void *src, size_t buf_at, size_t size_at, const mmi_err *e);
/* 1 if src is non-NULL and its struct_size covers the first `end` bytes and is sane (at most
 * MMI_OPTS_MAX_SIZE): then a field ending there (err_buf_size, a callback) may be read even
 * when the struct as a whole was refused. */
int mmi_opts_covers(const void *src, size_t end);

/* ---- parameter registry ------------------------------------------------------------------- */
typedef struct mmi_param {
    int32_t id;
    const char *name;
    double lo, hi;
} mmi_param;
/* Returns the registry entry of id, or NULL. Each floor lists its parameters in params.c. */
const mmi_param *mmi_param_find(int32_t id);
/* Returns MM_OK if v is finite and within id's bounds, else MM_E_UNSUPPORTED / MM_E_RANGE with
 * text in e (prefixed by fn). */
int mmi_param_check(int32_t id, double v, mmi_err *e, const char *fn);

/* ---- RNG: xoshiro256** seeded through splitmix64 ------------------------------------------ */
typedef struct mmi_rng {
    uint64_t s[4];
} mmi_rng;
void mmi_rng_seed(mmi_rng *r, uint64_t seed);
uint64_t mmi_rng_next(mmi_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double mmi_rng_uniform(mmi_rng *r);
/* Uniform integer in [0, n) without modulo bias; n >= 1. */
uint64_t mmi_rng_below(mmi_rng *r, uint64_t n);
/* Standard normal (Box-Muller on two uniforms; no cached second value, so the stream position
 * depends only on the number of calls). */
double mmi_rng_normal(mmi_rng *r);
/* Fills q (rows x cols, row-major, float64) with a matrix having orthonormal rows (if
 * rows <= cols) or columns (otherwise), drawn from the Haar measure: QR (modified Gram-Schmidt,
 * twice) of a Gaussian matrix with the sign of R's diagonal folded in, as torch.nn.init.
 * orthogonal_ does. work needs rows*cols doubles. */
void mmi_rng_orthogonal(mmi_rng *r, double *q, int64_t rows, int64_t cols, double *work);

/* ---- thread pool (opt-in, pthreads) ------------------------------------------------------- */
typedef struct mmi_pool mmi_pool;
/* Task body: runs task index i of n on some worker (or the caller). */
typedef void (*mmi_task_fn)(void *ctx, int64_t i, int64_t n);
/* Creates a pool with n_threads - 1 workers (the caller is the n-th). n_threads <= 1 sets *out
 * to NULL and returns MM_OK: every mmi_pool_run then runs inline. */
int mmi_pool_create(mmi_pool **out, int32_t n_threads, const mmi_alloc *a, mmi_err *e);
void mmi_pool_free(mmi_pool *p);
/* Number of threads that run tasks (1 for a NULL pool). */
int32_t mmi_pool_size(const mmi_pool *p);
/* Runs fn(ctx, i, n) once for every i in [0, n), spread over the pool, and waits for all; p
 * may be NULL. Never allocates. Any thread may run any task (threads claim them in turn, so a
 * thread that lost its core does not hold the others up): a task's result must depend on i
 * only, never on which thread runs it or on i % size. */
void mmi_pool_run(mmi_pool *p, mmi_task_fn fn, void *ctx, int64_t n);
/* As mmi_pool_run with the running thread's index (0 .. size-1, 0 for the caller) as slot:
 * scratch space indexed by slot is used by one task at a time. */
typedef void (*mmi_slot_task_fn)(void *ctx, int64_t i, int64_t n, int32_t slot);
void mmi_pool_run_slots(mmi_pool *p, mmi_slot_task_fn fn, void *ctx, int64_t n);

/* ---- CRC32 (IEEE 802.3, reflected, as zlib's crc32) --------------------------------------- */
/* Continues crc over n bytes; start with crc = 0. */
uint32_t mmi_crc32(uint32_t crc, const void *data, size_t n);

/* ---- numeric helpers ---------------------------------------------------------------------- */
/* Returns 1 if all n floats are finite. */
int mmi_all_finite(const float *x, int64_t n);
/* Returns 1 if the an bytes at a and the bn bytes at b share an address (compared as integers;
 * an empty range shares none). The public calls refuse outputs over inputs with it: the
 * kernels read inputs after writing outputs, so an overlap gave wrong results with MM_OK. */
int mmi_overlaps(const void *a, size_t an, const void *b, size_t bn);

/* ---- CPU features -------------------------------------------------------------------------- */
/* What this CPU and OS run (MMI_CPU_* bits), whatever the build compiled: the kernels' dispatch
 * (src/kernels/simd/mmi_simd.h) decides which paths to use from this and the build. */
#define MMI_CPU_AVX2_FMA 0x1u /* AVX2 + FMA, ymm state saved by the OS */
#define MMI_CPU_AVX512   0x2u /* AVX-512 F, DQ, BW, VL, zmm and opmask state saved */
uint32_t mmi_cpu_features(void);

#endif /* MMI_CORE_H */
