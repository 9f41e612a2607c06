/* SPDX-License-Identifier: MIT */
/* model_comm.c — data-parallel mm_model (mm_model_set_comm): parameters come from rank 0 at
 * attach, and mm_model_step replaces the gradients by their mean over ranks (one fused
 * all-reduce over the flat gradient buffer) before clipping and the update, so W ranks with B
 * rows each take the step of one process with W * B rows. */
#include "../core/mmi_comm.h"
#include "mmi_model.h"

MM_API int mm_model_set_comm(mm_model *m, mm_comm *comm)
{
    static const char fn[] = "mm_model_set_comm";
    float v[2] = {0.0f, 0.0f};
    const float *all;
    int status = MM_OK, rc;
    if (!m) return MM_E_INVALID_ARG;
    if (!comm) {
        m->comm = NULL;
        return MM_OK;
    }
    if (!m->finalized)
        status = mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_finalize first", fn);
    v[0] = (float)m->n_params; /* exact below 2^24; the layer count catches the rest */
    v[1] = (float)m->n_layers;
    /* Every rank votes, so a refusing rank does not leave the others in the broadcast. */
    if ((rc = mmi_comm_vote(comm, status, v, 2, &all, &m->err, fn)) != MM_OK) return rc;
    for (int32_t r = 0; r < comm->size; r++)
        if (all[3 * r + 1] != v[0] || all[3 * r + 2] != v[1])
            return mmi_fail(&m->err, MM_E_SHAPE,
                            "%s: rank %d's model (%lld parameters, %d layers) differs from rank "
                            "%d's (%.0f, %.0f)",
                            fn, (int)comm->rank, (long long)m->n_params, (int)m->n_layers, (int)r,
                            all[3 * r + 1], all[3 * r + 2]);
    if ((rc = mmi_comm_bcast0(comm, m->params, m->n_params, &m->err, fn)) != MM_OK) return rc;
    m->comm = comm;
    return MM_OK;
}

int mmi_model_comm_average(mm_model *m, const char *fn)
{
    float w = (float)m->comm->size;
    float v = 0.0f;
    const float *all;
    int status = m->opt.kind
                     ? MM_OK
                     : mmi_fail(&m->err, MM_E_STATE, "%s: call mm_model_set_optimizer first", fn);
    int rc = mmi_comm_vote(m->comm, status, &v, 1, &all, &m->err, fn);
    if (rc != MM_OK) return rc;
    /* A NaN on any rank reaches every rank through the sum: all refuse the step together. */
    if ((rc = mmi_comm_allreduce(m->comm, m->grads, m->n_params, &m->err, fn)) != MM_OK) return rc;
    if (m->comm->size > 1)
        for (int64_t i = 0; i < m->n_params; i++) m->grads[i] /= w; /* rounded once */
    return MM_OK;
}
