/* SPDX-License-Identifier: MIT */
/* test_tensor.c — mm_tensor: create, wrap, accessors, reshape, fill, copy, misuse, OOM. */
#include "runner.h"

#include <math.h>
#include <string.h>

static void test_create_free(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_tensor *t = NULL;
    int64_t shape[3] = {2, 3, 5};
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(mm_tensor_create(&t, 3, shape, &a));
    CHECK(t != NULL);
    CHECK_EQ_I64(mm_tensor_ndim(t), 3);
    CHECK_EQ_I64(mm_tensor_numel(t), 30);
    CHECK_EQ_I64(mm_tensor_dim(t, 0), 2);
    CHECK_EQ_I64(mm_tensor_dim(t, 2), 5);
    CHECK_EQ_I64(mm_tensor_dim(t, -1), 5);
    CHECK_EQ_I64(mm_tensor_dim(t, -3), 2);
    CHECK_EQ_I64(mm_tensor_dim(t, 3), MM_E_RANGE);
    CHECK_EQ_I64(mm_tensor_dim(t, -4), MM_E_RANGE);
    float *d = mm_tensor_data(t);
    CHECK(d != NULL && ((uintptr_t)d & 63) == 0);
    for (int i = 0; i < 30; i++) CHECK(d[i] == 0.0f);
    CHECK(strcmp(mm_tensor_errmsg(t), "") == 0);
    shape[0] = 99; /* the shape was copied */
    CHECK_EQ_I64(mm_tensor_dim(t, 0), 2);
    mm_tensor_free(t);
    mm_tensor_free(NULL);
    CHECK_EQ_I64(c.n_alloc, 2);
    CHECK_EQ_I64(c.n_free, 2);
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK_EQ_I64(c.bad_free, 0);
}

static void test_wrap(void)
{
    mm_allocator a;
    mmt_counter c;
    mm_tensor *t = NULL;
    float buf[13];
    int64_t shape[2] = {3, 4};
    for (int i = 0; i < 13; i++) buf[i] = (float)i;
    mmt_counting_allocator(&a, &c, -1);
    CHECK_OK(mm_tensor_wrap(&t, buf, 2, shape, &a));
    CHECK(mm_tensor_data(t) == buf); /* zero-copy */
    CHECK_OK(mm_tensor_fill(t, 2.5f));
    CHECK(buf[11] == 2.5f && buf[12] == 12.0f); /* writes stay inside numel */
    mm_tensor_free(t);
    CHECK_EQ_I64(c.n_alloc, 1); /* the handle only */
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK(buf[0] == 2.5f); /* borrowed data survives the handle */
    t = (mm_tensor *)&c;
    CHECK_STATUS(mm_tensor_wrap(&t, NULL, 2, shape, NULL), MM_E_INVALID_ARG);
    CHECK(t == NULL);
    CHECK_STATUS(mm_tensor_wrap(&t, (float *)((char *)buf + 1), 1, shape, NULL), MM_E_INVALID_ARG);
    CHECK(t == NULL);
}

static void test_bad_shapes(void)
{
    mm_tensor *t = (mm_tensor *)1;
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t neg[2] = {2, -1};
    int64_t big[2] = {(int64_t)1 << 30, (int64_t)1 << 30};
    CHECK_STATUS(mm_tensor_create(&t, 0, shape, NULL), MM_E_SHAPE);
    CHECK(t == NULL);
    CHECK_STATUS(mm_tensor_create(&t, 9, shape, NULL), MM_E_SHAPE);
    CHECK_OK(mm_tensor_create(&t, 8, shape, NULL));
    mm_tensor_free(t);
    CHECK_STATUS(mm_tensor_create(&t, 2, neg, NULL), MM_E_SHAPE);
    CHECK_STATUS(mm_tensor_create(&t, 2, big, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_tensor_create(&t, 2, NULL, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_tensor_create(NULL, 2, shape, NULL), MM_E_INVALID_ARG);
    mm_allocator bad;
    memset(&bad, 0, sizeof bad);
    CHECK_STATUS(mm_tensor_create(&t, 1, shape, &bad), MM_E_INVALID_ARG);
    CHECK(t == NULL);
}

static void test_null_handles(void)
{
    int64_t shape[1] = {4};
    CHECK_EQ_I64(mm_tensor_ndim(NULL), MM_E_INVALID_ARG);
    CHECK_EQ_I64(mm_tensor_dim(NULL, 0), MM_E_INVALID_ARG);
    CHECK_EQ_I64(mm_tensor_numel(NULL), MM_E_INVALID_ARG);
    CHECK(mm_tensor_data(NULL) == NULL);
    CHECK_STATUS(mm_tensor_reshape(NULL, 1, shape), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_tensor_fill(NULL, 1.0f), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_tensor_copy(NULL, NULL), MM_E_INVALID_ARG);
    CHECK(strcmp(mm_tensor_errmsg(NULL), "invalid handle") == 0);
}

static void test_reshape(void)
{
    mm_tensor *t = NULL;
    int64_t shape[2] = {4, 6};
    int64_t s3[3] = {2, 3, 4};
    int64_t bad[2] = {5, 5};
    CHECK_OK(mm_tensor_create(&t, 2, shape, NULL));
    CHECK_OK(mm_tensor_reshape(t, 3, s3));
    CHECK_EQ_I64(mm_tensor_ndim(t), 3);
    CHECK_EQ_I64(mm_tensor_dim(t, 1), 3);
    CHECK_STATUS(mm_tensor_reshape(t, 2, bad), MM_E_SHAPE);
    CHECK(strstr(mm_tensor_errmsg(t), "25 elements") != NULL);
    CHECK_EQ_I64(mm_tensor_ndim(t), 3); /* unchanged on failure */
    CHECK_STATUS(mm_tensor_reshape(t, 0, bad), MM_E_SHAPE);
    CHECK_STATUS(mm_tensor_reshape(t, 2, NULL), MM_E_INVALID_ARG);
    CHECK_EQ_I64(mm_tensor_dim(t, 2), 4);
    mm_tensor_free(t);
}

static void test_fill_copy(void)
{
    mm_tensor *a = NULL, *b = NULL, *c = NULL;
    int64_t s1[2] = {3, 4}, s2[2] = {4, 3};
    CHECK_OK(mm_tensor_create(&a, 2, s1, NULL));
    CHECK_OK(mm_tensor_create(&b, 2, s1, NULL));
    CHECK_OK(mm_tensor_create(&c, 2, s2, NULL));
    for (int i = 0; i < 12; i++) mm_tensor_data(a)[i] = (float)i * 0.5f;
    CHECK_OK(mm_tensor_copy(b, a));
    CHECK(memcmp(mm_tensor_data(a), mm_tensor_data(b), 12 * sizeof(float)) == 0);
    CHECK_OK(mm_tensor_copy(a, a));
    CHECK_STATUS(mm_tensor_copy(c, a), MM_E_SHAPE);
    CHECK(strstr(mm_tensor_errmsg(c), "[4,3]") != NULL);
    CHECK(strstr(mm_tensor_errmsg(c), "[3,4]") != NULL);
    CHECK_STATUS(mm_tensor_copy(c, NULL), MM_E_INVALID_ARG);
    CHECK_OK(mm_tensor_fill(c, -INFINITY));
    CHECK(isinf(mm_tensor_data(c)[11]));
    /* overlapping dst and src, either way round: as if through a temporary (memmove) */
    for (int shift = -5; shift <= 5; shift += 10) {
        float buf[20], want[12];
        int64_t s3[1] = {12};
        mm_tensor *lo = NULL, *hi = NULL;
        for (int i = 0; i < 20; i++) buf[i] = (float)i;
        CHECK_OK(mm_tensor_wrap(&lo, buf, 1, s3, NULL));
        CHECK_OK(mm_tensor_wrap(&hi, buf + 5, 1, s3, NULL));
        memcpy(want, shift > 0 ? buf : buf + 5, sizeof want);
        CHECK_OK(shift > 0 ? mm_tensor_copy(hi, lo) : mm_tensor_copy(lo, hi));
        CHECK(memcmp(shift > 0 ? buf + 5 : buf, want, sizeof want) == 0);
        mm_tensor_free(lo), mm_tensor_free(hi);
    }
    mm_tensor_free(a);
    mm_tensor_free(b);
    mm_tensor_free(c);
}

static void test_oom(void)
{
    /* Fail the 1st, then the 2nd allocation: NOMEM, *out NULL, nothing leaked; then the
     * same allocator works again. */
    int64_t shape[2] = {8, 8};
    for (int64_t k = 0; k < 2; k++) {
        mm_allocator a;
        mmt_counter c;
        mm_tensor *t = (mm_tensor *)&c;
        mmt_counting_allocator(&a, &c, k);
        CHECK_STATUS(mm_tensor_create(&t, 2, shape, &a), MM_E_NOMEM);
        CHECK(t == NULL);
        CHECK_EQ_I64(c.live_bytes, 0);
        c.fail_after = -1;
        CHECK_OK(mm_tensor_create(&t, 2, shape, &a));
        mm_tensor_free(t);
        CHECK_EQ_I64(c.live_bytes, 0);
    }
    {
        mm_allocator a;
        mmt_counter c;
        float buf[64];
        mm_tensor *t = (mm_tensor *)&c;
        mmt_counting_allocator(&a, &c, 0);
        CHECK_STATUS(mm_tensor_wrap(&t, buf, 2, shape, &a), MM_E_NOMEM);
        CHECK(t == NULL);
    }
}

void suite_tensor(void)
{
    mmt_run("tensor/create_free", test_create_free);
    mmt_run("tensor/wrap", test_wrap);
    mmt_run("tensor/bad_shapes", test_bad_shapes);
    mmt_run("tensor/null_handles", test_null_handles);
    mmt_run("tensor/reshape", test_reshape);
    mmt_run("tensor/fill_copy", test_fill_copy);
    mmt_run("tensor/oom", test_oom);
}
