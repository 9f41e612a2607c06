/* SPDX-License-Identifier: MIT */
/* attn_relu2.c — squared-ReLU attention of GAU / FLASH ("Transformer Quality in Linear Time")
 * with mixed chunk attention: quadratic relu(q k^T / C)^2 inside each chunk of C positions,
 * linear (unnormalised q^T sum k v^T) across chunks — an exclusive prefix of chunk states when
 * causal, one global state divided by n otherwise (lucidrains' FLASH). There is no row
 * normaliser, so the quadratic part tiles without any running statistics: 64-row query blocks
 * against 64-key blocks, the logits, A V, and in the backward dA = dO V^T, dV += A^T dO,
 * dQ += dS K, dK += dS^T Q as GEMM tiles on the micro-kernel (attn_tiles.c); the chunk states
 * and their gradients are tiles too. Blocks above the causal diagonal are skipped and blocks
 * on it run in pieces against their key prefix; products with a zero chunk state are not
 * formed. */
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

/* t[c * BC + j] = src[(j0 + j) * w + c]: a key or value block transposed (vector body). */
static void transpose(const float *src, int64_t w, int64_t j0, int64_t bc, float *t)
{
    mmi_attn_transpose(bc, w, src + j0 * w, w, t, BC);
}

/* t[c * rows + r] = src[r * cols + c]: a state and its transpose (so products with it stay
 * untransposed). */
static void transpose_state(const float *src, int64_t rows, int64_t cols, float *t)
{
    mmi_attn_transpose(rows, cols, src, cols, t, rows);
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

/* A causal tile on the diagonal (i0 == j0: chunks start on block boundaries, so every other
 * tile is wholly visible or wholly masked) is walked in row pieces of SB: piece r0 sees keys
 * [j0, j0 + r0 + h) only, so the products skip the zero staircase above the diagonal (at SB 16
 * they compute 10/16 of a 64 x 64 tile, whose visible part is about half; SB 16 ran 2-4 %
 * faster than 32 and 8, 12, 24 no faster, RELU2 fwd + bwd at N 512 on AVX2). Every element
 * keeps its FMA chain in order, less zero products at its ends, so the bits stay those of whole
 * tiles for finite inputs. Any other tile is one piece of all its rows and keys. */
#define SB 16

typedef struct piece {
    int64_t r0, h, nk; /* rows [r0, r0 + h) of the tile against its first nk keys */
} piece;

static int is_diag(const mmi_attn_dims *s, int64_t i0, int64_t j0) { return s->causal && i0 == j0; }

static piece piece_of(int diag, int64_t r0, int64_t br, int64_t bc)
{
    piece p;
    p.r0 = r0;
    p.h = diag && br - r0 > SB ? SB : br - r0;
    p.nk = diag ? r0 + p.h : bc;
    return p;
}

/* The logits of a piece, relu'd (or squared) and causally masked (j <= i) in place into its
 * rows of t: t = relu(sc Q K^T). */
static void relu_piece(const mmi_attn_dims *s, float sc, int64_t i0, int64_t j0, const piece *p,
                       const float *q, const float *kt, float *t, int square)
{
    float *tr = t + p->r0 * BC;
    mmi_attn_tile_nn(p->h, p->nk, s->d, sc, q + (i0 + p->r0) * s->d, s->d, kt, BC, 0.0f, tr, BC);
    for (int64_t r = 0; r < p->h; r++)
        mmi_attn_relu_row(p->nk, s->causal ? i0 + p->r0 + r - j0 + 1 : p->nk, tr + r * BC, square);
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
    if (s->m == 0) { /* otherwise each chunk's first key block writes its rows of o first */
        memset(o, 0, sizeof(float) * (size_t)(s->n * w));
        return;
    }
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
                const int diag = is_diag(s, i0, j0);
                if (s->causal && i0 + br - 1 < j0) continue; /* above the diagonal */
                for (int64_t r0 = 0, h; r0 < br; r0 += h) {  /* one piece unless diagonal */
                    const piece p = piece_of(diag, r0, br, bc);
                    h = p.h;
                    relu_piece(s, sc, i0, j0, &p, q, kt, t, 1); /* A */
                    /* the chunk's first key block writes o (every row sees it), no
                     * zeroing pass */
                    mmi_attn_tile_nn(p.h, w, p.nk, 1.0f, t + r0 * BC, BC, v + j0 * w, w,
                                     j0 == k0 ? 0.0f : 1.0f, o + (i0 + r0) * w, w);
                }
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

/* c [m, n] (rows n apart) = (set) or += a^T b, a [k, m] with rows BC apart, b [k, n]. */
static void tn_into(int set, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                    int64_t ldb, float *c)
{
    if (set)
        mmi_attn_tile_tn_set(m, n, k, 1.0f, a, BC, b, ldb, c, n);
    else
        mmi_attn_tile_tn(m, n, k, 1.0f, a, BC, b, ldb, c, n);
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
            const int diag = is_diag(s, i0, j0);
            if (s->causal && i0 + br - 1 < j0) continue; /* above the diagonal */
            for (int64_t r0 = 0, h; r0 < br; r0 += h) {  /* row pieces: R, dA, dS, dQ */
                const piece p = piece_of(diag, r0, br, bc);
                float *tr = t + r0 * BC, *ur = u + r0 * BC;
                h = p.h;
                relu_piece(s, sc, i0, j0, &p, q, kt, t, 0);
                mmi_attn_tile_nn(p.h, p.nk, w, 1.0f, dout + (i0 + r0) * w, w, vt, BC, 0.0f, ur, BC);
                for (int64_t r = 0; r < p.h; r++)
                    mmi_attn_relu_ds_row(p.nk, tr + r * BC, ur + r * BC, 2.0f * sc);
                mmi_attn_tile_nn(p.h, d, p.nk, 1.0f, ur, BC, k + j0 * d, d, j0 == k0 ? 0.0f : 1.0f,
                                 dq + (i0 + r0) * d, d);
            }
            /* key pieces: keys [j0 + c, j0 + c + hk) of a diagonal tile are seen by rows from
             * c on (the pieces above wrote no A or dS there). The first row block a key block
             * meets (the diagonal when causal) writes its dk, dv rows: no zeroing pass. */
            for (int64_t c = 0, hk; c < bc; c += hk) {
                const int64_t rb = diag ? c : 0;
                const int set = i0 == (s->causal ? j0 : c0);
                hk = diag && bc - c > SB ? SB : bc - c;
                tn_into(set, hk, w, br - rb, t + rb * BC + c, dout + (i0 + rb) * w, w,
                        dv + (j0 + c) * w);
                tn_into(set, hk, d, br - rb, u + rb * BC + c, q + (i0 + rb) * d, d,
                        dk + (j0 + c) * d);
            }
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
    if (s->n == 0 || s->m == 0) { /* otherwise the quadratic part writes dq, dk, dv first */
        memset(dq, 0, sizeof(float) * (size_t)(s->n * d));
        memset(dk, 0, sizeof(float) * (size_t)(s->m * d));
        memset(dv, 0, sizeof(float) * (size_t)(s->m * w));
        return;
    }
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
        if (c0 > 0) mmi_attn_tile_tn(d, w, c1 - c0, 1.0f, q + c0 * d, d, dout + c0 * w, w, st, w);
    }
}
