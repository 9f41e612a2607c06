/* SPDX-License-Identifier: MIT */
/* ssm_lru.c — MM_SSM_LRU: validates the LRU parameters (nu_log, theta_log, gamma_log [N],
 * B [N,H,x2], C [H,N,x2], D [H]) and input u [Bt,L,H], forms lambda and B e^gamma_log once per
 * call, runs the row kernels (src/kernels/ssm/lru_scan.c) and maps the complex gradients back to
 * the real parameters (docs/SSM.md §MM_SSM_LRU). Also the minimal-LRU initialisation. */
#include "mmi_ssm.h"

#include <math.h>
#include <string.h>

static int check_params(mm_ssm *h, const char *fn, const mm_ssm_inputs *in)
{
    int64_t H = h->D, N = h->N, sn[1] = {N}, sh[1] = {H};
    int rc;
    if ((rc = mmi_ssm_want(h, fn, "nu_log", in->nu_log, 1, sn)) ||
        (rc = mmi_ssm_want(h, fn, "theta_log", in->theta_log, 1, sn)) ||
        (rc = mmi_ssm_want(h, fn, "gamma_log", in->gamma_log, 1, sn)) ||
        (rc = mmi_ssm_want(h, fn, "B", in->B, 3, (int64_t[3]){N, H, 2})) ||
        (rc = mmi_ssm_want(h, fn, "C", in->C, 3, (int64_t[3]){H, N, 2})) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, sh))) ||
        (rc = mmi_ssm_only_inputs(h, fn, in, "u B C D nu_log theta_log gamma_log")))
        return rc;
    return MM_OK;
}

/* lambda (2N floats) into lam, B e^gamma into h->ws.bt. */
static void prepare(mm_ssm *h, const mm_ssm_inputs *in, float *lam)
{
    int64_t H = h->D, N = h->N;
    for (int64_t n = 0; n < N; n++) {
        double mod = exp(-exp((double)in->nu_log->data[n]));
        double arg = exp((double)in->theta_log->data[n]);
        double gam = exp((double)in->gamma_log->data[n]);
        lam[2 * n] = (float)(mod * cos(arg));
        lam[2 * n + 1] = (float)(mod * sin(arg));
        for (int64_t k = 0; k < 2 * H; k++)
            h->ws.bt[n * 2 * H + k] = (float)(in->B->data[n * 2 * H + k] * gam);
    }
}

static void row_of(const mm_ssm *h, const mm_ssm_inputs *in, const float *lam, int64_t b, int64_t L,
                   float *y, mmi_lru_row *r)
{
    int64_t H = h->D, N = h->N;
    memset(r, 0, sizeof *r);
    r->L = L, r->H = H, r->N = N;
    r->lam = lam, r->bn = h->ws.bt, r->c = in->C->data, r->d = in->D ? in->D->data : NULL;
    r->u = in->u->data + b * L * H;
    r->y = y ? y + b * L * H : NULL;
    r->hs = h->ws.ckpt + b * h->max_seq * N * 2;
}

static int check_u(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, int64_t *Bt, int64_t *L)
{
    int rc;
    if (!in->u || in->u->ndim != 3 || in->u->shape[2] != h->D)
        return mmi_ssm_want(h, fn, "u", in->u, 3,
                            (int64_t[3]){in->u && in->u->ndim == 3 ? in->u->shape[0] : 1,
                                         in->u && in->u->ndim == 3 ? in->u->shape[1] : 1, h->D});
    *Bt = in->u->shape[0], *L = in->u->shape[1];
    if ((rc = mmi_ssm_check_bl(h, fn, *Bt, *L))) return rc;
    return check_params(h, fn, in);
}

int mmi_ssm_lru_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last)
{
    MMI_ASSERT(h->kind == MM_SSM_LRU); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_scan";
    int64_t Bt, L, N = h->N;
    float *lam = h->ws.work;
    mmi_lru_row r;
    int rc;
    if ((rc = check_u(h, fn, in, &Bt, &L)) ||
        (rc = mmi_ssm_want(h, fn, "out", out, 3, in->u->shape)) ||
        (last && (rc = mmi_ssm_want(h, fn, "last_state", last, 3, (int64_t[3]){Bt, N, 2}))))
        return rc;
    prepare(h, in, lam);
    for (int64_t b = 0; b < Bt; b++) {
        row_of(h, in, lam, b, L, out->data, &r);
        mmi_ssm_lru_fwd(&r);
        if (last) memcpy(last->data + b * 2 * N, r.hs + (L - 1) * 2 * N, (size_t)(2 * N) * 4);
    }
    h->fwd_batch = Bt, h->fwd_len = L;
    return MM_OK;
}

static int check_grads(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const mm_ssm_grads *g)
{
    int rc;
    if ((rc = mmi_ssm_grad_like(h, fn, "du", g->du, in->u)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dB", g->dB, in->B)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dC", g->dC, in->C)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dD", g->dD, in->D)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dnu_log", g->dnu_log, in->nu_log)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dtheta_log", g->dtheta_log, in->theta_log)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dgamma_log", g->dgamma_log, in->gamma_log)) ||
        (rc = mmi_ssm_only_grads(h, fn, g, "u B C D nu_log theta_log gamma_log")))
        return rc;
    return MM_OK;
}

/* Real-parameter gradients from the complex sums (docs/SSM.md §MM_SSM_LRU). */
static void write_grads(const mm_ssm *h, const mm_ssm_inputs *in, const mm_ssm_grads *g,
                        const float *lam, const double *glam, const double *dd)
{
    int64_t H = h->D, N = h->N;
    for (int64_t n = 0; n < N; n++) {
        double gr = glam[2 * n], gi = glam[2 * n + 1], lr = lam[2 * n], li = lam[2 * n + 1];
        double en = exp((double)in->nu_log->data[n]), et = exp((double)in->theta_log->data[n]);
        double gam = exp((double)in->gamma_log->data[n]), dg = 0.0;
        /* d/dnu_log = Re(conj(G)(-e^nu lambda)); d/dtheta_log = Re(conj(G)(i e^theta lambda)) */
        if (g->dnu_log) g->dnu_log->data[n] = (float)(-en * (gr * lr + gi * li));
        if (g->dtheta_log) g->dtheta_log->data[n] = (float)(et * (gr * -li + gi * lr));
        for (int64_t k = 0; k < H; k++) {
            const double *gb = h->ws.dbt + (n * H + k) * 2;
            const float *bn = h->ws.bt + (n * H + k) * 2;
            dg += gb[0] * bn[0] + gb[1] * bn[1];
            if (g->dB) {
                g->dB->data[(n * H + k) * 2] = (float)(gb[0] * gam);
                g->dB->data[(n * H + k) * 2 + 1] = (float)(gb[1] * gam);
            }
        }
        if (g->dgamma_log) g->dgamma_log->data[n] = (float)dg;
    }
    for (int64_t i = 0; i < 2 * H * N && g->dC; i++) g->dC->data[i] = (float)h->ws.dct[i];
    for (int64_t k = 0; k < H && g->dD; k++) g->dD->data[k] = (float)dd[k];
}

int mmi_ssm_lru_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout, mm_ssm_grads *g)
{
    MMI_ASSERT(h->kind == MM_SSM_LRU); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_scan_backward";
    int64_t Bt, L, H = h->D, N = h->N;
    float *lam = h->ws.work;
    double *glam = h->ws.dacc, *gh = glam + 2 * N, *dd = gh + 2 * N;
    mmi_lru_row r;
    mmi_lru_grad gr;
    int rc;
    if ((rc = check_u(h, fn, in, &Bt, &L))) return rc;
    if (Bt != h->fwd_batch || L != h->fwd_len)
        return mmi_fail(&h->err, MM_E_STATE, "%s: inputs differ from the last mm_ssm_scan", fn);
    if ((rc = mmi_ssm_want(h, fn, "dout", dout, 3, in->u->shape)) ||
        (rc = check_grads(h, fn, in, g)))
        return rc;
    prepare(h, in, lam);
    memset(h->ws.dacc, 0, (size_t)(4 * N + H) * sizeof(double));
    memset(h->ws.dbt, 0, (size_t)(2 * N * H) * sizeof(double));
    memset(h->ws.dct, 0, (size_t)(2 * N * H) * sizeof(double));
    for (int64_t b = 0; b < Bt; b++) {
        row_of(h, in, lam, b, L, NULL, &r);
        memset(&gr, 0, sizeof gr);
        gr.dy = dout->data + b * L * H;
        gr.du = g->du ? g->du->data + b * L * H : NULL;
        gr.glam = glam, gr.gbn = h->ws.dbt, gr.gc = h->ws.dct, gr.dd = dd, gr.gh = gh;
        mmi_ssm_lru_bwd(&r, &gr);
    }
    write_grads(h, in, g, lam, glam, dd);
    return MM_OK;
}

/* One token: u [Bt,H] -> out [Bt,H]; state [Bt,N,x2]. */
int mmi_ssm_lru_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out)
{
    MMI_ASSERT(h->kind == MM_SSM_LRU); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_step";
    int64_t Bt, H = h->D, N = h->N;
    float *lam = h->ws.work;
    mmi_lru_row r;
    int rc;
    if (!in->u || in->u->ndim != 2) return mmi_ssm_want(h, fn, "u", in->u, 2, (int64_t[2]){1, H});
    Bt = in->u->shape[0];
    if ((rc = mmi_ssm_want(h, fn, "u", in->u, 2, (int64_t[2]){Bt, H})) ||
        (rc = mmi_ssm_check_bl(h, fn, Bt, 1)) || (rc = check_params(h, fn, in)) ||
        (rc = mmi_ssm_want(h, fn, "out", out, 2, in->u->shape)))
        return rc;
    prepare(h, in, lam);
    for (int64_t b = 0; b < Bt; b++) {
        float *st = h->ws.state + b * 2 * N, *tmp = lam + 2 * N; /* 2N floats of scratch */
        memset(&r, 0, sizeof r);
        r.L = 1, r.H = H, r.N = N, r.lam = lam, r.bn = h->ws.bt, r.c = in->C->data;
        r.d = in->D ? in->D->data : NULL;
        r.u = in->u->data + b * H, r.y = out->data + b * H, r.h0 = st, r.hs = tmp;
        mmi_ssm_lru_fwd(&r);
        memcpy(st, tmp, (size_t)(2 * N) * sizeof *st);
    }
    return MM_OK;
}

MM_API int mm_ssm_lru_init(mm_ssm *h, double r_min, double r_max, double max_phase, float *nu_log,
                           float *theta_log, float *gamma_log, float *b, float *c, float *d)
{
    int64_t H, N;
    if (!h || h->kind != MM_SSM_LRU) return MM_E_INVALID_ARG;
    if (!(r_min >= 0 && r_min < r_max && r_max <= 1) || !(max_phase > 0) || !isfinite(max_phase))
        return mmi_fail(&h->err, MM_E_RANGE,
                        "mm_ssm_lru_init: need 0 <= r_min < r_max <= 1 and "
                        "max_phase > 0 (got %g, %g, %g)",
                        r_min, r_max, max_phase);
    H = h->D, N = h->N;
    for (int64_t n = 0; n < N; n++) {
        double u1 = mmi_rng_uniform(&h->rng), u2 = mmi_rng_uniform(&h->rng);
        if (u1 <= 0.0) u1 = 0x1p-53; /* keep the logs finite on the one zero draw */
        double nu = log(-0.5 * log(u1 * (r_max * r_max - r_min * r_min) + r_min * r_min));
        double th = log(max_phase * u2), mod = exp(-exp(nu));
        if (nu_log) nu_log[n] = (float)nu;
        if (theta_log) theta_log[n] = (float)th;
        if (gamma_log) gamma_log[n] = (float)log(sqrt(1.0 - mod * mod));
    }
    for (int64_t i = 0; i < 2 * N * H; i++) {
        double v = mmi_rng_normal(&h->rng) / sqrt(2.0 * (double)H);
        if (b) b[i] = (float)v;
    }
    for (int64_t i = 0; i < 2 * H * N; i++) {
        double v = mmi_rng_normal(&h->rng) / sqrt((double)N);
        if (c) c[i] = (float)v;
    }
    for (int64_t k = 0; k < H; k++) {
        double v = mmi_rng_normal(&h->rng);
        if (d) d[k] = (float)v;
    }
    return MM_OK;
}
