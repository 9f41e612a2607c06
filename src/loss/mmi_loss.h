/* SPDX-License-Identifier: MIT */
/* mmi_loss.h — the inside of mm_loss: the handle struct, shared by the files of src/loss
 * (loss.c: lifecycle and parameters; loss_check.c: argument validation; loss_pairwise.c: CLIP,
 * SigLIP, ITC; loss_rows.c: cross entropy, BCE, Kimi; loss_helpers.c: normalisation, FLIP, BLIP,
 * length reward). Nothing here is exported. */
#ifndef MMI_LOSS_H
#define MMI_LOSS_H

#include "../core/mmi.h"
#include "../kernels/loss/mmi_loss_kernels.h"
#include "../tensor/mmi_tensor.h"

struct mm_loss {
    mmi_alloc alloc;
    mmi_err err;
    int32_t kind, n_threads;
    int64_t max_batch, max_dim, max_queue, tile, group_size;
    mmi_pool *pool;
    mmi_rng rng;
    void *ws; /* the kind's kernel workspace (NULL for the row-wise kinds) */
    size_t ws_bytes;
    double *blip_w; /* max_batch doubles for mm_loss_blip_hard_negatives */
    size_t blip_bytes;
    /* parameters (MM_LOSS_*) */
    double logit_scale, logit_bias, temp, alpha, smoothing, tau, norm_eps, grad_scale;
    int32_t ignore_index, baseline, eps_mode, clamp_scale;
    /* statistics of the last successful compute call */
    double st_loss, st_dscale, st_dbias, st_dtemp, st_i2t, st_t2i, st_valid;
    /* data-parallel CLIP / SigLIP (loss_dist.c, mm_loss_set_comm) */
    mm_comm *comm; /* NULL: single process */
    uint32_t comm_flags;
    void *dws; /* the distributed workspace */
    size_t dws_bytes;
};

/* ---- argument checks (loss_check.c); each writes a message naming fn and the tensor ------ */
/* t must be non-NULL with ndim dimensions (ndim 0: any rank >= 1). */
int mmi_loss_need(mm_loss *h, const char *fn, const char *name, const mm_tensor *t, int32_t ndim,
                  const char *layout);
/* b must have a's shape. */
int mmi_loss_same_shape(mm_loss *h, const char *fn, const char *na, const mm_tensor *a,
                        const char *nb, const mm_tensor *b);
/* Every element of t must be finite. */
int mmi_loss_finite(mm_loss *h, const char *fn, const char *name, const mm_tensor *t);
/* The output out must not share memory with the input in. */
int mmi_loss_no_alias(mm_loss *h, const char *fn, const char *nout, const mm_tensor *out,
                      const char *nin, const mm_tensor *in);
/* The same for raw arrays (index and length inputs, int32 outputs): the n_out bytes at out must
 * not share memory with the n_in bytes at in (either NULL: nothing to check). */
int mmi_loss_no_alias_raw(mm_loss *h, const char *fn, const char *nout, const void *out,
                          size_t n_out, const char *nin, const void *in, size_t n_in);
/* The double *loss of a compute call (NULL: nothing to check) must not share memory with the
 * gradient outputs g0, g1 (NULL: absent), named n0, n1: it is stored last, over them. It may
 * point into an input (every input has been read by then). */
int mmi_loss_scalar_apart(mm_loss *h, const char *fn, const double *loss, const mm_tensor *g0,
                          const char *n0, const mm_tensor *g1, const char *n1);
/* The handle must be of kind want. */
int mmi_loss_kind_is(mm_loss *h, const char *fn, int32_t want);
/* rows <= max_batch and width <= max_dim (width < 0: not checked). */
int mmi_loss_within(mm_loss *h, const char *fn, const char *name, int64_t rows, int64_t width);
/* The kind's name ("MM_LOSS_CLIP"). */
const char *mmi_loss_kind_name(int32_t kind);

/* Effective logit scale s = exp(t) (clamped to [1, 100] under MM_LOSS_CLAMP_LOGIT_SCALE) and
 * whether dLoss/dt passes through (0 when clamped). */
double mmi_loss_scale(const mm_loss *h, int *t_passes);

/* ---- shared by loss_pairwise.c and the distributed losses (loss_dist.c) ------------------ */
/* The CLIP / SigLIP argument checks of one rank: x, y [B, D] alike, within the reservation,
 * finite; dx, dy optional and alias-free. */
int mmi_loss_check_pair(mm_loss *h, const char *fn, const mm_tensor *x, const mm_tensor *y,
                        const mm_tensor *dx, const mm_tensor *dy);
/* Largest row L2 norm of a [rows, width] tensor (0 for NULL), in float64. */
double mmi_loss_max_row_norm(const mm_tensor *t);
/* The distributed forms of mm_loss_clip / mm_loss_siglip (h->comm set; loss_dist.c). */
int mmi_loss_clip_dist(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                       mm_tensor *dx, mm_tensor *dy);
int mmi_loss_siglip_dist(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                         mm_tensor *dx, mm_tensor *dy);

#endif /* MMI_LOSS_H */
