/* SPDX-License-Identifier: MIT */
/*
 * mmi_ssm.h — the inside of mm_ssm: the handle, its reserved workspaces, and the per-kind
 * entry points that ssm_api.c dispatches to. Nothing here is exported.
 */
#ifndef MMI_SSM_H
#define MMI_SSM_H

#include "../core/mmi.h"
#include "../tensor/mmi_tensor.h"
#include "../kernels/ssm/mmi_ssm_kernels.h"

/* Workspace regions, carved from one allocation at create (sizes depend on the kind). */
typedef struct mmi_ssm_ws {
    float *state;      /* streaming state (mm_ssm_state) */
    float *ckpt;       /* SELECTIVE: chunk-start states; SSD: chunk input states; LRU: all h_t */
    float *bt, *ct;    /* SELECTIVE: variable B/C time-major; LRU: B e^gamma */
    double *dbt, *dct; /* backward accumulators of B/C (or LRU's complex gradient sums) */
    double *dacc;      /* per-channel accumulators (dA, dD, dbias, constant dB/dC) */
    float *work;       /* per-thread scratch, work_per_thread floats each */
    double *fft;       /* S4D/S4: twiddles and FFT buffers */
    size_t work_per_thread;
} mmi_ssm_ws;

struct mm_ssm {
    mmi_alloc alloc;
    mmi_err err;
    mm_ssm_opts opts; /* validated copy (err_buf cleared) */
    int32_t kind;
    int64_t D, N, P, G, max_batch, max_seq, chunk;
    int64_t nck_max; /* chunks of max_seq */
    int64_t nfft;    /* S4D/S4: FFT length for max_seq convolutions (>= 2 max_seq) */
    double dt_min, dt_max;
    mmi_pool *pool;
    int32_t n_threads;
    mmi_rng rng;
    void *block;
    size_t block_bytes;
    mmi_ssm_ws ws;
    int64_t state_n, position;
    /* what the last scan saved, for scan_backward */
    int32_t fwd_valid;
    int64_t fwd_batch, fwd_len;
    int32_t fwd_b_mode, fwd_c_mode;
};

/* Shape check: returns MM_OK if t is [shape...] (ndim entries), else MM_E_SHAPE with
 * "fn: name is [..] but expected [..]" (or MM_E_INVALID_ARG if t is NULL and required). */
int mmi_ssm_want(mm_ssm *h, const char *fn, const char *name, const mm_tensor *t, int32_t ndim,
                 const int64_t *shape);
/* Refuse every non-NULL input (gradient) tensor whose name is not in used, a space-separated
 * list of mm_ssm_inputs field names ("u delta A B C D"; for gradients the same names without
 * the d): MM_E_INVALID_ARG naming the first such field, so a caller learns that the kind
 * ignores what it passed instead of silently getting no effect. */
int mmi_ssm_only_inputs(mm_ssm *h, const char *fn, const mm_ssm_inputs *in, const char *used);
int mmi_ssm_only_grads(mm_ssm *h, const char *fn, const mm_ssm_grads *g, const char *used);
/* Checks a batch / length against the reservation (MM_E_RANGE with text). */
int mmi_ssm_check_bl(mm_ssm *h, const char *fn, int64_t batch, int64_t len);

/* Checks that a gradient tensor (if requested) has the shape of its input; input NULL with a
 * requested gradient is MM_E_INVALID_ARG. */
int mmi_ssm_grad_like(mm_ssm *h, const char *fn, const char *name, const mm_tensor *g,
                      const mm_tensor *in);
/* MM_OK, or MM_E_INVALID_ARG naming the first pair i > j of the n tensors t (NULL: absent)
 * that share memory, where i is an output (i >= first_out); inputs may share memory with one
 * another. The kernels read inputs after writing outputs, and an output over another output or
 * over an input came back wrong with MM_OK. */
int mmi_ssm_apart(mm_ssm *h, const char *fn, int n, const mm_tensor *const *t,
                  const char *const *name, int first_out);

/* Per-kind entry points (inputs are not yet validated unless stated). */
int mmi_ssm_sel_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last);
int mmi_ssm_sel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout,
                         mm_ssm_grads *g);
int mmi_ssm_sel_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out);
int mmi_ssm_ssd_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last);
int mmi_ssm_ssd_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout,
                         mm_ssm_grads *g);
int mmi_ssm_ssd_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out);
int mmi_ssm_lru_scan(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out, mm_tensor *last);
int mmi_ssm_lru_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dout,
                         mm_ssm_grads *g);
int mmi_ssm_lru_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out);
int mmi_ssm_s4d_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k);
int mmi_ssm_s4d_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dk,
                                mm_ssm_grads *g);
int mmi_ssm_s4d_step(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *out);
int mmi_ssm_s4_kernel(mm_ssm *h, const mm_ssm_inputs *in, mm_tensor *k);
int mmi_ssm_s4_kernel_backward(mm_ssm *h, const mm_ssm_inputs *in, const mm_tensor *dk,
                               mm_ssm_grads *g);

/* Workspace floats/doubles each kind needs (ssm.c sums them at create). */
typedef struct mmi_ssm_plan {
    size_t state, ckpt, bt, ct, dbt, dct, dacc, work_per_thread, fft;
} mmi_ssm_plan;
int mmi_ssm_plan_sizes(mm_ssm *h, mmi_ssm_plan *p);

#endif /* MMI_SSM_H */
