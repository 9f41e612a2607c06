/* SPDX-License-Identifier: MIT */
/* policy_io.c — the policy file (docs/FORMAT.md "Policy files"): a safetensors file holding
 * every network tensor under "<net>.<sequential index>.<weight|bias>" (actor, actor_target,
 * critic1, critic1_target, critic2, critic2_target, value, log_std, log_ent_coef (SAC's
 * log alpha); the PyTorch nn.Sequential
 * naming of mm_model), the observation statistics as F64 ("obs_rms.mean", "obs_rms.var",
 * "obs_rms.count"), the action bounds ("action.low", "action.high", continuous only) and, in a
 * checkpoint, the training state (policy_ckpt.c). A policy with a memory core adds the network
 * "memory" (its parameter vector, memory.c) and the metadata key "memory"; one with gSDE the
 * key "sde" ("full,<sde_sample_freq>") and a log_std of F x act_dim. Metadata: format "libmm-policy",
 * format_version, the algorithm by name and the sizes, with a CRC32. Loading checks every
 * name, dtype, shape, value and the checksum before it changes anything. Files written by 0.1
 * (format "libmm", no format_version, algo as a number, no bounds) still load. */
#include "mmi_policy_io.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_META 13 /* "memory" and "sde" are written only by policies that have them */

static const char *const k_algo[8] = {NULL, "ddpg", "td3", "a2c", "qac", "ppo", "trpo", "sac"};

const char *mmi_pio_algo_name(int32_t algo)
{
    return algo >= MM_ALGO_DDPG && algo <= MM_ALGO_SAC ? k_algo[algo] : NULL;
}

void mmi_pio_nets(mm_policy *p, mm_model **m, const char **names)
{
    static const char *const k[MMI_POL_NETS] = {
        "actor",          "actor_target", "critic1", "critic1_target", "critic2",
        "critic2_target", "value",        "log_std", "log_ent_coef",   "memory"};
    mm_model *v[MMI_POL_NETS] = {p->actor,     p->actor_t,     p->critic[0], p->critic_t[0],
                                 p->critic[1], p->critic_t[1], p->vf,        p->logstd,
                                 p->ent,       p->mem.m};
    for (int i = 0; i < MMI_POL_NETS; i++) m[i] = v[i], names[i] = k[i];
}

mmi_pio_ent *mmi_pio_add(mmi_pio_list *L, const char *name, int32_t dtype, int32_t role,
                         const void *data, int64_t rows, int64_t cols)
{
    mmi_pio_ent *x;
    if (L->n >= MMI_POL_MAX_OUT) return NULL;
    x = &L->e[L->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->t.name = x->name;
    x->t.dtype = dtype;
    x->t.ndim = cols > 0 ? 2 : 1;
    x->t.shape[0] = rows;
    x->t.shape[1] = cols;
    x->t.data = data;
    x->role = role;
    x->dst = (void *)data;
    return x;
}

static int list_nets(mm_policy *p, mmi_pio_list *L)
{
    mm_model *ms[MMI_POL_NETS];
    const char *pre[MMI_POL_NETS];
    mmi_pio_nets(p, ms, pre);
    for (int k = 0; k < MMI_POL_NETS; k++) {
        mm_model *m = ms[k];
        const mmi_ptensor *pt;
        int32_t nl = 0;
        float *w = NULL;
        int64_t nw;
        if (!m) continue;
        if (mm_model_num_layers(m, &nl) != MM_OK || mm_model_params(m, &w, &nw) != MM_OK)
            return MM_E_STATE; /* every network of a created policy is finalized */
        for (int32_t i = 0; i < nl; i++)
            for (int32_t t = 0; (pt = mmi_model_tensor(m, i, t)) != NULL; t++) {
                char tn[48], name[MMI_POL_NAME_LEN];
                mmi_pio_ent *x;
                if (mmi_model_tensor_name(m, i, t, tn, sizeof tn) != MM_OK) return MM_E_RANGE;
                snprintf(name, sizeof name, "%s.%s", pre[k], tn);
                if (!(x = mmi_pio_add(L, name, MMI_ST_F32, MMI_PIO_WEIGHT, w + pt->offset, 0, 0)))
                    return MM_E_RANGE;
                x->t.ndim = pt->ndim;
                for (int32_t d = 0; d < pt->ndim; d++) x->t.shape[d] = pt->shape[d];
            }
    }
    return MM_OK;
}

int mmi_pio_list_make(mm_policy *p, mmi_pio_list *L, const char *fn)
{
    int rc = list_nets(p, L);
    int ok = rc == MM_OK;
    ok = ok && mmi_pio_add(L, "obs_rms.count", MMI_ST_F64, MMI_PIO_RMS_POS, &p->rms.count, 1, 0);
    ok = ok &&
         mmi_pio_add(L, "obs_rms.mean", MMI_ST_F64, MMI_PIO_RMS_MEAN, p->rms.mean, p->obs_dim, 0);
    ok =
        ok && mmi_pio_add(L, "obs_rms.var", MMI_ST_F64, MMI_PIO_RMS_POS, p->rms.var, p->obs_dim, 0);
    if (ok && !L->legacy)
        ok =
            mmi_pio_add(L, "obs_rms.clip", MMI_ST_F64, MMI_PIO_BOUND, &p->o.clip_obs, 1, 0) != NULL;
    if (ok && !p->discrete && !L->legacy) {
        ok = mmi_pio_add(L, "action.low", MMI_ST_F32, MMI_PIO_BOUND, p->low, p->act_dim, 0) &&
             mmi_pio_add(L, "action.high", MMI_ST_F32, MMI_PIO_BOUND, p->high, p->act_dim, 0);
    }
    if (!ok) return mmi_fail(&p->err, rc == MM_E_STATE ? rc : MM_E_RANGE, "%s: tensor table", fn);
    return MM_OK;
}

void mmi_pio_list_free(mm_policy *p, mmi_pio_list *L)
{
    for (int k = 0; k < MMI_POL_NETS; k++) {
        if (L->ck.blob[k]) mmi_free(&p->alloc, L->ck.blob[k], L->ck.blob_size[k]);
        mm_model_free(L->ck.tmp[k]);
        L->ck.blob[k] = NULL, L->ck.tmp[k] = NULL;
    }
}

/* ---- metadata ------------------------------------------------------------------------------ */
static const char *const k_meta_keys[N_META] = {
    "format", "format_version", "libmm_version", "algo",       "obs_dim", "act_dim", "n_actions",
    "hidden", "activation",     "norm_obs",      "checkpoint", "memory",  "sde"};
enum {
    M_FORMAT,
    M_VERSION,
    M_LIBMM,
    M_ALGO,
    M_OBS,
    M_ACT,
    M_NACT,
    M_HIDDEN,
    M_ACTIV,
    M_NORM,
    M_CKPT,
    M_MEMORY,
    M_SDE
};

static void arch_meta(const mm_policy *p, int legacy, int ckpt, char vals[N_META][96])
{
    const mm_policy_opts *o = &p->o;
    char h[64] = "";
    for (int32_t i = 0; i < o->n_hidden; i++)
        snprintf(h + strlen(h), sizeof h - strlen(h), i ? ",%lld" : "%lld",
                 (long long)o->hidden[i]);
    snprintf(vals[M_FORMAT], 96, "%s", legacy ? "libmm" : "libmm-policy");
    snprintf(vals[M_VERSION], 96, "%d.%d", MMI_POL_FORMAT_MAJOR, MMI_POL_FORMAT_MINOR);
    snprintf(vals[M_LIBMM], 96, "%s", mm_version_string());
    if (legacy)
        snprintf(vals[M_ALGO], 96, "%d", (int)o->algo);
    else
        snprintf(vals[M_ALGO], 96, "%s", mmi_pio_algo_name(o->algo));
    snprintf(vals[M_OBS], 96, "%lld", (long long)o->obs_dim);
    snprintf(vals[M_ACT], 96, "%lld", (long long)(p->discrete ? 0 : o->act_dim));
    snprintf(vals[M_NACT], 96, "%lld", (long long)o->n_actions);
    snprintf(vals[M_HIDDEN], 96, "%s", h);
    snprintf(vals[M_ACTIV], 96, "%s", mmi_act_name(o->activation));
    snprintf(vals[M_NORM], 96, "%d", (int)p->norm);
    snprintf(vals[M_CKPT], 96, "%d", ckpt);
    /* "lru,<memory_dim>,<memory_seq_len>"; files without the key have no memory ("none") */
    if (p->mem.m)
        snprintf(vals[M_MEMORY], 96, "lru,%lld,%lld", (long long)p->mem.H, (long long)p->mem.L);
    else
        snprintf(vals[M_MEMORY], 96, "none");
    /* "full,<sde_sample_freq>" (SB3 full_std); files without the key have no gSDE ("none") */
    if (p->sde.F)
        snprintf(vals[M_SDE], 96, "full,%d", (int)o->sde_sample_freq);
    else
        snprintf(vals[M_SDE], 96, "none");
}

int mmi_pio_plan(mm_policy *p, mmi_pio_list *L, mmi_st_plan *plan, const char *fn)
{
    char vals[N_META][96];
    const char *vp[N_META], *keys[N_META];
    int nk = 0;
    (void)fn;
    arch_meta(p, 0, L->checkpoint, vals);
    for (int i = 0; i < N_META; i++) /* the optional keys only when the policy has them */
        if ((i != M_MEMORY || p->mem.m) && (i != M_SDE || p->sde.F))
            keys[nk] = k_meta_keys[i], vp[nk++] = vals[i];
    for (int64_t k = 0; k < L->n; k++) L->outs[k] = L->e[k].t;
    return mmi_st_plan_make(plan, L->outs, L->n, keys, vp, nk, 1, &p->alloc, &p->err);
}

/* ---- loading ------------------------------------------------------------------------------- */
static int meta_is(const mmi_st_file *f, const char *key, const char *want)
{
    size_t len = 0;
    const char *v = mmi_st_meta(f, key, &len);
    return v && len == strlen(want) && memcmp(v, want, len) == 0;
}

/* Which format generation f is: 1 current, 0 legacy 0.1, -1 not a policy file. */
static int file_kind(const mmi_st_file *f, mmi_err *e, const char *fn, int *rc)
{
    size_t len = 0;
    const char *v;
    *rc = MM_OK;
    if (meta_is(f, "format", "libmm") && !mmi_st_meta(f, "format_version", NULL) &&
        mmi_st_meta(f, "algo", NULL))
        return 0;
    if (!meta_is(f, "format", "libmm-policy")) {
        *rc = mmi_fail(
            e, MM_E_FORMAT,
            "%s: not a policy file (metadata format is not "
            "\"libmm-policy\"%s)",
            fn, meta_is(f, "format", "libmm") ? "; it is an mm_model file: use mm_model_load" : "");
        return -1;
    }
    v = mmi_st_meta(f, "format_version", &len);
    {
        size_t i = 0, dot = 0;
        uint32_t major = 0;
        while (i < len && i < 12 && ((v[i] >= '0' && v[i] <= '9') || (v[i] == '.' && !dot)))
            dot = v[i] == '.' ? i : dot, i++;
        if (!v || len > 12 || i != len || dot == 0 || dot > 6 || dot + 1 == len) {
            *rc = mmi_fail(e, MM_E_FORMAT,
                           "%s: format_version missing or not "
                           "\"<major>.<minor>\"",
                           fn);
            return -1;
        }
        for (i = 0; i < dot; i++) major = major * 10 + (uint32_t)(v[i] - '0');
        if (major < 1 || major > MMI_POL_FORMAT_MAJOR) {
            *rc = mmi_fail(e, major < 1 ? MM_E_FORMAT : MM_E_VERSION,
                           "%s: policy file format "
                           "%.*s %s (this libmm reads %d.x)",
                           fn, (int)len, v, major < 1 ? "is malformed" : "needs a newer libmm",
                           MMI_POL_FORMAT_MAJOR);
            return -1;
        }
    }
    return 1;
}

static int check_meta(mm_policy *p, const mmi_st_file *f, int legacy, const char *fn)
{
    static const int cmp[9] = {M_ALGO,  M_OBS,    M_ACT, M_NACT, M_HIDDEN,
                               M_ACTIV, M_MEMORY, M_SDE, -1};
    char vals[N_META][96];
    arch_meta(p, legacy, 0, vals);
    for (int i = 0; cmp[i] >= 0; i++) {
        size_t len = 0;
        const char *key = k_meta_keys[cmp[i]], *v = mmi_st_meta(f, key, &len);
        if (!v && (cmp[i] == M_MEMORY || cmp[i] == M_SDE)) v = "none", len = 4;
        if (!v || len != strlen(vals[cmp[i]]) || memcmp(v, vals[cmp[i]], len) != 0)
            return mmi_fail(&p->err, MM_E_FORMAT,
                            "%s: metadata \"%s\" is \"%.*s\"; this policy "
                            "has \"%s\"",
                            fn, key, v ? (int)(len > 40 ? 40 : len) : 0, v ? v : "", vals[cmp[i]]);
    }
    return MM_OK;
}

static int check_shapes(mm_policy *p, const mmi_st_file *f, const mmi_pio_list *L, const char *fn)
{
    for (int64_t k = 0; k < L->n; k++) {
        const mmi_st_tensor *t = mmi_st_find(f, L->e[k].name);
        int ok = t && t->dtype == L->e[k].t.dtype && t->ndim == L->e[k].t.ndim;
        for (int32_t d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == L->e[k].t.shape[d];
        if (!ok)
            return mmi_fail(&p->err, MM_E_FORMAT,
                            "%s: tensor %s is missing or has another "
                            "dtype/shape",
                            fn, L->e[k].name);
    }
    return MM_OK;
}

void mmi_pio_read_le64(const mmi_st_file *f, const mmi_st_tensor *t, void *dst)
{
    for (int64_t j = 0; j < t->numel; j++) {
        uint64_t u = mmi_st_u64_at(f, t, j);
        memcpy((unsigned char *)dst + 8 * j, &u, 8);
    }
}

static double f64_at(const mmi_st_file *f, const mmi_st_tensor *t, int64_t j)
{
    uint64_t u = mmi_st_u64_at(f, t, j);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* The largest observation statistics a stream of finite float observations can produce: the
 * mean of floats is a float, the variance at most (2 FLT_MAX)^2 < 1e78, and the count is
 * held to 2^53 like every other counter. Within them mmi_rms_update cannot overflow a double
 * (var x count < 1e94) and the float copies act applies stay finite; a finite 1e300 mean
 * turned the variance into Inf at the next observe and every action after it into NaN. */
#define RMS_VAR_MAX   1e78
#define RMS_COUNT_MAX ((double)MMI_COUNT_MAX) /* mmi_rms_update holds it there */

static double rms_limit(const mmi_pio_ent *x)
{
    if (x->role == MMI_PIO_RMS_MEAN) return FLT_MAX;
    if (x->role != MMI_PIO_RMS_POS) return 0.0;
    return strcmp(x->name, "obs_rms.count") == 0 ? RMS_COUNT_MAX : RMS_VAR_MAX;
}

/* Before anything is copied: weights and bounds finite; observation mean finite and within
 * the float range; variance and count finite, >= 0 and within the limits above (a NaN or
 * negative variance would make every later action NaN). */
static int check_values(mm_policy *p, const mmi_st_file *f, const mmi_pio_list *L, const char *fn)
{
    for (int64_t k = 0; k < L->n; k++) {
        const mmi_pio_ent *x = &L->e[k];
        const mmi_st_tensor *t = mmi_st_find(f, x->name);
        const int is_f64 = x->t.dtype == MMI_ST_F64, pos = x->role == MMI_PIO_RMS_POS;
        const double lim = rms_limit(x);
        int64_t bad;
        if (x->role == MMI_PIO_CKPT) continue; /* policy_ckpt.c checks its blocks */
        bad = mmi_st_first_nonfinite(f, t, is_f64 ? 8 : 4);
        if (bad >= 0 || lim == 0.0) {
            if (bad >= 0)
                return mmi_fail(&p->err, MM_E_NUMERIC, "%s: tensor %s element %lld is NaN or Inf",
                                fn, x->name, (long long)bad);
            continue;
        }
        for (int64_t j = 0; bad < 0 && j < t->numel; j++) {
            double v = f64_at(f, t, j);
            if ((pos && v < 0.0) || fabs(v) > lim) bad = j;
        }
        if (bad >= 0)
            return mmi_fail(&p->err, MM_E_NUMERIC, "%s: tensor %s element %lld is %g (%s%g)", fn,
                            x->name, (long long)bad, f64_at(f, t, bad),
                            pos ? "allowed: 0 .. " : "allowed magnitude: <= ", lim);
    }
    return MM_OK;
}

static void copy_in(mm_policy *p, const mmi_st_file *f, const mmi_pio_list *L)
{
    for (int64_t k = 0; k < L->n; k++) {
        const mmi_pio_ent *x = &L->e[k];
        const mmi_st_tensor *t = mmi_st_find(f, x->name);
        if (x->role == MMI_PIO_WEIGHT)
            mmi_st_read_f32(f, t, (float *)x->dst);
        else if (x->role == MMI_PIO_RMS_MEAN || x->role == MMI_PIO_RMS_POS)
            mmi_pio_read_le64(f, t, x->dst);
        /* bounds belong to the handle's options; checkpoint blocks: mmi_ckpt_apply */
    }
    mmi_rms_refresh(&p->rms);
}

int mmi_pio_apply(mm_policy *p, const mmi_st_file *f, const char *fn)
{
    mmi_pio_list *L;
    int rc, kind;
    if (!(L = mmi_calloc(&p->alloc, sizeof *L)))
        return mmi_fail(&p->err, MM_E_NOMEM, "%s: tensor table", fn);
    kind = file_kind(f, &p->err, fn, &rc);
    if (kind >= 0) {
        L->legacy = kind == 0;
        L->checkpoint = !L->legacy && meta_is(f, "checkpoint", "1");
        rc = mmi_st_check_crc(f, 1, &p->err);
    }
    if (rc == MM_OK) rc = check_meta(p, f, L->legacy, fn);
    if (rc == MM_OK) rc = mmi_pio_list_make(p, L, fn);
    if (rc == MM_OK && L->checkpoint) rc = mmi_ckpt_check(p, f, L, fn);
    if (rc == MM_OK) rc = check_shapes(p, f, L, fn);
    if (rc == MM_OK && f->n_tensors != L->n)
        rc = mmi_fail(&p->err, MM_E_FORMAT, "%s: the file holds %lld tensors, this policy %lld", fn,
                      (long long)f->n_tensors, (long long)L->n);
    if (rc == MM_OK) rc = check_values(p, f, L, fn);
    if (rc == MM_OK) {
        if (L->checkpoint) mmi_ckpt_apply(p, f, L); /* optimizer copies first: see there */
        copy_in(p, f, L);
    }
    mmi_pio_list_free(p, L);
    mmi_free(&p->alloc, L, sizeof *L);
    mmi_pol_params_stale(p); /* the actor and the core may have been loaded */
    return rc;
}

/* ---- architecture for mm_policy_load_new ------------------------------------------------- */
static int meta_i64(const mmi_st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    size_t len = 0;
    const char *v = mmi_st_meta(f, key, &len);
    int64_t x = 0;
    if (!v || len < 1 || len > 10) return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
    }
    if (x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int read_hidden(const mmi_st_file *f, mm_policy_opts *o)
{
    size_t len = 0, i = 0;
    const char *v = mmi_st_meta(f, "hidden", &len);
    o->n_hidden = 0;
    while (v && i < len && o->n_hidden < 4) {
        int64_t x = 0;
        size_t s = i;
        while (i < len && v[i] >= '0' && v[i] <= '9' && i - s < 6) x = x * 10 + (v[i++] - '0');
        if (i == s || x < 1) return -1;
        o->hidden[o->n_hidden++] = x;
        if (i < len && v[i++] != ',') return -1;
    }
    return v && i == len && o->n_hidden >= 1 && v[len - 1] != ',' ? 0 : -1;
}

static int read_activation(const mmi_st_file *f, mm_policy_opts *o)
{
    for (int32_t k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++)
        if (mmi_act_name(k) && meta_is(f, "activation", mmi_act_name(k))) {
            o->activation = k;
            return 0;
        }
    return -1;
}

/* "memory": absent = none, else "lru,<memory_dim>,<memory_seq_len>". */
static int read_memory(const mmi_st_file *f, mm_policy_opts *o)
{
    size_t len = 0, i = 4;
    const char *v = mmi_st_meta(f, "memory", &len);
    int64_t x[2] = {0, 0};
    o->memory = MM_MEMORY_NONE;
    if (!v) return 0;
    if (len < 4 || memcmp(v, "lru,", 4) != 0) return -1;
    for (int k = 0; k < 2; k++) {
        size_t s = i;
        while (i < len && v[i] >= '0' && v[i] <= '9' && i - s < 9)
            x[k] = x[k] * 10 + (v[i++] - '0');
        if (i == s || (k == 0 && (i >= len || v[i++] != ','))) return -1;
    }
    if (i != len) return -1;
    o->memory = MM_MEMORY_LRU, o->memory_dim = x[0], o->memory_seq_len = x[1];
    return 0; /* create checks the values */
}

/* "sde": absent = no gSDE, else "full,<sde_sample_freq>" (-1 or 1..999999999). */
static int read_sde(const mmi_st_file *f, mm_policy_opts *o)
{
    size_t len = 0, i = 5;
    const char *v = mmi_st_meta(f, "sde", &len);
    int64_t x = 0;
    int neg = 0;
    o->use_sde = 0;
    if (!v) return 0;
    if (len < 6 || memcmp(v, "full,", 5) != 0) return -1;
    if (v[i] == '-') neg = 1, i++;
    {
        size_t s = i;
        while (i < len && v[i] >= '0' && v[i] <= '9' && i - s < 9) x = x * 10 + (v[i++] - '0');
        if (i == s || i != len || (neg && x != 1)) return -1;
    }
    o->use_sde = 1, o->sde_sample_freq = (int32_t)(neg ? -x : x);
    return 0; /* create checks the value (0 is refused there) */
}

int mmi_pio_read_arch(const mmi_st_file *f, mm_policy_opts *o, float *lo, float *hi, int64_t cap,
                      mmi_err *e)
{
    static const char fn[] = "mm_policy_load_new";
    int64_t obs = 0, act = 0, nact = 0, norm = 0;
    int32_t algo = 0;
    int rc, kind = file_kind(f, e, fn, &rc);
    if (kind < 0) return rc;
    for (int32_t a = MM_ALGO_DDPG; a <= MM_ALGO_SAC; a++) {
        char num[12]; /* any int: gcc -O1 with sanitizers warns on 8 */
        snprintf(num, sizeof num, "%d", (int)a);
        if (meta_is(f, "algo", kind ? k_algo[a] : num)) algo = a;
    }
    if (!algo || meta_i64(f, "obs_dim", 1, 1 << 20, &obs) ||
        meta_i64(f, "act_dim", 0, 1 << 16, &act) || meta_i64(f, "n_actions", 0, 1 << 20, &nact) ||
        read_hidden(f, o) || read_activation(f, o) || (act == 0) == (nact == 0) ||
        read_memory(f, o) || read_sde(f, o))
        return mmi_fail(e, MM_E_FORMAT,
                        "%s: the algo, obs_dim, act_dim, n_actions, hidden, "
                        "activation, memory or sde metadata is missing or malformed",
                        fn);
    if (kind && meta_i64(f, "norm_obs", 0, 1, &norm) == 0) o->norm_obs = (int32_t)norm;
    o->algo = algo, o->obs_dim = obs, o->n_actions = nact, o->act_dim = act ? act : 1;
    o->act_low = o->act_high = NULL;
    if (act > 0 && kind) {
        const mmi_st_tensor *tl = mmi_st_find(f, "action.low"), *th = mmi_st_find(f, "action.high");
        if (!tl || !th || tl->dtype != MMI_ST_F32 || th->dtype != MMI_ST_F32 || tl->numel != act ||
            th->numel != act || act > cap)
            return mmi_fail(e, MM_E_FORMAT,
                            "%s: action.low / action.high missing or not %lld "
                            "F32 values",
                            fn, (long long)act);
        mmi_st_read_f32(f, tl, lo);
        mmi_st_read_f32(f, th, hi);
        o->act_low = lo, o->act_high = hi; /* create checks them (finite, low < high) */
    }
    if (kind) {
        const mmi_st_tensor *tc = mmi_st_find(f, "obs_rms.clip");
        double c = 0;
        if (tc && tc->dtype == MMI_ST_F64 && tc->numel == 1) mmi_pio_read_le64(f, tc, &c);
        if (c > 0) o->clip_obs = c; /* NaN fails the test; create refuses +Inf */
    }
    return MM_OK;
}
