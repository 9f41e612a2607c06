/* SPDX-License-Identifier: MIT */
/* mamba_copy.c — the selective-copying task of the Mamba paper (Gu & Dao 2023, §4.1.1), learned
 * by a small Mamba model built with mm_model, then decoded token by token with the recurrent
 * state (mm_model_decode_step), whose cost per token does not depend on the position.
 *
 *   task:  a sequence of PREFIX tokens holds K data tokens (1..DATA) at random positions among
 *          noise (0), followed by K marker tokens (DATA + 1); at the markers the model must emit
 *          the data tokens in their order. Only selective (input-dependent) state updates can
 *          ignore the noise, which is why a time-invariant SSM (S4) fails it.
 *   model: embedding(V, 32) -> Mamba(d_state 16, d_conv 4, expand 2) -> RMSNorm
 *          -> Mamba -> RMSNorm -> dense(V); cross entropy on the K marker positions; Adam.
 *
 * Build against an installed libmm:  cc -std=c11 mamba_copy.c $(pkg-config --cflags --libs libmm)
 * Run: ./mamba_copy [max_steps]  (default 4000; evaluates every 250 steps on fresh samples and
 * stops at >= 98% token accuracy: about 1750 steps, ~30 s of CPU on one core; exit status 0 when
 * the final accuracy is >= 95%) */
#define _POSIX_C_SOURCE 200809L
#include <mm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { DATA = 8, MARK = DATA + 1, V = DATA + 2, K = 6, PREFIX = 32, T = PREFIX + K };
enum { D = 32, BATCH = 32, EVAL = 256 };

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call,              \
                    mm_status_name(rc_), m ? mm_model_errmsg(m) : "");                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

/* One sample: tokens x[T] (as floats, the embedding's input) and targets y[T] (-100: ignored). */
static void sample(float *x, int32_t *y)
{
    int pos[K], n = 0;
    while (n < K) { /* K distinct positions in the prefix, kept in increasing order */
        int p = (int)rnd(PREFIX), dup = 0;
        for (int i = 0; i < n; i++) dup |= pos[i] == p;
        if (dup) continue;
        pos[n++] = p;
        for (int i = n - 1; i > 0 && pos[i] < pos[i - 1]; i--) {
            int t = pos[i];
            pos[i] = pos[i - 1], pos[i - 1] = t;
        }
    }
    for (int t = 0; t < T; t++) x[t] = 0.0f, y[t] = -100;
    for (int i = 0; i < K; i++) {
        int tok = 1 + (int)rnd(DATA);
        x[pos[i]] = (float)tok;
        x[PREFIX + i] = (float)MARK;
        y[PREFIX + i] = tok;
    }
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Token accuracy on the marker positions of a fresh batch of n samples (forward only). */
static double evaluate(mm_model *m, mm_tensor *x, mm_tensor *logits, int32_t *y, int n)
{
    int right = 0, total = 0;
    for (int s = 0; s < n; s += BATCH) {
        for (int b = 0; b < BATCH; b++) sample(mm_tensor_data(x) + b * T, y + b * T);
        TRY(mm_model_forward(m, x, logits));
        for (int b = 0; b < BATCH; b++)
            for (int t = PREFIX; t < T; t++) {
                right += argmax(mm_tensor_data(logits) + (b * T + t) * V, V) == y[b * T + t];
                total++;
            }
    }
    return (double)right / total;
}

static mm_model *build(void)
{
    mm_model_opts o;
    mm_model *m = NULL;
    TRY(mm_model_opts_init(&o));
    o.input_dim = 1, o.max_batch = BATCH, o.max_seq = T, o.seed = 1;
    TRY(mm_model_create(&m, &o));
    TRY(mm_model_add_embedding(m, V, D));
    TRY(mm_model_add_mamba(m, 16, 4, 2, 0));
    TRY(mm_model_add_rmsnorm(m, 1e-5, 1));
    TRY(mm_model_add_mamba(m, 16, 4, 2, 0));
    TRY(mm_model_add_rmsnorm(m, 1e-5, 1));
    TRY(mm_model_add_dense(m, V, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAMW));
    TRY(mm_model_set_f64(m, MM_MODEL_LR, 3e-3));
    TRY(mm_model_set_f64(m, MM_MODEL_MAX_GRAD_NORM, 1.0));
    return m;
}

/* Decodes one fresh sample token by token and prints what the model emits at the markers. */
static int decode_demo(mm_model *m)
{
    float xs[T];
    int32_t ys[T];
    int64_t s1[2] = {1, 1}, s2[2] = {1, V};
    mm_tensor *x1 = NULL, *y1 = NULL;
    size_t bytes;
    void *state;
    int right = 0;
    sample(xs, ys);
    TRY(mm_tensor_create(&x1, 2, s1, NULL));
    TRY(mm_tensor_create(&y1, 2, s2, NULL));
    TRY(mm_model_decode_state_size(m, 1, &bytes));
    state = calloc(1, bytes);
    if (!state) exit(1);
    printf("decode (state %zu bytes):\n  input :", bytes);
    for (int t = 0; t < T; t++)
        printf(" %c", xs[t] == 0 ? '.' : xs[t] == MARK ? '?' : '0' + (int)xs[t]);
    printf("\n  output:");
    for (int t = 0; t < T; t++) {
        mm_tensor_data(x1)[0] = xs[t];
        TRY(mm_model_decode_step(m, x1, y1, state, bytes));
        if (t >= PREFIX) {
            int p = argmax(mm_tensor_data(y1), V);
            right += p == ys[t];
            printf(" %d", p);
        } else {
            printf("  ");
        }
    }
    printf("\n  %d of %d marker tokens right\n", right, K);
    free(state);
    mm_tensor_free(x1);
    mm_tensor_free(y1);
    return right;
}

int main(int argc, char **argv)
{
    int max_steps = argc > 1 ? atoi(argv[1]) : 4000;
    int64_t sx[3] = {BATCH, T, 1}, sl[3] = {BATCH, T, V}, s2[2] = {BATCH * T, V};
    mm_model *m = NULL;
    mm_loss *ce = NULL;
    mm_loss_opts lo;
    mm_tensor *x = NULL, *logits = NULL, *dlogits = NULL, *l2 = NULL, *d2 = NULL;
    int32_t y[BATCH * T];
    double loss = 0.0, acc = 0.0, t0 = (double)clock();
    int step;
    m = build();
    TRY(mm_loss_opts_init(&lo, MM_LOSS_CROSS_ENTROPY));
    lo.max_batch = BATCH * T, lo.max_dim = V;
    TRY(mm_loss_create(&ce, &lo));
    TRY(mm_tensor_create(&x, 3, sx, NULL));
    TRY(mm_tensor_create(&logits, 3, sl, NULL));
    TRY(mm_tensor_create(&dlogits, 3, sl, NULL));
    /* [B*T, V] views of the same buffers for the loss */
    TRY(mm_tensor_wrap(&l2, mm_tensor_data(logits), 2, s2, NULL));
    TRY(mm_tensor_wrap(&d2, mm_tensor_data(dlogits), 2, s2, NULL));
    printf("selective copying: %d data tokens among %d positions, vocabulary %d\n", K, PREFIX, V);
    for (step = 1; step <= max_steps; step++) {
        for (int b = 0; b < BATCH; b++) sample(mm_tensor_data(x) + b * T, y + b * T);
        TRY(mm_model_zero_grad(m));
        TRY(mm_model_forward(m, x, logits));
        if (mm_loss_cross_entropy(ce, l2, y, BATCH * T, &loss, d2) != MM_OK) {
            fprintf(stderr, "loss: %s\n", mm_loss_errmsg(ce));
            return 1;
        }
        TRY(mm_model_backward(m, dlogits, NULL));
        TRY(mm_model_step(m));
        if (step % 250 == 0) {
            acc = evaluate(m, x, logits, y, EVAL);
            printf("step %5d  loss %.4f  held-out token accuracy %.1f%%  (%.1f s)\n", step, loss,
                   100.0 * acc, ((double)clock() - t0) / CLOCKS_PER_SEC);
            fflush(stdout);
            if (acc >= 0.98) break;
        }
    }
    acc = evaluate(m, x, logits, y, 4 * EVAL);
    printf("final held-out token accuracy %.1f%% (target >= 95%%)\n", 100.0 * acc);
    decode_demo(m);
    mm_tensor_free(x), mm_tensor_free(logits), mm_tensor_free(dlogits);
    mm_tensor_free(l2), mm_tensor_free(d2);
    mm_loss_free(ce);
    mm_model_free(m);
    return acc >= 0.95 ? 0 : 2;
}
