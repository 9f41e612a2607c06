/* SPDX-License-Identifier: MIT */
/* attn_rwkv6.c — RWKV-6 time mixing (the wkv6 operator of RWKV "Finch"):
 *   o_t = r_t^T (S_{t-1} + diag(u) k_t v_t^T),   S_t = diag(e^{w_t}) S_{t-1} + k_t v_t^T
 * with per-step, per-key-channel log-decays w_t <= 0 and a per-channel bonus u for the current
 * token. The history term r_t^T S_{t-1} is exactly the gated recurrence of attn_gated.c with
 * per-key gates w evaluated one step late: its output at step t - 1 with the query r_t. So the
 * chunkwise gated kernel runs on rows 0..n-2 of k, v, w and rows 1..n-1 of r (pointer shifts,
 * no copies) and the bonus, a diagonal term, is added in float64 sums after each chunk (a hook
 * of the gated kernel, while the chunk's rows are in cache). The backward is the
 * gated backward on the same shifted views plus the bonus's gradients. */
#include "mmi_attn_kernels.h"

#include <math.h>
#include <string.h>

size_t mmi_attn_rwkv6_ws_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv)
{
    return mmi_attn_gated_ws_floats(n, chunk, d, dv);
}

/* The gated problem of the history term: one step shorter. */
static mmi_attn_dims history_dims(const mmi_attn_dims *s)
{
    mmi_attn_dims t = *s;
    t.n = t.m = s->n - 1;
    return t;
}

/* scale * sum_c r[c] u[c] k[c] in float64: the bonus weight of one token. Eight independent
 * partial sums in fixed blocks, so the compiler vectorises the loop instead of waiting on one
 * chain of dependent float64 adds (that chain cost 10% of the forward). */
static double bonus_weight(int64_t d, float scale, const float *restrict r, const float *restrict u,
                           const float *restrict k)
{
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0.0;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (int j = 0; j < 8; j++)
            part[j] += (double)r[c + j] * (double)u[c + j] * (double)k[c + j];
    for (; c < d; c++) acc += (double)r[c] * (double)u[c] * (double)k[c];
    for (int j = 0; j < 8; j++) acc += part[j];
    return acc * (double)scale;
}

void mmi_attn_rwkv6_fwd(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                        const float *k, const float *v, float *o, float *hs, float *ws)
{
    mmi_attn_rwkv6_fwd_keep(s, w, u, r, k, v, NULL, o, hs, ws);
}

/* The bonus pass over tokens [t0, t1): o_t += c_t v_t. */
typedef struct bonus_ctx {
    const mmi_attn_dims *s;
    const float *u, *r, *k, *v;
    float *o;
} bonus_ctx;

static void bonus_rows(const bonus_ctx *b, int64_t t0, int64_t t1)
{
    const int64_t d = b->s->d, dv = b->s->dv;
    for (int64_t t = t0; t < t1; t++)
        (void)mmi_attn_rwkv_bonus(d, dv, b->s->scale, b->r + t * d, b->u, b->k + t * d,
                                  b->v + t * dv, b->o + t * dv);
}

/* After history chunk [c0, c0 + len) (output rows c0 + 1 .. c0 + len): the bonus of tokens
 * c0 .. c0 + len - 1, whose r, k, v rows the chunk has just read (or copied) and whose output
 * rows are complete (token c0's was the previous chunk's last; token 0 has no history). */
static void bonus_hook(void *ctx, int64_t c0, int64_t len)
{
    bonus_rows((const bonus_ctx *)ctx, c0, c0 + len);
}

void mmi_attn_rwkv6_fwd_keep(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                             const float *k, const float *v, const mmi_attn_keep *keep, float *o,
                             float *hs, float *ws)
{
    const int64_t n = s->n, d = s->d, dv = s->dv;
    mmi_attn_keep hist = {NULL, NULL, NULL};
    bonus_ctx b;
    MMI_ASSERT(n >= 1 && s->m == n && w && u && r && k && v && o && ws);
    if (keep) { /* the rows the history term does not copy: r_0 and the last token's k, v */
        hist.q = keep->q + d, hist.k = keep->k, hist.v = keep->v;
        memcpy(keep->q, r, sizeof(float) * (size_t)d);
        memcpy(keep->k + (n - 1) * d, k + (n - 1) * d, sizeof(float) * (size_t)d);
        memcpy(keep->v + (n - 1) * dv, v + (n - 1) * dv, sizeof(float) * (size_t)dv);
    }
    /* the bonus reads the copies, each chunk's rows as the chunk made them */
    b.s = s, b.u = u, b.o = o;
    b.r = keep ? keep->q : r, b.k = keep ? keep->k : k, b.v = keep ? keep->v : v;
    memset(o, 0, sizeof(float) * (size_t)dv); /* token 0 has no history */
    if (n > 1) {
        const mmi_attn_dims t = history_dims(s);
        const mmi_attn_chunk_hook hook = {bonus_hook, &b};
        mmi_attn_gated_fwd_keep(&t, 3, w, r + d, k, v, keep ? &hist : NULL, &hook, o + dv, hs, ws);
    }
    bonus_rows(&b, n - 1, n); /* the last token (the history's chunks stop one short) */
}

/* One token's bonus gradients over n key channels: dr += f u k, dk += f u r (float, in that
 * order) and du += dc r k (float64). Blocks of 8 on restrict pointers, so that -O2's cost model
 * turns them into vector code (the scalar loop was a tenth of the backward); each element's
 * operations are the scalar loop's, so the bits are too. */
static void bonus_bwd_row(int64_t n, float f, double dc, const float *restrict u,
                          const float *restrict r, const float *restrict k, float *restrict dr,
                          float *restrict dk, double *restrict du)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) {
            dr[c + j] += f * u[c + j] * k[c + j];
            dk[c + j] += f * u[c + j] * r[c + j];
            du[c + j] += dc * (double)r[c + j] * (double)k[c + j];
        }
    for (; c < n; c++) {
        dr[c] += f * u[c] * k[c];
        dk[c] += f * u[c] * r[c];
        du[c] += dc * (double)r[c] * (double)k[c];
    }
}

/* y += a x over n floats (blocks of 8, as above). */
static void axpy_row(int64_t n, float a, const float *restrict x, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] += a * x[c + j];
    for (; c < n; c++) y[c] += a * x[c];
}

void mmi_attn_rwkv6_bwd(const mmi_attn_dims *s, const float *w, const float *u, const float *r,
                        const float *k, const float *v, const float *dout, float *dr, float *dk,
                        float *dv, float *dw, float *du, const float *hs, float *ws)
{
    const int64_t n = s->n, d = s->d, dvw = s->dv;
    double dug[512];
    MMI_ASSERT(n >= 1 && s->m == n && w && u && r && k && v && dout && dr && dk && dv && ws);
    /* rows the history term does not reach: r_0, and k, v, w of the last token */
    memset(dr, 0, sizeof(float) * (size_t)d);
    memset(dk + (n - 1) * d, 0, sizeof(float) * (size_t)d);
    memset(dv + (n - 1) * dvw, 0, sizeof(float) * (size_t)dvw);
    if (dw) memset(dw + (n - 1) * d, 0, sizeof(float) * (size_t)d);
    if (n > 1) {
        const mmi_attn_dims t = history_dims(s);
        mmi_attn_gated_bwd(&t, 3, w, r + d, k, v, dout + dvw, dr + d, dk, dv, dw, hs, ws);
    }
    /* bonus: o_t += c_t v_t, c_t = scale sum_c r u k; dc_t = dout_t . v_t */
    for (int64_t c0 = 0; c0 < d; c0 += 512) { /* du in float64 pieces: no workspace needed */
        const int64_t nc = d - c0 < 512 ? d - c0 : 512;
        memset(dug, 0, sizeof(double) * (size_t)nc);
        for (int64_t t = 0; t < n; t++) {
            const float *rt = r + t * d + c0, *kt = k + t * d + c0;
            const double dc = mmi_attn_dot64(dvw, dout + t * dvw, v + t * dvw) * (double)s->scale;
            const float f = (float)dc;
            bonus_bwd_row(nc, f, dc, u + c0, rt, kt, dr + t * d + c0, dk + t * d + c0, dug);
            if (c0 == 0) { /* c_t in the bits of mmi_attn_rwkv_bonus */
                const float cw = (float)bonus_weight(d, s->scale, r + t * d, u, k + t * d);
                axpy_row(dvw, cw, dout + t * dvw, dv + t * dvw);
            }
        }
        if (du)
            for (int64_t c = 0; c < nc; c++) du[c0 + c] = (float)dug[c];
    }
}

void mmi_attn_rwkv6_step(int64_t d, int64_t dv, float scale, const float *w, const float *u,
                         const float *r, const float *k, const float *v, float *st, float *o)
{
    MMI_ASSERT(d > 0 && dv > 0 && w && u && r && k && v && st && o);
    float rs[512];
    memset(o, 0, sizeof(float) * (size_t)dv);
    (void)mmi_attn_rwkv_bonus(d, dv, scale, r, u, k, v, o); /* o = c v, as the forward's */
    for (int64_t c0 = 0; c0 < d; c0 += 512) { /* readout of S_{t-1} with the scaled r */
        const int64_t nc = d - c0 < 512 ? d - c0 : 512;
        for (int64_t i = 0; i < nc; i++) rs[i] = scale * r[c0 + i];
        mmi_attn_state_step(nc, dv, NULL, NULL, st + c0 * dv, dv, NULL, NULL, rs, o);
    }
    for (int64_t i = 0; i < d; i++) { /* S_t = diag(e^w) S_{t-1} + k v^T */
        const float f = expf(w[i]), ki = k[i];
        float *row = st + i * dv;
        for (int64_t e = 0; e < dv; e++) row[e] = f * row[e] + ki * v[e];
    }
}
