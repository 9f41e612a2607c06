/* SPDX-License-Identifier: MIT */
/*
 * mmi_attn.h — the inside of mm_attn: the handle struct shared by the operator's files
 * (attn.c: options, create, parameters, projection; attn_run.c: forward and backward;
 * attn_step.c: streaming). Nothing here is exported.
 */
#ifndef MMI_ATTN_H
#define MMI_ATTN_H

#include "../core/mmi.h"
#include "../kernels/attn/mmi_attn_kernels.h"
#include "mmi_attn_head.h"
#include "../tensor/mmi_tensor.h"

/* Gate modes of the gated kernel (mmi_attn_gated_fwd's gmode). */
enum { MMI_GMODE_NONE = 0, MMI_GMODE_CONST = 1, MMI_GMODE_SCALAR = 2, MMI_GMODE_VECTOR = 3 };

struct mm_attn {
    mmi_alloc alloc;
    mmi_err err;
    /* configuration (validated at create) */
    int32_t kind, fmap, causal, normalize, pattern, gate, n_threads;
    int64_t d, dv, heads, max_batch, max_seq, chunk, window, stride;
    int64_t nf; /* feature count: d (LINEAR) or n_features (PERFORMER) */
    /* run-time parameters */
    double scale, eps, feps;
    mmi_rng rng;
    mmi_pool *pool;
    /* one arena holding everything below */
    void *arena;
    size_t arena_bytes;
    /* PERFORMER projection W [nf, d], its transpose [d, nf], and draw work (2 d^2 doubles) */
    float *proj, *projt;
    double *draw_work;
    float *retnet_lg; /* per head log(1 - 2^(-5-h)) */
    /* saved by forward, per batch-head slices of max_seq rows */
    float *sq, *sk, *sv, *so, *srow, *sfq, *sfk, *sg, *sstab;
    float *su, *sdu; /* RWKV6: bonus u [H, d]; per batch-head du [B H, d] of a backward */
    float *shs;        /* GATED, RWKV6: chunk-entry states of the forward, hs_floats per slice */
    int64_t hs_floats; /* mmi_attn_gated_hs_floats(max_seq, chunk, d, dv) */
    int32_t fwd_valid, fwd_gmode; /* RWKV6's forward runs in MMI_GMODE_VECTOR */
    int64_t fwd_b, fwd_n, fwd_m;
    /* per-thread kernel workspace (ws_floats each) and backward scratch */
    float *ws;
    size_t ws_floats; /* per thread, even */
    size_t ws_kern;   /* leading part used by the kernels; backward scratch follows */
    /* streaming */
    float *st;    /* per batch-head state: F x dv (LINEAR, PERFORMER, GATED, RELU2 prefix) */
    double *stz;  /* per batch-head normaliser sum (F) */
    float *cache; /* per batch-head KV cache: rows x (d + dv) (SOFTMAX, SPARSE, RELU2 chunk) */
    float *pstab; /* per batch-head PERFORMER key stabiliser, fixed at the first token */
    int64_t cache_rows, pos, step_b;
};

/* Sizes of one head-slice of the saved buffers (floats). */
#define MMI_ATTN_SLICE(h, w) ((h)->max_seq * (w))

/* Reads caller options over the kind's defaults and validates them as mm_attn_create does
 * (dv 0 -> d_head, n_features 0 -> int(d ln d)); text in e prefixed "mm_attn_create". */
int mmi_attn_opts_resolve(mm_attn_opts *o, const mm_attn_opts *src, mmi_err *e);

/* The dims of a call for one head. */
mmi_attn_dims mmi_attn_dims_of(const mm_attn *h, int64_t n, int64_t m);
/* The per-head description of a call (kind, settings, projection) for mmi_attn_head_*. */
mmi_attn_head mmi_attn_head_of(const mm_attn *h, int64_t n, int64_t m, int32_t gmode);

#endif /* MMI_ATTN_H */
