/* SPDX-License-Identifier: MIT */
/* attn.c — mm_attn's lifecycle: options and their defaults per kind, create (validation and the
 * one reservation every later call lives in), run-time parameters, the Performer projection,
 * reset and free. */
#include "mmi_attn.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAX_SIZE  ((int64_t)1 << 31)
#define MAX_WIDTH ((int64_t)1 << 16)

static int kind_known(int32_t k) { return k >= MM_ATTN_SOFTMAX && k <= MM_ATTN_RWKV6; }

static void fill_defaults(mm_attn_opts *o, int32_t kind)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->kind = kind;
    o->feature_map = MM_FMAP_ELU1;
    o->causal = kind == MM_ATTN_SPARSE || kind == MM_ATTN_GATED || kind == MM_ATTN_RWKV6;
    o->normalize = 1;
    o->d_head = 64;
    o->n_heads = 1;
    o->max_batch = 1;
    o->max_seq = 1024;
    o->chunk = kind == MM_ATTN_GATED || kind == MM_ATTN_RWKV6 ? 32 : 256;
    o->sparse_pattern = MM_SPARSE_LOCAL;
    o->gate = MM_GATE_NONE;
    o->window = 128;
    o->stride = 128;
    o->n_threads = 1;
}

MM_API int mm_attn_opts_init(mm_attn_opts *o, int32_t kind)
{
    if (!o) return MM_E_INVALID_ARG;
    if (!kind_known(kind)) {
        fill_defaults(o, MM_ATTN_SOFTMAX);
        return MM_E_INVALID_ARG;
    }
    fill_defaults(o, kind);
    return MM_OK;
}

/* Reads the caller's options over the defaults of the kind they name. */
static int read_opts(mm_attn_opts *o, const mm_attn_opts *src, mmi_err *e)
{
    static const char fn[] = "mm_attn_create";
    int rc;
    fill_defaults(o, MM_ATTN_SOFTMAX);
    if ((rc = mmi_opts_copy(o, src, sizeof *o, e, fn)) != MM_OK) return rc;
    if (!kind_known(o->kind))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown kind %d (MM_ATTN_SOFTMAX..MM_ATTN_RWKV6)",
                        fn, (int)o->kind);
    fill_defaults(o, o->kind);
    return mmi_opts_copy(o, src, sizeof *o, e, fn);
}

static int check_range(mmi_err *e, const char *what, int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo || v > hi)
        return mmi_fail(e, MM_E_RANGE, "mm_attn_create: %s is %lld, expected %lld..%lld", what,
                        (long long)v, (long long)lo, (long long)hi);
    return MM_OK;
}

static int check_opts(mm_attn_opts *o, mmi_err *e)
{
    static const char fn[] = "mm_attn_create";
    int rc;
    if (o->reserved0 || o->reserved1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: reserved fields must be 0", fn);
    if (o->dv == 0) o->dv = o->d_head;
    if ((rc = check_range(e, "d_head", o->d_head, 1, MAX_WIDTH)) ||
        (rc = check_range(e, "dv", o->dv, 1, MAX_WIDTH)) ||
        (rc = check_range(e, "n_heads", o->n_heads, 1, MAX_SIZE)) ||
        (rc = check_range(e, "max_batch", o->max_batch, 1, MAX_SIZE)) ||
        (rc = check_range(e, "max_seq", o->max_seq, 1, MAX_SIZE)) ||
        (rc = check_range(e, "n_threads", o->n_threads, 1, 256)))
        return rc;
    if (o->causal != 0 && o->causal != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: causal is %d, expected 0 or 1", fn,
                        (int)o->causal);
    if ((o->kind == MM_ATTN_SPARSE || o->kind == MM_ATTN_GATED || o->kind == MM_ATTN_RWKV6) &&
        !o->causal)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: %s attention is causal only (causal = 1)", fn,
                        o->kind == MM_ATTN_SPARSE  ? "sparse"
                        : o->kind == MM_ATTN_GATED ? "gated"
                                                   : "RWKV-6");
    if (o->kind == MM_ATTN_LINEAR &&
        (o->feature_map < MM_FMAP_ELU1 || o->feature_map > MM_FMAP_IDENTITY))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown feature_map %d", fn, (int)o->feature_map);
    if (o->normalize != 0 && o->normalize != 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: normalize is %d, expected 0 or 1", fn,
                        (int)o->normalize);
    if ((o->kind == MM_ATTN_RELU2 || o->kind == MM_ATTN_GATED || o->kind == MM_ATTN_RWKV6) &&
        (rc = check_range(e, "chunk", o->chunk, 1, o->kind == MM_ATTN_RELU2 ? MAX_SIZE : 1024)))
        return rc;
    if (o->kind == MM_ATTN_SPARSE) {
        if (o->sparse_pattern != MM_SPARSE_LOCAL && o->sparse_pattern != MM_SPARSE_STRIDED)
            return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown sparse_pattern %d", fn,
                            (int)o->sparse_pattern);
        if ((rc = check_range(e, o->sparse_pattern == MM_SPARSE_LOCAL ? "window" : "stride",
                              o->sparse_pattern == MM_SPARSE_LOCAL ? o->window : o->stride, 1,
                              MAX_SIZE)))
            return rc;
    }
    if (o->kind == MM_ATTN_GATED && o->gate != MM_GATE_NONE && o->gate != MM_GATE_RETNET)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown gate %d", fn, (int)o->gate);
    if (o->kind == MM_ATTN_PERFORMER) {
        if (o->n_features == 0) /* performer-pytorch: int(d ln d), at least 1 */
            o->n_features =
                o->d_head > 1 ? (int64_t)((double)o->d_head * log((double)o->d_head)) : 1;
        if ((rc = check_range(e, "n_features", o->n_features, 1, MAX_WIDTH))) return rc;
    }
    return MM_OK;
}

int mmi_attn_opts_resolve(mm_attn_opts *o, const mm_attn_opts *src, mmi_err *e)
{
    int rc;
    if ((rc = read_opts(o, src, e)) != MM_OK) return rc;
    return check_opts(o, e);
}

/* ---- the reservation ------------------------------------------------------------------------ */
static int64_t mul3(int64_t a, int64_t b, int64_t c, int *ovf)
{
    int64_t r;
    if (mmi_mul_i64(&r, a, b) || mmi_mul_i64(&r, r, c)) {
        *ovf = 1;
        return 0;
    }
    return r;
}

/* Floats of one thread's workspace: the kind's kernel workspace plus backward scratch for
 * feature gradients and for outputs the caller did not ask for. */
static int64_t thread_ws_floats(mm_attn *h, int *ovf)
{
    const int64_t d = h->d, dv = h->dv, n = h->max_seq, f = h->nf > d ? h->nf : d;
    int64_t k = 0;
    (void)dv;
    switch (h->kind) {
    default: {
        const mmi_attn_head a = mmi_attn_head_of(h, n, n, 0);
        k = (int64_t)mmi_attn_head_ws_floats(&a, n);
    }
    }
    if (h->kind == MM_ATTN_RELU2 && h->cache_rows + d + 16 > k) /* step: logits + one key */
        k = h->cache_rows + d + 16;
    k = (k + 15) / 16 * 16; /* keeps every thread's slice 64-byte aligned */
    h->ws_kern = (size_t)k;
    /* scratch: gradients of q-side and k-side features (n x f each) and of v (n x dv) */
    return (k + mul3(2 * n, f, 1, ovf) + mul3(n, dv, 1, ovf) + 64 + 15) / 16 * 16;
}

/* The arena's regions, in order; measures when y measures (the pointers are then NULL). */
static void layout(mm_attn *h, mmi_carve *y, int *ovf)
{
    const int64_t bh = h->max_batch * h->heads, d = h->d, dv = h->dv, f = h->nf, n = h->max_seq;
    const int feats = h->kind == MM_ATTN_LINEAR || h->kind == MM_ATTN_PERFORMER;
    const int cache = h->kind == MM_ATTN_SOFTMAX || h->kind == MM_ATTN_SPARSE;
    if (h->kind == MM_ATTN_PERFORMER) {
        h->proj = (float *)mmi_carve_take(y, f * d, sizeof(float));
        h->projt = (float *)mmi_carve_take(y, f * d, sizeof(float));
        h->draw_work = (double *)mmi_carve_take(y, 2 * d * d, sizeof(double));
    }
    h->retnet_lg = (float *)mmi_carve_take(y, h->heads, sizeof(float));
    if (h->kind != MM_ATTN_LINEAR) { /* LINEAR's forward reads q, k in place; its backward
                                      * reads only the saved features */
        h->sq = (float *)mmi_carve_take(y, mul3(bh, n, d, ovf), sizeof(float));
        h->sk = (float *)mmi_carve_take(y, mul3(bh, n, d, ovf), sizeof(float));
    }
    h->sv = (float *)mmi_carve_take(y, mul3(bh, n, dv, ovf), sizeof(float));
    h->so = (float *)mmi_carve_take(y, mul3(bh, n, dv, ovf), sizeof(float));
    h->srow = (float *)mmi_carve_take(y, mul3(bh, n, 1, ovf), sizeof(float));
    if (feats) {
        h->sfq = (float *)mmi_carve_take(y, mul3(bh, n, f, ovf), sizeof(float));
        h->sfk = (float *)mmi_carve_take(y, mul3(bh, n, f, ovf), sizeof(float));
    }
    if (h->kind == MM_ATTN_GATED || h->kind == MM_ATTN_RWKV6) {
        const size_t hs = mmi_attn_gated_hs_floats(n, h->chunk, d, dv);
        h->sg = (float *)mmi_carve_take(y, mul3(bh, n, d, ovf), 4);
        if (hs == SIZE_MAX) *ovf = 1;
        h->hs_floats = hs == SIZE_MAX ? 0 : (int64_t)hs;
        h->shs = (float *)mmi_carve_take(y, mul3(bh, h->hs_floats, 1, ovf), sizeof(float));
    }
    if (h->kind == MM_ATTN_RWKV6) { /* the bonus u and per batch-head partial du */
        h->su = (float *)mmi_carve_take(y, mul3(h->heads, d, 1, ovf), sizeof(float));
        h->sdu = (float *)mmi_carve_take(y, mul3(bh, d, 1, ovf), sizeof(float));
    }
    h->sstab = (float *)mmi_carve_take(y, bh, sizeof(float));
    h->ws = (float *)mmi_carve_take(y, mul3((int64_t)h->ws_floats, h->n_threads, 1, ovf), 4);
    if (h->causal && !cache) {
        h->st = (float *)mmi_carve_take(y, mul3(bh, f > d ? f : d, dv, ovf), sizeof(float));
        h->stz = (double *)mmi_carve_take(y, mul3(bh, f, 1, ovf), sizeof(double));
    }
    if (h->causal && h->cache_rows)
        h->cache = (float *)mmi_carve_take(y, mul3(bh, h->cache_rows, d + dv, ovf), 4);
    h->pstab = (float *)mmi_carve_take(y, bh, sizeof(float));
}

/* Measures the arena, allocates it once and carves it. */
static int reserve(mm_attn *h, mmi_err *e)
{
    static const char fn[] = "mm_attn_create";
    const int cache = h->kind == MM_ATTN_SOFTMAX || h->kind == MM_ATTN_SPARSE;
    int ovf = 0;
    mmi_carve y = mmi_carve_measure();
    h->cache_rows = cache ? h->max_seq : h->kind == MM_ATTN_RELU2 ? h->chunk : 0;
    if (h->cache_rows > h->max_seq) h->cache_rows = h->max_seq; /* RELU2: step checks it */
    h->ws_floats = (size_t)thread_ws_floats(h, &ovf);
    layout(h, &y, &ovf);
    if (ovf || y.overflow)
        return mmi_fail(e, MM_E_RANGE,
                        "%s: the reservation for max_batch %lld x n_heads %lld x "
                        "max_seq %lld overflows",
                        fn, (long long)h->max_batch, (long long)h->heads, (long long)h->max_seq);
    if (!(h->arena = mmi_calloc(&h->alloc, y.off)))
        return mmi_fail(e, MM_E_NOMEM, "%s: out of memory for %zu bytes", fn, y.off);
    h->arena_bytes = y.off;
    y = mmi_carve_at(h->arena, h->arena_bytes);
    layout(h, &y, &ovf);
    return MM_OK;
}

static void draw_projection(mm_attn *h)
{
    mmi_attn_draw_projection(&h->rng, h->d, h->nf, h->proj, h->draw_work);
}

static void transpose_projection(mm_attn *h)
{
    for (int64_t r = 0; r < h->nf; r++)
        for (int64_t c = 0; c < h->d; c++) h->projt[c * h->nf + r] = h->proj[r * h->d + c];
}

static void set_defaults(mm_attn *h)
{
    h->scale = h->kind == MM_ATTN_RWKV6 ? 1.0 : 1.0 / sqrt((double)h->d); /* RWKV: unscaled r */
    h->eps = h->kind == MM_ATTN_PERFORMER ? 0.0 : 1e-6;
    h->feps = 1e-4;
    for (int64_t i = 0; i < h->heads; i++) /* RetNet: gamma_h = 1 - 2^(-5-h) */
        h->retnet_lg[i] = (float)log1p(-ldexp(1.0, -5 - (int)(i < 60 ? i : 60)));
}

static void copy_config(mm_attn *h, const mm_attn_opts *o)
{
    h->kind = o->kind;
    h->fmap = o->kind == MM_ATTN_LINEAR ? o->feature_map : MM_FMAP_IDENTITY;
    h->causal = o->causal;
    h->normalize = o->kind == MM_ATTN_PERFORMER ? 1 : o->normalize;
    h->pattern = o->sparse_pattern;
    h->gate = o->gate;
    h->n_threads = o->n_threads;
    h->d = o->d_head, h->dv = o->dv, h->heads = o->n_heads;
    h->max_batch = o->max_batch, h->max_seq = o->max_seq;
    h->chunk = o->chunk;
    h->window = o->kind == MM_ATTN_SPARSE && o->sparse_pattern == MM_SPARSE_LOCAL ? o->window : 0;
    h->stride = o->kind == MM_ATTN_SPARSE && o->sparse_pattern == MM_SPARSE_STRIDED ? o->stride : 0;
    h->nf = o->kind == MM_ATTN_PERFORMER ? o->n_features : o->d_head;
    mmi_rng_seed(&h->rng, o->seed);
}

MM_API int mm_attn_create(mm_attn **out, const mm_attn_opts *opts)
{
    mm_attn_opts o;
    mmi_err e;
    mmi_alloc a;
    mm_attn *h;
    int rc;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    e.msg[0] = '\0';
    if ((rc = read_opts(&o, opts, &e)) != MM_OK || (rc = check_opts(&o, &e)) != MM_OK ||
        (rc = mmi_alloc_init(&a, o.alloc, &e)) != MM_OK)
        goto fail;
    if (!(h = (mm_attn *)mmi_calloc(&a, sizeof *h))) {
        rc = mmi_fail(&e, MM_E_NOMEM, "mm_attn_create: out of memory for the handle");
        goto fail;
    }
    h->alloc = a;
    copy_config(h, &o);
    if ((rc = reserve(h, &e)) != MM_OK ||
        (rc = mmi_pool_create(&h->pool, h->n_threads, &h->alloc, &e)) != MM_OK) {
        mm_attn_free(h);
        goto fail;
    }
    set_defaults(h);
    if (h->kind == MM_ATTN_PERFORMER) {
        draw_projection(h);
        transpose_projection(h);
    }
    *out = h;
    return MM_OK;
fail:
    mmi_opts_export_error(opts, offsetof(mm_attn_opts, err_buf),
                          offsetof(mm_attn_opts, err_buf_size), &e);
    return rc;
}

MM_API void mm_attn_free(mm_attn *h)
{
    if (!h) return;
    mmi_pool_free(h->pool);
    mmi_free(&h->alloc, h->arena, h->arena_bytes);
    {
        mmi_alloc a = h->alloc;
        mmi_free(&a, h, sizeof *h);
    }
}

MM_API const char *mm_attn_errmsg(const mm_attn *h) { return h ? h->err.msg : "invalid handle"; }

MM_API int mm_attn_reset(mm_attn *h)
{
    if (!h) return MM_E_INVALID_ARG;
    h->pos = 0;
    h->step_b = 0;
    h->fwd_valid = 0;
    mmi_err_clear(&h->err);
    return MM_OK;
}

/* ---- parameters ----------------------------------------------------------------------------- */
MM_API int mm_attn_set_f64(mm_attn *h, int32_t id, double v)
{
    static const char fn[] = "mm_attn_set_f64";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_param_check(id, v, &h->err, fn)) != MM_OK) return rc;
    /* a saved forward computed with the old value no longer matches its backward */
    switch (id) {
    case MM_ATTN_SCALE:
        h->scale = v, h->fwd_valid = 0;
        return MM_OK;
    case MM_ATTN_EPS:
        h->eps = v, h->fwd_valid = 0;
        return MM_OK;
    case MM_ATTN_FEATURE_EPS:
        h->feps = v, h->fwd_valid = 0;
        return MM_OK;
    default:
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: parameter %d is read-only", fn, (int)id);
    }
}

MM_API int mm_attn_get_f64(const mm_attn *ch, int32_t id, double *v)
{
    /* The getter is logically const; its failure text still goes to the handle. */
    mm_attn *h = (mm_attn *)ch;
    if (!h || !v) return MM_E_INVALID_ARG;
    switch (id) {
    case MM_ATTN_SCALE:
        *v = h->scale;
        return MM_OK;
    case MM_ATTN_EPS:
        *v = h->eps;
        return MM_OK;
    case MM_ATTN_FEATURE_EPS:
        *v = h->feps;
        return MM_OK;
    case MM_ATTN_STAT_POSITION:
        *v = (double)h->pos;
        return MM_OK;
    case MM_ATTN_STAT_WORKSPACE_BYTES:
        *v = (double)h->arena_bytes;
        return MM_OK;
    default:
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "mm_attn_get_f64: unknown parameter id %d",
                        (int)id);
    }
}

/* ---- Performer projection ------------------------------------------------------------------- */
static int check_proj(mm_attn *h, const mm_tensor *w, const char *fn)
{
    char buf[96];
    if (!w) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: w is NULL", fn);
    if (h->kind != MM_ATTN_PERFORMER)
        return mmi_fail(&h->err, MM_E_STATE, "%s: only MM_ATTN_PERFORMER has a projection", fn);
    if (w->ndim != 2 || w->shape[0] != h->nf || w->shape[1] != h->d) {
        mmi_tensor_shape_str(w, buf, sizeof buf);
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: w is %s, expected [%lld,%lld] (n_features, "
                        "d_head)",
                        fn, buf, (long long)h->nf, (long long)h->d);
    }
    return MM_OK;
}

MM_API int mm_attn_get_projection(const mm_attn *ch, mm_tensor *w)
{
    /* Logically const, as mm_attn_get_f64. */
    mm_attn *h = (mm_attn *)ch;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = check_proj(h, w, "mm_attn_get_projection")) != MM_OK) return rc;
    memcpy(w->data, h->proj, sizeof(float) * (size_t)(h->nf * h->d));
    return MM_OK;
}

MM_API int mm_attn_set_projection(mm_attn *h, const mm_tensor *w)
{
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = check_proj(h, w, "mm_attn_set_projection")) != MM_OK) return rc;
    if (!mmi_all_finite(w->data, w->numel))
        return mmi_fail(&h->err, MM_E_NUMERIC, "mm_attn_set_projection: w holds NaN or Inf");
    memcpy(h->proj, w->data, sizeof(float) * (size_t)(h->nf * h->d));
    transpose_projection(h);
    h->fwd_valid = 0;
    return MM_OK;
}

MM_API int mm_attn_redraw(mm_attn *h)
{
    if (!h) return MM_E_INVALID_ARG;
    if (h->kind != MM_ATTN_PERFORMER)
        return mmi_fail(&h->err, MM_E_STATE,
                        "mm_attn_redraw: only MM_ATTN_PERFORMER draws "
                        "features");
    draw_projection(h);
    transpose_projection(h);
    h->fwd_valid = 0;
    return MM_OK;
}

mmi_attn_dims mmi_attn_dims_of(const mm_attn *h, int64_t n, int64_t m)
{
    mmi_attn_dims s;
    s.n = n, s.m = m, s.d = h->d, s.dv = h->dv;
    s.scale = (float)h->scale;
    s.causal = h->causal;
    s.window = h->window, s.stride = h->stride, s.chunk = h->chunk;
    return s;
}

mmi_attn_head mmi_attn_head_of(const mm_attn *h, int64_t n, int64_t m, int32_t gmode)
{
    mmi_attn_head a;
    a.kind = h->kind, a.fmap = h->fmap, a.normalize = h->normalize, a.gmode = gmode;
    a.s = mmi_attn_dims_of(h, n, m);
    a.eps = h->eps, a.feps = h->feps, a.nf = h->nf;
    a.proj = h->proj, a.projt = h->projt;
    a.u = NULL, a.du = NULL, a.hs = NULL;
    return a;
}
