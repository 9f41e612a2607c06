/* SPDX-License-Identifier: MIT */
/* policy.c — mm_policy lifecycle: published defaults per algorithm, option checks, create
 * (networks, optimizers, buffers, work space: everything the hot path will use), free, error
 * text and run-time parameters. */
#include "mmi_policy.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- defaults (docs/RL.md lists the source of every number) ------------------------------ */

static void defaults_offpolicy(mm_policy_opts *o, int td3)
{
    o->n_hidden = 2, o->hidden[0] = 400, o->hidden[1] = 300, o->activation = MM_ACT_RELU;
    o->lr_actor = 1e-3, o->lr_critic = 1e-3; /* SB3 TD3/DDPG learning_rate */
    o->buffer_size = 1000000, o->batch_size = 256, o->learning_starts = 100;
    o->train_freq = 1, o->gradient_steps = 1, o->tau = 0.005;
    o->noise = MM_NOISE_GAUSSIAN, o->noise_sigma = 0.1; /* SB3 docs example: Normal(0, 0.1) */
    o->noise_theta = 0.15, o->noise_dt = 1e-2;          /* SB3 OrnsteinUhlenbeckActionNoise */
    o->policy_delay = td3 ? 2 : 1, o->n_critics = td3 ? 2 : 1;
    o->target_noise = td3 ? 0.2 : 0.0, o->target_noise_clip = td3 ? 0.5 : 0.0;
}

static void defaults_onpolicy(mm_policy_opts *o, int32_t algo)
{
    o->n_hidden = 2, o->hidden[0] = 64, o->hidden[1] = 64, o->activation = MM_ACT_TANH;
    o->vf_coef = 0.5, o->max_grad_norm = 0.5, o->adam_eps = 1e-5;
    o->gae_lambda = 0.95, o->n_steps = 2048, o->batch_size = 64, o->n_epochs = 10;
    o->clip_range = 0.2, o->normalize_advantage = 1, o->lr_actor = 3e-4; /* SB3 PPO */
    if (algo == MM_ALGO_A2C || algo == MM_ALGO_QAC) { /* SB3 A2C (QAC borrows its schedule) */
        o->lr_actor = 7e-4, o->n_steps = 5, o->gae_lambda = 1.0, o->normalize_advantage = 0;
        o->use_rmsprop = 1, o->batch_size = 5, o->n_epochs = 1;
    }
    if (algo == MM_ALGO_TRPO) { /* sb3-contrib TRPO */
        o->lr_actor = 1e-3, o->batch_size = 128, o->n_epochs = 10, o->max_grad_norm = 0;
    }
    o->lr_critic = o->lr_actor;
    o->target_kl = 0.01, o->cg_damping = 0.1, o->cg_max_steps = 15;
    o->ls_max_iter = 10, o->ls_decay = 0.8;
}

/* SB3 SAC: [256, 256] ReLU, Adam 3e-4 everywhere, ent_coef "auto" from 1.0, target entropy
 * -dim(A), tau 0.005, batch 256, learning_starts 100, train_freq 1, gradient_steps 1. */
static void defaults_sac(mm_policy_opts *o)
{
    defaults_offpolicy(o, 1);
    o->hidden[0] = 256, o->hidden[1] = 256;
    o->lr_actor = 3e-4, o->lr_critic = 3e-4, o->lr_alpha = 3e-4;
    o->noise = MM_NOISE_NONE, o->noise_sigma = 0, o->policy_delay = 1;
    o->target_noise = 0, o->target_noise_clip = 0;
    o->ent_coef = 1.0, o->ent_auto = 1, o->target_entropy = NAN;
}

static int opts_init(mm_policy_opts *o, int32_t algo)
{
    if (!o || algo < MM_ALGO_DDPG || algo > MM_ALGO_SAC) return MM_E_INVALID_ARG;
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->algo = algo;
    o->n_threads = 1;
    o->act_dim = 1;
    o->n_agents = 1;
    o->gamma = 0.99;
    o->clip_obs = 10.0;
    o->clip_reward = 10.0;                     /* SB3 VecNormalize */
    o->noise_theta = 0.15, o->noise_dt = 1e-2; /* harmless for on-policy kinds */
    o->target_update_interval = 1, o->lr_alpha = 3e-4, o->target_entropy = NAN;
    o->memory_dim = 16, o->memory_seq_len = 16;
    o->sde_sample_freq = -1; /* SB3: draw only when a rollout starts */
    if (algo == MM_ALGO_SAC)
        defaults_sac(o);
    else if (algo == MM_ALGO_DDPG || algo == MM_ALGO_TD3)
        defaults_offpolicy(o, algo == MM_ALGO_TD3);
    else
        defaults_onpolicy(o, algo);
    return MM_OK;
}

/* 0.1 binaries were compiled with a 400-byte mm_policy_opts. Where the build versions symbols
 * (MMI_SYMVER, set by the Makefile, CMake and Meson builds that link with src/libmm.map), they
 * keep reaching mm_policy_opts_init@LIBMM_0.1, which writes exactly those 400 bytes (struct_size
 * 400; mm_policy_create fills the later fields with defaults), while programs built against
 * this header get mm_policy_opts_init@@LIBMM_0.2. Without it (a host compiling src/ into its
 * own library) there is one plain function. */
#define MMI_POLICY_OPTS_SIZE_0_1 400
#if defined(MMI_SYMVER) && defined(__ELF__)
MM_API int mm_policy_opts_init_v0_1(mm_policy_opts *o, int32_t algo);
MM_API int mm_policy_opts_init_v0_2(mm_policy_opts *o, int32_t algo);
__asm__(".symver mm_policy_opts_init_v0_1, mm_policy_opts_init@LIBMM_0.1");
__asm__(".symver mm_policy_opts_init_v0_2, mm_policy_opts_init@@LIBMM_0.2");

int mm_policy_opts_init_v0_1(mm_policy_opts *o, int32_t algo)
{
    mm_policy_opts full;
    int rc;
    if (!o) return MM_E_INVALID_ARG;
    if ((rc = opts_init(&full, algo)) != MM_OK) return rc;
    full.struct_size = MMI_POLICY_OPTS_SIZE_0_1;
    memcpy(o, &full, MMI_POLICY_OPTS_SIZE_0_1);
    return MM_OK;
}

int mm_policy_opts_init_v0_2(mm_policy_opts *o, int32_t algo) { return opts_init(o, algo); }
#else
int mm_policy_opts_init(mm_policy_opts *o, int32_t algo) { return opts_init(o, algo); }
#endif

/* ---- option checks ------------------------------------------------------------------------ */

#define BAD(...) mmi_fail(e, MM_E_INVALID_ARG, __VA_ARGS__)

static int check_spaces(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    int off = mmi_algo_offpolicy(o->algo);
    if (o->algo < MM_ALGO_DDPG || o->algo > MM_ALGO_SAC)
        return BAD("%s: algo %d is not an MM_ALGO_* value", fn, (int)o->algo);
    if (o->obs_dim < 1 || o->obs_dim > (1 << 20))
        return BAD("%s: obs_dim %lld must be in [1, 2^20]", fn, (long long)o->obs_dim);
    if (o->n_actions < 0 || o->n_actions > (1 << 20))
        return BAD("%s: n_actions %lld must be in [0, 2^20]", fn, (long long)o->n_actions);
    if (o->n_actions == 0 && (o->act_dim < 1 || o->act_dim > (1 << 16)))
        return BAD("%s: act_dim %lld must be in [1, 65536]", fn, (long long)o->act_dim);
    if (o->n_actions > 0 && off && o->algo != MM_ALGO_SAC)
        return BAD("%s: DDPG and TD3 need continuous actions (n_actions must be 0)", fn);
    if (o->n_actions == 0 && o->algo == MM_ALGO_QAC)
        return BAD("%s: QAC supports discrete actions only (set n_actions)", fn);
    if (o->n_actions == 1) return BAD("%s: n_actions 1 leaves nothing to choose", fn);
    if (o->n_agents < 1 || o->n_agents > (1 << 20))
        return BAD("%s: n_agents %lld must be in [1, 2^20]", fn, (long long)o->n_agents);
    for (int64_t i = 0; o->n_actions == 0 && i < o->act_dim; i++) {
        float lo = o->act_low ? o->act_low[i] : -1.0f, hi = o->act_high ? o->act_high[i] : 1.0f;
        if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
            return BAD("%s: action bound %lld is [%g, %g]; bounds must be finite with low < "
                       "high",
                       fn, (long long)i, (double)lo, (double)hi);
    }
    return MM_OK;
}

static int check_numbers(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    if (o->n_hidden < 1 || o->n_hidden > 4)
        return BAD("%s: n_hidden %d must be in [1, 4]", fn, (int)o->n_hidden);
    for (int i = 0; i < o->n_hidden; i++)
        if (o->hidden[i] < 1 || o->hidden[i] > 65536)
            return BAD("%s: hidden[%d] = %lld must be in [1, 65536]", fn, i,
                       (long long)o->hidden[i]);
    if (!mmi_act_name(o->activation)) return BAD("%s: unknown activation %d", fn, o->activation);
    if (!(o->gamma >= 0 && o->gamma <= 1) || !(o->tau >= 0 && o->tau <= 1) ||
        !(o->lr_actor >= 0 && o->lr_actor <= 10) || !(o->lr_critic >= 0 && o->lr_critic <= 10))
        return BAD("%s: gamma and tau must be in [0, 1], learning rates in [0, 10]", fn);
    if (!(o->max_grad_norm >= 0) || !(o->clip_obs > 0 && isfinite(o->clip_obs)) ||
        !(o->noise_sigma >= 0) || !(o->noise_theta >= 0) || !(o->noise_dt > 0) ||
        !(o->target_noise >= 0) || !(o->target_noise_clip >= 0) || !(o->ent_coef >= 0) ||
        !(o->vf_coef >= 0) || !(o->clip_range >= 0) || !(o->clip_range_vf >= 0) ||
        !isfinite(o->log_std_init) || !(o->adam_eps > 0 || mmi_algo_offpolicy(o->algo)) ||
        !(o->gae_lambda >= 0 && o->gae_lambda <= 1))
        return BAD("%s: a noise, clip, coefficient or lambda setting is negative or not finite",
                   fn);
    /* A log std is stored as float and exponentiated: 1e300 is a finite double but an
     * infinite float parameter (every sample and log-prob NaN). SAC's clamp bound. */
    if (!(o->log_std_init >= -20 && o->log_std_init <= 20))
        return BAD("%s: log_std_init = %g must be in [-20, 20]", fn, o->log_std_init);
    /* Finite noise settings: an infinite theta, sigma or dt makes every noisy action NaN. */
    if (!isfinite(o->noise_sigma) || !isfinite(o->noise_theta) || !isfinite(o->noise_dt))
        return BAD("%s: noise_sigma, noise_theta and noise_dt must be finite", fn);
    if (o->noise < MM_NOISE_NONE || o->noise > MM_NOISE_OU)
        return BAD("%s: noise %d is not an MM_NOISE_* value", fn, (int)o->noise);
    if (o->norm_obs != 0 && o->norm_obs != 1) return BAD("%s: norm_obs must be 0 or 1", fn);
    if (o->reserved0 || o->reserved1) return BAD("%s: reserved fields must be 0", fn);
    if (o->n_threads < 1 || o->n_threads > 256) return BAD("%s: n_threads must be in [1, 256]", fn);
    return MM_OK;
}

static int check_schedule(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    /* every algorithm: off-policy ones scale their sampled batches with these statistics */
    if ((o->norm_reward < 0 || o->norm_reward > 2) || o->reserved2 != 0 ||
        !(o->clip_reward > 0 && o->clip_reward < 1e300))
        return BAD("%s: norm_reward must be 0, 1 or 2, clip_reward finite and > 0", fn);
    if (mmi_algo_offpolicy(o->algo)) {
        if (o->buffer_size < 1 || o->buffer_size > ((int64_t)1 << 32) || o->batch_size < 1 ||
            o->batch_size > (1 << 20) || o->learning_starts < 0 || o->train_freq < 1 ||
            o->gradient_steps < 1 || o->policy_delay < 1 || o->n_critics < 1 || o->n_critics > 2)
            return BAD("%s: buffer_size, batch_size, train_freq, gradient_steps, policy_delay "
                       "must be >= 1 (n_critics 1 or 2, learning_starts >= 0)",
                       fn);
        return MM_OK;
    }
    if (o->n_steps < 1 || o->n_steps > (1 << 24) || o->batch_size < 1 || o->n_epochs < 1 ||
        o->n_epochs > 100000)
        return BAD("%s: n_steps, batch_size and n_epochs must be >= 1", fn);
    if (o->n_steps * o->n_agents > ((int64_t)1 << 26))
        return mmi_fail(e, MM_E_RANGE, "%s: n_steps x n_agents = %lld is beyond 2^26", fn,
                        (long long)(o->n_steps * o->n_agents));
    if (o->algo == MM_ALGO_TRPO &&
        (!(o->target_kl > 0) || !(o->cg_damping >= 0) || o->cg_max_steps < 1 ||
         o->ls_max_iter < 1 || !(o->ls_decay > 0 && o->ls_decay < 1)))
        return BAD("%s: TRPO needs target_kl > 0, cg_damping >= 0, cg_max_steps >= 1, "
                   "ls_max_iter >= 1, ls_decay in (0, 1)",
                   fn);
    if (o->linear_decay_steps < 0) return BAD("%s: linear_decay_steps must be >= 0", fn);
    if (o->lr_decay_steps < -1 || o->clip_decay_steps < -1)
        return BAD("%s: lr_decay_steps and clip_decay_steps must be >= -1", fn);
    if (!(o->ppo_target_kl >= 0 && o->ppo_target_kl < 1e300))
        return BAD("%s: ppo_target_kl must be finite and >= 0", fn);
    return MM_OK;
}
static int check_sac(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    if (o->algo != MM_ALGO_SAC) return MM_OK;
    if (!(o->ent_coef > 0 && o->ent_coef <= 1e6))
        return BAD("%s: SAC ent_coef (alpha, or its initial value) must be in (0, 1e6]", fn);
    if (o->ent_auto != 0 && o->ent_auto != 1) return BAD("%s: ent_auto must be 0 or 1", fn);
    if (!(o->lr_alpha >= 0 && o->lr_alpha <= 10)) return BAD("%s: lr_alpha must be in [0, 10]", fn);
    if (isinf(o->target_entropy))
        return BAD("%s: target_entropy must be finite (NaN = the default)", fn);
    if (o->target_update_interval < 1) return BAD("%s: target_update_interval must be >= 1", fn);
    return MM_OK;
}
static int check_memory(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    if (o->memory == MM_MEMORY_NONE && o->reserved3 == 0) return MM_OK;
    if (o->memory != MM_MEMORY_LRU || o->reserved3 != 0)
        return BAD("%s: memory %d is not an MM_MEMORY_* value (reserved3 must be 0)", fn,
                   (int)o->memory);
    if (o->algo != MM_ALGO_PPO)
        return BAD("%s: a memory core trains with PPO only (algo %d)", fn, (int)o->algo);
    if (o->memory_dim < 1 || o->memory_dim > 1024)
        return BAD("%s: memory_dim %lld must be in [1, 1024]", fn, (long long)o->memory_dim);
    if (o->memory_seq_len < 1 || o->memory_seq_len > o->n_steps)
        return BAD("%s: memory_seq_len %lld must be in [1, n_steps = %lld]", fn,
                   (long long)o->memory_seq_len, (long long)o->n_steps);
    return MM_OK;
}
/* gSDE: continuous A2C and PPO (TRPO's natural step and KL assume a state-independent std). */
static int check_sde(const mm_policy_opts *o, mmi_err *e, const char *fn)
{
    int64_t F = o->hidden[o->n_hidden - 1];
    if (o->use_sde == 0) return MM_OK;
    if (o->use_sde != 1) return BAD("%s: use_sde must be 0 or 1, got %d", fn, (int)o->use_sde);
    if ((o->algo != MM_ALGO_PPO && o->algo != MM_ALGO_A2C) || o->n_actions > 0)
        return BAD("%s: use_sde applies to continuous A2C and PPO only (algo %d, n_actions "
                   "%lld)",
                   fn, (int)o->algo, (long long)o->n_actions);
    if (o->sde_sample_freq != -1 && o->sde_sample_freq < 1)
        return BAD("%s: sde_sample_freq must be -1 (draw at rollout and episode start) or >= 1, "
                   "got %d",
                   fn, (int)o->sde_sample_freq);
    if (F * o->act_dim > ((int64_t)1 << 24))
        return mmi_fail(e, MM_E_RANGE,
                        "%s: gSDE log std of %lld x %lld exceeds 2^24 entries (last hidden "
                        "width x act_dim)",
                        fn, (long long)F, (long long)o->act_dim);
    return MM_OK;
}
#undef BAD

/* ---- networks ------------------------------------------------------------------------------ */

static uint64_t sub_seed(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (k + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Builds in -> hidden... -> out MLP (orthogonal init as SB3 when ortho), optional tanh head. */
static int build_mlp(mm_policy *p, mm_model **out, int64_t in, int64_t n_out, int ortho,
                     double head_gain, int tanh_head, uint64_t k, int64_t maxb)
{
    const mm_policy_opts *o = &p->o;
    mm_model_opts mo;
    mm_model *m = NULL;
    int init = ortho ? MM_INIT_ORTHOGONAL : MM_INIT_DEFAULT, rc;
    char buf[MMI_ERRMSG_SIZE] = "";
    if ((rc = mm_model_opts_init(&mo)) != MM_OK) return rc;
    mo.alloc = o->alloc;
    mo.input_dim = in;
    mo.max_batch = maxb;
    mo.seed = sub_seed(o->seed, k);
    mo.n_threads = o->n_threads;
    mo.err_buf = buf, mo.err_buf_size = sizeof buf;
    rc = mm_model_create(&m, &mo);
    for (int32_t i = 0; rc == MM_OK && i < o->n_hidden; i++) {
        rc = mm_model_add_dense(m, o->hidden[i], 1, init, sqrt(2.0));
        if (rc == MM_OK) rc = mm_model_add_activation(m, o->activation);
    }
    if (rc == MM_OK) rc = mm_model_add_dense(m, n_out, 1, init, head_gain);
    if (rc == MM_OK && tanh_head) rc = mm_model_add_activation(m, MM_ACT_TANH);
    if (rc == MM_OK) rc = mm_model_finalize(m);
    if (rc != MM_OK) {
        mmi_fail(&p->err, rc, "mm_policy_create: network: %s", m ? mm_model_errmsg(m) : buf);
        mm_model_free(m);
        return rc;
    }
    if (p->pool) mmi_model_share_pool(m, p->pool);
    *out = m;
    return MM_OK;
}

static int set_opt(mm_policy *p, mm_model *m, double lr)
{
    int rc;
    int rms =
        !p->offpolicy && p->o.use_rmsprop && p->o.algo != MM_ALGO_TRPO && p->o.algo != MM_ALGO_PPO;
    if ((rc = mm_model_set_optimizer(m, rms ? MM_OPT_RMSPROP : MM_OPT_ADAM)) != MM_OK)
        return mmi_pol_model_fail(p, m, rc, "mm_policy_create");
    rc = mm_model_set_f64(m, MM_MODEL_LR, lr);
    if (rc == MM_OK && rms) rc = mm_model_set_f64(m, MM_MODEL_ALPHA, 0.99);
    if (rc == MM_OK && !p->offpolicy) rc = mm_model_set_f64(m, MM_MODEL_EPS, p->o.adam_eps);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, m, rc, "mm_policy_create");
}

static int build_offpolicy(mm_policy *p)
{
    int64_t od = p->obs_dim, ad = p->act_dim;
    int rc = build_mlp(p, &p->actor, od, ad, 0, 1.0, 1, 0, p->maxb);
    if (rc == MM_OK) rc = build_mlp(p, &p->actor_t, od, ad, 0, 1.0, 1, 0, p->maxb);
    if (rc == MM_OK) rc = set_opt(p, p->actor, p->o.lr_actor);
    for (int32_t k = 0; rc == MM_OK && k < p->o.n_critics; k++) {
        rc = build_mlp(p, &p->critic[k], od + ad, 1, 0, 1.0, 0, 1 + (uint64_t)k, p->maxb);
        if (rc == MM_OK)
            rc = build_mlp(p, &p->critic_t[k], od + ad, 1, 0, 1.0, 0, 1 + (uint64_t)k, p->maxb);
        if (rc == MM_OK) rc = set_opt(p, p->critic[k], p->o.lr_critic);
    }
    return rc; /* targets were drawn from the same seeds: exact copies, as SB3 */
}

/* A dense layer fed a zero input whose bias is the trainable vector (log std, log alpha). */
static int build_bias_vector(mm_policy *p, mm_model **out, int64_t n, double init, double lr)
{
    mm_model_opts mo;
    float *w;
    int rc = mm_model_opts_init(&mo);
    mo.alloc = p->o.alloc, mo.input_dim = 1, mo.max_batch = 1;
    if (rc == MM_OK) rc = mm_model_create(out, &mo);
    if (rc == MM_OK) rc = mm_model_add_dense(*out, n, 1, MM_INIT_DEFAULT, 1.0);
    if (rc == MM_OK) rc = mm_model_finalize(*out);
    if (rc == MM_OK) rc = mm_model_params(*out, &w, NULL);
    if (rc != MM_OK) return mmi_fail(&p->err, rc, "mm_policy_create: bias-vector parameters");
    for (int64_t i = 0; i < n; i++) w[i] = 0.0f, w[n + i] = (float)init;
    return lr >= 0 ? set_opt(p, *out, lr) : MM_OK;
}

/* SAC: actor obs -> [mean | log std] (one dense head = SB3's two heads on the shared latent),
 * n_critics Q(s, a) nets with targets (no actor target), log alpha. Discrete SAC: actor
 * obs -> n_actions logits, critics obs -> Q(s, .) of every action. */
static int build_sac(mm_policy *p)
{
    int64_t od = p->obs_dim, ad = p->act_dim;
    int64_t q_in = p->discrete ? od : od + ad, q_out = p->discrete ? p->head_dim : 1;
    int rc = build_mlp(p, &p->actor, od, p->head_dim, 0, 1.0, 0, 0, p->maxb);
    if (rc == MM_OK) rc = set_opt(p, p->actor, p->o.lr_actor);
    for (int32_t k = 0; rc == MM_OK && k < p->o.n_critics; k++) {
        rc = build_mlp(p, &p->critic[k], q_in, q_out, 0, 1.0, 0, 1 + (uint64_t)k, p->maxb);
        if (rc == MM_OK)
            rc = build_mlp(p, &p->critic_t[k], q_in, q_out, 0, 1.0, 0, 1 + (uint64_t)k, p->maxb);
        if (rc == MM_OK) rc = set_opt(p, p->critic[k], p->o.lr_critic);
    }
    if (rc == MM_OK) rc = build_bias_vector(p, &p->ent, 1, log(p->o.ent_coef), p->o.lr_alpha);
    return rc;
}

static int build_onpolicy(mm_policy *p)
{
    int64_t od = p->in_dim; /* the observation, with a memory core [observation, its output] */
    int rc = build_mlp(p, &p->actor, od, p->head_dim, 1, 0.01, 0, 0, p->maxb);
    /* the actor act uses while a budgeted update is under way (update_budget.c) */
    if (rc == MM_OK)
        rc = build_mlp(p, &p->upd.actor_snap, od, p->head_dim, 1, 0.01, 0, 0, p->o.n_agents);
    if (rc == MM_OK && p->o.algo != MM_ALGO_TRPO) rc = set_opt(p, p->actor, p->o.lr_actor);
    if (rc == MM_OK && p->o.algo == MM_ALGO_QAC) {
        rc = build_mlp(p, &p->critic[0], od, p->head_dim, 1, 1.0, 0, 1, p->maxb);
        if (rc == MM_OK) rc = set_opt(p, p->critic[0], p->o.lr_critic);
    } else if (rc == MM_OK) {
        rc = build_mlp(p, &p->vf, od, 1, 1, 1.0, 0, 1, p->maxb);
        if (rc == MM_OK) rc = set_opt(p, p->vf, p->o.lr_critic);
    }
    if (rc == MM_OK && !p->discrete) /* TRPO's log std moves by the natural step: no optimizer */
        rc = build_bias_vector(p, &p->logstd, p->n_ls, p->o.log_std_init,
                               p->o.algo != MM_ALGO_TRPO ? p->o.lr_actor : -1.0);
    if (rc == MM_OK) rc = mmi_mem_build(p);
    return rc;
}

/* ---- buffers ------------------------------------------------------------------------------- */

/* Every buffer of the handle, in order, from one carver (measuring: the pointers are NULL). */
static void layout(mm_policy *p, mmi_carve *y)
{
    const mm_policy_opts *o = &p->o;
    int64_t od = p->obs_dim, ad = p->act_dim, na = o->n_agents, nb = p->maxb, wide = p->wide;
    int64_t cap = p->offpolicy ? o->buffer_size : 0;
    int64_t tn = p->offpolicy ? 0 : o->n_steps * na;
    int64_t npi = p->offpolicy ? 0 : p->n_pi;
    int64_t kept = p->offpolicy ? 0 : mmi_model_kept_w_floats(p->actor); /* act's W^T panel */
    int sac = o->algo == MM_ALGO_SAC && !p->discrete; /* the squashed-Gaussian buffers */
    float **rows[] = {&p->w_a, &p->w_b, &p->w_c, &p->w_d, &p->w_e, &p->w_f};
    float **flat[] = {&p->trpo.grad,  &p->trpo.step, &p->trpo.theta_old, &p->trpo.fx,
                      &p->trpo.trial, &p->trpo.cg_r, &p->trpo.cg_d,      &p->trpo.cg_ad};
    float **per_step[] = {&p->ro.logp, &p->ro.val, &p->ro.rew, &p->ro.done, &p->ro.adv, &p->ro.ret};
    p->low = (float *)mmi_carve_take(y, ad, 4), p->high = (float *)mmi_carve_take(y, ad, 4);
    p->ou = (float *)mmi_carve_take(y, na * ad, 4);
    p->slots.raw = (float *)mmi_carve_take(y, na * ad, 4);
    p->slots.out = (float *)mmi_carve_take(y, na * ad, 4);
    p->slots.pending = (uint8_t *)mmi_carve_take(y, na, 1);
    p->upd.logstd_snap = (float *)mmi_carve_take(y, p->n_ls, 4);
    p->sde.W = (float *)mmi_carve_take(y, na * p->sde.F * ad, 4);
    p->sde.left = (int64_t *)mmi_carve_take(y, p->sde.F ? na : 0, 8);
    p->sde.ls_buf = (float *)mmi_carve_take(y, p->sde.F ? 1 + 2 * p->sde.F * ad : 0, 4);
    p->sde.S = (double *)mmi_carve_take(y, p->sde.F ? ad : 0, 8);
    p->sde.s2 = (double *)mmi_carve_take(y, p->sde.F * ad, 8);
    p->rn.ret = (double *)mmi_carve_take(y, na, 8);
    p->rn.scaled = (float *)mmi_carve_take(y, na, 4);
    for (int i = 0; i < 6; i++) *rows[i] = (float *)mmi_carve_take(y, nb * wide, 4);
    p->w_dbl = (double *)mmi_carve_take(y, nb * 4, 8);
    p->coef = (double *)mmi_carve_take(y, nb, 8);
    p->rms_work = (double *)mmi_carve_take(y, od * 2, 8);
    p->prob = (double *)mmi_carve_take(y, p->head_dim, 8);
    p->dls = (double *)mmi_carve_take(y, p->n_ls > p->head_dim ? p->n_ls : p->head_dim, 8);
    p->w_idx = (int64_t *)mmi_carve_take(y, nb, 8);
    p->sac_eps = (float *)mmi_carve_take(y, sac ? 2 * nb * ad : 0, 4);
    p->sac_row = (double *)mmi_carve_take(y, sac ? 6 * ad : 0, 8);
    p->rms.mean = (double *)mmi_carve_take(y, od, 8);
    p->rms.var = (double *)mmi_carve_take(y, od, 8);
    p->rms.f_mean = (float *)mmi_carve_take(y, od, 4);
    p->rms.f_istd = (float *)mmi_carve_take(y, od, 4);
    p->rb.obs = (float *)mmi_carve_take(y, cap * od, 4);
    p->rb.next_obs = (float *)mmi_carve_take(y, cap * od, 4);
    p->rb.act = (float *)mmi_carve_take(y, cap * ad, 4);
    p->rb.rew = (float *)mmi_carve_take(y, cap, 4);
    p->rb.term = (float *)mmi_carve_take(y, cap, 4);
    p->ro.obs = (float *)mmi_carve_take(y, tn * od, 4);
    p->ro.act = (float *)mmi_carve_take(y, tn * ad, 4);
    for (int i = 0; i < 6; i++) *per_step[i] = (float *)mmi_carve_take(y, tn, 4);
    p->ro.last_obs = (float *)mmi_carve_take(y, na * od, 4);
    p->ro.last_val = (float *)mmi_carve_take(y, na, 4);
    for (int i = 0; i < 8; i++) *flat[i] = (float *)mmi_carve_take(y, npi, 4);
    p->act_w.panel = kept ? (float *)mmi_carve_take(y, kept, 4) : NULL;
    mmi_mem_layout(p, y);
}

/* Measures the buffers, allocates them once and carves them. */
static int alloc_buffers(mm_policy *p)
{
    mmi_carve y = mmi_carve_measure();
    layout(p, &y);
    if (y.overflow) return mmi_fail(&p->err, MM_E_RANGE, "mm_policy_create: buffer sizes overflow");
    if (!(p->block = mmi_calloc(&p->alloc, y.off)))
        return mmi_fail(&p->err, MM_E_NOMEM, "mm_policy_create: %zu bytes of buffers", y.off);
    p->block_size = y.off;
    y = mmi_carve_at(p->block, p->block_size);
    layout(p, &y);
    return MM_OK;
}

/* ---- create / free --------------------------------------------------------------------------- */

static void size_policy(mm_policy *p)
{
    const mm_policy_opts *o = &p->o;
    p->offpolicy = mmi_algo_offpolicy(o->algo);
    p->discrete = o->n_actions > 0;
    p->obs_dim = o->obs_dim;
    p->act_dim = p->discrete ? 1 : o->act_dim;
    p->head_dim = p->discrete ? o->n_actions : o->act_dim;
    if (o->algo == MM_ALGO_SAC && !p->discrete) p->head_dim = 2 * o->act_dim; /* mean, log std */
    p->maxb = p->offpolicy ? (o->batch_size > o->n_agents ? o->batch_size : o->n_agents)
                           : o->n_steps * o->n_agents;
    if (p->maxb < o->n_agents) p->maxb = o->n_agents;
    p->in_dim = p->obs_dim;
    if (o->memory != MM_MEMORY_NONE) {
        p->mem.H = o->memory_dim, p->mem.N = o->memory_dim, p->mem.L = o->memory_seq_len;
        p->in_dim = p->obs_dim + p->mem.H;
    }
    p->wide = p->in_dim + (p->act_dim > p->head_dim ? p->act_dim : p->head_dim) + 2;
    p->sde.F = o->use_sde ? o->hidden[o->n_hidden - 1] : 0;
    p->n_ls = p->sde.F ? p->sde.F * p->act_dim : p->act_dim;
}

static int create_parts(mm_policy *p)
{
    int rc = mmi_pool_create(&p->pool, p->o.n_threads, &p->alloc, &p->err);
    int64_t n = 0;
    if (rc == MM_OK)
        rc = p->o.algo == MM_ALGO_SAC ? build_sac(p)
             : p->offpolicy           ? build_offpolicy(p)
                                      : build_onpolicy(p);
    if (rc != MM_OK) return rc;
    if (!p->offpolicy) {
        if ((rc = mm_model_num_params(p->actor, &n)) != MM_OK) return rc;
        p->n_pi = n + (p->discrete ? 0 : p->act_dim);
    }
    if ((rc = alloc_buffers(p)) != MM_OK) return rc;
    for (int64_t i = 0; i < p->act_dim; i++) {
        p->low[i] = p->o.act_low && !p->discrete ? p->o.act_low[i] : -1.0f;
        p->high[i] = p->o.act_high && !p->discrete ? p->o.act_high[i] : 1.0f;
    }
    p->o.act_low = p->low, p->o.act_high = p->high;
    p->rb.cap = p->offpolicy ? p->o.buffer_size : 0;
    p->rb.obs_dim = p->obs_dim, p->rb.act_dim = p->act_dim;
    p->ro.n_steps = p->offpolicy ? 0 : p->o.n_steps;
    p->ro.n_agents = p->o.n_agents, p->ro.obs_dim = p->obs_dim, p->ro.act_dim = p->act_dim;
    p->norm = p->o.norm_obs;
    p->rms.dim = p->obs_dim, p->rms.count = 1e-4, p->rms.clip = p->o.clip_obs;
    for (int64_t i = 0; i < p->obs_dim; i++) p->rms.var[i] = 1.0;
    mmi_rms_refresh(&p->rms);
    mmi_rng_seed(&p->rng, p->o.seed ^ 0x5DEECE66Dull);
    p->rn.on = p->o.norm_reward, p->rn.clip = p->o.clip_reward;
    p->rn.mean = 0, p->rn.var = 1, p->rn.count = 1e-4; /* SB3 RunningMeanStd start */
    p->st_ls = 0;
    return MM_OK;
}

static void export_error(const mm_policy_opts *opts, const mmi_err *e)
{
    mmi_opts_export_error(opts, offsetof(mm_policy_opts, err_buf),
                          offsetof(mm_policy_opts, err_buf_size), e);
}

int mm_policy_create(mm_policy **out, const mm_policy_opts *opts)
{
    static const char fn[] = "mm_policy_create";
    mm_policy_opts o;
    mmi_alloc a;
    mmi_err e;
    mm_policy *p;
    int32_t algo;
    int rc;
    mmi_err_clear(&e);
    if (out) *out = NULL;
    if (!out || !opts) return mmi_fail(&e, MM_E_INVALID_ARG, "%s: NULL argument", fn);
    /* defaults of the caller's algorithm (read only if its struct_size covers the field); an
     * unknown one is refused after the copy */
    algo = MM_ALGO_DDPG;
    if (opts->struct_size >= offsetof(mm_policy_opts, algo) + sizeof opts->algo &&
        opts->algo >= MM_ALGO_DDPG && opts->algo <= MM_ALGO_SAC)
        algo = opts->algo;
    if ((rc = mm_policy_opts_init(&o, algo))) return rc;
    rc = mmi_opts_copy(&o, opts, sizeof o, &e, fn);
    if (rc == MM_OK) rc = check_spaces(&o, &e, fn);
    if (rc == MM_OK) rc = check_numbers(&o, &e, fn);
    if (rc == MM_OK) rc = check_schedule(&o, &e, fn);
    if (rc == MM_OK) rc = check_sac(&o, &e, fn);
    if (rc == MM_OK) rc = check_memory(&o, &e, fn);
    if (rc == MM_OK) rc = check_sde(&o, &e, fn);
    if (rc == MM_OK) rc = mmi_alloc_init(&a, o.alloc, &e);
    if (rc == MM_OK && !(p = mmi_calloc(&a, sizeof *p)))
        rc = mmi_fail(&e, MM_E_NOMEM, "%s: handle", fn);
    if (rc != MM_OK) {
        export_error(opts, &e);
        return rc;
    }
    p->alloc = a;
    p->o = o;
    size_policy(p);
    if ((rc = create_parts(p)) != MM_OK) {
        export_error(opts, &p->err);
        mm_policy_free(p);
        return rc;
    }
    p->o.err_buf = NULL, p->o.err_buf_size = 0, p->o.alloc = NULL;
    *out = p;
    return MM_OK;
}

void mm_policy_free(mm_policy *p)
{
    if (!p) return;
    mm_model_free(p->actor);
    mm_model_free(p->actor_t);
    mm_model_free(p->critic[0]);
    mm_model_free(p->critic[1]);
    mm_model_free(p->critic_t[0]);
    mm_model_free(p->critic_t[1]);
    mm_model_free(p->vf);
    mm_model_free(p->logstd);
    mm_model_free(p->upd.actor_snap);
    mm_model_free(p->ent);
    mm_model_free(p->mem.m);
    mmi_pool_free(p->pool); /* after the networks that share it */
    if (p->block) mmi_free(&p->alloc, p->block, p->block_size);
    mmi_alloc a = p->alloc;
    mmi_free(&a, p, sizeof *p);
}

int mm_policy_reset_agent(mm_policy *p, int64_t i)
{
    if (!p) return MM_E_INVALID_ARG;
    if (i < 0 || i >= p->o.n_agents)
        return mmi_fail(&p->err, MM_E_RANGE, "mm_policy_reset_agent: agent %lld outside 0..%lld",
                        (long long)i, (long long)(p->o.n_agents - 1));
    mmi_mem_reset(p, i);
    mmi_sde_reset(p, i); /* a fresh episode draws fresh exploration noise */
    return MM_OK;
}

const char *mm_policy_errmsg(const mm_policy *p) { return p ? p->err.msg : "invalid handle"; }

/* ---- helpers shared by the policy files ------------------------------------------------------ */

mm_tensor *mmi_pol_view(mm_policy *p, int k, float *data, int64_t rows, int64_t cols)
{
    mm_tensor *t = &p->views[k];
    MMI_ASSERT(k >= 0 && k < MMI_POL_VIEWS && rows >= 1 && cols >= 1);
    t->alloc = p->alloc;
    t->data = data;
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->numel = rows * cols;
    t->owned = 0;
    t->err.msg[0] = 0;
    return t;
}

/* 1 - steps / horizon clamped at 0; own: the quantity's own setting (-1 constant, 0 follow
 * linear_decay_steps, > 0 its horizon). */
static double linear_factor(const mm_policy *p, int64_t own)
{
    int64_t h = own != 0 ? own : p->o.linear_decay_steps;
    double f;
    if (h <= 0) return 1.0;
    f = 1.0 - (double)p->steps / (double)h;
    return f > 0 ? f : 0.0;
}

double mmi_pol_lr_factor(const mm_policy *p) { return linear_factor(p, p->o.lr_decay_steps); }

double mmi_pol_clip_factor(const mm_policy *p) { return linear_factor(p, p->o.clip_decay_steps); }

mmi_rng *mmi_pol_act_rng(mm_policy *p) { return p->upd.active ? &p->upd.act_rng : &p->rng; }

int mmi_pol_model_fail(mm_policy *p, mm_model *m, int rc, const char *fn)
{
    return mmi_fail(&p->err, rc, "%s: %s", fn, mm_model_errmsg(m));
}

/* ---- run-time parameters ----------------------------------------------------------------- */

static double *param_slot(mm_policy *p, int32_t id)
{
    switch (id) {
    case MM_POLICY_LR_ACTOR:
        return &p->o.lr_actor;
    case MM_POLICY_LR_CRITIC:
        return &p->o.lr_critic;
    case MM_POLICY_GAMMA:
        return &p->o.gamma;
    case MM_POLICY_TAU:
        return &p->o.tau;
    case MM_POLICY_NOISE_SIGMA:
        return &p->o.noise_sigma;
    case MM_POLICY_ENT_COEF:
        return &p->o.ent_coef;
    case MM_POLICY_CLIP_RANGE:
        return &p->o.clip_range;
    case MM_POLICY_TARGET_KL:
        return &p->o.target_kl;
    case MM_POLICY_VF_COEF:
        return &p->o.vf_coef;
    case MM_POLICY_MAX_GRAD_NORM:
        return &p->o.max_grad_norm;
    case MM_POLICY_CG_DAMPING:
        return &p->o.cg_damping;
    default:
        return NULL;
    }
}

int mm_policy_set_f64(mm_policy *p, int32_t id, double v)
{
    static const char fn[] = "mm_policy_set_f64";
    double *slot;
    int rc;
    if (!p) return MM_E_INVALID_ARG;
    if ((rc = mmi_param_check(id, v, &p->err, fn)) != MM_OK) return rc;
    if (!(slot = param_slot(p, id)))
        return mmi_fail(&p->err, MM_E_UNSUPPORTED, "%s: parameter %d is read-only", fn, (int)id);
    *slot = v;
    return MM_OK;
}

int mm_policy_get_f64(const mm_policy *cp, int32_t id, double *v)
{
    /* The getter is logically const; its failure text still goes to the handle. */
    mm_policy *p = (mm_policy *)cp;
    double *slot;
    if (!p || !v)
        return p ? mmi_fail(&p->err, MM_E_INVALID_ARG, "mm_policy_get_f64: v is NULL")
                 : MM_E_INVALID_ARG;
    if ((slot = param_slot(p, id))) {
        *v = *slot;
        return MM_OK;
    }
    switch (id) {
    case MM_POLICY_STAT_ACTOR_LOSS:
        *v = p->st_actor_loss;
        break;
    case MM_POLICY_STAT_CRITIC_LOSS:
        *v = p->st_critic_loss;
        break;
    case MM_POLICY_STAT_KL:
        *v = p->st_kl;
        break;
    case MM_POLICY_STAT_ENTROPY:
        *v = p->st_entropy;
        break;
    case MM_POLICY_STAT_EXPLAINED_VAR:
        *v = p->st_ev;
        break;
    case MM_POLICY_STAT_UPDATES:
        *v = (double)p->n_updates;
        break;
    case MM_POLICY_STAT_STEPS:
        *v = (double)p->steps;
        break;
    case MM_POLICY_STAT_CLIP_FRACTION:
        *v = p->st_clip_frac;
        break;
    case MM_POLICY_STAT_LS_STEPS:
        *v = p->st_ls;
        break;
    case MM_POLICY_STAT_Q_MEAN:
        *v = p->st_q_mean;
        break;
    case MM_POLICY_STAT_EPOCHS:
        *v = (double)p->upd.epochs_run;
        break;
    case MM_POLICY_STAT_UPDATING:
        *v = p->upd.active;
        break;
    case MM_POLICY_STAT_RETURN_STD:
        *v = sqrt(p->rn.var + 1e-8);
        break;
    case MM_POLICY_STAT_ENT_COEF:
        *v = p->o.algo == MM_ALGO_SAC ? mmi_sac_alpha(p) : 0.0;
        break;
    default:
        return mmi_fail(&p->err, MM_E_UNSUPPORTED, "mm_policy_get_f64: unknown parameter id %d",
                        (int)id);
    }
    return MM_OK;
}
