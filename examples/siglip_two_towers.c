/* SPDX-License-Identifier: MIT */
/* siglip_two_towers.c — contrastive training of two small towers with mm_loss.
 *
 * The example makes its own paired dataset: every pair shares a latent vector z (8-D); the
 * "image" is a 32-D noisy linear view of z, the "text" a 24-D noisy view of the same z. An image
 * tower and a text tower (mm_model MLPs, 32-D embeddings) are trained so that matching pairs
 * score high: with the SigLIP loss by default (logit scale t and bias b learned too, starting at
 * ln 10 and -10), and with CLIP's InfoNCE under --clip. --lit runs locked-image tuning (LiT):
 * the image tower is first pre-trained (jointly with a throwaway text tower), then locked with
 * mm_model_freeze, and a fresh text tower (with fresh t and b) learns to match it.
 * Progress lines report the loss, t, b and image->text recall@1 on 512 held-out pairs.
 *
 *   build/examples/siglip_two_towers [--clip] [--lit] [--steps N]
 *
 * One step: forward both towers, L2-normalise (mm_loss_l2_normalize), loss and gradients in one
 * call (mm_loss_siglip / mm_loss_clip), back through the normalisation, backward and Adam step
 * in each tower, and an Adam step on t (and b) read from mm_loss_get_f64.
 */
#include <math.h>
#include <mm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LATENT = 8, IMG_IN = 32, TXT_IN = 24, HIDDEN = 128, EMBED = 32 };
enum { N_TRAIN = 8192, N_TEST = 512, BATCH = 256 };

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                   \
                    mm_status_str(rc_));                                                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- a tiny seeded RNG for the data (libmm's own RNG lives inside its handles) ------------- */
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static double uniform(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    double u1 = uniform(), u2 = uniform(); /* sequenced: the same data on every compiler */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- data: two noisy linear views of shared latents ---------------------------------------- */
typedef struct dataset {
    float img[N_TRAIN + N_TEST][IMG_IN];
    float txt[N_TRAIN + N_TEST][TXT_IN];
} dataset;

static void make_data(dataset *d)
{
    static float a[IMG_IN][LATENT], b[TXT_IN][LATENT];
    const double noise = 0.3; /* the views' noise sets how far R@1 can go */
    for (int i = 0; i < IMG_IN; i++)
        for (int k = 0; k < LATENT; k++) a[i][k] = (float)(normal() / sqrt((double)LATENT));
    for (int i = 0; i < TXT_IN; i++)
        for (int k = 0; k < LATENT; k++) b[i][k] = (float)(normal() / sqrt((double)LATENT));
    for (int n = 0; n < N_TRAIN + N_TEST; n++) {
        double z[LATENT];
        for (int k = 0; k < LATENT; k++) z[k] = normal();
        for (int i = 0; i < IMG_IN; i++) {
            double s = noise * normal();
            for (int k = 0; k < LATENT; k++) s += a[i][k] * z[k];
            d->img[n][i] = (float)s;
        }
        for (int i = 0; i < TXT_IN; i++) {
            double s = noise * normal();
            for (int k = 0; k < LATENT; k++) s += b[i][k] * z[k];
            d->txt[n][i] = (float)s;
        }
    }
}

/* ---- towers -------------------------------------------------------------------------------- */
static mm_model *make_tower(int64_t in_dim, uint64_t seed)
{
    mm_model_opts o;
    mm_model *m = NULL;
    TRY(mm_model_opts_init(&o));
    o.input_dim = in_dim;
    o.max_batch = N_TEST; /* the evaluation batch is the largest */
    o.seed = seed;
    TRY(mm_model_create(&m, &o));
    TRY(mm_model_add_dense(m, HIDDEN, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_activation(m, MM_ACT_GELU));
    TRY(mm_model_add_dense(m, EMBED, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAM));
    TRY(mm_model_set_f64(m, MM_MODEL_LR, 2e-3));
    return m;
}

/* Adam on one scalar (t or b), with PyTorch's default betas. */
typedef struct scalar_adam {
    double m, v;
    int64_t step;
} scalar_adam;

static double adam_step(scalar_adam *s, double value, double grad, double lr)
{
    s->step++;
    s->m = 0.9 * s->m + 0.1 * grad;
    s->v = 0.999 * s->v + 0.001 * grad * grad;
    return value - lr * (s->m / (1 - pow(0.9, (double)s->step))) /
                       (sqrt(s->v / (1 - pow(0.999, (double)s->step))) + 1e-8);
}

/* ---- buffers wrapped as tensors ------------------------------------------------------------- */
typedef struct tensors {
    float xi[N_TEST * IMG_IN], xt[N_TEST * TXT_IN];     /* tower inputs */
    float ui[N_TEST * EMBED], ut[N_TEST * EMBED];       /* tower outputs */
    float ei[N_TEST * EMBED], et[N_TEST * EMBED];       /* normalised embeddings */
    float dei[BATCH * EMBED], det[BATCH * EMBED];       /* loss gradients */
    float dui[BATCH * EMBED], dut[BATCH * EMBED];       /* tower-output gradients */
    mm_tensor *t_xi, *t_xt, *t_ui, *t_ut, *t_ei, *t_et; /* batch views */
    mm_tensor *t_dei, *t_det, *t_dui, *t_dut;
} tensors;

static mm_tensor *view(float *data, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    mm_tensor *t = NULL;
    TRY(mm_tensor_wrap(&t, data, 2, shape, NULL));
    return t;
}

static void make_views(tensors *b, int64_t rows)
{
    b->t_xi = view(b->xi, rows, IMG_IN);
    b->t_xt = view(b->xt, rows, TXT_IN);
    b->t_ui = view(b->ui, rows, EMBED);
    b->t_ut = view(b->ut, rows, EMBED);
    b->t_ei = view(b->ei, rows, EMBED);
    b->t_et = view(b->et, rows, EMBED);
}

static void free_views(tensors *b)
{
    mm_tensor_free(b->t_xi), mm_tensor_free(b->t_xt), mm_tensor_free(b->t_ui);
    mm_tensor_free(b->t_ut), mm_tensor_free(b->t_ei), mm_tensor_free(b->t_et);
}

/* Embeds the pairs idx[0..rows) into b->ei / b->et (L2-normalised tower outputs). */
static void embed(mm_model *img, mm_model *txt, mm_loss *loss, const dataset *d, tensors *b,
                  const int *idx, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        memcpy(b->xi + r * IMG_IN, d->img[idx[r]], sizeof d->img[0]);
        memcpy(b->xt + r * TXT_IN, d->txt[idx[r]], sizeof d->txt[0]);
    }
    TRY(mm_model_forward(img, b->t_xi, b->t_ui));
    TRY(mm_model_forward(txt, b->t_xt, b->t_ut));
    TRY(mm_loss_l2_normalize(loss, b->t_ui, b->t_ei));
    TRY(mm_loss_l2_normalize(loss, b->t_ut, b->t_et));
}

/* Image -> text recall@1 over the held-out pairs: the matching text must score highest. */
static double recall_at_1(mm_model *img, mm_model *txt, mm_loss *loss, const dataset *d, tensors *b)
{
    static float sim[N_TEST * N_TEST];
    static int idx[N_TEST];
    int hits = 0;
    for (int i = 0; i < N_TEST; i++) idx[i] = N_TRAIN + i;
    make_views(b, N_TEST);
    embed(img, txt, loss, d, b, idx, N_TEST);
    TRY(mm_sgemm(MM_NO_TRANS, MM_TRANS, N_TEST, N_TEST, EMBED, 1.0f, b->ei, EMBED, b->et, EMBED,
                 0.0f, sim, N_TEST, NULL, 0));
    for (int i = 0; i < N_TEST; i++) {
        int best = 0;
        for (int j = 1; j < N_TEST; j++)
            if (sim[i * N_TEST + j] > sim[i * N_TEST + best]) best = j;
        hits += best == i;
    }
    free_views(b);
    return (double)hits / N_TEST;
}

typedef struct run_cfg {
    int clip, lit, steps;
} run_cfg;

/* One training step on a random batch; returns the loss. */
static double train_step(const run_cfg *cfg, mm_model *img, mm_model *txt, mm_loss *loss,
                         const dataset *d, tensors *b)
{
    int idx[BATCH];
    double l;
    for (int r = 0; r < BATCH; r++) idx[r] = (int)(uniform() * N_TRAIN);
    make_views(b, BATCH);
    embed(img, txt, loss, d, b, idx, BATCH);
    /* LiT: no gradient for the locked image tower (dx NULL skips that GEMM). */
    if (cfg->clip)
        TRY(mm_loss_clip(loss, b->t_ei, b->t_et, &l, cfg->lit ? NULL : b->t_dei, b->t_det));
    else
        TRY(mm_loss_siglip(loss, b->t_ei, b->t_et, &l, cfg->lit ? NULL : b->t_dei, b->t_det));
    TRY(mm_loss_l2_normalize_backward(loss, b->t_ut, b->t_det, b->t_dut));
    TRY(mm_model_zero_grad(txt));
    TRY(mm_model_backward(txt, b->t_dut, NULL));
    TRY(mm_model_step(txt));
    if (!cfg->lit) {
        TRY(mm_loss_l2_normalize_backward(loss, b->t_ui, b->t_dei, b->t_dui));
        TRY(mm_model_zero_grad(img));
        TRY(mm_model_backward(img, b->t_dui, NULL));
        TRY(mm_model_step(img));
    }
    free_views(b);
    return l;
}

/* Adam on the logit scale (clamped to [0, ln 100] as open_clip does) and, for SigLIP, bias. */
static void update_scalars(const run_cfg *cfg, mm_loss *loss, scalar_adam *at, scalar_adam *ab)
{
    double t, dt, bias, db;
    TRY(mm_loss_get_f64(loss, MM_LOSS_LOGIT_SCALE, &t));
    TRY(mm_loss_get_f64(loss, MM_LOSS_STAT_DLOGIT_SCALE, &dt));
    t = adam_step(at, t, dt, 1e-2);
    TRY(mm_loss_set_f64(loss, MM_LOSS_LOGIT_SCALE, fmin(fmax(t, 0.0), log(100.0))));
    if (cfg->clip) return;
    TRY(mm_loss_get_f64(loss, MM_LOSS_LOGIT_BIAS, &bias));
    TRY(mm_loss_get_f64(loss, MM_LOSS_STAT_DLOGIT_BIAS, &db));
    TRY(mm_loss_set_f64(loss, MM_LOSS_LOGIT_BIAS, adam_step(ab, bias, db, 1e-2)));
}

static int parse(int argc, char **argv, run_cfg *cfg)
{
    cfg->clip = cfg->lit = 0;
    cfg->steps = 1500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clip"))
            cfg->clip = 1;
        else if (!strcmp(argv[i], "--lit"))
            cfg->lit = 1;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            cfg->steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--clip] [--lit] [--steps N]\n", argv[0]);
            return -1;
        }
    }
    return cfg->steps > 0 ? 0 : -1;
}

/* Creates the loss handle for the run (fresh t and b). */
static mm_loss *make_loss(const run_cfg *cfg)
{
    mm_loss *loss = NULL;
    mm_loss_opts lo;
    TRY(mm_loss_opts_init(&lo, cfg->clip ? MM_LOSS_CLIP : MM_LOSS_SIGLIP));
    lo.max_batch = BATCH;
    lo.max_dim = EMBED;
    TRY(mm_loss_create(&loss, &lo));
    return loss;
}

/* Trains for cfg->steps steps, printing progress; returns the final held-out R@1. */
static double train(const run_cfg *cfg, mm_model *img, mm_model *txt, const dataset *data,
                    tensors *buf)
{
    mm_loss *loss = make_loss(cfg);
    scalar_adam at = {0, 0, 0}, ab = {0, 0, 0};
    double r1 = 0, l = 0, t, bias = 0;
    printf("untrained text tower: held-out i2t R@1 %.3f (chance %.3f)\n",
           recall_at_1(img, txt, loss, data, buf), 1.0 / N_TEST);
    for (int step = 1; step <= cfg->steps; step++) {
        l = train_step(cfg, img, txt, loss, data, buf);
        update_scalars(cfg, loss, &at, &ab);
        if (step % 250 == 0 || step == cfg->steps) {
            r1 = recall_at_1(img, txt, loss, data, buf);
            TRY(mm_loss_get_f64(loss, MM_LOSS_LOGIT_SCALE, &t));
            if (!cfg->clip) TRY(mm_loss_get_f64(loss, MM_LOSS_LOGIT_BIAS, &bias));
            printf("step %5d  loss %.4f  t %.3f (scale %.1f)  b %.2f  held-out i2t R@1 %.3f\n",
                   step, l, t, exp(t), bias, r1);
        }
    }
    mm_loss_free(loss);
    return r1;
}

int main(int argc, char **argv)
{
    static dataset data;
    static tensors buf;
    run_cfg cfg;
    mm_model *img, *txt;
    double r1;
    if (parse(argc, argv, &cfg)) return 2;
    make_data(&data);
    img = make_tower(IMG_IN, 1);
    buf.t_dei = view(buf.dei, BATCH, EMBED), buf.t_det = view(buf.det, BATCH, EMBED);
    buf.t_dui = view(buf.dui, BATCH, EMBED), buf.t_dut = view(buf.dut, BATCH, EMBED);
    if (cfg.lit) {
        /* LiT phase 1: pre-train the image tower with a throwaway text tower. */
        run_cfg pre = cfg;
        pre.lit = 0;
        printf("LiT phase 1: pre-training the image tower (%d steps)\n", pre.steps);
        txt = make_tower(TXT_IN, 3);
        (void)train(&pre, img, txt, &data, &buf);
        mm_model_free(txt);
        TRY(mm_model_freeze(img, 0, 3, 1)); /* lock every layer of the image tower */
        printf("LiT phase 2: image tower locked, fresh text tower\n");
    }
    txt = make_tower(TXT_IN, 2);
    printf("%s%s: %d training pairs, %d held out, batch %d, %d steps\n",
           cfg.clip ? "CLIP" : "SigLIP", cfg.lit ? " (LiT: image tower locked)" : "", N_TRAIN,
           N_TEST, BATCH, cfg.steps);
    r1 = train(&cfg, img, txt, &data, &buf);
    mm_tensor_free(buf.t_dei), mm_tensor_free(buf.t_det);
    mm_tensor_free(buf.t_dui), mm_tensor_free(buf.t_dut);
    mm_model_free(img);
    mm_model_free(txt);
    printf("final image->text R@1 on held-out pairs: %.3f %s\n", r1,
           r1 >= 0.9 ? "(>= 0.9)" : "(below 0.9)");
    return r1 >= 0.9 ? 0 : 1;
}
