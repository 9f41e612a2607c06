/* SPDX-License-Identifier: MIT */
/* model_exec.c — running a finalized model: forward (keeping activations), backward (VJP with
 * gradient accumulation, frozen layers skipped), jvp (forward-mode along a parameter
 * direction), and the read-only mm_model_infer with a caller workspace. Nothing here
 * allocates: every buffer was reserved by mm_model_finalize or comes from the caller. */
#include "../kernels/gemm/mmi_gemm.h"
#include "../tensor/mmi_tensor.h"
#include "mmi_model.h"

#include <stdio.h>
#include <string.h>

/* ---- shape checks -------------------------------------------------------------------------- */

int mmi_model_input_shape(const mm_model *m, const mm_tensor *x, int64_t *batch, int64_t *seq,
                          mmi_err *e, const char *fn)
{
    char s[96];
    int32_t nd;
    if (!x) return mmi_fail(e, MM_E_INVALID_ARG, "%s: x is NULL", fn);
    nd = x->ndim;
    if (nd < 1 || nd > 3 || x->shape[nd - 1] != m->opts.input_dim) {
        mmi_tensor_shape_str(x, s, sizeof s);
        return mmi_fail(e, MM_E_SHAPE,
                        "%s: x is %s; the model takes [B, %lld], [B, T, %lld] or [%lld]", fn, s,
                        (long long)m->opts.input_dim, (long long)m->opts.input_dim,
                        (long long)m->opts.input_dim);
    }
    *batch = nd >= 2 ? x->shape[0] : 1;
    *seq = nd == 3 ? x->shape[1] : 1;
    return MM_OK;
}

int mmi_model_check_like(const mm_tensor *x, const mm_tensor *t, int64_t width, const char *what,
                         mmi_err *e, const char *fn)
{
    char sx[96], st[96];
    int ok;
    if (!t) return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s is NULL", fn, what);
    ok = t->ndim == x->ndim && t->shape[t->ndim - 1] == width;
    for (int32_t i = 0; ok && i < x->ndim - 1; i++) ok = t->shape[i] == x->shape[i];
    if (ok) return MM_OK;
    mmi_tensor_shape_str(x, sx, sizeof sx);
    mmi_tensor_shape_str(t, st, sizeof st);
    return mmi_fail(e, MM_E_SHAPE,
                    "%s: %s is %s; for x %s it must have x's leading sizes and "
                    "last size %lld",
                    fn, what, st, sx, (long long)width);
}

int mmi_model_own_apart(const mm_model *m, mmi_err *e, const char *fn, const char *what,
                        const void *p, size_t bytes, int grads_only)
{
    const size_t own = sizeof(float) * (size_t)m->n_params;
    if (!grads_only && mmi_overlaps(p, bytes, m->params, own))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s shares memory with the model's parameters", fn,
                        what);
    if (mmi_overlaps(p, bytes, m->grads, own))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s shares memory with the model's gradients", fn,
                        what);
    return MM_OK;
}

int mmi_model_own_apart_t(const mm_model *m, mmi_err *e, const char *fn, const char *what,
                          const mm_tensor *t, int grads_only)
{
    return t ? mmi_model_own_apart(m, e, fn, what, t->data, sizeof(float) * (size_t)t->numel,
                                   grads_only)
             : MM_OK;
}

/* Common entry checks of forward and jvp: handle, lifecycle, x and the reservation. */
static int check_call(mm_model *m, const mm_tensor *x, mmi_exec *c, const char *fn)
{
    int rc;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if ((rc = mmi_model_input_shape(m, x, &c->batch, &c->seq, &m->err, fn)) != MM_OK) return rc;
    if (c->batch > m->opts.max_batch || c->seq > m->opts.max_seq)
        return mmi_fail(&m->err, MM_E_RANGE,
                        "%s: batch %lld x seq %lld is beyond the reserved "
                        "max_batch %lld x max_seq %lld",
                        fn, (long long)c->batch, (long long)c->seq, (long long)m->opts.max_batch,
                        (long long)m->opts.max_seq);
    c->rows = c->batch * c->seq;
    c->gemm_ws = m->gemm_ws;
    c->pool = m->pool;
    c->err = &m->err;
    c->ctx = NULL, c->dctx = NULL;
    c->ctx_len = c->ctx_dim = 0;
    return MM_OK;
}

/* The first cross-attention layer of m (n_layers if none), with its context width and the
 * smallest max_ctx over all of them. */
static int32_t first_xattn(const mm_model *m, int64_t *dim, int64_t *max_ctx)
{
    int32_t first = m->n_layers;
    *dim = 0, *max_ctx = INT64_MAX;
    for (int32_t i = 0; i < m->n_layers; i++) {
        int64_t d, mc;
        if (!mmi_xattn_context(&m->layers[i], &d, &mc)) continue;
        if (first == m->n_layers)
            first = i, *dim = d;
        else if (d != *dim)
            *dim = -1; /* layers disagree (mmi_model_add_layer refuses that; kept as a guard) */
        if (mc < *max_ctx) *max_ctx = mc;
    }
    return first;
}

/* Checks the context of a *_ctx call against x and the model's cross-attention layers and puts
 * it into c. ctx NULL is a call without context. */
static int check_ctx(mm_model *m, const mm_tensor *ctx, mmi_exec *c, const char *fn)
{
    char s[96];
    int64_t dim, max_ctx;
    const int32_t first = first_xattn(m, &dim, &max_ctx);
    if (!ctx) {
        if (first < m->n_layers)
            return mmi_fail(&m->err, MM_E_INVALID_ARG,
                            "%s: layer %d (cross_attention) needs "
                            "context tokens: pass ctx [batch, tokens, %lld]",
                            fn, (int)first, (long long)dim);
        return MM_OK;
    }
    if (first == m->n_layers)
        return mmi_fail(&m->err, MM_E_INVALID_ARG,
                        "%s: ctx given but the model has no "
                        "cross_attention layer",
                        fn);
    if (dim < 0)
        return mmi_fail(&m->err, MM_E_SHAPE,
                        "%s: the model's cross_attention layers have "
                        "different ctx_dim; no context fits them all",
                        fn);
    mmi_tensor_shape_str(ctx, s, sizeof s);
    if (ctx->ndim != 3 || ctx->shape[0] != c->batch || ctx->shape[2] != dim || ctx->shape[1] < 1)
        return mmi_fail(&m->err, MM_E_SHAPE,
                        "%s: ctx is %s; it must be [%lld, tokens, %lld] "
                        "(x's batch, the cross_attention ctx_dim)",
                        fn, s, (long long)c->batch, (long long)dim);
    if (ctx->shape[1] > max_ctx)
        return mmi_fail(&m->err, MM_E_RANGE,
                        "%s: ctx has %lld tokens; the cross_attention "
                        "layers take at most max_ctx %lld",
                        fn, (long long)ctx->shape[1], (long long)max_ctx);
    c->ctx = ctx->data;
    c->ctx_len = ctx->shape[1];
    c->ctx_dim = dim;
    return MM_OK;
}

/* Prefixes a layer's refusal with the function and layer index. */
static int layer_failed(mmi_err *e, int rc, const char *fn, int32_t i)
{
    char tmp[MMI_ERRMSG_SIZE];
    if (!e) return rc;
    memcpy(tmp, e->msg, sizeof tmp);
    return mmi_fail(e, rc, "%s: layer %d: %s", fn, (int)i, tmp);
}

/* The contract of a call on the model's own arena: sizes validated against the reservation
 * (mmi_model_input_shape), so every layer's saved and scratch regions fit. */
static int exec_fits(const mm_model *m, const mmi_exec *c)
{
    return c->batch >= 1 && c->seq >= 1 && c->rows == c->batch * c->seq &&
           c->batch <= m->opts.max_batch && c->seq <= m->opts.max_seq && m->arena;
}

/* 1 if layers i and i + 1 are a dense layer and an activation, which run as one GEMM with the
 * activation in its epilogue (mmi_dense_forward_act). */
static int fuses_act(const mm_model *m, int32_t i)
{
    return i + 1 < m->n_layers && m->layers[i].vt->kind == MMI_LAYER_DENSE &&
           m->layers[i + 1].vt->kind == MMI_LAYER_ACT;
}

/* 1 if layer i is a dense layer on top of an activation: its input-gradient GEMM carries the
 * activation's backward in its epilogue (mmi_dense_backward_act). */
static int act_below(const mm_model *m, int32_t i)
{
    return i >= 1 && m->layers[i].vt->kind == MMI_LAYER_DENSE &&
           m->layers[i - 1].vt->kind == MMI_LAYER_ACT;
}

/* Forward through every layer from act[0]; with v, also the tangent, the last into jy. */
static int run_layers(mm_model *m, const mmi_exec *c, const float *v, float *jy, mmi_kept_w *kw,
                      const char *fn)
{
    const float *t_in = NULL;
    unsigned char *arena = (unsigned char *)m->arena;
    MMI_ASSERT(exec_fits(m, c));
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        const float *p = m->params + l->param_offset;
        void *saved = arena + l->saved_off;
        int rc;
        if (i == 0 && kw && l->vt->kind == MMI_LAYER_DENSE) { /* never in jvp mode */
            int fused = fuses_act(m, 0);
            mmi_dense_forward_kept(l, c, p, m->act[0], m->act[1],
                                   fused ? (int32_t)m->layers[1].icfg[0] : 0,
                                   fused ? m->act[2] : NULL, kw, m);
            i += fused;
            continue;
        }
        if (!v && fuses_act(m, i)) { /* jvp mode runs the layers one by one */
            mmi_dense_forward_act(l, c, p, m->act[i], m->act[i + 1],
                                  (int32_t)m->layers[i + 1].icfg[0], m->act[i + 2]);
            i++;
            continue;
        }
        rc = l->vt->forward(l, c, p, m->act[i], m->act[i + 1], saved, m->scratch);
        if (rc != MM_OK) return layer_failed(&m->err, rc, fn, i);
        if (v) {
            float *t_out = i == m->n_layers - 1 ? jy : m->pp[i & 1];
            l->vt->jvp(l, c, p, v + l->param_offset, m->act[i], t_in, m->act[i + 1], saved, t_out,
                       m->scratch);
            t_in = t_out;
        }
    }
    return MM_OK;
}

static void remember_forward(mm_model *m, const mmi_exec *c, const mm_tensor *x)
{
    m->fwd_valid = 1;
    m->fwd_batch = c->batch;
    m->fwd_seq = c->seq;
    m->fwd_ndim = x->ndim;
}

static void remember_ctx(mm_model *m, const mmi_exec *c) { m->fwd_ctx_len = c->ctx_len; }

static int run_forward(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, mmi_kept_w *kw,
                       const char *fn);

static int forward_impl(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, mm_tensor *y,
                        mmi_kept_w *kw, const char *fn)
{
    mmi_exec c;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if ((rc = check_call(m, x, &c, fn)) != MM_OK) return rc;
    if ((rc = mmi_model_check_like(x, y, mmi_model_out_dim(m), "y", &m->err, fn)) != MM_OK)
        return rc;
    /* y over the parameters changed the weights the kept forward is differentiated at; x and
     * ctx may be views of them (copied or only read; a forward writes neither buffer). */
    if ((rc = mmi_model_own_apart_t(m, &m->err, fn, "y", y, 0)) != MM_OK) return rc;
    if ((rc = run_forward(m, x, ctx, kw, fn)) != MM_OK) return rc;
    memcpy(y->data, m->act[m->n_layers], (size_t)y->numel * sizeof(float));
    return MM_OK;
}

int mmi_model_run_forward(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, const char *fn)
{
    return run_forward(m, x, ctx, NULL, fn);
}

static int run_forward(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, mmi_kept_w *kw,
                       const char *fn)
{
    mmi_exec c;
    int rc;
    if ((rc = check_call(m, x, &c, fn)) != MM_OK) return rc;
    if ((rc = check_ctx(m, ctx, &c, fn)) != MM_OK) return rc;
    m->fwd_valid = 0;
    /* Keep a copy of x: backward needs it even if the caller reuses its buffer. */
    memcpy(m->act[0], x->data, (size_t)x->numel * sizeof(float));
    if ((rc = run_layers(m, &c, NULL, NULL, kw, fn)) != MM_OK) return rc;
    remember_forward(m, &c, x);
    remember_ctx(m, &c);
    return MM_OK;
}

MM_API int mm_model_forward(mm_model *m, const mm_tensor *x, mm_tensor *y)
{
    return forward_impl(m, x, NULL, y, NULL, "mm_model_forward");
}

int64_t mmi_model_kept_w_floats(const mm_model *m)
{
    const mmi_layer *l = m->finalized && m->n_layers > 0 ? &m->layers[0] : NULL;
    if (!l || l->vt->kind != MMI_LAYER_DENSE || l->in_dim > MMI_GEMM_SMALL_NT_K) return 0;
    return mmi_gemm_nt_panel_floats(l->out_dim, l->in_dim);
}

int mmi_model_forward_kept(mm_model *m, const mm_tensor *x, mm_tensor *y, mmi_kept_w *kw,
                           const char *fn)
{
    return forward_impl(m, x, NULL, y, kw && kw->panel ? kw : NULL, fn);
}

MM_API int mm_model_forward_ctx(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, mm_tensor *y)
{
    return forward_impl(m, x, ctx, y, NULL, "mm_model_forward_ctx");
}

static int jvp_impl(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, const mm_tensor *v,
                    mm_tensor *y, mm_tensor *jy, const char *fn)
{
    mmi_exec c;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if ((rc = check_call(m, x, &c, fn)) != MM_OK) return rc;
    if (!v && m->n_params > 0) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: v is NULL", fn);
    if (v && v->numel != m->n_params)
        return mmi_fail(&m->err, MM_E_SHAPE,
                        "%s: v has %lld elements; the model has %lld "
                        "parameters",
                        fn, (long long)v->numel, (long long)m->n_params);
    if ((rc = mmi_model_check_like(x, jy, mmi_model_out_dim(m), "jy", &m->err, fn)) != MM_OK)
        return rc;
    if (y && (rc = mmi_model_check_like(x, y, mmi_model_out_dim(m), "y", &m->err, fn)) != MM_OK)
        return rc;
    {
        /* jy is written layer by layer while v (and ctx) are still read; a jy over part of v
         * came back wrong with MM_OK. x is copied first, so y and jy may overlap it. */
        const mm_tensor *t[4] = {v, ctx, jy, y};
        static const char *const name[4] = {"v", "ctx", "jy", "y"};
        if ((rc = mmi_tensor_apart(&m->err, fn, 4, t, name, 2)) != MM_OK) return rc;
    }
    /* jy is written while the last layer's weights are read; y as in a forward. */
    if ((rc = mmi_model_own_apart_t(m, &m->err, fn, "jy", jy, 0)) != MM_OK ||
        (rc = mmi_model_own_apart_t(m, &m->err, fn, "y", y, 0)) != MM_OK)
        return rc;
    if ((rc = check_ctx(m, ctx, &c, fn)) != MM_OK) return rc;
    m->fwd_valid = 0;
    memcpy(m->act[0], x->data, (size_t)x->numel * sizeof(float));
    /* A model without parameters has a zero direction; any non-NULL pointer marks jvp mode. */
    if ((rc = run_layers(m, &c, v ? v->data : m->params, jy->data, NULL, fn)) != MM_OK) return rc;
    if (y) memcpy(y->data, m->act[m->n_layers], (size_t)y->numel * sizeof(float));
    remember_forward(m, &c, x);
    remember_ctx(m, &c);
    return MM_OK;
}

MM_API int mm_model_jvp(mm_model *m, const mm_tensor *x, const mm_tensor *v, mm_tensor *y,
                        mm_tensor *jy)
{
    return jvp_impl(m, x, NULL, v, y, jy, "mm_model_jvp");
}

MM_API int mm_model_jvp_ctx(mm_model *m, const mm_tensor *x, const mm_tensor *ctx,
                            const mm_tensor *v, mm_tensor *y, mm_tensor *jy)
{
    return jvp_impl(m, x, ctx, v, y, jy, "mm_model_jvp_ctx");
}

/* ---- backward ------------------------------------------------------------------------------ */

/* The lowest layer whose input gradient someone needs: 0 if the caller wants dx, else the
 * first layer with trainable (unfrozen) parameters; n_layers if none. */
static int32_t lowest_layer(const mm_model *m, int want_dx, int want_dctx)
{
    if (want_dx) return 0;
    for (int32_t i = 0; i < m->n_layers; i++)
        if ((m->layers[i].n_params > 0 && !m->layers[i].frozen) ||
            (want_dctx && mmi_xattn_context(&m->layers[i], NULL, NULL)))
            return i;
    return m->n_layers;
}

/* Checks dy (and dx) against the shapes of the last forward. */
static int check_grad_shape(const mm_model *m, const mm_tensor *t, int64_t width, const char *what,
                            mmi_err *e, const char *fn)
{
    char s[96];
    int ok;
    if (!t) return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s is NULL", fn, what);
    ok = t->ndim == m->fwd_ndim && t->shape[t->ndim - 1] == width;
    if (ok && t->ndim >= 2) ok = t->shape[0] == m->fwd_batch;
    if (ok && t->ndim == 3) ok = t->shape[1] == m->fwd_seq;
    if (ok) return MM_OK;
    mmi_tensor_shape_str(t, s, sizeof s);
    return mmi_fail(e, MM_E_SHAPE,
                    "%s: %s is %s; the last forward had batch %lld, seq %lld, "
                    "rank %d, so it must end in %lld",
                    fn, what, s, (long long)m->fwd_batch, (long long)m->fwd_seq, (int)m->fwd_ndim,
                    (long long)width);
}

/* Checks dctx against the context of the last forward. */
static int check_dctx(mm_model *m, const mm_tensor *dctx, const char *fn)
{
    char s[96];
    int64_t dim, max_ctx;
    if (m->fwd_ctx_len == 0)
        return mmi_fail(&m->err, MM_E_STATE,
                        "%s: dctx given but the last forward had no "
                        "context (use mm_model_forward_ctx)",
                        fn);
    (void)first_xattn(m, &dim, &max_ctx);
    if (dctx->ndim == 3 && dctx->shape[0] == m->fwd_batch && dctx->shape[1] == m->fwd_ctx_len &&
        dctx->shape[2] == dim)
        return MM_OK;
    mmi_tensor_shape_str(dctx, s, sizeof s);
    return mmi_fail(&m->err, MM_E_SHAPE,
                    "%s: dctx is %s; the last forward's context was "
                    "[%lld, %lld, %lld]",
                    fn, s, (long long)m->fwd_batch, (long long)m->fwd_ctx_len, (long long)dim);
}

static int backward_impl(mm_model *m, const mm_tensor *dy, mm_tensor *dx, mm_tensor *dctx,
                         const char *fn)
{
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if (!m->fwd_valid)
        return mmi_fail(&m->err, MM_E_STATE,
                        "%s: no successful mm_model_forward to "
                        "differentiate",
                        fn);
    if ((rc = check_grad_shape(m, dy, mmi_model_out_dim(m), "dy", &m->err, fn)) != MM_OK ||
        (dx && (rc = check_grad_shape(m, dx, m->opts.input_dim, "dx", &m->err, fn)) != MM_OK) ||
        (dctx && (rc = check_dctx(m, dctx, fn)) != MM_OK))
        return rc;
    {
        /* A one-layer model's backward reads dy while it writes dx, and dctx is zeroed first. */
        const mm_tensor *t[3] = {dy, dx, dctx};
        static const char *const name[3] = {"dy", "dx", "dctx"};
        if ((rc = mmi_tensor_apart(&m->err, fn, 3, t, name, 1)) != MM_OK) return rc;
    }
    /* The layers accumulate into the gradients from the top down while reading dy and the
     * weights, and write dx (dctx) last: dx over an upper layer's gradients replaced them,
     * dy over the gradients was read after the top layer had added to them. */
    if ((rc = mmi_model_own_apart_t(m, &m->err, fn, "dx", dx, 0)) != MM_OK ||
        (rc = mmi_model_own_apart_t(m, &m->err, fn, "dctx", dctx, 0)) != MM_OK ||
        (rc = mmi_model_own_apart_t(m, &m->err, fn, "dy", dy, 1)) != MM_OK)
        return rc;
    mmi_model_run_backward(m, dy->data, dx ? dx->data : NULL, dctx ? dctx->data : NULL);
    return MM_OK;
}

void mmi_model_run_backward(mm_model *m, const float *dy, float *dx, float *dctx)
{
    const float *g_in;
    unsigned char *arena;
    mmi_exec c;
    int32_t lo;
    memset(&c, 0, sizeof c);
    c.batch = m->fwd_batch;
    c.seq = m->fwd_seq;
    c.rows = c.batch * c.seq;
    c.gemm_ws = m->gemm_ws;
    c.pool = m->pool;
    c.err = &m->err;
    c.ctx_len = m->fwd_ctx_len;
    if (c.ctx_len > 0) {
        int64_t max_ctx;
        (void)first_xattn(m, &c.ctx_dim, &max_ctx);
    }
    c.dctx = dctx;
    if (dctx) memset(dctx, 0, sizeof(float) * (size_t)(c.batch * c.ctx_len * c.ctx_dim));
    arena = (unsigned char *)m->arena;
    lo = lowest_layer(m, dx != NULL, dctx != NULL);
    g_in = dy;
    MMI_ASSERT(exec_fits(m, &c) && m->fwd_valid);
    /* The ping-pong buffers alternate by step, not by layer parity (a fused pair is one step);
     * the top layer writes pp[(n_layers - 1) & 1], which mm_model_logprob relies on. */
    for (int32_t i = m->n_layers - 1, t = (m->n_layers - 1) & 1; i >= lo; i--, t ^= 1) {
        const mmi_layer *l = &m->layers[i];
        float *g = l->frozen || l->n_params == 0 ? NULL : m->grads + l->param_offset;
        float *out;
        if (i - 1 >= lo && act_below(m, i)) {
            i--;
            out = i > lo ? m->pp[t] : dx;
            mmi_dense_backward_act(l, &c, m->params + l->param_offset, m->act[i + 1], g_in, out, g,
                                   m->scratch, (int32_t)m->layers[i].icfg[0], m->act[i]);
        } else {
            out = i > lo ? m->pp[t] : dx;
            l->vt->backward(l, &c, m->params + l->param_offset, m->act[i], m->act[i + 1],
                            arena + l->saved_off, g_in, out, g, m->scratch);
        }
        g_in = out;
    }
}

MM_API int mm_model_backward(mm_model *m, const mm_tensor *dy, mm_tensor *dx)
{
    return backward_impl(m, dy, dx, NULL, "mm_model_backward");
}

MM_API int mm_model_backward_ctx(mm_model *m, const mm_tensor *dy, mm_tensor *dx, mm_tensor *dctx)
{
    return backward_impl(m, dy, dx, dctx, "mm_model_backward_ctx");
}

/* ---- read-only inference --------------------------------------------------------------------- */

typedef struct infer_plan {
    size_t buf_off[2], scratch_off, gemm_off, size;
    int use_gemm;
} infer_plan;

static int plan_infer(const mm_model *m, int64_t batch, int64_t seq, infer_plan *ip)
{
    size_t bytes, scratch = 0, a;
    int64_t rows, width = 0;
    int gemm = 0;
    if (batch < 1 || seq < 1 || mmi_mul_i64(&rows, batch, seq) != 0 || rows > MMI_MAX_NUMEL)
        return MM_E_RANGE;
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        size_t sv, sc;
        int gw;
        l->vt->sizes(l, batch, seq, &sv, &sc, &gw);
        if (sc > scratch) scratch = sc;
        gemm |= gw;
        if (l->out_dim > width) width = l->out_dim;
    }
    if (mmi_mul_size(&bytes, (size_t)rows, (size_t)width * sizeof(float)) ||
        !(a = mmi_align_up(bytes)))
        return MM_E_RANGE;
    ip->buf_off[0] = 0;
    ip->buf_off[1] = a;
    ip->scratch_off = 2 * a;
    if (!(a = mmi_align_up(scratch)) && scratch) return MM_E_RANGE;
    ip->gemm_off = ip->scratch_off + a;
    ip->use_gemm = gemm;
    ip->size = ip->gemm_off + (gemm ? mmi_gemm_ws_size(1) : 0);
    if (ip->size < ip->gemm_off) return MM_E_RANGE;
    return MM_OK;
}

MM_API int mm_model_infer_workspace_size(const mm_model *m, int64_t batch, int64_t seq,
                                         size_t *bytes)
{
    infer_plan ip;
    int rc;
    if (!m || !bytes) return MM_E_INVALID_ARG;
    if (!m->finalized) return MM_E_STATE;
    if ((rc = plan_infer(m, batch, seq, &ip)) != MM_OK) return rc;
    *bytes = ip.size;
    return MM_OK;
}

MM_API int mm_model_infer(const mm_model *m, const mm_tensor *x, mm_tensor *y, void *ws,
                          size_t ws_size)
{
    const char *fn = "mm_model_infer";
    unsigned char *base = (unsigned char *)ws;
    const float *in;
    infer_plan ip;
    mmi_exec c;
    int rc;
    /* The model may be shared between threads: no error text is written (err NULL). */
    if (!m || !ws) return MM_E_INVALID_ARG;
    if (!m->finalized) return MM_E_STATE;
    if ((rc = mmi_model_input_shape(m, x, &c.batch, &c.seq, NULL, fn)) != MM_OK ||
        (rc = mmi_model_check_like(x, y, mmi_model_out_dim(m), "y", NULL, fn)) != MM_OK)
        return rc;
    if ((uintptr_t)ws % MMI_ALIGN != 0 || mmi_tensor_overlap(x, y)) return MM_E_INVALID_ARG;
    if ((rc = plan_infer(m, c.batch, c.seq, &ip)) != MM_OK) return rc;
    /* The layers read x and write y directly (no copy), and use ws between them. */
    if (ws_size < ip.size || mmi_overlaps(ws, ws_size, x->data, sizeof(float) * (size_t)x->numel) ||
        mmi_overlaps(ws, ws_size, y->data, sizeof(float) * (size_t)y->numel) ||
        mmi_model_own_apart_t(m, NULL, fn, "y", y, 0) != MM_OK ||
        mmi_model_own_apart(m, NULL, fn, "ws", ws, ws_size, 0) != MM_OK)
        return MM_E_INVALID_ARG;
    c.ctx = NULL, c.dctx = NULL; /* no context: a cross-attention layer refuses */
    c.ctx_len = c.ctx_dim = 0;
    c.rows = c.batch * c.seq;
    c.gemm_ws = ip.use_gemm ? base + ip.gemm_off : NULL;
    c.pool = NULL; /* a shared pool cannot serve concurrent callers */
    c.err = NULL;
    in = x->data;
    /* The two buffers alternate by step (a fused dense + activation pair is one step, its
     * activation applied in place unless it is the last layer). */
    for (int32_t i = 0, t = 0; i < m->n_layers; i++, t ^= 1) {
        const mmi_layer *l = &m->layers[i];
        float *out = i == m->n_layers - 1 ? y->data : (float *)(base + ip.buf_off[t]);
        if (fuses_act(m, i)) {
            float *act_out = i + 1 == m->n_layers - 1 ? y->data : out;
            mmi_dense_forward_act(l, &c, m->params + l->param_offset, in, out,
                                  (int32_t)m->layers[i + 1].icfg[0], act_out);
            in = act_out;
            i++;
            continue;
        }
        rc = l->vt->forward(l, &c, m->params + l->param_offset, in, out, NULL,
                            base + ip.scratch_off);
        if (rc != MM_OK) return rc;
        in = out;
    }
    return MM_OK;
}
