/* SPDX-License-Identifier: MIT */
/* loss_helpers.c — the public helpers around the losses: L2 normalisation and its backward,
 * FLIP patch masking (draw, gather, scatter), BLIP hard-negative sampling and the Kimi length
 * reward. They work on any mm_loss handle (its error text, RNG and parameters). */
#include "mmi_loss.h"

#include <math.h>

/* Rows of a tensor normalised over its last axis. */
static int64_t rows_of(const mm_tensor *t) { return t->numel / t->shape[t->ndim - 1]; }

MM_API int mm_loss_l2_normalize(mm_loss *h, const mm_tensor *u, mm_tensor *x)
{
    static const char fn[] = "mm_loss_l2_normalize";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_need(h, fn, "u", u, 0, "")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "x", x, 0, "")) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, "u", u, "x", x)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "u", u)) != MM_OK)
        return rc;
    /* x == u is in place (row by row); any other overlap would read written values. */
    if (x->data != u->data && (rc = mmi_loss_no_alias(h, fn, "x", x, "u", u)) != MM_OK) return rc;
    mmi_l2norm_fwd(u->data, rows_of(u), u->shape[u->ndim - 1], h->norm_eps, h->eps_mode, x->data);
    if (!mmi_all_finite(x->data, x->numel))
        return mmi_fail(&h->err, MM_E_NUMERIC, "%s: x overflowed float32 (eps %g too small?)", fn,
                        h->norm_eps);
    return MM_OK;
}

MM_API int mm_loss_l2_normalize_backward(mm_loss *h, const mm_tensor *u, const mm_tensor *dx,
                                         mm_tensor *du)
{
    static const char fn[] = "mm_loss_l2_normalize_backward";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_need(h, fn, "u", u, 0, "")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "dx", dx, 0, "")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "du", du, 0, "")) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, "u", u, "dx", dx)) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, "u", u, "du", du)) != MM_OK ||
        (rc = mmi_loss_no_alias(h, fn, "du", du, "u", u)) != MM_OK ||
        (du->data != dx->data && (rc = mmi_loss_no_alias(h, fn, "du", du, "dx", dx)) != MM_OK) ||
        (rc = mmi_loss_finite(h, fn, "u", u)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "dx", dx)) != MM_OK)
        return rc;
    mmi_l2norm_bwd(u->data, dx->data, rows_of(u), u->shape[u->ndim - 1], h->norm_eps, h->eps_mode,
                   du->data);
    if (!mmi_all_finite(du->data, du->numel))
        return mmi_fail(&h->err, MM_E_NUMERIC, "%s: du overflowed float32 (eps %g too small?)", fn,
                        h->norm_eps);
    return MM_OK;
}

MM_API int mm_loss_flip_draw(mm_loss *h, int64_t batch, int64_t n_patches, int64_t n_keep,
                             int32_t *keep)
{
    static const char fn[] = "mm_loss_flip_draw";
    if (!h) return MM_E_INVALID_ARG;
    if (!keep) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: keep is NULL", fn);
    if (batch < 1 || n_patches < 1 || n_patches > INT32_MAX || n_keep < 1 || n_keep > n_patches)
        return mmi_fail(&h->err, MM_E_RANGE,
                        "%s: batch %lld, n_patches %lld, n_keep %lld: need batch >= 1 and "
                        "1 <= n_keep <= n_patches < 2^31",
                        fn, (long long)batch, (long long)n_patches, (long long)n_keep);
    mmi_patch_draw(&h->rng, batch, n_patches, n_keep, keep);
    return MM_OK;
}

/* Shapes of gather/scatter: full [B, L, D], kept [B, n_keep, D]; indices in [0, L). */
static int check_patches(mm_loss *h, const char *fn, const char *nfull, const mm_tensor *full,
                         const char *nkept, const mm_tensor *kept, const int32_t *keep,
                         int64_t n_keep)
{
    int rc;
    int64_t b, l;
    if ((rc = mmi_loss_need(h, fn, nfull, full, 3, "[B, L, D]")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, nkept, kept, 3, "[B, n_keep, D]")) != MM_OK)
        return rc;
    if (!keep) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: keep is NULL", fn);
    b = full->shape[0];
    l = full->shape[1];
    if (kept->shape[0] != b || kept->shape[1] != n_keep || kept->shape[2] != full->shape[2]) {
        char sf[96], sk[96];
        mmi_tensor_shape_str(full, sf, sizeof sf);
        mmi_tensor_shape_str(kept, sk, sizeof sk);
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: %s is %s and n_keep is %lld, so %s must be "
                        "[%lld,%lld,%lld], not %s",
                        fn, nfull, sf, (long long)n_keep, nkept, (long long)b, (long long)n_keep,
                        (long long)full->shape[2], sk);
    }
    for (int64_t i = 0; i < b * n_keep; i++)
        if (keep[i] < 0 || keep[i] >= l)
            return mmi_fail(&h->err, MM_E_RANGE, "%s: keep[%lld] = %d is outside [0, %lld)", fn,
                            (long long)i, (int)keep[i], (long long)l);
    return mmi_loss_no_alias(h, fn, nkept, kept, nfull, full);
}

/* The output of a gather or scatter over its indices: the scatter zeroes dx before reading
 * keep, and either would read indices it had overwritten. */
static int keep_apart(mm_loss *h, const char *fn, const char *nout, const mm_tensor *out,
                      const int32_t *keep, int64_t n_keep)
{
    return mmi_loss_no_alias_raw(h, fn, nout, out->data, sizeof(float) * (size_t)out->numel, "keep",
                                 keep, sizeof(int32_t) * (size_t)(out->shape[0] * n_keep));
}

MM_API int mm_loss_flip_gather(mm_loss *h, const mm_tensor *x, const int32_t *keep, int64_t n_keep,
                               mm_tensor *out)
{
    static const char fn[] = "mm_loss_flip_gather";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = check_patches(h, fn, "x", x, "out", out, keep, n_keep)) != MM_OK ||
        (rc = keep_apart(h, fn, "out", out, keep, n_keep)) != MM_OK)
        return rc;
    mmi_patch_gather(x->data, keep, x->shape[0], x->shape[1], n_keep, x->shape[2], out->data);
    return MM_OK;
}

MM_API int mm_loss_flip_scatter(mm_loss *h, const mm_tensor *dout, const int32_t *keep,
                                int64_t n_keep, mm_tensor *dx)
{
    static const char fn[] = "mm_loss_flip_scatter";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = check_patches(h, fn, "dx", dx, "dout", dout, keep, n_keep)) != MM_OK ||
        (rc = keep_apart(h, fn, "dx", dx, keep, n_keep)) != MM_OK)
        return rc;
    mmi_patch_scatter(dout->data, keep, dx->shape[0], dx->shape[1], n_keep, dx->shape[2], dx->data);
    return MM_OK;
}

MM_API int mm_loss_blip_hard_negatives(mm_loss *h, const mm_tensor *sim, const int64_t *ids,
                                       int32_t by_column, int32_t *neg)
{
    static const char fn[] = "mm_loss_blip_hard_negatives";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_need(h, fn, "sim", sim, 2, "[B, M]")) != MM_OK) return rc;
    if (!neg) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: neg is NULL", fn);
    if (by_column != 0 && by_column != 1)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: by_column is %d, expected 0 or 1", fn,
                        (int)by_column);
    if (sim->shape[1] < sim->shape[0]) {
        char s[96];
        mmi_tensor_shape_str(sim, s, sizeof s);
        return mmi_fail(&h->err, MM_E_SHAPE, "%s: sim is %s but needs M >= B columns [B, M]", fn,
                        s);
    }
    if ((rc = mmi_loss_within(h, fn, "sim", sim->shape[0], -1)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "sim", sim)) != MM_OK ||
        (rc = mmi_loss_no_alias_raw(h, fn, "neg", neg, sizeof(int32_t) * (size_t)sim->shape[0],
                                    "sim", sim->data, sizeof(float) * (size_t)sim->numel)) !=
            MM_OK ||
        (rc = mmi_loss_no_alias_raw(h, fn, "neg", neg, sizeof(int32_t) * (size_t)sim->shape[0],
                                    "ids", ids, sizeof(int64_t) * (size_t)sim->shape[0])) != MM_OK)
        return rc;
    mmi_blip_hard_negatives(sim->data, sim->shape[1], sim->shape[0], ids, by_column, &h->rng,
                            h->blip_w, neg);
    return MM_OK;
}

MM_API int mm_loss_kimi_length_reward(mm_loss *h, const int64_t *lengths, const mm_tensor *rewards,
                                      int64_t group_size, mm_tensor *out)
{
    static const char fn[] = "mm_loss_kimi_length_reward";
    int64_t n;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if (!lengths) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: lengths is NULL", fn);
    if ((rc = mmi_loss_need(h, fn, "rewards", rewards, 0, "")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "out", out, 0, "")) != MM_OK)
        return rc;
    n = rewards->numel;
    if (out->numel != n)
        return mmi_fail(&h->err, MM_E_SHAPE, "%s: out has %lld elements but rewards has %lld", fn,
                        (long long)out->numel, (long long)n);
    if (group_size < 1 || n % group_size != 0)
        return mmi_fail(&h->err, group_size < 1 ? MM_E_RANGE : MM_E_SHAPE,
                        "%s: group_size %lld must be >= 1 and divide the %lld rewards", fn,
                        (long long)group_size, (long long)n);
    if (out->data != rewards->data &&
        (rc = mmi_loss_no_alias(h, fn, "out", out, "rewards", rewards)) != MM_OK)
        return rc;
    if ((rc = mmi_loss_finite(h, fn, "rewards", rewards)) != MM_OK ||
        (rc = mmi_loss_no_alias_raw(h, fn, "out", out->data, sizeof(float) * (size_t)n, "lengths",
                                    lengths, sizeof(int64_t) * (size_t)n)) != MM_OK)
        return rc;
    for (int64_t i = 0; i < n; i++)
        if (lengths[i] < 0)
            return mmi_fail(&h->err, MM_E_RANGE, "%s: lengths[%lld] = %lld is negative", fn,
                            (long long)i, (long long)lengths[i]);
    mmi_kimi_length_reward(lengths, rewards->data, n, group_size, out->data);
    return MM_OK;
}
