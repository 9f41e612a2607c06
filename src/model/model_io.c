/* SPDX-License-Identifier: MIT */
/* model_io.c — mm_model files: save by path (atomic), into memory (with a size query), and
 * load by path, from memory and from a read callback. A file is validated completely (lengths,
 * offsets, JSON, names, shapes, dtypes, checksum, architecture) before the model is rebuilt
 * through the same path as mm_model_add_* and its parameters are copied in. */
#include "mmi_model_io.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 96
/* The reservation cap of a loaded model (docs/FORMAT.md section 7). */
#define MMI_LOAD_RESERVE_BASE     ((int64_t)64 << 20)
#define MMI_LOAD_RESERVE_PER_BYTE 64
#define PNAME_LEN                 48 /* "4095.weight": a parameter name without prefix */

/* ============================== saving ===================================================== */
typedef struct save_ctx {
    mm_model *m;
    mmi_st_plan plan;
    mmi_st_out *outs;
    char (*names)[NAME_MAX_LEN];
    void *block;
    size_t block_size;
    char *arch, *optj;
    size_t arch_cap, optj_cap;
} save_ctx;

static void save_release(save_ctx *s)
{
    const mmi_alloc *a = &s->m->alloc;
    mmi_st_plan_free(&s->plan);
    if (s->block) mmi_free(a, s->block, s->block_size);
    if (s->arch) mmi_free(a, s->arch, s->arch_cap);
    if (s->optj) mmi_free(a, s->optj, s->optj_cap);
    s->block = s->arch = s->optj = NULL;
}

static int64_t save_count(const mm_model *m, int with_state)
{
    int64_t n = 0, live = 0;
    for (int32_t i = 0; i < m->n_layers; i++) n += m->layers[i].n_tensors;
    for (int32_t k = 0; with_state && k < m->opt.n_slots; k++) live += m->opt.slot[k] != NULL;
    return n * (1 + live);
}

/* Lists every tensor: parameters in layer order (so the data section is the flat parameter
 * buffer), then optimizer state per slot. */
static int save_tensors(save_ctx *s, int with_state, mmi_err *e)
{
    const mm_model *m = s->m;
    int64_t n = save_count(m, with_state), k = 0;
    size_t per = sizeof(mmi_st_out) + NAME_MAX_LEN;
    if (n == 0) return MM_OK;
    if (mmi_mul_size(&s->block_size, (size_t)n, per))
        return mmi_fail(e, MM_E_RANGE, "too many tensors");
    s->block = mmi_calloc(&m->alloc, s->block_size);
    if (!s->block) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", s->block_size);
    s->outs = (mmi_st_out *)s->block;
    s->names = (char(*)[NAME_MAX_LEN])(s->outs + n);
    for (int32_t slot = -1; slot < (with_state ? m->opt.n_slots : 0); slot++) {
        const float *base = slot < 0 ? m->params : m->opt.slot[slot];
        if (!base) continue;
        for (int32_t i = 0; i < m->n_layers; i++) {
            const mmi_layer *l = &m->layers[i];
            for (int32_t t = 0; t < l->n_tensors; t++, k++) {
                char pn[PNAME_LEN];
                mmi_st_out *o = &s->outs[k];
                if (mmi_model_tensor_name(m, i, t, pn, sizeof pn) != MM_OK)
                    return mmi_fail(e, MM_E_INTERNAL, "cannot name tensor %d of layer %d", (int)t,
                                    (int)i);
                if (slot < 0)
                    snprintf(s->names[k], NAME_MAX_LEN, "%s", pn);
                else
                    snprintf(s->names[k], NAME_MAX_LEN, "optimizer.%s.%s", pn,
                             m->opt.slot_name[slot]);
                o->name = s->names[k];
                o->dtype = MMI_ST_F32;
                o->ndim = l->tensors[t].ndim;
                for (int32_t d = 0; d < o->ndim; d++) o->shape[d] = l->tensors[t].shape[d];
                o->data = base + l->tensors[t].offset;
            }
        }
    }
    return MM_OK;
}

static int save_prepare(save_ctx *s, mm_model *m, uint32_t flags, mmi_err *e)
{
    const char *keys[5] = {"format", "format_version", "libmm_version", "architecture",
                           "optimizer"};
    const char *vals[5];
    char fv[16];
    int with_state = (flags & MM_SAVE_OPTIMIZER_STATE) && m->opt.kind != 0;
    int rc;
    memset(s, 0, sizeof *s);
    s->m = m;
    s->plan.alloc = m->alloc;
    if (!m->finalized) return mmi_fail(e, MM_E_STATE, "the model is not finalized");
    if (flags & ~(uint32_t)MM_SAVE_OPTIMIZER_STATE)
        return mmi_fail(e, MM_E_INVALID_ARG, "unknown flags 0x%x", (unsigned)flags);
    snprintf(fv, sizeof fv, "%d.%d", MMI_FORMAT_MAJOR, MMI_FORMAT_MINOR);
    vals[0] = "libmm";
    vals[1] = fv;
    vals[2] = MM_VERSION_STRING;
    if ((rc = mmi_arch_to_json(m, &s->arch, &s->arch_cap, e))) return rc;
    vals[3] = s->arch;
    if (m->opt.kind && (rc = mmi_optim_to_json(m, with_state, &s->optj, &s->optj_cap, e)))
        return rc;
    vals[4] = s->optj;
    if ((rc = save_tensors(s, with_state, e))) return rc;
    return mmi_st_plan_make(&s->plan, s->outs, save_count(m, with_state), keys, vals,
                            m->opt.kind ? 5 : 4, 1, &m->alloc, e);
}

/* Runs a save step with text in a local error, then prefixes fn into the model's text. */
static int save_fail(mm_model *m, int rc, const mmi_err *e, const char *fn)
{
    return mmi_fail(&m->err, rc, "%s: %s", fn, e->msg);
}

static int save_produce(void *ud, mmi_sink_fn sink, void *sink_ud)
{
    return mmi_st_plan_emit(&((save_ctx *)ud)->plan, sink, sink_ud);
}

MM_API int mm_model_save(mm_model *m, const char *path, uint32_t flags)
{
    const char *fn = "mm_model_save";
    save_ctx s;
    mmi_err e;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    e.msg[0] = '\0';
    if (!path) return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: path is NULL", fn);
    if (m->comm && mm_comm_rank(m->comm) != 0)
        return MM_OK; /* ranks are identical: rank 0 writes */
    rc = save_prepare(&s, m, flags, &e);
    if (rc == MM_OK) {
        rc = mmi_file_write_atomic(path, save_produce, &s, &m->err, fn);
        save_release(&s);
        return rc;
    }
    save_release(&s);
    return save_fail(m, rc, &e, fn);
}

MM_API int mm_model_save_mem(mm_model *m, void *buf, size_t cap, size_t *size, uint32_t flags)
{
    const char *fn = "mm_model_save_mem";
    save_ctx s;
    mmi_err e;
    int rc;
    if (!m) return MM_E_INVALID_ARG;
    e.msg[0] = '\0';
    if (!buf && !size)
        return mmi_fail(&m->err, MM_E_INVALID_ARG, "%s: buf and size are both NULL", fn);
    rc = save_prepare(&s, m, flags, &e);
    if (rc == MM_OK) {
        /* The tensors are copied from the parameters as buf fills up. */
        rc = buf ? mmi_model_own_apart(m, &m->err, fn, "buf", buf, cap, 0) : MM_OK;
        if (rc == MM_OK) rc = mmi_st_plan_to_mem(&s.plan, buf, cap, size, &m->err, fn);
        save_release(&s);
        return rc;
    }
    save_release(&s);
    return save_fail(m, rc, &e, fn);
}

/* ============================== loading ==================================================== */
/* Parses "<major>.<minor>" (digits only, each at most 6) into its numbers; -1 if malformed. */
static int parse_version(const char *s, size_t n, uint32_t *major, uint32_t *minor)
{
    uint32_t v[2] = {0, 0};
    size_t i = 0;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 6)
            v[part] = v[part] * 10 + (uint32_t)(s[i++] - '0');
        if (i == start) return -1;
        if (part == 0 && (i >= n || s[i++] != '.')) return -1;
    }
    if (i != n || v[0] < 1) return -1;
    *major = v[0];
    *minor = v[1];
    return 0;
}

/* Reads the description: "architecture" metadata, or one inferred from PyTorch names; the
 * format version; the optimizer; and the checksum (required in libmm files). */
static int load_describe(mmi_arch *ar, const mmi_st_file *f, const mmi_alloc *a, mmi_err *e)
{
    size_t fl = 0, vl = 0, al = 0, ol = 0;
    const char *fmt = mmi_st_meta(f, "format", &fl);
    const char *ver = mmi_st_meta(f, "format_version", &vl);
    const char *arch = mmi_st_meta(f, "architecture", &al);
    const char *opt = mmi_st_meta(f, "optimizer", &ol);
    int is_libmm = fmt && fl == 5 && memcmp(fmt, "libmm", 5) == 0;
    int rc;
    /* a policy file (format "libmm-policy", or a 0.1 one: "libmm" with an "algo" key) */
    if ((fmt && fl == 12 && memcmp(fmt, "libmm-policy", 12) == 0) ||
        (is_libmm && mmi_st_meta(f, "algo", NULL)))
        return mmi_fail(e, MM_E_FORMAT,
                        "this is an mm_policy file, not a model: load it with "
                        "mm_policy_load_new or mm_policy_load (mm_policy_export turns its actor "
                        "into a model)");
    if (is_libmm && (!ver || !arch))
        return mmi_fail(e, MM_E_FORMAT, "libmm file without %s metadata",
                        !ver ? "format_version" : "architecture");
    if (ver) {
        uint32_t major = 0, minor = 0;
        if (parse_version(ver, vl, &major, &minor))
            return mmi_fail(e, MM_E_FORMAT, "format_version is not \"<major>.<minor>\"");
        if (major > MMI_FORMAT_MAJOR)
            return mmi_fail(e, MM_E_VERSION,
                            "file format %u.%u needs a newer libmm (this one "
                            "reads %d.x)",
                            (unsigned)major, (unsigned)minor, MMI_FORMAT_MAJOR);
    }
    if ((rc = mmi_st_check_crc(f, is_libmm, e))) return rc;
    rc = arch ? mmi_arch_parse(ar, arch, al, a, e) : mmi_arch_infer(ar, f, a, e);
    if (rc) return rc;
    if (opt && (rc = mmi_optim_parse(ar, opt, ol, a, e))) mmi_arch_free(ar);
    return rc;
}

/* Replays the layers through the builder; a config the builder refuses is a format error. */
static int load_layers(mm_model *m, const mmi_arch *ar, mmi_err *e)
{
    for (int32_t i = 0; i < ar->n_layers; i++) {
        const mmi_arch_layer *l = &ar->layers[i];
        int rc = mmi_model_add_layer(m, l->kind, l->icfg, l->n_icfg, l->dcfg, l->n_dcfg, "layer");
        if (rc == MM_E_NOMEM) return mmi_fail(e, rc, "%s", m->err.msg);
        if (rc)
            return mmi_fail(e, MM_E_FORMAT, "architecture: layer %d (%s) rejected: %s", (int)i,
                            l->kind, m->err.msg);
    }
    return MM_OK;
}

static void shape_text(char *buf, size_t n, int32_t ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int32_t d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Checks one tensor of the file against what layer i's tensor t must be. */
static int load_check_tensor(const mm_model *m, const mmi_st_file *f, int32_t i, int32_t t,
                             const char *prefix, const char *suffix, mmi_err *e)
{
    const mmi_ptensor *p = &m->layers[i].tensors[t];
    const mmi_st_tensor *ft;
    char pn[PNAME_LEN], name[NAME_MAX_LEN + 40], s1[96], s2[96];
    int64_t bad;
    int same;
    if (mmi_model_tensor_name(m, i, t, pn, sizeof pn) != MM_OK)
        return mmi_fail(e, MM_E_INTERNAL, "cannot name tensor %d of layer %d", (int)t, (int)i);
    snprintf(name, sizeof name, "%s%s%s", prefix, pn, suffix);
    ft = mmi_st_find(f, name);
    if (!ft) return mmi_fail(e, MM_E_FORMAT, "missing tensor '%s'", name);
    if (ft->dtype != MMI_ST_F32)
        return mmi_fail(e, MM_E_DTYPE, "tensor '%s' is %s; libmm models load F32 only", name,
                        mmi_st_dtype_name(ft->dtype));
    same = ft->ndim == p->ndim;
    for (int32_t d = 0; same && d < p->ndim; d++) same = ft->shape[d] == p->shape[d];
    if (!same) {
        shape_text(s1, sizeof s1, ft->ndim, ft->shape);
        shape_text(s2, sizeof s2, p->ndim, p->shape);
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s' is %s but the architecture needs %s", name, s1,
                        s2);
    }
    if ((bad = mmi_st_first_nonfinite(f, ft, 4)) >= 0)
        return mmi_fail(e, MM_E_NUMERIC, "tensor '%s' holds NaN or Inf (element %lld)", name,
                        (long long)bad);
    return MM_OK;
}

static int is_optim_name(const mmi_st_tensor *t)
{
    return t->name_len > 10 && memcmp(t->name, "optimizer.", 10) == 0;
}

static int name_ends(const mmi_st_tensor *t, const char *suffix)
{
    size_t n = strlen(suffix);
    return t->name_len >= n && memcmp(t->name + t->name_len - n, suffix, n) == 0;
}

/* Optimizer state, checked before finalize reserves anything: finite, and the running
 * averages of squares (Adam's exp_avg_sq and max_exp_avg_sq, RMSprop's square_avg) not
 * negative, since a negative one turns the next step's sqrt into NaN. Which tensors the
 * optimizer needs is checked after it is set (load_optim). */
static int load_check_state(const mmi_st_tensor *t, const mmi_st_file *f, mmi_err *e)
{
    int64_t bad;
    char name[NAME_MAX_LEN];
    if (t->dtype != MMI_ST_F32) return MM_OK; /* load_optim reports the dtype */
    mmi_io_excerpt(name, sizeof name, t->name, t->name_len);
    if ((bad = mmi_st_first_nonfinite(f, t, 4)) >= 0)
        return mmi_fail(e, MM_E_NUMERIC, "tensor '%s' holds NaN or Inf (element %lld)", name,
                        (long long)bad);
    if (!name_ends(t, "exp_avg_sq") && !name_ends(t, ".square_avg")) return MM_OK;
    for (int64_t j = 0; j < t->numel; j++) {
        const unsigned char *q = f->data + t->begin + 4 * (size_t)j;
        if ((q[3] & 0x80u) && (q[0] | q[1] | q[2] | (q[3] & 0x7fu)))
            return mmi_fail(e, MM_E_NUMERIC,
                            "tensor '%s' holds a negative value (element "
                            "%lld)",
                            name, (long long)j);
    }
    return MM_OK;
}

/* Before finalize: every parameter tensor is in the file with its shape and nothing else but
 * optimizer state is. Widths are capped in proportion to the file's data so that a hostile
 * architecture cannot make finalize reserve huge activation buffers. */
static int load_check_params(const mm_model *m, const mmi_st_file *f, int64_t *n_opt, mmi_err *e)
{
    int64_t expect = 0, floats = (int64_t)(f->data_len / 4), cap = floats > 4096 ? floats : 4096;
    int64_t sum = 0;
    int rc;
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        /* A real model's widths come with parameters: each layer at most as wide as the file
         * has floats, and all of them together at most 64 times that (activation layers repeat
         * widths). Bounds finalize's activation reservation by the file's size. */
        if (l->in_dim <= cap && l->out_dim <= cap) sum += l->in_dim + l->out_dim;
        if (l->in_dim > cap || l->out_dim > cap || sum > 64 * cap)
            return mmi_fail(e, MM_E_FORMAT,
                            "architecture: layer %d is %lld -> %lld wide, out of "
                            "proportion to the file's %llu data bytes",
                            (int)i, (long long)l->in_dim, (long long)l->out_dim,
                            (unsigned long long)f->data_len);
        for (int32_t t = 0; t < l->n_tensors; t++, expect++)
            if ((rc = load_check_tensor(m, f, i, t, "", "", e))) return rc;
    }
    *n_opt = 0;
    for (int64_t k = 0; k < f->n_tensors; k++) {
        if (!is_optim_name(&f->tensors[k])) continue;
        if ((rc = load_check_state(&f->tensors[k], f, e))) return rc;
        (*n_opt)++;
    }
    if (f->n_tensors - *n_opt != expect)
        return mmi_fail(e, MM_E_FORMAT,
                        "the file has %lld parameter tensors but the "
                        "architecture has %lld",
                        (long long)(f->n_tensors - *n_opt), (long long)expect);
    return MM_OK;
}

/* What finalize will reserve for this model at opts.max_batch x opts.max_seq (parameters and
 * gradients, activations, ping-pong buffers, saved and scratch regions), in checked int64
 * arithmetic: MMI_SIZE_BAD when it does not even fit. The GEMM workspace is left out (it
 * depends on the thread count only, not on the file). */
static int64_t load_reserve_bytes(const mm_model *m)
{
    const int64_t rows = mmi_sz_mul(m->opts.max_batch, m->opts.max_seq);
    int64_t total = 0, width = m->opts.input_dim, widest = width, params = 0, scratch = 0;
    for (int32_t i = 0; i <= m->n_layers; i++) {
        if (i > 0) width = m->layers[i - 1].out_dim;
        if (width > widest) widest = width;
        total = mmi_sz_add(total, mmi_sz_mul(mmi_sz_mul(rows, width), 4));
    }
    total = mmi_sz_add(total, mmi_sz_mul(mmi_sz_mul(rows, widest), 8));
    for (int32_t i = 0; i < m->n_layers; i++) {
        const mmi_layer *l = &m->layers[i];
        size_t sv, sc;
        int gw;
        l->vt->sizes(l, m->opts.max_batch, m->opts.max_seq, &sv, &sc, &gw);
        total = mmi_sz_add(total, mmi_sz_of(sv));
        if (mmi_sz_of(sc) < 0 || mmi_sz_of(sc) > scratch) scratch = mmi_sz_of(sc);
        params = mmi_sz_add(params, l->n_params);
        if (scratch < 0) break;
    }
    return mmi_sz_add(mmi_sz_add(total, scratch), mmi_sz_mul(params, 8));
}

/* The cap on what a file can make finalize reserve: MMI_LOAD_RESERVE_BASE plus
 * MMI_LOAD_RESERVE_PER_BYTE bytes per data byte of the file for every row of max_batch x
 * max_seq. Real models reserve a small multiple of their parameters per row; a few hundred
 * bytes of hostile architecture cannot ask for gigabytes. */
static int load_check_reserve(const mm_model *m, const mmi_st_file *f, mmi_err *e)
{
    const int64_t rows = mmi_sz_mul(m->opts.max_batch, m->opts.max_seq);
    const int64_t want = load_reserve_bytes(m);
    const int64_t per_row = mmi_sz_mul(MMI_LOAD_RESERVE_PER_BYTE, (int64_t)f->data_len);
    const int64_t cap = mmi_sz_add(MMI_LOAD_RESERVE_BASE, mmi_sz_mul(rows, per_row));
    if (want < 0 || (cap >= 0 && want > cap))
        return mmi_fail(e, MM_E_FORMAT,
                        "architecture: the model would reserve %s%lld bytes "
                        "for max_batch %lld x max_seq %lld, out of proportion to the file's "
                        "%llu data bytes (limit %lld)",
                        want < 0 ? "more than " : "", (long long)(want < 0 ? INT64_MAX : want),
                        (long long)m->opts.max_batch, (long long)m->opts.max_seq,
                        (unsigned long long)f->data_len, (long long)(cap < 0 ? INT64_MAX : cap));
    return MM_OK;
}

/* Copies every parameter tensor (prefix "") or one optimizer slot's state into base. */
static void load_copy(const mm_model *m, const mmi_st_file *f, float *base, const char *prefix,
                      const char *suffix)
{
    char pn[PNAME_LEN], name[NAME_MAX_LEN + 40];
    for (int32_t i = 0; i < m->n_layers; i++)
        for (int32_t t = 0; t < m->layers[i].n_tensors; t++) {
            const mmi_ptensor *p = &m->layers[i].tensors[t];
            mmi_model_tensor_name(m, i, t, pn, sizeof pn);
            snprintf(name, sizeof name, "%s%s%s", prefix, pn, suffix);
            mmi_st_read_f32(f, mmi_st_find(f, name), base + p->offset);
        }
}

/* Sets the optimizer and its settings; with n_opt state tensors in the file, checks that they
 * are exactly every live slot of every parameter, then restores them and the step count. */
static int load_optim(mm_model *m, const mmi_arch *ar, const mmi_st_file *f, int64_t n_opt,
                      mmi_err *e)
{
    char suf[40];
    int64_t found = 0;
    int rc;
    if (!ar->opt_kind) {
        if (n_opt) return mmi_fail(e, MM_E_FORMAT, "optimizer tensors without optimizer metadata");
        return MM_OK;
    }
    if ((rc = mm_model_set_optimizer(m, ar->opt_kind)))
        return mmi_fail(e, rc == MM_E_NOMEM ? rc : MM_E_FORMAT, "optimizer: %s", m->err.msg);
    for (int32_t i = 0; i < ar->n_hyper; i++)
        if ((rc = mm_model_set_f64(m, ar->hyper_id[i], ar->hyper_val[i])))
            return mmi_fail(e, MM_E_FORMAT, "optimizer: %s rejected: %s",
                            mmi_optim_hyper_name(ar->hyper_id[i]), m->err.msg);
    if (n_opt == 0) return MM_OK;
    if (!ar->has_state) return mmi_fail(e, MM_E_FORMAT, "optimizer state without step counts");
    for (int32_t k = 0; k < m->opt.n_slots; k++) {
        if (!m->opt.slot[k]) continue;
        snprintf(suf, sizeof suf, ".%s", m->opt.slot_name[k]);
        for (int32_t i = 0; i < m->n_layers; i++)
            for (int32_t t = 0; t < m->layers[i].n_tensors; t++, found++)
                if ((rc = load_check_tensor(m, f, i, t, "optimizer.", suf, e))) return rc;
    }
    if (found != n_opt)
        return mmi_fail(e, MM_E_FORMAT, "the file has %lld optimizer tensors but %s keeps %lld",
                        (long long)n_opt, mmi_optim_kind_name(ar->opt_kind), (long long)found);
    for (int32_t k = 0; k < m->opt.n_slots; k++) {
        if (!m->opt.slot[k]) continue;
        snprintf(suf, sizeof suf, ".%s", m->opt.slot_name[k]);
        load_copy(m, f, m->opt.slot[k], "optimizer.", suf);
    }
    memcpy(m->opt.layer_t, ar->layer_step, (size_t)m->n_layers * sizeof(int64_t));
    memcpy(m->opt.buf_init, ar->buf_init, (size_t)m->n_layers * sizeof(int32_t));
    m->opt.steps = ar->steps;
    return MM_OK;
}

/* Resolves the caller's options: defaults when NULL, input_dim from the file when 0. */
static int load_opts(mm_model_opts *o, const mm_model_opts *opts, mmi_alloc *a, mmi_err *e,
                     const char *fn)
{
    int rc = mm_model_opts_init(o);
    if (rc == MM_OK && opts) rc = mmi_opts_copy(o, opts, sizeof *o, e, fn);
    if (rc) return rc;
    return mmi_alloc_init(a, o->alloc, e);
}

/* Builds the model described by a validated file. */
static int load_build(mm_model **out, const mmi_st_file *f, const mm_model_opts *o,
                      const mmi_alloc *a, mmi_err *e)
{
    mmi_arch ar;
    mm_model_opts oc = *o;
    mm_model *m = NULL;
    int64_t n_opt = 0;
    int rc;
    memset(&ar, 0, sizeof ar);
    if ((rc = load_describe(&ar, f, a, e))) return rc;
    if (oc.input_dim != 0 && oc.input_dim != ar.input_dim) {
        rc = mmi_fail(e, MM_E_SHAPE, "the file's input_dim is %lld but opts.input_dim is %lld",
                      (long long)ar.input_dim, (long long)oc.input_dim);
        goto done;
    }
    oc.input_dim = ar.input_dim;
    oc.err_buf = NULL;
    oc.err_buf_size = 0;
    if ((rc = mm_model_create(&m, &oc))) {
        rc = mmi_fail(e, rc, "mm_model_create failed (%s)", mm_status_name(rc));
        goto done;
    }
    if ((rc = load_layers(m, &ar, e)) || (rc = load_check_params(m, f, &n_opt, e)) ||
        (rc = load_check_reserve(m, f, e)))
        goto done;
    if ((rc = mm_model_finalize(m))) {
        rc = mmi_fail(e, rc, "%s", m->err.msg);
        goto done;
    }
    load_copy(m, f, m->params, "", "");
    if ((rc = load_optim(m, &ar, f, n_opt, e))) goto done;
    mmi_err_clear(&m->err);
    *out = m;
    m = NULL;
done:
    mm_model_free(m);
    mmi_arch_free(&ar);
    return rc;
}

/* The common tail of the three loaders: report the text, prefixed with fn. */
static int load_finish(int rc, const mmi_err *e, const mm_model_opts *o, const char *fn)
{
    mmi_err pe;
    if (rc == MM_OK) return rc;
    mmi_fail(&pe, rc, "%s: %s", fn, e->msg);
    if (o->err_buf) mmi_err_export(&pe, o->err_buf, o->err_buf_size);
    return rc;
}

enum { SRC_MEM, SRC_CB, SRC_PATH };

/* Loads from memory, a read callback or a path (src says which). */
static int load_any(mm_model **out, int src, const void *data, size_t size, mm_read_fn rfn,
                    void *ud, const char *path, const mm_model_opts *opts, const char *fn)
{
    mm_model_opts o;
    mmi_st_limits lim;
    mmi_st_file f;
    mmi_alloc a;
    mmi_err e;
    int rc;
    e.msg[0] = '\0';
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    if ((rc = load_opts(&o, opts, &a, &e, fn))) {
        /* Refused options (a newer struct, a garbage struct_size): their err_buf is used only
         * where mm_model_create would use it (mmi_opts_export_error's rule). */
        mmi_err pe = e;
        if (strncmp(e.msg, fn, strlen(fn)) != 0) mmi_fail(&pe, rc, "%s: %s", fn, e.msg);
        if (opts)
            mmi_opts_export_error(opts, offsetof(mm_model_opts, err_buf),
                                  offsetof(mm_model_opts, err_buf_size), &pe);
        return rc;
    }
    if ((src == SRC_MEM && !data) || (src == SRC_CB && !rfn) || (src == SRC_PATH && !path))
        return load_finish(mmi_fail(&e, MM_E_INVALID_ARG, "%s is NULL",
                                    src == SRC_MEM  ? "data"
                                    : src == SRC_CB ? "fn"
                                                    : "path"),
                           &e, &o, fn);
    mmi_st_limits_default(&lim);
    memset(&f, 0, sizeof f);
    if (src == SRC_MEM)
        rc = mmi_st_parse(&f, data, size, &lim, &a, &e);
    else if (src == SRC_CB)
        rc = mmi_st_load_cb(&f, rfn, ud, 0, &lim, &a, &e);
    else
        rc = mmi_st_load_path(&f, path, &lim, &a, &e);
    if (rc == MM_OK) {
        rc = load_build(out, &f, &o, &a, &e);
        mmi_st_free(&f);
    }
    return load_finish(rc, &e, &o, fn);
}

MM_API int mm_model_load(mm_model **out, const char *path, const mm_model_opts *opts)
{
    return load_any(out, SRC_PATH, NULL, 0, NULL, NULL, path, opts, "mm_model_load");
}

MM_API int mm_model_load_mem(mm_model **out, const void *data, size_t size,
                             const mm_model_opts *opts)
{
    return load_any(out, SRC_MEM, data, size, NULL, NULL, NULL, opts, "mm_model_load_mem");
}

MM_API int mm_model_load_cb(mm_model **out, mm_read_fn fn, void *ud, const mm_model_opts *opts)
{
    return load_any(out, SRC_CB, NULL, 0, fn, ud, NULL, opts, "mm_model_load_cb");
}
