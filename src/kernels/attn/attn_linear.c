/* SPDX-License-Identifier: MIT */
/* attn_linear.c — linear attention on feature-mapped queries and keys ("Transformers are
 * RNNs"): causal and non-causal, forward and the full backward through the normaliser
 * (docs/ATTENTION.md §MM_ATTN_LINEAR). The causal forward carries one F x dv state and the normaliser sum z; the
 * backward recomputes that state forward (for dfq) and carries the reverse state R, r (for dfk
 * and dv), so no per-position F x dv tensor is ever stored. The state is float32 (as
 * fast-transformers' kernel) so its update runs at FMA speed; the normaliser sums z, r are
 * float64 because they grow with the sequence. */
#include "mmi_attn_kernels.h"

#include <string.h>

size_t mmi_attn_linear_ws_floats(int64_t f, int64_t dv)
{
    /* z or r (F doubles), the state (F x dv), dnum (dv), padding; checked, SIZE_MAX when it
     * does not fit (the caller's reservation refuses that) */
    return mmi_sz_to(mmi_sz_add(mmi_sz_add(mmi_sz_mul(2, f), mmi_sz_mul(f, dv)),
                                mmi_sz_add(dv, 32)));
}

/* Last key visible from query i (bottom-right aligned), or m - 1 without a causal mask. */
static int64_t last_key(const mmi_attn_dims *s, int64_t i)
{
    int64_t lim = s->causal ? i + (s->m - s->n) : s->m - 1;
    return lim < s->m - 1 ? lim : s->m - 1;
}

/* Adds key j to the state and the normaliser sum; returns q . z after the update (0 without
 * q; q is also the read-out weight b when given). */
static double add_key(const mmi_attn_dims *s, const float *fk, const float *v, int64_t j,
                      float *st, double *z, const float *w, float *out, const float *b, float *y)
{
    const float *kj = fk + j * s->d;
    mmi_attn_state_step(s->d, s->dv, kj, v + j * s->dv, st, s->dv, w, out, b, y);
    return mmi_attn_norm_step(s->d, kj, z, b);
}

void mmi_attn_linear_fwd(const mmi_attn_dims *s, int normalize, double eps, const float *fq,
                         const float *fk, const float *v, float *o, float *den, float *ws)
{
    const int64_t f = s->d, w = s->dv;
    double *z = (double *)ws;
    float *st = ws + 2 * f;
    int64_t j = 0;
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

/* dnum = dO / den and dden = -(dO . o) / den for query i (dnum = dO, dden = 0 unnormalised). */
static double grad_num_den(int normalize, int64_t w, const float *doi, const float *oi,
                           float den, float *dnum)
{
    if (!normalize) {
        memcpy(dnum, doi, sizeof(float) * (size_t)w);
        return 0.0;
    }
    for (int64_t c = 0; c < w; c++) dnum[c] = doi[c] / den;
    return -mmi_attn_dot64(w, doi, oi) / den;
}

/* Pass 1 (forward in i): dfq_i = S_i dnum_i + z_i dden_i with the state recomputed. */
static void bwd_queries(const mmi_attn_dims *s, int normalize, const float *fk, const float *v,
                        const float *o, const float *den, const float *dout, float *dfq,
                        float *ws)
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
    const double dden = grad_num_den(normalize, s->dv, dout + i * s->dv, o + i * s->dv, den[i],
                                     dnum);
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
        const int64_t first = s->causal ? (j - off > 0 ? j - off : 0) : 0; /* first query seeing j */
        float *gk = dfk + j * f, *gv = dv + j * w;
        while (i >= first) add_query(s, normalize, fq, o, den, dout, i--, st, r, dnum);
        memset(gv, 0, sizeof(float) * (size_t)w);
        mmi_attn_state_step(f, w, NULL, NULL, st, w, v + j * w, gk, fk + j * f, gv);
        for (int64_t c = 0; c < f; c++) gk[c] = (float)(gk[c] + r[c]);
    }
}

void mmi_attn_linear_bwd(const mmi_attn_dims *s, int normalize, const float *fq,
                         const float *fk, const float *v, const float *o, const float *den,
                         const float *dout, float *dfq, float *dfk, float *dv, float *ws)
{
    bwd_queries(s, normalize, fk, v, o, den, dout, dfq, ws);
    bwd_keys(s, normalize, fq, fk, v, o, den, dout, dfk, dv, ws);
}
