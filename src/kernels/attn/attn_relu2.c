/* SPDX-License-Identifier: MIT */
/* attn_relu2.c — squared-ReLU attention of GAU / FLASH ("Transformer Quality in Linear Time")
 * with mixed chunk attention: quadratic relu(q k^T / C)^2 inside each chunk of C positions,
 * linear (unnormalised q^T sum k v^T) across chunks — an exclusive prefix of chunk states when
 * causal, one global state divided by n otherwise (lucidrains' FLASH). There is no row
 * normaliser, so the quadratic part tiles without any running statistics; the backward
 * recomputes each tile. */
#include "mmi_attn_kernels.h"

#include <string.h>

#define BC 64
#define BR 16 /* query rows per backward tile */

size_t mmi_attn_relu2_ws_floats(int64_t chunk, int64_t d, int64_t dv)
{
    (void)chunk; /* the chunk is walked in key blocks of BC */
    /* kt, vt, four row vectors, the linear state, small vectors, then the backward's three
     * BR x BC tiles (dS rows, A^T, dS^T) */
    return (size_t)((d + dv) * BC + 4 * BC + d * dv + 2 * d + dv + 32 + 3 * BR * BC);
}

/* Chunk geometry. Chunks are s->chunk long (the last may be shorter; a chunk >= n is one
 * chunk). Causal scaling is 1/C for the configured C whatever n is (FLASH pads to a multiple
 * of C), so a prefix of the sequence gives the same outputs: streaming equals the forward. A
 * single non-causal chunk is GAU and divides by the key count m. */
static int64_t eff_chunk(const mmi_attn_dims *s)
{
    return s->chunk < s->n ? s->chunk : s->n;
}
static float quad_scale(const mmi_attn_dims *s)
{
    return (float)(1.0 / (double)(!s->causal && s->chunk >= s->n ? s->m : s->chunk));
}

static void transpose(const float *src, int64_t w, int64_t j0, int64_t bc, float *t)
{
    for (int64_t j = 0; j < bc; j++)
        for (int64_t c = 0; c < w; c++) t[c * BC + j] = src[(j0 + j) * w + c];
}

/* Logits of row i against keys [j0, j0 + bc), relu'd (causal: j <= i). Returns 0 when the
 * whole row is masked. r receives relu(s), a receives relu(s)^2. */
static int relu_row(const mmi_attn_dims *s, float sc, int64_t i, int64_t j0, int64_t bc,
                    const float *q, const float *kt, float *r, float *a)
{
    int64_t lim = bc;
    if (s->causal) {
        if (i < j0) return 0;
        if (i - j0 + 1 < lim) lim = i - j0 + 1;
    }
    mmi_attn_rowmat(bc, s->d, q + i * s->d, kt, BC, sc, r);
    for (int64_t j = 0; j < bc; j++) {
        const float x = j < lim && r[j] > 0.0f ? r[j] : 0.0f;
        r[j] = x;
        a[j] = x * x;
    }
    return 1;
}

/* Key range of chunk g and its rows: [c0, c1) (a single non-causal chunk takes all m keys). */
static void chunk_keys(const mmi_attn_dims *s, int64_t c0, int64_t c1, int64_t *k0, int64_t *k1)
{
    if (!s->causal && eff_chunk(s) >= s->n) {
        *k0 = 0;
        *k1 = s->m;
    } else {
        *k0 = c0;
        *k1 = c1;
    }
}

/* Accumulates st += sum_j k_j v_j^T * f over keys [j0, j1). */
static void add_kv(const mmi_attn_dims *s, const float *k, const float *v, int64_t j0, int64_t j1,
                   float f, float *st, float *ks)
{
    for (int64_t j = j0; j < j1; j++) {
        for (int64_t c = 0; c < s->d; c++) ks[c] = k[j * s->d + c] * f;
        mmi_attn_state_step(s->d, s->dv, ks, v + j * s->dv, st, s->dv, NULL, NULL, NULL, NULL);
    }
}

void mmi_attn_relu2_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        float *o, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(q && k && v && o && ws);
    const int64_t d = s->d, w = s->dv, ce = eff_chunk(s);
    const float sc = quad_scale(s);
    float *kt = ws, *r = kt + (d + w) * BC, *a = r + BC, *st = a + 3 * BC, *ks = st + d * w;
    const int linear = s->causal || ce < s->n;
    memset(o, 0, sizeof(float) * (size_t)(s->n * w));
    memset(st, 0, sizeof(float) * (size_t)(d * w));
    if (linear && !s->causal) add_kv(s, k, v, 0, s->m, (float)(1.0 / (double)s->n), st, ks);
    for (int64_t c0 = 0; c0 < s->n; c0 += ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        int64_t k0, k1;
        chunk_keys(s, c0, c1, &k0, &k1);
        for (int64_t j0 = k0; j0 < k1; j0 += BC) {
            const int64_t bc = k1 - j0 < BC ? k1 - j0 : BC;
            transpose(k, d, j0, bc, kt);
            for (int64_t i = c0; i < c1; i++)
                if (relu_row(s, sc, i, j0, bc, q, kt, r, a))
                    mmi_attn_matrow_acc(bc, w, a, v + j0 * w, w, o + i * w);
        }
        if (linear) /* causal: the state holds chunks before this one only */
            for (int64_t i = c0; i < c1; i++)
                mmi_attn_state_step(d, w, NULL, NULL, st, w, NULL, NULL, q + i * d, o + i * w);
        if (s->causal) add_kv(s, k, v, c0, c1, (float)(1.0 / (double)s->chunk), st, ks);
    }
}

/* Tiles of rows [i0, i0 + br) against keys [j0, j0 + bc): dS rows (ds [BR][BC]) for dQ, and
 * A and dS transposed (at, dst [BC][BR]) for dV and dK. Fully masked rows give zeros. */
static void quad_tile(const mmi_attn_dims *s, float sc, int64_t i0, int64_t br, int64_t j0,
                      int64_t bc, const float *q, const float *kt, const float *vt,
                      const float *dout, float *r, float *a, float *da, float *ds, float *at,
                      float *dst)
{
    for (int64_t k = 0; k < br; k++) {
        const int64_t i = i0 + k;
        float *dsr = ds + k * BC;
        if (!relu_row(s, sc, i, j0, bc, q, kt, r, a)) {
            memset(dsr, 0, sizeof(float) * BC);
            for (int64_t j = 0; j < bc; j++) at[j * BR + k] = dst[j * BR + k] = 0.0f;
            continue;
        }
        mmi_attn_rowmat(bc, s->dv, dout + i * s->dv, vt, BC, 1.0f, da);
        for (int64_t j = 0; j < bc; j++) {
            dsr[j] = 2.0f * r[j] * da[j] * sc;
            at[j * BR + k] = a[j];
            dst[j * BR + k] = dsr[j];
        }
    }
}

/* Quadratic part of the backward for one chunk: dq, dk, dv accumulate. Each key row's dK, dV
 * is summed in registers over a tile of BR query rows and stored once per tile. */
static void bwd_quad(const mmi_attn_dims *s, float sc, int64_t c0, int64_t c1, const float *q,
                     const float *k, const float *v, const float *dout, float *dq, float *dk,
                     float *dv, float *ws)
{
    const int64_t d = s->d, w = s->dv;
    float *kt = ws, *vt = kt + d * BC, *r = vt + w * BC, *a = r + BC, *da = a + BC;
    float *ds = ws + (d + w) * BC + 4 * BC + d * w + 2 * d + w + 32, *at = ds + BR * BC;
    float *dst = at + BR * BC;
    int64_t k0, k1;
    chunk_keys(s, c0, c1, &k0, &k1);
    for (int64_t j0 = k0; j0 < k1; j0 += BC) {
        const int64_t bc = k1 - j0 < BC ? k1 - j0 : BC;
        transpose(k, d, j0, bc, kt);
        transpose(v, w, j0, bc, vt);
        for (int64_t i0 = c0; i0 < c1; i0 += BR) {
            const int64_t br = c1 - i0 < BR ? c1 - i0 : BR;
            if (s->causal && i0 + br - 1 < j0) continue; /* the whole tile is masked */
            quad_tile(s, sc, i0, br, j0, bc, q, kt, vt, dout, r, a, da, ds, at, dst);
            for (int64_t x = 0; x < br; x++)
                mmi_attn_matrow_acc(bc, d, ds + x * BC, k + j0 * d, d, dq + (i0 + x) * d);
            for (int64_t j = 0; j < bc; j++) {
                mmi_attn_matrow_acc(br, w, at + j * BR, dout + i0 * w, w, dv + (j0 + j) * w);
                mmi_attn_matrow_acc(br, d, dst + j * BR, q + i0 * d, d, dk + (j0 + j) * d);
            }
        }
    }
}

/* dq_i += st dO_i for rows [i0, i1). */
static void dq_from_state(const mmi_attn_dims *s, int64_t i0, int64_t i1, const float *st,
                          const float *dout, float *dq, float *tmp)
{
    for (int64_t i = i0; i < i1; i++) {
        mmi_attn_state_step(s->d, s->dv, NULL, NULL, (float *)st, s->dv, dout + i * s->dv, tmp,
                            NULL, NULL);
        for (int64_t c = 0; c < s->d; c++) dq[i * s->d + c] += tmp[c];
    }
}

/* dk_j += f G v_j and dv_j += f G^T k_j for keys [j0, j1). */
static void dkv_from_state(const mmi_attn_dims *s, int64_t j0, int64_t j1, float f,
                           const float *g, const float *k, const float *v, float *dk, float *dv,
                           float *tmp, float *ks)
{
    for (int64_t j = j0; j < j1; j++) {
        for (int64_t c = 0; c < s->d; c++) ks[c] = k[j * s->d + c] * f;
        mmi_attn_state_step(s->d, s->dv, NULL, NULL, (float *)g, s->dv, v + j * s->dv, tmp, ks,
                            dv + j * s->dv);
        for (int64_t c = 0; c < s->d; c++) dk[j * s->d + c] += f * tmp[c];
    }
}

void mmi_attn_relu2_bwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        const float *dout, float *dq, float *dk, float *dv, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(q && k && v && dout && dq && dk && dv && ws);
    const int64_t d = s->d, w = s->dv, ce = eff_chunk(s);
    const float sc = quad_scale(s);
    float *st = ws + (d + w) * BC + 4 * BC, *tmp = st + d * w, *ks = tmp + d;
    const int linear = s->causal || ce < s->n;
    memset(dq, 0, sizeof(float) * (size_t)(s->n * d));
    memset(dk, 0, sizeof(float) * (size_t)(s->m * d));
    memset(dv, 0, sizeof(float) * (size_t)(s->m * w));
    for (int64_t c0 = 0; c0 < s->n; c0 += ce)
        bwd_quad(s, sc, c0, c0 + ce < s->n ? c0 + ce : s->n, q, k, v, dout, dq, dk, dv, ws);
    if (!linear) return;
    memset(st, 0, sizeof(float) * (size_t)(d * w));
    if (!s->causal) { /* o_i += q_i^T KV, KV = sum k v^T / n */
        const float f = (float)(1.0 / (double)s->n);
        add_kv(s, k, v, 0, s->m, f, st, ks);
        dq_from_state(s, 0, s->n, st, dout, dq, tmp);
        memset(st, 0, sizeof(float) * (size_t)(d * w));
        for (int64_t i = 0; i < s->n; i++)
            mmi_attn_state_step(d, w, q + i * d, dout + i * w, st, w, NULL, NULL, NULL, NULL);
        dkv_from_state(s, 0, s->m, f, st, k, v, dk, dv, tmp, ks);
        return;
    }
    /* causal: forward over chunks for dq (prefix state), then backward for dk, dv */
    for (int64_t c0 = 0; c0 < s->n; c0 += ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        dq_from_state(s, c0, c1, st, dout, dq, tmp);
        add_kv(s, k, v, c0, c1, (float)(1.0 / (double)s->chunk), st, ks);
    }
    memset(st, 0, sizeof(float) * (size_t)(d * w));
    for (int64_t c0 = ((s->n - 1) / ce) * ce; c0 >= 0; c0 -= ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        dkv_from_state(s, c0, c1, (float)(1.0 / (double)s->chunk), st, k, v, dk, dv, tmp, ks);
        for (int64_t i = c0; i < c1; i++)
            mmi_attn_state_step(d, w, q + i * d, dout + i * w, st, w, NULL, NULL, NULL, NULL);
    }
}
