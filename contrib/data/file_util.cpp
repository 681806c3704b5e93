/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include "contrib/data/file_util.h"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace faiss_ehi {
namespace data {

namespace {
using FilePtr = std::unique_ptr<FILE, int (*)(FILE*)>;

FilePtr open_file(const std::string& path, const char* mode) {
    FilePtr f(fopen(path.c_str(), mode), fclose);
    if (!f) {
        throw std::runtime_error("cannot open " + path + ": " +
                                 std::strerror(errno));
    }
    return f;
}
} // namespace

bool file_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

size_t file_size(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        throw std::runtime_error("cannot open " + path + ": " +
                                 std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error("not a regular file: " + path);
    }
    return size_t(st.st_size);
}

std::string read_file(const std::string& path) {
    size_t n = file_size(path);
    FilePtr f = open_file(path, "rb");
    std::string buf(n, '\0');
    size_t got = n ? fread(&buf[0], 1, n, f.get()) : 0;
    if (got != n) {
        throw std::runtime_error("read error on " + path);
    }
    return buf;
}

void make_dirs(const std::string& dir) {
    if (dir.empty() || dir_exists(dir)) {
        return;
    }
    size_t pos = dir.find_last_of('/');
    if (pos != std::string::npos && pos > 0) {
        make_dirs(dir.substr(0, pos));
    }
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        throw std::runtime_error("cannot create directory " + dir + ": " +
                                 std::strerror(errno));
    }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    size_t pos = path.find_last_of('/');
    if (pos != std::string::npos && pos > 0) {
        make_dirs(path.substr(0, pos));
    }
    std::string tmp = path + ".tmp." + std::to_string(getpid());
    {
        FilePtr f = open_file(tmp, "wb");
        if (!bytes.empty() &&
            fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
            std::remove(tmp.c_str());
            throw std::runtime_error("write error on " + tmp);
        }
        if (fflush(f.get()) != 0) {
            std::remove(tmp.c_str());
            throw std::runtime_error("write error on " + tmp);
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " +
                                 std::strerror(e));
    }
}

std::string home_dir() {
    const char* h = getenv("HOME");
    if (h && *h) {
        return h;
    }
    struct passwd* pw = getpwuid(getuid());
    if (pw && pw->pw_dir && *pw->pw_dir) {
        return pw->pw_dir;
    }
    return "/tmp";
}

std::string faiss_ehi_cache_dir() {
    return home_dir() + "/.cache/faiss-ehi";
}

} // namespace data
} // namespace faiss_ehi
