/* SPDX-License-Identifier: MIT */
/* s4d_kernel.c — the S4D convolution kernel of one channel (s4 SSMKernelDiag / s4d.py with ZOH,
 * docs/SSM.md §MM_SSM_S4D) by a Vandermonde product, its gradients (PyTorch's complex
 * convention), and the per-mode ZOH used for streaming. Everything is float64 inside: the sums
 * over l span the sequence. */
#include "mmi_cplx.h"
#include "mmi_ssm_kernels.h"

#include <string.h>

#define ANCHOR 32

typedef mmi_cplx cplx;
#define cmul  mmi_cmul
#define cdiv  mmi_cdiv
#define cconj mmi_cconj
#define cexp_ mmi_cexp

/* Per-mode quantities shared by forward and backward. */
typedef struct mode {
    cplx A, x, z, em1, E, cb, W; /* x = dt A, z = e^x, em1 = e^x - 1, E = em1 / A, W = C B E */
    cplx dEdA;                   /* dE/dA = (dt e^x A - (e^x - 1)) / A^2 = dt^2 g(x) */
    cplx c, b;
} mode;

/* g(x) = (x e^x - (e^x - 1)) / x^2 = sum_{j>=0} (j + 1) x^j / (j + 2)!, so dE/dA = dt^2 g(dt A).
 * Formed directly, the numerator cancels to x^2/2 from terms of size |x| (relative error about
 * 2 eps / |x|: 3% at |x| = 1e-14, everything once x^2 is lost against x), so below |x| = 1/2 the
 * series is summed instead (terms j <= 15; the first left out is below 1e-20 there) and above
 * it the direct form loses a few ulps at most. z = e^x, em1 = e^x - 1 as in mode. */
static cplx g_of(cplx x, cplx z, cplx em1)
{
    if (x.re * x.re + x.im * x.im < 0.25) {
        double c = 16.0;
        cplx s;
        for (int k = 2; k <= 17; k++) c /= (double)k; /* c_15 = 16 / 17! */
        s = (cplx){c, 0.0};
        for (int j = 14; j >= 0; j--) {
            c *= (double)((j + 1) * (j + 3)) / (double)(j + 2); /* c_j from c_(j+1) */
            s = cmul(s, x);
            s.re += c;
        }
        return s;
    }
    {
        cplx num = cmul(x, z);
        num.re -= em1.re, num.im -= em1.im;
        return cdiv(num, cmul(x, x));
    }
}

static mode mode_of(const mmi_s4d_ch *ch, int64_t n)
{
    mode m;
    double s = sin(0.5 * ch->dt * ch->aim[n]);
    m.A = (cplx){-exp((double)ch->lar[n]), (double)ch->aim[n]};
    m.x = (cplx){ch->dt * m.A.re, ch->dt * m.A.im};
    m.z = cexp_(m.x.re, m.x.im);
    /* e^x - 1 without cancellation: expm1(re) cos(im) - 2 sin^2(im/2) + i e^re sin(im) */
    m.em1 = (cplx){expm1(m.x.re) * cos(m.x.im) - 2.0 * s * s, m.z.im};
    m.E = cdiv(m.em1, m.A);
    m.c = (cplx){ch->c[2 * n], ch->c[2 * n + 1]};
    m.b = ch->b ? (cplx){ch->b[2 * n], ch->b[2 * n + 1]} : (cplx){1.0, 0.0};
    m.cb = cmul(m.c, m.b);
    m.W = cmul(m.cb, m.E);
    m.dEdA = g_of(m.x, m.z, m.em1);
    m.dEdA.re *= ch->dt * ch->dt, m.dEdA.im *= ch->dt * ch->dt;
    return m;
}

void mmi_s4d_kernel_row(const mmi_s4d_ch *ch, int64_t L, float *k, double *acc)
{
    memset(acc, 0, (size_t)L * sizeof *acc);
    for (int64_t n = 0; n < ch->M; n++) {
        mode m = mode_of(ch, n);
        cplx p = m.W;
        for (int64_t l = 0; l < L; l++) {
            if (l % ANCHOR == 0 && l) p = cmul(m.W, cexp_((double)l * m.x.re, (double)l * m.x.im));
            acc[l] += 2.0 * p.re;
            p = cmul(p, m.z);
        }
    }
    for (int64_t l = 0; l < L; l++) k[l] = (float)acc[l];
}

double mmi_s4d_kernel_row_bwd(const mmi_s4d_ch *ch, int64_t L, const float *dk, float *dlar,
                              float *daim, float *dc, float *db)
{
    double ddt = 0.0, dt = ch->dt;
    for (int64_t n = 0; n < ch->M; n++) {
        mode m = mode_of(ch, n);
        cplx p = {1.0, 0.0}, s0 = {0, 0}, s1 = {0, 0}, gw, gx, ga, dwda, t;
        for (int64_t l = 0; l < L; l++) {
            if (l % ANCHOR == 0 && l) p = cexp_((double)l * m.x.re, (double)l * m.x.im);
            /* sums of dK_l conj(z^l) and l dK_l conj(z^l) */
            s0.re += dk[l] * p.re, s0.im -= dk[l] * p.im;
            s1.re += (double)l * dk[l] * p.re, s1.im -= (double)l * dk[l] * p.im;
            p = cmul(p, m.z);
        }
        gw = (cplx){2.0 * s0.re, 2.0 * s0.im};
        gx = cmul(cconj(m.W), (cplx){2.0 * s1.re, 2.0 * s1.im});
        dwda = cmul(m.cb, m.dEdA);
        ga = cmul(cconj(dwda), gw);
        ga.re += dt * gx.re, ga.im += dt * gx.im;
        if (dlar) dlar[n] = (float)(m.A.re * ga.re); /* -e^lar Re(G_A), with A.re = -e^lar */
        if (daim) daim[n] = (float)ga.im;
        /* dL/ddt = Re(conj(G_W) C B e^x) + Re(conj(G_x) A) */
        t = cmul(m.cb, m.z);
        ddt += gw.re * t.re + gw.im * t.im + gx.re * m.A.re + gx.im * m.A.im;
        if (dc) {
            cplx g = cmul(cconj(cmul(m.b, m.E)), gw);
            dc[2 * n] = (float)g.re, dc[2 * n + 1] = (float)g.im;
        }
        if (db && ch->b) {
            cplx g = cmul(cconj(cmul(m.c, m.E)), gw);
            db[2 * n] = (float)g.re, db[2 * n + 1] = (float)g.im;
        }
    }
    return ddt * dt; /* d/dlog_dt = dt d/ddt */
}

void mmi_s4d_zoh(const mmi_s4d_ch *ch, double *da, double *db)
{
    for (int64_t n = 0; n < ch->M; n++) {
        mode m = mode_of(ch, n);
        cplx bb = cmul(m.b, m.E);
        da[2 * n] = m.z.re, da[2 * n + 1] = m.z.im;
        db[2 * n] = bb.re, db[2 * n + 1] = bb.im;
    }
}

/* tK_l = 2 Re sum_n z^l (tW_n + l W_n tx_n), x = dt A, tx = t(dt) A + dt tA, tW = tC B E + C B tE,
 * tE = (e^x tx A - (e^x - 1) tA) / A^2 = e^x t(dt) + dE/dA tA (no cancellation, see g_of). */
void mmi_s4d_kernel_row_jvp(const mmi_s4d_ch *ch, int64_t L, double tlog_dt, const float *tlar,
                            const float *taim, const float *tc, float *tk, double *acc)
{
    double dt = ch->dt, tdt = dt * tlog_dt;
    memset(acc, 0, (size_t)L * sizeof *acc);
    for (int64_t n = 0; n < ch->M; n++) {
        mode m = mode_of(ch, n);
        cplx tA = {m.A.re * tlar[n], taim[n]}, tx, tE, tW, p = {1.0, 0.0}, lw;
        tx = (cplx){tdt * m.A.re + dt * tA.re, tdt * m.A.im + dt * tA.im};
        tE = cmul(m.dEdA, tA);
        tE.re += m.z.re * tdt, tE.im += m.z.im * tdt;
        tW = cmul(cmul((cplx){tc[2 * n], tc[2 * n + 1]}, m.b), m.E);
        {
            cplx t2 = cmul(m.cb, tE);
            tW.re += t2.re, tW.im += t2.im;
        }
        lw = cmul(m.W, tx);
        for (int64_t l = 0; l < L; l++) {
            cplx f;
            if (l % ANCHOR == 0 && l) p = cexp_((double)l * m.x.re, (double)l * m.x.im);
            f = (cplx){tW.re + (double)l * lw.re, tW.im + (double)l * lw.im};
            acc[l] += 2.0 * (p.re * f.re - p.im * f.im);
            p = cmul(p, m.z);
        }
    }
    for (int64_t l = 0; l < L; l++) tk[l] = (float)acc[l];
}

double mmi_s4d_step_modes(int64_t M, const double *da, const double *db, const float *c, float u,
                          double y0, float *x)
{
    double y = y0;
    for (int64_t n = 0; n < M; n++) {
        double xr = x[2 * n], xi = x[2 * n + 1];
        double nr = da[2 * n] * xr - da[2 * n + 1] * xi + db[2 * n] * u;
        double ni = da[2 * n] * xi + da[2 * n + 1] * xr + db[2 * n + 1] * u;
        x[2 * n] = (float)nr, x[2 * n + 1] = (float)ni;
        y += 2.0 * (c[2 * n] * nr - c[2 * n + 1] * ni);
    }
    return y;
}
