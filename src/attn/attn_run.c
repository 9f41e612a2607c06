/* SPDX-License-Identifier: MIT */
/* attn_run.c — mm_attn_forward, mm_attn_forward_gated, mm_attn_forward_rwkv6 and the
 * backwards: shape checks with
 * messages that name the shapes, then one task per (batch, head) on the handle's pool. Each
 * task saves its inputs into the reserved slices (so the caller may reuse its buffers before
 * backward; GATED and RWKV6 kernels copy them a chunk at a time as they read them), runs the
 * kind's kernel with its thread's workspace, and copies out. */
#include "mmi_attn.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct run_ctx {
    mm_attn *h;
    int64_t n, m;
    const float *q, *k, *v, *g; /* caller inputs (forward) */
    float *out;
    const float *dout;
    float *dq, *dk, *dv, *dg; /* caller gradients (backward; NULL: not wanted) */
    int out_apart;            /* out shares no address with q, k or v (forward) */
} run_ctx;

/* ---- shape checks --------------------------------------------------------------------------- */
static int shape_fail(mm_attn *h, const char *fn, const char *name, const mm_tensor *t,
                      const char *why)
{
    char buf[96];
    mmi_tensor_shape_str(t, buf, sizeof buf);
    return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s is %s %s", fn, name, buf, why);
}

/* q [B,H,N,d] against the handle; sets B and N. */
static int check_q(mm_attn *h, const char *fn, const mm_tensor *q, int64_t *b, int64_t *n)
{
    char why[128];
    if (q->ndim != 4) return shape_fail(h, fn, "q", q, "but must be [B,H,N,d_head]");
    if (q->shape[1] != h->heads || q->shape[3] != h->d) {
        snprintf(why, sizeof why, "but the handle was created with n_heads %lld and d_head %lld",
                 (long long)h->heads, (long long)h->d);
        return shape_fail(h, fn, "q", q, why);
    }
    if (q->shape[0] > h->max_batch || q->shape[2] > h->max_seq)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: q has batch %lld and length %lld but the "
                        "handle reserved max_batch %lld and max_seq %lld",
                        fn, (long long)q->shape[0], (long long)q->shape[2], (long long)h->max_batch,
                        (long long)h->max_seq);
    *b = q->shape[0];
    *n = q->shape[2];
    return MM_OK;
}

/* t must be [B, H, len, w]. */
static int check_like(mm_attn *h, const char *fn, const char *name, const mm_tensor *t, int64_t b,
                      int64_t len, int64_t w, const char *lname, const char *wname)
{
    char why[160];
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    if (t->ndim == 4 && t->shape[0] == b && t->shape[1] == h->heads && t->shape[3] == w &&
        (len < 0 || t->shape[2] == len))
        return MM_OK;
    snprintf(why, sizeof why, "but must be [%lld,%lld,%s,%lld] (%s)", (long long)b,
             (long long)h->heads, lname, (long long)w, wname);
    return shape_fail(h, fn, name, t, why);
}

/* 1 if the n floats at a and the m floats at b share an address (compared as integers). */
static int overlaps(const float *a, int64_t n, const float *b, int64_t m)
{
    return mmi_overlaps(a, sizeof(float) * (size_t)n, b, sizeof(float) * (size_t)m);
}

/* MM_OK, or MM_E_INVALID_ARG when out shares memory with the input x without being x itself
 * (the same address and size, which the forward supports: each batch-head's output rows are
 * then that head's input rows, read before they are written). Any other overlap would let one
 * head's output overwrite rows another head has yet to read, in an order that depends on the
 * threads. */
static int out_apart_or_same(mm_attn *h, const char *fn, const mm_tensor *out, const char *name,
                             const mm_tensor *x)
{
    if (!overlaps(out->data, out->numel, x->data, x->numel) ||
        (out->data == x->data && out->numel == x->numel))
        return MM_OK;
    return mmi_fail(&h->err, MM_E_INVALID_ARG,
                    "%s: out overlaps %s without being it (out may be q, k or v itself, or apart "
                    "from them)",
                    fn, name);
}

static int check_inputs(mm_attn *h, const char *fn, const mm_tensor *q, const mm_tensor *k,
                        const mm_tensor *v, const mm_tensor *out, int64_t *b, int64_t *n,
                        int64_t *m)
{
    int rc;
    char nb[32];
    if (!q || !k || !v || !out)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: q, k, v and out must not be NULL", fn);
    if ((rc = check_q(h, fn, q, b, n)) != MM_OK ||
        (rc = check_like(h, fn, "k", k, *b, -1, h->d, "M", "d_head")) != MM_OK)
        return rc;
    *m = k->shape[2];
    if (*m > h->max_seq)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: k has length %lld but the handle reserved "
                        "max_seq %lld",
                        fn, (long long)*m, (long long)h->max_seq);
    snprintf(nb, sizeof nb, "%lld", (long long)*n);
    if ((rc = check_like(h, fn, "v", v, *b, *m, h->dv, "M", "dv")) != MM_OK ||
        (rc = check_like(h, fn, "out", out, *b, *n, h->dv, nb, "dv")) != MM_OK ||
        (rc = out_apart_or_same(h, fn, out, "q", q)) != MM_OK ||
        (rc = out_apart_or_same(h, fn, out, "k", k)) != MM_OK ||
        (rc = out_apart_or_same(h, fn, out, "v", v)) != MM_OK)
        return rc;
    if (*n != *m && (h->kind == MM_ATTN_GATED || h->kind == MM_ATTN_RWKV6 ||
                     (h->kind == MM_ATTN_RELU2 && (h->causal || h->chunk < *n))))
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: q has length %lld and k %lld; %s needs equal "
                        "lengths",
                        fn, (long long)*n, (long long)*m,
                        h->kind == MM_ATTN_RELU2 ? "chunked RELU2 attention" : "gated attention");
    return MM_OK;
}

/* ---- per batch-head forward ----------------------------------------------------------------- */
static float *thread_ws(const mm_attn *h, int32_t slot)
{
    return h->ws + (size_t)slot * h->ws_floats;
}

/* Batch-head i's gates for the kernel: the saved ones (SCALAR, VECTOR: run_forward saved them as
 * it checked them), GATED's constant RetNet log-gate, or NULL. */
static const float *head_gates(const mm_attn *h, int64_t i)
{
    if (h->kind == MM_ATTN_GATED && h->fwd_gmode != MMI_GMODE_SCALAR &&
        h->fwd_gmode != MMI_GMODE_VECTOR)
        return h->fwd_gmode == MMI_GMODE_CONST ? h->retnet_lg + i % h->heads : NULL;
    return h->sg ? h->sg + i * h->max_seq * h->d : NULL; /* NULL + 0 is UB */
}

/* GATED, RWKV6 with an output apart from the inputs: the kernel copies q, k, v into the saved
 * slices a chunk at a time as it first reads them (no separate copy pass, whose copies had left
 * L2 again by the time the kernel read them). Returns 0 when out overlaps an input, which takes
 * the copy-first path of fwd_task. */
static int fwd_keep(run_ctx *c, int64_t i, float *ws)
{
    mm_attn *h = c->h;
    const int64_t S = h->max_seq, d = h->d, dv = h->dv, head = i % h->heads;
    const float *q = c->q + i * c->n * d, *k = c->k + i * c->m * d, *v = c->v + i * c->m * dv;
    float *o = c->out + i * c->n * dv;
    const mmi_attn_keep keep = {h->sq + i * S * d, h->sk + i * S * d, h->sv + i * S * dv};
    mmi_attn_head a;
    if (overlaps(o, c->n * dv, q, c->n * d) || overlaps(o, c->n * dv, k, c->m * d) ||
        overlaps(o, c->n * dv, v, c->m * dv))
        return 0;
    a = mmi_attn_head_of(h, c->n, c->m, h->fwd_gmode);
    if (h->kind == MM_ATTN_RWKV6) a.u = h->su + head * d;
    if (h->shs) a.hs = h->shs + i * h->hs_floats;
    mmi_attn_head_fwd_keep(&a, q, k, v, head_gates(h, i), &keep, o, ws);
    return 1;
}

/* LINEAR with an output apart from the inputs: the kernel writes the caller's output and copies
 * v and the output into the saved slices a chunk at a time, while each chunk is in cache (a copy
 * pass before and after read rows that had left it). Returns 0 when out overlaps an input, which
 * takes fwd_task's copy-first path. */
static int lin_keep(run_ctx *c, int64_t i, float *ws)
{
    mm_attn *h = c->h;
    const int64_t S = h->max_seq, d = h->d, dv = h->dv;
    const float *q = c->q + i * c->n * d, *k = c->k + i * c->m * d, *v = c->v + i * c->m * dv;
    float *o = c->out + i * c->n * dv;
    mmi_attn_head a;
    if (overlaps(o, c->n * dv, q, c->n * d) || overlaps(o, c->n * dv, k, c->m * d) ||
        overlaps(o, c->n * dv, v, c->m * dv))
        return 0;
    a = mmi_attn_head_of(h, c->n, c->m, h->fwd_gmode);
    mmi_attn_head_fwd_linear_keep(&a, q, k, v, h->sfq + i * S * h->nf, h->sfk + i * S * h->nf,
                                  h->sv + i * S * dv, o, h->so + i * S * dv, h->srow + i * S, ws);
    return 1;
}

static void fwd_task(void *vctx, int64_t i, int64_t ntask, int32_t slot)
{
    run_ctx *c = (run_ctx *)vctx;
    mm_attn *h = c->h;
    const int64_t S = h->max_seq, d = h->d, dv = h->dv, head = i % h->heads;
    float *v = h->sv + i * S * dv;
    const float *q, *k;
    /* GATED and RWKV6 backwards do not read the output: it goes straight to the caller (the
     * kernel reads only the saved copies, so out may alias an input). Nor does RELU2's, whose
     * output goes to the caller when it is apart from every input (another task's kernel may
     * still read an input this task's rows would overwrite), saving the copy out of the
     * reserved slice. */
    const int direct = h->kind == MM_ATTN_GATED || h->kind == MM_ATTN_RWKV6 ||
                       (h->kind == MM_ATTN_RELU2 && c->out_apart);
    /* LINEAR's backward reads the saved features, never q and k: the feature map reads the
     * caller's rows (before this head's output is written, so out may still alias them) */
    const int raw_qk = h->kind == MM_ATTN_LINEAR;
    float *o = direct ? c->out + i * c->n * dv : h->so + i * S * dv, *ws = thread_ws(h, slot);
    (void)ntask;
    if (direct && h->kind != MM_ATTN_RELU2 && fwd_keep(c, i, ws)) return;
    if (raw_qk && lin_keep(c, i, ws)) return;
    if (raw_qk) { /* (the handle reserves no saved q and k for LINEAR) */
        q = c->q + i * c->n * d, k = c->k + i * c->m * d;
    } else {
        float *sq = h->sq + i * S * d, *sk = h->sk + i * S * d;
        memcpy(sq, c->q + i * c->n * d, sizeof(float) * (size_t)(c->n * d));
        memcpy(sk, c->k + i * c->m * d, sizeof(float) * (size_t)(c->m * d));
        q = sq, k = sk;
    }
    memcpy(v, c->v + i * c->m * dv, sizeof(float) * (size_t)(c->m * dv));
    {
        mmi_attn_head a = mmi_attn_head_of(h, c->n, c->m, h->fwd_gmode);
        const float *g = head_gates(h, i);
        if (h->kind == MM_ATTN_RWKV6) a.u = h->su + head * d;
        if (h->shs) a.hs = h->shs + i * h->hs_floats;
        mmi_attn_head_fwd(&a, q, k, v, g, h->sfq ? h->sfq + i * S * h->nf : NULL,
                          h->sfk ? h->sfk + i * S * h->nf : NULL, o, h->srow + i * S, &h->sstab[i],
                          ws);
    }
    if (!direct) memcpy(c->out + i * c->n * dv, o, sizeof(float) * (size_t)(c->n * dv));
}

/* Log-gates and log-decays must be finite and <= 0. They are copied into the saved slices
 * (one of gl floats per batch-head, at stride S * d) in the same vector pass that checks them
 * (mmi_attn_log_gate_copy), so the gates are read once; only when one is bad is it looked for,
 * to name it (the handle then holds no forward, so the partial copy is unused). */
static int save_log_gates(mm_attn *h, const char *fn, const char *name, const mm_tensor *g,
                          int64_t bh, int64_t gl)
{
    int bad = 0;
    for (int64_t t = 0; t < bh; t++)
        bad |= mmi_attn_log_gate_copy(gl, g->data + t * gl, h->sg + t * h->max_seq * h->d);
    if (!bad) return MM_OK;
    for (int64_t i = 0; i < g->numel; i++)
        if (!(g->data[i] <= 0.0f) || isinf(g->data[i]))
            return mmi_fail(&h->err, MM_E_NUMERIC,
                            "%s: %s[%lld] = %g; log-%s must be finite "
                            "and <= 0",
                            fn, name, (long long)i, (double)g->data[i],
                            name[0] == 'w' ? "decays" : "gates");
    return MM_OK;
}

static int run_forward(mm_attn *h, const char *fn, const mm_tensor *q, const mm_tensor *k,
                       const mm_tensor *v, const mm_tensor *g, int gmode, mm_tensor *out)
{
    run_ctx c;
    int64_t b = 0, n = 0, m = 0;
    int rc;
    h->fwd_valid = 0;
    if ((rc = check_inputs(h, fn, q, k, v, out, &b, &n, &m)) != MM_OK) return rc;
    if (g) {
        char nb[192];
        if (g->ndim == 3) {
            if (g->shape[0] != b || g->shape[1] != h->heads || g->shape[2] != n) {
                snprintf(nb, sizeof nb, "but must be [%lld,%lld,%lld] or [%lld,%lld,%lld,%lld]",
                         (long long)b, (long long)h->heads, (long long)n, (long long)b,
                         (long long)h->heads, (long long)n, (long long)h->d);
                return shape_fail(h, fn, "g", g, nb);
            }
            gmode = MMI_GMODE_SCALAR;
        } else {
            snprintf(nb, sizeof nb, "%lld", (long long)n);
            if ((rc = check_like(h, fn, "g", g, b, n, h->d, nb, "d_head")) != MM_OK) return rc;
            gmode = MMI_GMODE_VECTOR;
        }
        if ((rc = save_log_gates(h, fn, h->kind == MM_ATTN_RWKV6 ? "w" : "g", g, b * h->heads,
                                 gmode == MMI_GMODE_VECTOR ? n * h->d : n)) != MM_OK)
            return rc;
    }
    c.h = h, c.n = n, c.m = m;
    c.q = q->data, c.k = k->data, c.v = v->data, c.g = g ? g->data : NULL, c.out = out->data;
    c.out_apart = !overlaps(out->data, out->numel, q->data, q->numel) &&
                  !overlaps(out->data, out->numel, k->data, k->numel) &&
                  !overlaps(out->data, out->numel, v->data, v->numel);
    h->fwd_gmode = gmode;
    mmi_pool_run_slots(h->pool, fwd_task, &c, b * h->heads);
    h->fwd_valid = 1;
    h->fwd_b = b, h->fwd_n = n, h->fwd_m = m;
    mmi_err_clear(&h->err);
    return MM_OK;
}

MM_API int mm_attn_forward(mm_attn *h, const mm_tensor *q, const mm_tensor *k, const mm_tensor *v,
                           mm_tensor *out)
{
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind == MM_ATTN_RWKV6) {
        h->fwd_valid = 0;
        return mmi_fail(&h->err, MM_E_STATE,
                        "mm_attn_forward: an MM_ATTN_RWKV6 handle needs "
                        "w and u (mm_attn_forward_rwkv6)");
    }
    return run_forward(h, "mm_attn_forward", q, k, v, NULL,
                       h->gate == MM_GATE_RETNET ? MMI_GMODE_CONST : MMI_GMODE_NONE, out);
}

MM_API int mm_attn_forward_gated(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                 const mm_tensor *v, const mm_tensor *g, mm_tensor *out)
{
    static const char fn[] = "mm_attn_forward_gated";
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind != MM_ATTN_GATED) {
        h->fwd_valid = 0;
        return mmi_fail(&h->err, MM_E_STATE, "%s: the handle is not MM_ATTN_GATED", fn);
    }
    if (!g) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: g is NULL", fn);
    return run_forward(h, fn, q, k, v, g, MMI_GMODE_SCALAR, out);
}

MM_API int mm_attn_forward_rwkv6(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                                 const mm_tensor *v, const mm_tensor *w, const mm_tensor *u,
                                 mm_tensor *out)
{
    static const char fn[] = "mm_attn_forward_rwkv6";
    int64_t b = 0, n = 0, m = 0;
    int rc;
    char why[96];
    if (!h) return MM_E_INVALID_ARG;
    h->fwd_valid = 0;
    if (h->kind != MM_ATTN_RWKV6)
        return mmi_fail(&h->err, MM_E_STATE, "%s: the handle is not MM_ATTN_RWKV6", fn);
    if (!w || !u) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: w and u must not be NULL", fn);
    if ((rc = check_inputs(h, fn, q, k, v, out, &b, &n, &m)) != MM_OK) return rc;
    snprintf(why, sizeof why, "%lld", (long long)n);
    if ((rc = check_like(h, fn, "w", w, b, n, h->d, why, "d_head")) != MM_OK) return rc;
    if (u->ndim != 2 || u->shape[0] != h->heads || u->shape[1] != h->d) {
        snprintf(why, sizeof why, "but must be [%lld,%lld] (n_heads, d_head)", (long long)h->heads,
                 (long long)h->d);
        return shape_fail(h, fn, "u", u, why);
    }
    for (int64_t i = 0; i < u->numel; i++)
        if (!isfinite(u->data[i]))
            return mmi_fail(&h->err, MM_E_NUMERIC, "%s: u[%lld] = %g is not finite", fn,
                            (long long)i, (double)u->data[i]);
    /* run_forward checks w again as log-decays; u is saved once it passed */
    memcpy(h->su, u->data, sizeof(float) * (size_t)u->numel);
    return run_forward(h, fn, q, k, v, w, MMI_GMODE_VECTOR, out);
}

/* ---- per batch-head backward ---------------------------------------------------------------- */
static void bwd_task(void *vctx, int64_t i, int64_t ntask, int32_t slot)
{
    run_ctx *c = (run_ctx *)vctx;
    mm_attn *h = c->h;
    const int64_t S = h->max_seq, d = h->d, dv = h->dv, f = h->nf > d ? h->nf : d;
    mmi_attn_head a = mmi_attn_head_of(h, c->n, c->m, h->fwd_gmode);
    const int gm = h->fwd_gmode;
    const int64_t gl = gm == MMI_GMODE_VECTOR ? c->n * d : c->n;
    const float *g = gm == MMI_GMODE_CONST ? h->retnet_lg + i % h->heads
                     : h->sg               ? h->sg + i * S * d
                                           : NULL;
    float *ws = thread_ws(h, slot), *scr = ws + h->ws_kern;
    /* outputs the caller did not ask for go to scratch (the kernels write all three) */
    float *gq = c->dq ? c->dq + i * c->n * d : scr,
          *gk = c->dk ? c->dk + i * c->m * d : scr + S * f;
    float *gv = c->dv ? c->dv + i * c->m * dv : scr + 2 * S * f;
    (void)ntask;
    if (h->kind == MM_ATTN_RWKV6) a.u = h->su + (i % h->heads) * d, a.du = h->sdu + i * d;
    if (h->shs) a.hs = h->shs + i * h->hs_floats;
    /* LINEAR keeps no q and k (its backward reads the features): the features stand in */
    const float *fq = h->sfq ? h->sfq + i * S * h->nf : NULL,
                *fk = h->sfk ? h->sfk + i * S * h->nf : NULL;
    mmi_attn_head_bwd(
        &a, h->sq ? h->sq + i * S * d : fq, h->sk ? h->sk + i * S * d : fk, h->sv + i * S * dv, g,
        fq, fk, h->so + i * S * dv, h->srow + i * S, c->dout + i * c->n * dv, gq, gk, gv,
        c->dg && (gm == MMI_GMODE_SCALAR || gm == MMI_GMODE_VECTOR) ? c->dg + i * gl : NULL, ws);
}

/* du [H, d] = the per batch-head partial sums over the batch, in float64. */
static void sum_du(const mm_attn *h, float *du)
{
    for (int64_t j = 0; j < h->heads * h->d; j++) {
        double acc = 0.0;
        for (int64_t b = 0; b < h->fwd_b; b++) acc += h->sdu[b * h->heads * h->d + j];
        du[j] = (float)acc;
    }
}

/* MM_OK, or MM_E_INVALID_ARG naming the first pair of dout, dq, dk, dv, dg, du (NULL: not
 * requested; RWKV6's dg is its dw) that share memory: a gradient written over dout, or over another gradient, would
 * be read back by a kernel that still needs the other (softmax's dq over dout did so silently). */
static int grads_apart(mm_attn *h, const char *fn, const mm_tensor *dout, const mm_tensor *dq,
                       const mm_tensor *dk, const mm_tensor *dv, const mm_tensor *dg,
                       const mm_tensor *du)
{
    const mm_tensor *t[6] = {dout, dq, dk, dv, dg, du};
    const char *const name[6] = {"dout", "dq", "dk", "dv", h->kind == MM_ATTN_RWKV6 ? "dw" : "dg",
                                 "du"};
    for (int i = 1; i < 6; i++)
        for (int j = 0; j < i; j++)
            if (t[i] && t[j] && overlaps(t[i]->data, t[i]->numel, t[j]->data, t[j]->numel))
                return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s shares memory with %s", fn,
                                name[i], name[j]);
    return MM_OK;
}

static int run_backward(mm_attn *h, const char *fn, const mm_tensor *dout, mm_tensor *dq,
                        mm_tensor *dk, mm_tensor *dv, mm_tensor *dg, mm_tensor *du)
{
    run_ctx c;
    char nb[32], mb[32];
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if (!h->fwd_valid)
        return mmi_fail(&h->err, MM_E_STATE, "%s: no successful forward to differentiate", fn);
    snprintf(nb, sizeof nb, "%lld", (long long)h->fwd_n);
    snprintf(mb, sizeof mb, "%lld", (long long)h->fwd_m);
    if ((rc = check_like(h, fn, "dout", dout, h->fwd_b, h->fwd_n, h->dv, nb, "dv")) != MM_OK ||
        (dq && (rc = check_like(h, fn, "dq", dq, h->fwd_b, h->fwd_n, h->d, nb, "d_head"))) ||
        (dk && (rc = check_like(h, fn, "dk", dk, h->fwd_b, h->fwd_m, h->d, mb, "d_head"))) ||
        (dv && (rc = check_like(h, fn, "dv", dv, h->fwd_b, h->fwd_m, h->dv, mb, "dv"))))
        return rc;
    if (dg) {
        const int gm = h->fwd_gmode;
        if (gm != MMI_GMODE_SCALAR && gm != MMI_GMODE_VECTOR)
            return mmi_fail(&h->err, MM_E_STATE,
                            "%s: dg needs a forward with gates "
                            "(mm_attn_forward_gated)",
                            fn);
        if (dg->numel != h->fwd_b * h->heads * h->fwd_n * (gm == MMI_GMODE_VECTOR ? h->d : 1) ||
            dg->ndim != (gm == MMI_GMODE_VECTOR ? 4 : 3))
            return shape_fail(h, fn, "dg", dg, "but must be shaped as the forward's g");
    }
    if (du && (du->ndim != 2 || du->shape[0] != h->heads || du->shape[1] != h->d))
        return shape_fail(h, fn, "du", du, "but must be [n_heads, d_head]");
    if ((rc = grads_apart(h, fn, dout, dq, dk, dv, dg, du)) != MM_OK) return rc;
    c.h = h, c.n = h->fwd_n, c.m = h->fwd_m;
    c.dout = dout->data;
    c.dq = dq ? dq->data : NULL, c.dk = dk ? dk->data : NULL, c.dv = dv ? dv->data : NULL;
    c.dg = dg ? dg->data : NULL;
    mmi_pool_run_slots(h->pool, bwd_task, &c, h->fwd_b * h->heads);
    if (du) sum_du(h, du->data);
    mmi_err_clear(&h->err);
    return MM_OK;
}

MM_API int mm_attn_backward(mm_attn *h, const mm_tensor *dout, mm_tensor *dq, mm_tensor *dk,
                            mm_tensor *dv, mm_tensor *dg)
{
    if (!h) return MM_E_INVALID_ARG;
    return run_backward(h, "mm_attn_backward", dout, dq, dk, dv, dg, NULL);
}

MM_API int mm_attn_backward_rwkv6(mm_attn *h, const mm_tensor *dout, mm_tensor *dq, mm_tensor *dk,
                                  mm_tensor *dv, mm_tensor *dw, mm_tensor *du)
{
    static const char fn[] = "mm_attn_backward_rwkv6";
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind != MM_ATTN_RWKV6)
        return mmi_fail(&h->err, MM_E_STATE, "%s: the handle is not MM_ATTN_RWKV6", fn);
    return run_backward(h, fn, dout, dq, dk, dv, dw, du);
}
