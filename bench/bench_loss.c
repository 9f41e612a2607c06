/* SPDX-License-Identifier: MIT */
/* bench_loss.c — CLIP and SigLIP forward+backward at B = 4096, D = 512 on one thread, side by
 * side with PyTorch (bench/peer_torch_loss.py: open_clip's formulation, and for CLIP also one
 * logit matmul + .T, autograd, one thread; the ratio is against the faster form),
 * and the memory each needs at B = 16384, D = 256: libmm's reserved workspace plus the two
 * gradient outputs, against the growth of PyTorch's peak RSS over one step.
 * GF/s columns use the nominal 6 B^2 D flops of the three logit-sized GEMMs (libmm's CLIP runs
 * a fourth to avoid holding the logits; it is not counted).
 *
 * "tile GEMMs" rows: how close the GEMM part of a call comes to the machine's peak. The kernel's
 * own replay (mmi_loss_clip_gemms / mmi_loss_siglip_gemms) runs every tile GEMM of the call,
 * packing included, with the same shapes, operands, order and workspace, and leaves out only the
 * element-wise passes; its samples alternate with the full call's (bench_pair_median_ns). The
 * row's GF/s are the flops those GEMMs really do (CLIP 8 B^2 D with its fourth GEMM, SigLIP
 * 6 B^2 D) over the replay's median, the % is of the best ISA's one-core FMA peak (peak line),
 * and "of the call" is the replay's median over the full call's. */
#include "bench.h"
#include "kernels/gemm/mmi_gemm.h"
#include "kernels/loss/mmi_loss_kernels.h"
#include "mm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loss_case {
    mm_loss *h;
    mm_tensor *x, *y, *dx, *dy;
    int32_t kind;
    double loss;
} loss_case;

/* The replay of a case's tile GEMMs on the kernel's workspace (one thread, no pool). */
typedef struct gemm_case {
    mmi_pair_args a;
    void *ws;
    int32_t kind;
    double flops;
} gemm_case;

static void run_gemms(void *ctx)
{
    gemm_case *g = (gemm_case *)ctx;
    g->flops = g->kind == MM_LOSS_CLIP ? mmi_loss_clip_gemms(&g->a, g->ws, NULL)
                                       : mmi_loss_siglip_gemms(&g->a, g->ws, NULL);
}

static int gemm_setup(gemm_case *g, int32_t kind, int64_t n, int64_t d, float **buf)
{
    mm_loss_opts o;
    size_t bytes;
    if (mm_loss_opts_init(&o, kind) != MM_OK) return -1;
    bytes = kind == MM_LOSS_CLIP ? mmi_loss_clip_ws_size(n, d, o.tile, 1)
                                 : mmi_loss_siglip_ws_size(n, d, o.tile, 1);
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->a = (mmi_pair_args){buf[0], buf[1], buf[2], buf[3], n, d, o.tile, 1.0f / 0.07f, 0.0f, 1.0};
    if (bytes == 0 || !(g->ws = aligned_alloc(64, (bytes + 63) / 64 * 64))) return -1;
    return 0;
}

/* The kernel set the tiles' GEMMs run on this machine. */
static const char *gemm_set(void)
{
    const mmi_gemm_ukr *u = mmi_gemm_ukr_for(mmi_simd_path_get());
    if (u != NULL && u == mmi_gemm_ukr_avx512()) return "avx512";
    if (u != NULL && u == mmi_gemm_ukr_avx2()) return "avx2";
    return "portable";
}

static void gemm_row(const char *name, const gemm_case *g, double gemm_ns, double call_ns)
{
    const bench_peak *p = bench_peak_probe();
    char label[128];
    if (p->best_gflops > 0 && gemm_ns > 0 && call_ns > 0)
        snprintf(label, sizeof label, "%s [%s ran, %.0f%% of %s peak, %.0f%% of the call]", name,
                 gemm_set(), 100.0 * g->flops / gemm_ns / p->best_gflops, p->best_isa,
                 100.0 * gemm_ns / call_ns);
    else
        snprintf(label, sizeof label, "%s [%s ran]", name, gemm_set());
    bench_row(label, "B=4096 D=512", g->flops, gemm_ns, "-", -1.0, BENCH_NA);
}

static void run_case(void *ctx)
{
    loss_case *c = (loss_case *)ctx;
    int rc = c->kind == MM_LOSS_CLIP ? mm_loss_clip(c->h, c->x, c->y, &c->loss, c->dx, c->dy)
                                     : mm_loss_siglip(c->h, c->x, c->y, &c->loss, c->dx, c->dy);
    if (rc != MM_OK) fprintf(stderr, "bench_loss: %s\n", mm_loss_errmsg(c->h));
}

/* L2-normalised rows, as the towers feed the loss. */
static float *features(int64_t n, int64_t d, uint64_t seed)
{
    float *x = bench_alloc_floats((size_t)(n * d), seed);
    if (!x) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / sqrt(s));
    }
    return x;
}

/* Creates a handle and wraps inputs and outputs; returns 0 on success. */
static int setup(loss_case *c, int32_t kind, int64_t n, int64_t d, float **buf)
{
    mm_loss_opts o;
    int64_t shape[2] = {n, d};
    c->kind = kind;
    buf[0] = features(n, d, 1);
    buf[1] = features(n, d, 2);
    buf[2] = bench_alloc_floats((size_t)(n * d), 3);
    buf[3] = bench_alloc_floats((size_t)(n * d), 4);
    if (!buf[0] || !buf[1] || !buf[2] || !buf[3]) return -1;
    if (mm_loss_opts_init(&o, kind) != MM_OK) return -1;
    o.max_batch = n;
    o.max_dim = d;
    if (mm_loss_create(&c->h, &o) != MM_OK) return -1;
    if (mm_tensor_wrap(&c->x, buf[0], 2, shape, NULL) != MM_OK ||
        mm_tensor_wrap(&c->y, buf[1], 2, shape, NULL) != MM_OK ||
        mm_tensor_wrap(&c->dx, buf[2], 2, shape, NULL) != MM_OK ||
        mm_tensor_wrap(&c->dy, buf[3], 2, shape, NULL) != MM_OK)
        return -1;
    return 0;
}

static void teardown(loss_case *c, float **buf)
{
    mm_tensor_free(c->x), mm_tensor_free(c->y), mm_tensor_free(c->dx), mm_tensor_free(c->dy);
    mm_loss_free(c->h);
    for (int i = 0; i < 4; i++) free(buf[i]);
}

static void time_rows(void)
{
    const int64_t n = 4096, d = 512;
    double ret[3], def[3];
    char args[64];
    snprintf(args, sizeof args, "time 5 %lld %lld", (long long)n, (long long)d);
    bench_peer_torch("peer_torch_loss.py", args, ret, def, 3);
    for (int k = 0; k < 2; k++) {
        int32_t kind = k ? MM_LOSS_SIGLIP : MM_LOSS_CLIP;
        loss_case c = {0};
        float *buf[4] = {0};
        gemm_case g = {0};
        double ns = -1, gns = -1, flops = 6.0 * (double)n * (double)n * (double)d;
        if (setup(&c, kind, n, d, buf) == 0 && gemm_setup(&g, kind, n, d, buf) == 0)
            bench_pair_median_ns(run_case, &c, run_gemms, &g, 5, &ns, &gns);
        if (k == 0) {
            /* headline: the faster of open_clip's two matmuls and one matmul + .T */
            int one = ret[1] > 0 && (ret[0] <= 0 || ret[1] < ret[0]);
            bench_row("loss_clip fwd+bwd", "B=4096 D=512", flops, ns,
                      one ? "torch 1 matmul + .T" : "torch open_clip", one ? ret[1] : ret[0],
                      one ? def[1] : def[0]);
            bench_row("loss_clip fwd+bwd", "B=4096 D=512", flops, ns,
                      one ? "torch open_clip (extra)" : "torch 1 matmul + .T (extra)",
                      one ? ret[0] : ret[1], one ? def[0] : def[1]);
        } else {
            bench_row("loss_siglip fwd+bwd", "B=4096 D=512", flops, ns, "torch open_clip", ret[2],
                      def[2]);
        }
        gemm_row(k ? "loss_siglip tile GEMMs" : "loss_clip tile GEMMs", &g, gns, ns);
        free(g.ws);
        teardown(&c, buf);
    }
}

static void fmt_bytes(char *s, size_t n, double b)
{
    if (b < 0)
        snprintf(s, n, "n/a");
    else if (b >= 1 << 30)
        snprintf(s, n, "%7.2f GiB", b / (1 << 30));
    else
        snprintf(s, n, "%7.2f MiB", b / (1 << 20));
}

/* Memory at B = 16384, D = 256 (no compute on libmm's side: the reservation is all a call
 * uses, which tests/test_loss.c checks with a counting allocator). */
static void memory_rows(void)
{
    const int64_t n = 16384, d = 256;
    for (int k = 0; k < 2; k++) {
        int32_t kind = k ? MM_LOSS_SIGLIP : MM_LOSS_CLIP;
        mm_loss_opts o;
        mm_loss *h = NULL;
        double ws = -1, peer = -1;
        char args[64], mine[32], theirs[32], ratio[16];
        snprintf(args, sizeof args, "peak %s %lld %lld", k ? "siglip" : "clip", (long long)n,
                 (long long)d);
        if (bench_peer_python("peer_torch_loss.py", args, &peer, 1) != 1) peer = -1;
        if (mm_loss_opts_init(&o, kind) == MM_OK) {
            o.max_batch = n;
            o.max_dim = d;
            if (mm_loss_create(&h, &o) == MM_OK &&
                mm_loss_get_f64(h, MM_LOSS_STAT_WORKSPACE_BYTES, &ws) == MM_OK)
                ws += 2.0 * (double)(n * d) * sizeof(float); /* dx and dy */
            mm_loss_free(h);
        }
        fmt_bytes(mine, sizeof mine, ws);
        fmt_bytes(theirs, sizeof theirs, peer); /* peak RSS, one run with glibc's malloc */
        if (ws > 0 && peer > 0)
            snprintf(ratio, sizeof ratio, "%.0f", peer / ws);
        else
            snprintf(ratio, sizeof ratio, "n/a");
        printf("| %-24s | %-18s | %-24s | %-26s | %-24s | %-24s | %5s |\n",
               k ? "loss_siglip memory" : "loss_clip memory", "B=16384 D=256", mine,
               "torch peak RSS", theirs, "-", ratio);
        fflush(stdout);
    }
}

void bench_loss(void)
{
    time_rows();
    memory_rows();
    bench_note("loss tile GEMMs rows: every tile GEMM of one fwd+bwd call, packing included, "
               "replayed by the kernel without the element-wise passes (same shapes, operands, "
               "order, workspace; samples alternating with the full call's); GF/s = the flops "
               "those GEMMs do (CLIP 8 B^2 D, SigLIP 6 B^2 D) / the replay's median; %% of the "
               "best ISA's one-core FMA peak; 'of the call' = replay median / fwd+bwd median");
    bench_note("loss memory rows: libmm = workspace reserved at create + dx + dy; torch = growth "
               "of the process's peak RSS over one fwd+bwd, one run with glibc's malloc (the "
               "retained column holds it: a peak is not a time); ratio = torch / libmm");
}
