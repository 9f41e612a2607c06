/* SPDX-License-Identifier: MIT */
/* ssm.c — mm_ssm lifecycle: options and their defaults per kind, create (every workspace the
 * kind needs is reserved here, so the compute calls never allocate), free, error text,
 * run-time parameters, the streaming state, and the small init helpers. */
#include "mmi_ssm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAX_DIM   ((int64_t)1 << 24)
#define MAX_STATE 4096

static int kind_known(int32_t k) { return k >= MM_SSM_SELECTIVE && k <= MM_SSM_LRU; }

static void fill_defaults(mm_ssm_opts *o, int32_t kind)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->kind = kind;
    o->n_threads = 1;
    o->d_inner = 16;
    o->d_state = (kind == MM_SSM_S4D || kind == MM_SSM_S4) ? 64 : 16;
    o->head_dim = 16;
    o->n_groups = 1;
    o->max_batch = 1;
    o->max_seq = 1024;
    o->chunk = kind == MM_SSM_SSD ? 64 : 256;
    o->flags = (kind == MM_SSM_SELECTIVE || kind == MM_SSM_SSD) ? MM_SSM_DELTA_SOFTPLUS : 0;
}

MM_API int mm_ssm_opts_init(mm_ssm_opts *o, int32_t kind)
{
    if (!o || !kind_known(kind)) return MM_E_INVALID_ARG;
    fill_defaults(o, kind);
    return MM_OK;
}

MM_API int mm_ssm_inputs_init(mm_ssm_inputs *in)
{
    if (!in) return MM_E_INVALID_ARG;
    memset(in, 0, sizeof *in);
    in->struct_size = (uint32_t)sizeof *in;
    return MM_OK;
}

MM_API int mm_ssm_grads_init(mm_ssm_grads *g)
{
    if (!g) return MM_E_INVALID_ARG;
    memset(g, 0, sizeof *g);
    g->struct_size = (uint32_t)sizeof *g;
    return MM_OK;
}

static int read_opts(mm_ssm_opts *o, const mm_ssm_opts *src, mmi_err *e)
{
    static const char fn[] = "mm_ssm_create";
    int rc;
    fill_defaults(o, MM_SSM_SELECTIVE);
    if ((rc = mmi_opts_copy(o, src, sizeof *o, e, fn)) != MM_OK) return rc;
    if (!kind_known(o->kind))
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: unknown kind %d (MM_SSM_SELECTIVE..MM_SSM_LRU)",
                        fn, (int)o->kind);
    fill_defaults(o, o->kind);
    return mmi_opts_copy(o, src, sizeof *o, e, fn);
}

static int range(mmi_err *e, const char *what, int64_t v, int64_t lo, int64_t hi)
{
    if (v >= lo && v <= hi) return MM_OK;
    return mmi_fail(e, MM_E_RANGE, "mm_ssm_create: %s is %lld, expected %lld..%lld", what,
                    (long long)v, (long long)lo, (long long)hi);
}

static int check_opts(const mm_ssm_opts *o, mmi_err *e)
{
    int rc;
    if (o->reserved0 || o->reserved1)
        return mmi_fail(e, MM_E_INVALID_ARG, "mm_ssm_create: reserved fields must be 0");
    if (o->flags & ~(uint32_t)MM_SSM_DELTA_SOFTPLUS)
        return mmi_fail(e, MM_E_INVALID_ARG, "mm_ssm_create: unknown flags 0x%x",
                        (unsigned)o->flags);
    if ((rc = range(e, "n_threads", o->n_threads, 1, 256)) ||
        (rc = range(e, "d_inner", o->d_inner, 1, MAX_DIM)) ||
        (rc = range(e, "d_state", o->d_state, 1, MAX_STATE)) ||
        (rc = range(e, "max_batch", o->max_batch, 1, MAX_DIM)) ||
        (rc = range(e, "max_seq", o->max_seq, 1, MAX_DIM)) ||
        (rc = range(e, "chunk", o->chunk, 1, MAX_DIM)))
        return rc;
    if (o->kind == MM_SSM_SSD && (rc = range(e, "head_dim", o->head_dim, 1, MAX_STATE))) return rc;
    /* the selective scan keeps one state row on the stack in its kernels (as mamba's CUDA
     * kernel, which requires dstate <= 256) */
    if (o->kind == MM_SSM_SELECTIVE && (rc = range(e, "d_state", o->d_state, 1, 256))) return rc;
    if ((o->kind == MM_SSM_SELECTIVE || o->kind == MM_SSM_SSD) &&
        ((rc = range(e, "n_groups", o->n_groups, 1, o->d_inner)) != MM_OK))
        return rc;
    if ((o->kind == MM_SSM_SELECTIVE || o->kind == MM_SSM_SSD) && o->d_inner % o->n_groups)
        return mmi_fail(e, MM_E_RANGE,
                        "mm_ssm_create: d_inner %lld is not a multiple of "
                        "n_groups %lld",
                        (long long)o->d_inner, (long long)o->n_groups);
    if ((o->kind == MM_SSM_S4D || o->kind == MM_SSM_S4) && (o->d_state % 2 || o->d_state < 2))
        return mmi_fail(e, MM_E_RANGE,
                        "mm_ssm_create: d_state %lld must be even for S4/S4D "
                        "(N/2 complex modes)",
                        (long long)o->d_state);
    return MM_OK;
}

/* The workspace regions, in order; measures when y measures (the pointers are then NULL). */
static void layout(mm_ssm *h, const mmi_ssm_plan *p, mmi_carve *y)
{
    /* work_per_thread <= 2^40 and n_threads <= 256 (reserve, check_opts): no overflow */
    const int64_t work = (int64_t)p->work_per_thread * h->n_threads;
    h->ws.state = (float *)mmi_carve_take(y, (int64_t)p->state, 4);
    h->ws.ckpt = (float *)mmi_carve_take(y, (int64_t)p->ckpt, 4);
    h->ws.bt = (float *)mmi_carve_take(y, (int64_t)p->bt, 4);
    h->ws.ct = (float *)mmi_carve_take(y, (int64_t)p->ct, 4);
    h->ws.dbt = (double *)mmi_carve_take(y, (int64_t)p->dbt, 8);
    h->ws.dct = (double *)mmi_carve_take(y, (int64_t)p->dct, 8);
    h->ws.dacc = (double *)mmi_carve_take(y, (int64_t)p->dacc, 8);
    h->ws.work = (float *)mmi_carve_take(y, work, 4);
    h->ws.fft = (double *)mmi_carve_take(y, (int64_t)p->fft, 8);
}

/* Measures the workspace, allocates it once and carves it. */
static int reserve(mm_ssm *h)
{
    mmi_ssm_plan p;
    mmi_carve y = mmi_carve_measure();
    memset(&p, 0, sizeof p);
    if (mmi_ssm_plan_sizes(h, &p) != MM_OK || p.work_per_thread > ((size_t)1 << 40))
        return mmi_fail(&h->err, MM_E_RANGE, "mm_ssm_create: workspace sizes overflow");
    /* each thread's slice starts 64-byte aligned (kernels keep float64 scratch in it) */
    p.work_per_thread = (p.work_per_thread + 15) / 16 * 16;
    layout(h, &p, &y);
    if (y.overflow) return mmi_fail(&h->err, MM_E_RANGE, "mm_ssm_create: workspace sizes overflow");
    h->block = mmi_calloc(&h->alloc, y.off);
    if (!h->block)
        return mmi_fail(&h->err, MM_E_NOMEM, "mm_ssm_create: cannot allocate %zu bytes", y.off);
    h->block_bytes = y.off;
    y = mmi_carve_at(h->block, h->block_bytes);
    layout(h, &p, &y);
    h->ws.work_per_thread = p.work_per_thread;
    h->state_n = (int64_t)p.state;
    if (h->kind == MM_SSM_S4D || h->kind == MM_SSM_S4) mmi_fft_twiddles(h->nfft, h->ws.fft);
    return mmi_pool_create(&h->pool, h->n_threads, &h->alloc, &h->err);
}

MM_API int mm_ssm_create(mm_ssm **out, const mm_ssm_opts *opts)
{
    mm_ssm_opts o;
    mmi_alloc al;
    mmi_err e;
    mm_ssm *h;
    int rc;
    mmi_err_clear(&e);
    if (!out) return MM_E_INVALID_ARG;
    *out = NULL;
    if ((rc = read_opts(&o, opts, &e)) != MM_OK || (rc = check_opts(&o, &e)) != MM_OK ||
        (rc = mmi_alloc_init(&al, o.alloc, &e)) != MM_OK)
        goto fail;
    h = (mm_ssm *)mmi_calloc(&al, sizeof *h);
    if (!h) {
        rc = mmi_fail(&e, MM_E_NOMEM, "mm_ssm_create: cannot allocate the handle");
        goto fail;
    }
    h->alloc = al;
    h->opts = o;
    h->opts.alloc = NULL;
    h->opts.err_buf = NULL;
    h->opts.err_buf_size = 0;
    h->kind = o.kind;
    h->D = o.d_inner;
    h->N = o.d_state;
    h->P = o.kind == MM_SSM_SSD ? o.head_dim : 1;
    h->G = o.n_groups;
    h->max_batch = o.max_batch;
    h->max_seq = o.max_seq;
    h->chunk = o.chunk < o.max_seq ? o.chunk : o.max_seq;
    h->nck_max = (h->max_seq + h->chunk - 1) / h->chunk;
    h->n_threads = o.n_threads;
    h->dt_min = 0.0;
    h->dt_max = 1e300;
    mmi_rng_seed(&h->rng, o.seed);
    if ((rc = reserve(h)) != MM_OK) {
        e = h->err;
        mm_ssm_free(h);
        goto fail;
    }
    *out = h;
    return MM_OK;
fail:
    mmi_opts_export_error(opts, offsetof(mm_ssm_opts, err_buf), offsetof(mm_ssm_opts, err_buf_size),
                          &e);
    return rc;
}

MM_API void mm_ssm_free(mm_ssm *h)
{
    if (!h) return;
    mmi_pool_free(h->pool);
    if (h->block) mmi_free(&h->alloc, h->block, h->block_bytes);
    mmi_alloc al = h->alloc;
    mmi_free(&al, h, sizeof *h);
}

MM_API const char *mm_ssm_errmsg(const mm_ssm *h) { return h ? h->err.msg : "invalid handle"; }

MM_API int mm_ssm_reset(mm_ssm *h)
{
    if (!h) return MM_E_INVALID_ARG;
    memset(h->ws.state, 0, (size_t)h->state_n * sizeof(float));
    h->position = 0;
    return MM_OK;
}

MM_API int mm_ssm_state(mm_ssm *h, float **data, int64_t *n)
{
    if (!h || !data) return MM_E_INVALID_ARG;
    *data = h->ws.state;
    if (n) *n = h->state_n;
    return MM_OK;
}

MM_API int mm_ssm_set_f64(mm_ssm *h, int32_t id, double v)
{
    static const char fn[] = "mm_ssm_set_f64";
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if (id != MM_SSM_DT_MIN && id != MM_SSM_DT_MAX)
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: parameter %d cannot be set%s", fn, (int)id,
                        mmi_param_find(id) ? " (read-only)" : "");
    if (h->kind != MM_SSM_SSD)
        return mmi_fail(&h->err, MM_E_UNSUPPORTED, "%s: the dt clamp applies to MM_SSM_SSD only",
                        fn);
    if ((rc = mmi_param_check(id, v, &h->err, fn)) != MM_OK) return rc;
    if (id == MM_SSM_DT_MIN)
        h->dt_min = v;
    else
        h->dt_max = v;
    return MM_OK;
}

MM_API int mm_ssm_get_f64(const mm_ssm *h, int32_t id, double *v)
{
    if (!h || !v) return MM_E_INVALID_ARG;
    switch (id) {
    case MM_SSM_CHUNK:
        *v = (double)h->chunk;
        return MM_OK;
    case MM_SSM_DT_MIN:
        if (h->kind != MM_SSM_SSD) break;
        *v = h->dt_min;
        return MM_OK;
    case MM_SSM_DT_MAX:
        if (h->kind != MM_SSM_SSD) break;
        *v = h->dt_max;
        return MM_OK;
    case MM_SSM_STAT_POSITION:
        *v = (double)h->position;
        return MM_OK;
    case MM_SSM_STAT_WORKSPACE_BYTES:
        *v = (double)h->block_bytes;
        return MM_OK;
    default:
        break;
    }
    return MM_E_UNSUPPORTED;
}

MM_API int mm_ssm_s4d_init(int32_t variant, int64_t h, int64_t n, float *log_a_real, float *a_imag)
{
    const double pi = 3.14159265358979323846;
    if (!log_a_real || !a_imag || (variant != MM_S4D_LIN && variant != MM_S4D_INV))
        return MM_E_INVALID_ARG;
    if (h < 1 || n < 2 || n % 2 || n > MAX_STATE || h > MAX_DIM) return MM_E_RANGE;
    for (int64_t r = 0; r < h; r++)
        for (int64_t k = 0; k < n / 2; k++) {
            double im = variant == MM_S4D_LIN
                            ? pi * (double)k
                            : ((double)n / pi) * ((double)n / (2.0 * k + 1.0) - 1.0);
            log_a_real[r * (n / 2) + k] = (float)log(0.5);
            a_imag[r * (n / 2) + k] = (float)im;
        }
    return MM_OK;
}
