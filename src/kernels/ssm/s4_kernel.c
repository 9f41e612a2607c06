/* SPDX-License-Identifier: MIT */
/* s4_kernel.c — the S4 (DPLR) convolution kernel of one channel and its gradients (docs/SSM.md
 * §MM_SSM_S4, state-spaces/s4 SSMKernelDPLR with bilinear discretisation, rank 1). With f = 1 + w
 * and q = 2 (1 - w), the reference's r_ab = sum v dt / (z - dt lambda) (z = q / f) times its
 * 2/f factor is 2 s_ab with s_ab = sum_n [v_n dt / d_n + conj(v_n) dt / d'_n], d_n = q -
 * dt lambda_n f, d'_n = q - dt conj(lambda_n) f (the conjugate halves), so
 *   K^ = 2 (s_CB - f s_CP s_QB / (1 + f s_QP)),   Q = conj(P),
 * which stays finite at w = -1 where z is infinite. Gradients follow PyTorch's complex
 * convention (G = dL/dRe + i dL/dIm), accumulated in float64 over the L/2 + 1 frequencies. */
#include "mmi_cplx.h"
#include "mmi_ssm_kernels.h"

#include <string.h>

#define TWO_PI 6.28318530717958647692

typedef struct pair_v {
    mmi_cplx cb, cp, qb, qp;
} pair_v;

static mmi_cplx ld(const float *x, int64_t n) { return mmi_c(x[2 * n], x[2 * n + 1]); }

static pair_v products(const mmi_s4_ch *ch, int64_t n)
{
    pair_v v;
    mmi_cplx c = ld(ch->c, n), p = ld(ch->p, n), b = ld(ch->b, n), q = mmi_cconj(p);
    v.cb = mmi_cmul(c, b), v.cp = mmi_cmul(c, p), v.qb = mmi_cmul(q, b), v.qp = mmi_cmul(q, p);
    return v;
}

static mmi_cplx omega(int64_t k, int64_t L)
{
    return mmi_cexp(0.0, -TWO_PI * (double)k / (double)L);
}

/* The four Cauchy sums at one frequency. */
static void cauchy(const mmi_s4_ch *ch, mmi_cplx f, mmi_cplx q, mmi_cplx s[4])
{
    s[0] = s[1] = s[2] = s[3] = mmi_c(0, 0);
    for (int64_t n = 0; n < ch->M; n++) {
        mmi_cplx lam = ld(ch->lam, n), dn, dc, a, b;
        pair_v v = products(ch, n);
        mmi_cplx vs[4] = {v.cb, v.cp, v.qb, v.qp};
        dn = mmi_csub(q, mmi_cscale(mmi_cmul(lam, f), ch->dt));
        dc = mmi_csub(q, mmi_cscale(mmi_cmul(mmi_cconj(lam), f), ch->dt));
        a = mmi_cdiv(mmi_c(ch->dt, 0), dn);
        b = mmi_cdiv(mmi_c(ch->dt, 0), dc);
        for (int i = 0; i < 4; i++)
            s[i] = mmi_cadd(s[i], mmi_cadd(mmi_cmul(vs[i], a), mmi_cmul(mmi_cconj(vs[i]), b)));
    }
}

/* Inverse DFT of length L of x (2L doubles, full Hermitian spectrum). */
static void idft(int64_t L, const mmi_s4_ws *ws)
{
    if (mmi_fft_size(L) == L)
        mmi_fft(L, ws->x, ws->tw, ws->tw_n, 1);
    else
        mmi_dft_any(L, ws->x, 1, ws->tw, ws->tw_n, ws->w1, ws->w2, ws->chirp);
}

void mmi_s4_kernel_row(const mmi_s4_ch *ch, int64_t L, float *k, const mmi_s4_ws *ws)
{
    MMI_ASSERT(ch && ch->M > 0 && L > 0 && k && ws && ws->tw && ws->x);
    double *x = ws->x;
    for (int64_t j = 0; j <= L / 2; j++) {
        mmi_cplx w = omega(j, L), f = mmi_c(1 + w.re, w.im), q = mmi_c(2 - 2 * w.re, -2 * w.im);
        mmi_cplx s[4], kh;
        cauchy(ch, f, q, s);
        kh = mmi_cdiv(mmi_cmul(f, mmi_cmul(s[1], s[2])), mmi_cadd(mmi_c(1, 0), mmi_cmul(f, s[3])));
        kh = mmi_cscale(mmi_csub(s[0], kh), 2.0);
        /* irfft ignores the imaginary parts of the DC and Nyquist bins */
        if (j == 0 || 2 * j == L) kh.im = 0.0;
        x[2 * j] = kh.re, x[2 * j + 1] = kh.im;
        if (j > 0 && 2 * j != L) x[2 * (L - j)] = kh.re, x[2 * (L - j) + 1] = -kh.im;
    }
    idft(L, ws);
    for (int64_t l = 0; l < L; l++) k[l] = (float)x[2 * l];
}

/* Accumulates the gradients of one mode's two Cauchy terms given G_s (4 sums). */
static void mode_grad(const mmi_s4_ch *ch, int64_t n, mmi_cplx f, mmi_cplx q, const mmi_cplx gs[4],
                      double *acc, double *ddt)
{
    mmi_cplx lam = ld(ch->lam, n), dn, dc, a, b, a2, b2;
    pair_v v = products(ch, n);
    mmi_cplx vs[4] = {v.cb, v.cp, v.qb, v.qp}, glam = mmi_c(0, 0);
    double dt = ch->dt;
    dn = mmi_csub(q, mmi_cscale(mmi_cmul(lam, f), dt));
    dc = mmi_csub(q, mmi_cscale(mmi_cmul(mmi_cconj(lam), f), dt));
    a = mmi_cdiv(mmi_c(dt, 0), dn), b = mmi_cdiv(mmi_c(dt, 0), dc);
    a2 = mmi_cdiv(mmi_c(1, 0), mmi_cmul(dn, dn)), b2 = mmi_cdiv(mmi_c(1, 0), mmi_cmul(dc, dc));
    for (int i = 0; i < 4; i++) {
        mmi_cplx g = gs[i], gc = mmi_cconj(gs[i]), vc = mmi_cconj(vs[i]), t1, t2;
        /* G_v += conj(dt/d) G_s + conj(G_s) dt/d' */
        mmi_cplx gv = mmi_cadd(mmi_cmul(mmi_cconj(a), g), mmi_cmul(gc, b));
        acc[2 * (i * ch->M + n)] += gv.re;
        acc[2 * (i * ch->M + n) + 1] += gv.im;
        /* lambda: holomorphic term v dt^2 f / d^2, antiholomorphic conj(v) dt^2 f / d'^2 */
        t1 = mmi_cscale(mmi_cmul(mmi_cmul(vs[i], f), a2), dt * dt);
        t2 = mmi_cscale(mmi_cmul(mmi_cmul(vc, f), b2), dt * dt);
        glam = mmi_cadd(glam, mmi_cadd(mmi_cmul(mmi_cconj(t1), g), mmi_cmul(gc, t2)));
        /* dt: d/ddt (dt / d) = q / d^2 */
        t1 = mmi_cadd(mmi_cmul(mmi_cmul(vs[i], q), a2), mmi_cmul(mmi_cmul(vc, q), b2));
        *ddt += g.re * t1.re + g.im * t1.im;
    }
    acc[2 * (4 * ch->M + n)] += glam.re;
    acc[2 * (4 * ch->M + n) + 1] += glam.im;
}

double mmi_s4_kernel_row_bwd(const mmi_s4_ch *ch, int64_t L, const float *dk, float *dlam,
                             float *dp, float *db, float *dc, const mmi_s4_ws *ws)
{
    MMI_ASSERT(ch && ch->M > 0 && L > 0 && dk && ws && ws->tw && ws->x && ws->acc);
    const int64_t M = ch->M;
    double *x = ws->x, *acc = ws->acc, ddt = 0.0;
    memset(acc, 0, (size_t)(10 * M) * sizeof *acc);
    /* G_X = (2/L) DFT(dk)_j inside, (1/L) Re at DC and Nyquist */
    for (int64_t l = 0; l < L; l++) x[2 * l] = dk[l], x[2 * l + 1] = 0.0;
    if (mmi_fft_size(L) == L)
        mmi_fft(L, x, ws->tw, ws->tw_n, 0);
    else
        mmi_dft_any(L, x, 0, ws->tw, ws->tw_n, ws->w1, ws->w2, ws->chirp);
    for (int64_t j = 0; j <= L / 2; j++) {
        mmi_cplx w = omega(j, L), f = mmi_c(1 + w.re, w.im), q = mmi_c(2 - 2 * w.re, -2 * w.im);
        mmi_cplx s[4], g, den, gs[4], t;
        int edge = j == 0 || 2 * j == L;
        g = edge ? mmi_c(x[2 * j] / (double)L, 0)
                 : mmi_cscale(mmi_c(x[2 * j], x[2 * j + 1]), 2.0 / (double)L);
        cauchy(ch, f, q, s);
        den = mmi_cadd(mmi_c(1, 0), mmi_cmul(f, s[3]));
        gs[0] = mmi_cscale(g, 2.0);
        t = mmi_cscale(mmi_cdiv(mmi_cmul(f, s[2]), den), -2.0);
        gs[1] = mmi_cmul(mmi_cconj(t), g);
        t = mmi_cscale(mmi_cdiv(mmi_cmul(f, s[1]), den), -2.0);
        gs[2] = mmi_cmul(mmi_cconj(t), g);
        t = mmi_cscale(mmi_cdiv(mmi_cmul(mmi_cmul(f, f), mmi_cmul(s[1], s[2])), mmi_cmul(den, den)),
                       2.0);
        gs[3] = mmi_cmul(mmi_cconj(t), g);
        for (int64_t n = 0; n < M; n++) mode_grad(ch, n, f, q, gs, acc, &ddt);
    }
    for (int64_t n = 0; n < M; n++) {
        mmi_cplx c = ld(ch->c, n), p = ld(ch->p, n), b = ld(ch->b, n);
        mmi_cplx gcb = mmi_c(acc[2 * n], acc[2 * n + 1]);
        mmi_cplx gcp = mmi_c(acc[2 * (M + n)], acc[2 * (M + n) + 1]);
        mmi_cplx gqb = mmi_c(acc[2 * (2 * M + n)], acc[2 * (2 * M + n) + 1]);
        mmi_cplx gqp = mmi_c(acc[2 * (3 * M + n)], acc[2 * (3 * M + n) + 1]);
        mmi_cplx gl = mmi_c(acc[2 * (4 * M + n)], acc[2 * (4 * M + n) + 1]), r;
        if (dlam) dlam[2 * n] = (float)gl.re, dlam[2 * n + 1] = (float)gl.im;
        if (dc) {
            r = mmi_cadd(mmi_cmul(mmi_cconj(b), gcb), mmi_cmul(mmi_cconj(p), gcp));
            dc[2 * n] = (float)r.re, dc[2 * n + 1] = (float)r.im;
        }
        if (db) {
            r = mmi_cadd(mmi_cmul(mmi_cconj(c), gcb), mmi_cmul(p, gqb));
            db[2 * n] = (float)r.re, db[2 * n + 1] = (float)r.im;
        }
        if (dp) {
            r = mmi_cadd(mmi_cmul(mmi_cconj(c), gcp), mmi_cmul(mmi_cconj(gqb), b));
            r = mmi_cadd(r, mmi_cadd(mmi_cmul(p, gqp), mmi_cmul(mmi_cconj(gqp), p)));
            dp[2 * n] = (float)r.re, dp[2 * n + 1] = (float)r.im;
        }
    }
    return ddt * ch->dt;
}
