/* SPDX-License-Identifier: MIT */
/* ssm_api.c — the public compute calls of mm_ssm: common argument checks, then dispatch to
 * the kind's implementation (ssm_<kind>.c). Every call clears the handle's error text first
 * and invalidates the saved forward on failure. */
#include "mmi_ssm.h"

#include <string.h>

static int check_struct(mm_ssm *h, const char *fn, const void *s, size_t lib_size, const char *what)
{
    uint32_t size;
    if (!s) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: %s is NULL", fn, what);
    memcpy(&size, s, sizeof size);
    if (size != lib_size)
        return mmi_fail(&h->err, size > lib_size ? MM_E_VERSION : MM_E_INVALID_ARG,
                        "%s: %s struct_size is %u, expected %zu (call %s_init)", fn, what,
                        (unsigned)size, lib_size, what);
    return MM_OK;
}

enum { N_IN = 16 };
static const char *const in_names[N_IN + 3] = {
    "u",          "delta",      "A",      "B",          "C",      "D", "z",
    "delta_bias", "init_state", "log_dt", "A_real",     "A_imag", "P", "nu_log",
    "theta_log",  "gamma_log",  "out",    "last_state", "k"};
static const char *const grad_names[N_IN + 1] = {
    "dout",    "du", "ddelta",      "dA",          "dB",        "dC",
    "dD",      "dz", "ddelta_bias", "dinit_state", "dlog_dt",   "dA_real",
    "dA_imag", "dP", "dnu_log",     "dtheta_log",  "dgamma_log"};

static void list_inputs(const mm_ssm_inputs *in, const mm_tensor **t)
{
    const mm_tensor *all[N_IN] = {in->u,          in->delta,  in->A,         in->B,
                                  in->C,          in->D,      in->z,         in->delta_bias,
                                  in->init_state, in->log_dt, in->A_real,    in->A_imag,
                                  in->P,          in->nu_log, in->theta_log, in->gamma_log};
    memcpy(t, all, sizeof all);
}

/* MM_OK, or MM_E_INVALID_ARG naming an output (out, last_state or k; NULL: absent) that shares
 * memory with an input or with the other output: the scans and the kernel read inputs while
 * writing outputs, and the backwards read the inputs again. */
static int outs_apart(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const mm_tensor *out,
                      const mm_tensor *last, const mm_tensor *k)
{
    const mm_tensor *t[N_IN + 3];
    list_inputs(in, t);
    t[N_IN] = out, t[N_IN + 1] = last, t[N_IN + 2] = k;
    return mmi_ssm_apart(h, fn, N_IN + 3, t, in_names, N_IN);
}

/* MM_OK, or MM_E_INVALID_ARG naming a requested gradient that shares memory with an input, the
 * upstream gradient up (named upname) or another gradient: a gradient written over dout, or
 * over another gradient, is read back by a kernel that still needs the other. */
static int grads_apart(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const mm_ssm_grads *g,
                       const mm_tensor *up, const char *upname)
{
    const mm_tensor *t[2 * N_IN + 1] = {0};
    const char *names[2 * N_IN + 1];
    const mm_tensor *gs[N_IN] = {g->du,          g->ddelta,  g->dA,         g->dB,
                                 g->dC,          g->dD,      g->dz,         g->ddelta_bias,
                                 g->dinit_state, g->dlog_dt, g->dA_real,    g->dA_imag,
                                 g->dP,          g->dnu_log, g->dtheta_log, g->dgamma_log};
    list_inputs(in, t);
    memcpy(names, in_names, sizeof(char *) * N_IN);
    t[N_IN] = up, names[N_IN] = upname;
    memcpy(t + N_IN + 1, gs, sizeof gs);
    memcpy(names + N_IN + 1, grad_names + 1, sizeof(char *) * N_IN);
    return mmi_ssm_apart(h, fn, 2 * N_IN + 1, t, names, N_IN + 1);
}

/* MM_OK, or MM_E_INVALID_ARG naming an input or out of a step that shares memory with the
 * streaming state (a caller reaches it through mm_ssm_state): the step updates the state row by
 * row while later rows' inputs are still to be read. The scans neither read nor write that
 * state, so a scan may take it as init_state or last_state. */
static int state_apart(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const mm_tensor *out)
{
    const mm_tensor *t[N_IN + 1];
    list_inputs(in, t);
    t[N_IN] = out;
    for (int i = 0; i <= N_IN; i++)
        if (t[i] && mmi_overlaps(t[i]->data, sizeof(float) * (size_t)t[i]->numel, h->ws.state,
                                 sizeof(float) * (size_t)h->state_n))
            return mmi_fail(&h->err, MM_E_INVALID_ARG,
                            "%s: %s shares memory with the streaming state (mm_ssm_state)", fn,
                            in_names[i]);
    return MM_OK;
}

static int wrong_kind(mm_ssm *h, const char *fn, const char *kinds)
{
    return mmi_fail(&h->err, MM_E_INVALID_ARG,
                    "%s: this handle's kind has no such call (%s "
                    "only)",
                    fn, kinds);
}

MM_API int mm_ssm_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last)
{
    static const char fn[] = "mm_ssm_scan";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    h->fwd_valid = 0;
    if ((rc = check_struct(h, fn, in, sizeof *in, "mm_ssm_inputs")) != MM_OK) return rc;
    if (!out) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: out is NULL", fn);
    if ((rc = outs_apart(h, fn, in, out, last, NULL)) != MM_OK) return rc;
    switch (h->kind) {
    case MM_SSM_SELECTIVE:
        rc = mmi_ssm_sel_scan(h, in, out, last);
        break;
    case MM_SSM_SSD:
        rc = mmi_ssm_ssd_scan(h, in, out, last);
        break;
    case MM_SSM_LRU:
        rc = mmi_ssm_lru_scan(h, in, out, last);
        break;
    default:
        return wrong_kind(h, fn, "SELECTIVE, SSD, LRU");
    }
    h->fwd_valid = rc == MM_OK;
    return rc;
}

MM_API int mm_ssm_scan_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout,
                                mm_ssm_grads *g)
{
    static const char fn[] = "mm_ssm_scan_backward";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_struct(h, fn, in, sizeof *in, "mm_ssm_inputs")) != MM_OK ||
        (rc = check_struct(h, fn, g, sizeof *g, "mm_ssm_grads")) != MM_OK)
        return rc;
    if (!dout) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: dout is NULL", fn);
    if ((rc = grads_apart(h, fn, in, g, dout, "dout")) != MM_OK) return rc;
    if (h->kind != MM_SSM_SELECTIVE && h->kind != MM_SSM_SSD && h->kind != MM_SSM_LRU)
        return wrong_kind(h, fn, "SELECTIVE, SSD, LRU");
    if (!h->fwd_valid)
        return mmi_fail(&h->err, MM_E_STATE, "%s: no successful mm_ssm_scan to differentiate", fn);
    switch (h->kind) {
    case MM_SSM_SELECTIVE:
        return mmi_ssm_sel_backward(h, in, dout, g);
    case MM_SSM_SSD:
        return mmi_ssm_ssd_backward(h, in, dout, g);
    default:
        return mmi_ssm_lru_backward(h, in, dout, g);
    }
}

MM_API int mm_ssm_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k)
{
    static const char fn[] = "mm_ssm_kernel";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_struct(h, fn, in, sizeof *in, "mm_ssm_inputs")) != MM_OK) return rc;
    if (!k) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: k is NULL", fn);
    if ((rc = outs_apart(h, fn, in, NULL, NULL, k)) != MM_OK) return rc;
    if (h->kind == MM_SSM_S4D) return mmi_ssm_s4d_kernel(h, in, k);
    if (h->kind == MM_SSM_S4) return mmi_ssm_s4_kernel(h, in, k);
    return wrong_kind(h, fn, "S4D, S4");
}

MM_API int mm_ssm_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dk,
                                  mm_ssm_grads *g)
{
    static const char fn[] = "mm_ssm_kernel_backward";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_struct(h, fn, in, sizeof *in, "mm_ssm_inputs")) != MM_OK ||
        (rc = check_struct(h, fn, g, sizeof *g, "mm_ssm_grads")) != MM_OK)
        return rc;
    if (!dk) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: dk is NULL", fn);
    if ((rc = grads_apart(h, fn, in, g, dk, "dk")) != MM_OK) return rc;
    if (h->kind == MM_SSM_S4D) return mmi_ssm_s4d_kernel_backward(h, in, dk, g);
    if (h->kind == MM_SSM_S4) return mmi_ssm_s4_kernel_backward(h, in, dk, g);
    return wrong_kind(h, fn, "S4D, S4");
}

MM_API int mm_ssm_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out)
{
    static const char fn[] = "mm_ssm_step";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    mmi_err_clear(&h->err);
    if ((rc = check_struct(h, fn, in, sizeof *in, "mm_ssm_inputs")) != MM_OK) return rc;
    if (!out) return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: out is NULL", fn);
    /* A step's out over a part of u (or of another input) came back wrong with MM_OK. */
    if ((rc = outs_apart(h, fn, in, out, NULL, NULL)) != MM_OK ||
        (rc = state_apart(h, fn, in, out)) != MM_OK)
        return rc;
    switch (h->kind) {
    case MM_SSM_SELECTIVE:
        rc = mmi_ssm_sel_step(h, in, out);
        break;
    case MM_SSM_SSD:
        rc = mmi_ssm_ssd_step(h, in, out);
        break;
    case MM_SSM_LRU:
        rc = mmi_ssm_lru_step(h, in, out);
        break;
    case MM_SSM_S4D:
        rc = mmi_ssm_s4d_step(h, in, out);
        break;
    default:
        return mmi_fail(&h->err, MM_E_UNSUPPORTED,
                        "%s: MM_SSM_S4 has no step in 0.1 (use "
                        "MM_SSM_S4D or the kernel and mm_ssm_conv)",
                        fn);
    }
    if (rc == MM_OK) h->position++;
    return rc;
}
