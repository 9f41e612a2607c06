/* SPDX-License-Identifier: MIT */
/* kimi_rl.c — Kimi k1.5 reinforcement learning end to end on a small language model: a causal
 * Mamba model is pre-trained (briefly, on purpose) to add 2-digit numbers written out digit by
 * digit with carries, then RL-trained with the mirror-descent squared loss against the mean
 * group reward (mm_loss_kimi: k samples per prompt, reward 1 when the final answer is right),
 * then trained with the length reward added (mm_loss_kimi_length_reward, "long2short").
 *
 *   task:    prompt  a0 a1 + b0 b1 =                      (digits least significant first)
 *            short   S  a0 b0 c0 s0 c1 ;  a1 b1 c1 s1 c2 ;  > s0 s1 c2 .
 *            long    L  a0 b0 c0 s0 c1 ;  a0 b0 c0 s0 c1 ;  a1 b1 c1 s1 c2 ;  a1 b1 c1 s1 c2 ;
 *                       > s0 s1 c2 .
 *            Each step writes the digits it adds, the carry in, the sum digit and the carry out;
 *            the long style checks every step by writing it twice (the redundant "reflection"
 *            that long2short should remove); the final answer follows '>'. Pre-training data
 *            are 75% long, 25% short, so the model first answers long (30 tokens, short 18).
 *            Held-out problems ((100 a + b) % 7 == 0, 1429 of 10^4) are never trained on.
 *   model:   embedding(17, 48) -> Mamba(d_state 16, d_conv 4, expand 2) -> RMSNorm -> Mamba
 *            -> RMSNorm -> dense(17), trained with mm_model_logprob / _backward (cross entropy
 *            is minus the mean log-probability of the response tokens).
 *   RL:      per iteration NP prompts x K samples decoded in one batch with the recurrent
 *            state (mm_model_decode_step) and sampled at temperature 1 (mm_model_sample);
 *            log pi_old from mm_model_logprob; mm_loss_kimi's dLoss/dlogp spread over each
 *            response's tokens as the weights of mm_model_logprob_backward; UPD Adam steps per
 *            batch (the squared loss keeps later steps near the sampling policy).
 *   measure: greedy decoding (temperature 0) of the held-out problems: accuracy of the final
 *            answer, mean response length and mean length of the correct responses.
 *
 * Goals (exit status 2 when missed): RL raises held-out accuracy by >= 10 points; the length
 * reward cuts the mean length of correct responses by >= 20% and loses <= 2 points of accuracy.
 * Build against an installed libmm:  cc -std=c11 kimi_rl.c $(pkg-config --cflags --libs libmm)
 * Run: ./kimi_rl   (about a minute on one core; docs/KIMI.md has the measured numbers) */
#define _POSIX_C_SOURCE 200809L
#include <mm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PLUS = 10, EQ = 11, SEP = 12, ANS = 13, EOS = 14, LONG = 15, SHORT = 16, V = 17 };
/* ND digits per operand (MAXN = 10^ND); prompt PL tokens, responses at most RMAX, sequences L */
enum { ND = 2, MAXN = 100, PL = 2 * ND + 2, RMAX = 6 + 12 * ND, L = PL + RMAX };
/* model width; NP prompts x K samples per RL batch (NB rows); pre-training batch PB */
enum { D = 48, NP = 8, K = 8, NB = NP * K, PB = 32 };

/* Tunables of the run (the defaults are the documented run). */
static int g_pre_steps = 300, g_rl_iters = 200, g_l2s_iters = 200, g_upd = 2;
static double g_rl_lr = 1e-4, g_tau = 1.0, g_len_weight = 1.0, g_temp = 1.0;

static mm_model *g_m; /* for TRY's message */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call,              \
                    mm_status_name(rc_), g_m ? mm_model_errmsg(g_m) : "");                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the task ------------------------------------------------------------------------------ */
static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

static int held_out(int a, int b) { return (MAXN * a + b) % 7 == 0; }

static void draw_train_problem(int *a, int *b)
{
    do {
        *a = (int)rnd(MAXN), *b = (int)rnd(MAXN);
    } while (held_out(*a, *b));
}

static int digit(int x, int i)
{
    while (i-- > 0) x /= 10;
    return x % 10;
}

static void write_prompt(int a, int b, int32_t *s)
{
    for (int i = 0; i < ND; i++) s[i] = digit(a, i), s[ND + 1 + i] = digit(b, i);
    s[ND] = PLUS, s[2 * ND + 1] = EQ;
}

/* The reference solution in style LONG or SHORT after the prompt; returns its length. */
static int write_solution(int a, int b, int style, int32_t *r)
{
    int n = 0, c = 0;
    r[n++] = style;
    for (int i = 0; i < ND; i++) {
        int x = digit(a, i), y = digit(b, i), s = x + y + c;
        for (int pass = 0; pass < (style == LONG ? 2 : 1); pass++) /* LONG checks each step */
            r[n++] = x, r[n++] = y, r[n++] = c, r[n++] = s % 10, r[n++] = s / 10, r[n++] = SEP;
        c = s / 10;
    }
    r[n++] = ANS;
    for (int i = 0; i <= ND; i++) r[n++] = digit(a + b, i);
    r[n++] = EOS;
    return n;
}

/* 1 if the response (len tokens, ending in EOS) gives the right final answer after its last A. */
static int correct(int a, int b, const int32_t *r, int len)
{
    int ans = -1;
    if (len < 1 || r[len - 1] != EOS) return 0;
    for (int i = 0; i < len; i++)
        if (r[i] == ANS) ans = i;
    if (ans < 0 || len - 2 - ans != ND + 1) return 0;
    for (int i = 0; i <= ND; i++)
        if (r[ans + 1 + i] != digit(a + b, i)) return 0;
    return 1;
}

/* ---- buffers shared by every phase (allocated once) ----------------------------------------- */
typedef struct run {
    mm_model *m;
    mm_loss *kimi;
    int32_t seq[NB * L], tgt[NB * L], tok[NB];
    int len[NB], pa[NB], pb[NB];
    float x[NB * L], lp[NB * L], w[NB * L], in[NB], logits[NB * V];
    float logp[NB], logp_old[NB], reward[NB], dlogp[NB];
    int64_t lengths[NB];
    mm_tensor *tx, *tlp, *tw, *px, *plp, *pw, *tin, *tlog, *t_logp, *t_old, *t_rew, *t_dlogp;
    void *state;
    size_t state_bytes;
} run;

static void run_open(run *R)
{
    int64_t sx[3] = {NB, L, 1}, sl[2] = {NB, L}, spx[3] = {PB, L, 1}, spl[2] = {PB, L},
            si[2] = {NB, 1}, sg[2] = {NB, V}, sk[2] = {NP, K};
    mm_model_opts o;
    mm_loss_opts lo;
    TRY(mm_model_opts_init(&o));
    o.input_dim = 1, o.max_batch = NB, o.max_seq = L, o.seed = 1;
    TRY(mm_model_create(&R->m, &o));
    g_m = R->m;
    TRY(mm_model_add_embedding(R->m, V, D));
    TRY(mm_model_add_mamba(R->m, 16, 4, 2, 0));
    TRY(mm_model_add_rmsnorm(R->m, 1e-5, 1));
    TRY(mm_model_add_mamba(R->m, 16, 4, 2, 0));
    TRY(mm_model_add_rmsnorm(R->m, 1e-5, 1));
    TRY(mm_model_add_dense(R->m, V, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_finalize(R->m));
    TRY(mm_model_seed(R->m, 2024)); /* the sampling stream */
    TRY(mm_loss_opts_init(&lo, MM_LOSS_KIMI));
    lo.max_batch = NB, lo.group_size = K;
    TRY(mm_loss_create(&R->kimi, &lo));
    TRY(mm_loss_set_f64(R->kimi, MM_LOSS_TAU, g_tau));
    TRY(mm_tensor_wrap(&R->tx, R->x, 3, sx, NULL));
    TRY(mm_tensor_wrap(&R->tlp, R->lp, 2, sl, NULL));
    TRY(mm_tensor_wrap(&R->tw, R->w, 2, sl, NULL));
    TRY(mm_tensor_wrap(&R->px, R->x, 3, spx, NULL));
    TRY(mm_tensor_wrap(&R->plp, R->lp, 2, spl, NULL));
    TRY(mm_tensor_wrap(&R->pw, R->w, 2, spl, NULL));
    TRY(mm_tensor_wrap(&R->tin, R->in, 2, si, NULL));
    TRY(mm_tensor_wrap(&R->tlog, R->logits, 2, sg, NULL));
    TRY(mm_tensor_wrap(&R->t_logp, R->logp, 2, sk, NULL));
    TRY(mm_tensor_wrap(&R->t_old, R->logp_old, 2, sk, NULL));
    TRY(mm_tensor_wrap(&R->t_rew, R->reward, 2, sk, NULL));
    TRY(mm_tensor_wrap(&R->t_dlogp, R->dlogp, 2, sk, NULL));
    TRY(mm_model_decode_state_size(R->m, NB, &R->state_bytes));
    R->state = calloc(1, R->state_bytes);
    if (!R->state) exit(1);
}

static void run_close(run *R)
{
    mm_tensor *t[] = {R->tx,  R->tlp,  R->tw,     R->px,    R->plp,   R->pw,
                      R->tin, R->tlog, R->t_logp, R->t_old, R->t_rew, R->t_dlogp};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) mm_tensor_free(t[i]);
    free(R->state);
    mm_loss_free(R->kimi);
    mm_model_free(R->m);
}

/* Targets (next tokens) on the response positions of every row, -1 elsewhere; x = seq. */
static void set_targets(run *R, int rows)
{
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < L; t++) {
            int resp = t >= PL - 1 && t < PL - 1 + R->len[r];
            R->x[r * L + t] = (float)R->seq[r * L + t];
            R->tgt[r * L + t] = resp ? R->seq[r * L + t + 1] : -1;
        }
}

/* ---- pre-training: cross entropy = -(mean log-probability of the response tokens) ---------- */
static void pretrain(run *R, int steps)
{
    double avg = 0;
    TRY(mm_model_set_optimizer(R->m, MM_OPT_ADAMW));
    TRY(mm_model_set_f64(R->m, MM_MODEL_LR, 3e-3));
    TRY(mm_model_set_f64(R->m, MM_MODEL_MAX_GRAD_NORM, 1.0));
    for (int step = 1; step <= steps; step++) {
        int count = 0;
        double loss = 0;
        for (int r = 0; r < PB; r++) {
            int a, b, n;
            draw_train_problem(&a, &b);
            write_prompt(a, b, R->seq + r * L);
            n = write_solution(a, b, rnd(4) == 0 ? SHORT : LONG, R->seq + r * L + PL);
            for (int t = PL + n; t < L; t++) R->seq[r * L + t] = EOS;
            R->len[r] = n;
            count += n;
        }
        set_targets(R, PB);
        TRY(mm_model_logprob(R->m, R->px, R->tgt, PB * L, R->plp));
        for (int i = 0; i < PB * L; i++) {
            loss -= R->lp[i];
            R->w[i] = R->tgt[i] < 0 ? 0.0f : -1.0f / (float)count;
        }
        TRY(mm_model_zero_grad(R->m));
        TRY(mm_model_logprob_backward(R->m, R->tgt, PB * L, R->pw));
        TRY(mm_model_step(R->m));
        avg += loss / count;
        if (step % 100 == 0) {
            printf("  pre-train step %4d  cross entropy %.4f\n", step, avg / 100);
            avg = 0;
        }
    }
}

/* ---- decoding: rows r hold prompt (pa[r], pb[r]); responses into seq, lengths into len ----- */
static void generate(run *R, double temperature)
{
    int live = NB;
    memset(R->state, 0, R->state_bytes); /* a fresh sequence in every row */
    for (int r = 0; r < NB; r++) {
        write_prompt(R->pa[r], R->pb[r], R->seq + r * L);
        R->len[r] = 0;
    }
    for (int t = 0; t < L - 1 && live > 0; t++) {
        for (int r = 0; r < NB; r++) R->in[r] = (float)R->seq[r * L + t];
        TRY(mm_model_decode_step(R->m, R->tin, R->tlog, R->state, R->state_bytes));
        if (t < PL - 1) continue;
        TRY(mm_model_sample(R->m, R->tlog, temperature, 0, 1.0, R->tok, NB, NULL));
        for (int r = 0; r < NB; r++) {
            int done = R->len[r] > 0 && R->seq[r * L + PL - 1 + R->len[r]] == EOS;
            if (done) {
                R->seq[r * L + t + 1] = EOS; /* padding: never a target */
                continue;
            }
            R->seq[r * L + t + 1] = R->tok[r];
            R->len[r]++;
            if (R->tok[r] == EOS) live--;
        }
    }
}

/* Prints row r's prompt and response as text (digits least significant first). */
static void show_response(const run *R, int r)
{
    static const char sym[V] = {'0', '1', '2', '3', '4', '5', '6', '7', '8',
                                '9', '+', '=', ';', '>', '.', 'L', 'S'};
    printf("  e.g. ");
    for (int t = 0; t < PL + R->len[r]; t++) putchar(sym[R->seq[r * L + t]]);
    printf("  (%d + %d)\n", R->pa[r], R->pb[r]);
}

typedef struct score {
    double acc, mean_len, mean_len_correct;
} score;

/* Greedy decoding of every held-out problem (1429 of the 10^4), NB at a time. */
static score evaluate(run *R, const char *what)
{
    int right = 0, total = 0, idx = 0; /* idx = MAXN a + b */
    double len = 0, len_ok = 0;
    score s;
    while (idx < MAXN * MAXN) {
        int n = 0;
        for (; n < NB && idx < MAXN * MAXN; idx++)
            if (held_out(idx / MAXN, idx % MAXN)) R->pa[n] = idx / MAXN, R->pb[n] = idx % MAXN, n++;
        for (int r = n; r < NB; r++) R->pa[r] = R->pb[r] = 0; /* unused rows of the last batch */
        generate(R, 0.0);
        if (total == 0) show_response(R, 57); /* 3 + 99: two carries */
        for (int r = 0; r < n; r++) {
            int ok = correct(R->pa[r], R->pb[r], R->seq + r * L + PL, R->len[r]);
            right += ok, total++;
            len += R->len[r];
            if (ok) len_ok += R->len[r];
        }
    }
    s.acc = 100.0 * right / total;
    s.mean_len = len / total;
    s.mean_len_correct = right ? len_ok / right : 0.0;
    printf("%-26s held-out accuracy %5.1f%%   mean response length %5.2f   (correct: %5.2f)\n",
           what, s.acc, s.mean_len, s.mean_len_correct);
    fflush(stdout);
    return s;
}

/* ---- RL: one Kimi update on NP prompts x K samples ------------------------------------------ */
static double rl_iteration(run *R, int length_penalty)
{
    double mean_r = 0, loss;
    for (int p = 0; p < NP; p++) {
        int a, b;
        draw_train_problem(&a, &b);
        for (int k = 0; k < K; k++) R->pa[p * K + k] = a, R->pb[p * K + k] = b;
    }
    generate(R, g_temp);
    for (int r = 0; r < NB; r++) {
        R->reward[r] = (float)correct(R->pa[r], R->pb[r], R->seq + r * L + PL, R->len[r]);
        R->lengths[r] = R->len[r];
        mean_r += R->reward[r];
    }
    if (length_penalty) { /* r += weight * lambda (Kimi k1.5 Sec. 2.3.3) */
        TRY(mm_loss_kimi_length_reward(R->kimi, R->lengths, R->t_rew, K, R->t_dlogp));
        for (int r = 0; r < NB; r++) R->reward[r] += (float)(g_len_weight * R->dlogp[r]);
    }
    set_targets(R, NB);
    for (int u = 0; u < g_upd; u++) {
        TRY(mm_model_logprob(R->m, R->tx, R->tgt, NB * L, R->tlp));
        for (int r = 0; r < NB; r++) {
            double s = 0;
            for (int t = 0; t < L; t++) s += R->lp[r * L + t];
            R->logp[r] = (float)s;
            if (u == 0) R->logp_old[r] = R->logp[r]; /* the sampling policy */
        }
        TRY(mm_loss_kimi(R->kimi, R->t_logp, R->t_old, R->t_rew, &loss, R->t_dlogp));
        for (int r = 0; r < NB; r++)
            for (int t = 0; t < L; t++) R->w[r * L + t] = R->dlogp[r];
        /* the loss is minimised: weights are dLoss/dlogp, the gradient descends */
        TRY(mm_model_zero_grad(R->m));
        TRY(mm_model_logprob_backward(R->m, R->tgt, NB * L, R->tw));
        TRY(mm_model_step(R->m));
    }
    return mean_r / NB;
}

static void rl(run *R, int iters, int length_penalty)
{
    double avg = 0;
    TRY(mm_model_set_optimizer(R->m, MM_OPT_ADAM));
    TRY(mm_model_set_f64(R->m, MM_MODEL_LR, g_rl_lr));
    TRY(mm_model_set_f64(R->m, MM_MODEL_MAX_GRAD_NORM, 1.0));
    for (int it = 1; it <= iters; it++) {
        avg += rl_iteration(R, length_penalty);
        if (it % 25 == 0) {
            printf("  %s iteration %4d  mean sample accuracy %.3f\n",
                   length_penalty ? "long2short" : "RL", it, avg / 25);
            avg = 0;
        }
    }
}

static double seconds(struct timespec t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}

int main(int argc, char **argv)
{
    static run R;
    score pre, post, l2s;
    struct timespec t0;
    int ok;
    if (argc > 1) g_pre_steps = atoi(argv[1]);
    if (argc > 2) g_rl_iters = atoi(argv[2]);
    if (argc > 3) g_l2s_iters = atoi(argv[3]);
    if (argc > 4) g_rl_lr = atof(argv[4]);
    if (argc > 5) g_tau = atof(argv[5]);
    if (argc > 6) g_upd = atoi(argv[6]);
    if (argc > 7) g_len_weight = atof(argv[7]);
    if (argc > 8) g_temp = atof(argv[8]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_open(&R);
    {
        int64_t n_params = 0;
        TRY(mm_model_num_params(R.m, &n_params));
        printf("kimi_rl: %d-digit addition with carries; Mamba model of %lld parameters; %d "
               "prompts x %d samples per RL batch\n",
               ND, (long long)n_params, NP, K);
    }
    pretrain(&R, g_pre_steps);
    pre = evaluate(&R, "pre-trained:");
    printf("  (%.1f s)\n", seconds(t0));
    rl(&R, g_rl_iters, 0);
    post = evaluate(&R, "after RL (mm_loss_kimi):");
    printf("  (%.1f s)\n", seconds(t0));
    rl(&R, g_l2s_iters, 1);
    l2s = evaluate(&R, "after long2short:");
    printf("total %.1f s\n", seconds(t0));
    ok = post.acc - pre.acc >= 10.0 && l2s.acc >= post.acc - 2.0 &&
         l2s.mean_len_correct <= 0.8 * post.mean_len_correct;
    printf("goals: RL +%.1f points (>= 10), long2short length %+.1f%% (<= -20%%), accuracy "
           "%+.1f points (>= -2): %s\n",
           post.acc - pre.acc,
           100.0 *
               (l2s.mean_len_correct / (post.mean_len_correct > 0 ? post.mean_len_correct : 1) - 1),
           l2s.acc - post.acc, ok ? "met" : "MISSED");
    run_close(&R);
    return ok ? 0 : 2;
}
