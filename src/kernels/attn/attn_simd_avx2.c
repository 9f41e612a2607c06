/* SPDX-License-Identifier: MIT */
/* attn_simd_avx2.c — AVX2/FMA bodies of the attention primitives (attn_simd.c), built with
 * -mavx2 -mfma; reached through the dispatch table, only on CPUs that run them). Each primitive walks its output
 * in column blocks of up to 32 floats (4 registers) held in registers across the reduction, so
 * a state row is loaded and stored once per token. The exponential is the Cephes expf scheme
 * (two-part ln 2 reduction, degree-6 polynomial, about 2 ulp). */
#include "../simd/mmi_avx2_target.h"
#include "mmi_attn_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "../simd/mmi_avx2_math.h"
#include <float.h>
#include <math.h>
#include <string.h>

/* Block loops over u < W (W a constant 1 or 4) are unrolled by pragma so each accumulator
 * lives in a register: at -O2 GCC would otherwise keep the little arrays on the stack. */

static float hsum(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

/* ---- y = alpha * x^T Mt over a block of W registers ------------------------------------- */
MMI_AVX2_INLINE void rowmat_blk(int W, int64_t k, const float *x, const float *mt, int64_t ld,
                                float alpha, float *y)
{
    /* two accumulator sets (even and odd c) hide the FMA latency: 2W independent chains */
    __m256 acc[4], acd[4];
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) acc[u] = acd[u] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 1 < k; c += 2) {
        __m256 x0 = _mm256_broadcast_ss(x + c), x1 = _mm256_broadcast_ss(x + c + 1);
        const float *r0 = mt + c * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            acc[u] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(r0 + 8 * u), acc[u]);
            acd[u] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(r1 + 8 * u), acd[u]);
        }
    }
    if (c < k) {
        __m256 x0 = _mm256_broadcast_ss(x + c);
#pragma GCC unroll 4
        for (int u = 0; u < W; u++)
            acc[u] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(mt + c * ld + 8 * u), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < W; u++)
        _mm256_storeu_ps(y + 8 * u,
                         _mm256_mul_ps(_mm256_add_ps(acc[u], acd[u]), _mm256_set1_ps(alpha)));
}

int mmi_attn_rowmat_avx2(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                         float alpha, float *y)
{
    int64_t j = 0;
    for (; j + 32 <= n_out; j += 32) rowmat_blk(4, k, x, mt + j, ld, alpha, y + j);
    for (; j + 8 <= n_out; j += 8) rowmat_blk(1, k, x, mt + j, ld, alpha, y + j);
    for (; j < n_out; j++) {
        float acc = 0.0f;
        for (int64_t c = 0; c < k; c++) acc += x[c] * mt[c * ld + j];
        y[j] = acc * alpha;
    }
    return 1;
}

/* ---- y = alpha * x^T (Mt - o 1^T): rowmat with o[c] subtracted from row c first ---------- */
MMI_AVX2_INLINE void rowmat_sub_blk(int W, int64_t k, const float *x, const float *mt, int64_t ld,
                                    const float *o, float alpha, float *y)
{
    __m256 acc[4], acd[4];
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) acc[u] = acd[u] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 1 < k; c += 2) {
        __m256 x0 = _mm256_broadcast_ss(x + c), x1 = _mm256_broadcast_ss(x + c + 1);
        __m256 o0 = _mm256_broadcast_ss(o + c), o1 = _mm256_broadcast_ss(o + c + 1);
        const float *r0 = mt + c * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            acc[u] = _mm256_fmadd_ps(x0, _mm256_sub_ps(_mm256_loadu_ps(r0 + 8 * u), o0), acc[u]);
            acd[u] = _mm256_fmadd_ps(x1, _mm256_sub_ps(_mm256_loadu_ps(r1 + 8 * u), o1), acd[u]);
        }
    }
    if (c < k) {
        __m256 x0 = _mm256_broadcast_ss(x + c), o0 = _mm256_broadcast_ss(o + c);
#pragma GCC unroll 4
        for (int u = 0; u < W; u++)
            acc[u] = _mm256_fmadd_ps(x0, _mm256_sub_ps(_mm256_loadu_ps(mt + c * ld + 8 * u), o0),
                                     acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < W; u++)
        _mm256_storeu_ps(y + 8 * u,
                         _mm256_mul_ps(_mm256_add_ps(acc[u], acd[u]), _mm256_set1_ps(alpha)));
}

int mmi_attn_rowmat_sub_avx2(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                             const float *o, float alpha, float *y)
{
    int64_t j = 0;
    for (; j + 32 <= n_out; j += 32) rowmat_sub_blk(4, k, x, mt + j, ld, o, alpha, y + j);
    for (; j + 8 <= n_out; j += 8) rowmat_sub_blk(1, k, x, mt + j, ld, o, alpha, y + j);
    for (; j < n_out; j++) {
        float acc = 0.0f;
        for (int64_t c = 0; c < k; c++) acc += x[c] * (mt[c * ld + j] - o[c]);
        y[j] = acc * alpha;
    }
    return 1;
}

/* ---- softmax backward's dS tile: p[r, j] *= x_r . (mt[:, j] - o_r) ------------------------ */
/* Lanes j < n_valid of an 8-lane mask. */
static __m256i lanes_below(int64_t n_valid)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int v = n_valid < 0 ? 0 : n_valid > 8 ? 8 : (int)n_valid;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), iota);
}

/* R rows (1..5, a constant in each instantiation) x 16 columns, 10 accumulators held across
 * the reduction: every mt row is loaded once for R output rows, so the subtraction costs no
 * extra loads (5 x 16 measured about 10 % faster than 4 x 16; 6 x 16 spills). MASKED: columns from nv on are neither read nor written. */
MMI_AVX2_INLINE void ds_blk(const int R, const int MASKED, int64_t k, const float *x,
                            const float *o, int64_t ldx, const float *mt, int64_t ldm, float *p,
                            int64_t ldp, __m256i k0, __m256i k1)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
    __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00, a40 = a00, a41 = a00;
    for (int64_t c = 0; c < k; c++) {
        const float *row = mt + c * ldm;
        const __m256 m0 = MASKED ? _mm256_maskload_ps(row, k0) : _mm256_loadu_ps(row);
        const __m256 m1 = MASKED ? _mm256_maskload_ps(row + 8, k1) : _mm256_loadu_ps(row + 8);
#define DS_ROW(r)                                                                                  \
    if (R > r) {                                                                                   \
        const __m256 xb = _mm256_broadcast_ss(x + r * ldx + c);                                    \
        const __m256 ob = _mm256_broadcast_ss(o + r * ldx + c);                                    \
        a##r##0 = _mm256_fmadd_ps(xb, _mm256_sub_ps(m0, ob), a##r##0);                             \
        a##r##1 = _mm256_fmadd_ps(xb, _mm256_sub_ps(m1, ob), a##r##1);                             \
    }
        DS_ROW(0) DS_ROW(1) DS_ROW(2) DS_ROW(3) DS_ROW(4)
#undef DS_ROW
    }
#define DS_STORE(r)                                                                                \
    if (R > r) {                                                                                   \
        float *pr = p + r * ldp;                                                                   \
        if (MASKED) {                                                                              \
            _mm256_maskstore_ps(pr, k0, _mm256_mul_ps(_mm256_maskload_ps(pr, k0), a##r##0));       \
            _mm256_maskstore_ps(pr + 8, k1,                                                        \
                                _mm256_mul_ps(_mm256_maskload_ps(pr + 8, k1), a##r##1));           \
        } else {                                                                                   \
            _mm256_storeu_ps(pr, _mm256_mul_ps(_mm256_loadu_ps(pr), a##r##0));                     \
            _mm256_storeu_ps(pr + 8, _mm256_mul_ps(_mm256_loadu_ps(pr + 8), a##r##1));             \
        }                                                                                          \
    }
    DS_STORE(0) DS_STORE(1) DS_STORE(2) DS_STORE(3) DS_STORE(4)
#undef DS_STORE
}

/* One 16-column strip: whole 5-row blocks, then the row tail. */
MMI_AVX2_INLINE void ds_strip(const int MASKED, int64_t rows, int64_t k, const float *x,
                              const float *o, int64_t ldx, const float *mt, int64_t ldm, float *p,
                              int64_t ldp, int64_t nv)
{
    const __m256i k0 = lanes_below(nv), k1 = lanes_below(nv - 8);
    int64_t r = 0;
    for (; r + 5 <= rows; r += 5)
        ds_blk(5, MASKED, k, x + r * ldx, o + r * ldx, ldx, mt, ldm, p + r * ldp, ldp, k0, k1);
    x += r * ldx, o += r * ldx, p += r * ldp;
    switch (rows - r) {
    case 1:
        ds_blk(1, MASKED, k, x, o, ldx, mt, ldm, p, ldp, k0, k1);
        break;
    case 2:
        ds_blk(2, MASKED, k, x, o, ldx, mt, ldm, p, ldp, k0, k1);
        break;
    case 3:
        ds_blk(3, MASKED, k, x, o, ldx, mt, ldm, p, ldp, k0, k1);
        break;
    case 4:
        ds_blk(4, MASKED, k, x, o, ldx, mt, ldm, p, ldp, k0, k1);
        break;
    default:
        break;
    }
}

int mmi_attn_ds_tile_avx2(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                          int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp)
{
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) ds_strip(0, rows, k, x, o, ldx, mt + j, ldm, p + j, ldp, 16);
    if (j < n) ds_strip(1, rows, k, x, o, ldx, mt + j, ldm, p + j, ldp, n - j);
    return 1;
}

/* ---- RELU2 tile rows ------------------------------------------------------------------------ */
/* lim is already clamped to [0, n] by the caller (attn_simd.c). max(x, 0) keeps x's sign of
 * zero and NaN handling irrelevant here: logits are finite. */
int mmi_attn_relu_row_avx2(int64_t n, int64_t lim, float *x, int square)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= lim; j += 8) {
        __m256 y = _mm256_max_ps(_mm256_loadu_ps(x + j), zero);
        _mm256_storeu_ps(x + j, square ? _mm256_mul_ps(y, y) : y);
    }
    for (; j < lim; j++) {
        const float y = x[j] > 0.0f ? x[j] : 0.0f;
        x[j] = square ? y * y : y;
    }
    for (; j < n; j++) x[j] = 0.0f;
    return 1;
}

int mmi_attn_relu_ds_row_avx2(int64_t n, float *t, float *u, float f)
{
    const __m256 vf = _mm256_set1_ps(f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 r = _mm256_loadu_ps(t + j);
        _mm256_storeu_ps(u + j, _mm256_mul_ps(_mm256_mul_ps(vf, r), _mm256_loadu_ps(u + j)));
        _mm256_storeu_ps(t + j, _mm256_mul_ps(r, r));
    }
    for (; j < n; j++) {
        const float r = t[j];
        u[j] = f * r * u[j];
        t[j] = r * r;
    }
    return 1;
}

/* ---- y += p^T Mat --------------------------------------------------------------------------- */
MMI_AVX2_INLINE void matrow_blk(int W, int64_t rows, const float *p, const float *mat, int64_t ld,
                                float *y)
{
    __m256 acc[4], acd[4];
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) acc[u] = _mm256_loadu_ps(y + 8 * u), acd[u] = _mm256_setzero_ps();
    int64_t r = 0;
    for (; r + 1 < rows; r += 2) {
        __m256 p0 = _mm256_broadcast_ss(p + r), p1 = _mm256_broadcast_ss(p + r + 1);
        const float *r0 = mat + r * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            acc[u] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r0 + 8 * u), acc[u]);
            acd[u] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r1 + 8 * u), acd[u]);
        }
    }
    if (r < rows) {
        __m256 p0 = _mm256_broadcast_ss(p + r);
#pragma GCC unroll 4
        for (int u = 0; u < W; u++)
            acc[u] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(mat + r * ld + 8 * u), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) _mm256_storeu_ps(y + 8 * u, _mm256_add_ps(acc[u], acd[u]));
}

int mmi_attn_matrow_acc_avx2(int64_t rows, int64_t n, const float *p, const float *mat, int64_t ld,
                             float *y)
{
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) matrow_blk(4, rows, p, mat + j, ld, y + j);
    for (; j + 8 <= n; j += 8) matrow_blk(1, rows, p, mat + j, ld, y + j);
    for (; j < n; j++) {
        float acc = y[j];
        for (int64_t r = 0; r < rows; r++) acc += p[r] * mat[r * ld + j];
        y[j] = acc;
    }
    return 1;
}

/* ---- fused state step ----------------------------------------------------------------------- */
/* ha, hw, hb are compile-time flags (a, w, b present), so each instantiation keeps only the
 * registers it needs: with all three the block would spill. */
MMI_AVX2_INLINE void state_blk(int W, int ha, int hw, int hb, int first, int64_t rows,
                               const float *a, const float *x, float *st, int64_t ld,
                               const float *w, float *out, const float *b, float *y)
{
    __m256 xv[4], wv[4], yv[4], yd[4];
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) {
        xv[u] = ha ? _mm256_loadu_ps(x + 8 * u) : _mm256_setzero_ps();
        wv[u] = hw ? _mm256_loadu_ps(w + 8 * u) : _mm256_setzero_ps();
        yv[u] = hb ? _mm256_loadu_ps(y + 8 * u) : _mm256_setzero_ps();
        yd[u] = _mm256_setzero_ps();
    }
    for (int64_t r = 0; r < rows; r++) {
        float *row = st + r * ld;
        __m256 sv[4];
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) sv[u] = _mm256_loadu_ps(row + 8 * u);
        if (ha) {
            __m256 ar = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 4
            for (int u = 0; u < W; u++) {
                sv[u] = _mm256_fmadd_ps(ar, xv[u], sv[u]);
                _mm256_storeu_ps(row + 8 * u, sv[u]);
            }
        }
        if (hw) {
            __m256 d = _mm256_mul_ps(sv[0], wv[0]);
#pragma GCC unroll 4
            for (int u = 1; u < W; u++) d = _mm256_fmadd_ps(sv[u], wv[u], d);
            out[r] = first ? hsum(d) : out[r] + hsum(d);
        }
        if (hb) { /* alternate two accumulator sets across rows: twice the FMA chains */
            __m256 br = _mm256_broadcast_ss(b + r);
            if (r & 1) {
#pragma GCC unroll 4
                for (int u = 0; u < W; u++) yd[u] = _mm256_fmadd_ps(br, sv[u], yd[u]);
            } else {
#pragma GCC unroll 4
                for (int u = 0; u < W; u++) yv[u] = _mm256_fmadd_ps(br, sv[u], yv[u]);
            }
        }
    }
    if (hb)
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) _mm256_storeu_ps(y + 8 * u, _mm256_add_ps(yv[u], yd[u]));
}

/* One instantiation per flag combination and block width. */
#define STATE_CASE(HA, HW, HB)                                                                     \
    do {                                                                                           \
        for (; j + 32 <= n; j += 32)                                                               \
            state_blk(4, HA, HW, HB, j == 0, rows, a, x + j, st + j, ld, w + j, out, b, y + j);    \
        for (; j + 8 <= n; j += 8)                                                                 \
            state_blk(1, HA, HW, HB, j == 0, rows, a, x + j, st + j, ld, w + j, out, b, y + j);    \
    } while (0)

int mmi_attn_state_step_avx2(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                             int64_t ld, const float *w, float *out, const float *b, float *y)
{
    int64_t j = 0;
    const float zero[1] = {0.0f};
    const int mode = (a ? 4 : 0) | (w ? 2 : 0) | (b ? 1 : 0);
    /* absent vectors are never read; point them at something valid for the pointer math */
    if (!a) x = zero;
    if (!w) w = zero;
    if (!b) y = (float *)zero;
    switch (mode) {
    case 4:
        STATE_CASE(1, 0, 0);
        break;
    case 5:
        STATE_CASE(1, 0, 1);
        break;
    case 6:
        STATE_CASE(1, 1, 0);
        break;
    case 7:
        STATE_CASE(1, 1, 1);
        break;
    case 1:
        STATE_CASE(0, 0, 1);
        break;
    case 2:
        STATE_CASE(0, 1, 0);
        break;
    case 3:
        STATE_CASE(0, 1, 1);
        break;
    default:
        return 1;
    }
    if (j < n) {
        const int64_t j0 = j;
        for (int64_t r = 0; r < rows; r++) {
            float *row = st + r * ld, acc = 0.0f;
            for (j = j0; j < n; j++) {
                if (a) row[j] += a[r] * x[j];
                if (w != zero) acc += row[j] * w[j];
                if (b) y[j] += b[r] * row[j];
            }
            if (w != zero) out[r] = j0 == 0 ? acc : out[r] + acc;
        }
    }
    return 1;
}

/* exp of 8 floats for softmax rows (arguments mostly <= 0): the Cephes reduction and
 * polynomial of mmi_exp256, with the integer n = round(x log2 e) taken from the low mantissa
 * bits of x log2 e + 1.5 * 2^23 (one FMA instead of a round and a convert) and 2^n formed with
 * one exponent field (x is clamped to [-87.34, 88.38], so n stays in [-126, 128)). Results
 * below FLT_MIN (x < -87.34, including -inf for masked logits) are 0, above 88.38 +inf. About
 * a third fewer instructions than mmi_exp256, whose two-part scaling covers the denormals. */
MMI_AVX2_INLINE __m256 exp_softmax(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.336544f), hi = _mm256_set1_ps(88.3762626647949f);
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 t, fn, z, y;
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    fn = _mm256_sub_ps(t, magic);
    x = _mm256_fnmadd_ps(fn, c1, x);
    x = _mm256_fnmadd_ps(fn, c2, x);
    z = _mm256_mul_ps(x, x);
    y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    /* t's bits are those of 1.5 * 2^23 plus n: adding the bias and shifting by 23 drops the
     * magic number's own bits and leaves the exponent field n + 127 */
    y = _mm256_mul_ps(y,
                      _mm256_castsi256_ps(_mm256_slli_epi32(
                          _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127)), 23)));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    return _mm256_andnot_ps(under, y);
}

int mmi_attn_exp_sub_avx2(int64_t n, const float *s, float mx, float *p, float *sum)
{
    __m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    int64_t j = 0;
    float tail = 0.0f;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp_softmax(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
        _mm256_storeu_ps(p + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < n) {
        float buf[8];
        int64_t r = n - j;
        for (int u = 0; u < 8; u++) buf[u] = u < r ? s[j + u] - mx : -INFINITY;
        __m256 e = exp_softmax(_mm256_loadu_ps(buf));
        _mm256_storeu_ps(buf, e);
        for (int64_t u = 0; u < r; u++) {
            p[j + u] = buf[u];
            tail += buf[u];
        }
    }
    *sum = hsum(acc) + tail;
    return 1;
}

/* ---- one row of per-key gates (mmi_attn_gate_row): the float64 cumulative sum, then the
 * factored query and key rows, each operation as the portable body rounds it ---------------- */
int mmi_attn_gate_row_avx2(int64_t n, const double *prev, const float *g, double *bt,
                           const float *q, float scale, const float *k, float *qe, float *kh,
                           float *ex)
{
    const __m256 lo = _mm256_set1_ps(-128.0f), sc = _mm256_set1_ps(scale);
    if (n % 8) return 0;
    for (int64_t c = 0; c < n; c += 8) {
        const __m256 x = _mm256_max_ps(_mm256_loadu_ps(g + c), lo); /* g finite: max = clamp */
        __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
        __m256d b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
        if (prev) {
            b0 = _mm256_add_pd(_mm256_loadu_pd(prev + c), b0);
            b1 = _mm256_add_pd(_mm256_loadu_pd(prev + c + 4), b1);
        }
        _mm256_storeu_pd(bt + c, b0);
        _mm256_storeu_pd(bt + c + 4, b1);
        if (q) {
            const __m256 e = exp_softmax(_mm256_set_m128(_mm256_cvtpd_ps(b1), _mm256_cvtpd_ps(b0)));
            const __m256 qs = _mm256_mul_ps(sc, _mm256_loadu_ps(q + c));
            _mm256_storeu_ps(qe + c, _mm256_mul_ps(qs, e));
            _mm256_storeu_ps(kh + c, _mm256_div_ps(_mm256_loadu_ps(k + c), e));
            if (ex) _mm256_storeu_ps(ex + c, e);
        }
    }
    return 1;
}

/* ---- elu + 1 feature map ---------------------------------------------------------------------- */
/* min(v, 0) turns a NaN lane into 0, so NaN takes the v + 1 side (the unordered "not <= 0" is
 * true for it) and stays NaN, as expf keeps it. */
static inline __m256 elu1_8(__m256 v)
{
    const __m256 zero = _mm256_setzero_ps(), pos = _mm256_cmp_ps(v, zero, _CMP_NLE_UQ);
    const __m256 e =
        mmi_exp256(_mm256_min_ps(v, zero)); /* exp only where it is used: no overflow */
    return _mm256_blendv_ps(e, _mm256_add_ps(v, _mm256_set1_ps(1.0f)), pos);
}

/* The tail goes through the same vector code on a padded copy, so an element's bits do not
 * depend on where it sits. */
int mmi_attn_elu1_avx2(int64_t n, const float *x, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, elu1_8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, elu1_8(_mm256_loadu_ps(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
    return 1;
}

/* dx = dy * min(y, 1): elu+1's derivative from its output (NaN y stays NaN). dx may alias dy. */
int mmi_attn_elu1_bwd_avx2(int64_t n, const float *y, const float *dy, float *dx)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i),
                                               _mm256_min_ps(one, _mm256_loadu_ps(y + i))));
    for (; i < n; i++) dx[i] = dy[i] * (y[i] > 1.0f ? 1.0f : y[i]);
    return 1;
}

/* ---- linear attention normaliser: z += k, q . z in float64, 4 lanes, two chains -------------- */
int mmi_attn_norm_step_avx2(int64_t n, const float *k, double *z, const float *q, double *dot)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    double tail = 0.0, lanes[4];
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256d z0 = _mm256_loadu_pd(z + c), z1 = _mm256_loadu_pd(z + c + 4);
        if (k) {
            z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm_loadu_ps(k + c)));
            z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm_loadu_ps(k + c + 4)));
            _mm256_storeu_pd(z + c, z0);
            _mm256_storeu_pd(z + c + 4, z1);
        }
        if (q) {
            a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(q + c)), z0, a0);
            a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(q + c + 4)), z1, a1);
        }
    }
    for (; c < n; c++) {
        if (k) z[c] += k[c];
        if (q) tail += (double)q[c] * z[c];
    }
    _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
    *dot = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
    return 1;
}

/* ---- transpose in 8 x 8 register blocks (chunk tiles and states of the chunkwise kernels) -- */
int mmi_attn_transpose_avx2(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                            int64_t ldd)
{
    const int64_t r8 = rows & ~(int64_t)7, c8 = cols & ~(int64_t)7;
    for (int64_t r = 0; r < r8; r += 8) {
        for (int64_t c = 0; c < c8; c += 8)
            mmi_transpose8_block_avx2(src + r * lds + c, lds, 8, 8, dst + c * ldd + r, ldd, 8);
        for (int64_t i = r; i < r + 8; i++) /* the columns past the last 8-block */
            for (int64_t c = c8; c < cols; c++) dst[c * ldd + i] = src[i * lds + c];
    }
    for (int64_t i = r8; i < rows; i++) /* the rows past the last 8-block */
        for (int64_t c = 0; c < cols; c++) dst[c * ldd + i] = src[i * lds + c];
    return 1;
}

/* ---- per-key gate gradient row: float64 products and sums, rounded as the portable body ---- */
int mmi_attn_gate_grad_row_avx2(int64_t n, float scale, const float *q, float *dq, const float *k,
                                const float *dk, double *acc, float *dg)
{
    const __m256d sc = _mm256_set1_pd((double)scale);
    const __m128 scf = _mm_set1_ps(scale);
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        const __m128 g = _mm_loadu_ps(dq + c);
        const __m256d a = _mm256_mul_pd(_mm256_mul_pd(sc, _mm256_cvtps_pd(_mm_loadu_ps(q + c))),
                                        _mm256_cvtps_pd(g));
        const __m256d b = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(k + c)),
                                        _mm256_cvtps_pd(_mm_loadu_ps(dk + c)));
        const __m256d s = _mm256_add_pd(_mm256_loadu_pd(acc + c), _mm256_sub_pd(a, b));
        _mm256_storeu_pd(acc + c, s);
        _mm_storeu_ps(dg + c, _mm256_cvtpd_ps(s));
        _mm_storeu_ps(dq + c, _mm_mul_ps(g, scf));
    }
    for (; c < n; c++) {
        acc[c] += (double)scale * q[c] * dq[c] - (double)k[c] * dk[c];
        dg[c] = (float)acc[c];
        dq[c] *= scale;
    }
    return 1;
}

/* ---- log-gate check and copy: a gate is bad when !(x <= 0) (above 0 or NaN) or
 * !(x >= -FLT_MAX) (-inf or NaN); unordered predicates so NaN counts as bad ---------------- */
int mmi_attn_log_gate_copy_avx2(int64_t n, const float *x, float *y, int *bad)
{
    const __m256 zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(-FLT_MAX);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0, tail = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, v);
        acc = _mm256_or_ps(acc, _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_NLE_UQ),
                                             _mm256_cmp_ps(v, lo, _CMP_NGE_UQ)));
    }
    for (; i < n; i++) {
        y[i] = x[i];
        tail |= !(x[i] <= 0.0f && x[i] >= -FLT_MAX);
    }
    *bad = tail || _mm256_movemask_ps(acc) != 0;
    return 1;
}

static const mmi_attn_isa k_avx2 = {
    mmi_attn_rowmat_avx2,
    mmi_attn_rowmat_sub_avx2,
    mmi_attn_matrow_acc_avx2,
    mmi_attn_state_step_avx2,
    mmi_attn_exp_sub_avx2,
    mmi_attn_norm_step_avx2,
    mmi_attn_elu1_avx2,
    mmi_attn_elu1_bwd_avx2,
    mmi_attn_ds_tile_avx2,
    mmi_attn_relu_row_avx2,
    mmi_attn_relu_ds_row_avx2,
    mmi_attn_gate_row_avx2,
    mmi_attn_transpose_avx2,
    mmi_attn_gate_grad_row_avx2,
    mmi_attn_log_gate_copy_avx2,
    NULL,
    NULL, /* softmax_row, rwkv_bonus: the portable bodies */
    NULL,
    NULL,
    NULL, /* lin_norm, lin_dnum, lin_acc: the portable loops */
    NULL, /* gate_grad_rows: the wrapper runs gate_grad_row per row */
    NULL, /* lin_tile: the GEMM tiles */
};

const mmi_attn_isa *mmi_attn_isa_avx2(void) { return &k_avx2; }

#else /* no AVX2/FMA in this build: the portable bodies run */
const mmi_attn_isa *mmi_attn_isa_avx2(void) { return NULL; }
#endif
