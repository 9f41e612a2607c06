/* SPDX-License-Identifier: MIT */
/* model_sample.c — drawing next tokens from a model's logits (mm_model_sample) with
 * temperature, top-k and top-p, from the model's seeded RNG (mm_model_seed). The candidates of
 * a truncated row are ranked by a partial heap sort of token indices in the model's first
 * ping-pong buffer (free between calls: forward keeps its activations elsewhere), so nothing is
 * allocated. */
#include "../tensor/mmi_tensor.h"
#include "mmi_model.h"

#include <math.h>

MM_API int mm_model_seed(mm_model *m, uint64_t seed)
{
    if (!m) return MM_E_INVALID_ARG;
    if (!m->finalized)
        return mmi_fail(&m->err, MM_E_STATE, "mm_model_seed: call mm_model_finalize first");
    mmi_rng_seed(&m->rng, seed);
    return MM_OK;
}

/* Ranking of candidates: higher logit first, the lower index on a tie (a total order, so the
 * kept set and the draw do not depend on the heap's internal order). */
static int ranks_above(const float *z, int32_t a, int32_t b)
{
    return z[a] > z[b] || (z[a] == z[b] && a < b);
}

static void sift_down(const float *z, int32_t *h, int64_t n, int64_t i)
{
    for (;;) {
        int64_t best = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_above(z, h[l], h[best])) best = l;
        if (r < n && ranks_above(z, h[r], h[best])) best = r;
        if (best == i) return;
        int32_t t = h[i];
        h[i] = h[best], h[best] = t;
        i = best;
    }
}

typedef struct sampler {
    double inv_t, top_p;
    int64_t v, top_k; /* top_k already clamped to [1, v] */
    int32_t *heap;    /* v indices */
    mmi_rng *rng;
} sampler;

static int32_t argmax_row(const float *z, int64_t v)
{
    int32_t b = 0;
    for (int32_t i = 1; i < (int32_t)v; i++)
        if (z[i] > z[b]) b = i;
    return b;
}

/* Draws from the whole softmax(z / T): one pass for the mass, one for the inverse CDF. */
static int32_t draw_full(const sampler *s, const float *z, double zmax)
{
    double total = 0.0, u, acc = 0.0;
    int32_t last = 0;
    for (int64_t i = 0; i < s->v; i++) total += exp(((double)z[i] - zmax) * s->inv_t);
    u = mmi_rng_uniform(s->rng) * total;
    for (int32_t i = 0; i < (int32_t)s->v; i++) {
        double w = exp(((double)z[i] - zmax) * s->inv_t);
        if (w > 0.0) last = i;
        if ((acc += w) > u) return i;
    }
    return last; /* rounding left u at the very top */
}

/* Draws from the truncated distribution: the top_k best tokens, then the shortest prefix of
 * them (best first) holding at least top_p of their mass. Pops the heap only as far as needed:
 * O(V + kept log V). Popped tokens sit at heap[v - 1], heap[v - 2], ... in rank order. */
static int32_t draw_truncated(const sampler *s, const float *z, double zmax)
{
    int32_t *h = s->heap;
    int64_t n = s->v, kept = 0;
    double total = 0.0, mass = 0.0, u, acc = 0.0;
    for (int32_t i = 0; i < (int32_t)s->v; i++) h[i] = i;
    for (int64_t i = s->v / 2 - 1; i >= 0; i--) sift_down(z, h, n, i);
    if (s->top_k == s->v)
        for (int64_t i = 0; i < s->v; i++) total += exp(((double)z[i] - zmax) * s->inv_t);
    while (kept < s->top_k) {
        int32_t t = h[0];
        h[0] = h[n - 1], h[n - 1] = t;
        sift_down(z, h, --n, 0);
        mass += exp(((double)z[t] - zmax) * s->inv_t);
        kept++;
        if (s->top_k == s->v && mass >= s->top_p * total) break;
    }
    if (s->top_k < s->v && s->top_p < 1.0) { /* top-p inside the top-k set */
        double target = s->top_p * mass;
        mass = 0.0;
        for (int64_t j = 0; j < kept; j++) {
            mass += exp(((double)z[h[s->v - 1 - j]] - zmax) * s->inv_t);
            if (mass >= target) {
                kept = j + 1;
                break;
            }
        }
    }
    u = mmi_rng_uniform(s->rng) * mass;
    for (int64_t j = 0; j < kept; j++) {
        int32_t t = h[s->v - 1 - j];
        if ((acc += exp(((double)z[t] - zmax) * s->inv_t)) > u) return t;
    }
    return h[s->v - kept]; /* rounding: the last kept token */
}

static int check_sample(mm_model *m, const mm_tensor *logits, double temperature, int64_t top_k,
                        double top_p, const int32_t *tokens, int64_t n_tokens, int64_t *rows,
                        const char *fn)
{
    int64_t v = mmi_model_out_dim(m);
    char s[96];
    if (!m->finalized) return mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    if (!logits || !tokens) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: NULL argument", fn);
    if (logits->ndim < 1 || logits->ndim > 2 || logits->shape[logits->ndim - 1] != v) {
        mmi_tensor_shape_str(logits, s, sizeof s);
        return mmi_fail(&m->err, MM_E_SHAPE,
                        "%s: logits is %s; it must be [n, %lld] or [%lld] "
                        "(the model's output width)",
                        fn, s, (long long)v, (long long)v);
    }
    *rows = logits->ndim == 2 ? logits->shape[0] : 1;
    if (n_tokens != *rows)
        return mmi_fail(&m->err, MM_E_SHAPE, "%s: n_tokens is %lld; logits has %lld rows", fn,
                        (long long)n_tokens, (long long)*rows);
    /* below 1e-6, 1 / T could overflow the scaled logits: 0 (greedy) is the limit to use */
    if (!(temperature == 0.0 || (temperature >= 1e-6 && temperature <= 1e6)))
        return mmi_fail(&m->err, MM_E_RANGE,
                        "%s: temperature %g is neither 0 nor in "
                        "[1e-6, 1e6]",
                        fn, temperature);
    if (top_k < 0)
        return mmi_fail(&m->err, MM_E_RANGE, "%s: top_k %lld is negative (0 = off)", fn,
                        (long long)top_k);
    if (!(top_p > 0.0 && top_p <= 1.0))
        return mmi_fail(&m->err, MM_E_RANGE, "%s: top_p %g is outside (0, 1] (1 = off)", fn, top_p);
    for (int64_t i = 0; i < logits->numel; i++)
        if (!isfinite(logits->data[i]))
            return mmi_fail(&m->err, MM_E_NUMERIC, "%s: logits[%lld] is not finite", fn,
                            (long long)i);
    return MM_OK;
}

static double log_sum_exp(const float *z, int64_t v, double zmax)
{
    double s = 0.0;
    for (int64_t i = 0; i < v; i++) s += exp((double)z[i] - zmax);
    return zmax + log(s);
}

MM_API int mm_model_sample(mm_model *m, const mm_tensor *logits, double temperature, int64_t top_k,
                           double top_p, int32_t *tokens, int64_t n_tokens, float *logp)
{
    static const char fn[] = "mm_model_sample";
    sampler s;
    int64_t rows = 0;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    rc = check_sample(m, logits, temperature, top_k, top_p, tokens, n_tokens, &rows, fn);
    if (rc != MM_OK) return rc;
    {
        /* Rows are drawn in order: a token or logp written over a later row of logits (or
         * over each other) changed what that row drew, with MM_OK. */
        const size_t zb = sizeof(float) * (size_t)logits->numel,
                     tb = sizeof(int32_t) * (size_t)rows;
        const size_t lb = sizeof(float) * (size_t)rows;
        const char *what =
            mmi_overlaps(tokens, tb, logits->data, zb)         ? "tokens shares memory with logits"
            : logp && mmi_overlaps(logp, lb, logits->data, zb) ? "logp shares memory with logits"
            : logp && mmi_overlaps(logp, lb, tokens, tb)       ? "logp shares memory with tokens"
                                                               : NULL;
        if (what) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: %s", fn, what);
    }
    s.v = mmi_model_out_dim(m);
    s.top_k = top_k == 0 || top_k > s.v ? s.v : top_k;
    s.top_p = top_p;
    s.inv_t = temperature > 0.0 ? 1.0 / temperature : 0.0;
    s.heap = (int32_t *)(void *)m->pp[0]; /* max_rows x max_width floats >= v indices */
    s.rng = &m->rng;
    MMI_ASSERT(m->max_width >= s.v && m->max_rows >= 1);
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits->data + r * s.v;
        int32_t a = argmax_row(z, s.v), t;
        double zmax = (double)z[a];
        if (temperature == 0.0)
            t = a;
        else if (s.top_k < s.v || top_p < 1.0)
            t = draw_truncated(&s, z, zmax);
        else
            t = draw_full(&s, z, zmax);
        tokens[r] = t;
        if (logp) logp[r] = (float)((double)z[t] - log_sum_exp(z, s.v, zmax));
    }
    return MM_OK;
}
