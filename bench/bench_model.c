/* SPDX-License-Identifier: MIT */
/*
 * bench_model.c — mm_model workloads side by side with single-threaded PyTorch
 * (bench/peer_torch_model.py, same shapes, run in the same bench invocation):
 *   - one training step (zero_grad, forward, MSE gradient, backward, Adam) of a 4-256-256-1
 *     ReLU MLP at batch 256 (an off-policy critic) and of an 8-64-64-1 tanh MLP at batch 64;
 *   - single-observation forward of a 3-256-256-1 tanh MLP (a policy in a game's frame loop),
 *     through mm_model_forward and through the shareable mm_model_infer.
 * Every libmm case runs with zero allocations (checked by tests/test_model_api.c).
 */
#include "bench.h"

#include "mm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model_case {
    mm_model *m;
    mm_tensor *x, *y, *dy;
    float *t; /* regression target */
    int64_t n_out;
    void *ws;
    size_t ws_size;
} model_case;

/* An MLP sizes[0] - ... - sizes[n-1] with act between dense layers. */
static int build_threads(model_case *c, const int64_t *sizes, int n, int32_t act, int64_t batch,
                         int32_t n_threads)
{
    mm_model_opts o;
    int64_t xs[2] = {batch, sizes[0]}, ys[2] = {batch, sizes[n - 1]};
    float *xd = bench_alloc_floats((size_t)(batch * sizes[0]), 1);
    float *yd = bench_alloc_floats((size_t)(batch * sizes[n - 1]), 2);
    float *dyd = bench_alloc_floats((size_t)(batch * sizes[n - 1]), 3);
    int ok = xd && yd && dyd;
    memset(c, 0, sizeof *c);
    c->t = bench_alloc_floats((size_t)(batch * sizes[n - 1]), 4);
    c->n_out = batch * sizes[n - 1];
    ok = ok && c->t && mm_model_opts_init(&o) == MM_OK;
    if (ok) {
        o.input_dim = sizes[0];
        o.max_batch = batch;
        o.n_threads = n_threads;
        ok = mm_model_create(&c->m, &o) == MM_OK;
    }
    for (int i = 1; ok && i < n; i++) {
        ok = mm_model_add_dense(c->m, sizes[i], 1, MM_INIT_DEFAULT, 1.0) == MM_OK;
        if (ok && i < n - 1) ok = mm_model_add_activation(c->m, act) == MM_OK;
    }
    ok = ok && mm_model_finalize(c->m) == MM_OK &&
         mm_model_set_optimizer(c->m, MM_OPT_ADAM) == MM_OK &&
         mm_model_infer_workspace_size(c->m, batch, 1, &c->ws_size) == MM_OK &&
         (c->ws = aligned_alloc(64, (c->ws_size + 63) / 64 * 64)) != NULL &&
         mm_tensor_wrap(&c->x, xd, 2, xs, NULL) == MM_OK &&
         mm_tensor_wrap(&c->y, yd, 2, ys, NULL) == MM_OK &&
         mm_tensor_wrap(&c->dy, dyd, 2, ys, NULL) == MM_OK;
    return ok;
}

static int build(model_case *c, const int64_t *sizes, int n, int32_t act, int64_t batch)
{
    return build_threads(c, sizes, n, act, batch, 1);
}

static void train_step(void *ctx)
{
    model_case *c = (model_case *)ctx;
    float *y = mm_tensor_data(c->y), *dy = mm_tensor_data(c->dy);
    float scale = 2.0f / (float)c->n_out; /* d/dy mean((y - t)^2) */
    if (mm_model_zero_grad(c->m) != MM_OK || mm_model_forward(c->m, c->x, c->y) != MM_OK) abort();
    for (int64_t i = 0; i < c->n_out; i++) dy[i] = scale * (y[i] - c->t[i]);
    if (mm_model_backward(c->m, c->dy, NULL) != MM_OK || mm_model_step(c->m) != MM_OK) abort();
}

static void forward_only(void *ctx)
{
    model_case *c = (model_case *)ctx;
    if (mm_model_forward(c->m, c->x, c->y) != MM_OK) abort();
}

static void infer_only(void *ctx)
{
    model_case *c = (model_case *)ctx;
    if (mm_model_infer(c->m, c->x, c->y, c->ws, c->ws_size) != MM_OK) abort();
}

static void release(model_case *c)
{
    free(mm_tensor_data(c->x));
    free(mm_tensor_data(c->y));
    free(mm_tensor_data(c->dy));
    mm_tensor_free(c->x);
    mm_tensor_free(c->y);
    mm_tensor_free(c->dy);
    mm_model_free(c->m);
    free(c->t);
    free(c->ws);
}

/* Multiply-adds x 2 of forward + backward (weight and input gradients, none for layer 0's
 * input) of an MLP: the GEMM work of a training step. */
static double train_flops(const int64_t *s, int n, int64_t batch)
{
    double f = 0;
    for (int i = 1; i < n; i++) f += (i > 1 ? 3.0 : 2.0) * 2.0 * (double)(batch * s[i - 1] * s[i]);
    return f;
}

/* The 4-256-256-1 step on 2 threads against 1 (ratio = speed-up; CPU times in the note). */
static void train_scaling(const int64_t *sizes)
{
    model_case c1, c2;
    double w1 = -1, t1 = -1, w2 = -1, t2 = -1;
    int ok = build_threads(&c1, sizes, 4, MM_ACT_RELU, 256, 1) &&
             build_threads(&c2, sizes, 4, MM_ACT_RELU, 256, 2);
    if (ok) {
        bench_median_wall_cpu_ns(train_step, &c1, 7, &w1, &t1);
        bench_median_wall_cpu_ns(train_step, &c2, 7, &w2, &t2);
        bench_note("train step 4-256-256-1 b256: wall 1T %.1f us, 2T %.1f us (x%.2f); CPU 1T "
                   "%.1f us, 2T %.1f us (both threads)",
                   w1 / 1e3, w2 / 1e3, w1 / w2, t1 / 1e3, t2 / 1e3);
    }
    bench_row("model train step 2T vs 1T", "4-256-256-1 b256", train_flops(sizes, 4, 256), w2,
              "libmm 1T (wall)", w1, BENCH_NA);
    release(&c1);
    release(&c2);
}

void bench_model(void)
{
    static const int64_t relu_sizes[4] = {4, 256, 256, 1}, tanh_sizes[4] = {8, 64, 64, 1};
    static const int64_t infer_sizes[4] = {3, 256, 256, 1};
    double peer[3], def[3], t;
    model_case c;
    bench_peer_torch("peer_torch_model.py", "15 train_relu train_tanh infer_tanh", peer, def, 3);
    if (build(&c, relu_sizes, 4, MM_ACT_RELU, 256)) {
        t = bench_median_ns(train_step, &c, 15);
        bench_row("model train step Adam", "4-256-256-1 b256", train_flops(relu_sizes, 4, 256), t,
                  "torch 1T", peer[0], def[0]);
    }
    release(&c);
    train_scaling(relu_sizes);
    if (build(&c, tanh_sizes, 4, MM_ACT_TANH, 64)) {
        t = bench_median_ns(train_step, &c, 15);
        bench_row("model train step Adam", "8-64-64-1 tanh b64", train_flops(tanh_sizes, 4, 64), t,
                  "torch 1T", peer[1], def[1]);
    }
    release(&c);
    if (build(&c, infer_sizes, 4, MM_ACT_TANH, 1)) {
        t = bench_median_ns(forward_only, &c, 31);
        bench_row("model forward 1 obs", "3-256-256-1 tanh", -1, t, "torch 1T", peer[2], def[2]);
        t = bench_median_ns(infer_only, &c, 31);
        bench_row("model infer 1 obs", "3-256-256-1 tanh", -1, t, "torch 1T", peer[2], def[2]);
    }
    release(&c);
}
