/* SPDX-License-Identifier: MIT */
/* test_policy_memory.c — PPO with a memory core (mm_policy_opts.memory): the gradient of the
 * whole PPO loss through backpropagation in time against float64 central differences of a
 * float64 re-implementation (core, both networks, clipped surrogate and value loss); acting
 * equals the training forward over the same observations bit for bit; states reset on episode
 * end and by mm_policy_reset_agent; no allocation in the act/observe/update loop; bad options
 * and unsupported calls refused. */
#include "runner.h"

#include "policy/mmi_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void base_opts(mm_policy_opts *o, int discrete, int64_t n_agents)
{
    CHECK_OK(mm_policy_opts_init(o, MM_ALGO_PPO));
    o->obs_dim = 3, o->seed = 3, o->n_agents = n_agents, o->n_steps = 6;
    o->hidden[0] = 5, o->hidden[1] = 5;
    if (discrete)
        o->n_actions = 3;
    else
        o->act_dim = 2;
    o->memory = MM_MEMORY_LRU, o->memory_dim = 2, o->memory_seq_len = 4;
    o->batch_size = 8, o->n_epochs = 2;
}

/* One step of a fake environment: next obs from (seed, step), rewards, the episode ends given. */
static void env_step(mm_policy *p, float *obs, int64_t na, int s, const uint8_t *te,
                     const uint8_t *tr, int update)
{
    float next[3 * 4], act[2 * 4], rew[4];
    int32_t did;
    CHECK_OK(mm_policy_act(p, obs, na, act, 1));
    mmt_fill_uniform(next, 3 * na, 700 + (uint64_t)s, -1, 1);
    for (int64_t i = 0; i < na; i++) rew[i] = next[3 * i] * act[i] + 0.3f * obs[3 * i + 1];
    CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, na));
    if (update) CHECK_OK(mm_policy_update(p, &did));
    memcpy(obs, next, sizeof(float) * (size_t)(3 * na));
}

/* ---- float64 reference of the PPO loss ------------------------------------------------------ */

typedef struct ref {
    mm_policy *p;
    double *mem, *actor, *vf; /* parameters as doubles */
} ref;

/* y = MLP(x) in float64 from m's layer tensors (dense: weight [out, in], bias; tanh between). */
static int64_t mlp(const mm_model *m, const double *w, const double *x, int64_t n_in, double *y)
{
    double a[64], b[64];
    int32_t nl = 0;
    int64_t width = n_in;
    CHECK_OK(mm_model_num_layers(m, &nl));
    memcpy(a, x, sizeof(double) * (size_t)n_in);
    for (int32_t l = 0; l < nl; l++) {
        const mmi_ptensor *wt = mmi_model_tensor(m, l, 0), *bt = mmi_model_tensor(m, l, 1);
        if (!wt) { /* activation (the on-policy default, tanh) */
            for (int64_t j = 0; j < width; j++) a[j] = tanh(a[j]);
            continue;
        }
        int64_t out = wt->shape[0];
        for (int64_t r = 0; r < out; r++) {
            double s = w[bt->offset + r];
            for (int64_t c = 0; c < width; c++) s += w[wt->offset + r * width + c] * a[c];
            b[r] = s;
        }
        memcpy(a, b, sizeof(double) * (size_t)out);
        width = out;
    }
    memcpy(y, a, sizeof(double) * (size_t)width);
    return width;
}

/* The loss one PPO minibatch holding every segment computes (normalize_advantage off, ent 0). */
static double ref_loss(const ref *R, double *vmax_err)
{
    mm_policy *p = R->p;
    const mmi_rollout *ro = &p->ro;
    int64_t H = p->mem.H, N = p->mem.N, od = p->obs_dim, na = ro->n_agents, T = ro->n_steps;
    int64_t L = p->mem.L, n = T * na;
    const double *w = R->mem;
    int64_t oW = 0, ob = H * od, onu = ob + H, oth = onu + N, oga = oth + N, oB = oga + N;
    int64_t oC = oB + 2 * N * H, oD = oC + 2 * N * H;
    double lam[16], bn[128], loss = 0, eps = p->o.clip_range; /* N, H up to 8 */
    for (int64_t k = 0; k < N; k++) {
        double mod = exp(-exp(w[onu + k])), arg = exp(w[oth + k]), g = exp(w[oga + k]);
        lam[2 * k] = mod * cos(arg), lam[2 * k + 1] = mod * sin(arg);
        for (int64_t j = 0; j < 2 * H; j++) bn[k * 2 * H + j] = w[oB + k * 2 * H + j] * g;
    }
    for (int64_t i = 0; i < na; i++)
        for (int64_t t0 = 0; t0 < T; t0 += L) {
            double h[16];
            for (int64_t k = 0; k < 2 * N; k++) h[k] = p->mem.ro_h0[(t0 * na + i) * 2 * N + k];
            for (int64_t t = t0; t < t0 + L && t < T; t++) {
                int64_t row = t * na + i;
                const float *x = ro->obs + row * od;
                double f[16], u[8], z[8], v, hn[16];
                for (int64_t c = 0; c < H; c++) {
                    u[c] = w[ob + c];
                    for (int64_t j = 0; j < od; j++) u[c] += w[oW + c * od + j] * x[j];
                }
                for (int64_t k = 0; k < N; k++) {
                    double br = 0, bi = 0;
                    for (int64_t c = 0; c < H; c++)
                        br += bn[(k * H + c) * 2] * u[c], bi += bn[(k * H + c) * 2 + 1] * u[c];
                    hn[2 * k] = lam[2 * k] * h[2 * k] - lam[2 * k + 1] * h[2 * k + 1] + br;
                    hn[2 * k + 1] = lam[2 * k] * h[2 * k + 1] + lam[2 * k + 1] * h[2 * k] + bi;
                }
                memcpy(h, hn, sizeof h);
                for (int64_t j = 0; j < od; j++) f[j] = x[j];
                for (int64_t c = 0; c < H; c++) {
                    double y = w[oD + c] * u[c];
                    for (int64_t k = 0; k < N; k++)
                        y += w[oC + (c * N + k) * 2] * h[2 * k] -
                             w[oC + (c * N + k) * 2 + 1] * h[2 * k + 1];
                    f[od + c] = tanh(y); /* the networks see the bounded output */
                }
                int64_t K = mlp(p->actor, R->actor, f, od + H, z), a = (int64_t)ro->act[row];
                double mx = z[0], s = 0, lp, rho, A = ro->adv[row], rc;
                for (int64_t j = 1; j < K; j++) mx = z[j] > mx ? z[j] : mx;
                for (int64_t j = 0; j < K; j++) s += exp(z[j] - mx);
                lp = z[a] - mx - log(s);
                rho = exp(lp - ro->logp[row]);
                rc = rho < 1 - eps ? 1 - eps : (rho > 1 + eps ? 1 + eps : rho);
                loss += -fmin(rho * A, rc * A) / (double)n;
                mlp(p->vf, R->vf, f, od + H, &v);
                loss += p->o.vf_coef * (v - ro->ret[row]) * (v - ro->ret[row]) / (double)n;
                if (vmax_err) {
                    double e = fabs(v - ro->val[row]);
                    *vmax_err = e > *vmax_err ? e : *vmax_err;
                }
                if (ro->done[row] != 0.0f)
                    for (int64_t k = 0; k < 2 * N; k++) h[k] = 0;
            }
        }
    return loss;
}

static double *as_f64(mm_model *m, int64_t *n)
{
    float *w;
    double *d;
    CHECK_OK(mm_model_params(m, &w, n));
    d = malloc(sizeof(double) * (size_t)*n);
    for (int64_t i = 0; i < *n; i++) d[i] = w[i];
    return d;
}

/* Central differences of ref_loss in every parameter of vec against the library's gradient. */
static void check_grads(ref *R, double *vec, int64_t n, mm_model *m, const char *what)
{
    float *g;
    int64_t ng, bad = 0;
    double gmax = 0;
    CHECK_OK(mm_model_grads(m, &g, &ng));
    CHECK_EQ_I64(ng, n);
    for (int64_t j = 0; j < n; j++) {
        double keep = vec[j], h = 1e-6 * (1.0 + fabs(keep)), lp, lm, fd;
        vec[j] = keep + h, lp = ref_loss(R, NULL);
        vec[j] = keep - h, lm = ref_loss(R, NULL);
        vec[j] = keep;
        fd = (lp - lm) / (2 * h);
        gmax = fabs(fd) > gmax ? fabs(fd) : gmax;
        /* float32 forward and backward against float64 differences: ~1e-6 relative rounding */
        if (!mmt_near(g[j], fd, 2e-3, 2e-6)) {
            if (bad++ < 4)
                fprintf(stderr, "    %s[%lld]: library %.8g, float64 differences %.8g\n", what,
                        (long long)j, (double)g[j], fd);
        }
    }
    CHECK_EQ_I64(bad, 0);
    CHECK(gmax > 1e-4); /* the loss does depend on these parameters */
}

/* dim 2: the states sum over u; dim 6: over [x, 1] with the encoder folded into B (memory.c
 * folds), whose forward rounds differently but must still give the gradient of the same
 * function. */
static void bptt_gradient(int64_t dim)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[6];
    uint8_t none[2] = {0, 0}, te[2] = {0, 1}, tr[2] = {1, 0};
    ref R;
    int64_t nm, na, nv;
    double verr = 0;
    base_opts(&o, 1, 2);
    o.memory_dim = dim;
    o.lr_actor = 0, o.lr_critic = 0; /* the update leaves the parameters: the gradients stay */
    o.max_grad_norm = 0, o.normalize_advantage = 0, o.n_epochs = 1;
    o.batch_size = 16; /* 4 segments of 4: every segment in one minibatch */
    o.gamma = 0.9, o.gae_lambda = 0.8;
    CHECK_OK(mm_policy_create(&p, &o));
    mmt_fill_uniform(obs, 6, 1, -1, 1);
    /* a first rollout makes the second one start from carried (non-zero) states */
    for (int s = 0; s < 6; s++) env_step(p, obs, 2, s, none, none, 1);
    for (int s = 6; s < 12; s++) /* episode ends inside segments: agent 1 at 7, agent 0 at 8 */
        env_step(p, obs, 2, s, s == 7 ? te : none, s == 8 ? tr : none, s == 11);
    {
        double upd = 0;
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd));
        CHECK(upd == 2.0);
    }
    R.p = p;
    R.mem = as_f64(p->mem.m, &nm), R.actor = as_f64(p->actor, &na), R.vf = as_f64(p->vf, &nv);
    /* the reference reproduces the values observe stored (its layout reading is right) */
    ref_loss(&R, &verr);
    CHECK(verr < 1e-5);
    check_grads(&R, R.mem, nm, p->mem.m, "memory");
    check_grads(&R, R.actor, na, p->actor, "actor");
    check_grads(&R, R.vf, nv, p->vf, "value");
    free(R.mem), free(R.actor), free(R.vf);
    mm_policy_free(p);
}

static void test_bptt_gradient(void)
{
    bptt_gradient(2);
    bptt_gradient(6);
}

/* ---- streaming == training forward ---------------------------------------------------------- */

static void test_stream_equals_sequence(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[12], ys[6][4][8];
    uint8_t none[4] = {0}, te[4] = {0, 1, 0, 0}, tr[4] = {0, 0, 0, 1};
    int64_t ids[16], m, H;
    base_opts(&o, 0, 4);
    o.memory_dim = 8, o.memory_seq_len = 4;
    CHECK_OK(mm_policy_create(&p, &o));
    H = p->mem.H;
    mmt_fill_uniform(obs, 12, 2, -1, 1);
    for (int s = 0; s < 6; s++) env_step(p, obs, 4, s, none, none, 1); /* trains once */
    for (int s = 0; s < 6; s++) {
        env_step(p, obs, 4, 10 + s, s == 1 ? te : none, s == 3 ? tr : none, 0);
        memcpy(ys[s], p->mem.y, sizeof(float) * (size_t)(4 * H));
    }
    /* the training forward over every segment of the full rollout */
    for (int64_t k = 0; k < mmi_mem_n_segments(p); k++) ids[k] = k;
    m = mmi_mem_gather(p, ids, mmi_mem_n_segments(p));
    CHECK_EQ_I64(m, 24);
    float *x = mmi_onpolicy_rows_of(p, m).obs; /* the rows a minibatch gathers into */
    for (int64_t k = 0; k < m; k++)
        memcpy(x + k * 3, p->ro.obs + p->mem.seg[k] * 3, sizeof(float) * 3);
    mmi_mem_forward(p, x, m);
    for (int64_t k = 0; k < m; k++) {
        int64_t row = p->mem.seg[k], t = row / 4, i = row % 4;
        CHECK(memcmp(p->mem.ys + k * H, ys[t][i], sizeof(float) * (size_t)H) == 0);
        CHECK(memcmp(p->mem.feat + k * p->in_dim + 3, ys[t][i], sizeof(float) * (size_t)H) == 0);
        for (int64_t h = 0; h < H; h++) CHECK(fabsf(ys[t][i][h]) <= 1.0f); /* tanh-bounded */
    }
    mm_policy_free(p);
}

/* ---- reset ------------------------------------------------------------------------------------ */

static int all_zero(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

static void test_reset(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL;
    float obs[6], o2[6], aa[4], ab[4];
    uint8_t none[2] = {0, 0}, te[2] = {1, 0};
    int64_t n2;
    base_opts(&o, 0, 2);
    CHECK_OK(mm_policy_create(&a, &o));
    CHECK_OK(mm_policy_create(&b, &o));
    n2 = 2 * a->mem.N;
    mmt_fill_uniform(obs, 6, 3, -1, 1);
    mmt_fill_uniform(o2, 6, 4, -1, 1);
    env_step(a, obs, 2, 0, none, none, 0);
    CHECK(!all_zero(a->mem.state, n2) && !all_zero(a->mem.state + n2, n2));
    env_step(a, obs, 2, 1, te, none, 0); /* agent 0's episode ends: its state restarts */
    CHECK(all_zero(a->mem.state, n2));
    CHECK(!all_zero(a->mem.state + n2, n2));
    /* a reset agent acts as a fresh policy's agent; the other remembers */
    CHECK_OK(mm_policy_act(a, o2, 2, aa, 0));
    CHECK_OK(mm_policy_act(b, o2, 2, ab, 0));
    CHECK(memcmp(aa, ab, 2 * sizeof(float)) == 0);
    CHECK(memcmp(aa + 2, ab + 2, 2 * sizeof(float)) != 0);
    /* by hand */
    CHECK_OK(mm_policy_reset_agent(a, 1));
    CHECK(all_zero(a->mem.state + n2, n2));
    CHECK_STATUS(mm_policy_reset_agent(a, 2), MM_E_RANGE);
    CHECK_STATUS(mm_policy_reset_agent(a, -1), MM_E_RANGE);
    CHECK_STATUS(mm_policy_reset_agent(NULL, 0), MM_E_INVALID_ARG);
    mm_policy_free(a), mm_policy_free(b);
}

/* Acting a leading subset of the agents (memory.c keeps its step by copying rows) gives those
 * agents the bits that acting all agents (where the act's buffers trade places) gives them,
 * and leaves the others' memory alone. */
static void test_partial_act(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL;
    float obs[9], aa[6], ab[6];
    int64_t H, N2;
    base_opts(&o, 0, 3);
    CHECK_OK(mm_policy_create(&a, &o));
    o.n_agents = 4;
    CHECK_OK(mm_policy_create(&b, &o));
    if (!a || !b) {
        mm_policy_free(a), mm_policy_free(b);
        return;
    }
    H = a->mem.H, N2 = 2 * a->mem.N;
    for (int s = 0; s < 4; s++) {
        mmt_fill_uniform(obs, 9, 40 + (uint64_t)s, -1, 1);
        CHECK_OK(mm_policy_act(a, obs, 3, aa, 0));
        CHECK_OK(mm_policy_act(b, obs, 3, ab, 0));
        CHECK(memcmp(aa, ab, sizeof aa) == 0);
        CHECK(memcmp(a->mem.state, b->mem.state, sizeof(float) * (size_t)(3 * N2)) == 0);
        CHECK(memcmp(a->mem.prev, b->mem.prev, sizeof(float) * (size_t)(3 * N2)) == 0);
        CHECK(memcmp(a->mem.y, b->mem.y, sizeof(float) * (size_t)(3 * H)) == 0);
        CHECK(all_zero(b->mem.state + 3 * N2, N2) && all_zero(b->mem.prev + 3 * N2, N2));
        CHECK(all_zero(b->mem.y + 3 * H, H) && b->mem.acted[3] == 0);
        if (s == 1) CHECK(!all_zero(a->mem.prev, 3 * N2)); /* prev is the state before */
    }
    mm_policy_free(a), mm_policy_free(b);
}

/* ---- allocation-free loop -------------------------------------------------------------------- */

static void test_no_alloc(void)
{
    for (int discrete = 0; discrete < 2; discrete++) {
        mmt_counter c;
        mm_allocator al;
        mm_policy_opts o;
        mm_policy *p = NULL;
        float obs[12];
        uint8_t none[4] = {0}, te[4] = {0, 1, 0, 0};
        int64_t before;
        double upd = 0;
        mmt_counting_allocator(&al, &c, -1);
        base_opts(&o, discrete, 4);
        o.alloc = &al, o.norm_obs = 1, o.memory_dim = 6;
        CHECK_OK(mm_policy_create(&p, &o));
        mmt_fill_uniform(obs, 12, 5, -1, 1);
        before = c.n_alloc;
        for (int s = 0; s < 30; s++) env_step(p, obs, 4, s, s % 4 == 2 ? te : none, none, 1);
        CHECK_OK(mm_policy_reset_agent(p, 3));
        CHECK_EQ_I64(c.n_alloc, before);
        CHECK_OK(mm_policy_get_f64(p, MM_POLICY_STAT_UPDATES, &upd));
        CHECK(upd >= 4);
        mm_policy_free(p);
        CHECK_EQ_I64(c.live_bytes, 0);
    }
}

/* ---- refusals ---------------------------------------------------------------------------------- */

static void test_bad_options(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    mm_model *m = NULL;
    char eb[256];
    int32_t done = 0;
    for (int k = 0; k < 8; k++) {
        base_opts(&o, 0, 2);
        o.err_buf = eb, o.err_buf_size = sizeof eb;
        switch (k) {
        case 0:
            o.memory = 2;
            break;
        case 1:
            o.memory = -1;
            break;
        case 2:
            o.memory_dim = 0;
            break;
        case 3:
            o.memory_dim = 1025;
            break;
        case 4:
            o.memory_seq_len = 0;
            break;
        case 5:
            o.memory_seq_len = 7;
            break; /* > n_steps */
        case 6:
            o.reserved3 = 1;
            break;
        default: { /* memory is PPO's */
            mm_policy_opts q;
            CHECK_OK(mm_policy_opts_init(&q, MM_ALGO_A2C));
            q.obs_dim = 3, q.memory = MM_MEMORY_LRU, q.err_buf = eb, q.err_buf_size = sizeof eb;
            o = q;
        }
        }
        eb[0] = 0;
        CHECK_STATUS(mm_policy_create(&p, &o), MM_E_INVALID_ARG);
        CHECK(p == NULL && strstr(eb, "memory") != NULL);
    }
    /* defaults: no memory, 16 channels and segments of 16 once switched on */
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    CHECK(o.memory == MM_MEMORY_NONE && o.memory_dim == 16 && o.memory_seq_len == 16);
    /* calls a memory policy cannot serve say so and leave it usable */
    base_opts(&o, 0, 2);
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK_STATUS(mm_policy_export(p, &m, NULL), MM_E_UNSUPPORTED);
    CHECK(m == NULL && strstr(mm_policy_errmsg(p), "memory") != NULL);
    CHECK_STATUS(mm_policy_export_save(p, "unused.mm"), MM_E_UNSUPPORTED);
    CHECK_STATUS(mm_policy_update_budget(p, 1, &done), MM_E_UNSUPPORTED);
    { /* an observe whose agents did not act has no memory state to store */
        float ob[6] = {0}, ac[4] = {0}, rw[2] = {0};
        uint8_t z[2] = {0, 0};
        CHECK_STATUS(mm_policy_observe(p, ob, ac, rw, ob, z, z, 2), MM_E_STATE);
        CHECK(strstr(mm_policy_errmsg(p), "has not acted") != NULL);
    }
    {
        float obs[6], act[4];
        mmt_fill_uniform(obs, 6, 8, -1, 1);
        CHECK_OK(mm_policy_act(p, obs, 2, act, 1));
        obs[1] = NAN;
        CHECK_STATUS(mm_policy_act(p, obs, 2, act, 1), MM_E_NUMERIC);
    }
    mm_policy_free(p);
}

/* ---- files ---------------------------------------------------------------------------------- */

/* A saved memory policy loads only into a policy with the same memory core. */
static void test_file_records_memory(void)
{
    mm_policy_opts o;
    mm_policy *a = NULL, *b = NULL, *c = NULL;
    size_t n = 0;
    unsigned char *buf;
    base_opts(&o, 0, 2);
    CHECK_OK(mm_policy_create(&a, &o));
    CHECK_OK(mm_policy_save_mem(a, NULL, 0, &n, 0));
    buf = malloc(n);
    CHECK_OK(mm_policy_save_mem(a, buf, n, NULL, 0));
    CHECK_OK(mm_policy_create(&b, &o));
    CHECK_OK(mm_policy_load_mem(b, buf, n));
    o.memory = MM_MEMORY_NONE;
    CHECK_OK(mm_policy_create(&c, &o));
    CHECK_STATUS(mm_policy_load_mem(c, buf, n), MM_E_FORMAT);
    CHECK(strstr(mm_policy_errmsg(c), "memory") != NULL);
    { /* create-from-file reads the memory core from the metadata */
        char path[512];
        FILE *f;
        mm_policy *d = NULL;
        float obs[6], xa[4], xd[4];
        CHECK(mmt_tmp_path(path, sizeof path, "policy_memory.safetensors") == 0);
        f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, n, f) == n);
        if (f) fclose(f);
        base_opts(&o, 0, 2);
        o.memory = MM_MEMORY_NONE, o.memory_dim = 5; /* the file's memory wins */
        CHECK_OK(mm_policy_load_new(&d, path, &o));
        CHECK(d && d->mem.m && d->mem.H == 2 && d->mem.L == 4);
        mmt_fill_uniform(obs, 6, 9, -1, 1);
        for (int s = 0; d && s < 3; s++) {
            CHECK_OK(mm_policy_act(a, obs, 2, xa, 0));
            CHECK_OK(mm_policy_act(d, obs, 2, xd, 0));
            CHECK(memcmp(xa, xd, sizeof xa) == 0);
        }
        mm_policy_free(d);
        remove(path);
    }
    free(buf);
    mm_policy_free(a), mm_policy_free(b), mm_policy_free(c);
}

/* ---- learning: a task only memory solves ---------------------------------------------------- */

/* Recall a cue: episodes of 3 steps observe [cue, t / 2] with the cue +-1 at t = 0 and 0 after;
 * at t = 2 action 1 earns 1 if the cue was +1, action 0 if it was -1. Without memory the last
 * step shows nothing of the cue: at best 1/2 of the episodes are won. Returns the fraction of
 * won episodes of a deterministic evaluation after training. */
static double cue_task(int memory)
{
    enum { NA = 8 };
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[2 * NA], next[2 * NA], act[NA], rew[NA], cue[NA];
    uint8_t te[NA], tr[NA] = {0};
    int t = 0, won = 0;
    uint64_t lcg = 12345;
    CHECK_OK(mm_policy_opts_init(&o, MM_ALGO_PPO));
    o.obs_dim = 2, o.n_actions = 2, o.n_agents = NA, o.seed = 7;
    o.n_steps = 24, o.batch_size = 96, o.n_epochs = 4, o.lr_actor = o.lr_critic = 3e-3;
    o.hidden[0] = o.hidden[1] = 16, o.gamma = 0.99, o.ent_coef = 0.01;
    if (memory) o.memory = MM_MEMORY_LRU, o.memory_dim = 4, o.memory_seq_len = 12;
    CHECK_OK(mm_policy_create(&p, &o));
    for (int step = 0; step < 3000 * 3; step++, t = (t + 1) % 3) {
        for (int i = 0; i < NA; i++) {
            if (t == 0)
                lcg = lcg * 6364136223846793005ull + 1442695040888963407ull,
                cue[i] = (lcg >> 40) & 1 ? 1.0f : -1.0f;
            obs[2 * i] = t == 0 ? cue[i] : 0.0f, obs[2 * i + 1] = 0.5f * (float)t;
        }
        if (step >= 2700 * 3) { /* evaluation: deterministic, no training */
            CHECK_OK(mm_policy_act(p, obs, NA, act, 0));
            for (int i = 0; t == 2 && i < NA; i++) won += (act[i] == 1.0f) == (cue[i] > 0);
            if (t == 2)
                for (int i = 0; i < NA; i++) CHECK_OK(mm_policy_reset_agent(p, i));
            continue;
        }
        CHECK_OK(mm_policy_act(p, obs, NA, act, 1));
        for (int i = 0; i < NA; i++) {
            rew[i] = t == 2 && (act[i] == 1.0f) == (cue[i] > 0) ? 1.0f : 0.0f;
            te[i] = t == 2;
            next[2 * i] = 0.0f, next[2 * i + 1] = t == 2 ? 1.0f : 0.5f * (float)(t + 1);
        }
        CHECK_OK(mm_policy_observe(p, obs, act, rew, next, te, tr, NA));
        CHECK_OK(mm_policy_update(p, NULL));
    }
    mm_policy_free(p);
    return won / (300.0 * NA);
}

static void test_learns_recall(void)
{
    double with = cue_task(1), without = cue_task(0);
    fprintf(stderr, "    cue recall won: memory %.3f, memoryless %.3f\n", with, without);
    CHECK(with >= 0.95);
    CHECK(without <= 0.65);
}

/* The initial state of the core (docs/RL.md "Memory"): |lambda| in [0.5, 0.9], and the networks
 * see tanh of the LRU output: feat = tanh(Re(C h) + D u) from a float64 step of the first act. */
static void test_init_and_bounded_output(void)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[3] = {0.9f, -0.7f, 0.4f}, act[2];
    base_opts(&o, 0, 1);
    o.memory_dim = 32;
    CHECK_OK(mm_policy_create(&p, &o));
    CHECK_OK(mm_policy_act(p, obs, 1, act, 0)); /* forms lambda from the parameters */
    {
        int64_t H = p->mem.H, N = p->mem.N, od = 3, oD = H * od + H + 3 * N + 4 * N * H;
        const float *w = NULL;
        double rmin = 1, rmax = 0;
        CHECK_OK(mm_model_params(p->mem.m, (float **)&w, NULL));
        for (int64_t n = 0; n < N; n++) {
            double r = hypot(p->mem.lam[2 * n], p->mem.lam[2 * n + 1]);
            rmin = r < rmin ? r : rmin, rmax = r > rmax ? r : rmax;
        }
        CHECK(rmin >= 0.5 - 1e-6 && rmax <= 0.9 + 1e-6);
        CHECK(rmax > 0.8);                /* 32 draws spread over the range */
        for (int64_t c = 0; c < H; c++) { /* from a zero state: h = B e^gamma u */
            double u = w[H * od + c], y;
            for (int64_t j = 0; j < od; j++) u += (double)w[c * od + j] * obs[j];
            y = w[oD + c] * u;
            for (int64_t n = 0; n < N; n++) {
                double hr = 0, hi = 0;
                for (int64_t k = 0; k < H; k++) {
                    double uk = w[H * od + k];
                    for (int64_t j = 0; j < od; j++) uk += (double)w[k * od + j] * obs[j];
                    hr += (double)p->mem.bn[(n * H + k) * 2] * uk;
                    hi += (double)p->mem.bn[(n * H + k) * 2 + 1] * uk;
                }
                y += (double)w[oD - 2 * N * H + (c * N + n) * 2] * hr -
                     (double)w[oD - 2 * N * H + (c * N + n) * 2 + 1] * hi;
            }
            CHECK(mmt_near(p->mem.y[c], tanh(y), 1e-4, 1e-5));
        }
    }
    mm_policy_free(p);
}

void suite_policy_memory(void)
{
    mmt_run("policy_memory_bptt_gradient_fd64", test_bptt_gradient);
    mmt_run("policy_memory_stream_equals_sequence", test_stream_equals_sequence);
    mmt_run("policy_memory_reset", test_reset);
    mmt_run("policy_memory_partial_act", test_partial_act);
    mmt_run("policy_memory_no_alloc", test_no_alloc);
    mmt_run("policy_memory_bad_options", test_bad_options);
    mmt_run("policy_memory_file", test_file_records_memory);
    mmt_run("policy_memory_learns_recall", test_learns_recall);
    mmt_run("policy_memory_init_and_bounded_output", test_init_and_bounded_output);
}
