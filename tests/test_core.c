/* SPDX-License-Identifier: MIT */
/* test_core.c — version, status codes, allocator, size math, options structs, parameter
 * registry, RNG, thread pool, CRC32. */
#include "runner.h"
#include "core/mmi.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_version(void)
{
    CHECK_EQ_I64(mm_version_number(), MM_VERSION_NUMBER);
    CHECK_EQ_I64(mm_abi_version(), MM_ABI_VERSION);
    CHECK(strcmp(mm_version_string(), MM_VERSION_STRING) == 0);
    CHECK_EQ_I64(MM_VERSION_NUMBER,
                 MM_VERSION_MAJOR * 10000 + MM_VERSION_MINOR * 100 + MM_VERSION_PATCH);
    CHECK(strstr(mm_build_info(), "simd=") != NULL);
    CHECK(strstr(mm_build_info(), "blas=") != NULL);
    CHECK(strstr(mm_build_info(), "threads=pthread") != NULL);
}

static void test_status(void)
{
    static const int codes[] = {MM_OK,
                                MM_E_INVALID_ARG,
                                MM_E_NOMEM,
                                MM_E_SHAPE,
                                MM_E_DTYPE,
                                MM_E_RANGE,
                                MM_E_STATE,
                                MM_E_UNSUPPORTED,
                                MM_E_FORMAT,
                                MM_E_VERSION,
                                MM_E_IO,
                                MM_E_NUMERIC,
                                MM_E_BUFFER_TOO_SMALL,
                                MM_E_INTERNAL};
    /* Numbers are part of the ABI: pin them. */
    CHECK_EQ_I64(MM_E_INVALID_ARG, -1);
    CHECK_EQ_I64(MM_E_NOMEM, -2);
    CHECK_EQ_I64(MM_E_SHAPE, -3);
    CHECK_EQ_I64(MM_E_RANGE, -5);
    CHECK_EQ_I64(MM_E_UNSUPPORTED, -7);
    CHECK_EQ_I64(MM_E_FORMAT, -20);
    CHECK_EQ_I64(MM_E_NUMERIC, -30);
    CHECK_EQ_I64(MM_E_INTERNAL, -99);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(mm_status_str(codes[i]) != NULL);
        CHECK(strcmp(mm_status_str(codes[i]), "unknown status") != 0);
        CHECK(strncmp(mm_status_name(codes[i]), "MM_", 3) == 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(mm_status_name(codes[i]), mm_status_name(codes[j])) != 0);
    }
    CHECK(strcmp(mm_status_name(MM_E_SHAPE), "MM_E_SHAPE") == 0);
    CHECK(strcmp(mm_status_str(12345), "unknown status") == 0);
    CHECK(strcmp(mm_status_name(-1000), "MM_E_UNKNOWN") == 0);
}

static void test_error_text(void)
{
    mmi_err e;
    char small[8], big[64];
    mmi_err_clear(&e);
    CHECK(e.msg[0] == '\0');
    CHECK_EQ_I64(mmi_fail(&e, MM_E_SHAPE, "x is [%d,%d]", 2, 3), MM_E_SHAPE);
    CHECK(strcmp(e.msg, "x is [2,3]") == 0);
    CHECK_EQ_I64(mmi_fail(NULL, MM_E_RANGE, "ignored"), MM_E_RANGE);
    mmi_err_export(&e, small, sizeof small);
    CHECK(strcmp(small, "x is [2") == 0);
    mmi_err_export(&e, big, sizeof big);
    CHECK(strcmp(big, "x is [2,3]") == 0);
    mmi_err_export(&e, NULL, 10); /* no crash */
    /* Long messages truncate inside the handle's buffer. */
    char longarg[600];
    memset(longarg, 'a', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = '\0';
    (void)mmi_fail(&e, MM_E_SHAPE, "%s", longarg);
    CHECK_EQ_I64(strlen(e.msg), MMI_ERRMSG_SIZE - 1);
}

static void test_allocator(void)
{
    mm_allocator a;
    mmt_counter c;
    mmi_alloc ma;
    mmi_err e;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(mmi_alloc_init(&ma, &a, &e));
    void *p = mmi_malloc(&ma, 100);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    CHECK_EQ_I64(c.n_alloc, 1);
    mmi_free(&ma, p, 100);
    mmi_free(&ma, NULL, 100);
    CHECK_EQ_I64(c.n_free, 1);
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK_EQ_I64(c.bad_free, 0);
    /* The default allocator is aligned too. */
    CHECK_OK(mmi_alloc_init(&ma, NULL, &e));
    unsigned char *q = (unsigned char *)mmi_calloc(&ma, 77);
    CHECK(q != NULL && ((uintptr_t)q & 63) == 0 && q[76] == 0);
    mmi_free(&ma, q, 77);
    /* Malformed allocators are refused with a message. */
    a.struct_size = 4;
    CHECK_STATUS(mmi_alloc_init(&ma, &a, &e), MM_E_INVALID_ARG);
    CHECK(strstr(e.msg, "struct_size") != NULL);
    mmt_counting_allocator(&a, &c, -1);
    a.free_fn = NULL;
    CHECK_STATUS(mmi_alloc_init(&ma, &a, &e), MM_E_INVALID_ARG);
    mmt_counting_allocator(&a, &c, -1);
    a.reserved0 = 1;
    CHECK_STATUS(mmi_alloc_init(&ma, &a, &e), MM_E_INVALID_ARG);
}

static void test_size_math(void)
{
    size_t s = 7;
    int64_t n = 0;
    mmi_err e;
    CHECK(mmi_mul_size(&s, SIZE_MAX / 2, 3) != 0);
    CHECK_EQ_I64(s, 7);
    CHECK(mmi_mul_size(&s, 1u << 20, 1u << 10) == 0 && s == (size_t)1 << 30);
    CHECK(mmi_add_size(&s, SIZE_MAX, 1) != 0);
    CHECK(mmi_mul_i64(&n, INT64_MAX / 2, 3) != 0);
    CHECK(mmi_mul_i64(&n, -1, 3) != 0);
    CHECK(mmi_mul_i64(&n, 0, INT64_MAX) == 0 && n == 0);
    CHECK_EQ_I64(mmi_align_up(1), 64);
    CHECK_EQ_I64(mmi_align_up(64), 64);
    CHECK_EQ_I64(mmi_align_up(SIZE_MAX - 3), 0);
    int64_t shp[3] = {2, 3, 4};
    CHECK_OK(mmi_shape_numel(3, shp, &n, &e, "t"));
    CHECK_EQ_I64(n, 24);
    int64_t huge[3] = {INT64_MAX, INT64_MAX, 2};
    CHECK_STATUS(mmi_shape_numel(3, huge, &n, &e, "t"), MM_E_RANGE);
    int64_t cap[2] = {(int64_t)1 << 20, ((int64_t)1 << 20) + 1};
    CHECK_STATUS(mmi_shape_numel(2, cap, &n, &e, "t"), MM_E_RANGE);
    int64_t zero[2] = {3, 0};
    CHECK_STATUS(mmi_shape_numel(2, zero, &n, &e, "t"), MM_E_SHAPE);
    CHECK(strstr(e.msg, "shape[1]") != NULL);
    CHECK_STATUS(mmi_shape_numel(0, shp, &n, &e, "t"), MM_E_SHAPE);
    CHECK_STATUS(mmi_shape_numel(9, shp, &n, &e, "t"), MM_E_SHAPE);
    CHECK_STATUS(mmi_shape_numel(3, NULL, &n, &e, "t"), MM_E_INVALID_ARG);
}

/* A stand-in options struct: the head, two fields, and a "v2" field appended later. */
typedef struct {
    uint32_t struct_size, reserved0;
    int64_t a;
    double b;
} opts_v1;
typedef struct {
    uint32_t struct_size, reserved0;
    int64_t a;
    double b;
    int64_t c;
} opts_v2;

static void test_opts(void)
{
    mmi_err e;
    opts_v1 lib = {sizeof(opts_v1), 0, 1, 2.0};
    opts_v2 newer = {sizeof(opts_v2), 0, 5, 6.0, 0};
    opts_v1 older_caller;
    /* A newer caller with a zero tail is accepted. */
    CHECK_OK(mmi_opts_copy(&lib, &newer, sizeof lib, &e, "f"));
    CHECK_EQ_I64(lib.a, 5);
    CHECK_EQ_I64(lib.struct_size, sizeof(opts_v1));
    /* A newer caller that sets an unknown field is refused. */
    newer.c = 9;
    CHECK_STATUS(mmi_opts_copy(&lib, &newer, sizeof lib, &e, "f"), MM_E_VERSION);
    CHECK(strstr(e.msg, "newer") != NULL);
    /* An older caller (shorter struct) keeps the defaults for the tail. */
    opts_v2 lib2 = {sizeof(opts_v2), 0, 1, 2.0, 42};
    older_caller = (opts_v1){sizeof(opts_v1), 0, 7, 8.0};
    CHECK_OK(mmi_opts_copy(&lib2, &older_caller, sizeof lib2, &e, "f"));
    CHECK_EQ_I64(lib2.a, 7);
    CHECK_EQ_I64(lib2.c, 42);
    /* A struct that was never initialised is refused. */
    older_caller.struct_size = 0;
    CHECK_STATUS(mmi_opts_copy(&lib, &older_caller, sizeof lib, &e, "f"), MM_E_INVALID_ARG);
    CHECK_STATUS(mmi_opts_copy(&lib, NULL, sizeof lib, &e, "f"), MM_E_INVALID_ARG);
    /* A garbage struct_size is refused before the tail check reads past the caller's struct. */
    older_caller.struct_size = 0x7fffffffu;
    CHECK_STATUS(mmi_opts_copy(&lib, &older_caller, sizeof lib, &e, "f"), MM_E_INVALID_ARG);
    CHECK(strstr(e.msg, "2147483647") != NULL);
    CHECK(!mmi_opts_covers(&older_caller, 8));
    older_caller.struct_size = MMI_OPTS_MAX_SIZE + 1;
    CHECK_STATUS(mmi_opts_copy(&lib, &older_caller, sizeof lib, &e, "f"), MM_E_INVALID_ARG);
    {
        /* the largest newer struct still taken, with a zero tail */
        union {
            opts_v1 o;
            unsigned char bytes[MMI_OPTS_MAX_SIZE];
        } big;
        memset(&big, 0, sizeof big);
        big.o = (opts_v1){MMI_OPTS_MAX_SIZE, 0, 11, 12.0};
        CHECK_OK(mmi_opts_copy(&lib, &big, sizeof lib, &e, "f"));
        CHECK_EQ_I64(lib.a, 11);
        CHECK(mmi_opts_covers(&big, sizeof(opts_v1)));
        CHECK(!mmi_opts_covers(&big, MMI_OPTS_MAX_SIZE + 1));
    }
}

/* Every create that takes an options struct refuses an uninitialised one (struct_size
 * 0x7fffffff, 0xffffffff or just above the 4096 cap) with MM_E_INVALID_ARG, leaves *out NULL,
 * and writes nothing through the struct's err_buf (a garbage struct's pointer is not trusted).
 * Before the cap, the tail check read up to 2 GiB past the caller's struct. */
static int g_released;
static void count_release(void *ud)
{
    (void)ud;
    g_released++;
}
static int32_t no_ar(void *ud, float *b, int64_t n)
{
    (void)ud, (void)b, (void)n;
    return 0;
}
static int32_t no_ag(void *ud, const float *s, float *r, int64_t n)
{
    (void)ud, (void)s, (void)r, (void)n;
    return 0;
}
static int32_t no_sr(void *ud, const float *s, int32_t d, float *r, int32_t src, int64_t n)
{
    (void)ud, (void)s, (void)d, (void)r, (void)src, (void)n;
    return 0;
}

static void test_opts_garbage_size(void)
{
    static const uint32_t sizes[] = {0x7fffffffu, 0xffffffffu, MMI_OPTS_MAX_SIZE + 1};
    char buf[64];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mm_model_opts mo;
        mm_attn_opts ao;
        mm_ssm_opts so;
        mm_loss_opts lo;
        mm_policy_opts po;
        mm_comm_callbacks cb;
        mm_model *m = (mm_model *)1;
        mm_attn *a = (mm_attn *)1;
        mm_ssm *s = (mm_ssm *)1;
        mm_loss *l = (mm_loss *)1;
        mm_policy *p = (mm_policy *)1;
        mm_comm *c = (mm_comm *)1;
        memset(buf, 'Z', sizeof buf);
        CHECK_OK(mm_model_opts_init(&mo));
        mo.input_dim = 3, mo.err_buf = buf, mo.err_buf_size = sizeof buf;
        mo.struct_size = sizes[i];
        CHECK_STATUS(mm_model_create(&m, &mo), MM_E_INVALID_ARG);
        CHECK(m == NULL);
        CHECK_OK(mm_attn_opts_init(&ao, MM_ATTN_SOFTMAX));
        ao.err_buf = buf, ao.err_buf_size = sizeof buf, ao.struct_size = sizes[i];
        CHECK_STATUS(mm_attn_create(&a, &ao), MM_E_INVALID_ARG);
        CHECK(a == NULL);
        CHECK_OK(mm_ssm_opts_init(&so, MM_SSM_SSD));
        so.err_buf = buf, so.err_buf_size = sizeof buf, so.struct_size = sizes[i];
        CHECK_STATUS(mm_ssm_create(&s, &so), MM_E_INVALID_ARG);
        CHECK(s == NULL);
        CHECK_OK(mm_loss_opts_init(&lo, MM_LOSS_CLIP));
        lo.err_buf = buf, lo.err_buf_size = sizeof buf, lo.struct_size = sizes[i];
        CHECK_STATUS(mm_loss_create(&l, &lo), MM_E_INVALID_ARG);
        CHECK(l == NULL);
        CHECK_OK(mm_policy_opts_init(&po, MM_ALGO_PPO));
        po.err_buf = buf, po.err_buf_size = sizeof buf, po.struct_size = sizes[i];
        CHECK_STATUS(mm_policy_create(&p, &po), MM_E_INVALID_ARG);
        CHECK(p == NULL);
        for (size_t k = 0; k < sizeof buf; k++) CHECK(buf[k] == 'Z');
        /* the communicator: refused, and a garbage struct's release is not called */
        memset(&cb, 0, sizeof cb);
        cb.struct_size = sizes[i], cb.size = 1;
        cb.allreduce_sum = no_ar, cb.allgather = no_ag, cb.sendrecv = no_sr;
        cb.release = count_release;
        g_released = 0;
        CHECK_STATUS(mm_comm_create(&c, &cb, NULL), MM_E_INVALID_ARG);
        CHECK(c == NULL);
        CHECK(g_released == 0);
    }
}

/* The carver: the measure and the carve of one walk agree, regions are 64-byte aligned and
 * disjoint, an empty region takes nothing, and a measure that overflows says so. */
static void walk(mmi_carve *y, void **r)
{
    r[0] = mmi_carve_take(y, 3, sizeof(float));
    r[1] = mmi_carve_take(y, 0, sizeof(double));
    r[2] = mmi_carve_take(y, 17, sizeof(double));
    r[3] = mmi_carve_take(y, 16, sizeof(float));
}

static void test_carve(void)
{
    mmi_carve y = mmi_carve_measure();
    void *r[4];
    unsigned char *base;
    walk(&y, r);
    CHECK(!y.overflow && r[0] == NULL && r[2] == NULL);
    CHECK_EQ_I64(y.off, 64 + 0 + 192 + 64);
    base = (unsigned char *)malloc(y.off);
    CHECK(base != NULL);
    if (!base) return;
    {
        mmi_carve z = mmi_carve_at(base, y.off);
        walk(&z, r);
        CHECK(!z.overflow && z.off == y.off);
        CHECK(r[0] == base && r[2] == base + 64 && r[3] == base + 256);
    }
    free(base);
    y = mmi_carve_measure();
    CHECK(mmi_carve_take(&y, INT64_MAX / 2, 8) == NULL && y.overflow && y.off == SIZE_MAX);
    mmi_carve_take(&y, 1, 4); /* sticky: a later small region does not clear it */
    CHECK(y.overflow && y.off == SIZE_MAX);
    y = mmi_carve_measure();
    mmi_carve_take(&y, -1, 4);
    CHECK(y.overflow);
}

/* Create errors reach err_buf only through a struct_size that covers err_buf and its size. */
typedef struct {
    uint32_t struct_size, reserved0;
    int64_t a;
    char *err_buf;
    size_t err_buf_size;
    int64_t later;
} opts_err;

static void test_opts_export_error(void)
{
    mmi_err e;
    char buf[16];
    opts_err o = {sizeof(opts_err), 0, 1, buf, sizeof buf, 0};
    mmi_fail(&e, MM_E_RANGE, "create failed: a long message");
    buf[0] = 'x', buf[1] = '\0';
    mmi_opts_export_error(&o, offsetof(opts_err, err_buf), offsetof(opts_err, err_buf_size), &e);
    CHECK(strcmp(buf, "create failed: ") == 0); /* truncated to the buffer, terminated */
    buf[0] = 'x', buf[1] = '\0';
    o.struct_size = (uint32_t)offsetof(opts_err, err_buf_size); /* older: no err_buf_size */
    mmi_opts_export_error(&o, offsetof(opts_err, err_buf), offsetof(opts_err, err_buf_size), &e);
    CHECK(strcmp(buf, "x") == 0);
    mmi_opts_export_error(NULL, offsetof(opts_err, err_buf), offsetof(opts_err, err_buf_size), &e);
}

/* Every create reports its failure through the caller's err_buf only when the caller's
 * struct_size covers err_buf: an older caller's shorter struct is never written past. */
#define SHORT_CASE(T, obj, init, bad, create)                                                      \
    do {                                                                                           \
        T o;                                                                                       \
        obj *h = NULL;                                                                             \
        char buf[64];                                                                              \
        CHECK_OK(init);                                                                            \
        bad;                                                                                       \
        o.err_buf = buf, o.err_buf_size = sizeof buf;                                              \
        strcpy(buf, "untouched");                                                                  \
        CHECK(create(&h, &o) < 0 && h == NULL);                                                    \
        CHECK(strcmp(buf, "untouched") != 0); /* the full struct gets the text */                  \
        strcpy(buf, "untouched");                                                                  \
        o.struct_size = (uint32_t)offsetof(T, err_buf); /* an older caller's struct */             \
        CHECK(create(&h, &o) < 0 && h == NULL);                                                    \
        CHECK(strcmp(buf, "untouched") == 0);                                                      \
    } while (0)

static void test_create_err_buf(void)
{
    SHORT_CASE(mm_model_opts, mm_model, mm_model_opts_init(&o), o.max_batch = 0, mm_model_create);
    SHORT_CASE(mm_attn_opts, mm_attn, mm_attn_opts_init(&o, MM_ATTN_SOFTMAX), o.d_head = 0,
               mm_attn_create);
    SHORT_CASE(mm_loss_opts, mm_loss, mm_loss_opts_init(&o, MM_LOSS_CLIP), o.max_batch = 0,
               mm_loss_create);
    SHORT_CASE(mm_ssm_opts, mm_ssm, mm_ssm_opts_init(&o, MM_SSM_SELECTIVE), o.d_inner = 0,
               mm_ssm_create);
    SHORT_CASE(mm_policy_opts, mm_policy, mm_policy_opts_init(&o, MM_ALGO_PPO), o.obs_dim = 0,
               mm_policy_create);
}
#undef SHORT_CASE

static void test_params(void)
{
    double lo = 1, hi = 2;
    mmi_err e;
    CHECK_STATUS(mm_param_bounds(0, &lo, &hi), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_param_bounds(8999, NULL, NULL), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_param_bounds(-5, &lo, &hi), MM_E_UNSUPPORTED);
    CHECK(lo == 1 && hi == 2); /* untouched on failure */
    CHECK_STATUS(mmi_param_check(8999, 1.0, &e, "f"), MM_E_UNSUPPORTED);
    CHECK(strstr(e.msg, "8999") != NULL);
}

/* The enumeration entries cover the registry: every id once, its bounds those of
 * mm_param_bounds, its owner the one its id range names; constants have unique names. */
static void test_param_enum(void)
{
    int32_t n = mm_param_count(), id = -1, v = -1;
    const char *name = NULL, *obj = NULL;
    double lo, hi, blo, bhi;
    CHECK(n >= 66);
    for (int32_t i = 0; i < n; i++) {
        CHECK_OK(mm_param_info(i, &id, &name, &obj, &lo, &hi));
        CHECK_OK(mm_param_bounds(id, &blo, &bhi));
        CHECK(lo == blo && hi == bhi && lo <= hi);
        CHECK(name != NULL && strncmp(name, "MM_", 3) == 0);
        static const char *const owners[] = {"attn", "ssm", "policy", "loss", "model"};
        CHECK(id >= 100 && id < 600 && strcmp(obj, owners[id / 100 - 1]) == 0);
        for (int32_t j = 0; j < i; j++) {
            int32_t other;
            const char *oname;
            CHECK_OK(mm_param_info(j, &other, &oname, NULL, NULL, NULL));
            CHECK(other != id && strcmp(oname, name) != 0);
        }
    }
    CHECK_OK(mm_param_info(0, NULL, NULL, NULL, NULL, NULL));
    id = 7;
    CHECK_STATUS(mm_param_info(n, &id, &name, &obj, &lo, &hi), MM_E_RANGE);
    CHECK_STATUS(mm_param_info(-1, &id, NULL, NULL, NULL, NULL), MM_E_RANGE);
    CHECK(id == 7); /* untouched on failure */

    n = mm_enum_count();
    CHECK(n >= 78);
    int found = 0;
    for (int32_t i = 0; i < n; i++) {
        CHECK_OK(mm_enum_info(i, &name, &v));
        if (strcmp(name, "MM_ACT_TANH") == 0) found += v == MM_ACT_TANH;
        if (strcmp(name, "MM_E_INTERNAL") == 0) found += v == MM_E_INTERNAL;
        for (int32_t j = 0; j < i; j++) {
            const char *oname;
            CHECK_OK(mm_enum_info(j, &oname, NULL));
            CHECK(strcmp(oname, name) != 0);
        }
    }
    CHECK(found == 2);
    v = 3;
    CHECK_STATUS(mm_enum_info(n, &name, &v), MM_E_RANGE);
    CHECK_STATUS(mm_enum_info(-1, NULL, &v), MM_E_RANGE);
    CHECK(v == 3);
}

static void test_rng(void)
{
    mmi_rng a, b;
    double sum = 0, sum2 = 0;
    int n = mmt_quick() ? 20000 : 200000;
    mmi_rng_seed(&a, 42);
    mmi_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(mmi_rng_next(&a) == mmi_rng_next(&b));
    mmi_rng_seed(&b, 43);
    CHECK(mmi_rng_next(&a) != mmi_rng_next(&b));
    for (int i = 0; i < n; i++) {
        double u = mmi_rng_uniform(&a);
        CHECK(u >= 0.0 && u < 1.0);
        sum += u;
    }
    /* Mean of n uniforms has sd sqrt(1/12n); 6 sd is a false alarm once in 10^9 runs. */
    CHECK_NEAR(sum / n, 0.5, 0, 6 * sqrt(1.0 / 12 / n));
    sum = 0;
    for (int i = 0; i < n; i++) {
        double z = mmi_rng_normal(&a);
        CHECK(isfinite(z));
        sum += z;
        sum2 += z * z;
    }
    CHECK_NEAR(sum / n, 0.0, 0, 6 / sqrt((double)n));
    CHECK_NEAR(sum2 / n, 1.0, 0, 6 * sqrt(2.0 / n));
    /* mmi_rng_below: in range, every bucket hit about equally (chi-square, 9 dof). */
    int64_t counts[10] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t k = mmi_rng_below(&a, 10);
        CHECK(k < 10);
        counts[k < 10 ? k : 0]++;
    }
    double chi2 = 0, expect = n / 10.0;
    for (int k = 0; k < 10; k++) chi2 += (counts[k] - expect) * (counts[k] - expect) / expect;
    CHECK(chi2 < 33.7); /* p = 1e-4 critical value for 9 dof */
    CHECK(mmi_rng_below(&a, 1) == 0);
}

static void check_orthonormal(int64_t rows, int64_t cols)
{
    mmi_rng r;
    double *q = (double *)malloc(sizeof(double) * (size_t)(rows * cols));
    double *w = (double *)malloc(sizeof(double) * (size_t)(rows * cols));
    int64_t k = rows <= cols ? rows : cols;
    mmi_rng_seed(&r, 7);
    mmi_rng_orthogonal(&r, q, rows, cols, w);
    /* The short side's vectors are orthonormal: rows of a wide Q, columns of a tall one. */
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double d = 0;
            int64_t len = rows <= cols ? cols : rows;
            for (int64_t t = 0; t < len; t++)
                d += rows <= cols ? q[i * cols + t] * q[j * cols + t]
                                  : q[t * cols + i] * q[t * cols + j];
            CHECK_NEAR(d, i == j ? 1.0 : 0.0, 0, 1e-12);
        }
    free(q);
    free(w);
}

static void test_orthogonal(void)
{
    check_orthonormal(5, 5);
    check_orthonormal(17, 4);
    check_orthonormal(3, 11);
    check_orthonormal(64, 64);
}

static void test_crc32(void)
{
    /* The standard check value of CRC-32/ISO-HDLC (zlib's crc32). */
    CHECK(mmi_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(mmi_crc32(0, "", 0) == 0);
    CHECK(mmi_crc32(mmi_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    CHECK(mmi_crc32(0, "The quick brown fox jumps over the lazy dog", 43) == 0x414FA339u);
}

typedef struct {
    int64_t hits[1000];
    int64_t thread_of[1000];
} pool_ctx;

static void pool_task(void *ctx, int64_t i, int64_t n)
{
    pool_ctx *c = (pool_ctx *)ctx;
    (void)n;
    c->hits[i]++;
}

static void test_pool(void)
{
    mm_allocator a;
    mmt_counter cnt;
    mmi_alloc ma;
    mmi_err e;
    mmi_pool *p = NULL;
    static pool_ctx c;
    int reps = mmt_quick() ? 20 : 500;
    mmt_counting_allocator(&a, &cnt, -1);
    CHECK_OK(mmi_alloc_init(&ma, &a, &e));
    CHECK_OK(mmi_pool_create(&p, 1, &ma, &e));
    CHECK(p == NULL);
    CHECK_EQ_I64(mmi_pool_size(p), 1);
    CHECK_EQ_I64(cnt.n_alloc, 0); /* no threads, no allocation for n_threads <= 1 */
    CHECK_STATUS(mmi_pool_create(&p, 100000, &ma, &e), MM_E_RANGE);
    CHECK_OK(mmi_pool_create(&p, 3, &ma, &e));
    CHECK(p != NULL);
    CHECK_EQ_I64(mmi_pool_size(p), 3);
    memset(&c, 0, sizeof c);
    int64_t before = cnt.n_alloc;
    for (int r = 0; r < reps; r++) mmi_pool_run(p, pool_task, &c, 1 + r % 1000);
    CHECK_EQ_I64(cnt.n_alloc, before); /* running never allocates */
    /* Every task of every job ran exactly once: task i belongs to the jobs with more than i
     * tasks (a task run twice and another skipped would leave the total right). */
    int64_t bad = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t want = 0;
        for (int r = 0; r < reps; r++) want += 1 + r % 1000 > i;
        bad += c.hits[i] != want;
    }
    CHECK_EQ_I64(bad, 0);
    mmi_pool_run(p, pool_task, &c, 0); /* empty job */
    mmi_pool_run(NULL, pool_task, &c, 5);
    mmi_pool_free(p);
    mmi_pool_free(NULL);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    CHECK_EQ_I64(cnt.n_alloc, cnt.n_free);
    /* More threads than tasks (empty shares), and the shares' edges: every task once. */
    CHECK_OK(mmi_pool_create(&p, 5, &ma, &e));
    memset(&c, 0, sizeof c);
    for (int64_t n = 1; n <= 23; n++) mmi_pool_run(p, pool_task, &c, n);
    bad = 0;
    for (int i = 0; i < 23; i++) bad += c.hits[i] != 23 - i;
    CHECK_EQ_I64(bad, 0);
    mmi_pool_free(p);
    CHECK_EQ_I64(cnt.live_bytes, 0);
    /* Allocation failure while creating (the pool, its workers, its shares): a code, nothing
     * leaked. */
    for (int64_t k = 0; k < 3; k++) {
        mmt_counting_allocator(&a, &cnt, k);
        CHECK_OK(mmi_alloc_init(&ma, &a, &e));
        CHECK_STATUS(mmi_pool_create(&p, 2, &ma, &e), MM_E_NOMEM);
        CHECK(p == NULL);
        CHECK_EQ_I64(cnt.live_bytes, 0);
    }
}

static void test_finite(void)
{
    float x[5] = {1, 2, 3, -4, 0};
    CHECK(mmi_all_finite(x, 5));
    x[3] = NAN;
    CHECK(!mmi_all_finite(x, 5));
    x[3] = -INFINITY;
    CHECK(!mmi_all_finite(x, 5));
    CHECK(mmi_all_finite(x, 0));
    /* Every position of the eight-lane body and of the tail, every kind of non-finite value,
     * beside the extreme finite ones (FLT_MAX, denormals, -0) that must pass. */
    float y[37];
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int64_t n = 0; n <= 37; n++)
        for (int64_t j = 0; j < n; j++)
            for (int b = 0; b < 3; b++) {
                for (int64_t i = 0; i < n; i++)
                    y[i] = i % 4 == 0   ? FLT_MAX
                           : i % 4 == 1 ? -FLT_MAX
                           : i % 4 == 2 ? 1e-45f
                                        : -0.0f;
                CHECK(mmi_all_finite(y, n));
                y[j] = bad[b];
                CHECK(!mmi_all_finite(y, n));
            }
}

void suite_core(void)
{
    mmt_run("core/version", test_version);
    mmt_run("core/status", test_status);
    mmt_run("core/error_text", test_error_text);
    mmt_run("core/allocator", test_allocator);
    mmt_run("core/size_math", test_size_math);
    mmt_run("core/opts", test_opts);
    mmt_run("core/opts_export_error", test_opts_export_error);
    mmt_run("core/carve", test_carve);
    mmt_run("core/create_err_buf", test_create_err_buf);
    mmt_run("core/opts_garbage_size", test_opts_garbage_size);
    mmt_run("core/params", test_params);
    mmt_run("core/param_enum", test_param_enum);
    mmt_run("core/rng", test_rng);
    mmt_run("core/orthogonal", test_orthogonal);
    mmt_run("core/crc32", test_crc32);
    mmt_run("core/pool", test_pool);
    mmt_run("core/finite", test_finite);
}
