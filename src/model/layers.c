/* SPDX-License-Identifier: MIT */
/* layers.c — the table of layer kinds: the only place that lists every vtable, so the model
 * core, save/load and later floors find a kind by its stable id or name. */
#include "mmi_model.h"

#include <string.h>

extern const mmi_layer_vt mmi_layer_dense_vt;
extern const mmi_layer_vt mmi_layer_act_vt;
extern const mmi_layer_vt mmi_layer_layernorm_vt;
extern const mmi_layer_vt mmi_layer_rmsnorm_vt;
extern const mmi_layer_vt mmi_layer_embedding_vt;
extern const mmi_layer_vt mmi_layer_attention_vt;
extern const mmi_layer_vt mmi_layer_gau_vt;
extern const mmi_layer_vt mmi_layer_mamba_vt;
extern const mmi_layer_vt mmi_layer_s4d_vt;
extern const mmi_layer_vt mmi_layer_xattn_vt;

static const mmi_layer_vt *const k_kinds[] = {
    &mmi_layer_dense_vt,   &mmi_layer_act_vt,       &mmi_layer_layernorm_vt,
    &mmi_layer_rmsnorm_vt, &mmi_layer_embedding_vt, &mmi_layer_attention_vt,
    &mmi_layer_gau_vt,     &mmi_layer_mamba_vt,     &mmi_layer_s4d_vt,
    &mmi_layer_xattn_vt,
};

/* Names of MM_ACT_* kinds (index = kind), the labels files use ("tanh"). */
static const char *const k_act_names[] = {NULL,   "relu", "tanh",     "sigmoid", "gelu",
                                          "silu", "elu",  "softplus", "relu2"};

const mmi_layer_vt *mmi_layer_vt_find(int32_t kind)
{
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (k_kinds[i]->kind == kind) return k_kinds[i];
    return NULL;
}

const mmi_layer_vt *mmi_layer_vt_by_name(const char *kind_name)
{
    if (!kind_name) return NULL;
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++)
        if (strcmp(k_kinds[i]->kind_name, kind_name) == 0) return k_kinds[i];
    return NULL;
}

const char *mmi_act_name(int32_t act)
{
    if (act < MM_ACT_RELU || act > MM_ACT_RELU2) return NULL;
    return k_act_names[act];
}

int32_t mmi_act_by_name(const char *name)
{
    if (!name) return 0;
    for (int32_t k = MM_ACT_RELU; k <= MM_ACT_RELU2; k++)
        if (strcmp(k_act_names[k], name) == 0) return k;
    return 0;
}

const char *mmi_layer_label(const mmi_layer *l)
{
    if (l->vt->kind == MMI_LAYER_ACT) {
        const char *n = mmi_act_name((int32_t)l->icfg[0]);
        return n ? n : "activation";
    }
    return l->vt->kind_name;
}

void mmi_layer_set_tensor(mmi_layer *l, int i, const char *name, int32_t ndim, int64_t s0,
                          int64_t s1, int64_t s2, int64_t off)
{
    mmi_ptensor *t = &l->tensors[i];
    size_t n = strlen(name);
    if (n >= sizeof t->name) n = sizeof t->name - 1;
    memcpy(t->name, name, n);
    t->name[n] = '\0';
    t->ndim = ndim;
    t->shape[0] = s0, t->shape[1] = s1, t->shape[2] = s2;
    t->numel = s0 * (ndim > 1 ? s1 : 1) * (ndim > 2 ? s2 : 1);
    t->offset = off;
}
