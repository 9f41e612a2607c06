/* attn_gated.c — gated linear attention S_t = diag(a_t) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t
 * (q scaled), computed chunkwise in parallel (spec B7.2): inside a chunk the log-gates are
 * summed from the chunk start (b_t), the inter-chunk term reads the state entering the chunk
 * and the intra-chunk term pairs q_t with k_s (s <= t) through exp(b_t - b_s) <= 1, so no
 * exponential can overflow however strong the gates. The backward recomputes the chunk-entry
 * states forward, then walks the chunks in reverse with the state gradient; the gate gradient
 * uses dB_t = q_t . dq_t - k_t . dk_t and a reverse cumulative sum (FLA's identity). */
#include "mmi_attn_kernels.h"

#include <math.h>
#include <string.h>

/* Vector gates: sub-chunks of SUB steps share a reference point n (their first step), so the
 * pairs across sub-chunks factor as (q_t e^{b_t - b_n}) . (k_u e^{b_n - b_u}) with both
 * exponents <= 0 (FLA's secondary chunking); only pairs inside a sub-chunk are elementwise. */
#define SUB 16

size_t mmi_attn_gated_ws_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv)
{
    const int64_t nch = (n + chunk - 1) / chunk;
    /* b (C x d), A and DV (C x C), qs (C x d), 4 vectors of d, state gradient, chunk states,
     * then the scalar-gate fast path: transposed key and value chunks, A^T and DV^T */
    return (size_t)(chunk * d + 2 * chunk * chunk + chunk * d + 4 * d + d * dv +
                    (nch + 1) * d * dv + chunk * (d + dv) + 2 * chunk * chunk + chunk * d +
                    SUB * d + 128);
}

typedef struct gated_ws {
    float *b, *a, *dvm, *qs, *e1, *e2, *tmp, *ds, *states, *kt, *vt, *at, *wt, *ke, *qe;
} gated_ws;

static gated_ws split_ws(int64_t n, int64_t chunk, int64_t d, int64_t dv, float *ws)
{
    gated_ws w;
    w.b = ws;
    w.a = w.b + chunk * d;
    w.dvm = w.a + chunk * chunk;
    w.qs = w.dvm + chunk * chunk;
    w.e1 = w.qs + chunk * d;
    w.e2 = w.e1 + d;
    w.tmp = w.e2 + d;
    w.ds = w.tmp + 2 * d;
    w.states = w.ds + d * dv;
    w.kt = w.states + ((n + chunk - 1) / chunk + 1) * d * dv;
    w.vt = w.kt + chunk * d;
    w.at = w.vt + chunk * dv;
    w.wt = w.at + chunk * chunk;
    w.ke = w.wt + chunk * chunk;
    w.qe = w.ke + chunk * d;
    return w;
}

/* b[t][k] = sum_{u = c0..t} g_u[k] for the chunk's L steps (double sums). */
static void gate_cumsum(int gmode, const float *g, int64_t c0, int64_t len, int64_t d, float *b)
{
    for (int64_t k = 0; k < d; k++) {
        double acc = 0.0;
        for (int64_t t = 0; t < len; t++) {
            if (gmode == 1) acc += g[0];
            else if (gmode == 2) acc += g[c0 + t];
            else if (gmode == 3) acc += g[(c0 + t) * d + k];
            b[t * d + k] = (float)acc;
        }
    }
}

/* A[t][s] = sum_k q_tk k_sk exp(b_tk - b_sk) for s <= t (scalar gates factor the exp out). */
static float pair_weight(int gmode, int64_t d, const float *qt, const float *ks, const float *bt,
                         const float *bs)
{
    if (gmode != 3) return (float)(mmi_attn_dot64(d, qt, ks) * exp((double)bt[0] - bs[0]));
    double acc = 0.0;
    for (int64_t k = 0; k < d; k++) acc += (double)qt[k] * ks[k] * exp((double)bt[k] - bs[k]);
    return (float)acc;
}

/* t[c * ch + u] = src[(c0 + u) * w + c]: a chunk transposed. */
static void chunk_t(const float *src, int64_t w, int64_t c0, int64_t len, int64_t ch, float *t)
{
    for (int64_t u = 0; u < len; u++)
        for (int64_t c = 0; c < w; c++) t[c * ch + u] = src[(c0 + u) * w + c];
}

/* Scaled queries of the chunk and its intra-chunk weights A. Scalar gates factor the decay
 * out of the key sum: A = (q k^T) * exp(b_t - b_u), the product row by row on a transposed
 * key chunk; vector gates need the decay inside the sum (elementwise). */
static void chunk_prep(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                       const float *k, int64_t c0, int64_t len, gated_ws *w)
{
    const int64_t d = s->d, ch = s->chunk;
    gate_cumsum(gmode, g, c0, len, d, w->b);
    for (int64_t t = 0; t < len; t++)
        for (int64_t c = 0; c < d; c++) w->qs[t * d + c] = s->scale * q[(c0 + t) * d + c];
    if (gmode != 3) {
        chunk_t(k, d, c0, len, ch, w->kt);
        for (int64_t t = 0; t < len; t++) {
            float *row = w->a + t * ch;
            mmi_attn_rowmat(t + 1, d, w->qs + t * d, w->kt, ch, 1.0f, row);
            if (gmode != 0)
                for (int64_t u = 0; u <= t; u++) row[u] *= expf(w->b[t * d] - w->b[u * d]);
        }
        return;
    }
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const float *bn = w->b + t0 * d;
        for (int64_t u = 0; u < t0; u++) /* earlier keys seen from reference n = t0 */
            for (int64_t c = 0; c < d; c++)
                w->kt[c * ch + u] = k[(c0 + u) * d + c] * expf(bn[c] - w->b[u * d + c]);
        for (int64_t t = t0; t < t1; t++) {
            for (int64_t c = 0; c < d; c++) w->e1[c] = w->qs[t * d + c] * expf(w->b[t * d + c] - bn[c]);
            if (t0 > 0) mmi_attn_rowmat(t0, d, w->e1, w->kt, ch, 1.0f, w->a + t * ch);
            for (int64_t u = t0; u <= t; u++) /* inside the sub-chunk: elementwise */
                w->a[t * ch + u] = pair_weight(gmode, d, w->qs + t * d, k + (c0 + u) * d,
                                               w->b + t * d, w->b + u * d);
        }
    }
}

/* S <- diag(exp(b_L)) S + sum_s (k_s * exp(b_L - b_s)) v_s^T. */
static void chunk_state_update(const mmi_attn_dims *s, const float *k, const float *v, int64_t c0,
                               int64_t len, float *st, gated_ws *w)
{
    const int64_t d = s->d, dv = s->dv;
    const float *bl = w->b + (len - 1) * d;
    for (int64_t c = 0; c < d; c++) {
        const float f = expf(bl[c]);
        for (int64_t e = 0; e < dv; e++) st[c * dv + e] *= f;
    }
    for (int64_t u = 0; u < len; u++) {
        for (int64_t c = 0; c < d; c++)
            w->e1[c] = k[(c0 + u) * d + c] * expf(bl[c] - w->b[u * d + c]);
        mmi_attn_state_step(d, dv, w->e1, v + (c0 + u) * dv, st, dv, NULL, NULL, NULL, NULL);
    }
}

void mmi_attn_gated_fwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, float *o, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->n == s->m && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(gmode >= 0 && gmode <= 3 && (gmode == 0 || g) && q && k && v && o && ws);
    const int64_t d = s->d, dv = s->dv, ch = s->chunk;
    gated_ws w = split_ws(s->n, ch, d, dv, ws);
    float *st = w.ds; /* the running state */
    memset(st, 0, sizeof(float) * (size_t)(d * dv));
    for (int64_t c0 = 0; c0 < s->n; c0 += ch) {
        const int64_t len = s->n - c0 < ch ? s->n - c0 : ch;
        chunk_prep(s, gmode, g, q, k, c0, len, &w);
        for (int64_t t = 0; t < len; t++) {
            float *ot = o + (c0 + t) * dv;
            for (int64_t c = 0; c < d; c++) w.e1[c] = w.qs[t * d + c] * expf(w.b[t * d + c]);
            memset(ot, 0, sizeof(float) * (size_t)dv);
            mmi_attn_state_step(d, dv, NULL, NULL, st, dv, NULL, NULL, w.e1, ot);
            mmi_attn_matrow_acc(t + 1, dv, w.a + t * ch, v + c0 * dv, dv, ot);
        }
        chunk_state_update(s, k, v, c0, len, st, &w);
    }
}

/* ds <- diag(exp(b_L)) ds + sum_t (q_t exp(b_t)) do_t^T: the state gradient entering the chunk. */
static void chunk_ds(const mmi_attn_dims *s, const float *dout, int64_t c0, int64_t len,
                     gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv;
    const float *bl = w->b + (len - 1) * d;
    for (int64_t c = 0; c < d; c++) {
        const float f = expf(bl[c]);
        for (int64_t e = 0; e < dvw; e++) w->ds[c * dvw + e] *= f;
    }
    for (int64_t t = 0; t < len; t++) {
        for (int64_t c = 0; c < d; c++) w->e2[c] = w->qs[t * d + c] * expf(w->b[t * d + c]);
        mmi_attn_state_step(d, dvw, w->e2, dout + (c0 + t) * dvw, w->ds, dvw, NULL, NULL, NULL,
                            NULL);
    }
}

/* Scalar gates (none, RetNet, per-step scalar): every decay factor is exp(b_t - b_u) for the
 * whole key vector, so the chunk's gradients are products of small matrices (A^T, W^T with
 * W = (do v^T) * decay) with row-blocked primitives instead of elementwise exponentials. */
static void chunk_bwd_scalar(const mmi_attn_dims *s, int gmode, const float *k, const float *v,
                             const float *dout, int64_t c0, int64_t len, const float *st0,
                             float *dq, float *dk, float *dv, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    const float bl = w->b[(len - 1) * d];
    chunk_t(v, dvw, c0, len, ch, w->vt);
    for (int64_t t = 0; t < len; t++) { /* W[t][u] = (do_t . v_u) exp(b_t - b_u) */
        float *row = w->dvm + t * ch;
        mmi_attn_rowmat(t + 1, dvw, dout + (c0 + t) * dvw, w->vt, ch, 1.0f, row);
        if (gmode != 0)
            for (int64_t u = 0; u <= t; u++) row[u] *= expf(w->b[t * d] - w->b[u * d]);
        for (int64_t u = 0; u <= t; u++) {
            w->at[u * ch + t] = w->a[t * ch + u];
            w->wt[u * ch + t] = row[u];
        }
    }
    for (int64_t u = 0; u < len; u++) { /* keys */
        float *gv = dv + (c0 + u) * dvw, *gk = dk + (c0 + u) * d;
        const float f = expf(bl - w->b[u * d]);
        memset(gv, 0, sizeof(float) * (size_t)dvw);
        mmi_attn_matrow_acc(len - u, dvw, w->at + u * ch + u, dout + (c0 + u) * dvw, dvw, gv);
        for (int64_t c = 0; c < d; c++) w->e1[c] = k[(c0 + u) * d + c] * f;
        mmi_attn_state_step(d, dvw, NULL, NULL, w->ds, dvw, v + (c0 + u) * dvw, w->tmp, w->e1, gv);
        for (int64_t c = 0; c < d; c++) gk[c] = w->tmp[c] * f;
        mmi_attn_matrow_acc(len - u, d, w->wt + u * ch + u, w->qs + u * d, d, gk);
    }
    for (int64_t t = 0; t < len; t++) { /* queries (w.r.t. the scaled q) */
        float *gq = dq + (c0 + t) * d;
        const float f = expf(w->b[t * d]);
        mmi_attn_state_step(d, dvw, NULL, NULL, (float *)st0, dvw, dout + (c0 + t) * dvw, w->tmp,
                            NULL, NULL);
        for (int64_t c = 0; c < d; c++) gq[c] = w->tmp[c] * f;
        mmi_attn_matrow_acc(t + 1, d, w->dvm + t * ch, k + c0 * d, d, gq);
    }
    chunk_ds(s, dout, c0, len, w);
}

/* dk_u += sum over later query sub-chunks (reference n): e^{b_n - b_u} (DV^T qe) and the
 * elementwise pairs inside each sub-chunk. */
static void vector_dk(const mmi_attn_dims *s, const float *k, int64_t c0, int64_t len,
                      float *dk, gated_ws *w)
{
    const int64_t d = s->d, ch = s->chunk;
    (void)k;
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const float *bn = w->b + t0 * d;
        for (int64_t t = t0; t < t1; t++)
            for (int64_t c = 0; c < d; c++)
                w->qe[(t - t0) * d + c] = w->qs[t * d + c] * expf(w->b[t * d + c] - bn[c]);
        for (int64_t u = 0; u < t0; u++) {
            float *gk = dk + (c0 + u) * d;
            memset(w->e2, 0, sizeof(float) * (size_t)d);
            mmi_attn_matrow_acc(t1 - t0, d, w->at + u * ch + t0, w->qe, d, w->e2);
            for (int64_t c = 0; c < d; c++) gk[c] += w->e2[c] * expf(bn[c] - w->b[u * d + c]);
        }
        for (int64_t u = t0; u < t1; u++) {
            float *gk = dk + (c0 + u) * d;
            for (int64_t t = u; t < t1; t++) {
                const float x = w->dvm[t * ch + u];
                for (int64_t c = 0; c < d; c++)
                    gk[c] += x * w->qs[t * d + c] * expf(w->b[t * d + c] - w->b[u * d + c]);
            }
        }
    }
}

/* dq_t = e^{b_t} (S0 do_t) + e^{b_t - b_n} (DV ke) + elementwise pairs inside the sub-chunk. */
static void vector_dq(const mmi_attn_dims *s, const float *k, const float *dout, int64_t c0,
                      int64_t len, const float *st0, float *dq, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const float *bn = w->b + t0 * d;
        for (int64_t u = 0; u < t0; u++)
            for (int64_t c = 0; c < d; c++)
                w->ke[u * d + c] = k[(c0 + u) * d + c] * expf(bn[c] - w->b[u * d + c]);
        for (int64_t t = t0; t < t1; t++) {
            float *gq = dq + (c0 + t) * d;
            const float *bt = w->b + t * d;
            mmi_attn_state_step(d, dvw, NULL, NULL, (float *)st0, dvw, dout + (c0 + t) * dvw,
                                w->tmp, NULL, NULL);
            memset(w->e2, 0, sizeof(float) * (size_t)d);
            if (t0 > 0) mmi_attn_matrow_acc(t0, d, w->dvm + t * ch, w->ke, d, w->e2);
            for (int64_t c = 0; c < d; c++)
                gq[c] = w->tmp[c] * expf(bt[c]) + w->e2[c] * expf(bt[c] - bn[c]);
            for (int64_t u = t0; u <= t; u++) {
                const float x = w->dvm[t * ch + u];
                for (int64_t c = 0; c < d; c++)
                    gq[c] += x * k[(c0 + u) * d + c] * expf(bt[c] - w->b[u * d + c]);
            }
        }
    }
}

/* Vector gates: DV and A with their transposes, then dv, dk, dq by sub-chunks. */
static void chunk_bwd_vector(const mmi_attn_dims *s, const float *k, const float *v,
                             const float *dout, int64_t c0, int64_t len, const float *st0,
                             float *dq, float *dk, float *dv, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    const float *bl = w->b + (len - 1) * d;
    chunk_t(v, dvw, c0, len, ch, w->vt);
    for (int64_t t = 0; t < len; t++) { /* DV[t][u] = do_t . v_u, DV^T in at, A^T in wt */
        mmi_attn_rowmat(t + 1, dvw, dout + (c0 + t) * dvw, w->vt, ch, 1.0f, w->dvm + t * ch);
        for (int64_t u = 0; u <= t; u++) {
            w->at[u * ch + t] = w->dvm[t * ch + u];
            w->wt[u * ch + t] = w->a[t * ch + u];
        }
    }
    for (int64_t u = 0; u < len; u++) { /* dv_u and the state term of dk_u */
        float *gv = dv + (c0 + u) * dvw, *gk = dk + (c0 + u) * d;
        const float *bu = w->b + u * d;
        memset(gv, 0, sizeof(float) * (size_t)dvw);
        mmi_attn_matrow_acc(len - u, dvw, w->wt + u * ch + u, dout + (c0 + u) * dvw, dvw, gv);
        for (int64_t c = 0; c < d; c++) w->e1[c] = k[(c0 + u) * d + c] * expf(bl[c] - bu[c]);
        mmi_attn_state_step(d, dvw, NULL, NULL, w->ds, dvw, v + (c0 + u) * dvw, w->tmp, w->e1, gv);
        for (int64_t c = 0; c < d; c++) gk[c] = w->tmp[c] * expf(bl[c] - bu[c]);
    }
    vector_dk(s, k, c0, len, dk, w);
    vector_dq(s, k, dout, c0, len, st0, dq, w);
    chunk_ds(s, dout, c0, len, w);
}

/* Gradients of one chunk given the entry state st0 and the state gradient ds (updated in place
 * to the gradient of st0). dq holds dq_s w.r.t. the scaled queries until the caller rescales. */
static void chunk_bwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                      const float *k, const float *v, const float *dout, int64_t c0, int64_t len,
                      const float *st0, float *dq, float *dk, float *dv, gated_ws *w)
{
    chunk_prep(s, gmode, g, q, k, c0, len, w);
    if (gmode != 3) chunk_bwd_scalar(s, gmode, k, v, dout, c0, len, st0, dq, dk, dv, w);
    else chunk_bwd_vector(s, k, v, dout, c0, len, st0, dq, dk, dv, w);
}

/* dg from dB_t = qs_t . dqs_t - k_t . dk_t, reverse-cumulated over the whole sequence. */
static void gate_grad(const mmi_attn_dims *s, int gmode, const float *q, const float *k,
                      const float *dq, const float *dk, float *dg)
{
    const int64_t d = s->d, nk = gmode == 3 ? d : 1;
    for (int64_t c = 0; c < nk; c++) {
        double acc = 0.0;
        for (int64_t t = s->n - 1; t >= 0; t--) {
            double db = 0.0;
            for (int64_t e = (gmode == 3 ? c : 0); e < (gmode == 3 ? c + 1 : d); e++)
                db += (double)s->scale * q[t * d + e] * dq[t * d + e] -
                      (double)k[t * d + e] * dk[t * d + e];
            acc += db;
            dg[t * nk + c] = (float)acc;
        }
    }
}

void mmi_attn_gated_bwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, const float *dout, float *dq,
                        float *dk, float *dv, float *dg, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->n == s->m && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(gmode >= 0 && gmode <= 3 && (gmode == 0 || g) && q && k && v && dout && ws);
    MMI_ASSERT(dq && dk && dv && (gmode < 2 || dg));
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk, nch = (s->n + ch - 1) / ch;
    gated_ws w = split_ws(s->n, ch, d, dvw, ws);
    memset(w.states, 0, sizeof(float) * (size_t)(d * dvw));
    for (int64_t c = 0; c + 1 < nch; c++) { /* entry state of every chunk */
        float *nxt = w.states + (c + 1) * d * dvw;
        memcpy(nxt, w.states + c * d * dvw, sizeof(float) * (size_t)(d * dvw));
        gate_cumsum(gmode, g, c * ch, ch, d, w.b);
        chunk_state_update(s, k, v, c * ch, ch, nxt, &w);
    }
    memset(w.ds, 0, sizeof(float) * (size_t)(d * dvw));
    for (int64_t c = nch - 1; c >= 0; c--) {
        const int64_t len = s->n - c * ch < ch ? s->n - c * ch : ch;
        chunk_bwd(s, gmode, g, q, k, v, dout, c * ch, len, w.states + c * d * dvw, dq, dk, dv,
                  &w);
    }
    /* dq above is w.r.t. the scaled queries: q_s . dq_s = q . dq for the gate identity */
    if (dg && (gmode == 2 || gmode == 3)) gate_grad(s, gmode, q, k, dq, dk, dg);
    for (int64_t i = 0; i < s->n * d; i++) dq[i] *= s->scale;
}

void mmi_attn_gated_step(int64_t d, int64_t dv, float scale, const float *g, int64_t gate_len,
                         const float *q, const float *k, const float *v, float *st, float *o)
{
    MMI_ASSERT(d > 0 && dv > 0 && (!g || gate_len == 1 || gate_len == d));
    MMI_ASSERT(q && k && v && st && o);
    float qs[512];
    if (g)
        for (int64_t c = 0; c < d; c++) {
            const float f = expf(g[gate_len == 1 ? 0 : c]);
            for (int64_t e = 0; e < dv; e++) st[c * dv + e] *= f;
        }
    memset(o, 0, sizeof(float) * (size_t)dv);
    for (int64_t c0 = 0; c0 < d; c0 += 512) { /* scaled query in pieces: no workspace needed */
        const int64_t nc = d - c0 < 512 ? d - c0 : 512;
        for (int64_t c = 0; c < nc; c++) qs[c] = scale * q[c0 + c];
        mmi_attn_state_step(nc, dv, k + c0, v, st + c0 * dv, dv, NULL, NULL, qs, o);
    }
}
