/* SPDX-License-Identifier: MIT */
/* model_io_arch.c — the model's description inside a file: the "architecture" and "optimizer"
 * metadata (JSON text inside __metadata__ strings, as the format wants string values), and
 * inference of an architecture from a plain PyTorch nn.Sequential state_dict. */
#include "mmi_model_io.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stable file names, indexed by MM_OPT_* and by id - MM_MODEL_LR. */
static const char *const k_opt_names[] = {NULL, "sgd", "momentum", "adam", "adamw", "rmsprop"};
static const char *const k_hyper_names[] = {"lr",           "beta1",    "beta2",         "eps",
                                            "weight_decay", "momentum", "dampening",     "nesterov",
                                            "alpha",        "centered", "max_grad_norm", "amsgrad"};
#define N_OPT_KINDS ((int32_t)(sizeof k_opt_names / sizeof k_opt_names[0]))
#define N_HYPER     ((int32_t)(sizeof k_hyper_names / sizeof k_hyper_names[0]))

const char *mmi_optim_kind_name(int32_t kind)
{
    return kind > 0 && kind < N_OPT_KINDS ? k_opt_names[kind] : NULL;
}

const char *mmi_optim_hyper_name(int32_t id)
{
    int32_t i = id - MM_MODEL_LR;
    return i >= 0 && i < N_HYPER ? k_hyper_names[i] : NULL;
}

void mmi_arch_free(mmi_arch *a)
{
    if (!a) return;
    if (a->layers) mmi_free(&a->alloc, a->layers, a->layers_bytes);
    a->layers = NULL;
    a->layers_bytes = 0;
    a->n_layers = 0;
}

/* ---- writing -------------------------------------------------------------------------------- */
static void arch_emit(mmi_jw *w, const mm_model *m)
{
    mmi_jw_obj_begin(w);
    mmi_jw_key(w, "input_dim");
    mmi_jw_i64(w, m->opts.input_dim);
    mmi_jw_key(w, "layers");
    mmi_jw_arr_begin(w);
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        mmi_jw_obj_begin(w);
        mmi_jw_key(w, "kind");
        mmi_jw_str(w, l->vt->kind_name);
        mmi_jw_key(w, "icfg");
        mmi_jw_arr_begin(w);
        for (int32_t k = 0; k < l->n_icfg; k++) mmi_jw_i64(w, l->icfg[k]);
        mmi_jw_arr_end(w);
        mmi_jw_key(w, "dcfg");
        mmi_jw_arr_begin(w);
        for (int32_t k = 0; k < l->n_dcfg; k++) mmi_jw_f64(w, l->dcfg[k]);
        mmi_jw_arr_end(w);
        mmi_jw_obj_end(w);
    }
    mmi_jw_arr_end(w);
    mmi_jw_obj_end(w);
}

typedef struct optim_ctx {
    mm_model *m;
    int with_state;
} optim_ctx;

static void optim_emit(mmi_jw *w, const optim_ctx *c)
{
    mm_model *m = c->m;
    mmi_err saved = m->err;
    mmi_jw_obj_begin(w);
    mmi_jw_key(w, "kind");
    mmi_jw_str(w, mmi_optim_kind_name(m->opt.kind));
    for (int32_t i = 0; i < N_HYPER; i++) {
        double v;
        /* Only the settings the kind has: the getter refuses the others. */
        if (mm_model_get_f64(m, MM_MODEL_LR + i, &v) != MM_OK) continue;
        mmi_jw_key(w, k_hyper_names[i]);
        mmi_jw_f64(w, v);
    }
    m->err = saved; /* the refusals above are not failures of the save */
    if (c->with_state) {
        mmi_jw_key(w, "steps");
        mmi_jw_i64(w, m->opt.steps);
        mmi_jw_key(w, "layer_step");
        mmi_jw_arr_begin(w);
        for (int32_t i = 0; i < m->n_layers; i++) mmi_jw_i64(w, m->opt.layer_t[i]);
        mmi_jw_arr_end(w);
        mmi_jw_key(w, "buf_init");
        mmi_jw_arr_begin(w);
        for (int32_t i = 0; i < m->n_layers; i++) mmi_jw_i64(w, m->opt.buf_init[i]);
        mmi_jw_arr_end(w);
    }
    mmi_jw_obj_end(w);
}

/* Measures, allocates and writes a JSON text with emit (a == arch or optimizer). */
static int json_alloc(const mm_model *m, const optim_ctx *oc, char **out, size_t *cap, mmi_err *e)
{
    mmi_jw w;
    size_t need;
    char *buf;
    mmi_jw_init(&w, NULL, 0);
    if (oc)
        optim_emit(&w, oc);
    else
        arch_emit(&w, m);
    if (mmi_jw_finish(&w, &need) == MM_E_INVALID_ARG)
        return mmi_fail(e, MM_E_INTERNAL, "cannot encode the model description");
    buf = (char *)mmi_malloc(&m->alloc, need);
    if (!buf) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", need);
    mmi_jw_init(&w, buf, need);
    if (oc)
        optim_emit(&w, oc);
    else
        arch_emit(&w, m);
    if (mmi_jw_finish(&w, NULL) != MM_OK) {
        mmi_free(&m->alloc, buf, need);
        return mmi_fail(e, MM_E_INTERNAL, "model description changed while encoding");
    }
    *out = buf;
    *cap = need;
    return MM_OK;
}

int mmi_arch_to_json(const mm_model *m, char **out, size_t *cap, mmi_err *e)
{
    return json_alloc(m, NULL, out, cap, e);
}

int mmi_optim_to_json(mm_model *m, int with_state, char **out, size_t *cap, mmi_err *e)
{
    optim_ctx c;
    c.m = m;
    c.with_state = with_state;
    return json_alloc(m, &c, out, cap, e);
}

/* ---- reading -------------------------------------------------------------------------------- */
static int int_in(const mmi_json *v, int64_t lo, int64_t hi)
{
    return v && v->type == MMI_JSON_NUMBER && v->is_int && v->i >= lo && v->i <= hi;
}

/* Reads {"kind": s, "icfg": [ints], "dcfg": [numbers]} (icfg, dcfg optional) into l. */
static int arch_layer(mmi_arch_layer *l, const mmi_json *v, int32_t idx, mmi_err *e)
{
    const mmi_json *kind = NULL, *ic = NULL, *dc = NULL, *x;
    if (v->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "architecture: layer %d is not an object", (int)idx);
    for (const mmi_json *c = mmi_json_first(v); c; c = mmi_json_next(v, c)) {
        const mmi_json **slot = NULL;
        if (c->key_len == 4 && !memcmp(c->key, "kind", 4))
            slot = &kind;
        else if (c->key_len == 4 && !memcmp(c->key, "icfg", 4))
            slot = &ic;
        else if (c->key_len == 4 && !memcmp(c->key, "dcfg", 4))
            slot = &dc;
        if (!slot || *slot)
            return mmi_fail(e, MM_E_FORMAT,
                            "architecture: layer %d has an unknown or duplicate "
                            "field",
                            (int)idx);
        *slot = c;
    }
    if (!kind || kind->type != MMI_JSON_STRING || kind->str_len == 0 ||
        kind->str_len >= MMI_IO_KIND_MAX || memchr(kind->str, '\0', kind->str_len))
        return mmi_fail(e, MM_E_FORMAT, "architecture: layer %d has no valid kind", (int)idx);
    memcpy(l->kind, kind->str, kind->str_len + 1);
    if ((ic && (ic->type != MMI_JSON_ARRAY || ic->n > MMI_LAYER_MAX_CFG)) ||
        (dc && (dc->type != MMI_JSON_ARRAY || dc->n > MMI_LAYER_MAX_CFG)))
        return mmi_fail(e, MM_E_FORMAT,
                        "architecture: layer %d: icfg/dcfg must be arrays of at "
                        "most %d numbers",
                        (int)idx, MMI_LAYER_MAX_CFG);
    for (x = mmi_json_first(ic); x; x = mmi_json_next(ic, x)) {
        if (x->type != MMI_JSON_NUMBER || !x->is_int)
            return mmi_fail(e, MM_E_FORMAT, "architecture: layer %d: icfg holds a non-integer",
                            (int)idx);
        l->icfg[l->n_icfg++] = x->i;
    }
    for (x = mmi_json_first(dc); x; x = mmi_json_next(dc, x)) {
        if (x->type != MMI_JSON_NUMBER)
            return mmi_fail(e, MM_E_FORMAT, "architecture: layer %d: dcfg holds a non-number",
                            (int)idx);
        l->dcfg[l->n_dcfg++] = x->num;
    }
    return MM_OK;
}

static int arch_alloc(mmi_arch *a, int64_t n, const mmi_alloc *al, mmi_err *e)
{
    size_t bytes;
    if (n < 1 || n > MMI_IO_MAX_LAYERS)
        return mmi_fail(e, MM_E_FORMAT, "architecture: %lld layers (1 to %d allowed)", (long long)n,
                        MMI_IO_MAX_LAYERS);
    /* n <= MMI_IO_MAX_LAYERS: the size cannot overflow. */
    bytes = (size_t)n * (sizeof(mmi_arch_layer) + sizeof(int64_t) + sizeof(int32_t));
    a->alloc = *al;
    a->layers = (mmi_arch_layer *)mmi_calloc(al, bytes);
    if (!a->layers) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", bytes);
    a->layers_bytes = bytes;
    a->n_layers = (int32_t)n;
    a->layer_step = (int64_t *)(a->layers + n);
    a->buf_init = (int32_t *)(a->layer_step + n);
    return MM_OK;
}

static int arch_walk(mmi_arch *a, const mmi_json *root, const mmi_alloc *al, mmi_err *e)
{
    const mmi_json *in = NULL, *layers = NULL;
    int32_t k = 0;
    int rc;
    if (root->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "architecture is not a JSON object");
    for (const mmi_json *c = mmi_json_first(root); c; c = mmi_json_next(root, c)) {
        const mmi_json **slot = NULL;
        if (c->key_len == 9 && !memcmp(c->key, "input_dim", 9))
            slot = &in;
        else if (c->key_len == 6 && !memcmp(c->key, "layers", 6))
            slot = &layers;
        if (!slot || *slot)
            return mmi_fail(e, MM_E_FORMAT, "architecture has an unknown or duplicate field");
        *slot = c;
    }
    if (!int_in(in, 1, (int64_t)1 << 31))
        return mmi_fail(e, MM_E_FORMAT, "architecture: input_dim missing or not in [1, 2^31]");
    if (!layers || layers->type != MMI_JSON_ARRAY)
        return mmi_fail(e, MM_E_FORMAT, "architecture: layers missing or not an array");
    a->input_dim = in->i;
    if ((rc = arch_alloc(a, layers->n, al, e))) return rc;
    for (const mmi_json *c = mmi_json_first(layers); c; c = mmi_json_next(layers, c), k++)
        if ((rc = arch_layer(&a->layers[k], c, k, e))) return rc;
    return MM_OK;
}

int mmi_arch_parse(mmi_arch *a, const char *text, size_t len, const mmi_alloc *al, mmi_err *e)
{
    mmi_json_doc doc;
    mmi_json_limits lim = {4, 16 + (int64_t)MMI_IO_MAX_LAYERS * (4 + 2 * MMI_LAYER_MAX_CFG)};
    int rc = mmi_json_parse(&doc, text, len, &lim, al, e, "architecture");
    if (rc) return rc;
    rc = arch_walk(a, doc.root, al, e);
    mmi_json_free(&doc);
    if (rc) mmi_arch_free(a);
    return rc;
}

/* Reads a per-layer integer array of the optimizer state (n_layers entries in [lo, hi]). */
static int optim_ints(const mmi_arch *a, const mmi_json *v, int64_t *i64, int32_t *i32, int64_t hi,
                      mmi_err *e)
{
    int32_t k = 0;
    if (v->type != MMI_JSON_ARRAY || v->n != (uint32_t)a->n_layers)
        return mmi_fail(e, MM_E_FORMAT, "optimizer: per-layer state needs %d entries",
                        (int)a->n_layers);
    for (const mmi_json *x = mmi_json_first(v); x; x = mmi_json_next(v, x), k++) {
        if (!int_in(x, 0, hi))
            return mmi_fail(e, MM_E_FORMAT,
                            "optimizer: per-layer state entry %d is not in "
                            "[0, %lld]",
                            (int)k, (long long)hi);
        if (i64)
            i64[k] = x->i;
        else
            i32[k] = (int32_t)x->i;
    }
    return MM_OK;
}

/* One member of the optimizer object; seen holds a bit per key already read. */
static int optim_member(mmi_arch *a, const mmi_json *c, uint32_t *seen, mmi_err *e)
{
    static const char *const extra[] = {"kind", "steps", "layer_step", "buf_init"};
    char k[40];
    int32_t slot = -1;
    mmi_io_excerpt(k, sizeof k, c->key, c->key_len);
    for (int32_t i = 0; i < N_HYPER && slot < 0; i++)
        if (strcmp(k, k_hyper_names[i]) == 0) slot = i;
    for (int32_t i = 0; i < 4 && slot < 0; i++)
        if (strcmp(k, extra[i]) == 0) slot = 16 + i;
    if (slot < 0 || strlen(k) != c->key_len)
        return mmi_fail(e, MM_E_FORMAT, "optimizer: unknown setting '%s'", k);
    if (*seen & (1u << slot)) return mmi_fail(e, MM_E_FORMAT, "optimizer: '%s' repeated", k);
    *seen |= 1u << slot;
    if (slot < 16) {
        if (c->type != MMI_JSON_NUMBER)
            return mmi_fail(e, MM_E_FORMAT, "optimizer: '%s' is not a number", k);
        a->hyper_id[a->n_hyper] = MM_MODEL_LR + slot;
        a->hyper_val[a->n_hyper++] = c->num;
        return MM_OK;
    }
    switch (slot) {
    case 16:
        for (int32_t i = 1; i < N_OPT_KINDS; i++)
            if (mmi_json_str_eq(c, k_opt_names[i])) a->opt_kind = i;
        return a->opt_kind ? MM_OK : mmi_fail(e, MM_E_FORMAT, "optimizer: unknown kind");
    case 17:
        if (!int_in(c, 0, MMI_OPT_MAX_STEPS))
            return mmi_fail(e, MM_E_FORMAT, "optimizer: steps must be in [0, 2^53]");
        a->steps = c->i;
        return MM_OK;
    case 18:
        return optim_ints(a, c, a->layer_step, NULL, MMI_OPT_MAX_STEPS, e);
    default:
        return optim_ints(a, c, NULL, a->buf_init, 1, e);
    }
}

static int optim_walk(mmi_arch *a, const mmi_json *root, mmi_err *e)
{
    uint32_t seen = 0, state = (1u << 17) | (1u << 18) | (1u << 19);
    int rc;
    if (root->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "optimizer is not an object");
    for (const mmi_json *c = mmi_json_first(root); c; c = mmi_json_next(root, c))
        if ((rc = optim_member(a, c, &seen, e))) return rc;
    if (a->opt_kind == 0) return mmi_fail(e, MM_E_FORMAT, "optimizer: kind missing");
    if ((seen & state) != 0 && (seen & state) != state)
        return mmi_fail(e, MM_E_FORMAT, "optimizer: steps, layer_step and buf_init go together");
    a->has_state = (seen & state) == state;
    return MM_OK;
}

int mmi_optim_parse(mmi_arch *a, const char *text, size_t len, const mmi_alloc *al, mmi_err *e)
{
    mmi_json_doc doc;
    mmi_json_limits lim = {2, 64 + 2 * (int64_t)MMI_IO_MAX_LAYERS};
    int rc = mmi_json_parse(&doc, text, len, &lim, al, e, "optimizer");
    if (rc) return rc;
    rc = optim_walk(a, doc.root, e);
    mmi_json_free(&doc);
    if (rc) {
        a->opt_kind = 0;
        a->n_hyper = 0;
        a->has_state = 0;
    }
    return rc;
}

/* ---- inference for plain PyTorch files ------------------------------------------------------ */
/* Splits "12.weight" into index 12 and suffix; returns -1 for other names. */
static int64_t seq_index(const mmi_st_tensor *t, const char **suffix)
{
    int64_t idx = 0;
    size_t i = 0;
    if (t->name_len == 0 || t->name[0] < '0' || t->name[0] > '9') return -1;
    if (t->name[0] == '0' && t->name_len > 1 && t->name[1] != '.') return -1;
    while (i < t->name_len && t->name[i] >= '0' && t->name[i] <= '9') {
        if (idx > (MMI_IO_MAX_LAYERS)) return -1;
        idx = idx * 10 + (t->name[i++] - '0');
    }
    if (i >= t->name_len || t->name[i] != '.') return -1;
    *suffix = t->name + i + 1;
    return idx;
}

/* Fills layer l from the tensors "<i>.weight" / "<i>.bias" of f. */
static int infer_layer(mmi_arch_layer *l, const mmi_st_file *f, int32_t i, int64_t *width,
                       mmi_err *e)
{
    char nw[32], nb[32];
    const mmi_st_tensor *w, *b;
    snprintf(nw, sizeof nw, "%d.weight", (int)i);
    snprintf(nb, sizeof nb, "%d.bias", (int)i);
    w = mmi_st_find(f, nw);
    b = mmi_st_find(f, nb);
    if (!w)
        return mmi_fail(e, MM_E_FORMAT,
                        "no architecture metadata and layer %d has no weight: "
                        "parameter-free layers (activations) cannot be inferred; export with "
                        "tools/torch_io.py",
                        (int)i);
    if (w->ndim == 2 && (!b || (b->ndim == 1 && b->shape[0] == w->shape[0]))) {
        strcpy(l->kind, "dense");
        l->icfg[0] = w->shape[0];
        l->icfg[1] = b != NULL;
        l->icfg[2] = MM_INIT_DEFAULT;
        l->n_icfg = 3;
        l->dcfg[0] = 1.0;
        l->n_dcfg = 1;
        if (i == 0) *width = w->shape[1];
        return MM_OK;
    }
    if (w->ndim == 1 && (!b || (b->ndim == 1 && b->shape[0] == w->shape[0]))) {
        /* PyTorch's defaults: LayerNorm eps 1e-5; RMSNorm eps None = FLT_EPSILON. */
        strcpy(l->kind, b ? "layernorm" : "rmsnorm");
        l->icfg[0] = 1;
        l->n_icfg = 1;
        l->dcfg[0] = b ? 1e-5 : (double)FLT_EPSILON;
        l->n_dcfg = 1;
        if (i == 0) *width = w->shape[0];
        return MM_OK;
    }
    return mmi_fail(e, MM_E_FORMAT,
                    "no architecture metadata and layer %d's tensors are not "
                    "a Linear, LayerNorm or RMSNorm",
                    (int)i);
}

int mmi_arch_infer(mmi_arch *a, const mmi_st_file *f, const mmi_alloc *al, mmi_err *e)
{
    int64_t max_idx = -1, width = 0;
    int rc;
    for (int64_t k = 0; k < f->n_tensors; k++) {
        const char *suffix;
        int64_t idx = seq_index(&f->tensors[k], &suffix);
        if (idx < 0 || idx >= MMI_IO_MAX_LAYERS)
            return mmi_fail(e, MM_E_FORMAT,
                            "no architecture metadata and tensor names are not "
                            "those of an nn.Sequential (\"0.weight\")");
        if (idx > max_idx) max_idx = idx;
    }
    if ((rc = arch_alloc(a, max_idx + 1, al, e))) return rc;
    for (int32_t i = 0; i < a->n_layers; i++)
        if ((rc = infer_layer(&a->layers[i], f, i, &width, e))) {
            mmi_arch_free(a);
            return rc;
        }
    a->input_dim = width;
    if (width < 1 || width > ((int64_t)1 << 31)) {
        mmi_arch_free(a);
        return mmi_fail(e, MM_E_FORMAT, "inferred input width %lld is out of range",
                        (long long)width);
    }
    return MM_OK;
}
