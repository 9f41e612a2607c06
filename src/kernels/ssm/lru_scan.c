/* SPDX-License-Identifier: MIT */
/* lru_scan.c — the Linear Recurrent Unit's complex diagonal recurrence on one batch row
 * (minimal-LRU, docs/SSM.md §MM_SSM_LRU): h_t = lambda h_{t-1} + B_norm u_t, y_t = Re(C h_t) + D u_t,
 * and its reverse-time adjoint with PyTorch's complex-gradient convention (G = dL/dRe +
 * i dL/dIm): G_h_t = conj(lambda) G_h_{t+1} + C^H dy_t. Gradient sums over time are float64. */
#include "mmi_ssm_kernels.h"

#include <string.h>

/* A step computes four states (and four outputs) at a time: each keeps its own sum in the
 * order of the one-at-a-time loop (bit-equal results), but four chains of dependent additions
 * overlap instead of one (a policy acts through one such step per agent and frame). */

/* h[n] = lambda_n hp[n] + B_norm[n] u, given the sum B_norm[n] u as (br, bi). */
static void lru_put_state(const mmi_lru_row *r, const float *hp, float *hv, int64_t n, float br,
                          float bi)
{
    float lr = r->lam[2 * n], li = r->lam[2 * n + 1];
    float pr = hp ? hp[2 * n] : 0.0f, pi = hp ? hp[2 * n + 1] : 0.0f;
    hv[2 * n] = lr * pr - li * pi + br;
    hv[2 * n + 1] = lr * pi + li * pr + bi;
}

static void lru_states(const mmi_lru_row *r, const float *u, const float *hp, float *hv)
{
    const int64_t H = r->H, N = r->N;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) {
        const float *b0 = r->bn + n * H * 2, *b1 = b0 + 2 * H, *b2 = b1 + 2 * H, *b3 = b2 + 2 * H;
        float r0 = 0, i0 = 0, r1 = 0, i1 = 0, r2 = 0, i2 = 0, r3 = 0, i3 = 0;
        for (int64_t k = 0; k < H; k++) {
            float uk = u[k];
            r0 += b0[2 * k] * uk, i0 += b0[2 * k + 1] * uk;
            r1 += b1[2 * k] * uk, i1 += b1[2 * k + 1] * uk;
            r2 += b2[2 * k] * uk, i2 += b2[2 * k + 1] * uk;
            r3 += b3[2 * k] * uk, i3 += b3[2 * k + 1] * uk;
        }
        lru_put_state(r, hp, hv, n, r0, i0), lru_put_state(r, hp, hv, n + 1, r1, i1);
        lru_put_state(r, hp, hv, n + 2, r2, i2), lru_put_state(r, hp, hv, n + 3, r3, i3);
    }
    for (; n < N; n++) {
        const float *b = r->bn + n * H * 2;
        float br = 0.0f, bi = 0.0f;
        for (int64_t k = 0; k < H; k++) br += b[2 * k] * u[k], bi += b[2 * k + 1] * u[k];
        lru_put_state(r, hp, hv, n, br, bi);
    }
}

/* y[k] = D[k] u[k] + sum_n Re(C[k,n] h[n]), the sum in n order for every k. */
static void lru_outputs(const mmi_lru_row *r, const float *u, const float *hv, float *y)
{
    const int64_t H = r->H, N = r->N;
    int64_t k = 0;
    for (; k + 4 <= H; k += 4) {
        const float *c0 = r->c + k * 2 * N, *c1 = c0 + 2 * N, *c2 = c1 + 2 * N, *c3 = c2 + 2 * N;
        float v0 = r->d ? r->d[k] * u[k] : 0.0f, v1 = r->d ? r->d[k + 1] * u[k + 1] : 0.0f;
        float v2 = r->d ? r->d[k + 2] * u[k + 2] : 0.0f, v3 = r->d ? r->d[k + 3] * u[k + 3] : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            float hr = hv[2 * n], hi = hv[2 * n + 1];
            v0 += c0[2 * n] * hr - c0[2 * n + 1] * hi;
            v1 += c1[2 * n] * hr - c1[2 * n + 1] * hi;
            v2 += c2[2 * n] * hr - c2[2 * n + 1] * hi;
            v3 += c3[2 * n] * hr - c3[2 * n + 1] * hi;
        }
        y[k] = v0, y[k + 1] = v1, y[k + 2] = v2, y[k + 3] = v3;
    }
    for (; k < H; k++) {
        float v = r->d ? r->d[k] * u[k] : 0.0f;
        const float *ck = r->c + k * 2 * N;
        for (int64_t n = 0; n < N; n++) v += ck[2 * n] * hv[2 * n] - ck[2 * n + 1] * hv[2 * n + 1];
        y[k] = v;
    }
}

void mmi_ssm_lru_fwd(const mmi_lru_row *r)
{
    MMI_ASSERT(r && r->L >= 0 && r->H > 0 && r->N > 0);
    MMI_ASSERT(r->lam && r->bn && r->c && r->u && r->y && r->hs);
    const int64_t H = r->H, N = r->N;
    for (int64_t t = 0; t < r->L; t++) {
        const float *u = r->u + t * H, *hp = t ? r->hs + (t - 1) * 2 * N : r->h0;
        float *hv = r->hs + t * 2 * N;
        lru_states(r, u, hp, hv);
        lru_outputs(r, u, hv, r->y + t * H);
    }
}

/* ---- transposed operands (streaming) -------------------------------------------------------- */

void mmi_ssm_lru_transpose(const mmi_lru_row *r, float *bt, float *ct)
{
    const int64_t H = r->H, N = r->N;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < H; k++) {
            bt[k * 2 * N + 2 * n] = r->bn[(n * H + k) * 2];
            bt[k * 2 * N + 2 * n + 1] = r->bn[(n * H + k) * 2 + 1];
            ct[n * 2 * H + k] = r->c[(k * N + n) * 2];
            ct[n * 2 * H + H + k] = r->c[(k * N + n) * 2 + 1];
        }
}

/* Plain C that -O2 vectorizes: the loops below keep four-lane groups of independent sums in
 * registers across their inner loop (sixteen lanes as four groups, so that four chains of
 * dependent additions overlap; GCC keeps one array of sixteen in memory, four arrays of four in
 * registers), and every lane adds its terms in the order of lru_states / lru_outputs. */

/* acc[j] = sum_k bt[k][j] u[k] for j < m (bt rows m wide), each sum in k order. */
static void lru_bsum(int64_t H, int64_t m, const float *restrict bt, const float *restrict u,
                     float *restrict acc)
{
    int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        float a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0}, c[4] = {0, 0, 0, 0}, e[4] = {0, 0, 0, 0};
        for (int64_t k = 0; k < H; k++) {
            const float *w = bt + k * m + j;
            float uk = u[k];
            for (int q = 0; q < 4; q++) a[q] += w[q] * uk;
            for (int q = 0; q < 4; q++) b[q] += w[4 + q] * uk;
            for (int q = 0; q < 4; q++) c[q] += w[8 + q] * uk;
            for (int q = 0; q < 4; q++) e[q] += w[12 + q] * uk;
        }
        for (int q = 0; q < 4; q++)
            acc[j + q] = a[q], acc[j + 4 + q] = b[q], acc[j + 8 + q] = c[q], acc[j + 12 + q] = e[q];
    }
    for (; j < m; j++) {
        float v = 0.0f;
        for (int64_t k = 0; k < H; k++) v += bt[k * m + j] * u[k];
        acc[j] = v;
    }
}

/* y[k] = D[k] u[k] + sum_n (Re C[k][n] hr_n - Im C[k][n] hi_n), each sum in n order, the term
 * formed before it is added. */
static void lru_csum(int64_t H, int64_t N, const float *restrict ct, const float *restrict d,
                     const float *restrict u, const float *restrict hv, float *restrict y)
{
    int64_t k = 0;
    for (; k + 8 <= H; k += 8) {
        float a[4], c[4];
        for (int q = 0; q < 4; q++) {
            a[q] = d ? d[k + q] * u[k + q] : 0.0f;
            c[q] = d ? d[k + 4 + q] * u[k + 4 + q] : 0.0f;
        }
        for (int64_t n = 0; n < N; n++) {
            const float *cr = ct + n * 2 * H + k, *ci = cr + H;
            float hr = hv[2 * n], hi = hv[2 * n + 1];
            for (int q = 0; q < 4; q++) a[q] += cr[q] * hr - ci[q] * hi;
            for (int q = 0; q < 4; q++) c[q] += cr[4 + q] * hr - ci[4 + q] * hi;
        }
        for (int q = 0; q < 4; q++) y[k + q] = a[q], y[k + 4 + q] = c[q];
    }
    for (; k < H; k++) {
        float v = d ? d[k] * u[k] : 0.0f;
        for (int64_t n = 0; n < N; n++)
            v += ct[n * 2 * H + k] * hv[2 * n] - ct[n * 2 * H + H + k] * hv[2 * n + 1];
        y[k] = v;
    }
}

/* hv = lambda hp + acc (hp NULL: a zero state, with the same operations as lru_put_state). */
static void lru_carry(int64_t N, const float *restrict lam, const float *restrict hp,
                      const float *restrict acc, float *restrict hv)
{
    static const float zero[2] = {0.0f, 0.0f};
    for (int64_t n = 0; n < N; n++) {
        const float *p = hp ? hp + 2 * n : zero;
        float lr = lam[2 * n], li = lam[2 * n + 1];
        hv[2 * n] = lr * p[0] - li * p[1] + acc[2 * n];
        hv[2 * n + 1] = lr * p[1] + li * p[0] + acc[2 * n + 1];
    }
}

/* Step by step through mmi_ssm_lru_step_rows (one row), so that the training forward runs the
 * body acting runs on the dispatched set (the AVX2 body's FMAs round differently from the
 * portable loops): a segment and the same steps acted one at a time are bit-equal on every
 * set. */
void mmi_ssm_lru_fwd_t(const mmi_lru_row *r, const mmi_lru_t *t)
{
    MMI_ASSERT(r && t && r->L >= 0 && r->H > 0 && r->N > 0);
    MMI_ASSERT(r->lam && t->bt && t->ct && t->acc && r->u && r->y && r->hs);
    const int64_t H = r->H, N = r->N;
    const int64_t Hs = t->us ? t->Hs : H;
    mmi_lru_steps st;
    memset(&st, 0, sizeof st);
    st.n = 1, st.H = H, st.N = N, st.lam = r->lam, st.bt = t->bt, st.ct = t->ct, st.d = r->d;
    st.acc = t->acc, st.Hs = Hs;
    for (int64_t s = 0; s < r->L; s++) {
        st.u = r->u + s * H, st.us = t->us ? t->us + s * Hs : NULL;
        st.h0 = s ? r->hs + (s - 1) * 2 * N : r->h0;
        st.hs = r->hs + s * 2 * N, st.y = r->y + s * H;
        mmi_ssm_lru_step_rows(&st);
    }
}

void mmi_ssm_lru_step_rows(const mmi_lru_steps *s)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(s && s->n >= 0 && s->H > 0 && s->N > 0);
    MMI_ASSERT(s->lam && s->bt && s->ct && s->acc && s->u && s->hs && s->y);
    if (v && v->lru_step_rows && v->lru_step_rows(s)) return;
    const int64_t H = s->H, N2 = 2 * s->N, Hs = s->us ? s->Hs : H;
    for (int64_t i = 0; i < s->n; i++) {
        const float *u = s->u + i * H;
        float *hv = s->hs + i * N2;
        lru_bsum(Hs, N2, s->bt, s->us ? s->us + i * Hs : u, s->acc);
        lru_carry(s->N, s->lam, s->h0 ? s->h0 + i * N2 : NULL, s->acc, hv);
        lru_csum(H, s->N, s->ct, s->d, u, hv, s->y + i * H);
    }
}

void mmi_ssm_lru_bwd(const mmi_lru_row *r, const mmi_lru_grad *g)
{
    MMI_ASSERT(r && g && r->L >= 0 && r->H > 0 && r->N > 0);
    MMI_ASSERT(r->lam && r->bn && r->c && r->u && r->hs && g->gh);
    const int64_t H = r->H, N = r->N;
    double *gh = g->gh;
    memset(gh, 0, (size_t)(2 * N) * sizeof *gh);
    for (int64_t t = r->L - 1; t >= 0; t--) {
        const float *u = r->u + t * H, *dy = g->dy + t * H, *hv = r->hs + t * 2 * N;
        const float *hp = t ? hv - 2 * N : r->h0;
        for (int64_t n = 0; n < N; n++) {
            /* carry: conj(lambda) G_{t+1}, then + sum_k conj(C[k,n]) dy_k */
            double lr = r->lam[2 * n], li = r->lam[2 * n + 1], gr = gh[2 * n], gi = gh[2 * n + 1];
            double nr = lr * gr + li * gi, ni = lr * gi - li * gr;
            for (int64_t k = 0; k < H; k++) {
                nr += (double)r->c[(k * N + n) * 2] * dy[k];
                ni -= (double)r->c[(k * N + n) * 2 + 1] * dy[k];
            }
            gh[2 * n] = nr, gh[2 * n + 1] = ni;
            if (hp) { /* G_lambda += G_h conj(h_{t-1}) */
                g->glam[2 * n] += nr * hp[2 * n] + ni * hp[2 * n + 1];
                g->glam[2 * n + 1] += ni * hp[2 * n] - nr * hp[2 * n + 1];
            }
            for (int64_t k = 0; k < H; k++) {
                g->gbn[(n * H + k) * 2] += nr * u[k];
                g->gbn[(n * H + k) * 2 + 1] += ni * u[k];
            }
        }
        for (int64_t k = 0; k < H; k++) {
            double v = r->d ? (double)r->d[k] * dy[k] : 0.0;
            for (int64_t n = 0; n < N; n++) {
                /* du = Re(conj(Bn) G_h); G_C += dy conj(h) */
                v +=
                    r->bn[(n * H + k) * 2] * gh[2 * n] + r->bn[(n * H + k) * 2 + 1] * gh[2 * n + 1];
                g->gc[(k * N + n) * 2] += (double)dy[k] * hv[2 * n];
                g->gc[(k * N + n) * 2 + 1] -= (double)dy[k] * hv[2 * n + 1];
            }
            if (g->du) g->du[t * H + k] = (float)v;
            if (g->dd) g->dd[k] += (double)dy[k] * u[k];
        }
    }
}
