/* SPDX-License-Identifier: MIT */
/* loss_rows.c — the row-wise compute calls: mm_loss_cross_entropy, mm_loss_bce, mm_loss_kimi.
 * Validation here, arithmetic in src/kernels/loss/loss_row_kernels.c. */
#include "mmi_loss.h"

#include <math.h>

/* logits [N, C] within the reservation and finite; dlogits optional, same shape, no alias. */
static int check_logits(mm_loss *h, const char *fn, const mm_tensor *z, const mm_tensor *dz)
{
    int rc;
    if ((rc = mmi_loss_need(h, fn, "logits", z, 2, "[N, C]")) != MM_OK ||
        (rc = mmi_loss_within(h, fn, "logits", z->shape[0], z->shape[1])) != MM_OK)
        return rc;
    if (dz && ((rc = mmi_loss_need(h, fn, "dlogits", dz, 2, "[N, C]")) != MM_OK ||
               (rc = mmi_loss_same_shape(h, fn, "logits", z, "dlogits", dz)) != MM_OK ||
               (rc = mmi_loss_no_alias(h, fn, "dlogits", dz, "logits", z)) != MM_OK))
        return rc;
    return mmi_loss_finite(h, fn, "logits", z);
}

/* Counts the rows that are not ignored; refuses targets outside [0, C). */
static int check_targets(mm_loss *h, const char *fn, const int32_t *t, int64_t n, int64_t c,
                         int64_t *n_valid)
{
    *n_valid = 0;
    for (int64_t i = 0; i < n; i++) {
        if (t[i] == h->ignore_index) continue;
        if (t[i] < 0 || (int64_t)t[i] >= c)
            return mmi_fail(&h->err, MM_E_RANGE,
                            "%s: targets[%lld] = %d is outside [0, %lld) and is not the "
                            "ignore index %d",
                            fn, (long long)i, (int)t[i], (long long)c, (int)h->ignore_index);
        (*n_valid)++;
    }
    return MM_OK;
}

MM_API int mm_loss_cross_entropy(mm_loss *h, const mm_tensor *logits, const int32_t *targets,
                                 int64_t n_targets, double *loss, mm_tensor *dlogits)
{
    static const char fn[] = "mm_loss_cross_entropy";
    int64_t n_valid, n, c;
    double sum;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_CROSS_ENTROPY)) != MM_OK ||
        (rc = check_logits(h, fn, logits, dlogits)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, dlogits, "dlogits", NULL, NULL)) != MM_OK)
        return rc;
    n = logits->shape[0];
    c = logits->shape[1];
    if (!targets) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: targets is NULL", fn);
    if (n_targets != n)
        return mmi_fail(&h->err, MM_E_SHAPE, "%s: %lld targets for logits [%lld,%lld]", fn,
                        (long long)n_targets, (long long)n, (long long)c);
    if ((rc = check_targets(h, fn, targets, n, c, &n_valid)) != MM_OK ||
        (dlogits && (rc = mmi_loss_no_alias_raw(h, fn, "dlogits", dlogits->data,
                                                sizeof(float) * (size_t)dlogits->numel, "targets",
                                                targets, sizeof(int32_t) * (size_t)n)) != MM_OK))
        return rc;
    sum = mmi_loss_ce_rows(logits->data, targets, n, c, h->smoothing, h->ignore_index, n_valid,
                           h->grad_scale, dlogits ? dlogits->data : NULL);
    h->st_loss = n_valid > 0 ? sum / (double)n_valid : 0.0;
    h->st_valid = (double)n_valid;
    if (loss) *loss = h->st_loss;
    return MM_OK;
}

MM_API int mm_loss_bce(mm_loss *h, const mm_tensor *logits, const mm_tensor *targets, double *loss,
                       mm_tensor *dlogits)
{
    static const char fn[] = "mm_loss_bce";
    double n;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_BCE)) != MM_OK ||
        (rc = check_logits(h, fn, logits, dlogits)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, dlogits, "dlogits", NULL, NULL)) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "targets", targets, 2, "[N, C]")) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, "logits", logits, "targets", targets)) != MM_OK ||
        (rc = mmi_loss_no_alias(h, fn, "dlogits", dlogits, "targets", targets)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "targets", targets)) != MM_OK)
        return rc;
    for (int64_t i = 0; i < targets->numel; i++)
        if (targets->data[i] < 0.0f || targets->data[i] > 1.0f)
            return mmi_fail(&h->err, MM_E_RANGE, "%s: targets[%lld] = %g is outside [0, 1]", fn,
                            (long long)i, (double)targets->data[i]);
    n = (double)logits->shape[0];
    h->st_loss = mmi_loss_bce_sum(logits->data, targets->data, logits->numel, h->grad_scale / n,
                                  dlogits ? dlogits->data : NULL) /
                 n;
    h->st_valid = n;
    if (loss) *loss = h->st_loss;
    return MM_OK;
}

/* logp, logp_old, rewards (and dlogp): [N] or [N/k, k], alike, finite, N a multiple of k. */
static int check_kimi(mm_loss *h, const char *fn, const mm_tensor *const *t, const mm_tensor *dlogp)
{
    static const char *const names[3] = {"logp", "logp_old", "rewards"};
    int64_t n;
    int rc;
    for (int i = 0; i < 3; i++) {
        if ((rc = mmi_loss_need(h, fn, names[i], t[i], 0, "")) != MM_OK) return rc;
        if (i && (rc = mmi_loss_same_shape(h, fn, "logp", t[0], names[i], t[i])) != MM_OK)
            return rc;
    }
    n = t[0]->numel;
    if (t[0]->ndim > 2 || (t[0]->ndim == 2 && t[0]->shape[1] != h->group_size) ||
        n % h->group_size != 0) {
        char s[96];
        mmi_tensor_shape_str(t[0], s, sizeof s);
        return mmi_fail(&h->err, MM_E_SHAPE,
                        "%s: logp is %s; expected [N] or [N/k, k] with "
                        "group_size k = %lld dividing N",
                        fn, s, (long long)h->group_size);
    }
    if ((rc = mmi_loss_within(h, fn, "logp", n, -1)) != MM_OK) return rc;
    if (dlogp && ((rc = mmi_loss_same_shape(h, fn, "logp", t[0], "dlogp", dlogp)) != MM_OK))
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = mmi_loss_no_alias(h, fn, "dlogp", dlogp, names[i], t[i])) != MM_OK ||
            (rc = mmi_loss_finite(h, fn, names[i], t[i])) != MM_OK)
            return rc;
    return MM_OK;
}

MM_API int mm_loss_kimi(mm_loss *h, const mm_tensor *logp, const mm_tensor *logp_old,
                        const mm_tensor *rewards, double *loss, mm_tensor *dlogp)
{
    static const char fn[] = "mm_loss_kimi";
    const mm_tensor *t[3] = {logp, logp_old, rewards};
    double l, gmax;
    int64_t n;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_KIMI)) != MM_OK ||
        (rc = check_kimi(h, fn, t, dlogp)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, dlogp, "dlogp", NULL, NULL)) != MM_OK)
        return rc;
    n = logp->numel;
    /* Loss first: only write dlogp once it is known to fit float32 (|e_j| <= sqrt(N loss)). */
    l = mmi_loss_kimi(logp->data, logp_old->data, rewards->data, n, h->group_size, h->tau,
                      h->baseline, h->grad_scale, NULL);
    gmax = 2.0 * h->tau * fabs(h->grad_scale) * sqrt((double)n * l) / (double)n;
    if (!isfinite(l) || !(gmax < 1e38))
        return mmi_fail(&h->err, MM_E_NUMERIC,
                        "%s: the loss or its gradient overflows (loss "
                        "%g); are the log-probabilities and rewards sane?",
                        fn, l);
    if (dlogp)
        (void)mmi_loss_kimi(logp->data, logp_old->data, rewards->data, n, h->group_size, h->tau,
                            h->baseline, h->grad_scale, dlogp->data);
    h->st_loss = l;
    h->st_valid = (double)n;
    if (loss) *loss = l;
    return MM_OK;
}
