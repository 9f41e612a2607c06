/* SPDX-License-Identifier: MIT */
/* json.c — a strict, bounded JSON parser (two passes: validate and count without allocating,
 * then fill one exactly-sized block) and a compact JSON writer into a caller buffer. Built for
 * safetensors headers and libmm's architecture metadata, which are hostile input. */
#include "mmi_io.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_NUMBER 128 /* characters in one number literal */
#define JSON_HARD_DEPTH 256 /* recursion cap whatever the caller asks */

/* ---- UTF-8 ---------------------------------------------------------------------------------- */
/* Length (1..4) of the well-formed UTF-8 sequence at p, or 0: rejects overlong forms,
 * surrogates and code points past U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n, i;
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n) return 0;
    for (i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;
    if (c == 0xED && p[1] >= 0xA0) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;
    if (c == 0xF4 && p[1] >= 0x90) return 0;
    return n;
}

/* Writes code point cp as UTF-8 into out (if not NULL); returns its length. */
static size_t utf8_put(unsigned char *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (out) memcpy(out, b, n);
    return n;
}

/* ---- numbers without the C locale ----------------------------------------------------------- */
int mmi_json_number(const char *s, size_t n, double *out)
{
    char buf[2 * JSON_MAX_NUMBER + 16];
    char *endp;
    double v;
    if (n == 0 || n > JSON_MAX_NUMBER) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtod(buf, &endp);
    if (endp != buf + n) {
        /* The host set a locale whose decimal point is not '.': spell the literal its way. A
         * library must not change the locale, which is process-global. */
        const char *dp = localeconv()->decimal_point;
        size_t dl = dp ? strlen(dp) : 0, j = 0;
        if (dl == 0 || dl > 8) return -1;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '.') {
                memcpy(buf + j, dp, dl);
                j += dl;
            } else {
                buf[j++] = s[i];
            }
        }
        buf[j] = '\0';
        v = strtod(buf, &endp);
        if (endp != buf + j) return -1;
    }
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ---- parser state --------------------------------------------------------------------------- */
typedef struct jp {
    const unsigned char *start, *p, *end;
    const mmi_json_limits *lim;
    int32_t depth;
    int64_t count;    /* nodes created so far */
    size_t str_bytes; /* unescaped string bytes (with NULs) so far */
    mmi_json *nodes;  /* NULL in the counting pass */
    char *strs;       /* string arena in the filling pass */
    mmi_err *e;
    const char *what;
} jp;

static int jp_fail(jp *s, const char *msg)
{
    return mmi_fail(s->e, MM_E_FORMAT, "%s: malformed JSON at byte %zu: %s", s->what,
                    (size_t)(s->p - s->start), msg);
}

static void jp_ws(jp *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Decodes the escape after a backslash at s->p (pointing past the '\'); writes its UTF-8
 * bytes to out (if not NULL) and their count to *n. */
static int jp_escape(jp *s, unsigned char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    uint32_t cp, lo;
    const char *hit;
    if (s->p >= s->end) return jp_fail(s, "unterminated escape");
    if (*s->p != 'u') {
        hit = *s->p ? strchr(from, *s->p) : NULL;
        if (!hit) return jp_fail(s, "invalid escape");
        if (out) *out = (unsigned char)to[hit - from];
        *n = 1;
        s->p++;
        return MM_OK;
    }
    if (s->end - s->p < 5 || hex4(s->p + 1, &cp)) return jp_fail(s, "invalid \\u escape");
    s->p += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return jp_fail(s, "lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return jp_fail(s, "high surrogate without a low surrogate");
        s->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *n = utf8_put(out, cp);
    return MM_OK;
}

/* Parses a string at s->p (on the opening quote). In the filling pass the unescaped copy goes
 * into the arena and *out and *out_len describe it. */
static int jp_string(jp *s, const char **out, uint32_t *out_len)
{
    unsigned char *dst = s->nodes ? (unsigned char *)s->strs + s->str_bytes : NULL;
    size_t len = 0, k = 0;
    int rc;
    s->p++; /* opening quote */
    for (;;) {
        unsigned c;
        if (s->p >= s->end) return jp_fail(s, "unterminated string");
        c = *s->p;
        if (c == '"') break;
        if (c < 0x20) return jp_fail(s, "control character in string");
        if (c == '\\') {
            s->p++;
            rc = jp_escape(s, dst ? dst + len : NULL, &k);
            if (rc) return rc;
        } else {
            k = utf8_seq(s->p, s->end);
            if (k == 0) return jp_fail(s, "invalid UTF-8 in string");
            if (dst) memcpy(dst + len, s->p, k);
            s->p += k;
        }
        len += k;
    }
    s->p++; /* closing quote */
    if (len > UINT32_MAX - 1) return jp_fail(s, "string too long");
    if (dst) {
        dst[len] = '\0';
        *out = (const char *)dst;
        *out_len = (uint32_t)len;
    }
    s->str_bytes += len + 1;
    return MM_OK;
}

/* Parses a number; v (filling pass) receives its value. */
static int jp_number(jp *s, mmi_json *v)
{
    const unsigned char *b = s->p;
    int neg = 0, integral = 1, overflow = 0;
    uint64_t mag = 0;
    double d = 0;
    if (s->p < s->end && *s->p == '-') {
        neg = 1;
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return jp_fail(s, "invalid number");
    if (*s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') return jp_fail(s, "leading zero");
    } else {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            unsigned dg = (unsigned)(*s->p++ - '0');
            if (mag > (UINT64_MAX - dg) / 10)
                overflow = 1;
            else
                mag = mag * 10 + dg;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        integral = 0;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return jp_fail(s, "digit expected after '.'");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integral = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return jp_fail(s, "digit expected in exponent");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (s->p - b > JSON_MAX_NUMBER) return jp_fail(s, "number literal too long");
    /* int64 range: magnitude up to 2^63 - 1, or 2^63 when negative. */
    if (overflow || mag > (uint64_t)INT64_MAX + (uint64_t)neg) integral = 0;
    if (!integral && mmi_json_number((const char *)b, (size_t)(s->p - b), &d))
        return jp_fail(s, "number out of range");
    if (v) {
        v->is_int = integral;
        if (integral) {
            v->i =
                neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
            v->num = neg && mag == 0 ? -0.0 : (double)v->i; /* keep -0's sign */
        } else {
            v->num = d;
        }
    }
    return MM_OK;
}

static int jp_value(jp *s, const char *key, uint32_t key_len);

/* Parses the members of an array or object (s->p past the opening bracket) into parent. */
static int jp_container(jp *s, mmi_json *parent, int is_obj)
{
    const unsigned char close = is_obj ? '}' : ']';
    uint32_t n = 0;
    int rc;
    if (++s->depth > s->lim->max_depth || s->depth > JSON_HARD_DEPTH)
        return mmi_fail(s->e, MM_E_FORMAT, "%s: JSON nested deeper than %d at byte %zu", s->what,
                        (int)s->lim->max_depth, (size_t)(s->p - s->start));
    jp_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return MM_OK;
    }
    for (;;) {
        const char *k = NULL;
        uint32_t kl = 0;
        jp_ws(s);
        if (is_obj) {
            if (s->p >= s->end || *s->p != '"') return jp_fail(s, "object key expected");
            if ((rc = jp_string(s, &k, &kl))) return rc;
            jp_ws(s);
            if (s->p >= s->end || *s->p != ':') return jp_fail(s, "':' expected");
            s->p++;
            jp_ws(s);
        }
        if ((rc = jp_value(s, k, kl))) return rc;
        n++;
        jp_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) break;
        return jp_fail(s, is_obj ? "',' or '}' expected" : "',' or ']' expected");
    }
    s->p++;
    s->depth--;
    if (parent) parent->n = n;
    return MM_OK;
}

static int jp_literal(jp *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n)) return jp_fail(s, "invalid literal");
    s->p += n;
    return MM_OK;
}

/* Parses one value at s->p (no leading whitespace) as node number s->count. */
static int jp_value(jp *s, const char *key, uint32_t key_len)
{
    int64_t idx = s->count;
    mmi_json *v = NULL;
    int rc;
    if (s->count >= s->lim->max_nodes || s->count >= (int64_t)UINT32_MAX)
        return mmi_fail(s->e, MM_E_FORMAT, "%s: more than %lld JSON values", s->what,
                        (long long)s->lim->max_nodes);
    s->count++;
    if (s->nodes) {
        v = &s->nodes[idx];
        memset(v, 0, sizeof *v);
        v->key = key;
        v->key_len = key_len;
    }
    if (s->p >= s->end) return jp_fail(s, "value expected");
    switch (*s->p) {
    case '{':
    case '[':
        if (v) v->type = *s->p == '{' ? MMI_JSON_OBJECT : MMI_JSON_ARRAY;
        s->p++;
        rc = jp_container(s, v, s->p[-1] == '{');
        break;
    case '"':
        if (v) v->type = MMI_JSON_STRING;
        rc = jp_string(s, v ? &v->str : NULL, v ? &v->str_len : NULL);
        break;
    case 't':
        if (v) v->type = MMI_JSON_TRUE;
        rc = jp_literal(s, "true");
        break;
    case 'f':
        if (v) v->type = MMI_JSON_FALSE;
        rc = jp_literal(s, "false");
        break;
    case 'n':
        if (v) v->type = MMI_JSON_NULL;
        rc = jp_literal(s, "null");
        break;
    default:
        if (v) v->type = MMI_JSON_NUMBER;
        rc = jp_number(s, v);
        break;
    }
    if (!rc && v) v->skip = (uint32_t)(s->count - idx);
    return rc;
}

/* One pass over the text; nodes == NULL counts, otherwise fills. */
static int jp_run(jp *s)
{
    int rc;
    s->p = s->start;
    s->depth = 0;
    s->count = 0;
    s->str_bytes = 0;
    jp_ws(s);
    if ((rc = jp_value(s, NULL, 0))) return rc;
    jp_ws(s);
    if (s->p != s->end) return jp_fail(s, "trailing characters after the value");
    return MM_OK;
}

int mmi_json_parse(mmi_json_doc *doc, const char *text, size_t len, const mmi_json_limits *lim,
                   const mmi_alloc *a, mmi_err *e, const char *what)
{
    jp s;
    size_t node_bytes, total;
    int rc;
    memset(doc, 0, sizeof *doc);
    if (!text || !lim || !a || lim->max_depth < 1 || lim->max_nodes < 1)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: bad JSON parser arguments", what);
    if (len > UINT32_MAX)
        return mmi_fail(e, MM_E_FORMAT, "%s: JSON text of %zu bytes is too long", what, len);
    memset(&s, 0, sizeof s);
    s.start = (const unsigned char *)text;
    s.end = s.start + len;
    s.lim = lim;
    s.e = e;
    s.what = what;
    if ((rc = jp_run(&s))) return rc;
    /* The counting pass fixed the exact size; both terms are bounded by the text length and
     * max_nodes, and the arithmetic is still checked. */
    if (mmi_mul_size(&node_bytes, (size_t)s.count, sizeof(mmi_json)) ||
        mmi_add_size(&total, node_bytes, s.str_bytes) || mmi_align_up(total) == 0)
        return mmi_fail(e, MM_E_FORMAT, "%s: JSON document too large", what);
    doc->block = mmi_malloc(a, total);
    if (!doc->block) return mmi_fail(e, MM_E_NOMEM, "%s: out of memory (%zu bytes)", what, total);
    doc->block_size = total;
    doc->alloc = *a;
    s.nodes = (mmi_json *)doc->block;
    s.strs = (char *)doc->block + node_bytes;
    if ((rc = jp_run(&s))) { /* cannot happen: same input, same code */
        mmi_json_free(doc);
        return rc;
    }
    doc->root = s.nodes;
    doc->n_nodes = s.count;
    return MM_OK;
}

void mmi_json_free(mmi_json_doc *doc)
{
    if (!doc) return;
    if (doc->block) mmi_free(&doc->alloc, doc->block, doc->block_size);
    memset(doc, 0, sizeof *doc);
}

/* ---- navigation ----------------------------------------------------------------------------- */
const mmi_json *mmi_json_first(const mmi_json *v)
{
    if (!v || (v->type != MMI_JSON_ARRAY && v->type != MMI_JSON_OBJECT) || v->n == 0) return NULL;
    return v + 1;
}

const mmi_json *mmi_json_next(const mmi_json *parent, const mmi_json *child)
{
    const mmi_json *nx = child + child->skip;
    return nx < parent + parent->skip ? nx : NULL;
}

const mmi_json *mmi_json_get(const mmi_json *obj, const char *key)
{
    size_t kl = strlen(key);
    if (!obj || obj->type != MMI_JSON_OBJECT) return NULL;
    for (const mmi_json *c = mmi_json_first(obj); c; c = mmi_json_next(obj, c))
        if (c->key_len == kl && memcmp(c->key, key, kl) == 0) return c;
    return NULL;
}

int mmi_json_str_eq(const mmi_json *v, const char *s)
{
    size_t n = strlen(s);
    return v && v->type == MMI_JSON_STRING && v->str_len == n && memcmp(v->str, s, n) == 0;
}

/* ---- writer --------------------------------------------------------------------------------- */
void mmi_jw_init(mmi_jw *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf ? cap : 0;
}

static void jw_put(mmi_jw *w, const char *s, size_t n)
{
    if (w->buf && n && w->len <= w->cap && n <= w->cap - w->len) memcpy(w->buf + w->len, s, n);
    if (w->len > SIZE_MAX - n)
        w->bad = 1;
    else
        w->len += n;
}

/* Emits the comma a new value or key needs at the current depth. */
static void jw_sep(mmi_jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1]) jw_put(w, ",", 1);
        w->has_items[w->depth - 1] = 1;
    } else if (w->len > 0) {
        w->bad = 1; /* a second top-level value */
    }
}

static void jw_open(mmi_jw *w, char c)
{
    jw_sep(w);
    if (w->depth >= MMI_JW_MAX_DEPTH) {
        w->bad = 1;
        return;
    }
    w->has_items[w->depth++] = 0;
    jw_put(w, &c, 1);
}

static void jw_close(mmi_jw *w, char c)
{
    if (w->depth <= 0 || w->after_key) {
        w->bad = 1;
        return;
    }
    w->depth--;
    jw_put(w, &c, 1);
}

void mmi_jw_obj_begin(mmi_jw *w) { jw_open(w, '{'); }
void mmi_jw_obj_end(mmi_jw *w) { jw_close(w, '}'); }
void mmi_jw_arr_begin(mmi_jw *w) { jw_open(w, '['); }
void mmi_jw_arr_end(mmi_jw *w) { jw_close(w, ']'); }

static void jw_quoted(mmi_jw *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char esc[8];
    jw_put(w, "\"", 1);
    while (p < end) {
        size_t run = 0, k;
        /* Copy the longest run that needs no escaping in one call. */
        while (p + run < end && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\' && p[run] < 0x80)
            run++;
        if (run) {
            jw_put(w, (const char *)p, run);
            p += run;
            continue;
        }
        if (*p >= 0x80) {
            k = utf8_seq(p, end);
            if (k == 0) {
                w->bad = 1;
                return;
            }
            jw_put(w, (const char *)p, k);
            p += k;
            continue;
        }
        switch (*p) {
        case '"':
            jw_put(w, "\\\"", 2);
            break;
        case '\\':
            jw_put(w, "\\\\", 2);
            break;
        case '\n':
            jw_put(w, "\\n", 2);
            break;
        case '\t':
            jw_put(w, "\\t", 2);
            break;
        case '\r':
            jw_put(w, "\\r", 2);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
            jw_put(w, esc, 6);
            break;
        }
        p++;
    }
    jw_put(w, "\"", 1);
}

void mmi_jw_keyn(mmi_jw *w, const char *k, size_t n)
{
    if (w->depth <= 0 || w->after_key) {
        w->bad = 1;
        return;
    }
    jw_sep(w);
    jw_quoted(w, k, n);
    jw_put(w, ":", 1);
    w->after_key = 1;
}

void mmi_jw_key(mmi_jw *w, const char *k) { mmi_jw_keyn(w, k, strlen(k)); }

void mmi_jw_strn(mmi_jw *w, const char *s, size_t n)
{
    jw_sep(w);
    jw_quoted(w, s, n);
}

void mmi_jw_str(mmi_jw *w, const char *s) { mmi_jw_strn(w, s, strlen(s)); }

void mmi_jw_i64(mmi_jw *w, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    jw_sep(w);
    jw_put(w, b, (size_t)n);
}

/* printf's %g spells the decimal point the host locale's way; JSON wants '.'. Every byte %g
 * produces other than digits, signs and 'e' belongs to the decimal point. */
static size_t jw_delocalize(char *s)
{
    size_t j = 0;
    int in_dp = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E') {
            s[j++] = c;
            in_dp = 0;
        } else if (!in_dp) {
            s[j++] = '.';
            in_dp = 1;
        }
    }
    s[j] = '\0';
    return j;
}

void mmi_jw_f64(mmi_jw *w, double v)
{
    char b[64];
    size_t n = 0;
    double back;
    if (!isfinite(v)) {
        w->bad = 1;
        return;
    }
    /* Shortest precision that reads back bit-exactly; 17 digits always does. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        n = jw_delocalize(b);
        if (mmi_json_number(b, n, &back) == 0 && back == v && signbit(back) == signbit(v)) break;
    }
    jw_sep(w);
    jw_put(w, b, n);
}

void mmi_jw_bool(mmi_jw *w, int v)
{
    jw_sep(w);
    jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void mmi_jw_null(mmi_jw *w)
{
    jw_sep(w);
    jw_put(w, "null", 4);
}

void mmi_jw_raw(mmi_jw *w, const char *s, size_t n) { jw_put(w, s, n); }

int mmi_jw_finish(mmi_jw *w, size_t *needed)
{
    if (w->bad || w->depth != 0 || w->after_key || w->len == SIZE_MAX) return MM_E_INVALID_ARG;
    if (needed) *needed = w->len + 1;
    if (w->len >= w->cap) return MM_E_BUFFER_TOO_SMALL;
    w->buf[w->len] = '\0';
    return MM_OK;
}
