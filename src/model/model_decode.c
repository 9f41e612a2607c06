/* SPDX-License-Identifier: MIT */
/* model_decode.c — token-by-token decoding of an mm_model (mm_model_decode_state_size,
 * mm_model_decode_step): recurrent layers (Mamba, S4D) advance a caller-owned state; row-wise
 * layers (dense, activations, norms, embedding) run their forward on the one-token batch. The
 * layers' own scratch and the model's ping-pong buffers are used, so nothing is allocated. */
#include "../tensor/mmi_tensor.h"
#include "mmi_model_ssm.h"

#include <string.h>

typedef struct decode_entry {
    int32_t kind;
    size_t (*state_bytes)(const mmi_layer *l);
    int (*step)(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                void *state, void *scratch);
} decode_entry;

static const decode_entry k_recurrent[] = {
    {MMI_LAYER_MAMBA, mmi_mamba_state_bytes, mmi_mamba_step},
    {MMI_LAYER_S4D, mmi_s4d_state_bytes, mmi_s4d_step},
};

static const decode_entry *recurrent(const mmi_layer *l)
{
    for (size_t i = 0; i < sizeof k_recurrent / sizeof k_recurrent[0]; i++)
        if (k_recurrent[i].kind == l->vt->kind) return &k_recurrent[i];
    return NULL;
}

static int row_wise(const mmi_layer *l)
{
    int32_t k = l->vt->kind;
    return k == MMI_LAYER_DENSE || k == MMI_LAYER_ACT || k == MMI_LAYER_LAYERNORM ||
           k == MMI_LAYER_RMSNORM || k == MMI_LAYER_EMBEDDING;
}

/* Bytes of state per batch row (8-byte multiples per layer), or MM_E_UNSUPPORTED. */
static int row_bytes(const mm_model *m, size_t *bytes, int32_t *bad)
{
    size_t total = 0;
    for (int32_t i = 0; i < m->n_layers; i++) {
        const decode_entry *d = recurrent(&m->layers[i]);
        if (d)
            total += (d->state_bytes(&m->layers[i]) + 7) / 8 * 8;
        else if (!row_wise(&m->layers[i])) {
            *bad = i;
            return MM_E_UNSUPPORTED;
        }
    }
    *bytes = total;
    return MM_OK;
}

MM_API int mm_model_decode_state_size(const mm_model *m, int64_t batch, size_t *bytes)
{
    size_t row;
    int32_t bad = -1;
    int rc;
    if (!m || !bytes) return MM_E_INVALID_ARG;
    if (!m->finalized) return MM_E_STATE;
    if (batch < 1 || batch > m->opts.max_batch) return MM_E_RANGE;
    if ((rc = row_bytes(m, &row, &bad)) != MM_OK) return rc;
    if (mmi_mul_size(bytes, row, (size_t)batch)) return MM_E_RANGE;
    return MM_OK;
}

static int fill_exec(mm_model *m, const mm_tensor *x, mmi_exec *c)
{
    memset(c, 0, sizeof *c); /* no context: decoding refuses cross-attention layers */
    c->batch = x->shape[0], c->seq = 1, c->rows = c->batch;
    c->gemm_ws = m->gemm_ws, c->pool = m->pool, c->err = &m->err;
    return MM_OK;
}

static int check_step(mm_model *m, const mm_tensor *x, const mm_tensor *y, const void *state,
                      size_t state_bytes, mmi_exec *c, size_t *row, const char *fn)
{
    int32_t bad = -1;
    int rc;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: the model is not finalized", fn);
    if (!x || !y) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: NULL argument", fn);
    if (x->ndim != 2 || x->shape[1] != m->opts.input_dim)
        return mmi_fail(&m->err, MM_E_SHAPE, "%s: x must be [batch, %lld]", fn,
                        (long long)m->opts.input_dim);
    if (x->shape[0] > m->opts.max_batch)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: batch %lld exceeds max_batch %lld", fn,
                        (long long)x->shape[0], (long long)m->opts.max_batch);
    if (y->ndim != 2 || y->shape[0] != x->shape[0] || y->shape[1] != mmi_model_out_dim(m))
        return mmi_fail(&m->err, MM_E_SHAPE, "%s: y must be [%lld, %lld]", fn,
                        (long long)x->shape[0], (long long)mmi_model_out_dim(m));
    if ((rc = row_bytes(m, row, &bad)) != MM_OK)
        return mmi_fail(&m->err, rc, "%s: layer %d (%s) has no decoding step", fn, (int)bad,
                        mmi_layer_label(&m->layers[bad]));
    /* A model without recurrent layers has no state: NULL (any state_bytes) is fine then. */
    if (*row == 0) return fill_exec(m, x, c);
    if (!state || (uintptr_t)state % 8 || state_bytes < *row * (size_t)x->shape[0])
        return mmi_fail(&m->err, MM_E_INVALID_ARG,
                        "%s: state must be 8-byte aligned and hold "
                        "%zu bytes",
                        fn, *row * (size_t)x->shape[0]);
    return fill_exec(m, x, c);
}

MM_API int mm_model_decode_step(mm_model *m, const mm_tensor *x, mm_tensor *y, void *state,
                                size_t state_bytes)
{
    static const char fn[] = "mm_model_decode_step";
    const float *in;
    unsigned char *st = (unsigned char *)state;
    size_t row, off = 0;
    mmi_exec c;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if ((rc = check_step(m, x, y, state, state_bytes, &c, &row, fn)) != MM_OK) return rc;
    /* The layers read x and write y directly and update the state in between. */
    if (mmi_tensor_overlap(y, x))
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: y shares memory with x", fn);
    if (state && row > 0) {
        const size_t sb = row * (size_t)x->shape[0];
        if (mmi_overlaps(state, sb, x->data, sizeof(float) * (size_t)x->numel) ||
            mmi_overlaps(state, sb, y->data, sizeof(float) * (size_t)y->numel))
            return mmi_fail(
                &m->err, MM_E_INVALID_ARG, "%s: state shares memory with %s", fn,
                mmi_overlaps(state, sb, x->data, sizeof(float) * (size_t)x->numel) ? "x" : "y");
    }
    if ((rc = mmi_model_own_apart_t(m, &m->err, fn, "y", y, 0)) != MM_OK ||
        (state && row > 0 &&
         (rc = mmi_model_own_apart(m, &m->err, fn, "state", state, row * (size_t)x->shape[0], 0)) !=
             MM_OK))
        return rc;
    m->fwd_valid = 0;
    in = x->data;
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        const decode_entry *d = recurrent(l);
        const float *p = m->params + l->param_offset;
        float *out = i == m->n_layers - 1 ? y->data : m->pp[i & 1];
        if (d) {
            size_t lb = (d->state_bytes(l) + 7) / 8 * 8;
            /* each layer's state is [batch][its row]: rows of different layers never mix */
            rc = d->step(l, &c, p, in, out, st + off * (size_t)c.batch, m->scratch);
            off += lb;
        } else {
            rc = l->vt->forward(l, &c, p, in, out, NULL, m->scratch);
        }
        if (rc != MM_OK) return rc;
        in = out;
    }
    return MM_OK;
}
