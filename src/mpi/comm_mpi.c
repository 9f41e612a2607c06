/* SPDX-License-Identifier: MIT */
/* comm_mpi.c — mm_comm callbacks over MPI (libmm_mpi). Each callback starts a non-blocking
 * operation on a private duplicate of the host's communicator and polls it against a deadline,
 * so a dead or absent peer turns into an error after the timeout instead of a hang (the
 * documented alternative, all-reducing a status word first, is what libmm already does for
 * bad input; it cannot help when a peer never arrives). Counts above INT_MAX are split. */
#include "mm_mpi.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK           (1 << 30) /* floats per MPI call: fits an int count */
#define DEFAULT_TIMEOUT 300.0

typedef struct mpi_ctx {
    MPI_Comm comm;
    double timeout;
    mm_allocator alloc; /* to free this context the way it was allocated */
    int use_alloc;
} mpi_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Polls n requests until all complete, an error, or the deadline. 0 on success. */
static int32_t wait_all(mpi_ctx *c, MPI_Request *req, int n)
{
    double deadline = now_s() + c->timeout;
    long spins = 0;
    for (;;) {
        int done = 0;
        if (MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) return 1;
        if (done) return 0;
        if (now_s() > deadline) return 2; /* the requests stay pending: see mm_mpi.h */
        if (++spins > 1000) { /* stop burning a shared core after the first microseconds */
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

static int32_t cb_allreduce(void *ud, float *buf, int64_t n)
{
    mpi_ctx *c = (mpi_ctx *)ud;
    for (int64_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request r;
        int32_t rc;
        if (MPI_Iallreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, c->comm, &r) !=
            MPI_SUCCESS)
            return 1;
        if ((rc = wait_all(c, &r, 1)) != 0) return rc;
    }
    return 0;
}

static int32_t cb_allgather(void *ud, const float *send, float *recv, int64_t n)
{
    mpi_ctx *c = (mpi_ctx *)ud;
    MPI_Request r;
    int size;
    MPI_Comm_size(c->comm, &size);
    if (n <= CHUNK) {
        if (MPI_Iallgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, c->comm, &r) !=
            MPI_SUCCESS)
            return 1;
        return wait_all(c, &r, 1);
    }
    /* Large blocks: one broadcast per rank and chunk keeps every count within an int. */
    for (int root = 0; root < size; root++) {
        float *dst = recv + (int64_t)root * n;
        int me;
        MPI_Comm_rank(c->comm, &me);
        if (me == root) memmove(dst, send, (size_t)n * sizeof(float));
        for (int64_t off = 0; off < n; off += CHUNK) {
            int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
            int32_t rc;
            if (MPI_Ibcast(dst + off, cnt, MPI_FLOAT, root, c->comm, &r) != MPI_SUCCESS) return 1;
            if ((rc = wait_all(c, &r, 1)) != 0) return rc;
        }
    }
    return 0;
}

static int32_t cb_sendrecv(void *ud, const float *send, int32_t dest, float *recv, int32_t source,
                           int64_t n)
{
    mpi_ctx *c = (mpi_ctx *)ud;
    for (int64_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request r[2];
        int32_t rc;
        if (MPI_Irecv(recv + off, cnt, MPI_FLOAT, source, 0x6d6d, c->comm, &r[0]) != MPI_SUCCESS)
            return 1;
        if (MPI_Isend(send + off, cnt, MPI_FLOAT, dest, 0x6d6d, c->comm, &r[1]) != MPI_SUCCESS)
            return 1;
        if ((rc = wait_all(c, r, 2)) != 0) {
            /* Point-to-point requests, unlike collectives, can be withdrawn. */
            MPI_Cancel(&r[0]);
            MPI_Cancel(&r[1]);
            MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
            return rc;
        }
    }
    return 0;
}

static int32_t cb_broadcast(void *ud, float *buf, int64_t n, int32_t root)
{
    mpi_ctx *c = (mpi_ctx *)ud;
    for (int64_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request r;
        int32_t rc;
        if (MPI_Ibcast(buf + off, cnt, MPI_FLOAT, root, c->comm, &r) != MPI_SUCCESS) return 1;
        if ((rc = wait_all(c, &r, 1)) != 0) return rc;
    }
    return 0;
}

static void ctx_free(mpi_ctx *c)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&c->comm);
    if (c->use_alloc)
        c->alloc.free_fn(c->alloc.ud, c, sizeof *c);
    else
        free(c);
}

/* mm_comm_free hands the context back here. */
static void cb_release(void *ud) { ctx_free((mpi_ctx *)ud); }

static mpi_ctx *ctx_alloc(const mm_allocator *alloc)
{
    mpi_ctx *c =
        alloc ? (mpi_ctx *)alloc->alloc_fn(alloc->ud, sizeof *c, 64) : (mpi_ctx *)malloc(sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    if (alloc) {
        c->alloc = *alloc;
        c->use_alloc = 1;
    }
    return c;
}

MM_API int mm_comm_create_mpi_timeout(mm_comm **out, MPI_Comm comm, double timeout_s,
                                      const mm_allocator *alloc)
{
    mm_comm_callbacks cb;
    mpi_ctx *c;
    int init = 0, rank = 0, size = 0;
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    if (!(timeout_s > 0.0) || !isfinite(timeout_s)) return MM_E_RANGE;
    if (MPI_Initialized(&init) != MPI_SUCCESS || !init || comm == MPI_COMM_NULL)
        return MM_E_INVALID_ARG;
    if (alloc && (alloc->struct_size < sizeof *alloc || !alloc->alloc_fn || !alloc->free_fn))
        return MM_E_INVALID_ARG;
    if (!(c = ctx_alloc(alloc))) return MM_E_NOMEM;
    c->timeout = timeout_s;
    if (MPI_Comm_dup(comm, &c->comm) != MPI_SUCCESS) {
        c->comm = MPI_COMM_NULL;
        if (c->use_alloc)
            c->alloc.free_fn(c->alloc.ud, c, sizeof *c);
        else
            free(c);
        return MM_E_IO;
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &rank);
    MPI_Comm_size(c->comm, &size);
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.ud = c;
    cb.rank = rank;
    cb.size = size;
    cb.allreduce_sum = cb_allreduce;
    cb.allgather = cb_allgather;
    cb.sendrecv = cb_sendrecv;
    cb.broadcast = cb_broadcast;
    cb.release = cb_release; /* from here on mm_comm_create / mm_comm_free own c */
    return mm_comm_create(out, &cb, alloc);
}

MM_API int mm_comm_create_mpi(mm_comm **out, MPI_Comm comm, const mm_allocator *alloc)
{
    return mm_comm_create_mpi_timeout(out, comm, DEFAULT_TIMEOUT, alloc);
}
