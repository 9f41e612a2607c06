/* SPDX-License-Identifier: MIT */
/* test_comm_threads.c — the threads-as-ranks communicator of mmt_comm.h (no suite here). */
#include "mmt_comm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANKS 64

typedef struct rank_ctx {
    mmt_world *w;
    int32_t rank;
    int64_t calls;
} rank_ctx;

struct mmt_world {
    int32_t size;
    int64_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t arrived;
    uint64_t generation;
    int poisoned;
    int32_t fail_rank;
    int64_t fail_call;
    const float *slot[MAX_RANKS]; /* what each rank posted for the current collective */
    rank_ctx ranks[MAX_RANKS];
};

mmt_world *mmt_world_create(int32_t size, int64_t timeout_ms)
{
    mmt_world *w;
    if (size < 1 || size > MAX_RANKS) return NULL;
    w = (mmt_world *)calloc(1, sizeof *w);
    if (!w) return NULL;
    w->size = size;
    w->timeout_ms = timeout_ms;
    w->fail_rank = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    for (int32_t r = 0; r < size; r++) {
        w->ranks[r].w = w;
        w->ranks[r].rank = r;
    }
    return w;
}

void mmt_world_free(mmt_world *w)
{
    if (!w) return;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void mmt_world_fail_at(mmt_world *w, int32_t rank, int64_t call_index)
{
    w->fail_rank = rank;
    w->fail_call = w->ranks[rank].calls + call_index; /* counted from now */
}

void mmt_world_reset(mmt_world *w)
{
    w->poisoned = 0;
    w->arrived = 0;
    w->fail_rank = -1;
    for (int32_t r = 0; r < w->size; r++) w->ranks[r].calls = 0;
}

/* Waits until every rank arrived; -1 if the world is (or becomes) poisoned or time runs out. */
static int barrier(mmt_world *w)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(w->timeout_ms / 1000);
    dl.tv_nsec += (long)(w->timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (w->poisoned) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    if (++w->arrived == w->size) {
        w->arrived = 0;
        w->generation++;
        pthread_cond_broadcast(&w->cv);
    } else {
        uint64_t gen = w->generation;
        while (gen == w->generation && !w->poisoned && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
        if (gen == w->generation) { /* poisoned or timed out: give up for everyone */
            w->poisoned = 1;
            pthread_cond_broadcast(&w->cv);
            rc = -1;
        } else {
            rc = 0;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Counts the call and applies the fault plan; -1 means this rank fails now. */
static int enter(rank_ctx *rc)
{
    mmt_world *w = rc->w;
    if (w->fail_rank == rc->rank && rc->calls++ == w->fail_call) {
        pthread_mutex_lock(&w->mu);
        w->poisoned = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    if (w->fail_rank != rc->rank) rc->calls++;
    return 0;
}

/* A strict transport: the callbacks' contract says their buffers never overlap (MPI needs
 * MPI_IN_PLACE for that), so libmm handing over overlapping send and receive buffers fails the
 * collective (-3, the world poisoned) and with it the test that made the call. */
static int overlapping(rank_ctx *rc, const float *send, int64_t ns, const float *recv, int64_t nr)
{
    mmt_world *w = rc->w;
    const uintptr_t s0 = (uintptr_t)send, r0 = (uintptr_t)recv;
    if (!(s0 < r0 + (uintptr_t)nr * sizeof(float) && r0 < s0 + (uintptr_t)ns * sizeof(float)))
        return 0;
    pthread_mutex_lock(&w->mu);
    w->poisoned = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 1;
}

static int32_t cb_allreduce(void *ud, float *buf, int64_t n)
{
    rank_ctx *rc = (rank_ctx *)ud;
    mmt_world *w = rc->w;
    float *sum;
    if (enter(rc)) return -1;
    sum = (float *)malloc((size_t)n * sizeof(float));
    if (!sum) return -2;
    w->slot[rc->rank] = buf;
    if (barrier(w)) {
        free(sum);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) sum[i] = w->slot[0][i];
    for (int32_t r = 1; r < w->size; r++)
        for (int64_t i = 0; i < n; i++) sum[i] += w->slot[r][i];
    if (barrier(w)) { /* everyone has read every buf before anyone overwrites its own */
        free(sum);
        return -1;
    }
    memcpy(buf, sum, (size_t)n * sizeof(float));
    free(sum);
    return 0;
}

static int32_t cb_allgather(void *ud, const float *send, float *recv, int64_t n)
{
    rank_ctx *rc = (rank_ctx *)ud;
    mmt_world *w = rc->w;
    if (enter(rc)) return -1;
    if (overlapping(rc, send, n, recv, n * w->size)) return -3;
    w->slot[rc->rank] = send;
    if (barrier(w)) return -1;
    for (int32_t r = 0; r < w->size; r++)
        memcpy(recv + (size_t)r * (size_t)n, w->slot[r], (size_t)n * sizeof(float));
    return barrier(w) ? -1 : 0;
}

static int32_t cb_sendrecv(void *ud, const float *send, int32_t dest, float *recv, int32_t source,
                           int64_t n)
{
    rank_ctx *rc = (rank_ctx *)ud;
    mmt_world *w = rc->w;
    (void)dest; /* every rank posts; the receiver reads its source's post */
    if (enter(rc)) return -1;
    if (overlapping(rc, send, n, recv, n)) return -3;
    w->slot[rc->rank] = send;
    if (barrier(w)) return -1;
    memcpy(recv, w->slot[source], (size_t)n * sizeof(float));
    return barrier(w) ? -1 : 0;
}

void mmt_world_callbacks(mmt_world *w, int32_t rank, mm_comm_callbacks *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->struct_size = sizeof *cb;
    cb->ud = &w->ranks[rank];
    cb->rank = rank;
    cb->size = w->size;
    cb->allreduce_sum = cb_allreduce;
    cb->allgather = cb_allgather;
    cb->sendrecv = cb_sendrecv;
    cb->broadcast = NULL; /* exercise the all-reduce fallback */
}

typedef struct run_arg {
    void (*fn)(int32_t rank, void *ctx);
    void *ctx;
    int32_t rank;
} run_arg;

static void *run_one(void *p)
{
    run_arg *a = (run_arg *)p;
    a->fn(a->rank, a->ctx);
    return NULL;
}

void mmt_world_run(mmt_world *w, void (*fn)(int32_t rank, void *ctx), void *ctx)
{
    pthread_t th[MAX_RANKS];
    run_arg args[MAX_RANKS];
    for (int32_t r = 0; r < w->size; r++) {
        args[r].fn = fn;
        args[r].ctx = ctx;
        args[r].rank = r;
        pthread_create(&th[r], NULL, run_one, &args[r]);
    }
    for (int32_t r = 0; r < w->size; r++) pthread_join(th[r], NULL);
}
