/* SPDX-License-Identifier: MIT */
/* version.c — run-time mirrors of the version macros. (mm_build_info, which reports the
 * kernels' dispatch, lives with it in src/kernels/simd/build_info.c.) */
#include "mmi.h"

MM_API uint32_t mm_version_number(void) { return MM_VERSION_NUMBER; }

MM_API const char *mm_version_string(void) { return MM_VERSION_STRING; }

MM_API uint32_t mm_abi_version(void) { return MM_ABI_VERSION; }
