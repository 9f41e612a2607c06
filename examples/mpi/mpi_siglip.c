/* SPDX-License-Identifier: MIT */
/* mpi_siglip.c — the two-tower SigLIP example (examples/siglip_two_towers.c) trained
 * data-parallel over MPI ranks with libmm_mpi.
 *
 * Every rank builds the same synthetic dataset (pairs sharing an 8-D latent; the "image" a
 * 32-D noisy view, the "text" a 24-D one) and the same towers; mm_model_set_comm makes rank 0's
 * parameters everyone's. Each step, every rank draws its own B pairs (its own RNG stream), so
 * the global batch is W * B: mm_loss_siglip computes the loss over all W * B pairs by passing
 * text blocks around the ring, mm_model_step averages the towers' gradients, and every rank
 * applies the same Adam update to the logit scale t and bias b (their gradients are global).
 * Rank 0 reports the loss, t, b and held-out image->text recall@1.
 *
 *   make WITH_MPI=1 mpi-example
 *   mpirun -np 2 build/mpi/mpi_siglip [--clip] [--steps N] [--batch B]
 *   (as root in a container: add --allow-run-as-root --oversubscribe)
 */
#include <math.h>
#include <mm_mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LATENT = 8, IMG_IN = 32, TXT_IN = 24, HIDDEN = 128, EMBED = 32 };
enum { N_TRAIN = 8192, N_TEST = 512, MAX_B = 1024 };

static int g_rank, g_size;

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MM_OK) {                                                                        \
            fprintf(stderr, "rank %d: %s:%d: %s failed: %s\n", g_rank, __FILE__, __LINE__, #call,  \
                    mm_status_str(rc_));                                                           \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

/* ---- a seeded RNG: one stream for the shared data, one per rank for the batches ------------ */
typedef struct rng {
    uint64_t s;
} rng;

static double uniform(rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(r->s >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(rng *r)
{
    double u1 = uniform(r), u2 = uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct dataset {
    float img[N_TRAIN + N_TEST][IMG_IN];
    float txt[N_TRAIN + N_TEST][TXT_IN];
} dataset;

/* The same data on every rank: the stream is seeded identically. */
static void make_data(dataset *d)
{
    static float a[IMG_IN][LATENT], b[TXT_IN][LATENT];
    rng r = {0x9e3779b97f4a7c15ULL};
    for (int i = 0; i < IMG_IN; i++)
        for (int k = 0; k < LATENT; k++) a[i][k] = (float)(normal(&r) / sqrt((double)LATENT));
    for (int i = 0; i < TXT_IN; i++)
        for (int k = 0; k < LATENT; k++) b[i][k] = (float)(normal(&r) / sqrt((double)LATENT));
    for (int n = 0; n < N_TRAIN + N_TEST; n++) {
        double z[LATENT];
        for (int k = 0; k < LATENT; k++) z[k] = normal(&r);
        for (int i = 0; i < IMG_IN; i++) {
            double s = 0.3 * normal(&r);
            for (int k = 0; k < LATENT; k++) s += a[i][k] * z[k];
            d->img[n][i] = (float)s;
        }
        for (int i = 0; i < TXT_IN; i++) {
            double s = 0.3 * normal(&r);
            for (int k = 0; k < LATENT; k++) s += b[i][k] * z[k];
            d->txt[n][i] = (float)s;
        }
    }
}

static mm_model *make_tower(int64_t in_dim, uint64_t seed, mm_comm *comm)
{
    mm_model_opts o;
    mm_model *m = NULL;
    TRY(mm_model_opts_init(&o));
    o.input_dim = in_dim;
    o.max_batch = N_TEST;
    o.seed = seed;
    TRY(mm_model_create(&m, &o));
    TRY(mm_model_add_dense(m, HIDDEN, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_add_activation(m, MM_ACT_GELU));
    TRY(mm_model_add_dense(m, EMBED, 1, MM_INIT_DEFAULT, 1.0));
    TRY(mm_model_finalize(m));
    TRY(mm_model_set_optimizer(m, MM_OPT_ADAM));
    TRY(mm_model_set_f64(m, MM_MODEL_LR, 2e-3));
    TRY(mm_model_set_comm(m, comm)); /* collective: every rank now holds rank 0's weights */
    return m;
}

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

/* Buffers sized for the evaluation batch, viewed at the batch in use. */
typedef struct bufs {
    float xi[N_TEST * IMG_IN], xt[N_TEST * TXT_IN];
    float ui[N_TEST * EMBED], ut[N_TEST * EMBED], ei[N_TEST * EMBED], et[N_TEST * EMBED];
    float dei[MAX_B * EMBED], det[MAX_B * EMBED], dui[MAX_B * EMBED], dut[MAX_B * EMBED];
} bufs;

static mm_tensor *view(float *data, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    mm_tensor *t = NULL;
    TRY(mm_tensor_wrap(&t, data, 2, shape, NULL));
    return t;
}

typedef struct run {
    int clip, steps;
    int64_t batch; /* pairs per rank */
    mm_model *img, *txt;
    mm_loss *loss;
    const dataset *d;
    bufs *b;
} run;

/* Forward both towers on pairs idx[0..rows), normalised embeddings into b->ei / b->et. */
static void embed(run *r, const int *idx, int64_t rows, mm_tensor *ui, mm_tensor *ut)
{
    mm_tensor *xi = view(r->b->xi, rows, IMG_IN), *xt = view(r->b->xt, rows, TXT_IN);
    mm_tensor *ei = view(r->b->ei, rows, EMBED), *et = view(r->b->et, rows, EMBED);
    for (int64_t k = 0; k < rows; k++) {
        memcpy(r->b->xi + k * IMG_IN, r->d->img[idx[k]], sizeof r->d->img[0]);
        memcpy(r->b->xt + k * TXT_IN, r->d->txt[idx[k]], sizeof r->d->txt[0]);
    }
    TRY(mm_model_forward(r->img, xi, ui));
    TRY(mm_model_forward(r->txt, xt, ut));
    TRY(mm_loss_l2_normalize(r->loss, ui, ei));
    TRY(mm_loss_l2_normalize(r->loss, ut, et));
    mm_tensor_free(xi), mm_tensor_free(xt), mm_tensor_free(ei), mm_tensor_free(et);
}

/* Held-out image->text recall@1 (every rank computes it; the towers are identical). */
static double recall_at_1(run *r)
{
    static float sim[N_TEST * N_TEST];
    static int idx[N_TEST];
    mm_tensor *ui = view(r->b->ui, N_TEST, EMBED), *ut = view(r->b->ut, N_TEST, EMBED);
    int hits = 0;
    for (int i = 0; i < N_TEST; i++) idx[i] = N_TRAIN + i;
    embed(r, idx, N_TEST, ui, ut);
    TRY(mm_sgemm(MM_NO_TRANS, MM_TRANS, N_TEST, N_TEST, EMBED, 1.0f, r->b->ei, EMBED, r->b->et,
                 EMBED, 0.0f, sim, N_TEST, NULL, 0));
    for (int i = 0; i < N_TEST; i++) {
        int best = 0;
        for (int j = 1; j < N_TEST; j++)
            if (sim[i * N_TEST + j] > sim[i * N_TEST + best]) best = j;
        hits += best == i;
    }
    mm_tensor_free(ui), mm_tensor_free(ut);
    return (double)hits / N_TEST;
}

/* One data-parallel step on this rank's B pairs; returns the global loss. */
static double train_step(run *r, rng *batch_rng)
{
    static int idx[MAX_B];
    int64_t B = r->batch;
    mm_tensor *ui = view(r->b->ui, B, EMBED), *ut = view(r->b->ut, B, EMBED);
    mm_tensor *ei = view(r->b->ei, B, EMBED), *et = view(r->b->et, B, EMBED);
    mm_tensor *dei = view(r->b->dei, B, EMBED), *det = view(r->b->det, B, EMBED);
    mm_tensor *dui = view(r->b->dui, B, EMBED), *dut = view(r->b->dut, B, EMBED);
    double l;
    for (int64_t k = 0; k < B; k++) idx[k] = (int)(uniform(batch_rng) * N_TRAIN);
    embed(r, idx, B, ui, ut);
    if (r->clip)
        TRY(mm_loss_clip(r->loss, ei, et, &l, dei, det));
    else
        TRY(mm_loss_siglip(r->loss, ei, et, &l, dei, det));
    TRY(mm_loss_l2_normalize_backward(r->loss, ut, det, dut));
    TRY(mm_loss_l2_normalize_backward(r->loss, ui, dei, dui));
    TRY(mm_model_zero_grad(r->txt));
    TRY(mm_model_backward(r->txt, dut, NULL));
    TRY(mm_model_step(r->txt)); /* gradients averaged over ranks, then Adam */
    TRY(mm_model_zero_grad(r->img));
    TRY(mm_model_backward(r->img, dui, NULL));
    TRY(mm_model_step(r->img));
    mm_tensor_free(ui), mm_tensor_free(ut), mm_tensor_free(ei), mm_tensor_free(et);
    mm_tensor_free(dei), mm_tensor_free(det), mm_tensor_free(dui), mm_tensor_free(dut);
    return l;
}

/* t and b: their gradients are the global ones on every rank, so the updates agree. */
static void update_scalars(run *r, scalar_adam *at, scalar_adam *ab)
{
    double t, dt, bias, db;
    TRY(mm_loss_get_f64(r->loss, MM_LOSS_LOGIT_SCALE, &t));
    TRY(mm_loss_get_f64(r->loss, MM_LOSS_STAT_DLOGIT_SCALE, &dt));
    t = adam_step(at, t, dt, 1e-2);
    TRY(mm_loss_set_f64(r->loss, MM_LOSS_LOGIT_SCALE, fmin(fmax(t, 0.0), log(100.0))));
    if (r->clip) return;
    TRY(mm_loss_get_f64(r->loss, MM_LOSS_LOGIT_BIAS, &bias));
    TRY(mm_loss_get_f64(r->loss, MM_LOSS_STAT_DLOGIT_BIAS, &db));
    TRY(mm_loss_set_f64(r->loss, MM_LOSS_LOGIT_BIAS, adam_step(ab, bias, db, 1e-2)));
}

static int parse(int argc, char **argv, run *r)
{
    r->clip = 0;
    r->steps = 1500;
    r->batch = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clip"))
            r->clip = 1;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            r->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            r->batch = atoll(argv[++i]);
        else
            return -1;
    }
    if (!r->batch) r->batch = 256 / g_size > 0 ? 256 / g_size : 1; /* global batch 256 */
    return r->steps > 0 && r->batch >= 1 && r->batch <= MAX_B ? 0 : -1;
}

int main(int argc, char **argv)
{
    static dataset data;
    static bufs buf;
    scalar_adam at = {0, 0, 0}, ab = {0, 0, 0};
    mm_comm *comm = NULL;
    mm_loss_opts lo;
    run r;
    rng batch_rng;
    double l = 0.0, r1 = 0.0, t = 0.0, bias = 0.0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (parse(argc, argv, &r)) {
        if (g_rank == 0) fprintf(stderr, "usage: %s [--clip] [--steps N] [--batch B]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    TRY(mm_comm_create_mpi(&comm, MPI_COMM_WORLD, NULL));
    make_data(&data);
    r.d = &data;
    r.b = &buf;
    r.img = make_tower(IMG_IN, 1, comm);
    r.txt = make_tower(TXT_IN, 2, comm);
    TRY(mm_loss_opts_init(&lo, r.clip ? MM_LOSS_CLIP : MM_LOSS_SIGLIP));
    lo.max_batch = N_TEST > r.batch ? N_TEST : r.batch; /* evaluation normalises 512 rows */
    lo.max_dim = EMBED;
    TRY(mm_loss_create(&r.loss, &lo));
    TRY(mm_loss_set_comm(r.loss, comm, 0));
    batch_rng.s = 0x2545F4914F6CDD1DULL + (uint64_t)g_rank * 0x9E3779B97F4A7C15ULL;
    if (g_rank == 0)
        printf("%s over %d ranks: %lld pairs per rank, global batch %lld, %d steps\n",
               r.clip ? "CLIP" : "SigLIP", g_size, (long long)r.batch,
               (long long)(r.batch * g_size), r.steps);
    for (int step = 1; step <= r.steps; step++) {
        double t0 = MPI_Wtime(), dt;
        l = train_step(&r, &batch_rng);
        update_scalars(&r, &at, &ab);
        dt = MPI_Wtime() - t0;
        if (step % 250 == 0 || step == r.steps) {
            r1 = recall_at_1(&r);
            TRY(mm_loss_get_f64(r.loss, MM_LOSS_LOGIT_SCALE, &t));
            if (!r.clip) TRY(mm_loss_get_f64(r.loss, MM_LOSS_LOGIT_BIAS, &bias));
            if (g_rank == 0)
                printf(
                    "step %5d  loss %.4f  t %.3f  b %.2f  held-out i2t R@1 %.3f  (%.2f ms/step)\n",
                    step, l, t, bias, r1, 1e3 * dt);
        }
    }
    if (g_rank == 0) printf("final image->text R@1 on held-out pairs: %.3f\n", r1);
    mm_loss_free(r.loss);
    mm_model_free(r.img);
    mm_model_free(r.txt);
    mm_comm_free(comm);
    MPI_Finalize();
    return r1 >= 0.9 ? 0 : 1;
}
