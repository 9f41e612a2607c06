/* SPDX-License-Identifier: MIT */
/*
 * mmi_io.h — internal file services of the model floor: a strict, bounded JSON parser and a
 * JSON writer (json.c), the safetensors container (safetensors.c), and POSIX file plumbing
 * for atomic saves and streamed loads (file.c). Models use it now; policies use it later.
 *
 * Trust model: every byte handed to a parser is hostile. Parsers never read outside the
 * buffer they are given, allocate once per document through the caller's mmi_alloc with a
 * size that is computed, overflow-checked and capped before the allocation, and on failure
 * free everything and return MM_E_FORMAT (or MM_E_NOMEM / MM_E_IO) with text in the mmi_err.
 */
#ifndef MMI_IO_H
#define MMI_IO_H

#include "../core/mmi.h"

/* ============================== JSON (json.c) ============================================== */
enum {
    MMI_JSON_NULL = 0,
    MMI_JSON_FALSE,
    MMI_JSON_TRUE,
    MMI_JSON_NUMBER,
    MMI_JSON_STRING,
    MMI_JSON_ARRAY,
    MMI_JSON_OBJECT
};

/* One value. A document is a flat pre-order array of nodes: the children of an ARRAY or OBJECT
 * follow it, and a node's next sibling is at node + node->skip. Strings are unescaped, UTF-8
 * validated, NUL-terminated copies (they may also contain NUL from \u0000: use the lengths). */
typedef struct mmi_json {
    int32_t type;
    int32_t is_int;  /* NUMBER: the literal is an integer that fits int64 (in i) */
    uint32_t skip;   /* nodes in this subtree, itself included */
    uint32_t n;      /* ARRAY, OBJECT: number of children */
    const char *key; /* member of an OBJECT: its key; otherwise NULL */
    const char *str; /* STRING: the value; otherwise NULL */
    uint32_t key_len;
    uint32_t str_len;
    double num; /* NUMBER: the value (also set for integers) */
    int64_t i;  /* NUMBER with is_int: the exact value */
} mmi_json;

typedef struct mmi_json_limits {
    int32_t max_depth; /* nesting of arrays/objects; the root container is depth 1 */
    int64_t max_nodes; /* values in the document */
} mmi_json_limits;

typedef struct mmi_json_doc {
    const mmi_json *root; /* NULL until parsed */
    int64_t n_nodes;
    void *block; /* nodes then strings, one allocation */
    size_t block_size;
    mmi_alloc alloc;
} mmi_json_doc;

/* Parses text[0..len) (no NUL needed) as one JSON value with optional surrounding whitespace.
 * Strict RFC 8259: no comments, trailing commas, leading zeros, NaN/Infinity, control
 * characters in strings, invalid UTF-8 or lone surrogates. Numbers are at most 128 characters
 * and finite. Runs a validating pass that allocates nothing, then one allocation of exactly the
 * nodes and string bytes needed. what names the text in messages ("header", "architecture").
 * Returns MM_OK, MM_E_FORMAT (malformed, with the byte offset, or beyond a limit: hostile input
 * is a format error), MM_E_INVALID_ARG (bad limits), MM_E_NOMEM. On failure doc is empty and
 * nothing is allocated. */
int mmi_json_parse(mmi_json_doc *doc, const char *text, size_t len, const mmi_json_limits *lim,
                   const mmi_alloc *a, mmi_err *e, const char *what);
/* Frees a parsed (or empty, zeroed) document. */
void mmi_json_free(mmi_json_doc *doc);

/* First child of an ARRAY/OBJECT, or NULL if empty (or not a container). */
const mmi_json *mmi_json_first(const mmi_json *v);
/* Next sibling of child inside parent, or NULL after the last child. */
const mmi_json *mmi_json_next(const mmi_json *parent, const mmi_json *child);
/* Member of object obj with the NUL-free key, or NULL (first match). */
const mmi_json *mmi_json_get(const mmi_json *obj, const char *key);
/* 1 if v is a STRING equal to s (NUL-free). */
int mmi_json_str_eq(const mmi_json *v, const char *s);

/* Parses a JSON number literal s[0..n) (already known to match the grammar) into *out without
 * depending on the C locale. Returns 0, or -1 if it is not finite or too long. */
int mmi_json_number(const char *s, size_t n, double *out);

/* ---- writer --------------------------------------------------------------------------------
 * Writes compact JSON into a caller buffer. Every call counts the bytes it would write even
 * when the buffer is too small (or NULL), so a first pass with cap 0 measures the size. */
#define MMI_JW_MAX_DEPTH 32
typedef struct mmi_jw {
    char *buf;
    size_t cap;
    size_t len; /* bytes produced so far (may exceed cap) */
    int32_t depth;
    int32_t after_key; /* a key was written: the next value takes no comma */
    int32_t bad;       /* misuse: unbalanced, too deep, non-finite number, invalid UTF-8 */
    uint8_t has_items[MMI_JW_MAX_DEPTH];
} mmi_jw;

void mmi_jw_init(mmi_jw *w, char *buf, size_t cap);
void mmi_jw_obj_begin(mmi_jw *w);
void mmi_jw_obj_end(mmi_jw *w);
void mmi_jw_arr_begin(mmi_jw *w);
void mmi_jw_arr_end(mmi_jw *w);
void mmi_jw_key(mmi_jw *w, const char *k);
void mmi_jw_keyn(mmi_jw *w, const char *k, size_t n);
void mmi_jw_str(mmi_jw *w, const char *s);
void mmi_jw_strn(mmi_jw *w, const char *s, size_t n);
void mmi_jw_i64(mmi_jw *w, int64_t v);
/* Shortest decimal that reads back as exactly v (locale-independent); v must be finite. */
void mmi_jw_f64(mmi_jw *w, double v);
void mmi_jw_bool(mmi_jw *w, int v);
void mmi_jw_null(mmi_jw *w);
/* Appends n raw bytes (the caller guarantees they keep the JSON valid, e.g. padding). */
void mmi_jw_raw(mmi_jw *w, const char *s, size_t n);
/* Terminates the text with a NUL when it fits. *needed (optional) receives len + 1.
 * Returns MM_OK, MM_E_BUFFER_TOO_SMALL, or MM_E_INVALID_ARG for misuse (bad). */
int mmi_jw_finish(mmi_jw *w, size_t *needed);

/* ============================== safetensors (safetensors.c) ================================ */
/* The dtypes of the safetensors format. Only F32 is read into models; the others are known so
 * that a foreign file's offsets validate and its errors say "F16 is not supported", not
 * "unknown". */
enum {
    MMI_ST_BOOL = 0,
    MMI_ST_U8,
    MMI_ST_I8,
    MMI_ST_F8_E5M2,
    MMI_ST_F8_E4M3,
    MMI_ST_I16,
    MMI_ST_U16,
    MMI_ST_F16,
    MMI_ST_BF16,
    MMI_ST_I32,
    MMI_ST_U32,
    MMI_ST_F32,
    MMI_ST_F64,
    MMI_ST_I64,
    MMI_ST_U64,
    MMI_ST_N_DTYPES
};
/* Name ("F32") of a dtype, or "?" */
const char *mmi_st_dtype_name(int32_t dtype);
/* Bytes per element of a dtype, or 0 */
size_t mmi_st_dtype_size(int32_t dtype);

/* Caps applied while parsing: everything a hostile header could make libmm allocate. */
typedef struct mmi_st_limits {
    uint64_t max_header; /* bytes of JSON header */
    int64_t max_tensors;
    int64_t max_meta;  /* __metadata__ entries */
    uint64_t max_data; /* bytes of data section */
} mmi_st_limits;
/* Defaults: 16 MiB header, 65536 tensors, 1024 metadata entries, 2^42 data bytes. */
void mmi_st_limits_default(mmi_st_limits *lim);

typedef struct mmi_st_tensor {
    const char *name; /* points into the parsed header */
    size_t name_len;
    int32_t dtype;
    int32_t ndim; /* 0 (scalar) .. MM_TENSOR_MAX_DIMS */
    int64_t shape[MM_TENSOR_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte range inside the data section */
} mmi_st_tensor;

typedef struct mmi_st_kv {
    const char *key, *val;
    size_t key_len, val_len;
} mmi_st_kv;

typedef struct mmi_st_file {
    mmi_json_doc doc;
    mmi_st_tensor *tensors; /* in header order */
    int64_t n_tensors;
    int64_t *by_name; /* tensor indices sorted by name (for lookup) */
    mmi_st_kv *meta;
    int64_t n_meta;
    int32_t has_meta;          /* the header had a __metadata__ object */
    uint64_t header_len;       /* N, the JSON bytes */
    uint64_t data_len;         /* bytes covered by the tensors */
    const unsigned char *data; /* data section (data_len bytes) once attached */
    void *block;               /* tensors, indices and metadata table */
    size_t block_size;
    unsigned char *owned; /* file bytes read from a stream, owned by the file */
    size_t owned_size;
    mmi_alloc alloc;
} mmi_st_file;

/* Parses and validates a whole safetensors file held in buf[0..len): header length, JSON,
 * tensor entries (known dtype, shape of at most 8 non-negative dims, offsets consistent with
 * shape and dtype), offsets that tile the data section without overlap or hole, a data section
 * of exactly the bytes the tensors cover, unique non-empty names, __metadata__ as a
 * string-to-string object. buf must outlive f (names and data point into it).
 * Returns MM_OK, MM_E_FORMAT (including a limit exceeded), MM_E_NOMEM; on failure f is empty
 * and owns nothing. */
int mmi_st_parse(mmi_st_file *f, const void *buf, size_t len, const mmi_st_limits *lim,
                 const mmi_alloc *a, mmi_err *e);

/* Reads exactly one safetensors file from a read callback (fn as mm_read_fn: bytes read, 0 at
 * the end, negative on error) and parses it as mmi_st_parse does. Memory grows with the bytes
 * actually delivered (never more than twice them), so a short hostile stream that declares a
 * huge file costs little. With require_eof, the stream must end right after the file;
 * otherwise nothing beyond the file is read (another object may follow in the same stream).
 * Returns as mmi_st_parse, plus MM_E_IO when fn fails. */
int mmi_st_load_cb(mmi_st_file *f, int64_t (*fn)(void *ud, void *buf, int64_t n), void *ud,
                   int require_eof, const mmi_st_limits *lim, const mmi_alloc *a, mmi_err *e);

/* As mmi_st_load_cb, for a source known to hold size_hint bytes (a file's size; 0 = unknown):
 * the buffer is then allocated once at the file's size instead of growing. A wrong hint costs
 * memory, never correctness. */
int mmi_st_load_cb_hint(mmi_st_file *f, int64_t (*fn)(void *ud, void *buf, int64_t n), void *ud,
                        int require_eof, uint64_t size_hint, const mmi_st_limits *lim,
                        const mmi_alloc *a, mmi_err *e);

/* Frees what a parsed file owns; f may be zeroed/empty. */
void mmi_st_free(mmi_st_file *f);

/* The tensor called name (NUL-free), or NULL. O(log n). */
const mmi_st_tensor *mmi_st_find(const mmi_st_file *f, const char *name);
/* The metadata value of key (NUL-free), or NULL; *len (optional) gets its length. */
const char *mmi_st_meta(const mmi_st_file *f, const char *key, size_t *len);
/* Copies an F32 tensor's data (little-endian on disk) into dst (numel floats, host order). */
void mmi_st_read_f32(const mmi_st_file *f, const mmi_st_tensor *t, float *dst);
/* Element j (0 <= j < numel) of an F32 tensor, decoded from its little-endian bytes. */
float mmi_st_f32_at(const mmi_st_file *f, const mmi_st_tensor *t, int64_t j);
/* The 8 little-endian bytes of element j of an 8-byte tensor (F64, I64) as a host integer;
 * memcpy it into a double or an int64_t to read the element. */
uint64_t mmi_st_u64_at(const mmi_st_file *f, const mmi_st_tensor *t, int64_t j);
/* Index of the first NaN or Inf element of an F32 (elem 4) or F64 (elem 8) tensor, or -1 when
 * all are finite. Reads the stored bits, so it checks before anything is copied. */
int64_t mmi_st_first_nonfinite(const mmi_st_file *f, const mmi_st_tensor *t, int32_t elem);
/* CRC32 of the data section. */
uint32_t mmi_st_data_crc(const mmi_st_file *f);
/* Checks the data section against metadata key "crc32" (8 hex digits). A missing key is an
 * error only when required. Returns MM_OK or MM_E_FORMAT. */
int mmi_st_check_crc(const mmi_st_file *f, int required, mmi_err *e);

/* ---- writing -------------------------------------------------------------------------------- */
typedef struct mmi_st_out {
    const char *name; /* NUL-terminated, unique, not "__metadata__" */
    int32_t dtype;
    int32_t ndim;
    int64_t shape[MM_TENSOR_MAX_DIMS];
    const void *data; /* numel elements in host byte order */
} mmi_st_out;

/* A planned file: header built, sizes known. */
typedef struct mmi_st_plan {
    const mmi_st_out *tensors;
    int64_t n_tensors;
    char *header; /* JSON padded with spaces to a multiple of 8 bytes */
    size_t header_len;
    size_t header_cap;
    uint64_t data_len;
    uint64_t total_size; /* 8 + header_len + data_len */
    mmi_alloc alloc;
} mmi_st_plan;

/* Writes bytes somewhere; returns MM_OK or a negative status (text in its own mmi_err). */
typedef int (*mmi_sink_fn)(void *ud, const void *p, size_t n);

/* Plans a file of n tensors (borrowed until mmi_st_plan_free) and n_meta key/value pairs
 * (keys[i], vals[i], NUL-terminated; copied into the header). With add_crc, the CRC32 of the
 * data section is added as metadata "crc32". Returns MM_OK, MM_E_INVALID_ARG (bad names, dtype
 * or shape), MM_E_RANGE (sizes overflow), MM_E_NOMEM. */
int mmi_st_plan_make(mmi_st_plan *p, const mmi_st_out *t, int64_t n, const char *const *keys,
                     const char *const *vals, int64_t n_meta, int add_crc, const mmi_alloc *a,
                     mmi_err *e);
/* Streams the planned file to sink (header, then tensor data converted to little-endian).
 * Returns MM_OK or the sink's status. */
int mmi_st_plan_emit(const mmi_st_plan *p, mmi_sink_fn sink, void *ud);
void mmi_st_plan_free(mmi_st_plan *p);

/* Writes the planned file into buf[0..cap). *size (optional) receives total_size; buf NULL
 * (cap ignored) only reports the size. Returns MM_OK or MM_E_BUFFER_TOO_SMALL (nothing
 * written). fn names the public function in messages. */
int mmi_st_plan_to_mem(const mmi_st_plan *p, void *buf, size_t cap, size_t *size, mmi_err *e,
                       const char *fn);

/* ============================== files (file.c) ============================================= */
/* Producer of a file's content: writes it all through sink(sink_ud, ...). */
typedef int (*mmi_produce_fn)(void *ud, mmi_sink_fn sink, void *sink_ud);

/* Atomically replaces path with what produce writes: the bytes go to a new file
 * "<path>.tmp.<pid>.<nonce>" in the same directory, which is fsynced, closed and renamed onto
 * path; then the directory is fsynced. On any failure the temporary file is removed and path
 * is untouched (the previous file, if any, survives). Returns MM_OK, MM_E_IO (text names the
 * step and errno), or the producer's status. */
int mmi_file_write_atomic(const char *path, mmi_produce_fn produce, void *ud, mmi_err *e,
                          const char *fn);

/* Reads a whole safetensors file from path (stream loaded, trailing bytes rejected).
 * Returns as mmi_st_load_cb, plus MM_E_IO if path cannot be opened or read. */
int mmi_st_load_path(mmi_st_file *f, const char *path, const mmi_st_limits *lim, const mmi_alloc *a,
                     mmi_err *e);

/* Copies at most n - 1 bytes of s[0..len) into out as a printable, NUL-terminated excerpt for
 * messages (non-printable bytes become '?', long text ends with "..."). Returns out. */
const char *mmi_io_excerpt(char *out, size_t n, const char *s, size_t len);

#endif /* MMI_IO_H */
