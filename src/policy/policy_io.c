/* SPDX-License-Identifier: MIT */
/* policy_io.c — mm_policy_save / mm_policy_load as safetensors (DESIGN §5) through the io
 * floor: every network tensor under "<net>.<sequential index>.<weight|bias>" (actor,
 * actor_target, critic1, critic1_target, critic2, critic2_target, value, log_std, log_ent_coef
 * (SAC's log alpha); the PyTorch nn.Sequential naming of mm_model), the observation statistics as F64 ("obs_rms.mean",
 * "obs_rms.var", "obs_rms.count"), and metadata naming the algorithm and sizes, with a CRC32.
 * Loading checks every name, dtype, shape and the checksum before it changes anything. */
#include "../io/mmi_io.h"
#include "mmi_policy.h"

#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 96
#define MAX_OUT 256

typedef struct io_list {
    mmi_st_out t[MAX_OUT];
    char names[MAX_OUT][NAME_MAX_LEN];
    float *dst[MAX_OUT]; /* where a load writes each F32 tensor */
    int64_t n;
} io_list;

#define N_SLOTS 9

static void model_slots(mm_policy *p, mm_model **m, const char **names)
{
    static const char *const k[N_SLOTS] = {"actor",   "actor_target",   "critic1",
                                           "critic1_target", "critic2", "critic2_target",
                                           "value",   "log_std",        "log_ent_coef"};
    mm_model *v[N_SLOTS] = {p->actor,       p->actor_t, p->critic[0], p->critic_t[0], p->critic[1],
                            p->critic_t[1], p->vf,      p->logstd,    p->ent};
    for (int i = 0; i < N_SLOTS; i++) m[i] = v[i], names[i] = k[i];
}

/* Lists every tensor of the policy (same order for save and load). */
static int list_tensors(mm_policy *p, io_list *L)
{
    mm_model *ms[N_SLOTS];
    const char *pre[N_SLOTS];
    model_slots(p, ms, pre);
    L->n = 0;
    for (int k = 0; k < N_SLOTS; k++) {
        mm_model *m = ms[k];
        const mmi_ptensor *pt;
        int32_t nl = 0;
        float *w = NULL;
        int64_t nw;
        if (m && (mm_model_num_layers(m, &nl) != MM_OK || mm_model_params(m, &w, &nw) != MM_OK))
            return MM_E_STATE; /* every network of a created policy is finalized */
        for (int32_t i = 0; i < nl; i++)
            for (int32_t t = 0; (pt = mmi_model_tensor(m, i, t)) != NULL; t++) {
                char tn[48];
                mmi_st_out *o = &L->t[L->n];
                if (L->n >= MAX_OUT - 3) return MM_E_RANGE;
                if (mmi_model_tensor_name(m, i, t, tn, sizeof tn) != MM_OK) return MM_E_RANGE;
                snprintf(L->names[L->n], NAME_MAX_LEN, "%s.%s", pre[k], tn);
                o->name = L->names[L->n];
                o->dtype = MMI_ST_F32;
                o->ndim = pt->ndim;
                for (int32_t d = 0; d < pt->ndim; d++) o->shape[d] = pt->shape[d];
                o->data = w + pt->offset;
                L->dst[L->n++] = w + pt->offset;
            }
    }
    static const char *const rn[3] = {"obs_rms.count", "obs_rms.mean", "obs_rms.var"};
    const void *rd[3] = {&p->rms.count, p->rms.mean, p->rms.var};
    for (int j = 0; j < 3; j++) {
        mmi_st_out *o = &L->t[L->n];
        snprintf(L->names[L->n], NAME_MAX_LEN, "%s", rn[j]);
        o->name = L->names[L->n];
        o->dtype = MMI_ST_F64;
        o->ndim = 1;
        o->shape[0] = j == 0 ? 1 : p->obs_dim;
        o->data = rd[j];
        L->dst[L->n++] = NULL;
    }
    return MM_OK;
}

/* Metadata describing the architecture; load compares it key by key. */
static void arch_meta(const mm_policy *p, char vals[8][96])
{
    const mm_policy_opts *o = &p->o;
    char h[64] = "";
    for (int32_t i = 0; i < o->n_hidden; i++)
        snprintf(h + strlen(h), sizeof h - strlen(h), i ? ",%lld" : "%lld", (long long)o->hidden[i]);
    snprintf(vals[0], 96, "libmm");
    snprintf(vals[1], 96, "%s", mm_version_string());
    snprintf(vals[2], 96, "%d", (int)o->algo);
    snprintf(vals[3], 96, "%lld", (long long)o->obs_dim);
    snprintf(vals[4], 96, "%lld", (long long)(p->discrete ? 0 : o->act_dim));
    snprintf(vals[5], 96, "%lld", (long long)o->n_actions);
    snprintf(vals[6], 96, "%s", h);
    snprintf(vals[7], 96, "%s", mmi_act_name(o->activation));
}
static const char *const k_meta_keys[8] = {"format", "libmm_version", "algo", "obs_dim",
                                           "act_dim", "n_actions", "hidden", "activation"};

static int produce(void *ud, mmi_sink_fn sink, void *sink_ud)
{
    return mmi_st_plan_emit((const mmi_st_plan *)ud, sink, sink_ud);
}

int mm_policy_save(mm_policy *p, const char *path)
{
    static const char fn[] = "mm_policy_save";
    io_list *L;
    mmi_st_plan plan;
    char vals[8][96];
    const char *vp[8];
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: path is NULL", fn);
    if (p->comm && mm_comm_rank(p->comm) != 0) return MM_OK; /* ranks are identical: rank 0 writes */
    if (!(L = mmi_malloc(&p->alloc, sizeof *L)))
        return mmi_fail(&p->err, MM_E_NOMEM, "%s: tensor table", fn);
    arch_meta(p, vals);
    for (int i = 0; i < 8; i++) vp[i] = vals[i];
    memset(&plan, 0, sizeof plan);
    rc = list_tensors(p, L);
    if (rc != MM_OK) rc = mmi_fail(&p->err, rc, "%s: too many tensors", fn);
    if (rc == MM_OK)
        rc = mmi_st_plan_make(&plan, L->t, L->n, k_meta_keys, vp, 8, 1, &p->alloc, &p->err);
    if (rc == MM_OK) rc = mmi_file_write_atomic(path, produce, &plan, &p->err, fn);
    mmi_st_plan_free(&plan);
    mmi_free(&p->alloc, L, sizeof *L);
    return rc;
}

/* Every expected tensor present with the right dtype and shape, nothing else, same metadata. */
static int validate(mm_policy *p, const mmi_st_file *f, const io_list *L, const char *fn)
{
    char vals[8][96];
    arch_meta(p, vals);
    for (int i = 0; i < 8; i++) {
        size_t len = 0;
        const char *v = mmi_st_meta(f, k_meta_keys[i], &len);
        if (i == 1) continue; /* any libmm version may have written it */
        if (!v || len != strlen(vals[i]) || memcmp(v, vals[i], len) != 0)
            return mmi_fail(&p->err, MM_E_FORMAT, "%s: metadata \"%s\" is \"%.*s\"; this policy "
                            "has \"%s\"", fn, k_meta_keys[i], v ? (int)(len > 40 ? 40 : len) : 0,
                            v ? v : "", vals[i]);
    }
    if (f->n_tensors != L->n)
        return mmi_fail(&p->err, MM_E_FORMAT, "%s: the file holds %lld tensors, this policy %lld",
                        fn, (long long)f->n_tensors, (long long)L->n);
    for (int64_t k = 0; k < L->n; k++) {
        const mmi_st_tensor *t = mmi_st_find(f, L->t[k].name);
        int ok = t && t->dtype == L->t[k].dtype && t->ndim == L->t[k].ndim;
        for (int32_t d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == L->t[k].shape[d];
        if (!ok)
            return mmi_fail(&p->err, MM_E_FORMAT, "%s: tensor %s is missing or has another "
                            "dtype/shape", fn, L->t[k].name);
    }
    return MM_OK;
}

static double read_f64_le(const unsigned char *b)
{
    uint64_t u = 0;
    double d;
    for (int i = 7; i >= 0; i--) u = (u << 8) | b[i];
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Before anything is copied: weights finite, observation mean finite, variance and count
 * finite and >= 0 (a NaN or negative variance would make every later action NaN). */
static int check_values(mm_policy *p, const mmi_st_file *f, const io_list *L, const char *fn)
{
    for (int64_t k = 0; k < L->n; k++) {
        const mmi_st_tensor *t = mmi_st_find(f, L->t[k].name);
        const int is_f64 = L->dst[k] == NULL, signed_ok = k == L->n - 2; /* obs_rms.mean */
        int64_t bad = mmi_st_first_nonfinite(f, t, is_f64 ? 8 : 4);
        for (int64_t j = 0; bad < 0 && is_f64 && !signed_ok && j < t->numel; j++)
            if (read_f64_le(f->data + t->begin + 8 * j) < 0.0) bad = j;
        if (bad >= 0)
            return mmi_fail(&p->err, MM_E_NUMERIC, "%s: tensor %s element %lld is %s", fn,
                            L->t[k].name, (long long)bad,
                            is_f64 && !signed_ok ? "NaN, Inf or negative" : "NaN or Inf");
    }
    return MM_OK;
}

int mm_policy_load(mm_policy *p, const char *path)
{
    static const char fn[] = "mm_policy_load";
    mmi_st_file f;
    mmi_st_limits lim;
    io_list *L;
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: path is NULL", fn);
    if (!(L = mmi_malloc(&p->alloc, sizeof *L)))
        return mmi_fail(&p->err, MM_E_NOMEM, "%s: tensor table", fn);
    memset(&f, 0, sizeof f);
    mmi_st_limits_default(&lim);
    rc = list_tensors(p, L);
    if (rc == MM_OK) rc = mmi_st_load_path(&f, path, &lim, &p->alloc, &p->err);
    if (rc == MM_OK) rc = mmi_st_check_crc(&f, 1, &p->err);
    if (rc == MM_OK) rc = validate(p, &f, L, fn);
    if (rc == MM_OK) rc = check_values(p, &f, L, fn);
    for (int64_t k = 0; rc == MM_OK && k < L->n; k++) {
        const mmi_st_tensor *t = mmi_st_find(&f, L->t[k].name);
        if (L->dst[k]) {
            mmi_st_read_f32(&f, t, L->dst[k]);
            continue;
        }
        double *d = k == L->n - 3 ? &p->rms.count : (k == L->n - 2 ? p->rms.mean : p->rms.var);
        for (int64_t j = 0; j < t->numel; j++) d[j] = read_f64_le(f.data + t->begin + 8 * j);
    }
    if (rc == MM_OK) mmi_rms_refresh(&p->rms);
    mmi_st_free(&f);
    mmi_free(&p->alloc, L, sizeof *L);
    return rc;
}
