/* SPDX-License-Identifier: MIT */
/* test_simd.c — the kernels' instruction-set dispatch (src/kernels/simd): the chosen path is
 * one this build compiled and this CPU runs, MM_SIMD is obeyed, every family's table matches
 * the path, mm_build_info names it, and the one-time resolution is the same from every thread. */
#include "runner.h"
#include "kernels/attn/mmi_attn_kernels.h"
#include "kernels/elementwise/mmi_elementwise.h"
#include "kernels/gemm/mmi_gemm.h"
#include "kernels/loss/mmi_loss_kernels.h"
#include "kernels/ssm/mmi_ssm_kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Availability is compiled AND supported; the portable path always is. */
static void test_simd_available(void)
{
    CHECK(mmi_simd_compiled(MMI_SIMD_PORTABLE) && mmi_simd_available(MMI_SIMD_PORTABLE));
    for (int p = 0; p < MMI_SIMD_NPATHS; p++)
        if (mmi_simd_available((mmi_simd_path)p)) CHECK(mmi_simd_compiled((mmi_simd_path)p));
    CHECK(mmi_simd_available(MMI_SIMD_AVX2) ==
          (mmi_simd_compiled(MMI_SIMD_AVX2) && (mmi_cpu_features() & MMI_CPU_AVX2_FMA)));
    /* Every family's AVX2 set exists exactly when the build compiled the AVX2 path. */
    CHECK((mmi_gemm_ukr_avx2() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK((mmi_loss_tile_ops_avx2() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK((mmi_elementwise_isa_avx2() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK((mmi_attn_isa_avx2() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK((mmi_ssm_isa_avx2() != NULL) == mmi_simd_compiled(MMI_SIMD_AVX2));
    CHECK(!mmi_simd_available(MMI_SIMD_NPATHS));
    CHECK(strcmp(mmi_simd_name(MMI_SIMD_AVX512), "avx512") == 0);
}

/* The chosen path: the best available one, or what MM_SIMD asks for (clamped to what is
 * available), and its tables are the ones mmi_dispatch_for gives for it. */
static void test_simd_chosen_path(void)
{
    mmi_dispatch dd, *d = &dd;
    const char *env = getenv("MM_SIMD");
    mmi_dispatch again;
    int best = MMI_SIMD_NPATHS - 1;
    while (!mmi_simd_available((mmi_simd_path)best)) best--;
    CHECK(mmi_dispatch_for(mmi_simd_path_get(), d) == 1);
    CHECK(mmi_simd_available(d->path));
    if (!env || !*env)
        CHECK((int)d->path == best);
    else if (strcmp(env, "portable") == 0)
        CHECK(d->path == MMI_SIMD_PORTABLE);
    else if (strcmp(env, "avx2") == 0)
        CHECK((int)d->path == (best < 1 ? best : 1));
    else if (strcmp(env, "avx512") == 0)
        CHECK((int)d->path == best);
    CHECK(mmi_dispatch_for(d->path, &again) == 1);
    CHECK(again.path == d->path && again.gemm == d->gemm && again.loss == d->loss &&
          again.elementwise == d->elementwise && again.attn == d->attn && again.ssm == d->ssm);
    CHECK(d->gemm != NULL && d->loss != NULL);
    CHECK(mmi_loss_tile_ops_get() == d->loss);
    if (d->path == MMI_SIMD_PORTABLE) {
        CHECK(d->gemm == &mmi_gemm_ukr_portable && d->loss == &mmi_loss_tile_ops_portable);
        CHECK(d->elementwise == NULL && d->attn == NULL && d->ssm == NULL);
    } else if (d->path == MMI_SIMD_AVX2) {
        CHECK(d->gemm == mmi_gemm_ukr_avx2() && d->elementwise == mmi_elementwise_isa_avx2());
    } else { /* AVX-512: each family's AVX-512 table where written, else its AVX2 one */
        CHECK(d->gemm == (mmi_gemm_ukr_avx512() ? mmi_gemm_ukr_avx512() : mmi_gemm_ukr_avx2()));
        CHECK(d->elementwise == (mmi_elementwise_isa_avx512() ? mmi_elementwise_isa_avx512()
                                                              : mmi_elementwise_isa_avx2()));
        CHECK(d->loss ==
              (mmi_loss_tile_ops_avx512() ? mmi_loss_tile_ops_avx512() : mmi_loss_tile_ops_avx2()));
        CHECK(d->attn == (mmi_attn_isa_avx512() ? mmi_attn_isa_avx512() : mmi_attn_isa_avx2()));
        CHECK(d->ssm == (mmi_ssm_isa_avx512() ? mmi_ssm_isa_avx512() : mmi_ssm_isa_avx2()));
    }
}

/* The AVX-512 path: compiled exactly when its marker file was, available exactly when also
 * the CPU and OS run it, and no family hands out an AVX-512 table from a build without it. On
 * a machine without AVX-512 the kernels' own comparisons cannot run: reported as a skip. */
static void test_simd_avx512(void)
{
    int built = mmi_simd_compiled(MMI_SIMD_AVX512);
    CHECK(built == (mmi_simd_avx2_built() && mmi_simd_avx512_built()));
    CHECK(mmi_simd_available(MMI_SIMD_AVX512) ==
          (built && (mmi_cpu_features() & MMI_CPU_AVX512) != 0));
    if (!built) {
        CHECK(mmi_gemm_ukr_avx512() == NULL && mmi_loss_tile_ops_avx512() == NULL);
        CHECK(mmi_elementwise_isa_avx512() == NULL && mmi_attn_isa_avx512() == NULL);
        CHECK(mmi_ssm_isa_avx512() == NULL);
    }
    if (!mmi_simd_available(MMI_SIMD_AVX512))
        mmt_skip(built ? "this CPU or OS does not run AVX-512 F/DQ/BW/VL"
                       : "this build did not compile the AVX-512 path");
}

/* A path this build or CPU cannot run is refused, and the output is left alone. */
static void test_simd_unavailable_refused(void)
{
    mmi_dispatch d;
    memset(&d, 0xab, sizeof d);
    CHECK(mmi_dispatch_for(MMI_SIMD_NPATHS, &d) == 0);
    CHECK(mmi_dispatch_for((mmi_simd_path)-1, &d) == 0);
    for (int p = 0; p < MMI_SIMD_NPATHS; p++)
        CHECK(mmi_dispatch_for((mmi_simd_path)p, &d) == mmi_simd_available((mmi_simd_path)p));
}

/* mm_build_info names the dispatched path ("none" for portable, as in 0.1). */
static void test_simd_build_info(void)
{
    const char *info = mm_build_info();
    mmi_simd_path p = mmi_simd_path_get();
    char want[32];
    snprintf(want, sizeof want, "simd=%s ", p == MMI_SIMD_PORTABLE ? "none" : mmi_simd_name(p));
    CHECK(strncmp(info, want, strlen(want)) == 0);
}

static void *get_path(void *arg)
{
    *(mmi_simd_path *)arg = mmi_simd_path_get();
    return NULL;
}

/* The one-time resolution from several threads at once yields one path (run under TSan by
 * check-tsan: the name contains "threads"). */
static void test_simd_threads_once(void)
{
    enum { T = 4 };
    pthread_t th[T];
    mmi_simd_path got[T];
    for (int i = 0; i < T; i++) CHECK(pthread_create(&th[i], NULL, get_path, &got[i]) == 0);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) CHECK(got[i] == mmi_simd_path_get());
}

/* The kernels' own selectors give the tables mmi_dispatch_for gives, on every available path. */
static void test_simd_family_selectors(void)
{
    for (int p = 0; p < MMI_SIMD_NPATHS; p++) {
        mmi_dispatch d;
        mmi_simd_path sp = (mmi_simd_path)p;
        if (!mmi_dispatch_for(sp, &d)) continue;
        CHECK(d.gemm == mmi_gemm_ukr_for(sp) && d.loss == mmi_loss_tile_ops_for(sp));
        CHECK(d.elementwise == mmi_elementwise_isa_for(sp) && d.attn == mmi_attn_isa_for(sp));
        CHECK(d.ssm == mmi_ssm_isa_for(sp));
    }
    CHECK(mmi_elementwise_isa_get() == mmi_elementwise_isa_for(mmi_simd_path_get()));
}

void suite_simd(void)
{
    mmt_run("simd_available", test_simd_available);
    mmt_run("simd_chosen_path", test_simd_chosen_path);
    mmt_run("simd_avx512", test_simd_avx512);
    mmt_run("simd_unavailable_refused", test_simd_unavailable_refused);
    mmt_run("simd_build_info", test_simd_build_info);
    mmt_run("simd_threads_once", test_simd_threads_once);
    mmt_run("simd_family_selectors", test_simd_family_selectors);
}
