/* SPDX-License-Identifier: MIT */
/* st_write.c — writing safetensors: plan the file (offsets, CRC, JSON header padded with
 * spaces to a multiple of 8 bytes so the data section is 8-byte aligned), then stream it to a
 * sink: a memory buffer or the atomic file writer. */
#include "mmi_io.h"

#include <stdio.h>
#include <string.h>

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* Feeds nbytes of elements (elsize bytes each, host order) to sink as little-endian bytes; a
 * big-endian host swaps through a small stack buffer. */
static int st_le_bytes(const void *data, size_t elsize, uint64_t nbytes, mmi_sink_fn sink, void *ud)
{
    const unsigned char *p = (const unsigned char *)data;
    unsigned char tmp[4096];
    if (nbytes == 0) return MM_OK;
    if (host_is_le() || elsize == 1) return sink(ud, p, (size_t)nbytes);
    while (nbytes > 0) {
        size_t chunk = nbytes < sizeof tmp ? (size_t)nbytes : sizeof tmp;
        int rc;
        for (size_t i = 0; i < chunk; i += elsize)
            for (size_t j = 0; j < elsize; j++) tmp[i + j] = p[i + elsize - 1 - j];
        if ((rc = sink(ud, tmp, chunk))) return rc;
        p += chunk;
        nbytes -= chunk;
    }
    return MM_OK;
}

static int crc_sink(void *ud, const void *p, size_t n)
{
    uint32_t *crc = (uint32_t *)ud;
    *crc = mmi_crc32(*crc, p, n);
    return MM_OK;
}

/* Validates one tensor and returns its byte count in *bytes. */
static int st_out_check(const mmi_st_out *t, uint64_t *bytes, mmi_err *e)
{
    int64_t numel = 1;
    size_t es = mmi_st_dtype_size(t->dtype);
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "tensor name is empty or reserved");
    if (es == 0) return mmi_fail(e, MM_E_INVALID_ARG, "tensor '%s': unknown dtype", t->name);
    if (t->ndim < 0 || t->ndim > MM_TENSOR_MAX_DIMS)
        return mmi_fail(e, MM_E_INVALID_ARG, "tensor '%s': bad ndim %d", t->name, (int)t->ndim);
    for (int32_t d = 0; d < t->ndim; d++)
        if (mmi_mul_i64(&numel, numel, t->shape[d]) || numel > MMI_MAX_NUMEL)
            return mmi_fail(e, MM_E_RANGE, "tensor '%s': bad or too large shape", t->name);
    if (numel > 0 && !t->data)
        return mmi_fail(e, MM_E_INVALID_ARG, "tensor '%s': no data", t->name);
    *bytes = (uint64_t)numel * es;
    return MM_OK;
}

/* Writes the header JSON (unpadded) into w. */
static void st_header_json(mmi_jw *w, const mmi_st_out *t, int64_t n, const char *const *keys,
                           const char *const *vals, int64_t n_meta, const char *crc)
{
    uint64_t off = 0;
    mmi_jw_obj_begin(w);
    if (n_meta > 0 || crc) {
        mmi_jw_key(w, "__metadata__");
        mmi_jw_obj_begin(w);
        for (int64_t i = 0; i < n_meta; i++) {
            mmi_jw_key(w, keys[i]);
            mmi_jw_str(w, vals[i]);
        }
        if (crc) {
            mmi_jw_key(w, "crc32");
            mmi_jw_str(w, crc);
        }
        mmi_jw_obj_end(w);
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int32_t d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        mmi_jw_key(w, t[i].name);
        mmi_jw_obj_begin(w);
        mmi_jw_key(w, "dtype");
        mmi_jw_str(w, mmi_st_dtype_name(t[i].dtype));
        mmi_jw_key(w, "shape");
        mmi_jw_arr_begin(w);
        for (int32_t d = 0; d < t[i].ndim; d++) mmi_jw_i64(w, t[i].shape[d]);
        mmi_jw_arr_end(w);
        mmi_jw_key(w, "data_offsets");
        mmi_jw_arr_begin(w);
        mmi_jw_i64(w, (int64_t)off);
        off += (uint64_t)numel * mmi_st_dtype_size(t[i].dtype);
        mmi_jw_i64(w, (int64_t)off);
        mmi_jw_arr_end(w);
        mmi_jw_obj_end(w);
    }
    mmi_jw_obj_end(w);
}

/* Measures, allocates and writes the padded header. */
static int st_build_header(mmi_st_plan *p, const char *const *keys, const char *const *vals,
                           int64_t n_meta, const char *crc, const mmi_alloc *a, mmi_err *e)
{
    mmi_jw w;
    size_t need, padded;
    mmi_jw_init(&w, NULL, 0);
    st_header_json(&w, p->tensors, p->n_tensors, keys, vals, n_meta, crc);
    if (mmi_jw_finish(&w, &need) == MM_E_INVALID_ARG)
        return mmi_fail(e, MM_E_INVALID_ARG, "a tensor name or metadata text is not valid UTF-8");
    padded = (w.len + 7) & ~(size_t)7;
    if (padded < w.len || mmi_align_up(padded + 1) == 0)
        return mmi_fail(e, MM_E_RANGE, "header too large");
    p->header_cap = padded + 1;
    p->header = (char *)mmi_malloc(a, p->header_cap);
    if (!p->header) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", p->header_cap);
    mmi_jw_init(&w, p->header, p->header_cap);
    st_header_json(&w, p->tensors, p->n_tensors, keys, vals, n_meta, crc);
    while (w.len < padded) mmi_jw_raw(&w, " ", 1);
    if (mmi_jw_finish(&w, NULL) != MM_OK) return mmi_fail(e, MM_E_INTERNAL, "header size changed");
    p->header_len = padded;
    return MM_OK;
}

int mmi_st_plan_make(mmi_st_plan *p, const mmi_st_out *t, int64_t n, const char *const *keys,
                     const char *const *vals, int64_t n_meta, int add_crc, const mmi_alloc *a,
                     mmi_err *e)
{
    uint64_t total = 0, bytes;
    uint32_t crc = 0;
    char crc_text[16];
    int rc;
    memset(p, 0, sizeof *p);
    p->alloc = *a;
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && (!keys || !vals)))
        return mmi_fail(e, MM_E_INVALID_ARG, "bad tensor or metadata list");
    for (int64_t i = 0; i < n_meta; i++)
        if (!keys[i] || !vals[i] || (add_crc && strcmp(keys[i], "crc32") == 0))
            return mmi_fail(e, MM_E_INVALID_ARG, "metadata entry %lld is NULL or reserved",
                            (long long)i);
    for (int64_t i = 0; i < n; i++) {
        if ((rc = st_out_check(&t[i], &bytes, e))) return rc;
        if (total + bytes < total || total + bytes > ((uint64_t)1 << 62))
            return mmi_fail(e, MM_E_RANGE, "data section too large");
        total += bytes;
    }
    p->tensors = t;
    p->n_tensors = n;
    p->data_len = total;
    if (add_crc) {
        for (int64_t i = 0; i < n; i++) {
            st_out_check(&t[i], &bytes, e);
            st_le_bytes(t[i].data, mmi_st_dtype_size(t[i].dtype), bytes, crc_sink, &crc);
        }
        snprintf(crc_text, sizeof crc_text, "%08x", (unsigned)crc);
    }
    rc = st_build_header(p, keys, vals, n_meta, add_crc ? crc_text : NULL, a, e);
    if (rc) {
        mmi_st_plan_free(p);
        return rc;
    }
    p->total_size = 8 + p->header_len + p->data_len;
    return MM_OK;
}

int mmi_st_plan_emit(const mmi_st_plan *p, mmi_sink_fn sink, void *ud)
{
    unsigned char len8[8];
    uint64_t n = p->header_len;
    int rc;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    if ((rc = sink(ud, len8, 8)) || (rc = sink(ud, p->header, p->header_len))) return rc;
    for (int64_t i = 0; i < p->n_tensors; i++) {
        const mmi_st_out *t = &p->tensors[i];
        uint64_t numel = 1;
        for (int32_t d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        rc = st_le_bytes(t->data, mmi_st_dtype_size(t->dtype), numel * mmi_st_dtype_size(t->dtype),
                         sink, ud);
        if (rc) return rc;
    }
    return MM_OK;
}

void mmi_st_plan_free(mmi_st_plan *p)
{
    if (!p) return;
    if (p->header) mmi_free(&p->alloc, p->header, p->header_cap);
    p->header = NULL;
    p->header_cap = 0;
}

typedef struct st_memsink {
    unsigned char *p;
    size_t pos, cap;
} st_memsink;

static int mem_sink(void *ud, const void *p, size_t n)
{
    st_memsink *m = (st_memsink *)ud;
    if (n > m->cap - m->pos) return MM_E_INTERNAL; /* the plan's size is exact */
    memcpy(m->p + m->pos, p, n);
    m->pos += n;
    return MM_OK;
}

int mmi_st_plan_to_mem(const mmi_st_plan *p, void *buf, size_t cap, size_t *size, mmi_err *e,
                       const char *fn)
{
    st_memsink m;
    int rc;
    if (p->total_size > SIZE_MAX)
        return mmi_fail(e, MM_E_RANGE, "%s: the file does not fit in memory", fn);
    /* *size is written before the bytes, which would overwrite it (or it them). */
    if (buf && size && mmi_overlaps(size, sizeof *size, buf, cap))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: size points into buf", fn);
    if (size) *size = (size_t)p->total_size;
    if (!buf) return MM_OK;
    if (cap < p->total_size)
        return mmi_fail(e, MM_E_BUFFER_TOO_SMALL,
                        "%s: buffer of %zu bytes is too small; %llu "
                        "bytes needed",
                        fn, cap, (unsigned long long)p->total_size);
    m.p = (unsigned char *)buf;
    m.pos = 0;
    m.cap = cap;
    rc = mmi_st_plan_emit(p, mem_sink, &m);
    if (rc) return mmi_fail(e, rc, "%s: internal error while writing", fn);
    return MM_OK;
}
