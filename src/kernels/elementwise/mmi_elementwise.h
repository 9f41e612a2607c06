/* SPDX-License-Identifier: MIT */
/*
 * mmi_elementwise.h — element-wise kernels on raw float buffers: activation functions with
 * their derivatives, and the per-element optimizer updates. Same rules as every kernel family (gemm/mmi_gemm.h): no
 * handles, no allocation, callers validate (MMI_ASSERT states it). Each function runs the
 * variant of the dispatched path (mmi_elementwise_isa below, see mmi_simd.h) or its portable
 * body, plain C with libm.
 */
#ifndef MMI_ELEMENTWISE_H
#define MMI_ELEMENTWISE_H

#include "../../core/mmi.h"
#include "../simd/mmi_simd.h"

/* y[i] = f(x[i]) for an MM_ACT_* kind (x and y may be the same buffer). */
void mmi_act_forward(int32_t kind, const float *x, float *y, int64_t n);
/* dx[i] = dy[i] * f'(x[i]); y = f(x) from the forward (some derivatives read it). dx may alias
 * dy. Also the forward-mode rule (tangent in dy, tangent out in dx). */
void mmi_act_backward(int32_t kind, const float *x, const float *y, const float *dy, float *dx,
                      int64_t n);

/* ---- optimizer updates (optim_update.c) ----------------------------------------------------
 * torch.optim's per-element float32 formulas, in torch's operation order. The AVX2 and AVX-512
 * bodies use the same operations without fused multiply-adds (sqrt and division are correctly
 * rounded in all), so every path gives bitwise identical results. d below is g * scale
 * (clipping), plus l2 * p when l2 != 0.
 * Every update returns 1 if any value it stores (parameter or state slot) is Inf or NaN, else
 * 0. With dry set it computes exactly the same values and stores nothing: mm_model_step runs a
 * dry pass over every layer first and commits only when no value would be non-finite, so a
 * refused step leaves parameters and state untouched without a backup copy. */
typedef struct mmi_opt_args {
    float *p;            /* parameters, updated */
    const float *g;      /* gradients */
    float *s0, *s1, *s2; /* state slots (see each function) */
    int64_t n;
    float scale; /* clipping factor (1: none) */
    float l2;    /* L2 weight decay folded into d (0: none) */
    float lr;    /* learning rate (SGD, RMSprop) */
    float a, ca; /* beta1 / momentum / alpha and (1 - it) or (1 - dampening) */
    float b, cb; /* beta2 and 1 - beta2 */
    float eps;
    float shrink;         /* AdamW: p *= shrink first (1: none) */
    float nstep;          /* Adam: -lr / bias_correction1 */
    float bc2s;           /* Adam: sqrt(bias_correction2) */
    int32_t flag1, flag2; /* SGD: nesterov, first; Adam: amsgrad; RMSprop: centered */
    int32_t dry;          /* 1: compute and judge only, store nothing */
} mmi_opt_args;
/* SGD: s0 momentum buffer (used when a != 0; flag2 = first step copies d into it), a momentum,
 * ca = 1 - dampening, flag1 Nesterov. */
int mmi_sgd_update(const mmi_opt_args *u);
/* Adam/AdamW: s0 exp_avg, s1 exp_avg_sq, s2 max_exp_avg_sq (flag1 amsgrad); a = beta1,
 * ca = 1 - beta1, b = beta2, cb = 1 - beta2. */
int mmi_adam_update(const mmi_opt_args *u);
/* RMSprop: s0 square_avg, s1 momentum buffer (when a_mom = b > 0), s2 grad_avg (flag1
 * centered); a = alpha, ca = 1 - alpha, b = momentum. */
int mmi_rmsprop_update(const mmi_opt_args *u);

/* ---- row broadcasts and reductions (reduce.c) ----------------------------------------------
 * The AVX2 and AVX-512 bodies keep the portable association (per column in row order; sumsq
 * in 8 fixed lanes: two ymm of float64 on AVX2, one zmm on AVX-512), so results are bitwise
 * identical on every path. */
/* y[r, j] += b[j] for r < rows, j < n (y row-major, rows x n). */
void mmi_add_rows(float *y, const float *b, int64_t rows, int64_t n);
/* acc[j] += sum over r of x[r, j] in float64, rows added in order. */
void mmi_colsum_f64(const float *x, int64_t rows, int64_t n, double *acc);
/* The same over an n-column slice of rows ld floats apart (x[r, j] at x[r * ld + j], ld >= n);
 * each column's sum is the one mmi_colsum_f64 gives it, whichever slice holds it. */
void mmi_colsum_f64_ld(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc);
/* Sum of squares in float64 (lane i % 8 accumulates element i; lanes summed pairwise). A NaN or
 * Inf element makes the result non-finite; finite floats cannot overflow it. */
double mmi_sumsq_f64(const float *x, int64_t n);
/* d[i] = d[i] * keep + take * s[i] for i < n: both products and the sum rounded to float, as
 * SB3's polyak_update (target.mul_(1 - tau), then add_(param, alpha = tau)); bitwise identical
 * on every path. */
void mmi_lerp(float *d, const float *s, int64_t n, float keep, float take);
/* A dense layer's forward epilogue on rows x n of a matrix with row stride ld: z[r, j] += b[j]
 * (b NULL: no bias), then ya[r, j] = f_kind(z[r, j]) (ya NULL: no activation; ya has stride ld).
 * Bitwise mmi_add_rows then mmi_act_forward row by row on the same path; ya may be z (in
 * place: the activation's values end in z). */
void mmi_bias_act_rows(float *z, const float *b, float *ya, int32_t kind, int64_t rows, int64_t n,
                       int64_t ld);

/* ---- non-affine LayerNorm over rows (norm.c) ------------------------------------------------ */
/* y = (x - mean) / sqrt(var + eps) per row of d; st[2r] = mean, st[2r+1] = 1/sqrt(var + eps). */
void mmi_layernorm_rows_fwd(int64_t rows, int64_t d, double eps, const float *x, float *y,
                            double *st);
/* dx (=, or += if accumulate) r (g - mean g - xhat mean(g xhat)) per row, xn = xhat and st from
 * the forward: the LayerNorm backward, and also its JVP (g = the input tangent). */
void mmi_layernorm_rows_lin(int64_t rows, int64_t d, const float *xn, const double *st,
                            const float *g, float *dx, int accumulate);

/* ---- ISA variants (one table per path; mmi_elementwise_isa_get(), NULL: portable) ----
 * Element counts are any n >= 0 (the variants handle their tails). Each returns 1 when it
 * handled the call, 0 to leave it to the portable body (e.g. an activation kind it does not
 * vectorise); sumsq_f64 returns its result through out. The activation backward, optimizer
 * and reduction variants perform the portable arithmetic exactly (no FMA, same association),
 * so they are bitwise identical to the portable bodies; the activation forward is within a few
 * ulp (vector exponential), and the AVX-512 forward performs the AVX2 lane's operations. */
typedef struct mmi_elementwise_isa {
    int (*act_forward)(int32_t kind, const float *x, float *y, int64_t n);
    int (*act_backward)(int32_t kind, const float *x, const float *y, const float *dy, float *dx,
                        int64_t n);
    /* the update's non-finite verdict (1: some new value is NaN or Inf) in *nonfinite */
    int (*adam_update)(const mmi_opt_args *u, int *nonfinite);
    int (*rmsprop_update)(const mmi_opt_args *u, int *nonfinite);
    int (*add_rows)(float *y, const float *b, int64_t rows, int64_t n);
    int (*colsum_f64)(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc);
    int (*sumsq_f64)(const float *x, int64_t n, double *out);
    /* NULL where a path has no body of its own: the portable loop runs */
    int (*lerp)(float *d, const float *s, int64_t n, float keep, float take);
    /* NULL, or 0 for a kind it does not fuse: the unfused add_rows / act_forward pair runs */
    int (*bias_act_rows)(float *z, const float *b, float *ya, int32_t kind, int64_t rows, int64_t n,
                         int64_t ld);
    /* y = exp(x) by the path's vector exponential (mmi_exp256 / mmi_exp512), every lane as the
     * kernels compute it: only the tests call it (the primitive's edges and NaN) */
    int (*exp)(const float *x, float *y, int64_t n);
} mmi_elementwise_isa;

/* The AVX2+FMA table (elementwise_avx2.c), NULL when the build did not compile it. */
const mmi_elementwise_isa *mmi_elementwise_isa_avx2(void);
/* The AVX-512 F/DQ/BW/VL table (elementwise_avx512.c), NULL when the build did not compile it
 * (the dispatch then keeps the AVX2 table on the AVX-512 path). Same contracts as the AVX2
 * table, 16 lanes with masked tails: its activation forward is the AVX2 one's arithmetic lane
 * for lane; everything else is bitwise the portable bodies (sumsq's 8 lanes are the 8 float64
 * lanes of one zmm). */
const mmi_elementwise_isa *mmi_elementwise_isa_avx512(void);
/* The table of path p: the best one written at or below p (p available), NULL on the
 * portable path (the family's plain C bodies run). */
static inline const mmi_elementwise_isa *mmi_elementwise_isa_for(mmi_simd_path p)
{
    if (p >= MMI_SIMD_AVX512 && mmi_elementwise_isa_avx512()) return mmi_elementwise_isa_avx512();
    return p >= MMI_SIMD_AVX2 ? mmi_elementwise_isa_avx2() : NULL;
}
/* The table of the process's path (mmi_simd_path_get). */
static inline const mmi_elementwise_isa *mmi_elementwise_isa_get(void)
{
    return mmi_elementwise_isa_for(mmi_simd_path_get());
}

/* The portable bodies alone (the AVX2 variants call some for their tails; tests compare). */
void mmi_act_forward_portable(int32_t kind, const float *x, float *y, int64_t n);
void mmi_act_backward_portable(int32_t kind, const float *x, const float *y, const float *dy,
                               float *dx, int64_t n);
/* the optimizer bodies return the non-finite verdict */
int mmi_adam_update_portable(const mmi_opt_args *u);
int mmi_rmsprop_update_portable(const mmi_opt_args *u);

/* The AVX2+FMA variants (act_avx2.c, optim_update_avx2.c, reduce_avx2.c), present only when
 * compiled: reach them through the table. */
int mmi_act_forward_avx2(int32_t kind, const float *x, float *y, int64_t n);
int mmi_act_backward_avx2(int32_t kind, const float *x, const float *y, const float *dy, float *dx,
                          int64_t n);
int mmi_adam_update_avx2(const mmi_opt_args *u, int *nonfinite);
int mmi_rmsprop_update_avx2(const mmi_opt_args *u, int *nonfinite);
int mmi_add_rows_avx2(float *y, const float *b, int64_t rows, int64_t n);
int mmi_colsum_f64_avx2(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc);
int mmi_sumsq_f64_avx2(const float *x, int64_t n, double *out);
int mmi_lerp_avx2(float *d, const float *s, int64_t n, float keep, float take);
int mmi_bias_act_rows_avx2(float *z, const float *b, float *ya, int32_t kind, int64_t rows,
                           int64_t n, int64_t ld);
int mmi_exp_avx2(const float *x, float *y, int64_t n);

/* The AVX-512 variants (act_avx512.c, optim_update_avx512.c, reduce_avx512.c), present only
 * when compiled: reach them through the table. */
int mmi_act_forward_avx512(int32_t kind, const float *x, float *y, int64_t n);
int mmi_act_backward_avx512(int32_t kind, const float *x, const float *y, const float *dy,
                            float *dx, int64_t n);
int mmi_adam_update_avx512(const mmi_opt_args *u, int *nonfinite);
int mmi_rmsprop_update_avx512(const mmi_opt_args *u, int *nonfinite);
int mmi_add_rows_avx512(float *y, const float *b, int64_t rows, int64_t n);
int mmi_colsum_f64_avx512(const float *x, int64_t rows, int64_t n, int64_t ld, double *acc);
int mmi_sumsq_f64_avx512(const float *x, int64_t n, double *out);
int mmi_lerp_avx512(float *d, const float *s, int64_t n, float keep, float take);
int mmi_bias_act_rows_avx512(float *z, const float *b, float *ya, int32_t kind, int64_t rows,
                             int64_t n, int64_t ld);
int mmi_exp_avx512(const float *x, float *y, int64_t n);

#endif /* MMI_ELEMENTWISE_H */
