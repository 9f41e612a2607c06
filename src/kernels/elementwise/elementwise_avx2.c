/* SPDX-License-Identifier: MIT */
/* elementwise_avx2.c — the elementwise family's AVX2+FMA dispatch table: the variants in
 * act_avx2.c, optim_update_avx2.c and reduce_avx2.c, compiled with the same flags. */
#include "../simd/mmi_avx2_target.h"
#include "mmi_elementwise.h"

#if defined(__AVX2__) && defined(__FMA__)
static const mmi_elementwise_isa k_avx2 = {
    mmi_act_forward_avx2,   mmi_act_backward_avx2, mmi_adam_update_avx2, mmi_rmsprop_update_avx2,
    mmi_add_rows_avx2,      mmi_colsum_f64_avx2,   mmi_sumsq_f64_avx2,   mmi_lerp_avx2,
    mmi_bias_act_rows_avx2, mmi_exp_avx2,
};

const mmi_elementwise_isa *mmi_elementwise_isa_avx2(void) { return &k_avx2; }
#else /* no AVX2/FMA in this build: the portable bodies run */
const mmi_elementwise_isa *mmi_elementwise_isa_avx2(void) { return NULL; }
#endif
