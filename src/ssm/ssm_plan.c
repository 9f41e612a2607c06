/* SPDX-License-Identifier: MIT */
/* ssm_plan.c — how much workspace each kind reserves at create (element counts; ssm.c turns
 * them into one aligned block). Every product is overflow-checked. */
#include "mmi_ssm.h"

/* *o = a * b * c * d (all >= 0); -1 on overflow. */
static int mul4(size_t *o, int64_t a, int64_t b, int64_t c, int64_t d)
{
    size_t r;
    if (a < 0 || b < 0 || c < 0 || d < 0) return -1;
    if (mmi_mul_size(&r, (size_t)a, (size_t)b) || mmi_mul_size(&r, r, (size_t)c) ||
        mmi_mul_size(&r, r, (size_t)d))
        return -1;
    *o = r;
    return 0;
}

static int plan_selective(const mm_ssm *h, mmi_ssm_plan *p)
{
    int64_t D = h->D, N = h->N, B = h->max_batch, L = h->max_seq, G = h->G, T = h->chunk;
    if (mul4(&p->state, B, D, N, 1) || mul4(&p->ckpt, B, D, h->nck_max, N) ||
        mul4(&p->bt, B, G, L, N) || mul4(&p->ct, B, G, L, N) ||
        mul4(&p->dbt, B, G, L, N * h->n_threads) || mul4(&p->dct, B, G, L, N * h->n_threads) ||
        mul4(&p->dacc, D, 3 * N + 2, 1, 1) ||
        mul4(&p->work_per_thread,
             (2 * T + 1 + MMI_SEL_BLOCK_MAX) * N + (4 + 3 * MMI_SEL_BLOCK_MAX) * L +
                 48 * MMI_SEL_BLOCK_MAX + 3 * B * D + MMI_SEL_BWD_BLOCK_WORK(T, N),
             1, 1, 1))
        return MM_E_RANGE;
    return MM_OK;
}

static int plan_ssd(const mm_ssm *h, mmi_ssm_plan *p)
{
    int64_t H = h->D, P = h->P, N = h->N, B = h->max_batch, Q = h->chunk, G = h->G;
    /* bt / ct: per-thread partial sums of dB / dC over the heads of a group */
    if (mul4(&p->bt, h->n_threads, B * h->max_seq, G, N) ||
        mul4(&p->ct, h->n_threads, B * h->max_seq, G, N) || mul4(&p->state, B, H, P, N) ||
        mul4(&p->ckpt, B, H, h->nck_max + 1, P * N) || mul4(&p->dacc, H, 4, 1, 1) ||
        mul4(&p->work_per_thread, Q * P * N + Q * Q + 4 * Q + 4 * P * N, 1, 1, 1))
        return MM_E_RANGE;
    return MM_OK;
}

static int plan_lru(const mm_ssm *h, mmi_ssm_plan *p)
{
    int64_t H = h->D, N = h->N, B = h->max_batch, L = h->max_seq;
    if (mul4(&p->state, B, N, 2, 1) || mul4(&p->ckpt, B, L, N, 2) || mul4(&p->bt, N, H, 2, 1) ||
        mul4(&p->dbt, N, H, 2, 1) || mul4(&p->dct, H, N, 2, 1) ||
        mul4(&p->dacc, 8 * N + H, 1, 1, 1) || mul4(&p->work_per_thread, 4 * N + 2 * H, 1, 1, 1))
        return MM_E_RANGE;
    return MM_OK;
}

static int plan_s4(mm_ssm *h, mmi_ssm_plan *p)
{
    int64_t H = h->D, M = h->N / 2, B = h->max_batch, nf = mmi_fft_size(2 * h->max_seq);
    if (!nf) return MM_E_RANGE;
    h->nfft = nf;
    /* twiddles (nf), four complex buffers (2 nf each), a chirp (2 max_seq), then the step's
     * discretised modes (4 M H) */
    if (mul4(&p->state, B, H, M, 2) ||
        mul4(&p->fft, 9 * nf + 2 * h->max_seq + 4 * M * H, 1, 1, 1) || mul4(&p->dacc, M, 24, 1, 1))
        return MM_E_RANGE;
    return MM_OK;
}

int mmi_ssm_plan_sizes(mm_ssm *h, mmi_ssm_plan *p)
{
    switch (h->kind) {
    case MM_SSM_SELECTIVE:
        return plan_selective(h, p);
    case MM_SSM_SSD:
        return plan_ssd(h, p);
    case MM_SSM_LRU:
        return plan_lru(h, p);
    default:
        return plan_s4(h, p);
    }
}
