/* SPDX-License-Identifier: MIT */
/* test_policy_sde.c — generalized State-Dependent Exploration (mm_policy_opts.use_sde): the
 * gradient of the gSDE log-prob and entropy with respect to the means and the log std matrix
 * against float64 central differences; the gradient one PPO update computes (clipped surrogate,
 * entropy bonus, features detached from the variance) against differences of a float64
 * re-implementation; the noise held for sde_sample_freq exploring acts and drawn afresh at
 * episode and rollout starts; save / load and checkpoints; bad options and files refused. */
#include "runner.h"

#include "io/mmi_io.h"
#include "policy/mmi_policy.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALF_LOG_2PI 0.91893853320467274178

static void sde_opts(mm_policy_opts *o, int64_t n_agents, int32_t freq)
{
    CHECK_OK(mm_policy_opts_init(o, MM_ALGO_PPO));
    o->obs_dim = 3, o->act_dim = 2, o->seed = 5, o->n_agents = n_agents;
    o->hidden[0] = 5, o->hidden[1] = 4; /* F = 4 features */
    o->n_steps = 6, o->batch_size = 6 * n_agents, o->n_epochs = 1;
    o->use_sde = 1, o->sde_sample_freq = freq, o->log_std_init = -0.3;
}

/* L = sum_i c_i log N(a_i; mu_i, S_i) - ent mean_i H_i in float64, S from phi (constant) and
 * ls [F, A]. */
static double sde_loss(const double *phi, const double *mu, const double *ls, const float *a,
                       const double *c, int64_t n, int64_t F, int64_t A, double ent, double *H)
{
    double L = 0, h = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < A; k++) {
            double S = 1e-6, z = (double)a[i * A + k] - mu[i * A + k];
            for (int64_t j = 0; j < F; j++)
                S += phi[i * F + j] * phi[i * F + j] * exp(2.0 * ls[j * A + k]);
            L += c[i] * (-0.5 * z * z / S - 0.5 * log(S) - HALF_LOG_2PI);
            h += 0.5 + HALF_LOG_2PI + 0.5 * log(S);
        }
    if (H) *H = h / (double)n;
    return L - ent * h / (double)n;
}

static void test_logp_gradient(void)
{
    enum { n = 5, F = 4, A = 2 };
    mm_policy_opts o;
    mm_policy *p = NULL;
    float x[n * 3], head[n * A], a[n * A], dhead[n * A], lp[n];
    double c[n], dls[F * A], phi[n * F], mu[n * A], ls[F * A], H = 0, ent = 0.07;
    int64_t bad = 0;
    sde_opts(&o, 1, 4);
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK_EQ_I64(p->n_ls, F * A);
    float *pls = mmi_pol_logstd(p);
    for (int q = 0; q < F * A; q++) pls[q] = (float)(-0.6 + 0.15 * q), ls[q] = pls[q];
    mmt_fill_uniform(x, n * 3, 11, -2, 2);
    CHECK_OK(mmi_pi_forward(p, x, n, head, "test"));
    const float *fp = mmi_sde_phi(p->actor);
    for (int q = 0; q < n * F; q++) phi[q] = fp[q];
    mmt_fill_uniform(a, n * A, 12, -1, 1);
    for (int q = 0; q < n * A; q++) mu[q] = head[q];
    for (int i = 0; i < n; i++) c[i] = 0.3 * (i - 2) + 0.1;
    mmi_pi_logp(p, head, a, n, lp);
    for (int i = 0; i < n; i++) { /* log pi of each row alone (c = e_i, no entropy) */
        double e[n] = {0};
        e[i] = 1;
        CHECK_NEAR(lp[i], sde_loss(phi + i * F, mu + i * A, ls, a + i * A, e + i, 1, F, A, 0, NULL),
                   1e-6, 1e-6);
    }
    double got_ent = mmi_pg_head_grad(p, head, a, c, n, ent, dhead, dls);
    sde_loss(phi, mu, ls, a, c, n, F, A, ent, &H);
    CHECK_NEAR(got_ent, H, 1e-12, 1e-12);
    for (int q = 0; q < n * A + F * A; q++) { /* means, then the log std matrix */
        double *v = q < n * A ? &mu[q] : &ls[q - n * A], keep = *v, hh = 1e-6, fd, lib;
        *v = keep + hh;
        double lpl = sde_loss(phi, mu, ls, a, c, n, F, A, ent, NULL);
        *v = keep - hh;
        double lmi = sde_loss(phi, mu, ls, a, c, n, F, A, ent, NULL);
        *v = keep;
        fd = (lpl - lmi) / (2 * hh);
        lib = q < n * A ? dhead[q] : dls[q - n * A];
        /* dhead is stored as float (1e-7 relative); dls is float64 from float inputs */
        if (!mmt_near(lib, fd, 2e-6, 1e-8) && bad++ < 4)
            fprintf(stderr, "    %s[%d]: library %.10g, float64 differences %.10g\n",
                    q < n * A ? "dmu" : "dlog_std", q < n * A ? q : q - n * A, lib, fd);
    }
    CHECK_EQ_I64(bad, 0);
    mm_policy_free(p);
}

/* ---- one PPO update against a float64 re-implementation ------------------------------------ */

/* mean [A] and the last hidden features [F] of the actor (tanh MLP) in float64. */
static void actor_f64(const mm_model *m, const double *w, const float *x, int64_t in, double *mean,
                      double *feat)
{
    double a[16], b[16];
    int32_t nl = 0;
    int64_t width = in;
    CHECK_OK(mm_model_num_layers(m, &nl));
    for (int64_t j = 0; j < in; j++) a[j] = x[j];
    for (int32_t l = 0; l < nl; l++) {
        const mmi_ptensor *wt = mmi_model_tensor(m, l, 0), *bt = mmi_model_tensor(m, l, 1);
        if (!wt) {
            for (int64_t j = 0; j < width; j++) a[j] = tanh(a[j]);
            continue;
        }
        if (l == nl - 1) memcpy(feat, a, sizeof(double) * (size_t)width);
        int64_t out = wt->shape[0];
        for (int64_t r = 0; r < out; r++) {
            double s = w[bt->offset + r];
            for (int64_t c = 0; c < width; c++) s += w[wt->offset + r * width + c] * a[c];
            b[r] = s;
        }
        memcpy(a, b, sizeof(double) * (size_t)out);
        width = out;
    }
    memcpy(mean, a, sizeof(double) * (size_t)width);
}

typedef struct ppo_ref {
    mm_policy *p;
    double *actor, *ls, *phi0; /* parameters; features at the unperturbed actor (detached) */
} ppo_ref;

/* The PPO policy loss of one minibatch holding the whole rollout: mean of -min(rho A,
 * clip(rho) A) minus ent_coef mean H, S from the detached features. */
static double ppo_loss(const ppo_ref *R, int64_t row_only, double *logp_row)
{
    mm_policy *p = R->p;
    const mmi_rollout *ro = &p->ro;
    int64_t n = ro->n_steps * ro->n_agents, F = p->sde.F, A = p->act_dim;
    double loss = 0, eps = p->o.clip_range, ent = p->o.ent_coef;
    for (int64_t r = 0; r < n; r++) {
        double mu[4], feat[16], c = 1.0, H = 0, lp;
        if (row_only >= 0 && r != row_only) continue;
        actor_f64(p->actor, R->actor, ro->obs + r * p->obs_dim, p->obs_dim, mu, feat);
        lp = sde_loss(R->phi0 + r * F, mu, R->ls, ro->act + r * A, &c, 1, F, A, 0, &H);
        if (logp_row) *logp_row = lp;
        double rho = exp(lp - ro->logp[r]), adv = ro->adv[r];
        double rc = rho < 1 - eps ? 1 - eps : (rho > 1 + eps ? 1 + eps : rho);
        loss += -fmin(rho * adv, rc * adv) / (double)n - ent * H / (double)n;
    }
    return loss;
}

static double *params_f64(mm_model *m, int64_t *n)
{
    float *w;
    CHECK_OK(mm_model_params(m, &w, n));
    double *d = malloc(sizeof(double) * (size_t)*n);
    for (int64_t i = 0; i < *n; i++) d[i] = w[i];
    return d;
}

static int64_t grad_mismatches(ppo_ref *R, double *vec, const float *g, int64_t n, const char *what,
                               double *gmax)
{
    int64_t bad = 0;
    for (int64_t j = 0; j < n; j++) {
        double keep = vec[j], h = 1e-6 * (1.0 + fabs(keep)), fd;
        vec[j] = keep + h;
        double lp = ppo_loss(R, -1, NULL);
        vec[j] = keep - h;
        double lm = ppo_loss(R, -1, NULL);
        vec[j] = keep;
        fd = (lp - lm) / (2 * h);
        *gmax = fabs(fd) > *gmax ? fabs(fd) : *gmax;
        /* float32 forward and backward against float64 differences: ~1e-6 relative rounding */
        if (!mmt_near(g[j], fd, 2e-3, 2e-6) && bad++ < 4)
            fprintf(stderr, "    %s[%lld]: library %.8g, float64 differences %.8g\n", what,
                    (long long)j, (double)g[j], fd);
    }
    return bad;
}

static void test_ppo_update_reference(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[6], next[6], act[4], rew[2];
    uint8_t none[2] = {0, 0}, te[2] = {0, 1};
    int32_t did = 0;
    ppo_ref R;
    int64_t na = 0, nl = 0, n, F, bad = 0;
    double gmax_a = 0, gmax_l = 0, lerr = 0;
    sde_opts(&o, 2, 2);
    o.lr_actor = 0, o.lr_critic = 0; /* the update leaves the parameters: the gradients stay */
    o.max_grad_norm = 0, o.normalize_advantage = 0, o.ent_coef = 0.03, o.gamma = 0.9;
    o.clip_range = 0.1;
    CHECK_OK(mm_policy_create(&p, &o));
    mmt_fill_uniform(obs, 6, 21, -1, 1);
    for (int s = 0; s < 6; s++) {
        CHECK_OK(mm_policy_act(p, obs, 2, act, 1));
        mmt_fill_uniform(next, 6, 40 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 2; i++) rew[i] = next[3 * i] * act[2 * i] + 0.2f * obs[3 * i + 1];
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, s == 2 ? te : none, none, 2));
        memcpy(obs, next, sizeof obs);
    }
    n = p->ro.n_steps * p->ro.n_agents, F = p->sde.F;
    R.p = p;
    R.actor = params_f64(p->actor, &na);
    float *ls = mmi_pol_logstd(p);
    R.ls = malloc(sizeof(double) * (size_t)p->n_ls);
    for (int64_t q = 0; q < p->n_ls; q++) R.ls[q] = ls[q];
    R.phi0 = malloc(sizeof(double) * (size_t)(n * F));
    for (int64_t r = 0; r < n; r++) {
        double mu[4];
        actor_f64(p->actor, R.actor, p->ro.obs + r * 3, 3, mu, R.phi0 + r * F);
    }
    /* observe stored log pi of the gSDE Gaussian of each action */
    for (int64_t r = 0; r < n; r++) {
        double lp = 0;
        ppo_loss(&R, r, &lp);
        lerr = fabs(lp - p->ro.logp[r]) > lerr ? fabs(lp - p->ro.logp[r]) : lerr;
    }
    CHECK(lerr < 1e-4);
    /* old log pi moved on some rows so that the ratios reach both clipped branches */
    for (int64_t r = 0; r < n; r++) p->ro.logp[r] += (float)(0.3 * ((r % 3) - 1));
    CHECK_OK(mm_policy_update(p, &did));
    CHECK(did == 1);
    {
        float *g;
        int64_t ng;
        CHECK_OK(mm_model_grads(p->actor, &g, &ng));
        CHECK_EQ_I64(ng, na);
        bad += grad_mismatches(&R, R.actor, g, na, "actor", &gmax_a);
        CHECK_OK(mm_model_grads(p->logstd, &g, &nl));
        CHECK_EQ_I64(nl, 2 * p->n_ls); /* [weight (fed 0: no gradient), bias = log std] */
        bad += grad_mismatches(&R, R.ls, g + p->n_ls, p->n_ls, "log_std", &gmax_l);
    }
    CHECK_EQ_I64(bad, 0);
    CHECK(gmax_a > 1e-4 && gmax_l > 1e-4); /* the loss does depend on both */
    free(R.actor), free(R.ls), free(R.phi0);
    mm_policy_free(p);
}

/* ---- noise held for sde_sample_freq acts ------------------------------------------------------ */

static int same(const float *a, const float *b, int n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* Acts T times on the same observation (observe after each, agent 1's episode ends after act
 * end1); act[t] holds both agents' 2-dim actions. */
static void run_fixed(mm_policy *p, int T, int end1, float act[][4])
{
    float obs[6] = {0.3f, -0.2f, 0.5f, -0.4f, 0.1f, 0.7f}, rew[2] = {0, 0}, det[4];
    uint8_t none[2] = {0, 0}, te[2] = {0, 1};
    int32_t did;
    for (int t = 0; t < T; t++) {
        CHECK_OK(mm_policy_act(p, obs, 2, act[t], 1));
        CHECK_OK(mm_policy_act(p, obs, 2, det, 0)); /* deterministic acts draw nothing */
        CHECK_OK(mm_policy_observe(p, obs, act[t], rew, obs, t == end1 ? te : none, none, 2));
        CHECK_OK(mm_policy_update(p, &did));
    }
}

static void test_resample_frequency(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float lo[2] = {-100, -100}, hi[2] = {100, 100}, act[12][4];
    sde_opts(&o, 2, 3);
    o.n_steps = 64, o.batch_size = 128, o.act_low = lo, o.act_high = hi;
    CHECK_OK(mm_policy_create(&p, &o));
    run_fixed(p, 9, 1, act);
    /* agent 0: draws at acts 0, 3, 6 */
    for (int t = 1; t < 9; t++) CHECK(same(act[t], act[t - 1], 2) == (t % 3 != 0));
    /* agent 1: draws at 0, then at 2 (its episode ended after act 1), 5, 8 */
    for (int t = 1; t < 9; t++)
        CHECK(same(act[t] + 2, act[t - 1] + 2, 2) == (t != 2 && t != 5 && t != 8));
    /* the noise is phi . W_i of the features of that observation */
    {
        float obs[6] = {0.3f, -0.2f, 0.5f, -0.4f, 0.1f, 0.7f}, head[4];
        CHECK_OK(mmi_pi_forward(p, obs, 2, head, "test"));
        const float *phi = mmi_sde_phi(p->actor);
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                double e = 0;
                for (int j = 0; j < 4; j++)
                    e += (double)phi[i * 4 + j] * p->sde.W[(i * 4 + j) * 2 + k];
                CHECK_NEAR(act[8][2 * i + k], head[2 * i + k] + e, 1e-5, 1e-6);
                CHECK(fabs(e) > 1e-4);
            }
    }
    mm_policy_free(p);
    /* -1: held for the whole rollout, drawn again when the next rollout starts */
    sde_opts(&o, 2, -1);
    o.n_steps = 4, o.batch_size = 8, o.act_low = lo, o.act_high = hi;
    o.lr_actor = 0, o.lr_critic = 0; /* the update changes nothing but the rollout */
    CHECK_OK(mm_policy_create(&p, &o));
    run_fixed(p, 8, -1, act);
    for (int t = 1; t < 8; t++) CHECK(same(act[t], act[t - 1], 4) == (t != 4));
    mm_policy_free(p);
    /* without gSDE the same loop draws every act (the checks above can fail) */
    sde_opts(&o, 2, -1);
    o.use_sde = 0, o.n_steps = 4, o.batch_size = 8, o.act_low = lo, o.act_high = hi;
    CHECK_OK(mm_policy_create(&p, &o));
    run_fixed(p, 3, -1, act);
    CHECK(!same(act[1], act[0], 2) && !same(act[2], act[1], 2));
    mm_policy_free(p);
}

/* ---- files ------------------------------------------------------------------------------------- */

static void drive_pair(mm_policy *a, mm_policy *b, int steps, uint64_t seed)
{
    float obs[12], next[12], act_a[8], act_b[8], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    int32_t da, db;
    mmt_fill_uniform(obs, 12, seed, -1, 1);
    for (int s = 0; s < steps; s++) {
        CHECK_OK(mm_policy_act(a, obs, 4, act_a, 1));
        CHECK_OK(mm_policy_act(b, obs, 4, act_b, 1));
        CHECK(same(act_a, act_b, 8));
        mmt_fill_uniform(next, 12, seed + 100 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 4; i++)
            rew[i] = next[3 * i] - 0.1f * act_a[2 * i], te[i] = s % 7 == 3 && i == 1;
        CHECK_OK(mm_policy_observe(a, obs, act_a, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_observe(b, obs, act_a, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_update(a, &da));
        CHECK_OK(mm_policy_update(b, &db));
        memcpy(obs, next, sizeof obs);
    }
}

/* The file re-written with tensor `name`'s data replaced by data (NULL: as is) and metadata key
 * `key` set to val (NULL: as is); the checksum is recomputed, so only the loader's own checks
 * can refuse it. */
static unsigned char *resave(const unsigned char *file, size_t size, const char *name,
                             const void *data, const char *key, const char *val, size_t *out)
{
    mmi_alloc al;
    mmi_err e;
    mmi_st_file f;
    mmi_st_limits lim;
    mmi_st_plan pl;
    static mmi_st_out outs[256];
    const char *keys[32], *vals[32];
    int64_t nt = 0, nm = 0;
    unsigned char *buf = NULL;
    mmi_alloc_init(&al, NULL, NULL);
    mmi_st_limits_default(&lim);
    if (mmi_st_parse(&f, file, size, &lim, &al, &e) != MM_OK) return NULL;
    for (int64_t i = 0; i < f.n_meta && nm < 32; i++) {
        if (strcmp(f.meta[i].key, "crc32") == 0) continue;
        keys[nm] = f.meta[i].key;
        vals[nm++] = key && strcmp(f.meta[i].key, key) == 0 ? val : f.meta[i].val;
    }
    for (int64_t i = 0; i < f.n_tensors && nt < 256; i++) {
        const mmi_st_tensor *t = &f.tensors[i];
        mmi_st_out *o = &outs[nt++];
        memset(o, 0, sizeof *o);
        o->name = t->name, o->dtype = t->dtype, o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof t->shape);
        o->data = name && strcmp(t->name, name) == 0 ? data : f.data + t->begin;
    }
    if (mmi_st_plan_make(&pl, outs, nt, keys, vals, nm, 1, &al, &e) == MM_OK) {
        buf = malloc(pl.total_size);
        if (mmi_st_plan_to_mem(&pl, buf, pl.total_size, out, &e, "t") != MM_OK)
            free(buf), buf = NULL;
        mmi_st_plan_free(&pl);
    }
    mmi_st_free(&f);
    return buf;
}

static void file_opts(mm_policy_opts *o)
{
    sde_opts(o, 4, 3);
    o->n_steps = 8, o->batch_size = 16, o->n_epochs = 2;
    o->memory = MM_MEMORY_LRU, o->memory_dim = 2, o->memory_seq_len = 4; /* with memory too */
}

static void test_checkpoint_resume(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL, *c = NULL;
    size_t n = 0, n2 = 0;
    unsigned char *buf;
    file_opts(&o);
    CHECK_OK(mm_policy_create(&a, &o));
    mmt_policy_drive(a, 13, 3, 1.0f); /* an update behind, a rollout and noise half way */
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, MM_POLICY_SAVE_CHECKPOINT));
    buf = malloc(n);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, MM_POLICY_SAVE_CHECKPOINT));
    o.seed = 99; /* other weights and streams: all of it must come from the file */
    CHECK_OK(mm_policy_create(&b, &o));
    CHECK_OK(mm_policy_load_mem(b, buf, n));
    CHECK(same(mmi_pol_logstd(a), mmi_pol_logstd(b), (int)a->n_ls));
    drive_pair(a, b, 11, 7); /* acts equal bit for bit across noise draws and an update */
    /* a counter beyond sde_sample_freq - 1 is refused, the policy left as it was */
    {
        int64_t left[4] = {0, 1, 3, 2};
        unsigned char *bad = resave(buf, n, "ckpt.sde.left", left, NULL, NULL, &n2);
        CHECK(bad != NULL);
        CHECK_OK(mm_policy_create(&c, &o));
        if (bad) CHECK_STATUS(mm_policy_load_mem(c, bad, n2), MM_E_FORMAT);
        CHECK(strstr(mm_policy_errmsg(c), "ckpt.sde.left") != NULL);
        free(bad);
        left[2] = 2; /* in range: the same rewrite loads */
        bad = resave(buf, n, "ckpt.sde.left", left, NULL, NULL, &n2);
        if (bad) CHECK_OK(mm_policy_load_mem(c, bad, n2));
        free(bad);
    }
    free(buf);
    mm_policy_free(a), mm_policy_free(b), mm_policy_free(c);
}

static void test_file_records_sde(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL;
    char path[512];
    size_t n = 0, n2 = 0;
    unsigned char *buf;
    file_opts(&o);
    CHECK_OK(mm_policy_create(&a, &o));
    mmt_policy_drive(a, 9, 4, 1.0f);
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, 0));
    buf = malloc(n);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, 0));
    /* create-from-file brings gSDE back with its sample frequency and log std matrix */
    CHECK(mmt_tmp_path(path, sizeof path, "sde.policy") == 0);
    CHECK_OK(mm_policy_save_ex(a, path, 0));
    CHECK_OK(mm_policy_load_new(&b, path, NULL));
    if (b) {
        CHECK(b->o.use_sde == 1 && b->o.sde_sample_freq == 3 && b->n_ls == a->n_ls);
        CHECK(same(mmi_pol_logstd(a), mmi_pol_logstd(b), (int)a->n_ls));
        mm_policy_free(b), b = NULL;
    }
    remove(path);
    /* a policy without gSDE (or another frequency) refuses the file */
    o.use_sde = 0;
    CHECK_OK(mm_policy_create(&b, &o));
    CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_FORMAT);
    CHECK(strstr(mm_policy_errmsg(b), "sde") != NULL);
    mm_policy_free(b), b = NULL;
    o.use_sde = 1, o.sde_sample_freq = 4;
    CHECK_OK(mm_policy_create(&b, &o));
    CHECK_STATUS(mm_policy_load_mem(b, buf, n), MM_E_FORMAT);
    mm_policy_free(b), b = NULL;
    /* malformed metadata and a NaN log std are refused */
    {
        static const char *const badv[] = {"full,", "full,0x3", "diag,3", "full,-2", "full,3,"};
        for (int k = 0; k < 5; k++) {
            unsigned char *bad = resave(buf, n, NULL, NULL, "sde", badv[k], &n2);
            CHECK(bad != NULL);
            if (!bad) continue;
            CHECK_OK(mm_policy_create(&b, &o));
            CHECK_STATUS(mm_policy_load_mem(b, bad, n2), MM_E_FORMAT);
            mm_policy_free(b), b = NULL;
            CHECK(mmt_tmp_path(path, sizeof path, "sde_bad.policy") == 0);
            FILE *fp = fopen(path, "wb");
            if (fp) fwrite(bad, 1, n2, fp), fclose(fp);
            CHECK(mm_policy_load_new(&b, path, NULL) < 0);
            mm_policy_free(b), b = NULL;
            remove(path);
            free(bad);
        }
        float nanls[8];
        for (int q = 0; q < 8; q++) nanls[q] = q == 5 ? NAN : -0.3f;
        unsigned char *bad = resave(buf, n, "log_std.0.bias", nanls, NULL, NULL, &n2);
        CHECK(bad != NULL);
        o.sde_sample_freq = 3;
        CHECK_OK(mm_policy_create(&b, &o));
        if (bad) CHECK_STATUS(mm_policy_load_mem(b, bad, n2), MM_E_NUMERIC);
        free(bad);
        mm_policy_free(b);
    }
    free(buf);
    mm_policy_free(a);
}

/* ---- options ------------------------------------------------------------------------------------ */

static void test_bad_options(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    char err[256];
    /* defaults: off, SB3's -1; an older struct_size gets them too */
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    CHECK(o.use_sde == 0 && o.sde_sample_freq == -1);
    sde_opts(&o, 1, 4);
    o.use_sde = 2;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    sde_opts(&o, 1, 0);
    o.err_buf = err, o.err_buf_size = sizeof err;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    CHECK(strstr(err, "sde_sample_freq") != NULL);
    sde_opts(&o, 1, -2);
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    sde_opts(&o, 1, 4);
    o.n_actions = 3; /* discrete */
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    {
        static const int32_t algos[4] = {MM_ALGO_TRPO, MM_ALGO_DDPG, MM_ALGO_TD3, MM_ALGO_SAC};
        for (int k = 0; k < 4; k++) {
            CHECK_OK(mm_policy_opts_init(&o, algos[k]));
            o.obs_dim = 3, o.use_sde = 1, o.sde_sample_freq = 4;
            o.err_buf = err, o.err_buf_size = sizeof err;
            CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
            CHECK(strstr(err, "use_sde") != NULL);
        }
    }
    sde_opts(&o, 1, 4);
    o.hidden[1] = 65536, o.act_dim = 512; /* a 2^25-entry log std */
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_RANGE);
    /* an opts struct that ends before the gSDE fields: gSDE off */
    sde_opts(&o, 1, 0);
    o.struct_size = (uint32_t)offsetof(mm_policy_opts, use_sde);
    CHECK_OK(mm_policy_create(&p, &o));
    if (p) CHECK(p->sde.F == 0 && p->n_ls == 2);
    mm_policy_free(p);
    /* A2C takes gSDE (it shares PPO's distribution code) */
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_A2C));
    o.obs_dim = 3, o.act_dim = 2, o.n_agents = 4, o.use_sde = 1, o.sde_sample_freq = 2;
    CHECK_OK(mm_policy_create(&p, &o));
    if (p) mmt_policy_drive(p, 12, 9, 1.0f);
    mm_policy_free(p);
}

/* act, observe, update and reset_agent with gSDE (and memory) allocate nothing. */
static void test_no_alloc(void)
{
    mmt_counter c;
    mm_allocator al;
    mm_policy_opts o;
    mm_policy *p = NULL;
    int64_t before;
    mmt_counting_allocator(&al, &c, -1);
    file_opts(&o);
    o.alloc = &al, o.norm_obs = 1, o.norm_reward = 1;
    CHECK_OK(mm_policy_create(&p, &o));
    before = c.n_alloc;
    mmt_policy_drive(p, 30, 8, 1.0f); /* three updates, draws, episode ends */
    CHECK_OK(mm_policy_reset_agent(p, 2));
    CHECK_EQ_I64(c.n_alloc, before);
    mm_policy_free(p);
    CHECK_EQ_I64(c.live_bytes, 0);
}

void suite_policy_sde(void)
{
    mmt_run("policy_sde_logp_gradient_f64", test_logp_gradient);
    mmt_run("policy_sde_ppo_update_reference", test_ppo_update_reference);
    mmt_run("policy_sde_resample_frequency", test_resample_frequency);
    mmt_run("policy_sde_checkpoint_resume", test_checkpoint_resume);
    mmt_run("policy_sde_file", test_file_records_sde);
    mmt_run("policy_sde_bad_options", test_bad_options);
    mmt_run("policy_sde_no_alloc", test_no_alloc);
}
