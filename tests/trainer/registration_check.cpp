/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The trainer's self-registration, seen from a program that links
 * faiss_ehi_trainer and never calls register_torch_trainer() before main.
 * Built twice (tests/trainer/CMakeLists.txt):
 * - trainer_self_registration: at main, the LibTorch trainer is registered;
 * - trainer_preset_registration (PRESET_KMEANS): this program chooses the
 *   k-means trainer in its own static initializer, which the
 *   self-registration must not replace, whichever of the two runs first.
 * Then, in both: explicit calls after main starts win, and
 * register_torch_trainer() is idempotent. Exits 0 when every check holds.
 */
#include <cstdio>
#include <memory>
#include <string>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/EHITreeQuantizer.h>
#include <faiss_ehi/TreeTrainer.h>
#include <faiss_ehi/trainer/TorchTreeTrainer.h>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
    failures += !ok;
}

#ifdef PRESET_KMEANS
/// Whether the self-registration had run when this initializer did (it
/// depends on the link order; printed for the log).
bool torch_was_first = false;
const bool preset = [] {
    torch_was_first = faiss_ehi::get_tree_trainer() != nullptr;
    faiss_ehi::set_tree_trainer(
            std::make_shared<faiss_ehi::KMeansTreeTrainer>());
    return true;
}();
#endif

} // namespace

int main() {
    namespace ft = faiss_ehi::trainer;
#ifdef PRESET_KMEANS
    std::printf("the self-registration ran %s this program's initializer\n",
                torch_was_first ? "before" : "after");
    check(faiss_ehi::tree_trainer_name() == "k-means",
          "a trainer chosen in a static initializer stays (registered: '" +
                  faiss_ehi::tree_trainer_name() + "')");
    check(!faiss_ehi::set_default_tree_trainer(ft::default_torch_trainer()),
          "a default does not replace the program's choice");
#else
    check(faiss_ehi::get_tree_trainer() == ft::default_torch_trainer(),
          "linking the trainer registers default_torch_trainer() (registered: "
          "'" + faiss_ehi::tree_trainer_name() +
                  "')");
    check(faiss_ehi::tree_trainer_name() == "torch-probe",
          "the registered trainer is the LibTorch one");
#endif
    // explicit calls after main starts win
    ft::register_torch_trainer();
    check(faiss_ehi::get_tree_trainer() == ft::default_torch_trainer(),
          "register_torch_trainer() registers the default instance");
    ft::register_torch_trainer();
    check(faiss_ehi::get_tree_trainer() == ft::default_torch_trainer(),
          "register_torch_trainer() twice: the same instance");
    auto km = std::make_shared<faiss_ehi::KMeansTreeTrainer>();
    faiss_ehi::set_tree_trainer(km);
    check(faiss_ehi::get_tree_trainer() == km, "set_tree_trainer wins");
    check(!faiss_ehi::set_default_tree_trainer(ft::default_torch_trainer()) &&
                  faiss_ehi::get_tree_trainer() == km,
          "a default never replaces set_tree_trainer's choice");
    // unregistered explicitly: train() says so, and how to get it back
    faiss_ehi::set_tree_trainer(nullptr);
    check(faiss_ehi::tree_trainer_name().empty(), "no trainer after nullptr");
    faiss_ehi::EHITreeQuantizer q(4, 2, 1);
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    std::string msg;
    try {
        q.train(2, x);
    } catch (const faiss::FaissException& e) {
        msg = e.what();
    }
    std::printf("train() without a trainer: %s\n", msg.c_str());
    check(msg.find("set_tree_trainer(nullptr)") != std::string::npos &&
                  msg.find("register_torch_trainer") != std::string::npos,
          "the error says the trainer was unregistered and how to register "
          "it");
    return failures == 0 ? 0 : 1;
}
