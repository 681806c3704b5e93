/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The training flags shared by ehi_train and bench_visited (gflags), and
 * the per-data-set defaults: a flag left at its default takes the value of
 * the data set's row (the paper's Table 2 for SciFact; our own choices,
 * stated in the README, for the k-NN sets), an explicit flag always wins.
 */
#pragma once

#include <string>

#include <faiss_ehi/trainer/JointTrainer.h>

#include "contrib/data/retrieval_task.h"

namespace ehi_tools {

/** The JointTrainerConfig for `task` from the flags: per-data-set defaults
 * for flags left at their default, then the explicit flags. Throws
 * std::invalid_argument naming the flag for a bad value. */
faiss_ehi::trainer::JointTrainerConfig config_from_flags(
        const faiss_ehi::data::RetrievalTask& task);

/// The config as training will use it (paper_recipe applied), one
/// field=value per field (for logs and result files).
std::string describe_config(const faiss_ehi::trainer::JointTrainerConfig& c);

} // namespace ehi_tools
