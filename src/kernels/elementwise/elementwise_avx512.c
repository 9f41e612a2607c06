/* SPDX-License-Identifier: MIT */
/* elementwise_avx512.c — the elementwise family's AVX-512 (F/DQ/BW/VL) dispatch table: the
 * variants in act_avx512.c, optim_update_avx512.c and reduce_avx512.c, compiled with the same
 * flags. Every entry is an AVX-512 body; the contracts are the AVX2 table's (mmi_elementwise.h). */
#include "../simd/mmi_avx512_target.h"
#include "mmi_elementwise.h"

#ifdef MMI_HAVE_AVX512
static const mmi_elementwise_isa k_avx512 = {
    mmi_act_forward_avx512,   mmi_act_backward_avx512,
    mmi_adam_update_avx512,   mmi_rmsprop_update_avx512,
    mmi_add_rows_avx512,      mmi_colsum_f64_avx512,
    mmi_sumsq_f64_avx512,     mmi_lerp_avx512,
    mmi_bias_act_rows_avx512, mmi_exp_avx512,
};

const mmi_elementwise_isa *mmi_elementwise_isa_avx512(void) { return &k_avx512; }
#else /* not compiled for AVX-512: the dispatch keeps the AVX2 table on the AVX-512 path */
const mmi_elementwise_isa *mmi_elementwise_isa_avx512(void) { return NULL; }
#endif
