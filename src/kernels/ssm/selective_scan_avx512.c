/* SPDX-License-Identifier: MIT */
/*
 * selective_scan_avx512.c — AVX-512 (F/DQ/BW/VL) bodies of the selective scan (compiled with
 * the AVX-512 flags; the dispatch table hands them out only on CPUs and OSes that run them).
 * Same contract as selective_scan_avx2.c (results differ from the portable path by rounding
 * only), except that any N <= 256 is taken: the last vector of the state is masked, its pad
 * lanes hold A = B = C = 0, so they stay 0 and add nothing.
 *
 * Layout of the per-row bodies: 16 lanes over the state axis N, time sequential. They get one
 * (batch, channel) row per call (mmi_sel_row), whose state is N contiguous floats, so N is the
 * axis a row offers, and Mamba's N = 16 is exactly one register. The channel-block forward at
 * the end of the file (mmi_ssm_sel_fwd_block_avx512) takes 16 rows at once instead and puts
 * the channels in the lanes; the operator uses it for variable B and C. The exp + FMA
 * bound counts the exp and four FMA-port operations per state vector and step; everything else
 * per step has to go. The AVX2 body does per step a horizontal sum, the output's skip and gate
 * in scalar code, an integer division for the checkpoint test, and (N = 16: two registers kept
 * in a stack array) a state round trip through memory. Here, for N <= 16, the forward runs 16
 * steps per block: each step leaves its product vector x_t * C_t, a transposing add tree turns
 * the block's 16 products into one vector of 16 outputs (3 shuffle/add operations per step
 * instead of 8), the skip and gate are applied to that vector, the checkpoint time is a
 * counter and the state stays in a register. Larger N (more work per step to amortise the
 * reduction over) and the last L % 16 steps run one step at a time, which keeps the code small
 * (the dispatch tables link every kernel into a static binary).
 *
 * exp is the Cephes scheme of mmi_exp256 (same reduction and polynomial, so the same results
 * wherever they are normal floats) with 2^n applied by one vscalefps: results below FLT_MIN
 * are 0 (absolute error below 1.2e-38), above 88.72 +Inf, NaN stays NaN (mmi_exp512_scalef,
 * simd/mmi_avx512_math.h). softplus needs no log here (softplus512 below).
 */
#include "../simd/mmi_avx512_target.h"
#include "mmi_ssm_kernels.h"

#include <string.h>

#ifdef MMI_HAVE_AVX512
#include <immintrin.h>

#include "../simd/mmi_avx512_math.h"

#if defined(__GNUC__) || defined(__clang__)
#define INL static inline __attribute__((always_inline))
#else
#define INL static inline
#endif

#define MAXV 16 /* N <= 256 */

/* The mask of vector v of a state of V vectors whose last one has the lanes of km. */
INL __mmask16 vmask(int64_t v, int64_t V, __mmask16 km) { return v == V - 1 ? km : 0xffff; }

/* 1 / x for normal finite x > 0 without a division: rcp14 and one Newton step (about 1 ulp;
 * vdivps was the prep's bottleneck). */
INL __m512 recip512(__m512 x)
{
    const __m512 r = _mm512_rcp14_ps(x);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(1.0f)), r);
}

/* softplus and, with deriv, its derivative sigmoid, without a log:
 * softplus(x) = max(x, 0) + log1p(y) with y = e^-|x| in [0, 1], and log1p(y) = 2 atanh(s) with
 * s = y / (2 + y) in [0, 1/3]: 2 atanh(s) = s (2 + w p(w)), w = s^2 <= 1/9, p a degree-3
 * least-squares fit of (2 atanh(s) / s - 2) / w on [0, 1/9] (relative error of the bracket
 * below 1e-7 in float arithmetic). One exp, one reciprocal and 7 FMA-port operations instead
 * of an exp, a reciprocal and Cephes' log. Above x ~ 17 the log1p term is below half an ulp
 * of x, so the result is x as the threshold-20 definition says; below -87.3 y is 0 and so is
 * the result (absolute error below 1.2e-38). sigmoid(x) = 1 / (1 + y) for x >= 0, y / (1 + y)
 * below. */
INL __m512 softplus512(__m512 x, __m512 *deriv)
{
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 y = mmi_exp512_scalef(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    const __m512 s = _mm512_mul_ps(y, recip512(_mm512_add_ps(two, y))), w = _mm512_mul_ps(s, s);
    __m512 p = _mm512_set1_ps(0.26867613196372986f);
    p = _mm512_fmadd_ps(p, w, _mm512_set1_ps(0.2823394238948822f));
    p = _mm512_fmadd_ps(p, w, _mm512_set1_ps(0.4000767171382904f));
    p = _mm512_fmadd_ps(p, w, _mm512_set1_ps(0.6666663885116577f));
    p = _mm512_fmadd_ps(p, w, two);
    if (deriv) {
        const __m512 r = recip512(_mm512_add_ps(one, y));
        const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        *deriv = _mm512_mask_mul_ps(r, neg, r, y);
    }
    return _mm512_fmadd_ps(s, p, _mm512_max_ps(x, _mm512_setzero_ps()));
}

int mmi_ssm_sel_prep_avx512(int64_t n, const float *delta, float bias, int softplus, const float *z,
                            float *dlt, float *dsp, float *gz, float *sz)
{
    const __m512 bv = _mm512_set1_ps(bias), one = _mm512_set1_ps(1.0f);
    for (int64_t t = 0; t < n; t += 16) { /* the tail is one masked vector */
        const __mmask16 k = mmi_lanes16(n - t);
        /* the rows stream from memory between the scan's tiles: fetch 1 KiB ahead (hints only,
         * never fault) */
        _mm_prefetch((const char *)(delta + t + 256), _MM_HINT_T0);
        if (z) _mm_prefetch((const char *)(z + t + 256), _MM_HINT_T0);
        __m512 raw = _mm512_add_ps(_mm512_maskz_loadu_ps(k, delta + t), bv), d = raw, der = one;
        if (softplus) d = softplus512(raw, dsp ? &der : NULL);
        _mm512_mask_storeu_ps(dlt + t, k, d);
        if (dsp) _mm512_mask_storeu_ps(dsp + t, k, der);
        if (z) {
            const __m512 zv = _mm512_maskz_loadu_ps(k, z + t);
            /* sigmoid(z) = 1 / (1 + e^-z), 0 where e^-z > e^87 (then below FLT_MIN's 1.2e-38);
             * NaN passes the min (its second operand) and the unordered mask, so stays NaN */
            const __m512 nz = _mm512_sub_ps(_mm512_setzero_ps(), zv), lim = _mm512_set1_ps(87.0f);
            const __m512 ez = mmi_exp512_scalef(_mm512_min_ps(lim, nz));
            const __m512 s = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(nz, lim, _CMP_NGT_UQ),
                                                 recip512(_mm512_add_ps(one, ez)));
            if (gz) _mm512_mask_storeu_ps(gz + t, k, _mm512_mul_ps(zv, s));
            if (sz) _mm512_mask_storeu_ps(sz + t, k, s);
        }
    }
    return 1;
}

/* ---- forward ------------------------------------------------------------------------------ */
/* The transposing add tree. lvl1(a, b): 128-bit quarters [a0+a2, a1+a3, b0+b2, b1+b3], so the
 * low half sums to sum(a) and the high half to sum(b); lvl2 of two such: quarter j sums to the
 * j-th of the four inputs; lvl3 of two lvl2 results: per quarter j, lanes 0-1 sum to input j
 * of the first, lanes 2-3 to input j of the second; lvl4 of two lvl3 results: lane 4j + k is
 * the full sum of input 4k + j, which perm16 puts back in step order. */
INL __m512 lvl1(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
}
INL __m512 lvl2(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xdd));
}
INL __m512 lvl34(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xdd));
}
INL __m512 perm16(__m512 v)
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, v);
}

/* The state and its scan position, carried across blocks, and the row's pointers and strides
 * copied out of *r: a local whose address does not escape stays in registers, where fields
 * read through r would be reloaded after every store (a store to ckpt may alias *r). */
typedef struct fwd_state {
    __m512 x[MAXV], A[MAXV];
    int64_t next_ck, ck;    /* the next checkpoint's time and index */
    const float *B, *C;     /* row pointers of step 0 */
    int64_t bs, cs, N, chk; /* B and C strides per step (0: constant), N, chunk */
    float *ckpt;
} fwd_state;

/* Step t: x = exp(d A) x + B du (after storing the checkpoint due at t); returns the sum over
 * the vectors of x * C_t, not reduced across lanes. */
INL __m512 fwd_step(const int64_t V, fwd_state *st, __mmask16 km, int64_t t, float d, float du)
{
    const float *b = st->B + t * st->bs, *c = st->C + t * st->cs;
    const __m512 dv = _mm512_set1_ps(d), duv = _mm512_set1_ps(du);
    __m512 acc = _mm512_setzero_ps();
    if (st->ckpt && t == st->next_ck) {
        for (int64_t v = 0; v < V; v++)
            _mm512_mask_storeu_ps(st->ckpt + st->ck * st->N + 16 * v, vmask(v, V, km), st->x[v]);
        st->ck++, st->next_ck += st->chk;
    }
    for (int64_t v = 0; v < V; v++) {
        const __mmask16 k = vmask(v, V, km);
        const __m512 a = mmi_exp512_scalef(_mm512_mul_ps(dv, st->A[v]));
        const __m512 bu = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, b + 16 * v), duv);
        st->x[v] = _mm512_fmadd_ps(a, st->x[v], bu);
        acc = _mm512_fmadd_ps(st->x[v], _mm512_maskz_loadu_ps(k, c + 16 * v), acc);
    }
    return acc;
}

/* The output of step t from its product vector acc (the skip and the gate of the portable body). */
INL float fwd_out(const mmi_sel_row *r, int64_t t, __m512 acc)
{
    float y = _mm512_reduce_add_ps(acc);
    if (r->has_d) y += r->dskip * r->u[t];
    if (r->gz) y *= r->gz[t];
    return y;
}

/* 16 steps from t0 and their outputs as one vector. */
INL void fwd_block(const int64_t V, const mmi_sel_row *r, fwd_state *st, __mmask16 km, int64_t t0)
{
    const __m512 uv = _mm512_loadu_ps(r->u + t0);
    float dl[16], du[16];
    __m512 q = _mm512_setzero_ps(), w = q, h = q, y;
    _mm512_storeu_ps(dl, _mm512_loadu_ps(r->dlt + t0));
    _mm512_storeu_ps(du, _mm512_mul_ps(_mm512_loadu_ps(dl), uv));
#pragma GCC unroll 8
    for (int s = 0; s < 16; s += 2) { /* the tree is built as the products come */
        const __m512 p0 = fwd_step(V, st, km, t0 + s, dl[s], du[s]);
        const __m512 pq = lvl1(p0, fwd_step(V, st, km, t0 + s + 1, dl[s + 1], du[s + 1]));
        if (s % 4 == 0) {
            q = pq;
            continue;
        }
        q = lvl2(q, pq);
        if (s % 8 == 2) {
            w = q;
            continue;
        }
        w = lvl34(w, q);
        if (s == 6) h = w;
    }
    y = perm16(lvl34(h, w));
    if (r->has_d) y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(r->dskip), uv));
    if (r->gz) y = _mm512_mul_ps(y, _mm512_loadu_ps(r->gz + t0));
    _mm512_storeu_ps(r->out + t0, y);
}

INL void fwd_row(const int64_t V, const int blocks, const mmi_sel_row *r)
{
    const __mmask16 km = mmi_lanes16(r->N - 16 * (V - 1));
    fwd_state st;
    int64_t t = 0;
    for (int64_t v = 0; v < V; v++) {
        const __mmask16 k = vmask(v, V, km);
        st.x[v] = r->cont ? _mm512_maskz_loadu_ps(k, r->x + 16 * v) : _mm512_setzero_ps();
        st.A[v] = _mm512_maskz_loadu_ps(k, r->A + 16 * v);
    }
    st.next_ck = 0, st.ck = 0;
    st.B = r->B, st.C = r->C, st.bs = r->b_var ? r->N : 0, st.cs = r->c_var ? r->N : 0;
    st.N = r->N, st.chk = r->chunk, st.ckpt = r->ckpt;
    if (blocks) /* (V = 1; with more vectors a step has more work to amortise its reduction) */
        for (; t + 16 <= r->L; t += 16) fwd_block(V, r, &st, km, t);
    for (; t < r->L; t++) /* one step at a time (and the last L % 16 of V = 1): small code */
        r->out[t] = fwd_out(r, t, fwd_step(V, &st, km, t, r->dlt[t], r->dlt[t] * r->u[t]));
    for (int64_t v = 0; v < V; v++) _mm512_mask_storeu_ps(r->x + 16 * v, vmask(v, V, km), st.x[v]);
}

int mmi_ssm_sel_fwd_avx512(const mmi_sel_row *r)
{
    const int64_t V = (r->N + 15) / 16;
    if (r->N <= 0 || V > MAXV) return 0;
    if (V == 1) /* N <= 16 (Mamba's): constant V, the state in a register, 16-step blocks */
        fwd_row(1, 1, r);
    else
        fwd_row(V, 0, r);
    return 1;
}

/* ---- backward ----------------------------------------------------------------------------- */
/* Chunk recomputation: abar and states of [t0, t1) from x0 (rows N apart, masked last vector:
 * nothing is written past N floats of a row). The state is carried in registers (x), not
 * reloaded from the row just stored: the step's only dependency is then the FMA, not a store
 * forwarding round trip. */
static void recompute(const mmi_sel_row *r, int64_t t0, int64_t t1, const float *x0, float *abar,
                      float *xs, __mmask16 km)
{
    const int64_t N = r->N, V = (N + 15) / 16;
    __m512 x[MAXV];
    for (int64_t v = 0; v < V; v++) x[v] = _mm512_maskz_loadu_ps(vmask(v, V, km), x0 + 16 * v);
    for (int64_t t = t0; t < t1; t++) {
        const float *b = r->b_var ? r->B + t * N : r->B;
        const float d = r->dlt[t];
        const __m512 dv = _mm512_set1_ps(d), duv = _mm512_set1_ps(d * r->u[t]);
        for (int64_t v = 0; v < V; v++) {
            const __mmask16 k = vmask(v, V, km);
            const __m512 a =
                mmi_exp512_scalef(_mm512_mul_ps(dv, _mm512_maskz_loadu_ps(k, r->A + 16 * v)));
            x[v] =
                _mm512_fmadd_ps(a, x[v], _mm512_mul_ps(_mm512_maskz_loadu_ps(k, b + 16 * v), duv));
            _mm512_mask_storeu_ps(abar + (t - t0) * N + 16 * v, k, a);
            _mm512_mask_storeu_ps(xs + (t - t0) * N + 16 * v, k, x[v]);
        }
    }
}

/* dst[0..16) (double) += v on the lanes of k. */
INL void acc_pd(double *dst, __m512 v, __mmask16 k)
{
    const __mmask8 k0 = (__mmask8)(k & 0xff), k1 = (__mmask8)(k >> 8);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    _mm512_mask_storeu_pd(dst, k0, _mm512_add_pd(_mm512_maskz_loadu_pd(k0, dst), lo));
    if (k1)
        _mm512_mask_storeu_pd(dst + 8, k1, _mm512_add_pd(_mm512_maskz_loadu_pd(k1, dst + 8), hi));
}

static float gate(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t t, const float *x,
                  const float *c, __mmask16 km)
{
    float gy = g->dout[t];
    if (r->z) {
        const int64_t V = (r->N + 15) / 16;
        __m512 acc = _mm512_setzero_ps();
        float o;
        const float z = r->z[t], s = r->sz[t];
        for (int64_t v = 0; v < V; v++) {
            const __mmask16 k = vmask(v, V, km);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + 16 * v),
                                  _mm512_maskz_loadu_ps(k, c + 16 * v), acc);
        }
        o = _mm512_reduce_add_ps(acc) + (r->has_d ? r->dskip * r->u[t] : 0.0f);
        if (g->dz) g->dz[t] = gy * o * s * (1.0f + z * (1.0f - s));
        gy *= z * s;
    }
    return gy;
}

/* One reverse step t of a chunk: the adjoint hn and the gradients at t. */
static void bwd_step(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t t, int64_t t0,
                     const float *abar, const float *xs, const float *x0, const __m512 *A,
                     __m512 *hn, __mmask16 km)
{
    const int64_t N = r->N, V = (N + 15) / 16;
    const float *b = r->b_var ? r->B + t * N : r->B, *c = r->c_var ? r->C + t * N : r->C;
    const float *a = abar + (t - t0) * N, *x = xs + (t - t0) * N;
    const float *xp = t > t0 ? x - N : x0;
    double *dBt = r->b_var ? g->dB + t * N : g->dB, *dCt = r->c_var ? g->dC + t * N : g->dC;
    const float d = r->dlt[t], u = r->u[t], gh = gate(r, g, t, x, c, km);
    const __m512 ghv = _mm512_set1_ps(gh), uv = _mm512_set1_ps(u), dv = _mm512_set1_ps(d);
    const __m512 dvu = _mm512_set1_ps(d * u);
    __m512 hb = _mm512_setzero_ps(), dd = _mm512_setzero_ps();
    float shb, sdd;
    for (int64_t v = 0; v < V; v++) {
        const __mmask16 k = vmask(v, V, km);
        const __m512 cv = _mm512_maskz_loadu_ps(k, c + 16 * v),
                     bv = _mm512_maskz_loadu_ps(k, b + 16 * v);
        const __m512 av = _mm512_maskz_loadu_ps(k, a + 16 * v),
                     hv = _mm512_fmadd_ps(ghv, cv, hn[v]);
        const __m512 ax = _mm512_mul_ps(av, _mm512_maskz_loadu_ps(k, xp + 16 * v));
        if (dCt) acc_pd(dCt + 16 * v, _mm512_mul_ps(ghv, _mm512_maskz_loadu_ps(k, x + 16 * v)), k);
        if (dBt) acc_pd(dBt + 16 * v, _mm512_mul_ps(hv, dvu), k);
        hb = _mm512_fmadd_ps(hv, bv, hb);
        dd = _mm512_fmadd_ps(hv, _mm512_fmadd_ps(bv, uv, _mm512_mul_ps(A[v], ax)), dd);
        acc_pd(g->dA + 16 * v, _mm512_mul_ps(_mm512_mul_ps(hv, dv), ax), k);
        hn[v] = _mm512_mul_ps(av, hv);
    }
    shb = _mm512_reduce_add_ps(hb), sdd = _mm512_reduce_add_ps(dd);
    if (g->du) g->du[t] = d * shb + (r->has_d ? r->dskip * gh : 0.0f);
    if (g->dD) *g->dD += (double)(gh * u);
    sdd *= r->dsp[t];
    if (g->ddelta) g->ddelta[t] = sdd;
    if (g->dbias) *g->dbias += (double)sdd;
}

int mmi_ssm_sel_bwd_avx512(const mmi_sel_row *r, const mmi_sel_grad *g)
{
    const int64_t N = r->N, V = (N + 15) / 16, T = r->chunk, nck = (r->L + T - 1) / T;
    const __mmask16 km = mmi_lanes16(N - 16 * (V - 1));
    float *abar = g->work, *xs = abar + T * N;
    __m512 hn[MAXV], A[MAXV];
    if (N <= 0 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++)
        hn[v] = _mm512_setzero_ps(), A[v] = _mm512_maskz_loadu_ps(vmask(v, V, km), r->A + 16 * v);
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        const int64_t t0 = ck * T, t1 = t0 + T < r->L ? t0 + T : r->L;
        const float *x0 = r->ckpt + ck * N;
        recompute(r, t0, t1, x0, abar, xs, km);
        for (int64_t t = t1 - 1; t >= t0; t--) bwd_step(r, g, t, t0, abar, xs, x0, A, hn, km);
    }
    return 1;
}

/* ---- decoding step ------------------------------------------------------------------------ */
int mmi_ssm_sel_step_rows_avx512(const mmi_sel_step *s)
{
    const int64_t N = s->N, V = (N + 15) / 16;
    const __mmask16 km = mmi_lanes16(N - 16 * (V - 1));
    __m512 B[MAXV], C[MAXV];
    if (N <= 0 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++) {
        const __mmask16 k = vmask(v, V, km);
        B[v] = _mm512_maskz_loadu_ps(k, s->B + 16 * v),
        C[v] = _mm512_maskz_loadu_ps(k, s->C + 16 * v);
    }
    for (int64_t i = 0; i < s->n; i++) {
        float *x = s->x + i * N, y;
        const float *A = s->A + i * N;
        const __m512 dv = _mm512_set1_ps(s->dlt[i]), duv = _mm512_set1_ps(s->dlt[i] * s->u[i]);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t v = 0; v < V; v++) {
            const __mmask16 k = vmask(v, V, km);
            const __m512 a =
                mmi_exp512_scalef(_mm512_mul_ps(dv, _mm512_maskz_loadu_ps(k, A + 16 * v)));
            const __m512 xv =
                _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k, x + 16 * v), _mm512_mul_ps(B[v], duv));
            _mm512_mask_storeu_ps(x + 16 * v, k, xv);
            acc = _mm512_fmadd_ps(xv, C[v], acc);
        }
        y = _mm512_reduce_add_ps(acc);
        if (s->dskip) y += s->dskip[i] * s->u[i];
        if (s->gz) y *= s->gz[i];
        s->out[i] = y;
    }
    return 1;
}

/* ---- forward over a block of up to 16 channels ---------------------------------------------
 * selective_scan_avx2.c's channel-block forward on 16 lanes: lane j is channel j of one batch
 * row and B/C group, B_t[n] and C_t[n] are broadcast from memory (embedded broadcasts), four
 * state components stay in registers across a tile of steps, and the channel-major inputs and
 * outputs go through 16x16 transposes once per tile. Any N <= 64 is taken (the last N % 4
 * components one at a time); rows j >= nr repeat row 0 and are not written. Every lane runs the
 * same operations whatever the block, so a channel's bits do not depend on its grouping. */
#define BLK_T 64 /* steps per tile: the four tile buffers (16 KiB) stay in L1 */
#define BLK_N 64

/* 2^(d a2) for the scan by a 32-entry table: k = d a2 + 1.5 2^18 rounds d a2 to m / 32 (m
 * an integer, in k's low mantissa bits), r = d a2 - m / 32 in [-1/64, 1/64] exactly rounded
 * once (fmsub), p = 1 + c1 r + c2 r^2 (minimax, relative error 5.3e-8, 1.1e-7 in float), and
 * 2^(m/32) = 2^(m >> 5) 2^((m & 31)/32) from vpermt2ps on m & 31 plus m << 18 added as
 * integer bits (the table holds the bits of 2^(j/32) less j << 18, so the added (m & 31) << 18
 * cancels and m >> 5 lands in the exponent). Relative error about 2e-7 (table, polynomial and
 * product roundings); 9 operations, 5 on the FMA pipes (the degree-5 polynomial scheme needs 7).
 * With clamp, d a2 is held to [-125, 127] through k and r to [-1/64, 1/64], which changes no
 * bit inside that range and keeps the result normal and finite outside it. The clamps take
 * their bounds first (x86 min/max return the second operand for a NaN), so a NaN stays NaN:
 * the table lookup of its bits gives garbage, but the product with p = NaN is NaN. */
static const uint32_t k_exp2_tab[32] = {
    0x3f800000, 0x3f7ecd87, 0x3f7daac3, 0x3f7c980f, 0x3f7b95c2, 0x3f7aa43a, 0x3f79c3d3, 0x3f78f4f0,
    0x3f7837f0, 0x3f778d3a, 0x3f76f532, 0x3f767043, 0x3f75fed7, 0x3f75a15b, 0x3f75583f, 0x3f7523f6,
    0x3f7504f3, 0x3f74fbaf, 0x3f7508a4, 0x3f752c4d, 0x3f75672a, 0x3f75b9be, 0x3f76248c, 0x3f76a81e,
    0x3f7744fd, 0x3f77fbb8, 0x3f78ccdf, 0x3f79b907, 0x3f7ac0c7, 0x3f7be4ba, 0x3f7d257d, 0x3f7e83b3};

INL __m512 exp2_tab(__m512 d, __m512 a2, __m512i tlo, __m512i thi, int clamp)
{
    const __m512 shift = _mm512_set1_ps(393216.0f); /* 1.5 2^18: its float spacing is 1/32 */
    __m512 k = _mm512_fmadd_ps(d, a2, shift), r, p;
    __m512i s;
    if (clamp)
        k = _mm512_min_ps(_mm512_set1_ps(393216.0f + 127.0f),
                          _mm512_max_ps(_mm512_set1_ps(393216.0f - 125.0f), k));
    r = _mm512_fmsub_ps(d, a2, _mm512_sub_ps(k, shift));
    if (clamp)
        r = _mm512_min_ps(_mm512_set1_ps(0.015625f), _mm512_max_ps(_mm512_set1_ps(-0.015625f), r));
    p = _mm512_fmadd_ps(_mm512_set1_ps(2.4022474885e-01f), r, _mm512_set1_ps(6.9315731525e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    s = _mm512_permutex2var_epi32(tlo, _mm512_castps_si512(k), thi);
    s = _mm512_add_epi32(s, _mm512_slli_epi32(_mm512_castps_si512(k), 18));
    return _mm512_mul_ps(_mm512_castsi512_ps(s), p);
}

/* Lane j of v[0..16) becomes row j's values at steps t..t+n (rows j >= nr repeat row 0, steps
 * past n are zero and not read): v[k] holds step k of the 16 rows. */
static void rows_to_lanes16(const float *const *src, int64_t nr, int64_t t, int64_t n, __m512 v[16])
{
    const __mmask16 m = mmi_lanes16(n);
    for (int64_t j = 0; j < 16; j++) v[j] = _mm512_maskz_loadu_ps(m, src[j < nr ? j : 0] + t);
    mmi_transpose16_avx512(v);
}

/* The inverse: v[k] holds step k's 16 lanes; writes rows j < nr, n steps at dst[j] + t. */
static void lanes_to_rows16(__m512 v[16], float *const *dst, int64_t nr, int64_t t, int64_t n)
{
    const __mmask16 m = mmi_lanes16(n);
    mmi_transpose16_avx512(v);
    for (int64_t j = 0; j < nr; j++) _mm512_mask_storeu_ps(dst[j] + t, m, v[j]);
}

/* State h [N][16 lanes] to (to_rows) or from the rows' N-vectors at p[j]. */
static void state_xfer16(__m512 *h, int64_t N, float *const *p, int64_t nr, int to_rows)
{
    for (int64_t n0 = 0; n0 < N; n0 += 16) {
        const int64_t m = N - n0 < 16 ? N - n0 : 16;
        __m512 v[16];
        if (to_rows) {
            for (int64_t k = 0; k < 16; k++) v[k] = k < m ? h[n0 + k] : _mm512_setzero_ps();
            lanes_to_rows16(v, p, nr, n0, m);
        } else {
            rows_to_lanes16((const float *const *)p, nr, n0, m, v);
            for (int64_t k = 0; k < m; k++) h[n0 + k] = v[k];
        }
    }
}

/* One step of one state component for 16 channels: h = 2^(d A2) h + B d u; acc += C h. */
INL __m512 scan_step16(__m512 h, __m512 d, __m512 a2, __m512 bu, const float *b, const float *c,
                       __m512 *acc, int clamp)
{
    const __m512i tlo = _mm512_loadu_si512(k_exp2_tab), thi = _mm512_loadu_si512(k_exp2_tab + 16);
    h = _mm512_fmadd_ps(exp2_tab(d, a2, tlo, thi, clamp), h, _mm512_mul_ps(_mm512_set1_ps(*b), bu));
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*c), h, *acc);
    return h;
}

/* Steps [0, n) of the tile for 4 state components (B, C at the tile's first step, offset to
 * the components); y[k] += their C.h. */
INL void scan_tile16x4(const float *dl, const float *du, float *y, int64_t n, const float *B,
                       const float *C, int64_t N, __m512 *hp, const __m512 *A2, int clamp)
{
    __m512 h0 = hp[0], h1 = hp[1], h2 = hp[2], h3 = hp[3];
    const __m512 a0 = A2[0], a1 = A2[1], a2 = A2[2], a3 = A2[3];
    for (int64_t k = 0; k < n; k++, B += N, C += N) {
        const __m512 d = _mm512_loadu_ps(dl + 16 * k), bu = _mm512_loadu_ps(du + 16 * k);
        __m512 acc = _mm512_loadu_ps(y + 16 * k), acc2 = _mm512_setzero_ps();
        h0 = scan_step16(h0, d, a0, bu, B + 0, C + 0, &acc, clamp);
        h1 = scan_step16(h1, d, a1, bu, B + 1, C + 1, &acc2, clamp);
        h2 = scan_step16(h2, d, a2, bu, B + 2, C + 2, &acc, clamp);
        h3 = scan_step16(h3, d, a3, bu, B + 3, C + 3, &acc2, clamp);
        _mm512_storeu_ps(y + 16 * k, _mm512_add_ps(acc, acc2));
    }
    hp[0] = h0, hp[1] = h1, hp[2] = h2, hp[3] = h3;
}

/* The same for one component (the last N % 4). */
static void scan_tile16x1(const float *dl, const float *du, float *y, int64_t n, const float *B,
                          const float *C, int64_t N, __m512 *hp, const __m512 *A2, int clamp)
{
    __m512 h0 = hp[0];
    for (int64_t k = 0; k < n; k++, B += N, C += N) {
        const __m512 d = _mm512_loadu_ps(dl + 16 * k), bu = _mm512_loadu_ps(du + 16 * k);
        __m512 acc = _mm512_loadu_ps(y + 16 * k);
        h0 = scan_step16(h0, d, A2[0], bu, B, C, &acc, clamp);
        _mm512_storeu_ps(y + 16 * k, acc);
    }
    hp[0] = h0;
}

/* 1 when every d A2 of the tile lies in [-125, 127] (no clamp needed; clamping would not
 * change a bit there, so this only picks the faster loop). */
static int tile_in_range16(const float *dl, int64_t n, __m512 amin, __m512 amax)
{
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY), mn, mx;
    for (int64_t k = 0; k < n; k++) {
        const __m512 d = _mm512_loadu_ps(dl + 16 * k);
        lo = _mm512_min_ps(lo, d), hi = _mm512_max_ps(hi, d);
    }
    mn = _mm512_min_ps(_mm512_min_ps(_mm512_mul_ps(lo, amin), _mm512_mul_ps(lo, amax)),
                       _mm512_min_ps(_mm512_mul_ps(hi, amin), _mm512_mul_ps(hi, amax)));
    mx = _mm512_max_ps(_mm512_max_ps(_mm512_mul_ps(lo, amin), _mm512_mul_ps(lo, amax)),
                       _mm512_max_ps(_mm512_mul_ps(hi, amin), _mm512_mul_ps(hi, amax)));
    return (__mmask16)(_mm512_cmp_ps_mask(mn, _mm512_set1_ps(-124.0f), _CMP_GE_OQ) &
                       _mm512_cmp_ps_mask(mx, _mm512_set1_ps(126.0f), _CMP_LE_OQ)) == 0xffff;
}

static void scan_tile16(const float *dl, const float *du, float *y, int64_t n, const float *B,
                        const float *C, int64_t N, __m512 *h, const __m512 *A2, int clamp)
{
    int64_t n0 = 0;
    if (clamp)
        for (; n0 + 4 <= N; n0 += 4)
            scan_tile16x4(dl, du, y, n, B + n0, C + n0, N, h + n0, A2 + n0, 1);
    else
        for (; n0 + 4 <= N; n0 += 4)
            scan_tile16x4(dl, du, y, n, B + n0, C + n0, N, h + n0, A2 + n0, 0);
    for (; n0 < N; n0++) scan_tile16x1(dl, du, y, n, B + n0, C + n0, N, h + n0, A2 + n0, clamp);
}

/* One tile [t0, t0 + n), n <= BLK_T: inputs to lanes, the scan, outputs back to rows. */
static void block_tile16(const mmi_sel_row *r, int64_t nr, int64_t t0, int64_t n, __m512 *h,
                         const __m512 *A2, const __m512 *arange)
{
    const int64_t N = r[0].N;
    _Alignas(64) float dl[BLK_T * 16], du[BLK_T * 16], y[BLK_T * 16], ul[BLK_T * 16];
    const float *src[16], *usrc[16];
    float *dst[16];
    __m512 ds;
    {
        float dsk[16];
        for (int64_t j = 0; j < 16; j++) dsk[j] = r[j < nr ? j : 0].dskip;
        ds = _mm512_loadu_ps(dsk);
    }
    for (int64_t j = 0; j < 16; j++) src[j] = r[j < nr ? j : 0].dlt, usrc[j] = r[j < nr ? j : 0].u;
    /* 16 rows are more streams than the hardware prefetcher follows: the next tile's u and out
     * lines are requested now (hints; past a row's end they are dropped, never fault) */
    for (int64_t j = 0; j < nr; j++)
        for (int64_t k = 0; k < BLK_T; k += 16) {
            _mm_prefetch((const char *)(r[j].u + t0 + n + k), _MM_HINT_T0);
            _mm_prefetch((const char *)(r[j].out + t0 + n + k), _MM_HINT_T0);
        }
    for (int64_t k = 0; k < n; k += 16) {
        __m512 a[16], b[16];
        rows_to_lanes16(src, 16, t0 + k, n - k < 16 ? n - k : 16, a);
        rows_to_lanes16(usrc, 16, t0 + k, n - k < 16 ? n - k : 16, b);
        for (int i = 0; i < 16; i++) {
            _mm512_store_ps(dl + 16 * (k + i), a[i]);
            _mm512_store_ps(du + 16 * (k + i), _mm512_mul_ps(a[i], b[i]));
            _mm512_store_ps(ul + 16 * (k + i), b[i]);
            _mm512_store_ps(y + 16 * (k + i), _mm512_setzero_ps());
        }
    }
    scan_tile16(dl, du, y, n, r[0].B + t0 * N, r[0].C + t0 * N, N, h, A2,
                !tile_in_range16(dl, n, arange[0], arange[1]));
    for (int64_t j = 0; j < 16; j++) src[j] = r[j < nr ? j : 0].gz, dst[j] = r[j < nr ? j : 0].out;
    for (int64_t k = 0; k < n; k += 16) {
        const int64_t m = n - k < 16 ? n - k : 16;
        __m512 v[16], g[16];
        for (int i = 0; i < 16; i++) v[i] = _mm512_load_ps(y + 16 * (k + i));
        if (r[0].has_d)
            for (int i = 0; i < 16; i++)
                v[i] = _mm512_fmadd_ps(ds, _mm512_load_ps(ul + 16 * (k + i)), v[i]);
        if (r[0].gz) {
            rows_to_lanes16(src, 16, t0 + k, m, g);
            for (int i = 0; i < 16; i++) v[i] = _mm512_mul_ps(v[i], g[i]);
        }
        lanes_to_rows16(v, dst, nr, t0 + k, m);
    }
}

int mmi_ssm_sel_fwd_block_avx512(const mmi_sel_row *r, int64_t nr)
{
    const int64_t N = r[0].N, L = r[0].L;
    __m512 A2[BLK_N], h[BLK_N], arange[2];
    float *p[16];
    if (N < 1 || N > BLK_N || nr < 1 || nr > 16 || !r[0].b_var || !r[0].c_var) return 0;
    arange[0] = _mm512_set1_ps(INFINITY), arange[1] = _mm512_set1_ps(-INFINITY);
    for (int64_t n = 0; n < N; n++) {
        float a[16];
        for (int64_t j = 0; j < 16; j++) a[j] = r[j < nr ? j : 0].A[n];
        A2[n] = _mm512_mul_ps(_mm512_loadu_ps(a), _mm512_set1_ps(1.44269504088896341f));
        arange[0] = _mm512_min_ps(arange[0], A2[n]), arange[1] = _mm512_max_ps(arange[1], A2[n]);
    }
    for (int64_t j = 0; j < 16; j++) p[j] = r[j < nr ? j : 0].x;
    if (r[0].cont)
        state_xfer16(h, N, p, nr, 0);
    else
        for (int64_t n = 0; n < N; n++) h[n] = _mm512_setzero_ps();
    for (int64_t t0 = 0; t0 < L;) {
        int64_t t1 = t0 + BLK_T < L ? t0 + BLK_T : L;
        if (r[0].ckpt) {
            const int64_t next = (t0 / r[0].chunk + 1) * r[0].chunk;
            if (t0 % r[0].chunk == 0) {
                float *c[16];
                for (int64_t j = 0; j < 16; j++)
                    c[j] = r[j < nr ? j : 0].ckpt + (t0 / r[0].chunk) * N;
                state_xfer16(h, N, c, nr, 1);
            }
            if (next < t1) t1 = next;
        }
        block_tile16(r, nr, t0, t1 - t0, h, A2, arange);
        t0 = t1;
    }
    state_xfer16(h, N, p, nr, 1);
    return 1;
}

/* ---- backward over a block of up to 16 channels --------------------------------------------
 * The forward's lanes (channel j of one batch row and B/C group in lane j) for the reverse
 * scan. Per chunk of the checkpoints (last first): the rows' dlt, u, dout and dsp go to
 * lane-major step buffers through 16x16 transposes; the chunk's states are recomputed from the
 * checkpoint with the forward block's exp2 (so the same bits as its states), keeping only the
 * state before every 16th step and, with z, the pre-gate output C.x; the gate gives dz and
 * g-hat = dout silu'. Then per 16-step tile, last first: the tile's states and exp(dlt A) are
 * recomputed into [16 steps][N][16 lanes] buffers that stay in L1 (a whole chunk's went
 * through L2, which was slower than the second recomputation), and the reverse scan runs per
 * group of 4 state components (adjoints hn, dA sums and A in registers): hv = hn + g-hat
 * C_t[n], hn = a hv, with du and ddelta's sums over n (hv B_t[n], A[n] hv a x_{t-1})
 * accumulated lane-wise in per-step buffers and hv kept in place of a; dB_t[n] = sum over
 * lanes of hv dlt u and dC_t[n] = sum of g-hat x_t (the channels' shares of the shared B and
 * C) are reduced 16 components at a time by the forward's transposing add tree and added to
 * the float64 sums. dA is summed lane-wise in float over a tile, dD and dbias over a chunk,
 * then in float64. Lanes j >= nr repeat row 0 with dout = 0 (so their adjoints are 0) and are
 * masked out of the sums. */

/* v[k] (16 products, one per state component k) to one vector whose lane k is v[k]'s sum. */
INL __m512 tree16(const __m512 *p)
{
    const __m512 a =
        lvl34(lvl2(lvl1(p[0], p[1]), lvl1(p[2], p[3])), lvl2(lvl1(p[4], p[5]), lvl1(p[6], p[7])));
    const __m512 b = lvl34(lvl2(lvl1(p[8], p[9]), lvl1(p[10], p[11])),
                           lvl2(lvl1(p[12], p[13]), lvl1(p[14], p[15])));
    return perm16(lvl34(a, b));
}

/* The lane-major buffers of one chunk (T x 16 floats each) and its state storage. */
typedef struct bwd_bufs {
    float *xs, *ab; /* [16][N][16]: a 16-step tile's x_t and exp(dlt A) (then hv) */
    float *xb;      /* [T / 16 + 1][N][16]: the state before every 16th step of the chunk */
    float *dl, *ul, *dub, *dsp, *gh, *hb, *dd; /* [T][16] */
} bwd_bufs;

/* Recomputes G state components (G = 4 or 1) over the chunk's n steps from h0 (B, C at the
 * chunk's first step, offset to the components; xs, ab offset to them): x and a stored, y +=
 * C.x when y. */
INL void brec(const int G, const int full, const bwd_bufs *w, float *y, int64_t n, const float *B,
              const float *C, int64_t N, const __m512 *h0, const __m512 *A2, float *xs, float *ab,
              int clamp)
{
    const __m512i tlo = _mm512_loadu_si512(k_exp2_tab), thi = _mm512_loadu_si512(k_exp2_tab + 16);
    __m512 x[4];
#pragma GCC unroll 4
    for (int i = 0; i < G; i++) {
        x[i] = h0[i];
        if (!full) _mm512_storeu_ps(xs + 16 * i, x[i]);
    }
    for (int64_t k = 0; k < n; k++, B += N, C += N) {
        const __m512 d = _mm512_loadu_ps(w->dl + 16 * k), bu = _mm512_loadu_ps(w->dub + 16 * k);
        __m512 acc = _mm512_setzero_ps();
        float *xk = full ? xs + 16 * N * k : xs + 16 * N * ((k + 1) >> 4);
#pragma GCC unroll 4
        for (int i = 0; i < G; i++) {
            const __m512 a = exp2_tab(d, A2[i], tlo, thi, clamp);
            x[i] = _mm512_fmadd_ps(a, x[i], _mm512_mul_ps(_mm512_set1_ps(B[i]), bu));
            if (full) _mm512_storeu_ps(ab + 16 * N * k + 16 * i, a);
            if (full || ((k + 1) & 15) == 0) _mm512_storeu_ps(xk + 16 * i, x[i]);
            if (y) acc = _mm512_fmadd_ps(_mm512_set1_ps(C[i]), x[i], acc);
        }
        if (y) _mm512_storeu_ps(y + 16 * k, _mm512_add_ps(_mm512_loadu_ps(y + 16 * k), acc));
    }
}

/* The reverse scan of G components over the chunk's n steps (k = n-1 .. 0): hn the adjoints
 * (in/out), dA their sums of dlt hv a x_{t-1} (out), x0 the states before the chunk. */
INL void brev(const int G, const bwd_bufs *w, int64_t n, const float *B, const float *C, int64_t N,
              const __m512 *x0, const __m512 *A, __m512 *hn, __m512 *dA, float *xs, float *ab)
{
    __m512 h[4], s[4];
#pragma GCC unroll 4
    for (int i = 0; i < G; i++) h[i] = hn[i], s[i] = _mm512_setzero_ps();
    for (int64_t k = n - 1; k >= 0; k--) {
        const float *b = B + k * N, *c = C + k * N;
        float *a = ab + 16 * N * k;
        const float *xp = k > 0 ? xs + 16 * N * (k - 1) : NULL;
        const __m512 gh = _mm512_loadu_ps(w->gh + 16 * k), d = _mm512_loadu_ps(w->dl + 16 * k);
        __m512 hb = _mm512_loadu_ps(w->hb + 16 * k), dd = _mm512_loadu_ps(w->dd + 16 * k);
#pragma GCC unroll 4
        for (int i = 0; i < G; i++) {
            const __m512 av = _mm512_loadu_ps(a + 16 * i);
            const __m512 hv = _mm512_fmadd_ps(gh, _mm512_set1_ps(c[i]), h[i]);
            const __m512 xv = k > 0 ? _mm512_loadu_ps(xp + 16 * i) : x0[i];
            const __m512 wv = _mm512_mul_ps(hv, _mm512_mul_ps(av, xv));
            _mm512_storeu_ps(a + 16 * i, hv);
            s[i] = _mm512_fmadd_ps(d, wv, s[i]);
            dd = _mm512_fmadd_ps(A[i], wv, dd);
            hb = _mm512_fmadd_ps(hv, _mm512_set1_ps(b[i]), hb);
            h[i] = _mm512_mul_ps(av, hv);
        }
        _mm512_storeu_ps(w->hb + 16 * k, hb);
        _mm512_storeu_ps(w->dd + 16 * k, dd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < G; i++) hn[i] = h[i], dA[i] = s[i];
}

/* Lanes to rows like lanes_to_rows16, steps [lo, n) of the 16 only; nothing when dst[0] is
 * NULL. */
static void lanes_out16(__m512 v[16], float *const *dst, int64_t nr, int64_t t, int64_t lo,
                        int64_t n)
{
    const __mmask16 m = (__mmask16)(mmi_lanes16(n) & ~mmi_lanes16(lo));
    if (!dst[0]) return;
    mmi_transpose16_avx512(v);
    for (int64_t j = 0; j < nr; j++) _mm512_mask_storeu_ps(dst[j] + t, m, v[j]);
}

/* One chunk [t0, t0 + n) of the block's backward. */
static void bwd_chunk(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr, int64_t t0,
                      int64_t n, const bwd_bufs *wb, const __m512 *x0, const __m512 *A,
                      const __m512 *A2, const __m512 *arange, __m512 *hn, double *dAl, __m512 *dDb)
{
    /* The rows are transposed in 16-step groups aligned to the rows' start (a chunk need not be
     * a multiple of 16 steps: misaligned groups would read every line twice, and rows L floats
     * apart share an L1 set): wb's buffers hold steps from a0 = t0 rounded down to 16, w's
     * (the same buffers) from t0; steps outside [t0, t0 + n) are read, not written. */
    const int64_t N = r[0].N, off = t0 % 16, a0 = t0 - off, na = off + n;
    const __mmask16 kr = mmi_lanes16(nr);
    const float *src[6][16];
    float *dst[3][16];
    __m512 ds, dD = _mm512_setzero_ps(), db = dD;
    bwd_bufs v = *wb;
    const bwd_bufs *w = &v;
    const float *B = r[0].B + t0 * N, *C = r[0].C + t0 * N;
    float *y;
    int64_t n0 = 0;
    int clamp;
    v.dl += 16 * off, v.ul += 16 * off, v.dub += 16 * off, v.dsp += 16 * off;
    v.gh += 16 * off, v.hb += 16 * off, v.dd += 16 * off;
    y = r[0].z ? v.hb : NULL; /* the pre-gate output, before hb needs the buffer */
    {
        float dsk[16];
        for (int64_t j = 0; j < 16; j++) dsk[j] = r[j < nr ? j : 0].dskip;
        ds = r[0].has_d ? _mm512_loadu_ps(dsk) : _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < 16; j++) {
        const int64_t i = j < nr ? j : 0;
        src[0][j] = r[i].dlt, src[1][j] = r[i].u, src[2][j] = g[i].dout, src[3][j] = r[i].dsp;
        src[4][j] = r[i].z, src[5][j] = r[i].sz;
        dst[0][j] = g[i].du, dst[1][j] = g[i].ddelta, dst[2][j] = g[i].dz;
    }
    for (int64_t k = 0; k < na; k += 16) { /* inputs to lanes */
        const int64_t m = na - k < 16 ? na - k : 16;
        __m512 a[16], b[16], c[16], e[16];
        rows_to_lanes16(src[0], 16, a0 + k, m, a);
        rows_to_lanes16(src[1], 16, a0 + k, m, b);
        rows_to_lanes16(src[2], 16, a0 + k, m, c);
        rows_to_lanes16(src[3], 16, a0 + k, m, e);
        for (int i = 0; i < 16; i++) {
            _mm512_storeu_ps(wb->dl + 16 * (k + i), a[i]);
            _mm512_storeu_ps(wb->ul + 16 * (k + i), b[i]);
            _mm512_storeu_ps(wb->dub + 16 * (k + i), _mm512_mul_ps(a[i], b[i]));
            _mm512_storeu_ps(wb->gh + 16 * (k + i), _mm512_maskz_mov_ps(kr, c[i]));
            _mm512_storeu_ps(wb->dsp + 16 * (k + i), e[i]);
            _mm512_storeu_ps(wb->hb + 16 * (k + i), _mm512_setzero_ps());
            _mm512_storeu_ps(wb->dd + 16 * (k + i), _mm512_setzero_ps());
        }
    }
    clamp = !tile_in_range16(w->dl, n, arange[0], arange[1]);
    /* the chunk's states at every 16th step (xb) and the pre-gate output */
    for (n0 = 0; n0 + 4 <= N; n0 += 4)
        brec(4, 0, w, y, n, B + n0, C + n0, N, x0 + n0, A2 + n0, w->xb + 16 * n0, NULL, clamp);
    for (; n0 < N; n0++)
        brec(1, 0, w, y, n, B + n0, C + n0, N, x0 + n0, A2 + n0, w->xb + 16 * n0, NULL, clamp);
    if (r[0].z)
        for (int64_t k = 0; k < na; k += 16) { /* the gate: dz and g-hat = dout z sigmoid(z) */
            const int64_t m = na - k < 16 ? na - k : 16;
            float *yb = wb->hb;
            __m512 zv[16], sv[16], dz[16];
            rows_to_lanes16(src[4], 16, a0 + k, m, zv);
            rows_to_lanes16(src[5], 16, a0 + k, m, sv);
            for (int i = 0; i < 16; i++) {
                const __m512 gy = _mm512_loadu_ps(wb->gh + 16 * (k + i)), s = sv[i];
                const __m512 o = _mm512_fmadd_ps(ds, _mm512_loadu_ps(wb->ul + 16 * (k + i)),
                                                 _mm512_loadu_ps(yb + 16 * (k + i)));
                const __m512 one = _mm512_set1_ps(1.0f);
                dz[i] = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(gy, o), s),
                                      _mm512_fmadd_ps(zv[i], _mm512_sub_ps(one, s), one));
                _mm512_storeu_ps(wb->gh + 16 * (k + i), _mm512_mul_ps(gy, _mm512_mul_ps(zv[i], s)));
                _mm512_storeu_ps(yb + 16 * (k + i), _mm512_setzero_ps()); /* hb from here */
            }
            lanes_out16(dz, dst[2], nr, a0 + k, k ? 0 : off, m);
        }
    for (int64_t k0 = (n - 1) / 16 * 16; k0 >= 0; k0 -= 16) { /* 16-step tiles, backwards */
        const int64_t m = n - k0 < 16 ? n - k0 : 16;
        const float *Bk = B + k0 * N, *Ck = C + k0 * N;
        bwd_bufs q = v;
        __m512 xs0[BLK_N], sa[4];
        q.dl += 16 * k0, q.dub += 16 * k0, q.gh += 16 * k0, q.hb += 16 * k0, q.dd += 16 * k0;
        for (int64_t i = 0; i < N; i++) xs0[i] = _mm512_loadu_ps(w->xb + 16 * (N * (k0 / 16) + i));
        /* the tile's states and exponentials (16 N vectors each, in L1) */
        for (n0 = 0; n0 + 4 <= N; n0 += 4)
            brec(4, 1, &q, NULL, m, Bk + n0, Ck + n0, N, xs0 + n0, A2 + n0, w->xs + 16 * n0,
                 w->ab + 16 * n0, clamp);
        for (; n0 < N; n0++)
            brec(1, 1, &q, NULL, m, Bk + n0, Ck + n0, N, xs0 + n0, A2 + n0, w->xs + 16 * n0,
                 w->ab + 16 * n0, clamp);
        /* the reverse scan */
        for (n0 = 0; n0 + 4 <= N; n0 += 4) {
            brev(4, &q, m, Bk + n0, Ck + n0, N, xs0 + n0, A + n0, hn + n0, sa, w->xs + 16 * n0,
                 w->ab + 16 * n0);
            for (int i = 0; i < 4; i++) acc_pd(dAl + 16 * (n0 + i), sa[i], 0xffff);
        }
        for (; n0 < N; n0++) {
            brev(1, &q, m, Bk + n0, Ck + n0, N, xs0 + n0, A + n0, hn + n0, sa, w->xs + 16 * n0,
                 w->ab + 16 * n0);
            acc_pd(dAl + 16 * n0, sa[0], 0xffff);
        }
        for (int64_t k = 0; k < m; k++) { /* dB and dC: the sums over the lanes */
            const int64_t t = t0 + k0 + k;
            const __m512 gh = _mm512_loadu_ps(q.gh + 16 * k), dub = _mm512_loadu_ps(q.dub + 16 * k);
            for (n0 = 0; n0 < N; n0 += 16) {
                const int64_t mc = N - n0 < 16 ? N - n0 : 16;
                const float *xs = w->xs + 16 * (k * N + n0), *hv = w->ab + 16 * (k * N + n0);
                __m512 p[16];
                if (g[0].dC) {
                    for (int i = 0; i < 16; i++)
                        p[i] = i < mc ? _mm512_maskz_mul_ps(kr, gh, _mm512_loadu_ps(xs + 16 * i))
                                      : _mm512_setzero_ps();
                    acc_pd(g[0].dC + t * N + n0, tree16(p), mmi_lanes16(mc));
                }
                if (g[0].dB) {
                    for (int i = 0; i < 16; i++)
                        p[i] = i < mc ? _mm512_maskz_mul_ps(kr, _mm512_loadu_ps(hv + 16 * i), dub)
                                      : _mm512_setzero_ps();
                    acc_pd(g[0].dB + t * N + n0, tree16(p), mmi_lanes16(mc));
                }
            }
        }
    }
    for (int64_t k = 0; k < na; k += 16) { /* du, ddelta, dD, dbias */
        const int64_t m = na - k < 16 ? na - k : 16, lo = k ? 0 : off;
        __m512 du[16], dl[16];
        for (int i = 0; i < 16; i++) {
            const int64_t q = 16 * (k + i);
            const __m512 gh = _mm512_loadu_ps(wb->gh + q), hb = _mm512_loadu_ps(wb->hb + q);
            const __m512 u = _mm512_loadu_ps(wb->ul + q);
            du[i] = _mm512_fmadd_ps(_mm512_loadu_ps(wb->dl + q), hb, _mm512_mul_ps(ds, gh));
            dl[i] = _mm512_mul_ps(_mm512_fmadd_ps(u, hb, _mm512_loadu_ps(wb->dd + q)),
                                  _mm512_loadu_ps(wb->dsp + q));
            if (i >= lo && i < m) dD = _mm512_fmadd_ps(gh, u, dD), db = _mm512_add_ps(db, dl[i]);
        }
        lanes_out16(du, dst[0], nr, a0 + k, lo, m);
        lanes_out16(dl, dst[1], nr, a0 + k, lo, m);
    }
    dDb[0] = _mm512_add_ps(dDb[0], dD), dDb[1] = _mm512_add_ps(dDb[1], db);
}

int mmi_ssm_sel_bwd_block_avx512(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr)
{
    const int64_t N = r[0].N, L = r[0].L, T = r[0].chunk, nck = (L + T - 1) / T;
    const int64_t T16 = (T + 30) / 16 * 16; /* whole 16-step groups from t0 rounded down */
    __m512 A[BLK_N], A2[BLK_N], hn[BLK_N], x0[BLK_N], arange[2], dDb[2];
    double dAl[BLK_N * 16], dDl[16], dbl[16];
    bwd_bufs w;
    if (N < 1 || N > BLK_N || nr < 0 || nr > 16 || !r[0].b_var || !r[0].c_var) return 0;
    if (nr == 0) return 1; /* the shape query */
    w.xs = g[0].work, w.ab = w.xs + 16 * 16 * N, w.xb = w.ab + 16 * 16 * N;
    w.dl = w.xb + 16 * ((T + 15) / 16 + 1) * N;
    w.ul = w.dl + 16 * T16, w.dub = w.ul + 16 * T16, w.dsp = w.dub + 16 * T16;
    w.gh = w.dsp + 16 * T16, w.hb = w.gh + 16 * T16, w.dd = w.hb + 16 * T16; /* 7 of the 8 */
    arange[0] = _mm512_set1_ps(INFINITY), arange[1] = _mm512_set1_ps(-INFINITY);
    for (int64_t n = 0; n < N; n++) {
        float a[16];
        for (int64_t j = 0; j < 16; j++) a[j] = r[j < nr ? j : 0].A[n];
        A[n] = _mm512_loadu_ps(a);
        A2[n] = _mm512_mul_ps(A[n], _mm512_set1_ps(1.44269504088896341f));
        arange[0] = _mm512_min_ps(arange[0], A2[n]), arange[1] = _mm512_max_ps(arange[1], A2[n]);
        hn[n] = _mm512_setzero_ps();
    }
    memset(dAl, 0, sizeof(double) * (size_t)(16 * N));
    memset(dDl, 0, sizeof dDl), memset(dbl, 0, sizeof dbl);
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        const int64_t t0 = ck * T, t1 = t0 + T < L ? t0 + T : L;
        float *c[16];
        for (int64_t j = 0; j < 16; j++) c[j] = r[j < nr ? j : 0].ckpt + ck * N;
        state_xfer16(x0, N, c, nr, 0);
        dDb[0] = dDb[1] = _mm512_setzero_ps();
        bwd_chunk(r, g, nr, t0, t1 - t0, &w, x0, A, A2, arange, hn, dAl, dDb);
        acc_pd(dDl, dDb[0], 0xffff), acc_pd(dbl, dDb[1], 0xffff);
    }
    for (int64_t j = 0; j < nr; j++) {
        for (int64_t n = 0; n < N; n++) g[j].dA[n] += dAl[16 * n + j];
        if (g[j].dD) *g[j].dD += dDl[j];
        if (g[j].dbias) *g[j].dbias += dbl[j];
    }
    return 1;
}

static const mmi_ssm_isa k_avx512 = {
    mmi_ssm_sel_prep_avx512,      mmi_ssm_sel_fwd_avx512,       mmi_ssm_sel_bwd_avx512,
    mmi_ssm_sel_step_rows_avx512, mmi_ssm_sel_fwd_block_avx512, 16,
    mmi_ssm_lru_step_rows_avx512, /* lru_scan_avx512.c */
    mmi_ssm_sel_bwd_block_avx512,
};

const mmi_ssm_isa *mmi_ssm_isa_avx512(void) { return &k_avx512; }

#else /* no AVX-512 in this build: the dispatch keeps the AVX2 table */
const mmi_ssm_isa *mmi_ssm_isa_avx512(void) { return NULL; }
#endif
