/* SPDX-License-Identifier: MIT */
/*
 * mmt_comm.h — a test-only communicator: N threads in one process act as N ranks, so `make
 * check` tests the distributed math without MPI. Collectives meet at a barrier; sums run in
 * rank order, so every rank gets bitwise the same result. A barrier that waits longer than the
 * world's timeout, or a rank told to fail, poisons the world: every pending and later
 * collective returns -1 (what a transport with deadlines does), so no test can hang.
 */
#ifndef MMT_COMM_H
#define MMT_COMM_H

#include "mm.h"

typedef struct mmt_world mmt_world;

/* Creates a world of size ranks (1..64) whose barriers give up after timeout_ms. NULL on
 * failure. */
mmt_world *mmt_world_create(int32_t size, int64_t timeout_ms);
void mmt_world_free(mmt_world *w);
/* Fills cb (a fresh mm_comm_callbacks) for rank r of w. */
void mmt_world_callbacks(mmt_world *w, int32_t rank, mm_comm_callbacks *cb);
/* Rank r's collective number call_index (0-based, counting every callback) fails with -1 and
 * poisons the world. */
void mmt_world_fail_at(mmt_world *w, int32_t rank, int64_t call_index);
/* Runs fn(rank, ctx) on one thread per rank and joins them all. */
void mmt_world_run(mmt_world *w, void (*fn)(int32_t rank, void *ctx), void *ctx);
/* Clears the poison and the fault plan, so the world can be used again. */
void mmt_world_reset(mmt_world *w);

#endif
