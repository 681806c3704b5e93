/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The drop-in's self-registration: linking faiss_ehi::trainer makes every
 * EHI index's train() use the LibTorch trainer, without a call.
 *
 * A static archive member is linked only when something refers to one of
 * its symbols, and a program that just calls index_factory + train() refers
 * to nothing here. Hence this object of its own, with an anchor symbol that
 * the target's link option (LINKER:--undefined=...) asks for: the linker
 * then takes this object, and with it the static initializer below. Kept
 * apart from TorchTreeTrainer.cpp so that the anchor pulls in no more than
 * the registration.
 */
#include <faiss_ehi/trainer/TorchTreeTrainer.h>

/// The symbol named by faiss_ehi::trainer's --undefined link option.
extern "C" void faiss_ehi_trainer_self_registration() {}

namespace {

/* set_default_tree_trainer, not set_tree_trainer: a trainer that the
 * program chose in a static initializer that ran before this one stays,
 * and one chosen later (in another initializer, or after main starts)
 * replaces this default. */
[[maybe_unused]] const bool self_registered =
        faiss_ehi::set_default_tree_trainer(
                faiss_ehi::trainer::default_torch_trainer());

} // namespace
