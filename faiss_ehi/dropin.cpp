/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The C++ drop-in: Faiss's entry points, taken over at link time.
 *
 * Debian's Faiss is a static library, so a program's calls to
 * faiss::index_factory & co. are bound by the linker, and there is no
 * dynamic symbol to interpose. The target faiss_ehi::dropin therefore adds
 * GNU ld's --wrap=SYMBOL for the mangled name of each entry point: every
 * undefined reference to SYMBOL in the link then resolves to
 * __wrap_SYMBOL (defined below) and every reference to __real_SYMBOL
 * resolves to Faiss's original. Each wrapper serves what only faiss_ehi
 * understands (an EHI token in the factory key, a file starting with the
 * FEHI magic, an index with EHI parts) and forwards everything else,
 * arguments unchanged, to __real_SYMBOL: plain Faiss keys, files and
 * indexes behave bit for bit as without the drop-in.
 *
 * Recursion: --wrap applies to the whole link, libfaiss_ehi.a included,
 * so faiss_ehi's own calls to Faiss while serving a call (faiss_ehi's
 * index_factory building the IVF around the tree, its write_index writing
 * the Faiss part of the file) also arrive here. A thread-local depth
 * counter makes such nested calls go straight to Faiss: faiss_ehi gets
 * Faiss's own behaviour whatever the argument looks like, and a nested
 * call can never be served by faiss_ehi again.
 *
 * The names below are the Itanium C++ ABI manglings of the Faiss 1.7.3
 * signatures (nm libfaiss.a); the list in the top-level CMakeLists.txt
 * (FAISS_EHI_DROPIN_SYMBOLS) must match them.
 */
#include <faiss_ehi/dropin.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <faiss/Index.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>

#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/index_factory.h>
#include <faiss_ehi/index_io.h>
#include <faiss_ehi/string_split.h>

using faiss::Index;
using faiss::IOReader;
using faiss::IOWriter;
using faiss::MetricType;

// Faiss's originals, as the linker names them under --wrap.
extern "C" {
Index* __real__ZN5faiss13index_factoryEiPKcNS_10MetricTypeE(int, const char*,
                                                            MetricType);
Index* __real__ZN5faiss10read_indexEPKci(const char*, int);
Index* __real__ZN5faiss10read_indexEP8_IO_FILEi(FILE*, int);
Index* __real__ZN5faiss10read_indexEPNS_8IOReaderEi(IOReader*, int);
void __real__ZN5faiss11write_indexEPKNS_5IndexEPKc(const Index*, const char*);
void __real__ZN5faiss11write_indexEPKNS_5IndexEP8_IO_FILE(const Index*, FILE*);
void __real__ZN5faiss11write_indexEPKNS_5IndexEPNS_8IOWriterE(const Index*,
                                                              IOWriter*);
Index* __real__ZN5faiss11clone_indexEPKNS_5IndexE(const Index*);
}

namespace faiss_ehi {

namespace {

std::atomic<uint64_t> n_served{0}, n_forwarded{0}, n_nested{0};

/// Depth of drop-in calls being served on this thread.
thread_local int serving_depth = 0;

/// Marks the thread as serving a call for the lifetime of the object.
struct Serving {
    Serving() {
        serving_depth++;
        n_served++;
        /* Without a registered trainer an EHI index cannot train. A program
         * that links the LibTorch trainer has it registered by then (static
         * initializers ran before main), one that chose a trainer keeps its
         * choice; otherwise the built-in k-means trainer serves. */
        set_fallback_tree_trainer(std::make_shared<KMeansTreeTrainer>());
    }
    ~Serving() {
        serving_depth--;
    }
    Serving(const Serving&) = delete;
    Serving& operator=(const Serving&) = delete;
};

/// Whether this call goes to Faiss: nested in a served call, or plain.
bool forward(bool is_ehi) {
    if (serving_depth > 0) {
        n_nested++;
        return true;
    }
    if (!is_ehi) {
        n_forwarded++;
        return true;
    }
    return false;
}

bool has_ehi_token(const char* description) {
    if (!description) {
        return false; // Faiss reports it
    }
    for (const std::string& tok : split_commas(description)) {
        if (tok.compare(0, 3, "EHI") == 0) {
            return true;
        }
    }
    return false;
}

constexpr size_t kHeadSize = 4;

/** A reader that first returns the bytes already read from `inner` to
 * look at the file's magic, then reads on from `inner`: the index reader
 * then sees the stream from its first byte. */
struct ReplayReader : IOReader {
    IOReader* inner;
    uint8_t head[kHeadSize];
    size_t head_size, head_pos = 0;

    ReplayReader(IOReader* inner, const uint8_t* h, size_t n)
            : inner(inner), head_size(n) {
        name = inner->name;
        std::memcpy(head, h, n);
    }

    size_t operator()(void* ptr, size_t size, size_t nitems) override {
        if (head_pos == head_size) {
            return (*inner)(ptr, size, nitems);
        }
        size_t want = size * nitems;
        if (want == 0) {
            return 0;
        }
        size_t from_head = std::min(want, head_size - head_pos);
        std::memcpy(ptr, head + head_pos, from_head);
        head_pos += from_head;
        size_t got = from_head;
        if (want > from_head) {
            got += (*inner)(static_cast<uint8_t*>(ptr) + from_head, 1,
                            want - from_head);
        }
        return got / size;
    }

    int fileno() override {
        return inner->fileno();
    }
};

/// Read up to kHeadSize bytes; returns how many.
size_t read_head(IOReader* reader, uint8_t* head) {
    size_t n = 0;
    while (n < kHeadSize) {
        size_t got = (*reader)(head + n, 1, kHeadSize - n);
        if (got == 0) {
            break;
        }
        n += got;
    }
    return n;
}

} // namespace

DropinCounters dropin_counters() {
    DropinCounters c;
    c.served = n_served.load();
    c.forwarded = n_forwarded.load();
    c.nested = n_nested.load();
    return c;
}

} // namespace faiss_ehi

using namespace faiss_ehi;

extern "C" {

/// Named by the target's --undefined link option, so that the linker takes
/// this archive member (and the wrappers with it) in every link.
void faiss_ehi_dropin_anchor() {}

// faiss::index_factory(int, const char*, MetricType)
Index* __wrap__ZN5faiss13index_factoryEiPKcNS_10MetricTypeE(
        int d, const char* description, MetricType metric) {
    if (forward(has_ehi_token(description))) {
        return __real__ZN5faiss13index_factoryEiPKcNS_10MetricTypeE(
                d, description, metric);
    }
    Serving serving;
    return faiss_ehi::index_factory(d, description, metric);
}

// faiss::read_index(const char* fname, int io_flags)
Index* __wrap__ZN5faiss10read_indexEPKci(const char* fname, int io_flags) {
    bool is_ehi = false;
    if (serving_depth == 0 && fname) {
        // Anything that fails here (no such file...) is Faiss's to report.
        if (FILE* f = std::fopen(fname, "rb")) {
            uint8_t head[kHeadSize];
            size_t n = std::fread(head, 1, kHeadSize, f);
            std::fclose(f);
            is_ehi = is_ehi_file_header(head, n);
        }
    }
    if (forward(is_ehi)) {
        return __real__ZN5faiss10read_indexEPKci(fname, io_flags);
    }
    Serving serving;
    return faiss_ehi::read_index(fname);
}

// faiss::read_index(IOReader*, int io_flags)
Index* __wrap__ZN5faiss10read_indexEPNS_8IOReaderEi(IOReader* reader,
                                                    int io_flags) {
    if (serving_depth > 0 || !reader) {
        forward(false);
        return __real__ZN5faiss10read_indexEPNS_8IOReaderEi(reader, io_flags);
    }
    uint8_t head[kHeadSize];
    size_t n = read_head(reader, head);
    ReplayReader replay(reader, head, n);
    if (forward(is_ehi_file_header(head, n))) {
        return __real__ZN5faiss10read_indexEPNS_8IOReaderEi(&replay, io_flags);
    }
    Serving serving;
    return faiss_ehi::read_index(static_cast<IOReader*>(&replay));
}

// faiss::read_index(FILE*, int io_flags)
Index* __wrap__ZN5faiss10read_indexEP8_IO_FILEi(FILE* f, int io_flags) {
    if (serving_depth > 0 || !f) {
        forward(false);
        return __real__ZN5faiss10read_indexEP8_IO_FILEi(f, io_flags);
    }
    uint8_t head[kHeadSize];
    size_t n = std::fread(head, 1, kHeadSize, f);
    bool is_ehi = is_ehi_file_header(head, n);
    // A seekable stream goes back to Faiss exactly as it came.
    if (!is_ehi && std::fseek(f, -long(n), SEEK_CUR) == 0) {
        forward(false);
        return __real__ZN5faiss10read_indexEP8_IO_FILEi(f, io_flags);
    }
    // A pipe cannot seek back: the bytes read are replayed instead.
    faiss::FileIOReader file_reader(f);
    ReplayReader replay(&file_reader, head, n);
    if (forward(is_ehi)) {
        return __real__ZN5faiss10read_indexEPNS_8IOReaderEi(&replay, io_flags);
    }
    Serving serving;
    return faiss_ehi::read_index(static_cast<IOReader*>(&replay));
}

// faiss::write_index(const Index*, const char* fname)
void __wrap__ZN5faiss11write_indexEPKNS_5IndexEPKc(const Index* index,
                                                   const char* fname) {
    if (forward(serving_depth == 0 && has_ehi_parts(index))) {
        __real__ZN5faiss11write_indexEPKNS_5IndexEPKc(index, fname);
        return;
    }
    Serving serving;
    faiss_ehi::write_index(index, fname);
}

// faiss::write_index(const Index*, FILE*)
void __wrap__ZN5faiss11write_indexEPKNS_5IndexEP8_IO_FILE(const Index* index,
                                                          FILE* f) {
    if (forward(serving_depth == 0 && has_ehi_parts(index))) {
        __real__ZN5faiss11write_indexEPKNS_5IndexEP8_IO_FILE(index, f);
        return;
    }
    Serving serving;
    faiss::FileIOWriter writer(f);
    faiss_ehi::write_index(index, static_cast<IOWriter*>(&writer));
}

// faiss::write_index(const Index*, IOWriter*)
void __wrap__ZN5faiss11write_indexEPKNS_5IndexEPNS_8IOWriterE(
        const Index* index, IOWriter* writer) {
    if (forward(serving_depth == 0 && has_ehi_parts(index))) {
        __real__ZN5faiss11write_indexEPKNS_5IndexEPNS_8IOWriterE(index, writer);
        return;
    }
    Serving serving;
    faiss_ehi::write_index(index, writer);
}

// faiss::clone_index(const Index*)
Index* __wrap__ZN5faiss11clone_indexEPKNS_5IndexE(const Index* index) {
    if (forward(serving_depth == 0 && has_ehi_parts(index))) {
        return __real__ZN5faiss11clone_indexEPKNS_5IndexE(index);
    }
    Serving serving;
    return faiss_ehi::clone_index(index);
}

} // extern "C"
