/* SPDX-License-Identifier: MIT */
/*
 * mmi_avx2_target.h — included first by every *_avx2.c file, before any other header.
 *
 * The Makefile compiles *_avx2.c with -mavx2 -mfma. A build system that compiles src/ with one
 * set of flags (as an embedder's does) would leave those files without AVX2 and the library
 * without its fast paths; with GCC the pragma below compiles them for AVX2+FMA anyway (it also
 * defines __AVX2__ and __FMA__, which the files test). That is safe because nothing in these
 * files runs before the dispatch (src/kernels/simd) has checked that the CPU and OS run AVX2,
 * except the table getters, which only return an address. Other compilers need the flags.
 * -DMMI_NO_AVX2 (without -mavx2) leaves the files empty: a portable-only build
 * (`make AVX2_FLAGS=-DMMI_NO_AVX2`).
 */
#ifndef MMI_AVX2_TARGET_H
#define MMI_AVX2_TARGET_H

#if !defined(MMI_NO_AVX2) && !defined(__AVX2__) && (defined(__x86_64__) || defined(__i386__)) &&   \
    defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 5
#pragma GCC target("avx2,fma")
#endif

#endif /* MMI_AVX2_TARGET_H */
