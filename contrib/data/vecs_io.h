/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Vector files: .fvecs / .ivecs / .bvecs (per vector an int32 dimension,
 * then the components as float32 / int32 / uint8, little-endian) and NumPy
 * .npy (float32, little-endian, C order, 1-D or 2-D).
 *
 * Every reader throws std::runtime_error whose message names the file and
 * the problem (missing, empty, truncated, bad dimension, wrong dtype...).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>

namespace faiss_ehi {
namespace data {

using idx_t = faiss::Index::idx_t;

/// Read an .fvecs file; sets *d and *n. Throws.
std::vector<float> fvecs_read(const std::string& path, int* d, idx_t* n);
/// Read an .ivecs file; sets *d and *n. Throws.
std::vector<int> ivecs_read(const std::string& path, int* d, idx_t* n);
/// Read a .bvecs file (uint8 components); sets *d and *n. Throws.
std::vector<uint8_t> bvecs_read(const std::string& path, int* d, idx_t* n);

/// Write n x d row-major vectors as .fvecs / .ivecs / .bvecs. Throws.
void fvecs_write(const std::string& path, const float* x, int d, idx_t n);
void ivecs_write(const std::string& path, const int* x, int d, idx_t n);
void bvecs_write(const std::string& path, const uint8_t* x, int d, idx_t n);

/** Read a .npy file holding float32 (dtype '<f4'), C order, 1-D or 2-D.
 * A 1-D array of length m reads as n = 1, d = m. Sets *d and *n. Throws,
 * naming the file, on a bad magic, header, dtype, Fortran order, rank or a
 * data size that does not match the shape. */
std::vector<float> npy_read(const std::string& path, int* d, idx_t* n);

/** Write n x d float32 as .npy (format 1.0, '<f4', C order). With
 * `one_d` the shape is (d,) and n must be 1. Throws. */
void npy_write(const std::string& path, const float* x, int d, idx_t n,
               bool one_d = false);

/** Read a float matrix by extension: ".fvecs", ".npy" or ".bvecs"
 * (converted to float). Throws for any other extension. */
std::vector<float> read_float_vectors(const std::string& path, int* d,
                                      idx_t* n);

} // namespace data
} // namespace faiss_ehi
