/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files,
 * gzip-compressed or plain).
 */
#pragma once

#include <string>
#include <vector>

#include "contrib/data/dataset.h"

namespace faiss_ehi {
namespace data {

/// Where the Debian package dataset-fashion-mnist installs its files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/** Read an IDX image file (magic 0x00000803, big-endian header), plain or
 * gzip-compressed: `path` itself, or `path` + ".gz" if `path` is missing.
 * Returns n x (rows*cols) floats scaled to [0, 1]. Throws a
 * std::runtime_error naming the file on any error. */
std::vector<float> read_idx_images(const std::string& path, idx_t* n, int* rows,
                                   int* cols);

/** Fashion-MNIST: 60,000 train images as the base, 10,000 test images as the
 * queries, 784-d in [0, 1], L2, name "fashion-mnist". Throws, naming the
 * package to install (apt-get install dataset-fashion-mnist), if the files
 * are missing. */
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDir);

} // namespace data
} // namespace faiss_ehi
