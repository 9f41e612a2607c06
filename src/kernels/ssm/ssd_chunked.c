/* SPDX-License-Identifier: MIT */
/* ssd_chunked.c — Mamba-2 SSD (scalar A per head) on one (batch, head): the chunked forward of
 * ssd_minimal (intra-chunk C B^T masked by exp of decay sums, chunk states, inter-chunk state
 * passing with an initial state) and its backward, a reverse sequential adjoint that
 * recomputes each chunk's states from the chunk's input state saved by the forward (docs/SSM.md
 * §MM_SSM_SSD). Decay sums are cumulated in float64, so exp(c_l - c_s) does not lose the
 * small-difference digits the reference's segsum protects. */
#include "mmi_ssm_kernels.h"

#include <string.h>

float mmi_ssd_dt(const mmi_ssd_head *r, float raw, int *pass)
{
    float d = raw + r->bias;
    if (r->softplus) d = mmi_softplus_f(d);
    *pass = 1;
    if ((double)d < r->dt_min) d = (float)r->dt_min, *pass = 0;
    if ((double)d > r->dt_max) d = (float)r->dt_max, *pass = 0;
    return d;
}

/* One chunk [t0, t1): y from the intra-chunk form plus the entering state S (P x N), then S
 * advanced to the chunk end. ca (float64) and dtv are Q-long scratch. */
static void ssd_chunk(const mmi_ssd_head *r, int64_t t0, int64_t t1, float *S, double *ca,
                      float *dtv)
{
    const int64_t P = r->P, N = r->N, q = t1 - t0;
    double acc = 0.0;
    int pass;
    for (int64_t s = 0; s < q; s++) {
        dtv[s] = mmi_ssd_dt(r, r->dt[(t0 + s) * r->ds], &pass);
        acc += (double)dtv[s] * (double)r->A;
        ca[s] = acc;
    }
    for (int64_t l = 0; l < q; l++) {
        const float *cl = r->C + (t0 + l) * r->bs, *xl = r->x + (t0 + l) * r->xs;
        float *y = r->y + (t0 + l) * r->xs;
        float el = (float)exp(ca[l]);
        for (int64_t p = 0; p < P; p++) {
            float v = 0.0f;
            for (int64_t n = 0; n < N; n++) v += cl[n] * S[p * N + n];
            y[p] = el * v + (r->has_d ? r->dskip * xl[p] : 0.0f);
        }
        for (int64_t s = 0; s <= l; s++) {
            const float *bs = r->B + (t0 + s) * r->bs, *xs = r->x + (t0 + s) * r->xs;
            float cb = 0.0f, w;
            for (int64_t n = 0; n < N; n++) cb += cl[n] * bs[n];
            w = cb * (float)exp(ca[l] - ca[s]) * dtv[s];
            for (int64_t p = 0; p < P; p++) y[p] += w * xs[p];
        }
    }
    {
        float decay = (float)exp(ca[q - 1]);
        for (int64_t i = 0; i < P * N; i++) S[i] *= decay;
        for (int64_t s = 0; s < q; s++) {
            const float *bs = r->B + (t0 + s) * r->bs, *xs = r->x + (t0 + s) * r->xs;
            float w = (float)exp(ca[q - 1] - ca[s]) * dtv[s];
            for (int64_t p = 0; p < P; p++)
                for (int64_t n = 0; n < N; n++) S[p * N + n] += w * xs[p] * bs[n];
        }
    }
}

void mmi_ssm_ssd_fwd(const mmi_ssd_head *r)
{
    MMI_ASSERT(r && r->L >= 0 && r->P > 0 && r->N > 0 && r->Q > 0);
    MMI_ASSERT(r->x && r->dt && r->B && r->C && r->y && r->ckpt && r->work);
    MMI_ASSERT((uintptr_t)r->work % sizeof(double) == 0);
    const int64_t PN = r->P * r->N, nck = (r->L + r->Q - 1) / r->Q;
    double *ca = (double *)r->work;
    float *dtv = r->work + 2 * r->Q, *S = dtv + r->Q;
    if (r->init)
        memcpy(S, r->init, (size_t)PN * sizeof *S);
    else
        memset(S, 0, (size_t)PN * sizeof *S);
    for (int64_t c = 0; c < nck; c++) {
        int64_t t0 = c * r->Q, t1 = t0 + r->Q < r->L ? t0 + r->Q : r->L;
        memcpy(r->ckpt + c * PN, S, (size_t)PN * sizeof *S);
        ssd_chunk(r, t0, t1, S, ca, dtv);
    }
    memcpy(r->ckpt + nck * PN, S, (size_t)PN * sizeof *S);
    if (r->last) memcpy(r->last, S, (size_t)PN * sizeof *S);
}

/* States S_t (t in [t0, t1)) of the sequential recurrence from the chunk's input state. */
static void ssd_recompute(const mmi_ssd_head *r, int64_t t0, int64_t t1, const float *S0,
                          float *states, float *av, float *dtv)
{
    const int64_t P = r->P, N = r->N, PN = P * N;
    const float *prev = S0;
    int pass;
    for (int64_t t = t0; t < t1; t++) {
        const float *b = r->B + t * r->bs, *x = r->x + t * r->xs;
        float *S = states + (t - t0) * PN, d = mmi_ssd_dt(r, r->dt[t * r->ds], &pass);
        float a = expf(d * r->A);
        dtv[t - t0] = d, av[t - t0] = a;
        for (int64_t p = 0; p < P; p++)
            for (int64_t n = 0; n < N; n++) S[p * N + n] = a * prev[p * N + n] + d * x[p] * b[n];
        prev = S;
    }
}

/* The adjoint step at t: G = Gn + dy C^T, then every gradient of step t, then Gn = a G. */
static void ssd_adjoint_step(const mmi_ssd_head *r, const mmi_ssd_grad *g, int64_t t,
                             const float *S, const float *Sp, float a, float d, float *G, float *Gn)
{
    const int64_t P = r->P, N = r->N;
    const float *b = r->B + t * r->bs, *c = r->C + t * r->bs, *x = r->x + t * r->xs;
    const float *dy = g->dy + t * r->xs;
    float ddt = 0.0f, dsum = 0.0f;
    int pass;
    for (int64_t p = 0; p < P; p++) {
        float gb = 0.0f;
        for (int64_t n = 0; n < N; n++) {
            float gv = Gn[p * N + n] + dy[p] * c[n];
            G[p * N + n] = gv;
            gb += gv * b[n];
            ddt += gv * (x[p] * b[n] + r->A * a * Sp[p * N + n]);
            dsum += gv * Sp[p * N + n];
            if (g->dC) g->dC[t * r->bs + n] += dy[p] * S[p * N + n];
            if (g->dB) g->dB[t * r->bs + n] += d * gv * x[p];
        }
        if (g->dx) g->dx[t * r->xs + p] = d * gb + (r->has_d ? r->dskip * dy[p] : 0.0f);
        if (g->dD) *g->dD += (double)(dy[p] * x[p]);
    }
    *g->dA += (double)(d * a * dsum);
    mmi_ssd_dt(r, r->dt[t * r->ds], &pass);
    if (!pass)
        ddt = 0.0f;
    else if (r->softplus && r->dt[t * r->ds] + r->bias <= 20.0f)
        ddt *= mmi_sigmoid_f(r->dt[t * r->ds] + r->bias);
    if (g->ddt) g->ddt[t * r->ds] = ddt;
    if (g->dbias) *g->dbias += (double)ddt;
    for (int64_t i = 0; i < P * N; i++) Gn[i] = a * G[i];
}

void mmi_ssm_ssd_bwd(const mmi_ssd_head *r, const mmi_ssd_grad *g)
{
    MMI_ASSERT(r && g && r->L >= 0 && r->P > 0 && r->N > 0 && r->Q > 0);
    MMI_ASSERT(r->x && r->dt && r->B && r->C && r->ckpt && r->work && g->dy && g->dA && g->dD);
    MMI_ASSERT((uintptr_t)r->work % sizeof(double) == 0);
    const int64_t PN = r->P * r->N, Q = r->Q, nck = (r->L + Q - 1) / Q;
    float *av = r->work, *dtv = av + Q, *G = dtv + Q, *Gn = G + PN, *states = Gn + PN;
    memset(Gn, 0, (size_t)PN * sizeof *Gn);
    for (int64_t c = nck - 1; c >= 0; c--) {
        int64_t t0 = c * Q, t1 = t0 + Q < r->L ? t0 + Q : r->L;
        const float *S0 = r->ckpt + c * PN;
        ssd_recompute(r, t0, t1, S0, states, av, dtv);
        for (int64_t t = t1 - 1; t >= t0; t--) {
            const float *S = states + (t - t0) * PN, *Sp = t > t0 ? S - PN : S0;
            ssd_adjoint_step(r, g, t, S, Sp, av[t - t0], dtv[t - t0], G, Gn);
        }
    }
    if (g->dinit) memcpy(g->dinit, Gn, (size_t)PN * sizeof *Gn);
}
