/* SPDX-License-Identifier: MIT */
/* attn_simd_avx512.c — the attention family's AVX-512 (F/DQ/BW/VL) dispatch table. Not written yet: the
 * getter returns NULL and the dispatch keeps the family's AVX2 table on the AVX-512 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_attn_kernels.h"

const mmi_attn_isa *mmi_attn_isa_avx512(void) { return NULL; }
