/* SPDX-License-Identifier: MIT */
/* policy_io_mem.c — the public entry points of policy files: save to a path (atomically) or a
 * buffer, weights only or a full training checkpoint; load into an existing handle from a path,
 * a buffer or a read callback; create a handle from a file (mm_policy_load_new). All of them
 * go through the one list, plan and validation in policy_io.c. */
#include "mmi_policy_io.h"

#include <stddef.h>
#include <string.h>

static int produce(void *ud, mmi_sink_fn sink, void *sink_ud)
{
    return mmi_st_plan_emit((const mmi_st_plan *)ud, sink, sink_ud);
}

/* Builds the list and plan of p's file (the caller frees both). */
static int plan_file(mm_policy *p, uint32_t flags, mmi_pio_list *L, mmi_st_plan *plan,
                     const char *fn)
{
    int rc;
    if (flags & ~(uint32_t)MM_POLICY_SAVE_CHECKPOINT)
        return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: unknown flags 0x%x", fn, (unsigned)flags);
    L->checkpoint = (flags & MM_POLICY_SAVE_CHECKPOINT) != 0;
    rc = mmi_pio_list_make(p, L, fn);
    if (rc == MM_OK && L->checkpoint) rc = mmi_ckpt_list(p, L, fn);
    if (rc == MM_OK) rc = mmi_pio_plan(p, L, plan, fn);
    return rc;
}

static int save_any(mm_policy *p, const char *path, void *buf, size_t cap, size_t *size,
                    uint32_t flags, const char *fn)
{
    mmi_pio_list *L;
    mmi_st_plan plan;
    int rc;
    if (!(L = mmi_calloc(&p->alloc, sizeof *L)))
        return mmi_fail(&p->err, MM_E_NOMEM, "%s: tensor table", fn);
    memset(&plan, 0, sizeof plan);
    rc = plan_file(p, flags, L, &plan, fn);
    if (rc == MM_OK && path)
        rc = mmi_file_write_atomic(path, produce, &plan, &p->err, fn);
    else if (rc == MM_OK)
        rc = mmi_st_plan_to_mem(&plan, buf, cap, size, &p->err, fn);
    mmi_st_plan_free(&plan);
    mmi_pio_list_free(p, L);
    mmi_free(&p->alloc, L, sizeof *L);
    return rc;
}

int mm_policy_save_ex(mm_policy *p, const char *path, uint32_t flags)
{
    static const char fn[] = "mm_policy_save_ex";
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: path is NULL", fn);
    if (p->comm && mm_comm_rank(p->comm) != 0)
        return MM_OK; /* ranks are identical: rank 0 writes */
    return save_any(p, path, NULL, 0, NULL, flags, fn);
}

int mm_policy_save(mm_policy *p, const char *path)
{
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "mm_policy_save: path is NULL");
    if (p->comm && mm_comm_rank(p->comm) != 0) return MM_OK;
    return save_any(p, path, NULL, 0, NULL, 0, "mm_policy_save");
}

int mm_policy_save_mem(mm_policy *p, void *buf, size_t cap, size_t *size, uint32_t flags)
{
    static const char fn[] = "mm_policy_save_mem";
    if (!p) return MM_E_INVALID_ARG;
    if (!buf && !size)
        return mmi_fail(&p->err, MM_E_INVALID_ARG, "%s: buf and size are both NULL", fn);
    return save_any(p, NULL, buf, cap, size, flags, fn);
}

/* ---- loading into an existing handle ---------------------------------------------------------- */
enum { SRC_PATH, SRC_MEM, SRC_CB };

static int parse_any(mmi_st_file *f, int src, const char *path, const void *data, size_t size,
                     mm_read_fn rd, void *ud, const mmi_alloc *a, mmi_err *e)
{
    mmi_st_limits lim;
    mmi_st_limits_default(&lim);
    memset(f, 0, sizeof *f);
    if (src == SRC_PATH) return mmi_st_load_path(f, path, &lim, a, e);
    if (src == SRC_MEM) return mmi_st_parse(f, data, size, &lim, a, e);
    return mmi_st_load_cb(f, rd, ud, 0, &lim, a, e);
}

static int load_any(mm_policy *p, int src, const char *path, const void *data, size_t size,
                    mm_read_fn rd, void *ud, const char *fn)
{
    mmi_st_file f;
    mmi_err e;
    int rc;
    mmi_err_clear(&e);
    rc = parse_any(&f, src, path, data, size, rd, ud, &p->alloc, &e);
    if (rc != MM_OK) {
        mmi_st_free(&f);
        return mmi_fail(&p->err, rc, "%s: %s", fn, e.msg);
    }
    rc = mmi_pio_apply(p, &f, fn);
    mmi_st_free(&f);
    return rc;
}

int mm_policy_load(mm_policy *p, const char *path)
{
    if (!p) return MM_E_INVALID_ARG;
    if (!path) return mmi_fail(&p->err, MM_E_INVALID_ARG, "mm_policy_load: path is NULL");
    return load_any(p, SRC_PATH, path, NULL, 0, NULL, NULL, "mm_policy_load");
}

int mm_policy_load_mem(mm_policy *p, const void *data, size_t size)
{
    if (!p) return MM_E_INVALID_ARG;
    if (!data) return mmi_fail(&p->err, MM_E_INVALID_ARG, "mm_policy_load_mem: data is NULL");
    return load_any(p, SRC_MEM, NULL, data, size, NULL, NULL, "mm_policy_load_mem");
}

int mm_policy_load_cb(mm_policy *p, mm_read_fn fn, void *ud)
{
    if (!p) return MM_E_INVALID_ARG;
    if (!fn) return mmi_fail(&p->err, MM_E_INVALID_ARG, "mm_policy_load_cb: fn is NULL");
    return load_any(p, SRC_CB, NULL, NULL, 0, fn, ud, "mm_policy_load_cb");
}

/* ---- creating a handle from a file ------------------------------------------------------------ */

static void export_error(const mm_policy_opts *opts, const mmi_err *e)
{
    if (opts)
        mmi_opts_export_error(opts, offsetof(mm_policy_opts, err_buf),
                              offsetof(mm_policy_opts, err_buf_size), e);
}

/* The options: the caller's (or the defaults of the file's algorithm) with the architecture,
 * spaces and normalisation the file describes. */
static int load_new_opts(const mmi_st_file *f, const mm_policy_opts *opts, mm_policy_opts *o,
                         float *lo, float *hi, mmi_err *e)
{
    static const char fn[] = "mm_policy_load_new";
    mm_policy_opts arch;
    int rc;
    memset(&arch, 0, sizeof arch);
    if ((rc = mmi_pio_read_arch(f, &arch, lo, hi, 65536, e)) != MM_OK) return rc;
    if ((rc = mm_policy_opts_init(o, arch.algo)) != MM_OK) return rc;
    if (opts) {
        /* The convention of every create function: an older caller's struct keeps the
         * defaults in its tail, a newer one's is accepted when the fields it adds are zero. */
        if ((rc = mmi_opts_copy(o, opts, sizeof *o, e, fn)) != MM_OK) return rc;
        if (o->algo != arch.algo)
            return mmi_fail(e, MM_E_FORMAT,
                            "%s: the file holds a %s policy; opts are for "
                            "algorithm %d",
                            fn, mmi_pio_algo_name(arch.algo), (int)o->algo);
    }
    rc = mmi_pio_read_arch(f, o, lo, hi, 65536, e); /* the file's architecture wins */
    return rc;
}

int mm_policy_load_new(mm_policy **out, const char *path, const mm_policy_opts *opts)
{
    static const char fn[] = "mm_policy_load_new";
    mmi_alloc a;
    mmi_err e;
    mmi_st_file f;
    mm_policy_opts o;
    mm_policy *p = NULL;
    float *bounds = NULL;
    const size_t nb = 2 * 65536 * sizeof(float);
    int rc;
    mmi_err_clear(&e);
    memset(&f, 0, sizeof f);
    if (out) *out = NULL;
    if (!out || !path)
        rc = mmi_fail(&e, MM_E_INVALID_ARG, "%s: NULL argument", fn);
    else if (opts && (rc = mmi_opts_copy(&o, opts, sizeof o, &e, fn)) != MM_OK)
        ; /* a garbage struct_size (an uninitialised struct): its alloc is not trusted */
    else
        rc = mmi_alloc_init(&a,
                            opts && opts->struct_size >=
                                        offsetof(mm_policy_opts, alloc) + sizeof opts->alloc
                                ? opts->alloc
                                : NULL,
                            &e);
    if (rc == MM_OK && !(bounds = mmi_malloc(&a, nb)))
        rc = mmi_fail(&e, MM_E_NOMEM, "%s: bounds", fn);
    if (rc == MM_OK && (rc = parse_any(&f, SRC_PATH, path, NULL, 0, NULL, NULL, &a, &e)) != MM_OK) {
        mmi_err pe = e; /* the file's text, named by the function as every other load's */
        mmi_fail(&e, rc, "%s: %s", fn, pe.msg);
    }
    if (rc == MM_OK) rc = load_new_opts(&f, opts, &o, bounds, bounds + 65536, &e);
    if (rc == MM_OK) {
        char buf[MMI_ERRMSG_SIZE] = "";
        o.err_buf = buf, o.err_buf_size = sizeof buf;
        rc = mm_policy_create(&p, &o);
        if (rc != MM_OK) mmi_fail(&e, rc, "%s: %s", fn, buf);
    }
    if (rc == MM_OK && (rc = mmi_pio_apply(p, &f, fn)) != MM_OK) {
        e = p->err;
        mm_policy_free(p);
        p = NULL;
    }
    mmi_st_free(&f);
    if (bounds) mmi_free(&a, bounds, nb);
    if (rc != MM_OK)
        export_error(opts, &e);
    else
        *out = p;
    return rc;
}
