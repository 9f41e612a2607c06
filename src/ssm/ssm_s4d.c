/* SPDX-License-Identifier: MIT */
/* ssm_s4d.c — MM_SSM_S4D: validates the diagonal parameters (log_dt [H], A_real = log_A_real
 * and A_imag [H,N/2], C and optional B [H,N/2,x2], D [H]) and runs the Vandermonde kernel and
 * its gradients per channel (src/kernels/ssm/s4d_kernel.c), and the ZOH recurrence for streaming. */
#include "mmi_ssm.h"

#include <math.h>
#include <string.h>

static int check_params(mm_ssm *h, const char *fn, const mm_ssm_inputs *in)
{
    int64_t H = h->D, M = h->N / 2, sh[1] = {H}, sm[2] = {H, M}, sc[3] = {H, M, 2};
    int rc;
    if ((rc = mmi_ssm_want(h, fn, "log_dt", in->log_dt, 1, sh)) ||
        (rc = mmi_ssm_want(h, fn, "A_real", in->A_real, 2, sm)) ||
        (rc = mmi_ssm_want(h, fn, "A_imag", in->A_imag, 2, sm)) ||
        (rc = mmi_ssm_want(h, fn, "C", in->C, 3, sc)) ||
        (in->B && (rc = mmi_ssm_want(h, fn, "B", in->B, 3, sc))) ||
        (rc = mmi_ssm_only_inputs(h, fn, in, "u B C D log_dt A_real A_imag")))
        return rc;
    return MM_OK;
}

static void channel(const mm_ssm *h, const mm_ssm_inputs *in, int64_t c, mmi_s4d_ch *ch)
{
    int64_t M = h->N / 2;
    ch->M = M;
    ch->dt = exp((double)in->log_dt->data[c]);
    ch->lar = in->A_real->data + c * M;
    ch->aim = in->A_imag->data + c * M;
    ch->c = in->C->data + c * 2 * M;
    ch->b = in->B ? in->B->data + c * 2 * M : NULL;
}

static int check_k(mm_ssm *h, const char *fn, const char *name, const mm_tensor *k)
{
    if (!k || k->ndim != 2 || k->shape[0] != h->D)
        return mmi_ssm_want(h, fn, name, k, 2,
                            (int64_t[2]){h->D, k && k->ndim == 2 ? k->shape[1] : 1});
    return mmi_ssm_check_bl(h, fn, 1, k->shape[1]);
}

int mmi_ssm_s4d_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k)
{
    MMI_ASSERT(h->kind == MM_SSM_S4D); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_kernel";
    mmi_s4d_ch ch;
    int64_t L;
    int rc;
    /* u and D (inputs of mm_ssm_step and mm_ssm_conv) may be set; the kernel ignores them */
    if ((rc = check_params(h, fn, in)) || (rc = check_k(h, fn, "k", k))) return rc;
    L = k->shape[1];
    for (int64_t c = 0; c < h->D; c++) {
        channel(h, in, c, &ch);
        mmi_s4d_kernel_row(&ch, L, k->data + c * L, h->ws.fft + h->nfft);
    }
    return MM_OK;
}

int mmi_ssm_s4d_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dk,
                                mm_ssm_grads *g)
{
    MMI_ASSERT(h->kind == MM_SSM_S4D); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_kernel_backward";
    mmi_s4d_ch ch;
    int64_t L, M = h->N / 2;
    int rc;
    if ((rc = check_params(h, fn, in)) || (rc = check_k(h, fn, "dk", dk))) return rc;
    if ((rc = mmi_ssm_grad_like(h, fn, "dlog_dt", g->dlog_dt, in->log_dt)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dA_real", g->dA_real, in->A_real)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dA_imag", g->dA_imag, in->A_imag)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dC", g->dC, in->C)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dB", g->dB, in->B)) ||
        (rc = mmi_ssm_only_grads(h, fn, g, "B C log_dt A_real A_imag")))
        return rc;
    L = dk->shape[1];
    for (int64_t c = 0; c < h->D; c++) {
        double d;
        channel(h, in, c, &ch);
        d = mmi_s4d_kernel_row_bwd(
            &ch, L, dk->data + c * L, g->dA_real ? g->dA_real->data + c * M : NULL,
            g->dA_imag ? g->dA_imag->data + c * M : NULL, g->dC ? g->dC->data + c * 2 * M : NULL,
            g->dB ? g->dB->data + c * 2 * M : NULL);
        if (g->dlog_dt) g->dlog_dt->data[c] = (float)d;
    }
    return MM_OK;
}

/* One token: u [Bt,H] -> out [Bt,H]; x <- e^{dtA} x + B (e^{dtA}-1)/A u; y = 2 Re(C x) + D u.
 * The discretised modes are recomputed per call (O(H N), like the token's own work). */
int mmi_ssm_s4d_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out)
{
    MMI_ASSERT(h->kind == MM_SSM_S4D); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_step";
    int64_t H = h->D, M = h->N / 2, Bt;
    double *da = h->ws.fft + 9 * h->nfft + 2 * h->max_seq, *db = da + 2 * M * H;
    mmi_s4d_ch ch;
    int rc;
    if (!in->u || in->u->ndim != 2) return mmi_ssm_want(h, fn, "u", in->u, 2, (int64_t[2]){1, H});
    Bt = in->u->shape[0];
    if ((rc = mmi_ssm_want(h, fn, "u", in->u, 2, (int64_t[2]){Bt, H})) ||
        (rc = mmi_ssm_check_bl(h, fn, Bt, 1)) || (rc = check_params(h, fn, in)) ||
        (in->D && (rc = mmi_ssm_want(h, fn, "D", in->D, 1, (int64_t[1]){H}))) ||
        (rc = mmi_ssm_want(h, fn, "out", out, 2, in->u->shape)))
        return rc;
    for (int64_t c = 0; c < H; c++) {
        channel(h, in, c, &ch);
        mmi_s4d_zoh(&ch, da + 2 * M * c, db + 2 * M * c);
    }
    for (int64_t b = 0; b < Bt; b++)
        for (int64_t c = 0; c < H; c++) {
            float u = in->u->data[b * H + c];
            double y0 = in->D ? (double)in->D->data[c] * u : 0.0;
            float *x = h->ws.state + (b * H + c) * 2 * M;
            out->data[b * H + c] = (float)mmi_s4d_step_modes(M, da + 2 * M * c, db + 2 * M * c,
                                                             in->C->data + c * 2 * M, u, y0, x);
        }
    return MM_OK;
}
