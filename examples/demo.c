/* demo.c — `make demo`: what libmm is and does today. Prints the version and build features,
 * then multiplies two 512 x 512 matrices with mm_sgemm, checks a few entries against a plain
 * float64 dot product and reports the speed. Later releases make this the RL demo. */
#include <mm.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void)
{
    const int64_t n = 512;
    float *a = malloc(sizeof(float) * (size_t)(n * n));
    float *b = malloc(sizeof(float) * (size_t)(n * n));
    float *c = malloc(sizeof(float) * (size_t)(n * n));
    size_t ws_size = mm_sgemm_workspace_size();
    void *ws = aligned_alloc(64, (ws_size + 63) / 64 * 64);
    double best = 1e30, max_err = 0;
    int rc = MM_OK;

    if (!a || !b || !c || !ws) return 1;
    printf("libmm %s  ABI %u  (%s)\n", mm_version_string(), (unsigned)mm_abi_version(),
           mm_build_info());
    for (int64_t i = 0; i < n * n; i++) {
        a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
    for (int rep = 0; rep < 5 && rc == MM_OK; rep++) {
        double t0 = now_s();
        rc = mm_sgemm(MM_NO_TRANS, MM_NO_TRANS, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, ws,
                      ws_size);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    if (rc != MM_OK) {
        fprintf(stderr, "mm_sgemm failed: %s\n", mm_status_str(rc));
        return 1;
    }
    for (int64_t s = 0; s < 64; s++) { /* spot-check entries against float64 */
        int64_t i = (s * 37) % n, j = (s * 91) % n;
        double ref = 0;
        for (int64_t p = 0; p < n; p++) ref += (double)a[i * n + p] * b[p * n + j];
        max_err = fmax(max_err, fabs(ref - c[i * n + j]));
    }
    printf("sgemm %lldx%lldx%lld: %.2f ms, %.1f GFLOP/s, max |error| vs float64 %.2e\n",
           (long long)n, (long long)n, (long long)n, best * 1e3, 2.0 * n * n * n / best / 1e9,
           max_err);
    free(a);
    free(b);
    free(c);
    free(ws);
    return max_err < 1e-3 ? 0 : 1;
}
