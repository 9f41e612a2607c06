/* SPDX-License-Identifier: MIT */
/* algo_sac.c — soft actor-critic (Haarnoja et al. 2018, "SAC: Algorithms and Applications",
 * arXiv 1812.05905; Stable-Baselines3 sac.py ordering and constants). One gradient step on a
 * replay batch (s, a, r, s', d), with alpha = exp(log alpha) read BEFORE this step's alpha
 * update and used throughout it:
 *   policy   u = mu(s) + exp(clamp(ls(s), -20, 2)) eps,  a = tanh(u),  eps ~ N(0, I)
 *            log pi(a|s) = log N(u; mu, sigma) - sum_j log(1 - a_j^2 + 1e-6)
 *   target   y = r + gamma (1 - d) (min_k Q'_k(s', a') - alpha log pi(a'|s')),  a' ~ pi(s')
 *   critics  L_Q = 1/2 sum_k mean (Q_k(s, a) - y)^2  (one Adam per critic = SB3's one over both)
 *   actor    L_pi = mean (alpha log pi(a~|s) - min_k Q_k(s, a~)),  a~ ~ pi(s) reparameterised,
 *            through the critics just updated (frozen: the gradient reaches only the actor)
 *   alpha    L_a = -mean log alpha (log pi(a~|s) + target_entropy)  (log pi detached)
 *   targets  Polyak(tau) on the critics every target_update_interval-th step.
 * The actor's single dense head emits [mean | log std]: the same function and initialisation
 * law as SB3's two linear heads on a shared latent. The noise of a step is drawn first into
 * p->sac_eps (N x d for s, then N x d for s') so a test can fix it. */
#include "mmi_policy.h"

#include <math.h>
#include <string.h>

/* Letters: N batch_size, od obs_dim, ad = d act_dim, w = od + ad (critic input), k row. */

#define HALF_LOG_2PI 0.91893853320467274178
#define LOG_STD_MIN  (-20.0)
#define LOG_STD_MAX  2.0
#define SQUASH_EPS   1e-6 /* SB3 SquashedDiagGaussianDistribution.epsilon */

static double clamp_ls(double l)
{
    return l < LOG_STD_MIN ? LOG_STD_MIN : (l > LOG_STD_MAX ? LOG_STD_MAX : l);
}

double mmi_sac_squash(const double *mu, const double *ls, const double *eps, int64_t d, double *a)
{
    double lp = 0;
    for (int64_t j = 0; j < d; j++) {
        double l = clamp_ls(ls[j]), t = tanh(mu[j] + exp(l) * eps[j]);
        a[j] = t;
        /* (u - mu) / sigma is eps by construction: the Gaussian term needs no division */
        lp += -0.5 * eps[j] * eps[j] - l - HALF_LOG_2PI - log(1.0 - t * t + SQUASH_EPS);
    }
    return lp;
}

/* d/du of -log(1 - tanh(u)^2 + e) = 2 t (1 - t^2) / (1 - t^2 + e); d/dmu log N(u) = 0 and
 * d/dl log N(u) = -1 once u's own dependence on mu and l is included. */
void mmi_sac_squash_grad(const double *mu, const double *ls, const double *eps, int64_t d, double c,
                         const double *ga, double *gmu, double *gls)
{
    for (int64_t j = 0; j < d; j++) {
        double l = clamp_ls(ls[j]), s = exp(l), t = tanh(mu[j] + s * eps[j]), q = 1.0 - t * t;
        double gu = c * 2.0 * t * q / (q + SQUASH_EPS) + ga[j] * q;
        gmu[j] = gu;
        /* torch.clamp passes the gradient where min <= ls <= max */
        gls[j] = ls[j] >= LOG_STD_MIN && ls[j] <= LOG_STD_MAX ? gu * s * eps[j] - c : 0.0;
    }
}

int mmi_sac_fwd(mm_policy *p, mm_model *m, float *x, int64_t rows, int64_t in, float *y,
                int64_t out)
{
    int rc = mm_model_forward(m, mmi_pol_view(p, 0, x, rows, in), mmi_pol_view(p, 1, y, rows, out));
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, m, rc, "mm_policy_update");
}

/* One actor row: head (mean | log std) and eps as doubles into r[0..3d). */
static void load_row(const float *head, const float *eps, int64_t d, double *r)
{
    for (int64_t j = 0; j < d; j++) r[j] = head[j], r[d + j] = head[d + j], r[2 * d + j] = eps[j];
}

int mmi_sac_act(mm_policy *p, const float *x, int64_t n, float *y, int32_t explore)
{
    int64_t d = p->act_dim;
    float *head = mmi_act_rows_of(p).sac_head;
    double *r = p->sac_row, *a = r + 3 * d;
    int rc;
    MMI_ASSERT(mmi_pol_disjoint(x, n * p->obs_dim, head, n * 2 * d) &&
               mmi_pol_disjoint(y, n * d, head, n * 2 * d));
    rc = mm_model_forward(p->actor, mmi_pol_view(p, 0, (float *)x, n, p->obs_dim),
                          mmi_pol_view(p, 1, head, n, 2 * d));
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_act");
    for (int64_t i = 0; i < n; i++) {
        const float *h = head + i * 2 * d;
        if (!explore) { /* the deterministic action: tanh(mean) */
            for (int64_t j = 0; j < d; j++) y[i * d + j] = (float)tanh((double)h[j]);
            continue;
        }
        for (int64_t j = 0; j < d; j++) r[j] = h[j], r[d + j] = h[d + j];
        for (int64_t j = 0; j < d; j++) r[2 * d + j] = mmi_rng_normal(mmi_pol_act_rng(p));
        (void)mmi_sac_squash(r, r + d, r + 2 * d, d, a);
        for (int64_t j = 0; j < d; j++) y[i * d + j] = (float)a[j];
    }
    return MM_OK;
}

/* The batch of rows w_idx: s, s', [s, a], and r, d as rd[2k], [2k+1] (mmi_sac_rows). */
static void gather(mm_policy *p, int64_t N)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    const mmi_obs_rms *rms = p->norm ? &p->rms : NULL;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    for (int64_t k = 0; k < N; k++) {
        int64_t i = p->w_idx[k];
        mmi_rms_apply(rms, p->rb.obs + i * od, 1, od, rw.obs + k * od);
        mmi_rms_apply(rms, p->rb.next_obs + i * od, 1, od, rw.next_obs + k * od);
        memcpy(rw.obs_act + k * w, rw.obs + k * od, sizeof(float) * (size_t)od);
        memcpy(rw.obs_act + k * w + od, p->rb.act + i * ad, sizeof(float) * (size_t)ad);
        /* the replay keeps raw rewards: norm_reward scales the batch (as algo_ddpg.c) */
        rw.rd[2 * k] = p->rn.on ? mmi_reward_norm_apply(&p->rn, p->rb.rew[i]) : p->rb.rew[i];
        rw.rd[2 * k + 1] = p->rb.term[i];
    }
}

/* Piece k of the targets (mmi_pol_each; ctx the batch size): Q'_k(s', a') into q + k N. */
static int target_q(mm_policy *p, void *ctx, int32_t k, mm_model **failed)
{
    int64_t N = *(const int64_t *)ctx;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    int rc = mmi_pol_fwd_at(p, 3 * k, p->critic_t[k], rw.target_in, N, p->obs_dim + p->act_dim,
                            rw.q + k * N, 1);
    if (rc != MM_OK) *failed = p->critic_t[k];
    return rc;
}

/* Soft Bellman targets y [N]: a' ~ pi(s'), log pi(a'|s') into logp, [s', a'] into target_in. */
static int targets(mm_policy *p, int64_t N, double alpha)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    float *head = rw.head, *x2 = rw.target_in, *q = rw.q;
    const float *eps = p->sac_eps + N * ad;
    double *rd = rw.rd, *y = rw.y, *lp = rw.logp, *r = p->sac_row, *a = r + 3 * ad;
    int rc = mmi_sac_fwd(p, p->actor, rw.next_obs, N, od, head, 2 * ad);
    if (rc != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) {
        load_row(head + k * 2 * ad, eps + k * ad, ad, r);
        lp[k] = mmi_sac_squash(r, r + ad, r + 2 * ad, ad, a); /* log pi(a'|s') */
        memcpy(x2 + k * w, rw.next_obs + k * od, sizeof(float) * (size_t)od);
        for (int64_t j = 0; j < ad; j++) x2[k * w + od + j] = (float)a[j];
    }
    rc = mmi_pol_each(p, p->critic_t, p->o.n_critics, target_q, &N, p->o.n_critics);
    if (rc != MM_OK) return rc;
    for (int32_t c = 0; c < p->o.n_critics; c++)
        for (int64_t k = 0; k < N; k++)
            if (c == 0 || q[c * N + k] < y[k]) y[k] = q[c * N + k]; /* min over the twins */
    for (int64_t k = 0; k < N; k++)
        y[k] = rd[2 * k] + p->o.gamma * (1.0 - rd[2 * k + 1]) * (y[k] - alpha * lp[k]);
    return MM_OK;
}

int mmi_sac_adam(mm_policy *p, mm_model *m, double lr)
{
    int rc = mm_model_set_f64(m, MM_MODEL_LR, lr);
    if (rc == MM_OK && p->comm && (rc = mmi_pol_comm_average(p, &m, 1)) != MM_OK) return rc;
    if (rc == MM_OK) rc = mm_model_step(m);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, m, rc, "mm_policy_update");
}

/* The critic steps' shared state (mmi_pol_each). */
typedef struct critic_ctx {
    int64_t N;
    double loss[2], q_mean;
    int used[2]; /* critic_input_grad: the critic is the minimum on some row */
} critic_ctx;

/* Piece c: L_Q = 1/2 sum_k MSE(Q_k(s, a), y): dL/dQ_k = (Q_k - y) / N, then critic c's Adam. */
static int critic_step(mm_policy *p, void *ctx, int32_t c, mm_model **failed)
{
    critic_ctx *cc = (critic_ctx *)ctx;
    int64_t N = cc->N, w = p->obs_dim + p->act_dim;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    float *q = rw.q + c * N, *dy = rw.dq + c * N;
    const double *y = rw.y;
    mm_model *m = p->critic[c];
    double s = 0, qs = 0;
    int rc = mmi_pol_fwd_at(p, 3 * c, m, rw.obs_act, N, w, q, 1);
    if (rc == MM_OK) {
        for (int64_t k = 0; k < N; k++) {
            double e = (double)q[k] - y[k];
            s += e * e, qs += q[k];
            dy[k] = (float)(e / (double)N);
        }
        cc->loss[c] = 0.5 * s / (double)N;
        if (c == 0) cc->q_mean = qs / (double)N;
        return mmi_pol_critic_adam(p, c, 3 * c + 2, dy, N, failed);
    }
    *failed = m;
    return rc;
}

/* Piece c of the actor step: Q_c(s, a~) into q + c N (x = [s, a~] in obs_act). */
static int actor_q(mm_policy *p, void *ctx, int32_t c, mm_model **failed)
{
    int64_t N = ((const critic_ctx *)ctx)->N;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    int rc = mmi_pol_fwd_at(p, 3 * c, p->critic[c], rw.obs_act, N, p->obs_dim + p->act_dim,
                            rw.q + c * N, 1);
    if (rc != MM_OK) *failed = p->critic[c];
    return rc;
}

/* Where critic c's input gradient goes: dx, and for the second critic the rows of w_e past da
 * (w_e holds maxb x (od + 2 ad + 2) floats: da's N ad and N (od + ad) more fit). */
static float *dx_of(mm_policy *p, const mmi_sac_rows *rw, int64_t N, int32_t c)
{
    return c == 0 ? rw->dx : rw->da + N * p->act_dim;
}

/* Piece c: dL/dQ_c on the rows where critic c is the minimum (the first on a tie, as
 * torch.min), then its frozen backward to its input gradient; nothing when it is nowhere the
 * minimum. */
static int actor_q_grad(mm_policy *p, void *ctx, int32_t c, mm_model **failed)
{
    critic_ctx *cc = (critic_ctx *)ctx;
    int64_t N = cc->N, w = p->obs_dim + p->act_dim;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    const float *q = rw.q;
    float *dq = rw.dq_min + c * N;
    mm_model *cr = p->critic[c];
    int32_t nc = p->o.n_critics, nl = 0;
    int used = 0, rc;
    for (int64_t k = 0; k < N; k++) {
        int pick = c == 0 ? !(nc == 2 && q[N + k] < q[k]) : q[N + k] < q[k];
        dq[k] = pick ? (float)(-1.0 / (double)N) : 0.0f;
        used |= pick;
    }
    cc->used[c] = used;
    if (!used) return MM_OK;
    rc = mm_model_num_layers(cr, &nl);
    if (rc == MM_OK && (rc = mm_model_freeze(cr, 0, nl, 1)) == MM_OK) {
        int rc2;
        rc = mm_model_backward(cr, mmi_pol_view(p, 3 * c + 1, dq, N, 1),
                               mmi_pol_view(p, 3 * c + 2, dx_of(p, &rw, N, c), N, w));
        rc2 = mm_model_freeze(cr, 0, nl, 0); /* thawed even after a failed backward */
        if (rc == MM_OK) rc = rc2;
    }
    if (rc != MM_OK) *failed = cr;
    return rc;
}

/* dL/da of -mean min_k Q_k(s, a~) into da [N, ad]: each row goes back through the critic that
 * is the minimum (the first on a tie, as torch.min), frozen. x = [s, a~] in obs_act. The
 * critics' forwards run at once, then their backwards; da sums their parts in critic order. */
static int critic_input_grad(mm_policy *p, int64_t N, double *min_q)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    float *q = rw.q, *da = rw.da;
    int32_t nc = p->o.n_critics;
    critic_ctx cc;
    int rc;
    cc.N = N, cc.used[0] = cc.used[1] = 0;
    if ((rc = mmi_pol_each(p, p->critic, nc, actor_q, &cc, nc)) != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) min_q[k] = nc == 2 && q[N + k] < q[k] ? q[N + k] : q[k];
    if ((rc = mmi_pol_each(p, p->critic, nc, actor_q_grad, &cc, nc)) != MM_OK) return rc;
    memset(da, 0, sizeof(float) * (size_t)(N * ad));
    for (int32_t c = 0; c < nc; c++) {
        const float *dx = dx_of(p, &rw, N, c);
        if (!cc.used[c]) continue;
        for (int64_t k = 0; k < N; k++)
            for (int64_t j = 0; j < ad; j++) da[k * ad + j] += dx[k * w + od + j];
    }
    return MM_OK;
}

/* Actor and alpha: a~ = squash(pi(s), eps), the actor's Adam step on L_pi, then log alpha's on
 * L_a. dhead takes obs_act's rows after the critics are done with it. */
static int actor_alpha_step(mm_policy *p, int64_t N, double alpha)
{
    int64_t od = p->obs_dim, ad = p->act_dim, w = od + ad;
    mmi_sac_rows rw = mmi_sac_rows_of(p, N);
    float *head = rw.head, *x = rw.obs_act, *dhead = rw.dhead, *da = rw.da;
    double *lp = rw.logp, *mq = rw.min_q, *r = p->sac_row, *a = r + 3 * ad;
    double *ga = r + 4 * ad, loss = 0, ent = 0, ga_alpha = 0, tgt = p->o.target_entropy;
    int rc = mmi_sac_fwd(p, p->actor, rw.obs, N, od, head, 2 * ad);
    if (rc != MM_OK) return rc;
    for (int64_t k = 0; k < N; k++) {
        load_row(head + k * 2 * ad, p->sac_eps + k * ad, ad, r);
        lp[k] = mmi_sac_squash(r, r + ad, r + 2 * ad, ad, a);
        memcpy(x + k * w, rw.obs + k * od, sizeof(float) * (size_t)od);
        for (int64_t j = 0; j < ad; j++) x[k * w + od + j] = (float)a[j];
    }
    if ((rc = critic_input_grad(p, N, mq)) != MM_OK) return rc; /* y is spent: mq reuses it */
    for (int64_t k = 0; k < N; k++) {
        loss += alpha * lp[k] - mq[k], ent -= lp[k];
        ga_alpha -= (lp[k] + (isnan(tgt) ? -(double)ad : tgt)) / (double)N;
        load_row(head + k * 2 * ad, p->sac_eps + k * ad, ad, r);
        for (int64_t j = 0; j < ad; j++) ga[j] = da[k * ad + j];
        mmi_sac_squash_grad(r, r + ad, r + 2 * ad, ad, alpha / (double)N, ga, a, ga + ad);
        for (int64_t j = 0; j < ad; j++)
            dhead[k * 2 * ad + j] = (float)a[j], dhead[k * 2 * ad + ad + j] = (float)ga[ad + j];
    }
    p->st_actor_loss = loss / (double)N, p->st_entropy = ent / (double)N;
    rc = mm_model_zero_grad(p->actor);
    if (rc == MM_OK) rc = mm_model_backward(p->actor, mmi_pol_view(p, 2, dhead, N, 2 * ad), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->actor, rc, "mm_policy_update");
    if ((rc = mmi_sac_adam(p, p->actor, p->o.lr_actor)) != MM_OK) return rc;
    return mmi_sac_alpha_step(p, ga_alpha);
}

int mmi_sac_alpha_step(mm_policy *p, double ga_alpha)
{
    /* log alpha is the bias of p->ent: a zero input makes dL/dbias = dy */
    mmi_sac_rows rw = mmi_sac_rows_of(p, 1); /* the alpha rows do not depend on N */
    float *zero = rw.alpha_in, *out = rw.alpha_out, *dy = rw.alpha_dy;
    int rc;
    if (!p->o.ent_auto) return MM_OK;
    zero[0] = 0.0f, dy[0] = (float)ga_alpha;
    rc = mm_model_zero_grad(p->ent);
    if (rc == MM_OK)
        rc =
            mm_model_forward(p->ent, mmi_pol_view(p, 0, zero, 1, 1), mmi_pol_view(p, 1, out, 1, 1));
    if (rc == MM_OK) rc = mm_model_backward(p->ent, mmi_pol_view(p, 2, dy, 1, 1), NULL);
    if (rc != MM_OK) return mmi_pol_model_fail(p, p->ent, rc, "mm_policy_update");
    return mmi_sac_adam(p, p->ent, p->o.lr_alpha);
}

double mmi_sac_alpha(mm_policy *p)
{
    float *w = NULL;
    if (!p->o.ent_auto || mm_model_params(p->ent, &w, NULL) != MM_OK) return p->o.ent_coef;
    return exp((double)w[1]); /* [weight, bias] */
}

static int continuous_step(mm_policy *p, int64_t N, double alpha)
{
    int32_t nc = p->o.n_critics;
    critic_ctx cc;
    int rc;
    cc.N = N, cc.loss[0] = cc.loss[1] = 0, cc.q_mean = 0;
    gather(p, N);
    if ((rc = targets(p, N, alpha)) != MM_OK) return rc;
    if ((rc = mmi_pol_each(p, p->critic, nc, critic_step, &cc, nc)) != MM_OK) return rc;
    p->st_q_mean = cc.q_mean;
    p->st_critic_loss = 0;
    for (int32_t c = 0; c < nc; c++) p->st_critic_loss += cc.loss[c];
    return actor_alpha_step(p, N, alpha);
}

int mmi_sac_step(mm_policy *p, int64_t N)
{
    double alpha = mmi_sac_alpha(p);
    int rc;
    MMI_ASSERT(N >= 1 && N <= p->maxb);
    rc = p->discrete ? mmi_sacd_step(p, N, alpha) : continuous_step(p, N, alpha);
    if (rc != MM_OK) return rc;
    p->n_updates = mmi_count_add(p->n_updates, 1);
    if (p->n_updates % p->o.target_update_interval != 0) return MM_OK;
    return mmi_pol_polyak(p, p->critic_t, p->critic, p->o.n_critics, p->o.tau);
}

int mmi_sac_update(mm_policy *p)
{
    int64_t N = p->o.batch_size, m = p->discrete ? 0 : 2 * N * p->act_dim; /* exact in discrete */
    mmi_replay_sample(&p->rb, &p->rng, N, p->w_idx);
    for (int64_t i = 0; i < m; i++) p->sac_eps[i] = (float)mmi_rng_normal(&p->rng);
    return mmi_sac_step(p, N);
}
