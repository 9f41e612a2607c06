/* SPDX-License-Identifier: MIT */
/* fuzz_model_load.c — libFuzzer target for mm_model_load_mem and mm_model_load_cb on raw bytes.
 *
 * Oracle: no crash, leak, sanitizer report or huge allocation (the rss limit); a failure writes
 * a message and returns no model; both loaders agree on the status; a model that loads runs a
 * forward pass, and saving it and loading the saved bytes gives bit-identical parameters; with
 * an optimizer, two steps on zero gradients keep every step counter non-negative (a loaded
 * count near INT64_MAX used to wrap and turn the parameters into NaN). */
#include "mm.h"
#include "model/mmi_model.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct chunks {
    const uint8_t *p;
    size_t len, pos;
} chunks;

/* Delivers the stream in uneven pieces, as a socket or a decompressor would. */
static int64_t read_chunks(void *ud, void *buf, int64_t n)
{
    chunks *c = (chunks *)ud;
    size_t k = (c->pos % 13) + 1;
    if ((int64_t)k > n) k = (size_t)n;
    if (k > c->len - c->pos) k = c->len - c->pos;
    memcpy(buf, c->p + c->pos, k);
    c->pos += k;
    return (int64_t)k;
}

static void exercise(mm_model *m)
{
    int64_t in = m->opts.input_dim, out = 0, n = 0, n2 = 0;
    size_t size = 0;
    void *buf;
    mm_model *m2 = NULL;
    float *p = NULL, *p2 = NULL;
    mm_tensor *x = NULL, *y = NULL, *ctx = NULL;
    int64_t xs[2] = {1, in}, ys[2] = {1, 0}, cs[3] = {1, 1, 0};
    if (mm_model_output_dim(m, &out) != MM_OK) abort();
    ys[1] = out;
    /* Cross-attention layers read a context: one zero token of their ctx_dim (cs[2] = -1 when
     * the layers of a file disagree on it: no context fits, the forward is skipped). */
    for (int32_t i = 0; i < m->n_layers; i++) {
        int64_t d;
        if (mmi_xattn_context(&m->layers[i], &d, NULL)) cs[2] = cs[2] && cs[2] != d ? -1 : d;
    }
    /* Zeros are valid for every layer (embedding index 0 included). */
    if (in <= 4096 && out <= 4096 && cs[2] >= 0 && cs[2] <= 4096 &&
        mm_tensor_create(&x, 2, xs, NULL) == MM_OK && mm_tensor_create(&y, 2, ys, NULL) == MM_OK &&
        (cs[2] == 0 || mm_tensor_create(&ctx, 3, cs, NULL) == MM_OK)) {
        if (mm_model_forward_ctx(m, x, ctx, y) != MM_OK) abort();
    }
    mm_tensor_free(x);
    mm_tensor_free(y);
    mm_tensor_free(ctx);
    if (mm_model_save_mem(m, NULL, 0, &size, MM_SAVE_OPTIMIZER_STATE) != MM_OK) abort();
    buf = malloc(size);
    if (!buf) return;
    if (mm_model_save_mem(m, buf, size, &size, MM_SAVE_OPTIMIZER_STATE) != MM_OK) abort();
    if (mm_model_load_mem(&m2, buf, size, NULL) != MM_OK) abort();
    if (mm_model_params(m, &p, &n) != MM_OK || mm_model_params(m2, &p2, &n2) != MM_OK || n != n2 ||
        memcmp(p, p2, (size_t)n * sizeof(float)) != 0)
        abort();
    mm_model_free(m2);
    free(buf);
    if (m->opt.kind && mm_model_zero_grad(m) == MM_OK) {
        for (int k = 0; k < 2; k++)
            if (mm_model_step(m) != MM_OK) return;
        if (m->opt.steps < 2) abort();
        for (int32_t i = 0; i < m->n_layers; i++)
            if (m->opt.layer_t[i] < 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mm_model_opts o;
    mm_model *m = NULL, *m2 = NULL;
    char err[256];
    chunks c = {data, size, 0};
    int rc, rc2;
    if (mm_model_opts_init(&o) != MM_OK) abort();
    err[0] = '\0';
    o.err_buf = err;
    o.err_buf_size = sizeof err;
    rc = mm_model_load_mem(&m, data, size, &o);
    if (rc != MM_OK && (m != NULL || err[0] == '\0')) abort();
    rc2 = mm_model_load_cb(&m2, read_chunks, &c, &o);
    /* The callback loader stops at the file's end, so trailing bytes fail only load_mem, which
     * then reports them instead of what a later check would have found. */
    if (rc2 != rc && !(rc == MM_E_FORMAT && c.pos < size)) abort();
    if (rc == MM_OK) exercise(m);
    mm_model_free(m);
    mm_model_free(m2);
    return 0;
}
