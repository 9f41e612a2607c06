/* SPDX-License-Identifier: MIT */
/*
 * mmi_ssm_kernels.h — pure state-space kernels on raw float buffers (scans, SSD chunks, the
 * S4D Vandermonde and S4 Cauchy kernels, real FFT convolution). Same rules as every kernel family (gemm/mmi_gemm.h):
 * no handles, no allocation, no error text; the mm_ssm operator (src/ssm) validates shapes
 * and provides workspace. Sums that span a sequence are accumulated in float64.
 */
#ifndef MMI_SSM_KERNELS_H
#define MMI_SSM_KERNELS_H

#include "../../core/mmi.h"
#include "../simd/mmi_simd.h"

#include <math.h>

/* softplus with torch's threshold 20 (x returned unchanged above it) and its derivative. */
static inline float mmi_softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float mmi_sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---- Mamba-1 selective scan, one (batch, channel) row ------------------------------------- */
/* B and C are either constant (N values, stride 0 over time: *_var = 0) or per step, stored
 * time-major [L][N] (*_var = 1; the operator transposes mamba's [N, L] layout once). The
 * element-wise parts are precomputed per row by mmi_ssm_sel_prep (vectorised): dlt = delta
 * after bias and softplus, gz = silu(z), and for the backward dsp = d dlt / d delta and
 * sz = sigmoid(z). */
typedef struct mmi_sel_row {
    int64_t L, N, chunk;
    const float *u;           /* L */
    const float *dlt;         /* L */
    const float *gz, *sz, *z; /* L each, NULL without z (gz: forward, sz and z: backward) */
    const float *dsp;         /* L (backward) */
    const float *A;           /* N */
    const float *B, *C;       /* [N] or [L][N] */
    int32_t b_var, c_var;
    int32_t has_d, cont; /* cont = 1: start from the state in x instead of zero */
    float dskip;
    float *out;  /* L */
    float *x;    /* N: final state out */
    float *ckpt; /* ceil(L/chunk) x N: the state before each chunk (NULL: not kept) */
} mmi_sel_row;

/* Gradient outputs and scratch of one row's backward. */
typedef struct mmi_sel_grad {
    const float *dout;       /* L */
    float *du, *ddelta, *dz; /* L each, may be NULL */
    double *dA;              /* N, accumulated (+=) */
    double *dD, *dbias;      /* scalars, accumulated; may be NULL */
    double *dB, *dC;         /* accumulated: [N] when constant, [L][N] time-major when variable */
    float *work;             /* 2 * chunk * N floats */
} mmi_sel_grad;

/* Element-wise precomputation over n values: dlt = f(delta + bias) with f = softplus
 * (threshold 20) or identity; dsp (may be NULL) = f'; gz (may be NULL) = silu(z); sz (may be
 * NULL) = sigmoid(z). z may be NULL (then gz, sz are not written). */
void mmi_ssm_sel_prep(int64_t n, const float *delta, float bias, int softplus, const float *z,
                      float *dlt, float *dsp, float *gz, float *sz);
/* Forward: x starts at zero (or its content with cont); the portable and AVX2 paths agree to a
 * few ulp. */
void mmi_ssm_sel_fwd(const mmi_sel_row *r);
void mmi_ssm_sel_fwd_portable(const mmi_sel_row *r);
/* Forward of nr <= mmi_ssm_sel_block_rows() rows at once, vectorised across the rows
 * (channels) instead of N: r[0..nr) must share L, N, chunk, B, C and the flags (variable B and
 * C, has_d, cont, z, ckpt present), i.e. be channels of one batch row and B/C group. Returns 0
 * (nothing written) where no path has such a body or the shape is not taken (the AVX2 body: 8
 * rows, variable B and C, N % 8 == 0, N <= 64; the AVX-512 body: 16 rows, variable B and C,
 * N <= 64); the caller then runs mmi_ssm_sel_fwd row by row. Whether it returns 1 depends only
 * on the shape, so a call runs one kind of body for all its rows. */
int mmi_ssm_sel_fwd_block(const mmi_sel_row *r, int64_t nr);
/* The most rows mmi_ssm_sel_fwd_block takes on the process's path (8 or 16; 0: no body). */
int64_t mmi_ssm_sel_block_rows(void);
#define MMI_SEL_BLOCK_MAX 16 /* the largest value it returns */
/* Backward from the checkpoints the forward left in r->ckpt (reverse scan, recomputing each
 * chunk's states). */
void mmi_ssm_sel_bwd(const mmi_sel_row *r, const mmi_sel_grad *g);
void mmi_ssm_sel_bwd_portable(const mmi_sel_row *r, const mmi_sel_grad *g);
/* Backward of nr <= mmi_ssm_sel_block_rows() rows at once, vectorised across the rows like
 * mmi_ssm_sel_fwd_block (same conditions on r and the same shapes: N <= 64, on AVX2 N % 8 ==
 * 0). g[j] holds row j's outputs: du, ddelta, dz (present for every row or for none, as for
 * row 0), dA, dD, dbias; dB and dC are
 * g[0]'s (the rows share B and C, time-major [L][N]) and receive the sum over the block's rows;
 * g[0].work has MMI_SEL_BWD_BLOCK_WORK(chunk, N) floats. A row's own outputs have the same bits
 * whatever its block (its lane runs the same operations); dB and dC sum the rows of a block
 * in a fixed order (so the caller's grouping of rows must not depend on its thread count).
 * Returns 0 (nothing written) where no path has such a body or the shape is not taken; the
 * caller then runs mmi_ssm_sel_bwd row by row. Whether it returns 1 depends only on r[0]'s N,
 * b_var and c_var: nr = 0 (g may be NULL) only asks, so that every task of a split decides
 * alike. */
int mmi_ssm_sel_bwd_block(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr);
/* The larger of the two bodies' scratch. AVX-512: a 16-step tile's states and exponentials
 * (16 x N x 16 each), the chunk's state at every 16th step ((T / 16 + 1) x N x 16), 8
 * lane-major step buffers of T + 15 steps rounded up to 16 (whole 16-step groups of the rows,
 * from t0 rounded down). AVX2: the whole chunk's states and exponentials (T x N x 8 each) and 8
 * step buffers of T + 7 steps rounded up to 8. */
#define MMI_SEL_BWD_BLOCK_WORK16(T, N)                                                             \
    ((int64_t)16 * ((32 + ((T) + 15) / 16 + 1) * (N) + 8 * (((T) + 30) / 16 * 16)))
#define MMI_SEL_BWD_BLOCK_WORK8(T, N) ((int64_t)8 * (2 * (T) * (N) + 8 * (((T) + 14) / 8 * 8)))
#define MMI_SEL_BWD_BLOCK_WORK(T, N)                                                               \
    (MMI_SEL_BWD_BLOCK_WORK16(T, N) > MMI_SEL_BWD_BLOCK_WORK8(T, N)                                \
         ? MMI_SEL_BWD_BLOCK_WORK16(T, N)                                                          \
         : MMI_SEL_BWD_BLOCK_WORK8(T, N))
/* One decoding step of n rows sharing B and C (one batch row and group): x[i] = exp(dlt[i] A[i])
 * x[i] + dlt[i] u[i] B; out[i] = (C.x[i] + dskip[i] u[i]) gz[i] (dskip, gz may be NULL). A and
 * x are n x N. */
typedef struct mmi_sel_step {
    int64_t n, N;
    const float *A, *B, *C, *dlt, *u, *gz, *dskip;
    float *x, *out;
} mmi_sel_step;
void mmi_ssm_sel_step_rows(const mmi_sel_step *s);

/* ISA variants of the selective scan (one table per path; mmi_ssm_isa_get(), NULL: the
 * portable bodies). Each returns 1 when it handled the row, 0 to leave it to the portable body
 * (the AVX2 bodies take N % 8 == 0, N <= 256 only; the AVX-512 bodies any N <= 256, the last
 * vector masked). Both vectorise the state axis N (8 or 16 lanes) with time sequential. */
struct mmi_lru_steps; /* the LRU section below */
typedef struct mmi_ssm_isa {
    int (*sel_prep)(int64_t n, const float *delta, float bias, int softplus, const float *z,
                    float *dlt, float *dsp, float *gz, float *sz);
    int (*sel_fwd)(const mmi_sel_row *r);
    int (*sel_bwd)(const mmi_sel_row *r, const mmi_sel_grad *g);
    int (*sel_step_rows)(const mmi_sel_step *s);
    int (*sel_fwd_block)(const mmi_sel_row *r, int64_t nr); /* NULL: not written for this path */
    int32_t blk_rows; /* the most rows sel_fwd_block (and sel_bwd_block) take (their lanes) */
    int (*lru_step_rows)(const struct mmi_lru_steps *s); /* NULL: not written for this path */
    /* NULL: not written for this path */
    int (*sel_bwd_block)(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr);
} mmi_ssm_isa;

/* The AVX2+FMA table (selective_scan_avx2.c), NULL when the build did not compile it. */
const mmi_ssm_isa *mmi_ssm_isa_avx2(void);
/* The AVX-512 F/DQ/BW/VL table (selective_scan_avx512.c), NULL when the build did not compile
 * it; the dispatch then keeps the AVX2 table on the AVX-512 path. */
const mmi_ssm_isa *mmi_ssm_isa_avx512(void);
/* The table of path p: the best one written at or below p (p available), NULL on the
 * portable path (the family's plain C bodies run). */
static inline const mmi_ssm_isa *mmi_ssm_isa_for(mmi_simd_path p)
{
    if (p >= MMI_SIMD_AVX512 && mmi_ssm_isa_avx512()) return mmi_ssm_isa_avx512();
    return p >= MMI_SIMD_AVX2 ? mmi_ssm_isa_avx2() : NULL;
}
/* The table of the process's path (mmi_simd_path_get). */
static inline const mmi_ssm_isa *mmi_ssm_isa_get(void)
{
    return mmi_ssm_isa_for(mmi_simd_path_get());
}
/* The portable element-wise prep alone (the AVX2 body runs its tail through it). */
void mmi_ssm_sel_prep_portable(int64_t n, const float *delta, float bias, int softplus,
                               const float *z, float *dlt, float *dsp, float *gz, float *sz);
/* The AVX2+FMA bodies, present only when compiled: reach them through the table. */
int mmi_ssm_sel_prep_avx2(int64_t n, const float *delta, float bias, int softplus, const float *z,
                          float *dlt, float *dsp, float *gz, float *sz);
int mmi_ssm_sel_fwd_avx2(const mmi_sel_row *r);
int mmi_ssm_sel_bwd_avx2(const mmi_sel_row *r, const mmi_sel_grad *g);
int mmi_ssm_sel_step_rows_avx2(const mmi_sel_step *s);
int mmi_ssm_sel_fwd_block_avx2(const mmi_sel_row *r, int64_t nr);
int mmi_ssm_sel_bwd_block_avx2(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr);
int mmi_ssm_lru_step_rows_avx2(const struct mmi_lru_steps *s);
/* The AVX-512 bodies, present only when compiled: reach them through the table. */
int mmi_ssm_sel_prep_avx512(int64_t n, const float *delta, float bias, int softplus, const float *z,
                            float *dlt, float *dsp, float *gz, float *sz);
int mmi_ssm_sel_fwd_avx512(const mmi_sel_row *r);
int mmi_ssm_sel_bwd_avx512(const mmi_sel_row *r, const mmi_sel_grad *g);
int mmi_ssm_sel_step_rows_avx512(const mmi_sel_step *s);
int mmi_ssm_sel_fwd_block_avx512(const mmi_sel_row *r, int64_t nr);
int mmi_ssm_sel_bwd_block_avx512(const mmi_sel_row *r, const mmi_sel_grad *g, int64_t nr);
int mmi_ssm_lru_step_rows_avx512(const struct mmi_lru_steps *s);

/* ---- Mamba-2 SSD, one (batch, head) --------------------------------------------------------
 * x_t [P] at x + t*xs, dt_t at dt + t*ds, B_t and C_t [N] at B/C + t*bs. State S is P x N. */
typedef struct mmi_ssd_head {
    int64_t L, P, N, Q;
    const float *x, *dt, *B, *C;
    int64_t xs, ds, bs;
    float A, dskip, bias;
    int32_t has_d, softplus;
    double dt_min, dt_max;
    const float *init; /* P x N or NULL (zero) */
    float *y;          /* at y + t*xs */
    float *last;       /* P x N or NULL */
    float *ckpt;       /* (ceil(L/Q) + 1) x P x N: the state entering each chunk, then the final */
    float *work;       /* 3Q + 3PN + QPN floats, 8-byte aligned */
} mmi_ssd_head;

typedef struct mmi_ssd_grad {
    const float *dy;         /* at dy + t*xs */
    float *dx;               /* at dx + t*xs, may be NULL */
    float *ddt;              /* at ddt + t*ds, may be NULL */
    float *dB, *dC;          /* at dB/dC + t*bs, accumulated (+=), may be NULL */
    float *dinit;            /* P x N, may be NULL */
    double *dA, *dD, *dbias; /* scalars, accumulated */
} mmi_ssd_grad;

/* Delta after softplus/bias and the clamp; *pass = 1 where the clamp is inactive. */
float mmi_ssd_dt(const mmi_ssd_head *r, float raw, int *pass);
/* Chunked SSD forward (intra-chunk quadratic form + inter-chunk state passing, docs/SSM.md §MM_SSM_SSD). */
void mmi_ssm_ssd_fwd(const mmi_ssd_head *r);
/* Backward: reverse sequential adjoint per chunk, recomputing states from r->ckpt. */
void mmi_ssm_ssd_bwd(const mmi_ssd_head *r, const mmi_ssd_grad *g);

/* ---- LRU (complex diagonal recurrence), one batch row ---------------------------------------
 * lam [N x2] = exp(-exp(nu_log) + i exp(theta_log)); bn [N,H,x2] = B e^gamma_log; c [H,N,x2];
 * u, y [L,H]; hs [L,N,x2] receives every state (the backward reads it). */
typedef struct mmi_lru_row {
    int64_t L, H, N;
    const float *lam, *bn, *c, *d; /* d: H or NULL */
    const float *u;
    const float *h0; /* N x2 initial state or NULL */
    float *y, *hs;
} mmi_lru_row;

typedef struct mmi_lru_grad {
    const float *dy; /* L,H */
    float *du;       /* L,H or NULL */
    double *glam;    /* N x2, accumulated: sum_t G_h_t conj(h_{t-1}) */
    double *gbn;     /* N,H,x2, accumulated: sum_t G_h_t u_t */
    double *gc;      /* H,N,x2, accumulated: sum_t dy_t conj(h_t) */
    double *dd;      /* H, accumulated */
    double *gh;      /* N x2 scratch */
} mmi_lru_grad;

void mmi_ssm_lru_fwd(const mmi_lru_row *r);
void mmi_ssm_lru_bwd(const mmi_lru_row *r, const mmi_lru_grad *g);

/* The forward on transposed operands, for streaming one step per call (a recurrent policy's
 * act): bt [H, N x2] (bt[k][2n + c] = bn[n][k][c]), ct [N, 2, H] (ct[n][0][k] = Re C[k][n],
 * ct[n][1][k] = Im C[k][n]). Every inner loop then runs over contiguous lanes that the compiler
 * vectorizes, while each state and output keeps the summation order of mmi_ssm_lru_fwd. The
 * steps run one at a time through mmi_ssm_lru_step_rows, so a segment is bit-equal to the same
 * steps streamed on the dispatched set; and to mmi_ssm_lru_fwd where that set's step adds as the
 * portable loops do (not the AVX2 body, whose FMAs round otherwise; tests/test_ssm.c). r->bn
 * and r->c are not read; acc is [N x2] scratch. */
typedef struct mmi_lru_t {
    const float *bt, *ct;
    float *acc;
    /* NULL: the states sum bt [H, N x2] against u (H terms). Else they sum bt [Hs, N x2]
     * against us [L, Hs] instead, in q order from 0 as over u, and only the outputs' D u reads
     * u: a caller with a linear map in front of u (u = W x + b) folds it into bt (the memory
     * core of a recurrent policy: Hs = obs_dim + 1 terms instead of H, docs/RL.md "Memory"). */
    const float *us;
    int64_t Hs;
} mmi_lru_t;
/* Lays bn and c of r out as t->bt and t->ct (writable copies given as bt, ct). */
void mmi_ssm_lru_transpose(const mmi_lru_row *r, float *bt, float *ct);
void mmi_ssm_lru_fwd_t(const mmi_lru_row *r, const mmi_lru_t *t);
/* One step of n independent rows (a recurrent policy's agents) on the transposed operands:
 * row i goes from state h0 + i 2N (h0 NULL: zero) on input u + i H to state hs + i 2N and
 * output y + i H, each value the terms of mmi_ssm_lru_fwd in its order: the portable loops and
 * the AVX-512 body bit-equal to it, the AVX2 body with FMAs (within float rounding of it).
 * mmi_ssm_lru_fwd_t runs through this entry, so the two always agree. h0 and hs must not
 * overlap; acc is [N x2] scratch. us, Hs as in mmi_lru_t (rows Hs apart). */
typedef struct mmi_lru_steps {
    int64_t n, H, N;
    const float *lam, *bt, *ct, *d; /* d: H or NULL */
    const float *u, *h0;
    float *hs, *y, *acc;
    const float *us; /* NULL: the states read u */
    int64_t Hs;
} mmi_lru_steps;
void mmi_ssm_lru_step_rows(const mmi_lru_steps *s);

/* ---- S4D Vandermonde kernel, one channel ------------------------------------------------------
 * M = N/2 modes, A_n = -exp(lar_n) + i aim_n, W_n = C_n B_n (e^{dt A_n} - 1)/A_n (B = 1 when
 * NULL), K_l = 2 Re sum_n W_n e^{l dt A_n}. Powers are float64 products re-anchored by a direct
 * exponential every 32 steps. */
typedef struct mmi_s4d_ch {
    int64_t M;
    double dt;
    const float *lar, *aim; /* M */
    const float *c, *b;     /* M x2; b may be NULL */
} mmi_s4d_ch;
/* k: L floats; acc: L doubles of scratch. */
void mmi_s4d_kernel_row(const mmi_s4d_ch *ch, int64_t L, float *k, double *acc);
/* Given dk (L), writes dlar, daim (M), dc, db (M x2; db only when ch->b) and returns
 * dLoss/dlog_dt. Any output may be NULL. */
double mmi_s4d_kernel_row_bwd(const mmi_s4d_ch *ch, int64_t L, const float *dk, float *dlar,
                              float *daim, float *dc, float *db);
/* Forward-mode derivative of the kernel along a direction of (log_dt: tlog_dt, lar: tlar,
 * aim: taim, c: tc; B held fixed): tk (L floats); acc: L doubles of scratch. */
void mmi_s4d_kernel_row_jvp(const mmi_s4d_ch *ch, int64_t L, double tlog_dt, const float *tlar,
                            const float *taim, const float *tc, float *tk, double *acc);
/* ZOH per mode: da = e^{dt A}, db = B (e^{dt A} - 1)/A (complex, interleaved; 2M doubles each). */
void mmi_s4d_zoh(const mmi_s4d_ch *ch, double *da, double *db);
/* One decoding step of one channel from its ZOH factors: x (M modes, interleaved, float) <-
 * da x + db u; returns y0 + 2 Re(c . x) summed in float64 (y0 carries the caller's D u). */
double mmi_s4d_step_modes(int64_t M, const double *da, const double *db, const float *c, float u,
                          double y0, float *x);

/* ---- real FFT (fft.c), causal convolution and correlation (fft_conv.c) -------------------
 * nf is a power of two >= 2; tw are the twiddles of a power of two tw_n >= nf (see mmi_fft).
 * Spectra hold the nf/2 + 1 bins of a real sequence, interleaved (nf + 2 doubles). */
/* out (nf + 2 doubles) = rfft of x (n floats) zero-padded to nf. */
void mmi_ssm_rfft(int64_t nf, const float *x, int64_t n, const double *tw, int64_t tw_n,
                  double *out);
/* In place: spec (nf/2 + 1 bins) -> the nf real values in spec[0..nf) (irfft: the imaginary
 * parts of the DC and Nyquist bins are ignored). */
void mmi_ssm_irfft(int64_t nf, double *spec, const double *tw, int64_t tw_n);
/* y[t] = sum_{l<=t} k[l] u[t-l] for t < L, given kf = mmi_ssm_rfft(k); nf >= 2L.
 * buf: nf + 2 doubles. */
void mmi_ssm_conv_row(int64_t L, int64_t nf, const double *tw, int64_t tw_n, const double *kf,
                      const float *u, float *y, double *buf);
/* Correlation r[l] = sum_t a[t + l] b[t] into acc[0..L) (reals) from af, bf (rffts of a and b,
 * nf >= 2L): irfft(af conj(bf)). acc: nf + 2 doubles. */
void mmi_ssm_xcorr(int64_t nf, const double *tw, int64_t tw_n, const double *af, const double *bf,
                   double *acc);

/* ---- S4 DPLR kernel, one channel (ssm_s4.c) ----------------------------------------------
 * A = diag(Lambda) - P P^H over M = N/2 modes (conjugate pairs implied), bilinear step dt,
 * c = C~ = C (I - Abar^L). The half spectrum K^(w_k), w_k = e^{-2 pi i k/L}, k <= L/2, comes
 * from a Cauchy sum with a rank-1 Woodbury correction, written without the 2/(1+w) factor so
 * it stays finite at w = -1; K = irfft(K^, L). */
typedef struct mmi_s4_ch {
    int64_t M;
    double dt;
    const float *lam, *p, *b, *c; /* M x2 each */
} mmi_s4_ch;
/* Scratch for length L with FFT twiddles of a power of two tw_n >= fft_size(2L - 1)
 * (mmi_dft_any): x 2L doubles, w1 and w2 2 fft_size(2L-1) each, chirp 2L. */
typedef struct mmi_s4_ws {
    const double *tw;
    int64_t tw_n;
    double *x, *w1, *w2, *chirp;
    double *acc; /* backward: 10 M doubles */
} mmi_s4_ws;
void mmi_s4_kernel_row(const mmi_s4_ch *ch, int64_t L, float *k, const mmi_s4_ws *ws);
/* Given dk (L floats), writes G_Lambda, G_P, G_B, G_C (M x2 floats each, PyTorch complex
 * gradients; any may be NULL) and returns dLoss/dlog_dt. */
double mmi_s4_kernel_row_bwd(const mmi_s4_ch *ch, int64_t L, const float *dk, float *dlam,
                             float *dp, float *db, float *dc, const mmi_s4_ws *ws);

/* ---- complex FFT (fft.c): radix-2, length a power of two, float64; Bluestein for any length -- */
/* Smallest power of two >= n (n >= 1), or 0 on overflow. */
int64_t mmi_fft_size(int64_t n);
/* tw: n/2 complex twiddles e^{-2 pi i k / n} (interleaved re, im). */
void mmi_fft_twiddles(int64_t n, double *tw);
/* In-place complex FFT of n points (a power of two; x interleaved re, im); tw are the twiddles
 * of a power of two tw_n >= n (read with stride tw_n / n); inverse = 1 uses e^{+...} and scales
 * by 1/n. */
void mmi_fft(int64_t n, double *x, const double *tw, int64_t tw_n, int inverse);
/* In-place DFT of any length n >= 1 (Bluestein), same conventions as mmi_fft. Needs
 * tw_n >= mmi_fft_size(2n - 1); w1, w2: 2 * mmi_fft_size(2n - 1) doubles each; chirp: 2n. */
void mmi_dft_any(int64_t n, double *x, int inverse, const double *tw, int64_t tw_n, double *w1,
                 double *w2, double *chirp);

#endif /* MMI_SSM_KERNELS_H */
