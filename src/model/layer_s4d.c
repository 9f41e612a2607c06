/* SPDX-License-Identifier: MIT */
/* layer_s4d.c — the S4D block of state-spaces/s4 models/s4/s4d.py as an mm_model layer, on
 * inputs [B, T, H]: K = S4D kernel of length T (ZOH, Vandermonde, factor 2), y = K * u + D u
 * (causal convolution along T by zero-padded FFT), a = GELU(y), out = GLU(Linear(H -> 2H)(a))
 * (torch's Conv1d(H, 2H, 1) + GLU(dim=-2)). Tensors follow s4d.py's state_dict: D,
 * kernel.C [H,N/2,2], kernel.log_dt, kernel.log_A_real, kernel.A_imag,
 * output_linear.0.weight [2H,H,1], output_linear.0.bias. Dropout is not applied. Decoding
 * runs the ZOH recurrence per channel (mmi_s4d_step). */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "../kernels/ssm/mmi_ssm_kernels.h"
#include "mmi_model_ssm.h"

#include <math.h>
#include <string.h>

/* Letters: B batch, T sequence, H d_model (channels), N d_state, M = N/2 complex modes. */
#define NS(l)    ((l)->icfg[0])
#define MODES(l) (NS(l) / 2)

typedef struct par {
    const float *D, *C, *log_dt, *lar, *aim, *W, *b;
} par;

static par par_of(const mmi_layer *l, const float *p)
{
    int64_t H = l->in_dim, M = MODES(l);
    par q;
    q.D = p, q.C = q.D + H, q.log_dt = q.C + 2 * H * M, q.lar = q.log_dt + H, q.aim = q.lar + H * M;
    q.W = q.aim + H * M, q.b = q.W + 2 * H * H;
    return q;
}

static int s4d_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    int64_t H = l->in_dim, M, off = 0;
    if (l->n_icfg != 1 || l->n_dcfg != 0)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: s4d config needs 1 integer", fn);
    if (NS(l) < 2 || NS(l) > 4096 || NS(l) % 2 || H > ((int64_t)1 << 20))
        return mmi_fail(e, MM_E_RANGE, "%s: d_state %lld must be even in 2..4096", fn,
                        (long long)NS(l));
    M = MODES(l);
    memset(l->tensors, 0, sizeof l->tensors);
    mmi_layer_set_tensor(l, 0, "D", 1, H, 0, 0, off), off += H;
    mmi_layer_set_tensor(l, 1, "kernel.C", 3, H, M, 2, off), off += 2 * H * M;
    mmi_layer_set_tensor(l, 2, "kernel.log_dt", 1, H, 0, 0, off), off += H;
    mmi_layer_set_tensor(l, 3, "kernel.log_A_real", 2, H, M, 0, off), off += H * M;
    mmi_layer_set_tensor(l, 4, "kernel.A_imag", 2, H, M, 0, off), off += H * M;
    mmi_layer_set_tensor(l, 5, "output_linear.0.weight", 3, 2 * H, H, 1, off), off += 2 * H * H;
    mmi_layer_set_tensor(l, 6, "output_linear.0.bias", 1, 2 * H, 0, 0, off), off += 2 * H;
    l->n_tensors = 7;
    l->n_params = off;
    l->out_dim = H;
    l->init_work = 0;
    return MM_OK;
}

static void s4d_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    int64_t H = l->in_dim, M = MODES(l);
    float *d = p, *c = d + H, *ldt = c + 2 * H * M, *lar = ldt + H, *aim = lar + H * M;
    float *w = aim + H * M, *b = w + 2 * H * H;
    double bound = 1.0 / sqrt((double)H);
    (void)work;
    for (int64_t i = 0; i < H; i++) d[i] = (float)mmi_rng_normal(rng);
    for (int64_t i = 0; i < 2 * H * M; i++) c[i] = (float)(mmi_rng_normal(rng) * sqrt(0.5));
    for (int64_t i = 0; i < H; i++)
        ldt[i] = (float)(mmi_rng_uniform(rng) * (log(0.1) - log(1e-3)) + log(1e-3));
    if (mm_ssm_s4d_init(MM_S4D_LIN, H, 2 * M, lar, aim) != MM_OK)
        memset(lar, 0, (size_t)(H * M) * 4);
    for (int64_t i = 0; i < 2 * H * H + 2 * H; i++)
        w[i] = (float)(bound * (2.0 * mmi_rng_uniform(rng) - 1.0));
    (void)b;
}

/* ---- buffers ------------------------------------------------------------------------------- */
typedef struct fbuf {
    float *k, *y, *a, *z;
} fbuf;
typedef struct sbuf {
    double *tw, *kf, *buf, *acc, *tmp, *x2, *dacc;
    float *kg, *uc, *yc, *dyc, *duc, *dk, *tk, *da, *dz, *ta, *tz, *tuc;
    double *zo, *modes;
} sbuf;

static int64_t nfft(int64_t t) { return mmi_fft_size(2 * t); }

static void layout_fwd(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, fbuf *f)
{
    /* counts through mmi_sz_mul: an overflow saturates the walk and finalize refuses it */
    int64_t H = l->in_dim, rows = mmi_sz_mul(b, t);
    f->k = mmi_carve_take(y, mmi_sz_mul(H, t), 4);
    f->y = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    f->a = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    f->z = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(rows, 2), H), 4);
}

static void layout_scr(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, sbuf *s)
{
    int64_t H = l->in_dim, rows = mmi_sz_mul(b, t), nf = nfft(t), M = MODES(l);
    int64_t acc = t > 2 * H ? t : 2 * H;
    s->tw = mmi_carve_take(y, nf > 0 ? nf : MMI_SIZE_BAD, 8); /* 0: beyond the FFT's sizes */
    s->kf = mmi_carve_take(y, mmi_sz_mul(2, nf), 8),
    s->buf = mmi_carve_take(y, mmi_sz_mul(2, nf), 8);
    s->acc = mmi_carve_take(y, mmi_sz_mul(2, nf), 8);
    s->tmp = mmi_carve_take(y, mmi_sz_mul(2, nf), 8),
    s->x2 = mmi_carve_take(y, mmi_sz_mul(2, nf), 8);
    s->dacc = mmi_carve_take(y, mmi_sz_add(acc, H), 8);
    s->kg = mmi_carve_take(y, mmi_sz_mul(4, M), 4);
    s->uc = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->yc = mmi_carve_take(y, mmi_sz_mul(rows, H), 4),
    s->dyc = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->duc = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->dk = mmi_carve_take(y, mmi_sz_mul(H, t), 4), s->tk = mmi_carve_take(y, mmi_sz_mul(H, t), 4);
    s->da = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->dz = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(rows, 2), H), 4),
    s->ta = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->tz = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(rows, 2), H), 4);
    s->tuc = mmi_carve_take(y, mmi_sz_mul(rows, H), 4);
    s->zo = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(4, H), M), 8);
    s->modes = mmi_carve_take(y, t > 1 ? t : 1, 8);
}

static void s4d_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                      size_t *scratch, int *gemm_ws)
{
    mmi_carve y = mmi_carve_measure();
    fbuf f;
    sbuf s;
    layout_fwd(l, batch, seq, &y, &f);
    *saved = y.off;
    layout_scr(l, batch, seq, &y, &s);
    *scratch = y.off;
    *gemm_ws = 1;
}

static void buffers(const mmi_layer *l, const mmi_exec *c, const void *saved, void *scratch,
                    fbuf *f, sbuf *s)
{
    mmi_carve y = mmi_carve_at(scratch, SIZE_MAX);
    fbuf fs;
    layout_fwd(l, c->batch, c->seq, &y, &fs);
    layout_scr(l, c->batch, c->seq, &y, s);
    if (saved) {
        mmi_carve z = mmi_carve_at((void *)(uintptr_t)saved, SIZE_MAX);
        layout_fwd(l, c->batch, c->seq, &z, f);
    } else {
        *f = fs;
    }
}

static mmi_s4d_ch channel(const mmi_layer *l, const par *q, int64_t h)
{
    int64_t M = MODES(l);
    mmi_s4d_ch ch;
    ch.M = M, ch.dt = exp((double)q->log_dt[h]);
    ch.lar = q->lar + h * M, ch.aim = q->aim + h * M, ch.c = q->C + 2 * h * M, ch.b = NULL;
    return ch;
}

/* yc[b,h,:] = k[h,:] * uc[b,h,:] (+ d[h] uc when d) for every row, by FFT. */
static void conv_cols(const mmi_exec *c, int64_t H, const float *k, const float *uc, const float *d,
                      float *yc, const sbuf *s, int acc)
{
    int64_t T = c->seq, nf = nfft(T);
    for (int64_t h = 0; h < H; h++) {
        mmi_ssm_rfft(nf, k + h * T, T, s->tw, nf, s->kf);
        for (int64_t b = 0; b < c->batch; b++) {
            const float *u = uc + (b * H + h) * T;
            float *o = yc + (b * H + h) * T, *tmp = (float *)s->acc;
            mmi_ssm_conv_row(T, nf, s->tw, nf, s->kf, u, tmp, s->buf);
            for (int64_t t = 0; t < T; t++)
                o[t] = (acc ? o[t] : 0.0f) + tmp[t] + (d ? d[h] * u[t] : 0.0f);
        }
    }
}

/* out = z1 sigmoid(z2) for z rows [z1 | z2] of width 2H. */
static void glu(const float *z, int64_t rows, int64_t H, float *out)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t h = 0; h < H; h++)
            out[r * H + h] = z[r * 2 * H + h] * mmi_sigmoid_f(z[r * 2 * H + H + h]);
}

static int s4d_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                       float *y, void *saved, void *scratch)
{
    int64_t H = l->in_dim, T = c->seq, rows = c->rows;
    par q = par_of(l, p);
    fbuf f;
    sbuf s;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_fft_twiddles(nfft(T), s.tw);
    for (int64_t h = 0; h < H; h++) {
        mmi_s4d_ch ch = channel(l, &q, h);
        mmi_s4d_kernel_row(&ch, T, f.k + h * T, s.modes);
    }
    mmi_rows_to_cols(x, H, c->batch, T, H, s.uc);
    conv_cols(c, H, f.k, s.uc, q.D, s.yc, &s, 0);
    mmi_cols_to_rows(s.yc, c->batch, T, H, f.y, H, 0);
    mmi_act_forward(MM_ACT_GELU, f.y, f.a, rows * H);
    mmi_gemm(0, 1, rows, 2 * H, H, 1.0f, f.a, H, q.W, H, 0.0f, f.z, 2 * H, c->gemm_ws, c->pool);
    mmi_add_rows(f.z, q.b, rows, 2 * H);
    glu(f.z, rows, H, y);
    return MM_OK;
}

static void s4d_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         const float *y, const void *saved, const float *dy, float *dx, float *g,
                         void *scratch)
{
    int64_t H = l->in_dim, T = c->seq, rows = c->rows, M = MODES(l), nf = nfft(T);
    par q = par_of(l, p), G = par_of(l, g ? g : p);
    fbuf f;
    sbuf s;
    (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_fft_twiddles(nf, s.tw);
    for (int64_t r = 0; r < rows; r++) /* GLU */
        for (int64_t h = 0; h < H; h++) {
            float z1 = f.z[r * 2 * H + h], sg = mmi_sigmoid_f(f.z[r * 2 * H + H + h]);
            float gy = dy[r * H + h];
            s.dz[r * 2 * H + h] = gy * sg;
            s.dz[r * 2 * H + H + h] = gy * z1 * sg * (1.0f - sg);
        }
    if (g) {
        mmi_gemm(1, 0, 2 * H, H, rows, 1.0f, s.dz, 2 * H, f.a, H, 1.0f, (float *)G.W, H, c->gemm_ws,
                 c->pool);
        memset(s.dacc, 0, (size_t)(2 * H) * sizeof(double));
        mmi_colsum_f64(s.dz, rows, 2 * H, s.dacc);
        for (int64_t j = 0; j < 2 * H; j++) ((float *)G.b)[j] += (float)s.dacc[j];
    }
    mmi_gemm(0, 0, rows, H, 2 * H, 1.0f, s.dz, 2 * H, q.W, H, 0.0f, s.da, H, c->gemm_ws, c->pool);
    mmi_act_backward(MM_ACT_GELU, f.y, f.a, s.da, s.da, rows * H);
    mmi_rows_to_cols(s.da, H, c->batch, T, H, s.dyc);
    mmi_rows_to_cols(x, H, c->batch, T, H, s.uc);
    for (int64_t h = 0; h < H; h++) {
        double sdd = 0.0;
        mmi_ssm_rfft(nf, f.k + h * T, T, s.tw, nf, s.kf);
        memset(s.acc, 0, (size_t)(2 * nf) * sizeof(double));
        for (int64_t b = 0; b < c->batch; b++) {
            const float *gy = s.dyc + (b * H + h) * T, *u = s.uc + (b * H + h) * T;
            mmi_ssm_rfft(nf, gy, T, s.tw, nf, s.buf);
            mmi_ssm_xcorr(nf, s.tw, nf, s.buf, s.kf, s.x2);
            for (int64_t t = 0; t < T; t++) {
                s.duc[(b * H + h) * T + t] = (float)s.x2[t] + q.D[h] * gy[t];
                sdd += (double)gy[t] * u[t];
            }
            mmi_ssm_rfft(nf, u, T, s.tw, nf, s.tmp);
            for (int64_t i = 0; i <= nf / 2; i++) { /* sum_b G conj(U) */
                double ar = s.buf[2 * i], ai = s.buf[2 * i + 1], br = s.tmp[2 * i],
                       bi = -s.tmp[2 * i + 1];
                s.acc[2 * i] += ar * br - ai * bi;
                s.acc[2 * i + 1] += ar * bi + ai * br;
            }
        }
        if (!g) continue;
        mmi_ssm_irfft(nf, s.acc, s.tw, nf);
        for (int64_t t = 0; t < T; t++) s.dk[t] = (float)s.acc[t];
        {
            mmi_s4d_ch ch = channel(l, &q, h);
            float *glar = s.kg, *gaim = glar + M, *gc = gaim + M;
            double gdt = mmi_s4d_kernel_row_bwd(&ch, T, s.dk, glar, gaim, gc, NULL);
            ((float *)G.log_dt)[h] += (float)gdt;
            ((float *)G.D)[h] += (float)sdd;
            for (int64_t n = 0; n < M; n++) {
                ((float *)G.lar)[h * M + n] += glar[n];
                ((float *)G.aim)[h * M + n] += gaim[n];
                ((float *)G.C)[2 * (h * M + n)] += gc[2 * n];
                ((float *)G.C)[2 * (h * M + n) + 1] += gc[2 * n + 1];
            }
        }
    }
    if (dx) mmi_cols_to_rows(s.duc, c->batch, T, H, dx, H, 0);
}

static void s4d_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *vp,
                    const float *x, const float *tx, const float *y, const void *saved, float *ty,
                    void *scratch)
{
    int64_t H = l->in_dim, T = c->seq, rows = c->rows, M = MODES(l);
    par q = par_of(l, p), v = par_of(l, vp);
    fbuf f;
    sbuf s;
    (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_fft_twiddles(nfft(T), s.tw);
    for (int64_t h = 0; h < H; h++) {
        mmi_s4d_ch ch = channel(l, &q, h);
        mmi_s4d_kernel_row_jvp(&ch, T, v.log_dt[h], v.lar + h * M, v.aim + h * M, v.C + 2 * h * M,
                               s.tk + h * T, s.modes);
    }
    mmi_rows_to_cols(x, H, c->batch, T, H, s.uc);
    conv_cols(c, H, s.tk, s.uc, v.D, s.yc, &s, 0);
    if (tx) {
        mmi_rows_to_cols(tx, H, c->batch, T, H, s.tuc);
        conv_cols(c, H, f.k, s.tuc, q.D, s.yc, &s, 1);
    }
    mmi_cols_to_rows(s.yc, c->batch, T, H, s.ta, H, 0);
    mmi_act_backward(MM_ACT_GELU, f.y, f.a, s.ta, s.ta, rows * H);
    mmi_gemm(0, 1, rows, 2 * H, H, 1.0f, s.ta, H, q.W, H, 0.0f, s.tz, 2 * H, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, 2 * H, H, 1.0f, f.a, H, v.W, H, 1.0f, s.tz, 2 * H, c->gemm_ws, c->pool);
    mmi_add_rows(s.tz, v.b, rows, 2 * H);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t h = 0; h < H; h++) {
            float z1 = f.z[r * 2 * H + h], sg = mmi_sigmoid_f(f.z[r * 2 * H + H + h]);
            ty[r * H + h] =
                s.tz[r * 2 * H + h] * sg + z1 * sg * (1.0f - sg) * s.tz[r * 2 * H + H + h];
        }
}

/* ---- decoding ------------------------------------------------------------------------------ */
size_t mmi_s4d_state_bytes(const mmi_layer *l)
{
    return (size_t)(l->in_dim * NS(l)) * sizeof(float);
}

int mmi_s4d_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                 void *state, void *scratch)
{
    int64_t H = l->in_dim, M = MODES(l), B = c->batch;
    par q = par_of(l, p);
    mmi_exec one = *c;
    fbuf f;
    sbuf s;
    MMI_ASSERT(B >= 1 && c->seq == 1 && x && y && state && scratch); /* checked by decode */
    one.seq = 1, one.rows = B;
    buffers(l, &one, NULL, scratch, &f, &s);
    for (int64_t h = 0; h < H; h++) {
        mmi_s4d_ch ch = channel(l, &q, h);
        mmi_s4d_zoh(&ch, s.zo + 4 * h * M, s.zo + 4 * h * M + 2 * M);
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            float u = x[b * H + h];
            const double *da = s.zo + 4 * h * M;
            float *st = (float *)state + (b * H + h) * 2 * M;
            f.y[b * H + h] = (float)mmi_s4d_step_modes(M, da, da + 2 * M, q.C + 2 * h * M, u,
                                                       (double)q.D[h] * u, st);
        }
    mmi_act_forward(MM_ACT_GELU, f.y, f.a, B * H);
    mmi_gemm(0, 1, B, 2 * H, H, 1.0f, f.a, H, q.W, H, 0.0f, f.z, 2 * H, c->gemm_ws, c->pool);
    mmi_add_rows(f.z, q.b, B, 2 * H);
    glu(f.z, B, H, y);
    return MM_OK;
}

const mmi_layer_vt mmi_layer_s4d_vt = {
    "s4d", MMI_LAYER_S4D, s4d_setup, s4d_sizes, s4d_init, s4d_forward, s4d_backward, s4d_jvp,
};

MM_API int mm_model_add_s4d(mm_model *m, int64_t d_state)
{
    int64_t ic[1] = {d_state};
    return mmi_model_add_layer(m, "s4d", ic, 1, NULL, 0, "mm_model_add_s4d");
}
