/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

// Internal to faiss_ehi's IO: byte-level writing and bounds-checked reading
// of the EHI payload.

#include <cstdint>
#include <cstring>
#include <vector>

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>

namespace faiss_ehi {
namespace io_detail {

/// 64-bit FNV-1a hash: the payload checksum.
inline uint64_t fnv1a(const uint8_t* p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

inline void put_bytes(faiss::IOWriter* w, const void* p, size_t n) {
    if (n == 0) {
        return;
    }
    size_t got = (*w)(p, 1, n);
    FAISS_THROW_IF_NOT_FMT(got == n, "write error: wrote %zd of %zd bytes", got,
                           n);
}

template <class T>
void put(faiss::IOWriter* w, T v) {
    put_bytes(w, &v, sizeof(v));
}

inline void put_floats(faiss::IOWriter* w, const std::vector<float>& v) {
    put<uint64_t>(w, v.size());
    put_bytes(w, v.data(), v.size() * sizeof(float));
}

/// Reads from an in-memory payload with bounds checks.
struct PayloadReader {
    const uint8_t* p;
    size_t size;
    size_t pos = 0;

    void get_bytes(void* out, size_t n) {
        if (n == 0) {
            return;
        }
        FAISS_THROW_IF_NOT_MSG(n <= size - pos,
                               "corrupt EHI index: payload ends early");
        std::memcpy(out, p + pos, n);
        pos += n;
    }
    template <class T>
    T get() {
        T v;
        get_bytes(&v, sizeof(v));
        return v;
    }
    std::vector<float> get_floats() {
        uint64_t n = get<uint64_t>();
        FAISS_THROW_IF_NOT_MSG(n <= (size - pos) / sizeof(float),
                               "corrupt EHI index: array larger than file");
        std::vector<float> v(n);
        get_bytes(v.data(), n * sizeof(float));
        return v;
    }
};

/** Atomic file write: `size` bytes go to a temporary file in the same
 * directory which is flushed, synced and renamed over `fname`. On any
 * failure the old file (if any) is left intact and an exception naming
 * `who` is thrown. The temporary file is named `fname.tmp.PID.N`; a
 * successful write also deletes the ones that processes which no longer
 * exist left beside `fname` (killed while writing). Shared by every
 * faiss_ehi file writer (and the trainer's checkpoints). Defined in
 * index_io.cpp. */
void write_file_atomic(const char* fname, const void* data, size_t size,
                       const char* who);

/** Every faiss_ehi file is one frame: 4-byte magic, uint32 format version,
 * uint64 payload size, uint64 FNV-1a checksum of the payload, payload.
 * write_frame writes one. Defined in index_io.cpp. */
void write_frame(faiss::IOWriter* w, const char magic[4], uint32_t version,
                 const std::vector<uint8_t>& payload);

/** Read a frame written by write_frame and return its payload, checked:
 * throws (messages start with `who`) on a short header, another magic
 * (`bad_magic_hint` is appended to that message), a version outside
 * [1, max_version], a truncated payload or a checksum mismatch. The payload
 * is read in chunks so that a corrupted size cannot force a huge
 * allocation before the data runs out. `*version` receives the version.
 * Defined in index_io.cpp. */
std::vector<uint8_t> read_frame(faiss::IOReader* r, const char magic[4],
                                uint32_t max_version, const char* who,
                                const char* bad_magic_hint, uint32_t* version);

} // namespace io_detail
} // namespace faiss_ehi
