/* SPDX-License-Identifier: MIT */
/*
 * attn_simd_avx512.c — AVX-512 (F/DQ/BW/VL) bodies of the attention primitives (attn_simd.c),
 * compiled with the AVX-512 flags and reached through the dispatch table only on CPUs and OSes
 * that run them. The same contracts as attn_simd_avx2.c, 16 lanes a register: each primitive
 * walks its output in column blocks of up to 64 floats (4 registers) held across the
 * reduction, and every tail is one masked vector (masked loads and stores: nothing outside the
 * views is read or written, no scalar tail loops). The promises of mmi_attn_kernels.h hold the
 * same way: rowmat_sub and ds_tile subtract o before the product (a column equal to o gives
 * exactly 0), and gate_row's factors use exp_sub's exponential with the same roundings, so a
 * gated chunk gives the same bits through either.
 *
 * mmi_exp512_scalef (simd/mmi_avx512_math.h) is the Cephes scheme of mmi_exp256 (same reduction and polynomial: the same results
 * wherever they are normal floats, about 2 ulp) with 2^n applied by one vscalefps: results
 * below FLT_MIN are 0 (absolute error below 1.2e-38; -Inf, i.e. masked logits, gives 0),
 * above 88.72 +Inf, NaN stays NaN. It serves both the softmax rows and elu+1 (the AVX2 file
 * needs two). The SSM family's selective_scan_avx512.c has the same function; the two can move
 * into one shared AVX-512 math header.
 */
#include "../simd/mmi_avx512_target.h"
#include "mmi_attn_kernels.h"

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>

#include "../simd/mmi_avx512_math.h"

#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#define INL static inline __attribute__((always_inline))
#else
#define INL static inline
#endif

/* The mask of register u of a W-register block whose last register has the lanes of kl. */
INL __mmask16 umask(int u, int W, __mmask16 kl) { return u == W - 1 ? kl : (__mmask16)0xffff; }

/* ---- y = alpha * x^T Mt over a block of W registers (the last one with the lanes of kl) --- */
INL void rowmat_blk(const int W, __mmask16 kl, int64_t k, const float *x, const float *mt,
                    int64_t ld, const float *o, float alpha, float *y)
{
    /* two accumulator sets (even and odd c) hide the FMA latency; o (rowmat_sub) is
     * subtracted from each row before the product */
    __m512 acc[4], acd[4];
    int64_t c = 0;
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) acc[u] = acd[u] = _mm512_setzero_ps();
    for (; c + 1 < k; c += 2) {
        const __m512 x0 = _mm512_set1_ps(x[c]), x1 = _mm512_set1_ps(x[c + 1]);
        const __m512 o0 = _mm512_set1_ps(o ? o[c] : 0.0f), o1 = _mm512_set1_ps(o ? o[c + 1] : 0.0f);
        const float *r0 = mt + c * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            __m512 m0 = _mm512_maskz_loadu_ps(umask(u, W, kl), r0 + 16 * u);
            __m512 m1 = _mm512_maskz_loadu_ps(umask(u, W, kl), r1 + 16 * u);
            if (o) m0 = _mm512_sub_ps(m0, o0), m1 = _mm512_sub_ps(m1, o1);
            acc[u] = _mm512_fmadd_ps(x0, m0, acc[u]);
            acd[u] = _mm512_fmadd_ps(x1, m1, acd[u]);
        }
    }
    if (c < k) {
        const __m512 x0 = _mm512_set1_ps(x[c]), o0 = _mm512_set1_ps(o ? o[c] : 0.0f);
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            __m512 m0 = _mm512_maskz_loadu_ps(umask(u, W, kl), mt + c * ld + 16 * u);
            if (o) m0 = _mm512_sub_ps(m0, o0);
            acc[u] = _mm512_fmadd_ps(x0, m0, acc[u]);
        }
    }
#pragma GCC unroll 4
    for (int u = 0; u < W; u++)
        _mm512_mask_storeu_ps(y + 16 * u, umask(u, W, kl),
                              _mm512_mul_ps(_mm512_add_ps(acc[u], acd[u]), _mm512_set1_ps(alpha)));
}

int mmi_attn_rowmat_avx512(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                           float alpha, float *y)
{
    int64_t j = 0;
    for (; j + 64 <= n_out; j += 64) rowmat_blk(4, 0xffff, k, x, mt + j, ld, NULL, alpha, y + j);
    for (; j < n_out; j += 16)
        rowmat_blk(1, mmi_lanes16(n_out - j), k, x, mt + j, ld, NULL, alpha, y + j);
    return 1;
}

int mmi_attn_rowmat_sub_avx512(int64_t n_out, int64_t k, const float *x, const float *mt,
                               int64_t ld, const float *o, float alpha, float *y)
{
    int64_t j = 0;
    for (; j + 64 <= n_out; j += 64) rowmat_blk(4, 0xffff, k, x, mt + j, ld, o, alpha, y + j);
    for (; j < n_out; j += 16)
        rowmat_blk(1, mmi_lanes16(n_out - j), k, x, mt + j, ld, o, alpha, y + j);
    return 1;
}

/* ---- softmax backward's dS tile: p[r, j] *= x_r . (mt[:, j] - o_r) ------------------------ */
/* R rows (1, 2 or 4, a constant in each instantiation) x 32 columns: 2R accumulators held
 * across the reduction, every mt row loaded once for R output rows (the subtraction and the
 * FMA are the work; more rows would only share the two mt loads further). k0, k1: the columns
 * of the two registers (a partial strip reads and writes only its columns). */
INL void ds_blk(const int R, int64_t k, const float *x, const float *o, int64_t ldx,
                const float *mt, int64_t ldm, float *p, int64_t ldp, __mmask16 k0, __mmask16 k1)
{
    __m512 a0[4], a1[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < k; c++) {
        const float *row = mt + c * ldm;
        const __m512 m0 = _mm512_maskz_loadu_ps(k0, row), m1 = _mm512_maskz_loadu_ps(k1, row + 16);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * ldx + c]), ob = _mm512_set1_ps(o[r * ldx + c]);
            a0[r] = _mm512_fmadd_ps(xb, _mm512_sub_ps(m0, ob), a0[r]);
            a1[r] = _mm512_fmadd_ps(xb, _mm512_sub_ps(m1, ob), a1[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float *pr = p + r * ldp;
        _mm512_mask_storeu_ps(pr, k0, _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, pr), a0[r]));
        _mm512_mask_storeu_ps(pr + 16, k1,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(k1, pr + 16), a1[r]));
    }
}

/* One 32-column strip (nv valid columns): whole 4-row blocks, then 2 and 1 for the row tail. */
static void ds_strip(int64_t rows, int64_t k, const float *x, const float *o, int64_t ldx,
                     const float *mt, int64_t ldm, float *p, int64_t ldp, int64_t nv)
{
    const __mmask16 k0 = mmi_lanes16(nv), k1 = mmi_lanes16(nv - 16);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        ds_blk(4, k, x + r * ldx, o + r * ldx, ldx, mt, ldm, p + r * ldp, ldp, k0, k1);
    if (r + 2 <= rows) {
        ds_blk(2, k, x + r * ldx, o + r * ldx, ldx, mt, ldm, p + r * ldp, ldp, k0, k1);
        r += 2;
    }
    if (r < rows) ds_blk(1, k, x + r * ldx, o + r * ldx, ldx, mt, ldm, p + r * ldp, ldp, k0, k1);
}

int mmi_attn_ds_tile_avx512(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                            int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp)
{
    for (int64_t j = 0; j < n; j += 32)
        ds_strip(rows, k, x, o, ldx, mt + j, ldm, p + j, ldp, n - j < 32 ? n - j : 32);
    return 1;
}

/* ---- RELU2 tile rows ------------------------------------------------------------------------ */
/* lim is already clamped to [0, n] by the caller (attn_simd.c). Lanes from lim on load as 0
 * and store 0 (the causal mask). max(v, 0) returns 0 for NaN and -0, as the portable test
 * x > 0 does. */
int mmi_attn_relu_row_avx512(int64_t n, int64_t lim, float *x, int square)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __m512 y = _mm512_max_ps(_mm512_maskz_loadu_ps(mmi_lanes16(lim - j), x + j), zero);
        _mm512_mask_storeu_ps(x + j, mmi_lanes16(n - j), square ? _mm512_mul_ps(y, y) : y);
    }
    return 1;
}

int mmi_attn_relu_ds_row_avx512(int64_t n, float *t, float *u, float f)
{
    const __m512 vf = _mm512_set1_ps(f);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 k = mmi_lanes16(n - j);
        const __m512 r = _mm512_maskz_loadu_ps(k, t + j);
        _mm512_mask_storeu_ps(u + j, k,
                              _mm512_mul_ps(_mm512_mul_ps(vf, r), _mm512_maskz_loadu_ps(k, u + j)));
        _mm512_mask_storeu_ps(t + j, k, _mm512_mul_ps(r, r));
    }
    return 1;
}

/* ---- y += p^T Mat --------------------------------------------------------------------------- */
INL void matrow_blk(const int W, __mmask16 kl, int64_t rows, const float *p, const float *mat,
                    int64_t ld, float *y)
{
    __m512 acc[4], acd[4];
    int64_t r = 0;
#pragma GCC unroll 4
    for (int u = 0; u < W; u++)
        acc[u] = _mm512_maskz_loadu_ps(umask(u, W, kl), y + 16 * u), acd[u] = _mm512_setzero_ps();
    for (; r + 1 < rows; r += 2) {
        const __m512 p0 = _mm512_set1_ps(p[r]), p1 = _mm512_set1_ps(p[r + 1]);
        const float *r0 = mat + r * ld, *r1 = r0 + ld;
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) {
            acc[u] =
                _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(umask(u, W, kl), r0 + 16 * u), acc[u]);
            acd[u] =
                _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(umask(u, W, kl), r1 + 16 * u), acd[u]);
        }
    }
    if (r < rows) {
        const __m512 p0 = _mm512_set1_ps(p[r]);
#pragma GCC unroll 4
        for (int u = 0; u < W; u++)
            acc[u] = _mm512_fmadd_ps(
                p0, _mm512_maskz_loadu_ps(umask(u, W, kl), mat + r * ld + 16 * u), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < W; u++)
        _mm512_mask_storeu_ps(y + 16 * u, umask(u, W, kl), _mm512_add_ps(acc[u], acd[u]));
}

int mmi_attn_matrow_acc_avx512(int64_t rows, int64_t n, const float *p, const float *mat,
                               int64_t ld, float *y)
{
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) matrow_blk(4, 0xffff, rows, p, mat + j, ld, y + j);
    for (; j < n; j += 16) matrow_blk(1, mmi_lanes16(n - j), rows, p, mat + j, ld, y + j);
    return 1;
}

/* ---- fused state step ----------------------------------------------------------------------- */
/* ha, hw, hb are compile-time flags (a, w, b present), so each instantiation keeps only the
 * registers it needs. first: this is the first column block (out[r] is set, not added to). */
INL void state_blk(const int W, const int ha, const int hw, const int hb, __mmask16 kl, int first,
                   int64_t rows, const float *a, const float *x, float *st, int64_t ld,
                   const float *w, float *out, const float *b, float *y)
{
    __m512 xv[4], wv[4], yv[4], yd[4];
#pragma GCC unroll 4
    for (int u = 0; u < W; u++) {
        const __mmask16 k = umask(u, W, kl);
        xv[u] = ha ? _mm512_maskz_loadu_ps(k, x + 16 * u) : _mm512_setzero_ps();
        wv[u] = hw ? _mm512_maskz_loadu_ps(k, w + 16 * u) : _mm512_setzero_ps();
        yv[u] = hb ? _mm512_maskz_loadu_ps(k, y + 16 * u) : _mm512_setzero_ps();
        yd[u] = _mm512_setzero_ps();
    }
    for (int64_t r = 0; r < rows; r++) {
        float *row = st + r * ld;
        __m512 sv[4];
#pragma GCC unroll 4
        for (int u = 0; u < W; u++) sv[u] = _mm512_maskz_loadu_ps(umask(u, W, kl), row + 16 * u);
        if (ha) {
            const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
            for (int u = 0; u < W; u++) {
                sv[u] = _mm512_fmadd_ps(ar, xv[u], sv[u]);
                _mm512_mask_storeu_ps(row + 16 * u, umask(u, W, kl), sv[u]);
            }
        }
        if (hw) {
            __m512 d = _mm512_mul_ps(sv[0], wv[0]);
#pragma GCC unroll 4
            for (int u = 1; u < W; u++) d = _mm512_fmadd_ps(sv[u], wv[u], d);
            out[r] = first ? _mm512_reduce_add_ps(d) : out[r] + _mm512_reduce_add_ps(d);
        }
        if (hb) { /* alternate two accumulator sets across rows: twice the FMA chains */
            const __m512 br = _mm512_set1_ps(b[r]);
            if (r & 1) {
#pragma GCC unroll 4
                for (int u = 0; u < W; u++) yd[u] = _mm512_fmadd_ps(br, sv[u], yd[u]);
            } else {
#pragma GCC unroll 4
                for (int u = 0; u < W; u++) yv[u] = _mm512_fmadd_ps(br, sv[u], yv[u]);
            }
        }
    }
    if (hb)
#pragma GCC unroll 4
        for (int u = 0; u < W; u++)
            _mm512_mask_storeu_ps(y + 16 * u, umask(u, W, kl), _mm512_add_ps(yv[u], yd[u]));
}

/* One instantiation per flag combination and block width; the tail is a masked 1-register
 * block. */
#define STATE_CASE(HA, HW, HB)                                                                     \
    do {                                                                                           \
        for (; j + 64 <= n; j += 64)                                                               \
            state_blk(4, HA, HW, HB, 0xffff, j == 0, rows, a, x + j, st + j, ld, w + j, out, b,    \
                      y + j);                                                                      \
        for (; j < n; j += 16)                                                                     \
            state_blk(1, HA, HW, HB, mmi_lanes16(n - j), j == 0, rows, a, x + j, st + j, ld,       \
                      w + j, out, b, y + j);                                                       \
    } while (0)

int mmi_attn_state_step_avx512(int64_t rows, int64_t n, const float *a, const float *x, float *st,
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
        break;
    }
    return 1;
}

/* ---- softmax rows ----------------------------------------------------------------------------- */
int mmi_attn_exp_sub_avx512(int64_t n, const float *s, float mx, float *p, float *sum)
{
    const __m512 m = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 k = mmi_lanes16(n - j);
        const __m512 e = _mm512_maskz_mov_ps(
            k, mmi_exp512_scalef(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m)));
        _mm512_mask_storeu_ps(p + j, k, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum = _mm512_reduce_add_ps(acc);
    return 1;
}

/* ---- one online-softmax row (mmi_attn_softmax_row): the maximum over the visible keys, then
 * exp_sub's exponentials and lane sums (the same bits), masked keys 0, the accumulator
 * rescaled, all 16 lanes a step; alpha is libm's expf as in the portable body. */
int mmi_attn_softmax_row_avx512(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                                int64_t dv)
{
    __m512 mxv = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps(), mv;
    float mx, mnew, alpha;
    int64_t j = 0;
    for (; j < lim; j += 16) { /* max(x, m) returns m when x is NaN: NaN ignored */
        const __mmask16 k = mmi_lanes16(lim - j);
        mxv = _mm512_mask_max_ps(mxv, k, _mm512_maskz_loadu_ps(k, s + j), mxv);
    }
    mx = _mm512_reduce_max_ps(mxv);
    if (mx == -INFINITY) {
        for (j = 0; j < n; j += 16)
            _mm512_mask_storeu_ps(s + j, mmi_lanes16(n - j), _mm512_setzero_ps());
        return 1;
    }
    mnew = (float)*m > mx ? (float)*m : mx;
    alpha = *m == -INFINITY ? 0.0f : expf((float)*m - mnew);
    mv = _mm512_set1_ps(mnew);
    for (j = 0; j < n; j += 16) {
        const __mmask16 k = mmi_lanes16(lim - j);
        __m512 e = _mm512_setzero_ps();
        if (k) { /* masked keys are 0, as exp_sub gives for their -Inf */
            e = _mm512_maskz_mov_ps(
                k, mmi_exp512_scalef(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), mv)));
            sum = _mm512_add_ps(sum, e);
        }
        _mm512_mask_storeu_ps(s + j, mmi_lanes16(n - j), e);
    }
    *l = *l * alpha + _mm512_reduce_add_ps(sum);
    if (alpha != 1.0f) {
        const __m512 a = _mm512_set1_ps(alpha);
        for (int64_t c = 0; c < dv; c += 16) {
            const __mmask16 k = mmi_lanes16(dv - c);
            _mm512_mask_storeu_ps(acc + c, k, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(k, acc + c)));
        }
    }
    *m = mnew;
    return 1;
}

/* ---- per-key gate gradient over a chunk's rows (mmi_attn_gate_grad_rows), last row first: the
 * AVX2 row body's operations on 8 float64 lanes a register (products of the widened floats,
 * acc + (a - b), then the rounding to float), so the same bits; a block of 64 columns keeps its
 * running sums in 8 registers across the rows instead of a load and store of acc per row ---- */
INL void ggrad_reg(int64_t o, __mmask8 m, __m512d sc, __m256 scf, const float *q, float *dq,
                   const float *k, const float *dk, float *dg, __m512d *a)
{
    const __m256 g = _mm256_maskz_loadu_ps(m, dq + o);
    const __m512d x = _mm512_mul_pd(
        _mm512_mul_pd(sc, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, q + o))), _mm512_cvtps_pd(g));
    const __m512d y = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, k + o)),
                                    _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dk + o)));
    *a = _mm512_add_pd(*a, _mm512_sub_pd(x, y));
    _mm256_mask_storeu_ps(dg + o, m, _mm512_cvtpd_ps(*a));
    _mm256_mask_storeu_ps(dq + o, m, _mm256_mul_ps(g, scf));
}

int mmi_attn_gate_grad_rows_avx512(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                                   const float *k, const float *dk, double *acc, float *dg)
{
    const __m512d sc = _mm512_set1_pd((double)scale);
    const __m256 scf = _mm256_set1_ps(scale);
    int64_t c0 = 0;
    for (; c0 + 64 <= n; c0 += 64) {
        __m512d a0 = _mm512_loadu_pd(acc + c0), a1 = _mm512_loadu_pd(acc + c0 + 8);
        __m512d a2 = _mm512_loadu_pd(acc + c0 + 16), a3 = _mm512_loadu_pd(acc + c0 + 24);
        __m512d a4 = _mm512_loadu_pd(acc + c0 + 32), a5 = _mm512_loadu_pd(acc + c0 + 40);
        __m512d a6 = _mm512_loadu_pd(acc + c0 + 48), a7 = _mm512_loadu_pd(acc + c0 + 56);
        for (int64_t t = rows - 1; t >= 0; t--) {
            const int64_t o = t * n + c0;
            ggrad_reg(o, 0xff, sc, scf, q, dq, k, dk, dg, &a0);
            ggrad_reg(o + 8, 0xff, sc, scf, q, dq, k, dk, dg, &a1);
            ggrad_reg(o + 16, 0xff, sc, scf, q, dq, k, dk, dg, &a2);
            ggrad_reg(o + 24, 0xff, sc, scf, q, dq, k, dk, dg, &a3);
            ggrad_reg(o + 32, 0xff, sc, scf, q, dq, k, dk, dg, &a4);
            ggrad_reg(o + 40, 0xff, sc, scf, q, dq, k, dk, dg, &a5);
            ggrad_reg(o + 48, 0xff, sc, scf, q, dq, k, dk, dg, &a6);
            ggrad_reg(o + 56, 0xff, sc, scf, q, dq, k, dk, dg, &a7);
        }
        _mm512_storeu_pd(acc + c0, a0), _mm512_storeu_pd(acc + c0 + 8, a1);
        _mm512_storeu_pd(acc + c0 + 16, a2), _mm512_storeu_pd(acc + c0 + 24, a3);
        _mm512_storeu_pd(acc + c0 + 32, a4), _mm512_storeu_pd(acc + c0 + 40, a5);
        _mm512_storeu_pd(acc + c0 + 48, a6), _mm512_storeu_pd(acc + c0 + 56, a7);
    }
    for (; c0 < n; c0 += 8) { /* the last columns, 8 at a time (a masked tail) */
        const int64_t nc = n - c0 < 8 ? n - c0 : 8;
        const __mmask8 m = (__mmask8)((1u << nc) - 1u);
        __m512d a = _mm512_maskz_loadu_pd(m, acc + c0);
        for (int64_t t = rows - 1; t >= 0; t--)
            ggrad_reg(t * n + c0, m, sc, scf, q, dq, k, dk, dg, &a);
        _mm512_mask_storeu_pd(acc + c0, m, a);
    }
    return 1;
}

/* ---- RWKV-6's bonus (mmi_attn_rwkv_bonus): the eight float64 partial sums of the portable body
 * are the eight lanes, the tail and the final additions in its order: the same bits ---------- */
int mmi_attn_rwkv_bonus_avx512(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                               const float *k, const float *v, float *o, double *c)
{
    __m512d part = _mm512_setzero_pd();
    double acc = 0.0, pp[8];
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) {
        const __m512d rr = _mm512_cvtps_pd(_mm256_loadu_ps(r + i));
        const __m512d uu = _mm512_cvtps_pd(_mm256_loadu_ps(u + i));
        const __m512d kk = _mm512_cvtps_pd(_mm256_loadu_ps(k + i));
        part = _mm512_add_pd(part, _mm512_mul_pd(_mm512_mul_pd(rr, uu), kk));
    }
    for (; i < d; i++) acc += (double)r[i] * (double)u[i] * (double)k[i];
    _mm512_storeu_pd(pp, part);
    for (int j = 0; j < 8; j++) acc += pp[j];
    acc *= (double)scale;
    *c = acc;
    {
        const __m512 f = _mm512_set1_ps((float)acc);
        for (int64_t e = 0; e < dv; e += 16) {
            const __mmask16 km = mmi_lanes16(dv - e);
            const __m512 y = _mm512_mul_ps(f, _mm512_maskz_loadu_ps(km, v + e));
            _mm512_mask_storeu_ps(o + e, km, _mm512_add_ps(_mm512_maskz_loadu_ps(km, o + e), y));
        }
    }
    return 1;
}

/* ---- one row of per-key gates (mmi_attn_gate_row): the float64 cumulative sum, then the
 * factored query and key rows, each operation as the portable body rounds it and the
 * exponential exp_sub uses (exp_sub(s, 0) computes mmi_exp512_scalef(s - 0) = mmi_exp512_scalef(s) bitwise) ------- */
int mmi_attn_gate_row_avx512(int64_t n, const double *prev, const float *g, double *bt,
                             const float *q, float scale, const float *k, float *qe, float *kh,
                             float *ex)
{
    const __m512 lo = _mm512_set1_ps(-128.0f), sc = _mm512_set1_ps(scale);
    for (int64_t c = 0; c < n; c += 16) {
        const __mmask16 km = mmi_lanes16(n - c);
        const __mmask8 k0 = (__mmask8)(km & 0xff), k1 = (__mmask8)(km >> 8);
        /* g finite: max = the clamp (NaN gives -128 as the portable test g > -128 does) */
        const __m512 x = _mm512_max_ps(_mm512_maskz_loadu_ps(km, g + c), lo);
        __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
        __m512d b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
        if (prev) {
            b0 = _mm512_add_pd(_mm512_maskz_loadu_pd(k0, prev + c), b0);
            b1 = _mm512_add_pd(_mm512_maskz_loadu_pd(k1, prev + c + 8), b1);
        }
        _mm512_mask_storeu_pd(bt + c, k0, b0);
        _mm512_mask_storeu_pd(bt + c + 8, k1, b1);
        if (q) {
            const __m512 e = mmi_exp512_scalef(_mm512_insertf32x8(
                _mm512_castps256_ps512(_mm512_cvtpd_ps(b0)), _mm512_cvtpd_ps(b1), 1));
            const __m512 qs = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(km, q + c));
            _mm512_mask_storeu_ps(qe + c, km, _mm512_mul_ps(qs, e));
            _mm512_mask_storeu_ps(kh + c, km, _mm512_div_ps(_mm512_maskz_loadu_ps(km, k + c), e));
            if (ex) _mm512_mask_storeu_ps(ex + c, km, e);
        }
    }
    return 1;
}

/* ---- elu + 1 feature map ---------------------------------------------------------------------- */
/* min(0, v) passes NaN on (min returns its second operand), so NaN gives NaN as expf does. */
static inline __m512 elu1_16(__m512 v)
{
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
    const __m512 e = mmi_exp512_scalef_nonpos(_mm512_min_ps(zero, v)); /* no overflow */
    return _mm512_mask_blend_ps(pos, e, _mm512_add_ps(v, _mm512_set1_ps(1.0f)));
}

/* Two whole vectors a step with plain loads and stores (independent exponentials side by
 * side), the tail masked. */
int mmi_attn_elu1_avx512(int64_t n, const float *x, float *y)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 a = elu1_16(_mm512_loadu_ps(x + i)), b = elu1_16(_mm512_loadu_ps(x + i + 16));
        _mm512_storeu_ps(y + i, a);
        _mm512_storeu_ps(y + i + 16, b);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = mmi_lanes16(n - i);
        _mm512_mask_storeu_ps(y + i, k, elu1_16(_mm512_maskz_loadu_ps(k, x + i)));
    }
    return 1;
}

/* dx = dy * min(y, 1): elu+1's derivative from its output (NaN y stays NaN). dx may alias dy. */
int mmi_attn_elu1_bwd_avx512(int64_t n, const float *y, const float *dy, float *dx)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = mmi_lanes16(n - i);
        _mm512_mask_storeu_ps(dx + i, k,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dy + i),
                                            _mm512_min_ps(one, _mm512_maskz_loadu_ps(k, y + i))));
    }
    return 1;
}

/* ---- linear attention normaliser: z += k, q . z in float64, 8 lanes, two chains -------------- */
int mmi_attn_norm_step_avx512(int64_t n, const float *k, double *z, const float *q, double *dot)
{
    /* Whole 16-blocks with plain loads and stores: z is stored here and loaded again by the
     * next token's call, and a masked store does not forward to that load (a stall per
     * vector); the masks only for the tail. */
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512d z0 = _mm512_loadu_pd(z + c), z1 = _mm512_loadu_pd(z + c + 8);
        if (k) {
            z0 = _mm512_add_pd(z0, _mm512_cvtps_pd(_mm256_loadu_ps(k + c)));
            z1 = _mm512_add_pd(z1, _mm512_cvtps_pd(_mm256_loadu_ps(k + c + 8)));
            _mm512_storeu_pd(z + c, z0);
            _mm512_storeu_pd(z + c + 8, z1);
        }
        if (q) {
            a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(q + c)), z0, a0);
            a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(q + c + 8)), z1, a1);
        }
    }
    if (c < n) {
        const __mmask16 km = mmi_lanes16(n - c);
        const __mmask8 k0 = (__mmask8)(km & 0xff), k1 = (__mmask8)(km >> 8);
        __m512d z0 = _mm512_maskz_loadu_pd(k0, z + c), z1 = _mm512_maskz_loadu_pd(k1, z + c + 8);
        if (k) {
            z0 = _mm512_add_pd(z0, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k0, k + c)));
            z1 = _mm512_add_pd(z1, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k1, k + c + 8)));
            _mm512_mask_storeu_pd(z + c, k0, z0);
            _mm512_mask_storeu_pd(z + c + 8, k1, z1);
        }
        if (q) {
            a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k0, q + c)), z0, a0);
            a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k1, q + c + 8)), z1, a1);
        }
    }
    *dot = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    return 1;
}

/* ---- causal linear forward: a chunk's normaliser rows, z held in registers ------------------ */
INL void lin_norm_body(int64_t len, int64_t n, const float *q, const float *k, double *z,
                       int normalize, double eps, float *den, float *x, int64_t ldx)
{
    /* z (n <= 64 doubles) stays in eight registers for the chunk; each token's sums run in
     * mmi_attn_norm_step_avx512's order (chain a0 over the low halves of the 16-blocks, a1
     * over the high halves, masked zeros past n), so den has the same bits as there */
    __m512d zr[8];
    const int64_t nb = (n + 15) / 16;
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const __mmask16 km = mmi_lanes16(n - 16 * b);
        zr[2 * b] = _mm512_maskz_loadu_pd((__mmask8)(km & 0xff), z + 16 * b);
        zr[2 * b + 1] = _mm512_maskz_loadu_pd((__mmask8)(km >> 8), z + 16 * b + 8);
    }
    for (int64_t t = 0; t < len; t++) {
        const float *qt = q + t * n, *kt = k + t * n;
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
        double dn = 1.0;
        float inv;
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            const __mmask16 km = mmi_lanes16(n - 16 * b);
            const __mmask8 k0 = (__mmask8)(km & 0xff), k1 = (__mmask8)(km >> 8);
            if (b >= nb) break;
            zr[2 * b] =
                _mm512_add_pd(zr[2 * b], _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k0, kt + 16 * b)));
            zr[2 * b + 1] = _mm512_add_pd(
                zr[2 * b + 1], _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k1, kt + 16 * b + 8)));
            a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k0, qt + 16 * b)), zr[2 * b],
                                 a0);
            a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k1, qt + 16 * b + 8)),
                                 zr[2 * b + 1], a1);
        }
        if (normalize) {
            dn = eps + _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
            if (dn == 0.0) dn = 1.0; /* 0/0 (eps 0, zero features): the row outputs 0 */
        }
        den[t] = (float)dn;
        inv = normalize ? (float)(1.0 / dn) : 1.0f;
        for (int64_t c = 0; c < n; c += 16) {
            const __mmask16 km = mmi_lanes16(n - c);
            _mm512_mask_storeu_ps(
                x + t * ldx + c, km,
                _mm512_mul_ps(_mm512_set1_ps(inv), _mm512_maskz_loadu_ps(km, qt + c)));
        }
    }
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const __mmask16 km = mmi_lanes16(n - 16 * b);
        _mm512_mask_storeu_pd(z + 16 * b, (__mmask8)(km & 0xff), zr[2 * b]);
        _mm512_mask_storeu_pd(z + 16 * b + 8, (__mmask8)(km >> 8), zr[2 * b + 1]);
    }
}

int mmi_attn_lin_norm_avx512(int64_t len, int64_t n, const float *q, const float *k, double *z,
                             int normalize, double eps, float *den, float *x, int64_t ldx)
{
    if (n > 64) return 0;
    /* n = 64 (the usual head width) with a constant n: the masks are constants and the loads
     * and stores plain ones (those with run-time masks made the whole call 30 % slower) */
    if (n == 64)
        lin_norm_body(len, 64, q, k, z, normalize, eps, den, x, ldx);
    else
        lin_norm_body(len, n, q, k, z, normalize, eps, den, x, ldx);
    return 1;
}

/* ---- causal linear backward: dnum and dden of one row ---------------------------------------- */
int mmi_attn_lin_dnum_avx512(int64_t w, const float *dout, const float *o, float den, float *dnum,
                             double *dden)
{
    /* the eight partial sums of the portable body are the eight lanes of part (index mod 8);
     * the float products are exact in float64, so the order of the additions is all that
     * matters, and it is the same */
    const __m512 dn = _mm512_set1_ps(den);
    const int64_t w8 = w & ~(int64_t)7;
    __m512d part = _mm512_setzero_pd();
    double lanes[8], dot = 0.0;
    int64_t c = 0;
    for (; c < w8; c += 16) {
        const __mmask16 km = mmi_lanes16(w8 - c);
        const __m512 g = _mm512_maskz_loadu_ps(km, dout + c), y = _mm512_maskz_loadu_ps(km, o + c);
        _mm512_mask_storeu_ps(dnum + c, km, _mm512_div_ps(g, dn));
        part = _mm512_add_pd(part, _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(g)),
                                                 _mm512_cvtps_pd(_mm512_castps512_ps256(y))));
        if (km >> 8)
            part =
                _mm512_add_pd(part, _mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1)),
                                                  _mm512_cvtps_pd(_mm512_extractf32x8_ps(y, 1))));
    }
    for (c = w8; c < w; c++) {
        dnum[c] = dout[c] / den;
        dot += (double)dout[c] * (double)o[c];
    }
    _mm512_storeu_pd(lanes, part);
    for (int j = 0; j < 8; j++) dot += lanes[j];
    *dden = -dot / den;
    return 1;
}

/* The first n of 8 lanes (none for n <= 0, all for n >= 8). */
static inline __mmask8 mmi_lanes8(int64_t n) { return (__mmask8)(mmi_lanes16(n) & 0xff); }

/* ---- causal linear backward: a chunk's float64 sums, z held in registers ------------------- */
int mmi_attn_lin_acc_avx512(int64_t len, int64_t n, int rev, const double *a, const float *x,
                            double *z, float *g)
{
    /* the portable loops' roundings: products and sums separately rounded (no FMA) */
    __m512d zr[8];
    if (n > 64) return 0;
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) zr[b] = _mm512_maskz_loadu_pd(mmi_lanes8(n - 8 * b), z + 8 * b);
    for (int64_t i = 0; i < len; i++) {
        const int64_t t = rev ? len - 1 - i : i;
        const __m512d at = _mm512_set1_pd(a[t]);
        const float *xt = x + t * n;
        float *gt = g + t * n;
#pragma GCC unroll 8
        for (int b = 0; b < 8; b++) {
            const __mmask8 km = mmi_lanes8(n - 8 * b);
            __m512d xv, gv;
            if (8 * b >= n) break;
            xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(km, xt + 8 * b));
            gv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(km, gt + 8 * b));
            if (rev) {
                zr[b] = _mm512_add_pd(zr[b], _mm512_mul_pd(at, xv));
                gv = _mm512_add_pd(gv, zr[b]);
            } else {
                zr[b] = _mm512_add_pd(zr[b], xv);
                gv = _mm512_add_pd(gv, _mm512_mul_pd(zr[b], at));
            }
            _mm256_mask_storeu_ps(gt + 8 * b, km, _mm512_cvtpd_ps(gv));
        }
    }
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) _mm512_mask_storeu_pd(z + 8 * b, mmi_lanes8(n - 8 * b), zr[b]);
    return 1;
}

/* ---- causal linear: products with at most 64 output columns ------------------------------- */
/*
 * C = A B (mode 0), C += A B (1) or C = tril(A B) (2: row i of C keeps columns <= i, zeros
 * after) for n <= 64 columns, the reduction in one or two segments (mmi_attn_lin_seg: each its
 * own A and B with their strides, so a stacked operand such as [S ; V_c] need not be copied
 * together). Rows of C in tiles of 6 x 64 (24 accumulators; each k step 4 B vectors and 6
 * broadcasts, 2.4 FMAs a load against the GEMM tile's 1.7) or, for n <= 16, 16 x 16 (16
 * chains where the GEMM's 12 x 32 tile keeps 12 and its 4-row tail 4); no alpha, the
 * accumulation into C one addition at the end. Each element is the GEMM direct kernel's: an
 * FMA chain over the reduction from zero, then (mode 1) one rounded addition of the old C (the
 * GEMM's 1 * C + 1 * sum), so the bits of mmi_attn_tile_nn / mmi_attn_tile_tn with alpha 1
 * within one k block. At the linear kernels' sizes the GEMM strips' 12 + 4 row split and their
 * alpha and beta epilogue cost a sixth of the K = 16 state update's time, a fifth of the
 * 64 x 16 products' and a quarter of the 16 x 16 triangles'.
 */
/* The register tiles are statement macro templates that clang-format 14 re-wraps on every
 * pass (as in gemm_ukr_avx512.c). */
/* clang-format off */
/* The lanes row i of C keeps in register u under mode 2 (all under 0 and 1). */
INL __mmask16 lt_keep(const int MODE, int64_t i, int u)
{
    return MODE == 2 ? mmi_lanes16(i + 1 - 16 * u) : (__mmask16)0xffff;
}

/* Stores accumulator v as register u of row r (row i0 + r of the product) under MODE. */
INL void lt_store(const int MODE, __m512 v, float *c, int64_t ldc, int64_t i0, int r, int u,
                  __mmask16 m)
{
    float *cp = c + r * ldc + 16 * u;
    if (MODE == 1) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, cp));
    if (MODE == 2) v = _mm512_maskz_mov_ps(lt_keep(2, i0 + r, u), v);
    _mm512_mask_storeu_ps(cp, m, v);
}

INL void lt_tile(const int R, const int NV, const int MODE, const mmi_attn_lin_seg *sg, int nseg,
                 int64_t i0, float *c, int64_t ldc, __mmask16 kl)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    __m512 c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    __m512 c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
    for (int g = 0; g < nseg; g++) {
        const float *a = sg[g].a + i0 * sg[g].a_rs, *b = sg[g].b;
        const int64_t a_rs = sg[g].a_rs, a_cs = sg[g].a_cs, ldb = sg[g].ldb;
        for (int64_t p = 0; p < sg[g].k; p++, a += a_cs, b += ldb) {
            const __m512 b0 = _mm512_maskz_loadu_ps(umask(0, NV, kl), b);
            const __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(umask(1, NV, kl), b + 16) : z;
            const __m512 b2 = NV > 2 ? _mm512_maskz_loadu_ps(umask(2, NV, kl), b + 32) : z;
            const __m512 b3 = NV > 3 ? _mm512_maskz_loadu_ps(umask(3, NV, kl), b + 48) : z;
            __m512 av;
#define LT_ROW(r)                                                                                  \
    if (R > r) {                                                                                   \
        av = _mm512_set1_ps(a[r * a_rs]);                                                          \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                \
        if (NV > 1) c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                                    \
        if (NV > 2) c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2);                                    \
        if (NV > 3) c##r##3 = _mm512_fmadd_ps(av, b3, c##r##3);                                    \
    }
            LT_ROW(0) LT_ROW(1) LT_ROW(2) LT_ROW(3) LT_ROW(4) LT_ROW(5)
#undef LT_ROW
        }
    }
#define LT_ST(r)                                                                                   \
    if (R > r) {                                                                                   \
        lt_store(MODE, c##r##0, c, ldc, i0, r, 0, umask(0, NV, kl));                               \
        if (NV > 1) lt_store(MODE, c##r##1, c, ldc, i0, r, 1, umask(1, NV, kl));                   \
        if (NV > 2) lt_store(MODE, c##r##2, c, ldc, i0, r, 2, umask(2, NV, kl));                   \
        if (NV > 3) lt_store(MODE, c##r##3, c, ldc, i0, r, 3, umask(3, NV, kl));                   \
    }
    LT_ST(0) LT_ST(1) LT_ST(2) LT_ST(3) LT_ST(4) LT_ST(5)
#undef LT_ST
}

/* One register a row (n <= 16), R <= 16 rows. */
INL void lt_tile1(const int R, const int MODE, const mmi_attn_lin_seg *sg, int nseg, int64_t i0,
                  float *c, int64_t ldc, __mmask16 kl)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z;
    __m512 s8 = z, s9 = z, s10 = z, s11 = z, s12 = z, s13 = z, s14 = z, s15 = z;
    for (int g = 0; g < nseg; g++) {
        const float *a = sg[g].a + i0 * sg[g].a_rs, *b = sg[g].b;
        const int64_t a_rs = sg[g].a_rs, a_cs = sg[g].a_cs, ldb = sg[g].ldb;
        /* row r's element as a base (a, or a8 for rows 8-15) plus a multiple of rs, 3 rs, 5 rs
         * or 7 rs scaled by 1, 2 or 4: six integer registers for the sixteen addresses (GCC's
         * own choice spilled them and moved them back from vector registers on the FMA pipes) */
        const int64_t r3 = 3 * a_rs, r5 = 5 * a_rs, r7 = 7 * a_rs;
        const float *a8 = R > 8 ? a + 8 * a_rs : a; /* rows 8-15 only where the tile has them */
        for (int64_t p = 0; p < sg[g].k; p++, a += a_cs, a8 += a_cs, b += ldb) {
            const __m512 b0 = _mm512_maskz_loadu_ps(kl, b);
#define LT_AT(r)                                                                                   \
    ((r) == 0    ? a[0]                                                                            \
     : (r) == 1  ? a[a_rs]                                                                         \
     : (r) == 2  ? a[2 * a_rs]                                                                     \
     : (r) == 3  ? a[r3]                                                                           \
     : (r) == 4  ? a[4 * a_rs]                                                                     \
     : (r) == 5  ? a[r5]                                                                           \
     : (r) == 6  ? a[2 * r3]                                                                       \
     : (r) == 7  ? a[r7]                                                                           \
     : (r) == 8  ? a8[0]                                                                           \
     : (r) == 9  ? a8[a_rs]                                                                        \
     : (r) == 10 ? a8[2 * a_rs]                                                                    \
     : (r) == 11 ? a8[r3]                                                                          \
     : (r) == 12 ? a8[4 * a_rs]                                                                    \
     : (r) == 13 ? a8[r5]                                                                          \
     : (r) == 14 ? a8[2 * r3]                                                                      \
                 : a8[r7])
#define LT_ROW(r)                                                                                  \
    if (R > r) s##r = _mm512_fmadd_ps(_mm512_set1_ps(LT_AT(r)), b0, s##r);
            LT_ROW(0) LT_ROW(1) LT_ROW(2) LT_ROW(3) LT_ROW(4) LT_ROW(5) LT_ROW(6) LT_ROW(7)
            LT_ROW(8) LT_ROW(9) LT_ROW(10) LT_ROW(11) LT_ROW(12) LT_ROW(13) LT_ROW(14) LT_ROW(15)
#undef LT_ROW
#undef LT_AT
        }
    }
#define LT_ST(r)                                                                                   \
    if (R > r) lt_store(MODE, s##r, c, ldc, i0, r, 0, kl);
    LT_ST(0) LT_ST(1) LT_ST(2) LT_ST(3) LT_ST(4) LT_ST(5) LT_ST(6) LT_ST(7)
    LT_ST(8) LT_ST(9) LT_ST(10) LT_ST(11) LT_ST(12) LT_ST(13) LT_ST(14) LT_ST(15)
#undef LT_ST
}

/* All m rows: whole tiles (6 rows, or 16 with one register a row), then the tail as tiles of
 * 8, 4, 2, 1 or of the remaining 1-5 rows. */
INL void lt_rows(const int NV, const int MODE, int64_t m, const mmi_attn_lin_seg *sg, int nseg,
                 float *c, int64_t ldc, __mmask16 kl)
{
    int64_t i = 0;
    if (NV == 1) {
        for (; i + 16 <= m; i += 16) lt_tile1(16, MODE, sg, nseg, i, c + i * ldc, ldc, kl);
#define LT_TAIL(R)                                                                                 \
    if (m - i >= R) lt_tile1(R, MODE, sg, nseg, i, c + i * ldc, ldc, kl), i += R;
        LT_TAIL(8) LT_TAIL(4) LT_TAIL(2) LT_TAIL(1)
#undef LT_TAIL
        return;
    }
    for (; i + 6 <= m; i += 6) lt_tile(6, NV, MODE, sg, nseg, i, c + i * ldc, ldc, kl);
    c += i * ldc;
    switch (m - i) {
    case 5:
        lt_tile(5, NV, MODE, sg, nseg, i, c, ldc, kl);
        break;
    case 4:
        lt_tile(4, NV, MODE, sg, nseg, i, c, ldc, kl);
        break;
    case 3:
        lt_tile(3, NV, MODE, sg, nseg, i, c, ldc, kl);
        break;
    case 2:
        lt_tile(2, NV, MODE, sg, nseg, i, c, ldc, kl);
        break;
    case 1:
        lt_tile(1, NV, MODE, sg, nseg, i, c, ldc, kl);
        break;
    default:
        break;
    }
}

#define LT_CASE(NV)                                                                                \
    if (mode == 1)                                                                                 \
        lt_rows(NV, 1, m, sg, nseg, c, ldc, kl);                                                   \
    else if (mode == 2)                                                                            \
        lt_rows(NV, 2, m, sg, nseg, c, ldc, kl);                                                   \
    else                                                                                           \
        lt_rows(NV, 0, m, sg, nseg, c, ldc, kl);                                                   \
    break;
int mmi_attn_lin_tile_avx512(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                             float *c, int64_t ldc)
{
    const __mmask16 kl = mmi_lanes16(n - (n - 1) / 16 * 16);
    if (m < 1 || n < 1 || n > 64 || nseg < 1 || nseg > 2) return 0;
    switch ((n + 15) / 16) {
    case 1:
        LT_CASE(1)
    case 2:
        LT_CASE(2)
    case 3:
        LT_CASE(3)
    default:
        LT_CASE(4)
    }
    return 1;
}
#undef LT_CASE
/* clang-format on */

/* ---- transpose in 16 x 16 register blocks, partial blocks masked ----------------------------- */
int mmi_attn_transpose_avx512(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                              int64_t ldd)
{
    for (int64_t r = 0; r < rows; r += 16) {
        const int64_t nr = rows - r < 16 ? rows - r : 16;
        const __mmask16 rm = mmi_lanes16(nr);
        for (int64_t c = 0; c < cols; c += 16) {
            const int64_t nc = cols - c < 16 ? cols - c : 16;
            const __mmask16 cm = mmi_lanes16(nc);
            __m512 x[16], y[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                x[i] = i < nr ? _mm512_maskz_loadu_ps(cm, src + (r + i) * lds + c)
                              : _mm512_setzero_ps();
#pragma GCC unroll 8
            for (int i = 0; i < 16; i += 2) { /* pairs of rows interleaved */
                y[i] = _mm512_unpacklo_ps(x[i], x[i + 1]);
                y[i + 1] = _mm512_unpackhi_ps(x[i], x[i + 1]);
            }
#pragma GCC unroll 4
            for (int i = 0; i < 16; i += 4) { /* groups of four rows */
                x[i] = _mm512_shuffle_ps(y[i], y[i + 2], 0x44);
                x[i + 1] = _mm512_shuffle_ps(y[i], y[i + 2], 0xee);
                x[i + 2] = _mm512_shuffle_ps(y[i + 1], y[i + 3], 0x44);
                x[i + 3] = _mm512_shuffle_ps(y[i + 1], y[i + 3], 0xee);
            }
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) { /* 128-bit lanes: rows i, i + 4, i + 8, i + 12 */
                y[i] = _mm512_shuffle_f32x4(x[i], x[i + 4], 0x88);
                y[i + 4] = _mm512_shuffle_f32x4(x[i], x[i + 4], 0xdd);
                y[i + 8] = _mm512_shuffle_f32x4(x[i + 8], x[i + 12], 0x88);
                y[i + 12] = _mm512_shuffle_f32x4(x[i + 8], x[i + 12], 0xdd);
            }
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                x[i] = _mm512_shuffle_f32x4(y[i], y[i + 8], 0x88);
                x[i + 8] = _mm512_shuffle_f32x4(y[i], y[i + 8], 0xdd);
                x[i + 4] = _mm512_shuffle_f32x4(y[i + 4], y[i + 12], 0x88);
                x[i + 12] = _mm512_shuffle_f32x4(y[i + 4], y[i + 12], 0xdd);
            }
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) /* constant indices: x stays in registers */
                if (j < nc) _mm512_mask_storeu_ps(dst + (c + j) * ldd + r, rm, x[j]);
        }
    }
    return 1;
}

static const mmi_attn_isa k_avx512 = {
    mmi_attn_rowmat_avx512,
    mmi_attn_rowmat_sub_avx512,
    mmi_attn_matrow_acc_avx512,
    mmi_attn_state_step_avx512,
    mmi_attn_exp_sub_avx512,
    mmi_attn_norm_step_avx512,
    mmi_attn_elu1_avx512,
    mmi_attn_elu1_bwd_avx512,
    mmi_attn_ds_tile_avx512,
    mmi_attn_relu_row_avx512,
    mmi_attn_relu_ds_row_avx512,
    mmi_attn_gate_row_avx512,
    /* gate_grad_row, log_gate_copy: no 16-lane body (memory-bound passes); the wrappers run
     * the AVX2 table's body on this path (the backward calls gate_grad_rows) */
    mmi_attn_transpose_avx512,
    NULL,
    NULL,
    mmi_attn_softmax_row_avx512,
    mmi_attn_rwkv_bonus_avx512,
    mmi_attn_lin_norm_avx512,
    mmi_attn_lin_dnum_avx512,
    mmi_attn_lin_acc_avx512,
    mmi_attn_gate_grad_rows_avx512,
    mmi_attn_lin_tile_avx512,
    /* copy_keep: the AVX2 body */
    NULL,
    /* exp_rows: exp_sub row by row (this table's exponentials) */
    NULL,
    /* lin_prefetch: on Zen 5 the backward 15 % and the mapped forward 18 % slower without */
    1,
    /* lin_tile_rs: the state decay as its own pass, then lin_tile (not measured on Zen 5) */
    NULL,
    /* exp_ds_rows, row_dots: the softmax backward keeps the exact-difference dS tile here */
    NULL,
    NULL,
};

const mmi_attn_isa *mmi_attn_isa_avx512(void) { return &k_avx512; }

#else /* no AVX-512 in this build: the dispatch keeps the AVX2 table */
const mmi_attn_isa *mmi_attn_isa_avx512(void) { return NULL; }
#endif
