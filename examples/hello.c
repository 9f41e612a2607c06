/* SPDX-License-Identifier: MIT */
/* hello.c — the smallest libmm program: version check, a tensor, a GEMM.
 * Build against an installed libmm:  cc hello.c $(pkg-config --cflags --libs libmm) */
#include <mm.h>
#include <stdio.h>

int main(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3 */
    float b[6] = {1, 0, 0, 1, 1, 1}; /* 3 x 2 */
    float c[4] = {0};
    int64_t shape[2] = {2, 2};
    mm_tensor *t = NULL;
    int rc;

    if (mm_version_number() < MM_VERSION_NUMBER) {
        fprintf(stderr, "libmm %s is older than the headers\n", mm_version_string());
        return 1;
    }
    rc = mm_sgemm(MM_NO_TRANS, MM_NO_TRANS, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, NULL, 0);
    if (rc != MM_OK) {
        fprintf(stderr, "mm_sgemm: %s\n", mm_status_str(rc));
        return 1;
    }
    rc = mm_tensor_wrap(&t, c, 2, shape, NULL); /* zero-copy view of c */
    if (rc != MM_OK) {
        fprintf(stderr, "mm_tensor_wrap: %s\n", mm_status_str(rc));
        return 1;
    }
    printf("libmm %s (%s)\n", mm_version_string(), mm_build_info());
    printf("C = [[%g, %g], [%g, %g]]\n", c[0], c[1], c[2], c[3]);
    mm_tensor_free(t);
    /* [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]] */
    return (c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11) ? 0 : 1;
}
