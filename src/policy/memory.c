/* SPDX-License-Identifier: MIT */
/* memory.c — the memory core of a recurrent policy (docs/RL.md "Memory"): a linear encoder
 * u = W x + b of the normalised observation feeding a Linear Recurrent Unit (the complex
 * diagonal recurrence of MM_SSM_LRU, run by the same kernel, src/kernels/ssm/lru_scan.c):
 *   h_t = lambda h_{t-1} + (B e^gamma_log) u_t,   y_t = tanh(Re(C h_t) + D u_t),
 *   lambda = exp(-exp(nu_log) + i exp(theta_log)).
 * The networks see [x_t, y_t] (y bounded as an LSTM's output). Acting streams one step per
 * agent from the agent's state; training runs the same kernel over rollout segments from the
 * states stored while acting, so a streamed step and the same step of the training forward are
 * the same float operations on the same operands (bit-equal). Backward is the kernel's
 * reverse-time adjoint (BPTT) inside a segment, after the tanh's 1 - y^2; the stored initial
 * state of a segment is a constant (no gradient flows into it). */
#include "mmi_policy.h"
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/ssm/mmi_ssm_kernels.h"

#include <math.h>
#include <string.h>

/* Offsets of the parameter vector (mmi_policy.h lists the order). */
typedef struct mem_off {
    int64_t w, b, nu, th, ga, bb, c, d, end;
} mem_off;

static mem_off offsets(const mm_policy *p)
{
    int64_t H = p->mem.H, N = p->mem.N, od = p->obs_dim;
    mem_off o;
    o.w = 0, o.b = H * od, o.nu = o.b + H, o.th = o.nu + N, o.ga = o.th + N;
    o.bb = o.ga + N, o.c = o.bb + 2 * N * H, o.d = o.c + 2 * N * H, o.end = o.d + H;
    return o;
}

static float *params(mm_policy *p)
{
    float *w = NULL;
    int rc = mm_model_params(p->mem.m, &w, NULL);
    MMI_ASSERT(rc == MM_OK && w); /* a finalized model */
    (void)rc;
    return w;
}

void mmi_mem_layout(mm_policy *p, mmi_carve *y)
{
    mmi_memory *m = &p->mem;
    int on = p->o.memory != MM_MEMORY_NONE;
    int64_t H = on ? m->H : 0, N2 = on ? 2 * m->N : 0, na = p->o.n_agents;
    int64_t nb = on ? p->maxb : 0, tn = on ? p->o.n_steps * na : 0, F = on ? p->in_dim : 0;
    m->state = (float *)mmi_carve_take(y, on ? na * N2 : 0, 4);
    m->prev = (float *)mmi_carve_take(y, on ? na * N2 : 0, 4);
    m->y = (float *)mmi_carve_take(y, on ? na * H : 0, 4);
    m->acted = (uint8_t *)mmi_carve_take(y, on ? na : 0, 1);
    m->nxt = (float *)mmi_carve_take(y, on ? na * N2 : 0, 4);
    m->ynxt = (float *)mmi_carve_take(y, on ? na * H : 0, 4);
    m->ro_h0 = (float *)mmi_carve_take(y, tn * N2, 4);
    m->lam = (float *)mmi_carve_take(y, N2, 4);
    m->bn = (float *)mmi_carve_take(y, N2 * H, 4);
    m->u = (float *)mmi_carve_take(y, nb * H, 4);
    m->ys = (float *)mmi_carve_take(y, nb * H, 4);
    m->hs = (float *)mmi_carve_take(y, nb * N2, 4);
    m->du = (float *)mmi_carve_take(y, nb * H, 4);
    m->dy = (float *)mmi_carve_take(y, nb * H, 4);
    m->feat = (float *)mmi_carve_take(y, nb * F, 4);
    m->dfa = (float *)mmi_carve_take(y, nb * F, 4);
    m->dfv = (float *)mmi_carve_take(y, nb * F, 4);
    m->tmp = (float *)mmi_carve_take(y, N2, 4);
    m->key = (float *)mmi_carve_take(y, on ? m->n_par : 0, 4);
    m->bt = (float *)mmi_carve_take(y, N2 * H, 4);
    m->ct = (float *)mmi_carve_take(y, N2 * H, 4);
    m->wt = (float *)mmi_carve_take(y, on ? p->obs_dim * H : 0, 4);
    m->bf = (float *)mmi_carve_take(y, on ? (p->obs_dim + 1) * N2 : 0, 4);
    m->xs = (float *)mmi_carve_take(y, nb * (p->obs_dim + 1), 4);
    m->acc = (float *)mmi_carve_take(y, N2, 4);
    m->glam = (double *)mmi_carve_take(y, N2, 8);
    m->gh = (double *)mmi_carve_take(y, N2, 8);
    m->dd = (double *)mmi_carve_take(y, H, 8);
    m->gbn = (double *)mmi_carve_take(y, N2 * H, 8);
    m->gc = (double *)mmi_carve_take(y, N2 * H, 8);
    m->gw = (double *)mmi_carve_take(y, H * (p->obs_dim + 1), 8);
    m->seg = (int64_t *)mmi_carve_take(y, nb, 8);
    m->first = (uint8_t *)mmi_carve_take(y, nb, 1);
}

/* Minimal-LRU initialisation (Orvieto et al. 2023, as mm_ssm_lru_init) with |lambda| in
 * [0.5, 0.9] and phases in [0, pi): memories of a few to about ten steps at the start (training
 * moves |lambda|); encoder U(+-1/sqrt(obs_dim)) as torch.nn.Linear. Why not minimal-LRU's 0.99:
 * on a slowly varying input a mode's gain is sqrt(1 - r^2) / (1 - r) (r = |lambda|), 14 at
 * 0.99 and 4.4 at 0.9, and the larger one pushes the output's tanh into saturation (docs/RL.md
 * "Memory"). */
static void init_params(mm_policy *p, mmi_rng *g)
{
    const double rmin = 0.5, rmax = 0.9, phase = 3.141592653589793;
    int64_t H = p->mem.H, N = p->mem.N, od = p->obs_dim;
    mem_off o = offsets(p);
    float *w = params(p);
    double k = 1.0 / sqrt((double)od);
    for (int64_t i = 0; i < H * od + H; i++) w[o.w + i] = (float)(k * (2 * mmi_rng_uniform(g) - 1));
    for (int64_t n = 0; n < N; n++) {
        double u1 = mmi_rng_uniform(g), u2 = mmi_rng_uniform(g);
        double nu = -0.5 * log(u1 * (rmax * rmax - rmin * rmin) + rmin * rmin);
        double mod = exp(-nu);
        w[o.nu + n] = (float)log(nu);
        w[o.th + n] = (float)log(phase * u2 + 1e-6);
        w[o.ga + n] = (float)log(sqrt(1.0 - mod * mod));
    }
    for (int64_t i = 0; i < 2 * N * H; i++)
        w[o.bb + i] = (float)(mmi_rng_normal(g) / sqrt(2.0 * H));
    for (int64_t i = 0; i < 2 * N * H; i++)
        w[o.c + i] = (float)(mmi_rng_normal(g) / sqrt((double)N));
    for (int64_t i = 0; i < H; i++) w[o.d + i] = (float)mmi_rng_normal(g);
}

int mmi_mem_build(mm_policy *p)
{
    mm_model_opts mo;
    mmi_rng g;
    int rc;
    if (p->o.memory == MM_MEMORY_NONE) return MM_OK;
    p->mem.n_par = offsets(p).end;
    rc = mm_model_opts_init(&mo);
    mo.alloc = p->o.alloc, mo.input_dim = 1, mo.max_batch = 1;
    if (rc == MM_OK) rc = mm_model_create(&p->mem.m, &mo);
    if (rc == MM_OK) rc = mm_model_add_dense(p->mem.m, p->mem.n_par, 0, MM_INIT_DEFAULT, 1.0);
    if (rc == MM_OK) rc = mm_model_finalize(p->mem.m);
    if (rc != MM_OK) return mmi_fail(&p->err, rc, "mm_policy_create: memory parameters");
    mmi_rng_seed(&g, p->o.seed ^ 0x4C5255ull); /* its own stream: the networks draw as before */
    init_params(p, &g);
    if ((rc = mm_model_set_optimizer(p->mem.m, MM_OPT_ADAM)) == MM_OK &&
        (rc = mm_model_set_f64(p->mem.m, MM_MODEL_LR, p->o.lr_actor)) == MM_OK)
        rc = mm_model_set_f64(p->mem.m, MM_MODEL_EPS, p->o.adam_eps);
    return rc == MM_OK ? rc : mmi_pol_model_fail(p, p->mem.m, rc, "mm_policy_create");
}

/* Whether the states sum over [x, 1] with the encoder folded into B (bf) instead of over
 * u = W x + b: obs_dim + 1 terms per state instead of H (CartPoleNoVel with LRU16: 3 instead
 * of 16, about half of the step's multiply-adds). Acting and training decide alike, so they
 * stay bit-equal; the outputs' D u still reads u, and the backward the stored u and states. */
static int folds(const mm_policy *p) { return p->obs_dim + 1 < p->mem.H; }

/* [x, 1] rows of n observations into xs (folds). */
static void put_xs(mm_policy *p, const float *x, int64_t n)
{
    int64_t od = p->obs_dim;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < od; j++) p->mem.xs[i * (od + 1) + j] = x[i * od + j];
        p->mem.xs[i * (od + 1) + od] = 1.0f;
    }
}

static void row_setup(mm_policy *p, const float *w, mmi_lru_row *r, int64_t len)
{
    mem_off o = offsets(p);
    memset(r, 0, sizeof *r);
    r->L = len, r->H = p->mem.H, r->N = p->mem.N;
    r->lam = p->mem.lam, r->bn = p->mem.bn, r->c = w + o.c, r->d = w + o.d;
}

/* lambda, B e^gamma_log (as ssm_lru.c forms them) and the transposed operands of the streaming
 * kernel (B e^gamma_log, C, the encoder's W; with folds, B times the encoder) from the current
 * parameters. Formed again only when
 * a parameter differs from the copy in mem.key (any path that changes parameters - an update, a
 * load, a checkpoint - is seen): one compare instead of 3N transcendental calls and three
 * transpositions. Acting skips even the compare until mmi_mem_stale (prepare_act). */
static void prepare(mm_policy *p, const float *w)
{
    mmi_memory *m = &p->mem;
    mem_off o = offsets(p);
    mmi_lru_row r;
    size_t kb = sizeof(float) * (size_t)m->n_par;
    if (m->key_ok && memcmp(m->key, w, kb) == 0) return;
    memcpy(m->key, w, kb);
    m->key_ok = 1;
    for (int64_t n = 0; n < m->N; n++) {
        double mod = exp(-exp((double)w[o.nu + n])), arg = exp((double)w[o.th + n]);
        double gam = exp((double)w[o.ga + n]);
        m->lam[2 * n] = (float)(mod * cos(arg));
        m->lam[2 * n + 1] = (float)(mod * sin(arg));
        for (int64_t k = 0; k < 2 * m->H; k++)
            m->bn[n * 2 * m->H + k] = (float)(w[o.bb + n * 2 * m->H + k] * gam);
    }
    row_setup(p, w, &r, 0);
    mmi_ssm_lru_transpose(&r, m->bt, m->ct);
    for (int64_t h = 0; h < m->H; h++)
        for (int64_t j = 0; j < p->obs_dim; j++) m->wt[j * m->H + h] = w[o.w + h * p->obs_dim + j];
    if (folds(p)) /* bf[q][l] = sum_h bt[h][l] W[h][q] (q < obs_dim), bf[obs_dim][l] = B b */
        for (int64_t q = 0; q <= p->obs_dim; q++)
            for (int64_t l = 0; l < 2 * m->N; l++) {
                double v = 0;
                for (int64_t h = 0; h < m->H; h++)
                    v += (double)m->bt[h * 2 * m->N + l] *
                         (q < p->obs_dim ? w[o.w + h * p->obs_dim + q] : w[o.b + h]);
                m->bf[q * 2 * m->N + l] = (float)v;
            }
}

/* u [n, H] = W x + b, each u[h] summed in j order (the same for acting and training), over the
 * transposed W so that the H lanes are contiguous: eight at a time in a local accumulator
 * (which -O2 keeps in vector registers; u is stored once), the rest one by one. */
static void encode(mm_policy *p, const float *w, const float *x, int64_t n, float *u)
{
    int64_t H = p->mem.H, od = p->obs_dim;
    const float *b = w + offsets(p).b, *wt = p->mem.wt;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * od;
        float *ui = u + i * H;
        int64_t h = 0;
        for (; h + 8 <= H; h += 8) {
            float acc[8];
            for (int t = 0; t < 8; t++) acc[t] = b[h + t];
            for (int64_t j = 0; j < od; j++) {
                const float xj = xi[j], *wj = wt + j * H + h;
                for (int t = 0; t < 8; t++) acc[t] += wj[t] * xj;
            }
            for (int t = 0; t < 8; t++) ui[h + t] = acc[t];
        }
        for (; h < H; h++) {
            float acc = b[h];
            for (int64_t j = 0; j < od; j++) acc += wt[j * H + h] * xi[j];
            ui[h] = acc;
        }
    }
}

/* The streaming kernel over r (mmi_ssm_lru_fwd_t: its steps through mmi_ssm_lru_step_rows, the
 * act's entry, so bit-equal to acting; with the encoder folded, over the [x, 1] rows xs). */
static void run_fwd(mm_policy *p, const mmi_lru_row *r, const float *xs)
{
    mmi_lru_t t;
    int f = folds(p);
    t.bt = f ? p->mem.bf : p->mem.bt, t.ct = p->mem.ct, t.acc = p->mem.acc;
    t.us = f ? xs : NULL, t.Hs = p->obs_dim + 1;
    mmi_ssm_lru_fwd_t(r, &t);
}

/* The core's output as the networks see it: tanh of the LRU's, in place (y [n]; the kernel
 * set's tanh gives each element the same bits wherever it sits in y, so acting and training
 * stay bit-equal). Why bounded: on the slowly varying observations of a control task the LRU's
 * gain is not the unit its B e^gamma_log gives white noise but up to sqrt(1 - r^2) / (1 - r),
 * and while training moves lambda and C nothing keeps the linear y near the scale of x; the
 * LSTM of RecurrentPPO is bounded the same way (docs/RL.md "Memory"). */
static void bound(float *y, int64_t n) { mmi_act_forward(MM_ACT_TANH, y, y, n); }

/* [x, y] into feat: plain loops, as the rows are a few floats each (a memcpy call per piece
 * costs more than the copy at control-task sizes). */
static void put_feat(mm_policy *p, const float *x, const float *y, float *feat)
{
    int64_t od = p->obs_dim, H = p->mem.H;
    for (int64_t j = 0; j < od; j++) feat[j] = x[j];
    for (int64_t h = 0; h < H; h++) feat[od + h] = y[h];
}

/* One step of n agents, all in one call (mmi_ssm_lru_step_rows: the same operations as a
 * one-row mmi_ssm_lru_fwd_t, so acting stays bit-equal to training): from states h0 (rows
 * 2N apart) on the encoded u (rows H apart) to outputs y and new states hs (not h0). */
static void step_rows(mm_policy *p, const float *w, int64_t n, const float *u, const float *xs,
                      const float *h0, float *y, float *hs)
{
    mmi_lru_steps s;
    int f = folds(p);
    s.n = n, s.H = p->mem.H, s.N = p->mem.N;
    s.lam = p->mem.lam, s.bt = f ? p->mem.bf : p->mem.bt, s.ct = p->mem.ct;
    s.d = w + offsets(p).d;
    s.u = u, s.h0 = h0, s.hs = hs, s.y = y, s.acc = p->mem.acc;
    s.us = f ? xs : NULL, s.Hs = p->obs_dim + 1;
    mmi_ssm_lru_step_rows(&s);
}

/* Keeps the step in nxt / ynxt of agents 0 .. n-1: prev <- state, state <- nxt, y <- ynxt. When
 * every agent acted the buffers trade places instead of being copied (the old prev becomes the
 * next act's scratch); the checkpoint and observe reach them only through mem, never by a
 * pointer kept elsewhere. */
static void keep_step(mm_policy *p, int64_t n)
{
    mmi_memory *m = &p->mem;
    if (n == p->o.n_agents) {
        float *old_prev = m->prev, *old_y = m->y;
        m->prev = m->state, m->state = m->nxt, m->nxt = old_prev;
        m->y = m->ynxt, m->ynxt = old_y;
        return;
    }
    memcpy(m->prev, m->state, sizeof(float) * (size_t)(n * 2 * m->N));
    memcpy(m->state, m->nxt, sizeof(float) * (size_t)(n * 2 * m->N));
    memcpy(m->y, m->ynxt, sizeof(float) * (size_t)(n * m->H));
}

/* Acting spares the compare of prepare while no call that can write the parameters ran since
 * the last act (act_ok; the compare alone was 5 % of an act of 8 agents with LRU16). Debug
 * builds still compare, so a writer that does not call mmi_mem_stale fails the tests. */
static void prepare_act(mm_policy *p, const float *w)
{
    mmi_memory *m = &p->mem;
    if (m->act_ok) {
        MMI_ASSERT(m->key_ok && memcmp(m->key, w, sizeof(float) * (size_t)m->n_par) == 0);
        return;
    }
    prepare(p, w);
    m->act_ok = 1;
}

void mmi_mem_stale(mm_policy *p) { p->mem.act_ok = 0; }

int mmi_mem_act(mm_policy *p, const float *x, int64_t n, float *feat)
{
    mmi_memory *m = &p->mem;
    const float *w = params(p);
    prepare_act(p, w);
    encode(p, w, x, n, m->u);
    if (folds(p)) put_xs(p, x, n);
    /* The step goes to nxt / ynxt and is kept (mmi_mem_commit) only when it is finite and the
     * act succeeds: the tanh bounds y even when a state overflows, so an Inf state used to pass
     * as MM_OK and the policy's next checkpoint failed to load (fuzz_config). */
    step_rows(p, w, n, m->u, m->xs, m->state, m->ynxt, m->nxt);
    bound(m->ynxt, n * m->H);
    if (!mmi_all_finite(m->nxt, n * 2 * m->N) || !mmi_all_finite(m->ynxt, n * m->H))
        return MM_E_NUMERIC;
    for (int64_t i = 0; i < n; i++)
        put_feat(p, x + i * p->obs_dim, m->ynxt + i * m->H, feat + i * p->in_dim);
    return MM_OK;
}

void mmi_mem_commit(mm_policy *p, int64_t n)
{
    keep_step(p, n);
    memset(p->mem.acted, 1, (size_t)n);
}

void mmi_mem_feat_last(mm_policy *p, const float *x, int64_t n, float *feat)
{
    for (int64_t i = 0; i < n; i++)
        put_feat(p, x + i * p->obs_dim, p->mem.y + i * p->mem.H, feat + i * p->in_dim);
}

void mmi_mem_peek(mm_policy *p, const float *x, int64_t n, float *feat)
{
    mmi_memory *m = &p->mem;
    int64_t H = m->H;
    const float *w = params(p);
    prepare(p, w);
    encode(p, w, x, n, m->u);
    if (folds(p)) put_xs(p, x, n);
    for (int64_t i = 0; i < n; i++) { /* one agent at a time: the new state goes to tmp */
        step_rows(p, w, 1, m->u + i * H, m->xs + i * (p->obs_dim + 1), m->state + i * 2 * m->N,
                  m->ys + i * H, m->tmp);
        bound(m->ys + i * H, H);
        put_feat(p, x + i * p->obs_dim, m->ys + i * H, feat + i * p->in_dim);
    }
}

void mmi_mem_reset(mm_policy *p, int64_t i)
{
    if (p->mem.m)
        memset(p->mem.state + i * 2 * p->mem.N, 0, sizeof(float) * (size_t)(2 * p->mem.N));
}

/* ---- segments ----------------------------------------------------------------------------- */

int64_t mmi_mem_n_segments(const mm_policy *p)
{
    int64_t T = p->ro.n_steps, L = p->mem.L;
    return (T + L - 1) / L * p->ro.n_agents;
}

int64_t mmi_mem_gather(mm_policy *p, const int64_t *ids, int64_t nseg)
{
    int64_t T = p->ro.n_steps, L = p->mem.L, na = p->ro.n_agents, m = 0;
    for (int64_t s = 0; s < nseg; s++) {
        int64_t col = ids[s] % na, t0 = ids[s] / na * L, len = T - t0 < L ? T - t0 : L;
        for (int64_t k = 0; k < len; k++, m++) {
            p->mem.seg[m] = (t0 + k) * na + col;
            p->mem.first[m] = k == 0;
        }
    }
    return m;
}

/* Length of the piece starting at row k0: until a segment's first row or the row after a
 * done (whose state starts at zero, as observe reset it). */
static int64_t piece_len(const mm_policy *p, int64_t k0, int64_t m)
{
    int64_t k = k0 + 1;
    while (k < m && !p->mem.first[k] && p->ro.done[p->mem.seg[k - 1]] == 0.0f) k++;
    return k - k0;
}

static const float *piece_h0(const mm_policy *p, int64_t k0)
{
    return p->mem.first[k0] ? p->mem.ro_h0 + p->mem.seg[k0] * 2 * p->mem.N : NULL;
}

void mmi_mem_forward(mm_policy *p, const float *x, int64_t m)
{
    mmi_memory *mm = &p->mem;
    int64_t H = mm->H, N2 = 2 * mm->N;
    const float *w = params(p);
    mmi_lru_row r;
    MMI_ASSERT(m >= 1 && m <= p->maxb);
    prepare(p, w);
    encode(p, w, x, m, mm->u);
    if (folds(p)) put_xs(p, x, m);
    for (int64_t k0 = 0, len; k0 < m; k0 += len) {
        len = piece_len(p, k0, m);
        row_setup(p, w, &r, len);
        r.u = mm->u + k0 * H, r.y = mm->ys + k0 * H, r.hs = mm->hs + k0 * N2;
        r.h0 = piece_h0(p, k0);
        run_fwd(p, &r, mm->xs + k0 * (p->obs_dim + 1));
    }
    bound(mm->ys, m * H);
    for (int64_t k = 0; k < m; k++)
        put_feat(p, x + k * p->obs_dim, mm->ys + k * H, mm->feat + k * p->in_dim);
}

/* Real-parameter gradients from the accumulated complex sums (as ssm_lru.c write_grads),
 * added to g. */
static void add_grads(mm_policy *p, const float *w, float *g)
{
    mmi_memory *m = &p->mem;
    int64_t H = m->H, N = m->N, od = p->obs_dim;
    mem_off o = offsets(p);
    for (int64_t h = 0; h < H; h++) {
        for (int64_t j = 0; j < od; j++) g[o.w + h * od + j] += (float)m->gw[h * (od + 1) + j];
        g[o.b + h] += (float)m->gw[h * (od + 1) + od];
        g[o.d + h] += (float)m->dd[h];
    }
    for (int64_t n = 0; n < N; n++) {
        double gr = m->glam[2 * n], gi = m->glam[2 * n + 1];
        double lr = m->lam[2 * n], li = m->lam[2 * n + 1], dg = 0;
        double en = exp((double)w[o.nu + n]), et = exp((double)w[o.th + n]);
        double gam = exp((double)w[o.ga + n]);
        g[o.nu + n] += (float)(-en * (gr * lr + gi * li));
        g[o.th + n] += (float)(et * (gr * -li + gi * lr));
        for (int64_t k = 0; k < 2 * H; k++) {
            dg += m->gbn[n * 2 * H + k] * m->bn[n * 2 * H + k];
            g[o.bb + n * 2 * H + k] += (float)(m->gbn[n * 2 * H + k] * gam);
        }
        g[o.ga + n] += (float)dg;
    }
    for (int64_t i = 0; i < 2 * H * N; i++) g[o.c + i] += (float)m->gc[i];
}

int mmi_mem_backward(mm_policy *p, const float *x, float *dy, int64_t m)
{
    mmi_memory *mm = &p->mem;
    int64_t H = mm->H, N2 = 2 * mm->N, od = p->obs_dim;
    const float *w = params(p);
    float *g = NULL;
    mmi_lru_row r;
    mmi_lru_grad gr;
    if (mm_model_grads(mm->m, &g, NULL) != MM_OK || !g)
        return mmi_fail(&p->err, MM_E_INTERNAL, "mm_policy_update: memory gradients");
    memset(mm->glam, 0, sizeof(double) * (size_t)N2);
    memset(mm->dd, 0, sizeof(double) * (size_t)H);
    memset(mm->gbn, 0, sizeof(double) * (size_t)(N2 * H));
    memset(mm->gc, 0, sizeof(double) * (size_t)(N2 * H));
    memset(mm->gw, 0, sizeof(double) * (size_t)(H * (od + 1)));
    for (int64_t k = 0; k < m * H; k++) dy[k] *= 1.0f - mm->ys[k] * mm->ys[k]; /* through tanh */
    for (int64_t k0 = 0, len; k0 < m; k0 += len) {
        len = piece_len(p, k0, m);
        row_setup(p, w, &r, len);
        r.u = mm->u + k0 * H, r.hs = mm->hs + k0 * N2, r.h0 = piece_h0(p, k0);
        memset(&gr, 0, sizeof gr);
        gr.dy = dy + k0 * H, gr.du = mm->du + k0 * H;
        gr.glam = mm->glam, gr.gbn = mm->gbn, gr.gc = mm->gc, gr.dd = mm->dd, gr.gh = mm->gh;
        mmi_ssm_lru_bwd(&r, &gr);
    }
    for (int64_t k = 0; k < m; k++) /* encoder: dW += du x^T, db += du */
        for (int64_t h = 0; h < H; h++) {
            double d = mm->du[k * H + h];
            for (int64_t j = 0; j < od; j++) mm->gw[h * (od + 1) + j] += d * x[k * od + j];
            mm->gw[h * (od + 1) + od] += d;
        }
    add_grads(p, w, g);
    return MM_OK;
}
