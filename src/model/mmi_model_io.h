/* SPDX-License-Identifier: MIT */
/*
 * mmi_model_io.h — what model_io.c (save/load) and model_io_arch.c (the architecture and
 * optimizer metadata, and architecture inference for plain PyTorch files) share. Internal.
 *
 * File layout (docs/FORMAT.md is the full description): a safetensors file whose tensors are
 * the model's parameters named like a PyTorch nn.Sequential state_dict ("0.weight", "0.bias",
 * "2.weight", ...; activations take an index) and, with MM_SAVE_OPTIMIZER_STATE, the optimizer
 * state ("optimizer.0.weight.exp_avg"). __metadata__ holds:
 *   format          "libmm"
 *   format_version  "1.0"   (a newer major is refused with MM_E_VERSION)
 *   libmm_version   "0.1.0" (informational)
 *   architecture    JSON text {"input_dim":4,"layers":[{"kind":"dense","icfg":[8,1,0],
 *                   "dcfg":[1]},{"kind":"activation","icfg":[2],"dcfg":[]}, ...]}
 *   optimizer       JSON text {"kind":"adam","lr":0.001,...} (only if one is set); with the
 *                   state also "steps":12,"layer_step":[12,0,12],"buf_init":[0,0,0] (per layer)
 *   crc32           CRC32 of the data section, 8 lowercase hex digits
 */
#ifndef MMI_MODEL_IO_H
#define MMI_MODEL_IO_H

#include "../io/mmi_io.h"
#include "mmi_model.h"

#define MMI_FORMAT_MAJOR  1
#define MMI_FORMAT_MINOR  0
#define MMI_IO_MAX_LAYERS 4096
#define MMI_IO_KIND_MAX   24

/* One layer as a file describes it, before it is replayed through mmi_model_add_layer. */
typedef struct mmi_arch_layer {
    char kind[MMI_IO_KIND_MAX];
    int64_t icfg[MMI_LAYER_MAX_CFG];
    double dcfg[MMI_LAYER_MAX_CFG];
    int32_t n_icfg, n_dcfg;
} mmi_arch_layer;

/* A model as a file describes it. */
typedef struct mmi_arch {
    int64_t input_dim;
    int32_t n_layers;
    mmi_arch_layer *layers;
    size_t layers_bytes;
    int32_t opt_kind; /* MM_OPT_*, 0: none */
    int32_t n_hyper;
    int32_t hyper_id[MMI_OPT_NHYPER]; /* MM_MODEL_* ids */
    double hyper_val[MMI_OPT_NHYPER];
    int32_t has_state; /* steps, layer_step and buf_init were present */
    int64_t steps;
    int64_t *layer_step; /* n_layers entries (allocated with layers) */
    int32_t *buf_init;   /* n_layers entries */
    mmi_alloc alloc;
} mmi_arch;

void mmi_arch_free(mmi_arch *a);

/* Builds the "architecture" JSON of a finalized model into a new allocation (*out, *cap bytes,
 * NUL-terminated). Returns MM_OK, MM_E_NOMEM or MM_E_INTERNAL with text in e. */
int mmi_arch_to_json(const mm_model *m, char **out, size_t *cap, mmi_err *e);
/* Builds the "optimizer" JSON (m must have an optimizer); with_state adds the step counts. */
int mmi_optim_to_json(mm_model *m, int with_state, char **out, size_t *cap, mmi_err *e);

/* Parses "architecture" JSON text into a (allocated through al). Returns MM_OK, MM_E_FORMAT,
 * MM_E_NOMEM with text in e. */
int mmi_arch_parse(mmi_arch *a, const char *text, size_t len, const mmi_alloc *al, mmi_err *e);
/* Parses "optimizer" JSON text into a's optimizer fields (after mmi_arch_parse or
 * mmi_arch_infer: per-layer arrays must have n_layers entries). Returns MM_OK or MM_E_FORMAT. */
int mmi_optim_parse(mmi_arch *a, const char *text, size_t len, const mmi_alloc *al, mmi_err *e);
/* Infers the architecture of a plain PyTorch nn.Sequential file (no architecture metadata):
 * consecutive indices 0..L-1 each holding parameters: a 2-D weight (and optional bias) is a
 * Linear, a 1-D weight and bias a LayerNorm(eps 1e-5), a 1-D weight alone an RMSNorm(eps
 * FLT_EPSILON). Parameter-free layers (activations) cannot be inferred. Returns MM_OK or
 * MM_E_FORMAT with text saying why. */
int mmi_arch_infer(mmi_arch *a, const mmi_st_file *f, const mmi_alloc *al, mmi_err *e);

/* Stable names of optimizer kinds and hyperparameters in files, or NULL. */
const char *mmi_optim_kind_name(int32_t kind);
const char *mmi_optim_hyper_name(int32_t id);

#endif /* MMI_MODEL_IO_H */
