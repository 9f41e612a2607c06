/* SPDX-License-Identifier: MIT */
/* gemm_ukr_avx512.c — the GEMM family's AVX-512 (F/DQ/BW/VL) dispatch table. Not written yet: the
 * getter returns NULL and the dispatch keeps the family's AVX2 table on the AVX-512 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_gemm.h"

const mmi_gemm_ukr *mmi_gemm_ukr_avx512(void) { return NULL; }
