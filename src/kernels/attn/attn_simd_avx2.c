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

/* One row x 64 columns, 8 accumulators, in ds_blk's form acc + x (mt - o) (so its bits on any
 * executor: an earlier form acc - x (o - mt) by fnmadd, equal in IEEE arithmetic, differed
 * under valgrind's emulation of fused multiply-adds). Per key step 8 FMAs need 2 broadcasts
 * instead of ds_blk's 10 for 10 FMAs (with its 10 subtractions the 5 x 16 block ran at ~60 %
 * of the FMA peak on Zen 3; 64 x 64 x 64 alone: 60 -> 68 GFLOP/s, 65 -> 76 with denormals
 * flushed). 2 x 32, 3 x 32, 4 x 16 and 2 x 64 blocks measured slower. */
MMI_AVX2_INLINE void ds_row64(int64_t k, const float *x, const float *o, const float *mt,
                              int64_t ldm, float *p)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t c = 0; c < k; c++) {
        const float *row = mt + c * ldm;
        const __m256 xb = _mm256_broadcast_ss(x + c), ob = _mm256_broadcast_ss(o + c);
        a0 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row), ob), a0);
        a1 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 8), ob), a1);
        a2 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 16), ob), a2);
        a3 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 24), ob), a3);
        a4 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 32), ob), a4);
        a5 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 40), ob), a5);
        a6 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 48), ob), a6);
        a7 = _mm256_fmadd_ps(xb, _mm256_sub_ps(_mm256_loadu_ps(row + 56), ob), a7);
    }
    _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), a0));
    _mm256_storeu_ps(p + 8, _mm256_mul_ps(_mm256_loadu_ps(p + 8), a1));
    _mm256_storeu_ps(p + 16, _mm256_mul_ps(_mm256_loadu_ps(p + 16), a2));
    _mm256_storeu_ps(p + 24, _mm256_mul_ps(_mm256_loadu_ps(p + 24), a3));
    _mm256_storeu_ps(p + 32, _mm256_mul_ps(_mm256_loadu_ps(p + 32), a4));
    _mm256_storeu_ps(p + 40, _mm256_mul_ps(_mm256_loadu_ps(p + 40), a5));
    _mm256_storeu_ps(p + 48, _mm256_mul_ps(_mm256_loadu_ps(p + 48), a6));
    _mm256_storeu_ps(p + 56, _mm256_mul_ps(_mm256_loadu_ps(p + 56), a7));
}

int mmi_attn_ds_tile_avx2(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                          int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp)
{
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) /* whole 64-column strips a row at a time, then 16-wide */
        for (int64_t r = 0; r < rows; r++)
            ds_row64(k, x + r * ldx, o + r * ldx, mt + j, ldm, p + r * ldp + j);
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
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 t, fn, y;
    /* bounds first: x86 min/max return the second operand when one is NaN, so NaN passes the
     * clamp and stays NaN through the polynomial and the scaling (as expf keeps it) */
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    fn = _mm256_sub_ps(t, magic);
    y = mmi_exp256_poly(x, fn);
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

/* exp_sub's exponentials over a tile's rows (mmi_attn_exp_rows) without its sum: one call per
 * tile instead of one per row, which on 64-key rows spent about a quarter of the time on the
 * call, the constants and the unused horizontal sum. exp_softmax per element, so exp_sub's
 * bits (its tail goes through exp_softmax too). */
int mmi_attn_exp_rows_avx2(int64_t rows, int64_t n, int64_t off, float *p, int64_t ld,
                           const float *sub)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        float *pr = p + r * ld;
        const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
        const __m256 m = _mm256_set1_ps(sub[r]);
        int64_t j = 0;
        for (; j + 8 <= nv; j += 8)
            _mm256_storeu_ps(pr + j, exp_softmax(_mm256_sub_ps(_mm256_loadu_ps(pr + j), m)));
        if (j < nv) { /* the visible tail, the rest of its block 0 */
            const __m256i in = lanes_below(nv - j);
            const __m256 e = exp_softmax(_mm256_sub_ps(_mm256_maskload_ps(pr + j, in), m));
            if (j + 8 <= n) {
                _mm256_storeu_ps(pr + j, _mm256_and_ps(e, _mm256_castsi256_ps(in)));
                j += 8;
            } else {
                _mm256_maskstore_ps(pr + j, in, e);
                j = nv;
            }
        }
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(pr + j, zero);
        for (; j < n; j++) pr[j] = 0.0f;
    }
    return 1;
}

/* exp_rows_avx2's P over a tile and, in the same pass, flash-attention's dS / scale = P (dP -
 * D) over the dP tile x (mmi_attn_exp_ds_rows): the P bits of exp_rows, x read and written once
 * while P is in registers. Keys from v_r on get P = 0 and dS = 0 without x being read (on a
 * diagonal block the dP strips no row sees are never formed). */
int mmi_attn_exp_ds_rows_avx2(int64_t rows, int64_t n, int64_t off, float *p, float *x, int64_t ld,
                              const float *sub, const float *dd)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        float *pr = p + r * ld, *xr = x + r * ld;
        const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
        const __m256 m = _mm256_set1_ps(sub[r]), dr = _mm256_set1_ps(dd[r]);
        int64_t j = 0;
        for (; j + 8 <= nv; j += 8) {
            const __m256 e = exp_softmax(_mm256_sub_ps(_mm256_loadu_ps(pr + j), m));
            _mm256_storeu_ps(pr + j, e);
            _mm256_storeu_ps(xr + j, _mm256_mul_ps(e, _mm256_sub_ps(_mm256_loadu_ps(xr + j), dr)));
        }
        if (j < nv) { /* the visible tail, the rest of its block 0 */
            const __m256i in = lanes_below(nv - j);
            const __m256 e =
                _mm256_and_ps(exp_softmax(_mm256_sub_ps(_mm256_maskload_ps(pr + j, in), m)),
                              _mm256_castsi256_ps(in));
            const __m256 ds =
                _mm256_and_ps(_mm256_mul_ps(e, _mm256_sub_ps(_mm256_maskload_ps(xr + j, in), dr)),
                              _mm256_castsi256_ps(in));
            if (j + 8 <= n) {
                _mm256_storeu_ps(pr + j, e);
                _mm256_storeu_ps(xr + j, ds);
                j += 8;
            } else {
                _mm256_maskstore_ps(pr + j, in, e);
                _mm256_maskstore_ps(xr + j, in, ds);
                j = nv;
            }
        }
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(pr + j, zero), _mm256_storeu_ps(xr + j, zero);
        for (; j < n; j++) pr[j] = xr[j] = 0.0f;
    }
    return 1;
}

/* Row i (< 8) of an 8-row block for row_dots: kl (1..8) floats, zeros past them and for rows
 * from nr on (not read). */
MMI_AVX2_INLINE __m256 rd_row(const float *p, int64_t ld, int i, int64_t nr, int64_t kl, __m256i km)
{
    if (i >= nr) return _mm256_setzero_ps();
    return kl == 8 ? _mm256_loadu_ps(p + i * ld) : _mm256_maskload_ps(p + i * ld, km);
}

/* mmi_attn_row_dots: eight rows at a time, one per lane, each lane's chain the GEMM direct
 * tile's for one element (vfmadd on ymm, c in order from +0); 8 x 8 blocks of both operands
 * are transposed in registers so step c is one FMA of column c. Columns past k are not added
 * (a 0 * 0 term would turn a -0 sum into +0, which the tile does not). */
int mmi_attn_row_dots_avx2(int64_t rows, int64_t k, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float *dd)
{
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        const int64_t nr = rows - r0 < 8 ? rows - r0 : 8;
        const float *ar = a + r0 * lda, *br = b + r0 * ldb;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t c = 0; c < k; c += 8) {
            const int64_t kl = k - c < 8 ? k - c : 8;
            const __m256i km = lanes_below(kl);
            const float *ac = ar + c, *bc = br + c;
            __m256 a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
            a0 = rd_row(ac, lda, 0, nr, kl, km), b0 = rd_row(bc, ldb, 0, nr, kl, km);
            a1 = rd_row(ac, lda, 1, nr, kl, km), b1 = rd_row(bc, ldb, 1, nr, kl, km);
            a2 = rd_row(ac, lda, 2, nr, kl, km), b2 = rd_row(bc, ldb, 2, nr, kl, km);
            a3 = rd_row(ac, lda, 3, nr, kl, km), b3 = rd_row(bc, ldb, 3, nr, kl, km);
            a4 = rd_row(ac, lda, 4, nr, kl, km), b4 = rd_row(bc, ldb, 4, nr, kl, km);
            a5 = rd_row(ac, lda, 5, nr, kl, km), b5 = rd_row(bc, ldb, 5, nr, kl, km);
            a6 = rd_row(ac, lda, 6, nr, kl, km), b6 = rd_row(bc, ldb, 6, nr, kl, km);
            a7 = rd_row(ac, lda, 7, nr, kl, km), b7 = rd_row(bc, ldb, 7, nr, kl, km);
            mmi_transpose8_regs_avx2(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7);
            mmi_transpose8_regs_avx2(&b0, &b1, &b2, &b3, &b4, &b5, &b6, &b7);
            acc = _mm256_fmadd_ps(a0, b0, acc);
            if (kl > 1) acc = _mm256_fmadd_ps(a1, b1, acc);
            if (kl > 2) acc = _mm256_fmadd_ps(a2, b2, acc);
            if (kl > 3) acc = _mm256_fmadd_ps(a3, b3, acc);
            if (kl > 4) acc = _mm256_fmadd_ps(a4, b4, acc);
            if (kl > 5) acc = _mm256_fmadd_ps(a5, b5, acc);
            if (kl > 6) acc = _mm256_fmadd_ps(a6, b6, acc);
            if (kl > 7) acc = _mm256_fmadd_ps(a7, b7, acc);
        }
        _mm256_maskstore_ps(dd + r0, lanes_below(nr), acc);
    }
    return 1;
}

/* ---- one row of per-key gates (mmi_attn_gate_row): the float64 cumulative sum, then the
 * factored query and key rows, each operation as the portable body rounds it ---------------- */
/* exp_softmax for the gate rows' arguments x = (float)b_t, which are <= 0 (gates are <= 0 and
 * clamped at -128, never NaN): without the overflow blend, which is false for them, the same
 * bits; the upper clamp stays so that an argument above 0 (outside the contract) still gives
 * exp_softmax's finite values up to 88.38 and a finite one past it instead of garbage. */
MMI_AVX2_INLINE __m256 exp_gate(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.336544f), hi = _mm256_set1_ps(88.3762626647949f);
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 t, y;
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    y = mmi_exp256_poly(x, _mm256_sub_ps(t, magic));
    y = _mm256_mul_ps(y,
                      _mm256_castsi256_ps(_mm256_slli_epi32(
                          _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127)), 23)));
    return _mm256_andnot_ps(under, y);
}

/* E = exp_gate(x) of one 8-lane block and its factored rows qe = (scale q) E, kh = k / E (and
 * E into ex when ex is not NULL). */
MMI_AVX2_INLINE void gate_factor(__m256 x, __m256 sc, const float *q, const float *k, float *qe,
                                 float *kh, float *ex)
{
    const __m256 e = exp_gate(x);
    _mm256_storeu_ps(qe, _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_loadu_ps(q)), e));
    _mm256_storeu_ps(kh, _mm256_div_ps(_mm256_loadu_ps(k), e));
    if (ex) _mm256_storeu_ps(ex, e);
}

/* In blocks of up to 64 columns: first the float64 sums of the block (kept as floats in
 * registers), then the exponentials two blocks of 8 at a time. The exponential is a long chain
 * of dependent operations; one per loop step behind the sums' conversions left too few of them
 * in flight (the row cost 1.15 ms of the 8 ms GLA forward, 0.76 ms this way; the same bits). */
int mmi_attn_gate_row_avx2(int64_t n, const double *prev, const float *g, double *bt,
                           const float *q, float scale, const float *k, float *qe, float *kh,
                           float *ex)
{
    const __m256 lo = _mm256_set1_ps(-128.0f), sc = _mm256_set1_ps(scale);
    if (n % 8) return 0;
    for (int64_t c0 = 0; c0 < n; c0 += 64) {
        const int64_t nb = n - c0 < 64 ? (n - c0) / 8 : 8;
        __m256 xs[8];
        for (int64_t j = 0; j < nb; j++) {
            const int64_t c = c0 + 8 * j;
            const __m256 x = _mm256_max_ps(_mm256_loadu_ps(g + c), lo); /* g finite: the clamp */
            __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
            __m256d b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
            if (prev) {
                b0 = _mm256_add_pd(_mm256_loadu_pd(prev + c), b0);
                b1 = _mm256_add_pd(_mm256_loadu_pd(prev + c + 4), b1);
            }
            _mm256_storeu_pd(bt + c, b0);
            _mm256_storeu_pd(bt + c + 4, b1);
            xs[j] = _mm256_set_m128(_mm256_cvtpd_ps(b1), _mm256_cvtpd_ps(b0));
        }
        if (!q) continue;
        for (int64_t j = 0; j < nb; j += 2) {
            const int64_t c = c0 + 8 * j;
            gate_factor(xs[j], sc, q + c, k + c, qe + c, kh + c, ex ? ex + c : NULL);
            if (j + 1 < nb)
                gate_factor(xs[j + 1], sc, q + c + 8, k + c + 8, qe + c + 8, kh + c + 8,
                            ex ? ex + c + 8 : NULL);
        }
    }
    return 1;
}

/* ---- elu + 1 feature map ---------------------------------------------------------------------- */
/* mmi_exp256 for x <= 0 (never NaN): the same reduction, polynomial and results (every float
 * checked), five vector operations fewer. Without positive arguments the overflow test and
 * the upper clamp go, and 2^n (n in [-128, 0]) is applied as 2^(n + 64), exact on the
 * polynomial's value in [0.7, 1.5), then 2^-64, one rounding of the same exact product
 * y 2^n that mmi_exp256's two halves 2^h, 2^(n - h) round once; no shift and subtraction. */
MMI_AVX2_INLINE __m256 exp_nonpos(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-88.3762626647949f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 fx, y;
    x = _mm256_max_ps(x, lo);
    fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    y = mmi_exp256_poly(x, fx);
    y = _mm256_mul_ps(
        y, _mm256_castsi256_ps(_mm256_slli_epi32(
               _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127 + 64)), 23)));
    y = _mm256_mul_ps(y, _mm256_set1_ps(0x1p-64f));
    return _mm256_andnot_ps(under, y);
}

/* min(v, 0) turns a NaN lane into 0, so NaN takes the v + 1 side (the unordered "not <= 0" is
 * true for it) and stays NaN, as expf keeps it. */
static inline __m256 elu1_8(__m256 v)
{
    const __m256 zero = _mm256_setzero_ps(), pos = _mm256_cmp_ps(v, zero, _CMP_NLE_UQ);
    const __m256 e = exp_nonpos(_mm256_min_ps(v, zero)); /* exp only where it is used */
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

/* mmi_attn_gate_grad_rows with the float64 sums of 16 columns in four registers across the
 * chunk's rows (the row-by-row body loads and stores them once per row); each column's
 * operations are gate_grad_row's, so the bits are too. The last n % 16 columns run through the
 * row body, row by row in the same reverse order (columns are independent). */
int mmi_attn_gate_grad_rows_avx2(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                                 const float *k, const float *dk, double *acc, float *dg)
{
    const __m256d sc = _mm256_set1_pd((double)scale);
    const __m128 scf = _mm_set1_ps(scale);
    const int64_t n16 = n & ~(int64_t)15;
    for (int64_t c0 = 0; c0 < n16; c0 += 16) {
        __m256d a[4];
        for (int j = 0; j < 4; j++) a[j] = _mm256_loadu_pd(acc + c0 + 4 * j);
        for (int64_t t = rows - 1; t >= 0; t--) {
            const int64_t o = t * n + c0;
            for (int j = 0; j < 4; j++) {
                const int64_t e = o + 4 * j;
                const __m128 g = _mm_loadu_ps(dq + e);
                const __m256d x = _mm256_mul_pd(
                    _mm256_mul_pd(sc, _mm256_cvtps_pd(_mm_loadu_ps(q + e))), _mm256_cvtps_pd(g));
                const __m256d y = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(k + e)),
                                                _mm256_cvtps_pd(_mm_loadu_ps(dk + e)));
                a[j] = _mm256_add_pd(a[j], _mm256_sub_pd(x, y));
                _mm_storeu_ps(dg + e, _mm256_cvtpd_ps(a[j]));
                _mm_storeu_ps(dq + e, _mm_mul_ps(g, scf));
            }
        }
        for (int j = 0; j < 4; j++) _mm256_storeu_pd(acc + c0 + 4 * j, a[j]);
    }
    if (n16 < n)
        for (int64_t t = rows - 1; t >= 0; t--) {
            const int64_t o = t * n + n16;
            (void)mmi_attn_gate_grad_row_avx2(n - n16, scale, q + o, dq + o, k + o, dk + o,
                                              acc + n16, dg + o);
        }
    return 1;
}

/* ---- RWKV-6's bonus (mmi_attn_rwkv_bonus): the portable body's eight float64 partial sums are
 * the lanes of two registers (partials 0-3 and 4-7), each product and sum rounded as it rounds
 * them (no fused multiply-add), then the tail and the final additions in its order, and
 * o += f v as a product then a sum: the same bits ------------------------------------------ */
int mmi_attn_rwkv_bonus_avx2(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                             const float *k, const float *v, float *o, double *c)
{
    __m256d p0 = _mm256_setzero_pd(), p1 = _mm256_setzero_pd();
    double acc = 0.0, pp[8];
    int64_t i = 0, e = 0;
    for (; i + 8 <= d; i += 8) {
        const __m256 rr = _mm256_loadu_ps(r + i), uu = _mm256_loadu_ps(u + i);
        const __m256 kk = _mm256_loadu_ps(k + i);
        const __m256d x0 = _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(rr)),
                                                       _mm256_cvtps_pd(_mm256_castps256_ps128(uu))),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(kk)));
        const __m256d x1 =
            _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(rr, 1)),
                                        _mm256_cvtps_pd(_mm256_extractf128_ps(uu, 1))),
                          _mm256_cvtps_pd(_mm256_extractf128_ps(kk, 1)));
        p0 = _mm256_add_pd(p0, x0);
        p1 = _mm256_add_pd(p1, x1);
    }
    for (; i < d; i++) acc += (double)r[i] * (double)u[i] * (double)k[i];
    _mm256_storeu_pd(pp, p0);
    _mm256_storeu_pd(pp + 4, p1);
    for (int j = 0; j < 8; j++) acc += pp[j];
    acc *= (double)scale;
    *c = acc;
    {
        const float f = (float)acc;
        const __m256 fv = _mm256_set1_ps(f);
        for (; e + 8 <= dv; e += 8)
            _mm256_storeu_ps(o + e, _mm256_add_ps(_mm256_loadu_ps(o + e),
                                                  _mm256_mul_ps(fv, _mm256_loadu_ps(v + e))));
        for (; e < dv; e++) o[e] += f * v[e];
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

/* ---- causal linear: a chunk's normaliser rows (forward) ------------------------------------ */
/* One token of mmi_attn_norm_step_avx2 (z += k, then q . z in its order: chain a0 over the low
 * halves of the 8-blocks, a1 over the high halves, the lanes summed pairwise, then the scalar
 * tail), then den and the row of X = q / den, as the portable loop of fwd_chunks forms them (the
 * same bits); the call per token and the scalar scaling loop are what this saves. */
MMI_AVX2_INLINE void lin_norm_body(int64_t len, int64_t n, const float *q, const float *k,
                                   double *z, int normalize, double eps, float *den, float *x,
                                   int64_t ldx)
{
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t t = 0; t < len; t++) {
        const float *qt = q + t * n, *kt = k + t * n;
        float *xt = x + t * ldx;
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        double tail = 0.0, lanes[4], dot, dn = 1.0;
        int64_t c = 0;
        __m256 inv;
        for (; c < n8; c += 8) {
            __m256d z0 = _mm256_loadu_pd(z + c), z1 = _mm256_loadu_pd(z + c + 4);
            z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm_loadu_ps(kt + c)));
            z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm_loadu_ps(kt + c + 4)));
            _mm256_storeu_pd(z + c, z0);
            _mm256_storeu_pd(z + c + 4, z1);
            a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(qt + c)), z0, a0);
            a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(qt + c + 4)), z1, a1);
        }
        for (; c < n; c++) {
            z[c] += kt[c];
            tail += (double)qt[c] * z[c];
        }
        _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
        dot = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
        if (normalize) {
            dn = eps + dot;
            if (dn == 0.0) dn = 1.0; /* 0/0 (eps 0, zero features): the row outputs 0 */
        }
        den[t] = (float)dn;
        inv = _mm256_set1_ps(normalize ? (float)(1.0 / dn) : 1.0f);
        for (c = 0; c < n8; c += 8)
            _mm256_storeu_ps(xt + c, _mm256_mul_ps(inv, _mm256_loadu_ps(qt + c)));
        for (; c < n; c++) xt[c] = _mm256_cvtss_f32(inv) * qt[c];
    }
}

int mmi_attn_lin_norm_avx2(int64_t len, int64_t n, const float *q, const float *k, double *z,
                           int normalize, double eps, float *den, float *x, int64_t ldx)
{
    if (n == 64) /* the usual head width: constant trip counts */
        lin_norm_body(len, 64, q, k, z, normalize, eps, den, x, ldx);
    else
        lin_norm_body(len, n, q, k, z, normalize, eps, den, x, ldx);
    return 1;
}

/* ---- causal linear backward: dnum and dden of one row ---------------------------------------- */
int mmi_attn_lin_dnum_avx2(int64_t w, const float *dout, const float *o, float den, float *dnum,
                           double *dden)
{
    /* the eight partial sums of the portable body (index mod 8) are the lanes of p0 (0-3) and
     * p1 (4-7); the float products are exact in float64, the additions in the same order */
    const __m256 dn = _mm256_set1_ps(den);
    const int64_t w8 = w & ~(int64_t)7;
    __m256d p0 = _mm256_setzero_pd(), p1 = _mm256_setzero_pd();
    double lanes[8], dot = 0.0;
    int64_t c = 0;
    for (; c < w8; c += 8) {
        const __m256 g = _mm256_loadu_ps(dout + c), y = _mm256_loadu_ps(o + c);
        _mm256_storeu_ps(dnum + c, _mm256_div_ps(g, dn));
        p0 = _mm256_add_pd(p0, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(g)),
                                             _mm256_cvtps_pd(_mm256_castps256_ps128(y))));
        p1 = _mm256_add_pd(p1, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(g, 1)),
                                             _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1))));
    }
    for (; c < w; c++) {
        dnum[c] = dout[c] / den;
        dot += (double)dout[c] * (double)o[c];
    }
    _mm256_storeu_pd(lanes, p0);
    _mm256_storeu_pd(lanes + 4, p1);
    for (int j = 0; j < 8; j++) dot += lanes[j];
    *dden = -dot / den;
    return 1;
}

/* ---- causal linear backward: a chunk's float64 sums ----------------------------------------- */
/* The portable loops' roundings (products and sums separately rounded, no FMA), 8 columns at a
 * time across all the chunk's tokens: each column's sums are independent of the others', so
 * the column blocks' order changes no bit, and a block's z stays in two registers. */
int mmi_attn_lin_acc_avx2(int64_t len, int64_t n, int rev, const double *a, const float *x,
                          double *z, float *g)
{
    const int64_t n8 = n & ~(int64_t)7;
    int64_t c = 0;
    for (; c < n8; c += 8) {
        __m256d z0 = _mm256_loadu_pd(z + c), z1 = _mm256_loadu_pd(z + c + 4);
        for (int64_t i = 0; i < len; i++) {
            const int64_t t = rev ? len - 1 - i : i;
            const __m256d at = _mm256_set1_pd(a[t]);
            const float *xt = x + t * n + c;
            float *gt = g + t * n + c;
            const __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(xt)),
                          x1 = _mm256_cvtps_pd(_mm_loadu_ps(xt + 4));
            __m256d g0 = _mm256_cvtps_pd(_mm_loadu_ps(gt)),
                    g1 = _mm256_cvtps_pd(_mm_loadu_ps(gt + 4));
            if (rev) {
                z0 = _mm256_add_pd(z0, _mm256_mul_pd(at, x0));
                z1 = _mm256_add_pd(z1, _mm256_mul_pd(at, x1));
                g0 = _mm256_add_pd(g0, z0);
                g1 = _mm256_add_pd(g1, z1);
            } else {
                z0 = _mm256_add_pd(z0, x0);
                z1 = _mm256_add_pd(z1, x1);
                g0 = _mm256_add_pd(g0, _mm256_mul_pd(z0, at));
                g1 = _mm256_add_pd(g1, _mm256_mul_pd(z1, at));
            }
            _mm_storeu_ps(gt, _mm256_cvtpd_ps(g0));
            _mm_storeu_ps(gt + 4, _mm256_cvtpd_ps(g1));
        }
        _mm256_storeu_pd(z + c, z0);
        _mm256_storeu_pd(z + c + 4, z1);
    }
    for (; c < n; c++) /* the columns past the last 8-block, as the portable loops */
        for (int64_t i = 0; i < len; i++) {
            const int64_t t = rev ? len - 1 - i : i;
            if (rev) {
                z[c] += a[t] * x[t * n + c];
                g[t * n + c] = (float)(g[t * n + c] + z[c]);
            } else {
                z[c] += x[t * n + c];
                g[t * n + c] = (float)(g[t * n + c] + z[c] * a[t]);
            }
        }
    return 1;
}

/* ---- copies kept for a later pass: non-temporal stores --------------------------------------- */
/* Streaming stores write whole lines without reading them first (a plain store's miss fetches
 * the line, doubling the traffic of a copy that leaves the cache anyway), and the sfence
 * orders them before whatever publishes the rows to another thread. */
int mmi_attn_copy_keep_avx2(int64_t n, const float *src, float *dst, int fence)
{
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31) != 0; i++) dst[i] = src[i];
    for (; i + 16 <= n; i += 16) {
        _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
        _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
    }
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; i++) dst[i] = src[i];
    if (fence) _mm_sfence();
    return 1;
}

/* ---- causal linear: products with at most 64 output columns -------------------------------- */
/*
 * mmi_attn_lin_tile on AVX2: C = A B (mode 0), C += A B (1) or C = tril(A B) (2) for n <= 64,
 * the reduction in one or two segments read where they lie (mmi_attn_lin_seg), so the stacked
 * operands of the linear kernels are not copied together. 16-column strips; in each, the m rows
 * in tiles of 5 or 6 rows (10 or 12 accumulators: the GEMM strip's 6-row tiles with a 4-row or
 * shorter tail leave 8 or fewer FMA chains for the FMA latency at m = 16 and 64), and under
 * mode 2 a tile computes only the registers some of its rows keep (the triangle's upper
 * registers are stored as zeros without being formed). No alpha, and the old C added once at
 * the end. Each element is the GEMM direct kernel's: an FMA chain over the reduction from zero,
 * then (mode 1) one rounded addition of the old C (the GEMM's 1 * sum + 1 * C), so the bits of
 * mmi_attn_tile_nn / mmi_attn_tile_tn with alpha 1 within one k block.
 */
/* The register tile is a statement macro template that clang-format 14 re-wraps on every pass
 * (as in gemm_ukr_avx2.c). */
/* clang-format off */
/* Lanes j < n of 8 (n may be outside 0..8). */
MMI_AVX2_INLINE __m256i lt_lanes(int64_t n)
{
    const int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Stores accumulator v as register u (columns 8u..8u+7 of the strip) of a row under MODE; i:
 * the row's index less the strip's first column (mode 2 keeps the lanes at columns <= the
 * row); m: the strip's column lanes of register u (FULL: all). */
MMI_AVX2_INLINE void lt_st(const int MODE, const int FULL, __m256 v, float *cp, int64_t i, int u,
                           __m256i m, const float *c0p, __m256 fr)
{
    if (MODE == 1)
        v = _mm256_add_ps(v, FULL ? _mm256_loadu_ps(cp) : _mm256_maskload_ps(cp, m));
    if (MODE == 3) /* mode 3 (mmi_attn_lin_tile_rs): + f_row C0, the product rounded first */
        v = _mm256_add_ps(
            v, _mm256_mul_ps(FULL ? _mm256_loadu_ps(c0p) : _mm256_maskload_ps(c0p, m), fr));
    if (MODE == 2) v = _mm256_and_ps(v, _mm256_castsi256_ps(lt_lanes(i + 1 - 8 * u)));
    if (FULL)
        _mm256_storeu_ps(cp, v);
    else
        _mm256_maskstore_ps(cp, m, v);
}

/* R rows (from row i0) x NV registers of the strip at column j0 (c at row i0 of the strip);
 * with NV = 1 the second register is stored as zeros (mode 2's upper triangle, or nothing when
 * the strip has at most 8 columns); FULL: 16 whole columns, no masks; KC: the reduction's
 * length when it is that constant (one segment), 0 for any. */
MMI_AVX2_INLINE void lt_tile(const int R, const int NV, const int MODE, const int FULL,
                             const int KC, const mmi_attn_lin_seg *sg, int nseg, int64_t j0,
                             int64_t i0,
                             float *c, int64_t ldc, __m256i m0, __m256i m1, const float *f,
                             const float *c0, int64_t ldc0)
{
    const __m256 z = _mm256_setzero_ps();
    __m256 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z;
    __m256 c41 = z, c50 = z, c51 = z;
    for (int g = 0; g < nseg; g++) {
        const float *a = sg[g].a + i0 * sg[g].a_rs, *b = sg[g].b + j0;
        const int64_t a_rs = sg[g].a_rs, a_cs = sg[g].a_cs, ldb = sg[g].ldb;
        const int64_t kg = sg[g].k;
        /* one k step: the B registers, then per row a broadcast and NV FMAs */
#define LT_STEP                                                                                    \
    {                                                                                              \
        const __m256 b0 = FULL ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);                   \
        const __m256 b1 =                                                                          \
            NV < 2 ? z : FULL ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1);            \
        __m256 av;                                                                                 \
        LT_ROW(0) LT_ROW(1) LT_ROW(2) LT_ROW(3) LT_ROW(4) LT_ROW(5)                                \
    }
#define LT_ROW(r)                                                                                  \
    if (R > r) {                                                                                   \
        av = _mm256_broadcast_ss(a + r * a_rs);                                                    \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                                \
        if (NV > 1) c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                    \
    }
        if (KC) { /* the state updates' k = 16, unrolled: at so short a k the loop's own cost
                   * showed (the 64 x 64 x 16 update 4-6 % faster) */
#pragma GCC unroll 16
            for (int p = 0; p < KC; p++, a += a_cs, b += ldb) LT_STEP
        } else {
            for (int64_t p = 0; p < kg; p++, a += a_cs, b += ldb) LT_STEP
        }
#undef LT_ROW
#undef LT_STEP
    }
#define LT_ST(r)                                                                                   \
    if (R > r) {                                                                                   \
        const __m256 fr = MODE == 3 ? _mm256_broadcast_ss(f + (r)) : z;                             \
        const float *c0r = MODE == 3 ? c0 + (r) * ldc0 : NULL;                                     \
        lt_st(MODE, FULL, c##r##0, c + (r) * ldc, i0 + (r) - j0, 0, m0, c0r, fr);                   \
        lt_st(MODE, FULL, c##r##1, c + (r) * ldc + 8, i0 + (r) - j0, 1, m1, c0r ? c0r + 8 : NULL,  \
              fr);                                                                                 \
    }
    LT_ST(0) LT_ST(1) LT_ST(2) LT_ST(3) LT_ST(4) LT_ST(5)
#undef LT_ST
}

/* One strip (nr columns from j0) over the m rows: rows in tiles of 5-6 (ceil(rows / 6) tiles,
 * the rows spread evenly over them); under mode 2 the rows above the strip are zeros and a tile
 * whose rows keep only the strip's first register computes only that one. */
MMI_AVX2_INLINE void lt_strip(const int MODE, const int FULL, const int KC, int64_t m,
                              const mmi_attn_lin_seg *sg, int nseg, int64_t j0, int64_t nr, float *c,
                              int64_t ldc, const float *f, const float *c0, int64_t ldc0)
{
    const __m256i m0 = lt_lanes(nr), m1 = lt_lanes(nr - 8);
    int64_t i0 = 0, t;
    if (MODE == 2)
        for (; i0 < m && i0 < j0; i0++) { /* rows that keep none of the strip */
            float *cp = c + i0 * ldc + j0;
            if (FULL) {
                _mm256_storeu_ps(cp, _mm256_setzero_ps());
                _mm256_storeu_ps(cp + 8, _mm256_setzero_ps());
            } else {
                _mm256_maskstore_ps(cp, m0, _mm256_setzero_ps());
                _mm256_maskstore_ps(cp + 8, m1, _mm256_setzero_ps());
            }
        }
    for (t = (m - i0 + 5) / 6; t > 0; t--) {
        const int64_t r = (m - i0 + t - 1) / t;
        const int nv = nr <= 8 || (MODE == 2 && i0 + r - 1 < j0 + 8) ? 1 : 2;
        float *ct = c + i0 * ldc + j0;
        const float *ft = MODE == 3 ? f + i0 : NULL, *c0t = MODE == 3 ? c0 + i0 * ldc0 + j0 : NULL;
#define LT_CASE(R)                                                                                 \
    case R:                                                                                        \
        if (nv == 1)                                                                               \
            lt_tile(R, 1, MODE, FULL, 0, sg, nseg, j0, i0, ct, ldc, m0, m1, ft, c0t, ldc0);        \
        else                                                                                       \
            lt_tile(R, 2, MODE, FULL, R >= 5 ? KC : 0, sg, nseg, j0, i0, ct, ldc, m0, m1, ft, c0t,  \
                    ldc0);                                                                         \
        break;
        switch (r) {
        LT_CASE(1) LT_CASE(2) LT_CASE(3) LT_CASE(4) LT_CASE(5) LT_CASE(6)
        default: break;
        }
#undef LT_CASE
        i0 += r;
    }
}

MMI_AVX2_INLINE void lt_all(const int MODE, int64_t m, int64_t n, const mmi_attn_lin_seg *sg,
                            int nseg, float *c, int64_t ldc, const float *f, const float *c0,
                            int64_t ldc0)
{
    int64_t j0 = 0;
    if (MODE != 0 && MODE != 2 && nseg == 1 && sg->k == 16) /* a state update: whole 5-6 row tiles unrolled */
        for (; j0 + 16 <= n; j0 += 16)
            lt_strip(MODE, 1, 16, m, sg, nseg, j0, 16, c, ldc, f, c0, ldc0);
    for (; j0 + 16 <= n; j0 += 16)
        lt_strip(MODE, 1, 0, m, sg, nseg, j0, 16, c, ldc, f, c0, ldc0);
    if (j0 < n) lt_strip(MODE, 0, 0, m, sg, nseg, j0, n - j0, c, ldc, f, c0, ldc0);
}

int mmi_attn_lin_tile_avx2(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                           float *c, int64_t ldc)
{
    if (m < 1 || n < 1 || n > 64 || nseg < 1 || nseg > 2) return 0;
    if (mode == 1)
        lt_all(1, m, n, sg, nseg, c, ldc, NULL, NULL, 0);
    else if (mode == 2)
        lt_all(2, m, n, sg, nseg, c, ldc, NULL, NULL, 0);
    else
        lt_all(0, m, n, sg, nseg, c, ldc, NULL, NULL, 0);
    return 1;
}

/* mmi_attn_lin_tile_rs on AVX2: lin_tile's mode 1 with the old C read from c0 and scaled by f
 * per row on the way (mode 3 of the tiles above). */
int mmi_attn_lin_tile_rs_avx2(int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                              const float *f, const float *c0, int64_t ldc0, float *c, int64_t ldc)
{
    if (m < 1 || n < 1 || n > 64 || nseg < 1 || nseg > 2) return 0;
    lt_all(3, m, n, sg, nseg, c, ldc, f, c0, ldc0);
    return 1;
}
/* clang-format on */

/* ---- one online-softmax row (mmi_attn_softmax_row) in one call ------------------------------ */
/* The portable body's steps with their roundings: the maximum over the visible keys (max_ps
 * keeps the running value on a NaN or an equal key, as its `x > m ? x : m` does; lanes, then the
 * scalar tail, then the lanes in order, as its row_max combines them), then exp_sub_avx2's
 * exponentials and sum over the whole row with the keys from lim on as -inf (given 0 here
 * without writing -inf first), alpha by libm's expf, the accumulator scaled. The same bits; the
 * call saves the separate passes (row_max ran 4 lanes wide, the -inf fill, the exp_sub call). */
int mmi_attn_softmax_row_avx2(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                              int64_t dv)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const int64_t l8 = lim & ~(int64_t)7, n8 = n & ~(int64_t)7;
    __m256 mxv = ninf, mv, sum = _mm256_setzero_ps();
    float lanes[8], mx = -INFINITY, mnew, alpha, tail = 0.0f;
    int64_t j = 0;
    for (; j < l8; j += 8) mxv = _mm256_max_ps(_mm256_loadu_ps(s + j), mxv);
    for (; j < lim; j++) mx = s[j] > mx ? s[j] : mx;
    _mm256_storeu_ps(lanes, mxv);
    for (int c = 0; c < 8; c++) mx = lanes[c] > mx ? lanes[c] : mx;
    if (mx == -INFINITY) { /* nothing visible: the row of P is 0 */
        for (j = 0; j < n; j++) s[j] = 0.0f;
        return 1;
    }
    mnew = (float)*m > mx ? (float)*m : mx;
    /* expf(0) is 1 exactly: a row whose maximum did not move (most of them after the first
     * blocks) skips the libm call */
    alpha = *m == -INFINITY                       ? 0.0f
            : mnew == (float)*m && isfinite(mnew) ? 1.0f
                                                  : expf((float)*m - mnew);
    mv = _mm256_set1_ps(mnew);
    for (j = 0; j < n8; j += 8) {
        __m256 x = _mm256_loadu_ps(s + j), e;
        if (j + 8 > lim) /* masked keys as -inf */
            x = _mm256_blendv_ps(ninf, x, _mm256_castsi256_ps(lt_lanes(lim - j)));
        e = exp_softmax(_mm256_sub_ps(x, mv));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (j < n) {
        float buf[8];
        const int64_t r = n - j;
        for (int u = 0; u < 8; u++) buf[u] = u < r && j + u < lim ? s[j + u] - mnew : -INFINITY;
        _mm256_storeu_ps(buf, exp_softmax(_mm256_loadu_ps(buf)));
        for (int64_t u = 0; u < r; u++) {
            s[j + u] = buf[u];
            tail += buf[u];
        }
    }
    *l = *l * alpha + (hsum(sum) + tail);
    if (alpha != 1.0f) {
        const __m256 a = _mm256_set1_ps(alpha);
        int64_t c = 0;
        for (; c + 8 <= dv; c += 8)
            _mm256_storeu_ps(acc + c, _mm256_mul_ps(_mm256_loadu_ps(acc + c), a));
        for (; c < dv; c++) acc[c] *= alpha;
    }
    *m = mnew;
    return 1;
}

/* clang-format off */
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
    mmi_attn_softmax_row_avx2,
    mmi_attn_rwkv_bonus_avx2, /* RWKV-6's bonus: the portable body's bits */
    mmi_attn_lin_norm_avx2,
    mmi_attn_lin_dnum_avx2,
    mmi_attn_lin_acc_avx2,
    mmi_attn_gate_grad_rows_avx2, /* a chunk's rows, the sums in registers */
    mmi_attn_lin_tile_avx2,
    mmi_attn_copy_keep_avx2,
    mmi_attn_exp_rows_avx2,
    0, /* lin_prefetch: on Zen 3 the forward ~4 % slower with them, the backward unchanged */
    mmi_attn_lin_tile_rs_avx2,
    mmi_attn_exp_ds_rows_avx2,
    mmi_attn_row_dots_avx2,
};
/* clang-format on */

const mmi_attn_isa *mmi_attn_isa_avx2(void) { return &k_avx2; }

#else /* no AVX2/FMA in this build: the portable bodies run */
const mmi_attn_isa *mmi_attn_isa_avx2(void) { return NULL; }
#endif
