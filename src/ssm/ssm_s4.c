/* SPDX-License-Identifier: MIT */
/* ssm_s4.c — MM_SSM_S4: validates the DPLR parameters given as data (docs/SSM.md §MM_SSM_S4: the
 * eigenvector phase and B clipping of s4's nplr make them implementation-dependent, so they
 * are inputs, not recomputed): log_dt [H], A = Lambda, P, B, C = C~ [H,N/2,x2] (u and D, the
 * convolution's inputs, may be set and are ignored), and runs the
 * Cauchy-kernel generating function per channel (src/kernels/ssm/s4_kernel.c). */
#include "mmi_ssm.h"

#include <math.h>

static int check_params(mm_ssm *h, const char *fn, const mm_ssm_inputs *in)
{
    int64_t H = h->D, M = h->N / 2, sc[3] = {H, M, 2};
    int rc;
    if ((rc = mmi_ssm_want(h, fn, "log_dt", in->log_dt, 1, (int64_t[1]){H})) ||
        (rc = mmi_ssm_want(h, fn, "A (Lambda)", in->A, 3, sc)) ||
        (rc = mmi_ssm_want(h, fn, "P", in->P, 3, sc)) ||
        (rc = mmi_ssm_want(h, fn, "B", in->B, 3, sc)) ||
        (rc = mmi_ssm_want(h, fn, "C", in->C, 3, sc)) ||
        (rc = mmi_ssm_only_inputs(h, fn, in, "u A B C D log_dt P")))
        return rc;
    return MM_OK;
}

static int check_k(mm_ssm *h, const char *fn, const char *name, const mm_tensor *k)
{
    if (!k || k->ndim != 2 || k->shape[0] != h->D)
        return mmi_ssm_want(h, fn, name, k, 2,
                            (int64_t[2]){h->D, k && k->ndim == 2 ? k->shape[1] : 1});
    return mmi_ssm_check_bl(h, fn, 1, k->shape[1]);
}

static void setup(const mm_ssm *h, const mm_ssm_inputs *in, int64_t c, mmi_s4_ch *ch, mmi_s4_ws *ws)
{
    int64_t M = h->N / 2, nf = h->nfft;
    ch->M = M;
    ch->dt = exp((double)in->log_dt->data[c]);
    ch->lam = in->A->data + c * 2 * M, ch->p = in->P->data + c * 2 * M;
    ch->b = in->B->data + c * 2 * M, ch->c = in->C->data + c * 2 * M;
    ws->tw = h->ws.fft, ws->tw_n = nf;
    ws->x = h->ws.fft + nf, ws->w1 = ws->x + 2 * nf, ws->w2 = ws->w1 + 2 * nf;
    ws->chirp = h->ws.fft + 9 * nf;
    ws->acc = h->ws.dacc;
}

int mmi_ssm_s4_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k)
{
    MMI_ASSERT(h->kind == MM_SSM_S4); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_kernel";
    mmi_s4_ch ch;
    mmi_s4_ws ws;
    int rc;
    if ((rc = check_params(h, fn, in)) || (rc = check_k(h, fn, "k", k))) return rc;
    for (int64_t c = 0; c < h->D; c++) {
        setup(h, in, c, &ch, &ws);
        mmi_s4_kernel_row(&ch, k->shape[1], k->data + c * k->shape[1], &ws);
    }
    return MM_OK;
}

int mmi_ssm_s4_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dk,
                               mm_ssm_grads *g)
{
    MMI_ASSERT(h->kind == MM_SSM_S4); /* ssm_api.c dispatches by kind */
    static const char fn[] = "mm_ssm_kernel_backward";
    int64_t M = h->N / 2, L;
    mmi_s4_ch ch;
    mmi_s4_ws ws;
    int rc;
    if ((rc = check_params(h, fn, in)) || (rc = check_k(h, fn, "dk", dk))) return rc;
    if ((rc = mmi_ssm_grad_like(h, fn, "dlog_dt", g->dlog_dt, in->log_dt)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dA", g->dA, in->A)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dP", g->dP, in->P)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dB", g->dB, in->B)) ||
        (rc = mmi_ssm_grad_like(h, fn, "dC", g->dC, in->C)) ||
        (rc = mmi_ssm_only_grads(h, fn, g, "A B C log_dt P")))
        return rc;
    L = dk->shape[1];
    for (int64_t c = 0; c < h->D; c++) {
        double d;
        setup(h, in, c, &ch, &ws);
        d = mmi_s4_kernel_row_bwd(&ch, L, dk->data + c * L, g->dA ? g->dA->data + c * 2 * M : NULL,
                                  g->dP ? g->dP->data + c * 2 * M : NULL,
                                  g->dB ? g->dB->data + c * 2 * M : NULL,
                                  g->dC ? g->dC->data + c * 2 * M : NULL, &ws);
        if (g->dlog_dt) g->dlog_dt->data[c] = (float)d;
    }
    return MM_OK;
}
