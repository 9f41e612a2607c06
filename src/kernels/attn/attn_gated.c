/* SPDX-License-Identifier: MIT */
/* attn_gated.c — gated linear attention S_t = diag(a_t) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t
 * (q scaled), computed chunkwise in parallel (docs/ATTENTION.md §MM_ATTN_GATED, GLA / flash-linear-attention form):
 * inside a chunk the log-gates are summed from the chunk start (b_t, float64, gates clamped at
 * GATE_FLOOR), the inter-chunk term reads the state entering the chunk and the intra-chunk
 * term pairs q_t with k_s (s <= t) through exp(b_t - b_s) <= 1. A mild chunk (no channel
 * decays below e^-20 across it) factors at its start and runs as GEMM tiles forward and
 * backward; other chunks use sub-chunk references (FLA's secondary chunking) with row
 * primitives and running products inside each sub-chunk, so nothing overflows however
 * strong the gates. The backward recomputes the chunk-entry states forward, then walks the
 * chunks in reverse with the state gradient; the gate gradient uses
 * dB_t = q_t . dq_t - k_t . dk_t and a reverse cumulative sum (FLA's identity). */
#include "mmi_attn_kernels.h"
#include "../gemm/mmi_gemm.h"

#include <math.h>
#include <string.h>

/* Vector gates: sub-chunks of SUB steps share a reference point n (their first step), so the
 * pairs across sub-chunks factor as (q_t e^{b_t - b_n}) . (k_u e^{b_n - b_u}) with both
 * exponents <= 0 (FLA's secondary chunking); only pairs inside a sub-chunk are elementwise. */
#define SUB 16

size_t mmi_attn_gated_ws_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv)
{
    /* b (C x d doubles), acc (d doubles), A and DV (C x C), qs (C x d), 4 vectors of d, state gradient, chunk
     * states, transposed key and value chunks, A^T and DV^T, ke (C x d), qe (SUB x d), ex (d),
     * ag (C x d), tr (d x dv). Checked: SIZE_MAX when it does not fit (the caller's reservation
     * refuses that). */
    const int64_t nch = chunk > 0 && n >= 0 ? n / chunk + (n % chunk != 0) : MMI_SIZE_BAD;
    const int64_t cd = mmi_sz_mul(chunk, d), cc = mmi_sz_mul(chunk, chunk);
    const int64_t ddv = mmi_sz_mul(d, dv);
    int64_t k = mmi_sz_add(mmi_sz_mul(5, cd), mmi_sz_mul(4, cc));        /* 2cd + cd + cd + cd */
    k = mmi_sz_add(k, mmi_sz_add(mmi_sz_mul(7, d), mmi_sz_mul(2, ddv))); /* acc: 2d */
    k = mmi_sz_add(k, mmi_sz_mul(mmi_sz_add(nch, 1), ddv));
    k = mmi_sz_add(k, mmi_sz_add(mmi_sz_mul(chunk, mmi_sz_add(d, dv)), mmi_sz_mul(SUB, d)));
    return mmi_sz_to(mmi_sz_add(k, 128));
}

size_t mmi_attn_gated_hs_floats(int64_t n, int64_t chunk, int64_t d, int64_t dv)
{
    const int64_t nch = chunk > 0 && n >= 0 ? n / chunk + (n % chunk != 0) : MMI_SIZE_BAD;
    return mmi_sz_to(mmi_sz_mul(nch, mmi_sz_add(mmi_sz_mul(d, dv), mmi_sz_mul(chunk, chunk))));
}

typedef struct gated_ws {
    double *b;   /* cumulative log-gates from the chunk start */
    double *acc; /* per-key gate gradient: the reverse cumulative sum so far (d values) */
    /* ag: per-step factors e^{g_t} (strong chunks) or k e^{-b} (mild chunks); tr: a transposed
     * d x dv state or state gradient */
    /* qs: the scaled queries, except in the backward's mild per-key chunks, where the gate
     * pass leaves E = e^{b} rows there for the unfactoring (chunk_bwd_mild) */
    float *a, *dvm, *qs, *e1, *e2, *tmp, *ds, *states, *kt, *vt, *at, *wt, *ke, *qe, *ex, *ag, *tr;
    /* a_home: where A is formed (workspace, or the forward's save slot of the chunk); a_saved:
     * the chunk's A as the forward saved it (backward with saved states), used for mild chunks
     * instead of forming it again (bitwise the same tile) */
    float *a_home;
    const float *a_saved;
    int scalar; /* gates without a key dimension (modes 0-2): every row of b is one value */
    /* Prefetch plan of the per-key gate pass: pf_step is where the chunk that runs next starts
     * relative to this one (+chunk forward, -chunk on the backward's reverse walk), whose g, q
     * and k rows the pass fetches. The backward also fetches what the rest of this chunk's
     * gradients read (its rows of pf_v and pf_do, its saved state and A, pf_st and pf_a: d x dv
     * and chunk x chunk floats, NULL when not saved) into L1, spread over the pass's rows
     * (prefetch_bwd); and the same of the next chunk into L2, with its gradient rows for
     * writing (pf_dq, pf_dk, pf_dv, pf_dg; pf_dg may be NULL). Fetched into L1 a whole chunk
     * ahead, the lines were measured gone again by their use. */
    int64_t pf_step;
    const float *pf_v, *pf_do, *pf_st, *pf_a;
    /* A forward that keeps its inputs (mmi_attn_gated_fwd_keep) reads the copies, so the
     * caller's rows of the next chunk, which the copy reads, are what the gate pass fetches:
     * src_q, src_k, src_v (NULL: fetch the rows the kernel reads) */
    const float *src_q, *src_k, *src_v;
    /* with src_q: the copies of v (q and k are the copies, the kernel's own q and k) */
    float *keep_v;
    /* forward with saved states: the slot the chunk's state update writes (d x dv floats),
     * fetched for writing over the gate pass's rows (NULL: none) */
    float *pf_hs;
    float *pf_dq, *pf_dk, *pf_dv, *pf_dg;
} gated_ws;

static gated_ws split_ws(int64_t n, int64_t chunk, int64_t d, int64_t dv, float *ws)
{
    gated_ws w;
    MMI_ASSERT(((uintptr_t)ws & 7) == 0); /* b is read as doubles */
    w.b = (double *)ws;
    w.acc = w.b + chunk * d;
    w.scalar = 0;
    w.pf_step = chunk;
    w.pf_v = w.pf_do = w.pf_st = w.pf_a = NULL;
    w.src_q = w.src_k = w.src_v = NULL;
    w.keep_v = NULL;
    w.pf_hs = NULL;
    w.pf_dq = w.pf_dk = w.pf_dv = w.pf_dg = NULL;
    w.a = w.a_home = ws + 2 * chunk * d + 2 * d;
    w.a_saved = NULL;
    w.dvm = w.a + chunk * chunk;
    w.qs = w.dvm + chunk * chunk;
    w.e1 = w.qs + chunk * d;
    w.e2 = w.e1 + d;
    w.tmp = w.e2 + d;
    w.ds = w.tmp + 2 * d;
    w.states = w.ds + d * dv;
    w.kt = w.states + ((n + chunk - 1) / chunk + 1) * d * dv;
    w.vt = w.kt + chunk * d;
    w.at = w.vt + chunk * dv;
    w.wt = w.at + chunk * chunk;
    w.ke = w.wt + chunk * chunk;
    w.qe = w.ke + chunk * d;
    w.ex = w.qe + SUB * d;
    w.ag = w.ex + d;
    w.tr = w.ag + chunk * d;
    return w;
}

/* A decay factor from a difference of cumulative log-gates. The difference is taken in float64
 * (both terms can be large after a strong gate; their float32 roundings would put an error of
 * |b| x 6e-8 into every factor) and is small or the factor negligible, so float32 exp after. */
static float dexp(double x) { return expf((float)x); }

/* out[c] = e^{a[c] - b[c]} (b NULL: e^{a[c]}) for c < n, the same rule vectorised: these
 * factor rows are the elementwise part of the per-key gate path. With scalar gates every row
 * of b holds one value, so one scalar exponential fills the row (a one-lane call of the vector
 * routine cost as much as a whole row). */
static void exp_diff(const gated_ws *w, int64_t n, const double *restrict a,
                     const double *restrict b, float *restrict out)
{
    int64_t c = 0;
    if (w->scalar && n > 0) {
        const float e = dexp(b ? a[0] - b[0] : a[0]);
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) out[c + j] = e;
        for (; c < n; c++) out[c] = e;
        return;
    }
    if (b)
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) out[c + j] = (float)(a[c + j] - b[c + j]);
    else
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) out[c + j] = (float)a[c + j];
    for (; c < n; c++) out[c] = (float)(b ? a[c] - b[c] : a[c]);
    (void)mmi_attn_exp_sub(n, out, 0.0f, out);
}

/* y = a * b and y = alpha * a elementwise, in blocks of 8 on restrict pointers: the cost
 * model of -O2 adds no alias checks or remainder loops, so only fixed-size blocks become
 * vector code in this portable file. */
static void mul_rows(int64_t n, const float *restrict a, const float *restrict b, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] = a[c + j] * b[c + j];
    for (; c < n; c++) y[c] = a[c] * b[c];
}

/* y = a / b elementwise (a correctly rounded quotient, as the scalar division it replaces) */
static void div_rows(int64_t n, const float *restrict a, const float *restrict b, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] = a[c + j] / b[c + j];
    for (; c < n; c++) y[c] = a[c] / b[c];
}

static void scale_row(int64_t n, float alpha, const float *restrict a, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] = alpha * a[c + j];
    for (; c < n; c++) y[c] = alpha * a[c];
}

/* Rows r of the d x n matrix m scaled by f[r] (in place). */
static void scale_by_row(int64_t d, int64_t n, const float *restrict f, float *restrict m)
{
    for (int64_t r = 0; r < d; r++) {
        float *row = m + r * n;
        int64_t c = 0;
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) row[c + j] *= f[r];
        for (; c < n; c++) row[c] *= f[r];
    }
}

/* m = diag(f) src for a d x n src (the copy and the decay in one pass). */
static void scale_rows_to(int64_t d, int64_t n, const float *restrict f, const float *restrict src,
                          float *restrict m)
{
    for (int64_t r = 0; r < d; r++) {
        const float *in = src + r * n;
        float *row = m + r * n;
        int64_t c = 0;
        for (; c + 8 <= n; c += 8)
            for (int j = 0; j < 8; j++) row[c + j] = in[c + j] * f[r];
        for (; c < n; c++) row[c] = in[c] * f[r];
    }
}

/* Log-gates below this floor decay by less than expf's smallest subnormal (e^-103.3) per step,
 * so they are clamped to it: the factors they produce are 0 in float32 either way, and the
 * chunk's cumulative sums stay below 1024 x 128 in magnitude, where float64 keeps every
 * difference b_t - b_u exact to 1e-10 (an unclamped -3e38 would absorb the gates after it). */
#define GATE_FLOOR (-128.0)

static double clamp_gate(float x) { return x > GATE_FLOOR ? (double)x : GATE_FLOOR; }

/* b[t][k] = sum_{u = c0..t} g_u[k] for the chunk's L steps (double sums, clamped gates). */
static void gate_cumsum(int gmode, const float *g, int64_t c0, int64_t len, int64_t d, double *b)
{
    for (int64_t t = 0; t < len; t++) {
        const double *prev = t ? b + (t - 1) * d : NULL;
        double *bt = b + t * d;
        if (gmode == 3) {
            mmi_attn_gate_row(d, prev, g + (c0 + t) * d, bt, NULL, 0.0f, NULL, NULL, NULL, NULL);
        } else { /* one value per row: prev[0] + x (the sum every entry had) */
            const double x = gmode == 0 ? 0.0 : clamp_gate(gmode == 1 ? g[0] : g[c0 + t]);
            const double y = (prev ? prev[0] : 0.0) + x;
            int64_t k = 0;
            for (; k + 8 <= d; k += 8)
                for (int j = 0; j < 8; j++) bt[k + j] = y;
            for (; k < d; k++) bt[k] = y;
        }
    }
}

/* C = op(A) B + beta C (beta 0 or 1) through the linear kernels' tile (mmi_attn_lin_tile) where
 * the path has one and n, k <= 64: 6 x 16 register tiles on the operands in place, with the bits
 * of the GEMM tiles below (each element a chain from zero over k, then the old C added once)
 * and less overhead on these small shapes. Returns 0 when it did not run. */
static int lin_tile(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const mmi_attn_lin_seg sg = {k, a, ta ? 1 : lda, ta ? lda : 1, b, ldb};
    if (k > 64 || (beta != 0.0f && beta != 1.0f)) return 0;
    return mmi_attn_lin_tile(beta != 0.0f, m, n, &sg, 1, c, ldc);
}

/* C = op(A) B + beta C through the GEMM kernel on a shape that takes its unpacked path (no
 * workspace: chunk tiles up to 64 at widths up to 64), or lin_tile. */
static void tile(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (lin_tile(ta, m, n, k, a, lda, b, ldb, beta, c, ldc)) return;
    MMI_ASSERT(!mmi_gemm_needs_ws(ta, 0, m, n, k, 1.0f, lda, ldb, ldc));
    mmi_gemm(ta, 0, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, NULL, NULL);
}

/* tile() when the shape allows; returns 0 when it would need packing space, and the caller
 * uses its row primitives instead. */
static int gemm_tile(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (lin_tile(ta, m, n, k, a, lda, b, ldb, beta, c, ldc)) return 1;
    if (mmi_gemm_needs_ws(ta, 0, m, n, k, 1.0f, lda, ldb, ldc)) return 0;
    tile(ta, m, n, k, a, lda, b, ldb, beta, c, ldc);
    return 1;
}

/* Causal tile products in row blocks of TRI rows (16 keeps the blocks GEMM-shaped at the
 * default chunk 32). Rows [r0, r1) of a causal product reach only part of the square tile:
 *   TRI_COLS   C = X Y forms a lower-triangular A: columns < r1 (the rest is the upper
 *              triangle, zeroed by the caller);
 *   TRI_K_LOW  C = A Y with A lower triangular: inner steps < r1 (A's later columns are 0);
 *   TRI_K_HIGH C = A^T Y with A lower triangular: inner steps >= r0 (A^T's earlier ones are 0).
 * At C = 32 this skips a quarter of the square tile's flops. Returns 0 (nothing or part
 * written: the caller redoes all rows) when a block would need packing space. */
#define TRI 16
enum { TRI_COLS, TRI_K_LOW, TRI_K_HIGH };

static int causal_tiles(int mode, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (int64_t r0 = 0; r0 < m; r0 += TRI) {
        const int64_t r1 = m - r0 < TRI ? m : r0 + TRI;
        int ok;
        if (mode == TRI_COLS)
            ok = gemm_tile(0, r1 - r0, r1, k, a + r0 * lda, lda, b, ldb, beta, c + r0 * ldc, ldc);
        else if (mode == TRI_K_LOW)
            ok = gemm_tile(0, r1 - r0, n, r1, a + r0 * lda, lda, b, ldb, beta, c + r0 * ldc, ldc);
        else
            ok = gemm_tile(1, r1 - r0, n, k - r0, a + r0 * lda + r0, lda, b + r0 * ldb, ldb, beta,
                           c + r0 * ldc, ldc);
        if (!ok) return 0;
    }
    return 1;
}

/* causal_tiles() on shapes the caller checked (mild_bwd_fits: each block is smaller than the
 * square tile, so it takes the unpacked path too). */
static void causal(int mode, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const int ok = causal_tiles(mode, m, n, k, a, lda, b, ldb, beta, c, ldc);
    MMI_ASSERT(ok);
    (void)ok;
}

/* Pairs inside a sub-chunk (u <= t, at most SUB - 1 steps apart) need the decay per key
 * channel, f_c = e^{b_tc - b_uc}. It is carried as a running product of the chunk's per-step
 * factors ag_t = e^{g_t} (f = 1 at t = u, f *= ag_t per step) instead of one exp per pair and
 * channel: at most 15 roundings, a relative error below 1e-6, and underflow to 0 after a
 * strong gate as the exp would. The loops below are written in blocks of 8 on restrict
 * pointers so that -O2 (whose cost model adds no alias checks or remainder loops) still turns
 * each block into vector code. */
static void decay_step(int64_t d, const float *restrict ag, float *restrict f)
{
    int64_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (int j = 0; j < 8; j++) f[c + j] *= ag[c + j];
    for (; c < d; c++) f[c] *= ag[c];
}

/* y += x * a * b elementwise. */
static void axpy3(int64_t d, float x, const float *restrict a, const float *restrict b,
                  float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] += x * a[c + j] * b[c + j];
    for (; c < d; c++) y[c] += x * a[c] * b[c];
}

/* Eight partial sums so the compiler can keep them in one vector register. */
static float dot3(int64_t d, const float *x, const float *y, const float *z)
{
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, sum = 0.0f;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[c + j] * y[c + j] * z[c + j];
    for (; c < d; c++) sum += x[c] * y[c] * z[c];
    for (int j = 0; j < 8; j++) sum += acc[j];
    return sum;
}

static void ones(int64_t d, float *f)
{
    for (int64_t c = 0; c < d; c++) f[c] = 1.0f;
}

/* A sub-chunk is mild when no key channel decays by more than e^-MILD across it. Its own pairs
 * then factor like the pairs across sub-chunks, (q_t e^{b_t - b_n}) . (k_u e^{b_n - b_u}) with
 * reference n = t0, the key factor at most e^MILD (no overflow) and each factor's exponent
 * rounded to float32 with a relative error of at most MILD x 6e-8 = 1.2e-6, so they run through
 * the row primitives; other sub-chunks keep the elementwise running products. */
#define MILD 20.0

static int sub_mild(const double *b, int64_t d, int64_t t0, int64_t t1)
{
    for (int64_t c = 0; c < d; c++)
        if (b[t0 * d + c] - b[(t1 - 1) * d + c] > MILD) return 0;
    return 1;
}

/* 1 if no key channel decays below e^-MILD across the chunk (its cumulative gates in b). */
static int chunk_is_mild(const gated_ws *w, int64_t d, int64_t len)
{
    for (int64_t c = 0; c < d; c++)
        if (-w->b[(len - 1) * d + c] > MILD) return 0;
    return 1;
}

/* A whole mild chunk (every channel's e^{b_t} >= e^-MILD; then every sub-chunk is mild too)
 * factors at the chunk start: A = tril((q~ e^{b}) (k e^{-b})^T), one tile product. Expects
 * q~ e^{b} in ke and k e^{-b} in ag (row-major); leaves k e^{-b} transposed in kt as well. */
static void chunk_mild_tiles(const mmi_attn_dims *s, int64_t len, gated_ws *w)
{
    const int64_t d = s->d, ch = s->chunk;
    if (w->a_saved) { /* read only from here on: the mild backward does not write A */
        w->a = (float *)(uintptr_t)w->a_saved;
        return;
    }
    mmi_attn_transpose(len, d, w->ag, d, w->kt, ch);
    { /* the linear kernels' tile forms the triangle with its zeros in one call */
        const mmi_attn_lin_seg sg = {d, w->ke, d, 1, w->kt, ch};
        if (mmi_attn_lin_tile(2, len, len, &sg, 1, w->a, ch)) return;
    }
    if (!causal_tiles(TRI_COLS, len, len, d, w->ke, d, w->kt, ch, 0.0f, w->a, ch))
        for (int64_t t = 0; t < len; t++)
            mmi_attn_rowmat(t + 1, d, w->ke + t * d, w->kt, ch, 1.0f, w->a + t * ch);
    for (int64_t t = 0; t < len; t++) /* causal: pairs u > t are not part of A */
        memset(w->a + t * ch + t + 1, 0, sizeof(float) * (size_t)(len - t - 1));
}

/* Scalar gates: the factored rows of a mild chunk from the scaled queries qs. */
static int chunk_mild_prep(const mmi_attn_dims *s, const float *k, int64_t c0, int64_t len,
                           gated_ws *w)
{
    const int64_t d = s->d;
    if (!chunk_is_mild(w, d, len)) return 0;
    for (int64_t t = 0; t < len; t++) {
        exp_diff(w, d, w->b + t * d, NULL, w->ex);
        mul_rows(d, w->qs + t * d, w->ex, w->ke + t * d);
        div_rows(d, k + (c0 + t) * d, w->ex, w->ag + t * d);
    }
    chunk_mild_tiles(s, len, w);
    return 1;
}

/* t[c * ch + u] = src[(c0 + u) * w + c]: a chunk transposed. */
static void chunk_t(const float *src, int64_t w, int64_t c0, int64_t len, int64_t ch, float *t)
{
    mmi_attn_transpose(len, w, src + c0 * w, w, t, ch);
}

/* The t-th of the equal slices of per floats that an n-float block is spread in over a chunk's
 * rows (per = ceil(n / len), computed once a chunk: two 64-bit divisions a row had been 22 % of
 * the forward gate pass's own samples). */
static int64_t slice(int64_t n, int64_t per, int64_t t) { return t * per < n ? t * per : n; }

static int64_t slice_len(int64_t n, int64_t per, int64_t t)
{
    return slice(n, per, t + 1) - slice(n, per, t);
}

/* The backward's share of the prefetch plan for row p of this chunk (the t-th of its rows):
 * the value and output-gradient rows and a slice of the saved state and A (per: the slice
 * sizes of the two), into L1. */
static void prefetch_bwd(const mmi_attn_dims *s, int64_t p, int64_t t, const int64_t *per,
                         const gated_ws *w)
{
    const int64_t dv = s->dv, nst = s->d * dv, na = s->chunk * s->chunk;
    PREFETCH_ROWS(w->pf_v + p * dv, dv);
    PREFETCH_ROWS(w->pf_do + p * dv, dv);
    if (w->pf_st) PREFETCH_ROWS(w->pf_st + slice(nst, per[0], t), slice_len(nst, per[0], t));
    if (w->pf_a) PREFETCH_ROWS(w->pf_a + slice(na, per[1], t), slice_len(na, per[1], t));
}

/* Scaled queries of the chunk and its intra-chunk weights A. Scalar gates factor the decay
 * out of the key sum: A = (q k^T) * exp(b_t - b_u), the product row by row on a transposed
 * key chunk; vector gates need the decay inside the sum (elementwise). */
static int chunk_prep(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                      const float *k, int64_t c0, int64_t len, gated_ws *w)
{
    const int64_t d = s->d, ch = s->chunk;
    w->a = w->a_home;
    if (gmode == 3) { /* cumulative gates and the mild chunk's factored rows in one pass */
        const int64_t nst = d * s->dv, na = ch * ch;
        const int64_t per[2] = {(nst + len - 1) / len, (na + len - 1) / len};
        for (int64_t t = 0; t < len; t++) {
            const int64_t p = c0 + t + w->pf_step;
            if (w->pf_step && p >= 0 && p < s->n) { /* the next chunk's rows, in flight now */
                PREFETCH_ROWS(g + p * d, d);
                PREFETCH_ROWS((w->src_q ? w->src_q : q) + p * d, d);
                PREFETCH_ROWS((w->src_k ? w->src_k : k) + p * d, d);
                if (w->src_v) PREFETCH_ROWS(w->src_v + p * s->dv, s->dv);
                if (w->keep_v) { /* and the rows of the copies, for writing */
                    PREFETCH_WRITE((float *)(uintptr_t)q + p * d, d);
                    PREFETCH_WRITE((float *)(uintptr_t)k + p * d, d);
                    PREFETCH_WRITE(w->keep_v + p * s->dv, s->dv);
                }
            }
            if (w->pf_hs)
                PREFETCH_WRITE(w->pf_hs + slice(nst, per[0], t), slice_len(nst, per[0], t));
            if (w->pf_v) prefetch_bwd(s, c0 + t, t, per, w);
            if (w->pf_v && p >= 0 && p < s->n) { /* the backward's next chunk, into L2 */
                PREFETCH_L2(w->pf_v + p * s->dv, s->dv);
                PREFETCH_L2(w->pf_do + p * s->dv, s->dv);
                if (w->pf_st)
                    PREFETCH_L2(w->pf_st - nst + slice(nst, per[0], t), slice_len(nst, per[0], t));
                if (w->pf_a)
                    PREFETCH_L2(w->pf_a - na + slice(na, per[1], t), slice_len(na, per[1], t));
                PREFETCH_WRITE(w->pf_dq + p * s->d, s->d);
                PREFETCH_WRITE(w->pf_dk + p * s->d, s->d);
                PREFETCH_WRITE(w->pf_dv + p * s->dv, s->dv);
                if (w->pf_dg) PREFETCH_WRITE(w->pf_dg + p * s->d, s->d);
            }
            mmi_attn_gate_row(d, t ? w->b + (t - 1) * d : NULL, g + (c0 + t) * d, w->b + t * d,
                              q + (c0 + t) * d, s->scale, k + (c0 + t) * d, w->ke + t * d,
                              w->ag + t * d, w->pf_v ? w->qs + t * d : NULL);
        }
        if (chunk_is_mild(w, d, len)) {
            chunk_mild_tiles(s, len, w);
            return 1;
        }
    } else {
        gate_cumsum(gmode, g, c0, len, d, w->b);
    }
    for (int64_t t = 0; t < len; t++) scale_row(d, s->scale, q + (c0 + t) * d, w->qs + t * d);
    if (gmode != 3 && chunk_mild_prep(s, k, c0, len, w)) return 1;
    if (gmode != 3) {
        chunk_t(k, d, c0, len, ch, w->kt);
        for (int64_t t = 0; t < len; t++) {
            float *row = w->a + t * ch;
            mmi_attn_rowmat(t + 1, d, w->qs + t * d, w->kt, ch, 1.0f, row);
            if (gmode != 0)
                for (int64_t u = 0; u <= t; u++) row[u] *= dexp(w->b[t * d] - w->b[u * d]);
        }
        return 0;
    }
    for (int64_t t = 0; t < len; t++) /* per-step factors e^{g_t} (non-mild sub-chunks) */
        exp_diff(w, d, w->b + t * d, t ? w->b + (t - 1) * d : NULL, w->ag + t * d);
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const double *bn = w->b + t0 * d;
        const int mild = sub_mild(w->b, d, t0, t1);
        for (int64_t u = 0; u < (mild ? t1 : t0); u++) { /* keys seen from reference n = t0 */
            exp_diff(w, d, bn, w->b + u * d, w->ex);
            for (int64_t c = 0; c < d; c++) w->kt[c * ch + u] = k[(c0 + u) * d + c] * w->ex[c];
        }
        for (int64_t t = t0; t < t1; t++) {
            exp_diff(w, d, w->b + t * d, bn, w->ex);
            for (int64_t c = 0; c < d; c++) w->e1[c] = w->qs[t * d + c] * w->ex[c];
            if (mild || t0 > 0)
                mmi_attn_rowmat(mild ? t + 1 : t0, d, w->e1, w->kt, ch, 1.0f, w->a + t * ch);
        }
        if (mild) continue;
        for (int64_t u = t0; u < t1; u++) { /* inside the sub-chunk: elementwise */
            ones(d, w->ex);
            for (int64_t t = u; t < t1; t++) {
                if (t > u) decay_step(d, w->ag + t * d, w->ex);
                w->a[t * ch + u] = dot3(d, w->qs + t * d, k + (c0 + u) * d, w->ex);
            }
        }
    }
    return 0;
}

/* st <- diag(exp(b_L)) src + sum_s (k_s * exp(b_L - b_s)) v_s^T, the sum as one K~^T V tile
 * (src == st: in place; else src is left as it is, the previous chunk's saved state). */
static void chunk_state_update(const mmi_attn_dims *s, const float *k, const float *v, int64_t c0,
                               int64_t len, int mild, const float *src, float *st, gated_ws *w)
{
    const int64_t d = s->d, dv = s->dv;
    const double *bl = w->b + (len - 1) * d;
    exp_diff(w, d, bl, NULL, w->ex);
    for (int64_t u = 0; u < len && mild; u++) /* mild: e^{b_L - b_u} = e^{b_L} / E_u */
        mul_rows(d, w->ag + u * d, w->ex, w->ke + u * d);
    for (int64_t u = 0; u < len && !mild; u++) {
        exp_diff(w, d, bl, w->b + u * d, w->e2);
        for (int64_t c = 0; c < d; c++) w->ke[u * d + c] = k[(c0 + u) * d + c] * w->e2[c];
    }
    if (len <= 64) { /* the decay of src on the tile's way out (the bits of the two passes below) */
        const mmi_attn_lin_seg sg = {len, w->ke, 1, d, v + c0 * dv, dv};
        if (mmi_attn_lin_tile_rs(d, dv, &sg, 1, w->ex, src, dv, st, dv)) return;
    }
    if (src != st)
        scale_rows_to(d, dv, w->ex, src, st);
    else
        scale_by_row(d, dv, w->ex, st);
    if (gemm_tile(1, d, dv, len, w->ke, d, v + c0 * dv, dv, 1.0f, st, dv)) return;
    for (int64_t u = 0; u < len; u++)
        mmi_attn_state_step(d, dv, w->ke + u * d, v + (c0 + u) * dv, st, dv, NULL, NULL, NULL,
                            NULL);
}

/* One chunk's outputs: o = (q~ e^{b}) S + A V with A lower triangular (its upper part zeroed
 * so the product can run as a full tile). */
static void chunk_out(const mmi_attn_dims *s, const float *v, int64_t c0, int64_t len, int mild,
                      const float *st, float *o, gated_ws *w)
{
    const int64_t d = s->d, dv = s->dv, ch = s->chunk;
    float *oc = o + c0 * dv;
    for (int64_t t = 0; t < len && !mild; t++) { /* mild: chunk_mild_prep left q~ E in ke */
        exp_diff(w, d, w->b + t * d, NULL, w->ex);
        mul_rows(d, w->qs + t * d, w->ex, w->ke + t * d);
        memset(w->a + t * ch + t + 1, 0, sizeof(float) * (size_t)(len - t - 1));
    }
    if (gemm_tile(0, len, dv, d, w->ke, d, st, dv, 0.0f, oc, dv) &&
        causal_tiles(TRI_K_LOW, len, dv, len, w->a, ch, v + c0 * dv, dv, 1.0f, oc, dv))
        return;
    for (int64_t t = 0; t < len; t++) {
        float *ot = oc + t * dv;
        memset(ot, 0, sizeof(float) * (size_t)dv);
        mmi_attn_state_step(d, dv, NULL, NULL, (float *)st, dv, NULL, NULL, w->ke + t * d, ot);
        mmi_attn_matrow_acc(t + 1, dv, w->a + t * ch, v + c0 * dv, dv, ot);
    }
}

/* Rows [c0, c0 + len) of q, k and v into keep (the chunk's share of the saved inputs). */
static void keep_rows(const mmi_attn_dims *s, const float *q, const float *k, const float *v,
                      int64_t c0, int64_t len, const mmi_attn_keep *keep)
{
    const size_t nq = sizeof(float) * (size_t)(len * s->d);
    memcpy(keep->q + c0 * s->d, q + c0 * s->d, nq);
    memcpy(keep->k + c0 * s->d, k + c0 * s->d, nq);
    memcpy(keep->v + c0 * s->dv, v + c0 * s->dv, sizeof(float) * (size_t)(len * s->dv));
}

void mmi_attn_gated_fwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, float *o, float *hs, float *ws)
{
    mmi_attn_gated_fwd_keep(s, gmode, g, q, k, v, NULL, NULL, o, hs, ws);
}

void mmi_attn_gated_fwd_keep(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                             const float *k, const float *v, const mmi_attn_keep *keep,
                             const mmi_attn_chunk_hook *hook, float *o, float *hs, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->n == s->m && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(gmode >= 0 && gmode <= 3 && (gmode == 0 || g) && q && k && v && o && ws);
    MMI_ASSERT(!keep || (keep->q && keep->k && keep->v));
    const int64_t d = s->d, dv = s->dv, ch = s->chunk;
    gated_ws w = split_ws(s->n, ch, d, dv, ws);
    float *st = hs ? hs : w.ds; /* the running state: with hs, chunk c's is hs[c] */
    float *ha = hs ? hs + ((s->n + ch - 1) / ch) * d * dv : NULL; /* then every chunk's A */
    const float *src_q = q, *src_k = k, *src_v = v;
    if (keep) { /* each chunk reads its fresh copies */
        q = keep->q, k = keep->k, v = keep->v;
        w.src_q = src_q, w.src_k = src_k, w.src_v = src_v;
        w.keep_v = keep->v;
    }
    w.scalar = gmode != 3;
    memset(st, 0, sizeof(float) * (size_t)(d * dv));
    for (int64_t c0 = 0; c0 < s->n; c0 += ch) {
        const int64_t len = s->n - c0 < ch ? s->n - c0 : ch;
        if (keep) keep_rows(s, src_q, src_k, src_v, c0, len, keep);
        if (ha) w.a_home = ha + (c0 / ch) * ch * ch;
        w.pf_hs = hs && c0 + len < s->n ? st + d * dv : NULL;
        const int mild = chunk_prep(s, gmode, g, q, k, c0, len, &w);
        chunk_out(s, v, c0, len, mild, st, o, &w);
        if (hook) hook->fn(hook->ctx, c0, len);
        if (c0 + len >= s->n) break; /* the state after the last chunk is not needed */
        chunk_state_update(s, k, v, c0, len, mild, st, hs ? st + d * dv : st, &w);
        if (hs) st += d * dv;
    }
}

/* ds <- diag(exp(b_L)) ds + sum_t (q_t exp(b_t)) do_t^T: the state gradient entering the chunk. */
static void chunk_ds(const mmi_attn_dims *s, const float *dout, int64_t c0, int64_t len,
                     gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv;
    const double *bl = w->b + (len - 1) * d;
    exp_diff(w, d, bl, NULL, w->ex);
    for (int64_t c = 0; c < d; c++) {
        const float f = w->ex[c];
        for (int64_t e = 0; e < dvw; e++) w->ds[c * dvw + e] *= f;
    }
    for (int64_t t = 0; t < len; t++) {
        exp_diff(w, d, w->b + t * d, NULL, w->ex);
        for (int64_t c = 0; c < d; c++) w->e2[c] = w->qs[t * d + c] * w->ex[c];
        mmi_attn_state_step(d, dvw, w->e2, dout + (c0 + t) * dvw, w->ds, dvw, NULL, NULL, NULL,
                            NULL);
    }
}

/* Scalar gates (none, RetNet, per-step scalar): every decay factor is exp(b_t - b_u) for the
 * whole key vector, so the chunk's gradients are products of small matrices (A^T, W^T with
 * W = (do v^T) * decay) with row-blocked primitives instead of elementwise exponentials. */
static void chunk_bwd_scalar(const mmi_attn_dims *s, int gmode, const float *k, const float *v,
                             const float *dout, int64_t c0, int64_t len, const float *st0,
                             float *dq, float *dk, float *dv, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    const double bl = w->b[(len - 1) * d];
    chunk_t(v, dvw, c0, len, ch, w->vt);
    for (int64_t t = 0; t < len; t++) { /* W[t][u] = (do_t . v_u) exp(b_t - b_u) */
        float *row = w->dvm + t * ch;
        mmi_attn_rowmat(t + 1, dvw, dout + (c0 + t) * dvw, w->vt, ch, 1.0f, row);
        if (gmode != 0)
            for (int64_t u = 0; u <= t; u++) row[u] *= dexp(w->b[t * d] - w->b[u * d]);
        for (int64_t u = 0; u <= t; u++) {
            w->at[u * ch + t] = w->a[t * ch + u];
            w->wt[u * ch + t] = row[u];
        }
    }
    for (int64_t u = 0; u < len; u++) { /* keys */
        float *gv = dv + (c0 + u) * dvw, *gk = dk + (c0 + u) * d;
        const float f = dexp(bl - w->b[u * d]);
        memset(gv, 0, sizeof(float) * (size_t)dvw);
        mmi_attn_matrow_acc(len - u, dvw, w->at + u * ch + u, dout + (c0 + u) * dvw, dvw, gv);
        for (int64_t c = 0; c < d; c++) w->e1[c] = k[(c0 + u) * d + c] * f;
        mmi_attn_state_step(d, dvw, NULL, NULL, w->ds, dvw, v + (c0 + u) * dvw, w->tmp, w->e1, gv);
        for (int64_t c = 0; c < d; c++) gk[c] = w->tmp[c] * f;
        mmi_attn_matrow_acc(len - u, d, w->wt + u * ch + u, w->qs + u * d, d, gk);
    }
    for (int64_t t = 0; t < len; t++) { /* queries (w.r.t. the scaled q) */
        float *gq = dq + (c0 + t) * d;
        const float f = dexp(w->b[t * d]);
        mmi_attn_state_step(d, dvw, NULL, NULL, (float *)st0, dvw, dout + (c0 + t) * dvw, w->tmp,
                            NULL, NULL);
        for (int64_t c = 0; c < d; c++) gq[c] = w->tmp[c] * f;
        mmi_attn_matrow_acc(t + 1, d, w->dvm + t * ch, k + c0 * d, d, gq);
    }
    chunk_ds(s, dout, c0, len, w);
}

/* dk_u += sum over later query sub-chunks (reference n): e^{b_n - b_u} (DV^T qe) and the
 * elementwise pairs inside each sub-chunk. */
static void vector_dk(const mmi_attn_dims *s, const float *k, int64_t c0, int64_t len, float *dk,
                      gated_ws *w)
{
    const int64_t d = s->d, ch = s->chunk;
    (void)k;
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const double *bn = w->b + t0 * d;
        for (int64_t t = t0; t < t1; t++) {
            exp_diff(w, d, w->b + t * d, bn, w->ex);
            for (int64_t c = 0; c < d; c++) w->qe[(t - t0) * d + c] = w->qs[t * d + c] * w->ex[c];
        }
        for (int64_t u = 0; u < t0; u++) {
            float *gk = dk + (c0 + u) * d;
            memset(w->e2, 0, sizeof(float) * (size_t)d);
            mmi_attn_matrow_acc(t1 - t0, d, w->at + u * ch + t0, w->qe, d, w->e2);
            exp_diff(w, d, bn, w->b + u * d, w->ex);
            for (int64_t c = 0; c < d; c++) gk[c] += w->e2[c] * w->ex[c];
        }
        if (sub_mild(w->b, d, t0, t1)) {
            for (int64_t u = t0; u < t1; u++) { /* factored pairs inside the sub-chunk */
                float *gk = dk + (c0 + u) * d;
                memset(w->e2, 0, sizeof(float) * (size_t)d);
                mmi_attn_matrow_acc(t1 - u, d, w->at + u * ch + u, w->qe + (u - t0) * d, d, w->e2);
                exp_diff(w, d, bn, w->b + u * d, w->ex);
                for (int64_t c = 0; c < d; c++) gk[c] += w->e2[c] * w->ex[c];
            }
            continue;
        }
        for (int64_t u = t0; u < t1; u++) {
            float *gk = dk + (c0 + u) * d;
            ones(d, w->ex);
            for (int64_t t = u; t < t1; t++) {
                const float x = w->dvm[t * ch + u];
                if (t > u) decay_step(d, w->ag + t * d, w->ex);
                axpy3(d, x, w->qs + t * d, w->ex, gk);
            }
        }
    }
}

/* dq_t = e^{b_t} (S0 do_t) + e^{b_t - b_n} (DV ke) + elementwise pairs inside the sub-chunk. */
static void vector_dq(const mmi_attn_dims *s, const float *k, const float *dout, int64_t c0,
                      int64_t len, const float *st0, float *dq, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    for (int64_t t0 = 0; t0 < len; t0 += SUB) {
        const int64_t t1 = len - t0 < SUB ? len : t0 + SUB;
        const double *bn = w->b + t0 * d;
        const int mild = sub_mild(w->b, d, t0, t1);
        for (int64_t u = 0; u < (mild ? t1 : t0); u++) {
            exp_diff(w, d, bn, w->b + u * d, w->ex);
            for (int64_t c = 0; c < d; c++) w->ke[u * d + c] = k[(c0 + u) * d + c] * w->ex[c];
        }
        for (int64_t t = t0; t < t1; t++) {
            float *gq = dq + (c0 + t) * d;
            const double *bt = w->b + t * d;
            mmi_attn_state_step(d, dvw, NULL, NULL, (float *)st0, dvw, dout + (c0 + t) * dvw,
                                w->tmp, NULL, NULL);
            memset(w->e2, 0, sizeof(float) * (size_t)d);
            if (mild || t0 > 0)
                mmi_attn_matrow_acc(mild ? t + 1 : t0, d, w->dvm + t * ch, w->ke, d, w->e2);
            exp_diff(w, d, bt, NULL, w->ex);
            for (int64_t c = 0; c < d; c++) gq[c] = w->tmp[c] * w->ex[c];
            exp_diff(w, d, bt, bn, w->ex);
            for (int64_t c = 0; c < d; c++) gq[c] += w->e2[c] * w->ex[c];
            if (mild) continue;
            ones(d, w->ex);
            for (int64_t u = t; u >= t0; u--) { /* f = e^{b_t - b_u}, walking u down */
                const float x = w->dvm[t * ch + u];
                if (u < t) decay_step(d, w->ag + (u + 1) * d, w->ex);
                axpy3(d, x, k + (c0 + u) * d, w->ex, gq);
            }
        }
    }
}

/* Vector gates: DV and A with their transposes, then dv, dk, dq by sub-chunks. */
static void chunk_bwd_vector(const mmi_attn_dims *s, const float *k, const float *v,
                             const float *dout, int64_t c0, int64_t len, const float *st0,
                             float *dq, float *dk, float *dv, gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    const double *bl = w->b + (len - 1) * d;
    chunk_t(v, dvw, c0, len, ch, w->vt);
    for (int64_t t = 0; t < len; t++) { /* DV[t][u] = do_t . v_u, DV^T in at, A^T in wt */
        mmi_attn_rowmat(t + 1, dvw, dout + (c0 + t) * dvw, w->vt, ch, 1.0f, w->dvm + t * ch);
        for (int64_t u = 0; u <= t; u++) {
            w->at[u * ch + t] = w->dvm[t * ch + u];
            w->wt[u * ch + t] = w->a[t * ch + u];
        }
    }
    for (int64_t u = 0; u < len; u++) { /* dv_u and the state term of dk_u */
        float *gv = dv + (c0 + u) * dvw, *gk = dk + (c0 + u) * d;
        const double *bu = w->b + u * d;
        memset(gv, 0, sizeof(float) * (size_t)dvw);
        mmi_attn_matrow_acc(len - u, dvw, w->wt + u * ch + u, dout + (c0 + u) * dvw, dvw, gv);
        exp_diff(w, d, bl, bu, w->ex);
        for (int64_t c = 0; c < d; c++) w->e1[c] = k[(c0 + u) * d + c] * w->ex[c];
        mmi_attn_state_step(d, dvw, NULL, NULL, w->ds, dvw, v + (c0 + u) * dvw, w->tmp, w->e1, gv);
        for (int64_t c = 0; c < d; c++) gk[c] = w->tmp[c] * w->ex[c];
    }
    vector_dk(s, k, c0, len, dk, w);
    vector_dq(s, k, dout, c0, len, st0, dq, w);
    chunk_ds(s, dout, c0, len, w);
}

/* 1 if every tile product of chunk_bwd_mild takes the GEMM's unpacked path. */
static int mild_bwd_fits(int64_t d, int64_t dv, int64_t len)
{
    const int64_t shapes[8][4] = {{0, len, len, dv}, {1, len, dv, len}, {0, len, dv, d},
                                  {1, len, d, len},  {0, len, d, dv},   {0, len, d, len},
                                  {1, d, dv, len},   {0, len, len, d}};
    for (int i = 0; i < 8; i++)
        if (mmi_gemm_needs_ws((int)shapes[i][0], 0, shapes[i][1], shapes[i][2], shapes[i][3], 1.0f,
                              d + dv + len, d + dv + len, d + dv + len))
            return 0;
    return 1;
}

/* d x w matrix m (row-major) into t (w x d). */
static void transpose(int64_t d, int64_t wd, const float *m, float *t)
{
    mmi_attn_transpose(d, wd, m, wd, t, d);
}

/* dq *= e and dk /= e over a row (blocks of 8 on restrict pointers: vector code at -O2). */
static void unfactor_row(int64_t n, const float *restrict e, float *restrict dq, float *restrict dk)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) {
            dq[c + j] *= e[c + j];
            dk[c + j] /= e[c + j];
        }
    for (; c < n; c++) {
        dq[c] *= e[c];
        dk[c] /= e[c];
    }
}

/* A mild chunk's gradients as tile products (E = e^{b}, Qe = q~ E in ke, Kh = k / E in ag,
 * dA = tril(dO V^T), dS1 = the state gradient after the chunk, in ds):
 *   dV = A^T dO + Kh (e^{b_L} dS1)        dq~ = E (dO S0^T + dA Kh)
 *   dk = (dA^T Qe + V (e^{b_L} dS1)^T) / E    dS0 = e^{b_L} dS1 + Qe^T dO
 * Every E / E' that these products form pairs a later query with an earlier key (<= 1) or
 * stays within e^MILD, so float32 keeps them to the precision the forward has. */
static void chunk_bwd_mild(const mmi_attn_dims *s, const float *v, const float *dout, int64_t c0,
                           int64_t len, const float *st0, float *dq, float *dk, float *dv,
                           gated_ws *w)
{
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk;
    const float *doc = dout + c0 * dvw, *vc = v + c0 * dvw;
    float *dqc = dq + c0 * d, *dkc = dk + c0 * d, *dvc = dv + c0 * dvw;
    chunk_t(v, dvw, c0, len, ch, w->vt);
    causal(TRI_COLS, len, len, dvw, doc, dvw, w->vt, ch, 0.0f, w->dvm, ch);
    for (int64_t t = 0; t < len; t++)
        memset(w->dvm + t * ch + t + 1, 0, sizeof(float) * (size_t)(len - t - 1));
    exp_diff(w, d, w->b + (len - 1) * d, NULL, w->ex);
    scale_by_row(d, dvw, w->ex, w->ds);
    causal(TRI_K_HIGH, len, dvw, len, w->a, ch, doc, dvw, 0.0f, dvc, dvw);
    tile(0, len, dvw, d, w->ag, d, w->ds, dvw, 1.0f, dvc, dvw);
    transpose(d, dvw, w->ds, w->tr);
    causal(TRI_K_HIGH, len, d, len, w->dvm, ch, w->ke, d, 0.0f, dkc, d);
    tile(0, len, d, dvw, vc, dvw, w->tr, d, 1.0f, dkc, d);
    transpose(d, dvw, st0, w->tr);
    tile(0, len, d, dvw, doc, dvw, w->tr, d, 0.0f, dqc, d);
    causal(TRI_K_LOW, len, d, len, w->dvm, ch, w->ag, d, 1.0f, dqc, d);
    for (int64_t t = 0; t < len; t++) /* E as the gate pass left it in qs (per-key gates) */
        if (w->scalar) {
            exp_diff(w, d, w->b + t * d, NULL, w->ex);
            unfactor_row(d, w->ex, dqc + t * d, dkc + t * d);
        } else {
            unfactor_row(d, w->qs + t * d, dqc + t * d, dkc + t * d);
        }
    tile(1, d, dvw, len, w->ke, d, doc, dvw, 1.0f, w->ds, dvw);
}

/* Gradients of one chunk given the entry state st0 and the state gradient ds (updated in place
 * to the gradient of st0). dq holds dq_s w.r.t. the scaled queries until the caller rescales. */
static void chunk_bwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                      const float *k, const float *v, const float *dout, int64_t c0, int64_t len,
                      const float *st0, float *dq, float *dk, float *dv, gated_ws *w)
{
    if (chunk_prep(s, gmode, g, q, k, c0, len, w) && mild_bwd_fits(s->d, s->dv, len)) {
        chunk_bwd_mild(s, v, dout, c0, len, st0, dq, dk, dv, w);
        return;
    }
    if (gmode != 3)
        chunk_bwd_scalar(s, gmode, k, v, dout, c0, len, st0, dq, dk, dv, w);
    else
        chunk_bwd_vector(s, k, v, dout, c0, len, st0, dq, dk, dv, w);
}

/* Per-key gates: dg rows [c0, c0 + len) from dB_t = qs_t . dqs_t - k_t . dk_t, continuing the
 * reverse cumulative sum in acc, one vector pass per row that also applies the query scale to
 * dq. Run right after the chunk's own gradients (its rows are then final, and still in cache:
 * a separate pass over the whole sequence read four cold arrays). */
static void gate_grad_chunk(const mmi_attn_dims *s, const float *q, const float *k, float *dq,
                            const float *dk, float *dg, int64_t c0, int64_t len, double *acc)
{
    const int64_t d = s->d, o = c0 * d;
    mmi_attn_gate_grad_rows(len, d, s->scale, q + o, dq + o, k + o, dk + o, acc, dg + o);
}

/* Scalar per-step gates: dg from dB_t = qs_t . dqs_t - k_t . dk_t, reverse-cumulated over the
 * whole sequence (the caller scales dq). */
static void gate_grad(const mmi_attn_dims *s, const float *q, const float *k, const float *dq,
                      const float *dk, float *dg)
{
    const int64_t d = s->d;
    double acc = 0.0;
    for (int64_t t = s->n - 1; t >= 0; t--) {
        const float *qt = q + t * d, *gq = dq + t * d, *kt = k + t * d, *gk = dk + t * d;
        double db = 0.0;
        for (int64_t e = 0; e < d; e++)
            db += (double)s->scale * qt[e] * gq[e] - (double)kt[e] * gk[e];
        acc += db;
        dg[t] = (float)acc;
    }
}

void mmi_attn_gated_bwd(const mmi_attn_dims *s, int gmode, const float *g, const float *q,
                        const float *k, const float *v, const float *dout, float *dq, float *dk,
                        float *dv, float *dg, const float *hs, float *ws)
{
    MMI_ASSERT(s && s->n >= 0 && s->n == s->m && s->d > 0 && s->dv > 0 && s->chunk > 0);
    MMI_ASSERT(gmode >= 0 && gmode <= 3 && (gmode == 0 || g) && q && k && v && dout && ws);
    MMI_ASSERT(dq && dk && dv); /* dg NULL: the gate gradient is not wanted */
    const int64_t d = s->d, dvw = s->dv, ch = s->chunk, nch = (s->n + ch - 1) / ch;
    gated_ws w = split_ws(s->n, ch, d, dvw, ws);
    w.scalar = gmode != 3;
    if (!hs) { /* recompute the entry state of every chunk */
        memset(w.states, 0, sizeof(float) * (size_t)(d * dvw));
        for (int64_t c = 0; c + 1 < nch; c++) {
            const float *cur = w.states + c * d * dvw;
            gate_cumsum(gmode, g, c * ch, ch, d, w.b);
            chunk_state_update(s, k, v, c * ch, ch, 0, cur, w.states + (c + 1) * d * dvw, &w);
        }
        hs = w.states;
    }
    memset(w.ds, 0, sizeof(float) * (size_t)(d * dvw));
    for (int64_t c = 0; c < d; c++) w.acc[c] = 0.0;
    w.pf_step = -ch; /* the reverse walk: the gate pass prefetches the previous chunk */
    w.pf_v = v, w.pf_do = dout, w.pf_dq = dq, w.pf_dk = dk, w.pf_dv = dv;
    w.pf_dg = gmode == 3 ? dg : NULL;
    for (int64_t c = nch - 1; c >= 0; c--) {
        const int64_t len = s->n - c * ch < ch ? s->n - c * ch : ch;
        if (hs != w.states) w.a_saved = hs + nch * d * dvw + c * ch * ch;
        w.pf_st = hs + c * d * dvw;
        w.pf_a = w.a_saved;
        chunk_bwd(s, gmode, g, q, k, v, dout, c * ch, len, hs + c * d * dvw, dq, dk, dv, &w);
        /* dq is w.r.t. the scaled queries here: q_s . dq_s = q . dq for the gate identity */
        if (dg && gmode == 3) gate_grad_chunk(s, q, k, dq, dk, dg, c * ch, len, w.acc);
    }
    if (dg && gmode == 2) gate_grad(s, q, k, dq, dk, dg);
    if (dg && gmode == 3) return; /* gate_grad_chunk scaled dq row by row */
    for (int64_t i = 0; i < s->n * d; i++) dq[i] *= s->scale;
}

void mmi_attn_gated_step(int64_t d, int64_t dv, float scale, const float *g, int64_t gate_len,
                         const float *q, const float *k, const float *v, float *st, float *o)
{
    MMI_ASSERT(d > 0 && dv > 0 && (!g || gate_len == 1 || gate_len == d));
    MMI_ASSERT(q && k && v && st && o);
    float qs[512];
    if (g)
        for (int64_t c = 0; c < d; c++) {
            const float f = expf(g[gate_len == 1 ? 0 : c]);
            for (int64_t e = 0; e < dv; e++) st[c * dv + e] *= f;
        }
    memset(o, 0, sizeof(float) * (size_t)dv);
    for (int64_t c0 = 0; c0 < d; c0 += 512) { /* scaled query in pieces: no workspace needed */
        const int64_t nc = d - c0 < 512 ? d - c0 : 512;
        for (int64_t c = 0; c < nc; c++) qs[c] = scale * q[c0 + c];
        mmi_attn_state_step(nc, dv, k + c0, v, st + c0 * dv, dv, NULL, NULL, qs, o);
    }
}
