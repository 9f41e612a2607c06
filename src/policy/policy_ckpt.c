/* SPDX-License-Identifier: MIT */
/* policy_ckpt.c — the training state of a policy checkpoint (mm_policy_save_ex with
 * MM_POLICY_SAVE_CHECKPOINT): everything besides the weights that decides what the next act,
 * observe and update compute, so that save -> load into a fresh handle -> continue equals the
 * uninterrupted run bit for bit.
 *
 * One table, k_blocks, holds one entry per state block: its tensor name ("ckpt.*"), dtype,
 * shape, where it lives (handle memory, or the staging struct mmi_ckpt for values packed from
 * scalar fields) and the check its values get. Saving lists every entry, loading checks every
 * entry before anything is copied. New training state (a reward normaliser, a temperature)
 * is one more entry in k_blocks — plus, for a scalar field, one slot in pack / unpack — and
 * nothing else changes. The optimizer of every network that has one (moments, step counts,
 * per-layer steps) travels as that network's own model file bytes ("ckpt.optimizer.<net>",
 * U8), written by mm_model_save_mem with MM_SAVE_OPTIMIZER_STATE and read back through
 * mm_model_load_mem, so the model floor stays the one owner of its state format. */
#include "mmi_policy_io.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Index of each counter in mmi_ckpt.cnt. The last three are the sizes the state was laid out
 * for: a checkpoint loads only into a policy with the same buffer_size, n_agents and n_steps. */
enum {
    C_STEPS,
    C_CALLS,
    C_SINCE,
    C_PENDING,
    C_UPDATES,
    C_RB_POS,
    C_RB_SIZE,
    C_RO_T,
    C_RB_CAP,
    C_AGENTS,
    C_RO_STEPS
};

static const int32_t k_param_ids[MMI_CKPT_PARAMS] = {
    MM_POLICY_LR_ACTOR,    MM_POLICY_LR_CRITIC,     MM_POLICY_GAMMA,      MM_POLICY_TAU,
    MM_POLICY_NOISE_SIGMA, MM_POLICY_ENT_COEF,      MM_POLICY_CLIP_RANGE, MM_POLICY_TARGET_KL,
    MM_POLICY_VF_COEF,     MM_POLICY_MAX_GRAD_NORM, MM_POLICY_CG_DAMPING};

/* A stored run-time parameter differs from the policy's own when its bits differ: settings an
 * algorithm ignores are stored as the caller gave them (a TD3 policy's cg_damping may be NaN),
 * and `!=` would call NaN changed and refuse the policy's own checkpoint. */
static int param_changed(double cur, double stored)
{
    return memcmp(&cur, &stored, sizeof cur) != 0;
}

static void pack(mm_policy *p, mmi_ckpt *s)
{
    const int64_t c[MMI_CKPT_COUNTERS] = {p->steps,      p->calls,     p->calls_since_train,
                                          p->pending,    p->n_updates, p->rb.pos,
                                          p->rb.size,    p->ro.t,      p->rb.cap,
                                          p->o.n_agents, p->ro.n_steps};
    const double st[MMI_CKPT_STATS] = {
        p->st_actor_loss, p->st_critic_loss, p->st_kl,
        p->st_entropy,    p->st_ev,          p->st_clip_frac,
        p->st_ls,         p->st_q_mean,      (double)p->upd.epochs_run};
    memcpy(s->cnt, c, sizeof c);
    memcpy(s->rng, p->rng.s, sizeof s->rng);
    for (int i = 0; i < MMI_CKPT_PARAMS; i++)
        if (mm_policy_get_f64(p, k_param_ids[i], &s->params[i]) != MM_OK) s->params[i] = 0;
    memcpy(s->stats, st, sizeof st);
    s->rnorm[0] = p->rn.mean, s->rnorm[1] = p->rn.var, s->rnorm[2] = p->rn.count;
}

static void unpack(mm_policy *p, const mmi_ckpt *s)
{
    const int64_t *c = s->cnt;
    const double *st = s->stats;
    p->steps = c[C_STEPS], p->calls = c[C_CALLS], p->calls_since_train = c[C_SINCE];
    p->pending = c[C_PENDING], p->n_updates = c[C_UPDATES];
    p->rb.pos = c[C_RB_POS], p->rb.size = c[C_RB_SIZE], p->ro.t = c[C_RO_T];
    memcpy(p->rng.s, s->rng, sizeof s->rng);
    for (int i = 0; i < MMI_CKPT_PARAMS; i++) {
        double cur = 0;
        int rc = mm_policy_get_f64(p, k_param_ids[i], &cur);
        /* unchanged values may lie outside the setter's bounds (target_kl 0 off-policy) */
        if (rc == MM_OK && param_changed(cur, s->params[i]))
            rc = mm_policy_set_f64(p, k_param_ids[i], s->params[i]);
        MMI_ASSERT(rc == MM_OK); /* checked by check_staged */
        (void)rc;
    }
    p->st_actor_loss = st[0], p->st_critic_loss = st[1], p->st_kl = st[2];
    p->st_entropy = st[3], p->st_ev = st[4], p->st_clip_frac = st[5], p->st_ls = st[6];
    p->st_q_mean = st[7], p->upd.epochs_run = (int64_t)st[8];
    if (p->rn.on) p->rn.mean = s->rnorm[0], p->rn.var = s->rnorm[1], p->rn.count = s->rnorm[2];
}

/* ---- the table ------------------------------------------------------------------------------ */
enum {
    CK_ANY = 0,
    CK_FINITE = 1,
    CK_PENDING = 2,  /* act slot counts: 0, 1 or 2 */
    CK_FLAG = 3,     /* 0 or 1 */
    CK_SDE_LEFT = 4, /* gSDE acts left: 0 .. sde_sample_freq - 1, or -1 / 0 when it is -1 */
    CK_RN_RET = 5,   /* reward-normaliser returns: |x| <= MMI_RN_BOUND (F64) */
    CK_ACTION = 6    /* stored actions: finite; an index in [0, n_actions) if discrete */
};

/* Largest reward-normaliser return or mean magnitude a checkpoint may carry. Returns built from
 * float rewards stay below 2^63 steps x FLT_MAX ~ 3e57; the bound keeps the normaliser's
 * squares (and the variance times the count) far from double overflow, which a finite 1e306
 * return reached on the next observe (variance +Inf: the next checkpoint failed to load). */
#define MMI_RN_BOUND 1e100

typedef struct ck_block {
    const char *name;
    int32_t dtype;
    int32_t check;
    int32_t staged; /* lives in mmi_ckpt (fixed shape, read before the others) */
    /* shape: rows x cols (cols 0: a vector); s holds the counters (packed or read) */
    void (*shape)(const mm_policy *p, const mmi_ckpt *s, int64_t *rows, int64_t *cols);
    void *(*at)(mm_policy *p, mmi_ckpt *s);
} ck_block;

#define OD p->obs_dim
#define AD p->act_dim
#define NA p->o.n_agents
static void sh_cnt(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)p, (void)s;
    *r = MMI_CKPT_COUNTERS, *c = 0;
}
static void sh_rng(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)p, (void)s;
    *r = 4, *c = 0;
}
static void sh_par(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)p, (void)s;
    *r = MMI_CKPT_PARAMS, *c = 0;
}
static void sh_sta(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)p, (void)s;
    *r = MMI_CKPT_STATS, *c = 0;
}
static void sh_rn(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->rn.on ? MMI_CKPT_RNORM : 0, *c = 0;
}
static void sh_rn_ret(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->rn.on ? NA : 0, *c = 0;
}
static void sh_agent_one(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->slots.pending ? NA : 0, *c = 0;
}
static void sh_slots(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->slots.raw ? NA : 0, *c = AD;
}
static void sh_agent_act(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = NA, *c = AD;
}
static void sh_rb_obs(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = s->cnt[C_RB_SIZE], *c = OD;
}
static void sh_rb_act(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = s->cnt[C_RB_SIZE], *c = AD;
}
static void sh_rb_one(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)p;
    *r = s->cnt[C_RB_SIZE], *c = 0;
}
static void sh_ro_obs(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = s->cnt[C_RO_T] * NA, *c = OD;
}
static void sh_ro_act(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = s->cnt[C_RO_T] * NA, *c = AD;
}
static void sh_ro_one(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = s->cnt[C_RO_T] * NA, *c = 0;
}
static void sh_ro_last(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = p->ro.n_steps ? NA : 0, *c = OD;
    (void)s;
}
static void sh_mem_agent(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->mem.m ? NA : 0, *c = 2 * p->mem.N;
}
static void sh_mem_one(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->mem.m ? NA : 0, *c = 0;
}
static void sh_mem_y(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->mem.m ? NA : 0, *c = p->mem.H;
}
static void sh_mem_h0(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = p->mem.m ? s->cnt[C_RO_T] * NA : 0, *c = 2 * p->mem.N;
}
static void sh_sde_w(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->sde.F ? NA : 0, *c = p->sde.F * AD;
}
static void sh_sde_one(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    (void)s;
    *r = p->sde.F ? NA : 0, *c = 0;
}
static void sh_ro_lastv(const mm_policy *p, const mmi_ckpt *s, int64_t *r, int64_t *c)
{
    *r = p->ro.n_steps ? NA : 0, *c = 0;
    (void)s;
}
#undef OD
#undef AD
#undef NA

static void *at_cnt(mm_policy *p, mmi_ckpt *s)
{
    (void)p;
    return s->cnt;
}
static void *at_rng(mm_policy *p, mmi_ckpt *s)
{
    (void)p;
    return s->rng;
}
static void *at_par(mm_policy *p, mmi_ckpt *s)
{
    (void)p;
    return s->params;
}
static void *at_sta(mm_policy *p, mmi_ckpt *s)
{
    (void)p;
    return s->stats;
}
static void *at_ou(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ou;
}
static void *at_rn(mm_policy *p, mmi_ckpt *s)
{
    (void)p;
    return s->rnorm;
}
static void *at_rn_ret(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rn.ret;
}
static void *at_raw(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->slots.raw;
}
static void *at_out(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->slots.out;
}
static void *at_pending(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->slots.pending;
}
static void *at_rb_obs(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rb.obs;
}
static void *at_rb_next(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rb.next_obs;
}
static void *at_rb_act(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rb.act;
}
static void *at_rb_rew(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rb.rew;
}
static void *at_rb_term(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->rb.term;
}
static void *at_ro_obs(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.obs;
}
static void *at_ro_act(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.act;
}
static void *at_ro_logp(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.logp;
}
static void *at_ro_val(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.val;
}
static void *at_ro_rew(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.rew;
}
static void *at_ro_done(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.done;
}
static void *at_ro_last(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.last_obs;
}
static void *at_ro_lastv(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->ro.last_val;
}
static void *at_mem_state(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->mem.state;
}
static void *at_mem_prev(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->mem.prev;
}
static void *at_mem_y(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->mem.y;
}
static void *at_mem_acted(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->mem.acted;
}
static void *at_sde_w(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->sde.W;
}
static void *at_sde_left(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->sde.left;
}
static void *at_mem_h0(mm_policy *p, mmi_ckpt *s)
{
    (void)s;
    return p->mem.ro_h0;
}

/* One entry per state block; the staged ones first (the counters size the rest). */
static const ck_block k_blocks[] = {
    {"ckpt.counters", MMI_ST_I64, CK_ANY, 1, sh_cnt, at_cnt},
    {"ckpt.rng", MMI_ST_U64, CK_ANY, 1, sh_rng, at_rng},
    {"ckpt.params", MMI_ST_F64, CK_ANY, 1, sh_par, at_par},
    {"ckpt.stats", MMI_ST_F64, CK_ANY, 1, sh_sta, at_sta},
    {"ckpt.reward_norm", MMI_ST_F64, CK_ANY, 1, sh_rn, at_rn},
    {"ckpt.reward_norm.ret", MMI_ST_F64, CK_RN_RET, 0, sh_rn_ret, at_rn_ret},
    {"ckpt.noise.ou", MMI_ST_F32, CK_FINITE, 0, sh_agent_act, at_ou},
    {"ckpt.act.raw", MMI_ST_F32, CK_FINITE, 0, sh_slots, at_raw},
    {"ckpt.act.out", MMI_ST_F32, CK_FINITE, 0, sh_slots, at_out},
    {"ckpt.act.pending", MMI_ST_U8, CK_PENDING, 0, sh_agent_one, at_pending},
    {"ckpt.replay.obs", MMI_ST_F32, CK_FINITE, 0, sh_rb_obs, at_rb_obs},
    {"ckpt.replay.next_obs", MMI_ST_F32, CK_FINITE, 0, sh_rb_obs, at_rb_next},
    {"ckpt.replay.act", MMI_ST_F32, CK_ACTION, 0, sh_rb_act, at_rb_act},
    {"ckpt.replay.rew", MMI_ST_F32, CK_FINITE, 0, sh_rb_one, at_rb_rew},
    {"ckpt.replay.term", MMI_ST_F32, CK_FINITE, 0, sh_rb_one, at_rb_term},
    {"ckpt.rollout.obs", MMI_ST_F32, CK_FINITE, 0, sh_ro_obs, at_ro_obs},
    {"ckpt.rollout.act", MMI_ST_F32, CK_ACTION, 0, sh_ro_act, at_ro_act},
    /* the log-probs and the critic's values as act stored them: an action the policy finds
       astronomically unlikely has log-prob -Inf in float, a critic whose parameters overflow
       stores Inf or NaN, and the policy's own checkpoint of that state must load back. The
       same holds for the rewards: a truncated step's reward includes gamma times the critic's
       value of its last observation (fuzz_config: an Inf value made the policy's own
       checkpoint unloadable). The update refuses such a rollout with MM_E_NUMERIC. */
    {"ckpt.rollout.logp", MMI_ST_F32, CK_ANY, 0, sh_ro_one, at_ro_logp},
    {"ckpt.rollout.val", MMI_ST_F32, CK_ANY, 0, sh_ro_one, at_ro_val},
    {"ckpt.rollout.rew", MMI_ST_F32, CK_ANY, 0, sh_ro_one, at_ro_rew},
    {"ckpt.rollout.done", MMI_ST_F32, CK_FINITE, 0, sh_ro_one, at_ro_done},
    {"ckpt.rollout.last_obs", MMI_ST_F32, CK_FINITE, 0, sh_ro_last, at_ro_last},
    {"ckpt.rollout.last_val", MMI_ST_F32, CK_ANY, 0, sh_ro_lastv, at_ro_lastv},
    /* memory core: each agent's state, the state before and the output of its last act, and
       the stored initial state of every rollout row */
    {"ckpt.memory.state", MMI_ST_F32, CK_FINITE, 0, sh_mem_agent, at_mem_state},
    {"ckpt.memory.prev", MMI_ST_F32, CK_FINITE, 0, sh_mem_agent, at_mem_prev},
    {"ckpt.memory.out", MMI_ST_F32, CK_FINITE, 0, sh_mem_y, at_mem_y},
    {"ckpt.memory.acted", MMI_ST_U8, CK_FLAG, 0, sh_mem_one, at_mem_acted},
    {"ckpt.rollout.memory_h0", MMI_ST_F32, CK_FINITE, 0, sh_mem_h0, at_mem_h0},
    /* gSDE: each agent's noise matrix and the exploring acts left before its next draw */
    {"ckpt.sde.noise", MMI_ST_F32, CK_FINITE, 0, sh_sde_w, at_sde_w},
    {"ckpt.sde.left", MMI_ST_I64, CK_SDE_LEFT, 0, sh_sde_one, at_sde_left},
};
#define N_BLOCKS ((int32_t)(sizeof k_blocks / sizeof k_blocks[0]))

/* Lists every block with a non-empty shape (an empty replay or rollout writes nothing). */
static int list_blocks(mm_policy *p, mmi_pio_list *L, const char *fn)
{
    for (int32_t b = 0; b < N_BLOCKS; b++) {
        const ck_block *k = &k_blocks[b];
        int64_t r = 0, c = 0;
        mmi_pio_ent *x;
        k->shape(p, &L->ck, &r, &c);
        if (r == 0) continue;
        if (!(x = mmi_pio_add(L, k->name, k->dtype, MMI_PIO_CKPT, k->at(p, &L->ck), r, c)))
            return mmi_fail(&p->err, MM_E_RANGE, "%s: tensor table", fn);
        x->aux = b;
    }
    return MM_OK;
}

static int has_optimizer(const mm_model *m) { return m && mmi_model_optim_kind(m) != 0; }

int mmi_ckpt_list(mm_policy *p, mmi_pio_list *L, const char *fn)
{
    mm_model *ms[MMI_POL_NETS];
    const char *pre[MMI_POL_NETS];
    int rc;
    /* Mid-update the state includes the actor snapshot act is using and the update's position;
     * a checkpoint is taken between updates (the budgeted update runs to done first). */
    if (p->upd.active)
        return mmi_fail(&p->err, MM_E_STATE,
                        "%s: an update is in progress (call "
                        "mm_policy_update_budget until done, then save the checkpoint)",
                        fn);
    pack(p, &L->ck);
    if ((rc = list_blocks(p, L, fn)) != MM_OK) return rc;
    mmi_pio_nets(p, ms, pre);
    for (int k = 0; k < MMI_POL_NETS; k++) {
        char name[MMI_POL_NAME_LEN];
        size_t n = 0;
        if (!has_optimizer(ms[k])) continue;
        rc = mm_model_save_mem(ms[k], NULL, 0, &n, MM_SAVE_OPTIMIZER_STATE);
        if (rc == MM_OK && !(L->ck.blob[k] = mmi_malloc(&p->alloc, n)))
            return mmi_fail(&p->err, MM_E_NOMEM, "%s: optimizer state of %s", fn, pre[k]);
        L->ck.blob_size[k] = n;
        if (rc == MM_OK)
            rc = mm_model_save_mem(ms[k], L->ck.blob[k], n, NULL, MM_SAVE_OPTIMIZER_STATE);
        if (rc != MM_OK) return mmi_pol_model_fail(p, ms[k], rc, fn);
        snprintf(name, sizeof name, "ckpt.optimizer.%s", pre[k]);
        if (!mmi_pio_add(L, name, MMI_ST_U8, MMI_PIO_CKPT, L->ck.blob[k], (int64_t)n, 0))
            return mmi_fail(&p->err, MM_E_RANGE, "%s: tensor table", fn);
        L->e[L->n - 1].aux = -1;
    }
    return MM_OK;
}

/* ---- loading -------------------------------------------------------------------------------- */

/* The gradient steps a checkpoint says are owed: each observe call adds at most gradient_steps
 * (off-policy; on-policy never owes any), so more than calls x gradient_steps is a corrupt
 * file. Without this check a flipped bit of `pending` (3.2e9 after 5 calls, found by
 * fuzz_config) made the next mm_policy_update run for hours. A file that also claims billions of
 * observe calls can still owe that many steps: mm_policy_update_budget bounds the work per call. */
static int pending_consistent(const mm_policy *p, const int64_t *c)
{
    int64_t gs = p->o.gradient_steps;
    if (!mmi_algo_offpolicy(p->o.algo)) return c[C_PENDING] == 0;
    return gs >= 1 && c[C_PENDING] / gs + (c[C_PENDING] % gs != 0) <= c[C_CALLS];
}

/* Counters the layout depends on must match; the others must be consistent with them. */
static int check_staged(mm_policy *p, const mmi_ckpt *s, const char *fn)
{
    const int64_t *c = s->cnt;
    int ok =
        c[C_RB_CAP] == p->rb.cap && c[C_AGENTS] == p->o.n_agents && c[C_RO_STEPS] == p->ro.n_steps;
    if (!ok)
        return mmi_fail(&p->err, MM_E_FORMAT,
                        "%s: the checkpoint was taken with buffer_size "
                        "%lld, n_agents %lld, n_steps %lld; this policy has %lld, %lld, %lld",
                        fn, (long long)c[C_RB_CAP], (long long)c[C_AGENTS],
                        (long long)c[C_RO_STEPS], (long long)p->rb.cap, (long long)p->o.n_agents,
                        (long long)p->ro.n_steps);
    for (int i = 0; i < MMI_CKPT_COUNTERS; i++) ok = ok && c[i] >= 0 && c[i] <= MMI_COUNT_MAX;
    ok = ok && c[C_RB_SIZE] <= c[C_RB_CAP] && (c[C_RB_POS] < c[C_RB_CAP] || c[C_RB_POS] == 0) &&
         c[C_RO_T] <= c[C_RO_STEPS] && (c[C_RB_SIZE] == c[C_RB_CAP] || c[C_RB_POS] == c[C_RB_SIZE]);
    if (!ok) return mmi_fail(&p->err, MM_E_FORMAT, "%s: ckpt.counters out of range", fn);
    if (!pending_consistent(p, c))
        return mmi_fail(&p->err, MM_E_FORMAT,
                        "%s: ckpt.counters owe %lld gradient steps after %lld observe calls, "
                        "more than calls x gradient_steps (%lld) allows (a corrupt file, or "
                        "one taken with a larger gradient_steps)",
                        fn, (long long)c[C_PENDING], (long long)c[C_CALLS],
                        (long long)p->o.gradient_steps);
    if (p->rn.on &&
        !(fabs(s->rnorm[0]) <= MMI_RN_BOUND && s->rnorm[1] >= 0 &&
          s->rnorm[1] <= MMI_RN_BOUND * MMI_RN_BOUND && s->rnorm[2] > 0 && s->rnorm[2] <= 1e30))
        return mmi_fail(&p->err, MM_E_NUMERIC,
                        "%s: ckpt.reward_norm needs |mean| <= 1e100, a variance in "
                        "[0, 1e200] and a count in (0, 1e30]",
                        fn);
    if (!(s->stats[8] >= 0 && s->stats[8] <= (double)MMI_COUNT_MAX))
        return mmi_fail(&p->err, MM_E_FORMAT, "%s: ckpt.stats: epochs out of range", fn);
    if (!(s->rng[0] | s->rng[1] | s->rng[2] | s->rng[3]))
        return mmi_fail(&p->err, MM_E_FORMAT, "%s: ckpt.rng is the all-zero state", fn);
    for (int i = 0; i < MMI_CKPT_PARAMS; i++) {
        double cur = 0;
        if (mm_policy_get_f64(p, k_param_ids[i], &cur) != MM_OK) return MM_E_INTERNAL;
        if (param_changed(cur, s->params[i]) &&
            mmi_param_check(k_param_ids[i], s->params[i], &p->err, fn) != MM_OK)
            return MM_E_FORMAT;
    }
    return MM_OK;
}

static int read_staged(mm_policy *p, const mmi_st_file *f, mmi_ckpt *s, const char *fn)
{
    for (int32_t b = 0; b < N_BLOCKS && k_blocks[b].staged; b++) {
        const ck_block *k = &k_blocks[b];
        const mmi_st_tensor *t = mmi_st_find(f, k->name);
        int64_t r = 0, c = 0;
        k->shape(p, s, &r, &c);
        if (r == 0 && !t) continue; /* a block this policy does not have (reward_norm off) */
        if (!t || t->dtype != k->dtype || t->ndim != 1 || t->shape[0] != r)
            return mmi_fail(&p->err, MM_E_FORMAT,
                            "%s: tensor %s is missing or has another "
                            "dtype/shape",
                            fn, k->name);
        mmi_pio_read_le64(f, t, k->at(p, s));
    }
    return check_staged(p, s, fn);
}

/* Loads the optimizer copy of network k and checks it fits the handle's network. */
static int read_optimizer(mm_policy *p, const mmi_st_file *f, mm_model *m, const char *pre,
                          mmi_pio_list *L, int k, const char *fn)
{
    char name[MMI_POL_NAME_LEN];
    const mmi_st_tensor *t;
    mm_model_opts mo;
    char buf[MMI_ERRMSG_SIZE] = "";
    int64_t na = 0, nb = 0;
    int rc;
    snprintf(name, sizeof name, "ckpt.optimizer.%s", pre);
    if (!(t = mmi_st_find(f, name)) || t->dtype != MMI_ST_U8 || t->ndim != 1)
        return mmi_fail(&p->err, MM_E_FORMAT, "%s: tensor %s is missing or not U8", fn, name);
    if ((rc = mm_model_opts_init(&mo)) != MM_OK) return rc;
    mo.alloc = p->o.alloc, mo.max_batch = 1, mo.err_buf = buf, mo.err_buf_size = sizeof buf;
    rc = mm_model_load_mem(&L->ck.tmp[k], f->data + t->begin, (size_t)t->numel, &mo);
    if (rc == MM_E_NOMEM) return mmi_fail(&p->err, rc, "%s: %s: %s", fn, name, buf);
    if (rc != MM_OK) return mmi_fail(&p->err, MM_E_FORMAT, "%s: %s: %s", fn, name, buf);
    /* Same layers, configs and widths (mm_model_copy's own test, run here into the temporary
     * model so that the copy back in mmi_ckpt_apply cannot fail) and the same optimizer kind
     * (so that copy does not allocate). The temporary parameters are overwritten: the
     * checkpoint's weights are the file's network tensors. */
    if (mm_model_num_params(m, &na) != MM_OK || mm_model_num_params(L->ck.tmp[k], &nb) != MM_OK ||
        na != nb || mmi_model_optim_kind(L->ck.tmp[k]) != mmi_model_optim_kind(m) ||
        mm_model_copy(L->ck.tmp[k], m, 0) != MM_OK)
        return mmi_fail(&p->err, MM_E_FORMAT, "%s: %s holds another network or optimizer", fn,
                        name);
    if (!mmi_pio_add(L, name, MMI_ST_U8, MMI_PIO_CKPT, NULL, t->numel, 0))
        return mmi_fail(&p->err, MM_E_RANGE, "%s: tensor table", fn);
    L->e[L->n - 1].aux = -1;
    return MM_OK;
}

/* A discrete policy's stored actions index its heads' rows: an update reads q[a] or logits[a]
 * with them, so 3.9e32 (fuzz_config) was an out-of-range float-to-int conversion and then a
 * read far outside the batch. observe refuses such actions (MM_E_RANGE); so does the loader.
 * Continuous actions only need to be finite (the CK_FINITE check before this one). */
static int check_actions(mm_policy *p, const mmi_st_file *f, const mmi_st_tensor *t,
                         const char *name, const char *fn)
{
    for (int64_t j = 0; p->discrete && j < t->numel; j++) {
        float v = mmi_st_f32_at(f, t, j);
        if (!(v >= 0 && v < (float)p->head_dim && v == floorf(v)))
            return mmi_fail(&p->err, MM_E_FORMAT,
                            "%s: %s[%lld] = %g is not an action index in "
                            "[0, %lld)",
                            fn, name, (long long)j, (double)v, (long long)p->head_dim);
    }
    return MM_OK;
}

/* A counter outside its range would hold a noise matrix for ever (or underflow). */
static int check_sde_left(mm_policy *p, const mmi_st_file *f, const mmi_st_tensor *t,
                          const char *name, const char *fn)
{
    int64_t k = p->o.sde_sample_freq, lo = k > 0 ? 0 : -1, hi = k > 0 ? k - 1 : 0;
    for (int64_t j = 0; j < t->numel; j++) {
        uint64_t u = mmi_st_u64_at(f, t, j);
        int64_t v;
        memcpy(&v, &u, sizeof v);
        if (v < lo || v > hi)
            return mmi_fail(&p->err, MM_E_FORMAT, "%s: %s[%lld] is %lld, not in [%lld, %lld]", fn,
                            name, (long long)j, (long long)v, (long long)lo, (long long)hi);
    }
    return MM_OK;
}

static int check_rn_ret(mm_policy *p, const mmi_st_file *f, const mmi_st_tensor *t,
                        const char *name, const char *fn)
{
    for (int64_t j = 0; j < t->numel; j++) {
        uint64_t u = mmi_st_u64_at(f, t, j);
        double v;
        memcpy(&v, &u, sizeof v);
        if (!(fabs(v) <= MMI_RN_BOUND))
            return mmi_fail(&p->err, MM_E_NUMERIC, "%s: %s[%lld] is %g, not within +-1e100", fn,
                            name, (long long)j, v);
    }
    return MM_OK;
}

int mmi_ckpt_check(mm_policy *p, const mmi_st_file *f, mmi_pio_list *L, const char *fn)
{
    mm_model *ms[MMI_POL_NETS];
    const char *pre[MMI_POL_NETS];
    int64_t first = L->n;
    int rc = read_staged(p, f, &L->ck, fn);
    if (rc == MM_OK) rc = list_blocks(p, L, fn);
    for (int64_t e = first; rc == MM_OK && e < L->n; e++) {
        const mmi_pio_ent *x = &L->e[e];
        const mmi_st_tensor *t = mmi_st_find(f, x->name);
        if (!t) continue; /* missing: the table check reports it */
        int32_t ck = k_blocks[x->aux].check;
        if ((ck == CK_FINITE || ck == CK_ACTION) &&
            (t->dtype == MMI_ST_F32 || t->dtype == MMI_ST_F64) &&
            mmi_st_first_nonfinite(f, t, t->dtype == MMI_ST_F64 ? 8 : 4) >= 0)
            rc = mmi_fail(&p->err, MM_E_NUMERIC, "%s: tensor %s holds NaN or Inf", fn, x->name);
        if ((k_blocks[x->aux].check == CK_PENDING || k_blocks[x->aux].check == CK_FLAG) &&
            t->dtype == MMI_ST_U8) {
            int top = k_blocks[x->aux].check == CK_PENDING ? 2 : 1;
            for (int64_t j = 0; rc == MM_OK && j < t->numel; j++)
                if (f->data[t->begin + j] > top)
                    rc = mmi_fail(&p->err, MM_E_FORMAT, "%s: %s[%lld] is %d, above %d", fn, x->name,
                                  (long long)j, (int)f->data[t->begin + j], top);
        }
        if (k_blocks[x->aux].check == CK_SDE_LEFT && t->dtype == MMI_ST_I64)
            rc = check_sde_left(p, f, t, x->name, fn);
        if (k_blocks[x->aux].check == CK_RN_RET && t->dtype == MMI_ST_F64)
            rc = check_rn_ret(p, f, t, x->name, fn);
        if (rc == MM_OK && ck == CK_ACTION && t->dtype == MMI_ST_F32)
            rc = check_actions(p, f, t, x->name, fn);
    }
    mmi_pio_nets(p, ms, pre);
    for (int k = 0; rc == MM_OK && k < MMI_POL_NETS; k++)
        if (has_optimizer(ms[k])) rc = read_optimizer(p, f, ms[k], pre[k], L, k, fn);
    return rc;
}

void mmi_ckpt_apply(mm_policy *p, const mmi_st_file *f, mmi_pio_list *L)
{
    mm_model *ms[MMI_POL_NETS];
    const char *pre[MMI_POL_NETS];
    for (int64_t e = 0; e < L->n; e++) {
        const mmi_pio_ent *x = &L->e[e];
        const mmi_st_tensor *t;
        if (x->role != MMI_PIO_CKPT || x->aux < 0 || k_blocks[x->aux].staged) continue;
        t = mmi_st_find(f, x->name);
        if (x->t.dtype == MMI_ST_F32)
            mmi_st_read_f32(f, t, (float *)x->dst);
        else if (x->t.dtype == MMI_ST_F64 || x->t.dtype == MMI_ST_I64)
            mmi_pio_read_le64(f, t, x->dst);
        else {
            MMI_ASSERT(x->t.dtype == MMI_ST_U8);
            memcpy(x->dst, f->data + t->begin, (size_t)t->numel);
        }
    }
    unpack(p, &L->ck);
    mmi_pio_nets(p, ms, pre);
    for (int k = 0; k < MMI_POL_NETS; k++)
        if (L->ck.tmp[k]) {
            /* same architecture and optimizer kind (checked): a plain copy, no allocation; the
             * caller then writes the file's weights over the parameters */
            int rc = mm_model_copy(ms[k], L->ck.tmp[k], 1);
            MMI_ASSERT(rc == MM_OK);
            (void)rc;
        }
}
