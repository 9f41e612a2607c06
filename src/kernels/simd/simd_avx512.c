/* SPDX-License-Identifier: MIT */
/* simd_avx512.c — tells the dispatch whether this build compiled the AVX-512 kernels: it is
 * built with the same flags as every other *_avx512.c file. */
#include "mmi_avx512_target.h"
#include "mmi_simd.h"

int mmi_simd_avx512_built(void)
{
#ifdef MMI_HAVE_AVX512
    return 1;
#else
    return 0;
#endif
}
