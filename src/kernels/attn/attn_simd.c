/* SPDX-License-Identifier: MIT */
/* attn_simd.c — the few vector primitives every attention kernel is built from, with a
 * portable C body and the dispatched ISA variants (attn_simd_avx2.c). Keeping
 * the hot loops here means each kernel file reads as the math it implements. */
#include "mmi_attn_kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The ISA table of the dispatched path, NULL on the portable path. */
static const mmi_attn_isa *isa(void) { return mmi_attn_isa_get(); }

void mmi_attn_rowmat(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                     float alpha, float *y)
{
    const mmi_attn_isa *v = isa();
    if (v && v->rowmat(n_out, k, x, mt, ld, alpha, y)) return;
    for (int64_t j = 0; j < n_out; j++) y[j] = 0.0f;
    for (int64_t c = 0; c < k; c++) {
        const float xc = x[c], *row = mt + c * ld;
        for (int64_t j = 0; j < n_out; j++) y[j] += xc * row[j];
    }
    for (int64_t j = 0; j < n_out; j++) y[j] *= alpha;
}

void mmi_attn_rowmat_sub(int64_t n_out, int64_t k, const float *x, const float *mt, int64_t ld,
                         const float *o, float alpha, float *y)
{
    const mmi_attn_isa *v = isa();
    if (v && v->rowmat_sub(n_out, k, x, mt, ld, o, alpha, y)) return;
    for (int64_t j = 0; j < n_out; j++) y[j] = 0.0f;
    for (int64_t c = 0; c < k; c++) {
        const float xc = x[c], oc = o[c], *row = mt + c * ld;
        for (int64_t j = 0; j < n_out; j++) y[j] += xc * (row[j] - oc);
    }
    for (int64_t j = 0; j < n_out; j++) y[j] *= alpha;
}

void mmi_attn_ds_tile(int64_t rows, int64_t n, int64_t k, const float *x, const float *o,
                      int64_t ldx, const float *mt, int64_t ldm, float *p, int64_t ldp)
{
    const mmi_attn_isa *v = isa();
    if (v && v->ds_tile(rows, n, k, x, o, ldx, mt, ldm, p, ldp)) return;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *or_ = o + r * ldx;
        float *pr = p + r * ldp;
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < k; c++) acc += xr[c] * (mt[c * ldm + j] - or_[c]);
            pr[j] *= acc;
        }
    }
}

void mmi_attn_relu_row(int64_t n, int64_t lim, float *x, int square)
{
    const mmi_attn_isa *v = isa();
    int64_t j = 0;
    lim = lim < 0 ? 0 : lim > n ? n : lim;
    if (v && v->relu_row(n, lim, x, square)) return;
    for (; j < lim; j++) {
        const float y = x[j] > 0.0f ? x[j] : 0.0f;
        x[j] = square ? y * y : y;
    }
    for (; j < n; j++) x[j] = 0.0f;
}

void mmi_attn_relu_ds_row(int64_t n, float *t, float *u, float f)
{
    const mmi_attn_isa *v = isa();
    if (v && v->relu_ds_row(n, t, u, f)) return;
    for (int64_t j = 0; j < n; j++) {
        const float r = t[j];
        u[j] = f * r * u[j];
        t[j] = r * r;
    }
}

void mmi_attn_matrow_acc(int64_t rows, int64_t n, const float *p, const float *mat, int64_t ld,
                         float *y)
{
    const mmi_attn_isa *v = isa();
    if (v && v->matrow_acc(rows, n, p, mat, ld, y)) return;
    for (int64_t r = 0; r < rows; r++) {
        const float pr = p[r], *row = mat + r * ld;
        if (pr == 0.0f) continue;
        for (int64_t j = 0; j < n; j++) y[j] += pr * row[j];
    }
}

void mmi_attn_state_step(int64_t rows, int64_t n, const float *a, const float *x, float *st,
                         int64_t ld, const float *w, float *out, const float *b, float *y)
{
    const mmi_attn_isa *v = isa();
    if (v && v->state_step(rows, n, a, x, st, ld, w, out, b, y)) return;
    for (int64_t r = 0; r < rows; r++) {
        float *row = st + r * ld;
        if (a) {
            const float ar = a[r];
            for (int64_t j = 0; j < n; j++) row[j] += ar * x[j];
        }
        if (w) {
            float acc = 0.0f;
            for (int64_t j = 0; j < n; j++) acc += row[j] * w[j];
            out[r] = acc;
        }
        if (b) {
            const float br = b[r];
            for (int64_t j = 0; j < n; j++) y[j] += br * row[j];
        }
    }
}

float mmi_attn_exp_sub(int64_t n, const float *s, float mx, float *p)
{
    float sum = 0.0f;
    const mmi_attn_isa *v = isa();
    if (v && v->exp_sub(n, s, mx, p, &sum)) return sum;
    for (int64_t j = 0; j < n; j++) {
        p[j] = expf(s[j] - mx);
        sum += p[j];
    }
    return sum;
}

void mmi_attn_exp_rows(int64_t rows, int64_t n, int64_t off, float *p, int64_t ld, const float *sub)
{
    const mmi_attn_isa *v = isa();
    if (v && v->exp_rows && v->exp_rows(rows, n, off, p, ld, sub)) return;
    for (int64_t r = 0; r < rows; r++) {
        float *pr = p + r * ld;
        const int64_t nv = isinf(sub[r]) ? 0 : r + off < 0 ? 0 : r + off > n ? n : r + off;
        if (nv > 0) (void)mmi_attn_exp_sub(nv, pr, sub[r], pr);
        if (n > nv) memset(pr + nv, 0, sizeof(float) * (size_t)(n - nv));
    }
}

int mmi_attn_exp_ds_rows(int64_t rows, int64_t n, int64_t off, float *p, float *x, int64_t ld,
                         const float *sub, const float *dd)
{
    const mmi_attn_isa *v = isa();
    return v && v->exp_ds_rows && v->exp_ds_rows(rows, n, off, p, x, ld, sub, dd);
}

int mmi_attn_row_dots(int64_t rows, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *dd)
{
    const mmi_attn_isa *v = isa();
    /* with exp_ds_rows only: the pair is the softmax backward's GEMM form */
    return v && v->row_dots && v->exp_ds_rows && v->row_dots(rows, k, a, lda, b, ldb, dd);
}

double mmi_attn_norm_step(int64_t n, const float *k, double *z, const float *q)
{
    double a0 = 0.0, a1 = 0.0;
    const mmi_attn_isa *v = isa();
    if (v && v->norm_step(n, k, z, q, &a0)) return a0;
    for (int64_t c = 0; c < n; c++) {
        if (k) z[c] += k[c];
        if (q) {
            if (c & 1)
                a1 += (double)q[c] * z[c];
            else
                a0 += (double)q[c] * z[c];
        }
    }
    return a0 + a1;
}

double mmi_attn_dot64(int64_t n, const float *x, const float *y)
{
    double acc = 0.0;
    for (int64_t j = 0; j < n; j++) acc += (double)x[j] * (double)y[j];
    return acc;
}

void mmi_attn_gate_row(int64_t n, const double *prev, const float *g, double *bt, const float *q,
                       float scale, const float *k, float *qe, float *kh, float *e)
{
    const mmi_attn_isa *v = isa();
    if (v && v->gate_row(n, prev, g, bt, q, scale, k, qe, kh, e)) return;
    for (int64_t c = 0; c < n; c++) { /* the clamp as the gated kernel's: see GATE_FLOOR there */
        const double x = g[c] > -128.0f ? (double)g[c] : -128.0;
        bt[c] = (prev ? prev[c] : 0.0) + x;
        if (q) {
            const float f = expf((float)bt[c]);
            qe[c] = scale * q[c] * f;
            kh[c] = k[c] / f;
            if (e) e[c] = f;
        }
    }
}

/* The path's table when it has the entry (has), else the AVX2 table (NULL on the portable
 * path): the entries an AVX-512 table leaves NULL run their AVX2 body there. */
static const mmi_attn_isa *isa_or_avx2(int has)
{
    const mmi_attn_isa *v = isa();
    return !v || has ? v : mmi_attn_isa_avx2();
}

int mmi_attn_lin_norm(int64_t len, int64_t n, const float *q, const float *k, double *z,
                      int normalize, double eps, float *den, float *x, int64_t ldx)
{
    const mmi_attn_isa *v = isa();
    return v && v->lin_norm && v->lin_norm(len, n, q, k, z, normalize, eps, den, x, ldx);
}

int mmi_attn_lin_dnum(int64_t w, const float *dout, const float *o, float den, float *dnum,
                      double *dden)
{
    const mmi_attn_isa *v = isa();
    return v && v->lin_dnum && v->lin_dnum(w, dout, o, den, dnum, dden);
}

int mmi_attn_lin_acc(int64_t len, int64_t n, int rev, const double *a, const float *x, double *z,
                     float *g)
{
    const mmi_attn_isa *v = isa();
    return v && v->lin_acc && v->lin_acc(len, n, rev, a, x, z, g);
}

int mmi_attn_lin_tile(int mode, int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg,
                      float *c, int64_t ldc)
{
    const mmi_attn_isa *v = isa();
    return v && v->lin_tile && v->lin_tile(mode, m, n, sg, nseg, c, ldc);
}

int mmi_attn_lin_tile_rs(int64_t m, int64_t n, const mmi_attn_lin_seg *sg, int nseg, const float *f,
                         const float *c0, int64_t ldc0, float *c, int64_t ldc)
{
    const mmi_attn_isa *v = isa();
    return v && v->lin_tile_rs && v->lin_tile_rs(m, n, sg, nseg, f, c0, ldc0, c, ldc);
}

void mmi_attn_copy_keep(int64_t n, const float *src, float *dst, int fence)
{
    const mmi_attn_isa *v = isa();
    v = isa_or_avx2(v && v->copy_keep);
    if (v && v->copy_keep && v->copy_keep(n, src, dst, fence)) return;
    if (n > 0) memcpy(dst, src, sizeof(float) * (size_t)n);
}

void mmi_attn_transpose(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                        int64_t ldd)
{
    const mmi_attn_isa *v = isa();
    v = isa_or_avx2(v && v->transpose);
    if (v && v->transpose && v->transpose(rows, cols, src, lds, dst, ldd)) return;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

void mmi_attn_gate_grad_row(int64_t n, float scale, const float *q, float *dq, const float *k,
                            const float *dk, double *acc, float *dg)
{
    const mmi_attn_isa *v = isa();
    v = isa_or_avx2(v && v->gate_grad_row);
    if (v && v->gate_grad_row && v->gate_grad_row(n, scale, q, dq, k, dk, acc, dg)) return;
    for (int64_t c = 0; c < n; c++) {
        acc[c] += (double)scale * q[c] * dq[c] - (double)k[c] * dk[c];
        dg[c] = (float)acc[c];
        dq[c] *= scale;
    }
}

void mmi_attn_gate_grad_rows(int64_t rows, int64_t n, float scale, const float *q, float *dq,
                             const float *k, const float *dk, double *acc, float *dg)
{
    const mmi_attn_isa *v = isa();
    if (v && v->gate_grad_rows && v->gate_grad_rows(rows, n, scale, q, dq, k, dk, acc, dg)) return;
    v = isa_or_avx2(v && v->gate_grad_row); /* else row by row, the table looked up once */
    for (int64_t t = rows - 1; t >= 0; t--) {
        const int64_t o = t * n;
        if (v && v->gate_grad_row &&
            v->gate_grad_row(n, scale, q + o, dq + o, k + o, dk + o, acc, dg + o))
            continue;
        for (int64_t c = 0; c < n; c++) {
            acc[c] += (double)scale * q[o + c] * dq[o + c] - (double)k[o + c] * dk[o + c];
            dg[o + c] = (float)acc[c];
            dq[o + c] *= scale;
        }
    }
}

int mmi_attn_log_gate_copy(int64_t n, const float *x, float *y)
{
    const mmi_attn_isa *v = isa();
    int bad = 0;
    v = isa_or_avx2(v && v->log_gate_copy);
    if (v && v->log_gate_copy && v->log_gate_copy(n, x, y, &bad)) return bad;
    for (int64_t i = 0; i < n; i++) {
        y[i] = x[i];
        bad |= !(x[i] <= 0.0f && x[i] >= -FLT_MAX);
    }
    return bad;
}

/* max_j x[j] (-Inf for n = 0 or all -Inf; NaN ignored), eight running maxima in fixed blocks so
 * -O2 makes vector compares of the loop instead of one dependent chain (the chain cost the
 * AVX2 softmax forward a tenth of its time). */
static float row_max(int64_t n, const float *restrict x)
{
    float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                   -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    float mx = -INFINITY;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int c = 0; c < 8; c++) m8[c] = x[j + c] > m8[c] ? x[j + c] : m8[c];
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    for (int c = 0; c < 8; c++) mx = m8[c] > mx ? m8[c] : mx;
    return mx;
}

/* y *= a elementwise, in fixed blocks of 8 (vector code at -O2). */
static void scale_in_place(int64_t n, float a, float *restrict y)
{
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) y[c + j] *= a;
    for (; c < n; c++) y[c] *= a;
}

void mmi_attn_softmax_row(int64_t n, int64_t lim, float *s, double *m, double *l, float *acc,
                          int64_t dv)
{
    const mmi_attn_isa *v = isa();
    float mx = -INFINITY, mnew, alpha;
    lim = lim < 0 ? 0 : lim > n ? n : lim;
    if (v && v->softmax_row && v->softmax_row(n, lim, s, m, l, acc, dv)) return;
    mx = row_max(lim, s);
    if (mx == -INFINITY) { /* nothing visible: the row of P is 0 */
        for (int64_t j = 0; j < n; j++) s[j] = 0.0f;
        return;
    }
    mnew = (float)*m > mx ? (float)*m : mx;
    alpha = *m == -INFINITY ? 0.0f : expf((float)*m - mnew);
    /* masked keys as -Inf through exp_sub's whole row (they give 0): the sum then has the
     * grouping of a row masked by value, whatever the table's exp_sub groups by */
    for (int64_t j = lim; j < n; j++) s[j] = -INFINITY;
    *l = *l * alpha + mmi_attn_exp_sub(n, s, mnew, s);
    if (alpha != 1.0f) scale_in_place(dv, alpha, acc);
    *m = mnew;
}

double mmi_attn_rwkv_bonus(int64_t d, int64_t dv, float scale, const float *r, const float *u,
                           const float *k, const float *v, float *o)
{
    const mmi_attn_isa *t = isa();
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0.0;
    float f;
    int64_t c = 0;
    if (t && t->rwkv_bonus && t->rwkv_bonus(d, dv, scale, r, u, k, v, o, &acc)) return acc;
    for (; c + 8 <= d; c += 8) /* eight partial sums in fixed blocks (vector code at -O2) */
        for (int j = 0; j < 8; j++)
            part[j] += (double)r[c + j] * (double)u[c + j] * (double)k[c + j];
    for (; c < d; c++) acc += (double)r[c] * (double)u[c] * (double)k[c];
    for (int j = 0; j < 8; j++) acc += part[j];
    acc *= (double)scale;
    f = (float)acc;
    for (int64_t e = 0; e < dv; e++) o[e] += f * v[e];
    return acc;
}
