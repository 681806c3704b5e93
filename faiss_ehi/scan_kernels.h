/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_ehi {

/// The instruction sets a list-scan kernel can be compiled for.
enum class ScanLevel : int {
    GENERIC = 0, ///< any x86-64 (what the compiler makes of plain loops)
    AVX2 = 1,    ///< AVX2 + FMA + F16C (Haswell and later)
    AVX512 = 2,  ///< AVX-512 F/BW/VL (Skylake-SP and later)
};

/** Distance kernels between one float query and one stored code, the
 * inner loop of an inverted-list scan. All take the dimension d and read
 * unaligned data; d may be any value >= 0.
 *
 * SQ8 codes decode as x[i] = offset[i] + scale[i] * code[i], with
 * scale = vdiff / 255 and offset = vmin + 0.5 * scale (the layout of
 * Faiss's QT_8bit: one byte per dimension). Their kernels take the query
 * prepared once per query (sq8_prepare_l2 / sq8_prepare_ip), so that one
 * FMA per component both decodes and compares. fp16 codes are IEEE
 * halves. */
struct ScanKernels {
    ScanLevel level;
    float (*l2_f32)(const float* q, const float* x, size_t d);
    float (*ip_f32)(const float* q, const float* x, size_t d);
    /// sum_i (qo[i] - scale[i] * code[i])^2, qo = q - offset: ||q - x||^2.
    float (*l2_sq8)(const float* qo, const uint8_t* code, const float* scale,
                    size_t d);
    /// sum_i qs[i] * code[i], qs = q * scale: <q, x> - <q, offset>.
    float (*ip_sq8)(const float* qs, const uint8_t* code, size_t d);
    float (*l2_fp16)(const float* q, const uint16_t* code, size_t d);
    float (*ip_fp16)(const float* q, const uint16_t* code, size_t d);
    /// l2_f32 / ip_f32 of n consecutive rows x[j * d .. j * d + d) into
    /// out[j]: the same values as one call per row, faster on long lists.
    void (*l2_f32_rows)(const float* q, const float* x, size_t n, size_t d,
                        float* out);
    void (*ip_f32_rows)(const float* q, const float* x, size_t n, size_t d,
                        float* out);
    /// The same for n consecutive compressed codes (SQ8: d bytes each,
    /// fp16: 2 d bytes), each as the one-code kernel above computes it:
    /// q is the query as that kernel takes it, `scale` is read by
    /// l2_sq8_rows only (the others ignore it).
    using CodeRows = void (*)(const float* q, const uint8_t* codes,
                              const float* scale, size_t n, size_t d,
                              float* out);
    CodeRows l2_sq8_rows, ip_sq8_rows, l2_fp16_rows, ip_fp16_rows;
};

/// qo = q - offset: the query as l2_sq8 takes it.
void sq8_prepare_l2(const float* q, const float* offset, size_t d, float* qo);

/// qs = q * scale, and the return value <q, offset>, which the caller adds
/// to ip_sq8's result.
float sq8_prepare_ip(const float* q, const float* scale, const float* offset,
                     size_t d, float* qs);

/// The best level this CPU runs (read once, from cpuid).
ScanLevel best_scan_level();

/** The level searches use, read once per process: best_scan_level(), or
 * the level named by the environment variable FAISS_EHI_SCAN_LEVEL
 * ("generic", "avx2" or "avx512"), to compare levels on one machine. A
 * name this CPU cannot run, or an unknown one, throws (naming it). */
ScanLevel scan_level_in_use();

/// "generic", "avx2" or "avx512" as a level; throws on any other name.
ScanLevel parse_scan_level(const char* name);

/** The kernels of one level; throws if the CPU cannot run that level.
 * Tests compare the levels; searches use scan_kernels(). */
const ScanKernels& scan_kernels(ScanLevel level);

/// The kernels of scan_level_in_use(), chosen once per process.
const ScanKernels& scan_kernels();

/// "generic", "avx2" or "avx512".
const char* scan_level_name(ScanLevel level);

} // namespace faiss_ehi
