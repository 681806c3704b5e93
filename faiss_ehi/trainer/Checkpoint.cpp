/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#include <faiss_ehi/trainer/Checkpoint.h>

#include <sstream>

#include <sys/stat.h>

#include <torch/torch.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_ehi/io_primitives.h>

namespace faiss_ehi {
namespace trainer {

namespace {

constexpr int kStatFields = 12;

void stats_to_row(const EpochStats& s, double* r) {
    double v[kStatFields] = {double(s.epoch),  s.loss,
                             s.siamese,        s.indexing,
                             s.intra_leaf,     s.balance_term,
                             s.routing_term,   s.max_load,
                             s.expected_load,  double(s.empty_leaves),
                             s.heldout_recall, s.seconds};
    std::copy(v, v + kStatFields, r);
}

EpochStats row_to_stats(const double* r) {
    EpochStats s;
    s.epoch = int(r[0]);
    s.loss = float(r[1]);
    s.siamese = float(r[2]);
    s.indexing = float(r[3]);
    s.intra_leaf = float(r[4]);
    s.balance_term = float(r[5]);
    s.routing_term = float(r[6]);
    s.max_load = r[7];
    s.expected_load = r[8];
    s.empty_leaves = int(r[9]);
    s.heldout_recall = r[10];
    s.seconds = r[11];
    return s;
}

void load_checkpoint_archive(const std::string& path,
                             const std::string& fingerprint, RunState& st,
                             Encoder& enc, TorchTree& tree,
                             torch::optim::Optimizer* enc_opt,
                             torch::optim::Optimizer& tree_opt) {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    c10::IValue fp;
    ar.read("fingerprint", fp);
    FAISS_THROW_IF_NOT_FMT(fp.isString() && fp.toStringRef() == fingerprint,
                           "JointTrainer: checkpoint '%s' was written with a "
                           "different configuration or data; refusing to "
                           "resume.\n  checkpoint: %s\n  this run:   %s",
                           path.c_str(),
                           fp.isString() ? fp.toStringRef().c_str() : "?",
                           fingerprint.c_str());
    torch::Tensor t;
    ar.read("epoch", t);
    st.epoch = int(t.item<int64_t>());
    ar.read("tree_ready", t);
    st.tree_ready = t.item<int64_t>() != 0;
    torch::serialize::InputArchive a_enc, a_tree, a_eo, a_to;
    ar.read("encoder", a_enc);
    enc->load(a_enc);
    ar.read("tree", a_tree);
    tree->load(a_tree);
    if (enc_opt) {
        ar.read("encoder_opt", a_eo);
        enc_opt->load(a_eo);
    }
    ar.read("tree_opt", a_to);
    tree_opt.load(a_to);
    torch::Tensor off, ids;
    ar.read("hard_offsets", off);
    ar.read("hard_ids", ids);
    FAISS_THROW_IF_NOT_MSG(off.numel() == int64_t(st.hard.size()) + 1,
                           "JointTrainer: checkpoint hard negatives do not "
                           "match the data");
    const int64_t* po = off.data_ptr<int64_t>();
    const int64_t* pi = ids.data_ptr<int64_t>();
    for (size_t q = 0; q < st.hard.size(); q++) {
        st.hard[q].assign(pi + po[q], pi + po[q + 1]);
    }
    torch::Tensor hist;
    ar.read("history", hist);
    st.history.clear();
    for (int64_t i = 0; i < hist.size(0); i++) {
        st.history.push_back(row_to_stats(hist[i].data_ptr<double>()));
    }
    torch::Tensor reps;
    ar.read("start_reps", reps);
    reps = reps.contiguous();
    st.start_reps.assign(reps.data_ptr<float>(),
                         reps.data_ptr<float>() + reps.numel());
    torch::Tensor dl;
    ar.read("doc_leaf", dl);
    dl = dl.contiguous();
    st.doc_leaf.assign(dl.data_ptr<int64_t>(),
                       dl.data_ptr<int64_t>() + dl.numel());
}

} // namespace

void save_checkpoint(const std::string& path, const std::string& fingerprint,
                     const RunState& st, Encoder& enc, TorchTree& tree,
                     torch::optim::Optimizer* enc_opt,
                     torch::optim::Optimizer& tree_opt) {
    torch::serialize::OutputArchive ar;
    ar.write("fingerprint", c10::IValue(fingerprint));
    ar.write("epoch", torch::tensor(int64_t(st.epoch)));
    ar.write("tree_ready", torch::tensor(int64_t(st.tree_ready)));
    torch::serialize::OutputArchive a_enc, a_tree, a_eo, a_to;
    enc->save(a_enc);
    tree->save(a_tree);
    ar.write("encoder", a_enc);
    ar.write("tree", a_tree);
    if (enc_opt) {
        enc_opt->save(a_eo);
        ar.write("encoder_opt", a_eo);
    }
    tree_opt.save(a_to);
    ar.write("tree_opt", a_to);
    std::vector<int64_t> offsets{0}, flat;
    for (const auto& h : st.hard) {
        flat.insert(flat.end(), h.begin(), h.end());
        offsets.push_back(int64_t(flat.size()));
    }
    auto lopt = torch::TensorOptions().dtype(torch::kLong);
    ar.write("hard_offsets",
             torch::from_blob(offsets.data(), {int64_t(offsets.size())}, lopt)
                     .clone());
    ar.write("hard_ids",
             torch::from_blob(flat.data(), {int64_t(flat.size())}, lopt)
                     .clone());
    torch::Tensor hist = torch::zeros({int64_t(st.history.size()), kStatFields},
                                      torch::kDouble);
    for (size_t i = 0; i < st.history.size(); i++) {
        stats_to_row(st.history[i], hist[i].data_ptr<double>());
    }
    ar.write("history", hist);
    ar.write("start_reps",
             torch::from_blob(const_cast<float*>(st.start_reps.data()),
                              {int64_t(st.start_reps.size())})
                     .clone());
    ar.write("doc_leaf",
             torch::from_blob(const_cast<int64_t*>(st.doc_leaf.data()),
                              {int64_t(st.doc_leaf.size())}, lopt)
                     .clone());
    std::ostringstream os;
    ar.save_to(os);
    std::string bytes = os.str();
    io_detail::write_file_atomic(path.c_str(), bytes.data(), bytes.size(),
                                 "JointTrainer checkpoint");
}

void load_checkpoint(const std::string& path, const std::string& fingerprint,
                     RunState& st, Encoder& enc, TorchTree& tree,
                     torch::optim::Optimizer* enc_opt,
                     torch::optim::Optimizer& tree_opt) {
    struct stat sb;
    FAISS_THROW_IF_NOT_FMT(stat(path.c_str(), &sb) == 0,
                           "JointTrainer: resume asked but there is no "
                           "checkpoint '%s'",
                           path.c_str());
    try {
        load_checkpoint_archive(path, fingerprint, st, enc, tree, enc_opt,
                                tree_opt);
    } catch (const c10::Error& e) {
        FAISS_THROW_FMT("JointTrainer: cannot read checkpoint '%s' (truncated "
                        "or corrupt): %s",
                        path.c_str(), e.what_without_backtrace());
    }
}

} // namespace trainer
} // namespace faiss_ehi
