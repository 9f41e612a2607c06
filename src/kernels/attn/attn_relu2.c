/* SPDX-License-Identifier: MIT */
/* attn_relu2.c — squared-ReLU attention of GAU / FLASH ("Transformer Quality in Linear Time")
 * with mixed chunk attention: quadratic relu(q k^T / C)^2 inside each chunk of C positions,
 * linear (unnormalised q^T sum k v^T) across chunks — an exclusive prefix of chunk states when
 * causal, one global state divided by n otherwise (lucidrains' FLASH). There is no row
 * normaliser, so the quadratic part tiles without any running statistics: 64-row query blocks
 * against 64-key blocks, the logits, A V, and in the backward dA = dO V^T, dV += A^T dO,
 * dQ += dS K, dK += dS^T Q as GEMM tiles on the micro-kernel (attn_tiles.c); the chunk states
 * and their gradients are tiles too. Blocks above the causal diagonal are skipped. */
#include "mmi_attn_kernels.h"

#include <string.h>

#define BC 64 /* keys per block */
#define BR 64 /* query rows per block */

size_t mmi_attn_relu2_ws_floats(int64_t chunk, int64_t d, int64_t dv)
{
    (void)chunk; /* the chunk is walked in key blocks of BC */
    /* kt, vt, two BR x BC tiles, the linear state and its transpose */
    return (size_t)((d + dv) * BC + 2 * BR * BC + 2 * d * dv + 16);
}

/* Chunk geometry. Chunks are s->chunk long (the last may be shorter; a chunk >= n is one
 * chunk). Causal scaling is 1/C for the configured C whatever n is (FLASH pads to a multiple
 * of C), so a prefix of the sequence gives the same outputs: streaming equals the forward. A
 * single non-causal chunk is GAU and divides by the key count m. */
static int64_t eff_chunk(const mmi_attn_dims *s) { return s->chunk < s->n ? s->chunk : s->n; }
static float quad_scale(const mmi_attn_dims *s)
{
    return (float)(1.0 / (double)(!s->causal && s->chunk >= s->n ? s->m : s->chunk));
}

static void transpose(const float *src, int64_t w, int64_t j0, int64_t bc, float *t)
{
    for (int64_t j = 0; j < bc; j++)
        for (int64_t c = 0; c < w; c++) t[c * BC + j] = src[(j0 + j) * w + c];
}

/* t[c * rows + r] = src[r * cols + c]: a state and its transpose (so products with it stay
 * untransposed). */
static void transpose_state(const float *src, int64_t rows, int64_t cols, float *t)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) t[c * rows + r] = src[r * cols + c];
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

/* The logits tile of rows [i0, i0 + br) against keys [j0, j0 + bc), relu'd (or squared) and
 * causally masked (j <= i) in place: t = relu(sc Q K^T). Returns 0 when the whole tile is
 * masked. */
static int relu_tile(const mmi_attn_dims *s, float sc, int64_t i0, int64_t br, int64_t j0,
                     int64_t bc, const float *q, const float *kt, float *t, int square)
{
    if (s->causal && i0 + br - 1 < j0) return 0;
    mmi_attn_tile_nn(br, bc, s->d, sc, q + i0 * s->d, s->d, kt, BC, 0.0f, t, BC);
    for (int64_t r = 0; r < br; r++)
        mmi_attn_relu_row(bc, s->causal ? i0 + r - j0 + 1 : bc, t + r * BC, square);
    return 1;
}

void mmi_attn_relu2_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        float *o, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(q && k && v && o && ws);
    const int64_t d = s->d, w = s->dv, ce = eff_chunk(s);
    const float sc = quad_scale(s);
    float *kt = ws, *t = kt + (d + w) * BC, *st = t + 2 * BR * BC;
    const int linear = s->causal || ce < s->n;
    memset(o, 0, sizeof(float) * (size_t)(s->n * w));
    memset(st, 0, sizeof(float) * (size_t)(d * w));
    if (linear && !s->causal) /* KV = sum_all k v^T / n */
        mmi_attn_tile_tn(d, w, s->m, (float)(1.0 / (double)s->n), k, d, v, w, st, w);
    for (int64_t c0 = 0; c0 < s->n; c0 += ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        int64_t k0, k1;
        chunk_keys(s, c0, c1, &k0, &k1);
        for (int64_t j0 = k0; j0 < k1; j0 += BC) {
            const int64_t bc = k1 - j0 < BC ? k1 - j0 : BC;
            transpose(k, d, j0, bc, kt);
            for (int64_t i0 = c0; i0 < c1; i0 += BR) {
                const int64_t br = c1 - i0 < BR ? c1 - i0 : BR;
                if (!relu_tile(s, sc, i0, br, j0, bc, q, kt, t, 1)) continue; /* A */
                mmi_attn_tile_nn(br, w, bc, 1.0f, t, BC, v + j0 * w, w, 1.0f, o + i0 * w, w);
            }
        }
        /* causal: the state holds chunks before this one only, so the first chunk reads a
         * zero state (skipped: adding its zero products leaves o as it is) and the last
         * chunk's state is never read (not formed) */
        if (linear && (!s->causal || c0 > 0))
            mmi_attn_tile_nn(c1 - c0, w, d, 1.0f, q + c0 * d, d, st, w, 1.0f, o + c0 * w, w);
        if (s->causal && c1 < s->n)
            mmi_attn_tile_tn(d, w, c1 - c0, (float)(1.0 / (double)s->chunk), k + c0 * d, d,
                             v + c0 * w, w, st, w);
    }
}

/* Quadratic part of the backward for one chunk: dq, dk, dv accumulate. Per tile, t holds
 * R = relu(S) and then A = R^2 (for dV += A^T dO); u holds dA = dO V^T and then
 * dS = 2 R dA sc (for dQ += dS K and dK += dS^T Q). */
static void bwd_quad(const mmi_attn_dims *s, float sc, int64_t c0, int64_t c1, const float *q,
                     const float *k, const float *v, const float *dout, float *dq, float *dk,
                     float *dv, float *ws)
{
    const int64_t d = s->d, w = s->dv;
    float *kt = ws, *vt = kt + d * BC, *t = vt + w * BC, *u = t + BR * BC;
    int64_t k0, k1;
    chunk_keys(s, c0, c1, &k0, &k1);
    for (int64_t j0 = k0; j0 < k1; j0 += BC) {
        const int64_t bc = k1 - j0 < BC ? k1 - j0 : BC;
        transpose(k, d, j0, bc, kt);
        transpose(v, w, j0, bc, vt);
        for (int64_t i0 = c0; i0 < c1; i0 += BR) {
            const int64_t br = c1 - i0 < BR ? c1 - i0 : BR;
            if (!relu_tile(s, sc, i0, br, j0, bc, q, kt, t, 0)) continue;
            mmi_attn_tile_nn(br, bc, w, 1.0f, dout + i0 * w, w, vt, BC, 0.0f, u, BC);
            for (int64_t r = 0; r < br; r++)
                mmi_attn_relu_ds_row(bc, t + r * BC, u + r * BC, 2.0f * sc);
            mmi_attn_tile_tn(bc, w, br, 1.0f, t, BC, dout + i0 * w, w, dv + j0 * w, w);
            mmi_attn_tile_nn(br, d, bc, 1.0f, u, BC, k + j0 * d, d, 1.0f, dq + i0 * d, d);
            mmi_attn_tile_tn(bc, d, br, 1.0f, u, BC, q + i0 * d, d, dk + j0 * d, d);
        }
    }
}

/* The linear part's gradients over rows [c0, c1): dq += dO st^T (stt = st^T), and from the
 * gradient g of the state (gt = g^T) dk += f V g^T, dv += f K g. */
static void bwd_lin_q(const mmi_attn_dims *s, int64_t c0, int64_t c1, const float *st, float *stt,
                      const float *dout, float *dq)
{
    transpose_state(st, s->d, s->dv, stt);
    mmi_attn_tile_nn(c1 - c0, s->d, s->dv, 1.0f, dout + c0 * s->dv, s->dv, stt, s->d, 1.0f,
                     dq + c0 * s->d, s->d);
}

static void bwd_lin_kv(const mmi_attn_dims *s, int64_t c0, int64_t c1, float f, const float *g,
                       float *gt, const float *k, const float *v, float *dk, float *dv)
{
    const int64_t d = s->d, w = s->dv;
    transpose_state(g, d, w, gt);
    mmi_attn_tile_nn(c1 - c0, d, w, f, v + c0 * w, w, gt, d, 1.0f, dk + c0 * d, d);
    mmi_attn_tile_nn(c1 - c0, w, d, f, k + c0 * d, d, g, w, 1.0f, dv + c0 * w, w);
}

void mmi_attn_relu2_bwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                        const float *dout, float *dq, float *dk, float *dv, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(q && k && v && dout && dq && dk && dv && ws);
    const int64_t d = s->d, w = s->dv, ce = eff_chunk(s);
    const float sc = quad_scale(s);
    float *st = ws + (d + w) * BC + 2 * BR * BC, *stt = st + d * w;
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
        mmi_attn_tile_tn(d, w, s->m, f, k, d, v, w, st, w);
        bwd_lin_q(s, 0, s->n, st, stt, dout, dq);
        memset(st, 0, sizeof(float) * (size_t)(d * w)); /* now G = sum q dO^T */
        mmi_attn_tile_tn(d, w, s->n, 1.0f, q, d, dout, w, st, w);
        bwd_lin_kv(s, 0, s->m, f, st, stt, k, v, dk, dv);
        return;
    }
    /* causal: forward over chunks for dq (prefix state), then backward for dk, dv. As in the
     * forward, products with a state that is still zero (the first chunk's prefix, the last
     * chunk's suffix) add nothing and states no chunk reads are not formed. */
    const float f = (float)(1.0 / (double)s->chunk);
    for (int64_t c0 = 0; c0 < s->n; c0 += ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        if (c0 > 0) bwd_lin_q(s, c0, c1, st, stt, dout, dq);
        if (c1 < s->n) mmi_attn_tile_tn(d, w, c1 - c0, f, k + c0 * d, d, v + c0 * w, w, st, w);
    }
    memset(st, 0, sizeof(float) * (size_t)(d * w)); /* G: sum over later chunks of q dO^T */
    for (int64_t c0 = ((s->n - 1) / ce) * ce; c0 >= 0; c0 -= ce) {
        const int64_t c1 = c0 + ce < s->n ? c0 + ce : s->n;
        if (c1 < s->n) bwd_lin_kv(s, c0, c1, f, st, stt, k, v, dk, dv);
        if (c0 > 0)
            mmi_attn_tile_tn(d, w, c1 - c0, 1.0f, q + c0 * d, d, dout + c0 * w, w, st, w);
    }
}
