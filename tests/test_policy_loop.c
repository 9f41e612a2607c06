/* SPDX-License-Identifier: MIT */
/* test_policy_loop.c — the learning loop of mm_policy: a budgeted update spread over calls
 * equals the one-shot update bit for bit (PPO, A2C, TD3) while act keeps the pre-update actor
 * and allocates nothing; reward normalisation, observation clipping, PPO target_kl and the
 * separate schedules against float64 references written here; observe independent of an extra
 * act between act and observe. */
#include "runner.h"

#include "policy/mmi_policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NA 4

static float g_lo[2] = {-2.0f, -1.0f}, g_hi[2] = {2.0f, 3.0f};

static void opts(mm_policy_opts *o, int32_t algo, const mm_allocator *a)
{
    CHECK_OK(mm_policy_opts_init(o, algo));
    o->obs_dim = 3, o->alloc = a, o->seed = 9, o->n_agents = NA;
    o->hidden[0] = 16, o->hidden[1] = 16;
    o->act_dim = 2, o->act_low = g_lo, o->act_high = g_hi;
    o->buffer_size = 64, o->batch_size = 8, o->learning_starts = 10, o->n_steps = 6;
    o->n_epochs = 3;
}

static mm_policy *make(const mm_policy_opts *o)
{
    mm_policy *p = NULL;
    CHECK_OK(mm_policy_create(&p, o));
    return p;
}

/* The fake environment of step s: obs, next obs and a reward that depends on the action. */
static void env_step(int s, float *obs, float *next, const float *act, float *rew, uint8_t *te,
                     uint8_t *tr)
{
    mmt_fill_uniform(obs, NA * 3, 500 + (uint64_t)s, -1, 1);
    mmt_fill_uniform(next, NA * 3, 900 + (uint64_t)s, -1, 1);
    for (int i = 0; i < NA; i++) {
        rew[i] = next[3 * i] - 0.3f * act[2 * i] * act[2 * i];
        te[i] = s % 7 == 3 && i == 1, tr[i] = s % 5 == 4 && i == 2;
    }
}

/* Every parameter of every network of p equals q's, byte for byte. */
static int same_params(mm_policy *p, mm_policy *q)
{
    mm_model *a[6] = {p->actor, p->vf, p->logstd, p->critic[0], p->critic[1], p->actor_t};
    mm_model *b[6] = {q->actor, q->vf, q->logstd, q->critic[0], q->critic[1], q->actor_t};
    for (int k = 0; k < 6; k++) {
        float *x, *y;
        int64_t n, m;
        if (!a[k]) continue;
        if (mm_model_params(a[k], &x, &n) || mm_model_params(b[k], &y, &m) || n != m ||
            memcmp(x, y, sizeof(float) * (size_t)n) != 0)
            return 0;
    }
    return 1;
}

/* Runs `rounds` rollouts/training rounds on two copies: p with mm_policy_update, q with
 * mm_policy_update_budget(budget) and, between budget calls, acts that must neither disturb
 * the update nor see a half-trained actor. */
static void budget_case(int32_t algo, int64_t budget, int rounds)
{
    mm_policy_opts o;
    mm_policy *p, *q;
    float obs[NA * 3], next[NA * 3], ap[NA * 2] = {0}, aq[NA * 2] = {0}, rew[NA], before[NA * 2],
                                             during[NA * 2];
    uint8_t te[NA], tr[NA];
    int calls_with_work = 0;
    opts(&o, algo, NULL);
    if (algo == MM_ALGO_TD3) o.train_freq = 3, o.gradient_steps = 5;
    p = make(&o), q = make(&o);
    for (int s = 0; s < rounds * 6; s++) {
        int32_t did = 0, done = 0;
        double upd = 0;
        env_step(s, obs, next, ap, rew, te, tr);
        CHECK_OK(mm_policy_act(p, obs, NA, ap, 1));
        CHECK_OK(mm_policy_act(q, obs, NA, aq, 1));
        CHECK(memcmp(ap, aq, sizeof ap) == 0);
        env_step(s, obs, next, ap, rew, te, tr);
        CHECK_OK(mm_policy_observe(p, obs, ap, rew, next, te, tr, NA));
        CHECK_OK(mm_policy_observe(q, obs, aq, rew, next, te, tr, NA));
        CHECK_OK(mm_policy_update(p, &did));
        CHECK_OK(mm_policy_act(q, next, NA, before, 0));
        for (int guard = 0; !done && guard < 10000; guard++) {
            CHECK_OK(mm_policy_update_budget(q, budget, &done));
            if (done) break;
            calls_with_work++;
            CHECK_OK(mm_policy_get_f64(q, MM_POLICY_STAT_UPDATING, &upd));
            CHECK(upd == 1.0);
            CHECK_OK(mm_policy_act(q, obs, NA, aq, 1)); /* a frame acting meanwhile */
            CHECK_OK(mm_policy_act(q, next, NA, during, 0));
            if (algo != MM_ALGO_TD3) { /* on-policy: still the actor of the rollout */
                CHECK(memcmp(before, during, sizeof before) == 0);
                CHECK_STATUS(mm_policy_observe(q, obs, aq, rew, next, te, tr, NA), MM_E_STATE);
            }
        }
        CHECK(done == 1);
        CHECK(same_params(p, q));
    }
    /* the budget did split the update (A2C's update is one minibatch: nothing to split) */
    CHECK(algo == MM_ALGO_A2C ? calls_with_work == 0 : calls_with_work > 0);
    {
        double a = 0, b = 0;
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &a));
        CHECK_OK(mm_policy_get_f64(q, MM_POLICY_STAT_UPDATES, &b));
        CHECK(a == b && a > 0);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_KL, &a));
        CHECK_OK(mm_policy_get_f64(q, MM_POLICY_STAT_KL, &b));
        CHECK(a == b);
    }
    /* the random streams agree too: the next exploring actions are the same */
    CHECK_OK(mm_policy_act(p, obs, NA, ap, 1));
    CHECK_OK(mm_policy_act(q, obs, NA, aq, 1));
    CHECK(memcmp(ap, aq, sizeof ap) == 0);
    mm_policy_free(p);
    mm_policy_free(q);
}

static void test_budget_equals_oneshot(void)
{
    budget_case(MM_ALGO_PPO, 1, 3);
    budget_case(MM_ALGO_PPO, 2, 2); /* pauses inside and at the end of epochs */
    budget_case(MM_ALGO_A2C, 1, 3);
    budget_case(MM_ALGO_TD3, 2, 6);
}

/* What a fresh copy of p's parameters acts on obs (deterministic): it never acted before its
 * load, so it forms everything act keeps from the loaded parameters. */
static void fresh_act(mm_policy *p, const mm_policy_opts *o, const float *obs, float *out)
{
    size_t n = 0;
    unsigned char *buf = NULL;
    mm_policy *r = make(o);
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &n, 0));
    CHECK((buf = (unsigned char *)malloc(n)) != NULL);
    if (r && buf) {
        CHECK_OK(mm_policy_save_mem(p, buf, n, NULL, 0));
        CHECK_OK(mm_policy_load_mem(r, buf, n));
        CHECK_OK(mm_policy_act(r, obs, NA, out, 0));
    }
    free(buf);
    mm_policy_free(r);
}

static void rollout(mm_policy *p, int64_t steps)
{
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA];
    for (int s = 0; s < steps; s++) {
        env_step(s, obs, next, act, rew, te, tr);
        CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
    }
}

/* act keeps the actor's first-layer W^T across calls (mmi_model_forward_kept; on the AVX2 set
 * these shapes use it): after each writer of the actor - an update, a budgeted update (whose
 * acts in between use the snapshot), a load over an actor that acted - act must give what a
 * fresh copy of the parameters gives, not what the kept panel of the old W gives. (Debug builds
 * also check the panel against W on each act; the broadcast of mm_policy_set_comm is reached by
 * test_comm's policy_memory test, whose ranks act before and after it.) */
static void test_act_follows_actor_writers(void)
{
    mm_policy_opts o;
    mm_policy *p, *q;
    float obs[NA * 3], before[NA * 2], got[NA * 2], want[NA * 2];
    int32_t did = 0, done = 0;
    opts(&o, MM_ALGO_PPO, NULL);
    p = make(&o);
    mmt_fill_uniform(obs, NA * 3, 77, -1, 1);
    if (!p) return;
    CHECK_OK(mm_policy_act(p, obs, NA, before, 0));
    rollout(p, o.n_steps);
    CHECK_OK(mm_policy_update(p, &did));
    CHECK(did == 1);
    CHECK_OK(mm_policy_act(p, obs, NA, got, 0));
    fresh_act(p, &o, obs, want);
    CHECK(memcmp(got, want, sizeof got) == 0);
    CHECK(memcmp(got, before, sizeof got) != 0); /* the update moved the actor */
    rollout(p, o.n_steps);
    for (int guard = 0; !done && guard < 1000; guard++) {
        CHECK_OK(mm_policy_update_budget(p, 1, &done));
        if (!done) CHECK_OK(mm_policy_act(p, obs, NA, before, 0)); /* the snapshot */
    }
    CHECK(done == 1);
    CHECK_OK(mm_policy_act(p, obs, NA, got, 0));
    fresh_act(p, &o, obs, want);
    CHECK(memcmp(got, want, sizeof got) == 0);
    CHECK(memcmp(got, before, sizeof got) != 0);
    o.seed = 31; /* other parameters, loaded over p's */
    q = make(&o);
    if (q) {
        size_t n = 0;
        unsigned char *buf = NULL;
        CHECK_OK(mm_policy_save_mem(q, NULL, 0, &n, 0));
        CHECK((buf = (unsigned char *)malloc(n)) != NULL);
        if (buf) {
            CHECK_OK(mm_policy_save_mem(q, buf, n, NULL, 0));
            CHECK_OK(mm_policy_load_mem(p, buf, n));
            CHECK_OK(mm_policy_act(p, obs, NA, got, 0));
            CHECK_OK(mm_policy_act(q, obs, NA, want, 0));
            CHECK(memcmp(got, want, sizeof got) == 0);
        }
        free(buf);
    }
    mm_policy_free(q);
    mm_policy_free(p);
}

static void test_budget_no_alloc(void)
{
    mmt_counter c;
    mm_allocator a;
    mm_policy_opts o;
    mm_policy *p;
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA];
    int64_t before;
    mmt_counting_allocator(&a, &c, -1);
    opts(&o, MM_ALGO_PPO, &a);
    o.norm_obs = 1, o.norm_reward = 1, o.ppo_target_kl = 0.05;
    p = make(&o);
    before = c.n_alloc;
    for (int s = 0; s < 40; s++) {
        int32_t done = 0;
        env_step(s, obs, next, act, rew, te, tr);
        CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
        int rc = mm_policy_observe(p, obs, act, rew, next, te, tr, NA);
        CHECK(rc == MM_OK || rc == MM_E_STATE);
        CHECK_OK(mm_policy_update_budget(p, 1, &done));
    }
    CHECK_EQ_I64(c.n_alloc, before);
    mm_policy_free(p);
    CHECK_EQ_I64(c.live_bytes, 0);
}

/* SB3 VecNormalize in float64: returns, RunningMeanStd, r / sqrt(var + 1e-8), clip. */
typedef struct {
    double ret[NA], mean, var, count;
} ref_rn;

static void ref_step(ref_rn *z, const float *r, const uint8_t *te, const uint8_t *tr, double gamma,
                     double clip, int guard, double *out)
{
    double bm = 0, bv = 0, tot = z->count + NA, d, m2, g = clip * sqrt(z->var + 1e-8);
    for (int i = 0; i < NA; i++) {
        double ri = guard ? fmin(fmax(r[i], -g), g) : r[i];
        z->ret[i] = z->ret[i] * gamma + ri, bm += z->ret[i] / NA;
    }
    for (int i = 0; i < NA; i++) bv += (z->ret[i] - bm) * (z->ret[i] - bm) / NA;
    d = bm - z->mean;
    m2 = z->var * z->count + bv * NA + d * d * z->count * NA / tot;
    z->mean += d * NA / tot, z->var = m2 / tot, z->count = tot;
    for (int i = 0; i < NA; i++) {
        out[i] = fmin(fmax(r[i] / sqrt(z->var + 1e-8), -clip), clip);
        if (te[i] || tr[i]) z->ret[i] = 0;
    }
}

static void reward_norm_case(int mode)
{
    mm_policy_opts o;
    mm_policy *p;
    ref_rn z = {{0}, 0, 1, 1e-4};
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA] = {0};
    double want[NA], sd;
    opts(&o, MM_ALGO_PPO, NULL);
    o.norm_reward = mode, o.clip_reward = 2.5, o.n_steps = 12, o.gamma = 0.9;
    p = make(&o);
    memset(act, 0, sizeof act);
    for (int s = 0; s < 12; s++) {
        env_step(s, obs, next, act, rew, te, tr);
        memset(tr, 0, sizeof tr);            /* no bootstrap: the stored reward is the scaled one */
        rew[0] = s == 5 ? 1e6f : rew[0] * 3; /* one huge reward: clipped */
        CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
        ref_step(&z, rew, te, tr, 0.9, 2.5, mode == 2, want);
        for (int i = 0; i < NA; i++) CHECK_NEAR(p->ro.rew[s * NA + i], want[i], 1e-6, 1e-7);
        if (s == 5) CHECK_NEAR(p->ro.rew[s * NA], 2.5, 0, 0);
    }
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_RETURN_STD, &sd));
    CHECK_NEAR(sd, sqrt(z.var + 1e-8), 1e-12, 0);
    /* the huge reward inflates SB3's statistics by orders of magnitude; the guard bounds it */
    CHECK(mode == 2 ? sd < 20 : sd > 1e5);
    mm_policy_free(p);
}

static void test_reward_norm_reference(void)
{
    mm_policy_opts o;
    mm_policy *p;
    ref_rn z = {{0}, 0, 1, 1e-4};
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA] = {0};
    double want[NA];
    reward_norm_case(1);
    reward_norm_case(2);
    memset(act, 0, sizeof act);
    /* off-policy: raw rewards in the replay, scaled with the current statistics per batch */
    opts(&o, MM_ALGO_TD3, NULL);
    o.norm_reward = 1;
    p = make(&o);
    z = (ref_rn){{0}, 0, 1, 1e-4};
    for (int s = 0; s < 3; s++) {
        env_step(s, obs, next, act, rew, te, tr);
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
        ref_step(&z, rew, te, tr, o.gamma, 10, 0, want);
        for (int i = 0; i < NA; i++) CHECK(p->rb.rew[s * NA + i] == rew[i]);
    }
    CHECK_NEAR(mmi_reward_norm_apply(&p->rn, 0.75f), fmin(0.75 / sqrt(z.var + 1e-8), 10), 1e-6, 0);
    mm_policy_free(p);
}

static void test_obs_clip_reference(void)
{
    mm_policy_opts o;
    mm_policy *p;
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA];
    opts(&o, MM_ALGO_PPO, NULL);
    o.norm_obs = 1, o.clip_obs = 0.4;
    p = make(&o);
    env_step(0, obs, next, act, rew, te, tr);
    CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
    CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
    for (int i = 0; i < NA * 3; i++) { /* statistics at start: mean 0, var 1 */
        double want = fmin(fmax(obs[i] / sqrt(1.0 + 1e-8), -0.4), 0.4);
        CHECK_NEAR(p->ro.obs[i], want, 1e-6, 1e-7);
    }
    mm_policy_free(p);
}

static void test_target_kl(void)
{
    mm_policy_opts o;
    mm_policy *off, *tiny, *huge;
    float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
    uint8_t te[NA], tr[NA];
    double ep = 0, up = 0;
    opts(&o, MM_ALGO_PPO, NULL);
    o.n_epochs = 4, o.batch_size = 6;
    off = make(&o);
    o.ppo_target_kl = 1e-12;
    tiny = make(&o);
    o.ppo_target_kl = 1e6;
    huge = make(&o);
    for (int s = 0; s < 6; s++) {
        mm_policy *ps[3] = {off, tiny, huge};
        env_step(s, obs, next, act, rew, te, tr);
        for (int k = 0; k < 3; k++) {
            int32_t did;
            CHECK_OK(mm_policy_act(ps[k], obs, NA, act, 1));
            CHECK_OK(mm_policy_observe(ps[k], obs, act, rew, next, te, tr, NA));
            CHECK_OK(mm_policy_update(ps[k], &did));
        }
    }
    CHECK_OK(mm_policy_get_f64(off, MM_POLICY_STAT_EPOCHS, &ep));
    CHECK_OK(mm_policy_get_f64(off, MM_POLICY_STAT_UPDATES, &up));
    CHECK(ep == 4 && up == 16);    /* 24 rows / 6 = 4 minibatches x 4 epochs */
    CHECK(same_params(off, huge)); /* a bound never reached changes nothing */
    /* the first minibatch sees the rollout's own policy (KL 0 up to rounding, stepped); the
     * second sees a moved policy: KL > 1.5e-12 stops before its step */
    CHECK_OK(mm_policy_get_f64(tiny, MM_POLICY_STAT_EPOCHS, &ep));
    CHECK_OK(mm_policy_get_f64(tiny, MM_POLICY_STAT_UPDATES, &up));
    CHECK(ep == 1 && up <= 1);
    CHECK(!same_params(off, tiny));
    mm_policy_free(off), mm_policy_free(tiny), mm_policy_free(huge);
}

static void test_schedules(void)
{
    mm_policy_opts o;
    mm_policy *p;
    double lr = 0;
    opts(&o, MM_ALGO_PPO, NULL);
    o.linear_decay_steps = 600;
    p = make(&o);
    p->steps = 300;
    CHECK(mmi_pol_lr_factor(p) == 0.5 && mmi_pol_clip_factor(p) == 0.5); /* 0.1: together */
    mm_policy_free(p);
    o.lr_decay_steps = 1000, o.clip_decay_steps = -1;
    p = make(&o);
    p->steps = 300;
    CHECK_NEAR(mmi_pol_lr_factor(p), 1.0 - 300.0 / 1000.0, 1e-15, 0);
    CHECK(mmi_pol_clip_factor(p) == 1.0);
    p->steps = 5000;
    CHECK(mmi_pol_lr_factor(p) == 0.0);
    mm_policy_free(p);
    o.linear_decay_steps = 0, o.lr_decay_steps = 0, o.clip_decay_steps = 48;
    p = make(&o);
    {
        float obs[NA * 3], next[NA * 3], act[NA * 2] = {0}, rew[NA];
        uint8_t te[NA], tr[NA];
        for (int s = 0; s < 6; s++) {
            int32_t did;
            env_step(s, obs, next, act, rew, te, tr);
            CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
            CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
            CHECK_OK(mm_policy_update(p, &did));
        }
    }
    CHECK_NEAR(mmi_pol_clip_factor(p), 1.0 - 24.0 / 48.0, 1e-15, 0);
    CHECK_OK(mm_model_get_f64(p->actor, MM_MODEL_LR, &lr)); /* lr constant: not annealed */
    CHECK(lr == o.lr_actor);
    mm_policy_free(p);
    o.clip_decay_steps = -2;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
}

/* An extra act between act and observe: deterministic ones change nothing; a second exploring
 * act makes observe refuse the first act's actions. */
static void test_observe_after_extra_act(void)
{
    mm_policy_opts o;
    mm_policy *p, *q;
    float obs[NA * 3], next[NA * 3], ap[NA * 2] = {0}, aq[NA * 2] = {0}, tmp[NA * 2], rew[NA];
    uint8_t te[NA], tr[NA];
    opts(&o, MM_ALGO_PPO, NULL);
    o.log_std_init = 1.5; /* wide samples: many clipped at the bounds */
    p = make(&o), q = make(&o);
    for (int s = 0; s < 5; s++) {
        env_step(s, obs, next, ap, rew, te, tr);
        CHECK_OK(mm_policy_act(p, obs, NA, ap, 1));
        CHECK_OK(mm_policy_act(q, obs, NA, aq, 1));
        CHECK_OK(mm_policy_act(q, next, NA, tmp, 0)); /* rendering */
        CHECK_OK(mm_policy_act(q, next, 2, tmp, 0));
        CHECK_OK(mm_policy_observe(p, obs, ap, rew, next, te, tr, NA));
        CHECK_OK(mm_policy_observe(q, obs, aq, rew, next, te, tr, NA));
    }
    CHECK(memcmp(p->ro.act, q->ro.act, sizeof(float) * 5 * NA * 2) == 0);
    CHECK(memcmp(p->ro.logp, q->ro.logp, sizeof(float) * 5 * NA) == 0);
    {
        int raw_differs = 0; /* the clipped samples were stored raw */
        for (int i = 0; i < 5 * NA * 2; i++) raw_differs |= p->ro.act[i] > g_hi[i % 2];
        CHECK(raw_differs);
    }
    env_step(5, obs, next, ap, rew, te, tr);
    CHECK_OK(mm_policy_act(q, obs, NA, aq, 1));
    CHECK_OK(mm_policy_act(q, obs, NA, tmp, 1)); /* a second sample replaces the first */
    CHECK_STATUS(mm_policy_observe(q, obs, aq, rew, next, te, tr, NA), MM_E_STATE);
    CHECK(strstr(mm_policy_errmsg(q), "exploring act") != NULL);
    CHECK_EQ_I64(q->ro.t, 5); /* nothing stored */
    CHECK_OK(mm_policy_observe(q, obs, tmp, rew, next, te, tr, NA));
    mm_policy_free(p), mm_policy_free(q);
}

static void test_budget_misuse(void)
{
    mm_policy_opts o;
    mm_policy *p;
    int32_t done = 7;
    CHECK_STATUS(mm_policy_update_budget(NULL, 1, &done), MM_E_INVALID_ARG);
    CHECK(done == 0);
    opts(&o, MM_ALGO_PPO, NULL);
    p = make(&o);
    CHECK_STATUS(mm_policy_update_budget(p, 0, &done), MM_E_INVALID_ARG);
    CHECK(strstr(mm_policy_errmsg(p), "max_minibatches"));
    CHECK_OK(mm_policy_update_budget(p, 1, &done)); /* nothing due */
    CHECK(done == 1);
    CHECK_OK(mm_policy_update_budget(p, 1, NULL));
    mm_policy_free(p);
    opts(&o, MM_ALGO_PPO, NULL);
    o.norm_reward = 3;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    o.norm_reward = 1, o.clip_reward = 0;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    o.clip_reward = 10, o.ppo_target_kl = -1;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
}

void suite_policy_loop(void)
{
    mmt_run("policy_budget_equals_oneshot", test_budget_equals_oneshot);
    mmt_run("policy_budget_no_alloc", test_budget_no_alloc);
    mmt_run("policy_act_follows_actor_writers", test_act_follows_actor_writers);
    mmt_run("policy_reward_norm_reference", test_reward_norm_reference);
    mmt_run("policy_obs_clip_reference", test_obs_clip_reference);
    mmt_run("policy_target_kl", test_target_kl);
    mmt_run("policy_schedules", test_schedules);
    mmt_run("policy_observe_after_extra_act", test_observe_after_extra_act);
    mmt_run("policy_budget_misuse", test_budget_misuse);
}
