/* SPDX-License-Identifier: MIT */
/*
 * mmi_comm.h — the inside of mm_comm, for the floors that run distributed math (src/loss,
 * src/model, src/policy). Each wrapper calls one host callback, turns a failure into MM_E_IO
 * with text in the caller's handle, and poisons the communicator: once a collective failed the
 * ranks may be out of step, so no later call may start another one. Nothing here is exported.
 */
#ifndef MMI_COMM_H
#define MMI_COMM_H

#include "mmi.h"

/* Most values one rank may contribute to a vote or to an exact float64 sum. */
#define MMI_COMM_VOTE_MAX 15
#define MMI_COMM_F64_MAX  16

struct mm_comm {
    mmi_alloc alloc;
    mmi_err err;
    mm_comm_callbacks cb;
    int32_t rank, size;
    int poisoned;   /* a callback failed: every later collective returns MM_E_STATE */
    float *scratch; /* size * MMI_COMM_SCRATCH floats for votes and float64 sums */
    size_t scratch_bytes;
};

/* floats per rank in c->scratch (covers a vote and a float64 sum, 3 floats per double) */
#define MMI_COMM_SCRATCH 48

/* The agreement step every distributed call starts with. Each rank contributes its own status
 * (MM_OK or the error it is about to return) and n <= MMI_COMM_VOTE_MAX floats (sizes, flags,
 * norms); *all receives size * (n + 1) floats, rank r's block [status, vals...] at r * (n + 1),
 * identical on every rank, valid until the next call on c. Returns status if it is an error
 * (its text stays in e), MM_E_STATE if another rank failed ("rank k failed"), MM_E_IO if the
 * callback failed, else MM_OK. fn names the public function for the text. */
int mmi_comm_vote(mm_comm *c, int status, const float *vals, int n, const float **all, mmi_err *e,
                  const char *fn);

/* In-place sum over ranks of buf[0..n) (n >= 0; 0 is a no-op). */
int mmi_comm_allreduce(mm_comm *c, float *buf, int64_t n, mmi_err *e, const char *fn);
/* recv[r*n ..] = rank r's send[0..n). */
int mmi_comm_allgather(mm_comm *c, const float *send, float *recv, int64_t n, mmi_err *e,
                       const char *fn);
/* Ring step: send n floats to rank + 1, receive n floats from rank - 1 (mod size). */
int mmi_comm_ring(mm_comm *c, const float *send, float *recv, int64_t n, mmi_err *e,
                  const char *fn);
/* buf = rank 0's buf on every rank (the broadcast callback, or a sum with zeros elsewhere,
 * which is exact: x + 0 = x). */
int mmi_comm_bcast0(mm_comm *c, float *buf, int64_t n, mmi_err *e, const char *fn);
/* In-place exact sum over ranks of n <= MMI_COMM_F64_MAX doubles: each double is split into
 * three floats that add back to it exactly, all-gathered, and added in rank order in float64,
 * so the result is the same on every rank and as precise as a local float64 sum. */
int mmi_comm_sum_f64(mm_comm *c, double *v, int n, mmi_err *e, const char *fn);

#endif /* MMI_COMM_H */
