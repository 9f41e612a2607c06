/* SPDX-License-Identifier: MIT */
/* layer_embed.c — embedding lookup (torch.nn.Embedding). The input holds float indices; each
 * value of the last axis selects one table row and the rows are concatenated. An index that
 * is not an exact integer in [0, num_embeddings) is refused, never clamped. */
#include "mmi_model.h"

#include <math.h>
#include <string.h>

/* Letters: rows = B x T, w = in_dim indices per row, d = embedding_dim, n = rows x w. */

#define NUM(l)   ((l)->icfg[0])
#define DIM(l)   ((l)->icfg[1])
#define MAX_SIZE ((int64_t)1 << 31)

static int embed_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    int64_t nw, out;
    if (l->n_icfg != 2 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: embedding config needs 2 integers", fn);
    if (NUM(l) < 1 || NUM(l) > MAX_SIZE || DIM(l) < 1 || DIM(l) > MAX_SIZE)
        return mmi_fail(e, MM_E_RANGE,
                        "%s: num_embeddings %lld and embedding_dim %lld must be in [1, 2^31]", fn,
                        (long long)NUM(l), (long long)DIM(l));
    if (mmi_mul_i64(&nw, NUM(l), DIM(l)) != 0 || nw > MMI_MAX_NUMEL ||
        mmi_mul_i64(&out, l->in_dim, DIM(l)) != 0 || out > MAX_SIZE)
        return mmi_fail(e, MM_E_RANGE, "%s: embedding [%lld, %lld] on %lld inputs is too large", fn,
                        (long long)NUM(l), (long long)DIM(l), (long long)l->in_dim);
    l->out_dim = out;
    l->n_params = nw;
    l->n_tensors = 1;
    l->init_work = 0;
    memset(l->tensors, 0, sizeof l->tensors);
    strcpy(l->tensors[0].name, "weight");
    l->tensors[0].ndim = 2;
    l->tensors[0].shape[0] = NUM(l);
    l->tensors[0].shape[1] = DIM(l);
    l->tensors[0].numel = nw;
    return MM_OK;
}

static void embed_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                        size_t *scratch, int *gemm_ws)
{
    *gemm_ws = 0;
    (void)l;
    (void)batch;
    (void)seq;
    *saved = 0;
    *scratch = 0;
}

static void embed_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    (void)work;
    for (int64_t i = 0; i < l->n_params; i++) p[i] = (float)mmi_rng_normal(rng);
}

/* The row selected by x, or -1 if x is not an integer in [0, num). */
static int64_t index_of(const mmi_layer *l, float x)
{
    /* The range test first: it also rejects NaN and Inf before the conversion. */
    if (!(x >= 0.0f && (double)x < (double)NUM(l))) return -1;
    if (x != floorf(x)) return -1;
    return (int64_t)x;
}

static int embed_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         float *y, void *saved, void *scratch)
{
    int64_t w = l->in_dim, d = DIM(l), n = c->rows * w;
    (void)saved;
    (void)scratch;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = index_of(l, x[i]);
        if (k < 0)
            return mmi_fail(c->err, MM_E_RANGE,
                            "embedding: input %lld (row %lld, column %lld) is %g, not an integer "
                            "index in [0, %lld)",
                            (long long)i, (long long)(i / w), (long long)(i % w), (double)x[i],
                            (long long)NUM(l));
        memcpy(y + i * d, p + k * d, (size_t)d * sizeof(float));
    }
    return MM_OK;
}

static void embed_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           const float *y, const void *saved, const float *dy, float *dx, float *g,
                           void *scratch)
{
    int64_t w = l->in_dim, d = DIM(l), n = c->rows * w;
    (void)p;
    (void)y;
    (void)saved;
    (void)scratch;
    if (g)
        for (int64_t i = 0; i < n; i++) {
            float *gr = g + index_of(l, x[i]) * d; /* validated by forward */
            for (int64_t j = 0; j < d; j++) gr[j] += dy[i * d + j];
        }
    /* Indices are not differentiable: their gradient is zero. */
    if (dx) memset(dx, 0, (size_t)n * sizeof(float));
}

static void embed_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                      const float *x, const float *tx, const float *y, const void *saved, float *ty,
                      void *scratch)
{
    int64_t w = l->in_dim, d = DIM(l), n = c->rows * w;
    (void)p;
    (void)tx;
    (void)y;
    (void)saved;
    (void)scratch;
    for (int64_t i = 0; i < n; i++)
        memcpy(ty + i * d, v + index_of(l, x[i]) * d, (size_t)d * sizeof(float));
}

const mmi_layer_vt mmi_layer_embedding_vt = {
    "embedding", MMI_LAYER_EMBEDDING, embed_setup,    embed_sizes,
    embed_init,  embed_forward,       embed_backward, embed_jvp,
};
