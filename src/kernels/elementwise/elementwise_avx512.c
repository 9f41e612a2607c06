/* SPDX-License-Identifier: MIT */
/* elementwise_avx512.c — the elementwise family's AVX-512 (F/DQ/BW/VL) dispatch table. Not written yet: the
 * getter returns NULL and the dispatch keeps the family's AVX2 table on the AVX-512 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_elementwise.h"

const mmi_elementwise_isa *mmi_elementwise_isa_avx512(void) { return NULL; }
