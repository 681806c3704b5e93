/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/scan_kernels.h>

/* GCC 12's AVX-512 headers read an uninitialised "undefined" vector on
 * purpose (_mm512_undefined_ps); its warning points into the header. */
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/fp16.h>

/* Debian's Faiss and this library are compiled for generic x86-64, so the
 * wide kernels carry their instruction set in a target attribute and are
 * only called after cpuid said the CPU has it (scan_kernels()). */
#define EHI_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EHI_AVX512                                                             \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

namespace faiss_ehi {

namespace {

// ---------------------------------------------------------------- generic

float l2_f32_generic(const float* q, const float* x, size_t d) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < d; i++) {
        float t = q[i] - x[i];
        acc += t * t;
    }
    return acc;
}

float ip_f32_generic(const float* q, const float* x, size_t d) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < d; i++) {
        acc += q[i] * x[i];
    }
    return acc;
}

float l2_sq8_generic(const float* qo, const uint8_t* c, const float* scale,
                     size_t d) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < d; i++) {
        float t = qo[i] - scale[i] * float(c[i]);
        acc += t * t;
    }
    return acc;
}

float ip_sq8_generic(const float* qs, const uint8_t* c, size_t d) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < d; i++) {
        acc += qs[i] * float(c[i]);
    }
    return acc;
}

float l2_fp16_generic(const float* q, const uint16_t* c, size_t d) {
    float acc = 0;
    for (size_t i = 0; i < d; i++) {
        float t = q[i] - faiss::decode_fp16(c[i]);
        acc += t * t;
    }
    return acc;
}

float ip_fp16_generic(const float* q, const uint16_t* c, size_t d) {
    float acc = 0;
    for (size_t i = 0; i < d; i++) {
        acc += q[i] * faiss::decode_fp16(c[i]);
    }
    return acc;
}

// ------------------------------------------------------------ AVX2 + FMA

EHI_AVX2 inline float hsum256(__m256 v) {
    __m128 s =
            _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Lanes [0, r) set, r in [0, 8]: the tail of a float row, loaded with
/// maskload, which does not touch the masked-out memory.
EHI_AVX2 inline __m256i tail_mask(size_t r) {
    alignas(32) static const int32_t kMask[16] = {
            -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - r));
}

// Four accumulators: an FMA has a latency of 4-5 cycles and two issue
// ports, so one chain would leave the core waiting on itself.
EHI_AVX2 float l2_f32_avx2(const float* q, const float* x, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 =
                _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8),
                                  _mm256_loadu_ps(x + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 16),
                                  _mm256_loadu_ps(x + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 24),
                                  _mm256_loadu_ps(x + i + 24));
        a0 = _mm256_fmadd_ps(t0, t0, a0);
        a1 = _mm256_fmadd_ps(t1, t1, a1);
        a2 = _mm256_fmadd_ps(t2, t2, a2);
        a3 = _mm256_fmadd_ps(t3, t3, a3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t =
                _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        a0 = _mm256_fmadd_ps(t, t, a0);
    }
    if (i < d) {
        __m256i m = tail_mask(d - i);
        __m256 t = _mm256_sub_ps(_mm256_maskload_ps(q + i, m),
                                 _mm256_maskload_ps(x + i, m));
        a1 = _mm256_fmadd_ps(t, t, a1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

EHI_AVX2 float ip_f32_avx2(const float* q, const float* x, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i),
                             a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),
                             _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16),
                             _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24),
                             _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= d; i += 8) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i),
                             a0);
    }
    if (i < d) {
        __m256i m = tail_mask(d - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m),
                             _mm256_maskload_ps(x + i, m), a1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/// Eight SQ8 codes as floats (0..255).
EHI_AVX2 inline __m256 codes8_sq8(const uint8_t* c) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}

/* SQ8 with the offset folded into the query (qo = q - offset) and, for
 * inner products, the scale too (qs = q * scale): one FMA per component
 * decodes and compares, instead of a decode FMA, a subtraction and the
 * accumulating FMA. Four accumulators, as for floats. */
EHI_AVX2 float l2_sq8_avx2(const float* qo, const uint8_t* c, const float* scale,
                           size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_fnmadd_ps(codes8_sq8(c + i), _mm256_loadu_ps(scale + i),
                                     _mm256_loadu_ps(qo + i));
        __m256 t1 = _mm256_fnmadd_ps(codes8_sq8(c + i + 8),
                                     _mm256_loadu_ps(scale + i + 8),
                                     _mm256_loadu_ps(qo + i + 8));
        __m256 t2 = _mm256_fnmadd_ps(codes8_sq8(c + i + 16),
                                     _mm256_loadu_ps(scale + i + 16),
                                     _mm256_loadu_ps(qo + i + 16));
        __m256 t3 = _mm256_fnmadd_ps(codes8_sq8(c + i + 24),
                                     _mm256_loadu_ps(scale + i + 24),
                                     _mm256_loadu_ps(qo + i + 24));
        a0 = _mm256_fmadd_ps(t0, t0, a0);
        a1 = _mm256_fmadd_ps(t1, t1, a1);
        a2 = _mm256_fmadd_ps(t2, t2, a2);
        a3 = _mm256_fmadd_ps(t3, t3, a3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_fnmadd_ps(codes8_sq8(c + i), _mm256_loadu_ps(scale + i),
                                    _mm256_loadu_ps(qo + i));
        a0 = _mm256_fmadd_ps(t, t, a0);
    }
    float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1),
                                      _mm256_add_ps(a2, a3)));
    for (; i < d; i++) {
        float t = qo[i] - scale[i] * float(c[i]);
        acc += t * t;
    }
    return acc;
}

EHI_AVX2 inline __m256 decode8_fp16(const uint16_t* c) {
    return _mm256_cvtph_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
}

/* The last r < 8 codes of a row as floats, the other lanes 0, where a
 * full 8-code load would read past the row (and could cross into an
 * unmapped page past the end of a list). With `back` (the row has at
 * least 8 codes) the 8 codes that end the row are loaded into a register
 * and shifted down, so that no store and reload through memory stalls
 * (a scalar tail per code, or a copy through a buffer, cost as much as
 * the rest of a 100-d code); shorter rows are assembled code by code. */
EHI_AVX2 inline __m256 codes8_sq8_tail(const uint8_t* c, size_t r,
                                       bool back) {
    uint64_t v = 0;
    if (back) {
        std::memcpy(&v, c + r - 8, 8);
        v >>= 8 * (8 - r);
    } else {
        for (size_t t = 0; t < r; t++) {
            v |= uint64_t(c[t]) << (8 * t);
        }
    }
    return _mm256_cvtepi32_ps(
            _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(v))));
}

EHI_AVX2 inline __m256 decode8_fp16_tail(const uint16_t* c, size_t r,
                                         bool back) {
    __m128i x;
    if (back) {
        x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + r - 8));
        // bytes shifted down by 2 (8 - r); indices past 15 select zero
        __m128i idx = _mm_add_epi8(
                _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                              14, 15),
                _mm_set1_epi8(char(2 * (8 - r))));
        idx = _mm_or_si128(idx, _mm_cmpgt_epi8(idx, _mm_set1_epi8(15)));
        x = _mm_shuffle_epi8(x, idx);
    } else {
        alignas(16) uint16_t v[8] = {};
        for (size_t t = 0; t < r; t++) {
            v[t] = c[t];
        }
        x = _mm_load_si128(reinterpret_cast<const __m128i*>(v));
    }
    return _mm256_cvtph_ps(x);
}

/* Inner products of four compressed codes (SQ8 or fp16) with one query,
 * the kernel of those scans (for SQ8 also L2 with code norms): the query
 * is loaded once for the four codes and the four sums are reduced
 * together, which ran a rows scan of 100-d SQ8 codes 1.5 times faster
 * than one code per call (AVX-512, AMD EPYC). Each code's sum is formed
 * by the same operations in the same order wherever it sits among the
 * four, so a code scored with others, or alone (its pointer passed four
 * times), gets the same value. The four codes' accumulators are named
 * registers, written out per code: with arrays of vectors and a loop over
 * the codes GCC 12 kept them on the stack outside the main loop, and a
 * GloVe SQ8 search (100-d codes, three main-loop steps) ran 15-20%
 * slower. */
template <class T, __m256 (*Load8)(const T*),
          __m256 (*Load8Tail)(const T*, size_t, bool)>
EHI_AVX2 void ip_x4_avx2(const float* q, const T* const* c, size_t d,
                         float* out) {
    const T *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
    // two accumulators per code: eight FMA chains in flight
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 w = _mm256_loadu_ps(q + i), v = _mm256_loadu_ps(q + i + 8);
        a0 = _mm256_fmadd_ps(w, Load8(c0 + i), a0);
        a1 = _mm256_fmadd_ps(w, Load8(c1 + i), a1);
        a2 = _mm256_fmadd_ps(w, Load8(c2 + i), a2);
        a3 = _mm256_fmadd_ps(w, Load8(c3 + i), a3);
        b0 = _mm256_fmadd_ps(v, Load8(c0 + i + 8), b0);
        b1 = _mm256_fmadd_ps(v, Load8(c1 + i + 8), b1);
        b2 = _mm256_fmadd_ps(v, Load8(c2 + i + 8), b2);
        b3 = _mm256_fmadd_ps(v, Load8(c3 + i + 8), b3);
    }
    if (i + 8 <= d) {
        __m256 w = _mm256_loadu_ps(q + i);
        a0 = _mm256_fmadd_ps(w, Load8(c0 + i), a0);
        a1 = _mm256_fmadd_ps(w, Load8(c1 + i), a1);
        a2 = _mm256_fmadd_ps(w, Load8(c2 + i), a2);
        a3 = _mm256_fmadd_ps(w, Load8(c3 + i), a3);
        i += 8;
    }
    if (i < d) {
        const size_t r = d - i;
        const bool back = d >= 8;
        __m256 w = _mm256_maskload_ps(q + i, tail_mask(r));
        b0 = _mm256_fmadd_ps(w, Load8Tail(c0 + i, r, back), b0);
        b1 = _mm256_fmadd_ps(w, Load8Tail(c1 + i, r, back), b1);
        b2 = _mm256_fmadd_ps(w, Load8Tail(c2 + i, r, back), b2);
        b3 = _mm256_fmadd_ps(w, Load8Tail(c3 + i, r, back), b3);
    }
    a0 = _mm256_add_ps(a0, b0);
    a1 = _mm256_add_ps(a1, b1);
    a2 = _mm256_add_ps(a2, b2);
    a3 = _mm256_add_ps(a3, b3);
    // lane sums of a0..a3, each from its own register only
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h),
                                  _mm256_extractf128_ps(h, 1)));
}

constexpr auto ip_sq8_x4_avx2 =
        ip_x4_avx2<uint8_t, codes8_sq8, codes8_sq8_tail>;
constexpr auto ip_fp16_x4_avx2 =
        ip_x4_avx2<uint16_t, decode8_fp16, decode8_fp16_tail>;

/// One code through a four-code kernel (its pointer four times): the
/// value a rows scan gives that code wherever it sits.
template <class T, void (*Four)(const float*, const T* const*, size_t, float*)>
float one_of_four(const float* q, const T* c, size_t d) {
    const T* four[4] = {c, c, c, c};
    float out[4];
    Four(q, four, d, out);
    return out[0];
}

EHI_AVX2 float l2_fp16_avx2(const float* q, const uint16_t* c, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), decode8_fp16(c + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8),
                                  decode8_fp16(c + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 16),
                                  decode8_fp16(c + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 24),
                                  decode8_fp16(c + i + 24));
        a0 = _mm256_fmadd_ps(t0, t0, a0);
        a1 = _mm256_fmadd_ps(t1, t1, a1);
        a2 = _mm256_fmadd_ps(t2, t2, a2);
        a3 = _mm256_fmadd_ps(t3, t3, a3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(q + i), decode8_fp16(c + i));
        a0 = _mm256_fmadd_ps(t, t, a0);
    }
    float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1),
                                      _mm256_add_ps(a2, a3)));
    for (; i < d; i++) {
        float t = q[i] - _cvtsh_ss(c[i]);
        acc += t * t;
    }
    return acc;
}

// ---------------------------------------------------------------- AVX-512
// Tails use masked loads, which neither fault nor read past the row.

EHI_AVX512 inline float hsum512(__m512 v) {
    // Add the upper 256 bits onto the lower ones, then reduce those.
    __m512 s = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    return hsum256(_mm512_castps512_ps256(s));
}

EHI_AVX512 inline __mmask16 mask16(size_t r) {
    return __mmask16((1u << r) - 1);
}

/* Four accumulators over 64 floats per step, as the SQ8 and fp16 kernels:
 * with two, a row in cache (list-major blocking re-reads lists from L1 and
 * L2) waited on the FMA latency, 0.50 ns per 16 floats on an AMD EPYC
 * against 0.3x with four (784-d rows in L1). */
EHI_AVX512 inline __m512 f32_diff(const float* q, const float* x) {
    return _mm512_sub_ps(_mm512_loadu_ps(q), _mm512_loadu_ps(x));
}

EHI_AVX512 float l2_f32_avx512(const float* q, const float* x, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 t0 = f32_diff(q + i, x + i);
        __m512 t1 = f32_diff(q + i + 16, x + i + 16);
        __m512 t2 = f32_diff(q + i + 32, x + i + 32);
        __m512 t3 = f32_diff(q + i + 48, x + i + 48);
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
        a2 = _mm512_fmadd_ps(t2, t2, a2);
        a3 = _mm512_fmadd_ps(t3, t3, a3);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = f32_diff(q + i, x + i);
        a1 = _mm512_fmadd_ps(t, t, a1);
    }
    if (i < d) {
        __mmask16 m = mask16(d - i);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i),
                                 _mm512_maskz_loadu_ps(m, x + i));
        a2 = _mm512_fmadd_ps(t, t, a2);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

EHI_AVX512 float ip_f32_avx512(const float* q, const float* x, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i),
                             a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16),
                             _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32),
                             _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48),
                             _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= d; i += 16) {
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i),
                             a1);
    }
    if (i < d) {
        __mmask16 m = mask16(d - i);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i),
                             _mm512_maskz_loadu_ps(m, x + i), a2);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* The SQ8 and fp16 kernels load whole 16-lane groups unmasked and mask
 * only the tail: a masked byte or half load in every iteration ran these
 * kernels 4-6 times slower (measured on an AMD EPYC with AVX-512). */
EHI_AVX512 inline __m512 codes16_sq8(const uint8_t* c) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
}

EHI_AVX512 inline __m512 codes16_sq8(__mmask16 m, const uint8_t* c) {
    return _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c)));
}

EHI_AVX512 inline __m512 sq8_diff(const float* qo, const uint8_t* c,
                                  const float* scale) {
    return _mm512_fnmadd_ps(codes16_sq8(c), _mm512_loadu_ps(scale),
                            _mm512_loadu_ps(qo));
}

EHI_AVX512 float l2_sq8_avx512(const float* qo, const uint8_t* c,
                               const float* scale, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 t0 = sq8_diff(qo + i, c + i, scale + i);
        __m512 t1 = sq8_diff(qo + i + 16, c + i + 16, scale + i + 16);
        __m512 t2 = sq8_diff(qo + i + 32, c + i + 32, scale + i + 32);
        __m512 t3 = sq8_diff(qo + i + 48, c + i + 48, scale + i + 48);
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
        a2 = _mm512_fmadd_ps(t2, t2, a2);
        a3 = _mm512_fmadd_ps(t3, t3, a3);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = sq8_diff(qo + i, c + i, scale + i);
        a1 = _mm512_fmadd_ps(t, t, a1);
    }
    if (i < d) {
        __mmask16 m = mask16(d - i);
        __m512 t = _mm512_fnmadd_ps(codes16_sq8(m, c + i),
                                    _mm512_maskz_loadu_ps(m, scale + i),
                                    _mm512_maskz_loadu_ps(m, qo + i));
        a2 = _mm512_fmadd_ps(t, t, a2);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

EHI_AVX512 inline __m512 halves16(const uint16_t* c) {
    return _mm512_cvtph_ps(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)));
}

EHI_AVX512 inline __m512 halves16(__mmask16 m, const uint16_t* c) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, c));
}

/// ip_x4_avx2 in 16 lanes.
template <class T, __m512 (*Load16)(const T*),
          __m512 (*Load16m)(__mmask16, const T*)>
EHI_AVX512 void ip_x4_avx512(const float* q, const T* const* c, size_t d,
                             float* out) {
    const T *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 w = _mm512_loadu_ps(q + i), v = _mm512_loadu_ps(q + i + 16);
        a0 = _mm512_fmadd_ps(w, Load16(c0 + i), a0);
        a1 = _mm512_fmadd_ps(w, Load16(c1 + i), a1);
        a2 = _mm512_fmadd_ps(w, Load16(c2 + i), a2);
        a3 = _mm512_fmadd_ps(w, Load16(c3 + i), a3);
        b0 = _mm512_fmadd_ps(v, Load16(c0 + i + 16), b0);
        b1 = _mm512_fmadd_ps(v, Load16(c1 + i + 16), b1);
        b2 = _mm512_fmadd_ps(v, Load16(c2 + i + 16), b2);
        b3 = _mm512_fmadd_ps(v, Load16(c3 + i + 16), b3);
    }
    if (i + 16 <= d) {
        __m512 w = _mm512_loadu_ps(q + i);
        a0 = _mm512_fmadd_ps(w, Load16(c0 + i), a0);
        a1 = _mm512_fmadd_ps(w, Load16(c1 + i), a1);
        a2 = _mm512_fmadd_ps(w, Load16(c2 + i), a2);
        a3 = _mm512_fmadd_ps(w, Load16(c3 + i), a3);
        i += 16;
    }
    if (i < d) {
        __mmask16 m = mask16(d - i);
        __m512 w = _mm512_maskz_loadu_ps(m, q + i);
        b0 = _mm512_fmadd_ps(w, Load16m(m, c0 + i), b0);
        b1 = _mm512_fmadd_ps(w, Load16m(m, c1 + i), b1);
        b2 = _mm512_fmadd_ps(w, Load16m(m, c2 + i), b2);
        b3 = _mm512_fmadd_ps(w, Load16m(m, c3 + i), b3);
    }
    a0 = _mm512_add_ps(a0, b0);
    a1 = _mm512_add_ps(a1, b1);
    a2 = _mm512_add_ps(a2, b2);
    a3 = _mm512_add_ps(a3, b3);
    /* Reduce the four together: the unpacks pair lanes of the same code,
     * so each 128-bit quarter of t ends up holding [code 0, 1, 2, 3]
     * partial sums; the quarters are then added. */
    __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1),
                               _mm512_unpackhi_ps(a0, a1));
    __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3),
                               _mm512_unpackhi_ps(a2, a3));
    __m512d p01 = _mm512_castps_pd(t01), p23 = _mm512_castps_pd(t23);
    __m512 t = _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(p01, p23)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(p01, p23)));
    __m512 s = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, 0x4E));
    _mm_storeu_ps(out, _mm_add_ps(_mm512_castps512_ps128(s),
                                  _mm512_extractf32x4_ps(s, 1)));
}

constexpr auto ip_sq8_x4_avx512 =
        ip_x4_avx512<uint8_t, codes16_sq8, codes16_sq8>;
constexpr auto ip_fp16_x4_avx512 = ip_x4_avx512<uint16_t, halves16, halves16>;

EHI_AVX512 float l2_fp16_avx512(const float* q, const uint16_t* c, size_t d) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), halves16(c + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16),
                                  halves16(c + i + 16));
        __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 32),
                                  halves16(c + i + 32));
        __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 48),
                                  halves16(c + i + 48));
        a0 = _mm512_fmadd_ps(t0, t0, a0);
        a1 = _mm512_fmadd_ps(t1, t1, a1);
        a2 = _mm512_fmadd_ps(t2, t2, a2);
        a3 = _mm512_fmadd_ps(t3, t3, a3);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(q + i), halves16(c + i));
        a1 = _mm512_fmadd_ps(t, t, a1);
    }
    if (i < d) {
        __mmask16 m = mask16(d - i);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i),
                                 halves16(m, c + i));
        a2 = _mm512_fmadd_ps(t, t, a2);
    }
    return hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// ------------------------------------------------------ rows of a list

/// How far ahead the rows kernels prefetch, in bytes (see rows() for why).
constexpr size_t kScanPrefetchBytes = 6144;

/// Rows of `row_bytes` that make up about kScanPrefetchBytes (at least 1).
inline size_t scan_prefetch_rows(size_t row_bytes) {
    return row_bytes >= kScanPrefetchBytes ? 1
                                           : kScanPrefetchBytes /
                    (row_bytes > 0 ? row_bytes : 1);
}

/** Prefetches row j of rows of `row_bytes` starting at `base`. The row may
 * lie past the list's end: a prefetch never faults, and the address is
 * made as an integer, not a pointer outside its array. */
inline void scan_prefetch_row(const void* base, size_t j, size_t row_bytes) {
    const uintptr_t row = reinterpret_cast<uintptr_t>(base) + j * row_bytes;
    for (size_t b = 0; b < row_bytes; b += 64) {
        __builtin_prefetch(reinterpret_cast<const void*>(row + b));
    }
}

/* n consecutive rows, each with the one-row kernel One, a compile-time
 * constant: a direct call per row, not one through the ScanKernels table
 * (GCC 12 at -O3 does not inline it; forcing it with always_inline
 * measured no gain). The same instructions per row, so the same
 * distances as row by row. What the loop adds is a software prefetch of
 * the row about kScanPrefetchBytes on, so that one thread keeps enough
 * loads in flight to approach the memory bandwidth. Measured on a
 * one-thread scan of every list (bench_scan, AMD EPYC with AVX-512): 4
 * rows ahead (1.6 KB of GloVe's 400-byte rows) and no prefetch for
 * Fashion-MNIST's 3,136-byte rows gave 52-70% of the STREAM triad; about
 * 6 KB ahead for both gave 84-97%. Lists are scanned one after the other,
 * so the hardware prefetcher starts over at each list and needs the lead.
 * The loops themselves need no wide instructions, so one template serves
 * every level. */
template <float (*One)(const float*, const float*, size_t)>
void rows(const float* q, const float* x, size_t n, size_t d, float* out) {
    const size_t row = d * sizeof(float);
    const size_t ahead = scan_prefetch_rows(row);
    for (size_t j = 0; j < n; j++) {
        scan_prefetch_row(x, j + ahead, row);
        out[j] = One(q, x + j * d, d);
    }
}

/* Compressed codes in rows, the same loop (SQ8: d bytes, fp16: d halves
 * per code). Code by code through the table's pointer, a 100-d GloVe code
 * paid an indirect call for 7 vector steps. SQ8's L2 kernel takes the
 * scale as well, hence its own loop. */
template <class T, float (*One)(const float*, const T*, size_t)>
void code_rows(const float* q, const uint8_t* codes, const float*, size_t n,
               size_t d, float* out) {
    const size_t row = d * sizeof(T);
    const size_t ahead = scan_prefetch_rows(row);
    for (size_t j = 0; j < n; j++) {
        scan_prefetch_row(codes, j + ahead, row);
        out[j] = One(q, reinterpret_cast<const T*>(codes) + j * d, d);
    }
}

/* Compressed inner products four codes per kernel call (ip_x4_*). The
 * last one to three codes of a run go through the same kernel, the last
 * code repeated in the unused places, so that every code gets the value
 * the one-code kernel gives it. */
template <class T, void (*Four)(const float*, const T* const*, size_t, float*)>
void ip_rows_x4(const float* q, const uint8_t* codes, const float*, size_t n,
                size_t d, float* out) {
    const T* c = reinterpret_cast<const T*>(codes);
    const size_t row = d * sizeof(T);
    const size_t ahead = scan_prefetch_rows(row);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const T* four[4];
        for (size_t r = 0; r < 4; r++) {
            scan_prefetch_row(codes, j + r + ahead, row);
            four[r] = c + (j + r) * d;
        }
        Four(q, four, d, out + j);
    }
    if (j < n) {
        const T* four[4];
        for (size_t r = 0; r < 4; r++) {
            four[r] = c + std::min(j + r, n - 1) * d;
        }
        float o[4];
        Four(q, four, d, o);
        std::copy(o, o + (n - j), out + j);
    }
}

template <float (*One)(const float*, const uint8_t*, const float*, size_t)>
void l2_sq8_rows(const float* qo, const uint8_t* codes, const float* scale,
                 size_t n, size_t d, float* out) {
    const size_t ahead = scan_prefetch_rows(d);
    for (size_t j = 0; j < n; j++) {
        scan_prefetch_row(codes, j + ahead, d);
        out[j] = One(qo, codes + j * d, scale, d);
    }
}

const ScanKernels kGeneric = {
        ScanLevel::GENERIC,
        l2_f32_generic,
        ip_f32_generic,
        l2_sq8_generic,
        ip_sq8_generic,
        l2_fp16_generic,
        ip_fp16_generic,
        rows<l2_f32_generic>,
        rows<ip_f32_generic>,
        l2_sq8_rows<l2_sq8_generic>,
        code_rows<uint8_t, ip_sq8_generic>,
        code_rows<uint16_t, l2_fp16_generic>,
        code_rows<uint16_t, ip_fp16_generic>};
const ScanKernels kAvx2 = {ScanLevel::AVX2,
                           l2_f32_avx2,
                           ip_f32_avx2,
                           l2_sq8_avx2,
                           one_of_four<uint8_t, ip_sq8_x4_avx2>,
                           l2_fp16_avx2,
                           one_of_four<uint16_t, ip_fp16_x4_avx2>,
                           rows<l2_f32_avx2>,
                           rows<ip_f32_avx2>,
                           l2_sq8_rows<l2_sq8_avx2>,
                           ip_rows_x4<uint8_t, ip_sq8_x4_avx2>,
                           code_rows<uint16_t, l2_fp16_avx2>,
                           ip_rows_x4<uint16_t, ip_fp16_x4_avx2>};
const ScanKernels kAvx512 = {ScanLevel::AVX512,
                             l2_f32_avx512,
                             ip_f32_avx512,
                             l2_sq8_avx512,
                             one_of_four<uint8_t, ip_sq8_x4_avx512>,
                             l2_fp16_avx512,
                             one_of_four<uint16_t, ip_fp16_x4_avx512>,
                             rows<l2_f32_avx512>,
                             rows<ip_f32_avx512>,
                             l2_sq8_rows<l2_sq8_avx512>,
                             ip_rows_x4<uint8_t, ip_sq8_x4_avx512>,
                             code_rows<uint16_t, l2_fp16_avx512>,
                             ip_rows_x4<uint16_t, ip_fp16_x4_avx512>};

ScanLevel detect_level() {
    __builtin_cpu_init();
    // libgcc also checks (XGETBV) that the OS saves the wide registers.
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        return ScanLevel::AVX512;
    }
    // Every CPU with AVX2 and FMA also has F16C (Haswell, Excavator on).
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return ScanLevel::AVX2;
    }
    return ScanLevel::GENERIC;
}

} // namespace

void sq8_prepare_l2(const float* q, const float* offset, size_t d,
                    float* qo) {
    for (size_t i = 0; i < d; i++) {
        qo[i] = q[i] - offset[i];
    }
}

float sq8_prepare_ip(const float* q, const float* scale, const float* offset,
                     size_t d, float* qs) {
    // In double: this one term is added to every distance of the query.
    double qoff = 0;
    for (size_t i = 0; i < d; i++) {
        qs[i] = q[i] * scale[i];
        qoff += double(q[i]) * offset[i];
    }
    return float(qoff);
}

ScanLevel best_scan_level() {
    static const ScanLevel level = detect_level();
    return level;
}

const ScanKernels& scan_kernels(ScanLevel level) {
    FAISS_THROW_IF_NOT_MSG(int(level) <= int(best_scan_level()),
                           "scan_kernels: this CPU cannot run that level");
    switch (level) {
        case ScanLevel::AVX512:
            return kAvx512;
        case ScanLevel::AVX2:
            return kAvx2;
        default:
            return kGeneric;
    }
}

ScanLevel parse_scan_level(const char* name) {
    for (ScanLevel l :
         {ScanLevel::GENERIC, ScanLevel::AVX2, ScanLevel::AVX512}) {
        if (name && std::strcmp(name, scan_level_name(l)) == 0) {
            return l;
        }
    }
    FAISS_THROW_FMT("unknown scan level \"%s\" (generic, avx2 or avx512)",
                    name ? name : "(null)");
}

namespace {
ScanLevel level_from_environment() {
    const char* env = std::getenv("FAISS_EHI_SCAN_LEVEL");
    if (!env || !*env) {
        return best_scan_level();
    }
    ScanLevel l = parse_scan_level(env);
    FAISS_THROW_IF_NOT_FMT(int(l) <= int(best_scan_level()),
                           "FAISS_EHI_SCAN_LEVEL=%s: this CPU runs at most %s",
                           env, scan_level_name(best_scan_level()));
    return l;
}
} // namespace

ScanLevel scan_level_in_use() {
    static const ScanLevel level = level_from_environment();
    return level;
}

const ScanKernels& scan_kernels() {
    static const ScanKernels& chosen = scan_kernels(scan_level_in_use());
    return chosen;
}

const char* scan_level_name(ScanLevel level) {
    switch (level) {
        case ScanLevel::AVX512:
            return "avx512";
        case ScanLevel::AVX2:
            return "avx2";
        default:
            return "generic";
    }
}

} // namespace faiss_ehi
