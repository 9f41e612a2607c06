/* SPDX-License-Identifier: MIT */
/* test_policy.c — mm_policy: GAE against a hand-computed case, CG on a known SPD system, the
 * Gauss-Newton Fisher-vector product against finite differences of the KL gradient, the TRPO
 * line search refusing a step beyond the KL radius, uniform replay sampling (chi-square),
 * save -> load -> identical actions, NaN refusal, OU noise that stays finite, zero allocations
 * on the hot path, misuse, the work-row roles of every phase apart where they live together,
 * and the model-floor accessors the policy uses. */
#include "runner.h"

#include "policy/mmi_policy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static float g_lo[2] = {-2.0f, -1.0f}, g_hi[2] = {2.0f, 3.0f};

/* A small agent of algo: obs 3, continuous 2-D (or 3 discrete actions) */
static mm_policy *make(int32_t algo, int discrete, const mm_allocator *a, int norm)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    CHECK_OK(mm_policy_opts_init(&o, algo));
    o.obs_dim = 3, o.alloc = a, o.seed = 5, o.n_agents = 4, o.norm_obs = norm;
    o.hidden[0] = 16, o.hidden[1] = 16;
    if (discrete)
        o.n_actions = 3;
    else
        o.act_dim = 2, o.act_low = g_lo, o.act_high = g_hi;
    o.buffer_size = 64, o.batch_size = 8, o.learning_starts = 10, o.n_steps = 6;
    CHECK_OK(mm_policy_create(&p, &o));
    return p;
}

static void drive(mm_policy *p, int steps, uint64_t seed) { mmt_policy_drive(p, steps, seed, 1); }

static void test_gae(void)
{
    const float rew[3] = {1, 2, 3}, val[3] = {0.5f, 0.4f, 0.3f}, done[3] = {0, 1, 0};
    const float last = 0.9f;
    float adv[3], ret[3];
    /* by hand (float64): t=2: 3 + .9*.9 - .3 = 3.51; t=1 done: 2 - .4 = 1.6;
     * t=0: 1 + .9*.4 - .5 + .9*.8*1.6 = 2.012 */
    mmi_gae(3, 1, rew, val, done, &last, 0.9, 0.8, adv, ret);
    CHECK_NEAR(adv[2], 3.51, 1e-6, 1e-6);
    CHECK_NEAR(adv[1], 1.6, 1e-6, 1e-6);
    CHECK_NEAR(adv[0], 2.012, 1e-6, 1e-6);
    CHECK_NEAR(ret[0], 2.512, 1e-6, 1e-6);
    CHECK_NEAR(ret[1], 2.0, 1e-6, 1e-6);
    CHECK_NEAR(ret[2], 3.81, 1e-6, 1e-6);
}

static void spd_mv(void *ctx, const float *v, float *out)
{
    const double *A = ctx;
    for (int i = 0; i < 3; i++)
        out[i] = (float)(A[3 * i] * v[0] + A[3 * i + 1] * v[1] + A[3 * i + 2] * v[2]);
}

static void test_cg(void)
{
    double A[9] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2};
    float b[3] = {1, 2, 3}, x[3], r[3], d[3], ad[3], chk[3];
    int32_t it = mmi_cg(spd_mv, A, b, 3, 10, x, r, d, ad);
    CHECK(it <= 4);
    spd_mv(A, x, chk);
    for (int i = 0; i < 3; i++) CHECK_NEAR(chk[i], b[i], 1e-4, 1e-4);
}

/* TRPO agent with a rollout of random observations and old heads = the current heads. */
static mm_policy *trpo_fixture(int discrete, float *old_head, int64_t *n)
{
    mm_policy *p = make(MM_ALGO_TRPO, discrete, NULL, 0);
    *n = p->ro.n_steps * p->ro.n_agents;
    mmt_fill_uniform(p->ro.obs, *n * 3, 21, -1, 1);
    CHECK_OK(mmi_pi_forward(p, p->ro.obs, *n, old_head, "test"));
    if (!discrete) memcpy(old_head + *n * p->head_dim, mmi_pol_logstd(p), 2 * sizeof(float));
    return p;
}

static void fvp_case(int discrete)
{
    static float old_head[64 * 4], v[4096], th[4096], gp[4096], gm[4096], fv[4096];
    int64_t n, np;
    mm_policy *p = trpo_fixture(discrete, old_head, &n);
    double eps = 1e-2, num = 0, den = 0;
    np = p->n_pi;
    CHECK(np <= 4096);
    p->o.cg_damping = 0;
    mmt_fill_uniform(v, np, 33, -1, 1);
    mmi_trpo_get_params(p, th);
    /* move away from theta_old so the KL gradient is not trivially 0 at the centre */
    CHECK_OK(mmi_trpo_fvp(p, v, fv));
    for (int64_t i = 0; i < np; i++) gp[i] = th[i] + (float)eps * v[i];
    mmi_trpo_set_params(p, gp);
    CHECK_OK(mmi_trpo_kl_grad(p, old_head, n, gp));
    for (int64_t i = 0; i < np; i++) gm[i] = th[i] - (float)eps * v[i];
    mmi_trpo_set_params(p, gm);
    CHECK_OK(mmi_trpo_kl_grad(p, old_head, n, gm));
    mmi_trpo_set_params(p, th);
    for (int64_t i = 0; i < np; i++) {
        double fd = ((double)gp[i] - gm[i]) / (2 * eps);
        num += (fd - fv[i]) * (fd - fv[i]), den += (double)fv[i] * fv[i];
    }
    if (!(sqrt(num / den) < 0.02))
        mmt_fail(__FILE__, __LINE__, "FVP vs finite differences (%s): relative error %.3g",
                 discrete ? "categorical" : "gaussian", sqrt(num / den));
    mm_policy_free(p);
}

static void test_fvp(void)
{
    fvp_case(0);
    fvp_case(1);
}

static void test_line_search(void)
{
    static float old_head[64 * 4], th[4096], full[4096], now[4096];
    int64_t n;
    mm_policy *p = trpo_fixture(1, old_head, &n);
    int rc;
    mmi_trpo_get_params(p, th);
    mmt_fill_uniform(full, p->n_pi, 9, -1, 1); /* a large step: KL far beyond 1e-6 */
    mmt_fill_uniform(p->ro.adv, n, 10, -1, 1);
    for (int64_t i = 0; i < n; i++) p->ro.act[i] = (float)(i % 3);
    mmi_pi_logp(p, old_head, p->ro.act, n, p->ro.logp);
    p->o.target_kl = 1e-6;
    CHECK_EQ_I64(mmi_trpo_line_search(p, th, full, old_head, -1e30, &rc), -1);
    CHECK_OK(rc);
    mmi_trpo_get_params(p, now);
    CHECK(memcmp(now, th, sizeof(float) * (size_t)p->n_pi) == 0); /* restored */
    p->o.target_kl = 1e6; /* any KL allowed and any surrogate better than -inf: k = 0 */
    CHECK_EQ_I64(mmi_trpo_line_search(p, th, full, old_head, -1e30, &rc), 0);
    mm_policy_free(p);
}

static void test_replay_uniform(void)
{
    mmi_replay r;
    mmi_rng rng;
    float buf[64], o = 0, a = 0;
    int64_t idx[1000], count[10] = {0}, draws = mmt_quick() ? 20000 : 100000;
    double chi = 0;
    memset(&r, 0, sizeof r);
    r.obs = buf, r.next_obs = buf + 16, r.act = buf + 32, r.rew = buf + 40, r.term = buf + 50;
    r.cap = 10, r.obs_dim = 1, r.act_dim = 1;
    for (int i = 0; i < 13; i++) mmi_replay_add(&r, &o, &a, (float)i, &o, 0); /* wraps */
    CHECK_EQ_I64(r.size, 10);
    CHECK(r.rew[0] == 10.0f && r.rew[3] == 3.0f);
    mmi_rng_seed(&rng, 42);
    for (int64_t k = 0; k < draws; k += 1000) {
        mmi_replay_sample(&r, &rng, 1000, idx);
        for (int j = 0; j < 1000; j++) count[idx[j]]++;
    }
    for (int i = 0; i < 10; i++) {
        double e = draws / 10.0;
        chi += (count[i] - e) * (count[i] - e) / e;
    }
    CHECK(chi < 27.88); /* chi-square, 9 dof, p = 0.001 */
}

static void roundtrip(int32_t algo, int discrete, int norm)
{
    char path[512];
    mm_policy *p = make(algo, discrete, NULL, norm), *q;
    float obs[12], a1[8], a2[8];
    CHECK(mmt_tmp_path(path, sizeof path, "policy_rt.safetensors") == 0);
    drive(p, 40, 3);
    CHECK_OK(mm_policy_save(p, path));
    q = make(algo, discrete, NULL, norm);
    CHECK_OK(mm_policy_load(q, path));
    mmt_fill_uniform(obs, 12, 77, -2, 2);
    CHECK_OK(mm_policy_act(p, obs, 4, a1, 0));
    CHECK_OK(mm_policy_act(q, obs, 4, a2, 0));
    CHECK(memcmp(a1, a2, sizeof(float) * (discrete ? 4 : 8)) == 0);
    mm_policy_free(q);
    q = make(algo == MM_ALGO_TD3 ? MM_ALGO_DDPG : MM_ALGO_TD3, 0, NULL, norm);
    CHECK_STATUS(mm_policy_load(q, path), MM_E_FORMAT); /* another architecture */
    CHECK(strlen(mm_policy_errmsg(q)) > 0);
    mm_policy_free(q);
    mm_policy_free(p);
    remove(path);
}

static void test_save_load(void)
{
    roundtrip(MM_ALGO_TD3, 0, 1);
    roundtrip(MM_ALGO_PPO, 0, 1);
    roundtrip(MM_ALGO_TRPO, 1, 0);
}

/* The save/load test once wrote into build/tests/ under the working directory, which only
 * `make check` creates (check-asan builds into build/asan/ and failed with MM_E_IO on a fresh
 * clone). Run from an empty working directory, it must pass all the same. */
static void test_save_load_any_cwd(void)
{
    char cwd[4096], dir[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(mmt_tmp_path(dir, sizeof dir, "") == 0);
    CHECK(chdir(dir) == 0);
    roundtrip(MM_ALGO_TD3, 0, 1);
    CHECK(chdir(cwd) == 0);
}

static void test_nan_refused(void)
{
    mm_policy *p = make(MM_ALGO_PPO, 1, NULL, 1);
    float obs[12] = {0}, next[12] = {0}, act[4] = {0, 1, 2, 0}, rew[4] = {0, NAN, 0, 0}, o2[4];
    uint8_t z[4] = {0};
    double steps = -1;
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, next, z, z, 4), MM_E_NUMERIC);
    rew[1] = 0, next[5] = INFINITY;
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, next, z, z, 4), MM_E_NUMERIC);
    obs[0] = NAN;
    CHECK_STATUS(mm_policy_act(p, obs, 4, o2, 1), MM_E_NUMERIC);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_STEPS, &steps));
    CHECK(steps == 0);
    CHECK(p->ro.t == 0 && p->rms.count == 1e-4);
    mm_policy_free(p);
}

/* Found by fuzz_config: create accepted clip_obs = +Inf, saved it, and every load of that file
 * refused it (MM_E_NUMERIC); create now refuses a non-finite clip as the loader does. */
static void test_clip_obs_finite(void)
{
    static const double bad[3] = {INFINITY, NAN, 0.0};
    for (int i = 0; i < 3; i++) {
        mm_policy_opts o;
        mm_policy *p = NULL;
        CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
        o.obs_dim = 3, o.n_actions = 2, o.norm_obs = 1, o.clip_obs = bad[i];
        CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
        CHECK(p == NULL);
    }
}

/* Found by fuzz_config: log_std_init = 1e300 is a finite double, so create accepted it, but
 * the float parameter became +Inf and every sample, log-prob and checkpoint of the policy was
 * NaN. Create now takes [-20, 20]; both edges work end to end. */
static void test_log_std_init_bounds(void)
{
    static const double bad[5] = {1e300, -1e300, 20.5, -21.0, NAN};
    static const double good[2] = {20.0, -20.0};
    mm_policy_opts o;
    mm_policy *p = NULL;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
        o.obs_dim = 2, o.act_dim = 1, o.log_std_init = bad[i];
        CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
        CHECK(p == NULL);
    }
    for (int i = 0; i < 2; i++) {
        float obs[4] = {0.1f, -0.2f, 0.3f, 0.4f}, act[2];
        CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
        o.obs_dim = 2, o.act_dim = 1, o.n_agents = 2, o.log_std_init = good[i];
        CHECK_OK(mm_policy_create(&p, &o));
        CHECK_OK(mm_policy_act(p, obs, 2, act, 1));
        CHECK(isfinite(act[0]) && isfinite(act[1]) && isfinite(p->ro.logp[0]));
        mm_policy_free(p);
        p = NULL;
    }
}

/* Found by fuzz_config: OU noise with an infinite setting, or a finite one that diverges
 * (theta * dt = 1.5e29), returned NaN exploration actions with MM_OK. */
static void test_noise_extremes(void)
{
    static const double bad[3] = {INFINITY, -INFINITY, NAN};
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[8], act[8];
    mmt_fill_uniform(obs, 8, 3, -1, 1);
    for (int k = 0; k < 9; k++) {
        CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_DDPG));
        o.obs_dim = 2, o.act_dim = 2, o.n_agents = 4, o.hidden[0] = o.hidden[1] = 8;
        o.buffer_size = 16, o.batch_size = 4, o.noise = MM_NOISE_OU;
        *(k / 3 == 0 ? &o.noise_sigma : k / 3 == 1 ? &o.noise_theta : &o.noise_dt) = bad[k % 3];
        CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
        CHECK(p == NULL);
    }
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_DDPG));
    o.obs_dim = 2, o.act_dim = 2, o.n_agents = 4, o.hidden[0] = o.hidden[1] = 8;
    o.buffer_size = 16, o.batch_size = 4, o.learning_starts = 0, o.noise = MM_NOISE_OU;
    o.noise_dt = 1e30, o.noise_sigma = 1e300;
    CHECK_OK(mm_policy_create(&p, &o));
    for (int s = 0; s < 8; s++) {
        CHECK_OK(mm_policy_act(p, obs, 4, act, 1));
        for (int i = 0; i < 8; i++) CHECK(act[i] >= -1.0f && act[i] <= 1.0f);
    }
    mm_policy_free(p);
}

static void test_no_alloc_hot_path(void)
{
    static const int32_t algos[6] = {MM_ALGO_DDPG, MM_ALGO_TD3, MM_ALGO_A2C,
                                     MM_ALGO_QAC,  MM_ALGO_PPO, MM_ALGO_TRPO};
    for (int k = 0; k < 6; k++) {
        mmt_counter c;
        mm_allocator a;
        mm_policy *p;
        int64_t before;
        double upd = 0;
        mmt_counting_allocator(&a, &c, -1);
        p = make(algos[k], algos[k] == MM_ALGO_QAC || algos[k] == MM_ALGO_TRPO, &a, 1);
        before = c.n_alloc;
        drive(p, 30, 11);
        CHECK_EQ_I64(c.n_alloc, before);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd));
        CHECK(upd > 0);
        mm_policy_free(p);
        CHECK_EQ_I64(c.live_bytes, 0);
        CHECK_EQ_I64(c.bad_free, 0);
    }
}

static void test_misuse(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    char err[200] = "";
    float obs[12] = {0}, act[8] = {0}, rew[4] = {0};
    uint8_t z[4] = {0}, two[4] = {2, 0, 0, 0};
    double v;
    CHECK_STATUS(mm_policy_opts_init(NULL, MM_ALGO_TD3), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_opts_init(&o, 42), MM_E_INVALID_ARG);
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_DDPG));
    CHECK(o.hidden[0] == 400 && o.hidden[1] == 300 && o.batch_size == 256 && o.tau == 0.005);
    o.err_buf = err, o.err_buf_size = sizeof err;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG); /* obs_dim missing */
    CHECK(p == NULL && strstr(err, "obs_dim"));
    o.obs_dim = 3, o.n_actions = 4;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG); /* discrete DDPG */
    o.n_actions = 0, o.act_low = g_hi, o.act_high = g_lo;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG); /* low > high */
    CHECK_STATUS(mm_policy_create(NULL, &o), MM_E_INVALID_ARG);
    p = make(MM_ALGO_PPO, 1, NULL, 0);
    CHECK_STATUS(mm_policy_act(p, obs, 5, act, 1), MM_E_RANGE);
    CHECK_STATUS(mm_policy_act(p, NULL, 1, act, 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, obs, z, z, 2), MM_E_SHAPE);
    act[0] = 3;
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, obs, z, z, 4), MM_E_RANGE);
    act[0] = 0.5f;
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, obs, z, z, 4), MM_E_RANGE);
    act[0] = 0;
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, obs, two, z, 4), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_policy_set_f64(p, MM_POLICY_STAT_KL, 1), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_policy_set_f64(p, 399, 1), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_policy_set_f64(p, MM_POLICY_GAMMA, 1.5), MM_E_RANGE);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_GAMMA, &v));
    CHECK(v == 0.99);
    CHECK_OK(mm_policy_set_f64(p, MM_POLICY_CLIP_RANGE, 0.1));
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_CLIP_RANGE, &v));
    CHECK(v == 0.1);
    CHECK_STATUS(mm_policy_save(p, NULL), MM_E_INVALID_ARG);
    {
        char missing[512];
        CHECK(mmt_tmp_path(missing, sizeof missing, "does_not_exist.safetensors") == 0);
        CHECK_STATUS(mm_policy_load(p, missing), MM_E_IO);
    }
    CHECK(strlen(mm_policy_errmsg(p)) > 0);
    CHECK(strcmp(mm_policy_errmsg(NULL), "invalid handle") == 0);
    CHECK_STATUS(mm_policy_update(NULL, NULL), MM_E_INVALID_ARG);
    for (int s = 0; s < 6; s++) CHECK_OK(mm_policy_observe(p, obs, act, rew, obs, z, z, 4));
    CHECK_STATUS(mm_policy_observe(p, obs, act, rew, obs, z, z, 4), MM_E_STATE); /* full */
    mm_policy_free(p);
    mm_policy_free(NULL);
    CHECK_OK(mm_param_bounds(MM_POLICY_TAU, &v, NULL));
}

/* [a, a + n) lies inside one of p's six work buffers (maxb x wide floats each). */
static int in_rows(const mm_policy *p, const float *a, int64_t n)
{
    const float *b[6] = {p->w_a, p->w_b, p->w_c, p->w_d, p->w_e, p->w_f};
    for (int k = 0; k < 6; k++)
        if (a >= b[k] && a + n <= b[k] + p->maxb * p->wide) return 1;
    return 0;
}

/* Two roles that are alive at the same time: both inside the work rows, not overlapping. */
static int apart(const mm_policy *p, const float *a, int64_t na, const float *b, int64_t nb)
{
    return in_rows(p, a, na) && in_rows(p, b, nb) && mmi_pol_disjoint(a, na, b, nb);
}

static void rows_offpolicy(int32_t algo)
{
    mm_policy *p = make(algo, 0, NULL, 0);
    int64_t N = p->o.batch_size, od = p->obs_dim, ad = p->act_dim, w = od + ad;
    if (algo != MM_ALGO_SAC) {
        mmi_ddpg_rows r = mmi_ddpg_rows_of(p, N);
        /* targets: s and [s, a] survive them for the critic and actor steps */
        CHECK(apart(p, r.next_obs, N * od, r.target_act, N * ad));
        CHECK(apart(p, r.target_act, N * ad, r.target_in, N * w));
        CHECK(apart(p, r.target_in, N * w, r.q, N) && apart(p, r.obs, N * od, r.q, N));
        CHECK(apart(p, r.obs_act, N * w, r.target_in, N * w));
        /* actor step */
        CHECK(apart(p, r.mu, N * ad, r.obs_act, N * w) && apart(p, r.q, N, r.dq, N));
        CHECK(apart(p, r.dq, N, r.dx, N * w) && apart(p, r.dx, N * w, r.da, N * ad));
        CHECK(r.y >= r.rd + 2 * N);
    } else {
        mmi_sac_rows r = mmi_sac_rows_of(p, N);
        CHECK(apart(p, r.head, N * 2 * ad, r.target_in, N * w));
        CHECK(apart(p, r.next_obs, N * od, r.target_in, N * w));
        CHECK(apart(p, r.target_in, N * w, r.q, N) && apart(p, r.obs_act, N * w, r.q, N));
        /* critic_input_grad: Q_1, Q_2, dL/dQ_k, dx, da; the heads survive it */
        CHECK(apart(p, r.q, 2 * N, r.dq_min, N) && apart(p, r.dq_min, N, r.dx, N * w));
        CHECK(apart(p, r.obs_act, N * w, r.dx, N * w) && apart(p, r.dx, N * w, r.da, N * ad));
        CHECK(apart(p, r.head, N * 2 * ad, r.da, N * ad) &&
              apart(p, r.head, N * 2 * ad, r.q, 2 * N));
        CHECK(apart(p, r.dhead, N * 2 * ad, r.head, N * 2 * ad));
        CHECK(apart(p, r.dhead, N * 2 * ad, r.da, N * ad));
        CHECK(r.y >= r.rd + 2 * N && r.logp >= r.min_q + N);
        CHECK(apart(p, r.alpha_in, 1, r.alpha_dy, 1) && apart(p, r.alpha_out, 1, r.alpha_dy, 1));
    }
    mm_policy_free(p);
}

/* Discrete SAC: the targets hold s', logits, Q'_1 and Q'_2 at once; the critic steps s, Q_c and
 * dQ; the actor step s, logits, Q_1, Q_2 and dL/dz; the alpha step follows on SAC's rows. */
static void rows_sac_discrete(void)
{
    mm_policy *p = make(MM_ALGO_SAC, 1, NULL, 0);
    int64_t N = p->o.batch_size, od = p->obs_dim, n = p->head_dim;
    mmi_sacd_rows r = mmi_sacd_rows_of(p, N);
    mmi_sac_rows a = mmi_sac_rows_of(p, N);
    CHECK(apart(p, r.next_obs, N * od, r.logits, N * n) &&
          apart(p, r.next_obs, N * od, r.q, N * n));
    CHECK(apart(p, r.next_obs, N * od, r.q2, N * n) && apart(p, r.logits, N * n, r.q, N * n));
    CHECK(apart(p, r.logits, N * n, r.q2, N * n) && apart(p, r.q, N * n, r.q2, N * n));
    CHECK(apart(p, r.obs, N * od, r.q, N * n) && apart(p, r.obs, N * od, r.dq, N * n));
    CHECK(apart(p, r.q, N * n, r.dq, N * n) && apart(p, r.obs, N * od, r.q2, N * n));
    CHECK(apart(p, r.dlogits, N * n, r.logits, N * n) && apart(p, r.dlogits, N * n, r.q, N * n));
    CHECK(apart(p, r.dlogits, N * n, r.q2, N * n) && apart(p, r.obs, N * od, r.dlogits, N * n));
    CHECK(r.y >= r.rd + 2 * N);
    CHECK(apart(p, a.alpha_in, 1, a.alpha_dy, 1) && apart(p, a.alpha_out, 1, a.alpha_dy, 1));
    mm_policy_free(p);
}

static void rows_onpolicy(int32_t algo, int discrete)
{
    mm_policy *p = make(algo, discrete, NULL, 0);
    int64_t n = p->ro.n_steps * p->ro.n_agents, K = p->head_dim, ad = p->act_dim;
    mmi_pg_rows g = mmi_pg_rows_of(p);
    int64_t nls = 1 + 2 * ad;
    if (algo == MM_ALGO_TRPO) {
        mmi_trpo_rows r = mmi_trpo_rows_of(p);
        CHECK(apart(p, r.old_head, (n + 1) * K, r.head, n * K));
        CHECK(apart(p, r.old_head, (n + 1) * K, r.dhead, n * K));
        CHECK(apart(p, r.old_head, (n + 1) * K, r.logp, n));
        CHECK(apart(p, r.head, n * K, r.jvp, n * K) && apart(p, r.head, n * K, r.logp, n));
        CHECK(apart(p, r.obs, n * p->obs_dim, r.value, n) && apart(p, r.value, n, r.dvalue, n));
    } else {
        mmi_onpolicy_rows r = mmi_onpolicy_rows_of(p, n);
        CHECK(apart(p, r.dhead, n * K, r.head, n * K) && apart(p, r.dhead, n * K, r.act, n * ad));
        CHECK(apart(p, r.dhead, n * K, g.ls_in, nls) && apart(p, r.adv, n, r.logp, n));
        CHECK(apart(p, r.obs, n * p->obs_dim, r.value, n) && apart(p, r.value, n, r.dvalue, n));
        if (algo == MM_ALGO_QAC)
            CHECK(apart(p, r.q, n * K, r.dq, n * K) && apart(p, r.q, n * K, r.head, n * K));
    }
    CHECK(apart(p, g.q, p->o.n_agents * K, g.logits, p->o.n_agents * K));
    mm_policy_free(p);
}

/* The roles of each phase that are alive together never share floats and fit their buffers
 * (policy_rows.c's table, checked on the sizes the algorithms use). */
static void test_rows_apart(void)
{
    rows_offpolicy(MM_ALGO_TD3);
    rows_offpolicy(MM_ALGO_SAC);
    rows_sac_discrete();
    rows_onpolicy(MM_ALGO_PPO, 0);
    rows_onpolicy(MM_ALGO_A2C, 1);
    rows_onpolicy(MM_ALGO_QAC, 1);
    rows_onpolicy(MM_ALGO_TRPO, 0);
    rows_onpolicy(MM_ALGO_TRPO, 1);
}

/* The model-floor accessors the policy floor uses instead of mm_model's fields. */
static void test_model_accessors(void)
{
    mm_policy *ppo = make(MM_ALGO_PPO, 0, NULL, 0), *trpo = make(MM_ALGO_TRPO, 0, NULL, 0);
    mm_model_opts mo;
    mm_model *m = NULL;
    int32_t la = 0, lb = 0;
    int64_t na = 0, nb = 0;
    CHECK_EQ_I64(mmi_model_optim_kind(ppo->actor), MM_OPT_ADAM);
    CHECK_EQ_I64(mmi_model_optim_kind(trpo->actor), 0); /* TRPO steps by the natural gradient */
    CHECK_OK(mm_model_opts_init(&mo));
    mo.input_dim = ppo->obs_dim, mo.max_batch = 2;
    CHECK_OK(mm_model_create(&m, &mo));
    CHECK_OK(mmi_model_add_layers_of(m, ppo->actor, "test"));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_num_layers(m, &la));
    CHECK_OK(mm_model_num_layers(ppo->actor, &lb));
    CHECK_OK(mm_model_num_params(m, &na));
    CHECK_OK(mm_model_num_params(ppo->actor, &nb));
    CHECK(la == lb && la > 0 && na == nb);
    CHECK_EQ_I64(mmi_model_optim_kind(m), 0);
    CHECK_OK(mm_model_copy(m, ppo->actor, 0)); /* same architecture: the copy is accepted */
    mm_model_free(m);
    mm_policy_free(ppo);
    mm_policy_free(trpo);
}

/* mm_policy_act reads obs into the policy's own rows before it writes an action, so actions
 * may be obs itself or overlap it: exploring and deterministic acts (two policies of one seed,
 * 1 and 2 threads, with and without norm_obs) return bitwise what separate buffers return.
 * mm_policy_export_io refuses outputs that share memory. */
static void test_act_in_place(void)
{
    enum { NA = 4, OD = 6 };
    static const int32_t algos[] = {MM_ALGO_PPO, MM_ALGO_SAC, MM_ALGO_TD3};
    for (size_t ai = 0; ai < sizeof algos / sizeof algos[0]; ai++)
        for (int32_t thr = 1; thr <= 2; thr++)
            for (int part = 0; part < 2; part++) {
                mm_policy_opts o;
                mm_policy *a = NULL, *b = NULL;
                float obs[NA * OD], want[NA * OD], buf[2 * NA * OD];
                float *out = buf + (part ? OD + 1 : 0); /* obs itself, or one row and a float on */
                CHECK_OK(mm_policy_opts_init(&o, algos[ai]));
                o.obs_dim = OD, o.act_dim = OD, o.n_agents = NA, o.n_threads = thr;
                o.hidden[0] = o.hidden[1] = 16, o.norm_obs = part, o.buffer_size = 100;
                o.seed = 7;
                CHECK_OK(mm_policy_create(&a, &o));
                CHECK_OK(mm_policy_create(&b, &o));
                mmt_fill_uniform(obs, NA * OD, 40 + ai, -1, 1);
                for (int32_t explore = 1; explore >= 0; explore--) {
                    memcpy(buf, obs, sizeof obs);
                    CHECK_OK(mm_policy_act(a, obs, NA, want, explore));
                    CHECK_OK(mm_policy_act(b, buf, NA, out, explore));
                    CHECK(memcmp(out, want, sizeof want) == 0);
                }
                if (ai == 0 && thr == 1 && part == 0) {
                    /* mm_policy_export_io: its outputs apart (before, obs_istd over obs_mean
                     * came back holding 1s for the mean with MM_OK) */
                    mm_policy_export_info info;
                    CHECK_STATUS(mm_policy_export_io(a, &info, buf, buf + 1, NULL, NULL),
                                 MM_E_INVALID_ARG);
                    CHECK(strstr(mm_policy_errmsg(a), "obs_istd shares memory with obs_mean") !=
                          NULL);
                    CHECK_STATUS(mm_policy_export_io(a, &info, NULL, NULL, (float *)&info, NULL),
                                 MM_E_INVALID_ARG);
                    CHECK_OK(
                        mm_policy_export_io(a, &info, buf, buf + OD, buf + 2 * OD, buf + 3 * OD));
                }
                mm_policy_free(a), mm_policy_free(b);
            }
}

void suite_policy(void)
{
    mmt_run("policy_gae", test_gae);
    mmt_run("policy_act_in_place", test_act_in_place);
    mmt_run("policy_cg", test_cg);
    mmt_run("policy_fvp_finite_differences", test_fvp);
    mmt_run("policy_line_search_kl", test_line_search);
    mmt_run("policy_replay_uniform", test_replay_uniform);
    mmt_run("policy_save_load", test_save_load);
    mmt_run("policy_save_load_any_cwd", test_save_load_any_cwd);
    mmt_run("policy_nan_refused", test_nan_refused);
    mmt_run("policy_clip_obs_finite", test_clip_obs_finite);
    mmt_run("policy_log_std_init_bounds", test_log_std_init_bounds);
    mmt_run("policy_noise_extremes", test_noise_extremes);
    mmt_run("policy_no_alloc_hot_path", test_no_alloc_hot_path);
    mmt_run("policy_misuse", test_misuse);
    mmt_run("policy_rows_apart", test_rows_apart);
    mmt_run("policy_model_accessors", test_model_accessors);
}
