/* SPDX-License-Identifier: MIT */
/*
 * ggml_peer.c — libmm's C kernels against ggml's CPU operators at libmm's bench shapes, one
 * thread each, libmm and ggml samples alternating in one process (bench_pair_median_ns, process
 * CPU time). Built only by `make bench-ggml GGML_DIR=<a ggml source tree>` against the build the
 * user made there (GGML_BUILD, default $(GGML_DIR)/build); nothing of ggml is part of libmm.
 *
 * ggml's operators are forward only, so every row is a forward:
 *   ggml_ssm_scan (Mamba-1: per-state A, K = 1)  vs mm_ssm_scan (SELECTIVE, no D, z or bias:
 *                                                   ggml applies those outside the operator)
 *   ggml_gated_linear_attn (GLA)                  vs mm_attn_forward_gated, per-key log-gates
 *   ggml_rwkv_wkv6                                vs mm_attn_forward_rwkv6 (MM_ATTN_RWKV6)
 *   ggml_flash_attn_ext, causal mask, f32 K/V     vs mm_attn_forward (SOFTMAX, causal)
 *   ggml_mul_mat (y = x W^T)                      vs libmm's GEMM (mmi_gemm_native, NT)
 * libmm's attention forward also saves what its backward needs (copies of the inputs); ggml's
 * does not. Inputs are random; the values do not change the work of either side.
 */
#include "bench.h"

#include "kernels/gemm/mmi_gemm.h"
#include "mm.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ggml side ------------------------------------------------------------------------------ */
typedef struct ggml_case {
    struct ggml_context *ctx;
    struct ggml_cgraph *gf;
    struct ggml_cplan plan;
    void *work;
} ggml_case;

static struct ggml_context *ggml_ctx(size_t bytes)
{
    struct ggml_init_params p = {bytes + (64u << 20), NULL, false};
    struct ggml_context *ctx = ggml_init(p);
    if (!ctx) {
        fprintf(stderr, "ggml_peer: ggml_init failed\n");
        exit(1);
    }
    return ctx;
}

static void fill(struct ggml_tensor *t, float lo, float hi, uint64_t seed)
{
    const int64_t n = ggml_nelements(t);
    float *r = bench_alloc_floats((size_t)n, seed);
    if (!r) exit(1);
    for (int64_t i = 0; i < n; i++) r[i] = lo + (hi - lo) * 0.5f * (r[i] + 1.0f);
    if (t->type == GGML_TYPE_F32)
        memcpy(t->data, r, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++) ((ggml_fp16_t *)t->data)[i] = ggml_fp32_to_fp16(r[i]);
    free(r);
}

static void ggml_finish(ggml_case *g, struct ggml_tensor *out)
{
    g->gf = ggml_new_graph(g->ctx);
    ggml_build_forward_expand(g->gf, out);
    g->plan = ggml_graph_plan(g->gf, 1, NULL);
    g->work = g->plan.work_size ? malloc(g->plan.work_size) : NULL;
    if (g->plan.work_size && !g->work) exit(1);
    g->plan.work_data = (uint8_t *)g->work;
}

static void run_ggml(void *ctx)
{
    ggml_case *g = (ggml_case *)ctx;
    if (ggml_graph_compute(g->gf, &g->plan) != GGML_STATUS_SUCCESS) {
        fprintf(stderr, "ggml_peer: ggml_graph_compute failed\n");
        exit(1);
    }
}

static void ggml_case_free(ggml_case *g)
{
    free(g->work);
    ggml_free(g->ctx);
}

/* ---- libmm side ----------------------------------------------------------------------------- */
static mm_tensor *tensor(int32_t ndim, const int64_t *shape, float lo, float hi, uint64_t seed)
{
    mm_tensor *t = NULL;
    int64_t n = 1;
    float *r;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    r = bench_alloc_floats((size_t)n, seed);
    if (!r || mm_tensor_create(&t, ndim, shape, NULL) != MM_OK) exit(1);
    for (int64_t i = 0; i < n; i++) mm_tensor_data(t)[i] = lo + (hi - lo) * 0.5f * (r[i] + 1.0f);
    free(r);
    return t;
}

/* ---- selective scan ------------------------------------------------------------------------- */
typedef struct scan_case {
    mm_ssm *h;
    mm_ssm_inputs in;
    mm_tensor *t[6], *y;
} scan_case;

static void run_scan(void *ctx)
{
    scan_case *c = (scan_case *)ctx;
    if (mm_ssm_scan(c->h, &c->in, c->y, NULL) != MM_OK) {
        fprintf(stderr, "ggml_peer: mm_ssm_scan: %s\n", mm_ssm_errmsg(c->h));
        exit(1);
    }
}

static void row_scan(int64_t B, int64_t D, int64_t L, int64_t N)
{
    scan_case c;
    ggml_case g;
    mm_ssm_opts o;
    struct ggml_tensor *s, *x, *dt, *A, *Bm, *Cm, *ids;
    char shape[48];
    double a, b;
    memset(&c, 0, sizeof c);
    if (mm_ssm_opts_init(&o, MM_SSM_SELECTIVE) != MM_OK) exit(1);
    o.d_inner = D, o.d_state = N, o.max_batch = B, o.max_seq = L;
    if (mm_ssm_create(&c.h, &o) != MM_OK || mm_ssm_inputs_init(&c.in) != MM_OK) exit(1);
    c.in.u = c.t[0] = tensor(3, (int64_t[]){B, D, L}, -1, 1, 1);
    c.in.delta = c.t[1] = tensor(3, (int64_t[]){B, D, L}, -4, -1, 2);
    c.in.A = c.t[2] = tensor(2, (int64_t[]){D, N}, -8, -1, 3);
    c.in.B = c.t[3] = tensor(3, (int64_t[]){B, N, L}, -1, 1, 4);
    c.in.C = c.t[4] = tensor(3, (int64_t[]){B, N, L}, -1, 1, 5);
    c.y = c.t[5] = tensor(3, (int64_t[]){B, D, L}, 0, 0, 6);

    memset(&g, 0, sizeof g);
    g.ctx = ggml_ctx((size_t)(4 * B * D * L + 2 * B * N * L + D * N + 2 * B * D * N) *
                     sizeof(float) * 2);
    s = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, N, 1, D, B);
    x = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, 1, D, L, B);
    dt = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, D, L, B);
    A = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, N, D);
    Bm = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, N, 1, L, B);
    Cm = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, N, 1, L, B);
    ids = ggml_new_tensor_1d(g.ctx, GGML_TYPE_I32, B);
    fill(s, 0, 0, 1), fill(x, -1, 1, 1), fill(dt, -4, -1, 2), fill(A, -8, -1, 3);
    fill(Bm, -1, 1, 4), fill(Cm, -1, 1, 5);
    for (int64_t i = 0; i < B; i++) ((int32_t *)ids->data)[i] = (int32_t)i;
    ggml_finish(&g, ggml_ssm_scan(g.ctx, s, x, dt, A, Bm, Cm, ids, 1));

    bench_pair_median_ns(run_scan, &c, run_ggml, &g, 7, &a, &b);
    snprintf(shape, sizeof shape, "%lldx%lldx%lld N%lld", (long long)B, (long long)D, (long long)L,
             (long long)N);
    bench_row("sel scan fwd (Mamba-1)", shape, -1, a, "ggml_ssm_scan", b, BENCH_NA);
    for (int i = 0; i < 6; i++) mm_tensor_free(c.t[i]);
    mm_ssm_free(c.h);
    ggml_case_free(&g);
}

/* ---- attention ------------------------------------------------------------------------------ */
enum { BH = 8, DH = 64 };

typedef struct attn_case {
    mm_attn *h;
    mm_tensor *q, *k, *v, *g, *u, *o; /* u: RWKV-6 bonus (g then holds w) */
} attn_case;

static void run_attn(void *ctx)
{
    attn_case *c = (attn_case *)ctx;
    int rc = c->u   ? mm_attn_forward_rwkv6(c->h, c->q, c->k, c->v, c->g, c->u, c->o)
             : c->g ? mm_attn_forward_gated(c->h, c->q, c->k, c->v, c->g, c->o)
                    : mm_attn_forward(c->h, c->q, c->k, c->v, c->o);
    if (rc != MM_OK) {
        fprintf(stderr, "ggml_peer: attention: %s\n", mm_attn_errmsg(c->h));
        exit(1);
    }
}

static void attn_open(attn_case *c, int32_t kind, int64_t n, int gated)
{
    mm_attn_opts o;
    const int64_t s4[4] = {1, BH, n, DH};
    memset(c, 0, sizeof *c);
    if (mm_attn_opts_init(&o, kind) != MM_OK) exit(1);
    o.d_head = DH, o.n_heads = BH, o.max_seq = n, o.causal = 1;
    if (mm_attn_create(&c->h, &o) != MM_OK) exit(1);
    c->q = tensor(4, s4, -0.5f, 0.5f, 1), c->k = tensor(4, s4, -0.5f, 0.5f, 2);
    c->v = tensor(4, s4, -0.5f, 0.5f, 3), c->o = tensor(4, s4, 0, 0, 4);
    if (gated) c->g = tensor(4, s4, logf(0.9f), 0.0f, 5);
    if (kind == MM_ATTN_RWKV6) c->u = tensor(2, (int64_t[]){BH, DH}, -0.5f, 0.5f, 7);
}

static void attn_close(attn_case *c)
{
    mm_attn_free(c->h);
    mm_tensor_free(c->q), mm_tensor_free(c->k), mm_tensor_free(c->v);
    mm_tensor_free(c->o), mm_tensor_free(c->g), mm_tensor_free(c->u);
}

/* GLA (wkv6 = 0) against libmm's per-key gated forward, or RWKV-6 (wkv6 = 1) against
 * mm_attn_forward_rwkv6 (w = log of ggml's time_decay, the same range). */
static void row_gated(int64_t n, int wkv6)
{
    attn_case c;
    ggml_case g;
    struct ggml_tensor *k, *v, *q, *gt, *st, *out;
    char shape[48];
    double a, b;
    attn_open(&c, wkv6 ? MM_ATTN_RWKV6 : MM_ATTN_GATED, n, 1);
    memset(&g, 0, sizeof g);
    g.ctx = ggml_ctx((size_t)(6 * BH * n * DH + 3 * BH * DH * DH) * sizeof(float));
    k = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, DH, BH, n);
    v = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, DH, BH, n);
    q = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, DH, BH, n);
    gt = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, DH, BH, n); /* gates: multipliers in (0.9, 1) */
    st = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, DH * DH * BH, 1);
    fill(k, -0.5f, 0.5f, 2), fill(v, -0.5f, 0.5f, 3), fill(q, -0.5f, 0.5f, 1);
    fill(gt, 0.9f, 1.0f, 5), fill(st, 0, 0, 6);
    if (wkv6) {
        struct ggml_tensor *tf = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, DH, BH);
        fill(tf, -0.5f, 0.5f, 7);
        out = ggml_rwkv_wkv6(g.ctx, k, v, q, tf, gt, st);
    } else {
        out = ggml_gated_linear_attn(g.ctx, k, v, q, gt, st, 0.125f);
    }
    ggml_finish(&g, out);
    bench_pair_median_ns(run_attn, &c, run_ggml, &g, 7, &a, &b);
    snprintf(shape, sizeof shape, "BH8 N%lld d64", (long long)n);
    bench_row(wkv6 ? "RWKV-6 fwd" : "GLA fwd (per-key gates)", shape, -1, a,
              wkv6 ? "ggml_rwkv_wkv6" : "ggml_gated_linear_attn", b, BENCH_NA);
    attn_close(&c);
    ggml_case_free(&g);
}

static void row_flash(int64_t n)
{
    attn_case c;
    ggml_case g;
    struct ggml_tensor *q, *k, *v, *mask;
    char shape[48];
    double a, b;
    attn_open(&c, MM_ATTN_SOFTMAX, n, 0);
    memset(&g, 0, sizeof g);
    g.ctx = ggml_ctx((size_t)(4 * BH * n * DH) * sizeof(float) + (size_t)(n * n) * 2);
    q = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, DH, n, BH, 1);
    k = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, DH, n, BH, 1);
    v = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F32, DH, n, BH, 1);
    mask = ggml_new_tensor_4d(g.ctx, GGML_TYPE_F16, n, n, 1, 1);
    fill(q, -0.5f, 0.5f, 1), fill(k, -0.5f, 0.5f, 2), fill(v, -0.5f, 0.5f, 3);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            ((ggml_fp16_t *)mask->data)[i * n + j] = ggml_fp32_to_fp16(j <= i ? 0.0f : -INFINITY);
    ggml_finish(&g, ggml_flash_attn_ext(g.ctx, q, k, v, mask, 0.125f, 0.0f, 0.0f));
    bench_pair_median_ns(run_attn, &c, run_ggml, &g, 7, &a, &b);
    snprintf(shape, sizeof shape, "BH8 N%lld d64", (long long)n);
    bench_row("softmax causal fwd", shape, 4.0 * BH * (double)n * (double)n * DH / 2, a,
              "ggml_flash_attn_ext f32", b, BENCH_NA);
    attn_close(&c);
    ggml_case_free(&g);
}

/* ---- GEMM ----------------------------------------------------------------------------------- */
typedef struct gemm_case {
    int64_t m, n, k;
    float *x, *w, *y;
    void *ws;
} gemm_case;

static void run_gemm(void *ctx)
{
    gemm_case *c = (gemm_case *)ctx;
    mmi_gemm_native(0, 1, c->m, c->n, c->k, 1.0f, c->x, c->k, c->w, c->k, 0.0f, c->y, c->n, c->ws,
                    NULL);
}

static void row_gemm(int64_t m, int64_t n, int64_t k)
{
    gemm_case c;
    ggml_case g;
    struct ggml_tensor *w, *x;
    char shape[48];
    double a, b;
    c.m = m, c.n = n, c.k = k;
    c.x = bench_alloc_floats((size_t)(m * k), 1), c.w = bench_alloc_floats((size_t)(n * k), 2);
    c.y = bench_alloc_floats((size_t)(m * n), 3), c.ws = aligned_alloc(64, mmi_gemm_ws_size(1));
    if (!c.x || !c.w || !c.y || !c.ws) exit(1);
    memset(&g, 0, sizeof g);
    g.ctx = ggml_ctx((size_t)(m * k + n * k + m * n) * sizeof(float));
    w = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, k, n);
    x = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, k, m);
    memcpy(w->data, c.w, (size_t)(n * k) * sizeof(float));
    memcpy(x->data, c.x, (size_t)(m * k) * sizeof(float));
    ggml_finish(&g, ggml_mul_mat(g.ctx, w, x));
    bench_pair_median_ns(run_gemm, &c, run_ggml, &g, 9, &a, &b);
    snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
    bench_row("sgemm y = x W^T (NT)", shape, 2.0 * (double)m * (double)n * (double)k, a,
              "ggml_mul_mat f32", b, BENCH_NA);
    free(c.x), free(c.w), free(c.y), free(c.ws);
    ggml_case_free(&g);
}

/* argv[1] (optional): run only the rows whose group is named there (scan, gated, flash, gemm),
 * e.g. `ggml_peer gated` for repeated A/B runs of the gated rows. */
static int want(int argc, char **argv, const char *group)
{
    return argc < 2 || strstr(argv[1], group) != NULL;
}

int main(int argc, char **argv)
{
    bench_machine_print();
    bench_peak_print();
    printf("ggml: one thread (ggml_graph_plan n_threads 1); samples of libmm and ggml alternate\n");
    printf("\n### ggml\n\n");
    printf("| %-24s | %-18s | %-24s | %-26s | %-24s | %-24s | %5s |\n", "case", "shape", "libmm",
           "peer", "peer (retained)", "peer (glibc)", "ratio");
    printf("|--------------------------|--------------------|--------------------------|"
           "----------------------------|--------------------------|--------------------------|"
           "------:|\n");
    if (want(argc, argv, "scan")) row_scan(2, 256, 1024, 16), row_scan(2, 768, 1024, 16);
    if (want(argc, argv, "gated")) row_gated(2048, 0), row_gated(2048, 1);
    if (want(argc, argv, "flash")) row_flash(2048);
    if (want(argc, argv, "gemm")) {
        row_gemm(1, 256, 256);
        row_gemm(32, 256, 256);
        row_gemm(256, 256, 256);
        row_gemm(1024, 1024, 1024);
    }
    bench_note("ggml: forward only (ggml has no backward for these operators); the peer column "
               "is ggml's time, the ratio ggml / libmm; peer (glibc) does not apply to a C peer");
    bench_flush_notes();
    return 0;
}
