/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

/* Internal: how a kernel gets an AVX2+FMA build next to its generic one,
 * chosen once at load time by the CPU it runs on (Debian's Faiss is built
 * for generic x86-64, so nothing else gives these instructions).
 *
 * target_clones makes the choice through an ifunc resolver, which the
 * dynamic loader calls while relocating the program, before any sanitizer
 * runtime has started. ThreadSanitizer instruments that resolver and the
 * program crashes before main; under ThreadSanitizer the kernels are
 * therefore built generic only (the code they run is the same C++). */

#if defined(__SANITIZE_THREAD__)
#define FAISS_EHI_GENERIC_KERNELS_ONLY 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FAISS_EHI_GENERIC_KERNELS_ONLY 1
#endif
#endif

#if defined(FAISS_EHI_GENERIC_KERNELS_ONLY) || !defined(__x86_64__)
#define FAISS_EHI_AVX2_CLONES
#else
#define FAISS_EHI_AVX2_CLONES                                                  \
    __attribute__((target_clones("arch=haswell", "default")))
#endif
