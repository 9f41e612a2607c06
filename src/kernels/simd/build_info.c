/* SPDX-License-Identifier: MIT */
/* build_info.c — mm_build_info: the SIMD path the kernels actually run (as dispatched, so it
 * reflects both the build and the CPU, and MM_SIMD), the BLAS switch and the thread layer. */
#include "mmi_simd.h"

#ifdef MM_HAVE_OPENBLAS
#define MMI_BLAS "openblas"
#else
#define MMI_BLAS "none"
#endif

MM_API const char *mm_build_info(void)
{
    static const char *const info[MMI_SIMD_NPATHS] = {
        "simd=none blas=" MMI_BLAS " threads=pthread",
        "simd=avx2 blas=" MMI_BLAS " threads=pthread",
        "simd=avx512 blas=" MMI_BLAS " threads=pthread",
    };
    return info[mmi_simd_path_get()];
}
