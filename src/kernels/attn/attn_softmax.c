/* SPDX-License-Identifier: MIT */
/* attn_softmax.c — exact softmax attention with an optional sparse mask (causal, local band,
 * strided), as flash-attention computes it: the forward streams key blocks through an online
 * softmax (running max m, running sum l, rescaled accumulator) and saves only the per-row
 * log-sum-exp; the backward recomputes each probability tile from it. Memory is O(n d + block)
 * beyond the inputs, never n x m. Flash-attention-2's loop order: query blocks against key
 * blocks (128 x 128 forward, 64 x 64 backward), the logit tile and P V as products on the GEMM
 * micro-kernel's unpacked path, the online softmax per row in between; the backward keeps 64 x
 * 64 tiles of P and dS and runs its products as tiles too, dP - D either as a GEMM tile less a
 * per-row D of the same FMA chain (AVX2) or as an exact row primitive (bwd_tile says why). */
#include "mmi_attn_kernels.h"

#include <math.h>
#include <string.h>

#define BR  16  /* query rows per block: the transposed key block is reused this often */
#define BC  64  /* backward keys per block: kt and vt are d x 64 floats, 16 KB each at d = 64 */
#define BCF 128 /* forward keys per block: P V reduces over 128 keys per stored tile */
/* Row stride of the forward's transposed key block and logit tile: 16 floats past BCF, so the
 * 64 rows of a key block's 16-column strip, which the logit product reads k step by k step,
 * do not all map to the same 8 of the 64 sets of a 32 KiB 8-way L1 (at a stride of 512 bytes
 * they do: the strip alone fills those sets; AVX2 on Zen 3, 128 x 128 x 64: 89.9 GFLOP/s at
 * stride 128, 94.2 at 144). The products and their bits are the same at any stride. */
#define LDF (BCF + 16)
#define BRF 128 /* forward query rows per block: each transposed key block serves 128 rows */
#define BRB 64  /* backward query rows per block: the P / dS tile is BRB x BC */

int mmi_attn_visible(const mmi_attn_dims *s, int64_t i, int64_t j)
{
    const int64_t ip = i + (s->m - s->n), diff = ip - j;
    if (s->causal && diff < 0) return 0;
    if (s->window > 0 && (diff >= s->window || diff <= -s->window)) return 0;
    if (s->stride > 0 && diff % s->stride != 0) return 0;
    return 1;
}

/* Key range [*lo, *hi) that rows [i0, i1) may see (block skipping). */
static void key_range(const mmi_attn_dims *s, int64_t i0, int64_t i1, int64_t *lo, int64_t *hi)
{
    const int64_t off = s->m - s->n;
    int64_t a = 0, b = s->m;
    if (s->causal && i1 - 1 + off + 1 < b) b = i1 - 1 + off + 1;
    if (s->window > 0) {
        if (i0 + off - s->window + 1 > a) a = i0 + off - s->window + 1;
        if (!s->causal && i1 - 1 + off + s->window < b) b = i1 - 1 + off + s->window;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* Sets masked logits of row i over keys [j0, j0 + bc) to -inf. */
static void mask_row(const mmi_attn_dims *s, int64_t i, int64_t j0, int64_t bc, float *sr)
{
    const int64_t ip = i + (s->m - s->n);
    const int full = s->stride == 0 && (!s->causal || j0 + bc - 1 <= ip) &&
                     (s->window == 0 || (ip - j0 < s->window && j0 + bc - 1 - ip < s->window));
    if (full) return;
    for (int64_t j = 0; j < bc; j++)
        if (!mmi_attn_visible(s, i, j0 + j)) sr[j] = -INFINITY;
}

/* 1 if no row of [i0, ...) has a masked key in [j0, j0 + bc): mask_row would return at once
 * for each (one call a row was ~0.25 % of a causal fwd + bwd, nearly all blocks being whole). */
static int block_unmasked(const mmi_attn_dims *s, int64_t i0, int64_t j0, int64_t bc)
{
    return s->stride == 0 && s->window == 0 && (!s->causal || j0 + bc - 1 <= i0 + (s->m - s->n));
}

/* kt[c * ld + j] = src[(j0 + j) * w + c]: a key (or value) block, transposed in 8 x 8
 * register blocks (a scalar strided copy took about a tenth of the forward). */
static void transpose_block(const float *src, int64_t w, int64_t j0, int64_t bc, float *kt,
                            int64_t ld)
{
    mmi_attn_transpose(bc, w, src + j0 * w, w, kt, ld);
}

/*
 * Causal blocks the diagonal crosses. With a plain causal mask, row r of a block pair sees the
 * block's local keys j <= r + delta (delta = i0 + m - n - j0); when delta < bc - 1 the block is
 * cut by the diagonal and its upper part is masked. There the products run only over what some
 * row sees: logit, dS and key-gradient tiles in 16-key strips from the first row that sees the
 * strip, P V and dS K in 16-row pieces over the keys their last row sees. A skipped term is a
 * masked one, whose P is 0, so every visible sum is the one the whole tile forms (an FMA with
 * a zero product leaves the accumulator as it was; the reductions stay within one 64-long
 * piece of mmi_attn_tile_tn, so they are grouped as the whole tile groups them: the results are
 * bitwise those of the whole-tile path, tested; with OpenBLAS running the tiles, to rounding). At 64-row blocks (the backward's) a diagonal block costs
 * about 5/8 of a full one: N = 512 has 8 of them among its 36 block pairs.
 */
#define TS 16 /* strip and piece width on diagonal blocks: the micro-kernel's 16 columns */

/* 1 if the block pair (rows from i0, bc keys from j0) is cut by a plain causal diagonal. */
static int tri_block(const mmi_attn_dims *s, int64_t i0, int64_t j0, int64_t bc, int64_t *delta)
{
    if (!s->causal || s->window > 0 || s->stride > 0) return 0;
    *delta = i0 + (s->m - s->n) - j0;
    return *delta < bc - 1;
}

/* First row of the block that sees local key c0. */
static int64_t tri_first_row(int64_t c0, int64_t delta) { return c0 - delta > 0 ? c0 - delta : 0; }

/* Keys row r of the block sees (0..bc). */
static int64_t tri_keys(int64_t r, int64_t delta, int64_t bc)
{
    const int64_t n = r + delta + 1;
    return n < 0 ? 0 : n > bc ? bc : n;
}

/* p[r, c] = alpha a_r . bt[:, c] (bt = a transposed block; bt and p with row stride ld) where
 * row r sees key c; entries no row of a strip's range sees are left as they were (the mask
 * overwrites them). */
static void tri_logits(int64_t br, int64_t bc, int64_t delta, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *bt, float *p, int64_t ld)
{
    for (int64_t c0 = 0; c0 < bc; c0 += TS) {
        const int64_t nb = bc - c0 < TS ? bc - c0 : TS, rs = tri_first_row(c0, delta);
        if (rs < br)
            mmi_attn_tile_nn(br - rs, nb, k, alpha, a + rs * lda, lda, bt + c0, ld, 0.0f,
                             p + rs * ld + c0, ld);
    }
}

/* c += alpha p b (p: br x bc with zeros where masked, b: bc rows of n_out), rows in pieces. */
static void tri_rows_nn(int64_t br, int64_t bc, int64_t delta, int64_t n_out, float alpha,
                        const float *p, int64_t ld, const float *b, int64_t ldb, float *c,
                        int64_t ldc)
{
    for (int64_t r0 = 0; r0 < br; r0 += TS) {
        const int64_t rb = br - r0 < TS ? br - r0 : TS, kk = tri_keys(r0 + rb - 1, delta, bc);
        if (kk > 0)
            mmi_attn_tile_nn(rb, n_out, kk, alpha, p + r0 * ld, ld, b, ldb, 1.0f, c + r0 * ldc,
                             ldc);
    }
}

/* c += alpha p^T b (c: bc key rows of n_out, b: br rows), keys in strips. */
static void tri_cols_tn(int64_t br, int64_t bc, int64_t delta, int64_t n_out, float alpha,
                        const float *p, int64_t ld, const float *b, int64_t ldb, float *c,
                        int64_t ldc)
{
    for (int64_t c0 = 0; c0 < bc; c0 += TS) {
        const int64_t nb = bc - c0 < TS ? bc - c0 : TS, rs = tri_first_row(c0, delta);
        if (rs < br)
            mmi_attn_tile_tn(nb, n_out, br - rs, alpha, p + rs * ld + c0, ld, b + rs * ldb, ldb,
                             c + c0 * ldc, ldc);
    }
}

size_t mmi_attn_softmax_ws_floats(int64_t n, int64_t d, int64_t dv)
{
    /* forward: m, l as doubles first (8-byte aligned), kt, the BRF x BCF logit tile, acc;
     * then every key block transposed (n >= m keys); backward: kt, vt, the BRB x BC tiles of P
     * and of dP then dS, D of n rows; the larger */
    const int64_t fwd = 4 * BRF + d * LDF + BRF * LDF + BRF * dv + (n + BCF - 1) / BCF * d * LDF;
    const int64_t bwd = 4 * BRB + (d + dv) * BC + 2 * BRB * BC + n;
    return (size_t)((fwd > bwd ? fwd : bwd) + 16);
}

/* Online-softmax update of rows [i0, i0 + br) against the key block [j0, j0 + bc):
 * S = scale Q K^T as one tile product, then per row the mask and mmi_attn_softmax_row (the new
 * running max, P = e^{S - m} in place, the rescaled accumulator and sum); then acc += P V as
 * one tile product. */
static void fwd_block(const mmi_attn_dims *s, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                      const float *q, const float *kt, const float *v, float *sp, double *m,
                      double *l, float *acc)
{
    const int64_t d = s->d, dv = s->dv;
    int64_t delta = 0;
    const int tri = tri_block(s, i0, j0, bc, &delta);
    if (tri)
        tri_logits(br, bc, delta, d, s->scale, q + i0 * d, d, kt, sp, LDF);
    else
        mmi_attn_tile_nn(br, bc, d, s->scale, q + i0 * d, d, kt, LDF, 0.0f, sp, LDF);
    const int masked = !tri && !block_unmasked(s, i0, j0, bc);
    for (int64_t r = 0; r < br; r++) {
        /* a diagonal block's row sees its first tri_keys keys (the rest may hold logits it
         * never formed, which softmax_row does not read); other masks are applied here */
        float *sr = sp + r * LDF;
        if (masked) mask_row(s, i0 + r, j0, bc, sr);
        mmi_attn_softmax_row(bc, tri ? tri_keys(r, delta, bc) : bc, sr, m + r, l + r, acc + r * dv,
                             dv);
    }
    if (tri)
        tri_rows_nn(br, bc, delta, dv, 1.0f, sp, LDF, v + j0 * dv, dv, acc, dv);
    else
        mmi_attn_tile_nn(br, dv, bc, 1.0f, sp, LDF, v + j0 * dv, dv, 1.0f, acc, dv);
}

void mmi_attn_softmax_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                          float *o, float *lse, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0);
    MMI_ASSERT(q && k && v && o && lse && ws);
    /* query blocks of BRF rows; a local band keeps BR rows (a taller block sees more keys) */
    const int64_t bq = s->window > 0 ? BR : BRF;
    double *m = (double *)ws, *l = m + BRF;
    float *kt = ws + 4 * BRF, *sp = kt + s->d * LDF, *acc = sp + BRF * LDF,
          *kall = acc + BRF * s->dv;
    /* With more than one query block every key block serves several of them: transposed once
     * (the same kt bits, block j0 / BCF at kall + (j0 / BCF) d LDF) instead of once a pair. A
     * local band's blocks see few key blocks each and keep the per-pair transpose. */
    const int once = s->n > bq && s->window == 0;
    if (once)
        for (int64_t j0 = 0; j0 < s->m; j0 += BCF)
            transpose_block(k, s->d, j0, s->m - j0 < BCF ? s->m - j0 : BCF,
                            kall + j0 / BCF * s->d * LDF, LDF);
    for (int64_t i0 = 0; i0 < s->n; i0 += bq) {
        const int64_t br = s->n - i0 < bq ? s->n - i0 : bq;
        int64_t lo, hi;
        for (int64_t r = 0; r < br; r++) m[r] = -INFINITY, l[r] = 0.0;
        memset(acc, 0, sizeof(float) * (size_t)(br * s->dv));
        key_range(s, i0, i0 + br, &lo, &hi);
        for (int64_t j0 = lo; j0 < hi; j0 += BCF) {
            const int64_t bc = hi - j0 < BCF ? hi - j0 : BCF;
            const float *kb = kt;
            if (once)
                kb = kall + j0 / BCF * s->d * LDF;
            else
                transpose_block(k, s->d, j0, bc, kt, LDF);
            fwd_block(s, i0, br, j0, bc, q, kb, v, sp, m, l, acc);
        }
        for (int64_t r = 0; r < br; r++) {
            float *orow = o + (i0 + r) * s->dv;
            if (l[r] > 0.0) {
                const float inv = (float)(1.0 / l[r]);
                for (int64_t c = 0; c < s->dv; c++) orow[c] = acc[r * s->dv + c] * inv;
                lse[i0 + r] = (float)(m[r] + log(l[r]));
            } else { /* no visible key: output 0, lse +inf so backward's P is 0 (flash-attn) */
                memset(orow, 0, sizeof(float) * (size_t)s->dv);
                lse[i0 + r] = INFINITY;
            }
        }
    }
}

/* Row range [*lo, *hi) of queries that may see some key of [j0, j1). */
static void row_range(const mmi_attn_dims *s, int64_t j0, int64_t j1, int64_t *lo, int64_t *hi)
{
    const int64_t off = s->m - s->n;
    int64_t a = 0, b = s->n;
    if (s->causal && j0 - off > a) a = j0 - off;
    if (s->window > 0) {
        if (j1 - 2 + s->window - off + 1 < b) b = j1 - 2 + s->window - off + 1;
        if (!s->causal && j0 - s->window + 1 - off > a) a = j0 - s->window + 1 - off;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* The backward's buffers: kt, vt (the key block and value block transposed), the BRB x BC tile
 * p (P, then dS / scale in the exact form), and in the GEMM form (dd not NULL) the tile x (dP,
 * then dS / scale) and D of every query row. */
typedef struct bwd_bufs {
    const float *kt, *vt;
    float *p, *x;
    const float *dd;
} bwd_bufs;

/* The GEMM form of a tile whose logits (S, masked) are in b->p: dP = dO_I V_J^T into x over
 * the strips some row sees (tri) or whole, then P and dS / scale = P (dP - D) in one pass. */
static void ds_gemm(int64_t i0, int64_t br, int64_t bc, int tri, int64_t delta, int64_t w,
                    const float *lse, const float *dout, const bwd_bufs *b)
{
    if (tri)
        tri_logits(br, bc, delta, w, 1.0f, dout + i0 * w, w, b->vt, b->x, BC);
    else
        mmi_attn_tile_nn(br, bc, w, 1.0f, dout + i0 * w, w, b->vt, BC, 0.0f, b->x, BC);
    (void)mmi_attn_exp_ds_rows(br, bc, tri ? delta + 1 : bc, b->p, b->x, BC, lse + i0, b->dd + i0);
}

/* bwd_tile on a block the causal diagonal cuts: the same steps over the visible part only. */
static void tri_bwd_tile(const mmi_attn_dims *s, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                         int64_t delta, const float *q, const float *k, const bwd_bufs *b,
                         const float *lse, const float *dout, const float *o, float *dq, float *dkb,
                         float *dvb)
{
    const int64_t d = s->d, w = s->dv;
    float *p = b->p;
    tri_logits(br, bc, delta, d, s->scale, q + i0 * d, d, b->kt, p, BC);
    if (b->dd) {
        ds_gemm(i0, br, bc, 1, delta, w, lse, dout, b);
        tri_cols_tn(br, bc, delta, w, 1.0f, p, BC, dout + i0 * w, w, dvb, w);
        tri_rows_nn(br, bc, delta, d, s->scale, b->x, BC, k + j0 * d, d, dq + i0 * d, d);
        tri_cols_tn(br, bc, delta, d, s->scale, b->x, BC, q + i0 * d, d, dkb, d);
        return;
    }
    /* P = exp(S - L_i) over the keys row i sees (tri_keys), 0 beyond and for rows that saw
     * no key */
    mmi_attn_exp_rows(br, bc, delta + 1, p, BC, lse + i0);
    tri_cols_tn(br, bc, delta, w, 1.0f, p, BC, dout + i0 * w, w, dvb, w);
    for (int64_t c0 = 0; c0 < bc; c0 += TS) { /* dS / scale = P (dP - D), visible strips */
        const int64_t nb = bc - c0 < TS ? bc - c0 : TS, rs = tri_first_row(c0, delta);
        if (rs < br)
            mmi_attn_ds_tile(br - rs, nb, w, dout + (i0 + rs) * w, o + (i0 + rs) * w, w, b->vt + c0,
                             BC, p + rs * BC + c0, BC);
    }
    tri_rows_nn(br, bc, delta, d, s->scale, p, BC, k + j0 * d, d, dq + i0 * d, d);
    tri_cols_tn(br, bc, delta, d, s->scale, p, BC, q + i0 * d, d, dkb, d);
}

/* Rows [i0, i0 + br) against keys [j0, j0 + bc): the probabilities P = exp(S - L_i) (zero
 * for masked keys and for rows that saw no key) into p, dV_J += P^T dO_I, dS / scale = P (dP -
 * D), then dQ_I += scale dS K_J and dK_J += scale dS^T Q_I. A saturated row (P one-hot, O_i
 * equal to v_j bitwise) must get dP_ij - D_i = 0 exactly: the rounding gap between two
 * separately rounded dots would be multiplied by the scale (up to 1e6) into dQ and dK. Two
 * forms give that:
 *   GEMM form (b->dd set: the path has mmi_attn_exp_ds_rows and the tiles run on libmm's
 *   direct kernel): dP = dO_I V_J^T as a GEMM tile and D_i = dO_i . O_i by mmi_attn_row_dots,
 *   whose chain is the tile element's, so dP_ij and D_i are equal bitwise when v_j = O_i;
 *   exact form: dP_ij - D_i as dO_i . (v_j - O_i), the difference before the product
 *   (mmi_attn_ds_tile, a subtraction per multiply-add: ~75 % of the GEMM tile's speed).
 * Every other product is a tile on the GEMM micro-kernel. */
static void bwd_tile(const mmi_attn_dims *s, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                     const float *q, const float *k, const bwd_bufs *b, const float *lse,
                     const float *dout, const float *o, float *dq, float *dkb, float *dvb)
{
    const int64_t d = s->d, w = s->dv;
    float *p = b->p;
    int64_t delta = 0;
    if (tri_block(s, i0, j0, bc, &delta)) {
        tri_bwd_tile(s, i0, br, j0, bc, delta, q, k, b, lse, dout, o, dq, dkb, dvb);
        return;
    }
    mmi_attn_tile_nn(br, bc, d, s->scale, q + i0 * d, d, b->kt, BC, 0.0f, p, BC);
    if (!block_unmasked(s, i0, j0, bc))
        for (int64_t r = 0; r < br; r++) mask_row(s, i0 + r, j0, bc, p + r * BC);
    if (b->dd) {
        ds_gemm(i0, br, bc, 0, 0, w, lse, dout, b);
        mmi_attn_tile_tn(bc, w, br, 1.0f, p, BC, dout + i0 * w, w, dvb, w);
        mmi_attn_tile_nn(br, d, bc, s->scale, b->x, BC, k + j0 * d, d, 1.0f, dq + i0 * d, d);
        mmi_attn_tile_tn(bc, d, br, s->scale, b->x, BC, q + i0 * d, d, dkb, d);
        return;
    }
    /* P = exp(S - L_i), 0 for masked keys and for rows that saw no key (L_i = +inf) */
    mmi_attn_exp_rows(br, bc, bc, p, BC, lse + i0);
    mmi_attn_tile_tn(bc, w, br, 1.0f, p, BC, dout + i0 * w, w, dvb, w);
    mmi_attn_ds_tile(br, bc, w, dout + i0 * w, o + i0 * w, w, b->vt, BC, p, BC);
    mmi_attn_tile_nn(br, d, bc, s->scale, p, BC, k + j0 * d, d, 1.0f, dq + i0 * d, d);
    mmi_attn_tile_tn(bc, d, br, s->scale, p, BC, q + i0 * d, d, dkb, d);
}

void mmi_attn_softmax_bwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                          const float *o, const float *lse, const float *dout, float *dq, float *dk,
                          float *dv, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0);
    MMI_ASSERT(q && k && v && o && lse && dout && dq && dk && dv && ws);
    const int64_t d = s->d, w = s->dv;
    /* query blocks of BRB rows; a local band keeps BR rows (a taller block sees more keys) */
    const int64_t bq = s->window > 0 ? BR : BRB;
    /* ws: kt, vt, then the BRB x BC tiles p and x, then D */
    float *kt = ws + 4 * BRB, *vt = kt + d * BC, *p = vt + w * BC, *x = p + BRB * BC;
    float *dd = x + BRB * BC;
    /* the GEMM form where the dP tile and D get the same chain (bwd_tile) */
    const int gemm = mmi_attn_tile_direct(bq, w) && mmi_attn_row_dots(s->n, w, dout, w, o, w, dd);
    const bwd_bufs b = {kt, vt, p, x, gemm ? dd : NULL};
    memset(dq, 0, sizeof(float) * (size_t)(s->n * d));
    for (int64_t j0 = 0; j0 < s->m; j0 += BC) {
        const int64_t bc = s->m - j0 < BC ? s->m - j0 : BC;
        int64_t lo, hi;
        float *dkb = dk + j0 * d, *dvb = dv + j0 * w;
        memset(dkb, 0, sizeof(float) * (size_t)(bc * d));
        memset(dvb, 0, sizeof(float) * (size_t)(bc * w));
        row_range(s, j0, j0 + bc, &lo, &hi);
        if (lo >= hi) continue;
        transpose_block(k, d, j0, bc, kt, BC);
        transpose_block(v, w, j0, bc, vt, BC);
        for (int64_t i0 = lo; i0 < hi; i0 += bq) {
            const int64_t br = hi - i0 < bq ? hi - i0 : bq;
            bwd_tile(s, i0, br, j0, bc, q, k, &b, lse, dout, o, dq, dkb, dvb);
        }
    }
}
