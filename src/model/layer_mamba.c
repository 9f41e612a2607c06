/* SPDX-License-Identifier: MIT */
/* layer_mamba.c — the Mamba block (mamba_ssm Mamba, docs/SSM.md §Model blocks) as an mm_model layer:
 * in_proj -> causal depthwise conv1d (d_conv taps, bias) -> SiLU -> x_proj -> dt_proj ->
 * selective scan (delta softplus with dt_proj.bias, D skip, silu(z) gate) -> out_proj, on
 * inputs [B, T, d_model]. Tensors and their order follow PyTorch's state_dict of Mamba (the
 * module's own parameters first): A_log, D, in_proj.weight, conv1d.weight [E,1,W],
 * conv1d.bias, x_proj.weight, dt_proj.weight, dt_proj.bias, out_proj.weight. The scan runs
 * the mm_ssm kernels on rows laid out [B, E, T]; backward recomputes the scan inside chunks from saved chunk states; JVP carries
 * the tangent recurrence alongside the primal one. Decoding keeps the last d_conv - 1 conv
 * inputs and the scan state per batch row (mmi_mamba_step). */
#include "../kernels/elementwise/mmi_elementwise.h"
#include "../kernels/gemm/mmi_gemm.h"
#include "../kernels/ssm/mmi_ssm_kernels.h"
#include "mmi_model_ssm.h"

#include <math.h>
#include <string.h>

/* Letters: B batch, T sequence, H d_model (in_dim), E d_inner (expand x H), N d_state,
 * W d_conv, R dt_rank, X = R + 2N (x_proj width: delta, B, C); rows = B x T. */
#define NS(l)       ((l)->icfg[0])
#define WC(l)       ((l)->icfg[1])
#define EXPAND(l)   ((l)->icfg[2])
#define RK(l)       ((l)->icfg[3] ? (l)->icfg[3] : ((l)->in_dim + 15) / 16)
#define DT_MIN(l)   ((l)->dcfg[0])
#define DT_MAX(l)   ((l)->dcfg[1])
#define DT_FLOOR(l) ((l)->dcfg[2])
#define EI(l)       (EXPAND(l) * (l)->in_dim)
#define XW(l)       (RK(l) + 2 * NS(l))
#define TCHUNK      64
#define MAX_SIZE    ((int64_t)1 << 24)

/* ---- parameters ---------------------------------------------------------------------------- */
typedef struct par {
    const float *in, *cw, *cb, *xp, *dtw, *dtb, *alog, *D, *out;
} par;

static par par_of(const mmi_layer *l, const float *p)
{
    int64_t H = l->in_dim, E = EI(l), N = NS(l), W = WC(l), R = RK(l);
    par q;
    /* PyTorch's state_dict order: the module's own parameters (A_log, D), then its children */
    q.alog = p, q.D = q.alog + E * N, q.in = q.D + E, q.cw = q.in + 2 * E * H, q.cb = q.cw + E * W;
    q.xp = q.cb + E, q.dtw = q.xp + XW(l) * E, q.dtb = q.dtw + E * R, q.out = q.dtb + E;
    return q;
}

static int mamba_setup(mmi_layer *l, mmi_err *e, const char *fn)
{
    int64_t H = l->in_dim, N = NS(l), W = WC(l), X = EXPAND(l), E, R, off = 0;
    if (l->n_icfg != 4 || l->n_dcfg != 3)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: mamba config needs 4 integers and 3 doubles", fn);
    if (N < 1 || N > 256 || W < 1 || W > 64 || X < 1 || X > 64 || l->icfg[3] < 0 ||
        l->icfg[3] > MAX_SIZE || H > MAX_SIZE / X)
        return mmi_fail(e, MM_E_RANGE,
                        "%s: mamba sizes out of range (d_state 1..256, d_conv "
                        "1..64, expand 1..64, dt_rank >= 0 (0: ceil(d_model/16)))",
                        fn);
    if (!(DT_MIN(l) > 0 && DT_MIN(l) <= DT_MAX(l) && DT_FLOOR(l) >= 0 && isfinite(DT_MAX(l))))
        return mmi_fail(e, MM_E_RANGE, "%s: need 0 < dt_min <= dt_max and dt_init_floor >= 0", fn);
    E = X * H, R = RK(l);
    memset(l->tensors, 0, sizeof l->tensors);
    mmi_layer_set_tensor(l, 0, "A_log", 2, E, N, 0, off), off += E * N;
    mmi_layer_set_tensor(l, 1, "D", 1, E, 0, 0, off), off += E;
    mmi_layer_set_tensor(l, 2, "in_proj.weight", 2, 2 * E, H, 0, off), off += 2 * E * H;
    mmi_layer_set_tensor(l, 3, "conv1d.weight", 3, E, 1, W, off), off += E * W;
    mmi_layer_set_tensor(l, 4, "conv1d.bias", 1, E, 0, 0, off), off += E;
    mmi_layer_set_tensor(l, 5, "x_proj.weight", 2, R + 2 * N, E, 0, off), off += (R + 2 * N) * E;
    mmi_layer_set_tensor(l, 6, "dt_proj.weight", 2, E, R, 0, off), off += E * R;
    mmi_layer_set_tensor(l, 7, "dt_proj.bias", 1, E, 0, 0, off), off += E;
    mmi_layer_set_tensor(l, 8, "out_proj.weight", 2, H, E, 0, off), off += H * E;
    l->n_tensors = 9;
    l->n_params = off;
    l->out_dim = H;
    l->init_work = 0;
    return MM_OK;
}

static void uniform(float *p, int64_t n, double bound, mmi_rng *rng)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)(bound * (2.0 * mmi_rng_uniform(rng) - 1.0));
}

/* mamba_simple.Mamba.__init__: default Linear/Conv1d inits, dt_proj U(+-R^-1/2), dt bias the
 * inverse softplus of dt = exp(U(ln dt_min, ln dt_max)) clamped to the floor, A_log = ln[1..N]
 * (S4D-Real), D = 1. */
static void mamba_init(const mmi_layer *l, float *p, mmi_rng *rng, double *work)
{
    int64_t H = l->in_dim, E = EI(l), N = NS(l), W = WC(l), R = RK(l);
    par q = par_of(l, p);
    (void)work;
    uniform((float *)q.in, 2 * E * H, 1.0 / sqrt((double)H), rng);
    uniform((float *)q.cw, E * W, 1.0 / sqrt((double)W), rng);
    uniform((float *)q.cb, E, 1.0 / sqrt((double)W), rng);
    uniform((float *)q.xp, XW(l) * E, 1.0 / sqrt((double)E), rng);
    uniform((float *)q.dtw, E * R, 1.0 / sqrt((double)R), rng);
    for (int64_t e = 0; e < E; e++) {
        double lo = log(DT_MIN(l)), hi = log(DT_MAX(l));
        double dt = exp(mmi_rng_uniform(rng) * (hi - lo) + lo);
        if (dt < DT_FLOOR(l)) dt = DT_FLOOR(l);
        ((float *)q.dtb)[e] = (float)(dt + log(-expm1(-dt)));
        for (int64_t n = 0; n < N; n++) ((float *)q.alog)[e * N + n] = (float)log((double)(n + 1));
        ((float *)q.D)[e] = 1.0f;
    }
    uniform((float *)q.out, H * E, 1.0 / sqrt((double)E), rng);
}

/* ---- buffers ------------------------------------------------------------------------------- */
typedef struct fbuf {
    float *xz, *xc, *xa, *xdbl, *dl, *ys, *ckpt;
} fbuf;
typedef struct sbuf {
    float *aneg, *ut, *dt, *zt, *yt, *bc, *cc, *x, *chunk, *dlt, *dsp, *gz, *sz;
    float *dy, *du, *ddl, *dz, *dxdbl, *dxa, *dxz, *dll;
    float *tut, *tdt, *tzt, *tbc, *tcc, *tx;
    double *db, *dc, *da, *dd, *dbias, *cacc;
} sbuf;

static void layout_fwd(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, fbuf *f)
{
    /* counts through mmi_sz_mul: an overflow saturates the walk and finalize refuses it */
    int64_t rows = mmi_sz_mul(b, t), E = EI(l), nck = t / TCHUNK + (t % TCHUNK != 0);
    f->xz = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(rows, 2), E), 4);
    f->xc = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    f->xa = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    f->xdbl = mmi_carve_take(y, mmi_sz_mul(rows, XW(l)), 4);
    f->dl = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    f->ys = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    f->ckpt = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(mmi_sz_mul(b, E), nck), NS(l)), 4);
}

static void layout_scr(const mmi_layer *l, int64_t b, int64_t t, mmi_carve *y, sbuf *s)
{
    int64_t rows = mmi_sz_mul(b, t), E = EI(l), N = NS(l), cols = mmi_sz_mul(rows, E),
            bn = mmi_sz_mul(rows, N);
    s->aneg = mmi_carve_take(y, mmi_sz_mul(E, N), 4);
    s->ut = mmi_carve_take(y, cols, 4), s->dt = mmi_carve_take(y, cols, 4),
    s->zt = mmi_carve_take(y, cols, 4);
    s->yt = mmi_carve_take(y, cols, 4);
    s->bc = mmi_carve_take(y, bn, 4), s->cc = mmi_carve_take(y, bn, 4);
    s->x = mmi_carve_take(y, N, 4), s->chunk = mmi_carve_take(y, 2 * TCHUNK * N, 4);
    s->dlt = mmi_carve_take(y, t, 4), s->dsp = mmi_carve_take(y, t, 4),
    s->gz = mmi_carve_take(y, t, 4), s->sz = mmi_carve_take(y, t, 4);
    s->dy = mmi_carve_take(y, mmi_sz_mul(rows, E), 4), s->du = mmi_carve_take(y, cols, 4),
    s->ddl = mmi_carve_take(y, cols, 4);
    s->dz = mmi_carve_take(y, cols, 4);
    s->dxdbl = mmi_carve_take(y, mmi_sz_mul(rows, XW(l)), 4),
    s->dxa = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    s->dxz = mmi_carve_take(y, mmi_sz_mul(mmi_sz_mul(rows, 2), E), 4);
    s->dll = mmi_carve_take(y, mmi_sz_mul(rows, E), 4);
    s->tut = mmi_carve_take(y, cols, 4), s->tdt = mmi_carve_take(y, cols, 4),
    s->tzt = mmi_carve_take(y, cols, 4);
    s->tbc = mmi_carve_take(y, bn, 4), s->tcc = mmi_carve_take(y, bn, 4),
    s->tx = mmi_carve_take(y, N, 4);
    s->db = mmi_carve_take(y, bn, 8), s->dc = mmi_carve_take(y, bn, 8),
    s->da = mmi_carve_take(y, mmi_sz_mul(E, N), 8);
    s->dd = mmi_carve_take(y, E, 8), s->dbias = mmi_carve_take(y, E, 8),
    s->cacc = mmi_carve_take(y, mmi_sz_mul(E, WC(l) + 1), 8);
}

static void mamba_sizes(const mmi_layer *l, int64_t batch, int64_t seq, size_t *saved,
                        size_t *scratch, int *gemm_ws)
{
    mmi_carve y = mmi_carve_measure();
    fbuf f;
    sbuf s;
    layout_fwd(l, batch, seq, &y, &f);
    *saved = y.off;
    layout_scr(l, batch, seq, &y, &s); /* scratch = a forward region (for infer) + the rest */
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

/* B and C of every step, contiguous [B*T, N], from x_dbl rows [R | B | C]. */
static void split_bc(const mmi_layer *l, const float *xdbl, int64_t rows, float *bc, float *cc)
{
    int64_t N = NS(l), R = RK(l), X = XW(l);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(bc + r * N, xdbl + r * X + R, (size_t)N * sizeof(float));
        memcpy(cc + r * N, xdbl + r * X + R + N, (size_t)N * sizeof(float));
    }
}

/* Causal depthwise conv: out[b,t,e] (+)= bias[e] + sum_k w[e,k] in[b, t-(W-1)+k, e] (in at
 * stride ld, zero before t = 0). bias may be NULL; acc adds to out. */
static void conv_fwd(int64_t B, int64_t T, int64_t E, int64_t W, const float *in, int64_t ld,
                     const float *w, const float *bias, float *out, int acc)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t e = 0; e < E; e++) {
                float v = bias ? bias[e] : 0.0f;
                for (int64_t k = 0; k < W; k++) {
                    int64_t s = t - (W - 1) + k;
                    if (s >= 0) v += w[e * W + k] * in[(b * T + s) * ld + e];
                }
                out[(b * T + t) * E + e] = acc ? out[(b * T + t) * E + e] + v : v;
            }
}

/* Gradients of conv_fwd: din (stride ld, overwritten), and dw, dbias sums (float64 in cacc:
 * E*W then E). */
static void conv_bwd(int64_t B, int64_t T, int64_t E, int64_t W, const float *in, int64_t ld,
                     const float *w, const float *dout, float *din, double *cacc)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < T; s++)
            for (int64_t e = 0; e < E; e++) {
                float v = 0.0f;
                for (int64_t k = 0; k < W; k++) {
                    int64_t t = s + (W - 1) - k;
                    if (t < T) v += dout[(b * T + t) * E + e] * w[e * W + k];
                }
                din[(b * T + s) * ld + e] = v;
            }
    if (!cacc) return;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t e = 0; e < E; e++) {
                double g = dout[(b * T + t) * E + e];
                cacc[E * W + e] += g;
                for (int64_t k = 0; k < W; k++) {
                    int64_t s = t - (W - 1) + k;
                    if (s >= 0) cacc[e * W + k] += g * in[(b * T + s) * ld + e];
                }
            }
}

/* The scan's per-call inputs in [B, E, T] columns (A = -exp(A_log), u, raw delta, z, B, C). */
static void scan_inputs(const mmi_layer *l, const mmi_exec *c, const par *q, const fbuf *f,
                        const sbuf *s)
{
    int64_t E = EI(l), B = c->batch, T = c->seq;
    for (int64_t i = 0; i < E * NS(l); i++) s->aneg[i] = -expf(q->alog[i]);
    mmi_rows_to_cols(f->xa, E, B, T, E, s->ut);
    mmi_rows_to_cols(f->dl, E, B, T, E, s->dt);
    mmi_rows_to_cols(f->xz + E, 2 * E, B, T, E, s->zt);
    split_bc(l, f->xdbl, c->rows, s->bc, s->cc);
}

static void scan_row(const mmi_layer *l, const mmi_exec *c, const par *q, const fbuf *f,
                     const sbuf *s, int64_t b, int64_t e, int bwd, mmi_sel_row *r)
{
    int64_t E = EI(l), N = NS(l), T = c->seq, o = (b * E + e) * T;
    memset(r, 0, sizeof *r);
    mmi_ssm_sel_prep(T, s->dt + o, q->dtb[e], 1, s->zt + o, s->dlt, bwd ? s->dsp : NULL,
                     bwd ? NULL : s->gz, bwd ? s->sz : NULL);
    r->L = T, r->N = N, r->chunk = TCHUNK;
    r->u = s->ut + o, r->dlt = s->dlt, r->dsp = s->dsp, r->z = s->zt + o;
    r->gz = bwd ? NULL : s->gz, r->sz = bwd ? s->sz : NULL;
    r->A = s->aneg + e * N;
    r->B = s->bc + b * T * N, r->C = s->cc + b * T * N, r->b_var = r->c_var = 1;
    r->has_d = 1, r->dskip = q->D[e];
    r->out = s->yt + o, r->x = s->x;
    r->ckpt = f->ckpt + (b * E + e) * ((T + TCHUNK - 1) / TCHUNK) * N;
}

/* ---- forward ------------------------------------------------------------------------------- */
static int mamba_forward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                         float *y, void *saved, void *scratch)
{
    int64_t H = l->in_dim, E = EI(l), R = RK(l), X = XW(l), rows = c->rows;
    par q = par_of(l, p);
    fbuf f;
    sbuf s;
    mmi_sel_row r;
    buffers(l, c, saved, scratch, &f, &s);
    mmi_gemm(0, 1, rows, 2 * E, H, 1.0f, x, H, q.in, H, 0.0f, f.xz, 2 * E, c->gemm_ws, c->pool);
    conv_fwd(c->batch, c->seq, E, WC(l), f.xz, 2 * E, q.cw, q.cb, f.xc, 0);
    mmi_act_forward(MM_ACT_SILU, f.xc, f.xa, rows * E);
    mmi_gemm(0, 1, rows, X, E, 1.0f, f.xa, E, q.xp, E, 0.0f, f.xdbl, X, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, E, R, 1.0f, f.xdbl, X, q.dtw, R, 0.0f, f.dl, E, c->gemm_ws, c->pool);
    scan_inputs(l, c, &q, &f, &s);
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t e = 0; e < E; e++) {
            scan_row(l, c, &q, &f, &s, b, e, 0, &r);
            mmi_ssm_sel_fwd(&r);
        }
    mmi_cols_to_rows(s.yt, c->batch, c->seq, E, f.ys, E, 0);
    mmi_gemm(0, 1, rows, H, E, 1.0f, f.ys, E, q.out, E, 0.0f, y, H, c->gemm_ws, c->pool);
    return MM_OK;
}

/* ---- backward ------------------------------------------------------------------------------ */
/* Reverse scan over every (batch, channel) row: du, d(raw delta), dz in columns; dA, dD, dbias
 * and the time-major dB/dC in float64. */
static void scan_backward(const mmi_layer *l, const mmi_exec *c, const par *q, const fbuf *f,
                          const sbuf *s)
{
    int64_t E = EI(l), N = NS(l), T = c->seq;
    mmi_sel_row r;
    mmi_sel_grad gr;
    memset(s->db, 0, (size_t)(c->rows * N) * sizeof(double));
    memset(s->dc, 0, (size_t)(c->rows * N) * sizeof(double));
    memset(s->da, 0, (size_t)(E * N) * sizeof(double));
    memset(s->dd, 0, (size_t)E * sizeof(double));
    memset(s->dbias, 0, (size_t)E * sizeof(double));
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t e = 0; e < E; e++) {
            int64_t o = (b * E + e) * T;
            scan_row(l, c, q, f, s, b, e, 1, &r);
            memset(&gr, 0, sizeof gr);
            gr.dout = s->yt + o, gr.du = s->du + o, gr.ddelta = s->ddl + o, gr.dz = s->dz + o;
            gr.dA = s->da + e * N, gr.dD = s->dd + e, gr.dbias = s->dbias + e;
            gr.dB = s->db + b * T * N, gr.dC = s->dc + b * T * N, gr.work = s->chunk;
            mmi_ssm_sel_bwd(&r, &gr);
        }
}

static void mamba_backward(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x,
                           const float *y, const void *saved, const float *dy, float *dx, float *g,
                           void *scratch)
{
    int64_t H = l->in_dim, E = EI(l), N = NS(l), R = RK(l), X = XW(l), W = WC(l);
    int64_t rows = c->rows;
    par q = par_of(l, p), G = par_of(l, g ? g : p);
    fbuf f;
    sbuf s;
    (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    /* out_proj: dY = dy W_out; dW_out += dy^T Y */
    mmi_gemm(0, 0, rows, E, H, 1.0f, dy, H, q.out, E, 0.0f, s.dy, E, c->gemm_ws, c->pool);
    if (g)
        mmi_gemm(1, 0, H, E, rows, 1.0f, dy, H, f.ys, E, 1.0f, (float *)G.out, E, c->gemm_ws,
                 c->pool);
    scan_inputs(l, c, &q, &f, &s);
    mmi_rows_to_cols(s.dy, E, c->batch, c->seq, E, s.yt); /* yt now holds dY in columns */
    scan_backward(l, c, &q, &f, &s);
    if (g)
        for (int64_t e = 0; e < E; e++) {
            ((float *)G.D)[e] += (float)s.dd[e];
            ((float *)G.dtb)[e] += (float)s.dbias[e];
            for (int64_t n = 0; n < N; n++) /* A = -exp(A_log): dA_log = dA * A */
                ((float *)G.alog)[e * N + n] += (float)(s.da[e * N + n] * s.aneg[e * N + n]);
        }
    /* dt_proj: d(raw delta) -> dW_dt, d dt_low */
    mmi_cols_to_rows(s.ddl, c->batch, c->seq, E, s.dll, E, 0);
    if (g)
        mmi_gemm(1, 0, E, R, rows, 1.0f, s.dll, E, f.xdbl, X, 1.0f, (float *)G.dtw, R, c->gemm_ws,
                 c->pool);
    mmi_gemm(0, 0, rows, R, E, 1.0f, s.dll, E, q.dtw, R, 0.0f, s.dxdbl, X, c->gemm_ws, c->pool);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t n = 0; n < N; n++) {
            s.dxdbl[i * X + R + n] = (float)s.db[i * N + n];
            s.dxdbl[i * X + R + N + n] = (float)s.dc[i * N + n];
        }
    /* x_proj, then the scan's direct du, then SiLU and the conv */
    if (g)
        mmi_gemm(1, 0, X, E, rows, 1.0f, s.dxdbl, X, f.xa, E, 1.0f, (float *)G.xp, E, c->gemm_ws,
                 c->pool);
    mmi_gemm(0, 0, rows, E, X, 1.0f, s.dxdbl, X, q.xp, E, 0.0f, s.dxa, E, c->gemm_ws, c->pool);
    mmi_cols_to_rows(s.du, c->batch, c->seq, E, s.dxa, E, 1);
    mmi_act_backward(MM_ACT_SILU, f.xc, f.xa, s.dxa, s.dxa, rows * E);
    if (g) memset(s.cacc, 0, (size_t)(E * (W + 1)) * sizeof(double));
    conv_bwd(c->batch, c->seq, E, W, f.xz, 2 * E, q.cw, s.dxa, s.dxz, g ? s.cacc : NULL);
    if (g)
        for (int64_t i = 0; i < E * W + E; i++) ((float *)G.cw)[i] += (float)s.cacc[i];
    mmi_cols_to_rows(s.dz, c->batch, c->seq, E, s.dxz + E, 2 * E, 0);
    /* in_proj */
    if (g)
        mmi_gemm(1, 0, 2 * E, H, rows, 1.0f, s.dxz, 2 * E, x, H, 1.0f, (float *)G.in, H, c->gemm_ws,
                 c->pool);
    if (dx)
        mmi_gemm(0, 0, rows, H, 2 * E, 1.0f, s.dxz, 2 * E, q.in, H, 0.0f, dx, H, c->gemm_ws,
                 c->pool);
}

/* ---- forward mode -------------------------------------------------------------------------- */
/* Tangent of the scan on one row: the primal recurrence is rerun alongside (x, tx). */
static void scan_tangent_row(const mmi_layer *l, const mmi_exec *c, const par *q, const par *v,
                             const sbuf *s, int64_t b, int64_t e, float *ty)
{
    int64_t E = EI(l), N = NS(l), T = c->seq, o = (b * E + e) * T;
    float *x = s->x, *tx = s->tx;
    memset(x, 0, (size_t)N * sizeof *x);
    memset(tx, 0, (size_t)N * sizeof *tx);
    for (int64_t t = 0; t < T; t++) {
        const float *bb = s->bc + (b * T + t) * N, *cc = s->cc + (b * T + t) * N;
        const float *tb = s->tbc + (b * T + t) * N, *tc = s->tcc + (b * T + t) * N;
        float raw = s->dt[o + t] + q->dtb[e], d = mmi_softplus_f(raw);
        float sp = raw > 20.0f ? 1.0f : mmi_sigmoid_f(raw), td = sp * (s->tdt[o + t] + v->dtb[e]);
        float u = s->ut[o + t], tu = s->tut[o + t], z = s->zt[o + t], tz = s->tzt[o + t];
        float yv = 0.0f, tyv = 0.0f, sg, gt, dg, ov, tov;
        for (int64_t n = 0; n < N; n++) {
            float A = s->aneg[e * N + n], tA = A * v->alog[e * N + n];
            float a = expf(d * A), ta = a * (td * A + d * tA);
            float xn = a * x[n] + d * bb[n] * u;
            tx[n] = a * tx[n] + ta * x[n] + td * bb[n] * u + d * tb[n] * u + d * bb[n] * tu;
            x[n] = xn;
            yv += xn * cc[n];
            tyv += tx[n] * cc[n] + xn * tc[n];
        }
        ov = yv + q->D[e] * u;
        tov = tyv + v->D[e] * u + q->D[e] * tu;
        sg = mmi_sigmoid_f(z), gt = z * sg, dg = sg * (1.0f + z * (1.0f - sg));
        ty[o + t] = tov * gt + ov * dg * tz;
    }
}

static void mamba_jvp(const mmi_layer *l, const mmi_exec *c, const float *p, const float *vp,
                      const float *x, const float *tx, const float *y, const void *saved, float *ty,
                      void *scratch)
{
    int64_t H = l->in_dim, E = EI(l), R = RK(l), X = XW(l), W = WC(l), rows = c->rows;
    par q = par_of(l, p), v = par_of(l, vp);
    fbuf f;
    sbuf s;
    float *txz, *txc, *txa, *txdbl, *tdl, *tys;
    (void)y;
    buffers(l, c, saved, scratch, &f, &s);
    txz = s.dxz, txc = s.dll, txa = s.dxa, txdbl = s.dxdbl, tdl = s.dy, tys = s.dll;
    /* in_proj */
    mmi_gemm(0, 1, rows, 2 * E, H, 1.0f, x, H, v.in, H, 0.0f, txz, 2 * E, c->gemm_ws, c->pool);
    if (tx)
        mmi_gemm(0, 1, rows, 2 * E, H, 1.0f, tx, H, q.in, H, 1.0f, txz, 2 * E, c->gemm_ws, c->pool);
    /* conv (tangent input through w, plus the weight and bias directions), SiLU */
    conv_fwd(c->batch, c->seq, E, W, txz, 2 * E, q.cw, v.cb, txc, 0);
    conv_fwd(c->batch, c->seq, E, W, f.xz, 2 * E, v.cw, NULL, txc, 1);
    mmi_act_backward(MM_ACT_SILU, f.xc, f.xa, txc, txa, rows * E);
    /* x_proj, dt_proj */
    mmi_gemm(0, 1, rows, X, E, 1.0f, txa, E, q.xp, E, 0.0f, txdbl, X, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, X, E, 1.0f, f.xa, E, v.xp, E, 1.0f, txdbl, X, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, E, R, 1.0f, txdbl, X, q.dtw, R, 0.0f, tdl, E, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, E, R, 1.0f, f.xdbl, X, v.dtw, R, 1.0f, tdl, E, c->gemm_ws, c->pool);
    /* scan */
    scan_inputs(l, c, &q, &f, &s);
    mmi_rows_to_cols(txa, E, c->batch, c->seq, E, s.tut);
    mmi_rows_to_cols(tdl, E, c->batch, c->seq, E, s.tdt);
    mmi_rows_to_cols(txz + E, 2 * E, c->batch, c->seq, E, s.tzt);
    split_bc(l, txdbl, rows, s.tbc, s.tcc);
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t e = 0; e < E; e++) scan_tangent_row(l, c, &q, &v, &s, b, e, s.yt);
    mmi_cols_to_rows(s.yt, c->batch, c->seq, E, tys, E, 0);
    /* out_proj */
    mmi_gemm(0, 1, rows, H, E, 1.0f, tys, E, q.out, E, 0.0f, ty, H, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, rows, H, E, 1.0f, f.ys, E, v.out, E, 1.0f, ty, H, c->gemm_ws, c->pool);
}

/* ---- decoding ------------------------------------------------------------------------------ */
size_t mmi_mamba_state_bytes(const mmi_layer *l)
{
    return (size_t)(EI(l) * (WC(l) - 1 + NS(l))) * sizeof(float);
}

int mmi_mamba_step(const mmi_layer *l, const mmi_exec *c, const float *p, const float *x, float *y,
                   void *state, void *scratch)
{
    int64_t H = l->in_dim, E = EI(l), N = NS(l), R = RK(l), X = XW(l), W = WC(l), B = c->batch;
    size_t row = mmi_mamba_state_bytes(l) / sizeof(float);
    par q = par_of(l, p);
    mmi_exec one = *c;
    fbuf f;
    sbuf s;
    MMI_ASSERT(B >= 1 && c->seq == 1 && x && y && state && scratch); /* checked by decode */
    one.seq = 1, one.rows = B;
    buffers(l, &one, NULL, scratch, &f, &s);
    mmi_gemm(0, 1, B, 2 * E, H, 1.0f, x, H, q.in, H, 0.0f, f.xz, 2 * E, c->gemm_ws, c->pool);
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = 0; e < E; e++) {
            float *cs = (float *)state + (size_t)b * row + e * (W - 1), xi = f.xz[b * 2 * E + e];
            float v = q.cb[e] + q.cw[e * W + W - 1] * xi;
            for (int64_t k = 0; k < W - 1; k++) v += q.cw[e * W + k] * cs[k];
            for (int64_t k = 0; k + 1 < W - 1; k++) cs[k] = cs[k + 1];
            if (W > 1) cs[W - 2] = xi;
            f.xc[b * E + e] = v;
        }
    mmi_act_forward(MM_ACT_SILU, f.xc, f.xa, B * E);
    mmi_gemm(0, 1, B, X, E, 1.0f, f.xa, E, q.xp, E, 0.0f, f.xdbl, X, c->gemm_ws, c->pool);
    mmi_gemm(0, 1, B, E, R, 1.0f, f.xdbl, X, q.dtw, R, 0.0f, f.dl, E, c->gemm_ws, c->pool);
    /* the scan step is the selective-scan kernel's, as mm_ssm_step runs it: element-wise
     * delta (softplus of dt_proj + bias) and silu(z) for all B x E channels, then one row
     * step per batch row (its channels share that row's B and C) */
    for (int64_t i = 0; i < E * N; i++) s.aneg[i] = -expf(q.alog[i]);
    for (int64_t b = 0; b < B; b++)
        for (int64_t e = 0; e < E; e++) {
            s.dt[b * E + e] = f.dl[b * E + e] + q.dtb[e];
            s.zt[b * E + e] = f.xz[b * 2 * E + E + e];
        }
    mmi_ssm_sel_prep(B * E, s.dt, 0.0f, 1, s.zt, s.ut, NULL, s.yt, NULL);
    for (int64_t b = 0; b < B; b++) {
        mmi_sel_step st;
        st.n = E, st.N = N, st.A = s.aneg;
        st.B = f.xdbl + b * X + R, st.C = st.B + N;
        st.dlt = s.ut + b * E, st.u = f.xa + b * E, st.gz = s.yt + b * E, st.dskip = q.D;
        st.x = (float *)state + (size_t)b * row + E * (W - 1), st.out = f.ys + b * E;
        mmi_ssm_sel_step_rows(&st);
    }
    mmi_gemm(0, 1, B, H, E, 1.0f, f.ys, E, q.out, E, 0.0f, y, H, c->gemm_ws, c->pool);
    return MM_OK;
}

const mmi_layer_vt mmi_layer_mamba_vt = {
    "mamba",    MMI_LAYER_MAMBA, mamba_setup,    mamba_sizes,
    mamba_init, mamba_forward,   mamba_backward, mamba_jvp,
};

MM_API int mm_model_add_mamba(mm_model *m, int64_t d_state, int64_t d_conv, int64_t expand,
                              int64_t dt_rank)
{
    int64_t ic[4] = {d_state, d_conv, expand, dt_rank};
    double dc[3] = {1e-3, 0.1, 1e-4};
    return mmi_model_add_layer(m, "mamba", ic, 4, dc, 3, "mm_model_add_mamba");
}
