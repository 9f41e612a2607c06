/* SPDX-License-Identifier: MIT */
/* simd_avx2.c — tells the dispatch whether this build compiled the AVX2+FMA kernels: it is
 * built with the same flags as every other *_avx2.c file. */
#include "mmi_avx2_target.h"
#include "mmi_simd.h"

int mmi_simd_avx2_built(void)
{
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}
