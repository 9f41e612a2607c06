/* SPDX-License-Identifier: MIT */
/* shared_smoke.c — links lib/libmm.so like a user (only exported mm_* symbols) and checks that
 * the loaded library matches the header it was built with. */
#include "mm.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    float a[4] = {1, 2, 3, 4}, c[4] = {0};
    int ok = mm_version_number() == MM_VERSION_NUMBER && mm_abi_version() == MM_ABI_VERSION &&
             strcmp(mm_version_string(), MM_VERSION_STRING) == 0;
    ok = ok && mm_sgemm(MM_NO_TRANS, MM_TRANS, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2, NULL, 0) ==
                   MM_OK;
    ok = ok && c[0] == 5 && c[1] == 11 && c[2] == 11 && c[3] == 25;
    ok = ok && mm_sgemm(2, 0, 1, 1, 1, 1.0f, a, 1, a, 1, 0.0f, c, 1, NULL, 0) == MM_E_INVALID_ARG;
    printf("shared library smoke test: %s (%s)\n", ok ? "ok" : "FAILED", mm_build_info());
    return ok ? 0 : 1;
}
