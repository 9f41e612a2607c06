/* SPDX-License-Identifier: MIT */
/* safetensors.c — the safetensors container: an 8-byte little-endian header length N, N bytes
 * of JSON ({"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets"}}), then
 * the data section, which the tensors' [begin, end) byte ranges tile exactly. Parsing treats
 * every byte as hostile: each length, offset, shape, dtype and name is checked before it is
 * used, and all allocation sizes are bounded by the input length and the limits. */
#include "mmi_io.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} st_dtypes[MMI_ST_N_DTYPES] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

const char *mmi_st_dtype_name(int32_t dtype)
{
    return dtype >= 0 && dtype < MMI_ST_N_DTYPES ? st_dtypes[dtype].name : "?";
}

size_t mmi_st_dtype_size(int32_t dtype)
{
    return dtype >= 0 && dtype < MMI_ST_N_DTYPES ? st_dtypes[dtype].size : 0;
}

void mmi_st_limits_default(mmi_st_limits *lim)
{
    lim->max_header = (uint64_t)16 << 20;
    lim->max_tensors = 65536;
    lim->max_meta = 1024;
    lim->max_data = (uint64_t)1 << 42;
}

const char *mmi_io_excerpt(char *out, size_t n, const char *s, size_t len)
{
    size_t j = 0, lim;
    if (!out || n == 0) return "";
    lim = n - 1;
    if (len > lim && lim >= 3) lim -= 3; /* room for "..." */
    for (size_t i = 0; i < len && j < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > j && n - 1 - j >= 3) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- a heap sort: qsort may call malloc, which would bypass the caller's allocator ---------- */
typedef int (*st_cmp_fn)(const void *a, const void *b, const void *ctx);

static void st_swap(unsigned char *a, unsigned char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

static void st_sift(unsigned char *base, size_t root, size_t n, size_t size, st_cmp_fn cmp,
                    const void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size, ctx) < 0) child++;
        if (cmp(base + root * size, base + child * size, ctx) >= 0) return;
        st_swap(base + root * size, base + child * size, size);
        root = child;
    }
}

static void st_sort(void *base, size_t n, size_t size, st_cmp_fn cmp, const void *ctx)
{
    unsigned char *b = (unsigned char *)base;
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) st_sift(b, i, n, size, cmp, ctx);
    for (size_t end = n - 1; end > 0; end--) {
        st_swap(b, b + end * size, size);
        st_sift(b, 0, end, size, cmp, ctx);
    }
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_by_offset(const void *a, const void *b, const void *ctx)
{
    const mmi_st_tensor *t = (const mmi_st_tensor *)ctx;
    const mmi_st_tensor *x = &t[*(const int64_t *)a], *y = &t[*(const int64_t *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_by_name(const void *a, const void *b, const void *ctx)
{
    const mmi_st_tensor *t = (const mmi_st_tensor *)ctx;
    const mmi_st_tensor *x = &t[*(const int64_t *)a], *y = &t[*(const int64_t *)b];
    return bytes_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int cmp_kv(const void *a, const void *b, const void *ctx)
{
    const mmi_st_kv *x = (const mmi_st_kv *)a, *y = (const mmi_st_kv *)b;
    (void)ctx;
    return bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* ---- header parsing ------------------------------------------------------------------------- */
static int st_dtype_lookup(const mmi_json *v)
{
    for (int i = 0; i < MMI_ST_N_DTYPES; i++)
        if (mmi_json_str_eq(v, st_dtypes[i].name)) return i;
    return -1;
}

/* Reads the shape array of tensor t (described by tn for messages). */
static int st_shape(mmi_st_tensor *t, const mmi_json *v, const char *tn, mmi_err *e)
{
    int32_t nd = 0;
    int64_t numel = 1;
    if (!v || v->type != MMI_JSON_ARRAY)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': shape is not an array", tn);
    if (v->n > MM_TENSOR_MAX_DIMS)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': %u dimensions (at most %d)", tn,
                        (unsigned)v->n, MM_TENSOR_MAX_DIMS);
    for (const mmi_json *d = mmi_json_first(v); d; d = mmi_json_next(v, d)) {
        if (d->type != MMI_JSON_NUMBER || !d->is_int || d->i < 0)
            return mmi_fail(e, MM_E_FORMAT,
                            "tensor '%s': shape entry %d is not a non-negative integer", tn,
                            (int)nd);
        if (mmi_mul_i64(&numel, numel, d->i) || numel > MMI_MAX_NUMEL)
            return mmi_fail(e, MM_E_FORMAT, "tensor '%s': shape has too many elements", tn);
        t->shape[nd++] = d->i;
    }
    t->ndim = nd;
    t->numel = numel;
    return MM_OK;
}

static int st_offsets(mmi_st_tensor *t, const mmi_json *v, const char *tn, mmi_err *e)
{
    const mmi_json *b = mmi_json_first(v), *en;
    if (!v || v->type != MMI_JSON_ARRAY || v->n != 2)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': data_offsets is not an array of 2", tn);
    en = mmi_json_next(v, b);
    if (b->type != MMI_JSON_NUMBER || !b->is_int || b->i < 0 || en->type != MMI_JSON_NUMBER ||
        !en->is_int || en->i < 0)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': data_offsets must be non-negative integers",
                        tn);
    if (en->i < b->i)
        return mmi_fail(e, MM_E_FORMAT,
                        "tensor '%s': data_offsets [%lld, %lld] end before "
                        "they begin",
                        tn, (long long)b->i, (long long)en->i);
    t->begin = (uint64_t)b->i;
    t->end = (uint64_t)en->i;
    return MM_OK;
}

/* Fills t from the header member v: exactly the fields dtype, shape and data_offsets. */
static int st_tensor(mmi_st_tensor *t, const mmi_json *v, mmi_err *e)
{
    const mmi_json *dt = NULL, *sh = NULL, *off = NULL;
    char tn[64], fk[40];
    uint64_t need;
    int rc;
    mmi_io_excerpt(tn, sizeof tn, v->key, v->key_len);
    if (v->key_len == 0) return mmi_fail(e, MM_E_FORMAT, "empty tensor name");
    if (memchr(v->key, '\0', v->key_len))
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': name contains a NUL byte", tn);
    if (v->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': entry is not an object", tn);
    for (const mmi_json *c = mmi_json_first(v); c; c = mmi_json_next(v, c)) {
        const mmi_json **slot = NULL;
        if (c->key_len == 5 && !memcmp(c->key, "dtype", 5))
            slot = &dt;
        else if (c->key_len == 5 && !memcmp(c->key, "shape", 5))
            slot = &sh;
        else if (c->key_len == 12 && !memcmp(c->key, "data_offsets", 12))
            slot = &off;
        if (!slot || *slot)
            return mmi_fail(e, MM_E_FORMAT, "tensor '%s': %s field '%s'", tn,
                            slot ? "duplicate" : "unknown",
                            mmi_io_excerpt(fk, sizeof fk, c->key, c->key_len));
        *slot = c;
    }
    if (!dt || !sh || !off)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': missing %s", tn,
                        !dt   ? "dtype"
                        : !sh ? "shape"
                              : "data_offsets");
    t->name = v->key;
    t->name_len = v->key_len;
    t->dtype = st_dtype_lookup(dt);
    if (t->dtype < 0)
        return mmi_fail(e, MM_E_FORMAT, "tensor '%s': unknown dtype %s%s%s", tn,
                        dt->type == MMI_JSON_STRING ? "'" : "",
                        dt->type == MMI_JSON_STRING
                            ? mmi_io_excerpt(fk, sizeof fk, dt->str, dt->str_len)
                            : "(not a string)",
                        dt->type == MMI_JSON_STRING ? "'" : "");
    if ((rc = st_shape(t, sh, tn, e)) || (rc = st_offsets(t, off, tn, e))) return rc;
    /* numel <= 2^40 and sizes <= 8, so the product cannot overflow. */
    need = (uint64_t)t->numel * st_dtypes[t->dtype].size;
    if (t->end - t->begin != need)
        return mmi_fail(e, MM_E_FORMAT,
                        "tensor '%s': shape and dtype %s need %llu bytes but data_offsets "
                        "[%llu, %llu] hold %llu",
                        tn, st_dtypes[t->dtype].name, (unsigned long long)need,
                        (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->end - t->begin));
    return MM_OK;
}

/* The byte ranges, in offset order, must start at 0 and follow each other without overlap or
 * hole (the format requires the data section to be fully indexed). */
static int st_tiling(mmi_st_file *f, int64_t *order, const mmi_st_limits *lim, mmi_err *e)
{
    uint64_t pos = 0;
    char a[64], b[64];
    for (int64_t i = 0; i < f->n_tensors; i++) order[i] = i;
    st_sort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset, f->tensors);
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const mmi_st_tensor *t = &f->tensors[order[i]];
        if (t->begin < pos)
            return mmi_fail(e, MM_E_FORMAT, "tensors '%s' and '%s' overlap in the data section",
                            mmi_io_excerpt(a, sizeof a, f->tensors[order[i - 1]].name,
                                           f->tensors[order[i - 1]].name_len),
                            mmi_io_excerpt(b, sizeof b, t->name, t->name_len));
        if (t->begin > pos)
            return mmi_fail(e, MM_E_FORMAT,
                            "tensor '%s' starts at byte %llu of the data "
                            "section, leaving a hole after byte %llu",
                            mmi_io_excerpt(a, sizeof a, t->name, t->name_len),
                            (unsigned long long)t->begin, (unsigned long long)pos);
        pos = t->end;
    }
    if (pos > lim->max_data)
        return mmi_fail(e, MM_E_FORMAT, "data section of %llu bytes exceeds the limit of %llu",
                        (unsigned long long)pos, (unsigned long long)lim->max_data);
    f->data_len = pos;
    return MM_OK;
}

static int st_unique_names(mmi_st_file *f, mmi_err *e)
{
    char a[64];
    for (int64_t i = 0; i < f->n_tensors; i++) f->by_name[i] = i;
    st_sort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_by_name, f->tensors);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const mmi_st_tensor *x = &f->tensors[f->by_name[i - 1]], *y = &f->tensors[f->by_name[i]];
        if (bytes_cmp(x->name, x->name_len, y->name, y->name_len) == 0)
            return mmi_fail(e, MM_E_FORMAT, "duplicate tensor name '%s'",
                            mmi_io_excerpt(a, sizeof a, y->name, y->name_len));
    }
    return MM_OK;
}

/* __metadata__ must map strings to strings (the format says so); keys are unique. */
static int st_metadata(mmi_st_file *f, const mmi_json *m, mmi_err *e)
{
    char a[64];
    int64_t k = 0;
    if (m->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "__metadata__ is not an object");
    for (const mmi_json *c = mmi_json_first(m); c; c = mmi_json_next(m, c), k++) {
        if (c->type != MMI_JSON_STRING)
            return mmi_fail(e, MM_E_FORMAT, "__metadata__ value of '%s' is not a string",
                            mmi_io_excerpt(a, sizeof a, c->key, c->key_len));
        f->meta[k].key = c->key;
        f->meta[k].key_len = c->key_len;
        f->meta[k].val = c->str;
        f->meta[k].val_len = c->str_len;
    }
    st_sort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_kv, NULL);
    for (int64_t i = 1; i < f->n_meta; i++)
        if (cmp_kv(&f->meta[i - 1], &f->meta[i], NULL) == 0)
            return mmi_fail(e, MM_E_FORMAT, "duplicate __metadata__ key '%s'",
                            mmi_io_excerpt(a, sizeof a, f->meta[i].key, f->meta[i].key_len));
    return MM_OK;
}

/* Allocates the tables: tensors, name index, offset order and metadata, one block. */
static int st_tables(mmi_st_file *f, int64_t **order, const mmi_alloc *a, mmi_err *e)
{
    size_t nt = (size_t)f->n_tensors, tb, ib, mb, total;
    if (mmi_mul_size(&tb, nt, sizeof(mmi_st_tensor)) ||
        mmi_mul_size(&ib, nt, 2 * sizeof(int64_t)) ||
        mmi_mul_size(&mb, (size_t)f->n_meta, sizeof(mmi_st_kv)) || mmi_add_size(&total, tb, ib) ||
        mmi_add_size(&total, total, mb) || (total && mmi_align_up(total) == 0))
        return mmi_fail(e, MM_E_FORMAT, "header tables too large");
    f->block = mmi_calloc(a, total);
    if (!f->block) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", total);
    f->block_size = total;
    f->tensors = (mmi_st_tensor *)f->block;
    f->by_name = (int64_t *)((char *)f->block + tb);
    *order = f->by_name + nt;
    f->meta = (mmi_st_kv *)((char *)f->block + tb + ib);
    return MM_OK;
}

/* Walks the root object: counts, then fills metadata and tensors, then cross-checks. */
static int st_walk(mmi_st_file *f, const mmi_st_limits *lim, mmi_err *e)
{
    const mmi_json *root = f->doc.root, *meta = NULL;
    int64_t *order = NULL, k = 0;
    int rc;
    if (root->type != MMI_JSON_OBJECT)
        return mmi_fail(e, MM_E_FORMAT, "header is not a JSON object");
    for (const mmi_json *c = mmi_json_first(root); c; c = mmi_json_next(root, c)) {
        if (c->key_len == 12 && !memcmp(c->key, "__metadata__", 12)) {
            if (meta) return mmi_fail(e, MM_E_FORMAT, "duplicate __metadata__");
            meta = c;
        }
    }
    f->has_meta = meta != NULL;
    f->n_tensors = (int64_t)root->n - f->has_meta;
    f->n_meta = meta && meta->type == MMI_JSON_OBJECT ? (int64_t)meta->n : 0;
    if (f->n_tensors > lim->max_tensors)
        return mmi_fail(e, MM_E_FORMAT, "%lld tensors exceed the limit of %lld",
                        (long long)f->n_tensors, (long long)lim->max_tensors);
    if (f->n_meta > lim->max_meta)
        return mmi_fail(e, MM_E_FORMAT, "%lld metadata entries exceed the limit of %lld",
                        (long long)f->n_meta, (long long)lim->max_meta);
    if ((rc = st_tables(f, &order, &f->alloc, e))) return rc;
    if (meta && (rc = st_metadata(f, meta, e))) return rc;
    for (const mmi_json *c = mmi_json_first(root); c; c = mmi_json_next(root, c))
        if (c != meta && (rc = st_tensor(&f->tensors[k++], c, e))) return rc;
    if ((rc = st_unique_names(f, e))) return rc;
    return st_tiling(f, order, lim, e);
}

/* Parses the header of a file whose first avail bytes are in buf (at least 8 + N needed). */
static int st_header(mmi_st_file *f, const unsigned char *buf, size_t avail,
                     const mmi_st_limits *lim, const mmi_alloc *a, mmi_err *e)
{
    mmi_json_limits jl;
    uint64_t n;
    int rc;
    memset(f, 0, sizeof *f);
    f->alloc = *a;
    if (avail < 8)
        return mmi_fail(e, MM_E_FORMAT,
                        "file is %zu bytes, shorter than the 8-byte header "
                        "length",
                        avail);
    n = le64(buf);
    if (n < 2 || n > lim->max_header)
        return mmi_fail(e, MM_E_FORMAT, "header length %llu is absurd (limit %llu bytes)",
                        (unsigned long long)n, (unsigned long long)lim->max_header);
    if (n > avail - 8)
        return mmi_fail(e, MM_E_FORMAT,
                        "header length %llu runs past the end of the file "
                        "(%zu bytes)",
                        (unsigned long long)n, avail);
    if (buf[8] != '{') return mmi_fail(e, MM_E_FORMAT, "header does not start with '{'");
    f->header_len = n;
    /* Depth 3 is all the format has: root, tensor entry, shape array. Each tensor costs at
     * most 14 values, each metadata entry one. */
    jl.max_depth = 3;
    jl.max_nodes = 1 + lim->max_tensors * 15 + lim->max_meta + 1;
    rc = mmi_json_parse(&f->doc, (const char *)buf + 8, (size_t)n, &jl, a, e, "header");
    if (rc == MM_OK) rc = st_walk(f, lim, e);
    if (rc) mmi_st_free(f);
    return rc;
}

int mmi_st_parse(mmi_st_file *f, const void *buf, size_t len, const mmi_st_limits *lim,
                 const mmi_alloc *a, mmi_err *e)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t rest;
    int rc = st_header(f, b, len, lim, a, e);
    if (rc) return rc;
    rest = len - 8 - (size_t)f->header_len;
    if (rest != f->data_len) {
        rc = mmi_fail(e, MM_E_FORMAT,
                      rest < f->data_len ? "file is truncated: the data section has %zu bytes, "
                                           "the tensors need %llu"
                                         : "data section has %zu bytes but the tensors cover "
                                           "only %llu",
                      rest, (unsigned long long)f->data_len);
        mmi_st_free(f);
        return rc;
    }
    f->data = b + 8 + f->header_len;
    return MM_OK;
}

/* ---- streamed loading ----------------------------------------------------------------------- */
typedef int64_t (*st_read_fn)(void *ud, void *buf, int64_t n);

typedef struct st_gbuf {
    unsigned char *p;
    size_t size, cap;
    size_t hint; /* bytes the source is known to hold (a file's size), 0 if unknown */
    const mmi_alloc *a;
} st_gbuf;

/* Reads until g holds target bytes or the stream ends. The buffer grows by doubling (capped at
 * target), so memory follows the bytes that actually arrive; when the source is known to hold
 * the target (a file's size), it is allocated once. */
static int st_fill(st_gbuf *g, size_t target, st_read_fn fn, void *ud, mmi_err *e)
{
    while (g->size < target) {
        int64_t want, got;
        if (g->size == g->cap) {
            size_t nc = g->cap < 2048 ? 4096 : g->cap * 2;
            unsigned char *np;
            if (nc > target || nc < g->cap || g->hint >= target) nc = target;
            np = (unsigned char *)mmi_malloc(g->a, nc);
            if (!np) return mmi_fail(e, MM_E_NOMEM, "out of memory (%zu bytes)", nc);
            if (g->size) memcpy(np, g->p, g->size);
            mmi_free(g->a, g->p, g->cap);
            g->p = np;
            g->cap = nc;
        }
        /* At most 1 GiB per call, so the count always fits the callback's int64_t. */
        want = (int64_t)(g->cap - g->size < ((size_t)1 << 30) ? g->cap - g->size : (size_t)1 << 30);
        got = fn(ud, g->p + g->size, want);
        if (got < 0) return mmi_fail(e, MM_E_IO, "read callback failed (%lld)", (long long)got);
        if (got > want)
            return mmi_fail(e, MM_E_IO, "read callback returned %lld for a request of %lld",
                            (long long)got, (long long)want);
        if (got == 0) break;
        g->size += (size_t)got;
    }
    return MM_OK;
}

static int st_stream(mmi_st_file *f, st_gbuf *g, st_read_fn fn, void *ud, int require_eof,
                     const mmi_st_limits *lim, mmi_err *e)
{
    uint64_t n, total;
    unsigned char extra;
    int rc;
    if ((rc = st_fill(g, 8, fn, ud, e))) return rc;
    if (g->size < 8)
        return mmi_fail(e, MM_E_FORMAT,
                        "stream ended after %zu bytes, inside the 8-byte header "
                        "length",
                        g->size);
    n = le64(g->p);
    if (n < 2 || n > lim->max_header)
        return mmi_fail(e, MM_E_FORMAT, "header length %llu is absurd (limit %llu bytes)",
                        (unsigned long long)n, (unsigned long long)lim->max_header);
    if ((rc = st_fill(g, 8 + (size_t)n, fn, ud, e))) return rc;
    if (g->size < 8 + n)
        return mmi_fail(e, MM_E_FORMAT, "stream ended inside the header (%zu of %llu bytes)",
                        g->size - 8, (unsigned long long)n);
    if ((rc = st_header(f, g->p, g->size, lim, g->a, e))) return rc;
    total = 8 + n + f->data_len;
    if (total < f->data_len || total > SIZE_MAX)
        return mmi_fail(e, MM_E_FORMAT, "data section too large");
    if ((rc = st_fill(g, (size_t)total, fn, ud, e))) return rc;
    if (g->size < total)
        return mmi_fail(e, MM_E_FORMAT,
                        "file is truncated: the data section has %zu bytes, "
                        "the tensors need %llu",
                        g->size - 8 - (size_t)n, (unsigned long long)f->data_len);
    if (require_eof) {
        int64_t got = fn(ud, &extra, 1);
        if (got < 0) return mmi_fail(e, MM_E_IO, "read callback failed (%lld)", (long long)got);
        if (got > 0) return mmi_fail(e, MM_E_FORMAT, "unexpected bytes after the last tensor");
    }
    return MM_OK;
}

int mmi_st_load_cb(mmi_st_file *f, int64_t (*fn)(void *ud, void *buf, int64_t n), void *ud,
                   int require_eof, const mmi_st_limits *lim, const mmi_alloc *a, mmi_err *e)
{
    return mmi_st_load_cb_hint(f, fn, ud, require_eof, 0, lim, a, e);
}

int mmi_st_load_cb_hint(mmi_st_file *f, int64_t (*fn)(void *ud, void *buf, int64_t n), void *ud,
                        int require_eof, uint64_t size_hint, const mmi_st_limits *lim,
                        const mmi_alloc *a, mmi_err *e)
{
    st_gbuf g = {NULL, 0, 0, 0, a};
    int rc;
    memset(f, 0, sizeof *f);
    g.hint = size_hint > SIZE_MAX ? SIZE_MAX : (size_t)size_hint;
    rc = st_stream(f, &g, fn, ud, require_eof, lim, e);
    if (rc) {
        mmi_st_free(f);
        mmi_free(a, g.p, g.cap);
        return rc;
    }
    f->owned = g.p;
    f->owned_size = g.cap;
    f->data = g.p + 8 + f->header_len;
    return MM_OK;
}

void mmi_st_free(mmi_st_file *f)
{
    mmi_alloc a;
    if (!f) return;
    a = f->alloc;
    mmi_json_free(&f->doc);
    if (f->block) mmi_free(&a, f->block, f->block_size);
    if (f->owned) mmi_free(&a, f->owned, f->owned_size);
    memset(f, 0, sizeof *f);
    f->alloc = a;
}

/* ---- queries -------------------------------------------------------------------------------- */
const mmi_st_tensor *mmi_st_find(const mmi_st_file *f, const char *name)
{
    size_t nl = strlen(name);
    int64_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const mmi_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = bytes_cmp(t->name, t->name_len, name, nl);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *mmi_st_meta(const mmi_st_file *f, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    int64_t lo = 0, hi = f->n_meta;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = bytes_cmp(f->meta[mid].key, f->meta[mid].key_len, key, kl);
        if (c == 0) {
            if (len) *len = f->meta[mid].val_len;
            return f->meta[mid].val;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

float mmi_st_f32_at(const mmi_st_file *f, const mmi_st_tensor *t, int64_t j)
{
    const unsigned char *q = f->data + t->begin + 4 * (uint64_t)j;
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    float v;
    MMI_ASSERT(j >= 0 && j < t->numel);
    memcpy(&v, &u, sizeof v);
    return v;
}

uint64_t mmi_st_u64_at(const mmi_st_file *f, const mmi_st_tensor *t, int64_t j)
{
    MMI_ASSERT(j >= 0 && j < t->numel);
    return le64(f->data + t->begin + 8 * (uint64_t)j);
}

void mmi_st_read_f32(const mmi_st_file *f, const mmi_st_tensor *t, float *dst)
{
    if (host_is_le()) {
        memcpy(dst, f->data + t->begin, (size_t)t->numel * 4);
        return;
    }
    for (int64_t i = 0; i < t->numel; i++) dst[i] = mmi_st_f32_at(f, t, i);
}

int64_t mmi_st_first_nonfinite(const mmi_st_file *f, const mmi_st_tensor *t, int32_t elem)
{
    /* IEEE 754 little-endian: the exponent is all ones (NaN, Inf) in the top two bytes. */
    const unsigned char *src = f->data + t->begin;
    const unsigned hi_mask = elem == 8 ? 0xf0u : 0x80u;
    for (int64_t i = 0; i < t->numel; i++) {
        const unsigned char *q = src + (size_t)elem * (size_t)i;
        if ((q[elem - 1] & 0x7fu) == 0x7fu && (q[elem - 2] & hi_mask) == hi_mask) return i;
    }
    return -1;
}

uint32_t mmi_st_data_crc(const mmi_st_file *f)
{
    return mmi_crc32(0, f->data, (size_t)f->data_len);
}

int mmi_st_check_crc(const mmi_st_file *f, int required, mmi_err *e)
{
    size_t len;
    const char *v = mmi_st_meta(f, "crc32", &len);
    uint32_t want = 0, got;
    if (!v) return required ? mmi_fail(e, MM_E_FORMAT, "metadata has no crc32") : MM_OK;
    if (len != 8) return mmi_fail(e, MM_E_FORMAT, "metadata crc32 is not 8 hex digits");
    for (size_t i = 0; i < 8; i++) {
        char c = v[i];
        unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                     : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                              : 16u;
        if (d > 15) return mmi_fail(e, MM_E_FORMAT, "metadata crc32 is not 8 hex digits");
        want = want << 4 | d;
    }
    got = mmi_st_data_crc(f);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Let the fuzzer reach everything behind the checksum with mutated data (as zstd does);
     * tests and the gcc replay build check it. */
    want = got;
#endif
    if (got != want)
        return mmi_fail(e, MM_E_FORMAT,
                        "data checksum mismatch: crc32 is %08x, metadata says "
                        "%08x (the file is corrupt)",
                        (unsigned)got, (unsigned)want);
    return MM_OK;
}
