/* SPDX-License-Identifier: MIT */
/* attn_linear.c — linear attention on feature-mapped queries and keys ("Transformers are
 * RNNs"): causal and non-causal, forward and the full backward through the normaliser
 * (docs/ATTENTION.md §MM_ATTN_LINEAR). The causal forward carries one F x dv state and the normaliser sum z; the
 * backward recomputes that state forward (for dfq) and carries the reverse state R, r (for dfk
 * and dv), so no per-position F x dv tensor is ever stored. The state is float32 (as
 * fast-transformers' kernel) so its update runs at FMA speed; the normaliser sums z, r are
 * float64 because they grow with the sequence.
 *
 * Causal with n == m runs chunkwise (chunks of LC tokens): inside a chunk the weights
 * A = tril(fq fk^T) and the numerators fq S + A V are GEMM tiles on the micro-kernel (on
 * AVX-512 and AVX2 the attention set's own small-product kernel, mmi_attn_lin_tile, with the
 * same bits and the stacked operands read in place), the state advances by one fk^T V tile
 * per chunk; the backward's intra-chunk terms are the tiles P = tril(dnum V^T),
 * dfq += dnum S^T + P fk, dfk += V R^T + P^T fq, dv += fk R + A^T dnum.
 * The normaliser sums z and r stay token by token in float64, exactly as in the recurrence. */
#include "mmi_attn_kernels.h"
#include "../gemm/mmi_gemm.h"

#include <string.h>

/* Tokens per chunk of the causal chunkwise path, on every SIMD path. The intra-chunk tiles
 * cost 2 LC (F + dv) flops per token on top of the recurrence's 4 F dv, so short chunks win:
 * at F = dv = 64 on AVX2, chunks of 64 made the forward 30 % slower than the fused recurrence,
 * 32 matched it, 16 was 10 % faster (and the backward 20 % faster). On AVX-512 (12 x 32
 * register tile) 24 (two whole 12-row tiles), 32, 48 and 64 were measured against 16 in one
 * process, call by call: 24 and 32 within the noise of 16 for the kernels, 48 and 64 slower,
 * and the operator's fwd + bwd 0-20 % slower at 32; so 16 there too (docs/ATTENTION.md). */
#define LC MMI_ATTN_LINEAR_CHUNK

/* The O(F dv) part of the workspace, in floats (rounded to 16 so the doubles after it are
 * aligned); MMI_SIZE_BAD when it does not fit. */
static int64_t lin_base(int64_t f, int64_t dv)
{
    /* z or r (F doubles), the chunk's dden (LC doubles), the state stacked over a chunk of
     * V or dnum ((F + LC) x dv), its transpose stacked over a chunk of fk or fq, with LC
     * columns beside it for dnum^T ((dv + LC) x (F + LC)), the left operand of the stacked
     * products (LC x (max(F, dv) + LC)), fk^T of a chunk stacked over A ((F + LC) x LC),
     * V^T or dv^T of a chunk (dv x LC), the tile P (LC x LC), a chunk of feature gradients
     * (LC x F, before the map's backward), padding.
     * The recurrence uses the first 2F + F dv + dv of it. */
    const int64_t big = f > dv ? f : dv;
    int64_t k = mmi_sz_add(mmi_sz_mul(2, f), 2 * LC);
    k = mmi_sz_add(k, mmi_sz_mul(mmi_sz_add(f, LC), dv));
    k = mmi_sz_add(k, mmi_sz_mul(mmi_sz_add(dv, LC), mmi_sz_add(f, LC)));
    k = mmi_sz_add(k, mmi_sz_mul(LC, mmi_sz_add(big, LC)));
    k = mmi_sz_add(k, mmi_sz_mul(mmi_sz_add(mmi_sz_add(f, LC), dv), LC));
    k = mmi_sz_add(k, LC * LC);
    k = mmi_sz_add(k, mmi_sz_mul(LC, f)); /* a chunk of feature gradients */
    k = mmi_sz_add(k, 32 + 15);
    return k == MMI_SIZE_BAD ? k : k / 16 * 16;
}

size_t mmi_attn_linear_ws_floats(int64_t n, int64_t f, int64_t dv)
{
    /* the O(F dv) part, then the causal backward's dden of every row (n doubles); checked,
     * SIZE_MAX when it does not fit (the caller's reservation refuses that) */
    return mmi_sz_to(mmi_sz_add(lin_base(f, dv), mmi_sz_mul(2, n)));
}

/* The chunkwise path's workspace. st holds S in its first F rows and a chunk of V under it
 * (the forward), stt holds S^T (or R^T) over a chunk of fk (or fq),
 * so that each pair of products sharing an output is one GEMM with a longer reduction,
 * [X | T] [M ; Y] (one pass over the output tile instead of two, and a reduction of F + LC
 * instead of F and LC). Pass 2 keeps R^T in stt with row stride F + LC and dnum^T beside it,
 * and fk^T (kt) over A, for dv^T = [R^T | dnum^T] [fk^T ; A]. */
typedef struct lin_ws {
    double *z, *dden;                  /* z or r [F]; dden of the chunk's rows */
    double *dd;                        /* the backward's dden of every row [n] */
    float *st, *stt, *x, *kt, *vt, *p; /* [S;Y], [S^T;Y], [X|T], [fk^T;A], V^T, P */
    float *g;                          /* dfq or dfk of a chunk, before the map */
    int64_t ldx;                       /* max(F, dv) + LC */
    int64_t ldr;                       /* F + LC: pass 2's R^T, dnum^T */
} lin_ws;

static lin_ws split_ws(int64_t f, int64_t w, float *ws)
{
    lin_ws l;
    l.ldx = (f > w ? f : w) + LC;
    l.ldr = f + LC;
    l.z = (double *)ws;
    l.dden = l.z + f;
    l.st = ws + 2 * f + 2 * LC;
    l.stt = l.st + (f + LC) * w;
    l.x = l.stt + (w + LC) * l.ldr;
    l.kt = l.x + LC * l.ldx;
    l.vt = l.kt + (f + LC) * LC;
    l.p = l.vt + w * LC;
    l.g = l.p + LC * LC;
    l.dd = (double *)(ws + lin_base(f, w));
    return l;
}

/* dst[r * ldd + c] = src[r * lds + c] for r < rows, c < cols. */
static void copy_rows(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                      int64_t ldd)
{
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * ldd, src + r * lds, sizeof(float) * (size_t)cols);
}

/* C = A B (mode 0) or tril(A B) (mode 2) for A [m, k] (rows lda apart), B [k, n], on the path's
 * own kernel for these small products where it has one (mmi_attn_lin_tile: the same bits as
 * the GEMM tile, within whose k block it stays); 0 when it has none. */
static int lin_nn_own(int mode, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float *c, int64_t ldc)
{
    const mmi_attn_lin_seg sg = {k, a, lda, 1, b, ldb};
    return k <= MMI_GEMM_DIRECT_KC && mmi_attn_lin_tile(mode, m, n, &sg, 1, c, ldc);
}

/* C = A B, the path's kernel or the GEMM tile. */
static void lin_nn(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                   int64_t ldb, float *c, int64_t ldc)
{
    if (!lin_nn_own(0, m, n, k, a, lda, b, ldb, c, ldc))
        mmi_attn_tile_nn(m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* C = [A1 | A2] [B1 ; B2] (A1 [m, k1], B1 [k1, n], A2 [m, k2], B2 [k2, n]) on the path's kernel,
 * each operand read where it lies; 0 when the path has none (the caller stacks the operands
 * and runs the GEMM tile). */
static int lin_nn2(int64_t m, int64_t n, int64_t k1, const float *a1, int64_t lda1, const float *b1,
                   int64_t ldb1, int64_t k2, const float *a2, int64_t lda2, const float *b2,
                   int64_t ldb2, float *c, int64_t ldc)
{
    const mmi_attn_lin_seg sg[2] = {{k1, a1, lda1, 1, b1, ldb1}, {k2, a2, lda2, 1, b2, ldb2}};
    return k1 + k2 <= MMI_GEMM_DIRECT_KC && mmi_attn_lin_tile(0, m, n, sg, 2, c, ldc);
}

/* C += A^T B for A [k, m], B [k, n] (the state updates, k = one chunk), as lin_nn (the GEMM
 * tile sums k in pieces of 64, so the same bits up to 64). */
static void lin_tn(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                   int64_t ldb, float *c, int64_t ldc)
{
    const mmi_attn_lin_seg sg = {k, a, 1, lda, b, ldb};
    if (k > 64 || !mmi_attn_lin_tile(1, m, n, &sg, 1, c, ldc))
        mmi_attn_tile_tn(m, n, k, 1.0f, a, lda, b, ldb, c, ldc);
}

/* c = tril(x y^T) for len rows of x [len, k] (rows ldx apart) and of y, given transposed as
 * yt [k, ldy]; c has row stride ldc. */
static void tril_tile(int64_t len, int64_t k, const float *x, int64_t ldx, const float *yt,
                      int64_t ldy, float *c, int64_t ldc)
{
    if (lin_nn_own(2, len, len, k, x, ldx, yt, ldy, c, ldc)) return;
    mmi_attn_tile_nn(len, len, k, 1.0f, x, ldx, yt, ldy, 0.0f, c, ldc);
    for (int64_t t = 0; t + 1 < len; t++)
        memset(c + t * ldc + t + 1, 0, sizeof(float) * (size_t)(len - t - 1));
}

/* dst[c * ldd + r] = src[r * LC + c] for r, c < len: a chunk tile, transposed. */
static void tile_t(int64_t len, const float *src, int64_t lds, float *dst, int64_t ldd)
{
    for (int64_t r = 0; r < len; r++)
        for (int64_t c = 0; c < len; c++) dst[c * ldd + r] = src[r * lds + c];
}

/* Last key visible from query i (bottom-right aligned), or m - 1 without a causal mask. */
static int64_t last_key(const mmi_attn_dims *s, int64_t i)
{
    int64_t lim = s->causal ? i + (s->m - s->n) : s->m - 1;
    return lim < s->m - 1 ? lim : s->m - 1;
}

/* Adds key j to the state and the normaliser sum; returns q . z after the update (0 without
 * q; q is also the read-out weight b when given). */
static double add_key(const mmi_attn_dims *s, const float *fk, const float *v, int64_t j, float *st,
                      double *z, const float *w, float *out, const float *b, float *y)
{
    const float *kj = fk + j * s->d;
    mmi_attn_state_step(s->d, s->dv, kj, v + j * s->dv, st, s->dv, w, out, b, y);
    return mmi_attn_norm_step(s->d, kj, z, b);
}

/* y[c] = a x[c] for c < n (fixed 8-blocks on restrict pointers so -O2 vectorises them). */
static void scale_row(int64_t n, float a, const float *restrict x, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] = a * x[c + j];
    for (; c < n; c++) y[c] = a * x[c];
}

/* Whether the chunkwise loops prefetch (the path's table says; the portable path does). */
static int lin_prefetch(void)
{
    const mmi_attn_isa *v = mmi_attn_isa_get();
    return !v || v->lin_prefetch;
}

/* Asks for rows [0, n) floats from p into the cache ahead of their use (the next chunk's
 * operands while this chunk computes; they stream from memory once per call). */
static void prefetch(const float *p, int64_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
#else
    (void)p, (void)n;
#endif
}

/* The same for rows the backward is about to write (its outputs dq, dk, dv). */
static void prefetch_w(float *p, int64_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 1);
#else
    (void)p, (void)n;
#endif
}

/* Causal, n == m, chunkwise: o_c = (fq_c S + tril(fq_c fk_c^T) V_c) / den, S += fk_c^T V_c.
 * The denominators come first (the float64 normaliser, token by token), so the division is
 * folded into the left operand: X = diag(1 / den) fq_c, and the two products of o_c are one,
 * [X | tril(X fk_c^T)] [S ; V_c]; the output tile is written once and never rescaled. The
 * feature map (in non-NULL) is applied to each chunk of q and k as the loop reaches it. */
#ifndef PF_AHEAD
#define PF_AHEAD 2
#endif
static void fwd_chunks(const mmi_attn_dims *s, int normalize, double eps, const float *fq,
                       const float *fk, const float *v, float *o, float *den, float *ws,
                       const mmi_attn_fmap_in *in)
{
    const int64_t f = s->d, w = s->dv;
    const int pf = lin_prefetch();
    lin_ws l = split_ws(f, w, ws);
    memset(l.z, 0, sizeof(double) * (size_t)f);
    memset(l.st, 0, sizeof(float) * (size_t)(f * w));
    for (int64_t c0 = 0; c0 < s->n; c0 += LC) {
        const int64_t len = s->n - c0 < LC ? s->n - c0 : LC;
        /* with the map: this chunk's features in the workspace (the backward's slices of stt
         * and g), which the products read from L1; their copies for the backward leave with
         * mmi_attn_copy_keep's streaming stores, as do v's and o's when in asks for them */
        const float *qc = in ? l.stt : fq + c0 * f, *kc = in ? l.g : fk + c0 * f;
        const float *vc = v + c0 * w;
        float *oc = o + c0 * w;
        /* the inputs of the chunk PF_AHEAD chunks on, one operand between each pair of steps
         * (in one burst the prefetches stalled on the cache's miss buffers); nx = 0: none */
        const int64_t c1 = c0 + PF_AHEAD * LC, nx = !pf ? 0 : s->n - c1 < LC ? s->n - c1 : LC;
        if (nx > 0) prefetch((in ? in->q : fq) + c1 * f, nx * f);
        if (in) {
            mmi_attn_fmap_fwd(in->fmap, in->q + c0 * f, (float *)qc, len * f);
            mmi_attn_fmap_fwd(in->fmap, in->k + c0 * f, (float *)kc, len * f);
        }
        /* the normaliser token by token, in float64 (one call per chunk where the path has a
         * body: z stays in registers), and the rows of X */
        if (!mmi_attn_lin_norm(len, f, qc, kc, l.z, normalize, eps, den + c0, l.x, l.ldx)) {
            for (int64_t t = 0; t < len; t++) {
                const double qz = mmi_attn_norm_step(f, kc + t * f, l.z, qc + t * f);
                double dn = 1.0;
                if (normalize) {
                    dn = eps + qz;
                    if (dn == 0.0) dn = 1.0; /* 0/0 (eps 0, zero features): the row outputs 0 */
                }
                den[c0 + t] = (float)dn;
                scale_row(f, normalize ? (float)(1.0 / dn) : 1.0f, qc + t * f, l.x + t * l.ldx);
            }
        }
        if (nx > 0) prefetch((in ? in->k : fk) + c1 * f, nx * f);
        if (in) mmi_attn_copy_keep(len * f, qc, (float *)fq + c0 * f, 0);
        mmi_attn_transpose(len, f, kc, f, l.kt, LC);
        tril_tile(len, f, l.x, l.ldx, l.kt, LC, l.x + f, l.ldx);
        if (in) mmi_attn_copy_keep(len * f, kc, (float *)fk + c0 * f, 0);
        if (nx > 0) prefetch(v + c1 * w, nx * w);
        if (!lin_nn2(len, w, f, l.x, l.ldx, l.st, w, len, l.x + f, l.ldx, vc, w, oc, w)) {
            memcpy(l.st + f * w, vc, sizeof(float) * (size_t)(len * w));
            lin_nn(len, w, f + len, l.x, l.ldx, l.st, w, oc, w);
        }
        if (in && in->ok) mmi_attn_copy_keep(len * w, oc, in->ok + c0 * w, 0);
        if (c0 + LC < s->n) lin_tn(f, w, len, kc, f, vc, w, l.st, w);
        if (in && in->vk) mmi_attn_copy_keep(len * w, vc, in->vk + c0 * w, 0);
    }
    if (in) mmi_attn_copy_keep(0, NULL, NULL, 1); /* the streaming stores' fence */
}

void mmi_attn_linear_fwd_io(const mmi_attn_dims *s, const mmi_attn_fmap_in *in, int normalize,
                            double eps, float *fq, float *fk, const float *v, float *o, float *den,
                            float *ws)
{
    if (s->causal && s->n == s->m) {
        fwd_chunks(s, normalize, eps, fq, fk, v, o, den, ws, in);
        return;
    }
    mmi_attn_fmap_fwd(in->fmap, in->q, fq, s->n * s->d);
    mmi_attn_fmap_fwd(in->fmap, in->k, fk, s->m * s->d);
    if (in->vk) memcpy(in->vk, v, sizeof(float) * (size_t)(s->m * s->dv));
    mmi_attn_linear_fwd(s, normalize, eps, fq, fk, v, o, den, ws);
    if (in->ok) memcpy(in->ok, o, sizeof(float) * (size_t)(s->n * s->dv));
}

void mmi_attn_linear_fwd_map(const mmi_attn_dims *s, int32_t fmap, int normalize, double eps,
                             const float *q, const float *k, float *fq, float *fk, const float *v,
                             float *o, float *den, float *ws)
{
    const mmi_attn_fmap_in in = {fmap, q, k, NULL, NULL};
    mmi_attn_linear_fwd_io(s, &in, normalize, eps, fq, fk, v, o, den, ws);
}

static double grad_num_den(int normalize, int64_t w, const float *restrict doi,
                           const float *restrict oi, float den, float *restrict dnum);
static void add_f64(int64_t n, const double *restrict z, double a, float *restrict g);
static void acc_r(int64_t n, double a, const float *restrict q, double *restrict r,
                  float *restrict g);

/* P = tril(dnum V^T) for a chunk (dnum rows w apart; vc the chunk's V) into p with row
 * stride ldp. */
static void chunk_p(int64_t len, int64_t w, const float *dnum, int64_t ldn, const float *vc,
                    lin_ws *l, float *p, int64_t ldp)
{
    mmi_attn_transpose(len, w, vc, w, l->vt, LC);
    tril_tile(len, w, dnum, ldn, l->vt, LC, p, ldp);
}

/* Pass 1, chunks in order: dnum_c and dden_c (kept for pass 2: dnum in the rows of dv, which
 * pass 2 overwrites only after reading them, dden in the workspace), then
 * dfq_c = [dnum_c | P] [S^T ; fk_c] + z_t dden_t (z token by token); S^T is accumulated
 * directly (no transpose per chunk). dnum_c is formed in place as the left operand's first
 * columns. With pt, each chunk's P^T (len x len, at pt + c0 LC) is kept for pass 2. */
static void bwd_q_chunks(const mmi_attn_dims *s, int normalize, const float *fk, const float *v,
                         const float *o, const float *den, const float *dout, float *dfq, float *dv,
                         lin_ws *l, int32_t fmap, const float *fq, float *pt)
{
    const int64_t f = s->d, w = s->dv;
    const int pf = lin_prefetch();
    memset(l->z, 0, sizeof(double) * (size_t)f);
    memset(l->stt, 0, sizeof(float) * (size_t)(f * w));
    for (int64_t c0 = 0; c0 < s->n; c0 += LC) { /* the state kept transposed: S^T += V^T fk */
        const int64_t len = s->n - c0 < LC ? s->n - c0 : LC;
        const float *kc = fk + c0 * f, *vc = v + c0 * w;
        float *gc = fmap ? l->g : dfq + c0 * f, *dn = l->x;
        double *dd = l->dd + c0;
        /* the inputs of the chunk PF_AHEAD on, one operand between each pair of steps */
        const int64_t c1 = c0 + PF_AHEAD * LC, nx = !pf ? 0 : s->n - c1 < LC ? s->n - c1 : LC;
        if (nx > 0) prefetch(dout + c1 * w, nx * w);
        if (nx > 0) prefetch(o + c1 * w, nx * w);
        for (int64_t t = 0; t < len; t++)
            dd[t] = grad_num_den(normalize, w, dout + (c0 + t) * w, o + (c0 + t) * w, den[c0 + t],
                                 dn + t * l->ldx);
        /* copied, not written there directly: dv may alias dout */
        copy_rows(len, w, dn, l->ldx, dv + c0 * w, w);
        if (nx > 0) prefetch(v + c1 * w, nx * w);
        chunk_p(len, w, dn, l->ldx, vc, l, l->x + w, l->ldx);
        if (pt) mmi_attn_transpose(len, len, l->x + w, l->ldx, pt + c0 * LC, len);
        if (nx > 0) prefetch_w(dv + c1 * w, nx * w);
        if (nx > 0) prefetch(fk + c1 * f, nx * f);
        if (!lin_nn2(len, f, w, l->x, l->ldx, l->stt, f, len, l->x + w, l->ldx, kc, f, gc, f)) {
            memcpy(l->stt + w * f, kc, sizeof(float) * (size_t)(len * f));
            lin_nn(len, f, w + len, l->x, l->ldx, l->stt, f, gc, f);
        }
        if (nx > 0 && fmap) prefetch(fq + c1 * f, nx * f);
        if (!mmi_attn_lin_acc(len, f, 0, dd, kc, l->z, gc))
            for (int64_t t = 0; t < len; t++) {
                (void)mmi_attn_norm_step(f, kc + t * f, l->z, NULL);
                add_f64(f, l->z, dd[t], gc + t * f);
            }
        if (nx > 0) prefetch_w(dfq + c1 * f, nx * f);
        if (fmap) mmi_attn_fmap_bwd(fmap, fq + c0 * f, gc, dfq + c0 * f, len * f);
        if (c0 + LC < s->n) lin_tn(w, f, len, vc, w, kc, f, l->stt, f);
    }
}

/* Pass 2, chunks in reverse with R = sum_{later} fq^T dnum and r = sum dden fq:
 * dfk_c = [V_c | P^T] [R^T ; fq_c] + r_t, dv_c^T = [R^T | dnum_c^T] [fk_c^T ; A]. Only R^T
 * is kept (R^T += dnum_c^T fq_c), so no F x dv transpose per chunk: dv_c is computed
 * transposed and turned back (LC x dv). dnum_c is read in place from the rows of dv (pass 1
 * left it there); dv_c is written over it last. P^T is pass 1's (pt) when kept, else recomputed (the same
 * product, so the same bits). */
static void bwd_kv_chunks(const mmi_attn_dims *s, const float *fq, const float *fk, const float *v,
                          float *dfk, float *dv, lin_ws *l, int32_t fmap, const float *pt)
{
    const int64_t f = s->d, w = s->dv, lr = l->ldr;
    const int pf = lin_prefetch();
    double *r = l->z;
    float *rt = l->stt, *a = l->kt + f * LC;
    memset(r, 0, sizeof(double) * (size_t)f);
    for (int64_t j = 0; j < w; j++) memset(rt + j * lr, 0, sizeof(float) * (size_t)f);
    for (int64_t c0 = (s->n - 1) / LC * LC; c0 >= 0; c0 -= LC) {
        const int64_t len = s->n - c0 < LC ? s->n - c0 : LC;
        const float *qc = fq + c0 * f, *kc = fk + c0 * f, *vc = v + c0 * w;
        float *gk = fmap ? l->g : dfk + c0 * f, *gv = dv + c0 * w;
        const float *dn = gv; /* dnum_c, read in place: dv_c is written over it last */
        /* the inputs of the chunk PF_AHEAD before (descending), spread as in pass 1; c1 < 0:
         * none */
        const int64_t c1 = pf ? c0 - PF_AHEAD * LC : -1;
        if (c1 >= 0) prefetch(dv + c1 * w, LC * w);
        if (!pt) chunk_p(len, w, dn, w, vc, l, l->p, LC);
        if (c1 >= 0) prefetch(v + c1 * w, LC * w);
        if (!pt) tile_t(len, l->p, LC, l->x + w, l->ldx);
        if (c1 >= 0) prefetch(fq + c1 * f, LC * f);
        /* [V_c | P^T] [R^T ; fq_c], V_c, P^T and fq_c read in place on the path's kernel */
        if (!lin_nn2(len, f, w, vc, w, rt, lr, len, pt ? pt + c0 * LC : l->x + w, pt ? len : l->ldx,
                     qc, f, gk, f)) {
            copy_rows(len, w, vc, w, l->x, l->ldx);
            if (pt) copy_rows(len, len, pt + c0 * LC, len, l->x + w, l->ldx);
            copy_rows(len, f, qc, f, rt + w * lr, lr);
            lin_nn(len, f, w + len, l->x, l->ldx, rt, lr, gk, f);
        }
        if (c1 >= 0) prefetch(fk + c1 * f, LC * f);
        mmi_attn_transpose(len, f, kc, f, l->kt, LC);
        tril_tile(len, f, qc, f, l->kt, LC, a, LC);
        if (c1 >= 0) prefetch_w(dfk + c1 * f, LC * f);
        { /* dv_c^T = [R^T | dnum_c^T] [fk_c^T ; A], dnum_c^T read in place as a TN operand on
           * the path's kernel */
            const mmi_attn_lin_seg sg[2] = {{f, rt, lr, 1, l->kt, LC}, {len, dn, 1, w, a, LC}};
            if (f + len > MMI_GEMM_DIRECT_KC || !mmi_attn_lin_tile(0, w, len, sg, 2, l->vt, LC)) {
                mmi_attn_transpose(len, w, dn, w, rt + f, lr);
                mmi_attn_tile_nn(w, len, f + len, 1.0f, rt, lr, l->kt, LC, 0.0f, l->vt, LC);
            }
        }
        if (!mmi_attn_lin_acc(len, f, 1, l->dd + c0, qc, r, gk))
            for (int64_t t = len - 1; t >= 0; t--)
                acc_r(f, l->dd[c0 + t], qc + t * f, r, gk + t * f);
        if (fmap) mmi_attn_fmap_bwd(fmap, kc, gk, dfk + c0 * f, len * f);
        if (c0 > 0) lin_tn(w, f, len, dn, w, qc, f, rt, lr);
        mmi_attn_transpose(w, len, l->vt, LC, gv, w);
    }
}

void mmi_attn_linear_fwd(const mmi_attn_dims *s, int normalize, double eps, const float *fq,
                         const float *fk, const float *v, float *o, float *den, float *ws)
{
    const int64_t f = s->d, w = s->dv;
    double *z = (double *)ws;
    float *st = ws + 2 * f;
    int64_t j = 0;
    if (s->causal && s->n == s->m) {
        fwd_chunks(s, normalize, eps, fq, fk, v, o, den, ws, NULL);
        return;
    }
    memset(z, 0, sizeof(double) * (size_t)f);
    memset(st, 0, sizeof(float) * (size_t)(f * w));
    for (int64_t i = 0; i < s->n; i++) {
        const int64_t lim = last_key(s, i);
        const float *qi = fq + i * f;
        float *oi = o + i * w;
        double dn = 1.0, qz;
        memset(oi, 0, sizeof(float) * (size_t)w);
        if (j <= lim) {
            while (j < lim) (void)add_key(s, fk, v, j++, st, z, NULL, NULL, NULL, NULL);
            qz = add_key(s, fk, v, j++, st, z, NULL, NULL, qi, oi); /* fused: state read once */
        } else {
            mmi_attn_state_step(f, w, NULL, NULL, st, w, NULL, NULL, qi, oi);
            qz = mmi_attn_norm_step(f, NULL, z, qi);
        }
        if (normalize) {
            dn = eps + qz;
            /* eps = 0 and no visible key: 0/0; the row outputs 0 (as a key-less softmax row) */
            if (dn == 0.0) dn = 1.0;
            const float inv = (float)(1.0 / dn);
            for (int64_t c = 0; c < w; c++) oi[c] *= inv;
        }
        den[i] = (float)dn;
    }
}

/* dnum = dO / den and dden = -(dO . o) / den for query i (dnum = dO, dden = 0 unnormalised).
 * Fixed 8-blocks on restrict pointers so -O2 vectorises the quotients and the float64 dot
 * (eight partial sums, then the tail). */
static double grad_num_den(int normalize, int64_t w, const float *restrict doi,
                           const float *restrict oi, float den, float *restrict dnum)
{
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, dot = 0.0;
    int64_t c = 0;
    if (!normalize) {
        memcpy(dnum, doi, sizeof(float) * (size_t)w);
        return 0.0;
    }
    if (mmi_attn_lin_dnum(w, doi, oi, den, dnum, &dot)) return dot;
    for (; c + 8 <= w; c += 8)
        for (int j = 0; j < 8; j++) {
            dnum[c + j] = doi[c + j] / den;
            part[j] += (double)doi[c + j] * (double)oi[c + j];
        }
    for (; c < w; c++) {
        dnum[c] = doi[c] / den;
        dot += (double)doi[c] * (double)oi[c];
    }
    for (int j = 0; j < 8; j++) dot += part[j];
    return -dot / den;
}

/* g[c] = (float)(g[c] + a * z[c]) for c < n (8-blocks, as above). */
static void add_f64(int64_t n, const double *restrict z, double a, float *restrict g)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) g[c + j] = (float)(g[c + j] + z[c + j] * a);
    for (; c < n; c++) g[c] = (float)(g[c] + z[c] * a);
}

/* r += a q (float64), then g = (float)(g + r), for c < n. */
static void acc_r(int64_t n, double a, const float *restrict q, double *restrict r,
                  float *restrict g)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) {
            r[c + j] += a * q[c + j];
            g[c + j] = (float)(g[c + j] + r[c + j]);
        }
    for (; c < n; c++) {
        r[c] += a * q[c];
        g[c] = (float)(g[c] + r[c]);
    }
}

/* Pass 1 (forward in i): dfq_i = S_i dnum_i + z_i dden_i with the state recomputed. */
static void bwd_queries(const mmi_attn_dims *s, int normalize, const float *fk, const float *v,
                        const float *o, const float *den, const float *dout, float *dfq, float *ws)
{
    const int64_t f = s->d, w = s->dv;
    double *z = (double *)ws;
    float *st = ws + 2 * f, *dnum = st + f * w;
    int64_t j = 0;
    memset(z, 0, sizeof(double) * (size_t)f);
    memset(st, 0, sizeof(float) * (size_t)(f * w));
    for (int64_t i = 0; i < s->n; i++) {
        const int64_t lim = last_key(s, i);
        float *gi = dfq + i * f;
        const double dden = grad_num_den(normalize, w, dout + i * w, o + i * w, den[i], dnum);
        if (j <= lim) {
            while (j < lim) (void)add_key(s, fk, v, j++, st, z, NULL, NULL, NULL, NULL);
            (void)add_key(s, fk, v, j++, st, z, dnum, gi, NULL, NULL);
        } else {
            mmi_attn_state_step(f, w, NULL, NULL, st, w, dnum, gi, NULL, NULL);
        }
        for (int64_t c = 0; c < f; c++) gi[c] = (float)(gi[c] + z[c] * dden);
    }
}

/* Adds query i to the reverse state: R += fq_i dnum_i^T, r += dden_i fq_i. */
static void add_query(const mmi_attn_dims *s, int normalize, const float *fq, const float *o,
                      const float *den, const float *dout, int64_t i, float *st, double *r,
                      float *dnum)
{
    const float *qi = fq + i * s->d;
    const double dden =
        grad_num_den(normalize, s->dv, dout + i * s->dv, o + i * s->dv, den[i], dnum);
    mmi_attn_state_step(s->d, s->dv, qi, dnum, st, s->dv, NULL, NULL, NULL, NULL);
    for (int64_t c = 0; c < s->d; c++) r[c] += dden * qi[c];
}

/* Pass 2 (reverse in j): dfk_j = R_j v_j + r_j, dv_j = R_j^T fk_j. */
static void bwd_keys(const mmi_attn_dims *s, int normalize, const float *fq, const float *fk,
                     const float *v, const float *o, const float *den, const float *dout,
                     float *dfk, float *dv, float *ws)
{
    const int64_t f = s->d, w = s->dv, off = s->m - s->n;
    double *r = (double *)ws;
    float *st = ws + 2 * f, *dnum = st + f * w;
    int64_t i = s->n - 1;
    memset(r, 0, sizeof(double) * (size_t)f);
    memset(st, 0, sizeof(float) * (size_t)(f * w));
    for (int64_t j = s->m - 1; j >= 0; j--) {
        const int64_t first =
            s->causal ? (j - off > 0 ? j - off : 0) : 0; /* first query seeing j */
        float *gk = dfk + j * f, *gv = dv + j * w;
        while (i >= first) add_query(s, normalize, fq, o, den, dout, i--, st, r, dnum);
        memset(gv, 0, sizeof(float) * (size_t)w);
        mmi_attn_state_step(f, w, NULL, NULL, st, w, v + j * w, gk, fk + j * f, gv);
        for (int64_t c = 0; c < f; c++) gk[c] = (float)(gk[c] + r[c]);
    }
}

void mmi_attn_linear_bwd(const mmi_attn_dims *s, int normalize, const float *fq, const float *fk,
                         const float *v, const float *o, const float *den, const float *dout,
                         float *dfq, float *dfk, float *dv, float *ws)
{
    if (s->causal && s->n == s->m) {
        lin_ws l = split_ws(s->d, s->dv, ws);
        bwd_q_chunks(s, normalize, fk, v, o, den, dout, dfq, dv, &l, 0, NULL, NULL);
        bwd_kv_chunks(s, fq, fk, v, dfk, dv, &l, 0, NULL);
        return;
    }
    bwd_queries(s, normalize, fk, v, o, den, dout, dfq, ws);
    bwd_keys(s, normalize, fq, fk, v, o, den, dout, dfk, dv, ws);
}

void mmi_attn_linear_bwd_map(const mmi_attn_dims *s, int32_t fmap, int normalize, const float *fq,
                             const float *fk, const float *v, const float *o, const float *den,
                             const float *dout, float *dq, float *dk, float *dv, float *tq,
                             float *tk, float *ws)
{
    MMI_ASSERT(fmap >= MM_FMAP_ELU1 && fmap <= MM_FMAP_IDENTITY);
    if (s->causal && s->n == s->m) {
        lin_ws l = split_ws(s->d, s->dv, ws);
        /* tq (n x F, unused here otherwise) keeps each chunk's P^T for pass 2 when it fits */
        float *pt = s->d >= LC ? tq : NULL;
        bwd_q_chunks(s, normalize, fk, v, o, den, dout, dq, dv, &l, fmap, fq, pt);
        bwd_kv_chunks(s, fq, fk, v, dk, dv, &l, fmap, pt);
        return;
    }
    mmi_attn_linear_bwd(s, normalize, fq, fk, v, o, den, dout, tq, tk, dv, ws);
    mmi_attn_fmap_bwd(fmap, fq, tq, dq, s->n * s->d);
    mmi_attn_fmap_bwd(fmap, fk, tk, dk, s->m * s->d);
}
