/* SPDX-License-Identifier: MIT */
/* shared_smoke.c — links lib/libmm.so like a user (only exported mm_* symbols) and checks that
 * the loaded library matches the header it was built with, and that a 0.1 binary's call to
 * mm_policy_opts_init (symbol version LIBMM_0.1, a 400-byte struct) writes no byte past 400. */
#define _GNU_SOURCE /* dlvsym */
#include "mm.h"

#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <dlfcn.h>
#endif

/* 1: the 0.1 entry wrote 400 bytes and a policy accepts them; 0: it did not; -1: no dlvsym. */
static int opts_init_0_1_ok(void)
{
#if defined(__GLIBC__)
    typedef int (*init_fn)(void *, int32_t);
    union {
        unsigned char b[sizeof(mm_policy_opts) + 64];
        mm_policy_opts o;
        double align;
    } u;
    void *h = dlopen("libmm.so.0", RTLD_NOW | RTLD_NOLOAD);
    init_fn f;
    mm_policy *p = NULL;
    float lo = -1, hi = 1;
    int ok;
    if (!h) h = dlopen("libmm.so.0", RTLD_NOW);
    f = h ? (init_fn)(void (*)(void))dlvsym(h, "mm_policy_opts_init", "LIBMM_0.1") : NULL;
    if (!f) return 0;
    memset(u.b, 0xA5, sizeof u.b);
    ok = f(&u.o, MM_ALGO_TD3) == MM_OK && u.o.struct_size == 400 && u.o.algo == MM_ALGO_TD3;
    for (size_t i = 400; i < sizeof u.b; i++) ok = ok && u.b[i] == 0xA5;
    /* what a 0.1 program then does: set its fields and create */
    u.o.obs_dim = 3, u.o.act_low = &lo, u.o.act_high = &hi;
    ok = ok && mm_policy_create(&p, &u.o) == MM_OK;
    mm_policy_free(p);
    dlclose(h);
    return ok;
#else
    return -1;
#endif
}

int main(void)
{
    float a[4] = {1, 2, 3, 4}, c[4] = {0};
    int v01;
    int ok = mm_version_number() == MM_VERSION_NUMBER && mm_abi_version() == MM_ABI_VERSION &&
             strcmp(mm_version_string(), MM_VERSION_STRING) == 0;
    ok = ok &&
         mm_sgemm(MM_NO_TRANS, MM_TRANS, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2, NULL, 0) == MM_OK;
    ok = ok && c[0] == 5 && c[1] == 11 && c[2] == 11 && c[3] == 25;
    ok = ok && mm_sgemm(2, 0, 1, 1, 1, 1.0f, a, 1, a, 1, 0.0f, c, 1, NULL, 0) == MM_E_INVALID_ARG;
    v01 = opts_init_0_1_ok();
    ok = ok && v01 != 0;
    printf("shared library smoke test: %s (%s; 0.1 mm_policy_opts_init: %s)\n",
           ok ? "ok" : "FAILED", mm_build_info(),
           v01 > 0 ? "400 bytes" : (v01 < 0 ? "not checked, no dlvsym" : "FAILED"));
    return ok ? 0 : 1;
}
