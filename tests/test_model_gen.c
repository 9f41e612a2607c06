/* SPDX-License-Identifier: MIT */
/* test_model_gen.c — what a language-model RL loop needs from mm_model: per-token
 * log-probabilities (mm_model_logprob) against a float64 reference, their backward
 * (mm_model_logprob_backward) against float64 central finite differences of that reference,
 * and sampling (mm_model_sample, mm_model_seed): greedy, temperature, top-k and top-p frequencies
 * against the exact distributions, determinism per seed, batched decoding of k samples per
 * prompt that agrees with the full-sequence log-probabilities, no allocation after finalize, and
 * refusals that leave the model usable.
 *
 * Tolerances as tests/test_model.c: libmm runs in float32, the reference in float64 at the
 * exact parameters libmm holds; derivatives compared as |libmm - fd| <= 1e-4 (|fd| + max|fd|)
 * with h = 1e-5 (truncation and rounding of the difference far below float32 noise). Sample
 * frequencies: N draws per case, bound 5 standard deviations sqrt(p (1 - p) / N) + 1e-3, so a
 * wrong distribution (a token off by 0.02 or more) fails while the fixed seed keeps the test
 * deterministic. */
#include "runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { V = 7, E = 5, H = 6, B = 2, T = 4, ROWS = B * T };

/* embedding(V, E) -> dense(H) -> tanh -> dense(V): logits for token inputs [B, T, 1]. */
static mm_model *build_lm(const mm_allocator *a)
{
    mm_model_opts o;
    mm_model *m = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = a;
    o.input_dim = 1, o.max_batch = 8, o.max_seq = T, o.seed = 11;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_embedding(m, V, E));
    CHECK_OK(mm_model_add_dense(m, H, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_add_activation(m, MM_ACT_TANH));
    CHECK_OK(mm_model_add_dense(m, V, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    return m;
}

/* float64 reference of build_lm at parameters p: sum_r w_r log softmax(z_r)[t_r] (t_r < 0
 * skipped), and each logp_r into lp (may be NULL). */
static double ref_weighted_logp(const double *p, const float *tok, const int32_t *t,
                                const double *w, double *lp)
{
    const double *emb = p, *w1 = emb + V * E, *b1 = w1 + H * E, *w2 = b1 + H, *b2 = w2 + V * H;
    double total = 0;
    for (int r = 0; r < ROWS; r++) {
        const double *e = emb + (int)tok[r] * E;
        double h[H], z[V], mx = -1e300, s = 0, l;
        for (int o = 0; o < H; o++) {
            double a = b1[o];
            for (int i = 0; i < E; i++) a += w1[o * E + i] * e[i];
            h[o] = tanh(a);
        }
        for (int o = 0; o < V; o++) {
            double a = b2[o];
            for (int i = 0; i < H; i++) a += w2[o * H + i] * h[i];
            z[o] = a;
            mx = a > mx ? a : mx;
        }
        for (int o = 0; o < V; o++) s += exp(z[o] - mx);
        l = t[r] < 0 ? 0 : z[t[r]] - mx - log(s);
        if (lp) lp[r] = l;
        total += w[r] * l;
    }
    return total;
}

static const float k_tok[ROWS] = {1, 4, 0, 6, 2, 2, 5, 3};
static const int32_t k_tgt[ROWS] = {4, 0, -1, 2, 2, 5, 3, -100};
static const float k_w[ROWS] = {0.7f, -1.3f, 2.0f, 0.4f, 1.1f, -0.2f, 0.9f, 5.0f};

static void test_logprob_reference(void)
{
    mm_model *m = build_lm(NULL);
    int64_t sx[3] = {B, T, 1}, sl[2] = {B, T}, n = 0;
    float xbuf[ROWS], lbuf[ROWS], wbuf[ROWS], *p = NULL, *g = NULL;
    double ref[ROWS], w[ROWS], *pd, maxfd = 0;
    mm_tensor *x = NULL, *lp = NULL, *wt = NULL;
    memcpy(xbuf, k_tok, sizeof xbuf);
    memcpy(wbuf, k_w, sizeof wbuf);
    for (int r = 0; r < ROWS; r++) w[r] = (double)k_w[r];
    CHECK_OK(mm_tensor_wrap(&x, xbuf, 3, sx, NULL));
    CHECK_OK(mm_tensor_wrap(&lp, lbuf, 2, sl, NULL));
    CHECK_OK(mm_tensor_wrap(&wt, wbuf, 2, sl, NULL));
    CHECK_OK(mm_model_params(m, &p, &n));
    CHECK_OK(mm_model_grads(m, &g, NULL));
    pd = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) pd[i] = (double)p[i];
    /* forward against float64 */
    CHECK_OK(mm_model_logprob(m, x, k_tgt, ROWS, lp));
    (void)ref_weighted_logp(pd, k_tok, k_tgt, w, ref);
    for (int r = 0; r < ROWS; r++) CHECK_NEAR(lbuf[r], ref[r], 1e-5, 1e-5);
    CHECK(lbuf[2] == 0.0f && lbuf[7] == 0.0f); /* skipped positions */
    /* backward against central differences of the reference (weights 5.0 on a skipped
     * position must not contribute) */
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_logprob_backward(m, k_tgt, ROWS, wt));
    {
        double *fd = malloc(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            const double h = 1e-5, keep = pd[i];
            double fp, fm;
            pd[i] = keep + h, fp = ref_weighted_logp(pd, k_tok, k_tgt, w, NULL);
            pd[i] = keep - h, fm = ref_weighted_logp(pd, k_tok, k_tgt, w, NULL);
            pd[i] = keep;
            fd[i] = (fp - fm) / (2 * h);
            maxfd = fabs(fd[i]) > maxfd ? fabs(fd[i]) : maxfd;
        }
        CHECK(maxfd > 0.1); /* the check below is not vacuous */
        for (int64_t i = 0; i < n; i++)
            if (fabs(g[i] - fd[i]) > 1e-4 * (fabs(fd[i]) + maxfd))
                mmt_fail(__FILE__, __LINE__, "param %lld: grad %.8g, finite difference %.8g",
                         (long long)i, (double)g[i], fd[i]);
        free(fd);
    }
    /* backward accumulates, as mm_model_backward does */
    {
        float *g1 = malloc(sizeof(float) * (size_t)n);
        memcpy(g1, g, sizeof(float) * (size_t)n);
        CHECK_OK(mm_model_logprob(m, x, k_tgt, ROWS, lp));
        CHECK_OK(mm_model_logprob_backward(m, k_tgt, ROWS, wt));
        for (int64_t i = 0; i < n; i++) CHECK_NEAR(g[i], 2 * g1[i], 1e-6, 1e-7);
        free(g1);
    }
    free(pd);
    mm_tensor_free(x), mm_tensor_free(lp), mm_tensor_free(wt);
    mm_model_free(m);
}

/* A Mamba language model: logprob equals log_softmax of mm_model_forward's logits, and its
 * backward equals mm_model_backward of the float64 log-softmax gradient (Mamba's own backward
 * is checked against finite differences in tests/test_model.c). */
static void test_logprob_mamba_consistency(void)
{
    enum { BM = 3, TM = 5, VM = 6, RM = BM * TM };
    mm_model_opts o;
    mm_model *m = NULL;
    int64_t sx[3] = {BM, TM, 1}, sy[3] = {BM, TM, VM}, sl[1] = {RM}, n = 0;
    float xb[RM], yb[RM * VM], dyb[RM * VM], lb[RM], wb[RM], *g = NULL, *g1;
    int32_t tg[RM];
    mm_tensor *x = NULL, *y = NULL, *dy = NULL, *lp = NULL, *wt = NULL;
    CHECK_OK(mm_model_opts_init(&o));
    o.input_dim = 1, o.max_batch = BM, o.max_seq = TM, o.seed = 3;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_embedding(m, VM, 8));
    CHECK_OK(mm_model_add_mamba(m, 4, 3, 2, 0));
    CHECK_OK(mm_model_add_rmsnorm(m, 1e-5, 1));
    CHECK_OK(mm_model_add_dense(m, VM, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    for (int r = 0; r < RM; r++) {
        xb[r] = (float)((r * 5 + 1) % VM);
        tg[r] = r % 4 == 3 ? -1 : (r * 7 + 2) % VM;
        wb[r] = (float)(0.3 * (r % 5) - 0.5);
    }
    CHECK_OK(mm_tensor_wrap(&x, xb, 3, sx, NULL));
    CHECK_OK(mm_tensor_wrap(&y, yb, 3, sy, NULL));
    CHECK_OK(mm_tensor_wrap(&dy, dyb, 3, sy, NULL));
    CHECK_OK(mm_tensor_wrap(&lp, lb, 1, sl, NULL));
    CHECK_OK(mm_tensor_wrap(&wt, wb, 1, sl, NULL));
    CHECK_OK(mm_model_grads(m, &g, &n));
    CHECK_OK(mm_model_forward(m, x, y));
    for (int r = 0; r < RM; r++) { /* float64 log-softmax and its gradient */
        double mx = yb[r * VM], s = 0;
        for (int v = 1; v < VM; v++) mx = yb[r * VM + v] > mx ? yb[r * VM + v] : mx;
        for (int v = 0; v < VM; v++) s += exp(yb[r * VM + v] - mx);
        for (int v = 0; v < VM; v++) {
            double pv = exp(yb[r * VM + v] - mx) / s;
            dyb[r * VM + v] = tg[r] < 0 ? 0.0f : (float)(wb[r] * ((v == tg[r]) - pv));
        }
    }
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_backward(m, dy, NULL));
    g1 = malloc(sizeof(float) * (size_t)n);
    memcpy(g1, g, sizeof(float) * (size_t)n);
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_logprob(m, x, tg, RM, lp));
    for (int r = 0; r < RM; r++) {
        double mx = yb[r * VM], s = 0;
        for (int v = 1; v < VM; v++) mx = yb[r * VM + v] > mx ? yb[r * VM + v] : mx;
        for (int v = 0; v < VM; v++) s += exp(yb[r * VM + v] - mx);
        CHECK_NEAR(lb[r], tg[r] < 0 ? 0.0 : yb[r * VM + tg[r]] - mx - log(s), 1e-6, 1e-6);
    }
    CHECK_OK(mm_model_logprob_backward(m, tg, RM, wt));
    {
        double mg = 0;
        for (int64_t i = 0; i < n; i++) mg = fabs(g1[i]) > mg ? fabs(g1[i]) : mg;
        CHECK(mg > 1e-3);
        for (int64_t i = 0; i < n; i++) CHECK_NEAR(g[i], g1[i], 1e-5, 1e-6 * mg);
    }
    free(g1);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy), mm_tensor_free(lp),
        mm_tensor_free(wt);
    mm_model_free(m);
}

/* ---- sampling ------------------------------------------------------------------------------ */

static const float k_logits[V] = {0.3f, 1.2f, -0.4f, 1.2f, 0.9f, -2.0f, 0.1f};

/* Exact probabilities of the sampler's distribution, best first with ties by index. */
static void expected_probs(double temp, int top_k, double top_p, double *pr)
{
    int order[V], kept;
    double w[V], mass = 0, acc = 0;
    for (int i = 0; i < V; i++) order[i] = i, w[i] = exp((k_logits[i] - 1.2) / temp);
    for (int i = 1; i < V; i++) /* insertion sort by (logit desc, index asc) */
        for (int j = i; j > 0 && k_logits[order[j]] > k_logits[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    kept = top_k > 0 && top_k < V ? top_k : V;
    for (int j = 0; j < kept; j++) mass += w[order[j]];
    for (int j = 0; j < kept; j++) {
        acc += w[order[j]];
        if (acc >= top_p * mass) {
            kept = j + 1;
            break;
        }
    }
    mass = 0;
    for (int j = 0; j < kept; j++) mass += w[order[j]];
    for (int i = 0; i < V; i++) pr[i] = 0;
    for (int j = 0; j < kept; j++) pr[order[j]] = w[order[j]] / mass;
}

static void check_frequencies(mm_model *m, double temp, int top_k, double top_p)
{
    enum { N = 20000, CH = 500 };
    static float rows[CH * V];
    static int32_t tok[CH];
    int64_t shape[2] = {CH, V};
    double pr[V], cnt[V] = {0};
    mm_tensor *lt = NULL;
    for (int r = 0; r < CH; r++) memcpy(rows + r * V, k_logits, sizeof k_logits);
    CHECK_OK(mm_tensor_wrap(&lt, rows, 2, shape, NULL));
    for (int s = 0; s < N; s += CH) {
        CHECK_OK(mm_model_sample(m, lt, temp, top_k, top_p, tok, CH, NULL));
        for (int r = 0; r < CH; r++) cnt[tok[r]] += 1;
    }
    expected_probs(temp, top_k, top_p, pr);
    for (int i = 0; i < V; i++) {
        double f = cnt[i] / N, sd = sqrt(pr[i] * (1 - pr[i]) / N);
        if (pr[i] == 0) CHECK(cnt[i] == 0); /* truncated tokens are never drawn */
        if (fabs(f - pr[i]) > 5 * sd + 1e-3)
            mmt_fail(__FILE__, __LINE__,
                     "T %g top_k %d top_p %g token %d: frequency %.4f, "
                     "probability %.4f",
                     temp, top_k, top_p, i, f, pr[i]);
    }
    mm_tensor_free(lt);
}

static void test_sample_distributions(void)
{
    mm_model *m = build_lm(NULL);
    CHECK_OK(mm_model_seed(m, 2024));
    check_frequencies(m, 1.0, 0, 1.0);
    check_frequencies(m, 0.5, 0, 1.0);
    check_frequencies(m, 2.0, 0, 1.0);
    check_frequencies(m, 1.0, 3, 1.0); /* tokens 1 and 3 tie; 4 is third */
    check_frequencies(m, 1.0, 0, 0.6); /* nucleus: best tokens up to 60% of the mass */
    check_frequencies(m, 1.0, 0, 0.3); /* token 1 alone holds less than 0.3: 1 and 3 */
    check_frequencies(m, 0.7, 4, 0.8); /* top-p inside the top-k set */
    check_frequencies(m, 1.0, 1, 1.0); /* top-1: token 1 (tie broken by index) */
    mm_model_free(m);
}

static void test_sample_greedy_logp(void)
{
    mm_model *m = build_lm(NULL);
    float rows[2 * V], lp[2];
    int32_t tok[2];
    int64_t shape[2] = {2, V};
    mm_tensor *lt = NULL;
    memcpy(rows, k_logits, sizeof k_logits);
    for (int i = 0; i < V; i++) rows[V + i] = -k_logits[i];
    CHECK_OK(mm_tensor_wrap(&lt, rows, 2, shape, NULL));
    CHECK_OK(mm_model_sample(m, lt, 0.0, 0, 1.0, tok, 2, lp));
    CHECK(tok[0] == 1); /* 1 and 3 tie at 1.2: the lower index */
    CHECK(tok[1] == 5);
    for (int r = 0; r < 2; r++) {
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)rows[r * V + i]);
        CHECK_NEAR(lp[r], rows[r * V + tok[r]] - log(s), 1e-6, 1e-6);
    }
    /* logp is the untempered, untruncated log-probability whatever the sampler's settings */
    CHECK_OK(mm_model_sample(m, lt, 0.3, 2, 0.9, tok, 2, lp));
    for (int r = 0; r < 2; r++) {
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)rows[r * V + i]);
        CHECK_NEAR(lp[r], rows[r * V + tok[r]] - log(s), 1e-6, 1e-6);
    }
    mm_tensor_free(lt);
    mm_model_free(m);
}

static void test_sample_seed(void)
{
    enum { N = 64 };
    mm_model *m = build_lm(NULL), *m2 = build_lm(NULL);
    static float rows[N * V];
    int32_t a[N], b[N], c[N];
    int64_t shape[2] = {N, V};
    mm_tensor *lt = NULL;
    int differ = 0;
    for (int r = 0; r < N; r++) memcpy(rows + r * V, k_logits, sizeof k_logits);
    CHECK_OK(mm_tensor_wrap(&lt, rows, 2, shape, NULL));
    CHECK_OK(mm_model_seed(m, 5));
    CHECK_OK(mm_model_sample(m, lt, 1.0, 0, 0.95, a, N, NULL));
    CHECK_OK(mm_model_seed(m2, 5)); /* another handle, same seed: same tokens */
    CHECK_OK(mm_model_sample(m2, lt, 1.0, 0, 0.95, b, N, NULL));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(mm_model_seed(m, 6));
    CHECK_OK(mm_model_sample(m, lt, 1.0, 0, 0.95, c, N, NULL));
    for (int i = 0; i < N; i++) differ += a[i] != c[i];
    CHECK(differ > 0);
    /* greedy draws nothing: the stream continues where it was */
    CHECK_OK(mm_model_seed(m, 5));
    CHECK_OK(mm_model_sample(m, lt, 0.0, 0, 1.0, c, N, NULL));
    CHECK_OK(mm_model_sample(m, lt, 1.0, 0, 0.95, c, N, NULL));
    CHECK(memcmp(a, c, sizeof a) == 0);
    mm_tensor_free(lt);
    mm_model_free(m), mm_model_free(m2);
}

/* k samples per prompt decoded in one batch with the recurrent state, then scored by
 * mm_model_logprob on the whole sequences: the sampler's log-probabilities (from the decoded
 * logits) sum to the forward's (from the parallel scan), and nothing is allocated after
 * finalize, through decoding, sampling, log-probabilities, backward and a step. */
static void test_batched_decode_agrees(void)
{
    enum { P = 2, K = 3, NB = P * K, PL = 2, GEN = 5, L = PL + GEN, VM = 6 };
    mm_allocator al;
    mmt_counter cnt;
    mm_model_opts o;
    mm_model *m = NULL;
    int64_t s_in[2] = {NB, 1}, s_lg[2] = {NB, VM}, s_x[3] = {NB, L, 1}, s_l[2] = {NB, L};
    float in[NB], lg[NB * VM], xs[NB * L], lps[NB * L], wts[NB * L], step_lp[NB];
    double dec_sum[NB] = {0};
    int32_t tok[NB], tgt[NB * L];
    const int prompts[P][PL] = {{1, 4}, {2, 5}};
    mm_tensor *ti = NULL, *tl = NULL, *tx = NULL, *tlp = NULL, *tw = NULL;
    size_t sb = 0;
    void *state;
    int64_t allocs;
    mmt_counting_allocator(&al, &cnt, -1);
    CHECK_OK(mm_model_opts_init(&o));
    o.alloc = &al;
    o.input_dim = 1, o.max_batch = NB, o.max_seq = L, o.seed = 9;
    CHECK_OK(mm_model_create(&m, &o));
    CHECK_OK(mm_model_add_embedding(m, VM, 8));
    CHECK_OK(mm_model_add_mamba(m, 4, 3, 2, 0));
    CHECK_OK(mm_model_add_rmsnorm(m, 1e-5, 1));
    CHECK_OK(mm_model_add_dense(m, VM, 1, MM_INIT_DEFAULT, 1.0));
    CHECK_OK(mm_model_finalize(m));
    CHECK_OK(mm_model_set_optimizer(m, MM_OPT_ADAM));
    CHECK_OK(mm_model_decode_state_size(m, NB, &sb));
    CHECK(sb > 0);
    state = calloc(1, sb);
    CHECK_OK(mm_tensor_wrap(&ti, in, 2, s_in, NULL));
    CHECK_OK(mm_tensor_wrap(&tl, lg, 2, s_lg, NULL));
    CHECK_OK(mm_tensor_wrap(&tx, xs, 3, s_x, NULL));
    CHECK_OK(mm_tensor_wrap(&tlp, lps, 2, s_l, NULL));
    CHECK_OK(mm_tensor_wrap(&tw, wts, 2, s_l, NULL));
    allocs = cnt.n_alloc;
    CHECK_OK(mm_model_seed(m, 77));
    for (int t = 0; t < L - 1; t++) {
        for (int r = 0; r < NB; r++) /* prompt tokens for row r = prompt r / K, then samples */
            in[r] = t < PL ? (float)prompts[r / K][t] : (float)tok[r];
        for (int r = 0; r < NB; r++) xs[r * L + t] = in[r];
        CHECK_OK(mm_model_decode_step(m, ti, tl, state, sb));
        if (t < PL - 1) continue;
        CHECK_OK(mm_model_sample(m, tl, 1.0, 0, 1.0, tok, NB, step_lp));
        for (int r = 0; r < NB; r++) dec_sum[r] += step_lp[r];
    }
    for (int r = 0; r < NB; r++) xs[r * L + L - 1] = (float)tok[r];
    for (int r = 0; r < NB; r++)
        for (int t = 0; t < L; t++) { /* next-token targets on the generated part only */
            tgt[r * L + t] = t >= PL - 1 && t < L - 1 ? (int32_t)xs[r * L + t + 1] : -1;
            wts[r * L + t] = 1.0f;
        }
    CHECK_OK(mm_model_logprob(m, tx, tgt, NB * L, tlp));
    for (int r = 0; r < NB; r++) {
        double s = 0;
        for (int t = 0; t < L; t++) s += lps[r * L + t];
        CHECK_NEAR(s, dec_sum[r], 1e-4, 1e-4);
    }
    CHECK_OK(mm_model_zero_grad(m));
    CHECK_OK(mm_model_logprob_backward(m, tgt, NB * L, tw));
    CHECK_OK(mm_model_step(m));
    CHECK_EQ_I64(cnt.n_alloc, allocs);
    free(state);
    mm_tensor_free(ti), mm_tensor_free(tl), mm_tensor_free(tx), mm_tensor_free(tlp),
        mm_tensor_free(tw);
    mm_model_free(m);
    CHECK_EQ_I64(cnt.live_bytes, 0);
}

static void test_gen_refusals(void)
{
    mm_model *m = build_lm(NULL);
    int64_t s_lg[2] = {1, V}, s_bad[2] = {1, V + 1}, sx[3] = {B, T, 1}, sl[2] = {B, T};
    float lg[V + 1], xb[ROWS], lb[ROWS], wb[ROWS], before[ROWS];
    int32_t tok[1], tg[ROWS];
    mm_tensor *tl = NULL, *tbad = NULL, *x = NULL, *lp = NULL, *wt = NULL;
    memcpy(lg, k_logits, sizeof k_logits);
    memcpy(xb, k_tok, sizeof xb);
    memcpy(tg, k_tgt, sizeof tg);
    for (int r = 0; r < ROWS; r++) wb[r] = 1.0f;
    CHECK_OK(mm_tensor_wrap(&tl, lg, 2, s_lg, NULL));
    CHECK_OK(mm_tensor_wrap(&tbad, lg, 2, s_bad, NULL));
    CHECK_OK(mm_tensor_wrap(&x, xb, 3, sx, NULL));
    CHECK_OK(mm_tensor_wrap(&lp, lb, 2, sl, NULL));
    CHECK_OK(mm_tensor_wrap(&wt, wb, 2, sl, NULL));
    CHECK_STATUS(mm_model_seed(NULL, 1), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_sample(NULL, tl, 1, 0, 1, tok, 1, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_sample(m, NULL, 1, 0, 1, tok, 1, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_sample(m, tl, 1, 0, 1, NULL, 1, NULL), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_sample(m, tbad, 1, 0, 1, tok, 1, NULL), MM_E_SHAPE);
    CHECK(strstr(mm_model_errmsg(m), "output width") != NULL);
    CHECK_STATUS(mm_model_sample(m, tl, 1, 0, 1, tok, 2, NULL), MM_E_SHAPE);
    CHECK_STATUS(mm_model_sample(m, tl, -1, 0, 1, tok, 1, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_model_sample(m, tl, 1e-9, 0, 1, tok, 1, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_model_sample(m, tl, NAN, 0, 1, tok, 1, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_model_sample(m, tl, 1, -1, 1, tok, 1, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_model_sample(m, tl, 1, 0, 0, tok, 1, NULL), MM_E_RANGE);
    CHECK_STATUS(mm_model_sample(m, tl, 1, 0, 1.5, tok, 1, NULL), MM_E_RANGE);
    tok[0] = -7;
    lg[2] = NAN;
    CHECK_STATUS(mm_model_sample(m, tl, 1, 0, 1, tok, 1, NULL), MM_E_NUMERIC);
    CHECK(tok[0] == -7); /* nothing written */
    lg[2] = k_logits[2];
    CHECK_OK(mm_model_sample(m, tl, 1, 0, 1, tok, 1, NULL)); /* still usable */
    /* log-probabilities */
    CHECK_STATUS(mm_model_logprob_backward(m, tg, ROWS, wt), MM_E_STATE); /* no forward yet */
    CHECK_STATUS(mm_model_logprob(m, x, tg, ROWS - 1, lp), MM_E_SHAPE);
    CHECK_STATUS(mm_model_logprob(m, x, NULL, ROWS, lp), MM_E_INVALID_ARG);
    CHECK_STATUS(mm_model_logprob(m, x, tg, ROWS, NULL), MM_E_INVALID_ARG);
    tg[3] = V;
    CHECK_STATUS(mm_model_logprob(m, x, tg, ROWS, lp), MM_E_RANGE);
    CHECK(strstr(mm_model_errmsg(m), "targets[3]") != NULL);
    tg[3] = k_tgt[3];
    xb[0] = 0.5f; /* not an embedding index */
    CHECK_STATUS(mm_model_logprob(m, x, tg, ROWS, lp), MM_E_RANGE);
    xb[0] = k_tok[0];
    CHECK_OK(mm_model_logprob(m, x, tg, ROWS, lp));
    memcpy(before, lb, sizeof before);
    wb[1] = INFINITY;
    CHECK_STATUS(mm_model_logprob_backward(m, tg, ROWS, wt), MM_E_NUMERIC);
    wb[1] = 1.0f;
    CHECK_STATUS(mm_model_logprob_backward(m, tg, ROWS - 2, wt), MM_E_SHAPE);
    CHECK_OK(mm_model_logprob_backward(m, tg, ROWS, wt));
    CHECK_OK(mm_model_logprob(m, x, tg, ROWS, lp));
    CHECK(memcmp(before, lb, sizeof before) == 0); /* parameters untouched by the refusals */
    mm_tensor_free(tl), mm_tensor_free(tbad), mm_tensor_free(x), mm_tensor_free(lp),
        mm_tensor_free(wt);
    mm_model_free(m);
}

void suite_model_gen(void)
{
    mmt_run("model_gen/logprob_reference", test_logprob_reference);
    mmt_run("model_gen/logprob_mamba_consistency", test_logprob_mamba_consistency);
    mmt_run("model_gen/sample_distributions", test_sample_distributions);
    mmt_run("model_gen/sample_greedy_logp", test_sample_greedy_logp);
    mmt_run("model_gen/sample_seed", test_sample_seed);
    mmt_run("model_gen/batched_decode_agrees", test_batched_decode_agrees);
    mmt_run("model_gen/refusals", test_gen_refusals);
}
