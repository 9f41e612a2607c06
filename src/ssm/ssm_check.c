/* SPDX-License-Identifier: MIT */
/* ssm_check.c — argument checks shared by the mm_ssm calls: tensor shapes against what the
 * kind expects (messages name both shapes), unused inputs, and the reservation. */
#include "mmi_ssm.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void shape_str(char *buf, size_t n, int32_t ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int32_t i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

int mmi_ssm_apart(mm_ssm *h, const char *fn, int n, const mm_tensor *const *t,
                  const char *const *name, int first_out)
{
    return mmi_tensor_apart(&h->err, fn, n, t, name, first_out);
}

int mmi_ssm_want(mm_ssm *h, const char *fn, const char *name, const mm_tensor *t, int32_t ndim,
                 const int64_t *shape)
{
    char got[96], want[96];
    int same;
    if (!t) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, name);
    same = t->ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return MM_OK;
    mmi_tensor_shape_str(t, got, sizeof got);
    shape_str(want, sizeof want, ndim, shape);
    return mmi_fail(&h->err, MM_E_SHAPE, "%s: %s is %s but expected %s", fn, name, got, want);
}

/* The tensor fields of mm_ssm_inputs and mm_ssm_grads: the same names in the same order. */
static const struct {
    const char *name;
    size_t in_off, g_off;
} k_fields[] = {
    {"u", offsetof(mm_ssm_inputs, u), offsetof(mm_ssm_grads, du)},
    {"delta", offsetof(mm_ssm_inputs, delta), offsetof(mm_ssm_grads, ddelta)},
    {"A", offsetof(mm_ssm_inputs, A), offsetof(mm_ssm_grads, dA)},
    {"B", offsetof(mm_ssm_inputs, B), offsetof(mm_ssm_grads, dB)},
    {"C", offsetof(mm_ssm_inputs, C), offsetof(mm_ssm_grads, dC)},
    {"D", offsetof(mm_ssm_inputs, D), offsetof(mm_ssm_grads, dD)},
    {"z", offsetof(mm_ssm_inputs, z), offsetof(mm_ssm_grads, dz)},
    {"delta_bias", offsetof(mm_ssm_inputs, delta_bias), offsetof(mm_ssm_grads, ddelta_bias)},
    {"init_state", offsetof(mm_ssm_inputs, init_state), offsetof(mm_ssm_grads, dinit_state)},
    {"log_dt", offsetof(mm_ssm_inputs, log_dt), offsetof(mm_ssm_grads, dlog_dt)},
    {"A_real", offsetof(mm_ssm_inputs, A_real), offsetof(mm_ssm_grads, dA_real)},
    {"A_imag", offsetof(mm_ssm_inputs, A_imag), offsetof(mm_ssm_grads, dA_imag)},
    {"P", offsetof(mm_ssm_inputs, P), offsetof(mm_ssm_grads, dP)},
    {"nu_log", offsetof(mm_ssm_inputs, nu_log), offsetof(mm_ssm_grads, dnu_log)},
    {"theta_log", offsetof(mm_ssm_inputs, theta_log), offsetof(mm_ssm_grads, dtheta_log)},
    {"gamma_log", offsetof(mm_ssm_inputs, gamma_log), offsetof(mm_ssm_grads, dgamma_log)},
};

/* 1 if name is one of the space-separated words of list. */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && memcmp(p, name, n) == 0) return 1;
        p += w;
        p += strspn(p, " ");
    }
    return 0;
}

static int only_fields(mm_ssm *h, const char *fn, const void *s, int grads, const char *used)
{
    static const char *const kinds[] = {"",           "MM_SSM_SELECTIVE", "MM_SSM_SSD",
                                        "MM_SSM_S4D", "MM_SSM_S4",        "MM_SSM_LRU"};
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        const mm_tensor *t;
        memcpy(&t, (const char *)s + (grads ? k_fields[i].g_off : k_fields[i].in_off), sizeof t);
        if (t && !in_list(used, k_fields[i].name))
            return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s%s is not an input of %s (pass NULL)",
                            fn, grads ? "d" : "", k_fields[i].name, kinds[h->kind]);
    }
    return MM_OK;
}

int mmi_ssm_only_inputs(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const char *used)
{
    return only_fields(h, fn, in, 0, used);
}

int mmi_ssm_only_grads(mm_ssm *h, const char *fn, const mm_ssm_grads *g, const char *used)
{
    return only_fields(h, fn, g, 1, used);
}

int mmi_ssm_check_bl(mm_ssm *h, const char *fn, int64_t batch, int64_t len)
{
    if (batch > h->max_batch)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: batch %lld exceeds max_batch %lld", fn,
                        (long long)batch, (long long)h->max_batch);
    if (len > h->max_seq)
        return mmi_fail(&h->err, MM_E_RANGE, "%s: length %lld exceeds max_seq %lld", fn,
                        (long long)len, (long long)h->max_seq);
    return MM_OK;
}

int mmi_ssm_grad_like(mm_ssm *h, const char *fn, const char *name, const mm_tensor *g,
                      const mm_tensor *in)
{
    if (!g) return MM_OK;
    if (!in)
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s requested but its input is NULL", fn,
                        name);
    return mmi_ssm_want(h, fn, name, g, in->ndim, in->shape);
}
