/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Small file helpers shared by the loaders: existence checks, whole-file
 * reads, atomic writes and the user's cache directory.
 */
#pragma once

#include <string>
#include <vector>

namespace faiss_ehi {
namespace data {

/// Whether `path` names a regular file.
bool file_exists(const std::string& path);

/// Whether `path` names a directory.
bool dir_exists(const std::string& path);

/// Size of a regular file in bytes. Throws std::runtime_error naming the
/// file if it cannot be opened.
size_t file_size(const std::string& path);

/// Read a whole file. Throws std::runtime_error naming the file on error.
std::string read_file(const std::string& path);

/** Write `bytes` to `path` through a temporary file in the same directory
 * and a rename, so readers never see a half-written file. Creates missing
 * parent directories. Throws std::runtime_error on failure. */
void write_file_atomic(const std::string& path, const std::string& bytes);

/// mkdir -p. Throws std::runtime_error on failure.
void make_dirs(const std::string& dir);

/// $HOME, or the passwd entry's home, or "/tmp" as a last resort.
std::string home_dir();

/// `$HOME/.cache/faiss-ehi` (the root of all faiss-ehi caches).
std::string faiss_ehi_cache_dir();

} // namespace data
} // namespace faiss_ehi
