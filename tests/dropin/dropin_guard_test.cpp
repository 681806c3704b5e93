/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The drop-in's recursion guard. Under --wrap, faiss_ehi's own calls to
 * faiss::index_factory / write_index / read_index arrive at the drop-in's
 * wrappers too; while a call is being served they must go straight to
 * Faiss (counted as nested), never be served by faiss_ehi again. Checked
 * with faiss_ehi::dropin_counters() around each call.
 */
#include <faiss_ehi/dropin.h>
#include <faiss_ehi/faiss_ehi.h>

#include <faiss/clone_index.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

/// Counter changes since `before`.
faiss_ehi::DropinCounters since(const faiss_ehi::DropinCounters& before) {
    faiss_ehi::DropinCounters now = faiss_ehi::dropin_counters(), c;
    c.served = now.served - before.served;
    c.forwarded = now.forwarded - before.forwarded;
    c.nested = now.nested - before.nested;
    return c;
}

void run() {
    const int d = 8;
    const faiss::Index::idx_t n = 1000;
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> x(size_t(n) * d);
    for (float& v : x) {
        v = g(rng);
    }

#ifdef EXPECT_TORCH_TRAINER
    // Linked with faiss_ehi::trainer too: its self-registration, before
    // main, must survive the drop-in's k-means fallback.
    check(faiss_ehi::tree_trainer_name().rfind("torch", 0) == 0,
          "the LibTorch trainer registered itself before main");
#else
    check(faiss_ehi::tree_trainer_name().empty(),
          "no trainer registered before the first EHI call");
#endif
    auto c0 = faiss_ehi::dropin_counters();
    std::unique_ptr<faiss::Index> ehi(faiss::index_factory(d, "EHI4x2,SQ8"));
    auto c = since(c0);
    check(c.served == 1 && c.forwarded == 0 && c.nested == 1,
          "EHI factory key: served once, its inner Faiss factory call nested");
    check(faiss_ehi::has_ehi_parts(ehi.get()), "the factory made an EHI index");
#ifdef EXPECT_TORCH_TRAINER
    check(faiss_ehi::tree_trainer_name().rfind("torch", 0) == 0,
          "the first EHI call kept the LibTorch trainer");
#else
    check(faiss_ehi::tree_trainer_name() ==
                  faiss_ehi::KMeansTreeTrainer().name(),
          "the first EHI call registered the k-means fallback trainer");
#endif
    ehi->train(n, x.data());
    ehi->add(n, x.data());

    c0 = faiss_ehi::dropin_counters();
    faiss::VectorIOWriter w;
    faiss::write_index(ehi.get(), &w);
    c = since(c0);
    check(c.served == 1 && c.forwarded == 0 && c.nested == 1,
          "write_index of an EHI index: served, Faiss part written nested");
    check(faiss_ehi::is_ehi_file_header(w.data.data(), w.data.size()),
          "the file is faiss_ehi's");

    c0 = faiss_ehi::dropin_counters();
    faiss::VectorIOReader r;
    r.data = w.data;
    std::unique_ptr<faiss::Index> back(faiss::read_index(&r));
    c = since(c0);
    check(c.served == 1 && c.forwarded == 0 && c.nested == 1,
          "read_index of an EHI file: served, Faiss part read nested");
    check(faiss_ehi::has_ehi_parts(back.get()), "read back as EHI");

    c0 = faiss_ehi::dropin_counters();
    std::unique_ptr<faiss::Index> copy(faiss::clone_index(ehi.get()));
    c = since(c0);
    check(c.served == 1 && c.forwarded == 0 && c.nested == 2,
          "clone_index of an EHI index: served, write and read nested");

    // faiss_ehi called directly, outside a served call: its inner Faiss
    // call is a plain one for the wrapper (no EHI parts left), forwarded.
    c0 = faiss_ehi::dropin_counters();
    faiss::VectorIOWriter w2;
    faiss_ehi::write_index(ehi.get(), &w2);
    c = since(c0);
    check(c.served == 0 && c.forwarded == 1 && c.nested == 0,
          "faiss_ehi::write_index's own Faiss call reaches Faiss");
    check(w2.data == w.data, "same bytes as through the drop-in");

    c0 = faiss_ehi::dropin_counters();
    std::unique_ptr<faiss::Index> plain(faiss::index_factory(d, "IVF4,Flat"));
    plain->train(n, x.data());
    faiss::VectorIOWriter w3;
    faiss::write_index(plain.get(), &w3);
    faiss::VectorIOReader r3;
    r3.data = w3.data;
    std::unique_ptr<faiss::Index> plain_back(faiss::read_index(&r3));
    std::unique_ptr<faiss::Index> plain_copy(faiss::clone_index(plain.get()));
    c = since(c0);
    check(c.served == 0 && c.forwarded == 4 && c.nested == 0,
          "plain Faiss calls are forwarded, unchanged");
    check(!faiss_ehi::is_ehi_file_header(w3.data.data(), w3.data.size()),
          "a plain index is written in Faiss's format");
}

} // namespace

int main() {
    try {
        run();
    } catch (const std::exception& e) {
        std::printf("FAIL: exception %s\n", e.what());
        return 1;
    }
    std::printf("%s\n", failures ? "dropin_guard FAILED" : "dropin_guard OK");
    return failures ? 1 : 0;
}
