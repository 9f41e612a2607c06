/* SPDX-License-Identifier: MIT */
/*
 * mmi_avx512_target.h — included first by every *_avx512.c file, before any other header.
 *
 * The Makefile compiles *_avx512.c with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2
 * -mfma. As for the AVX2 files (mmi_avx2_target.h), a build system that compiles src/ with one
 * set of flags still gets the AVX-512 code under GCC through the target pragma below; nothing in
 * these files runs before the dispatch (src/kernels/simd) has checked that the CPU and the OS
 * (opmask and zmm state in XCR0) run AVX-512 F/DQ/BW/VL, except the table getters, which only
 * return an address. -DMMI_NO_AVX512 or -DMMI_NO_AVX2 (without the AVX-512 flags) leaves the
 * files empty.
 */
#ifndef MMI_AVX512_TARGET_H
#define MMI_AVX512_TARGET_H

#if !defined(MMI_NO_AVX512) && !defined(MMI_NO_AVX2) && !defined(__AVX512F__) &&                   \
    (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) &&      \
    __GNUC__ >= 7
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#endif

/* What the *_avx512.c files test to decide whether they hold code. */
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) &&                      \
    defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__) && !defined(MMI_NO_AVX512)
#define MMI_HAVE_AVX512 1
#endif

#endif /* MMI_AVX512_TARGET_H */
