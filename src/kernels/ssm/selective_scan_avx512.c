/* SPDX-License-Identifier: MIT */
/* selective_scan_avx512.c — the SSM family's AVX-512 (F/DQ/BW/VL) dispatch table. Not written yet: the
 * getter returns NULL and the dispatch keeps the family's AVX2 table on the AVX-512 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_ssm_kernels.h"

const mmi_ssm_isa *mmi_ssm_isa_avx512(void) { return NULL; }
