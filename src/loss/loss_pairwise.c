/* SPDX-License-Identifier: MIT */
/* loss_pairwise.c — the contrastive compute calls: mm_loss_clip, mm_loss_siglip, mm_loss_itc.
 * They validate the tensors, bound the logits so float32 cannot overflow, and hand the raw
 * buffers to the tiled kernels (src/kernels/loss/loss_*_kernel.c) with the handle's workspace. */
#include "mmi_loss.h"

#include <math.h>

/* Largest |logit| the tiles may hold: far below FLT_MAX so every partial GEMM sum and
 * exp(z - max) stays finite. */
#define LOGIT_LIMIT 1e37

/* Largest row L2 norm of a [rows, width] tensor (0 for NULL), in float64. */
static double max_row_norm(const mm_tensor *t)
{
    double best = 0.0;
    int64_t w;
    if (!t) return 0.0;
    w = t->shape[t->ndim - 1];
    for (int64_t i = 0; i < t->numel; i += w) {
        double s = 0.0;
        for (int64_t j = 0; j < w; j++) s += (double)t->data[i + j] * (double)t->data[i + j];
        best = s > best ? s : best;
    }
    return sqrt(best);
}

/* Refuses inputs whose logits could overflow: |z| <= scale |x_i| |y_j| + |bias|. */
static int check_bound(mm_loss *h, const char *fn, double scale, const mm_tensor *x,
                       const mm_tensor *y, double bias)
{
    double bound = scale * max_row_norm(x) * max_row_norm(y) + fabs(bias);
    if (bound <= LOGIT_LIMIT) return MM_OK;
    return mmi_fail(&h->err, MM_E_NUMERIC,
                    "%s: logits could overflow float32 (scale * max|x_i| * max|y_j| = %g)", fn,
                    bound);
}

/* An optional gradient output: NULL, or shaped like its input and sharing memory with none of
 * the inputs. */
static int check_grad(mm_loss *h, const char *fn, const char *name, const mm_tensor *g,
                      const char *nin, const mm_tensor *in, const mm_tensor *const *others,
                      const char *const *onames, int n_others)
{
    int rc;
    if (!g) return MM_OK;
    if ((rc = mmi_loss_need(h, fn, name, g, 2, "[B, D]")) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, nin, in, name, g)) != MM_OK)
        return rc;
    for (int i = 0; i < n_others; i++)
        if ((rc = mmi_loss_no_alias(h, fn, name, g, onames[i], others[i])) != MM_OK) return rc;
    return MM_OK;
}

/* Shared checks of CLIP and SigLIP: x, y [B, D] alike, within the reservation, finite; dx, dy
 * optional and alias-free. */
static int check_pair(mm_loss *h, const char *fn, const mm_tensor *x, const mm_tensor *y,
                      const mm_tensor *dx, const mm_tensor *dy)
{
    const mm_tensor *ins[3] = {x, y, dx};
    const char *names[3] = {"x", "y", "dx"};
    int rc;
    if ((rc = mmi_loss_need(h, fn, "x", x, 2, "[B, D]")) != MM_OK ||
        (rc = mmi_loss_need(h, fn, "y", y, 2, "[B, D]")) != MM_OK ||
        (rc = mmi_loss_same_shape(h, fn, "x", x, "y", y)) != MM_OK ||
        (rc = mmi_loss_within(h, fn, "x", x->shape[0], x->shape[1])) != MM_OK ||
        (rc = check_grad(h, fn, "dx", dx, "x", x, ins, names, 2)) != MM_OK ||
        (rc = check_grad(h, fn, "dy", dy, "y", y, ins, names, dx ? 3 : 2)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "x", x)) != MM_OK ||
        (rc = mmi_loss_finite(h, fn, "y", y)) != MM_OK)
        return rc;
    return MM_OK;
}

static void fill_args(const mm_loss *h, const mm_tensor *x, const mm_tensor *y, mm_tensor *dx,
                      mm_tensor *dy, double scale, mmi_pair_args *a)
{
    a->x = x->data;
    a->y = y->data;
    a->dx = dx ? dx->data : NULL;
    a->dy = dy ? dy->data : NULL;
    a->n = x->shape[0];
    a->d = x->shape[1];
    a->tile = h->tile;
    a->scale = (float)scale;
    a->bias = (float)h->logit_bias;
    a->grad_scale = h->grad_scale;
}

MM_API int mm_loss_clip(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                        mm_tensor *dx, mm_tensor *dy)
{
    static const char fn[] = "mm_loss_clip";
    mmi_pair_args a;
    mmi_pair_result r;
    int rc, t_passes;
    double s;
    if (!h) return MM_E_INVALID_ARG;
    if (h->comm) return mmi_loss_clip_dist(h, x, y, loss, dx, dy); /* global batch */
    s = mmi_loss_scale(h, &t_passes);
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_CLIP)) != MM_OK ||
        (rc = check_pair(h, fn, x, y, dx, dy)) != MM_OK ||
        (rc = check_bound(h, fn, s, x, y, 0.0)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, dx, "dx", dy, "dy")) != MM_OK)
        return rc;
    fill_args(h, x, y, dx, dy, s, &a);
    mmi_loss_clip(&a, h->ws, h->pool, &r);
    h->st_loss = r.loss;
    h->st_i2t = r.loss_rows;
    h->st_t2i = r.loss_cols;
    h->st_dscale = t_passes ? r.dlog_scale : 0.0;
    h->st_valid = (double)a.n;
    if (loss) *loss = r.loss;
    return MM_OK;
}

MM_API int mm_loss_siglip(mm_loss *h, const mm_tensor *x, const mm_tensor *y, double *loss,
                          mm_tensor *dx, mm_tensor *dy)
{
    static const char fn[] = "mm_loss_siglip";
    mmi_pair_args a;
    mmi_pair_result r;
    int rc, t_passes;
    double s;
    if (!h) return MM_E_INVALID_ARG;
    if (h->comm) return mmi_loss_siglip_dist(h, x, y, loss, dx, dy); /* global batch */
    s = mmi_loss_scale(h, &t_passes);
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_SIGLIP)) != MM_OK ||
        (rc = check_pair(h, fn, x, y, dx, dy)) != MM_OK ||
        (rc = check_bound(h, fn, s, x, y, h->logit_bias)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, dx, "dx", dy, "dy")) != MM_OK)
        return rc;
    fill_args(h, x, y, dx, dy, s, &a);
    mmi_loss_siglip(&a, h->ws, h->pool, &r);
    h->st_loss = r.loss;
    h->st_dscale = t_passes ? r.dlog_scale : 0.0;
    h->st_dbias = r.dbias;
    h->st_valid = (double)a.n;
    if (loss) *loss = r.loss;
    return MM_OK;
}

/* ITC's inputs: four [B, D] feature tensors alike, an optional pair of [Q, D] queues. */
static int check_itc(mm_loss *h, const char *fn, const mm_tensor *const *t, const mm_tensor *qi,
                     const mm_tensor *qt, mm_tensor *d_img, mm_tensor *d_txt)
{
    static const char *const names[6] = {"img", "txt", "img_m", "txt_m", "img_queue", "txt_queue"};
    const mm_tensor *all[7] = {t[0], t[1], t[2], t[3], qi, qt, d_img};
    const char *all_names[7] = {names[0], names[1], names[2], names[3],
                                names[4], names[5], "d_img"};
    int rc;
    for (int i = 0; i < 4; i++) {
        if ((rc = mmi_loss_need(h, fn, names[i], t[i], 2, "[B, D]")) != MM_OK) return rc;
        if (i && (rc = mmi_loss_same_shape(h, fn, "img", t[0], names[i], t[i])) != MM_OK) return rc;
    }
    if ((rc = mmi_loss_within(h, fn, "img", t[0]->shape[0], t[0]->shape[1])) != MM_OK) return rc;
    if ((qi == NULL) != (qt == NULL))
        return mmi_fail(&h->err, MM_E_INVALID_ARG, "%s: give both queues or neither (%s is NULL)",
                        fn, qi ? "txt_queue" : "img_queue");
    if (qi) {
        if ((rc = mmi_loss_need(h, fn, "img_queue", qi, 2, "[Q, D]")) != MM_OK ||
            (rc = mmi_loss_same_shape(h, fn, "img_queue", qi, "txt_queue", qt)) != MM_OK)
            return rc;
        if (qi->shape[1] != t[0]->shape[1])
            return mmi_loss_same_shape(h, fn, "img", t[0], "img_queue", qi);
        if (qi->shape[0] > h->max_queue)
            return mmi_fail(&h->err, MM_E_RANGE,
                            "%s: the queues have %lld rows but the handle reserved max_queue %lld",
                            fn, (long long)qi->shape[0], (long long)h->max_queue);
    }
    if ((rc = check_grad(h, fn, "d_img", d_img, "img", t[0], all, all_names, 6)) != MM_OK ||
        (rc = check_grad(h, fn, "d_txt", d_txt, "txt", t[1], all, all_names, d_img ? 7 : 6)) !=
            MM_OK)
        return rc;
    for (int i = 0; i < 6; i++)
        if (all[i] && (rc = mmi_loss_finite(h, fn, all_names[i], all[i])) != MM_OK) return rc;
    return MM_OK;
}

MM_API int mm_loss_itc(mm_loss *h, const mm_tensor *img, const mm_tensor *txt,
                       const mm_tensor *img_m, const mm_tensor *txt_m, const mm_tensor *img_queue,
                       const mm_tensor *txt_queue, double *loss, mm_tensor *d_img, mm_tensor *d_txt)
{
    static const char fn[] = "mm_loss_itc";
    const mm_tensor *t[4] = {img, txt, img_m, txt_m};
    mmi_itc_args a;
    double li2t, lt2i, dt1, dt2, rows, cols;
    int rc;
    if (!h) return MM_E_INVALID_ARG;
    if ((rc = mmi_loss_kind_is(h, fn, MM_LOSS_ITC)) != MM_OK ||
        (rc = check_itc(h, fn, t, img_queue, txt_queue, d_img, d_txt)) != MM_OK ||
        (rc = mmi_loss_scalar_apart(h, fn, loss, d_img, "d_img", d_txt, "d_txt")) != MM_OK)
        return rc;
    rows = fmax(fmax(max_row_norm(img), max_row_norm(txt)),
                fmax(max_row_norm(img_m), max_row_norm(txt_m)));
    cols = fmax(rows, fmax(max_row_norm(img_queue), max_row_norm(txt_queue)));
    if (rows * cols / h->temp > LOGIT_LIMIT)
        return mmi_fail(&h->err, MM_E_NUMERIC,
                        "%s: similarities could overflow float32 "
                        "(max|row| * max|column| / temp = %g)",
                        fn, rows * cols / h->temp);
    /* image -> text: rows img / img_m, columns [txt_m; txt_queue]; ITA averages directions */
    a.n = img->shape[0];
    a.d = img->shape[1];
    a.nq = img_queue ? img_queue->shape[0] : 0;
    a.tile = h->tile;
    a.temp = (float)h->temp;
    a.alpha = (float)h->alpha;
    a.grad_scale = 0.5 * h->grad_scale;
    a.q = img->data, a.qm = img_m->data, a.kb = txt_m->data;
    a.kq = txt_queue ? txt_queue->data : NULL;
    a.dq = d_img ? d_img->data : NULL;
    mmi_loss_itc_dir(&a, h->ws, h->pool, &li2t, &dt1);
    /* text -> image: rows txt / txt_m, columns [img_m; img_queue] */
    a.q = txt->data, a.qm = txt_m->data, a.kb = img_m->data;
    a.kq = img_queue ? img_queue->data : NULL;
    a.dq = d_txt ? d_txt->data : NULL;
    mmi_loss_itc_dir(&a, h->ws, h->pool, &lt2i, &dt2);
    h->st_i2t = li2t;
    h->st_t2i = lt2i;
    h->st_loss = 0.5 * (li2t + lt2i);
    h->st_dtemp = dt1 + dt2;
    h->st_valid = (double)a.n;
    if (loss) *loss = h->st_loss;
    return MM_OK;
}

/* The checks above, for the distributed forms (loss_dist.c). */
int mmi_loss_check_pair(mm_loss *h, const char *fn, const mm_tensor *x, const mm_tensor *y,
                        const mm_tensor *dx, const mm_tensor *dy)
{
    return check_pair(h, fn, x, y, dx, dy);
}

double mmi_loss_max_row_norm(const mm_tensor *t) { return max_row_norm(t); }
