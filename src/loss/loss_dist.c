/* SPDX-License-Identifier: MIT */
/* loss_dist.c — data-parallel CLIP and SigLIP (mm_loss_set_comm): each rank holds B pairs of a
 * global batch of N = size * B and gets the global loss and exact gradients for its own rows,
 * without any rank holding the N x N logits (docs/DISTRIBUTED.md §4).
 *   CLIP:   all-gather the text features; score the local B x N row block (row statistics are
 *           complete, column statistics partial); all-gather the partial column statistics
 *           (2 N floats + 3 sums) and merge them; a second sweep of the row block gives dx
 *           directly and a partial dY for all N texts, which one all-reduce completes.
 *   SigLIP: the text block and its gradient accumulator travel around the ring; after size
 *           blocks every rank has scored its images against every text, and one more step
 *           hands each accumulated text gradient back to its owner.
 * Every call starts with a vote (mmi_comm_vote), so a rank with bad input makes all ranks
 * return instead of waiting in a collective. */
#include "../kernels/loss/mmi_loss_dist.h"
#include "../core/mmi_comm.h"
#include "mmi_loss.h"

#include <math.h>
#include <string.h>

#define LOGIT_LIMIT 1e37 /* as loss_pairwise.c */

/* CLIP workspace: Y_all, dY_all [N, D]; column statistics and their gather buffers. */
typedef struct clip_dws {
    float *y_all, *dy_all;
    float *lse_r; /* B */
    double *wz_r; /* B */
    float *send;  /* 2 N + 9: partial lse_c, wz_c, then three split float64 sums */
    float *recv;  /* size * (2 N + 9) */
    float *lse_c; /* N, merged */
    void *block;  /* mmi_block_ws_size(B, N) */
} clip_dws;

typedef struct siglip_dws {
    float *cur, *nxt; /* [y | dy] blocks of 2 B D floats that travel */
    void *block;
} siglip_dws;

/* Carves h->dws (base, h->dws_bytes long) or measures (base NULL) the workspace for B <= mb,
 * D <= md; 0 on overflow. */
static size_t dist_layout(const mm_loss *h, int32_t size, int64_t mb, int64_t md, char *base,
                          clip_dws *c, siglip_dws *s)
{
    mmi_carve y = base ? mmi_carve_at(base, h->dws_bytes) : mmi_carve_measure();
    int64_t n, nd, g, two;
    size_t blk;
    if (mmi_mul_i64(&n, size, mb) || mmi_mul_i64(&nd, n, md) ||
        mmi_mul_i64(&g, 2 * n + 9, (int64_t)size + 1) || mmi_mul_i64(&two, mb, 2 * md))
        return 0;
    if (h->kind == MM_LOSS_CLIP) {
        if (!(blk = mmi_block_ws_size(mb, n, h->tile, h->n_threads))) return 0;
        c->y_all = mmi_carve_take(&y, nd, sizeof(float));
        c->dy_all = mmi_carve_take(&y, nd, sizeof(float));
        c->lse_r = mmi_carve_take(&y, mb, sizeof(float));
        c->wz_r = mmi_carve_take(&y, mb, sizeof(double));
        c->send = mmi_carve_take(&y, g, sizeof(float)); /* recv follows send inside this block */
        c->recv = c->send ? c->send + 2 * n + 9 : NULL;
        c->lse_c = mmi_carve_take(&y, n, sizeof(float));
        c->block = mmi_carve_take(&y, (int64_t)blk, 1);
    } else {
        if (!(blk = mmi_block_ws_size(mb, mb, h->tile, h->n_threads))) return 0;
        s->cur = mmi_carve_take(&y, two, sizeof(float));
        s->nxt = mmi_carve_take(&y, two, sizeof(float));
        s->block = mmi_carve_take(&y, (int64_t)blk, 1);
    }
    return y.overflow ? 0 : y.off;
}

MM_API int mm_loss_set_comm(mm_loss *h, mm_comm *comm, uint32_t flags)
{
    static const char fn[] = "mm_loss_set_comm";
    clip_dws c;
    siglip_dws s;
    size_t bytes;
    void *ws;
    if (!h) return MM_E_INVALID_ARG;
    if (flags & ~(uint32_t)MM_COMM_LOCAL_LOSS)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: unknown flags 0x%x", fn, (unsigned)flags);
    if (h->kind != MM_LOSS_CLIP && h->kind != MM_LOSS_SIGLIP)
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: %s has no distributed form", fn,
                        mmi_loss_kind_name(h->kind));
    if (!comm) {
        mmi_free(&h->alloc, h->dws, h->dws_bytes);
        h->dws = NULL;
        h->dws_bytes = 0;
        h->comm = NULL;
        return MM_OK;
    }
    bytes = dist_layout(h, comm->size, h->max_batch, h->max_dim, NULL, &c, &s);
    if (!bytes)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: workspace for %d ranks x %lld x %lld overflows",
                        fn, (int)comm->size, (long long)h->max_batch, (long long)h->max_dim);
    if (!(ws = mmi_malloc(&h->alloc, bytes)))
        return mmi_fail(&h->err, MM_E_NOMEM, "%s: cannot allocate %zu bytes", fn, bytes);
    mmi_free(&h->alloc, h->dws, h->dws_bytes);
    h->dws = ws;
    h->dws_bytes = bytes;
    h->comm = comm;
    h->comm_flags = flags;
    return MM_OK;
}

/* ---- the agreement step ------------------------------------------------------------------ */

/* What the ranks agreed on in the vote. */
typedef struct dist_call {
    int64_t b, d, n; /* local pairs, width, global pairs */
    int any_dy;      /* some rank wants text gradients: the collective part of dy runs */
    double s;        /* logit scale exp(t) */
    int t_passes;
} dist_call;

/* Local checks, then the vote: same B, D, scale and bias on every rank, logits bounded over
 * the global batch. Every rank returns the same verdict (its own error if it had one). */
static int dist_begin(mm_loss *h, const char *fn, int32_t kind, const mm_tensor *x,
                      const mm_tensor *y, const double *loss, const mm_tensor *dx,
                      const mm_tensor *dy, dist_call *dc)
{
    enum { NV = 7 };
    float v[NV] = {0};
    const float *all;
    double nx = 0.0, ny = 0.0, bias = kind == MM_LOSS_SIGLIP ? h->logit_bias : 0.0;
    int rc = mmi_loss_kind_is(h, fn, kind);
    if (rc == MM_OK) rc = mmi_loss_check_pair(h, fn, x, y, dx, dy);
    if (rc == MM_OK) rc = mmi_loss_scalar_apart(h, fn, loss, dx, "dx", dy, "dy");
    dc->s = mmi_loss_scale(h, &dc->t_passes);
    if (rc == MM_OK) {
        v[0] = (float)x->shape[0];
        v[1] = (float)x->shape[1];
        v[2] = (float)mmi_loss_max_row_norm(x);
        v[3] = (float)mmi_loss_max_row_norm(y);
        v[4] = (float)dc->s;
        v[5] = (float)bias;
        v[6] = dy ? 1.0f : 0.0f;
    }
    if ((rc = mmi_comm_vote(h->comm, rc, v, NV, &all, &h->err, fn)) != MM_OK) return rc;
    dc->any_dy = 0;
    for (int32_t r = 0; r < h->comm->size; r++) {
        const float *q = all + r * (NV + 1) + 1;
        if (q[0] != v[0] || q[1] != v[1])
            return mmi_fail(&h->err, MM_E_SHAPE,
                            "%s: rank %d has x [%lld, %lld] but rank %d has [%lld, %lld]; every "
                            "rank needs the same B and D",
                            fn, (int)h->comm->rank, (long long)v[0], (long long)v[1], (int)r,
                            (long long)q[0], (long long)q[1]);
        if (q[4] != v[4] || q[5] != v[5])
            return mmi_fail(&h->err, MM_E_INVALID_ARG,
                            "%s: rank %d uses logit scale %g and bias %g, rank %d %g and %g", fn,
                            (int)h->comm->rank, v[4], v[5], (int)r, q[4], q[5]);
        nx = q[2] > nx ? q[2] : nx;
        ny = q[3] > ny ? q[3] : ny;
        dc->any_dy |= q[6] != 0.0f;
    }
    if (dc->s * nx * ny + fabs(bias) > LOGIT_LIMIT)
        return mmi_fail(&h->err, MM_E_NUMERIC,
                        "%s: logits of the global batch could overflow float32", fn);
    dc->b = x->shape[0];
    dc->d = x->shape[1];
    dc->n = dc->b * h->comm->size;
    return MM_OK;
}

/* ---- CLIP -------------------------------------------------------------------------------- */

/* Merges the ranks' partial column statistics into lse_c (all N columns) and returns the
 * sums of lse_c and of sum_i Q_ij z_ij over columns [j0, j1). */
static void clip_merge_cols(const float *recv, int32_t size, int64_t n, int64_t j0, int64_t j1,
                            float *lse_c, double *sum_lse, double *sum_wz)
{
    int64_t stride = 2 * n + 9;
    *sum_lse = 0.0;
    *sum_wz = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double m = -INFINITY, l = 0.0, wz = 0.0, lse;
        for (int32_t r = 0; r < size; r++) m = fmax(m, (double)recv[r * stride + j]);
        for (int32_t r = 0; r < size; r++) l += exp((double)recv[r * stride + j] - m);
        lse = m + log(l);
        for (int32_t r = 0; r < size; r++)
            wz += exp((double)recv[r * stride + j] - lse) * (double)recv[r * stride + n + j];
        lse_c[j] = (float)lse;
        if (j >= j0 && j < j1) {
            *sum_lse += lse;
            *sum_wz += wz;
        }
    }
}

/* Splits v into three floats that add back to it exactly (as mmi_comm_sum_f64). */
static void split3(double v, float *out)
{
    double r;
    out[0] = (float)v;
    r = v - (double)out[0];
    out[1] = (float)r;
    out[2] = (float)(r - (double)out[1]);
}

static double join3(const float *p) { return (double)p[0] + (double)p[1] + (double)p[2]; }

int mmi_loss_clip_dist(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                       mm_tensor *dx, mm_tensor *dy)
{
    static const char fn[] = "mm_loss_clip";
    mm_comm *cm = h->comm;
    int32_t me = cm->rank, size = cm->size;
    int local = (h->comm_flags & MM_COMM_LOCAL_LOSS) != 0;
    dist_call dc;
    clip_dws w;
    siglip_dws unused;
    mmi_block_args a;
    double sr = 0.0, wzr = 0.0, diag = 0.0, slc, swc, tot[3] = {0}, cnt, rows, cols, dlt;
    int rc;
    MMI_ASSERT(h->dws && h->dws_bytes > 0); /* mm_loss_set_comm reserved it for this comm */
    if ((rc = dist_begin(h, fn, MM_LOSS_CLIP, x, y, loss, dx, dy, &dc)) != MM_OK) return rc;
    dist_layout(h, size, h->max_batch, h->max_dim, (char *)h->dws, &w, &unused);
    if ((rc = mmi_comm_allgather(cm, y->data, w.y_all, dc.b * dc.d, &h->err, fn)) != MM_OK)
        return rc;
    a = (mmi_block_args){x->data, w.y_all, dc.b, dc.n, dc.d, h->tile, me * dc.b, (float)dc.s, 0.0f};
    mmi_clip_block_stats(&a, w.block, h->pool, w.lse_r, w.wz_r, w.send, w.send + dc.n, &diag);
    for (int64_t i = 0; i < dc.b; i++) {
        sr += (double)w.lse_r[i];
        wzr += w.wz_r[i];
    }
    split3(sr, w.send + 2 * dc.n);
    split3(wzr, w.send + 2 * dc.n + 3);
    split3(diag, w.send + 2 * dc.n + 6);
    if ((rc = mmi_comm_allgather(cm, w.send, w.recv, 2 * dc.n + 9, &h->err, fn)) != MM_OK)
        return rc;
    clip_merge_cols(w.recv, size, dc.n, local ? me * dc.b : 0, local ? (me + 1) * dc.b : dc.n,
                    w.lse_c, &slc, &swc);
    for (int32_t r = 0; r < size && !local; r++)
        for (int q = 0; q < 3; q++) tot[q] += join3(w.recv + r * (2 * dc.n + 9) + 2 * dc.n + 3 * q);
    if (local) {
        tot[0] = sr;
        tot[1] = wzr;
        tot[2] = diag;
    }
    cnt = (double)(local ? dc.b : dc.n);
    rows = (tot[0] - tot[2]) / cnt;
    cols = (slc - tot[2]) / cnt;
    dlt = h->grad_scale * (tot[1] + swc - 2.0 * tot[2]) / (2.0 * cnt);
    if (dx || dc.any_dy) {
        /* gather-with-grad scale: s * size / (2 N) = s / (2 B) */
        float c = (float)(dc.s * h->grad_scale / (2.0 * (double)dc.b));
        mmi_clip_block_grad(&a, w.lse_r, w.lse_c, c, dx ? dx->data : NULL,
                            dc.any_dy ? w.dy_all : NULL, w.block, h->pool);
        if (dc.any_dy && (rc = mmi_comm_allreduce(cm, w.dy_all, dc.n * dc.d, &h->err, fn)) != MM_OK)
            return rc;
        if (dy)
            memcpy(dy->data, w.dy_all + me * dc.b * dc.d, (size_t)(dc.b * dc.d) * sizeof(float));
    }
    h->st_i2t = rows;
    h->st_t2i = cols;
    h->st_loss = 0.5 * (rows + cols);
    h->st_dscale = dc.t_passes ? dlt : 0.0;
    h->st_valid = (double)dc.b;
    if (loss) *loss = h->st_loss;
    return MM_OK;
}

/* ---- SigLIP ------------------------------------------------------------------------------ */

int mmi_loss_siglip_dist(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                         mm_tensor *dx, mm_tensor *dy)
{
    static const char fn[] = "mm_loss_siglip";
    mm_comm *cm = h->comm;
    int32_t size = cm->size;
    int local = (h->comm_flags & MM_COMM_LOCAL_LOSS) != 0;
    dist_call dc;
    clip_dws unused;
    siglip_dws w;
    double sums[3] = {0.0, 0.0, 0.0}, cnt;
    int64_t bd, travel;
    float c;
    int rc;
    MMI_ASSERT(h->dws && h->dws_bytes > 0); /* mm_loss_set_comm reserved it for this comm */
    if ((rc = dist_begin(h, fn, MM_LOSS_SIGLIP, x, y, loss, dx, dy, &dc)) != MM_OK) return rc;
    dist_layout(h, size, h->max_batch, h->max_dim, (char *)h->dws, &unused, &w);
    bd = dc.b * dc.d;
    travel = dc.any_dy ? 2 * bd : bd; /* the gradient accumulator rides along when needed */
    c = (float)(dc.s * h->grad_scale / (double)dc.b); /* s * size / N: gather-with-grad */
    memcpy(w.cur, y->data, (size_t)bd * sizeof(float));
    for (int32_t k = 0; k < size; k++) {
        /* step k: the texts of rank (rank - k) mod size; positives only in the own block */
        mmi_block_args a = {x->data,
                            w.cur,
                            dc.b,
                            dc.b,
                            dc.d,
                            h->tile,
                            k == 0 ? 0 : -1,
                            (float)dc.s,
                            (float)h->logit_bias};
        float *t;
        mmi_siglip_block(&a, c, dx ? dx->data : NULL, k > 0, dc.any_dy ? w.cur + bd : NULL, k > 0,
                         w.block, h->pool, sums);
        if (k == size - 1) break;
        if ((rc = mmi_comm_ring(cm, w.cur, w.nxt, travel, &h->err, fn)) != MM_OK) return rc;
        t = w.cur, w.cur = w.nxt, w.nxt = t;
    }
    /* The block now held belongs to rank + 1 and carries every rank's share of its dy. */
    if (dc.any_dy && size > 1) {
        if ((rc = mmi_comm_ring(cm, w.cur + bd, w.nxt + bd, bd, &h->err, fn)) != MM_OK) return rc;
        w.cur = w.nxt;
    }
    if (dy) memcpy(dy->data, w.cur + bd, (size_t)bd * sizeof(float));
    if (!local && (rc = mmi_comm_sum_f64(cm, sums, 3, &h->err, fn)) != MM_OK) return rc;
    cnt = (double)(local ? dc.b : dc.n);
    h->st_loss = sums[0] / cnt;
    h->st_dscale = dc.t_passes ? h->grad_scale * sums[2] / cnt : 0.0;
    h->st_dbias = h->grad_scale * sums[1] / cnt;
    h->st_valid = (double)dc.b;
    if (loss) *loss = h->st_loss;
    return MM_OK;
}
