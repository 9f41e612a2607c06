/* SPDX-License-Identifier: MIT */
/*
 * mmi_simd.h — which instruction-set path the kernels run, chosen once per process.
 *
 * Every kernel family (gemm, elementwise, attn, ssm, loss) has a portable C body and may have
 * faster variants for AVX2+FMA and AVX-512. A path is *available* when this build compiled it
 * (the *_avx2.c files were built with the AVX2 flags) and the CPU and OS run it
 * (mmi_cpu_features). The first call to mmi_simd_path_get resolves the path once: the best
 * available one, or the one the MM_SIMD environment variable names (portable, avx2, avx512;
 * when that path is not available, the best available one below it). That one value, written
 * once (pthread_once) and immutable after, is the library's only global state.
 *
 * Each family header has an inline selector, mmi_<family>_for(path), giving the family's best
 * table at or below the path, and the kernels call it with mmi_simd_path_get(). Because the
 * selectors are per family and inline, a program that links only the GEMM (a static link with
 * --gc-sections) links no other family's kernels. A family whose variant for a path was not
 * written uses its next lower variant, so AVX-512 kernels can be added one family at a time.
 */
#ifndef MMI_SIMD_H
#define MMI_SIMD_H

#include "../../core/mmi.h"

typedef enum mmi_simd_path {
    MMI_SIMD_PORTABLE = 0,
    MMI_SIMD_AVX2 = 1,   /* AVX2 + FMA */
    MMI_SIMD_AVX512 = 2, /* AVX-512 F/DQ/BW/VL */
    MMI_SIMD_NPATHS = 3
} mmi_simd_path;

/* Each family's table of ISA variants (declared in the family headers). */
struct mmi_gemm_ukr;
struct mmi_elementwise_isa;
struct mmi_attn_isa;
struct mmi_ssm_isa;
struct mmi_loss_tile_ops;

/* Every family's table for one path (tests and benchmarks compare paths with it; the kernels
 * use the family selectors). gemm and loss always hold a table (their portable sets
 * are tables too); elementwise, attn and ssm are NULL on the portable path, where the family
 * runs its plain C bodies. */
typedef struct mmi_dispatch {
    mmi_simd_path path;
    const struct mmi_gemm_ukr *gemm;
    const struct mmi_elementwise_isa *elementwise;
    const struct mmi_attn_isa *attn;
    const struct mmi_ssm_isa *ssm;
    const struct mmi_loss_tile_ops *loss;
} mmi_dispatch;

/* The path chosen for this process (resolved on the first call, thread-safe). */
mmi_simd_path mmi_simd_path_get(void);

/* Fills *out with the tables of path p and returns 1, or returns 0 when p is not available
 * (not compiled, or not run by this CPU/OS). Lets tests compare paths whatever was chosen. */
int mmi_dispatch_for(mmi_simd_path p, mmi_dispatch *out);

/* 1 if this build compiled path p's kernels (the portable path always). */
int mmi_simd_compiled(mmi_simd_path p);
/* 1 if p is compiled and the CPU and OS run it. */
int mmi_simd_available(mmi_simd_path p);
/* "portable", "avx2", "avx512". */
const char *mmi_simd_name(mmi_simd_path p);

/* Defined in simd_avx2.c, compiled with the AVX2 flags: 1 if they were given. */
int mmi_simd_avx2_built(void);
/* Defined in simd_avx512.c, compiled with the AVX-512 flags: 1 if they were given. */
int mmi_simd_avx512_built(void);

#endif /* MMI_SIMD_H */
