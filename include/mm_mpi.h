/* SPDX-License-Identifier: MIT */
/*
 * mm_mpi.h — an mm_comm over MPI, from the optional library libmm_mpi (make WITH_MPI=1;
 * link -lmm_mpi -lmm and your MPI, e.g. through mpicc). libmm itself never links MPI.
 *
 * The communicator duplicates the caller's MPI communicator (MPI_Comm_dup, so libmm's
 * messages never mix with the host's) and sets MPI_ERRORS_RETURN on the duplicate, so an MPI
 * error becomes a status instead of an abort. Every collective is started non-blocking
 * (MPI_Iallreduce, MPI_Iallgather, MPI_Isend/MPI_Irecv, MPI_Ibcast) and polled against a
 * deadline: a rank that died or stopped calling makes the others return MM_E_IO after the
 * timeout instead of hanging. MPI cannot cancel a started collective, so after a timeout the
 * communicator is poisoned (every later libmm call on it returns MM_E_STATE) and the program
 * should save what it can and call MPI_Abort. Ranks with bad input never get that far: libmm
 * agrees on a status word before every collective (see the mm_comm section of mm.h).
 * MPI must be initialised (MPI_THREAD_FUNNELED or more if other threads exist) before
 * creation and finalised after mm_comm_free.
 */
#ifndef MM_MPI_H_6A1F
#define MM_MPI_H_6A1F

#include <mpi.h>

#include "mm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates an mm_comm whose ranks are comm's ranks, with a 300 s collective timeout.
 *   out:   receives the handle; NULL on failure.
 *   comm:  an intra-communicator (MPI_COMM_WORLD or a sub-communicator); duplicated, so the
 *          caller may free its own handle afterwards. Collective over comm.
 *   alloc: as mm_comm_create.
 * Returns MM_OK, MM_E_INVALID_ARG (NULL out, MPI not initialised, MPI_COMM_NULL, bad
 * allocator), MM_E_IO (an MPI call failed), MM_E_NOMEM. Allocates: the handle and a small
 * context. Since: 0.1 */
MM_API MM_NODISCARD int mm_comm_create_mpi(mm_comm **out, MPI_Comm comm, const mm_allocator *alloc);

/* As mm_comm_create_mpi with the collective timeout in seconds (> 0; e.g. 30 for tests, hours
 * for jobs whose ranks checkpoint at different speeds). Returns MM_E_RANGE for a timeout that
 * is not positive and finite. Since: 0.1 */
MM_API MM_NODISCARD int mm_comm_create_mpi_timeout(mm_comm **out, MPI_Comm comm, double timeout_s,
                                                   const mm_allocator *alloc);

#ifdef __cplusplus
}
#endif
#endif /* MM_MPI_H_6A1F */
