/* SPDX-License-Identifier: MIT */
/* fuzz_config.c — structure-aware libFuzzer target: fuzzes what a well-formed file MEANS, not
 * how it is spelled. The input bytes are a sequence of choices; the target turns them into a
 * valid, checksum-correct safetensors file and runs what loads.
 *
 *   byte 0 even: a model file. Random layer kinds with every icfg / dcfg entry drawn from
 *       typical values, boundaries, 0, -1 and extremes (2^31, 2^62, INT64_MAX, 1e8, ...; for
 *       reals NaN / Inf / DBL_MAX / denormals), an optional optimizer with random settings and
 *       state (step counters included), tensors with the shapes the architecture implies.
 *       mm_model_load_mem, then forward, backward, step, forward, infer.
 *   byte 0 odd: a policy. Random mm_policy_opts (every int and real field), create, save, then
 *       the saved file rewritten with random tensor values and observation statistics and a
 *       fresh CRC, mm_policy_load, then act / observe / update rounds, with checkpoint round
 *       trips (now and then through a checkpoint whose values were mutated, CRC refreshed).
 *
 * Oracle: no crash or sanitizer report; every call returns MM_OK or a negative status with a
 * non-empty message; with "clean" data (finite, moderate parameters) every MM_OK output is
 * finite and a clean policy file loads; no single reservation of the library exceeds CAP
 * while running a file (a tiny file must not reserve gigabytes). Policy creation takes its
 * sizes from the caller, so there an over-cap request gets NULL (and must fail cleanly). */
#include "mm.h"
#include "model/mmi_model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP             ((size_t)256 << 20) /* largest single reservation a file may cause */
#define CREATE_TOTAL    ((size_t)64 << 20)  /* policy creation: live bytes before NULL */
#define MAX_FILE_FLOATS (1 << 18)           /* tensor data the target writes (1 MiB) */
#define BATCH           2
#define SEQ             4

/* ---- choices ------------------------------------------------------------------------------- */
typedef struct rd {
    const uint8_t *p;
    size_t n, i;
} rd;

static uint32_t byte(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static uint32_t pick(rd *r, uint32_t n) { return n ? byte(r) % n : 0; }
static uint64_t u64(rd *r)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v = (v << 8) | byte(r);
    return v;
}

static const int64_t k_int_extreme[] = {2147483647LL,
                                        2147483648LL,
                                        4294967296LL,
                                        (int64_t)1 << 62,
                                        INT64_MAX,
                                        INT64_MIN,
                                        -2147483648LL,
                                        100000000LL,
                                        65536,
                                        65537,
                                        1024,
                                        1025,
                                        4096,
                                        4097,
                                        1 << 20,
                                        99,
                                        7,
                                        9,
                                        -2,
                                        257,
                                        16384,
                                        1000000,
                                        46341,
                                        3037000500LL};

/* How wild a case is: the chance, in 64ths, that a field leaves its usual range. A case with
 * one odd field among typical ones reaches the code behind the validation; many odd fields
 * test the validation itself. */
static uint32_t g_wild;

static int wild(rd *r) { return byte(r) % 64 < g_wild; }

/* A value for an integer field whose usual range is [lo, hi]. Every draw reads exactly two
 * bytes (mode, value), so a one-byte mutation changes one field and leaves the rest of the
 * case where it was: that is what lets the fuzzer walk from a typical case to one odd field. */
static int64_t draw_int(rd *r, int64_t lo, int64_t hi)
{
    uint32_t a = byte(r), b = byte(r);
    if (a % 64 >= g_wild) return lo + (int64_t)(b % (uint32_t)(hi - lo + 1));
    switch (a / 64) {
    case 0: {
        const int64_t e[4] = {lo - 1, lo, hi, hi + 1};
        return e[b % 4];
    }
    case 1:
        return (int64_t)(b % 3) - 1; /* -1, 0, 1 */
    default:
        return k_int_extreme[b % (sizeof k_int_extreme / sizeof k_int_extreme[0])];
    }
}

/* A size the caller chooses (hidden width, observation width, batch): legal values above 64
 * only cost time (the library was asked for that work), so they become 64; refused values
 * (0, negative, beyond the documented bound) stay. */
static int64_t draw_size(rd *r, int64_t lo, int64_t hi, int64_t legal_max)
{
    int64_t v = draw_int(r, lo, hi);
    return v > 64 && v <= legal_max ? 64 : v;
}

static int64_t draw_work(rd *r, int64_t lo, int64_t hi)
{
    int64_t v = draw_int(r, lo, hi);
    return v > 16 ? 16 : v;
}

static const double k_dbl_extreme[] = {0.0,     -0.0,    1.0,      -1.0,      1e-300,    5e-324,
                                       1e300,   DBL_MAX, -DBL_MAX, NAN,       INFINITY,  -INFINITY,
                                       1e-8,    0.5,     2.0,      1e6,       1e30,      1e31,
                                       FLT_MAX, 1e39,    1e-45,    1.0000001, 0.9999999, 1e-38};

/* A value for a real field whose usual range is [lo, hi] (two bytes, as draw_int). */
static double draw_dbl(rd *r, double lo, double hi)
{
    uint32_t a = byte(r), b = byte(r);
    if (a % 64 >= g_wild) return lo + (hi - lo) * (double)b / 255.0;
    if (a / 64 == 0) return b % 2 ? lo : hi;
    return k_dbl_extreme[b % (sizeof k_dbl_extreme / sizeof k_dbl_extreme[0])];
}

/* splitmix64: the tensor values, so a case does not spend an input byte per float. */
static uint64_t g_rng;
static double unif(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* ---- the counting allocator ---------------------------------------------------------------- */
static int g_strict; /* 1: an over-cap request is a bug (running a file) */
static size_t g_live, g_largest;
static const char *g_phase = "";

static void *cnt_alloc(void *ud, size_t size, size_t align)
{
    void *p;
    (void)ud;
    if (size > g_largest) g_largest = size;
    if (size > CAP) {
        if (g_strict) {
            fprintf(stderr, "fuzz_config: %s reserved %zu bytes in one call (cap %zu)\n", g_phase,
                    size, CAP);
            abort();
        }
        return NULL;
    }
    if (!g_strict && g_live + size > CREATE_TOTAL) return NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (posix_memalign(&p, align, size ? size : 1) != 0) return NULL;
    g_live += size;
    return p;
}

static void cnt_free(void *ud, void *p, size_t size)
{
    (void)ud;
    if (!p) return;
    g_live -= size;
    free(p);
}

static const mm_allocator g_alloc = {sizeof(mm_allocator), 0, cnt_alloc, cnt_free, NULL};

static void fail(const char *what, int rc, const char *msg)
{
    fprintf(stderr, "fuzz_config: %s: status %d (%s), message \"%s\"\n", what, rc,
            mm_status_name(rc), msg ? msg : "");
    abort();
}

/* A call returned rc: MM_OK, or negative with a message. */
static int status_ok(const char *what, int rc, const char *msg)
{
    if (rc > 0 || (rc < 0 && (!msg || !msg[0]))) fail(what, rc, msg);
    return rc == MM_OK;
}

static void check_finite(const char *what, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            fprintf(stderr, "fuzz_config: %s: element %lld of %lld is %g with MM_OK\n", what,
                    (long long)i, (long long)n, (double)v[i]);
            abort();
        }
}

/* ---- a growing byte buffer ----------------------------------------------------------------- */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->n + n + 1) c *= 2;
        b->p = (char *)realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }
static void putf(buf *b, const char *fmt, long long v)
{
    char t[32];
    snprintf(t, sizeof t, fmt, v);
    puts_(b, t);
}

/* JSON has no NaN or Inf: they are written as tokens a strict parser must refuse. */
static void put_dbl(buf *b, double v)
{
    char t[40];
    if (isnan(v))
        snprintf(t, sizeof t, "NaN");
    else if (isinf(v))
        snprintf(t, sizeof t, v > 0 ? "1e999" : "-1e999");
    else
        snprintf(t, sizeof t, "%.17g", v);
    puts_(b, t);
}

/* Appends s as the body of a JSON string (quotes and backslashes escaped). */
static void put_escaped(buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') put(b, "\\", 1);
        put(b, s + i, 1);
    }
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* ---- model files --------------------------------------------------------------------------- */
typedef struct layer_desc {
    const char *kind;
    int64_t icfg[MMI_LAYER_MAX_CFG + 1];
    double dcfg[MMI_LAYER_MAX_CFG + 1];
    int32_t n_icfg, n_dcfg;
} layer_desc;

enum {
    K_DENSE,
    K_ACT,
    K_LN,
    K_RMS,
    K_EMBED,
    K_ATTN,
    K_GAU,
    K_MAMBA,
    K_S4D,
    K_XATTN,
    K_ACTNAME,
    K_N
};

static void draw_layer(rd *r, layer_desc *l)
{
    static const char *const act_names[] = {"relu", "tanh", "sigmoid",  "gelu",
                                            "silu", "elu",  "softplus", "relu2"};
    int32_t ni = 0, nd = 0;
    int64_t *I = l->icfg;
    double *D = l->dcfg;
    int64_t ak;
    memset(l, 0, sizeof *l);
    switch (pick(r, K_N)) {
    case K_DENSE:
        l->kind = "dense";
        I[ni++] = draw_int(r, 1, 12), I[ni++] = draw_int(r, 0, 1), I[ni++] = draw_int(r, 0, 1);
        D[nd++] = draw_dbl(r, 0.0, 2.0);
        break;
    case K_ACT:
        l->kind = "activation";
        I[ni++] = draw_int(r, 1, 8);
        break;
    case K_LN:
    case K_RMS:
        l->kind = pick(r, 2) ? "layernorm" : "rmsnorm";
        I[ni++] = draw_int(r, 0, 1);
        D[nd++] = draw_dbl(r, 1e-6, 1e-3);
        break;
    case K_EMBED:
        l->kind = "embedding";
        I[ni++] = draw_int(r, 1, 16), I[ni++] = draw_int(r, 1, 8);
        break;
    case K_ATTN:
        l->kind = "attention";
        ak = draw_int(r, 1, 6);
        I[ni++] = ak;
        I[ni++] = draw_int(r, 1, 3), I[ni++] = draw_int(r, 1, 8), I[ni++] = draw_int(r, 1, 8);
        I[ni++] = draw_int(r, 0, 1);
        /* variant: LINEAR feature map, PERFORMER n_features, SPARSE pattern, GATED gate */
        I[ni++] = ak == 3 ? draw_int(r, 0, 16) : draw_int(r, ak == 6 ? 0 : 1, ak == 2 ? 3 : 2);
        I[ni++] = draw_int(r, 1, 4); /* chunk, window or stride */
        I[ni++] = (int64_t)u64(r);   /* PERFORMER projection seed */
        break;
    case K_GAU:
        l->kind = "gau";
        I[ni++] = draw_int(r, 1, 3), I[ni++] = draw_int(r, 1, 8), I[ni++] = draw_int(r, 0, 1);
        I[ni++] = draw_int(r, 1, 4);
        break;
    case K_MAMBA:
        l->kind = "mamba";
        I[ni++] = draw_int(r, 1, 8), I[ni++] = draw_int(r, 1, 4), I[ni++] = draw_int(r, 1, 2);
        I[ni++] = draw_int(r, 0, 4);
        D[nd++] = draw_dbl(r, 1e-3, 1e-2), D[nd++] = draw_dbl(r, 1e-2, 1e-1);
        D[nd++] = draw_dbl(r, 1e-4, 1e-3);
        break;
    case K_S4D:
        l->kind = "s4d";
        I[ni++] = draw_int(r, 1, 8);
        break;
    case K_XATTN: /* heads, d_head, ctx_dim, max_ctx */
        l->kind = "cross_attention";
        I[ni++] = draw_int(r, 1, 3), I[ni++] = draw_int(r, 1, 8), I[ni++] = draw_int(r, 1, 6);
        I[ni++] = draw_int(r, 1, 5);
        break;
    default:
        l->kind = act_names[pick(r, 8)];
        break;
    }
    /* Now and then one config entry too many or too few. */
    if (pick(r, 32) == 0)
        ni = ni ? ni - 1 : 1;
    else if (pick(r, 32) == 0 && ni < MMI_LAYER_MAX_CFG)
        I[ni] = draw_int(r, 0, 4), ni++;
    if (pick(r, 48) == 0) nd = nd ? nd - 1 : 1;
    l->n_icfg = ni, l->n_dcfg = nd;
}

static void emit_layer(buf *b, const layer_desc *l, int named_act)
{
    puts_(b, "{\"kind\":\"");
    puts_(b, l->kind);
    puts_(b, "\"");
    if (named_act) {
        puts_(b, "}");
        return;
    }
    puts_(b, ",\"icfg\":[");
    for (int32_t k = 0; k < l->n_icfg; k++) putf(b, k ? ",%lld" : "%lld", (long long)l->icfg[k]);
    puts_(b, "],\"dcfg\":[");
    for (int32_t k = 0; k < l->n_dcfg; k++) {
        if (k) puts_(b, ",");
        put_dbl(b, l->dcfg[k]);
    }
    puts_(b, "]}");
}

static const char *const k_opt_kinds[] = {"sgd", "momentum", "adam", "adamw", "rmsprop", "nadam"};
static const char *const k_hyper[12] = {"lr",           "beta1",    "beta2",         "eps",
                                        "weight_decay", "momentum", "dampening",     "nesterov",
                                        "alpha",        "centered", "max_grad_norm", "amsgrad"};
static const double k_hyper_lo[12] = {1e-4, 0.5, 0.9, 1e-8, 0, 0, 0, 0, 0.5, 0, 0, 0};
static const double k_hyper_hi[12] = {1e-1, 0.99, 0.999, 1e-4, 0.1, 0.99, 1, 1, 0.999, 1, 10, 1};
/* The settings each kind has (bit k: k_hyper[k]); others only in wild cases. */
static const unsigned k_hyper_of[6] = {0x4F1u, 0x4F1u, 0xC1Fu, 0xC1Fu, 0x739u, 0xFFFu};
static const char *const k_slots[5][3] = {{"momentum_buffer"},
                                          {"momentum_buffer"},
                                          {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
                                          {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
                                          {"square_avg", "momentum_buffer", "grad_avg"}};
static const int k_n_slots[5] = {1, 1, 3, 3, 3};

/* One parameter tensor of the file: name, shape, where its floats go. */
typedef struct ptensor {
    char name[128];
    int32_t ndim;
    int64_t shape[4];
    int64_t numel;
    int32_t slot; /* -1 parameter, else optimizer slot index */
} ptensor;

typedef struct model_case {
    int64_t input_dim;
    int32_t n_layers;
    layer_desc layers[8];
    int named_act[8];
    int opt_kind; /* 0 none, 1..6 (6 unknown) */
    int with_state;
    int clean; /* finite, moderate parameter and state values */
    ptensor *t;
    int64_t n_t, cap_t;
    int64_t total;
} model_case;

static void add_tensor(model_case *c, const char *name, const mmi_ptensor *p, int32_t slot)
{
    ptensor *t;
    if (c->n_t == c->cap_t) {
        c->cap_t = c->cap_t ? 2 * c->cap_t : 32;
        c->t = (ptensor *)realloc(c->t, (size_t)c->cap_t * sizeof *c->t);
        if (!c->t) abort();
    }
    t = &c->t[c->n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = p->ndim;
    memcpy(t->shape, p->shape, sizeof t->shape);
    t->numel = p->numel;
    t->slot = slot;
    c->total += p->numel;
}

/* The tensors the architecture implies, from the builder itself (what the loader replays):
 * layers the builder refuses, and all after them, get none. Stops at the data budget. */
static void list_tensors(model_case *c)
{
    mm_model_opts o;
    mm_model *m = NULL;
    int32_t ok_layers = 0;
    if (mm_model_opts_init(&o) != MM_OK) abort();
    o.input_dim = c->input_dim >= 1 && c->input_dim <= ((int64_t)1 << 31) ? c->input_dim : 1;
    o.alloc = &g_alloc;
    if (mm_model_create(&m, &o) != MM_OK) return;
    for (int32_t i = 0; i < c->n_layers; i++, ok_layers++) {
        const layer_desc *l = &c->layers[i];
        if (mmi_model_add_layer(m, l->kind, l->icfg, c->named_act[i] ? 0 : l->n_icfg, l->dcfg,
                                c->named_act[i] ? 0 : l->n_dcfg, "fuzz") != MM_OK)
            break;
    }
    for (int32_t slot = -1;
         slot < (c->with_state && c->opt_kind <= 5 ? k_n_slots[c->opt_kind - 1] : 0); slot++)
        for (int32_t i = 0; i < m->n_layers; i++)
            for (int32_t t = 0; t < m->layers[i].n_tensors; t++) {
                char pn[64], name[128];
                const mmi_ptensor *p = &m->layers[i].tensors[t];
                if (p->numel < 0 || c->total + p->numel > MAX_FILE_FLOATS) goto done;
                if (mmi_model_tensor_name(m, i, t, pn, sizeof pn) != MM_OK) goto done;
                if (slot < 0)
                    snprintf(name, sizeof name, "%s", pn);
                else
                    snprintf(name, sizeof name, "optimizer.%s.%s", pn,
                             k_slots[c->opt_kind - 1][slot]);
                add_tensor(c, name, p, slot);
            }
done:
    mm_model_free(m);
}

/* scale: 1/sqrt(fan-in) for matrices, so a clean wide layer is initialised as a trained one
 * would be, not with activations that legitimately overflow. */
static float param_value(const model_case *c, int32_t slot, double scale)
{
    static const float dirty[] = {NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f, 0.0f, 1e20f};
    if (!c->clean && unif() < 0.05) return dirty[(int)(unif() * 8) % 8];
    if (slot < 0) return (float)(scale * (unif() - 0.5));
    /* state: square averages are >= 0; a centered RMSprop needs grad_avg^2 <= square_avg */
    if (c->opt_kind == 5 && slot == 2) return 0.0f;
    return (float)(0.01 * unif());
}

/* Writes the whole file; returns its bytes (malloc'd) and size. */
static unsigned char *model_file(rd *r, model_case *c, size_t *size)
{
    buf arch = {0}, opt = {0}, hdr = {0};
    float *data;
    size_t data_bytes, hlen, off = 0;
    unsigned char *file;
    uint32_t crc;
    int fv = (int)pick(r, 16);
    /* architecture */
    puts_(&arch, "{\"input_dim\":");
    putf(&arch, "%lld", (long long)c->input_dim);
    puts_(&arch, ",\"layers\":[");
    for (int32_t i = 0; i < c->n_layers; i++) {
        if (i) puts_(&arch, ",");
        emit_layer(&arch, &c->layers[i], c->named_act[i]);
    }
    puts_(&arch, "]}");
    /* optimizer */
    if (c->opt_kind) {
        puts_(&opt, "{\"kind\":\"");
        puts_(&opt, k_opt_kinds[c->opt_kind - 1]);
        puts_(&opt, "\"");
        for (int k = 0; k < 12; k++) {
            int odd = wild(r);
            if (pick(r, 3) != 0) continue;
            if (!(k_hyper_of[c->opt_kind - 1] >> k & 1u) && !odd) continue;
            puts_(&opt, ",\"");
            puts_(&opt, k_hyper[k]);
            puts_(&opt, "\":");
            put_dbl(&opt, draw_dbl(r, k_hyper_lo[k], k_hyper_hi[k]));
        }
        if (c->with_state) {
            puts_(&opt, ",\"steps\":");
            putf(&opt, "%lld", (long long)draw_int(r, 0, 100));
            puts_(&opt, ",\"layer_step\":[");
            for (int32_t i = 0; i < c->n_layers; i++)
                putf(&opt, i ? ",%lld" : "%lld", (long long)draw_int(r, 0, 100));
            puts_(&opt, "],\"buf_init\":[");
            for (int32_t i = 0; i < c->n_layers; i++)
                putf(&opt, i ? ",%lld" : "%lld", (long long)draw_int(r, 0, 1));
            puts_(&opt, "]");
        }
        puts_(&opt, "}");
    }
    /* data */
    data_bytes = (size_t)c->total * sizeof(float);
    data = (float *)malloc(data_bytes ? data_bytes : 1);
    if (!data) abort();
    for (int64_t k = 0, at = 0; k < c->n_t; k++) {
        const ptensor *t = &c->t[k];
        double scale = t->ndim >= 2 && t->shape[t->ndim - 1] > 1
                           ? 1.0 / sqrt((double)t->shape[t->ndim - 1])
                           : 1.0;
        for (int64_t j = 0; j < t->numel; j++) data[at++] = param_value(c, t->slot, scale);
    }
    crc = crc32_ieee((const unsigned char *)data, data_bytes);
    /* header */
    puts_(&hdr, "{\"__metadata__\":{\"format\":\"libmm\",\"format_version\":\"");
    puts_(&hdr, fv == 0 ? "2.0" : fv == 1 ? "1.9" : fv == 2 ? "0.1" : "1.0");
    puts_(&hdr, "\",\"libmm_version\":\"0.2.0\",\"architecture\":\"");
    put_escaped(&hdr, arch.p, arch.n);
    if (c->opt_kind) {
        puts_(&hdr, "\",\"optimizer\":\"");
        put_escaped(&hdr, opt.p, opt.n);
    }
    {
        char t[16];
        snprintf(t, sizeof t, "%08x", crc);
        puts_(&hdr, "\",\"crc32\":\"");
        puts_(&hdr, t);
        puts_(&hdr, "\"}");
    }
    for (int64_t k = 0; k < c->n_t; k++) {
        const ptensor *t = &c->t[k];
        puts_(&hdr, ",\"");
        puts_(&hdr, t->name);
        puts_(&hdr, "\":{\"dtype\":\"F32\",\"shape\":[");
        for (int32_t d = 0; d < t->ndim; d++)
            putf(&hdr, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        puts_(&hdr, "],\"data_offsets\":[");
        putf(&hdr, "%lld", (long long)off);
        off += (size_t)t->numel * 4;
        putf(&hdr, ",%lld]}", (long long)off);
    }
    puts_(&hdr, "}");
    while (hdr.n % 8) puts_(&hdr, " ");
    hlen = hdr.n;
    *size = 8 + hlen + data_bytes;
    file = (unsigned char *)malloc(*size);
    if (!file) abort();
    for (int k = 0; k < 8; k++) file[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(file + 8, hdr.p, hlen);
    memcpy(file + 8 + hlen, data, data_bytes);
    free(data);
    free(arch.p), free(opt.p), free(hdr.p);
    return file;
}

/* With FUZZ_CONFIG_DUMP=<path> set, keeps the file a case wrote (to triage a finding). */
static void dump(const char *what, const unsigned char *file, size_t size)
{
    const char *path = getenv("FUZZ_CONFIG_DUMP");
    FILE *f;
    if (!path || !(f = fopen(path, "wb"))) return;
    fwrite(file, 1, size, f);
    fclose(f);
    fprintf(stderr, "fuzz_config: %s (%zu bytes) written to %s\n", what, size, path);
}

static mm_tensor *tensor3(int64_t b, int64_t t, int64_t w)
{
    int64_t s[3] = {b, t, w};
    mm_tensor *x = NULL;
    if (mm_tensor_create(&x, 3, s, NULL) != MM_OK) abort();
    return x;
}

/* The context a model's cross-attention layers read: NULL if it has none (or one too wide
 * for the target); else [B, M, ctx_dim] with M within every layer's max_ctx. */
static mm_tensor *make_context(rd *r, const mm_model *m, int64_t B)
{
    int64_t dim = 0, max_ctx = 4, n;
    mm_tensor *ctx;
    for (int32_t i = 0; i < m->n_layers; i++) {
        int64_t d, mc;
        if (!mmi_xattn_context(&m->layers[i], &d, &mc)) continue;
        dim = d;
        if (mc < max_ctx) max_ctx = mc;
    }
    if (dim == 0 || dim > 65536) return NULL;
    ctx = tensor3(B, 1 + (int64_t)pick(r, (uint32_t)max_ctx), dim);
    n = mm_tensor_numel(ctx);
    for (int64_t i = 0; i < n; i++) mm_tensor_data(ctx)[i] = (float)(2.0 * unif() - 1.0);
    return ctx;
}

/* ||after - before|| / ||before|| over n parameters (0 when both are zero). */
static double rel_change(const float *before, const float *after, int64_t n)
{
    double d = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)after[i] - (double)before[i];
        d += e * e, b += (double)before[i] * (double)before[i];
    }
    return d == 0 ? 0 : sqrt(d) / sqrt(b);
}

/* forward -> backward -> step -> forward -> infer on a loaded model (the *_ctx calls: a NULL
 * context is the plain call). */
static void run_model(rd *r, mm_model *m, const model_case *c)
{
    int64_t in = 0, out = 0, np = 0, B = 1 + (int64_t)pick(r, BATCH), T = 1 + (int64_t)pick(r, SEQ);
    mm_tensor *x, *y, *dy, *dx, *ctx = NULL, *dctx = NULL;
    float *xs, *p = NULL, *g = NULL, *before = NULL;
    size_t ws_bytes = 0;
    double lr = 0, wd = 0;
    int moderate;
    int first_embed = !c->named_act[0] && strcmp(c->layers[0].kind, "embedding") == 0;
    in = m->opts.input_dim;
    if (mm_model_output_dim(m, &out) != MM_OK) abort();
    if (in > 65536 || out > 65536) return; /* loaded, but too wide for the target's inputs */
    x = tensor3(B, T, in), y = tensor3(B, T, out), dy = tensor3(B, T, out), dx = tensor3(B, T, in);
    xs = mm_tensor_data(x);
    for (int64_t i = 0; i < B * T * in; i++)
        xs[i] = first_embed ? (float)(int64_t)(unif() * (double)c->layers[0].icfg[0])
                            : (float)(2.0 * unif() - 1.0);
    for (int64_t i = 0; i < B * T * out; i++) mm_tensor_data(dy)[i] = (float)(unif() - 0.5);
    if ((ctx = make_context(r, m, B)) != NULL)
        dctx = tensor3(B, mm_tensor_dim(ctx, 1), mm_tensor_dim(ctx, 2));
    g_phase = "mm_model_forward";
    if (!status_ok(g_phase, mm_model_forward_ctx(m, x, ctx, y), mm_model_errmsg(m))) goto done;
    if (c->clean) check_finite("forward output", mm_tensor_data(y), B * T * out);
    g_phase = "mm_model_backward";
    if (!status_ok(g_phase, mm_model_backward_ctx(m, dy, dx, dctx), mm_model_errmsg(m))) goto done;
    if (mm_model_grads(m, &g, &np) != MM_OK) abort();
    if (c->clean) {
        check_finite("backward dx", mm_tensor_data(dx), B * T * in);
        if (dctx) check_finite("backward dctx", mm_tensor_data(dctx), mm_tensor_numel(dctx));
        check_finite("backward gradients", g, np);
    }
    g_phase = "mm_model_set_optimizer";
    if (!c->opt_kind &&
        !status_ok(g_phase, mm_model_set_optimizer(m, MM_OPT_ADAM), mm_model_errmsg(m)))
        goto done;
    /* A step of a large learning rate (up to 1e6 is legal) or decay may legitimately move
     * the parameters where the layers overflow: finiteness after it is only asked of moderate
     * settings. */
    if (mm_model_get_f64(m, MM_MODEL_LR, &lr) != MM_OK) abort();
    if (mm_model_get_f64(m, MM_MODEL_WEIGHT_DECAY, &wd) != MM_OK) abort();
    moderate = c->clean && lr <= 1.0 && lr * wd <= 1.0;
    if (moderate && mm_model_params(m, &p, &np) == MM_OK && np > 0 &&
        (before = (float *)malloc(sizeof(float) * (size_t)np)) != NULL)
        memcpy(before, p, sizeof(float) * (size_t)np);
    g_phase = "mm_model_step";
    if (status_ok(g_phase, mm_model_step(m), mm_model_errmsg(m)) && moderate) {
        if (mm_model_params(m, &p, &np) != MM_OK) abort();
        check_finite("parameters after step", p, np);
        /* Finite outputs after the step are asked only when the step moved the parameters by
         * a small fraction: an adaptive optimizer moves each parameter by about lr whatever the
         * gradient (centered RMSprop with momentum: several lr), so lr 0.1 on weights of
         * 1/sqrt(fan-in) doubles them, and a GAU's squared ReLU then fed Mamba values of 7e6
         * that overflowed to Inf with finite parameters (arithmetic, not a defect). */
        moderate = before && rel_change(before, p, np) <= 0.05;
    }
    free(before);
    g_phase = "mm_model_forward (after step)";
    if (status_ok(g_phase, mm_model_forward_ctx(m, x, ctx, y), mm_model_errmsg(m)) && moderate)
        check_finite("forward output after step", mm_tensor_data(y), B * T * out);
    g_phase = "mm_model_infer_workspace_size";
    if (mm_model_infer_workspace_size(m, B, T, &ws_bytes) == MM_OK) {
        void *ws;
        if (ws_bytes > CAP) {
            fprintf(stderr, "fuzz_config: mm_model_infer needs %zu bytes of workspace\n", ws_bytes);
            abort();
        }
        if (posix_memalign(&ws, 64, ws_bytes ? ws_bytes : 1) != 0) ws = NULL;
        g_phase = "mm_model_infer";
        if (ws && mm_model_infer(m, x, y, ws, ws_bytes) == MM_OK && moderate)
            check_finite("infer output", mm_tensor_data(y), B * T * out);
        free(ws);
    }
done:
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(dx);
    mm_tensor_free(ctx), mm_tensor_free(dctx);
}

static void model_case_run(rd *r)
{
    model_case c;
    unsigned char *file;
    size_t size;
    mm_model_opts o;
    mm_model *m = NULL;
    char err[256];
    int rc;
    memset(&c, 0, sizeof c);
    g_wild = (const uint32_t[4]){0, 2, 6, 16}[pick(r, 4)];
    c.input_dim = draw_int(r, 1, 8);
    c.n_layers = 1 + (int32_t)pick(r, 6);
    for (int32_t i = 0; i < c.n_layers; i++) {
        draw_layer(r, &c.layers[i]);
        c.named_act[i] = strcmp(c.layers[i].kind, "activation") != 0 && c.layers[i].n_icfg == 0 &&
                         c.layers[i].n_dcfg == 0;
    }
    c.opt_kind = (int)pick(r, 7); /* 0 none, 6 unknown */
    c.with_state = c.opt_kind && pick(r, 2);
    c.clean = pick(r, 8) != 0;
    g_rng = u64(r);
    g_strict = 0;
    list_tensors(&c);
    file = model_file(r, &c, &size);
    if (mm_model_opts_init(&o) != MM_OK) abort();
    o.alloc = &g_alloc;
    o.max_batch = BATCH, o.max_seq = SEQ;
    o.err_buf = err, o.err_buf_size = sizeof err;
    err[0] = '\0';
    dump("model file", file, size);
    g_strict = 1;
    g_phase = "mm_model_load_mem";
    rc = mm_model_load_mem(&m, file, size, &o);
    if (rc != MM_OK && (m != NULL || err[0] == '\0' || rc > 0)) fail(g_phase, rc, err);
    if (getenv("FUZZ_CONFIG_DUMP"))
        fprintf(stderr, "fuzz_config: load: %s %s\n", mm_status_name(rc), err);
    if (rc == MM_OK) run_model(r, m, &c);
    mm_model_free(m);
    g_strict = 0;
    free(file);
    free(c.t);
}

/* ---- policies ------------------------------------------------------------------------------ */
static const char *tmp_path(void)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/mm_fuzz_config_%ld.safetensors", (long)getpid());
    return path;
}

static void draw_policy_opts(rd *r, mm_policy_opts *o, float *low, float *high)
{
/* Each field: keep the default or draw (always reading the same bytes, see draw_int). */
#define MAYBE_I(f, lo, hi)                                                                         \
    do {                                                                                           \
        int keep_ = !pick(r, 3);                                                                   \
        int64_t v_ = draw_int(r, lo, hi);                                                          \
        if (!keep_) o->f = v_;                                                                     \
    } while (0)
#define MAYBE_D(f, lo, hi)                                                                         \
    do {                                                                                           \
        int keep_ = !pick(r, 3);                                                                   \
        double v_ = draw_dbl(r, lo, hi);                                                           \
        if (!keep_) o->f = v_;                                                                     \
    } while (0)
#define MAYBE_W(f, lo, hi)                                                                         \
    do {                                                                                           \
        int keep_ = !pick(r, 3);                                                                   \
        int64_t v_ = draw_work(r, lo, hi);                                                         \
        if (!keep_) o->f = v_;                                                                     \
    } while (0)
    int discrete;
    o->obs_dim = draw_size(r, 1, 6, (int64_t)1 << 24);
    discrete = o->algo != MM_ALGO_DDPG && o->algo != MM_ALGO_TD3 && pick(r, 2); /* SAC: either */
    if (discrete)
        o->n_actions = draw_int(r, 2, 4);
    else
        MAYBE_I(act_dim, 1, 3);
    if (pick(r, 16) == 0) o->n_actions = draw_int(r, 0, 4);
    o->n_agents = draw_int(r, 1, 3);
    o->n_hidden = (int32_t)draw_int(r, 1, 2);
    for (int k = 0; k < 4; k++) o->hidden[k] = draw_size(r, 1, 12, 65536);
    MAYBE_I(activation, 1, 8);
    MAYBE_I(n_threads, 1, 1);
    o->seed = u64(r);
    MAYBE_D(gamma, 0.9, 0.999);
    MAYBE_D(lr_actor, 1e-4, 1e-2);
    MAYBE_D(lr_critic, 1e-4, 1e-2);
    MAYBE_D(max_grad_norm, 0, 1);
    MAYBE_I(norm_obs, 0, 1);
    MAYBE_D(clip_obs, 1, 10);
    o->buffer_size = 64, o->batch_size = 8, o->learning_starts = 2, o->n_steps = 4;
    MAYBE_I(buffer_size, 1, 64);
    {
        int keep = !pick(r, 3);
        int64_t v = draw_size(r, 1, 16, 1 << 20);
        if (!keep) o->batch_size = v;
    }
    MAYBE_I(learning_starts, 0, 8);
    MAYBE_I(train_freq, 1, 4);
    MAYBE_W(gradient_steps, 1, 3);
    MAYBE_D(tau, 1e-3, 0.1);
    MAYBE_I(noise, 0, 2);
    MAYBE_I(policy_delay, 1, 3);
    MAYBE_D(noise_sigma, 0.01, 0.5);
    MAYBE_D(noise_theta, 0.05, 0.3);
    MAYBE_D(noise_dt, 1e-3, 0.1);
    MAYBE_D(target_noise, 0, 0.5);
    MAYBE_D(target_noise_clip, 0, 1);
    MAYBE_I(n_critics, 1, 2);
    o->n_epochs = 2;
    MAYBE_W(n_epochs, 1, 3);
    MAYBE_I(n_steps, 1, 8);
    MAYBE_D(gae_lambda, 0.8, 1);
    MAYBE_D(ent_coef, 0, 0.1);
    MAYBE_D(vf_coef, 0.1, 1);
    MAYBE_D(clip_range, 0.05, 0.5);
    MAYBE_D(clip_range_vf, 0, 1);
    MAYBE_I(normalize_advantage, 0, 1);
    MAYBE_I(use_rmsprop, 0, 1);
    MAYBE_D(log_std_init, -2, 1);
    MAYBE_D(adam_eps, 1e-8, 1e-4);
    MAYBE_I(linear_decay_steps, 0, 20);
    MAYBE_D(target_kl, 1e-3, 0.1);
    MAYBE_D(cg_damping, 0.01, 1);
    MAYBE_W(cg_max_steps, 1, 15);
    MAYBE_W(ls_max_iter, 1, 10);
    MAYBE_D(ls_decay, 0.5, 0.9);
    /* 0.2 fields: reward normalisation, schedules, PPO's KL stop, SAC's temperature */
    MAYBE_I(norm_reward, 0, 2);
    MAYBE_D(clip_reward, 0.1, 10);
    MAYBE_D(ppo_target_kl, 0, 0.05);
    MAYBE_I(lr_decay_steps, -1, 20);
    MAYBE_I(clip_decay_steps, -1, 20);
    MAYBE_I(ent_auto, 0, 1);
    MAYBE_I(target_update_interval, 1, 3);
    MAYBE_D(target_entropy, -3, 1);
    MAYBE_D(lr_alpha, 0, 1e-2);
    MAYBE_I(memory, 0, 1); /* PPO's LRU memory core (other algorithms refuse it) */
    MAYBE_I(memory_dim, 1, 8);
    MAYBE_I(memory_seq_len, 1, 8);
    if (o->act_dim >= 1 && o->act_dim <= 8 && pick(r, 3) == 0) {
        for (int64_t k = 0; k < o->act_dim; k++) {
            low[k] = (float)draw_dbl(r, -2, -0.5);
            high[k] = (float)draw_dbl(r, 0.5, 2);
        }
        o->act_low = low, o->act_high = high;
    }
#undef MAYBE_I
#undef MAYBE_D
#undef MAYBE_W
}

static int read_whole(const char *path, unsigned char **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    long len;
    if (!f) return 0;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 16 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    *out = (unsigned char *)malloc((size_t)len);
    *n = (size_t)len;
    if (!*out || fread(*out, 1, *n, f) != *n) {
        fclose(f);
        return 0;
    }
    fclose(f);
    return 1;
}

/* Finds "<name>":{..."data_offsets":[a,b]} in the header; 0 if absent. */
static int find_offsets(const char *h, const char *name, size_t *a, size_t *b)
{
    char key[64];
    const char *s;
    unsigned long long x, y;
    snprintf(key, sizeof key, "\"%s\":{", name);
    if (!(s = strstr(h, key)) || !(s = strstr(s, "\"data_offsets\":[")) ||
        sscanf(s, "\"data_offsets\":[%llu,%llu]", &x, &y) != 2)
        return 0;
    *a = (size_t)x, *b = (size_t)y;
    return 1;
}

/* Rewrites the saved file: random parameters and statistics, a fresh CRC. */
static int rewrite_policy_file(unsigned char *f, size_t n, int clean, int64_t obs_dim)
{
    static const float dirty_f[] = {NAN, INFINITY, -INFINITY, FLT_MAX, 1e-45f, 1e20f};
    static const double dirty_d[] = {NAN, INFINITY, -1.0, 0.0, 1e308, -1e308, 5e-324, DBL_MAX};
    uint64_t hlen = 0;
    char *h, *crc;
    unsigned char *d;
    size_t dn, a, b;
    const char *rms[3] = {"obs_rms.count", "obs_rms.mean", "obs_rms.var"};
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | f[k];
    if (hlen > n - 8) return 0;
    h = (char *)malloc((size_t)hlen + 1);
    memcpy(h, f + 8, (size_t)hlen);
    h[hlen] = '\0';
    d = f + 8 + hlen;
    dn = n - 8 - (size_t)hlen;
    for (size_t i = 0; i + 4 <= dn; i += 4) {
        float v = (float)(0.6 * unif() - 0.3);
        if (!clean && unif() < 0.05) v = dirty_f[(int)(unif() * 6) % 6];
        memcpy(d + i, &v, 4);
    }
    for (int j = 0; j < 3; j++) {
        if (!find_offsets(h, rms[j], &a, &b) || b > dn ||
            (b - a) != 8 * (size_t)(j ? obs_dim : 1)) {
            free(h);
            return 0;
        }
        for (size_t i = a; i < b; i += 8) {
            double v = j == 0   ? 1.0 + 1000.0 * unif()
                       : j == 1 ? 2.0 * unif() - 1.0
                                : 0.01 + 2.0 * unif();
            if (!clean && unif() < 0.3) v = dirty_d[(int)(unif() * 8) % 8];
            memcpy(d + i, &v, 8);
        }
    }
    if ((crc = strstr(h, "\"crc32\":\"")) == NULL) {
        free(h);
        return 0;
    }
    {
        char t[16];
        snprintf(t, sizeof t, "%08x", crc32_ieee(d, dn));
        memcpy(f + 8 + (size_t)(crc - h) + 9, t, 8);
    }
    free(h);
    return 1;
}

/* A checkpoint with a few values of its data section replaced by odd ones (a float or double
 * NaN / Inf / huge / denormal, an int64 counter at a boundary, a flag byte out of range) and
 * a fresh CRC: the checkpoint checks (counters against the layout, flags, finiteness, the
 * optimizer copies) meet values the policy never wrote. Positions and values come from the
 * case's splitmix stream. Returns 0 if the file has no data or no CRC. */
static uint32_t upick(uint32_t k) { return (uint32_t)(unif() * k) % k; }

static int mutate_checkpoint(unsigned char *f, size_t n)
{
    static const double dd[] = {NAN, INFINITY, -INFINITY, 1e300, -1e300, 5e-324, DBL_MAX, -1.0};
    static const float df[] = {NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f, 1e30f, -1.0f};
    static const int64_t di[] = {
        -1, INT64_MAX, INT64_MIN, (int64_t)1 << 53, ((int64_t)1 << 53) + 1, (int64_t)1 << 31,
        0,  65536};
    uint64_t hlen = 0;
    size_t dn, at;
    char *h, *crc;
    unsigned char *d;
    int edits = 1 + (int)upick(3);
    if (n < 8) return 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | f[k];
    if (hlen > n - 8 || n - 8 - hlen < 8) return 0;
    d = f + 8 + hlen;
    dn = n - 8 - (size_t)hlen;
    for (int k = 0; k < edits; k++) {
        uint32_t kind = upick(4), v = upick(8);
        at = (size_t)(unif() * (double)dn) % dn;
        if (kind == 0 && at + 8 <= dn) {
            memcpy(d + (at & ~(size_t)7), &dd[v], 8);
        } else if (kind == 1 && at + 8 <= dn) {
            memcpy(d + (at & ~(size_t)7), &di[v], 8);
        } else if (kind == 2 && at + 4 <= dn) {
            memcpy(d + (at & ~(size_t)3), &df[v], 4);
        } else {
            d[at] = (unsigned char)(v == 0 ? 3 : v == 1 ? 255 : upick(256));
        }
    }
    h = (char *)malloc((size_t)hlen + 1);
    if (!h) return 0;
    memcpy(h, f + 8, (size_t)hlen);
    h[hlen] = '\0';
    if ((crc = strstr(h, "\"crc32\":\"")) != NULL) {
        char t[16];
        snprintf(t, sizeof t, "%08x", crc32_ieee(d, dn));
        memcpy(f + 8 + (size_t)(crc - h) + 9, t, 8);
    }
    free(h);
    return crc != NULL;
}

/* Saves the training state and loads it back into the same policy (refused with MM_E_STATE
 * while a budgeted update has work left): the loader's checks run on every state a case
 * reaches, and a loaded checkpoint must leave the policy usable. Now and then the checkpoint
 * is mutated first (mutate_checkpoint): then any status with text is fine, and the policy
 * must stay usable (the caller keeps acting, observing and updating). */
static void checkpoint_round_trip(mm_policy *p)
{
    size_t n = 0;
    unsigned char *ck;
    int rc;
    g_phase = "mm_policy_save_mem";
    rc = mm_policy_save_mem(p, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT);
    if (!status_ok(g_phase, rc, mm_policy_errmsg(p)) || rc != MM_OK || n == 0) return;
    if (!(ck = (unsigned char *)malloc(n))) return;
    rc = mm_policy_save_mem(p, ck, n, NULL, MM_POLICY_SAVE_CHECKPOINT);
    if (status_ok(g_phase, rc, mm_policy_errmsg(p)) && rc == MM_OK) {
        /* drawn from the case's value stream, not input bytes: the committed corpus keeps
         * its meaning */
        int mutated = upick(3) == 0 && mutate_checkpoint(ck, n);
        g_phase = mutated ? "mm_policy_load_mem (mutated checkpoint)" : "mm_policy_load_mem";
        rc = mm_policy_load_mem(p, ck, n);
        if (mutated)
            status_ok(g_phase, rc, mm_policy_errmsg(p));
        else if (rc != MM_OK && rc != MM_E_NOMEM) /* its own checkpoint, just written */
            fail(g_phase, rc, mm_policy_errmsg(p));
    }
    free(ck);
}

static void run_policy(rd *r, mm_policy *p, const mm_policy_opts *o, int clean)
{
    int64_t na = o->n_agents, od = o->obs_dim, ad = o->n_actions > 0 ? 1 : o->act_dim;
    int rounds = 1 + (int)pick(r, 10);
    /* Legal but costly sizes (the caller asked for that work): one act, no training, so a
     * case stays well inside the timeout. */
    int heavy = od > 256 || o->batch_size > 256 || o->n_steps > 4096 / na;
    for (int k = 0; k < o->n_hidden && k < 4; k++) heavy |= o->hidden[k] > 256;
    if (heavy) rounds = 1;
    float *obs, *nobs, *act, *rew;
    uint8_t *term, *trunc;
    if (na < 1 || na > 64 || od < 1 || od > 4096 || ad < 1 || ad > 4096) return;
    obs = (float *)calloc((size_t)(na * od), 4), nobs = (float *)calloc((size_t)(na * od), 4);
    act = (float *)calloc((size_t)(na * ad), 4), rew = (float *)calloc((size_t)na, 4);
    term = (uint8_t *)calloc((size_t)na, 1), trunc = (uint8_t *)calloc((size_t)na, 1);
    for (int64_t i = 0; i < na * od; i++) obs[i] = (float)(2 * unif() - 1);
    for (int k = 0; k < rounds; k++) {
        int32_t did = 0;
        int explore = (int)pick(r, 2);
        /* Now and then a reset and a deterministic act of the first agents only (a host
         * whose envs end at different steps): the memory core keeps such a step by copying
         * rows, not by the buffer swap of a full act. Drawn from the value stream, so the
         * committed corpus keeps its shape. */
        if (na > 1 && upick(4) == 0) {
            int64_t part = 1 + (int64_t)upick((uint32_t)(na - 1));
            g_phase = "mm_policy_reset_agent";
            if (upick(2))
                status_ok(g_phase, mm_policy_reset_agent(p, (int64_t)upick((uint32_t)na)),
                          mm_policy_errmsg(p));
            g_phase = "mm_policy_act (first agents)";
            if (!status_ok(g_phase, mm_policy_act(p, obs, part, act, 0), mm_policy_errmsg(p)))
                break;
            if (clean) check_finite("actions", act, part * ad);
        }
        g_phase = "mm_policy_act";
        if (!status_ok(g_phase, mm_policy_act(p, obs, na, act, explore), mm_policy_errmsg(p)))
            break;
        if (clean) check_finite("actions", act, na * ad);
        for (int64_t i = 0; o->n_actions > 0 && i < na; i++)
            if (act[i] != floorf(act[i]) || act[i] < 0 || act[i] >= (float)o->n_actions) {
                fprintf(stderr, "fuzz_config: discrete action %g of %lld\n", (double)act[i],
                        (long long)o->n_actions);
                abort();
            }
        for (int64_t i = 0; i < na * od; i++) nobs[i] = (float)(2 * unif() - 1);
        for (int64_t i = 0; i < na; i++) {
            rew[i] = pick(r, 8) ? (float)(2 * unif() - 1) : (float)draw_dbl(r, -1, 1);
            term[i] = pick(r, 6) == 0, trunc[i] = pick(r, 8) == 0;
        }
        if (heavy) break;
        g_phase = "mm_policy_observe";
        status_ok(g_phase, mm_policy_observe(p, obs, act, rew, nobs, term, trunc, na),
                  mm_policy_errmsg(p));
        if (pick(r, 3) == 0) { /* a frame-bounded update: a few minibatches per call */
            int32_t done = 0;
            g_phase = "mm_policy_update_budget";
            for (int c = 0; c < 8 && !done; c++)
                if (!status_ok(g_phase, mm_policy_update_budget(p, 1 + (int64_t)pick(r, 3), &done),
                               mm_policy_errmsg(p)))
                    break;
        } else {
            g_phase = "mm_policy_update";
            status_ok(g_phase, mm_policy_update(p, &did), mm_policy_errmsg(p));
        }
        if (pick(r, 4) == 0) checkpoint_round_trip(p);
        memcpy(obs, nobs, sizeof(float) * (size_t)(na * od));
    }
    free(obs), free(nobs), free(act), free(rew), free(term), free(trunc);
}

/* Triage aid (FUZZ_CONFIG_DUMP set): the options a policy case drew. */
static void print_policy_opts(const mm_policy_opts *o)
{
    if (!getenv("FUZZ_CONFIG_DUMP")) return;
    fprintf(stderr,
            "fuzz_config: policy algo %d obs %lld act %lld n_actions %lld agents %lld "
            "hidden %d:[%lld %lld %lld %lld] act_fn %d threads %d norm_obs %d\n",
            (int)o->algo, (long long)o->obs_dim, (long long)o->act_dim, (long long)o->n_actions,
            (long long)o->n_agents, (int)o->n_hidden, (long long)o->hidden[0],
            (long long)o->hidden[1], (long long)o->hidden[2], (long long)o->hidden[3],
            (int)o->activation, (int)o->n_threads, (int)o->norm_obs);
    fprintf(stderr,
            "  buffer %lld batch %lld starts %lld train_freq %lld grad_steps %lld noise %d "
            "delay %d critics %d epochs %d n_steps %lld norm_adv %d rmsprop %d decay %lld cg %d "
            "ls %d\n",
            (long long)o->buffer_size, (long long)o->batch_size, (long long)o->learning_starts,
            (long long)o->train_freq, (long long)o->gradient_steps, (int)o->noise,
            (int)o->policy_delay, (int)o->n_critics, (int)o->n_epochs, (long long)o->n_steps,
            (int)o->normalize_advantage, (int)o->use_rmsprop, (long long)o->linear_decay_steps,
            (int)o->cg_max_steps, (int)o->ls_max_iter);
    fprintf(stderr,
            "  gamma %g lr %g %g mgn %g clip_obs %g tau %g sigma %g theta %g dt %g tn %g "
            "tnc %g gae %g ent %g vf %g clip %g clip_vf %g log_std %g adam_eps %g kl %g damp %g "
            "ls_decay %g\n",
            o->gamma, o->lr_actor, o->lr_critic, o->max_grad_norm, o->clip_obs, o->tau,
            o->noise_sigma, o->noise_theta, o->noise_dt, o->target_noise, o->target_noise_clip,
            o->gae_lambda, o->ent_coef, o->vf_coef, o->clip_range, o->clip_range_vf,
            o->log_std_init, o->adam_eps, o->target_kl, o->cg_damping, o->ls_decay);
}

static void policy_case_run(rd *r)
{
    static const int32_t algos[] = {MM_ALGO_DDPG, MM_ALGO_TD3,  MM_ALGO_A2C, MM_ALGO_QAC,
                                    MM_ALGO_PPO,  MM_ALGO_TRPO, MM_ALGO_SAC};
    mm_policy_opts o;
    mm_policy *p = NULL;
    float low[8], high[8];
    char err[256];
    unsigned char *file = NULL;
    size_t n = 0;
    int clean, rc;
    g_wild = (const uint32_t[4]){0, 2, 6, 16}[pick(r, 4)];
    if (mm_policy_opts_init(&o, algos[pick(r, 7)]) != MM_OK) abort();
    draw_policy_opts(r, &o, low, high);
    clean = pick(r, 6) != 0;
    g_rng = u64(r);
    o.alloc = &g_alloc;
    o.err_buf = err, o.err_buf_size = sizeof err;
    err[0] = '\0';
    g_strict = 0; /* creation takes its sizes from the caller: over-cap is a clean NOMEM */
    g_live = 0;
    print_policy_opts(&o);
    rc = mm_policy_create(&p, &o);
    if (rc != MM_OK) {
        if (p != NULL || err[0] == '\0' || rc > 0) fail("mm_policy_create", rc, err);
        return;
    }
    g_strict = 1;
    g_phase = "mm_policy_save";
    rc = mm_policy_save(p, tmp_path());
    if (rc == MM_OK && read_whole(tmp_path(), &file, &n) &&
        rewrite_policy_file(file, n, clean, o.obs_dim)) {
        FILE *f = fopen(tmp_path(), "wb");
        int ok = f && fwrite(file, 1, n, f) == n;
        dump("policy file", file, n);
        if (f && fclose(f) != 0) ok = 0;
        g_phase = "mm_policy_load";
        if (ok) {
            rc = mm_policy_load(p, tmp_path());
            if (!status_ok(g_phase, rc, mm_policy_errmsg(p)) && clean)
                fail("mm_policy_load of a clean file", rc, mm_policy_errmsg(p));
        }
    } else if (rc != MM_OK) {
        status_ok(g_phase, rc, mm_policy_errmsg(p));
    }
    free(file);
    unlink(tmp_path());
    run_policy(r, p, &o, clean);
    mm_policy_free(p);
    g_strict = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size, 0};
    if (size < 1) return 0;
    if (byte(&r) & 1)
        policy_case_run(&r);
    else
        model_case_run(&r);
    return 0;
}
