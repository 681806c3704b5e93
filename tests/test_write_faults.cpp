/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * Faults while writing an index file: a writer killed at random points
 * (the file at the path is always a complete old or new version, and a
 * later write removes the killed writer's temporary file), and a full
 * disk (a clear error, the old file intact, nothing partial left).
 */
#include "test_helpers.h"

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <faiss/impl/io.h>

#include <faiss_ehi/index_io.h>

using namespace ehi_test;
using faiss_ehi::IndexEHITree;

namespace {

std::vector<uint8_t> file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

/// What write_index(index, fname) puts in the file.
std::vector<uint8_t> serialized(const faiss::Index& index) {
    faiss::VectorIOWriter w;
    faiss_ehi::write_index(&index, static_cast<faiss::IOWriter*>(&w));
    return w.data;
}

size_t count_temps(const TempDir& dir) {
    size_t n = 0;
    for (const std::string& f : dir.files()) {
        n += f.find(".tmp.") != std::string::npos;
    }
    return n;
}

} // namespace

/* 50 times: a child process rewrites the file in a loop (alternating two
 * indexes) and is killed with SIGKILL after a random delay. The file must
 * then hold exactly one of the two versions and read back; the next write
 * removes the temporary file the killed child may have left. */
TEST(WriteFaults, KillDuringWriteLeavesACompleteFile) {
    const int d = 32;
    auto xt = clustered_data(3000, d, 30, 5, 31);
    auto a = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xt);
    auto b = same_tree_index(*a);
    auto xb = clustered_data(20000, d, 30, 5, 32);
    a->add(2000, xb.data());
    b->add(20000, xb.data()); // 2.6 MB: a write takes milliseconds
    const std::vector<uint8_t> bytes_a = serialized(*a),
                               bytes_b = serialized(*b);
    TempDir dir;
    const std::string path = dir.file("index.ehi");
    // kill within about 3 writes' time: before, during and after them
    auto t0 = std::chrono::steady_clock::now();
    faiss_ehi::write_index(b.get(), path.c_str());
    faiss_ehi::write_index(a.get(), path.c_str());
    int64_t window_us = 3 *
            std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
    Rng rng(33);
    int saw_b = 0, left_temp = 0;
    const int kills = 50;
    for (int i = 0; i < kills; i++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0) << std::strerror(errno);
        if (pid == 0) {
            // the child: no gtest, no exceptions out of here
            try {
                for (int j = 0;; j++) {
                    faiss_ehi::write_index(j % 2 ? a.get() : b.get(),
                                           path.c_str());
                }
            } catch (...) {
            }
            _exit(3);
        }
        std::this_thread::sleep_for(
                std::chrono::microseconds(rng.below(window_us + 1)));
        kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                << "the writer stopped by itself (status " << status << ")";
        std::vector<uint8_t> now = file_bytes(path);
        bool is_a = now == bytes_a, is_b = now == bytes_b;
        ASSERT_TRUE(is_a || is_b)
                << "kill " << i << ": the file is neither version ("
                << now.size() << " bytes)";
        saw_b += is_b;
        std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(path.c_str()));
        ASSERT_EQ(back->ntotal, is_a ? a->ntotal : b->ntotal);
        left_temp += count_temps(dir) > 0;
        // the next write cleans up after the killed writer
        faiss_ehi::write_index(a.get(), path.c_str());
        ASSERT_EQ(dir.files(), std::vector<std::string>{"index.ehi"});
    }
    std::printf("[kill during write] %d kills within %lld us: %d left the "
                "new version, %d left a temporary file (cleaned by the next "
                "write)\n",
                kills, (long long)window_us, saw_b, left_temp);
}

/* A full file system: write_index throws an error naming the cause, the
 * old file stays as it was and no temporary file remains. Needs root to
 * mount a 64 KiB tmpfs. */
TEST(WriteFaults, FullDiskFailsCleanly) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root to mount a small tmpfs";
    }
    TempDir dir;
    const std::string mnt = dir.file("small");
    ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
        GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    }
    struct Unmount {
        std::string dir;
        ~Unmount() {
            umount2(dir.c_str(), MNT_DETACH);
        }
    } unmount{mnt};
    const int d = 16;
    auto xt = clustered_data(2000, d, 20, 5, 41);
    auto small = kmeans_tree_index(d, 4, 2, faiss::METRIC_L2, xt);
    small->add(100, xt.data());
    auto big = same_tree_index(*small);
    auto xb = clustered_data(5000, d, 20, 5, 42);
    big->add(5000, xb.data()); // 320 KB of vectors: does not fit
    const std::string path = mnt + "/index.ehi";
    faiss_ehi::write_index(small.get(), path.c_str());
    const std::vector<uint8_t> before = file_bytes(path);
    std::string msg = faiss_error(
            [&] { faiss_ehi::write_index(big.get(), path.c_str()); });
    EXPECT_NE(msg.find("write_index"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(ENOSPC)), std::string::npos) << msg;
    EXPECT_NE(msg.find("is unchanged"), std::string::npos) << msg;
    EXPECT_EQ(file_bytes(path), before);
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(mnt)) {
        left.push_back(e.path().filename().string());
    }
    EXPECT_EQ(left, std::vector<std::string>{"index.ehi"});
    std::unique_ptr<faiss::Index> back(faiss_ehi::read_index(path.c_str()));
    EXPECT_EQ(back->ntotal, 100);
}
