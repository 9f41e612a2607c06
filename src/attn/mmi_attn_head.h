/* SPDX-License-Identifier: MIT */
/*
 * mmi_attn_head.h — one (batch, head) of attention, whatever the kind: the dispatch from a kind
 * and its settings to the kernels, shared by the mm_attn operator (attn_run.c) and the model's
 * attention block (src/model/layer_attn.c), so each kind is wired to its kernels once.
 */
#ifndef MMI_ATTN_HEAD_H
#define MMI_ATTN_HEAD_H

#include "../core/mmi.h"
#include "../kernels/attn/mmi_attn_kernels.h"

typedef struct mmi_attn_head {
    int32_t kind, fmap, normalize;
    int32_t gmode;    /* GATED: MMI_GMODE_* of mmi_attn.h (0 none, 1 const, 2 scalar, 3 vector) */
    mmi_attn_dims s;  /* n, m, d, dv, scale, causal, window, stride, chunk */
    double eps, feps; /* LINEAR / PERFORMER denominator eps, PERFORMER feature eps */
    int64_t nf;       /* feature count (d for LINEAR, n_features for PERFORMER) */
    const float *proj, *projt; /* PERFORMER W [nf, d] and W^T [d, nf] */
    const float *u;            /* RWKV6: the head's bonus [d] (g holds the log-decays w) */
    float *du;                 /* RWKV6 backward: receives the head's du [d] (NULL: not wanted) */
    /* GATED, RWKV6: the chunk-entry states forward saves and backward reads
     * (mmi_attn_gated_hs_floats), or NULL: the backward recomputes them */
    float *hs;
} mmi_attn_head;

/* Floats of workspace mmi_attn_head_fwd / _bwd need for sequences up to n (and m <= n). */
size_t mmi_attn_head_ws_floats(const mmi_attn_head *a, int64_t n);

/* Forward of one head. fq, fk receive the features (LINEAR, PERFORMER; [n, nf], [m, nf]),
 * row the per-row log-sum-exp or denominators, *stab the PERFORMER key stabiliser; g the
 * head's gates (GATED). Outputs not used by the kind may be NULL. */
void mmi_attn_head_fwd(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, float *fq, float *fk, float *o, float *row, float *stab,
                       float *ws);
/* GATED, RWKV6 forward of one head that also copies q, k, v into keep for the backward, a
 * chunk at a time as the kernel first reads them (mmi_attn_gated_fwd_keep); o must not alias
 * q, k or v. */
void mmi_attn_head_fwd_keep(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                            const float *g, const mmi_attn_keep *keep, float *o, float *ws);
/* LINEAR forward of one head (mmi_attn_head_fwd's) that also copies v into vk and the output
 * o into ok for the backward, each chunk while the kernel has it in cache
 * (mmi_attn_linear_fwd_io); o must not alias q, k or v. */
void mmi_attn_head_fwd_linear_keep(const mmi_attn_head *a, const float *q, const float *k,
                                   const float *v, float *fq, float *fk, float *vk, float *o,
                                   float *ok, float *row, float *ws);
/* Backward of one head from what forward produced; writes dq, dk, dv (all required) and dg
 * (GATED scalar or vector gates; may be NULL). */
void mmi_attn_head_bwd(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, const float *fq, const float *fk, const float *o,
                       const float *row, const float *dout, float *dq, float *dk, float *dv,
                       float *dg, float *ws);
/* Forward-mode derivative of one head: to = d out along tangents tq, tk, tv (gates and the
 * PERFORMER stabilisers fixed), written densely with float64 sums (O(n m (d + dv)); for the
 * model's JVP, not a fast path). ws: mmi_attn_head_jvp_ws_floats(a, n) floats. */
size_t mmi_attn_head_jvp_ws_floats(const mmi_attn_head *a, int64_t n);
void mmi_attn_head_jvp(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, float stab, const float *tq, const float *tk,
                       const float *tv, float *to, float *ws);

/* Draws a FAVOR+ projection W [nf, d]: orthogonal d x d blocks, rows rescaled by chi_d norms
 * (performer-pytorch, scaling = 0); work holds 2 d^2 doubles. */
void mmi_attn_draw_projection(mmi_rng *rng, int64_t d, int64_t nf, float *w, double *work);

#endif /* MMI_ATTN_HEAD_H */
