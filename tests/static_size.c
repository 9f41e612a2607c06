/* SPDX-License-Identifier: MIT */
/* static_size.c — README's one-call example (a GEMM and a zero-copy tensor view), linked
 * statically with -Wl,--gc-sections by `make check-static-size` to measure what an embedder
 * pays for two functions of lib/libmm.a. */
#include <mm.h>
#include <stdio.h>

int main(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3, row-major */
    float b[6] = {1, 0, 0, 1, 1, 1}; /* 3 x 2 */
    float c[4];
    int64_t shape[2] = {2, 2};
    mm_tensor *t = NULL;
    int rc = mm_sgemm(MM_NO_TRANS, MM_NO_TRANS, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, NULL, 0);
    if (rc != MM_OK) {
        fprintf(stderr, "%s\n", mm_status_str(rc));
        return 1;
    }
    rc = mm_tensor_wrap(&t, c, 2, shape, NULL);
    if (rc != MM_OK) return 1;
    printf("%s: C[1][1] = %g\n", mm_version_string(), mm_tensor_data(t)[3]);
    mm_tensor_free(t);
    return c[3] == 11 ? 0 : 1;
}
