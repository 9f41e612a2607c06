/* SPDX-License-Identifier: MIT */
/*
 * mmi_loss_kernels.h — pure loss kernels on raw float buffers (used by src/loss). No handles, no
 * allocation, no error text: the operator validates shapes and values and hands over workspace
 * sized by the *_ws_size functions below (64-byte aligned). Every sum that spans a batch is
 * accumulated in float64; every log-sum-exp is max-shifted. The math is in
 * docs/LOSSES.md.
 */
#ifndef MMI_LOSS_KERNELS_H
#define MMI_LOSS_KERNELS_H

#include "../gemm/mmi_gemm.h"
#include "../simd/mmi_simd.h"

/* ---- tiled pairwise losses (CLIP, SigLIP) -------------------------------------------------- */
/* Rows x_i and columns y_j, n pairs of width d; logits z = scale * x y^T (+ bias for SigLIP),
 * visited in tile x tile blocks so no n x n matrix is ever held. */
typedef struct mmi_pair_args {
    const float *x, *y; /* [n, d] each */
    float *dx, *dy;     /* NULL: that gradient is not computed; else [n, d], overwritten */
    int64_t n, d, tile;
    float scale;       /* s = exp(t) */
    float bias;        /* SigLIP b (CLIP ignores it) */
    double grad_scale; /* multiplies every gradient */
} mmi_pair_args;

typedef struct mmi_pair_result {
    double loss;
    double loss_rows, loss_cols; /* CLIP: the two directions (image->text, text->image) */
    double dlog_scale;           /* dLoss/dt with s = exp(t) (times grad_scale) */
    double dbias;                /* SigLIP dLoss/db (times grad_scale) */
} mmi_pair_result;

/* Workspace bytes for n <= max_n pairs of width d <= max_d, tile edge tile, on a pool of
 * n_threads threads. Returns 0 on size overflow. */
size_t mmi_loss_clip_ws_size(int64_t max_n, int64_t max_d, int64_t tile, int32_t n_threads);
size_t mmi_loss_siglip_ws_size(int64_t max_n, int64_t max_d, int64_t tile, int32_t n_threads);

/* CLIP (two passes: online row/column log-sum-exp statistics, then the gradients). */
void mmi_loss_clip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r);
/* SigLIP (one fused pass). */
void mmi_loss_siglip(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r);

/* The same with the tile primitives ops and the GEMM kernel set u of one SIMD path (tests run
 * every path the machine has: mmi_dispatch_for, mmi_gemm_ukr_for). */
void mmi_loss_clip_with(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r,
                        const struct mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u);
void mmi_loss_siglip_with(const mmi_pair_args *a, void *ws, mmi_pool *pool, mmi_pair_result *r,
                          const struct mmi_loss_tile_ops *ops, const mmi_gemm_ukr *u);

/* Benchmarks only: the same calls' tile GEMMs (packing included, same shapes, operands, order
 * and workspace) with every element-wise pass left out, so the GEMM share of a call can be
 * timed on its own; the outputs (dx, dy, the tile buffers) hold meaningless values. Returns the
 * floating-point operations of the GEMMs run (2 m n k each). */
double mmi_loss_clip_gemms(const mmi_pair_args *a, void *ws, mmi_pool *pool);
double mmi_loss_siglip_gemms(const mmi_pair_args *a, void *ws, mmi_pool *pool);

/* ---- the tiles' GEMMs on operands packed once (loss_tile_gemm.c) ---------------------------
 * u is the dispatched GEMM kernel set (mmi_gemm_ukr_for(mmi_simd_path_get())). An operand is
 * packed for all its k blocks into u's panel layout: op(A) (m x k) takes mmi_tg_pad(m) * k
 * floats, op(B) (k x n) mmi_tg_pad(n) * k floats, whatever the set (MMI_TG_PAD is a multiple
 * of every set's mr and nr). mmi_tg_run computes C = alpha op(A) op(B) + beta C from packed
 * operands (beta 0: C is not read) with mmi_gemm's native packed register tile (k blocks of its
 * own, see loss_tile_gemm.c), bitwise the same for every pool size. */
#define MMI_TG_PAD 96
int64_t mmi_tg_pad(int64_t rows);
void mmi_tg_pack_a(const mmi_gemm_ukr *u, int ta, const float *a, int64_t lda, int64_t m, int64_t k,
                   float *ap, mmi_pool *pool);
void mmi_tg_pack_b(const mmi_gemm_ukr *u, int tb, const float *b, int64_t ldb, int64_t k, int64_t n,
                   float *bp, mmi_pool *pool);
void mmi_tg_run(const mmi_gemm_ukr *u, int64_t m, int64_t n, int64_t k, float alpha,
                const float *ap, const float *bp, float beta, float *c, int64_t ldc,
                mmi_pool *pool);

/* ---- BLIP ITC, one direction --------------------------------------------------------------- */
/* Rows q (online) and qm (momentum) [n, d]; columns kb [n, d] then kq [nq, d] (the queue);
 * sims = rows . cols / temp. Targets alpha softmax(qm . cols / temp) + (1 - alpha) onehot. */
typedef struct mmi_itc_args {
    const float *q, *qm, *kb, *kq;
    float *dq; /* NULL or [n, d], overwritten */
    int64_t n, nq, d, tile;
    float temp, alpha;
    double grad_scale; /* multiplies dq and dtemp (the caller folds in the 1/2 of ITA) */
} mmi_itc_args;

size_t mmi_loss_itc_ws_size(int64_t max_n, int64_t max_q, int64_t tile, int32_t n_threads);
/* Writes this direction's mean loss and (grad_scale times) dLoss/dtemp. */
void mmi_loss_itc_dir(const mmi_itc_args *a, void *ws, mmi_pool *pool, double *loss, double *dtemp);

/* ---- row-wise losses ----------------------------------------------------------------------- */
/* Cross entropy with label smoothing eps over rows whose target != ignore (targets already
 * checked to lie in [0, c) otherwise). Returns the summed (not averaged) row losses; dz (NULL or
 * [n, c]) receives grad_scale * dLoss/dz for the mean over n_valid rows. */
double mmi_loss_ce_rows(const float *z, const int32_t *target, int64_t n, int64_t c, double eps,
                        int32_t ignore, int64_t n_valid, double grad_scale, float *dz);

/* BCE with logits, summed over all n*c entries (float64). dz (NULL or [n, c]) receives
 * grad_scale * (sigmoid(z) - y). */
double mmi_loss_bce_sum(const float *z, const float *y, int64_t count, double grad_scale,
                        float *dz);

/* Kimi k1.5 surrogate over n samples in groups of k: returns the mean squared residual;
 * dlp (NULL or [n]) receives grad_scale * dLoss/dlogp. baseline 0: mean reward, 1: tau log
 * mean exp(r / tau). */
double mmi_loss_kimi(const float *lp, const float *lp_old, const float *r, int64_t n, int64_t k,
                     double tau, int baseline, double grad_scale, float *dlp);

/* Kimi length reward for groups of k (see mm_loss_kimi_length_reward); out may alias r. */
void mmi_kimi_length_reward(const int64_t *len, const float *r, int64_t n, int64_t k, float *out);

/* ---- helpers ------------------------------------------------------------------------------- */
/* Row-wise L2 normalisation of u [n, d] (x may alias u); mode 0: u / max(|u|, eps), mode 1:
 * u / (|u| + eps). */
void mmi_l2norm_fwd(const float *u, int64_t n, int64_t d, double eps, int mode, float *x);
/* Its backward: du = J^T dx (du may alias dx, not u). */
void mmi_l2norm_bwd(const float *u, const float *dx, int64_t n, int64_t d, double eps, int mode,
                    float *du);

/* keep [b, k] distinct indices of [0, l) in random order, per row (Floyd's sampling then a
 * Fisher-Yates shuffle of the chosen set: no workspace). */
void mmi_patch_draw(mmi_rng *rng, int64_t b, int64_t l, int64_t k, int32_t *keep);
/* out[b, j, :] = x[b, keep[b, j], :] */
void mmi_patch_gather(const float *x, const int32_t *keep, int64_t b, int64_t l, int64_t k,
                      int64_t d, float *out);
/* dx = 0; dx[b, keep[b, j], :] += dout[b, j, :] */
void mmi_patch_scatter(const float *dout, const int32_t *keep, int64_t b, int64_t l, int64_t k,
                       int64_t d, float *dx);

/* BLIP hard negatives over the first n columns of sim [n, ld] (see mm_loss_blip_hard_negatives);
 * w holds n doubles of workspace. */
void mmi_blip_hard_negatives(const float *sim, int64_t ld, int64_t n, const int64_t *ids,
                             int by_column, mmi_rng *rng, double *w, int32_t *neg);

/* ---- element-wise tile primitives (loss_tiles.c portable, loss_tiles_avx2/avx512.c vector) -- */
/* The hot inner loops of the tiled losses, on one row of a tile (len contiguous values) or on a
 * strip of columns of it. Sums are accumulated in float64. exp of arguments below about -87 may
 * return a tiny positive value instead of 0 (absolute error < 1.2e-38). */
typedef struct mmi_loss_tile_ops {
    /* max_j z_j (len >= 1). */
    float (*row_max)(const float *z, int64_t len);
    /* Returns sum_j exp(z_j - m) and adds sum_j exp(z_j - m) w_j to *wsum (w may be z);
     * m >= max z, finite. */
    double (*row_expsum)(const float *z, const float *w, int64_t len, float m, double *wsum);
    /* Column maxima over rows: mx[j] = max(mx[j], max_i z[i*ldz + j]) for j < len. */
    void (*col_max)(const float *z, int64_t ldz, int64_t rows, int64_t len, float *mx);
    /* Column statistics: acc[j] += sum_i exp(z[i*ldz + j] - m[j]), wacc[j] += sum_i exp(.) z. */
    void (*col_expsum)(const float *z, int64_t ldz, int64_t rows, int64_t len, const float *m,
                       double *acc, double *wacc);
    /* CLIP gradient row, in place: g_j = exp(z_j - lr) + exp(z_j - lc[j]). */
    void (*clip_grad_row)(float *z, int64_t len, float lr, const float *lc);
    /* SigLIP row, in place: with v_j = z_j + bias and g_j = sigmoid(v_j), z becomes g; returns
     * sum softplus(v_j) and adds sum g_j to *gsum and sum g_j z_j (= g (v - bias)) to *gzsum. */
    double (*siglip_row)(float *z, int64_t len, float bias, double *gsum, double *gzsum);
    /* ITC gradient row, in place: g_j = exp(s_j - ls) - alpha exp(sm_j - lm). */
    void (*itc_grad_row)(float *s, const float *sm, int64_t len, float ls, float alpha, float lm);
    /* BCE with logits over count values: returns sum softplus(z) - y z; if dz is not NULL
     * writes scale * (sigmoid(z) - y). */
    double (*bce)(const float *z, const float *y, int64_t count, float scale, float *dz);
} mmi_loss_tile_ops;

/* The set of the dispatched path (mmi_loss_tile_ops_for(mmi_simd_path_get())). */
const mmi_loss_tile_ops *mmi_loss_tile_ops_get(void);
/* The portable set alone (tests compare both). */
extern const mmi_loss_tile_ops mmi_loss_tile_ops_portable;
/* The AVX2/FMA set, or NULL when the build did not compile it. */
const mmi_loss_tile_ops *mmi_loss_tile_ops_avx2(void);
/* The AVX-512 F/DQ/BW/VL set (loss_tiles_avx512.c), or NULL when the build did not compile it
 * (the dispatch then keeps the AVX2 set on the AVX-512 path). Same contracts and accuracy as the
 * AVX2 set, 16 lanes, masked tails; only the horizontal order of its float64 sums differs. */
const mmi_loss_tile_ops *mmi_loss_tile_ops_avx512(void);
/* The set of path p: the best one written at or below p (p available). */
static inline const mmi_loss_tile_ops *mmi_loss_tile_ops_for(mmi_simd_path p)
{
    if (p >= MMI_SIMD_AVX512 && mmi_loss_tile_ops_avx512()) return mmi_loss_tile_ops_avx512();
    if (p >= MMI_SIMD_AVX2 && mmi_loss_tile_ops_avx2()) return mmi_loss_tile_ops_avx2();
    return &mmi_loss_tile_ops_portable;
}

/* The rectangular blocks of the distributed losses (loss_dist_kernel.c) are part of this
 * family's contract; their declarations stay in their own file, included here. */
#include "mmi_loss_dist.h"

#endif /* MMI_LOSS_KERNELS_H */
