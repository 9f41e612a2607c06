/* SPDX-License-Identifier: MIT */
/* enums.c — the named integer constants of mm.h that are not parameter ids (status codes,
 * kinds, flags), by name, so bindings read them from the library instead of copying numbers
 * (mm_enum_count / mm_enum_info; parameters are in params.c). A constant added to mm.h is
 * added here too: the Python binding's tests compare this table with the header. */
#include "mmi.h"

typedef struct {
    const char *name;
    int32_t value;
} enum_entry;

/* E() spells each name once, so a name and its value cannot disagree. */
#define E(x)                                                                                       \
    {                                                                                              \
#x, (int32_t)(x)                                                                           \
    }
static const enum_entry k_enums[] = {
    E(MM_OK),
    E(MM_E_INVALID_ARG),
    E(MM_E_NOMEM),
    E(MM_E_SHAPE),
    E(MM_E_DTYPE),
    E(MM_E_RANGE),
    E(MM_E_STATE),
    E(MM_E_UNSUPPORTED),
    E(MM_E_FORMAT),
    E(MM_E_VERSION),
    E(MM_E_IO),
    E(MM_E_NUMERIC),
    E(MM_E_BUFFER_TOO_SMALL),
    E(MM_E_INTERNAL),
    E(MM_NO_TRANS),
    E(MM_TRANS),
    E(MM_ACT_RELU),
    E(MM_ACT_TANH),
    E(MM_ACT_SIGMOID),
    E(MM_ACT_GELU),
    E(MM_ACT_SILU),
    E(MM_ACT_ELU),
    E(MM_ACT_SOFTPLUS),
    E(MM_ACT_RELU2),
    E(MM_INIT_DEFAULT),
    E(MM_INIT_ORTHOGONAL),
    E(MM_OPT_SGD),
    E(MM_OPT_MOMENTUM),
    E(MM_OPT_ADAM),
    E(MM_OPT_ADAMW),
    E(MM_OPT_RMSPROP),
    E(MM_LOSS_CLIP),
    E(MM_LOSS_SIGLIP),
    E(MM_LOSS_ITC),
    E(MM_LOSS_CROSS_ENTROPY),
    E(MM_LOSS_BCE),
    E(MM_LOSS_KIMI),
    E(MM_SAVE_OPTIMIZER_STATE),
    E(MM_SSM_SELECTIVE),
    E(MM_SSM_SSD),
    E(MM_SSM_S4D),
    E(MM_SSM_S4),
    E(MM_SSM_LRU),
    E(MM_HIPPO_LEGS),
    E(MM_HIPPO_LEGT),
    E(MM_HIPPO_LAGT),
    E(MM_HIPPO_FOUT),
    E(MM_DISC_FORWARD_EULER),
    E(MM_DISC_BACKWARD_EULER),
    E(MM_DISC_BILINEAR),
    E(MM_DISC_ZOH),
    E(MM_DISC_DIAGONAL),
    E(MM_SSM_DELTA_SOFTPLUS),
    E(MM_S4D_LIN),
    E(MM_S4D_INV),
    E(MM_ATTN_SOFTMAX),
    E(MM_ATTN_LINEAR),
    E(MM_ATTN_PERFORMER),
    E(MM_ATTN_RELU2),
    E(MM_ATTN_SPARSE),
    E(MM_ATTN_GATED),
    E(MM_ATTN_RWKV6),
    E(MM_FMAP_ELU1),
    E(MM_FMAP_RELU),
    E(MM_FMAP_IDENTITY),
    E(MM_SPARSE_LOCAL),
    E(MM_SPARSE_STRIDED),
    E(MM_GATE_NONE),
    E(MM_GATE_RETNET),
    E(MM_ALGO_DDPG),
    E(MM_ALGO_TD3),
    E(MM_ALGO_A2C),
    E(MM_ALGO_QAC),
    E(MM_ALGO_PPO),
    E(MM_ALGO_TRPO),
    E(MM_ALGO_SAC),
    E(MM_NOISE_NONE),
    E(MM_NOISE_GAUSSIAN),
    E(MM_NOISE_OU),
    E(MM_MEMORY_NONE),
    E(MM_MEMORY_LRU),
    E(MM_POLICY_SAVE_CHECKPOINT),
    E(MM_EXPORT_TANH_RESCALE),
    E(MM_EXPORT_CLIP),
    E(MM_EXPORT_ARGMAX),
    E(MM_EXPORT_TANH_MEAN),
    E(MM_COMM_LOCAL_LOSS),
};
#undef E

MM_API int32_t mm_enum_count(void) { return (int32_t)(sizeof k_enums / sizeof k_enums[0]); }

MM_API int mm_enum_info(int32_t index, const char **name, int32_t *value)
{
    if (index < 0 || index >= mm_enum_count()) return MM_E_RANGE;
    if (name) *name = k_enums[index].name;
    if (value) *value = k_enums[index].value;
    return MM_OK;
}
