/* SPDX-License-Identifier: MIT */
/* attn_step.c — mm_attn_step: one token per batch-head with carried state, returning what the
 * causal forward returns at that position. Linear kinds keep an O(d dv) state (LINEAR,
 * PERFORMER, GATED, RWKV6) or a chunk of keys plus a prefix state (RELU2); SOFTMAX and SPARSE
 * keep a KV cache of max_seq tokens and run the forward kernel for one query against it. */
#include "mmi_attn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct step_ctx {
    mm_attn *h;
    const float *q, *k, *v, *g, *u; /* u: RWKV6 bonus [H, d] (g then holds w) */
    int64_t glen;                   /* gate values per batch-head (0: none given) */
    float *out;
} step_ctx;

/* LINEAR and PERFORMER: features, state update and the normalised readout. */
static void step_linear(mm_attn *h, int64_t i, const float *q, const float *k, const float *v,
                        float *o, float *ws)
{
    const int64_t f = h->nf, d = h->d, dv = h->dv, stf = f > d ? f : d;
    float *st = h->st + i * stf * dv, *fq = ws, *fk = ws + f, *fws = ws + 2 * f;
    double *z = h->stz + i * f, den = 1.0;
    if (h->kind == MM_ATTN_PERFORMER) {
        if (h->pos == 0) h->pstab[i] = mmi_attn_favor_max(k, 1, d, h->projt, f, fws);
        mmi_attn_favor_fwd(q, 1, d, h->projt, f, h->feps, 0, 0.0f, fq, fws);
        mmi_attn_favor_fwd(k, 1, d, h->projt, f, h->feps, 1, h->pstab[i], fk, fws);
    } else {
        mmi_attn_fmap_fwd(h->fmap, q, fq, d);
        mmi_attn_fmap_fwd(h->fmap, k, fk, d);
    }
    memset(o, 0, sizeof(float) * (size_t)dv);
    mmi_attn_state_step(f, dv, fk, v, st, dv, NULL, NULL, fq, o);
    den = mmi_attn_norm_step(f, fk, z, fq); /* z += phi(k), then phi(q) . z */
    if (h->normalize) {
        den += h->eps;
        if (den == 0.0) den = 1.0;
        for (int64_t c = 0; c < dv; c++) o[c] = (float)(o[c] / den);
    }
}

/* RELU2: quadratic over the current chunk's cached keys, linear over the prefix state; the
 * chunk folds into the state when it is complete. Keys are cached transposed ([d][C]) so the
 * logits of the new query are one row-times-tile product. */
static void step_relu2(mm_attn *h, int64_t i, const float *q, const float *k, const float *v,
                       float *o, float *ws)
{
    const int64_t d = h->d, dv = h->dv, p = h->pos % h->chunk, cr = h->cache_rows;
    float *st = h->st + i * d * dv, *kt = h->cache + i * cr * (d + dv), *vc = kt + cr * d;
    float *a = ws, *ks = ws + cr;
    const float sc = (float)(1.0 / (double)h->chunk);
    for (int64_t c = 0; c < d; c++) kt[c * cr + p] = k[c];
    memcpy(vc + p * dv, v, sizeof(float) * (size_t)dv);
    memset(o, 0, sizeof(float) * (size_t)dv);
    mmi_attn_state_step(d, dv, NULL, NULL, st, dv, NULL, NULL, q, o);
    mmi_attn_rowmat(p + 1, d, q, kt, cr, sc, a);
    for (int64_t j = 0; j <= p; j++) a[j] = a[j] > 0.0f ? a[j] * a[j] : 0.0f;
    mmi_attn_matrow_acc(p + 1, dv, a, vc, dv, o);
    if (p == h->chunk - 1)
        for (int64_t j = 0; j <= p; j++) {
            for (int64_t c = 0; c < d; c++) ks[c] = kt[c * cr + j] * sc;
            mmi_attn_state_step(d, dv, ks, vc + j * dv, st, dv, NULL, NULL, NULL, NULL);
        }
}

/* SOFTMAX and SPARSE: append to the cache, attend from the newest position. */
static void step_softmax(mm_attn *h, int64_t i, const float *q, const float *k, const float *v,
                         float *o, float *ws)
{
    const int64_t d = h->d, dv = h->dv;
    float *kc = h->cache + i * h->cache_rows * (d + dv), *vc = kc + h->cache_rows * d, lse;
    mmi_attn_dims s = mmi_attn_dims_of(h, 1, h->pos + 1);
    memcpy(kc + h->pos * d, k, sizeof(float) * (size_t)d);
    memcpy(vc + h->pos * dv, v, sizeof(float) * (size_t)dv);
    mmi_attn_softmax_fwd(&s, q, kc, vc, o, &lse, ws);
}

static void step_task(void *vctx, int64_t i, int64_t ntask, int32_t slot)
{
    step_ctx *c = (step_ctx *)vctx;
    mm_attn *h = c->h;
    const int64_t d = h->d, dv = h->dv;
    const float *q = c->q + i * d, *k = c->k + i * d, *v = c->v + i * dv;
    float *o = c->out + i * dv;
    float *ws = h->ws + (size_t)slot * h->ws_floats;
    (void)ntask;
    if (h->pos == 0 && h->st) { /* a fresh sequence: clear this batch-head's state */
        const int64_t f = h->nf > d ? h->nf : d;
        memset(h->st + i * f * dv, 0, sizeof(float) * (size_t)(f * dv));
        memset(h->stz + i * h->nf, 0, sizeof(double) * (size_t)h->nf);
    }
    switch (h->kind) {
    case MM_ATTN_LINEAR:
    case MM_ATTN_PERFORMER:
        step_linear(h, i, q, k, v, o, ws);
        break;
    case MM_ATTN_RELU2:
        step_relu2(h, i, q, k, v, o, ws);
        break;
    case MM_ATTN_GATED: {
        const float *g = c->glen                     ? c->g + i * c->glen
                         : h->gate == MM_GATE_RETNET ? h->retnet_lg + i % h->heads
                                                     : NULL;
        mmi_attn_gated_step(d, dv, (float)h->scale, g, c->glen ? c->glen : 1, q, k, v,
                            h->st + i * d * dv, o);
        break;
    }
    case MM_ATTN_RWKV6:
        mmi_attn_rwkv6_step(d, dv, (float)h->scale, c->g + i * d, c->u + (i % h->heads) * d, q, k,
                            v, h->st + i * d * dv, o);
        break;
    default:
        step_softmax(h, i, q, k, v, o, ws);
        break;
    }
}

/* t must be [B, H, w] or [B, H, 1, w]. */
static int check_tok(mm_attn *h, const char *fn, const char *name, const mm_tensor *t, int64_t b,
                     int64_t w, const char *wname)
{
    char buf[96];
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    if ((t->ndim == 3 || (t->ndim == 4 && t->shape[2] == 1)) && t->shape[0] == b &&
        t->shape[1] == h->heads && t->shape[t->ndim - 1] == w)
        return MM_OK;
    mmi_tensor_shape_str(t, buf, sizeof buf);
    return mmi_fail(&h->err, MM_E_SHAPE,
                    "%s: %s is %s but must be [%lld,%lld,%lld] (B, n_heads, "
                    "%s)",
                    fn, name, buf, (long long)b, (long long)h->heads, (long long)w, wname);
}

/* Log-gates (GATED) and log-decays (RWKV6) must be finite and <= 0. */
static int check_decays(mm_attn *h, const char *fn, const char *name, const mm_tensor *g)
{
    for (int64_t i = 0; i < g->numel; i++)
        if (!(g->data[i] <= 0.0f) || isinf(g->data[i]))
            return mmi_fail(&h->err, MM_E_NUMERIC,
                            "%s: %s[%lld] = %g; log-%s must be finite "
                            "and <= 0",
                            fn, name, (long long)i, (double)g->data[i],
                            name[0] == 'w' ? "decays" : "gates");
    return MM_OK;
}

/* MM_OK, or MM_E_INVALID_ARG when out shares memory with the input x (NULL: none): the step
 * kernels of RELU2 and GATED write a head's output while still reading its q, so an output over
 * an input came back wrong with MM_OK. */
static int step_out_apart(mm_attn *h, const char *fn, const mm_tensor *out, const char *name,
                          const mm_tensor *x)
{
    if (mmi_tensor_overlap(out, x))
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: out shares memory with %s", fn, name);
    return MM_OK;
}

static int check_step(mm_attn *h, const char *fn, const mm_tensor *q, const mm_tensor *k,
                      const mm_tensor *v, const mm_tensor *g, const mm_tensor *out, int64_t *glen)
{
    int64_t b;
    int rc;
    if (!h->causal) return mmi_fail(&h->err, MM_E_STATE, "%s: streaming needs a causal handle", fn);
    if (!q) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: q is NULL", fn);
    b = q->shape[0];
    if (b > h->max_batch)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: batch %lld exceeds max_batch %lld", fn,
                        (long long)b, (long long)h->max_batch);
    if (h->pos > 0 && b != h->step_b)
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: batch is %lld but the stream started with %lld;"
                        " call mm_attn_reset first",
                        fn, (long long)b, (long long)h->step_b);
    if ((rc = check_tok(h, fn, "q", q, b, h->d, "d_head")) ||
        (rc = check_tok(h, fn, "k", k, b, h->d, "d_head")) ||
        (rc = check_tok(h, fn, "v", v, b, h->dv, "dv")) ||
        (rc = check_tok(h, fn, "out", out, b, h->dv, "dv")) ||
        (rc = step_out_apart(h, fn, out, "q", q)) || (rc = step_out_apart(h, fn, out, "k", k)) ||
        (rc = step_out_apart(h, fn, out, "v", v)) ||
        (rc = step_out_apart(h, fn, out, h->kind == MM_ATTN_RWKV6 ? "w" : "g", g)))
        return rc;
    if ((h->kind == MM_ATTN_SOFTMAX || h->kind == MM_ATTN_SPARSE) && h->pos >= h->max_seq)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: the KV cache holds max_seq = %lld tokens; call "
                        "mm_attn_reset",
                        fn, (long long)h->max_seq);
    if (h->kind == MM_ATTN_RELU2 && h->pos % h->chunk >= h->cache_rows)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: chunk %lld is longer than max_seq %lld, which "
                        "bounds the chunk cache",
                        fn, (long long)h->chunk, (long long)h->max_seq);
    *glen = 0;
    if (g && h->kind == MM_ATTN_RWKV6) { /* w: one log-decay per key channel */
        if ((rc = check_tok(h, fn, "w", g, b, h->d, "d_head")) != MM_OK) return rc;
        *glen = h->d;
        return check_decays(h, fn, "w", g);
    }
    if (g) {
        if (h->kind != MM_ATTN_GATED)
            return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: g is only for MM_ATTN_GATED", fn);
        if (g->ndim == 2 && g->shape[0] == b && g->shape[1] == h->heads)
            *glen = 1;
        else if ((rc = check_tok(h, fn, "g", g, b, h->d, "d_head")) != MM_OK)
            return rc;
        else
            *glen = h->d;
        return check_decays(h, fn, "g", g);
    }
    return MM_OK;
}

static int run_step(mm_attn *h, const char *fn, const mm_tensor *q, const mm_tensor *k,
                    const mm_tensor *v, const mm_tensor *g, const mm_tensor *u, mm_tensor *out)
{
    step_ctx c;
    int rc;
    if ((rc = check_step(h, fn, q, k, v, g, out, &c.glen)) != MM_OK ||
        (rc = step_out_apart(h, fn, out, "u", u)) != MM_OK)
        return rc;
    c.h = h, c.q = q->data, c.k = k->data, c.v = v->data, c.g = g ? g->data : NULL;
    c.u = u ? u->data : NULL;
    c.out = out->data;
    mmi_pool_run_slots(h->pool, step_task, &c, q->shape[0] * h->heads);
    h->step_b = q->shape[0];
    h->pos++;
    mmi_err_clear(&h->err);
    return MM_OK;
}

MM_API int mm_attn_step(mm_attn *h, const mm_tensor *q, const mm_tensor *k, const mm_tensor *v,
                        const mm_tensor *g, mm_tensor *out)
{
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind == MM_ATTN_RWKV6)
        return mmi_fail(&h->err, MM_E_STATE,
                        "mm_attn_step: an MM_ATTN_RWKV6 handle needs w and "
                        "u (mm_attn_step_rwkv6)");
    return run_step(h, "mm_attn_step", q, k, v, g, NULL, out);
}

MM_API int mm_attn_step_rwkv6(mm_attn *h, const mm_tensor *q, const mm_tensor *k,
                              const mm_tensor *v, const mm_tensor *w, const mm_tensor *u,
                              mm_tensor *out)
{
    static const char fn[] = "mm_attn_step_rwkv6";
    char buf[96];
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind != MM_ATTN_RWKV6)
        return mmi_fail(&h->err, MM_E_STATE, "%s: the handle is not MM_ATTN_RWKV6", fn);
    if (!w || !u) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: w and u must not be NULL", fn);
    if (u->ndim != 2 || u->shape[0] != h->heads || u->shape[1] != h->d) {
        mmi_tensor_shape_str(u, buf, sizeof buf);
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: u is %s but must be [%lld,%lld] (n_heads, "
                        "d_head)",
                        fn, buf, (long long)h->heads, (long long)h->d);
    }
    for (int64_t i = 0; i < u->numel; i++)
        if (!isfinite(u->data[i]))
            return mmi_fail(&h->err, MM_E_NUMERIC, "%s: u[%lld] = %g is not finite", fn,
                            (long long)i, (double)u->data[i]);
    return run_step(h, fn, q, k, v, w, u, out);
}
