/* SPDX-License-Identifier: MIT */
/*
 * mmi_model.h — the inside of mm_model: the layer interface every block implements, the model
 * struct, and the enumeration that serialization (src/model/model_io.c) and later floors
 * (src/policy) use. Nothing here is exported.
 *
 * A model is a stack of layers. Every layer maps an input [B, T, in_dim] to an output
 * [B, T, out_dim] (2-D inputs are T = 1); the layers of this release act on the last axis row by
 * row, later blocks (attention, GAU, Mamba, S4D) use B and T. A layer never allocates while
 * computing: everything it needs is sized through its vtable at finalize time.
 *
 * Adding a layer kind: write layer_<kind>.c with a const mmi_layer_vt, add its MMI_LAYER_* id
 * and list the vtable in mmi_layer_vt_find (layers.c). The model core, the optimizers and
 * save/load then handle it without change.
 */
#ifndef MMI_MODEL_H
#define MMI_MODEL_H

#include "../core/mmi.h"

/* ---- layer kinds: stable numbers (saved in files), never reused ---------------------------- */
enum {
    MMI_LAYER_DENSE = 1,
    MMI_LAYER_ACT = 2,
    MMI_LAYER_LAYERNORM = 3,
    MMI_LAYER_RMSNORM = 4,
    MMI_LAYER_EMBEDDING = 5,
    MMI_LAYER_ATTENTION = 6, /* layer_attn.c */
    MMI_LAYER_GAU = 7,       /* layer_gau.c */
    MMI_LAYER_MAMBA = 8,     /* layer_mamba.c */
    MMI_LAYER_S4D = 9,       /* layer_s4d.c */
    MMI_LAYER_XATTN = 10     /* layer_xattn.c: cross-attention to the call's context */
};

#define MMI_LAYER_MAX_CFG     8  /* integer and double config entries per layer */
#define MMI_LAYER_MAX_TENSORS 9  /* parameter tensors per layer (Mamba has 9) */
#define MMI_TENSOR_NAME_MAX   24 /* suffix such as "weight", NUL included */

/* One parameter tensor of a layer, named like the PyTorch module attribute. */
typedef struct mmi_ptensor {
    char name[MMI_TENSOR_NAME_MAX]; /* "weight", "bias" */
    int32_t ndim;                   /* 1..4 */
    int64_t shape[4];               /* PyTorch layout: Linear weight is [out, in] */
    int64_t numel;
    int64_t offset; /* in floats, from the start of the model's flat parameter buffer */
} mmi_ptensor;

/* The sizes of one call: x is [batch, seq, in_dim], rows = batch * seq. */
typedef struct mmi_exec {
    int64_t batch, seq, rows;
    void *gemm_ws;  /* mmi_gemm workspace for the pool below (64-byte aligned) */
    mmi_pool *pool; /* NULL: single thread */
    mmi_err *err;   /* where a refusing layer writes its text; NULL in mm_model_infer */
    /* Context tokens of the cross-attention layers (mm_model_forward_ctx): [batch, ctx_len,
     * ctx_dim] row-major, NULL when the call has none (every other layer ignores these). In
     * backward, ctx may be NULL (the layers keep a copy) and dctx, when not NULL, receives the
     * context gradient: the model zeroes it, each cross-attention layer adds its part. */
    const float *ctx;
    int64_t ctx_len, ctx_dim;
    float *dctx;
} mmi_exec;

typedef struct mmi_layer mmi_layer;

/* The layer interface. Pointers p (parameters), g (gradients) and v (direction) point at the
 * layer's own slice of the flat buffers. saved is the layer's region kept from forward to
 * backward/jvp (NULL when forward is an inference that keeps nothing); scratch is per call. */
typedef struct mmi_layer_vt {
    const char *kind_name; /* stable: "dense", "activation", "layernorm", ... */
    int32_t kind;          /* MMI_LAYER_* */
    /* Validates l->icfg/l->dcfg for input width l->in_dim; sets out_dim, n_params and the
     * tensor table (offsets relative to the layer). Returns MM_OK or a code with text. */
    int (*setup)(mmi_layer *l, mmi_err *e, const char *fn);
    /* Bytes of saved state and of scratch for a call of batch x seq (monotone in both), and
     * *gemm_ws = 1 if its forward calls mmi_gemm on a shape that uses the GEMM workspace
     * (mmi_gemm_needs_ws), so mm_model_infer reserves that only when some layer needs it. */
    void (*sizes)(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved, size_t *scratch,
                  int *gemm_ws);
    /* Draws the initial parameters into p (n_params floats) from rng; work holds
     * l->init_work doubles (0 if the layer needs none). */
    void (*init)(const mmi_layer *l, float *p, mmi_rng *rng, double *work);
    /* y = f(x). May refuse input (embedding: MM_E_RANGE with text in c->err if set). */
    int (*forward)(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                   void *saved, void *scratch);
    /* Given dy, accumulates parameter gradients into g (NULL: frozen, skip) and writes the
     * input gradient into dx (NULL: not needed). x, y, saved are those of the last forward. */
    void (*backward)(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                     const float *y, const void *saved, const float *dy, float *dx, float *g,
                     void *scratch);
    /* Forward-mode: ty = (df/dx) tx + (df/dp) v at the last forward's x (tx NULL: zero). */
    void (*jvp)(const mmi_layer *l, const mmi_exec *c, const float *p, const float *v,
                const float *x, const float *tx, const float *y, const void *saved, float *ty,
                void *scratch);
} mmi_layer_vt;

struct mmi_layer {
    const mmi_layer_vt *vt;
    /* The configuration exactly as the mm_model_add_* call gave it (saved in files; loading
     * replays it through mmi_model_add_layer). Meaning per kind:
     *   dense:      icfg = {out_features, bias(0/1), init(MM_INIT_*)}, dcfg = {gain}
     *   activation: icfg = {MM_ACT_*}
     *   layernorm:  icfg = {affine(0/1)}, dcfg = {eps}
     *   rmsnorm:    icfg = {affine(0/1)}, dcfg = {eps}
     *   embedding:  icfg = {num_embeddings, embedding_dim}
     *   cross_attention: icfg = {heads, d_head, ctx_dim, max_ctx} */
    int64_t icfg[MMI_LAYER_MAX_CFG];
    double dcfg[MMI_LAYER_MAX_CFG];
    int32_t n_icfg, n_dcfg;
    int64_t in_dim, out_dim; /* widths of the last axis */
    int64_t n_params;
    int64_t param_offset; /* first float of this layer in the flat buffers */
    int32_t n_tensors;
    mmi_ptensor tensors[MMI_LAYER_MAX_TENSORS]; /* offsets absolute after finalize */
    int64_t init_work;                          /* doubles of init work space */
    int32_t frozen;                             /* mm_model_freeze: no gradient, no update */
    /* Filled by finalize: byte offsets of this layer's regions in the model arena. */
    size_t saved_off, saved_bytes;
    size_t scratch_bytes;
};

/* A dense layer's forward y = x W^T + b with the activation act (MM_ACT_*) of the layer after it
 * fused into the GEMM's epilogue: ya = act(y) (ya NULL: no activation, y alone; ya == y: in
 * place, y then holds act(y); ya must not alias x). y and ya are bitwise the two layers' own forwards; the executors call it for every dense -> activation
 * pair (one pass over y fewer, and while y is in cache). */
void mmi_dense_forward_act(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           float *y, int32_t act, float *ya);

/* The first layer's W kept transposed across forwards (mmi_model_forward_kept). The caller owns
 * panel (mmi_model_kept_w_floats(m) floats) and the staleness: of names the model whose W the
 * panel holds, NULL when nothing current is held; a caller that writes, loads or copies into
 * that model's parameters (or lets anything do so) sets of = NULL before its next forward. */
typedef struct mmi_kept_w {
    float *panel;
    const mm_model *of;
} mmi_kept_w;

/* As mmi_dense_forward_act, over kw's panel of W^T (formed first when kw->of != m) where the
 * GEMM gives the same bits that way (mmi_gemm_nt_takes_panel), else exactly
 * mmi_dense_forward_act. Debug builds check a kept panel against W. */
void mmi_dense_forward_kept(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                            float *y, int32_t act, float *ya, mmi_kept_w *kw, const mm_model *m);

/* A dense layer's backward (g and dx as its vtable backward; x its input) with the backward of
 * the activation below it (act, its input ax; its output is x) fused into the epilogue of the
 * dx GEMM: dx receives the gradient at the activation's input, bitwise what the two backwards
 * give one after the other. ax NULL: the plain dense backward. dx must not alias dy, x or ax. */
void mmi_dense_backward_act(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                            const float *dy, float *dx, float *g, void *scratch, int32_t act,
                            const float *ax);

/* Returns the vtable of a layer kind by id or by stable name, or NULL. */
const mmi_layer_vt *mmi_layer_vt_find(int32_t kind);
const mmi_layer_vt *mmi_layer_vt_by_name(const char *kind_name);
/* Fills entry i of l's tensor table: name (truncated to MMI_TENSOR_NAME_MAX - 1), ndim (1..3)
 * sizes s0, s1, s2 (unused ones ignored), and offset off relative to the layer. */
void mmi_layer_set_tensor(mmi_layer *l, int i, const char *name, int32_t ndim, int64_t s0,
                          int64_t s1, int64_t s2, int64_t off);
/* A layer's label for files and messages: its kind name, except activations, which are named
 * by function ("relu", "tanh", ...; the names mmi_model_add_layer also accepts, with no config). */
const char *mmi_layer_label(const mmi_layer *l);
/* MM_ACT_* <-> "relu", "tanh", "sigmoid", "gelu", "silu", "elu", "softplus", "relu2" (NULL / 0
 * when unknown). */
const char *mmi_act_name(int32_t act);
int32_t mmi_act_by_name(const char *name);

/* ---- optimizer state --------------------------------------------------------------------- */
/* Hyperparameter slots (index = id - MM_MODEL_LR, see mm.h MM_MODEL_*). */
#define MMI_OPT_NHYPER       16
#define MMI_OPT_HYPER(o, id) ((o)->hyper[(id)-MM_MODEL_LR])
/* Optimizer state buffers (each n_params floats, same layout as the parameters), named like
 * the entries of PyTorch's optimizer.state[param]:
 *   SGD, momentum: slot 0 "momentum_buffer"
 *   Adam, AdamW:   slot 0 "exp_avg", slot 1 "exp_avg_sq", slot 2 "max_exp_avg_sq" (amsgrad)
 *   RMSprop:       slot 0 "square_avg", slot 1 "momentum_buffer", slot 2 "grad_avg"
 * PyTorch keeps a step count per parameter (a frozen layer's does not advance): layer_t[i] is
 * that count for layer i's tensors. buf_init[i] = 1 once SGD's momentum buffer of layer i holds
 * a value (PyTorch's "momentum_buffer is not None"). */
#define MMI_OPT_MAX_SLOTS 3
/* The largest step count a file may carry (steps, layer_step): MMI_COUNT_MAX (2^53), where a
 * double still counts every step exactly (the bias corrections use it as a double); the counts
 * advance with mmi_count_add, so a model never saves a count its loader refuses. */
#define MMI_OPT_MAX_STEPS MMI_COUNT_MAX
typedef struct mmi_optim {
    int32_t kind;                 /* MM_OPT_*, 0 = none set */
    double hyper[MMI_OPT_NHYPER]; /* by id - MM_MODEL_LR */
    int32_t n_slots;
    float *slot[MMI_OPT_MAX_SLOTS]; /* each n_params floats */
    const char *slot_name[MMI_OPT_MAX_SLOTS];
    int64_t *layer_t;  /* n_layers step counts */
    int32_t *buf_init; /* n_layers flags (SGD momentum) */
    /* mm_model_step's scratch (never copied or saved): the float64 sums of squared gradients,
     * one per chunk of a layer (optim.c, STEP_CHUNK), and each layer's kernel arguments for
     * the pass being run. */
    double *chunk_sq;        /* one per chunk of every layer's parameters */
    struct mmi_opt_args *la; /* n_layers entries */
    void *block;             /* one allocation holding all of the above */
    size_t block_size;
    /* statistics */
    int64_t steps;         /* successful mm_model_step calls since mm_model_set_optimizer */
    double last_grad_norm; /* before clipping */
    int32_t last_clipped;
} mmi_optim;

/* ---- the model ----------------------------------------------------------------------------- */
struct mm_model {
    mmi_alloc alloc;
    mmi_err err;
    mm_model_opts opts; /* validated copy (err_buf cleared after create) */
    int32_t finalized;
    int32_t n_layers, cap_layers;
    mmi_layer *layers; /* cap_layers entries */
    int64_t n_params;
    float *params; /* n_params floats, 64-byte aligned (one allocation) */
    float *grads;  /* n_params floats */
    size_t params_bytes;
    /* Arena reserved at finalize: activations act[0..n_layers] (act[i] is layer i's input, rows
     * x in_dim), two tangent/gradient ping-pong buffers, saved regions, one scratch region and
     * the GEMM workspace. */
    void *arena;
    size_t arena_size;
    float **act;   /* n_layers + 1 pointers into the arena */
    float *pp[2];  /* ping-pong buffers, max_rows x max_width floats each */
    void *scratch; /* max over layers of scratch_bytes */
    void *gemm_ws;
    int64_t max_rows, max_width;
    mmi_pool *pool;
    int32_t pool_shared;        /* pool came from mmi_model_share_pool: not m's to free */
    int32_t fwd_valid;          /* 1 after a successful forward/jvp: backward may run */
    int64_t fwd_batch, fwd_seq; /* sizes of that forward */
    int32_t fwd_ndim;           /* rank of its x */
    int64_t fwd_ctx_len;        /* context tokens of that forward (0: no context) */
    mmi_rng rng;
    mmi_optim opt;
    mm_comm *comm; /* mm_model_set_comm: gradients averaged over ranks in step (model_comm.c) */
};

/* With m->comm set: votes (a rank without an optimizer makes every rank refuse), then
 * replaces the gradients by their mean over ranks (model_comm.c). Text in m->err. */
int mmi_model_comm_average(mm_model *m, const char *fn);

/* Runs m's kernels on pool from now on (NULL: on the calling thread alone) instead of the pool
 * m started for itself at finalize, which is freed here; m never frees a pool given to it. A
 * policy's networks are used by one thread at a time, so one pool serves all of them (one set
 * of workers, kept warm from network to network), and a phase that runs two networks at once on
 * that pool's threads gives each of them NULL meanwhile. m must be finalized and pool have at
 * most m's n_threads threads (the GEMM workspace was sized for that many). Results do not
 * change: no kernel's result depends on the thread count. */
void mmi_model_share_pool(mm_model *m, mmi_pool *pool);

/* ---- enumeration (save/load, policy floor) ------------------------------------------------- */
/* Appends a layer from its saved config, exactly as the matching mm_model_add_* would (this is
 * what every mm_model_add_* calls). kind_name as mmi_layer_vt::kind_name, or an activation
 * label from mmi_layer_label ("tanh") with n_icfg = n_dcfg = 0. Returns MM_OK,
 * MM_E_STATE (finalized), MM_E_UNSUPPORTED (unknown kind), MM_E_INVALID_ARG / MM_E_RANGE (bad
 * config), MM_E_NOMEM; text in m->err. */
int mmi_model_add_layer(mm_model *m, const char *kind_name, const int64_t *icfg, int32_t n_icfg,
                        const double *dcfg, int32_t n_dcfg, const char *fn);
/* Appends to dst (not finalized) the layers of src, each with src's configuration, as
 * mmi_model_add_layer (the architecture of src without its parameters; mm_policy_export).
 * Returns as mmi_model_add_layer; text in dst->err. */
int mmi_model_add_layers_of(mm_model *dst, const mm_model *src, const char *fn);
/* The optimizer kind set by mm_model_set_optimizer (MM_OPT_*), or 0 when there is none (optim.c;
 * the policy checkpoint saves optimizer state only for networks that have one). */
int32_t mmi_model_optim_kind(const mm_model *m);
/* Writes the PyTorch nn.Sequential name of tensor t of layer i ("2.weight") into buf. Each
 * libmm layer is one Sequential index, activations included (Linear, Tanh, Linear gives 0.*,
 * 2.*). Returns MM_OK or MM_E_RANGE. */
int mmi_model_tensor_name(const mm_model *m, int32_t layer, int32_t t, char *buf, size_t n);
/* Tensor t of layer i (its shape and its offset in the mm_model_params buffer), or NULL past
 * the last tensor of that layer or the last layer. */
const mmi_ptensor *mmi_model_tensor(const mm_model *m, int32_t layer, int32_t t);
/* The input rows of layer i as the last forward left them (act[i]: rows x that layer's input
 * width), or NULL when i is out of range or no forward is valid. The policy's gSDE reads the
 * actor's last hidden features here instead of running the trunk twice. A ReLU after a dense
 * layer runs in place (model.c relu_in_place): its input rows are its output. */
const float *mmi_model_layer_input(const mm_model *m, int32_t i, int64_t *width);

/* ---- internals shared by the model's files ------------------------------------------------- */
/* Validates x against the model input ([B, in] or [B, T, in]; 1-D [in] is B = 1) and returns
 * batch and seq. */
int mmi_model_input_shape(const mm_model *m, const mm_tensor *x, int64_t *batch, int64_t *seq,
                          mmi_err *e, const char *fn);
/* Checks that t has the shape [batch, (seq,) width] matching x's rank. */
int mmi_model_check_like(const mm_tensor *x, const mm_tensor *t, int64_t width, const char *what,
                         mmi_err *e, const char *fn);
/* MM_OK, or MM_E_INVALID_ARG into e ("<fn>: <what> shares memory with the model's parameters"
 * or "... gradients") when the bytes [p, p + bytes) meet m's parameter buffer (unless
 * grads_only) or its gradient buffer. Callers reach those through mm_model_params/grads: an
 * output written there changes the weights a call still reads (or the gradients it
 * accumulates), and a backward input there is read after the gradients were written. */
int mmi_model_own_apart(const mm_model *m, mmi_err *e, const char *fn, const char *what,
                        const void *p, size_t bytes, int grads_only);
/* mmi_model_own_apart for a tensor (NULL: MM_OK). */
int mmi_model_own_apart_t(const mm_model *m, mmi_err *e, const char *fn, const char *what,
                          const mm_tensor *t, int grads_only);
/* Optimizer (optim.c): frees its state (mm_model_free); copies src's optimizer (kind,
 * hyperparameters, counts, state) into dst of the same architecture, allocating only when dst
 * has another kind. Save/load set the optimizer with mm_model_set_optimizer and then fill
 * m->opt's hyper/slot/layer_t/buf_init/steps directly. */
void mmi_optim_free(mm_model *m);
int mmi_optim_copy(mm_model *dst, const mm_model *src, const char *fn);

/* The bodies of mm_model_forward and mm_model_backward (model_exec.c) for callers inside the
 * model floor that keep the output in the arena (act[n_layers]) instead of copying it out:
 * run_forward checks x (and ctx, NULL without cross-attention) against the reservation (text
 * in m->err) and remembers the forward; run_backward needs a valid forward, takes dL/dy as that
 * forward's rows x out_dim floats (it may be m->pp[n_layers & 1], which the top layer does not
 * write), dx NULL or rows x input_dim floats and dctx NULL or the forward's context shape
 * (checked by the caller). */
int mmi_model_run_forward(mm_model *m, const mm_tensor *x, const mm_tensor *ctx, const char *fn);

/* Floats of the panel mmi_model_forward_kept needs for m (finalized): W^T of its first layer
 * when that is a dense layer with at most MMI_GEMM_SMALL_NT_K inputs; 0 when no forward of m
 * could use one (then mm_model_forward serves). */
int64_t mmi_model_kept_w_floats(const mm_model *m);
/* mm_model_forward (same checks, results and errors, bit for bit) with the first layer's
 * product over kw's panel where the GEMM takes one (a few rows: mmi_gemm_nt_takes_panel),
 * formed from m's current parameters only when kw->of != m (then kw->of = m). What a kept
 * panel saves is the transposition of W on each call (mm_policy_act, docs/RL.md "Memory"). kw
 * NULL, or kw->panel NULL: mm_model_forward. */
int mmi_model_forward_kept(mm_model *m, const mm_tensor *x, mm_tensor *y, mmi_kept_w *kw,
                           const char *fn);
void mmi_model_run_backward(mm_model *m, const float *dy, float *dx, float *dctx);

/* 1 if l is a cross-attention layer, with its context width and largest context length
 * (either pointer may be NULL); 0 for every other kind (layer_xattn.c). */
int mmi_xattn_context(const mmi_layer *l, int64_t *ctx_dim, int64_t *max_ctx);

/* Output width of the whole model (the last layer's out_dim, or input_dim with no layers). */
int64_t mmi_model_out_dim(const mm_model *m);

#endif /* MMI_MODEL_H */
