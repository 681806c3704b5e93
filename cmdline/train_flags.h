/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * The training flags shared by ehi_train, bench_visited and bench_train:
 * one gflags flag per JointTrainerConfig field (made from its field
 * table, with the field's name, help and default), and the per-data-set
 * defaults: a flag left at its default takes the data set's value (the
 * k-NN sets get the probe recipe and the tree shapes stated in the
 * README), an explicit flag always wins.
 */
#pragma once

#include <string>

#include <faiss_ehi/trainer/JointTrainer.h>

#include "contrib/data/retrieval_task.h"

namespace ehi_tools {

/** The JointTrainerConfig for `task` from the flags: per-data-set defaults
 * for flags left at their default, then the explicit flags. Throws
 * std::invalid_argument naming the flag for a bad value, and for a joint
 * recipe flag given to a probe-recipe run. */
faiss_ehi::trainer::JointTrainerConfig config_from_flags(
        const faiss_ehi::data::RetrievalTask& task);

} // namespace ehi_tools
