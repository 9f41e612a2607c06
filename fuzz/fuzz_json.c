/* SPDX-License-Identifier: MIT */
/* fuzz_json.c — libFuzzer target for the JSON parser and writer, and the safetensors header
 * parser on the same bytes.
 *
 * Oracle: no crash, leak or sanitizer report; a document that parses is written back with the
 * JSON writer (size query first, then into an exactly-sized buffer) and must parse again to the
 * same tree (same types, keys, strings and number values, bit for bit). */
#include "io/mmi_io.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void emit(mmi_jw *w, const mmi_json *v)
{
    if (v->key) mmi_jw_keyn(w, v->key, v->key_len);
    switch (v->type) {
    case MMI_JSON_NULL:
        mmi_jw_null(w);
        break;
    case MMI_JSON_FALSE:
        mmi_jw_bool(w, 0);
        break;
    case MMI_JSON_TRUE:
        mmi_jw_bool(w, 1);
        break;
    case MMI_JSON_STRING:
        mmi_jw_strn(w, v->str, v->str_len);
        break;
    case MMI_JSON_NUMBER:
        if (v->is_int)
            mmi_jw_i64(w, v->i);
        else
            mmi_jw_f64(w, v->num);
        break;
    default:
        if (v->type == MMI_JSON_OBJECT)
            mmi_jw_obj_begin(w);
        else
            mmi_jw_arr_begin(w);
        for (const mmi_json *c = mmi_json_first(v); c; c = mmi_json_next(v, c)) emit(w, c);
        if (v->type == MMI_JSON_OBJECT)
            mmi_jw_obj_end(w);
        else
            mmi_jw_arr_end(w);
        break;
    }
}

static int same(const mmi_json *a, const mmi_json *b)
{
    if (a->type != b->type || a->n != b->n || a->skip != b->skip) return 0;
    if ((a->key == NULL) != (b->key == NULL)) return 0;
    if (a->key && (a->key_len != b->key_len || memcmp(a->key, b->key, a->key_len))) return 0;
    if (a->type == MMI_JSON_STRING &&
        (a->str_len != b->str_len || memcmp(a->str, b->str, a->str_len)))
        return 0;
    /* Integers are written as integers ("-0" as "0": same integer); a double such as 5.0 is
     * written "5" and reads back as an integer, so doubles compare by value, bit for bit. */
    if (a->type == MMI_JSON_NUMBER && a->is_int && (!b->is_int || a->i != b->i)) return 0;
    if (a->type == MMI_JSON_NUMBER && !a->is_int && memcmp(&a->num, &b->num, sizeof a->num))
        return 0;
    return 1;
}

static void roundtrip(const mmi_json_doc *d, const mmi_json_limits *lim, const mmi_alloc *a)
{
    mmi_jw w;
    size_t need = 0;
    char *buf;
    mmi_json_doc d2;
    mmi_err e;
    mmi_jw_init(&w, NULL, 0);
    emit(&w, d->root);
    if (mmi_jw_finish(&w, &need) != MM_E_BUFFER_TOO_SMALL) abort();
    buf = (char *)malloc(need);
    if (!buf) return;
    mmi_jw_init(&w, buf, need);
    emit(&w, d->root);
    if (mmi_jw_finish(&w, NULL) != MM_OK || strlen(buf) + 1 != need) abort();
    if (mmi_json_parse(&d2, buf, need - 1, lim, a, &e, "roundtrip") != MM_OK) abort();
    if (d2.n_nodes != d->n_nodes) abort();
    for (int64_t i = 0; i < d->n_nodes; i++)
        if (!same(&d->root[i], &d2.root[i])) abort();
    mmi_json_free(&d2);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mmi_alloc a;
    mmi_err e;
    mmi_json_doc d;
    mmi_json_limits lim = {32, 1 << 16};
    mmi_st_file f;
    mmi_st_limits sl;
    if (mmi_alloc_init(&a, NULL, &e) != MM_OK) abort();
    e.msg[0] = '\0';
    if (mmi_json_parse(&d, (const char *)data, size, &lim, &a, &e, "fuzz") == MM_OK) {
        roundtrip(&d, &lim, &a);
        mmi_json_free(&d);
    } else if (e.msg[0] == '\0' || d.block != NULL) {
        abort(); /* every failure says why and owns nothing */
    }
    /* The same bytes as a safetensors header with an 8-byte length in front. */
    mmi_st_limits_default(&sl);
    if (size <= 60000) {
        unsigned char *file = (unsigned char *)malloc(size + 8);
        if (!file) return 0;
        for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)size >> (8 * i));
        if (size) memcpy(file + 8, data, size);
        e.msg[0] = '\0';
        /* The data section is empty, so only files whose tensors are all empty can parse. */
        if (mmi_st_parse(&f, file, size + 8, &sl, &a, &e) == MM_OK) {
            if (f.data_len != 0) abort();
            (void)mmi_st_check_crc(&f, 0, &e);
            mmi_st_free(&f);
        } else if (e.msg[0] == '\0') {
            abort();
        }
        free(file);
    }
    return 0;
}
