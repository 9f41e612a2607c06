/* SPDX-License-Identifier: MIT */
/* model_logprob.c — per-token log-probabilities of given tokens under a model whose output is
 * logits (mm_model_logprob), and the gradient of a weighted sum of them with respect to the
 * parameters (mm_model_logprob_backward): the two halves a policy-gradient or Kimi k1.5 update
 * of a language model needs. The logits stay in the model's arena between the two calls; the
 * gradient of the logits is formed in a ping-pong buffer, so nothing is allocated. */
#include "../tensor/mmi_tensor.h"
#include "mmi_model.h"

#include <math.h>

/* log sum_v exp(z_v), max-shifted, in float64. */
static double row_lse(const float *z, int64_t v)
{
    double mx = (double)z[0], s = 0.0;
    for (int64_t i = 1; i < v; i++) mx = (double)z[i] > mx ? (double)z[i] : mx;
    for (int64_t i = 0; i < v; i++) s += exp((double)z[i] - mx);
    return mx + log(s);
}

/* targets: rows entries, each negative (ignored) or a token in [0, v). */
static int check_targets(mm_model *m, const int32_t *targets, int64_t n_targets, int64_t rows,
                         const char *fn)
{
    int64_t v = mmi_model_out_dim(m);
    if (!targets) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: targets is NULL", fn);
    if (n_targets != rows)
        return mmi_fail(&m->err, MM_E_SHAPE, "%s: n_targets is %lld; x has %lld positions", fn,
                        (long long)n_targets, (long long)rows);
    for (int64_t r = 0; r < rows; r++)
        if (targets[r] >= v)
            return mmi_fail(&m->err, MM_E_RANGE,
                            "%s: targets[%lld] = %d is not below the "
                            "model's output width %lld",
                            fn, (long long)r, (int)targets[r], (long long)v);
    return MM_OK;
}

static int check_count(mm_model *m, const mm_tensor *t, int64_t rows, const char *what,
                       const char *fn)
{
    char s[96];
    if (!t) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, what);
    if (t->numel == rows) return MM_OK;
    mmi_tensor_shape_str(t, s, sizeof s);
    return mmi_fail(&m->err, MM_E_SHAPE,
                    "%s: %s is %s; it must hold %lld elements (one per "
                    "position)",
                    fn, what, s, (long long)rows);
}

MM_API int mm_model_logprob(mm_model *m, const mm_tensor *x, const int32_t *targets,
                            int64_t n_targets, mm_tensor *logp)
{
    static const char fn[] = "mm_model_logprob";
    int64_t batch, seq, rows, v;
    const float *z;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if ((rc = mmi_model_input_shape(m, x, &batch, &seq, &m->err, fn)) != MM_OK) return rc;
    rows = batch * seq; /* both within the reservation is checked by the forward below */
    if ((rc = check_targets(m, targets, n_targets, rows, fn)) != MM_OK ||
        (rc = check_count(m, logp, rows, "logp", fn)) != MM_OK)
        return rc;
    if (mmi_tensor_overlap(logp, x))
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: logp shares memory with x", fn);
    /* logp[r] is written while later targets are still to be read. */
    if (mmi_overlaps(logp->data, sizeof(float) * (size_t)logp->numel, targets,
                     sizeof(int32_t) * (size_t)n_targets))
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: logp shares memory with targets", fn);
    if ((rc = mmi_model_own_apart_t(m, &m->err, fn, "logp", logp, 0)) != MM_OK) return rc;
    if ((rc = mmi_model_run_forward(m, x, NULL, fn)) != MM_OK) return rc;
    v = mmi_model_out_dim(m);
    z = m->act[m->n_layers];
    for (int64_t r = 0; r < rows; r++) {
        double lp;
        if (targets[r] < 0) {
            logp->data[r] = 0.0f;
            continue;
        }
        lp = (double)z[r * v + targets[r]] - row_lse(z + r * v, v);
        if (!isfinite(lp)) {
            m->fwd_valid = 0;
            return mmi_fail(&m->err, MM_E_NUMERIC,
                            "%s: the log-probability at position %lld "
                            "is not finite (non-finite logits)",
                            fn, (long long)r);
        }
        logp->data[r] = (float)lp;
    }
    return MM_OK;
}

MM_API int mm_model_logprob_backward(mm_model *m, const int32_t *targets, int64_t n_targets,
                                     const mm_tensor *weights)
{
    static const char fn[] = "mm_model_logprob_backward";
    int64_t rows, v;
    const float *z;
    float *dz;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if (!m->fwd_valid)
        return mmi_fail(&m->err, MM_E_STATE,
                        "%s: no successful mm_model_logprob to "
                        "differentiate",
                        fn);
    rows = m->fwd_batch * m->fwd_seq;
    if ((rc = check_targets(m, targets, n_targets, rows, fn)) != MM_OK ||
        (rc = check_count(m, weights, rows, "weights", fn)) != MM_OK)
        return rc;
    for (int64_t r = 0; r < rows; r++)
        if (!isfinite(weights->data[r]))
            return mmi_fail(&m->err, MM_E_NUMERIC, "%s: weights[%lld] is not finite", fn,
                            (long long)r);
    v = mmi_model_out_dim(m);
    z = m->act[m->n_layers];
    dz = m->pp[m->n_layers & 1]; /* the top layer's backward writes the other buffer */
    for (int64_t r = 0; r < rows; r++) {
        /* d(w log softmax(z)_t)/dz_i = w (1[i = t] - softmax(z)_i) */
        const double w = targets[r] < 0 ? 0.0 : (double)weights->data[r];
        const double lse = w != 0.0 ? row_lse(z + r * v, v) : 0.0;
        for (int64_t i = 0; i < v; i++) {
            double p = w != 0.0 ? exp((double)z[r * v + i] - lse) : 0.0;
            dz[r * v + i] = (float)(w * ((i == targets[r] ? 1.0 : 0.0) - p));
        }
    }
    mmi_model_run_backward(m, dz, NULL, NULL);
    return MM_OK;
}
