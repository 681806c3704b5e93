/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Shared by the libFuzzer targets (tests/fuzz): framing fuzzed payloads
 * and writing fuzzed bytes to a scratch file.
 */
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <faiss/impl/io.h>

#include <faiss_ehi/io_primitives.h>

namespace ehi_fuzz {

/** The bytes a reader sees for fuzzer input `data`. faiss_ehi files are
 * one frame whose payload carries an FNV-1a checksum, which random
 * mutations almost never match: most inputs would stop at the checksum
 * test and the parsers behind it would go unexercised. So the first byte
 * chooses: with its top bit set the rest is handed over as is (the frame
 * checks themselves are fuzzed); otherwise the rest is the payload, framed
 * here with `magic`, the version 1 + (byte % max_version) and the right
 * size and checksum. */
inline std::vector<uint8_t> framed_input(const uint8_t* data, size_t size,
                                         const char magic[4],
                                         uint32_t max_version) {
    if (size == 0) {
        return {};
    }
    uint8_t mode = data[0];
    if (mode & 0x80) {
        return std::vector<uint8_t>(data + 1, data + size);
    }
    std::vector<uint8_t> payload(data + 1, data + size);
    faiss::VectorIOWriter w;
    faiss_ehi::io_detail::write_frame(&w, magic, 1 + mode % max_version,
                                      payload);
    return w.data;
}

/** A scratch file for loaders that only take a path: one per process (the
 * fuzzer runs one input at a time), removed at exit. */
class ScratchFile {
  public:
    explicit ScratchFile(const std::string& ext) {
        const char* tmp = std::getenv("TMPDIR");
        path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/ehi_fuzz_" +
                std::to_string(getpid()) + ext;
    }
    ~ScratchFile() {
        std::remove(path_.c_str());
    }
    /// Replace the file's content with `size` bytes; false on IO errors.
    bool write(const uint8_t* data, size_t size) {
        FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f) {
            return false;
        }
        bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
        ok = std::fclose(f) == 0 && ok;
        return ok;
    }
    const std::string& path() const {
        return path_;
    }

  private:
    std::string path_;
};

} // namespace ehi_fuzz
