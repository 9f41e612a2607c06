/* cpu.c — run-time CPU feature detection for the SIMD kernel paths. */
#include "mmi.h"

int mmi_cpu_has_avx2_fma(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    /* __builtin_cpu_supports reads a table libgcc fills at load time: no state of ours. */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
