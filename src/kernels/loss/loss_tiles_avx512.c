/* SPDX-License-Identifier: MIT */
/* loss_tiles_avx512.c — the loss tiles' family's AVX-512 (F/DQ/BW/VL) dispatch table. Not written yet: the
 * getter returns NULL and the dispatch keeps the family's AVX2 table on the AVX-512 path. */
#include "../simd/mmi_avx512_target.h"
#include "mmi_loss_kernels.h"

const mmi_loss_tile_ops *mmi_loss_tile_ops_avx512(void) { return NULL; }
