/* SPDX-License-Identifier: MIT */
/* ssm_ssd.c — MM_SSM_SSD: validates the Mamba-2 inputs (x [Bt,L,H,P], dt [Bt,L,H], A [H],
 * B/C [Bt,L,G,N], D and dt_bias [H], init_state [Bt,H,P,N]) and runs the per-head kernels
 * (src/kernels/ssm/ssd_chunked.c). Heads run in parallel on the pool in both directions; in the
 * backward dB/dC, which sum over the heads of a group, go to per-task partial buffers reduced in
 * task order (deterministic for a fixed thread count). */
#include "mmi_ssm.h"

#include <string.h>

typedef struct ssd_call {
    mm_ssm *h;
    const mm_ssm_inputs *in;
    int64_t Bt, L, G;
    float *y, *last;
} ssd_call;

static int check_inputs(ssd_call *c, const char *fn, const mm_tensor *out, const mm_tensor *last)
{
    mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    int64_t H = h->D, P = h->P, N = h->N, sh[1] = {H}, sx[4], sdt[3], sbc[4], ss[4];
    int rc;
    if (!in->u || in->u->ndim != 4 || in->u->shape[2] != H || in->u->shape[3] != P)
        return mmi_ssm_want(h, fn, "u (x)", in->u, 4,
                            (int64_t[4]){in->u && in->u->ndim == 4 ? in->u->shape[0] : 1,
                                         in->u && in->u->ndim == 4 ? in->u->shape[1] : 1, H, P});
    c->Bt = in->u->shape[0], c->L = in->u->shape[1];
    c->G = in->B && in->B->ndim == 4 ? in->B->shape[2] : h->G;
    memcpy(sx, in->u->shape, sizeof sx);
    sdt[0] = c->Bt, sdt[1] = c->L, sdt[2] = H;
    sbc[0] = c->Bt, sbc[1] = c->L, sbc[2] = c->G, sbc[3] = N;
    ss[0] = c->Bt, ss[1] = H, ss[2] = P, ss[3] = N;
    if ((rc = mmi_ssm_check_bl(h, fn, c->Bt, c->L))) return rc;
    if (c->G < 1 || c->G > h->G || H % c->G)
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: B has %lld groups; expected a divisor of H = "
                        "%lld up to n_groups = %lld",
                        fn, (long long)c->G, (long long)H, (long long)h->G);
    if ((rc = mmi_ssm_want(h, fn, "delta (dt)", in->delta, 3, sdt)) ||
        (rc = mmi_ssm_want(h, fn, "A", in->A, 1, sh)) ||
        (rc = mmi_ssm_want(h, fn, "B", in->B, 4, sbc)) ||
        (rc = mmi_ssm_want(h, fn, "C", in->C, 4, sbc)) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, sh))) ||
        (in->delta_bias && (rc = mmi_ssm_want(h, fn, "delta_bias", in->delta_bias, 1, sh))) ||
        (in->init_state && (rc = mmi_ssm_want(h, fn, "init_state", in->init_state, 4, ss))) ||
        (out && (rc = mmi_ssm_want(h, fn, "out", out, 4, sx))) ||
        (last && (rc = mmi_ssm_want(h, fn, "last_state", last, 4, ss))))
        return rc;
    return mmi_ssm_only_inputs(h, fn, in, "u delta A B C D delta_bias init_state");
}

static void head_of(const ssd_call *c, int64_t b, int64_t hd, float *work, mmi_ssd_head *r)
{
    const mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    int64_t H = h->D, P = h->P, N = h->N, g = hd / (H / c->G), PN = P * N;
    memset(r, 0, sizeof *r);
    r->L = c->L, r->P = P, r->N = N, r->Q = h->chunk;
    r->x = in->u->data + (b * c->L * H + hd) * P;
    r->xs = H * P;
    r->dt = in->delta->data + b * c->L * H + hd;
    r->ds = H;
    r->B = in->B->data + (b * c->L * c->G + g) * N;
    r->C = in->C->data + (b * c->L * c->G + g) * N;
    r->bs = c->G * N;
    r->A = in->A->data[hd];
    r->has_d = in->D != NULL;
    r->dskip = in->D ? in->D->data[hd] : 0.0f;
    r->bias = in->delta_bias ? in->delta_bias->data[hd] : 0.0f;
    r->softplus = (h->opts.flags & MM_SSM_DELTA_SOFTPLUS) != 0;
    r->dt_min = h->dt_min, r->dt_max = h->dt_max;
    r->init = in->init_state ? in->init_state->data + (b * H + hd) * PN : NULL;
    r->y = c->y ? c->y + (b * c->L * H + hd) * P : NULL;
    r->last = c->last ? c->last + (b * H + hd) * PN : NULL;
    r->ckpt = h->ws.ckpt + (b * H + hd) * (h->nck_max + 1) * PN;
    r->work = work;
}

static void fwd_task(void *ctx, int64_t i, int64_t n)
{
    const ssd_call *c = (const ssd_call *)ctx;
    int64_t heads = c->Bt * c->h->D, lo = heads * i / n, hi = heads * (i + 1) / n;
    mmi_ssd_head r;
    for (int64_t k = lo; k < hi; k++) {
        head_of(c, k / c->h->D, k % c->h->D, c->h->ws.work + (size_t)i * c->h->ws.work_per_thread,
                &r);
        mmi_ssm_ssd_fwd(&r);
    }
}

int mmi_ssm_ssd_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last)
{
    MMI_ASSERT(h->kind == MM_SSM_SSD); /* ssm_api.c dispatches by kind */
    ssd_call c;
    int rc;
    memset(&c, 0, sizeof c);
    c.h = h, c.in = in;
    if ((rc = check_inputs(&c, "mm_ssm_scan", out, last)) != MM_OK) return rc;
    c.y = out->data, c.last = last ? last->data : NULL;
    mmi_pool_run(h->pool, fwd_task, &c, mmi_pool_size(h->pool));
    h->fwd_batch = c.Bt, h->fwd_len = c.L;
    return MM_OK;
}

static int check_grads(ssd_call *c, const char *fn, const mm_tensor *dout, const mm_ssm_grads *g)
{
    mm_ssm *h = c->h;
    const mm_ssm_inputs *in = c->in;
    int rc;
    if ((rc = check_inputs(c, fn, NULL, NULL)) != MM_OK) return rc;
    if (c->Bt != h->fwd_batch || c->L != h->fwd_len)
        return mmi_fail(&h->err, MM_E_STATE, "%s: inputs differ from the last mm_ssm_scan", fn);
    if ((rc = mmi_ssm_want(h, fn, "dout", dout, 4, in->u->shape)) ||
        (rc = mmi_ssm_grad_like(h, fn, "du", g->du, in->u)) ||
        (rc = mmi_ssm_grad_like(h, fn, "ddelta", g->ddelta, in->delta)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dA", g->dA, in->A)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dB", g->dB, in->B)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dC", g->dC, in->C)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dD", g->dD, in->D)) ||
        (rc = mmi_ssm_grad_like(h, fn, "ddelta_bias", g->ddelta_bias, in->delta_bias)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dinit_state", g->dinit_state, in->init_state)) ||
        (rc = mmi_ssm_only_grads(h, fn, g, "u delta A B C D delta_bias init_state")))
        return rc;
    return MM_OK;
}

typedef struct ssd_bwd {
    ssd_call *c;
    const mm_tensor *dout;
    const mm_ssm_grads *g;
} ssd_bwd;

/* Task i: heads [H i/n, H (i+1)/n) of every batch row; dB/dC into the task's partial buffers
 * (the heads of a group may fall in different tasks), the rest straight into its outputs. */
static void bwd_task(void *ctx, int64_t i, int64_t n)
{
    const ssd_bwd *w = (const ssd_bwd *)ctx;
    const ssd_call *c = w->c;
    const mm_ssm *h = c->h;
    const mm_ssm_grads *g = w->g;
    int64_t H = h->D, PN = h->P * h->N, lo = H * i / n, hi = H * (i + 1) / n;
    size_t slice = (size_t)(c->Bt * c->L * c->G * h->N);
    float *pb = h->ws.bt + (size_t)i * slice, *pc = h->ws.ct + (size_t)i * slice;
    double *acc = h->ws.dacc;
    memset(pb, 0, slice * sizeof *pb);
    memset(pc, 0, slice * sizeof *pc);
    for (int64_t b = 0; b < c->Bt; b++)
        for (int64_t hd = lo; hd < hi; hd++) {
            mmi_ssd_head r;
            mmi_ssd_grad gr;
            int64_t xo = (b * c->L * H + hd) * h->P,
                    bo = (b * c->L * c->G + hd / (H / c->G)) * h->N;
            head_of(c, b, hd, h->ws.work + (size_t)i * h->ws.work_per_thread, &r);
            memset(&gr, 0, sizeof gr);
            gr.dy = w->dout->data + xo;
            gr.dx = g->du ? g->du->data + xo : NULL;
            gr.ddt = g->ddelta ? g->ddelta->data + b * c->L * H + hd : NULL;
            gr.dB = g->dB ? pb + bo : NULL;
            gr.dC = g->dC ? pc + bo : NULL;
            gr.dinit = g->dinit_state ? g->dinit_state->data + (b * H + hd) * PN : NULL;
            gr.dA = acc + hd, gr.dD = acc + H + hd, gr.dbias = acc + 2 * H + hd;
            mmi_ssm_ssd_bwd(&r, &gr);
        }
}

int mmi_ssm_ssd_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout, mm_ssm_grads *g)
{
    MMI_ASSERT(h->kind == MM_SSM_SSD); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_scan_backward";
    ssd_call c;
    ssd_bwd w;
    int64_t H = h->D, tasks = mmi_pool_size(h->pool);
    double *acc = h->ws.dacc;
    size_t slice;
    int rc;
    memset(&c, 0, sizeof c);
    c.h = h, c.in = in;
    if ((rc = check_grads(&c, fn, dout, g)) != MM_OK) return rc;
    memset(acc, 0, (size_t)(4 * H) * sizeof *acc);
    w.c = &c, w.dout = dout, w.g = g;
    mmi_pool_run(h->pool, bwd_task, &w, tasks);
    slice = (size_t)(c.Bt * c.L * c.G * h->N);
    for (size_t j = 0; j < slice; j++) { /* partial sums in task order: deterministic */
        float sb = 0.0f, sc = 0.0f;
        for (int64_t i = 0; i < tasks; i++)
            sb += h->ws.bt[(size_t)i * slice + j], sc += h->ws.ct[(size_t)i * slice + j];
        if (g->dB) g->dB->data[j] = sb;
        if (g->dC) g->dC->data[j] = sc;
    }
    for (int64_t hd = 0; hd < H; hd++) {
        if (g->dA) g->dA->data[hd] = (float)acc[hd];
        if (g->dD) g->dD->data[hd] = (float)acc[H + hd];
        if (g->ddelta_bias) g->ddelta_bias->data[hd] = (float)acc[2 * H + hd];
    }
    return MM_OK;
}

/* One token: x [Bt,H,P], dt [Bt,H], B/C [Bt,G,N]; state [Bt,H,P,N]. */
int mmi_ssm_ssd_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out)
{
    MMI_ASSERT(h->kind == MM_SSM_SSD); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_step";
    int64_t H = h->D, P = h->P, N = h->N, Bt, G, sh[1] = {H};
    int rc;
    if (!in->u || in->u->ndim != 3)
        return mmi_ssm_want(h, fn, "u (x)", in->u, 3, (int64_t[3]){1, H, P});
    Bt = in->u->shape[0];
    G = in->B && in->B->ndim == 3 ? in->B->shape[1] : h->G;
    if ((rc = mmi_ssm_want(h, fn, "u (x)", in->u, 3, (int64_t[3]){Bt, H, P})) ||
        (rc = mmi_ssm_check_bl(h, fn, Bt, 1)) ||
        (rc = mmi_ssm_want(h, fn, "delta (dt)", in->delta, 2, (int64_t[2]){Bt, H})) ||
        (rc = mmi_ssm_want(h, fn, "A", in->A, 1, sh)) ||
        (G < 1 || H % G ? (rc = mmi_fail(&h->err, MM_E_SHAPE,
                                         "%s: B has %lld groups, not a "
                                         "divisor of H %lld",
                                         fn, (long long)G, (long long)H))
                        : 0) ||
        (rc = mmi_ssm_want(h, fn, "B", in->B, 3, (int64_t[3]){Bt, G, N})) ||
        (rc = mmi_ssm_want(h, fn, "C", in->C, 3, (int64_t[3]){Bt, G, N})) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, sh))) ||
        (in->delta_bias && (rc = mmi_ssm_want(h, fn, "delta_bias", in->delta_bias, 1, sh))) ||
        (rc = mmi_ssm_want(h, fn, "out", out, 3, in->u->shape)) ||
        (rc = mmi_ssm_only_inputs(h, fn, in, "u delta A B C D delta_bias")))
        return rc;
    for (int64_t b = 0; b < Bt; b++)
        for (int64_t hd = 0; hd < H; hd++) {
            mmi_ssd_head r;
            int pass;
            const float *x = in->u->data + (b * H + hd) * P;
            const float *bb = in->B->data + (b * G + hd / (H / G)) * N;
            const float *cc = in->C->data + (b * G + hd / (H / G)) * N;
            float *S = h->ws.state + (b * H + hd) * P * N, *y = out->data + (b * H + hd) * P;
            float d, a;
            memset(&r, 0, sizeof r);
            r.bias = in->delta_bias ? in->delta_bias->data[hd] : 0.0f;
            r.softplus = (h->opts.flags & MM_SSM_DELTA_SOFTPLUS) != 0;
            r.dt_min = h->dt_min, r.dt_max = h->dt_max;
            d = mmi_ssd_dt(&r, in->delta->data[b * H + hd], &pass);
            a = expf(d * in->A->data[hd]);
            for (int64_t p = 0; p < P; p++) {
                float v = 0.0f;
                for (int64_t n = 0; n < N; n++) {
                    S[p * N + n] = a * S[p * N + n] + d * x[p] * bb[n];
                    v += S[p * N + n] * cc[n];
                }
                y[p] = v + (in->D ? in->D->data[hd] * x[p] : 0.0f);
            }
        }
    return MM_OK;
}
