/* SPDX-License-Identifier: MIT */
/* stream_lm.c — a character-level language model with causal linear attention: trained with
 * mm_model on the text below, then generating token by token through mm_attn_step, whose cost
 * per token does not grow with the position (the attention state is d x dv per head).
 *
 *   model: embedding(V, 48) -> 2 x attention block (MM_ATTN_LINEAR, elu+1, causal, 4 heads of
 *          12) -> LayerNorm -> dense(V); trained with Adam on windows of 64 characters.
 *   streaming: the same parameters, read through mm_model_params, evaluated one token at a time
 *          with one mm_attn handle per block (the block's layout is documented in mm.h:
 *          non-affine LayerNorm, in_proj rows q | k | v head after head, out_proj).
 *
 * Build against an installed libmm:  cc -std=c11 stream_lm.c $(pkg-config --cflags --libs libmm)
 * Run: ./stream_lm [train_steps]   (default 1000; the run takes a few seconds) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char k_text[] =
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such "
    "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered as the rightful property of "
    "some one or other of their daughters. My dear Mr. Bennet, said his lady to him one day, "
    "have you heard that Netherfield Park is let at last? Mr. Bennet replied that he had not. "
    "But it is, returned she; for Mrs. Long has just been here, and she told me all about it. "
    "Mr. Bennet made no answer. Do you not want to know who has taken it? cried his wife "
    "impatiently. You want to tell me, and I have no objection to hearing it. This was "
    "invitation enough. Why, my dear, you must know, Mrs. Long says that Netherfield is taken "
    "by a young man of large fortune from the north of England; that he came down on Monday "
    "in a chaise and four to see the place, and was so much delighted with it, that he agreed "
    "with Mr. Morris immediately; that he is to take possession before Michaelmas, and some "
    "of his servants are to be in the house by the end of next week. What is his name? "
    "Bingley. Is he married or single? Oh! Single, my dear, to be sure! A single man of large "
    "fortune; four or five thousand a year. What a fine thing for our girls! ";

enum { D = 48, HEADS = 4, DK = 12, BLOCKS = 2, T = 64, BATCH = 8, GEN = 10001 };

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, mm_status_str(rc_));     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t g_rng = 88172645463325252ULL;
static double uniform(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- vocabulary ---------------------------------------------------------------------------- */
static int g_vocab, g_id[256];
static char g_chr[256];
static void build_vocab(void)
{
    for (int c = 0; c < 256; c++) g_id[c] = -1;
    for (const char *p = k_text; *p; p++)
        if (g_id[(unsigned char)*p] < 0) {
            g_id[(unsigned char)*p] = g_vocab;
            g_chr[g_vocab++] = *p;
        }
}

static void attn_options(mm_attn_opts *o)
{
    TRY(mm_attn_opts_init(o, MM_ATTN_LINEAR));
    o->feature_map = MM_FMAP_ELU1;
    o->causal = 1;
    o->n_heads = HEADS;
    o->d_head = DK;
    o->dv = DK;
}

static mm_model *build_model(void)
{
    mm_model_opts mo;
    mm_attn_opts ao;
    mm_model *m = NULL;
    TRY(mm_model_opts_init(&mo));
    mo.input_dim = 1, mo.max_batch = BATCH, mo.max_seq = T, mo.seed = 7;
    TRY(mm_model_create(&m, &mo));
    TRY(mm_model_add_embedding(m, g_vocab, D));
    attn_options(&ao);
    for (int b = 0; b < BLOCKS; b++) TRY(mm_model_add_attention(m, &ao));
    TRY(mm_model_add_layernorm(m, 1e-5, 1));
    TRY(mm_model_add_dense(m, g_vocab, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAM));
    TRY(mm_model_set_f64(m, MM_MODEL_LR, 3e-3));
    return m;
}

/* Softmax cross-entropy of logits [rows, V] against targets; writes dL/dlogits (mean). */
static double cross_entropy(const float *logits, const int *tgt, int64_t rows, float *dlogits)
{
    double loss = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + r * g_vocab;
        double mx = z[0], s = 0;
        for (int v = 1; v < g_vocab; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < g_vocab; v++) s += exp(z[v] - mx);
        loss += log(s) + mx - z[tgt[r]];
        for (int v = 0; v < g_vocab; v++)
            dlogits[r * g_vocab + v] = (float)((exp(z[v] - mx) / s - (v == tgt[r])) / (double)rows);
    }
    return loss / (double)rows;
}

static void train(mm_model *m, int steps)
{
    const int64_t n = (int64_t)strlen(k_text), rows = BATCH * T;
    int64_t sx[3] = {BATCH, T, 1}, sy[3] = {BATCH, T, 0};
    mm_tensor *x = NULL, *y = NULL, *dy = NULL;
    int *tgt = malloc(sizeof(int) * (size_t)rows);
    double avg = 0;
    sy[2] = g_vocab;
    TRY(mm_tensor_create(&x, 3, sx, NULL));
    TRY(mm_tensor_create(&y, 3, sy, NULL));
    TRY(mm_tensor_create(&dy, 3, sy, NULL));
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < BATCH; b++) { /* a random window; the target is the next char */
            const int64_t at = (int64_t)(uniform() * (double)(n - T - 1));
            for (int t = 0; t < T; t++) {
                mm_tensor_data(x)[b * T + t] = (float)g_id[(unsigned char)k_text[at + t]];
                tgt[b * T + t] = g_id[(unsigned char)k_text[at + t + 1]];
            }
        }
        TRY(mm_model_forward(m, x, y));
        avg += cross_entropy(mm_tensor_data(y), tgt, rows, mm_tensor_data(dy));
        TRY(mm_model_zero_grad(m));
        TRY(mm_model_backward(m, dy, NULL));
        TRY(mm_model_step(m));
        if (step % 50 == 0) {
            printf("step %4d  loss %.3f\n", step, avg / 50);
            avg = 0;
        }
    }
    free(tgt);
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dy);
}

/* ---- streaming generation ------------------------------------------------------------------- */
typedef struct streamer {
    const float *emb, *blk[BLOCKS], *ln_w, *ln_b, *out_w, *out_b;
    mm_attn *attn[BLOCKS];
    float x[D], xn[D], pr[3 * HEADS * DK], am[HEADS * DK], logits[256];
    mm_tensor *q[BLOCKS], *k[BLOCKS], *v[BLOCKS], *o[BLOCKS];
    double attn_ns; /* time of the last mm_attn_step of block 0 */
} streamer;

/* y[n] = W[n, k] x + b */
static void matvec(const float *w, const float *b, const float *x, int64_t n, int64_t k, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        double a = b ? b[i] : 0;
        for (int64_t j = 0; j < k; j++) a += (double)w[i * k + j] * x[j];
        y[i] = (float)a;
    }
}

static void layernorm(const float *x, const float *w, const float *b, float *y)
{
    double mu = 0, ss = 0, inv;
    for (int i = 0; i < D; i++) mu += x[i];
    mu /= D;
    for (int i = 0; i < D; i++) ss += (x[i] - mu) * (x[i] - mu);
    inv = 1.0 / sqrt(ss / D + 1e-5);
    for (int i = 0; i < D; i++) y[i] = (float)((x[i] - mu) * inv * (w ? w[i] : 1) + (b ? b[i] : 0));
}

static void streamer_open(streamer *s, mm_model *m)
{
    const int64_t pw = 3 * HEADS * DK, aw = HEADS * DK;
    int64_t s3[3] = {1, HEADS, DK};
    float *p = NULL;
    mm_attn_opts ao;
    TRY(mm_model_params(m, &p, NULL));
    s->emb = p; /* layer order: embedding, blocks, layernorm, dense */
    p += (int64_t)g_vocab * D;
    for (int b = 0; b < BLOCKS; b++) {
        s->blk[b] = p;
        p += pw * D + pw + D * aw + D;
        attn_options(&ao);
        TRY(mm_attn_create(&s->attn[b], &ao));
        /* q, k, v are views of the projection row: q heads, then k heads, then v heads */
        TRY(mm_tensor_wrap(&s->q[b], s->pr, 3, s3, NULL));
        TRY(mm_tensor_wrap(&s->k[b], s->pr + HEADS * DK, 3, s3, NULL));
        TRY(mm_tensor_wrap(&s->v[b], s->pr + 2 * HEADS * DK, 3, s3, NULL));
        TRY(mm_tensor_wrap(&s->o[b], s->am, 3, s3, NULL));
    }
    s->ln_w = p, s->ln_b = p + D;
    s->out_w = p + 2 * D, s->out_b = s->out_w + (int64_t)g_vocab * D;
}

/* Feeds one token; leaves the next-token logits in s->logits. */
static void streamer_step(streamer *s, int tok)
{
    const int64_t pw = 3 * HEADS * DK, aw = HEADS * DK;
    memcpy(s->x, s->emb + (int64_t)tok * D, sizeof s->x);
    for (int b = 0; b < BLOCKS; b++) {
        const float *w_in = s->blk[b], *b_in = w_in + pw * D, *w_out = b_in + pw,
                    *b_out = w_out + D * aw;
        float y[D];
        layernorm(s->x, NULL, NULL, s->xn);
        matvec(w_in, b_in, s->xn, pw, D, s->pr);
        {
            const double t0 = now_ns();
            TRY(mm_attn_step(s->attn[b], s->q[b], s->k[b], s->v[b], NULL, s->o[b]));
            if (b == 0) s->attn_ns = now_ns() - t0;
        }
        matvec(w_out, b_out, s->am, D, aw, y);
        for (int i = 0; i < D; i++) s->x[i] += y[i];
    }
    layernorm(s->x, s->ln_w, s->ln_b, s->xn);
    matvec(s->out_w, s->out_b, s->xn, g_vocab, D, s->logits);
}

static int sample(const float *logits, double temp)
{
    double mx = logits[0], s = 0, u;
    for (int v = 1; v < g_vocab; v++) mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < g_vocab; v++) s += exp((logits[v] - mx) / temp);
    u = uniform() * s;
    for (int v = 0; v < g_vocab; v++)
        if ((u -= exp((logits[v] - mx) / temp)) <= 0) return v;
    return g_vocab - 1;
}

static void generate(mm_model *m)
{
    static streamer s;
    const char *prompt = "Mr. Bennet";
    const int at[3] = {10, 1000, GEN - 1};
    double model_us[3] = {0, 0, 0}, attn_us[3] = {0, 0, 0};
    int tok = 0;
    streamer_open(&s, m);
    printf("\n%s", prompt);
    for (const char *p = prompt; *p; p++) streamer_step(&s, tok = g_id[(unsigned char)*p]);
    for (int pos = (int)strlen(prompt); pos < GEN; pos++) {
        double t0;
        tok = sample(s.logits, 0.7);
        if (pos < 160) putchar(g_chr[tok]);
        if (pos == 160) printf("...\n(generation continues silently to position %d)\n\n", GEN - 1);
        t0 = now_ns();
        streamer_step(&s, tok);
        for (int i = 0; i < 3; i++)
            if (pos == at[i]) model_us[i] = (now_ns() - t0) / 1e3, attn_us[i] = s.attn_ns / 1e3;
    }
    printf("per-token latency (flat in the position: the state is d x dv per head):\n");
    for (int i = 0; i < 3; i++)
        printf("  position %5d: model step %6.1f us, attention step (block 0) %5.2f us\n", at[i],
               model_us[i], attn_us[i]);
    for (int b = 0; b < BLOCKS; b++) {
        mm_attn_free(s.attn[b]);
        mm_tensor_free(s.q[b]), mm_tensor_free(s.k[b]), mm_tensor_free(s.v[b]),
            mm_tensor_free(s.o[b]);
    }
}

int main(int argc, char **argv)
{
    const int steps = argc > 1 ? atoi(argv[1]) : 1000;
    mm_model *m;
    build_vocab();
    printf("stream_lm: %d characters of text, vocabulary %d, %d training steps\n",
           (int)strlen(k_text), g_vocab, steps);
    m = build_model();
    train(m, steps);
    generate(m);
    mm_model_free(m);
    return 0;
}
