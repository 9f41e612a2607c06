/* SPDX-License-Identifier: MIT */
/* selective_scan_avx2.c — AVX2/FMA bodies of the selective scan (compiled with -mavx2 -mfma;
 * the dispatch table hands them out only on CPUs that run both). The state axis N
 * is vectorised 8 floats at a time (N % 8 == 0, N <= 256); time stays sequential as in the
 * reference. exp uses a Cephes-style polynomial (<= 2 ulp against expf), so results differ
 * from the portable path by rounding only. Sums over time are kept in float64 as in the
 * portable path. */
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

/* Natural log for x > 0 (Cephes logf: mantissa in [sqrt(1/2), sqrt 2), degree-8 polynomial). */
static inline __m256 log256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256i ex = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    __m256 e, mask, tmp, z, y;
    x = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(~0x7f800000)));
    x = _mm256_or_ps(x, _mm256_set1_ps(0.5f));
    e = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ex, _mm256_set1_epi32(0x7f))), one);
    mask = _mm256_cmp_ps(x, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    tmp = _mm256_and_ps(x, mask);
    x = _mm256_sub_ps(x, one);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, mask));
    x = _mm256_add_ps(x, tmp);
    z = _mm256_mul_ps(x, x);
    y = _mm256_set1_ps(7.0376836292e-2f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.1514610310e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.1676998740e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.2420140846e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.4249322787e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.6668057665e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(2.0000714765e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-2.4999993993e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(3.3333331174e-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, x), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    x = _mm256_add_ps(x, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), x);
}

/* softplus(x) = log1p(e^x) for x <= 20, else x; log1p through Goldberg's u = 1 + e,
 * log(u) e / (u - 1), exact where u rounds to 1. Also its derivative sigmoid(x) (1 above 20). */
static inline __m256 softplus256(__m256 x, __m256 *deriv)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = mmi_exp256(x), u = _mm256_add_ps(one, e), um1 = _mm256_sub_ps(u, one);
    __m256 l = _mm256_div_ps(_mm256_mul_ps(log256(u), e), um1);
    __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ);
    l = _mm256_blendv_ps(l, e, _mm256_cmp_ps(um1, _mm256_setzero_ps(), _CMP_EQ_OQ));
    *deriv = _mm256_blendv_ps(_mm256_div_ps(e, u), one, big);
    return _mm256_blendv_ps(l, x, big);
}

int mmi_ssm_sel_prep_avx2(int64_t n, const float *delta, float bias, int softplus, const float *z,
                          float *dlt, float *dsp, float *gz, float *sz)
{
    const __m256 bv = _mm256_set1_ps(bias), one = _mm256_set1_ps(1.0f);
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 raw = _mm256_add_ps(_mm256_loadu_ps(delta + t), bv), d = raw, der = one;
        if (softplus) d = softplus256(raw, &der);
        _mm256_storeu_ps(dlt + t, d);
        if (dsp) _mm256_storeu_ps(dsp + t, der);
        if (z) {
            __m256 zv = _mm256_loadu_ps(z + t);
            __m256 ez = mmi_exp256(_mm256_sub_ps(_mm256_setzero_ps(), zv));
            __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, ez));
            if (gz) _mm256_storeu_ps(gz + t, _mm256_mul_ps(zv, s));
            if (sz) _mm256_storeu_ps(sz + t, s);
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

/* Chunk recomputation: abar and states of [t0, t1) from x0. */
static void recompute(const mmi_sel_row *r, int64_t t0, int64_t t1, const float *x0, float *abar,
                      float *xs)
{
    const int64_t N = r->N, V = N / 8;
    for (int64_t t = t0; t < t1; t++) {
        const float *b = r->b_var ? r->B + t * N : r->B, *xp = t > t0 ? xs + (t - t0 - 1) * N : x0;
        float d = r->dlt[t];
        __m256 dv = _mm256_set1_ps(d), duv = _mm256_set1_ps(d * r->u[t]);
        for (int64_t v = 0; v < V; v++) {
            __m256 a = mmi_exp256(_mm256_mul_ps(dv, _mm256_loadu_ps(r->A + 8 * v)));
            __m256 xn = _mm256_fmadd_ps(a, _mm256_loadu_ps(xp + 8 * v),
                                        _mm256_mul_ps(_mm256_loadu_ps(b + 8 * v), duv));
            _mm256_storeu_ps(abar + (t - t0) * N + 8 * v, a);
            _mm256_storeu_ps(xs + (t - t0) * N + 8 * v, xn);
        }
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

static float gate(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t t, const float *x,
                  const float *c)
{
    float gy = g->dout[t];
    if (r->z) {
        __m256 acc = _mm256_setzero_ps();
        float o, z = r->z[t], s = r->sz[t];
        for (int64_t v = 0; v < r->N / 8; v++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(c + 8 * v), acc);
        o = hsum(acc) + (r->has_d ? r->dskip * r->u[t] : 0.0f);
        if (g->dz) g->dz[t] = gy * o * s * (1.0f + z * (1.0f - s));
        gy *= z * s;
    }
    return gy;
}

int mmi_ssm_sel_bwd_avx2(const mmi_sel_row *r, const mmi_sel_grad *g)
{
    const int64_t N = r->N, V = N / 8, T = r->chunk, nck = (r->L + T - 1) / T;
    float *abar = g->work, *xs = abar + T * N;
    __m256 hn[MAXV], A[MAXV];
    if (N % 8 || V > MAXV) return 0;
    for (int64_t v = 0; v < V; v++)
        hn[v] = _mm256_setzero_ps(), A[v] = _mm256_loadu_ps(r->A + 8 * v);
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        int64_t t0 = ck * T, t1 = t0 + T < r->L ? t0 + T : r->L;
        const float *x0 = r->ckpt + ck * N;
        recompute(r, t0, t1, x0, abar, xs);
        for (int64_t t = t1 - 1; t >= t0; t--) {
            const float *b = r->b_var ? r->B + t * N : r->B, *c = r->c_var ? r->C + t * N : r->C;
            const float *a = abar + (t - t0) * N, *x = xs + (t - t0) * N;
            const float *xp = t > t0 ? x - N : x0;
            double *dBt = r->b_var ? g->dB + t * N : g->dB, *dCt = r->c_var ? g->dC + t * N : g->dC;
            float d = r->dlt[t], u = r->u[t], gh = gate(r, g, t, x, c), shb, sdd;
            __m256 ghv = _mm256_set1_ps(gh), uv = _mm256_set1_ps(u), dv = _mm256_set1_ps(d);
            __m256 dvu = _mm256_set1_ps(d * u), hb = _mm256_setzero_ps(), dd = _mm256_setzero_ps();
            for (int64_t v = 0; v < V; v++) {
                __m256 cv = _mm256_loadu_ps(c + 8 * v), bv = _mm256_loadu_ps(b + 8 * v);
                __m256 av = _mm256_loadu_ps(a + 8 * v), hv = _mm256_fmadd_ps(ghv, cv, hn[v]);
                __m256 ax = _mm256_mul_ps(av, _mm256_loadu_ps(xp + 8 * v));
                if (dCt) acc_pd(dCt + 8 * v, _mm256_mul_ps(ghv, _mm256_loadu_ps(x + 8 * v)));
                if (dBt) acc_pd(dBt + 8 * v, _mm256_mul_ps(hv, dvu));
                hb = _mm256_fmadd_ps(hv, bv, hb);
                dd = _mm256_fmadd_ps(hv, _mm256_fmadd_ps(bv, uv, _mm256_mul_ps(A[v], ax)), dd);
                acc_pd(g->dA + 8 * v, _mm256_mul_ps(_mm256_mul_ps(hv, dv), ax));
                hn[v] = _mm256_mul_ps(av, hv);
            }
            shb = hsum(hb), sdd = hsum(dd);
            if (g->du) g->du[t] = d * shb + (r->has_d ? r->dskip * gh : 0.0f);
            if (g->dD) *g->dD += (double)(gh * u);
            sdd *= r->dsp[t];
            if (g->ddelta) g->ddelta[t] = sdd;
            if (g->dbias) *g->dbias += (double)sdd;
        }
    }
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

static const mmi_ssm_isa k_avx2 = {
    mmi_ssm_sel_prep_avx2,
    mmi_ssm_sel_fwd_avx2,
    mmi_ssm_sel_bwd_avx2,
    mmi_ssm_sel_step_rows_avx2,
};

const mmi_ssm_isa *mmi_ssm_isa_avx2(void) { return &k_avx2; }

#else /* no AVX2/FMA in this build: the portable bodies run */
const mmi_ssm_isa *mmi_ssm_isa_avx2(void) { return NULL; }
#endif
