/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The joint trainer's checkpoint (internal to JointTrainer).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include <faiss_ehi/trainer/Encoder.h>
#include <faiss_ehi/trainer/JointTrainer.h>
#include <faiss_ehi/trainer/TorchTree.h>

namespace faiss_ehi {
namespace trainer {

/// Everything of a run that a checkpoint restores besides the modules.
struct RunState {
    int epoch = 0;           ///< epochs finished
    bool tree_ready = false; ///< tree initialised (after warm-up)
    std::vector<std::vector<int64_t>> hard; ///< per query id
    std::vector<EpochStats> history;
    /// k-means leaf centroids: representatives of leaves that get no
    /// document (they steer NEAREST_LEAF placement, so they are saved)
    std::vector<float> start_reps;
    /// recluster: each document's leaf in the last balanced assignment
    std::vector<int64_t> doc_leaf;
};

/** Write the checkpoint to `path`: one torch archive (parameters,
 * optimizer states, run state, fingerprint), to a temporary file that is
 * synced and renamed, so a crash never leaves a half-written checkpoint.
 * enc_opt may be null (an encoder without parameters). */
void save_checkpoint(const std::string& path, const std::string& fingerprint,
                     const RunState& st, Encoder& enc, TorchTree& tree,
                     torch::optim::Optimizer* enc_opt,
                     torch::optim::Optimizer& tree_opt);

/** Restore what save_checkpoint wrote into existing modules and optimizers
 * (same shapes); st.hard must be sized to the data's queries. Throws
 * faiss::FaissException when the file is missing, unreadable, or was
 * written with another fingerprint (config or data). */
void load_checkpoint(const std::string& path, const std::string& fingerprint,
                     RunState& st, Encoder& enc, TorchTree& tree,
                     torch::optim::Optimizer* enc_opt,
                     torch::optim::Optimizer& tree_opt);

} // namespace trainer
} // namespace faiss_ehi
