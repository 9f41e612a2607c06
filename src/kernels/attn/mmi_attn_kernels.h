/* SPDX-License-Identifier: MIT */
/*
 * mmi_attn_kernels.h — attention kernels on raw float buffers, one (batch, head) slice at a
 * time. Same rules as every kernel family (gemm/mmi_gemm.h): no handles, no allocation, no error text; the operator
 * (src/attn) validates shapes and hands each call a workspace of the size the matching
 * *_ws_floats function reports. Layouts are row-major per head: q [n, d], k [m, d], v [m, dv],
 * o [n, dv]. Formulas and references: docs/ATTENTION.md.
 */
#ifndef MMI_ATTN_KERNELS_H
#define MMI_ATTN_KERNELS_H

#include "../../core/mmi.h"
#include "../simd/mmi_simd.h"

/* Sizes and settings of one head. Mask alignment when n != m is bottom-right (flash-attn):
 * query i sits at key position i + (m - n), so with causal = 1 it sees keys j <= i + m - n. */
typedef struct mmi_attn_dims {
    int64_t n, m, d, dv; /* queries, keys, key width (or feature count), value width */
    float scale;         /* softmax logit scale; RELU2/GATED query scale */
    int32_t causal;
    int64_t window; /* > 0: local band, key j visible iff i' - j < window (i' = i + m - n) */
    int64_t stride; /* > 0: strided, key j visible iff (i' - j) % stride == 0 */
    int64_t chunk;  /* RELU2 / GATED chunk length */
} mmi_attn_dims;

/* ---- SIMD primitives (attn_simd.c; AVX2 and AVX-512 bodies in attn_simd_avx2.c and
 * attn_simd_avx512.c) ---------------------------------------------------------------------- */
/* y[j] = alpha * sum_c x[c] * mt[c * ld + j] for j < n_out (x has k entries). */
void mmi_attn_rowmat(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                     float alpha, float *y);
/* y[j] = alpha * sum_c x[c] * (mt[c * ld + j] - o[c]): rowmat with o subtracted from each
 * row before the products, so a column equal to o gives exactly 0 (softmax backward's
 * dP - D in a saturated row). */
void mmi_attn_rowmat_sub(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                         const float *o, float alpha, float *y);
/* Softmax backward's score-gradient tile, in place on the probabilities:
 *   p[r * ldp + j] *= sum_c x[r * ldx + c] * (mt[c * ldm + j] - o[r * ldx + c])
 * for r < rows, j < n (x = dO rows, o = O rows, mt = the value block transposed). The
 * difference is formed before the product, as in rowmat_sub, so a column equal to o_r gives
 * exactly 0. */
void mmi_attn_ds_tile(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                      int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp);
/* In place: x[j] = relu(x[j]) (square = 0) or relu(x[j])^2 (square = 1) for j < lim, 0 for
 * lim <= j < n (the causal mask); lim is clamped to [0, n]. */
void mmi_attn_relu_row(int64_t n, int64_t lim, float *x, int square);
/* RELU2's backward tile row: u[j] = f * t[j] * u[j], then t[j] = t[j]^2, for j < n. */
void mmi_attn_relu_ds_row(int64_t n, float *t, float *u, float f);
/* y[:n] += sum_r p[r] * mat[r * ld + :n] for r < rows. */
void mmi_attn_matrow_acc(int64_t rows, int64_t n, const float *p, const float *mat, int64_t ld,
                         float *y);
/* The state step of linear attention, fused so the state is read once:
 *   for r < rows: Y[r, :n] += a[r] * x;  out[r] = dot(Y[r, :n], w) (w, out may be NULL);
 *                 y += b[r] * Y[r, :n] (b, y may be NULL; y accumulates). a NULL: no update.
 * Y rows are ld apart. */
void mmi_attn_state_step(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                         int64_t ld, const float *w, float *out, const float *b, float *y);
/* p[j] = exp(s[j] - mx) for j < n; returns sum_j p[j]. */
float mmi_attn_exp_sub(int64_t n, const float *s, float mx, float *p);
/* The softmax backward's probabilities over a tile, in place: row r (ld apart) becomes
 * p[j] = exp(p[j] - sub[r]) for j < v_r = clamp(r + off, 0, n) and 0 for v_r <= j < n; a row
 * whose sub[r] is infinite (it saw no key) becomes 0. Each value is bitwise exp_sub's for that
 * row (off >= n: every row over n keys; a causal diagonal block passes delta + 1). */
void mmi_attn_exp_rows(int64_t rows, int64_t n, int64_t off, float *p, int64_t ld,
                       const float *sub);
/* The softmax backward's tile in flash-attention's form dS = P (dP - D), in one pass: row r
 * of p becomes P as mmi_attn_exp_rows makes it (bitwise), and row r of x (dP_r, the product
 * dO V^T, same row stride ld) becomes x[j] = p[j] (x[j] - dd[r]) for j < v_r and 0 for v_r <=
 * j < n (x is not read there). Returns 0 when the path has no body (the caller then keeps the
 * exact-difference form, mmi_attn_ds_tile). */
int mmi_attn_exp_ds_rows(int64_t rows, int64_t n, int64_t off, float *p, float *x, int64_t ld,
                         const float *sub, const float *dd);
/* dd[r] = sum_c a[r * lda + c] b[r * ldb + c] for r < rows, as one element of the AVX2 and
 * AVX-512 GEMM sets' direct tile with alpha 1 and beta 0 forms it: an FMA chain over c in order
 * from +0 (then times 1). A tile element dO_r . v_j therefore equals dd[r] bitwise whenever
 * v_j equals b_r, so in a saturated softmax row dP - D is exactly 0. Returns 0 when the path
 * has no body (the portable path; mmi_attn_exp_ds_rows has none there either). */
int mmi_attn_row_dots(int64_t rows, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *dd);
/* The normaliser step of linear attention: z[:n] += k (k may be NULL: no update), then
 * returns q . z (q may be NULL: returns 0), all in float64. */
double mmi_attn_norm_step(int64_t n, const float *k, double *z, const float *q);
/* For len tokens t of the causal linear forward's chunk (q, k rows n apart): z += k_t, then
 * den_t = eps + q_t . z in float64 exactly as mmi_attn_norm_step (1 when that is 0, and 1
 * throughout without normalize), stored as float, and x row t (ldx apart) = q_t * (float)(1 /
 * den_t). Returns 0 when the path has no body for it (the caller runs its portable loop). */
int mmi_attn_lin_norm(int64_t len, int64_t n, const float *q, const float *k, double *z,
                      int normalize, double eps, float *den, float *x, int64_t ldx);
/* dnum = dout / den elementwise and *dden = -(sum of dout * o in float64, eight partial sums
 * by index mod 8, then the tail, then the partials in order) / den, for one row of w values
 * (the causal linear backward's normalised case). Returns 0 when the path has no body. */
int mmi_attn_lin_dnum(int64_t w, const float *dout, const float *o, float den, float *dnum,
                      double *dden);
/* The causal linear backward's float64 sums over a chunk of len rows (x and g rows n apart):
 * rev 0 (pass 1, rows in order): z += x_t, then g_t = (float)(g_t + z a_t); rev 1 (pass 2,
 * rows in reverse): z += a_t x_t, then g_t = (float)(g_t + z). Each product and sum rounded as
 * written (no fused multiply-add). Returns 0 when the path has no body. */
int mmi_attn_lin_acc(int64_t len, int64_t n, int rev, const double *a, const float *x, double *z,
                     float *g);
/* One segment of a reduction: k steps p of A(r, p) = a[r a_rs + p a_cs] times B row p (b, rows
 * ldb apart). NN: a_rs = lda, a_cs = 1; TN: a_rs = 1, a_cs = lda. */
typedef struct mmi_attn_lin_seg {
    int64_t k;
    const float *a;
    int64_t a_rs, a_cs;
    const float *b;
    int64_t ldb;
} mmi_attn_lin_seg;
/* The causal linear kernels' products, C [m, n] (rows ldc apart) = A B (mode 0), += A B (mode
 * 1) or = tril(A B) (mode 2: row i keeps columns <= i, zeros after), the reduction over nseg (1
 * or 2) segments in order. Each element is an FMA chain over the reduction from zero, then
 * (mode 1) one addition of the old C: the bits of mmi_attn_tile_nn (beta 0 or 1, the stacked
 * operands, k <= MMI_GEMM_DIRECT_KC) and mmi_attn_tile_tn (k <= 64, its piece) with alpha 1.
 * In a WITH_OPENBLAS build the GEMM tiles round OpenBLAS's way and this keeps libmm's (both
 * within the float64 tests' tolerance). Returns 0 when the path has no body or n > 64 (the
 * caller runs the GEMM tile). */
int mmi_attn_lin_tile(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                      float *c, int64_t ldc);
/* C = A B + diag(f) C0 (C0 [m, n], rows ldc0 apart, apart from C): lin_tile's mode 1 with the
 * old C being f_i C0[i][j], each such product rounded once, so the bits of scaling C0 into C
 * first and then running mode 1 (the gated state update in one pass instead of two). Returns
 * 0 when the path has no such body. */
int mmi_attn_lin_tile_rs(int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg, const float *f,
                         const float *c0, int64_t ldc0, float *c, int64_t ldc);
/* Dot product with float64 accumulation (sums that span a sequence use this). */
double mmi_attn_dot64(int64_t n, const float *x, const float *y);
/* One row of per-key gates: bt = prev + max(g, -128) in float64 (prev NULL: 0). With q non-NULL
 * also E = exp((float)bt), qe = (scale q) E and kh = k / E (the factored query and key rows of a
 * mild gated chunk; q, k, qe, kh all NULL or all set), and E itself into e when e is not NULL
 * (the backward's unfactoring reads it). */
void mmi_attn_gate_row(int64_t n, const double *prev, const float *g, double *bt, const float *q,
                       float scale, const float *k, float *qe, float *kh, float *e);
/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (src and dst must not overlap). */
void mmi_attn_transpose(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                        int64_t ldd);
/* One row of the per-key gate gradient, walking the sequence backwards: for c < n,
 * acc[c] += (double)scale q[c] dq[c] - (double)k[c] dk[c] (float64, the products rounded as
 * written), dg[c] = (float)acc[c], then dq[c] *= scale (dq enters as the gradient of the scaled
 * query). */
void mmi_attn_gate_grad_row(int64_t n, float scale, const float *q, float *dq, const float *k,
                            const float *dk, double *acc, float *dg);
/* mmi_attn_gate_grad_row over rows rows - 1, ..., 0 of row-major [rows, n] blocks (row t of q
 * at q + t * n, the same for dq, k, dk, dg): a chunk's rows in the backward's order, with the
 * same bits as the row calls (each column's sum is independent of the others). */
void mmi_attn_gate_grad_rows(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                             const float *k, const float *dk, double *acc, float *dg);
/* y[c] = x[c] for c < n; returns 1 when some x[c] is not a log-gate (NaN, infinite or above 0),
 * else 0. The forward's check of its gates fused with their saved copy: one read of x. */
int mmi_attn_log_gate_copy(int64_t n, const float *x, float *y);
/* One row of the online softmax (the flash-attention forward), in place on the logit row s of
 * n keys whose entries j >= lim are masked (lim clamped to [0, n]; they are not read):
 * mx = max_{j < lim} s[j] (NaN entries ignored). mx = -Inf: s[:n] = 0, nothing else changes.
 * Else mnew = max((float)*m, mx), alpha = expf((float)*m - mnew) (0 when *m = -Inf),
 * s[j] = e^{s[j] - mnew} for j < lim (exp_sub's exponential) and 0 after,
 * *l = *l alpha + sum_j s[j] (the sum exp_sub returns for the whole row with the masked keys at
 * -Inf: a row cut at lim gives the bits of the same row masked by value), acc[:dv] *= alpha
 * when alpha != 1, *m = mnew. */
void mmi_attn_softmax_row(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                          int64_t dv);
/* RWKV-6's bonus term of one token: o[:dv] += (float)c v with c = scale sum_c r u k in float64
 * (the products rounded as written, eight partial sums over blocks of 8 then the tail; every
 * path gives the same bits). Returns c. */
double mmi_attn_rwkv_bonus(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                           const float *k, const float *v, float *o);

/* dst[:n] = src[:n] for rows kept for a later pass (a forward's saved copies, read by the
 * backward): with non-temporal stores where the path has them, so the copy neither fetches the
 * destination's lines first nor evicts the working set. Such stores are ordered only by a
 * fence: the last copy of a pass passes fence = 1 (then every earlier one is visible to other
 * threads on return; a fence per copy waits for the stores to drain each time); n = 0 with
 * fence = 1 is the fence alone (src, dst may then be NULL). */
void mmi_attn_copy_keep(int64_t n, const float *src, float *dst, int fence);

/* Hint that the nf floats from p will be read soon (one prefetch per 64-byte line; nothing
 * without a GCC-compatible compiler). p must point into (or one past) the caller's array. */
static inline void mmi_attn_prefetch(const float *p, int64_t nf)
{
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < nf; i += 16) __builtin_prefetch(p + i, 0, 3);
#else
    (void)p, (void)nf;
#endif
}
#define PREFETCH_ROWS(p, nf) mmi_attn_prefetch(p, nf)

/* The same for rows about to be written (the lines fetched for ownership). */
static inline void mmi_attn_prefetch_w(float *p, int64_t nf)
{
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < nf; i += 16) __builtin_prefetch(p + i, 1, 3);
#else
    (void)p, (void)nf;
#endif
}
#define PREFETCH_WRITE(p, nf) mmi_attn_prefetch_w(p, nf)

/* The same into L2 only (data wanted after the next pass, which would evict it from L1). */
static inline void mmi_attn_prefetch_l2(const float *p, int64_t nf)
{
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < nf; i += 16) __builtin_prefetch(p + i, 0, 2);
#else
    (void)p, (void)nf;
#endif
}
#define PREFETCH_L2(p, nf) mmi_attn_prefetch_l2(p, nf)

/* ISA variants of the primitives above and of the elu+1 feature map, one table per path
 * (mmi_attn_isa_get(); NULL: the portable bodies). Each returns 1 when it handled the
 * call, 0 to leave it to the portable body; exp_sub and norm_step return their result through
 * the last argument. */
typedef struct mmi_attn_isa {
    int (*rowmat)(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                  float alpha, float *y);
    int (*rowmat_sub)(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                      const float *o, float alpha, float *y);
    int (*matrow_acc)(int64_t rows, int64_t n, const float *p, const float *mat, int64_t ld,
                      float *y);
    int (*state_step)(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                      int64_t ld, const float *w, float *out, const float *b, float *y);
    int (*exp_sub)(int64_t n, const float *s, float mx, float *p, float *sum);
    int (*norm_step)(int64_t n, const float *k, double *z, const float *q, double *dot);
    int (*elu1)(int64_t n, const float *x, float *y);
    int (*elu1_bwd)(int64_t n, const float *y, const float *dy, float *dx);
    int (*ds_tile)(int64_t rows, int64_t n, int64_t k, const float *x, const float *o, int64_t ldx,
                   const float *mt, int64_t ldm, float *p, int64_t ldp);
    int (*relu_row)(int64_t n, int64_t lim, float *x, int square);
    int (*relu_ds_row)(int64_t n, float *t, float *u, float f);
    int (*gate_row)(int64_t n, const double *prev, const float *g, double *bt, const float *q,
                    float scale, const float *k, float *qe, float *kh, float *e);
    /* Entries below may be NULL (no body on that path): the wrappers then use the AVX2 table's
     * body when the build has one, else the portable body. */
    int (*transpose)(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                     int64_t ldd);
    int (*gate_grad_row)(int64_t n, float scale, const float *q, float *dq, const float *k,
                         const float *dk, double *acc, float *dg);
    int (*log_gate_copy)(int64_t n, const float *x, float *y, int *bad);
    int (*softmax_row)(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                       int64_t dv);
    int (*rwkv_bonus)(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                      const float *k, const float *v, float *o, double *c);
    /* The causal linear kernel's per-token rows (mmi_attn_lin_norm, mmi_attn_lin_dnum; may be
     * NULL: the portable loops run). */
    int (*lin_norm)(int64_t len, int64_t n, const float *q, const float *k, double *z,
                    int normalize, double eps, float *den, float *x, int64_t ldx);
    int (*lin_dnum)(int64_t w, const float *dout, const float *o, float den, float *dnum,
                    double *dden);
    int (*lin_acc)(int64_t len, int64_t n, int rev, const double *a, const float *x, double *z,
                   float *g);
    int (*gate_grad_rows)(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                          const float *k, const float *dk, double *acc, float *dg);
    /* The causal linear kernels' small products (mmi_attn_lin_tile; NULL: the GEMM tiles). */
    int (*lin_tile)(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg, float *c,
                    int64_t ldc);
    /* mmi_attn_copy_keep (NULL: the AVX2 table's body, else memcpy). */
    int (*copy_keep)(int64_t n, const float *src, float *dst, int fence);
    /* mmi_attn_exp_rows (NULL: exp_sub row by row, on that path's table). */
    int (*exp_rows)(int64_t rows, int64_t n, int64_t off, float *p, int64_t ld, const float *sub);
    /* Whether the causal linear kernels prefetch their next chunks' rows in software (a
     * setting, not a body: measured per machine, docs/ATTENTION.md; the portable path does). */
    int lin_prefetch;
    /* mmi_attn_lin_tile_rs (NULL: the caller scales C0 into C and runs lin_tile's mode 1). */
    int (*lin_tile_rs)(int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg, const float *f,
                       const float *c0, int64_t ldc0, float *c, int64_t ldc);
    /* mmi_attn_exp_ds_rows and mmi_attn_row_dots (both or neither; NULL: the softmax backward
     * keeps mmi_attn_ds_tile). */
    int (*exp_ds_rows)(int64_t rows, int64_t n, int64_t off, float *p, float *x, int64_t ld,
                       const float *sub, const float *dd);
    int (*row_dots)(int64_t rows, int64_t k, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float *dd);
} mmi_attn_isa;

/* The AVX2+FMA table (attn_simd_avx2.c), NULL when the build did not compile it. */
const mmi_attn_isa *mmi_attn_isa_avx2(void);
/* The AVX-512 F/DQ/BW/VL table (attn_simd_avx512.c: every entry, 16 lanes, masked tails), NULL
 * when the build did not compile it; the dispatch then keeps the AVX2 table on the AVX-512
 * path. */
const mmi_attn_isa *mmi_attn_isa_avx512(void);
/* The table of path p: the best one written at or below p (p available), NULL on the
 * portable path (the family's plain C bodies run). */
static inline const mmi_attn_isa *mmi_attn_isa_for(mmi_simd_path p)
{
    if (p >= MMI_SIMD_AVX512 && mmi_attn_isa_avx512()) return mmi_attn_isa_avx512();
    return p >= MMI_SIMD_AVX2 ? mmi_attn_isa_avx2() : NULL;
}
/* The table of the process's path (mmi_simd_path_get). */
static inline const mmi_attn_isa *mmi_attn_isa_get(void)
{
    return mmi_attn_isa_for(mmi_simd_path_get());
}
int mmi_attn_rowmat_avx2(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                         float alpha, float *y);
int mmi_attn_rowmat_sub_avx2(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                             const float *o, float alpha, float *y);
int mmi_attn_matrow_acc_avx2(int64_t rows, int64_t n, const float *p, const float *mat, int64_t ld,
                             float *y);
int mmi_attn_state_step_avx2(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                             int64_t ld, const float *w, float *out, const float *b, float *y);
int mmi_attn_exp_sub_avx2(int64_t n, const float *s, float mx, float *p, float *sum);
int mmi_attn_norm_step_avx2(int64_t n, const float *k, double *z, const float *q, double *dot);
int mmi_attn_elu1_avx2(int64_t n, const float *x, float *y);
int mmi_attn_elu1_bwd_avx2(int64_t n, const float *y, const float *dy, float *dx);
int mmi_attn_ds_tile_avx2(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                          int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp);
int mmi_attn_relu_row_avx2(int64_t n, int64_t lim, float *x, int square);
int mmi_attn_relu_ds_row_avx2(int64_t n, float *t, float *u, float f);
int mmi_attn_gate_row_avx2(int64_t n, const double *prev, const float *g, double *bt,
                           const float *q, float scale, const float *k, float *qe, float *kh,
                           float *e);
int mmi_attn_transpose_avx2(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                            int64_t ldd);
int mmi_attn_gate_grad_row_avx2(int64_t n, float scale, const float *q, float *dq, const float *k,
                                const float *dk, double *acc, float *dg);
int mmi_attn_log_gate_copy_avx2(int64_t n, const float *x, float *y, int *bad);
int mmi_attn_gate_grad_rows_avx2(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                                 const float *k, const float *dk, double *acc, float *dg);
int mmi_attn_rwkv_bonus_avx2(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                             const float *k, const float *v, float *o, double *c);
int mmi_attn_lin_norm_avx2(int64_t len, int64_t n, const float *q, const float *k, double *z,
                           int normalize, double eps, float *den, float *x, int64_t ldx);
int mmi_attn_lin_dnum_avx2(int64_t w, const float *dout, const float *o, float den, float *dnum,
                           double *dden);
int mmi_attn_lin_acc_avx2(int64_t len, int64_t n, int rev, const double *a, const float *x,
                          double *z, float *g);
int mmi_attn_copy_keep_avx2(int64_t n, const float *src, float *dst, int fence);
int mmi_attn_exp_rows_avx2(int64_t rows, int64_t n, int64_t off, float *p, int64_t ld,
                           const float *sub);
int mmi_attn_lin_tile_avx2(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                           float *c, int64_t ldc);
int mmi_attn_lin_tile_rs_avx2(int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                              const float *f, const float *c0, int64_t ldc0, float *c, int64_t ldc);
int mmi_attn_softmax_row_avx2(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                              int64_t dv);
int mmi_attn_exp_ds_rows_avx2(int64_t rows, int64_t n, int64_t off, float *p, float *x, int64_t ld,
                              const float *sub, const float *dd);
int mmi_attn_row_dots_avx2(int64_t rows, int64_t k, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float *dd);
/* The AVX-512 bodies (present only when compiled; reach them through the table). */
int mmi_attn_rowmat_avx512(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                           float alpha, float *y);
int mmi_attn_rowmat_sub_avx512(int64_t n_out, int64_t k, const float *x, const float *mt,
                               int64_t ld, const float *o, float alpha, float *y);
int mmi_attn_matrow_acc_avx512(int64_t rows, int64_t n, const float *p, const float *mat,
                               int64_t ld, float *y);
int mmi_attn_state_step_avx512(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                               int64_t ld, const float *w, float *out, const float *b, float *y);
int mmi_attn_exp_sub_avx512(int64_t n, const float *s, float mx, float *p, float *sum);
int mmi_attn_norm_step_avx512(int64_t n, const float *k, double *z, const float *q, double *dot);
int mmi_attn_elu1_avx512(int64_t n, const float *x, float *y);
int mmi_attn_elu1_bwd_avx512(int64_t n, const float *y, const float *dy, float *dx);
int mmi_attn_ds_tile_avx512(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                            int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp);
int mmi_attn_relu_row_avx512(int64_t n, int64_t lim, float *x, int square);
int mmi_attn_relu_ds_row_avx512(int64_t n, float *t, float *u, float f);
int mmi_attn_gate_grad_rows_avx512(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                                   const float *k, const float *dk, double *acc, float *dg);
int mmi_attn_gate_row_avx512(int64_t n, const double *prev, const float *g, double *bt,
                             const float *q, float scale, const float *k, float *qe, float *kh,
                             float *e);
int mmi_attn_softmax_row_avx512(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                                int64_t dv);
int mmi_attn_rwkv_bonus_avx512(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                               const float *k, const float *v, float *o, double *c);
int mmi_attn_lin_norm_avx512(int64_t len, int64_t n, const float *q, const float *k, double *z,
                             int normalize, double eps, float *den, float *x, int64_t ldx);
int mmi_attn_lin_dnum_avx512(int64_t w, const float *dout, const float *o, float den, float *dnum,
                             double *dden);
int mmi_attn_lin_acc_avx512(int64_t len, int64_t n, int rev, const double *a, const float *x,
                            double *z, float *g);
int mmi_attn_lin_tile_avx512(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                             float *c, int64_t ldc);
int mmi_attn_transpose_avx512(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                              int64_t ldd);

/* ---- GEMM tiles (attn_tiles.c) ------------------------------------------------------------- */
/* C = alpha A B + beta C, all row-major, on the GEMM micro-kernel's unpacked path (in column
 * pieces of 64 when the whole would pack): no workspace. */
void mmi_attn_tile_nn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* 1 if mmi_attn_tile_nn of m (<= 64) rows, n <= 64 columns and reduction k runs as one call of
 * the dispatched GEMM set's direct kernel: each element an FMA chain over the reduction from
 * zero (the portable set: a product then a sum per step), then alpha, then beta. 0 where the
 * build routes products to OpenBLAS or k exceeds the direct k block. */
int mmi_attn_tile_direct(int64_t m, int64_t k);
/* C += alpha A^T B for A [k, m], B [k, n], in pieces of 64 (rows, columns and reduction) so
 * every piece runs unpacked: no workspace. */
void mmi_attn_tile_tn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float *c, int64_t ldc);
/* As mmi_attn_tile_tn, but C = alpha A^T B: C is written, not read (the first product into an
 * output needs no zeroing pass; the bits of mmi_attn_tile_tn into zeros, up to the sign of a
 * zero). */
void mmi_attn_tile_tn_set(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc);

/* ---- exact and sparse softmax attention (attn_softmax.c) ---------------------------------- */
/* Online-softmax tiled forward: o [n, dv] and lse [n] (log-sum-exp of the scaled, masked row;
 * +Inf for a row that sees no key, whose output is 0). Never forms n x m. */
size_t mmi_attn_softmax_ws_floats(int64_t n, int64_t d, int64_t dv);
void mmi_attn_softmax_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                          float *o, float *lse, float *ws);
/* Backward from the saved o and lse: writes dq [n, d], dk [m, d], dv [m, dv] (all three
 * required). ws: mmi_attn_softmax_ws_floats(n, d, dv) floats with n >= both the query rows
 * and the key rows (the forward keeps every key block transposed; the backward D per query
 * row); the forward takes the same ws. */
void mmi_attn_softmax_bwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                          const float *o, const float *lse, const float *dout, float *dq, float *dk,
                          float *dv, float *ws);
/* 1 if key j is visible from query i under s's mask (causal, window, stride). */
int mmi_attn_visible(const mmi_attn_dims *s, int64_t i, int64_t j);

/* ---- linear attention on features (attn_linear.c) ----------------------------------------- */
/* Tokens per chunk of the causal linear kernels' chunkwise path (attn_linear.c says why 16);
 * the bench counts the flops it executes from it. */
#define MMI_ATTN_LINEAR_CHUNK 16

/* fq [n, F], fk [m, F] are feature-mapped queries and keys (F = s->d). With normalize = 1:
 *   o_i = fq_i^T S_i / (fq_i . z_i + eps),  S_i = sum_{j visible} fk_j v_j^T, z_i = sum fk_j
 * (the fast-transformers convention: eps added after the dot product); normalize = 0 gives
 * o_i = fq_i^T S_i and den_i = 1. den [n] receives the denominators. Causal uses the
 * bottom-right alignment above and an F x dv running state (O(F dv) working memory).
 * ws floats: mmi_attn_linear_ws_floats(n, F, dv) (n: the most queries of a call). */
size_t mmi_attn_linear_ws_floats(int64_t n, int64_t f, int64_t dv);
void mmi_attn_linear_fwd(const mmi_attn_dims *s, int normalize, double eps, const float *fq,
                         const float *fk, const float *v, float *o, float *den, float *ws);
/* mmi_attn_linear_fwd from the raw q [n, F] and k [m, F]: also writes their features
 * fq = phi(q), fk = phi(k) under the elementwise map fmap (MM_FMAP_*). The causal chunkwise
 * path maps each chunk as it reaches it (one pass over q and k instead of a feature pass
 * before the products); the others map the whole arrays first. Results equal
 * mmi_attn_fmap_fwd followed by mmi_attn_linear_fwd. */
typedef struct mmi_attn_fmap_in {
    int32_t fmap;
    const float *q, *k;
    /* May be NULL. vk [m, dv]: receives a copy of v; ok [n, dv]: of the output. The causal
     * chunkwise path copies each chunk while it is in cache (v as the products read it, o as
     * they write it) instead of a copy pass before or after over rows that have left it, with
     * streaming stores (mmi_attn_copy_keep), as it writes fq and fk. */
    float *vk, *ok;
} mmi_attn_fmap_in;
void mmi_attn_linear_fwd_map(const mmi_attn_dims *s, int32_t fmap, int normalize, double eps,
                             const float *q, const float *k, float *fq, float *fk, const float *v,
                             float *o, float *den, float *ws);
/* mmi_attn_linear_fwd_map with the copies of in (in->q, in->k the raw inputs, in->fmap their
 * map). o must not alias in->q, in->k or v. */
void mmi_attn_linear_fwd_io(const mmi_attn_dims *s, const mmi_attn_fmap_in *in, int normalize,
                            double eps, float *fq, float *fk, const float *v, float *o, float *den,
                            float *ws);
/* Gradients with respect to fq, fk and v (B2.6), from the saved o and den. Overwrites
 * dfq [n, F], dfk [m, F], dv [m, dv]. */
void mmi_attn_linear_bwd(const mmi_attn_dims *s, int normalize, const float *fq, const float *fk,
                         const float *v, const float *o, const float *den, const float *dout,
                         float *dfq, float *dfk, float *dv, float *ws);
/* mmi_attn_linear_bwd through the elementwise map fmap (> 0, MM_FMAP_*): dq, dk [n, F] receive
 * the gradients with respect to the raw q and k (mmi_attn_fmap_bwd of the feature gradients).
 * The causal chunkwise path maps each chunk's gradients as they are finished (tk unused, tq
 * scratch for the chunks' P tiles when F >= MMI_ATTN_LINEAR_CHUNK); the others write the
 * feature gradients into tq, tk [n, F] and map them after. */
void mmi_attn_linear_bwd_map(const mmi_attn_dims *s, int32_t fmap, int normalize, const float *fq,
                             const float *fk, const float *v, const float *o, const float *den,
                             const float *dout, float *dq, float *dk, float *dv, float *tq,
                             float *tk, float *ws);

/* ---- feature maps (attn_fmap.c) ----------------------------------------------------------- */
/* Elementwise maps (MM_FMAP_*): y = phi(x) over n values; backward dx = dy * phi'(x), computed
 * from y alone (elu+1: phi' = min(y, 1); relu: y > 0; identity: 1). dx may alias dy. */
void mmi_attn_fmap_fwd(int32_t fmap, const float *x, float *y, int64_t n);
void mmi_attn_fmap_bwd(int32_t fmap, const float *y, const float *dy, float *dx, int64_t n);
/* FAVOR+ positive features of rows x [rows, d] with projection W [nf, d], given transposed as
 * wt [d, nf]:
 *   phi_r(x) = nf^-1/2 (exp(w_r . xh - |xh|^2 / 2 - stab) + eps),  xh = d^-1/4 x.
 * stab_mode 0: per row, max_r w_r . xh (queries); 1: the given stab for every row (keys).
 * y [rows, nf]; ws: nf + d floats. */
void mmi_attn_favor_fwd(const float *x, int64_t rows, int64_t d, const float *wt, int64_t nf,
                        double eps, int stab_mode, float stab, float *y, float *ws);
/* max over rows and r of w_r . xh (the key stabiliser). ws: nf + d floats. */
float mmi_attn_favor_max(const float *x, int64_t rows, int64_t d, const float *wt, int64_t nf,
                         float *ws);
/* dx [rows, d] (overwritten) = (d phi / d x)^T dy for dy [rows, nf], the stabiliser held
 * constant: dphi_r/dx = (phi_r - eps / sqrt(nf)) (c w_r - c^2 x), c = d^-1/4. w is W [nf, d];
 * ws: nf floats. */
void mmi_attn_favor_bwd(const float *x, int64_t rows, int64_t d, const float *w, int64_t nf,
                        double eps, const float *y, const float *dy, float *dx, float *ws);

/* ---- FLASH / GAU squared-ReLU attention (attn_relu2.c) ------------------------------------ */
/* chunk C = s->chunk (>= n means one chunk). Needs n == m. Per chunk g:
 *   quad: A = relu(Q_g K_g^T / C)^2 (causal: j <= i inside the chunk), o = A V_g
 *   lin:  causal  o += Q_g KV_<g,  KV_<g = sum_{h<g} K_h^T V_h / C  (exclusive prefix)
 *         non-causal (more than one chunk) o += Q_g (sum_all K^T V) / n
 * One chunk, non-causal, is GAU: relu(Q K^T / m)^2 V (m != n allowed). Causal scaling is 1/C
 * for the configured C even when n < C, so streaming reproduces the forward.
 * ws floats: mmi_attn_relu2_ws_floats(C, d, dv). */
size_t mmi_attn_relu2_ws_floats(int64_t chunk, int64_t d, int64_t dv);
void mmi_attn_relu2_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        float *o, float *ws);
void mmi_attn_relu2_bwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        const float *dout, float *dq, float *dk, float *dv, float *ws);

/* ---- gated linear attention, chunkwise parallel (attn_gated.c) ---------------------------- */
/* S_t = diag(a_t) S_{t-1} + k_t v_t^T, o_t = S_t^T (scale q_t), a_t = exp(g_t), n == m.
 * Gates: gmode 0 = none (a = 1), 1 = one constant log-gate *g for all t and dims (RetNet),
 * 2 = scalar per step g [n], 3 = vector per step g [n, d]. Chunk C = s->chunk.
 * ws floats: mmi_attn_gated_ws_floats(n, C, d, dv). */
size_t mmi_attn_gated_ws_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv);
/* hs (may be NULL): receives the state entering every chunk, mmi_attn_gated_hs_floats floats,
 * which the backward then reads instead of recomputing them. */
void mmi_attn_gated_fwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, float *o, float *hs, float *ws);
/* Where a forward keeps its inputs for the backward: q, k [n, d] and v [n, dv] rows. */
typedef struct mmi_attn_keep {
    float *q, *k, *v;
} mmi_attn_keep;
/* Called after each chunk's output rows [c0, c0 + len) are written (while they and the chunk's
 * inputs are in cache): RWKV-6 adds its bonus there. */
typedef struct mmi_attn_chunk_hook {
    void (*fn)(void *ctx, int64_t c0, int64_t len);
    void *ctx;
} mmi_attn_chunk_hook;
/* mmi_attn_gated_fwd that also copies q, k, v into keep (NULL: as mmi_attn_gated_fwd), a chunk's
 * rows just before the chunk first reads them, and then reads the copies (still in L1): the
 * copy is no separate pass over the sequence. Chunk c reads only rows of chunks <= c before it
 * writes its output rows, so o may alias q, k or v. hook (may be NULL) runs after every chunk. */
void mmi_attn_gated_fwd_keep(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                             const float *k, const float *v, const mmi_attn_keep *keep,
                             const mmi_attn_chunk_hook *hook, float *o, float *hs, float *ws);
/* Floats of the saved chunk-entry states: ceil(n / chunk) d dv (checked; SIZE_MAX if too big). */
size_t mmi_attn_gated_hs_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv);
/* Gradients dq, dk, dv (overwritten) and, for gmode 2/3, dg (overwritten, shaped as g). hs: the
 * states the forward saved for these inputs, or NULL (recomputed). */
void mmi_attn_gated_bwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, const float *dout, float *dq, float *dk,
                        float *dv, float *dg, const float *hs, float *ws);
/* The plain recurrence (reference and streaming): advances st [d, dv] by one token and writes
 * o [dv]. g: NULL (a = 1), or gate_len (1 or d) log-gates. */
void mmi_attn_gated_step(int64_t d, int64_t dv, float scale, const float *g, int64_t gate_len,
                         const float *q, const float *k, const float *v, float *st, float *o);

/* ---- RWKV-6 time mixing (attn_rwkv6.c) ---------------------------------------------------- */
/* o_t = scale r_t^T (S_{t-1} + diag(u) k_t v_t^T), S_t = diag(e^{w_t}) S_{t-1} + k_t v_t^T,
 * n == m; w [n, d] log-decays <= 0, u [d] the head's bonus. The history term is the gated
 * kernel (gmode 3) on views shifted by one token. ws floats: mmi_attn_rwkv6_ws_floats. */
size_t mmi_attn_rwkv6_ws_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv);
void mmi_attn_rwkv6_fwd(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                        const float *k, const float *v, float *o, float *hs, float *ws);
/* mmi_attn_rwkv6_fwd keeping r (in keep->q), k and v as mmi_attn_gated_fwd_keep does (keep
 * NULL: not kept). o must not alias r, k or v (the history term writes output row t + 1 before
 * it copies k and v row t + 1). */
void mmi_attn_rwkv6_fwd_keep(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                             const float *k, const float *v, const mmi_attn_keep *keep, float *o,
                             float *hs, float *ws);
/* Gradients dr, dk, dv (overwritten, required), dw [n, d] and du [d] (overwritten; either may
 * be NULL). hs: as the gated kernel's (mmi_attn_gated_hs_floats(n, chunk, d, dv) floats). */
void mmi_attn_rwkv6_bwd(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                        const float *k, const float *v, const float *dout, float *dr, float *dk,
                        float *dv, float *dw, float *du, const float *hs, float *ws);
/* The recurrence for streaming: writes o [dv] from st = S_{t-1} [d, dv], then advances st. */
void mmi_attn_rwkv6_step(int64_t d, int64_t dv, float scale, const float *w, const float *u,
                         const float *r, const float *k, const float *v, float *st, float *o);

#endif /* MMI_ATTN_KERNELS_H */
