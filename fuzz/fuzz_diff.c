/* SPDX-License-Identifier: MIT */
/* fuzz_diff.c — differential libFuzzer target: the fast paths against slow references on
 * random small shapes.
 *   attention: mm_attn_forward SOFTMAX (tiled online softmax), causal or not, N != M allowed,
 *              against a float64 softmax(q k^T / sqrt(d)) v written here;
 *   scan:      MM_SSM_SSD chunked (chunk Q from the input) against one chunk (Q = L), with
 *              and without an initial state;
 *   losses:    CLIP and SigLIP tiled (tile 8) against untiled (tile >= B) and CLIP against a
 *              float64 reference.
 * Input: bytes that pick the sizes and seed the values. Oracle: agreement within float32
 * rounding (relative 1e-4 of the largest magnitude), statuses MM_OK for valid calls. */
#include "mm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rd {
    const uint8_t *p;
    size_t n, i;
    uint64_t s;
} rd;

static unsigned byte(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static int64_t pick(rd *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(byte(r) % (unsigned)(hi - lo + 1));
}

static float uni(rd *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(r->s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static mm_tensor *rnd(rd *r, int32_t nd, const int64_t *shape, float scale)
{
    mm_tensor *t = NULL;
    if (mm_tensor_create(&t, nd, shape, NULL) != MM_OK) abort();
    for (int64_t i = 0; i < mm_tensor_numel(t); i++) mm_tensor_data(t)[i] = scale * uni(r);
    return t;
}

/* |a - b| <= rtol * max(scale, max |b|): scale is the size of what b is built from, so an
 * output that cancels to almost nothing is not held to a relative bound it cannot meet. */
static void close_to(const float *a, const double *b, int64_t n, double rtol, double scale)
{
    double m = fmax(1e-6, scale);
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= rtol * m)) abort();
}

/* As close_to, for two float32 results. */
static void close_f(const float *a, const float *b, int64_t n, double rtol, double scale)
{
    double m = fmax(1e-6, scale);
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= rtol * m)) abort();
}

static void diff_attention(rd *r)
{
    int64_t B = pick(r, 1, 2), H = pick(r, 1, 2), N = pick(r, 1, 12), M = pick(r, 1, 12);
    int64_t d = pick(r, 1, 8), dv = pick(r, 1, 8), causal = byte(r) & 1;
    int64_t qs[4] = {B, H, N, d}, ks[4] = {B, H, M, d}, vs[4] = {B, H, M, dv},
            os[4] = {B, H, N, dv};
    mm_attn_opts o;
    mm_attn *h = NULL;
    mm_tensor *q = rnd(r, 4, qs, 2), *k = rnd(r, 4, ks, 2), *v = rnd(r, 4, vs, 1), *out;
    double *ref = calloc((size_t)(B * H * N * dv), sizeof *ref);
    if (mm_attn_opts_init(&o, MM_ATTN_SOFTMAX)) abort();
    o.d_head = d, o.dv = dv, o.n_heads = H, o.max_batch = B, o.max_seq = 12,
    o.causal = (int32_t)causal;
    if (mm_attn_create(&h, &o) != MM_OK) abort();
    out = rnd(r, 4, os, 0);
    if (mm_attn_forward(h, q, k, v, out) != MM_OK) abort();
    for (int64_t bh = 0; bh < B * H; bh++)
        for (int64_t i = 0; i < N; i++) {
            const float *qi = mm_tensor_data(q) + (bh * N + i) * d;
            double w[12], mx = -INFINITY, z = 0;
            int64_t last = causal ? i + M - N : M - 1; /* bottom-right aligned */
            for (int64_t j = 0; j <= last && j < M; j++) {
                const float *kj = mm_tensor_data(k) + (bh * M + j) * d;
                double s = 0;
                for (int64_t c = 0; c < d; c++) s += (double)qi[c] * kj[c];
                w[j] = s / sqrt((double)d), mx = fmax(mx, w[j]);
            }
            for (int64_t j = 0; j <= last && j < M; j++) z += (w[j] = exp(w[j] - mx));
            for (int64_t j = 0; j <= last && j < M; j++)
                for (int64_t c = 0; c < dv; c++)
                    ref[(bh * N + i) * dv + c] +=
                        w[j] / z * mm_tensor_data(v)[(bh * M + j) * dv + c];
        }
    /* Each output row is a convex combination of v's rows: its float32 error scales with max |v|,
     * not with the (possibly cancelled) output itself. */
    double vmax = 0;
    for (int64_t i = 0; i < B * H * M * dv; i++) vmax = fmax(vmax, fabs(mm_tensor_data(v)[i]));
    close_to(mm_tensor_data(out), ref, B * H * N * dv, 1e-4, vmax);
    free(ref);
    mm_attn_free(h);
    mm_tensor_free(q), mm_tensor_free(k), mm_tensor_free(v), mm_tensor_free(out);
}

static mm_ssm *ssd_handle(int64_t H, int64_t P, int64_t N, int64_t L, int64_t Q)
{
    mm_ssm_opts o;
    mm_ssm *h = NULL;
    if (mm_ssm_opts_init(&o, MM_SSM_SSD)) abort();
    o.d_inner = H, o.head_dim = P, o.d_state = N, o.max_batch = 2, o.max_seq = L, o.chunk = Q;
    if (mm_ssm_create(&h, &o) != MM_OK) abort();
    return h;
}

static void diff_scan(rd *r)
{
    int64_t Bt = pick(r, 1, 2), L = pick(r, 1, 24), H = pick(r, 1, 3), P = pick(r, 1, 3);
    int64_t N = pick(r, 1, 4), Q = pick(r, 1, L);
    int64_t xs[4] = {Bt, L, H, P}, ts[3] = {Bt, L, H}, bs[4] = {Bt, L, 1, N}, is[4] = {Bt, H, P, N};
    mm_ssm *a = ssd_handle(H, P, N, L, Q), *b = ssd_handle(H, P, N, L, L);
    mm_ssm_inputs in;
    mm_tensor *x = rnd(r, 4, xs, 1), *dt = rnd(r, 3, ts, 2), *A = rnd(r, 1, &H, 1);
    mm_tensor *B = rnd(r, 4, bs, 1), *C = rnd(r, 4, bs, 1), *init = rnd(r, 4, is, 1);
    mm_tensor *ya = rnd(r, 4, xs, 0), *yb = rnd(r, 4, xs, 0), *la = rnd(r, 4, is, 0),
              *lb = rnd(r, 4, is, 0);
    for (int64_t i = 0; i < H; i++) mm_tensor_data(A)[i] = -fabsf(mm_tensor_data(A)[i]) - 0.05f;
    if (mm_ssm_inputs_init(&in)) abort();
    in.u = x, in.delta = dt, in.A = A, in.B = B, in.C = C;
    if (byte(r) & 1) in.init_state = init;
    if (mm_ssm_scan(a, &in, ya, la) != MM_OK || mm_ssm_scan(b, &in, yb, lb) != MM_OK) abort();
    /* Every input is of unit scale, so an output or state that cancels to almost nothing is
     * still compared against 1, the size of the terms it was summed from. */
    close_f(mm_tensor_data(ya), mm_tensor_data(yb), mm_tensor_numel(ya), 1e-4, 1.0);
    close_f(mm_tensor_data(la), mm_tensor_data(lb), mm_tensor_numel(la), 1e-4, 1.0);
    mm_ssm_free(a), mm_ssm_free(b);
    mm_tensor_free(x), mm_tensor_free(dt), mm_tensor_free(A), mm_tensor_free(B);
    mm_tensor_free(C), mm_tensor_free(init), mm_tensor_free(ya), mm_tensor_free(yb);
    mm_tensor_free(la), mm_tensor_free(lb);
}

static double pair_loss(int32_t kind, int64_t tile, const mm_tensor *x, const mm_tensor *y,
                        mm_tensor *dx, mm_tensor *dy)
{
    mm_loss_opts o;
    mm_loss *h = NULL;
    double loss = 0;
    if (mm_loss_opts_init(&o, kind)) abort();
    o.max_batch = 40, o.max_dim = 16, o.tile = tile;
    if (mm_loss_create(&h, &o) != MM_OK) abort();
    if ((kind == MM_LOSS_CLIP ? mm_loss_clip : mm_loss_siglip)(h, x, y, &loss, dx, dy) != MM_OK)
        abort();
    mm_loss_free(h);
    return loss;
}

static void diff_loss(rd *r)
{
    int64_t Bn = pick(r, 1, 40), D = pick(r, 1, 16), s[2] = {Bn, D};
    mm_tensor *x = rnd(r, 2, s, 0.5f), *y = rnd(r, 2, s, 0.5f);
    mm_tensor *dx1 = rnd(r, 2, s, 0), *dy1 = rnd(r, 2, s, 0), *dx2 = rnd(r, 2, s, 0),
              *dy2 = rnd(r, 2, s, 0);
    for (int32_t kind = MM_LOSS_CLIP; kind <= MM_LOSS_SIGLIP; kind++) {
        double l1 = pair_loss(kind, 8, x, y, dx1, dy1), l2 = pair_loss(kind, 64, x, y, dx2, dy2);
        if (!(fabs(l1 - l2) <= 1e-5 * fmax(1, fabs(l2)))) abort();
        close_f(mm_tensor_data(dx1), mm_tensor_data(dx2), Bn * D, 1e-4, 0.0);
        close_f(mm_tensor_data(dy1), mm_tensor_data(dy2), Bn * D, 1e-4, 0.0);
        if (kind == MM_LOSS_CLIP) { /* float64 reference, default t = ln(1/0.07) */
            double sc = 1 / 0.07, tot = 0;
            for (int dir = 0; dir < 2; dir++)
                for (int64_t i = 0; i < Bn; i++) {
                    double z[40], mx = -INFINITY, se = 0;
                    for (int64_t j = 0; j < Bn; j++) {
                        const float *a = mm_tensor_data(dir ? y : x) + i * D;
                        const float *b = mm_tensor_data(dir ? x : y) + j * D;
                        double dot = 0;
                        for (int64_t c = 0; c < D; c++) dot += (double)a[c] * b[c];
                        z[j] = sc * dot, mx = fmax(mx, z[j]);
                    }
                    for (int64_t j = 0; j < Bn; j++) se += exp(z[j] - mx);
                    tot += mx + log(se) - z[i];
                }
            if (!(fabs(l1 - tot / (2.0 * Bn)) <= 1e-4 * fmax(1, tot / (2.0 * Bn)))) abort();
        }
    }
    mm_tensor_free(x), mm_tensor_free(y), mm_tensor_free(dx1), mm_tensor_free(dy1);
    mm_tensor_free(dx2), mm_tensor_free(dy2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size, 0, 0};
    unsigned what;
    for (size_t i = 0; i < size; i++) r.s = r.s * 31 + data[i];
    what = byte(&r) % 3;
    if (what == 0)
        diff_attention(&r);
    else if (what == 1)
        diff_scan(&r);
    else
        diff_loss(&r);
    return 0;
}
