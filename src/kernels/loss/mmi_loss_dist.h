/* SPDX-License-Identifier: MIT */
/*
 * mmi_loss_dist.h — rectangular blocks of the CLIP and SigLIP losses, the pieces the
 * distributed losses (src/loss/loss_dist.c) assemble: a rank scores its B local rows against
 * the N = size * B columns of the global batch (CLIP) or against one B-column block at a time
 * (SigLIP ring), and the positive pairs sit on a shifted diagonal (column diag + i for row i)
 * or nowhere. Same tiling, tile primitives and float64 sums as the single-process kernels
 * (loss_clip_kernel.c, loss_siglip_kernel.c); results never depend on the thread count.
 */
#ifndef MMI_LOSS_DIST_H
#define MMI_LOSS_DIST_H

#include "mmi_loss_kernels.h"

typedef struct mmi_block_args {
    const float *a, *b; /* rows [nr, d] and columns [nc, d] */
    int64_t nr, nc, d, tile;
    int64_t diag;      /* row i's positive is column diag + i; -1: no positives */
    float scale, bias; /* z = scale a_i . b_j (+ bias for SigLIP) */
} mmi_block_args;

/* Workspace bytes for blocks up to max_nr x max_nc (0 on overflow). */
size_t mmi_block_ws_size(int64_t max_nr, int64_t max_nc, int64_t tile, int32_t n_threads);

/* CLIP statistics of one block. Per row i: lse_r[i] = LSE_j z_ij and wz_r[i] = sum_j P_ij z_ij
 * (P the row softmax); per column j, over this block's rows only: lse_c[j] = LSE_i z_ij and
 * wz_c[j] = sum_i Q_ij z_ij (Q the column softmax over these rows). *diag = sum of the
 * positive logits. */
void mmi_clip_block_stats(const mmi_block_args *a, void *ws, mmi_pool *pool, float *lse_r,
                          double *wz_r, float *lse_c, float *wz_c, double *diag);

/* CLIP gradients of one block given the final statistics: G = exp(z - lse_r) + exp(z - lse_c)
 * - 2 on the positives; da = c G b (NULL: skipped), db = c G^T a (NULL: skipped), both
 * overwritten. */
void mmi_clip_block_grad(const mmi_block_args *a, const float *lse_r, const float *lse_c, float c,
                         float *da, float *db, void *ws, mmi_pool *pool);

/* SigLIP loss and gradients of one block, fused: sums[0] += sum softplus(-label z),
 * sums[1] += sum G, sums[2] += sum G (z - bias) with G = sigmoid(z) - label01; da (+)= c G b,
 * db (+)= c G^T a (accumulate when the *_acc flag is set, else overwrite; NULL: skipped). */
void mmi_siglip_block(const mmi_block_args *a, float c, float *da, int da_acc, float *db,
                      int db_acc, void *ws, mmi_pool *pool, double sums[3]);

#endif /* MMI_LOSS_DIST_H */
