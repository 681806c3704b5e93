/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 *
 * ehi_train: learn EHI's encoder and tree jointly on a data set and write
 * an index that faiss_ehi::read_index loads (with the corpus added unless
 * --add=false). For text data the trained text encoder is written beside
 * it (FILE.text, faiss_ehi::read_text_encoder).
 */

#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include <omp.h>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <faiss/IndexIVF.h>

#include <faiss_ehi/index_io.h>

#include "cmdline/index_stats.h"
#include "cmdline/program_main.h"
#include "cmdline/task_inputs.h"
#include "cmdline/train_flags.h"
#include "contrib/data/retrieval_task.h"

DEFINE_string(data, "",
              "data set: beir:DIR, fmnist[:DIR], glove100[:DIR], "
              "synthetic or vecs:BASE[,QUERIES[,PAIRS]] (required)");
DEFINE_string(out, "", "output index file (required)");
DEFINE_bool(add, true, "add the corpus to the written index");

namespace ft = faiss_ehi::trainer;

namespace {

int run() {
    if (FLAGS_data.empty() || FLAGS_out.empty()) {
        throw std::invalid_argument("--data and --out are required (see "
                                    "--help)");
    }
    // Fail before training, not after, when the output cannot be written.
    {
        std::string dir = FLAGS_out.substr(
                0,
                FLAGS_out.find_last_of('/') == std::string::npos
                        ? 0
                        : FLAGS_out.find_last_of('/') + 1);
        if (dir.empty()) {
            dir = ".";
        }
        if (access(dir.c_str(), W_OK) != 0) {
            throw std::invalid_argument("--out " + FLAGS_out +
                                        ": cannot write into directory " + dir);
        }
    }
    faiss_ehi::data::RetrievalTask task =
            faiss_ehi::data::load_retrieval_task(FLAGS_data);
    ft::JointTrainerConfig cfg = ehi_tools::config_from_flags(task);
    LOG(INFO) << "data " << task.name << ": " << task.nd << " documents, "
              << task.nq_train << " training queries, "
              << task.train_pairs.size() << " pairs";
    LOG(INFO) << "config: " << cfg.describe();
    ehi_tools::TrainingInputs in =
            ehi_tools::make_training_inputs(task, cfg.encoder, cfg.seed);

    ft::JointTrainer trainer(cfg);
    // LibTorch may leave this thread's OpenMP count at 1: searches and
    // adds after training get it back.
    const int omp_threads = omp_get_max_threads();
    ft::JointModel model = trainer.train(
            in.pairs,
            cfg.encoder == ft::EncoderKind::TEXT ? &in.text : nullptr);
    omp_set_num_threads(omp_threads);
    if (FLAGS_add) {
        std::vector<float> xd =
                ehi_tools::document_inputs(task, model.text_encoder.get());
        model.index->add(task.nd, xd.data());
        ehi_cmdline::LeafLoad load = ehi_cmdline::leaf_load(*model.index);
        LOG(INFO) << "added " << task.nd
                  << " documents: " << ehi_cmdline::describe(load);
    }
    faiss_ehi::write_index(model.index.get(), FLAGS_out.c_str());
    LOG(INFO) << "index written to " << FLAGS_out;
    if (model.text_encoder) {
        std::string tf = FLAGS_out + ".text";
        faiss_ehi::write_text_encoder(*model.text_encoder, tf.c_str());
        LOG(INFO) << "text encoder written to " << tf;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    return ehi_cmdline::program_main(
            argc, argv,
            "Train an EHI index (encoder and tree jointly).\n"
            "Usage: ehi_train --data SPEC --out FILE [training flags]",
            run);
}
