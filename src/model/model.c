/* SPDX-License-Identifier: MIT */
/* model.c — mm_model's builder and lifecycle: options, create, add_* (through one generic
 * mmi_model_add_layer that save/load reuses), finalize (parameter, gradient and workspace
 * reservation, seeded initialisation), the flat views, and free. */
#include "../kernels/gemm/mmi_gemm.h"
#include "mmi_model.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define MAX_THREADS 256
#define MAX_LAYERS  4096

static void opts_defaults(mm_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->input_dim = 0; /* required */
    o->max_batch = 1;
    o->max_seq = 1;
    o->seed = 0;
    o->n_threads = 1;
}

MM_API int mm_model_opts_init(mm_model_opts *o)
{
    if (!o) return MM_E_INVALID_ARG;
    opts_defaults(o);
    return MM_OK;
}

static int check_opts(const mm_model_opts *o, mmi_err *e)
{
    const char *fn = "mm_model_create";
    if (o->reserved0 != 0 || o->reserved1 != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: reserved option fields must be 0", fn);
    if (o->input_dim < 1 || o->input_dim > ((int64_t)1 << 31))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: input_dim %lld must be in [1, 2^31]", fn,
                        (long long)o->input_dim);
    if (o->max_batch < 1 || o->max_seq < 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: max_batch %lld and max_seq %lld must be >= 1", fn,
                        (long long)o->max_batch, (long long)o->max_seq);
    if (o->n_threads < 1 || o->n_threads > MAX_THREADS)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: n_threads %d must be in [1, %d]", fn,
                        (int)o->n_threads, MAX_THREADS);
    return MM_OK;
}

MM_API int mm_model_create(mm_model **out, const mm_model_opts *opts)
{
    mm_model_opts o;
    mmi_alloc a;
    mmi_err e;
    mm_model *m = NULL;
    int rc;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    e.msg[0] = '\0';
    opts_defaults(&o);
    rc = mmi_opts_copy(&o, opts, sizeof o, &e, "mm_model_create");
    if (rc == MM_OK) rc = check_opts(&o, &e);
    if (rc == MM_OK) rc = mmi_alloc_init(&a, o.alloc, &e);
    if (rc == MM_OK && !(m = (mm_model *)mmi_calloc(&a, sizeof *m)))
        rc = mmi_fail(&e, MM_E_NOMEM, "mm_model_create: out of memory");
    if (rc != MM_OK) {
        mmi_opts_export_error(opts, offsetof(mm_model_opts, err_buf),
                              offsetof(mm_model_opts, err_buf_size), &e);
        return rc;
    }
    m->alloc = a;
    m->opts = o;
    m->opts.alloc = NULL; /* the copy in m->alloc is what counts; the pointer may dangle */
    m->opts.err_buf = NULL;
    m->opts.err_buf_size = 0;
    mmi_rng_seed(&m->rng, o.seed);
    *out = m;
    return MM_OK;
}

static int grow_layers(mm_model *m, const char *fn)
{
    int32_t cap = m->cap_layers ? m->cap_layers * 2 : 8;
    mmi_layer *nl;
    if (m->n_layers >= MAX_LAYERS)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: a model has at most %d layers", fn, MAX_LAYERS);
    nl = (mmi_layer *)mmi_calloc(&m->alloc, (size_t)cap * sizeof *nl);
    if (!nl) return mmi_fail(&m->err, MM_E_NOMEM, "%s: out of memory", fn);
    if (m->layers) memcpy(nl, m->layers, (size_t)m->n_layers * sizeof *nl);
    mmi_free(&m->alloc, m->layers, (size_t)m->cap_layers * sizeof *nl);
    m->layers = nl;
    m->cap_layers = cap;
    return MM_OK;
}

int64_t mmi_model_out_dim(const mm_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1].out_dim : m->opts.input_dim;
}

/* All cross-attention layers of a model read the one context tensor of a *_ctx call, so their
 * ctx_dim agree. Checked here, not in mm_model_add_cross_attention, so a file's layers meet it
 * too (a loaded model whose layers disagreed could never run a *_ctx call). */
static int check_one_context(mm_model *m, const mmi_layer *l, const char *fn)
{
    int64_t want = 0, dim = 0;
    if (!mmi_xattn_context(l, &want, NULL)) return MM_OK;
    for (int32_t i = 0; i < m->n_layers; i++)
        if (mmi_xattn_context(&m->layers[i], &dim, NULL) && dim != want)
            return mmi_fail(&m->err, MM_E_SHAPE,
                            "%s: ctx_dim %lld differs from layer %d's %lld; a model has one "
                            "context tensor",
                            fn, (long long)want, (int)i, (long long)dim);
    return MM_OK;
}

int mmi_model_add_layer(mm_model *m, const char *kind_name, const int64_t *icfg, int32_t n_icfg,
                        const double *dcfg, int32_t n_dcfg, const char *fn)
{
    const mmi_layer_vt *vt = mmi_layer_vt_by_name(kind_name);
    int64_t act_cfg[1];
    mmi_layer l;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (m->finalized)
        return mmi_fail(&m->err, MM_E_STATE,
                        "%s: the model is finalized; add layers before "
                        "mm_model_finalize",
                        fn);
    if (!vt && (act_cfg[0] = mmi_act_by_name(kind_name)) != 0 && n_icfg == 0 && n_dcfg == 0) {
        vt = mmi_layer_vt_find(MMI_LAYER_ACT); /* "tanh" is activation {MM_ACT_TANH} */
        icfg = act_cfg;
        n_icfg = 1;
    }
    if (!vt)
        return mmi_fail(&m->err, MM_E_UNSUPPORTED, "%s: unknown layer kind \"%s\"", fn,
                        kind_name ? kind_name : "(null)");
    if (n_icfg < 0 || n_icfg > MMI_LAYER_MAX_CFG || n_dcfg < 0 || n_dcfg > MMI_LAYER_MAX_CFG ||
        (n_icfg && !icfg) || (n_dcfg && !dcfg))
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: bad layer config arrays", fn);
    memset(&l, 0, sizeof l);
    l.vt = vt;
    l.n_icfg = n_icfg;
    l.n_dcfg = n_dcfg;
    if (n_icfg) memcpy(l.icfg, icfg, (size_t)n_icfg * sizeof *icfg);
    if (n_dcfg) memcpy(l.dcfg, dcfg, (size_t)n_dcfg * sizeof *dcfg);
    l.in_dim = mmi_model_out_dim(m);
    if ((rc = vt->setup(&l, &m->err, fn)) != MM_OK) return rc;
    if ((rc = check_one_context(m, &l, fn)) != MM_OK) return rc;
    if (m->n_layers == m->cap_layers && (rc = grow_layers(m, fn)) != MM_OK) return rc;
    m->layers[m->n_layers++] = l;
    mmi_err_clear(&m->err);
    return MM_OK;
}

MM_API int mm_model_add_dense(mm_model *m, int64_t out_features, int32_t bias, int32_t init,
                              double gain)
{
    int64_t ic[3] = {out_features, bias, init};
    return mmi_model_add_layer(m, "dense", ic, 3, &gain, 1, "mm_model_add_dense");
}

MM_API int mm_model_add_activation(mm_model *m, int32_t kind)
{
    int64_t ic[1] = {kind};
    return mmi_model_add_layer(m, "activation", ic, 1, NULL, 0, "mm_model_add_activation");
}

MM_API int mm_model_add_layernorm(mm_model *m, double eps, int32_t affine)
{
    int64_t ic[1] = {affine};
    return mmi_model_add_layer(m, "layernorm", ic, 1, &eps, 1, "mm_model_add_layernorm");
}

MM_API int mm_model_add_rmsnorm(mm_model *m, double eps, int32_t affine)
{
    int64_t ic[1] = {affine};
    return mmi_model_add_layer(m, "rmsnorm", ic, 1, &eps, 1, "mm_model_add_rmsnorm");
}

MM_API int mm_model_add_embedding(mm_model *m, int64_t num_embeddings, int64_t embedding_dim)
{
    int64_t ic[2] = {num_embeddings, embedding_dim};
    return mmi_model_add_layer(m, "embedding", ic, 2, NULL, 0, "mm_model_add_embedding");
}

/* ---- finalize ---------------------------------------------------------------------------- */

/* a * b, or -1 (which the carver reports as an overflow) when it does not fit int64 */
static int64_t mul_or_neg(int64_t a, int64_t b)
{
    int64_t r;
    return mmi_mul_i64(&r, a, b) ? -1 : r;
}

/* 1 if layer i is a ReLU on top of a dense layer: it runs in the dense GEMM's epilogue
 * (model_exec.c) and keeps no input of its own. Its backward reads only its output (y > 0),
 * so the ReLU runs in place: one activation buffer less to write and to keep in cache. The
 * layer's input (mmi_model_layer_input) is then its output. */
static int relu_in_place(const mm_model *m, int32_t i)
{
    return i >= 1 && m->layers[i].vt->kind == MMI_LAYER_ACT &&
           m->layers[i].icfg[0] == MM_ACT_RELU && m->layers[i - 1].vt->kind == MMI_LAYER_DENSE;
}

/* The arena's regions for max_batch x max_seq, in order (measuring: the pointers are NULL):
 * activations, the ping-pong pair, each layer's saved region (l->saved_off), the scratch
 * every layer shares, the GEMM workspace. */
static void layout_arena(mm_model *m, mmi_carve *y)
{
    int64_t rows = m->max_rows, w = m->opts.input_dim;
    size_t scratch_max = 0;
    m->max_width = w;
    for (int32_t i = 0; i <= m->n_layers; i++) {
        if (i > 0) w = m->layers[i - 1].out_dim;
        if (w > m->max_width) m->max_width = w;
        if (relu_in_place(m, i - 1)) { /* the ReLU's output overwrites its input */
            m->act[i] = m->act[i - 1];
            continue;
        }
        m->act[i] = (float *)mmi_carve_take(y, mul_or_neg(rows, w), sizeof(float));
    }
    m->pp[0] = (float *)mmi_carve_take(y, mul_or_neg(rows, m->max_width), sizeof(float));
    m->pp[1] = (float *)mmi_carve_take(y, mul_or_neg(rows, m->max_width), sizeof(float));
    for (int32_t i = 0; i < m->n_layers; i++) {
        mmi_layer *l = &m->layers[i];
        size_t sv, sc;
        int gw;
        l->vt->sizes(l, m->opts.max_batch, m->opts.max_seq, &sv, &sc, &gw);
        l->saved_bytes = sv;
        l->scratch_bytes = sc;
        if (sc > scratch_max) scratch_max = sc;
        l->saved_off = y->off;
        mmi_carve_take(y, sv > INT64_MAX ? -1 : (int64_t)sv, 1);
    }
    m->scratch = mmi_carve_take(y, scratch_max > INT64_MAX ? -1 : (int64_t)scratch_max, 1);
    m->gemm_ws = mmi_carve_take(y, (int64_t)mmi_gemm_ws_size(mmi_pool_size(m->pool)), 1);
}

/* Measures the arena, allocates it once and carves it. */
static int reserve(mm_model *m, const char *fn)
{
    mmi_carve y = mmi_carve_measure();
    if (mmi_mul_i64(&m->max_rows, m->opts.max_batch, m->opts.max_seq) != 0 ||
        m->max_rows > MMI_MAX_NUMEL)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: max_batch x max_seq overflows", fn);
    m->act = (float **)mmi_calloc(&m->alloc, (size_t)(m->n_layers + 1) * sizeof(float *));
    if (!m->act) return mmi_fail(&m->err, MM_E_NOMEM, "%s: out of memory", fn);
    layout_arena(m, &y);
    if (y.overflow)
        return mmi_fail(&m->err, MM_E_RANGE,
                        "%s: workspace for max_batch %lld x max_seq %lld "
                        "overflows",
                        fn, (long long)m->opts.max_batch, (long long)m->opts.max_seq);
    m->arena_size = y.off;
    if (!(m->arena = mmi_malloc(&m->alloc, m->arena_size)))
        return mmi_fail(&m->err, MM_E_NOMEM,
                        "%s: out of memory reserving %zu bytes of "
                        "workspace",
                        fn, m->arena_size);
    y = mmi_carve_at(m->arena, m->arena_size);
    layout_arena(m, &y);
    return MM_OK;
}

/* Assigns parameter offsets (layer after layer) and counts the parameters. */
static int layout_params(mm_model *m, int64_t *max_work, const char *fn)
{
    int64_t off = 0;
    *max_work = 0;
    for (int32_t i = 0; i < m->n_layers; i++) {
        mmi_layer *l = &m->layers[i];
        l->param_offset = off;
        for (int32_t t = 0; t < l->n_tensors; t++) l->tensors[t].offset += off;
        if (l->n_params > MMI_MAX_NUMEL - off)
            return mmi_fail(&m->err, MM_E_RANGE, "%s: more than 2^40 parameters", fn);
        off += l->n_params;
        if (l->init_work > *max_work) *max_work = l->init_work;
    }
    m->n_params = off;
    return MM_OK;
}

static void undo_finalize(mm_model *m)
{
    for (int32_t i = 0; i < m->n_layers; i++)
        for (int32_t t = 0; t < m->layers[i].n_tensors; t++)
            m->layers[i].tensors[t].offset -= m->layers[i].param_offset;
    mmi_free(&m->alloc, m->arena, m->arena_size);
    mmi_free(&m->alloc, m->act, (size_t)(m->n_layers + 1) * sizeof(float *));
    mmi_free(&m->alloc, m->params, m->params_bytes);
    if (!m->pool_shared) mmi_pool_free(m->pool);
    m->pool_shared = 0;
    m->arena = NULL;
    m->act = NULL;
    m->params = m->grads = NULL;
    m->pool = NULL;
    m->arena_size = m->params_bytes = 0;
    m->n_params = 0;
}

static int init_params(mm_model *m, int64_t max_work, const char *fn)
{
    size_t wbytes = (size_t)max_work * sizeof(double);
    double *work = NULL;
    if (max_work > 0 && !(work = (double *)mmi_malloc(&m->alloc, wbytes)))
        return mmi_fail(&m->err, MM_E_NOMEM, "%s: out of memory for initialisation", fn);
    for (int32_t i = 0; i < m->n_layers; i++) {
        mmi_layer *l = &m->layers[i];
        l->vt->init(l, m->params + l->param_offset, &m->rng, work);
    }
    mmi_free(&m->alloc, work, wbytes);
    return MM_OK;
}

MM_API int mm_model_finalize(mm_model *m)
{
    const char *fn = "mm_model_finalize";
    int64_t max_work;
    size_t half;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: already finalized", fn);
    if (m->n_layers == 0) return mmi_fail(&m->err, MM_E_STATE, "%s: the model has no layers", fn);
    if ((rc = layout_params(m, &max_work, fn)) != MM_OK) {
        undo_finalize(m);
        return rc;
    }
    /* Parameters and gradients share one allocation: two 64-byte aligned halves. */
    half = mmi_align_up((size_t)m->n_params * sizeof(float));
    m->params_bytes = 2 * half;
    rc = MM_OK;
    if (!(m->params = (float *)mmi_calloc(&m->alloc, m->params_bytes)))
        rc = mmi_fail(&m->err, MM_E_NOMEM, "%s: out of memory for %lld parameters", fn,
                      (long long)m->n_params);
    if (rc == MM_OK) {
        m->grads = (float *)((unsigned char *)m->params + half);
        rc = mmi_pool_create(&m->pool, m->opts.n_threads, &m->alloc, &m->err);
    }
    if (rc == MM_OK) rc = reserve(m, fn);
    if (rc == MM_OK) rc = init_params(m, max_work, fn);
    if (rc != MM_OK) {
        undo_finalize(m);
        mmi_rng_seed(&m->rng, m->opts.seed); /* a retry draws the same parameters */
        return rc;
    }
    m->finalized = 1;
    mmi_err_clear(&m->err);
    return MM_OK;
}

void mmi_model_share_pool(mm_model *m, mmi_pool *pool)
{
    MMI_ASSERT(m->finalized && mmi_pool_size(pool) <= m->opts.n_threads);
    if (!m->pool_shared) mmi_pool_free(m->pool);
    m->pool = pool;
    m->pool_shared = 1;
}

MM_API void mm_model_free(mm_model *m)
{
    mmi_alloc a;
    if (!m) return;
    a = m->alloc;
    mmi_optim_free(m);
    if (m->finalized) undo_finalize(m);
    mmi_free(&a, m->layers, (size_t)m->cap_layers * sizeof(mmi_layer));
    mmi_free(&a, m, sizeof *m);
}

MM_API const char *mm_model_errmsg(const mm_model *m) { return m ? m->err.msg : "invalid handle"; }

/* ---- views and small queries ----------------------------------------------------------- */

static int need_final(mm_model *m, const char *fn)
{
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    return MM_OK;
}

MM_API int mm_model_num_params(const mm_model *m, int64_t *n)
{
    if (!m || !n) return MM_E_INVALID_ARG;
    if (!m->finalized) return MM_E_STATE; /* const handle: no text */
    *n = m->n_params;
    return MM_OK;
}

static int flat_view(mm_model *m, float *buf, float **data, int64_t *n, const char *fn)
{
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!data) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: data is NULL", fn);
    if ((rc = need_final(m, fn)) != MM_OK) return rc;
    *data = buf;
    if (n) *n = m->n_params;
    return MM_OK;
}

MM_API int mm_model_params(mm_model *m, float **data, int64_t *n)
{
    return flat_view(m, m ? m->params : NULL, data, n, "mm_model_params");
}

MM_API int mm_model_grads(mm_model *m, float **data, int64_t *n)
{
    return flat_view(m, m ? m->grads : NULL, data, n, "mm_model_grads");
}

/* zero_grad clears the gradients in pieces of ZERO_CHUNK floats over the pool once there are
 * at least two of them. */
#define ZERO_CHUNK 16384

static void zero_task(void *ctx, int64_t t, int64_t n)
{
    const mm_model *m = (const mm_model *)ctx;
    int64_t lo = t * ZERO_CHUNK,
            len = m->n_params - lo < ZERO_CHUNK ? m->n_params - lo : ZERO_CHUNK;
    (void)n;
    memset(m->grads + lo, 0, (size_t)len * sizeof(float));
}

MM_API int mm_model_zero_grad(mm_model *m)
{
    int rc;
    int64_t tasks;
    if (!m) return MM_E_INVALID_ARG;
    if ((rc = need_final(m, "mm_model_zero_grad")) != MM_OK) return rc;
    tasks = (m->n_params + ZERO_CHUNK - 1) / ZERO_CHUNK;
    if (tasks > 1 && m->pool)
        mmi_pool_run(m->pool, zero_task, m, tasks);
    else
        memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    return MM_OK;
}

MM_API int mm_model_num_layers(const mm_model *m, int32_t *n)
{
    if (!m || !n) return MM_E_INVALID_ARG;
    *n = m->n_layers;
    return MM_OK;
}

MM_API int mm_model_output_dim(const mm_model *m, int64_t *dim)
{
    if (!m || !dim) return MM_E_INVALID_ARG;
    *dim = mmi_model_out_dim(m);
    return MM_OK;
}

int mmi_model_tensor_name(const mm_model *m, int32_t layer, int32_t t, char *buf, size_t n)
{
    if (!m || layer < 0 || layer >= m->n_layers || t < 0 || t >= m->layers[layer].n_tensors ||
        !buf || n == 0)
        return MM_E_RANGE;
    snprintf(buf, n, "%d.%s", (int)layer, m->layers[layer].tensors[t].name);
    return MM_OK;
}

int mmi_model_add_layers_of(mm_model *dst, const mm_model *src, const char *fn)
{
    int rc = MM_OK;
    MMI_ASSERT(dst && src && dst != src);
    for (int32_t i = 0; rc == MM_OK && i < src->n_layers; i++) {
        const mmi_layer *l = &src->layers[i];
        rc = mmi_model_add_layer(dst, l->vt->kind_name, l->icfg, l->n_icfg, l->dcfg, l->n_dcfg, fn);
    }
    return rc;
}

const float *mmi_model_layer_input(const mm_model *m, int32_t i, int64_t *width)
{
    if (!m || !m->fwd_valid || i < 0 || i >= m->n_layers) return NULL;
    if (width) *width = m->layers[i].in_dim;
    return m->act[i];
}

const mmi_ptensor *mmi_model_tensor(const mm_model *m, int32_t layer, int32_t t)
{
    if (!m || layer < 0 || layer >= m->n_layers || t < 0 || t >= m->layers[layer].n_tensors)
        return NULL;
    return &m->layers[layer].tensors[t];
}
