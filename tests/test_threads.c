/* SPDX-License-Identifier: MIT */
/* test_threads.c — the thread-safety contract of mm.h, exercised the way an engine uses it:
 *   1. several application threads, each driving its own handles (model training, losses,
 *      attention, SSM, a PPO agent) while all of them share one read-only model through
 *      mm_model_infer: every thread's results are bitwise identical to a single-threaded run;
 *   2. the libraries' own pools (n_threads = 2) agree with n_threads = 1 within the documented
 *      tolerance and are bitwise reproducible for a fixed thread count;
 *   3. the off-policy agents (DDPG, TD3, SAC, discrete SAC) train to the same bytes on 1, 2 and
 *      3 threads.
 * Worker threads never call CHECK (the runner's counters are not thread-safe): they record
 * statuses and results, and the main thread compares. `make check-tsan` (tests/tsan.mk) runs
 * this suite under ThreadSanitizer. */
#include "hard_fixtures.h"
#include "runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every workload writes up to RES_MAX floats of results and its first failing status. */
#define RES_MAX 512
typedef struct result {
    float v[RES_MAX];
    int n;
    int rc;
} result;

static void put(result *r, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n && r->n < RES_MAX; i++) r->v[r->n++] = x[i];
}

static void put_t(result *r, const mm_tensor *t)
{
    if (t) put(r, mm_tensor_data(t), mm_tensor_numel(t));
}

#define STEP(r, expr)                                                                              \
    do {                                                                                           \
        if ((r)->rc == MM_OK) (r)->rc = (expr);                                                    \
    } while (0)

/* ---- workloads: each creates its own handles (seeded), runs, frees -------------------------- */
/* Five Adam steps of an MLP on fixed data; the result is the output after training. */
static void work_model(result *r, int32_t threads)
{
    mm_model *m = NULL;
    mm_tensor *x = HX_T(1, -1, 1, 4, 5), *y = HX_T(0, 0, 0, 4, 2), *dy = HX_T(2, -1, 1, 4, 2);
    STEP(r, hx_build_mlp(&m, NULL, 5, 2, 4, threads, 11));
    STEP(r, mm_model_set_optimizer(m, MM_OPT_ADAM));
    for (int it = 0; it < 5; it++) {
        STEP(r, mm_model_zero_grad(m));
        STEP(r, mm_model_forward(m, x, y));
        STEP(r, mm_model_backward(m, dy, NULL));
        STEP(r, mm_model_step(m));
    }
    STEP(r, mm_model_forward(m, x, y));
    put_t(r, y);
    mm_model_free(m);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy);
}

/* Forward + backward of the every-layer model; results: output and parameter gradients. */
static void work_zoo(result *r, int32_t threads)
{
    mm_model *m = NULL;
    mm_tensor *x = HX_T(3, -1, 1, 2, 6, HX_ZOO_IN), *y = HX_T(0, 0, 0, 2, 6, HX_ZOO_OUT);
    mm_tensor *dy = HX_T(4, -1, 1, 2, 6, HX_ZOO_OUT), *dx = hx_like(x);
    float *g = NULL;
    int64_t ng = 0;
    STEP(r, hx_build_zoo(&m, NULL, threads, 12));
    STEP(r, mm_model_forward(m, x, y));
    STEP(r, mm_model_backward(m, dy, dx));
    STEP(r, mm_model_grads(m, &g, &ng));
    put_t(r, y), put_t(r, dx);
    if (g) put(r, g, ng);
    mm_model_free(m);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(dx);
}

/* CLIP and SigLIP, tiled (tile 8 < B = 20), with gradients. */
static void work_loss(result *r, int32_t threads)
{
    mm_loss_opts o;
    mm_loss *clip = NULL, *sig = NULL;
    mm_tensor *x = HX_T(5, -1, 1, 20, 8), *y = HX_T(6, -1, 1, 20, 8);
    mm_tensor *dx = hx_like(x), *dy = hx_like(y);
    double l1 = 0, l2 = 0;
    float lf[2];
    STEP(r, mm_loss_opts_init(&o, MM_LOSS_CLIP));
    o.max_batch = 20, o.max_dim = 8, o.tile = 8, o.n_threads = threads;
    STEP(r, mm_loss_create(&clip, &o));
    STEP(r, mm_loss_opts_init(&o, MM_LOSS_SIGLIP));
    o.max_batch = 20, o.max_dim = 8, o.tile = 8, o.n_threads = threads;
    STEP(r, mm_loss_create(&sig, &o));
    STEP(r, mm_loss_l2_normalize(clip, x, x));
    STEP(r, mm_loss_l2_normalize(clip, y, y));
    STEP(r, mm_loss_clip(clip, x, y, &l1, dx, dy));
    put_t(r, dx);
    STEP(r, mm_loss_siglip(sig, x, y, &l2, dx, dy));
    lf[0] = (float)l1, lf[1] = (float)l2;
    put(r, lf, 2), put_t(r, dy);
    mm_loss_free(clip), mm_loss_free(sig);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dx), mm_tensor_free(dy);
}

/* One attention kind: forward + backward; results: out, dq, dk, dv. */
static void work_attn_kind(result *r, int32_t kind, int32_t threads)
{
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *q = HX_T(7, -1, 1, HX_AB, HX_AH, HX_AN, HX_AD);
    mm_tensor *k = HX_T(8, -1, 1, HX_AB, HX_AH, HX_AN, HX_AD);
    mm_tensor *v = HX_T(9, -1, 1, HX_AB, HX_AH, HX_AN, HX_ADV), *out = hx_like(v);
    mm_tensor *dout = HX_T(10, -1, 1, HX_AB, HX_AH, HX_AN, HX_ADV);
    mm_tensor *dq = hx_like(q), *dk = hx_like(k), *dv = hx_like(v);
    hx_attn_opts(&o, kind, NULL, threads);
    STEP(r, mm_attn_create(&h, &o));
    STEP(r, mm_attn_forward(h, q, k, v, out));
    STEP(r, mm_attn_backward(h, dout, dq, dk, dv, NULL));
    put_t(r, out), put_t(r, dq), put_t(r, dk), put_t(r, dv);
    mm_attn_free(h);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(out);
    mm_tensor_free(dout), mm_tensor_free(dq), mm_tensor_free(dk), mm_tensor_free(dv);
}

static void work_attn(result *r, int32_t threads)
{
    work_attn_kind(r, MM_ATTN_SOFTMAX, threads);
    work_attn_kind(r, MM_ATTN_GATED, threads);
}

/* One SSM kind: scan + backward (or kernel + conv for S4D/S4), then steps. */
static void work_ssm_kind(result *r, int32_t kind, int32_t threads)
{
    mm_ssm_opts o;
    mm_ssm *h = NULL;
    hx_ssm s;
    hx_ssm_open(&s, kind);
    hx_ssm_opts(&o, kind, NULL, threads);
    STEP(r, mm_ssm_create(&h, &o));
    if (kind == MM_SSM_S4D || kind == MM_SSM_S4) {
        STEP(r, mm_ssm_kernel(h, &s.scan, s.k));
        STEP(r, mm_ssm_conv(h, s.cu, s.k, NULL, s.out));
        STEP(r, mm_ssm_kernel_backward(h, &s.scan, s.dk, &s.g));
        put_t(r, s.k), put_t(r, s.out), put_t(r, s.g.dlog_dt), put_t(r, s.g.dC);
    } else {
        STEP(r, mm_ssm_scan(h, &s.scan, s.out, s.last));
        STEP(r, mm_ssm_scan_backward(h, &s.scan, s.dout, &s.g));
        put_t(r, s.out), put_t(r, s.last), put_t(r, s.g.du), put_t(r, s.g.dB);
    }
    if (kind != MM_SSM_S4)
        for (int t = 0; t < 3; t++) {
            STEP(r, mm_ssm_step(h, &s.step, s.sout));
            put_t(r, s.sout);
        }
    mm_ssm_free(h);
    hx_ssm_close(&s);
}

static void work_ssm(result *r, int32_t threads)
{
    work_ssm_kind(r, MM_SSM_SELECTIVE, threads);
    work_ssm_kind(r, MM_SSM_SSD, threads);
    work_ssm_kind(r, MM_SSM_LRU, threads);
}

/* A PPO agent trained for two rollouts; result: its deterministic actions. */
static void work_policy(result *r, int32_t threads)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    float obs[12], act[8];
    hx_policy_opts(&o, MM_ALGO_PPO, 0, NULL);
    o.n_threads = threads;
    STEP(r, mm_policy_create(&p, &o));
    STEP(r, hx_policy_drive(p, 13, 21));
    mmt_fill_uniform(obs, 12, 22, -1, 1);
    STEP(r, mm_policy_act(p, obs, 4, act, 0));
    put(r, act, 8);
    mm_policy_free(p);
}

typedef void (*workload)(result *, int32_t);
static const workload g_work[] = {work_model, work_zoo, work_loss,
                                  work_attn,  work_ssm, work_policy};
#define N_WORK ((int)(sizeof g_work / sizeof g_work[0]))

/* ---- 1. application threads ----------------------------------------------------------------- */
typedef struct shared_infer {
    const mm_model *m;
    const mm_tensor *x; /* [2, 6, HX_ZOO_IN] */
} shared_infer;

#define N_APP_THREADS 4
typedef struct app_job {
    int id;
    shared_infer *sh;
    result res[N_WORK];
    result inf;
} app_job;

/* Infers on the shared model with a private workspace and output. */
static void infer_shared(result *r, const shared_infer *sh, int reps)
{
    mm_tensor *y = HX_T(0, 0, 0, 2, 6, HX_ZOO_OUT);
    size_t wsz = 0;
    void *ws = NULL;
    STEP(r, mm_model_infer_workspace_size(sh->m, 2, 6, &wsz));
    if (r->rc == MM_OK && !(ws = aligned_alloc(64, (wsz + 63) / 64 * 64))) r->rc = MM_E_NOMEM;
    for (int i = 0; i < reps; i++) STEP(r, mm_model_infer(sh->m, sh->x, y, ws, wsz));
    put_t(r, y);
    free(ws);
    mm_tensor_free(y);
}

static void *app_thread(void *arg)
{
    app_job *j = (app_job *)arg;
    /* Each thread walks the workloads in its own order, interleaved with shared inference, so
     * different libmm code runs on different threads at the same moment. */
    for (int i = 0; i < N_WORK; i++) {
        int w = (i + j->id) % N_WORK;
        g_work[w](&j->res[w], 1);
        infer_shared(&j->inf, j->sh, 3);
        j->inf.n = 0; /* keep only the last inference */
    }
    infer_shared(&j->inf, j->sh, 1);
    return NULL;
}

static void same_result(const char *what, int thread, const result *a, const result *ref)
{
    if (a->rc != MM_OK || a->n != ref->n ||
        memcmp(a->v, ref->v, sizeof(float) * (size_t)ref->n) != 0)
        mmt_fail(__FILE__, __LINE__,
                 "%s on thread %d: %s, %d values, not bitwise the "
                 "single-threaded result",
                 what, thread, mm_status_name(a->rc), a->n);
}

static void test_app_threads(void)
{
    static const char *names[N_WORK] = {"model", "zoo", "loss", "attn", "ssm", "policy"};
    static result ref[N_WORK], ref_inf;
    static app_job jobs[N_APP_THREADS];
    pthread_t th[N_APP_THREADS];
    mm_model *shared = NULL;
    shared_infer sh;
    int n_threads = mmt_quick() ? 2 : N_APP_THREADS;
    CHECK_OK(hx_build_zoo(&shared, NULL, 1, 77));
    if (!shared) return;
    sh.m = shared;
    sh.x = HX_T(31, -1, 1, 2, 6, HX_ZOO_IN);
    memset(ref, 0, sizeof ref), memset(&ref_inf, 0, sizeof ref_inf);
    for (int w = 0; w < N_WORK; w++) {
        g_work[w](&ref[w], 1);
        CHECK_OK(ref[w].rc);
        CHECK(ref[w].n > 0);
    }
    infer_shared(&ref_inf, &sh, 1);
    CHECK_OK(ref_inf.rc);
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < n_threads; t++) {
        jobs[t].id = t, jobs[t].sh = &sh;
        CHECK(pthread_create(&th[t], NULL, app_thread, &jobs[t]) == 0);
    }
    for (int t = 0; t < n_threads; t++) {
        pthread_join(th[t], NULL);
        for (int w = 0; w < N_WORK; w++) same_result(names[w], t, &jobs[t].res[w], &ref[w]);
        same_result("shared infer", t, &jobs[t].inf, &ref_inf);
    }
    mm_tensor_free((mm_tensor *)sh.x);
    mm_model_free(shared);
}

/* ---- 2. library pools ----------------------------------------------------------------------- */
/* n_threads = 2 against 1: the same within rtol (pools split batch x heads or rows, so the
 * sums are the same and results are in fact equal or differ by rounding), and two 2-thread
 * runs are bitwise equal. */
static void pool_vs_serial(const char *what, workload w, double rtol)
{
    static result one, two, again;
    memset(&one, 0, sizeof one), memset(&two, 0, sizeof two), memset(&again, 0, sizeof again);
    w(&one, 1);
    w(&two, 2);
    w(&again, 2);
    CHECK_OK(one.rc);
    CHECK_OK(two.rc);
    CHECK_OK(again.rc);
    CHECK_EQ_I64(one.n, two.n);
    for (int i = 0; i < one.n && i < two.n; i++)
        if (!mmt_near(two.v[i], one.v[i], rtol, 1e-6)) {
            mmt_fail(__FILE__, __LINE__, "%s: value %d: 2 threads %.9g vs 1 thread %.9g", what, i,
                     (double)two.v[i], (double)one.v[i]);
            break;
        }
    if (two.n != again.n || memcmp(two.v, again.v, sizeof(float) * (size_t)two.n) != 0)
        mmt_fail(__FILE__, __LINE__, "%s: two runs with 2 threads differ", what);
}

static void test_pools(void)
{
    pool_vs_serial("model (mlp, Adam)", work_model, 1e-5);
    pool_vs_serial("model (every layer)", work_zoo, 1e-5);
    pool_vs_serial("loss (CLIP, SigLIP)", work_loss, 1e-5);
    pool_vs_serial("attn (softmax, gated)", work_attn, 1e-5);
    pool_vs_serial("ssm (selective, SSD, LRU)", work_ssm, 1e-5);
    pool_vs_serial("policy (PPO)", work_policy, 1e-5);
}

/* ---- 3. off-policy updates on a pool ------------------------------------------------------ */
/* DDPG, TD3, SAC and discrete SAC trained with n_threads = 1 and 2: the whole checkpoint
 * (every network, optimizer moments, targets, replay and random state) must be the same bytes.
 * With 2 threads the updates run the twin critics, their targets and the two actors' forwards
 * on one thread each at once, and the GEMMs and Polyak steps split over the pool: the layers
 * (192 wide, batch 32) are large enough for the products to split (mmi_gemm's threshold). */
static void *offpolicy_ckpt(int32_t algo, int discrete, int32_t threads, size_t *size, int *rc)
{
    mm_policy_opts o;
    mm_policy *p = NULL;
    void *buf = NULL;
    hx_policy_opts(&o, algo, discrete, NULL);
    o.hidden[0] = 192, o.hidden[1] = 192, o.batch_size = 32, o.n_threads = threads;
    *size = 0;
    *rc = mm_policy_create(&p, &o);
    if (*rc == MM_OK) *rc = hx_policy_drive(p, 16, 31);
    if (*rc == MM_OK) *rc = mm_policy_save_mem(p, NULL, 0, size, MM_POLICY_SAVE_CHECKPOINT);
    if (*rc == MM_OK && !(buf = malloc(*size))) *rc = MM_E_NOMEM;
    if (*rc == MM_OK) *rc = mm_policy_save_mem(p, buf, *size, size, MM_POLICY_SAVE_CHECKPOINT);
    mm_policy_free(p);
    return buf;
}

static void test_offpolicy_pools(void)
{
    static const struct {
        const char *name;
        int32_t algo;
        int discrete;
    } k[] = {{"DDPG", MM_ALGO_DDPG, 0},
             {"TD3", MM_ALGO_TD3, 0},
             {"SAC", MM_ALGO_SAC, 0},
             {"discrete SAC", MM_ALGO_SAC, 1}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        size_t n1 = 0, n2 = 0, n3 = 0;
        int rc1, rc2, rc3;
        void *one = offpolicy_ckpt(k[i].algo, k[i].discrete, 1, &n1, &rc1);
        void *two = offpolicy_ckpt(k[i].algo, k[i].discrete, 2, &n2, &rc2);
        void *three = offpolicy_ckpt(k[i].algo, k[i].discrete, 3, &n3, &rc3);
        CHECK_OK(rc1);
        CHECK_OK(rc2);
        CHECK_OK(rc3);
        if (rc1 == MM_OK && rc2 == MM_OK && rc3 == MM_OK &&
            (n1 != n2 || n1 != n3 || memcmp(one, two, n1) != 0 || memcmp(one, three, n1) != 0))
            mmt_fail(__FILE__, __LINE__,
                     "%s: the checkpoint after training on 2 or 3 threads is not bitwise the "
                     "1-thread one",
                     k[i].name);
        free(one), free(two), free(three);
    }
}

/* Many handles created and freed concurrently (each with its own pool): no shared state. */
static void *churn_thread(void *arg)
{
    int *rc = (int *)arg;
    for (int i = 0; i < 20 && *rc == MM_OK; i++) {
        mm_attn_opts o;
        mm_attn *h = NULL;
        mm_loss_opts lo;
        mm_loss *l = NULL;
        hx_attn_opts(&o, MM_ATTN_LINEAR, NULL, 2);
        *rc = mm_attn_create(&h, &o);
        mm_attn_free(h);
        if (*rc == MM_OK) *rc = mm_loss_opts_init(&lo, MM_LOSS_SIGLIP);
        lo.max_batch = 8, lo.max_dim = 8, lo.tile = 8, lo.n_threads = 2;
        if (*rc == MM_OK) *rc = mm_loss_create(&l, &lo);
        mm_loss_free(l);
    }
    return NULL;
}

static void test_churn(void)
{
    pthread_t th[3];
    int rc[3] = {MM_OK, MM_OK, MM_OK};
    for (int t = 0; t < 3; t++) CHECK(pthread_create(&th[t], NULL, churn_thread, &rc[t]) == 0);
    for (int t = 0; t < 3; t++) {
        pthread_join(th[t], NULL);
        CHECK_OK(rc[t]);
    }
}

void suite_threads(void)
{
    mmt_run("threads/app_threads_bitwise", test_app_threads);
    mmt_run("threads/pools_vs_serial", test_pools);
    mmt_run("threads/offpolicy_pools_bitwise", test_offpolicy_pools);
    mmt_run("threads/create_free_churn", test_churn);
}
