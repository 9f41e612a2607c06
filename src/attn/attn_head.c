/* SPDX-License-Identifier: MIT */
/* attn_head.c — one (batch, head) of any attention kind: workspace sizing, forward, backward
 * and a dense forward-mode derivative, plus the FAVOR+ projection draw. The operator and the
 * model's attention block both call these, so each kind is wired to its kernels once. */
#include "mmi_attn_head.h"

#include <math.h>
#include <string.h>

static int is_feat(const mmi_attn_head *a)
{
    return a->kind == MM_ATTN_LINEAR || a->kind == MM_ATTN_PERFORMER;
}

/* Checked sums and products (mmi_sz_*): an overflow gives SIZE_MAX, which no reservation
 * accepts, instead of a wrapped small size. */
size_t mmi_attn_head_ws_floats(const mmi_attn_head *a, int64_t n)
{
    const int64_t d = a->s.d, dv = a->s.dv;
    int64_t k;
    switch (a->kind) {
    case MM_ATTN_SOFTMAX:
    case MM_ATTN_SPARSE:
        k = mmi_sz_of(mmi_attn_softmax_ws_floats(n, d, dv));
        break;
    case MM_ATTN_LINEAR:
    case MM_ATTN_PERFORMER: /* kernel, FAVOR+ row buffers, then feature gradients of q and k */
        k = mmi_sz_add(mmi_sz_add(a->nf, d), mmi_sz_add(mmi_sz_mul(mmi_sz_mul(2, n), a->nf), 32));
        k = mmi_sz_add(mmi_sz_of(mmi_attn_linear_ws_floats(n, a->nf, dv)), k);
        break;
    case MM_ATTN_RELU2:
        k = mmi_sz_of(mmi_attn_relu2_ws_floats(a->s.chunk, d, dv));
        break;
    case MM_ATTN_RWKV6:
        k = mmi_sz_of(mmi_attn_rwkv6_ws_floats(n, a->s.chunk, d, dv));
        break;
    default:
        k = mmi_sz_of(mmi_attn_gated_ws_floats(n, a->s.chunk, d, dv));
        break;
    }
    return mmi_sz_to(k);
}

/* The dims the linear kernel sees: features instead of raw keys. */
static mmi_attn_dims feat_dims(const mmi_attn_head *a)
{
    mmi_attn_dims s = a->s;
    s.d = a->nf;
    s.window = s.stride = 0;
    return s;
}

/* The contract of every head call: sizes validated by mm_attn_create / the model builder, the
 * inputs and the workspace present. */
static int head_ok(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                   const float *ws)
{
    const mmi_attn_dims *s = &a->s;
    return s->n >= 1 && s->m >= 1 && s->d >= 1 && s->dv >= 1 && q && k && v && ws &&
           (a->kind != MM_ATTN_PERFORMER || (a->proj && a->projt && a->nf >= 1));
}

void mmi_attn_head_fwd_keep(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                            const float *g, const mmi_attn_keep *keep, float *o, float *ws)
{
    MMI_ASSERT(head_ok(a, q, k, v, ws) && o && keep);
    MMI_ASSERT(a->kind == MM_ATTN_GATED || a->kind == MM_ATTN_RWKV6);
    if (a->kind == MM_ATTN_GATED)
        mmi_attn_gated_fwd_keep(&a->s, a->gmode, g, q, k, v, keep, NULL, o, a->hs, ws);
    else
        mmi_attn_rwkv6_fwd_keep(&a->s, g, a->u, q, k, v, keep, o, a->hs, ws);
}

void mmi_attn_head_fwd(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, float *fq, float *fk, float *o, float *row, float *stab,
                       float *ws)
{
    const mmi_attn_dims *s = &a->s;
    MMI_ASSERT(head_ok(a, q, k, v, ws) && o);
    switch (a->kind) {
    case MM_ATTN_SOFTMAX:
    case MM_ATTN_SPARSE:
        mmi_attn_softmax_fwd(s, q, k, v, o, row, ws);
        return;
    case MM_ATTN_RELU2:
        mmi_attn_relu2_fwd(s, q, k, v, o, ws);
        return;
    case MM_ATTN_GATED:
        mmi_attn_gated_fwd(s, a->gmode, g, q, k, v, o, a->hs, ws);
        return;
    case MM_ATTN_RWKV6:
        mmi_attn_rwkv6_fwd(s, g, a->u, q, k, v, o, a->hs, ws);
        return;
    default:
        break;
    }
    {
        const mmi_attn_dims ls = feat_dims(a);
        if (a->kind == MM_ATTN_PERFORMER) {
            float *fws = ws + mmi_attn_linear_ws_floats(s->n, a->nf, s->dv);
            /* Keys share one stabiliser so it cancels in the normalised attention (up to
             * eps). Non-causal: the max over all keys (performer-pytorch). Causal: the first
             * key's, so no position depends on later keys and streaming equals the forward. */
            *stab = mmi_attn_favor_max(k, s->causal ? 1 : s->m, s->d, a->projt, a->nf, fws);
            mmi_attn_favor_fwd(q, s->n, s->d, a->projt, a->nf, a->feps, 0, 0.0f, fq, fws);
            mmi_attn_favor_fwd(k, s->m, s->d, a->projt, a->nf, a->feps, 1, *stab, fk, fws);
            mmi_attn_linear_fwd(&ls, a->normalize, a->eps, fq, fk, v, o, row, ws);
        } else { /* the map applied inside the kernel, chunk by chunk where it runs chunkwise */
            mmi_attn_linear_fwd_map(&ls, a->fmap, a->normalize, a->eps, q, k, fq, fk, v, o, row,
                                    ws);
        }
    }
}

void mmi_attn_head_fwd_linear_keep(const mmi_attn_head *a, const float *q, const float *k,
                                   const float *v, float *fq, float *fk, float *vk, float *o,
                                   float *ok, float *row, float *ws)
{
    const mmi_attn_dims ls = feat_dims(a);
    const mmi_attn_fmap_in in = {a->fmap, q, k, vk, ok};
    MMI_ASSERT(head_ok(a, q, k, v, ws) && a->kind == MM_ATTN_LINEAR && fq && fk && o && row);
    mmi_attn_linear_fwd_io(&ls, &in, a->normalize, a->eps, fq, fk, v, o, row, ws);
}

void mmi_attn_head_bwd(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, const float *fq, const float *fk, const float *o,
                       const float *row, const float *dout, float *dq, float *dk, float *dv,
                       float *dg, float *ws)
{
    const mmi_attn_dims *s = &a->s;
    MMI_ASSERT(head_ok(a, q, k, v, ws) && dout && dq && dk && dv); /* all three required */
    switch (a->kind) {
    case MM_ATTN_SOFTMAX:
    case MM_ATTN_SPARSE:
        mmi_attn_softmax_bwd(s, q, k, v, o, row, dout, dq, dk, dv, ws);
        return;
    case MM_ATTN_RELU2:
        mmi_attn_relu2_bwd(s, q, k, v, dout, dq, dk, dv, ws);
        return;
    case MM_ATTN_GATED:
        mmi_attn_gated_bwd(s, a->gmode, g, q, k, v, dout, dq, dk, dv, dg, a->hs, ws);
        return;
    case MM_ATTN_RWKV6:
        mmi_attn_rwkv6_bwd(s, g, a->u, q, k, v, dout, dq, dk, dv, dg, a->du, a->hs, ws);
        return;
    default:
        break;
    }
    {
        const mmi_attn_dims ls = feat_dims(a);
        float *fws = ws + mmi_attn_linear_ws_floats(s->n, a->nf, s->dv);
        float *tq = fws + a->nf + s->d, *tk = tq + s->n * a->nf;
        if (a->kind == MM_ATTN_PERFORMER) {
            mmi_attn_linear_bwd(&ls, a->normalize, fq, fk, v, o, row, dout, tq, tk, dv, ws);
            mmi_attn_favor_bwd(q, s->n, s->d, a->proj, a->nf, a->feps, fq, tq, dq, fws);
            mmi_attn_favor_bwd(k, s->m, s->d, a->proj, a->nf, a->feps, fk, tk, dk, fws);
        } else { /* the map's backward inside the kernel, chunk by chunk where it runs chunkwise */
            mmi_attn_linear_bwd_map(&ls, a->fmap, a->normalize, fq, fk, v, o, row, dout, dq, dk, dv,
                                    tq, tk, ws);
        }
    }
}

/* ---- dense forward-mode derivative ----------------------------------------------------------- */
size_t mmi_attn_head_jvp_ws_floats(const mmi_attn_head *a, int64_t n)
{
    /* features and their tangents for queries and keys, then the gate cumsum (n x d) */
    const int64_t w = a->nf > a->s.d ? a->nf : a->s.d;
    return mmi_sz_to(mmi_sz_add(
        mmi_sz_add(mmi_sz_mul(mmi_sz_mul(4, n), w), mmi_sz_mul(mmi_sz_mul(2, n), a->s.d)), 16));
}

/* Features y and their tangents ty of rows x with tangents tx (elementwise maps or FAVOR+). */
static void feat_tangent(const mmi_attn_head *a, const float *x, const float *tx, int64_t rows,
                         int is_key, float stab, float *y, float *ty)
{
    const int64_t d = a->s.d, nf = a->nf;
    if (a->kind == MM_ATTN_LINEAR) {
        for (int64_t i = 0; i < rows * d; i++) {
            const double xi = x[i];
            const double f = a->fmap == MM_FMAP_ELU1   ? (xi > 0 ? xi + 1 : exp(xi))
                             : a->fmap == MM_FMAP_RELU ? (xi > 0 ? xi : 0)
                                                       : xi;
            const double df = a->fmap == MM_FMAP_ELU1   ? (xi > 0 ? 1 : exp(xi))
                              : a->fmap == MM_FMAP_RELU ? (xi > 0 ? 1 : 0)
                                                        : 1;
            y[i] = (float)f;
            ty[i] = (float)(df * tx[i]);
        }
        return;
    }
    {
        const double c = pow((double)d, -0.25), e0 = a->feps / sqrt((double)nf);
        for (int64_t i = 0; i < rows; i++) {
            const float *xi = x + i * d, *ti = tx + i * d;
            double diag = 0, xt = 0, st = stab;
            for (int64_t e = 0; e < d; e++)
                diag += 0.5 * c * c * xi[e] * xi[e], xt += xi[e] * ti[e];
            if (!is_key) {
                st = -INFINITY;
                for (int64_t r = 0; r < nf; r++) {
                    double u = 0;
                    for (int64_t e = 0; e < d; e++) u += c * a->proj[r * d + e] * xi[e];
                    st = u > st ? u : st;
                }
            }
            for (int64_t r = 0; r < nf; r++) {
                double u = 0, wt = 0;
                for (int64_t e = 0; e < d; e++) {
                    u += c * a->proj[r * d + e] * xi[e];
                    wt += a->proj[r * d + e] * ti[e];
                }
                const double f = (exp(u - diag - st) + a->feps) / sqrt((double)nf);
                y[i * nf + r] = (float)f;
                ty[i * nf + r] = (float)((f - e0) * (c * wt - c * c * xt));
            }
        }
    }
}

/* Weight w and its tangent dw of the pair (i, j) for the non-feature kinds; 0 when invisible. */
static void pair_w(const mmi_attn_head *a, int64_t i, int64_t j, const float *q, const float *k,
                   const float *tq, const float *tk, const double *bc, double *w, double *dw)
{
    const mmi_attn_dims *s = &a->s;
    const int64_t d = s->d;
    const float *qi = q + i * d, *kj = k + j * d, *ti = tq + i * d, *tj = tk + j * d;
    double qk = 0, dqk = 0;
    *w = *dw = 0;
    if (a->kind == MM_ATTN_GATED) {
        if (j > i) return;
        for (int64_t c = 0; c < d; c++) {
            const double e = exp(bc[i * d + c] - bc[j * d + c]) * s->scale;
            qk += qi[c] * kj[c] * e;
            dqk += (ti[c] * kj[c] + qi[c] * tj[c]) * e;
        }
        *w = qk, *dw = dqk;
        return;
    }
    for (int64_t c = 0; c < d; c++)
        qk += (double)qi[c] * kj[c], dqk += (double)ti[c] * kj[c] + (double)qi[c] * tj[c];
    if (a->kind != MM_ATTN_RELU2) { /* softmax logits; caller exponentiates */
        if (!mmi_attn_visible(s, i, j)) {
            *w = -INFINITY;
            return;
        }
        *w = s->scale * qk, *dw = s->scale * dqk;
        return;
    }
    {
        const int single = !s->causal && s->chunk >= s->n;
        const double sc = 1.0 / (double)(single ? s->m : s->chunk);
        const int same = single || i / s->chunk == j / s->chunk;
        if (same && !(s->causal && j > i)) {
            const double x = qk * sc;
            if (x > 0) *w = x * x, *dw = 2 * x * dqk * sc;
        }
        if (!single && !s->causal) *w += qk / s->n, *dw += dqk / s->n;
        if (s->causal && j / s->chunk < i / s->chunk) *w = qk / s->chunk, *dw = dqk / s->chunk;
    }
}

/* Cumulative log-gates B [n, d] (float64) for the dense gated form. */
static void gate_cum(const mmi_attn_head *a, const float *g, double *bc)
{
    const int64_t d = a->s.d;
    for (int64_t c = 0; c < d; c++) {
        double acc = 0;
        for (int64_t t = 0; t < a->s.n; t++) {
            acc += a->gmode == 1 ? g[0] : a->gmode == 2 ? g[t] : a->gmode == 3 ? g[t * d + c] : 0.0;
            bc[t * d + c] = acc;
        }
    }
}

void mmi_attn_head_jvp(const mmi_attn_head *a, const float *q, const float *k, const float *v,
                       const float *g, float stab, const float *tq, const float *tk,
                       const float *tv, float *to, float *ws)
{
    const mmi_attn_dims *s = &a->s;
    const int64_t dv = s->dv, nf = a->nf, wmax = nf > s->d ? nf : s->d;
    const int soft = a->kind == MM_ATTN_SOFTMAX || a->kind == MM_ATTN_SPARSE;
    const int norm = soft || (is_feat(a) && a->normalize);
    float *fq = ws, *tfq = fq + s->n * wmax, *fk = tfq + s->n * wmax, *tfk = fk + s->n * wmax;
    double *bc = (double *)(void *)(ws + (((size_t)(4 * s->n * wmax) + 1) & ~(size_t)1));
    MMI_ASSERT(head_ok(a, q, k, v, ws) && tq && tk && tv && to);
    if (is_feat(a)) {
        feat_tangent(a, q, tq, s->n, 0, stab, fq, tfq);
        feat_tangent(a, k, tk, s->m, 1, stab, fk, tfk);
    }
    if (a->kind == MM_ATTN_GATED) gate_cum(a, g, bc);
    for (int64_t i = 0; i < s->n; i++) {
        double mx = -INFINITY, z = is_feat(a) ? a->eps : 0.0, dz = 0.0;
        double acc[1024], dacc[1024]; /* dv <= 1024 in the model block (checked at setup) */
        for (int64_t e = 0; e < dv; e++) acc[e] = dacc[e] = 0;
        if (soft)
            for (int64_t j = 0; j < s->m; j++) {
                double w, dw;
                pair_w(a, i, j, q, k, tq, tk, bc, &w, &dw);
                mx = w > mx ? w : mx;
            }
        for (int64_t j = 0; j < s->m; j++) {
            double w = 0, dw = 0;
            if (is_feat(a)) {
                if (s->causal && j > i + s->m - s->n) continue;
                for (int64_t r = 0; r < nf; r++) {
                    w += (double)fq[i * nf + r] * fk[j * nf + r];
                    dw += (double)tfq[i * nf + r] * fk[j * nf + r] +
                          (double)fq[i * nf + r] * tfk[j * nf + r];
                }
            } else {
                pair_w(a, i, j, q, k, tq, tk, bc, &w, &dw);
                if (soft) {
                    if (w == -INFINITY) continue;
                    w = exp(w - mx);
                    dw *= w;
                }
            }
            z += w, dz += dw;
            for (int64_t e = 0; e < dv; e++) {
                acc[e] += w * v[j * dv + e];
                dacc[e] += dw * v[j * dv + e] + w * tv[j * dv + e];
            }
        }
        for (int64_t e = 0; e < dv; e++) {
            if (!norm)
                to[i * dv + e] = (float)dacc[e];
            else if (z == 0.0 || (soft && mx == -INFINITY))
                to[i * dv + e] = 0.0f;
            else
                to[i * dv + e] = (float)((dacc[e] - acc[e] / z * dz) / z);
        }
    }
}

void mmi_attn_draw_projection(mmi_rng *rng, int64_t d, int64_t nf, float *w, double *work)
{
    double *q = work, *tmp = work + d * d;
    MMI_ASSERT(d >= 1 && nf >= 1 && w && work);
    for (int64_t r0 = 0; r0 < nf; r0 += d) {
        const int64_t rows = nf - r0 < d ? nf - r0 : d;
        mmi_rng_orthogonal(rng, q, d, d, tmp);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < d; c++) w[(r0 + r) * d + c] = (float)q[r * d + c];
    }
    for (int64_t r = 0; r < nf; r++) {
        double sq = 0.0;
        for (int64_t c = 0; c < d; c++) {
            const double x = mmi_rng_normal(rng);
            sq += x * x;
        }
        for (int64_t c = 0; c < d; c++) w[r * d + c] *= (float)sqrt(sq);
    }
}
