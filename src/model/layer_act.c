/* SPDX-License-Identifier: MIT */
/* layer_act.c — element-wise activation layers (no parameters; one nn.Sequential index each).
 * The math lives in src/kernels (act.c); this file adapts it to the layer interface. */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "mmi_model.h"

#include <string.h>

/* Letters: rows = B x T of the call, in_dim = out_dim the row width, n = rows x in_dim. */

#define KIND(l) ((int32_t)(l)->icfg[0])

static int act_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    if (l->n_icfg != 1 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: activation config needs 1 integer", fn);
    if (l->icfg[0] < MM_ACT_RELU || l->icfg[0] > MM_ACT_RELU2)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown activation kind %lld (MM_ACT_*)", fn,
                        (long long)l->icfg[0]);
    l->out_dim = l->in_dim;
    l->n_params = 0;
    l->n_tensors = 0;
    l->init_work = 0;
    return MM_OK;
}

static void act_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                      size_t *scratch, int *gemm_ws)
{
    *gemm_ws = 0;
    (void)l;
    (void)batch;
    (void)seq;
    *saved = 0;
    *scratch = 0;
}

static void act_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    (void)l;
    (void)p;
    (void)rng;
    (void)work;
}

static int act_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                       float *y, void *saved, void *scratch)
{
    (void)p;
    (void)saved;
    (void)scratch;
    mmi_act_forward(KIND(l), x, y, c->rows * l->in_dim);
    return MM_OK;
}

static void act_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         const float *y, const void *saved, const float *dy, float *dx, float *g,
                         void *scratch)
{
    (void)p;
    (void)saved;
    (void)g;
    (void)scratch;
    if (dx) mmi_act_backward(KIND(l), x, y, dy, dx, c->rows * l->in_dim);
}

static void act_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                    const float *x, const float *tx, const float *y, const void *saved, float *ty,
                    void *scratch)
{
    int64_t n = c->rows * l->in_dim;
    (void)p;
    (void)v;
    (void)saved;
    (void)scratch;
    /* An element-wise map's tangent rule is its backward rule: ty = f'(x) tx. */
    if (tx)
        mmi_act_backward(KIND(l), x, y, tx, ty, n);
    else
        memset(ty, 0, (size_t)n * sizeof(float));
}

const mmi_layer_vt mmi_layer_act_vt = {
    "activation", MMI_LAYER_ACT, act_setup, act_sizes, act_init, act_forward, act_backward, act_jvp,
};
