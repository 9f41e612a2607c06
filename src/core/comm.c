/* SPDX-License-Identifier: MIT */
/* comm.c — mm_comm: a communicator made of host callbacks (MPI, NCCL, sockets, threads), and
 * the checked wrappers the distributed floors call. libmm itself never links a transport. */
#include "mmi_comm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAX_WORLD 65536

static int check_callbacks(const mm_comm_callbacks *cb, mmi_err *e)
{
    static const char fn[] = "mm_comm_create";
    if (cb->reserved0 != 0) return mmi_fail(e, MM_E_INVALID_ARG, "%s: reserved0 must be 0", fn);
    if (!cb->allreduce_sum || !cb->allgather || !cb->sendrecv)
        return mmi_fail(e, MM_E_INVALID_ARG,
                        "%s: allreduce_sum, allgather and sendrecv must all be set", fn);
    if (cb->size < 1 || cb->size > MAX_WORLD)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: size is %d, expected 1..%d", fn, (int)cb->size,
                        MAX_WORLD);
    if (cb->rank < 0 || cb->rank >= cb->size)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: rank is %d, expected 0..%d", fn, (int)cb->rank,
                        (int)cb->size - 1);
    return MM_OK;
}

/* A failing create still owns ud when the caller handed it over through release. */
static int release_ud(const mm_comm_callbacks *cb, int rc)
{
    if (mmi_opts_covers(cb, offsetof(mm_comm_callbacks, release) + sizeof cb->release) &&
        cb->release)
        cb->release(cb->ud);
    return rc;
}

MM_API int mm_comm_create(mm_comm **out, const mm_comm_callbacks *cb, const mm_allocator *alloc)
{
    static const char fn[] = "mm_comm_create";
    mm_comm_callbacks copy;
    mmi_alloc a;
    mm_comm *c;
    size_t bytes;
    int rc;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    /* Everything but the optional broadcast must be inside the caller's struct. */
    if (!cb || cb->struct_size < offsetof(mm_comm_callbacks, broadcast)) return MM_E_INVALID_ARG;
    memset(&copy, 0, sizeof copy); /* an older caller's missing tail means "not set" */
    if ((rc = mmi_opts_copy(&copy, cb, sizeof copy, NULL, fn)) != MM_OK ||
        (rc = check_callbacks(&copy, NULL)) != MM_OK ||
        (rc = mmi_alloc_init(&a, alloc, NULL)) != MM_OK)
        return release_ud(cb, rc);
    /* scratch: one rank's send block, then size receive blocks */
    if (mmi_mul_size(&bytes, (size_t)copy.size + 1, MMI_COMM_SCRATCH * sizeof(float)))
        return release_ud(&copy, MM_E_RANGE);
    c = (mm_comm *)mmi_calloc(&a, sizeof *c);
    if (!c) return release_ud(&copy, MM_E_NOMEM);
    c->alloc = a;
    c->cb = copy;
    c->rank = copy.rank;
    c->size = copy.size;
    c->scratch_bytes = bytes;
    c->scratch = (float *)mmi_malloc(&a, bytes);
    if (!c->scratch) {
        mmi_free(&a, c, sizeof *c);
        return release_ud(&copy, MM_E_NOMEM);
    }
    *out = c;
    return MM_OK;
}

MM_API void mm_comm_free(mm_comm *c)
{
    mmi_alloc a;
    if (!c) return;
    a = c->alloc;
    if (c->cb.release) c->cb.release(c->cb.ud);
    mmi_free(&a, c->scratch, c->scratch_bytes);
    mmi_free(&a, c, sizeof *c);
}

MM_API int32_t mm_comm_rank(const mm_comm *c) { return c ? c->rank : MM_E_INVALID_ARG; }
MM_API int32_t mm_comm_size(const mm_comm *c) { return c ? c->size : MM_E_INVALID_ARG; }
MM_API const char *mm_comm_errmsg(const mm_comm *c) { return c ? c->err.msg : "invalid handle"; }

/* ---- checked wrappers ------------------------------------------------------------------------ */

static int refuse_poisoned(mm_comm *c, mmi_err *e, const char *fn)
{
    return mmi_fail(e, MM_E_STATE,
                    "%s: the communicator is unusable after a failed collective (%s)", fn,
                    c->err.msg);
}

/* A callback returned rc != 0: remember it on the communicator and in the caller's handle. */
static int callback_failed(mm_comm *c, const char *what, int32_t rc, mmi_err *e, const char *fn)
{
    c->poisoned = 1;
    mmi_fail(&c->err, MM_E_IO, "%s: %s callback failed with %d on rank %d", fn, what, (int)rc,
             (int)c->rank);
    return mmi_fail(e, MM_E_IO, "%s", c->err.msg);
}

int mmi_comm_allreduce(mm_comm *c, float *buf, int64_t n, mmi_err *e, const char *fn)
{
    int32_t rc;
    if (c->poisoned) return refuse_poisoned(c, e, fn);
    if (n <= 0) return MM_OK;
    rc = c->cb.allreduce_sum(c->cb.ud, buf, n);
    return rc ? callback_failed(c, "allreduce_sum", rc, e, fn) : MM_OK;
}

int mmi_comm_allgather(mm_comm *c, const float *send, float *recv, int64_t n, mmi_err *e,
                       const char *fn)
{
    int32_t rc;
    if (c->poisoned) return refuse_poisoned(c, e, fn);
    if (n <= 0) return MM_OK;
    rc = c->cb.allgather(c->cb.ud, send, recv, n);
    return rc ? callback_failed(c, "allgather", rc, e, fn) : MM_OK;
}

int mmi_comm_ring(mm_comm *c, const float *send, float *recv, int64_t n, mmi_err *e, const char *fn)
{
    int32_t rc, dest = (c->rank + 1) % c->size, src = (c->rank + c->size - 1) % c->size;
    if (c->poisoned) return refuse_poisoned(c, e, fn);
    if (n <= 0) return MM_OK;
    rc = c->cb.sendrecv(c->cb.ud, send, dest, recv, src, n);
    return rc ? callback_failed(c, "sendrecv", rc, e, fn) : MM_OK;
}

int mmi_comm_bcast0(mm_comm *c, float *buf, int64_t n, mmi_err *e, const char *fn)
{
    int32_t rc;
    if (c->poisoned) return refuse_poisoned(c, e, fn);
    if (n <= 0 || c->size == 1) return MM_OK;
    if (c->cb.broadcast) {
        rc = c->cb.broadcast(c->cb.ud, buf, n, 0);
        return rc ? callback_failed(c, "broadcast", rc, e, fn) : MM_OK;
    }
    if (c->rank != 0) memset(buf, 0, (size_t)n * sizeof(float));
    return mmi_comm_allreduce(c, buf, n, e, fn);
}

int mmi_comm_vote(mm_comm *c, int status, const float *vals, int n, const float **all, mmi_err *e,
                  const char *fn)
{
    float *mine = c->scratch, *recv = c->scratch + MMI_COMM_SCRATCH;
    int rc, m = n + 1;
    /* mine and recv are apart only while a vote fits one rank's share of the scratch. */
    MMI_ASSERT(m <= MMI_COMM_SCRATCH);
    if (c->poisoned) return status != MM_OK ? status : refuse_poisoned(c, e, fn);
    mine[0] = (float)status; /* small negative integers: exact in float */
    for (int i = 0; i < n; i++) mine[1 + i] = vals[i];
    /* The failing rank takes part too, so nobody waits for it in a later collective. */
    rc = mmi_comm_allgather(c, mine, recv, m, e, fn);
    if (status != MM_OK) return status;
    if (rc != MM_OK) return rc;
    *all = recv;
    for (int32_t r = 0; r < c->size; r++)
        if (recv[r * m] != 0.0f)
            return mmi_fail(e, MM_E_STATE, "%s: rank %d failed with %s; no rank did anything", fn,
                            (int)r, mm_status_name((int)recv[r * m]));
    return MM_OK;
}

int mmi_comm_sum_f64(mm_comm *c, double *v, int n, mmi_err *e, const char *fn)
{
    float *mine = c->scratch, *recv = c->scratch + MMI_COMM_SCRATCH;
    int rc;
    MMI_ASSERT(3 * n <= MMI_COMM_SCRATCH); /* as in mmi_comm_vote */
    for (int i = 0; i < n; i++) {
        /* hi + mid + lo == v exactly: each step removes 24 bits, 3 x 24 >= 53. */
        double r = v[i];
        float hi = (float)r, mid = 0.0f, lo = 0.0f;
        if (isfinite(hi)) {
            r -= (double)hi;
            mid = (float)r;
            lo = (float)(r - (double)mid);
        }
        mine[3 * i] = hi;
        mine[3 * i + 1] = mid;
        mine[3 * i + 2] = lo;
    }
    if ((rc = mmi_comm_allgather(c, mine, recv, 3 * (int64_t)n, e, fn)) != MM_OK) return rc;
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int32_t r = 0; r < c->size; r++) {
            const float *p = recv + (size_t)r * 3 * (size_t)n + 3 * (size_t)i;
            s += (double)p[0] + (double)p[1] + (double)p[2];
        }
        v[i] = s;
    }
    return MM_OK;
}
