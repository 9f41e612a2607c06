/* SPDX-License-Identifier: MIT */
/*
 * mmi_policy.h — the inside of mm_policy: the handle, the replay and rollout buffers, noise,
 * observation statistics and the entry points of each algorithm file. Nothing is exported.
 *
 * Files: policy.c (options, create, free, parameters), policy_act.c, policy_observe.c,
 * normalize.c, noise.c, replay.c, rollout.c (GAE), dist.c (Gaussian / categorical maths),
 * algo_ddpg.c (DDPG + TD3), algo_sac.c (SAC), algo_sac_discrete.c (its discrete form),
 * algo_onpolicy.c (A2C, QAC, PPO), algo_trpo.c (CG, Fisher-vector
 * products, line search), policy_io.c (safetensors), update_budget.c (mm_policy_update and
 * the frame-bounded mm_policy_update_budget), reward_norm.c (running return statistics),
 * policy_rows.c (the work rows named by role for each phase), policy_par.c (independent
 * networks' work at once on the policy's one pool, Polyak over the pool).
 */
#ifndef MMI_POLICY_H
#define MMI_POLICY_H

#include "../core/mmi.h"
#include "../model/mmi_model.h"
#include "../tensor/mmi_tensor.h"

/* ---- replay buffer (replay.c): circular, uniform sampling with replacement ---------------- */
typedef struct mmi_replay {
    float *obs, *next_obs, *act, *rew, *term; /* cap rows; obs raw (normalised at sample time) */
    int64_t cap, pos, size, obs_dim, act_dim;
} mmi_replay;

/* Stores one transition (act already in [-1, 1]); overwrites the oldest when full. */
void mmi_replay_add(mmi_replay *r, const float *obs, const float *act, float rew,
                    const float *next_obs, float term);
/* Draws n indices uniformly from [0, size) with replacement. size must be > 0. */
void mmi_replay_sample(const mmi_replay *r, mmi_rng *rng, int64_t n, int64_t *idx);

/* ---- rollout buffer (rollout.c): n_steps rows of n_agents columns ----------------------- */
typedef struct mmi_rollout {
    int64_t n_steps, n_agents, obs_dim, act_dim; /* act_dim: stored action width (1 if discrete) */
    int64_t t;                                   /* observe calls stored so far */
    float *obs;                                  /* [T*N, obs_dim], normalised as acted on */
    float *act; /* [T*N, act_dim] raw sample (continuous) or index */
    float *logp, *val, *rew, *done, *adv, *ret; /* [T*N] */
    float *last_obs;                            /* [N, obs_dim] next obs of the last step */
    float *last_val;                            /* [N] */
} mmi_rollout;

/* GAE(lambda) in float64 for every column: adv and ret (= adv + val) from rew, val, done
 * (done_t = terminated or truncated of step t; truncation already folded into rew) and
 * last_val. */
void mmi_rollout_gae(mmi_rollout *r, double gamma, double lambda);
/* Same maths on plain arrays (the unit-tested core): T steps of N columns, row t*N + i. */
void mmi_gae(int64_t T, int64_t N, const float *rew, const float *val, const float *done,
             const float *last_val, double gamma, double lambda, float *adv, float *ret);

/* ---- observation statistics (normalize.c), SB3 RunningMeanStd ------------------------- */
typedef struct mmi_obs_rms {
    int64_t dim;
    double *mean, *var, count;
    float *f_mean, *f_istd; /* float copies applied by act (1/sqrt(var + 1e-8)) */
    double clip;
} mmi_obs_rms;
/* Folds n rows of x into the statistics (parallel batch update, population variance). */
void mmi_rms_update(mmi_obs_rms *s, const float *x, int64_t n, double *work);
/* y = clip((x - mean) / sqrt(var + 1e-8), +-clip) for n rows; s NULL copies. */
void mmi_rms_apply(const mmi_obs_rms *s, const float *x, int64_t n, int64_t dim, float *y);
/* Refreshes the float copies after a change of mean/var. */
void mmi_rms_refresh(mmi_obs_rms *s);

/* ---- reward normalisation (reward_norm.c), SB3 VecNormalize(norm_reward=True) ------------ */
typedef struct mmi_reward_norm {
    int32_t on;              /* norm_reward: 0 off, 1 SB3, 2 SB3 + outlier guard */
    double clip;             /* clip_reward */
    double mean, var, count; /* RunningMeanStd of the discounted returns (float64) */
    double *ret;             /* [n_agents] running discounted return of each agent's episode */
    float *scaled;           /* [n_agents] the normalised rewards of the current observe call */
} mmi_reward_norm;
/* Folds rewards r[0..n) into each agent's return (ret = gamma ret + r; mode 2: r clipped to
 * +-clip std first), the returns into the statistics, writes r / sqrt(var + 1e-8) clipped to +-clip into out, then zeroes the returns
 * of agents whose episode ended (done[i] != 0). */
void mmi_reward_norm_observe(mmi_reward_norm *z, const float *r, const uint8_t *term,
                             const uint8_t *trunc, int64_t n, double gamma, float *out);
/* r / sqrt(var + 1e-8) clipped to +-clip with the current statistics (no update). */
float mmi_reward_norm_apply(const mmi_reward_norm *z, float r);

/* ---- frame-bounded update state (update_budget.c) ------------------------------------------ */
typedef struct mmi_update_state {
    int32_t active;       /* an update has begun and has work left (set between budget calls) */
    int32_t stopped;      /* PPO: target_kl ended the epochs early */
    int64_t epoch, start; /* PPO/A2C position: epoch, first shuffled row of the next minibatch */
    int64_t rows;         /* rows of the minibatches run so far (statistics denominator) */
    int64_t epochs_run;   /* epochs begun by the last on-policy update (MM_POLICY_STAT_EPOCHS) */
    double clip_frac, kl; /* PPO sums over those rows */
    mmi_rng act_rng;      /* act's random stream while active: the update keeps p->rng, so the
                            update draws what the one-shot update would */
    mm_model *actor_snap; /* on-policy: the actor as it was when the update began, used by act
                            while active (max_batch n_agents) */
    float *logstd_snap;   /* [n_ls] its log std */
} mmi_update_state;

/* ---- act's per-agent samples (policy_act.c, policy_observe.c) --------------------------- */
/* On-policy continuous acts store, per agent slot, the raw Gaussian sample and the clipped
 * action returned; observe uses the raw sample when the action matches the slot's output.
 * explore = 0 acts leave the slots alone. pending[i] counts exploring acts of agent i since its
 * last observe: 2 or more means a sample was replaced before it was observed. */
typedef struct mmi_act_slots {
    float *raw;       /* [n_agents, act_dim] */
    float *out;       /* [n_agents, act_dim] */
    uint8_t *pending; /* [n_agents] saturating count (0, 1, 2) */
} mmi_act_slots;

/* ---- memory core (memory.c): an LRU on a linear encoding of the observation ----------------
 * Parameters: the first n_par floats of mem.m's flat parameters (a dense layer used as raw
 * storage, so the model floor keeps the optimizer, checkpoints and files), in this order:
 *   W [H, obs_dim], b [H] (encoder u = W x + b), nu_log, theta_log, gamma_log [N],
 *   B [N, H, x2], C [H, N, x2], D [H]   (H channels, N complex states; lru_scan.c maths).
 * Rows of a segment are laid out one after another (sequence-major). */
typedef struct mmi_memory {
    int64_t H, N, L;    /* channels, complex states, BPTT segment length */
    int64_t n_par;      /* floats of the parameter vector above */
    mm_model *m;        /* raw parameter storage with its optimizer (lr_actor) */
    float *state;       /* [n_agents, 2N] current state of every agent */
    float *prev;        /* [n_agents, 2N] the state before its last act (stored into rollout) */
    float *y;           /* [n_agents, H] the core output of its last act */
    float *nxt, *ynxt;  /* [n_agents, 2N], [n_agents, H]: an act's step before it is kept;
                         * state, prev, nxt (and y, ynxt) trade places when all agents act */
    uint8_t *acted;     /* [n_agents] 1 when the agent acted since its last observe */
    float *ro_h0;       /* [n_steps n_agents, 2N] state before each rollout row */
    float *lam, *bn;    /* lambda [2N], B e^gamma_log [N H 2]: formed once per call */
    float *u, *ys, *hs; /* [maxb, H], [maxb, H], [maxb, 2N]: one minibatch of segments */
    float *du, *dy;     /* [maxb, H] */
    float *feat, *dfa, *dfv; /* [maxb, obs_dim + H]: network input and its two gradients */
    float *tmp;              /* [2N] one streamed step's new state */
    float *key;              /* [n_par] the parameters lam .. wt were formed from */
    float *bt, *ct, *wt;     /* [H, 2N], [N, 2, H], [obs_dim, H]: streaming operands */
    float *bf;               /* [obs_dim + 1, 2N]: bt with the encoder folded in (folds) */
    float *xs;               /* [maxb, obs_dim + 1]: rows [x, 1], the folded states' input */
    float *acc;              /* [2N] the streaming kernel's scratch */
    int32_t key_ok;          /* key holds a formed set */
    int32_t act_ok;          /* the operands are current for act: formed, and no call that can
                              * write the parameters ran since (mmi_mem_stale) */
    double *glam, *gh, *dd, *gbn, *gc, *gw; /* 2N, 2N, H, 2NH, 2NH, H (obs_dim + 1) */
    int64_t *seg;                           /* [maxb] rollout row of each minibatch row */
    uint8_t *first;                         /* [maxb] 1 on the first row of a segment */
} mmi_memory;

/* ---- gSDE (sde.c): state-dependent exploration of the on-policy Gaussian --------------------
 * phi = the actor's last hidden features (F of them), log std l [F, A] (the logstd model's
 * bias, row-major j * A + k), per agent a noise matrix W_i [F, A] ~ N(0, exp(l)^2). The
 * exploring action is mu + phi . W_i; the distribution N(mu_k, S_k) with
 * S_k = sum_j phi_j^2 exp(2 l_jk) + MMI_SDE_EPS. */
#define MMI_SDE_EPS 1e-6
typedef struct mmi_sde {
    int64_t F;     /* features (the actor's last hidden width); 0: gSDE off */
    float *W;      /* [n_agents, F, A] each agent's noise matrix */
    int64_t *left; /* [n_agents] exploring acts before W_i is drawn again: 0 draws at the next
                      exploring act, -1 never (sde_sample_freq -1) until a rollout or episode
                      starts */
    float *ls_buf; /* [1 + 2 F A] the log-std backward's zero input, output and gradient */
    double *S;     /* [A] one row's variances */
    double *s2;    /* [F, A] exp(2 l), formed once per batch of rows */
} mmi_sde;

/* ---- the handle --------------------------------------------------------------------------- */
#define MMI_POL_VIEWS 6

struct mm_policy {
    mmi_alloc alloc;
    mmi_err err;
    mm_policy_opts o; /* validated copy; act_low/high point at low/high below */
    int32_t discrete, offpolicy;
    int64_t obs_dim, act_dim; /* act_dim: continuous width, 1 if discrete */
    int64_t head_dim;         /* actor output: act_dim or n_actions */
    int64_t maxb;             /* largest batch any network sees */
    float *low, *high;        /* [act_dim] */
    mmi_rng rng;
    /* networks (NULL when the algorithm has none) */
    mm_model *actor, *actor_t, *critic[2], *critic_t[2], *vf, *logstd;
    mm_model *ent; /* SAC: log alpha, the bias of a dense layer fed a zero input */
    int32_t n_models;
    /* n_threads > 1: the one pool of every network above that has threads (mmi_model_share_pool),
     * and the pool on which the off-policy updates run two networks' work at once (algo_ddpg.c,
     * algo_sac.c); NULL with one thread */
    mmi_pool *pool;
    /* observation statistics */
    int32_t norm;
    mmi_obs_rms rms;
    /* buffers */
    mmi_replay rb;
    mmi_rollout ro;
    float *ou;           /* [n_agents, act_dim] OU state */
    mmi_act_slots slots; /* raw samples of the exploring acts, per agent */
    /* On-policy: the actor's first-layer W^T as act's GEMM reads it (mmi_model_forward_kept;
     * panel NULL when no act could use it), formed again after mmi_pol_params_stale. Forming
     * it on every act was 0.09-0.10 us of an LRU16 act at eight agents on Zen 3
     * (docs/history/RL_LOG.md, entry 20). */
    mmi_kept_w act_w;
    /* Row work: six maxb x wide float buffers and maxb x 4 doubles, shared by the phases
     * (act, observe, one algorithm's update) and named by role only through the row views
     * below (policy_rows.c); no other file uses these names. */
    float *w_a, *w_b, *w_c, *w_d, *w_e, *w_f;
    int64_t wide;     /* floats per row of w_*: max widths */
    double *w_dbl;    /* maxb x 4 doubles per batch row */
    double *coef;     /* maxb: one policy-gradient coefficient per row */
    double *rms_work; /* 2 obs_dim: the observation-statistics update */
    double *prob;     /* head_dim: one row of class probabilities */
    double *dls;      /* head_dim: a log-std gradient */
    int64_t *w_idx;   /* maxb */
    float *sac_eps;   /* SAC: [2 maxb, act_dim] N(0, 1) draws of one update: pi(s), then pi(s') */
    double *sac_row;  /* SAC: 6 act_dim doubles, one row of the squashed-Gaussian maths */
    /* TRPO's vectors over the n_pi policy parameters (net + log std), one per role */
    struct {
        float *grad;      /* g: surrogate gradient at theta_old */
        float *step;      /* x: CG solution of F x = g, then the full step */
        float *theta_old; /* parameters before the update (restored when no step is taken) */
        float *fx;        /* F x */
        float *trial;     /* the line search's candidate parameters */
        float *cg_r, *cg_d, *cg_ad; /* CG residual, direction and F times direction */
    } trpo;
    int64_t n_pi;
    mm_tensor views[MMI_POL_VIEWS];
    /* counters, advanced with mmi_count_add (they stop at MMI_COUNT_MAX) */
    int64_t steps, calls, calls_since_train, pending, n_updates;
    /* statistics (MM_POLICY_STAT_*) */
    double st_actor_loss, st_critic_loss, st_kl, st_entropy, st_ev, st_clip_frac, st_ls, st_q_mean;
    int32_t poisoned;
    mm_comm *comm;        /* mm_policy_set_comm: gradients averaged over ranks (policy_comm.c) */
    mmi_update_state upd; /* mm_policy_update_budget's position between calls */
    mmi_reward_norm rn;   /* norm_reward */
    mmi_memory mem;       /* memory core (mem.m NULL without memory) */
    int64_t in_dim;       /* width of the actor / value input: obs_dim (+ H with memory) */
    mmi_sde sde;          /* gSDE (sde.F 0 without) */
    int64_t n_ls;         /* floats of the log std: act_dim, or F x act_dim with gSDE */
    void *block;          /* one allocation holding every buffer above */
    size_t block_size;
};

/* The Gaussian log std (n_ls floats: act_dim, or [F, act_dim] with gSDE): the bias of the
 * logstd model. */
float *mmi_pol_logstd(mm_policy *p);

/* A tensor view [rows, cols] over data in view slot k (no allocation). */
mm_tensor *mmi_pol_view(mm_policy *p, int k, float *data, int64_t rows, int64_t cols);
/* Multipliers of the learning rates and of the PPO clip range: each follows its own linear
 * schedule (lr_decay_steps / clip_decay_steps) or, when that is 0, linear_decay_steps. */
double mmi_pol_lr_factor(const mm_policy *p);
double mmi_pol_clip_factor(const mm_policy *p);
/* The random stream act draws from: p->rng, or upd.act_rng while an update is active. */
mmi_rng *mmi_pol_act_rng(mm_policy *p);
/* Runs a model call and turns a failure into the policy's error (text copied). */
int mmi_pol_model_fail(mm_policy *p, mm_model *m, int rc, const char *fn);

/* ---- independent networks' work at once (policy_par.c) ------------------------------------ */
#define MMI_POL_EACH_MAX 4
/* One of n independent pieces of work: returns a status; a failing model call leaves its
 * model in *failed (its text becomes the policy's error). It must not write p->err, p->rng or
 * anything another piece reads or writes, and uses view slots 3k .. 3k + 2 only. */
typedef int (*mmi_pol_each_fn)(mm_policy *p, void *ctx, int32_t k, mm_model **failed);
/* Runs fn(p, ctx, k, .) for k = 0 .. n-1 (n <= MMI_POL_EACH_MAX). With p->pool, n > 1 and no
 * communicator: at once on the pool's threads, each k whole on one thread, the networks in ms
 * (every one the pieces use; NULL entries skipped) running their kernels on that thread alone
 * meanwhile; then every piece has run. Otherwise one after the other in order, each network on
 * its pool, stopping at the first failure. Returns the failing piece of lowest k's code, its
 * model's text in p->err (the pieces' own status otherwise), or MM_OK. */
int mmi_pol_each(mm_policy *p, mm_model *const *ms, int32_t n_ms, mmi_pol_each_fn fn, void *ctx,
                 int32_t n);
/* A forward of m through view slots v, v + 1 (x [rows, in] -> y [rows, out]); the status only,
 * no text in p->err (a piece reports through *failed). */
int mmi_pol_fwd_at(mm_policy *p, int v, mm_model *m, float *x, int64_t rows, int64_t in, float *y,
                   int64_t out);
/* The rest of critic c's step once dL/dQ_c is in dy [n] (view slot v): zero_grad, backward,
 * the gradients averaged over ranks with a communicator (text in p->err), Adam at lr_critic.
 * A failing model call leaves the critic in *failed. */
int mmi_pol_critic_adam(mm_policy *p, int32_t c, int v, float *dy, int64_t n, mm_model **failed);
/* Polyak averaging dst[k] = (1 - tau) dst[k] + tau src[k] of n <= MMI_POL_EACH_MAX pairs, as
 * mm_model_lerp (the same bits), cut into pieces over p->pool when there is one. Text in p->err
 * on failure. */
int mmi_pol_polyak(mm_policy *p, mm_model *const *dst, mm_model *const *src, int32_t n, double tau);
/* With a communicator: replaces the gradients of the n models (NULL entries skipped) by their
 * mean over ranks, before clipping and stepping (policy_comm.c). Text in p->err on failure. */
int mmi_pol_comm_average(mm_policy *p, mm_model *const *ms, int32_t n);

/* Memory (memory.c). Sizes of the carved buffers (floats/doubles; 0 without memory) are
 * laid out by mmi_mem_layout; mmi_mem_build creates and initialises the parameters. */
int mmi_mem_build(mm_policy *p);
void mmi_mem_layout(mm_policy *p, mmi_carve *y);
/* act: steps agents 0..n-1 on normalised x [n, obs_dim] into scratch and writes the network
 * input [x, y] of each into feat [n, in_dim]; nothing the agents keep changes until
 * mmi_mem_commit. Returns MM_E_NUMERIC (no text; state, prev, y untouched) when the step is not
 * finite. */
int mmi_mem_act(mm_policy *p, const float *x, int64_t n, float *feat);
/* Keeps the step of the last successful mmi_mem_act (same n) once the act has succeeded:
 * prev <- state, state <- the step, y <- its output, agents 0..n-1 marked as acted. */
void mmi_mem_commit(mm_policy *p, int64_t n);
/* The network input [x_i, y_i] of agent i's last act for n agents (observe). */
void mmi_mem_feat_last(mm_policy *p, const float *x, int64_t n, float *feat);
/* The network input of a step on x from each agent's current state, state left as is
 * (bootstrap values of next observations). */
void mmi_mem_peek(mm_policy *p, const float *x, int64_t n, float *feat);
/* Zeroes agent i's state. */
void mmi_mem_reset(mm_policy *p, int64_t i);
/* The core's parameters may have changed (an update, a load, a broadcast): the next act forms
 * its operands again if they differ. Called through mmi_pol_params_stale. */
void mmi_mem_stale(mm_policy *p);
/* The networks' parameters may have changed (an update, a load, a broadcast): the next act
 * forms what it keeps across acts again (the memory core's operands, the actor's W^T panel).
 * Every public call that can write the actor's or the core's parameters calls this before it
 * returns, whatever its status; debug builds check on each act that the kept copies are
 * current, so a writer that forgets it fails the tests that reach it. */
void mmi_pol_params_stale(mm_policy *p);
/* Segments: the minibatch rows of nseg segments (ids into 0..mmi_mem_n_segments) into
 * mem.seg (sequence-major); returns the row count. */
int64_t mmi_mem_n_segments(const mm_policy *p);
int64_t mmi_mem_gather(mm_policy *p, const int64_t *ids, int64_t nseg);
/* Forward of the m gathered rows whose normalised observations are x [m, obs_dim]: states
 * from the stored initial state of each segment, reset after done rows; writes mem.feat. */
void mmi_mem_forward(mm_policy *p, const float *x, int64_t m);
/* Backward of the last mmi_mem_forward given dy [m, H], the gradient of its bounded output
 * (overwritten with that of the LRU's output): accumulates into mem.m's grads. */
int mmi_mem_backward(mm_policy *p, const float *x, float *dy, int64_t m);

/* ---- row views (policy_rows.c) --------------------------------------------------------------
 * Each phase names the work rows it uses by role through one struct filled by one function;
 * policy_rows.c holds the table of which roles share a buffer. Fields that share a buffer are
 * used one after the other, in the order their comments give. N, m, n: rows of the batch,
 * minibatch or rollout; od obs_dim, ad act_dim, K head_dim. */

/* mm_policy_act (policy_act.c, mmi_sac_act). */
typedef struct mmi_act_rows {
    float *obs;      /* [n, od] normalised observations */
    float *y;        /* [n, ad] off-policy actions in [-1, 1] */
    float *head;     /* [n, K] on-policy head (y's rows: an on-policy policy has no y) */
    float *sac_head; /* [n, 2 ad] SAC actor output [mean | log std] */
} mmi_act_rows;
mmi_act_rows mmi_act_rows_of(mm_policy *p);

/* mm_policy_observe (policy_observe.c). */
typedef struct mmi_observe_rows {
    float *act;    /* [ad] off-policy: one action scaled to [-1, 1] */
    float *head;   /* [n, K] on-policy head for log pi (act's rows: the other family) */
    float *boot;   /* [n] values of the truncated rows' next observations */
    float *q;      /* [n, K] QAC: q(s', .) for boot */
    float *logits; /* [n, K] QAC: pi's logits for boot */
} mmi_observe_rows;
mmi_observe_rows mmi_observe_rows_of(mm_policy *p);

/* pg_grad.c's callees, run inside the on-policy and TRPO updates. */
typedef struct mmi_pg_rows {
    float *ls_in;  /* [1] mmi_pg_backward: the log-std layer's zero input */
    float *ls_out; /* [ad] its output (unused) */
    float *ls_dy;  /* [ad] dL/dlog std */
    float *q;      /* [n_agents, K] mmi_last_values (QAC): q of the last next obs */
    float *logits; /* [n_agents, K] and pi's logits (the log-std rows' buffer) */
} mmi_pg_rows;
mmi_pg_rows mmi_pg_rows_of(mm_policy *p);

/* DDPG / TD3 (algo_ddpg.c): gather, targets, critic steps, actor step. */
typedef struct mmi_ddpg_rows {
    float *obs;        /* [N, od] s */
    float *next_obs;   /* [N, od] s' (read by the targets only) */
    float *dx;         /* [N, od + ad] actor step: the critic's input gradient */
    float *obs_act;    /* [N, od + ad] [s, a]; the actor step writes [s, mu(s)] */
    float *target_in;  /* [N, od + ad] targets: [s', a'] */
    float *mu;         /* [N, ad] mu(s), formed beside mu'(s') when the actor steps */
    float *da;         /* [N, ad] dQ/da (actor step) */
    float *target_act; /* [N, ad] targets: mu'(s') */
    float *dq;         /* [2N] critic k's dL/dQ_k at k N, after the targets; the actor's */
    float *q;          /* [2N] Q'_k at k N in the targets, then Q_k */
    double *rd;        /* [N, 2] reward and terminated of each row */
    double *y;         /* [N] Bellman targets */
} mmi_ddpg_rows;
mmi_ddpg_rows mmi_ddpg_rows_of(mm_policy *p, int64_t N);

/* Discrete SAC (algo_sac_discrete.c): gather, targets, critic steps, actor and alpha step. The
 * alpha step then uses mmi_sac_rows' alpha rows, once q2 is read. */
typedef struct mmi_sacd_rows {
    float *obs;      /* [N, od] s */
    float *next_obs; /* [N, od] s' (read by the targets only) */
    float *logits;   /* [N, n] actor output of s' (targets), then of s */
    float *dlogits;  /* [N, n] actor step: dL/dz */
    float *q;        /* [N, n] Q'_1 (targets), Q_c (critic step c), Q_1 (actor); then the min */
    float *q2;       /* [N, n] Q'_2 (targets), Q_2 (actor step) */
    float *dq;       /* [N, n] critic steps: dL/dQ_c, after q2 is read */
    double *rd;      /* [N, 2] reward and terminated of each row */
    double *y;       /* [N] soft Bellman targets */
} mmi_sacd_rows;
mmi_sacd_rows mmi_sacd_rows_of(mm_policy *p, int64_t N);

/* SAC (algo_sac.c): gather, targets, critic steps, actor and alpha step. */
typedef struct mmi_sac_rows {
    float *obs;       /* [N, od] s */
    float *next_obs;  /* [N, od] s' (read by the targets only) */
    float *dx;        /* [N, od + ad] actor step: a critic's input gradient */
    float *obs_act;   /* [N, od + ad] [s, a]; the actor step writes [s, a~] */
    float *dhead;     /* [N, 2 ad] dL/dhead, once the critics have read [s, a~] */
    float *head;      /* [N, 2 ad] actor output [mean | log std] of s' (targets), then of s */
    float *target_in; /* [N, od + ad] targets: [s', a'] */
    float *dq;        /* [2N] critic steps: dL/dQ_k at k N */
    float *da;        /* [N, ad] actor step: dL/da~; Q_2's input gradient [N, od + ad] after */
    float *q;         /* [2N] Q'_k, then Q_k, then Q_k(s, a~) at k N */
    float *dq_min;    /* [2N] actor step: dL/dQ_k at k N (after q's 2N) */
    float *alpha_in, *alpha_out, *alpha_dy; /* [1] each: log alpha's step, after q */
    double *rd;                             /* [N, 2] reward and terminated of each row */
    double *y;                              /* [N] soft Bellman targets */
    double *min_q;                          /* [N] min_k Q_k(s, a~), once y is spent */
    double *logp;                           /* [N] log pi(a'|s'), then log pi(a~|s) */
} mmi_sac_rows;
mmi_sac_rows mmi_sac_rows_of(mm_policy *p, int64_t N);

/* A2C, QAC, PPO (algo_onpolicy.c): a minibatch of m rows (QAC: the rollout). */
typedef struct mmi_onpolicy_rows {
    float *obs;    /* [m, od] gathered observations */
    float *head;   /* [m, K] policy head */
    float *act;    /* [m, ad] gathered actions (index if discrete) */
    float *logp;   /* [m] log pi(a|s) */
    float *dhead;  /* [m, K] dL/dhead, once logp has given the coefficients */
    float *adv;    /* [m] advantages */
    float *dq;     /* [m, K] QAC: dL/dq */
    float *value;  /* [m] V(s), after mmi_pg_backward (its log-std rows share the buffer) */
    float *dvalue; /* [m] dL/dV */
    float *q;      /* [m, K] QAC: q(s, .) */
    double *row;   /* [m, 4] per row: -, return, old log pi, old value */
} mmi_onpolicy_rows;
mmi_onpolicy_rows mmi_onpolicy_rows_of(mm_policy *p, int64_t m);

/* TRPO (algo_trpo.c): the policy step over the n rollout rows, then the critic epochs. */
typedef struct mmi_trpo_rows {
    float *obs;      /* [bs, od] critic epochs: a value minibatch */
    float *head;     /* [n, K] heads at the current parameters */
    float *value;    /* [bs] critic epochs: V (after the policy step) */
    float *logp;     /* [n] surrogate: log pi at the current parameters */
    float *dvalue;   /* [bs] critic epochs: dL/dV */
    float *jvp;      /* [n, K] Fisher-vector product: J v, then M J v / n */
    float *dhead;    /* [n, K] dL/dhead of the surrogate or of the KL */
    float *old_head; /* [n + 1, K] heads at theta_old, then the old log std as row n */
} mmi_trpo_rows;
mmi_trpo_rows mmi_trpo_rows_of(mm_policy *p);

/* 1 when the na floats at a and the nb floats at b do not overlap (MMI_ASSERT contracts). */
static inline int mmi_pol_disjoint(const float *a, int64_t na, const float *b, int64_t nb)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x + (uintptr_t)na * sizeof(float) <= y || y + (uintptr_t)nb * sizeof(float) <= x;
}

/* ---- distributions (dist.c) --------------------------------------------------------------- */
/* Diagonal Gaussian with state-independent log std ls[d]: log prob of a under mean mu. */
double mmi_gauss_logp(const float *a, const float *mu, const float *ls, int64_t d);
double mmi_gauss_entropy(const float *ls, int64_t d);
/* Categorical over logits z[k]: writes softmax into prob (doubles), returns log-sum-exp. */
double mmi_cat_softmax(const float *z, int64_t k, double *prob);

/* gSDE (sde.c). phi: one row of F features; ls: [F, A]; S: A doubles.
 * s2 = exp(2 ls) [F, A] (formed once for many rows), then the variances S_k of one row. */
void mmi_sde_sigma2(const float *ls, int64_t n, double *s2);
void mmi_sde_var(const float *phi, const double *s2, int64_t F, int64_t A, double *S);
/* log N(a; mu, diag S) and the entropy sum_k (1 + log(2 pi S_k)) / 2 of one row. */
double mmi_sde_logp(const float *a, const float *mu, const double *S, int64_t A);
double mmi_sde_entropy(const double *S, int64_t A);
/* The features rows of the actor m's last forward ([rows, F]). */
const float *mmi_sde_phi(const mm_model *m);
/* Draws agent i's noise matrix from N(0, exp(ls)^2) with the act stream. */
void mmi_sde_draw(mm_policy *p, int64_t i, const float *ls);
/* Marks agent i (or every agent when i < 0) to draw its noise at its next exploring act. */
void mmi_sde_reset(mm_policy *p, int64_t i);

/* ---- noise (noise.c) ----------------------------------------------------------------------- */
/* Adds exploration noise to y [n, d] (row i is agent i) and clips to [-1, 1]. */
void mmi_noise_apply(mm_policy *p, float *y, int64_t n);
/* Resets agent i's OU state (episode end). */
void mmi_noise_reset(mm_policy *p, int64_t i);

/* ---- algorithms ---------------------------------------------------------------------------- */
/* DDPG, TD3 and SAC learn from the replay buffer; the others from rollouts. */
static inline int mmi_algo_offpolicy(int32_t algo)
{
    return algo == MM_ALGO_DDPG || algo == MM_ALGO_TD3 || algo == MM_ALGO_SAC;
}
int mmi_sac_update(mm_policy *p); /* one SAC gradient step (algo_sac.c) */
/* alpha now: exp(log alpha) when tuned, else ent_coef. */
double mmi_sac_alpha(mm_policy *p);
/* The step itself on a drawn batch: rows p->w_idx[0..N) of the replay and the N(0, 1) draws in
 * p->sac_eps (exposed so a test can fix the noise). */
int mmi_sac_step(mm_policy *p, int64_t N);
/* Pieces algo_sac_discrete.c shares with algo_sac.c: the forward of m on x [rows, in] into
 * y [rows, out], the Adam step of m (gradients averaged over ranks first) and log alpha's Adam
 * step on dL/dlog alpha = ga_alpha (nothing when ent_auto is 0); failures as the update's. */
int mmi_sac_fwd(mm_policy *p, mm_model *m, float *x, int64_t rows, int64_t in, float *y,
                int64_t out);
int mmi_sac_adam(mm_policy *p, mm_model *m, double lr);
int mmi_sac_alpha_step(mm_policy *p, double ga_alpha);
/* Discrete SAC (algo_sac_discrete.c): the critic, actor and alpha steps of one update on the
 * replay rows p->w_idx[0..N) at temperature alpha (targets are left to mmi_sac_step). */
int mmi_sacd_step(mm_policy *p, int64_t N, double alpha);
/* Its target entropy: target_entropy, or NaN's default 0.89 log(n_actions). */
double mmi_sacd_target_entropy(const mm_policy *p);
/* SAC actions in [-1, 1] for n rows of normalised x: tanh(mu + sigma eps) or tanh(mu). */
int mmi_sac_act(mm_policy *p, const float *x, int64_t n, float *y, int32_t explore);
/* The squashed Gaussian of one row of d dims, in float64 (algo_sac.c): with l = clamp(ls,
 * -20, 2), u = mu + exp(l) eps, a = tanh(u) (written to a), returns
 *   log pi(a|s) = sum_j [-eps_j^2 / 2 - l_j - log(2 pi) / 2 - log(1 - a_j^2 + 1e-6)]  (SB3). */
double mmi_sac_squash(const double *mu, const double *ls, const double *eps, int64_t d, double *a);
/* Gradient of c log pi + sum_j ga_j a_j (eps fixed: the reparameterised sample) with respect
 * to mu and to the unclamped ls (0 where the clamp is active), into gmu and gls. */
void mmi_sac_squash_grad(const double *mu, const double *ls, const double *eps, int64_t d, double c,
                         const double *ga, double *gmu, double *gls);
int mmi_ddpg_update(mm_policy *p); /* one DDPG/TD3 gradient step (algo_ddpg.c) */
/* A2C, QAC, PPO on a full rollout (algo_onpolicy.c), in two parts so the update can be spread
 * over calls: begin (bootstrap values, GAE, position reset), then steps: at most budget
 * minibatches (QAC: the whole update is one), *used counts them, *finished = 1 at the end. */
int mmi_onpolicy_begin(mm_policy *p);
int mmi_onpolicy_steps(mm_policy *p, int64_t budget, int64_t *used, int *finished);
int mmi_trpo_update(mm_policy *p); /* TRPO on a full rollout (algo_trpo.c) */
/* On-policy policy-head forward of n rows of normalised obs x: writes the head (mean or
 * logits) into head [n, head_dim]. */
int mmi_pi_forward(mm_policy *p, const float *x, int64_t n, float *head, const char *fn);
/* The same through the network act must use (the snapshot while an update is active); *ls
 * receives the matching log std (NULL if discrete). */
int mmi_pi_forward_act(mm_policy *p, const float *x, int64_t n, float *head, const float **ls);
/* Value forward of n rows: v [n]. */
int mmi_v_forward(mm_policy *p, const float *x, int64_t n, float *v, const char *fn);
/* log pi(a|s) of n rows given the head; discrete a are indices. */
void mmi_pi_logp(const mm_policy *p, const float *head, const float *a, int64_t n, float *logp);
/* Global gradient clipping over the given models (norm in float64, as clip_grad_norm_). */
double mmi_clip_grads(mm_model **ms, int32_t nm, double max_norm);

/* pg_grad.c: dL/dhead (dhead [n, head_dim]) and dL/dlogstd (dls [act_dim]) of
 * L = sum_i c_i log pi(a_i|s_i) - ent_coef mean H; returns the mean entropy. */
double mmi_pg_head_grad(mm_policy *p, const float *head, const float *a, const double *c, int64_t n,
                        double ent_coef, float *dhead, double *dls);
/* Backward of dhead through the actor (its last forward) and of dls into the log std. */
int mmi_pg_backward(mm_policy *p, const float *dhead, int64_t n, const double *dls);
double mmi_explained_variance(const float *v, const float *ret, int64_t n);
/* (a - mean) / (unbiased std + 1e-8) in place. */
void mmi_normalize_adv(float *adv, int64_t n);
/* V(last next obs) of every column into ro.last_val. */
int mmi_last_values(mm_policy *p);

/* TRPO pieces exposed for tests (algo_trpo.c). */
typedef void (*mmi_matvec_fn)(void *ctx, const float *v, float *out);
/* Conjugate gradient for A x = b (A SPD through mv), x0 = 0, at most iters steps, stopping
 * when r'r < 1e-10. r, d, ad are n-float work vectors. Returns the iterations run. */
int32_t mmi_cg(mmi_matvec_fn mv, void *ctx, const float *b, int64_t n, int32_t iters, float *x,
               float *r, float *d, float *ad);
/* Fisher-vector product of the mean KL at the current parameters over the rollout (Gauss-Newton
 * form J^T M J / N) plus damping * v. v and out have n_pi floats. */
int mmi_trpo_fvp(mm_policy *p, const float *v, float *out);
/* Mean KL(old || current) over the rollout rows whose old heads are in old_head. */
int mmi_trpo_kl(mm_policy *p, const float *old_head, int64_t n, double *kl);
/* Gradient of that mean KL w.r.t. the policy parameters (n_pi floats into g). */
int mmi_trpo_kl_grad(mm_policy *p, const float *old_head, int64_t n, float *g);
/* Flat policy parameters <-> a vector (net then log std). */
void mmi_trpo_get_params(mm_policy *p, float *v);
void mmi_trpo_set_params(mm_policy *p, const float *v);
/* The backtracking line search: tries theta_old + decay^k * full; accepts the first with
 * KL < target_kl and surrogate > surr_old. Restores theta_old if none. Returns the accepted k
 * or -1 (rc in *rc). */
int32_t mmi_trpo_line_search(mm_policy *p, const float *theta_old, const float *full,
                             const float *old_head, double surr_old, int *rc);

#endif /* MMI_POLICY_H */
