/* SPDX-License-Identifier: MIT */
/* loss.c — mm_loss lifecycle (options, create, free, error text) and its run-time parameters
 * and statistics. Every workspace a kind needs is reserved here, so the compute calls in
 * loss_pairwise.c / loss_rows.c / loss_helpers.c never allocate. */
#include "mmi_loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define LN_1_OVER_0_07 2.6592600369327779 /* open_clip's initial logit scale, ln(1/0.07) */
#define LN_10          2.3025850929940459 /* SigLIP's initial logit scale, ln 10 */
#define MAX_TILE       4096
#define MIN_TILE       8
#define MAX_ROWS       ((int64_t)1 << 31)

#define K(kind) (1u << (kind))
#define ALL_KINDS                                                                                  \
    (K(MM_LOSS_CLIP) | K(MM_LOSS_SIGLIP) | K(MM_LOSS_ITC) | K(MM_LOSS_CROSS_ENTROPY) |             \
     K(MM_LOSS_BCE) | K(MM_LOSS_KIMI))

/* Which kinds use a parameter or statistic, and whether it may be set. */
typedef struct param_use {
    int32_t id;
    uint32_t kinds;
    int settable;
    int integral; /* flags and indices: the value must be a whole number */
} param_use;

static const param_use k_use[] = {
    {MM_LOSS_LOGIT_SCALE, K(MM_LOSS_CLIP) | K(MM_LOSS_SIGLIP), 1, 0},
    {MM_LOSS_LOGIT_BIAS, K(MM_LOSS_SIGLIP), 1, 0},
    {MM_LOSS_TEMP, K(MM_LOSS_ITC), 1, 0},
    {MM_LOSS_ALPHA, K(MM_LOSS_ITC), 1, 0},
    {MM_LOSS_LABEL_SMOOTHING, K(MM_LOSS_CROSS_ENTROPY), 1, 0},
    {MM_LOSS_IGNORE_INDEX, K(MM_LOSS_CROSS_ENTROPY), 1, 1},
    {MM_LOSS_TAU, K(MM_LOSS_KIMI), 1, 0},
    {MM_LOSS_KIMI_BASELINE, K(MM_LOSS_KIMI), 1, 1},
    {MM_LOSS_NORM_EPS, ALL_KINDS, 1, 0},
    {MM_LOSS_NORM_EPS_MODE, ALL_KINDS, 1, 1},
    {MM_LOSS_CLAMP_LOGIT_SCALE, K(MM_LOSS_CLIP) | K(MM_LOSS_SIGLIP), 1, 1},
    {MM_LOSS_GRAD_SCALE, ALL_KINDS, 1, 0},
    {MM_LOSS_STAT_LOSS, ALL_KINDS, 0, 0},
    {MM_LOSS_STAT_DLOGIT_SCALE, K(MM_LOSS_CLIP) | K(MM_LOSS_SIGLIP), 0, 0},
    {MM_LOSS_STAT_DLOGIT_BIAS, K(MM_LOSS_SIGLIP), 0, 0},
    {MM_LOSS_STAT_DTEMP, K(MM_LOSS_ITC), 0, 0},
    {MM_LOSS_STAT_LOSS_I2T, K(MM_LOSS_CLIP) | K(MM_LOSS_ITC), 0, 0},
    {MM_LOSS_STAT_LOSS_T2I, K(MM_LOSS_CLIP) | K(MM_LOSS_ITC), 0, 0},
    {MM_LOSS_STAT_VALID, ALL_KINDS, 0, 0},
    {MM_LOSS_STAT_WORKSPACE_BYTES, ALL_KINDS, 0, 0},
};

static const param_use *use_find(int32_t id)
{
    for (size_t i = 0; i < sizeof k_use / sizeof k_use[0]; i++)
        if (k_use[i].id == id) return &k_use[i];
    return NULL;
}

static int kind_known(int32_t kind) { return kind >= MM_LOSS_CLIP && kind <= MM_LOSS_KIMI; }

static void fill_defaults(mm_loss_opts *o, int32_t kind)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->kind = kind;
    o->n_threads = 1;
    o->max_batch = 1024;
    o->max_dim = 1024;
    o->max_queue = 0;
    o->tile = 256;
    o->group_size = 8;
    o->seed = 0;
}

MM_API int mm_loss_opts_init(mm_loss_opts *o, int32_t kind)
{
    if (!o || !kind_known(kind)) return MM_E_INVALID_ARG;
    fill_defaults(o, kind);
    return MM_OK;
}

/* Reads the caller's options over the defaults of the kind it names. */
static int read_opts(mm_loss_opts *o, const mm_loss_opts *src, mmi_err *e)
{
    static const char fn[] = "mm_loss_create";
    int rc;
    fill_defaults(o, MM_LOSS_CLIP);
    if ((rc = mmi_opts_copy(o, src, sizeof *o, e, fn)) != MM_OK) return rc;
    if (!kind_known(o->kind))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown kind %d (MM_LOSS_CLIP..MM_LOSS_KIMI)", fn,
                        (int)o->kind);
    fill_defaults(o, o->kind);
    return mmi_opts_copy(o, src, sizeof *o, e, fn);
}

static int check_opts(const mm_loss_opts *o, mmi_err *e)
{
    static const char fn[] = "mm_loss_create";
    if (o->reserved0 != 0) return mmi_fail(e, MM_E_INVALID_ARG, "%s: reserved0 must be 0", fn);
    if (o->n_threads < 1 || o->n_threads > 256)
        return mmi_fail(e, MM_E_RANGE, "%s: n_threads is %d, expected 1..256", fn,
                        (int)o->n_threads);
    if (o->max_batch < 1 || o->max_batch > MAX_ROWS)
        return mmi_fail(e, MM_E_RANGE, "%s: max_batch is %lld, expected 1..2^31", fn,
                        (long long)o->max_batch);
    if (o->max_dim < 1 || o->max_dim > MAX_ROWS)
        return mmi_fail(e, MM_E_RANGE, "%s: max_dim is %lld, expected 1..2^31", fn,
                        (long long)o->max_dim);
    if (o->max_queue < 0 || o->max_queue > MAX_ROWS)
        return mmi_fail(e, MM_E_RANGE, "%s: max_queue is %lld, expected 0..2^31", fn,
                        (long long)o->max_queue);
    if (o->tile < MIN_TILE || o->tile > MAX_TILE)
        return mmi_fail(e, MM_E_RANGE, "%s: tile is %lld, expected %d..%d", fn, (long long)o->tile,
                        MIN_TILE, MAX_TILE);
    if (o->kind == MM_LOSS_KIMI && (o->group_size < 1 || o->group_size > o->max_batch))
        return mmi_fail(e, MM_E_RANGE, "%s: group_size is %lld, expected 1..max_batch (%lld)", fn,
                        (long long)o->group_size, (long long)o->max_batch);
    return MM_OK;
}

/* Bytes of the kind's kernel workspace; 0 with *none set for kinds that need none. */
static size_t kind_ws_bytes(const mm_loss_opts *o, int *none)
{
    *none = 0;
    switch (o->kind) {
    case MM_LOSS_CLIP:
        return mmi_loss_clip_ws_size(o->max_batch, o->max_dim, o->tile, o->n_threads);
    case MM_LOSS_SIGLIP:
        return mmi_loss_siglip_ws_size(o->max_batch, o->max_dim, o->tile, o->n_threads);
    case MM_LOSS_ITC:
        return mmi_loss_itc_ws_size(o->max_batch, o->max_queue, o->tile, o->n_threads);
    default:
        *none = 1;
        return 0;
    }
}

static void set_defaults(mm_loss *h)
{
    h->logit_scale = h->kind == MM_LOSS_SIGLIP ? LN_10 : LN_1_OVER_0_07;
    h->logit_bias = h->kind == MM_LOSS_SIGLIP ? -10.0 : 0.0;
    h->temp = 0.07;
    h->alpha = 0.4;
    h->smoothing = 0.0;
    h->ignore_index = -100;
    h->tau = 1.0;
    h->baseline = 0;
    h->norm_eps = 1e-12;
    h->eps_mode = 0;
    h->clamp_scale = 0;
    h->grad_scale = 1.0;
}

/* Allocates the workspaces and the pool of a fresh handle. */
static int reserve(mm_loss *h, const mm_loss_opts *o, mmi_err *e)
{
    int none, rc;
    size_t bytes = kind_ws_bytes(o, &none);
    if (!none && bytes == 0)
        return mmi_fail(e, MM_E_RANGE,
                        "mm_loss_create: workspace size overflows (max_batch "
                        "%lld, tile %lld)",
                        (long long)o->max_batch, (long long)o->tile);
    if (!none) {
        if (!(h->ws = mmi_malloc(&h->alloc, bytes)))
            return mmi_fail(e, MM_E_NOMEM,
                            "mm_loss_create: out of memory for %zu bytes of "
                            "workspace",
                            bytes);
        h->ws_bytes = bytes;
    }
    h->blip_bytes = (size_t)o->max_batch * sizeof(double); /* max_batch <= 2^31: no overflow */
    if (!(h->blip_w = (double *)mmi_malloc(&h->alloc, h->blip_bytes)))
        return mmi_fail(e, MM_E_NOMEM, "mm_loss_create: out of memory for %zu bytes",
                        h->blip_bytes);
    if ((rc = mmi_pool_create(&h->pool, o->n_threads, &h->alloc, e)) != MM_OK) return rc;
    return MM_OK;
}

MM_API int mm_loss_create(mm_loss **out, const mm_loss_opts *opts)
{
    mm_loss_opts o;
    mmi_err e;
    mmi_alloc a;
    mm_loss *h;
    int rc;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    e.msg[0] = '\0';
    if ((rc = read_opts(&o, opts, &e)) != MM_OK || (rc = check_opts(&o, &e)) != MM_OK ||
        (rc = mmi_alloc_init(&a, o.alloc, &e)) != MM_OK)
        goto fail;
    if (!(h = (mm_loss *)mmi_calloc(&a, sizeof *h))) {
        rc = mmi_fail(&e, MM_E_NOMEM, "mm_loss_create: out of memory for the handle");
        goto fail;
    }
    h->alloc = a;
    h->kind = o.kind;
    h->n_threads = o.n_threads;
    h->max_batch = o.max_batch;
    h->max_dim = o.max_dim;
    h->max_queue = o.max_queue;
    h->tile = o.tile;
    h->group_size = o.group_size;
    mmi_rng_seed(&h->rng, o.seed);
    set_defaults(h);
    if ((rc = reserve(h, &o, &e)) != MM_OK) {
        mm_loss_free(h);
        goto fail;
    }
    *out = h;
    return MM_OK;
fail:
    mmi_opts_export_error(opts, offsetof(mm_loss_opts, err_buf),
                          offsetof(mm_loss_opts, err_buf_size), &e);
    return rc;
}

MM_API void mm_loss_free(mm_loss *h)
{
    mmi_alloc a;
    if (!h) return;
    a = h->alloc;
    mmi_pool_free(h->pool);
    mmi_free(&a, h->ws, h->ws_bytes);
    mmi_free(&a, h->blip_w, h->blip_bytes);
    mmi_free(&a, h->dws, h->dws_bytes);
    mmi_free(&a, h, sizeof *h);
}

MM_API const char *mm_loss_errmsg(const mm_loss *h) { return h ? h->err.msg : "invalid handle"; }

const char *mmi_loss_kind_name(int32_t kind)
{
    static const char *const names[] = {"?",           "MM_LOSS_CLIP",          "MM_LOSS_SIGLIP",
                                        "MM_LOSS_ITC", "MM_LOSS_CROSS_ENTROPY", "MM_LOSS_BCE",
                                        "MM_LOSS_KIMI"};
    return kind_known(kind) ? names[kind] : names[0];
}

/* Finds id's use entry and checks it applies to h's kind. */
static int lookup(mm_loss *h, int32_t id, const char *fn, const param_use **u)
{
    const mmi_param *p = mmi_param_find(id);
    *u = use_find(id);
    if (!p || !*u)
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: unknown parameter id %d", fn, (int)id);
    if (!((*u)->kinds & K(h->kind)))
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: %s does not apply to %s", fn, p->name,
                        mmi_loss_kind_name(h->kind));
    return MM_OK;
}

MM_API int mm_loss_set_f64(mm_loss *h, int32_t id, double v)
{
    static const char fn[] = "mm_loss_set_f64";
    const param_use *u;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = lookup(h, id, fn, &u)) != MM_OK) return rc;
    if (!u->settable)
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: %s is a read-only statistic", fn,
                        mmi_param_find(id)->name);
    if ((rc = mmi_param_check(id, v, &h->err, fn)) != MM_OK) return rc;
    if (u->integral && v != floor(v))
        return mmi_fail(&h->err, MM_E_RANGE, "%s: %s must be a whole number, got %g", fn,
                        mmi_param_find(id)->name, v);
    switch (id) {
    case MM_LOSS_LOGIT_SCALE:
        h->logit_scale = v;
        break;
    case MM_LOSS_LOGIT_BIAS:
        h->logit_bias = v;
        break;
    case MM_LOSS_TEMP:
        h->temp = v;
        break;
    case MM_LOSS_ALPHA:
        h->alpha = v;
        break;
    case MM_LOSS_LABEL_SMOOTHING:
        h->smoothing = v;
        break;
    case MM_LOSS_IGNORE_INDEX:
        h->ignore_index = (int32_t)v;
        break;
    case MM_LOSS_TAU:
        h->tau = v;
        break;
    case MM_LOSS_KIMI_BASELINE:
        h->baseline = (int32_t)v;
        break;
    case MM_LOSS_NORM_EPS:
        h->norm_eps = v;
        break;
    case MM_LOSS_NORM_EPS_MODE:
        h->eps_mode = (int32_t)v;
        break;
    case MM_LOSS_CLAMP_LOGIT_SCALE:
        h->clamp_scale = (int32_t)v;
        break;
    case MM_LOSS_GRAD_SCALE:
        h->grad_scale = v;
        break;
    default:
        return mmi_fail(&h->err, MM_E_INTERNAL, "%s: id %d has no storage", fn, (int)id);
    }
    return MM_OK;
}

/* The value behind a known id (parameters and statistics). */
static double value_of(const mm_loss *h, int32_t id)
{
    switch (id) {
    case MM_LOSS_LOGIT_SCALE:
        return h->logit_scale;
    case MM_LOSS_LOGIT_BIAS:
        return h->logit_bias;
    case MM_LOSS_TEMP:
        return h->temp;
    case MM_LOSS_ALPHA:
        return h->alpha;
    case MM_LOSS_LABEL_SMOOTHING:
        return h->smoothing;
    case MM_LOSS_IGNORE_INDEX:
        return (double)h->ignore_index;
    case MM_LOSS_TAU:
        return h->tau;
    case MM_LOSS_KIMI_BASELINE:
        return (double)h->baseline;
    case MM_LOSS_NORM_EPS:
        return h->norm_eps;
    case MM_LOSS_NORM_EPS_MODE:
        return (double)h->eps_mode;
    case MM_LOSS_CLAMP_LOGIT_SCALE:
        return (double)h->clamp_scale;
    case MM_LOSS_GRAD_SCALE:
        return h->grad_scale;
    case MM_LOSS_STAT_LOSS:
        return h->st_loss;
    case MM_LOSS_STAT_DLOGIT_SCALE:
        return h->st_dscale;
    case MM_LOSS_STAT_DLOGIT_BIAS:
        return h->st_dbias;
    case MM_LOSS_STAT_DTEMP:
        return h->st_dtemp;
    case MM_LOSS_STAT_LOSS_I2T:
        return h->st_i2t;
    case MM_LOSS_STAT_LOSS_T2I:
        return h->st_t2i;
    case MM_LOSS_STAT_VALID:
        return h->st_valid;
    default: /* MM_LOSS_STAT_WORKSPACE_BYTES */
        return (double)(sizeof *h + h->ws_bytes + h->blip_bytes);
    }
}

MM_API int mm_loss_get_f64(const mm_loss *h, int32_t id, double *v)
{
    const param_use *u;
    int rc;
    if (!h || !v) return MM_E_INVALID_ARG;
    /* The getter is logically const; its failure text still goes to the handle. */
    if ((rc = lookup((mm_loss *)h, id, "mm_loss_get_f64", &u)) != MM_OK) return rc;
    *v = value_of(h, id);
    return MM_OK;
}

double mmi_loss_scale(const mm_loss *h, int *t_passes)
{
    double t = h->logit_scale;
    *t_passes = 1;
    if (h->clamp_scale && (t < 0.0 || t > log(100.0))) {
        /* FLIP clips t inside the forward: outside [0, ln 100] the loss does not depend on t. */
        t = t < 0.0 ? 0.0 : log(100.0);
        *t_passes = 0;
    }
    return exp(t);
}
