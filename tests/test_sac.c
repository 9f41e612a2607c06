/* SPDX-License-Identifier: MIT */
/* test_sac.c — soft actor-critic: one full update against a float64 reference written here
 * (soft Bellman target, critic loss and gradients, the reparameterised actor loss and its
 * gradient through the min of the twin critics, the temperature loss, the Adam steps and the
 * Polyak update of the targets); the squashed-Gaussian log-prob and its gradient against
 * float64 finite differences and against a numerical integral of the density; option
 * validation and bad input; zero allocations on the hot path; save -> load -> identical
 * actions and temperature. */
#include "runner.h"

#include "policy/mmi_policy.h"

#include "../examples/envs/envs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OD   3
#define AD   2
#define HID  8
#define NB   6
#define MAXW 16 /* widest layer of the reference nets */

static float g_lo[AD] = {-2.0f, -1.0f}, g_hi[AD] = {2.0f, 3.0f};

/* norm_reward in the reference updates: return statistics with std 0.1 (var 0.01) make the
 * replay's rewards -1 .. 1.7 into -10 .. 17 before the clip at 10, so both clips happen. */
#define RN_VAR 0.01

/* VecNormalize's reward scaling from its definition: r / sqrt(var + 1e-8) clipped to +-10. */
static double ref_scaled_reward(double r)
{
    double v = r / sqrt(RN_VAR + 1e-8);
    return v < -10.0 ? -10.0 : (v > 10.0 ? 10.0 : v);
}

/* Sets the reward statistics observe would have built (norm_reward = 1 at create). */
static void set_reward_stats(mm_policy *p)
{
    CHECK(p->rn.on == 1 && p->rn.clip == 10.0);
    p->rn.var = RN_VAR;
}

static mm_policy *make_sac_rn(const mm_allocator *a, int norm, double ent_coef, int norm_rew)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    o.obs_dim = OD, o.act_dim = AD, o.act_low = g_lo, o.act_high = g_hi;
    o.alloc = a, o.seed = 9, o.n_agents = 4, o.norm_obs = norm, o.norm_reward = norm_rew;
    o.hidden[0] = HID, o.hidden[1] = HID;
    o.buffer_size = 64, o.batch_size = NB, o.learning_starts = 10;
    o.lr_actor = 1e-3, o.lr_critic = 2e-3, o.lr_alpha = 5e-3, o.ent_coef = ent_coef;
    o.gamma = 0.9, o.tau = 0.05;
    CHECK_OK(mm_policy_create(&p, &o));
    return p;
}

static mm_policy *make_sac(const mm_allocator *a, int norm, double ent_coef)
{
    return make_sac_rn(a, norm, ent_coef, 0);
}

/* ---- a float64 MLP: dense -> ReLU -> dense -> ReLU -> dense (mm_model's parameter order) --- */
typedef struct ref_mlp {
    int in, out;
    double w[3][MAXW * MAXW], b[3][MAXW]; /* weight [out, in] row-major, bias */
    double gw[3][MAXW * MAXW], gb[3][MAXW];
    double h[3][NB][MAXW]; /* input of layer l, row k */
} ref_mlp;

static int dim(const ref_mlp *m, int l) { return l == 0 ? m->in : (l == 3 ? m->out : HID); }

static void mlp_load(ref_mlp *m, mm_model *src, int in, int out)
{
    float *w;
    int64_t n, o = 0;
    memset(m, 0, sizeof *m);
    m->in = in, m->out = out;
    CHECK_OK(mm_model_params(src, &w, &n));
    for (int l = 0; l < 3; l++) {
        int a = dim(m, l), b = dim(m, l + 1);
        for (int i = 0; i < a * b; i++) m->w[l][i] = w[o++];
        for (int i = 0; i < b; i++) m->b[l][i] = w[o++];
    }
    CHECK_EQ_I64(o, n);
}

static void mlp_forward(ref_mlp *m, const double *x, int n, double *y)
{
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < m->in; i++) m->h[0][k][i] = x[k * m->in + i];
        for (int l = 0; l < 3; l++) {
            int a = dim(m, l), b = dim(m, l + 1);
            for (int j = 0; j < b; j++) {
                double s = m->b[l][j];
                for (int i = 0; i < a; i++) s += m->w[l][j * a + i] * m->h[l][k][i];
                if (l < 2)
                    m->h[l + 1][k][j] = s > 0 ? s : 0;
                else
                    y[k * b + j] = s;
            }
        }
    }
}

/* Accumulates parameter gradients of sum_k dy_k . y_k; dx (optional) receives dL/dx. */
static void mlp_backward(ref_mlp *m, const double *dy, int n, double *dx)
{
    for (int k = 0; k < n; k++) {
        double g[MAXW], gi[MAXW];
        for (int j = 0; j < m->out; j++) g[j] = dy[k * m->out + j];
        for (int l = 2; l >= 0; l--) {
            int a = dim(m, l), b = dim(m, l + 1);
            for (int i = 0; i < a; i++) gi[i] = 0;
            for (int j = 0; j < b; j++) {
                m->gb[l][j] += g[j];
                for (int i = 0; i < a; i++) {
                    m->gw[l][j * a + i] += g[j] * m->h[l][k][i];
                    gi[i] += g[j] * m->w[l][j * a + i];
                }
            }
            for (int i = 0; i < a; i++) g[i] = l > 0 && m->h[l][k][i] <= 0 ? 0 : gi[i];
        }
        for (int i = 0; dx && i < m->in; i++) dx[k * m->in + i] = g[i];
    }
}

/* torch Adam, first step from zero state: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected. */
static double adam1(double p, double g, double lr)
{
    double m = 0.1 * g / 0.1, v = 0.001 * g * g / 0.001;
    return p - lr * m / (sqrt(v) + 1e-8);
}

static void mlp_adam(ref_mlp *m, double lr)
{
    for (int l = 0; l < 3; l++) {
        int a = dim(m, l), b = dim(m, l + 1);
        for (int i = 0; i < a * b; i++) m->w[l][i] = adam1(m->w[l][i], m->gw[l][i], lr);
        for (int i = 0; i < b; i++) m->b[l][i] = adam1(m->b[l][i], m->gb[l][i], lr);
    }
}

/* libmm's parameters (or gradients) against the reference's: relative L2 error. */
static double mlp_diff(const ref_mlp *m, mm_model *x, int grads)
{
    float *w;
    int64_t n, o = 0;
    double num = 0, den = 0;
    CHECK_OK(grads ? mm_model_grads(x, &w, &n) : mm_model_params(x, &w, &n));
    for (int l = 0; l < 3; l++) {
        int a = dim(m, l), b = dim(m, l + 1);
        for (int i = 0; i < a * b + b; i++) {
            double r = i < a * b ? (grads ? m->gw[l][i] : m->w[l][i])
                                 : (grads ? m->gb[l][i - a * b] : m->b[l][i - a * b]);
            num += (w[o] - r) * (w[o] - r), den += r * r, o++;
        }
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* The squashed Gaussian, written out from its definition: the Gaussian density at u with the
 * explicit (u - mu) / sigma, then the change of variables a = tanh(u). */
static double ref_logp(const double *mu, const double *ls, const double *eps, double *a, double *u)
{
    double lp = 0;
    for (int j = 0; j < AD; j++) {
        double l = fmin(fmax(ls[j], -20.0), 2.0), s = exp(l);
        u[j] = mu[j] + s * eps[j];
        a[j] = tanh(u[j]);
        lp += -0.5 * pow((u[j] - mu[j]) / s, 2) - l - 0.5 * log(2 * 3.14159265358979323846);
        lp -= log(1.0 - a[j] * a[j] + 1e-6);
    }
    return lp;
}

typedef struct sac_ref {
    ref_mlp actor, q[2], qt[2];
    double log_alpha, g_alpha, critic_loss, actor_loss;
} sac_ref;

/* One SAC step in float64 (the module comment of algo_sac.c states the maths). */
static void reference_step(sac_ref *R, const double *s, const double *a, const double *r,
                           const double *d, const double *s2, const double *eps, double gamma,
                           double tau, double lr_a, double lr_q, double lr_al)
{
    double head[NB * 2 * AD], x[NB * (OD + AD)], q[2][NB], y[NB], lp[NB], dq[NB];
    double dhead[NB * 2 * AD], aa[AD], u[AD], alpha = exp(R->log_alpha), tgt = -AD;
    const double *eps2 = eps + NB * AD;
    int W = OD + AD;
    /* target with the current actor at s' and the target critics */
    mlp_forward(&R->actor, s2, NB, head);
    for (int k = 0; k < NB; k++) {
        lp[k] = ref_logp(head + k * 2 * AD, head + k * 2 * AD + AD, eps2 + k * AD, aa, u);
        for (int i = 0; i < OD; i++) x[k * W + i] = s2[k * OD + i];
        for (int j = 0; j < AD; j++) x[k * W + OD + j] = aa[j];
    }
    mlp_forward(&R->qt[0], x, NB, q[0]);
    mlp_forward(&R->qt[1], x, NB, q[1]);
    for (int k = 0; k < NB; k++)
        y[k] = r[k] + gamma * (1 - d[k]) * (fmin(q[0][k], q[1][k]) - alpha * lp[k]);
    /* critics: 1/2 sum_c mean (Q_c - y)^2 */
    R->critic_loss = 0;
    for (int k = 0; k < NB; k++) {
        for (int i = 0; i < OD; i++) x[k * W + i] = s[k * OD + i];
        for (int j = 0; j < AD; j++) x[k * W + OD + j] = a[k * AD + j];
    }
    for (int c = 0; c < 2; c++) {
        mlp_forward(&R->q[c], x, NB, q[c]);
        for (int k = 0; k < NB; k++) {
            R->critic_loss += 0.5 * (q[c][k] - y[k]) * (q[c][k] - y[k]) / NB;
            dq[k] = (q[c][k] - y[k]) / NB;
        }
        mlp_backward(&R->q[c], dq, NB, NULL);
        mlp_adam(&R->q[c], lr_q);
    }
    /* actor: mean(alpha log pi - min_c Q_c(s, a~)) through the updated critics */
    mlp_forward(&R->actor, s, NB, head);
    for (int k = 0; k < NB; k++) {
        lp[k] = ref_logp(head + k * 2 * AD, head + k * 2 * AD + AD, eps + k * AD, aa, u);
        for (int j = 0; j < AD; j++) x[k * W + OD + j] = aa[j];
    }
    for (int c = 0; c < 2; c++) mlp_forward(&R->q[c], x, NB, q[c]);
    R->actor_loss = 0, R->g_alpha = 0;
    for (int k = 0; k < NB; k++) {
        int c = q[1][k] < q[0][k];
        double one = -1.0 / NB, *mu = head + k * 2 * AD, *ls = mu + AD, gx[OD + AD];
        R->actor_loss += (alpha * lp[k] - q[c][k]) / NB;
        R->g_alpha -= (lp[k] + tgt) / NB;
        /* dQ_c/dx of this row alone (a fresh backward of the frozen critic) */
        ref_mlp *m = &R->q[c];
        mlp_forward(m, x + k * W, 1, q[c] + k);
        {
            double gsave[3][MAXW * MAXW], bsave[3][MAXW];
            memcpy(gsave, m->gw, sizeof gsave), memcpy(bsave, m->gb, sizeof bsave);
            mlp_backward(m, &one, 1, gx);
            memcpy(m->gw, gsave, sizeof gsave), memcpy(m->gb, bsave, sizeof bsave);
        }
        /* chain rule through a = tanh(u), u = mu + exp(l) eps, with log N's own terms */
        for (int j = 0; j < AD; j++) {
            double l = ls[j], sg = exp(fmin(fmax(l, -20.0), 2.0));
            double t = tanh(mu[j] + sg * eps[k * AD + j]);
            double dcorr = 2 * t * (1 - t * t) / (1 - t * t + 1e-6); /* d/du of -log(...) */
            double du = alpha / NB * dcorr + gx[OD + j] * (1 - t * t);
            dhead[k * 2 * AD + j] = du; /* d log N / d mu = 0 in total */
            dhead[k * 2 * AD + AD + j] =
                (l >= -20 && l <= 2) ? du * sg * eps[k * AD + j] - alpha / NB : 0.0;
        }
    }
    mlp_forward(&R->actor, s, NB, head); /* the saved activations of the s rows */
    mlp_backward(&R->actor, dhead, NB, NULL);
    mlp_adam(&R->actor, lr_a);
    R->log_alpha = adam1(R->log_alpha, R->g_alpha, lr_al);
    for (int c = 0; c < 2; c++)
        for (int l = 0; l < 3; l++) {
            for (int i = 0; i < MAXW * MAXW; i++)
                R->qt[c].w[l][i] = (1 - tau) * R->qt[c].w[l][i] + tau * R->q[c].w[l][i];
            for (int i = 0; i < MAXW; i++)
                R->qt[c].b[l][i] = (1 - tau) * R->qt[c].b[l][i] + tau * R->q[c].b[l][i];
        }
}

/* norm_rew: the batch's rewards are scaled with the return statistics (the replay keeps them
 * raw), as DDPG/TD3 do; before 2026-12-04 SAC used the raw rewards whatever norm_reward. */
static void reference_update(int norm_rew)
{
    mm_policy *p = make_sac_rn(NULL, 0, 0.7, norm_rew);
    sac_ref *R = calloc(1, sizeof *R);
    double s[NB * OD], a[NB * AD], r[NB], d[NB], s2[NB * OD], eps[2 * NB * AD], v;
    float *w, so[OD], ao[AD], so2[OD], *ent;
    int64_t n;
    CHECK(R != NULL);
    /* targets unlike the critics, so the test sees which one each role uses */
    for (int c = 0; c < 2; c++) {
        CHECK_OK(mm_model_params(p->critic_t[c], &w, &n));
        for (int64_t i = 0; i < n; i++) w[i] += 0.05f * (float)sin(3.0 * (double)i + c);
    }
    /* one log std bias beyond the clamp: dimension 1's log std gradient is then 0 */
    CHECK_OK(mm_model_params(p->actor, &w, &n));
    w[n - 1] = 2.5f;
    for (int k = 0; k < 10; k++) { /* replay rows */
        mmt_fill_uniform(so, OD, 100 + (uint64_t)k, -1, 1);
        mmt_fill_uniform(so2, OD, 200 + (uint64_t)k, -1, 1);
        mmt_fill_uniform(ao, AD, 300 + (uint64_t)k, -1, 1);
        mmi_replay_add(&p->rb, so, ao, 0.3f * (float)k - 1.0f, so2, k % 4 == 1 ? 1.0f : 0.0f);
    }
    for (int k = 0; k < NB; k++) p->w_idx[k] = (k * 7) % 10;
    p->w_idx[NB - 1] = p->w_idx[0]; /* a repeated row, as sampling with replacement gives */
    for (int i = 0; i < 2 * NB * AD; i++)
        p->sac_eps[i] = (float)(1.7 * sin(1.3 * i + 0.4)), eps[i] = p->sac_eps[i];
    for (int k = 0; k < NB; k++) {
        int64_t i = p->w_idx[k];
        for (int j = 0; j < OD; j++)
            s[k * OD + j] = p->rb.obs[i * OD + j], s2[k * OD + j] = p->rb.next_obs[i * OD + j];
        for (int j = 0; j < AD; j++) a[k * AD + j] = p->rb.act[i * AD + j];
        r[k] = norm_rew ? ref_scaled_reward(p->rb.rew[i]) : p->rb.rew[i], d[k] = p->rb.term[i];
    }
    if (norm_rew) set_reward_stats(p);
    mlp_load(&R->actor, p->actor, OD, 2 * AD);
    for (int c = 0; c < 2; c++) {
        mlp_load(&R->q[c], p->critic[c], OD + AD, 1);
        mlp_load(&R->qt[c], p->critic_t[c], OD + AD, 1);
    }
    CHECK_OK(mm_model_params(p->ent, &ent, NULL));
    R->log_alpha = ent[1];
    CHECK_NEAR(exp(R->log_alpha), 0.7, 1e-6, 0);
    reference_step(R, s, a, r, d, s2, eps, 0.9, 0.05, 1e-3, 2e-3, 5e-3);
    CHECK_OK(mmi_sac_step(p, NB));
    /* gradients of the last backward of each net, then the parameters after Adam / Polyak */
    CHECK(mlp_diff(&R->actor, p->actor, 1) < 1e-4);
    for (int c = 0; c < 2; c++) {
        CHECK(mlp_diff(&R->q[c], p->critic[c], 1) < 1e-4);
        CHECK(mlp_diff(&R->q[c], p->critic[c], 0) < 1e-5);
        CHECK(mlp_diff(&R->qt[c], p->critic_t[c], 0) < 1e-5);
    }
    CHECK(mlp_diff(&R->actor, p->actor, 0) < 1e-5);
    CHECK_OK(mm_model_grads(p->ent, &w, NULL));
    CHECK_NEAR(w[1], R->g_alpha, 1e-4, 1e-6);
    CHECK_NEAR(ent[1], R->log_alpha, 1e-6, 1e-7);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_CRITIC_LOSS, &v));
    CHECK_NEAR(v, R->critic_loss, 1e-4, 1e-6);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ACTOR_LOSS, &v));
    CHECK_NEAR(v, R->actor_loss, 1e-4, 1e-6);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENT_COEF, &v));
    CHECK_NEAR(v, exp(R->log_alpha), 1e-6, 0);
    free(R);
    mm_policy_free(p);
}

static void test_reference_update(void)
{
    reference_update(0);
    reference_update(1);
}

/* The log-prob gradient (the core of the actor backward) against central differences, and
 * the density integrating to 1 over (-1, 1). */
static void test_squash_gradient(void)
{
    double mu[AD] = {0.3, -1.1}, ls[AD] = {-0.4, 0.7}, eps[AD] = {0.8, -1.9}, ga[AD] = {0.6, -0.25};
    double gmu[AD], gls[AD], a[AD], u[AD], c = 0.37, h = 1e-6;
    for (int pass = 0; pass < 3; pass++) {
        /* clamped: no log std gradient (a small eps keeps tanh(u) off 1.0 exactly, where
         * 1 - t^2 underflows and differences of step 1e-6 see nothing) */
        if (pass == 1) ls[1] = 2.6, eps[1] = -0.05;
        if (pass == 2) mu[0] = 4.0, ls[1] = -0.2, eps[1] = -1.9; /* 1 - tanh^2 = 5e-4 */
        mmi_sac_squash_grad(mu, ls, eps, AD, c, ga, gmu, gls);
        CHECK_NEAR(mmi_sac_squash(mu, ls, eps, AD, a), ref_logp(mu, ls, eps, a, u), 1e-12, 1e-12);
        for (int j = 0; j < 2 * AD; j++) {
            double *x = j < AD ? &mu[j] : &ls[j - AD], x0 = *x, fp, fm, fd;
            *x = x0 + h;
            fp = c * mmi_sac_squash(mu, ls, eps, AD, a) + ga[0] * a[0] + ga[1] * a[1];
            *x = x0 - h;
            fm = c * mmi_sac_squash(mu, ls, eps, AD, a) + ga[0] * a[0] + ga[1] * a[1];
            *x = x0;
            fd = (fp - fm) / (2 * h);
            CHECK_NEAR(j < AD ? gmu[j] : gls[j - AD], fd, 1e-6, 1e-8);
        }
    }
    { /* 1-D: pi(a) = exp(log pi) integrates to ~1 over a in (-1, 1) (substituting a = tanh u) */
        double m = 0.4, l = -0.3, z, sum = 0, du = 1e-3, aa;
        for (double uu = -12; uu <= 12; uu += du) {
            z = (uu - m) / exp(l);
            sum += exp(mmi_sac_squash(&m, &l, &z, 1, &aa)) * (1 - aa * aa) * du;
        }
        CHECK_NEAR(sum, 1.0, 1e-4, 0); /* the 1e-6 in the correction costs < 1e-5 */
    }
}

static void test_sac_options(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    char err[200] = "";
    float obs[8] = {0}, act[8];
    double v;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    CHECK(o.hidden[0] == 256 && o.hidden[1] == 256 && o.lr_actor == 3e-4 && o.lr_critic == 3e-4);
    CHECK(o.lr_alpha == 3e-4 && o.ent_coef == 1.0 && o.ent_auto == 1 && isnan(o.target_entropy));
    CHECK(o.n_critics == 2 && o.batch_size == 256 && o.learning_starts == 100 && o.tau == 0.005);
    CHECK(o.target_update_interval == 1 && o.buffer_size == 1000000);
    o.obs_dim = 2, o.act_dim = 2, o.hidden[0] = o.hidden[1] = 8, o.buffer_size = 16,
    o.batch_size = 4;
    o.err_buf = err, o.err_buf_size = sizeof err;
    {
        mm_policy_opts b = o;
        b.n_actions = 1; /* discrete SAC exists (test_sacd_*); one action does not */
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        CHECK(p == NULL && strstr(err, "n_actions"));
        b = o, b.ent_coef = 0;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.ent_coef = NAN;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.ent_auto = 2;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.lr_alpha = -1;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.target_entropy = -INFINITY;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.target_update_interval = 0;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.n_critics = 3;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.norm_reward = 3; /* off-policy algorithms did not check it before 2026-12-04 */
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        CHECK(strstr(err, "norm_reward") != NULL);
        b = o, b.clip_reward = 0;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        b = o, b.algo = MM_ALGO_SAC + 1;
        CHECK_STATUS(mm_policy_create(&p, &b), MM_E_INVALID_ARG);
        CHECK(p == NULL);
    }
    CHECK_STATUS(mm_policy_opts_init(&o, MM_ALGO_SAC + 1), MM_E_INVALID_ARG);
    /* a fixed temperature: alpha is ent_coef and log alpha does not move */
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    o.obs_dim = 2, o.act_dim = 2, o.n_agents = 4, o.hidden[0] = o.hidden[1] = 8;
    o.buffer_size = 16, o.batch_size = 4, o.learning_starts = 0, o.ent_auto = 0, o.ent_coef = 0.2;
    o.target_entropy = 1.5, o.gradient_steps = 3, o.train_freq = 2;
    CHECK_OK(mm_policy_create(&p, &o));
    {
        float next[8] = {0}, rew[4] = {1, 2, 3, 4};
        uint8_t z[4] = {0};
        int32_t did = 0;
        mmt_fill_uniform(obs, 8, 1, -1, 1);
        CHECK_OK(mm_policy_act(p, obs, 4, act, 1));
        for (int i = 0; i < 8; i++) CHECK(act[i] > -1.0f && act[i] < 1.0f);
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, z, z, 4));
        CHECK_OK(mm_policy_update(p, &did));
        CHECK(did == 0); /* train_freq 2: the first observe call does not train */
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, z, z, 4));
        CHECK_OK(mm_policy_update(p, &did));
        CHECK(did == 1);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &v));
        CHECK(v == 3); /* gradient_steps */
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENT_COEF, &v));
        CHECK(v == 0.2);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENTROPY, &v));
        CHECK(isfinite(v));
    }
    obs[1] = NAN;
    CHECK_STATUS(mm_policy_act(p, obs, 4, act, 1), MM_E_NUMERIC);
    CHECK(strlen(mm_policy_errmsg(p)) > 0);
    obs[1] = 0;
    CHECK_STATUS(mm_policy_act(p, obs, 5, act, 0), MM_E_RANGE);
    CHECK_OK(mm_policy_act(p, obs, 4, act, 0)); /* still usable */
    mm_policy_free(p);
}

/* Fake 4-agent environment through act/observe/update. */
static void drive(mm_policy *p, int steps, uint64_t seed)
{
    float obs[12], next[12], act[8], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    mmt_fill_uniform(obs, 12, seed, -1, 1);
    for (int s = 0; s < steps; s++) {
        int32_t did;
        CHECK_OK(mm_policy_act(p, obs, 4, act, 1));
        for (int i = 0; i < 8; i++) CHECK(act[i] >= g_lo[i % 2] && act[i] <= g_hi[i % 2]);
        mmt_fill_uniform(next, 12, seed + 100 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 4; i++)
            rew[i] = next[3 * i] - 0.1f * act[2 * i], te[i] = s % 7 == 3 && i == 1,
            tr[i] = s % 5 == 4 && i == 2;
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_update(p, &did));
        memcpy(obs, next, sizeof obs);
    }
}

static void test_sac_no_alloc(void)
{
    mmt_counter c;
    mm_allocator a;
    mm_policy *p;
    int64_t before;
    double upd = 0;
    mmt_counting_allocator(&a, &c, -1);
    p = make_sac(&a, 1, 1.0);
    before = c.n_alloc;
    drive(p, 30, 11);
    CHECK_EQ_I64(c.n_alloc, before);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd));
    CHECK(upd > 0);
    mm_policy_free(p);
    CHECK_EQ_I64(c.live_bytes, 0);
    CHECK_EQ_I64(c.bad_free, 0);
}

static void test_sac_save_load(void)
{
    char path[512];
    mm_policy *p = make_sac(NULL, 1, 1.0), *q;
    float obs[12], a1[8], a2[8];
    double al1, al2;
    mm_policy_opts o;
    CHECK(mmt_tmp_path(path, sizeof path, "sac_rt.safetensors") == 0);
    drive(p, 40, 3);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENT_COEF, &al1));
    CHECK(al1 != 1.0); /* the temperature moved, so the file must carry it */
    CHECK_OK(mm_policy_save(p, path));
    q = make_sac(NULL, 1, 1.0);
    CHECK_OK(mm_policy_load(q, path));
    CHECK_OK(mm_policy_get_f64(q, MM_POLICY_STAT_ENT_COEF, &al2));
    CHECK(al1 == al2);
    mmt_fill_uniform(obs, 12, 77, -2, 2);
    CHECK_OK(mm_policy_act(p, obs, 4, a1, 0));
    CHECK_OK(mm_policy_act(q, obs, 4, a2, 0));
    CHECK(memcmp(a1, a2, sizeof a1) == 0);
    mm_policy_free(q);
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_TD3)); /* another architecture */
    o.obs_dim = OD, o.act_dim = AD, o.hidden[0] = o.hidden[1] = HID, o.buffer_size = 8,
    o.batch_size = 4;
    CHECK_OK(mm_policy_create(&q, &o));
    CHECK_STATUS(mm_policy_load(q, path), MM_E_FORMAT);
    mm_policy_free(q);
    mm_policy_free(p);
    remove(path);
}

/* ---- discrete SAC (algo_sac_discrete.c) ----------------------------------------------------- */
#define NA 3

static mm_policy *make_sacd_rn(const mm_allocator *a, int32_t n_critics, uint64_t seed,
                               int norm_rew)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    o.obs_dim = OD, o.n_actions = NA, o.alloc = a, o.seed = seed, o.n_agents = 4;
    o.norm_reward = norm_rew;
    o.hidden[0] = HID, o.hidden[1] = HID, o.n_critics = n_critics;
    o.buffer_size = 64, o.batch_size = NB, o.learning_starts = 10;
    o.lr_actor = 1e-3, o.lr_critic = 2e-3, o.lr_alpha = 5e-3, o.ent_coef = 0.7;
    o.gamma = 0.9, o.tau = 0.05;
    CHECK_OK(mm_policy_create(&p, &o));
    return p;
}

static mm_policy *make_sacd(const mm_allocator *a, int32_t n_critics, uint64_t seed)
{
    return make_sacd_rn(a, n_critics, seed, 0);
}

/* softmax written from its definition (no max shift: the test's logits are small) */
static void ref_softmax(const double *z, double *pr, double *lp)
{
    double s = 0;
    for (int a = 0; a < NA; a++) s += exp(z[a]);
    for (int a = 0; a < NA; a++) pr[a] = exp(z[a]) / s, lp[a] = log(pr[a]);
}

/* One row of the actor loss sum_a pi_a (alpha log pi_a - m_a) as a function of the logits. */
static double ref_actor_row(const double *z, const double *m, double alpha)
{
    double pr[NA], lp[NA], l = 0;
    ref_softmax(z, pr, lp);
    for (int a = 0; a < NA; a++) l += pr[a] * (alpha * lp[a] - m[a]);
    return l;
}

/* Its gradient by the full chain rule: dpi_a/dz_j = pi_a (delta_aj - pi_j) on both factors. */
static void ref_actor_row_grad(const double *z, const double *m, double alpha, double *g)
{
    double pr[NA], lp[NA];
    ref_softmax(z, pr, lp);
    for (int j = 0; j < NA; j++) {
        g[j] = 0;
        for (int a = 0; a < NA; a++) {
            double dp = pr[a] * ((a == j) - pr[j]), dlp = (a == j) - pr[j];
            g[j] += dp * (alpha * lp[a] - m[a]) + pr[a] * alpha * dlp;
        }
    }
}

typedef struct sacd_ref {
    ref_mlp actor, q[2], qt[2];
    int nc;
    double log_alpha, g_alpha, critic_loss, actor_loss, entropy, q_mean;
} sacd_ref;

/* One discrete SAC step in float64 (algo_sac_discrete.c's module comment states the maths). */
static void sacd_reference_step(sacd_ref *R, const double *s, const int *a, const double *r,
                                const double *d, const double *s2, double gamma, double tau,
                                double lr_a, double lr_q, double lr_al, double tgt)
{
    double z[NB * NA], q[2][NB * NA], y[NB], pr[NA], lp[NA], dq[NB * NA], dz[NB * NA];
    double alpha = exp(R->log_alpha);
    mlp_forward(&R->actor, s2, NB, z);
    for (int c = 0; c < R->nc; c++) mlp_forward(&R->qt[c], s2, NB, q[c]);
    for (int k = 0; k < NB; k++) {
        double v = 0;
        ref_softmax(z + k * NA, pr, lp);
        for (int b = 0; b < NA; b++) {
            double m = R->nc == 2 ? fmin(q[0][k * NA + b], q[1][k * NA + b]) : q[0][k * NA + b];
            v += pr[b] * (m - alpha * lp[b]);
        }
        y[k] = r[k] + gamma * (1 - d[k]) * v;
    }
    R->critic_loss = 0, R->q_mean = 0;
    for (int c = 0; c < R->nc; c++) {
        mlp_forward(&R->q[c], s, NB, q[c]);
        memset(dq, 0, sizeof dq);
        for (int k = 0; k < NB; k++) {
            double e = q[c][k * NA + a[k]] - y[k];
            R->critic_loss += 0.5 * e * e / NB;
            if (c == 0) R->q_mean += q[c][k * NA + a[k]] / NB;
            dq[k * NA + a[k]] = e / NB;
        }
        mlp_backward(&R->q[c], dq, NB, NULL);
        mlp_adam(&R->q[c], lr_q);
    }
    for (int c = 0; c < R->nc; c++) mlp_forward(&R->q[c], s, NB, q[c]);
    mlp_forward(&R->actor, s, NB, z);
    R->actor_loss = 0, R->entropy = 0;
    for (int k = 0; k < NB; k++) {
        double m[NA];
        for (int b = 0; b < NA; b++)
            m[b] = R->nc == 2 ? fmin(q[0][k * NA + b], q[1][k * NA + b]) : q[0][k * NA + b];
        R->actor_loss += ref_actor_row(z + k * NA, m, alpha) / NB;
        ref_actor_row_grad(z + k * NA, m, alpha, dz + k * NA);
        for (int b = 0; b < NA; b++) dz[k * NA + b] /= NB;
        ref_softmax(z + k * NA, pr, lp);
        for (int b = 0; b < NA; b++) R->entropy -= pr[b] * lp[b] / NB;
        if (k == 0) /* the chain rule above against central differences of the row loss */
            for (int j = 0; j < NA; j++) {
                double zz[NA], h = 1e-6, fp, fm;
                memcpy(zz, z, sizeof zz);
                zz[j] += h, fp = ref_actor_row(zz, m, alpha);
                zz[j] -= 2 * h, fm = ref_actor_row(zz, m, alpha);
                CHECK_NEAR(dz[j] * NB, (fp - fm) / (2 * h), 1e-6, 1e-8);
            }
    }
    mlp_backward(&R->actor, dz, NB, NULL);
    mlp_adam(&R->actor, lr_a);
    R->g_alpha = -((-R->entropy) + tgt); /* d/dlog alpha of -log alpha (E log pi + target) */
    R->log_alpha = adam1(R->log_alpha, R->g_alpha, lr_al);
    for (int c = 0; c < R->nc; c++)
        for (int l = 0; l < 3; l++) {
            for (int i = 0; i < MAXW * MAXW; i++)
                R->qt[c].w[l][i] = (1 - tau) * R->qt[c].w[l][i] + tau * R->q[c].w[l][i];
            for (int i = 0; i < MAXW; i++)
                R->qt[c].b[l][i] = (1 - tau) * R->qt[c].b[l][i] + tau * R->q[c].b[l][i];
        }
}

static void sacd_reference(int32_t nc, int norm_rew)
{
    mm_policy *p = make_sacd_rn(NULL, nc, 9, norm_rew);
    sacd_ref *R = calloc(1, sizeof *R);
    double s[NB * OD], r[NB], d[NB], s2[NB * OD], v, tgt = 0.89 * log((double)NA);
    int a[NB];
    float *w, so[OD], so2[OD], *ent;
    int64_t n;
    CHECK(R != NULL);
    CHECK_NEAR(mmi_sacd_target_entropy(p), tgt, 1e-15, 0); /* the NaN default */
    for (int c = 0; c < nc; c++) {                         /* targets unlike the critics */
        CHECK_OK(mm_model_params(p->critic_t[c], &w, &n));
        for (int64_t i = 0; i < n; i++) w[i] += 0.05f * (float)sin(3.0 * (double)i + c);
    }
    for (int k = 0; k < 10; k++) {
        float act = (float)((k * 5) % NA);
        mmt_fill_uniform(so, OD, 100 + (uint64_t)k, -1, 1);
        mmt_fill_uniform(so2, OD, 200 + (uint64_t)k, -1, 1);
        mmi_replay_add(&p->rb, so, &act, 0.3f * (float)k - 1.0f, so2, k % 4 == 1 ? 1.0f : 0.0f);
    }
    for (int k = 0; k < NB; k++) p->w_idx[k] = (k * 7) % 10;
    p->w_idx[NB - 1] = p->w_idx[0];
    for (int k = 0; k < NB; k++) {
        int64_t i = p->w_idx[k];
        for (int j = 0; j < OD; j++)
            s[k * OD + j] = p->rb.obs[i * OD + j], s2[k * OD + j] = p->rb.next_obs[i * OD + j];
        a[k] = (int)p->rb.act[i], d[k] = p->rb.term[i];
        r[k] = norm_rew ? ref_scaled_reward(p->rb.rew[i]) : p->rb.rew[i];
    }
    if (norm_rew) set_reward_stats(p);
    R->nc = nc;
    mlp_load(&R->actor, p->actor, OD, NA);
    for (int c = 0; c < nc; c++) {
        mlp_load(&R->q[c], p->critic[c], OD, NA);
        mlp_load(&R->qt[c], p->critic_t[c], OD, NA);
    }
    CHECK_OK(mm_model_params(p->ent, &ent, NULL));
    R->log_alpha = ent[1];
    sacd_reference_step(R, s, a, r, d, s2, 0.9, 0.05, 1e-3, 2e-3, 5e-3, tgt);
    CHECK_OK(mmi_sac_step(p, NB));
    CHECK(mlp_diff(&R->actor, p->actor, 1) < 1e-4);
    CHECK(mlp_diff(&R->actor, p->actor, 0) < 1e-5);
    for (int c = 0; c < nc; c++) {
        CHECK(mlp_diff(&R->q[c], p->critic[c], 1) < 1e-4);
        CHECK(mlp_diff(&R->q[c], p->critic[c], 0) < 1e-5);
        CHECK(mlp_diff(&R->qt[c], p->critic_t[c], 0) < 1e-5);
    }
    CHECK_OK(mm_model_grads(p->ent, &w, NULL));
    CHECK_NEAR(w[1], R->g_alpha, 1e-4, 1e-6);
    CHECK_NEAR(ent[1], R->log_alpha, 1e-6, 1e-7);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_CRITIC_LOSS, &v));
    CHECK_NEAR(v, R->critic_loss, 1e-4, 1e-6);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ACTOR_LOSS, &v));
    CHECK_NEAR(v, R->actor_loss, 1e-4, 1e-6);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENTROPY, &v));
    CHECK_NEAR(v, R->entropy, 1e-5, 1e-7);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_Q_MEAN, &v));
    CHECK_NEAR(v, R->q_mean, 1e-4, 1e-6);
    free(R);
    mm_policy_free(p);
}

static void test_sacd_reference_update(void)
{
    sacd_reference(2, 0);
    sacd_reference(1, 0);
    sacd_reference(2, 1);
}

/* Fake 4-agent environment with integer actions; checks every action is an index. */
static void drive_discrete(mm_policy *p, int steps, uint64_t seed, int32_t *seen)
{
    float obs[12], next[12], act[4], rew[4];
    uint8_t te[4] = {0}, tr[4] = {0};
    mmt_fill_uniform(obs, 12, seed, -1, 1);
    for (int s = 0; s < steps; s++) {
        CHECK_OK(mm_policy_act(p, obs, 4, act, 1));
        for (int i = 0; i < 4; i++) {
            CHECK(act[i] >= 0 && act[i] < NA && act[i] == floorf(act[i]));
            if (seen && act[i] >= 0 && act[i] < NA) seen[(int)act[i]]++;
        }
        mmt_fill_uniform(next, 12, seed + 100 + (uint64_t)s, -1, 1);
        for (int i = 0; i < 4; i++)
            rew[i] = next[3 * i] * (act[i] == 1 ? 1.0f : -0.5f), te[i] = s % 7 == 3 && i == 1,
            tr[i] = s % 5 == 4 && i == 2;
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, 4));
        CHECK_OK(mm_policy_update(p, NULL));
        memcpy(obs, next, sizeof obs);
    }
}

/* Same seed, same data: bit-identical networks, temperature and actions; no allocation on the
 * hot path; warm-up and exploring acts are indices of every action; deterministic act is the
 * argmax of the actor's logits. */
static void test_sacd_reproducible(void)
{
    mmt_counter c;
    mm_allocator al;
    mm_policy *p, *q;
    int32_t seen[NA] = {0};
    int64_t before, n1, n2;
    float *w1, *w2, obs[12], a1[4], a2[4], z[4 * NA];
    double upd = 0;
    mmt_counting_allocator(&al, &c, -1);
    p = make_sacd(&al, 2, 21), q = make_sacd(NULL, 2, 21);
    before = c.n_alloc;
    drive_discrete(p, 60, 5, seen);
    CHECK_EQ_I64(c.n_alloc, before);
    drive_discrete(q, 60, 5, NULL);
    for (int a = 0; a < NA; a++) CHECK(seen[a] > 0);
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd));
    CHECK(upd > 40);
    {
        mm_model *mp[4] = {p->actor, p->critic[1], p->critic_t[0], p->ent};
        mm_model *mq[4] = {q->actor, q->critic[1], q->critic_t[0], q->ent};
        for (int k = 0; k < 4; k++) {
            CHECK_OK(mm_model_params(mp[k], &w1, &n1));
            CHECK_OK(mm_model_params(mq[k], &w2, &n2));
            CHECK(n1 == n2 && memcmp(w1, w2, sizeof(float) * (size_t)n1) == 0);
        }
    }
    mmt_fill_uniform(obs, 12, 8, -2, 2);
    CHECK_OK(mm_policy_act(p, obs, 4, a1, 1));
    CHECK_OK(mm_policy_act(q, obs, 4, a2, 1));
    CHECK(memcmp(a1, a2, sizeof a1) == 0);
    CHECK_OK(mm_policy_act(p, obs, 4, a1, 0));
    CHECK_OK(
        mm_model_forward(p->actor, mmi_pol_view(p, 0, obs, 4, OD), mmi_pol_view(p, 1, z, 4, NA)));
    for (int i = 0; i < 4; i++) {
        int best = 0;
        for (int a = 1; a < NA; a++) best = z[i * NA + a] > z[i * NA + best] ? a : best;
        CHECK(a1[i] == (float)best);
    }
    mm_policy_free(q);
    mm_policy_free(p);
    CHECK_EQ_I64(c.live_bytes, 0);
}

/* Wrong action indices are refused with MM_E_RANGE and nothing stored; bad options refused. */
static void test_sacd_bad_input(void)
{
    mm_policy *p = make_sacd(NULL, 2, 3);
    float obs[12] = {0}, next[12] = {0}, rew[4] = {0}, act[4] = {0, 1, 2, 0};
    float bad[3] = {3.0f, -1.0f, 1.5f};
    uint8_t z[4] = {0};
    mm_policy_opts o;
    char err[200] = "";
    for (int b = 0; b < 3; b++) {
        act[2] = bad[b];
        CHECK_STATUS(mm_policy_observe(p, obs, act, rew, next, z, z, 4), MM_E_RANGE);
        CHECK(strstr(mm_policy_errmsg(p), "not an index") != NULL);
        CHECK_EQ_I64(p->rb.size, 0);
    }
    act[2] = 2.0f;
    CHECK_OK(mm_policy_observe(p, obs, act, rew, next, z, z, 4)); /* still usable */
    CHECK_EQ_I64(p->rb.size, 4);
    CHECK(p->rb.act[2] == 2.0f); /* the index itself, not a [-1, 1] rescale */
    mm_policy_free(p);
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    o.obs_dim = 2, o.n_actions = 4, o.hidden[0] = o.hidden[1] = 8, o.buffer_size = 16;
    o.batch_size = 4, o.err_buf = err, o.err_buf_size = sizeof err;
    o.target_entropy = INFINITY;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    o.target_entropy = 0.5; /* a set target is used as given */
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK(mmi_sacd_target_entropy(p) == 0.5);
    mm_policy_free(p);
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_TD3));
    o.obs_dim = 2, o.n_actions = 4, o.err_buf = err, o.err_buf_size = sizeof err;
    CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
    CHECK(strstr(err, "continuous") != NULL);
}

/* Checkpoint -> load into a fresh handle -> continue equals the uninterrupted run; weights-only
 * file and create-from-file act the same; export is the logits model with argmax output. */
static void test_sacd_checkpoint(void)
{
    char path[512];
    mm_policy *p = make_sacd(NULL, 2, 4), *q = make_sacd(NULL, 2, 4), *r = NULL;
    mm_policy_export_info info;
    mm_model *m = NULL;
    void *buf;
    size_t size = 0;
    float *w1, *w2, obs[12], a1[4], a2[4];
    int64_t n1, n2;
    double al1, al2;
    drive_discrete(p, 30, 6, NULL);
    CHECK_OK(mm_policy_save_mem(p, NULL, 0, &size, MM_POLICY_SAVE_CHECKPOINT));
    CHECK((buf = malloc(size)) != NULL);
    CHECK_OK(mm_policy_save_mem(p, buf, size, &size, MM_POLICY_SAVE_CHECKPOINT));
    CHECK_OK(mm_policy_load_mem(q, buf, size));
    free(buf);
    drive_discrete(p, 20, 7, NULL);
    drive_discrete(q, 20, 7, NULL);
    {
        mm_model *mp[3] = {p->actor, p->critic[0], p->ent},
                 *mq[3] = {q->actor, q->critic[0], q->ent};
        for (int k = 0; k < 3; k++) {
            CHECK_OK(mm_model_params(mp[k], &w1, &n1));
            CHECK_OK(mm_model_params(mq[k], &w2, &n2));
            CHECK(n1 == n2 && memcmp(w1, w2, sizeof(float) * (size_t)n1) == 0);
        }
    }
    CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_ENT_COEF, &al1));
    CHECK(al1 != 0.7); /* the temperature moved, so the files must carry it */
    CHECK(mmt_tmp_path(path, sizeof path, "sacd_rt.safetensors") == 0);
    CHECK_OK(mm_policy_save(p, path));
    CHECK_OK(mm_policy_load_new(&r, path, NULL));
    CHECK(r != NULL && r->discrete && r->head_dim == NA);
    CHECK_OK(mm_policy_get_f64(r, MM_POLICY_STAT_ENT_COEF, &al2));
    CHECK(al1 == al2);
    mmt_fill_uniform(obs, 12, 9, -2, 2);
    CHECK_OK(mm_policy_act(p, obs, 1, a1, 0));
    CHECK_OK(mm_policy_act(r, obs, 1, a2, 0));
    CHECK(a1[0] == a2[0]);
    CHECK_OK(mm_policy_export(p, &m, NULL));
    CHECK_OK(mm_model_params(m, &w1, &n1));
    CHECK_OK(mm_model_params(p->actor, &w2, &n2));
    CHECK(n1 == n2 && memcmp(w1, w2, sizeof(float) * (size_t)n1) == 0);
    CHECK_OK(mm_policy_export_io(p, &info, NULL, NULL, NULL, NULL));
    CHECK(info.output == MM_EXPORT_ARGMAX && info.model_out == NA && info.act_dim == 1);
    mm_model_free(m);
    mm_policy_free(r);
    mm_policy_free(q);
    mm_policy_free(p);
    remove(path);
}

/* CartPole-v1 (examples/envs): 8000 steps, 32-32 networks, batch 32, lr 1e-3, 500 warm-up
 * steps; the deterministic return over 5 episodes must reach 250 for each of 3 seeds (a random
 * policy scores ~22; seeds 0-11 measured 315..472, docs/RL.md). */
static double sacd_cartpole(uint64_t seed, int steps)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    env e;
    float obs[4], next[4], act, rew;
    double total = 0;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_SAC));
    o.obs_dim = 4, o.n_actions = 2, o.seed = seed, o.hidden[0] = o.hidden[1] = 32;
    o.lr_actor = o.lr_critic = o.lr_alpha = 1e-3;
    o.buffer_size = 10000, o.batch_size = 32, o.learning_starts = 500;
    CHECK_OK(mm_policy_create(&p, &o));
    if (!p) return 0;
    env_init(&e, ENV_CARTPOLE, seed * 1000);
    env_reset(&e, obs);
    for (int s = 0; s < steps; s++) {
        int32_t te, tr;
        uint8_t t8, r8;
        CHECK_OK(mm_policy_act(p, obs, 1, &act, 1));
        env_step(&e, &act, next, &rew, &te, &tr);
        t8 = (uint8_t)te, r8 = (uint8_t)tr;
        CHECK_OK(mm_policy_observe(p, obs, &act, &rew, next, &t8, &r8, 1));
        CHECK_OK(mm_policy_update(p, NULL));
        if (te || tr) env_reset(&e, next);
        memcpy(obs, next, sizeof obs);
    }
    env_init(&e, ENV_CARTPOLE, 777 + seed);
    for (int k = 0; k < 5; k++) {
        int32_t te = 0, tr = 0;
        env_reset(&e, obs);
        while (!te && !tr) {
            CHECK_OK(mm_policy_act(p, obs, 1, &act, 0));
            env_step(&e, &act, obs, &rew, &te, &tr);
            total += rew;
        }
    }
    mm_policy_free(p);
    return total / 5;
}

/* Three seeds of 8000 steps must each reach 250. Under valgrind (MM_TEST_QUICK), which checks
 * memory, not learning, and runs this loop about 100x slower, one seed runs 800 steps (300
 * updates: the whole act/observe/update loop) and only a finite evaluation is required. */
static void test_sacd_cartpole(void)
{
    double ret[3] = {0, 0, 0};
    int quick = mmt_quick(), seeds = quick ? 1 : 3;
    for (int s = 0; s < seeds; s++) {
        ret[s] = sacd_cartpole((uint64_t)s, quick ? 800 : 8000);
        CHECK(quick ? isfinite(ret[s]) && ret[s] >= 1.0 : ret[s] >= 250.0);
    }
    if (!quick)
        printf("note: discrete SAC CartPole-v1, 8000 steps: returns %.0f %.0f %.0f (bar 250)\n",
               ret[0], ret[1], ret[2]);
}

void suite_sac(void)
{
    mmt_run("sac_reference_update", test_reference_update);
    mmt_run("sac_squash_gradient", test_squash_gradient);
    mmt_run("sac_options", test_sac_options);
    mmt_run("sac_no_alloc_hot_path", test_sac_no_alloc);
    mmt_run("sac_save_load", test_sac_save_load);
    mmt_run("sacd_reference_update", test_sacd_reference_update);
    mmt_run("sacd_reproducible_no_alloc", test_sacd_reproducible);
    mmt_run("sacd_bad_input", test_sacd_bad_input);
    mmt_run("sacd_checkpoint_export", test_sacd_checkpoint);
    mmt_run("sacd_cartpole_learns", test_sacd_cartpole);
}
