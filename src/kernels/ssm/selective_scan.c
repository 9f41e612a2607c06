/* SPDX-License-Identifier: MIT */
/* selective_scan.c — the Mamba-1 selective scan on one (batch, channel) row, portable C path
 * and dispatch (docs/SSM.md §MM_SSM_SELECTIVE). The forward is selective_scan_ref's recurrence with
 * float32 state; the backward is the reverse-time adjoint scan, recomputing each chunk's
 * states from the checkpoint the forward stored at the chunk start, so memory stays
 * O(L/chunk * N) per row instead of O(L N). Element-wise work on the time axis (softplus,
 * silu and their derivatives) is done once per row up front by mmi_ssm_sel_prep, so the
 * sequential loop only does the N-wide recurrence. */
#include "mmi_ssm_kernels.h"

#include <string.h>

void mmi_ssm_sel_prep_portable(int64_t n, const float *delta, float bias, int softplus,
                               const float *z, float *dlt, float *dsp, float *gz, float *sz)
{
    for (int64_t t = 0; t < n; t++) {
        float raw = delta[t] + bias;
        dlt[t] = softplus ? mmi_softplus_f(raw) : raw;
        /* !(raw > 20): a NaN raw takes the sigmoid and gives NaN, as the vector paths do */
        if (dsp) dsp[t] = (softplus && !(raw > 20.0f)) ? mmi_sigmoid_f(raw) : 1.0f;
        if (z) {
            float s = mmi_sigmoid_f(z[t]);
            if (gz) gz[t] = z[t] * s;
            if (sz) sz[t] = s;
        }
    }
}

void mmi_ssm_sel_prep(int64_t n, const float *delta, float bias, int softplus, const float *z,
                      float *dlt, float *dsp, float *gz, float *sz)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(n >= 0 && (n == 0 || (delta && dlt)));
    if (v && v->sel_prep(n, delta, bias, softplus, z, dlt, dsp, gz, sz)) return;
    mmi_ssm_sel_prep_portable(n, delta, bias, softplus, z, dlt, dsp, gz, sz);
}

void mmi_ssm_sel_fwd_portable(const mmi_sel_row *r)
{
    const int64_t N = r->N;
    float *x = r->x;
    if (!r->cont) memset(x, 0, (size_t)N * sizeof *x);
    for (int64_t t = 0; t < r->L; t++) {
        const float *b = r->b_var ? r->B + t * N : r->B;
        const float *c = r->c_var ? r->C + t * N : r->C;
        float d = r->dlt[t], du = d * r->u[t], y = 0.0f;
        if (r->ckpt && t % r->chunk == 0) memcpy(r->ckpt + (t / r->chunk) * N, x, (size_t)N * 4);
        for (int64_t n = 0; n < N; n++) {
            x[n] = expf(d * r->A[n]) * x[n] + b[n] * du;
            y += x[n] * c[n];
        }
        if (r->has_d) y += r->dskip * r->u[t];
        if (r->gz) y *= r->gz[t];
        r->out[t] = y;
    }
}

void mmi_ssm_sel_fwd(const mmi_sel_row *r)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(r && r->L >= 0 && r->N > 0 && r->u && r->dlt && r->A && r->B && r->C && r->out &&
               r->x && (!r->ckpt || r->chunk > 0));
    if (v && v->sel_fwd(r)) return;
    mmi_ssm_sel_fwd_portable(r);
}

int mmi_ssm_sel_fwd_block(const mmi_sel_row *r, int64_t nr)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(r && nr >= 1 && nr <= MMI_SEL_BLOCK_MAX);
    return v && v->sel_fwd_block ? v->sel_fwd_block(r, nr) : 0;
}

int64_t mmi_ssm_sel_block_rows(void)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    return v && v->sel_fwd_block ? v->blk_rows : 0;
}

/* Recomputes chunk [t0, t1): abar[t-t0] = exp(delta A), xs[t-t0] = x_t, from x_{t0-1} = x0. */
static void recompute(const mmi_sel_row *r, int64_t t0, int64_t t1, const float *x0, float *abar,
                      float *xs)
{
    const int64_t N = r->N;
    const float *xp = x0;
    for (int64_t t = t0; t < t1; t++) {
        const float *b = r->b_var ? r->B + t * N : r->B;
        float d = r->dlt[t], du = d * r->u[t];
        float *a = abar + (t - t0) * N, *x = xs + (t - t0) * N;
        for (int64_t n = 0; n < N; n++) {
            a[n] = expf(d * r->A[n]);
            x[n] = a[n] * xp[n] + b[n] * du;
        }
        xp = x;
    }
}

/* The gate: returns g-hat = g silu(z) and writes dz (needs the pre-gate output o). */
static float gate_bwd(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t t, const float *x,
                      const float *c)
{
    float gy = g->dout[t];
    if (r->z) {
        float o = 0.0f, z = r->z[t], s = r->sz[t];
        for (int64_t n = 0; n < r->N; n++) o += x[n] * c[n];
        if (r->has_d) o += r->dskip * r->u[t];
        if (g->dz) g->dz[t] = gy * o * s * (1.0f + z * (1.0f - s));
        gy *= z * s;
    }
    return gy;
}

void mmi_ssm_sel_bwd_portable(const mmi_sel_row *r, const mmi_sel_grad *g)
{
    const int64_t N = r->N, T = r->chunk, nck = (r->L + T - 1) / T;
    float *abar = g->work, *xs = abar + T * N, hn[256];
    float *hnp = N <= 256 ? hn : NULL;
    double *dBt, *dCt;
    if (!hnp) return;                        /* the operator limits N to 256 for this kind */
    memset(hnp, 0, (size_t)N * sizeof *hnp); /* a_{t+1} h_{t+1}, zero past the end */
    for (int64_t ck = nck - 1; ck >= 0; ck--) {
        int64_t t0 = ck * T, t1 = t0 + T < r->L ? t0 + T : r->L;
        const float *x0 = r->ckpt + ck * N;
        recompute(r, t0, t1, x0, abar, xs);
        for (int64_t t = t1 - 1; t >= t0; t--) {
            const float *b = r->b_var ? r->B + t * N : r->B;
            const float *c = r->c_var ? r->C + t * N : r->C;
            const float *a = abar + (t - t0) * N, *x = xs + (t - t0) * N;
            const float *xp = t > t0 ? x - N : x0;
            float d = r->dlt[t], u = r->u[t], gh = gate_bwd(r, g, t, x, c);
            float sum_hb = 0.0f, sum_dd = 0.0f;
            dBt = r->b_var ? g->dB + t * N : g->dB;
            dCt = r->c_var ? g->dC + t * N : g->dC;
            for (int64_t n = 0; n < N; n++) {
                float hv = hnp[n] + gh * c[n];
                float ax = a[n] * xp[n]; /* a_t x_{t-1} */
                if (dCt) dCt[n] += (double)(gh * x[n]);
                if (dBt) dBt[n] += (double)(hv * d * u);
                sum_hb += hv * b[n];
                sum_dd += hv * (b[n] * u + r->A[n] * ax);
                g->dA[n] += (double)(hv * d * ax);
                hnp[n] = a[n] * hv;
            }
            if (g->du) g->du[t] = d * sum_hb + (r->has_d ? r->dskip * gh : 0.0f);
            if (g->dD) *g->dD += (double)(gh * u);
            sum_dd *= r->dsp[t];
            if (g->ddelta) g->ddelta[t] = sum_dd;
            if (g->dbias) *g->dbias += (double)sum_dd;
        }
    }
}

void mmi_ssm_sel_bwd(const mmi_sel_row *r, const mmi_sel_grad *g)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(r && g && r->L >= 0 && r->N > 0 && r->chunk > 0 && r->ckpt && r->dsp && g->dout &&
               g->dA && g->work);
    if (v && v->sel_bwd(r, g)) return;
    mmi_ssm_sel_bwd_portable(r, g);
}

int mmi_ssm_sel_bwd_block(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr)
{
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(r && (g || nr == 0) && nr >= 0 && nr <= MMI_SEL_BLOCK_MAX);
    return v && v->sel_bwd_block ? v->sel_bwd_block(r, g, nr) : 0;
}

void mmi_ssm_sel_step_rows(const mmi_sel_step *s)
{
    const int64_t N = s->N;
    const mmi_ssm_isa *v = mmi_ssm_isa_get();
    MMI_ASSERT(s && s->n >= 0 && N > 0 && s->A && s->B && s->C && s->dlt && s->u && s->x && s->out);
    if (v && v->sel_step_rows(s)) return;
    for (int64_t i = 0; i < s->n; i++) {
        float *x = s->x + i * N, d = s->dlt[i], du = d * s->u[i], y = 0.0f;
        for (int64_t n = 0; n < N; n++) {
            x[n] = expf(d * s->A[i * N + n]) * x[n] + s->B[n] * du;
            y += x[n] * s->C[n];
        }
        if (s->dskip) y += s->dskip[i] * s->u[i];
        if (s->gz) y *= s->gz[i];
        s->out[i] = y;
    }
}
