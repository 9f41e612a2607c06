/* SPDX-License-Identifier: MIT */
/* blip_capfilt.c — BLIP's three objectives and CapFilt on synthetic image-text pairs.
 *
 * Data. An "image" holds NS = 3 distinct concepts out of NC = 24; it is P = 4 patch tokens
 * (16-D): one noisy vector per concept and one background patch, in random order. Its true
 * caption is "BOS c1 c2 c3 EOS" with the concepts in increasing order. In the training set a
 * known fraction (NOISE, 25%) of captions is corrupted: replaced by the caption of another
 * image (as alt-text scraped from the web often describes something else). The held-out set is
 * clean, with distinct captions.
 *
 * Models (all mm_model, Adam):
 *   image encoder   per-patch MLP -> image tokens [B, P, E] (shared by the three objectives)
 *   text encoder    embedding -> self-attention -> tokens; ITC uses the mean token
 *   ITM encoder     embedding -> self-attention -> cross-attention to the image tokens ->
 *                   self-attention; a dense head on the BOS token gives match / no match
 *   decoder (LM)    embedding -> causal self-attention -> cross-attention -> MLP -> vocabulary
 * One training step: ITC (mm_loss_itc, alpha 0: no momentum encoder, so the momentum features
 * are the online ones); ITM on the B positive pairs and 2B hard negatives drawn with
 * mm_loss_blip_hard_negatives from the ITC similarities (a harder text for each image and a
 * harder image for each text); LM with label-smoothed (0.1) cross entropy, teacher forcing.
 * The image encoder receives the gradients of all three (the cross-attention layers pass the
 * context gradient back through mm_model_backward_ctx).
 *
 * CapFilt. As in BLIP, the pre-trained model is then fine-tuned on a small clean set (COCO's
 * role; N_CLEAN pairs, n_steps / 5 steps of the same joint objective at the lower learning
 * rate FT_LR): pre-trained on noisy
 * pairs alone, the ITM head learns to call some corrupted pairs matches (it is trained to), and
 * the example prints that filter too. The fine-tuned ITM head filters the training pairs
 * (p(match) < 0.5: corrupted); the printed precision and recall are those of finding the
 * corrupted pairs. The fine-tuned decoder captions every training image (greedy); the filter
 * also judges those captions. The CapFilt set is the kept web pairs plus the kept synthetic
 * captions (a synthetic caption equal to a kept web caption is not added twice). Finally two
 * fresh ITC models train for the same number of steps on the same batch positions, one on the
 * noisy set and one on the CapFilt set, and the held-out image->text R@1 of both is printed.
 *
 *   build/examples/blip_capfilt [--steps N]        (make blip; N = 3000 by default)
 *
 * Exit status 0 when the filter's precision and recall are both >= 0.9 and the CapFilt set
 * raises held-out R@1 by at least 0.02 over the noisy set; 1 otherwise. docs/LOSSES.md has
 * the numbers of a run.
 */
#include <math.h>
#include <mm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NC = 24, NS = 3, P = 4, DI = 16, T = 5, TD = T - 1, V = NC + 3 };
enum { BOS = NC, EOS = NC + 1, PAD = NC + 2 };
enum { E = 32, HEADS = 2, DH = 16, HID = 64 };
enum { N_TRAIN = 4096, N_CLEAN = 1024, N_TEST = 512, B = 64, B3 = 3 * B };
#define NOISE 0.25
#define TEMP  0.07
#define FT_LR 5e-4 /* fine-tuning learning rate (pre-training: 2e-3) */

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                   \
                    mm_status_str(rc_));                                                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- a tiny seeded RNG for the data ------------------------------------------------------- */
static uint64_t g_rng = 0x2545f4914f6cdd1dULL;

static double uniform(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    double u1 = uniform(), u2 = uniform();
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int randint(int n) { return (int)(uniform() * n); }

/* ---- data ---------------------------------------------------------------------------------- */
typedef struct pair {
    float img[P * DI];
    int cap[T];   /* the caption used for training (corrupted or not) */
    int truth[T]; /* the image's true caption */
    int corrupt;
} pair;

static float g_concept[NC][DI];

static void draw_image(pair *p)
{
    int c[NS], slot[P];
    for (int k = 0; k < NS; k++) {
        int dup;
        do {
            c[k] = randint(NC);
            dup = 0;
            for (int j = 0; j < k; j++) dup |= c[j] == c[k];
        } while (dup);
    }
    for (int a = 0; a < NS; a++) /* sort: the caption lists concepts in increasing order */
        for (int b = a + 1; b < NS; b++)
            if (c[b] < c[a]) {
                int t = c[a];
                c[a] = c[b], c[b] = t;
            }
    for (int s = 0; s < P; s++) slot[s] = s;
    for (int s = P - 1; s > 0; s--) {
        int j = randint(s + 1), t = slot[s];
        slot[s] = slot[j], slot[j] = t;
    }
    for (int s = 0; s < P; s++) {
        float *x = p->img + slot[s] * DI;
        for (int i = 0; i < DI; i++)
            x[i] = (float)((s < NS ? g_concept[c[s]][i] : 0.0) + 0.3 * normal());
    }
    p->truth[0] = BOS, p->truth[T - 1] = EOS;
    for (int k = 0; k < NS; k++) p->truth[1 + k] = c[k];
    memcpy(p->cap, p->truth, sizeof p->cap);
    p->corrupt = 0;
}

static int same_cap(const int *a, const int *b) { return memcmp(a, b, sizeof(int) * T) == 0; }

static void make_data(pair *train, pair *clean, pair *test)
{
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < DI; i++) g_concept[c][i] = (float)normal();
    for (int n = 0; n < N_TRAIN; n++) draw_image(&train[n]);
    for (int n = 0; n < N_TRAIN; n++) {
        int j;
        if (uniform() >= NOISE) continue;
        do j = randint(N_TRAIN);
        while (same_cap(train[j].truth, train[n].truth));
        memcpy(train[n].cap, train[j].truth, sizeof train[n].cap);
        train[n].corrupt = 1;
    }
    for (int n = 0; n < N_CLEAN; n++) draw_image(&clean[n]);
    for (int n = 0; n < N_TEST; n++) { /* clean, distinct captions */
        int dup;
        do {
            draw_image(&test[n]);
            dup = 0;
            for (int j = 0; j < n && !dup; j++) dup = same_cap(test[j].truth, test[n].truth);
        } while (dup);
    }
}

/* ---- models -------------------------------------------------------------------------------- */
static mm_model *new_model(int64_t in_dim, int64_t max_batch, int64_t max_seq, uint64_t seed)
{
    mm_model_opts o;
    mm_model *m = NULL;
    TRY(mm_model_opts_init(&o));
    o.input_dim = in_dim, o.max_batch = max_batch, o.max_seq = max_seq, o.seed = seed;
    TRY(mm_model_create(&m, &o));
    return m;
}

static void add_self_attention(mm_model *m, int causal)
{
    mm_attn_opts a;
    TRY(mm_attn_opts_init(&a, MM_ATTN_SOFTMAX));
    a.n_heads = HEADS, a.d_head = DH, a.causal = causal;
    TRY(mm_model_add_attention(m, &a));
}

static void ready(mm_model *m, double lr)
{
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAM));
    TRY(mm_model_set_f64(m, MM_MODEL_LR, lr));
}

static mm_model *make_image_encoder(uint64_t seed)
{
    mm_model *m = new_model(DI, N_TEST, P, seed);
    TRY(mm_model_add_dense(m, E, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_activation(m, MM_ACT_GELU));
    TRY(mm_model_add_dense(m, E, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_layernorm(m, 1e-5, 1));
    ready(m, 2e-3);
    return m;
}

static mm_model *make_text_encoder(uint64_t seed)
{
    mm_model *m = new_model(1, N_TEST, T, seed);
    TRY(mm_model_add_embedding(m, V, E));
    add_self_attention(m, 0);
    TRY(mm_model_add_layernorm(m, 1e-5, 1));
    ready(m, 2e-3);
    return m;
}

static mm_model *make_itm_encoder(uint64_t seed)
{
    mm_model *m = new_model(1, B3, T, seed);
    TRY(mm_model_add_embedding(m, V, E));
    add_self_attention(m, 0);
    TRY(mm_model_add_cross_attention(m, HEADS, DH, E, P));
    add_self_attention(m, 0);
    TRY(mm_model_add_layernorm(m, 1e-5, 1));
    ready(m, 2e-3);
    return m;
}

static mm_model *make_itm_head(uint64_t seed)
{
    mm_model *m = new_model(E, B3, 1, seed);
    TRY(mm_model_add_dense(m, HID, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_activation(m, MM_ACT_GELU));
    TRY(mm_model_add_dense(m, 2, 1, MM_INIT_DEFAULT, 1.0));
    ready(m, 2e-3);
    return m;
}

static mm_model *make_decoder(uint64_t seed)
{
    mm_model *m = new_model(1, B, TD, seed);
    TRY(mm_model_add_embedding(m, V, E));
    add_self_attention(m, 1);
    TRY(mm_model_add_cross_attention(m, HEADS, DH, E, P));
    TRY(mm_model_add_dense(m, HID, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_activation(m, MM_ACT_GELU));
    TRY(mm_model_add_dense(m, V, 1, MM_INIT_DEFAULT, 1.0));
    ready(m, 2e-3);
    return m;
}

static mm_tensor *wrap(float *data, int nd, int64_t a, int64_t b, int64_t c)
{
    int64_t s[3] = {a, b, c};
    mm_tensor *t = NULL;
    TRY(mm_tensor_wrap(&t, data, nd, s, NULL));
    return t;
}

static mm_loss *new_loss(int32_t kind, int64_t max_batch, int64_t max_dim, uint64_t seed)
{
    mm_loss_opts o;
    mm_loss *h = NULL;
    TRY(mm_loss_opts_init(&o, kind));
    o.max_batch = max_batch, o.max_dim = max_dim, o.seed = seed;
    TRY(mm_loss_create(&h, &o));
    return h;
}

/* ---- ITC: two towers and their pooled, normalised embeddings -------------------------------- */
typedef struct itc {
    mm_model *img, *txt;
    mm_loss *loss; /* MM_LOSS_ITC (also normalisation and hard negatives) */
} itc;

/* Per-call buffers, sized for the largest batch (N_TEST). */
static float g_ximg[N_TEST * P * DI], g_tok[N_TEST * P * E], g_xtxt[N_TEST * T];
static float g_ttok[N_TEST * T * E], g_pi[N_TEST * E], g_pt[N_TEST * E];
static float g_ei[N_TEST * E], g_et[N_TEST * E];

/* Image tokens of images (pointers to rows of P * DI floats) into g_tok; pooled into g_pi. */
static void encode_images(mm_model *img, const float *const *ims, int n)
{
    mm_tensor *x = wrap(g_ximg, 3, n, P, DI), *y = wrap(g_tok, 3, n, P, E);
    for (int i = 0; i < n; i++) memcpy(g_ximg + i * P * DI, ims[i], sizeof(float) * P * DI);
    TRY(mm_model_forward(img, x, y));
    for (int i = 0; i < n; i++)
        for (int e = 0; e < E; e++) {
            float s = 0;
            for (int p = 0; p < P; p++) s += g_tok[(i * P + p) * E + e];
            g_pi[i * E + e] = s / P;
        }
    mm_tensor_free(x), mm_tensor_free(y);
}

static void encode_texts(mm_model *txt, const int *const *caps, int n)
{
    mm_tensor *x = wrap(g_xtxt, 3, n, T, 1), *y = wrap(g_ttok, 3, n, T, E);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) g_xtxt[i * T + t] = (float)caps[i][t];
    TRY(mm_model_forward(txt, x, y));
    for (int i = 0; i < n; i++)
        for (int e = 0; e < E; e++) {
            float s = 0;
            for (int t = 0; t < T; t++) s += g_ttok[(i * T + t) * E + e];
            g_pt[i * E + e] = s / T;
        }
    mm_tensor_free(x), mm_tensor_free(y);
}

static void normalise(mm_loss *h, float *u, float *x, int n)
{
    mm_tensor *tu = wrap(u, 2, n, E, 0), *tx = wrap(x, 2, n, E, 0);
    TRY(mm_loss_l2_normalize(h, tu, tx));
    mm_tensor_free(tu), mm_tensor_free(tx);
}

/* ITC loss on the last encoded batch of n pairs; writes d(pooled) into dpi, dpt. */
static double itc_grads(itc *m, int n, float *dpi, float *dpt)
{
    static float dei[B * E], det[B * E];
    mm_tensor *ei = wrap(g_ei, 2, n, E, 0), *et = wrap(g_et, 2, n, E, 0);
    mm_tensor *tdei = wrap(dei, 2, n, E, 0), *tdet = wrap(det, 2, n, E, 0);
    mm_tensor *pi = wrap(g_pi, 2, n, E, 0), *pt = wrap(g_pt, 2, n, E, 0);
    mm_tensor *tdpi = wrap(dpi, 2, n, E, 0), *tdpt = wrap(dpt, 2, n, E, 0);
    double l;
    normalise(m->loss, g_pi, g_ei, n);
    normalise(m->loss, g_pt, g_et, n);
    TRY(mm_loss_itc(m->loss, ei, et, ei, et, NULL, NULL, &l, tdei, tdet));
    TRY(mm_loss_l2_normalize_backward(m->loss, pi, tdei, tdpi));
    TRY(mm_loss_l2_normalize_backward(m->loss, pt, tdet, tdpt));
    mm_tensor_free(ei), mm_tensor_free(et), mm_tensor_free(tdei), mm_tensor_free(tdet);
    mm_tensor_free(pi), mm_tensor_free(pt), mm_tensor_free(tdpi), mm_tensor_free(tdpt);
    return l;
}

/* Spreads d(mean) back over the tokens and runs the text tower's backward. */
static void text_backward(mm_model *txt, const float *dpt, int n)
{
    static float dtok[B * T * E];
    mm_tensor *dy = wrap(dtok, 3, n, T, E);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++)
            for (int e = 0; e < E; e++) dtok[(i * T + t) * E + e] = dpt[i * E + e] / T;
    TRY(mm_model_backward(txt, dy, NULL));
    mm_tensor_free(dy);
}

static itc make_itc(uint64_t seed)
{
    itc m;
    m.img = make_image_encoder(seed);
    m.txt = make_text_encoder(seed + 1);
    m.loss = new_loss(MM_LOSS_ITC, B, E, seed + 2);
    TRY(mm_loss_set_f64(m.loss, MM_LOSS_TEMP, TEMP));
    TRY(mm_loss_set_f64(m.loss, MM_LOSS_ALPHA, 0.0));
    return m;
}

static void free_itc(itc *m)
{
    mm_model_free(m->img), mm_model_free(m->txt), mm_loss_free(m->loss);
}

/* Image -> text R@1 on the held-out pairs. */
static double recall_at_1(itc *m, const pair *test)
{
    static const float *ims[N_TEST];
    static const int *caps[N_TEST];
    int hits = 0;
    for (int i = 0; i < N_TEST; i++) ims[i] = test[i].img, caps[i] = test[i].truth;
    encode_images(m->img, ims, N_TEST);
    encode_texts(m->txt, caps, N_TEST);
    normalise(m->loss, g_pi, g_ei, N_TEST);
    normalise(m->loss, g_pt, g_et, N_TEST);
    for (int i = 0; i < N_TEST; i++) {
        int best = 0;
        double bs = -1e30;
        for (int j = 0; j < N_TEST; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += (double)g_ei[i * E + e] * g_et[j * E + e];
            if (s > bs) bs = s, best = j;
        }
        hits += best == i;
    }
    return (double)hits / N_TEST;
}

/* ---- the joint BLIP step -------------------------------------------------------------------- */
typedef struct blip {
    itc c;
    mm_model *itm, *head, *dec;
    mm_loss *ce_itm, *ce_lm;
} blip;

static float g_dtok[B * P * E]; /* gradient of the image tokens, summed over objectives */

/* ITM logits [n, 2] of n (caption, image-token) pairs; tokens [n, P, E] in ctx. Keeps the
 * forward for itm_backward. */
static void itm_forward(blip *m, const int *const *caps, const float *ctx, int n, float *logits)
{
    static float x[B3 * T], y[B3 * T * E], cls[B3 * E];
    mm_tensor *tx = wrap(x, 3, n, T, 1), *ty = wrap(y, 3, n, T, E);
    mm_tensor *tc = wrap((float *)ctx, 3, n, P, E), *tcls = wrap(cls, 2, n, E, 0);
    mm_tensor *tl = wrap(logits, 2, n, 2, 0);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) x[i * T + t] = (float)caps[i][t];
    TRY(mm_model_forward_ctx(m->itm, tx, tc, ty));
    for (int i = 0; i < n; i++) memcpy(cls + i * E, y + i * T * E, sizeof(float) * E); /* BOS */
    TRY(mm_model_forward(m->head, tcls, tl));
    mm_tensor_free(tx), mm_tensor_free(ty), mm_tensor_free(tc), mm_tensor_free(tcls);
    mm_tensor_free(tl);
}

/* Backward of itm_forward from dlogits; the context gradient goes into dctx [n, P, E]. */
static void itm_backward(blip *m, float *dlogits, float *dctx, int n)
{
    static float dcls[B3 * E], dy[B3 * T * E];
    mm_tensor *tdl = wrap(dlogits, 2, n, 2, 0), *tdc = wrap(dcls, 2, n, E, 0);
    mm_tensor *tdy = wrap(dy, 3, n, T, E), *tctx = wrap(dctx, 3, n, P, E);
    TRY(mm_model_backward(m->head, tdl, tdc));
    memset(dy, 0, sizeof(float) * (size_t)n * T * E);
    for (int i = 0; i < n; i++) memcpy(dy + i * T * E, dcls + i * E, sizeof(float) * E);
    TRY(mm_model_backward_ctx(m->itm, tdy, NULL, tctx));
    mm_tensor_free(tdl), mm_tensor_free(tdc), mm_tensor_free(tdy), mm_tensor_free(tctx);
}

/* ITM on B positives and 2B hard negatives; adds the image-token gradient into g_dtok. */
static double itm_step(blip *m, const pair *const *bp)
{
    static float ctx[B3 * P * E], logits[B3 * 2], dlogits[B3 * 2], dctx[B3 * P * E];
    static float sim[B * B];
    static const int *caps[B3];
    int32_t neg_t[B], neg_i[B], target[B3], src[B3];
    mm_tensor *ts = wrap(sim, 2, B, B, 0), *tl = wrap(logits, 2, B3, 2, 0);
    mm_tensor *tdl = wrap(dlogits, 2, B3, 2, 0);
    double l;
    for (int i = 0; i < B; i++) /* the ITC similarities, as BLIP samples them */
        for (int j = 0; j < B; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += (double)g_ei[i * E + e] * g_et[j * E + e];
            sim[i * B + j] = (float)(s / TEMP);
        }
    TRY(mm_loss_blip_hard_negatives(m->c.loss, ts, NULL, 0, neg_t)); /* a text per image */
    TRY(mm_loss_blip_hard_negatives(m->c.loss, ts, NULL, 1, neg_i)); /* an image per text */
    for (int i = 0; i < B; i++) {
        caps[i] = bp[i]->cap, src[i] = i, target[i] = 1;
        caps[B + i] = bp[neg_t[i] >= 0 ? neg_t[i] : i]->cap, src[B + i] = i, target[B + i] = 0;
        caps[2 * B + i] = bp[i]->cap, src[2 * B + i] = neg_i[i] >= 0 ? neg_i[i] : i;
        target[2 * B + i] = 0;
    }
    for (int r = 0; r < B3; r++)
        memcpy(ctx + r * P * E, g_tok + src[r] * P * E, sizeof(float) * P * E);
    itm_forward(m, caps, ctx, B3, logits);
    TRY(mm_loss_cross_entropy(m->ce_itm, tl, target, B3, &l, tdl));
    itm_backward(m, dlogits, dctx, B3);
    for (int r = 0; r < B3; r++)
        for (int k = 0; k < P * E; k++) g_dtok[src[r] * P * E + k] += dctx[r * P * E + k];
    mm_tensor_free(ts), mm_tensor_free(tl), mm_tensor_free(tdl);
    return l;
}

/* Decoder logits [n, TD, V] for inputs x [n, TD] (token ids) and image tokens ctx. */
static void dec_forward(blip *m, const float *x, const float *ctx, int n, float *logits)
{
    mm_tensor *tx = wrap((float *)x, 3, n, TD, 1), *tc = wrap((float *)ctx, 3, n, P, E);
    mm_tensor *ty = wrap(logits, 3, n, TD, V);
    TRY(mm_model_forward_ctx(m->dec, tx, tc, ty));
    mm_tensor_free(tx), mm_tensor_free(tc), mm_tensor_free(ty);
}

/* LM loss (teacher forcing, label smoothing 0.1) on the batch's captions. */
static double lm_step(blip *m, const pair *const *bp)
{
    static float x[B * TD], logits[B * TD * V], dlogits[B * TD * V], dctx[B * P * E];
    int32_t target[B * TD];
    mm_tensor *tl = wrap(logits, 2, B * TD, V, 0), *tdl = wrap(dlogits, 2, B * TD, V, 0);
    mm_tensor *tdy = wrap(dlogits, 3, B, TD, V), *tdc = wrap(dctx, 3, B, P, E);
    double l;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < TD; t++) {
            x[i * TD + t] = (float)bp[i]->cap[t];
            target[i * TD + t] = bp[i]->cap[t + 1];
        }
    dec_forward(m, x, g_tok, B, logits);
    TRY(mm_loss_cross_entropy(m->ce_lm, tl, target, B * TD, &l, tdl));
    TRY(mm_model_backward_ctx(m->dec, tdy, NULL, tdc));
    for (int k = 0; k < B * P * E; k++) g_dtok[k] += dctx[k];
    mm_tensor_free(tl), mm_tensor_free(tdl), mm_tensor_free(tdy), mm_tensor_free(tdc);
    return l;
}

static void zero_grads(mm_model *const *ms, int n)
{
    for (int i = 0; i < n; i++) TRY(mm_model_zero_grad(ms[i]));
}

static void steps(mm_model *const *ms, int n)
{
    for (int i = 0; i < n; i++) TRY(mm_model_step(ms[i]));
}

/* One step of ITC (+ ITM + LM when m is not NULL) on a random batch of the set. */
static void train_step(itc *c, blip *m, const pair *const *set, int n_set, double *loss)
{
    static float dpi[B * E], dpt[B * E];
    const pair *bp[B];
    const float *ims[B];
    const int *caps[B];
    mm_tensor *tdt;
    for (int i = 0; i < B; i++) bp[i] = set[randint(n_set)];
    for (int i = 0; i < B; i++) ims[i] = bp[i]->img, caps[i] = bp[i]->cap;
    encode_images(c->img, ims, B);
    encode_texts(c->txt, caps, B);
    loss[0] = itc_grads(c, B, dpi, dpt);
    for (int i = 0; i < B; i++) /* d(mean over patches) */
        for (int p = 0; p < P; p++)
            for (int e = 0; e < E; e++) g_dtok[(i * P + p) * E + e] = dpi[i * E + e] / P;
    if (m) {
        mm_model *const ms[3] = {m->itm, m->head, m->dec};
        zero_grads(ms, 3);
        loss[1] = itm_step(m, bp);
        loss[2] = lm_step(m, bp);
        steps(ms, 3);
    }
    {
        mm_model *const ms[2] = {c->img, c->txt};
        zero_grads(ms, 2);
        text_backward(c->txt, dpt, B);
        tdt = wrap(g_dtok, 3, B, P, E);
        TRY(mm_model_backward(c->img, tdt, NULL));
        mm_tensor_free(tdt);
        steps(ms, 2);
    }
}

/* ---- CapFilt -------------------------------------------------------------------------------- */
/* p(match) of caption caps[i] with image ims[i], for n pairs (chunks of B3). */
static void itm_scores(blip *m, const float *const *ims, const int *const *caps, int n, double *p)
{
    static float logits[B3 * 2], ctx[B3 * P * E];
    for (int i0 = 0; i0 < n; i0 += B3) {
        const int k = n - i0 < B3 ? n - i0 : B3;
        for (int c0 = 0; c0 < k; c0 += B) { /* the image encoder's batch is up to N_TEST */
            const int kc = k - c0 < B ? k - c0 : B;
            encode_images(m->c.img, ims + i0 + c0, kc);
            memcpy(ctx + c0 * P * E, g_tok, sizeof(float) * (size_t)kc * P * E);
        }
        itm_forward(m, caps + i0, ctx, k, logits);
        for (int i = 0; i < k; i++) {
            const double a = logits[2 * i], b = logits[2 * i + 1];
            p[i0 + i] = 1.0 / (1.0 + exp(a - b));
        }
    }
}

/* Greedy captions of n images into caps (T tokens each). */
static void caption(blip *m, const float *const *ims, int n, int (*caps)[T])
{
    static float x[B * TD], logits[B * TD * V];
    for (int i0 = 0; i0 < n; i0 += B) {
        const int k = n - i0 < B ? n - i0 : B;
        encode_images(m->c.img, ims + i0, k);
        for (int i = 0; i < k * TD; i++) x[i] = PAD;
        for (int i = 0; i < k; i++) x[i * TD] = BOS, caps[i0 + i][0] = BOS;
        for (int t = 0; t < TD; t++) { /* causal: later positions do not change position t */
            dec_forward(m, x, g_tok, k, logits);
            for (int i = 0; i < k; i++) {
                const float *z = logits + (i * TD + t) * V;
                int best = 0;
                for (int v = 1; v < V; v++)
                    if (z[v] > z[best]) best = v;
                caps[i0 + i][t + 1] = best;
                if (t + 1 < TD) x[i * TD + t + 1] = (float)best;
            }
        }
    }
}

/* ---- main ----------------------------------------------------------------------------------- */
static pair g_train[N_TRAIN], g_clean[N_CLEAN], g_test[N_TEST], g_synth[N_TRAIN];
static const pair *g_noisy[N_TRAIN], *g_cleanp[N_CLEAN], *g_kept[2 * N_TRAIN];

/* Flags the pairs whose ITM p(match) is below 0.5 and prints precision and recall at finding
 * the corrupted ones (into *prec, *rec). p receives p(match). */
static void filter(blip *m, const float *const *ims, const int *const *caps, double *p,
                   const char *what, double *prec, double *rec)
{
    int tp = 0, fp = 0, fn = 0;
    itm_scores(m, ims, caps, N_TRAIN, p);
    for (int i = 0; i < N_TRAIN; i++) {
        const int flag = p[i] < 0.5;
        tp += flag && g_train[i].corrupt, fp += flag && !g_train[i].corrupt;
        fn += !flag && g_train[i].corrupt;
    }
    *prec = tp + fp ? (double)tp / (tp + fp) : 0.0;
    *rec = tp + fn ? (double)tp / (tp + fn) : 0.0;
    printf("filter %s: %d pairs flagged; precision %.3f, recall %.3f at finding corrupted "
           "pairs\n",
           what, tp + fp, *prec, *rec);
}

/* Trains a fresh ITC model on set for n_steps steps; returns held-out R@1. */
static double retrain(const pair *const *set, int n_set, int n_steps)
{
    itc c = make_itc(77);
    double loss[3], r1;
    uint64_t keep = g_rng;
    g_rng = 12345; /* both runs draw the same batch positions */
    for (int s = 0; s < n_steps; s++) train_step(&c, NULL, set, n_set, loss);
    r1 = recall_at_1(&c, g_test);
    g_rng = keep;
    free_itc(&c);
    return r1;
}

int main(int argc, char **argv)
{
    static double p_web[N_TRAIN], p_syn[N_TRAIN];
    static const float *ims[N_TRAIN];
    static const int *caps[N_TRAIN];
    static int syn[N_TRAIN][T];
    int n_steps = 3000, n_corrupt = 0, n_kept = 0, syn_ok = 0;
    double prec, rec, r_noisy, r_capfilt;
    blip m;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            n_steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--steps N]\n", argv[0]);
            return 2;
        }
    }
    make_data(g_train, g_clean, g_test);
    for (int i = 0; i < N_TRAIN; i++) g_noisy[i] = &g_train[i], n_corrupt += g_train[i].corrupt;
    for (int i = 0; i < N_CLEAN; i++) g_cleanp[i] = &g_clean[i];
    printf("BLIP CapFilt: %d training pairs (%d corrupted captions, %.1f%%), %d clean pairs "
           "for fine-tuning, %d clean held out\n",
           N_TRAIN, n_corrupt, 100.0 * n_corrupt / N_TRAIN, N_CLEAN, N_TEST);
    m.c = make_itc(1);
    m.itm = make_itm_encoder(4), m.head = make_itm_head(5), m.dec = make_decoder(6);
    m.ce_itm = new_loss(MM_LOSS_CROSS_ENTROPY, B3, V, 7);
    m.ce_lm = new_loss(MM_LOSS_CROSS_ENTROPY, B * TD, V, 8);
    TRY(mm_loss_set_f64(m.ce_lm, MM_LOSS_LABEL_SMOOTHING, 0.1));
    printf("pre-training ITC + ITM + LM on the noisy pairs, %d steps of %d\n", n_steps, B);
    for (int s = 1; s <= n_steps; s++) {
        double loss[3];
        train_step(&m.c, &m, g_noisy, N_TRAIN, loss);
        if (s % 500 == 0 || s == n_steps)
            printf("step %5d  ITC %.4f  ITM %.4f  LM %.4f\n", s, loss[0], loss[1], loss[2]);
    }
    printf("pre-trained: held-out i2t R@1 %.3f\n", recall_at_1(&m.c, g_test));
    for (int i = 0; i < N_TRAIN; i++) ims[i] = g_train[i].img, caps[i] = g_train[i].cap;
    filter(&m, ims, caps, p_web, "after pre-training", &prec, &rec);
    /* BLIP fine-tunes the filter and the captioner on a small clean set (COCO) */
    printf("fine-tuning on the clean pairs, %d steps\n", n_steps / 5);
    { /* with a smaller learning rate, as BLIP fine-tunes */
        mm_model *const ms[5] = {m.c.img, m.c.txt, m.itm, m.head, m.dec};
        for (int i = 0; i < 5; i++) TRY(mm_model_set_f64(ms[i], MM_MODEL_LR, FT_LR));
    }
    for (int s = 1; s <= n_steps / 5; s++) {
        double loss[3];
        train_step(&m.c, &m, g_cleanp, N_CLEAN, loss);
    }
    filter(&m, ims, caps, p_web, "after fine-tuning", &prec, &rec);
    /* Captioner: a synthetic caption per image, judged by the same filter. */
    caption(&m, ims, N_TRAIN, syn);
    for (int i = 0; i < N_TRAIN; i++) {
        memcpy(g_synth[i].img, g_train[i].img, sizeof g_synth[i].img);
        memcpy(g_synth[i].cap, syn[i], sizeof g_synth[i].cap);
        memcpy(g_synth[i].truth, g_train[i].truth, sizeof g_synth[i].truth);
        caps[i] = g_synth[i].cap;
        syn_ok += same_cap(syn[i], g_train[i].truth);
    }
    itm_scores(&m, ims, caps, N_TRAIN, p_syn);
    for (int i = 0; i < N_TRAIN; i++) {
        const int web = p_web[i] >= 0.5;
        if (web) g_kept[n_kept++] = &g_train[i];
        if (p_syn[i] >= 0.5 && !(web && same_cap(g_train[i].cap, syn[i])))
            g_kept[n_kept++] = &g_synth[i];
    }
    printf("captioner: %.1f%% of synthetic captions exact; CapFilt set: %d pairs\n",
           100.0 * syn_ok / N_TRAIN, n_kept);
    r_noisy = retrain(g_noisy, N_TRAIN, n_steps);
    r_capfilt = retrain(g_kept, n_kept, n_steps);
    printf("ITC retrained %d steps: held-out i2t R@1 %.3f on the noisy set, %.3f on the CapFilt "
           "set (gain %+.3f)\n",
           n_steps, r_noisy, r_capfilt, r_capfilt - r_noisy);
    free_itc(&m.c);
    mm_model_free(m.itm), mm_model_free(m.head), mm_model_free(m.dec);
    mm_loss_free(m.ce_itm), mm_loss_free(m.ce_lm);
    if (prec >= 0.9 && rec >= 0.9 && r_capfilt - r_noisy >= 0.02) {
        printf("goal met: precision and recall >= 0.9, CapFilt gains >= 0.02 R@1\n");
        return 0;
    }
    printf("goal missed\n");
    return 1;
}
