/* SPDX-License-Identifier: MIT */
/* test_io.c — the file layer: JSON parser and writer, safetensors parse/write, streamed and
 * atomic file I/O, and mm_model save/load (round trips, every hostile case, OOM, PyTorch
 * vectors). Every failure case checks the code, that a message was written, and that the
 * counting allocator is back to zero. */
#include "runner.h"

#include "io/mmi_io.h"
#include "model/mmi_model.h"

#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MM_TEST_VECTOR_DIR
#define MM_TEST_VECTOR_DIR "tests/vectors"
#endif

/* ---- helpers ---------------------------------------------------------------------------- */
typedef struct io_alloc {
    mm_allocator pub;
    mmt_counter c;
    mmi_alloc a;
} io_alloc;

static void io_alloc_init(io_alloc *x, int64_t fail_after)
{
    mmt_counting_allocator(&x->pub, &x->c, fail_after);
    CHECK_OK(mmi_alloc_init(&x->a, &x->pub, NULL));
}

#define CHECK_NO_LEAK(x)                                                                           \
    do {                                                                                           \
        CHECK_EQ_I64((x)->c.live_bytes, 0);                                                        \
        CHECK_EQ_I64((x)->c.bad_free, 0);                                                          \
    } while (0)

static int json_parse_str(mmi_json_doc *d, const char *s, io_alloc *x, mmi_err *e)
{
    mmi_json_limits lim = {16, 1000};
    return mmi_json_parse(d, s, strlen(s), &lim, &x->a, e, "test");
}

/* ======================================= JSON ============================================== */
static void test_json_parse_values(void)
{
    io_alloc x;
    mmi_json_doc d;
    mmi_err e;
    const mmi_json *v, *arr, *c;
    const char *txt = " {\"a\": [1, -2, 3.5, -0.0, 1e-3, true, false, null],"
                      " \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\","
                      " \"big\": 9223372036854775807, \"neg\": -9223372036854775808,"
                      " \"over\": 9223372036854775808, \"o\": {}, \"e\": []} ";
    io_alloc_init(&x, -1);
    CHECK_OK(json_parse_str(&d, txt, &x, &e));
    CHECK_EQ_I64(x.c.n_alloc, 1); /* one exactly-sized block */
    CHECK(d.root && d.root->type == MMI_JSON_OBJECT && d.root->n == 7);
    arr = mmi_json_get(d.root, "a");
    CHECK(arr && arr->type == MMI_JSON_ARRAY && arr->n == 8);
    c = mmi_json_first(arr);
    CHECK(c->is_int && c->i == 1);
    c = mmi_json_next(arr, c);
    CHECK(c->is_int && c->i == -2);
    c = mmi_json_next(arr, c);
    CHECK(!c->is_int && c->num == 3.5);
    c = mmi_json_next(arr, c);
    CHECK(!c->is_int && c->num == 0.0 && signbit(c->num));
    c = mmi_json_next(arr, c);
    CHECK(c->num == 1e-3);
    c = mmi_json_next(arr, c);
    CHECK(c->type == MMI_JSON_TRUE);
    c = mmi_json_next(arr, c);
    CHECK(c->type == MMI_JSON_FALSE);
    c = mmi_json_next(arr, c);
    CHECK(c->type == MMI_JSON_NULL);
    CHECK(mmi_json_next(arr, c) == NULL);
    v = mmi_json_get(d.root, "s");
    CHECK(v && v->type == MMI_JSON_STRING);
    CHECK_EQ_I64(v->str_len, 9 + 2 + 4 + 1 + 1);
    CHECK(memcmp(v->str, "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z", 17) == 0);
    v = mmi_json_get(d.root, "big");
    CHECK(v && v->is_int && v->i == INT64_MAX);
    v = mmi_json_get(d.root, "neg");
    CHECK(v && v->is_int && v->i == INT64_MIN);
    v = mmi_json_get(d.root, "over");
    CHECK(v && !v->is_int && v->num == 9223372036854775808.0);
    v = mmi_json_get(d.root, "o");
    CHECK(v && v->type == MMI_JSON_OBJECT && v->n == 0 && mmi_json_first(v) == NULL);
    CHECK(mmi_json_get(d.root, "missing") == NULL);
    mmi_json_free(&d);
    CHECK_NO_LEAK(&x);
}

static void test_json_rejects(void)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "-01",
        "1.",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\x01\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "[1] [2]",
        "1e999",
        "-1e999",
        "/*c*/1",
        "{\"a\" 1}",
        "{1:2}",
        "[\"a\":1]",
        "{\"a\":}",
        "[,1]",
        "{\"a\":1 \"b\":2}",
        "\"a\"\"b\"",
        "[1,,2]",
        "\x00",
        "'a'",
        ("123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
         "890123456789012345678901234567890123456789012345"),
    };
    io_alloc x;
    mmi_json_doc d;
    mmi_err e;
    io_alloc_init(&x, -1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = '\0';
        int rc = json_parse_str(&d, bad[i], &x, &e);
        if (rc != MM_E_FORMAT)
            mmt_fail(__FILE__, __LINE__, "case %zu \"%s\": %s", i, bad[i], mm_status_name(rc));
        CHECK(e.msg[0] != '\0');
        CHECK(d.root == NULL && d.block == NULL);
    }
    /* Embedded NUL inside the text, which strlen would hide. */
    {
        mmi_json_limits lim = {4, 100};
        CHECK_STATUS(mmi_json_parse(&d, "[1,\0 2]", 7, &lim, &x.a, &e, "t"), MM_E_FORMAT);
    }
    CHECK_EQ_I64(x.c.n_alloc, 0); /* the validating pass allocates nothing */
    CHECK_NO_LEAK(&x);
}

static void test_json_limits(void)
{
    io_alloc x;
    mmi_json_doc d;
    mmi_err e;
    mmi_json_limits lim = {3, 5};
    char deep[2 * 300 + 1];
    io_alloc_init(&x, -1);
    CHECK_OK(mmi_json_parse(&d, "[[[1]]]", 7, &lim, &x.a, &e, "t"));
    mmi_json_free(&d);
    CHECK_STATUS(mmi_json_parse(&d, "[[[[1]]]]", 9, &lim, &x.a, &e, "t"), MM_E_FORMAT);
    CHECK(strstr(e.msg, "deeper") != NULL);
    CHECK_OK(mmi_json_parse(&d, "[1,2,3,4]", 9, &lim, &x.a, &e, "t"));
    mmi_json_free(&d);
    CHECK_STATUS(mmi_json_parse(&d, "[1,2,3,4,5]", 11, &lim, &x.a, &e, "t"), MM_E_FORMAT);
    /* A deep document whatever the caller's limit: the hard cap stops recursion. */
    for (int i = 0; i < 300; i++) {
        deep[i] = '[';
        deep[600 - 1 - i] = ']';
    }
    lim.max_depth = 100000;
    lim.max_nodes = 100000;
    CHECK_STATUS(mmi_json_parse(&d, deep, 600, &lim, &x.a, &e, "t"), MM_E_FORMAT);
    /* Allocation failure: NOMEM, nothing leaked. */
    {
        io_alloc y;
        io_alloc_init(&y, 0);
        CHECK_STATUS(mmi_json_parse(&d, "[1]", 3, &lim, &y.a, &e, "t"), MM_E_NOMEM);
        CHECK(d.block == NULL);
        CHECK_NO_LEAK(&y);
    }
    CHECK_NO_LEAK(&x);
}

static void jw_sample(mmi_jw *w, const double *vals, int n)
{
    mmi_jw_obj_begin(w);
    mmi_jw_key(w, "s");
    mmi_jw_str(w, "tab\tquote\"back\\ctl\x01 utf8 \xc3\xa9");
    mmi_jw_key(w, "n");
    mmi_jw_arr_begin(w);
    for (int i = 0; i < n; i++) mmi_jw_f64(w, vals[i]);
    mmi_jw_arr_end(w);
    mmi_jw_key(w, "i");
    mmi_jw_i64(w, INT64_MIN);
    mmi_jw_key(w, "b");
    mmi_jw_bool(w, 1);
    mmi_jw_key(w, "z");
    mmi_jw_null(w);
    mmi_jw_obj_end(w);
}

static void test_json_writer(void)
{
    double vals[64];
    uint64_t s = 88172645463325252ULL;
    int n = 0;
    mmi_jw w;
    size_t need = 0;
    char buf[4096];
    io_alloc x;
    mmi_json_doc d;
    mmi_json_limits lim = {8, 1000};
    mmi_err e;
    const mmi_json *arr, *c, *str;
    vals[n++] = 0.0;
    vals[n++] = -0.0;
    vals[n++] = 1e-3;
    vals[n++] = 0.1;
    vals[n++] = 1e-8;
    vals[n++] = 0.999;
    vals[n++] = 5e-324;
    vals[n++] = 1.7976931348623157e308;
    vals[n++] = 1.0 / 3.0;
    while (n < 64) { /* random finite doubles, bit patterns */
        double v;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(&v, &s, sizeof v);
        if (isfinite(v)) vals[n++] = v;
    }
    io_alloc_init(&x, -1);
    mmi_jw_init(&w, NULL, 0);
    jw_sample(&w, vals, n);
    CHECK_STATUS(mmi_jw_finish(&w, &need), MM_E_BUFFER_TOO_SMALL);
    CHECK(need > 10 && need < sizeof buf);
    mmi_jw_init(&w, buf, need - 1);
    jw_sample(&w, vals, n);
    CHECK_STATUS(mmi_jw_finish(&w, NULL), MM_E_BUFFER_TOO_SMALL);
    mmi_jw_init(&w, buf, need);
    jw_sample(&w, vals, n);
    CHECK_OK(mmi_jw_finish(&w, NULL));
    CHECK_EQ_I64(strlen(buf) + 1, need);
    CHECK_OK(mmi_json_parse(&d, buf, strlen(buf), &lim, &x.a, &e, "t"));
    str = mmi_json_get(d.root, "s");
    CHECK(mmi_json_str_eq(str, "tab\tquote\"back\\ctl\x01 utf8 \xc3\xa9"));
    arr = mmi_json_get(d.root, "n");
    c = mmi_json_first(arr);
    for (int i = 0; i < n && c; i++, c = mmi_json_next(arr, c)) {
        if (memcmp(&c->num, &vals[i], sizeof(double)) != 0)
            mmt_fail(__FILE__, __LINE__, "f64 %d: %.17g read back as %.17g", i, vals[i], c->num);
    }
    CHECK(mmi_json_get(d.root, "i")->i == INT64_MIN);
    mmi_json_free(&d);
    CHECK_NO_LEAK(&x);
    /* Misuse is reported, not written. */
    mmi_jw_init(&w, buf, sizeof buf);
    mmi_jw_key(&w, "k"); /* key outside an object */
    CHECK_STATUS(mmi_jw_finish(&w, NULL), MM_E_INVALID_ARG);
    mmi_jw_init(&w, buf, sizeof buf);
    mmi_jw_arr_begin(&w);
    CHECK_STATUS(mmi_jw_finish(&w, NULL), MM_E_INVALID_ARG);
    mmi_jw_init(&w, buf, sizeof buf);
    mmi_jw_f64(&w, NAN);
    CHECK_STATUS(mmi_jw_finish(&w, NULL), MM_E_INVALID_ARG);
    mmi_jw_init(&w, buf, sizeof buf);
    mmi_jw_str(&w, "\xff");
    CHECK_STATUS(mmi_jw_finish(&w, NULL), MM_E_INVALID_ARG);
}

/* A host that sets a locale with a decimal comma must not break numbers either way. */
static void test_json_locale(void)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    const char *ok = NULL;
    double v = 0;
    mmi_jw w;
    char buf[64];
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !ok; i++)
        ok = setlocale(LC_NUMERIC, names[i]);
    CHECK(mmi_json_number("0.25", 4, &v) == 0 && v == 0.25);
    mmi_jw_init(&w, buf, sizeof buf);
    mmi_jw_f64(&w, 1.5);
    CHECK_OK(mmi_jw_finish(&w, NULL));
    CHECK(strcmp(buf, "1.5") == 0);
    setlocale(LC_NUMERIC, "C");
}

/* ===================================== safetensors ========================================= */
/* Builds "<8-byte len><header><data>" into buf; returns the length. */
static size_t mkfile(unsigned char *buf, const char *header, const void *data, size_t dlen)
{
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen) memcpy(buf + 8 + hl, data, dlen);
    return 8 + hl + dlen;
}

static void test_st_roundtrip(void)
{
    float w[6] = {1, -2, 3.5f, 4, 5, 6e-30f};
    int64_t ids[3] = {-1, 0, INT64_MAX};
    float scalar = 7.25f;
    mmi_st_out t[4];
    const char *keys[2] = {"format", "note"}, *vals[2] = {"pt", "h\xc3\xa9llo \"q\""};
    mmi_st_plan p;
    io_alloc x;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    unsigned char buf[2048];
    size_t size = 0;
    float back[6];
    const mmi_st_tensor *ft;
    memset(t, 0, sizeof t);
    t[0].name = "layer.w";
    t[0].dtype = MMI_ST_F32;
    t[0].ndim = 2;
    t[0].shape[0] = 2;
    t[0].shape[1] = 3;
    t[0].data = w;
    t[1].name = "ids";
    t[1].dtype = MMI_ST_I64;
    t[1].ndim = 1;
    t[1].shape[0] = 3;
    t[1].data = ids;
    t[2].name = "scalar";
    t[2].dtype = MMI_ST_F32;
    t[2].ndim = 0;
    t[2].data = &scalar;
    t[3].name = "empty";
    t[3].dtype = MMI_ST_F32;
    t[3].ndim = 2;
    t[3].shape[0] = 0;
    t[3].shape[1] = 5;
    io_alloc_init(&x, -1);
    mmi_st_limits_default(&lim);
    CHECK_OK(mmi_st_plan_make(&p, t, 4, keys, vals, 2, 1, &x.a, &e));
    CHECK_EQ_I64(p.header_len % 8, 0);
    CHECK_OK(mmi_st_plan_to_mem(&p, NULL, 0, &size, &e, "t"));
    CHECK_EQ_I64(size, p.total_size);
    CHECK_STATUS(mmi_st_plan_to_mem(&p, buf, size - 1, &size, &e, "t"), MM_E_BUFFER_TOO_SMALL);
    CHECK(strstr(e.msg, "too small") != NULL);
    CHECK_OK(mmi_st_plan_to_mem(&p, buf, sizeof buf, &size, &e, "t"));
    mmi_st_plan_free(&p);
    CHECK_OK(mmi_st_parse(&f, buf, size, &lim, &x.a, &e));
    CHECK_EQ_I64(f.n_tensors, 4);
    CHECK_EQ_I64(f.data_len, 24 + 24 + 4);
    CHECK_EQ_I64((8 + f.header_len) % 8, 0);
    CHECK(buf[8 + f.header_len - 1] == ' ' || buf[8 + f.header_len - 1] == '}');
    ft = mmi_st_find(&f, "layer.w");
    CHECK(ft && ft->ndim == 2 && ft->shape[1] == 3 && ft->dtype == MMI_ST_F32);
    if (ft) {
        mmi_st_read_f32(&f, ft, back);
        CHECK(memcmp(back, w, sizeof w) == 0);
    }
    ft = mmi_st_find(&f, "ids");
    CHECK(ft && ft->dtype == MMI_ST_I64 && ft->end - ft->begin == 24);
    if (ft) CHECK(memcmp(f.data + ft->begin, ids, 24) == 0); /* little-endian host */
    ft = mmi_st_find(&f, "scalar");
    CHECK(ft && ft->ndim == 0 && ft->numel == 1);
    ft = mmi_st_find(&f, "empty");
    CHECK(ft && ft->numel == 0 && ft->begin == ft->end);
    CHECK(mmi_st_find(&f, "nope") == NULL);
    CHECK(mmi_st_meta(&f, "format", NULL) && strcmp(mmi_st_meta(&f, "format", NULL), "pt") == 0);
    CHECK(strcmp(mmi_st_meta(&f, "note", NULL), vals[1]) == 0);
    CHECK_OK(mmi_st_check_crc(&f, 1, &e));
    mmi_st_free(&f);
    /* One flipped data bit: the checksum catches it. */
    buf[size - 1] ^= 0x10;
    CHECK_OK(mmi_st_parse(&f, buf, size, &lim, &x.a, &e));
    CHECK_STATUS(mmi_st_check_crc(&f, 1, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "checksum") != NULL);
    mmi_st_free(&f);
    CHECK_NO_LEAK(&x);
}

typedef struct st_case {
    const char *header;
    size_t dlen;
    const char *msg; /* a word the message must contain */
} st_case;

static void test_st_hostile(void)
{
    static const st_case cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON"},
        {"[]", 0, "start"},
        {" {}", 0, "start"},
        {"{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, "duplicate"},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "empty"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "NUL"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "duplicate"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
         "dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
         "\"data_offsets\":[0,8]}}",
         8, "elements"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "before"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8, "non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[18446744073709551608,18446744073709551616]}}",
         8, "non-negative"},
        {"{\"a\":[1]}", 0, "object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "string"},
        {"{\"__metadata__\":[]}", 0, "object"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[2]],\"data_offsets\":[0,8]}}", 8, "deeper"},
    };
    static const unsigned char zeros[64];
    unsigned char buf[1024];
    io_alloc x;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    size_t n;
    io_alloc_init(&x, -1);
    mmi_st_limits_default(&lim);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        e.msg[0] = '\0';
        n = mkfile(buf, cases[i].header, zeros, cases[i].dlen);
        rc = mmi_st_parse(&f, buf, n, &lim, &x.a, &e);
        if (rc != MM_E_FORMAT || !strstr(e.msg, cases[i].msg))
            mmt_fail(__FILE__, __LINE__, "case %zu: %s \"%s\" (want \"%s\")", i, mm_status_name(rc),
                     e.msg, cases[i].msg);
    }
    /* Header lengths: past the end, absurd, too small. */
    n = mkfile(buf, "{}", NULL, 0);
    buf[0] = 200;
    CHECK_STATUS(mmi_st_parse(&f, buf, n, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "past the end") != NULL);
    memset(buf, 0xff, 8);
    CHECK_STATUS(mmi_st_parse(&f, buf, n, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "absurd") != NULL);
    memset(buf, 0, 8);
    buf[0] = 1;
    CHECK_STATUS(mmi_st_parse(&f, buf, n, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK_STATUS(mmi_st_parse(&f, buf, 5, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "8-byte") != NULL);
    /* Limits. */
    lim.max_tensors = 1;
    n = mkfile(buf,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               zeros, 8);
    CHECK_STATUS(mmi_st_parse(&f, buf, n, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "limit") != NULL);
    mmi_st_limits_default(&lim);
    CHECK_OK(mmi_st_parse(&f, buf, n, &lim, &x.a, &e));
    mmi_st_free(&f);
    CHECK_NO_LEAK(&x);
}

/* ---- streamed loading ----------------------------------------------------------------------- */
typedef struct mem_stream {
    const unsigned char *p;
    size_t len, pos;
    uint64_t rng;
    int fail_at; /* return -5 once pos >= fail_at (if >= 0) */
    int lie;     /* return more than asked */
} mem_stream;

static int64_t mem_read(void *ud, void *buf, int64_t n)
{
    mem_stream *s = (mem_stream *)ud;
    size_t k;
    if (s->fail_at >= 0 && s->pos >= (size_t)s->fail_at) return -5;
    if (s->lie) return n + 1;
    s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    k = (size_t)(s->rng >> 33) % 7 + 1; /* short reads of 1..7 bytes */
    if ((int64_t)k > n) k = (size_t)n;
    if (k > s->len - s->pos) k = s->len - s->pos;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (int64_t)k;
}

static void test_st_stream(void)
{
    unsigned char buf[512];
    static const float data[4] = {1, 2, 3, 4};
    io_alloc x;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    mem_stream s;
    size_t n = mkfile(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}  ",
                      data, 16);
    io_alloc_init(&x, -1);
    mmi_st_limits_default(&lim);
    buf[n] = 0x55; /* a byte of whatever follows in the stream */
    memset(&s, 0, sizeof s);
    s.p = buf;
    s.len = n + 1;
    s.fail_at = -1;
    CHECK_OK(mmi_st_load_cb(&f, mem_read, &s, 0, &lim, &x.a, &e));
    CHECK_EQ_I64(s.pos, n); /* read exactly the file, not the byte after it */
    CHECK(memcmp(f.data, data, 16) == 0);
    mmi_st_free(&f);
    s.pos = 0;
    CHECK_STATUS(mmi_st_load_cb(&f, mem_read, &s, 1, &lim, &x.a, &e), MM_E_FORMAT);
    CHECK(strstr(e.msg, "after") != NULL);
    /* Every truncation. */
    for (size_t len = 0; len < n; len++) {
        s.pos = 0;
        s.len = len;
        if (mmi_st_load_cb(&f, mem_read, &s, 0, &lim, &x.a, &e) != MM_E_FORMAT)
            mmt_fail(__FILE__, __LINE__, "truncated stream of %zu bytes accepted", len);
    }
    s.len = n;
    s.pos = 0;
    s.fail_at = 20;
    CHECK_STATUS(mmi_st_load_cb(&f, mem_read, &s, 0, &lim, &x.a, &e), MM_E_IO);
    s.fail_at = -1;
    s.pos = 0;
    s.lie = 1;
    CHECK_STATUS(mmi_st_load_cb(&f, mem_read, &s, 0, &lim, &x.a, &e), MM_E_IO);
    /* A stream that announces a 16 MiB header but ends: memory follows what arrived. */
    {
        unsigned char big[64] = {0, 0, 0, 1, 0, 0, 0, 0, '{'};
        mem_stream t;
        memset(&t, 0, sizeof t);
        t.p = big;
        t.len = sizeof big;
        t.fail_at = -1;
        CHECK_STATUS(mmi_st_load_cb(&f, mem_read, &t, 0, &lim, &x.a, &e), MM_E_FORMAT);
        CHECK(strstr(e.msg, "ended") != NULL);
    }
    CHECK(x.c.live_bytes == 0);
    CHECK_NO_LEAK(&x);
    /* Allocation failures at every step. */
    for (int k = 0; k < 8; k++) {
        io_alloc y;
        int rc;
        io_alloc_init(&y, k);
        s.pos = 0;
        s.len = n;
        s.lie = 0;
        rc = mmi_st_load_cb(&f, mem_read, &s, 0, &lim, &y.a, &e);
        if (rc == MM_OK) {
            mmi_st_free(&f);
            CHECK_NO_LEAK(&y);
            break;
        }
        CHECK_STATUS(rc, MM_E_NOMEM);
        CHECK_NO_LEAK(&y);
    }
}

/* ---- atomic writes -------------------------------------------------------------------------- */
typedef struct prod {
    const char *text;
    int fail_half; /* write half, then fail */
} prod;

static int produce(void *ud, mmi_sink_fn sink, void *sink_ud)
{
    prod *p = (prod *)ud;
    size_t n = strlen(p->text);
    int rc;
    if (p->fail_half) {
        if ((rc = sink(sink_ud, p->text, n / 2))) return rc;
        return MM_E_NOMEM;
    }
    return sink(sink_ud, p->text, n);
}

static int read_text(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t k;
    if (!f) return -1;
    k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
    return 0;
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d) return -1;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void make_tmpdir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/mm_test_io_XXXXXX");
    if (!mkdtemp(dir)) mmt_fail(__FILE__, __LINE__, "mkdtemp failed");
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    if (!d) return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void test_atomic_write(void)
{
    char dir[64], path[128], sub[128], got[256];
    prod p = {"first version", 0};
    mmi_err e;
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(mmi_file_write_atomic(path, produce, &p, &e, "t"));
    CHECK(read_text(path, got, sizeof got) == 0 && strcmp(got, "first version") == 0);
    {
        struct stat st;
        CHECK(chmod(path, 0600) == 0);
        CHECK_OK(mmi_file_write_atomic(path, produce, &p, &e, "t")); /* mode is kept */
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    }
    /* A failure in the middle of writing: the old file survives, the temporary is gone. */
    p.text = "second version, longer than the first";
    p.fail_half = 1;
    CHECK_STATUS(mmi_file_write_atomic(path, produce, &p, &e, "t"), MM_E_NOMEM);
    CHECK(read_text(path, got, sizeof got) == 0 && strcmp(got, "first version") == 0);
    CHECK_EQ_I64(count_tmp_files(dir), 0);
    /* rename fails (the target is a non-empty directory): same guarantees, MM_E_IO. */
    snprintf(sub, sizeof sub, "%s/adir", dir);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(got, sizeof got, "%s/keep", sub);
    {
        FILE *f = fopen(got, "w");
        if (f) fclose(f);
    }
    p.fail_half = 0;
    CHECK_STATUS(mmi_file_write_atomic(sub, produce, &p, &e, "t"), MM_E_IO);
    CHECK(strstr(e.msg, "rename") != NULL && strstr(e.msg, "unchanged") != NULL);
    CHECK(access(got, F_OK) == 0);
    CHECK_EQ_I64(count_tmp_files(dir), 0);
    /* The directory does not exist. */
    snprintf(got, sizeof got, "%s/no/such/dir/file", dir);
    CHECK_STATUS(mmi_file_write_atomic(got, produce, &p, &e, "t"), MM_E_IO);
    CHECK(strstr(e.msg, "temporary") != NULL);
    CHECK_STATUS(mmi_file_write_atomic("", produce, &p, &e, "t"), MM_E_INVALID_ARG);
    /* The second version lands. */
    CHECK_OK(mmi_file_write_atomic(path, produce, &p, &e, "t"));
    CHECK(read_text(path, got, sizeof got) == 0 && strcmp(got, p.text) == 0);
    rm_tree(dir);
}

/* ===================================== mm_model files ====================================== */
/* dense 8, tanh, dense 6 (no bias, orthogonal), relu, layernorm, dense 4, gelu, rmsnorm, dense 3 */
static mm_model *build_mlp(const mm_allocator *alloc, uint64_t seed, int64_t max_batch)
{
    mm_model_opts o;
    mm_model *m = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 5;
    o.seed = seed;
    o.alloc = alloc;
    o.max_batch = max_batch;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return NULL;
    CHECK_OK(mm_model_add_dense(m, 8, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_activation(m, MM_ACT_TANH));
    CHECK_OK(mm_model_add_dense(m, 6, 0, MM_INIT_ORTHOGONAL, 1.3));
    CHECK_OK(mm_model_add_activation(m, MM_ACT_RELU));
    CHECK_OK(mm_model_add_layernorm(m, 1e-5, 1));
    CHECK_OK(mm_model_add_dense(m, 4, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_activation(m, MM_ACT_GELU));
    CHECK_OK(mm_model_add_rmsnorm(m, 1e-6, 1));
    CHECK_OK(mm_model_add_dense(m, 3, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    return m;
}

/* Runs rows x 5 fixed inputs through m into y (rows x out). */
static void run_fwd(mm_model *m, int64_t rows, float *y)
{
    int64_t xs[2] = {rows, 5}, out = 0, ys[2];
    mm_tensor *x = NULL, *t = NULL;
    CHECK_OK(mm_model_output_dim(m, &out));
    ys[0] = rows;
    ys[1] = out;
    CHECK_OK(mm_tensor_create(&x, 2, xs, NULL));
    CHECK_OK(mm_tensor_create(&t, 2, ys, NULL));
    if (x && t) {
        mmt_fill_uniform(mm_tensor_data(x), rows * 5, 99, -2.0f, 2.0f);
        CHECK_OK(mm_model_forward(m, x, t));
        memcpy(y, mm_tensor_data(t), (size_t)(rows * out) * sizeof(float));
    }
    mm_tensor_free(x);
    mm_tensor_free(t);
}

static unsigned char *save_mem(mm_model *m, uint32_t flags, size_t *size)
{
    unsigned char *buf;
    *size = 0;
    CHECK_OK(mm_model_save_mem(m, NULL, 0, size, flags));
    buf = (unsigned char *)malloc(*size ? *size : 1);
    CHECK_OK(mm_model_save_mem(m, buf, *size, size, flags));
    return buf;
}

static void check_same_params(mm_model *a, mm_model *b)
{
    float *pa = NULL, *pb = NULL;
    int64_t na = 0, nb = 0;
    CHECK_OK(mm_model_params(a, &pa, &na));
    CHECK_OK(mm_model_params(b, &pb, &nb));
    CHECK_EQ_I64(na, nb);
    if (pa && pb && na == nb) CHECK(memcmp(pa, pb, (size_t)na * sizeof(float)) == 0);
}

static void check_same_outputs(mm_model *a, mm_model *b)
{
    float ya[4 * 3], yb[4 * 3];
    run_fwd(a, 4, ya);
    run_fwd(b, 4, yb);
    CHECK(memcmp(ya, yb, sizeof ya) == 0);
}

static void opts_with(mm_model_opts *o, const mm_allocator *alloc, char *err, size_t n)
{
    CHECK_OK(mm_model_opts_init(o));
    o->alloc = alloc;
    o->max_batch = 4;
    o->err_buf = err;
    o->err_buf_size = n;
    err[0] = '\0';
}

static void test_model_roundtrip_mem(void)
{
    io_alloc x;
    mm_model *m, *m2 = NULL;
    mm_model_opts o;
    char err[256];
    size_t size = 0, small = 0;
    unsigned char *buf;
    double v = 0;
    io_alloc_init(&x, -1);
    m = build_mlp(NULL, 3, 4);
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_LR, 3e-4));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_BETA2, 0.98));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_AMSGRAD, 1));
    CHECK_OK(mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 0.5));
    buf = save_mem(m, 0, &size);
    CHECK(size > 64 && size % 4 == 0);
    CHECK_STATUS(mm_model_save_mem(m, buf, size - 1, &small, 0), MM_E_BUFFER_TOO_SMALL);
    CHECK_EQ_I64(small, size);
    CHECK(strstr(mm_model_errmsg(m), "too small") != NULL);
    opts_with(&o, &x.pub, err, sizeof err);
    CHECK_OK(mm_model_load_mem(&m2, buf, size, &o));
    if (m2) {
        int32_t nl = 0;
        check_same_params(m, m2);
        check_same_outputs(m, m2);
        CHECK_OK(mm_model_num_layers(m2, &nl));
        CHECK_EQ_I64(nl, 9);
        CHECK_EQ_I64(m2->opt.kind, MM_OPT_ADAM);
        CHECK_OK(mm_model_get_f64(m2, MM_MODEL_LR, &v));
        CHECK(v == 3e-4);
        CHECK_OK(mm_model_get_f64(m2, MM_MODEL_BETA2, &v));
        CHECK(v == 0.98);
        CHECK_OK(mm_model_get_f64(m2, MM_MODEL_AMSGRAD, &v));
        CHECK(v == 1);
        CHECK_OK(mm_model_get_f64(m2, MM_MODEL_MAX_GRAD_NORM, &v));
        CHECK(v == 0.5);
        CHECK(strcmp(mm_model_errmsg(m2), "") == 0);
        /* Saving the loaded model gives the same bytes. */
        {
            size_t s2 = 0;
            unsigned char *b2 = save_mem(m2, 0, &s2);
            CHECK(s2 == size && memcmp(b2, buf, size) == 0);
            free(b2);
        }
    }
    mm_model_free(m2);
    CHECK_NO_LEAK(&x);
    /* NULL options: defaults, input_dim from the file. */
    CHECK_OK(mm_model_load_mem(&m2, buf, size, NULL));
    mm_model_free(m2);
    /* A wrong input_dim in the options. */
    opts_with(&o, NULL, err, sizeof err);
    o.input_dim = 6;
    CHECK_STATUS(mm_model_load_mem(&m2, buf, size, &o), MM_E_SHAPE);
    CHECK(m2 == NULL && strstr(err, "input_dim") != NULL);
    /* max_batch is the caller's. */
    opts_with(&o, NULL, err, sizeof err);
    o.max_batch = 2;
    CHECK_OK(mm_model_load_mem(&m2, buf, size, &o));
    if (m2) {
        float y[12];
        int64_t xs[2] = {4, 5}, ys[2] = {4, 3};
        mm_tensor *xt = NULL, *yt = NULL;
        CHECK_OK(mm_tensor_create(&xt, 2, xs, NULL));
        CHECK_OK(mm_tensor_create(&yt, 2, ys, NULL));
        CHECK_STATUS(mm_model_forward(m2, xt, yt), MM_E_RANGE);
        mm_tensor_free(xt);
        mm_tensor_free(yt);
        (void)y;
    }
    mm_model_free(m2);
    free(buf);
    mm_model_free(m);
}

typedef struct file_stream {
    FILE *f;
} file_stream;

static int64_t file_read(void *ud, void *buf, int64_t n)
{
    file_stream *s = (file_stream *)ud;
    size_t want = n > 3 ? 3 : (size_t)n; /* tiny reads */
    size_t k = fread(buf, 1, want, s->f);
    return ferror(s->f) ? -1 : (int64_t)k;
}

static void test_model_roundtrip_path_cb(void)
{
    char dir[64], path[128], err[256];
    mm_model *m = build_mlp(NULL, 4, 4), *m2 = NULL, *m3 = NULL;
    mm_model_opts o;
    file_stream fs;
    if (!m) return;
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    CHECK_OK(mm_model_save(m, path, 0));
    CHECK_OK(mm_model_save(m, path, 0)); /* replaces the existing file */
    CHECK_EQ_I64(count_tmp_files(dir), 0);
    opts_with(&o, NULL, err, sizeof err);
    CHECK_OK(mm_model_load(&m2, path, &o));
    if (m2) {
        check_same_params(m, m2);
        check_same_outputs(m, m2);
    }
    fs.f = fopen(path, "rb");
    CHECK(fs.f != NULL);
    if (fs.f) {
        CHECK_OK(mm_model_load_cb(&m3, file_read, &fs, &o));
        fclose(fs.f);
    }
    if (m3) check_same_params(m, m3);
    mm_model_free(m2);
    mm_model_free(m3);
    /* Errors that come from the file system. */
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    CHECK_STATUS(mm_model_load(&m2, path, &o), MM_E_IO);
    CHECK(m2 == NULL && strstr(err, "cannot open") != NULL);
    CHECK_STATUS(mm_model_load(&m2, dir, &o), MM_E_IO);
    snprintf(path, sizeof path, "%s/no/dir/m.safetensors", dir);
    CHECK_STATUS(mm_model_save(m, path, 0), MM_E_IO);
    CHECK(strstr(mm_model_errmsg(m), "mm_model_save") != NULL);
    /* Saving onto a non-empty directory fails at rename and leaves it alone. */
    snprintf(path, sizeof path, "%s/d", dir);
    CHECK(mkdir(path, 0755) == 0);
    {
        char keep[160];
        FILE *f;
        snprintf(keep, sizeof keep, "%s/keep", path);
        f = fopen(keep, "w");
        if (f) fclose(f);
        CHECK_STATUS(mm_model_save(m, path, 0), MM_E_IO);
        CHECK(access(keep, F_OK) == 0);
    }
    CHECK_EQ_I64(count_tmp_files(dir), 0);
    rm_tree(dir);
    mm_model_free(m);
}

/* Sequence blocks (attention kinds, GAU, Mamba, S4D) round-trip like any layer. */
static void test_model_roundtrip_blocks(void)
{
    static const int32_t kinds[] = {MM_ATTN_SOFTMAX, MM_ATTN_LINEAR, MM_ATTN_PERFORMER};
    mm_model_opts o;
    mm_model *m = NULL, *m2 = NULL;
    mm_attn_opts ao;
    size_t size = 0;
    unsigned char *buf;
    char err[256];
    int64_t xs[3] = {2, 5, 8}, ys[3] = {2, 5, 3};
    mm_tensor *x = NULL, *y = NULL, *y2 = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 8;
    o.max_batch = 2;
    o.max_seq = 5;
    o.seed = 21;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        CHECK_OK(mm_attn_opts_init(&ao, kinds[k]));
        ao.n_heads = 2;
        ao.d_head = 4;
        ao.causal = 1;
        ao.seed = 77;
        ao.n_features = 16;
        CHECK_OK(mm_model_add_attention(m, &ao));
    }
    CHECK_OK(mm_model_add_gau(m, 0, 4, 1, 2));
    CHECK_OK(mm_model_add_mamba(m, 4, 3, 2, 0));
    CHECK_OK(mm_model_add_s4d(m, 4));
    CHECK_OK(mm_model_add_dense(m, 3, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    buf = save_mem(m, 0, &size);
    opts_with(&o, NULL, err, sizeof err);
    o.max_batch = 2;
    o.max_seq = 5;
    CHECK_OK(mm_model_load_mem(&m2, buf, size, &o));
    if (m2) {
        check_same_params(m, m2);
        CHECK_OK(mm_tensor_create(&x, 3, xs, NULL));
        CHECK_OK(mm_tensor_create(&y, 3, ys, NULL));
        CHECK_OK(mm_tensor_create(&y2, 3, ys, NULL));
        if (x && y && y2) {
            mmt_fill_uniform(mm_tensor_data(x), 80, 3, -1, 1);
            CHECK_OK(mm_model_forward(m, x, y));
            CHECK_OK(mm_model_forward(m2, x, y2));
            CHECK(memcmp(mm_tensor_data(y), mm_tensor_data(y2), 30 * sizeof(float)) == 0);
        }
    } else {
        mmt_fail(__FILE__, __LINE__, "%s", err);
    }
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_tensor_free(y2);
    free(buf);
    mm_model_free(m);
    mm_model_free(m2);
}

/* Two models back to back in one stream: each load reads exactly its own bytes. */
static void test_model_stream_two(void)
{
    mm_model *a = build_mlp(NULL, 11, 1), *b = build_mlp(NULL, 12, 1), *a2 = NULL, *b2 = NULL;
    size_t sa = 0, sb = 0;
    unsigned char *ba, *bb, *both;
    mem_stream s;
    if (!a || !b) return;
    ba = save_mem(a, 0, &sa);
    bb = save_mem(b, 0, &sb);
    both = (unsigned char *)malloc(sa + sb);
    memcpy(both, ba, sa);
    memcpy(both + sa, bb, sb);
    memset(&s, 0, sizeof s);
    s.p = both;
    s.len = sa + sb;
    s.fail_at = -1;
    CHECK_OK(mm_model_load_cb(&a2, mem_read, &s, NULL));
    CHECK_EQ_I64(s.pos, sa);
    CHECK_OK(mm_model_load_cb(&b2, mem_read, &s, NULL));
    CHECK_EQ_I64(s.pos, sa + sb);
    if (a2 && b2) {
        check_same_params(a, a2);
        check_same_params(b, b2);
    }
    /* The stream is at its end: a third load fails cleanly. */
    {
        mm_model *c = NULL;
        mm_model_opts o;
        char err[256];
        opts_with(&o, NULL, err, sizeof err);
        CHECK_STATUS(mm_model_load_cb(&c, mem_read, &s, &o), MM_E_FORMAT);
        CHECK(c == NULL && strstr(err, "mm_model_load_cb") != NULL);
    }
    mm_model_free(a);
    mm_model_free(b);
    mm_model_free(a2);
    mm_model_free(b2);
    free(ba);
    free(bb);
    free(both);
}

/* Trains a few Adam steps so the optimizer state is not zero. */
static void train(mm_model *m, int steps)
{
    int64_t xs[2] = {4, 5}, ys[2] = {4, 3};
    mm_tensor *x = NULL, *dy = NULL, *y = NULL;
    CHECK_OK(mm_tensor_create(&x, 2, xs, NULL));
    CHECK_OK(mm_tensor_create(&y, 2, ys, NULL));
    CHECK_OK(mm_tensor_create(&dy, 2, ys, NULL));
    if (!x || !y || !dy) return;
    mmt_fill_uniform(mm_tensor_data(x), 20, 5, -1, 1);
    mmt_fill_uniform(mm_tensor_data(dy), 12, 6, -1, 1);
    for (int i = 0; i < steps; i++) {
        CHECK_OK(mm_model_zero_grad(m));
        CHECK_OK(mm_model_forward(m, x, y));
        CHECK_OK(mm_model_backward(m, dy, NULL));
        CHECK_OK(mm_model_step(m));
    }
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_tensor_free(dy);
}

static void test_model_optimizer_state(void)
{
    static const int32_t kinds[] = {MM_OPT_SGD, MM_OPT_MOMENTUM, MM_OPT_ADAM, MM_OPT_ADAMW,
                                    MM_OPT_RMSPROP};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        mm_model *m = build_mlp(NULL, 5, 4), *m2 = NULL, *m3 = NULL;
        size_t size = 0, size0 = 0;
        unsigned char *buf, *buf0;
        double v = 0;
        mm_model_opts o;
        char err[256];
        if (!m) return;
        CHECK_OK(mm_model_set_optimizer(m, kinds[k]));
        if (kinds[k] == MM_OPT_RMSPROP) {
            CHECK_OK(mm_model_set_f64(m, MM_MODEL_CENTERED, 1));
            CHECK_OK(mm_model_set_f64(m, MM_MODEL_MOMENTUM, 0.5));
        }
        train(m, 3);
        buf = save_mem(m, MM_SAVE_OPTIMIZER_STATE, &size);
        buf0 = save_mem(m, 0, &size0);
        CHECK(size > size0);
        opts_with(&o, NULL, err, sizeof err); /* max_batch 4 */
        CHECK_OK(mm_model_load_mem(&m2, buf, size, &o));
        CHECK_OK(mm_model_load_mem(&m3, buf0, size0, &o));
        if (m2 && m3) {
            CHECK_OK(mm_model_get_f64(m2, MM_MODEL_STAT_STEPS, &v));
            CHECK(v == 3);
            CHECK_OK(mm_model_get_f64(m3, MM_MODEL_STAT_STEPS, &v));
            CHECK(v == 0);
            /* Resuming from the state continues bit for bit. */
            train(m, 2);
            train(m2, 2);
            check_same_params(m, m2);
        }
        mm_model_free(m);
        mm_model_free(m2);
        mm_model_free(m3);
        free(buf);
        free(buf0);
    }
}

static void test_model_truncated(void)
{
    io_alloc x;
    mm_model *m = build_mlp(NULL, 6, 1), *m2 = NULL;
    mm_model_opts o;
    char err[256];
    size_t size = 0, step = mmt_quick() ? 7 : 1;
    unsigned char *buf;
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_SGD));
    buf = save_mem(m, MM_SAVE_OPTIMIZER_STATE, &size);
    io_alloc_init(&x, -1);
    opts_with(&o, &x.pub, err, sizeof err);
    for (size_t len = 0; len < size; len += step) {
        /* An exact-size heap copy, so a read past the end is a sanitizer error. */
        unsigned char *cut = (unsigned char *)malloc(len ? len : 1);
        int rc;
        memcpy(cut, buf, len);
        err[0] = '\0';
        rc = mm_model_load_mem(&m2, cut, len, &o);
        if (rc != MM_E_FORMAT || m2 != NULL || err[0] == '\0')
            mmt_fail(__FILE__, __LINE__, "truncated at %zu of %zu: %s \"%s\"", len, size,
                     mm_status_name(rc), err);
        mm_model_free(m2);
        m2 = NULL;
        free(cut);
    }
    CHECK_NO_LEAK(&x);
    /* Every data byte flipped: the checksum refuses it. */
    {
        mmi_err e;
        mmi_st_file f;
        mmi_st_limits lim;
        size_t start;
        mmi_st_limits_default(&lim);
        CHECK_OK(mmi_st_parse(&f, buf, size, &lim, &x.a, &e));
        start = 8 + (size_t)f.header_len;
        mmi_st_free(&f);
        for (size_t i = start; i < size; i += step) {
            buf[i] ^= 0x40;
            CHECK_STATUS(mm_model_load_mem(&m2, buf, size, &o), MM_E_FORMAT);
            if (!strstr(err, "checksum")) mmt_fail(__FILE__, __LINE__, "byte %zu: %s", i, err);
            buf[i] ^= 0x40;
        }
        /* Header bytes flipped: any outcome but a crash or a leak. */
        for (size_t i = 0; i < start; i += step) {
            buf[i] ^= 0x21;
            if (mm_model_load_mem(&m2, buf, size, &o) == MM_OK) mm_model_free(m2);
            buf[i] ^= 0x21;
        }
    }
    CHECK_NO_LEAK(&x);
    free(buf);
    mm_model_free(m);
}

/* ---- hostile files built from a valid one ---------------------------------------------------- */
typedef struct edit {
    const char *key, *val; /* set (val) or delete (val NULL) a metadata key; crc32 disables add */
    const char *drop;      /* a tensor to leave out */
    const char *to_f64;    /* a tensor to store as F64 */
    int extra;             /* add a tensor "extra.weight" */
} edit;

static unsigned char *rewrite(const unsigned char *file, size_t size, const edit *ed,
                              size_t *out_size)
{
    mmi_alloc a;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    mmi_st_plan p;
    mmi_st_out outs[64];
    const char *keys[16], *vals[16];
    static const float one = 1.0f;
    double *f64 = NULL;
    int64_t n = 0, nm = 0;
    unsigned char *buf = NULL;
    int set = 0;
    mmi_alloc_init(&a, NULL, NULL);
    mmi_st_limits_default(&lim);
    if (mmi_st_parse(&f, file, size, &lim, &a, &e) != MM_OK) return NULL;
    for (int64_t i = 0; i < f.n_meta; i++) {
        const char *k = f.meta[i].key;
        if (strcmp(k, "crc32") == 0 && !(ed->key && strcmp(ed->key, "crc32") == 0)) continue;
        if (ed->key && strcmp(k, ed->key) == 0) {
            set = 1;
            if (!ed->val) continue;
            keys[nm] = k;
            vals[nm++] = ed->val;
            continue;
        }
        keys[nm] = k;
        vals[nm++] = f.meta[i].val;
    }
    if (ed->key && ed->val && !set) {
        keys[nm] = ed->key;
        vals[nm++] = ed->val;
    }
    for (int64_t i = 0; i < f.n_tensors; i++) {
        const mmi_st_tensor *t = &f.tensors[i];
        mmi_st_out *o = &outs[n];
        if (ed->drop && strcmp(t->name, ed->drop) == 0) continue;
        memset(o, 0, sizeof *o);
        o->name = t->name;
        o->dtype = t->dtype;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof t->shape);
        o->data = f.data + t->begin;
        if (ed->to_f64 && strcmp(t->name, ed->to_f64) == 0) {
            f64 = (double *)malloc((size_t)t->numel * sizeof(double));
            for (int64_t j = 0; j < t->numel; j++) f64[j] = ((const float *)o->data)[j];
            o->dtype = MMI_ST_F64;
            o->data = f64;
        }
        n++;
    }
    if (ed->extra) {
        memset(&outs[n], 0, sizeof outs[n]);
        outs[n].name = "extra.weight";
        outs[n].dtype = MMI_ST_F32;
        outs[n].ndim = 1;
        outs[n].shape[0] = 1;
        outs[n++].data = &one;
    }
    if (mmi_st_plan_make(&p, outs, n, keys, vals, nm, !(ed->key && !strcmp(ed->key, "crc32")), &a,
                         &e) == MM_OK) {
        buf = (unsigned char *)malloc(p.total_size);
        mmi_st_plan_to_mem(&p, buf, p.total_size, out_size, &e, "t");
        mmi_st_plan_free(&p);
    }
    free(f64);
    mmi_st_free(&f);
    return buf;
}

typedef struct hostile_case {
    edit ed;
    int want;
    const char *word;
} hostile_case;

static void test_model_hostile(void)
{
    static const hostile_case cases[] = {
        {{"crc32", "00000000", NULL, NULL, 0}, MM_E_FORMAT, "checksum"},
        {{"crc32", "xyz", NULL, NULL, 0}, MM_E_FORMAT, "crc32"},
        {{"crc32", NULL, NULL, NULL, 0}, MM_E_FORMAT, "crc32"},
        {{"format_version", "2.0", NULL, NULL, 0}, MM_E_VERSION, "newer"},
        {{"format_version", "1.x", NULL, NULL, 0}, MM_E_FORMAT, "format_version"},
        {{"format_version", NULL, NULL, NULL, 0}, MM_E_FORMAT, "format_version"},
        {{"architecture", NULL, NULL, NULL, 0}, MM_E_FORMAT, "architecture"},
        {{"architecture", "{\"input_dim\":5,\"layers\":[", NULL, NULL, 0}, MM_E_FORMAT, "JSON"},
        {{"architecture", "{\"input_dim\":5,\"layers\":[{\"kind\":\"conv\"}]}", NULL, NULL, 0},
         MM_E_FORMAT,
         "conv"},
        {{"architecture", "{\"input_dim\":5,\"layers\":[]}", NULL, NULL, 0}, MM_E_FORMAT, "layers"},
        {{"architecture", "{\"input_dim\":0,\"layers\":[{\"kind\":\"relu\"}]}", NULL, NULL, 0},
         MM_E_FORMAT,
         "input_dim"},
        {{"architecture",
          "{\"input_dim\":5,\"layers\":[{\"kind\":\"dense\",\"icfg\":[-3,1,0],"
          "\"dcfg\":[1]}]}",
          NULL, NULL, 0},
         MM_E_FORMAT,
         "layer 0"},
        /* The architecture does not match the tensors: first layer 9 wide instead of 8. */
        {{"architecture",
          "{\"input_dim\":5,\"layers\":[{\"kind\":\"dense\",\"icfg\":[9,1,0],"
          "\"dcfg\":[1]},{\"kind\":\"tanh\"},{\"kind\":\"dense\",\"icfg\":"
          "[6,0,1],\"dcfg\":[1.3]}]}",
          NULL, NULL, 0},
         MM_E_FORMAT,
         "needs"},
        /* A hostile width on a parameter-free layer: refused before finalize reserves it. */
        {{"architecture", "{\"input_dim\":2000000000,\"layers\":[{\"kind\":\"relu\"}]}", NULL, NULL,
          0},
         MM_E_FORMAT,
         "proportion"},
        {{NULL, NULL, "4.weight", NULL, 0}, MM_E_FORMAT, "missing"},
        {{NULL, NULL, NULL, NULL, 1}, MM_E_FORMAT, "parameter tensors"},
        {{NULL, NULL, NULL, "2.weight", 0}, MM_E_DTYPE, "F64"},
        {{"optimizer", "{\"kind\":\"lion\"}", NULL, NULL, 0}, MM_E_FORMAT, "kind"},
        {{"optimizer", "{\"kind\":\"sgd\",\"lr\":-1}", NULL, NULL, 0}, MM_E_FORMAT, "lr"},
        {{"optimizer", "{\"kind\":\"sgd\",\"beta1\":0.9}", NULL, NULL, 0}, MM_E_FORMAT, "beta1"},
        {{"optimizer", "{\"kind\":\"sgd\",\"rho\":1}", NULL, NULL, 0}, MM_E_FORMAT, "rho"},
        {{"optimizer", "{\"kind\":\"sgd\",\"steps\":1}", NULL, NULL, 0}, MM_E_FORMAT, "steps"},
    };
    io_alloc x;
    mm_model *m = build_mlp(NULL, 7, 1), *m2 = NULL;
    mm_model_opts o;
    char err[256];
    size_t size = 0;
    unsigned char *buf;
    if (!m) return;
    buf = save_mem(m, 0, &size);
    io_alloc_init(&x, -1);
    opts_with(&o, &x.pub, err, sizeof err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        unsigned char *bad = rewrite(buf, size, &cases[i].ed, &n);
        int rc;
        if (!bad) {
            mmt_fail(__FILE__, __LINE__, "case %zu: cannot build the file", i);
            continue;
        }
        err[0] = '\0';
        rc = mm_model_load_mem(&m2, bad, n, &o);
        if (rc != cases[i].want || m2 != NULL || !strstr(err, cases[i].word))
            mmt_fail(__FILE__, __LINE__, "case %zu: %s \"%s\" (want %s, \"%s\")", i,
                     mm_status_name(rc), err, mm_status_name(cases[i].want), cases[i].word);
        mm_model_free(m2);
        m2 = NULL;
        free(bad);
    }
    CHECK_NO_LEAK(&x);
    /* Optimizer state tensors without optimizer metadata. */
    {
        size_t n = 0;
        unsigned char *withst, *bad;
        edit ed = {"optimizer", NULL, NULL, NULL, 0};
        CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
        withst = save_mem(m, MM_SAVE_OPTIMIZER_STATE, &n);
        bad = rewrite(withst, n, &ed, &n);
        CHECK_STATUS(mm_model_load_mem(&m2, bad, n, &o), MM_E_FORMAT);
        CHECK(strstr(err, "optimizer") != NULL);
        free(bad);
        free(withst);
    }
    CHECK_NO_LEAK(&x);
    free(buf);
    mm_model_free(m);
}

static void test_model_oom(void)
{
    mm_model *m = build_mlp(NULL, 8, 1), *m2 = NULL;
    size_t size = 0;
    unsigned char *buf;
    int done = 0;
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    buf = save_mem(m, MM_SAVE_OPTIMIZER_STATE, &size);
    for (int64_t k = 0; k < 200 && !done; k++) {
        io_alloc x;
        mm_model_opts o;
        char err[256];
        int rc;
        io_alloc_init(&x, k);
        opts_with(&o, &x.pub, err, sizeof err);
        rc = mm_model_load_mem(&m2, buf, size, &o);
        if (rc == MM_OK) {
            done = 1;
            check_same_params(m, m2);
            mm_model_free(m2);
        } else {
            if (rc != MM_E_NOMEM || m2 != NULL || err[0] == '\0')
                mmt_fail(__FILE__, __LINE__, "fail_after %lld: %s \"%s\"", (long long)k,
                         mm_status_name(rc), err);
        }
        CHECK_NO_LEAK(&x);
    }
    CHECK(done);
    /* Saving under memory pressure: NOMEM, nothing leaked, the model still saves after. */
    {
        io_alloc x;
        mm_model *ms;
        size_t s2 = 0;
        int64_t live;
        io_alloc_init(&x, -1);
        ms = build_mlp(&x.pub, 8, 1);
        if (ms) {
            live = x.c.live_bytes;
            for (int64_t k = 0; k < 6; k++) {
                int rc;
                x.c.fail_after = x.c.n_alloc + k;
                rc = mm_model_save_mem(ms, NULL, 0, &s2, 0);
                CHECK(rc == MM_OK || rc == MM_E_NOMEM);
                CHECK_EQ_I64(x.c.live_bytes, live);
            }
            x.c.fail_after = -1;
            CHECK_OK(mm_model_save_mem(ms, NULL, 0, &s2, 0));
            mm_model_free(ms);
        }
        CHECK_NO_LEAK(&x);
    }
    free(buf);
    mm_model_free(m);
}

static void test_model_save_errors(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    size_t size = 0;
    char buf[16];
    CHECK_STATUS(mm_model_save(NULL, "x", 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_save_mem(NULL, NULL, 0, &size, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_load_mem(NULL, buf, 1, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_load_mem(&m, NULL, 1, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_load(&m, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_load_cb(&m, NULL, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 3;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    CHECK_OK(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_STATUS(mm_model_save_mem(m, NULL, 0, &size, 0), MM_E_STATE);
    CHECK(strstr(mm_model_errmsg(m), "finalized") != NULL);
    CHECK_OK(mm_model_finalize(m));
    CHECK_STATUS(mm_model_save_mem(m, NULL, 0, &size, 2), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_save_mem(m, NULL, 0, NULL, 0), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_save(m, NULL, 0), MM_E_INVALID_ARG);
    CHECK_OK(mm_model_save_mem(m, NULL, 0, &size, 0));
    CHECK(size > 0);
    mm_model_free(m);
}

/* ---- PyTorch vectors (tests/vectors/gen_torch_vectors.py) ------------------------------------ */
static void check_vector(const char *model_name, const char *io_name)
{
    char path[256], err[256];
    mm_model *m = NULL;
    mm_model_opts o;
    mmi_st_file f;
    mmi_st_limits lim;
    mmi_alloc a;
    mmi_err e;
    const mmi_st_tensor *tx, *ty;
    snprintf(path, sizeof path, "%s/%s", MM_TEST_VECTOR_DIR, io_name);
    mmi_alloc_init(&a, NULL, NULL);
    mmi_st_limits_default(&lim);
    if (mmi_st_load_path(&f, path, &lim, &a, &e) != MM_OK) {
        mmt_fail(__FILE__, __LINE__, "%s: %s (run from the repository root)", path, e.msg);
        return;
    }
    tx = mmi_st_find(&f, "x");
    ty = mmi_st_find(&f, "y");
    CHECK(tx && ty && tx->ndim == 2 && ty->ndim == 2);
    opts_with(&o, NULL, err, sizeof err);
    o.max_batch = 16;
    snprintf(path, sizeof path, "%s/%s", MM_TEST_VECTOR_DIR, model_name);
    CHECK_OK(mm_model_load(&m, path, &o));
    if (m && tx && ty) {
        mm_tensor *x = NULL, *y = NULL;
        float *want = (float *)malloc((size_t)ty->numel * sizeof(float));
        CHECK_OK(mm_tensor_create(&x, 2, tx->shape, NULL));
        CHECK_OK(mm_tensor_create(&y, 2, ty->shape, NULL));
        if (x && y && want) {
            mmi_st_read_f32(&f, tx, mm_tensor_data(x));
            mmi_st_read_f32(&f, ty, want);
            CHECK_OK(mm_model_forward(m, x, y));
            for (int64_t i = 0; i < ty->numel; i++)
                CHECK_NEAR(mm_tensor_data(y)[i], want[i], 1e-5, 1e-5);
        }
        free(want);
        mm_tensor_free(x);
        mm_tensor_free(y);
    } else if (!m) {
        mmt_fail(__FILE__, __LINE__, "%s: %s", model_name, err);
    }
    mm_model_free(m);
    mmi_st_free(&f);
}

static void test_model_torch_vectors(void)
{
    check_vector("torch_mlp.safetensors", "torch_mlp_io.safetensors");
    check_vector("torch_plain.safetensors", "torch_plain_io.safetensors");
}

void suite_io(void)
{
    mmt_run("io_json_parse_values", test_json_parse_values);
    mmt_run("io_json_rejects", test_json_rejects);
    mmt_run("io_json_limits", test_json_limits);
    mmt_run("io_json_writer", test_json_writer);
    mmt_run("io_json_locale", test_json_locale);
    mmt_run("io_st_roundtrip", test_st_roundtrip);
    mmt_run("io_st_hostile", test_st_hostile);
    mmt_run("io_st_stream", test_st_stream);
    mmt_run("io_atomic_write", test_atomic_write);
    mmt_run("io_model_roundtrip_mem", test_model_roundtrip_mem);
    mmt_run("io_model_roundtrip_path_cb", test_model_roundtrip_path_cb);
    mmt_run("io_model_roundtrip_blocks", test_model_roundtrip_blocks);
    mmt_run("io_model_stream_two", test_model_stream_two);
    mmt_run("io_model_optimizer_state", test_model_optimizer_state);
    mmt_run("io_model_truncated", test_model_truncated);
    mmt_run("io_model_hostile", test_model_hostile);
    mmt_run("io_model_oom", test_model_oom);
    mmt_run("io_model_save_errors", test_model_save_errors);
    mmt_run("io_model_torch_vectors", test_model_torch_vectors);
}
