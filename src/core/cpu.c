/* SPDX-License-Identifier: MIT */
/* cpu.c — what the processor and the operating system let libmm run: AVX2 with FMA (the OS
 * saving ymm state) and AVX-512 F/DQ/BW/VL (the OS saving opmask and zmm state). Reads CPUID
 * and XGETBV on every call and keeps nothing; the kernels' dispatch (src/kernels/simd) asks
 * once and combines the answer with what the build compiled. */
#include "mmi.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define MMI_CPU_X86 1

/* XCR0: which register state the OS saves on a context switch. A CPU may have AVX while the
 * OS does not save ymm registers; using them then corrupts other threads' state. */
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

uint32_t mmi_cpu_features(void)
{
    uint32_t f = 0;
#ifdef MMI_CPU_X86
    unsigned a, b, c, d;
    const unsigned avx512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31); /* F DQ BW VL */
    uint64_t x;
    int fma;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* OSXSAVE (bit 27: XGETBV is usable) and AVX (bit 28); FMA is bit 12. */
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0;
    fma = (c >> 12) & 1;
    x = xcr0();
    if ((x & 0x6) != 0x6) return 0; /* xmm and ymm state */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (fma && (b & (1u << 5))) f |= MMI_CPU_AVX2_FMA;
    /* AVX-512 also needs opmask, upper zmm0-15 and zmm16-31 state (XCR0 bits 5, 6, 7). */
    if ((f & MMI_CPU_AVX2_FMA) && (x & 0xe6) == 0xe6 && (b & avx512) == avx512) f |= MMI_CPU_AVX512;
#endif
    return f;
}
