/* SPDX-License-Identifier: MIT */
/* test_badinput.c — bad input everywhere, table-driven.
 *
 * Every public function of mm.h is called with NULL handles and outputs, zero / negative /
 * oversized sizes, mismatched shapes, non-finite values where the header says they are refused,
 * and in the wrong lifecycle order. Each row of the table names the call, the status the
 * header documents for it (ANY where the header only promises "an error"), and where the
 * detail text must appear (the handle's errmsg, the create options' err_buf, or nowhere when
 * there is no handle). The contract checked per row: that status, a non-empty message, no
 * crash; and at the end every handle still works (bad input leaves a handle usable).
 * A second test kills a child process in the middle of mm_model_save, over and over, and
 * checks that the file at the path always loads as one complete earlier save. */
#include "hard_fixtures.h"
#include "runner.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define ANY 1 /* any negative status */

/* ---- fixture: one valid handle of each kind and tensors of known shapes ---------------------- */
typedef struct fx {
    char err[256];           /* err_buf of the create calls */
    char dir[64], path[128]; /* a private temporary directory, a file in it */
    int64_t s45[2], s00[2], sneg[2], shuge[3];
    mm_tensor *t45, *t33, *tnan45;         /* [4,5], [3,3], [4,5] holding a NaN */
    mm_model *m, *mu, *mz, *mo, *zoo;      /* finalized + Adam, unfinalized, finalized without
                                       optimizer, other architecture, every layer */
    mm_tensor *x, *y, *dy, *xbig, *xw, *v; /* x [4,5], y [4,2], batch 5, width 4, v bad */
    mm_loss *clip, *ce, *bce, *kimi;
    mm_tensor *f8, *f8b, *fnan, *f9;  /* [4,8] features, another, NaN, [9,8] > max_batch */
    mm_attn *att, *att2, *perf, *lin; /* softmax causal, fresh softmax, PERFORMER, non-causal */
    mm_tensor *q, *kk, *vv, *o, *q_bad, *v_bad, *g_pos, *w_bad, *t225, *x3, *out3, *xz, *yz;
    mm_ssm *sel, *s4d, *s4;
    hx_ssm ssel, ss4d;
    mm_policy *ppo;
    float obs[12], act[8], rew[4], nanobs[12], ws_small[16];
    uint8_t zero8[4], two8[4];
    int32_t keep[8], tgt[4], tgt_bad[4];
    int64_t lens_neg[4];
    double a16[16], b4[4];
    unsigned char junk[64];
} fx;

static fx g; /* one fixture: the table's expressions read it */

static int64_t read_fail(void *ud, void *buf, int64_t n)
{
    (void)ud, (void)buf, (void)n;
    return -1;
}

static void *bad_alloc_fn(void *ud, size_t size, size_t align)
{
    (void)ud, (void)size, (void)align;
    return NULL;
}

/* ---- create helpers with one bad setting each (err_buf attached) --------------------------- */
enum { BAD_NONE, BAD_SIZE, BAD_RESERVED, BAD_VERSION, BAD_THREADS, BAD_KIND, BAD_ALLOC };

/* Options structs followed by a non-zero "unknown field", for MM_E_VERSION. */
typedef struct {
    mm_model_opts o;
    uint64_t extra;
} model_opts_x;

static int model_create_bad(int bad)
{
    model_opts_x ox;
    mm_allocator al = {sizeof(mm_allocator), 0, bad_alloc_fn, NULL, NULL};
    mm_model *m = (mm_model *)&m;
    int rc;
    memset(&ox, 0, sizeof ox);
    CHECK_OK(mm_model_opts_init(&ox.o));
    ox.o.input_dim = 4, ox.o.err_buf = g.err, ox.o.err_buf_size = sizeof g.err;
    switch (bad) {
    case BAD_SIZE:
        ox.o.input_dim = 0;
        break;
    case BAD_RESERVED:
        ox.o.reserved1 = 1;
        break;
    case BAD_VERSION:
        ox.o.struct_size = sizeof ox, ox.extra = 1;
        break;
    case BAD_THREADS:
        ox.o.n_threads = 0;
        break;
    case BAD_ALLOC:
        al.free_fn = NULL, ox.o.alloc = &al;
        break;
    default:
        ox.o.max_batch = -3;
        break;
    }
    rc = mm_model_create(&m, &ox.o);
    if (m != NULL) mmt_fail(__FILE__, __LINE__, "model handle set on failure");
    return rc;
}

static int loss_create_bad(int bad)
{
    mm_loss_opts o;
    mm_loss *h = (mm_loss *)&h;
    int rc;
    CHECK_OK(mm_loss_opts_init(&o, MM_LOSS_CLIP));
    o.err_buf = g.err, o.err_buf_size = sizeof g.err;
    switch (bad) {
    case BAD_SIZE:
        o.max_batch = 0;
        break;
    case BAD_RESERVED:
        o.reserved0 = 1;
        break;
    case BAD_THREADS:
        o.n_threads = -1;
        break;
    case BAD_KIND:
        o.kind = 99;
        break;
    default:
        o.tile = 4;
        break;
    }
    rc = mm_loss_create(&h, &o);
    if (h != NULL) mmt_fail(__FILE__, __LINE__, "loss handle set on failure");
    return rc;
}

static int attn_create_bad(int bad)
{
    mm_attn_opts o;
    mm_attn *h = (mm_attn *)&h;
    int rc;
    hx_attn_opts(&o, MM_ATTN_SPARSE, NULL, 1);
    o.err_buf = g.err, o.err_buf_size = sizeof g.err;
    switch (bad) {
    case BAD_SIZE:
        o.d_head = 0;
        break;
    case BAD_RESERVED:
        o.reserved1 = 2;
        break;
    case BAD_KIND:
        o.causal = 0;
        break; /* SPARSE must be causal */
    case BAD_THREADS:
        o.n_threads = 0;
        break;
    default:
        o.feature_map = 42, o.kind = MM_ATTN_LINEAR;
        break;
    }
    rc = mm_attn_create(&h, &o);
    if (h != NULL) mmt_fail(__FILE__, __LINE__, "attn handle set on failure");
    return rc;
}

static int ssm_create_bad(int bad)
{
    mm_ssm_opts o;
    mm_ssm *h = (mm_ssm *)&h;
    int rc;
    hx_ssm_opts(&o, MM_SSM_S4D, NULL, 1);
    o.err_buf = g.err, o.err_buf_size = sizeof g.err;
    switch (bad) {
    case BAD_SIZE:
        o.d_state = 5;
        break; /* odd N for S4D */
    case BAD_RESERVED:
        o.reserved1 = 1;
        break;
    case BAD_THREADS:
        o.n_threads = 1000;
        break;
    case BAD_KIND:
        o.flags = 0x80;
        break;
    default:
        o.max_seq = 0;
        break;
    }
    rc = mm_ssm_create(&h, &o);
    if (h != NULL) mmt_fail(__FILE__, __LINE__, "ssm handle set on failure");
    return rc;
}

static int policy_create_bad(int bad)
{
    mm_policy_opts o;
    mm_policy *p = (mm_policy *)&p;
    static const float nan_hi[2] = {NAN, 1};
    int rc;
    hx_policy_opts(&o, MM_ALGO_TD3, 0, NULL);
    o.err_buf = g.err, o.err_buf_size = sizeof g.err;
    switch (bad) {
    case BAD_SIZE:
        o.obs_dim = 0;
        break;
    case BAD_KIND:
        o.n_actions = 4;
        break; /* discrete TD3 */
    case BAD_RESERVED:
        o.reserved1 = 1;
        break;
    case BAD_THREADS:
        o.n_hidden = 5;
        break;
    default:
        o.act_high = nan_hi;
        break;
    }
    rc = mm_policy_create(&p, &o);
    if (p != NULL) mmt_fail(__FILE__, __LINE__, "policy handle set on failure");
    return rc;
}

/* A valid forward, then a backward with the given (bad) gradients; a failing forward is
 * reported as MM_E_INTERNAL so the row fails visibly. */
static int model_fwd_bwd(const mm_tensor *dy, mm_tensor *dx);
static int attn_fwd_bwd(const mm_tensor *dout);

/* ---- the table -------------------------------------------------------------------------------
 * X(name, expected status, message source, call). Message sources: NOMSG (no handle), ERRBUF
 * (g.err, the create's err_buf) or an errmsg expression. */
#define NOMSG  NULL
#define ERRBUF g.err
#define MMSG   mm_model_errmsg(g.m)
#define F      g
static _Alignas(64) uint8_t g_big_ws[4096];
static size_t g_size;
static int64_t g_i64;
static int32_t g_i32;
static int32_t g_tok[8], g_tgt[8]; /* sampled tokens; logprob targets (all token 0) */
static double g_d;
static float *g_fp;
static mm_tensor *g_tout;
static mm_model *g_mout;
static mm_comm *g_cout;
static mm_policy *g_pout; /* mm_policy_load_new refusals leave it NULL */

#define BAD_TABLE(X)                                                                               \
    /* version, status, parameters */                                                              \
    X(status_str_unknown, MM_OK, NOMSG, strcmp(mm_status_str(12345), "unknown status"))            \
    X(status_name_unknown, MM_OK, NOMSG, strcmp(mm_status_name(-12345), "MM_E_UNKNOWN"))           \
    X(param_bounds_unknown, MM_E_UNSUPPORTED, NOMSG, mm_param_bounds(9999, NULL, NULL))            \
    X(param_bounds_negative, MM_E_UNSUPPORTED, NOMSG, mm_param_bounds(-1, &g_d, &g_d))             \
    /* tensors */                                                                                  \
    X(tensor_create_null_out, MM_E_INVALID_ARG, NOMSG, mm_tensor_create(NULL, 2, F.s45, NULL))     \
    X(tensor_create_null_shape, MM_E_INVALID_ARG, NOMSG, mm_tensor_create(&g_tout, 2, NULL, NULL)) \
    X(tensor_create_ndim0, MM_E_SHAPE, NOMSG, mm_tensor_create(&g_tout, 0, F.s45, NULL))           \
    X(tensor_create_ndim9, MM_E_SHAPE, NOMSG, mm_tensor_create(&g_tout, 9, F.shuge, NULL))         \
    X(tensor_create_ndim_neg, MM_E_SHAPE, NOMSG, mm_tensor_create(&g_tout, -2, F.s45, NULL))       \
    X(tensor_create_zero, MM_E_SHAPE, NOMSG, mm_tensor_create(&g_tout, 2, F.s00, NULL))            \
    X(tensor_create_negative, MM_E_SHAPE, NOMSG, mm_tensor_create(&g_tout, 2, F.sneg, NULL))       \
    X(tensor_create_huge, MM_E_RANGE, NOMSG, mm_tensor_create(&g_tout, 3, F.shuge, NULL))          \
    X(tensor_wrap_null_data, MM_E_INVALID_ARG, NOMSG,                                              \
      mm_tensor_wrap(&g_tout, NULL, 2, F.s45, NULL))                                               \
    X(tensor_wrap_huge, MM_E_RANGE, NOMSG, mm_tensor_wrap(&g_tout, F.obs, 3, F.shuge, NULL))       \
    X(tensor_ndim_null, MM_E_INVALID_ARG, NOMSG, mm_tensor_ndim(NULL))                             \
    X(tensor_dim_null, MM_E_INVALID_ARG, NOMSG, (int)mm_tensor_dim(NULL, 0))                       \
    X(tensor_dim_axis, MM_E_RANGE, NOMSG, (int)mm_tensor_dim(F.t45, 2))                            \
    X(tensor_dim_axis_neg, MM_E_RANGE, NOMSG, (int)mm_tensor_dim(F.t45, -3))                       \
    X(tensor_numel_null, MM_E_INVALID_ARG, NOMSG, (int)mm_tensor_numel(NULL))                      \
    X(tensor_data_null, MM_OK, NOMSG, mm_tensor_data(NULL) != NULL)                                \
    X(tensor_reshape_null, MM_E_INVALID_ARG, NOMSG, mm_tensor_reshape(NULL, 2, F.s45))             \
    X(tensor_reshape_null_shape, MM_E_INVALID_ARG, mm_tensor_errmsg(F.t45),                        \
      mm_tensor_reshape(F.t45, 2, NULL))                                                           \
    X(tensor_reshape_numel, MM_E_SHAPE, mm_tensor_errmsg(F.t45),                                   \
      mm_tensor_reshape(F.t45, 2, (int64_t[]){3, 3}))                                              \
    X(tensor_reshape_ndim0, MM_E_SHAPE, mm_tensor_errmsg(F.t45),                                   \
      mm_tensor_reshape(F.t45, 0, F.s45))                                                          \
    X(tensor_reshape_negative, MM_E_SHAPE, mm_tensor_errmsg(F.t45),                                \
      mm_tensor_reshape(F.t45, 2, (int64_t[]){-4, -5}))                                            \
    X(tensor_fill_null, MM_E_INVALID_ARG, NOMSG, mm_tensor_fill(NULL, 1))                          \
    X(tensor_copy_null_dst, MM_E_INVALID_ARG, NOMSG, mm_tensor_copy(NULL, F.t45))                  \
    X(tensor_copy_null_src, MM_E_INVALID_ARG, mm_tensor_errmsg(F.t45),                             \
      mm_tensor_copy(F.t45, NULL))                                                                 \
    X(tensor_copy_shape, MM_E_SHAPE, mm_tensor_errmsg(F.t45), mm_tensor_copy(F.t45, F.t33))        \
    /* sgemm */                                                                                    \
    X(sgemm_bad_trans, MM_E_INVALID_ARG, NOMSG,                                                    \
      mm_sgemm(2, 0, 1, 1, 1, 1, F.obs, 1, F.obs, 1, 0, F.act, 1, NULL, 0))                        \
    X(sgemm_negative_m, MM_E_SHAPE, NOMSG,                                                         \
      mm_sgemm(0, 0, -1, 1, 1, 1, F.obs, 1, F.obs, 1, 0, F.act, 1, NULL, 0))                       \
    X(sgemm_small_lda, MM_E_SHAPE, NOMSG,                                                          \
      mm_sgemm(0, 0, 2, 2, 3, 1, F.obs, 2, F.obs, 2, 0, F.act, 2, NULL, 0))                        \
    X(sgemm_null_a, MM_E_INVALID_ARG, NOMSG,                                                       \
      mm_sgemm(0, 0, 2, 2, 2, 1, NULL, 2, F.obs, 2, 0, F.act, 2, NULL, 0))                         \
    X(sgemm_c_aliases_a, MM_E_INVALID_ARG, NOMSG,                                                  \
      mm_sgemm(0, 0, 2, 2, 2, 1, F.act, 2, F.obs, 2, 0, F.act, 2, NULL, 0))                        \
    X(sgemm_small_ws, MM_E_INVALID_ARG, NOMSG,                                                     \
      mm_sgemm(0, 0, 2, 2, 2, 1, F.obs, 2, F.obs, 2, 0, F.act, 2, g_big_ws, 64))                   \
    X(sgemm_misaligned_ws, MM_E_INVALID_ARG, NOMSG,                                                \
      mm_sgemm(0, 0, 2, 2, 2, 1, F.obs, 2, F.obs, 2, 0, F.act, 2, g_big_ws + 4, 4000))             \
    X(sgemm_overflow, MM_E_RANGE, NOMSG,                                                           \
      mm_sgemm(0, 0, INT64_MAX / 2, INT64_MAX / 2, 4, 1, F.obs, 4, F.obs, INT64_MAX / 2, 0, F.act, \
               INT64_MAX / 2, NULL, 0))                                                            \
    /* model construction */                                                                       \
    X(model_opts_init_null, MM_E_INVALID_ARG, NOMSG, mm_model_opts_init(NULL))                     \
    X(model_create_null_out, MM_E_INVALID_ARG, NOMSG, mm_model_create(NULL, NULL))                 \
    X(model_create_null_opts, MM_E_INVALID_ARG, NOMSG, mm_model_create(&g_mout, NULL))             \
    X(model_create_input_dim0, MM_E_INVALID_ARG, ERRBUF, model_create_bad(BAD_SIZE))               \
    X(model_create_reserved, MM_E_INVALID_ARG, ERRBUF, model_create_bad(BAD_RESERVED))             \
    X(model_create_version, MM_E_VERSION, ERRBUF, model_create_bad(BAD_VERSION))                   \
    X(model_create_threads0, MM_E_INVALID_ARG, ERRBUF, model_create_bad(BAD_THREADS))              \
    X(model_create_bad_alloc, MM_E_INVALID_ARG, ERRBUF, model_create_bad(BAD_ALLOC))               \
    X(model_create_neg_batch, MM_E_INVALID_ARG, ERRBUF, model_create_bad(BAD_NONE))                \
    X(model_add_dense_null, MM_E_INVALID_ARG, NOMSG, mm_model_add_dense(NULL, 4, 1, 0, 1))         \
    X(model_add_dense_zero, MM_E_RANGE, mm_model_errmsg(F.mu),                                     \
      mm_model_add_dense(F.mu, 0, 1, 0, 1))                                                        \
    X(model_add_dense_neg, MM_E_RANGE, mm_model_errmsg(F.mu),                                      \
      mm_model_add_dense(F.mu, -7, 1, 0, 1))                                                       \
    X(model_add_dense_bias2, MM_E_INVALID_ARG, mm_model_errmsg(F.mu),                              \
      mm_model_add_dense(F.mu, 4, 2, 0, 1))                                                        \
    X(model_add_dense_init, MM_E_INVALID_ARG, mm_model_errmsg(F.mu),                               \
      mm_model_add_dense(F.mu, 4, 1, 9, 1))                                                        \
    X(model_add_dense_gain_nan, MM_E_INVALID_ARG, mm_model_errmsg(F.mu),                           \
      mm_model_add_dense(F.mu, 4, 1, MM_INIT_ORTHOGONAL, NAN))                                     \
    X(model_add_dense_finalized, MM_E_STATE, MMSG, mm_model_add_dense(F.m, 4, 1, 0, 1))            \
    X(model_add_act_kind, MM_E_INVALID_ARG, mm_model_errmsg(F.mu),                                 \
      mm_model_add_activation(F.mu, 99))                                                           \
    X(model_add_act_null, MM_E_INVALID_ARG, NOMSG, mm_model_add_activation(NULL, MM_ACT_RELU))     \
    X(model_add_ln_eps0, MM_E_RANGE, mm_model_errmsg(F.mu), mm_model_add_layernorm(F.mu, 0, 1))    \
    X(model_add_ln_eps_nan, MM_E_RANGE, mm_model_errmsg(F.mu),                                     \
      mm_model_add_layernorm(F.mu, NAN, 1))                                                        \
    X(model_add_rms_eps2, MM_E_RANGE, mm_model_errmsg(F.mu), mm_model_add_rmsnorm(F.mu, 2, 1))     \
    X(model_add_embed_zero, MM_E_RANGE, mm_model_errmsg(F.mu), mm_model_add_embedding(F.mu, 0, 4)) \
    X(model_add_attention_null, MM_E_INVALID_ARG, mm_model_errmsg(F.mu),                           \
      mm_model_add_attention(F.mu, NULL))                                                          \
    X(model_add_gau_neg, ANY, mm_model_errmsg(F.mu), mm_model_add_gau(F.mu, -1, 4, 1, 2))          \
    X(model_add_mamba_zero, MM_E_RANGE, mm_model_errmsg(F.mu),                                     \
      mm_model_add_mamba(F.mu, 0, 4, 2, 0))                                                        \
    X(model_add_s4d_odd, MM_E_RANGE, mm_model_errmsg(F.mu), mm_model_add_s4d(F.mu, 3))             \
    X(model_add_s4d_finalized, MM_E_STATE, MMSG, mm_model_add_s4d(F.m, 4))                         \
    X(model_finalize_null, MM_E_INVALID_ARG, NOMSG, mm_model_finalize(NULL))                       \
    X(model_finalize_twice, MM_E_STATE, MMSG, mm_model_finalize(F.m))                              \
    X(model_finalize_empty, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_finalize(F.mu))            \
    /* model execution */                                                                          \
    X(model_forward_null, MM_E_INVALID_ARG, NOMSG, mm_model_forward(NULL, F.x, F.y))               \
    X(model_forward_null_x, MM_E_INVALID_ARG, MMSG, mm_model_forward(F.m, NULL, F.y))              \
    X(model_forward_null_y, MM_E_INVALID_ARG, MMSG, mm_model_forward(F.m, F.x, NULL))              \
    X(model_forward_unfinalized, MM_E_STATE, mm_model_errmsg(F.mu),                                \
      mm_model_forward(F.mu, F.x, F.y))                                                            \
    X(model_forward_width, MM_E_SHAPE, MMSG, mm_model_forward(F.m, F.xw, F.y))                     \
    X(model_forward_batch, MM_E_RANGE, MMSG, mm_model_forward(F.m, F.xbig, F.y))                   \
    X(model_forward_y_shape, MM_E_SHAPE, MMSG, mm_model_forward(F.m, F.x, F.t45))                  \
    X(model_backward_null, MM_E_INVALID_ARG, NOMSG, mm_model_backward(NULL, F.dy, NULL))           \
    X(model_backward_no_forward, MM_E_STATE, mm_model_errmsg(F.mz),                                \
      mm_model_backward(F.mz, F.dy, NULL))                                                         \
    X(model_backward_dy_shape, MM_E_SHAPE, MMSG, model_fwd_bwd(F.t45, NULL))                       \
    X(model_backward_dx_shape, MM_E_SHAPE, MMSG, model_fwd_bwd(F.dy, F.t33))                       \
    X(model_jvp_null_x, MM_E_INVALID_ARG, MMSG, mm_model_jvp(F.m, NULL, F.v, NULL, F.y))           \
    X(model_jvp_v_size, MM_E_SHAPE, MMSG, mm_model_jvp(F.m, F.x, F.t45, NULL, F.y))                \
    X(model_jvp_null_v, ANY, MMSG, mm_model_jvp(F.m, F.x, NULL, NULL, F.y))                        \
    X(model_ws_size_batch0, MM_E_RANGE, NOMSG, mm_model_infer_workspace_size(F.m, 0, 1, &g_size))  \
    X(model_ws_size_null, MM_E_INVALID_ARG, NOMSG, mm_model_infer_workspace_size(F.m, 1, 1, NULL)) \
    X(model_ws_size_unfinalized, MM_E_STATE, NOMSG,                                                \
      mm_model_infer_workspace_size(F.mu, 1, 1, &g_size))                                          \
    X(model_infer_null_ws, MM_E_INVALID_ARG, NOMSG, mm_model_infer(F.m, F.x, F.y, NULL, 0))        \
    X(model_infer_small_ws, MM_E_INVALID_ARG, NOMSG, mm_model_infer(F.m, F.x, F.y, g_big_ws, 64))  \
    X(model_infer_misaligned, MM_E_INVALID_ARG, NOMSG,                                             \
      mm_model_infer(F.m, F.x, F.y, g_big_ws + 8, 4000))                                           \
    X(model_infer_width, MM_E_SHAPE, NOMSG, mm_model_infer(F.m, F.xw, F.y, g_big_ws, 4096))        \
    X(model_num_params_null, MM_E_INVALID_ARG, NOMSG, mm_model_num_params(NULL, &g_i64))           \
    X(model_num_params_out, MM_E_INVALID_ARG, MMSG, mm_model_num_params(F.m, NULL))                \
    X(model_num_params_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                 \
      mm_model_num_params(F.mu, &g_i64))                                                           \
    X(model_params_unfinal, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_params(F.mu, &g_fp, NULL)) \
    X(model_params_null_data, MM_E_INVALID_ARG, MMSG, mm_model_params(F.m, NULL, NULL))            \
    X(model_grads_null, MM_E_INVALID_ARG, NOMSG, mm_model_grads(NULL, &g_fp, NULL))                \
    X(model_zero_grad_unfinal, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_zero_grad(F.mu))        \
    X(model_set_opt_kind, MM_E_INVALID_ARG, mm_model_errmsg(F.mz),                                 \
      mm_model_set_optimizer(F.mz, 99))                                                            \
    X(model_set_opt_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                    \
      mm_model_set_optimizer(F.mu, MM_OPT_SGD))                                                    \
    X(model_set_unknown, MM_E_UNSUPPORTED, MMSG, mm_model_set_f64(F.m, 9999, 1))                   \
    X(model_set_lr_negative, MM_E_RANGE, MMSG, mm_model_set_f64(F.m, MM_MODEL_LR, -1))             \
    X(model_set_lr_nan, MM_E_RANGE, MMSG, mm_model_set_f64(F.m, MM_MODEL_LR, NAN))                 \
    X(model_set_lr_inf, MM_E_RANGE, MMSG, mm_model_set_f64(F.m, MM_MODEL_LR, INFINITY))            \
    X(model_set_readonly, MM_E_UNSUPPORTED, MMSG, mm_model_set_f64(F.m, MM_MODEL_STAT_STEPS, 1))   \
    X(model_set_other_opt, MM_E_UNSUPPORTED, MMSG, mm_model_set_f64(F.m, MM_MODEL_ALPHA, 0.5))     \
    X(model_set_flag_half, MM_E_RANGE, MMSG, mm_model_set_f64(F.m, MM_MODEL_AMSGRAD, 0.5))         \
    X(model_set_no_opt, MM_E_STATE, mm_model_errmsg(F.mz),                                         \
      mm_model_set_f64(F.mz, MM_MODEL_LR, 0.1))                                                    \
    X(model_get_null, MM_E_INVALID_ARG, MMSG, mm_model_get_f64(F.m, MM_MODEL_LR, NULL))            \
    X(model_get_unknown, MM_E_UNSUPPORTED, MMSG, mm_model_get_f64(F.m, 12, &g_d))                  \
    X(model_step_no_opt, MM_E_STATE, mm_model_errmsg(F.mz), mm_model_step(F.mz))                   \
    X(model_step_null, MM_E_INVALID_ARG, NOMSG, mm_model_step(NULL))                               \
    X(model_freeze_range, MM_E_RANGE, MMSG, mm_model_freeze(F.m, 3, 10, 1))                        \
    X(model_freeze_negative, MM_E_RANGE, MMSG, mm_model_freeze(F.m, -1, 1, 1))                     \
    X(model_freeze_unfinal, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_freeze(F.mu, 0, 1, 1))     \
    X(model_copy_self, MM_E_INVALID_ARG, MMSG, mm_model_copy(F.m, F.m, 0))                         \
    X(model_copy_null_src, MM_E_INVALID_ARG, MMSG, mm_model_copy(F.m, NULL, 0))                    \
    X(model_copy_arch, MM_E_SHAPE, MMSG, mm_model_copy(F.m, F.mo, 0))                              \
    X(model_copy_no_opt, MM_E_STATE, MMSG, mm_model_copy(F.m, F.mz, 1))                            \
    X(model_lerp_tau, MM_E_RANGE, MMSG, mm_model_lerp(F.m, F.mz, 1.5))                             \
    X(model_lerp_nan, MM_E_RANGE, MMSG, mm_model_lerp(F.m, F.mz, NAN))                             \
    X(model_lerp_arch, MM_E_SHAPE, MMSG, mm_model_lerp(F.m, F.mo, 0.5))                            \
    X(model_num_layers_null, MM_E_INVALID_ARG, NOMSG, mm_model_num_layers(NULL, &g_i32))           \
    X(model_output_dim_out, MM_E_INVALID_ARG, MMSG, mm_model_output_dim(F.m, NULL))                \
    X(model_decode_size_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                \
      mm_model_decode_state_size(F.mu, 1, &g_size))                                                \
    X(model_decode_unsupported, MM_E_UNSUPPORTED, mm_model_errmsg(F.zoo),                          \
      mm_model_decode_step(F.zoo, F.xz, F.yz, g_big_ws, 4096))                                     \
    X(model_decode_null, MM_E_INVALID_ARG, NOMSG, mm_model_decode_step(NULL, F.x, F.y, NULL, 0))   \
    X(model_seed_null, MM_E_INVALID_ARG, NOMSG, mm_model_seed(NULL, 1))                            \
    X(model_seed_unfinal, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_seed(F.mu, 1))               \
    X(model_sample_null, MM_E_INVALID_ARG, NOMSG,                                                  \
      mm_model_sample(NULL, F.y, 1, 0, 1, g_tok, 4, NULL))                                         \
    X(model_sample_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                     \
      mm_model_sample(F.mu, F.y, 1, 0, 1, g_tok, 4, NULL))                                         \
    X(model_sample_width, MM_E_SHAPE, MMSG, mm_model_sample(F.m, F.x, 1, 0, 1, g_tok, 4, NULL))    \
    X(model_sample_top_p, MM_E_RANGE, MMSG, mm_model_sample(F.m, F.y, 1, 0, 0, g_tok, 4, NULL))    \
    X(model_sample_temp_nan, MM_E_RANGE, MMSG,                                                     \
      mm_model_sample(F.m, F.y, NAN, 0, 1, g_tok, 4, NULL))                                        \
    X(model_logprob_null, MM_E_INVALID_ARG, NOMSG, mm_model_logprob(NULL, F.x, g_tgt, 4, F.y))     \
    X(model_logprob_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                    \
      mm_model_logprob(F.mu, F.x, g_tgt, 4, F.y))                                                  \
    X(model_logprob_count, MM_E_SHAPE, MMSG, mm_model_logprob(F.m, F.x, g_tgt, 4, F.y))            \
    X(model_logprob_targets, MM_E_SHAPE, MMSG, mm_model_logprob(F.m, F.x, g_tgt, 3, F.y))          \
    X(model_logprob_bwd_null, MM_E_INVALID_ARG, NOMSG,                                             \
      mm_model_logprob_backward(NULL, g_tgt, 4, F.y))                                              \
    X(model_logprob_bwd_unfinal, MM_E_STATE, mm_model_errmsg(F.mu),                                \
      mm_model_logprob_backward(F.mu, g_tgt, 4, F.y))                                              \
    /* model files */                                                                              \
    X(model_save_null_path, MM_E_INVALID_ARG, MMSG, mm_model_save(F.m, NULL, 0))                   \
    X(model_save_flags, MM_E_INVALID_ARG, MMSG, mm_model_save(F.m, F.path, 0x80))                  \
    X(model_save_unfinal, MM_E_STATE, mm_model_errmsg(F.mu), mm_model_save(F.mu, F.path, 0))       \
    X(model_save_no_dir, MM_E_IO, MMSG, mm_model_save(F.m, "/nonexistent-dir/x/m.safetensors", 0)) \
    X(model_save_mem_nothing, MM_E_INVALID_ARG, MMSG, mm_model_save_mem(F.m, NULL, 0, NULL, 0))    \
    X(model_save_mem_small, MM_E_BUFFER_TOO_SMALL, MMSG,                                           \
      mm_model_save_mem(F.m, F.junk, 8, &g_size, 0))                                               \
    X(model_load_null_out, MM_E_INVALID_ARG, NOMSG, mm_model_load(NULL, F.path, NULL))             \
    X(model_load_null_path, MM_E_INVALID_ARG, NOMSG, mm_model_load(&g_mout, NULL, NULL))           \
    X(model_load_missing, MM_E_IO, NOMSG, mm_model_load(&g_mout, "/nonexistent-dir/m", NULL))      \
    X(model_load_mem_junk, MM_E_FORMAT, NOMSG, mm_model_load_mem(&g_mout, F.junk, 64, NULL))       \
    X(model_load_mem_null, MM_E_INVALID_ARG, NOMSG, mm_model_load_mem(&g_mout, NULL, 64, NULL))    \
    X(model_load_mem_empty, MM_E_FORMAT, NOMSG, mm_model_load_mem(&g_mout, F.junk, 0, NULL))       \
    X(model_load_cb_null, MM_E_INVALID_ARG, NOMSG, mm_model_load_cb(&g_mout, NULL, NULL, NULL))    \
    X(model_load_cb_fail, MM_E_IO, NOMSG, mm_model_load_cb(&g_mout, read_fail, NULL, NULL))        \
    /* losses */                                                                                   \
    X(loss_opts_init_null, MM_E_INVALID_ARG, NOMSG, mm_loss_opts_init(NULL, MM_LOSS_CLIP))         \
    X(loss_opts_init_kind, MM_E_INVALID_ARG, NOMSG, mm_loss_opts_init(&(mm_loss_opts){0}, 99))     \
    X(loss_create_null, MM_E_INVALID_ARG, NOMSG, mm_loss_create(NULL, NULL))                       \
    X(loss_create_batch0, MM_E_RANGE, ERRBUF, loss_create_bad(BAD_SIZE))                           \
    X(loss_create_reserved, MM_E_INVALID_ARG, ERRBUF, loss_create_bad(BAD_RESERVED))               \
    X(loss_create_threads, MM_E_RANGE, ERRBUF, loss_create_bad(BAD_THREADS))                       \
    X(loss_create_kind, MM_E_INVALID_ARG, ERRBUF, loss_create_bad(BAD_KIND))                       \
    X(loss_create_tile, MM_E_RANGE, ERRBUF, loss_create_bad(BAD_NONE))                             \
    X(loss_set_unknown, MM_E_UNSUPPORTED, mm_loss_errmsg(F.clip),                                  \
      mm_loss_set_f64(F.clip, 9999, 1))                                                            \
    X(loss_set_range, MM_E_RANGE, mm_loss_errmsg(F.clip),                                          \
      mm_loss_set_f64(F.clip, MM_LOSS_LOGIT_SCALE, 11))                                            \
    X(loss_set_nan, MM_E_RANGE, mm_loss_errmsg(F.clip),                                            \
      mm_loss_set_f64(F.clip, MM_LOSS_LOGIT_SCALE, NAN))                                           \
    X(loss_set_other_kind, MM_E_UNSUPPORTED, mm_loss_errmsg(F.clip),                               \
      mm_loss_set_f64(F.clip, MM_LOSS_LABEL_SMOOTHING, 0.1))                                       \
    X(loss_set_readonly, MM_E_UNSUPPORTED, mm_loss_errmsg(F.clip),                                 \
      mm_loss_set_f64(F.clip, MM_LOSS_STAT_LOSS, 1))                                               \
    X(loss_set_ignore_frac, MM_E_RANGE, mm_loss_errmsg(F.ce),                                      \
      mm_loss_set_f64(F.ce, MM_LOSS_IGNORE_INDEX, 1.5))                                            \
    X(loss_get_null, MM_E_INVALID_ARG, NOMSG, mm_loss_get_f64(F.clip, MM_LOSS_LOGIT_SCALE, NULL))  \
    X(loss_clip_null_h, MM_E_INVALID_ARG, NOMSG,                                                   \
      mm_loss_clip(NULL, F.f8, F.f8b, NULL, NULL, NULL))                                           \
    X(loss_clip_null_x, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                                  \
      mm_loss_clip(F.clip, NULL, F.f8b, NULL, NULL, NULL))                                         \
    X(loss_clip_shape, MM_E_SHAPE, mm_loss_errmsg(F.clip),                                         \
      mm_loss_clip(F.clip, F.f8, F.t45, NULL, NULL, NULL))                                         \
    X(loss_clip_nan, MM_E_NUMERIC, mm_loss_errmsg(F.clip),                                         \
      mm_loss_clip(F.clip, F.fnan, F.f8b, NULL, NULL, NULL))                                       \
    X(loss_clip_batch, MM_E_RANGE, mm_loss_errmsg(F.clip),                                         \
      mm_loss_clip(F.clip, F.f9, F.f9, NULL, NULL, NULL))                                          \
    X(loss_clip_alias, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                                   \
      mm_loss_clip(F.clip, F.f8, F.f8b, NULL, F.f8, NULL))                                         \
    X(loss_clip_wrong_kind, MM_E_INVALID_ARG, mm_loss_errmsg(F.ce),                                \
      mm_loss_clip(F.ce, F.f8, F.f8b, NULL, NULL, NULL))                                           \
    X(loss_siglip_wrong_kind, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                            \
      mm_loss_siglip(F.clip, F.f8, F.f8b, NULL, NULL, NULL))                                       \
    X(loss_itc_wrong_kind, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                               \
      mm_loss_itc(F.clip, F.f8, F.f8, F.f8, F.f8, NULL, NULL, NULL, NULL, NULL))                   \
    X(loss_ce_null_targets, MM_E_INVALID_ARG, mm_loss_errmsg(F.ce),                                \
      mm_loss_cross_entropy(F.ce, F.f8, NULL, 4, NULL, NULL))                                      \
    X(loss_ce_n_targets, MM_E_SHAPE, mm_loss_errmsg(F.ce),                                         \
      mm_loss_cross_entropy(F.ce, F.f8, F.tgt, 3, NULL, NULL))                                     \
    X(loss_ce_target_range, MM_E_RANGE, mm_loss_errmsg(F.ce),                                      \
      mm_loss_cross_entropy(F.ce, F.f8, F.tgt_bad, 4, NULL, NULL))                                 \
    X(loss_ce_nan, MM_E_NUMERIC, mm_loss_errmsg(F.ce),                                             \
      mm_loss_cross_entropy(F.ce, F.fnan, F.tgt, 4, NULL, NULL))                                   \
    X(loss_bce_target_range, MM_E_RANGE, mm_loss_errmsg(F.bce),                                    \
      mm_loss_bce(F.bce, F.f8, F.f8b, NULL, NULL))                                                 \
    X(loss_bce_shape, MM_E_SHAPE, mm_loss_errmsg(F.bce),                                           \
      mm_loss_bce(F.bce, F.f8, F.t45, NULL, NULL))                                                 \
    X(loss_kimi_group, MM_E_SHAPE, mm_loss_errmsg(F.kimi),                                         \
      mm_loss_kimi(F.kimi, F.t33, F.t33, F.t33, NULL, NULL))                                       \
    X(loss_kimi_len_negative, MM_E_RANGE, mm_loss_errmsg(F.kimi),                                  \
      mm_loss_kimi_length_reward(F.kimi, F.lens_neg, F.v, 2, F.v))                                 \
    X(loss_kimi_len_group0, MM_E_RANGE, mm_loss_errmsg(F.kimi),                                    \
      mm_loss_kimi_length_reward(F.kimi, F.lens_neg, F.v, 0, F.v))                                 \
    X(loss_l2_null, MM_E_INVALID_ARG, NOMSG, mm_loss_l2_normalize(NULL, F.f8, F.f8))               \
    X(loss_l2_shape, MM_E_SHAPE, mm_loss_errmsg(F.clip),                                           \
      mm_loss_l2_normalize(F.clip, F.f8, F.t45))                                                   \
    X(loss_l2_nan, MM_E_NUMERIC, mm_loss_errmsg(F.clip),                                           \
      mm_loss_l2_normalize(F.clip, F.fnan, F.f8b))                                                 \
    X(loss_l2_bwd_shape, MM_E_SHAPE, mm_loss_errmsg(F.clip),                                       \
      mm_loss_l2_normalize_backward(F.clip, F.f8, F.t45, F.f8b))                                   \
    X(loss_flip_draw_keep0, MM_E_RANGE, mm_loss_errmsg(F.clip),                                    \
      mm_loss_flip_draw(F.clip, 1, 8, 0, F.keep))                                                  \
    X(loss_flip_draw_keep_many, MM_E_RANGE, mm_loss_errmsg(F.clip),                                \
      mm_loss_flip_draw(F.clip, 1, 4, 5, F.keep))                                                  \
    X(loss_flip_draw_null, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                               \
      mm_loss_flip_draw(F.clip, 1, 8, 2, NULL))                                                    \
    X(loss_flip_gather_index, MM_E_RANGE, mm_loss_errmsg(F.clip),                                  \
      mm_loss_flip_gather(F.clip, F.x3, F.keep, 1, F.out3))                                        \
    X(loss_blip_null_neg, MM_E_INVALID_ARG, mm_loss_errmsg(F.clip),                                \
      mm_loss_blip_hard_negatives(F.clip, F.f8, NULL, 0, NULL))                                    \
    X(loss_set_comm_null, MM_E_INVALID_ARG, NOMSG, mm_loss_set_comm(NULL, NULL, 0))                \
    /* attention */                                                                                \
    X(attn_opts_init_null, MM_E_INVALID_ARG, NOMSG, mm_attn_opts_init(NULL, MM_ATTN_SOFTMAX))      \
    X(attn_create_null, MM_E_INVALID_ARG, NOMSG, mm_attn_create(NULL, NULL))                       \
    X(attn_create_d0, MM_E_RANGE, ERRBUF, attn_create_bad(BAD_SIZE))                               \
    X(attn_create_reserved, MM_E_INVALID_ARG, ERRBUF, attn_create_bad(BAD_RESERVED))               \
    X(attn_create_noncausal_sparse, MM_E_INVALID_ARG, ERRBUF, attn_create_bad(BAD_KIND))           \
    X(attn_create_threads0, ANY, ERRBUF, attn_create_bad(BAD_THREADS))                             \
    X(attn_create_fmap, MM_E_INVALID_ARG, ERRBUF, attn_create_bad(BAD_NONE))                       \
    X(attn_forward_null, MM_E_INVALID_ARG, NOMSG, mm_attn_forward(NULL, F.q, F.kk, F.vv, F.o))     \
    X(attn_forward_null_q, MM_E_INVALID_ARG, mm_attn_errmsg(F.att),                                \
      mm_attn_forward(F.att, NULL, F.kk, F.vv, F.o))                                               \
    X(attn_forward_shape, MM_E_SHAPE, mm_attn_errmsg(F.att),                                       \
      mm_attn_forward(F.att, F.q, F.kk, F.q, F.o))                                                 \
    X(attn_forward_rank, MM_E_SHAPE, mm_attn_errmsg(F.att),                                        \
      mm_attn_forward(F.att, F.t45, F.kk, F.vv, F.o))                                              \
    X(attn_forward_seq, MM_E_RANGE, mm_attn_errmsg(F.att),                                         \
      mm_attn_forward(F.att, F.q_bad, F.q_bad, F.v_bad, F.v_bad))                                  \
    X(attn_gated_wrong_kind, MM_E_STATE, mm_attn_errmsg(F.att),                                    \
      mm_attn_forward_gated(F.att, F.q, F.kk, F.vv, F.g_pos, F.o))                                 \
    X(attn_backward_no_forward, MM_E_STATE, mm_attn_errmsg(F.att2),                                \
      mm_attn_backward(F.att2, F.o, NULL, NULL, NULL, NULL))                                       \
    X(attn_backward_shape, MM_E_SHAPE, mm_attn_errmsg(F.att), attn_fwd_bwd(F.q))                   \
    X(attn_step_noncausal, MM_E_STATE, mm_attn_errmsg(F.lin),                                      \
      mm_attn_step(F.lin, F.t45, F.t45, F.t45, NULL, F.t45))                                       \
    X(attn_step_shape, MM_E_SHAPE, mm_attn_errmsg(F.att),                                          \
      mm_attn_step(F.att, F.t225, F.t225, F.t225, NULL, F.t225))                                   \
    X(attn_reset_null, MM_E_INVALID_ARG, NOMSG, mm_attn_reset(NULL))                               \
    X(attn_redraw_wrong_kind, MM_E_STATE, mm_attn_errmsg(F.att), mm_attn_redraw(F.att))            \
    X(attn_get_proj_shape, MM_E_SHAPE, mm_attn_errmsg(F.perf),                                     \
      mm_attn_get_projection(F.perf, F.t45))                                                       \
    X(attn_set_proj_nan, MM_E_NUMERIC, mm_attn_errmsg(F.perf),                                     \
      mm_attn_set_projection(F.perf, F.w_bad))                                                     \
    X(attn_set_proj_kind, MM_E_STATE, mm_attn_errmsg(F.att),                                       \
      mm_attn_set_projection(F.att, F.w_bad))                                                      \
    X(attn_set_unknown, MM_E_UNSUPPORTED, mm_attn_errmsg(F.att), mm_attn_set_f64(F.att, 9999, 1))  \
    X(attn_set_scale0, MM_E_RANGE, mm_attn_errmsg(F.att),                                          \
      mm_attn_set_f64(F.att, MM_ATTN_SCALE, 0))                                                    \
    X(attn_set_readonly, MM_E_UNSUPPORTED, mm_attn_errmsg(F.att),                                  \
      mm_attn_set_f64(F.att, MM_ATTN_STAT_POSITION, 1))                                            \
    X(attn_get_null, MM_E_INVALID_ARG, NOMSG, mm_attn_get_f64(F.att, MM_ATTN_SCALE, NULL))         \
    /* ssm */                                                                                      \
    X(hippo_measure, MM_E_INVALID_ARG, NOMSG, mm_hippo(99, 4, F.a16, F.b4))                        \
    X(hippo_n0, MM_E_RANGE, NOMSG, mm_hippo(MM_HIPPO_LEGS, 0, F.a16, F.b4))                        \
    X(hippo_fout_odd, MM_E_RANGE, NOMSG, mm_hippo(MM_HIPPO_FOUT, 3, F.a16, F.b4))                  \
    X(hippo_null_a, MM_E_INVALID_ARG, NOMSG, mm_hippo(MM_HIPPO_LEGS, 4, NULL, F.b4))               \
    X(hippo_rank0, MM_E_RANGE, NOMSG, mm_hippo_rank_correction(MM_HIPPO_LEGS, 4, 0, F.a16, NULL))  \
    X(hippo_rank17, MM_E_RANGE, NOMSG,                                                             \
      mm_hippo_rank_correction(MM_HIPPO_LEGS, 4, 17, F.a16, NULL))                                 \
    X(discretize_method, MM_E_INVALID_ARG, NOMSG,                                                  \
      mm_ssm_discretize(9, 0, 4, F.a16, F.b4, 0.1, F.a16, F.b4, NULL))                             \
    X(discretize_flags, MM_E_INVALID_ARG, NOMSG,                                                   \
      mm_ssm_discretize(MM_DISC_ZOH, 8, 4, F.a16, F.b4, 0.1, F.a16, F.b4, NULL))                   \
    X(discretize_dt0, MM_E_RANGE, NOMSG,                                                           \
      mm_ssm_discretize(MM_DISC_ZOH, 0, 4, F.a16, F.b4, 0, F.a16, F.b4, NULL))                     \
    X(discretize_dt_nan, MM_E_RANGE, NOMSG,                                                        \
      mm_ssm_discretize(MM_DISC_ZOH, 0, 4, F.a16, F.b4, NAN, F.a16, F.b4, NULL))                   \
    X(discretize_n0, MM_E_RANGE, NOMSG,                                                            \
      mm_ssm_discretize(MM_DISC_ZOH, 0, 0, F.a16, F.b4, 0.1, F.a16, F.b4, NULL))                   \
    X(discretize_null, MM_E_INVALID_ARG, NOMSG,                                                    \
      mm_ssm_discretize(MM_DISC_ZOH, 0, 4, NULL, F.b4, 0.1, F.a16, F.b4, NULL))                    \
    X(ssm_inputs_init_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_inputs_init(NULL))                     \
    X(ssm_grads_init_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_grads_init(NULL))                       \
    X(ssm_opts_init_kind, MM_E_INVALID_ARG, NOMSG, mm_ssm_opts_init(&(mm_ssm_opts){0}, 0))         \
    X(ssm_create_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_create(NULL, NULL))                         \
    X(ssm_create_odd_n, MM_E_RANGE, ERRBUF, ssm_create_bad(BAD_SIZE))                              \
    X(ssm_create_reserved, MM_E_INVALID_ARG, ERRBUF, ssm_create_bad(BAD_RESERVED))                 \
    X(ssm_create_threads, MM_E_RANGE, ERRBUF, ssm_create_bad(BAD_THREADS))                         \
    X(ssm_create_flags, MM_E_INVALID_ARG, ERRBUF, ssm_create_bad(BAD_KIND))                        \
    X(ssm_create_seq0, MM_E_RANGE, ERRBUF, ssm_create_bad(BAD_NONE))                               \
    X(ssm_scan_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_scan(NULL, &F.ssel.scan, F.ssel.out, NULL))   \
    X(ssm_scan_null_in, MM_E_INVALID_ARG, mm_ssm_errmsg(F.sel),                                    \
      mm_ssm_scan(F.sel, NULL, F.ssel.out, NULL))                                                  \
    X(ssm_scan_out_shape, MM_E_SHAPE, mm_ssm_errmsg(F.sel),                                        \
      mm_ssm_scan(F.sel, &F.ssel.scan, F.t45, NULL))                                               \
    X(ssm_scan_wrong_kind, MM_E_INVALID_ARG, mm_ssm_errmsg(F.s4d),                                 \
      mm_ssm_scan(F.s4d, &F.ssel.scan, F.ssel.out, NULL))                                          \
    X(ssm_scan_bwd_no_scan, MM_E_STATE, mm_ssm_errmsg(F.sel),                                      \
      mm_ssm_scan_backward(F.sel, &F.ssel.scan, F.ssel.dout, &F.ssel.g))                           \
    X(ssm_kernel_wrong_kind, MM_E_INVALID_ARG, mm_ssm_errmsg(F.sel),                               \
      mm_ssm_kernel(F.sel, &F.ss4d.scan, F.ss4d.k))                                                \
    X(ssm_kernel_shape, MM_E_SHAPE, mm_ssm_errmsg(F.s4d),                                          \
      mm_ssm_kernel(F.s4d, &F.ss4d.scan, F.t33))                                                   \
    X(ssm_conv_alias, MM_E_INVALID_ARG, mm_ssm_errmsg(F.s4d),                                      \
      mm_ssm_conv(F.s4d, F.ss4d.cu, F.ss4d.k, NULL, F.ss4d.cu))                                    \
    X(ssm_conv_shape, MM_E_SHAPE, mm_ssm_errmsg(F.s4d),                                            \
      mm_ssm_conv(F.s4d, F.ss4d.cu, F.t45, NULL, F.ss4d.out))                                      \
    X(ssm_conv_bwd_null, MM_E_INVALID_ARG, NOMSG,                                                  \
      mm_ssm_conv_backward(NULL, F.ss4d.cu, F.ss4d.k, NULL, F.ss4d.out, NULL, NULL, NULL))         \
    X(ssm_step_s4, MM_E_UNSUPPORTED, mm_ssm_errmsg(F.s4), mm_ssm_step(F.s4, &F.ss4d.step, F.t45))  \
    X(ssm_step_shape, MM_E_SHAPE, mm_ssm_errmsg(F.sel), mm_ssm_step(F.sel, &F.ssel.step, F.t45))   \
    X(ssm_reset_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_reset(NULL))                                 \
    X(ssm_state_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_state(NULL, &g_fp, NULL))                    \
    X(ssm_set_chunk0, ANY, /* header: settable; impl: read-only */ mm_ssm_errmsg(F.sel),           \
      mm_ssm_set_f64(F.sel, MM_SSM_CHUNK, 0))                                                      \
    X(ssm_set_unknown, MM_E_UNSUPPORTED, mm_ssm_errmsg(F.sel), mm_ssm_set_f64(F.sel, 9999, 0))     \
    X(ssm_set_readonly, MM_E_UNSUPPORTED, mm_ssm_errmsg(F.sel),                                    \
      mm_ssm_set_f64(F.sel, MM_SSM_STAT_POSITION, 0))                                              \
    X(ssm_get_null, MM_E_INVALID_ARG, NOMSG, mm_ssm_get_f64(F.sel, MM_SSM_CHUNK, NULL))            \
    X(ssm_s4d_init_variant, MM_E_INVALID_ARG, NOMSG, mm_ssm_s4d_init(9, 2, 4, F.obs, F.act))       \
    X(ssm_s4d_init_odd, MM_E_RANGE, NOMSG, mm_ssm_s4d_init(MM_S4D_LIN, 2, 3, F.obs, F.act))        \
    X(ssm_lru_init_kind, MM_E_INVALID_ARG, mm_ssm_errmsg(F.sel),                                   \
      mm_ssm_lru_init(F.sel, 0.5, 0.9, 6.28, NULL, NULL, NULL, NULL, NULL, NULL))                  \
    /* policies */                                                                                 \
    X(policy_opts_init_null, MM_E_INVALID_ARG, NOMSG, mm_policy_opts_init(NULL, MM_ALGO_PPO))      \
    X(policy_opts_init_algo, MM_E_INVALID_ARG, NOMSG,                                              \
      mm_policy_opts_init(&(mm_policy_opts){0}, 0))                                                \
    X(policy_create_null, MM_E_INVALID_ARG, NOMSG, mm_policy_create(NULL, NULL))                   \
    X(policy_create_obs0, MM_E_INVALID_ARG, ERRBUF, policy_create_bad(BAD_SIZE))                   \
    X(policy_create_discrete_td3, MM_E_INVALID_ARG, ERRBUF, policy_create_bad(BAD_KIND))           \
    X(policy_create_reserved, MM_E_INVALID_ARG, ERRBUF, policy_create_bad(BAD_RESERVED))           \
    X(policy_create_hidden5, MM_E_INVALID_ARG, ERRBUF, policy_create_bad(BAD_THREADS))             \
    X(policy_create_nan_bound, MM_E_INVALID_ARG, ERRBUF, policy_create_bad(BAD_NONE))              \
    X(policy_act_null, MM_E_INVALID_ARG, NOMSG, mm_policy_act(NULL, F.obs, 1, F.act, 0))           \
    X(policy_act_null_obs, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                              \
      mm_policy_act(F.ppo, NULL, 1, F.act, 0))                                                     \
    X(policy_act_null_actions, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                          \
      mm_policy_act(F.ppo, F.obs, 1, NULL, 0))                                                     \
    X(policy_act_n0, MM_E_RANGE, mm_policy_errmsg(F.ppo),                                          \
      mm_policy_act(F.ppo, F.obs, 0, F.act, 0))                                                    \
    X(policy_act_n_neg, MM_E_RANGE, mm_policy_errmsg(F.ppo),                                       \
      mm_policy_act(F.ppo, F.obs, -1, F.act, 0))                                                   \
    X(policy_act_n5, MM_E_RANGE, mm_policy_errmsg(F.ppo),                                          \
      mm_policy_act(F.ppo, F.obs, 5, F.act, 0))                                                    \
    X(policy_act_nan, MM_E_NUMERIC, mm_policy_errmsg(F.ppo),                                       \
      mm_policy_act(F.ppo, F.nanobs, 4, F.act, 0))                                                 \
    X(policy_observe_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                              \
      mm_policy_observe(F.ppo, F.obs, F.act, NULL, F.obs, F.zero8, F.zero8, 4))                    \
    X(policy_observe_n, MM_E_SHAPE, mm_policy_errmsg(F.ppo),                                       \
      mm_policy_observe(F.ppo, F.obs, F.act, F.rew, F.obs, F.zero8, F.zero8, 2))                   \
    X(policy_observe_nan, MM_E_NUMERIC, mm_policy_errmsg(F.ppo),                                   \
      mm_policy_observe(F.ppo, F.nanobs, F.act, F.rew, F.obs, F.zero8, F.zero8, 4))                \
    X(policy_observe_flag2, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                             \
      mm_policy_observe(F.ppo, F.obs, F.act, F.rew, F.obs, F.two8, F.zero8, 4))                    \
    X(policy_update_null, MM_E_INVALID_ARG, NOMSG, mm_policy_update(NULL, NULL))                   \
    X(policy_budget_null, MM_E_INVALID_ARG, NOMSG, mm_policy_update_budget(NULL, 1, NULL))         \
    X(policy_budget_zero, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                               \
      mm_policy_update_budget(F.ppo, 0, NULL))                                                     \
    X(policy_set_unknown, MM_E_UNSUPPORTED, mm_policy_errmsg(F.ppo),                               \
      mm_policy_set_f64(F.ppo, 9999, 1))                                                           \
    X(policy_set_range, MM_E_RANGE, mm_policy_errmsg(F.ppo),                                       \
      mm_policy_set_f64(F.ppo, MM_POLICY_GAMMA, 1.5))                                              \
    X(policy_set_nan, MM_E_RANGE, mm_policy_errmsg(F.ppo),                                         \
      mm_policy_set_f64(F.ppo, MM_POLICY_GAMMA, NAN))                                              \
    X(policy_set_readonly, MM_E_UNSUPPORTED, mm_policy_errmsg(F.ppo),                              \
      mm_policy_set_f64(F.ppo, MM_POLICY_STAT_KL, 1))                                              \
    X(policy_get_null, MM_E_INVALID_ARG, NOMSG, mm_policy_get_f64(F.ppo, MM_POLICY_GAMMA, NULL))   \
    X(policy_save_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo), mm_policy_save(F.ppo, NULL))    \
    X(policy_save_no_dir, MM_E_IO, mm_policy_errmsg(F.ppo),                                        \
      mm_policy_save(F.ppo, "/nonexistent-dir/x/p.safetensors"))                                   \
    X(policy_load_missing, MM_E_IO, mm_policy_errmsg(F.ppo),                                       \
      mm_policy_load(F.ppo, "/nonexistent"))                                                       \
    X(policy_load_model_file, MM_E_FORMAT, mm_policy_errmsg(F.ppo), mm_policy_load(F.ppo, F.path)) \
    X(policy_set_comm_null, MM_E_INVALID_ARG, NOMSG, mm_policy_set_comm(NULL, NULL))               \
    X(policy_save_ex_flags, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                             \
      mm_policy_save_ex(F.ppo, "/nonexistent-dir/p.safetensors", 0x80))                            \
    X(policy_save_mem_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                             \
      mm_policy_save_mem(F.ppo, NULL, 0, NULL, 0))                                                 \
    X(policy_load_mem_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                             \
      mm_policy_load_mem(F.ppo, NULL, 0))                                                          \
    X(policy_load_mem_short, MM_E_FORMAT, mm_policy_errmsg(F.ppo),                                 \
      mm_policy_load_mem(F.ppo, F.obs, 3))                                                         \
    X(policy_load_cb_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                              \
      mm_policy_load_cb(F.ppo, NULL, NULL))                                                        \
    X(policy_load_new_null, MM_E_INVALID_ARG, NOMSG, mm_policy_load_new(NULL, F.path, NULL))       \
    X(policy_load_new_model_file, MM_E_FORMAT, NOMSG, mm_policy_load_new(&g_pout, F.path, NULL))   \
    X(policy_export_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                               \
      mm_policy_export(F.ppo, NULL, NULL))                                                         \
    X(policy_export_io_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                            \
      mm_policy_export_io(F.ppo, NULL, NULL, NULL, NULL, NULL))                                    \
    X(policy_export_save_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                          \
      mm_policy_export_save(F.ppo, NULL))                                                          \
    X(policy_export_copy_null, MM_E_INVALID_ARG, mm_policy_errmsg(F.ppo),                          \
      mm_policy_export_copy(F.ppo, NULL))                                                          \
    /* communicators (only what needs no transport) */                                             \
    X(comm_create_null, MM_E_INVALID_ARG, NOMSG, mm_comm_create(NULL, NULL, NULL))                 \
    X(comm_create_null_cb, MM_E_INVALID_ARG, NOMSG, mm_comm_create(&g_cout, NULL, NULL))           \
    X(comm_create_empty_cb, MM_E_INVALID_ARG, NOMSG,                                               \
      mm_comm_create(&g_cout,                                                                      \
                     &(mm_comm_callbacks){sizeof(mm_comm_callbacks), 0, NULL, 0, 1, NULL, NULL,    \
                                          NULL, NULL, NULL},                                       \
                     NULL))                                                                        \
    X(comm_rank_null, MM_E_INVALID_ARG, NOMSG, mm_comm_rank(NULL))                                 \
    X(comm_size_null, MM_E_INVALID_ARG, NOMSG, mm_comm_size(NULL))

/* Two functions per row: the call (its status) and the message to read after it. */
#define X_FN(name, want, msg, call)                                                                \
    static int bad_##name(void) { return (call); }                                                 \
    static const char *msg_##name(void) { return (msg); }
BAD_TABLE(X_FN)
#undef X_FN

typedef struct bad_case {
    const char *name;
    int want;
    int (*fn)(void);
    const char *(*msg)(void);
} bad_case;
#define X_ROW(name, want, msg, call) {#name, want, bad_##name, msg_##name},
static const bad_case g_cases[] = {BAD_TABLE(X_ROW)};
#undef X_ROW

static int model_fwd_bwd(const mm_tensor *dy, mm_tensor *dx)
{
    if (mm_model_forward(g.m, g.x, g.y) != MM_OK) return MM_E_INTERNAL;
    return mm_model_backward(g.m, dy, dx);
}

static int attn_fwd_bwd(const mm_tensor *dout)
{
    if (mm_attn_forward(g.att, g.q, g.kk, g.vv, g.o) != MM_OK) return MM_E_INTERNAL;
    return mm_attn_backward(g.att, dout, NULL, NULL, NULL, NULL);
}

/* ---- fixture setup ---------------------------------------------------------------------------- */
static void fx_models(void)
{
    mm_model_opts o;
    CHECK_OK(hx_build_mlp(&g.m, NULL, 5, 2, 4, 1, 1));
    CHECK_OK(hx_build_mlp(&g.mz, NULL, 5, 2, 4, 1, 2));
    CHECK_OK(hx_build_mlp(&g.mo, NULL, 5, 3, 4, 1, 3));
    CHECK_OK(hx_build_zoo(&g.zoo, NULL, 1, 4));
    CHECK_OK(mm_model_set_optimizer(g.m, MM_OPT_ADAM));
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 5;
    CHECK_OK(mm_model_create(&g.mu, &o));
    g.x = HX_T(1, -1, 1, 4, 5), g.y = HX_T(0, 0, 0, 4, 2), g.dy = HX_T(2, -1, 1, 4, 2);
    g.xz = HX_T(19, -1, 1, 2, HX_ZOO_IN), g.yz = HX_T(0, 0, 0, 2, HX_ZOO_OUT);
    g.xbig = HX_T(3, -1, 1, 5, 5), g.xw = HX_T(4, -1, 1, 4, 4), g.v = HX_T(5, 0, 1, 4);
}

static void fx_losses(void)
{
    static const int32_t kinds[4] = {MM_LOSS_CLIP, MM_LOSS_CROSS_ENTROPY, MM_LOSS_BCE,
                                     MM_LOSS_KIMI};
    mm_loss **hs[4] = {&g.clip, &g.ce, &g.bce, &g.kimi};
    for (int i = 0; i < 4; i++) {
        mm_loss_opts o;
        CHECK_OK(mm_loss_opts_init(&o, kinds[i]));
        o.max_batch = 8, o.max_dim = 8, o.tile = 8, o.group_size = 2;
        CHECK_OK(mm_loss_create(hs[i], &o));
    }
    g.f8 = HX_T(6, -1, 1, 4, 8), g.f8b = HX_T(7, 1.5f, 2, 4, 8), g.fnan = HX_T(8, -1, 1, 4, 8);
    g.f9 = HX_T(9, -1, 1, 9, 8);
    mm_tensor_data(g.fnan)[5] = NAN;
    for (int i = 0; i < 4; i++) g.tgt[i] = i, g.tgt_bad[i] = i == 2 ? 8 : i, g.lens_neg[i] = i - 1;
    for (int i = 0; i < 8; i++) g.keep[i] = 100;
}

static void fx_attn(void)
{
    mm_attn_opts o;
    hx_attn_opts(&o, MM_ATTN_SOFTMAX, NULL, 1);
    CHECK_OK(mm_attn_create(&g.att, &o));
    CHECK_OK(mm_attn_create(&g.att2, &o));
    hx_attn_opts(&o, MM_ATTN_PERFORMER, NULL, 1);
    CHECK_OK(mm_attn_create(&g.perf, &o));
    hx_attn_opts(&o, MM_ATTN_LINEAR, NULL, 1);
    o.causal = 0;
    CHECK_OK(mm_attn_create(&g.lin, &o));
    g.q = HX_T(10, -1, 1, HX_AB, HX_AH, HX_AN, HX_AD),
    g.kk = HX_T(11, -1, 1, HX_AB, HX_AH, HX_AN, HX_AD);
    g.vv = HX_T(12, -1, 1, HX_AB, HX_AH, HX_AN, HX_ADV), g.o = hx_like(g.vv);
    g.q_bad = HX_T(13, -1, 1, 1, HX_AH, 40, HX_AD); /* N = 40 > max_seq 16 */
    g.v_bad = HX_T(16, -1, 1, 1, HX_AH, 40, HX_ADV), g.t225 = HX_T(17, -1, 1, 2, 2, 5);
    g.x3 = HX_T(18, -1, 1, 2, 6, 4), g.out3 = HX_T(0, 0, 0, 2, 1, 4);
    g.g_pos = HX_T(14, 0.1f, 1, HX_AB, HX_AH, HX_AN);
    g.w_bad = HX_T(15, -1, 1, 16, HX_AD);
    mm_tensor_data(g.w_bad)[3] = INFINITY;
}

static void fx_ssm(void)
{
    mm_ssm_opts o;
    hx_ssm_open(&g.ssel, MM_SSM_SELECTIVE);
    hx_ssm_open(&g.ss4d, MM_SSM_S4D);
    hx_ssm_opts(&o, MM_SSM_SELECTIVE, NULL, 1);
    CHECK_OK(mm_ssm_create(&g.sel, &o));
    hx_ssm_opts(&o, MM_SSM_S4D, NULL, 1);
    CHECK_OK(mm_ssm_create(&g.s4d, &o));
    hx_ssm_opts(&o, MM_SSM_S4, NULL, 1);
    CHECK_OK(mm_ssm_create(&g.s4, &o));
    for (int i = 0; i < 16; i++) g.a16[i] = i % 5 == 0 ? -1 : 0;
    for (int i = 0; i < 4; i++) g.b4[i] = 1;
}

static int fx_open(void)
{
    mm_policy_opts po;
    memset(&g, 0, sizeof g);
    snprintf(g.dir, sizeof g.dir, "/tmp/mm_test_bad_XXXXXX");
    if (!mkdtemp(g.dir)) return 0;
    snprintf(g.path, sizeof g.path, "%s/m.safetensors", g.dir);
    g.s45[0] = 4, g.s45[1] = 5, g.sneg[0] = 4, g.sneg[1] = -5;
    g.shuge[0] = g.shuge[1] = g.shuge[2] = (int64_t)1 << 20;
    g.t45 = HX_T(20, -1, 1, 4, 5), g.t33 = HX_T(21, -1, 1, 3, 3), g.tnan45 = HX_T(22, -1, 1, 4, 5);
    mm_tensor_data(g.tnan45)[7] = NAN;
    fx_models();
    fx_losses();
    fx_attn();
    fx_ssm();
    hx_policy_opts(&po, MM_ALGO_PPO, 1, NULL);
    CHECK_OK(mm_policy_create(&g.ppo, &po));
    mmt_fill_uniform(g.obs, 12, 30, -1, 1);
    memcpy(g.nanobs, g.obs, sizeof g.obs);
    g.nanobs[4] = NAN;
    for (int i = 0; i < 4; i++) g.two8[i] = 2, g.rew[i] = 0.5f;
    for (int i = 0; i < 64; i++) g.junk[i] = (unsigned char)(i * 37 + 11);
    CHECK_OK(mm_model_save(g.m, g.path, 0)); /* a model file, for policy_load_model_file */
    return g.m && g.mu && g.mz && g.mo && g.zoo && g.clip && g.ce && g.bce && g.kimi && g.att &&
           g.att2 && g.perf && g.lin && g.sel && g.s4d && g.s4 && g.ppo;
}

/* Every handle still works after the bad calls. */
static void fx_still_usable(void)
{
    double loss = 0;
    int32_t did;
    CHECK_OK(mm_model_forward(g.m, g.x, g.y));
    CHECK_OK(mm_model_backward(g.m, g.dy, NULL));
    CHECK_OK(mm_model_step(g.m));
    CHECK_OK(mm_model_add_dense(g.mu, 3, 1, MM_INIT_DEFAULT, 1));
    CHECK_OK(mm_model_finalize(g.mu));
    CHECK_OK(mm_loss_clip(g.clip, g.f8, g.f8b, &loss, NULL, NULL));
    CHECK_OK(mm_loss_cross_entropy(g.ce, g.f8, g.tgt, 4, &loss, NULL));
    CHECK_OK(mm_attn_forward(g.att, g.q, g.kk, g.vv, g.o));
    CHECK_OK(mm_attn_backward(g.att, g.o, NULL, NULL, NULL, NULL));
    CHECK_OK(mm_ssm_scan(g.sel, &g.ssel.scan, g.ssel.out, NULL));
    CHECK_OK(mm_ssm_kernel(g.s4d, &g.ss4d.scan, g.ss4d.k));
    CHECK_OK(mm_policy_act(g.ppo, g.obs, 4, g.act, 1));
    CHECK_OK(mm_policy_observe(g.ppo, g.obs, g.act, g.rew, g.obs, g.zero8, g.zero8, 4));
    CHECK_OK(mm_policy_update(g.ppo, &did));
}

static void fx_close(void)
{
    mm_tensor *ts[] = {g.t45,   g.t33,   g.tnan45, g.x,    g.y,  g.dy,   g.xbig, g.xw, g.v,
                       g.f8,    g.f8b,   g.fnan,   g.f9,   g.q,  g.kk,   g.vv,   g.o,  g.q_bad,
                       g.v_bad, g.g_pos, g.w_bad,  g.t225, g.x3, g.out3, g.xz,   g.yz};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) mm_tensor_free(ts[i]);
    mm_model_free(g.m), mm_model_free(g.mu), mm_model_free(g.mz), mm_model_free(g.mo);
    mm_model_free(g.zoo);
    mm_loss_free(g.clip), mm_loss_free(g.ce), mm_loss_free(g.bce), mm_loss_free(g.kimi);
    mm_attn_free(g.att), mm_attn_free(g.att2), mm_attn_free(g.perf), mm_attn_free(g.lin);
    mm_ssm_free(g.sel), mm_ssm_free(g.s4d), mm_ssm_free(g.s4);
    hx_ssm_close(&g.ssel), hx_ssm_close(&g.ss4d);
    mm_policy_free(g.ppo);
    unlink(g.path);
    rmdir(g.dir);
}

static void test_table(void)
{
    int n = (int)(sizeof g_cases / sizeof g_cases[0]);
    if (!fx_open()) {
        mmt_fail(__FILE__, __LINE__, "fixture setup failed");
        fx_close();
        return;
    }
    for (int i = 0; i < n; i++) {
        const bad_case *c = &g_cases[i];
        const char *msg;
        int rc;
        g.err[0] = '\0';
        g_tout = (mm_tensor *)&g_tout, g_mout = (mm_model *)&g_mout, g_cout = (mm_comm *)&g_cout;
        rc = c->fn();
        msg = c->msg();
        if (c->want == ANY ? rc >= 0 : rc != c->want)
            mmt_fail(__FILE__, __LINE__, "%s: got %s (%d), want %s", c->name, mm_status_name(rc),
                     rc, c->want == ANY ? "an error" : mm_status_name(c->want));
        else if (c->want != MM_OK && msg != NULL && msg[0] == '\0')
            mmt_fail(__FILE__, __LINE__, "%s: %s without a message", c->name, mm_status_name(rc));
        /* a failed create or load leaves its output NULL (the pointers were set non-NULL) */
        if (rc < 0 && (g_tout == NULL) + (g_mout == NULL) + (g_cout == NULL) == 0 &&
            strstr(c->name, "_null_out") == NULL && strstr(c->name, "create_null") == NULL &&
            (strstr(c->name, "tensor_create") || strstr(c->name, "tensor_wrap") ||
             strstr(c->name, "model_load") || strstr(c->name, "comm_create")))
            mmt_fail(__FILE__, __LINE__, "%s: output not set to NULL", c->name);
    }
    /* NULL handles: every errmsg says so, every free is a no-op */
    CHECK(strcmp(mm_tensor_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_model_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_loss_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_attn_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_ssm_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_policy_errmsg(NULL), "invalid handle") == 0);
    CHECK(strcmp(mm_comm_errmsg(NULL), "invalid handle") == 0);
    mm_tensor_free(NULL), mm_model_free(NULL), mm_loss_free(NULL), mm_attn_free(NULL);
    mm_ssm_free(NULL), mm_policy_free(NULL), mm_comm_free(NULL);
    fx_still_usable();
    fx_close();
}

/* Non-finite gradients: step refuses with MM_E_NUMERIC and changes nothing. */
static void test_step_numeric(void)
{
    mm_model *m = NULL;
    float *p, *gr, before[8];
    int64_t n = 0;
    CHECK_OK(hx_build_mlp(&m, NULL, 3, 2, 2, 1, 1));
    if (!m) return;
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAMW));
    CHECK_OK(mm_model_params(m, &p, &n));
    CHECK_OK(mm_model_grads(m, &gr, NULL));
    memcpy(before, p, sizeof before);
    gr[3] = NAN;
    CHECK_STATUS(mm_model_step(m), MM_E_NUMERIC);
    CHECK(strlen(mm_model_errmsg(m)) > 0);
    CHECK(memcmp(before, p, sizeof before) == 0);
    gr[3] = INFINITY;
    CHECK_STATUS(mm_model_step(m), MM_E_NUMERIC);
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_step(m));
    mm_model_free(m);
}

/* ---- atomic save against a process killed mid-save ------------------------------------------- */
/* The child saves the model again and again, with every parameter set to the iteration number,
 * until it is killed; the parent then loads whatever is at the path: it must load, and hold one
 * single iteration's parameters (no mix of two saves, no truncated file). */
static void saver_child(mm_model *m, const char *path)
{
    float *p;
    int64_t n;
    if (mm_model_params(m, &p, &n) != MM_OK) _exit(2);
    for (int it = 1;; it++) {
        for (int64_t i = 0; i < n; i++) p[i] = (float)it;
        if (mm_model_save(m, path, 0) != MM_OK) _exit(3);
    }
}

static int remove_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512]; /* a directory of ours (< 64 bytes) plus a d_name of at most 255 */
    int n = 0;
    if (!d) return 0;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp.")) {
            int len = snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (len > 0 && (size_t)len < sizeof p) unlink(p), n++;
        }
    closedir(d);
    return n;
}

/* Returns the iteration found in the file; saves only move forward. */
static float check_file_whole(const char *path, int round, float prev)
{
    float it = prev;
    mm_model *l = NULL;
    float *p;
    int64_t n = 0;
    int rc = mm_model_load(&l, path, NULL);
    if (rc != MM_OK) {
        mmt_fail(__FILE__, __LINE__, "round %d: the file does not load: %s", round,
                 mm_status_name(rc));
        return prev;
    }
    CHECK_OK(mm_model_params(l, &p, &n));
    for (int64_t i = 1; i < n; i++)
        if (p[i] != p[0]) {
            mmt_fail(__FILE__, __LINE__, "round %d: parameters of two saves mixed (%g, %g)", round,
                     (double)p[0], (double)p[i]);
            break;
        }
    if (n > 0) it = p[0];
    mm_model_free(l);
    return it;
}

static void test_atomic_save_killed(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    char dir[64] = "/tmp/mm_test_kill_XXXXXX", path[96];
    int rounds = mmt_quick() ? 3 : 12, left = 0;
    float *p = NULL, last = 0;
    int completed = 0;
    int64_t n = 0;
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 512;
    CHECK_OK(mm_model_create(&m, &o));
    if (!m) return;
    CHECK_OK(mm_model_add_dense(m, 1024, 1, MM_INIT_DEFAULT, 1)); /* ~2 MiB per file */
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_params(m, &p, &n));
    for (int64_t i = 0; i < n; i++) p[i] = 0; /* iteration 0 */
    CHECK_OK(mm_model_save(m, path, 0));      /* the file that must survive */
    for (int r = 0; r < rounds; r++) {
        /* 1..120 ms: some kills land in write, some in fsync or rename, some after saves */
        struct timespec ts = {0, (long)(1 + (r * 7919) % 120) * 1000000L};
        int status = 0;
        pid_t pid = fork();
        if (pid == 0) saver_child(m, path);
        if (pid < 0) break;
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status)); /* killed while saving, not failed */
        left += remove_tmp_files(dir);
        last = check_file_whole(path, r, last);
        completed += last > 0;
    }
    if (getenv("MM_TEST_VERBOSE"))
        printf("  %d rounds, %d temporary files left by kills, %d with a newer file\n", rounds,
               left, completed);
    mm_model_free(m);
    unlink(path);
    rmdir(dir);
}

void suite_badinput(void)
{
    mmt_run("badinput/table", test_table);
    mmt_run("badinput/step_numeric", test_step_numeric);
    mmt_run("badinput/atomic_save_killed", test_atomic_save_killed);
}
