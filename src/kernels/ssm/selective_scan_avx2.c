/* SPDX-License-Identifier: MIT */
/* selective_scan_avx2.c — AVX2/FMA bodies of the selective scan (compiled with -mavx2 -mfma;
 * the dispatch table hands them out only on CPUs that run both). The state axis N
 * is vectorised 8 floats at a time (N % 8 == 0, N <= 256); time stays sequential as in the
 * reference; the channel-block forward and backward below put 8 channels in the lanes
 * instead. The per-row bodies' exp is mmi_exp256 (Cephes, <= 2 ulp against expf), the
 * channel-block bodies' and the backward's recomputation exp2_scan, the prep's exp_prep (a few
 * ulp each), so results differ from the portable path by rounding only. Sums over time are kept
 * in float64 as in the portable path. */
#include "../simd/mmi_avx2_target.h"
#include "mmi_ssm_kernels.h"

#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "../simd/mmi_avx2_math.h"

#define MAXV 32 /* N <= 256 */

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 2^r for r in about [-1/2, 1/2]: degree-5 minimax polynomial (exp2_scan, exp_prep). */
MMI_AVX2_INLINE __m256 exp2_poly(__m256 r)
{
    __m256 p = _mm256_set1_ps(1.3276472455e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.6755409613e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.5507130921e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.4022120237e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.9314694405e-1f));
    return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0000001192e+0f));
}

/* 2^a for the scan's a = dlt A log2e, a in [-125, 127]: k = round-to-nearest(a) by vroundps,
 * degree-5 minimax polynomial of 2^r, r = a - k in [-1/2, 1/2] (relative error 2.1e-7 in
 * float32 Horner), k added to the exponent as integer bits (vcvtps2dq, shift). 10 vector
 * operations, 5 of them FMAs, and 6 constants. The rounding was the 1.5 2^23 shift (add,
 * subtract, the same k): rounding and converting need no constant, and the two freed
 * registers let the channel-block loop keep one more state in registers (3 % faster forward
 * on Zen 3). With clamp set, a is first clamped to [-125, 127]: below that the result is about
 * 2^-125 (absolute error < 3e-38) instead of underflowing, above it it stays finite (2^127.5)
 * where expf overflows. Inside the range the two agree bit for bit. A NaN a gives NaN with
 * or without the clamp: vcvtps2dq turns NaN into 0x80000000, whose shift by 23 adds 0 to the
 * polynomial's NaN. */
MMI_AVX2_INLINE __m256 exp2_scan(__m256 a, int clamp)
{
    __m256 k, r;
    /* bounds first: x86 min/max return the second operand for a NaN, so a NaN a stays NaN */
    if (clamp) a = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-125.0f), a));
    k = _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_sub_ps(a, k);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(exp2_poly(r)),
                                                _mm256_slli_epi32(_mm256_cvtps_epi32(k), 23)));
}

/* e^x for the prep, x clamped to [-125 ln 2, 127 ln 2] (below: 2^-125 instead of less, above:
 * finite about 2^127.5). k = round(x log2 e) by the 1.5 2^23 shift inside one FMA; r = x log2 e
 * - k from log2 e split in two floats (two FMAs: x log2e_hi - k is exact in the FMA, so r's error
 * is about 2^-24 |r| + |x| 2^-48 instead of the half ulp of a rounded x log2 e, 2.6e-6 relative
 * near x = -87); 2^r by exp2_poly, k added to the exponent bits. Relative error about 3e-7
 * (the polynomial's 2.1e-7 plus the roundings); 13 vector operations, 8 of them on the FMA
 * ports, against 27 and 12 for mmi_exp256, whose overflow and underflow handling the prep does
 * not need: its callers (softplus, sigmoid) handle x's ends themselves. */
MMI_AVX2_INLINE __m256 exp_prep(__m256 x)
{
    const __m256 shift = _mm256_set1_ps(12582912.0f);
    __m256 k, r;
    /* NaN passes the clamp (min and max return their second operand for it) */
    x = _mm256_min_ps(_mm256_set1_ps(88.029692f), _mm256_max_ps(_mm256_set1_ps(-86.643394f), x));
    k = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269502163f), shift);
    r = _mm256_fmsub_ps(x, _mm256_set1_ps(1.44269502163f), _mm256_sub_ps(k, shift));
    r = _mm256_fmadd_ps(x, _mm256_set1_ps(1.925963033e-8f), r);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(exp2_poly(r)),
                                                _mm256_slli_epi32(_mm256_castps_si256(k), 23)));
}

/* softplus(x) = log1p(e^x) (threshold 20) and, with deriv, its derivative sigmoid(x), without a
 * log, as softplus512 in selective_scan_avx512.c: max(x, 0) + log1p(y) with y = e^-|x| in
 * [0, 1] and log1p(y) = 2 atanh(s), s = y / (2 + y) in [0, 1/3], as s (2 + w p(w)) with w = s^2
 * and p the degree-3 fit of that file (relative error of the bracket below 1e-7). Above x ~ 17
 * the log1p term is below half an ulp of x, so the result is x as the threshold-20 definition
 * says (and sigmoid rounds to 1 there); y is 0 below x = -125 ln 2 = -86.6 (true results below
 * 2.4e-38), so -Inf gives 0; NaN gives NaN (y and the max are NaN). sigmoid(x) = 1 / (1 +
 * y) for x >= 0, y / (1 + y) below. One exp and one division instead of the Cephes exp, log and
 * a division; the forward asks for no derivative and saves its division. */
MMI_AVX2_INLINE __m256 softplus256(__m256 x, __m256 *deriv)
{
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 nax = _mm256_or_ps(x, _mm256_set1_ps(-0.0f)); /* -|x| */
    const __m256 y =
        _mm256_and_ps(exp_prep(nax), _mm256_cmp_ps(nax, _mm256_set1_ps(-86.643394f), _CMP_NLT_UQ));
    const __m256 s = _mm256_div_ps(y, _mm256_add_ps(two, y)), w = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(0.26867613196372986f);
    p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(0.2823394238948822f));
    p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(0.4000767171382904f));
    p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(0.6666663885116577f));
    p = _mm256_fmadd_ps(p, w, two);
    if (deriv) {
        const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, y));
        *deriv = _mm256_blendv_ps(r, _mm256_mul_ps(r, y), x); /* sign bit set: x < 0 */
    }
    return _mm256_fmadd_ps(s, p, _mm256_max_ps(_mm256_setzero_ps(), x));
}

int mmi_ssm_sel_prep_avx2(int64_t n, const float *delta, float bias, int softplus, const float *z,
                          float *dlt, float *dsp, float *gz, float *sz)
{
    const __m256 bv = _mm256_set1_ps(bias), one = _mm256_set1_ps(1.0f);
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 raw = _mm256_add_ps(_mm256_loadu_ps(delta + t), bv), d = raw, der = one;
        if (softplus) d = softplus256(raw, dsp ? &der : NULL);
        _mm256_storeu_ps(dlt + t, d);
        if (dsp) _mm256_storeu_ps(dsp + t, der);
        if (z) {
            /* sigmoid(z) = 1 / (1 + e^-z), set to 0 where e^-z > 1 / FLT_MIN (there e^-z is
             * clamped, and the true sigmoid is below FLT_MIN, z sigmoid(z) below |z| FLT_MIN);
             * -Inf gives 0 */
            const __m256 zv = _mm256_loadu_ps(z + t), nz = _mm256_sub_ps(_mm256_setzero_ps(), zv);
            const __m256 den = _mm256_add_ps(one, exp_prep(nz));
            const __m256 flush = _mm256_cmp_ps(nz, _mm256_set1_ps(87.336544f), _CMP_GT_OQ);
            if (sz) { /* the backward: sigmoid(z) and silu(z) = z sigmoid(z) */
                const __m256 s = _mm256_andnot_ps(flush, _mm256_div_ps(one, den));
                _mm256_storeu_ps(sz + t, s);
                if (gz) _mm256_storeu_ps(gz + t, _mm256_mul_ps(zv, s));
            } else if (gz) { /* the forward: silu(z) = z / (1 + e^-z), one division */
                _mm256_storeu_ps(gz + t, _mm256_andnot_ps(flush, _mm256_div_ps(zv, den)));
            }
        }
    }
    if (t < n) /* tail: the portable body (scalar libm) */
        mmi_ssm_sel_prep_portable(n - t, delta + t, bias, softplus, z ? z + t : NULL, dlt + t,
                                  dsp ? dsp + t : NULL, gz ? gz + t : NULL, sz ? sz + t : NULL);
    return 1;
}

int mmi_ssm_sel_fwd_avx2(const mmi_sel_row *r)
{
    const int64_t N = r->N, V = N / 8;
    __m256 x[MAXV], A[MAXV];
    if (N % 8 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++) {
        x[v] = r->cont ? _mm256_loadu_ps(r->x + 8 * v) : _mm256_setzero_ps();
        A[v] = _mm256_loadu_ps(r->A + 8 * v);
    }
    for (int64_t t = 0; t < r->L; t++) {
        const float *b = r->b_var ? r->B + t * N : r->B, *c = r->c_var ? r->C + t * N : r->C;
        float d = r->dlt[t], y;
        __m256 dv = _mm256_set1_ps(d), duv = _mm256_set1_ps(d * r->u[t]), acc = _mm256_setzero_ps();
        if (r->ckpt && t % r->chunk == 0)
            for (int64_t v = 0; v < V; v++)
                _mm256_storeu_ps(r->ckpt + (t / r->chunk) * N + 8 * v, x[v]);
        for (int64_t v = 0; v < V; v++) {
            __m256 a = mmi_exp256(_mm256_mul_ps(dv, A[v]));
            x[v] = _mm256_fmadd_ps(a, x[v], _mm256_mul_ps(_mm256_loadu_ps(b + 8 * v), duv));
            acc = _mm256_fmadd_ps(x[v], _mm256_loadu_ps(c + 8 * v), acc);
        }
        y = hsum(acc);
        if (r->has_d) y += r->dskip * r->u[t];
        if (r->gz) y *= r->gz[t];
        r->out[t] = y;
    }
    for (int64_t v = 0; v < V; v++) _mm256_storeu_ps(r->x + 8 * v, x[v]);
    return 1;
}

/* Chunk recomputation: abar and states of [t0, t1) from x0. The row's fields are read into
 * locals once: the stores through float pointers could alias the struct, so GCC otherwise
 * reloads them every step. */
static void recompute(const mmi_sel_row *r, int64_t t0, int64_t t1, const float *x0, float *abar,
                      float *xs)
{
    const int64_t N = r->N, V = N / 8, bstep = r->b_var ? N : 0;
    const float *const dlt = r->dlt, *const u = r->u, *b = r->B + t0 * bstep, *xp = x0;
    __m256 A2[MAXV];
    for (int64_t v = 0; v < V; v++)
        A2[v] = _mm256_mul_ps(_mm256_loadu_ps(r->A + 8 * v), _mm256_set1_ps(1.44269504088896341f));
    for (int64_t t = t0; t < t1; t++, b += bstep) {
        float *const a = abar + (t - t0) * N, *const x = xs + (t - t0) * N;
        const float d = dlt[t];
        const __m256 dv = _mm256_set1_ps(d), duv = _mm256_set1_ps(d * u[t]);
        for (int64_t v = 0; v < V; v++) {
            __m256 av = exp2_scan(_mm256_mul_ps(dv, A2[v]), 1); /* as the channel-block forward */
            __m256 xn = _mm256_fmadd_ps(av, _mm256_loadu_ps(xp + 8 * v),
                                        _mm256_mul_ps(_mm256_loadu_ps(b + 8 * v), duv));
            _mm256_storeu_ps(a + 8 * v, av);
            _mm256_storeu_ps(x + 8 * v, xn);
        }
        xp = x;
    }
}

/* dst[0..8) (double) += v */
static inline void acc_pd(double *dst, __m256 v)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
            hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), lo));
    _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), hi));
}

/* The reverse scan of one row, its fields in locals (see recompute). Per step: the gate
 * (g-hat = dout silu(z), dz from the pre-gate output C.x + D u), then per vector of N the
 * adjoint hv = h + g-hat C_t, its float64 sums dA, dB_t, dC_t and the sums over n of du and
 * ddelta; dD and d(delta_bias) are float64 sums in locals (the same additions in the same
 * order as through the pointers). */
int mmi_ssm_sel_bwd_avx2(const mmi_sel_row *r, const mmi_sel_grad *g)
{
    const int64_t N = r->N, V = N / 8, T = r->chunk, L = r->L, nck = (L + T - 1) / T;
    const int64_t bstep = r->b_var ? N : 0, cstep = r->c_var ? N : 0;
    const float *const B = r->B, *const C = r->C, *const dlt = r->dlt, *const u = r->u;
    const float *const dsp = r->dsp, *const z = r->z, *const sz = r->sz, *const dout = g->dout;
    const float dskip = r->has_d ? r->dskip : 0.0f;
    const int has_d = r->has_d;
    float *const du = g->du, *const ddelta = g->ddelta, *const dz = g->dz;
    double *const dA = g->dA, *const dB = g->dB, *const dC = g->dC;
    float *const abar = g->work, *const xs = abar + T * N;
    __m256 hn[MAXV], A[MAXV];
    double dD = g->dD ? *g->dD : 0.0, dbias = g->dbias ? *g->dbias : 0.0;
    if (N % 8 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++)
        hn[v] = _mm256_setzero_ps(), A[v] = _mm256_loadu_ps(r->A + 8 * v);
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        const int64_t t0 = ck * T, t1 = t0 + T < L ? t0 + T : L;
        const float *const x0 = r->ckpt + ck * N;
        recompute(r, t0, t1, x0, abar, xs);
        for (int64_t t = t1 - 1; t >= t0; t--) {
            const float *const b = B + t * bstep, *const c = C + t * cstep;
            const float *const a = abar + (t - t0) * N, *const x = xs + (t - t0) * N;
            const float *const xp = t > t0 ? x - N : x0;
            double *const dBt = dB ? dB + t * bstep : NULL, *const dCt = dC ? dC + t * cstep : NULL;
            const float d = dlt[t], ut = u[t];
            float gh = dout[t], shb, sdd;
            __m256 ghv, uv = _mm256_set1_ps(ut), dv = _mm256_set1_ps(d);
            __m256 dvu = _mm256_set1_ps(d * ut), hb = _mm256_setzero_ps(), dd = _mm256_setzero_ps();
            if (z) { /* the gate: g-hat = g silu(z), dz needs the pre-gate output */
                __m256 acc = _mm256_setzero_ps();
                const float zt = z[t], s = sz[t];
                float o;
                for (int64_t v = 0; v < V; v++)
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(c + 8 * v),
                                          acc);
                o = hsum(acc) + (has_d ? dskip * ut : 0.0f);
                if (dz) dz[t] = gh * o * s * (1.0f + zt * (1.0f - s));
                gh *= zt * s;
            }
            ghv = _mm256_set1_ps(gh);
            for (int64_t v = 0; v < V; v++) {
                __m256 cv = _mm256_loadu_ps(c + 8 * v), bv = _mm256_loadu_ps(b + 8 * v);
                __m256 av = _mm256_loadu_ps(a + 8 * v), hv = _mm256_fmadd_ps(ghv, cv, hn[v]);
                __m256 ax = _mm256_mul_ps(av, _mm256_loadu_ps(xp + 8 * v));
                if (dCt) acc_pd(dCt + 8 * v, _mm256_mul_ps(ghv, _mm256_loadu_ps(x + 8 * v)));
                if (dBt) acc_pd(dBt + 8 * v, _mm256_mul_ps(hv, dvu));
                hb = _mm256_fmadd_ps(hv, bv, hb);
                dd = _mm256_fmadd_ps(hv, _mm256_fmadd_ps(bv, uv, _mm256_mul_ps(A[v], ax)), dd);
                acc_pd(dA + 8 * v, _mm256_mul_ps(_mm256_mul_ps(hv, dv), ax));
                hn[v] = _mm256_mul_ps(av, hv);
            }
            shb = hsum(hb), sdd = hsum(dd);
            if (du) du[t] = d * shb + (has_d ? dskip * gh : 0.0f);
            dD += (double)(gh * ut);
            sdd *= dsp[t];
            if (ddelta) ddelta[t] = sdd;
            dbias += (double)sdd;
        }
    }
    if (g->dD) *g->dD = dD;
    if (g->dbias) *g->dbias = dbias;
    return 1;
}

int mmi_ssm_sel_step_rows_avx2(const mmi_sel_step *s)
{
    const int64_t N = s->N, V = N / 8;
    __m256 B[MAXV], C[MAXV];
    if (N % 8 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++)
        B[v] = _mm256_loadu_ps(s->B + 8 * v), C[v] = _mm256_loadu_ps(s->C + 8 * v);
    for (int64_t i = 0; i < s->n; i++) {
        float *x = s->x + i * N, y;
        const float *A = s->A + i * N;
        __m256 dv = _mm256_set1_ps(s->dlt[i]), duv = _mm256_set1_ps(s->dlt[i] * s->u[i]);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t v = 0; v < V; v++) {
            __m256 a = mmi_exp256(_mm256_mul_ps(dv, _mm256_loadu_ps(A + 8 * v)));
            __m256 xv = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + 8 * v), _mm256_mul_ps(B[v], duv));
            _mm256_storeu_ps(x + 8 * v, xv);
            acc = _mm256_fmadd_ps(xv, C[v], acc);
        }
        y = hsum(acc);
        if (s->dskip) y += s->dskip[i] * s->u[i];
        if (s->gz) y *= s->gz[i];
        s->out[i] = y;
    }
    return 1;
}

/* ---- forward over a block of up to 8 channels ----------------------------------------------
 * The per-row forward above vectorises N and pays a horizontal sum per step for y = C.x. Here
 * the 8 lanes are 8 channels (rows of one batch row and B/C group, which share B_t and C_t):
 * each step broadcasts B_t[n] and C_t[n], y accumulates lane-wise (no horizontal sum), and the
 * state of 8 n at a time stays in registers across a tile of steps. The channel-major inputs
 * (dlt, u, gz) and outputs are transposed through 8x8 blocks per tile. Every lane runs the same
 * operations in the same order whatever its position in the block, so a channel's result does
 * not depend on how rows were grouped (bitwise equality across thread counts). */
#define BLK_T 64 /* steps per tile: the transposed tile buffers stay in L1 */
#define BLK_N 64 /* largest N the block body takes (its state and A live on the stack) */

/* Lane j of the 8 vectors v[0..8) is row j's values at steps 0..8: gathers rows' 8 steps at
 * src[j] + t (rows j >= nr repeat row 0; n < 8 steps are padded with zeros). */
static void rows_to_lanes(const float *const *src, int64_t nr, int64_t t, int64_t n, __m256 v[8])
{
    for (int64_t j = 0; j < 8; j++) {
        const float *s = src[j < nr ? j : 0] + t;
        if (n == 8) {
            v[j] = _mm256_loadu_ps(s);
        } else {
            float tmp[8] = {0};
            memcpy(tmp, s, (size_t)n * sizeof(float));
            v[j] = _mm256_loadu_ps(tmp);
        }
    }
    mmi_transpose8_avx2(v);
}

/* The inverse: v[k] holds step k's 8 lanes; writes rows j < nr, n steps at dst[j] + t. */
static void lanes_to_rows(__m256 v[8], float *const *dst, int64_t nr, int64_t t, int64_t n)
{
    mmi_transpose8_avx2(v);
    for (int64_t j = 0; j < nr; j++) {
        if (n == 8) {
            _mm256_storeu_ps(dst[j] + t, v[j]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, v[j]);
            memcpy(dst[j] + t, tmp, (size_t)n * sizeof(float));
        }
    }
}

/* State [N][8 lanes] to or from the rows' N-vectors at p[j] (to_rows: write rows j < nr). */
static void state_xfer(float *h, int64_t N, float *const *p, int64_t nr, int to_rows)
{
    for (int64_t n0 = 0; n0 < N; n0 += 8) {
        __m256 v[8];
        if (to_rows) {
            for (int k = 0; k < 8; k++) v[k] = _mm256_loadu_ps(h + (n0 + k) * 8);
            lanes_to_rows(v, p, nr, n0, 8);
        } else {
            rows_to_lanes((const float *const *)p, nr, n0, 8, v);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(h + (n0 + k) * 8, v[k]);
        }
    }
}

/* One step of one state component for 8 channels: h = 2^(dlt A2) h + B dlt u; acc += C h. */
MMI_AVX2_INLINE __m256 scan_step(__m256 h, __m256 d, __m256 a2, __m256 bu, const float *b,
                                 const float *c, __m256 *acc, int clamp)
{
    h = _mm256_fmadd_ps(exp2_scan(_mm256_mul_ps(d, a2), clamp), h,
                        _mm256_mul_ps(_mm256_broadcast_ss(b), bu));
    *acc = _mm256_fmadd_ps(_mm256_broadcast_ss(c), h, *acc);
    return h;
}

/* Steps [0, n) of 4 state components (hp: their lane vectors, A2: A log2e) with B and C at
 * step 0 offset to the components; y[k] += C.h over these components (first: y[k] starts at
 * 0). Four components keep the state, the exponential's constants and the step's operands
 * about in the 16 registers (GCC keeps some states on the stack; groups of 2 components,
 * which spill nothing, were 5 % slower: twice the loads and stores of dl, du and y). */
MMI_AVX2_INLINE void scan_tile4(const float *dl, const float *du, float *y, int64_t n,
                                const float *B, const float *C, int64_t N, __m256 *hp,
                                const __m256 *A2, int clamp, int first)
{
    __m256 h0 = hp[0], h1 = hp[1], h2 = hp[2], h3 = hp[3];
    for (int64_t k = 0; k < n; k++, B += N, C += N) {
        const __m256 d = _mm256_loadu_ps(dl + 8 * k), bu = _mm256_loadu_ps(du + 8 * k);
        __m256 acc = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + 8 * k);
        h0 = scan_step(h0, d, A2[0], bu, B + 0, C + 0, &acc, clamp);
        h1 = scan_step(h1, d, A2[1], bu, B + 1, C + 1, &acc, clamp);
        h2 = scan_step(h2, d, A2[2], bu, B + 2, C + 2, &acc, clamp);
        h3 = scan_step(h3, d, A2[3], bu, B + 3, C + 3, &acc, clamp);
        _mm256_storeu_ps(y + 8 * k, acc);
    }
    hp[0] = h0, hp[1] = h1, hp[2] = h2, hp[3] = h3;
}

/* 1 when every dl[k] A2[n] of the tile lies in [-125, 127] (exp2_scan needs no clamp): the
 * products of the lanes' extremes bound all of them, rounding being monotonic. */
static int tile_in_range(const float *dl, int64_t n, __m256 amin, __m256 amax)
{
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY), p[4], mn, mx;
    for (int64_t k = 0; k < n; k++) {
        const __m256 d = _mm256_loadu_ps(dl + 8 * k);
        lo = _mm256_min_ps(lo, d), hi = _mm256_max_ps(hi, d);
    }
    p[0] = _mm256_mul_ps(lo, amin), p[1] = _mm256_mul_ps(lo, amax);
    p[2] = _mm256_mul_ps(hi, amin), p[3] = _mm256_mul_ps(hi, amax);
    mn = _mm256_min_ps(_mm256_min_ps(p[0], p[1]), _mm256_min_ps(p[2], p[3]));
    mx = _mm256_max_ps(_mm256_max_ps(p[0], p[1]), _mm256_max_ps(p[2], p[3]));
    return _mm256_movemask_ps(
               _mm256_and_ps(_mm256_cmp_ps(mn, _mm256_set1_ps(-125.0f), _CMP_GE_OQ),
                             _mm256_cmp_ps(mx, _mm256_set1_ps(127.0f), _CMP_LE_OQ))) == 0xff;
}

/* Steps [t, t + 8) of dlt and u of the 8 rows (src: dlt rows, usrc: u rows; rows j >= nr
 * repeat row 0) to lanes: dl[k] = dlt, du[k] = dlt u per lane. Named registers so the
 * transpose stays in them. */
MMI_AVX2_INLINE void tile_in8(const float *const *src, const float *const *usrc, int64_t t,
                              float *dl, float *du)
{
    __m256 a0 = _mm256_loadu_ps(src[0] + t), a1 = _mm256_loadu_ps(src[1] + t);
    __m256 a2 = _mm256_loadu_ps(src[2] + t), a3 = _mm256_loadu_ps(src[3] + t);
    __m256 a4 = _mm256_loadu_ps(src[4] + t), a5 = _mm256_loadu_ps(src[5] + t);
    __m256 a6 = _mm256_loadu_ps(src[6] + t), a7 = _mm256_loadu_ps(src[7] + t);
    __m256 b0 = _mm256_loadu_ps(usrc[0] + t), b1 = _mm256_loadu_ps(usrc[1] + t);
    __m256 b2 = _mm256_loadu_ps(usrc[2] + t), b3 = _mm256_loadu_ps(usrc[3] + t);
    __m256 b4 = _mm256_loadu_ps(usrc[4] + t), b5 = _mm256_loadu_ps(usrc[5] + t);
    __m256 b6 = _mm256_loadu_ps(usrc[6] + t), b7 = _mm256_loadu_ps(usrc[7] + t);
    mmi_transpose8_regs_avx2(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7);
    mmi_transpose8_regs_avx2(&b0, &b1, &b2, &b3, &b4, &b5, &b6, &b7);
    _mm256_storeu_ps(dl + 0, a0), _mm256_storeu_ps(du + 0, _mm256_mul_ps(a0, b0));
    _mm256_storeu_ps(dl + 8, a1), _mm256_storeu_ps(du + 8, _mm256_mul_ps(a1, b1));
    _mm256_storeu_ps(dl + 16, a2), _mm256_storeu_ps(du + 16, _mm256_mul_ps(a2, b2));
    _mm256_storeu_ps(dl + 24, a3), _mm256_storeu_ps(du + 24, _mm256_mul_ps(a3, b3));
    _mm256_storeu_ps(dl + 32, a4), _mm256_storeu_ps(du + 32, _mm256_mul_ps(a4, b4));
    _mm256_storeu_ps(dl + 40, a5), _mm256_storeu_ps(du + 40, _mm256_mul_ps(a5, b5));
    _mm256_storeu_ps(dl + 48, a6), _mm256_storeu_ps(du + 48, _mm256_mul_ps(a6, b6));
    _mm256_storeu_ps(dl + 56, a7), _mm256_storeu_ps(du + 56, _mm256_mul_ps(a7, b7));
}

/* The inverse for the outputs: y[k] (8 steps' lanes) to rows j < nr at dst[j] + t. */
MMI_AVX2_INLINE void tile_out8(const float *y, float *const *dst, int64_t nr, int64_t t)
{
    __m256 v0 = _mm256_loadu_ps(y + 0), v1 = _mm256_loadu_ps(y + 8);
    __m256 v2 = _mm256_loadu_ps(y + 16), v3 = _mm256_loadu_ps(y + 24);
    __m256 v4 = _mm256_loadu_ps(y + 32), v5 = _mm256_loadu_ps(y + 40);
    __m256 v6 = _mm256_loadu_ps(y + 48), v7 = _mm256_loadu_ps(y + 56);
    mmi_transpose8_regs_avx2(&v0, &v1, &v2, &v3, &v4, &v5, &v6, &v7);
    _mm256_storeu_ps(dst[0] + t, v0);
    if (nr > 1) _mm256_storeu_ps(dst[1] + t, v1);
    if (nr > 2) _mm256_storeu_ps(dst[2] + t, v2);
    if (nr > 3) _mm256_storeu_ps(dst[3] + t, v3);
    if (nr > 4) _mm256_storeu_ps(dst[4] + t, v4);
    if (nr > 5) _mm256_storeu_ps(dst[5] + t, v5);
    if (nr > 6) _mm256_storeu_ps(dst[6] + t, v6);
    if (nr > 7) _mm256_storeu_ps(dst[7] + t, v7);
}

/* One tile [t0, t0 + n), n <= BLK_T: channel-major inputs to lanes, the scan over N in groups
 * of 4 components, C.h back to the rows, then per row out = (C.h + dskip u) silu(z) on the
 * rows (the same operations per element as on lanes, without transposing u and silu(z)). */
static void block_tile(const mmi_sel_row *r, int64_t nr, int64_t t0, int64_t n, __m256 *h,
                       const __m256 *A2, const __m256 *arange)
{
    const int64_t N = r[0].N;
    float dl[BLK_T * 8], du[BLK_T * 8], y[BLK_T * 8];
    const float *src[8], *usrc[8];
    float *dst[8];
    for (int64_t j = 0; j < 8; j++) src[j] = r[j < nr ? j : 0].dlt, usrc[j] = r[j < nr ? j : 0].u;
    for (int64_t k = 0; k < n; k += 8) {
        if (n - k >= 8) {
            tile_in8(src, usrc, t0 + k, dl + 8 * k, du + 8 * k);
        } else {
            __m256 a[8], b[8];
            rows_to_lanes(src, 8, t0 + k, n - k, a);
            rows_to_lanes(usrc, 8, t0 + k, n - k, b);
            for (int i = 0; i < 8; i++) {
                _mm256_storeu_ps(dl + 8 * (k + i), a[i]);
                _mm256_storeu_ps(du + 8 * (k + i), _mm256_mul_ps(a[i], b[i]));
            }
        }
    }
    if (tile_in_range(dl, n, arange[0], arange[1]))
        for (int64_t n0 = 0; n0 < N; n0 += 4)
            scan_tile4(dl, du, y, n, r[0].B + t0 * N + n0, r[0].C + t0 * N + n0, N, h + n0, A2 + n0,
                       0, n0 == 0);
    else
        for (int64_t n0 = 0; n0 < N; n0 += 4)
            scan_tile4(dl, du, y, n, r[0].B + t0 * N + n0, r[0].C + t0 * N + n0, N, h + n0, A2 + n0,
                       1, n0 == 0);
    for (int64_t j = 0; j < 8; j++) dst[j] = r[j < nr ? j : 0].out;
    for (int64_t k = 0; k < n; k += 8) {
        if (n - k >= 8) {
            tile_out8(y + 8 * k, dst, nr, t0 + k);
        } else {
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(y + 8 * (k + i));
            lanes_to_rows(v, dst, nr, t0 + k, n - k);
        }
    }
    if (!r[0].has_d && !r[0].gz) return;
    for (int64_t j = 0; j < nr; j++) {
        const __m256 ds = _mm256_set1_ps(r[j].dskip);
        const float *u = r[j].u + t0, *g = r[j].gz ? r[j].gz + t0 : NULL;
        float *o = r[j].out + t0;
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
            __m256 v = _mm256_loadu_ps(o + k);
            if (r[0].has_d) v = _mm256_fmadd_ps(ds, _mm256_loadu_ps(u + k), v);
            if (g) v = _mm256_mul_ps(v, _mm256_loadu_ps(g + k));
            _mm256_storeu_ps(o + k, v);
        }
        for (; k < n; k++) { /* the same operations on one lane */
            __m128 v = _mm_set_ss(o[k]);
            if (r[0].has_d) v = _mm_fmadd_ss(_mm256_castps256_ps128(ds), _mm_set_ss(u[k]), v);
            if (g) v = _mm_mul_ss(v, _mm_set_ss(g[k]));
            o[k] = _mm_cvtss_f32(v);
        }
    }
}

int mmi_ssm_sel_fwd_block_avx2(const mmi_sel_row *r, int64_t nr)
{
    const int64_t N = r[0].N, L = r[0].L;
    __m256 A2[BLK_N], hv[BLK_N], arange[2];
    float *h = (float *)(void *)hv, *p[8];
    if (N % 8 || N > BLK_N || nr < 1 || nr > 8 || !r[0].b_var || !r[0].c_var) return 0;
    arange[0] = _mm256_set1_ps(INFINITY), arange[1] = _mm256_set1_ps(-INFINITY);
    for (int64_t n = 0; n < N; n++) {
        float a[8];
        for (int64_t j = 0; j < 8; j++) a[j] = r[j < nr ? j : 0].A[n];
        A2[n] = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_set1_ps(1.44269504088896341f));
        arange[0] = _mm256_min_ps(arange[0], A2[n]), arange[1] = _mm256_max_ps(arange[1], A2[n]);
    }
    for (int64_t j = 0; j < 8; j++) p[j] = r[j < nr ? j : 0].x;
    if (r[0].cont)
        state_xfer(h, N, p, nr, 0);
    else
        memset(hv, 0, sizeof(__m256) * (size_t)N);
    for (int64_t t0 = 0; t0 < L;) {
        int64_t t1 = t0 + BLK_T < L ? t0 + BLK_T : L;
        if (r[0].ckpt) {
            int64_t next = (t0 / r[0].chunk + 1) * r[0].chunk;
            if (t0 % r[0].chunk == 0) {
                float *c[8];
                for (int64_t j = 0; j < 8; j++)
                    c[j] = r[j < nr ? j : 0].ckpt + (t0 / r[0].chunk) * N;
                state_xfer(h, N, c, nr, 1);
            }
            if (next < t1) t1 = next;
        }
        block_tile(r, nr, t0, t1 - t0, hv, A2, arange);
        t0 = t1;
    }
    state_xfer(h, N, p, nr, 1);
    return 1;
}

/* ---- backward over a block of up to 8 channels ---------------------------------------------
 * The AVX-512 channel-block backward (selective_scan_avx512.c) with 8 lanes: channel j of one
 * batch row and B/C group in lane j, N % 8 == 0, N <= 64. Per chunk of the checkpoints (last
 * first): the rows' dlt, u, dout and dsp go to lane-major step buffers through 8x8 transposes;
 * the chunk's states are recomputed from the checkpoint with the channel-block forward's
 * exp2_scan and update (so the same bits as its states; the per-row backward's recomputation
 * uses the same exp2_scan) and kept with exp(dlt A) for the whole chunk (T x N x 8 each, 256
 * KiB at chunk 256, N 16: in L2; a first version that recomputed every 8-step tile a second
 * time into L1, as the AVX-512 body does with its twice larger buffers, was no faster than the
 * per-row backward in one bench run),
 * with z also the pre-gate output C.x; the gate gives dz and g-hat = dout silu'. Then per
 * 8-step tile, last first, the reverse scan runs per group of 4 state components (adjoints, dA
 * sums in
 * registers): hv = hn + g-hat C_t[n], hn = a hv, du's and ddelta's sums over n accumulated
 * lane-wise in per-step buffers, hv kept in place of a. dB_t[n] = sum over the lanes of hv dlt
 * u and dC_t[n] = sum of g-hat x_t (the channels' shares of the shared B_t and C_t) are reduced
 * 8 components at a time by a transposing add tree and added to the float64 rows once per
 * block instead of once per channel (that was about a quarter of the per-row backward). dA is
 * summed lane-wise in float over a tile, dD and d(delta_bias) over a chunk, then in float64.
 * Lanes j >= nr repeat row 0 with dout = 0 (their adjoints are 0) and are masked out of the
 * sums. Every lane runs the same operations whatever its position, so a channel's own outputs
 * do not depend on its block. */
#define BT 8 /* steps per tile of the reverse scan (one 8x8 transpose of the rows) */

/* p[k] (8 products, one per state component k) to one vector whose lane k is p[k]'s sum over
 * its lanes, in a fixed order. */
MMI_AVX2_INLINE __m256 tree8(const __m256 *p)
{
    const __m256 s01 = _mm256_hadd_ps(p[0], p[1]), s23 = _mm256_hadd_ps(p[2], p[3]);
    const __m256 s45 = _mm256_hadd_ps(p[4], p[5]), s67 = _mm256_hadd_ps(p[6], p[7]);
    const __m256 a = _mm256_hadd_ps(s01, s23), b = _mm256_hadd_ps(s45, s67);
    /* a: [0 1 2 3 | 0 1 2 3] halves' sums of p0..p3, b the same for p4..p7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

/* The lane-major buffers of one chunk and its state storage. */
typedef struct bwd_bufs8 {
    float *xs, *ab; /* [T][N][8]: the chunk's x_t and exp(dlt A) (then hv) */
    float *dl, *ul, *dub, *dsp, *gh, *hb, *dd; /* [T8][8] */
} bwd_bufs8;

/* Recomputes 4 state components over the chunk's n steps from h0 (B, C at the first step,
 * offset to the components; xs, ab offset to them): every step's x and a stored, y += C.x when
 * y. */
MMI_AVX2_INLINE void brec8(const bwd_bufs8 *w, float *y, int64_t n, const float *B, const float *C,
                           int64_t N, const __m256 *h0, const __m256 *A2, float *xs, float *ab,
                           int clamp)
{
    __m256 x0 = h0[0], x1 = h0[1], x2 = h0[2], x3 = h0[3];
    for (int64_t k = 0; k < n; k++, B += N, C += N) {
        const __m256 d = _mm256_loadu_ps(w->dl + 8 * k), bu = _mm256_loadu_ps(w->dub + 8 * k);
        const __m256 a0 = exp2_scan(_mm256_mul_ps(d, A2[0]), clamp);
        const __m256 a1 = exp2_scan(_mm256_mul_ps(d, A2[1]), clamp);
        const __m256 a2 = exp2_scan(_mm256_mul_ps(d, A2[2]), clamp);
        const __m256 a3 = exp2_scan(_mm256_mul_ps(d, A2[3]), clamp);
        /* the forward's operations (scan_step): a h + B (dlt u) */
        x0 = _mm256_fmadd_ps(a0, x0, _mm256_mul_ps(_mm256_broadcast_ss(B + 0), bu));
        x1 = _mm256_fmadd_ps(a1, x1, _mm256_mul_ps(_mm256_broadcast_ss(B + 1), bu));
        x2 = _mm256_fmadd_ps(a2, x2, _mm256_mul_ps(_mm256_broadcast_ss(B + 2), bu));
        x3 = _mm256_fmadd_ps(a3, x3, _mm256_mul_ps(_mm256_broadcast_ss(B + 3), bu));
        {
            float *xk = xs + 8 * N * k, *ak = ab + 8 * N * k;
            _mm256_storeu_ps(ak + 0, a0), _mm256_storeu_ps(ak + 8, a1);
            _mm256_storeu_ps(ak + 16, a2), _mm256_storeu_ps(ak + 24, a3);
            _mm256_storeu_ps(xk + 0, x0), _mm256_storeu_ps(xk + 8, x1);
            _mm256_storeu_ps(xk + 16, x2), _mm256_storeu_ps(xk + 24, x3);
        }
        if (y) {
            __m256 acc = _mm256_mul_ps(_mm256_broadcast_ss(C + 0), x0);
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(C + 1), x1, acc);
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(C + 2), x2, acc);
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(C + 3), x3, acc);
            _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(_mm256_loadu_ps(y + 8 * k), acc));
        }
    }
}

/* The reverse scan of 4 components over a tile's n steps (k = n-1 .. 0): hn the adjoints
 * (in/out), dA += their sums of dlt hv a x_{t-1}, x0 the states before the tile. */
MMI_AVX2_INLINE void brev8(const bwd_bufs8 *w, int64_t n, const float *B, const float *C, int64_t N,
                           const __m256 *x0, const __m256 *A, __m256 *hn, __m256 *dA, float *xs,
                           float *ab)
{
    __m256 h[4], s[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) h[i] = hn[i], s[i] = _mm256_setzero_ps();
    for (int64_t k = n - 1; k >= 0; k--) {
        const float *b = B + k * N, *c = C + k * N;
        float *a = ab + 8 * N * k;
        const float *xp = k > 0 ? xs + 8 * N * (k - 1) : NULL;
        const __m256 gh = _mm256_loadu_ps(w->gh + 8 * k), d = _mm256_loadu_ps(w->dl + 8 * k);
        __m256 hb = _mm256_loadu_ps(w->hb + 8 * k), dd = _mm256_loadu_ps(w->dd + 8 * k);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m256 av = _mm256_loadu_ps(a + 8 * i);
            const __m256 hv = _mm256_fmadd_ps(gh, _mm256_broadcast_ss(c + i), h[i]);
            const __m256 xv = k > 0 ? _mm256_loadu_ps(xp + 8 * i) : x0[i];
            const __m256 wv = _mm256_mul_ps(hv, _mm256_mul_ps(av, xv));
            _mm256_storeu_ps(a + 8 * i, hv);
            s[i] = _mm256_fmadd_ps(d, wv, s[i]);
            dd = _mm256_fmadd_ps(A[i], wv, dd);
            hb = _mm256_fmadd_ps(hv, _mm256_broadcast_ss(b + i), hb);
            h[i] = _mm256_mul_ps(av, hv);
        }
        _mm256_storeu_ps(w->hb + 8 * k, hb);
        _mm256_storeu_ps(w->dd + 8 * k, dd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) hn[i] = h[i], dA[i] = s[i];
}

/* Steps [t, t + 8) of the 8 rows src[j] to lanes: dst + 8 k gets step k's lanes (named
 * registers, as tile_in8, so the transpose does not go through the stack). */
MMI_AVX2_INLINE void rows_to_buf8(const float *const *src, int64_t t, float *dst)
{
    __m256 a0 = _mm256_loadu_ps(src[0] + t), a1 = _mm256_loadu_ps(src[1] + t);
    __m256 a2 = _mm256_loadu_ps(src[2] + t), a3 = _mm256_loadu_ps(src[3] + t);
    __m256 a4 = _mm256_loadu_ps(src[4] + t), a5 = _mm256_loadu_ps(src[5] + t);
    __m256 a6 = _mm256_loadu_ps(src[6] + t), a7 = _mm256_loadu_ps(src[7] + t);
    mmi_transpose8_regs_avx2(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7);
    _mm256_storeu_ps(dst + 0, a0), _mm256_storeu_ps(dst + 8, a1);
    _mm256_storeu_ps(dst + 16, a2), _mm256_storeu_ps(dst + 24, a3);
    _mm256_storeu_ps(dst + 32, a4), _mm256_storeu_ps(dst + 40, a5);
    _mm256_storeu_ps(dst + 48, a6), _mm256_storeu_ps(dst + 56, a7);
}

/* Steps [lo, n) of v (v[k]: step k's lanes) to rows j < nr at dst[j] + t; nothing when dst[0]
 * is NULL. The masked store writes no other step. */
MMI_AVX2_INLINE void lanes_out8(__m256 v[8], float *const *dst, int64_t nr, int64_t t, int64_t lo,
                                int64_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), idx),
                                          _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx));
    if (!dst[0]) return;
    mmi_transpose8_avx2(v);
    for (int64_t j = 0; j < nr; j++) {
        if (lo == 0 && n == 8)
            _mm256_storeu_ps(dst[j] + t, v[j]);
        else
            _mm256_maskstore_ps(dst[j] + t, m, v[j]);
    }
}

/* One chunk [t0, t0 + n) of the block's backward. */
static void bwd_chunk8(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr, int64_t t0,
                       int64_t n, const bwd_bufs8 *wb, const __m256 *x0, const __m256 *A,
                       const __m256 *A2, const __m256 *arange, __m256 *hn, double *dAl, __m256 *dDb)
{
    /* The rows are transposed in 8-step groups aligned to the rows' start (the chunk need not
     * be a multiple of 8 steps): wb's buffers hold steps from a0 = t0 rounded down to 8, v's
     * (the same buffers) from t0; steps outside [t0, t0 + n) are read, not written. */
    const int64_t N = r[0].N, off = t0 % 8, a0 = t0 - off, na = off + n;
    const __m256 kr = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const float *src[6][8];
    float *dst[3][8];
    __m256 ds, dD = _mm256_setzero_ps(), db = dD;
    bwd_bufs8 v = *wb;
    const bwd_bufs8 *w = &v;
    const float *B = r[0].B + t0 * N, *C = r[0].C + t0 * N;
    float *y;
    int clamp;
    v.dl += 8 * off, v.ul += 8 * off, v.dub += 8 * off, v.dsp += 8 * off;
    v.gh += 8 * off, v.hb += 8 * off, v.dd += 8 * off;
    y = r[0].z ? v.hb : NULL; /* the pre-gate output, before hb needs the buffer */
    {
        float dsk[8];
        for (int64_t j = 0; j < 8; j++) dsk[j] = r[j < nr ? j : 0].dskip;
        ds = r[0].has_d ? _mm256_loadu_ps(dsk) : _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < 8; j++) {
        const int64_t i = j < nr ? j : 0;
        src[0][j] = r[i].dlt, src[1][j] = r[i].u, src[2][j] = g[i].dout, src[3][j] = r[i].dsp;
        src[4][j] = r[i].z, src[5][j] = r[i].sz;
        dst[0][j] = g[i].du, dst[1][j] = g[i].ddelta, dst[2][j] = g[i].dz;
    }
    for (int64_t k = 0; k < na; k += 8) { /* inputs to lanes */
        const int64_t m = na - k < 8 ? na - k : 8;
        __m256 a[8], b[8], c[8], e[8];
        if (m == 8) {
            rows_to_buf8(src[0], a0 + k, wb->dl + 8 * k);
            rows_to_buf8(src[1], a0 + k, wb->ul + 8 * k);
            rows_to_buf8(src[2], a0 + k, wb->gh + 8 * k);
            rows_to_buf8(src[3], a0 + k, wb->dsp + 8 * k);
            for (int i = 0; i < 8; i++) {
                const int64_t q = 8 * (k + i);
                _mm256_storeu_ps(wb->dub + q, _mm256_mul_ps(_mm256_loadu_ps(wb->dl + q),
                                                            _mm256_loadu_ps(wb->ul + q)));
                _mm256_storeu_ps(wb->gh + q, _mm256_and_ps(kr, _mm256_loadu_ps(wb->gh + q)));
                _mm256_storeu_ps(wb->hb + q, _mm256_setzero_ps());
                _mm256_storeu_ps(wb->dd + q, _mm256_setzero_ps());
            }
            continue;
        }
        rows_to_lanes(src[0], 8, a0 + k, m, a);
        rows_to_lanes(src[1], 8, a0 + k, m, b);
        rows_to_lanes(src[2], 8, a0 + k, m, c);
        rows_to_lanes(src[3], 8, a0 + k, m, e);
        for (int i = 0; i < 8; i++) {
            _mm256_storeu_ps(wb->dl + 8 * (k + i), a[i]);
            _mm256_storeu_ps(wb->ul + 8 * (k + i), b[i]);
            _mm256_storeu_ps(wb->dub + 8 * (k + i), _mm256_mul_ps(a[i], b[i]));
            _mm256_storeu_ps(wb->gh + 8 * (k + i), _mm256_and_ps(kr, c[i]));
            _mm256_storeu_ps(wb->dsp + 8 * (k + i), e[i]);
            _mm256_storeu_ps(wb->hb + 8 * (k + i), _mm256_setzero_ps());
            _mm256_storeu_ps(wb->dd + 8 * (k + i), _mm256_setzero_ps());
        }
    }
    /* clamping changes no bit where it is not needed (exp2_scan), so one decision per chunk
     * gives the forward's states whatever its tiles decided */
    clamp = !tile_in_range(w->dl, n, arange[0], arange[1]);
    for (int64_t n0 = 0; n0 < N; n0 += 4) /* the chunk's states and exponentials, C.x */
        brec8(w, y, n, B + n0, C + n0, N, x0 + n0, A2 + n0, w->xs + 8 * n0, w->ab + 8 * n0, clamp);
    if (r[0].z)
        for (int64_t k = 0; k < na; k += 8) { /* the gate: dz and g-hat = dout z sigmoid(z) */
            const int64_t m = na - k < 8 ? na - k : 8;
            float *yb = wb->hb, zb[64], sb[64];
            __m256 zv[8], sv[8], dz[8];
            if (m == 8) {
                rows_to_buf8(src[4], a0 + k, zb), rows_to_buf8(src[5], a0 + k, sb);
                for (int i = 0; i < 8; i++)
                    zv[i] = _mm256_loadu_ps(zb + 8 * i), sv[i] = _mm256_loadu_ps(sb + 8 * i);
            } else {
                rows_to_lanes(src[4], 8, a0 + k, m, zv);
                rows_to_lanes(src[5], 8, a0 + k, m, sv);
            }
            for (int i = 0; i < 8; i++) {
                const __m256 gy = _mm256_loadu_ps(wb->gh + 8 * (k + i)), s = sv[i];
                const __m256 o = _mm256_fmadd_ps(ds, _mm256_loadu_ps(wb->ul + 8 * (k + i)),
                                                 _mm256_loadu_ps(yb + 8 * (k + i)));
                const __m256 one = _mm256_set1_ps(1.0f);
                dz[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(gy, o), s),
                                      _mm256_fmadd_ps(zv[i], _mm256_sub_ps(one, s), one));
                _mm256_storeu_ps(wb->gh + 8 * (k + i), _mm256_mul_ps(gy, _mm256_mul_ps(zv[i], s)));
                _mm256_storeu_ps(yb + 8 * (k + i), _mm256_setzero_ps()); /* hb from here */
            }
            lanes_out8(dz, dst[2], nr, a0 + k, k ? 0 : off, m);
        }
    for (int64_t k0 = (n - 1) / BT * BT; k0 >= 0; k0 -= BT) { /* tiles, backwards */
        const int64_t m = n - k0 < BT ? n - k0 : BT;
        const float *Bk = B + k0 * N, *Ck = C + k0 * N;
        bwd_bufs8 q = v;
        __m256 xs0[BLK_N], sa[4];
        float *const xt = w->xs + 8 * N * k0, *const at = w->ab + 8 * N * k0;
        q.dl += 8 * k0, q.dub += 8 * k0, q.gh += 8 * k0, q.hb += 8 * k0, q.dd += 8 * k0;
        for (int64_t i = 0; i < N; i++) /* the state before the tile */
            xs0[i] = k0 ? _mm256_loadu_ps(xt - 8 * N + 8 * i) : x0[i];
        for (int64_t n0 = 0; n0 < N; n0 += 4) { /* the reverse scan, dA in float per tile */
            brev8(&q, m, Bk + n0, Ck + n0, N, xs0 + n0, A + n0, hn + n0, sa, xt + 8 * n0,
                  at + 8 * n0);
            for (int i = 0; i < 4; i++) acc_pd(dAl + 8 * (n0 + i), sa[i]);
        }
        for (int64_t k = 0; k < m; k++) { /* dB and dC: the sums over the lanes */
            const int64_t t = t0 + k0 + k;
            const __m256 gh = _mm256_loadu_ps(q.gh + 8 * k), dub = _mm256_loadu_ps(q.dub + 8 * k);
            for (int64_t n0 = 0; n0 < N; n0 += 8) {
                const float *xs = xt + 8 * (k * N + n0), *hv = at + 8 * (k * N + n0);
                __m256 p[8];
                if (g[0].dC) {
                    for (int i = 0; i < 8; i++)
                        p[i] = _mm256_mul_ps(gh, _mm256_loadu_ps(xs + 8 * i));
                    if (nr < 8)
                        for (int i = 0; i < 8; i++) p[i] = _mm256_and_ps(kr, p[i]);
                    acc_pd(g[0].dC + t * N + n0, tree8(p));
                }
                if (g[0].dB) {
                    for (int i = 0; i < 8; i++)
                        p[i] = _mm256_mul_ps(_mm256_loadu_ps(hv + 8 * i), dub);
                    if (nr < 8)
                        for (int i = 0; i < 8; i++) p[i] = _mm256_and_ps(kr, p[i]);
                    acc_pd(g[0].dB + t * N + n0, tree8(p));
                }
            }
        }
    }
    for (int64_t k = 0; k < na; k += 8) { /* du, ddelta, dD, dbias */
        const int64_t m = na - k < 8 ? na - k : 8, lo = k ? 0 : off;
        __m256 du[8], dl[8];
        for (int i = 0; i < 8; i++) {
            const int64_t q = 8 * (k + i);
            const __m256 gh = _mm256_loadu_ps(wb->gh + q), hb = _mm256_loadu_ps(wb->hb + q);
            const __m256 u = _mm256_loadu_ps(wb->ul + q);
            du[i] = _mm256_fmadd_ps(_mm256_loadu_ps(wb->dl + q), hb, _mm256_mul_ps(ds, gh));
            dl[i] = _mm256_mul_ps(_mm256_fmadd_ps(u, hb, _mm256_loadu_ps(wb->dd + q)),
                                  _mm256_loadu_ps(wb->dsp + q));
            if (i >= lo && i < m) dD = _mm256_fmadd_ps(gh, u, dD), db = _mm256_add_ps(db, dl[i]);
        }
        lanes_out8(du, dst[0], nr, a0 + k, lo, m);
        lanes_out8(dl, dst[1], nr, a0 + k, lo, m);
    }
    dDb[0] = _mm256_add_ps(dDb[0], dD), dDb[1] = _mm256_add_ps(dDb[1], db);
}

int mmi_ssm_sel_bwd_block_avx2(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr)
{
    const int64_t N = r[0].N, L = r[0].L, T = r[0].chunk, nck = (L + T - 1) / T;
    const int64_t T8 = (T + 14) / 8 * 8; /* whole 8-step groups from t0 rounded down */
    __m256 A[BLK_N], A2[BLK_N], hn[BLK_N], x0[BLK_N], arange[2], dDb[2];
    double dAl[BLK_N * 8], dDl[8], dbl[8];
    float *p = g ? g[0].work : NULL;
    bwd_bufs8 w;
    if (N < 8 || N % 8 || N > BLK_N || nr < 0 || nr > 8 || !r[0].b_var || !r[0].c_var) return 0;
    if (nr == 0) return 1; /* the shape query */
    /* 8 (2 T N + 7 T8) floats (MMI_SEL_BWD_BLOCK_WORK) */
    w.xs = p, w.ab = w.xs + 8 * T * N;
    w.dl = w.ab + 8 * T * N;
    w.ul = w.dl + 8 * T8, w.dub = w.ul + 8 * T8, w.dsp = w.dub + 8 * T8;
    w.gh = w.dsp + 8 * T8, w.hb = w.gh + 8 * T8, w.dd = w.hb + 8 * T8;
    arange[0] = _mm256_set1_ps(INFINITY), arange[1] = _mm256_set1_ps(-INFINITY);
    for (int64_t n = 0; n < N; n++) {
        float a[8];
        for (int64_t j = 0; j < 8; j++) a[j] = r[j < nr ? j : 0].A[n];
        A[n] = _mm256_loadu_ps(a);
        A2[n] = _mm256_mul_ps(A[n], _mm256_set1_ps(1.44269504088896341f));
        arange[0] = _mm256_min_ps(arange[0], A2[n]), arange[1] = _mm256_max_ps(arange[1], A2[n]);
        hn[n] = _mm256_setzero_ps();
    }
    memset(dAl, 0, sizeof(double) * (size_t)(8 * N));
    memset(dDl, 0, sizeof dDl), memset(dbl, 0, sizeof dbl);
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        const int64_t t0 = ck * T, t1 = t0 + T < L ? t0 + T : L;
        float *c[8];
        for (int64_t j = 0; j < 8; j++) c[j] = r[j < nr ? j : 0].ckpt + ck * N;
        state_xfer((float *)(void *)x0, N, c, nr, 0);
        dDb[0] = dDb[1] = _mm256_setzero_ps();
        bwd_chunk8(r, g, nr, t0, t1 - t0, &w, x0, A, A2, arange, hn, dAl, dDb);
        acc_pd(dDl, dDb[0]), acc_pd(dbl, dDb[1]);
    }
    for (int64_t j = 0; j < nr; j++) {
        for (int64_t n = 0; n < N; n++) g[j].dA[n] += dAl[8 * n + j];
        if (g[j].dD) *g[j].dD += dDl[j];
        if (g[j].dbias) *g[j].dbias += dbl[j];
    }
    return 1;
}

static const mmi_ssm_isa k_avx2 = {
    mmi_ssm_sel_prep_avx2,      mmi_ssm_sel_fwd_avx2,       mmi_ssm_sel_bwd_avx2,
    mmi_ssm_sel_step_rows_avx2, mmi_ssm_sel_fwd_block_avx2, 8,
    mmi_ssm_lru_step_rows_avx2, /* lru_scan_avx2.c */
    mmi_ssm_sel_bwd_block_avx2,
};

const mmi_ssm_isa *mmi_ssm_isa_avx2(void) { return &k_avx2; }

#else /* no AVX2/FMA in this build: the portable bodies run */
const mmi_ssm_isa *mmi_ssm_isa_avx2(void) { return NULL; }
#endif
