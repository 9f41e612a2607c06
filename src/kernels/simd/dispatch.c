/* SPDX-License-Identifier: MIT */
/* dispatch.c — resolves the kernels' instruction-set path once per process and fills the
 * family tables for it (see mmi_simd.h). */
#include "mmi_simd.h"
#include "../attn/mmi_attn_kernels.h"
#include "../elementwise/mmi_elementwise.h"
#include "../gemm/mmi_gemm.h"
#include "../loss/mmi_loss_kernels.h"
#include "../ssm/mmi_ssm_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int mmi_simd_compiled(mmi_simd_path p)
{
    switch (p) {
    case MMI_SIMD_PORTABLE:
        return 1;
    case MMI_SIMD_AVX2:
        return mmi_simd_avx2_built();
    case MMI_SIMD_AVX512:
        return mmi_simd_avx2_built() && mmi_simd_avx512_built();
    default:
        return 0;
    }
}

int mmi_simd_available(mmi_simd_path p)
{
    uint32_t f = mmi_cpu_features();
    if (!mmi_simd_compiled(p)) return 0;
    switch (p) {
    case MMI_SIMD_PORTABLE:
        return 1;
    case MMI_SIMD_AVX2:
        return (f & MMI_CPU_AVX2_FMA) != 0;
    case MMI_SIMD_AVX512:
        return (f & MMI_CPU_AVX512) != 0;
    default:
        return 0;
    }
}

const char *mmi_simd_name(mmi_simd_path p)
{
    static const char *const names[MMI_SIMD_NPATHS] = {"portable", "avx2", "avx512"};
    return (unsigned)p < MMI_SIMD_NPATHS ? names[p] : "unknown";
}

int mmi_dispatch_for(mmi_simd_path p, mmi_dispatch *out)
{
    if ((unsigned)p >= MMI_SIMD_NPATHS || !mmi_simd_available(p)) return 0;
    memset(out, 0, sizeof *out);
    out->path = p;
    out->gemm = mmi_gemm_ukr_for(p);
    out->loss = mmi_loss_tile_ops_for(p);
    out->elementwise = mmi_elementwise_isa_for(p);
    out->attn = mmi_attn_isa_for(p);
    out->ssm = mmi_ssm_isa_for(p);
    return 1;
}

/* The MM_SIMD request, or NPATHS when unset or not recognised (then the best path wins). */
static mmi_simd_path requested_path(void)
{
    const char *s = getenv("MM_SIMD");
    if (!s) return MMI_SIMD_NPATHS;
    if (strcmp(s, "portable") == 0 || strcmp(s, "none") == 0) return MMI_SIMD_PORTABLE;
    if (strcmp(s, "avx2") == 0) return MMI_SIMD_AVX2;
    if (strcmp(s, "avx512") == 0) return MMI_SIMD_AVX512;
    return MMI_SIMD_NPATHS;
}

/* The library's only global state: the path, written once by resolve() under pthread_once and
 * read-only after. g_ready is published (release) after g_path is set, so the kernels' per-call
 * lookup is one acquire load rather than a call into pthread_once. */
static mmi_simd_path g_path;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_ready;

static void resolve(void)
{
    int p = (int)requested_path();
    if (p >= MMI_SIMD_NPATHS) p = MMI_SIMD_NPATHS - 1;
    while (p > MMI_SIMD_PORTABLE && !mmi_simd_available((mmi_simd_path)p)) p--;
    g_path = (mmi_simd_path)p;
    atomic_store_explicit(&g_ready, 1, memory_order_release);
}

mmi_simd_path mmi_simd_path_get(void)
{
    if (!atomic_load_explicit(&g_ready, memory_order_acquire)) pthread_once(&g_once, resolve);
    return g_path;
}
