/* SPDX-License-Identifier: MIT */
/* optim.c — mm_model's optimizers with torch.optim's exact per-element formulas (torch 1.13
 * single-tensor code path: the order of float32 operations, where eps goes, bias correction in
 * double, L2 weight decay folded into the gradient for SGD/Adam/RMSprop and decoupled for
 * AdamW), global-norm clipping as torch.nn.utils.clip_grad_norm_, and the hyperparameter
 * setters. State is reserved by mm_model_set_optimizer; mm_model_step never allocates. */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "mmi_model.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define H(m, id) MMI_OPT_HYPER(&(m)->opt, id)
#define BIT(id)  (1u << ((id)-MM_MODEL_LR))
#define COMMON   (BIT(MM_MODEL_LR) | BIT(MM_MODEL_WEIGHT_DECAY) | BIT(MM_MODEL_MAX_GRAD_NORM))

typedef struct opt_kind {
    int32_t kind;
    const char *name;
    int32_t n_slots;
    const char *slots[MMI_OPT_MAX_SLOTS];
    uint32_t ids; /* hyperparameters this kind has */
} opt_kind;

static const opt_kind k_kinds[] = {
    {MM_OPT_SGD,
     "SGD",
     1,
     {"momentum_buffer"},
     COMMON | BIT(MM_MODEL_MOMENTUM) | BIT(MM_MODEL_DAMPENING) | BIT(MM_MODEL_NESTEROV)},
    {MM_OPT_MOMENTUM,
     "SGD with momentum",
     1,
     {"momentum_buffer"},
     COMMON | BIT(MM_MODEL_MOMENTUM) | BIT(MM_MODEL_DAMPENING) | BIT(MM_MODEL_NESTEROV)},
    {MM_OPT_ADAM,
     "Adam",
     3,
     {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
     COMMON | BIT(MM_MODEL_BETA1) | BIT(MM_MODEL_BETA2) | BIT(MM_MODEL_EPS) |
         BIT(MM_MODEL_AMSGRAD)},
    {MM_OPT_ADAMW,
     "AdamW",
     3,
     {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
     COMMON | BIT(MM_MODEL_BETA1) | BIT(MM_MODEL_BETA2) | BIT(MM_MODEL_EPS) |
         BIT(MM_MODEL_AMSGRAD)},
    {MM_OPT_RMSPROP,
     "RMSprop",
     3,
     {"square_avg", "momentum_buffer", "grad_avg"},
     COMMON | BIT(MM_MODEL_ALPHA) | BIT(MM_MODEL_EPS) | BIT(MM_MODEL_MOMENTUM) |
         BIT(MM_MODEL_CENTERED)},
};

static const opt_kind *find_kind(int32_t kind)
{
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (k_kinds[i].kind == kind) return &k_kinds[i];
    return NULL;
}

/* torch.optim defaults (torch 1.13). */
static void set_defaults(mmi_optim *o, int32_t kind)
{
    memset(o->hyper, 0, sizeof o->hyper);
    MMI_OPT_HYPER(o, MM_MODEL_LR) = kind == MM_OPT_RMSPROP ? 1e-2 : 1e-3;
    MMI_OPT_HYPER(o, MM_MODEL_BETA1) = 0.9;
    MMI_OPT_HYPER(o, MM_MODEL_BETA2) = 0.999;
    MMI_OPT_HYPER(o, MM_MODEL_EPS) = 1e-8;
    MMI_OPT_HYPER(o, MM_MODEL_WEIGHT_DECAY) = kind == MM_OPT_ADAMW ? 1e-2 : 0.0;
    MMI_OPT_HYPER(o, MM_MODEL_MOMENTUM) = kind == MM_OPT_MOMENTUM ? 0.9 : 0.0;
    MMI_OPT_HYPER(o, MM_MODEL_ALPHA) = 0.99;
}

void mmi_optim_free(mm_model *m)
{
    mmi_free(&m->alloc, m->opt.block, m->opt.block_size);
    memset(&m->opt, 0, sizeof m->opt);
}

/* Parameters per pool task of a step: a multiple of 64, so every chunk starts where the whole
 * slice's vector loop would be at that element (same lanes, same tail), and the update is
 * bitwise the same for every thread count. The gradient norm sums each chunk on its own (see
 * grad_sumsq), so this is also part of the norm's definition: changing it changes the
 * reported norm's last bits. */
#define STEP_CHUNK 8192

static int64_t layer_chunks(const mmi_layer *l)
{
    return (l->n_params + STEP_CHUNK - 1) / STEP_CHUNK;
}

/* Builds a zeroed optimizer of the given kind in *o (allocating its block). */
static int optim_alloc(mm_model *m, mmi_optim *o, int32_t kind, const char *fn)
{
    const opt_kind *k = find_kind(kind);
    size_t slot_bytes = mmi_align_up((size_t)m->n_params * sizeof(float)), total, tail;
    size_t n_chunks = 0;
    unsigned char *b;
    memset(o, 0, sizeof *o);
    for (int32_t i = 0; i < m->n_layers; i++) n_chunks += (size_t)layer_chunks(&m->layers[i]);
    /* layer_t, chunk_sq, la, then buf_init (the 8-byte aligned members first) */
    tail = (size_t)m->n_layers * (sizeof(int64_t) + sizeof(mmi_opt_args) + sizeof(int32_t)) +
           n_chunks * sizeof(double);
    if (!slot_bytes || mmi_mul_size(&total, slot_bytes, (size_t)k->n_slots) ||
        mmi_add_size(&total, total, tail))
        return mmi_fail(&m->err, MM_E_RANGE, "%s: optimizer state size overflows", fn);
    if (!(o->block = mmi_calloc(&m->alloc, total)))
        return mmi_fail(&m->err, MM_E_NOMEM, "%s: out of memory for %s state", fn, k->name);
    o->block_size = total;
    o->kind = kind;
    o->n_slots = k->n_slots;
    b = (unsigned char *)o->block;
    for (int32_t s = 0; s < k->n_slots; s++) {
        o->slot[s] = (float *)(b + (size_t)s * slot_bytes);
        o->slot_name[s] = k->slots[s];
    }
    o->layer_t = (int64_t *)(b + (size_t)k->n_slots * slot_bytes);
    o->chunk_sq = (double *)(o->layer_t + m->n_layers);
    o->la = (mmi_opt_args *)(o->chunk_sq + n_chunks);
    o->buf_init = (int32_t *)(o->la + m->n_layers);
    set_defaults(o, kind);
    return MM_OK;
}

int32_t mmi_model_optim_kind(const mm_model *m)
{
    MMI_ASSERT(m);
    return m->opt.kind;
}

MM_API int mm_model_set_optimizer(mm_model *m, int32_t kind)
{
    const char *fn = "mm_model_set_optimizer";
    mmi_optim o;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!find_kind(kind))
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: unknown optimizer kind %d (MM_OPT_*)", fn,
                        (int)kind);
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    /* Allocate the new state before dropping the old, so NOMEM keeps the previous one. */
    if ((rc = optim_alloc(m, &o, kind, fn)) != MM_OK) return rc;
    mmi_optim_free(m);
    m->opt = o;
    return MM_OK;
}

int mmi_optim_copy(mm_model *dst, const mm_model *src, const char *fn)
{
    const mmi_optim *s = &src->opt;
    size_t n = (size_t)src->n_params * sizeof(float);
    int rc;
    if (dst->opt.kind != s->kind) {
        mmi_optim o;
        if ((rc = optim_alloc(dst, &o, s->kind, fn)) != MM_OK) return rc;
        mmi_optim_free(dst);
        dst->opt = o;
    }
    memcpy(dst->opt.hyper, s->hyper, sizeof s->hyper);
    for (int32_t i = 0; i < s->n_slots; i++) memcpy(dst->opt.slot[i], s->slot[i], n);
    memcpy(dst->opt.layer_t, s->layer_t, (size_t)src->n_layers * sizeof(int64_t));
    memcpy(dst->opt.buf_init, s->buf_init, (size_t)src->n_layers * sizeof(int32_t));
    dst->opt.steps = s->steps;
    dst->opt.last_grad_norm = s->last_grad_norm;
    dst->opt.last_clipped = s->last_clipped;
    return MM_OK;
}

/* ---- hyperparameters --------------------------------------------------------------------- */

static int is_flag(int32_t id)
{
    return id == MM_MODEL_NESTEROV || id == MM_MODEL_CENTERED || id == MM_MODEL_AMSGRAD;
}

static int is_stat(int32_t id)
{
    return id == MM_MODEL_STAT_GRAD_NORM || id == MM_MODEL_STAT_STEPS ||
           id == MM_MODEL_STAT_CLIPPED;
}

/* Checks that id is an optimizer hyperparameter of the current optimizer. */
static int check_hyper_id(mm_model *m, int32_t id, const char *fn)
{
    const mmi_param *p = mmi_param_find(id);
    const opt_kind *k;
    if (!p || id < MM_MODEL_LR || id >= MM_MODEL_LR + MMI_OPT_NHYPER)
        return mmi_fail(&m->err, MM_E_UNSUPPORTED, "%s: unknown mm_model parameter id %d", fn,
                        (int)id);
    if (!m->opt.kind)
        return mmi_fail(&m->err, MM_E_STATE, "%s: %s needs mm_model_set_optimizer first", fn,
                        p->name);
    k = find_kind(m->opt.kind);
    if (!(k->ids & BIT(id)))
        return mmi_fail(&m->err, MM_E_UNSUPPORTED, "%s: the %s optimizer has no %s", fn, k->name,
                        p->name);
    return MM_OK;
}

MM_API int mm_model_set_f64(mm_model *m, int32_t id, double v)
{
    const char *fn = "mm_model_set_f64";
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (is_stat(id))
        return mmi_fail(&m->err, MM_E_UNSUPPORTED, "%s: parameter %d is a read-only statistic", fn,
                        (int)id);
    if ((rc = check_hyper_id(m, id, fn)) != MM_OK) return rc;
    if ((rc = mmi_param_check(id, v, &m->err, fn)) != MM_OK) return rc;
    if (is_flag(id) && v != 0.0 && v != 1.0)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: %s is a flag: 0 or 1, got %g", fn,
                        mmi_param_find(id)->name, v);
    H(m, id) = v;
    return MM_OK;
}

MM_API int mm_model_get_f64(const mm_model *cm, int32_t id, double *v)
{
    const char *fn = "mm_model_get_f64";
    /* The getter is logically const; its failure text still goes to the handle. */
    mm_model *m = (mm_model *)cm;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!v) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: v is NULL", fn);
    switch (id) {
    case MM_MODEL_STAT_GRAD_NORM:
        *v = m->opt.last_grad_norm;
        return MM_OK;
    case MM_MODEL_STAT_STEPS:
        *v = (double)m->opt.steps;
        return MM_OK;
    case MM_MODEL_STAT_CLIPPED:
        *v = (double)m->opt.last_clipped;
        return MM_OK;
    default:
        break;
    }
    if ((rc = check_hyper_id(m, id, fn)) != MM_OK) return rc;
    *v = H(m, id);
    return MM_OK;
}

/* ---- step -------------------------------------------------------------------------------- */

static int check_config(mm_model *m, const char *fn)
{
    int sgd = m->opt.kind == MM_OPT_SGD || m->opt.kind == MM_OPT_MOMENTUM;
    if (sgd && H(m, MM_MODEL_NESTEROV) != 0.0 &&
        (H(m, MM_MODEL_MOMENTUM) <= 0.0 || H(m, MM_MODEL_DAMPENING) != 0.0))
        return mmi_fail(&m->err, MM_E_STATE,
                        "%s: Nesterov momentum needs momentum > 0 and "
                        "dampening 0",
                        fn);
    return MM_OK;
}

/* The kernel arguments of the current optimizer for layer i's slice at step t (floats as
 * torch casts its Python-float hyperparameters; bias corrections in double, as torch computes
 * them). */
static void layer_args(const mm_model *m, int32_t i, float scale, int64_t t, mmi_opt_args *u)
{
    const mmi_optim *o = &m->opt;
    int64_t off = m->layers[i].param_offset;
    double lr = H(m, MM_MODEL_LR), wd = H(m, MM_MODEL_WEIGHT_DECAY);
    memset(u, 0, sizeof *u);
    u->p = m->params + off;
    u->g = m->grads + off;
    u->n = m->layers[i].n_params;
    u->scale = scale;
    u->s0 = o->slot[0] + off;
    u->s1 = o->n_slots > 1 ? o->slot[1] + off : NULL;
    u->s2 = o->n_slots > 2 ? o->slot[2] + off : NULL;
    u->lr = (float)lr;
    u->l2 = o->kind == MM_OPT_ADAMW ? 0.0f : (float)wd;
    u->eps = (float)H(m, MM_MODEL_EPS);
    u->shrink = 1.0f;
    switch (o->kind) {
    case MM_OPT_SGD:
    case MM_OPT_MOMENTUM:
        u->a = (float)H(m, MM_MODEL_MOMENTUM);
        u->ca = (float)(1.0 - H(m, MM_MODEL_DAMPENING));
        u->flag1 = H(m, MM_MODEL_NESTEROV) != 0.0;
        u->flag2 = !o->buf_init[i];
        break;
    case MM_OPT_ADAM:
    case MM_OPT_ADAMW: {
        double b1 = H(m, MM_MODEL_BETA1), b2 = H(m, MM_MODEL_BETA2);
        u->a = (float)b1;
        u->ca = (float)(1.0 - b1);
        u->b = (float)b2;
        u->cb = (float)(1.0 - b2);
        u->nstep = (float)(-(lr / (1.0 - pow(b1, (double)t))));
        u->bc2s = (float)sqrt(1.0 - pow(b2, (double)t));
        u->flag1 = H(m, MM_MODEL_AMSGRAD) != 0.0;
        if (o->kind == MM_OPT_ADAMW && wd != 0.0) u->shrink = (float)(1.0 - lr * wd);
        break;
    }
    default: /* RMSprop */
        u->a = (float)H(m, MM_MODEL_ALPHA);
        u->ca = (float)(1.0 - H(m, MM_MODEL_ALPHA));
        u->b = (float)H(m, MM_MODEL_MOMENTUM);
        u->flag1 = H(m, MM_MODEL_CENTERED) != 0.0;
        break;
    }
}

typedef struct step_job {
    mm_model *m;
    int sumsq;           /* store each chunk's float64 sum of squared gradients */
    int update;          /* 0: none, 1: dry (judge only), 2: commit */
    _Atomic int32_t bad; /* lowest layer whose update would store Inf or NaN; n_layers: none */
} step_job;

static int trainable(const mm_model *m, int32_t i)
{
    return !m->layers[i].frozen && m->layers[i].n_params > 0;
}

static int run_update(int32_t kind, const mmi_opt_args *u)
{
    switch (kind) {
    case MM_OPT_SGD:
    case MM_OPT_MOMENTUM:
        return mmi_sgd_update(u);
    case MM_OPT_ADAM:
    case MM_OPT_ADAMW:
        return mmi_adam_update(u);
    default:
        return mmi_rmsprop_update(u);
    }
}

/* Task t of a pass covers the trainable layers' parameters in STEP_CHUNK chunks, layer after
 * layer: finds its layer (a scan; a task is thousands of parameters) and first element. */
static int32_t task_layer(const mm_model *m, int64_t t, int64_t *lo)
{
    for (int32_t i = 0; i < m->n_layers; i++) {
        int64_t c;
        if (!trainable(m, i)) continue;
        if (t < (c = layer_chunks(&m->layers[i]))) {
            *lo = t * STEP_CHUNK;
            return i;
        }
        t -= c;
    }
    MMI_ASSERT(0);
    return 0;
}

static void step_task(void *ctx, int64_t t, int64_t n)
{
    step_job *j = (step_job *)ctx;
    const mm_model *m = j->m;
    int64_t lo = 0, len;
    int32_t i = task_layer(m, t, &lo), seen;
    (void)n;
    len = m->layers[i].n_params - lo < STEP_CHUNK ? m->layers[i].n_params - lo : STEP_CHUNK;
    if (j->sumsq)
        m->opt.chunk_sq[t] = mmi_sumsq_f64(m->grads + m->layers[i].param_offset + lo, len);
    if (j->update) {
        mmi_opt_args u = m->opt.la[i];
        u.p += lo;
        u.g += lo;
        u.s0 += lo;
        if (u.s1) u.s1 += lo;
        if (u.s2) u.s2 += lo;
        u.n = len;
        u.dry = j->update == 1;
        if (run_update(m->opt.kind, &u)) {
            seen = atomic_load(&j->bad);
            while (i < seen && !atomic_compare_exchange_weak(&j->bad, &seen, i)) {
            }
        }
    }
}

/* One pass over the n_tasks chunks (n_params parameters) of the trainable layers: on the pool
 * when there are at least two whole chunks (below that a wake-up costs more than the pass
 * saves), else inline; which thread runs a chunk never changes its bits. Returns the lowest
 * layer whose update would store Inf or NaN, or -1. */
static int32_t run_pass(mm_model *m, int64_t n_tasks, int64_t n_params, int sumsq, int update)
{
    step_job j;
    int32_t bad;
    j.m = m;
    j.sumsq = sumsq;
    j.update = update;
    atomic_init(&j.bad, m->n_layers);
    mmi_pool_run(n_params >= 2 * STEP_CHUNK ? m->pool : NULL, step_task, &j, n_tasks);
    bad = atomic_load(&j.bad);
    return bad < m->n_layers ? bad : -1;
}

/* Each trainable layer's kernel arguments for this step (torch increments the step count
 * before using it). */
static void pass_args(mm_model *m, float scale)
{
    for (int32_t i = 0; i < m->n_layers; i++)
        if (trainable(m, i)) layer_args(m, i, scale, m->opt.layer_t[i] + 1, &m->opt.la[i]);
}

/* The float64 sum of squared gradients of the trainable layers from a pass's chunk sums (each
 * in the fixed 8-lane order of mmi_sumsq_f64): a layer's chunks added in order, then the
 * layers in order, the same for every thread count. *bad = first layer holding a non-finite
 * value (-1 if none). */
static double grad_sumsq(const mm_model *m, int32_t *bad)
{
    double total = 0.0;
    int64_t t = 0;
    *bad = -1;
    for (int32_t i = 0; i < m->n_layers; i++) {
        double s;
        int64_t c;
        if (!trainable(m, i)) continue;
        c = layer_chunks(&m->layers[i]);
        s = m->opt.chunk_sq[t];
        for (int64_t k = 1; k < c; k++) s += m->opt.chunk_sq[t + k];
        t += c;
        /* Finite floats cannot overflow a double sum of squares, so this finds NaN/Inf. */
        if (!isfinite(s) && *bad < 0) *bad = i;
        total += s;
    }
    return total;
}

MM_API int mm_model_step(mm_model *m)
{
    const char *fn = "mm_model_step";
    double norm, max_norm;
    float scale = 1.0f;
    int32_t bad, bad_update, clipped = 0;
    int64_t n_tasks = 0, n_params = 0;
    int fused, rc;
    if (!m) return MM_E_INVALID_ARG;
    if (m->comm && (rc = mmi_model_comm_average(m, fn)) != MM_OK) return rc; /* data-parallel */
    if (!m->opt.kind)
        return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_set_optimizer first", fn);
    if ((rc = check_config(m, fn)) != MM_OK) return rc;
    for (int32_t i = 0; i < m->n_layers; i++)
        if (trainable(m, i)) {
            n_tasks += layer_chunks(&m->layers[i]);
            n_params += m->layers[i].n_params;
        }
    max_norm = H(m, MM_MODEL_MAX_GRAD_NORM);
    /* A dry pass first: finite gradients can still give a non-finite result (eps = 0 on a
     * zero-gradient coordinate is 0/0, lr * g can overflow). The commit pass repeats the same
     * float operations, so what the dry pass judged finite is what gets stored. Without
     * clipping the scale is 1 whatever the norm, so the dry pass shares the pass that sums the
     * norm's chunks (a non-finite gradient is still the failure reported). */
    fused = !(max_norm > 0.0);
    if (fused) pass_args(m, 1.0f);
    bad_update = run_pass(m, n_tasks, n_params, 1, fused);
    norm = sqrt(grad_sumsq(m, &bad));
    if (bad >= 0)
        return mmi_fail(&m->err, MM_E_NUMERIC,
                        "%s: the gradient of layer %d (%s) holds NaN or "
                        "Inf; nothing was updated",
                        fn, (int)bad, mmi_layer_label(&m->layers[bad]));
    if (!fused) {
        /* clip_grad_norm_: coefficient max_norm / (norm + 1e-6), clamped at 1. */
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) scale = (float)coef, clipped = 1;
        pass_args(m, scale);
        bad_update = run_pass(m, n_tasks, n_params, 0, 1);
    }
    if (bad_update >= 0)
        return mmi_fail(&m->err, MM_E_NUMERIC,
                        "%s: the update of layer %d (%s) would make "
                        "a parameter or optimizer state Inf or NaN (eps 0 with a zero "
                        "gradient, or lr too large?); nothing was updated",
                        fn, (int)bad_update, mmi_layer_label(&m->layers[bad_update]));
    (void)run_pass(m, n_tasks, n_params, 0, 2);
    for (int32_t i = 0; i < m->n_layers; i++) {
        if (!trainable(m, i)) continue;
        m->opt.layer_t[i] = mmi_count_add(m->opt.layer_t[i], 1);
        if ((m->opt.kind == MM_OPT_SGD || m->opt.kind == MM_OPT_MOMENTUM) && m->opt.la[i].a != 0.0f)
            m->opt.buf_init[i] = 1;
    }
    m->opt.last_grad_norm = norm;
    m->opt.last_clipped = clipped;
    m->opt.steps = mmi_count_add(m->opt.steps, 1);
    return MM_OK;
}
