/* version.c — run-time mirrors of the version macros and the build feature string. */
#include "mmi.h"

MM_API uint32_t mm_version_number(void) { return MM_VERSION_NUMBER; }

MM_API const char *mm_version_string(void) { return MM_VERSION_STRING; }

MM_API uint32_t mm_abi_version(void) { return MM_ABI_VERSION; }

#ifdef MM_HAVE_OPENBLAS
#define MMI_BLAS "openblas"
#else
#define MMI_BLAS "none"
#endif

MM_API const char *mm_build_info(void)
{
    /* The SIMD path is chosen at run time, so the string reflects the CPU we run on. */
    return mmi_cpu_has_avx2_fma() ? "simd=avx2 blas=" MMI_BLAS " threads=pthread"
                                  : "simd=none blas=" MMI_BLAS " threads=pthread";
}
