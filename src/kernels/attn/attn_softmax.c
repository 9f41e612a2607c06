/* SPDX-License-Identifier: MIT */
/* attn_softmax.c — exact softmax attention with an optional sparse mask (causal, local band,
 * strided), as flash-attention computes it: the forward streams key blocks through an online
 * softmax (running max m, running sum l, rescaled accumulator) and saves only the per-row
 * log-sum-exp; the backward recomputes each probability tile from it. Memory is O(n + block)
 * beyond the inputs, never n x m. Flash-attention-2's loop order: 64-row query blocks against
 * 64-key blocks, the logit tile and P V as products on the GEMM micro-kernel's unpacked path
 * (no workspace), the online softmax per row in between; the backward keeps 16-row tiles of
 * P and dS and runs its four products as tiles too, except dP - D (an exact row primitive). */
#include "mmi_attn_kernels.h"

#include <math.h>
#include <string.h>

#define BR  16 /* query rows per block: the transposed key block is reused this often */
#define BC  64 /* keys per block: kt is d x 64 floats, 16 KB at d = 64 (L1) */
#define BRF 64 /* forward query rows per block: S and P V run as 64-row GEMM tiles */

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

/* kt[c * BC + j] = src[(j0 + j) * w + c]: a key (or value) block, transposed. */
static void transpose_block(const float *src, int64_t w, int64_t j0, int64_t bc, float *kt)
{
    for (int64_t j = 0; j < bc; j++) {
        const float *row = src + (j0 + j) * w;
        for (int64_t c = 0; c < w; c++) kt[c * BC + j] = row[c];
    }
}

size_t mmi_attn_softmax_ws_floats(int64_t d, int64_t dv)
{
    /* forward: m, l as doubles first (8-byte aligned), kt, the BRF x BC logit tile, acc;
     * backward: kt, vt, the BRF x BC tile of P and dS; the larger of the two */
    const int64_t fwd = 4 * BRF + d * BC + BRF * BC + BRF * dv;
    const int64_t bwd = 4 * BRF + (d + dv) * BC + BRF * BC;
    return (size_t)((fwd > bwd ? fwd : bwd) + 16);
}

/* max_j x[j] (-inf for n = 0 or all -inf), eight running maxima in fixed blocks so the loop
 * becomes vector compares instead of one dependent chain (it cost a tenth of the forward). */
static float row_max(int64_t n, const float *restrict x)
{
    float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                   -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    float mx = -INFINITY;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int c = 0; c < 8; c++) m8[c] = x[j + c] > m8[c] ? x[j + c] : m8[c];
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    for (int c = 0; c < 8; c++) mx = m8[c] > mx ? m8[c] : mx;
    return mx;
}

/* Online-softmax update of rows [i0, i0 + br) against the key block [j0, j0 + bc):
 * S = scale Q K^T as one tile product, then per row the mask, the new running max, P = e^{S - m}
 * in place, the rescaled accumulator and sum; then acc += P V as one tile product. */
static void fwd_block(const mmi_attn_dims *s, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                      const float *q, const float *kt, const float *v, float *sp, double *m,
                      double *l, float *acc)
{
    const int64_t d = s->d, dv = s->dv;
    mmi_attn_tile_nn(br, bc, d, s->scale, q + i0 * d, d, kt, BC, 0.0f, sp, BC);
    for (int64_t r = 0; r < br; r++) {
        float *sr = sp + r * BC, *ar = acc + r * dv, mx, mnew, alpha;
        mask_row(s, i0 + r, j0, bc, sr);
        mx = row_max(bc, sr);
        if (mx == -INFINITY) { /* nothing visible in this block: P row 0 */
            memset(sr, 0, sizeof(float) * (size_t)bc);
            continue;
        }
        mnew = (float)m[r] > mx ? (float)m[r] : mx;
        alpha = m[r] == -INFINITY ? 0.0f : expf((float)m[r] - mnew);
        l[r] = l[r] * alpha + mmi_attn_exp_sub(bc, sr, mnew, sr);
        if (alpha != 1.0f)
            for (int64_t c = 0; c < dv; c++) ar[c] *= alpha;
        m[r] = mnew;
    }
    mmi_attn_tile_nn(br, dv, bc, 1.0f, sp, BC, v + j0 * dv, dv, 1.0f, acc, dv);
}

void mmi_attn_softmax_fwd(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                          float *o, float *lse, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->m >= 0 && s->d > 0 && s->dv > 0);
    MMI_ASSERT(q && k && v && o && lse && ws);
    /* query blocks of BRF rows; a local band keeps BR rows (a taller block sees more keys) */
    const int64_t bq = s->window > 0 ? BR : BRF;
    double *m = (double *)ws, *l = m + BRF;
    float *kt = ws + 4 * BRF, *sp = kt + s->d * BC, *acc = sp + BRF * BC;
    for (int64_t i0 = 0; i0 < s->n; i0 += bq) {
        const int64_t br = s->n - i0 < bq ? s->n - i0 : bq;
        int64_t lo, hi;
        for (int64_t r = 0; r < br; r++) m[r] = -INFINITY, l[r] = 0.0;
        memset(acc, 0, sizeof(float) * (size_t)(br * s->dv));
        key_range(s, i0, i0 + br, &lo, &hi);
        for (int64_t j0 = lo; j0 < hi; j0 += BC) {
            const int64_t bc = hi - j0 < BC ? hi - j0 : BC;
            transpose_block(k, s->d, j0, bc, kt);
            fwd_block(s, i0, br, j0, bc, q, kt, v, sp, m, l, acc);
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

/* Rows [i0, i0 + br) against keys [j0, j0 + bc): the probabilities P = exp(S - L_i) (zero
 * for masked keys and for rows that saw no key) into p, then dV_J += P^T dO_I, then P becomes
 * dS / scale = P (dP - D) in place, dP_ij - D_i formed as dO_i . (v_j - O_i): in a saturated
 * row O_i equals v_j bitwise, so the difference is exactly 0 instead of the rounding gap
 * between two separately rounded dots, which the scale (up to 1e6) would multiply into dQ and
 * dK. Then dQ_I += scale dS K_J and dK_J += scale dS^T Q_I. Every product is a tile on the
 * GEMM micro-kernel; the dS tile is its own register-blocked primitive (mmi_attn_ds_tile). */
static void bwd_tile(const mmi_attn_dims *s, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                     const float *q, const float *k, const float *kt, const float *vt,
                     const float *lse, const float *dout, const float *o, float *p, float *dq,
                     float *dkb, float *dvb)
{
    const int64_t d = s->d, w = s->dv;
    mmi_attn_tile_nn(br, bc, d, s->scale, q + i0 * d, d, kt, BC, 0.0f, p, BC);
    for (int64_t r = 0; r < br; r++) {
        const int64_t i = i0 + r;
        float *pr = p + r * BC;
        if (isinf(lse[i])) { /* the row saw no key at all */
            memset(pr, 0, sizeof(float) * (size_t)bc);
            continue;
        }
        mask_row(s, i, j0, bc, pr);
        (void)mmi_attn_exp_sub(bc, pr, lse[i], pr);
    }
    mmi_attn_tile_tn(bc, w, br, 1.0f, p, BC, dout + i0 * w, w, dvb, w);
    mmi_attn_ds_tile(br, bc, w, dout + i0 * w, o + i0 * w, w, vt, BC, p, BC);
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
    /* query blocks of BRF rows; a local band keeps BR rows (a taller block sees more keys) */
    const int64_t bq = s->window > 0 ? BR : BRF;
    /* ws: kt, vt, then the BRF x BC tile p (P, then dS / scale) */
    float *kt = ws + 4 * BRF, *vt = kt + d * BC, *p = vt + w * BC;
    memset(dq, 0, sizeof(float) * (size_t)(s->n * d));
    for (int64_t j0 = 0; j0 < s->m; j0 += BC) {
        const int64_t bc = s->m - j0 < BC ? s->m - j0 : BC;
        int64_t lo, hi;
        float *dkb = dk + j0 * d, *dvb = dv + j0 * w;
        memset(dkb, 0, sizeof(float) * (size_t)(bc * d));
        memset(dvb, 0, sizeof(float) * (size_t)(bc * w));
        row_range(s, j0, j0 + bc, &lo, &hi);
        if (lo >= hi) continue;
        transpose_block(k, d, j0, bc, kt);
        transpose_block(v, w, j0, bc, vt);
        for (int64_t i0 = lo; i0 < hi; i0 += bq) {
            const int64_t br = hi - i0 < bq ? hi - i0 : bq;
            bwd_tile(s, i0, br, j0, bc, q, k, kt, vt, lse, dout, o, p, dq, dkb, dvb);
        }
    }
}
