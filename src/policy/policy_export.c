/* SPDX-License-Identifier: MIT */
/* policy_export.c — the acting network of a policy as a plain mm_model (mm_policy_export,
 * mm_policy_export_copy into one exported before, mm_policy_export_save) plus the constants of the steps around it (mm_policy_export_io), so
 * a host can ship the inference model alone. The model is the actor exactly (same layers,
 * configs and parameters, no optimizer), so its forward is the forward mm_policy_act runs;
 * the observation normalisation before it and the map to the environment's action space after
 * it are documented in include/mm.h and applied in the same float order as policy_act.c. */
#include "mmi_policy.h"

#include <string.h>

int mm_policy_export(mm_policy *p, mm_model **out, const mm_model_opts *opts)
{
    static const char fn[] = "mm_policy_export";
    mm_model_opts mo;
    mm_model *m = NULL;
    char buf[MMI_ERRMSG_SIZE] = "";
    int rc;
    if (out) *out = NULL;
    if (!p) return MM_E_INVALID_ARG;
    if (!out) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: out is NULL", fn);
    if (p->mem.m)
        return mmi_fail(&p->err, MM_E_UNSUPPORTED,
                        "%s: a policy with a memory core is not one "
                        "feed-forward model; act with the policy",
                        fn);
    if (opts) {
        if (opts->struct_size < 8 || opts->struct_size > sizeof mo)
            return mmi_fail(&p->err, MM_E_INVALID_ARG,
                            "%s: opts.struct_size %u is not that of "
                            "mm_model_opts_init",
                            fn, (unsigned)opts->struct_size);
        if ((rc = mm_model_opts_init(&mo)) != MM_OK) return rc;
        memcpy(&mo, opts, opts->struct_size);
        mo.struct_size = (uint32_t)sizeof mo;
    } else {
        if ((rc = mm_model_opts_init(&mo)) != MM_OK) return rc;
        mo.max_batch = p->o.n_agents; /* what one mm_policy_act call may pass */
    }
    if (mo.input_dim != 0 && mo.input_dim != p->obs_dim)
        return mmi_fail(&p->err, MM_E_SHAPE,
                        "%s: opts.input_dim %lld; the actor reads %lld "
                        "observation values (use 0)",
                        fn, (long long)mo.input_dim, (long long)p->obs_dim);
    mo.input_dim = p->obs_dim;
    if (!mo.err_buf) mo.err_buf = buf, mo.err_buf_size = sizeof buf;
    rc = mm_model_create(&m, &mo);
    if (rc == MM_OK) rc = mmi_model_add_layers_of(m, p->actor, fn);
    if (rc == MM_OK) rc = mm_model_finalize(m);
    if (rc == MM_OK) rc = mm_model_copy(m, p->actor, 0);
    if (rc != MM_OK) {
        mmi_fail(&p->err, rc, "%s: %s", fn, m ? mm_model_errmsg(m) : mo.err_buf);
        mm_model_free(m);
        return rc;
    }
    *out = m;
    return MM_OK;
}

int mm_policy_export_copy(mm_policy *p, mm_model *dst)
{
    static const char fn[] = "mm_policy_export_copy";
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if (!dst) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: dst is NULL", fn);
    if (dst == p->actor)
        return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: dst is the policy's own actor", fn);
    if (p->mem.m)
        return mmi_fail(&p->err, MM_E_UNSUPPORTED,
                        "%s: a policy with a memory core has no "
                        "feed-forward export",
                        fn);
    rc = mm_model_copy(dst, p->actor, 0);
    return rc == MM_OK ? rc : mmi_fail(&p->err, rc, "%s: %s", fn, mm_model_errmsg(dst));
}

int mm_policy_export_save(mm_policy *p, const char *path)
{
    static const char fn[] = "mm_policy_export_save";
    mm_model *m = NULL;
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: path is NULL", fn);
    if ((rc = mm_policy_export(p, &m, NULL)) != MM_OK) return rc;
    rc = mm_model_save(m, path, 0);
    if (rc != MM_OK) mmi_fail(&p->err, rc, "%s: %s", fn, mm_model_errmsg(m));
    mm_model_free(m);
    return rc;
}

int mm_policy_export_io(const mm_policy *cp, mm_policy_export_info *info, float *obs_mean,
                        float *obs_istd, float *act_low, float *act_high)
{
    /* A getter, so logically const; its failure text still goes to the handle. */
    mm_policy *p = (mm_policy *)cp;
    static const char fn[] = "mm_policy_export_io";
    if (!p) return MM_E_INVALID_ARG;
    if (!info) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: info is NULL", fn);
    {
        /* Two outputs in one place would come back holding a mix of both. */
        const void *at[5] = {info, obs_mean, obs_istd, act_low, act_high};
        const size_t fs = sizeof(float), od = (size_t)p->obs_dim, ad = (size_t)p->act_dim;
        const size_t len[5] = {sizeof *info, od * fs, od * fs, ad * fs, ad * fs};
        static const char *const name[5] = {"info", "obs_mean", "obs_istd", "act_low", "act_high"};
        for (int i = 1; i < 5; i++)
            for (int j = 0; j < i; j++)
                if (at[i] && at[j] && mmi_overlaps(at[i], len[i], at[j], len[j]))
                    return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: %s shares memory with %s", fn,
                                    name[i], name[j]);
    }
    memset(info, 0, sizeof *info);
    info->output = p->discrete                ? MM_EXPORT_ARGMAX
                   : p->o.algo == MM_ALGO_SAC ? MM_EXPORT_TANH_MEAN
                   : p->offpolicy             ? MM_EXPORT_TANH_RESCALE
                                              : MM_EXPORT_CLIP;
    info->norm_obs = p->norm;
    info->obs_dim = p->obs_dim;
    info->act_dim = p->act_dim;
    info->model_out = p->head_dim;
    info->clip_obs = (float)p->rms.clip;
    for (int64_t j = 0; j < p->obs_dim; j++) {
        if (obs_mean) obs_mean[j] = p->norm ? p->rms.f_mean[j] : 0.0f;
        if (obs_istd) obs_istd[j] = p->norm ? p->rms.f_istd[j] : 1.0f;
    }
    for (int64_t j = 0; j < p->act_dim; j++) {
        if (act_low) act_low[j] = p->low[j];
        if (act_high) act_high[j] = p->high[j];
    }
    return MM_OK;
}
